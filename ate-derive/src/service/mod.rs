//! `#[service]`: the generated code.
//!
//! For a trait `T` whose every method is a command
//! (`async fn name(&self, ctx: &InvocationContext, request: Req) -> Result<Reply, Error>`), it
//! emits
//! - the trait, each command declared as a method returning `impl Future<Output = ..> + Send`
//!   (handlers still implement it with `async fn`), so a handler's futures run on any task;
//! - `TService<H>`, which serves a handler `H: T`: it implements `ServiceDispatch`, matching
//!   each request by its type's stable name (`DaoType::TYPE_NAME`);
//! - `TClient`, with one method per command that sends the request through an `Invoker` and
//!   returns `Result<Reply, InvokeError<Error>>`;
//! - constants that make two commands whose request types share a stable name a compile error.
//!
//! When the input is wrong, the errors come with stand-ins of the same items whose bodies are
//! unreachable, so the user's code that uses them does not add errors of its own.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, Ident, Item, ItemTrait, Pat, ReturnType, TraitItem, Type};

use self::ast::{Command, Service};
use crate::ctxt::Ctxt;

mod ast;
mod check;

/// The attribute: the generated items, or the errors next to stand-ins.
pub fn attribute(args: TokenStream, input: TokenStream) -> TokenStream {
    let item = match syn::parse2::<Item>(input) {
        Ok(Item::Trait(item)) => item,
        Ok(other) => {
            return syn::Error::new(
                item_span(&other),
                "`#[service]` goes on a trait: `#[service] trait Bank { async fn deposit(&self, \
                 ctx: &InvocationContext, request: Deposit) -> Result<Balance, BankError>; }`",
            )
            .into_compile_error();
        }
        Err(e) => return e.into_compile_error(),
    };
    expand(args, &item).unwrap_or_else(|errors| {
        let mut out = errors.into_compile_error();
        out.extend(fallback(&item));
        out
    })
}

/// The generated items, or every error found in the input.
pub fn expand(args: TokenStream, item: &ItemTrait) -> syn::Result<TokenStream> {
    let cx = Ctxt::new();
    if !args.is_empty() {
        cx.error_spanned_by(&args, "`#[service]` takes no arguments");
    }
    let service = Service::from_ast(&cx, item);
    check::check(&cx, &service);
    cx.check()?;
    Ok(Generator::new(&service).expand())
}

/// Stand-ins for a wrong input: the items user code may name, with unreachable bodies.
fn fallback(item: &ItemTrait) -> TokenStream {
    let cx = Ctxt::new();
    let service = Service::from_ast(&cx, item);
    // The errors were reported by `expand`.
    let _ = cx.check();
    Generator::new(&service).stand_ins()
}

/// Where an error about an item that is not a trait points: its keyword.
fn item_span(item: &Item) -> Span {
    match item {
        Item::Struct(s) => s.struct_token.span,
        Item::Enum(e) => e.enum_token.span,
        Item::Fn(f) => f.sig.fn_token.span,
        Item::Impl(i) => i.impl_token.span,
        Item::Mod(m) => m.mod_token.span,
        other => other.span(),
    }
}

/// Writes the items for one trait; one method per generated item.
struct Generator<'c, 'a> {
    service: &'c Service<'a>,
    /// `{T}Client`.
    client: Ident,
    /// `{T}Service`.
    server: Ident,
    /// The handler type parameter of `{T}Service`.
    handler: Ident,
}

impl<'c, 'a> Generator<'c, 'a> {
    fn new(service: &'c Service<'a>) -> Self {
        let span = service.ident.span();
        let name = service.name();
        Generator {
            service,
            client: format_ident!("{}Client", name, span = span),
            server: format_ident!("{}Service", name, span = span),
            handler: Ident::new("__AteHandler", span),
        }
    }

    fn expand(&self) -> TokenStream {
        let definition = self.trait_definition(false);
        let server = self.server();
        let dispatch = self.dispatch();
        let client = self.client(false);
        let distinct = self.distinct_names();
        quote! {
            #definition
            #server
            #dispatch
            #client
            #distinct
        }
    }

    fn stand_ins(&self) -> TokenStream {
        let definition = self.trait_definition(true);
        let server = self.server();
        let dispatch = self.stand_in_dispatch();
        let client = self.client(true);
        quote! {
            #definition
            #server
            #dispatch
            #client
        }
    }

