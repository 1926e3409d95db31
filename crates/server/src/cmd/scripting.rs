//! EVAL, EVALSHA, their read-only forms, SCRIPT, FCALL and FUNCTION: the
//! command side of Lua scripting (the engine is `crate::scripting`).

use super::keys::help_reply;
use super::table::{flags::*, CommandSpec, KeySpec};
use super::{eq_ic, subcommand_syntax, Args, CmdResult, Ctx};
use crate::error::CmdError;
use crate::scripting::RestorePolicy;
use bytes::Bytes;
use larder_protocol::Frame;

const SCRIPT_FLAGS: u32 = NOSCRIPT | STALE | SKIP_MONITOR | NO_MANDATORY_KEYS | MOVABLEKEYS | EXCLUSIVE;
/// A script that may write, as far as one can tell before it runs (CLIENT
/// PAUSE WRITE holds it unless it declares no-writes).
const EVAL_FLAGS: u32 = SCRIPT_FLAGS | MAY_REPLICATE;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("eval", -3, EVAL_FLAGS, KeySpec::NONE, eval).doc(
        "scripting",
        "2.6.0",
        "Executes a server-side Lua script.",
    ),
    CommandSpec::new("evalsha", -3, EVAL_FLAGS, KeySpec::NONE, evalsha).doc(
        "scripting",
        "2.6.0",
        "Executes a server-side Lua script by SHA1 digest.",
    ),
    CommandSpec::new("eval_ro", -3, SCRIPT_FLAGS | READONLY, KeySpec::NONE, eval_ro).doc(
        "scripting",
        "7.0.0",
        "Executes a read-only server-side Lua script.",
    ),
    CommandSpec::new("evalsha_ro", -3, SCRIPT_FLAGS | READONLY, KeySpec::NONE, evalsha_ro).doc(
        "scripting",
        "7.0.0",
        "Executes a read-only server-side Lua script by SHA1 digest.",
    ),
    CommandSpec::new("fcall", -3, EVAL_FLAGS, KeySpec::NONE, fcall).doc("scripting", "7.0.0", "Invokes a function."),
    CommandSpec::new("fcall_ro", -3, SCRIPT_FLAGS | READONLY, KeySpec::NONE, fcall_ro).doc(
        "scripting",
        "7.0.0",
        "Invokes a read-only function.",
    ),
    CommandSpec::container("function", FUNCTION_SUBCOMMANDS).doc(
        "scripting",
        "7.0.0",
        "A container for function commands.",
    ),
    CommandSpec::container("script", SCRIPT_SUBCOMMANDS).doc(
        "scripting",
        "2.6.0",
        "A container for Lua scripts management commands.",
    ),
];

static FUNCTION_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("load", -3, WRITE | DENYOOM | NOSCRIPT, KeySpec::NONE, function_load).doc(
        "scripting",
        "7.0.0",
        "Creates a library.",
    ),
    CommandSpec::new("delete", 3, WRITE | NOSCRIPT, KeySpec::NONE, function_delete).doc(
        "scripting",
        "7.0.0",
        "Deletes a library and its functions.",
    ),
    CommandSpec::new("list", -2, NOSCRIPT, KeySpec::NONE, function_list).doc(
        "scripting",
        "7.0.0",
        "Returns information about all libraries.",
    ),
    CommandSpec::new("flush", -2, WRITE | NOSCRIPT, KeySpec::NONE, function_flush).doc(
        "scripting",
        "7.0.0",
        "Deletes all libraries and functions.",
    ),
    CommandSpec::new("dump", 2, NOSCRIPT, KeySpec::NONE, function_dump).doc(
        "scripting",
        "7.0.0",
        "Dumps all libraries into a serialized binary payload.",
    ),
    CommandSpec::new("restore", -3, WRITE | DENYOOM | NOSCRIPT, KeySpec::NONE, function_restore).doc(
        "scripting",
        "7.0.0",
        "Restores all libraries from a payload.",
    ),
    CommandSpec::new("stats", 2, NOSCRIPT | ALLOW_BUSY, KeySpec::NONE, function_stats).doc(
        "scripting",
        "7.0.0",
        "Returns information about a function during execution.",
    ),
    CommandSpec::new("kill", 2, NOSCRIPT | ALLOW_BUSY, KeySpec::NONE, function_kill).doc(
        "scripting",
        "7.0.0",
        "Terminates a function during execution.",
    ),
    CommandSpec::new("help", 2, LOADING | STALE, KeySpec::NONE, function_help).doc(
        "scripting",
        "7.0.0",
        "Returns helpful text about the different subcommands.",
    ),
];

