//! Server identities and the client's record of them.
//!
//! A server proves who it is with a Falcon key, its [`ServerIdentity`], by signing every
//! handshake. Clients name the identity by its [`IdentityHash`] and either pin it
//! ([`ServerTrust::Pinned`](super::ServerTrust)) or trust it on first use: [`KnownServers`]
//! records the hash the first time a `host:port` is reached and refuses any other identity
//! there afterwards.
//!
//! # Identity key file
//!
//! A key file of [`crypto::keyfile`](crate::crypto::keyfile) holding the identity's private
//! key: a comment line, then `ate-key 1 sign-private <hex>`. A key written by `atedb keygen` (or
//! [`KeyFile::save`] of a [`PrivateSignKey`]) can therefore serve as an identity, and an
//! identity file can be read as a [`PrivateSignKey`]. Written with permissions `0600` (owner
//! only), never replaced, and refused on load when other users have any access to it.
//!
//! Identity files of the earlier binary layout are still read (nothing writes it any more);
//! all integers little-endian:
//!
//! ```text
//! size  field
//! 8     magic "ATE-SID\0" (41 54 45 2D 53 49 44 00)
//! 2     format version (u16), 1
//! 1     signature algorithm id (1 = Falcon-512, 2 = Falcon-1024)
//! 2     public key length P (u16)
//! P     public key
//! 2     secret key length S (u16)
//! S     secret key
//! 32    SHA3-256 of every byte above
//! ```
//!
//! # Known-servers file
//!
//! Text, one server per line: `host:port`, one space, the identity hash as 64 lowercase hex
//! digits. Blank lines and lines starting with `#` are ignored. The host is lowercased and an
//! IPv6 address is written in brackets (`[::1]:5000`).

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::crypto::keyfile::MAX_FILE as MAX_KEY_FILE;
use crate::crypto::{
    Hash, KeyFile, KeyFileError, KeySize, PrivateSignKey, PublicSignKey, SignAlgorithm,
};

use super::error::{IdentityError, NetError};

/// The SHA3-256 id of a server's public identity key (the key's
/// [`PublicSignKey::hash`]): what a client pins.
///
/// `Display` writes all 64 hex digits; `FromStr` parses them.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IdentityHash(Hash);

impl IdentityHash {
    /// The identity hash of a public key.
    pub fn of(key: &PublicSignKey) -> Self {
        IdentityHash(key.hash())
    }

    /// The underlying hash.
    pub fn as_hash(&self) -> Hash {
        self.0
    }
}

impl From<Hash> for IdentityHash {
    fn from(hash: Hash) -> Self {
        IdentityHash(hash)
    }
}

impl fmt::Display for IdentityHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_hex())
    }
}

impl fmt::Debug for IdentityHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdentityHash({})", self.0.to_hex())
    }
}

impl FromStr for IdentityHash {
    type Err = IdentityError;

    /// Parses 64 hex digits (either case); anything else is [`IdentityError::InvalidHash`].
    fn from_str(s: &str) -> Result<Self, IdentityError> {
        Hash::from_hex(s)
            .map(IdentityHash)
            .ok_or_else(|| IdentityError::InvalidHash(s.chars().take(80).collect()))
    }
}

/// The magic of the earlier binary layout of identity files.
const LEGACY_MAGIC: &[u8; 8] = b"ATE-SID\0";
/// The one version of the earlier binary layout.
const LEGACY_VERSION: u16 = 1;

/// A server's identity: the Falcon key that signs its handshakes.
///
/// `Debug` shows only the public hash.
#[derive(Clone)]
pub struct ServerIdentity {
    key: PrivateSignKey,
    hash: IdentityHash,
}

impl ServerIdentity {
    /// A new identity with a key of the given size (Falcon-512 for 128 and 192 bits,
    /// Falcon-1024 for 256).
    pub fn generate(size: KeySize) -> Self {
        ServerIdentity::from_key(PrivateSignKey::generate(size))
    }

