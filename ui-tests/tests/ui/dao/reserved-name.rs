use ate::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Dao, Clone, Serialize, Deserialize)]
#[dao(name = "ate.schema")]
struct Sneaky {
    text: String,
}

fn main() {}
