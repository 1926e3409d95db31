//! Transactions: the WATCH registry, and the world lock that makes EXEC
//! atomic.
//!
//! Why a world lock: a queued command can name any key (SORT BY patterns,
//! Lua later), and handlers take their own shard locks, which are not
//! re-entrant. So EXEC takes the [`WorldLock`] for writing and runs its
//! queue with no other command in flight; every other command holds it for
//! reading. This is Redis's own guarantee (nothing interleaves with EXEC)
//! without a second locking scheme inside every handler.
//!
//! The lock is a "big reader" lock: one padded RwLock per slot, readers
//! take only their thread's slot, a writer takes them all in order. A
//! single RwLock made every command on every core bounce one cache line
//! (the core geomean in scripts/bench fell from 0.97 to 0.92); with slots
//! a reader touches a line no other core is writing.
//!
//! Why watch through the effect stream: every write already reports the
//! command that reproduces it, lazy and active expiry included. A sink
//! turns those into "key touched" marks for watched keys only, so WATCH
//! costs nothing while nobody watches and no write path needs its own hook.

use crate::cmd::table::CommandTable;
use bytes::Bytes;
use hashbrown::HashMap;
use larder_store::{Effect, EffectSink};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// One RwLock on its own cache line.
#[repr(align(128))]
struct Slot(parking_lot::RwLock<()>);

pub struct WorldLock {
    slots: [Slot; WORLD_SLOTS],
}

/// The world lock held for writing: each slot's guard, in a fixed array
/// (a script takes it per call, and a `Vec` of them was an allocation
/// each time).
pub struct WorldWrite<'a>([Option<parking_lot::RwLockWriteGuard<'a, ()>>; WORLD_SLOTS]);

/// A slot per thread stripe: a command holds its thread's.
const WORLD_SLOTS: usize = crate::stats::STRIPES;

impl Default for WorldLock {
    fn default() -> Self {
        WorldLock { slots: std::array::from_fn(|_| Slot(parking_lot::RwLock::new(()))) }
    }
}

impl WorldLock {
    /// This thread's slot: a command holds the world lock only while it
    /// runs, on one thread, so readers on one thread never contend and the
    /// slot's line stays in that core's cache (a slot per client moved
    /// with the client from worker to worker).
    fn mine(&self) -> &parking_lot::RwLock<()> {
        &self.slots[crate::stats::stripe()].0
    }

    /// Shared access for one command.
    pub fn read(&self) -> parking_lot::RwLockReadGuard<'_, ()> {
        self.mine().read()
    }

    /// Like `read`, but gives up (None) once `give_up` says so while
    /// waiting: a client queued behind a script that turns busy must get
    /// BUSY instead of waiting for it.
    pub fn read_unless(&self, give_up: impl Fn() -> bool) -> Option<parking_lot::RwLockReadGuard<'_, ()>> {
        let lock = self.mine();
        if let Some(g) = lock.try_read() {
            return Some(g);
        }
        loop {
            if let Some(g) = lock.try_read_for(std::time::Duration::from_millis(5)) {
                return Some(g);
            }
            if give_up() {
                return None;
            }
        }
    }

    /// Shared access only if no writer holds or awaits this slot: for the
    /// cron, which must never park a runtime thread behind a script.
    pub fn try_read(&self) -> Option<parking_lot::RwLockReadGuard<'_, ()>> {
        self.mine().try_read()
    }

    /// Exclusive access: every slot, in order (so two writers cannot
    /// deadlock).
    pub fn write(&self) -> WorldWrite<'_> {
        WorldWrite(std::array::from_fn(|i| Some(self.slots[i].0.write())))
    }

    /// Like `write`, but gives up (None, holding nothing) once `give_up`
    /// says so while waiting: a second script queued behind a busy one
    /// gets BUSY instead of waiting for it to end.
    pub fn write_unless(&self, give_up: impl Fn() -> bool) -> Option<WorldWrite<'_>> {
        let mut held = WorldWrite(Default::default());
        for (s, h) in self.slots.iter().zip(held.0.iter_mut()) {
            loop {
                if let Some(g) = s.0.try_write_for(std::time::Duration::from_millis(5)) {
                    *h = Some(g);
                    break;
                }
                if give_up() {
                    return None;
                }
            }
        }
        Some(held)
    }
}

/// One client's WATCH: a dirty flag shared by all its watched keys.
pub type WatchFlag = Arc<AtomicBool>;

/// One client watching one key.
struct Watcher {
    flag: WatchFlag,
    /// The key had expired but was not yet reclaimed at WATCH: as in
    /// Redis, its removal changes nothing logically and does not count
    /// (anything else done to the key does).
    stale: AtomicBool,
}

#[derive(Default)]
pub struct Watches {
    count: AtomicUsize,
    map: Mutex<HashMap<(usize, Bytes), Vec<Watcher>>>,
}

