//! Snapshots: SAVE writes the dataset to `dir`/`dbfilename` as an RDB file
//! (larder-persist's `file`), and the server loads that file when it
//! starts, so a restart keeps the data and files move both ways between
//! Redis and Larder.
//!
//! SAVE runs with the world lock held exclusively (the command is
//! EXCLUSIVE in the table), so it is a point-in-time cut across every
//! shard, as Redis's SAVE is.
//!
//! BGSAVE does not fork. It starts a keyspace cut (see `begin_cut` in
//! larder-store): one instant across every shard, after which the first
//! command to touch a shard the saver has not reached encodes that shard,
//! as it was, into a chunk, and the saver thread walks the shards in order
//! doing the same, writing chunks to the file as they come. Strings are
//! captured as handles to the same bytes, collections encoded. The server
//! keeps serving throughout; the extra memory is what is captured but not
//! yet written: encoded collections, string handles, and the old strings
//! that writes replaced meanwhile. INFO reports the first two's peak as
//! `rdb_last_cow_size` (the field where Redis reports its fork's
//! copy-on-write pages); scripts/memory-bench measures the whole.
//!
//! Either way the file is written under a temporary name, synced, then
//! renamed, so a crash mid-save leaves the previous snapshot intact. The
//! `save <seconds> <changes>` schedule runs BGSAVE from the cron.

use crate::replication::SavedPosition;
use crate::Shared;
use bytes::{Bytes, BytesMut};
use larder_persist::file::{self, Item, Recency};
use larder_store::{CutSink, Entry, Key, StrValue, Value};
use parking_lot::Mutex;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};
use std::sync::Arc;

/// What INFO persistence and LASTSAVE report.
pub struct Snapshots {
    /// Unix seconds of the last successful save (start-up until then).
    pub last_save: AtomicU64,
    pub last_failed: AtomicBool,
    /// The effect stream's position at the last save or load.
    pub seq_at_save: AtomicU64,
    pub saves: AtomicU64,
    /// A BGSAVE is running; its start in ms (clock time).
    pub bgsave_in_progress: AtomicBool,
    pub bgsave_started_ms: AtomicU64,
    /// Seconds the last BGSAVE took (-1: none yet).
    pub last_bgsave_secs: AtomicI64,
    /// What a cut holds in memory now (BGSAVE's or an AOF rewrite's:
    /// one at a time), and the last BGSAVE's peak.
    pub current_cow: AtomicU64,
    pub last_cow: AtomicU64,
    /// Unix seconds of the last BGSAVE attempt (the schedule retries a
    /// failed one after 5 s, as Redis does).
    pub last_attempt: AtomicU64,
    /// BGSAVE SCHEDULE arrived while an AOF rewrite held the cut.
    pub scheduled: AtomicBool,
    /// The last RDB load (start-up, DEBUG RELOAD, a replica's full sync):
    /// keys loaded, and keys skipped as already expired.
    pub last_load_keys: AtomicU64,
    pub last_load_expired: AtomicU64,
    /// The running BGSAVE's cut, for FLUSHALL to stop ([`abort_bgsave`]).
    running: Mutex<Option<Arc<Chunks>>>,
    /// A load in progress, while clients are served.
    pub loading: Loading,
}

/// A load of the dataset while the server accepts connections: the
/// start-up load (an RDB or the AOF), DEBUG RELOAD, DEBUG LOADAOF. As
/// Redis serves clients between chunks of its load, commands without
/// the `loading` flag are refused with LOADING, and INFO persistence
/// shows how far it has got. A client that connects
/// meanwhile learns at once why it waits, where before it sat in the
/// listen backlog, unanswered, until the load was done.
#[derive(Default)]
pub struct Loading {
    pub active: AtomicBool,
    /// Unix seconds when the load began.
    pub started_s: AtomicU64,
    /// Bytes of the files to load, and of those read so far.
    pub total_bytes: AtomicU64,
    pub loaded_bytes: AtomicU64,
    /// The `used-mem` the image recorded when it was saved.
    pub rdb_used_mem: AtomicU64,
    /// The load has found its files and set `total_bytes`.
    sized: AtomicBool,
}

impl Loading {
    pub fn begin(&self, now_ms: u64) {
        self.started_s.store(now_ms / 1000, Relaxed);
        self.total_bytes.store(0, Relaxed);
        self.loaded_bytes.store(0, Relaxed);
        self.sized.store(false, Relaxed);
        self.active.store(true, Relaxed);
    }

    /// The files to load come to `total` bytes (INFO's
    /// `loading_total_bytes`); none read yet.
    pub fn set_total(&self, total: u64) {
        self.total_bytes.store(total, Relaxed);
        self.loaded_bytes.store(0, Relaxed);
        self.sized.store(true, Release);
    }

