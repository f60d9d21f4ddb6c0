use proc_macro2::TokenStream;
use quote::quote;
use syn::{ItemTrait, parse_quote};

use super::*;

/// The messages of every error `expand` reports, in order.
fn errors(input: ItemTrait) -> Vec<String> {
    errors_with(TokenStream::new(), input)
}

fn errors_with(args: TokenStream, input: ItemTrait) -> Vec<String> {
    match expand(args, &input) {
        Ok(tokens) => panic!("expected errors, got {tokens}"),
        Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
    }
}

/// The expansion as text without spaces (quote's spacing is not part of the contract).
fn expanded(input: ItemTrait) -> String {
    match expand(TokenStream::new(), &input) {
        Ok(tokens) => tokens.to_string().replace(' ', ""),
        Err(e) => panic!("unexpected error: {e}"),
    }
}

fn bank() -> ItemTrait {
    parse_quote! {
        /// A bank.
        pub trait Bank {
            /// Adds to an account.
            async fn deposit(&self, ctx: &InvocationContext, req: Deposit)
                -> Result<Balance, BankError>;
            async fn withdraw(&self, _: &ate::service::InvocationContext, _: Withdraw)
                -> std::result::Result<Balance, BankError>;
        }
    }
}

#[test]
fn commands_return_send_futures_in_the_trait() {
    let out = expanded(bank());
    assert!(out.contains("#[doc=r\"Abank.\"]pubtraitBank{"), "{out}");
    assert!(
        out.contains(
            "fndeposit(&self,ctx:&InvocationContext,req:Deposit)->impl::ate::__private::Future<\
             Output=Result<Balance,BankError>>+::ate::__private::Send;"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "fnwithdraw(&self,_:&ate::service::InvocationContext,_:Withdraw)->impl\
             ::ate::__private::Future<Output=std::result::Result<Balance,BankError>>+\
             ::ate::__private::Send;"
        ),
        "{out}"
    );
    assert!(!out.contains("asyncfndeposit(&self,ctx"), "{out}");
}

#[test]
fn the_service_dispatches_by_stable_type_name() {
    let out = expanded(bank());
    assert!(out.contains("pubstructBankService<__AteHandler>{"), "{out}");
    assert!(
        out.contains(
            "impl<__AteHandler>::ate::__private::ServiceDispatchforBankService<__AteHandler>\
             where__AteHandler:Bank+::ate::__private::Send+::ate::__private::Sync+'static"
        ),
        "{out}"
    );
    assert!(out.contains("\"Bank\""), "{out}");
    assert!(
        out.contains(
            "constREQUEST_TYPES:&[&'staticstr]=&[<Depositas::ate::__private::DaoType>::TYPE_NAME,\
             <Withdrawas::ate::__private::DaoType>::TYPE_NAME];"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "if__ate_request_type==<Depositas::ate::__private::DaoType>::TYPE_NAME{return\
             ::ate::__private::run_command(__ate_request_type,__ate_body,|__ate_request:Deposit|\
             {<__AteHandlerasBank>::deposit(&self.handler,__ate_ctx,__ate_request)},);}"
        ),
        "{out}"
    );
    assert!(
        out.contains("::ate::__private::unknown_request(__ate_request_type)"),
        "{out}"
    );
    // Never Rust's own type names.
    assert!(!out.contains("type_name::<"), "{out}");
}

#[test]
fn the_client_has_one_method_per_command() {
    let out = expanded(bank());
    assert!(out.contains("pubstructBankClient{client:::ate::__private::ServiceClient,}"));
    assert!(out.contains("pubfnnew<__AteTarget>("), "{out}");
    assert!(out.contains("pubfnfrom_invoker("), "{out}");
    assert!(out.contains("pubfnwith_timeout("), "{out}");
    // The command's docs, then the errors; the user's argument name, or `request`.
    assert!(
        out.contains("#[doc=r\"Addstoanaccount.\"]#[doc=\"\\n\\n#Errors\\n\\n"),
        "{out}"
    );
    assert!(
        out.contains(
            "pubasyncfndeposit(&self,req:Deposit,)->::ate::__private::Result<Balance,\
             ::ate::__private::InvokeError<BankError>>{self.client.call_as::<Deposit,Balance,\
             BankError>(<Depositas::ate::__private::DaoType>::TYPE_NAME,req).await}"
        ),
        "{out}"
    );
    assert!(
        out.contains("pubasyncfnwithdraw(&self,request:Withdraw,)"),
        "{out}"
    );
}

