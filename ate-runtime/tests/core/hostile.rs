//! R12: resource exhaustion. Crafted logs and transactions claim counts and lengths far above
//! the bytes they hold, and thousands of signatures; each is refused with a typed error, and the
//! memory the process that read them (a child, so nothing else runs in it) allocated at its peak
//! while reading each one, and its peak resident memory, stay within a bound set by the bytes it
//! was given, not by what they claim.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use ate_runtime::chain::{ChainRegistry, CommitError, OpenError};
use ate_runtime::crypto::{KeySize, PrivateSignKey};
use ate_runtime::event::{BodyFormat, EventDraft, TxTrailer};
use ate_runtime::log::MemoryStore;
use ate_runtime::prelude::*;
use ate_runtime::trust::TrustError;
use ate_runtime::unstable::codec::encode_transaction;
use ate_runtime::unstable::log::{FILE_HEADER_LEN, encode_frames};
use ate_runtime::unstable::meta::{
    MAX_SIGNATURES, TRAILER_KEYS, TRAILER_SIGNATURE, TxSealer, event_hashes,
};

use crate::child;

/// The system allocator, counting the bytes allocated now and at the peak (for this binary's
/// children to measure what reading an input allocates: reserved capacity counts, touched or
/// not, which resident memory alone would miss).
struct Counting;

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are added.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is the system allocator's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) };
        ALLOCATED.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Bytes allocated at the peak since the last call, beyond what was allocated at that call.
fn peak_allocated_since(mark: &mut usize) -> usize {
    let peak = PEAK.swap(ALLOCATED.load(Ordering::Relaxed), Ordering::Relaxed);
    let grown = peak.saturating_sub(*mark);
    *mark = ALLOCATED.load(Ordering::Relaxed);
    grown
}

/// The peak resident memory of this process so far, in KiB (`VmHWM`).
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmHWM line")
}

/// The file header of a log (from an empty store opened once).
fn header() -> Vec<u8> {
    let store = MemoryStore::new();
    ate_runtime::unstable::log::RedoLog::open(
        store.clone(),
        ate_runtime::log::RecoveryMode::default(),
        1 << 20,
    )
    .expect("a new log");
    store.bytes()[..FILE_HEADER_LEN].to_vec()
}

/// A log holding `payloads` as frames.
fn log_of(payloads: &[&[u8]]) -> MemoryStore {
    let mut bytes = header();
    bytes.extend_from_slice(&encode_frames(payloads));
    MemoryStore::from_bytes(bytes)
}

fn draft(n: u64) -> EventDraft {
    EventDraft {
        key: PrimaryKey::from(u128::from(n) + 1),
        timestamp_ms: 1,
        tombstone: false,
        parent: None,
        type_name: "hostile.Item".into(),
        format: BodyFormat::MessagePack,
        meta: Vec::new(),
        body: Some(vec![n as u8; 16].into()),
    }
}

/// The crafted logs: a name, the payload, and whether it must be refused as malformed (decode)
/// or invalid (trust).
fn crafted(
    root: &PrivateSignKey,
    chain_hash: &ate_runtime::crypto::Hash,
) -> Vec<(&'static str, Vec<u8>)> {
    let mib = vec![0u8; 1 << 20];
    let mut out = Vec::new();

    // An event count of u32::MAX ahead of a megabyte of zeros.
    let mut p = vec![1u8];
    p.extend_from_slice(&1u64.to_le_bytes());
    p.extend_from_slice(&u32::MAX.to_le_bytes());
    p.extend_from_slice(&mib);
    out.push(("event count u32::MAX", p));

    // As many events as the bytes could hold at the smallest size, each claiming 4 GiB.
    let mut p = vec![1u8];
    p.extend_from_slice(&1u64.to_le_bytes());
    p.extend_from_slice(&((1u32 << 20) / 4).to_le_bytes());
    for _ in 0..(1 << 18) {
        p.extend_from_slice(&u32::MAX.to_le_bytes());
    }
    out.push(("event lengths of 4 GiB", p));

    // One event claiming 65535 metadata entries of 4 GiB each.
    let one = encode_transaction(1, &[draft(0)], &[]);
    let mut p = one.clone();
    // The metadata count sits right after the type name and body format.
    let name = b"hostile.Item";
    let at = p
        .windows(name.len())
        .position(|w| w == name)
        .expect("the type name")
        + name.len()
        + 1;
    p[at..at + 2].copy_from_slice(&u16::MAX.to_le_bytes());
    out.push(("metadata count 65535", p));

    // A keys trailer whose MessagePack claims 2^32 - 1 entries.
    let mut keys = vec![0x91, 0xdd];
    keys.extend_from_slice(&u32::MAX.to_le_bytes());
    keys.extend_from_slice(&mib[..1024]);
    let p = encode_transaction(
        1,
        &[draft(0)],
        &[TxTrailer {
            tag: TRAILER_KEYS,
            value: keys.into(),
        }],
    );
    out.push(("keys trailer claiming 2^32 entries", p));

    // Thousands of signature trailers (copies of a valid one), and more signers than allowed.
    let evs = [draft(0)];
    let signed = TxSealer {
        signers: vec![(root, vec![0])],
        ..TxSealer::default()
    }
    .seal(chain_hash, &event_hashes(&evs))
    .expect("signed");
    let many: Vec<TxTrailer> = std::iter::repeat_n(signed[0].clone(), 5000).collect();
    out.push(("5000 signatures", encode_transaction(1, &evs, &many)));
    out.push((
        "more signers than allowed",
        encode_transaction(1, &evs, &too_many_signers(chain_hash)),
    ));

    // A signature whose coverage claims 2^32 - 1 indexes: `covers` ([0]) comes right before the
    // digest (a 32-byte bin).
    let mut sig = signed[0].value.to_vec();
    let covers_at = sig
        .windows(4)
        .position(|w| w == [0x91, 0x00, 0xc4, 0x20])
        .expect("covers [0], then the digest");
    sig.splice(covers_at..covers_at + 2, [0xdd, 0xff, 0xff, 0xff, 0xff]);
    sig.extend_from_slice(&mib[..4096]);
    let p = encode_transaction(
        1,
        &evs,
        &[TxTrailer {
            tag: TRAILER_SIGNATURE,
            value: sig.into(),
        }],
    );
    out.push(("coverage claiming 2^32 indexes", p));
    out
}

