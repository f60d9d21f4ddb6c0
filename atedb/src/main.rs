//! `atedb`: the ATE server and its operator commands.
//!
//! ```text
//! atedb solo   [--data-dir DIR] [--listen ADDR] [--root-key FILE]... [--identity FILE]
//!              [--max-connections-per-ip N] [--compact-growth-factor F | --compact-growth-size BYTES]
//!              [--compact-every SECS] [--compact-tolerance SECS]
//! atedb verify <FILE> [--chain KEY] [--root-key FILE]... [--server-key FILE]... [--centralized]
//! atedb dump   <FILE> [--chain KEY] [--limit N]
//! atedb compact <FILE> [--chain KEY] [--root-key FILE]... [--server-key FILE]... [--centralized]
//! atedb keygen <FILE> [--size 128|192|256] [--encrypt]
//! ```
//!
//! Logs go to stderr through `tracing` (`RUST_LOG=atedb=debug,ate_runtime=debug` for more).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod inspect;
mod solo;

/// The ATE server: hosts chains for remote clients; verifies, dumps and keys chain files offline.
#[derive(Debug, Parser)]
#[command(name = "atedb", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs a server holding every chain itself: clients open `ws://HOST:PORT/db/<chain>`.
    /// Every transaction a client sends is validated in full, appended and fsynced before it
    /// is confirmed; the server holds no read keys. Stops cleanly on SIGINT or SIGTERM.
    Solo(solo::SoloArgs),
    /// Checks a chain file offline: every frame, hash, signature, vouch, right and version, as an
    /// open does, without changing the file. Prints counts, or the first error with its offset;
    /// exits with 1 when the file is invalid.
    Verify(VerifyArgs),
    /// Prints a chain file's transactions and events in human-readable form (bodies only where
    /// they are not encrypted), without changing the file.
    Dump(DumpArgs),
    /// Compacts a chain file in place (no server may have it open): keeps each live record's
    /// latest version and what its chain of trust needs, drops superseded versions and deleted
    /// records, and swaps the new file in crash-safely. Prints the sizes before and after.
    Compact(CompactArgs),
    /// Writes a new key pair: the private key to FILE (mode 0600) and the public key to
    /// FILE.pub. Signing keys (the default) are what `--root-key` and `--server-key` pin.
    Keygen(KeygenArgs),
}

/// Which chain a file holds and who is trusted in it.
#[derive(Debug, Args)]
struct ChainArgs {
    /// The chain's file (`<data dir>/<chain key>.log`).
    file: PathBuf,
    /// The chain key the file was written for (signatures cover it). Default: the file's name
    /// without `.log`.
    #[arg(long)]
    chain: Option<String>,
}

#[derive(Debug, Args)]
struct VerifyArgs {
    #[command(flatten)]
    chain: ChainArgs,
    #[command(flatten)]
    trust: TrustArgs,
}

#[derive(Debug, Args)]
struct CompactArgs {
    #[command(flatten)]
    chain: ChainArgs,
    #[command(flatten)]
    trust: TrustArgs,
}

/// Whom a chain file's checks trust.
#[derive(Debug, Args)]
struct TrustArgs {
    /// A public key file (`atedb keygen`) of a root key to pin: only what it (or whom it
    /// delegates to) signed is valid. Repeat for several. Without one, signatures are checked
    /// but anyone may have written the chain's top-level records.
    #[arg(long = "root-key", value_name = "FILE")]
    root_keys: Vec<PathBuf>,
    /// A public key file of a server whose vouches are trusted (centralized chains). Repeatable.
    #[arg(long = "server-key", value_name = "FILE")]
    server_keys: Vec<PathBuf>,
    /// The chain was written in the centralized integrity mode (servers vouch for writers).
    #[arg(long)]
    centralized: bool,
}

#[derive(Debug, Args)]
struct DumpArgs {
    #[command(flatten)]
    chain: ChainArgs,
    /// Print at most this many transactions.
    #[arg(long)]
    limit: Option<usize>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Size {
    #[value(name = "128")]
    Bit128,
    #[value(name = "192")]
    Bit192,
    #[value(name = "256")]
    Bit256,
}

#[derive(Debug, Args)]
struct KeygenArgs {
    /// Where to write the private key (never replaced); the public key goes to FILE.pub.
    file: PathBuf,
    /// Security level in bits (Falcon-512 for 128 and 192, Falcon-1024 for 256).
    #[arg(long, value_enum, default_value = "128")]
    size: Size,
    /// An NTRU encryption key pair (for readers) instead of a Falcon signing key pair.
    #[arg(long)]
    encrypt: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "atedb=info,ate_runtime=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Solo(a) => solo::run(a).await,
        Command::Verify(a) => inspect::verify(&a).await,
        Command::Dump(a) => inspect::dump(&a),
        Command::Compact(a) => inspect::compact(&a).await,
        Command::Keygen(a) => inspect::keygen(&a),
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("atedb: {e:#}");
            ExitCode::from(2)
        }
    }
}
