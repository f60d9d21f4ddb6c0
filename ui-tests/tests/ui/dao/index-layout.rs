use ate::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Default, Serialize, Deserialize)]
struct Extra {
    note: String,
}

#[derive(Dao, Clone, Serialize, Deserialize)]
struct Account {
    #[serde(skip_serializing_if = "String::is_empty")]
    nickname: String,
    #[dao(index, unique)]
    #[serde(skip)]
    number: String,
    #[dao(index)]
    #[serde(with = "serde_bytes_like")]
    branch: u32,
    #[serde(flatten)]
    extra: Extra,
    #[serde(skip_serializing_if = "String::is_empty")]
    after: String,
}

#[derive(Dao, Clone, Serialize, Deserialize)]
#[serde(transparent)]
struct Wrapped {
    #[dao(index)]
    number: String,
}

mod serde_bytes_like {
    pub fn serialize<S: serde::Serializer>(v: &u32, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(*v)
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        serde::Deserialize::deserialize(d)
    }
}

fn main() {}
