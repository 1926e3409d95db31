//! Server commands: INFO, CONFIG, COMMAND, TIME, DEBUG and SHUTDOWN.
//! COMMAND's replies are generated from the command table, so they can
//! never disagree with what the dispatcher enforces.

use super::getkeys;
use super::keys::help_reply;
use super::table::{flags, flags::*, Command, CommandSpec, KeySpec};
use super::{eq_ic, parse_f64, Args, CmdResult, Ctx};
use crate::config::ConfigError;
use crate::error::CmdError;
use bytes::Bytes;
use larder_protocol::Frame;
use larder_store::glob_match;
use std::sync::atomic::Ordering::Relaxed;

pub(super) static COMMANDS: &[CommandSpec] =
    &[
        CommandSpec::new("info", -1, LOADING | STALE, KeySpec::NONE, info).doc(
            "server",
            "1.0.0",
            "Returns information and statistics about the server.",
        ),
        CommandSpec::container("config", CONFIG_SUBCOMMANDS).doc(
            "server",
            "2.0.0",
            "A container for server configuration commands.",
        ),
        CommandSpec::new("command", -1, LOADING | STALE, KeySpec::NONE, command_all).subs(COMMAND_SUBCOMMANDS).doc(
            "server",
            "2.8.13",
            "Returns detailed information about all commands.",
        ),
        CommandSpec::new("time", 1, LOADING | STALE | FAST, KeySpec::NONE, time).doc(
            "server",
            "2.6.0",
            "Returns the server time.",
        ),
        CommandSpec::new("monitor", 1, ADMIN | NOSCRIPT | LOADING | STALE, KeySpec::NONE, monitor).doc(
            "server",
            "1.0.0",
            "Streams every command the server runs to this connection, as text lines.",
        ),
        CommandSpec::new("debug", -2, ADMIN | NOSCRIPT | LOADING | STALE, KeySpec::NONE, debug).doc(
            "server",
            "1.0.0",
            "A container for debugging commands.",
        ),
        CommandSpec::new("save", 1, ADMIN | NOSCRIPT | NO_MULTI | NO_ASYNC_LOADING | EXCLUSIVE, KeySpec::NONE, save)
            .doc("server", "1.0.0", "Synchronously saves the database(s) to disk."),
        CommandSpec::new("bgsave", -1, ADMIN | NOSCRIPT | NO_ASYNC_LOADING, KeySpec::NONE, bgsave).doc(
            "server",
            "1.0.0",
            "Asynchronously saves the database(s) to disk.",
        ),
        CommandSpec::new("bgrewriteaof", 1, ADMIN | NOSCRIPT | NO_ASYNC_LOADING, KeySpec::NONE, bgrewriteaof).doc(
            "server",
            "1.0.0",
            "Asynchronously rewrites the append-only file to disk.",
        ),
        CommandSpec::new("lastsave", 1, LOADING | STALE | FAST, KeySpec::NONE, lastsave).doc(
            "server",
            "1.0.0",
            "Returns the Unix timestamp of the last successful save to disk.",
        ),
        CommandSpec::new(
            "shutdown",
            -1,
            ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI | ALLOW_BUSY,
            KeySpec::NONE,
            shutdown,
        )
        .doc("server", "1.0.0", "Synchronously saves the database(s) to disk and shuts down the Redis server."),
        CommandSpec::container("cluster", CLUSTER_SUBCOMMANDS).doc(
            "cluster",
            "3.0.0",
            "A container for Redis Cluster commands.",
        ),
        CommandSpec::new("readonly", 1, LOADING | STALE | FAST, KeySpec::NONE, cluster).doc(
            "cluster",
            "3.0.0",
            "Enables read-only queries for a connection to a Redis Cluster replica node.",
        ),
        CommandSpec::new("readwrite", 1, LOADING | STALE | FAST, KeySpec::NONE, cluster).doc(
            "cluster",
            "3.0.0",
            "Enables read-write queries for a connection to a Redis Cluster replica node.",
        ),
        CommandSpec::new("asking", 1, FAST, KeySpec::NONE, cluster).doc(
            "cluster",
            "3.0.0",
            "Signals that a cluster client is following an -ASK redirect.",
        ),
    ];

