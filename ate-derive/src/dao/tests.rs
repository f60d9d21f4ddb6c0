use syn::{DeriveInput, parse_quote};

use super::*;

/// The messages of every error `expand` reports, in order.
fn errors(input: DeriveInput) -> Vec<String> {
    match expand(&input) {
        Ok(tokens) => panic!("expected errors, got {tokens}"),
        Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
    }
}

/// The expansion as text without spaces (quote's spacing is not part of the contract).
fn expanded(input: DeriveInput) -> String {
    match expand(&input) {
        Ok(tokens) => tokens.to_string().replace(' ', ""),
        Err(e) => panic!("unexpected error: {e}"),
    }
}

#[test]
fn default_name_is_the_struct_name_and_access_inherits() {
    let out = expanded(parse_quote! {
        struct Person {
            name: String,
        }
    });
    assert!(
        out.contains("constTYPE_NAME:&'staticstr=\"Person\";"),
        "{out}"
    );
    assert!(
        out.contains("rust_name:::ate::__private::type_name::<Person>"),
        "{out}"
    );
    assert!(out.contains("read:::ate::__private::AccessDefault::Inherit"));
    assert!(out.contains("write:::ate::__private::AccessDefault::Inherit"));
    assert!(out.contains("[::ate::__private::IndexSpec;0usize]=[]"));
    // No finders, so no inherent impl.
    assert!(!out.contains("find_by_"));
}

#[test]
fn raw_identifiers_lose_their_prefix() {
    let out = expanded(parse_quote! {
        struct r#Match {
            #[dao(index)]
            r#type: String,
        }
    });
    assert!(out.contains("TYPE_NAME:&'staticstr=\"Match\""), "{out}");
    assert!(out.contains("asyncfnfind_by_type<Q>"), "{out}");
    assert!(out.contains("field:\"type\""), "{out}");
    assert!(out.contains("&value.r#type"), "{out}");
}

#[test]
fn name_and_access_attributes_are_used() {
    let out = expanded(parse_quote! {
        #[dao(name = "bank.Account", read = "everyone")]
        #[dao(write = "nobody")]
        pub struct Account {
            #[dao(index, unique)]
            number: String,
            #[dao(index)]
            branch: u32,
            owner: DaoRef<Person>,
            transactions: ate::DaoVec<Transaction>,
            audit: DaoVec<Entry>,
        }
    });
    assert!(out.contains("=\"bank.Account\";"), "{out}");
    assert!(out.contains("read:::ate::__private::AccessDefault::Everyone"));
    assert!(out.contains("write:::ate::__private::AccessDefault::Nobody"));
    // Both indexes, one unique.
    assert!(
        out.contains("[::ate::__private::IndexSpec;2usize]"),
        "{out}"
    );
    assert!(out.contains("field:\"number\",unique:true"), "{out}");
    assert!(out.contains("field:\"branch\",unique:false"), "{out}");
    // The finders follow the struct's visibility; the unique one returns at most one record.
    assert!(out.contains("pubasyncfnfind_by_number<Q>"), "{out}");
    assert!(out.contains("pubasyncfnfind_by_branch<Q>"), "{out}");
    assert!(out.contains("String:::ate::__private::Borrow<Q>"), "{out}");
    assert!(out.contains("::ate::__private::Option<::ate::__private::Dao<Account>>"));
    // Every DaoVec is attached, however qualified; DaoRef needs nothing.
    assert!(out.contains("value.transactions.attach(key);"), "{out}");
    assert!(out.contains("value.audit.attach(key);"), "{out}");
    assert!(!out.contains("value.owner.attach"), "{out}");
}

#[test]
fn the_query_parameter_avoids_a_type_named_q() {
    let out = expanded(parse_quote! {
        struct Thing {
            #[dao(index)]
            q: Option<Q>,
        }
    });
    assert!(out.contains("find_by_q<__AteQuery>"), "{out}");
    assert!(
        out.contains("Option<Q>:::ate::__private::Borrow<__AteQuery>"),
        "{out}"
    );
}

