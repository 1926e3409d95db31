//! larder-cache: caching patterns that are correct by default, over any
//! Redis-protocol server (Larder, Redis, Valkey) through the `redis` crate.
//!
//! ```text
//! get_or_load ─► L1 (moka, in process) ─► L2 (server) ─► single flight ─► lease ─► loader
//!                      ▲                                        │
//!   invalidation channel (sequence-numbered) ◄── invalidate ◄───┘ write checks the generation
//! ```
//!
//! What it guarantees, and how:
//! - **Never stale after a write.** Every key has a generation counter on
//!   the server. A loader reads the generation before it queries the
//!   database and writes its result only if the generation is unchanged
//!   (one Lua script). An invalidation bumps the generation, so a value
//!   loaded before a write can never be stored after it: the "stale set"
//!   race is closed (`tests/stale_set.rs` proves it against PostgreSQL).
//! - **One load per key.** Concurrent misses in one process share one
//!   flight (safe under panic and cancellation: another waiter takes
//!   over); across processes a lease (`SET NX PX` with a fencing token)
//!   lets one process load while the others wait for its value.
//! - **Coherent L1.** Invalidations are published with a sequence number
//!   from the server; a listener in every process drops the key from its
//!   L1, and flushes its whole L1 on a gap or a reconnect rather than
//!   risk serving a value it was never told about.
//! - **TTL with jitter**, **negative caching** with its own TTL, **tags**
//!   and **versioned namespaces** for bulk invalidation, and prefix
//!   invalidation by SCAN (never KEYS).
//! - **Fail-safe, XFetch, read-through** ([`LoadingCache`]) with
//!   refresh-ahead and stale-while-revalidate, on a soft expiry kept in
//!   each stored envelope (the server keeps values through the grace).
//! - **Write-behind** ([`WriteBehind`]): writes acknowledged once queued
//!   in a server stream, flushed to the database in batches, at least once
//!   with an idempotency key per write.
//! - **Redis Cluster** ([`Cache::cluster_builder`]): the same cache over
//!   the `redis` crate's cluster client; a key's value, generation and
//!   lease share a slot (a hash tag around the key), so every per-key
//!   script runs on one node (see `conn.rs`).

mod conn;
mod flight;
mod listener;
mod meters;
pub mod recipes;
mod scripts;
pub mod write_behind;

pub use meters::{Source, Stats};
pub use write_behind::{Job, WriteBehind, WriteBehindOptions};