    /// Waits until the load has sized its files or ended: the start-up
    /// serves clients only then, so INFO never shows a load of 0 bytes
    /// (Redis sizes its file before it serves anyone).
    pub async fn sized(&self) {
        while !self.sized.load(Acquire) && self.is_active() {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }

    pub fn end(&self) {
        self.active.store(false, Relaxed);
    }

    pub fn is_active(&self) -> bool {
        self.active.load(Relaxed)
    }

    /// Loading until the guard drops: DEBUG RELOAD and DEBUG LOADAOF, which
    /// Redis runs as loads too (other clients get LOADING meanwhile).
    pub fn hold(&self, now_ms: u64) -> LoadingGuard<'_> {
        self.begin(now_ms);
        LoadingGuard(self)
    }
}

/// See [`Loading::hold`].
pub struct LoadingGuard<'a>(&'a Loading);

impl Drop for LoadingGuard<'_> {
    fn drop(&mut self) {
        self.0.end();
    }
}

impl Default for Snapshots {
    fn default() -> Snapshots {
        Snapshots {
            last_save: Default::default(),
            last_failed: Default::default(),
            seq_at_save: Default::default(),
            saves: Default::default(),
            bgsave_in_progress: Default::default(),
            bgsave_started_ms: Default::default(),
            last_bgsave_secs: AtomicI64::new(-1),
            current_cow: Default::default(),
            last_cow: Default::default(),
            last_attempt: Default::default(),
            scheduled: Default::default(),
            loading: Default::default(),
            last_load_keys: Default::default(),
            last_load_expired: Default::default(),
            running: Default::default(),
        }
    }
}

fn path(shared: &Shared) -> PathBuf {
    let cfg = shared.config.read();
    PathBuf::from(&cfg.dir).join(&cfg.dbfilename)
}

/// Writes the snapshot. The caller holds the world lock exclusively.
pub fn save(shared: &Shared) -> Result<u64, String> {
    if shared.snapshots.bgsave_in_progress.load(Relaxed) {
        return Err("Background save already in progress".into());
    }
    let target = path(shared);
    let tmp = target.with_file_name(format!("temp-{}.rdb", std::process::id()));
    let seq = shared.keyspace.write_count();
    let aux = Aux::Rdb(shared.replication.saved_position());
    let written = write_file(shared, &tmp, &target, &aux, |w| write_keyspace(shared, w));
    finished(shared, &target, &written, seq);
    written
}

/// Replaces `target` with `bytes` so a crash leaves the old file or the
/// new one, never half of one: written to `tmp`, synced, renamed over
/// `target`, and the directory synced so the rename survives too. `tmp`
/// goes if a step fails. The AOF manifest and CONFIG REWRITE's file.
pub(crate) fn replace_file(target: &Path, tmp: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let done = (|| {
        let mut f = std::fs::File::create(tmp)?;
        std::io::Write::write_all(&mut f, bytes)?;
        f.sync_all()?;
        std::fs::rename(tmp, target)
    })();
    if done.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    done?;
    let dir = target.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::File::open(dir)?.sync_all()
}

/// Writes an RDB file to `tmp` (header, `body`'s keys, function
/// libraries, trailer, fsync) and renames it over `target`. The temporary
/// file goes if any step fails. Returns what `body` returns (keys written).
pub(crate) fn write_file(
    shared: &Shared,
    tmp: &Path,
    target: &Path,
    aux: &Aux,
    body: impl FnOnce(&mut FileWriter) -> Result<u64, String>,
) -> Result<u64, String> {
    let written = start_file(shared, tmp, aux).and_then(|mut w| {
        let keys = body(&mut w)?;
        end_file(shared, w)?;
        std::fs::rename(tmp, target).map_err(|e| format!("rename to {}: {e}", target.display()))?;
        Ok(keys)
    });
    if written.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    written
}

/// Records a save's outcome: `seq` is the effect stream's position at its cut.
fn finished(shared: &Shared, target: &Path, written: &Result<u64, String>, seq: u64) {
    let snaps = &shared.snapshots;
    match written {
        Ok(keys) => {
            tracing::info!("DB saved on disk: {keys} keys in {}", target.display());
            snaps.last_save.store(shared.clock.now_ms() / 1000, Relaxed);
            snaps.seq_at_save.store(seq, Relaxed);
            snaps.saves.fetch_add(1, Relaxed);
            snaps.last_failed.store(false, Relaxed);
        }
        // Stopped on purpose: the last save's status stands, as Redis's
        // does when it kills its own child.
        Err(e) if e == ABORTED => tracing::info!("Background saving stopped: {e}"),
        Err(e) => {
            tracing::warn!("Failed saving the DB: {e}");
            snaps.last_failed.store(true, Relaxed);
        }
    }
}

