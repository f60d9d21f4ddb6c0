// A command that does not return a `Result<_, _>` written out.
use ate::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Deposit {
    amount: u64,
}
ate::stable_name!(Deposit = "bank.Deposit");

type BankResult<T> = Result<T, String>;

#[service]
trait Bank {
    async fn deposit(&self, ctx: &InvocationContext, request: Deposit) -> BankResult<u64>;
}

fn main() {}
