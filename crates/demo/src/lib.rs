//! larder-demo: the service the caching guides describe, over a real
//! PostgreSQL with larder-cache in front.
//!
//! - `GET /users/{id}` and `GET /products?category=…` are cache-aside
//!   (10-minute TTL) and say `X-Cache: HIT`, `MISS`, or `STALE` (the
//!   database failed and the fail-safe served the last good value).
//! - `PUT`/`PATCH /users/{id}` update the row and invalidate at once.
//! - `DELETE /cache/users/{id}` drops a cache entry by hand.
//! - Changes made directly in PostgreSQL (psql) invalidate too: triggers
//!   write the affected cache keys to an outbox table and NOTIFY; a
//!   listener drains the outbox from its last position, so a dropped
//!   connection loses nothing.
//!
//! - `POST /products/{id}/views` counts a view through write-behind: it is
//!   acknowledged once queued on the cache server and flushed to
//!   PostgreSQL in batches (`GET` reads the flushed count).
//! - `GET /products/{id}` is cache-aside; `PUT /products/{id}/price` is
//!   write-through (the database, then the cache holds the new value).
//! - `POST /sessions` creates a session on the cache server (sliding
//!   30-minute TTL); `GET /sessions/{id}` reads and extends it.
//! - `GET /limited` is rate limited (10 requests per second per client
//!   key, fixed window on the cache server): 429 with Retry-After.
//! - `GET /stats` reports database queries and cache counters; a
//!   `X-Cache-Bypass: 1` request header skips the cache (the load
//!   generator's "cache off" run).
//!
//! - `GET /dashboard` charts hit ratio, database queries, latency and
//!   evictions live, with buttons that run the scenarios
//!   (`POST /scenarios/{load|stampede}`); `GET /metrics` is Prometheus;
//!   `GET /openapi.json` describes every route.
//!
//! The products listing is the deliberately slow query: an aggregate over
//! every review of a category.
//!
//! Every route is declared once, in [`routes`]: the router and the OpenAPI
//! description are both built from that table, so they cannot disagree.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use larder_cache::{Cache, Source};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::NoTls;

pub mod dashboard;
pub mod load;
pub mod openapi;
mod routes;
pub mod telemetry;

pub use routes::{router, routes, serve, In, Param, Route};

pub const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS users (id int PRIMARY KEY, name text NOT NULL, email text NOT NULL);
CREATE TABLE IF NOT EXISTS products (id int PRIMARY KEY, category text NOT NULL, name text NOT NULL, price_cents int NOT NULL);
CREATE TABLE IF NOT EXISTS reviews (product_id int NOT NULL, stars int NOT NULL);
CREATE INDEX IF NOT EXISTS reviews_product ON reviews (product_id);
CREATE TABLE IF NOT EXISTS cache_outbox (id bigserial PRIMARY KEY, cache_key text NOT NULL);
CREATE TABLE IF NOT EXISTS page_views (page text PRIMARY KEY, n bigint NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS applied_jobs (id text PRIMARY KEY);

CREATE OR REPLACE FUNCTION larder_users_changed() RETURNS trigger AS $$
BEGIN
  INSERT INTO cache_outbox (cache_key) VALUES ('user:' || COALESCE(NEW.id, OLD.id));
  PERFORM pg_notify('cache_invalidation', '');
  RETURN NULL;
END $$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS users_cache ON users;
CREATE TRIGGER users_cache AFTER INSERT OR UPDATE OR DELETE ON users
  FOR EACH ROW EXECUTE FUNCTION larder_users_changed();

CREATE OR REPLACE FUNCTION larder_products_changed() RETURNS trigger AS $$
BEGIN
  IF TG_OP <> 'INSERT' THEN
    INSERT INTO cache_outbox (cache_key) VALUES ('products:' || OLD.category);
  END IF;
  IF TG_OP <> 'DELETE' THEN
    INSERT INTO cache_outbox (cache_key) VALUES ('products:' || NEW.category);
  END IF;
  PERFORM pg_notify('cache_invalidation', '');
  RETURN NULL;
END $$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS products_cache ON products;
CREATE TRIGGER products_cache AFTER INSERT OR UPDATE OR DELETE ON products
  FOR EACH ROW EXECUTE FUNCTION larder_products_changed();
"#;

/// Categories the seed data uses.
pub const CATEGORIES: &[&str] = &["books", "games", "music", "garden", "tools"];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct User {
    pub id: i32,
    pub name: String,
    pub email: String,
}

#[derive(Debug, Deserialize)]
pub struct UserPatch {
    pub name: Option<String>,
    pub email: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProductRow {
    pub id: i32,
    pub name: String,
    pub price_cents: i32,
    pub rating: Option<f64>,
    pub reviews: i64,
}

/// What the service counts itself: database queries (the load
/// generator's figure), and cacheable responses by where they came from
/// (the dashboard's hit ratio, which counts bypassed requests as misses).
#[derive(Default)]
pub struct Counters {
    pub db_queries: AtomicU64,
    pub cache_hits: AtomicU64,
    pub cache_misses: AtomicU64,
    pub cache_stale: AtomicU64,
}

/// The service's settings; [`Config::default`] is what `larder-demo` runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Cache-aside TTL.
    pub ttl: Duration,
    /// How long past its TTL a value may still be served while the
    /// database fails (`X-Cache: STALE`).
    pub fail_safe: Duration,
    /// The dashboard's sampling interval.
    pub sample_every: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            ttl: Duration::from_secs(600),
            fail_safe: Duration::from_secs(300),
            sample_every: Duration::from_secs(1),
        }
    }
}

