//! Connection commands: PING, ECHO, QUIT, RESET, AUTH, HELLO and CLIENT.

use super::keys::help_reply;
use super::table::{flags::*, CommandSpec, KeySpec};
use super::{eq_ic, parse_i64, Args, CmdResult, Ctx};
use crate::conn::client::ClientInfo;
use crate::error::CmdError;
use bytes::Bytes;
use larder_protocol::{Frame, Proto};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// The Redis version we report, so clients enable the features we have.
pub const REDIS_VERSION: &str = "7.2.4";

const CONN: u32 = LOADING | STALE | FAST;

/// Client types CLIENT LIST and CLIENT KILL accept; Larder has only "normal"
/// clients so far.
const CLIENT_TYPES: [&str; 5] = ["normal", "master", "replica", "slave", "pubsub"];

pub(super) static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("ping", -1, FAST, KeySpec::NONE, ping).doc(
        "connection",
        "1.0.0",
        "Returns the server's liveliness response.",
    ),
    CommandSpec::new("echo", 2, LOADING | STALE | FAST, KeySpec::NONE, echo).doc(
        "connection",
        "1.0.0",
        "Returns the given string.",
    ),
    CommandSpec::new("quit", -1, ALLOW_BUSY | NOSCRIPT | CONN | NO_AUTH | TX_CONTROL, KeySpec::NONE, quit).doc(
        "connection",
        "1.0.0",
        "Closes the connection.",
    ),
    CommandSpec::new("reset", 1, NOSCRIPT | CONN | NO_AUTH | ALLOW_BUSY | TX_CONTROL, KeySpec::NONE, reset).doc(
        "connection",
        "6.2.0",
        "Resets the connection.",
    ),
    CommandSpec::new("auth", -2, NOSCRIPT | CONN | NO_AUTH | ALLOW_BUSY, KeySpec::NONE, auth).doc(
        "connection",
        "1.0.0",
        "Authenticates the connection.",
    ),
    CommandSpec::new("hello", -1, NOSCRIPT | CONN | NO_AUTH | ALLOW_BUSY, KeySpec::NONE, hello).doc(
        "connection",
        "6.0.0",
        "Handshakes with the Redis server.",
    ),
    CommandSpec::container("client", CLIENT_SUBCOMMANDS).doc(
        "connection",
        "2.4.0",
        "A container for client connection commands.",
    ),
];

