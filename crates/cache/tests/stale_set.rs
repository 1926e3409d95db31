//! "Never stale after a write", against a real PostgreSQL: writers update
//! rows and invalidate, readers go through the cache while loaders are
//! slowed to widen every race window. From the recorded history, no read
//! may return a value older than a write that completed before the read
//! began. (tests/cache.rs shows, step by step, that without generation
//! tokens this race does leave a stale value behind.)

use larder_cache::Cache;
use larder_testkit::{spawn_server, PgServer};
use rand::Rng;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_postgres::NoTls;

const KEYS: i32 = 3;

struct Read {
    key: i32,
    start: Instant,
    value: i64,
}

struct Write {
    key: i32,
    done: Instant,
    value: i64,
}

async fn pg(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.expect("connect to PostgreSQL");
    tokio::spawn(conn);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_read_is_older_than_a_write_completed_before_it() {
    let Some(db) = PgServer::start() else { return };
    let server = spawn_server();
    let setup = pg(&db.url()).await;
    setup
        .batch_execute("CREATE TABLE kv (k int PRIMARY KEY, v bigint NOT NULL); INSERT INTO kv SELECT g, 0 FROM generate_series(1, 3) g")
        .await
        .unwrap();
    let redis_client = redis::Client::open(format!("redis://{}/", server.addr)).unwrap();
    // One cache with an L1 (readers and writers of this process share it)
    // and one without (another process, talking to L2 only).
    let with_l1 = Cache::builder(redis_client.clone()).namespace("kv").build().await.unwrap();
    let l2_only = Cache::builder(redis_client).namespace("kv").l1_capacity(0).build().await.unwrap();
    let reads = Arc::new(parking_lot::Mutex::new(Vec::<Read>::new()));
    let writes = Arc::new(parking_lot::Mutex::new(Vec::<Write>::new()));
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut tasks = Vec::new();
    for w in 0..2 {
        let (url, cache, writes) = (db.url(), with_l1.clone(), writes.clone());
        tasks.push(tokio::spawn(async move {
            let client = pg(&url).await;
            while Instant::now() < deadline {
                let key = rand::rng().random_range(1..=KEYS);
                let row = client.query_one("UPDATE kv SET v = v + 1 WHERE k = $1 RETURNING v", &[&key]).await.unwrap();
                cache.invalidate(&format!("kv:{key}")).await.unwrap();
                writes.lock().push(Write { key, done: Instant::now(), value: row.get(0) });
                tokio::time::sleep(Duration::from_micros(200 * (w + 1))).await;
            }
        }));
    }
    for r in 0..4 {
        let (url, reads) = (db.url(), reads.clone());
        let cache = if r % 2 == 0 { with_l1.clone() } else { l2_only.clone() };
        tasks.push(tokio::spawn(async move {
            let client = pg(&url).await;
            while Instant::now() < deadline {
                let key = rand::rng().random_range(1..=KEYS);
                let start = Instant::now();
                let value: Option<i64> = cache
                    .get_or_load(&format!("kv:{key}"), || async {
                        let row = client
                            .query_one("SELECT v FROM kv WHERE k = $1", &[&key])
                            .await
                            .map_err(|e| e.to_string())?;
                        // Hold the old row a while: a write now lands in the window.
                        let pause = rand::rng().random_range(0..2000);
                        tokio::time::sleep(Duration::from_micros(pause)).await;
                        Ok::<_, String>(Some(row.get::<_, i64>(0)))
                    })
                    .await
                    .unwrap();
                reads.lock().push(Read { key, start, value: value.expect("every row exists") });
                // An L1 hit never waits, so without this four readers
                // on two workers starve the writers: a busy CI run got
                // 111 writes in the 3 s, short of the history checked.
                tokio::task::yield_now().await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let (reads, writes) = (reads.lock(), writes.lock());
    assert!(reads.len() > 200 && writes.len() > 200, "enough history: {} reads, {} writes", reads.len(), writes.len());
    let mut stale = Vec::new();
    for r in reads.iter() {
        let newest_before = writes.iter().filter(|w| w.key == r.key && w.done < r.start).map(|w| w.value).max();
        if let Some(v) = newest_before {
            if r.value < v {
                stale.push((r.key, r.value, v));
            }
        }
    }
    let prevented = with_l1.stats().stale_sets_prevented.load(std::sync::atomic::Ordering::Relaxed)
        + l2_only.stats().stale_sets_prevented.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("{} reads, {} writes, {} stale sets prevented", reads.len(), writes.len(), prevented);
    assert!(
        stale.is_empty(),
        "{} reads older than a completed write, e.g. {:?}",
        stale.len(),
        &stale[..stale.len().min(5)]
    );
}
