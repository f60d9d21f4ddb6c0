//! Derive macros of ATE. Use them through the `ate` crate, which documents them and provides
//! everything the generated code refers to (`ate::__private`).

mod ctxt;
mod dao;

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
