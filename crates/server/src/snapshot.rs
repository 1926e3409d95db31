//! Snapshots: SAVE writes the dataset to `dir`/`dbfilename` as an RDB file
//! (larder-persist's `file`), and the server loads that file when it
//! starts, so a restart keeps the data and files move both ways between
//! Redis and Larder.
//!
//! SAVE runs with the world lock held exclusively (the command is
//! EXCLUSIVE in the table), so it is a point-in-time cut across every
//! shard, as Redis's SAVE is; BGSAVE without fork is the next step. The
//! file is written under a temporary name, synced, then renamed, so a
//! crash mid-save leaves the previous snapshot intact.

use crate::Shared;
use larder_persist::file::{self, Item};
use larder_store::Entry;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

/// What INFO persistence and LASTSAVE report.
#[derive(Default)]
pub struct Snapshots {
    /// Unix seconds of the last successful save (start-up until then).
    pub last_save: AtomicU64,
    pub last_failed: AtomicBool,
    /// The effect stream's position at the last save or load.
    pub seq_at_save: AtomicU64,
    pub saves: AtomicU64,
}

fn path(shared: &Shared) -> PathBuf {
    let cfg = shared.config.read();
    PathBuf::from(&cfg.dir).join(&cfg.dbfilename)
}

/// Writes the snapshot. The caller holds the world lock exclusively.
pub fn save(shared: &Shared) -> Result<u64, String> {
    let target = path(shared);
    let tmp = target.with_file_name(format!("temp-{}.rdb", std::process::id()));
    let written = write(shared, &tmp).and_then(|keys| {
        std::fs::rename(&tmp, &target).map_err(|e| format!("rename to {}: {e}", target.display()))?;
        Ok(keys)
    });
    let snaps = &shared.snapshots;
    match &written {
        Ok(keys) => {
            tracing::info!("DB saved on disk: {keys} keys in {}", target.display());
            snaps.last_save.store(shared.clock.now_ms() / 1000, Relaxed);
            snaps.seq_at_save.store(shared.keyspace.effects.seq(), Relaxed);
            snaps.saves.fetch_add(1, Relaxed);
            snaps.last_failed.store(false, Relaxed);
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            tracing::warn!("Failed saving the DB: {e}");
            snaps.last_failed.store(true, Relaxed);
        }
    }
    written
}

fn write(shared: &Shared, tmp: &PathBuf) -> Result<u64, String> {
    let out = std::fs::File::create(tmp).map_err(|e| format!("create {}: {e}", tmp.display()))?;
    let now = shared.clock.now_ms();
    let aux = [
        ("redis-ver", crate::cmd::connection::REDIS_VERSION.to_string()),
        ("redis-bits", "64".to_string()),
        ("ctime", (now / 1000).to_string()),
        ("used-mem", shared.memory.used().to_string()),
        ("aof-base", "0".to_string()),
    ];
    let mut w = file::Writer::new(std::io::BufWriter::new(out), &aux).map_err(|e| e.to_string())?;
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
            cursor = shared.keyspace.scan(db, cursor, 1024, now, |k, e: &Entry| {
                if failed.is_none() {
                    match w.entry(k, &e.value, e.expire_at()) {
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
    let codes: Vec<bytes::Bytes> =
        shared.scripting.with_libraries(|libs| libs.values().map(|l| l.code.clone()).collect());
    for code in &codes {
        w.function(code).map_err(|e| e.to_string())?;
    }
    let out = w.finish().map_err(|e| e.to_string())?;
    let file = out.into_inner().map_err(|e| e.to_string())?;
    file.sync_all().map_err(|e| e.to_string())?;
    Ok(total)
}

/// Loads `dir`/`dbfilename` if it exists (the binary calls this before
/// it listens), logging progress. A bad file is an error: the server does
/// not start on a partial dataset.
pub fn load_at_startup(shared: &Shared) -> anyhow::Result<()> {
    let target = path(shared);
    let data = match std::fs::read(&target) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => anyhow::bail!("reading {}: {e}", target.display()),
    };
    let started = std::time::Instant::now();
    tracing::info!("Loading RDB {} ({} bytes)…", target.display(), data.len());
    let lim = shared.config.read().limits;
    let now = shared.clock.now_ms();
    let (mut keys, mut expired) = (0u64, 0u64);
    let mut functions = Vec::new();
    file::load(&data, &lim, |item| match item {
        Item::Key { db, key, value, expire_at_ms, idle_secs, freq } => {
            if db >= shared.keyspace.databases() {
                return;
            }
            // Keys already past their deadline are not loaded, as Redis does.
            if expire_at_ms.is_some_and(|at| at <= now) {
                expired += 1;
                return;
            }
            let mut entry = Entry::new(value, now);
            if let Some(idle) = idle_secs {
                entry.lru = entry.lru.saturating_sub(idle as u32);
            }
            if let Some(f) = freq {
                entry.freq = f;
            }
            let mut tx = shared.keyspace.lock(db, &key, now);
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
    })
    .map_err(|e| anyhow::anyhow!("{}: {e}", target.display()))?;
    for code in functions {
        shared
            .scripting
            .function_load(&code, true)
            .map_err(|e| anyhow::anyhow!("a function library in the RDB: {e}"))?;
    }
    shared.snapshots.seq_at_save.store(shared.keyspace.effects.seq(), Relaxed);
    tracing::info!(
        "DB loaded from disk: {keys} keys ({expired} already expired, skipped) in {:.3} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
