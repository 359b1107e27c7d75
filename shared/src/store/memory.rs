//! The in-memory adapter: the local server's default store and the fast half
//! of the contract suite. Same rules as DynamoDB, including the item size
//! limit, lazy expiry and conditional writes.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use super::{
    Condition, Cursor, Item, ItemBatchWrite, ItemDelete, ItemGet, ItemKey, ItemPut, ItemQuery,
    Order, Page, Query, StoreError, StoreResult, Stored, WriteOp, last_op_per_key,
};
use crate::clock::{Clock, SystemClock};

type Partition = BTreeMap<String, Stored>;

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

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Partition>> {
        // NB: a panic while holding the lock cannot leave a half-written map
        // (every mutation is one insert or remove), so poisoning is ignored.
        self.partitions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The live item under `key`, if any.
    fn live<'a>(
        &self,
        partitions: &'a BTreeMap<String, Partition>,
        key: &ItemKey,
    ) -> Option<&'a Stored> {
        let now = self.clock.now();
        partitions.get(&key.pk).and_then(|p| p.get(&key.sk)).filter(|s| s.item.is_live(now))
    }

    fn check_condition(current: Option<&Stored>, condition: Condition) -> StoreResult<()> {
        let holds = match condition {
            Condition::Always => true,
            Condition::IfAbsent => current.is_none(),
            Condition::IfVersion(v) => current.is_some_and(|s| s.version == v),
        };
        if holds { Ok(()) } else { Err(StoreError::ConditionFailed) }
    }
}

#[async_trait]
impl ItemGet for MemoryStore {
    async fn get(&self, key: &ItemKey) -> StoreResult<Option<Stored>> {
        key.check()?;
        Ok(self.live(&self.lock(), key).cloned())
    }
}

#[async_trait]
impl ItemPut for MemoryStore {
    async fn put(&self, item: Item, condition: Condition) -> StoreResult<u64> {
        item.check()?;
        let item = item.normalised();
        let mut partitions = self.lock();
        let current = self.live(&partitions, &item.key);
        Self::check_condition(current, condition)?;
        // An expired item still occupies its key (as in DynamoDB, until TTL
        // deletion) and its version keeps counting.
        let previous =
            partitions.get(&item.key.pk).and_then(|p| p.get(&item.key.sk)).map_or(0, |s| s.version);
        let version = previous + 1;
        let pk = item.key.pk.clone();
        let sk = item.key.sk.clone();
        partitions.entry(pk).or_default().insert(sk, Stored { item, version });
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
        let matching = |(sk, stored): &(&String, &Stored)| {
            query.range.contains(sk) && stored.item.is_live(now)
        };
        let mut found: Vec<Stored> = match query.order {
            Order::Ascending => {
                range.filter(matching).take(limit + 1).map(|(_, s)| s.clone()).collect()
            }
            Order::Descending => {
                range.rev().filter(matching).take(limit + 1).map(|(_, s)| s.clone()).collect()
            }
        };
        let more = found.len() > limit;
        found.truncate(limit);
        let next = if more { found.last().map(|s| Cursor::after(&s.item.key)) } else { None };
        Ok(Page { items: found, next })
    }
}

#[async_trait]
impl ItemBatchWrite for MemoryStore {
    async fn batch_write(&self, ops: Vec<WriteOp>) -> StoreResult<()> {
        let ops = last_op_per_key(ops);
        // Validate everything first so that a bad item fails the batch before
        // any of it is applied, as DynamoDB's request validation does.
        for op in &ops {
            match op {
                WriteOp::Put(item) => item.check()?,
                WriteOp::Delete(key) => key.check()?,
            }
        }
        let mut partitions = self.lock();
        for op in ops {
            match op {
                WriteOp::Put(item) => {
                    let item = item.normalised();
                    let pk = item.key.pk.clone();
                    let sk = item.key.sk.clone();
                    partitions.entry(pk).or_default().insert(sk, Stored { item, version: 1 });
                }
                WriteOp::Delete(key) => {
                    if let Some(partition) = partitions.get_mut(&key.pk) {
                        partition.remove(&key.sk);
                    }
                }
            }
        }
        Ok(())
    }
}
