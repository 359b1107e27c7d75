//! The storage contract: every case runs against the in-memory adapter and
//! against DynamoDB (moto), so the two cannot drift apart.

use std::sync::Arc;
use std::time::Duration;

use integration_tests::fresh_table;
use jiff::Timestamp;
use serde_json::json;
use shared::clock::ManualClock;
use shared::store::memory::MemoryStore;
use shared::store::{
    Condition, Cursor, Item, ItemKey, Query, SortKeyRange, Store, StoreError, WriteOp,
};

async fn memory_store(clock: Arc<ManualClock>) -> Box<dyn Store> {
    Box::new(MemoryStore::new(clock))
}

async fn dynamo_store(clock: Arc<ManualClock>) -> Box<dyn Store> {
    Box::new(fresh_table(clock).await)
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(Timestamp::now()))
}

/// Each case once, instantiated for both adapters.
macro_rules! contract {
    ($($case:ident),+ $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $case() {
                    let clock = super::clock();
                    let store = super::memory_store(clock.clone()).await;
                    super::$case(store.as_ref(), &clock).await;
                }
            )+
        }
        mod dynamodb {
            $(
                #[tokio::test]
                async fn $case() {
                    let clock = super::clock();
                    let store = super::dynamo_store(clock.clone()).await;
                    super::$case(store.as_ref(), &clock).await;
                }
            )+
        }
    };
}

contract!(
    put_then_get_returns_the_item_at_version_1,
    get_of_a_missing_key_is_none,
    an_unconditional_put_overwrites_and_bumps_the_version,
    put_if_absent_never_overwrites,
    a_conditional_write_that_loses_a_race_fails_with_a_typed_error,
    put_if_version_on_a_missing_item_fails,
    delete_removes_only_when_its_condition_holds,
    query_reads_one_partition_in_sort_key_order,
    query_pages_follow_the_cursor_without_gaps_or_repeats,
    descending_pages_follow_the_cursor_too,
    foreign_or_garbled_cursors_are_refused,
    expired_items_are_never_returned,
    pages_stay_full_when_expired_items_are_skipped,
    an_expired_item_counts_as_absent_for_conditions,
    batch_writes_more_than_one_chunk_and_deletes,
    in_a_batch_the_last_op_on_a_key_wins,
    a_batch_with_an_invalid_item_writes_nothing,
    oversized_items_and_bad_keys_are_refused,
    a_counter_adds_within_its_bound_and_gives_back,
    concurrent_counter_additions_never_pass_the_bound,
);

fn key(pk: &str, sk: &str) -> ItemKey {
    ItemKey::new(pk, sk)
}

fn item(pk: &str, sk: &str, body: serde_json::Value) -> Item {
    Item::new(key(pk, sk), body)
}

async fn all_pages(store: &dyn Store, query: Query) -> (Vec<String>, usize) {
    let mut sort_keys = Vec::new();
    let mut pages = 0;
    let mut cursor: Option<Cursor> = None;
    loop {
        let page = store.query(query.clone().after(cursor.take())).await.unwrap();
        pages += 1;
        assert!(page.items.len() <= query.limit as usize, "page over the limit");
        sort_keys.extend(page.items.iter().map(|s| s.item.key.sk.clone()));
        match page.next {
            Some(next) => cursor = Some(next),
            None => return (sort_keys, pages),
        }
        assert!(pages < 100, "pagination does not end");
    }
}

async fn put_then_get_returns_the_item_at_version_1(store: &dyn Store, _: &ManualClock) {
    let body = json!({"service": "payments-api", "replicas": 3, "images": ["a:1"], "ratio": 0.25, "ok": true});
    let version = store
        .put(item("ENV#stg", "SVC#payments-api", body.clone()), Condition::IfAbsent)
        .await
        .unwrap();
    assert_eq!(version, 1);
    let stored = store.get(&key("ENV#stg", "SVC#payments-api")).await.unwrap().expect("stored");
    assert_eq!(stored.version, 1);
    assert_eq!(stored.item.body, body);
    assert_eq!(stored.item.expires_at, None);
}

