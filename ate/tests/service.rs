//! `#[service]` at run time, in process ([`LocalServices`]): typed round trips, the handler's
//! own errors back typed, who called, requests that no service serves or that do not decode,
//! and calls from many tasks at once. The same bank served from a chain is in `service/chain.rs`
//! (embedded, from a client of a server, and from the server's own process).

#[path = "service/chain.rs"]
mod chain;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use ate::crypto::Hash;
use ate::prelude::*;
use ate::service::{
    AddServiceError, CodecError, MessagePart, ServiceClient, ServiceDispatch, encode,
};
use serde::{Deserialize, Serialize};

/// Adds to an account.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Deposit {
    account: String,
    amount: u64,
}
ate::stable_name!(Deposit = "bank.Deposit");

/// Takes from an account (signed callers only).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Withdraw {
    account: String,
    amount: u64,
}
ate::stable_name!(Withdraw = "bank.Withdraw");

/// Asks who the bank thinks is calling.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct WhoAmI;
ate::stable_name!(WhoAmI = "bank.WhoAmI");

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Balance {
    account: String,
    balance: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum BankError {
    Overdrawn { balance: u64, wanted: u64 },
    Anonymous,
}

impl fmt::Display for BankError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BankError::Overdrawn { balance, wanted } => {
                write!(f, "cannot take {wanted} from a balance of {balance}")
            }
            BankError::Anonymous => f.write_str("withdrawals need a signed request"),
        }
    }
}

impl std::error::Error for BankError {}

/// A bank, as a service.
#[service]
trait Bank {
    /// Adds to an account; the new balance.
    async fn deposit(
        &self,
        ctx: &InvocationContext,
        request: Deposit,
    ) -> Result<Balance, BankError>;

    /// Takes from an account, if it holds enough; the new balance.
    async fn withdraw(
        &self,
        ctx: &InvocationContext,
        request: Withdraw,
    ) -> Result<Balance, BankError>;

    /// The caller's public-key ids, as the service sees them.
    async fn whoami(
        &self,
        ctx: &InvocationContext,
        request: WhoAmI,
    ) -> Result<Vec<Hash>, BankError>;
}

struct MemoryBank {
    balances: Mutex<HashMap<String, u64>>,
    /// Each deposit to the account `"gated"` waits for a permit of its own.
    gate: Arc<tokio::sync::Semaphore>,
}

impl Default for MemoryBank {
    fn default() -> Self {
        MemoryBank {
            balances: Mutex::default(),
            gate: Arc::new(tokio::sync::Semaphore::new(0)),
        }
    }
}

impl Bank for MemoryBank {
    async fn deposit(
        &self,
        _ctx: &InvocationContext,
        request: Deposit,
    ) -> Result<Balance, BankError> {
        if request.account == "gated" {
            self.gate.acquire().await.expect("open").forget();
        }
        let mut balances = self.balances.lock().unwrap();
        let balance = balances.entry(request.account.clone()).or_default();
        *balance += request.amount;
        Ok(Balance {
            account: request.account,
            balance: *balance,
        })
    }

    async fn withdraw(
        &self,
        ctx: &InvocationContext,
        request: Withdraw,
    ) -> Result<Balance, BankError> {
        if ctx.is_anonymous() {
            return Err(BankError::Anonymous);
        }
        let mut balances = self.balances.lock().unwrap();
        let balance = balances.entry(request.account.clone()).or_default();
        if *balance < request.amount {
            return Err(BankError::Overdrawn {
                balance: *balance,
                wanted: request.amount,
            });
        }
        *balance -= request.amount;
        Ok(Balance {
            account: request.account,
            balance: *balance,
        })
    }

    async fn whoami(
        &self,
        ctx: &InvocationContext,
        _request: WhoAmI,
    ) -> Result<Vec<Hash>, BankError> {
        Ok(ctx.callers().to_vec())
    }
}

fn bank() -> LocalServices {
    let services = LocalServices::new();
    services
        .add_service(BankService::new(MemoryBank::default()))
        .expect("nothing else serves the bank's requests");
    services
}

fn signed_session() -> (AteSession, PrivateSignKey) {
    let key = PrivateSignKey::generate(KeySize::Bit128);
    let mut session = AteSession::new();
    session.add_write_key(&key);
    (session, key)
}

fn deposit(account: &str, amount: u64) -> Deposit {
    Deposit {
        account: account.into(),
        amount,
    }
}

fn withdraw(account: &str, amount: u64) -> Withdraw {
    Withdraw {
        account: account.into(),
        amount,
    }
}

#[tokio::test]
async fn commands_round_trip() {
    let services = bank();
    let (session, _) = signed_session();
    let client = BankClient::new(&services, &session);
    let balance = client.deposit(deposit("42", 10)).await.unwrap();
    assert_eq!(
        balance,
        Balance {
            account: "42".into(),
            balance: 10
        }
    );
    assert_eq!(client.deposit(deposit("42", 5)).await.unwrap().balance, 15);
    assert_eq!(
        client.withdraw(withdraw("42", 3)).await.unwrap().balance,
        12
    );
    // Another account, another client of the same services: the same handler.
    let other = BankClient::new(&services, &AteSession::default());
    assert_eq!(other.deposit(deposit("7", 1)).await.unwrap().balance, 1);
    assert_eq!(client.withdraw(withdraw("7", 1)).await.unwrap().balance, 0);
}

