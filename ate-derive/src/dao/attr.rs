//! The `#[dao(...)]` attributes: one constant per keyword, and the parsed values.
//!
//! Parsing never stops at the first mistake: every bad key or value is recorded in the
//! [`Ctxt`] and the rest of the attribute is still read.

use std::fmt;

use proc_macro2::TokenTree;
use quote::ToTokens;
use syn::meta::ParseNestedMeta;
use syn::{Expr, ExprLit, Ident, Lit, LitStr, Path, Token};

use crate::ctxt::Ctxt;

/// A keyword of the `#[dao(...)]` attribute.
#[derive(Copy, Clone, Debug)]
pub struct Symbol(&'static str);

/// The attribute itself: `#[dao(...)]`.
pub const DAO: Symbol = Symbol("dao");
/// Struct: the stable type name, `name = "bank.Account"`.
pub const NAME: Symbol = Symbol("name");
/// Struct: the default read rule of new records.
pub const READ: Symbol = Symbol("read");
/// Struct: the default write rule of new records.
pub const WRITE: Symbol = Symbol("write");
/// Field: keep a secondary index on the field.
pub const INDEX: Symbol = Symbol("index");
/// Field: two live records may not share the indexed value.
pub const UNIQUE: Symbol = Symbol("unique");

/// serde's attribute, read for what moves fields in the encoding: `#[serde(...)]`.
pub const SERDE: Symbol = Symbol("serde");
/// serde, field: not serialized.
pub const SKIP: Symbol = Symbol("skip");
/// serde, field: not serialized.
pub const SKIP_SERIALIZING: Symbol = Symbol("skip_serializing");
/// serde, field: serialized only when a predicate says so.
pub const SKIP_SERIALIZING_IF: Symbol = Symbol("skip_serializing_if");
/// serde, field: its fields are serialized in the struct's place (as a map).
pub const FLATTEN: Symbol = Symbol("flatten");
/// serde, field: serialized by a function of its own.
pub const SERIALIZE_WITH: Symbol = Symbol("serialize_with");
/// serde, field: serialized and deserialized by a module of its own.
pub const WITH: Symbol = Symbol("with");
/// serde, struct: serialized as its only field.
pub const TRANSPARENT: Symbol = Symbol("transparent");
/// serde, struct: serialized as another type.
pub const INTO: Symbol = Symbol("into");
/// serde, struct: serialized as a map with a tag.
pub const TAG: Symbol = Symbol("tag");

/// Values of `read` and `write`.
pub const EVERYONE: &str = "everyone";
/// See [`EVERYONE`].
pub const INHERIT: &str = "inherit";
/// See [`EVERYONE`].
pub const NOBODY: &str = "nobody";

impl PartialEq<Symbol> for Path {
    fn eq(&self, word: &Symbol) -> bool {
        self.is_ident(word.0)
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// A default access rule, as written in `read = "..."` / `write = "..."`.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum Access {
    Everyone,
    #[default]
    Inherit,
    Nobody,
}

/// What `#[dao(...)]` says about the struct.
#[derive(Default)]
pub struct Container {
    /// `name = "..."`, as written (for its span).
    pub name: Option<LitStr>,
    pub read: Access,
    pub write: Access,
}

/// What `#[dao(...)]` says about one field. The paths are kept to point errors at them.
#[derive(Default)]
pub struct Field {
    pub index: Option<Path>,
    pub unique: Option<Path>,
}

/// One attribute value that may be given at most once.
struct Once<'c, T> {
    cx: &'c Ctxt,
    word: Symbol,
    value: Option<T>,
}

impl<'c, T> Once<'c, T> {
    fn new(cx: &'c Ctxt, word: Symbol) -> Self {
        Once {
            cx,
            word,
            value: None,
        }
    }

    /// Sets the value, or reports a duplicate at `tokens` (the second occurrence).
    fn set<A: ToTokens>(&mut self, tokens: A, value: T) {
        if self.value.is_some() {
            self.cx
                .error_spanned_by(tokens, format!("duplicate dao attribute `{}`", self.word));
        } else {
            self.value = Some(value);
        }
    }
}

impl Container {
    /// Reads the `#[dao(...)]` attributes of the struct (or enum/union: they are still read
    /// so that every mistake is reported at once).
    pub fn from_ast(cx: &Ctxt, attrs: &[syn::Attribute]) -> Self {
        let mut name = Once::new(cx, NAME);
        let mut read = Once::new(cx, READ);
        let mut write = Once::new(cx, WRITE);
        for attr in attrs.iter().filter(|a| a.path() == &DAO) {
            let parsed = attr.parse_nested_meta(|meta| {
                if meta.path == NAME {
                    if let Some(expr) = value_of(cx, &meta, NAME, "name = \"bank.Account\"")?
                        && let Some(lit) = type_name(cx, &expr)
                    {
                        name.set(&meta.path, lit);
                    }
                } else if meta.path == READ || meta.path == WRITE {
                    let (word, slot) = if meta.path == READ {
                        (READ, &mut read)
                    } else {
                        (WRITE, &mut write)
                    };
                    let usage = format!("{word} = \"{INHERIT}\"");
                    if let Some(expr) = value_of(cx, &meta, word, &usage)?
                        && let Some(access) = access(cx, word, &expr)
                    {
                        slot.set(&meta.path, access);
                    }
                } else if meta.path == INDEX || meta.path == UNIQUE {
                    cx.error_spanned_by(
                        &meta.path,
                        format!(
                            "`{}` is a field attribute: put `#[dao({})]` on the field",
                            path_text(&meta.path),
                            path_text(&meta.path),
                        ),
                    );
                    skip_value(&meta)?;
                } else {
                    cx.error_spanned_by(
                        &meta.path,
                        format!(
                            "unknown dao attribute `{}`; the struct takes `{NAME}`, `{READ}` and `{WRITE}`",
                            path_text(&meta.path)
                        ),
                    );
                    skip_value(&meta)?;
                }
                Ok(())
            });
            if let Err(e) = parsed {
                cx.syn_error(e);
            }
        }
        Container {
            name: name.value,
            read: read.value.unwrap_or_default(),
            write: write.value.unwrap_or_default(),
        }
    }
}

impl Field {
    /// Reads the `#[dao(...)]` attributes of one field.
    pub fn from_ast(cx: &Ctxt, attrs: &[syn::Attribute]) -> Self {
        let mut index = Once::new(cx, INDEX);
        let mut unique = Once::new(cx, UNIQUE);
        for attr in attrs.iter().filter(|a| a.path() == &DAO) {
            let parsed = attr.parse_nested_meta(|meta| {
                if meta.path == INDEX || meta.path == UNIQUE {
                    let word = if meta.path == INDEX { INDEX } else { UNIQUE };
                    if flag(cx, &meta, word)? {
                        let slot = if meta.path == INDEX {
                            &mut index
                        } else {
                            &mut unique
                        };
                        slot.set(&meta.path, meta.path.clone());
                    }
                } else if meta.path == NAME || meta.path == READ || meta.path == WRITE {
                    cx.error_spanned_by(
                        &meta.path,
                        format!(
                            "`{}` is a struct attribute: put it in the `#[dao(...)]` above the struct",
                            path_text(&meta.path)
                        ),
                    );
                    skip_value(&meta)?;
                } else {
                    cx.error_spanned_by(
                        &meta.path,
                        format!(
                            "unknown dao attribute `{}`; a field takes `{INDEX}` and `{UNIQUE}`",
                            path_text(&meta.path)
                        ),
                    );
                    skip_value(&meta)?;
                }
                Ok(())
            });
            if let Err(e) = parsed {
                cx.syn_error(e);
            }
        }
        Field {
            index: index.value,
            unique: unique.value,
        }
    }
}

/// What `#[serde(...)]` says that changes where a field sits in the struct's encoding (an
/// array of its serialized fields, read by position for indexes). Every other serde key is
/// skipped; serde reports its own mistakes.
#[derive(Default)]
pub struct Serde {
    /// Keys that change the layout, each as written (for its span): `skip`,
    /// `skip_serializing`, `skip_serializing_if`, `flatten`, `serialize_with`, `with` on a
    /// field; `transparent`, `into`, `tag` on the struct.
    pub keys: Vec<Path>,
}

impl Serde {
    /// Reads the `#[serde(...)]` attributes of a field or a struct.
    pub fn from_ast(attrs: &[syn::Attribute]) -> Self {
        let mut keys = Vec::new();
        for attr in attrs.iter().filter(|a| a.path() == &SERDE) {
            let _ = attr.parse_nested_meta(|meta| {
                let known = [
                    SKIP,
                    SKIP_SERIALIZING,
                    SKIP_SERIALIZING_IF,
                    FLATTEN,
                    SERIALIZE_WITH,
                    WITH,
                    TRANSPARENT,
                    INTO,
                    TAG,
                ];
                if known.iter().any(|k| meta.path == *k) {
                    keys.push(meta.path.clone());
                }
                skip_serde_value(&meta)
            });
        }
        Serde { keys }
    }

    /// The key `word`, when given.
    pub fn get(&self, word: Symbol) -> Option<&Path> {
        self.keys.iter().find(|p| **p == word)
    }
}

/// Consumes a serde key's value: `= value` or a nested list.
fn skip_serde_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        meta.value()?.parse::<Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        meta.parse_nested_meta(|inner| skip_serde_value(&inner))?;
    }
    Ok(())
}

