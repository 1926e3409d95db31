//! Which arguments of a command are keys, and what the command does to
//! each: Redis 7's key specifications, read the way Redis reads them.
//!
//! The specs themselves are data, generated from Redis's command files
//! (`keyspecs.rs`); this module owns the two ways of reading them that
//! Redis has, so that COMMAND GETKEYS, COMMAND GETKEYSANDFLAGS and ACL key
//! selectors (`%R~`, `%W~`) agree with redis-server key by key:
//!
//! - a spec says where its keys begin (an index, or the argument after a
//!   keyword) and how many follow (a range, or a count argument);
//! - where a spec cannot say (SORT's STORE, MIGRATE's KEYS), or its flags
//!   depend on the arguments (SET … GET, BITFIELD … SET), Redis falls back
//!   to a per-command procedure; those are [`by_procedure`], with the
//!   flags Redis's procedures give (none, for most of them).
//!
//! The legacy `first, last, step` triple of the command table stays what
//! the dispatcher and COMMAND INFO's fourth to sixth fields use.

use super::eq_ic;
use super::table::Command;
use larder_protocol::Frame;

/// Key-spec flags, in the order COMMAND INFO names them.
pub mod flags {
    pub const RO: u16 = 1 << 0;
    pub const RW: u16 = 1 << 1;
    pub const OW: u16 = 1 << 2;
    pub const RM: u16 = 1 << 3;
    pub const ACCESS: u16 = 1 << 4;
    pub const UPDATE: u16 = 1 << 5;
    pub const INSERT: u16 = 1 << 6;
    pub const DELETE: u16 = 1 << 7;
    pub const NOT_KEY: u16 = 1 << 8;
    pub const INCOMPLETE: u16 = 1 << 9;
    pub const VARIABLE_FLAGS: u16 = 1 << 10;

    pub const NAMES: &[(u16, &str)] = &[
        (RO, "RO"),
        (RW, "RW"),
        (OW, "OW"),
        (RM, "RM"),
        (ACCESS, "access"),
        (UPDATE, "update"),
        (INSERT, "insert"),
        (DELETE, "delete"),
        (NOT_KEY, "not_key"),
        (INCOMPLETE, "incomplete"),
        (VARIABLE_FLAGS, "variable_flags"),
    ];
}

use flags::*;

/// Where a spec's keys begin.
pub enum Begin {
    /// At this argument (the command name is 0).
    Index(i32),
    /// After the first match of this keyword, searched from this argument
    /// onward (negative: from that far from the end, backward).
    Keyword(&'static str, i32),
    Unknown,
}

/// How many keys follow the first.
pub enum Find {
    /// Up to `lastkey` past the first (negative: from the end), or with a
    /// `limit`, the first 1/limit of what remains.
    Range {
        lastkey: i32,
        step: i32,
        limit: i32,
    },
    /// As many as the argument `index` past the begin says, from `first`
    /// past it.
    Keynum {
        index: i32,
        first: i32,
        step: i32,
    },
    Unknown,
}

pub struct Spec {
    pub flags: u16,
    pub notes: &'static str,
    pub begin: Begin,
    pub find: Find,
}

/// One key: its position among the arguments and its flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRef {
    pub pos: usize,
    pub flags: u16,
}

/// The flags as COMMAND INFO and GETKEYSANDFLAGS list them.
pub fn flag_names(bits: u16) -> Frame {
    Frame::Set(NAMES.iter().filter(|(f, _)| bits & f != 0).map(|(_, n)| Frame::simple(n)).collect())
}

/// Redis's `doesCommandHaveKeys`: a spec naming real keys, or a procedure.
pub fn has_keys(cmd: &Command) -> bool {
    cmd.key_specs.iter().any(|s| s.flags & NOT_KEY == 0) || by_procedure(&cmd.full_name, &[]).is_some()
}

/// Redis's `getKeysFromCommandWithSpecs`: the specs where they are
/// complete and their flags fixed, else the command's procedure, else
/// none. `argv` starts with the command name.
pub fn command_keys(cmd: &Command, argv: &[&[u8]]) -> Vec<KeyRef> {
    let any_key = cmd.key_specs.iter().any(|s| s.flags & NOT_KEY == 0);
    let variable = cmd.key_specs.iter().any(|s| s.flags & VARIABLE_FLAGS != 0);
    if any_key && !variable {
        if let Some(keys) = by_specs(cmd.key_specs, argv) {
            return keys;
        }
    }
    by_procedure(&cmd.full_name, argv).unwrap_or_default()
}