static CLIENT_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("id", 2, NOSCRIPT | LOADING | STALE, KeySpec::NONE, client_id).doc(
        "connection",
        "5.0.0",
        "Returns the unique client ID of the connection.",
    ),
    CommandSpec::new("setname", 3, NOSCRIPT | LOADING | STALE, KeySpec::NONE, client_setname).doc(
        "connection",
        "2.6.9",
        "Sets the connection name.",
    ),
    CommandSpec::new("getname", 2, NOSCRIPT | LOADING | STALE, KeySpec::NONE, client_getname).doc(
        "connection",
        "2.6.9",
        "Returns the name of the connection.",
    ),
    CommandSpec::new("list", -2, ADMIN | NOSCRIPT | LOADING | STALE, KeySpec::NONE, client_list).doc(
        "connection",
        "2.4.0",
        "Lists open connections.",
    ),
    CommandSpec::new("info", 2, NOSCRIPT | LOADING | STALE, KeySpec::NONE, client_info).doc(
        "connection",
        "6.2.0",
        "Returns information about the connection.",
    ),
    CommandSpec::new("kill", -3, ADMIN | NOSCRIPT | LOADING | STALE, KeySpec::NONE, client_kill).doc(
        "connection",
        "2.4.0",
        "Terminates open connections.",
    ),
    CommandSpec::new("setinfo", 4, NOSCRIPT | LOADING | STALE, KeySpec::NONE, client_setinfo).doc(
        "connection",
        "7.2.0",
        "Sets information specific to the client or connection.",
    ),
    CommandSpec::new("tracking", -3, NOSCRIPT | LOADING | STALE, KeySpec::NONE, client_tracking).doc(
        "connection",
        "6.0.0",
        "Controls server-assisted client-side caching for the connection.",
    ),
    CommandSpec::new("caching", 3, NOSCRIPT | LOADING | STALE, KeySpec::NONE, client_caching).doc(
        "connection",
        "6.0.0",
        "Instructs the server whether to track the keys in the next request.",
    ),
    CommandSpec::new("getredir", 2, NOSCRIPT | LOADING | STALE, KeySpec::NONE, client_getredir).doc(
        "connection",
        "6.0.0",
        "Returns the client ID to which the connection's tracking notifications are redirected.",
    ),
    CommandSpec::new("trackinginfo", 2, NOSCRIPT | LOADING | STALE, KeySpec::NONE, client_trackinginfo).doc(
        "connection",
        "6.2.0",
        "Returns information about server-assisted client-side caching for the connection.",
    ),
    CommandSpec::new("no-evict", 3, ADMIN | NOSCRIPT | LOADING | STALE, KeySpec::NONE, client_no_evict).doc(
        "connection",
        "7.0.0",
        "Sets the client eviction mode of the connection.",
    ),
    CommandSpec::new("no-touch", 3, NOSCRIPT | LOADING | STALE, KeySpec::NONE, client_no_touch).doc(
        "connection",
        "7.2.0",
        "Controls whether commands sent by the client affect the LRU/LFU of accessed keys.",
    ),
    CommandSpec::new("unblock", -3, ADMIN | NOSCRIPT | LOADING | STALE, KeySpec::NONE, client_unblock).doc(
        "connection",
        "5.0.0",
        "Unblocks a client blocked by a blocking command from a different connection.",
    ),
    CommandSpec::new("pause", -3, ADMIN | NOSCRIPT | LOADING | STALE, KeySpec::NONE, client_pause).doc(
        "connection",
        "3.0.0",
        "Suspends commands processing.",
    ),
    CommandSpec::new("unpause", 2, ADMIN | NOSCRIPT | LOADING | STALE, KeySpec::NONE, client_unpause).doc(
        "connection",
        "6.2.0",
        "Resumes processing commands from paused clients.",
    ),
    CommandSpec::new("reply", 3, NOSCRIPT | LOADING | STALE, KeySpec::NONE, client_reply).doc(
        "connection",
        "3.2.0",
        "Instructs the server whether to reply to commands.",
    ),
    CommandSpec::new("help", 2, LOADING | STALE, KeySpec::NONE, client_help).doc(
        "connection",
        "5.0.0",
        "Returns helpful text about the different subcommands.",
    ),
];

/// PING [message]
fn ping(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    if args.len() > 2 {
        return Err(CmdError::WrongArity("ping".into()));
    }
    // A RESP2 subscriber gets PING's answer shaped like a message.
    if ctx.client.in_subscribed_mode() {
        return Ok(Frame::Array(vec![Frame::bulk_static("pong"), Frame::bulk(args.next().unwrap_or(b""))]));
    }
    Ok(match args.next() {
        Some(m) => Frame::bulk(m),
        None => Frame::simple("PONG"),
    })
}

/// ECHO message
fn echo(_ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    Ok(Frame::bulk(args.next_arg()?))
}

/// QUIT
fn quit(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    ctx.client.close_after_reply = true;
    Ok(Frame::ok())
}

/// RESET: the connection's state back to a new one's, as Redis's
/// clearClientConnectionState (MONITOR and tracking end too).
fn reset(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    if ctx.client.info.monitor.swap(false, Relaxed) {
        ctx.shared.monitors.remove(ctx.client.id());
    }
    ctx.shared.tracking.disable(ctx.client);
    ctx.client.reply_mode = crate::conn::client::ReplyMode::On;
    for (kind, what) in [
        (crate::pubsub::Kind::Channel, "unsubscribe"),
        (crate::pubsub::Kind::Pattern, "punsubscribe"),
        (crate::pubsub::Kind::Shard, "sunsubscribe"),
    ] {
        super::pubsub::unsub(ctx, Vec::new(), kind, what, false);
    }
    ctx.client.multi = None;
    ctx.client.publish_multi();
    ctx.client.multi_error = false;
    super::transaction::unwatch_all(ctx);
    ctx.client.set_db(0);
    ctx.client.set_proto(Proto::Resp2);
    // Back to the default user, authenticated only if it needs no password.
    let default = ctx.shared.acl.default_user();
    ctx.client.authenticated = default.enabled && default.nopass;
    ctx.client.info.meta.lock().user.clone_from(&default.name);
    ctx.client.user = default;
    ctx.client.info.no_evict.store(false, Relaxed);
    let mut meta = ctx.client.info.meta.lock();
    meta.name = None;
    Ok(Frame::simple("RESET"))
}

