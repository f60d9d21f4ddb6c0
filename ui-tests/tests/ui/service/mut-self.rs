// A command taking `&mut self`: one handler answers concurrent requests.
use ate::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Deposit {
    amount: u64,
}
ate::stable_name!(Deposit = "bank.Deposit");

#[service]
trait Bank {
    async fn deposit(&mut self, ctx: &InvocationContext, request: Deposit) -> Result<u64, String>;
}

fn main() {}
