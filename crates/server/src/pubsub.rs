//! Pub/Sub: who listens to which channel, and each listener's outbox.
//!
//! A PUBLISH runs on the publisher's thread. It encodes the message once
//! per protocol and appends the bytes to every subscriber's [`Outbox`],
//! then wakes that subscriber's connection task, which writes them out.
//! The outbox is where `client-output-buffer-limit pubsub` is enforced: a
//! subscriber whose unsent bytes pass the hard limit, or stay above the
//! soft limit for the soft period, is disconnected and its messages
//! dropped, so a slow reader cannot grow memory without bound.

use crate::conn::client::ClientInfo;
use bytes::{Bytes, BytesMut};
use hashbrown::HashMap;
use larder_protocol::{encode, Frame, Proto};
use parking_lot::{Mutex, RwLock};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `client-output-buffer-limit` for one class: hard and soft bytes (0: no
/// limit) and the soft period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BufferLimit {
    pub hard: u64,
    pub soft: u64,
    pub soft_secs: u64,
}

struct OutState {
    bytes: BytesMut,
    over_soft_since: Option<Instant>,
}

/// Bytes waiting to be written to one client: pub/sub messages and
/// client-tracking invalidations that other clients' commands produced.
/// Every connection has one, so an invalidation can be redirected to any
/// client by id.
pub struct Outbox {
    state: Mutex<OutState>,
    resp3: AtomicBool,
    /// Set while bytes wait, so the dispatcher skips the lock otherwise.
    pending: AtomicBool,
    /// The client has channel or pattern subscriptions (Redis's
    /// CLIENT_PUBSUB): only then may a RESP2 client receive a message.
    subscribed: AtomicBool,
    /// The connection is gone (a REDIRECT pointing here is broken).
    closed: AtomicBool,
    client: Arc<ClientInfo>,
}

impl Outbox {
    /// Bytes queued for the connection to send (locks only when any are).
    pub fn queued(&self) -> usize {
        if self.pending.load(Ordering::Relaxed) {
            self.state.lock().bytes.len()
        } else {
            0
        }
    }

    pub fn new(client: Arc<ClientInfo>, proto: Proto) -> Outbox {
        Outbox {
            state: Mutex::new(OutState { bytes: BytesMut::new(), over_soft_since: None }),
            resp3: AtomicBool::new(proto == Proto::Resp3),
            pending: AtomicBool::new(false),
            subscribed: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            client,
        }
    }

    pub fn set_proto(&self, proto: Proto) {
        self.resp3.store(proto == Proto::Resp3, Ordering::Relaxed);
    }

    pub fn resp3(&self) -> bool {
        self.resp3.load(Ordering::Relaxed)
    }

    pub fn set_subscribed(&self, on: bool) {
        self.subscribed.store(on, Ordering::Relaxed);
    }

    pub fn subscribed(&self) -> bool {
        self.subscribed.load(Ordering::Relaxed)
    }

    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Queues one frame, encoded in the client's protocol.
    pub fn push_frame(&self, frame: &Frame, limit: BufferLimit) -> bool {
        let mut out = BytesMut::new();
        encode(frame, if self.resp3() { Proto::Resp3 } else { Proto::Resp2 }, &mut out);
        self.push(&out, limit)
    }

    /// Queues encoded bytes; false (and the client is killed) if that
    /// crosses the output buffer limit.
    pub fn push(&self, data: &[u8], limit: BufferLimit) -> bool {
        if self.client.is_killed() {
            return false;
        }
        let mut st = self.state.lock();
        st.bytes.extend_from_slice(data);
        let len = st.bytes.len() as u64;
        let over_hard = limit.hard > 0 && len > limit.hard;
        let over_soft = limit.soft > 0 && len > limit.soft;
        let soft_expired = match (over_soft, st.over_soft_since) {
            (false, _) => {
                st.over_soft_since = None;
                false
            }
            (true, None) => {
                st.over_soft_since = Some(Instant::now());
                false
            }
            (true, Some(t)) => t.elapsed() >= Duration::from_secs(limit.soft_secs),
        };
        if over_hard || soft_expired {
            st.bytes.clear();
            drop(st);
            tracing::warn!(client = self.client.id, "closing pubsub client over client-output-buffer-limit");
            self.client.kill();
            return false;
        }
        self.pending.store(true, Ordering::Release);
        drop(st);
        self.client.wake();
        true
    }

    /// Everything queued so far.
    pub fn take(&self) -> BytesMut {
        if !self.pending.load(Ordering::Acquire) {
            return BytesMut::new();
        }
        let mut st = self.state.lock();
        st.over_soft_since = None;
        self.pending.store(false, Ordering::Relaxed);
        std::mem::take(&mut st.bytes)
    }

    /// Completes while bytes wait. Only the owning connection's task may
    /// wait on this: it shares the client's single waker slot.
    pub async fn ready(&self) {
        std::future::poll_fn(|cx| self.client.poll_signal(cx, || self.pending.load(Ordering::Acquire))).await
    }
}

