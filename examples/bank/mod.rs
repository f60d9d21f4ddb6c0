//! A bank on a chain: the logic of `cargo run --example bank`, its tests and its benchmark.
//!
//! - **Records.** The bank's root record ([`BankRoot`], at a key derived from the bank's
//!   name) may be written by the teller's key alone; customers ([`Customer`]), accounts
//!   ([`Account`]: a unique account number index, a reference to its owner, its transactions
//!   as final children) and the record of each applied request ([`Applied`]) sit under it, so
//!   only the teller writes them. Customers, transactions and applied requests are encrypted
//!   for the bank's read key, which the teller and the auditor hold; accounts are public (an
//!   index needs it), naming their owner by key id only.
//! - **Money moves in one transaction.** A transfer updates both balances and writes both
//!   transactions in one commit: both accounts or neither. Each update names the version it
//!   read, so of two transfers touching one account at once the second is refused as stale
//!   and retried ([`Teller`] retries, reading again), and no balance goes negative.
//! - **Applied once.** Each money request carries an idempotency key; its [`Applied`] record is
//!   written at a key derived from it in the same transaction, so a retry finds the first
//!   outcome instead of moving money again.
//! - **Who may do what.** Only an account's owner (a request signed by its key) withdraws or
//!   moves money out; the bank's staff key opens accounts and moves no money; an auditor
//!   ([`audit`]) reads every record and can write none. The [`BankApi`] service checks the
//!   callers; the chain checks that only the teller's key writes the bank's records.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ate::crypto::{Hash, KeySize, PrivateEncryptKey, PrivateSignKey, PublicEncryptKey};
use ate::prelude::*;
use ate::trust::{ReadOption, TrustError, WriteOption};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// The chain the examples keep the bank in.
pub const CHAIN: &str = "bank";

/// How often a money request is tried again when another one changed its accounts first.
pub const MAX_ATTEMPTS: u32 = 200;

/// The bank's root record: its name, and the collections everything else sits in.
#[derive(Dao, Serialize, Deserialize, Clone, Debug)]
#[dao(name = "bankapp.Bank", read = "everyone")]
pub struct BankRoot {
    /// The bank's name.
    pub name: String,
    /// Its customers.
    pub customers: DaoVec<Customer>,
    /// Its accounts, in the order they were opened.
    pub accounts: DaoVec<Account>,
    /// The money requests applied, by idempotency key.
    pub applied: DaoVec<Applied>,
}

/// A customer of the bank (encrypted for the bank's read key).
#[derive(Dao, Serialize, Deserialize, Clone, Debug)]
#[dao(name = "bankapp.Customer")]
pub struct Customer {
    /// Their name.
    pub name: String,
    /// The id of their signing key ([`key_id`]): requests it signs are theirs.
    pub key: String,
}

/// An account.
#[derive(Dao, Serialize, Deserialize, Clone, Debug)]
#[dao(name = "bankapp.Account", read = "everyone")]
pub struct Account {
    /// Its number, unique in the bank.
    #[dao(index, unique)]
    pub number: String,
    /// Its owner.
    pub owner: DaoRef<Customer>,
    /// The id of the owner's signing key ([`key_id`]), for the checks of each request.
    pub owner_key: String,
    /// What it holds.
    pub balance: u64,
    /// Its transactions, final once written, in commit order.
    pub transactions: DaoVec<Transaction>,
}

/// One movement of money on an account (final once written; encrypted for the bank's read
/// key).
#[derive(Dao, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[dao(name = "bankapp.Transaction", write = "nobody")]
pub struct Transaction {
    /// What kind of movement.
    pub kind: Movement,
    /// How much.
    pub amount: u64,
    /// The balance after it.
    pub balance: u64,
    /// The idempotency key of the request that made it.
    pub reference: String,
}

