//! Configuration with redis.conf names and defaults.
//!
//! One table (`PARAMS`) describes every parameter once: its name, whether
//! CONFIG SET may change it at runtime, how to print it and how to parse
//! it. The config file loader, the `--name value` command-line flags,
//! CONFIG GET and CONFIG SET all go through that table, so they cannot
//! disagree about names, values or errors.

use larder_store::{glob_match, Limits};

pub const DEFAULT_PORT: u16 = 6379;
pub const DEFAULT_BIND: &str = "127.0.0.1";
pub const DEFAULT_DATABASES: usize = 16;
pub const DEFAULT_MAXCLIENTS: u64 = 10000;
pub const DEFAULT_PROTO_MAX_BULK_LEN: u64 = 512 * 1024 * 1024;
pub const DEFAULT_CLIENT_QUERY_BUFFER_LIMIT: u64 = 1024 * 1024 * 1024;
pub const DEFAULT_HZ: u64 = 10;
/// Shards per database. Multi-key commands lock every shard they touch, so
/// the count must make collisions rare: two concurrent 10-key MSETs collide
/// on ~82% of calls with 64 shards and ~9% with 1024. Empty shards cost
/// ~100 bytes each. BENCHMARKS.md has the (noisy) measurements.
pub const DEFAULT_SHARDS: usize = 1024;

pub const MAXMEMORY_POLICIES: &[&str] = &[
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "noeviction",
];
/// Policies Larder adds to Redis's: accepted, but left out of the error
/// text for a bad value, which stays Redis's word for word.
const EXTRA_POLICIES: &[&str] = &["allkeys-sieve"];
const LOGLEVELS: &[&str] = &["debug", "verbose", "notice", "warning", "nothing"];
const APPENDFSYNC: &[&str] = &["always", "everysec", "no"];

#[derive(Debug, Clone)]
pub struct Config {
    /// The config file the server started from, absolute (empty: none).
    /// CONFIG REWRITE writes it; not a parameter.
    pub config_file: String,
    pub bind: Vec<String>,
    pub port: u16,
    pub requirepass: String,
    pub databases: usize,
    pub maxclients: u64,
    /// Idle seconds before a client is closed; 0 disables.
    pub timeout: u64,
    pub protected_mode: bool,
    pub proto_max_bulk_len: u64,
    pub client_query_buffer_limit: u64,
    pub hz: u64,
    pub maxmemory: u64,
    /// `maxmemory-clients`: bytes, or a percentage of maxmemory ("10%");
    /// 0 turns client eviction off. See [`Config::clients_memory_limit`].
    pub maxmemory_clients: String,
    pub maxmemory_policy: String,
    pub maxmemory_samples: u64,
    pub lfu_log_factor: u64,
    pub lfu_decay_time: u64,
    pub loglevel: String,
    pub logfile: String,
    pub dir: String,
    pub dbfilename: String,
    pub save: String,
    pub appendonly: bool,
    pub appendfsync: String,
    pub appendfilename: String,
    pub appenddirname: String,
    pub auto_aof_rewrite_percentage: u64,
    pub auto_aof_rewrite_min_size: u64,
    pub aof_load_truncated: bool,
    /// Accepted for redis.conf compatibility; bases are always RDB.
    pub aof_use_rdb_preamble: bool,
    /// LZF-compress strings over 20 bytes in files and DUMP payloads.
    pub rdbcompression: bool,
    pub daemonize: bool,
    pub tcp_keepalive: u64,
    pub tcp_backlog: u64,
    /// Worker threads that run connections; 0 means one per core but one
    /// (see [`Config::worker_threads`]).
    pub io_threads: u64,
    /// Larder's own: shards per database (rounded up to a power of two).
    pub shards: usize,
    /// Redis's hidden `key-load-delay`: microseconds to sleep per key
    /// while loading a snapshot (negative: 1 µs once in that many keys),
    /// so tests can watch a load in progress.
    pub key_load_delay: i64,
    /// Redis's hidden `rdb-key-save-delay`: the same per key written to a
    /// snapshot (BGSAVE, an AOF rewrite's base, a full sync's image), so
    /// tests can act while one is in progress.
    pub rdb_key_save_delay: i64,
    /// SLOWLOG: commands at least this many µs long are logged (negative:
    /// none), the newest `slowlog_max_len` kept.
    pub slowlog_log_slower_than: i64,
    pub slowlog_max_len: u64,
    /// ACL LOG keeps the newest this many denials.
    pub acllog_max_len: u64,
    /// LATENCY: spikes of at least this many ms are recorded (0: off).
    pub latency_monitor_threshold: u64,
    /// Per-command latency histograms (LATENCY HISTOGRAM).
    pub latency_tracking: bool,
    /// DEL frees as UNLINK does (`lazyfree-lazy-user-del`).
    pub lazyfree_lazy_user_del: bool,
    /// FLUSHALL and FLUSHDB without a mode free as with ASYNC
    /// (`lazyfree-lazy-user-flush`).
    pub lazyfree_lazy_user_flush: bool,
    /// Compact-encoding thresholds (`hash-max-listpack-entries`, …).
    pub limits: Limits,
    /// Accepted for redis.conf compatibility; lists are never compressed.
    pub list_compress_depth: u64,
    /// client-output-buffer-limit, per class: normal, replica, pubsub.
    pub output_limits: [crate::pubsub::BufferLimit; 3],
    /// notify-keyspace-events, as Redis's NOTIFY_* bits (`larder_store::class`).
    pub notify_flags: u32,
    /// Keys the client-tracking table remembers before it forgets some.
    pub tracking_table_max_keys: u64,
    /// Milliseconds a script may run before other clients get BUSY.
    pub busy_reply_threshold: u64,
    /// Seconds between the PINGs a primary sends its replicas.
    pub repl_ping_replica_period: u64,
    pub repl_backlog_size: u64,
    pub repl_backlog_ttl: u64,
    pub masterauth: String,
    pub masteruser: String,
    /// `replicaof <host> <port>` at start-up ("host port"; empty: none).
    pub replicaof: String,
    /// As a replica: clients may not write (READONLY).
    pub replica_read_only: bool,
    /// As a replica whose link is down: serve data anyway (else MASTERDOWN).
    pub replica_serve_stale_data: bool,
    /// As a replica: ignore maxmemory, evicting only as the primary's
    /// stream says (Redis's default, so the replica's data stays the
    /// primary's).
    pub replica_ignore_maxmemory: bool,
    /// Writes are refused (NOREPLICAS) with fewer good replicas than this.
    pub min_replicas_to_write: u64,
    /// A replica is good while its last ACK is at most this many seconds old.
    pub min_replicas_max_lag: u64,
    /// `user <name> [rule ...]` lines, in order (ACL users declared in the
    /// config file, loaded at start-up; not a CONFIG GET parameter).
    pub users: Vec<Vec<String>>,
    /// The rest of Redis's parameters ([`EXTRAS`]), by name, as CONFIG GET
    /// prints them: those set (even to the default); the others have their
    /// default.
    pub extras: std::collections::BTreeMap<&'static str, String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            config_file: String::new(),
            bind: vec![DEFAULT_BIND.to_string()],
            port: DEFAULT_PORT,
            requirepass: String::new(),
            databases: DEFAULT_DATABASES,
            maxclients: DEFAULT_MAXCLIENTS,
            timeout: 0,
            protected_mode: true,
            proto_max_bulk_len: DEFAULT_PROTO_MAX_BULK_LEN,
            client_query_buffer_limit: DEFAULT_CLIENT_QUERY_BUFFER_LIMIT,
            hz: DEFAULT_HZ,
            maxmemory: 0,
            maxmemory_clients: "0".into(),
            maxmemory_policy: "noeviction".into(),
            maxmemory_samples: 5,
            lfu_log_factor: 10,
            lfu_decay_time: 1,
            loglevel: "notice".into(),
            logfile: String::new(),
            dir: ".".into(),
            dbfilename: "dump.rdb".into(),
            save: String::new(),
            appendonly: false,
            appendfsync: "everysec".into(),
            appendfilename: "appendonly.aof".into(),
            appenddirname: "appendonlydir".into(),
            auto_aof_rewrite_percentage: 100,
            auto_aof_rewrite_min_size: 64 << 20,
            aof_load_truncated: true,
            aof_use_rdb_preamble: true,
            rdbcompression: true,
            daemonize: false,
            tcp_keepalive: 300,
            tcp_backlog: 511,
            io_threads: 0,
            shards: DEFAULT_SHARDS,
            key_load_delay: 0,
            rdb_key_save_delay: 0,
            slowlog_log_slower_than: 10_000,
            slowlog_max_len: 128,
            acllog_max_len: 128,
            latency_monitor_threshold: 0,
            latency_tracking: true,
            lazyfree_lazy_user_del: false,
            lazyfree_lazy_user_flush: false,
            limits: Limits::default(),
            list_compress_depth: 0,
            output_limits: [
                crate::pubsub::BufferLimit { hard: 0, soft: 0, soft_secs: 0 },
                crate::pubsub::BufferLimit { hard: 256 << 20, soft: 64 << 20, soft_secs: 60 },
                crate::pubsub::BufferLimit { hard: 32 << 20, soft: 8 << 20, soft_secs: 60 },
            ],
            notify_flags: 0,
            tracking_table_max_keys: 1_000_000,
            busy_reply_threshold: 5000,
            repl_ping_replica_period: 10,
            repl_backlog_size: 1 << 20,
            repl_backlog_ttl: 3600,
            masterauth: String::new(),
            masteruser: String::new(),
            replicaof: String::new(),
            replica_read_only: true,
            replica_serve_stale_data: true,
            replica_ignore_maxmemory: true,
            min_replicas_to_write: 0,
            min_replicas_max_lag: 10,
            extras: Default::default(),
            users: Vec::new(),
        }
    }
}

