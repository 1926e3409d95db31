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
