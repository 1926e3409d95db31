//! Client-side caching: CLIENT TRACKING and its invalidation messages.
//!
//! Two halves meet here, as in Redis's tracking.c:
//! - Reads. A tracking client's read-only command records every key it
//!   looks up in the invalidation table (key → reader ids). The record is
//!   made by the keyspace itself ([`ReadObserver`]) while the key's shard
//!   is locked, so on this multi-threaded server a write racing the read
//!   either happened first (the read saw it) or finds the record (the
//!   reader is told). Recording after the command would let a write slip
//!   in between and leave a stale value cached forever.
//! - Writes. The tracker is an effect-stream sink: every key a write
//!   modifies (expiry and FLUSH* included) is looked up in the table,
//!   removed, and each reader is sent `invalidate [key]`. BCAST clients
//!   are matched by prefix instead and need no table.
//!
//! Messages go to the client's own outbox as a RESP3 push, or to its
//! REDIRECT target: a RESP3 push there too, or in RESP2 a message on
//! `__redis__:invalidate` if the target is in pub/sub mode. The writer's
//! id (for NOLOOP) comes from a thread-local the dispatcher sets, since
//! the write runs on the writer's own thread.

use crate::cmd::table::CommandTable;
use crate::conn::client::Client;
use crate::pubsub::{BufferLimit, Outbox};
use bytes::Bytes;
use hashbrown::{HashMap, HashSet};
use larder_protocol::Frame;
use larder_store::{Effect, EffectSink, ReadObserver};
use parking_lot::{Mutex, RwLock};
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