/// Checks a username/password pair against the ACL users; a failure is
/// logged to ACL LOG, as Redis does.
fn check_credentials(ctx: &Ctx<'_>, user: &[u8], pass: &[u8]) -> Result<Arc<crate::acl::User>, CmdError> {
    ctx.shared.acl.authenticate(user, pass).ok_or_else(|| {
        let info = client_line(ctx.client, ctx.shared.uptime_ms(), 0);
        let name = String::from_utf8_lossy(user).into_owned();
        ctx.shared.acl.log(
            "auth",
            "toplevel",
            "AUTH".into(),
            name,
            info.trim_end().to_string(),
            ctx.shared.clock.now_ms(),
        );
        CmdError::WrongPass
    })
}

/// AUTH [username] password
fn auth(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::Syntax);
    }
    let (user, pass) = if args.len() == 3 {
        (args.next_arg()?, args.next_arg()?)
    } else {
        if ctx.shared.acl.default_user().nopass {
            return Err(CmdError::AuthNotConfigured);
        }
        (&b"default"[..], args.next_arg()?)
    };
    let user = check_credentials(ctx, user, pass)?;
    ctx.client.log_in(user);
    Ok(Frame::ok())
}

/// Redis's client-name rule: printable ASCII without spaces.
fn valid_name(name: &[u8]) -> bool {
    name.iter().all(|&c| (b'!'..=b'~').contains(&c))
}

/// HELLO [protover [AUTH username password] [SETNAME clientname]]
fn hello(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let mut proto = None;
    if let Some(v) = args.next() {
        let n = parse_i64(v).map_err(|_| CmdError::Err("Protocol version is not an integer or out of range".into()))?;
        if !(2..=3).contains(&n) {
            return Err(CmdError::NoProto);
        }
        proto = Some(if n == 3 { Proto::Resp3 } else { Proto::Resp2 });
    }
    let (mut creds, mut name) = (None, None);
    while let Some(opt) = args.next() {
        if eq_ic(opt, "auth") && args.remaining() >= 2 {
            creds = Some((args.next_arg()?, args.next_arg()?));
        } else if eq_ic(opt, "setname") && args.remaining() >= 1 {
            let n = args.next_arg()?;
            if !valid_name(n) {
                return Err(CmdError::BadClientName);
            }
            name = Some(n);
        } else {
            return Err(CmdError::Err(format!("Syntax error in HELLO option '{}'", String::from_utf8_lossy(opt))));
        }
    }
    if let Some((user, pass)) = creds {
        let user = check_credentials(ctx, user, pass)?;
        ctx.client.log_in(user);
    }
    if !ctx.client.authenticated {
        return Err(CmdError::Raw("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time".into()));
    }
    if let Some(n) = name {
        ctx.client.info.meta.lock().name = (!n.is_empty()).then(|| Bytes::copy_from_slice(n));
    }
    if let Some(p) = proto {
        ctx.client.set_proto(p);
    }
    let kv = |k: &'static str, v: Frame| (Frame::bulk_static(k), v);
    Ok(Frame::Map(vec![
        kv("server", Frame::bulk_static("redis")),
        kv("version", Frame::bulk_static(REDIS_VERSION)),
        kv("proto", Frame::Integer(if ctx.client.proto == Proto::Resp3 { 3 } else { 2 })),
        kv("id", Frame::Integer(ctx.client.id() as i64)),
        kv("mode", Frame::bulk_static("standalone")),
        kv("role", Frame::bulk_static(if ctx.shared.replication.is_replica() { "replica" } else { "master" })),
        kv("modules", Frame::Array(vec![])),
    ]))
}

/// CLIENT ID
fn client_id(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    Ok(Frame::Integer(ctx.client.id() as i64))
}

/// CLIENT SETNAME connection-name
fn client_setname(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let name = args.next_arg()?;
    if !valid_name(name) {
        return Err(CmdError::BadClientName);
    }
    ctx.client.info.meta.lock().name = (!name.is_empty()).then(|| Bytes::copy_from_slice(name));
    Ok(Frame::ok())
}

/// CLIENT GETNAME
fn client_getname(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    Ok(ctx.client.info.meta.lock().name.clone().map(Frame::Bulk).unwrap_or(Frame::Null))
}

/// The running client's own line of CLIENT INFO (and of ACL LOG's
/// `client-info`): `argv` is the running command's arguments' bytes.
pub(crate) fn client_line(client: &crate::conn::client::Client, uptime_ms: u64, argv: u64) -> String {
    client_line_of(&client.info, &client.outbox, uptime_ms, &[], "normal", Some(argv))
}

