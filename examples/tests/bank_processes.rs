//! Two client processes making random transfers against one server, which is killed with
//! SIGKILL in the middle and started again on the same folder: the clients carry on (each
//! request retried with its idempotency key), and the bank's invariants hold when checked
//! from the server's chain afterwards, every acknowledged transfer there exactly once.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ate::crypto::{KeyFile, KeySize, PrivateEncryptKey, PrivateSignKey};
use ate::net::host::{Server, ServerConfig};
use ate::net::remote::RemoteOptions;
use ate::net::{ConnectOptions, IdentityHash, ServerIdentity, ServerTrust};
use ate::prelude::*;
use ate_examples::bank::{self, BankError, BankKeys, Teller, key_id};
use rand::Rng;

const ROLE: &str = "BANK_TEST_ROLE";
const DIR: &str = "BANK_TEST_DIR";
const PORT: &str = "BANK_TEST_PORT";
const WHO: &str = "BANK_TEST_WHO";
const NAME: &str = "process bank";
const ACCOUNTS: usize = 6;
const TRANSFERS: usize = 60;

fn keys(dir: &Path) -> BankKeys {
    BankKeys {
        teller: PrivateSignKey::load(&dir.join("teller.key")).unwrap(),
        staff: PrivateSignKey::load(&dir.join("staff.key")).unwrap(),
        read: PrivateEncryptKey::load(&dir.join("read.key")).unwrap(),
    }
}

fn owner(dir: &Path, i: usize) -> PrivateSignKey {
    PrivateSignKey::load(&dir.join(format!("owner{i}.key"))).unwrap()
}

fn number(i: usize) -> String {
    format!("acct-{i}")
}

