//! The command table: one row per command, read by the dispatcher (arity,
//! flags), by COMMAND INFO/DOCS/LIST, by key extraction and by INFO
//! commandstats. Each family module declares its own rows; `build` gathers
//! them into a lookup map that also carries each command's counters.

use super::Handler;
use crate::stats::{stripe, STRIPES};
use hashbrown::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// Command flags, named as COMMAND INFO reports them.
pub mod flags {
    pub const WRITE: u32 = 1 << 0;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const PUBSUB: u32 = 1 << 4;
    pub const NOSCRIPT: u32 = 1 << 5;
    pub const BLOCKING: u32 = 1 << 6;
    pub const LOADING: u32 = 1 << 7;
    pub const STALE: u32 = 1 << 8;
    pub const SKIP_MONITOR: u32 = 1 << 9;
    pub const SKIP_SLOWLOG: u32 = 1 << 10;
    pub const FAST: u32 = 1 << 11;
    pub const NO_AUTH: u32 = 1 << 12;
    pub const MAY_REPLICATE: u32 = 1 << 13;
    pub const NO_MULTI: u32 = 1 << 14;
    pub const ALLOW_BUSY: u32 = 1 << 15;
    /// Key positions depend on arguments (ZUNIONSTORE numkeys, LMPOP…).
    pub const MOVABLEKEYS: u32 = 1 << 16;
    pub const NO_MANDATORY_KEYS: u32 = 1 << 17;
    pub const NO_ASYNC_LOADING: u32 = 1 << 18;
    /// Runs on a cluster node that is importing the slot (RESTORE-ASKING).
    pub const ASKING: u32 = 1 << 19;
    /// Internal, not shown by COMMAND: runs at once inside MULTI instead of
    /// being queued (MULTI, EXEC, DISCARD, WATCH, QUIT, RESET).
    pub const TX_CONTROL: u32 = 1 << 24;
    /// Internal: takes the world lock for writing (EXEC).
    pub const EXCLUSIVE: u32 = 1 << 25;

    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (SKIP_MONITOR, "skip_monitor"),
        (SKIP_SLOWLOG, "skip_slowlog"),
        (ASKING, "asking"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        // MAY_REPLICATE is left out: Redis hides it from COMMAND INFO.
        (NO_MULTI, "no_multi"),
        (ALLOW_BUSY, "allow_busy"),
        (NO_MANDATORY_KEYS, "no_mandatory_keys"),
        (NO_ASYNC_LOADING, "no_async_loading"),
        (MOVABLEKEYS, "movablekeys"),
    ];
}

/// Where a command's keys are: positions `first..=last` every `step`;
/// `last` negative counts from the end (-1 is the last argument).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySpec {
    pub first: i32,
    pub last: i32,
    pub step: i32,
}

impl KeySpec {
    pub const NONE: KeySpec = KeySpec { first: 0, last: 0, step: 0 };

    pub const fn single(i: i32) -> KeySpec {
        KeySpec { first: i, last: i, step: 1 }
    }

    pub const fn range(first: i32, last: i32, step: i32) -> KeySpec {
        KeySpec { first, last, step }
    }

    /// The argument positions holding keys, for a command with `argc` args.
    pub fn positions(&self, argc: usize) -> impl Iterator<Item = usize> {
        let argc = argc as i32;
        let last = if self.last < 0 { argc + self.last } else { self.last.min(argc - 1) };
        let (first, step) = (self.first, self.step.max(1));
        (first..=last).step_by(step as usize).filter(move |_| first > 0).map(|i| i as usize)
    }
}

/// One row of the table.
pub struct CommandSpec {
    pub name: &'static str,
    /// Exact argument count including the name; negative means "at least".
    pub arity: i32,
    pub flags: u32,
    pub keys: KeySpec,
    /// None for container commands (CLIENT, CONFIG…), which only route.
    pub handler: Option<Handler>,
    pub group: &'static str,
    pub since: &'static str,
    pub summary: &'static str,
    pub subcommands: &'static [CommandSpec],
}