/// One line of CLIENT LIST / CLIENT INFO, with Redis 7.2's fields, for a
/// client of type `kind` (flags S and M). `argv` is given for the client
/// running the command; another shows the arguments of a command it
/// waits to run (blocked or paused), else 0, as in Redis.
///
/// The buffers are Larder's, which are not Redis's: `qbuf`/`qbuf-free`
/// are the query buffer's use and room; `rbs` the reply buffer's size
/// and `rbp` the most one batch of replies took of it lately; `obl` the
/// reply bytes a write still waits to send; `oll` and `omem` the messages
/// (pub/sub, invalidations, MONITOR) queued for the client in one buffer,
/// so `oll` is 1 while it holds any.
fn client_line_of(
    c: &ClientInfo,
    outbox: &crate::pubsub::Outbox,
    uptime_ms: u64,
    blocked: &[u64],
    kind: &str,
    argv: Option<u64>,
) -> String {
    let m = c.meta.lock().clone();
    let s = |b: &Option<Bytes>| b.as_ref().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
    let idle = uptime_ms.saturating_sub(c.last_interaction.load(Relaxed)) / 1000;
    let multi = c.multi.load(Relaxed);
    let subs = c.subs.each_ref().map(|n| n.load(Relaxed));
    let redir = c.redir.load(Relaxed);
    let (obl, omem) = (c.obl.load(Relaxed), outbox.queued());
    // Redis's order: O or S, M, P, x, b, t, B, e, then T.
    let mut flags = String::new();
    match kind {
        "replica" => flags.push('S'),
        "master" => flags.push('M'),
        _ if c.monitor.load(Relaxed) => flags.push('O'),
        _ => {}
    }
    if subs.iter().any(|&n| n > 0) {
        flags.push('P');
    }
    if multi >= 0 {
        flags.push('x');
    }
    if blocked.contains(&c.id) {
        flags.push('b');
    }
    if redir >= 0 {
        flags.push('t');
    }
    if c.bcast.load(Relaxed) {
        flags.push('B');
    }
    if c.addr.is_unix() {
        flags.push('U');
    }
    if c.no_evict.load(Relaxed) {
        flags.push('e');
    }
    if c.no_touch.load(Relaxed) {
        flags.push('T');
    }
    if flags.is_empty() {
        flags.push('N');
    }
    format!(
        "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} qbuf={} qbuf-free={} argv-mem={} multi-mem={} rbs={} rbp={} obl={} oll={} omem={} tot-mem={} events={} cmd={} user={} redir={} resp={} lib-name={} lib-ver={}\n",
        c.id,
        c.addr,
        c.laddr,
        c.fd,
        s(&m.name),
        c.created.elapsed().as_secs(),
        idle,
        flags,
        m.db,
        subs[0],
        subs[1],
        subs[2],
        multi,
        c.qbuf.load(Relaxed),
        c.qbuf_free.load(Relaxed),
        argv.unwrap_or_else(|| c.argv_mem.load(Relaxed)),
        c.multi_mem.load(Relaxed),
        c.rbs.load(Relaxed),
        c.rbp.load(Relaxed),
        obl,
        (omem > 0) as u8,
        omem,
        c.live_mem(outbox),
        // Readable always; writable while replies wait on the socket.
        if obl > 0 || omem > 0 { "rw" } else { "r" },
        m.last_cmd,
        m.user,
        redir,
        m.resp,
        s(&m.lib_name),
        s(&m.lib_ver),
    )
}

fn verbatim(text: String) -> Frame {
    Frame::Verbatim { format: *b"txt", text: Bytes::from(text) }
}

/// Which connections are replicas and which one applies the primary's
/// stream: replication knows; the rest are normal. Larder does not mark
/// connections in pub/sub mode, so TYPE pubsub selects none.
struct ClientTypes {
    replicas: Vec<u64>,
    master: Option<u64>,
}

impl ClientTypes {
    fn now(shared: &crate::Shared) -> ClientTypes {
        let master = shared.replication.upstream.link().map(|l| l.client_id.load(Relaxed)).filter(|&id| id != 0);
        ClientTypes { replicas: shared.replication.replica_ids(), master }
    }

    fn of(&self, id: u64) -> &'static str {
        if self.replicas.contains(&id) {
            "replica"
        } else if self.master == Some(id) {
            "master"
        } else {
            "normal"
        }
    }
}

