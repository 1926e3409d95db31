//! MEMORY USAGE, STATS, DOCTOR, PURGE, MALLOC-STATS and HELP.
//!
//! STATS and INFO memory read one [`Report`], so their figures agree. The
//! overhead is the server's memory at start-up plus what the keyspace
//! spends on bookkeeping (map slots and expiry index entries, from the
//! same layout sizes MEMORY USAGE counts); the dataset is the rest.

use super::keys::help_reply;
use super::table::{flags::*, CommandSpec, KeySpec};
use super::{eq_ic, parse_i64, Args, CmdResult, Ctx};
use crate::error::CmdError;
use crate::Shared;
use bytes::Bytes;
use larder_protocol::Frame;
use std::sync::atomic::Ordering::Relaxed;

pub(super) static COMMANDS: &[CommandSpec] = &[CommandSpec::container("memory", MEMORY_SUBCOMMANDS).doc(
    "server",
    "4.0.0",
    "A container for memory diagnostics commands.",
)];

static MEMORY_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("usage", -3, READONLY, KeySpec::single(2), usage).doc(
        "keyspace",
        "4.0.0",
        "Estimates the memory usage of a key.",
    ),
    CommandSpec::new("stats", 2, 0, KeySpec::NONE, stats).doc("server", "4.0.0", "Returns details about memory usage."),
    CommandSpec::new("doctor", 2, 0, KeySpec::NONE, doctor).doc("server", "4.0.0", "Outputs a memory problems report."),
    CommandSpec::new("purge", 2, 0, KeySpec::NONE, purge).doc(
        "server",
        "4.0.0",
        "Asks the allocator to release memory.",
    ),
    CommandSpec::new("malloc-stats", 2, 0, KeySpec::NONE, malloc_stats).doc(
        "server",
        "4.0.0",
        "Returns the allocator statistics.",
    ),
    CommandSpec::new("help", 2, LOADING | STALE, KeySpec::NONE, help).doc(
        "server",
        "4.0.0",
        "Returns helpful text about the different subcommands.",
    ),
];

/// MEMORY USAGE key [SAMPLES count]
fn usage(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let key = args.next_arg()?;
    let mut samples = 5usize;
    while let Some(a) = args.next() {
        match (eq_ic(a, "samples"), args.peek()) {
            (true, Some(n)) => {
                let n = parse_i64(n)?;
                args.next();
                if n < 0 {
                    return Err(CmdError::Syntax);
                }
                samples = n as usize; // 0: every element
            }
            _ => return Err(CmdError::Syntax),
        }
    }
    let mut tx = ctx.lock(key);
    Ok(match tx.peek(key) {
        None => Frame::Null,
        Some(e) => Frame::Integer(larder_store::memsize::key_usage(key, e, samples) as i64),
    })
}

/// The memory figures INFO memory and MEMORY STATS share.
pub struct Report {
    pub used: u64,
    pub peak: u64,
    pub startup: u64,
    pub rss: u64,
    pub allocator: (u64, u64, u64),
    /// Per non-empty database: (db, keys, main table overhead, expires overhead).
    pub dbs: Vec<(usize, usize, u64, u64)>,
    pub keys: u64,
    pub overhead: u64,
    /// The Lua heap, the cached scripts and the function libraries.
    pub scripts: crate::scripting::Footprint,
    /// What the replication backlog holds, what replicas' and other
    /// clients' connections hold, and the AOF's unwritten buffer: the
    /// parts INFO memory and MEMORY STATS both show.
    pub backlog: u64,
    pub clients_replicas: u64,
    pub clients_normal: u64,
    pub aof_buffer: u64,
}

impl Report {
    pub fn dataset(&self) -> u64 {
        self.used.saturating_sub(self.overhead)
    }

    pub fn percent(part: u64, whole: u64) -> f64 {
        if whole == 0 {
            0.0
        } else {
            part as f64 * 100.0 / whole as f64
        }
    }
}

/// Resident set size from /proc (Linux), else jemalloc's resident figure.
fn rss(fallback: u64) -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: Option<u64> = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok());
    pages.map_or(fallback, |p| p * 4096)
}

pub fn report(shared: &Shared) -> Report {
    let allocator = shared.memory.allocator();
    let used = shared.memory.used();
    let peak = shared.stats.used_memory_peak.fetch_max(used, Relaxed).max(used);
    let (slot, expiry) = larder_store::memsize::bookkeeping();
    let mut dbs = Vec::new();
    let mut keys = 0u64;
    let mut overhead = shared.memory.startup();
    for db in 0..shared.keyspace.databases() {
        let (n, with_ttl) = shared.keyspace.db_stats(db);
        if n == 0 {
            continue;
        }
        let (main, expires) = ((n * slot) as u64, (with_ttl * expiry) as u64);
        keys += n as u64;
        overhead += main + expires;
        dbs.push((db, n, main, expires));
    }
    let (clients_replicas, clients_normal) = shared.clients.memory_by_kind();
    Report {
        used,
        peak,
        startup: shared.memory.startup(),
        rss: rss(allocator.2),
        allocator,
        dbs,
        keys,
        overhead,
        scripts: shared.scripting.footprint(),
        backlog: shared.replication.backlog().map_or(0, |(_, _, held)| held),
        clients_replicas,
        clients_normal,
        aof_buffer: shared.aof.pending_len() as u64,
    }
}