async fn get_of_a_missing_key_is_none(store: &dyn Store, _: &ManualClock) {
    assert!(store.get(&key("nothing", "here")).await.unwrap().is_none());
}

async fn an_unconditional_put_overwrites_and_bumps_the_version(
    store: &dyn Store,
    clock: &ManualClock,
) {
    let at = Timestamp::from_second(clock.now_second() + 600).unwrap();
    store
        .put(item("p", "s", json!({"v": "1.0.0"})).expiring_at(at), Condition::Always)
        .await
        .unwrap();
    let version =
        store.put(item("p", "s", json!({"v": "1.1.0"})), Condition::Always).await.unwrap();
    assert_eq!(version, 2);
    let stored = store.get(&key("p", "s")).await.unwrap().unwrap();
    assert_eq!(stored.item.body, json!({"v": "1.1.0"}));
    assert_eq!(stored.item.expires_at, None, "a put replaces the expiry too");
}

async fn put_if_absent_never_overwrites(store: &dyn Store, _: &ManualClock) {
    store.put(item("p", "s", json!("first")), Condition::IfAbsent).await.unwrap();
    let err = store.put(item("p", "s", json!("second")), Condition::IfAbsent).await.unwrap_err();
    assert!(matches!(err, StoreError::ConditionFailed), "{err:?}");
    let stored = store.get(&key("p", "s")).await.unwrap().unwrap();
    assert_eq!((stored.item.body, stored.version), (json!("first"), 1));
}

async fn a_conditional_write_that_loses_a_race_fails_with_a_typed_error(
    store: &dyn Store,
    _: &ManualClock,
) {
    store
        .put(item("USER#a", "PROFILE", json!({"role": "viewer"})), Condition::IfAbsent)
        .await
        .unwrap();
    // Two writers read version 1 and both try to write on top of it.
    let read = store.get(&key("USER#a", "PROFILE")).await.unwrap().unwrap();
    let (a, b) = tokio::join!(
        store.put(
            item("USER#a", "PROFILE", json!({"role": "admin"})),
            Condition::IfVersion(read.version)
        ),
        store.put(
            item("USER#a", "PROFILE", json!({"role": "disabled"})),
            Condition::IfVersion(read.version)
        ),
    );
    let (winner, loser) = match (a, b) {
        (Ok(v), Err(e)) => ((v, json!({"role": "admin"})), e),
        (Err(e), Ok(v)) => ((v, json!({"role": "disabled"})), e),
        other => panic!("exactly one writer must win: {other:?}"),
    };
    assert!(matches!(loser, StoreError::ConditionFailed), "{loser:?}");
    assert_eq!(winner.0, 2);
    let stored = store.get(&key("USER#a", "PROFILE")).await.unwrap().unwrap();
    assert_eq!((stored.item.body, stored.version), (winner.1, 2), "the loser changed nothing");
}

async fn put_if_version_on_a_missing_item_fails(store: &dyn Store, _: &ManualClock) {
    let err = store.put(item("p", "s", json!(1)), Condition::IfVersion(1)).await.unwrap_err();
    assert!(matches!(err, StoreError::ConditionFailed), "{err:?}");
    assert!(store.get(&key("p", "s")).await.unwrap().is_none());
}

async fn delete_removes_only_when_its_condition_holds(store: &dyn Store, _: &ManualClock) {
    store.put(item("p", "a", json!(1)), Condition::Always).await.unwrap();
    let err = store.delete(&key("p", "a"), Condition::IfVersion(7)).await.unwrap_err();
    assert!(matches!(err, StoreError::ConditionFailed), "{err:?}");
    assert!(store.get(&key("p", "a")).await.unwrap().is_some(), "a failed delete keeps the item");
    store.delete(&key("p", "a"), Condition::IfVersion(1)).await.unwrap();
    assert!(store.get(&key("p", "a")).await.unwrap().is_none());
    // Deleting what is not there is not an error.
    store.delete(&key("p", "a"), Condition::Always).await.unwrap();
}