impl Watches {
    pub fn watch(&self, db: usize, key: &[u8], flag: &WatchFlag, stale: bool) {
        let mut m = self.map.lock();
        let v = m.entry((db, Bytes::copy_from_slice(key))).or_default();
        if !v.iter().any(|w| Arc::ptr_eq(&w.flag, flag)) {
            v.push(Watcher { flag: flag.clone(), stale: AtomicBool::new(stale) });
            self.count.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn unwatch(&self, keys: &[(usize, Bytes)], flag: &WatchFlag) {
        let mut m = self.map.lock();
        for k in keys {
            if let Some(v) = m.get_mut(k) {
                let before = v.len();
                v.retain(|w| !Arc::ptr_eq(&w.flag, flag));
                self.count.fetch_sub(before - v.len(), Ordering::Relaxed);
                if v.is_empty() {
                    m.remove(k);
                }
            }
        }
    }

    /// `removal`: the write only removed the key (its expiry, DEL, a
    /// flush), which a watcher that saw it already stale ignores once.
    fn touch(&self, db: usize, key: &[u8], removal: bool) {
        if let Some(v) = self.map.lock().get(&(db, Bytes::copy_from_slice(key))) {
            for w in v {
                if removal && w.stale.swap(false, Ordering::Relaxed) {
                    continue;
                }
                w.flag.store(true, Ordering::Relaxed);
            }
        }
    }

    /// Marks watched keys for which `pred(db, key)` holds. FLUSHDB,
    /// FLUSHALL and SWAPDB call this before they act, with "the key exists
    /// (in either swapped database)": as in Redis, a watched key that did
    /// not exist is not modified by emptying its database.
    pub fn touch_if(&self, pred: impl Fn(usize, &[u8]) -> bool) {
        if self.count.load(Ordering::Relaxed) == 0 {
            return;
        }
        // `pred` takes shard locks; writers take shard locks and then this
        // map's (through the sink). So never hold the map while calling it.
        let keys: Vec<(usize, Bytes)> = self.map.lock().keys().cloned().collect();
        for (db, key) in keys {
            if pred(db, &key) {
                self.touch(db, &key, false);
            }
        }
    }
}

/// Marks watched keys touched by each effect.
pub struct WatchSink {
    pub watches: Arc<Watches>,
    pub commands: Arc<CommandTable>,
}

fn parse_db(a: &[u8]) -> Option<usize> {
    std::str::from_utf8(a).ok()?.parse().ok()
}

/// Calls `f(db, key)` for every key an effect modified. Whole-database
/// effects (FLUSHALL, FLUSHDB, SWAPDB) and MULTI/EXEC name no key: their
/// consumers handle them on their own.
pub fn written_keys(commands: &CommandTable, e: &Effect<'_>, mut f: impl FnMut(usize, &[u8])) {
    let Some(first) = e.args.first() else { return };
    let name = first.to_ascii_lowercase();
    let arg = |i: usize| e.args.get(i).copied();
    match name.as_slice() {
        b"flushall" | b"flushdb" | b"swapdb" | b"multi" | b"exec" => {}
        b"move" => {
            if let (Some(k), Some(dst)) = (arg(1), arg(2).and_then(parse_db)) {
                f(e.db, k);
                f(dst, k);
            }
        }
        b"copy" => {
            let db = e.args.windows(2).find(|p| p[0].eq_ignore_ascii_case(b"db")).and_then(|p| parse_db(p[1]));
            if let Some(k) = arg(2) {
                f(db.unwrap_or(e.db), k);
            }
        }
        // Commands that read several keys but write only their first.
        b"sinterstore" | b"sunionstore" | b"sdiffstore" | b"zunionstore" | b"zinterstore" | b"zdiffstore"
        | b"zrangestore" | b"pfmerge" | b"geosearchstore" => {
            if let Some(k) = arg(1) {
                f(e.db, k);
            }
        }
        b"bitop" => {
            if let Some(k) = arg(2) {
                f(e.db, k);
            }
        }
        _ => {
            let Some(mut cmd) = commands.lookup(first) else { return };
            if !cmd.subs.is_empty() {
                match arg(1).and_then(|s| cmd.lookup_sub(s)) {
                    Some(sub) => cmd = sub,
                    None => return,
                }
            }
            for i in cmd.spec.keys.positions(e.args.len()) {
                f(e.db, e.args[i]);
            }
        }
    }
}

impl EffectSink for WatchSink {
    fn apply(&self, e: &Effect<'_>) {
        if self.watches.count.load(Ordering::Relaxed) == 0 {
            return;
        }
        // FLUSH* and SWAPDB handlers mark watched keys before acting (`touch_if`).
        let name = e.args.first().map(|a| a.to_ascii_lowercase());
        let removal = e.origin != larder_store::Origin::Command || matches!(name.as_deref(), Some(b"del" | b"unlink"));
        written_keys(&self.commands, e, |db, key| self.watches.touch(db, key, removal));
    }
}