pub struct AppState {
    pub db: tokio_postgres::Client,
    pub cache: Cache,
    pub counters: Counters,
    pub views: larder_cache::WriteBehind,
    pub redis: redis::aio::ConnectionManager,
    /// larder-cache's recipes behind `/sessions` and `/limited`.
    pub sessions: larder_cache::recipes::Sessions,
    pub limiter: larder_cache::recipes::RateLimiter,
    pub telemetry: telemetry::Telemetry,
    /// Where this service listens, once [`serve`] has bound it (the
    /// scenarios drive load at it).
    pub addr: std::sync::OnceLock<std::net::SocketAddr>,
    /// The dashboard's last scenario.
    pub scenario: std::sync::Mutex<dashboard::Scenario>,
}

impl AppState {
    /// Counts one database query.
    fn query(&self) {
        self.counters.db_queries.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("larder_demo_db_queries_total").increment(1);
    }
}

fn bypass(headers: &HeaderMap) -> bool {
    headers.get("x-cache-bypass").is_some_and(|v| v == "1")
}

pub type Shared = Arc<AppState>;

pub async fn connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::warn!("database connection ended: {e}");
        }
    });
    Ok(client)
}

/// Creates the schema and, if empty, seeds users, products and reviews,
/// logging each step.
pub async fn seed(db: &tokio_postgres::Client, users: i32, products: i32, reviews: i32) -> anyhow::Result<()> {
    db.batch_execute(SCHEMA).await?;
    let have: i64 = db.query_one("SELECT count(*) FROM users", &[]).await?.get(0);
    if have > 0 {
        tracing::info!("database already seeded ({have} users)");
        return Ok(());
    }
    tracing::info!("seeding {users} users…");
    db.execute(
        "INSERT INTO users SELECT g, 'user ' || g, 'user' || g || '@example.com' FROM generate_series(1, $1) g",
        &[&users],
    )
    .await?;
    tracing::info!("seeding {products} products…");
    db.execute(
        "INSERT INTO products SELECT g, (ARRAY['books','games','music','garden','tools'])[1 + g % 5], 'product ' || g, 100 + (g * 37) % 9000 FROM generate_series(1, $1) g",
        &[&products],
    )
    .await?;
    tracing::info!("seeding {reviews} reviews…");
    db.execute(
        "INSERT INTO reviews SELECT 1 + (g * 7919) % $2, 1 + g % 5 FROM generate_series(1, $1) g",
        &[&reviews, &products],
    )
    .await?;
    db.batch_execute("DELETE FROM cache_outbox; ANALYZE").await?;
    tracing::info!("seeding done");
    Ok(())
}

