//! A small currency on a chain of trust: a mint issues coins, wallets pay each other, a
//! double spend is refused, and anyone holding the chain's log checks its whole history
//! offline from the mint's public key alone.
//!
//! ```text
//! cargo run -p ate-examples --example coin                        # embedded, under the temp folder
//! cargo run -p ate-examples --example coin -- --url ws://localhost:5000/db/coin
//! cargo run -p ate-examples --example coin -- verify FILE --mint FILE.pub
//! ```
//! The mint's keys are kept in the data folder (`--dir`, default `<temp>/ate-<uid>/coin-example`),
//! so each run adds to the same chain. With `--url` the chain lives on an `atedb solo` server
//! (start it with `--root-key <dir>/mint.key.pub` so that it, too, admits only the mint's coins).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ate::crypto::{KeyFile, PrivateSignKey, PublicSignKey};
use ate::prelude::*;
use ate_examples::coin::{self, CoinError, Mint, Wallet};
use clap::{Parser, Subcommand};
use rand::Rng;

#[derive(Debug, Parser)]
#[command(name = "coin", about = "A small currency on a chain of trust")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Use the chain at this URL (`ws://host:port/db/<chain>`) instead of an embedded one.
    #[arg(long, global = true)]
    url: Option<String>,
    /// Where the mint's keys (and the embedded chain) are kept.
    #[arg(long, global = true)]
    dir: Option<PathBuf>,
    /// Random transfers to make.
    #[arg(long, default_value_t = 200)]
    transfers: usize,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Checks a coin chain's log offline from the mint's public key alone: counts, total
    /// supply, or the first invalid transaction (exit status 1).
    Verify {
        /// The chain's log file (`<dir>/coin.log`).
        file: PathBuf,
        /// The mint's public key file (`<dir>/mint.key.pub`).
        #[arg(long)]
        mint: PathBuf,
        /// The chain key the log was written for.
        #[arg(long, default_value = coin::CHAIN)]
        chain: String,
    },
}

#[tokio::main]
async fn main() -> Result<std::process::ExitCode, Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    if let Some(Command::Verify { file, mint, chain }) = &cli.command {
        let mint = PublicSignKey::load(mint)?;
        return Ok(match coin::verify_log(file, chain, &mint).await {
            Ok(v) => {
                println!(
                    "{}: valid: {} transactions, {} coins, supply {}, {} transfers, {} owners",
                    file.display(),
                    v.transactions,
                    v.coins,
                    v.supply,
                    v.transfers,
                    v.owners
                );
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                println!("{}: INVALID: {e}", file.display());
                std::process::ExitCode::from(1)
            }
        });
    }
    run(&cli).await?;
    Ok(std::process::ExitCode::SUCCESS)
}

/// The mint of `dir`, made on the first run.
fn mint_of(dir: &Path) -> Result<Mint, Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("mint.key");
    if path.exists() {
        return Ok(Mint::from_key(PrivateSignKey::load(&path)?));
    }
    let mint = Mint::generate();
    mint.private_key().save(&path)?;
    mint.public_key().save(&dir.join("mint.key.pub"))?;
    Ok(mint)
}