static SCRIPT_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("load", 3, NOSCRIPT | STALE, KeySpec::NONE, script_load).doc(
        "scripting",
        "2.6.0",
        "Loads a server-side Lua script to the script cache.",
    ),
    CommandSpec::new("exists", -3, NOSCRIPT, KeySpec::NONE, script_exists).doc(
        "scripting",
        "2.6.0",
        "Determines whether server-side Lua scripts exist in the script cache.",
    ),
    CommandSpec::new("flush", -2, NOSCRIPT, KeySpec::NONE, script_flush).doc(
        "scripting",
        "2.6.0",
        "Removes all server-side Lua scripts from the script cache.",
    ),
    CommandSpec::new("kill", 2, NOSCRIPT | ALLOW_BUSY, KeySpec::NONE, script_kill).doc(
        "scripting",
        "2.6.0",
        "Terminates a server-side Lua script during execution.",
    ),
    CommandSpec::new("debug", 3, NOSCRIPT, KeySpec::NONE, script_debug).doc(
        "scripting",
        "3.2.0",
        "Sets the debug mode of server-side Lua scripts.",
    ),
    CommandSpec::new("help", 2, LOADING | STALE, KeySpec::NONE, script_help).doc(
        "scripting",
        "5.0.0",
        "Returns helpful text about the different subcommands.",
    ),
];

/// A script's KEYS and ARGV.
pub type KeysAndArgs<'a> = (Vec<&'a [u8]>, Vec<&'a [u8]>);

/// `numkeys key ... arg ...`, as EVAL and FCALL take them.
pub fn split_keys<'a>(args: &mut Args<'a>) -> Result<KeysAndArgs<'a>, CmdError> {
    let n = args.next_i64()?;
    let rest = args.rest();
    if n < 0 {
        return Err(CmdError::Err("Number of keys can't be negative".into()));
    }
    if n as usize > rest.len() {
        return Err(CmdError::Err("Number of keys can't be greater than number of args".into()));
    }
    let (keys, argv) = rest.split_at(n as usize);
    Ok((keys.to_vec(), argv.to_vec()))
}

fn eval_generic(ctx: &mut Ctx<'_>, mut args: Args<'_>, by_sha: bool, read_only: bool) -> CmdResult {
    let script = args.next_arg()?;
    let (keys, argv) = split_keys(&mut args)?;
    let shared = ctx.shared;
    let script = if by_sha { Err(script) } else { Ok(script) };
    with_declared_keys(ctx, &keys, |ctx| shared.scripting.eval(ctx, script, &keys, &argv, read_only))
}

/// Runs a script with its declared keys on the client, for tracking: as in
/// Redis, a tracking client's script that calls any read-only command
/// makes it track the keys the script declared (see dispatch), not those
/// its commands happened to read.
fn with_declared_keys(ctx: &mut Ctx<'_>, keys: &[&[u8]], run: impl FnOnce(&mut Ctx<'_>) -> CmdResult) -> CmdResult {
    if crate::tracking::Tracking::records_reads(ctx.client) {
        ctx.client.script_keys = Some(keys.iter().map(|k| Bytes::copy_from_slice(k)).collect());
    }
    let reply = run(ctx);
    ctx.client.script_keys = None;
    reply
}

/// EVAL script numkeys [key ...] [arg ...]
fn eval(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    eval_generic(ctx, args, false, false)
}

/// EVALSHA sha1 numkeys [key ...] [arg ...]
fn evalsha(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    eval_generic(ctx, args, true, false)
}

/// EVAL_RO script numkeys [key ...] [arg ...]
fn eval_ro(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    eval_generic(ctx, args, false, true)
}

/// EVALSHA_RO sha1 numkeys [key ...] [arg ...]
fn evalsha_ro(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    eval_generic(ctx, args, true, true)
}

/// SCRIPT LOAD script
fn script_load(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let body = args.next_arg()?;
    Ok(Frame::bulk(ctx.shared.scripting.load(body)?))
}

/// SCRIPT DEBUG YES|SYNC|NO: how the client's next EVAL runs (see
/// `crate::ldb`).
fn script_debug(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let mode = args.next_arg()?;
    ctx.client.lua_debug = if eq_ic(mode, "no") {
        None
    } else if eq_ic(mode, "yes") {
        Some(crate::ldb::Mode::NoWrites)
    } else if eq_ic(mode, "sync") {
        Some(crate::ldb::Mode::Sync)
    } else {
        return Err(CmdError::Err("Use SCRIPT DEBUG YES/SYNC/NO".into()));
    };
    Ok(Frame::ok())
}

/// SCRIPT EXISTS sha1 [sha1 ...]
fn script_exists(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let found = args.rest().into_iter().map(|s| Frame::Integer(ctx.shared.scripting.exists(s) as i64));
    Ok(Frame::Array(found.collect()))
}

