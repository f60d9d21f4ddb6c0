//! The type registry: what `#[derive(Dao)]` (or `ate::stable_name!`) declares about a model
//! type, found at run time, and the stable names of the types that declare nothing.
//!
//! Each derived or named type submits one [`TypeRegistration`] through `inventory`; the runtime
//! looks it up by Rust `TypeId` (when storing a value) or by stable type name (when replaying a
//! log, to rebuild indexes). A plain serde type has no registration: it is named by its Rust
//! type name with every module path stripped ([`strip_paths`]: `hello_world::World` is
//! `World`), so the name depends only on what its author wrote, not on the crate, the module
//! or the compiler.
//!
//! Two types with one name would read each other's records. Two registered ones are reported
//! when a chain is opened ([`check_names`]); a plain type whose name another type has is
//! refused when it is stored or loaded ([`checked_type_name_of`]). The name [`SCHEMA_TYPE`] is
//! the engine's own.
//!
//! The chain records the indexes of every indexed type it holds, in schema records
//! ([`TypeSchema`], events of the reserved type [`SCHEMA_TYPE`]), so that a process that does
//! not link the model types (a server) enforces unique indexes and builds the same indexes as
//! one that does. Index values are read from a record's body by position and kind ([`extract`]),
//! without the Rust type, and keyed in the one encoding rmp-serde writes for them
//! ([`canonical_key`]): any other encoding the type's decoder would read as the same value gives
//! the same key, so no writer slips past a unique index by choosing its bytes. That is why only
//! the kinds whose accepted encodings are known exactly can be indexed ([`IndexValue`]).

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, OnceLock};

use parking_lot::RwLock;

use crate::event::PrimaryKey;
use crate::event::codec::MAX_TYPE_NAME;

mod error;
mod record;
mod value;

pub use error::SchemaError;
pub use record::{
    IndexDef, MAX_FIELD_NAME, MAX_INDEXES, MAX_SCHEMA_BYTES, SCHEMA_RECORD_VERSION, SCHEMA_TYPE,
    TypeSchema,
};
pub use value::{IndexKind, IndexValue, Scalar, ValueError, canonical_key, extract};

/// The encoded value of an indexed field.
pub type IndexKey = Vec<u8>;

/// A secondary index on one field of a type, as the type declares it.
#[derive(Debug)]
pub struct IndexSpec {
    /// The field name (what `find_by_<field>` looks up).
    pub field: &'static str,
    /// Whether two live records may not share a value.
    pub unique: bool,
    /// The field's position among the struct's serialized fields (0 for the first).
    pub position: u32,
    /// What the field holds ([`IndexValue::KIND`] of its type).
    pub kind: IndexKind,
    /// Decodes a body as the type and encodes the field's value; `None` when the body does not
    /// decode. The Dio checks with it that [`extract`] finds the same value by position.
    pub extract: fn(&[u8]) -> Option<IndexKey>,
}

/// The default read or write rule for new records of a type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AccessDefault {
    /// Take the parent's rule (the chain's root rule for records without a parent).
    #[default]
    Inherit,
    /// Anyone may.
    Everyone,
    /// No one may (for writes: the record is final once committed).
    Nobody,
}

/// What a model type declares (submitted by `#[derive(Dao)]` and `ate::stable_name!`).
#[derive(Debug)]
pub struct TypeRegistration {
    /// The stable type name recorded in every event of the type.
    pub name: &'static str,
    /// The Rust type (a function because `TypeId::of` is not usable in statics).
    pub type_id: fn() -> TypeId,
    /// The Rust type's full name (`std::any::type_name`), for messages about name clashes.
    pub rust_name: fn() -> &'static str,
    /// Default read rule for new records.
    pub read: AccessDefault,
    /// Default write rule for new records.
    pub write: AccessDefault,
    /// Tells the value's `DaoVec` fields which record owns them.
    pub attach: fn(&mut dyn Any, PrimaryKey),
    /// Secondary indexes.
    pub indexes: &'static [IndexSpec],
}