/// Answers with `X-Cache` saying where the body came from, and counts it.
fn with_cache_header(app: &AppState, source: Source, body: impl IntoResponse) -> Response {
    let (label, counter) = match source {
        Source::L1 | Source::L2 => ("HIT", &app.counters.cache_hits),
        Source::Loaded | Source::Collapsed => ("MISS", &app.counters.cache_misses),
        Source::Stale => ("STALE", &app.counters.cache_stale),
    };
    counter.fetch_add(1, Ordering::Relaxed);
    metrics::counter!("larder_demo_cache_responses_total", "x_cache" => label).increment(1);
    let mut headers = HeaderMap::new();
    headers.insert("x-cache", HeaderValue::from_static(label));
    (headers, body).into_response()
}

fn internal(e: impl std::fmt::Display) -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
}

async fn get_user(State(app): State<Shared>, Path(id): Path<i32>, headers: HeaderMap) -> Response {
    cached(&app, &format!("user:{id}"), bypass(&headers), "no such user", || async {
        let row = app.db.query_opt("SELECT id, name, email FROM users WHERE id = $1", &[&id]).await?;
        Ok(row.map(|r| User { id: r.get(0), name: r.get(1), email: r.get(2) }))
    })
    .await
}

/// Cache-aside for a route: the cached value of `key`, or `load()`'s
/// (counted as a database query), as JSON with `X-Cache: HIT|MISS|STALE`,
/// or 404 with `missing` for "not found". With `bypass` the cache is not
/// used.
async fn cached<T, F, Fut>(app: &AppState, key: &str, bypass: bool, missing: &'static str, load: F) -> Response
where
    T: Serialize + serde::de::DeserializeOwned,
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, tokio_postgres::Error>>,
{
    let counted = || async {
        app.query();
        load().await.map_err(|e| e.to_string())
    };
    let result = if bypass {
        counted().await.map(|value| larder_cache::Lookup { value, source: Source::Loaded })
    } else {
        app.cache.get_or_load_with_source(key, counted).await.map_err(|e| e.to_string())
    };
    match result {
        Ok(larder_cache::Lookup { value: Some(v), source }) => with_cache_header(app, source, Json(v)),
        Ok(larder_cache::Lookup { value: None, source }) => {
            with_cache_header(app, source, (StatusCode::NOT_FOUND, missing))
        }
        Err(e) => internal(e),
    }
}

/// PUT and PATCH: update the row, then invalidate (delete-on-write).
async fn update_user(State(app): State<Shared>, Path(id): Path<i32>, Json(patch): Json<UserPatch>) -> Response {
    app.query();
    let row = app
        .db
        .query_opt(
            "UPDATE users SET name = COALESCE($2, name), email = COALESCE($3, email) WHERE id = $1 RETURNING id, name, email",
            &[&id, &patch.name, &patch.email],
        )
        .await;
    let user = match row {
        Ok(Some(r)) => User { id: r.get(0), name: r.get(1), email: r.get(2) },
        Ok(None) => return (StatusCode::NOT_FOUND, "no such user").into_response(),
        Err(e) => return internal(e),
    };
    if let Err(e) = app.cache.invalidate(&format!("user:{id}")).await {
        return internal(e);
    }
    Json(user).into_response()
}

/// POST: counts a view (write-behind). GET: the flushed count.
async fn add_view(State(app): State<Shared>, Path(id): Path<i32>) -> Response {
    match app.views.enqueue(&format!("product:{id}")).await {
        Ok(_) => StatusCode::ACCEPTED.into_response(),
        Err(e) => internal(e),
    }
}

async fn get_views(State(app): State<Shared>, Path(id): Path<i32>) -> Response {
    app.query();
    let page = format!("product:{id}");
    match app.db.query_opt("SELECT n FROM page_views WHERE page = $1", &[&page]).await {
        Ok(row) => {
            Json(serde_json::json!({ "page": page, "views": row.map_or(0, |r| r.get::<_, i64>(0)) })).into_response()
        }
        Err(e) => internal(e),
    }
}

/// Requests per second per client key on `/limited`.
const RATE_LIMIT: u64 = 10;

/// Fixed-window rate limit on the cache server (larder-cache's recipe).
async fn limited(State(app): State<Shared>, headers: HeaderMap) -> Response {
    let who = headers.get("x-client").and_then(|v| v.to_str().ok()).unwrap_or("anonymous");
    match app.limiter.check(who).await {
        Ok(d) if !d.allowed => {
            let retry = d.retry_after.as_millis();
            let mut h = HeaderMap::new();
            // Retry-After is whole seconds, rounded up.
            h.insert("retry-after", HeaderValue::from(retry.div_ceil(1000).max(1) as u64));
            (StatusCode::TOO_MANY_REQUESTS, h, format!("rate limited; retry in {retry} ms")).into_response()
        }
        Ok(_) => "ok".into_response(),
        Err(e) => internal(e),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Product {
    pub id: i32,
    pub category: String,
    pub name: String,
    pub price_cents: i32,
}

async fn get_product(State(app): State<Shared>, Path(id): Path<i32>) -> Response {
    cached(&app, &format!("product:{id}"), false, "no such product", || async {
        let row =
            app.db.query_opt("SELECT id, category, name, price_cents FROM products WHERE id = $1", &[&id]).await?;
        Ok(row.map(|r| Product { id: r.get(0), category: r.get(1), name: r.get(2), price_cents: r.get(3) }))
    })
    .await
}

#[derive(Deserialize)]
struct Price {
    price_cents: i32,
}

/// Write-through: the database first, then the cache holds the new row.
async fn set_price(State(app): State<Shared>, Path(id): Path<i32>, Json(price): Json<Price>) -> Response {
    app.query();
    let row = app.db.query_opt("SELECT id, category, name FROM products WHERE id = $1", &[&id]).await;
    let product = match row {
        Ok(Some(r)) => Product { id: r.get(0), category: r.get(1), name: r.get(2), price_cents: price.price_cents },
        Ok(None) => return (StatusCode::NOT_FOUND, "no such product").into_response(),
        Err(e) => return internal(e),
    };
    let written = app
        .cache
        .write_through(&format!("product:{id}"), &product, || async {
            app.query();
            app.db
                .execute("UPDATE products SET price_cents = $2 WHERE id = $1", &[&id, &price.price_cents])
                .await
                .map(|_| ())
        })
        .await;
    match written {
        Ok(()) => Json(product).into_response(),
        Err(e) => internal(e),
    }
}

const SESSION_TTL_SECS: u64 = 1800;

/// Creates a session: a hash on the cache server with a sliding TTL
/// (larder-cache's recipe; ids are 128 random bits).
async fn create_session(State(app): State<Shared>, Json(data): Json<serde_json::Value>) -> Response {
    match app.sessions.create(&[("data", &data.to_string())]).await {
        Ok(id) => (StatusCode::CREATED, Json(serde_json::json!({ "id": id }))).into_response(),
        Err(e) => internal(e),
    }
}

/// Reads a session and slides its expiry forward.
async fn get_session(State(app): State<Shared>, Path(id): Path<String>) -> Response {
    match app.sessions.get(&id).await {
        Ok(Some(fields)) => {
            let data = fields.get("data").map(String::as_str).unwrap_or("null");
            Json(serde_json::from_str::<serde_json::Value>(data).unwrap_or(serde_json::Value::Null)).into_response()
        }
        Ok(None) => (StatusCode::NOT_FOUND, "no such session").into_response(),
        Err(e) => internal(e),
    }
}

async fn stats(State(app): State<Shared>) -> Response {
    let s = app.cache.stats();
    Json(serde_json::json!({
        "db_queries": app.counters.db_queries.load(Ordering::Relaxed),
        "responses": {
            "hit": app.counters.cache_hits.load(Ordering::Relaxed),
            "miss": app.counters.cache_misses.load(Ordering::Relaxed),
            "stale": app.counters.cache_stale.load(Ordering::Relaxed),
        },
        "l1_hits": s.l1_hits.load(Ordering::Relaxed),
        "l2_hits": s.l2_hits.load(Ordering::Relaxed),
        "misses": s.misses.load(Ordering::Relaxed),
        "loads": s.loads.load(Ordering::Relaxed),
        "collapsed": s.collapsed.load(Ordering::Relaxed),
        "fail_safe_served": s.fail_safe_served.load(Ordering::Relaxed),
        "l1_evictions": s.l1_evictions.load(Ordering::Relaxed),
        "stale_sets_prevented": s.stale_sets_prevented.load(Ordering::Relaxed),
        "views_flushed": app.views.stats.jobs.load(Ordering::Relaxed),
        "view_batches": app.views.stats.batches.load(Ordering::Relaxed),
    }))
    .into_response()
}

async fn drop_user_cache(State(app): State<Shared>, Path(id): Path<i32>) -> Response {
    match app.cache.invalidate(&format!("user:{id}")).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
struct ProductQuery {
    category: String,
}

/// The deliberately slow listing: top products of a category by rating.
async fn list_products(State(app): State<Shared>, Query(q): Query<ProductQuery>) -> Response {
    let category = q.category;
    cached(&app, &format!("products:{category}"), false, "", || async {
        let rows = app
            .db
            .query(
                "SELECT p.id, p.name, p.price_cents, avg(r.stars)::float8, count(r.product_id)
                 FROM products p LEFT JOIN reviews r ON r.product_id = p.id
                 WHERE p.category = $1
                 GROUP BY p.id ORDER BY 4 DESC NULLS LAST, p.id LIMIT 20",
                &[&category],
            )
            .await?;
        let list: Vec<ProductRow> = rows
            .iter()
            .map(|r| ProductRow {
                id: r.get(0),
                name: r.get(1),
                price_cents: r.get(2),
                rating: r.get(3),
                reviews: r.get(4),
            })
            .collect();
        Ok(Some(list))
    })
    .await
}

/// Drains the invalidation outbox: on every NOTIFY (and every second, in
/// case a notification was missed), invalidates the keys written since
/// the last position, then deletes them. On a lost connection it
/// reconnects and carries on from its position.
pub async fn run_outbox_listener(url: String, cache: Cache) {
    let mut last: i64 = 0;
    loop {
        match drain_outbox(&url, &cache, &mut last).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!("outbox listener: {e}; reconnecting");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

async fn drain_outbox(url: &str, cache: &Cache, last: &mut i64) -> anyhow::Result<()> {
    let (client, mut conn) = tokio_postgres::connect(url, NoTls).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = std::pin::pin!(futures_util_poll(&mut conn));
        while let Some(m) = std::future::poll_fn(|cx| messages.as_mut().poll_next_msg(cx)).await {
            if tx.send(m).is_err() {
                return;
            }
        }
    });
    client.batch_execute("LISTEN cache_invalidation").await?;
    loop {
        let rows = client
            .query("SELECT id, cache_key FROM cache_outbox WHERE id > $1 ORDER BY id LIMIT 1000", &[&*last])
            .await?;
        for r in &rows {
            let key: String = r.get(1);
            cache.invalidate(&key).await?;
            *last = r.get(0);
        }
        if !rows.is_empty() {
            client.execute("DELETE FROM cache_outbox WHERE id <= $1", &[&*last]).await?;
            continue;
        }
        // Wait for a NOTIFY, or poll anyway after a second.
        if let Ok(None) = tokio::time::timeout(Duration::from_secs(1), rx.recv()).await {
            anyhow::bail!("notification stream ended");
        }
    }
}

/// Drives a tokio-postgres connection, yielding its notifications.
fn futures_util_poll<S, T>(conn: &mut tokio_postgres::Connection<S, T>) -> ConnPoll<'_, S, T>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    ConnPoll { conn }
}

struct ConnPoll<'a, S, T> {
    conn: &'a mut tokio_postgres::Connection<S, T>,
}

impl<S, T> ConnPoll<'_, S, T>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    fn poll_next_msg(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<tokio_postgres::Notification>> {
        let this = self.get_mut();
        loop {
            match this.conn.poll_message(cx) {
                std::task::Poll::Ready(Some(Ok(tokio_postgres::AsyncMessage::Notification(n)))) => {
                    return std::task::Poll::Ready(Some(n))
                }
                std::task::Poll::Ready(Some(Ok(_))) => continue,
                std::task::Poll::Ready(Some(Err(_))) | std::task::Poll::Ready(None) => {
                    return std::task::Poll::Ready(None)
                }
                std::task::Poll::Pending => return std::task::Poll::Pending,
            }
        }
    }
}

