//! A bank served from a chain: the staff opens accounts, owners pay in and move money through
//! the bank's `#[service]` API from many tasks at once, a retried request is applied once,
//! nobody moves money that is not theirs, and an auditor checks every invariant from the
//! chain.
//!
//! ```text
//! cargo run -p ate-examples --example bank                        # embedded, under the temp folder
//! cargo run -p ate-examples --example bank -- --url ws://localhost:5000/db/bank
//! ```
//! The bank's keys are kept in the data folder (`--dir`, default
//! `<temp>/ate-<uid>/bank-example`), so each run adds to the same bank.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use ate::crypto::{KeyFile, KeySize, PrivateEncryptKey, PrivateSignKey};
use ate::prelude::*;
use ate::service::InvokeError;
use ate_examples::bank::{
    self, BankApiClient, BankApiService, BankError, BankKeys, Branch, Deposit, OpenAccount,
    StatementRequest, Teller, Transfer, Withdraw, key_id, session_of,
};
use clap::Parser;
use rand::Rng;

#[derive(Debug, Parser)]
#[command(name = "bank", about = "A bank served from a chain")]
struct Cli {
    /// Use the chain at this URL (`ws://host:port/db/<chain>`) instead of an embedded one.
    #[arg(long)]
    url: Option<String>,
    /// Where the bank's keys (and the embedded chain) are kept.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Tasks making transfers at once.
    #[arg(long, default_value_t = 8)]
    tasks: usize,
    /// Transfers each task makes.
    #[arg(long, default_value_t = 25)]
    transfers: usize,
}

const NAME: &str = "ATE example bank";

