//! Helpers shared by the cache test binaries.
#![allow(dead_code)]

use larder_cache::Cache;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Polls `cond` (asynchronous effects: invalidations crossing processes,
/// background refreshes).
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..5000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Reads `key` through `get` until it returns `want` (or gives up and
/// returns the last value).
pub async fn read_until<F, Fut>(want: Option<u64>, mut get: F) -> Option<u64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<u64>>,
{
    let mut got = None;
    for _ in 0..3000 {
        got = get().await;
        if got == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    got
}

/// The stale-set race, step by step, on `key`: a reader loads the row
/// (`row` holds its value), a writer sets it to `new` and invalidates,
/// then the reader finishes. Returns what the racing reader got and what
/// a read afterwards gets.
pub async fn stale_set_race(c: &Cache, key: &str, row: &Arc<AtomicU64>, new: u64) -> (Option<u64>, Option<u64>) {
    let (loaded_tx, loaded_rx) = tokio::sync::oneshot::channel::<()>();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let reader = {
        let (c, row, key) = (c.clone(), row.clone(), key.to_string());
        tokio::spawn(async move {
            c.get_or_load::<u64, _, _, String>(&key, || async move {
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
    row.store(new, Ordering::SeqCst);
    c.invalidate(key).await.unwrap();
    go_tx.send(()).unwrap();
    let racing = reader.await.unwrap();
    let after = c.get_or_load(key, || async { Ok::<_, String>(Some(row.load(Ordering::SeqCst))) }).await.unwrap();
    (racing, after)
}

/// CLIENT TRACKING coherence against the server behind `client`: a write
/// that bypasses the cache (a plain SET or DEL of the value key, or a
/// FLUSHALL) still drops the key from L1.
pub async fn tracking_coherence_catches_writes_behind_the_cache(client: redis::Client) {
    use larder_cache::{Coherence, Source};
    let cache =
        Cache::builder(client.clone()).namespace("trk").l1_coherence(Coherence::Tracking).build().await.unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let load = |v: u64| move || async move { Ok::<_, String>(Some(v)) };
    let got = cache.get_or_load_with_source::<u64, _, _, _>("k", load(1)).await.unwrap();
    assert_eq!((got.value, got.source), (Some(1), Source::Loaded));
    // Its own store may echo back as an invalidation; wait for a steady L1.
    let mut source = Source::Loaded;
    for _ in 0..2000 {
        source = cache.get_or_load_with_source::<u64, _, _, _>("k", load(1)).await.unwrap().source;
        if source == Source::L1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(source, Source::L1);
    // Someone deletes the value key directly: L1 lets go of it.
    let _: () = redis::cmd("DEL").arg("trk:v0:{k}").query_async(&mut raw).await.unwrap();
    let mut after = None;
    for _ in 0..2000 {
        let l = cache.get_or_load_with_source::<u64, _, _, _>("k", load(2)).await.unwrap();
        if l.source != Source::L1 {
            after = Some(l);
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let after = after.expect("the tracked DEL never reached L1");
    assert_eq!((after.value, after.source), (Some(2), Source::Loaded), "reloaded after the DEL");
    // A FLUSHALL: a null invalidation, the whole L1 goes.
    for _ in 0..2000 {
        if cache.get_or_load_with_source::<u64, _, _, _>("k", load(3)).await.unwrap().source == Source::L1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let flushes = cache.stats().l1_flushes.load(Ordering::SeqCst);
    let _: () = redis::cmd("FLUSHALL").query_async(&mut raw).await.unwrap();
    eventually("FLUSHALL to flush L1", || cache.stats().l1_flushes.load(Ordering::SeqCst) > flushes).await;
}
