// Two request types with one stable name: the compiler says which commands.
use ate::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Deposit {
    amount: u64,
}
ate::stable_name!(Deposit = "bank.Deposit");

#[derive(Serialize, Deserialize)]
pub struct Credit {
    amount: u64,
}
ate::stable_name!(Credit = "bank.Deposit");

#[service]
trait Bank {
    async fn deposit(&self, ctx: &InvocationContext, request: Deposit) -> Result<u64, String>;
    async fn credit(&self, ctx: &InvocationContext, request: Credit) -> Result<u64, String>;
}

fn main() {}
