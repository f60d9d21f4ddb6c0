//! Derive macros of ATE. Use them through the `ate` crate, which documents them and provides
//! everything the generated code refers to (`ate::__private`).
//!
//! `#[derive(Dao)]` is in `dao/`, `#[service]` in `service/`; both gather their errors in the
//! context of `ctxt.rs`, so every mistake shows at once, at its own tokens.

mod ctxt;
mod dao;
mod service;

use proc_macro::TokenStream;
use syn::{DeriveInput, parse_macro_input};

/// Makes a struct with named fields a typed model of ATE. (A complete, compiled example is in
/// the `ate` crate's documentation.)
///
/// ```text
/// use ate::prelude::*;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Dao, Clone, Serialize, Deserialize)]
/// #[dao(name = "bank.Account", read = "inherit", write = "inherit")]
/// struct Account {
///     #[dao(index, unique)]
///     number: String,
///     owner: DaoRef<Person>,
///     transactions: DaoVec<Transaction>,
///     balance: i64,
/// }
///
/// let account = Account::find_by_number(&dio, "42").await?.expect("no such account");
/// for t in account.transactions.iter(&dio).await? { /* ... */ }
/// account.transactions.push(&mut dio, Transaction { amount: 10 })?;
/// let owner = account.owner.load(&dio).await?;
/// ```
///
/// # Attributes
///
/// On the struct, `#[dao(...)]` takes:
/// - `name = "..."`: the stable type name recorded in every event of the type and checked on
///   load (default: the struct's name, without its module path). Set it before the first
///   record is written: renaming the struct then changes nothing on disk. Two types of one
///   program with one name make every chain open fail with `OpenError::TypeNameClash`.
/// - `read = "..."`, `write = "..."`: the default rules of new records, `"everyone"`,
///   `"inherit"` (default: the parent's rule, up to the chain's root) or `"nobody"` (for
///   `write`: the record is final once committed). A record's rules can still be changed at
///   run time with `Dao::auth_mut`.
///
/// On a field:
/// - `index`: the view keeps a secondary index on the field, updated on every commit and
///   rebuilt when the chain is opened. The field holds a string (`String`, `Box<str>`,
///   `char`), an integer, a `bool`, or an `Option` of one (`ate::schema::IndexValue`), and
///   stays in its place among the struct's serialized fields (serde attributes that move it,
///   like `flatten` or `skip_serializing_if` before it, are refused). The Dio records the
///   struct's indexes in the chain with its first record, so every process that opens the
///   chain, linking the struct or not, enforces and builds them. Not allowed on `DaoVec` and
///   `DaoRef` fields.
/// - `unique` (with `index`): a commit that would give two live records of the type the same
///   value fails with `CommitError::UniqueViolation` and writes nothing.
///
/// # What is generated
///
/// - `impl DaoType for T` with `TYPE_NAME`, and a registration the runtime finds by type: the
///   name, the access defaults, the indexes, and a function that tells each `DaoVec` field which
///   record owns it, so that `.iter(&dio)` and `.push(&mut dio, child)` work on any value stored
///   or loaded through a `Dio`.
/// - For each `#[dao(index)]` field `f: F`, with the struct's visibility:
///   `T::find_by_f(dio: &Dio, value: &Q) -> Result<Vec<Dao<T>>, DioError>` (every record with
///   that value, in key order), or `-> Result<Option<Dao<T>>, DioError>` for a unique index,
///   where `F: Borrow<Q>` (a `String` field is searched with a `&str`). Both see the changes
///   staged in `dio`. A method of your own named `find_by_f` clashes with it (rustc reports
///   the duplicate at the field).
///
/// Relations are recognised by how the field's type is written: the last path segment is
/// `DaoVec<_>` or `DaoRef<_>` (`ate::DaoVec<Note>` works, a type alias does not).
///
/// Enums, unions, tuple and unit structs and generic structs are refused with an error that
/// says so; every mistake in the attributes is reported at once, at its own tokens.
#[proc_macro_derive(Dao, attributes(dao))]
pub fn derive_dao(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    dao::derive(&input).into()
}

/// Makes a trait a service: each method is a command, answered by any type that implements
/// the trait and called through a generated client. (A complete, compiled example is in the
/// `ate` crate's documentation.)
///
/// ```text
/// use ate::prelude::*;
///
/// #[service]
/// pub trait Bank {
///     /// Adds to an account.
///     async fn deposit(&self, ctx: &InvocationContext, request: Deposit)
///         -> Result<Balance, BankError>;
///     /// Takes from an account.
///     async fn withdraw(&self, ctx: &InvocationContext, request: Withdraw)
///         -> Result<Balance, BankError>;
/// }
///
/// services.add_service(BankService::new(MyBank::default()))?;
/// let bank = BankClient::new(&services, &session);
/// let balance = bank.deposit(Deposit { account: "42".into(), amount: 10 }).await?;
/// ```
///
/// # Commands
///
/// Every method of the trait is a command:
/// `async fn name(&self, ctx: &InvocationContext, request: Req) -> Result<Reply, Error>`.
/// - The request type has a stable type name (`#[derive(Dao)]` or `ate::stable_name!`): a
///   request is matched to its command by that name, so each command takes a type of its own,
///   with a name of its own.
/// - The request, the reply and the error are serde types (`Serialize + DeserializeOwned`,
///   `Send`, `'static`): they travel as MessagePack, and the caller gets the handler's error
///   back typed, as `InvokeError::Handler`.
/// - `ctx` says who called, as the transport verified it (`InvocationContext`).
///
/// Anything else is refused at its tokens: a method without `&self`, not `async`, with a body,
/// generic, with a pattern argument, without `ctx` or with another type for it, with a request
/// taken by reference, returning something else than `Result<_, _>` written out; a generic
/// trait, items other than methods, and commands named like the client's own methods (`new`,
/// `from_invoker`, `with_timeout`).
///
/// # What is generated
///
/// For `trait T`, with the trait's visibility:
/// - the trait itself, each command declared as
///   `fn name(&self, ctx: &InvocationContext, request: Req) -> impl Future<Output = Result<Reply,
///   Error>> + Send`. Implement it with `async fn`s; their futures must be `Send`, so that the
///   transport runs them on any task.
/// - `TService<H>`: serves a handler `H: T + Send + Sync + 'static` (`TService::new(handler)`);
///   it implements `ServiceDispatch`, which transports call with a request's stable type name
///   and bytes.
/// - `TClient`: `TClient::new(&target, &session)` (a chain, or `LocalServices`), and one
///   `async fn name(&self, request: Req) -> Result<Reply, InvokeError<Error>>` per command;
///   `with_timeout` sets how long it waits for a reply (30 seconds by default).
#[proc_macro_attribute]
pub fn service(args: TokenStream, input: TokenStream) -> TokenStream {
    service::attribute(args.into(), input.into()).into()
}