/// SCRIPT FLUSH [ASYNC|SYNC]
fn script_flush(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    if args.len() > 3 {
        return Err(subcommand_syntax("flush", "SCRIPT"));
    }
    let ok = match (args.next(), args.remaining()) {
        (None, _) => true,
        (Some(a), 0) => eq_ic(a, "async") || eq_ic(a, "sync"),
        _ => false,
    };
    if !ok {
        return Err(CmdError::Err("SCRIPT FLUSH only support SYNC|ASYNC option".into()));
    }
    ctx.shared.scripting.flush();
    Ok(Frame::ok())
}

/// SCRIPT KILL
fn script_kill(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    ctx.shared.scripting.kill(false)?;
    Ok(Frame::ok())
}

fn fcall_generic(ctx: &mut Ctx<'_>, mut args: Args<'_>, ro: bool) -> CmdResult {
    let command = args.all();
    let name = args.next_arg()?;
    // FCALL words a bad count its own way (EVAL's is the generic text).
    if args.peek().is_some_and(|n| super::parse_i64(n).is_err()) {
        return Err(CmdError::Err("Bad number of keys provided".into()));
    }
    let (keys, argv) = split_keys(&mut args)?;
    let shared = ctx.shared;
    with_declared_keys(ctx, &keys, |ctx| shared.scripting.fcall(ctx, name, &keys, &argv, ro, &command))
}

/// FCALL function numkeys [key ...] [arg ...]
fn fcall(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    fcall_generic(ctx, args, false)
}

/// FCALL_RO function numkeys [key ...] [arg ...]
fn fcall_ro(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    fcall_generic(ctx, args, true)
}

/// FUNCTION LOAD [REPLACE] function-code
fn function_load(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let mut replace = false;
    let mut code = args.next_arg()?;
    while args.remaining() > 0 {
        if !eq_ic(code, "replace") {
            return Err(CmdError::Err(format!("Unknown option given: {}", String::from_utf8_lossy(code))));
        }
        replace = true;
        code = args.next_arg()?;
    }
    let name = ctx.shared.scripting.function_load(code, replace)?;
    propagate(ctx, &args);
    Ok(Frame::bulk(name))
}

/// Function libraries are data that outlives a restart: a change goes to
/// the effect stream (the AOF, replicas) as the command that made it, as
/// Redis propagates FUNCTION LOAD, DELETE, FLUSH and RESTORE.
fn propagate(ctx: &Ctx<'_>, args: &Args<'_>) {
    ctx.shared.keyspace.effects.emit(ctx.db(), &args.all());
}

/// FUNCTION DELETE library-name
fn function_delete(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    ctx.shared.scripting.function_delete(args.next_arg()?)?;
    propagate(ctx, &args);
    Ok(Frame::ok())
}

/// FUNCTION FLUSH [ASYNC|SYNC]
fn function_flush(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    if args.len() > 3 {
        return Err(subcommand_syntax("flush", "FUNCTION"));
    }
    if let Some(a) = args.next() {
        if !(eq_ic(a, "async") || eq_ic(a, "sync")) {
            return Err(CmdError::Err("FUNCTION FLUSH only supports SYNC|ASYNC option".into()));
        }
    }
    ctx.shared.scripting.function_flush();
    propagate(ctx, &args);
    Ok(Frame::ok())
}

/// FUNCTION LIST [LIBRARYNAME library-name-pattern] [WITHCODE]
fn function_list(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let (mut pattern, mut with_code) = (None, false);
    while let Some(a) = args.next() {
        if eq_ic(a, "withcode") && !with_code {
            with_code = true;
        } else if eq_ic(a, "libraryname") && pattern.is_none() {
            pattern =
                Some(args.next().ok_or_else(|| CmdError::Err("library name argument was not given".into()))?.to_vec());
        } else {
            return Err(CmdError::Err(format!("Unknown argument {}", String::from_utf8_lossy(a))));
        }
    }
    let b = Frame::bulk_static;
    let libs = ctx.shared.scripting.with_libraries(|libs| {
        libs.iter()
            .filter(|(name, _)| pattern.as_ref().is_none_or(|p| larder_store::glob_match(p, name.as_bytes(), false)))
            .map(|(name, lib)| {
                let functions = lib
                    .functions
                    .iter()
                    .map(|f| {
                        Frame::Map(vec![
                            (b("name"), Frame::bulk(&f.name)),
                            (b("description"), f.description.as_ref().map_or(Frame::Null, Frame::bulk)),
                            (
                                b("flags"),
                                Frame::Set(
                                    f.flags
                                        .iter()
                                        .map(|x| Frame::Simple(Bytes::copy_from_slice(x.as_bytes())))
                                        .collect(),
                                ),
                            ),
                        ])
                    })
                    .collect();
                let mut m = vec![
                    (b("library_name"), Frame::bulk(name)),
                    (b("engine"), b("LUA")),
                    (b("functions"), Frame::Array(functions)),
                ];
                if with_code {
                    m.push((b("library_code"), Frame::Bulk(lib.code.clone())));
                }
                Frame::Map(m)
            })
            .collect()
    });
    Ok(Frame::Array(libs))
}