async fn run(cli: &Cli) -> Result<(), Box<dyn std::error::Error>> {
    let dir = cli
        .dir
        .clone()
        .unwrap_or_else(|| ate::chain::default_log_path().join("coin-example"));
    let mint = mint_of(&dir)?;
    let chain = match &cli.url {
        Some(url) => {
            let conf = AteConfig::in_memory();
            coin::registry(&conf, &mint.public_key())
                .await
                .open_url(url)
                .await?
        }
        None => {
            let conf = AteConfig::at(&dir);
            coin::registry(&conf, &mint.public_key())
                .await
                .open(&ChainKey::from(coin::CHAIN))
                .await?
        }
    };
    let where_ = cli.url.clone().unwrap_or_else(|| {
        chain
            .path()
            .map_or_else(|| "memory".into(), |p| p.display().to_string())
    });
    println!("coin chain at {where_} (mint {})", mint.public_key().hash());

    // Three wallets, new on each run; the mint issues them coins of 1, 2, 5, 10 and 20.
    let names = ["alice", "bob", "carol"];
    let wallets: Vec<Arc<Wallet>> = names.iter().map(|_| Arc::new(Wallet::generate())).collect();
    let first = chain.len() as u64 * 1000 + rand::rng().random_range(0..1000);
    let mut issued = 0;
    for (w, wallet) in wallets.iter().enumerate() {
        let coins: Vec<(u64, u64)> = (0..10u64)
            .map(|i| {
                (
                    first * 100 + w as u64 * 10 + i,
                    [1, 2, 5, 10, 20][i as usize % 5],
                )
            })
            .collect();
        issued += coins.iter().map(|c| c.1).sum::<u64>();
        mint.issue(&chain, &wallet.id(), &coins).await?;
    }
    println!("minted 30 coins worth {issued} to {}", names.join(", "));

    // Random payments between them: whole coins, one transaction each.
    let mut made = 0;
    for _ in 0..cli.transfers {
        let (from, to) = {
            let mut rng = rand::rng();
            let from = rng.random_range(0..wallets.len());
            (
                from,
                (from + rng.random_range(1..wallets.len())) % wallets.len(),
            )
        };
        let coins = wallets[from].coins(&chain).await?;
        let Some(c) = coins.get(rand::rng().random_range(0..coins.len().max(1))) else {
            continue;
        };
        wallets[from]
            .transfer(&chain, coin::coin_key(c.serial, c.value), &wallets[to].id())
            .await?;
        made += 1;
    }
    println!("{made} random transfers between them, each signed by the coin's owner");

    // A double spend: alice spends one coin to bob and to carol at once.
    let spent = wallets[0].coins(&chain).await?.first().cloned();
    if let Some(c) = spent {
        let key = coin::coin_key(c.serial, c.value);
        let (mut a, mut b) = (
            chain.dio(wallets[0].session()).await,
            chain.dio(wallets[0].session()).await,
        );
        let pa = wallets[0]
            .stage_transfer(&mut a, key, &wallets[1].id())
            .await?;
        let pb = wallets[0]
            .stage_transfer(&mut b, key, &wallets[2].id())
            .await?;
        let (x, y) = tokio::join!(
            coin::commit_transfer(&mut a, pa),
            coin::commit_transfer(&mut b, pb)
        );
        let refused = [&x, &y]
            .iter()
            .filter(|r| matches!(r, Err(CoinError::AlreadySpent(_))))
            .count();
        println!(
            "double spend of coin {} (worth {}): {} committed, {refused} refused as already spent",
            c.serial,
            c.value,
            [&x, &y].iter().filter(|r| r.is_ok()).count()
        );
    }

    // A thief moving someone else's coin: the chain refuses the signature.
    let mallory = Wallet::generate();
    if let Some(c) = wallets[1].coins(&chain).await?.first() {
        let key = coin::coin_key(c.serial, c.value);
        match mallory.transfer(&chain, key, &mallory.id()).await {
            Err(CoinError::NotOwner(_)) => {
                println!(
                    "mallory moving bob's coin {}: refused (not the owner)",
                    c.serial
                )
            }
            other => return Err(format!("a thief was not refused: {other:?}").into()),
        }
    }

    let mut total = 0;
    let mut line = Vec::new();
    for (name, w) in names.iter().zip(&wallets) {
        let b = w.balance(&chain).await?;
        total += b;
        line.push(format!("{name} {b}"));
    }
    println!(
        "balances: {} (sum {total}, minted {issued})",
        line.join(", ")
    );
    if total != issued {
        return Err("the balances do not add up to what was minted".into());
    }

    if cli.url.is_none() {
        let log = chain.path().map(Path::to_path_buf);
        drop(chain);
        if let Some(log) = log {
            let v = coin::verify_log(&log, coin::CHAIN, &mint.public_key()).await?;
            println!(
                "offline check from the mint's public key alone: {} transactions, {} coins, supply {}, {} transfers: valid",
                v.transactions, v.coins, v.supply, v.transfers
            );
            println!(
                "check it yourself: cargo run -p ate-examples --example coin -- verify {} --mint {}",
                log.display(),
                dir.join("mint.key.pub").display()
            );
        }
    }
    Ok(())
}
