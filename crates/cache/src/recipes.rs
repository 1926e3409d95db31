//! Recipes: the other things backends use a Redis for, each done the way
//! that stays correct under concurrency.
//!
//! - [`Sessions`]: a hash per session with a sliding TTL; each read slides
//!   it, in one MULTI with the read.
//! - [`RateLimiter`]: fixed window, sliding window (a log in a sorted
//!   set), token bucket and GCRA. Each decision is one Lua script, so two
//!   clients never both take the last slot, and time comes from the
//!   server's TIME, so clients with skewed clocks agree.
//! - [`Locks`]: `SET NX PX` with a fencing token (a per-lock counter, so a
//!   resource can refuse a holder whose lease lapsed), released and
//!   extended only by a script that checks the token.
//! - [`ListQueue`]: LMOVE from the queue to a processing list, so a
//!   consumer that dies leaves its item behind for `recover`.
//! - [`StreamQueue`]: a consumer group, with XAUTOCLAIM to take over
//!   messages a dead consumer left pending.
//! - [`Leaderboard`]: a sorted set, highest score first.
//!
//! Keys that one script or transaction uses together share a hash tag, so
//! every recipe runs on a Redis Cluster node as well as on one server.

use crate::Result;
use rand::Rng;
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

async fn connect(client: redis::Client) -> Result<ConnectionManager> {
    Ok(ConnectionManager::new(client).await?)
}

fn millis(d: Duration) -> u64 {
    d.as_millis().max(1) as u64
}

/// The server's clock in ms, for scripts (`now`).
const NOW: &str =
    "local t = redis.call('TIME')\nlocal now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n";

fn script(cell: &'static OnceLock<Script>, body: &str) -> &'static Script {
    cell.get_or_init(|| Script::new(&format!("{NOW}{body}")))
}

/// Sessions: `prefix:{id}` hashes that expire after `ttl` without a read.
#[derive(Clone)]
pub struct Sessions {
    conn: ConnectionManager,
    prefix: String,
    ttl: Duration,
}

impl Sessions {
    pub async fn new(client: redis::Client, prefix: &str, ttl: Duration) -> Result<Sessions> {
        Ok(Sessions { conn: connect(client).await?, prefix: prefix.to_string(), ttl })
    }

    fn key(&self, id: &str) -> String {
        format!("{}:{{{id}}}", self.prefix)
    }

    /// Creates a session holding `fields`; returns its id (128 random bits).
    pub async fn create(&self, fields: &[(&str, &str)]) -> Result<String> {
        let id = format!("{:032x}", rand::rng().random::<u128>());
        let key = self.key(&id);
        let mut pipe = redis::pipe();
        pipe.atomic().hset_multiple(&key, fields).ignore().pexpire(&key, millis(self.ttl) as i64).ignore();
        pipe.query_async::<()>(&mut self.conn.clone()).await?;
        Ok(id)
    }

    /// The session's fields, sliding its expiry; None once it expired.
    pub async fn get(&self, id: &str) -> Result<Option<HashMap<String, String>>> {
        let key = self.key(id);
        let (fields, _): (HashMap<String, String>, i64) = redis::pipe()
            .atomic()
            .hgetall(&key)
            .pexpire(&key, millis(self.ttl) as i64)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok((!fields.is_empty()).then_some(fields))
    }

    /// Sets one field of a live session (false if it expired).
    pub async fn set(&self, id: &str, field: &str, value: &str) -> Result<bool> {
        let key = self.key(id);
        let (alive,): (bool,) = redis::pipe()
            .atomic()
            .exists(&key)
            .cmd("HSET")
            .arg(&key)
            .arg(field)
            .arg(value)
            .ignore()
            .pexpire(&key, millis(self.ttl) as i64)
            .ignore()
            .query_async(&mut self.conn.clone())
            .await?;
        if !alive {
            // The HSET above made a fieldless ghost: remove it.
            self.conn.clone().del::<_, ()>(&key).await?;
        }
        Ok(alive)
    }

    pub async fn destroy(&self, id: &str) -> Result<bool> {
        Ok(self.conn.clone().del::<_, i64>(self.key(id)).await? == 1)
    }
}

/// A rate-limiting rule.
#[derive(Debug, Clone, Copy)]
pub enum Limit {
    /// At most `limit` per `window`, counted from the window's first request.
    FixedWindow { limit: u64, window: Duration },
    /// At most `limit` in any `window` (an exact log of request times).
    SlidingWindow { limit: u64, window: Duration },
    /// Bursts up to `capacity`, refilled at `per_second` tokens a second.
    TokenBucket { capacity: u64, per_second: f64 },
    /// `rate` requests per `period`, evenly spaced, with bursts of `burst`
    /// (the generic cell rate algorithm: one timestamp per key).
    Gcra { rate: u64, period: Duration, burst: u64 },
}

/// A rate limiter's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Requests left right now.
    pub remaining: u64,
    /// When denied, how long until a request would pass (Retry-After).
    pub retry_after: Duration,
}

