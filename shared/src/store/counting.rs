//! A store wrapper that counts item writes, gets and queries, for tests and
//! benchmarks that assert what a run or a request cost (DynamoDB bills
//! writes per item, and the request path must never scan).

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use super::{
    Condition, Item, ItemBatchWrite, ItemCounter, ItemDelete, ItemGet, ItemKey, ItemPut, ItemQuery,
    Page, Query, Store, StoreResult, Stored, WriteOp,
};

pub struct CountingStore<S> {
    inner: S,
    writes: AtomicU64,
    gets: AtomicU64,
    queries: AtomicU64,
    items: AtomicU64,
}

impl<S> std::fmt::Debug for CountingStore<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountingStore")
            .field("writes", &self.writes.load(Ordering::SeqCst))
            .finish_non_exhaustive()
    }
}

impl<S: Store> CountingStore<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            writes: AtomicU64::new(0),
            gets: AtomicU64::new(0),
            queries: AtomicU64::new(0),
            items: AtomicU64::new(0),
        }
    }

    /// Items put or deleted so far (attempted, successful or not).
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    /// Returns the count and starts again from zero.
    pub fn take_writes(&self) -> u64 {
        self.writes.swap(0, Ordering::SeqCst)
    }

    /// `(gets, queries)` since the last call, each query page counted once.
    pub fn take_reads(&self) -> (u64, u64) {
        (self.gets.swap(0, Ordering::SeqCst), self.queries.swap(0, Ordering::SeqCst))
    }

    /// Items read (found by gets, returned by query pages) since the last
    /// call: what a request read, whether or not it showed it.
    pub fn take_items(&self) -> u64 {
        self.items.swap(0, Ordering::SeqCst)
    }

    pub fn inner(&self) -> &S {
        &self.inner
    }
}

#[async_trait]
impl<S: Store> ItemGet for CountingStore<S> {
    async fn get(&self, key: &ItemKey) -> StoreResult<Option<Stored>> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        let found = self.inner.get(key).await?;
        self.items.fetch_add(u64::from(found.is_some()), Ordering::SeqCst);
        Ok(found)
    }
}

#[async_trait]
impl<S: Store> ItemPut for CountingStore<S> {
    async fn put(&self, item: Item, condition: Condition) -> StoreResult<u64> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.put(item, condition).await
    }
}

#[async_trait]
impl<S: Store> ItemDelete for CountingStore<S> {
    async fn delete(&self, key: &ItemKey, condition: Condition) -> StoreResult<()> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.delete(key, condition).await
    }
}

#[async_trait]
impl<S: Store> ItemQuery for CountingStore<S> {
    async fn query(&self, query: Query) -> StoreResult<Page> {
        self.queries.fetch_add(1, Ordering::SeqCst);
        let page = self.inner.query(query).await?;
        self.items.fetch_add(page.items.len() as u64, Ordering::SeqCst);
        Ok(page)
    }
}

#[async_trait]
impl<S: Store> ItemBatchWrite for CountingStore<S> {
    async fn batch_write(&self, ops: Vec<WriteOp>) -> StoreResult<()> {
        self.writes.fetch_add(ops.len() as u64, Ordering::SeqCst);
        self.inner.batch_write(ops).await
    }
}

#[async_trait]
impl<S: Store> ItemCounter for CountingStore<S> {
    async fn add_within(
        &self,
        key: &ItemKey,
        delta: i64,
        max: u64,
        expires_at: jiff::Timestamp,
    ) -> StoreResult<Option<u64>> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.add_within(key, delta, max, expires_at).await
    }
}