/// CLUSTER exists so clients and scripts see Redis's standalone answers
/// (and its flags: CLUSTER RESET is refused inside scripts). Larder runs
/// standalone only, where Redis answers every subcommand the same way.
static CLUSTER_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("info", 2, STALE, KeySpec::NONE, cluster).doc(
        "cluster",
        "3.0.0",
        "Returns information about the state of a node.",
    ),
    CommandSpec::new("nodes", 2, STALE, KeySpec::NONE, cluster).doc(
        "cluster",
        "3.0.0",
        "Returns the cluster configuration for a node.",
    ),
    CommandSpec::new("slots", 2, STALE, KeySpec::NONE, cluster).doc(
        "cluster",
        "3.0.0",
        "Returns the mapping of cluster slots to nodes.",
    ),
    CommandSpec::new("shards", 2, STALE, KeySpec::NONE, cluster).doc(
        "cluster",
        "7.0.0",
        "Returns the mapping of cluster slots to shards.",
    ),
    CommandSpec::new("myid", 2, STALE, KeySpec::NONE, cluster).doc("cluster", "3.0.0", "Returns the ID of a node."),
    CommandSpec::new("keyslot", 3, STALE, KeySpec::NONE, cluster).doc(
        "cluster",
        "3.0.0",
        "Returns the hash slot for a key.",
    ),
    CommandSpec::new("reset", -2, ADMIN | STALE | NOSCRIPT, KeySpec::NONE, cluster).doc(
        "cluster",
        "3.0.0",
        "Resets a node.",
    ),
    CommandSpec::new("help", 2, LOADING | STALE, KeySpec::NONE, cluster).doc(
        "cluster",
        "5.0.0",
        "Returns helpful text about the different subcommands.",
    ),
    CommandSpec::new("addslots", -3, ADMIN | STALE | NO_ASYNC_LOADING, KeySpec::NONE, cluster).doc(
        "cluster",
        "3.0.0",
        "Assigns new hash slots to a node.",
    ),
    CommandSpec::new("addslotsrange", -4, ADMIN | STALE | NO_ASYNC_LOADING, KeySpec::NONE, cluster).doc(
        "cluster",
        "7.0.0",
        "Assigns new hash slot ranges to a node.",
    ),
    CommandSpec::new("bumpepoch", 2, ADMIN | STALE | NO_ASYNC_LOADING, KeySpec::NONE, cluster).doc(
        "cluster",
        "3.0.0",
        "Advances the cluster config epoch.",
    ),
    CommandSpec::new("count-failure-reports", 3, ADMIN | STALE, KeySpec::NONE, cluster).doc(
        "cluster",
        "3.0.0",
        "Returns the number of active failure reports active for a node.",
    ),
    CommandSpec::new("countkeysinslot", 3, STALE, KeySpec::NONE, cluster).doc(
        "cluster",
        "3.0.0",
        "Returns the number of keys in a hash slot.",
    ),
    CommandSpec::new("delslots", -3, ADMIN | STALE | NO_ASYNC_LOADING, KeySpec::NONE, cluster).doc(
        "cluster",
        "3.0.0",
        "Sets hash slots as unbound for a node.",
    ),
    CommandSpec::new("delslotsrange", -4, ADMIN | STALE | NO_ASYNC_LOADING, KeySpec::NONE, cluster).doc(
        "cluster",
        "7.0.0",
        "Sets hash slot ranges as unbound for a node.",
    ),
    CommandSpec::new("failover", -2, ADMIN | STALE | NO_ASYNC_LOADING, KeySpec::NONE, cluster).doc(
        "cluster",
        "3.0.0",
        "Forces a replica to perform a manual failover of its master.",
    ),
    CommandSpec::new("flushslots", 2, ADMIN | STALE | NO_ASYNC_LOADING, KeySpec::NONE, cluster).doc(
        "cluster",
        "3.0.0",
        "Deletes all slots information from a node.",
    ),
    CommandSpec::new("forget", 3, ADMIN | STALE | NO_ASYNC_LOADING, KeySpec::NONE, cluster).doc(
        "cluster",
        "3.0.0",
        "Removes a node from the nodes table.",
    ),
    CommandSpec::new("getkeysinslot", 4, STALE, KeySpec::NONE, cluster).doc(
        "cluster",
        "3.0.0",
        "Returns the key names in a hash slot.",
    ),
    CommandSpec::new("links", 2, STALE, KeySpec::NONE, cluster).doc(
        "cluster",
        "7.0.0",
        "Returns a list of all TCP links to and from peer nodes.",
    ),
    CommandSpec::new("meet", -4, ADMIN | STALE | NO_ASYNC_LOADING, KeySpec::NONE, cluster).doc(
        "cluster",
        "3.0.0",
        "Forces a node to handshake with another node.",
    ),
    CommandSpec::new("replicas", 3, ADMIN | STALE, KeySpec::NONE, cluster).doc(
        "cluster",
        "5.0.0",
        "Lists the replica nodes of a master node.",
    ),
    CommandSpec::new("replicate", 3, ADMIN | STALE | NO_ASYNC_LOADING, KeySpec::NONE, cluster).doc(
        "cluster",
        "3.0.0",
        "Configure a node as replica of a master node.",
    ),
    CommandSpec::new("saveconfig", 2, ADMIN | STALE | NO_ASYNC_LOADING, KeySpec::NONE, cluster).doc(
        "cluster",
        "3.0.0",
        "Forces a node to save the cluster configuration to disk.",
    ),
    CommandSpec::new("set-config-epoch", 3, ADMIN | STALE | NO_ASYNC_LOADING, KeySpec::NONE, cluster).doc(
        "cluster",
        "3.0.0",
        "Sets the configuration epoch for a new node.",
    ),
    CommandSpec::new("setslot", -4, ADMIN | STALE | NO_ASYNC_LOADING, KeySpec::NONE, cluster).doc(
        "cluster",
        "3.0.0",
        "Binds a hash slot to a node.",
    ),
    CommandSpec::new("slaves", 3, ADMIN | STALE, KeySpec::NONE, cluster).doc(
        "cluster",
        "3.0.0",
        "Lists the replica nodes of a master node.",
    ),
];

/// Every CLUSTER subcommand on a standalone server.
fn cluster(_ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    Err(CmdError::Err("This instance has cluster support disabled".into()))
}

static CONFIG_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("get", -3, ADMIN | NOSCRIPT | LOADING | STALE, KeySpec::NONE, config_get).doc(
        "server",
        "2.0.0",
        "Returns the effective values of configuration parameters.",
    ),
    CommandSpec::new("set", -4, ADMIN | NOSCRIPT | LOADING | STALE, KeySpec::NONE, config_set).doc(
        "server",
        "2.0.0",
        "Sets configuration parameters in-flight.",
    ),
    CommandSpec::new("resetstat", 2, ADMIN | NOSCRIPT | LOADING | STALE, KeySpec::NONE, config_resetstat).doc(
        "server",
        "2.0.0",
        "Resets the server's statistics.",
    ),
    CommandSpec::new("rewrite", 2, ADMIN | NOSCRIPT | LOADING | STALE, KeySpec::NONE, config_rewrite).doc(
        "server",
        "2.8.0",
        "Persists the effective configuration to the config file the server started from.",
    ),
    CommandSpec::new("help", 2, LOADING | STALE, KeySpec::NONE, config_help).doc(
        "server",
        "5.0.0",
        "Returns helpful text about the different subcommands.",
    ),
];

