use ate::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Dao, Clone, Serialize, Deserialize)]
#[dao]
struct Account {
    #[dao = "index"]
    number: String,
}

fn main() {}