impl CommandSpec {
    pub const fn new(name: &'static str, arity: i32, flags: u32, keys: KeySpec, handler: Handler) -> Self {
        CommandSpec {
            name,
            arity,
            flags,
            keys,
            handler: Some(handler),
            group: "generic",
            since: "1.0.0",
            summary: "",
            subcommands: &[],
        }
    }

    /// A command that only routes to its subcommands.
    pub const fn container(name: &'static str, subcommands: &'static [CommandSpec]) -> Self {
        CommandSpec {
            name,
            arity: -2,
            flags: 0,
            keys: KeySpec::NONE,
            handler: None,
            group: "generic",
            since: "1.0.0",
            summary: "",
            subcommands,
        }
    }

    /// Gives a command with its own handler subcommands too (COMMAND).
    pub const fn subs(mut self, subcommands: &'static [CommandSpec]) -> Self {
        self.subcommands = subcommands;
        self
    }

    pub const fn doc(mut self, group: &'static str, since: &'static str, summary: &'static str) -> Self {
        self.group = group;
        self.since = since;
        self.summary = summary;
        self
    }

    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }
}

/// What Redis's command files declare beyond arity and flags (generated
/// into `keyspecs.rs`).
pub struct Declared {
    pub specs: &'static [super::getkeys::Spec],
    pub tips: &'static [&'static str],
    /// The categories named in the file; [`acl_categories`] adds those the
    /// flags imply.
    pub categories: &'static [&'static str],
}

