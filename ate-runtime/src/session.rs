//! Sessions: the keys and identity a [`Dio`](crate::Dio) reads and writes with.

/// Who is reading and writing. `AteSession::default()` holds no keys, which is all an open
/// (unsigned, unencrypted) chain such as the Quick Start's needs.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct AteSession {}

impl AteSession {
    /// A session with no keys.
    pub fn new() -> Self {
        Self::default()
    }
}
