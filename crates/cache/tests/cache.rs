//! larder-cache against a real server (Larder, in-process on port 0):
//! cache-aside, single flight, negative caching, invalidation across
//! processes' L1s, sequence gaps, tags, prefixes, namespaces and
//! write-through. The database side is a counter-backed loader here;
//! tests/stale_set.rs uses PostgreSQL.

mod common;

use common::eventually;
use larder_cache::Cache;
use larder_testkit::{spawn_server, TestServer};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn client(s: &TestServer) -> redis::Client {
    redis::Client::open(format!("redis://{}/", s.addr)).unwrap()
}

async fn cache(s: &TestServer) -> Cache {
    Cache::builder(client(s)).namespace("t").build().await.unwrap()
}

/// A "database" that counts its queries.
#[derive(Clone, Default)]
struct Db {
    queries: Arc<AtomicU64>,
    value: Arc<AtomicU64>,
}

impl Db {
    async fn load(&self) -> Result<Option<u64>, String> {
        self.queries.fetch_add(1, Ordering::SeqCst);
        tokio::task::yield_now().await;
        Ok(Some(self.value.load(Ordering::SeqCst)))
    }
    fn queries(&self) -> u64 {
        self.queries.load(Ordering::SeqCst)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_aside_loads_once_then_serves_from_cache() {
    let s = spawn_server();
    let c = cache(&s).await;
    let db = Db::default();
    db.value.store(7, Ordering::SeqCst);
    for _ in 0..3 {
        let v: Option<u64> = c.get_or_load("user:1", || db.load()).await.unwrap();
        assert_eq!(v, Some(7));
    }
    assert_eq!(db.queries(), 1);
    assert_eq!(c.stats().l1_hits.load(Ordering::SeqCst), 2);
    // A second process (no L1 of its own yet) is served from L2.
    let other = cache(&s).await;
    let v: Option<u64> = other.get_or_load("user:1", || db.load()).await.unwrap();
    assert_eq!((v, db.queries()), (Some(7), 1));
    assert_eq!(other.stats().l2_hits.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_load_once() {
    let s = spawn_server();
    let c = cache(&s).await;
    let db = Db::default();
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (c, db) = (c.clone(), db.clone());
            tokio::spawn(async move {
                c.get_or_load::<u64, _, _, _>("hot", || async move {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    db.load().await
                })
                .await
                .unwrap()
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), Some(0));
    }
    assert_eq!(db.queries(), 1, "64 concurrent misses, one database query");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_loader_hands_the_flight_to_a_waiter() {
    let s = spawn_server();
    let c = cache(&s).await;
    let leader = {
        let c = c.clone();
        tokio::spawn(async move {
            c.get_or_load::<u64, _, _, String>("k", || async {
                tokio::time::sleep(Duration::from_millis(30)).await;
                panic!("loader bug")
            })
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(5)).await;
    let v = c.get_or_load::<u64, _, _, String>("k", || async { Ok(Some(5)) }).await.unwrap();
    assert_eq!(v, Some(5));
    assert!(leader.await.is_err(), "the leader's task panicked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_found_is_cached_for_the_negative_ttl() {
    let s = spawn_server();
    let c = Cache::builder(client(&s)).namespace("t").negative_ttl(Duration::from_millis(200)).build().await.unwrap();
    let queries = Arc::new(AtomicU64::new(0));
    let load = || {
        let q = queries.clone();
        async move {
            q.fetch_add(1, Ordering::SeqCst);
            Ok::<Option<String>, String>(None)
        }
    };
    assert_eq!(c.get_or_load("missing", load).await.unwrap(), None);
    assert_eq!(c.get_or_load("missing", load).await.unwrap(), None);
    assert_eq!(queries.load(Ordering::SeqCst), 1);
    let mut con = client(&s).get_connection().unwrap();
    let ttl: i64 = redis::cmd("PTTL").arg("t:v0:{missing}").query(&mut con).unwrap();
    assert!((1..=220).contains(&ttl), "negative TTL applies (with jitter): {ttl}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttls_are_jittered() {
    let s = spawn_server();
    let c = Cache::builder(client(&s))
        .namespace("t")
        .default_ttl(Duration::from_secs(100))
        .ttl_jitter(0.2)
        .build()
        .await
        .unwrap();
    let mut con = client(&s).get_connection().unwrap();
    let mut ttls = Vec::new();
    for i in 0..20 {
        let _: Option<u64> = c.get_or_load(&format!("k{i}"), || async { Ok::<_, String>(Some(1)) }).await.unwrap();
        let ttl: i64 = redis::cmd("PTTL").arg(format!("t:v0:{{k{i}}}")).query(&mut con).unwrap();
        assert!((80_000..=120_000).contains(&ttl), "{ttl}");
        ttls.push(ttl / 1000);
    }
    ttls.sort();
    ttls.dedup();
    assert!(ttls.len() > 5, "TTLs spread out: {ttls:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidate_reaches_every_processes_l1() {
    let s = spawn_server();
    let (a, b) = (cache(&s).await, cache(&s).await);
    let db = Db::default();
    db.value.store(1, Ordering::SeqCst);
    for c in [&a, &b] {
        assert_eq!(c.get_or_load::<u64, _, _, _>("k", || db.load()).await.unwrap(), Some(1));
    }
    db.value.store(2, Ordering::SeqCst);
    a.invalidate("k").await.unwrap();
    // a dropped it at once; b hears about it on the channel.
    assert_eq!(a.get_or_load::<u64, _, _, _>("k", || db.load()).await.unwrap(), Some(2));
    let seen = common::read_until(Some(2), || {
        let (b, db) = (b.clone(), db.clone());
        async move { b.get_or_load::<u64, _, _, _>("k", || db.load()).await.unwrap() }
    })
    .await;
    assert_eq!(seen, Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_in_the_invalidation_sequence_flushes_l1() {
    let s = spawn_server();
    let c = cache(&s).await;
    let db = Db::default();
    assert_eq!(c.get_or_load::<u64, _, _, _>("x", || db.load()).await.unwrap(), Some(0));
    let mut con = client(&s).get_connection().unwrap();
    // Two numbered messages with a hole between them: one was lost.
    let _: i64 = redis::cmd("PUBLISH").arg("t:invalidate").arg("1:unrelated").query(&mut con).unwrap();
    let _: i64 = redis::cmd("PUBLISH").arg("t:invalidate").arg("5:unrelated").query(&mut con).unwrap();
    eventually("an L1 flush", || c.stats().l1_flushes.load(Ordering::SeqCst) >= 1).await;
    let before = c.stats().l1_hits.load(Ordering::SeqCst);
    assert_eq!(c.get_or_load::<u64, _, _, _>("x", || db.load()).await.unwrap(), Some(0));
    assert_eq!(c.stats().l1_hits.load(Ordering::SeqCst), before, "x came from L2 after the flush");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_prefixes_and_namespaces_invalidate_in_bulk() {
    let s = spawn_server();
    let c = cache(&s).await;
    let db = Db::default();
    for k in ["user:1", "user:2", "post:1"] {
        let _: Option<u64> =
            c.get_or_load_tagged(k, &["all", k.split(':').next().unwrap()], || db.load()).await.unwrap();
    }
    assert_eq!(db.queries(), 3);
    let get = |k: &'static str| {
        let (c, db) = (c.clone(), db.clone());
        async move { c.get_or_load::<u64, _, _, _>(k, || db.load()).await.unwrap() }
    };
    c.invalidate_tag("user").await.unwrap();
    get("user:1").await;
    get("user:2").await;
    get("post:1").await;
    assert_eq!(db.queries(), 5, "the user tag dropped two keys");
    c.invalidate_prefix("post:").await.unwrap();
    get("post:1").await;
    get("user:1").await;
    assert_eq!(db.queries(), 6, "the prefix dropped post:1 only");
    c.bust_namespace().await.unwrap();
    get("user:1").await;
    get("user:2").await;
    get("post:1").await;
    assert_eq!(db.queries(), 9, "a namespace bump drops everything");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_through_stores_the_new_value() {
    let s = spawn_server();
    let c = cache(&s).await;
    let db = Db::default();
    assert_eq!(c.get_or_load::<u64, _, _, _>("k", || db.load()).await.unwrap(), Some(0));
    let db2 = db.clone();
    c.write_through("k", &42u64, || async move {
        db2.value.store(42, Ordering::SeqCst);
        Ok::<(), String>(())
    })
    .await
    .unwrap();
    let other = cache(&s).await;
    assert_eq!(other.get_or_load::<u64, _, _, _>("k", || db.load()).await.unwrap(), Some(42));
    assert_eq!(db.queries(), 1, "the written value was served from the cache");
}

/// The stale-set race, step by step: a reader loads the old row, a writer
/// updates the row and invalidates, then the reader stores what it read.
/// With generations the old value is not stored; without, it is, and the
/// next reader gets a value older than a completed write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stale_set_race_is_closed_by_generations() {
    for protect in [true, false] {
        let s = spawn_server();
        let c = Cache::builder(client(&s))
            .namespace("t")
            .l1_capacity(0)
            .stale_set_protection(protect)
            .build()
            .await
            .unwrap();
        let row = Arc::new(AtomicU64::new(1));
        let (racing, after) = common::stale_set_race(&c, "row", &row, 2).await;
        assert_eq!(racing, Some(1), "the racing read itself may see the old row");
        if protect {
            assert_eq!(after, Some(2), "a read after the write sees the write");
            assert_eq!(c.stats().stale_sets_prevented.load(Ordering::SeqCst), 1);
        } else {
            assert_eq!(after, Some(1), "without generations the stale value was stored");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracking_coherence_works_on_larder() {
    let s = spawn_server();
    common::tracking_coherence_catches_writes_behind_the_cache(client(&s)).await;
}
