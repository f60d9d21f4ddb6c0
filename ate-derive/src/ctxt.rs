//! Collects the errors found while reading the input, so the user sees all of them at once.

use std::cell::RefCell;

use quote::ToTokens;

/// Gathers `syn::Error`s; [`Ctxt::check`] merges them into one.
///
/// Shared by reference while the input is read (the parsing closures of `syn` only get `&`).
#[derive(Default)]
pub struct Ctxt {
    errors: RefCell<Vec<syn::Error>>,
}

impl Ctxt {
    pub fn new() -> Self {
        Ctxt::default()
    }

    /// Records an error that points at `tokens`.
    pub fn error_spanned_by<T: ToTokens, M: std::fmt::Display>(&self, tokens: T, message: M) {
        self.errors
            .borrow_mut()
            .push(syn::Error::new_spanned(tokens.into_token_stream(), message));
    }

    /// Records an error built elsewhere (e.g. by `syn` while parsing).
    pub fn syn_error(&self, error: syn::Error) {
        self.errors.borrow_mut().push(error);
    }

    /// All the errors, merged into one in the order they were found; `Ok` when there were none.
    pub fn check(self) -> syn::Result<()> {
        let mut errors = self.errors.into_inner().into_iter();
        let Some(mut combined) = errors.next() else {
            return Ok(());
        };
        for e in errors {
            combined.combine(e);
        }
        Err(combined)
    }
}