static COMMAND_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("count", 2, LOADING | STALE, KeySpec::NONE, command_count).doc(
        "server",
        "2.8.13",
        "Returns a count of commands.",
    ),
    CommandSpec::new("info", -2, LOADING | STALE, KeySpec::NONE, command_info).doc(
        "server",
        "2.8.13",
        "Returns information about one, multiple or all commands.",
    ),
    CommandSpec::new("docs", -2, LOADING | STALE, KeySpec::NONE, command_docs).doc(
        "server",
        "7.0.0",
        "Returns documentary information about one, multiple or all commands.",
    ),
    CommandSpec::new("list", -2, LOADING | STALE, KeySpec::NONE, command_list).doc(
        "server",
        "7.0.0",
        "Returns a list of command names.",
    ),
    CommandSpec::new("getkeys", -4, LOADING | STALE, KeySpec::NONE, command_getkeys).doc(
        "server",
        "2.8.13",
        "Extracts the key names from an arbitrary command.",
    ),
    CommandSpec::new("getkeysandflags", -4, LOADING | STALE, KeySpec::NONE, command_getkeysandflags).doc(
        "server",
        "7.0.0",
        "Extracts the key names and their access flags from an arbitrary command.",
    ),
    CommandSpec::new("help", 2, LOADING | STALE, KeySpec::NONE, command_help).doc(
        "server",
        "5.0.0",
        "Returns helpful text about the different subcommands.",
    ),
];

/// INFO [section [section ...]]
fn info(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let sections: Vec<String> = args.rest().iter().map(|s| String::from_utf8_lossy(s).to_lowercase()).collect();
    let text = crate::info::render(ctx.shared, &sections);
    Ok(Frame::Verbatim { format: *b"txt", text: Bytes::from(text) })
}

/// CONFIG GET parameter [parameter ...]
fn config_get(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let patterns = args.rest();
    let pairs = ctx.shared.config.read().get_matching(&patterns);
    Ok(Frame::Map(pairs.into_iter().map(|(k, v)| (Frame::bulk_static(k), Frame::Bulk(Bytes::from(v)))).collect()))
}

/// CONFIG SET parameter value [parameter value ...]
fn config_set(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let pairs = args.rest();
    if !pairs.len().is_multiple_of(2) {
        return Err(CmdError::WrongArity("config|set".into()));
    }
    // All or nothing: apply to a copy, then publish it.
    let mut next = ctx.shared.config.read().clone();
    let mut seen = Vec::new();
    for kv in pairs.chunks(2) {
        let (name, value) =
            (String::from_utf8_lossy(kv[0]).to_lowercase(), String::from_utf8_lossy(kv[1]).into_owned());
        if seen.contains(&name) {
            return Err(CmdError::Err(format!(
                "CONFIG SET failed (possibly related to argument '{name}') - duplicate parameter"
            )));
        }
        // Redis's PROTECTED_CONFIG ones: where the server writes files.
        if matches!(name.as_str(), "dir" | "dbfilename") && !protected_allowed(ctx, "enable-protected-configs") {
            return Err(CmdError::Err(format!(
                "CONFIG SET failed (possibly related to argument '{name}') - can't set protected config"
            )));
        }
        next.set(&name, &value, false).map_err(|e| match e {
            ConfigError::Unknown(n) => {
                CmdError::Err(format!("Unknown option or number of arguments for CONFIG SET - '{n}'"))
            }
            ConfigError::Invalid(n, msg) => {
                CmdError::Err(format!("CONFIG SET failed (possibly related to argument '{n}') - {msg}"))
            }
        })?;
        seen.push(name);
    }
    // The listening sockets change first: it is the step that can fail
    // after every value checked out, and nothing is published until it has
    // succeeded (a failure rebinds the old sockets).
    let (old_bind, old_port) = {
        let cur = ctx.shared.config.read();
        (cur.bind.clone(), cur.port)
    };
    let relisten = next.port != old_port || next.bind != old_bind;
    // TLS's configuration is built before any socket moves (it is the
    // likelier to fail), its sockets after the plain ones.
    let (old_tls_port, tls_port) =
        (ctx.shared.config.read().extra_int("tls-port") as u16, next.extra_int("tls-port") as u16);
    let tls_changed = crate::tls::changed(&ctx.shared.config.read(), &next);
    let tls_rebuilt = tls_port != 0 && (tls_changed || ctx.shared.tls.acceptor().is_none());
    // A later step that fails puts the configuration in force back (the
    // values published are still the old ones).
    let undo_tls = |shared: &crate::Shared| {
        if tls_rebuilt {
            let _ = shared.tls.configure(&shared.config.read());
        }
    };
    if tls_rebuilt {
        if let Err(e) = ctx.shared.tls.configure(&next) {
            tracing::warn!("Failed to configure TLS: {e}");
            let name = seen.iter().find(|n| n.starts_with("tls-")).map_or("tls-port", |n| n.as_str());
            return Err(CmdError::Err(format!(
                "CONFIG SET failed (possibly related to argument '{name}') - Unable to update TLS configuration. Check server logs."
            )));
        }
    }
    if relisten {
        let rebound = crate::listen::rebind(ctx.shared, &next.bind, next.port, (&old_bind, old_port), false);
        if rebound.is_err() {
            undo_tls(ctx.shared);
        }
        match rebound {
            Ok(port) => next.port = port,
            Err(_) if next.port != old_port => {
                return Err(CmdError::Err(
                    "CONFIG SET failed (possibly related to argument 'port') - Unable to listen on this port. Check server logs."
                        .into(),
                ))
            }
            Err(_) => {
                return Err(CmdError::Err(
                    "CONFIG SET failed (possibly related to argument 'bind') - Failed to bind to specified addresses."
                        .into(),
                ))
            }
        }
    }
    if tls_port != old_tls_port || (tls_port != 0 && relisten) {
        let old = (&old_bind[..], old_tls_port);
        if crate::listen::rebind(ctx.shared, &next.bind, tls_port, old, true).is_err() {
            // As it was: the plain sockets, and the TLS configuration.
            if relisten {
                let _ = crate::listen::rebind(ctx.shared, &old_bind, old_port, (&old_bind, old_port), false);
            }
            undo_tls(ctx.shared);
            return Err(CmdError::Err(
                "CONFIG SET failed (possibly related to argument 'tls-port') - Unable to listen on this port. Check server logs."
                    .into(),
            ));
        }
    }
    ctx.client.limits = next.limits;
    ctx.shared.apply_config(&next);
    let (turn_on, turn_off) =
        (next.appendonly && !ctx.shared.aof.enabled(), !next.appendonly && ctx.shared.aof.enabled());
    *ctx.shared.config.write() = next;
    if turn_off {
        crate::aof::stop(ctx.shared);
    } else if turn_on {
        if let Err(e) = crate::aof::start(ctx.shared, false) {
            tracing::warn!("Unable to turn on AOF: {e}");
            ctx.shared.config.write().appendonly = false;
            return Err(CmdError::Err(
                "CONFIG SET failed (possibly related to argument 'appendonly') - Unable to turn on AOF. Check server logs."
                    .into(),
            ));
        }
    }
    Ok(Frame::ok())
}