/// Why a BGSAVE stopped short when FLUSHALL stopped it.
const ABORTED: &str = "FLUSHALL emptied the keyspace";

/// Stops a running BGSAVE, as Redis's FLUSHALL kills its saving child:
/// the file would hold the data just flushed, and a restart would bring
/// it back. The saver notices at its next shard, captures nothing more,
/// deletes its temporary file and ends the cut; this returns once it has,
/// so the flush that follows is not copied into a cut nobody will write.
pub fn abort_bgsave(shared: &Shared) {
    let Some(chunks) = shared.snapshots.running.lock().clone() else { return };
    chunks.failed.lock().get_or_insert_with(|| ABORTED.to_string());
    while shared.snapshots.running.lock().as_ref().is_some_and(|r| Arc::ptr_eq(r, &chunks)) {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

type FileWriter = file::Writer<BufWriter<std::fs::File>>;

/// What a file says in its aux fields beyond the server's own.
pub(crate) enum Aux {
    /// A dump.rdb, and where its data stands in a replication history (if
    /// anywhere): a replica restarted from it continues its primary's
    /// stream from there.
    Rdb(Option<SavedPosition>),
    /// An AOF's base (`aof-base 1`).
    AofBase,
    /// A replica's full-sync image: the database its stream goes on in
    /// when that stream (a primary's, passed on verbatim by this replica)
    /// will not begin with a SELECT. Redis's loader applies it.
    Image(Option<usize>),
}

/// Creates `tmp` and writes the header and aux fields.
fn start_file(shared: &Shared, tmp: &Path, aux: &Aux) -> Result<FileWriter, String> {
    let out = std::fs::File::create(tmp).map_err(|e| format!("create {}: {e}", tmp.display()))?;
    start(shared, BufWriter::new(out), aux)
}

/// The header and aux fields (Redis's, in its order), to any writer.
fn start<W: std::io::Write>(shared: &Shared, out: W, extra: &Aux) -> Result<file::Writer<W>, String> {
    let now = shared.clock.now_ms();
    let mut aux = vec![
        ("redis-ver", crate::cmd::connection::REDIS_VERSION.to_string()),
        ("redis-bits", "64".to_string()),
        ("ctime", (now / 1000).to_string()),
        ("used-mem", shared.memory.used().to_string()),
    ];
    match extra {
        Aux::Rdb(Some(at)) => {
            aux.push(("repl-stream-db", at.stream_db.to_string()));
            aux.push(("repl-id", at.replid.clone()));
            aux.push(("repl-offset", at.offset.to_string()));
        }
        Aux::Image(Some(db)) => aux.push(("repl-stream-db", db.to_string())),
        Aux::Rdb(None) | Aux::Image(None) | Aux::AofBase => {}
    }
    aux.push(("aof-base", if matches!(extra, Aux::AofBase) { "1" } else { "0" }.to_string()));
    let w = file::Writer::new(out, &aux).map_err(|e| e.to_string())?;
    Ok(if shared.config.read().extra_flag("rdbchecksum") { w } else { w.without_checksum() })
}

/// Writes the function libraries, the trailer, and syncs the file.
fn end_file(shared: &Shared, w: FileWriter) -> Result<(), String> {
    let out = end(shared, w)?;
    let file = out.into_inner().map_err(|e| e.to_string())?;
    file.sync_all().map_err(|e| e.to_string())
}

/// The function libraries and the trailer; gives the writer back.
fn end<W: std::io::Write>(shared: &Shared, mut w: file::Writer<W>) -> Result<W, String> {
    let codes: Vec<Bytes> = shared.scripting.with_libraries(|libs| libs.values().map(|l| l.code.clone()).collect());
    for code in &codes {
        w.function(code).map_err(|e| e.to_string())?;
    }
    w.finish().map_err(|e| e.to_string())
}

/// The whole dataset as an RDB image in memory (what a replica's full
/// sync is sent). The caller holds the world lock exclusively.
pub(crate) fn rdb_image(shared: &Shared, stream_db: Option<usize>) -> Result<Vec<u8>, String> {
    let mut w = start(shared, Vec::new(), &Aux::Image(stream_db))?;
    write_keyspace(shared, &mut w)?;
    end(shared, w)
}

/// Why a background save's cut could not begin.
enum Busy {
    /// A BGSAVE or a replica's image is being made.
    Saving,
    /// Another cut runs (an AOF rewrite).
    Cutting,
}

/// Marks a background save as running and begins its cut at `now`,
/// `at_cut` running while every shard is locked. BGSAVE and a replica's
/// image both start this way, one at a time.
fn begin_saving_cut(shared: &Shared, now: u64, at_cut: impl FnOnce()) -> Result<Arc<Chunks>, Busy> {
    let snaps = &shared.snapshots;
    if snaps.bgsave_in_progress.swap(true, Relaxed) {
        return Err(Busy::Saving);
    }
    let chunks = Arc::new(Chunks::new(now, SaveRecency::of(shared)));
    if !shared.keyspace.begin_cut(chunks.clone(), at_cut) {
        snaps.bgsave_in_progress.store(false, Relaxed);
        return Err(Busy::Cutting);
    }
    Ok(chunks)
}

/// A replica's image without stopping the world: a cut (as BGSAVE takes),
/// begun while `at_cut` runs with every shard locked, so the caller can
/// start the replica's stream at exactly that instant. The image is then
/// made on a thread of its own and handed to `done`; meanwhile INFO shows
/// a background save in progress, as Redis's does during a full sync, and
/// BGSAVE waits its turn. None if a cut is already running (a BGSAVE or
/// AOF rewrite): the caller makes the image under the world lock instead.
pub(crate) fn image_in_background<T: Clone + Send + 'static>(
    shared: &Arc<Shared>,
    stream_db: Option<usize>,
    at_cut: impl FnOnce() -> T,
    done: impl FnOnce(T, Result<Vec<u8>, String>) + Send + 'static,
) -> Option<T> {
    let snaps = &shared.snapshots;
    let now = shared.clock.now_ms();
    let mut made = None;
    let chunks = begin_saving_cut(shared, now, || made = Some(at_cut())).ok()?;
    let made = made.expect("begin_cut runs at_cut when it begins");
    let given = made.clone();
    // `done` must run either way: the replica waits for it.
    let done = Arc::new(Mutex::new(Some(done)));
    let (shared2, done2) = (shared.clone(), done.clone());
    let spawned = std::thread::Builder::new().name("larder-replsync".into()).spawn(move || {
        let shared = shared2;
        let image = start(&shared, Vec::new(), &Aux::Image(stream_db))
            .and_then(|mut w| chunks.write_cut(&shared, &mut w).map(|_| w))
            .and_then(|w| end(&shared, w));
        chunks.end_unwalked(&shared);
        shared.snapshots.bgsave_in_progress.store(false, Relaxed);
        if let Some(done) = done2.lock().take() {
            done(given, image);
        }
    });
    if let Err(e) = spawned {
        // The cut must end: nothing will walk it.
        shared.keyspace.finish_cut(now);
        snaps.bgsave_in_progress.store(false, Relaxed);
        if let Some(done) = done.lock().take() {
            done(made.clone(), Err(format!("could not start the image thread: {e}")));
        }
    }
    Some(made)
}

/// What a file keeps of each key's accesses under the policy in force, as
/// Redis's rdbSaveKeyValuePair decides: seconds idle under allkeys-lru and
/// volatile-lru, the decayed LFU counter under the LFU policies, nothing
/// under the rest.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SaveRecency {
    None,
    Idle,
    Freq { decay_minutes: u32 },
}

