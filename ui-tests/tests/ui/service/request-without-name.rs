// A request type without a stable type name.
use ate::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub struct Deposit {
    amount: u64,
}

#[service]
trait Bank {
    async fn deposit(&self, ctx: &InvocationContext, request: Deposit) -> Result<u64, String>;
}

fn main() {}
