//! The commit stream: every committed transaction of a chain, in log order, history first.
//!
//! The writer publishes each transaction once its group is durable and applied to the view:
//! one [`Committed`] (a shared slice of the appended buffer and, behind one `Arc`, the events
//! the writer decoded anyway) sent on a bounded `tokio::sync::broadcast` channel, and only
//! when someone subscribed. A subscriber that falls further behind than the channel holds
//! never slows the writer: the channel drops the oldest items for it, and its
//! [`CommitStream`] notices (a lag, or a gap between the number it expects and the next item)
//! and reads the missed range from the chain's history (`history.rs`) before it goes on live.
//! Every item is delivered exactly once, in order, whichever way it arrived: the history is
//! updated before an item is published, and a stream drops what it has already delivered.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use crate::event::codec::TransactionRef;
use crate::event::{ParentLink, PrimaryKey};
use crate::trust::EventKeys;

use super::apply::TxEvents;
use super::{Shared, StreamError};

/// How many bytes of payloads a lagging stream reads from the history at a time.
const CATCH_UP_BYTES: usize = 1 << 20;

/// One committed transaction, as the commit stream and [`Chain::read_from`] deliver it.
/// Cheap to clone (two reference counts).
///
/// [`Chain::read_from`]: super::Chain::read_from
#[derive(Clone)]
pub struct Committed {
    seq: u64,
    payload: Bytes,
    events: Arc<TxEvents>,
}

impl std::fmt::Debug for Committed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Committed")
            .field("seq", &self.seq)
            .field("bytes", &self.payload.len())
            .field("events", &self.events.events.len())
            .finish()
    }
}

/// One event of a [`Committed`] transaction.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct CommittedEvent<'a> {
    /// The record written.
    pub key: PrimaryKey,
    /// Its place in the tree (`None`: a root record).
    pub parent: Option<ParentLink>,
    /// Whether the event deletes the record.
    pub tombstone: bool,
    /// The record's stable type name.
    pub type_name: &'a str,
    /// The encoded event, as in the payload (`unstable::codec::decode_event` reads it).
    pub raw: &'a [u8],
}

impl Committed {
    /// A transaction the writer just committed: `events` are what it decoded of `payload`.
    pub(super) fn new(seq: u64, payload: Bytes, events: TxEvents) -> Self {
        Committed {
            seq,
            payload,
            events: Arc::new(events),
        }
    }

    /// A transaction read back from the history.
    pub(super) fn decode(seq: u64, payload: Bytes) -> Result<Self, StreamError> {
        let events = {
            // From the chain's own log: a compacted one holds pruned transactions.
            let tx = TransactionRef::decode_stored(&payload)
                .map_err(|source| StreamError::Malformed { seq, source })?;
            TxEvents::of(&tx, &payload)
        };
        Ok(Committed::new(seq, payload, events))
    }

    /// Its sequence number in the chain.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The transaction's bytes exactly as the log's frame holds them (without the frame
    /// header): what a replica applies with
    /// [`Chain::apply_replicated`](super::Chain::apply_replicated).
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    /// How many events it holds.
    pub fn len(&self) -> usize {
        self.events.events.len()
    }

    /// Whether it holds no event.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The keys of its events, in order.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = PrimaryKey> + '_ {
        self.events.events.iter().map(|e| e.key())
    }

    /// Its events, in order.
    pub fn events(&self) -> impl ExactSizeIterator<Item = CommittedEvent<'_>> + '_ {
        self.events.events.iter().map(|e| CommittedEvent {
            key: e.key(),
            parent: e.parent(),
            tombstone: e.tombstone(),
            type_name: self.events.type_name(e),
            raw: self.payload.get(e.span()).unwrap_or_default(),
        })
    }
}

/// Reads the committed transactions from `from` on, up to `max_bytes` of payloads (at least
/// one when there is one).
pub(super) fn read(
    shared: &Shared,
    from: u64,
    max_bytes: usize,
) -> Result<Vec<Committed>, StreamError> {
    let payloads = shared.history.read().payloads_from(from, max_bytes);
    payloads
        .into_iter()
        .map(|(seq, payload)| Committed::decode(seq, payload))
        .collect()
}