thread_local! {
    /// The client whose command runs on this thread (0: none, e.g. the
    /// active expiry cycle).
    static CURRENT: Cell<u64> = const { Cell::new(0) };
    /// Keys a command on this thread modified that BCAST clients must hear
    /// of, with their modifier (0 once two different ones touched it).
    static BCAST_PENDING: RefCell<Vec<(Bytes, u64)>> = const { RefCell::new(Vec::new()) };
    /// Invalidations of the running client's own cache that its command
    /// caused: sent after that command's reply, as Redis sends them.
    static AFTER_REPLY: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Appends the invalidations the command just run caused for its own
/// client (the dispatcher calls this after encoding the reply).
pub fn take_after_reply(out: &mut bytes::BytesMut) {
    AFTER_REPLY.with(|a| {
        let mut a = a.borrow_mut();
        if !a.is_empty() {
            out.extend_from_slice(&a);
            a.clear();
        }
    });
}

/// Marks `id` as the client running commands on this thread.
pub fn set_current_client(id: u64) {
    CURRENT.with(|c| c.set(id));
}

/// One client's tracking mode, fixed while it is on (a new CLIENT
/// TRACKING ON replaces it).
pub struct Tracker {
    pub id: u64,
    /// The options it was enabled with (`redirect` 0: the client itself).
    pub opts: TrackingOptions,
    /// The REDIRECT target went away (TRACKINGINFO's `broken_redirect`).
    pub broken: AtomicBool,
    own: Arc<Outbox>,
    target: Option<Arc<Outbox>>,
}

pub struct Tracking {
    /// Clients with tracking on; zero makes every hook a no-op.
    active: AtomicUsize,
    trackers: RwLock<HashMap<u64, Arc<Tracker>>>,
    /// Default mode: key → ids of the clients that may have cached it.
    table: Mutex<HashMap<Bytes, HashSet<u64>>>,
    /// `tracking-table-max-keys` (0: unlimited).
    max_keys: AtomicU64,
    commands: Arc<CommandTable>,
}

/// CLIENT TRACKING ON's options, parsed.
#[derive(Default)]
pub struct TrackingOptions {
    pub redirect: u64,
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
    pub prefixes: Vec<Bytes>,
}

fn invalidate_frame(keys: Option<&[&[u8]]>, resp3: bool) -> Frame {
    let payload = match keys {
        Some(keys) => Frame::Array(keys.iter().map(|k| Frame::bulk(*k)).collect()),
        None => Frame::Null,
    };
    if resp3 {
        Frame::Push(vec![Frame::bulk_static("invalidate"), payload])
    } else {
        Frame::Push(vec![Frame::bulk_static("message"), Frame::bulk_static("__redis__:invalidate"), payload])
    }
}

impl Tracker {
    /// Sends `invalidate` for `keys` (None: everything, after a flush).
    fn send(&self, keys: Option<&[&[u8]]>) {
        let no_limit = BufferLimit::default();
        let Some(target) = &self.target else {
            // Without REDIRECT only RESP3 can carry the push.
            if self.own.resp3() {
                let frame = invalidate_frame(keys, true);
                if CURRENT.with(Cell::get) == self.id {
                    // Its own command's doing: after that command's reply.
                    let mut bytes = bytes::BytesMut::new();
                    larder_protocol::encode(&frame, larder_protocol::Proto::Resp3, &mut bytes);
                    AFTER_REPLY.with(|a| a.borrow_mut().extend_from_slice(&bytes));
                } else {
                    self.own.push_frame(&frame, no_limit);
                }
            }
            return;
        };
        if target.is_closed() {
            self.broken.store(true, Ordering::Relaxed);
            if self.own.resp3() {
                let frame = Frame::Push(vec![
                    Frame::bulk_static("tracking-redir-broken"),
                    Frame::Integer(self.opts.redirect as i64),
                ]);
                self.own.push_frame(&frame, no_limit);
            }
            return;
        }
        if target.resp3() {
            target.push_frame(&invalidate_frame(keys, true), no_limit);
        } else if target.subscribed() {
            target.push_frame(&invalidate_frame(keys, false), no_limit);
        }
    }
}

impl Tracking {
    pub fn new(commands: Arc<CommandTable>) -> Tracking {
        Tracking {
            active: AtomicUsize::new(0),
            trackers: Default::default(),
            table: Default::default(),
            max_keys: AtomicU64::new(0),
            commands,
        }
    }

    pub fn set_max_keys(&self, n: u64) {
        self.max_keys.store(n, Ordering::Relaxed);
    }

    /// CLIENT TRACKING ON. `target` is the REDIRECT client's outbox.
    pub fn enable(&self, client: &mut Client, mut o: TrackingOptions, target: Option<Arc<Outbox>>) {
        let mut prefixes = client.tracking.as_ref().map(|t| t.opts.prefixes.clone()).unwrap_or_default();
        if o.bcast {
            // New prefixes add to those of an earlier CLIENT TRACKING ON.
            for p in std::mem::take(&mut o.prefixes) {
                if !prefixes.contains(&p) {
                    prefixes.push(p);
                }
            }
            if prefixes.is_empty() {
                prefixes.push(Bytes::new());
            }
            // Redis keeps them in a radix tree: TRACKINGINFO lists them sorted.
            prefixes.sort();
        }
        let t = Arc::new(Tracker {
            id: client.id(),
            opts: TrackingOptions { prefixes, ..o },
            broken: AtomicBool::new(false),
            own: client.outbox.clone(),
            target,
        });
        if self.trackers.write().insert(client.id(), t.clone()).is_none() {
            self.active.fetch_add(1, Ordering::Relaxed);
        }
        client.info.redir.store(t.opts.redirect as i64, Ordering::Relaxed);
        client.info.bcast.store(t.opts.bcast, Ordering::Relaxed);
        client.tracking = Some(t);
    }

    /// CLIENT TRACKING OFF (and disconnects). Table entries naming the
    /// client are left to be dropped when their keys are next written.
    pub fn disable(&self, client: &mut Client) {
        if client.tracking.take().is_some() && self.trackers.write().remove(&client.id()).is_some() {
            self.active.fetch_sub(1, Ordering::Relaxed);
        }
        client.caching = false;
        client.info.redir.store(-1, Ordering::Relaxed);
        client.info.bcast.store(false, Ordering::Relaxed);
    }

    /// Whether `client`'s current read-only command should record its keys.
    pub fn records_reads(client: &Client) -> bool {
        match &client.tracking {
            None => false,
            Some(t) if t.opts.bcast => false,
            Some(t) if t.opts.optin => client.caching,
            Some(t) if t.opts.optout => !client.caching,
            Some(_) => true,
        }
    }

    /// `modifier`: the client whose command wrote `key` (0: the server).
    fn invalidate_key(&self, key: &[u8], modifier: u64) {
        let trackers = self.tell_readers(key, modifier);
        if !trackers.values().any(|t| t.opts.bcast) {
            return;
        }
        if CURRENT.with(Cell::get) == 0 {
            // Outside a command (the expiry cycle): nothing to batch with.
            drop(trackers);
            self.broadcast(&[(Bytes::copy_from_slice(key), 0)]);
            return;
        }
        BCAST_PENDING.with(|p| {
            let mut p = p.borrow_mut();
            match p.iter_mut().find(|(k, _)| k.as_ref() == key) {
                Some((_, m)) if *m != modifier => *m = 0,
                Some(_) => {}
                None => p.push((Bytes::copy_from_slice(key), modifier)),
            }
        });
    }

    /// BCAST messages, as Redis's `trackingBroadcastInvalidationMessages`:
    /// one per client and prefix, naming every key of the batch under that
    /// prefix (less those the client itself modified, with NOLOOP).
    fn broadcast(&self, keys: &[(Bytes, u64)]) {
        for t in self.trackers.read().values().filter(|t| t.opts.bcast) {
            for prefix in &t.opts.prefixes {
                let batch: Vec<&[u8]> = keys
                    .iter()
                    .filter(|(k, m)| k.starts_with(prefix) && !(t.opts.noloop && *m == t.id))
                    .map(|(k, _)| k.as_ref())
                    .collect();
                if !batch.is_empty() {
                    t.send(Some(&batch));
                }
            }
        }
    }

    /// A client's command (a whole EXEC or script) is over: what it wrote
    /// reaches BCAST clients as one batch, as Redis sends them once per
    /// event-loop turn, and later writes on this thread belong to nobody
    /// until the next command says whose they are.
    pub fn end_command(&self) {
        if self.active.load(Ordering::Relaxed) != 0 {
            let keys = BCAST_PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()));
            if !keys.is_empty() {
                self.broadcast(&keys);
            }
        }
        CURRENT.with(|c| c.set(0));
    }

    /// After FLUSHDB/FLUSHALL: every tracking client drops everything.
    fn invalidate_all(&self) {
        self.table.lock().clear();
        for t in self.trackers.read().values() {
            t.send(None);
        }
    }

    /// Forgets `key` in the table and tells the clients that read it
    /// (all but `modifier` if that one asked for NOLOOP).
    fn tell_readers(&self, key: &[u8], modifier: u64) -> parking_lot::RwLockReadGuard<'_, HashMap<u64, Arc<Tracker>>> {
        let readers = self.table.lock().remove(key);
        let trackers = self.trackers.read();
        for id in readers.into_iter().flatten() {
            match trackers.get(&id) {
                Some(t) if !(t.opts.bcast || t.opts.noloop && id == modifier) => t.send(Some(&[key])),
                _ => {}
            }
        }
        trackers
    }

    /// Whether any client has tracking on.
    pub fn any_tracking(&self) -> bool {
        self.active.load(Ordering::Relaxed) > 0
    }

    /// Redis's trackingLimitUsedSlots, run by the cron and before commands: a table over
    /// tracking-table-max-keys (lowered by CONFIG SET, say) forgets keys,
    /// at most 100 a tick, telling their readers to drop them.
    pub fn enforce_limit(&self) {
        let max = self.max_keys.load(Ordering::Relaxed) as usize;
        if max == 0 {
            return;
        }
        let victims: Vec<Bytes> = {
            let table = self.table.lock();
            if table.len() <= max {
                return;
            }
            table.keys().take((table.len() - max).min(100)).cloned().collect()
        };
        // Evicted, not written: BCAST clients hear nothing (as in Redis).
        for v in victims {
            drop(self.tell_readers(&v, 0));
        }
    }

    /// (tracking clients, keys in the table, table items, bcast prefixes)
    /// for INFO.
    pub fn stats(&self) -> (usize, usize, usize, usize) {
        let table = self.table.lock();
        let items = table.values().map(HashSet::len).sum();
        let prefixes = self.trackers.read().values().filter(|t| t.opts.bcast).map(|t| t.opts.prefixes.len()).sum();
        (self.active.load(Ordering::Relaxed), table.len(), items, prefixes)
    }
}