/// CONFIG RESETSTAT
fn config_resetstat(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    ctx.shared.stats.reset();
    ctx.shared.keyspace.reset_stats();
    ctx.shared.keyspace.evictor.reset_stats();
    ctx.shared.memory.reset_stats();
    ctx.shared.lazyfree.reset_stats();
    ctx.shared.replication.stats.reset();
    for c in ctx.shared.commands.iter_all() {
        c.stats.reset();
    }
    Ok(Frame::ok())
}

/// CONFIG REWRITE: the running configuration into the file the server
/// started from (see `config::rewrite`), replaced whole
/// (`snapshot::replace_file`), so a crash leaves the old file or the new
/// one, never half of one.
fn config_rewrite(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let mut cfg = ctx.shared.config.read().clone();
    // The users as they are now (ACL SETUSER and DELUSER included).
    cfg.users =
        ctx.shared.acl.all().iter().map(|u| u.describe().split(' ').skip(1).map(String::from).collect()).collect();
    if cfg.config_file.is_empty() {
        return Err(CmdError::Err("The server is running without a config file".into()));
    }
    let path = std::path::Path::new(&cfg.config_file);
    let write = || -> std::io::Result<()> {
        let old = match std::fs::read_to_string(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            other => other?,
        };
        let text = crate::config::rewrite(&old, &cfg);
        let tmp = path.with_file_name(format!(".larder-rewrite-{}.tmp", std::process::id()));
        crate::snapshot::replace_file(path, &tmp, text.as_bytes())
    };
    match write() {
        Ok(()) => {
            tracing::info!("CONFIG REWRITE executed with success.");
            Ok(Frame::ok())
        }
        Err(e) => {
            tracing::warn!("CONFIG REWRITE failed: {e}");
            Err(CmdError::Err(format!("Rewriting config file: {}", super::os_error_text(&e))))
        }
    }
}

/// CONFIG HELP
fn config_help(_ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    Ok(help_reply(
        "CONFIG",
        &[
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
        ],
    ))
}

fn status_set(names: impl IntoIterator<Item = &'static str>) -> Frame {
    Frame::Set(names.into_iter().map(Frame::simple).collect())
}

/// One COMMAND INFO entry, Redis 7 shape.
fn command_entry(c: &Command) -> Frame {
    let s = c.spec;
    let flag_names = flags::NAMES.iter().filter(|(f, _)| s.has(*f)).map(|(_, n)| *n);
    let mut subs: Vec<&Command> = c.subs.values().collect();
    subs.sort_by(|a, b| a.full_name.cmp(&b.full_name));
    Frame::Array(vec![
        Frame::bulk(&c.full_name),
        Frame::Integer(s.arity as i64),
        status_set(flag_names),
        Frame::Integer(s.keys.first as i64),
        Frame::Integer(s.keys.last as i64),
        Frame::Integer(s.keys.step as i64),
        status_set(c.categories.iter().copied()),
        Frame::Set(c.tips.iter().map(|t| Frame::bulk_static(t)).collect()),
        Frame::Set(c.key_specs.iter().map(key_spec_entry).collect()),
        Frame::Set(subs.into_iter().map(command_entry).collect()),
    ])
}

/// One key spec as COMMAND INFO shows it (Redis's addReplyCommandKeySpecs).
fn key_spec_entry(spec: &getkeys::Spec) -> Frame {
    use getkeys::{Begin, Find};
    let kv = |k: &'static str, v: Frame| (Frame::bulk_static(k), v);
    let int = |n: i32| Frame::Integer(n as i64);
    let typed = |kind: &'static str, spec: Vec<(Frame, Frame)>| {
        Frame::Map(vec![kv("type", Frame::bulk_static(kind)), kv("spec", Frame::Map(spec))])
    };
    let begin = match spec.begin {
        Begin::Index(at) => typed("index", vec![kv("index", int(at))]),
        Begin::Keyword(word, from) => {
            typed("keyword", vec![kv("keyword", Frame::bulk_static(word)), kv("startfrom", int(from))])
        }
        Begin::Unknown => typed("unknown", vec![]),
    };
    let find = match spec.find {
        Find::Range { lastkey, step, limit } => {
            typed("range", vec![kv("lastkey", int(lastkey)), kv("keystep", int(step)), kv("limit", int(limit))])
        }
        Find::Keynum { index, first, step } => {
            typed("keynum", vec![kv("keynumidx", int(index)), kv("firstkey", int(first)), kv("keystep", int(step))])
        }
        Find::Unknown => typed("unknown", vec![]),
    };
    let mut fields = Vec::with_capacity(4);
    if !spec.notes.is_empty() {
        fields.push(kv("notes", Frame::bulk_static(spec.notes)));
    }
    fields.push(kv("flags", getkeys::flag_names(spec.flags)));
    fields.push(kv("begin_search", begin));
    fields.push(kv("find_keys", find));
    Frame::Map(fields)
}

/// Finds "get" or "client|kill" by name.
fn find_command<'a>(ctx: &Ctx<'a>, name: &[u8]) -> Option<&'a Command> {
    let lower = String::from_utf8_lossy(name).to_lowercase();
    match lower.split_once('|') {
        Some((top, sub)) => ctx.shared.commands.lookup(top.as_bytes())?.lookup_sub(sub.as_bytes()),
        None => ctx.shared.commands.lookup(lower.as_bytes()),
    }
}

/// COMMAND
fn command_all(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    Ok(Frame::Array(ctx.shared.commands.iter().map(command_entry).collect()))
}

