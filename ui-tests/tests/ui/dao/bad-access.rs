use ate::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Dao, Clone, Serialize, Deserialize)]
#[dao(read = "sometimes", write = nobody)]
struct Account {
    number: String,
}

fn main() {}
