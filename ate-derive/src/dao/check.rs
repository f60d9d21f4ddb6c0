//! Rules between attributes and the input's shape, checked once everything is read.

use super::ast::Container;
use super::attr::{
    FLATTEN, INDEX, INTO, SERIALIZE_WITH, SKIP, SKIP_SERIALIZING, SKIP_SERIALIZING_IF, TAG,
    TRANSPARENT, UNIQUE, WITH,
};
use crate::ctxt::Ctxt;

/// Reports every rule the input breaks.
pub fn check(cx: &Ctxt, cont: &Container<'_>) {
    check_generics(cx, cont);
    check_indexes(cx, cont);
    check_layout(cx, cont);
}

/// An index reads its field by position among the struct's serialized fields (the engine reads
/// stored bodies without the Rust type), so the fields up to an indexed one must always be
/// written, in order, each as its own type.
fn check_layout(cx: &Ctxt, cont: &Container<'_>) {
    let Some(last) = cont.indexed().last() else {
        return;
    };
    let why = "an indexed struct is stored as the array of its fields, and each index reads its \
               field by position";
    for word in [TRANSPARENT, INTO, TAG] {
        if let Some(path) = cont.serde.get(word) {
            cx.error_spanned_by(
                path,
                format!("`#[serde({word})]` cannot be used on a struct with indexes: {why}"),
            );
        }
    }
    let mut before_last = true;
    for field in &cont.fields {
        if let Some(path) = field.serde.get(FLATTEN) {
            cx.error_spanned_by(
                path,
                format!("`#[serde({FLATTEN})]` cannot be used in a struct with indexes: {why}"),
            );
        }
        if before_last && let Some(path) = field.serde.get(SKIP_SERIALIZING_IF) {
            cx.error_spanned_by(
                path,
                format!(
                    "`#[serde({SKIP_SERIALIZING_IF})]` cannot be used on an indexed field or a \
                     field before one: {why}"
                ),
            );
        }
        if field.attrs.index.is_some() {
            for word in [SKIP, SKIP_SERIALIZING, SERIALIZE_WITH, WITH] {
                if let Some(path) = field.serde.get(word) {
                    cx.error_spanned_by(
                        path,
                        format!(
                            "`#[serde({word})]` cannot be used on an indexed field: the index \
                             reads the field as its own type, where it is stored"
                        ),
                    );
                }
            }
        }
        if std::ptr::eq(field, last) {
            before_last = false;
        }
    }
}

/// A stored type has one stable name, so the struct must be concrete.
fn check_generics(cx: &Ctxt, cont: &Container<'_>) {
    if !cont.generics.params.is_empty() {
        cx.error_spanned_by(
            cont.generics,
            "generic structs cannot derive `Dao`: every stored type needs one stable type \
             name, so declare a concrete struct for each type you store",
        );
    }
}

/// `index` needs a field that holds data; `unique` needs `index`.
fn check_indexes(cx: &Ctxt, cont: &Container<'_>) {
    for field in &cont.fields {
        if let (Some(index), Some(relation)) = (&field.attrs.index, field.relation) {
            let hint = match relation {
                super::ast::Relation::Vec => {
                    "it holds a collection id, not data; list the children with \
                     `.iter(&dio)`, or index a field of the child type"
                }
                super::ast::Relation::Ref => {
                    "it holds the key of another record; load it with `.load(&dio)`, or \
                     index a field that holds data"
                }
            };
            cx.error_spanned_by(
                index,
                format!(
                    "`{INDEX}` cannot be used on a `{}` field: {hint}",
                    relation.type_name()
                ),
            );
        }
        if let (Some(unique), None) = (&field.attrs.unique, &field.attrs.index) {
            cx.error_spanned_by(
                unique,
                format!("`{UNIQUE}` needs `{INDEX}`: write `#[dao({INDEX}, {UNIQUE})]`"),
            );
        }
    }
}
