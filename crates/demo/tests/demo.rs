//! The demo as a user drives it (curl and psql in the guides): a second
//! request is served from the cache, an update through the API shows at
//! once, a change made directly in PostgreSQL reaches the cache through
//! the trigger outbox, and DELETE drops an entry. Real PostgreSQL, real
//! Larder, real HTTP.

mod common;

use common::{http, stack};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guides_walkthrough_works_end_to_end() {
    let Some(stack) = stack(larder_demo::Config::default()).await else { return };
    let (addr, db) = (stack.addr, &stack.db);

    // Cache-aside: the second request is served from the cache.
    let first = http(addr, "GET", "/users/1", None).await;
    assert_eq!((first.status, first.cache.as_deref()), (200, Some("MISS")));
    assert!(first.body.contains("\"user 1\""), "{}", first.body);
    let second = http(addr, "GET", "/users/1", None).await;
    assert_eq!((second.status, second.cache.as_deref()), (200, Some("HIT")));
    assert_eq!(second.body, first.body);

    // An update through the API shows at once.
    let put = http(addr, "PUT", "/users/1", Some(r#"{"name":"Ada"}"#)).await;
    assert_eq!(put.status, 200, "{}", put.body);
    let after = http(addr, "GET", "/users/1", None).await;
    assert!(after.body.contains("\"Ada\""), "{}", after.body);
    assert_eq!(after.cache.as_deref(), Some("MISS"));

    // A change made directly in PostgreSQL reaches the cache (trigger,
    // outbox, NOTIFY, listener). The PUT's own UPDATE also went through
    // the outbox, and its late invalidation may drop the entry just
    // reloaded: first wait until the entry is cached and stays.
    assert_eq!(until_hit(addr, "/users/1").await.as_deref(), Some("HIT"));
    db.execute("UPDATE users SET name = 'Grace' WHERE id = 1", &[]).await.unwrap();
    let mut seen = String::new();
    for _ in 0..2000 {
        seen = http(addr, "GET", "/users/1", None).await.body;
        if seen.contains("\"Grace\"") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(seen.contains("\"Grace\""), "the psql update never reached the cache: {seen}");

    // DELETE drops an entry by hand. First the entry must be cached: the
    // first "Grace" may have come from a reload that a late invalidation
    // (the PUT's, still in the outbox) caused, and then the psql UPDATE's
    // own invalidation drops that reload (CI saw MISS here once).
    assert_eq!(until_hit(addr, "/users/1").await.as_deref(), Some("HIT"));
    assert_eq!(http(addr, "DELETE", "/cache/users/1", None).await.status, 204);
    assert_eq!(http(addr, "GET", "/users/1", None).await.cache.as_deref(), Some("MISS"));
    assert_eq!(http(addr, "GET", "/users/999999", None).await.status, 404);

    // The slow listing is cached, and a price change in psql refreshes it.
    let list = http(addr, "GET", "/products?category=books", None).await;
    assert_eq!((list.status, list.cache.as_deref()), (200, Some("MISS")));
    assert_eq!(http(addr, "GET", "/products?category=books", None).await.cache.as_deref(), Some("HIT"));
    db.execute("UPDATE products SET price_cents = 4242 WHERE category = 'books'", &[]).await.unwrap();
    let mut listing = String::new();
    for _ in 0..2000 {
        listing = http(addr, "GET", "/products?category=books", None).await.body;
        if listing.contains("4242") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(listing.contains("4242"), "the listing never refreshed: {listing}");

    // Write-behind view counts: 202 at once, flushed to PostgreSQL in batches.
    for _ in 0..50 {
        assert_eq!(http(addr, "POST", "/products/7/views", None).await.status, 202);
    }
    let mut views = String::new();
    for _ in 0..2000 {
        views = http(addr, "GET", "/products/7/views", None).await.body;
        if views.contains("\"views\":50") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(views.contains("\"views\":50"), "{views}");

    // Rate limit: 10 per second per client, then 429 with Retry-After.
    let mut statuses = Vec::new();
    for _ in 0..15 {
        statuses.push(http(addr, "GET", "/limited", None).await.status);
    }
    assert!(statuses.contains(&200) && statuses.contains(&429), "{statuses:?}");

    // Write-through: the new price is in the cache, no database read needed.
    assert_eq!(http(addr, "GET", "/products/3", None).await.cache.as_deref(), Some("MISS"));
    let put = http(addr, "PUT", "/products/3/price", Some(r#"{"price_cents":777}"#)).await;
    assert_eq!(put.status, 200, "{}", put.body);
    let got = http(addr, "GET", "/products/3", None).await;
    assert!(got.body.contains("777") && got.cache.as_deref() == Some("HIT"), "{} {:?}", got.body, got.cache);

    // Sessions on the cache server.
    let created = http(addr, "POST", "/sessions", Some(r#"{"user":1,"cart":[3,7]}"#)).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id: serde_json::Value = serde_json::from_str(&created.body).unwrap();
    let id = id["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 32);
    let session = http(addr, "GET", &format!("/sessions/{id}"), None).await;
    assert_eq!((session.status, session.body.as_str()), (200, r#"{"cart":[3,7],"user":1}"#));
    assert_eq!(http(addr, "GET", "/sessions/nosuch", None).await.status, 404);

    // Stampede: 50 concurrent misses of one key, one database query.
    assert_eq!(larder_demo::load::stampede(&addr.to_string(), 50).await.unwrap(), 1);

    // The load generator runs both phases; the cache cuts database load.
    let ratio = larder_demo::load::compare(&addr.to_string(), 1, 4).await.unwrap().ratio;
    assert!(ratio < 1.0, "database load with the cache / without: {ratio}");

    // Prometheus: the service's own metrics and larder-cache's, by name.
    let scrape = http(addr, "GET", "/metrics", None).await;
    assert_eq!(scrape.status, 200);
    for needle in [
        r#"larder_cache_hits_total{cache="demo",tier="l1"}"#,
        r#"larder_cache_loads_total{cache="demo"}"#,
        r#"larder_cache_hit_ratio{cache="demo"}"#,
        r#"larder_demo_cache_responses_total{x_cache="HIT"}"#,
        r#"larder_demo_http_requests_total{method="GET",route="/users/{id}",status="200"}"#,
        "larder_demo_db_queries_total",
    ] {
        assert!(scrape.body.contains(needle), "{needle} missing from /metrics:\n{}", scrape.body);
    }
    let queries = sample(&scrape.body, "larder_demo_db_queries_total").unwrap();
    let stats: serde_json::Value = serde_json::from_str(&http(addr, "GET", "/stats", None).await.body).unwrap();
    // The recorder is process-wide and the other test's stack counts into
    // it too, so this stack's own count is a lower bound.
    let own = stats["db_queries"].as_u64().unwrap();
    assert!(own > 0 && queries as u64 >= own, "/metrics {queries} vs /stats {own}");

    // OpenAPI: every route of the table, each path parameter declared.
    let doc: serde_json::Value = serde_json::from_str(&http(addr, "GET", "/openapi.json", None).await.body).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for r in larder_demo::routes() {
        assert!(doc["paths"][r.path][r.method]["summary"].is_string(), "{} {} undocumented", r.method, r.path);
    }
    assert!(doc["paths"]["/products"]["get"]["parameters"][0]["name"] == "category");
}

/// The value of the first sample whose line starts with `name`.
/// GETs `path` until the cache answers HIT (an invalidation still on its
/// way may drop an entry just loaded), for up to about four seconds;
/// returns the last cache status seen.
async fn until_hit(addr: std::net::SocketAddr, path: &str) -> Option<String> {
    let mut cached = None;
    for _ in 0..2000 {
        cached = http(addr, "GET", path, None).await.cache;
        if cached.as_deref() == Some("HIT") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    cached
}

fn sample(scrape: &str, name: &str) -> Option<f64> {
    scrape.lines().find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
}

/// Fail-safe: with the database failing past a value's TTL, the last good
/// value is served, marked STALE; once the database is back, a fresh load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_good_value_is_served_stale_while_the_database_fails() {
    let config = larder_demo::Config { ttl: Duration::from_millis(300), ..Default::default() };
    let Some(stack) = stack(config).await else { return };
    let addr = stack.addr;
    let first = http(addr, "GET", "/users/2", None).await;
    assert_eq!((first.status, first.cache.as_deref()), (200, Some("MISS")));
    tokio::time::sleep(Duration::from_millis(400)).await;

    stack.db.batch_execute("ALTER TABLE users RENAME TO users_away").await.unwrap();
    let stale = http(addr, "GET", "/users/2", None).await;
    assert_eq!((stale.status, stale.cache.as_deref()), (200, Some("STALE")), "{}", stale.body);
    assert_eq!(stale.body, first.body);
    // A row never cached has nothing to fall back on.
    assert_eq!(http(addr, "GET", "/users/3", None).await.status, 500);

    stack.db.batch_execute("ALTER TABLE users_away RENAME TO users").await.unwrap();
    let fresh = http(addr, "GET", "/users/2", None).await;
    assert_eq!((fresh.status, fresh.cache.as_deref()), (200, Some("MISS")), "{}", fresh.body);
    let stats: serde_json::Value = serde_json::from_str(&http(addr, "GET", "/stats", None).await.body).unwrap();
    assert_eq!(stats["responses"]["stale"], 1);
    assert_eq!(stats["fail_safe_served"], 1);
}