/// Channel → subscribers (by client id).
type Subs = HashMap<Bytes, HashMap<u64, Arc<Outbox>>>;

#[derive(Default)]
struct Inner {
    channels: Subs,
    patterns: Subs,
    shard: Subs,
}

/// Which namespace a subscription lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Channel,
    Pattern,
    Shard,
}

#[derive(Default)]
pub struct PubSub {
    inner: RwLock<Inner>,
    /// client-output-buffer-limit for the pubsub class, kept here so a
    /// publish from inside a write (keyspace events) never reads the config.
    limit: Mutex<BufferLimit>,
}

impl Inner {
    fn map(&mut self, kind: Kind) -> &mut Subs {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shard,
        }
    }

    fn map_ref(&self, kind: Kind) -> &Subs {
        match kind {
            Kind::Channel => &self.channels,
            Kind::Pattern => &self.patterns,
            Kind::Shard => &self.shard,
        }
    }
}

fn message(kind: &'static str, parts: &[&[u8]], resp3: bool) -> Vec<u8> {
    let mut items = vec![Frame::bulk_static(kind)];
    items.extend(parts.iter().map(Frame::bulk));
    let mut out = BytesMut::new();
    encode(&Frame::Push(items), if resp3 { Proto::Resp3 } else { Proto::Resp2 }, &mut out);
    out.to_vec()
}

impl PubSub {
    pub fn subscribe(&self, kind: Kind, name: &[u8], client: u64, outbox: &Arc<Outbox>) {
        self.inner.write().map(kind).entry(Bytes::copy_from_slice(name)).or_default().insert(client, outbox.clone());
    }

    /// Every channel, pattern and shard channel each of `clients` is
    /// subscribed to, in one walk of all subscriptions: for ACL SETUSER,
    /// not for a hot path.
    pub fn subscriptions_of(&self, clients: &hashbrown::HashSet<u64>) -> hashbrown::HashMap<u64, Vec<(Kind, Bytes)>> {
        let inner = self.inner.read();
        let mut out: hashbrown::HashMap<u64, Vec<(Kind, Bytes)>> = hashbrown::HashMap::new();
        for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
            for (name, subs) in inner.map_ref(kind) {
                for id in subs.keys().filter(|id| clients.contains(*id)) {
                    out.entry(*id).or_default().push((kind, name.clone()));
                }
            }
        }
        out
    }

    pub fn unsubscribe(&self, kind: Kind, name: &[u8], client: u64) {
        let mut inner = self.inner.write();
        let map = inner.map(kind);
        if let Some(subs) = map.get_mut(name) {
            subs.remove(&client);
            if subs.is_empty() {
                map.remove(name);
            }
        }
    }

    /// Delivers `msg` to `channel`'s subscribers (and, unless `shard`, to
    /// matching patterns). Returns how many received it.
    pub fn publish(&self, channel: &[u8], msg: &[u8], shard: bool) -> usize {
        let limit = *self.limit.lock();
        let inner = self.inner.read();
        let mut encoded: [Option<Vec<u8>>; 2] = [None, None];
        let mut n = 0;
        let kind = if shard { Kind::Shard } else { Kind::Channel };
        let tag = if shard { "smessage" } else { "message" };
        if let Some(subs) = inner.map_ref(kind).get(channel) {
            for ob in subs.values() {
                let r3 = ob.resp3();
                let bytes = encoded[r3 as usize].get_or_insert_with(|| message(tag, &[channel, msg], r3));
                ob.push(bytes, limit);
                n += 1;
            }
        }
        if !shard {
            for (pat, subs) in &inner.patterns {
                if !larder_store::glob_match(pat, channel, false) {
                    continue;
                }
                let mut enc: [Option<Vec<u8>>; 2] = [None, None];
                for ob in subs.values() {
                    let r3 = ob.resp3();
                    let bytes = enc[r3 as usize].get_or_insert_with(|| message("pmessage", &[pat, channel, msg], r3));
                    ob.push(bytes, limit);
                    n += 1;
                }
            }
        }
        n
    }

    pub fn set_limit(&self, limit: BufferLimit) {
        *self.limit.lock() = limit;
    }

    /// Active channels (with at least one subscriber) matching `pattern`.
    pub fn channels(&self, kind: Kind, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let inner = self.inner.read();
        inner
            .map_ref(kind)
            .keys()
            .filter(|c| pattern.is_none_or(|p| larder_store::glob_match(p, c, false)))
            .cloned()
            .collect()
    }

    pub fn numsub(&self, kind: Kind, channel: &[u8]) -> usize {
        self.inner.read().map_ref(kind).get(channel).map_or(0, HashMap::len)
    }

    /// (channels, patterns, shard channels) with subscribers, for INFO.
    pub fn counts(&self) -> (usize, usize, usize) {
        let i = self.inner.read();
        (i.channels.len(), i.patterns.len(), i.shard.len())
    }

    /// Distinct patterns subscribed to, as Redis counts them.
    pub fn numpat(&self) -> usize {
        self.inner.read().patterns.len()
    }
}
