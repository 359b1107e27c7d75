//! The in-memory adapter: the local server's default store and the fast half
//! of the contract suite. Same rules as DynamoDB, including the item size
//! limit, lazy expiry and conditional writes.
//!
//! Bodies are kept as compact JSON text rather than `serde_json::Value`
//! trees: a tree costs several times the memory of its text, and a cluster
//! snapshot is tens of thousands of items.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use jiff::Timestamp;

use super::{
    Condition, Cursor, Item, ItemBatchWrite, ItemCounter, ItemDelete, ItemGet, ItemKey, ItemPut,
    ItemQuery, Order, Page, Query, StoreError, StoreResult, Stored, WriteOp, counter_step,
    last_op_per_key,
};
use crate::clock::{Clock, SystemClock};

/// One stored item, minus its key (the maps hold that).
struct Record {
    body: Box<str>,
    expires_at: Option<Timestamp>,
    version: u64,
}

impl Record {
    fn new(item: &Item, version: u64) -> StoreResult<Self> {
        let body = serde_json::to_string(&item.body).map_err(StoreError::Encoding)?;
        Ok(Self { body: body.into_boxed_str(), expires_at: item.expires_at, version })
    }

    fn is_live(&self, now: Timestamp) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }

    fn to_stored(&self, pk: &str, sk: &str) -> StoreResult<Stored> {
        let body = serde_json::from_str(&self.body).map_err(|e| StoreError::Corrupt {
            pk: pk.to_owned(),
            sk: sk.to_owned(),
            reason: e.to_string(),
        })?;
        let item = Item { key: ItemKey::new(pk, sk), body, expires_at: self.expires_at };
        Ok(Stored { item, version: self.version })
    }
}

type Partition = BTreeMap<String, Record>;

#[derive(Clone)]
pub struct MemoryStore {
    partitions: Arc<Mutex<BTreeMap<String, Partition>>>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new(Arc::new(SystemClock))
    }
}

impl MemoryStore {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self { partitions: Arc::default(), clock }
    }

    /// The clock expiry is judged by.
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Partition>> {
        // NB: a panic while holding the lock cannot leave a half-written map
        // (every mutation is one insert or remove), so poisoning is ignored.
        self.partitions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The live record under `key`, if any.
    fn live<'a>(
        &self,
        partitions: &'a BTreeMap<String, Partition>,
        key: &ItemKey,
    ) -> Option<&'a Record> {
        let now = self.clock.now();
        partitions.get(&key.pk).and_then(|p| p.get(&key.sk)).filter(|r| r.is_live(now))
    }

    fn check_condition(current: Option<&Record>, condition: Condition) -> StoreResult<()> {
        let holds = match condition {
            Condition::Always => true,
            Condition::IfAbsent => current.is_none(),
            Condition::IfVersion(v) => current.is_some_and(|r| r.version == v),
        };
        if holds { Ok(()) } else { Err(StoreError::ConditionFailed) }
    }
}

#[async_trait]
impl ItemGet for MemoryStore {
    async fn get(&self, key: &ItemKey) -> StoreResult<Option<Stored>> {
        key.check()?;
        let partitions = self.lock();
        self.live(&partitions, key).map(|r| r.to_stored(&key.pk, &key.sk)).transpose()
    }
}

#[async_trait]
impl ItemPut for MemoryStore {
    async fn put(&self, item: Item, condition: Condition) -> StoreResult<u64> {
        item.check()?;
        let item = item.normalised();
        let mut partitions = self.lock();
        Self::check_condition(self.live(&partitions, &item.key), condition)?;
        // An expired item still occupies its key (as in DynamoDB, until TTL
        // deletion) and its version keeps counting.
        let previous =
            partitions.get(&item.key.pk).and_then(|p| p.get(&item.key.sk)).map_or(0, |r| r.version);
        let version = previous + 1;
        let record = Record::new(&item, version)?;
        partitions.entry(item.key.pk).or_default().insert(item.key.sk, record);
        Ok(version)
    }
}

