//! Integration tests of the engine's replication seams, as one binary.
//!
//! - `stream`: the commit stream (history then live, lagging subscribers, the boundary under
//!   concurrent commits, the end when the chain closes) and `Chain::read_from` after a reopen.
//! - `apply`: `Chain::apply_replicated` refuses tampered payloads, wrong numbers and forged
//!   vouches without appending anything; batches apply up to the first failure.
//! - `upstream`: a source chain and replicas connected in the process (an `Upstream` that calls
//!   `commit_sealed` on the source, a task that pumps the source's stream into the replica):
//!   replicas see each other's writes (view and indexes), the source's refusals come back as the
//!   errors a local commit gets, a replica reopened from its file resumes at its position, sealed
//!   transactions, and the Dio's cancel safety on a replica.

#[path = "replica/apply.rs"]
mod apply;
#[path = "replica/common.rs"]
mod common;
#[path = "replica/stream.rs"]
mod stream;
#[path = "replica/upstream.rs"]
mod upstream;
