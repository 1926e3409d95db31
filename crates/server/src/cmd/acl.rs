//! The ACL command: SETUSER, GETUSER, DELUSER, USERS, LIST, WHOAMI, CAT,
//! DRYRUN, GENPASS, LOG, SAVE, LOAD and HELP. The users themselves and the
//! permission checks live in acl.rs; this module only parses and replies.

use super::keys::help_reply;
use super::table::{flags::*, CommandSpec, KeySpec};
use super::{eq_ic, parse_i64, Args, CmdResult, Ctx};
use crate::error::CmdError;
use larder_protocol::Frame;

pub(super) static COMMANDS: &[CommandSpec] = &[CommandSpec::container("acl", ACL_SUBCOMMANDS).doc(
    "server",
    "6.0.0",
    "A container for Access List Control commands.",
)];

const ADMIN_ACL: u32 = ADMIN | NOSCRIPT | LOADING | STALE;
const PLAIN_ACL: u32 = NOSCRIPT | LOADING | STALE;

static ACL_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("setuser", -3, ADMIN_ACL, KeySpec::NONE, setuser).doc(
        "server",
        "6.0.0",
        "Creates and modifies an ACL user and its rules.",
    ),
    CommandSpec::new("getuser", 3, ADMIN_ACL, KeySpec::NONE, getuser).doc(
        "server",
        "6.0.0",
        "Lists the ACL rules of a user.",
    ),
    CommandSpec::new("deluser", -3, ADMIN_ACL, KeySpec::NONE, deluser).doc(
        "server",
        "6.0.0",
        "Deletes ACL users, and terminates their connections.",
    ),
    CommandSpec::new("users", 2, ADMIN_ACL, KeySpec::NONE, users).doc("server", "6.0.0", "Lists all ACL users."),
    CommandSpec::new("list", 2, ADMIN_ACL, KeySpec::NONE, list).doc(
        "server",
        "6.0.0",
        "Dumps the effective rules in ACL file format.",
    ),
    CommandSpec::new("whoami", 2, PLAIN_ACL, KeySpec::NONE, whoami).doc(
        "server",
        "6.0.0",
        "Returns the authenticated username of the current connection.",
    ),
    CommandSpec::new("cat", -2, PLAIN_ACL, KeySpec::NONE, cat).doc(
        "server",
        "6.0.0",
        "Lists the ACL categories, or the commands inside a category.",
    ),
    CommandSpec::new("dryrun", -4, ADMIN_ACL, KeySpec::NONE, dryrun).doc(
        "server",
        "7.0.0",
        "Simulates the execution of a command by a user, without executing the command.",
    ),
    CommandSpec::new("genpass", -2, PLAIN_ACL, KeySpec::NONE, genpass).doc(
        "server",
        "6.0.0",
        "Generates a pseudorandom, secure password that can be used to identify ACL users.",
    ),
    CommandSpec::new("log", -2, ADMIN_ACL, KeySpec::NONE, log).doc(
        "server",
        "6.0.0",
        "Lists recent security events generated due to ACL rules.",
    ),
    CommandSpec::new("save", 2, ADMIN_ACL, KeySpec::NONE, save).doc(
        "server",
        "6.0.0",
        "Saves the effective ACL rules in the configured ACL file.",
    ),
    CommandSpec::new("load", 2, ADMIN_ACL, KeySpec::NONE, load).doc(
        "server",
        "6.0.0",
        "Reloads the rules from the configured ACL file.",
    ),
    CommandSpec::new("help", 2, LOADING | STALE, KeySpec::NONE, help).doc(
        "server",
        "6.0.0",
        "Returns helpful text about the different subcommands.",
    ),
];

/// Redis refuses user names that would not survive an ACL file.
fn check_name(name: &[u8]) -> Result<(), CmdError> {
    if name.iter().any(|&c| c.is_ascii_whitespace() || c == 0) {
        return Err(CmdError::Err("Usernames can't contain spaces or null characters".into()));
    }
    Ok(())
}

/// ACL SETUSER username [rule ...]
fn setuser(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let name = args.next_arg()?;
    check_name(name)?;
    let rules = args.rest();
    ctx.shared.acl.set_user(name, &rules).map_err(|e| CmdError::Err(e.0))?;
    kill_revoked_subscribers(ctx, name);
    Ok(Frame::ok())
}

