//! Integration tests of the embedded core, as one binary (one link on slow CI machines).
//!
//! - `api`: the public API end to end: reopen, updates, tombstones, children, references, typed
//!   errors, chain keys, memory-only chains, concurrency, locking.
//! - `compact`: compaction keeps the view (also after a reopen and a second compaction),
//!   shrinks the log, keeps commits made during it, retires deleted keys, and a compacted log
//!   changed behind the chain's back is refused with a typed error.
//! - `compact_mode`: the tolerance window, and chains compacting by themselves on growth in
//!   bytes, a growth factor and a timer.
//! - `compact_crash` (R4, R5): a compaction whose swap fails at each step (the chain goes on
//!   with its old log), every state a crash during a file's swap leaves on disk (each opens to
//!   the same view), a child process compacting while it commits killed with SIGKILL, and
//!   flipped bytes of a compacted log.
//! - `compact_model`: random signed workloads (indexes, encrypted records, three signers,
//!   changes of a record's writer) compacted and reopened at random points against a model
//!   and against the log before each compaction; writes by each signer after it.
//! - `cancel`: commit futures dropped before and after the writer took their transaction.
//! - `crash` (R1): a child process committing in a loop is killed with SIGKILL at random
//!   moments; every acknowledged transaction survives and none is half there.
//! - `powercut` (R2, R3): a store that loses or tears unsynced bytes, and fails every I/O call in
//!   turn; typed errors, a poisoned chain, and a view equal to the acknowledged commits.
//! - `corruption` (R5): flipped bytes all over a chain file, torn tails, foreign files, newer
//!   versions.
//! - `hostile` (R12): crafted logs and transactions claiming counts and lengths far above their
//!   bytes, and thousands of signatures: typed errors, and peak memory bounded by the bytes.
//! - `model`: random operation sequences against a `BTreeMap` model, on both backends.
//! - `mutation` (R8): mutants of valid transactions (bit flips, boundary bytes, rewritten length
//!   fields, inserted, deleted and duplicated runs, splices) through the decoders, the trust
//!   checks and a chain open: no panic, canonical when decoded, most reach the trust checks.
//! - `writer`: group commit made deterministic: oversize transactions refused without poisoning,
//!   and the cause of a failed group reported to each of its transactions.
//!
//! `samples` makes small valid logs through the real write path (signed, encrypted for an AES and
//! an NTRU reader, vouched, with children and deletions), for `mutation` and for `fuzz_seeds`,
//! which writes the fuzz targets' seeds (`fuzz/corpus/`) when `ATE_FUZZ_SEEDS` is set.
//!
//! `child` holds the entry point the crash and lock tests start this binary with (a test that
//! returns at once unless the variable the parent sets is present).

#[path = "core/api.rs"]
mod api;
#[path = "core/cancel.rs"]
mod cancel;
#[path = "core/child.rs"]
mod child;
#[path = "core/common.rs"]
mod common;
#[path = "core/compact.rs"]
mod compact;
#[path = "core/compact_crash.rs"]
mod compact_crash;
#[path = "core/compact_mode.rs"]
mod compact_mode;
#[path = "core/compact_model.rs"]
mod compact_model;
#[path = "core/corruption.rs"]
mod corruption;
#[path = "core/crash.rs"]
mod crash;
#[path = "core/fuzz_seeds.rs"]
mod fuzz_seeds;
#[path = "core/hostile.rs"]
mod hostile;
#[path = "core/model.rs"]
mod model;
#[path = "core/mutation.rs"]
mod mutation;
#[path = "core/powercut.rs"]
mod powercut;
#[path = "core/samples.rs"]
mod samples;
#[path = "core/writer.rs"]
mod writer;
