//! Two model types with one stable type name in one program: every chain open is refused with
//! a typed error naming the name and both types. (A test binary of its own: the clash is a
//! property of the whole program.)

use ate::prelude::*;
use serde::{Deserialize, Serialize};

mod v1 {
    use super::*;

    #[derive(Dao, Clone, Serialize, Deserialize)]
    pub struct Person {
        pub name: String,
    }
}

mod v2 {
    use super::*;

    #[derive(Dao, Clone, Serialize, Deserialize)]
    pub struct Person {
        pub name: String,
        pub email: String,
    }
}

/// A plain type opting into a name a derived type of another module already has.
mod legacy {
    use super::*;

    #[derive(Clone, Serialize, Deserialize)]
    pub struct Account {
        pub number: String,
    }
    ate::stable_name!(Account = "bank.Account");
}

#[derive(Dao, Clone, Serialize, Deserialize)]
#[dao(name = "bank.Account")]
struct Account {
    number: String,
}

fn clash_of(err: &OpenError) -> Option<(&str, [&str; 2])> {
    match err {
        OpenError::TypeNameClash(c) => {
            let mut types = [c.rust_type, c.other];
            types.sort();
            Some((c.name, types))
        }
        _ => None,
    }
}

#[tokio::test]
async fn every_open_names_the_clash() {
    let registry = ChainBuilder::new(&AteConfig::in_memory()).await.build();
    let err = registry
        .open(&ChainKey::from("people"))
        .await
        .expect_err("refused");
    let (name, types) = clash_of(&err).unwrap_or_else(|| panic!("{err:?}"));
    let mut derived = [
        std::any::type_name::<v1::Person>(),
        std::any::type_name::<v2::Person>(),
    ];
    derived.sort();
    let mut named = [
        std::any::type_name::<legacy::Account>(),
        std::any::type_name::<Account>(),
    ];
    named.sort();
    assert!(
        (name == "Person" && types == derived) || (name == "bank.Account" && types == named),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains(&format!("\"{name}\""))
            && message.contains(types[0])
            && message.contains(types[1])
            && message.contains("#[dao(name"),
        "{message}"
    );

    // Every other way to open a chain is refused too, and `?` turns it into an AteError.
    let store = registry.open_store(
        &ChainKey::from("people"),
        Box::new(ate::log::MemoryStore::new()),
    );
    assert!(matches!(store, Err(OpenError::TypeNameClash(_))));
    let dir = tempfile::tempdir().expect("temp dir");
    let on_disk = ChainBuilder::new(&AteConfig::at(dir.path()))
        .await
        .build()
        .open(&ChainKey::from("people"))
        .await;
    assert!(matches!(on_disk, Err(OpenError::TypeNameClash(_))));
    let as_ate: Result<Chain, AteError> = async { Ok(registry.open(&"x".into()).await?) }.await;
    assert!(matches!(
        as_ate,
        Err(AteError::Open(OpenError::TypeNameClash(_)))
    ));
    assert!(
        std::fs::read_dir(dir.path()).expect("dir").next().is_none(),
        "nothing was created"
    );
}

#[test]
fn both_clashes_are_found() {
    assert!(ate::schema::check_names().is_err());
    assert_eq!(
        ate::schema::registration_of::<legacy::Account>().map(|r| r.name),
        Some("bank.Account")
    );
}