/// Redis's `getKeysUsingKeySpecs`; None where a spec cannot tell (unknown,
/// incomplete, a count that is not a count, keys past the end).
fn by_specs(specs: &[Spec], argv: &[&[u8]]) -> Option<Vec<KeyRef>> {
    let argc = argv.len() as i64;
    let mut keys = Vec::new();
    for spec in specs {
        if spec.flags & NOT_KEY != 0 {
            continue;
        }
        let begin = match spec.begin {
            Begin::Index(at) => at as i64,
            Begin::Keyword(word, from) => {
                let from = from as i64;
                let (start, end) = if from > 0 { (from, argc - 1) } else { (argc + from, 1) };
                let mut found = None;
                let mut i = start;
                while i != end && (1..argc).contains(&i) {
                    if eq_ic(argv[i as usize], word) {
                        found = Some(i + 1);
                        break;
                    }
                    i += if start <= end { 1 } else { -1 };
                }
                // No keyword: this spec has no keys here.
                let Some(first) = found else { continue };
                first
            }
            Begin::Unknown => return None,
        };
        let (first, last, step) = match spec.find {
            Find::Range { lastkey, step, limit } => {
                let (lastkey, limit) = (lastkey as i64, limit as i64);
                let last = if lastkey >= 0 {
                    begin + lastkey
                } else if limit == 0 {
                    argc + lastkey
                } else {
                    begin + ((argc - begin) / limit + lastkey)
                };
                (begin, last, step)
            }
            Find::Keynum { index, first, step } => {
                let count = argv.get((begin + index as i64) as usize)?;
                let n = larder_store::value::parse_canonical_i64(count).filter(|n| *n >= 0)?;
                let first = begin + first as i64;
                (first, first.saturating_add(n) - 1, step)
            }
            Find::Unknown => return None,
        };
        if last >= argc || last < first || first >= argc {
            return None;
        }
        let mut i = first;
        while i <= last {
            keys.push(KeyRef { pos: i as usize, flags: spec.flags });
            i += step.max(1) as i64;
        }
        if spec.flags & INCOMPLETE != 0 {
            return None;
        }
    }
    Some(keys)
}