/// A command's ACL categories: those declared, and those its flags imply
/// (Redis's setImplicitACLCategories).
fn acl_categories(spec: &CommandSpec, declared: &[&'static str]) -> Vec<&'static str> {
    let scripting = declared.contains(&"@scripting");
    let implied = [
        ("@write", spec.has(flags::WRITE)),
        // Scripting commands are left out of @read.
        ("@read", spec.has(flags::READONLY) && !scripting),
        ("@admin", spec.has(flags::ADMIN)),
        ("@dangerous", spec.has(flags::ADMIN)),
        ("@pubsub", spec.has(flags::PUBSUB)),
        ("@fast", spec.has(flags::FAST)),
        ("@blocking", spec.has(flags::BLOCKING)),
        ("@slow", !spec.has(flags::FAST) && !declared.contains(&"@fast")),
    ];
    // In ACL CAT's order, which is also COMMAND INFO's.
    crate::acl::CATEGORIES
        .iter()
        .filter_map(|name| {
            let named = |c: &&'static str| c[1..] == **name;
            declared
                .iter()
                .copied()
                .find(named)
                .or_else(|| implied.iter().find(|(c, on)| *on && named(c)).map(|(c, _)| *c))
        })
        .collect()
}

/// Per-command counters, named like INFO commandstats fields.
#[derive(Default, Debug)]
pub struct CmdStats {
    lanes: [CmdLane; STRIPES],
}

/// One stripe's commandstats, on its own cache line (see stats.rs). The
/// latency histogram is allocated on a stripe's first call of the command
/// (most commands are never called), in the room the line had left.
#[repr(align(64))]
#[derive(Default, Debug)]
struct CmdLane {
    calls: AtomicU64,
    usec: AtomicU64,
    rejected_calls: AtomicU64,
    failed_calls: AtomicU64,
    histogram: std::sync::OnceLock<Box<[AtomicU64; HISTOGRAM_BUCKETS]>>,
}

/// LATENCY HISTOGRAM's buckets: bucket `i` counts calls of at most 2^i
/// µs (Redis reports its HDR histogram at the same powers of two), the
/// last everything longer.
pub const HISTOGRAM_BUCKETS: usize = 32;

fn histogram_bucket(usec: u64) -> usize {
    let i = if usec <= 1 { 0 } else { (64 - (usec - 1).leading_zeros()) as usize };
    i.min(HISTOGRAM_BUCKETS - 1)
}

impl CmdStats {
    fn lane(&self) -> &CmdLane {
        &self.lanes[stripe()]
    }

    fn sum(&self, field: impl Fn(&CmdLane) -> &AtomicU64) -> u64 {
        self.lanes.iter().map(|l| field(l).load(Ordering::Relaxed)).sum()
    }

    /// One run: `calls` is 0 for a blocked command run again when woken.
    /// `histogram`: `latency-tracking` is on, so a call is also counted in
    /// its latency bucket (as many samples as calls, as in Redis).
    pub fn record(&self, calls: u64, usec: u64, histogram: bool) {
        let lane = self.lane();
        lane.calls.fetch_add(calls, Ordering::Relaxed);
        lane.usec.fetch_add(usec, Ordering::Relaxed);
        if histogram && calls > 0 {
            let buckets = lane.histogram.get_or_init(Default::default);
            buckets[histogram_bucket(usec)].fetch_add(calls, Ordering::Relaxed);
        }
    }

    /// The latency histogram summed over the stripes: per bucket, the
    /// calls of at most 2^i µs (not cumulative).
    pub fn histogram(&self) -> [u64; HISTOGRAM_BUCKETS] {
        let mut out = [0; HISTOGRAM_BUCKETS];
        for h in self.lanes.iter().filter_map(|l| l.histogram.get()) {
            for (o, b) in out.iter_mut().zip(h.iter()) {
                *o += b.load(Ordering::Relaxed);
            }
        }
        out
    }

    pub fn reject(&self) {
        self.lane().rejected_calls.fetch_add(1, Ordering::Relaxed);
    }

    pub fn fail(&self) {
        self.lane().failed_calls.fetch_add(1, Ordering::Relaxed);
    }

    pub fn calls(&self) -> u64 {
        self.sum(|l| &l.calls)
    }

    pub fn usec(&self) -> u64 {
        self.sum(|l| &l.usec)
    }

    pub fn rejected_calls(&self) -> u64 {
        self.sum(|l| &l.rejected_calls)
    }

    pub fn failed_calls(&self) -> u64 {
        self.sum(|l| &l.failed_calls)
    }

    pub fn reset(&self) {
        for l in &self.lanes {
            for c in [&l.calls, &l.usec, &l.rejected_calls, &l.failed_calls] {
                c.store(0, Ordering::Relaxed);
            }
            for b in l.histogram.get().into_iter().flat_map(|h| h.iter()) {
                b.store(0, Ordering::Relaxed);
            }
        }
    }
}

/// A command as the dispatcher sees it: its row, its full name
/// ("client|kill"), its counters, and its subcommands.
pub struct Command {
    pub spec: &'static CommandSpec,
    pub full_name: String,
    /// Index into ACL permission bitmaps, unique across commands and
    /// subcommands of one table.
    pub acl_id: usize,
    pub stats: CmdStats,
    pub subs: HashMap<Vec<u8>, Command>,
    /// Redis's key specifications for this command (`getkeys.rs`).
    pub key_specs: &'static [super::getkeys::Spec],
    /// Redis's command tips (COMMAND INFO's eighth field).
    pub tips: &'static [&'static str],
    /// ACL categories ("@read", "@dangerous"…), in Redis's order.
    pub categories: Vec<&'static str>,
}

impl Command {
    fn new(spec: &'static CommandSpec, parent: Option<&str>, next_id: &mut usize) -> Command {
        let full_name = match parent {
            Some(p) => format!("{p}|{}", spec.name),
            None => spec.name.to_string(),
        };
        let acl_id = *next_id;
        *next_id += 1;
        let subs = spec
            .subcommands
            .iter()
            .map(|s| (s.name.as_bytes().to_vec(), Command::new(s, Some(spec.name), next_id)))
            .collect();
        let declared = super::keyspecs::lookup(&full_name);
        let categories = acl_categories(spec, declared.categories);
        Command {
            spec,
            full_name,
            acl_id,
            stats: CmdStats::default(),
            subs,
            key_specs: declared.specs,
            tips: declared.tips,
            categories,
        }
    }

    pub fn lookup_sub(&self, name: &[u8]) -> Option<&Command> {
        lookup_in(&self.subs, name)
    }
}

fn lookup_in<'m>(map: &'m HashMap<Vec<u8>, Command>, name: &[u8]) -> Option<&'m Command> {
    let mut buf = [0u8; 32];
    let lower = buf.get_mut(..name.len())?;
    for (d, s) in lower.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    map.get(&lower[..])
}

