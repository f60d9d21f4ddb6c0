//! A typed view of the input of `#[service]`: the trait and its commands.
//!
//! Reading never stops at the first mistake: every rule a method breaks is recorded in the
//! [`Ctxt`], at its own tokens, and what can still be read is kept, so that the stand-ins
//! emitted next to the errors match the user's code.

use syn::{
    FnArg, GenericArgument, Ident, ItemTrait, Pat, PathArguments, ReturnType, Signature, TraitItem,
    TraitItemFn, Type,
};

use crate::ctxt::Ctxt;

/// The shape of a command, said in the errors about it.
pub const COMMAND: &str =
    "`async fn name(&self, ctx: &InvocationContext, request: Request) -> Result<Reply, Error>`";

/// The input trait.
pub struct Service<'a> {
    pub item: &'a ItemTrait,
    pub ident: &'a Ident,
    pub commands: Vec<Command<'a>>,
}

/// One method of the trait.
pub struct Command<'a> {
    pub method: &'a TraitItemFn,
    pub ident: &'a Ident,
    /// The request argument, when the method has one (right or wrong).
    pub request: Option<Request<'a>>,
    /// `Result<Reply, Error>`, when the method returns one.
    pub output: Option<Output<'a>>,
}

/// The argument after `ctx`.
pub struct Request<'a> {
    /// Its name, when it is a plain identifier.
    pub ident: Option<&'a Ident>,
    pub ty: &'a Type,
}

/// The two halves of a command's `Result`.
pub struct Output<'a> {
    pub reply: &'a Type,
    pub error: &'a Type,
}

impl<'a> Service<'a> {
    /// Reads the trait; every rule it breaks is reported in `cx`.
    pub fn from_ast(cx: &Ctxt, item: &'a ItemTrait) -> Service<'a> {
        check_trait(cx, item);
        let commands = item
            .items
            .iter()
            .filter_map(|trait_item| match trait_item {
                TraitItem::Fn(method) => Some(Command::from_ast(cx, method)),
                other => {
                    cx.error_spanned_by(
                        other,
                        format!(
                            "a service trait holds only its commands, each {COMMAND}; declare \
                             other items outside it"
                        ),
                    );
                    None
                }
            })
            .collect();
        Service {
            item,
            ident: &item.ident,
            commands,
        }
    }

    /// The trait's name without `r#`, for generated names and messages.
    pub fn name(&self) -> String {
        syn::ext::IdentExt::unraw(self.ident).to_string()
    }
}

fn check_trait(cx: &Ctxt, item: &ItemTrait) {
    if !item.generics.params.is_empty() {
        cx.error_spanned_by(
            &item.generics,
            "a service trait cannot be generic: requests are dispatched by their stable type \
             names, so each command names concrete types",
        );
    }
    if let Some(clause) = &item.generics.where_clause {
        cx.error_spanned_by(
            clause,
            "a service trait cannot have a `where` clause: the generated service requires \
             `Send + Sync + 'static` handlers itself",
        );
    }
    if let Some(unsafety) = &item.unsafety {
        cx.error_spanned_by(unsafety, "a service trait cannot be `unsafe`");
    }
    if let Some(auto) = &item.auto_token {
        cx.error_spanned_by(auto, "a service trait cannot be an `auto` trait");
    }
}

impl<'a> Command<'a> {
    fn from_ast(cx: &Ctxt, method: &'a TraitItemFn) -> Command<'a> {
        let sig = &method.sig;
        if let Some(body) = &method.default {
            cx.error_spanned_by(
                body,
                "a command has no body in the service trait: write it in the handler's `impl`",
            );
        }
        check_signature(cx, sig);
        let request = read_inputs(cx, sig);
        let output = read_output(cx, sig);
        Command {
            method,
            ident: &sig.ident,
            request,
            output,
        }
    }

    /// The method's name without `r#`.
    pub fn name(&self) -> String {
        syn::ext::IdentExt::unraw(self.ident).to_string()
    }
}

/// `async`, no generics, nothing `const`, `unsafe`, `extern` or variadic.
fn check_signature(cx: &Ctxt, sig: &Signature) {
    if sig.asyncness.is_none() {
        cx.error_spanned_by(
            sig.fn_token,
            format!("a command is an `async fn`: {COMMAND}"),
        );
    }
    if let Some(constness) = &sig.constness {
        cx.error_spanned_by(constness, "a command cannot be `const`");
    }
    if let Some(unsafety) = &sig.unsafety {
        cx.error_spanned_by(unsafety, "a command cannot be `unsafe`");
    }
    if let Some(abi) = &sig.abi {
        cx.error_spanned_by(abi, "a command cannot have an `extern` ABI");
    }
    if let Some(variadic) = &sig.variadic {
        cx.error_spanned_by(variadic, "a command cannot be variadic");
    }
    if !sig.generics.params.is_empty() {
        cx.error_spanned_by(
            &sig.generics,
            "a command cannot be generic: requests are dispatched by their stable type names, \
             so each command takes and returns concrete types",
        );
    }
    if let Some(clause) = &sig.generics.where_clause {
        cx.error_spanned_by(clause, "a command cannot have a `where` clause");
    }
}

/// Checks `&self`, `ctx: &InvocationContext` and the request, and returns the request.
fn read_inputs<'a>(cx: &Ctxt, sig: &'a Signature) -> Option<Request<'a>> {
    let mut inputs = sig.inputs.iter();
    let mut first = inputs.next();
    match first {
        Some(FnArg::Receiver(receiver)) => {
            let shared = receiver
                .reference
                .as_ref()
                .is_some_and(|(_, l)| l.is_none())
                && receiver.mutability.is_none()
                && receiver.colon_token.is_none();
            if !shared {
                cx.error_spanned_by(
                    receiver,
                    "a command takes `&self`: one handler answers concurrent requests, so keep \
                     its mutable state behind a lock or in a chain",
                );
            }
            first = inputs.next();
        }
        _ => cx.syn_error(syn::Error::new(
            sig.paren_token.span.open(),
            format!("a command takes `&self` first: {COMMAND}"),
        )),
    }
    // `first` is now the argument after `&self`.
    let (ctx, request) = match (first, inputs.next()) {
        (Some(ctx), Some(request)) => (Some(ctx), Some(request)),
        (Some(only), None) => {
            if matches!(only, FnArg::Typed(t) if is_context(&t.ty)) {
                cx.syn_error(syn::Error::new(
                    sig.paren_token.span.close(),
                    format!("a command takes a request after `ctx`: {COMMAND}"),
                ));
                (Some(only), None)
            } else {
                cx.error_spanned_by(
                    only,
                    format!(
                        "a command takes `ctx: &InvocationContext` before its request: {COMMAND}"
                    ),
                );
                (None, Some(only))
            }
        }
        (None, _) => {
            cx.syn_error(syn::Error::new(
                sig.paren_token.span.close(),
                format!("a command takes a context and a request: {COMMAND}"),
            ));
            (None, None)
        }
    };
    for extra in inputs {
        cx.error_spanned_by(
            extra,
            "a command takes one request: gather its arguments in one request type",
        );
    }
    if let Some(ctx) = ctx {
        read_context(cx, ctx);
    }
    request.and_then(|arg| read_request(cx, arg))
}