#[derive(Clone)]
pub struct RateLimiter {
    conn: ConnectionManager,
    prefix: String,
    limit: Limit,
}

static FIXED: OnceLock<Script> = OnceLock::new();
static SLIDING: OnceLock<Script> = OnceLock::new();
static BUCKET: OnceLock<Script> = OnceLock::new();
static GCRA: OnceLock<Script> = OnceLock::new();

impl RateLimiter {
    pub async fn new(client: redis::Client, prefix: &str, limit: Limit) -> Result<RateLimiter> {
        Ok(RateLimiter { conn: connect(client).await?, prefix: prefix.to_string(), limit })
    }

    /// Takes one request for `who` if the rule allows it.
    pub async fn check(&self, who: &str) -> Result<Decision> {
        let key = format!("{}:{{{who}}}", self.prefix);
        let mut conn = self.conn.clone();
        let (allowed, remaining, retry): (i64, i64, i64) = match self.limit {
            Limit::FixedWindow { limit, window } => {
                // ARGV: limit, window ms. Returns allowed, remaining, retry ms.
                let s = script(
                    &FIXED,
                    r#"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
local limit = tonumber(ARGV[1])
if n <= limit then return {1, limit - n, 0} end
return {0, 0, redis.call('PTTL', KEYS[1])}
"#,
                );
                s.key(&key).arg(limit).arg(millis(window)).invoke_async(&mut conn).await?
            }
            Limit::SlidingWindow { limit, window } => {
                // ARGV: limit, window ms, a unique member.
                let s = script(
                    &SLIDING,
                    r#"
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
if n < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return {1, limit - n - 1, 0}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, 0, math.max(1, tonumber(oldest[2]) + window - now)}
"#,
                );
                let member = format!("{:x}", rand::rng().random::<u64>());
                s.key(&key).arg(limit).arg(millis(window)).arg(member).invoke_async(&mut conn).await?
            }
            Limit::TokenBucket { capacity, per_second } => {
                // ARGV: capacity, tokens per ms.
                let s = script(
                    &BUCKET,
                    r#"
local cap = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1]) or cap
local ts = tonumber(b[2]) or now
tokens = math.min(cap, tokens + math.max(0, now - ts) * rate)
local allowed, retry = 0, 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  retry = math.ceil((1 - tokens) / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(cap / rate) + 1000)
return {allowed, math.floor(tokens), retry}
"#,
                );
                let per_ms = per_second / 1000.0;
                s.key(&key).arg(capacity).arg(per_ms).invoke_async(&mut conn).await?
            }
            Limit::Gcra { rate, period, burst } => {
                // ARGV: emission interval ms, burst. The key holds the
                // theoretical arrival time (TAT).
                let s = script(
                    &GCRA,
                    r#"
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tolerance = interval * (burst - 1)
local tat = math.max(tonumber(redis.call('GET', KEYS[1])) or now, now)
if tat - now > tolerance then
  return {0, 0, math.ceil(tat - now - tolerance)}
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil(new_tat - now) + 1)
return {1, math.floor((tolerance + interval - (new_tat - now)) / interval), 0}
"#,
                );
                let interval = period.as_secs_f64() * 1000.0 / rate.max(1) as f64;
                s.key(&key).arg(interval).arg(burst.max(1)).invoke_async(&mut conn).await?
            }
        };
        Ok(Decision {
            allowed: allowed == 1,
            remaining: remaining.max(0) as u64,
            retry_after: Duration::from_millis(retry.max(0) as u64),
        })
    }
}

/// Distributed locks with fencing tokens.
#[derive(Clone)]
pub struct Locks {
    conn: ConnectionManager,
    prefix: String,
}

/// A held lock. Pass `fence` to the resource you guard: tokens only grow,
/// so the resource can refuse a holder whose lock expired and was taken.
#[derive(Debug)]
pub struct Lock {
    pub name: String,
    pub fence: u64,
}

