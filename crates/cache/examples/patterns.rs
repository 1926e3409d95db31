//! Read-through (with refresh-ahead and fail-safe) and write-behind, in
//! one runnable tour against an in-process Larder or a server you name:
//! `cargo run -p larder-cache --example patterns [redis://host:port]`.

use larder_cache::{Cache, WriteBehind, WriteBehindOptions};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (_embedded, url) = larder_testkit::url_from_args_or_embedded();
    let client = redis::Client::open(url)?;
    let cache = Cache::builder(client.clone())
        .namespace("patterns")
        .default_ttl(Duration::from_millis(300))
        .fail_safe(Duration::from_secs(60))
        .build()
        .await?;

    // Read-through: the loader is registered once; refresh-ahead reloads
    // a value in the background once 70% of its TTL has passed.
    let price = Arc::new(AtomicU64::new(100));
    let db_up = Arc::new(AtomicBool::new(true));
    let prices = {
        let (price, db_up) = (price.clone(), db_up.clone());
        cache
            .read_through(move |_sku: String| {
                let (price, db_up) = (price.clone(), db_up.clone());
                async move {
                    if !db_up.load(Ordering::SeqCst) {
                        return Err("database unreachable".to_string());
                    }
                    Ok(Some(price.load(Ordering::SeqCst)))
                }
            })
            .refresh_ahead(0.7)
    };
    println!("price = {:?}", prices.get("sku:1").await?);
    price.store(120, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(250)).await;
    println!("price (old, refresh started) = {:?}", prices.get("sku:1").await?);
    tokio::time::sleep(Duration::from_millis(50)).await;
    println!("price (refreshed) = {:?}", prices.get("sku:1").await?);

    // Fail-safe: the database goes down after the TTL; the last good
    // value is served instead of an error.
    db_up.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(400)).await;
    println!("price while the database is down = {:?}", prices.get("sku:1").await?);
    println!("fail-safe answers: {}", cache.stats().fail_safe_served.load(Ordering::SeqCst));

    // Write-behind: view counts are acknowledged once queued on the
    // server, and flushed to the "database" in batches.
    let views = Arc::new(AtomicU64::new(0));
    let flusher = {
        let views = views.clone();
        WriteBehind::start(client, "patterns:views", WriteBehindOptions::default(), move |batch| {
            let views = views.clone();
            async move {
                // A real flush would upsert with each job.id as the idempotency key.
                views.fetch_add(batch.len() as u64, Ordering::SeqCst);
                Ok(())
            }
        })
        .await?
    };
    for _ in 0..1000 {
        flusher.enqueue(&"page:1").await?;
    }
    while views.load(Ordering::SeqCst) < 1000 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!("1000 views flushed in {} batches", flusher.stats.batches.load(Ordering::SeqCst));
    flusher.stop().await;
    Ok(())
}
