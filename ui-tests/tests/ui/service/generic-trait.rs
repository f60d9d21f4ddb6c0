// A generic service trait.
use ate::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Deposit {
    amount: u64,
}
ate::stable_name!(Deposit = "bank.Deposit");

#[service]
trait Bank<Currency> {
    async fn deposit(&self, ctx: &InvocationContext, request: Currency) -> Result<u64, String>;
}

fn main() {}