async fn query_reads_one_partition_in_sort_key_order(store: &dyn Store, _: &ManualClock) {
    for sk in ["WL#dab#payments", "WL#dab#accounts", "POD#dab#x-1", "WL#corda#node", "STATUS"] {
        store.put(item("CLUSTER#a", sk, json!(sk)), Condition::Always).await.unwrap();
    }
    store.put(item("CLUSTER#b", "WL#dab#other", json!(1)), Condition::Always).await.unwrap();

    let (all, _) = all_pages(store, Query::partition("CLUSTER#a")).await;
    assert_eq!(
        all,
        ["POD#dab#x-1", "STATUS", "WL#corda#node", "WL#dab#accounts", "WL#dab#payments"]
    );
    let (prefix, _) = all_pages(
        store,
        Query::partition("CLUSTER#a").range(SortKeyRange::Prefix("WL#dab#".into())),
    )
    .await;
    assert_eq!(prefix, ["WL#dab#accounts", "WL#dab#payments"]);
    let between = Query::partition("CLUSTER#a")
        .range(SortKeyRange::Between("STATUS".into(), "WL#corda#zzz".into()));
    assert_eq!(all_pages(store, between).await.0, ["STATUS", "WL#corda#node"]);
    let (descending, _) = all_pages(
        store,
        Query::partition("CLUSTER#a").range(SortKeyRange::Prefix("WL#".into())).descending(),
    )
    .await;
    assert_eq!(descending, ["WL#dab#payments", "WL#dab#accounts", "WL#corda#node"]);
    assert!(all_pages(store, Query::partition("CLUSTER#none")).await.0.is_empty());
}

async fn query_pages_follow_the_cursor_without_gaps_or_repeats(store: &dyn Store, _: &ManualClock) {
    let ops = (0..25)
        .map(|i| WriteOp::Put(item("HIST#svc", &format!("T#{i:03}"), json!({"i": i}))))
        .collect();
    store.batch_write(ops).await.unwrap();
    let (keys, pages) = all_pages(store, Query::partition("HIST#svc").limit(10)).await;
    let expected: Vec<String> = (0..25).map(|i| format!("T#{i:03}")).collect();
    assert_eq!(keys, expected);
    assert!(pages >= 3, "25 items in pages of 10 take at least 3 pages, got {pages}");
}

async fn descending_pages_follow_the_cursor_too(store: &dyn Store, _: &ManualClock) {
    let ops =
        (0..12).map(|i| WriteOp::Put(item("HIST#svc", &format!("T#{i:03}"), json!(i)))).collect();
    store.batch_write(ops).await.unwrap();
    let (keys, pages) = all_pages(store, Query::partition("HIST#svc").descending().limit(5)).await;
    let expected: Vec<String> = (0..12).rev().map(|i| format!("T#{i:03}")).collect();
    assert_eq!(keys, expected);
    assert!(pages >= 3);
}

async fn foreign_or_garbled_cursors_are_refused(store: &dyn Store, _: &ManualClock) {
    store.put(item("A", "1", json!(1)), Condition::Always).await.unwrap();
    let foreign = Query::partition("A").after(Some(Cursor::after(&key("B", "1"))));
    assert!(matches!(store.query(foreign).await, Err(StoreError::InvalidCursor)));
    let garbled = Query::partition("A").after(Some(Cursor::from_client("not-a-cursor!")));
    assert!(matches!(store.query(garbled).await, Err(StoreError::InvalidCursor)));
}

async fn expired_items_are_never_returned(store: &dyn Store, clock: &ManualClock) {
    let now = clock.now_second();
    let soon = Timestamp::from_second(now + 60).unwrap();
    let later = Timestamp::from_second(now + 3600).unwrap();
    store
        .put(item("SNAP#a", "WL#1", json!("short")).expiring_at(soon), Condition::Always)
        .await
        .unwrap();
    store
        .put(item("SNAP#a", "WL#2", json!("long")).expiring_at(later), Condition::Always)
        .await
        .unwrap();
    store.put(item("SNAP#a", "WL#3", json!("forever")), Condition::Always).await.unwrap();

    let stored = store.get(&key("SNAP#a", "WL#1")).await.unwrap().unwrap();
    assert_eq!(stored.item.expires_at, Some(soon), "expiry round-trips at second precision");
    assert_eq!(all_pages(store, Query::partition("SNAP#a")).await.0, ["WL#1", "WL#2", "WL#3"]);

    // The backend has not deleted anything (moto never does): readers must filter.
    clock.advance(Duration::from_secs(61));
    assert!(store.get(&key("SNAP#a", "WL#1")).await.unwrap().is_none());
    assert_eq!(all_pages(store, Query::partition("SNAP#a")).await.0, ["WL#2", "WL#3"]);
    clock.advance(Duration::from_secs(3600));
    assert_eq!(all_pages(store, Query::partition("SNAP#a")).await.0, ["WL#3"]);
}

