use ate::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Dao, Clone, Serialize, Deserialize)]
#[dao(name = "")]
struct Account {
    number: String,
}

fn main() {}
