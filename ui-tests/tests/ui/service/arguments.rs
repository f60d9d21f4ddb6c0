// Arguments to the attribute.
use ate::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Deposit {
    amount: u64,
}
ate::stable_name!(Deposit = "bank.Deposit");

#[service(name = "bank")]
trait Bank {
    async fn deposit(&self, ctx: &InvocationContext, request: Deposit) -> Result<u64, String>;
}

fn main() {}
