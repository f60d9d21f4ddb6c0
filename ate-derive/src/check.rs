//! Rules between attributes and the input's shape, checked once everything is read.

use crate::ast::Container;
use crate::attr::{INDEX, UNIQUE};
use crate::ctxt::Ctxt;

/// Reports every rule the input breaks.
pub fn check(cx: &Ctxt, cont: &Container<'_>) {
    check_generics(cx, cont);
    check_indexes(cx, cont);
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
                crate::ast::Relation::Vec => {
                    "it holds a collection id, not data; list the children with \
                     `.iter(&dio)`, or index a field of the child type"
                }
                crate::ast::Relation::Ref => {
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