fn options(dir: &Path) -> RemoteOptions {
    let id: IdentityHash = std::fs::read_to_string(dir.join("server.id"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut o = RemoteOptions::default();
    o.connect = ConnectOptions::new(ServerTrust::Pinned(id));
    o.reconnect_min = Some(Duration::from_millis(20));
    o.reconnect_max = Some(Duration::from_millis(200));
    o
}

async fn open_client(dir: &Path, port: u16) -> Chain {
    ChainBuilder::new(&AteConfig::in_memory())
        .await
        .build()
        .open_url_with(
            &format!("ws://127.0.0.1:{port}/db/{}", bank::CHAIN),
            &options(dir),
        )
        .await
        .expect("the client opens")
}

/// The entry point of the children: a server, or a client making transfers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let dir = PathBuf::from(std::env::var(DIR).unwrap());
    let port: u16 = std::env::var(PORT).unwrap().parse().unwrap();
    match role.as_str() {
        "server" => {
            let identity =
                ServerIdentity::load_or_generate(&dir.join("server.identity"), KeySize::Bit128)
                    .unwrap();
            let mut config = ServerConfig::new(identity.clone());
            config.listen = format!("127.0.0.1:{port}").parse().unwrap();
            config.chains = AteConfig::at(dir.join("server"));
            config.chains.preallocate = false;
            let server = Server::start(config).await.expect("the server starts");
            println!(
                "LISTENING {} {}",
                server.local_addr().port(),
                identity.hash()
            );
            std::future::pending::<()>().await;
        }
        "client" => {
            let who: usize = std::env::var(WHO).unwrap().parse().unwrap();
            let chain = open_client(&dir, port).await;
            let teller = Teller::open(&chain, NAME, &keys(&dir))
                .await
                .expect("teller");
            for i in 0..TRANSFERS {
                let (from, to, amount) = {
                    let mut rng = rand::rng();
                    let from = rng.random_range(0..ACCOUNTS);
                    (
                        from,
                        (from + rng.random_range(1..ACCOUNTS)) % ACCOUNTS,
                        rng.random_range(1..=300),
                    )
                };
                let caller = [owner(&dir, from).hash()];
                let reference = format!("client {who} transfer {i}");
                let started = Instant::now();
                // Retried with the same reference until the bank answers: applied once.
                loop {
                    match teller
                        .transfer(&caller, &number(from), &number(to), amount, &reference)
                        .await
                    {
                        Ok(_) => {
                            println!("OK {reference}");
                            break;
                        }
                        Err(BankError::InsufficientFunds { .. }) => {
                            println!("SHORT {reference}");
                            break;
                        }
                        Err(e @ (BankError::Chain(_) | BankError::Busy)) => {
                            println!("RETRY {reference}");
                            assert!(
                                started.elapsed() < Duration::from_secs(60),
                                "{reference}: {e}"
                            );
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        Err(e) => panic!("{reference}: {e}"),
                    }
                }
            }
            println!("RETRIED {}", teller.retries());
            println!("DONE");
        }
        other => panic!("unknown role {other}"),
    }
}

/// A child process, killed if the test ends before it did.
struct Kid(Child);

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts this binary as a child with `role`; its stdout lines arrive on the receiver.
fn spawn(role: &str, dir: &Path, port: u16, who: usize) -> (Kid, mpsc::Receiver<String>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["child", "--exact", "--nocapture", "-q", "--test-threads=1"])
        .env(ROLE, role)
        .env(DIR, dir)
        .env(PORT, port.to_string())
        .env(WHO, who.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start a child");
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (Kid(child), rx)
}

/// Starts the server child on `port` (0: any) and waits for its port.
fn start_server(dir: &Path, port: u16) -> (Kid, u16, mpsc::Receiver<String>) {
    let (child, rx) = spawn("server", dir, port, 0);
    let line = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the server says where it listens");
        if line.starts_with("LISTENING") {
            break line;
        }
    };
    let mut parts = line.split_whitespace();
    assert_eq!(parts.next(), Some("LISTENING"), "{line}");
    let port: u16 = parts.next().unwrap().parse().unwrap();
    std::fs::write(dir.join("server.id"), parts.next().unwrap()).unwrap();
    (child, port, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_client_processes_and_a_killed_server_keep_every_invariant() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let keys = BankKeys {
        teller: PrivateSignKey::generate(KeySize::Bit128),
        staff: PrivateSignKey::generate(KeySize::Bit128),
        read: PrivateEncryptKey::generate(KeySize::Bit128),
    };
    keys.teller.save(&dir.join("teller.key")).unwrap();
    keys.staff.save(&dir.join("staff.key")).unwrap();
    keys.read.save(&dir.join("read.key")).unwrap();
    let (mut server, port, _) = start_server(dir, 0);

    // The bank: six accounts of 1,000 each.
    {
        let chain = open_client(dir, port).await;
        let teller = Teller::open(&chain, NAME, &keys).await.unwrap();
        for i in 0..ACCOUNTS {
            let key = PrivateSignKey::generate(KeySize::Bit128);
            key.save(&dir.join(format!("owner{i}.key"))).unwrap();
            teller
                .open_account(
                    &[keys.staff.hash()],
                    &number(i),
                    &format!("c{i}"),
                    &key_id(&key.hash()),
                )
                .await
                .unwrap();
            teller
                .deposit(&[key.hash()], &number(i), 1000, &format!("opening {i}"))
                .await
                .unwrap();
        }
    }

    let clients: Vec<_> = (0..2).map(|who| spawn("client", dir, port, who)).collect();
    // Once the clients are under way, the server is killed and started again.
    let (mut clients, mut acked): (Vec<_>, Vec<String>) = (clients, Vec::new());
    let deadline = Instant::now() + Duration::from_secs(120);
    while acked.len() < 20 {
        assert!(Instant::now() < deadline, "the clients made no progress");
        for (_, rx) in &clients {
            while let Ok(line) = rx.try_recv() {
                acked.push(line);
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    server.0.kill().expect("SIGKILL the server");
    server.0.wait().unwrap();
    let (server, again, _) = start_server(dir, port);
    assert_eq!(again, port);

    for (child, rx) in clients.iter_mut() {
        let status = child.0.wait().expect("client");
        acked.extend(rx.try_iter());
        assert!(status.success(), "a client failed");
    }
    let done = acked.iter().filter(|l| *l == "DONE").count();
    assert_eq!(done, 2, "{acked:?}");
    let ok: Vec<&String> = acked.iter().filter(|l| l.starts_with("OK ")).collect();
    let retried = acked.iter().filter(|l| l.starts_with("RETRY ")).count();
    let read_again: u64 = acked
        .iter()
        .filter_map(|l| l.strip_prefix("RETRIED "))
        .map(|n| n.parse::<u64>().unwrap_or(0))
        .sum();
    eprintln!(
        "{} transfers acknowledged, {} short of funds, {read_again} read again (stale or cut off), {retried} retried by the clients across the server's kill",
        ok.len(),
        acked.iter().filter(|l| l.starts_with("SHORT ")).count()
    );

    // Checked from the server's chain, through a new client.
    let chain = open_client(dir, port).await;
    let audit = bank::audit(&chain, &keys.auditor_session(), NAME)
        .await
        .expect("every invariant holds");
    assert_eq!(audit.total, 6000, "the bank's money is conserved");
    assert_eq!(audit.deposited, 6000);
    assert_eq!(
        audit.transfers as usize,
        ok.len(),
        "each acknowledged transfer is there, once"
    );
    assert_eq!(audit.applied as usize, ok.len() + ACCOUNTS);
    drop((chain, server));
}
