//! Access control: users, their passwords, and which commands, keys and
//! channels each may use (Redis's ACL, 7.2 rules and texts).
//!
//! Users live in one table behind a lock that only ACL commands and AUTH
//! take. A client holds an `Arc` of its user as it was when it last looked,
//! plus the table's generation at that time; every change bumps the
//! generation, and dispatch refreshes the client's copy when they differ. So
//! the hot path costs one relaxed load and, for the unrestricted default
//! user, one flag test: no lock and no lookup per command.
//!
//! Permissions are bitmaps over command ids, which the command table assigns
//! (`Command::acl_id`). A rule like `+@read` sets the bits of every command
//! in the category at the moment it is applied, as in Redis. The rules as
//! typed are kept for ACL LIST, as Redis 7.2 does, so a user reads back the
//! way it was written.

use crate::cmd::getkeys;
use crate::cmd::table::{Command, CommandTable};
use hashbrown::HashMap;
use larder_store::glob_match;
use parking_lot::{Mutex, RwLock};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// Redis's ACL categories, in ACL CAT's order.
pub const CATEGORIES: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// Denials this close in time, same in every field, share one log entry.
const LOG_GROUP_MS: u64 = 60_000;

/// Why a command was refused, most relevant last (the order Redis uses to
/// pick which selector's refusal to report).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Denied {
    Command,
    Key,
    Channel,
}

/// A refusal and the argument it is about (for ACL LOG).
#[derive(Clone, Debug)]
pub struct Denial {
    pub why: Denied,
    /// The command's full name, the key or the channel.
    pub object: Vec<u8>,
    /// Where the key or channel is among the arguments (0 for a command):
    /// of two selectors refusing the same kind of thing, the one refusing
    /// the later argument is reported, as in Redis.
    pub pos: usize,
}

impl Denial {
    /// The reason as Redis 7.2 words it after `NOPERM `.
    pub fn message(&self, user: &str, command: &str) -> String {
        match self.why {
            Denied::Command => format!("User {user} has no permissions to run the '{command}' command"),
            Denied::Key => "No permissions to access a key".into(),
            Denied::Channel => "No permissions to access a channel".into(),
        }
    }

