//! The seeds of the fuzz targets (`fuzz/corpus/<target>/seed-*`), cut from the samples:
//! whole logs for `frame`, payloads for `transaction`, events for `event`, and the trailer
//! sections of payloads for `trailers`.
//!
//! Written only when `ATE_FUZZ_SEEDS` is set (the samples hold fresh keys and nonces, so each
//! run writes different bytes):
//!
//! ```text
//! ATE_FUZZ_SEEDS=1 cargo test -p ate-runtime --test core fuzz_seeds
//! ```

use std::path::Path;

use ate_runtime::unstable::codec::decode_transaction;
use bytes::Bytes;

use super::samples::{Sample, samples};

/// Seeds stay small: the fuzzers mutate them, and the repository keeps them.
const MAX_SEED: usize = 8 << 10;

/// Named seeds of one target.
type Seeds = Vec<(String, Vec<u8>)>;

/// The seeds of each target, without duplicates.
fn seeds(samples: &[Sample]) -> Vec<(&'static str, Seeds)> {
    let mut frame = Vec::new();
    let mut transaction = Vec::new();
    let mut event = Vec::new();
    let mut trailers = Vec::new();
    for s in samples {
        frame.push((s.name.to_string(), s.log.clone()));
        for (i, payload) in s.payloads.iter().enumerate() {
            transaction.push((format!("{}-{i}", s.name), payload.clone()));
            let tx = decode_transaction(Bytes::copy_from_slice(payload)).expect("a sample");
            for (j, ev) in tx.events.iter().enumerate() {
                event.push((format!("{}-{i}-{j}", s.name), ev.raw.to_vec()));
            }
            let len = 2 + tx.trailers.iter().map(|t| 6 + t.value.len()).sum::<usize>();
            trailers.push((
                format!("{}-{i}", s.name),
                payload[payload.len() - len..].to_vec(),
            ));
        }
    }
    // Recovery: a log that is only its header, one with preallocated space after its frames,
    // and one whose last frame was torn by a crash.
    let plain = &samples[0];
    frame.push(("header-only".into(), plain.log[..16].to_vec()));
    let mut preallocated = plain.log.clone();
    preallocated.resize(plain.log.len() + 64, 0);
    frame.push(("preallocated".into(), preallocated));
    let last = plain.payloads.last().expect("frames").len();
    frame.push((
        "torn".into(),
        plain.log[..plain.log.len() - last / 2].to_vec(),
    ));
    let mut all = vec![
        ("frame", frame),
        ("transaction", transaction),
        ("event", event),
        ("trailers", trailers),
    ];
    for (_, seeds) in &mut all {
        let mut seen = std::collections::HashSet::new();
        seeds.retain(|(_, bytes)| seen.insert(bytes.clone()));
    }
    all
}

#[tokio::test]
async fn fuzz_seeds() {
    let all = seeds(samples().await);
    for (target, seeds) in &all {
        assert!(!seeds.is_empty(), "{target}");
        for (name, bytes) in seeds {
            assert!(
                bytes.len() <= MAX_SEED,
                "{target}/{name}: {} bytes",
                bytes.len()
            );
        }
    }
    if std::env::var_os("ATE_FUZZ_SEEDS").is_none() {
        return;
    }
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    for (target, seeds) in all {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        for old in std::fs::read_dir(&dir).unwrap() {
            let old = old.unwrap().path();
            if old
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("seed-")
            {
                std::fs::remove_file(old).unwrap();
            }
        }
        for (name, bytes) in &seeds {
            std::fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
        }
        let total: usize = seeds.iter().map(|(_, b)| b.len()).sum();
        println!("{target}: {} seeds, {total} bytes", seeds.len());
    }
}
