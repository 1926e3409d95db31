//! The append-only file: every write, as the effect stream states it,
//! appended as RESP to an incremental file in Redis 7's multi-part layout
//! (larder-persist's `aof` owns the manifest).
//!
//! Why it is built this way:
//! - The AOF is one more effect-stream consumer. Effects are emitted under
//!   the shard locks, so their order in the file is the order writes took
//!   effect; a transaction or script arrives as MULTI … EXEC on one thread
//!   (the thread that holds its locks) and is staged thread-locally, then
//!   appended whole, so an unrelated
//!   write on another shard can never land inside it (a torn tail then
//!   drops a whole transaction, never someone else's acknowledged write).
//! - Replies wait for the file as Redis's do: a connection hands its
//!   replies to the socket only after `before_reply`, which writes what is
//!   appended so far (every policy) and, with `appendfsync always`, awaits
//!   the syncer thread's next fsync, which covers every client's pending
//!   bytes (group commit, as Redis's one fsync per event-loop turn). With
//!   `everysec` that thread syncs once a second; with `no` the kernel
//!   decides. Since every policy writes before replying, a
//!   process crash (kill -9) loses no acknowledged write under any of
//!   them; the policy bounds what a machine crash can take.
//! - Rewrites (BGREWRITEAOF, the automatic trigger, turning AOF on) use
//!   the fork-less keyspace cut of snapshot.rs: at the cut the AOF moves to
//!   a new incremental file, and the new base is that instant's snapshot,
//!   so base + new increments is exact. The manifest is the commit point:
//!   until the new base is listed, loading uses the old base and every
//!   increment.

use crate::snapshot::{write_file, Chunks};
use crate::Shared;
use larder_persist::aof::{self as layout, Manifest, Part};
use larder_protocol::{parse_request, Request, RequestLimits};
use larder_store::{Effect, EffectSink};
use parking_lot::Mutex;
use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering::*};
use std::sync::{Arc, Weak};

/// `appendfsync` values.
const ALWAYS: u8 = 0;
const EVERYSEC: u8 = 1;
const NO: u8 = 2;

fn policy_of(name: &str) -> u8 {
    match name {
        "always" => ALWAYS,
        "no" => NO,
        _ => EVERYSEC,
    }
}

/// Bytes appended but not yet written, with the SELECT state of the file.
#[derive(Default)]
struct Pending {
    buf: Vec<u8>,
    /// The database the file's last SELECT chose (None: a new file).
    db: Option<usize>,
    /// The second of the last `#TS:` annotation (aof-timestamp-enabled).
    ts: u64,
}

/// The incremental file being appended to.
struct Active {
    file: File,
}

/// The AOF's state; lives in `Shared` and subscribes to the effect stream.
pub struct Aof {
    /// Effects are being recorded.
    on: AtomicBool,
    policy: AtomicU8,
    /// `aof-timestamp-enabled`: a `#TS:<unix seconds>` line before the
    /// first command of each new second, as Redis writes, which
    /// redis-check-aof can truncate the file back to.
    timestamps: AtomicBool,
    pending: Mutex<Pending>,
    /// Positions in the stream of bytes since start: appended (moved
    /// under the pending lock), handed to the kernel, and on disk.
    appended: AtomicU64,
    written: AtomicU64,
    synced: AtomicU64,
    out: Mutex<Option<Active>>,
    /// The directory's manifest as last persisted, and where it lives.
    files: Mutex<Option<(PathBuf, String, Manifest)>>,
    pub rewrite_in_progress: AtomicBool,
    pub rewrite_scheduled: AtomicBool,
    rewrite_started_ms: AtomicU64,
    pub last_rewrite_secs: AtomicI64,
    pub last_rewrite_ok: AtomicBool,
    pub rewrites: AtomicU64,
    pub last_write_ok: AtomicBool,
    /// DEBUG AOF-FLUSH-SLEEP: µs to sleep before each write to the file
    /// (Redis's test knob, to catch a reply sent before its write).
    pub flush_sleep_us: AtomicU64,
    /// Why the last write failed (MISCONF names it).
    pub last_write_error: Mutex<String>,
    pub last_cow: AtomicU64,
    /// Sizes for INFO and the automatic rewrite: the base plus increments,
    /// and that total right after the last rewrite (or load).
    current_size: AtomicU64,
    base_size: AtomicU64,
    syncer: Mutex<bool>,
    /// Wakes the syncer thread when an `always` client waits.
    wake: parking_lot::Condvar,
    wake_lock: Mutex<()>,
    /// The synced position, for clients awaiting it (`always`).
    synced_tx: tokio::sync::watch::Sender<u64>,
    /// WAITAOF's clients, woken at each fsync.
    sync_waiters: crate::blocking::WakeList,
}

