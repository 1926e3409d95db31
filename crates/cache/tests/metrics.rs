//! The cache's metrics as a Prometheus scrape shows them: hits per tier,
//! misses, loads and their latency, collapsed loads, fail-safe stale
//! answers, L1 evictions and the hit ratio, labelled by cache name; and
//! the source each lookup reports. Its own test binary, because the
//! recorder is process-global.

mod common;

use common::eventually;
use larder_cache::{Cache, Source};
use larder_testkit::spawn_server;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The value of the sample `name{labels}` in a scrape, if present.
fn sample(scrape: &str, name_and_labels: &str) -> Option<f64> {
    scrape.lines().find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_loads_and_evictions_reach_the_recorder() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle: PrometheusHandle = recorder.handle();
    metrics::set_global_recorder(recorder).unwrap();

    let server = spawn_server();
    let client = redis::Client::open(format!("redis://{}/", server.addr)).unwrap();
    let cache = Cache::builder(client)
        .namespace("m")
        .default_ttl(Duration::from_millis(300))
        .fail_safe(Duration::from_secs(60))
        .l1_capacity(4)
        .l1_ttl(Duration::from_millis(100))
        .build()
        .await
        .unwrap();
    let queries = Arc::new(AtomicU64::new(0));
    let load = |fail: bool| {
        let queries = queries.clone();
        move || async move {
            queries.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            if fail {
                Err("database down".to_string())
            } else {
                Ok(Some(7u64))
            }
        }
    };

    // Miss and load, then an L1 hit.
    let first = cache.get_or_load_with_source("k", load(false)).await.unwrap();
    assert_eq!((first.value, first.source), (Some(7), Source::Loaded));
    let second = cache.get_or_load_with_source("k", load(false)).await.unwrap();
    assert_eq!((second.value, second.source), (Some(7), Source::L1));

    // Once L1's short TTL passes, the server tier answers.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let third = cache.get_or_load_with_source("k", load(false)).await.unwrap();
    assert_eq!((third.value, third.source), (Some(7), Source::L2));

    // Concurrent misses of one key: one load, the others collapsed.
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let (cache, load) = (cache.clone(), load(false));
            tokio::spawn(async move { cache.get_or_load_with_source::<u64, _, _, String>("hot", load).await.unwrap() })
        })
        .collect();
    let mut sources = Vec::new();
    for r in racers {
        sources.push(r.await.unwrap().source);
    }
    assert_eq!(sources.iter().filter(|s| **s == Source::Loaded).count(), 1, "{sources:?}");
    assert_eq!(sources.iter().filter(|s| **s == Source::Collapsed).count(), 7, "{sources:?}");

    // Past the TTL with the loader failing, the fail-safe answers stale.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let stale = cache.get_or_load_with_source("k", load(true)).await.unwrap();
    assert_eq!((stale.value, stale.source), (Some(7), Source::Stale));

    // More keys than L1 holds: L1 evicts (moka reports it asynchronously).
    for i in 0..64 {
        cache.get_or_load::<u64, _, _, String>(&format!("many:{i}"), load(false)).await.unwrap();
    }
    eventually("L1 evictions", || cache.stats().l1_evictions.load(Ordering::Relaxed) > 0).await;

    let scrape = handle.render();
    let s = cache.stats();
    assert_eq!(sample(&scrape, r#"larder_cache_hits_total{cache="m",tier="l1"}"#), Some(1.0), "{scrape}");
    assert_eq!(sample(&scrape, r#"larder_cache_hits_total{cache="m",tier="l2"}"#), Some(1.0), "{scrape}");
    assert_eq!(sample(&scrape, r#"larder_cache_collapsed_loads_total{cache="m"}"#), Some(7.0), "{scrape}");
    assert_eq!(
        sample(&scrape, r#"larder_cache_stale_served_total{cache="m",reason="fail_safe"}"#),
        Some(1.0),
        "{scrape}"
    );
    // Loads: k, hot, the failed reload of k, and the 64 others.
    assert_eq!(sample(&scrape, r#"larder_cache_loads_total{cache="m"}"#), Some(67.0), "{scrape}");
    assert_eq!(sample(&scrape, r#"larder_cache_load_errors_total{cache="m"}"#), Some(1.0), "{scrape}");
    assert_eq!(queries.load(Ordering::SeqCst), 67);
    // Misses: k, 8 × hot, the stale k, 64 others.
    assert_eq!(sample(&scrape, r#"larder_cache_misses_total{cache="m"}"#), Some(74.0), "{scrape}");
    assert_eq!(s.misses.load(Ordering::Relaxed), 74);
    let evictions = sample(&scrape, r#"larder_cache_l1_evictions_total{cache="m"}"#).unwrap();
    assert!(evictions >= 1.0, "{scrape}");
    assert_eq!(sample(&scrape, r#"larder_cache_load_duration_seconds_count{cache="m"}"#), Some(67.0), "{scrape}");
    let ratio = sample(&scrape, r#"larder_cache_hit_ratio{cache="m"}"#).unwrap();
    assert!((ratio - 2.0 / 76.0).abs() < 1e-9, "hit ratio {ratio}, want 2/76");
    assert!((s.hit_ratio() - ratio).abs() < 1e-9);
}
