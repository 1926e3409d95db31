//! The command table: one row per command, read by the dispatcher (arity,
//! flags), by COMMAND INFO/DOCS/LIST, by key extraction and by INFO
//! commandstats. Each family module declares its own rows; `build` gathers
//! them into a lookup map that also carries each command's counters.

use super::Handler;
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
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (MAY_REPLICATE, "may_replicate"),
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

    /// ACL categories, derived from flags and group as Redis assigns them.
    pub fn acl_categories(&self) -> Vec<&'static str> {
        let mut cats = Vec::new();
        if self.has(flags::WRITE) {
            cats.push("@write");
        }
        if self.has(flags::READONLY) {
            cats.push("@read");
        }
        match self.group {
            "string" => cats.push("@string"),
            "generic" if self.keys.first > 0 => cats.push("@keyspace"),
            "connection" => cats.push("@connection"),
            "list" => cats.push("@list"),
            "hash" => cats.push("@hash"),
            "set" => cats.push("@set"),
            "sorted-set" => cats.push("@sortedset"),
            "bitmap" => cats.push("@bitmap"),
            "stream" => cats.push("@stream"),
            "geo" => cats.push("@geo"),
            "hyperloglog" => cats.push("@hyperloglog"),
            "transactions" => cats.push("@transaction"),
            "scripting" => cats.push("@scripting"),
            _ => {}
        }
        if self.has(flags::ADMIN) {
            cats.push("@admin");
            cats.push("@dangerous");
        }
        if self.has(flags::BLOCKING) {
            cats.push("@blocking");
        }
        if self.has(flags::PUBSUB) {
            cats.push("@pubsub");
        }
        cats.push(if self.has(flags::FAST) { "@fast" } else { "@slow" });
        cats
    }
}

/// Per-command counters, named like INFO commandstats fields.
#[derive(Default, Debug)]
pub struct CmdStats {
    pub calls: AtomicU64,
    pub usec: AtomicU64,
    pub rejected_calls: AtomicU64,
    pub failed_calls: AtomicU64,
}

impl CmdStats {
    pub fn reset(&self) {
        for c in [&self.calls, &self.usec, &self.rejected_calls, &self.failed_calls] {
            c.store(0, Ordering::Relaxed);
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
        Command { spec, full_name, acl_id, stats: CmdStats::default(), subs }
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
    map: HashMap<Vec<u8>, Command>,
    ids: usize,
}

impl CommandTable {
    pub fn build() -> CommandTable {
        let groups: &[&'static [CommandSpec]] = &[
            super::connection::COMMANDS,
            super::acl::COMMANDS,
            super::string::COMMANDS,
            super::keys::COMMANDS,
            super::server::COMMANDS,
            super::memory::COMMANDS,
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
        let map = groups
            .iter()
            .flat_map(|g| g.iter())
            .map(|spec| (spec.name.as_bytes().to_vec(), Command::new(spec, None, &mut ids)))
            .collect();
        CommandTable { map, ids }
    }

    /// How many ids commands and subcommands use (`Command::acl_id`).
    pub fn id_count(&self) -> usize {
        self.ids
    }

    /// Case-insensitive lookup of a top-level command.
    pub fn lookup(&self, name: &[u8]) -> Option<&Command> {
        lookup_in(&self.map, name)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Every command, top level first then subcommands, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &Command> {
        let mut all: Vec<&Command> = self.map.values().collect();
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
