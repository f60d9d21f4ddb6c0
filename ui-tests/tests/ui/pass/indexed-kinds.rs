//! Every kind an index can hold, and serde attributes that leave the indexed fields in place:
//! the positions the derive records are where the values are stored.

use ate::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Dao, Clone, Debug, Serialize, Deserialize)]
#[dao(name = "pass.Kinds")]
#[serde(rename_all = "camelCase")]
struct Kinds {
    #[serde(skip)]
    cache: Vec<u8>,
    #[dao(index, unique)]
    #[serde(rename = "theCode")]
    code: String,
    #[dao(index)]
    small: u8,
    #[dao(index)]
    signed: i64,
    #[dao(index)]
    flag: bool,
    #[dao(index)]
    maybe: Option<String>,
    #[dao(index)]
    letter: char,
    #[dao(index)]
    boxed: Box<str>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), AteError> {
    let chain = ChainBuilder::new(&AteConfig::in_memory())
        .await
        .build()
        .open(&ChainKey::from("kinds"))
        .await?;
    let mut dio = chain.dio(&AteSession::default()).await;
    dio.store(Kinds {
        cache: vec![1],
        code: "k".into(),
        small: 200,
        signed: -70_000,
        flag: true,
        maybe: None,
        letter: 'x',
        boxed: "b".into(),
    })?;
    dio.commit().await?;
    let schema = chain.schema_of("pass.Kinds").expect("recorded");
    let positions: Vec<(&str, u32)> = schema
        .indexes
        .iter()
        .map(|i| (i.field.as_str(), i.position))
        .collect();
    assert_eq!(
        positions,
        [
            ("code", 0),
            ("small", 1),
            ("signed", 2),
            ("flag", 3),
            ("maybe", 4),
            ("letter", 5),
            ("boxed", 6)
        ]
    );
    let dio = chain.dio(&AteSession::default()).await;
    assert!(Kinds::find_by_code(&dio, "k").await?.is_some());
    assert_eq!(Kinds::find_by_small(&dio, &200).await?.len(), 1);
    assert_eq!(Kinds::find_by_signed(&dio, &-70_000).await?.len(), 1);
    assert_eq!(Kinds::find_by_flag(&dio, &true).await?.len(), 1);
    assert_eq!(Kinds::find_by_maybe(&dio, &None).await?.len(), 1);
    assert_eq!(Kinds::find_by_letter(&dio, &'x').await?.len(), 1);
    assert_eq!(Kinds::find_by_boxed(&dio, "b").await?.len(), 1);
    Ok(())
}