impl TypeRegistration {
    /// The registration of a type that only takes a stable name (what `ate::stable_name!`
    /// submits): no indexes, no collections to attach, access rules inherited like a plain
    /// type's.
    pub const fn named<T: 'static>(name: &'static str) -> Self {
        fn attach_nothing(_: &mut dyn Any, _: PrimaryKey) {}
        TypeRegistration {
            name,
            type_id: TypeId::of::<T>,
            rust_name: std::any::type_name::<T>,
            read: AccessDefault::Inherit,
            write: AccessDefault::Inherit,
            attach: attach_nothing,
            indexes: &[],
        }
    }
}

inventory::collect!(TypeRegistration);

/// Two types with one stable name: each would read the other's records as its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the stable type name \"{name}\" belongs to two types, {rust_type} and {other}; give one of \
     them its own name with `ate::stable_name!(Type = \"...\")` or `#[dao(name = \"...\")]`"
)]
#[non_exhaustive]
pub struct NameClash {
    /// The name both have.
    pub name: &'static str,
    /// The type concerned (the first one registered, when both are).
    pub rust_type: &'static str,
    /// The other type with the name.
    pub other: &'static str,
}

/// Looked up on every store and every sealed event: a fast hasher, not SipHash.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Looked up on every store and load, by Rust type: a `TypeId` is a hash of its type already,
/// so its bits are used as they are.
type TypeMap<V> = HashMap<TypeId, V, BuildHasherDefault<TypeIdHasher>>;

/// Keeps what a `TypeId` writes (its low 64 bits), folding anything else in.
#[derive(Default)]
struct TypeIdHasher(u64);

impl Hasher for TypeIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = self.0.rotate_left(5) ^ n;
    }
}

struct Registry {
    by_type: TypeMap<&'static TypeRegistration>,
    by_name: FastMap<&'static str, &'static TypeRegistration>,
    /// Registered names taken by two types (the first registration keeps the name).
    clashes: Vec<NameClash>,
}

fn registry() -> &'static Registry {
    static REG: OnceLock<Registry> = OnceLock::new();
    REG.get_or_init(|| {
        let mut r = Registry {
            by_type: TypeMap::default(),
            by_name: FastMap::default(),
            clashes: Vec::new(),
        };
        for reg in inventory::iter::<TypeRegistration> {
            if reg.name == SCHEMA_TYPE {
                // The macros refuse the name at compile time; a registration written by hand
                // is refused here, and never looked up by name.
                r.by_type.insert((reg.type_id)(), reg);
                r.clashes.push(reserved_clash((reg.rust_name)()));
                continue;
            }
            r.by_type.insert((reg.type_id)(), reg);
            let first = *r.by_name.entry(reg.name).or_insert(reg);
            if !std::ptr::eq(first, reg) {
                r.clashes.push(NameClash {
                    name: reg.name,
                    rust_type: (first.rust_name)(),
                    other: (reg.rust_name)(),
                });
            }
        }
        r
    })
}

/// A type registered under the reserved name [`SCHEMA_TYPE`].
fn reserved_clash(rust_type: &'static str) -> NameClash {
    NameClash {
        name: SCHEMA_TYPE,
        rust_type,
        other: "the engine's schema records (a reserved name)",
    }
}

/// The registration of a Rust type, if it derives `Dao` or was named with `ate::stable_name!`.
pub fn registration_of<T: 'static>() -> Option<&'static TypeRegistration> {
    registry().by_type.get(&TypeId::of::<T>()).copied()
}

/// The registration behind a stable type name.
pub fn registration_named(name: &str) -> Option<&'static TypeRegistration> {
    registry().by_name.get(name).copied()
}

/// Whether every registered stable name belongs to one type only; otherwise the first name
/// found taken twice. Opening a chain checks this, so a program whose types clash stops at its
/// first `open` instead of mixing up records.
pub fn check_names() -> Result<(), NameClash> {
    match registry().clashes.first() {
        Some(clash) => Err(*clash),
        None => Ok(()),
    }
}

/// The stable name recorded for values of `T`: its registered name, or else its Rust type
/// name without module paths ([`strip_paths`]). Never fails; a clash is refused where records
/// are stored and loaded ([`checked_type_name_of`]).
pub fn type_name_of<T: 'static>() -> &'static str {
    match checked_type_name_of::<T>() {
        Ok(name) => name,
        Err(clash) => clash.name,
    }
}

