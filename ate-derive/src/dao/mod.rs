//! `#[derive(Dao)]`: the generated code.
//!
//! For a struct `T` it emits
//! - `impl DaoType for T` (the stable type name);
//! - a `TypeRegistration` submitted to the runtime's registry: name, access defaults, a function
//!   that attaches the `DaoVec` fields to their owner, and one `IndexSpec` per indexed field
//!   (its position among the serialized fields, and its kind from `IndexValue`, which only
//!   the types an index can hold implement);
//! - for each `#[dao(index)]` field `f`, a finder `T::find_by_f(&dio, &value)`.
//!
//! When the input is wrong, the errors come with stand-ins of the same items whose bodies are
//! unreachable, so the user's code that uses them does not add errors of its own.

use proc_macro2::TokenStream;
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{DeriveInput, Ident, LitStr};

use self::ast::{Container, Field};
use self::attr::Access;
use crate::ctxt::Ctxt;

mod ast;
mod attr;
mod check;

/// The derive: the generated items, or the errors next to stand-ins.
pub fn derive(input: &DeriveInput) -> TokenStream {
    expand(input).unwrap_or_else(|errors| {
        let mut out = errors.into_compile_error();
        out.extend(fallback(input));
        out
    })
}

/// The generated items, or every error found in the input.
pub fn expand(input: &DeriveInput) -> syn::Result<TokenStream> {
    let cx = Ctxt::new();
    let cont = Container::from_ast(&cx, input);
    check::check(&cx, &cont);
    cx.check()?;
    Ok(Generator::new(&cont).expand())
}

/// Stand-ins for a wrong input: the items user code may name, with unreachable bodies.
fn fallback(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let cont = Container::from_ast(&cx, input);
    // The errors were reported by `expand`.
    let _ = cx.check();
    Generator::new(&cont).stand_ins()
}

/// Writes the items for one struct; one method per generated item.
struct Generator<'c, 'a> {
    cont: &'c Container<'a>,
    /// The struct's path in generated code (the struct's own name).
    ident: &'a Ident,
}

impl<'c, 'a> Generator<'c, 'a> {
    fn new(cont: &'c Container<'a>) -> Self {
        Generator {
            cont,
            ident: cont.ident,
        }
    }

    fn expand(&self) -> TokenStream {
        let dao_type = self.dao_type();
        let registration = self.registration();
        let finders = self.finders();
        quote! {
            #dao_type
            #registration
            #finders
        }
    }

    fn stand_ins(&self) -> TokenStream {
        let dao_type = self.dao_type();
        let finders = self.stand_in_finders();
        quote! {
            #dao_type
            #finders
        }
    }

    /// The struct's stable type name as a literal (spanned at `name = "..."` when given).
    fn type_name(&self) -> LitStr {
        match &self.cont.attrs.name {
            Some(lit) => lit.clone(),
            None => LitStr::new(&self.cont.type_name(), self.ident.span()),
        }
    }

