//! Soft expiry features against a real server: fail-safe, read-through
//! with refresh-ahead and stale-while-revalidate, and XFetch. TTLs here
//! are short real durations, because what is tested is what happens when
//! they pass; every wait has a wide margin.

mod common;

use common::{eventually, read_until};
use larder_cache::Cache;
use larder_testkit::{spawn_server, TestServer};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn client(s: &TestServer) -> redis::Client {
    redis::Client::open(format!("redis://{}/", s.addr)).unwrap()
}

/// A cache whose values go stale after 50 ms and stay servable (fail-safe)
/// for 30 s more.
async fn short_lived(s: &TestServer, ns: &str) -> Cache {
    Cache::builder(client(s))
        .namespace(ns)
        .default_ttl(Duration::from_millis(50))
        .ttl_jitter(0.0)
        .fail_safe(Duration::from_secs(30))
        .build()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_safe_serves_the_last_value_while_the_database_fails() {
    let s = spawn_server();
    for fail_safe in [true, false] {
        let mut b = Cache::builder(client(&s))
            .namespace(format!("fs{fail_safe}"))
            .default_ttl(Duration::from_millis(50))
            .ttl_jitter(0.0);
        if fail_safe {
            b = b.fail_safe(Duration::from_secs(30));
        }
        let c = b.build().await.unwrap();
        let v: Option<u32> = c.get_or_load("k", || async { Ok::<_, String>(Some(1)) }).await.unwrap();
        assert_eq!(v, Some(1));
        tokio::time::sleep(Duration::from_millis(120)).await;
        let r = c.get_or_load::<u32, _, _, _>("k", || async { Err::<Option<u32>, _>("database down") }).await;
        if fail_safe {
            assert_eq!(r.unwrap(), Some(1), "the last good value, past its TTL");
            assert_eq!(c.stats().fail_safe_served.load(Ordering::SeqCst), 1);
            // Once the database is back, the value is reloaded.
            let v: Option<u32> = c.get_or_load("k", || async { Ok::<_, String>(Some(2)) }).await.unwrap();
            assert_eq!(v, Some(2));
        } else {
            assert!(r.is_err(), "without fail-safe the error surfaces");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_ahead_reloads_before_the_ttl_runs_out() {
    let s = spawn_server();
    let c = Cache::builder(client(&s))
        .namespace("ra")
        .default_ttl(Duration::from_millis(400))
        .ttl_jitter(0.0)
        .build()
        .await
        .unwrap();
    let row = Arc::new(AtomicU64::new(1));
    let loads = Arc::new(AtomicU64::new(0));
    let rt = {
        let (row, loads) = (row.clone(), loads.clone());
        c.read_through(move |_key| {
            let (row, loads) = (row.clone(), loads.clone());
            async move {
                loads.fetch_add(1, Ordering::SeqCst);
                Ok(Some(row.load(Ordering::SeqCst)))
            }
        })
        .refresh_ahead(0.5)
    };
    assert_eq!(rt.get("k").await.unwrap(), Some(1));
    row.store(2, Ordering::SeqCst);
    assert_eq!(rt.get("k").await.unwrap(), Some(1), "young value: served, no refresh");
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_millis(250)).await;
    // Past half its TTL: served at once, and reloaded in the background.
    assert_eq!(rt.get("k").await.unwrap(), Some(1));
    eventually("the background refresh", || loads.load(Ordering::SeqCst) == 2).await;
    let got = read_until(Some(2), || async { rt.get("k").await.unwrap() }).await;
    assert_eq!(got, Some(2), "the refreshed value replaced the old one");
    assert_eq!(c.stats().refreshes.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_while_revalidate_answers_at_once_and_reloads() {
    let s = spawn_server();
    let c = short_lived(&s, "swr").await;
    let row = Arc::new(AtomicU64::new(1));
    let slow = Arc::new(AtomicBool::new(false));
    let rt = {
        let (row, slow) = (row.clone(), slow.clone());
        c.read_through(move |_key| {
            let (row, slow) = (row.clone(), slow.clone());
            async move {
                if slow.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                Ok(Some(row.load(Ordering::SeqCst)))
            }
        })
        .stale_while_revalidate(true)
    };
    assert_eq!(rt.get("k").await.unwrap(), Some(1));
    row.store(2, Ordering::SeqCst);
    slow.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(120)).await;
    let started = std::time::Instant::now();
    assert_eq!(rt.get("k").await.unwrap(), Some(1), "the stale value, at once");
    assert!(started.elapsed() < Duration::from_millis(300), "did not wait for the slow reload");
    assert_eq!(c.stats().stale_served.load(Ordering::SeqCst), 1);
    let got = read_until(Some(2), || async { rt.get("k").await.unwrap() }).await;
    assert_eq!(got, Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xfetch_reloads_early_when_asked_to() {
    let s = spawn_server();
    for (beta, expected_loads) in [(0.0, 1), (1e9, 2)] {
        let c = Cache::builder(client(&s))
            .namespace(format!("xf{beta}"))
            .default_ttl(Duration::from_secs(60))
            .xfetch(beta)
            .build()
            .await
            .unwrap();
        let loads = Arc::new(AtomicU64::new(0));
        for _ in 0..2 {
            let loads = loads.clone();
            let _: Option<u32> = c
                .get_or_load("k", || async move {
                    loads.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, String>(Some(1))
                })
                .await
                .unwrap();
        }
        // A huge beta makes early expiration certain; zero turns it off.
        assert_eq!(loads.load(Ordering::SeqCst), expected_loads, "beta {beta}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soft_and_hard_loader_timeouts() {
    let s = spawn_server();
    let c = short_lived(&s, "to").await;
    let row = Arc::new(AtomicU64::new(1));
    let delay_ms = Arc::new(AtomicU64::new(0));
    let rt = {
        let (row, delay_ms) = (row.clone(), delay_ms.clone());
        c.read_through(move |_key| {
            let (row, delay_ms) = (row.clone(), delay_ms.clone());
            async move {
                tokio::time::sleep(Duration::from_millis(delay_ms.load(Ordering::SeqCst))).await;
                Ok(Some(row.load(Ordering::SeqCst)))
            }
        })
        .timeouts(Some(Duration::from_millis(20)), Some(Duration::from_millis(2000)))
    };
    assert_eq!(rt.get("k").await.unwrap(), Some(1));
    // Stale, and the reload takes 200 ms: past the soft timeout the stale
    // value answers, and the reload lands later.
    row.store(2, Ordering::SeqCst);
    delay_ms.store(200, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(120)).await;
    let started = std::time::Instant::now();
    assert_eq!(rt.get("k").await.unwrap(), Some(1));
    assert!(started.elapsed() < Duration::from_millis(200), "answered at the soft timeout");
    eventually("the background reload", || c.stats().loads.load(Ordering::SeqCst) >= 2).await;
    let got = read_until(Some(2), || async { rt.get("k").await.unwrap() }).await;
    assert_eq!(got, Some(2));
    // A loader that never answers is cut at the hard timeout; with no
    // value at hand the error surfaces.
    let hanging = c
        .read_through(|_key| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(Some(0u64))
        })
        .timeouts(None, Some(Duration::from_millis(50)));
    let started = std::time::Instant::now();
    assert!(hanging.get("never").await.is_err());
    assert!(started.elapsed() < Duration::from_secs(5));
}
