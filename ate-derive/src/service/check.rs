//! Rules between the commands, checked once the trait is read.

use quote::ToTokens;

use super::ast::Service;
use crate::ctxt::Ctxt;

/// The methods of the generated client besides the commands; a command cannot take their names.
pub const CLIENT_METHODS: [&str; 3] = ["new", "from_invoker", "with_timeout"];

/// Reports every rule the commands break together.
pub fn check(cx: &Ctxt, service: &Service<'_>) {
    check_names(cx, service);
    check_requests(cx, service);
}

/// A command's client method must not clash with the client's own methods.
fn check_names(cx: &Ctxt, service: &Service<'_>) {
    let client = format!("{}Client", service.name());
    for command in &service.commands {
        let name = command.name();
        if CLIENT_METHODS.contains(&name.as_str()) {
            cx.error_spanned_by(
                command.ident,
                format!(
                    "a command cannot be named `{name}`: the generated `{client}` has a \
                     `{client}::{name}` of its own (its methods are {})",
                    CLIENT_METHODS.map(|m| format!("`{m}`")).join(", ")
                ),
            );
        }
    }
}

/// A request is dispatched by its type, so two commands cannot take the same one. (Two types
/// with one stable name are caught by the compiler, in a constant the expansion checks.)
fn check_requests(cx: &Ctxt, service: &Service<'_>) {
    let mut seen: Vec<(String, String)> = Vec::new();
    for command in &service.commands {
        let Some(request) = &command.request else {
            continue;
        };
        let written = request.ty.to_token_stream().to_string().replace(' ', "");
        match seen.iter().find(|(ty, _)| *ty == written) {
            Some((_, first)) => cx.error_spanned_by(
                request.ty,
                format!(
                    "`{first}` takes requests of this type already: a request is dispatched by \
                     its type, so each command takes a type of its own"
                ),
            ),
            None => seen.push((written, command.name())),
        }
    }
}
