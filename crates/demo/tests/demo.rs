//! The demo as a user drives it (curl and psql in the guides): a second
//! request is served from the cache, an update through the API shows at
//! once, a change made directly in PostgreSQL reaches the cache through
//! the trigger outbox, and DELETE drops an entry. Real PostgreSQL, real
//! Larder, real HTTP.

use larder_testkit::{spawn_server, PgServer};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Reply {
    status: u16,
    cache: Option<String>,
    body: String,
}

async fn http(addr: std::net::SocketAddr, method: &str, path: &str, body: Option<&str>) -> Reply {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = body.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: demo\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let cache =
        head.lines().find_map(|l| l.to_ascii_lowercase().strip_prefix("x-cache: ").map(|v| v.trim().to_uppercase()));
    Reply { status, cache, body: body.to_string() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guides_walkthrough_works_end_to_end() {
    let Some(pg) = PgServer::start() else { return };
    let larder = spawn_server();
    let db = larder_demo::connect(&pg.url()).await.unwrap();
    larder_demo::seed(&db, 100, 50, 2000).await.unwrap();
    let app = larder_demo::start(&format!("redis://{}/", larder.addr), &pg.url()).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, larder_demo::router(app)).await });

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
    // outbox, NOTIFY, listener).
    assert_eq!(http(addr, "GET", "/users/1", None).await.cache.as_deref(), Some("HIT"));
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

    // DELETE drops an entry by hand.
    assert_eq!(http(addr, "GET", "/users/1", None).await.cache.as_deref(), Some("HIT"));
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
    let ratio = larder_demo::load::compare(&addr.to_string(), 1, 4).await.unwrap();
    assert!(ratio < 1.0, "database load with the cache / without: {ratio}");
}