/// Every committed transaction of a chain in log order, from a position: first those already
/// committed, then each new one once it is durable and in the view. Made by
/// [`Chain::subscribe`](super::Chain::subscribe).
///
/// The stream never holds the chain open: once every [`Chain`](super::Chain) handle is dropped
/// (and the writer has finished), [`CommitStream::next`] returns what was committed and then
/// [`StreamError::Closed`]. Dropping the stream at any time is fine.
pub struct CommitStream {
    shared: Arc<Shared>,
    live: broadcast::Receiver<Committed>,
    /// The sequence number delivered next.
    next: u64,
    /// Read from the history, to deliver before anything else.
    ready: VecDeque<Committed>,
    /// A live item past a gap, kept until the gap is read from the history.
    held: Option<Committed>,
    /// Whether the history may hold `next` (at the start, and after a lag or a gap).
    behind: bool,
}

impl std::fmt::Debug for CommitStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommitStream")
            .field("chain", &self.shared.key)
            .field("next", &self.next)
            .finish()
    }
}

impl CommitStream {
    /// A stream from `from`, receiving live items from `live` (subscribed before the history
    /// is first read, so nothing falls between the two).
    pub(super) fn new(
        shared: Arc<Shared>,
        live: broadcast::Receiver<Committed>,
        from: u64,
    ) -> Self {
        CommitStream {
            shared,
            live,
            next: from.max(1),
            ready: VecDeque::new(),
            held: None,
            behind: true,
        }
    }

    /// The sequence number of the transaction [`CommitStream::next`] returns next.
    pub fn position(&self) -> u64 {
        self.next
    }

    /// The next committed transaction: the one at [`CommitStream::position`], once it is
    /// durable and in the view (at once when it already is).
    ///
    /// # Errors
    ///
    /// [`StreamError::Closed`] once the chain is closed and every transaction committed
    /// before was returned; [`StreamError::Missing`] and [`StreamError::Malformed`] when the
    /// history cannot give a transaction the stream missed (neither happens while the chain
    /// keeps its log in memory, as it does now).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a transaction is taken from the stream only when it is returned, so a
    /// dropped call loses nothing and the next call returns the same transaction.
    pub async fn next(&mut self) -> Result<Committed, StreamError> {
        loop {
            if let Some(item) = self.ready.pop_front() {
                return Ok(self.deliver(item));
            }
            if self.behind {
                let batch = read(&self.shared, self.next, CATCH_UP_BYTES)?;
                if !batch.is_empty() {
                    self.ready.extend(batch);
                    continue;
                }
                self.behind = false;
            }
            if let Some(item) = self.held.take() {
                if item.seq == self.next {
                    return Ok(self.deliver(item));
                }
                if item.seq > self.next {
                    // The history is updated before an item is published: it cannot lack
                    // what comes before a published item.
                    return Err(StreamError::Missing { seq: self.next });
                }
                // Read from the history already.
            }
            match self.live.recv().await {
                Ok(item) if item.seq < self.next => {}
                Ok(item) if item.seq == self.next => return Ok(self.deliver(item)),
                Ok(item) => {
                    // Items were missed (dropped for this receiver, or published before it
                    // subscribed): read them from the history first.
                    self.held = Some(item);
                    self.behind = true;
                }
                Err(RecvError::Lagged(_)) => self.behind = true,
                Err(RecvError::Closed) => {
                    // Anything committed after the last item received is in the history.
                    let rest = read(&self.shared, self.next, CATCH_UP_BYTES)?;
                    if rest.is_empty() {
                        return Err(StreamError::Closed);
                    }
                    self.ready.extend(rest);
                }
            }
        }
    }

    fn deliver(&mut self, item: Committed) -> Committed {
        self.next = item.seq + 1;
        item
    }
}