pub struct CommandTable {
    commands: Vec<Command>,
    /// Positions in `commands` (`EMPTY`: none), open-addressed by
    /// [`name_hash`], four slots a command: the lookup before every
    /// command hashes the name once with its case folded and compares one
    /// candidate, where a map keyed by the lowercased name copied the name
    /// to lowercase it, hashed it through `Hash` and called memcmp (about
    /// 140 instructions, 4% of a PING).
    slots: Box<[u16]>,
    ids: usize,
}

const EMPTY: u16 = u16::MAX;

/// FNV-1a over the name with ASCII letters folded to lowercase (`| 0x20`
/// folds some other bytes together too; the comparison after the probe
/// tells them apart).
fn name_hash(name: &[u8]) -> usize {
    let mut h: u32 = 0x811c_9dc5;
    for &b in name {
        h = (h ^ (b | 0x20) as u32).wrapping_mul(0x0100_0193);
    }
    h as usize
}

impl CommandTable {
    pub fn build() -> CommandTable {
        let groups: &[&'static [CommandSpec]] = &[
            super::connection::COMMANDS,
            super::acl::COMMANDS,
            super::string::COMMANDS,
            super::keys::COMMANDS,
            super::migrate::COMMANDS,
            super::server::COMMANDS,
            super::memory::COMMANDS,
            super::slowlog::COMMANDS,
            super::latency::COMMANDS,
            super::module::COMMANDS,
            super::lolwut::COMMANDS,
            super::hash::COMMANDS,
            super::set::COMMANDS,
            super::list::COMMANDS,
            super::zset::COMMANDS,
            super::bitmap::COMMANDS,
            super::stream::COMMANDS,
            super::sort::COMMANDS,
            super::geo::COMMANDS,
            super::hll::COMMANDS,
            super::transaction::COMMANDS,
            super::pubsub::COMMANDS,
            super::scripting::COMMANDS,
            super::replication::COMMANDS,
        ];
        let mut ids = 0;
        let commands: Vec<Command> =
            groups.iter().flat_map(|g| g.iter()).map(|spec| Command::new(spec, None, &mut ids)).collect();
        let mut slots = vec![EMPTY; (commands.len() * 4).next_power_of_two()].into_boxed_slice();
        let mask = slots.len() - 1;
        for (i, c) in commands.iter().enumerate() {
            let mut at = name_hash(c.spec.name.as_bytes()) & mask;
            while slots[at] != EMPTY {
                at = (at + 1) & mask;
            }
            slots[at] = i as u16;
        }
        CommandTable { commands, slots, ids }
    }

    /// How many ids commands and subcommands use (`Command::acl_id`).
    pub fn id_count(&self) -> usize {
        self.ids
    }

    /// Redis's lookupCommand: the command `argv` names, or its subcommand
    /// when it has subcommands and an argument follows; None if either is
    /// unknown (COMMAND GETKEYS, ACL DRYRUN, a script's redis.call).
    pub fn resolve<A: AsRef<[u8]>>(&self, argv: &[A]) -> Option<&Command> {
        let cmd = self.lookup(argv.first()?.as_ref())?;
        match argv.get(1) {
            Some(sub) if !cmd.subs.is_empty() => cmd.lookup_sub(sub.as_ref()),
            _ => Some(cmd),
        }
    }

