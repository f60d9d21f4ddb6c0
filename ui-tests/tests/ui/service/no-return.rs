// A command that returns nothing: the caller would not learn whether it failed.
use ate::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Deposit {
    amount: u64,
}
ate::stable_name!(Deposit = "bank.Deposit");

#[service]
trait Bank {
    async fn deposit(&self, ctx: &InvocationContext, request: Deposit);
}

fn main() {}