impl SaveRecency {
    pub(crate) fn of(shared: &Shared) -> SaveRecency {
        use larder_store::Policy;
        match shared.memory.policy() {
            Policy::AllKeysLru | Policy::VolatileLru => SaveRecency::Idle,
            Policy::AllKeysLfu | Policy::VolatileLfu => {
                SaveRecency::Freq { decay_minutes: shared.keyspace.evictor.lfu_decay_time.load(Relaxed) }
            }
            _ => SaveRecency::None,
        }
    }

    fn of_entry(self, e: &Entry, now: u64) -> Recency {
        match self {
            SaveRecency::None => Recency::None,
            SaveRecency::Idle => Recency::Idle(e.idle_secs(now)),
            SaveRecency::Freq { decay_minutes } => Recency::Freq(e.lfu(now, decay_minutes)),
        }
    }
}

/// SAVE's body: every database by SCAN (the world lock makes it a cut).
fn write_keyspace<W: std::io::Write>(shared: &Shared, w: &mut file::Writer<W>) -> Result<u64, String> {
    let now = shared.clock.now_ms();
    let recency = SaveRecency::of(shared);
    let mut total = 0u64;
    for db in 0..shared.keyspace.databases() {
        let (keys, expires) = shared.keyspace.db_stats(db);
        if keys == 0 {
            continue;
        }
        w.select_db(db, keys as u64, expires as u64);
        let mut failed = None;
        let mut cursor = 0;
        loop {
            // Every stored key, those past their deadline too (see
            // `Chunks::capture`).
            cursor = shared.keyspace.scan_stored(db, cursor, 1024, |k, e: &Entry| {
                if failed.is_none() {
                    match w.entry(k, &e.value(), e.expire_at(), recency.of_entry(e, now)) {
                        Ok(()) => total += 1,
                        Err(err) => failed = Some(format!("key {}: {err}", String::from_utf8_lossy(k))),
                    }
                }
            });
            if let Some(f) = failed {
                return Err(f);
            }
            if cursor == 0 {
                break;
            }
        }
    }
    Ok(total)
}