/// The stable name recorded for values of `T`, unless `T` is a plain (unregistered) type whose
/// name another type in this process has: a registered type, or another plain type already
/// named here (then both are refused from then on).
pub fn checked_type_name_of<T: 'static>() -> Result<&'static str, NameClash> {
    match registration_of::<T>() {
        Some(reg) if reg.name == SCHEMA_TYPE => Err(reserved_clash((reg.rust_name)())),
        Some(reg) => Ok(reg.name),
        None => plain_name(TypeId::of::<T>(), std::any::type_name::<T>),
    }
}

/// The stable names of the plain types seen so far, computed once per type.
#[derive(Default)]
struct PlainNames {
    by_type: TypeMap<Result<&'static str, NameClash>>,
    /// Which plain type took each name first (its `TypeId` and full name).
    by_name: FastMap<&'static str, (TypeId, &'static str)>,
}

static PLAIN_NAMES: LazyLock<RwLock<PlainNames>> = LazyLock::new(Default::default);

/// Counts the names already handed out that became clashes (a second plain type took them),
/// so that the per-thread copies of [`PLAIN_NAMES`] drop what they hold.
static CLASHES_FOUND: AtomicU64 = AtomicU64::new(0);

/// A plain type is named on every store and load: each thread keeps its own copy of the names
/// it used (of the types without a clash), so a lookup takes no lock and writes no shared
/// memory.
type LocalNames = (u64, TypeMap<&'static str>);

thread_local! {
    static LOCAL_NAMES: RefCell<LocalNames> = RefCell::new((0, TypeMap::default()));
}

fn plain_name(id: TypeId, rust_name: fn() -> &'static str) -> Result<&'static str, NameClash> {
    // Read before the shared names: a clash found meanwhile makes this copy stale at once.
    let clashes = CLASHES_FOUND.load(Ordering::Acquire);
    let known = LOCAL_NAMES.with(|local| {
        let local = local.borrow();
        if local.0 == clashes {
            local.1.get(&id).copied()
        } else {
            None
        }
    });
    if let Some(name) = known {
        return Ok(name);
    }
    let name = shared_plain_name(id, rust_name)?;
    LOCAL_NAMES.with(|local| {
        let mut local = local.borrow_mut();
        if local.0 != clashes {
            *local = (clashes, TypeMap::default());
        }
        local.1.insert(id, name);
    });
    Ok(name)
}

fn shared_plain_name(
    id: TypeId,
    rust_name: fn() -> &'static str,
) -> Result<&'static str, NameClash> {
    if let Some(known) = PLAIN_NAMES.read().by_type.get(&id) {
        return *known;
    }
    let rust_type = rust_name();
    let stripped = strip_paths(rust_type);
    let mut names = PLAIN_NAMES.write();
    // Another thread may have named it meanwhile.
    if let Some(known) = names.by_type.get(&id) {
        return *known;
    }
    let name: &'static str = match names.by_name.get_key_value(stripped.as_str()) {
        Some((&taken, _)) => taken,
        // Each plain type is named once, so this leaks one string per type.
        None => Box::leak(stripped.into_boxed_str()),
    };
    let result = if let Some(reg) = registration_named(name) {
        Err(NameClash {
            name,
            rust_type,
            other: (reg.rust_name)(),
        })
    } else if let Some(&(first_id, first)) = names.by_name.get(name) {
        // The first type with the name is refused from now on too.
        names.by_type.insert(
            first_id,
            Err(NameClash {
                name,
                rust_type: first,
                other: rust_type,
            }),
        );
        CLASHES_FOUND.fetch_add(1, Ordering::Release);
        Err(NameClash {
            name,
            rust_type,
            other: first,
        })
    } else {
        names.by_name.insert(name, (id, rust_type));
        Ok(name)
    };
    names.by_type.insert(id, result);
    result
}

/// A Rust type name (`std::any::type_name`) without its module paths: every path keeps its
/// last segment, inside generics, references, slices, arrays, tuples and function types alike.
///
/// ```
/// use ate_runtime::schema::strip_paths;
/// assert_eq!(strip_paths("hello_world::World"), "World");
/// assert_eq!(strip_paths("alloc::vec::Vec<my::Point>"), "Vec<Point>");
/// assert_eq!(strip_paths("(&[a::B; 3], core::option::Option<u8>)"), "(&[B; 3], Option<u8>)");
/// ```
pub fn strip_paths(rust_name: &str) -> String {
    let mut out = String::with_capacity(rust_name.len());
    // Where the path being read starts in `out`: a `::` drops what it has so far.
    let mut path_start = 0;
    let mut chars = rust_name.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            out.truncate(path_start);
        } else if c.is_alphanumeric() || c == '_' || c == '{' || c == '}' {
            // Part of a path segment (`{{closure}}` names a closure's scope).
            out.push(c);
        } else {
            out.push(c);
            path_start = out.len();
        }
    }
    out
}

