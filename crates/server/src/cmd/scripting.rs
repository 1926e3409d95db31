//! EVAL, EVALSHA, their read-only forms, and SCRIPT: the command side of
//! Lua scripting (the engine is `crate::scripting`).

use super::keys::help_reply;
use super::table::{flags::*, CommandSpec, KeySpec};
use super::{eq_ic, Args, CmdResult, Ctx};
use crate::error::CmdError;
use larder_protocol::Frame;

const EVAL_FLAGS: u32 = NOSCRIPT | STALE | SKIP_MONITOR | NO_MANDATORY_KEYS | MOVABLEKEYS | EXCLUSIVE;

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
    CommandSpec::new("eval_ro", -3, EVAL_FLAGS | READONLY, KeySpec::NONE, eval_ro).doc(
        "scripting",
        "7.0.0",
        "Executes a read-only server-side Lua script.",
    ),
    CommandSpec::new("evalsha_ro", -3, EVAL_FLAGS | READONLY, KeySpec::NONE, evalsha_ro).doc(
        "scripting",
        "7.0.0",
        "Executes a read-only server-side Lua script by SHA1 digest.",
    ),
    CommandSpec::container("script", SCRIPT_SUBCOMMANDS).doc(
        "scripting",
        "2.6.0",
        "A container for Lua scripts management commands.",
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
    shared.scripting.eval(ctx, script, &keys, &argv, read_only)
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

/// SCRIPT EXISTS sha1 [sha1 ...]
fn script_exists(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let found = args.rest().into_iter().map(|s| Frame::Integer(ctx.shared.scripting.exists(s) as i64));
    Ok(Frame::Array(found.collect()))
}

/// SCRIPT FLUSH [ASYNC|SYNC]
fn script_flush(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
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
    ctx.shared.scripting.kill()?;
    Ok(Frame::ok())
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
            "KILL",
            "    Kill the currently executing Lua script.",
            "LOAD <script>",
            "    Load a script into the scripts cache without executing it.",
        ],
    ))
}