use conn::Conn;
use flight::{Fetched, Flights};
use meters::{Event, Tally};
use rand::Rng;
use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cache server: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("value encoding: {0}")]
    Codec(#[from] serde_json::Error),
    #[error("loader failed: {0}")]
    Load(String),
    #[error("configuration: {0}")]
    Config(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Configures a [`Cache`], in the spirit of moka's builder.
pub struct CacheBuilder {
    client: redis::Client,
    /// Set for a Redis Cluster; `client` is then one node, for pub/sub.
    cluster: Option<redis::cluster::ClusterClient>,
    namespace: String,
    default_ttl: Duration,
    jitter: f64,
    negative_ttl: Duration,
    l1_capacity: u64,
    l1_ttl: Duration,
    lease_ttl: Duration,
    stale_set_protection: bool,
    fail_safe: Duration,
    xfetch_beta: f64,
    coherence: Coherence,
}

/// How a process's L1 learns that a key changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Coherence {
    /// The namespace's sequence-numbered invalidation channel: every
    /// `invalidate` (from any process) reaches every L1; a gap or a
    /// reconnect flushes it.
    #[default]
    Channel,
    /// The server's CLIENT TRACKING (BCAST, on the namespace's value keys,
    /// RESP3 pushes): also catches writes that bypass this library, and
    /// the server's own expiries and evictions. A reconnect flushes L1.
    /// The channel is still published to, for processes that listen on it.
    Tracking,
}

impl CacheBuilder {
    /// How L1 is kept coherent (default: [`Coherence::Channel`]).
    pub fn l1_coherence(mut self, coherence: Coherence) -> Self {
        self.coherence = coherence;
        self
    }

    /// Fail-safe: when the loader fails, serve the last value for up to
    /// `max_stale` past its TTL instead of the error (default off). The
    /// server keeps values that much longer for it.
    pub fn fail_safe(mut self, max_stale: Duration) -> Self {
        self.fail_safe = max_stale;
        self
    }

    /// XFetch (probabilistic early expiration): a value is reloaded early
    /// with a probability that grows as its TTL runs out and with its load
    /// cost, so one caller refreshes it before everyone misses (beta 1.0
    /// is the paper's default; 0 turns it off, the default).
    pub fn xfetch(mut self, beta: f64) -> Self {
        self.xfetch_beta = beta.max(0.0);
        self
    }

    /// Keys live under `{namespace}:`; one server can hold many caches.
    pub fn namespace(mut self, ns: impl Into<String>) -> Self {
        self.namespace = ns.into();
        self
    }

    /// TTL of loaded values on the server (default 10 minutes).
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = ttl;
        self
    }

    /// Spreads TTLs by ±`fraction` so keys loaded together do not expire
    /// together (default 0.1).
    pub fn ttl_jitter(mut self, fraction: f64) -> Self {
        self.jitter = fraction.clamp(0.0, 1.0);
        self
    }

    /// TTL of "not found" results (default 30 s).
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = ttl;
        self
    }

    /// Entries the in-process L1 holds (default 10 000; 0 disables L1).
    pub fn l1_capacity(mut self, n: u64) -> Self {
        self.l1_capacity = n;
        self
    }

    /// Longest an L1 entry lives, invalidations aside (default 60 s).
    pub fn l1_ttl(mut self, ttl: Duration) -> Self {
        self.l1_ttl = ttl;
        self
    }

    /// How long one process may hold a key's load lease (default 5 s).
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl;
        self
    }

    /// Turns the generation check off. Only for demonstrating the stale-set
    /// race the check closes; never in production.
    pub fn stale_set_protection(mut self, on: bool) -> Self {
        self.stale_set_protection = on;
        self
    }

    pub async fn build(self) -> Result<Cache> {
        let conn = match &self.cluster {
            None => Conn::Single(ConnectionManager::new(self.client.clone()).await?),
            Some(cluster) => {
                if self.coherence == Coherence::Tracking {
                    return Err(Error::Config("CLIENT TRACKING coherence needs one server, not a cluster".into()));
                }
                Conn::Cluster(cluster.get_async_connection().await?)
            }
        };
        let tally = Arc::new(Tally::new(&self.namespace));
        let l1 = (self.l1_capacity > 0).then(|| {
            let evicted = tally.clone();
            moka::sync::Cache::builder()
                .max_capacity(self.l1_capacity)
                .time_to_live(self.l1_ttl)
                .eviction_listener(move |_, _, cause| {
                    if cause == moka::notification::RemovalCause::Size {
                        evicted.note(Event::L1Eviction);
                    }
                })
                .build()
        });
        let inner = Arc::new(Inner {
            conn,
            client: self.client,
            l1,
            keys: Keys { ns: self.namespace },
            version: AtomicU64::new(0),
            default_ttl: self.default_ttl,
            jitter: self.jitter,
            negative_ttl: self.negative_ttl,
            lease_ttl: self.lease_ttl,
            protect: self.stale_set_protection,
            fail_safe: self.fail_safe,
            xfetch_beta: self.xfetch_beta,
            flights: Flights::default(),
            epochs: (0..EPOCH_STRIPES).map(|_| parking_lot::Mutex::new(0)).collect(),
            global_epoch: AtomicU64::new(0),
            tally,
            closed: AtomicBool::new(false),
        });
        inner.refresh_version().await?;
        let ready = match self.coherence {
            Coherence::Channel => listener::spawn(inner.clone()),
            Coherence::Tracking => listener::spawn_tracking(inner.clone()),
        };
        // Invalidations published from now on reach this process.
        let _ = ready.await;
        Ok(Cache { inner })
    }
}

/// Key layout under the namespace.
struct Keys {
    ns: String,
}

impl Keys {
    // A cache key's value, generation and lease carry the key as a hash
    // tag (`{key}`), so they share a cluster slot and one script or MGET
    // can use them together; the namespace's version and invalidation
    // sequence share the `{ns}` tag for the same reason.
    fn value(&self, version: u64, key: &str) -> String {
        format!("{}{key}}}", self.value_head(version))
    }
    /// What every value key of `version` starts with, up to the key.
    fn value_head(&self, version: u64) -> String {
        format!("{}:v{version}:{{", self.ns)
    }
    fn generation(&self, key: &str) -> String {
        format!("{}:gen:{{{key}}}", self.ns)
    }
    fn lease(&self, key: &str) -> String {
        format!("{}:lease:{{{key}}}", self.ns)
    }
    fn tag(&self, tag: &str) -> String {
        format!("{}:tag:{tag}", self.ns)
    }
    fn version(&self) -> String {
        format!("{{{}}}:version", self.ns)
    }
    fn fence(&self) -> String {
        format!("{}:fence", self.ns)
    }
    fn sequence(&self) -> String {
        format!("{{{}}}:invseq", self.ns)
    }
    fn channel(&self) -> String {
        format!("{}:invalidate", self.ns)
    }
    /// What every value key starts with (CLIENT TRACKING's prefix).
    fn value_prefix(&self) -> String {
        format!("{}:v", self.ns)
    }
    /// The cache key a value key holds, whatever its namespace version.
    fn cache_key(&self, value_key: &str) -> Option<String> {
        let rest = value_key.strip_prefix(&self.value_prefix())?;
        let (version, key) = rest.split_once(':')?;
        let key = key.strip_prefix('{')?.strip_suffix('}')?;
        version.bytes().all(|b| b.is_ascii_digit()).then(|| key.to_string())
    }
}