static ACQUIRE: OnceLock<Script> = OnceLock::new();
static EXTEND: OnceLock<Script> = OnceLock::new();

impl Locks {
    pub async fn new(client: redis::Client, prefix: &str) -> Result<Locks> {
        Ok(Locks { conn: connect(client).await?, prefix: prefix.to_string() })
    }

    fn keys(&self, name: &str) -> (String, String) {
        (format!("{}:lock:{{{name}}}", self.prefix), format!("{}:fence:{{{name}}}", self.prefix))
    }

    /// Takes the lock for `ttl` if it is free.
    pub async fn try_acquire(&self, name: &str, ttl: Duration) -> Result<Option<Lock>> {
        let (lock, fence) = self.keys(name);
        // KEYS: lock, fence counter. ARGV: ttl ms. Returns the token or 0.
        let s = ACQUIRE.get_or_init(|| {
            Script::new(
                r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], token, 'PX', ARGV[1])
return token
"#,
            )
        });
        let token: u64 = s.key(lock).key(fence).arg(millis(ttl)).invoke_async(&mut self.conn.clone()).await?;
        Ok((token > 0).then(|| Lock { name: name.to_string(), fence: token }))
    }

    /// Releases the lock if this holder still has it (never someone else's).
    pub async fn release(&self, lock: &Lock) -> Result<bool> {
        let (key, _) = self.keys(&lock.name);
        let n: i64 = crate::scripts::release().key(key).arg(lock.fence).invoke_async(&mut self.conn.clone()).await?;
        Ok(n == 1)
    }

    /// Extends the lock to `ttl` from now if this holder still has it.
    pub async fn extend(&self, lock: &Lock, ttl: Duration) -> Result<bool> {
        let (key, _) = self.keys(&lock.name);
        let s = EXTEND.get_or_init(|| {
            Script::new(
                r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"#,
            )
        });
        let n: i64 = s.key(key).arg(lock.fence).arg(millis(ttl)).invoke_async(&mut self.conn.clone()).await?;
        Ok(n == 1)
    }
}

/// A reliable queue on lists: items move to a processing list while a
/// consumer works on them and leave it when acknowledged.
#[derive(Clone)]
pub struct ListQueue {
    conn: ConnectionManager,
    queue: String,
    processing: String,
}

impl ListQueue {
    pub async fn new(client: redis::Client, name: &str) -> Result<ListQueue> {
        Ok(ListQueue {
            conn: connect(client).await?,
            queue: format!("{{{name}}}:queue"),
            processing: format!("{{{name}}}:processing"),
        })
    }

    pub async fn push(&self, item: &str) -> Result<()> {
        Ok(self.conn.clone().lpush(&self.queue, item).await?)
    }

    /// The oldest item, now in the processing list; None if the queue is
    /// empty (after waiting up to `wait`, if not zero).
    pub async fn take(&self, wait: Duration) -> Result<Option<String>> {
        let mut conn = self.conn.clone();
        let cmd = if wait.is_zero() {
            redis::cmd("LMOVE").arg(&self.queue).arg(&self.processing).arg("RIGHT").arg("LEFT").clone()
        } else {
            redis::cmd("BLMOVE")
                .arg(&self.queue)
                .arg(&self.processing)
                .arg("RIGHT")
                .arg("LEFT")
                .arg(wait.as_secs_f64())
                .clone()
        };
        Ok(cmd.query_async(&mut conn).await?)
    }

    /// Done with `item`: it leaves the processing list.
    pub async fn ack(&self, item: &str) -> Result<bool> {
        Ok(self.conn.clone().lrem::<_, _, i64>(&self.processing, 1, item).await? == 1)
    }

    /// After a consumer crash: everything still in processing goes back
    /// to the front of the queue, oldest first. Returns how many.
    pub async fn recover(&self) -> Result<u64> {
        let mut conn = self.conn.clone();
        let mut moved = 0;
        while redis::cmd("LMOVE")
            .arg(&self.processing)
            .arg(&self.queue)
            .arg("LEFT")
            .arg("RIGHT")
            .query_async::<Option<String>>(&mut conn)
            .await?
            .is_some()
        {
            moved += 1;
        }
        Ok(moved)
    }

    /// (waiting, in processing)
    pub async fn lens(&self) -> Result<(u64, u64)> {
        let mut conn = self.conn.clone();
        Ok((conn.llen(&self.queue).await?, conn.llen(&self.processing).await?))
    }
}

