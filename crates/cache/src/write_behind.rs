//! Write-behind: writes are acknowledged once they are in a server-side
//! stream, and a background flusher applies them to the database in
//! batches.
//!
//! - `enqueue` returns after XADD: the write is as durable as the server
//!   makes its data. That is the loss window: a server that loses its
//!   stream (no persistence, or `appendfsync everysec` and a crash) loses
//!   the writes queued there. Nothing acknowledged is lost by the
//!   application side.
//! - The flusher reads with XREADGROUP, hands a batch to the user's
//!   function, and XACKs (then XDELs) only after it returns Ok. A failed
//!   batch stays pending and is retried with backoff, so delivery is at
//!   least once; each job carries its stream entry id, which the database
//!   write uses as an idempotency key to make the effect exactly once.
//! - After a crash, a new flusher with the same consumer name first
//!   replays its own pending entries; entries a dead consumer left behind
//!   are taken over with XAUTOCLAIM once they have been idle long enough.

use crate::conn::Conn;
use crate::Result;
use redis::aio::ConnectionManager;
use redis::streams::{StreamReadOptions, StreamReadReply};
use redis::AsyncCommands;
use serde::Serialize;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// One queued write: its stream entry id (the idempotency key) and payload.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    pub payload: String,
}

/// Tuning for the flusher.
#[derive(Debug, Clone)]
pub struct WriteBehindOptions {
    /// Consumer group, shared by every flusher of the stream.
    pub group: String,
    /// This flusher's name; reuse it after a restart to replay its pending jobs.
    pub consumer: String,
    pub batch: usize,
    /// Pending jobs idle this long are taken over from other consumers.
    pub claim_idle: Duration,
}

impl Default for WriteBehindOptions {
    fn default() -> Self {
        WriteBehindOptions {
            group: "flusher".into(),
            consumer: "flusher-1".into(),
            batch: 100,
            claim_idle: Duration::from_secs(30),
        }
    }
}

/// Flusher counters.
#[derive(Debug, Default)]
pub struct FlushStats {
    pub batches: AtomicU64,
    pub jobs: AtomicU64,
    pub retries: AtomicU64,
}

pub struct WriteBehind {
    conn: Conn,
    stream: String,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    pub stats: Arc<FlushStats>,
}

