//! A service declared, implemented, served in process and called, under `#![deny(warnings)]`:
//! requests named by `#[derive(Dao)]` and by `ate::stable_name!`, a handler's typed error,
//! and the client's futures sent to other tasks.

#![deny(warnings)]

use std::sync::atomic::{AtomicU64, Ordering};

use ate::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Dao, Clone, Serialize, Deserialize)]
#[dao(name = "counter.Add")]
struct Add {
    by: u64,
}

#[derive(Clone, Serialize, Deserialize)]
struct Read;
ate::stable_name!(Read = "counter.Read");

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum CounterError {
    Overflow,
}

#[service]
trait Counter {
    async fn add(&self, ctx: &InvocationContext, request: Add) -> Result<u64, CounterError>;
    async fn read(&self, _: &ate::service::InvocationContext, _: Read)
    -> std::result::Result<u64, CounterError>;
}

#[derive(Default)]
struct Memory(AtomicU64);

impl Counter for Memory {
    async fn add(&self, _ctx: &InvocationContext, request: Add) -> Result<u64, CounterError> {
        let now = self.0.load(Ordering::SeqCst);
        let next = now.checked_add(request.by).ok_or(CounterError::Overflow)?;
        self.0.store(next, Ordering::SeqCst);
        Ok(next)
    }

    async fn read(&self, _: &InvocationContext, _: Read) -> Result<u64, CounterError> {
        Ok(self.0.load(Ordering::SeqCst))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let services = LocalServices::new();
    services.add_service(CounterService::new(Memory::default())).unwrap();
    let counter = CounterClient::new(&services, &AteSession::default())
        .with_timeout(std::time::Duration::from_secs(60));
    assert_eq!(counter.add(Add { by: 2 }).await.unwrap(), 2);
    let other = counter.clone();
    let spawned = tokio::spawn(async move { other.add(Add { by: 3 }).await });
    assert_eq!(spawned.await.unwrap().unwrap(), 5);
    assert_eq!(counter.read(Read).await.unwrap(), 5);
    let overflow = counter.add(Add { by: u64::MAX }).await;
    assert!(matches!(overflow, Err(InvokeError::Handler(CounterError::Overflow))));
}
