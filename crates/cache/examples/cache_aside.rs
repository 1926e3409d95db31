//! Cache-aside, delete-on-write and write-through in one runnable tour.
//!
//! Runs against an in-process Larder, or a server you name:
//! `cargo run -p larder-cache --example cache_aside [redis://host:port]`.
//! The "database" is a map with a visible query counter.

use larder_cache::Cache;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

#[derive(Default)]
struct Db {
    rows: HashMap<u32, String>,
    queries: u32,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (_embedded, url) = larder_testkit::url_from_args_or_embedded();
    let cache = Cache::builder(redis::Client::open(url)?)
        .namespace("example")
        .default_ttl(Duration::from_secs(600))
        .ttl_jitter(0.1)
        .build()
        .await?;
    let db = Arc::new(Mutex::new(Db::default()));
    db.lock().await.rows.insert(1, "Ada".into());

    let load = |id: u32| {
        let db = db.clone();
        move || async move {
            let mut db = db.lock().await;
            db.queries += 1;
            Ok::<_, String>(db.rows.get(&id).cloned())
        }
    };

    // Cache-aside: the first read queries the database, the next are hits.
    for _ in 0..3 {
        let name: Option<String> = cache.get_or_load("user:1", load(1)).await?;
        println!("user:1 = {name:?}");
    }
    println!("database queries so far: {}", db.lock().await.queries);

    // Delete-on-write: update the row, then invalidate; the next read is fresh.
    db.lock().await.rows.insert(1, "Ada Lovelace".into());
    cache.invalidate("user:1").await?;
    let name: Option<String> = cache.get_or_load("user:1", load(1)).await?;
    println!("after update: user:1 = {name:?}");

    // Write-through: write the store, and the cache holds the new value.
    let db2 = db.clone();
    cache
        .write_through("user:2", &"Grace".to_string(), || async move {
            db2.lock().await.rows.insert(2, "Grace".into());
            Ok::<(), String>(())
        })
        .await?;
    let name: Option<String> = cache.get_or_load("user:2", load(2)).await?;
    println!("write-through: user:2 = {name:?}");

    // Negative caching: a missing row is remembered for the negative TTL.
    let _: Option<String> = cache.get_or_load("user:404", load(404)).await?;
    let _: Option<String> = cache.get_or_load("user:404", load(404)).await?;
    println!("total database queries: {}", db.lock().await.queries);
    Ok(())
}
