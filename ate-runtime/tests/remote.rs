//! Remote chains end to end over loopback: `net::host::Server` and
//! `ChainRegistry::open_url` (every server is started by the test, on port 0).

mod remote {
    pub mod common;
    mod hostile;
    mod live;
    mod shard;
}
