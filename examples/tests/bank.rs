//! The bank example's guarantees, through its library (`ate_examples::bank`): balances never
//! go negative, transfers are atomic and conserve the bank's money also when many touch the
//! same accounts at once, a request retried with its idempotency key is applied once, and
//! only owners move their money: the staff opens accounts, the auditor reads everything and
//! writes nothing. Through the `#[service]` API as well as the teller directly.

use std::sync::Arc;

use ate::crypto::{Hash, KeySize, PrivateSignKey};
use ate::prelude::*;
use ate::trust::TrustError;
use ate_examples::bank::{
    self, Account, Audit, BankApiClient, BankApiService, BankError, BankKeys, Branch, Deposit,
    OpenAccount, StatementRequest, Teller, Transfer, Withdraw, key_id, session_of,
};
use rand::Rng;

const NAME: &str = "test bank";

struct Bank {
    chain: Chain,
    keys: BankKeys,
    teller: Arc<Teller>,
    owners: Vec<PrivateSignKey>,
    numbers: Vec<String>,
}

/// A bank with `n` accounts, each paid `each` by its owner.
async fn bank_with(chain: Chain, n: usize, each: u64) -> Bank {
    let keys = BankKeys::generate();
    let teller = Arc::new(Teller::open(&chain, NAME, &keys).await.expect("teller"));
    let staff = [keys.staff.hash()];
    let mut owners = Vec::new();
    let mut numbers = Vec::new();
    for i in 0..n {
        let owner = PrivateSignKey::generate(KeySize::Bit128);
        let number = format!("{:08}", 10_000_000 + i);
        teller
            .open_account(
                &staff,
                &number,
                &format!("customer {i}"),
                &key_id(&owner.hash()),
            )
            .await
            .expect("open");
        teller
            .deposit(
                &[owner.hash()],
                &number,
                each,
                &format!("first deposit {i}"),
            )
            .await
            .expect("deposit");
        owners.push(owner);
        numbers.push(number);
    }
    Bank {
        chain,
        keys,
        teller,
        owners,
        numbers,
    }
}

async fn memory_chain(name: &str) -> Chain {
    ChainBuilder::new(&AteConfig::in_memory())
        .await
        .build()
        .open(&ChainKey::from(name))
        .await
        .expect("open")
}