    /// `impl DaoType for T`.
    fn dao_type(&self) -> TokenStream {
        let ident = self.ident;
        let name = self.type_name();
        let (impl_generics, ty_generics, where_clause) = self.cont.generics.split_for_impl();
        quote! {
            #[automatically_derived]
            impl #impl_generics ::ate::__private::DaoType for #ident #ty_generics #where_clause {
                const TYPE_NAME: &'static str = #name;
            }
        }
    }

    /// The `TypeRegistration` and the functions and statics it points to.
    fn registration(&self) -> TokenStream {
        let ident = self.ident;
        let read = access(self.cont.attrs.read);
        let write = access(self.cont.attrs.write);
        let attach = self.attach_fn();
        let (extractors, specs): (Vec<_>, Vec<_>) = self
            .cont
            .indexed()
            .map(|field| self.index_spec(field))
            .unzip();
        let count = specs.len();
        quote! {
            const _: () = {
                #attach
                #(#extractors)*
                static __ATE_INDEXES: [::ate::__private::IndexSpec; #count] = [#(#specs),*];
                ::ate::__private::inventory::submit! {
                    ::ate::__private::TypeRegistration {
                        name: <#ident as ::ate::__private::DaoType>::TYPE_NAME,
                        type_id: ::ate::__private::TypeId::of::<#ident>,
                        rust_name: ::ate::__private::type_name::<#ident>,
                        read: #read,
                        write: #write,
                        attach: __ate_attach,
                        indexes: &__ATE_INDEXES,
                    }
                }
            };
        }
    }

    /// `fn __ate_attach`: tells every `DaoVec` field which record owns it.
    fn attach_fn(&self) -> TokenStream {
        let ident = self.ident;
        let fields: Vec<&Ident> = self.cont.collections().map(|f| f.ident).collect();
        if fields.is_empty() {
            return quote! {
                fn __ate_attach(
                    _: &mut dyn ::ate::__private::Any,
                    _: ::ate::__private::PrimaryKey,
                ) {
                }
            };
        }
        quote! {
            fn __ate_attach(
                value: &mut dyn ::ate::__private::Any,
                key: ::ate::__private::PrimaryKey,
            ) {
                if let ::ate::__private::Option::Some(value) = value.downcast_mut::<#ident>() {
                    #(value.#fields.attach(key);)*
                }
            }
        }
    }

    /// The extractor function of one index, and its `IndexSpec`.
    fn index_spec(&self, field: &Field<'_>) -> (TokenStream, TokenStream) {
        let ident = self.ident;
        let member = field.ident;
        let name = field.name();
        let extract = format_ident!("__ate_index_{}", name);
        let unique = field.attrs.unique.is_some();
        let position = self.cont.position(field);
        let ty = field.ty;
        // Spanned at the type, where "cannot be indexed" points.
        let kind = quote_spanned! {ty.span()=>
            <#ty as ::ate::__private::IndexValue>::KIND
        };
        let function = quote_spanned! {member.span()=>
            fn #extract(body: &[u8]) -> ::ate::__private::Option<::ate::__private::IndexKey> {
                ::ate::__private::extract_with::<#ident, _>(body, |value| &value.#member)
            }
        };
        let spec = quote! {
            ::ate::__private::IndexSpec {
                field: #name,
                unique: #unique,
                position: #position,
                kind: #kind,
                extract: #extract,
            }
        };
        (function, spec)
    }

    /// `impl T { fn find_by_f(..) }` for every indexed field.
    fn finders(&self) -> TokenStream {
        let finders = self.cont.indexed().map(|field| self.finder(field));
        self.inherent_impl(finders.collect())
    }

    /// `find_by_f`: every record whose `f` equals the value, or the only one for a unique index.
    fn finder(&self, field: &Field<'_>) -> TokenStream {
        let ident = self.ident;
        let finder = finder_ident(field);
        let name = field.name();
        let ty = field.ty;
        let q = query_param(field);
        // Spanned at the field, so that errors about a finder (a clash with a method of the
        // same name, a field type that is not `Serialize`) point there.
        let span = field.ident.span();
        let vis = respan(self.cont.vis, span);
        let dao = quote_spanned!(span=> ::ate::__private::Dao<#ident>);
        let bounds = quote_spanned! {span=>
            where
                #ty: ::ate::__private::Borrow<#q>,
                #q: ::ate::__private::serde::Serialize + ?::ate::__private::Sized,
        };
        if field.attrs.unique.is_some() {
            let doc = format!(
                "The `{ident}` whose `{name}` (a unique index) equals `value`, if any; staged \
                 changes in `dio` included.\n\n# Errors\n\nThose of `Dio::find`.\n\n\
                 # Cancel safety\n\nCancel safe: it only reads."
            );
            quote_spanned! {span=>
                #[doc = #doc]
                #vis async fn #finder<#q>(
                    dio: &::ate::__private::Dio,
                    value: &#q,
                ) -> ::ate::__private::Result<
                    ::ate::__private::Option<#dao>,
                    ::ate::__private::DioError,
                >
                #bounds
                {
                    dio.find::<#ident, #q>(#name, value).await.map(|mut found| {
                        if found.is_empty() {
                            ::ate::__private::Option::None
                        } else {
                            ::ate::__private::Option::Some(found.swap_remove(0))
                        }
                    })
                }
            }
        } else {
            let doc = format!(
                "Every `{ident}` whose `{name}` equals `value`, in key order; staged changes in \
                 `dio` included.\n\n# Errors\n\nThose of `Dio::find`.\n\n# Cancel safety\n\n\
                 Cancel safe: it only reads."
            );
            quote_spanned! {span=>
                #[doc = #doc]
                #vis async fn #finder<#q>(
                    dio: &::ate::__private::Dio,
                    value: &#q,
                ) -> ::ate::__private::Result<
                    ::ate::__private::Vec<#dao>,
                    ::ate::__private::DioError,
                >
                #bounds
                {
                    dio.find::<#ident, #q>(#name, value).await
                }
            }
        }
    }

    /// Finders with the same signatures (minus bounds), that are never run.
    fn stand_in_finders(&self) -> TokenStream {
        let ident = self.ident;
        let vis = self.cont.vis;
        let (_, ty_generics, _) = self.cont.generics.split_for_impl();
        let finders = self.cont.indexed().map(|field| {
            let vis = respan(vis, field.ident.span());
            let finder = finder_ident(field);
            let q = query_param(field);
            let found = if field.attrs.unique.is_some() {
                quote!(::ate::__private::Option<::ate::__private::Dao<#ident #ty_generics>>)
            } else {
                quote!(::ate::__private::Vec<::ate::__private::Dao<#ident #ty_generics>>)
            };
            quote_spanned! {field.ident.span()=>
                #vis async fn #finder<#q: ?::ate::__private::Sized>(
                    _: &::ate::__private::Dio,
                    _: &#q,
                ) -> ::ate::__private::Result<#found, ::ate::__private::DioError> {
                    ::core::unreachable!()
                }
            }
        });
        self.inherent_impl(finders.collect())
    }

    /// An inherent impl holding `items`; nothing when there are none.
    fn inherent_impl(&self, items: Vec<TokenStream>) -> TokenStream {
        if items.is_empty() {
            return TokenStream::new();
        }
        let ident = self.ident;
        let (impl_generics, ty_generics, where_clause) = self.cont.generics.split_for_impl();
        quote! {
            // A program need not call every finder.
            #[allow(dead_code)]
            impl #impl_generics #ident #ty_generics #where_clause {
                #(#items)*
            }
        }
    }
}