/// A captured shard: encoded at once, except strings stored shared (over
/// `SHARE_ABOVE` bytes), which are held as handles: holding one costs the
/// handle until a write replaces the value, which then lives on only here
/// (copy-on-write at the granularity of one value, not a page). Shorter
/// strings are copied into the encoding; they are cheap to copy and their
/// owned, exact-size storage keeps every key's slot small.
enum Held {
    Encoded(BytesMut),
    Strings(Vec<HeldString>),
}

/// A shared string held until the saver writes it: its key, its bytes (a
/// reference, not a copy), its deadline and its recency.
type HeldString = (Key, StrValue, Option<u64>, Recency);

const STRING_HANDLE: usize = std::mem::size_of::<HeldString>();

/// Shards as of a cut, waiting for the saver thread.
pub(crate) struct Chunks {
    /// The cut's time, for the recency saved with each key.
    cut_ms: u64,
    recency: SaveRecency,
    queue: Mutex<Vec<(usize, Held)>>,
    keys: AtomicU64,
    failed: Mutex<Option<String>>,
    /// Bytes held (encodings and string handles; not the old strings
    /// writes replaced meanwhile), now and at most.
    held: AtomicU64,
    peak: AtomicU64,
    /// Someone walked the cut (or ended it unwalked).
    walked: AtomicBool,
}

impl CutSink for Chunks {
    fn capture(&self, db: usize, _shard: usize, entries: &mut dyn Iterator<Item = (&Key, &Entry)>) {
        // A save that failed or was stopped keeps nothing more: the cut
        // only has to end.
        if self.failed.lock().is_some() {
            return;
        }
        let mut buf = BytesMut::new();
        let mut strings = Vec::new();
        let mut keys = 0;
        // Keys past their deadline but not yet deleted are saved too, as
        // Redis saves them: the load skips them (and a primary's boot
        // deletes them in its stream), while replicas that continue with
        // PSYNC still hold them and must be told.
        for (k, e) in entries {
            keys += 1;
            let recency = self.recency.of_entry(e, self.cut_ms);
            // A large string is held by its count (a shared or adopted
            // buffer), not copied.
            // Read once: a string that lent bytes to its key comes whole
            // as a copy (entry.rs).
            let value = e.value();
            if let Value::Str(s @ (StrValue::Shared(_) | StrValue::Adopted(_))) = &*value {
                strings.push((k.clone(), s.clone(), e.expire_at(), recency));
                continue;
            }
            if let Err(err) = file::encode_entry(&mut buf, k, &value, e.expire_at(), recency) {
                self.failed.lock().get_or_insert_with(|| format!("key {}: {err}", String::from_utf8_lossy(k)));
                return;
            }
        }
        if keys == 0 {
            return;
        }
        self.keys.fetch_add(keys, Relaxed);
        let size = buf.len() + strings.len() * STRING_HANDLE;
        let held = self.held.fetch_add(size as u64, Relaxed) + size as u64;
        self.peak.fetch_max(held, Relaxed);
        let mut queue = self.queue.lock();
        if !buf.is_empty() {
            queue.push((db, Held::Encoded(buf)));
        }
        if !strings.is_empty() {
            queue.push((db, Held::Strings(strings)));
        }
    }
}

impl Chunks {
    pub(crate) fn new(cut_ms: u64, recency: SaveRecency) -> Chunks {
        Chunks {
            cut_ms,
            recency,
            queue: Mutex::default(),
            keys: AtomicU64::new(0),
            failed: Mutex::default(),
            held: AtomicU64::new(0),
            peak: AtomicU64::new(0),
            walked: AtomicBool::new(false),
        }
    }

    /// Ends the cut if nothing walked it (the file could not even be
    /// started): otherwise the cut stays active, every later write copies
    /// its shard into this saver that is gone, and no other save or
    /// rewrite can begin.
    pub(crate) fn end_unwalked(&self, shared: &Shared) {
        if !self.walked.swap(true, Relaxed) {
            shared.keyspace.abandon_cut();
        }
    }

    /// The most encoded bytes held at once.
    pub(crate) fn peak_bytes(&self) -> u64 {
        self.peak.load(Relaxed)
    }

