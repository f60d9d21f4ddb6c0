use ate::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Dao, Clone, Serialize, Deserialize)]
struct Account {
    #[dao(unique)]
    number: String,
}

fn main() {}
