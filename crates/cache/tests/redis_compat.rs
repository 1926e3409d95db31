//! larder-cache is for any Redis-protocol server: the core guarantees,
//! run against a real redis-server (installed by scripts/test).

mod common;

use larder_cache::Cache;
use larder_testkit::RedisServer;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_aside_invalidation_and_generations_work_on_redis() {
    let Some(redis_server) = RedisServer::start() else { return };
    let client = redis::Client::open(format!("redis://{}/", redis_server.addr)).unwrap();
    let a = Cache::builder(client.clone()).namespace("compat").build().await.unwrap();
    let b = Cache::builder(client.clone()).namespace("compat").build().await.unwrap();
    let row = Arc::new(AtomicU64::new(1));
    let queries = Arc::new(AtomicU64::new(0));
    let load = || {
        let (row, queries) = (row.clone(), queries.clone());
        move || async move {
            queries.fetch_add(1, Ordering::SeqCst);
            Ok::<_, String>(Some(row.load(Ordering::SeqCst)))
        }
    };
    assert_eq!(a.get_or_load::<u64, _, _, _>("k", load()).await.unwrap(), Some(1));
    assert_eq!(b.get_or_load::<u64, _, _, _>("k", load()).await.unwrap(), Some(1));
    assert_eq!(queries.load(Ordering::SeqCst), 1, "b was served from L2");
    row.store(2, Ordering::SeqCst);
    a.invalidate("k").await.unwrap();
    let seen = common::read_until(Some(2), || {
        let (b, load) = (b.clone(), load());
        async move { b.get_or_load::<u64, _, _, _>("k", load).await.unwrap() }
    })
    .await;
    assert_eq!(seen, Some(2), "b's L1 heard the invalidation through redis-server");

    // The stale-set race, step by step, closed on Redis too.
    let (racing, after) = common::stale_set_race(&a, "race", &row, 3).await;
    assert_eq!((racing, after), (Some(2), Some(3)));
    assert_eq!(a.stats().stale_sets_prevented.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracking_coherence_works_on_redis() {
    let Some(redis_server) = RedisServer::start() else { return };
    let client = redis::Client::open(format!("redis://{}/", redis_server.addr)).unwrap();
    common::tracking_coherence_catches_writes_behind_the_cache(client).await;
}