async fn pages_stay_full_when_expired_items_are_skipped(store: &dyn Store, clock: &ManualClock) {
    let soon = Timestamp::from_second(clock.now_second() + 10).unwrap();
    let ops = (0..30)
        .map(|i| {
            let it = item("SNAP#b", &format!("WL#{i:02}"), json!(i));
            WriteOp::Put(if i % 2 == 0 { it.expiring_at(soon) } else { it })
        })
        .collect();
    store.batch_write(ops).await.unwrap();
    clock.advance(Duration::from_secs(11));
    let first = store.query(Query::partition("SNAP#b").limit(5)).await.unwrap();
    let first_keys: Vec<&str> = first.items.iter().map(|s| s.item.key.sk.as_str()).collect();
    assert_eq!(
        first_keys,
        ["WL#01", "WL#03", "WL#05", "WL#07", "WL#09"],
        "a full page of live items"
    );
    let (keys, _) = all_pages(store, Query::partition("SNAP#b").limit(5)).await;
    let expected: Vec<String> =
        (0..30).filter(|i| i % 2 == 1).map(|i| format!("WL#{i:02}")).collect();
    assert_eq!(keys, expected);
}

async fn an_expired_item_counts_as_absent_for_conditions(store: &dyn Store, clock: &ManualClock) {
    let soon = Timestamp::from_second(clock.now_second() + 5).unwrap();
    store
        .put(item("OTP#a", "CODE", json!("old")).expiring_at(soon), Condition::IfAbsent)
        .await
        .unwrap();
    let err =
        store.put(item("OTP#a", "CODE", json!("new")), Condition::IfAbsent).await.unwrap_err();
    assert!(matches!(err, StoreError::ConditionFailed));
    clock.advance(Duration::from_secs(6));
    let err = store
        .put(item("OTP#a", "CODE", json!("stale")), Condition::IfVersion(1))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::ConditionFailed), "an expired version cannot be updated");
    store.put(item("OTP#a", "CODE", json!("new")), Condition::IfAbsent).await.unwrap();
    assert_eq!(store.get(&key("OTP#a", "CODE")).await.unwrap().unwrap().item.body, json!("new"));
}

async fn batch_writes_more_than_one_chunk_and_deletes(store: &dyn Store, _: &ManualClock) {
    // 60 puts: more than two of DynamoDB's 25-item chunks.
    let ops = (0..60)
        .map(|i| WriteOp::Put(item("CLUSTER#c", &format!("POD#{i:02}"), json!({"i": i}))))
        .collect();
    store.batch_write(ops).await.unwrap();
    let (keys, _) = all_pages(store, Query::partition("CLUSTER#c").limit(1000)).await;
    assert_eq!(keys.len(), 60);
    let stored = store.get(&key("CLUSTER#c", "POD#42")).await.unwrap().unwrap();
    assert_eq!((stored.item.body, stored.version), (json!({"i": 42}), 1));

    let mut ops: Vec<WriteOp> =
        (0..30).map(|i| WriteOp::Delete(key("CLUSTER#c", &format!("POD#{i:02}")))).collect();
    ops.push(WriteOp::Put(item("CLUSTER#c", "POD#99", json!("new"))));
    store.batch_write(ops).await.unwrap();
    let (keys, _) = all_pages(store, Query::partition("CLUSTER#c").limit(1000)).await;
    assert_eq!(keys.len(), 31);
    assert_eq!(keys.first().map(String::as_str), Some("POD#30"));
    assert_eq!(keys.last().map(String::as_str), Some("POD#99"));
}