#[async_trait]
impl ItemDelete for MemoryStore {
    async fn delete(&self, key: &ItemKey, condition: Condition) -> StoreResult<()> {
        key.check()?;
        let mut partitions = self.lock();
        Self::check_condition(self.live(&partitions, key), condition)?;
        if let Some(partition) = partitions.get_mut(&key.pk) {
            partition.remove(&key.sk);
            if partition.is_empty() {
                partitions.remove(&key.pk);
            }
        }
        Ok(())
    }
}

#[async_trait]
impl ItemQuery for MemoryStore {
    async fn query(&self, query: Query) -> StoreResult<Page> {
        let start = query.check()?;
        let limit = query.page_size() as usize;
        let now = self.clock.now();
        let partitions = self.lock();
        let Some(partition) = partitions.get(&query.pk) else {
            return Ok(Page { items: Vec::new(), next: None });
        };
        let bounds = match (&start, query.order) {
            (None, _) => (Bound::Unbounded, Bound::Unbounded),
            (Some(k), Order::Ascending) => (Bound::Excluded(k.sk.clone()), Bound::Unbounded),
            (Some(k), Order::Descending) => (Bound::Unbounded, Bound::Excluded(k.sk.clone())),
        };
        let range = partition.range::<String, _>(bounds);
        let matching =
            |(sk, record): &(&String, &Record)| query.range.contains(sk) && record.is_live(now);
        let found: Vec<(&String, &Record)> = match query.order {
            Order::Ascending => range.filter(matching).take(limit + 1).collect(),
            Order::Descending => range.rev().filter(matching).take(limit + 1).collect(),
        };
        let more = found.len() > limit;
        let items = found
            .into_iter()
            .take(limit)
            .map(|(sk, record)| record.to_stored(&query.pk, sk))
            .collect::<StoreResult<Vec<_>>>()?;
        let next = if more { items.last().map(|s| Cursor::after(&s.item.key)) } else { None };
        Ok(Page { items, next })
    }
}

#[async_trait]
impl ItemBatchWrite for MemoryStore {
    async fn batch_write(&self, ops: Vec<WriteOp>) -> StoreResult<()> {
        let ops = last_op_per_key(ops);
        // Validate and encode everything first so that a bad item fails the
        // batch before any of it is applied, as DynamoDB's validation does.
        let mut prepared = Vec::with_capacity(ops.len());
        for op in ops {
            prepared.push(match op {
                WriteOp::Put(item) => {
                    item.check()?;
                    let item = item.normalised();
                    let record = Record::new(&item, 1)?;
                    (item.key, Some(record))
                }
                WriteOp::Delete(key) => {
                    key.check()?;
                    (key, None)
                }
            });
        }
        let mut partitions = self.lock();
        for (key, record) in prepared {
            match record {
                Some(record) => {
                    partitions.entry(key.pk).or_default().insert(key.sk, record);
                }
                None => {
                    if let Some(partition) = partitions.get_mut(&key.pk) {
                        partition.remove(&key.sk);
                    }
                }
            }
        }
        Ok(())
    }
}

#[async_trait]
impl ItemCounter for MemoryStore {
    async fn add_within(
        &self,
        key: &ItemKey,
        delta: i64,
        max: u64,
        expires_at: Timestamp,
    ) -> StoreResult<Option<u64>> {
        key.check()?;
        // One lock from read to write: the memory store's atomic step.
        let mut partitions = self.lock();
        let existing = partitions.get(&key.pk).and_then(|p| p.get(&key.sk));
        let (current, version, expiry) = match existing {
            Some(record) => {
                let body: serde_json::Value =
                    serde_json::from_str(&record.body).map_err(StoreError::Encoding)?;
                (body["count"].as_u64().unwrap_or(0), record.version, record.expires_at)
            }
            None => (0, 0, Timestamp::from_second(expires_at.as_second()).ok()),
        };
        let Some(next) = counter_step(current, delta, max) else { return Ok(None) };
        let item = Item::new(key.clone(), serde_json::json!({ "count": next }));
        let record = Record::new(&Item { expires_at: expiry, ..item }, version + 1)?;
        partitions.entry(key.pk.clone()).or_default().insert(key.sk.clone(), record);
        Ok(Some(next))
    }
}