/// MEMORY STATS
fn stats(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let r = report(ctx.shared);
    let (allocated, active, resident) = r.allocator;
    let int = |v: u64| Frame::Integer(v as i64);
    let signed = Frame::Integer;
    let ratio = |a: u64, b: u64| Frame::Double(if b == 0 { 0.0 } else { a as f64 / b as f64 });
    let mut fields: Vec<(String, Frame)> = vec![
        ("peak.allocated".into(), int(r.peak)),
        ("total.allocated".into(), int(r.used)),
        ("startup.allocated".into(), int(r.startup)),
    ];
    // INFO memory's `mem_*` figures, from the same report; no cluster.
    fields.extend([
        ("replication.backlog".into(), int(r.backlog)),
        ("clients.slaves".into(), int(r.clients_replicas)),
        ("clients.normal".into(), int(r.clients_normal)),
        ("cluster.links".into(), int(0)),
        ("aof.buffer".into(), int(r.aof_buffer)),
        // Bytes, as Redis's: `used_memory_scripts_eval` and
        // `used_memory_functions`.
        ("lua.caches".into(), int(r.scripts.eval_bytes as u64)),
        ("functions.caches".into(), int(r.scripts.function_bytes as u64)),
    ]);
    for (db, _, main, expires) in &r.dbs {
        let inner = vec![
            (Frame::bulk("overhead.hashtable.main"), int(*main)),
            (Frame::bulk("overhead.hashtable.expires"), int(*expires)),
            (Frame::bulk("overhead.hashtable.slot-to-keys"), int(0)),
        ];
        fields.push((format!("db.{db}"), Frame::Map(inner)));
    }
    let dataset = r.dataset();
    let per_key = r.used.saturating_sub(r.startup).checked_div(r.keys).unwrap_or(0);
    fields.extend([
        ("overhead.total".into(), int(r.overhead)),
        ("keys.count".into(), int(r.keys)),
        ("keys.bytes-per-key".into(), int(per_key)),
        ("dataset.bytes".into(), int(dataset)),
        ("dataset.percentage".into(), Frame::Double(Report::percent(dataset, r.used.saturating_sub(r.startup)))),
        ("peak.percentage".into(), Frame::Double(Report::percent(r.used, r.peak))),
        ("allocator.allocated".into(), int(allocated)),
        ("allocator.active".into(), int(active)),
        ("allocator.resident".into(), int(resident)),
        ("allocator-fragmentation.ratio".into(), ratio(active, allocated)),
        ("allocator-fragmentation.bytes".into(), signed(active as i64 - allocated as i64)),
        ("allocator-rss.ratio".into(), ratio(resident, active)),
        ("allocator-rss.bytes".into(), signed(resident as i64 - active as i64)),
        ("rss-overhead.ratio".into(), ratio(r.rss, resident)),
        ("rss-overhead.bytes".into(), signed(r.rss as i64 - resident as i64)),
        ("fragmentation".into(), ratio(r.rss, r.used)),
        ("fragmentation.bytes".into(), signed(r.rss as i64 - r.used as i64)),
    ]);
    Ok(Frame::Map(fields.into_iter().map(|(k, v)| (Frame::Bulk(Bytes::from(k)), v)).collect()))
}

/// MEMORY DOCTOR: what stands out in the figures, in words.
fn doctor(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let r = report(ctx.shared);
    let (allocated, active, resident) = r.allocator;
    let mut findings = Vec::new();
    if r.used < 5 << 20 {
        findings.push(
            "This instance holds too little data (under 5 MB) for its figures to say anything yet; \
             load some data and ask again."
                .to_string(),
        );
    } else {
        if r.peak > r.used + r.used / 2 {
            findings.push(format!(
                "Peak memory ({}) was more than 150% of what is in use now ({}): memory was freed since, \
                 and RSS may stay high until the allocator returns it (MEMORY PURGE asks it to).",
                crate::info::human_bytes(r.peak),
                crate::info::human_bytes(r.used)
            ));
        }
        if allocated > 0 && active as f64 / allocated as f64 > 1.4 {
            findings.push(format!(
                "Allocator fragmentation is high: {:.2} active bytes per allocated byte. A workload that \
                 frees many small values after storing many larger ones leaves pages partly used.",
                active as f64 / allocated as f64
            ));
        }
        if active > 0 && resident as f64 / active as f64 > 1.5 {
            findings.push(format!(
                "The allocator keeps {} resident beyond what it has in use; MEMORY PURGE releases dirty pages.",
                crate::info::human_bytes(resident - active)
            ));
        }
        if findings.is_empty() {
            findings.push("No memory problem found in the figures this server keeps.".to_string());
        }
    }
    Ok(Frame::Verbatim { format: *b"txt", text: Bytes::from(findings.join("\n\n")) })
}

/// MEMORY PURGE
fn purge(_ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    crate::memory::purge();
    Ok(Frame::ok())
}

/// MEMORY MALLOC-STATS: jemalloc's summary counters.
fn malloc_stats(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let (allocated, active, resident) = ctx.shared.memory.allocator();
    let (mapped, retained, metadata) = crate::memory::jemalloc_extra();
    let text = format!(
        "jemalloc stats:\nallocated: {allocated}\nactive: {active}\nresident: {resident}\nmapped: {mapped}\n\
         retained: {retained}\nmetadata: {metadata}\n"
    );
    Ok(Frame::Verbatim { format: *b"txt", text: Bytes::from(text) })
}

/// MEMORY HELP
fn help(_ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    Ok(help_reply(
        "MEMORY",
        &[
            "DOCTOR",
            "    Return memory problems reports.",
            "MALLOC-STATS",
            "    Return internal statistics report from the memory allocator.",
            "PURGE",
            "    Attempt to purge dirty pages for reclamation by the allocator.",
            "STATS",
            "    Return information about the memory usage of the server.",
            "USAGE <key> [SAMPLES <count>]",
            "    Return memory in bytes used by <key> and its value. Nested values are",
            "    sampled up to <count> times (default: 5, 0 means sample all).",
        ],
    ))
}