/// A cached value as it is stored: the value (None: "not found"), when it
/// turns stale, and what its load cost (for XFetch). The server keeps it
/// past `stale_at` for the fail-safe grace period.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Envelope {
    v: Option<serde_json::Value>,
    /// Unix ms after which the value is stale.
    stale_at: u64,
    /// Unix ms when it was loaded.
    born: u64,
    /// How long the load took, in ms.
    cost: u64,
}

type Stored = Arc<Envelope>;

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

pub(crate) struct Inner {
    conn: Conn,
    client: redis::Client,
    l1: Option<moka::sync::Cache<String, Stored>>,
    keys: Keys,
    /// Namespace version: part of every value key, bumped to bust them all.
    version: AtomicU64,
    default_ttl: Duration,
    jitter: f64,
    negative_ttl: Duration,
    lease_ttl: Duration,
    protect: bool,
    fail_safe: Duration,
    xfetch_beta: f64,
    flights: Flights,
    /// Local invalidations per key stripe, and of the whole L1: a fetch
    /// puts its result in L1 only if no invalidation of the key happened
    /// here since it started (checked and inserted under the stripe lock,
    /// so an invalidation cannot slip between the check and the insert).
    epochs: Box<[parking_lot::Mutex<u64>]>,
    global_epoch: AtomicU64,
    tally: Arc<Tally>,
    closed: AtomicBool,
}

const EPOCH_STRIPES: usize = 64;

impl Inner {
    pub(crate) async fn refresh_version(&self) -> Result<()> {
        let v: Option<u64> = self.conn.clone().get(self.keys.version()).await?;
        self.version.store(v.unwrap_or(0), Ordering::Relaxed);
        Ok(())
    }

    pub(crate) async fn flush_l1(&self) {
        self.global_epoch.fetch_add(1, Ordering::SeqCst);
        if let Some(l1) = &self.l1 {
            l1.invalidate_all();
        }
        self.tally.note(Event::L1Flush);
    }

    fn stripe(&self, key: &str) -> &parking_lot::Mutex<u64> {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let h = BuildHasherDefault::<DefaultHasher>::default().hash_one(key);
        &self.epochs[h as usize % EPOCH_STRIPES]
    }

    /// (key stripe epoch, global epoch) before a fetch.
    fn epoch(&self, key: &str) -> (u64, u64) {
        let stripe = *self.stripe(key).lock();
        (stripe, self.global_epoch.load(Ordering::SeqCst))
    }

    pub(crate) async fn drop_l1(&self, key: &str) {
        let mut e = self.stripe(key).lock();
        *e += 1;
        if let Some(l1) = &self.l1 {
            l1.invalidate(key);
        }
    }

    /// Puts a fetched value in L1 unless the key was invalidated here
    /// since `since` was taken.
    fn fill_l1(&self, key: &str, value: &Stored, since: (u64, u64)) {
        let Some(l1) = &self.l1 else { return };
        let e = self.stripe(key).lock();
        if *e == since.0 && self.global_epoch.load(Ordering::SeqCst) == since.1 {
            l1.insert(key.to_string(), value.clone());
        }
    }

    fn jittered(&self, ttl: Duration) -> u64 {
        let ms = ttl.as_millis() as f64;
        let spread = if self.jitter > 0.0 { rand::rng().random_range(-self.jitter..=self.jitter) } else { 0.0 };
        ((ms * (1.0 + spread)).round() as u64).max(1)
    }

    /// The key's current generation ("0" if never invalidated).
    async fn generation(&self, key: &str) -> Result<String> {
        let g: Option<String> = self.conn.clone().get(self.keys.generation(key)).await?;
        Ok(g.unwrap_or_else(|| "0".into()))
    }

    /// Whether `e` should be reloaded now: past its TTL, or (XFetch) drawn
    /// for early expiration.
    fn expired(&self, e: &Envelope) -> bool {
        let now = now_ms();
        if now >= e.stale_at {
            return true;
        }
        if self.xfetch_beta > 0.0 {
            // now - cost * beta * ln(rand) >= expiry (Vattani et al.).
            let r: f64 = rand::rng().random_range(f64::MIN_POSITIVE..1.0);
            let early = (e.cost.max(1) as f64) * self.xfetch_beta * -r.ln();
            return now as f64 + early >= e.stale_at as f64;
        }
        false
    }

