//! A small currency on a chain of trust: the logic of `cargo run --example coin`, its tests
//! and its benchmark.
//!
//! - **The mint** is the chain's root key: only what it signs may be written at the chain's
//!   root, so only the mint issues coins ([`Mint::issue`]).
//! - **A coin** ([`Coin`]) is a record at the root whose key is derived from its serial number
//!   and value ([`coin_key`]), so neither can change, and whose write right names its owner's
//!   signing key. Only the owner's signature moves it ([`Wallet::transfer`]): the update sets
//!   the new owner and hands the write right to the new owner's key in one version.
//! - **No double spend.** Each transfer names the version of the coin it spends; of two
//!   transfers of one version, the chain takes the first and refuses the other
//!   ([`CoinError::AlreadySpent`]), in one process or across a server's clients.
//! - **Balances** come from the view: an index of coins by owner ([`Wallet::balance`]).
//! - **Anyone can check the whole history offline** from the mint's public key alone
//!   ([`verify_log`]): every signature, every right, and the coin rules ([`CoinRules`], a
//!   validator that runs on every commit and again on every open).

use std::collections::BTreeSet;
use std::path::Path;

use ate::crypto::{Hash, KeySize, PrivateSignKey, PublicSignKey};
use ate::event::Transaction;
use ate::log::{MemoryStore, RecoveryMode};
use ate::prelude::*;
use ate::trust::{ReadOption, TrustError, ValidationContext, Validator, WriteOption};
use serde::{Deserialize, Serialize};

/// The chain the examples keep coins in.
pub const CHAIN: &str = "coin";

/// The stable type name of [`Coin`] (what the validator looks for).
pub const COIN_TYPE: &str = "coin.Coin";

/// A coin: a serial number and a value, owned by a signing key.
#[derive(Dao, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[dao(name = "coin.Coin", read = "everyone")]
pub struct Coin {
    /// Its serial number (one coin per serial and value: the key is derived from both).
    pub serial: u64,
    /// What it is worth.
    pub value: u64,
    /// Its owner: [`owner_id`] of the owner's public signing key (the key its write right
    /// names).
    #[dao(index)]
    pub owner: String,
}

/// The key of the coin with this serial number and value: a coin cannot change either
/// without becoming another record, which only the mint may create.
pub fn coin_key(serial: u64, value: u64) -> PrimaryKey {
    PrimaryKey::derived(&[
        COIN_TYPE.as_bytes(),
        &serial.to_le_bytes(),
        &value.to_le_bytes(),
    ])
}

/// How a coin names its owner: the hash of the owner's public signing key, in hex.
pub fn owner_id(key: &PublicSignKey) -> String {
    key.hash().to_hex()
}

/// Why a coin operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoinError {
    /// No live coin at this key.
    #[error("no coin {0}")]
    NoSuchCoin(PrimaryKey),
    /// The coin belongs to someone else: only its owner's signature moves it.
    #[error("coin {0} is not this wallet's to spend")]
    NotOwner(PrimaryKey),
    /// Another transfer of the same coin was committed first (a double spend refused).
    #[error("coin {0} was already spent")]
    AlreadySpent(PrimaryKey),
    /// A coin with this serial number and value was issued already.
    #[error("coin {0} exists already")]
    AlreadyIssued(PrimaryKey),
    /// The wallet's coins do not add up to the amount.
    #[error("{have} in coins, {want} asked")]
    Insufficient {
        /// What the wallet holds.
        have: u64,
        /// What was asked.
        want: u64,
    },
    /// Not an owner id ([`owner_id`]: 64 hex digits).
    #[error("not an owner id: {0:?}")]
    BadOwnerId(String),
    /// The chain refused or failed otherwise.
    #[error(transparent)]
    Ate(#[from] AteError),
}

impl From<DioError> for CoinError {
    fn from(e: DioError) -> Self {
        CoinError::Ate(e.into())
    }
}

/// The coin rules, checked by every process that opens the chain, on every commit and open:
/// a coin lies at the chain's root (so the mint created it), is never deleted, sits at the
/// key of its serial number and value, is readable by everyone, and gives its write right to
/// the key its `owner` names, and to no other.
#[derive(Debug, Clone, Copy, Default)]
pub struct CoinRules;

