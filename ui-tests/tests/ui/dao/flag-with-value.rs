use ate::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Dao, Clone, Serialize, Deserialize)]
struct Account {
    #[dao(index = true)]
    number: String,
    #[dao(index, unique("yes"))]
    email: String,
}

fn main() {}
