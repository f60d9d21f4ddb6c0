//! Store, update, delete, children and references on a durable chain, then reopen it.

use ate::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Person {
    name: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Transaction {
    amount: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Account {
    owner: DaoRef<Person>,
    transactions: DaoVec<Transaction>,
}

#[tokio::main]
async fn main() -> Result<(), AteError> {
    let folder = std::env::temp_dir().join(format!("ate-basics-{}", std::process::id()));
    let conf = AteConfig::at(&folder);
    let key = ChainKey::from("bank");
    let session = AteSession::default();

    let (account_key, world_key) = {
        let chain = ChainBuilder::new(&conf).await.build().open(&key).await?;
        let mut dio = chain.dio(&session).await;

        let person = dio.store(Person { name: "Ada".into() })?;
        let account = dio.store(Account {
            owner: DaoRef::from(&person),
            transactions: DaoVec::new(),
        })?;
        for amount in [100, -30, 45] {
            dio.store_child(account.key(), &account.transactions, Transaction { amount })?;
        }
        let mut temp = dio.store(Person {
            name: "Temporary".into(),
        })?;
        dio.commit().await?;

        // Update through a guard; the change is staged when the guard drops.
        temp.as_mut().name = "Renamed".into();
        dio.commit().await?;
        assert_eq!(dio.load::<Person>(temp.key()).await?.name, "Renamed");

        // Delete it again.
        let temp_key = *temp.key();
        temp.delete()?;
        dio.commit().await?;
        assert!(matches!(
            dio.load::<Person>(&temp_key).await,
            Err(DioError::NotFound(_))
        ));

        // Loading a record as the wrong type is a typed error.
        assert!(matches!(
            dio.load::<Person>(account.key()).await,
            Err(DioError::WrongType { .. })
        ));
        (*account.key(), temp_key)
    };

    // Reopen from disk: everything committed is there.
    let chain = ChainBuilder::new(&conf).await.build().open(&key).await?;
    let dio = chain.dio(&session).await;
    let account = dio.load::<Account>(&account_key).await?;
    let owner = account.owner.load(&dio).await?;
    let amounts: Vec<i64> = dio
        .children(account.key(), &account.transactions)
        .await?
        .iter()
        .map(|t| t.amount)
        .collect();
    assert_eq!(amounts, vec![100, -30, 45]);
    assert!(!dio.exists(&world_key).await);
    println!(
        "{} has {} transactions, balance {}",
        owner.name,
        amounts.len(),
        amounts.iter().sum::<i64>()
    );

    drop(dio);
    drop(chain);
    let _ = std::fs::remove_dir_all(&folder);
    Ok(())
}