/// COMMAND COUNT
fn command_count(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    Ok(Frame::Integer(ctx.shared.commands.len() as i64))
}

/// COMMAND INFO [command-name ...]
fn command_info(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let names = args.rest();
    if names.is_empty() {
        return command_all(ctx, args);
    }
    Ok(Frame::Array(names.iter().map(|n| find_command(ctx, n).map(command_entry).unwrap_or(Frame::Null)).collect()))
}

fn command_doc(c: &Command) -> Frame {
    let s = c.spec;
    let kv = |k: &'static str, v: Frame| (Frame::bulk_static(k), v);
    let mut doc = vec![
        kv("summary", Frame::bulk_static(s.summary)),
        kv("since", Frame::bulk_static(s.since)),
        kv("group", Frame::bulk_static(s.group)),
    ];
    if !c.subs.is_empty() {
        let mut subs: Vec<&Command> = c.subs.values().collect();
        subs.sort_by(|a, b| a.full_name.cmp(&b.full_name));
        doc.push(kv(
            "subcommands",
            Frame::Map(subs.into_iter().map(|sc| (Frame::bulk(&sc.full_name), command_doc(sc))).collect()),
        ));
    }
    Frame::Map(doc)
}

/// COMMAND DOCS [command-name ...]
fn command_docs(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let names = args.rest();
    let chosen: Vec<&Command> = if names.is_empty() {
        ctx.shared.commands.iter().collect()
    } else {
        names.iter().filter_map(|n| find_command(ctx, n)).collect()
    };
    Ok(Frame::Map(chosen.into_iter().map(|c| (Frame::bulk(&c.full_name), command_doc(c))).collect()))
}

/// COMMAND LIST [FILTERBY MODULE module-name | ACLCAT category | PATTERN pattern]
fn command_list(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    enum Filter {
        All,
        Module,
        AclCat(String),
        Pattern(Vec<u8>),
    }
    let filter = match args.next() {
        None => Filter::All,
        Some(a) if eq_ic(a, "filterby") => {
            let kind = args.next_arg()?;
            let value = args.next_arg()?;
            args.finish()?;
            match () {
                _ if eq_ic(kind, "module") => Filter::Module,
                _ if eq_ic(kind, "aclcat") => {
                    Filter::AclCat(format!("@{}", String::from_utf8_lossy(value).to_lowercase()))
                }
                _ if eq_ic(kind, "pattern") => Filter::Pattern(value.to_vec()),
                _ => return Err(CmdError::Syntax),
            }
        }
        Some(_) => return Err(CmdError::Syntax),
    };
    let names = ctx
        .shared
        .commands
        .iter_all()
        .into_iter()
        .filter(|c| match &filter {
            Filter::All => true,
            Filter::Module => false,
            Filter::AclCat(cat) => c.categories.contains(&cat.as_str()),
            Filter::Pattern(p) => glob_match(p, c.full_name.as_bytes(), true),
        })
        .map(|c| Frame::bulk(&c.full_name))
        .collect();
    Ok(Frame::Array(names))
}

/// COMMAND GETKEYS command [arg ...]
fn command_getkeys(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    getkeys_reply(ctx, args, false)
}

/// COMMAND GETKEYSANDFLAGS command [arg ...]
fn command_getkeysandflags(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    getkeys_reply(ctx, args, true)
}

/// Redis's getKeysSubcommandImpl: the keys `argv` names, as the ACL check
/// finds them, each with its flags when asked.
fn getkeys_reply(ctx: &mut Ctx<'_>, mut args: Args<'_>, with_flags: bool) -> CmdResult {
    let argv = args.rest();
    let cmd = ctx.shared.commands.resolve(&argv).ok_or_else(|| CmdError::Err("Invalid command specified".into()))?;
    if !getkeys::has_keys(cmd) {
        return Err(CmdError::Err("The command has no key arguments".into()));
    }
    let arity = cmd.spec.arity;
    let argc = argv.len() as i32;
    if (arity > 0 && arity != argc) || argc < -arity {
        return Err(CmdError::Err("Invalid number of arguments specified for command".into()));
    }
    let keys = getkeys::command_keys(cmd, &argv);
    if keys.is_empty() && !cmd.spec.has(NO_MANDATORY_KEYS) {
        return Err(CmdError::Err("Invalid arguments specified for command".into()));
    }
    Ok(Frame::Array(
        keys.into_iter()
            .map(|k| {
                let key = Frame::bulk(argv[k.pos]);
                if with_flags {
                    Frame::Array(vec![key, getkeys::flag_names(k.flags)])
                } else {
                    key
                }
            })
            .collect(),
    ))
}

/// COMMAND HELP
fn command_help(_ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    Ok(help_reply(
        "COMMAND",
        &[
            "(no subcommand)",
            "    Return details about all Redis commands.",
            "COUNT",
            "    Return the total number of commands in this Redis server.",
            "LIST",
            "    Return a list of all commands in this Redis server.",
            "INFO [<command-name> ...]",
            "    Return details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "GETKEYS <full-command>",
            "    Return the keys from a full Redis command.",
            "GETKEYSANDFLAGS <full-command>",
            "    Return the keys and the access flags from a full Redis command.",
        ],
    ))
}

/// TIME
fn time(_ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Ok(Frame::Array(vec![Frame::bulk(now.as_secs().to_string()), Frame::bulk(now.subsec_micros().to_string())]))
}

/// DEBUG SLEEP seconds | OBJECT key | SET-ACTIVE-EXPIRE 0|1 | REPLYBUFFER … | HELP
/// Redis's allowProtectedAction: `option` (enable-debug-command,
/// enable-module-command or enable-protected-configs) is `yes`, or
/// `local` and the client is on this host.
pub(crate) fn protected_allowed(ctx: &Ctx<'_>, option: &str) -> bool {
    match ctx.shared.config.read().extra(option) {
        "yes" => true,
        "local" => ctx.client.info.addr.is_local(),
        _ => false,
    }
}