    /// An identity from an existing key (for example the key a server also vouches with).
    pub fn from_key(key: PrivateSignKey) -> Self {
        let hash = IdentityHash::of(key.public_key());
        ServerIdentity { key, hash }
    }

    /// The private key.
    pub fn key(&self) -> &PrivateSignKey {
        &self.key
    }

    /// The public key clients see.
    pub fn public_key(&self) -> &PublicSignKey {
        self.key.public_key()
    }

    /// The hash clients pin.
    pub fn hash(&self) -> IdentityHash {
        self.hash
    }

    /// Writes the identity to a new key file at `path` (`ate-key 1 sign-private <hex>`, see
    /// the module documentation), readable by its owner only (mode `0600` on Unix), and syncs
    /// it. An existing file is never replaced: replacing a server's identity makes every
    /// client that knows it refuse the server.
    ///
    /// # Errors
    ///
    /// [`IdentityError::Io`] if the file exists or cannot be written.
    pub fn save(&self, path: &Path) -> Result<(), IdentityError> {
        self.key.save(path).map_err(from_key_file)
    }

    /// Reads an identity written by [`ServerIdentity::save`], a private signing key file
    /// written by [`KeyFile::save`] (`atedb keygen`), or an identity file of the earlier binary
    /// layout.
    ///
    /// # Errors
    ///
    /// [`IdentityError::Io`] if it cannot be read; [`IdentityError::InsecurePermissions`] if
    /// other users have any access to it (Unix); [`IdentityError::UnsupportedVersion`] for an
    /// unknown version of the earlier layout; [`IdentityError::Corrupt`] for anything else that
    /// is wrong with it (another kind of key among them).
    pub fn load(path: &Path) -> Result<Self, IdentityError> {
        let file = fs::File::open(path).map_err(|e| IdentityError::io(path, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = file
                .metadata()
                .map_err(|e| IdentityError::io(path, e))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(IdentityError::InsecurePermissions {
                    path: path.to_path_buf(),
                    mode: mode & 0o7777,
                });
            }
        }
        let mut bytes = zeroize::Zeroizing::new(Vec::new());
        file.take(MAX_KEY_FILE + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| IdentityError::io(path, e))?;
        if bytes.starts_with(LEGACY_MAGIC) {
            return ServerIdentity::decode_legacy(path, &bytes);
        }
        if bytes.len() as u64 > MAX_KEY_FILE {
            return Err(IdentityError::corrupt(path, "larger than any key file"));
        }
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| IdentityError::corrupt(path, "neither a key file nor an identity file"))?;
        PrivateSignKey::from_key_file_text(path, text)
            .map(ServerIdentity::from_key)
            .map_err(from_key_file)
    }

    /// Loads the identity at `path`, or generates one of the given size and saves it there if
    /// there is no file yet (what a server does on start).
    ///
    /// # Errors
    ///
    /// As [`ServerIdentity::load`] and [`ServerIdentity::save`].
    pub fn load_or_generate(path: &Path, size: KeySize) -> Result<Self, IdentityError> {
        match ServerIdentity::load(path) {
            Err(IdentityError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                let identity = ServerIdentity::generate(size);
                match identity.save(path) {
                    Ok(()) => Ok(identity),
                    // Another process saved one first: use it.
                    Err(IdentityError::Io { source, .. })
                        if source.kind() == std::io::ErrorKind::AlreadyExists =>
                    {
                        ServerIdentity::load(path)
                    }
                    Err(e) => Err(e),
                }
            }
            other => other,
        }
    }

    /// The earlier binary layout, as it was written (for the tests of its reader).
    #[cfg(test)]
    fn encode_legacy(&self) -> Vec<u8> {
        let public = self.key.public_key().as_bytes();
        let secret = self.key.secret_bytes();
        let mut out = Vec::with_capacity(8 + 2 + 1 + 4 + public.len() + secret.len() + 32);
        out.extend_from_slice(LEGACY_MAGIC);
        out.extend_from_slice(&LEGACY_VERSION.to_le_bytes());
        out.push(self.key.algorithm().as_u8());
        for part in [public, secret] {
            let len = u16::try_from(part.len()).expect("Falcon keys are under 64 KiB");
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(part);
        }
        let sum = Hash::of(&out);
        out.extend_from_slice(sum.as_bytes());
        out
    }

    /// Reads the earlier binary layout.
    fn decode_legacy(path: &Path, bytes: &[u8]) -> Result<Self, IdentityError> {
        let corrupt = |detail: &str| IdentityError::corrupt(path, detail);
        if bytes.len() as u64 > MAX_KEY_FILE {
            return Err(corrupt("larger than any identity key"));
        }
        if bytes.len() < 8 + 2 || &bytes[..8] != LEGACY_MAGIC {
            return Err(corrupt("no identity key magic"));
        }
        let version = u16::from_le_bytes([bytes[8], bytes[9]]);
        if version != LEGACY_VERSION {
            return Err(IdentityError::UnsupportedVersion {
                path: path.to_path_buf(),
                version,
            });
        }
        let Some(body_len) = bytes.len().checked_sub(32) else {
            return Err(corrupt("truncated"));
        };
        let (body, sum) = bytes.split_at(body_len);
        if body.len() < 11 || Hash::of(body).as_bytes()[..] != sum[..] {
            return Err(corrupt("checksum mismatch (damaged or truncated)"));
        }
        let mut rest = &body[10..];
        let alg = SignAlgorithm::try_from(rest[0]).map_err(|e| corrupt(&e.to_string()))?;
        rest = &rest[1..];
        let mut take = || -> Result<&[u8], IdentityError> {
            if rest.len() < 2 {
                return Err(corrupt("truncated"));
            }
            let len = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
            if rest.len() < 2 + len {
                return Err(corrupt("truncated"));
            }
            let (part, tail) = rest[2..].split_at(len);
            rest = tail;
            Ok(part)
        };
        let public = take()?;
        let secret = take()?;
        if !rest.is_empty() {
            return Err(corrupt("trailing bytes"));
        }
        let key =
            PrivateSignKey::from_bytes(alg, public, secret).map_err(|e| corrupt(&e.to_string()))?;
        Ok(ServerIdentity::from_key(key))
    }
}