    /// ACL DRYRUN's wording, which names the key or channel.
    pub fn verbose(&self, user: &str, command: &str) -> String {
        let obj = String::from_utf8_lossy(&self.object);
        match self.why {
            Denied::Command => self.message(user, command),
            Denied::Key => format!("User {user} has no permissions to access the '{obj}' key"),
            Denied::Channel => format!("User {user} has no permissions to access the '{obj}' channel"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct KeyPattern {
    read: bool,
    write: bool,
    pattern: Vec<u8>,
}

impl KeyPattern {
    fn describe(&self) -> String {
        let p = String::from_utf8_lossy(&self.pattern);
        match (self.read, self.write) {
            (true, true) => format!("~{p}"),
            (true, false) => format!("%R~{p}"),
            (false, true) => format!("%W~{p}"),
            (false, false) => format!("%~{p}"),
        }
    }
}

/// One set of permissions: the user's root, or a `(...)` selector.
#[derive(Clone, Debug, Default)]
struct Selector {
    /// Set by `+@all`: commands added later would be allowed too.
    all_commands: bool,
    allowed: Vec<u64>,
    /// `+cmd|arg` for a command without subcommands: allowed first args.
    first_args: HashMap<usize, Vec<Vec<u8>>>,
    /// The command rules after the `+@all`/`-@all` base, as typed.
    rules: Vec<String>,
    all_keys: bool,
    keys: Vec<KeyPattern>,
    all_channels: bool,
    channels: Vec<Vec<u8>>,
}

/// Why a SETUSER rule was refused, worded as Redis does.
#[derive(Debug)]
enum RuleError {
    UnknownCommand,
    Syntax,
    KeysAfterAll,
    ChannelsAfterAll,
    NoSuchPassword,
    BadHash,
    FirstArgOfSub,
}

impl RuleError {
    fn text(&self) -> &'static str {
        match self {
            RuleError::UnknownCommand => "Unknown command or category name in ACL",
            RuleError::Syntax => "Syntax error",
            RuleError::KeysAfterAll => "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns",
            RuleError::ChannelsAfterAll => "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels",
            RuleError::NoSuchPassword => "The password you are trying to remove from the user does not exist",
            RuleError::BadHash => "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters",
            RuleError::FirstArgOfSub => "Allowing first-arg of a subcommand is not supported",
        }
    }
}

fn has_space(s: &[u8]) -> bool {
    s.iter().any(|&c| c.is_ascii_whitespace() || c == 0)
}

impl Selector {
    fn set_bit(&mut self, id: usize, on: bool) {
        let (w, b) = (id / 64, id % 64);
        if self.allowed.len() <= w {
            self.allowed.resize(w + 1, 0);
        }
        if on {
            self.allowed[w] |= 1 << b;
        } else {
            self.allowed[w] &= !(1 << b);
        }
    }

    fn bit(&self, id: usize) -> bool {
        self.allowed.get(id / 64).is_some_and(|w| w & (1 << (id % 64)) != 0)
    }

    /// `+cmd`/`-cmd`: the command and all its subcommands.
    fn change(&mut self, cmd: &Command, on: bool) {
        self.set_bit(cmd.acl_id, on);
        self.first_args.remove(&cmd.acl_id);
        for sub in cmd.subs.values() {
            self.change(sub, on);
        }
    }

    /// Records a command rule, replacing an earlier one for the same name
    /// and, for a whole command, those for its subcommands and first args
    /// (`+memory|doctor +memory` reads back as `+memory`, as in Redis).
    fn record(&mut self, rule: &str) {
        let rule = rule.to_ascii_lowercase();
        let name = &rule[1..];
        let whole = !name.contains('|') && !name.starts_with('@');
        self.rules.retain(|r| {
            let other = &r[1..];
            other != name && !(whole && other.strip_prefix(name).is_some_and(|rest| rest.starts_with('|')))
        });
        self.rules.push(rule);
    }

    fn apply(&mut self, op: &[u8], table: &CommandTable) -> Result<(), RuleError> {
        let lower = String::from_utf8_lossy(op).to_ascii_lowercase();
        match lower.as_str() {
            "allkeys" | "~*" => {
                self.all_keys = true;
                self.keys.clear();
            }
            "resetkeys" => {
                self.all_keys = false;
                self.keys.clear();
            }
            "allchannels" | "&*" => {
                self.all_channels = true;
                self.channels.clear();
            }
            "resetchannels" => {
                self.all_channels = false;
                self.channels.clear();
            }
            "allcommands" | "+@all" => {
                self.allowed = vec![u64::MAX; table.id_count().div_ceil(64)];
                self.all_commands = true;
                self.first_args.clear();
                self.rules.clear();
            }
            "nocommands" | "-@all" => {
                self.allowed.clear();
                self.all_commands = false;
                self.first_args.clear();
                self.rules.clear();
            }
            _ => return self.apply_pattern_or_command(op, &lower, table),
        }
        Ok(())
    }

    fn apply_pattern_or_command(&mut self, op: &[u8], lower: &str, table: &CommandTable) -> Result<(), RuleError> {
        match op.first() {
            Some(b'~' | b'%') => {
                if self.all_keys {
                    return Err(RuleError::KeysAfterAll);
                }
                let (mut read, mut write, mut at) = (true, true, 1);
                if op[0] == b'%' {
                    (read, write) = (false, false);
                    loop {
                        match op.get(at).map(u8::to_ascii_uppercase) {
                            Some(b'R') if !read => read = true,
                            Some(b'W') if !write => write = true,
                            Some(b'~') => {
                                at += 1;
                                break;
                            }
                            _ => return Err(RuleError::Syntax),
                        }
                        at += 1;
                    }
                }
                let pattern = op[at..].to_vec();
                if has_space(&pattern) {
                    return Err(RuleError::Syntax);
                }
                match self.keys.iter_mut().find(|k| k.pattern == pattern) {
                    Some(k) => {
                        k.read |= read;
                        k.write |= write;
                    }
                    None => self.keys.push(KeyPattern { read, write, pattern }),
                }
            }
            Some(b'&') => {
                if self.all_channels {
                    return Err(RuleError::ChannelsAfterAll);
                }
                let pattern = op[1..].to_vec();
                if has_space(&pattern) {
                    return Err(RuleError::Syntax);
                }
                if !self.channels.contains(&pattern) {
                    self.channels.push(pattern);
                }
            }
            Some(&sign @ (b'+' | b'-')) => {
                let on = sign == b'+';
                if let Some(cat) = lower.strip_prefix(if on { "+@" } else { "-@" }) {
                    if !CATEGORIES.contains(&cat) {
                        return Err(RuleError::UnknownCommand);
                    }
                    let tag = format!("@{cat}");
                    for c in table.iter_all() {
                        if c.categories.contains(&tag.as_str()) {
                            self.set_bit(c.acl_id, on);
                            self.first_args.remove(&c.acl_id);
                        }
                    }
                } else if !self.apply_command(&lower[1..], on, table)? {
                    return Ok(());
                }
                self.record(lower);
            }
            _ => return Err(RuleError::Syntax),
        }
        Ok(())
    }

    /// `+cmd`, `-cmd`, `+cmd|sub`; false when the rule changes nothing
    /// worth recording (a first arg of a command already allowed).
    fn apply_command(&mut self, name: &str, on: bool, table: &CommandTable) -> Result<bool, RuleError> {
        let Some((parent, sub)) = name.rsplit_once('|') else {
            let cmd = table.lookup(name.as_bytes()).ok_or(RuleError::UnknownCommand)?;
            self.change(cmd, on);
            return Ok(true);
        };
        if let Some((base, subname)) = parent.split_once('|') {
            // A first arg of a real subcommand (`+config|get|x`) is refused
            // as such; anything else names no command, as in Redis.
            let is_sub = table.lookup(base.as_bytes()).and_then(|c| c.lookup_sub(subname.as_bytes())).is_some();
            return Err(if is_sub { RuleError::FirstArgOfSub } else { RuleError::UnknownCommand });
        }
        let cmd = table.lookup(parent.as_bytes()).ok_or(RuleError::UnknownCommand)?;
        if sub.is_empty() {
            return Err(RuleError::Syntax);
        }
        if !cmd.subs.is_empty() {
            let s = cmd.lookup_sub(sub.as_bytes()).ok_or(RuleError::UnknownCommand)?;
            self.change(s, on);
        } else if on {
            // Redis's deprecated first-arg allowance (`+select|0`), which
            // means nothing while the whole command is allowed.
            if self.bit(cmd.acl_id) {
                return Ok(false);
            }
            let args = self.first_args.entry(cmd.acl_id).or_default();
            if !args.iter().any(|a| a.as_slice() == sub.as_bytes()) {
                args.push(sub.as_bytes().to_vec());
            }
        } else {
            // `-cmd|arg` of a command without subcommands names nothing.
            return Err(RuleError::UnknownCommand);
        }
        Ok(true)
    }

    /// The selector as ACL LIST prints it: keys, channels (after
    /// `resetchannels` unless all are allowed), then the command rules.
    fn describe(&self) -> String {
        let reset = if self.all_channels { "" } else { "resetchannels" };
        let parts = [self.describe_keys(), reset.to_string(), self.describe_channels(), self.describe_commands()];
        parts.into_iter().filter(|p| !p.is_empty()).collect::<Vec<_>>().join(" ")
    }

    fn describe_commands(&self) -> String {
        let mut s = String::from(if self.all_commands { "+@all" } else { "-@all" });
        for r in &self.rules {
            s.push(' ');
            s.push_str(r);
        }
        s
    }

    fn describe_keys(&self) -> String {
        if self.all_keys {
            return "~*".into();
        }
        self.keys.iter().map(KeyPattern::describe).collect::<Vec<_>>().join(" ")
    }

    fn describe_channels(&self) -> String {
        if self.all_channels {
            return "&*".into();
        }
        self.channels.iter().map(|c| format!("&{}", String::from_utf8_lossy(c))).collect::<Vec<_>>().join(" ")
    }

    fn unrestricted(&self, table: &CommandTable) -> bool {
        self.all_commands && self.all_keys && self.all_channels && (0..table.id_count()).all(|id| self.bit(id))
    }

    /// Redis's ACLSelectorCheckCmd: the command, then its keys, then its
    /// channels.
    fn check(&self, cmd: &Command, argv: &[&[u8]]) -> Result<(), Denial> {
        // AUTH, HELLO, QUIT and RESET work for every user, as in Redis.
        if !self.bit(cmd.acl_id) && !cmd.spec.has(crate::cmd::table::flags::NO_AUTH) {
            let by_first_arg = argv.len() > 1
                && self.first_args.get(&cmd.acl_id).is_some_and(|a| a.iter().any(|x| x.eq_ignore_ascii_case(argv[1])));
            if !by_first_arg {
                return Err(Denial { why: Denied::Command, object: cmd.full_name.as_bytes().to_vec(), pos: 0 });
            }
        }
        if !self.all_keys {
            // Per key, as Redis's ACLSelectorCheckKey: reading its value
            // needs %R, changing it %W; a key the command only looks at
            // (EXISTS, TYPE) or whose use it cannot tell (flags 0) needs
            // a pattern of either kind.
            for k in getkeys::command_keys(cmd, argv) {
                let read = k.flags & getkeys::flags::ACCESS != 0;
                let write = k.flags & (getkeys::flags::INSERT | getkeys::flags::DELETE | getkeys::flags::UPDATE) != 0;
                let key = argv[k.pos];
                let ok = self
                    .keys
                    .iter()
                    .any(|p| (!read || p.read) && (!write || p.write) && glob_match(&p.pattern, key, false));
                if !ok {
                    return Err(Denial { why: Denied::Key, object: key.to_vec(), pos: k.pos });
                }
            }
        }
        if !self.all_channels {
            for (pos, is_pattern) in channels_of(&cmd.full_name, argv.len()) {
                if !self.channel_ok(argv[pos], is_pattern) {
                    return Err(Denial { why: Denied::Channel, object: argv[pos].to_vec(), pos });
                }
            }
        }
        Ok(())
    }

    /// Reads any key at all: `allkeys` or a `%R~*` pattern.
    fn reads_every_key(&self) -> bool {
        self.all_keys || self.keys.iter().any(|p| p.read && p.pattern == b"*")
    }

    /// A channel (or, subscribed to as a pattern, a pattern, which must
    /// equal an allowed one, not merely match it) this selector allows.
    fn channel_ok(&self, channel: &[u8], is_pattern: bool) -> bool {
        self.all_channels
            || self.channels.iter().any(|p| {
                if is_pattern {
                    p.as_slice() == channel
                } else {
                    glob_match(p, channel, false)
                }
            })
    }
}

/// The channels a command publishes or subscribes to, and whether each is
/// a pattern (a pattern must equal an allowed one, not merely match it).
fn channels_of(name: &str, argc: usize) -> Vec<(usize, bool)> {
    match name {
        "publish" | "spublish" if argc > 1 => vec![(1, false)],
        "subscribe" | "ssubscribe" => (1..argc).map(|i| (i, false)).collect(),
        "psubscribe" => (1..argc).map(|i| (i, true)).collect(),
        _ => Vec::new(),
    }
}

/// A user, as a client sees it at one moment (clients hold an `Arc`).
#[derive(Clone, Debug)]
pub struct User {
    pub name: String,
    pub enabled: bool,
    pub nopass: bool,
    /// `skip-sanitize-payload`; kept for GETUSER and LIST only.
    skip_sanitize: Option<bool>,
    /// SHA-256 of each password, as lowercase hex.
    passwords: Vec<String>,
    root: Selector,
    selectors: Vec<Selector>,
    /// Root allows every command, key and channel, and there are no
    /// selectors: dispatch skips the check.
    pub unrestricted: bool,
    /// `acl-pubsub-default allchannels` when the rules were applied: new
    /// selectors and `reset` start with every channel allowed.
    pubsub_all: bool,
}

/// Redis's ACLMergeSelectorArguments: a selector may come split over
/// several arguments (`"(+@read" "~k*)"`), as clients that split a rule
/// line on spaces send it; its parts are joined with single spaces.
fn merge_selectors<'a>(ops: &[&'a [u8]]) -> Result<Vec<std::borrow::Cow<'a, [u8]>>, SetUserError> {
    use std::borrow::Cow;
    let mut merged = Vec::with_capacity(ops.len());
    let mut open: Option<(usize, Vec<u8>)> = None;
    for (i, op) in ops.iter().enumerate() {
        let closes = op.last() == Some(&b')');
        if let Some((_, selector)) = open.as_mut() {
            selector.push(b' ');
            selector.extend_from_slice(op);
            if closes {
                merged.push(Cow::Owned(open.take().expect("open selector").1));
            }
        } else if op.first() == Some(&b'(') && !closes {
            open = Some((i, op.to_vec()));
        } else {
            merged.push(Cow::Borrowed(*op));
        }
    }
    if let Some((at, _)) = open {
        return Err(SetUserError(format!(
            "Unmatched parenthesis in acl selector starting at '{}'.",
            String::from_utf8_lossy(ops[at])
        )));
    }
    Ok(merged)
}

