//! MODULE LIST, LOAD, LOADEX, UNLOAD and HELP.
//!
//! Larder has no module system: Redis modules are C libraries built
//! against Redis's own internals (its objects, its event loop, its
//! dictionaries), which Larder does not have. So the commands answer
//! truthfully, in Redis's shapes: no module is loaded, and a load fails
//! as Redis's does for a library it cannot load, behind the same
//! `enable-module-command` gate. Tools that list modules (as client
//! libraries do at connect time to find RedisJSON or RediSearch) get the
//! empty list a plain Redis gives.

use super::keys::help_reply;
use super::server::protected_command_refused;
use super::table::{flags::*, CommandSpec, KeySpec};
use super::{Args, CmdResult, Ctx};
use crate::error::CmdError;
use larder_protocol::Frame;

pub(super) static COMMANDS: &[CommandSpec] =
    &[CommandSpec::container("module", SUBCOMMANDS).doc("server", "4.0.0", "A container for module commands.")];

static SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("list", 2, ADMIN | NOSCRIPT, KeySpec::NONE, list).doc(
        "server",
        "4.0.0",
        "Returns all loaded modules.",
    ),
    CommandSpec::new("load", -3, ADMIN | NOSCRIPT | NO_ASYNC_LOADING, KeySpec::NONE, load).doc(
        "server",
        "4.0.0",
        "Loads a module.",
    ),
    CommandSpec::new("loadex", -3, ADMIN | NOSCRIPT | NO_ASYNC_LOADING, KeySpec::NONE, load).doc(
        "server",
        "7.0.0",
        "Loads a module using extended parameters.",
    ),
    CommandSpec::new("unload", 3, ADMIN | NOSCRIPT | NO_ASYNC_LOADING, KeySpec::NONE, unload).doc(
        "server",
        "4.0.0",
        "Unloads a module.",
    ),
    CommandSpec::new("help", 2, LOADING | STALE, KeySpec::NONE, help).doc(
        "server",
        "5.0.0",
        "Returns helpful text about the different subcommands.",
    ),
];

/// MODULE LIST: no module is ever loaded.
fn list(_ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    Ok(Frame::Array(Vec::new()))
}

/// MODULE LOAD path [arg ...] / LOADEX path [CONFIG name value ...] [ARGS
/// arg ...]: refused as Redis refuses a library it cannot load.
fn load(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    protected_command_refused(ctx, "MODULE", "enable-module-command")?;
    let path = String::from_utf8_lossy(args.next_arg()?).into_owned();
    tracing::warn!("Module {path} failed to load: Larder cannot load Redis modules");
    Err(CmdError::Err("Error loading the extension. Please check the server logs.".into()))
}

/// MODULE UNLOAD name: there is none by any name.
fn unload(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    protected_command_refused(ctx, "MODULE", "enable-module-command")?;
    Err(CmdError::Err("Error unloading module: no such module with that name".into()))
}

fn help(_ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    Ok(help_reply(
        "MODULE",
        &[
            "LIST",
            "    Return a list of loaded modules.",
            "LOAD <path> [<arg> ...]",
            "    Load a module library from <path>, passing to it any optional arguments.",
            "LOADEX <path> [[CONFIG NAME VALUE] [CONFIG NAME VALUE]] [ARGS ...]",
            "    Load a module library from <path>, while passing it module configurations and optional arguments.",
            "UNLOAD <name>",
            "    Unload a module.",
        ],
    ))
}