/// The identity error of a key file's.
fn from_key_file(e: KeyFileError) -> IdentityError {
    match e {
        KeyFileError::Io { path, source } => IdentityError::Io { path, source },
        KeyFileError::Malformed { path, reason } => IdentityError::Corrupt {
            path,
            detail: reason,
        },
        KeyFileError::WrongKind {
            path,
            expected,
            found,
        } => IdentityError::Corrupt {
            path,
            detail: format!("holds a {found} key, not a {expected} key"),
        },
    }
}

impl fmt::Debug for ServerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerIdentity")
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

/// Upper bound of a known-servers file; a larger one is refused as corrupt.
const MAX_KNOWN_SERVERS_FILE: u64 = 4 << 20;

/// Trust on first use: the identity each server presented the first time it was reached.
///
/// Backed by a small text file (one `host:port identity-hash` per line; `docs/PROTOCOL.md`)
/// or kept in memory. The file is read at every check, so several processes share what any of
/// them recorded; an entry is added by rewriting the file into a temporary file and renaming it
/// over the old one. Clones share the same store.
#[derive(Debug, Clone)]
pub struct KnownServers {
    path: Option<PathBuf>,
    /// In memory: the entries. On file: unused, but its lock serializes this process's
    /// read-modify-write of the file.
    entries: Arc<Mutex<BTreeMap<String, IdentityHash>>>,
}

/// What [`KnownServers::check`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Known {
    /// The server presented the identity recorded for it.
    Same,
    /// The server was not known yet.
    New,
}

impl KnownServers {
    /// A store in the file at `path` (created when the first server is recorded).
    pub fn at(path: impl Into<PathBuf>) -> Self {
        KnownServers {
            path: Some(path.into()),
            entries: Arc::default(),
        }
    }