/// A TYPE argument, `slave` read as `replica`.
fn client_type_arg(t: &[u8]) -> Result<&'static str, CmdError> {
    match CLIENT_TYPES.iter().find(|n| eq_ic(t, n)) {
        Some(&"slave") => Ok("replica"),
        Some(n) => Ok(n),
        None => Err(CmdError::Err(format!("Unknown client type '{}'", String::from_utf8_lossy(t)))),
    }
}

/// CLIENT LIST [TYPE NORMAL|MASTER|REPLICA|PUBSUB] [ID client-id ...]
fn client_list(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let argv = args.request_len();
    let mut ids: Option<Vec<u64>> = None;
    let mut kind = None;
    while let Some(a) = args.next() {
        if eq_ic(a, "type") {
            kind = Some(client_type_arg(args.next_arg()?)?);
        } else if eq_ic(a, "id") {
            let mut v = Vec::new();
            while let Some(id) = args.next() {
                let n =
                    parse_i64(id).ok().filter(|n| *n > 0).ok_or_else(|| CmdError::Err("Invalid client ID".into()))?;
                v.push(n as u64);
            }
            if v.is_empty() {
                return Err(CmdError::Syntax);
            }
            ids = Some(v);
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let uptime = ctx.shared.uptime_ms();
    let blocked = ctx.shared.blocking.blocked_clients();
    let types = ClientTypes::now(ctx.shared);
    let me = ctx.client.info.id;
    let text: String = ctx
        .shared
        .clients
        .all_with_outboxes()
        .iter()
        .filter(|(c, _)| kind.is_none_or(|k| k == types.of(c.id)) && ids.as_ref().is_none_or(|ids| ids.contains(&c.id)))
        .map(|(c, outbox)| {
            let own = (c.id == me).then_some(argv);
            client_line_of(c, outbox, uptime, &blocked, types.of(c.id), own)
        })
        .collect();
    Ok(verbatim(text))
}

/// CLIENT INFO
fn client_info(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    Ok(verbatim(client_line(ctx.client, ctx.shared.uptime_ms(), args.request_len())))
}

/// Which clients a CLIENT KILL filter selects.
#[derive(Default)]
struct KillFilter {
    id: Option<u64>,
    addr: Option<String>,
    laddr: Option<String>,
    user: Option<String>,
    kind: Option<&'static str>,
    skipme: bool,
    maxage: Option<u64>,
}

impl KillFilter {
    fn matches(&self, c: &ClientInfo, me: u64, types: &ClientTypes) -> bool {
        (!self.skipme || c.id != me)
            && self.id.is_none_or(|id| id == c.id)
            && self.addr.as_ref().is_none_or(|a| *a == c.addr.to_string())
            && self.laddr.as_ref().is_none_or(|a| *a == c.laddr.to_string())
            && self.user.as_ref().is_none_or(|u| *u == c.meta.lock().user)
            && self.kind.is_none_or(|k| k == types.of(c.id))
            && self.maxage.is_none_or(|age| c.created.elapsed().as_secs() >= age)
    }
}

/// CLIENT KILL ip:port | CLIENT KILL <filter> <value> [...]
fn client_kill(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let me = ctx.client.id();
    if args.len() == 3 {
        let addr = String::from_utf8_lossy(args.next_arg()?).into_owned();
        let target = ctx.shared.clients.all().into_iter().find(|c| c.addr.to_string() == addr);
        let Some(c) = target else { return Err(CmdError::NoSuchClient) };
        kill(ctx, &c);
        return Ok(Frame::ok());
    }
    let mut f = KillFilter { skipme: true, ..Default::default() };
    while let Some(name) = args.next() {
        let value = args.next_arg()?;
        let text = String::from_utf8_lossy(value).into_owned();
        if eq_ic(name, "id") {
            let id = parse_i64(value).ok().filter(|n| *n > 0);
            f.id = Some(id.ok_or_else(|| CmdError::Err("client-id should be greater than 0".into()))? as u64);
        } else if eq_ic(name, "addr") {
            f.addr = Some(text);
        } else if eq_ic(name, "laddr") {
            f.laddr = Some(text);
        } else if eq_ic(name, "user") {
            if ctx.shared.acl.get(value).is_none() {
                return Err(CmdError::Err(format!("No such user '{text}'")));
            }
            f.user = Some(text);
        } else if eq_ic(name, "type") {
            f.kind = Some(client_type_arg(value)?);
        } else if eq_ic(name, "skipme") {
            f.skipme = match () {
                _ if eq_ic(value, "yes") => true,
                _ if eq_ic(value, "no") => false,
                _ => return Err(CmdError::Syntax),
            };
        } else if eq_ic(name, "maxage") {
            f.maxage = Some(parse_i64(value)?.max(0) as u64);
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let types = ClientTypes::now(ctx.shared);
    let victims: Vec<Arc<ClientInfo>> =
        ctx.shared.clients.all().into_iter().filter(|c| f.matches(c, me, &types)).collect();
    for c in &victims {
        kill(ctx, c);
    }
    Ok(Frame::Integer(victims.len() as i64))
}

/// Disconnects `c` (CLIENT KILL, ACL DELUSER, a revoked subscriber):
/// another client at once, the caller after its reply.
pub(super) fn kill(ctx: &mut Ctx<'_>, c: &ClientInfo) {
    if c.id == ctx.client.id() {
        // Killing oneself: the reply still goes out, then the connection closes.
        ctx.client.close_after_reply = true;
    } else {
        c.kill();
    }
}

/// CLIENT SETINFO <LIB-NAME libname | LIB-VER libver>
fn client_setinfo(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let attr = args.next_arg()?;
    let value = args.next_arg()?;
    let is_name = eq_ic(attr, "lib-name");
    if !is_name && !eq_ic(attr, "lib-ver") {
        return Err(CmdError::Err(format!("Unrecognized option '{}'", String::from_utf8_lossy(attr))));
    }
    if !valid_name(value) {
        let which = if is_name { "lib-name" } else { "lib-ver" };
        return Err(CmdError::Err(format!("{which} cannot contain spaces, newlines or special characters.")));
    }
    let v = (!value.is_empty()).then(|| Bytes::copy_from_slice(value));
    let mut meta = ctx.client.info.meta.lock();
    if is_name {
        meta.lib_name = v;
    } else {
        meta.lib_ver = v;
    }
    Ok(Frame::ok())
}

/// A mode's ON or OFF (any case), else a syntax error.
fn on_off(v: &[u8]) -> Result<bool, CmdError> {
    match () {
        _ if eq_ic(v, "on") => Ok(true),
        _ if eq_ic(v, "off") => Ok(false),
        _ => Err(CmdError::Syntax),
    }
}

/// CLIENT NO-EVICT ON|OFF
fn client_no_evict(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    ctx.client.info.no_evict.store(on_off(args.next_arg()?)?, Relaxed);
    Ok(Frame::ok())
}

/// CLIENT NO-TOUCH ON|OFF: whether the client's reads and writes leave
/// the keys' LRU/LFU clocks (and the SIEVE bit) as they were. TOUCH
/// still touches (cmd/keys.rs).
fn client_no_touch(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    ctx.client.info.no_touch.store(on_off(args.next_arg()?)?, Relaxed);
    Ok(Frame::ok())
}

/// CLIENT UNBLOCK client-id [TIMEOUT|ERROR]: 1 if that client was
/// blocked (it gets its timeout reply, or an -UNBLOCKED error), else 0.
fn client_unblock(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    use crate::blocking::Unblock;
    let id = super::parse_i64(args.next_arg()?)?;
    let how = match args.next() {
        None => Unblock::Timeout,
        Some(a) if eq_ic(a, "timeout") && args.remaining() == 0 => Unblock::Timeout,
        Some(a) if eq_ic(a, "error") && args.remaining() == 0 => Unblock::Error,
        Some(_) => return Err(CmdError::Err("CLIENT UNBLOCK reason should be TIMEOUT or ERROR".into())),
    };
    Ok(Frame::Integer(ctx.shared.blocking.unblock(id as u64, how) as i64))
}

/// CLIENT PAUSE timeout [WRITE|ALL] (ALL by default): see pause.rs.
fn client_pause(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    use crate::pause::Mode;
    let timeout = args.next_arg()?;
    // Redis checks the mode before the timeout.
    let mode = match args.next() {
        None => Mode::All,
        Some(a) if eq_ic(a, "write") && args.remaining() == 0 => Mode::Write,
        Some(a) if eq_ic(a, "all") && args.remaining() == 0 => Mode::All,
        Some(_) if args.remaining() > 0 => {
            return Err(super::subcommand_syntax(&String::from_utf8_lossy(args.get(1)), "CLIENT"))
        }
        Some(_) => return Err(CmdError::Err("CLIENT PAUSE mode must be WRITE or ALL".into())),
    };
    let ms =
        super::parse_i64(timeout).map_err(|_| CmdError::Err("timeout is not an integer or out of range".into()))?;
    if ms < 0 {
        return Err(CmdError::Err("timeout is negative".into()));
    }
    // A timeout of 0 is a pause already over, as in Redis.
    let until = if ms == 0 { 0 } else { ctx.now.saturating_add(ms as u64) };
    ctx.shared.pause.start(crate::pause::Purpose::Client, mode, until, ctx.now, &ctx.shared.keyspace);
    Ok(Frame::ok())
}

/// CLIENT UNPAUSE: the held commands run.
fn client_unpause(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    ctx.shared.pause.end(crate::pause::Purpose::Client, ctx.now, &ctx.shared.keyspace);
    Ok(Frame::ok())
}

/// CLIENT REPLY ON|OFF|SKIP. Only replies are silenced: pub/sub messages
/// and other pushes still arrive, as in Redis.
fn client_reply(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    use crate::conn::client::ReplyMode;
    let v = args.next_arg()?;
    ctx.client.reply_mode = match () {
        _ if eq_ic(v, "on") => ReplyMode::On,
        _ if eq_ic(v, "off") => ReplyMode::Off,
        // This reply and the next command's.
        _ if eq_ic(v, "skip") => ReplyMode::SkipThisAndNext,
        _ => return Err(CmdError::Syntax),
    };
    Ok(Frame::ok())
}

/// Redis's check that no two of a client's BCAST prefixes overlap (one
/// being a prefix of the other).
fn check_prefixes(old: &[Bytes], new: &[Bytes]) -> Result<(), CmdError> {
    let overlap = |a: &[u8], b: &[u8]| a.starts_with(b) || b.starts_with(a);
    for (i, p) in new.iter().enumerate() {
        let show = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        if let Some(o) = old.iter().find(|o| overlap(o, p)) {
            return Err(CmdError::Err(format!(
                "Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                show(p),
                show(o)
            )));
        }
        if let Some(o) = new[i + 1..].iter().find(|o| overlap(o, p)) {
            return Err(CmdError::Err(format!(
                "Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                show(p),
                show(o)
            )));
        }
    }
    Ok(())
}

/// CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p ...] [BCAST] [OPTIN]
///   [OPTOUT] [NOLOOP]
fn client_tracking(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    use crate::tracking::TrackingOptions;
    let mode = args.next_arg()?;
    let mut o = TrackingOptions::default();
    let mut target = None;
    while let Some(a) = args.next() {
        let more = args.remaining() > 0;
        if eq_ic(a, "redirect") && more {
            if o.redirect != 0 {
                return Err(CmdError::Err("A client can only redirect to a single other client".into()));
            }
            let id = args.next_i64()?;
            target = u64::try_from(id).ok().and_then(|id| ctx.shared.clients.outbox(id));
            if target.is_none() {
                return Err(CmdError::Err("The client ID you want redirect to does not exist".into()));
            }
            o.redirect = id as u64;
        } else if eq_ic(a, "bcast") {
            o.bcast = true;
        } else if eq_ic(a, "optin") {
            o.optin = true;
        } else if eq_ic(a, "optout") {
            o.optout = true;
        } else if eq_ic(a, "noloop") {
            o.noloop = true;
        } else if eq_ic(a, "prefix") && more {
            o.prefixes.push(Bytes::copy_from_slice(args.next_arg()?));
        } else {
            return Err(CmdError::Syntax);
        }
    }
    if eq_ic(mode, "off") {
        ctx.shared.tracking.disable(ctx.client);
        return Ok(Frame::ok());
    }
    if !eq_ic(mode, "on") {
        return Err(CmdError::Syntax);
    }
    let err = |m: &str| Err(CmdError::Err(m.into()));
    if !o.bcast && !o.prefixes.is_empty() {
        return err("PREFIX option requires BCAST mode to be enabled");
    }
    let current = ctx.client.tracking.clone();
    if current.as_ref().is_some_and(|t| t.opts.bcast != o.bcast) {
        return err("You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.");
    }
    if o.bcast && (o.optin || o.optout) {
        return err("OPTIN and OPTOUT are not compatible with BCAST");
    }
    if o.optin && o.optout {
        return err("You can't specify both OPTIN mode and OPTOUT mode");
    }
    if current.as_ref().is_some_and(|t| (o.optin && t.opts.optout) || (o.optout && t.opts.optin)) {
        return err("You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.");
    }
    if o.bcast {
        let old = current.as_ref().map(|t| t.opts.prefixes.as_slice()).unwrap_or_default();
        check_prefixes(old, &o.prefixes)?;
    }
    ctx.shared.tracking.enable(ctx.client, o, target);
    Ok(Frame::ok())
}

/// CLIENT CACHING YES|NO
fn client_caching(ctx: &mut Ctx<'_>, mut args: Args<'_>) -> CmdResult {
    let v = args.next_arg()?;
    let Some(t) = &ctx.client.tracking else {
        return Err(CmdError::Err(
            "CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled"
                .into(),
        ));
    };
    if eq_ic(v, "yes") {
        if !t.opts.optin {
            return Err(CmdError::Err(
                "CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.".into(),
            ));
        }
    } else if eq_ic(v, "no") {
        if !t.opts.optout {
            return Err(CmdError::Err(
                "CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.".into(),
            ));
        }
    } else {
        return Err(CmdError::Syntax);
    }
    ctx.client.caching = true;
    Ok(Frame::ok())
}

/// CLIENT GETREDIR
fn client_getredir(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    Ok(Frame::Integer(ctx.client.tracking.as_ref().map_or(-1, |t| t.opts.redirect as i64)))
}

/// CLIENT TRACKINGINFO
fn client_trackinginfo(ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    let t = ctx.client.tracking.as_ref();
    let mut flags = Vec::new();
    match t {
        None => flags.push("off"),
        Some(t) => {
            flags.push("on");
            let named = [(t.opts.bcast, "bcast"), (t.opts.optin, "optin"), (t.opts.optout, "optout")];
            flags.extend(named.iter().filter(|(on, _)| *on).map(|(_, n)| *n));
            if ctx.client.caching {
                flags.push(if t.opts.optin { "caching-yes" } else { "caching-no" });
            }
            if t.opts.noloop {
                flags.push("noloop");
            }
            if t.broken.load(std::sync::atomic::Ordering::Relaxed) {
                flags.push("broken_redirect");
            }
        }
    }
    let prefixes = t.map(|t| t.opts.prefixes.iter().cloned().map(Frame::Bulk).collect()).unwrap_or_default();
    Ok(Frame::Map(vec![
        (Frame::bulk_static("flags"), Frame::Set(flags.into_iter().map(Frame::bulk_static).collect())),
        (Frame::bulk_static("redirect"), Frame::Integer(t.map_or(-1, |t| t.opts.redirect as i64))),
        (Frame::bulk_static("prefixes"), Frame::Array(prefixes)),
    ]))
}

/// CLIENT HELP
fn client_help(_ctx: &mut Ctx<'_>, _args: Args<'_>) -> CmdResult {
    Ok(help_reply(
        "CLIENT",
        &[
            "GETNAME",
            "    Return the name of the current connection.",
            "ID",
            "    Return the ID of the current connection.",
            "INFO",
            "    Return information about the current client connection.",
            "KILL <ip:port>",
            "    Kill connection made from <ip:port>.",
            "KILL <option> <value> [<option> <value> [...]]",
            "    Kill connections. Options are: ID, TYPE, USER, ADDR, LADDR, SKIPME, MAXAGE.",
            "LIST [options ...]",
            "    Return information about client connections. Options: TYPE, ID.",
            "SETNAME <name>",
            "    Assign the name <name> to the current connection.",
            "SETINFO <option> <value>",
            "    Set client meta attr. Options are: LIB-NAME, LIB-VER.",
            "NO-EVICT (ON|OFF)",
            "    Protect current client connection from eviction.",
            "NO-TOUCH (ON|OFF)",
            "    Will not touch LRU/LFU stats when this mode is on.",
            "REPLY (ON|OFF|SKIP)",
            "    Control the replies sent to the current connection.",
            "UNPAUSE",
            "    Stop the current client pause, resuming traffic.",
            "PAUSE <timeout> [WRITE|ALL]",
            "    Suspend all, or just write, clients for <timeout> milliseconds.",
            "UNBLOCK <clientid> [TIMEOUT|ERROR]",
            "    Unblock the specified blocked client.",
            "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
            "         [OPTIN] [OPTOUT] [NOLOOP]",
            "    Control server assisted client side caching.",
            "CACHING (YES|NO)",
            "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
            "GETREDIR",
            "    Return the client ID we are redirecting to when tracking is enabled.",
            "TRACKINGINFO",
            "    Report tracking status for the current connection.",
        ],
    ))
}
