//! Keys in files, for operators: root keys a server pins, a server's identity, a reader's key.
//!
//! A key file is one line of text, `ate-key 1 <kind> <hex>`, where `<kind>` is one of
//! `sign-public`, `sign-private`, `encrypt-public`, `encrypt-private` and `<hex>` is the key's
//! MessagePack encoding (its serde form: algorithm id and bytes). Lines starting with `#` are
//! comments (the writer puts the algorithm and the key's id there). Private key files are created
//! with mode 0600 and never replace an existing file. Reading checks the kind, bounds the size
//! and decodes through the key's own checks, so a corrupt or swapped file is a typed error.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use super::{PrivateEncryptKey, PrivateSignKey, PublicEncryptKey, PublicSignKey};

/// The first word of every key file.
const MAGIC: &str = "ate-key";
/// The version of the key file layout.
const VERSION: &str = "1";
/// The largest key file read (a Falcon-1024 private key is ~3.6 KB, hex doubles it).
pub(crate) const MAX_FILE: u64 = 64 * 1024;

/// Why a key file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// The file could not be read, created or written.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a key file of this layout, or its key does not decode.
    #[error("key file {path}: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The file holds another kind of key than the one asked for.
    #[error("key file {path} holds a {found} key, not a {expected} key")]
    WrongKind {
        /// The file.
        path: PathBuf,
        /// The kind asked for.
        expected: &'static str,
        /// The kind found.
        found: String,
    },
}

/// A key that can be kept in a key file.
pub trait KeyFile: Sized + Serialize + DeserializeOwned {
    /// The kind written in the file.
    const KIND: &'static str;
    /// Whether the file holds a secret (created 0600).
    const SECRET: bool;

    /// A comment line describing the key (algorithm and id).
    fn describe(&self) -> String;

    /// Writes the key to a new file at `path` (an existing file is an error, never replaced).
    ///
    /// # Errors
    ///
    /// [`KeyFileError::Io`] if the file exists or cannot be written.
    fn save(&self, path: &Path) -> Result<(), KeyFileError> {
        let io = |source| KeyFileError::Io {
            path: path.to_path_buf(),
            source,
        };
        // The encodings of a private key are wiped once written.
        let bytes =
            Zeroizing::new(
                rmp_serde::to_vec(self).map_err(|e| KeyFileError::Malformed {
                    path: path.to_path_buf(),
                    reason: format!("cannot encode the key: {e}"),
                })?,
            );
        let text = Zeroizing::new(format!(
            "# {}\n{MAGIC} {VERSION} {} {}\n",
            self.describe(),
            Self::KIND,
            *Zeroizing::new(hex::encode(&*bytes))
        ));
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(if Self::SECRET { 0o600 } else { 0o644 });
        }
        let mut file = options.open(path).map_err(io)?;
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)
    }

    /// Reads the key from the file at `path`.
    ///
    /// # Errors
    ///
    /// [`KeyFileError::Io`] if it cannot be read, [`KeyFileError::WrongKind`] if it holds another
    /// kind of key, [`KeyFileError::Malformed`] for anything else wrong with it.
    fn load(path: &Path) -> Result<Self, KeyFileError> {
        let malformed = |reason: String| KeyFileError::Malformed {
            path: path.to_path_buf(),
            reason,
        };
        let io = |source| KeyFileError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = fs::File::open(path).map_err(io)?;
        let mut bytes = Zeroizing::new(Vec::new());
        file.take(MAX_FILE + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if bytes.len() as u64 > MAX_FILE {
            return Err(malformed(format!(
                "more than a key file holds ({MAX_FILE} bytes)"
            )));
        }
        let text = std::str::from_utf8(&bytes).map_err(|_| malformed("not text".into()))?;
        Self::from_key_file_text(path, text)
    }

    /// Reads the key from the text of a key file, as [`KeyFile::load`] does once it has read
    /// the file; `path` names the file in errors.
    ///
    /// # Errors
    ///
    /// [`KeyFileError::WrongKind`] if it holds another kind of key, [`KeyFileError::Malformed`]
    /// for anything else wrong with it.
    fn from_key_file_text(path: &Path, text: &str) -> Result<Self, KeyFileError> {
        let malformed = |reason: String| KeyFileError::Malformed {
            path: path.to_path_buf(),
            reason,
        };
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .ok_or_else(|| malformed("no key line".into()))?;
        let words: Vec<&str> = line.split_ascii_whitespace().collect();
        let [magic, version, kind, body] = words[..] else {
            return Err(malformed(format!(
                "expected `{MAGIC} {VERSION} <kind> <hex>`"
            )));
        };
        if magic != MAGIC {
            return Err(malformed("not an ATE key file".into()));
        }
        if version != VERSION {
            return Err(malformed(format!("key file version {version} is unknown")));
        }
        if kind != Self::KIND {
            return Err(KeyFileError::WrongKind {
                path: path.to_path_buf(),
                expected: Self::KIND,
                found: kind.into(),
            });
        }
        let bytes =
            Zeroizing::new(hex::decode(body).map_err(|e| malformed(format!("bad hex: {e}")))?);
        rmp_serde::from_slice(&bytes)
            .map_err(|e| malformed(format!("the key does not decode: {e}")))
    }
}

