//! The offline commands: `verify`, `dump`, `keygen`. They read a chain file into memory and
//! never write to it.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use ate_runtime::chain::{AteConfig, ChainBuilder, ChainKey, ChainRegistry, OpenError};
use ate_runtime::crypto::{
    Hash, KeyFile, KeySize, PrivateEncryptKey, PrivateSignKey, PublicSignKey,
};
use ate_runtime::log::{LogError, MemoryStore, RecoveryMode};
use ate_runtime::trust::IntegrityMode;
use ate_runtime::unstable::checkpoint::Checkpoint;
use ate_runtime::unstable::codec::TransactionRef;
use ate_runtime::unstable::log::{FORMAT_VERSION, LogRecord, RedoLog};
use ate_runtime::unstable::meta::{EventTrust, proofs_from};
use indicatif::{ProgressBar, ProgressStyle};

use crate::{ChainArgs, CompactArgs, DumpArgs, KeygenArgs, Size, TrustArgs, VerifyArgs};

/// The chain key `args` names, and the file's bytes.
fn read(args: &ChainArgs) -> Result<(ChainKey, Vec<u8>)> {
    let key = match &args.chain {
        Some(k) => k.clone(),
        None => args
            .file
            .file_name()
            .and_then(|n| n.to_str())
            .map(|n| n.strip_suffix(".log").unwrap_or(n).to_string())
            .context("cannot tell the chain key from the file name; pass --chain")?,
    };
    let key = ChainKey::from(key);
    key.validate().with_context(|| format!("chain key {key}"))?;
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    Ok((key, bytes))
}

/// The log's transactions, frame checks only (every damage is an error, the tail included).
/// Returns them and where the log ends (preallocated zeros may follow).
fn frames(bytes: &[u8]) -> Result<(Vec<LogRecord>, u64), LogError> {
    let store = MemoryStore::from_bytes(bytes.to_vec());
    let (_, records, report) =
        RedoLog::open(store, RecoveryMode::AbsoluteConsistency, u32::MAX as usize)?;
    Ok((records, report.end))
}

/// What a pass over the decoded transactions counts.
#[derive(Debug, Default)]
struct Counts {
    transactions: u64,
    events: u64,
    tombstones: u64,
    encrypted: u64,
    vouched: u64,
    signers: HashSet<Hash>,
    types: HashSet<String>,
}

