//! The trust settings of a chain: its policy and plugins, applied on commit and on replay.

use std::sync::Arc;

use crate::crypto::{Hash, PrivateSignKey};
use crate::event::Transaction;
use crate::event::codec::TransactionRef;
use crate::trust::EventKeys;
use crate::trust::meta::{CheckedMeta, proofs_from};
use crate::trust::{
    Linter, Overlay, Transformer, TrustError, TrustLookup, TrustPolicy, ValidationContext,
    Validator, Verified,
};

/// Plugins registered on a `ChainBuilder`.
#[derive(Clone, Default)]
pub(crate) struct Plugins {
    pub validators: Vec<Arc<dyn Validator>>,
    pub linters: Vec<Arc<dyn Linter>>,
    pub transformers: Vec<Arc<dyn Transformer>>,
}

impl Plugins {
    /// Validator and linter names and transformer ids, in order (what tells two sets apart).
    pub fn names(&self) -> Vec<String> {
        let validators = self
            .validators
            .iter()
            .map(|v| format!("validator {}", v.name()));
        let linters = self.linters.iter().map(|l| format!("linter {}", l.name()));
        let transformers = self
            .transformers
            .iter()
            .map(|t| format!("transformer {}", t.id()));
        validators.chain(linters).chain(transformers).collect()
    }
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
    /// The key this process vouches with as the chain's server.
    pub server_key: Option<PrivateSignKey>,
}

impl ChainTrust {
    /// The checks of a transaction that need no record (see
    /// [`TrustPolicy::verify`](crate::trust::TrustPolicy)): its proofs against its digest,
    /// each event's trust metadata, its keys trailer and key directory against the events. Safe
    /// to run on any thread, ahead of [`ChainTrust::check`]. `hashes` and `local` are what a
    /// committing Dio computed in this process (trusted); `None` for transactions from
    /// elsewhere, whose hashes are recomputed and metadata decoded.
    pub fn verify(
        &self,
        tx: &TransactionRef<'_>,
        hashes: Option<&[Hash]>,
        local: Option<Vec<CheckedMeta>>,
    ) -> Result<Verified, TrustError> {
        match &tx.pruned {
            // Only a compacted log holds these (`TransactionRef::decode_stored`).
            Some(slots) => self
                .policy
                .verify_pruned(&tx.events, slots, proofs_from(tx.trailers)?),
            None => self
                .policy
                .verify(&tx.events, proofs_from(tx.trailers)?, hashes, local),
        }
    }

    /// Whether validator plugins are registered (they see transactions as owned values).
    pub fn has_validators(&self) -> bool {
        !self.plugins.validators.is_empty()
    }

    /// The rest of the checks of the transaction `seq` (its `events`, verified by
    /// [`ChainTrust::verify`]) against `base` plus `overlay` (the accepted transactions ahead
    /// of it): versions, parents, rights, read rules, then every validator plugin, which sees
    /// `owned` (required when [`ChainTrust::has_validators`]). `staged` is scratch space, left
    /// holding the transaction's effects (merge them into `overlay` once it is accepted).
    #[allow(clippy::too_many_arguments)]
    pub fn check<E: EventKeys>(
        &self,
        base: &dyn TrustLookup,
        overlay: &Overlay,
        events: &[E],
        seq: u64,
        verified: &Verified,
        owned: Option<&Transaction>,
        staged: &mut Overlay,
    ) -> Result<(), TrustError> {
        self.policy
            .check(base, overlay, events, verified, seq, staged)?;
        if self.has_validators() {
            let tx = owned.ok_or_else(|| {
                crate::trust::refuse(
                    "check",
                    "the transaction was not decoded for the validators".into(),
                )
            })?;
            self.run_validators(base, overlay, tx, seq, verified)?;
        }
        Ok(())
    }

    /// The checks of [`ChainTrust::check`] for a transaction of a compacted log's
    /// checkpointed part, numbered up to `upto` (see
    /// [`TrustPolicy::check_in`](crate::trust::TrustPolicy)); validator plugins do not run
    /// (they judged the transaction when it was committed, and would see only what was kept).
    pub fn check_compacted<E: EventKeys>(
        &self,
        base: &dyn TrustLookup,
        events: &[E],
        seq: u64,
        verified: &Verified,
        upto: u64,
        staged: &mut Overlay,
    ) -> Result<(), TrustError> {
        self.policy.check_in(
            base,
            &Overlay::new(),
            events,
            verified,
            seq,
            staged,
            Some(upto),
        )
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