/// Everything the service needs, started: the cache, the database
/// connection, the outbox listener.
pub async fn start(redis_url: &str, database_url: &str) -> anyhow::Result<Shared> {
    start_with(redis_url, database_url, Config::default()).await
}

/// [`start`] with settings.
pub async fn start_with(redis_url: &str, database_url: &str, config: Config) -> anyhow::Result<Shared> {
    // The recorder goes in before the cache takes its metric handles.
    let prometheus = telemetry::install_recorder();
    let db = connect(database_url).await?;
    let cache = Cache::builder(redis::Client::open(redis_url)?)
        .namespace("demo")
        .default_ttl(config.ttl)
        .fail_safe(config.fail_safe)
        .build()
        .await?;
    tokio::spawn(run_outbox_listener(database_url.to_string(), cache.clone()));
    let client = redis::Client::open(redis_url)?;
    let redis = redis::aio::ConnectionManager::new(client.clone()).await?;
    let sessions =
        larder_cache::recipes::Sessions::new(client.clone(), "demo:session", Duration::from_secs(SESSION_TTL_SECS))
            .await?;
    let rule = larder_cache::recipes::Limit::FixedWindow { limit: RATE_LIMIT, window: Duration::from_secs(1) };
    let limiter = larder_cache::recipes::RateLimiter::new(client.clone(), "demo:rate", rule).await?;
    let flush_db = connect(database_url).await?;
    let flush_db = Arc::new(tokio::sync::Mutex::new(flush_db));
    let views = larder_cache::WriteBehind::start(client, "demo:views", Default::default(), move |batch| {
        let db = flush_db.clone();
        async move { flush_views(&db, &batch).await }
    })
    .await?;
    let app = Arc::new(AppState {
        db,
        cache,
        counters: Counters::default(),
        views,
        redis,
        sessions,
        limiter,
        telemetry: telemetry::Telemetry::new(prometheus),
        addr: std::sync::OnceLock::new(),
        scenario: Default::default(),
    });
    tokio::spawn(telemetry::sample(Arc::downgrade(&app), config.sample_every));
    Ok(app)
}

/// Applies a batch of view events in one transaction; each event's id is
/// recorded so a redelivered batch is not counted twice.
async fn flush_views(
    db: &tokio::sync::Mutex<tokio_postgres::Client>,
    batch: &[larder_cache::Job],
) -> Result<(), String> {
    let mut db = db.lock().await;
    let tx = db.transaction().await.map_err(|e| e.to_string())?;
    for job in batch {
        let fresh = tx
            .execute("INSERT INTO applied_jobs (id) VALUES ($1) ON CONFLICT DO NOTHING", &[&job.id])
            .await
            .map_err(|e| e.to_string())?;
        if fresh == 1 {
            let page: String = serde_json::from_str(&job.payload).map_err(|e| e.to_string())?;
            tx.execute(
                "INSERT INTO page_views (page, n) VALUES ($1, 1) ON CONFLICT (page) DO UPDATE SET n = page_views.n + 1",
                &[&page],
            )
            .await
            .map_err(|e| e.to_string())?;
        }
    }
    tx.commit().await.map_err(|e| e.to_string())
}