async fn audited(bank: &Bank) -> Audit {
    bank::audit(&bank.chain, &bank.keys.auditor_session(), NAME)
        .await
        .expect("every invariant holds")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn money_moves_only_as_asked_and_never_below_zero() {
    let b = bank_with(memory_chain("bank-basic").await, 2, 100).await;
    let (a, c) = (&b.numbers[0], &b.numbers[1]);
    let alice = [b.owners[0].hash()];
    let bob = [b.owners[1].hash()];
    let t = &b.teller;
    assert_eq!(t.transfer(&alice, a, c, 30, "r1").await, Ok(70));
    assert_eq!(t.withdraw(&bob, c, 130, "r2").await, Ok(0));
    assert_eq!(
        t.withdraw(&bob, c, 1, "r3").await,
        Err(BankError::InsufficientFunds {
            number: c.clone(),
            balance: 0,
            wanted: 1
        })
    );
    assert!(matches!(
        t.transfer(&alice, a, c, 71, "r4").await,
        Err(BankError::InsufficientFunds { .. })
    ));
    assert!(matches!(
        t.transfer(&alice, a, a, 1, "r5").await,
        Err(BankError::Pointless(_))
    ));
    assert!(matches!(
        t.deposit(&alice, a, 0, "r6").await,
        Err(BankError::Pointless(_))
    ));
    assert!(matches!(
        t.transfer(&alice, a, "nope", 1, "r7").await,
        Err(BankError::NoSuchAccount(_))
    ));
    // Nothing of the refused ones moved anything.
    let s = t.statement(&alice, a).await.expect("statement");
    assert_eq!(s.balance, 70);
    assert_eq!(s.transactions.len(), 2);
    let audit = audited(&b).await;
    assert_eq!(
        (
            audit.accounts,
            audit.total,
            audit.deposited,
            audit.withdrawn,
            audit.transfers
        ),
        (2, 70, 200, 130, 1)
    );
    // A second account with a number in use.
    assert_eq!(
        t.open_account(
            &[b.keys.staff.hash()],
            a,
            "again",
            &key_id(&b.owners[1].hash())
        )
        .await,
        Err(BankError::DuplicateAccount(a.clone()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_retried_with_its_idempotency_key_is_applied_once() {
    let b = bank_with(memory_chain("bank-idem").await, 2, 100).await;
    let alice = [b.owners[0].hash()];
    let t = &b.teller;
    for _ in 0..3 {
        assert_eq!(
            t.transfer(&alice, &b.numbers[0], &b.numbers[1], 10, "pay rent")
                .await,
            Ok(90),
            "a retry answers the first outcome"
        );
    }
    // The same key for another request is refused, not applied.
    assert_eq!(
        t.transfer(&alice, &b.numbers[0], &b.numbers[1], 20, "pay rent")
            .await,
        Err(BankError::IdempotencyConflict("pay rent".into()))
    );
    // Retries at once, from many tasks: still once.
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let t = b.teller.clone();
            let (from, to) = (b.numbers[0].clone(), b.numbers[1].clone());
            tokio::spawn(async move { t.transfer(&alice, &from, &to, 5, "groceries").await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), Ok(85));
    }
    let s = t.statement(&alice, &b.numbers[0]).await.unwrap();
    assert_eq!(s.balance, 85);
    assert_eq!(s.transactions.len(), 3, "{:?}", s.transactions);
    assert_eq!(audited(&b).await.total, 200);
}

/// Random transfers from `tasks` tasks at once over few accounts (so they collide), each
/// owner moving its own money; returns how many were committed.
async fn random_transfers(b: &Bank, tasks: usize, each: usize) -> usize {
    let handles: Vec<_> = (0..tasks)
        .map(|task| {
            let teller = b.teller.clone();
            let numbers = b.numbers.clone();
            let owners: Vec<Hash> = b.owners.iter().map(|o| o.hash()).collect();
            tokio::spawn(async move {
                let mut done = 0;
                for i in 0..each {
                    let (from, to, amount) = {
                        let mut rng = rand::rng();
                        let from = rng.random_range(0..numbers.len());
                        let to = (from + rng.random_range(1..numbers.len())) % numbers.len();
                        (from, to, rng.random_range(1..=60))
                    };
                    match teller
                        .transfer(
                            &[owners[from]],
                            &numbers[from],
                            &numbers[to],
                            amount,
                            &format!("task {task} transfer {i}"),
                        )
                        .await
                    {
                        Ok(_) => done += 1,
                        Err(BankError::InsufficientFunds { .. }) => {}
                        Err(e) => panic!("transfer failed: {e}"),
                    }
                }
                done
            })
        })
        .collect();
    let mut done = 0;
    for h in handles {
        done += h.await.expect("task");
    }
    done
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_tasks_transferring_at_once_keep_every_invariant() {
    let dir = tempfile::tempdir().unwrap();
    let mut conf = AteConfig::at(dir.path());
    conf.preallocate = false;
    let chain = ChainBuilder::new(&conf)
        .await
        .build()
        .open(&ChainKey::from("bank"))
        .await
        .unwrap();
    let b = bank_with(chain, 4, 100).await;
    let done = random_transfers(&b, 8, 25).await;
    assert!(done > 0);
    assert!(
        b.teller.retries() > 0,
        "8 tasks over 4 accounts never collided: the test tests nothing"
    );
    let audit = audited(&b).await;
    assert_eq!(audit.total, 400, "the bank's money is conserved");
    assert_eq!(audit.transfers as usize, done);
    assert_eq!(audit.applied as usize, done + 4);
    // And after a reopen, from the log alone.
    let keys = b.keys.clone();
    drop(b);
    let chain = ChainBuilder::new(&conf)
        .await
        .build()
        .open(&ChainKey::from("bank"))
        .await
        .unwrap();
    let again = bank::audit(&chain, &keys.auditor_session(), NAME)
        .await
        .unwrap();
    assert_eq!(again, audit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_staff_and_auditor_each_do_only_what_they_may() {
    let b = bank_with(memory_chain("bank-roles").await, 2, 100).await;
    let (a, c) = (&b.numbers[0], &b.numbers[1]);
    let staff = [b.keys.staff.hash()];
    let bob = [b.owners[1].hash()];
    let t = &b.teller;
    // Bob cannot move Alice's money; the staff moves nobody's.
    assert_eq!(
        t.transfer(&bob, a, c, 10, "x").await,
        Err(BankError::NotOwner(a.clone()))
    );
    assert_eq!(
        t.withdraw(&staff, a, 10, "y").await,
        Err(BankError::NotOwner(a.clone()))
    );
    assert_eq!(
        t.deposit(&staff, a, 10, "z").await,
        Err(BankError::NotOwner(a.clone()))
    );
    assert_eq!(
        t.statement(&bob, a).await.err(),
        Some(BankError::NotOwner(a.clone()))
    );
    // Only the staff opens accounts.
    assert_eq!(
        t.open_account(&bob, "99", "bob again", &key_id(&bob[0]))
            .await,
        Err(BankError::NotStaff)
    );
    // Nobody but the teller writes the bank's records, whatever they try on the chain.
    for (who, session) in [
        ("the owner", session_of(&b.owners[0])),
        ("the staff", b.keys.staff_session()),
        ("the auditor", b.keys.auditor_session()),
    ] {
        let mut dio = b.chain.dio(&session).await;
        let mut acc = Account::find_by_number(&dio, a).await.unwrap().unwrap();
        acc.as_mut().balance += 1_000_000;
        drop(acc);
        let refused = dio.commit().await;
        assert!(
            matches!(
                refused,
                Err(AteError::Dio(DioError::MissingWriteKey { .. }))
                    | Err(AteError::Commit(CommitError::Trust(
                        TrustError::Unauthorized { .. }
                    )))
            ),
            "{who} wrote an account: {refused:?}"
        );
    }
    // The auditor reads every account and transaction; a stranger reads balances only.
    let audit = audited(&b).await;
    assert_eq!((audit.accounts, audit.total), (2, 200));
    let stranger = bank::audit(&b.chain, &AteSession::default(), NAME).await;
    assert!(
        stranger.is_err(),
        "a session without the bank's read key audited the bank"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_answers_through_the_chain_with_the_callers_checked() {
    let chain = memory_chain("bank-service").await;
    let b = bank_with(chain.clone(), 0, 0).await;
    let serving = chain
        .add_service(
            &b.keys.teller_session(),
            BankApiService::new(Branch(b.teller.clone())),
        )
        .await
        .expect("serve");
    let staff = BankApiClient::new(&chain, &b.keys.staff_session());
    let alice_key = PrivateSignKey::generate(KeySize::Bit128);
    let bob_key = PrivateSignKey::generate(KeySize::Bit128);
    for (n, key) in [("1", &alice_key), ("2", &bob_key)] {
        staff
            .open_account(OpenAccount {
                number: n.into(),
                name: format!("owner of {n}"),
                owner_key: key_id(&key.hash()),
            })
            .await
            .expect("the staff opens");
    }
    let alice = BankApiClient::new(&chain, &session_of(&alice_key));
    let bob = BankApiClient::new(&chain, &session_of(&bob_key));
    let dep = |n: &str, amount, r: &str| Deposit {
        number: n.into(),
        amount,
        reference: r.into(),
    };
    assert_eq!(alice.deposit(dep("1", 50, "a")).await.ok(), Some(50));
    assert_eq!(
        alice.deposit(dep("1", 50, "a")).await.ok(),
        Some(50),
        "applied once"
    );
    let tr = Transfer {
        from: "1".into(),
        to: "2".into(),
        amount: 20,
        reference: "b".into(),
    };
    assert_eq!(alice.transfer(tr.clone()).await.ok(), Some(30));
    assert!(matches!(
        bob.transfer(Transfer {
            from: "1".into(),
            ..tr.clone()
        })
        .await,
        Err(ate::service::InvokeError::Handler(BankError::NotOwner(_)))
    ));
    assert!(matches!(
        staff
            .withdraw(Withdraw {
                number: "2".into(),
                amount: 1,
                reference: "c".into()
            })
            .await,
        Err(ate::service::InvokeError::Handler(BankError::NotOwner(_)))
    ));
    let s = bob
        .statement(StatementRequest { number: "2".into() })
        .await
        .expect("bob's statement");
    assert_eq!(s.balance, 20);
    assert_eq!(s.transactions.len(), 1);
    serving.stop().await.expect("stop");
    assert_eq!(audited(&b).await.total, 50);
}
