//! `atedb solo`: one server holding every chain.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use ate_runtime::chain::{AteConfig, CompactMode};
use ate_runtime::crypto::{KeyFile, KeySize, PublicSignKey};
use ate_runtime::net::host::{Server, ServerConfig};
use ate_runtime::net::ring::Ring;
use ate_runtime::net::{ServerIdentity, ServerTls};
use clap::Args;
use tokio::signal::unix::{SignalKind, signal};
use tracing::info;

#[derive(Debug, Args)]
pub(crate) struct SoloArgs {
    /// Where the chains' logs are kept (one file per chain, `<chain key>.log`); created if
    /// missing.
    #[arg(long, value_name = "DIR", default_value = "atedb-data")]
    data_dir: PathBuf,
    /// The address to listen on. Port 0 picks a free port (printed on start).
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:5000")]
    listen: SocketAddr,
    /// A root key to pin for every chain (a public key file from `atedb keygen`): only what
    /// it (or whom it delegates to) signs is accepted. Repeat for several.
    #[arg(long = "root-key", value_name = "FILE")]
    root_keys: Vec<PathBuf>,
    /// The server's identity key, which it proves itself with to clients: a private signing
    /// key file (one from `atedb keygen` serves), generated there on first start. Default:
    /// `<data dir>/server.identity`.
    #[arg(long, value_name = "FILE")]
    identity: Option<PathBuf>,
    /// Keep chains in memory only (nothing on disk; for tests and demos).
    #[arg(long)]
    memory: bool,
    /// A PEM certificate chain to serve `wss://` (with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Most connections at once from one client address (an IPv4 address, or an IPv6 /64
    /// prefix); more are closed as they arrive, before their handshake.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    max_connections_per_ip: u32,
    /// The base URL of a server of this cluster (`ws://host:port`), this one included; repeat
    /// for each. Chains are spread over them by rendezvous hashing of the chain key: a client
    /// asking this server for a chain another holds is redirected there. Needs --advertise.
    #[arg(long = "cluster", value_name = "URL", requires = "advertise")]
    cluster: Vec<String>,
    /// One DNS name whose every address is a server of the cluster (`host:port`; each
    /// address becomes `ws://address`), instead of --cluster. Needs --advertise.
    #[arg(
        long,
        value_name = "HOST:PORT",
        requires = "advertise",
        conflicts_with = "cluster"
    )]
    cluster_dns: Option<String>,
    /// This server's own URL among the cluster's (as --cluster or the DNS name lists it).
    #[arg(long, value_name = "URL")]
    advertise: Option<String>,
    /// Compact a chain's log when it is F times its size after its last compaction (or when
    /// it was opened), and at least 64 KiB larger. F below 1.1 counts as 1.1.
    #[arg(long, value_name = "F", conflicts_with = "compact_growth_size")]
    compact_growth_factor: Option<f64>,
    /// Compact a chain's log when it grew by BYTES since its last compaction (or its open).
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    compact_growth_size: Option<u64>,
    /// Compact a chain's log every SECS seconds when something was committed since its last
    /// compaction (with a growth flag: whichever comes first).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    compact_every: Option<u64>,
    /// Leave the transactions of the last SECS seconds as they were committed when compacting.
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    compact_tolerance: u64,
}

impl SoloArgs {
    /// The compaction mode the flags ask for (never, without any).
    fn compact_mode(&self) -> CompactMode {
        let timer = self.compact_every.map(Duration::from_secs);
        match (self.compact_growth_factor, self.compact_growth_size, timer) {
            (Some(growth), _, Some(timer)) => CompactMode::GrowthFactorOrTimer { growth, timer },
            (Some(f), _, None) => CompactMode::GrowthFactor(f),
            (None, Some(growth), Some(timer)) => CompactMode::GrowthSizeOrTimer { growth, timer },
            (None, Some(s), None) => CompactMode::GrowthSize(s),
            (None, None, Some(t)) => CompactMode::Timer(t),
            (None, None, None) => CompactMode::Never,
        }
    }
}

pub(crate) async fn run(args: SoloArgs) -> Result<ExitCode> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let identity_path = args
        .identity
        .clone()
        .unwrap_or_else(|| args.data_dir.join("server.identity"));
    let identity = ServerIdentity::load_or_generate(&identity_path, KeySize::Bit128)
        .with_context(|| format!("server identity {}", identity_path.display()))?;
    let mut config = ServerConfig::new(identity.clone());
    config.listen = args.listen;
    config.max_connections_per_ip = args.max_connections_per_ip as usize;
    config.chains = if args.memory {
        AteConfig::in_memory()
    } else {
        AteConfig::at(&args.data_dir)
    };
    config.chains.compact_mode = args.compact_mode();
    config.chains.compact_tolerance = Duration::from_secs(args.compact_tolerance);
    for path in &args.root_keys {
        config.root_keys.push(PublicSignKey::load(path)?);
    }
    let ring = if let Some(name) = &args.cluster_dns {
        let scheme = if args.tls_cert.is_some() { "wss" } else { "ws" };
        Some(
            Ring::resolve(name, scheme)
                .await
                .with_context(|| format!("resolving --cluster-dns {name}"))?,
        )
    } else if args.cluster.is_empty() {
        None
    } else {
        Some(Ring::new(args.cluster.iter().cloned()))
    };
    if let Some(ring) = ring {
        let me = args
            .advertise
            .clone()
            .context("--advertise names this server among the cluster's")?;
        let me = me.trim_end_matches('/').to_string();
        anyhow::ensure!(
            ring.servers().contains(&me),
            "--advertise {me} is not among the cluster's servers: {}",
            ring.servers().join(", ")
        );
        info!(servers = ?ring.servers(), %me, "chains spread over a cluster");
        config.ring = Some((ring, me));
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        config.accept.tls = Some(ServerTls::from_pem_files(cert, key)?);
    }
    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let server = Server::start(config).await?;
    let scheme = if args.tls_cert.is_some() { "wss" } else { "ws" };
    // On stdout, for scripts and tests: the address (a port 0 became a real one) and the
    // identity clients pin.
    println!("listening on {scheme}://{}", server.local_addr());
    println!("identity {}", identity.hash());
    info!(
        data = %args.data_dir.display(),
        memory = args.memory,
        roots = args.root_keys.len(),
        "atedb solo started"
    );
    tokio::select! {
        _ = term.recv() => info!("SIGTERM: stopping"),
        _ = int.recv() => info!("SIGINT: stopping"),
    }
    server.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