type Getter = fn(&Config) -> String;
type Setter = fn(&mut Config, &str) -> Result<(), String>;

pub struct Param {
    pub name: &'static str,
    pub mutable: bool,
    get: Getter,
    set: Setter,
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.into()
}

fn parse_bool(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err("argument must be 'yes' or 'no'".into()),
    }
}

/// An integer in `min..=max` (signed or not: the caller casts), with
/// Redis's two error texts.
fn parse_int(v: &str, min: i128, max: i128) -> Result<i128, String> {
    let n: i128 = v.parse().map_err(|_| "argument couldn't be parsed into an integer".to_string())?;
    if n < min || n > max {
        return Err(format!("argument must be between {min} and {max} inclusive"));
    }
    Ok(n)
}

/// Redis's `memtoull`: "1gb", "100mb", "64k", plain bytes.
pub fn parse_memory(v: &str) -> Result<u64, String> {
    let lower = v.to_ascii_lowercase();
    let units: [(&str, u64); 8] = [
        ("kb", 1024),
        ("mb", 1024 * 1024),
        ("gb", 1024 * 1024 * 1024),
        ("k", 1000),
        ("m", 1000 * 1000),
        ("g", 1000 * 1000 * 1000),
        ("b", 1),
        ("", 1),
    ];
    for (suffix, mul) in units {
        if let Some(num) = lower.strip_suffix(suffix) {
            if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            return num
                .parse::<u64>()
                .ok()
                .and_then(|n| n.checked_mul(mul))
                .ok_or_else(|| "argument must be a memory value".to_string());
        }
    }
    Err("argument must be a memory value".into())
}

fn parse_enum(v: &str, options: &[&str]) -> Result<String, String> {
    let lower = v.to_ascii_lowercase();
    if options.contains(&lower.as_str()) {
        Ok(lower)
    } else {
        Err(format!("argument(s) must be one of the following: {}", options.join(", ")))
    }
}

macro_rules! int_param {
    ($name:literal, $field:ident, $min:expr, $max:expr, $mutable:expr) => {
        Param {
            name: $name,
            mutable: $mutable,
            get: |c| c.$field.to_string(),
            set: |c, v| {
                c.$field = parse_int(v, $min as i128, $max as i128)? as _;
                Ok(())
            },
        }
    };
}

macro_rules! mem_param {
    ($name:literal, $($field:ident).+, $min:expr) => {
        Param {
            name: $name,
            mutable: true,
            get: |c| c.$($field).+.to_string(),
            set: |c, v| {
                let (n, min): (u64, u64) = (parse_memory(v)?, $min);
                if n < min {
                    return Err(format!("argument must be between {min} and {} inclusive", i64::MAX));
                }
                c.$($field).+ = n;
                Ok(())
            },
        }
    };
}

macro_rules! bool_param {
    ($name:literal, $field:ident, $mutable:expr) => {
        Param {
            name: $name,
            mutable: $mutable,
            get: |c| yes_no(c.$field),
            set: |c, v| {
                c.$field = parse_bool(v)?;
                Ok(())
            },
        }
    };
}

macro_rules! str_param {
    ($name:literal, $field:ident, $mutable:expr) => {
        Param {
            name: $name,
            mutable: $mutable,
            get: |c| c.$field.clone(),
            set: |c, v| {
                c.$field = v.to_string();
                Ok(())
            },
        }
    };
}

/// `replicaof <host> <port>`: a start-up directive (REPLICAOF at runtime),
/// checked to be a host and a port.
macro_rules! replicaof_param {
    ($name:literal) => {
        Param {
            name: $name,
            mutable: false,
            get: |c| c.replicaof.clone(),
            set: |c, v| {
                let mut parts = v.split_whitespace();
                match (parts.next(), parts.next().map(str::parse::<u16>), parts.next()) {
                    (Some(host), Some(Ok(port)), None) => {
                        c.replicaof = format!("{host} {port}");
                        Ok(())
                    }
                    _ => Err("expected <host> <port>".to_string()),
                }
            },
        }
    };
}

macro_rules! enum_param {
    ($name:literal, $field:ident, $options:expr) => {
        Param {
            name: $name,
            mutable: true,
            get: |c| c.$field.clone(),
            set: |c, v| {
                c.$field = parse_enum(v, $options)?;
                Ok(())
            },
        }
    };
}

/// An encoding threshold in `Config::limits`.
macro_rules! limit_param {
    ($name:literal, $field:ident, $min:expr, $max:expr) => {
        Param {
            name: $name,
            mutable: true,
            get: |c| c.limits.$field.to_string(),
            set: |c, v| {
                c.limits.$field = parse_int(v, $min as i128, $max as i128)? as _;
                Ok(())
            },
        }
    };
}

/// How one of [`EXTRAS`] is read and printed, as Redis's config types.
#[derive(Clone, Copy)]
pub enum Kind {
    Bool,
    Int(i64, i64),
    /// Bytes, written with units or without (printed as bytes).
    Memory(i64, i64),
    Octal(i64, i64),
    Enum(&'static [&'static str]),
    Text,
    /// Several enum words at once (`shutdown-on-sigterm save now`).
    Flags(&'static [&'static str]),
    /// `oom-score-adj-values`: three integers in -2000..=2000.
    OomValues,
    /// `latency-tracking-info-percentiles`: numbers in 0..=100.
    Percentiles,
}