impl Default for Aof {
    fn default() -> Aof {
        Aof {
            on: AtomicBool::new(false),
            policy: AtomicU8::new(EVERYSEC),
            timestamps: AtomicBool::new(false),
            pending: Mutex::default(),
            appended: AtomicU64::new(0),
            written: AtomicU64::new(0),
            synced: AtomicU64::new(0),
            out: Mutex::new(None),
            files: Mutex::new(None),
            rewrite_in_progress: AtomicBool::new(false),
            rewrite_scheduled: AtomicBool::new(false),
            rewrite_started_ms: AtomicU64::new(0),
            last_rewrite_secs: AtomicI64::new(-1),
            last_rewrite_ok: AtomicBool::new(true),
            rewrites: AtomicU64::new(0),
            last_write_ok: AtomicBool::new(true),
            flush_sleep_us: AtomicU64::new(0),
            last_write_error: Default::default(),
            last_cow: AtomicU64::new(0),
            current_size: AtomicU64::new(0),
            base_size: AtomicU64::new(0),
            syncer: Mutex::new(false),
            wake: parking_lot::Condvar::new(),
            wake_lock: Mutex::new(()),
            synced_tx: tokio::sync::watch::channel(0).0,
            sync_waiters: Default::default(),
        }
    }
}

thread_local! {
    static STAGED: RefCell<Option<crate::propagate::Staged>> = const { RefCell::new(None) };
}

impl EffectSink for Aof {
    fn apply(&self, effect: &Effect<'_>) {
        if !self.on.load(Acquire) {
            return;
        }
        // Messages go to replicas only: replaying them would publish again.
        let name = effect.args.first().copied().unwrap_or_default();
        if name.eq_ignore_ascii_case(b"publish") || name.eq_ignore_ascii_case(b"spublish") {
            return;
        }
        if let Some(cmds) = crate::propagate::stage(&STAGED, effect) {
            self.append(cmds);
        }
    }
}

impl Aof {
    fn append(&self, cmds: Vec<(usize, Vec<u8>)>) {
        let mut p = self.pending.lock();
        let before = p.buf.len();
        let Pending { buf, db, ts } = &mut *p;
        if self.timestamps.load(Relaxed) {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
            if now > *ts {
                buf.extend_from_slice(format!("#TS:{now}\r\n").as_bytes());
                *ts = now;
            }
        }
        crate::propagate::append_selecting(buf, db, &cmds);
        // Moved only under the pending lock, so a reader holding it sees
        // the position of exactly the bytes in `buf`.
        self.appended.fetch_add((p.buf.len() - before) as u64, Release);
    }

    pub fn enabled(&self) -> bool {
        self.on.load(Relaxed)
    }

    /// How many bytes were appended so far: a client's writes are in the
    /// file, and on disk, once [`Self::synced`] reaches this position as
    /// it stood after them (WAITAOF).
    pub fn appended(&self) -> u64 {
        self.appended.load(Acquire)
    }

    /// How far the file is synced to disk. Under `appendfsync no` the
    /// kernel syncs when it likes, and this does not move: Redis's
    /// WAITAOF counts no local fsync then either.
    pub fn synced(&self) -> u64 {
        self.synced.load(Acquire)
    }

    /// A receiver that sees each new synced position (a replica's link
    /// reports it to its primary).
    pub fn subscribe_synced(&self) -> tokio::sync::watch::Receiver<u64> {
        self.synced_tx.subscribe()
    }

    /// WAITAOF's client `waiter` is woken at each fsync.
    pub fn wait_for_sync(&self, waiter: &Arc<crate::blocking::Waiter>) {
        self.sync_waiters.add(waiter);
    }

    pub fn set_policy(&self, name: &str) {
        self.policy.store(policy_of(name), Relaxed);
    }

    /// `aof-timestamp-enabled`.
    pub fn set_timestamps(&self, on: bool) {
        self.timestamps.store(on, Relaxed);
    }

