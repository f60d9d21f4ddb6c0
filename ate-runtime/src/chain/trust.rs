//! The trust settings of a chain: its policy and plugins, applied on commit and on replay.

use std::sync::Arc;

use bytes::Bytes;

use crate::crypto::Hash;
use crate::event::Transaction;
use crate::event::codec::TransactionRef;
use crate::trust::EventKeys;
use crate::trust::meta::{CheckedMeta, TxKey, proofs_from};
use crate::trust::{
    Linter, Overlay, Transformer, TrustError, TrustLookup, TrustPolicy, ValidationContext,
    Validator, Verified,
};

/// A transaction's wrapped data keys, checked against its events (`None`: no encrypted body).
pub(crate) type TxKeyTable = Option<Arc<[TxKey]>>;

/// Plugins registered on a `ChainBuilder`.
#[derive(Clone, Default)]
pub(crate) struct Plugins {
    pub validators: Vec<Arc<dyn Validator>>,
    pub linters: Vec<Arc<dyn Linter>>,
    pub transformers: Vec<Arc<dyn Transformer>>,
}

impl std::fmt::Debug for Plugins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugins")
            .field(
                "validators",
                &self
                    .validators
                    .iter()
                    .map(|v| v.name().to_string())
                    .collect::<Vec<_>>(),
            )
            .field(
                "linters",
                &self
                    .linters
                    .iter()
                    .map(|v| v.name().to_string())
                    .collect::<Vec<_>>(),
            )
            .field(
                "transformers",
                &self.transformers.iter().map(|t| t.id()).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// A chain's policy and plugins.
#[derive(Debug)]
pub(crate) struct ChainTrust {
    pub policy: TrustPolicy,
    pub plugins: Plugins,
}

impl ChainTrust {
    /// Runs the built-in checks, then every validator plugin, on the transaction `tx` decoded
    /// in place from `payload`; merges its effects into `overlay` only when all pass. `hashes`
    /// and `local` are what the committing Dio computed in this process (see
    /// [`TrustPolicy::verify`](crate::trust::TrustPolicy)); `None` for transactions from
    /// elsewhere, whose hashes are recomputed and metadata decoded. The keys trailer is checked
    /// against the events in both cases. Returns what was verified (the decoded rules of each
    /// event, for the view) and the transaction's wrapped data keys (for reads).
    pub fn validate(
        &self,
        base: &dyn TrustLookup,
        overlay: &mut Overlay,
        tx: &TransactionRef<'_>,
        payload: &Bytes,
        hashes: Option<&[Hash]>,
        local: Option<Vec<CheckedMeta>>,
    ) -> Result<(Verified, TxKeyTable), TrustError> {
        let (verified, keys) = self.verify(tx, hashes, local)?;
        let mut staged = Overlay::new();
        self.policy
            .check(base, overlay, &tx.events, &verified, tx.seq, &mut staged)?;
        if self.has_validators() {
            // Plugins see owned values; only then is the transaction copied out of the payload.
            let owned = tx.to_transaction(payload);
            self.run_validators(base, overlay, &owned, tx.seq, &verified)?;
        }
        overlay.merge(staged);
        Ok((verified, keys))
    }

    /// The checks of a replayed transaction that need no record: signatures over recomputed
    /// hashes, each event's trust metadata, and the keys trailer against the events. Safe to run
    /// on any thread, ahead of [`ChainTrust::check_replayed`]. Returns the transaction's wrapped
    /// data keys too.
    pub fn verify_replayed(
        &self,
        tx: &TransactionRef<'_>,
    ) -> Result<(Verified, TxKeyTable), TrustError> {
        self.verify(tx, None, None)
    }

    /// [`TrustPolicy::verify`] on `tx` (with `hashes` and `local` as in
    /// [`ChainTrust::validate`]), which also checks its keys trailer against its events; the
    /// entries are handed out separately (the view keeps them).
    fn verify(
        &self,
        tx: &TransactionRef<'_>,
        hashes: Option<&[Hash]>,
        local: Option<Vec<CheckedMeta>>,
    ) -> Result<(Verified, TxKeyTable), TrustError> {
        let mut verified =
            self.policy
                .verify(&tx.events, proofs_from(tx.trailers)?, hashes, local)?;
        let keys = verified.keys.take();
        Ok((verified, keys))
    }

    /// Whether validator plugins are registered (they see replayed transactions as owned
    /// values).
    pub fn has_validators(&self) -> bool {
        !self.plugins.validators.is_empty()
    }

    /// The rest of the checks of the replayed transaction `seq` (its `events`, verified by
    /// [`ChainTrust::verify_replayed`]) against `base`, the transactions before it: versions,
    /// parents, rights, read rules, then every validator plugin, which sees `owned` (required
    /// when [`ChainTrust::has_validators`]). `staged` is scratch space, left holding the
    /// transaction's effects.
    pub fn check_replayed<E: EventKeys>(
        &self,
        base: &dyn TrustLookup,
        events: &[E],
        seq: u64,
        verified: &Verified,
        owned: Option<&Transaction>,
        staged: &mut Overlay,
    ) -> Result<(), TrustError> {
        let before = Overlay::new();
        self.policy
            .check(base, &before, events, verified, seq, staged)?;
        if self.has_validators() {
            let tx = owned.ok_or_else(|| {
                crate::trust::refuse(
                    "replay",
                    "the transaction was not decoded for the validators".into(),
                )
            })?;
            self.run_validators(base, &before, tx, seq, verified)?;
        }
        Ok(())
    }

    /// Every validator plugin, seeing the records as they are before `tx`.
    fn run_validators(
        &self,
        base: &dyn TrustLookup,
        overlay: &Overlay,
        tx: &Transaction,
        seq: u64,
        verified: &Verified,
    ) -> Result<(), TrustError> {
        if self.plugins.validators.is_empty() {
            return Ok(());
        }
        let signers = verified.signers.per_event(tx.events.len());
        let lookup = overlay.over(base);
        let ctx = ValidationContext {
            policy: &self.policy,
            lookup: &lookup,
            seq,
            signers: &signers,
        };
        for v in &self.plugins.validators {
            v.validate(&ctx, tx)
                .map_err(|reason| crate::trust::refuse(v.name(), reason))?;
        }
        Ok(())
    }
}
