use ate::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Dao, Clone, Serialize, Deserialize)]
#[dao(name = bank::Account)]
struct Account {
    number: String,
}

#[derive(Dao, Clone, Serialize, Deserialize)]
#[dao(name)]
struct Person {
    name: String,
}

fn main() {}