    /// Whether a stale `e` may still be served by the fail-safe.
    fn within_grace(&self, e: &Envelope) -> bool {
        now_ms() < e.stale_at + self.fail_safe.as_millis() as u64
    }

    /// L2, then the lease and the loader. Runs once per key at a time.
    /// A value in L2 that `expired` says to reload is kept as the
    /// fail-safe fallback while the loader runs.
    async fn fetch<F, Fut>(&self, key: &str, force: bool, load: F) -> Result<Fetched>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<Option<serde_json::Value>, String>>,
    {
        let mut conn = self.conn.clone();
        let since = self.epoch(key);
        // The generation is read first, with the value, in one MGET (one
        // round trip, one instant on the server): an invalidation after
        // this point makes the store below a no-op, and tells waiters that
        // joined later not to use this result.
        let vkey = self.keys.value(self.version.load(Ordering::Relaxed), key);
        let (generation, first): (Option<String>, Option<String>) =
            redis::cmd("MGET").arg(self.keys.generation(key)).arg(&vkey).query_async(&mut conn).await?;
        let generation = generation.unwrap_or_else(|| "0".into());
        let mut fallback: Option<Stored> = None;
        let mut hit = |raw: String| -> Result<Option<Fetched>> {
            let value: Stored = Arc::new(serde_json::from_str(&raw)?);
            if force || self.expired(&value) {
                fallback = Some(value);
                return Ok(None);
            }
            self.fill_l1(key, &value, since);
            Ok(Some(Fetched { value, generation: generation.clone(), fresh: true, source: Source::L2 }))
        };
        if let Some(raw) = first {
            if let Some(f) = hit(raw)? {
                return Ok(f);
            }
        }
        let token: u64 = conn.incr(self.keys.fence(), 1).await?;
        let leased: bool = redis::cmd("SET")
            .arg(self.keys.lease(key))
            .arg(token)
            .arg("NX")
            .arg("PX")
            .arg(self.lease_ttl.as_millis() as u64)
            .query_async::<Option<String>>(&mut conn)
            .await?
            .is_some();
        if leased {
            // Another process may have stored the value and dropped its
            // lease between our first read and taking the lease: look
            // once more before loading a second time.
            if let Some(raw) = conn.get::<_, Option<String>>(&vkey).await? {
                if let Some(f) = hit(raw)? {
                    scripts::release().key(self.keys.lease(key)).arg(token).invoke_async::<i64>(&mut conn).await?;
                    return Ok(Fetched { source: Source::Collapsed, ..f });
                }
            }
        }
        if !leased {
            // Another process is loading: wait for its value, up to the lease.
            let deadline = tokio::time::Instant::now() + self.lease_ttl;
            while tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
                // Value and lease in one read (they share a slot): the store
                // sets one and drops the other atomically, so reading them
                // apart could see neither and load a second time.
                let (value, lease): (Option<String>, Option<String>) =
                    redis::cmd("MGET").arg(&vkey).arg(self.keys.lease(key)).query_async(&mut conn).await?;
                if let Some(raw) = value {
                    if let Some(f) = hit(raw)? {
                        return Ok(Fetched { source: Source::Collapsed, ..f });
                    }
                }
                if lease.is_none() {
                    break;
                }
            }
        }
        // If the loader fails, panics or is cancelled, the lease goes at
        // once instead of making other processes wait out its TTL.
        let mut guard = LeaseGuard { conn: conn.clone(), key: self.keys.lease(key), token, armed: leased };
        let started = now_ms();
        let clock = std::time::Instant::now();
        let result = load().await;
        self.tally.note(Event::Load(clock.elapsed()));
        let loaded = match result {
            Ok(v) => v,
            Err(e) => {
                self.tally.note(Event::LoadError);
                return match fallback.filter(|f| self.within_grace(f)) {
                    // Fail-safe: the last good value, for a bounded time.
                    Some(stale) => {
                        self.tally.stale(true);
                        Ok(Fetched { value: stale, generation, fresh: false, source: Source::Stale })
                    }
                    None => Err(Error::Load(e)),
                };
            }
        };
        // The store script releases the lease itself.
        guard.armed = false;
        let ttl = match &loaded {
            Some(_) => self.jittered(self.default_ttl),
            None => self.jittered(self.negative_ttl),
        };
        let now = now_ms();
        let envelope = Envelope { v: loaded, stale_at: now + ttl, born: now, cost: now.saturating_sub(started) };
        let payload = serde_json::to_string(&envelope)?;
        // The server keeps it through the fail-safe grace period.
        let ttl = ttl + self.fail_safe.as_millis() as u64;
        let stored: i64 = if self.protect {
            scripts::store()
                .key(&vkey)
                .key(self.keys.generation(key))
                .key(self.keys.lease(key))
                .arg(&generation)
                .arg(&payload)
                .arg(ttl)
                .arg(token)
                .invoke_async(&mut conn)
                .await?
        } else {
            redis::cmd("SET").arg(&vkey).arg(&payload).arg("PX").arg(ttl).query_async::<()>(&mut conn).await?;
            scripts::release().key(self.keys.lease(key)).arg(token).invoke_async::<i64>(&mut conn).await?;
            1
        };
        let value = Arc::new(envelope);
        if stored == 1 {
            self.fill_l1(key, &value, since);
        } else {
            self.tally.note(Event::StaleSetPrevented);
        }
        Ok(Fetched { value, generation, fresh: stored == 1, source: Source::Loaded })
    }
}