impl ReadObserver for Tracking {
    fn read(&self, client: u64, key: &[u8]) {
        let mut table = self.table.lock();
        if let Some(ids) = table.get_mut(key) {
            ids.insert(client);
            return;
        }
        table.entry(Bytes::copy_from_slice(key)).or_default().insert(client);
        let max = self.max_keys.load(Ordering::Relaxed) as usize;
        if max > 0 && table.len() > max {
            // Over tracking-table-max-keys: forget some other key, telling
            // its readers to drop it, as Redis does.
            let victim = table.keys().find(|k| k.as_ref() != key).cloned();
            drop(table);
            if let Some(v) = victim {
                drop(self.tell_readers(&v, 0));
            }
        }
    }
}

impl EffectSink for Tracking {
    fn apply(&self, e: &Effect<'_>) {
        // A flush empties the table even with nobody tracking any more (a
        // client that turned tracking off leaves its keys behind), as
        // Redis's trackingInvalidateKeysOnFlush does.
        if e.args.first().is_some_and(|a| a.eq_ignore_ascii_case(b"flushall") || a.eq_ignore_ascii_case(b"flushdb")) {
            self.invalidate_all();
            return;
        }
        if self.active.load(Ordering::Relaxed) == 0 {
            return;
        }
        let modifier = match e.origin {
            larder_store::Origin::Command => CURRENT.with(Cell::get),
            _ => 0,
        };
        crate::multi::written_keys(&self.commands, e, |_, key| self.invalidate_key(key, modifier));
    }
}