/// One of Redis's parameters that Larder keeps as text in
/// [`Config::extras`]: validated, printed and rewritten as Redis does.
/// What each does in Larder (if anything) is in README's table; values
/// Larder cannot honour are refused (`refuse`) rather than pretended.
pub struct Extra {
    pub name: &'static str,
    pub kind: Kind,
    pub default: &'static str,
    pub mutable: bool,
    /// Why a value is refused, for values Larder cannot honour.
    refuse: fn(&str) -> Option<&'static str>,
}

const fn extra(name: &'static str, kind: Kind, default: &'static str, mutable: bool) -> Extra {
    Extra { name, kind, default, mutable, refuse: |_| None }
}

const YES_NO: Kind = Kind::Bool;
const INT_MAX: i64 = i32::MAX as i64;
const PROTECTED_ACTION: Kind = Kind::Enum(&["no", "yes", "local"]);
const SHUTDOWN_FLAGS: Kind = Kind::Flags(&["default", "save", "nosave", "now", "force"]);
const NO_KEY_PASS: fn(&str) -> Option<&'static str> =
    |v| (!v.is_empty()).then_some("Larder's TLS (rustls) reads no encrypted private keys");
const NO_TLS: fn(&str) -> Option<&'static str> =
    |v| (v != "no").then_some("Larder does not run in cluster mode, so has no cluster links to secure");