impl CoinRules {
    fn check(ev: &ate::event::Event) -> Result<(), String> {
        if ev.tombstone {
            return Err(format!(
                "coin {} deleted: coins are never destroyed",
                ev.key
            ));
        }
        if ev.parent.is_some() {
            return Err(format!("coin {} is not at the chain's root", ev.key));
        }
        let body = ev.body.as_ref().ok_or("a coin without a body")?;
        let coin: Coin = rmp_serde::from_slice(body)
            .map_err(|e| format!("coin {} does not decode: {e}", ev.key))?;
        if ev.key != coin_key(coin.serial, coin.value) {
            return Err(format!(
                "coin {} is not at the key of serial {} and value {}",
                ev.key, coin.serial, coin.value
            ));
        }
        let auth = ev
            .authorization()
            .map_err(|e| e.to_string())?
            .unwrap_or_default();
        let owner = Hash::from_hex(&coin.owner)
            .ok_or_else(|| format!("coin {} has no owner key", ev.key))?;
        if auth.write != WriteOption::Specific(owner) {
            return Err(format!(
                "coin {}: its write right does not name its owner {}",
                ev.key, coin.owner
            ));
        }
        if auth.read != ReadOption::Everyone {
            return Err(format!("coin {} is not public", ev.key));
        }
        Ok(())
    }
}

impl Validator for CoinRules {
    fn name(&self) -> &str {
        "coin-rules"
    }

    fn validate(&self, _ctx: &ValidationContext<'_>, tx: &Transaction) -> Result<(), String> {
        tx.events
            .iter()
            .filter(|ev| ev.type_name() == COIN_TYPE)
            .try_for_each(Self::check)
    }
}

/// A registry of coin chains minted by `mint`: the mint's key pinned as the only root key,
/// and the coin rules.
pub async fn registry(conf: &AteConfig, mint: &PublicSignKey) -> ChainRegistry {
    ChainBuilder::new(conf)
        .await
        .add_root_public_key(mint)
        .add_validator(CoinRules)
        .build()
}

/// The mint: the holder of the chain's root key.
#[derive(Debug)]
pub struct Mint {
    key: PrivateSignKey,
    session: AteSession,
}

impl Mint {
    /// A new mint with a fresh key.
    pub fn generate() -> Self {
        Self::from_key(PrivateSignKey::generate(KeySize::Bit128))
    }

    /// The mint of this key.
    pub fn from_key(key: PrivateSignKey) -> Self {
        let mut session = AteSession::default();
        session.add_write_key(&key);
        Mint { key, session }
    }

    /// The mint's public key: what every holder of the chain pins.
    pub fn public_key(&self) -> PublicSignKey {
        self.key.as_public_key()
    }

    /// The mint's private key (to keep it for the next run).
    pub fn private_key(&self) -> &PrivateSignKey {
        &self.key
    }

    /// Issues coins to `owner` ([`owner_id`]), one per `(serial, value)`, in one transaction.
    ///
    /// # Errors
    ///
    /// [`CoinError::AlreadyIssued`] when one of the serial numbers was issued with its value
    /// before (nothing is issued); [`CoinError::Ate`] otherwise.
    pub async fn issue(
        &self,
        chain: &Chain,
        owner: &str,
        coins: &[(u64, u64)],
    ) -> Result<Vec<PrimaryKey>, CoinError> {
        let owner_key =
            Hash::from_hex(owner).ok_or_else(|| CoinError::BadOwnerId(owner.to_string()))?;
        let mut dio = chain.dio(&self.session).await;
        let mut keys = Vec::with_capacity(coins.len());
        for &(serial, value) in coins {
            let key = coin_key(serial, value);
            let mut coin = dio.store_at(
                key,
                Coin {
                    serial,
                    value,
                    owner: owner.to_string(),
                },
            )?;
            coin.auth_mut().read = ReadOption::Everyone;
            coin.auth_mut().write = WriteOption::Specific(owner_key);
            keys.push(key);
        }
        match dio.commit().await {
            Ok(()) => Ok(keys),
            Err(AteError::Commit(CommitError::Trust(
                TrustError::VersionMismatch { key, .. } | TrustError::Deleted { key, .. },
            ))) => Err(CoinError::AlreadyIssued(key)),
            Err(e) => Err(e.into()),
        }
    }
}

/// A wallet: a signing key, owner of the coins whose write right names it.
#[derive(Debug)]
pub struct Wallet {
    key: PrivateSignKey,
    session: AteSession,
}

impl Wallet {
    /// A new wallet with a fresh key.
    pub fn generate() -> Self {
        Self::from_key(PrivateSignKey::generate(KeySize::Bit128))
    }

    /// The wallet of this key.
    pub fn from_key(key: PrivateSignKey) -> Self {
        let mut session = AteSession::default();
        session.add_write_key(&key);
        Wallet { key, session }
    }

    /// How coins name this wallet as their owner.
    pub fn id(&self) -> String {
        owner_id(&self.key.as_public_key())
    }