impl Inner {
    /// The cached envelope of `key`, from L1 or L2, without loading.
    async fn peek(&self, key: &str) -> Result<Option<(Stored, Source)>> {
        if let Some(v) = self.l1.as_ref().and_then(|l1| l1.get(key)) {
            return Ok(Some((v, Source::L1)));
        }
        let vkey = self.keys.value(self.version.load(Ordering::Relaxed), key);
        let raw: Option<String> = self.conn.clone().get(&vkey).await?;
        Ok(match raw {
            Some(raw) => Some((Arc::new(serde_json::from_str(&raw)?), Source::L2)),
            None => None,
        })
    }
}

/// The loader a read-through cache calls: key in, value (or "not found") out.
type Loader<T> = Arc<
    dyn Fn(String) -> std::pin::Pin<Box<dyn Future<Output = std::result::Result<Option<T>, String>> + Send>>
        + Send
        + Sync,
>;

/// Read-through: a [`Cache`] with its loader registered, so it can also
/// refresh in the background: refresh-ahead (reload once a fraction of
/// the TTL has passed, before anyone misses) and stale-while-revalidate
/// (answer with the stale value at once while it reloads).
pub struct LoadingCache<T> {
    cache: Cache,
    loader: Loader<T>,
    refresh_ahead: Option<f64>,
    swr: bool,
    soft_timeout: Option<Duration>,
    hard_timeout: Option<Duration>,
}

impl<T> Clone for LoadingCache<T> {
    fn clone(&self) -> Self {
        LoadingCache {
            cache: self.cache.clone(),
            loader: self.loader.clone(),
            refresh_ahead: self.refresh_ahead,
            swr: self.swr,
            soft_timeout: self.soft_timeout,
            hard_timeout: self.hard_timeout,
        }
    }
}

impl<T> LoadingCache<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// Reloads in the background once `fraction` (0..1) of a value's TTL
    /// has passed.
    pub fn refresh_ahead(mut self, fraction: f64) -> Self {
        self.refresh_ahead = Some(fraction.clamp(0.0, 1.0));
        self
    }

    /// Serves a stale value (within the fail-safe grace) at once and
    /// reloads it in the background.
    pub fn stale_while_revalidate(mut self, on: bool) -> Self {
        self.swr = on;
        self
    }

    /// Loader timeouts. `soft`: when a stale value is at hand (within the
    /// fail-safe grace) and the reload takes longer, answer with the stale
    /// value and let the reload finish in the background. `hard`: give up
    /// on the loader (the fail-safe may still answer).
    pub fn timeouts(mut self, soft: Option<Duration>, hard: Option<Duration>) -> Self {
        self.soft_timeout = soft;
        self.hard_timeout = hard;
        self
    }

    /// The registered loader, bounded by the hard timeout.
    fn load(&self, key: String) -> impl Future<Output = std::result::Result<Option<T>, String>> + Send + 'static {
        let (fut, hard) = ((self.loader)(key), self.hard_timeout);
        async move {
            match hard {
                Some(h) => {
                    tokio::time::timeout(h, fut).await.unwrap_or_else(|_| Err("loader hit its hard timeout".into()))
                }
                None => fut.await,
            }
        }
    }

    pub async fn get(&self, key: &str) -> Result<Option<T>> {
        let inner = &self.cache.inner;
        if let Some((env, source)) = inner.peek(key).await? {
            let now = now_ms();
            if now < env.stale_at {
                inner.tally.note(Event::Lookup(source));
                let age = now.saturating_sub(env.born) as f64;
                let life = env.stale_at.saturating_sub(env.born).max(1) as f64;
                if self.refresh_ahead.is_some_and(|f| age >= f * life) {
                    self.spawn_refresh(key);
                }
                return decode(&env);
            }
            if self.swr && inner.within_grace(&env) {
                inner.tally.stale(false);
                inner.tally.note(Event::Lookup(Source::Stale));
                self.spawn_refresh(key);
                return decode(&env);
            }
            if let (Some(soft), true) = (self.soft_timeout, inner.within_grace(&env)) {
                let (me, k) = (self.clone(), key.to_string());
                let reload = tokio::spawn(async move { me.refresh(&k).await });
                match tokio::time::timeout(soft, reload).await {
                    Ok(_) => {}
                    Err(_) => {
                        // The reload goes on in the background.
                        inner.tally.stale(false);
                        inner.tally.note(Event::Lookup(Source::Stale));
                        return decode(&env);
                    }
                }
            }
        }
        let load = self.load(key.to_string());
        self.cache.get_or_load(key, move || load).await
    }

    /// Reloads `key` now, whatever its age (single flight applies).
    pub async fn refresh(&self, key: &str) -> Result<()> {
        let inner = &self.cache.inner;
        let load = self.load(key.to_string());
        inner.tally.note(Event::Refresh);
        inner
            .flights
            .run(key, || {
                inner.fetch(key, true, || async move {
                    match load.await {
                        Ok(Some(v)) => serde_json::to_value(v).map(Some).map_err(|e| e.to_string()),
                        Ok(None) => Ok(None),
                        Err(e) => Err(e),
                    }
                })
            })
            .await?;
        Ok(())
    }

    fn spawn_refresh(&self, key: &str) {
        if self.cache.inner.flights.in_flight(key) {
            return;
        }
        let (me, key) = (self.clone(), key.to_string());
        tokio::spawn(async move {
            if let Err(e) = me.refresh(&key).await {
                tracing::warn!("background refresh of {key} failed: {e}");
            }
        });
    }
}

