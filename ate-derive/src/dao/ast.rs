//! A typed view of the input of `#[derive(Dao)]`: the struct, its fields and their attributes.

use syn::{Data, DeriveInput, Fields, GenericArgument, Ident, PathArguments, Type};

use super::attr;
use crate::ctxt::Ctxt;

/// What the derive supports, said in every shape error.
const SUPPORTED: &str =
    "only structs with named fields can, like `struct Account { number: String }`";

/// The input struct.
pub struct Container<'a> {
    pub ident: &'a Ident,
    pub vis: &'a syn::Visibility,
    pub generics: &'a syn::Generics,
    pub attrs: attr::Container,
    /// What `#[serde(...)]` on the struct says about its encoding.
    pub serde: attr::Serde,
    /// The named fields; empty when the input is not a struct with named fields (reported).
    pub fields: Vec<Field<'a>>,
}

/// One named field.
pub struct Field<'a> {
    pub ident: &'a Ident,
    pub ty: &'a Type,
    pub attrs: attr::Field,
    /// What `#[serde(...)]` on the field says about its encoding.
    pub serde: attr::Serde,
    /// Whether the field is a `DaoVec<_>` or a `DaoRef<_>`, judged by how its type is written.
    pub relation: Option<Relation>,
}

/// A relation field.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Relation {
    /// `DaoVec<T>`: children of the record.
    Vec,
    /// `DaoRef<T>`: a reference to another record.
    Ref,
}

impl Relation {
    pub fn type_name(self) -> &'static str {
        match self {
            Relation::Vec => "DaoVec",
            Relation::Ref => "DaoRef",
        }
    }
}

impl<'a> Container<'a> {
    /// Reads the input. Unsupported shapes are reported in `cx`; everything else is still read
    /// so that all mistakes show at once.
    pub fn from_ast(cx: &Ctxt, input: &'a DeriveInput) -> Container<'a> {
        let attrs = attr::Container::from_ast(cx, &input.attrs);
        let fields = match &input.data {
            Data::Struct(data) => match &data.fields {
                Fields::Named(named) => named
                    .named
                    .iter()
                    .filter_map(|f| {
                        Some(Field {
                            ident: f.ident.as_ref()?,
                            ty: &f.ty,
                            attrs: attr::Field::from_ast(cx, &f.attrs),
                            serde: attr::Serde::from_ast(&f.attrs),
                            relation: relation_of(&f.ty),
                        })
                    })
                    .collect(),
                Fields::Unnamed(unnamed) => {
                    cx.error_spanned_by(
                        unnamed,
                        format!(
                            "a tuple struct cannot derive `Dao`: {SUPPORTED}; \
                             fields need names to be indexed and related"
                        ),
                    );
                    Vec::new()
                }
                Fields::Unit => {
                    cx.error_spanned_by(
                        &input.ident,
                        format!("a unit struct cannot derive `Dao`: {SUPPORTED}"),
                    );
                    Vec::new()
                }
            },
            Data::Enum(data) => {
                cx.error_spanned_by(
                    data.enum_token,
                    format!(
                        "an enum cannot derive `Dao`: {SUPPORTED}; \
                         store the enum in a field of such a struct"
                    ),
                );
                Vec::new()
            }
            Data::Union(data) => {
                cx.error_spanned_by(
                    data.union_token,
                    format!("a union cannot derive `Dao`: {SUPPORTED}"),
                );
                Vec::new()
            }
        };
        Container {
            ident: &input.ident,
            vis: &input.vis,
            generics: &input.generics,
            attrs,
            serde: attr::Serde::from_ast(&input.attrs),
            fields,
        }
    }

    /// The stable type name: `#[dao(name = "...")]`, else the struct's name.
    pub fn type_name(&self) -> String {
        match &self.attrs.name {
            Some(lit) => lit.value(),
            None => syn::ext::IdentExt::unraw(self.ident).to_string(),
        }
    }

    /// The fields with `#[dao(index)]`.
    pub fn indexed(&self) -> impl Iterator<Item = &Field<'a>> {
        self.fields.iter().filter(|f| f.attrs.index.is_some())
    }

    /// The position of `field` among the struct's serialized fields: the fields before it that
    /// serde does not skip.
    pub fn position(&self, field: &Field<'_>) -> u32 {
        self.fields
            .iter()
            .take_while(|f| !std::ptr::eq(*f, field))
            .filter(|f| f.is_serialized())
            .count() as u32
    }

    /// The `DaoVec` fields (attached to their owner on load and store).
    pub fn collections(&self) -> impl Iterator<Item = &Field<'a>> {
        self.fields
            .iter()
            .filter(|f| f.relation == Some(Relation::Vec))
    }
}

impl Field<'_> {
    /// Whether serde writes the field (`skip` and `skip_serializing` leave it out).
    pub fn is_serialized(&self) -> bool {
        self.serde.get(attr::SKIP).is_none() && self.serde.get(attr::SKIP_SERIALIZING).is_none()
    }

    /// The field's name without `r#`: the index name the runtime knows and the finder suffix.
    pub fn name(&self) -> String {
        syn::ext::IdentExt::unraw(self.ident).to_string()
    }
}

/// `DaoVec<T>` / `DaoRef<T>`, however qualified (`ate::DaoVec<T>`). A type alias hides the
/// relation from the derive: write the type out.
fn relation_of(ty: &Type) -> Option<Relation> {
    let ty = ungroup(ty);
    let Type::Path(path) = ty else {
        return None;
    };
    if path.qself.is_some() {
        return None;
    }
    let last = path.path.segments.last()?;
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    if args.args.len() != 1 || !matches!(args.args[0], GenericArgument::Type(_)) {
        return None;
    }
    if last.ident == "DaoVec" {
        Some(Relation::Vec)
    } else if last.ident == "DaoRef" {
        Some(Relation::Ref)
    } else {
        None
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
