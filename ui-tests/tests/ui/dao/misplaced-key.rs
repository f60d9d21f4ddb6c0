use ate::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Dao, Clone, Serialize, Deserialize)]
#[dao(unique)]
struct Account {
    #[dao(write = "nobody")]
    number: String,
}

fn main() {}