/// The indexes a linked type with this stable name declares (what the chain records may hold
/// more: see [`TypeSchema`]).
pub fn indexes_for(name: &str) -> &'static [IndexSpec] {
    registration_named(name).map(|r| r.indexes).unwrap_or(&[])
}

/// Encodes an index value the way [`IndexSpec::extract`] must: MessagePack of the field value.
/// A `&str` and a `String` encode alike, so a finder can take either.
pub fn index_key<Q: serde::Serialize + ?Sized>(value: &Q) -> Result<IndexKey, String> {
    rmp_serde::to_vec(value).map_err(|e| e.to_string())
}

/// Decodes a body of `T` and encodes one of its fields as an index key (for generated
/// [`IndexSpec::extract`] functions).
pub fn extract_with<T: serde::de::DeserializeOwned, F: serde::Serialize + ?Sized>(
    body: &[u8],
    field: impl FnOnce(&T) -> &F,
) -> Option<IndexKey> {
    let value: T = rmp_serde::from_slice(body).ok()?;
    index_key(field(&value)).ok()
}

/// A model type's stable name, known at compile time. `#[derive(Dao)]` and `ate::stable_name!`
/// implement it (so a type cannot be given two names); the same name is in the type's
/// [`TypeRegistration`], which the runtime uses.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no stable type name",
    label = "this type needs a stable type name",
    note = "derive `Dao` for it, or name it with `ate::stable_name!({Self} = \"app.{Self}\")`"
)]
pub trait DaoType {
    /// The stable type name recorded in every event of the type (the struct's name unless
    /// `#[dao(name = "...")]` overrides it, or the name given to `ate::stable_name!`).
    const TYPE_NAME: &'static str;
}

/// Checks a stable type name written in source; `ate::stable_name!` runs it at compile time,
/// so a bad name is a compile error. A name is not blank, fits in an event ([`MAX_TYPE_NAME`]
/// bytes) and is not the reserved [`SCHEMA_TYPE`].
///
/// # Panics
///
/// When the name is blank, too long or reserved.
pub const fn assert_valid_name(name: &str) {
    let bytes = name.as_bytes();
    let mut i = 0;
    while i < bytes.len() && bytes[i].is_ascii_whitespace() {
        i += 1;
    }
    assert!(i < bytes.len(), "the stable type name must not be empty");
    assert!(
        bytes.len() <= MAX_TYPE_NAME,
        "the stable type name must be at most 1024 bytes long"
    );
    assert!(
        !is_reserved(name),
        "the stable type name \"ate.schema\" is reserved for the engine's schema records"
    );
}