/// A message taken from a [`StreamQueue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: String,
    pub body: String,
}

/// A reliable queue on a stream with a consumer group.
#[derive(Clone)]
pub struct StreamQueue {
    conn: ConnectionManager,
    stream: String,
    group: String,
}

fn messages(entries: Vec<redis::streams::StreamId>) -> Vec<Message> {
    entries.into_iter().map(|e| Message { body: e.get::<String>("body").unwrap_or_default(), id: e.id }).collect()
}

impl StreamQueue {
    /// Opens (creating if needed) `stream` with consumer group `group`.
    pub async fn new(client: redis::Client, stream: &str, group: &str) -> Result<StreamQueue> {
        let mut conn = connect(client).await?;
        crate::write_behind::ensure_group(&mut conn, stream, group).await?;
        Ok(StreamQueue { conn, stream: stream.to_string(), group: group.to_string() })
    }

    pub async fn push(&self, body: &str) -> Result<String> {
        Ok(self.conn.clone().xadd(&self.stream, "*", &[("body", body)]).await?)
    }

    /// Up to `count` new messages for `consumer`; they stay pending until acked.
    pub async fn take(&self, consumer: &str, count: usize) -> Result<Vec<Message>> {
        let opts = redis::streams::StreamReadOptions::default().group(&self.group, consumer).count(count);
        let reply: Option<redis::streams::StreamReadReply> =
            self.conn.clone().xread_options(&[&self.stream], &[">"], &opts).await?;
        Ok(reply.map(|r| r.keys.into_iter().flat_map(|k| messages(k.ids)).collect()).unwrap_or_default())
    }

    pub async fn ack(&self, id: &str) -> Result<bool> {
        Ok(self.conn.clone().xack::<_, _, _, i64>(&self.stream, &self.group, &[id]).await? == 1)
    }

    /// Takes over, for `consumer`, up to `count` messages other consumers
    /// left pending for at least `min_idle` (they crashed or hang).
    pub async fn reclaim(&self, consumer: &str, min_idle: Duration, count: usize) -> Result<Vec<Message>> {
        let reply: redis::streams::StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
            .arg(&self.stream)
            .arg(&self.group)
            .arg(consumer)
            .arg(millis(min_idle))
            .arg("0-0")
            .arg("COUNT")
            .arg(count)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(messages(reply.claimed))
    }

    /// Messages taken and not yet acknowledged, across consumers.
    pub async fn pending(&self) -> Result<u64> {
        let reply: redis::streams::StreamPendingReply = self.conn.clone().xpending(&self.stream, &self.group).await?;
        Ok(reply.count() as u64)
    }
}

/// A leaderboard: members by score, highest first.
#[derive(Clone)]
pub struct Leaderboard {
    conn: ConnectionManager,
    key: String,
}

impl Leaderboard {
    pub async fn new(client: redis::Client, key: &str) -> Result<Leaderboard> {
        Ok(Leaderboard { conn: connect(client).await?, key: key.to_string() })
    }

    /// Sets a member's score.
    pub async fn set(&self, member: &str, score: f64) -> Result<()> {
        Ok(self.conn.clone().zadd(&self.key, member, score).await?)
    }

    /// Adds to a member's score; returns the new score.
    pub async fn add(&self, member: &str, by: f64) -> Result<f64> {
        Ok(self.conn.clone().zincr(&self.key, member, by).await?)
    }

    /// The best `n`, with scores.
    pub async fn top(&self, n: usize) -> Result<Vec<(String, f64)>> {
        Ok(self.conn.clone().zrevrange_withscores(&self.key, 0, n as isize - 1).await?)
    }

    /// A member's 0-based rank from the top, and score.
    pub async fn rank(&self, member: &str) -> Result<Option<(u64, f64)>> {
        let mut conn = self.conn.clone();
        let rank: Option<u64> = conn.zrevrank(&self.key, member).await?;
        let score: Option<f64> = conn.zscore(&self.key, member).await?;
        Ok(rank.zip(score))
    }

    /// The members ranked within `radius` places of `member`, best first.
    pub async fn around(&self, member: &str, radius: u64) -> Result<Vec<(String, f64)>> {
        let mut conn = self.conn.clone();
        let Some(rank) = conn.zrevrank::<_, _, Option<u64>>(&self.key, member).await? else { return Ok(Vec::new()) };
        let start = rank.saturating_sub(radius) as isize;
        Ok(conn.zrevrange_withscores(&self.key, start, (rank + radius) as isize).await?)
    }
}