/// Redis's ACLKillPubsubClientsIfNeeded: a client of the user subscribed
/// to a channel or pattern its new rules no longer allow is disconnected
/// (it would otherwise go on receiving what it may no longer subscribe
/// to).
fn kill_revoked_subscribers(ctx: &mut Ctx<'_>, name: &[u8]) {
    use crate::pubsub::Kind;
    let Some(user) = ctx.shared.acl.get(name) else { return };
    let clients: Vec<_> =
        ctx.shared.clients.all().into_iter().filter(|c| c.meta.lock().user.as_bytes() == name).collect();
    if clients.is_empty() {
        return;
    }
    let subs = ctx.shared.pubsub.subscriptions_of(&clients.iter().map(|c| c.id).collect());
    for c in clients {
        let revoked = subs
            .get(&c.id)
            .is_some_and(|s| s.iter().any(|(kind, channel)| !user.channel_ok(channel, *kind == Kind::Pattern)));
        if revoked {
            super::connection::kill(ctx, &c);
        }
    }
}

/// ACL GETUSER username
fn getuser(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let Some(u) = ctx.shared.acl.get(args.next_arg()?) else { return Ok(Frame::Null) };
    Ok(Frame::Map(crate::acl::getuser_fields(&u).into_iter().map(|(k, v)| (Frame::bulk_static(k), v)).collect()))
}

/// ACL DELUSER username [username ...]
fn deluser(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let names = args.rest();
    if names.iter().any(|n| *n == b"default") {
        return Err(CmdError::Err("The 'default' user cannot be removed".into()));
    }
    let n = ctx.shared.acl.delete(&names);
    // Redis disconnects every client authenticated as a removed user.
    kill_clients_of(ctx, |user| names.contains(&user.as_bytes()));
    Ok(Frame::Integer(n as i64))
}

/// Disconnects every client authenticated as a user `gone` names.
fn kill_clients_of(ctx: &mut Ctx<'_>, gone: impl Fn(&str) -> bool) {
    for c in ctx.shared.clients.all() {
        let user = c.meta.lock().user.clone();
        if gone(&user) {
            super::connection::kill(ctx, &c);
        }
    }
}

/// ACL USERS
fn users(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    Ok(Frame::Array(ctx.shared.acl.names().into_iter().map(Frame::bulk).collect()))
}

/// ACL LIST
fn list(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    Ok(Frame::Array(ctx.shared.acl.all().iter().map(|u| Frame::bulk(u.describe())).collect()))
}

/// ACL WHOAMI
fn whoami(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    Ok(Frame::bulk(ctx.client.user.name.clone()))
}

/// ACL CAT [category]
fn cat(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let Some(name) = args.next() else {
        return Ok(Frame::Array(crate::acl::CATEGORIES.iter().map(|c| Frame::bulk_static(c)).collect()));
    };
    if args.remaining() > 0 {
        return Err(super::subcommand_syntax(&String::from_utf8_lossy(args.get(1)), "ACL"));
    }
    let lower = String::from_utf8_lossy(name).to_ascii_lowercase();
    let names = ctx
        .shared
        .acl
        .category_commands(&lower)
        .ok_or_else(|| CmdError::Err(format!("Unknown category '{}'", String::from_utf8_lossy(name))))?;
    Ok(Frame::Array(names.into_iter().map(Frame::bulk).collect()))
}

/// ACL DRYRUN username command [arg ...]
fn dryrun(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let name = args.next_arg()?;
    let user = ctx
        .shared
        .acl
        .get(name)
        .ok_or_else(|| CmdError::Err(format!("User '{}' not found", String::from_utf8_lossy(name))))?;
    let argv = args.rest();
    let not_found = || CmdError::Err(format!("Command '{}' not found", String::from_utf8_lossy(argv[0])));
    let cmd = ctx.shared.commands.resolve(&argv).ok_or_else(not_found)?;
    let (arity, argc) = (cmd.spec.arity, argv.len() as i32);
    if (arity > 0 && arity != argc) || argc < -arity {
        return Err(CmdError::WrongArity(cmd.full_name.clone()));
    }
    Ok(match user.check(cmd, &argv) {
        Ok(()) => Frame::ok(),
        Err(d) => Frame::bulk(d.verbose(&user.name, &cmd.full_name)),
    })
}

/// ACL GENPASS [bits]
fn genpass(_ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let bits = match args.next() {
        Some(b) => parse_i64(b).ok().filter(|n| (1..=4096).contains(n)).ok_or_else(|| {
            CmdError::Err(
                "ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096"
                    .into(),
            )
        })?,
        None => 256,
    };
    args.finish()?;
    let chars = (bits as usize).div_ceil(4);
    let mut bytes = vec![0u8; chars.div_ceil(2)];
    rand::fill(&mut bytes[..]);
    let hex = crate::digest::hex(&bytes);
    Ok(Frame::bulk(&hex[..chars]))
}

