//! A model with every feature of the derive, beside a plain type, under `#![deny(warnings)]`.

#![deny(warnings)]

use ate::prelude::*;
use serde::{Deserialize, Serialize};

/// The Quick Start's type: no derive needed.
#[derive(Clone, Serialize, Deserialize)]
struct World {
    commandment: String,
}

#[derive(Dao, Clone, Serialize, Deserialize)]
#[dao(read = "everyone")]
struct Person {
    #[dao(index)]
    name: String,
}

#[derive(Dao, Clone, Serialize, Deserialize)]
#[dao(name = "bank.Transaction", write = "nobody")]
struct Transaction {
    amount: i64,
}

#[derive(Dao, Clone, Serialize, Deserialize)]
#[dao(name = "bank.Account", read = "inherit", write = "inherit")]
struct Account {
    #[dao(index, unique)]
    number: String,
    #[dao(index)]
    branch: u32,
    owner: DaoRef<Person>,
    transactions: DaoVec<Transaction>,
    balance: i64,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), AteError> {
    let conf = AteConfig::in_memory();
    let builder = ChainBuilder::new(&conf).await.build();
    let chain = builder.open(&ChainKey::from("universe")).await?;
    let session = AteSession::default();
    let mut dio = chain.dio(&session).await;

    let world = dio.store(World { commandment: "Hello".to_string() })?.key().clone();
    let alice = dio.store(Person { name: "Alice".to_string() })?;
    let account = dio.store(Account {
        number: "42".to_string(),
        branch: 7,
        owner: DaoRef::from(&alice),
        transactions: DaoVec::new(),
        balance: 0,
    })?;
    account.transactions.push(&mut dio, Transaction { amount: 10 })?;
    dio.commit().await?;

    assert_eq!(dio.load::<World>(&world).await?.commandment, "Hello");
    let found = Account::find_by_number(&dio, "42").await?.expect("indexed");
    assert_eq!(found.key(), account.key());
    assert_eq!(found.type_name(), Account::TYPE_NAME);
    assert_eq!(Account::find_by_branch(&dio, &7).await?.len(), 1);
    assert_eq!(Person::find_by_name(&dio, "Alice").await?.len(), 1);
    assert_eq!(found.owner.load(&dio).await?.name, "Alice");
    let total: i64 = found
        .transactions
        .iter(&dio)
        .await?
        .iter()
        .map(|t| t.amount)
        .sum();
    assert_eq!(total, 10);
    assert_eq!(found.balance, 0);
    assert_eq!(Transaction::TYPE_NAME, "bank.Transaction");
    Ok(())
}