/// The refusal of DEBUG or MODULE under `enable-*-command`, Redis's text.
pub(crate) fn protected_command_refused(ctx: &Ctx<'_>, command: &str, option: &str) -> Result<(), CmdError> {
    if protected_allowed(ctx, option) {
        return Ok(());
    }
    Err(CmdError::Err(format!(
        "{command} command not allowed. If the {option} option is set to \"local\", you can run it from a local \
         connection, otherwise you need to set this option in the configuration file, and then restart the server."
    )))
}

fn debug(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    protected_command_refused(ctx, "DEBUG", "enable-debug-command")?;
    let sub = args.next_arg()?;
    if eq_ic(sub, "sleep") {
        let secs = parse_f64(args.next_arg()?)?;
        // Like Redis, this stalls the thread that runs it. Out-of-range
        // values (inf, 1e300) would panic in Duration; refuse them instead.
        let pause = std::time::Duration::try_from_secs_f64(secs.max(0.0)).map_err(|_| CmdError::NotFloat)?;
        // Until the clock that times commands (quanta's TSC, dispatch.rs)
        // has seen the whole pause too: calibrated on a loaded machine it
        // can run a little slow against the OS's, and SLOWLOG and LATENCY
        // then showed a 0.25 s sleep as 249.8 ms.
        let started = quanta::Instant::now();
        std::thread::sleep(pause);
        while let Some(left) = pause.checked_sub(quanta::Instant::now() - started).filter(|d| !d.is_zero()) {
            std::thread::sleep(left);
        }
        return Ok(Frame::ok());
    }
    if eq_ic(sub, "replicate") && args.remaining() > 0 {
        let rest: Vec<&[u8]> = std::iter::from_fn(|| args.next()).collect();
        ctx.shared.replication.feed_unrun(ctx.db(), &rest);
        return Ok(Frame::ok());
    }
    if eq_ic(sub, "log") && args.remaining() == 1 {
        // Redis's marker in the log, for tests that read it.
        tracing::warn!("DEBUG LOG: {}", String::from_utf8_lossy(args.next_arg()?));
        return Ok(Frame::ok());
    }
    if eq_ic(sub, "segfault") {
        crate::crash::segfault();
    }
    if eq_ic(sub, "pause-cron") {
        let v = args.next_arg()?;
        ctx.shared.cron_paused.store(v != b"0", Relaxed);
        return Ok(Frame::ok());
    }
    if eq_ic(sub, "replybuffer") {
        // DEBUG REPLYBUFFER PEAK-RESET-TIME <ms|never|reset> | RESIZING <0|1>
        let wrong = || super::subcommand_syntax(&String::from_utf8_lossy(sub), "DEBUG");
        if args.remaining() != 2 {
            return Err(wrong());
        }
        let (what, v) = (args.next_arg()?, args.next_arg()?);
        let w = &ctx.shared.clients.buffers;
        if eq_ic(what, "peak-reset-time") {
            let ms = if eq_ic(v, "never") {
                -1
            } else if eq_ic(v, "reset") {
                crate::conn::client::PEAK_RESET_MS
            } else {
                super::parse_i64(v)?
            };
            w.peak_reset_ms.store(ms, Relaxed);
        } else if eq_ic(what, "resizing") {
            // atoi, as Redis reads it: anything but a non-zero number is off.
            w.resizing.store(super::parse_i64(v).unwrap_or(0) != 0, Relaxed);
        } else {
            return Err(wrong());
        }
        return Ok(Frame::ok());
    }
    if eq_ic(sub, "set-disable-deny-scripts") {
        let v = args.next_arg()?;
        ctx.shared.scripting.allow_noscript.store(v != b"0", Relaxed);
        return Ok(Frame::ok());
    }
    if eq_ic(sub, "set-active-expire") {
        let v = args.next_arg()?;
        ctx.shared.active_expire_enabled.store(v != b"0", Relaxed);
        return Ok(Frame::ok());
    }
    if eq_ic(sub, "object") {
        let key = args.next_arg()?;
        let mut tx = ctx.lock(key);
        let e = tx.peek_stored(key).ok_or(CmdError::NoSuchKey)?;
        let serialized = larder_persist::dump_payload(&e.value()).map_or(0, |p| p.len() - 10);
        let text = format!(
            "Value at:0x0 refcount:1 encoding:{} serializedlength:{} lru:{} lru_seconds_idle:{}",
            e.encoding(),
            serialized,
            e.raw_clock(),
            e.idle_secs(ctx.now)
        );
        return Ok(Frame::Simple(Bytes::from(text)));
    }
    if eq_ic(sub, "populate") {
        return debug_populate(ctx, args);
    }
    if eq_ic(sub, "digest") && args.remaining() == 0 {
        return Ok(Frame::Simple(Bytes::from(crate::digest::dataset_digest(ctx.shared))));
    }
    if eq_ic(sub, "digest-value") {
        let keys = args.rest();
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let mut tx = ctx.lock(key);
            out.push(Frame::Simple(Bytes::from(crate::digest::value_digest(tx.peek(key)))));
        }
        return Ok(Frame::Array(out));
    }
    if eq_ic(sub, "protocol") {
        let kind = args.next_arg()?;
        args.finish()?;
        if eq_ic(kind, "push") && ctx.resp3() {
            // Out of band, like every push; the reply proper follows.
            let push = Frame::Push(vec![Frame::bulk_static("server-cpu-usage"), Frame::Integer(42)]);
            ctx.client.outbox.push_frame(&push, crate::pubsub::BufferLimit::default());
            return Ok(Frame::bulk_static("Some real reply following the push reply"));
        }
        return debug_protocol(kind);
    }
    if eq_ic(sub, "reload") {
        // Redis's default: save, empty the dataset, load the file again.
        for opt in args.rest() {
            if !eq_ic(opt, "merge") && !eq_ic(opt, "noflush") && !eq_ic(opt, "nosave") {
                return Err(CmdError::Err("DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.".into()));
            }
        }
        let has = |name| args.all().iter().skip(2).any(|a| eq_ic(a, name));
        if !has("nosave") {
            crate::snapshot::save(ctx.shared)
                .map_err(|e| CmdError::Err(format!("Error trying to save the DB: {e}")))?;
        }
        if !has("noflush") {
            // Functions too, as Redis's emptyData does: the file's
            // libraries are then all there is.
            ctx.shared.keyspace.flush_all();
            ctx.shared.scripting.function_flush();
        }
        let merge = has("merge") || !has("noflush");
        let _loading = ctx.shared.snapshots.loading.hold(ctx.shared.clock.now_ms());
        // Off this worker, so the connections queued on it get LOADING
        // meanwhile rather than waiting for the load.
        crate::scripting::off_worker(|| crate::snapshot::load_rdb_file(ctx.shared, merge, false))
            .map_err(|e| CmdError::Err(format!("Error trying to load the RDB dump: {e}")))?;
        return Ok(Frame::ok());
    }
    if eq_ic(sub, "set-skip-checksum-validation") {
        larder_persist::rdb::set_skip_checksum(args.next_arg()? != b"0");
        return Ok(Frame::ok());
    }
    if eq_ic(sub, "aof-flush-sleep") {
        let us = super::parse_i64(args.next_arg()?).map_err(|_| CmdError::NotInteger)?;
        ctx.shared.aof.flush_sleep_us.store(us.max(0) as u64, Relaxed);
        return Ok(Frame::ok());
    }
    if eq_ic(sub, "loadaof") {
        let _loading = ctx.shared.snapshots.loading.hold(ctx.shared.clock.now_ms());
        crate::scripting::off_worker(|| crate::aof::reload(ctx.shared))
            .map_err(|e| CmdError::Err(format!("Error loading the AOF: {e}")))?;
        return Ok(Frame::ok());
    }
    if eq_ic(sub, "quicklist-packed-threshold") {
        // Redis stores list elements above this size in nodes of their
        // own; Larder's list has no such nodes, so there is nothing to
        // tune, but the argument is checked as Redis checks it.
        let size = crate::config::parse_memory(&String::from_utf8_lossy(args.next_arg()?));
        args.finish()?;
        return match size {
            Ok(n) if n < 1 << 32 => Ok(Frame::ok()),
            _ => Err(CmdError::Err("argument must be a memory value bigger than 1 and smaller than 4gb".into())),
        };
    }
    if eq_ic(sub, "help") {
        return Ok(help_reply(
            "DEBUG",
            &[
                "AOF-FLUSH-SLEEP <microsec>",
                "    Server will sleep before flushing the AOF, this is used for testing.",
                "DIGEST",
                "    Output a hex signature representing the current DB content.",
                "DIGEST-VALUE <key> [<key> ...]",
                "    Output a hex signature of the values of all the specified keys.",
                "LOADAOF",
                "    Flush the AOF buffers on disk and reload the AOF in memory.",
                "LOG <message>",
                "    Write <message> to the server log.",
                "OBJECT <key>",
                "    Show low level info about the key and associated value.",
                "POPULATE <count> [<prefix>] [<size>]",
                "    Add string keys <prefix>:0 to <prefix>:<count-1> (prefix 'key') holding",
                "    value:<n>, sized to <size> bytes if given; existing keys stay. Larder",
                "    propagates each as a SET.",
                "PROTOCOL <type>",
                "    Reply with a test value of the specified type. <type> can be: string,",
                "    integer, double, bignum, null, array, set, map, attrib, push, verbatim,",
                "    true, false.",
                "QUICKLIST-PACKED-THRESHOLD <size>",
                "    Accepted for compatibility: Larder's lists have no separately packed nodes.",
                "REPLICATE <string>",
                "    Replicates the provided string to replicas, allowing data divergence.",
                "RELOAD [option ...]",
                "    Save the RDB on disk and reload it back to memory. Options: MERGE, NOFLUSH, NOSAVE.",
                "REPLYBUFFER PEAK-RESET-TIME <NEVER||RESET|time>",
                "    Sets the time (in milliseconds) to wait between client reply buffer peak resets.",
                "    In case NEVER is provided the last observed peak will never be reset.",
                "    In case RESET is provided the peak reset time will be restored to the default value.",
                "REPLYBUFFER RESIZING <0|1>",
                "    Enable or disable the reply buffer resize cron job.",
                "SET-ACTIVE-EXPIRE <0|1>",
                "    Setting it to 0 disables expiring keys in background when they are not accessed.",
                "SEGFAULT",
                "    Crash the server with sigsegv.",
                "SET-SKIP-CHECKSUM-VALIDATION <0|1>",
                "    Enables or disables checksum checks for RDB files and RESTORE's payload.",
                "SLEEP <seconds>",
                "    Stop the server for <seconds>. Decimals allowed.",
            ],
        ));
    }
    Err(CmdError::UnknownSubcommand { sub: String::from_utf8_lossy(sub).into_owned(), cmd: "DEBUG".into() })
}

