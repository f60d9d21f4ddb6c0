use ate::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Dao, Clone, Serialize, Deserialize)]
#[dao(nmae = "bank.Account")]
struct Account {
    #[dao(indx)]
    number: String,
}

fn main() {}
