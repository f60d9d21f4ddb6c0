//! A loaded or stored record: [`Dao`], and the guard that writes changes back, [`DaoMut`].

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Weak;

use parking_lot::Mutex;

use super::staging::{Staged, Staging};
use super::{DioError, Storable, encode};
use crate::event::{ParentLink, PrimaryKey};
use crate::trust::Authorization;

/// One record as a typed value, read through or stored into a [`Dio`](super::Dio).
///
/// `Dao<T>` dereferences to `T`. To change the record, call [`Dao::as_mut`]: when the returned
/// guard goes out of scope the new value is staged in the Dio it came from, and the next
/// `dio.commit()` writes it.
pub struct Dao<T> {
    pub(super) key: PrimaryKey,
    pub(super) value: T,
    pub(super) parent: Option<ParentLink>,
    pub(super) type_name: &'static str,
    pub(super) auth: Authorization,
    /// The version this value was read at (`None`: a new record).
    pub(super) version: Option<u64>,
    pub(super) staging: Weak<Mutex<Staging>>,
}

impl<T> Dao<T> {
    /// The record's primary key.
    pub fn key(&self) -> &PrimaryKey {
        &self.key
    }

    /// Where the record hangs in the tree, if it is a child.
    pub fn parent(&self) -> Option<ParentLink> {
        self.parent
    }

    /// The stable type name the record is stored under.
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }

    /// The record's own read and write rules (`Inherit` takes the parent's).
    pub fn auth(&self) -> &Authorization {
        &self.auth
    }

    /// The version this value was read at (the transaction that wrote it; `None` for a new
    /// record).
    pub(crate) fn version(&self) -> Option<u64> {
        self.version
    }

    /// The value, leaving the record behind.
    pub fn into_inner(self) -> T {
        self.value
    }
}

impl<T: Storable> Dao<T> {
    /// Mutable access; the changed value is staged in the Dio when the guard drops.
    pub fn as_mut(&mut self) -> DaoMut<'_, T> {
        DaoMut { dao: self }
    }

    /// Mutable access to the record's read and write rules; staged when the guard drops.
    /// Changing them needs the write right the record had before.
    pub fn auth_mut(&mut self) -> AuthMut<'_, T> {
        AuthMut { dao: self }
    }

    /// Moves the record (and everything below it) into the collection `vec` of its owning
    /// record, staged like a change of value. Committing it needs the record's own write right
    /// and the write right of its new parent; a record cannot move under itself or one of its
    /// descendants (`TrustError::UnauthorizedMove` / `TrustError::ParentCycle`, on commit).
    ///
    /// # Errors
    ///
    /// [`DioError::DetachedCollection`] when `vec` does not know its owning record.
    pub fn move_to(&mut self, vec: &super::DaoVec<T>) -> Result<(), DioError> {
        self.parent = Some(ParentLink {
            parent: vec.owner()?,
            collection: vec.id(),
        });
        self.restage();
        Ok(())
    }

    /// Moves the record (and everything below it) to the root of the chain, staged like a
    /// change of value; committing it needs the chain root's write right as well as its own.
    pub fn move_to_root(&mut self) {
        self.parent = None;
        self.restage();
    }

    /// Stages the deletion of this record, and of every record below it, in the Dio it came
    /// from (see [`Dio::delete`](super::Dio::delete)).
    pub fn delete(self) -> Result<(), DioError> {
        match self.staging.upgrade() {
            Some(s) => s.lock().delete(&self.key, self.version),
            None => Err(DioError::DioClosed),
        }
    }

    fn restage(&self) {
        let Some(staging) = self.staging.upgrade() else {
            tracing::warn!(key = %self.key, "a Dao was changed after its Dio was dropped; the change is lost");
            return;
        };
        let mut s = staging.lock();
        match encode(&self.value) {
            Ok(body) => s.stage(
                self.key,
                Staged {
                    type_name: self.type_name.into(),
                    parent: self.parent,
                    body: Some(body),
                    auth: self.auth.clone(),
                    previous: self.version,
                    create: false,
                    sign_all: false,
                },
            ),
            Err(e) => s.fail(e),
        }
    }
}

impl<T> Deref for Dao<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: fmt::Debug> fmt::Debug for Dao<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dao")
            .field("key", &self.key)
            .field("type", &self.type_name)
            .field("value", &self.value)
            .finish()
    }
}

/// Mutable access to a [`Dao`]'s value; staging the new value when dropped.
pub struct DaoMut<'a, T: Storable> {
    dao: &'a mut Dao<T>,
}

impl<T: Storable> Deref for DaoMut<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.dao.value
    }
}

impl<T: Storable> DerefMut for DaoMut<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.dao.value
    }
}

impl<T: Storable> Drop for DaoMut<'_, T> {
    fn drop(&mut self) {
        self.dao.restage();
    }
}

impl<T: Storable + fmt::Debug> fmt::Debug for DaoMut<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.dao, f)
    }
}

/// Mutable access to a [`Dao`]'s read and write rules; staging the record when dropped.
pub struct AuthMut<'a, T: Storable> {
    dao: &'a mut Dao<T>,
}

impl<T: Storable> Deref for AuthMut<'_, T> {
    type Target = Authorization;
    fn deref(&self) -> &Authorization {
        &self.dao.auth
    }
}

impl<T: Storable> DerefMut for AuthMut<'_, T> {
    fn deref_mut(&mut self) -> &mut Authorization {
        &mut self.dao.auth
    }
}

impl<T: Storable> Drop for AuthMut<'_, T> {
    fn drop(&mut self) {
        // A record already staged with a value only needs its rules replaced (no re-encoding).
        if let Some(staging) = self.dao.staging.upgrade() {
            let mut s = staging.lock();
            if s.set_auth(&self.dao.key, &self.dao.auth) {
                return;
            }
        }
        self.dao.restage();
    }
}

impl<T: Storable> fmt::Debug for AuthMut<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.dao.auth, f)
    }
}