impl KeyFile for PublicSignKey {
    const KIND: &'static str = "sign-public";
    const SECRET: bool = false;
    fn describe(&self) -> String {
        format!("{} public key {}", self.algorithm(), self.hash())
    }
}

impl KeyFile for PrivateSignKey {
    const KIND: &'static str = "sign-private";
    const SECRET: bool = true;
    fn describe(&self) -> String {
        format!(
            "{} private key; public key {}",
            self.algorithm(),
            self.public_key().hash()
        )
    }
}

impl KeyFile for PublicEncryptKey {
    const KIND: &'static str = "encrypt-public";
    const SECRET: bool = false;
    fn describe(&self) -> String {
        format!("{} public key {}", self.algorithm(), self.hash())
    }
}

impl KeyFile for PrivateEncryptKey {
    const KIND: &'static str = "encrypt-private";
    const SECRET: bool = true;
    fn describe(&self) -> String {
        format!(
            "{} private key; public key {}",
            self.algorithm(),
            self.public_key().hash()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::KeySize;

    #[test]
    fn keys_round_trip_and_kinds_are_checked() {
        let dir = tempfile::tempdir().expect("dir");
        let sign = PrivateSignKey::generate(KeySize::Bit128);
        let private = dir.path().join("root.key");
        let public = dir.path().join("root.pub");
        sign.save(&private).expect("save");
        sign.as_public_key().save(&public).expect("save");
        assert_eq!(PrivateSignKey::load(&private).expect("load"), sign);
        assert_eq!(
            PublicSignKey::load(&public).expect("load"),
            sign.as_public_key()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&private).expect("meta").permissions().mode();
            assert_eq!(mode & 0o077, 0, "a private key file is the owner's only");
        }
        // Never replaced.
        assert!(matches!(sign.save(&private), Err(KeyFileError::Io { .. })));
        // A public key file is not a private key.
        assert!(matches!(
            PrivateSignKey::load(&public),
            Err(KeyFileError::WrongKind { .. })
        ));
        assert!(matches!(
            PublicEncryptKey::load(&public),
            Err(KeyFileError::WrongKind { .. })
        ));
        let enc = PrivateEncryptKey::generate(KeySize::Bit128);
        let e = dir.path().join("reader.key");
        enc.save(&e).expect("save");
        assert_eq!(PrivateEncryptKey::load(&e).expect("load"), enc);
    }

    #[test]
    fn damaged_files_are_typed_errors() {
        let dir = tempfile::tempdir().expect("dir");
        let key = PrivateSignKey::generate(KeySize::Bit128).as_public_key();
        let good = dir.path().join("good.pub");
        key.save(&good).expect("save");
        let text = fs::read_to_string(&good).expect("read");
        let line = text.lines().nth(1).expect("key line");
        let cases = [
            String::new(),
            "# only a comment\n".into(),
            "ate-key 2 sign-public 00\n".into(),
            "not-a-key 1 sign-public 00\n".into(),
            "ate-key 1 sign-public zz\n".into(),
            "ate-key 1 sign-public 0001\n".into(),
            line[..line.len() - 10].into(),
            "x".repeat(100_000),
        ];
        for (i, bad) in cases.iter().enumerate() {
            let p = dir.path().join(format!("bad{i}"));
            fs::write(&p, bad).expect("write");
            assert!(
                matches!(PublicSignKey::load(&p), Err(KeyFileError::Malformed { .. })),
                "case {i}: {:?}",
                PublicSignKey::load(&p).map(|_| ())
            );
        }
        let binary = dir.path().join("binary");
        fs::write(&binary, [0xff, 0xfe, 0x00]).expect("write");
        assert!(matches!(
            PublicSignKey::load(&binary),
            Err(KeyFileError::Malformed { .. })
        ));
        assert!(matches!(
            PublicSignKey::load(&dir.path().join("missing")),
            Err(KeyFileError::Io { .. })
        ));
    }
}