    /// The wallet's coins, from the view's index of coins by owner (only those whose write
    /// right names this wallet's key: the coins it can spend).
    ///
    /// # Errors
    ///
    /// [`CoinError::Ate`] when the index cannot be read.
    pub async fn coins(&self, chain: &Chain) -> Result<Vec<Coin>, CoinError> {
        let dio = chain.dio(&self.session).await;
        let me = WriteOption::Specific(self.key.hash());
        Ok(Coin::find_by_owner(&dio, &self.id())
            .await?
            .into_iter()
            .filter(|c| c.auth().write == me)
            .map(|c| (*c).clone())
            .collect())
    }

    /// The sum of the wallet's coins' values.
    ///
    /// # Errors
    ///
    /// As [`Wallet::coins`].
    pub async fn balance(&self, chain: &Chain) -> Result<u64, CoinError> {
        Ok(self.coins(chain).await?.iter().map(|c| c.value).sum())
    }

    /// Moves the coin at `coin` to the wallet `to` ([`owner_id`]): signed by this wallet's key,
    /// which the coin's write right must name; the new version names `to` and hands it the
    /// write right.
    ///
    /// # Errors
    ///
    /// [`CoinError::NoSuchCoin`]; [`CoinError::NotOwner`] when the coin is someone else's
    /// (the chain refuses the signature); [`CoinError::AlreadySpent`] when another transfer
    /// of the same coin was committed first; [`CoinError::Ate`] otherwise.
    pub async fn transfer(
        &self,
        chain: &Chain,
        coin: PrimaryKey,
        to: &str,
    ) -> Result<(), CoinError> {
        let mut dio = chain.dio(&self.session).await;
        let pending = self.stage_transfer(&mut dio, coin, to).await?;
        commit_transfer(&mut dio, pending).await
    }

    /// Stages the transfer of `coin` to `to` in `dio` (committed by the caller): for a
    /// caller that wants to load the coin first and commit later, as two concurrent spenders
    /// do.
    ///
    /// # Errors
    ///
    /// [`CoinError::NoSuchCoin`]; [`CoinError::BadOwnerId`].
    pub async fn stage_transfer(
        &self,
        dio: &mut Dio,
        coin: PrimaryKey,
        to: &str,
    ) -> Result<PendingTransfer, CoinError> {
        let to_key = Hash::from_hex(to).ok_or_else(|| CoinError::BadOwnerId(to.to_string()))?;
        let mut dao = match dio.load::<Coin>(&coin).await {
            Ok(d) => d,
            Err(DioError::NotFound(_)) => return Err(CoinError::NoSuchCoin(coin)),
            Err(e) => return Err(e.into()),
        };
        let ours = dao.auth().write == WriteOption::Specific(self.key.hash());
        dao.as_mut().owner = to.to_string();
        dao.auth_mut().write = WriteOption::Specific(to_key);
        Ok(PendingTransfer { coin, ours })
    }

    /// Pays `amount` to `to` with whole coins, largest first, in one transaction.
    ///
    /// # Errors
    ///
    /// [`CoinError::Insufficient`] when the coins picked do not add up exactly (the wallet
    /// holds too little, or its coins, taken largest first, do not make the amount); as
    /// [`Wallet::transfer`] otherwise (nothing moves).
    pub async fn pay(&self, chain: &Chain, amount: u64, to: &str) -> Result<u64, CoinError> {
        let mut coins = self.coins(chain).await?;
        coins.sort_by_key(|c| (std::cmp::Reverse(c.value), c.serial));
        let have: u64 = coins.iter().map(|c| c.value).sum();
        let mut picked = Vec::new();
        let mut sum = 0;
        for c in &coins {
            if sum + c.value <= amount {
                sum += c.value;
                picked.push(coin_key(c.serial, c.value));
            }
        }
        let Some(&first) = picked.first().filter(|_| sum == amount) else {
            return Err(CoinError::Insufficient { have, want: amount });
        };
        let mut dio = chain.dio(&self.session).await;
        for &k in &picked {
            self.stage_transfer(&mut dio, k, to).await?;
        }
        commit_transfer(
            &mut dio,
            PendingTransfer {
                coin: first,
                ours: true,
            },
        )
        .await?;
        Ok(sum)
    }

    /// The wallet's session (its signing key).
    pub fn session(&self) -> &AteSession {
        &self.session
    }
}