fn sha256_hex(pass: &[u8]) -> String {
    crate::digest::hex(&Sha256::digest(pass))
}

/// The hash a password rule names: `>pass`/`<pass` hash the cleartext,
/// `#hash`/`!hash` give it (64 lowercase hex digits).
fn rule_hash(op: &[u8]) -> Result<String, RuleError> {
    let arg = &op[1..];
    if matches!(op[0], b'>' | b'<') {
        return Ok(sha256_hex(arg));
    }
    if arg.len() == 64 && arg.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(String::from_utf8_lossy(arg).into_owned())
    } else {
        Err(RuleError::BadHash)
    }
}

impl User {
    /// A new user as ACL SETUSER creates it: off, no password, nothing
    /// allowed but, under `acl-pubsub-default allchannels`, every channel.
    fn new(name: &str, pubsub_all: bool) -> User {
        User {
            name: name.to_string(),
            enabled: false,
            nopass: false,
            skip_sanitize: None,
            passwords: Vec::new(),
            root: Selector { all_channels: pubsub_all, ..Selector::default() },
            selectors: Vec::new(),
            unrestricted: false,
            pubsub_all,
        }
    }

    /// The default user at start-up: on, nopass, everything allowed.
    fn default_user(table: &CommandTable) -> User {
        let mut u = User::new("default", false);
        for op in ["on", "nopass", "~*", "&*", "+@all"] {
            u.apply(op.as_bytes(), table).expect("the default user's rules are valid");
        }
        u.seal(table);
        u
    }

