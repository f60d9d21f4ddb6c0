// A command that is not async; the handler and the client still resolve (no second error).
use ate::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Deposit {
    amount: u64,
}
ate::stable_name!(Deposit = "bank.Deposit");

#[service]
trait Bank {
    fn deposit(&self, ctx: &InvocationContext, request: Deposit) -> Result<u64, String>;
}

struct MyBank;

impl Bank for MyBank {
    fn deposit(&self, _: &InvocationContext, request: Deposit) -> Result<u64, String> {
        Ok(request.amount)
    }
}

async fn call(client: &BankClient) {
    let _ = client.deposit(Deposit { amount: 1 }).await;
}

fn main() {
    let _ = (BankService::new(MyBank), call);
}