/// A transfer staged in a Dio ([`Wallet::stage_transfer`]), to commit with
/// [`commit_transfer`].
#[derive(Debug, Clone, Copy)]
pub struct PendingTransfer {
    /// The coin.
    pub coin: PrimaryKey,
    /// Whether the coin was the wallet's when it was loaded (a refusal of its signature
    /// then means someone spent it since).
    pub ours: bool,
}

/// Commits a staged transfer, naming the refusals.
///
/// # Errors
///
/// As [`Wallet::transfer`].
pub async fn commit_transfer(dio: &mut Dio, pending: PendingTransfer) -> Result<(), CoinError> {
    let coin = pending.coin;
    // Spent by another transfer since it was loaded: its write right names someone else now.
    let not_ours = |coin| {
        if pending.ours {
            CoinError::AlreadySpent(coin)
        } else {
            CoinError::NotOwner(coin)
        }
    };
    match dio.commit().await {
        Ok(()) => Ok(()),
        Err(AteError::Commit(CommitError::Trust(e))) => Err(match e {
            TrustError::VersionMismatch { key, .. } => CoinError::AlreadySpent(key),
            TrustError::Deleted { key, .. } => CoinError::NoSuchCoin(key),
            TrustError::Unauthorized { .. } | TrustError::MissingSignature { .. } => not_ours(coin),
            other => CoinError::Ate(AteError::Commit(CommitError::Trust(other))),
        }),
        // The wallet holds no key the coin's write right names: refused before signing.
        Err(AteError::Dio(DioError::MissingWriteKey { .. })) => Err(not_ours(coin)),
        Err(e) => Err(e.into()),
    }
}

/// What [`verify_log`] found in a valid log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verified {
    /// Transactions in the log.
    pub transactions: u64,
    /// Coins issued (live: coins are never destroyed).
    pub coins: u64,
    /// The sum of their values.
    pub supply: u64,
    /// Coin versions written after their issue (transfers) that the log holds.
    pub transfers: u64,
    /// Distinct owners now.
    pub owners: u64,
}

/// Why a log is not a valid coin chain.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A transaction is invalid: its number, where it starts, and why (its events are the
    /// first invalid ones; those before it are valid).
    #[error("transaction {seq} at offset {offset} is invalid: {reason}")]
    Invalid {
        /// The transaction's number.
        seq: u64,
        /// Its offset in the file.
        offset: u64,
        /// Why.
        reason: String,
    },
    /// The log is damaged or is not a chain log (a typed error naming where).
    #[error(transparent)]
    Open(OpenError),
    /// The log's transactions could not be read back.
    #[error(transparent)]
    Ate(#[from] AteError),
}

/// Checks a coin chain's log file offline, from the mint's public key alone: every frame,
/// hash and signature, every right (only the mint writes at the root; only a coin's owner
/// moves it), and the coin rules; nothing is written to the file. `chain` is the chain key
/// the log was written for (its signatures cover it).
///
/// # Errors
///
/// [`VerifyError::Invalid`] with the first invalid transaction; [`VerifyError::Open`] for a
/// damaged file (any damage: a torn tail is refused too); [`VerifyError::Read`].
pub async fn verify_log(
    path: &Path,
    chain: &str,
    mint: &PublicSignKey,
) -> Result<Verified, VerifyError> {
    let bytes = std::fs::read(path).map_err(|source| VerifyError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let mut conf = AteConfig::in_memory();
    conf.recovery_mode = RecoveryMode::AbsoluteConsistency;
    let registry = registry(&conf, mint).await;
    let chain = match registry.open_store(
        &ChainKey::from(chain),
        Box::new(MemoryStore::from_bytes(bytes)),
    ) {
        Ok(c) => c,
        Err(OpenError::Invalid {
            offset,
            seq,
            source,
            ..
        }) => {
            return Err(VerifyError::Invalid {
                seq,
                offset,
                reason: source.to_string(),
            });
        }
        Err(e) => return Err(VerifyError::Open(e)),
    };
    let mut report = Verified::default();
    let mut seen = BTreeSet::new();
    for tx in chain
        .read_from(1, usize::MAX)
        .map_err(|e| VerifyError::Ate(e.into()))?
    {
        report.transactions += 1;
        for ev in tx.events().filter(|e| e.type_name == COIN_TYPE) {
            if !seen.insert(ev.key) {
                report.transfers += 1;
            }
        }
    }
    let dio = chain.dio(&AteSession::default()).await;
    let mut owners = BTreeSet::new();
    for key in &seen {
        let coin = dio.load::<Coin>(key).await.map_err(AteError::from)?;
        report.coins += 1;
        report.supply += coin.value;
        owners.insert(coin.owner.clone());
    }
    report.owners = owners.len() as u64;
    Ok(report)
}