/// FUNCTION DUMP
fn function_dump(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    Ok(Frame::Bulk(ctx.shared.scripting.function_dump()))
}

/// FUNCTION RESTORE serialized-value [FLUSH|APPEND|REPLACE]
fn function_restore(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    if args.remaining() > 2 {
        return Err(CmdError::Err(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try FUNCTION HELP.",
            String::from_utf8_lossy(args.get(1))
        )));
    }
    let payload = args.next_arg()?;
    let policy = match args.next() {
        None => RestorePolicy::Append,
        Some(a) if eq_ic(a, "append") => RestorePolicy::Append,
        Some(a) if eq_ic(a, "replace") => RestorePolicy::Replace,
        Some(a) if eq_ic(a, "flush") => RestorePolicy::Flush,
        Some(_) => {
            return Err(CmdError::Err(
                "Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.".into(),
            ))
        }
    };
    ctx.shared.scripting.function_restore(payload, policy)?;
    propagate(ctx, &args);
    Ok(Frame::ok())
}

/// FUNCTION STATS
fn function_stats(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let scripting = &ctx.shared.scripting;
    if scripting.is_running() && scripting.running_function().is_none() {
        // An EVAL script runs: Redis answers with the BUSY error.
        return Err(scripting.busy_error());
    }
    let b = Frame::bulk_static;
    let running = match scripting.running_function() {
        None => Frame::Null,
        Some((name, cmd, ms)) => Frame::Map(vec![
            (b("name"), Frame::bulk(name)),
            (b("command"), Frame::Array(cmd.into_iter().map(Frame::Bulk).collect())),
            (b("duration_ms"), Frame::Integer(ms as i64)),
        ]),
    };
    let (libs, funcs) = scripting.function_counts();
    let lua = Frame::Map(vec![
        (b("libraries_count"), Frame::Integer(libs as i64)),
        (b("functions_count"), Frame::Integer(funcs as i64)),
    ]);
    Ok(Frame::Map(vec![(b("running_script"), running), (b("engines"), Frame::Map(vec![(b("LUA"), lua)]))]))
}

/// FUNCTION KILL
fn function_kill(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    ctx.shared.scripting.kill(true)?;
    Ok(Frame::ok())
}

/// FUNCTION HELP
fn function_help(_ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    Ok(help_reply(
        "FUNCTION",
        &[
            "LOAD [REPLACE] <FUNCTION CODE>",
            "    Create a new library with the given library name and code.",
            "DELETE <LIBRARY NAME>",
            "    Delete the given library.",
            "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
            "    Return general information on all the libraries:",
            "    * Library name",
            "    * The engine used to run the Library",
            "    * Library description",
            "    * Functions list",
            "    * Library code (if WITHCODE is given)",
            "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
            "STATS",
            "    Return information about the current function running:",
            "    * Function name",
            "    * Command used to run the function",
            "    * Duration in MS that the function is running",
            "    If no function is running, return nil",
            "    In addition, returns a list of available engines.",
            "KILL",
            "    Kill the current running function.",
            "FLUSH [ASYNC|SYNC]",
            "    Delete all the libraries.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the libraries.",
            "    * SYNC: Synchronously flush the libraries.",
            "DUMP",
            "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
            "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
            "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
            "    control how to handle existing libraries (default APPEND):",
            "    * FLUSH: delete all existing libraries.",
            "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
            "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
            "      libraries with the new libraries (notice that even on this option there is a chance of failure",
            "      in case of functions name collision with another library).",
        ],
    ))
}

/// SCRIPT HELP
fn script_help(_ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    Ok(help_reply(
        "SCRIPT",
        &[
            "EXISTS <sha1> [<sha1> ...]",
            "    Return information about the existence of the scripts in the script cache.",
            "FLUSH [ASYNC|SYNC]",
            "    Flush the Lua scripts cache. Very dangerous on replicas.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the scripts cache.",
            "    * SYNC: Synchronously flush the scripts cache.",
            "DEBUG (YES|SYNC|NO)",
            "    Set the debug mode for subsequent scripts executed.",
            "KILL",
            "    Kill the currently executing Lua script.",
            "LOAD <script>",
            "    Load a script into the scripts cache without executing it.",
        ],
    ))
}
