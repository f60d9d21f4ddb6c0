// A request destructured in the signature; the client still has the method.
use ate::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Deposit {
    amount: u64,
}
ate::stable_name!(Deposit = "bank.Deposit");

#[service]
trait Bank {
    async fn deposit(&self, ctx: &InvocationContext, Deposit { amount }: Deposit)
        -> Result<u64, String>;
}

async fn call(client: &BankClient) {
    let _ = client.deposit(Deposit { amount: 1 }).await;
}

fn main() {
    let _ = call;
}
