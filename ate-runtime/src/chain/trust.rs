//! The trust settings of a chain: its policy and plugins, applied on commit and on replay.

use std::sync::Arc;

use crate::crypto::Hash;
use crate::event::Transaction;
use crate::trust::{
    Linter, Overlay, Transformer, TrustError, TrustLookup, TrustPolicy, ValidationContext,
    Validator,
};

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
    /// Runs the built-in checks, then every validator plugin; merges the transaction's effects
    /// into `overlay` only when all pass.
    pub fn validate(
        &self,
        base: &dyn TrustLookup,
        overlay: &mut Overlay,
        tx: &Transaction,
        seq: u64,
        hashes: Option<&[Hash]>,
    ) -> Result<(), TrustError> {
        let validated = self.policy.validate(base, overlay, tx, seq, hashes)?;
        if !self.plugins.validators.is_empty() {
            let lookup = overlay.over(base);
            let ctx = ValidationContext {
                policy: &self.policy,
                lookup: &lookup,
                seq,
                signers: &validated.signers,
            };
            for v in &self.plugins.validators {
                v.validate(&ctx, tx)
                    .map_err(|reason| crate::trust::refuse(v.name(), reason))?;
            }
        }
        overlay.merge(validated.changes);
        Ok(())
    }
}
