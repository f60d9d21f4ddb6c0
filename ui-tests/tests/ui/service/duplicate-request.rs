// Two commands taking one request type: a request would not know its command.
use ate::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Deposit {
    amount: u64,
}
ate::stable_name!(Deposit = "bank.Deposit");

#[service]
trait Bank {
    async fn deposit(&self, ctx: &InvocationContext, request: Deposit) -> Result<u64, String>;
    async fn credit(&self, ctx: &InvocationContext, request: Deposit) -> Result<u64, String>;
}

fn main() {}
