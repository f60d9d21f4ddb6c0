// A command with a body in the trait.
use ate::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Deposit {
    amount: u64,
}
ate::stable_name!(Deposit = "bank.Deposit");

#[service]
trait Bank {
    async fn deposit(&self, ctx: &InvocationContext, request: Deposit) -> Result<u64, String> {
        Ok(request.amount)
    }
}

fn main() {}
