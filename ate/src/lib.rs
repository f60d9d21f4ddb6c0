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
//!
//! Traits marked [`#[service]`](macro@service) are typed APIs: a handler answers each command,
//! and a generated client calls it wherever the handler runs (here, in the same process):
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use ate::prelude::*;
//!
//! #[derive(Serialize, Deserialize)]
//! struct Deposit {
//!     amount: u64,
//! }
//! ate::stable_name!(Deposit = "bank.Deposit");
//!
//! #[derive(Debug, PartialEq, Serialize, Deserialize)]
//! enum BankError {
//!     TooLarge,
//! }
//!
//! #[service]
//! trait Bank {
//!     /// Takes a deposit; the new balance.
//!     async fn deposit(&self, ctx: &InvocationContext, request: Deposit)
//!     -> Result<u64, BankError>;
//! }
//!
//! struct Vault;
//!
//! impl Bank for Vault {
//!     async fn deposit(&self, _: &InvocationContext, request: Deposit) -> Result<u64, BankError> {
//!         if request.amount > 1_000 {
//!             return Err(BankError::TooLarge);
//!         }
//!         Ok(request.amount)
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), AteError> {
//! let services = LocalServices::new();
//! services.add_service(BankService::new(Vault))?;
//! let bank = BankClient::new(&services, &AteSession::default());
//! assert_eq!(bank.deposit(Deposit { amount: 10 }).await.ok(), Some(10));
//! let refused = bank.deposit(Deposit { amount: 10_000 }).await;
//! assert!(matches!(refused, Err(InvokeError::Handler(BankError::TooLarge))));
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

pub use ate_derive::{Dao, service};
pub use ate_runtime::*;

/// Everything a program needs: `use ate::prelude::*;`.
pub mod prelude {
    pub use crate::stable_name;
    pub use ate_derive::{Dao, service};
    pub use ate_runtime::prelude::*;
    pub use ate_runtime::schema::DaoType;
}

/// Gives a plain serde type (one that does not derive [`Dao`](derive@Dao)) an explicit stable
/// type name: `ate::stable_name!(World = "universe.World");`.
///
/// Every record is stored with its type's stable name, and loading it as a type with another
/// name is `DioError::WrongType`. A plain type's default name is its Rust name without module
/// paths (`hello_world::World` is `World`, `Vec<my::Point>` is `Vec<Point>`), so moving it to
/// another module or crate changes nothing, but renaming it does. Give it a name of its own
/// before its first record is written, or keep its old name after a rename:
///
/// ```
/// use ate::prelude::*;
/// use serde::{Deserialize, Serialize};
///
/// /// Called `Earth` when its first records were written.
/// #[derive(Clone, Serialize, Deserialize)]
/// struct Planet {
///     population: u64,
/// }
///
/// ate::stable_name!(Planet = "Earth");
///
/// assert_eq!(Planet::TYPE_NAME, "Earth");
/// assert_eq!(ate::schema::type_name_of::<Planet>(), "Earth");
/// ```
///
/// The name may be any non-blank string of at most 1024 bytes (checked at compile time); two
/// types with one name are refused when a chain is opened (`OpenError::TypeNameClash`). The
/// macro implements [`DaoType`](prelude::DaoType) for the type, so it goes in the crate that
/// defines the type, once per type, and not on a type deriving `Dao` (which takes
/// `#[dao(name = "...")]` instead): the compiler refuses each of those mistakes.
#[macro_export]
macro_rules! stable_name {
    ($ty:ty = $name:expr $(,)?) => {
        const _: () = {
            const __ATE_NAME: &'static str = $name;
            const _: () = $crate::__private::assert_valid_name(__ATE_NAME);
            #[automatically_derived]
            impl $crate::__private::DaoType for $ty {
                const TYPE_NAME: &'static str = __ATE_NAME;
            }
            $crate::__private::inventory::submit! {
                $crate::__private::TypeRegistration::named::<$ty>(__ATE_NAME)
            }
        };
    };
    ($($other:tt)*) => {
        ::core::compile_error! {
            "expected a type and its stable name: `ate::stable_name!(World = \"universe.World\");`"
        }
    };
}

/// Items the derive macros' generated code refers to. Not a public API: it may change in any
/// release.
#[doc(hidden)]
pub mod __private {
    pub use ate_runtime::dio::{Dao, DaoRef, DaoVec, Dio, DioError};
    pub use ate_runtime::event::PrimaryKey;
    pub use ate_runtime::schema::{
        AccessDefault, DaoType, IndexKey, IndexSpec, IndexValue, TypeRegistration,
        assert_valid_name, extract_with, index_key,
    };
    pub use ate_runtime::service::{
        BoxFuture, DispatchError, InvocationContext, InvokeError, Invoker, ServiceClient,
        ServiceDispatch, ServiceTarget, distinct_names, run_command, unknown_request,
    };
    pub use ate_runtime::session::AteSession;
    pub use inventory;
    pub use rmp_serde;
    pub use serde;
    pub use std::any::{Any, TypeId, type_name};
    pub use std::borrow::Borrow;
    pub use std::future::Future;
    pub use std::marker::{Send, Sized, Sync};
    pub use std::option::Option;
    pub use std::result::Result;
    pub use std::sync::Arc;
    pub use std::time::Duration;
    pub use std::vec::Vec;
}
