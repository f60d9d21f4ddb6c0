use ate::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Dao, Clone, Serialize, Deserialize)]
#[dao(name = "bank.Account", read = "everyone")]
#[dao(name = "bank.Account2")]
struct Account {
    #[dao(index, unique, index)]
    number: String,
}

fn main() {}
