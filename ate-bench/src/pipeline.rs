//! Pipeline efficiency (P9): the primitive costs of a signed, encrypted commit, measured in the
//! same run, and what they add up to per unit of work.
//!
//! Efficiency = measured throughput ÷ (1 / sum of the primitive costs per unit), i.e. measured
//! units per second × the seconds the primitives alone need per unit. 1.0 means the pipeline
//! costs nothing beyond its primitives, run one after the other on one core.
//!
//! What the sum counts, per event (for one event per transaction that is per transaction):
//! - MessagePack encode of the value (`rmp_serde::to_vec`, once);
//! - AES-256-GCM encryption of its encoded body (about 1 KiB);
//! - SHA3-256 of the event's canonical encoding, at its measured size (body, header, metadata
//!   with the rules, the key entry id and the nonce): one hash at a time for a one-event transaction, and
//!   for larger ones the per-message cost of hashing them in batches (`Hash::of_many`, several
//!   messages per SIMD pass), which is what the Dio and replay do;
//! - and once per transaction, divided by the events in it: one Falcon-512 signature and one
//!   verification (the committing Dio checks each signature it makes) over the signed
//!   message of that many event hashes; for the NTRU reader one NTRU encapsulation (the data
//!   key is fresh per transaction and reader); and the write of the transaction's measured frame
//!   bytes into preallocated file space followed by `fdatasync` (the log preallocates, so that is
//!   what a commit pays).
//!
//! Not counted: NTRU decapsulation (only a reader pays it, once per transaction per session; it
//! is measured and printed), the AES wrap of a data key for a symmetric reader (one 32-byte
//! AES-GCM), framing and CRC, encoding and decoding the transaction, validation of rules and
//! versions, the view update, and task scheduling: that is the overhead the ratio shows.

use std::fs::OpenOptions;
use std::hint::black_box;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Instant;

use ate::crypto::{EncryptKey, Hash};
use ate::unstable::meta::{SignerClaim, TxClaims, chain_hash, signature_message, tx_digest};

use crate::data;
use crate::trust::{Setup, Shape, TrustKeys};
use crate::util::Res;

/// Messages per batch when timing batched hashing.
const BATCH: usize = 64;

/// Iterations of each primitive per sample.
#[derive(Debug, Clone, Copy)]
pub struct Iters {
    pub fast: usize,
    pub sign: usize,
    pub kem: usize,
    /// Writes + fdatasync of a single-event transaction (larger ones do a tenth of these, at
    /// least 5).
    pub fsync: usize,
}

/// One sample of every primitive for one transaction shape, in microseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Costs {
    pub rmp_us: f64,
    pub aes_us: f64,
    pub sha3_us: f64,
    /// SHA3-256 of one event when hashed with 63 others (`Hash::of_many`), per event.
    pub sha3_batch_us: f64,
    pub sign_us: f64,
    pub verify_us: f64,
    pub encaps_us: f64,
    pub decaps_us: f64,
    pub fsync_us: f64,
}

fn per_op_us(iters: usize, mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..iters {
        f();
    }
    t.elapsed().as_secs_f64() * 1e6 / iters as f64
}

/// Measures every primitive for `shape` (its event and frame sizes, its events per
/// transaction).
pub fn measure(dir: &Path, keys: &TrustKeys, shape: &Shape, it: Iters) -> Res<Costs> {
    let value = data::values(1, 1024, 71).remove(0);
    let body = data::encode(&value);
    let event = data::values(1, shape.event_bytes, 72).remove(0).data;
    let data_key = EncryptKey::generate();
    let aad = vec![7u8; 48];

    let rmp_us = per_op_us(it.fast, || {
        black_box(data::encode(black_box(&value)));
    });
    let aes_us = per_op_us(it.fast, || {
        black_box(data_key.encrypt(&aad, black_box(&body)));
    });
    let sha3_us = per_op_us(it.fast, || {
        black_box(Hash::of(black_box(&event)));
    });
    let batch: Vec<&[u8]> = vec![&event[..]; BATCH];
    let sha3_batch_us = per_op_us(it.fast.div_ceil(BATCH), || {
        black_box(Hash::of_many(black_box(&batch)));
    }) / BATCH as f64;

    // The signed message of a transaction of `per_tx` events, as the trust layer builds it.
    let covers: Vec<u32> = (0..shape.per_tx as u32).collect();
    let public = keys.root.as_public_key();
    let msg = signed_digest(keys, &covers);
    let sig = keys.root.sign(&msg);
    let sign_us = per_op_us(it.sign, || {
        black_box(keys.root.sign(black_box(&msg)));
    });
    let verify_us = per_op_us(it.kem, || {
        public
            .verify(black_box(&msg), &sig)
            .expect("a fresh signature verifies");
    });

    let (_, ct) = keys.ntru_public.encapsulate();
    let encaps_us = per_op_us(it.kem, || {
        black_box(keys.ntru_public.encapsulate());
    });
    let decaps_us = per_op_us(it.kem, || {
        black_box(keys.ntru.decapsulate(black_box(&ct)).expect("decapsulates"));
    });

    let n = if shape.per_tx == 1 {
        it.fsync
    } else {
        (it.fsync / 10).max(5)
    };
    let fsync_us = write_fsync_us(dir, shape.tx_bytes, n)?;
    Ok(Costs {
        rmp_us,
        aes_us,
        sha3_us,
        sha3_batch_us,
        sign_us,
        verify_us,
        encaps_us,
        decaps_us,
        fsync_us,
    })
}