    /// The trait, its commands returning `impl Future<Output = ..> + Send`. For a stand-in,
    /// what cannot be declared is left out (bodies of async methods, pattern arguments).
    fn trait_definition(&self, stand_in: bool) -> TokenStream {
        let mut item = self.service.item.clone();
        for trait_item in &mut item.items {
            let TraitItem::Fn(method) = trait_item else {
                continue;
            };
            if stand_in {
                for arg in &mut method.sig.inputs {
                    if let FnArg::Typed(typed) = arg
                        && !matches!(*typed.pat, Pat::Ident(_) | Pat::Wild(_))
                    {
                        *typed.pat = syn::parse_quote!(_);
                    }
                }
            }
            let Some(asyncness) = method.sig.asyncness.take() else {
                continue;
            };
            let output = match &method.sig.output {
                ReturnType::Type(_, ty) => quote!(#ty),
                ReturnType::Default => quote_spanned!(asyncness.span()=> ()),
            };
            let span = method.sig.output.span();
            method.sig.output = syn::parse_quote_spanned! {span=>
                -> impl ::ate::__private::Future<Output = #output> + ::ate::__private::Send
            };
            if method.default.take().is_some() {
                method.semi_token = Some(Default::default());
            }
        }
        quote!(#item)
    }

    /// `{T}Service<H>` and its constructor and accessors.
    fn server(&self) -> TokenStream {
        let vis = &self.service.item.vis;
        let server = &self.server;
        let handler = &self.handler;
        let doc = format!(
            "Serves a [`{name}`] handler: give it to a transport (`LocalServices::add_service`, \
             say), which answers each request with the handler's command for the request's \
             type.",
            name = self.service.name()
        );
        quote! {
            #[doc = #doc]
            #[derive(::core::clone::Clone, ::core::fmt::Debug)]
            #vis struct #server<#handler> {
                handler: #handler,
            }

            #[allow(dead_code)]
            impl<#handler> #server<#handler> {
                /// Serves `handler`.
                #vis const fn new(handler: #handler) -> Self {
                    #server { handler }
                }

                /// The handler.
                #vis fn handler(&self) -> &#handler {
                    &self.handler
                }

                /// The handler, no longer served.
                #vis fn into_handler(self) -> #handler {
                    self.handler
                }
            }
        }
    }

    /// `impl ServiceDispatch for {T}Service<H>`: a request goes to the command whose request
    /// type has its stable name.
    fn dispatch(&self) -> TokenStream {
        let ident = self.service.ident;
        let handler = &self.handler;
        let names = self.request_type_names();
        let arms = self.service.commands.iter().filter_map(|command| {
            let ty = command.request.as_ref()?.ty;
            let method = command.ident;
            let name = type_name(ty);
            Some(quote_spanned! {method.span()=>
                if __ate_request_type == #name {
                    return ::ate::__private::run_command(
                        __ate_request_type,
                        __ate_body,
                        |__ate_request: #ty| {
                            <#handler as #ident>::#method(&self.handler, __ate_ctx, __ate_request)
                        },
                    );
                }
            })
        });
        let body = quote! {
            #(#arms)*
            ::ate::__private::unknown_request(__ate_request_type)
        };
        self.dispatch_impl(Some(ident), &names, body)
    }

    /// The dispatch of a stand-in: serves nothing, and does not name the trait (which may be
    /// generic, or not declarable).
    fn stand_in_dispatch(&self) -> TokenStream {
        self.dispatch_impl(
            None,
            &[],
            quote!(::ate::__private::unknown_request(__ate_request_type)),
        )
    }

    fn dispatch_impl(
        &self,
        handler_trait: Option<&Ident>,
        names: &[TokenStream],
        body: TokenStream,
    ) -> TokenStream {
        let server = &self.server;
        let handler = &self.handler;
        let service_name = self.service.name();
        let handler_trait = handler_trait.map(|t| quote!(#t +));
        quote! {
            #[automatically_derived]
            impl<#handler> ::ate::__private::ServiceDispatch for #server<#handler>
            where
                #handler: #handler_trait
                    ::ate::__private::Send
                    + ::ate::__private::Sync
                    + 'static,
            {
                fn service_name(&self) -> &'static str {
                    #service_name
                }

                fn request_types(&self) -> &[&'static str] {
                    const REQUEST_TYPES: &[&'static str] = &[#(#names),*];
                    REQUEST_TYPES
                }

                fn dispatch<'__ate>(
                    &'__ate self,
                    __ate_ctx: &'__ate ::ate::__private::InvocationContext,
                    __ate_request_type: &'__ate str,
                    __ate_body: &'__ate [u8],
                ) -> ::ate::__private::BoxFuture<
                    '__ate,
                    ::ate::__private::Result<
                        ::ate::__private::Vec<u8>,
                        ::ate::__private::DispatchError,
                    >,
                > {
                    #body
                }
            }
        }
    }

    /// The stable type name of each command's request, spanned at the type.
    fn request_type_names(&self) -> Vec<TokenStream> {
        self.service
            .commands
            .iter()
            .filter_map(|c| Some(type_name(c.request.as_ref()?.ty)))
            .collect()
    }

    /// `{T}Client` with one method per command. A stand-in's methods are never run.
    fn client(&self, stand_in: bool) -> TokenStream {
        let vis = &self.service.item.vis;
        let client = &self.client;
        let name = self.service.name();
        let doc = format!(
            "Calls the commands of a [`{name}`] service, wherever it runs: one method per \
             command, which sends the request and returns the handler's reply, or its error as \
             `InvokeError::Handler`."
        );
        let commands = self
            .service
            .commands
            .iter()
            .filter_map(|command| self.client_method(command, stand_in));
        let target = Ident::new("__AteTarget", Span::call_site());
        quote! {
            #[doc = #doc]
            #[derive(::core::clone::Clone, ::core::fmt::Debug)]
            #vis struct #client {
                client: ::ate::__private::ServiceClient,
            }

            #[allow(dead_code)]
            impl #client {
                /// A client calling the service through `target` (a chain, or
                /// `LocalServices` in this process) as `session`, whose keys identify the
                /// caller. It waits 30 seconds for each reply (see `with_timeout`).
                #vis fn new<#target>(
                    target: &#target,
                    session: &::ate::__private::AteSession,
                ) -> Self
                where
                    #target: ::ate::__private::ServiceTarget + ?::ate::__private::Sized,
                {
                    Self::from_invoker(
                        <#target as ::ate::__private::ServiceTarget>::invoker(target, session),
                    )
                }

                /// A client calling the service through `invoker`.
                #vis fn from_invoker(
                    invoker: ::ate::__private::Arc<dyn ::ate::__private::Invoker>,
                ) -> Self {
                    #client {
                        client: ::ate::__private::ServiceClient::new(invoker),
                    }
                }

                /// The same client, waiting at most `timeout` for each reply.
                #[must_use]
                #vis fn with_timeout(self, timeout: ::ate::__private::Duration) -> Self {
                    #client {
                        client: self.client.with_timeout(timeout),
                    }
                }

                #(#commands)*
            }
        }
    }

    /// The client's method of one command: the command's docs, its request, its result.
    fn client_method(&self, command: &Command<'_>, stand_in: bool) -> Option<TokenStream> {
        if stand_in && check::CLIENT_METHODS.contains(&command.name().as_str()) {
            // Reported; declaring it would add a clash of rustc's.
            return None;
        }
        let request = command.request.as_ref()?;
        let output = command.output.as_ref()?;
        let vis = &self.service.item.vis;
        let method = command.ident;
        let span = method.span();
        let docs = command
            .method
            .attrs
            .iter()
            .filter(|attr| attr.path().is_ident("doc"));
        let errors = "\n\n# Errors\n\n`InvokeError::Handler` with the handler's own error; \
                      `InvokeError::Timeout` when no reply comes in time; `NoService`, \
                      `Refused`, `Transport`, `Encode` and `Decode` when the request was not \
                      served or a message could not be carried.\n\n# Cancel safety\n\n\
                      Dropping the future abandons the reply, not the request: the service may \
                      still answer it, once.";
        let ty = request.ty;
        let (reply, error) = (output.reply, output.error);
        let arg = request
            .ident
            .cloned()
            .unwrap_or_else(|| Ident::new("request", span));
        let body = if stand_in {
            quote!({
                let _ = #arg;
                ::core::unreachable!()
            })
        } else {
            let name = type_name(ty);
            quote_spanned! {span=> {
                self.client.call_as::<#ty, #reply, #error>(#name, #arg).await
            }}
        };
        Some(quote_spanned! {span=>
            #(#docs)*
            #[doc = #errors]
            #vis async fn #method(
                &self,
                #arg: #ty,
            ) -> ::ate::__private::Result<#reply, ::ate::__private::InvokeError<#error>>
            #body
        })
    }

    /// One constant per pair of commands, spanned at the later request type: their stable
    /// names differ.
    fn distinct_names(&self) -> TokenStream {
        let requests: Vec<(&Command<'_>, &Type)> = self
            .service
            .commands
            .iter()
            .filter_map(|c| Some((c, c.request.as_ref()?.ty)))
            .collect();
        let mut checks = Vec::new();
        for (j, (later, later_ty)) in requests.iter().enumerate() {
            for (earlier, earlier_ty) in &requests[..j] {
                let message = format!(
                    "the requests of `{}` and `{}` have one stable type name: a request is \
                     dispatched by its name, so give each request type a name of its own",
                    earlier.name(),
                    later.name()
                );
                let (a, b) = (type_name(earlier_ty), type_name(later_ty));
                checks.push(quote_spanned! {later_ty.span()=>
                    const _: () = ::core::assert!(
                        ::ate::__private::distinct_names(&[#a, #b]),
                        #message
                    );
                });
            }
        }
        quote!(#(#checks)*)
    }
}

/// `<T as DaoType>::TYPE_NAME`, spanned at the type (where "has no stable type name" points).
fn type_name(ty: &Type) -> TokenStream {
    quote_spanned! {ty.span()=>
        <#ty as ::ate::__private::DaoType>::TYPE_NAME
    }
}

#[cfg(test)]
mod tests;
