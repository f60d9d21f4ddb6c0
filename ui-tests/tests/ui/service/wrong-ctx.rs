// A context of another type.
use ate::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Deposit {
    amount: u64,
}
ate::stable_name!(Deposit = "bank.Deposit");

pub struct Context;

#[service]
trait Bank {
    async fn deposit(&self, ctx: &Context, request: Deposit) -> Result<u64, String>;
    async fn withdraw(&self, ctx: &mut InvocationContext, request: Withdraw) -> Result<u64, String>;
}

#[derive(Serialize, Deserialize)]
pub struct Withdraw {
    amount: u64,
}
ate::stable_name!(Withdraw = "bank.Withdraw");

fn main() {}