    /// A store that lives as long as this value (and its clones).
    pub fn in_memory() -> Self {
        KnownServers {
            path: None,
            entries: Arc::default(),
        }
    }

    /// The store clients use by default: `known_servers` in the folder `ate` of the user's
    /// configuration folder (`$XDG_CONFIG_HOME/ate`, else `$HOME/.config/ate`), or in the
    /// default log folder when neither variable is set.
    pub fn default_path() -> PathBuf {
        let config = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|v| !v.is_empty())
                    .map(|home| PathBuf::from(home).join(".config"))
            });
        match config {
            Some(dir) => dir.join("ate").join("known_servers"),
            None => crate::chain::default_log_path().join("known_servers"),
        }
    }

    /// The file backing this store, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The identity recorded for `server` (`host:port`, as in the file).
    ///
    /// # Errors
    ///
    /// [`IdentityError`] if the file cannot be read or does not parse.
    pub fn get(&self, server: &str) -> Result<Option<IdentityHash>, IdentityError> {
        let entries = self.entries.lock();
        match &self.path {
            None => Ok(entries.get(server).copied()),
            Some(path) => Ok(read_known(path)?.get(server).copied()),
        }
    }

    /// Records `identity` for `server`, replacing what was recorded (for an operator who
    /// knows the server's identity changed).
    ///
    /// # Errors
    ///
    /// [`IdentityError`] if the file cannot be read, parsed or written.
    pub fn set(&self, server: &str, identity: IdentityHash) -> Result<(), IdentityError> {
        let mut entries = self.entries.lock();
        match &self.path {
            None => {
                entries.insert(server.to_owned(), identity);
                Ok(())
            }
            Some(path) => {
                let mut known = read_known(path)?;
                known.insert(server.to_owned(), identity);
                write_known(path, &known)
            }
        }
    }

    /// Checks `got` against what is recorded for `server`, recording it if nothing is.
    pub(crate) fn check_or_record(
        &self,
        server: &str,
        got: IdentityHash,
    ) -> Result<Known, NetError> {
        let mut entries = self.entries.lock();
        let mut known = match &self.path {
            None => std::mem::take(&mut *entries),
            Some(path) => read_known(path)?,
        };
        let result = match known.get(server) {
            Some(expected) if *expected == got => Ok(Known::Same),
            Some(expected) => Err(NetError::IdentityMismatch {
                server: server.to_owned(),
                expected: *expected,
                got,
            }),
            None => {
                known.insert(server.to_owned(), got);
                if let Some(path) = &self.path {
                    write_known(path, &known)?;
                }
                Ok(Known::New)
            }
        };
        if self.path.is_none() {
            *entries = known;
        }
        result
    }

    /// Checks `got` against what is recorded for `server` without recording anything.
    pub(crate) fn check(&self, server: &str, got: IdentityHash) -> Result<Known, NetError> {
        match self.get(server)? {
            Some(expected) if expected == got => Ok(Known::Same),
            Some(expected) => Err(NetError::IdentityMismatch {
                server: server.to_owned(),
                expected,
                got,
            }),
            None => Ok(Known::New),
        }
    }
}

fn read_known(path: &Path) -> Result<BTreeMap<String, IdentityHash>, IdentityError> {
    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(IdentityError::io(path, e)),
    };
    let mut text = String::new();
    let mut limited = file.take(MAX_KNOWN_SERVERS_FILE + 1);
    limited.read_to_string(&mut text).map_err(|e| {
        if e.kind() == std::io::ErrorKind::InvalidData {
            IdentityError::KnownServersCorrupt {
                path: path.to_path_buf(),
                line: 0,
                detail: "not UTF-8 text".into(),
            }
        } else {
            IdentityError::io(path, e)
        }
    })?;
    if text.len() as u64 > MAX_KNOWN_SERVERS_FILE {
        return Err(IdentityError::KnownServersCorrupt {
            path: path.to_path_buf(),
            line: 0,
            detail: format!("larger than {MAX_KNOWN_SERVERS_FILE} bytes"),
        });
    }
    parse_known(path, &text)
}

