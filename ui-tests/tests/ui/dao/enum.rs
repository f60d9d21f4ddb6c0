use ate::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Dao, Clone, Serialize, Deserialize)]
enum Coin {
    Heads,
    Tails,
}

fn main() {}
