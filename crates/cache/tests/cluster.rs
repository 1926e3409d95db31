//! larder-cache over a real Redis Cluster (three redis-server primaries,
//! slots assigned by redis-cli): the keys spread over the nodes, and
//! cache-aside, the stale-set guard, invalidation reaching another
//! process's L1, tags, prefixes, namespace busting and the cross-process
//! stampede guard all hold, since each key's value, generation and lease
//! share one slot.

mod common;

use common::read_until;
use larder_cache::Cache;
use larder_testkit::RedisCluster;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

async fn cache(cluster: &RedisCluster) -> Cache {
    let urls = cluster.urls();
    let nodes: Vec<&str> = urls.iter().map(String::as_str).collect();
    Cache::cluster_builder(&nodes).unwrap().namespace("cl").build().await.unwrap()
}

/// A table of rows, each a counter, that counts its queries.
#[derive(Clone, Default)]
struct Db {
    queries: Arc<AtomicU64>,
    rows: Arc<parking_lot::Mutex<std::collections::HashMap<String, u64>>>,
}

impl Db {
    async fn load(&self, key: &str) -> Result<Option<u64>, String> {
        self.queries.fetch_add(1, Ordering::SeqCst);
        tokio::task::yield_now().await;
        Ok(Some(*self.rows.lock().get(key).unwrap_or(&0)))
    }
    fn set(&self, key: &str, v: u64) {
        self.rows.lock().insert(key.to_string(), v);
    }
    fn queries(&self) -> u64 {
        self.queries.load(Ordering::SeqCst)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_works_over_a_redis_cluster() {
    let Some(cluster) = RedisCluster::start(3) else { return };
    let (a, b) = (cache(&cluster).await, cache(&cluster).await);
    let db = Db::default();
    let keys: Vec<String> = (0..60).map(|i| format!("k{i}")).collect();
    for k in &keys {
        db.set(k, 1);
        let v: Option<u64> = a.get_or_load(k, || db.load(k)).await.unwrap();
        assert_eq!(v, Some(1));
    }
    assert_eq!(db.queries(), 60);
    // The values live on every primary, not one.
    for node in &cluster.nodes {
        let mut con = redis::Client::open(format!("redis://{}/", node.addr)).unwrap().get_connection().unwrap();
        let size: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
        assert!(size > 0, "node {} holds nothing", node.addr);
    }
    // Another process is served from L2, whichever node holds the key.
    for k in &keys {
        let v: Option<u64> = b.get_or_load(k, || db.load(k)).await.unwrap();
        assert_eq!(v, Some(1));
    }
    assert_eq!(db.queries(), 60, "b loaded nothing");

    // Delete-on-write reaches b's L1 through the cluster's pub/sub.
    db.set("k7", 2);
    a.invalidate("k7").await.unwrap();
    let got = read_until(Some(2), || async { b.get_or_load("k7", || db.load("k7")).await.unwrap() }).await;
    assert_eq!(got, Some(2));

    // The stale-set guard: a load that began before an invalidation does
    // not store its old value, on the key's own node.
    let row = Arc::new(AtomicU64::new(3));
    let (first, after) = common::stale_set_race(&a, "race", &row, 4).await;
    assert_eq!((first, after), (Some(3), Some(4)));

    // Tags and prefixes span slots and nodes.
    for k in ["t1", "t2", "t3"] {
        db.set(k, 1);
        let _: Option<u64> = a.get_or_load_tagged(k, &["group"], || db.load(k)).await.unwrap();
    }
    let before = db.queries();
    a.invalidate_tag("group").await.unwrap();
    for k in ["t1", "t2", "t3"] {
        let _: Option<u64> = a.get_or_load(k, || db.load(k)).await.unwrap();
    }
    assert_eq!(db.queries(), before + 3, "every tagged key reloaded");
    let before = db.queries();
    a.invalidate_prefix("k1").await.unwrap(); // k1, k10..k19
    for k in &keys {
        let _: Option<u64> = a.get_or_load(k, || db.load(k)).await.unwrap();
    }
    assert_eq!(db.queries(), before + 11, "the prefix's keys reloaded, the rest served");

    // Busting the namespace abandons every key, in both processes.
    a.bust_namespace().await.unwrap();
    let before = db.queries();
    let _: Option<u64> = a.get_or_load("k30", || db.load("k30")).await.unwrap();
    assert_eq!(db.queries(), before + 1);
    let fresh = read_until(Some(1), || async {
        let n = db.queries();
        let _: Option<u64> = b.get_or_load("k31", || db.load("k31")).await.unwrap();
        Some(db.queries() - n)
    })
    .await;
    assert_eq!(fresh, Some(1), "b's L1 dropped k31 after the bust");

    // A cold key hit by both processes at once is loaded once: the lease
    // lives on the key's node.
    db.set("hot", 9);
    let before = db.queries();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let (c, db) = (if i % 2 == 0 { a.clone() } else { b.clone() }, db.clone());
        tasks.push(tokio::spawn(async move {
            let l = c.get_or_load_with_source("hot", || db.load("hot")).await.unwrap();
            (i % 2, l.value, l.source)
        }));
    }
    let mut sources = Vec::new();
    for t in tasks {
        let (who, v, source) = t.await.unwrap();
        assert_eq!(v, Some(9u64));
        sources.push((who, source));
    }
    assert_eq!(db.queries(), before + 1, "one load for 40 concurrent misses: {sources:?}");
}

#[tokio::test]
async fn tracking_coherence_is_refused_on_a_cluster() {
    let Some(cluster) = RedisCluster::start(3) else { return };
    let urls = cluster.urls();
    let nodes: Vec<&str> = urls.iter().map(String::as_str).collect();
    let built = Cache::cluster_builder(&nodes).unwrap().l1_coherence(larder_cache::Coherence::Tracking).build().await;
    assert!(matches!(built, Err(larder_cache::Error::Config(_))));
}

/// Write-behind over the cluster: every acknowledged job reaches the
/// flusher (the idempotent database side is tests/write_behind.rs's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_behind_flushes_every_job_over_a_cluster() {
    let Some(cluster) = RedisCluster::start(3) else { return };
    let urls = cluster.urls();
    let nodes: Vec<&str> = urls.iter().map(String::as_str).collect();
    let seen = Arc::new(parking_lot::Mutex::new(Vec::<String>::new()));
    let sink = seen.clone();
    let wb = larder_cache::WriteBehind::start_on_cluster(&nodes, "cl:views", Default::default(), move |batch| {
        let sink = sink.clone();
        async move {
            sink.lock().extend(batch.into_iter().map(|j| j.payload));
            Ok(())
        }
    })
    .await
    .unwrap();
    for i in 0..100 {
        wb.enqueue(&format!("page{i}")).await.unwrap();
    }
    for _ in 0..2000 {
        if seen.lock().len() >= 100 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let mut got = seen.lock().clone();
    got.sort();
    got.dedup();
    assert_eq!(got.len(), 100, "every queued job flushed");
    wb.stop().await;
}