/// The trailers of one event signed by more keys than a transaction may carry.
fn too_many_signers(chain_hash: &ate_runtime::crypto::Hash) -> Vec<TxTrailer> {
    let keys: Vec<PrivateSignKey> = (0..MAX_SIGNATURES + 8)
        .map(|_| PrivateSignKey::generate(KeySize::Bit128))
        .collect();
    TxSealer {
        signers: keys.iter().map(|k| (k, vec![0])).collect(),
        ..TxSealer::default()
    }
    .seal(chain_hash, &event_hashes(&[draft(0)]))
    .expect("signed")
}

/// Runs in a child process: opens each crafted log and commits thousands of signatures, then
/// prints each outcome and the peak memory before and after.
pub async fn child_hostile_inputs() {
    let root = PrivateSignKey::generate(KeySize::Bit128);
    let reg: ChainRegistry = ChainBuilder::new(&AteConfig::in_memory())
        .await
        .add_root_public_key(&root.as_public_key())
        .build();
    let key = ChainKey::from("hostile");
    let chain_hash = ate_runtime::unstable::meta::chain_hash(key.as_str());
    let inputs = crafted(&root, &chain_hash);
    let bytes: usize = inputs.iter().map(|(_, p)| p.len()).sum();
    let stores: Vec<(&str, MemoryStore)> = inputs
        .iter()
        .map(|(name, p)| (*name, log_of(&[p])))
        .collect();
    drop(inputs);
    println!("bytes {bytes}");
    println!("before {}", peak_rss_kib());
    let mut mark = 0;
    for (name, store) in stores {
        let size = store.bytes().len();
        peak_allocated_since(&mut mark);
        let opened = reg.open_store(&key, Box::new(store));
        let allocated = peak_allocated_since(&mut mark);
        println!("allocated {name}: {allocated} for {size}");
        let outcome = match opened {
            Ok(_) => "opened".to_string(),
            Err(OpenError::Malformed { .. }) => "malformed".to_string(),
            Err(OpenError::Invalid { source, .. }) => format!("invalid {source:?}"),
            Err(other) => format!("other {other}"),
        };
        println!("open {name}: {outcome}");
    }
    // More signatures than allowed, handed to a chain.
    let chain = reg
        .open_store(&key, Box::new(MemoryStore::new()))
        .expect("open");
    let outcome = match chain
        .commit_transaction(vec![draft(0)], too_many_signers(&chain_hash))
        .await
    {
        Err(CommitError::Trust(TrustError::TooManySignatures { max })) => format!("refused {max}"),
        other => format!("other {other:?}"),
    };
    println!("commit too many signers: {outcome}");
    println!("after {}", peak_rss_kib());
}

#[test]
fn claims_far_above_the_bytes_sent_cost_memory_in_proportion_to_the_bytes() {
    let (mut proc, out) = child::spawn("hostile", &[]);
    let status = proc.wait().expect("the child exits");
    let (lines, err) = out.finish();
    assert!(status.success(), "child failed: {err}");
    let value = |key: &str| -> u64 {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(key).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("no {key} line in {lines:?}"))
    };
    let (bytes, before, after) = (value("bytes "), value("before "), value("after "));
    for l in lines.iter().filter(|l| l.starts_with("open ")) {
        eprintln!("R12 {l}");
        assert!(
            l.ends_with("malformed") || l.contains("invalid"),
            "a crafted log must be refused: {l}"
        );
    }
    let outcome = |name: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(&format!("open {name}")))
            .expect("outcome")
            .clone()
    };
    assert!(outcome("5000 signatures").contains("DuplicateSigner"));
    assert!(outcome("more signers").contains("TooManySignatures"));
    assert!(outcome("coverage claiming").contains("MalformedMetadata"));
    assert!(
        lines
            .iter()
            .any(|l| l == &format!("commit too many signers: refused {MAX_SIGNATURES}")),
        "{lines:?}"
    );
    // What reading each input allocated at its peak: a copy of the log and what decoding it
    // indexes, in proportion to its bytes, whatever it claims.
    for l in lines.iter().filter(|l| l.starts_with("allocated ")) {
        eprintln!("R12 {l}");
        let (_, figures) = l.rsplit_once(": ").expect("figures");
        let (allocated, size) = figures.split_once(" for ").expect("two figures");
        let (allocated, size): (usize, usize) = (
            allocated.parse().expect("bytes"),
            size.parse().expect("bytes"),
        );
        assert!(
            allocated <= 4 * size + (1 << 20),
            "reading {size} bytes allocated {allocated} at the peak: {l}"
        );
    }
    // Peak memory grows with the bytes read (each log is held while it is opened, and decoding
    // may index it), not with what they claim (gigabytes).
    let grown_kib = after.saturating_sub(before);
    let bound_kib = 8 * bytes / 1024 + 32 * 1024;
    eprintln!(
        "R12: {bytes} bytes of crafted input, peak memory grew by {grown_kib} KiB (bound {bound_kib} KiB)"
    );
    assert!(
        grown_kib <= bound_kib,
        "peak memory grew by {grown_kib} KiB for {bytes} bytes of input"
    );
}
