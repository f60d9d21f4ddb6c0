//! The coin example's guarantees, through its library (`ate_examples::coin`): only the mint
//! issues, only an owner's signature moves a coin, the coin rules refuse every forgery, a
//! double spend is refused (in one process and across two client processes of one server),
//! balances add up to the supply, and a copy of the log verifies offline from the mint's
//! public key alone, a tampered copy does not.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use ate::crypto::{KeyFile, KeySize, PrivateSignKey, PublicSignKey};
use ate::net::ServerIdentity;
use ate::net::host::{Server, ServerConfig};
use ate::net::remote::RemoteOptions;
use ate::net::{ConnectOptions, ServerTrust};
use ate::prelude::*;
use ate::trust::{TrustError, WriteOption};
use ate_examples::coin::{self, Coin, CoinError, Mint, VerifyError, Wallet, coin_key};

async fn memory_chain(mint: &Mint) -> Chain {
    coin::registry(&AteConfig::in_memory(), &mint.public_key())
        .await
        .open(&ChainKey::from(coin::CHAIN))
        .await
        .expect("open")
}

fn refused_by_rules(r: Result<(), AteError>) -> String {
    match r {
        Err(AteError::Commit(CommitError::Trust(TrustError::Refused { validator, reason }))) => {
            assert_eq!(validator, "coin-rules");
            reason
        }
        other => panic!("not refused by the coin rules: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coins_move_only_by_their_owners_and_balances_add_up() {
    let mint = Mint::generate();
    let chain = memory_chain(&mint).await;
    let (alice, bob, carol) = (Wallet::generate(), Wallet::generate(), Wallet::generate());
    let keys = mint
        .issue(&chain, &alice.id(), &[(1, 10), (2, 5), (3, 1), (4, 1)])
        .await
        .expect("issue");
    assert_eq!(keys[0], coin_key(1, 10));
    assert_eq!(alice.balance(&chain).await.unwrap(), 17);
    // The same serial and value again is the same coin: refused.
    assert!(matches!(
        mint.issue(&chain, &bob.id(), &[(1, 10)]).await,
        Err(CoinError::AlreadyIssued(k)) if k == coin_key(1, 10)
    ));

    alice
        .transfer(&chain, coin_key(1, 10), &bob.id())
        .await
        .expect("alice pays bob");
    assert_eq!(alice.balance(&chain).await.unwrap(), 7);
    assert_eq!(bob.balance(&chain).await.unwrap(), 10);
    // Alice no longer owns it; carol never did.
    assert!(matches!(
        alice.transfer(&chain, coin_key(1, 10), &carol.id()).await,
        Err(CoinError::NotOwner(_))
    ));
    assert!(matches!(
        carol.transfer(&chain, coin_key(2, 5), &carol.id()).await,
        Err(CoinError::NotOwner(_))
    ));
    // Payments with whole coins.
    assert_eq!(alice.pay(&chain, 6, &carol.id()).await.expect("pay 6"), 6);
    assert!(matches!(
        alice.pay(&chain, 5, &carol.id()).await,
        Err(CoinError::Insufficient { have: 1, want: 5 })
    ));
    let balances = [
        alice.balance(&chain).await.unwrap(),
        bob.balance(&chain).await.unwrap(),
        carol.balance(&chain).await.unwrap(),
    ];
    assert_eq!(balances, [1, 10, 6]);
    assert_eq!(balances.iter().sum::<u64>(), 17, "the supply is conserved");
    // A coin that does not exist.
    assert!(matches!(
        bob.transfer(&chain, coin_key(99, 1), &carol.id()).await,
        Err(CoinError::NoSuchCoin(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_spends_of_one_coin_at_once_one_succeeds() {
    let mint = Mint::generate();
    let chain = memory_chain(&mint).await;
    let (alice, bob, carol) = (Wallet::generate(), Wallet::generate(), Wallet::generate());
    for round in 0..20u64 {
        let key = mint
            .issue(&chain, &alice.id(), &[(round, 1)])
            .await
            .expect("issue")[0];
        let mut a = chain.dio(alice.session()).await;
        let mut b = chain.dio(alice.session()).await;
        let pa = alice.stage_transfer(&mut a, key, &bob.id()).await.unwrap();
        let pb = alice
            .stage_transfer(&mut b, key, &carol.id())
            .await
            .unwrap();
        let (x, y) = tokio::join!(
            coin::commit_transfer(&mut a, pa),
            coin::commit_transfer(&mut b, pb)
        );
        let ok = [&x, &y].iter().filter(|r| r.is_ok()).count();
        assert_eq!(ok, 1, "round {round}: {x:?} {y:?}");
        assert!(
            matches!(
                (&x, &y),
                (Err(CoinError::AlreadySpent(_)), _) | (_, Err(CoinError::AlreadySpent(_)))
            ),
            "{x:?} {y:?}"
        );
    }
    let (b, c) = (
        bob.balance(&chain).await.unwrap(),
        carol.balance(&chain).await.unwrap(),
    );
    assert_eq!(b + c, 20);
    assert_eq!(alice.balance(&chain).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_coin_rules_refuse_every_forgery() {
    let mint = Mint::generate();
    let chain = memory_chain(&mint).await;
    let alice = Wallet::generate();
    let bob = Wallet::generate();
    mint.issue(&chain, &alice.id(), &[(1, 10)]).await.unwrap();

    // A wallet minting: the root is the mint's alone.
    let mut dio = chain.dio(alice.session()).await;
    let mut fake = dio
        .store_at(
            coin_key(2, 1000),
            Coin {
                serial: 2,
                value: 1000,
                owner: alice.id(),
            },
        )
        .unwrap();
    fake.auth_mut().read = ate::trust::ReadOption::Everyone;
    drop(fake);
    assert!(dio.commit().await.is_err(), "a wallet minted a coin");

    // The owner raising its coin's value: the key no longer matches.
    let mut dio = chain.dio(alice.session()).await;
    let mut c = dio.load::<Coin>(&coin_key(1, 10)).await.unwrap();
    c.as_mut().value = 1000;
    drop(c);
    let why = refused_by_rules(dio.commit().await);
    assert!(why.contains("not at the key"), "{why}");

    // The owner naming bob as owner but keeping the right to spend.
    let mut dio = chain.dio(alice.session()).await;
    let mut c = dio.load::<Coin>(&coin_key(1, 10)).await.unwrap();
    c.as_mut().owner = bob.id();
    drop(c);
    let why = refused_by_rules(dio.commit().await);
    assert!(why.contains("write right"), "{why}");

    // The owner destroying it.
    let mut dio = chain.dio(alice.session()).await;
    dio.delete(&coin_key(1, 10)).unwrap();
    let why = refused_by_rules(dio.commit().await);
    assert!(why.contains("never destroyed"), "{why}");

    // A coin made under a coin its maker owns (where its rights would let it write).
    let mut dio = chain.dio(alice.session()).await;
    let parent = dio.load::<Coin>(&coin_key(1, 10)).await.unwrap();
    let vec: DaoVec<Coin> = DaoVec::new();
    let mut child = dio
        .store_child_at(
            coin_key(3, 500),
            parent.key(),
            &vec,
            Coin {
                serial: 3,
                value: 500,
                owner: alice.id(),
            },
        )
        .unwrap();
    child.auth_mut().read = ate::trust::ReadOption::Everyone;
    child.auth_mut().write = WriteOption::Specific(Hash::from_hex(&alice.id()).unwrap());
    drop((child, parent));
    let why = refused_by_rules(dio.commit().await);
    assert!(why.contains("root"), "{why}");

    // Nothing changed: alice still has her one coin.
    assert_eq!(alice.balance(&chain).await.unwrap(), 10);
    assert_eq!(bob.balance(&chain).await.unwrap(), 0);
}

use ate::crypto::Hash;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_of_the_log_verifies_offline_and_a_tampered_one_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let mint = Mint::generate();
    let mut conf = AteConfig::at(dir.path());
    conf.preallocate = false;
    let chain = coin::registry(&conf, &mint.public_key())
        .await
        .open(&ChainKey::from(coin::CHAIN))
        .await
        .unwrap();
    let wallets: Vec<Wallet> = (0..3).map(|_| Wallet::generate()).collect();
    for (i, w) in wallets.iter().enumerate() {
        let coins: Vec<(u64, u64)> = (0..5).map(|j| (i as u64 * 10 + j, j + 1)).collect();
        mint.issue(&chain, &w.id(), &coins).await.unwrap();
    }
    for j in 0..5u64 {
        wallets[0]
            .transfer(&chain, coin_key(j, j + 1), &wallets[1].id())
            .await
            .unwrap();
    }
    wallets[1]
        .transfer(&chain, coin_key(0, 1), &wallets[2].id())
        .await
        .unwrap();
    let path = chain.path().unwrap().to_path_buf();
    let last = chain.last_seq();
    drop(chain);

    let copy = dir.path().join("copy.log");
    std::fs::copy(&path, &copy).unwrap();
    let v = coin::verify_log(&copy, coin::CHAIN, &mint.public_key())
        .await
        .expect("valid");
    assert_eq!(v.transactions, last);
    assert_eq!((v.coins, v.supply, v.transfers, v.owners), (15, 45, 6, 2));

    // Another mint's key: the first coins were not its to issue.
    let other = PrivateSignKey::generate(KeySize::Bit128).as_public_key();
    assert!(matches!(
        coin::verify_log(&copy, coin::CHAIN, &other).await,
        Err(VerifyError::Invalid { .. })
    ));
    // The wrong chain key: every signature covers the chain.
    assert!(
        coin::verify_log(&copy, "another", &mint.public_key())
            .await
            .is_err()
    );

    // Every 97th byte flipped in turn: each copy refused, none verifies.
    let bytes = std::fs::read(&path).unwrap();
    for at in (16..bytes.len()).step_by(97) {
        let mut bad = bytes.clone();
        bad[at] ^= 0x20;
        std::fs::write(&copy, &bad).unwrap();
        assert!(
            coin::verify_log(&copy, coin::CHAIN, &mint.public_key())
                .await
                .is_err(),
            "a copy with byte {at} flipped verified"
        );
    }
}

/// A wallet's key, saved for the children.
fn save_wallet(dir: &Path, name: &str, key: &PrivateSignKey) -> String {
    let path = dir.join(name);
    key.save(&path).unwrap();
    path.display().to_string()
}

const CHILD: &str = "COIN_TEST_CHILD";

/// Run by a child process (see the test below): loads the coin, says READY, waits for the GO
/// file, commits the spend and says how it went.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_spend() {
    let Ok(spec) = std::env::var(CHILD) else {
        return;
    };
    let [url, server, mint, wallet, to, coin, go]: [String; 7] = spec
        .split('|')
        .map(String::from)
        .collect::<Vec<_>>()
        .try_into()
        .expect("seven fields");
    let mut options = RemoteOptions::default();
    options.connect = ConnectOptions::new(ServerTrust::Pinned(server.parse().unwrap()));
    let mint = PublicSignKey::load(Path::new(&mint)).unwrap();
    let chain = coin::registry(&AteConfig::in_memory(), &mint)
        .await
        .open_url_with(&url, &options)
        .await
        .expect("open");
    let wallet = Wallet::from_key(PrivateSignKey::load(Path::new(&wallet)).unwrap());
    let key: PrimaryKey = coin.parse().unwrap();
    let mut dio = chain.dio(wallet.session()).await;
    let pending = wallet
        .stage_transfer(&mut dio, key, &to)
        .await
        .expect("stage");
    println!("READY");
    while !Path::new(&go).exists() {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    match coin::commit_transfer(&mut dio, pending).await {
        Ok(()) => println!("SPENT"),
        Err(CoinError::AlreadySpent(_)) => println!("REFUSED"),
        Err(e) => println!("ERROR {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_double_spend_from_two_processes_is_refused_once() {
    let dir = tempfile::tempdir().unwrap();
    let mint = Mint::generate();
    mint.public_key()
        .save(&dir.path().join("mint.pub"))
        .unwrap();
    let identity = ServerIdentity::generate(KeySize::Bit128);
    let mut config = ServerConfig::new(identity.clone());
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.chains = AteConfig::in_memory();
    config.root_keys = vec![mint.public_key()];
    let server = Server::start(config).await.expect("server");
    let url = server.url(coin::CHAIN);
    let mut options = RemoteOptions::default();
    options.connect = ConnectOptions::new(ServerTrust::Pinned(identity.hash()));
    let chain = coin::registry(&AteConfig::in_memory(), &mint.public_key())
        .await
        .open_url_with(&url, &options)
        .await
        .unwrap();
    let alice_key = PrivateSignKey::generate(KeySize::Bit128);
    let alice = Wallet::from_key(alice_key.clone());
    let (bob, carol) = (Wallet::generate(), Wallet::generate());
    let alice_file = save_wallet(dir.path(), "alice", &alice_key);

    for round in 0..3u64 {
        let key = mint
            .issue(&chain, &alice.id(), &[(round, 7)])
            .await
            .unwrap()[0];
        let go = dir.path().join(format!("go-{round}"));
        let children: Vec<_> = [&bob, &carol]
            .iter()
            .map(|to| {
                let spec = [
                    url.clone(),
                    identity.hash().to_string(),
                    dir.path().join("mint.pub").display().to_string(),
                    alice_file.clone(),
                    to.id(),
                    key.to_string(),
                    go.display().to_string(),
                ]
                .join("|");
                let mut child = Command::new(std::env::current_exe().unwrap())
                    .args(["child_spend", "--exact", "--nocapture", "-q"])
                    .env(CHILD, spec)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .spawn()
                    .expect("child");
                let lines = BufReader::new(child.stdout.take().unwrap()).lines();
                (child, lines)
            })
            .collect();
        let mut children: Vec<_> = children
            .into_iter()
            .map(|(child, mut lines)| {
                let ready = lines
                    .by_ref()
                    .map_while(Result::ok)
                    .find(|l| l == "READY" || l.starts_with("ERROR"));
                assert_eq!(ready.as_deref(), Some("READY"));
                (child, lines)
            })
            .collect();
        std::fs::write(&go, b"go").unwrap();
        let mut outcomes = Vec::new();
        for (child, lines) in children.iter_mut() {
            let said = lines
                .by_ref()
                .map_while(Result::ok)
                .find(|l| l == "SPENT" || l == "REFUSED" || l.starts_with("ERROR"));
            outcomes.push(said.unwrap_or_default());
            assert!(child.wait().unwrap().success());
        }
        outcomes.sort();
        assert_eq!(outcomes, ["REFUSED", "SPENT"], "round {round}");
        chain.sync().await.unwrap();
        let owner = chain
            .dio(&AteSession::default())
            .await
            .load::<Coin>(&key)
            .await
            .unwrap()
            .owner
            .clone();
        assert!(owner == bob.id() || owner == carol.id());
    }
    assert_eq!(alice.balance(&chain).await.unwrap(), 0);
    assert_eq!(
        bob.balance(&chain).await.unwrap() + carol.balance(&chain).await.unwrap(),
        21
    );
    drop(chain);
    server.shutdown().await;
}