    /// Case-insensitive lookup of a top-level command.
    pub fn lookup(&self, name: &[u8]) -> Option<&Command> {
        let mask = self.slots.len() - 1;
        let mut at = name_hash(name) & mask;
        loop {
            let i = self.slots[at];
            if i == EMPTY {
                return None;
            }
            let c = &self.commands[i as usize];
            if c.spec.name.as_bytes().eq_ignore_ascii_case(name) {
                return Some(c);
            }
            at = (at + 1) & mask;
        }
    }

    pub fn len(&self) -> usize {
        self.commands.len()
    }

    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }

    /// Every command, top level first then subcommands, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &Command> {
        let mut all: Vec<&Command> = self.commands.iter().collect();
        all.sort_by(|a, b| a.full_name.cmp(&b.full_name));
        all.into_iter()
    }

    /// Every command and subcommand, for commandstats and COMMAND LIST.
    pub fn iter_all(&self) -> Vec<&Command> {
        let mut all = Vec::new();
        for c in self.iter() {
            all.push(c);
            let mut subs: Vec<&Command> = c.subs.values().collect();
            subs.sort_by(|a, b| a.full_name.cmp(&b.full_name));
            all.extend(subs);
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_finds_every_command_in_any_case_and_nothing_else() {
        let table = CommandTable::build();
        for c in table.iter() {
            let name = c.spec.name;
            assert!(std::ptr::eq(table.lookup(name.as_bytes()).unwrap(), c));
            assert!(std::ptr::eq(table.lookup(name.to_uppercase().as_bytes()).unwrap(), c));
        }
        // Same hash as a real name (`| 0x20` folds '_' and DEL together),
        // but not that name.
        assert!(table.lookup(b"georadius\x7fro").is_none());
        assert!(table.lookup(b"georadius_ro").is_some());
        for unknown in [&b""[..], b"nosuchcommand", b"gett", b"ge", &[0xff; 40]] {
            assert!(table.lookup(unknown).is_none());
        }
    }

    #[test]
    fn names_unique_and_lowercase() {
        let table = CommandTable::build();
        let all = table.iter_all();
        let mut names: Vec<&str> = all.iter().map(|c| c.full_name.as_str()).collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n, "duplicate command names");
        for c in &all {
            assert_eq!(c.spec.name, c.spec.name.to_lowercase());
            assert!(c.spec.name.len() <= 32, "lookup buffer is 32 bytes");
        }
    }

    #[test]
    fn arity_agrees_with_key_positions() {
        for c in CommandTable::build().iter_all() {
            let s = c.spec;
            if s.keys.first > 0 {
                let min = s.arity.unsigned_abs() as i32;
                // With a negative arity the keys may all be optional
                // (SUNSUBSCRIBE [shardchannel ...]), so first == min is fine.
                assert!(
                    s.keys.first < min || (s.arity < 0 && s.keys.first == min),
                    "{}: first key beyond arity",
                    c.full_name
                );
                if s.keys.last > 0 {
                    assert!(s.keys.last < min || s.arity < 0, "{}: last key beyond arity", c.full_name);
                }
            }
            assert!(s.handler.is_some() || !s.subcommands.is_empty(), "{} has no handler", c.full_name);
            assert!(!(s.has(flags::WRITE) && s.has(flags::READONLY)), "{}", c.full_name);
        }
    }

    #[test]
    fn key_positions() {
        let mset = KeySpec::range(1, -1, 2);
        assert_eq!(mset.positions(5).collect::<Vec<_>>(), vec![1, 3]);
        assert_eq!(KeySpec::single(1).positions(3).collect::<Vec<_>>(), vec![1]);
        assert_eq!(KeySpec::NONE.positions(3).count(), 0);
    }

    #[test]
    fn lookup_is_case_insensitive() {
        let t = CommandTable::build();
        assert!(t.lookup(b"GeT").is_some());
        assert!(t.lookup(b"client").unwrap().lookup_sub(b"SETNAME").is_some());
        assert!(t.lookup(&[b'x'; 100]).is_none());
    }
}