    fn seal(&mut self, table: &CommandTable) {
        self.unrestricted = self.selectors.is_empty() && self.root.unrestricted(table);
    }

    pub fn password_ok(&self, pass: &[u8]) -> bool {
        if self.nopass {
            return true;
        }
        let h = sha256_hex(pass);
        // Hashes compared whole; their equality says nothing of the
        // password's prefix, so this leaks no timing worth having.
        self.passwords.contains(&h)
    }

    fn apply(&mut self, op: &[u8], table: &CommandTable) -> Result<(), RuleError> {
        let lower = String::from_utf8_lossy(op).to_ascii_lowercase();
        match lower.as_str() {
            "" => {}
            "on" => self.enabled = true,
            "off" => self.enabled = false,
            "skip-sanitize-payload" => self.skip_sanitize = Some(true),
            "sanitize-payload" => self.skip_sanitize = Some(false),
            "nopass" => {
                self.nopass = true;
                self.passwords.clear();
            }
            "resetpass" => {
                self.nopass = false;
                self.passwords.clear();
            }
            "clearselectors" => self.selectors.clear(),
            "reset" => {
                for op in
                    ["resetpass", "resetkeys", "resetchannels", "off", "sanitize-payload", "clearselectors", "-@all"]
                {
                    self.apply(op.as_bytes(), table)?;
                }
                if self.pubsub_all {
                    self.apply(b"allchannels", table)?;
                }
            }
            _ => match op[0] {
                b'>' | b'#' => {
                    let h = rule_hash(op)?;
                    if !self.passwords.contains(&h) {
                        self.passwords.push(h);
                    }
                    self.nopass = false;
                }
                b'<' | b'!' => {
                    let h = rule_hash(op)?;
                    let before = self.passwords.len();
                    self.passwords.retain(|p| *p != h);
                    if self.passwords.len() == before {
                        return Err(RuleError::NoSuchPassword);
                    }
                }
                b'(' if op.len() > 1 && op[op.len() - 1] == b')' => {
                    let mut s = Selector { all_channels: self.pubsub_all, ..Selector::default() };
                    for part in op[1..op.len() - 1].split(|c| c.is_ascii_whitespace()).filter(|p| !p.is_empty()) {
                        s.apply(part, table)?;
                    }
                    self.selectors.push(s);
                }
                _ => self.root.apply(op, table)?,
            },
        }
        Ok(())
    }

