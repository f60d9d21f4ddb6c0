//! ATE: a distributed, immutable, encrypted data store with an in-memory materialized view.
//!
//! Every write is an event appended to a chain's redo log; the log replays into a materialized
//! view that programs read at memory speed through a [`Dio`] and typed
//! [`Dao`](struct@Dao)s.
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use ate::prelude::*;
//!
//! #[derive(Clone, Serialize, Deserialize)]
//! struct World {
//!     commandment: String,
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), AteError> {
//! let conf = AteConfig::in_memory();
//! let builder = ChainBuilder::new(&conf).await.build();
//! let chain = builder.open(&ChainKey::from("universe")).await?;
//! let session = AteSession::default();
//! let mut dio = chain.dio(&session).await;
//! let key = dio.store(World { commandment: "Hello".to_string() })?.key().clone();
//! dio.commit().await?;
//! assert_eq!(dio.load::<World>(&key).await?.commandment, "Hello");
//! # Ok(())
//! # }
//! ```
//!
//! Models deriving [`Dao`](derive@Dao) get typed relations, indexed finders and access defaults:
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use ate::prelude::*;
//!
//! #[derive(Dao, Clone, Serialize, Deserialize)]
//! #[dao(name = "bank.Person", read = "everyone")]
//! struct Person {
//!     name: String,
//! }
//!
//! #[derive(Dao, Clone, Serialize, Deserialize)]
//! #[dao(name = "bank.Transaction", write = "nobody")]
//! struct Transaction {
//!     amount: i64,
//! }
//!
//! #[derive(Dao, Clone, Serialize, Deserialize)]
//! #[dao(name = "bank.Account")]
//! struct Account {
//!     #[dao(index, unique)]
//!     number: String,
//!     owner: DaoRef<Person>,
//!     transactions: DaoVec<Transaction>,
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), AteError> {
//! # let chain = ChainBuilder::new(&AteConfig::in_memory()).await.build()
//! #     .open(&ChainKey::from("bank")).await?;
//! let mut dio = chain.dio(&AteSession::default()).await;
//! let ada = dio.store(Person { name: "Ada".into() })?;
//! let account = dio.store(Account {
//!     number: "42".into(),
//!     owner: DaoRef::from(&ada),
//!     transactions: DaoVec::new(),
//! })?;
//! account.transactions.push(&mut dio, Transaction { amount: 10 })?;
//! dio.commit().await?;
//!
//! let found = Account::find_by_number(&dio, "42").await?.expect("indexed");
//! assert_eq!(found.owner.load(&dio).await?.name, "Ada");
//! assert_eq!(found.transactions.iter(&dio).await?[0].amount, 10);
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

pub use ate_derive::Dao;
pub use ate_runtime::*;

/// Everything a program needs: `use ate::prelude::*;`.
pub mod prelude {
    pub use ate_derive::Dao;
    pub use ate_runtime::prelude::*;
    pub use ate_runtime::schema::DaoType;
}

/// Items the derive macros' generated code refers to. Not a public API: it may change in any
/// release.
#[doc(hidden)]
pub mod __private {
    pub use ate_runtime::dio::{Dao, DaoRef, DaoVec, Dio, DioError};
    pub use ate_runtime::event::PrimaryKey;
    pub use ate_runtime::schema::{
        AccessDefault, DaoType, IndexKey, IndexSpec, TypeRegistration, extract_with, index_key,
    };
    pub use inventory;
    pub use rmp_serde;
    pub use serde;
    pub use std::any::{Any, TypeId};
    pub use std::borrow::Borrow;
    pub use std::marker::Sized;
    pub use std::option::Option;
    pub use std::result::Result;
    pub use std::vec::Vec;
}