/// The bank's keys in `dir`, made on the first run.
fn keys_of(dir: &Path) -> Result<BankKeys, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir)?;
    let (teller, staff, read) = (
        dir.join("teller.key"),
        dir.join("staff.key"),
        dir.join("read.key"),
    );
    if teller.exists() {
        return Ok(BankKeys {
            teller: PrivateSignKey::load(&teller)?,
            staff: PrivateSignKey::load(&staff)?,
            read: PrivateEncryptKey::load(&read)?,
        });
    }
    let keys = BankKeys::generate();
    keys.staff.save(&staff)?;
    keys.read.save(&read)?;
    keys.teller.save(&teller)?;
    Ok(keys)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    let dir = cli
        .dir
        .clone()
        .unwrap_or_else(|| ate::chain::default_log_path().join("bank-example"));
    let keys = keys_of(&dir)?;
    let chain = match &cli.url {
        Some(url) => {
            ChainBuilder::new(&AteConfig::in_memory())
                .await
                .build()
                .open_url(url)
                .await?
        }
        None => {
            ChainBuilder::new(&AteConfig::at(&dir))
                .await
                .build()
                .open(&ChainKey::from(bank::CHAIN))
                .await?
        }
    };
    let at = cli.url.clone().unwrap_or_else(|| {
        chain
            .path()
            .map_or_else(|| "memory".into(), |p| p.display().to_string())
    });
    println!("bank chain at {at}");

    // The bank: its teller serves the API from the chain.
    let teller = Arc::new(Teller::open(&chain, NAME, &keys).await?);
    let serving = chain
        .add_service(
            &keys.teller_session(),
            BankApiService::new(Branch(teller.clone())),
        )
        .await?;

    // The staff opens an account for each of three new customers; each pays in 1,000.
    let staff = BankApiClient::new(&chain, &keys.staff_session());
    let names = ["alice", "bob", "carol"];
    let owners: Vec<PrivateSignKey> = names
        .iter()
        .map(|_| PrivateSignKey::generate(KeySize::Bit128))
        .collect();
    let run: u32 = rand::rng().random();
    let numbers: Vec<String> = (0..names.len()).map(|i| format!("{run:08x}-{i}")).collect();
    for ((name, key), number) in names.iter().zip(&owners).zip(&numbers) {
        staff
            .open_account(OpenAccount {
                number: number.clone(),
                name: (*name).to_string(),
                owner_key: key_id(&key.hash()),
            })
            .await?;
        BankApiClient::new(&chain, &session_of(key))
            .deposit(Deposit {
                number: number.clone(),
                amount: 1000,
                reference: format!("opening deposit {number}"),
            })
            .await?;
    }
    println!(
        "the staff opened accounts {} for {}; each paid in 1000",
        numbers.join(", "),
        names.join(", ")
    );

    // Random transfers from many tasks at once, each by the owner of the account it leaves.
    let started = Instant::now();
    let tasks: Vec<_> = (0..cli.tasks)
        .map(|task| {
            let chain = chain.clone();
            let owners = owners.clone();
            let numbers = numbers.clone();
            let each = cli.transfers;
            tokio::spawn(async move {
                let (mut done, mut short) = (0u64, 0u64);
                for i in 0..each {
                    let (from, to, amount) = {
                        let mut rng = rand::rng();
                        let from = rng.random_range(0..numbers.len());
                        let to = (from + rng.random_range(1..numbers.len())) % numbers.len();
                        (from, to, rng.random_range(1..=400))
                    };
                    let client = BankApiClient::new(&chain, &session_of(&owners[from]));
                    let outcome = client
                        .transfer(Transfer {
                            from: numbers[from].clone(),
                            to: numbers[to].clone(),
                            amount,
                            reference: format!("{run:x} task {task} transfer {i}"),
                        })
                        .await;
                    match outcome {
                        Ok(_) => done += 1,
                        Err(InvokeError::Handler(BankError::InsufficientFunds { .. })) => {
                            short += 1
                        }
                        Err(e) => return Err(e.to_string()),
                    }
                }
                Ok((done, short))
            })
        })
        .collect();
    let (mut done, mut short) = (0, 0);
    for t in tasks {
        let (d, s) = t.await??;
        done += d;
        short += s;
    }
    println!(
        "{} tasks made {done} transfers through the bank's service in {:.1} s ({short} refused for want of funds); {} retried on a stale account",
        cli.tasks,
        started.elapsed().as_secs_f64(),
        teller.retries()
    );

    // A request sent three times with one idempotency key moves money once.
    let alice = BankApiClient::new(&chain, &session_of(&owners[0]));
    let before = alice
        .statement(StatementRequest {
            number: numbers[0].clone(),
        })
        .await?
        .balance;
    let mut answers = Vec::new();
    for _ in 0..3 {
        let w = Withdraw {
            number: numbers[0].clone(),
            amount: before.min(1),
            reference: format!("{run:x} cash at the counter"),
        };
        match alice.withdraw(w).await {
            Ok(balance) => answers.push(balance.to_string()),
            Err(e) => answers.push(e.to_string()),
        }
    }
    println!(
        "alice withdrew {} three times with one idempotency key: answers {}",
        before.min(1),
        answers.join(", ")
    );

    // Bob cannot move alice's money, the staff nobody's.
    let bob = BankApiClient::new(&chain, &session_of(&owners[1]));
    let stolen = bob
        .transfer(Transfer {
            from: numbers[0].clone(),
            to: numbers[1].clone(),
            amount: 1,
            reference: "theft".into(),
        })
        .await;
    let by_staff = staff
        .withdraw(Withdraw {
            number: numbers[2].clone(),
            amount: 1,
            reference: "staff".into(),
        })
        .await;
    match (&stolen, &by_staff) {
        (
            Err(InvokeError::Handler(BankError::NotOwner(_))),
            Err(InvokeError::Handler(BankError::NotOwner(_))),
        ) => println!("bob moving alice's money and the staff taking carol's: both refused"),
        _ => return Err(format!("not refused: {stolen:?} {by_staff:?}").into()),
    }
    serving.stop().await?;

    // The auditor reads every record and checks every invariant.
    let audit = bank::audit(&chain, &keys.auditor_session(), NAME).await?;
    println!(
        "audit: {} accounts hold {} = {} paid in - {} paid out; {} transfers, each on both accounts; {} requests applied once each; no balance below zero",
        audit.accounts,
        audit.total,
        audit.deposited,
        audit.withdrawn,
        audit.transfers,
        audit.applied
    );
    Ok(())
}
