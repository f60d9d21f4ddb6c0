//! Derived models on a durable chain: store, relations, indexed finders, a unique index, update,
//! delete (children go with their parent), then reopen and find everything again.

use ate::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Dao, Clone, Debug, Serialize, Deserialize)]
#[dao(name = "bank.Person", read = "everyone")]
struct Person {
    #[dao(index)]
    name: String,
}

/// Transactions are final once written (`write = "nobody"`): a WORM record.
#[derive(Dao, Clone, Debug, Serialize, Deserialize)]
#[dao(name = "bank.Transaction", write = "nobody")]
struct Transaction {
    amount: i64,
}

#[derive(Dao, Clone, Debug, Serialize, Deserialize)]
#[dao(name = "bank.Card")]
struct Card {
    last_digits: String,
}

#[derive(Dao, Clone, Debug, Serialize, Deserialize)]
#[dao(name = "bank.Account")]
struct Account {
    #[dao(index, unique)]
    number: String,
    owner: DaoRef<Person>,
    transactions: DaoVec<Transaction>,
    cards: DaoVec<Card>,
}

#[tokio::main]
async fn main() -> Result<(), AteError> {
    let folder = std::env::temp_dir().join(format!("ate-basics-{}", std::process::id()));
    let conf = AteConfig::at(&folder);
    let key = ChainKey::from("bank");
    let session = AteSession::default();

    let closed_key = {
        let chain = ChainBuilder::new(&conf).await.build().open(&key).await?;
        let mut dio = chain.dio(&session).await;

        let ada = dio.store(Person { name: "Ada".into() })?;
        let account = dio.store(Account {
            number: "NL-001".into(),
            owner: DaoRef::from(&ada),
            transactions: DaoVec::new(),
            cards: DaoVec::new(),
        })?;
        // The derive attached the collection to its record: push children straight onto it.
        for amount in [100, -30, 45] {
            account
                .transactions
                .push(&mut dio, Transaction { amount })?;
        }
        dio.commit().await?;

        // A second account number "NL-001" is refused at commit, and nothing is written.
        dio.store(Account {
            number: "NL-001".into(),
            owner: DaoRef::from(&ada),
            transactions: DaoVec::new(),
            cards: DaoVec::new(),
        })?;
        let refused = dio.commit().await;
        assert!(matches!(
            refused,
            Err(AteError::Commit(CommitError::UniqueViolation { .. }))
        ));
        dio.cancel();

        // Update through a guard; the change is staged when the guard drops.
        let mut bob = dio.store(Person { name: "Bob".into() })?;
        dio.commit().await?;
        bob.as_mut().name = "Robert".into();
        dio.commit().await?;
        assert!(Person::find_by_name(&dio, "Bob").await?.is_empty());
        assert_eq!(Person::find_by_name(&dio, "Robert").await?.len(), 1);

        // An account of Robert's, closed again: deleting it deletes its cards too. (An account
        // with transactions cannot be deleted: they are final, and would be left orphaned.)
        let closed = dio.store(Account {
            number: "NL-002".into(),
            owner: DaoRef::from(&bob),
            transactions: DaoVec::new(),
            cards: DaoVec::new(),
        })?;
        let card = closed.cards.push(
            &mut dio,
            Card {
                last_digits: "4242".into(),
            },
        )?;
        dio.commit().await?;
        let closed_key = *closed.key();
        closed.delete()?;
        dio.commit().await?;
        assert!(matches!(
            dio.load::<Account>(&closed_key).await,
            Err(DioError::NotFound(_))
        ));
        assert!(!dio.exists(card.key()).await);

        // Loading a record as the wrong type is a typed error.
        assert!(matches!(
            dio.load::<Person>(account.key()).await,
            Err(DioError::WrongType { .. })
        ));
        closed_key
    };

    // Reopen from disk: the view, its children and its indexes are rebuilt from the log.
    let chain = ChainBuilder::new(&conf).await.build().open(&key).await?;
    let dio = chain.dio(&session).await;
    let account = Account::find_by_number(&dio, "NL-001")
        .await?
        .expect("the account is indexed by number");
    let owner = account.owner.load(&dio).await?;
    let amounts: Vec<i64> = account
        .transactions
        .iter(&dio)
        .await?
        .iter()
        .map(|t| t.amount)
        .collect();
    assert_eq!(amounts, vec![100, -30, 45]);
    assert!(Account::find_by_number(&dio, "NL-002").await?.is_none());
    assert!(!dio.exists(&closed_key).await);
    assert_eq!(chain.len(), 6, "2 people, 1 account, 3 transactions");
    println!(
        "account {} of {} has {} transactions, balance {}",
        account.number,
        owner.name,
        amounts.len(),
        amounts.iter().sum::<i64>()
    );

    drop(dio);
    drop(chain);
    let _ = std::fs::remove_dir_all(&folder);
    Ok(())
}