/// Releases a load lease that was not used to store a value.
struct LeaseGuard {
    conn: Conn,
    key: String,
    token: u64,
    armed: bool,
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (mut conn, key, token) = (self.conn.clone(), std::mem::take(&mut self.key), self.token);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _: redis::RedisResult<i64> = scripts::release().key(key).arg(token).invoke_async(&mut conn).await;
            });
        }
    }
}

/// A two-tier cache over a Redis-protocol server. Cheap to clone.
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::Relaxed);
    }
}

impl Cache {
    /// Starts a builder over a Redis Cluster, given some of its nodes'
    /// URLs. Invalidations travel by pub/sub, which a cluster broadcasts,
    /// through the first node; L1 coherence by CLIENT TRACKING is for a
    /// single server only.
    pub fn cluster_builder(nodes: &[&str]) -> Result<CacheBuilder> {
        let first = nodes.first().ok_or_else(|| Error::Config("no cluster nodes given".into()))?;
        let mut b = Cache::builder(redis::Client::open(*first)?);
        b.cluster = Some(redis::cluster::ClusterClient::new(nodes.to_vec())?);
        Ok(b)
    }

    /// Starts a builder over `client` (any Redis-protocol server).
    pub fn builder(client: redis::Client) -> CacheBuilder {
        CacheBuilder {
            client,
            cluster: None,
            namespace: "cache".into(),
            default_ttl: Duration::from_secs(600),
            jitter: 0.1,
            negative_ttl: Duration::from_secs(30),
            l1_capacity: 10_000,
            l1_ttl: Duration::from_secs(60),
            lease_ttl: Duration::from_secs(5),
            stale_set_protection: true,
            coherence: Coherence::Channel,
            fail_safe: Duration::ZERO,
            xfetch_beta: 0.0,
        }
    }

    pub fn stats(&self) -> &Stats {
        &self.inner.tally.stats
    }

