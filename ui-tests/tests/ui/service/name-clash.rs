// A command named like a method of the generated client.
use ate::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Deposit {
    amount: u64,
}
ate::stable_name!(Deposit = "bank.Deposit");

#[service]
trait Bank {
    async fn new(&self, ctx: &InvocationContext, request: Deposit) -> Result<u64, String>;
}

fn main() {}