impl WriteBehind {
    /// Creates the stream's group if needed and starts the flusher, which
    /// calls `flush` with each batch until it returns Ok.
    pub async fn start<F, Fut>(
        client: redis::Client,
        stream: &str,
        opts: WriteBehindOptions,
        flush: F,
    ) -> Result<WriteBehind>
    where
        F: Fn(Vec<Job>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<(), String>> + Send + 'static,
    {
        WriteBehind::start_on(Conn::Single(ConnectionManager::new(client).await?), stream, opts, flush).await
    }

    /// [`start`](Self::start) over a Redis Cluster, given some of its
    /// nodes' URLs (the stream is one key, so it lives on one node).
    pub async fn start_on_cluster<F, Fut>(
        nodes: &[&str],
        stream: &str,
        opts: WriteBehindOptions,
        flush: F,
    ) -> Result<WriteBehind>
    where
        F: Fn(Vec<Job>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<(), String>> + Send + 'static,
    {
        let cluster = redis::cluster::ClusterClient::new(nodes.to_vec())?;
        WriteBehind::start_on(Conn::Cluster(cluster.get_async_connection().await?), stream, opts, flush).await
    }

    async fn start_on<F, Fut>(mut conn: Conn, stream: &str, opts: WriteBehindOptions, flush: F) -> Result<WriteBehind>
    where
        F: Fn(Vec<Job>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<(), String>> + Send + 'static,
    {
        ensure_group(&mut conn, stream, &opts.group).await?;
        let (stop, stopped) = watch::channel(false);
        let stats = Arc::new(FlushStats::default());
        let task = tokio::spawn(run(conn.clone(), stream.to_string(), opts, flush, stopped, stats.clone()));
        Ok(WriteBehind { conn, stream: stream.to_string(), stop, task, stats })
    }

    /// Queues one write; returns its id once the server has it.
    pub async fn enqueue<T: Serialize>(&self, item: &T) -> Result<String> {
        let payload = serde_json::to_string(item)?;
        let id: String = self.conn.clone().xadd(&self.stream, "*", &[("p", payload)]).await?;
        Ok(id)
    }

    /// Jobs queued and not yet flushed.
    pub async fn backlog(&self) -> Result<u64> {
        Ok(self.conn.clone().xlen(&self.stream).await?)
    }

    /// Stops the flusher after its current batch (jobs not flushed stay
    /// queued for the next flusher).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }

    /// Stops the flusher at once, as a crash would: a batch in progress
    /// is neither finished nor acknowledged.
    pub fn abort(self) {
        self.task.abort();
    }
}

/// Creates `group` on `stream` (and the stream) unless it exists.
pub(crate) async fn ensure_group(conn: &mut impl redis::aio::ConnectionLike, stream: &str, group: &str) -> Result<()> {
    let created: redis::RedisResult<()> =
        redis::cmd("XGROUP").arg("CREATE").arg(stream).arg(group).arg("0").arg("MKSTREAM").query_async(conn).await;
    match created {
        Err(e) if e.code() != Some("BUSYGROUP") => Err(e.into()),
        _ => Ok(()),
    }
}

fn jobs(reply: StreamReadReply) -> Vec<Job> {
    reply
        .keys
        .into_iter()
        .flat_map(|k| k.ids)
        .map(|e| {
            let payload = e.get::<String>("p").unwrap_or_default();
            Job { id: e.id, payload }
        })
        .collect()
}

async fn run<F, Fut>(
    mut conn: Conn,
    stream: String,
    opts: WriteBehindOptions,
    flush: F,
    mut stopped: watch::Receiver<bool>,
    stats: Arc<FlushStats>,
) where
    F: Fn(Vec<Job>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = std::result::Result<(), String>> + Send + 'static,
{
    // First our own pending entries (a previous run of this consumer
    // crashed with them), then new ones.
    let mut cursor = "0".to_string();
    let mut last_claim = tokio::time::Instant::now();
    loop {
        if *stopped.borrow() {
            return;
        }
        if last_claim.elapsed() >= opts.claim_idle {
            last_claim = tokio::time::Instant::now();
            // Take over what dead consumers left; it is replayed from "0".
            let _: redis::RedisResult<redis::Value> = redis::cmd("XAUTOCLAIM")
                .arg(&stream)
                .arg(&opts.group)
                .arg(&opts.consumer)
                .arg(opts.claim_idle.as_millis() as u64)
                .arg("0")
                .arg("COUNT")
                .arg(opts.batch)
                .query_async(&mut conn)
                .await;
            cursor = "0".into();
        }
        let mut read = StreamReadOptions::default().group(&opts.group, &opts.consumer).count(opts.batch);
        if cursor == ">" {
            read = read.block(100);
        }
        let reply: redis::RedisResult<StreamReadReply> = conn.xread_options(&[&stream], &[&cursor], &read).await;
        let batch = match reply {
            Ok(r) => jobs(r),
            Err(e) => {
                tracing::warn!("write-behind: read failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if batch.is_empty() {
            // History replayed: from now on only new entries.
            cursor = ">".into();
            continue;
        }
        let mut backoff = Duration::from_millis(10);
        loop {
            match flush(batch.clone()).await {
                Ok(()) => break,
                Err(e) => {
                    stats.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!("write-behind: flush failed, retrying in {backoff:?}: {e}");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stopped.changed() => return,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
        let ids: Vec<&str> = batch.iter().map(|j| j.id.as_str()).collect();
        let acked: redis::RedisResult<()> = redis::pipe()
            .xack(&stream, &opts.group, &ids)
            .ignore()
            .xdel(&stream, &ids)
            .ignore()
            .query_async(&mut conn)
            .await;
        if let Err(e) = acked {
            // Flushed but not acknowledged: they come back and the
            // idempotency key makes the second application a no-op.
            tracing::warn!("write-behind: ack failed: {e}");
        }
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats.jobs.fetch_add(batch.len() as u64, Ordering::Relaxed);
    }
}