/// Redis 7.0's parameters beyond [`PARAMS`]' typed ones, with their
/// defaults. Names in [`ALIASES`] reach them under old spellings.
pub static EXTRAS: &[Extra] = &[
    extra("rdbchecksum", YES_NO, "yes", false),
    extra("io-threads-do-reads", YES_NO, "no", false),
    extra("always-show-logo", YES_NO, "no", false),
    extra("rdb-del-sync-files", YES_NO, "no", true),
    extra("activerehashing", YES_NO, "yes", true),
    extra("stop-writes-on-bgsave-error", YES_NO, "yes", true),
    extra("set-proc-title", YES_NO, "yes", false),
    extra("dynamic-hz", YES_NO, "yes", true),
    extra("lazyfree-lazy-eviction", YES_NO, "no", true),
    extra("lazyfree-lazy-expire", YES_NO, "no", true),
    extra("lazyfree-lazy-server-del", YES_NO, "no", true),
    extra("repl-disable-tcp-nodelay", YES_NO, "no", true),
    extra("repl-diskless-sync", YES_NO, "yes", true),
    extra("aof-rewrite-incremental-fsync", YES_NO, "yes", true),
    extra("no-appendfsync-on-rewrite", YES_NO, "no", true),
    extra("cluster-require-full-coverage", YES_NO, "yes", true),
    extra("rdb-save-incremental-fsync", YES_NO, "yes", true),
    extra("aof-timestamp-enabled", YES_NO, "no", true),
    extra("cluster-replica-no-failover", YES_NO, "no", true),
    extra("replica-lazy-flush", YES_NO, "no", true),
    extra("jemalloc-bg-thread", YES_NO, "yes", true),
    Extra {
        refuse: |v| (v == "yes").then_some("Active defragmentation cannot be enabled: Larder has no defragmenter"),
        ..extra("activedefrag", YES_NO, "no", true)
    },
    extra("syslog-enabled", YES_NO, "no", false),
    Extra {
        refuse: |v| (v == "yes").then_some("Larder does not run in cluster mode"),
        ..extra("cluster-enabled", YES_NO, "no", false)
    },
    extra("cluster-allow-reads-when-down", YES_NO, "no", true),
    extra("cluster-allow-pubsubshard-when-down", YES_NO, "yes", true),
    extra("crash-log-enabled", YES_NO, "yes", true),
    // Redis's hidden test knob: exit instead of aborting on a panic.
    extra("use-exit-on-panic", YES_NO, "no", true),
    // Redis's hidden knob: how often a load stops to serve clients.
    extra("loading-process-events-interval-bytes", Kind::Int(1024, INT_MAX), "2097152", true),
    extra("crash-memcheck-enabled", YES_NO, "yes", true),
    extra("disable-thp", YES_NO, "yes", false),
    extra("cluster-allow-replica-migration", YES_NO, "yes", true),
    extra("replica-announced", YES_NO, "yes", true),
    Extra {
        refuse: |v| (v == "yes").then_some("Larder always deletes the AOF files a rewrite replaced"),
        ..extra("aof-disable-auto-gc", YES_NO, "no", true)
    },
    extra("replica-ignore-disk-write-errors", YES_NO, "no", true),
    extra("aclfile", Kind::Text, "", false),
    extra("unixsocket", Kind::Text, "", false),
    extra("pidfile", Kind::Text, "", false),
    extra("replica-announce-ip", Kind::Text, "", true),
    extra("cluster-announce-ip", Kind::Text, "", true),
    extra("cluster-config-file", Kind::Text, "nodes.conf", false),
    extra("cluster-announce-hostname", Kind::Text, "", true),
    extra("syslog-ident", Kind::Text, "redis", false),
    extra("server_cpulist", Kind::Text, "", false),
    extra("bio_cpulist", Kind::Text, "", false),
    extra("aof_rewrite_cpulist", Kind::Text, "", false),
    extra("bgsave_cpulist", Kind::Text, "", false),
    extra("ignore-warnings", Kind::Text, "", true),
    extra("proc-title-template", Kind::Text, "{title} {listen-addr} {server-mode}", true),
    extra("bind-source-addr", Kind::Text, "", true),
    extra("supervised", Kind::Enum(&["upstart", "systemd", "auto", "no"]), "no", false),
    extra(
        "syslog-facility",
        Kind::Enum(&["user", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"]),
        "local0",
        false,
    ),
    extra("repl-diskless-load", Kind::Enum(&["disabled", "on-empty-db", "swapdb"]), "disabled", true),
    extra("oom-score-adj", Kind::Enum(&["no", "yes", "relative", "absolute"]), "no", true),
    extra("acl-pubsub-default", Kind::Enum(&["allchannels", "resetchannels"]), "resetchannels", true),
    extra("sanitize-dump-payload", Kind::Enum(&["no", "yes", "clients"]), "no", true),
    extra("enable-protected-configs", PROTECTED_ACTION, "no", false),
    extra("enable-debug-command", PROTECTED_ACTION, "no", false),
    extra("enable-module-command", PROTECTED_ACTION, "no", false),
    extra("cluster-preferred-endpoint-type", Kind::Enum(&["ip", "hostname", "unknown-endpoint"]), "ip", true),
    extra("propagation-error-behavior", Kind::Enum(&["ignore", "panic", "panic-on-replicas"]), "ignore", true),
    extra("shutdown-on-sigint", SHUTDOWN_FLAGS, "default", true),
    extra("shutdown-on-sigterm", SHUTDOWN_FLAGS, "default", true),
    extra("oom-score-adj-values", Kind::OomValues, "0 200 800", true),
    extra("latency-tracking-info-percentiles", Kind::Percentiles, "50 99 99.9", true),
    extra("cluster-replica-validity-factor", Kind::Int(0, INT_MAX), "10", true),
    extra("cluster-migration-barrier", Kind::Int(0, INT_MAX), "1", true),
    extra("active-defrag-cycle-min", Kind::Int(1, 99), "1", true),
    extra("active-defrag-cycle-max", Kind::Int(1, 99), "25", true),
    extra("active-defrag-threshold-lower", Kind::Int(0, 1000), "10", true),
    extra("active-defrag-threshold-upper", Kind::Int(0, 1000), "100", true),
    extra("replica-priority", Kind::Int(0, INT_MAX), "100", true),
    extra("repl-diskless-sync-delay", Kind::Int(0, INT_MAX), "5", true),
    extra("maxmemory-eviction-tenacity", Kind::Int(0, 100), "10", true),
    extra("replica-announce-port", Kind::Int(0, 65535), "0", true),
    extra("cluster-port", Kind::Int(0, 65535), "0", false),
    extra("cluster-announce-bus-port", Kind::Int(0, 65535), "0", true),
    extra("cluster-announce-port", Kind::Int(0, 65535), "0", true),
    extra("cluster-announce-tls-port", Kind::Int(0, 65535), "0", true),
    extra("repl-timeout", Kind::Int(1, INT_MAX), "60", true),
    extra("active-expire-effort", Kind::Int(1, 10), "1", true),
    extra("shutdown-timeout", Kind::Int(0, INT_MAX), "10", true),
    extra("repl-diskless-sync-max-replicas", Kind::Int(0, INT_MAX), "0", true),
    extra("socket-mark-id", Kind::Int(0, u32::MAX as i64), "0", true),
    extra("unixsocketperm", Kind::Octal(0, 0o777), "0", false),
    extra("active-defrag-max-scan-fields", Kind::Int(1, i64::MAX), "1000", true),
    extra("cluster-node-timeout", Kind::Int(0, i64::MAX), "15000", true),
    extra("cluster-link-sendbuf-limit", Kind::Memory(0, i64::MAX), "0", true),
    extra("active-defrag-ignore-bytes", Kind::Memory(1, i64::MAX), "104857600", true),
    extra("tls-port", Kind::Int(0, 65535), "0", true),
    extra("tls-session-cache-size", Kind::Int(0, INT_MAX), "20480", true),
    extra("tls-session-cache-timeout", Kind::Int(0, INT_MAX), "300", true),
    Extra { refuse: NO_TLS, ..extra("tls-cluster", YES_NO, "no", true) },
    extra("tls-replication", YES_NO, "no", true),
    extra("tls-auth-clients", Kind::Enum(&["no", "yes", "optional"]), "yes", true),
    extra("tls-prefer-server-ciphers", YES_NO, "no", true),
    extra("tls-session-caching", YES_NO, "yes", true),
    extra("tls-cert-file", Kind::Text, "", true),
    extra("tls-key-file", Kind::Text, "", true),
    Extra { refuse: NO_KEY_PASS, ..extra("tls-key-file-pass", Kind::Text, "", true) },
    extra("tls-client-cert-file", Kind::Text, "", true),
    extra("tls-client-key-file", Kind::Text, "", true),
    Extra { refuse: NO_KEY_PASS, ..extra("tls-client-key-file-pass", Kind::Text, "", true) },
    extra("tls-dh-params-file", Kind::Text, "", true),
    extra("tls-ca-cert-file", Kind::Text, "", true),
    extra("tls-ca-cert-dir", Kind::Text, "", true),
    extra("tls-protocols", Kind::Text, "", true),
    extra("tls-ciphers", Kind::Text, "", true),
    extra("tls-ciphersuites", Kind::Text, "", true),
];

/// Redis's aliases of [`EXTRAS`] (CONFIG GET lists both names).
const EXTRA_ALIASES: &[(&str, &str)] = &[
    ("cluster-slave-no-failover", "cluster-replica-no-failover"),
    ("slave-lazy-flush", "replica-lazy-flush"),
    ("slave-announce-ip", "replica-announce-ip"),
    ("cluster-slave-validity-factor", "cluster-replica-validity-factor"),
    ("slave-priority", "replica-priority"),
    ("slave-announce-port", "replica-announce-port"),
];

fn find_extra(name: &str) -> Option<&'static Extra> {
    let name = EXTRA_ALIASES.iter().find(|(old, _)| old.eq_ignore_ascii_case(name)).map_or(name, |(_, new)| *new);
    EXTRAS.iter().find(|e| e.name.eq_ignore_ascii_case(name))
}

impl Kind {
    /// `v` as CONFIG GET prints it, or Redis's error text.
    fn canonical(self, v: &str) -> Result<String, String> {
        Ok(match self {
            Kind::Bool => yes_no(parse_bool(v)?),
            Kind::Int(min, max) => parse_int(v, min as i128, max as i128)?.to_string(),
            Kind::Memory(min, max) => {
                let n = parse_memory(v)? as i128;
                if n < min as i128 || n > max as i128 {
                    return Err(format!("argument must be between {min} and {max} inclusive"));
                }
                n.to_string()
            }
            Kind::Octal(min, max) => {
                let n =
                    i64::from_str_radix(v, 8).map_err(|_| "argument couldn't be parsed into an integer".to_string())?;
                if n < min || n > max {
                    return Err(format!("argument must be between {min} and {max} inclusive"));
                }
                format!("{n:o}")
            }
            Kind::Enum(options) => parse_enum(v, options)?,
            Kind::Text => v.to_string(),
            Kind::Flags(options) => {
                let words: Vec<String> =
                    v.split_whitespace().map(|w| parse_enum(w, options)).collect::<Result<_, _>>()?;
                if words.is_empty() {
                    return Err(format!("argument(s) must be one of the following: {}", options.join(", ")));
                }
                words.join(" ")
            }
            Kind::OomValues => {
                let words: Vec<&str> = v.split_whitespace().collect();
                if words.len() != 3 {
                    return Err("wrong number of arguments".into());
                }
                let values: Vec<i64> = words.iter().map(|w| w.parse().unwrap_or(i64::MAX)).collect();
                if values.iter().any(|n| !(-2000..=2000).contains(n)) {
                    return Err("Invalid oom-score-adj-values, elements must be between -2000 and 2000.".into());
                }
                values.iter().map(i64::to_string).collect::<Vec<_>>().join(" ")
            }
            Kind::Percentiles => {
                let mut out = Vec::new();
                for w in v.split_whitespace() {
                    let p: f64 = w.parse().map_err(|_| "Invalid latency-tracking-info-percentiles parameters")?;
                    if !(0.0..=100.0).contains(&p) {
                        return Err(
                            "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]".into()
                        );
                    }
                    out.push(p.to_string());
                }
                out.join(" ")
            }
        })
    }
}

impl Config {
    /// One of [`EXTRAS`] as CONFIG GET prints it (its default if unset).
    pub fn extra(&self, name: &str) -> &str {
        let e = find_extra(name).unwrap_or_else(|| panic!("{name} is not in EXTRAS"));
        self.extras.get(e.name).map_or(e.default, String::as_str)
    }

    /// A yes/no one of [`EXTRAS`].
    pub fn extra_flag(&self, name: &str) -> bool {
        self.extra(name) == "yes"
    }

    /// A numeric one of [`EXTRAS`].
    pub fn extra_int(&self, name: &str) -> i64 {
        self.extra(name).parse().unwrap_or(0)
    }

    fn set_extra(&mut self, e: &'static Extra, v: &str) -> Result<(), String> {
        let v = e.kind.canonical(v)?;
        if let Some(why) = (e.refuse)(&v) {
            return Err(why.to_string());
        }
        self.extras.insert(e.name, v);
        Ok(())
    }
}

pub static PARAMS: &[Param] = &[
    Param {
        name: "bind",
        // CONFIG SET binds the new addresses before it answers (listen.rs).
        mutable: true,
        get: |c| c.bind.join(" "),
        set: |c, v| {
            let addrs: Vec<String> = v.split_whitespace().map(str::to_string).collect();
            if addrs.is_empty() || addrs.len() > crate::listen::MAX_BIND_ADDRESSES {
                return Err("Too many bind addresses specified.".into());
            }
            c.bind = addrs;
            Ok(())
        },
    },
    int_param!("port", port, 0, 65535, true),
    str_param!("requirepass", requirepass, true),
    int_param!("databases", databases, 1, i32::MAX as u64, false),
    int_param!("maxclients", maxclients, 1, u32::MAX as u64, true),
    int_param!("timeout", timeout, 0, i32::MAX as u64, true),
    bool_param!("protected-mode", protected_mode, true),
    mem_param!("proto-max-bulk-len", proto_max_bulk_len, 1024 * 1024),
    mem_param!("client-query-buffer-limit", client_query_buffer_limit, 1024 * 1024),
    int_param!("hz", hz, 1, 500, true),
    mem_param!("maxmemory", maxmemory, 0),
    Param {
        name: "maxmemory-clients",
        mutable: true,
        get: |c| c.maxmemory_clients.clone(),
        set: |c, v| {
            c.maxmemory_clients = match v.strip_suffix('%') {
                Some(p) => match p.parse::<u64>() {
                    Ok(p) if p > 100 => return Err("percentage argument must be less or equal to 100".into()),
                    Ok(p) => format!("{p}%"),
                    Err(_) => return Err("argument must be a memory or percent value".into()),
                },
                None => {
                    parse_memory(v).map_err(|_| "argument must be a memory or percent value".to_string())?.to_string()
                }
            };
            Ok(())
        },
    },
    Param {
        name: "maxmemory-policy",
        mutable: true,
        get: |c| c.maxmemory_policy.clone(),
        set: |c, v| {
            c.maxmemory_policy = match EXTRA_POLICIES.iter().find(|p| p.eq_ignore_ascii_case(v)) {
                Some(p) => p.to_string(),
                None => parse_enum(v, MAXMEMORY_POLICIES)?,
            };
            Ok(())
        },
    },
    int_param!("maxmemory-samples", maxmemory_samples, 1, 64, true),
    int_param!("lfu-log-factor", lfu_log_factor, 0, i32::MAX as u64, true),
    int_param!("lfu-decay-time", lfu_decay_time, 0, i32::MAX as u64, true),
    enum_param!("loglevel", loglevel, LOGLEVELS),
    str_param!("logfile", logfile, false),
    str_param!("dir", dir, true),
    str_param!("dbfilename", dbfilename, true),
    str_param!("save", save, true),
    bool_param!("appendonly", appendonly, true),
    enum_param!("appendfsync", appendfsync, APPENDFSYNC),
    str_param!("appendfilename", appendfilename, false),
    str_param!("appenddirname", appenddirname, false),
    int_param!("auto-aof-rewrite-percentage", auto_aof_rewrite_percentage, 0, i32::MAX as u64, true),
    mem_param!("auto-aof-rewrite-min-size", auto_aof_rewrite_min_size, 0),
    bool_param!("aof-load-truncated", aof_load_truncated, true),
    bool_param!("aof-use-rdb-preamble", aof_use_rdb_preamble, true),
    bool_param!("rdbcompression", rdbcompression, true),
    bool_param!("daemonize", daemonize, false),
    int_param!("tcp-keepalive", tcp_keepalive, 0, i32::MAX as u64, true),
    int_param!("tcp-backlog", tcp_backlog, 0, i32::MAX as u64, false),
    int_param!("io-threads", io_threads, 0, 128, false),
    int_param!("shards", shards, 1, 65536, false),
    int_param!("slowlog-log-slower-than", slowlog_log_slower_than, -1, i64::MAX, true),
    int_param!("slowlog-max-len", slowlog_max_len, 0, i64::MAX as u64, true),
    int_param!("acllog-max-len", acllog_max_len, 0, i64::MAX as u64, true),
    int_param!("latency-monitor-threshold", latency_monitor_threshold, 0, i64::MAX as u64, true),
    bool_param!("latency-tracking", latency_tracking, true),
    bool_param!("lazyfree-lazy-user-del", lazyfree_lazy_user_del, true),
    bool_param!("lazyfree-lazy-user-flush", lazyfree_lazy_user_flush, true),
    int_param!("key-load-delay", key_load_delay, i32::MIN, i32::MAX, true),
    int_param!("rdb-key-save-delay", rdb_key_save_delay, i32::MIN, i32::MAX, true),
    limit_param!("hash-max-listpack-entries", hash_max_listpack_entries, 0, i64::MAX),
    limit_param!("hash-max-ziplist-entries", hash_max_listpack_entries, 0, i64::MAX),
    limit_param!("hash-max-listpack-value", hash_max_listpack_value, 0, i64::MAX),
    limit_param!("hash-max-ziplist-value", hash_max_listpack_value, 0, i64::MAX),
    limit_param!("set-max-intset-entries", set_max_intset_entries, 0, i64::MAX),
    limit_param!("set-max-listpack-entries", set_max_listpack_entries, 0, i64::MAX),
    limit_param!("set-max-listpack-value", set_max_listpack_value, 0, i64::MAX),
    limit_param!("zset-max-listpack-entries", zset_max_listpack_entries, 0, i64::MAX),
    limit_param!("zset-max-ziplist-entries", zset_max_listpack_entries, 0, i64::MAX),
    limit_param!("zset-max-listpack-value", zset_max_listpack_value, 0, i64::MAX),
    limit_param!("zset-max-ziplist-value", zset_max_listpack_value, 0, i64::MAX),
    limit_param!("list-max-listpack-size", list_max_listpack_size, i32::MIN, i32::MAX),
    limit_param!("list-max-ziplist-size", list_max_listpack_size, i32::MIN, i32::MAX),
    limit_param!("hll-sparse-max-bytes", hll_sparse_max_bytes, 0, i64::MAX),
    limit_param!("stream-node-max-entries", stream_node_max_entries, 0, i64::MAX),
    mem_param!("stream-node-max-bytes", limits.stream_node_max_bytes, 0),
    int_param!("list-compress-depth", list_compress_depth, 0, i32::MAX as u64, true),
    int_param!("busy-reply-threshold", busy_reply_threshold, 0, i64::MAX as u64, true),
    int_param!("lua-time-limit", busy_reply_threshold, 0, i64::MAX as u64, true),
    int_param!("repl-ping-replica-period", repl_ping_replica_period, 1, i32::MAX as u64, true),
    int_param!("repl-ping-slave-period", repl_ping_replica_period, 1, i32::MAX as u64, true),
    mem_param!("repl-backlog-size", repl_backlog_size, 1),
    int_param!("repl-backlog-ttl", repl_backlog_ttl, 0, i32::MAX as u64, true),
    str_param!("masterauth", masterauth, true),
    str_param!("masteruser", masteruser, true),
    int_param!("min-replicas-to-write", min_replicas_to_write, 0, i32::MAX as u64, true),
    replicaof_param!("replicaof"),
    replicaof_param!("slaveof"),
    bool_param!("replica-read-only", replica_read_only, true),
    bool_param!("slave-read-only", replica_read_only, true),
    bool_param!("replica-serve-stale-data", replica_serve_stale_data, true),
    bool_param!("replica-ignore-maxmemory", replica_ignore_maxmemory, true),
    bool_param!("slave-ignore-maxmemory", replica_ignore_maxmemory, true),
    bool_param!("slave-serve-stale-data", replica_serve_stale_data, true),
    int_param!("min-slaves-to-write", min_replicas_to_write, 0, i32::MAX as u64, true),
    int_param!("min-replicas-max-lag", min_replicas_max_lag, 0, i32::MAX as u64, true),
    int_param!("min-slaves-max-lag", min_replicas_max_lag, 0, i32::MAX as u64, true),
    int_param!("tracking-table-max-keys", tracking_table_max_keys, 0, i64::MAX as u64, true),
    Param {
        name: "notify-keyspace-events",
        mutable: true,
        get: |c| notify_flags_string(c.notify_flags),
        set: |c, v| {
            c.notify_flags = parse_notify_flags(v)?;
            Ok(())
        },
    },
    Param {
        name: "client-output-buffer-limit",
        mutable: true,
        get: |c| {
            let names = ["normal", "slave", "pubsub"];
            let parts: Vec<String> = names
                .iter()
                .zip(&c.output_limits)
                .map(|(n, l)| format!("{n} {} {} {}", l.hard, l.soft, l.soft_secs))
                .collect();
            parts.join(" ")
        },
        set: |c, v| {
            let words: Vec<&str> = v.split_whitespace().collect();
            if words.is_empty() || !words.len().is_multiple_of(4) {
                return Err("Wrong number of arguments in buffer limit configuration.".into());
            }
            let mut next = c.output_limits;
            for w in words.chunks(4) {
                let class = match w[0].to_ascii_lowercase().as_str() {
                    "normal" => 0,
                    "slave" | "replica" => 1,
                    "pubsub" => 2,
                    _ => return Err("Invalid client class specified in buffer limit configuration.".into()),
                };
                let (hard, soft) = (parse_memory(w[1]), parse_memory(w[2]));
                let secs = w[3].parse::<u64>();
                match (hard, soft, secs) {
                    (Ok(hard), Ok(soft), Ok(soft_secs)) => {
                        next[class] = crate::pubsub::BufferLimit { hard, soft, soft_secs }
                    }
                    _ => {
                        return Err("Error in hard, soft or soft_seconds setting in buffer limit configuration.".into())
                    }
                }
            }
            c.output_limits = next;
            Ok(())
        },
    },
];

/// Redis's `keyspaceEventsStringToFlags`.
fn parse_notify_flags(v: &str) -> Result<u32, String> {
    use larder_store::class::*;
    let mut flags = 0;
    for c in v.chars() {
        flags |= match c {
            'A' => ALL,
            'g' => GENERIC,
            '$' => STRING,
            'l' => LIST,
            's' => SET,
            'h' => HASH,
            'z' => ZSET,
            'x' => EXPIRED,
            'e' => EVICTED,
            'K' => KEYSPACE,
            'E' => KEYEVENT,
            't' => STREAM,
            'm' => KEY_MISS,
            'd' => MODULE,
            'n' => NEW,
            _ => return Err("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".into()),
        };
    }
    Ok(flags)
}

/// Redis's `keyspaceEventsFlagsToString`: `A` hides the classes it covers
/// (and, as in Redis, `n` with them).
fn notify_flags_string(flags: u32) -> String {
    use larder_store::class::*;
    let mut out = String::new();
    if flags & ALL == ALL {
        out.push('A');
    } else {
        let classes = [
            (GENERIC, 'g'),
            (STRING, '$'),
            (LIST, 'l'),
            (SET, 's'),
            (HASH, 'h'),
            (ZSET, 'z'),
            (EXPIRED, 'x'),
            (EVICTED, 'e'),
            (STREAM, 't'),
            (MODULE, 'd'),
            (NEW, 'n'),
        ];
        out.extend(classes.iter().filter(|(bit, _)| flags & bit != 0).map(|(_, c)| c));
    }
    for (bit, c) in [(KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm')] {
        if flags & bit != 0 {
            out.push(c);
        }
    }
    out
}

/// Parameters CONFIG GET lists only when asked for by exact name, as
/// Redis's HIDDEN_CONFIG ones: its test knobs `key-load-delay`,
/// `rdb-key-save-delay`, `use-exit-on-panic` and
/// `loading-process-events-interval-bytes`, and Larder's immutable `shards`, which tools that
/// set every listed value back (Redis's own test suite does) cannot know
/// to skip.
pub const HIDDEN: &[&str] =
    &["key-load-delay", "rdb-key-save-delay", "use-exit-on-panic", "loading-process-events-interval-bytes", "shards"];

/// A parameter of either table: a typed one of [`PARAMS`], or one of
/// [`EXTRAS`] under its name or an alias.
#[derive(Clone, Copy)]
pub enum AnyParam {
    Typed(&'static Param),
    Extra(&'static str, &'static Extra),
}

impl AnyParam {
    /// The name it is listed and asked for under.
    pub fn name(self) -> &'static str {
        match self {
            AnyParam::Typed(p) => p.name,
            AnyParam::Extra(name, _) => name,
        }
    }

    /// The name CONFIG REWRITE writes (an alias's current spelling).
    fn canonical(self) -> &'static str {
        match self {
            AnyParam::Typed(p) => ALIASES.iter().find(|(a, _)| *a == p.name).map_or(p.name, |(_, n)| n),
            AnyParam::Extra(_, e) => e.name,
        }
    }

    pub fn mutable(self) -> bool {
        match self {
            AnyParam::Typed(p) => p.mutable,
            AnyParam::Extra(_, e) => e.mutable,
        }
    }

    pub fn get(self, c: &Config) -> String {
        match self {
            AnyParam::Typed(p) => (p.get)(c),
            AnyParam::Extra(_, e) => c.extra(e.name).to_string(),
        }
    }

    fn set(self, c: &mut Config, v: &str) -> Result<(), String> {
        match self {
            AnyParam::Typed(p) => (p.set)(c, v),
            AnyParam::Extra(_, e) => c.set_extra(e, v),
        }
    }
}

/// Every parameter, typed ones first, then the extras and their aliases.
static ALL_PARAMS: std::sync::LazyLock<Vec<AnyParam>> = std::sync::LazyLock::new(|| {
    let typed = PARAMS.iter().map(AnyParam::Typed);
    let extras = EXTRAS.iter().map(|e| AnyParam::Extra(e.name, e));
    let aliases = EXTRA_ALIASES.iter().filter_map(|(old, _)| find_extra(old).map(|e| AnyParam::Extra(old, e)));
    typed.chain(extras).chain(aliases).collect()
});

pub fn find_param(name: &str) -> Option<AnyParam> {
    ALL_PARAMS.iter().copied().find(|p| p.name().eq_ignore_ascii_case(name))
}

impl Config {
    /// How many worker threads run connections on a machine with `cores`
    /// cores: `io-threads` when set, else one per core but one (and at
    /// least one).
    ///
    /// Why leave a core: a connection's cost is mostly the kernel's (TCP
    /// send and receive, wake-ups), and that work, the clients on the same
    /// host and the process's other threads need a core too. Redis gives
    /// the same advice for its io-threads (two or three of four cores, six
    /// of eight). Measured on the 2-core benchmark machine, with
    /// redis-benchmark on the same host: `scripts/bench` gave 1.06-1.12 of
    /// Redis's throughput with one worker against 0.98-1.06 with two,
    /// whose second worker took CPU from the client and paid for moving
    /// tasks and shard locks between cores (see BENCHMARKS.md).
    pub fn worker_threads(&self, cores: usize) -> usize {
        match self.io_threads {
            0 => cores.saturating_sub(1).max(1),
            n => n as usize,
        }
    }

    /// The bytes all evictable clients together may hold before the
    /// largest are disconnected (0: no limit): `maxmemory-clients` as
    /// bytes, or as a percentage of `maxmemory`.
    pub fn clients_memory_limit(&self) -> u64 {
        match self.maxmemory_clients.strip_suffix('%') {
            Some(p) => self.maxmemory / 100 * p.parse::<u64>().unwrap_or(0),
            None => self.maxmemory_clients.parse().unwrap_or(0),
        }
    }

    /// CONFIG GET: every (name, value) whose name matches a pattern; a
    /// [`HIDDEN`] one only when a pattern is its exact name.
    pub fn get_matching(&self, patterns: &[&[u8]]) -> Vec<(&'static str, String)> {
        ALL_PARAMS
            .iter()
            .filter(|p| {
                patterns.iter().any(|pat| match HIDDEN.contains(&p.name()) {
                    true => pat.eq_ignore_ascii_case(p.name().as_bytes()),
                    false => glob_match(pat, p.name().as_bytes(), true),
                })
            })
            .map(|p| (p.name(), p.get(self)))
            .collect()
    }

    /// Sets one parameter. `startup` allows immutable ones (config file,
    /// command line). The error is the text after "argument 'x') - ".
    pub fn set(&mut self, name: &str, value: &str, startup: bool) -> Result<(), ConfigError> {
        let p = find_param(name).ok_or_else(|| ConfigError::Unknown(name.to_string()))?;
        if !startup && !p.mutable() {
            return Err(ConfigError::Invalid(p.name(), "can't set immutable config".into()));
        }
        p.set(self, value).map_err(|e| ConfigError::Invalid(p.name(), e))
    }

    pub fn get(&self, name: &str) -> Option<String> {
        find_param(name).map(|p| p.get(self))
    }

    /// Loads redis.conf-syntax text: one directive per line, `#` comments,
    /// arguments split and unquoted as Redis does.
    pub fn apply_text(&mut self, text: &str) -> Result<(), String> {
        // `save` lines add rules, as in Redis: the first one replaces the
        // defaults, the next ones join it (CONFIG REWRITE writes a line
        // per rule).
        let mut saved = false;
        for (lineno, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let fail = |msg: &str| {
                format!(
                    "\n*** FATAL CONFIG FILE ERROR (Larder {}) ***\nReading the configuration file, at line {}\n>>> '{}'\n{}",
                    env!("CARGO_PKG_VERSION"),
                    lineno + 1,
                    trimmed,
                    msg
                )
            };
            let words = larder_protocol::split_args(trimmed.as_bytes())
                .map_err(|_| fail("Unbalanced quotes in configuration line"))?;
            let words: Vec<String> = words.iter().map(|w| String::from_utf8_lossy(w).into_owned()).collect();
            let (name, args) = words.split_first().expect("non-empty line has a word");
            // `save` alone is `save ""` (no save points), as Redis reads a
            // multi-argument directive given none; Redis's test suite
            // writes it so.
            if args.is_empty() && !name.eq_ignore_ascii_case("save") {
                return Err(fail("wrong number of arguments"));
            }
            if name.eq_ignore_ascii_case("user") {
                self.users.push(args.to_vec());
                continue;
            }
            let mut value = args.join(" ");
            if name.eq_ignore_ascii_case("save") {
                if saved && !self.save.is_empty() && !value.is_empty() {
                    value = format!("{} {value}", self.save);
                }
                saved = true;
            }
            self.set(name, &value, true).map_err(|e| match e {
                ConfigError::Unknown(_) => fail("Bad directive or wrong number of arguments"),
                ConfigError::Invalid(_, msg) => fail(&msg),
            })?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    Unknown(String),
    Invalid(&'static str, String),
}

/// Turns redis-server style arguments (`[file] --port 7000 --bind a b`)
/// into config text, so flags and files share one parser.
pub fn args_to_config_text(args: &[String]) -> Result<(Option<String>, String), String> {
    let mut iter = args.iter().peekable();
    let file = match iter.peek() {
        Some(a) if !a.starts_with("--") => iter.next().cloned(),
        _ => None,
    };
    let mut text = String::new();
    while let Some(a) = iter.next() {
        let name = a.strip_prefix("--").ok_or_else(|| format!("Unexpected argument '{a}'"))?;
        let mut words = vec![name.to_string()];
        while let Some(v) = iter.peek() {
            if v.starts_with("--") {
                break;
            }
            words.push(quote(v));
            iter.next();
        }
        if words.len() == 1 {
            // Redis accepts `--flag` alone as `flag ""`... only for empty values.
            words.push("\"\"".into());
        }
        text.push_str(&words.join(" "));
        text.push('\n');
    }
    Ok((file, text))
}

fn quote(v: &str) -> String {
    larder_protocol::repr(v.as_bytes())
}

/// Names Redis keeps for old spellings of a parameter: a file may use
/// either, and CONFIG REWRITE writes the current one in its place.
pub const ALIASES: &[(&str, &str)] = &[
    ("hash-max-ziplist-entries", "hash-max-listpack-entries"),
    ("hash-max-ziplist-value", "hash-max-listpack-value"),
    ("zset-max-ziplist-entries", "zset-max-listpack-entries"),
    ("zset-max-ziplist-value", "zset-max-listpack-value"),
    ("list-max-ziplist-size", "list-max-listpack-size"),
    ("lua-time-limit", "busy-reply-threshold"),
    ("repl-ping-slave-period", "repl-ping-replica-period"),
    ("slaveof", "replicaof"),
    ("slave-read-only", "replica-read-only"),
    ("slave-serve-stale-data", "replica-serve-stale-data"),
    ("slave-ignore-maxmemory", "replica-ignore-maxmemory"),
    ("min-slaves-to-write", "min-replicas-to-write"),
    ("min-slaves-max-lag", "min-replicas-max-lag"),
];

/// The line CONFIG REWRITE puts before the directives it adds.
const REWRITE_SIGNATURE: &str = "# Generated by CONFIG REWRITE";

/// Parameters whose value is a list of words, written as they are.
const WORD_LISTS: &[&str] = &["bind", "replicaof"];

/// CONFIG REWRITE: the config file `old` brought up to `cfg`, as Redis's
/// rewriteConfig does. Comments, blank lines and directives this server
/// does not know stay where they are; a parameter's first line takes its
/// current value and its other lines are blanked; a parameter the file
/// does not name is added at the end (after [`REWRITE_SIGNATURE`]) only
/// when its value is not the default. `save` gives a line per rule, always
/// written as Redis writes it, and `client-output-buffer-limit` a line per
/// client class off its default.
pub fn rewrite(old: &str, cfg: &Config) -> String {
    let default = Config::default();
    let mut lines: Vec<String> = old.lines().map(str::to_string).collect();
    let mut signed = false;
    let mut uses: std::collections::HashMap<&'static str, std::collections::VecDeque<usize>> = Default::default();
    let mut user_lines = std::collections::VecDeque::new();
    let mut added_users = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim();
        signed |= t == REWRITE_SIGNATURE;
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let Ok(words) = larder_protocol::split_args(t.as_bytes()) else { continue };
        let Some(first) = words.first() else { continue };
        let name = String::from_utf8_lossy(first).to_ascii_lowercase();
        if name == "user" {
            user_lines.push_back(i);
        }
        let name = ALIASES.iter().find(|(a, _)| *a == name).map_or(name.as_str(), |(_, p)| p);
        if let Some(p) = find_param(name) {
            uses.entry(p.canonical()).or_default().push_back(i);
        }
    }
    // The ACL users, as Redis writes them when there is no ACL file: a
    // line each, in the file's `user` lines first.
    if cfg.extra("aclfile").is_empty() {
        for words in &cfg.users {
            let line = format!("user {}", words.join(" "));
            match user_lines.pop_front() {
                Some(i) => lines[i] = line,
                None => added_users.push(line),
            }
        }
        for i in user_lines {
            lines[i].clear();
        }
    }
    let mut added = Vec::new();
    for &p in ALL_PARAMS.iter().filter(|p| p.name() == p.canonical()) {
        let (now, was) = (p.get(cfg), p.get(&default));
        let wanted: Vec<(String, bool)> = match p.name() {
            "save" if now.is_empty() => vec![("save \"\"".to_string(), true)],
            // A primary: every replicaof (slaveof) line goes, as in Redis.
            "replicaof" if now.is_empty() => Vec::new(),
            "save" => {
                let w: Vec<&str> = now.split_whitespace().collect();
                w.chunks(2).map(|c| (format!("save {}", c.join(" ")), true)).collect()
            }
            "client-output-buffer-limit" => {
                let (w, d): (Vec<&str>, Vec<&str>) =
                    (now.split_whitespace().collect(), was.split_whitespace().collect());
                // Only the classes off their defaults (Redis also writes a
                // default class into a line the file gave the parameter,
                // so its second rewrite moves lines about; this one does
                // not).
                w.chunks(4)
                    .zip(d.chunks(4))
                    .filter(|(c, dc)| c != dc)
                    .map(|(c, _)| (format!("{} {}", p.name(), c.join(" ")), true))
                    .collect()
            }
            name if WORD_LISTS.contains(&name) && !now.is_empty() => vec![(format!("{name} {now}"), now != was)],
            name => {
                let plain = !now.is_empty()
                    && now.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\'' && b != b'\\');
                let value = if plain { now.clone() } else { quote(&now) };
                vec![(format!("{name} {value}"), now != was)]
            }
        };
        let mut slots = uses.remove(p.name()).unwrap_or_default();
        for (line, force) in wanted {
            match slots.pop_front() {
                Some(i) => lines[i] = line,
                None if force => added.push(line),
                None => {}
            }
        }
        // Further lines of a parameter now written elsewhere.
        for i in slots {
            lines[i].clear();
        }
    }
    added.extend(added_users);
    if !added.is_empty() && !signed {
        lines.push(REWRITE_SIGNATURE.to_string());
    }
    lines.extend(added);
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrite_keeps_the_file_and_writes_what_changed() {
        let old = "# a comment\n\nmaxmemory 100mb\nunknown-directive x\nmaxmemory 200mb\n\
                   hash-max-ziplist-entries 64\nsave 900 1\nport 7000\n";
        let mut cfg = Config::default();
        for (name, value) in [
            ("maxmemory", "1000000"),
            ("hash-max-listpack-entries", "100"),
            ("save", "3600 1 300 100"),
            ("masterauth", "a b\"c"),
            ("client-output-buffer-limit", "pubsub 1048576 2097152 60"),
            ("notify-keyspace-events", "KEA"),
            ("dir", "/var/lib/larder"),
        ] {
            cfg.set(name, value, true).unwrap();
        }
        let text = rewrite(old, &cfg);
        let want = [
            "# a comment",
            "",
            "maxmemory 1000000",
            "unknown-directive x",
            "",
            "hash-max-listpack-entries 100",
            "save 3600 1",
            // Back to the default: rewritten in place, as Redis does.
            "port 6379",
            REWRITE_SIGNATURE,
        ];
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[..want.len()], want, "{text}");
        let added = &lines[want.len()..];
        for line in [
            "save 300 100",
            r#"masterauth "a b\"c""#,
            "client-output-buffer-limit pubsub 1048576 2097152 60",
            "dir /var/lib/larder",
        ] {
            assert!(added.contains(&line), "{line} not in {added:?}");
        }
        assert!(added.iter().any(|l| l.starts_with("notify-keyspace-events ")), "{added:?}");
        // Defaults the file does not name stay out, and so does the normal
        // class of client-output-buffer-limit.
        assert!(!text.contains("maxclients") && !text.contains("limit normal"), "{text}");
        // Read back (without the line Larder refuses), it is the same
        // configuration, and a second rewrite changes nothing.
        let kept: String = text.lines().filter(|l| !l.starts_with("unknown")).map(|l| format!("{l}\n")).collect();
        let mut back = Config::default();
        back.apply_text(&kept).unwrap();
        for p in PARAMS {
            assert_eq!((p.get)(&back), (p.get)(&cfg), "{}", p.name);
        }
        assert_eq!(rewrite(&text, &cfg), text);
        // A replica's primary is written in place of an old slaveof line;
        // a primary drops the line.
        let with_primary = "# x\nslaveof 10.0.0.1 6379\n";
        cfg.set("replicaof", "10.0.0.2 6380", true).unwrap();
        assert!(rewrite(with_primary, &cfg).starts_with("# x\nreplicaof 10.0.0.2 6380\n"));
        cfg.replicaof.clear();
        assert!(rewrite(with_primary, &cfg).starts_with("# x\n\n"));
        // No rules at all is written as such, or the defaults would return.
        cfg.set("save", "", true).unwrap();
        assert!(rewrite(&text, &cfg).lines().any(|l| l == r#"save """#));
    }

    /// `save` with nothing after it, as Redis's test suite writes its
    /// config files, means no save points; other directives still need a
    /// value.
    #[test]
    fn a_bare_save_line_clears_the_save_points() {
        let mut c = Config::default();
        c.apply_text("save \nport 7001\n").unwrap();
        assert_eq!((c.save.as_str(), c.port), ("", 7001));
        let err = Config::default().apply_text("port\n").unwrap_err();
        assert!(err.contains("wrong number of arguments"), "{err}");
    }

    #[test]
    fn flags_and_file_share_one_parser() {
        let args: Vec<String> = ["my.conf", "--port", "7000", "--bind", "127.0.0.1", "::1", "--requirepass", "a b"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (file, text) = args_to_config_text(&args).unwrap();
        assert_eq!(file.as_deref(), Some("my.conf"));
        let mut c = Config::default();
        c.apply_text(&text).unwrap();
        assert_eq!(c.port, 7000);
        assert_eq!(c.bind, vec!["127.0.0.1", "::1"]);
        assert_eq!(c.requirepass, "a b");
    }

    #[test]
    fn workers_leave_a_core_unless_io_threads_says() {
        let mut c = Config::default();
        let by_cores: Vec<usize> = [1, 2, 4, 8].iter().map(|&n| c.worker_threads(n)).collect();
        assert_eq!(by_cores, [1, 1, 3, 7]);
        c.apply_text("io-threads 4").unwrap();
        assert_eq!((c.worker_threads(2), c.worker_threads(16)), (4, 4));
    }

    #[test]
    fn bad_directive_reports_line() {
        let mut c = Config::default();
        let err = c.apply_text("port 1\nnonsense 5\n").unwrap_err();
        assert!(err.contains("at line 2"), "{err}");
        assert!(err.contains("Bad directive"), "{err}");
        assert!(c.apply_text("maxclients lots").unwrap_err().contains("integer"));
    }

    #[test]
    fn memory_limits_have_redis_minimums() {
        let mut c = Config::default();
        let err = c.set("proto-max-bulk-len", "0", false).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid("proto-max-bulk-len", ref m) if m.contains("between 1048576")));
        c.set("proto-max-bulk-len", "2mb", false).unwrap();
        c.set("maxmemory", "0", false).unwrap();
    }

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("1gb").unwrap(), 1 << 30);
        assert_eq!(parse_memory("64k").unwrap(), 64_000);
        assert_eq!(parse_memory("100").unwrap(), 100);
        assert!(parse_memory("-1").is_err());
        assert!(parse_memory("mb").is_err());
    }

    #[test]
    fn config_set_rules() {
        let mut c = Config::default();
        assert_eq!(
            c.set("databases", "4", false),
            Err(ConfigError::Invalid("databases", "can't set immutable config".into()))
        );
        assert!(matches!(c.set("nope", "1", false), Err(ConfigError::Unknown(_))));
        c.set("MAXMEMORY-POLICY", "allkeys-LRU", false).unwrap();
        assert_eq!(c.get("maxmemory-policy").unwrap(), "allkeys-lru");
        let got = c.get_matching(&[b"maxmemory*"]);
        assert!(got.iter().any(|(n, _)| *n == "maxmemory-samples"));
    }
}