/// The getkeys procedures of Redis's commands whose specs cannot always
/// say; None for a command without one. The flags are the procedures':
/// most give none, which ACL selectors read as "any pattern that matches".
/// An empty `argv` only asks whether the command has one.
fn by_procedure(name: &str, argv: &[&[u8]]) -> Option<Vec<KeyRef>> {
    let argc = argv.len();
    let plain = |pos: usize| KeyRef { pos, flags: 0 };
    // Redis's genericGetKeys: a count (read as atoi does) at `count_at`,
    // that many keys from `first`, then the destination, if any.
    let counted = |store_at: usize, count_at: usize, first: usize| -> Vec<KeyRef> {
        let n = argv.get(count_at).map_or(0, |a| atoi(a));
        if n < 1 || n as usize > argc.saturating_sub(first) {
            return Vec::new();
        }
        let mut keys: Vec<KeyRef> = (first..first + n as usize).map(plain).collect();
        if store_at > 0 {
            keys.push(plain(store_at));
        }
        keys
    };
    let keys = match name {
        "sintercard" | "zunion" | "zinter" | "zdiff" | "zintercard" | "lmpop" | "zmpop" => counted(0, 1, 2),
        "zunionstore" | "zinterstore" | "zdiffstore" => counted(1, 2, 3),
        "blmpop" | "bzmpop" | "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro" => counted(0, 2, 3),
        "sort_ro" => vec![KeyRef { pos: 1, flags: RO | ACCESS }],
        "sort" => {
            let mut keys = vec![KeyRef { pos: 1, flags: RO | ACCESS }];
            let mut store = None;
            let mut i = 2;
            while i < argc {
                if eq_ic(argv[i], "limit") {
                    i += 2;
                } else if eq_ic(argv[i], "get") || eq_ic(argv[i], "by") {
                    i += 1;
                } else if eq_ic(argv[i], "store") && i + 1 < argc {
                    // The last STORE is the one SORT uses.
                    store = Some(KeyRef { pos: i + 1, flags: OW | UPDATE });
                }
                i += 1;
            }
            keys.extend(store);
            keys
        }
        "migrate" => {
            let (mut first, mut n) = (3, 1);
            let mut i = 6;
            while argc > 6 && i < argc {
                if eq_ic(argv[i], "keys") {
                    // A key and KEYS together are a syntax error: no keys.
                    (first, n) = if argv[3].is_empty() { (i + 1, argc - i - 1) } else { (0, 0) };
                    break;
                }
                if eq_ic(argv[i], "auth") {
                    i += 1;
                } else if eq_ic(argv[i], "auth2") {
                    i += 2;
                }
                i += 1;
            }
            (first..first + n).map(|pos| KeyRef { pos, flags: RW | ACCESS | DELETE }).collect()
        }
        "georadius" | "georadiusbymember" => {
            let mut keys = vec![plain(1)];
            let mut stored = None;
            let mut i = 5;
            while i < argc {
                if (eq_ic(argv[i], "store") || eq_ic(argv[i], "storedist")) && i + 1 < argc {
                    stored = Some(plain(i + 1));
                    i += 1;
                }
                i += 1;
            }
            keys.extend(stored);
            keys
        }
        "xread" | "xreadgroup" => {
            let mut streams = None;
            let mut i = 1;
            while i < argc {
                if eq_ic(argv[i], "block") || eq_ic(argv[i], "count") {
                    i += 1;
                } else if eq_ic(argv[i], "group") {
                    i += 2;
                } else if eq_ic(argv[i], "streams") {
                    streams = Some(i);
                    break;
                } else if !eq_ic(argv[i], "noack") {
                    break;
                }
                i += 1;
            }
            match streams.map(|s| (s, argc - s - 1)) {
                Some((s, n)) if n > 0 && n % 2 == 0 => (s + 1..s + 1 + n / 2).map(plain).collect(),
                _ => Vec::new(),
            }
        }
        "set" => {
            let get = argv.iter().skip(3).any(|a| a.eq_ignore_ascii_case(b"get"));
            vec![KeyRef { pos: 1, flags: if get { RW | ACCESS | UPDATE } else { OW | UPDATE } }]
        }
        "bitfield" => {
            let mut read_only = true;
            let mut i = 2;
            while i < argc {
                let rest = argc - i - 1;
                if eq_ic(argv[i], "get") && rest >= 2 {
                    i += 2;
                } else if (eq_ic(argv[i], "set") || eq_ic(argv[i], "incrby")) && rest >= 3 {
                    read_only = false;
                    break;
                } else if eq_ic(argv[i], "overflow") && rest >= 1 {
                    i += 1;
                } else {
                    // A syntax error: safer to assume a write.
                    read_only = false;
                    break;
                }
                i += 1;
            }
            vec![KeyRef { pos: 1, flags: if read_only { RO | ACCESS } else { RW | ACCESS | UPDATE } }]
        }
        _ => return None,
    };
    // A caller that skipped the arity check (redis.acl_check_cmd does, as
    // in Redis) may pass fewer arguments than the key's place.
    Some(keys.into_iter().filter(|k| k.pos < argc).collect())
}

/// C's atoi: optional spaces and sign, then digits up to the first other
/// byte; 0 when there are none.
fn atoi(a: &[u8]) -> i64 {
    let s = a.iter().skip_while(|b| b.is_ascii_whitespace());
    let mut s = s.peekable();
    let negative = match s.peek() {
        Some(b'-') => {
            s.next();
            true
        }
        Some(b'+') => {
            s.next();
            false
        }
        _ => false,
    };
    let n =
        s.take_while(|b| b.is_ascii_digit()).fold(0i64, |n, b| n.saturating_mul(10).saturating_add((b - b'0') as i64));
    if negative {
        -n
    } else {
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atoi_reads_as_c_does() {
        assert_eq!(atoi(b"3"), 3);
        assert_eq!(atoi(b" 12abc"), 12);
        assert_eq!(atoi(b"-2"), -2);
        assert_eq!(atoi(b"x"), 0);
        assert_eq!(atoi(b""), 0);
    }
}