/// The value of `key = value`, or `None` (reported) when the key has no `= value`.
fn value_of(
    cx: &Ctxt,
    meta: &ParseNestedMeta<'_>,
    word: Symbol,
    usage: &str,
) -> syn::Result<Option<Expr>> {
    if !meta.input.peek(Token![=]) {
        cx.error_spanned_by(&meta.path, format!("`{word}` takes a value: `{usage}`"));
        skip_value(meta)?;
        return Ok(None);
    }
    let expr: Expr = meta.value()?.parse()?;
    Ok(Some(strip_groups(expr)))
}

/// Whether a flag (`index`, `unique`) is well formed: a bare word without a value.
fn flag(cx: &Ctxt, meta: &ParseNestedMeta<'_>, word: Symbol) -> syn::Result<bool> {
    if meta.input.peek(Token![=]) {
        let value: Expr = meta.value()?.parse()?;
        cx.error_spanned_by(
            value,
            format!("`{word}` takes no value: write `#[dao({word})]`"),
        );
        return Ok(false);
    }
    if !meta.input.is_empty() && !meta.input.peek(Token![,]) {
        let rest: TokenTree = meta.input.parse()?;
        cx.error_spanned_by(
            rest,
            format!("`{word}` takes no arguments: write `#[dao({word})]`"),
        );
        return Ok(false);
    }
    Ok(true)
}