async fn in_a_batch_the_last_op_on_a_key_wins(store: &dyn Store, _: &ManualClock) {
    store
        .batch_write(vec![
            WriteOp::Put(item("p", "a", json!(1))),
            WriteOp::Put(item("p", "b", json!(1))),
            WriteOp::Put(item("p", "a", json!(2))),
            WriteOp::Delete(key("p", "b")),
        ])
        .await
        .unwrap();
    assert_eq!(store.get(&key("p", "a")).await.unwrap().unwrap().item.body, json!(2));
    assert!(store.get(&key("p", "b")).await.unwrap().is_none());
}

async fn a_batch_with_an_invalid_item_writes_nothing(store: &dyn Store, _: &ManualClock) {
    let mut ops: Vec<WriteOp> =
        (0..40).map(|i| WriteOp::Put(item("p", &format!("{i:02}"), json!(i)))).collect();
    ops.push(WriteOp::Put(item("p", "huge", json!("x".repeat(500_000)))));
    let err = store.batch_write(ops).await.unwrap_err();
    assert!(matches!(err, StoreError::ItemTooLarge { .. }), "{err:?}");
    assert!(all_pages(store, Query::partition("p")).await.0.is_empty());
}

async fn oversized_items_and_bad_keys_are_refused(store: &dyn Store, _: &ManualClock) {
    let err = store
        .put(item("p", "huge", json!("x".repeat(500_000))), Condition::Always)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::ItemTooLarge { .. }), "{err:?}");
    let err = store.put(item("p", "", json!(1)), Condition::Always).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidKey(_)), "{err:?}");
    let err = store.get(&key("", "s")).await.unwrap_err();
    assert!(matches!(err, StoreError::InvalidKey(_)), "{err:?}");
    assert!(store.get(&key("p", "huge")).await.unwrap().is_none());
}

async fn a_counter_adds_within_its_bound_and_gives_back(store: &dyn Store, clock: &ManualClock) {
    let counter = key("LIMIT", "window-1");
    let expires = shared::clock::Clock::now(clock) + jiff::SignedDuration::from_secs(60);
    assert_eq!(store.add_within(&counter, 1, 2, expires).await.unwrap(), Some(1), "a new counter");
    assert_eq!(store.add_within(&counter, 1, 2, expires).await.unwrap(), Some(2));
    assert_eq!(store.add_within(&counter, 1, 2, expires).await.unwrap(), None, "the bound holds");
    assert_eq!(store.add_within(&counter, -1, 2, expires).await.unwrap(), Some(1), "given back");
    assert_eq!(store.add_within(&counter, 1, 2, expires).await.unwrap(), Some(2), "taken again");
    let other = key("LIMIT", "window-2");
    assert_eq!(store.add_within(&other, -1, 2, expires).await.unwrap(), None, "never below 0");
    assert_eq!(store.add_within(&other, 3, 2, expires).await.unwrap(), None, "a step over max");
    assert_eq!(store.add_within(&other, 1, 2, expires).await.unwrap(), Some(1), "untouched");
    assert!(store.add_within(&key("", "x"), 1, 2, expires).await.is_err(), "bad keys refused");
}

async fn concurrent_counter_additions_never_pass_the_bound(store: &dyn Store, clock: &ManualClock) {
    let counter = key("LIMIT", "raced");
    let expires = shared::clock::Clock::now(clock) + jiff::SignedDuration::from_secs(60);
    let racers = (0..40).map(|_| store.add_within(&counter, 1, 25, expires));
    let results = futures::future::join_all(racers).await;
    let mut admitted: Vec<u64> = results.into_iter().filter_map(|r| r.unwrap()).collect();
    admitted.sort_unstable();
    assert_eq!(admitted, (1..=25).collect::<Vec<_>>(), "each count handed out once, 25 at most");
}

trait NowSecond {
    fn now_second(&self) -> i64;
}

impl NowSecond for ManualClock {
    fn now_second(&self) -> i64 {
        shared::clock::Clock::now(self).as_second()
    }
}
