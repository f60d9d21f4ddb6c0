use ate::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize)]
enum Colour {
    Red,
    Green,
}

#[derive(Dao, Clone, Serialize, Deserialize)]
struct Item {
    #[dao(index)]
    weight: f64,
    #[dao(index, unique)]
    colour: Colour,
    #[dao(index)]
    tags: Vec<String>,
}

fn main() {}