pub(crate) async fn verify(args: &VerifyArgs) -> Result<ExitCode> {
    let (key, bytes) = read(&args.chain)?;
    let file = args.chain.file.display();
    let (records, end) = match frames(&bytes) {
        Ok(r) => r,
        Err(e) => {
            println!("{file}: INVALID: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    let mut counts = Counts::default();
    let checkpoint = records
        .first()
        .filter(|r| Checkpoint::is_checkpoint(&r.payload))
        .and_then(|r| Checkpoint::decode(&r.payload).ok());
    for rec in records.iter().skip(usize::from(checkpoint.is_some())) {
        let tx = match TransactionRef::decode_stored(&rec.payload) {
            Ok(tx) => tx,
            Err(e) => {
                println!(
                    "{file}: INVALID at offset {}: transaction {} does not decode: {e}",
                    rec.offset,
                    counts.transactions + 1
                );
                return Ok(ExitCode::from(1));
            }
        };
        count(&tx, &mut counts);
    }

    let mut conf = AteConfig::in_memory();
    conf.recovery_mode = RecoveryMode::AbsoluteConsistency;
    let (registry, pinned) = trusting(&args.trust, &conf).await?;
    match registry.open_store(&key, Box::new(MemoryStore::from_bytes(bytes.clone()))) {
        Ok(chain) => {
            println!("{file}: valid (chain {key}, format {FORMAT_VERSION})");
            if let Some(c) = &checkpoint {
                println!(
                    "  compacted through transaction {}: {} of them kept, {} deleted records' keys retired; their signatures checked again",
                    c.upto,
                    c.kept,
                    c.retired.len()
                );
            }
            println!(
                "  {} transactions, {} events ({} deletions, {} encrypted), {} records live, {end} bytes of log",
                counts.transactions,
                counts.events,
                counts.tombstones,
                counts.encrypted,
                chain.len(),
            );
            println!(
                "  {} signing keys, {} transactions vouched by a server, {} types",
                counts.signers.len(),
                counts.vouched,
                counts.types.len()
            );
            if pinned.is_empty() {
                println!(
                    "  no root key pinned: hashes and signatures checked, but anyone may have written its top-level records"
                );
            } else {
                let ids: Vec<String> = pinned.iter().map(ToString::to_string).collect();
                println!("  root keys pinned: {}", ids.join(", "));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(OpenError::Invalid {
            offset,
            seq,
            source,
            ..
        }) => {
            println!("{file}: INVALID at offset {offset}: transaction {seq}: {source}");
            println!(
                "  the {} transactions before it are valid",
                seq.saturating_sub(1)
            );
            Ok(ExitCode::from(1))
        }
        Err(e) => {
            println!("{file}: INVALID: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

/// A registry trusting what `args` names; and the root keys pinned.
async fn trusting(args: &TrustArgs, conf: &AteConfig) -> Result<(ChainRegistry, Vec<Hash>)> {
    let mut builder = ChainBuilder::new(conf).await;
    if args.centralized {
        builder = builder.integrity(IntegrityMode::Centralized);
    }
    let mut pinned = Vec::new();
    for path in &args.root_keys {
        let k = PublicSignKey::load(path)?;
        pinned.push(k.hash());
        builder = builder.add_root_public_key(&k);
    }
    for path in &args.server_keys {
        builder = builder.add_server_public_key(&PublicSignKey::load(path)?);
    }
    Ok((builder.build(), pinned))
}

pub(crate) async fn compact(args: &CompactArgs) -> Result<ExitCode> {
    let (key, _) = read(&args.chain)?;
    let file = args.chain.file.display().to_string();
    let dir = args
        .chain
        .file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let expected = dir.join(format!("{key}.log"));
    if expected.file_name() != args.chain.file.file_name() {
        bail!(
            "{file}: a chain {key} lives in {}; pass the chain's own file",
            expected.display()
        );
    }
    let mut conf = AteConfig::at(dir);
    conf.recovery_mode = RecoveryMode::AbsoluteConsistency;
    let (registry, _) = trusting(&args.trust, &conf).await?;
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar.set_message(format!("opening {file} and checking every transaction"));
    let chain = match registry.open(&key).await {
        Ok(c) => c,
        Err(e) => {
            bar.finish_and_clear();
            println!("{file}: not compacted: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    let live = chain.len();
    bar.set_message(format!(
        "compacting {} transactions ({live} records live)",
        chain.last_seq()
    ));
    let report = match chain.compact().await {
        Ok(r) => r,
        Err(e) => {
            bar.finish_and_clear();
            println!("{file}: not compacted (the file is as it was): {e}");
            return Ok(ExitCode::from(1));
        }
    };
    bar.finish_and_clear();
    let pct = |after: u64, before: u64| {
        if before == 0 {
            100.0
        } else {
            after as f64 * 100.0 / before as f64
        }
    };
    println!(
        "{file}: compacted (chain {key}, through transaction {})",
        report.upto
    );
    println!(
        "  bytes:        {:>12} -> {:>12} ({:.1} %)",
        report.bytes_before,
        report.bytes_after,
        pct(report.bytes_after, report.bytes_before)
    );
    println!(
        "  transactions: {:>12} -> {:>12}",
        report.transactions_before, report.transactions_after
    );
    println!(
        "  events:       {:>12} -> {:>12} ({:.1} %)",
        report.events_before,
        report.events_after,
        pct(report.events_after, report.events_before)
    );
    println!(
        "  records live: {live:>12}; deleted records retired: {}",
        report.retired
    );
    Ok(ExitCode::SUCCESS)
}

fn count(tx: &TransactionRef<'_>, c: &mut Counts) {
    c.transactions += 1;
    for ev in &tx.events {
        c.events += 1;
        c.tombstones += u64::from(ev.tombstone);
        if !c.types.contains(ev.type_name) {
            c.types.insert(ev.type_name.to_string());
        }
        if let Ok(t) = EventTrust::from_entries(ev.meta.iter()) {
            c.encrypted += u64::from(t.confidentiality.is_some());
        }
    }
    if let Ok(p) = proofs_from(tx.trailers.iter()) {
        for s in &p.signatures {
            c.signers.insert(s.public_key.hash());
        }
        c.vouched += u64::from(p.vouch.is_some());
    }
}

pub(crate) fn dump(args: &DumpArgs) -> Result<ExitCode> {
    let (key, bytes) = read(&args.chain)?;
    let (records, _) = frames(&bytes).context("reading the log's frames")?;
    println!("chain {key}: {} transactions", records.len());
    let limit = args.limit.unwrap_or(usize::MAX);
    let mut out = String::new();
    let checkpoint = records
        .first()
        .filter(|r| Checkpoint::is_checkpoint(&r.payload))
        .and_then(|r| Checkpoint::decode(&r.payload).ok());
    if let Some(c) = &checkpoint {
        println!(
            "compacted through transaction {}: {} kept, {} deleted records' keys retired",
            c.upto,
            c.kept,
            c.retired.len()
        );
    }
    for rec in records
        .iter()
        .skip(usize::from(checkpoint.is_some()))
        .take(limit)
    {
        out.clear();
        match TransactionRef::decode_stored(&rec.payload) {
            Ok(tx) => describe(&tx, rec.offset, &mut out),
            Err(e) => {
                let _ = writeln!(out, "@{}: does not decode: {e}", rec.offset);
            }
        }
        print!("{out}");
    }
    Ok(ExitCode::SUCCESS)
}

/// One transaction, a line for it and one per event.
fn describe(tx: &TransactionRef<'_>, offset: u64, out: &mut String) {
    let _ = write!(out, "#{} @{offset}: {} events", tx.seq, tx.events.len());
    match proofs_from(tx.trailers.iter()) {
        Ok(p) => {
            for s in &p.signatures {
                let _ = write!(
                    out,
                    ", signed by {} (covers {})",
                    s.public_key.hash(),
                    s.covers.len()
                );
            }
            if let Some(v) = &p.vouch {
                let _ = write!(
                    out,
                    ", vouched by server {} for {} writers",
                    v.server.hash(),
                    v.writers.len()
                );
            }
            if let Some(k) = &p.keys {
                let _ = write!(out, ", {} wrapped keys", k.keys.len());
            }
        }
        Err(e) => {
            let _ = write!(out, ", trailers refused: {e}");
        }
    }
    out.push('\n');
    for ev in &tx.events {
        let _ = write!(
            out,
            "  {} {} {}",
            if ev.tombstone { "delete" } else { "put   " },
            ev.key,
            ev.type_name
        );
        if let Some(p) = &ev.parent {
            let _ = write!(out, " under {}/{}", p.parent, p.collection);
        }
        let trust = EventTrust::from_entries(ev.meta.iter());
        match &trust {
            Ok(t) => {
                if let Some(prev) = t.previous {
                    let _ = write!(out, " replaces #{prev}");
                }
                if let Some(a) = &t.auth {
                    let _ = write!(out, " read={:?} write={:?}", a.read, a.write);
                }
            }
            Err(e) => {
                let _ = write!(out, " metadata refused: {e}");
            }
        }
        let encrypted = trust
            .as_ref()
            .map(|t| t.confidentiality.is_some())
            .unwrap_or(true);
        match ev.body {
            None => {}
            Some(b) if encrypted => {
                let _ = write!(out, " body: encrypted, {} bytes", b.len());
            }
            Some(b) => {
                let mut reader = b;
                match rmpv::decode::read_value_ref(&mut reader) {
                    Ok(v) => {
                        let mut shown = v.to_string();
                        if shown.len() > 200 {
                            let mut cut = 200;
                            while !shown.is_char_boundary(cut) {
                                cut -= 1;
                            }
                            shown.truncate(cut);
                            shown.push('…');
                        }
                        let _ = write!(out, " body: {shown}");
                    }
                    Err(_) => {
                        let _ = write!(out, " body: {} bytes (not MessagePack)", b.len());
                    }
                }
            }
        }
        out.push('\n');
    }
}

pub(crate) fn keygen(args: &KeygenArgs) -> Result<ExitCode> {
    let size = match args.size {
        Size::Bit128 => KeySize::Bit128,
        Size::Bit192 => KeySize::Bit192,
        Size::Bit256 => KeySize::Bit256,
    };
    let public = public_path(&args.file);
    if public.exists() {
        bail!("{} exists; not replacing it", public.display());
    }
    if args.encrypt {
        let key = PrivateEncryptKey::generate(size);
        key.save(&args.file)?;
        key.as_public_key().save(&public)?;
        println!("{} public key {}", key.algorithm(), key.public_key().hash());
    } else {
        let key = PrivateSignKey::generate(size);
        key.save(&args.file)?;
        key.as_public_key().save(&public)?;
        println!("{} public key {}", key.algorithm(), key.public_key().hash());
    }
    println!(
        "private key: {} (keep it secret)\npublic key:  {}",
        args.file.display(),
        public.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `FILE.pub` beside `file`.
fn public_path(file: &Path) -> std::path::PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".pub");
    name.into()
}