    /// Redis's ACLCheckAllUserCommandPerm: allowed if the root or any
    /// selector allows it; otherwise the most relevant refusal.
    pub fn check(&self, cmd: &Command, argv: &[&[u8]]) -> Result<(), Denial> {
        if self.unrestricted {
            return Ok(());
        }
        let mut worst: Option<Denial> = None;
        for s in std::iter::once(&self.root).chain(&self.selectors) {
            match s.check(cmd, argv) {
                Ok(()) => return Ok(()),
                Err(d) => {
                    if worst.as_ref().is_none_or(|w| d.why > w.why || (d.why == w.why && d.pos > w.pos)) {
                        worst = Some(d);
                    }
                }
            }
        }
        Err(worst.expect("the root selector refused"))
    }

    /// Redis's ACLUserCheckCmdWithUnrestrictedKeyAccess for reads: a
    /// selector that allows this command also reads every key. SORT's BY
    /// and GET read keys its arguments do not name, so they need it.
    pub fn reads_every_key(&self, cmd: &Command, argv: &[&[u8]]) -> bool {
        self.unrestricted
            || std::iter::once(&self.root)
                .chain(&self.selectors)
                .any(|s| s.check(cmd, argv).is_ok() && s.reads_every_key())
    }

    /// Whether any of the user's selectors allows `channel` (Redis's
    /// ACLKillPubsubClientsIfNeeded pools them the same way).
    pub fn channel_ok(&self, channel: &[u8], is_pattern: bool) -> bool {
        std::iter::once(&self.root).chain(&self.selectors).any(|s| s.channel_ok(channel, is_pattern))
    }

    /// The user as one ACL LIST line.
    pub fn describe(&self) -> String {
        let mut parts = vec![format!("user {}", self.name), self.flags().join(" ")];
        parts.extend(self.passwords.iter().map(|p| format!("#{p}")));
        parts.push(self.root.describe());
        parts.extend(self.selectors.iter().map(|s| format!("({})", s.describe())));
        parts.retain(|p| !p.is_empty());
        parts.join(" ")
    }

    fn flags(&self) -> Vec<&'static str> {
        let mut f = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            f.push("nopass");
        }
        match self.skip_sanitize {
            Some(true) => f.push("skip-sanitize-payload"),
            Some(false) => f.push("sanitize-payload"),
            None => {}
        }
        f
    }
}

/// ACL GETUSER's reply, as field/value pairs (a map in RESP3).
pub fn getuser_fields(u: &User) -> Vec<(&'static str, larder_protocol::Frame)> {
    use larder_protocol::Frame;
    let strs = |v: Vec<String>| Frame::Array(v.into_iter().map(Frame::bulk).collect());
    let selector = |s: &Selector| {
        Frame::Map(vec![
            (Frame::bulk_static("commands"), Frame::bulk(s.describe_commands())),
            (Frame::bulk_static("keys"), Frame::bulk(s.describe_keys())),
            (Frame::bulk_static("channels"), Frame::bulk(s.describe_channels())),
        ])
    };
    vec![
        ("flags", Frame::Set(u.flags().into_iter().map(Frame::bulk_static).collect())),
        ("passwords", strs(u.passwords.clone())),
        ("commands", Frame::bulk(u.root.describe_commands())),
        ("keys", Frame::bulk(u.root.describe_keys())),
        ("channels", Frame::bulk(u.root.describe_channels())),
        ("selectors", Frame::Array(u.selectors.iter().map(selector).collect())),
    ]
}

/// One ACL LOG entry.
pub struct LogEntry {
    pub count: u64,
    pub reason: &'static str,
    pub context: &'static str,
    pub object: String,
    pub username: String,
    pub client_info: String,
    pub entry_id: u64,
    pub created_ms: u64,
    pub updated_ms: u64,
}

/// The user table.
pub struct Acl {
    users: RwLock<BTreeMap<String, Arc<User>>>,
    generation: AtomicU64,
    table: Arc<CommandTable>,
    log: Mutex<(VecDeque<LogEntry>, u64)>,
    /// How many denials ACL LOG keeps (`acllog-max-len`).
    log_max: std::sync::atomic::AtomicUsize,
    /// The requirepass the default user was last given, so only a change
    /// of requirepass touches the default user's passwords.
    requirepass: Mutex<String>,
    /// `acl-pubsub-default allchannels`.
    pubsub_all: std::sync::atomic::AtomicBool,
}

/// At start-up, the users the config declares (`user` lines) or its
/// `aclfile` holds, as Redis's ACLLoadUsersAtStartup; an error stops the
/// start, as in Redis.
pub fn load_at_startup(acl: &Acl, config: &crate::config::Config) -> Result<(), String> {
    let file = config.extra("aclfile");
    if !file.is_empty() && !config.users.is_empty() {
        return Err("Configuring Redis with users defined in redis.conf and at the same setting an ACL file path is \
                    invalid. This setup is very likely to lead to configuration errors and security holes, please \
                    define either an ACL file or declare users directly in your redis.conf, but not both."
            .into());
    }
    for words in &config.users {
        let (name, rules) = words.split_first().expect("a user line names its user");
        let mut ops: Vec<&[u8]> = vec![b"reset"];
        ops.extend(rules.iter().map(|r| r.as_bytes()));
        acl.set_user(name.as_bytes(), &ops).map_err(|e| format!("Error loading the user named '{name}': {}", e.0))?;
    }
    if !file.is_empty() {
        let text =
            std::fs::read_to_string(file).map_err(|e| format!("Error loading ACLs, opening file '{file}': {e}"))?;
        acl.load_file(&text, file).map_err(|e| format!("Aborting Redis startup because of ACL errors: {e}"))?;
    }
    Ok(())
}

