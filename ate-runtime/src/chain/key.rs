//! Chain keys and the file each one maps to.

use std::fmt;
use std::path::{Path, PathBuf};

/// The name of a chain (one redo log). `ChainKey::from("universe")`.
///
/// A key is one or more `/`-separated segments of ASCII letters, digits, `.`, `_` and `-`
/// (no segment is `.` or `..`), at most 255 bytes. Anything else is refused by
/// [`ChainKey::validate`] before it can name a file, so a key never escapes the configured log
/// folder. A leading `/` is refused too: `/etc/passwd` is not quietly read as `etc/passwd`, and one
/// log file never has two keys (the key, not the file, names the chain in its signatures).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChainKey(String);

/// A chain key that cannot name a log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid chain key {key:?}: {reason}")]
pub struct ChainKeyError {
    /// The key as given.
    pub key: String,
    /// Why it was refused.
    pub reason: &'static str,
}

impl ChainKey {
    /// A key from text (checked when the chain is opened).
    pub fn new(name: impl Into<String>) -> Self {
        ChainKey(name.into())
    }

    /// The key as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Checks the key and returns its segments.
    ///
    /// # Errors
    /// [`ChainKeyError`] naming the rule the key breaks.
    pub fn validate(&self) -> Result<Vec<&str>, ChainKeyError> {
        let err = |reason| ChainKeyError {
            key: self.0.clone(),
            reason,
        };
        let name = self.0.as_str();
        if name.is_empty() {
            return Err(err("empty"));
        }
        if name.len() > 255 {
            return Err(err("longer than 255 bytes"));
        }
        if name.starts_with('/') {
            return Err(err(
                "a leading `/` is not allowed (keys are relative to the log folder)",
            ));
        }
        let segments: Vec<&str> = name.split('/').collect();
        for s in &segments {
            if s.is_empty() {
                return Err(err("empty path segment"));
            }
            if *s == "." || *s == ".." {
                return Err(err("`.` and `..` segments are not allowed"));
            }
            if !s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            {
                return Err(err(
                    "only ASCII letters, digits, `.`, `_`, `-` and `/` are allowed",
                ));
            }
        }
        Ok(segments)
    }

    /// The log file of this chain under `root`.
    pub fn log_file(&self, root: &Path) -> Result<PathBuf, ChainKeyError> {
        let segments = self.validate()?;
        let mut p = root.to_path_buf();
        let (last, dirs) = segments
            .split_last()
            .expect("validated keys have a segment");
        for d in dirs {
            p.push(d);
        }
        p.push(format!("{last}.log"));
        Ok(p)
    }
}

impl From<&str> for ChainKey {
    fn from(s: &str) -> Self {
        ChainKey(s.to_string())
    }
}

impl From<String> for ChainKey {
    fn from(s: String) -> Self {
        ChainKey(s)
    }
}

impl fmt::Display for ChainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainKey({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_keys_map_under_the_root() {
        let root = Path::new("/data");
        assert_eq!(
            ChainKey::from("universe").log_file(root).unwrap(),
            Path::new("/data/universe.log")
        );
        assert_eq!(
            ChainKey::from("bank/acc-1.x").log_file(root).unwrap(),
            Path::new("/data/bank/acc-1.x.log")
        );
    }

    #[test]
    fn escaping_keys_are_refused() {
        for bad in [
            "",
            "/",
            "../x",
            "a/../../etc",
            "/etc/passwd/..",
            "a\0b",
            "a//b",
            ".",
            "a b",
            "ü",
            "a\\b",
        ] {
            assert!(
                ChainKey::from(bad).validate().is_err(),
                "{bad:?} must be refused"
            );
        }
        assert!(ChainKey::from("x".repeat(256)).validate().is_err());
    }

    #[test]
    fn a_leading_slash_is_refused() {
        for bad in ["/etc/passwd", "/universe", "//a"] {
            let e = ChainKey::from(bad).validate().unwrap_err();
            assert_eq!(e.key, bad);
            assert!(e.reason.contains("leading `/`"), "{bad:?}: {}", e.reason);
            assert!(ChainKey::from(bad).log_file(Path::new("/r")).is_err());
        }
        assert_eq!(
            ChainKey::from("etc/passwd")
                .log_file(Path::new("/r"))
                .unwrap(),
            Path::new("/r/etc/passwd.log")
        );
    }
}