/// Mean microseconds to write `bytes` at the end of what was written so far inside a file
/// already filled with zeros and synced, then `fdatasync` (the log's commit on preallocated
/// space).
pub fn write_fsync_us(dir: &Path, bytes: usize, n: usize) -> Res<f64> {
    let f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(dir.join("pipeline.bin"))?;
    f.write_all_at(&vec![0u8; n * bytes], 0)?;
    f.sync_all()?;
    let block = data::values(1, bytes, 73).remove(0).data;
    let mut total = 0.0;
    for i in 0..n {
        let t = Instant::now();
        f.write_all_at(&block, (i * bytes) as u64)?;
        f.sync_data()?;
        total += t.elapsed().as_secs_f64();
    }
    drop(f);
    std::fs::remove_file(dir.join("pipeline.bin"))?;
    Ok(total * 1e6 / n as f64)
}

impl Costs {
    /// Microseconds the primitives need per event of `shape` (see the module documentation).
    pub fn sum_us(&self, shape: &Shape) -> f64 {
        let kem = if shape.setup == Setup::Ntru {
            self.encaps_us
        } else {
            0.0
        };
        let per_tx = self.sign_us + self.verify_us + kem + self.fsync_us;
        self.rmp_us + self.aes_us + self.sha3_event_us(shape) + per_tx / shape.per_tx as f64
    }

    /// SHA3-256 of one event of `shape`: alone for a one-event transaction, batched otherwise.
    pub fn sha3_event_us(&self, shape: &Shape) -> f64 {
        if shape.per_tx > 1 {
            self.sha3_batch_us
        } else {
            self.sha3_us
        }
    }

    /// Microseconds of the primitives of a full-verify replay per event: the event's SHA3-256,
    /// and one Falcon verification per transaction.
    pub fn replay_sum_us(&self, shape: &Shape) -> f64 {
        self.sha3_event_us(shape) + self.verify_us / shape.per_tx as f64
    }
}

/// What [`Costs::sum_us`] counts for `shape`, in words, for the output.
pub fn counted(shape: &Shape) -> String {
    let per = if shape.per_tx == 1 {
        "per transaction (1 event)".to_string()
    } else {
        format!("per event ({} per transaction)", shape.per_tx)
    };
    let kem = if shape.setup == Setup::Ntru {
        " + NTRU encapsulate"
    } else {
        ""
    };
    let share = if shape.per_tx == 1 {
        String::new()
    } else {
        format!(" (÷ {})", shape.per_tx)
    };
    let batched = if shape.per_tx > 1 { " (batched)" } else { "" };
    format!(
        "sum {per} = rmp encode + AES-256-GCM of the {} B body + SHA3-256{batched} of the {} B \
         event + [Falcon sign + Falcon verify{kem} + write {} B to preallocated space + \
         fdatasync]{share}",
        shape.body_bytes, shape.event_bytes, shape.tx_bytes
    )
}

/// Signed one-event transactions per second that Falcon alone allows on this machine: every
/// core signs and verifies (as a committing Dio does) the signed message of a one-event
/// transaction for `millis`, all at once. The ceiling of 2s: concurrent signed commits share
/// the cores the same way (and on SMT siblings two signatures at once are each slower than
/// one alone).
pub fn sign_verify_ceiling(keys: &TrustKeys, millis: u64) -> f64 {
    let public = keys.root.as_public_key();
    let msg = signed_digest(keys, &[0]);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let until = Instant::now() + std::time::Duration::from_millis(millis);
    let start = Instant::now();
    let done: usize = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut n = 0usize;
                    while Instant::now() < until {
                        let sig = keys.root.sign(&msg);
                        public
                            .verify(&msg, &sig)
                            .expect("a fresh signature verifies");
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a signing thread does not panic"))
            .sum()
    });
    done as f64 / start.elapsed().as_secs_f64()
}

/// The bytes the root key signs for a transaction whose events `covers` (all of them) it signs.
fn signed_digest(keys: &TrustKeys, covers: &[u32]) -> Vec<u8> {
    let hashes: Vec<Hash> = covers.iter().map(|i| Hash::of(&i.to_le_bytes())).collect();
    let claims = TxClaims {
        signers: vec![SignerClaim {
            algorithm: keys.root.algorithm().as_u8(),
            signer: keys.root.hash(),
            covers,
        }],
        ..TxClaims::default()
    };
    signature_message(&tx_digest(&chain_hash("trust"), &hashes, &claims))
}