/// Why ACL SETUSER failed: the rule and Redis's reason.
pub struct SetUserError(pub String);

impl Acl {
    pub fn new(table: Arc<CommandTable>) -> Acl {
        let default = User::default_user(&table);
        let mut users = BTreeMap::new();
        users.insert("default".to_string(), Arc::new(default));
        Acl {
            users: RwLock::new(users),
            generation: AtomicU64::new(1),
            table,
            log: Mutex::new((VecDeque::new(), 0)),
            log_max: std::sync::atomic::AtomicUsize::new(128),
            requirepass: Mutex::new(String::new()),
            pubsub_all: Default::default(),
        }
    }

    /// `acl-pubsub-default`: whether users and selectors made from now on
    /// start with every channel allowed (`allchannels`).
    pub fn set_pubsub_default(&self, all: bool) {
        self.pubsub_all.store(all, Relaxed);
    }

    /// Bumped on every change; clients compare it with their copy's.
    pub fn generation(&self) -> u64 {
        self.generation.load(Relaxed)
    }

    pub fn get(&self, name: &[u8]) -> Option<Arc<User>> {
        self.users.read().get(String::from_utf8_lossy(name).as_ref()).cloned()
    }

    pub fn default_user(&self) -> Arc<User> {
        self.get(b"default").expect("the default user cannot be removed")
    }

    pub fn names(&self) -> Vec<String> {
        self.users.read().keys().cloned().collect()
    }

    pub fn all(&self) -> Vec<Arc<User>> {
        self.users.read().values().cloned().collect()
    }

    /// ACL SETUSER: every rule applies, or none does.
    pub fn set_user(&self, name: &[u8], ops: &[&[u8]]) -> Result<(), SetUserError> {
        let ops = merge_selectors(ops)?;
        let name = String::from_utf8_lossy(name).into_owned();
        let mut users = self.users.write();
        let pubsub_all = self.pubsub_all.load(Relaxed);
        let mut u = users.get(&name).map(|u| (**u).clone()).unwrap_or_else(|| User::new(&name, pubsub_all));
        u.pubsub_all = pubsub_all;
        for op in &ops {
            u.apply(op, &self.table).map_err(|e| {
                SetUserError(format!("Error in ACL SETUSER modifier '{}': {}", String::from_utf8_lossy(op), e.text()))
            })?;
        }
        u.seal(&self.table);
        users.insert(name, Arc::new(u));
        self.generation.fetch_add(1, Relaxed);
        Ok(())
    }

    /// Redis's ACLLoadFromFile: every user replaced by those `text` (an ACL
    /// file, named `file` in errors) declares, all or nothing. A file
    /// that does not declare `default` gets the start-up one (on, nopass,
    /// everything). Errors are Redis's, joined on one line. Returns the
    /// users whose rules changed or that went, whose clients the caller
    /// disconnects (Redis 7.2 leaves the others connected).
    pub fn load_file(&self, text: &str, file: &str) -> Result<Vec<String>, String> {
        let pubsub_all = self.pubsub_all.load(Relaxed);
        let mut fresh: BTreeMap<String, User> = BTreeMap::new();
        let mut errors = String::new();
        for (i, raw) in text.split('\n').enumerate() {
            let line = raw.trim_matches([' ', '\t', '\r', '\n']);
            let n = i + 1;
            if line.is_empty() {
                continue;
            }
            // Split on spaces, as Redis 7.0 splits a file's lines: no
            // quoting.
            let words: Vec<&[u8]> = line.as_bytes().split(|&c| c == b' ').filter(|w| !w.is_empty()).collect();
            if words.len() < 2 || words[0] != b"user" {
                errors.push_str(&format!("{file}:{n} should start with user keyword followed by the username. "));
                continue;
            }
            let name = String::from_utf8_lossy(words[1]).into_owned();
            if has_space(words[1]) {
                errors.push_str(&format!("'{file}:{n}: username '{name}' contains invalid characters. "));
                continue;
            }
            if fresh.contains_key(&name) {
                errors.push_str(&format!("WARNING: Duplicate user '{name}' found on line {n}. "));
                continue;
            }
            let Ok(rules) = merge_selectors(&words[2..]) else {
                errors.push_str(&format!("{file}:{n}: Unmatched parenthesis in selector definition."));
                continue;
            };
            let mut u = User::new(&name, pubsub_all);
            let mut reported = false;
            for op in &rules {
                let op = op.as_ref().trim_ascii_end();
                match u.apply(op, &self.table) {
                    Ok(()) => {}
                    // As Redis: an unknown command is named (it holds no
                    // secret); of other errors, only a line's first is
                    // told, without the rule (it may be a password).
                    Err(e @ RuleError::UnknownCommand) => errors.push_str(&format!(
                        "{file}:{n}: Error in applying operation '{}': {}. ",
                        String::from_utf8_lossy(op),
                        e.text()
                    )),
                    Err(e) if !reported => {
                        reported = true;
                        errors.push_str(&format!("{file}:{n}: {}. ", e.text()));
                    }
                    Err(_) => {}
                }
            }
            u.seal(&self.table);
            fresh.insert(name, u);
        }
        if !errors.is_empty() {
            errors.push_str("WARNING: ACL errors detected, no change to the previously active ACL rules was performed");
            return Err(errors);
        }
        fresh.entry("default".to_string()).or_insert_with(|| User::default_user(&self.table));
        let mut users = self.users.write();
        let changed = users
            .iter()
            .filter(|(name, old)| fresh.get(*name).is_none_or(|new| new.describe() != old.describe()))
            .map(|(name, _)| name.clone())
            .collect();
        *users = fresh.into_iter().map(|(name, u)| (name, Arc::new(u))).collect();
        self.generation.fetch_add(1, Relaxed);
        Ok(changed)
    }

