//! The storage port: a single-table item store (partition key + sort key,
//! a JSON body, an optional expiry and a version for optimistic concurrency),
//! split into narrow traits so that a handler depends only on what it uses.
//!
//! Two adapters implement it — [`memory::MemoryStore`] and
//! [`dynamodb::DynamoStore`] — and one contract suite
//! (`tests/integration/tests/it/store_contract.rs`) runs against both.
//!
//! Rules every adapter keeps:
//! - an item whose expiry has passed is never returned, whether or not the
//!   backend has deleted it yet (DynamoDB's TTL deletion lags by up to days);
//! - a conditional write that loses a race fails with
//!   [`StoreError::ConditionFailed`], never a silent overwrite;
//! - query pages hold at most `limit` items, in sort-key order, and the
//!   cursor resumes exactly after the last item returned.

pub mod batch;
#[cfg(any(test, feature = "test-support"))]
pub mod counting;
pub mod dynamodb;
pub mod memory;

use async_trait::async_trait;
use base64::Engine as _;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// DynamoDB refuses items over 400 KB; we refuse a little earlier, in every
/// adapter, so that the in-memory store cannot accept what production would not.
pub const MAX_ITEM_BYTES: usize = 400 * 1000;
/// The largest page a query may ask for.
pub const MAX_PAGE_SIZE: u32 = 1000;

pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The write's condition did not hold (another writer got there first).
    #[error("the write's condition did not hold")]
    ConditionFailed,
    #[error("the pagination cursor is not valid for this query")]
    InvalidCursor,
    #[error("an item of {size} bytes is over the {MAX_ITEM_BYTES}-byte limit")]
    ItemTooLarge { size: usize },
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),
    /// The backend asked us to slow down; safe to retry later.
    #[error("the store is throttling requests")]
    Throttled(#[source] BoxError),
    /// The backend failed or could not be reached.
    #[error("the store is unavailable")]
    Unavailable(#[source] BoxError),
    /// An item in the table does not have the shape this code writes.
    #[error("stored item {pk}/{sk} is corrupt: {reason}")]
    Corrupt { pk: String, sk: String, reason: String },
    /// A record could not be encoded as an item (a bug, not the store's).
    #[error("a record could not be encoded")]
    Encoding(#[source] serde_json::Error),
}

impl StoreError {
    /// The item at `key` does not decode as the record it should hold.
    pub fn corrupt(key: &ItemKey, reason: impl std::fmt::Display) -> Self {
        Self::Corrupt { pk: key.pk.clone(), sk: key.sk.clone(), reason: reason.to_string() }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ItemKey {
    pub pk: String,
    pub sk: String,
}

impl ItemKey {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self { pk: pk.into(), sk: sk.into() }
    }

    fn check(&self) -> StoreResult<()> {
        // DynamoDB: key strings 1..=2048 (pk) / 1..=1024 (sk) bytes.
        if self.pk.is_empty() || self.pk.len() > 2048 {
            return Err(StoreError::InvalidKey("the partition key must be 1 to 2048 bytes"));
        }
        if self.sk.is_empty() || self.sk.len() > MAX_SORT_KEY {
            return Err(StoreError::InvalidKey("the sort key must be 1 to 1024 bytes"));
        }
        Ok(())
    }
}

/// DynamoDB's limit on a sort key, in bytes.
pub const MAX_SORT_KEY: usize = 1024;

/// What is written.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub key: ItemKey,
    pub body: serde_json::Value,
    /// After this instant the item is gone for readers; the backend deletes
    /// it eventually.
    pub expires_at: Option<Timestamp>,
}

/// Counts the bytes written to it.
struct ByteCount(usize);

impl std::io::Write for ByteCount {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0 += bytes.len();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Item {
    pub fn new(key: ItemKey, body: serde_json::Value) -> Self {
        Self { key, body, expires_at: None }
    }

    pub fn expiring_at(mut self, at: Timestamp) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// Encoded size as both adapters count it: keys plus the JSON body.
    pub fn size(&self) -> usize {
        // Counted as it is written: a large body is never copied to measure it.
        let mut counted = ByteCount(0);
        let body = match serde_json::to_writer(&mut counted, &self.body) {
            Ok(()) => counted.0,
            Err(_) => usize::MAX,
        };
        self.key.pk.len() + self.key.sk.len() + body.saturating_add(32)
    }

    /// Expiry is kept to whole seconds, as DynamoDB's TTL attribute holds it,
    /// so that every adapter returns exactly what the other would.
    fn normalised(mut self) -> Self {
        self.expires_at =
            self.expires_at.and_then(|at| Timestamp::from_second(at.as_second()).ok());
        self
    }

    fn check(&self) -> StoreResult<()> {
        self.key.check()?;
        let size = self.size();
        if size > MAX_ITEM_BYTES {
            return Err(StoreError::ItemTooLarge { size });
        }
        Ok(())
    }

    fn is_live(&self, now: Timestamp) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }
}

/// What is read: the item and the version it was stored at.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub item: Item,
    /// Starts at 1 and grows by one with each put of the same key.
    pub version: u64,
}

/// When a put or delete may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Always,
    /// Only if no live item has this key.
    IfAbsent,
    /// Only if the stored item is at exactly this version.
    IfVersion(u64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortKeyRange {
    All,
    Prefix(String),
    /// Inclusive on both ends.
    Between(String, String),
}

impl SortKeyRange {
    fn contains(&self, sk: &str) -> bool {
        match self {
            Self::All => true,
            Self::Prefix(prefix) => sk.starts_with(prefix.as_str()),
            Self::Between(from, to) => from.as_str() <= sk && sk <= to.as_str(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Ascending,
    Descending,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub pk: String,
    pub range: SortKeyRange,
    pub order: Order,
    pub limit: u32,
    pub cursor: Option<Cursor>,
}

impl Query {
    pub fn partition(pk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            range: SortKeyRange::All,
            order: Order::Ascending,
            limit: 100,
            cursor: None,
        }
    }

    pub fn range(mut self, range: SortKeyRange) -> Self {
        self.range = range;
        self
    }

    pub fn descending(mut self) -> Self {
        self.order = Order::Descending;
        self
    }

    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = limit;
        self
    }

    pub fn after(mut self, cursor: Option<Cursor>) -> Self {
        self.cursor = cursor;
        self
    }

    fn check(&self) -> StoreResult<Option<ItemKey>> {
        if self.pk.is_empty() {
            return Err(StoreError::InvalidKey("the partition key must not be empty"));
        }
        let start = self.cursor.as_ref().map(Cursor::decode).transpose()?;
        if start.as_ref().is_some_and(|k| k.pk != self.pk) {
            return Err(StoreError::InvalidCursor);
        }
        Ok(start)
    }

    fn page_size(&self) -> u32 {
        self.limit.clamp(1, MAX_PAGE_SIZE)
    }
}

/// An opaque position in a query: the key of the last item of a page,
/// base64url-encoded so that clients pass it back untouched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(String);

impl Cursor {
    pub fn after(key: &ItemKey) -> Self {
        let json = serde_json::to_vec(key).unwrap_or_default();
        Self(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json))
    }

    /// Wraps a cursor received from a client; it is checked when used.
    pub fn from_client(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn decode(&self) -> StoreResult<ItemKey> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&self.0)
            .map_err(|_| StoreError::InvalidCursor)?;
        let key: ItemKey = serde_json::from_slice(&bytes).map_err(|_| StoreError::InvalidCursor)?;
        key.check().map_err(|_| StoreError::InvalidCursor)?;
        Ok(key)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub items: Vec<Stored>,
    /// Present when more items may follow.
    pub next: Option<Cursor>,
}

/// One write of a batch. Batches are unconditional (DynamoDB's
/// BatchWriteItem has no conditions); a batch put starts the key at version 1.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteOp {
    Put(Item),
    Delete(ItemKey),
}

impl WriteOp {
    pub fn key(&self) -> &ItemKey {
        match self {
            Self::Put(item) => &item.key,
            Self::Delete(key) => key,
        }
    }
}

#[async_trait]
pub trait ItemGet: Send + Sync {
    async fn get(&self, key: &ItemKey) -> StoreResult<Option<Stored>>;
}

#[async_trait]
pub trait ItemPut: Send + Sync {
    /// Writes the item if the condition holds and returns its new version.
    async fn put(&self, item: Item, condition: Condition) -> StoreResult<u64>;
}

#[async_trait]
pub trait ItemDelete: Send + Sync {
    /// Deletes the item if the condition holds; deleting nothing is not an error
    /// under [`Condition::Always`].
    async fn delete(&self, key: &ItemKey, condition: Condition) -> StoreResult<()>;
}

#[async_trait]
pub trait ItemQuery: Send + Sync {
    async fn query(&self, query: Query) -> StoreResult<Page>;
}

#[async_trait]
pub trait ItemBatchWrite: Send + Sync {
    /// Applies every op, in chunks the backend accepts, retrying what the
    /// backend left unprocessed. Later ops on the same key win.
    async fn batch_write(&self, ops: Vec<WriteOp>) -> StoreResult<()>;
}

/// Counters that many writers share: limits, whose bound must hold however
/// many requests race (a read followed by a conditional write would let
/// racing requests all read the same count and all go ahead).
#[async_trait]
pub trait ItemCounter: Send + Sync {
    /// Adds `delta` to the counter under `key` in one atomic step, only if
    /// the result stays within `0..=max`, and returns the new count; `None`
    /// when the bound held the change back (nothing is written then). A
    /// counter that does not exist counts 0 and is created to expire at
    /// `expires_at`. Counters are read only through this method: give each
    /// window of a limit its own key, since an expired counter is not reset.
    async fn add_within(
        &self,
        key: &ItemKey,
        delta: i64,
        max: u64,
        expires_at: Timestamp,
    ) -> StoreResult<Option<u64>>;
}

/// The counter's new value, if `current + delta` stays within `0..=max`.
fn counter_step(current: u64, delta: i64, max: u64) -> Option<u64> {
    let next = current.checked_add_signed(delta)?;
    (next <= max).then_some(next)
}

/// Everything at once, for wiring; handlers should ask for the narrow traits.
pub trait Store: ItemGet + ItemPut + ItemDelete + ItemQuery + ItemBatchWrite + ItemCounter {}
impl<T: ItemGet + ItemPut + ItemDelete + ItemQuery + ItemBatchWrite + ItemCounter> Store for T {}

/// Keeps the last op per key, in first-seen order: DynamoDB rejects a batch
/// that names one key twice, and "last write wins" is what a caller means.
fn last_op_per_key(ops: Vec<WriteOp>) -> Vec<WriteOp> {
    let mut index: std::collections::HashMap<ItemKey, usize> = std::collections::HashMap::new();
    let mut out: Vec<WriteOp> = Vec::with_capacity(ops.len());
    for op in ops {
        match index.get(op.key()) {
            Some(&at) => out[at] = op,
            None => {
                index.insert(op.key().clone(), out.len());
                out.push(op);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let key = ItemKey::new("CLUSTER#a", "WL#ns#name");
        assert_eq!(Cursor::after(&key).decode().unwrap(), key);
        assert!(matches!(Cursor::from_client("%%%").decode(), Err(StoreError::InvalidCursor)));
        assert!(matches!(Cursor::from_client("e30").decode(), Err(StoreError::InvalidCursor)));
    }

    #[test]
    fn a_cursor_from_another_partition_is_refused() {
        let q = Query::partition("A").after(Some(Cursor::after(&ItemKey::new("B", "x"))));
        assert!(matches!(q.check(), Err(StoreError::InvalidCursor)));
    }

    #[test]
    fn an_item_s_size_is_its_keys_and_encoded_body() {
        let body = serde_json::json!({"name": "caf\u{e9} \"quoted\"", "n": [1, 2.5, null]});
        let item = Item::new(ItemKey::new("pk", "sort"), body.clone());
        let encoded = serde_json::to_vec(&body).unwrap().len();
        assert_eq!(item.size(), 2 + 4 + encoded + 32);
    }

    #[test]
    fn duplicate_keys_in_a_batch_keep_the_last_op() {
        let a = ItemKey::new("p", "a");
        let b = ItemKey::new("p", "b");
        let ops = vec![
            WriteOp::Put(Item::new(a.clone(), serde_json::json!(1))),
            WriteOp::Put(Item::new(b.clone(), serde_json::json!(2))),
            WriteOp::Delete(a.clone()),
        ];
        assert_eq!(
            last_op_per_key(ops),
            vec![WriteOp::Delete(a), WriteOp::Put(Item::new(b, serde_json::json!(2)))]
        );
    }
}