#[tokio::test]
async fn the_handlers_error_comes_back_typed() {
    let services = bank();
    let (session, _) = signed_session();
    let client = BankClient::new(&services, &session);
    client.deposit(deposit("42", 12)).await.unwrap();
    let out = client.withdraw(withdraw("42", 100)).await;
    let Err(InvokeError::Handler(e)) = out else {
        panic!("expected the handler's error, got {out:?}");
    };
    assert_eq!(
        e,
        BankError::Overdrawn {
            balance: 12,
            wanted: 100
        }
    );
    // Nothing was taken.
    assert_eq!(
        client.withdraw(withdraw("42", 12)).await.unwrap().balance,
        0
    );
}

#[tokio::test]
async fn the_handler_knows_who_called() {
    let services = bank();
    let (session, key) = signed_session();
    let signed = BankClient::new(&services, &session);
    assert_eq!(signed.whoami(WhoAmI).await.unwrap(), vec![key.hash()]);
    let anonymous = BankClient::new(&services, &AteSession::default());
    assert!(anonymous.whoami(WhoAmI).await.unwrap().is_empty());
    anonymous.deposit(deposit("42", 5)).await.unwrap();
    let out = anonymous.withdraw(withdraw("42", 5)).await;
    assert!(
        matches!(out, Err(InvokeError::Handler(BankError::Anonymous))),
        "{out:?}"
    );
    assert_eq!(signed.withdraw(withdraw("42", 5)).await.unwrap().balance, 0);
}

#[tokio::test]
async fn a_request_no_service_serves_is_no_service() {
    // No bank at all.
    let empty = LocalServices::new();
    let client = BankClient::new(&empty, &AteSession::default());
    let out = client.deposit(deposit("42", 1)).await;
    assert!(
        matches!(&out, Err(InvokeError::NoService { request_type }) if request_type == "bank.Deposit"),
        "{out:?}"
    );
    // A bank, asked for a type it does not serve.
    let services = bank();
    let raw = ServiceClient::connect(&services, &AteSession::default());
    let body = encode(MessagePart::Request, "bank.Transfer", &deposit("42", 1)).unwrap();
    let out = raw.call_raw("bank.Transfer", &body).await;
    assert!(
        matches!(&out, Err(InvokeError::NoService { request_type }) if request_type == "bank.Transfer"),
        "{out:?}"
    );
}

#[tokio::test]
async fn a_request_that_does_not_decode_is_refused_before_the_handler() {
    let services = bank();
    let raw = ServiceClient::connect(&services, &AteSession::default());
    // The right name, the wrong body: never reaches `deposit`.
    let body = encode(MessagePart::Request, "bank.Deposit", &"ten please").unwrap();
    let out = raw.call_raw("bank.Deposit", &body).await;
    let Err(InvokeError::Decode(CodecError {
        part, request_type, ..
    })) = out
    else {
        panic!("expected a decode error, got {out:?}");
    };
    assert_eq!(
        (part, request_type.as_str()),
        (MessagePart::Request, "bank.Deposit")
    );
    // Trailing bytes after a good request are refused too.
    let mut body = encode(MessagePart::Request, "bank.Deposit", &deposit("42", 1)).unwrap();
    body.push(0xc0);
    let out = raw.call_raw("bank.Deposit", &body).await;
    assert!(matches!(out, Err(InvokeError::Decode(_))), "{out:?}");
    // Nothing was deposited.
    let client = BankClient::new(&services, &AteSession::default());
    assert_eq!(client.deposit(deposit("42", 0)).await.unwrap().balance, 0);
}

#[tokio::test]
async fn the_service_lists_its_request_types_and_serves_them_once() {
    let service = BankService::new(MemoryBank::default());
    assert_eq!(service.service_name(), "Bank");
    assert_eq!(
        service.request_types(),
        ["bank.Deposit", "bank.Withdraw", "bank.WhoAmI"]
    );
    let services = bank();
    let again = services.add_service(service);
    assert_eq!(
        again,
        Err(AddServiceError::AlreadyServed {
            request_type: "bank.Deposit".into()
        })
    );
}

#[tokio::test]
async fn clients_call_from_many_tasks_at_once() {
    let services = bank();
    let client = BankClient::new(&services, &AteSession::default());
    let calls: Vec<_> = (0..16)
        .map(|_| {
            let client = client.clone();
            // The client's futures are `Send`: they run on any task.
            tokio::spawn(async move { client.deposit(deposit("42", 2)).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(client.deposit(deposit("42", 0)).await.unwrap().balance, 32);
}

#[tokio::test]
async fn a_service_held_as_a_trait_object_serves_the_same() {
    let services = LocalServices::new();
    let shared: Arc<dyn ServiceDispatch> = Arc::new(BankService::new(MemoryBank::default()));
    services.add_shared(Arc::clone(&shared)).unwrap();
    let client = BankClient::new(&services, &AteSession::default());
    assert_eq!(client.deposit(deposit("1", 1)).await.unwrap().balance, 1);
    assert!(services.remove_service("bank.WhoAmI").is_some());
    let out = client.deposit(deposit("1", 1)).await;
    assert!(matches!(out, Err(InvokeError::NoService { .. })), "{out:?}");
}

#[tokio::test]
async fn call_errors_convert_into_ate_error() {
    async fn overdraw(client: &BankClient) -> Result<Balance, AteError> {
        Ok(client.withdraw(withdraw("42", 1)).await?)
    }
    let (session, _) = signed_session();
    let client = BankClient::new(&bank(), &session);
    let e = overdraw(&client).await.unwrap_err();
    assert!(
        matches!(e, AteError::Invoke(InvokeError::Handler(_))),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "the handler returned an error: cannot take 1 from a balance of 0"
    );
}