    /// Called before a connection writes replies: what it (and anyone)
    /// appended so far reaches the file, and with `always` the disk.
    ///
    /// With `always` the connection does not sync itself: it wakes the
    /// syncer thread and awaits the synced position, so the runtime's
    /// workers go on reading other clients' commands, which then share
    /// the next fsync. Syncing on the worker instead (the first version)
    /// let one fsync cover only the one or two clients whose workers were
    /// free, and ran at a tenth of Redis's rate.
    pub async fn before_reply(&self) {
        if !self.on.load(Relaxed) {
            return;
        }
        let target = self.appended.load(Acquire);
        if self.policy.load(Relaxed) == ALWAYS {
            if self.synced.load(Acquire) >= target {
                return;
            }
            let mut rx = self.synced_tx.subscribe();
            {
                let _g = self.wake_lock.lock();
                self.wake.notify_one();
            }
            let _ = rx.wait_for(|&s| s >= target).await;
            return;
        }
        if self.written.load(Acquire) >= target {
            return;
        }
        let mut out = self.out.lock();
        if self.written.load(Acquire) < target {
            self.write_locked(&mut out, false);
        }
    }

    /// Writes the pending bytes to the active file (and syncs it). The
    /// caller holds `out`. Under `always` a failed write or sync ends the
    /// process, as Redis does: the clients waiting were promised the disk.
    fn write_locked(&self, out: &mut Option<Active>, sync: bool) {
        let Some(active) = out.as_mut() else { return };
        let always = self.policy.load(Relaxed) == ALWAYS;
        let (buf, end) = {
            let mut p = self.pending.lock();
            (std::mem::take(&mut p.buf), self.appended.load(Acquire))
        };
        if !buf.is_empty() {
            match self.flush_sleep_us.load(Relaxed) {
                0 => {}
                us => std::thread::sleep(std::time::Duration::from_micros(us)),
            }
            match active.file.write_all(&buf) {
                Ok(()) => {
                    self.current_size.fetch_add(buf.len() as u64, Relaxed);
                    self.written.store(end, Release);
                    self.last_write_ok.store(true, Relaxed);
                }
                Err(e) if always => {
                    tracing::error!("Can't write to the AOF with appendfsync always: {e}. Exiting...");
                    std::process::exit(1);
                }
                Err(e) => {
                    // Kept out of the position: no client is told its
                    // write is in the file; the next write retries.
                    tracing::warn!("Error writing to the AOF file: {e}");
                    *self.last_write_error.lock() = e.to_string();
                    self.last_write_ok.store(false, Relaxed);
                    let mut p = self.pending.lock();
                    let mut rest = buf;
                    rest.extend_from_slice(&p.buf);
                    p.buf = rest;
                    return;
                }
            }
        }
        if sync && self.synced.load(Acquire) < self.written.load(Acquire) {
            let w = self.written.load(Acquire);
            match active.file.sync_data() {
                Ok(()) => self.mark_synced(w),
                Err(e) if always => {
                    tracing::error!("Can't persist the AOF for fsync error with appendfsync always: {e}. Exiting...");
                    std::process::exit(1);
                }
                Err(e) => tracing::warn!("Error syncing the AOF file: {e}"),
            }
        }
    }

    /// Publishes a synced position to everyone awaiting one (a policy
    /// changed from `always` while clients wait reaches them here too).
    fn mark_synced(&self, w: u64) {
        self.synced.fetch_max(w, Release);
        self.synced_tx.send_replace(self.synced.load(Acquire));
        self.sync_waiters.wake_all();
    }

    /// The syncer thread: under `always`, writes and syncs whenever a
    /// client waits (everyone appended meanwhile shares the fsync); under
    /// `everysec`, once a second, syncing a clone of the file handle
    /// outside the file lock so writers never wait on the disk.
    fn start_syncer(self: &Arc<Self>) {
        let mut started = self.syncer.lock();
        if *started {
            return;
        }
        *started = true;
        let me: Weak<Aof> = Arc::downgrade(self);
        let _ = std::thread::Builder::new().name("larder-aof-fsync".into()).spawn(move || {
            let mut last_everysec = std::time::Instant::now();
            loop {
                let Some(aof) = me.upgrade() else { return };
                {
                    let mut g = aof.wake_lock.lock();
                    let idle = !aof.on.load(Relaxed)
                        || aof.policy.load(Relaxed) != ALWAYS
                        || aof.synced.load(Acquire) >= aof.appended.load(Acquire);
                    if idle {
                        aof.wake.wait_for(&mut g, std::time::Duration::from_millis(100));
                    }
                }
                // Writing out frees what the workers appended.
                crate::memory::publish();
                if !aof.on.load(Relaxed) {
                    continue;
                }
                match aof.policy.load(Relaxed) {
                    ALWAYS if aof.synced.load(Acquire) < aof.appended.load(Acquire) => {
                        let mut out = aof.out.lock();
                        aof.write_locked(&mut out, true);
                    }
                    EVERYSEC if last_everysec.elapsed() >= std::time::Duration::from_secs(1) => {
                        last_everysec = std::time::Instant::now();
                        let (file, w) = {
                            let mut out = aof.out.lock();
                            aof.write_locked(&mut out, false);
                            (out.as_ref().and_then(|a| a.file.try_clone().ok()), aof.written.load(Acquire))
                        };
                        if let Some(f) = file {
                            if aof.synced.load(Acquire) < w && f.sync_data().is_ok() {
                                aof.mark_synced(w);
                            }
                        }
                    }
                    _ => {}
                }
            }
        });
    }