/// What moved money on an account.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Movement {
    /// Money paid in.
    Deposit,
    /// Money paid out.
    Withdrawal,
    /// Money from another account of the bank.
    TransferIn {
        /// The account it came from.
        from: String,
    },
    /// Money to another account of the bank.
    TransferOut {
        /// The account it went to.
        to: String,
    },
}

/// A money request applied, at the key of its idempotency key (final; encrypted for the
/// bank's read key).
#[derive(Dao, Serialize, Deserialize, Clone, Debug)]
#[dao(name = "bankapp.Applied", write = "nobody")]
pub struct Applied {
    /// What the request asked (a retry must ask the same).
    pub request: String,
    /// The balance it left the account it was made on with.
    pub balance: u64,
}

/// How a request names a key: its hash in hex.
pub fn key_id(key: &Hash) -> String {
    key.to_hex()
}

/// The key of the root record of the bank named `name`.
pub fn root_key(name: &str) -> PrimaryKey {
    PrimaryKey::derived(&[b"bankapp.Bank", name.as_bytes()])
}

/// Why a bank request failed (sent back to the caller by the service).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum BankError {
    /// No account with this number.
    #[error("no account {0}")]
    NoSuchAccount(String),
    /// The request was not signed by the account's owner.
    #[error("only the owner of account {0} may do this")]
    NotOwner(String),
    /// The request was not signed by the bank's staff.
    #[error("only the bank's staff may open accounts")]
    NotStaff,
    /// An account with this number exists.
    #[error("account {0} exists already")]
    DuplicateAccount(String),
    /// The account holds too little.
    #[error("account {number} holds {balance}, {wanted} asked")]
    InsufficientFunds {
        /// The account.
        number: String,
        /// What it holds.
        balance: u64,
        /// What was asked.
        wanted: u64,
    },
    /// An amount of zero, or a transfer to the same account.
    #[error("nothing to move: {0}")]
    Pointless(String),
    /// The idempotency key was used for another request.
    #[error("idempotency key {0:?} was used for another request")]
    IdempotencyConflict(String),
    /// Other requests kept changing the accounts first ([`MAX_ATTEMPTS`] tries).
    #[error("the accounts are too busy; try again")]
    Busy,
    /// The bank's root record was written by someone else than the teller.
    #[error("the bank's root record is not the teller's")]
    ForeignRoot,
    /// The chain failed (its error, as text).
    #[error("the chain failed: {0}")]
    Chain(String),
}

impl From<AteError> for BankError {
    fn from(e: AteError) -> Self {
        BankError::Chain(e.to_string())
    }
}

impl From<CommitError> for BankError {
    fn from(e: CommitError) -> Self {
        BankError::Chain(e.to_string())
    }
}

impl From<DioError> for BankError {
    fn from(e: DioError) -> Self {
        BankError::Chain(e.to_string())
    }
}

/// The bank's keys.
#[derive(Debug, Clone)]
pub struct BankKeys {
    /// The teller's signing key: the only one that writes the bank's records.
    pub teller: PrivateSignKey,
    /// The staff's signing key: opens accounts.
    pub staff: PrivateSignKey,
    /// The bank's read key: customers, transactions and requests are encrypted for it.
    pub read: PrivateEncryptKey,
}

impl BankKeys {
    /// New keys.
    pub fn generate() -> Self {
        BankKeys {
            teller: PrivateSignKey::generate(KeySize::Bit128),
            staff: PrivateSignKey::generate(KeySize::Bit128),
            read: PrivateEncryptKey::generate(KeySize::Bit128),
        }
    }

    /// The teller's session: its signing key and the bank's read key.
    pub fn teller_session(&self) -> AteSession {
        let mut s = AteSession::default();
        s.add_write_key(&self.teller)
            .add_private_read_key(&self.read);
        s
    }

    /// The staff's session (its signing key).
    pub fn staff_session(&self) -> AteSession {
        session_of(&self.staff)
    }

    /// An auditor's session: the bank's read key, no signing key.
    pub fn auditor_session(&self) -> AteSession {
        let mut s = AteSession::default();
        s.add_private_read_key(&self.read);
        s
    }
}

