//! larder-cache's target figures, measured:
//!
//! 1. An L1 hit: nanoseconds per `get_or_load` of a warm key.
//! 2. An L2 hit (L1 off) against a bare GET of the same bytes through the
//!    same kind of connection: median and p99 of each, and the ratio.
//! 3. A stampede: a hot key invalidated, then N concurrent requests for it
//!    in each of P processes at the same instant; the "database" counts
//!    its loads on the server (INCR), so every process's loads add up.
//!
//! `cargo run --release -p larder-cache --example bench [redis://host:port]`
//! (an in-process Larder when no URL is given; the stampede's child
//! processes connect to it by URL). Prints as it goes.

use larder_cache::Cache;
use redis::AsyncCommands;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const PROCESSES: usize = 4;
const PER_PROCESS: usize = 250;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

async fn cache(url: &str, l1: bool) -> Cache {
    let b = Cache::builder(redis::Client::open(url).unwrap()).namespace("bench");
    let b = if l1 { b } else { b.l1_capacity(0) };
    b.build().await.unwrap()
}

/// The stampede's child: waits for `at_ms`, then fires its requests.
async fn child(url: &str, at_ms: u64) {
    let cache = cache(url, true).await;
    let client = redis::Client::open(url).unwrap();
    let wait = at_ms.saturating_sub(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64);
    tokio::time::sleep(Duration::from_millis(wait)).await;
    let mut tasks = Vec::new();
    for _ in 0..PER_PROCESS {
        let (cache, client) = (cache.clone(), client.clone());
        tasks.push(tokio::spawn(async move {
            cache
                .get_or_load::<String, _, _, String>("hot", || async move {
                    // The database: counted on the server, slow enough that
                    // every request arrives while it runs.
                    let mut conn = client.get_multiplexed_async_connection().await.map_err(|e| e.to_string())?;
                    let _: i64 = conn.incr("bench:db-loads", 1).await.map_err(|e| e.to_string())?;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Ok(Some("row".to_string()))
                })
                .await
                .unwrap()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().as_deref(), Some("row"));
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "child") {
        child(&args[1], args[2].parse().unwrap()).await;
        return;
    }
    let embedded;
    let url = match args.first() {
        Some(url) => url.clone(),
        None => {
            embedded = larder_testkit::spawn_server();
            format!("redis://{}/", embedded.addr)
        }
    };

    // 1. L1 hits.
    let c = cache(&url, true).await;
    c.get_or_load::<String, _, _, String>("warm", || async { Ok(Some("x".repeat(100))) }).await.unwrap();
    let mut per_op = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        for _ in 0..1000 {
            let v = c.get_or_load::<String, _, _, String>("warm", || async { Ok(None) }).await.unwrap();
            std::hint::black_box(v);
        }
        per_op.push(t.elapsed().as_nanos() as f64 / 1000.0);
    }
    per_op.sort_by(f64::total_cmp);
    println!(
        "L1 hit: median {:.0} ns, p99 {:.0} ns (batches of 1000; target < 1 µs)",
        percentile(&per_op, 0.5),
        percentile(&per_op, 0.99)
    );

    // 2. L2 hits against a bare GET of the same payload.
    let l2 = cache(&url, false).await;
    l2.get_or_load::<String, _, _, String>("warm", || async { Ok(Some("x".repeat(100))) }).await.unwrap();
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut bare = redis::aio::ConnectionManager::new(client.clone()).await.unwrap();
    let payload: String = bare.get("bench:v0:{warm}").await.unwrap();
    let _: () = bare.set("bench:bare", &payload).await.unwrap();
    let (mut l2_times, mut get_times) = (Vec::new(), Vec::new());
    for round in 0..20_000 {
        // Alternate so both see the same machine noise.
        if round % 2 == 0 {
            let t = Instant::now();
            let v = l2.get_or_load::<String, _, _, String>("warm", || async { Ok(None) }).await.unwrap();
            l2_times.push(t.elapsed().as_nanos() as f64 / 1000.0);
            std::hint::black_box(v);
        } else {
            let t = Instant::now();
            let v: Option<String> = bare.get("bench:bare").await.unwrap();
            get_times.push(t.elapsed().as_nanos() as f64 / 1000.0);
            std::hint::black_box(v);
        }
    }
    l2_times.sort_by(f64::total_cmp);
    get_times.sort_by(f64::total_cmp);
    let (l2_50, get_50) = (percentile(&l2_times, 0.5), percentile(&get_times, 0.5));
    println!(
        "L2 hit: median {:.1} µs, p99 {:.1} µs; bare GET: median {:.1} µs, p99 {:.1} µs; median ratio {:.2} (target ≤ 1.1)",
        l2_50,
        percentile(&l2_times, 0.99),
        get_50,
        percentile(&get_times, 0.99),
        l2_50 / get_50
    );

    // 3. The stampede across processes.
    c.invalidate("hot").await.unwrap();
    let _: () = bare.del("bench:db-loads").await.unwrap();
    let at = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64 + 1500;
    let me = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| std::process::Command::new(&me).args(["child", &url, &at.to_string()]).spawn().unwrap())
        .collect();
    for mut ch in children {
        assert!(ch.wait().unwrap().success(), "a stampede process failed");
    }
    let loads: i64 = bare.get("bench:db-loads").await.unwrap();
    println!(
        "stampede: {} concurrent requests across {PROCESSES} processes for one invalidated key: {loads} database load{}",
        PROCESSES * PER_PROCESS,
        if loads == 1 { "" } else { "s" }
    );
}
