//! larder-cache is for any Redis-protocol server: the core guarantees,
//! run against a real redis-server (installed by scripts/test).

use larder_cache::Cache;
use larder_testkit::RedisServer;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

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
    let mut seen = None;
    for _ in 0..2000 {
        seen = b.get_or_load::<u64, _, _, _>("k", load()).await.unwrap();
        if seen == Some(2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(seen, Some(2), "b's L1 heard the invalidation through redis-server");

    // The stale-set race, step by step, closed on Redis too.
    let (loaded_tx, loaded_rx) = tokio::sync::oneshot::channel::<()>();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let reader = {
        let (a, row) = (a.clone(), row.clone());
        tokio::spawn(async move {
            a.get_or_load::<u64, _, _, String>("race", || async move {
                let v = row.load(Ordering::SeqCst);
                loaded_tx.send(()).unwrap();
                go_rx.await.unwrap();
                Ok(Some(v))
            })
            .await
            .unwrap()
        })
    };
    loaded_rx.await.unwrap();
    row.store(3, Ordering::SeqCst);
    a.invalidate("race").await.unwrap();
    go_tx.send(()).unwrap();
    assert_eq!(reader.await.unwrap(), Some(2));
    assert_eq!(a.get_or_load::<u64, _, _, _>("race", load()).await.unwrap(), Some(3));
    assert_eq!(a.stats().stale_sets_prevented.load(Ordering::SeqCst), 1);
}