/// `find_by_<field>`, spanned at the field.
fn finder_ident(field: &Field<'_>) -> Ident {
    format_ident!("find_by_{}", field.name(), span = field.ident.span())
}

/// The finder's type parameter: `Q`, unless the field's type already names a `Q`.
fn query_param(field: &Field<'_>) -> Ident {
    let mentions_q = field
        .ty
        .to_token_stream()
        .into_iter()
        .any(|t| mentions(&t, "Q"));
    let name = if mentions_q { "__AteQuery" } else { "Q" };
    Ident::new(name, field.ident.span())
}

fn mentions(tree: &proc_macro2::TokenTree, word: &str) -> bool {
    match tree {
        proc_macro2::TokenTree::Ident(i) => i == word,
        proc_macro2::TokenTree::Group(g) => g.stream().into_iter().any(|t| mentions(&t, word)),
        _ => false,
    }
}

/// The tokens of `tokens` (a visibility), all spanned at `span`.
fn respan(tokens: impl ToTokens, span: proc_macro2::Span) -> TokenStream {
    tokens
        .into_token_stream()
        .into_iter()
        .map(|mut tree| {
            if let proc_macro2::TokenTree::Group(g) = &tree {
                let mut group = proc_macro2::Group::new(g.delimiter(), respan(g.stream(), span));
                group.set_span(span);
                tree = group.into();
            } else {
                tree.set_span(span);
            }
            tree
        })
        .collect()
}

fn access(rule: Access) -> TokenStream {
    match rule {
        Access::Everyone => quote!(::ate::__private::AccessDefault::Everyone),
        Access::Inherit => quote!(::ate::__private::AccessDefault::Inherit),
        Access::Nobody => quote!(::ate::__private::AccessDefault::Nobody),
    }
}

#[cfg(test)]
mod tests;