    /// ACL SAVE's text: a `user` line per user, as ACL LIST gives them.
    pub fn file_text(&self) -> String {
        self.users.read().values().map(|u| format!("{}\n", u.describe())).collect()
    }

    /// ACL DELUSER: how many existed. The caller disconnects their clients.
    pub fn delete(&self, names: &[&[u8]]) -> usize {
        let mut users = self.users.write();
        let n = names.iter().filter(|n| users.remove(String::from_utf8_lossy(n).as_ref()).is_some()).count();
        self.generation.fetch_add(1, Relaxed);
        n
    }

    /// Gives the default user requirepass as its only password (nopass
    /// when empty), as Redis does, but only when requirepass changed: an
    /// unrelated CONFIG SET must not undo ACL SETUSER default.
    pub fn sync_requirepass(&self, requirepass: &str) {
        let mut seen = self.requirepass.lock();
        if *seen == requirepass {
            return;
        }
        seen.clone_from(&requirepass.to_string());
        let pass = format!(">{requirepass}");
        let ops: Vec<&[u8]> =
            if requirepass.is_empty() { vec![b"nopass"] } else { vec![b"resetpass", pass.as_bytes()] };
        let _ = self.set_user(b"default", &ops);
    }

    /// Redis's ACLAuthenticateUser: the user, if it exists, is on and the
    /// password is one of its own.
    pub fn authenticate(&self, name: &[u8], pass: &[u8]) -> Option<Arc<User>> {
        self.get(name).filter(|u| u.enabled && u.password_ok(pass))
    }

    /// Whether a new connection starts authenticated (default user on and
    /// nopass).
    pub fn default_open(&self) -> bool {
        let u = self.default_user();
        u.enabled && u.nopass
    }

    /// ACL CAT category: its commands' full names.
    pub fn category_commands(&self, cat: &str) -> Option<Vec<String>> {
        if !CATEGORIES.contains(&cat) {
            return None;
        }
        let tag = format!("@{cat}");
        Some(
            self.table
                .iter_all()
                .into_iter()
                .filter(|c| c.categories.contains(&tag.as_str()))
                .map(|c| c.full_name.clone())
                .collect(),
        )
    }

    /// Adds a denial (or a failed AUTH) to ACL LOG.
    pub fn log(
        &self,
        reason: &'static str,
        context: &'static str,
        object: String,
        username: String,
        client_info: String,
        now_ms: u64,
    ) {
        let mut log = self.log.lock();
        let (entries, next_id) = &mut *log;
        if let Some(e) = entries.iter_mut().find(|e| {
            e.reason == reason
                && e.context == context
                && e.object == object
                && e.username == username
                && now_ms.saturating_sub(e.updated_ms) < LOG_GROUP_MS
        }) {
            e.count += 1;
            e.updated_ms = now_ms;
            e.client_info = client_info;
            return;
        }
        entries.push_front(LogEntry {
            count: 1,
            reason,
            context,
            object,
            username,
            client_info,
            entry_id: *next_id,
            created_ms: now_ms,
            updated_ms: now_ms,
        });
        *next_id += 1;
        // As in Redis, a lowered limit trims the log at its next entry.
        entries.truncate(self.log_max.load(Relaxed));
    }

    /// The newest `count` entries, through `f`.
    pub fn with_log<R>(&self, f: impl FnOnce(&VecDeque<LogEntry>) -> R) -> R {
        f(&self.log.lock().0)
    }

    pub fn set_log_max(&self, n: u64) {
        self.log_max.store(n.min(usize::MAX as u64) as usize, Relaxed);
    }