    /// Writes and syncs everything pending (shutdown, turning AOF off).
    pub fn flush_all(&self) {
        let mut out = self.out.lock();
        self.write_locked(&mut out, true);
    }

    pub fn sizes(&self) -> (u64, u64) {
        (self.current_size.load(Relaxed), self.base_size.load(Relaxed))
    }

    pub fn pending_len(&self) -> usize {
        self.pending.lock().buf.len()
    }

    pub fn rewrite_elapsed_secs(&self, now_ms: u64) -> i64 {
        if self.rewrite_in_progress.load(Relaxed) {
            (now_ms.saturating_sub(self.rewrite_started_ms.load(Relaxed)) / 1000) as i64
        } else {
            -1
        }
    }
}

fn aof_dir(shared: &Shared) -> (PathBuf, String) {
    let cfg = shared.config.read();
    (PathBuf::from(&cfg.dir).join(&cfg.appenddirname), cfg.appendfilename.clone())
}

/// Replaces the manifest atomically (see `snapshot::replace_file`).
fn persist_manifest(dir: &Path, prefix: &str, m: &Manifest) -> std::io::Result<()> {
    let target = dir.join(layout::manifest_name(prefix));
    let tmp = dir.join(format!("temp-{}", layout::manifest_name(prefix)));
    crate::snapshot::replace_file(&target, &tmp, m.render().as_bytes())
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Start-up with `appendonly yes`: loads the AOF directory if it has a
/// manifest and goes on appending to its last increment. Without one,
/// loads dump.rdb if there is one (Redis would start empty here, the
/// classic way to lose a dataset by switching AOF on in the config file)
/// and writes a base from it, so the AOF is complete from the start.
/// DEBUG LOADAOF: what is appended goes to disk, the dataset is emptied
/// and the files are read back. The replay itself is not appended again.
pub fn reload(shared: &Shared) -> anyhow::Result<()> {
    let aof = &shared.aof;
    aof.flush_all();
    shared.keyspace.flush_all();
    let (dir, prefix) = aof_dir(shared);
    let Some(manifest) = read_manifest(&dir, &prefix)? else { return Ok(()) };
    let was_on = aof.on.swap(false, AcqRel);
    let loaded = load_unlimited(shared, &dir, &manifest);
    aof.on.store(was_on, Release);
    loaded.map(|_| ())
}

/// The manifest in `dir`, or None when there is none.
fn read_manifest(dir: &Path, prefix: &str) -> anyhow::Result<Option<Manifest>> {
    let path = dir.join(layout::manifest_name(prefix));
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => anyhow::bail!("reading {}: {e}", path.display()),
    };
    Manifest::parse(&text).map(Some).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Loads the files `manifest` lists. maxmemory does not apply meanwhile,
/// as in Redis: a replayed write must never be refused or make room by
/// evicting.
fn load_unlimited(shared: &Shared, dir: &Path, manifest: &Manifest) -> anyhow::Result<u64> {
    shared.memory.set_limits(0, larder_store::Policy::NoEviction, 5, 10);
    let loaded = load_parts(shared, dir, manifest);
    let config = shared.config.read().clone();
    shared.apply_config(&config);
    loaded
}

/// An AOF from before Redis 7 (one file, `appendfilename` in `dir`) is
/// moved into the AOF directory as its base, as Redis 7 does on its first
/// start over it: when there is no AOF directory, or no manifest listing
/// anything, or a manifest listing only that file as its base while it
/// still lies in `dir` (a move that was cut short). The manifest naming it
/// is written before the file moves, so a crash between the two leaves the
/// last case, which this finishes.
fn upgrade_old_style(
    shared: &Shared,
    dir: &Path,
    prefix: &str,
    manifest: Option<Manifest>,
) -> anyhow::Result<Option<Manifest>> {
    let old = PathBuf::from(&shared.config.read().dir).join(prefix);
    let unfinished = |m: &Manifest| {
        m.incrs.is_empty() && m.base.as_ref().is_some_and(|b| b.name == prefix) && !dir.join(prefix).exists()
    };
    let upgrade = old.is_file()
        && match &manifest {
            _ if !dir.is_dir() => true,
            None => true,
            Some(m) => (m.base.is_none() && m.incrs.is_empty()) || unfinished(m),
        };
    if !upgrade {
        return Ok(manifest);
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("Can't open or create append-only dir {}: {e}", dir.display()))?;
    let mut manifest = manifest.unwrap_or_default();
    manifest.base = Some(Part { name: prefix.to_string(), seq: 1, kind: layout::Kind::Base });
    persist_manifest(dir, prefix, &manifest).map_err(|e| anyhow::anyhow!("writing the AOF manifest: {e}"))?;
    std::fs::rename(&old, dir.join(prefix)).map_err(|e| {
        anyhow::anyhow!("Error trying to rename the existing AOF to the new AOF directory {}: {e}", dir.display())
    })?;
    tracing::info!("Successfully migrated an old-style AOF into the AOF directory {}.", dir.display());
    Ok(Some(manifest))
}

pub fn load_at_startup(shared: &Shared) -> anyhow::Result<()> {
    let (dir, prefix) = aof_dir(shared);
    let manifest = upgrade_old_style(shared, &dir, &prefix, read_manifest(&dir, &prefix)?)?;
    // A manifest that lists nothing is no AOF, as in Redis.
    let Some(manifest) = manifest.filter(|m| m.base.is_some() || !m.incrs.is_empty()) else {
        crate::snapshot::load_rdb_file(shared, true, false)?;
        return start(shared, true).map_err(|e| anyhow::anyhow!("creating the AOF: {e}"));
    };
    // Every listed file must be there before any is loaded: one missing is
    // a fatal error, as in Redis (and in its words).
    for part in manifest.base.iter().chain(&manifest.incrs) {
        if let Err(e) = std::fs::metadata(dir.join(&part.name)) {
            anyhow::bail!("Unable to obtain the AOF file {} length. stat: {e}", part.name);
        }
    }
    let total = load_unlimited(shared, &dir, &manifest)?;
    let aof = &shared.aof;
    aof.current_size.store(total, Relaxed);
    aof.base_size.store(total, Relaxed);
    shared.snapshots.seq_at_save.store(shared.keyspace.write_count(), Relaxed);
    // Go on appending to the last increment, or a new one.
    let mut manifest = manifest;
    let file = match manifest.incrs.last() {
        Some(p) => OpenOptions::new().append(true).open(dir.join(&p.name))?,
        None => add_increment(&dir, &prefix, &mut manifest, true).map_err(anyhow::Error::msg)?,
    };
    *aof.out.lock() = Some(Active { file });
    *aof.files.lock() = Some((dir, prefix, manifest));
    aof.set_policy(&shared.config.read().appendfsync);
    aof.pending.lock().db = None;
    aof.on.store(true, Release);
    shared.aof.start_syncer();
    Ok(())
}

/// Loads the base and the increments a manifest lists; returns the bytes kept.
fn load_parts(shared: &Shared, dir: &Path, manifest: &Manifest) -> anyhow::Result<u64> {
    let started = std::time::Instant::now();
    let mut total = 0u64;
    let files = manifest.base.iter().chain(&manifest.incrs);
    let count = files.clone().count();
    // INFO's loading figures: the files' sizes, and those read so far
    // (an RDB base counts as it goes, see `snapshot::load_rdb`).
    let loading = &shared.snapshots.loading;
    let sizes = files.clone().map(|p| std::fs::metadata(dir.join(&p.name)).map_or(0, |m| m.len())).sum();
    loading.set_total(sizes);
    let mut read = 0u64;
    for (i, part) in files.enumerate() {
        let path = dir.join(&part.name);
        let data = std::fs::read(&path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
        let what = if part.kind == layout::Kind::Base { "base" } else { "increment" };
        tracing::info!("Loading the AOF {what} {} ({} bytes)…", path.display(), data.len());
        total += load_file(shared, &data, &path, i + 1 == count)? as u64;
        read += data.len() as u64;
        loading.loaded_bytes.store(read, Relaxed);
    }
    tracing::info!("DB loaded from append only file: {:.3} seconds", started.elapsed().as_secs_f64());
    Ok(total)
}

/// Loads one AOF file; returns the bytes kept. A file that starts as an
/// RDB image does (a base, or an old-style AOF with its RDB preamble) is
/// loaded as one, and any commands after the image are replayed, as
/// Redis's `loadSingleAppendOnlyFile` does whatever the file's name.
fn load_file(shared: &Shared, data: &[u8], path: &Path, last: bool) -> anyhow::Result<usize> {
    let from = match data.starts_with(b"REDIS") {
        true => crate::snapshot::load_rdb(shared, data, path, true)?,
        false => 0,
    };
    match from == data.len() {
        true => Ok(from),
        false => replay(shared, data, from, path, last),
    }
}

/// Replays a file's RESP commands, from byte `from` on (past any RDB
/// preamble), through the dispatcher, as a client would send them.
/// Returns how many bytes of the file were kept. A torn tail on the
/// last file (a command cut short, or a MULTI without its EXEC) is cut off
/// with a warning when `aof-load-truncated` is yes, and is an error
/// otherwise; anything malformed before the tail is always an error.
fn replay(shared: &Shared, data: &[u8], from: usize, path: &Path, last: bool) -> anyhow::Result<usize> {
    let addr = crate::conn::client::Peer::Tcp(([0, 0, 0, 0], 0).into());
    let (info, outbox) = shared.clients.register(addr.clone(), addr, -1, shared.uptime_ms());
    let mut client = crate::conn::client::Client::new(info, outbox, shared.acl.default_user(), true);
    client.replaying = true;
    let result = replay_as(shared, &mut client, data, from, path, last);
    shared.clients.unregister(client.id());
    result
}

fn replay_as(
    shared: &Shared,
    client: &mut crate::conn::client::Client,
    data: &[u8],
    from: usize,
    path: &Path,
    last: bool,
) -> anyhow::Result<usize> {
    let limits = RequestLimits::default();
    let mut req = Request::default();
    let mut out = crate::conn::reply::Reply::default();
    let (mut pos, mut commands, mut failed) = (from, 0u64, 0u64);
    // Where the open MULTI began: a file that ends inside it ends there.
    let mut multi_at: Option<usize> = None;
    let torn = loop {
        if pos == data.len() {
            break multi_at;
        }
        // An annotation (`#TS:...`, aof-timestamp-enabled) is a line of
        // its own, skipped as Redis's loader skips it.
        if data[pos] == b'#' {
            match data[pos..].iter().position(|&b| b == b'\n') {
                Some(n) => {
                    pos += n + 1;
                    continue;
                }
                None => break Some(multi_at.unwrap_or(pos)),
            }
        }
        if data[pos] != b'*' {
            anyhow::bail!(
                "Bad file format reading the append only file {} at byte {pos}: make a backup of your AOF file, \
                 then use redis-check-aof --fix <filename.manifest>",
                path.display()
            );
        }
        let n = match parse_request(&data[pos..], &limits, &mut req) {
            Ok(Some(n)) => n,
            Ok(None) => break Some(multi_at.unwrap_or(pos)),
            Err(e) => {
                anyhow::bail!("Bad file format reading the append only file {} at byte {pos}: {e}", path.display())
            }
        };
        let name = req.arg(&data[pos..pos + n], 0);
        // A command this server does not know stops the load, as in Redis:
        // skipping it would load something other than what was logged.
        if shared.commands.lookup(name).is_none() {
            anyhow::bail!(
                "Unknown command '{}' reading the append only file {}",
                String::from_utf8_lossy(name),
                path.display()
            );
        }
        if name.eq_ignore_ascii_case(b"MULTI") {
            multi_at = Some(pos);
        } else if name.eq_ignore_ascii_case(b"EXEC") {
            multi_at = None;
        }
        out.clear();
        crate::dispatch::dispatch(shared, client, &req, &data[pos..pos + n], &mut out);
        if out.first() == Some(&b'-') {
            failed += 1;
            if failed <= 5 {
                tracing::warn!(
                    "AOF command at byte {pos} of {} failed: {}",
                    path.display(),
                    String::from_utf8_lossy(&out).trim_end()
                );
            }
        }
        commands += 1;
        pos += n;
        if commands.is_multiple_of(1_000_000) {
            tracing::info!("Loading {}: {commands} commands, {pos} of {} bytes", path.display(), data.len());
        }
    };
    let kept = match torn {
        None => data.len(),
        Some(at) => {
            if client.multi.is_some() {
                let discard = b"*1\r\n$7\r\nDISCARD\r\n";
                if let Ok(Some(n)) = parse_request(discard, &limits, &mut req) {
                    crate::dispatch::dispatch(shared, client, &req, &discard[..n], &mut out);
                }
            }
            if !last || !shared.config.read().aof_load_truncated {
                anyhow::bail!(
                    "Unexpected end of file reading the append only file {} at byte {at} of {}. \
                     You can: 1) Make a backup of your AOF file, then use redis-check-aof --fix <filename.manifest>. \
                     2) Alternatively you can set the 'aof-load-truncated' configuration option to yes and restart the server.",
                    path.display(),
                    data.len()
                );
            }
            tracing::warn!(
                "!!! Warning: short read while loading the AOF file {}!!! AOF loaded anyway because \
                 aof-load-truncated is enabled; the last {} bytes (an incomplete command or transaction) were cut off",
                path.display(),
                data.len() - at
            );
            OpenOptions::new().write(true).open(path)?.set_len(at as u64)?;
            at
        }
    };
    tracing::info!("{commands} commands replayed from {} ({failed} answered with an error)", path.display());
    Ok(kept)
}

/// Turns the AOF on (start-up without files, CONFIG SET appendonly yes) or
/// rewrites it (BGREWRITEAOF): a cut switches appends to a new increment
/// and writes the cut's snapshot as the new base. `wait` runs the base
/// write on this thread (start-up does, so the AOF is whole before the
/// first client).
pub fn start(shared: &Shared, wait: bool) -> Result<(), String> {
    rewrite(shared, wait, true)
}

/// A rewrite; `turn_on` starts recording at the cut (BGREWRITEAOF with
/// the AOF off writes the files, as Redis's does, but records nothing).
pub fn rewrite(shared: &Shared, wait: bool, turn_on: bool) -> Result<(), String> {
    let aof = &shared.aof;
    if aof.rewrite_in_progress.swap(true, AcqRel) {
        return Err("Background append only file rewriting already in progress".into());
    }
    let (dir, prefix) = aof_dir(shared);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        aof.rewrite_in_progress.store(false, Release);
        return Err(format!("creating {}: {e}", dir.display()));
    }
    let now = shared.clock.now_ms();
    aof.rewrite_started_ms.store(now, Relaxed);
    let chunks = Arc::new(Chunks::new(now, crate::snapshot::SaveRecency::of(shared)));
    let mut switched: Result<(u64, u64), String> = Err("the cut did not run".into());
    let cut = shared.keyspace.begin_cut(chunks.clone(), || switched = switch_increment(shared, &dir, &prefix, turn_on));
    if !cut {
        aof.rewrite_in_progress.store(false, Release);
        return Err("Background save already in progress".into());
    }
    let (base_seq, incr_seq) = match switched {
        Ok(s) => s,
        Err(e) => {
            chunks.end_unwalked(shared);
            aof.rewrite_in_progress.store(false, Release);
            return Err(e);
        }
    };
    aof.start_syncer();
    let shared = shared.arc();
    let job = move || {
        let result = write_base(&shared, &chunks, &dir, &prefix, base_seq, incr_seq);
        let aof = &shared.aof;
        aof.last_cow.store(chunks.peak_bytes(), Relaxed);
        aof.last_rewrite_secs.store((shared.clock.now_ms().saturating_sub(now) / 1000) as i64, Relaxed);
        match &result {
            Ok(()) => {
                // The base written at start-up is not a rewrite anyone asked for.
                if !wait {
                    aof.rewrites.fetch_add(1, Relaxed);
                }
                aof.last_rewrite_ok.store(true, Relaxed);
                tracing::info!("Background AOF rewrite finished successfully");
            }
            Err(e) => {
                aof.last_rewrite_ok.store(false, Relaxed);
                tracing::warn!("Background AOF rewrite failed: {e}");
            }
        }
        aof.rewrite_in_progress.store(false, Release);
        crate::memory::publish();
        result
    };
    if wait {
        return job();
    }
    std::thread::Builder::new().name("larder-aof-rewrite".into()).spawn(job).map_err(|e| e.to_string())?;
    Ok(())
}

/// At the cut (every shard locked): the old increment gets everything
/// appended before the cut, a new increment starts, and the manifest,
/// still listing the old base and increments, adds it. Recording starts
/// here if the AOF was off. Returns the new base's and increment's seqs.
///
/// With the AOF off until now, the files on disk describe the data as it
/// was when it went off (or as another run left it): the new parts are
/// numbered after them, so none opens an old file, and the manifest on
/// disk is left alone until the new base replaces it whole, as Redis's
/// temporary increment does. (Numbering from 1 again appended the new
/// increment to the old one, and a restart replayed writes made before
/// the AOF went off over the new base: a key deleted meanwhile came back.)
fn switch_increment(shared: &Shared, dir: &Path, prefix: &str, turn_on: bool) -> Result<(u64, u64), String> {
    let aof = &shared.aof;
    let mut out = aof.out.lock();
    aof.write_locked(&mut out, true);
    let mut files = aof.files.lock();
    let (mut manifest, listed) = match files.take() {
        Some((_, _, m)) => (m, true),
        None => {
            let on_disk = read_manifest(dir, prefix).unwrap_or_else(|e| {
                tracing::warn!("{e}: the AOF files there are replaced by the rewrite");
                None
            });
            (on_disk.unwrap_or_default(), false)
        }
    };
    let (base_seq, incr_seq) = manifest.next_seqs();
    let file = add_increment(dir, prefix, &mut manifest, listed)?;
    *out = Some(Active { file });
    aof.pending.lock().db = None;
    *files = Some((dir.to_path_buf(), prefix.to_string(), manifest));
    if turn_on {
        aof.set_policy(&shared.config.read().appendfsync);
        aof.on.store(true, Release);
    }
    Ok((base_seq, incr_seq))
}

/// Creates the manifest's next incremental file and lists it (on disk
/// too if `persist`); returns the file, open for writing. A file already
/// there by that name is no manifest's (a crash between making it and
/// listing it) and starts over empty.
fn add_increment(dir: &Path, prefix: &str, manifest: &mut Manifest, persist: bool) -> Result<File, String> {
    let part = Part::incr(prefix, manifest.next_seqs().1);
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(dir.join(&part.name))
        .map_err(|e| format!("creating {}: {e}", part.name))?;
    manifest.incrs.push(part);
    if persist {
        persist_manifest(dir, prefix, manifest).map_err(|e| format!("writing the AOF manifest: {e}"))?;
    }
    Ok(file)
}

/// Writes the cut as the new base, then commits it in the manifest with
/// only the increments from the cut on, and deletes what it replaced.
fn write_base(
    shared: &Shared,
    chunks: &Chunks,
    dir: &Path,
    prefix: &str,
    base_seq: u64,
    incr_seq: u64,
) -> Result<(), String> {
    let base = Part::base(prefix, base_seq);
    let tmp = dir.join(format!("temp-rewriteaof-{}.aof", std::process::id()));
    let written = write_file(shared, &tmp, &dir.join(&base.name), &crate::snapshot::Aux::AofBase, |w| {
        chunks.write_cut(shared, w)
    });
    chunks.end_unwalked(shared);
    written?;
    let aof = &shared.aof;
    let mut files = aof.files.lock();
    let Some((_, _, manifest)) = files.as_mut() else {
        return Err("the AOF was turned off during the rewrite".into());
    };
    let mut next = manifest.clone();
    let old: Vec<Part> =
        next.base.take().into_iter().chain(next.incrs.iter().filter(|p| p.seq < incr_seq).cloned()).collect();
    next.base = Some(base);
    next.incrs.retain(|p| p.seq >= incr_seq);
    persist_manifest(dir, prefix, &next).map_err(|e| format!("writing the AOF manifest: {e}"))?;
    *manifest = next;
    for p in old {
        let _ = std::fs::remove_file(dir.join(&p.name));
    }
    let total: u64 = manifest.base.iter().chain(&manifest.incrs).map(|p| file_size(&dir.join(&p.name))).sum();
    aof.current_size.store(total, Relaxed);
    aof.base_size.store(total, Relaxed);
    Ok(())
}

/// CONFIG SET appendonly no: the last bytes reach the disk and recording
/// stops; the files stay, as Redis leaves them.
pub fn stop(shared: &Shared) {
    let aof = &shared.aof;
    aof.on.store(false, Release);
    aof.flush_all();
    *aof.out.lock() = None;
    *aof.files.lock() = None;
    // A WAITAOF waiting for a local fsync gets Redis's error now, not at
    // its timeout (it looks again and finds the AOF off).
    aof.sync_waiters.wake_all();
}

/// The cron's check: a scheduled rewrite, or growth past
/// `auto-aof-rewrite-percentage` of the size after the last rewrite.
pub fn cron_tick(shared: &Shared) {
    let aof = &shared.aof;
    if aof.rewrite_in_progress.load(Relaxed) || shared.keyspace.cut_active() {
        return;
    }
    if aof.rewrite_scheduled.swap(false, Relaxed) {
        let _ = rewrite(shared, false, aof.enabled());
        return;
    }
    let (pct, min) = {
        let cfg = shared.config.read();
        (cfg.auto_aof_rewrite_percentage, cfg.auto_aof_rewrite_min_size)
    };
    let (current, base) = aof.sizes();
    if aof.enabled() && pct > 0 && current > min {
        let base = base.max(1);
        let growth = (current.saturating_sub(base)) * 100 / base;
        if growth >= pct {
            tracing::info!("Starting automatic rewriting of AOF on {growth}% growth");
            let _ = start(shared, false);
        }
    }
}
