//! The generated code names everything by absolute path: it compiles without the prelude (even
//! in a `#[no_implicit_prelude]` module), next to local items that shadow std's names, under
//! `#![forbid(unsafe_code)]` and `#![deny(missing_docs)]`; so does `ate::stable_name!`.

#![forbid(unsafe_code)]
#![deny(missing_docs, warnings)]

#[allow(dead_code)]
struct Option;
#[allow(dead_code)]
struct Result;
#[allow(dead_code)]
struct Vec;
#[allow(dead_code)]
struct TypeId;
#[allow(dead_code)]
struct Dio;
#[allow(dead_code)]
mod ate_private {}

/// A note, stored with its topic indexed.
#[derive(ate::Dao, Clone, serde::Serialize, serde::Deserialize)]
#[dao(name = "notes.Note")]
pub struct Note {
    /// Indexed.
    #[dao(index)]
    pub topic: String,
    /// Children.
    pub replies: ate::DaoVec<Reply>,
}

/// A reply to a note.
#[derive(ate::Dao, Clone, serde::Serialize, serde::Deserialize)]
pub struct Reply {
    /// What was said.
    pub text: String,
}

/// Models declared where nothing is in scope.
#[no_implicit_prelude]
pub mod bare {
    /// Indexed uniquely, with children.
    #[derive(::ate::Dao, ::std::clone::Clone, ::serde::Serialize, ::serde::Deserialize)]
    pub struct Tag {
        /// Indexed.
        #[dao(index, unique)]
        pub label: ::std::string::String,
        /// Children.
        pub notes: ::ate::DaoVec<super::Note>,
    }

    /// A plain type with a stable name of its own.
    #[derive(::std::clone::Clone, ::serde::Serialize, ::serde::Deserialize)]
    pub struct Label {
        /// Text.
        pub text: ::std::string::String,
    }

    ::ate::stable_name!(Label = "notes.Label");
}

/// A generic plain type, named for one of its instances.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct Pair<T> {
    /// Both halves.
    pub halves: (T, T),
}

ate::stable_name!(Pair<u8> = "notes.Pair",);

fn main() {
    assert_eq!(<Note as ate::schema::DaoType>::TYPE_NAME, "notes.Note");
    assert_eq!(<Reply as ate::schema::DaoType>::TYPE_NAME, "Reply");
    let reg = ate::schema::registration_of::<Note>().expect("registered");
    assert_eq!(reg.indexes.len(), 1);
    assert_eq!(reg.indexes[0].field, "topic");
    let _ = bare::Tag::find_by_label::<str>;
    assert_eq!(<bare::Label as ate::schema::DaoType>::TYPE_NAME, "notes.Label");
    assert_eq!(ate::schema::type_name_of::<bare::Label>(), "notes.Label");
    assert_eq!(ate::schema::type_name_of::<Pair<u8>>(), "notes.Pair");
    assert_eq!(ate::schema::type_name_of::<Pair<i8>>(), "Pair<i8>");
}