/// Consumes whatever follows an unusable key (`= value` or `(...)`), so parsing goes on.
fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        meta.value()?.parse::<Expr>()?;
    } else if !meta.input.is_empty() && !meta.input.peek(Token![,]) {
        meta.input.parse::<TokenTree>()?;
    }
    Ok(())
}

/// `name = "..."`: a non-empty string literal.
fn type_name(cx: &Ctxt, expr: &Expr) -> Option<LitStr> {
    let Expr::Lit(ExprLit {
        lit: Lit::Str(lit), ..
    }) = expr
    else {
        cx.error_spanned_by(expr, "expected a string literal: `name = \"bank.Account\"`");
        return None;
    };
    let value = lit.value();
    if value.trim().is_empty() {
        cx.error_spanned_by(lit, "the type name must not be empty");
        return None;
    }
    // The limit of the event format (`ate::event::codec::MAX_TYPE_NAME`).
    if value.len() > 1024 {
        cx.error_spanned_by(lit, "the type name must be at most 1024 bytes long");
        return None;
    }
    // `ate::schema::SCHEMA_TYPE`.
    if value == "ate.schema" {
        cx.error_spanned_by(
            lit,
            "the type name \"ate.schema\" is reserved for the engine's schema records",
        );
        return None;
    }
    Some(lit.clone())
}

/// `read = "..."` / `write = "..."`: one of the three rules.
fn access(cx: &Ctxt, word: Symbol, expr: &Expr) -> Option<Access> {
    let expected = format!("`\"{EVERYONE}\"`, `\"{INHERIT}\"` or `\"{NOBODY}\"`");
    let Expr::Lit(ExprLit {
        lit: Lit::Str(lit), ..
    }) = expr
    else {
        let bare = match expr {
            Expr::Path(p) => p.path.get_ident().map(Ident::to_string),
            _ => None,
        };
        let message = match bare.as_deref() {
            Some(rule @ (EVERYONE | INHERIT | NOBODY)) => {
                format!("expected a string literal: `{word} = \"{rule}\"`")
            }
            _ => format!("expected a string literal: {expected}"),
        };
        cx.error_spanned_by(expr, message);
        return None;
    };
    match lit.value().as_str() {
        EVERYONE => Some(Access::Everyone),
        INHERIT => Some(Access::Inherit),
        NOBODY => Some(Access::Nobody),
        other => {
            cx.error_spanned_by(
                lit,
                format!("unknown access rule `{other}`; expected {expected}"),
            );
            None
        }
    }
}

/// `(expr)` groups left by `macro_rules!` expansions are transparent here.
fn strip_groups(mut expr: Expr) -> Expr {
    while let Expr::Group(g) = expr {
        expr = *g.expr;
    }
    expr
}

/// A key as the user wrote it (`foo`, `foo::bar`).
fn path_text(path: &Path) -> String {
    path.to_token_stream().to_string().replace(' ', "")
}
