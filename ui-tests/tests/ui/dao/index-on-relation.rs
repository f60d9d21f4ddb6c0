use ate::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Dao, Clone, Serialize, Deserialize)]
struct Person {
    name: String,
}

#[derive(Dao, Clone, Serialize, Deserialize)]
struct Transaction {
    amount: i64,
}

#[derive(Dao, Clone, Serialize, Deserialize)]
struct Account {
    #[dao(index)]
    owner: DaoRef<Person>,
    #[dao(index, unique)]
    transactions: DaoVec<Transaction>,
}

fn main() {}
