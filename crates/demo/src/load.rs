//! The load generator: the same read-heavy mix (98% GET of a skewed user,
//! 2% PUT) run with the cache bypassed and then with it (after an
//! unmeasured warm-up, so cold misses do not dominate a short run),
//! printing a live progress line and, at the end, database queries per
//! second, hit ratio and p50/p99 latency side by side.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A keep-alive HTTP/1.1 connection that sends one request at a time.
struct Http {
    stream: BufReader<TcpStream>,
}

impl Http {
    async fn connect(addr: &str) -> anyhow::Result<Http> {
        Ok(Http { stream: BufReader::new(TcpStream::connect(addr).await?) })
    }

    async fn request(&mut self, method: &str, path: &str, body: &str, bypass: bool) -> anyhow::Result<u16> {
        let extra = if bypass { "X-Cache-Bypass: 1\r\n" } else { "" };
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: demo\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.stream.get_mut().write_all(req.as_bytes()).await?;
        let mut line = String::new();
        self.stream.read_line(&mut line).await?;
        let status = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let mut len = 0usize;
        loop {
            line.clear();
            self.stream.read_line(&mut line).await?;
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; len];
        self.stream.read_exact(&mut body).await?;
        Ok(status)
    }
}

/// Share of requests that are reads.
const READ_SHARE: f64 = 0.98;

/// What one phase measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Phase {
    pub label: &'static str,
    pub requests: u64,
    pub gets: u64,
    pub db_queries: u64,
    pub seconds: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Phase {
    /// Requests answered without a database query.
    pub fn hit_ratio(&self) -> f64 {
        if self.gets == 0 {
            0.0
        } else {
            1.0 - (self.db_queries as f64 / self.requests as f64).min(1.0)
        }
    }

    pub fn db_qps(&self) -> f64 {
        self.db_queries as f64 / self.seconds
    }
}

/// Both phases, and the database load per request with the cache over
/// without it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Comparison {
    pub off: Phase,
    pub on: Phase,
    pub ratio: f64,
}

async fn db_queries(addr: &str) -> anyhow::Result<u64> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(b"GET /stats HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n").await?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).await?;
    let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let v: serde_json::Value = serde_json::from_str(body)?;
    Ok(v["db_queries"].as_u64().unwrap_or(0))
}

/// A user id with a hot head: a few users take most requests, as in
/// real traffic.
fn skewed_user(users: u32) -> u32 {
    let r: f64 = rand_unit();
    1 + ((users as f64) * r.powi(4)) as u32 % users
}

fn rand_unit() -> f64 {
    use std::cell::Cell;
    thread_local!(static STATE: Cell<u64> = Cell::new(0x9E37_79B9_7F4A_7C15 ^ std::process::id() as u64));
    STATE.with(|s| {
        // xorshift64*: fast, and good enough for picking keys.
        let mut x = s.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    })
}

pub async fn run_phase(
    addr: &str,
    label: &'static str,
    bypass: bool,
    seconds: u64,
    workers: usize,
) -> anyhow::Result<Phase> {
    let before = db_queries(addr).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let (requests, gets) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (addr, stop, requests, gets) = (addr.to_string(), stop.clone(), requests.clone(), gets.clone());
        tasks.push(tokio::spawn(async move {
            let mut http = Http::connect(&addr).await?;
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let id = skewed_user(10_000);
                let started = Instant::now();
                if rand_unit() < READ_SHARE {
                    http.request("GET", &format!("/users/{id}"), "", bypass).await?;
                    gets.fetch_add(1, Ordering::Relaxed);
                } else {
                    let body = format!(r#"{{"name":"user {id} v{}"}}"#, requests.load(Ordering::Relaxed));
                    http.request("PUT", &format!("/users/{id}"), &body, bypass).await?;
                }
                latencies.push(started.elapsed().as_micros() as u64);
                requests.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(latencies)
        }));
    }
    let started = Instant::now();
    let total = Duration::from_secs(seconds);
    while started.elapsed() < total {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let done = (started.elapsed().as_secs_f64() / total.as_secs_f64()).min(1.0);
        let bar: String = (0..30).map(|i| if (i as f64) < done * 30.0 { '#' } else { '-' }).collect();
        let rps = requests.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
        eprint!("\r  {label:<10} [{bar}] {:>5.1}s  {rps:>8.0} req/s", started.elapsed().as_secs_f64());
    }
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await??);
    }
    eprintln!();
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    Ok(Phase {
        label,
        requests: requests.load(Ordering::Relaxed),
        gets: gets.load(Ordering::Relaxed),
        db_queries: db_queries(addr).await? - before,
        seconds,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
    })
}

/// Runs both phases and prints the comparison.
pub async fn compare(addr: &str, seconds: u64, workers: usize) -> anyhow::Result<Comparison> {
    eprintln!("load: {workers} workers, {seconds} s per phase, 98% GET /users/{{skewed id}}, 2% PUT");
    let off = run_phase(addr, "cache off", true, seconds, workers).await?;
    run_phase(addr, "warm-up", false, (seconds / 3).max(1), workers).await?;
    let on = run_phase(addr, "cache on", false, seconds, workers).await?;
    println!("{:<10} {:>10} {:>12} {:>10} {:>9} {:>9}", "", "req/s", "db queries/s", "hit ratio", "p50 ms", "p99 ms");
    for p in [&off, &on] {
        println!(
            "{:<10} {:>10.0} {:>12.0} {:>10.3} {:>9.2} {:>9.2}",
            p.label,
            p.requests as f64 / p.seconds,
            p.db_qps(),
            p.hit_ratio(),
            p.p50_ms,
            p.p99_ms
        );
    }
    // Database load per request served, with the cache over without.
    let per = |p: &Phase| p.db_queries as f64 / p.requests.max(1) as f64;
    let ratio = per(&on) / per(&off).max(f64::MIN_POSITIVE);
    println!("database load with the cache / without (per request): {ratio:.3}");
    Ok(Comparison { off, on, ratio })
}

/// The stampede scenario: drop one hot key, then fire `n` concurrent
/// requests for it at once. Returns how many database queries they cost
/// (single flight plus the lease make it one).
pub async fn stampede(addr: &str, n: usize) -> anyhow::Result<u64> {
    let mut http = Http::connect(addr).await?;
    http.request("GET", "/users/42", "", false).await?;
    http.request("DELETE", "/cache/users/42", "", false).await?;
    let before = db_queries(addr).await?;
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let mut tasks = Vec::new();
    for _ in 0..n {
        let (addr, barrier) = (addr.to_string(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let mut http = Http::connect(&addr).await?;
            barrier.wait().await;
            http.request("GET", "/users/42", "", false).await
        }));
    }
    for t in tasks {
        let status = t.await??;
        anyhow::ensure!(status == 200, "a stampede request failed: {status}");
    }
    let cost = db_queries(addr).await? - before;
    println!(
        "stampede: {n} concurrent misses of one key cost {cost} database quer{}",
        if cost == 1 { "y" } else { "ies" }
    );
    Ok(cost)
}