#[test]
fn every_pair_of_request_types_is_checked_for_one_name() {
    let out = expanded(parse_quote! {
        trait Three {
            async fn a(&self, ctx: &InvocationContext, r: A) -> Result<(), E>;
            async fn b(&self, ctx: &InvocationContext, r: B) -> Result<(), E>;
            async fn c(&self, ctx: &InvocationContext, r: C) -> Result<(), E>;
        }
    });
    assert_eq!(
        out.matches("::ate::__private::distinct_names(").count(),
        3,
        "{out}"
    );
    assert!(
        out.contains(
            "distinct_names(&[<Aas::ate::__private::DaoType>::TYPE_NAME,<Cas\
             ::ate::__private::DaoType>::TYPE_NAME])"
        ),
        "{out}"
    );
    assert!(
        out.contains("therequestsof`b`and`c`haveonestabletypename"),
        "{out}"
    );
    // One command: nothing to compare. The trait's visibility is the items' visibility.
    let out = expanded(parse_quote! {
        pub(crate) trait One {
            async fn a(&self, ctx: &InvocationContext, r: A) -> Result<(), E>;
        }
    });
    assert!(!out.contains("distinct_names"), "{out}");
    assert!(out.contains("pub(crate)structOneClient"), "{out}");
    assert!(out.contains("pub(crate)asyncfna(&self"), "{out}");
}

#[test]
fn raw_identifiers_lose_their_prefix_in_generated_names() {
    let out = expanded(parse_quote! {
        trait r#Match {
            async fn r#type(&self, ctx: &InvocationContext, r: Kind) -> Result<(), E>;
        }
    });
    assert!(out.contains("structMatchClient"), "{out}");
    assert!(out.contains("structMatchService"), "{out}");
    assert!(out.contains("asyncfnr#type(&self,r:Kind"), "{out}");
    assert!(out.contains("<__AteHandlerasr#Match>::r#type("), "{out}");
}

#[test]
fn the_receiver_must_be_shared() {
    let errs = errors(parse_quote! {
        trait Bank {
            async fn a(&mut self, ctx: &InvocationContext, r: A) -> Result<(), E>;
            async fn b(self, ctx: &InvocationContext, r: B) -> Result<(), E>;
            async fn c(ctx: &InvocationContext, r: C) -> Result<(), E>;
            async fn d(self: &Self, ctx: &InvocationContext, r: D) -> Result<(), E>;
        }
    });
    assert_eq!(errs.len(), 4, "{errs:?}");
    assert!(
        errs[..2]
            .iter()
            .all(|e| e.starts_with("a command takes `&self`: one handler"))
    );
    assert!(
        errs[2].starts_with("a command takes `&self` first"),
        "{errs:?}"
    );
    assert!(
        errs[3].starts_with("a command takes `&self`: one handler"),
        "{errs:?}"
    );
}

#[test]
fn a_command_is_an_async_fn_without_a_body() {
    let errs = errors(parse_quote! {
        trait Bank {
            fn a(&self, ctx: &InvocationContext, r: A) -> Result<(), E>;
            async fn b(&self, ctx: &InvocationContext, r: B) -> Result<(), E> { Ok(()) }
            const unsafe extern "C" fn c(&self, ctx: &InvocationContext, r: C) -> Result<(), E>;
        }
    });
    assert_eq!(
        errs,
        [
            "a command is an `async fn`: `async fn name(&self, ctx: &InvocationContext, request: \
             Request) -> Result<Reply, Error>`",
            "a command has no body in the service trait: write it in the handler's `impl`",
            "a command is an `async fn`: `async fn name(&self, ctx: &InvocationContext, request: \
             Request) -> Result<Reply, Error>`",
            "a command cannot be `const`",
            "a command cannot be `unsafe`",
            "a command cannot have an `extern` ABI",
        ]
    );
}

