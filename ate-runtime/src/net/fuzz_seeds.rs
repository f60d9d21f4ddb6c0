//! The seeds of the network fuzz targets (`fuzz/corpus/<target>/seed-*`): every handshake
//! message for `handshake`, and every application message for `wire_client` and `wire_server`.
//!
//! Written only when `ATE_FUZZ_SEEDS` is set (the handshake samples hold fresh keys, so each run
//! writes different bytes):
//!
//! ```text
//! ATE_FUZZ_SEEDS=1 cargo test -p ate-runtime --features client,server --lib net::fuzz_seeds
//! ```

use std::path::Path;

use bytes::Bytes;

use super::handshake::messages::tests::samples;
use super::wire::{self, ClientMsg, Refusal, ServerMsg, WireLimits, decode_client, decode_server};
use crate::event::PrimaryKey;
use crate::trust::TrustError;

/// Named seeds of one target.
type Seeds = Vec<(String, Vec<u8>)>;

fn handshake() -> Seeds {
    samples()
        .into_iter()
        .enumerate()
        .map(|(i, m)| (format!("{i}-{}", m.name().replace(' ', "-")), m.encode()))
        .collect()
}

fn wire_client() -> Seeds {
    let messages = [
        ("subscribe", ClientMsg::Subscribe { from: 1 }),
        ("subscribe-late", ClientMsg::Subscribe { from: u64::MAX }),
        (
            "commit",
            ClientMsg::Commit {
                id: 7,
                tx: Bytes::from_static(&[0x41; 40]),
            },
        ),
        (
            "commit-empty",
            ClientMsg::Commit {
                id: 0,
                tx: Bytes::new(),
            },
        ),
    ];
    messages
        .into_iter()
        .map(|(name, m)| (name.to_string(), wire::encode(&m)))
        .collect()
}

fn wire_server() -> Seeds {
    let key = PrimaryKey::from(0x0123_4567_89ab_cdef_0011_2233_4455_6677_u128);
    let messages = [
        (
            "opened",
            ServerMsg::Opened {
                chain: "bank/accounts".into(),
                last_seq: 42,
            },
        ),
        (
            "events",
            ServerMsg::Events {
                txs: vec![
                    (1, Bytes::from_static(b"first transaction")),
                    (2, Bytes::from_static(&[0; 24])),
                    (3, Bytes::new()),
                ],
            },
        ),
        ("caught-up", ServerMsg::CaughtUp { seq: 3 }),
        ("committed", ServerMsg::Committed { id: 7, seq: 4 }),
        (
            "refused-version",
            ServerMsg::Refused {
                id: 8,
                reason: Refusal::Trust(TrustError::VersionMismatch {
                    key,
                    claimed: Some(1),
                    current: Some(2),
                }),
            },
        ),
        (
            "refused-digest",
            ServerMsg::Refused {
                id: 9,
                reason: Refusal::Trust(TrustError::TxDigestMismatch),
            },
        ),
        (
            "refused-unique",
            ServerMsg::Refused {
                id: 10,
                reason: Refusal::Unique {
                    type_name: "Account".into(),
                    field: "email".into(),
                    existing: key,
                },
            },
        ),
        (
            "refused-large",
            ServerMsg::Refused {
                id: 11,
                reason: Refusal::TooLarge {
                    size: 1 << 25,
                    max: 1 << 24,
                },
            },
        ),
        (
            "refused-malformed",
            ServerMsg::Refused {
                id: 12,
                reason: Refusal::Malformed("truncated".into()),
            },
        ),
        (
            "refused-schema",
            ServerMsg::Refused {
                id: 13,
                reason: Refusal::Schema("weakened".into()),
            },
        ),
        (
            "refused-unavailable",
            ServerMsg::Refused {
                id: 14,
                reason: Refusal::Unavailable("closing".into()),
            },
        ),
        (
            "redirect",
            ServerMsg::Redirect {
                url: "ws://127.0.0.1:5001/db/bank/accounts".into(),
            },
        ),
        (
            "goodbye",
            ServerMsg::Goodbye {
                reason: "the server is shutting down".into(),
            },
        ),
    ];
    messages
        .into_iter()
        .map(|(name, m)| (name.to_string(), wire::encode(&m)))
        .collect()
}

/// What the fuzz targets assert, on every one-byte change of every seed: a mutant that decodes
/// is a message whose encoding decodes to it again.
#[test]
fn decoded_mutants_of_the_seeds_round_trip() {
    let limits = WireLimits::default();
    let mut decoded = 0;
    for (seeds, client) in [(wire_client(), true), (wire_server(), false)] {
        for (name, seed) in seeds {
            for at in 0..seed.len() {
                for byte in [
                    0x00, 0x01, 0x7f, 0x80, 0x90, 0xa1, 0xc0, 0xc2, 0xc4, 0xcc, 0xd0, 0xff,
                ] {
                    let mut mutant = seed.clone();
                    mutant[at] = byte;
                    if client {
                        if let Ok(m) = decode_client(&mutant, &limits) {
                            decoded += 1;
                            assert_eq!(
                                decode_client(&wire::encode(&m), &limits),
                                Ok(m),
                                "{name} {at}"
                            );
                        }
                    } else if let Ok(m) = decode_server(&mutant, &limits) {
                        decoded += 1;
                        assert_eq!(
                            decode_server(&wire::encode(&m), &limits),
                            Ok(m),
                            "{name} {at}"
                        );
                    }
                }
            }
        }
    }
    assert!(decoded > 100, "only {decoded} mutants decoded");
}

#[test]
fn fuzz_seeds() {
    let limits = WireLimits::default();
    let all = [
        ("handshake", handshake()),
        ("wire_client", wire_client()),
        ("wire_server", wire_server()),
    ];
    // Each seed is a valid input of its target, so the fuzzer starts past the decoders' checks.
    for (name, bytes) in &all[0].1 {
        assert!(
            super::handshake::messages::Message::decode(bytes).is_ok(),
            "{name}"
        );
    }
    for (name, bytes) in &all[1].1 {
        assert!(decode_client(bytes, &limits).is_ok(), "{name}");
    }
    for (name, bytes) in &all[2].1 {
        assert!(decode_server(bytes, &limits).is_ok(), "{name}");
    }
    if std::env::var_os("ATE_FUZZ_SEEDS").is_none() {
        return;
    }
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    for (target, seeds) in all {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir).expect("corpus folder");
        for old in std::fs::read_dir(&dir).expect("corpus folder") {
            let old = old.expect("entry").path();
            if old
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("seed-"))
            {
                std::fs::remove_file(old).expect("remove an old seed");
            }
        }
        for (name, bytes) in &seeds {
            std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("write a seed");
        }
        println!("{target}: {} seeds", seeds.len());
    }
}
