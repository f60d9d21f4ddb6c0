// A command without `&self`.
use ate::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Deposit {
    amount: u64,
}
ate::stable_name!(Deposit = "bank.Deposit");

#[service]
trait Bank {
    async fn deposit(ctx: &InvocationContext, request: Deposit) -> Result<u64, String>;
}

fn main() {}
