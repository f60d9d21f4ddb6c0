//! Remote chains end to end over loopback: `net::host::Server` and
//! `ChainRegistry::open_url` (every server is started by the test, on port 0). `killed_sync`
//! (R13) starts this binary again as a client (`child`) and kills it during its sync;
//! `killed_consumer` (R9) kills queue consumers the same way; `compacted`: clients across a
//! server's compaction; `compacting_server`: a server compacting by itself under writers, and cut off from them
//! (stopped and started again) while it does;
//! `killed_compact` (R13 across compaction) kills a replica while it rebuilds from a
//! compacted server.

mod remote {
    mod admission;
    mod child;
    pub mod common;
    mod compacted;
    mod compacting_server;
    mod hostile;
    mod killed_compact;
    mod killed_consumer;
    mod killed_sync;
    mod live;
    mod shard;
}