/// DEBUG PROTOCOL: one reply of each RESP type, as Redis's debug.c sends.
// Redis's double is literally 3.141, not an approximation of pi.
#[allow(clippy::approx_constant)]
fn debug_protocol(kind: &[u8]) -> CmdResult {
    let kind = String::from_utf8_lossy(kind).to_ascii_lowercase();
    let ints = || (0..3).map(Frame::Integer).collect::<Vec<_>>();
    Ok(match kind.as_str() {
        "string" => Frame::bulk_static("Hello World"),
        "integer" => Frame::Integer(12345),
        "double" => Frame::Double(3.141),
        "bignum" => Frame::BigNumber(Bytes::from_static(b"1234567999999999999999999999999999999")),
        "null" => Frame::Null,
        "array" => Frame::Array(ints()),
        "set" => Frame::Set(ints()),
        "map" => Frame::Map((0..3).map(|j| (Frame::Integer(j), Frame::Boolean(j == 1))).collect()),
        "attrib" => Frame::Attribute {
            attrs: vec![(
                Frame::bulk_static("key-popularity"),
                Frame::Array(vec![Frame::bulk_static("key:123"), Frame::Integer(90)]),
            )],
            reply: Box::new(Frame::bulk_static("Some real reply following the attribute")),
        },
        // RESP3 clients are answered before this (the push is out of band).
        "push" => return Err(CmdError::Err("RESP2 is not supported by this command".into())),
        "true" => Frame::Boolean(true),
        "false" => Frame::Boolean(false),
        "verbatim" => Frame::Verbatim { format: *b"txt", text: Bytes::from_static(b"This is a verbatim\nstring") },
        _ => return Err(CmdError::Err(
            "Wrong protocol type name. Please use one of the following: string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false".into(),
        )),
    })
}