/// A session signing with `key`.
pub fn session_of(key: &PrivateSignKey) -> AteSession {
    let mut s = AteSession::default();
    s.add_write_key(key);
    s
}

/// Does the bank's writing: opens accounts and moves money, checking who asked, reading again
/// and retrying when another request changed an account first.
#[derive(Debug)]
pub struct Teller {
    chain: Chain,
    session: AteSession,
    root: PrimaryKey,
    read: PublicEncryptKey,
    staff: Hash,
    retries: AtomicU64,
}

impl Teller {
    /// The teller of the bank `name` on `chain`: writes the bank's root record on first use.
    ///
    /// # Errors
    ///
    /// [`BankError::ForeignRoot`] when the root record exists with rules that do not give the
    /// teller alone its write right; [`BankError::Chain`].
    pub async fn open(chain: &Chain, name: &str, keys: &BankKeys) -> Result<Teller, BankError> {
        let session = keys.teller_session();
        let root = root_key(name);
        let teller = WriteOption::Specific(keys.teller.hash());
        loop {
            let mut dio = chain.dio(&session).await;
            match dio.load::<BankRoot>(&root).await {
                Ok(r) if r.auth().write == teller => break,
                Ok(_) => return Err(BankError::ForeignRoot),
                Err(DioError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
            let mut r = dio.store_at(
                root,
                BankRoot {
                    name: name.to_string(),
                    customers: DaoVec::new(),
                    accounts: DaoVec::new(),
                    applied: DaoVec::new(),
                },
            )?;
            r.auth_mut().write = teller.clone();
            drop(r);
            match dio.commit().await {
                Ok(()) => break,
                // Written by another teller meanwhile: read it.
                Err(AteError::Commit(CommitError::Trust(TrustError::VersionMismatch {
                    ..
                }))) => {
                    chain.sync().await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Teller {
            chain: chain.clone(),
            session,
            root,
            read: keys.read.as_public_key(),
            staff: keys.staff.hash(),
            retries: AtomicU64::new(0),
        })
    }

    /// How many times a request was read again because another changed its accounts first.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// The chain the teller writes.
    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    fn encrypted(&self) -> ReadOption {
        ReadOption::from_public_key(&self.read)
    }

    /// Opens account `number` for a new customer `name` whose signing key has the id
    /// `owner_key`, asked by `callers` (who must include the bank's staff).
    ///
    /// # Errors
    ///
    /// [`BankError::NotStaff`]; [`BankError::DuplicateAccount`]; [`BankError::Chain`].
    pub async fn open_account(
        &self,
        callers: &[Hash],
        number: &str,
        name: &str,
        owner_key: &str,
    ) -> Result<(), BankError> {
        if !callers.contains(&self.staff) {
            return Err(BankError::NotStaff);
        }
        let mut dio = self.chain.dio(&self.session).await;
        let root = dio.load::<BankRoot>(&self.root).await?;
        let mut customer = root.customers.push(
            &mut dio,
            Customer {
                name: name.to_string(),
                key: owner_key.to_string(),
            },
        )?;
        customer.auth_mut().read = self.encrypted();
        let account = Account {
            number: number.to_string(),
            owner: DaoRef::from(&customer),
            owner_key: owner_key.to_string(),
            balance: 0,
            transactions: DaoVec::new(),
        };
        drop(customer);
        root.accounts.push(&mut dio, account)?;
        match dio.commit().await {
            Ok(()) => Ok(()),
            Err(AteError::Commit(CommitError::UniqueViolation { .. })) => {
                Err(BankError::DuplicateAccount(number.to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Pays `amount` into account `number`, asked by `callers` (its owner), once per
    /// idempotency key `reference`; the new balance (or the first outcome, for a retry).
    ///
    /// # Errors
    ///
    /// [`BankError::NoSuchAccount`], [`BankError::NotOwner`], [`BankError::Pointless`] for
    /// zero, [`BankError::IdempotencyConflict`], [`BankError::Busy`], [`BankError::Chain`].
    pub async fn deposit(
        &self,
        callers: &[Hash],
        number: &str,
        amount: u64,
        reference: &str,
    ) -> Result<u64, BankError> {
        self.apply(callers, reference, Op::Deposit { number, amount })
            .await
    }

    /// Takes `amount` out of account `number`, asked by its owner, once per `reference`;
    /// the new balance.
    ///
    /// # Errors
    ///
    /// As [`Teller::deposit`]; [`BankError::InsufficientFunds`].
    pub async fn withdraw(
        &self,
        callers: &[Hash],
        number: &str,
        amount: u64,
        reference: &str,
    ) -> Result<u64, BankError> {
        self.apply(callers, reference, Op::Withdraw { number, amount })
            .await
    }

    /// Moves `amount` from account `from` (asked by its owner) to account `to`, both or
    /// neither, once per `reference`; the balance left on `from`.
    ///
    /// # Errors
    ///
    /// As [`Teller::withdraw`]; [`BankError::Pointless`] for the same account twice.
    pub async fn transfer(
        &self,
        callers: &[Hash],
        from: &str,
        to: &str,
        amount: u64,
        reference: &str,
    ) -> Result<u64, BankError> {
        self.apply(callers, reference, Op::Transfer { from, to, amount })
            .await
    }

    /// Account `number`'s balance and transactions, for its owner.
    ///
    /// # Errors
    ///
    /// [`BankError::NoSuchAccount`], [`BankError::NotOwner`], [`BankError::Chain`].
    pub async fn statement(&self, callers: &[Hash], number: &str) -> Result<Statement, BankError> {
        let dio = self.chain.dio(&self.session).await;
        let account = self.account(&dio, number).await?;
        self.check_owner(callers, &account)?;
        let transactions = account.transactions.iter(&dio).await?;
        Ok(Statement {
            number: number.to_string(),
            balance: account.balance,
            transactions: transactions.into_iter().map(Dao::into_inner).collect(),
        })
    }

    async fn account(&self, dio: &Dio, number: &str) -> Result<Dao<Account>, BankError> {
        let found = Account::find_by_number(dio, number).await?;
        // Only the bank's accounts count: those under its root record.
        match found {
            Some(a) if a.parent().map(|p| p.parent) == Some(self.root) => Ok(a),
            _ => Err(BankError::NoSuchAccount(number.to_string())),
        }
    }

    fn check_owner(&self, callers: &[Hash], account: &Account) -> Result<(), BankError> {
        match Hash::from_hex(&account.owner_key) {
            Some(owner) if callers.contains(&owner) => Ok(()),
            _ => Err(BankError::NotOwner(account.number.clone())),
        }
    }

    fn record(
        &self,
        dio: &mut Dio,
        account: &Dao<Account>,
        kind: Movement,
        amount: u64,
        balance: u64,
        reference: &str,
    ) -> Result<(), BankError> {
        let mut t = account.transactions.push(
            dio,
            Transaction {
                kind,
                amount,
                balance,
                reference: reference.to_string(),
            },
        )?;
        t.auth_mut().read = self.encrypted();
        Ok(())
    }

    /// Stages `op` in `dio`: the accounts it changes and their transactions; the balance
    /// it leaves on the account it was asked for.
    async fn stage(
        &self,
        dio: &mut Dio,
        callers: &[Hash],
        reference: &str,
        op: &Op<'_>,
    ) -> Result<u64, BankError> {
        match *op {
            Op::Deposit { number, amount } | Op::Withdraw { number, amount } => {
                let deposit = matches!(op, Op::Deposit { .. });
                let mut account = self.account(dio, number).await?;
                self.check_owner(callers, &account)?;
                if amount == 0 {
                    return Err(BankError::Pointless(format!("{} of 0", op.verb())));
                }
                let (balance, kind) = if deposit {
                    (credit(&account, amount)?, Movement::Deposit)
                } else {
                    (debit(&account, amount)?, Movement::Withdrawal)
                };
                account.as_mut().balance = balance;
                self.record(dio, &account, kind, amount, balance, reference)?;
                Ok(balance)
            }
            Op::Transfer { from, to, amount } => {
                if from == to {
                    return Err(BankError::Pointless(
                        "a transfer to the same account".into(),
                    ));
                }
                let mut source = self.account(dio, from).await?;
                self.check_owner(callers, &source)?;
                let mut target = self.account(dio, to).await?;
                if amount == 0 {
                    return Err(BankError::Pointless(format!("{} of 0", op.verb())));
                }
                let left = debit(&source, amount)?;
                let credited = credit(&target, amount)?;
                source.as_mut().balance = left;
                target.as_mut().balance = credited;
                let out = Movement::TransferOut { to: to.to_string() };
                self.record(dio, &source, out, amount, left, reference)?;
                let inn = Movement::TransferIn {
                    from: from.to_string(),
                };
                self.record(dio, &target, inn, amount, credited, reference)?;
                Ok(left)
            }
        }
    }

    /// Applies `op` with the request's applied record beside it, committing both or
    /// neither; reads again and retries when another request changed what it read first.
    async fn apply(&self, callers: &[Hash], reference: &str, op: Op<'_>) -> Result<u64, BankError> {
        let request = op.describe();
        let caller = callers.first().map(|h| *h.as_bytes()).unwrap_or_default();
        let key = PrimaryKey::derived(&[b"bankapp.Applied", &caller, reference.as_bytes()]);
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                self.retries.fetch_add(1, Ordering::Relaxed);
                let pause = rand::rng().random_range(0..=u64::from(attempt.min(20)) * 200);
                tokio::time::sleep(Duration::from_micros(pause)).await;
            }
            let mut dio = self.chain.dio(&self.session).await;
            // Applied before: its first outcome, whatever the accounts hold now.
            match dio.load::<Applied>(&key).await {
                Ok(a) if a.request == request => return Ok(a.balance),
                Ok(_) => return Err(BankError::IdempotencyConflict(reference.to_string())),
                Err(DioError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
            let outcome = self.stage(&mut dio, callers, reference, &op).await?;
            let root = dio.load::<BankRoot>(&self.root).await?;
            let mut applied = dio.store_child_at(
                key,
                &self.root,
                &root.applied,
                Applied {
                    request: request.clone(),
                    balance: outcome,
                },
            )?;
            applied.auth_mut().read = self.encrypted();
            drop((applied, root));
            match dio.commit().await {
                Ok(()) => return Ok(outcome),
                // An account changed since it was read, or the same request was applied
                // meanwhile: read again.
                Err(AteError::Commit(CommitError::Trust(TrustError::VersionMismatch {
                    ..
                }))) => {}
                // Sent to a server that may have committed it: once the replica caught up,
                // the next attempt finds it applied, or applies it.
                Err(AteError::Commit(
                    CommitError::OutcomeUnknown(_) | CommitError::Unreachable(_),
                )) => {
                    let _ = self.chain.sync().await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(BankError::Busy)
    }
}

/// A money request.
#[derive(Debug, Clone, Copy)]
enum Op<'a> {
    Deposit {
        number: &'a str,
        amount: u64,
    },
    Withdraw {
        number: &'a str,
        amount: u64,
    },
    Transfer {
        from: &'a str,
        to: &'a str,
        amount: u64,
    },
}

impl Op<'_> {
    /// What it is called.
    fn verb(&self) -> &'static str {
        match self {
            Op::Deposit { .. } => "a deposit",
            Op::Withdraw { .. } => "a withdrawal",
            Op::Transfer { .. } => "a transfer",
        }
    }

    /// What it asks, as its applied record keeps it.
    fn describe(&self) -> String {
        match self {
            Op::Deposit { number, amount } => format!("deposit {number} {amount}"),
            Op::Withdraw { number, amount } => format!("withdraw {number} {amount}"),
            Op::Transfer { from, to, amount } => format!("transfer {from} {to} {amount}"),
        }
    }
}

/// `amount` added to `account`'s balance, or why not.
fn credit(account: &Account, amount: u64) -> Result<u64, BankError> {
    account
        .balance
        .checked_add(amount)
        .ok_or_else(|| BankError::Pointless("a balance past u64".into()))
}

/// `amount` taken from `account`'s balance, or why not.
fn debit(account: &Account, amount: u64) -> Result<u64, BankError> {
    account
        .balance
        .checked_sub(amount)
        .ok_or_else(|| BankError::InsufficientFunds {
            number: account.number.clone(),
            balance: account.balance,
            wanted: amount,
        })
}

/// An account's balance and transactions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Statement {
    /// The account.
    pub number: String,
    /// What it holds.
    pub balance: u64,
    /// Its transactions, oldest first.
    pub transactions: Vec<Transaction>,
}

/// Opens an account (asked by the bank's staff).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpenAccount {
    /// Its number.
    pub number: String,
    /// The customer's name.
    pub name: String,
    /// The id of the customer's signing key ([`key_id`]).
    pub owner_key: String,
}
ate::stable_name!(OpenAccount = "bankapp.OpenAccount");

/// Pays money in (asked by the account's owner).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Deposit {
    /// The account.
    pub number: String,
    /// How much.
    pub amount: u64,
    /// The idempotency key: a retry with the same one is applied once.
    pub reference: String,
}
ate::stable_name!(Deposit = "bankapp.Deposit");

/// Takes money out (asked by the account's owner).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Withdraw {
    /// The account.
    pub number: String,
    /// How much.
    pub amount: u64,
    /// The idempotency key.
    pub reference: String,
}
ate::stable_name!(Withdraw = "bankapp.Withdraw");

/// Moves money between two accounts (asked by the owner of the first).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Transfer {
    /// The account it leaves.
    pub from: String,
    /// The account it goes to.
    pub to: String,
    /// How much.
    pub amount: u64,
    /// The idempotency key.
    pub reference: String,
}
ate::stable_name!(Transfer = "bankapp.Transfer");

/// Asks for an account's statement (its owner).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatementRequest {
    /// The account.
    pub number: String,
}
ate::stable_name!(StatementRequest = "bankapp.StatementRequest");

/// The bank's API, served from its chain by [`Branch`].
#[service]
pub trait BankApi {
    /// Opens an account; staff only.
    async fn open_account(
        &self,
        ctx: &InvocationContext,
        request: OpenAccount,
    ) -> Result<(), BankError>;
    /// Pays money in; the new balance.
    async fn deposit(&self, ctx: &InvocationContext, request: Deposit) -> Result<u64, BankError>;
    /// Takes money out; the new balance.
    async fn withdraw(&self, ctx: &InvocationContext, request: Withdraw) -> Result<u64, BankError>;
    /// Moves money to another account; the balance left.
    async fn transfer(&self, ctx: &InvocationContext, request: Transfer) -> Result<u64, BankError>;
    /// An account's balance and transactions.
    async fn statement(
        &self,
        ctx: &InvocationContext,
        request: StatementRequest,
    ) -> Result<Statement, BankError>;
}

/// Serves [`BankApi`] through a [`Teller`]: the callers the chain verified are who asked.
#[derive(Debug, Clone)]
pub struct Branch(pub Arc<Teller>);

impl BankApi for Branch {
    async fn open_account(&self, ctx: &InvocationContext, r: OpenAccount) -> Result<(), BankError> {
        self.0
            .open_account(ctx.callers(), &r.number, &r.name, &r.owner_key)
            .await
    }

    async fn deposit(&self, ctx: &InvocationContext, r: Deposit) -> Result<u64, BankError> {
        self.0
            .deposit(ctx.callers(), &r.number, r.amount, &r.reference)
            .await
    }

    async fn withdraw(&self, ctx: &InvocationContext, r: Withdraw) -> Result<u64, BankError> {
        self.0
            .withdraw(ctx.callers(), &r.number, r.amount, &r.reference)
            .await
    }

    async fn transfer(&self, ctx: &InvocationContext, r: Transfer) -> Result<u64, BankError> {
        self.0
            .transfer(ctx.callers(), &r.from, &r.to, r.amount, &r.reference)
            .await
    }

    async fn statement(
        &self,
        ctx: &InvocationContext,
        r: StatementRequest,
    ) -> Result<Statement, BankError> {
        self.0.statement(ctx.callers(), &r.number).await
    }
}

/// What an audit of the bank found: its figures, all invariants checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audit {
    /// Accounts.
    pub accounts: u64,
    /// The sum of their balances.
    pub total: u64,
    /// Money paid in, ever.
    pub deposited: u64,
    /// Money paid out, ever.
    pub withdrawn: u64,
    /// Transfers between accounts.
    pub transfers: u64,
    /// Requests applied.
    pub applied: u64,
}

/// Reads every record of the bank `name` with `session` (an auditor's: the bank's read key)
/// and checks every invariant: no balance below zero (balances are unsigned, and each
/// transaction's balance follows from the one before it), each balance the sum of its
/// account's transactions, each transfer present on both accounts with the same amount, and
/// the bank's total money what was paid in minus what was paid out.
///
/// # Errors
///
/// [`BankError::Chain`] naming the first invariant that does not hold, or a record that
/// cannot be read.
pub async fn audit(chain: &Chain, session: &AteSession, name: &str) -> Result<Audit, BankError> {
    let dio = chain.dio(session).await;
    let root = dio.load::<BankRoot>(&root_key(name)).await?;
    let broken = |what: String| Err(BankError::Chain(format!("audit: {what}")));
    let mut audit = Audit::default();
    // Transfers by reference: (out on, amount) and (in on, amount).
    let mut outs: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut ins: BTreeMap<(String, String), u64> = BTreeMap::new();
    for account in root.accounts.iter(&dio).await? {
        audit.accounts += 1;
        let mut balance: u64 = 0;
        for t in account.transactions.iter(&dio).await? {
            let next = match &t.kind {
                Movement::Deposit => {
                    audit.deposited += t.amount;
                    balance.checked_add(t.amount)
                }
                Movement::TransferIn { from } => {
                    ins.insert((t.reference.clone(), from.clone()), t.amount);
                    balance.checked_add(t.amount)
                }
                Movement::Withdrawal => {
                    audit.withdrawn += t.amount;
                    balance.checked_sub(t.amount)
                }
                Movement::TransferOut { .. } => {
                    outs.insert((t.reference.clone(), account.number.clone()), t.amount);
                    balance.checked_sub(t.amount)
                }
            };
            match next {
                Some(b) if b == t.balance => balance = b,
                _ => {
                    return broken(format!(
                        "account {}: {:?} of {} leaves {} from {balance}",
                        account.number, t.kind, t.amount, t.balance
                    ));
                }
            }
        }
        if balance != account.balance {
            return broken(format!(
                "account {} holds {} but its transactions add up to {balance}",
                account.number, account.balance
            ));
        }
        audit.total += account.balance;
    }
    if outs != ins {
        return broken(format!(
            "transfers out and in differ: {} out, {} in",
            outs.len(),
            ins.len()
        ));
    }
    audit.transfers = outs.len() as u64;
    if audit.deposited.checked_sub(audit.withdrawn) != Some(audit.total) {
        return broken(format!(
            "the bank holds {} but {} was paid in and {} out",
            audit.total, audit.deposited, audit.withdrawn
        ));
    }
    audit.applied = root.applied.iter(&dio).await?.len() as u64;
    Ok(audit)
}
