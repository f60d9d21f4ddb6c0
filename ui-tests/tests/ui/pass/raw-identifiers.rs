//! Raw identifiers: `r#type` is indexed as `type` and found with `find_by_type`. A model may
//! also be declared inside a function.

#![deny(warnings)]

use ate::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Dao, Clone, Serialize, Deserialize)]
struct Token {
    #[dao(index)]
    r#type: String,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), AteError> {
    let chain = ChainBuilder::new(&AteConfig::in_memory())
        .await
        .build()
        .open(&ChainKey::from("raw"))
        .await?;
    let mut dio = chain.dio(&AteSession::default()).await;
    dio.store(Token { r#type: "word".to_string() })?;
    dio.commit().await?;
    assert_eq!(Token::find_by_type(&dio, "word").await?.len(), 1);
    assert_eq!(Token::TYPE_NAME, "Token");

    #[derive(Dao, Clone, Serialize, Deserialize)]
    #[dao(name = "local.Counter")]
    struct Counter {
        #[dao(index, unique)]
        r#loop: u32,
        children: DaoVec<Token>,
    }
    let counter = dio.store(Counter { r#loop: 3, children: DaoVec::new() })?;
    counter.children.push(&mut dio, Token { r#type: "child".to_string() })?;
    dio.commit().await?;
    let found = Counter::find_by_loop(&dio, &3).await?.expect("indexed");
    assert_eq!(found.type_name(), "local.Counter");
    assert_eq!(found.children.iter(&dio).await?.len(), 1);
    Ok(())
}