#[test]
fn a_name_longer_than_an_event_holds_is_refused() {
    let long = syn::LitStr::new(&"n".repeat(1025), proc_macro2::Span::call_site());
    let errs = errors(parse_quote! {
        #[dao(name = #long)]
        struct Account {
            number: String,
        }
    });
    assert_eq!(errs, ["the type name must be at most 1024 bytes long"]);
    let fits = syn::LitStr::new(&"n".repeat(1024), proc_macro2::Span::call_site());
    let out = expanded(parse_quote! {
        #[dao(name = #fits)]
        struct Account {
            number: String,
        }
    });
    assert!(
        out.contains(&format!("=\"{}\";", "n".repeat(1024))),
        "{out}"
    );
}

#[test]
fn every_attribute_error_is_reported_at_once() {
    let errs = errors(parse_quote! {
        #[dao(nmae = "x", read = "sometimes", write = 5)]
        #[dao(name = "", name = "b")]
        struct Account {
            #[dao(index, indx)]
            number: String,
            #[dao(unique)]
            email: String,
            #[dao(index)]
            transactions: DaoVec<Transaction>,
            #[dao(index, index = true)]
            owner: DaoRef<Person>,
        }
    });
    assert_eq!(
        errs,
        [
            "unknown dao attribute `nmae`; the struct takes `name`, `read` and `write`",
            "unknown access rule `sometimes`; expected `\"everyone\"`, `\"inherit\"` or \
             `\"nobody\"`",
            "expected a string literal: `\"everyone\"`, `\"inherit\"` or `\"nobody\"`",
            "the type name must not be empty",
            "unknown dao attribute `indx`; a field takes `index` and `unique`",
            "`index` takes no value: write `#[dao(index)]`",
            "`unique` needs `index`: write `#[dao(index, unique)]`",
            "`index` cannot be used on a `DaoVec` field: it holds a collection id, not data; \
             list the children with `.iter(&dio)`, or index a field of the child type",
            "`index` cannot be used on a `DaoRef` field: it holds the key of another record; \
             load it with `.load(&dio)`, or index a field that holds data",
        ]
    );
}

#[test]
fn duplicates_are_reported_across_attributes() {
    let errs = errors(parse_quote! {
        #[dao(read = "everyone")]
        #[dao(read = "nobody", name = "a")]
        #[dao(name = "b")]
        struct Account {
            #[dao(index)]
            #[dao(index, unique, unique)]
            number: String,
        }
    });
    assert_eq!(
        errs,
        [
            "duplicate dao attribute `read`",
            "duplicate dao attribute `name`",
            "duplicate dao attribute `index`",
            "duplicate dao attribute `unique`",
        ]
    );
}

#[test]
fn a_bare_access_rule_is_shown_quoted() {
    let errs = errors(parse_quote! {
        #[dao(write = nobody)]
        struct Account {
            number: String,
        }
    });
    assert_eq!(errs, ["expected a string literal: `write = \"nobody\"`"]);
}

#[test]
fn keys_in_the_wrong_place_say_where_they_belong() {
    let errs = errors(parse_quote! {
        #[dao(index)]
        struct Account {
            #[dao(name = "x", read = "everyone")]
            number: String,
        }
    });
    assert_eq!(
        errs,
        [
            "`index` is a field attribute: put `#[dao(index)]` on the field",
            "`name` is a struct attribute: put it in the `#[dao(...)]` above the struct",
            "`read` is a struct attribute: put it in the `#[dao(...)]` above the struct",
        ]
    );
}

#[test]
fn malformed_attributes_are_reported() {
    let errs = errors(parse_quote! {
        #[dao]
        #[dao(name)]
        #[dao(name = Account)]
        struct Account {
            #[dao(index(x))]
            number: String,
        }
    });
    assert_eq!(errs.len(), 4, "{errs:?}");
    assert!(errs[0].starts_with("expected attribute arguments in parentheses"));
    assert_eq!(errs[1], "`name` takes a value: `name = \"bank.Account\"`");
    assert_eq!(
        errs[2],
        "expected a string literal: `name = \"bank.Account\"`"
    );
    assert_eq!(errs[3], "`index` takes no arguments: write `#[dao(index)]`");
}