#[test]
fn the_context_comes_second_as_a_shared_reference() {
    let errs = errors(parse_quote! {
        trait Bank {
            async fn a(&self, r: A) -> Result<(), E>;
            async fn b(&self, ctx: &InvocationContext) -> Result<(), E>;
            async fn c(&self, ctx: &mut InvocationContext, r: C) -> Result<(), E>;
            async fn d(&self, ctx: InvocationContext, r: D) -> Result<(), E>;
            async fn e(&self, ctx: &Context, r: E) -> Result<(), E>;
            async fn f(&self) -> Result<(), E>;
        }
    });
    assert_eq!(errs.len(), 6, "{errs:?}");
    assert!(errs[0].starts_with("a command takes `ctx: &InvocationContext` before its request"));
    assert!(
        errs[1].starts_with("a command takes a request after `ctx`"),
        "{errs:?}"
    );
    for e in &errs[2..5] {
        assert!(
            e.starts_with("the context of a command is `&InvocationContext`"),
            "{errs:?}"
        );
    }
    assert!(
        errs[5].starts_with("a command takes a context and a request"),
        "{errs:?}"
    );
}

#[test]
fn arguments_are_plain_names_and_one_request_by_value() {
    let errs = errors(parse_quote! {
        trait Bank {
            async fn a(&self, ctx: &InvocationContext, Deposit { amount }: Deposit) -> Result<(), E>;
            async fn b(&self, (x, y): (Ctx, Ctx), mut r: B) -> Result<(), E>;
            async fn c(&self, ctx: &InvocationContext, r: &C) -> Result<(), E>;
            async fn d(&self, ctx: &InvocationContext, r: D, more: u8, most: u8) -> Result<(), E>;
            async fn e(&self, ctx: &InvocationContext, r: impl Request) -> Result<(), E>;
        }
    });
    let plain = "a command's arguments are plain names (`request: Deposit`): destructure the \
                 request in the handler's body";
    assert_eq!(errs[0], plain);
    assert_eq!(errs[1], plain);
    assert!(
        errs[2].starts_with("the context of a command is"),
        "{errs:?}"
    );
    assert_eq!(errs[3], plain);
    assert!(
        errs[4].starts_with("a command takes its request by value"),
        "{errs:?}"
    );
    assert!(
        errs[5].starts_with("a command takes one request"),
        "{errs:?}"
    );
    assert!(
        errs[6].starts_with("a command takes one request"),
        "{errs:?}"
    );
    assert!(
        errs[7].starts_with("a command cannot be generic"),
        "{errs:?}"
    );
    assert_eq!(errs.len(), 8, "{errs:?}");
}

#[test]
fn a_command_returns_a_result_written_out() {
    let errs = errors(parse_quote! {
        trait Bank {
            async fn a(&self, ctx: &InvocationContext, r: A);
            async fn b(&self, ctx: &InvocationContext, r: B) -> Balance;
            async fn c(&self, ctx: &InvocationContext, r: C) -> io::Result<()>;
            async fn d(&self, ctx: &InvocationContext, r: D) -> Result<(), E, F>;
        }
    });
    assert_eq!(errs.len(), 4, "{errs:?}");
    assert!(errs[0].starts_with("a command returns `Result<Reply, Error>`: the reply"));
    for e in &errs[1..] {
        assert!(
            e.starts_with("a command returns `Result<Reply, Error>`, written out"),
            "{e}"
        );
    }
}

#[test]
fn generics_are_refused_on_the_trait_and_its_commands() {
    let errs = errors(parse_quote! {
        trait Bank<T> where T: Clone {
            async fn a<R>(&self, ctx: &InvocationContext, r: R) -> Result<(), E>;
            async fn b(&self, ctx: &InvocationContext, r: B) -> Result<(), E> where B: Clone;
            async fn c<'a>(&'a self, ctx: &InvocationContext, r: C) -> Result<(), E>;
        }
    });
    assert_eq!(errs.len(), 6, "{errs:?}");
    assert!(errs[0].starts_with("a service trait cannot be generic"));
    assert!(errs[1].starts_with("a service trait cannot have a `where` clause"));
    assert!(errs[2].starts_with("a command cannot be generic"));
    assert!(errs[3].starts_with("a command cannot have a `where` clause"));
    assert!(errs[4].starts_with("a command cannot be generic"));
    assert!(errs[5].starts_with("a command takes `&self`: one handler"));
}

#[test]
fn names_of_the_clients_own_methods_are_refused() {
    let errs = errors(parse_quote! {
        trait Bank {
            async fn new(&self, ctx: &InvocationContext, r: A) -> Result<(), E>;
            async fn with_timeout(&self, ctx: &InvocationContext, r: B) -> Result<(), E>;
            async fn r#from_invoker(&self, ctx: &InvocationContext, r: C) -> Result<(), E>;
            async fn newer(&self, ctx: &InvocationContext, r: D) -> Result<(), E>;
        }
    });
    assert_eq!(
        errs,
        ["new", "with_timeout", "from_invoker"].map(|name| format!(
            "a command cannot be named `{name}`: the generated `BankClient` has a \
             `BankClient::{name}` of its own (its methods are `new`, `from_invoker`, \
             `with_timeout`)"
        ))
    );
}

