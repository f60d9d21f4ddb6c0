//! A bank as a typed API served from a chain: `#[service]` turns the trait into a client and a
//! dispatcher; the chain carries the requests and replies, encrypted for the caller and the
//! bank, and tells the bank who called.
//!
//! ```text
//! cargo run -p ate-examples --example service-api                  # an embedded chain
//! cargo run -p ate-examples --example service-api -- --url ws://localhost:5000/db/bank
//! ```
//! With `--url` the chain is on a running `atedb solo` (started without `--root-key`, trusting
//! its identity on first use): the same code, the requests and replies go through the server.

use std::collections::HashMap;
use std::sync::Mutex;

use ate::prelude::*;
use ate::service::InvokeError;
use serde::{Deserialize, Serialize};

/// Adds to an account.
#[derive(Debug, Serialize, Deserialize)]
struct Deposit {
    account: String,
    amount: u64,
}
ate::stable_name!(Deposit = "example.bank.Deposit");

/// Takes from an account.
#[derive(Debug, Serialize, Deserialize)]
struct Withdraw {
    account: String,
    amount: u64,
}
ate::stable_name!(Withdraw = "example.bank.Withdraw");

/// Asks who the bank thinks is calling.
#[derive(Debug, Serialize, Deserialize)]
struct WhoAmI;
ate::stable_name!(WhoAmI = "example.bank.WhoAmI");

#[derive(Debug, Serialize, Deserialize)]
enum BankError {
    /// Withdrawals need a signed request.
    Anonymous,
    /// Not enough money.
    Overdrawn { balance: u64, wanted: u64 },
}

impl std::fmt::Display for BankError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BankError::Anonymous => f.write_str("withdrawals need a signed request"),
            BankError::Overdrawn { balance, wanted } => {
                write!(f, "cannot take {wanted} from a balance of {balance}")
            }
        }
    }
}

impl std::error::Error for BankError {}

#[service]
trait Bank {
    /// Adds to an account; the new balance.
    async fn deposit(&self, ctx: &InvocationContext, request: Deposit) -> Result<u64, BankError>;

    /// Takes from an account, if the caller signed and it holds enough; the new balance.
    async fn withdraw(&self, ctx: &InvocationContext, request: Withdraw) -> Result<u64, BankError>;

    /// The ids of the keys that signed the request.
    async fn whoami(
        &self,
        ctx: &InvocationContext,
        request: WhoAmI,
    ) -> Result<Vec<String>, BankError>;
}

#[derive(Default)]
struct Vault {
    balances: Mutex<HashMap<String, u64>>,
}

impl Bank for Vault {
    async fn deposit(&self, _ctx: &InvocationContext, request: Deposit) -> Result<u64, BankError> {
        let mut balances = self.balances.lock().expect("not poisoned");
        let balance = balances.entry(request.account).or_default();
        *balance += request.amount;
        Ok(*balance)
    }

    async fn withdraw(&self, ctx: &InvocationContext, request: Withdraw) -> Result<u64, BankError> {
        if ctx.is_anonymous() {
            return Err(BankError::Anonymous);
        }
        let mut balances = self.balances.lock().expect("not poisoned");
        let balance = balances.entry(request.account).or_default();
        if *balance < request.amount {
            return Err(BankError::Overdrawn {
                balance: *balance,
                wanted: request.amount,
            });
        }
        *balance -= request.amount;
        Ok(*balance)
    }

    async fn whoami(
        &self,
        ctx: &InvocationContext,
        _request: WhoAmI,
    ) -> Result<Vec<String>, BankError> {
        Ok(ctx.callers().iter().map(|h| h.to_hex()).collect())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let url = args
        .iter()
        .position(|a| a == "--url")
        .and_then(|i| args.get(i + 1).cloned());
    let registry = ChainBuilder::new(&AteConfig::in_memory()).await.build();
    let chain = match &url {
        Some(url) => registry.open_url(url).await?,
        None => registry.open(&ChainKey::from("bank")).await?,
    };

    // The bank: a signing key (its records are written for it) and a private read key
    // (requests are encrypted for its public half).
    let mut bank_session = AteSession::new();
    bank_session
        .add_write_key(&PrivateSignKey::generate(KeySize::Bit128))
        .add_private_read_key(&PrivateEncryptKey::generate(KeySize::Bit128));
    let serving = chain
        .add_service(&bank_session, BankService::new(Vault::default()))
        .await?;
    println!("serving {:?}", serving.request_types());

    // Alice calls with a signing key: the bank knows it is her.
    let alice_key = PrivateSignKey::generate(KeySize::Bit128);
    let mut alice = AteSession::new();
    alice.add_write_key(&alice_key);
    let bank = BankClient::new(&chain, &alice);
    let account = format!("alice-{}", PrimaryKey::generate());
    let deposit = |amount| Deposit {
        account: account.clone(),
        amount,
    };
    let withdraw = |amount| Withdraw {
        account: account.clone(),
        amount,
    };
    println!("deposit 10: balance {}", bank.deposit(deposit(10)).await?);
    println!("withdraw 4: balance {}", bank.withdraw(withdraw(4)).await?);
    match bank.withdraw(withdraw(100)).await {
        Err(InvokeError::Handler(e)) => println!("withdraw 100: refused by the bank: {e:?}"),
        other => return Err(format!("expected the bank's refusal, got {other:?}").into()),
    }
    let callers = bank.whoami(WhoAmI).await?;
    assert_eq!(callers, vec![alice_key.hash().to_hex()]);
    println!("the bank sees the caller as {}", callers[0]);

    // Someone without keys may deposit, not withdraw.
    let anonymous = BankClient::new(&chain, &AteSession::default());
    println!(
        "anonymous deposit 1: balance {}",
        anonymous.deposit(deposit(1)).await?
    );
    let out = anonymous.withdraw(withdraw(1)).await;
    assert!(matches!(
        out,
        Err(InvokeError::Handler(BankError::Anonymous))
    ));
    println!("anonymous withdraw: {out:?}");

    // Stopped, the bank removes its provider record: no service.
    serving.stop().await?;
    let out = bank.whoami(WhoAmI).await;
    assert!(matches!(out, Err(InvokeError::NoService { .. })), "{out:?}");
    println!(
        "after stop: {}",
        out.err().map(|e| e.to_string()).unwrap_or_default()
    );
    Ok(())
}