/// Whether a stable type name is reserved for the engine ([`SCHEMA_TYPE`]); usable in constants.
pub const fn is_reserved(name: &str) -> bool {
    let (a, b) = (name.as_bytes(), SCHEMA_TYPE.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_stripped_everywhere_in_a_type_name() {
        let cases = [
            ("World", "World"),
            ("hello_world::World", "World"),
            ("my_app::models::v2::Person", "Person"),
            ("alloc::vec::Vec<my::Point>", "Vec<Point>"),
            (
                "std::collections::hash::map::HashMap<alloc::string::String, a::b::C>",
                "HashMap<String, C>",
            ),
            (
                "core::option::Option<alloc::boxed::Box<x::Y>>",
                "Option<Box<Y>>",
            ),
            ("&a::B", "&B"),
            ("&mut a::B", "&mut B"),
            ("&[a::B]", "&[B]"),
            ("[a::B; 3]", "[B; 3]"),
            ("*const a::B", "*const B"),
            ("(a::B, c::D, u8)", "(B, D, u8)"),
            ("()", "()"),
            ("fn(a::B) -> c::D", "fn(B) -> D"),
            (
                "dyn core::ops::function::Fn(&u8) + core::marker::Send",
                "dyn Fn(&u8) + Send",
            ),
            ("app::main::{{closure}}::Local", "Local"),
            (
                "app::Wrapper<app::inner::Wrapper<u32>>",
                "Wrapper<Wrapper<u32>>",
            ),
            ("données::Élément", "Élément"),
        ];
        for (full, stripped) in cases {
            assert_eq!(strip_paths(full), stripped, "{full}");
        }
    }

    mod v1 {
        pub struct Point;
        pub struct Shape<T>(pub T);
    }
    mod v2 {
        pub struct Point;
    }

    #[test]
    fn real_type_names_lose_their_paths() {
        fn name<T: 'static>() -> &'static str {
            checked_type_name_of::<T>().expect("no clash")
        }
        assert_eq!(name::<v1::Shape<Vec<String>>>(), "Shape<Vec<String>>");
        assert_eq!(name::<Option<Box<[u8]>>>(), "Option<Box<[u8]>>");
        assert_eq!(name::<(u8, &'static str)>(), "(u8, &str)");
        assert_eq!(name::<[v1::Shape<u8>; 2]>(), "[Shape<u8>; 2]");
        assert_eq!(
            name::<std::collections::BTreeMap<String, v1::Shape<i64>>>(),
            "BTreeMap<String, Shape<i64>>"
        );
        // Computed once: the same string each time.
        assert!(std::ptr::eq(
            type_name_of::<v1::Shape<u16>>(),
            type_name_of::<v1::Shape<u16>>()
        ));
    }

    #[test]
    fn two_plain_types_with_one_name_are_both_refused() {
        assert_eq!(checked_type_name_of::<v1::Point>(), Ok("Point"));
        let clash = checked_type_name_of::<v2::Point>().expect_err("a clash");
        assert_eq!(clash.name, "Point");
        assert_eq!(clash.rust_type, std::any::type_name::<v2::Point>());
        assert_eq!(clash.other, std::any::type_name::<v1::Point>());
        // The first one is refused from now on too, naming the second.
        let first = checked_type_name_of::<v1::Point>().expect_err("a clash");
        assert_eq!(first.rust_type, std::any::type_name::<v1::Point>());
        assert_eq!(first.other, std::any::type_name::<v2::Point>());
        assert_eq!(type_name_of::<v2::Point>(), "Point");
        assert!(first.to_string().contains("ate::stable_name!"), "{first}");
    }

    mod v3 {
        pub struct Marker;
    }
    mod v4 {
        pub struct Marker;
    }

    #[test]
    fn a_clash_found_on_another_thread_reaches_this_one() {
        // Named, and kept in this thread's copy.
        assert_eq!(checked_type_name_of::<v3::Marker>(), Ok("Marker"));
        assert_eq!(checked_type_name_of::<v3::Marker>(), Ok("Marker"));
        std::thread::spawn(|| assert!(checked_type_name_of::<v4::Marker>().is_err()))
            .join()
            .expect("the other thread");
        let clash = checked_type_name_of::<v3::Marker>().expect_err("a clash");
        assert_eq!(clash.other, std::any::type_name::<v4::Marker>());
    }

    #[test]
    fn names_written_in_source_are_checked() {
        assert_valid_name("bank.Account");
        assert!(std::panic::catch_unwind(|| assert_valid_name(" \t")).is_err());
        assert!(std::panic::catch_unwind(|| assert_valid_name(&"x".repeat(1025))).is_err());
        assert_valid_name(&"x".repeat(1024));
        assert!(std::panic::catch_unwind(|| assert_valid_name(SCHEMA_TYPE)).is_err());
        assert_valid_name("ate.schemas");
        assert!(is_reserved("ate.schema") && !is_reserved("ate.schem") && !is_reserved(""));
    }

    #[test]
    fn a_named_registration_takes_the_plain_defaults() {
        let reg = TypeRegistration::named::<v1::Point>("geo.Point");
        assert_eq!(reg.name, "geo.Point");
        assert_eq!((reg.type_id)(), TypeId::of::<v1::Point>());
        assert_eq!((reg.rust_name)(), std::any::type_name::<v1::Point>());
        assert_eq!(
            (reg.read, reg.write),
            (AccessDefault::Inherit, AccessDefault::Inherit)
        );
        assert!(reg.indexes.is_empty());
    }
}
