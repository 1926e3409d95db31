//! Write-behind against a real PostgreSQL: every acknowledged write is
//! applied exactly once, through failed flushes (redelivery) and a crashed
//! flusher (replay by its successor), thanks to the per-job idempotency
//! key. The view-counter shape is the one larder-demo uses.

use larder_cache::{Job, WriteBehind, WriteBehindOptions};
use larder_testkit::{spawn_server, PgServer};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio_postgres::NoTls;

async fn pg(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.expect("connect to PostgreSQL");
    tokio::spawn(conn);
    client
}

/// Applies view increments in one transaction, skipping jobs already
/// applied (their stream id is in `applied`).
async fn apply(db: &Mutex<tokio_postgres::Client>, batch: &[Job]) -> Result<(), String> {
    let mut db = db.lock().await;
    let tx = db.transaction().await.map_err(|e| e.to_string())?;
    for job in batch {
        let fresh = tx
            .execute("INSERT INTO applied (id) VALUES ($1) ON CONFLICT DO NOTHING", &[&job.id])
            .await
            .map_err(|e| e.to_string())?;
        if fresh == 1 {
            let page: String = serde_json::from_str(&job.payload).map_err(|e| e.to_string())?;
            tx.execute("UPDATE views SET n = n + 1 WHERE page = $1", &[&page]).await.map_err(|e| e.to_string())?;
        }
    }
    tx.commit().await.map_err(|e| e.to_string())
}

async fn setup(url: &str) -> Arc<Mutex<tokio_postgres::Client>> {
    let db = pg(url).await;
    db.batch_execute(
        "CREATE TABLE views (page text PRIMARY KEY, n bigint NOT NULL);
         CREATE TABLE applied (id text PRIMARY KEY);
         INSERT INTO views SELECT 'p' || g, 0 FROM generate_series(0, 4) g;",
    )
    .await
    .unwrap();
    Arc::new(Mutex::new(db))
}

async fn counts(db: &Mutex<tokio_postgres::Client>) -> Vec<i64> {
    let rows = db.lock().await.query("SELECT n FROM views ORDER BY page", &[]).await.unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

async fn wait_applied(db: &Mutex<tokio_postgres::Client>, total: i64) {
    for _ in 0..3000 {
        if counts(db).await.iter().sum::<i64>() >= total {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("not all writes were applied: {:?}", counts(db).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_flushes_are_retried_and_applied_once() {
    let Some(pgs) = PgServer::start() else { return };
    let server = spawn_server();
    let db = setup(&pgs.url()).await;
    let client = redis::Client::open(format!("redis://{}/", server.addr)).unwrap();
    // Every third flush commits and then reports failure, as a lost
    // acknowledgement would: the batch comes back and must not count twice.
    let calls = Arc::new(AtomicU64::new(0));
    let flusher = {
        let (db, calls) = (db.clone(), calls.clone());
        WriteBehind::start(client, "views", WriteBehindOptions { batch: 50, ..Default::default() }, move |batch| {
            let (db, calls) = (db.clone(), calls.clone());
            async move {
                apply(&db, &batch).await?;
                if calls.fetch_add(1, Ordering::SeqCst) % 3 == 0 {
                    return Err("acknowledgement lost".into());
                }
                Ok(())
            }
        })
        .await
        .unwrap()
    };
    for i in 0..500 {
        flusher.enqueue(&format!("p{}", i % 5)).await.unwrap();
    }
    wait_applied(&db, 500).await;
    assert_eq!(counts(&db).await, vec![100; 5]);
    assert!(flusher.stats.retries.load(Ordering::SeqCst) > 0, "some batches were retried");
    for _ in 0..1000 {
        if flusher.backlog().await.unwrap() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(flusher.backlog().await.unwrap(), 0, "acknowledged jobs leave the stream");
    flusher.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_flusher_is_replaced_without_losing_or_doubling_writes() {
    let Some(pgs) = PgServer::start() else { return };
    let server = spawn_server();
    let db = setup(&pgs.url()).await;
    let client = redis::Client::open(format!("redis://{}/", server.addr)).unwrap();
    let opts = WriteBehindOptions { batch: 20, ..Default::default() };
    // The first flusher is slow, so the crash finds work in flight.
    let first = {
        let db = db.clone();
        WriteBehind::start(client.clone(), "views", opts.clone(), move |batch| {
            let db = db.clone();
            async move {
                apply(&db, &batch).await?;
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok(())
            }
        })
        .await
        .unwrap()
    };
    for i in 0..300 {
        first.enqueue(&format!("p{}", i % 5)).await.unwrap();
    }
    while counts(&db).await.iter().sum::<i64>() < 40 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    first.abort();
    let before = counts(&db).await.iter().sum::<i64>();
    assert!(before < 300, "the crash left work to do ({before} applied)");
    // Same consumer name: it replays its pending jobs first.
    let second = {
        let db = db.clone();
        WriteBehind::start(client, "views", opts, move |batch| {
            let db = db.clone();
            async move { apply(&db, &batch).await }
        })
        .await
        .unwrap()
    };
    wait_applied(&db, 300).await;
    assert_eq!(counts(&db).await, vec![60; 5], "every write applied exactly once");
    second.stop().await;
}