/// SAVE: the EXCLUSIVE flag means nothing else runs meanwhile.
fn save(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    if ctx.shared.snapshots.bgsave_in_progress.load(Relaxed) {
        return Err(CmdError::Err("Background save already in progress".into()));
    }
    match crate::snapshot::save(ctx.shared) {
        Ok(_) => Ok(Frame::ok()),
        Err(e) => Err(CmdError::Err(format!("snapshot failed: {e}"))),
    }
}

/// BGSAVE [SCHEDULE]
fn bgsave(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let schedule = match args.next() {
        None => false,
        Some(a) if eq_ic(a, "schedule") && args.is_empty() => true,
        Some(_) => return Err(CmdError::Syntax),
    };
    let shared = ctx.shared;
    if schedule && !shared.snapshots.bgsave_in_progress.load(Relaxed) && shared.keyspace.cut_active() {
        shared.snapshots.scheduled.store(true, Relaxed);
        return Ok(Frame::Simple("Background saving scheduled".into()));
    }
    match crate::snapshot::bgsave(&shared.arc()) {
        Ok(()) => Ok(Frame::Simple("Background saving started".into())),
        Err(e) => Err(CmdError::Err(e)),
    }
}

/// BGREWRITEAOF
fn bgrewriteaof(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let shared = ctx.shared;
    if shared.aof.rewrite_in_progress.load(Relaxed) {
        return Err(CmdError::Err("Background append only file rewriting already in progress".into()));
    }
    if shared.keyspace.cut_active() {
        shared.aof.rewrite_scheduled.store(true, Relaxed);
        return Ok(Frame::Simple("Background append only file rewriting scheduled".into()));
    }
    match crate::aof::rewrite(shared, false, shared.aof.enabled()) {
        Ok(()) => Ok(Frame::Simple("Background append only file rewriting started".into())),
        Err(e) => Err(CmdError::Err(e)),
    }
}

/// LASTSAVE
fn lastsave(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    Ok(Frame::Integer(ctx.shared.snapshots.last_save.load(Relaxed) as i64))
}

/// SHUTDOWN [NOSAVE | SAVE] [NOW] [FORCE] [ABORT]. The final snapshot
/// (SAVE, or save points configured and no NOSAVE) is written once the
/// connections are closed (see `Server::run`).
fn shutdown(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let (mut mode, mut now, mut force) = (crate::server::SHUTDOWN_DEFAULT, false, false);
    while let Some(a) = args.next() {
        if eq_ic(a, "abort") {
            return Err(CmdError::Err("No shutdown in progress.".into()));
        }
        if eq_ic(a, "save") {
            mode = crate::server::SHUTDOWN_SAVE;
        } else if eq_ic(a, "nosave") {
            mode = crate::server::SHUTDOWN_NOSAVE;
        } else if eq_ic(a, "now") {
            now = true;
        } else if eq_ic(a, "force") {
            force = true;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let shared = ctx.shared;
    tracing::warn!("User requested shutdown...");
    // No reply: the connection closes as the process ends, or, if the
    // final snapshot fails and the server stays up, it gets Redis's error
    // (`server::shutdown_failed`).
    shared.shutdown_callers.lock().push(ctx.client.outbox.clone());
    shared.begin_shutdown(mode, now, force);
    ctx.client.no_reply = true;
    Ok(Frame::ok())
}

/// DEBUG POPULATE count [prefix] [size]: `prefix:0` … `prefix:<count-1>`
/// holding `value:<n>` (padded with zero bytes, or cut, to `size` if
/// given); keys that exist are left alone. Redis does not propagate
/// these; Larder sends each as a SET to the effect stream like any write,
/// so the AOF and replicas hold what the dataset holds.
fn debug_populate(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    use larder_store::{value::StrValue, Ttl, Value};
    if !(1..=3).contains(&args.remaining()) {
        return Err(CmdError::Err(
            "unknown subcommand or wrong number of arguments for 'populate'. Try DEBUG HELP.".into(),
        ));
    }
    // Redis gives one message for a count that is not a number too.
    let positive = |arg: &[u8]| -> Result<u64, CmdError> {
        let n = super::parse_i64(arg).ok().and_then(|n| u64::try_from(n).ok());
        n.ok_or_else(|| CmdError::Err("value is out of range, must be positive".into()))
    };
    let count = positive(args.next_arg()?)?;
    let prefix = args.next().unwrap_or(b"key");
    let size = args.next().map(positive).transpose()?.filter(|&n| n > 0).map(|n| n as usize);
    let mut key = Vec::with_capacity(prefix.len() + 21);
    for j in 0..count {
        key.clear();
        key.extend_from_slice(prefix);
        key.extend_from_slice(format!(":{j}").as_bytes());
        let mut tx = ctx.lock(&key);
        if tx.contains(&key) {
            continue;
        }
        let mut value = format!("value:{j}").into_bytes();
        if let Some(size) = size {
            value.resize(size, 0);
        }
        tx.set(&key, Value::Str(StrValue::from_slice(&value)), Ttl::Clear);
        tx.emit(&[b"SET", &key, &value]);
    }
    Ok(Frame::ok())
}

/// MONITOR: from now on this connection receives every command the server
/// runs (see monitor.rs). A second MONITOR changes nothing. Queued in
/// MULTI, it fails at EXEC, as in Redis: a transaction expects one reply
/// per command.
fn monitor(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    if ctx.client.in_exec {
        return Err(CmdError::Err("MONITOR isn't allowed for DENY BLOCKING client".into()));
    }
    ctx.client.info.monitor.store(true, std::sync::atomic::Ordering::Relaxed);
    ctx.shared.monitors.add(ctx.client.id(), ctx.client.outbox.clone());
    Ok(Frame::ok())
}
