//! Derive macros of ATE. Use them through the `ate` crate.

use proc_macro::TokenStream;

/// Derives a typed DAO for a model struct (see the `ate` crate).
#[proc_macro_derive(Dao, attributes(dao))]
pub fn derive_dao(input: TokenStream) -> TokenStream {
    let _ = input;
    TokenStream::new()
}