#[test]
fn unsupported_shapes_say_what_is_supported() {
    let supported = "only structs with named fields can, like `struct Account { number: String }`";
    let shapes: [(DeriveInput, &str); 4] = [
        (
            parse_quote!(
                enum Coin {
                    Heads,
                    Tails,
                }
            ),
            "an enum",
        ),
        (
            parse_quote!(
                struct Pair(u32, u32);
            ),
            "a tuple struct",
        ),
        (
            parse_quote!(
                struct Marker;
            ),
            "a unit struct",
        ),
        (parse_quote!(union Bits { a: u32, b: f32 }), "a union"),
    ];
    for (input, what) in shapes {
        let errs = errors(input);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].starts_with(&format!("{what} cannot derive `Dao`: {supported}")),
            "{errs:?}"
        );
    }
}

#[test]
fn generic_structs_are_refused_with_the_other_errors() {
    let errs = errors(parse_quote! {
        #[dao(bogus)]
        struct Wrapper<'a, T> {
            inner: &'a T,
        }
    });
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs[0].starts_with("unknown dao attribute `bogus`"));
    assert!(errs[1].starts_with("generic structs cannot derive `Dao`"));
}

#[test]
fn errors_come_with_stand_ins_of_the_finders() {
    let input: DeriveInput = parse_quote! {
        #[dao(read = "sometimes")]
        pub(crate) struct Account {
            #[dao(index, unique)]
            number: String,
            #[dao(index)]
            branch: u32,
        }
    };
    let out = derive(&input).to_string().replace(' ', "");
    assert!(out.contains("compile_error!"), "{out}");
    assert!(
        out.contains("impl::ate::__private::DaoTypeforAccount"),
        "{out}"
    );
    assert!(
        out.contains("pub(crate)asyncfnfind_by_number<Q:?::ate::__private::Sized>"),
        "{out}"
    );
    assert!(
        out.contains("pub(crate)asyncfnfind_by_branch<Q:?::ate::__private::Sized>"),
        "{out}"
    );
    assert!(out.contains("::core::unreachable!()"), "{out}");
    // No registration for a type that failed.
    assert!(!out.contains("inventory"), "{out}");
}

#[test]
fn a_valid_input_expands_without_errors() {
    let input: DeriveInput = parse_quote! {
        struct Person {
            #[dao(index)]
            name: String,
        }
    };
    let out = derive(&input).to_string();
    assert!(!out.contains("compile_error"), "{out}");
    assert!(!out.contains("unreachable"), "{out}");
}

#[test]
fn indexes_record_their_position_among_serialized_fields_and_their_kind() {
    let out = expanded(parse_quote! {
        struct Account {
            #[serde(skip)]
            cache: u8,
            #[serde(rename = "n", skip_deserializing)]
            note: String,
            #[dao(index)]
            number: Option<String>,
        }
    });
    assert!(out.contains("position:1u32"), "{out}");
    assert!(
        out.contains("kind:<Option<String>as::ate::__private::IndexValue>::KIND"),
        "{out}"
    );
}

#[test]
fn serde_attributes_that_move_an_indexed_field_are_refused() {
    let errs = errors(parse_quote! {
        #[serde(into = "Other")]
        struct Account {
            #[serde(flatten)]
            extra: Extra,
            #[dao(index)]
            #[serde(serialize_with = "f")]
            number: String,
        }
    });
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(errs[0].contains("`#[serde(into)]`"), "{errs:?}");
    assert!(errs[1].contains("`#[serde(flatten)]`"), "{errs:?}");
    assert!(errs[2].contains("`#[serde(serialize_with)]`"), "{errs:?}");
    // Without an index, serde's attributes are serde's business.
    let out = expanded(parse_quote! {
        #[serde(transparent)]
        struct Plain {
            #[serde(flatten)]
            extra: Extra,
        }
    });
    assert!(out.contains("IndexSpec;0usize"), "{out}");
}

#[test]
fn the_reserved_type_name_is_refused() {
    let errs = errors(parse_quote! {
        #[dao(name = "ate.schema")]
        struct Sneaky {
            text: String,
        }
    });
    assert_eq!(errs.len(), 1);
    assert!(errs[0].contains("reserved"), "{errs:?}");
}
