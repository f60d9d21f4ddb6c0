//! Typed relations between records: [`DaoVec`] (children) and [`DaoRef`] (a reference).

use std::fmt;
use std::marker::PhantomData;

use serde::{Deserialize, Serialize};

use super::{Dao, Dio, DioError, Storable};
use crate::event::PrimaryKey;

/// A collection of child records of type `T` inside a parent value.
///
/// Only its random 64-bit collection id is stored in the parent; the children are records of
/// their own that point at `(parent key, collection id)`, listed in the order they were first
/// committed. A `DaoVec` learns its parent key when its owner is loaded or stored through a
/// [`Dio`] (types deriving `Dao` do this automatically; for plain types call
/// [`DaoVec::attach`] or use [`Dio::children`] and [`Dio::store_child`]).
#[derive(Serialize, Deserialize)]
#[serde(transparent, bound = "")]
pub struct DaoVec<T> {
    id: u64,
    #[serde(skip)]
    parent: Option<PrimaryKey>,
    #[serde(skip)]
    _t: PhantomData<fn() -> T>,
}

impl<T> DaoVec<T> {
    /// A new, empty collection with a fresh random id.
    pub fn new() -> Self {
        DaoVec {
            id: rand::random::<u64>(),
            parent: None,
            _t: PhantomData,
        }
    }

    /// The collection id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The owning record, once known.
    pub fn parent(&self) -> Option<PrimaryKey> {
        self.parent
    }

    /// Tells the collection which record owns it.
    pub fn attach(&mut self, parent: PrimaryKey) {
        self.parent = Some(parent);
    }

    pub(super) fn owner(&self) -> Result<PrimaryKey, DioError> {
        self.parent.ok_or(DioError::DetachedCollection)
    }
}

impl<T: Storable> DaoVec<T> {
    /// The children, in commit order (including ones staged in `dio`).
    ///
    /// # Errors
    ///
    /// [`DioError::DetachedCollection`] when the collection does not know its owner; the errors
    /// of [`Dio::load`] for each child.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads (the view and this Dio's staged writes).
    pub async fn iter(&self, dio: &Dio) -> Result<Vec<Dao<T>>, DioError> {
        dio.children(&self.owner()?, self).await
    }

    /// Stages a new child in `dio`.
    pub fn push(&self, dio: &mut Dio, value: T) -> Result<Dao<T>, DioError> {
        dio.store_child(&self.owner()?, self, value)
    }
}

impl<T> Default for DaoVec<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for DaoVec<T> {
    fn clone(&self) -> Self {
        DaoVec {
            id: self.id,
            parent: self.parent,
            _t: PhantomData,
        }
    }
}

impl<T> PartialEq for DaoVec<T> {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl<T> fmt::Debug for DaoVec<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DaoVec")
            .field("id", &self.id)
            .field("parent", &self.parent)
            .finish()
    }
}

/// A typed reference to another record (or to none).
#[derive(Serialize, Deserialize)]
#[serde(transparent, bound = "")]
pub struct DaoRef<T> {
    key: Option<PrimaryKey>,
    #[serde(skip)]
    _t: PhantomData<fn() -> T>,
}

impl<T> DaoRef<T> {
    /// A reference to `key`.
    pub fn to(key: PrimaryKey) -> Self {
        DaoRef {
            key: Some(key),
            _t: PhantomData,
        }
    }

    /// The referenced key, if any.
    pub fn key(&self) -> Option<PrimaryKey> {
        self.key
    }

    /// Whether the reference points nowhere.
    pub fn is_null(&self) -> bool {
        self.key.is_none()
    }

    /// Points the reference at `key` (or nowhere).
    pub fn set(&mut self, key: Option<PrimaryKey>) {
        self.key = key;
    }
}

impl<T: Storable> DaoRef<T> {
    /// Loads the referenced record.
    ///
    /// # Errors
    ///
    /// [`DioError::NullReference`] when it points nowhere; the errors of [`Dio::load`].
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads (the view and this Dio's staged writes).
    pub async fn load(&self, dio: &Dio) -> Result<Dao<T>, DioError> {
        dio.load(&self.key.ok_or(DioError::NullReference)?).await
    }
}

impl<T> From<PrimaryKey> for DaoRef<T> {
    fn from(key: PrimaryKey) -> Self {
        Self::to(key)
    }
}

impl<T> From<&Dao<T>> for DaoRef<T> {
    fn from(dao: &Dao<T>) -> Self {
        Self::to(*dao.key())
    }
}

impl<T> Default for DaoRef<T> {
    fn default() -> Self {
        DaoRef {
            key: None,
            _t: PhantomData,
        }
    }
}

impl<T> Clone for DaoRef<T> {
    fn clone(&self) -> Self {
        DaoRef {
            key: self.key,
            _t: PhantomData,
        }
    }
}

impl<T> PartialEq for DaoRef<T> {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl<T> fmt::Debug for DaoRef<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DaoRef").field(&self.key).finish()
    }
}