fn parse_known(path: &Path, text: &str) -> Result<BTreeMap<String, IdentityHash>, IdentityError> {
    let mut known = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let corrupt = |detail: &str| IdentityError::KnownServersCorrupt {
            path: path.to_path_buf(),
            line: i + 1,
            detail: detail.into(),
        };
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_ascii_whitespace();
        let (Some(server), Some(hash), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(corrupt("expected `host:port identity-hash`"));
        };
        if !server.contains(':') {
            return Err(corrupt("the server is not `host:port`"));
        }
        let hash: IdentityHash = hash
            .parse()
            .map_err(|_| corrupt("the identity hash is not 64 hex digits"))?;
        if known.insert(server.to_owned(), hash).is_some() {
            return Err(corrupt("server listed twice"));
        }
    }
    Ok(known)
}

fn write_known(path: &Path, known: &BTreeMap<String, IdentityHash>) -> Result<(), IdentityError> {
    let mut text = String::from("# Servers reached by ATE clients: host:port identity-hash\n");
    for (server, hash) in known {
        text.push_str(server);
        text.push(' ');
        text.push_str(&hash.to_string());
        text.push('\n');
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| IdentityError::io(dir, e))?;
    }
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let write = || -> std::io::Result<()> {
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        IdentityError::io(path, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> ServerIdentity {
        ServerIdentity::generate(KeySize::Bit128)
    }

    #[test]
    fn identity_hash_parses_its_display() {
        let id = identity();
        let text = id.hash().to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(text.parse::<IdentityHash>().unwrap(), id.hash());
        assert_eq!(
            text.to_uppercase().parse::<IdentityHash>().unwrap(),
            id.hash()
        );
        assert_eq!(id.hash(), IdentityHash::of(id.public_key()));
        assert_eq!(id.hash().as_hash(), id.key().hash());
        for bad in [
            "",
            "00",
            &text[1..],
            &format!("{text}0"),
            &text.replace('a', "g"),
        ] {
            if bad == text {
                continue;
            }
            assert!(matches!(
                bad.parse::<IdentityHash>(),
                Err(IdentityError::InvalidHash(_))
            ));
        }
        assert!(!format!("{id:?}").contains(&hex::encode(&id.key().secret_bytes()[..8])));
    }

    #[test]
    fn save_load_round_trip_with_owner_only_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.key");
        let id = identity();
        id.save(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let back = ServerIdentity::load(&path).unwrap();
        assert_eq!(back.hash(), id.hash());
        assert_eq!(back.key(), id.key());
        // A key file: its key line, and readable as the private key it holds.
        let text = fs::read_to_string(&path).unwrap();
        assert!(
            text.lines()
                .any(|l| l.starts_with("ate-key 1 sign-private ")),
            "{text}"
        );
        assert_eq!(&PrivateSignKey::load(&path).unwrap(), id.key());
        // Never replaced.
        assert!(matches!(
            identity().save(&path),
            Err(IdentityError::Io { source, .. }) if source.kind() == std::io::ErrorKind::AlreadyExists
        ));
        let same = ServerIdentity::load_or_generate(&path, KeySize::Bit128).unwrap();
        assert_eq!(same.hash(), id.hash());
        let fresh_path = dir.path().join("new.key");
        let fresh = ServerIdentity::load_or_generate(&fresh_path, KeySize::Bit128).unwrap();
        assert_eq!(
            ServerIdentity::load(&fresh_path).unwrap().hash(),
            fresh.hash()
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.key");
        identity().save(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(
            ServerIdentity::load(&path),
            Err(IdentityError::InsecurePermissions { mode: 0o640, .. })
        ));
    }

    #[test]
    fn every_damaged_key_file_is_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let good = identity().encode_legacy();
        let check = |bytes: &[u8]| {
            let r = ServerIdentity::decode_legacy(&path, bytes);
            assert!(
                matches!(
                    r,
                    Err(IdentityError::Corrupt { .. } | IdentityError::UnsupportedVersion { .. })
                ),
                "{r:?}"
            );
        };
        for len in 0..good.len() {
            check(&good[..len]);
        }
        let mut longer = good.clone();
        longer.push(0);
        check(&longer);
        for i in (0..good.len())
            .step_by(13)
            .chain([0, 8, 10, good.len() - 1])
        {
            let mut bad = good.clone();
            bad[i] ^= 0x04;
            check(&bad);
        }
        let mut newer = good.clone();
        newer[8] = 2;
        assert!(matches!(
            ServerIdentity::decode_legacy(&path, &newer),
            Err(IdentityError::UnsupportedVersion { version: 2, .. })
        ));
        // A consistent checksum over a key whose halves do not match.
        let other = identity().encode_legacy();
        let mut spliced = good[..good.len() - 32].to_vec();
        let secret_at = 13 + SignAlgorithm::Falcon512.public_key_len() + 2;
        spliced[secret_at..].copy_from_slice(&other[secret_at..other.len() - 32]);
        let sum = Hash::of(&spliced);
        spliced.extend_from_slice(sum.as_bytes());
        check(&spliced);
        check(&vec![0xAB; (MAX_KEY_FILE + 1) as usize]);
    }

    /// Writes `bytes` to a new file at `path` that only its owner may read.
    fn write_private(path: &Path, bytes: &[u8]) {
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        options.open(path).unwrap().write_all(bytes).unwrap();
    }

    #[test]
    fn a_signing_key_file_is_an_identity_and_other_keys_are_not() {
        let dir = tempfile::tempdir().unwrap();
        // What `atedb keygen` writes.
        let key = PrivateSignKey::generate(KeySize::Bit128);
        let path = dir.path().join("keygen.key");
        key.save(&path).unwrap();
        let id = ServerIdentity::load(&path).unwrap();
        assert_eq!(id.hash(), IdentityHash::of(key.public_key()));
        // Its public half, or an encryption key, is no identity (copied to an owner-only
        // file, so that the kind is what is refused).
        let scratch = dir.path().join("keygen.key.pub");
        key.as_public_key().save(&scratch).unwrap();
        let public = dir.path().join("public.key");
        write_private(&public, &fs::read(&scratch).unwrap());
        let encrypt = dir.path().join("reader.key");
        crate::crypto::PrivateEncryptKey::generate(KeySize::Bit128)
            .save(&encrypt)
            .unwrap();
        for (path, kind) in [(&public, "sign-public"), (&encrypt, "encrypt-private")] {
            match ServerIdentity::load(path) {
                Err(IdentityError::Corrupt { detail, .. }) => {
                    assert!(detail.contains(kind), "{detail}")
                }
                other => panic!("expected Corrupt, got {:?}", other.map(|i| i.hash())),
            }
        }
    }

    #[test]
    fn identity_files_of_the_binary_layout_still_load() {
        // Written by the binary layout's writer before identities became key files.
        const FILE: &[u8] = include_bytes!("testdata/server-identity-binary-v1");
        const HASH: &str = "6178f5519248b0dea87bf2b9a9ee0789b46e6bf5d929cc4cd14960578783d0e6";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.identity");
        write_private(&path, FILE);
        let id = ServerIdentity::load(&path).unwrap();
        assert_eq!(id.hash().to_string(), HASH);
        // A server starting on it keeps it, and the file as it is.
        let again = ServerIdentity::load_or_generate(&path, KeySize::Bit128).unwrap();
        assert_eq!(again.hash(), id.hash());
        assert_eq!(fs::read(&path).unwrap(), FILE);
        // And it signs what clients verify.
        let signature = id.key().sign(b"transcript");
        assert!(id.public_key().verify(b"transcript", &signature).is_ok());
    }

    #[test]
    fn damaged_key_files_are_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        let good_path = dir.path().join("good");
        identity().save(&good_path).unwrap();
        let good = fs::read_to_string(&good_path).unwrap();
        let line = good.lines().nth(1).unwrap();
        let cases: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"# a comment only\n".to_vec(),
            vec![0xff, 0xfe, 0x00, 0x41],
            b"ate-key 2 sign-private 00\n".to_vec(),
            b"ate-key 1 sign-private zz\n".to_vec(),
            line.as_bytes()[..line.len() - 8].to_vec(),
            // The secret half of another key under this key's public half.
            {
                let other = fs::read_to_string({
                    let p = dir.path().join("other");
                    identity().save(&p).unwrap();
                    p
                })
                .unwrap();
                let other = other.lines().nth(1).unwrap();
                let cut = line.len() - 200;
                format!("{}{}\n", &line[..cut], &other[cut..]).into_bytes()
            },
            vec![b'#'; (MAX_KEY_FILE + 1) as usize],
        ];
        for (i, bytes) in cases.iter().enumerate() {
            let path = dir.path().join(format!("bad-{i}"));
            write_private(&path, bytes);
            let r = ServerIdentity::load(&path);
            assert!(
                matches!(r, Err(IdentityError::Corrupt { .. })),
                "case {i}: {:?}",
                r.map(|id| id.hash())
            );
        }
    }

    #[test]
    fn known_servers_record_then_refuse_a_changed_identity() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cfg").join("known_servers");
        let (a, b) = (identity().hash(), identity().hash());
        for store in [KnownServers::at(&path), KnownServers::in_memory()] {
            assert_eq!(store.check("h:1", a).unwrap(), Known::New);
            assert_eq!(store.get("h:1").unwrap(), None);
            assert_eq!(store.check_or_record("h:1", a).unwrap(), Known::New);
            assert_eq!(store.check_or_record("h:1", a).unwrap(), Known::Same);
            assert_eq!(store.check("h:1", a).unwrap(), Known::Same);
            assert!(matches!(
                store.check_or_record("h:1", b),
                Err(NetError::IdentityMismatch { expected, got, .. }) if expected == a && got == b
            ));
            assert_eq!(store.check_or_record("h:2", b).unwrap(), Known::New);
            assert_eq!(store.clone().get("h:2").unwrap(), Some(b));
            store.set("h:1", b).unwrap();
            assert_eq!(store.check_or_record("h:1", b).unwrap(), Known::Same);
        }
        // Another store over the same file sees the records.
        let again = KnownServers::at(&path);
        assert_eq!(again.get("h:2").unwrap(), Some(b));
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains(&format!("h:2 {b}\n")), "{text}");
    }

    #[test]
    fn a_damaged_known_servers_file_is_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_servers");
        let hash = identity().hash();
        for (text, line) in [
            ("garbage\n".to_string(), 1),
            ("# c\n\nh:1 00\n".to_string(), 3),
            (format!("h:1 {hash} extra\n"), 1),
            (format!("nocolon {hash}\n"), 1),
            (format!("h:1 {hash}\nh:1 {hash}\n"), 2),
        ] {
            fs::write(&path, text).unwrap();
            let store = KnownServers::at(&path);
            assert!(
                matches!(store.get("h:1"), Err(IdentityError::KnownServersCorrupt { line: l, .. }) if l == line)
            );
            assert!(matches!(
                store.check_or_record("h:1", hash),
                Err(NetError::Identity(
                    IdentityError::KnownServersCorrupt { .. }
                ))
            ));
        }
        fs::write(&path, [0xff, 0xfe, b'\n']).unwrap();
        assert!(matches!(
            KnownServers::at(&path).get("x:1"),
            Err(IdentityError::KnownServersCorrupt { .. })
        ));
    }

    #[test]
    fn the_default_path_is_under_the_config_folder() {
        let path = KnownServers::default_path();
        assert_eq!(path.file_name(), Some("known_servers".as_ref()));
    }
}
