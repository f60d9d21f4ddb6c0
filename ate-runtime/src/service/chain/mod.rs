//! Services served from a chain (see "Serving from a chain" in the [service](super) docs).

mod caller;
mod callers;
pub mod layout;
mod serve;
#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use serve::{ServeOptions, Serving};

use super::{Invoker, ServiceTarget};
use crate::chain::Chain;
use crate::session::AteSession;

impl ServiceTarget for Chain {
    /// Calls the services of this chain as `session`: requests are signed with its signing
    /// keys (see \"Serving from a chain\" in the [service](super) docs).
    fn invoker(&self, session: &AteSession) -> Arc<dyn Invoker> {
        Arc::new(caller::ChainInvoker::new(self.clone(), session.clone()))
    }
}
