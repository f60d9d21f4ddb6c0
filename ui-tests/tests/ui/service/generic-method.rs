// A generic command.
use ate::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Deposit {
    amount: u64,
}
ate::stable_name!(Deposit = "bank.Deposit");

#[service]
trait Bank {
    async fn deposit<R>(&self, ctx: &InvocationContext, request: R) -> Result<u64, String>;
}

fn main() {}
