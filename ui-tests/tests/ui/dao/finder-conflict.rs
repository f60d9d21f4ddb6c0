// A method of the user's that has a finder's name: rustc points at the indexed field.
use ate::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Dao, Clone, Serialize, Deserialize)]
pub(crate) struct Account {
    #[dao(index)]
    number: String,
}

impl Account {
    fn find_by_number() {}
}

fn main() {}