    fn drain<W: std::io::Write>(&self, w: &mut file::Writer<W>, gauge: &AtomicU64) -> Result<(), String> {
        let ready = std::mem::take(&mut *self.queue.lock());
        for (db, held) in ready {
            let size = match held {
                Held::Encoded(buf) => {
                    w.chunk(db, &buf).map_err(|e| e.to_string())?;
                    buf.len()
                }
                Held::Strings(strings) => {
                    let n = strings.len();
                    w.switch_db(db);
                    for (k, s, at, recency) in strings {
                        w.entry(&k, &Value::Str(s), at, recency).map_err(|e| e.to_string())?;
                    }
                    n * STRING_HANDLE
                }
            };
            self.held.fetch_sub(size as u64, Relaxed);
        }
        gauge.store(self.held.load(Relaxed), Relaxed);
        // This thread frees what the workers captured: maxmemory must see it.
        crate::memory::publish();
        match self.failed.lock().clone() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Walks every shard in order, capturing what the cut has not yet,
    /// and writes the chunks to `w` as they come; ends the cut. Returns
    /// the number of keys written. INFO's `current_cow_size` follows what
    /// is held meanwhile (one cut at a time: BGSAVE's or a rewrite's).
    pub(crate) fn write_cut<W: std::io::Write>(&self, shared: &Shared, w: &mut file::Writer<W>) -> Result<u64, String> {
        self.walked.store(true, Relaxed);
        let gauge = &shared.snapshots.current_cow;
        let delay = shared.config.read().rdb_key_save_delay;
        let walked = self.walk(&shared.keyspace, w, gauge, delay);
        gauge.store(0, Relaxed);
        walked.map(|()| self.keys.load(Relaxed))
    }

    fn walk<W: std::io::Write>(
        &self,
        ks: &larder_store::Keyspace,
        w: &mut file::Writer<W>,
        gauge: &AtomicU64,
        delay: i64,
    ) -> Result<(), String> {
        // The cut must end even if the file fails, or every later lock
        // would keep feeding a saver that is gone.
        struct EndCut<'a>(&'a larder_store::Keyspace, u64);
        impl Drop for EndCut<'_> {
            fn drop(&mut self) {
                self.0.finish_cut(self.1);
            }
        }
        let end = EndCut(ks, self.cut_ms);
        for db in 0..ks.databases() {
            for shard in 0..ks.shard_count() {
                let before = self.keys.load(Relaxed);
                drop(ks.lock_shard(db, shard, self.cut_ms));
                self.drain(w, gauge)?;
                // `rdb-key-save-delay`, per key written, with no lock held:
                // writers go on meanwhile, as they do beside Redis's child.
                if delay != 0 {
                    (before..self.keys.load(Relaxed)).for_each(|_| debug_delay(delay));
                }
            }
        }
        drop(end);
        self.drain(w, gauge)
    }
}

/// BGSAVE: starts a cut and a thread that writes it. Errors are Redis's
/// texts for a save that cannot start now.
pub fn bgsave(shared: &Arc<Shared>) -> Result<(), String> {
    let snaps = &shared.snapshots;
    let now = shared.clock.now_ms();
    let (mut seq, mut position) = (0, None);
    let begun = begin_saving_cut(shared, now, || {
        seq = shared.keyspace.write_count();
        position = shared.replication.saved_position();
    });
    if !matches!(begun, Err(Busy::Saving)) {
        snaps.last_attempt.store(now / 1000, Relaxed);
    }
    let chunks = match begun {
        Ok(chunks) => chunks,
        Err(Busy::Saving) => return Err("Background save already in progress".into()),
        Err(Busy::Cutting) => {
            return Err("An AOF log rewriting in progress: can't BGSAVE right now. \
                        Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible."
                .into())
        }
    };
    snaps.bgsave_started_ms.store(now, Relaxed);
    tracing::info!("Background saving started (a cut at effect {seq}, no fork)");
    *snaps.running.lock() = Some(chunks.clone());
    let shared = shared.clone();
    std::thread::Builder::new()
        .name("larder-bgsave".into())
        .spawn(move || {
            let snaps = &shared.snapshots;
            let target = path(&shared);
            let tmp = target.with_file_name(format!("temp-bg-{}.rdb", std::process::id()));
            let written = write_file(&shared, &tmp, &target, &Aux::Rdb(position), |w| chunks.write_cut(&shared, w));
            chunks.end_unwalked(&shared);
            finished(&shared, &target, &written, seq);
            let took = shared.clock.now_ms().saturating_sub(now) / 1000;
            snaps.last_bgsave_secs.store(took as i64, Relaxed);
            snaps.last_cow.store(chunks.peak_bytes(), Relaxed);
            if written.is_ok() {
                tracing::info!("Background saving terminated with success; held at most {} bytes", chunks.peak_bytes());
            }
            // Not in progress first, so FLUSHALL's SAVE that follows an
            // abort finds none; then this save's handle goes (a BGSAVE
            // begun in between keeps its own).
            snaps.bgsave_in_progress.store(false, Relaxed);
            let mut running = snaps.running.lock();
            if running.as_ref().is_some_and(|r| Arc::ptr_eq(r, &chunks)) {
                *running = None;
            }
        })
        .map_err(|e| {
            *snaps.running.lock() = None;
            snaps.bgsave_in_progress.store(false, Relaxed);
            e.to_string()
        })?;
    Ok(())
}

