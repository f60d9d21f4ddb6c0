//! Sessions: the keys a [`Dio`](crate::Dio) reads and writes with.
//!
//! A session holds keys grouped by role (owner, delegate, contributor, observer) for the user
//! and for each group the user belongs to. `AteSession::default()` holds none, which is all an
//! open chain (the Quick Start's) needs.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::crypto::{EncryptKey, Hash, PrivateEncryptKey, PrivateSignKey, WrappedKey};

/// What a role is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum AteRolePurpose {
    /// Full control.
    Owner,
    /// Acts for the owner.
    Delegate,
    /// May add and change data.
    Contributor,
    /// May only read.
    Observer,
}

/// The keys of one role.
#[derive(Debug, Clone)]
pub struct AteRole {
    /// What the role is for.
    pub purpose: AteRolePurpose,
    /// Symmetric read keys.
    pub read_keys: Vec<EncryptKey>,
    /// NTRU private keys that unwrap data keys written for their public halves.
    pub private_read_keys: Vec<PrivateEncryptKey>,
    /// Falcon signing keys.
    pub write_keys: Vec<PrivateSignKey>,
}

impl AteRole {
    /// A role with no keys.
    pub fn new(purpose: AteRolePurpose) -> Self {
        AteRole {
            purpose,
            read_keys: Vec::new(),
            private_read_keys: Vec::new(),
            write_keys: Vec::new(),
        }
    }
}

/// A named group with its own roles.
#[derive(Debug, Clone)]
pub struct AteGroup {
    /// The group's name.
    pub name: String,
    /// Its roles.
    pub roles: Vec<AteRole>,
}

/// The keys and identity of whoever reads and writes.
#[derive(Debug, Clone, Default)]
pub struct AteSession {
    /// The user's own roles.
    pub roles: Vec<AteRole>,
    /// Groups the user acts in.
    pub groups: Vec<AteGroup>,
    /// Data keys already unwrapped by this session (never shared with other sessions).
    cache: Arc<Mutex<HashMap<WrappedKey, EncryptKey>>>,
}

impl AteSession {
    /// A session with no keys.
    pub fn new() -> Self {
        Self::default()
    }

    fn owner(&mut self) -> &mut AteRole {
        if let Some(i) = self
            .roles
            .iter()
            .position(|r| r.purpose == AteRolePurpose::Owner)
        {
            return &mut self.roles[i];
        }
        self.roles.push(AteRole::new(AteRolePurpose::Owner));
        self.roles.last_mut().expect("just pushed")
    }

    /// Adds a symmetric read key to the user's owner role.
    pub fn add_read_key(&mut self, key: &EncryptKey) -> &mut Self {
        self.owner().read_keys.push(key.clone());
        self
    }

    /// Adds an NTRU private read key to the user's owner role.
    pub fn add_private_read_key(&mut self, key: &PrivateEncryptKey) -> &mut Self {
        self.owner().private_read_keys.push(key.clone());
        self
    }

    /// Adds a signing key to the user's owner role.
    pub fn add_write_key(&mut self, key: &PrivateSignKey) -> &mut Self {
        self.owner().write_keys.push(key.clone());
        self
    }

    /// Adds a group.
    pub fn add_group(&mut self, group: AteGroup) -> &mut Self {
        self.groups.push(group);
        self
    }

    fn all_roles(&self) -> impl Iterator<Item = &AteRole> {
        self.roles
            .iter()
            .chain(self.groups.iter().flat_map(|g| g.roles.iter()))
    }

    /// Every symmetric read key.
    pub fn read_keys(&self) -> impl Iterator<Item = &EncryptKey> {
        self.all_roles().flat_map(|r| r.read_keys.iter())
    }

    /// Every NTRU private read key.
    pub fn private_read_keys(&self) -> impl Iterator<Item = &PrivateEncryptKey> {
        self.all_roles().flat_map(|r| r.private_read_keys.iter())
    }

    /// Every signing key.
    pub fn write_keys(&self) -> impl Iterator<Item = &PrivateSignKey> {
        self.all_roles().flat_map(|r| r.write_keys.iter())
    }

    /// The symmetric read key with this hash.
    pub fn read_key(&self, hash: &Hash) -> Option<&EncryptKey> {
        self.read_keys().find(|k| k.hash() == *hash)
    }

    /// The signing key whose public key has this hash.
    pub fn write_key(&self, hash: &Hash) -> Option<&PrivateSignKey> {
        self.write_keys().find(|k| k.hash() == *hash)
    }

    /// The same keys, with a cache of unwrapped data keys of its own: for reads whose keys
    /// are not worth keeping (each request a service reads has a data key of its own).
    pub(crate) fn detached(&self) -> AteSession {
        AteSession {
            roles: self.roles.clone(),
            groups: self.groups.clone(),
            cache: Arc::default(),
        }
    }

    /// Unwraps a data key with a key of this session, caching the result so reads do not pay
    /// the KEM again. `None` when the session holds no key it was wrapped for.
    pub(crate) fn unwrap_data_key(
        &self,
        read_key: &Hash,
        wrapped: &WrappedKey,
    ) -> Option<EncryptKey> {
        if let Some(k) = self.cache.lock().get(wrapped) {
            return Some(k.clone());
        }
        let key = if let Some(k) = self.read_key(read_key) {
            k.unwrap(wrapped).ok()?
        } else {
            let pk = self.private_read_keys().find(|k| k.hash() == *read_key)?;
            pk.unwrap(wrapped).ok()?
        };
        self.cache.lock().insert(wrapped.clone(), key.clone());
        Some(key)
    }
}