    /// Read-through: registers `loader` for this cache's keys. The result
    /// also refreshes in the background (see [`LoadingCache`]).
    pub fn read_through<T, F, Fut>(&self, loader: F) -> LoadingCache<T>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
        F: Fn(String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<Option<T>, String>> + Send + 'static,
    {
        LoadingCache {
            cache: self.clone(),
            loader: Arc::new(move |k| Box::pin(loader(k))),
            refresh_ahead: None,
            swr: false,
            soft_timeout: None,
            hard_timeout: None,
        }
    }

    /// Cache-aside: the cached value of `key`, or `load()`'s result, which
    /// is then cached (`None`, "not found", is cached for the negative TTL).
    /// Concurrent calls for one key run `load` once.
    pub async fn get_or_load<T, F, Fut, E>(&self, key: &str, load: F) -> Result<Option<T>>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<Option<T>, E>>,
        E: std::fmt::Display,
    {
        Ok(self.get_or_load_with_source(key, load).await?.value)
    }

    /// [`get_or_load`](Self::get_or_load), also saying where the answer
    /// came from (for an `X-Cache` header, say).
    pub async fn get_or_load_with_source<T, F, Fut, E>(&self, key: &str, load: F) -> Result<Lookup<T>>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<Option<T>, E>>,
        E: std::fmt::Display,
    {
        let inner = &self.inner;
        let answer = |value: &Stored, source: Source| {
            inner.tally.note(Event::Lookup(source));
            Ok(Lookup { value: decode(value)?, source })
        };
        if let Some(l1) = &inner.l1 {
            if let Some(v) = l1.get(key) {
                if !inner.expired(&v) {
                    return answer(&v, Source::L1);
                }
            }
        }
        let mut load = Some(load);
        loop {
            // A caller joining a fetch already under way must not take a
            // result from before an invalidation it came after: it notes
            // the generation now and compares.
            let joined_at = if inner.flights.in_flight(key) { Some(inner.generation(key).await?) } else { None };
            let joined = inner
                .flights
                .run(key, || {
                    let load = load.take().expect("a caller leads at most one fetch");
                    inner.fetch(key, false, || async move {
                        match load().await {
                            Ok(Some(v)) => serde_json::to_value(v).map(Some).map_err(|e| e.to_string()),
                            Ok(None) => Ok(None),
                            Err(e) => Err(e.to_string()),
                        }
                    })
                })
                .await?;
            let f = joined.fetched;
            // Someone else's fetch that loaded answered a collapsed miss.
            let source = match f.source {
                Source::Loaded if !joined.led => Source::Collapsed,
                s => s,
            };
            let usable = joined.led || (f.fresh && joined_at.as_ref().is_none_or(|g| *g == f.generation));
            if usable {
                return answer(&f.value, source);
            }
            if load.is_none() {
                // Our loader ran in an earlier round; its result was ours.
                return answer(&f.value, Source::Loaded);
            }
        }
    }

    /// Like [`get_or_load`](Self::get_or_load), and files the key under
    /// `tags` so [`invalidate_tag`](Self::invalidate_tag) can drop it.
    pub async fn get_or_load_tagged<T, F, Fut, E>(&self, key: &str, tags: &[&str], load: F) -> Result<Option<T>>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<Option<T>, E>>,
        E: std::fmt::Display,
    {
        let v = self.get_or_load(key, load).await?;
        let mut conn = self.inner.conn.clone();
        let mut pipe = redis::pipe();
        for t in tags {
            let tkey = self.inner.keys.tag(t);
            pipe.sadd(&tkey, key).ignore();
            pipe.pexpire(&tkey, (self.inner.default_ttl.as_millis() as i64) * 2).ignore();
            // A cluster pipeline goes to one node: one per tag set there.
            if conn.is_cluster() {
                pipe.query_async::<()>(&mut conn).await?;
                pipe.clear();
            }
        }
        if !conn.is_cluster() {
            pipe.query_async::<()>(&mut conn).await?;
        }
        Ok(v)
    }

    /// Delete-on-write: call after the database write commits. The key is
    /// dropped from L2 and every process's L1, and any load that started
    /// before this call will not store its (old) result.
    pub async fn invalidate(&self, key: &str) -> Result<()> {
        self.invalidate_many(&[key]).await
    }

    async fn invalidate_many(&self, keys: &[&str]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let inner = &self.inner;
        let mut conn = inner.conn.clone();
        let version = inner.version.load(Ordering::Relaxed);
        let ttl = generation_ttl_ms(inner.default_ttl);
        if conn.is_cluster() {
            // Each key on its own slot, then the numbered announcements
            // from the namespace's: no L1 hears of a key before its value
            // and generation have changed.
            for k in keys {
                let mut drop = scripts::drop_key().prepare_invoke();
                drop.key(inner.keys.value(version, k)).key(inner.keys.generation(k)).arg(ttl);
                drop.invoke_async::<()>(&mut conn).await?;
            }
            let mut announce = scripts::announce().prepare_invoke();
            announce.key(inner.keys.sequence()).arg(inner.keys.channel());
            for k in keys {
                announce.arg(*k);
            }
            announce.invoke_async::<()>(&mut conn).await?;
        } else {
            // One server: both steps in one script.
            let mut inv = scripts::invalidate().prepare_invoke();
            inv.key(inner.keys.sequence());
            for k in keys {
                inv.key(inner.keys.value(version, k)).key(inner.keys.generation(k));
            }
            inv.arg(inner.keys.channel()).arg(ttl);
            for k in keys {
                inv.arg(*k);
            }
            inv.invoke_async::<()>(&mut conn).await?;
        }
        for k in keys {
            inner.drop_l1(k).await;
        }
        Ok(())
    }

    /// Write-through: writes the store with `write`, then makes the cache
    /// hold the new value (bumping the generation, so no older load can
    /// overwrite it) and tells every L1.
    pub async fn write_through<T, F, Fut, E>(&self, key: &str, value: &T, write: F) -> Result<()>
    where
        T: Serialize,
        F: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<(), E>>,
        E: std::fmt::Display,
    {
        write().await.map_err(|e| Error::Load(e.to_string()))?;
        self.invalidate(key).await?;
        let inner = &self.inner;
        let ttl = inner.jittered(inner.default_ttl);
        let now = now_ms();
        let envelope = Envelope { v: Some(serde_json::to_value(value)?), stale_at: now + ttl, born: now, cost: 0 };
        let vkey = inner.keys.value(inner.version.load(Ordering::Relaxed), key);
        let mut conn = inner.conn.clone();
        redis::cmd("SET")
            .arg(vkey)
            .arg(serde_json::to_string(&envelope)?)
            .arg("PX")
            .arg(ttl + inner.fail_safe.as_millis() as u64)
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    /// Drops every key filed under `tag`.
    pub async fn invalidate_tag(&self, tag: &str) -> Result<()> {
        let mut conn = self.inner.conn.clone();
        let tkey = self.inner.keys.tag(tag);
        let members: Vec<String> = conn.smembers(&tkey).await?;
        let refs: Vec<&str> = members.iter().map(String::as_str).collect();
        for chunk in refs.chunks(256) {
            self.invalidate_many(chunk).await?;
        }
        conn.del::<_, ()>(&tkey).await?;
        Ok(())
    }

    /// Drops every key starting with `prefix`, walking the keyspace with
    /// SCAN (never KEYS, which would stall the server); on a cluster, on
    /// every primary in turn.
    pub async fn invalidate_prefix(&self, prefix: &str) -> Result<()> {
        let inner = &self.inner;
        let version = inner.version.load(Ordering::Relaxed);
        let head = inner.keys.value_head(version);
        let pattern = format!("{}{}*", glob_escape(&head), glob_escape(prefix));
        let mut conns = Vec::new();
        match &inner.conn {
            Conn::Single(c) => conns.push(c.clone()),
            Conn::Cluster(_) => {
                for addr in self.primaries().await? {
                    let client = redis::Client::open(format!("redis://{addr}/"))?;
                    conns.push(ConnectionManager::new(client).await?);
                }
            }
        }
        for mut conn in conns {
            let mut cursor = 0u64;
            loop {
                let (next, found): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(500)
                    .query_async(&mut conn)
                    .await?;
                let keys: Vec<&str> = found.iter().filter_map(|k| k.strip_prefix(&head)?.strip_suffix('}')).collect();
                self.invalidate_many(&keys).await?;
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(())
    }

    /// The cluster's primaries, `host:port`, from CLUSTER NODES.
    async fn primaries(&self) -> Result<Vec<String>> {
        let mut conn = self.inner.conn.clone();
        let nodes: String = redis::cmd("CLUSTER").arg("NODES").query_async(&mut conn).await?;
        Ok(nodes
            .lines()
            .filter_map(|line| {
                let f: Vec<&str> = line.split(' ').collect();
                let primary = f.get(2)?.split(',').any(|flag| flag == "master");
                let addr = f.get(1)?.split('@').next()?;
                primary.then(|| addr.to_string())
            })
            .collect())
    }

    /// Versioned namespace: every key cached so far is abandoned at once
    /// (old entries expire on their own), in this process and all others.
    pub async fn bust_namespace(&self) -> Result<()> {
        let inner = &self.inner;
        let mut conn = inner.conn.clone();
        scripts::bump_version()
            .key(inner.keys.version())
            .key(inner.keys.sequence())
            .arg(inner.keys.channel())
            .invoke_async::<()>(&mut conn)
            .await?;
        inner.refresh_version().await?;
        inner.flush_l1().await;
        Ok(())
    }
}

/// Generations outlive the values they guard (twice the TTL, at least a day).
fn generation_ttl_ms(ttl: Duration) -> u64 {
    (ttl.as_millis() as u64 * 2).max(86_400_000)
}

fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A lookup's answer and where it came from.
#[derive(Debug)]
pub struct Lookup<T> {
    /// The value, or `None` for "not found" (cached negatively).
    pub value: Option<T>,
    pub source: Source,
}

fn decode<T: DeserializeOwned>(v: &Stored) -> Result<Option<T>> {
    match &v.v {
        None => Ok(None),
        Some(json) => Ok(Some(serde_json::from_value(json.clone())?)),
    }
}
