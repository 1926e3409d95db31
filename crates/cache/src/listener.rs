//! The invalidation listeners, one task per cache.
//!
//! The channel listener subscribes to the namespace's channel. Messages
//! are `<seq>:<key>` with a server-wide sequence number; a missing number
//! (a message lost) or a reconnect flushes the whole L1, since any key
//! may have changed unseen.
//!
//! The tracking listener ([`spawn_tracking`]) instead asks the server to
//! track the namespace's value keys (`CLIENT TRACKING ON BCAST PREFIX`) on
//! a RESP3 connection of its own, and drops each key the server says
//! changed; a flush (a null key list) or a lost connection flushes L1.

use crate::Inner;
use futures_util::StreamExt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::oneshot;

/// Starts the listener; the receiver fires once the first subscription is
/// active.
pub fn spawn(inner: Arc<Inner>) -> oneshot::Receiver<()> {
    let (tx, rx) = oneshot::channel();
    let weak = Arc::downgrade(&inner);
    let client = inner.client.clone();
    let channel = inner.keys.channel();
    drop(inner);
    tokio::spawn(run(weak, client, channel, tx));
    rx
}

async fn run(weak: Weak<Inner>, client: redis::Client, channel: String, ready: oneshot::Sender<()>) {
    let mut ready = Some(ready);
    loop {
        if weak.upgrade().is_none_or(|i| i.closed.load(Ordering::Relaxed)) {
            return;
        }
        let mut pubsub = match client.get_async_pubsub().await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("invalidation listener: connect failed: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        if let Err(e) = pubsub.subscribe(&channel).await {
            tracing::warn!("invalidation listener: subscribe failed: {e}");
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        if let Some(r) = ready.take() {
            let _ = r.send(());
        }
        let mut last: Option<u64> = None;
        let mut stream = pubsub.on_message();
        loop {
            // Wake now and then to notice that the cache was dropped.
            let msg = match tokio::time::timeout(Duration::from_secs(1), stream.next()).await {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(_) => {
                    if weak.upgrade().is_none() {
                        return;
                    }
                    continue;
                }
            };
            let Some(inner) = weak.upgrade() else { return };
            let payload: String = msg.get_payload().unwrap_or_default();
            let Some((seq, key)) = payload.split_once(':') else { continue };
            let Ok(seq) = seq.parse::<u64>() else { continue };
            if last.is_some_and(|l| seq != l + 1) {
                tracing::debug!("invalidation sequence gap ({last:?} → {seq}): flushing L1");
                inner.flush_l1().await;
            }
            last = Some(seq);
            if key == "*" {
                let _ = inner.refresh_version().await;
                inner.flush_l1().await;
            } else {
                inner.drop_l1(key).await;
            }
        }
        // Disconnected: messages may have been missed.
        if let Some(inner) = weak.upgrade() {
            inner.flush_l1().await;
        }
    }
}

/// Starts the CLIENT TRACKING listener; the receiver fires once tracking
/// is on.
pub fn spawn_tracking(inner: Arc<Inner>) -> oneshot::Receiver<()> {
    let (tx, rx) = oneshot::channel();
    let weak = Arc::downgrade(&inner);
    let mut info = inner.client.get_connection_info().clone();
    info.redis.protocol = redis::ProtocolVersion::RESP3;
    let prefix = inner.keys.value_prefix();
    drop(inner);
    match redis::Client::open(info) {
        Ok(client) => {
            tokio::spawn(track(weak, client, prefix, tx));
        }
        Err(e) => tracing::warn!("tracking listener: {e}"),
    }
    rx
}

async fn track(weak: Weak<Inner>, client: redis::Client, prefix: String, ready: oneshot::Sender<()>) {
    let mut ready = Some(ready);
    loop {
        if weak.upgrade().is_none_or(|i| i.closed.load(Ordering::Relaxed)) {
            return;
        }
        let (tx, mut pushes) = tokio::sync::mpsc::unbounded_channel();
        let config = redis::AsyncConnectionConfig::new().set_push_sender(tx);
        let tracked = async {
            let mut conn = client.get_multiplexed_async_connection_with_config(&config).await?;
            redis::cmd("CLIENT")
                .arg("TRACKING")
                .arg("ON")
                .arg("BCAST")
                .arg("PREFIX")
                .arg(&prefix)
                .query_async::<()>(&mut conn)
                .await?;
            redis::RedisResult::Ok(conn)
        };
        let conn = match tracked.await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("tracking listener: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        if let Some(r) = ready.take() {
            let _ = r.send(());
        }
        loop {
            let push = match tokio::time::timeout(Duration::from_secs(1), pushes.recv()).await {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(_) => {
                    if weak.upgrade().is_none() {
                        return;
                    }
                    continue;
                }
            };
            let Some(inner) = weak.upgrade() else { return };
            match push.kind {
                redis::PushKind::Invalidate => match push.data.first() {
                    Some(redis::Value::Array(keys)) => {
                        for k in keys {
                            if let redis::Value::BulkString(raw) = k {
                                if let Some(key) = inner.keys.cache_key(&String::from_utf8_lossy(raw)) {
                                    inner.drop_l1(&key).await;
                                }
                            }
                        }
                    }
                    // A null list: the server flushed its keyspace.
                    _ => inner.flush_l1().await,
                },
                redis::PushKind::Disconnection => break,
                _ => {}
            }
        }
        drop(conn);
        // Disconnected: changes may have gone unseen.
        if let Some(inner) = weak.upgrade() {
            inner.flush_l1().await;
        }
    }
}