/// Waits for a running BGSAVE to end (shutdown does, so it never exits
/// with a half-written temporary file).
pub fn wait_for_bgsave(shared: &Shared) {
    while shared.snapshots.bgsave_in_progress.load(Relaxed) {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// The `save` schedule's pairs; malformed ones are skipped.
fn save_points(spec: &str) -> Vec<(u64, u64)> {
    let nums: Vec<u64> = spec.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    nums.chunks_exact(2).map(|p| (p[0], p[1])).collect()
}

/// The cron's check: start a BGSAVE when a save point is due (or one was
/// scheduled), as Redis's serverCron does.
pub fn cron_tick(shared: &Arc<Shared>) {
    let snaps = &shared.snapshots;
    if snaps.bgsave_in_progress.load(Relaxed) || shared.keyspace.cut_active() {
        return;
    }
    if snaps.scheduled.swap(false, Relaxed) {
        let _ = bgsave(shared);
        return;
    }
    let now = shared.clock.now_ms() / 1000;
    let changes = shared.keyspace.write_count().saturating_sub(snaps.seq_at_save.load(Relaxed));
    let since = now.saturating_sub(snaps.last_save.load(Relaxed));
    let retry_ok = !snaps.last_failed.load(Relaxed) || now.saturating_sub(snaps.last_attempt.load(Relaxed)) >= 5;
    let spec = shared.config.read().save.clone();
    if let Some((secs, n)) = save_points(&spec).into_iter().find(|&(secs, n)| changes >= n && since > secs) {
        if retry_ok {
            tracing::info!("{n} changes in {secs} seconds. Saving...");
            let _ = bgsave(shared);
        }
    }
}

/// Loads `dir`/`dbfilename` if it exists (the binary calls this before
/// it listens), logging progress. A bad file is an error: the server does
/// not start on a partial dataset. With `appendonly yes` the AOF is the
/// source instead (see aof.rs).
pub fn load_at_startup(shared: &Shared) -> anyhow::Result<()> {
    if shared.config.read().appendonly {
        return crate::aof::load_at_startup(shared);
    }
    let replica = !shared.config.read().replicaof.is_empty();
    // Redis's last words over a bad file (its test suite looks for them).
    let position = load_rdb_file(shared, true, !replica)
        .map_err(|e| anyhow::anyhow!("{e:#}. Terminating server after rdb file reading failure."))?;
    // A replica continues its primary's stream from where the file's data
    // stands, as Redis's loadDataFromDisk does (a primary's history was
    // restored before the load: see `load_rdb_file`).
    if let Some(at) = position.filter(|_| replica) {
        tracing::info!("Replication position restored from the RDB: {} at offset {}", at.replid, at.offset);
        shared.replication.restore(at);
    }
    Ok(())
}

/// The replication position an RDB image saved (`repl-id`, `repl-offset`,
/// `repl-stream-db`), if it saved all three.
fn saved_position(data: &[u8]) -> Option<SavedPosition> {
    let field = |name| {
        let v = file::aux_field(data, name)?;
        String::from_utf8(v.to_vec()).ok()
    };
    let replid = field("repl-id").filter(|id| id.len() == 40)?;
    let offset = field("repl-offset")?.parse().ok()?;
    let stream_db = field("repl-stream-db")?.parse().ok()?;
    Some(SavedPosition { replid, offset, stream_db })
}

/// Loads `dir`/`dbfilename` if it exists. `replace_functions`: a library
/// already loaded is replaced (else loading fails, as DEBUG RELOAD
/// NOFLUSH without MERGE does in Redis). `primary_boot`: a primary
/// starting up, which takes the position the file saved as its previous
/// history before loading (`Replication::restore_as_primary`), so the
/// keys the load skips as expired reach the backlog as deletions, as
/// Redis feeds them: its replicas still hold them. Returns the position
/// the file saved, if any.
pub(crate) fn load_rdb_file(
    shared: &Shared,
    replace_functions: bool,
    primary_boot: bool,
) -> anyhow::Result<Option<SavedPosition>> {
    let target = path(shared);
    let data = match std::fs::read(&target) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        // Redis's words (its test suite waits for them in the log).
        Err(e) => anyhow::bail!("Fatal error loading the DB {}: {e}. Exiting.", target.display()),
    };
    tracing::info!("Loading RDB {} ({} bytes)…", target.display(), data.len());
    let loading = &shared.snapshots.loading;
    loading.set_total(data.len() as u64);
    let position = saved_position(&data);
    let restored = match (&position, primary_boot) {
        (Some(at), true) => {
            tracing::info!("Replication history continued from the RDB: {} up to offset {}", at.replid, at.offset);
            shared.replication.restore_as_primary(at.clone());
            true
        }
        _ => false,
    };
    load_rdb_as(shared, &data, &target, replace_functions, restored)?;
    shared.snapshots.seq_at_save.store(shared.keyspace.write_count(), Relaxed);
    Ok(position)
}

/// `key-load-delay` for one key: Redis's debugDelay, which sleeps `usec`
/// µs, or for a negative value 1 µs with odds of one in `-usec`.
fn debug_delay(usec: i64) {
    let usec = match usec {
        0 => return,
        n if n < 0 => u64::from(rand::random_range(0..n.unsigned_abs()) == 0),
        n => n as u64,
    };
    if usec > 0 {
        std::thread::sleep(std::time::Duration::from_micros(usec));
    }
}

/// Loads an RDB image (a dump.rdb, or an AOF's base) into the keyspace;
/// returns the bytes the image took (see `file::load`).
pub(crate) fn load_rdb(shared: &Shared, data: &[u8], name: &Path, replace_functions: bool) -> anyhow::Result<usize> {
    load_rdb_as(shared, data, name, replace_functions, false)
}

/// [`load_rdb`]; `feed_expired`: each key skipped as expired is deleted
/// in the replication stream too (a primary's boot, see `load_rdb_file`).
fn load_rdb_as(
    shared: &Shared,
    data: &[u8],
    name: &Path,
    replace_functions: bool,
    feed_expired: bool,
) -> anyhow::Result<usize> {
    let started = std::time::Instant::now();
    let lim = shared.config.read().limits;
    let now = shared.clock.now_ms();
    let (mut keys, mut expired, mut empty) = (0u64, 0u64, 0u64);
    let mut functions = Vec::new();
    let delay = shared.config.read().key_load_delay;
    let by_primary = shared.keyspace.expiry_by_primary();
    let lazy_expire = shared.config.read().extra_flag("lazyfree-lazy-expire");
    // An AOF's base may follow other files in the count.
    let loaded_before = shared.snapshots.loading.loaded_bytes.load(Relaxed);
    let used_mem = file::aux_field(data, "used-mem").and_then(|v| std::str::from_utf8(&v).ok()?.parse().ok());
    shared.snapshots.loading.rdb_used_mem.store(used_mem.unwrap_or(0), Relaxed);
    let taken = file::load(data, &lim, |item| match item {
        Item::Key { db, key, value, expire_at_ms, idle_secs, freq, read } => {
            debug_delay(delay);
            shared.snapshots.loading.loaded_bytes.store(loaded_before + read as u64, Relaxed);
            if db >= shared.keyspace.databases() {
                return;
            }
            // Keys already past their deadline are not loaded, as Redis
            // does, except on a replica: there they are the primary's to
            // delete, and its clock may not have reached them yet.
            if expire_at_ms.is_some_and(|at| at <= now) && !by_primary {
                expired += 1;
                if feed_expired {
                    let del: &[u8] = if lazy_expire { b"UNLINK" } else { b"DEL" };
                    shared.keyspace.effects.emit_from(db, &[del, &key], larder_store::Origin::Expiry);
                }
                return;
            }
            let access = shared.keyspace.evictor.access(now);
            let mut entry = Entry::new(value, access);
            entry.restore_access(access, idle_secs, freq);
            let mut tx = shared.keyspace.lock(db, &key, now);
            // A replica keeps expired keys (above): set their deadline too.
            tx.set_expiry(larder_store::Expiry::Ignore);
            tx.put_entry(key.clone(), entry);
            if let Some(at) = expire_at_ms {
                tx.set_expire(&key, at);
            }
            keys += 1;
            if keys.is_multiple_of(1_000_000) {
                tracing::info!("Loading RDB: {keys} keys so far ({:.1} s)", started.elapsed().as_secs_f64());
            }
        }
        Item::Function(code) => functions.push(code),
        Item::Empty(key) => {
            tracing::warn!("rdbLoadObject skipping empty key: {}", String::from_utf8_lossy(&key));
            empty += 1;
        }
    })
    .map_err(|e| anyhow::anyhow!("{}: {e}", name.display()))?;
    for code in functions {
        shared
            .scripting
            .function_load(&code, replace_functions)
            .map_err(|e| anyhow::anyhow!("a function library in the RDB: {e}"))?;
    }
    if empty > 0 {
        tracing::warn!("Done loading RDB, keys loaded: {keys}, keys expired: {expired}, empty keys skipped: {empty}.");
    }
    tracing::info!(
        "DB loaded from disk: {keys} keys ({expired} already expired, skipped) in {:.3} s",
        started.elapsed().as_secs_f64()
    );
    shared.snapshots.last_load_keys.store(keys, Relaxed);
    shared.snapshots.last_load_expired.store(expired, Relaxed);
    Ok(taken)
}