    pub fn reset_log(&self) {
        self.log.lock().0.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl() -> Acl {
        Acl::new(Arc::new(CommandTable::build()))
    }

    fn line(acl: &Acl, name: &str) -> String {
        acl.get(name.as_bytes()).unwrap().describe()
    }

    fn set(acl: &Acl, name: &str, ops: &[&str]) -> Result<(), String> {
        let ops: Vec<&[u8]> = ops.iter().map(|o| o.as_bytes()).collect();
        acl.set_user(name.as_bytes(), &ops).map_err(|e| e.0)
    }

    #[test]
    fn lines_read_back_as_redis_prints_them() {
        let a = acl();
        assert_eq!(line(&a, "default"), "user default on nopass ~* &* +@all");
        set(&a, "bob", &["on", ">123", "+@scripting", "+set", "~x*"]).unwrap();
        assert_eq!(
            line(&a, "bob"),
            "user bob on #a665a45920422f9d417e4867efdc4fb8a04a1f3fff1fa07e998e86f7f7a27ae3 ~x* resetchannels -@all +@scripting +set"
        );
        set(&a, "bob", &["-set", "+get", "%R~y*", "&chan*", "resetpass", "nopass", "+client|id"]).unwrap();
        assert_eq!(
            line(&a, "bob"),
            "user bob on nopass ~x* %R~y* resetchannels &chan* -@all +@scripting -set +get +client|id"
        );
        set(&a, "bob", &["-@all", "+@read", "-get", "(~z +set)"]).unwrap();
        assert_eq!(
            line(&a, "bob"),
            "user bob on nopass ~x* %R~y* resetchannels &chan* -@all +@read -get (~z resetchannels -@all +set)"
        );
    }

    #[test]
    fn a_bad_rule_changes_nothing() {
        let a = acl();
        assert_eq!(
            set(&a, "x", &["on", "+foo"]).unwrap_err(),
            "Error in ACL SETUSER modifier '+foo': Unknown command or category name in ACL"
        );
        assert!(a.get(b"x").is_none());
        assert!(set(&a, "x", &["bar"]).unwrap_err().ends_with("Syntax error"));
        assert!(set(&a, "x", &["~*", "~a"]).unwrap_err().contains("'allkeys'"));
        assert!(set(&a, "x", &["<nope"]).unwrap_err().contains("does not exist"));
        assert!(set(&a, "x", &["#abc"]).unwrap_err().contains("64 characters"));
        assert!(set(&a, "x", &["+client|id|x"]).unwrap_err().contains("first-arg of a subcommand"));
        // Not a subcommand: no such command, as Redis words it.
        assert!(set(&a, "x", &["+get|key1|key2"]).unwrap_err().contains("Unknown command or category name"));
        assert_eq!(
            set(&a, "x", &["on", "(+get", "~a*"]).unwrap_err(),
            "Unmatched parenthesis in acl selector starting at '(+get'."
        );
        assert!(a.get(b"x").is_none());
    }

    #[test]
    fn a_selector_may_come_split_over_arguments() {
        let a = acl();
        set(&a, "x", &["on", "nopass", "(+get", "~a*", "%R~b*)", "(+set ~c*)"]).unwrap();
        assert_eq!(
            line(&a, "x"),
            "user x on nopass resetchannels -@all (~a* %R~b* resetchannels -@all +get) (~c* resetchannels -@all +set)"
        );
    }

    #[test]
    fn a_whole_command_rule_engulfs_its_subcommand_rules() {
        let a = acl();
        set(&a, "x", &["+memory|doctor", "+config|get", "+select|0"]).unwrap();
        set(&a, "x", &["+memory", "-select"]).unwrap();
        assert!(line(&a, "x").ends_with("-@all +config|get +memory -select"), "{}", line(&a, "x"));
    }

    #[test]
    fn checks_commands_keys_and_channels() {
        let a = acl();
        let t = CommandTable::build();
        set(&a, "bob", &["on", "+@scripting", "+set", "+get", "+publish", "+select|0", "~x*", "&news.*"]).unwrap();
        let bob = a.get(b"bob").unwrap();
        let run = |argv: &[&str]| {
            let argv: Vec<&[u8]> = argv.iter().map(|s| s.as_bytes()).collect();
            let cmd = t.lookup(argv[0]).unwrap();
            bob.check(cmd, &argv).map_err(|d| d.why)
        };
        assert_eq!(run(&["set", "xa", "1"]), Ok(()));
        assert_eq!(run(&["set", "ya", "1"]), Err(Denied::Key));
        assert_eq!(run(&["hset", "xa", "f", "1"]), Err(Denied::Command));
        assert_eq!(run(&["eval", "return 1", "1", "xa"]), Ok(()));
        assert_eq!(run(&["eval", "return 1", "1", "za"]), Err(Denied::Key));
        assert_eq!(run(&["publish", "news.1", "m"]), Ok(()));
        assert_eq!(run(&["publish", "other", "m"]), Err(Denied::Channel));
        assert_eq!(run(&["select", "0"]), Ok(()));
        assert_eq!(run(&["select", "1"]), Err(Denied::Command));
        assert!(!bob.unrestricted);
        assert!(a.default_user().unrestricted);
    }

    #[test]
    fn passwords_and_requirepass() {
        let a = acl();
        assert!(a.authenticate(b"default", b"anything").is_some());
        a.sync_requirepass("pw");
        assert!(a.authenticate(b"default", b"anything").is_none());
        assert!(a.authenticate(b"default", b"pw").is_some());
        assert!(!a.default_open());
        set(&a, "default", &[">other"]).unwrap();
        a.sync_requirepass("pw");
        assert!(a.authenticate(b"default", b"other").is_some(), "an unchanged requirepass leaves ACL edits alone");
        set(&a, "off-user", &[">p"]).unwrap();
        assert!(a.authenticate(b"off-user", b"p").is_none(), "a user is off until 'on'");
    }
}