#[test]
fn two_commands_cannot_take_one_request_type() {
    let errs = errors(parse_quote! {
        trait Bank {
            async fn deposit(&self, ctx: &InvocationContext, r: Money) -> Result<(), E>;
            async fn withdraw(&self, ctx: &InvocationContext, r: Money) -> Result<(), E>;
            async fn audit(&self, ctx: &InvocationContext, r: money::Money) -> Result<(), E>;
        }
    });
    assert_eq!(
        errs,
        [
            "`deposit` takes requests of this type already: a request is dispatched by its type, \
          so each command takes a type of its own"
        ]
    );
}

#[test]
fn other_items_unsafe_traits_and_arguments_are_refused() {
    let errs = errors_with(
        quote!(name = "bank"),
        parse_quote! {
            unsafe trait Bank {
                type Currency;
                const FEE: u64;
                async fn a(&self, ctx: &InvocationContext, r: A) -> Result<(), E>;
            }
        },
    );
    assert_eq!(errs.len(), 4, "{errs:?}");
    assert_eq!(errs[0], "`#[service]` takes no arguments");
    assert_eq!(errs[1], "a service trait cannot be `unsafe`");
    assert!(errs[2].starts_with("a service trait holds only its commands"));
    assert!(errs[3].starts_with("a service trait holds only its commands"));
}

#[test]
fn an_item_that_is_not_a_trait_is_refused() {
    let out = attribute(
        TokenStream::new(),
        quote!(
            struct Bank;
        ),
    )
    .to_string();
    assert!(out.contains("`#[service]` goes on a trait"), "{out}");
}

#[test]
fn errors_come_with_stand_ins_of_every_item() {
    let input: ItemTrait = parse_quote! {
        pub trait Bank {
            async fn deposit(&self, ctx: &InvocationContext, Deposit { amount }: Deposit)
                -> Result<Balance, BankError>;
            fn withdraw(&self, ctx: &InvocationContext, r: Withdraw) -> Result<Balance, BankError>;
        }
    };
    let out = attribute(TokenStream::new(), quote!(#input))
        .to_string()
        .replace(' ', "");
    assert!(out.contains("compile_error!"), "{out}");
    // The trait, with `_` for the pattern; the non-async method as written.
    assert!(
        out.contains(
            "fndeposit(&self,ctx:&InvocationContext,_:Deposit)->impl::ate::__private::Future<"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "fnwithdraw(&self,ctx:&InvocationContext,r:Withdraw)->Result<Balance,BankError>;"
        ),
        "{out}"
    );
    // The service serves nothing; the client's methods are never run.
    assert!(out.contains("pubstructBankService"), "{out}");
    assert!(
        out.contains("constREQUEST_TYPES:&[&'staticstr]=&[];"),
        "{out}"
    );
    assert!(
        out.contains("pubasyncfndeposit(&self,request:Deposit,)"),
        "{out}"
    );
    assert!(
        out.contains("pubasyncfnwithdraw(&self,r:Withdraw,)"),
        "{out}"
    );
    assert!(out.contains("::core::unreachable!()"), "{out}");
    assert!(!out.contains("run_command"), "{out}");
}

#[test]
fn stand_ins_leave_out_what_would_add_errors_of_their_own() {
    let input: ItemTrait = parse_quote! {
        trait Bank<T> {
            async fn new(&self, ctx: &InvocationContext, r: A) -> Result<(), E>;
            async fn open(&self, ctx: &InvocationContext, r: B) -> Result<(), E>;
        }
    };
    let out = attribute(TokenStream::new(), quote!(#input))
        .to_string()
        .replace(' ', "");
    // The client's own `new` only; `open` is there.
    assert_eq!(out.matches("fnnew<__AteTarget>").count(), 1, "{out}");
    assert!(!out.contains("asyncfnnew(&self,r:A"), "{out}");
    assert!(out.contains("pubasyncfnopen(&self,r:B,)") || out.contains("asyncfnopen(&self,r:B,)"));
    // The dispatch does not name the (generic) trait.
    assert!(
        out.contains("where__AteHandler:::ate::__private::Send+::ate::__private::Sync+'static"),
        "{out}"
    );
}