/// ACL LOG [count | RESET]
fn log(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let mut count = 10usize;
    if let Some(a) = args.next() {
        if eq_ic(a, "reset") {
            ctx.shared.acl.reset_log();
            return Ok(Frame::ok());
        }
        count = parse_i64(a)
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| CmdError::Err("value is out of range, must be positive".into()))? as usize;
    }
    args.finish()?;
    let now = ctx.shared.clock.now_ms();
    let entries = ctx.shared.acl.with_log(|log| {
        log.iter()
            .take(count)
            .map(|e| {
                let kv = |k: &'static str, v: Frame| (Frame::bulk_static(k), v);
                Frame::Map(vec![
                    kv("count", Frame::Integer(e.count as i64)),
                    kv("reason", Frame::bulk_static(e.reason)),
                    kv("context", Frame::bulk_static(e.context)),
                    kv("object", Frame::bulk(e.object.clone())),
                    kv("username", Frame::bulk(e.username.clone())),
                    kv("age-seconds", Frame::Double(now.saturating_sub(e.created_ms) as f64 / 1000.0)),
                    kv("client-info", Frame::bulk(e.client_info.clone())),
                    kv("entry-id", Frame::Integer(e.entry_id as i64)),
                    kv("timestamp-created", Frame::Integer(e.created_ms as i64)),
                    kv("timestamp-last-updated", Frame::Integer(e.updated_ms as i64)),
                ])
            })
            .collect()
    });
    Ok(Frame::Array(entries))
}

/// The `aclfile` ACL LOAD and ACL SAVE use, or Redis's error without one.
fn acl_file(ctx: &Ctx<'_>) -> Result<String, CmdError> {
    let file = ctx.shared.config.read().extra("aclfile").to_string();
    if file.is_empty() {
        return Err(CmdError::Err("This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.".into()));
    }
    Ok(file)
}

/// ACL LOAD: every user replaced by the file's, all or nothing; clients
/// of users that changed or went are disconnected.
fn load(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let file = acl_file(ctx)?;
    let text = std::fs::read_to_string(&file).map_err(|e| {
        CmdError::Err(format!("Error loading ACLs, opening file '{file}': {}", super::os_error_text(&e)))
    })?;
    let changed = ctx.shared.acl.load_file(&text, &file).map_err(CmdError::Err)?;
    kill_clients_of(ctx, |user| changed.iter().any(|c| c == user));
    Ok(Frame::ok())
}

/// ACL SAVE: a `user` line per user into the file, replaced whole
/// through a synced temporary file.
fn save(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let file = acl_file(ctx)?;
    let path = std::path::Path::new(&file);
    let tmp = path.with_file_name(format!(".larder-acl-{}.tmp", std::process::id()));
    crate::snapshot::replace_file(path, &tmp, ctx.shared.acl.file_text().as_bytes()).map_err(|e| {
        tracing::warn!("Writing ACL file for ACL SAVE: {e}");
        CmdError::Err(
            "There was an error trying to save the ACLs. Please check the server logs for more information".into(),
        )
    })?;
    Ok(Frame::ok())
}

/// ACL HELP
fn help(_ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    Ok(help_reply(
        "ACL",
        &[
            "CAT [<category>]",
            "    List all commands that belong to <category>, or all command categories",
            "    when no category is specified.",
            "DELUSER <username> [<username> ...]",
            "    Delete a list of users.",
            "DRYRUN <username> <command> [<arg> ...]",
            "    Returns whether the user can execute the given command without executing the command.",
            "GETUSER <username>",
            "    Get the user's details.",
            "GENPASS [<bits>]",
            "    Generate a secure 256-bit user password. The optional `bits` argument can",
            "    be used to specify a different size.",
            "LIST",
            "    Show users details in config file format.",
            "LOAD",
            "    Reload users from the ACL file.",
            "LOG [<count> | RESET]",
            "    Show the ACL log entries.",
            "SAVE",
            "    Save the current config to the ACL file.",
            "SETUSER <username> <attribute> [<attribute> ...]",
            "    Create or modify a user with the specified attributes.",
            "USERS",
            "    List all the registered usernames.",
            "WHOAMI",
            "    Return the current connection username.",
        ],
    ))
}