fn read_context(cx: &Ctxt, arg: &FnArg) {
    let FnArg::Typed(typed) = arg else {
        cx.error_spanned_by(arg, "`self` comes first, once");
        return;
    };
    check_pattern(cx, &typed.pat);
    if !is_context(&typed.ty) {
        cx.error_spanned_by(
            &typed.ty,
            "the context of a command is `&InvocationContext` (`ate::service::InvocationContext`): \
             who called, as the transport verified it",
        );
    }
}

fn read_request<'a>(cx: &Ctxt, arg: &'a FnArg) -> Option<Request<'a>> {
    let FnArg::Typed(typed) = arg else {
        cx.error_spanned_by(arg, "`self` comes first, once");
        return None;
    };
    let ident = check_pattern(cx, &typed.pat);
    match ungroup(&typed.ty) {
        Type::Reference(reference) => cx.error_spanned_by(
            reference.and_token,
            "a command takes its request by value: it is decoded from the bytes received",
        ),
        Type::ImplTrait(_) => cx.error_spanned_by(
            &typed.ty,
            "a command cannot be generic: its request is one concrete type with a stable name",
        ),
        _ => {}
    }
    Some(Request {
        ident,
        ty: &typed.ty,
    })
}

/// A plain name or `_`; the name, if any.
fn check_pattern<'a>(cx: &Ctxt, pat: &'a Pat) -> Option<&'a Ident> {
    match pat {
        Pat::Ident(p) if p.by_ref.is_none() && p.mutability.is_none() && p.subpat.is_none() => {
            Some(&p.ident)
        }
        Pat::Wild(_) => None,
        _ => {
            cx.error_spanned_by(
                pat,
                "a command's arguments are plain names (`request: Deposit`): destructure the \
                 request in the handler's body",
            );
            None
        }
    }
}

/// `&InvocationContext`, however qualified.
fn is_context(ty: &Type) -> bool {
    let Type::Reference(reference) = ungroup(ty) else {
        return false;
    };
    if reference.mutability.is_some() || reference.lifetime.is_some() {
        return false;
    }
    let Type::Path(path) = ungroup(&reference.elem) else {
        return false;
    };
    path.qself.is_none()
        && path.path.segments.last().is_some_and(|last| {
            last.ident == "InvocationContext" && matches!(last.arguments, PathArguments::None)
        })
}

fn read_output<'a>(cx: &Ctxt, sig: &'a Signature) -> Option<Output<'a>> {
    let ReturnType::Type(_, ty) = &sig.output else {
        cx.syn_error(syn::Error::new(
            sig.paren_token.span.close(),
            "a command returns `Result<Reply, Error>`: the reply, or the error its caller gets \
             back as `InvokeError::Handler`",
        ));
        return None;
    };
    let output = result_halves(ty);
    if output.is_none() {
        cx.error_spanned_by(
            ty,
            "a command returns `Result<Reply, Error>`, written out (a type alias hides the \
             error type from the macro)",
        );
    }
    output
}

/// `Result<A, B>`, however qualified.
fn result_halves(ty: &Type) -> Option<Output<'_>> {
    let Type::Path(path) = ungroup(ty) else {
        return None;
    };
    if path.qself.is_some() {
        return None;
    }
    let last = path.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    let mut types = args.args.iter().map(|arg| match arg {
        GenericArgument::Type(ty) => Some(ty),
        _ => None,
    });
    match (types.next(), types.next(), types.next()) {
        (Some(Some(reply)), Some(Some(error)), None) => Some(Output { reply, error }),
        _ => None,
    }
}

fn ungroup(mut ty: &Type) -> &Type {
    loop {
        match ty {
            Type::Group(g) => ty = &g.elem,
            Type::Paren(p) => ty = &p.elem,
            _ => return ty,
        }
    }
}
