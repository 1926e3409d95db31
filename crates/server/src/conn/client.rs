//! Client state. `Client` is owned by the connection task and mutated
//! freely by commands; `ClientInfo` is the part other clients can see
//! (CLIENT LIST, CLIENT KILL), shared through the registry.

use atomic_waker::AtomicWaker;
use bytes::Bytes;
use hashbrown::HashMap;
use larder_protocol::Proto;
use parking_lot::Mutex;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use super::connection::{QUERY_TRIM_ABOVE, REPLY_MIN};

/// Where a connection comes from, or arrives at: a TCP address, or the
/// path of the Unix socket (`unixsocket`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    Tcp(SocketAddr),
    Unix(Arc<str>),
}

impl Peer {
    /// On this host: loopback, or any Unix socket client (Redis's
    /// `islocalClient`).
    pub fn is_local(&self) -> bool {
        match self {
            Peer::Tcp(a) => a.ip().is_loopback(),
            Peer::Unix(_) => true,
        }
    }

    pub fn is_unix(&self) -> bool {
        matches!(self, Peer::Unix(_))
    }

    /// The address alone: a TCP peer's IP, or the socket's path (what a
    /// replica connected over the socket is listed by).
    pub fn host(&self) -> String {
        match self {
            Peer::Tcp(a) => a.ip().to_string(),
            Peer::Unix(path) => path.to_string(),
        }
    }

    /// As MONITOR shows it: `unix:` and the path for a socket client.
    pub fn monitor_label(&self) -> String {
        match self {
            Peer::Tcp(a) => a.to_string(),
            Peer::Unix(path) => format!("unix:{path}"),
        }
    }
}

/// `ip:port`, or the socket's path and port 0, as CLIENT LIST and SLOWLOG
/// show it (and CLIENT KILL matches).
impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Peer::Tcp(a) => write!(f, "{a}"),
            Peer::Unix(path) => write!(f, "{path}:0"),
        }
    }
}

/// What CLIENT LIST shows and CLIENT KILL matches on.
pub struct ClientInfo {
    pub id: u64,
    pub addr: Peer,
    pub laddr: Peer,
    pub fd: i64,
    pub created: Instant,
    pub meta: Mutex<ClientMeta>,
    /// Milliseconds since the server started, at the last command.
    pub last_interaction: AtomicU64,
    killed: AtomicBool,
    /// What CLIENT LIST shows of the connection's own state, which only
    /// its task changes, published as it changes: bytes in the query
    /// buffer (during a batch the whole batch, as Redis's `qbuf` counts
    /// the command being run), commands queued in MULTI (-1 outside one),
    /// subscriptions (channels, patterns, shard channels), MONITOR, and
    /// client tracking (the redirect id, 0 for none, -1 when off; BCAST).
    pub qbuf: AtomicU64,
    /// Room left in the query buffer after the last batch (`qbuf-free`).
    pub qbuf_free: AtomicU64,
    /// The most the query buffer held at once since the cron last looked
    /// (Redis's `querybuf_peak`): the cron trims a buffer twice that.
    pub qbuf_peak: AtomicU64,
    /// The reply buffer's size (`rbs`), and the most one batch's replies
    /// took of it since the peak was last reset (`rbp`, reset every
    /// `DEBUG REPLYBUFFER PEAK-RESET-TIME`, at `rbp_reset_at`): the cron
    /// shrinks a buffer more than twice its peak, as Redis does.
    pub rbs: AtomicU64,
    pub rbp: AtomicU64,
    pub rbp_reset_at: AtomicU64,
    /// Reply bytes waiting for the socket (`obl`): non-zero only while a
    /// write is stuck on a client that does not read.
    pub obl: AtomicU64,
    /// The arguments' bytes of a command waiting to run again (`argv-mem`
    /// of a blocked or paused client; see connection.rs).
    pub argv_mem: AtomicU64,
    /// The queued MULTI commands' arguments, with a pointer's worth per
    /// argument (Redis's `multi-mem`).
    pub multi_mem: AtomicU64,
    pub multi: AtomicI64,
    pub subs: [AtomicU64; 3],
    pub monitor: AtomicBool,
    pub redir: AtomicI64,
    pub bcast: AtomicBool,
    /// Bytes the connection holds apart from its outbox (its buffers and
    /// its state), as its task last published them;
    /// [`ClientInfo::live_mem`] adds the outbox as it stands (CLIENT LIST
    /// `tot-mem`).
    pub mem: AtomicU64,
    /// CLIENT NO-EVICT: never disconnected by `maxmemory-clients`, and
    /// not counted against it.
    pub no_evict: AtomicBool,
    /// A replica: what is written to it counts as replication traffic.
    pub replica: AtomicBool,
    /// CLIENT NO-TOUCH (Redis 7.2): the client's commands leave the keys'
    /// access clocks as they were, except TOUCH.
    pub no_touch: AtomicBool,
    /// Set by the cron ([`Shrink`] bits): the connection releases or
    /// trims its buffers at its next wake-up.
    shrink: AtomicU8,
    /// Counted against `maxmemory-clients` and so a candidate to
    /// disconnect: set by the connection's own task (a normal or pub/sub
    /// client without NO-EVICT); never for a replica or the primary's
    /// link.
    pub evictable: AtomicBool,
    /// The connection task, woken when it is killed or its outbox fills.
    /// Only that task ever waits, so one waker slot is enough, and
    /// registering it each time round the read loop is a compare-and-swap
    /// where a `Notify` took a lock to join its waiter list and another to
    /// leave it (about 400 instructions a request, a tenth of a PING).
    waker: AtomicWaker,
}

/// CLIENT REPLY: whether replies go out.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ReplyMode {
    On,
    Off,
    /// Set by SKIP: its own reply is dropped, then `Skip` drops the next.
    SkipThisAndNext,
    Skip,
}

#[derive(Default, Clone)]
pub struct ClientMeta {
    pub name: Option<Bytes>,
    pub lib_name: Option<Bytes>,
    pub lib_ver: Option<Bytes>,
    pub last_cmd: String,
    pub db: usize,
    pub resp: u8,
    /// The ACL user the client is authenticated as.
    pub user: String,
}

impl ClientInfo {
    /// What the connection holds now: as last published, with its outbox
    /// as it stands. A connection whose peer stops reading (a stalled
    /// replica) publishes nothing while its write waits, yet its outbox
    /// keeps growing with what is queued for it.
    pub fn live_mem(&self, outbox: &crate::pubsub::Outbox) -> u64 {
        self.mem.load(Ordering::Relaxed) + outbox.queued() as u64
    }

    /// Asks the connection to close; it does so at its next wake-up.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
        self.waker.wake();
    }

    /// Wakes the connection task so it looks at its flags again.
    pub fn wake(&self) {
        self.waker.wake();
    }

    /// Registers the connection task for wake-ups, then reads `ready`:
    /// the flag is read after registering, so a signal set in between is
    /// never missed.
    pub fn poll_signal(&self, cx: &mut Context<'_>, mut ready: impl FnMut() -> bool) -> Poll<()> {
        self.waker.register(cx.waker());
        if ready() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }

    /// Completes once the client is killed. Only the connection's own
    /// task may wait on this (see `waker`).
    pub async fn killed(&self) {
        std::future::poll_fn(|cx| self.poll_signal(cx, || self.is_killed())).await
    }

    /// Asks the connection to release or trim its buffers ([`Shrink`]).
    /// It is woken only for something not asked already: one that has not
    /// got to the last ask (a blocked client's task waits elsewhere) is
    /// not woken again at every tick of the cron.
    pub fn ask_shrink(&self, why: u8) {
        if self.shrink.fetch_or(why, Ordering::Relaxed) & why != why {
            self.waker.wake();
        }
    }

    /// Completes once the cron asked the connection to release or trim
    /// its buffers, with the [`Shrink`] bits it asked for (taking them).
    /// Only the connection's own task waits.
    pub async fn shrink_asked(&self) -> u8 {
        let mut why = 0;
        std::future::poll_fn(|cx| {
            self.poll_signal(cx, || {
                why = self.shrink.swap(0, Ordering::Relaxed);
                why != 0
            })
        })
        .await;
        why
    }

    /// Publishes a figure that only grows between the cron's resets (a
    /// peak): a load and, rarely, a store, where `fetch_max` would be a
    /// locked instruction on every batch. A reset racing it is harmless.
    pub fn raise(peak: &AtomicU64, seen: u64) {
        if seen > peak.load(Ordering::Relaxed) {
            peak.store(seen, Ordering::Relaxed);
        }
    }
}

/// Why the cron asks a connection to shrink its buffers (bits).
pub struct Shrink;

impl Shrink {
    /// Idle two seconds or more: release both buffers while empty, as
    /// Redis frees an idle client's query buffer.
    pub const IDLE: u8 = 1;
    /// The query buffer is more than twice what it held at most lately,
    /// and past 32 KB: trim it to that peak (Redis's
    /// `clientsCronResizeQueryBuffer`).
    pub const QUERY: u8 = 2;
    /// The reply buffer is more than twice its peak and at least 2 KB:
    /// trim it to the peak, 1 KB at least (`clientsCronResizeOutputBuffer`).
    pub const REPLY: u8 = 4;
}

/// The connection's own state.
pub struct Client {
    pub info: Arc<ClientInfo>,
    pub db: usize,
    pub proto: Proto,
    pub authenticated: bool,
    /// The client's user as of ACL generation `acl_gen` (see acl.rs).
    pub user: Arc<crate::acl::User>,
    pub acl_gen: u64,
    /// The running request's bytes when the connection read it into a
    /// buffer of its own (a large argument): a write may keep that
    /// argument as its value without a copy (`Ctx::str_value`).
    pub owned_input: Option<Bytes>,
    /// Set by QUIT, SHUTDOWN and CLIENT KILL of oneself: close after the reply.
    pub close_after_reply: bool,
    /// Set by SHUTDOWN, which closes the connection without replying.
    pub no_reply: bool,
    /// SCRIPT DEBUG YES or SYNC: the next EVAL runs under the debugger.
    pub lua_debug: Option<crate::ldb::Mode>,
    /// This connection is a replica being streamed writes (its
    /// acknowledged offset); replies to what it sends are not sent.
    pub replica: Option<Arc<crate::replication::Ack>>,
    /// The link to this replica's primary: its writes are the stream to
    /// apply, so READONLY, MASTERDOWN and ACL do not apply.
    pub from_master: bool,
    /// Replays a file (AOF load): takes no world lock, since start-up is
    /// single-threaded and DEBUG LOADAOF already holds one (an EXEC or
    /// FLUSHALL in the file would otherwise wait for it forever).
    pub replaying: bool,
    /// The primary's command just met a busy script and did not run: the
    /// link holds it and what follows until the script ends (Redis stops
    /// reading its primary meanwhile), instead of losing the write.
    pub busy_held: bool,
    /// The running script's declared keys, while no read-only command of
    /// it has yet recorded them for client tracking.
    pub script_keys: Option<Vec<bytes::Bytes>>,
    /// CLIENT REPLY's setting.
    pub reply_mode: ReplyMode,
    /// REPLCONF listening-port, before SYNC.
    pub replica_port: u16,
    /// REPLCONF ip-address: the address a replica announces (else its peer's).
    pub replica_ip: Option<String>,
    /// Identity of the last command run, to update CLIENT LIST cheaply.
    pub last_cmd: usize,
    /// Encoding thresholds, copied from the config once per batch so
    /// collection writes take no config lock.
    pub limits: larder_store::Limits,
    /// Set while the client waits in a blocking command (BLPOP…).
    pub blocked: Option<crate::blocking::BlockState>,
    /// Set by a blocking command that found nothing to serve this run.
    pub wants_block: bool,
    /// Set when CLIENT PAUSE holds this run's command: the connection
    /// waits for the pause to end, then runs it (see pause.rs).
    pub postponed: bool,
    /// The replication offset right after this client's last command that
    /// added to the stream (Redis's `woff`): what WAIT waits for.
    pub woff: u64,
    /// The AOF's appended position after this client's last write
    /// (WAITAOF waits for the file to be synced that far).
    pub aof_woff: u64,
    /// Commands queued since MULTI (request and its bytes).
    pub multi: Option<Vec<(larder_protocol::Request, Vec<u8>)>>,
    /// A command was rejected while queuing: EXEC must abort.
    pub multi_error: bool,
    /// Running EXEC's queue: commands must not block or queue.
    pub in_exec: bool,
    /// The clock reading of the running top-level command, which the
    /// commands an EXEC or script runs share (see dispatch).
    pub frozen_now: u64,
    /// The error reply the running command is about to give was already
    /// counted in errorstats (a script passing on a command's error).
    pub error_counted: bool,
    /// Memory was over maxmemory, with nothing left to evict, when the
    /// running command started: a script's denyoom calls are refused.
    pub oom: bool,
    /// WATCH state: the dirty flag and the watched (db, key)s.
    pub watch: Option<(crate::multi::WatchFlag, Vec<(usize, Bytes)>)>,
    /// Where other clients' commands put messages for this one (pub/sub,
    /// tracking invalidations).
    pub outbox: Arc<crate::pubsub::Outbox>,
    /// CLIENT TRACKING state, while on.
    pub tracking: Option<Arc<crate::tracking::Tracker>>,
    /// CLIENT CACHING yes|no, for the next command only.
    pub caching: bool,
    /// Subscriptions: channels, patterns, shard channels.
    pub subs: [hashbrown::HashSet<Bytes>; 3],
    /// Frames this client's own command produced besides its reply
    /// (SUBSCRIBE's confirmations), sent before the reply.
    pub pushes: Vec<larder_protocol::Frame>,
}

impl Client {
    pub fn new(
        info: Arc<ClientInfo>,
        outbox: Arc<crate::pubsub::Outbox>,
        user: Arc<crate::acl::User>,
        authenticated: bool,
    ) -> Client {
        info.meta.lock().user.clone_from(&user.name);
        Client {
            info,
            db: 0,
            proto: Proto::Resp2,
            authenticated,
            user,
            acl_gen: 0,
            owned_input: None,
            close_after_reply: false,
            lua_debug: None,
            no_reply: false,
            replica: None,
            replica_port: 0,
            replica_ip: None,
            replaying: false,
            busy_held: false,
            from_master: false,
            script_keys: None,
            reply_mode: ReplyMode::On,
            last_cmd: 0,
            limits: larder_store::Limits::default(),
            blocked: None,
            wants_block: false,
            postponed: false,
            woff: 0,
            aof_woff: 0,
            multi: None,
            multi_error: false,
            oom: false,
            in_exec: false,
            frozen_now: 0,
            error_counted: false,
            watch: None,
            outbox,
            tracking: None,
            caching: false,
            subs: Default::default(),
            pushes: Vec::new(),
        }
    }

    /// ACL rules do not apply: its user may do anything, or it replays
    /// the log or applies the primary's stream (Redis's NULL user).
    pub fn acl_exempt(&self) -> bool {
        self.user.unrestricted || self.replaying || self.from_master
    }

    pub fn id(&self) -> u64 {
        self.info.id
    }

    /// AUTH and HELLO AUTH: the client is now `user`.
    pub fn log_in(&mut self, user: Arc<crate::acl::User>) {
        self.info.meta.lock().user.clone_from(&user.name);
        self.user = user;
        self.authenticated = true;
    }

    /// Ran MONITOR: other clients' commands are written to it. Kept in
    /// [`ClientInfo::monitor`] only, where CLIENT LIST reads it too.
    pub fn monitoring(&self) -> bool {
        self.info.monitor.load(Ordering::Relaxed)
    }

    /// Makes this connection a replica's (PSYNC, SYNC), and says so where
    /// its writes are counted (replication traffic, see `write_out`).
    pub fn become_replica(&mut self, ack: Arc<crate::replication::Ack>) {
        self.replica = Some(ack);
        self.info.replica.store(true, Ordering::Relaxed);
    }

    /// Shows the MULTI queue's length (or -1) in CLIENT LIST, and its
    /// memory as 0 when there is no queue (see [`Client::queue`]).
    pub fn publish_multi(&self) {
        let n = self.multi.as_ref().map_or(-1, |q| q.len() as i64);
        self.info.multi.store(n, Ordering::Relaxed);
        if self.multi.is_none() {
            self.info.multi_mem.store(0, Ordering::Relaxed);
        }
    }

    /// Queues a command in MULTI (the caller checked there is a queue) and
    /// shows the queue in CLIENT LIST: `multi-mem` grows by the command's
    /// arguments and a pointer for each, as Redis counts them.
    pub fn queue(&mut self, req: &larder_protocol::Request, input: &[u8]) {
        if let Some(queue) = self.multi.as_mut() {
            queue.push((req.clone(), input.to_vec()));
            let mem = &self.info.multi_mem;
            mem.store(mem.load(Ordering::Relaxed) + (req.args_len() + 8 * req.len()) as u64, Ordering::Relaxed);
        }
        self.publish_multi();
    }

    /// Shows the subscription counts in CLIENT LIST.
    pub fn publish_subs(&self) {
        for (shown, set) in self.info.subs.iter().zip(&self.subs) {
            shown.store(set.len() as u64, Ordering::Relaxed);
        }
    }

    /// Channel and pattern subscriptions (what SUBSCRIBE replies count).
    pub fn sub_count(&self) -> usize {
        self.subs[0].len() + self.subs[1].len()
    }

    /// In RESP2, a client with any subscription may only run the pub/sub
    /// commands, PING, QUIT and RESET.
    pub fn in_subscribed_mode(&self) -> bool {
        self.proto == Proto::Resp2 && self.subs.iter().any(|s| !s.is_empty())
    }

    pub fn set_db(&mut self, db: usize) {
        self.db = db;
        self.info.meta.lock().db = db;
    }

    pub fn set_proto(&mut self, proto: Proto) {
        self.proto = proto;
        self.outbox.set_proto(proto);
        self.info.meta.lock().resp = if proto == Proto::Resp3 { 3 } else { 2 };
    }
}

/// A connected client as others see it: its info and its outbox.
pub type Registered = (Arc<ClientInfo>, Arc<crate::pubsub::Outbox>);

/// A connection idle this long gives its buffers back (see connection.rs).
const IDLE_SHRINK_MS: u64 = 2000;

/// Every connected client, by id.
#[derive(Default)]
pub struct Clients {
    map: Mutex<HashMap<u64, Registered>>,
    next_id: AtomicU64,
    /// Client eviction (`maxmemory-clients`): the bytes held by the
    /// clients it may disconnect (not replicas, not NO-EVICT ones), each
    /// connection adding what it changed; the limit (0: none); how many
    /// it disconnected (INFO `evicted_clients`); and a lock so one
    /// connection at a time picks the clients to disconnect.
    evictable_mem: AtomicU64,
    mem_limit: AtomicU64,
    evicted: AtomicU64,
    evicting: Mutex<()>,
    pub buffers: BufferWatch,
}

/// How the cron watches the connections' buffers: DEBUG REPLYBUFFER's
/// two settings, and the largest buffers of the last eight seconds.
pub struct BufferWatch {
    /// PEAK-RESET-TIME, milliseconds (-1: never): how often a reply
    /// buffer's peak starts again from what the buffer holds.
    pub peak_reset_ms: AtomicI64,
    /// RESIZING: whether the cron trims reply buffers.
    pub resizing: AtomicBool,
    recent: Mutex<RecentPeaks>,
}

/// PEAK-RESET-TIME's default (Redis's `REPLY_BUFFER_DEFAULT_PEAK_RESET_TIME`).
pub const PEAK_RESET_MS: i64 = 5000;

impl Default for BufferWatch {
    fn default() -> BufferWatch {
        BufferWatch {
            peak_reset_ms: AtomicI64::new(PEAK_RESET_MS),
            resizing: AtomicBool::new(true),
            recent: Mutex::default(),
        }
    }
}

/// The largest input and output buffer of any client in each of the
/// last [`RECENT_SECONDS`] seconds (by uptime), as Redis keeps them for
/// INFO's `client_recent_max_input_buffer` and `..._output_buffer`.
#[derive(Default)]
struct RecentPeaks {
    second: u64,
    input: [u64; RECENT_SECONDS],
    output: [u64; RECENT_SECONDS],
}

const RECENT_SECONDS: usize = 8;

impl BufferWatch {
    /// The largest input and output buffers of the last eight seconds.
    pub fn recent_max(&self) -> (u64, u64) {
        let r = self.recent.lock();
        (r.input.iter().copied().max().unwrap_or(0), r.output.iter().copied().max().unwrap_or(0))
    }
}

impl Clients {
    /// A connection's new figure: `mem` bytes apart from its outbox, and
    /// `counted` bytes (its outbox's included) against `maxmemory-clients`
    /// (0 for a replica or a NO-EVICT client);
    /// `before` is what it counted until now. Returns `counted`, to pass
    /// as `before` next time (and to [`Self::forget_mem`] at the end).
    pub fn publish_mem(&self, info: &ClientInfo, mem: u64, counted: u64, before: u64) -> u64 {
        info.mem.store(mem, Ordering::Relaxed);
        info.evictable.store(counted > 0, Ordering::Relaxed);
        if counted != before {
            if counted > before {
                self.evictable_mem.fetch_add(counted - before, Ordering::Relaxed);
            } else {
                self.evictable_mem.fetch_sub(before - counted, Ordering::Relaxed);
            }
        }
        counted
    }

    /// A connection that ends takes back what it counted.
    pub fn forget_mem(&self, counted: u64) {
        self.evictable_mem.fetch_sub(counted, Ordering::Relaxed);
    }

    pub fn set_mem_limit(&self, bytes: u64) {
        self.mem_limit.store(bytes, Ordering::Relaxed);
    }

    /// Whether the evictable clients hold more than `maxmemory-clients`.
    #[inline]
    pub fn over_mem_limit(&self) -> bool {
        let limit = self.mem_limit.load(Ordering::Relaxed);
        limit != 0 && self.evictable_mem.load(Ordering::Relaxed) > limit
    }

    /// Redis's client eviction: while the evictable clients hold more
    /// than the limit, the largest of them are disconnected (the caller
    /// too, if it is one). Returns how many.
    pub fn evict_over_limit(&self) -> usize {
        let Some(_one) = self.evicting.try_lock() else { return 0 };
        let limit = self.mem_limit.load(Ordering::Relaxed);
        let total = self.evictable_mem.load(Ordering::Relaxed);
        if limit == 0 || total <= limit {
            return 0;
        }
        let mut candidates: Vec<(u64, Arc<ClientInfo>)> = self
            .map
            .lock()
            .values()
            .filter(|(c, _)| {
                !c.is_killed() && c.evictable.load(Ordering::Relaxed) && !c.no_evict.load(Ordering::Relaxed)
            })
            .map(|(c, outbox)| (c.live_mem(outbox), c.clone()))
            .collect();
        candidates.sort_unstable_by_key(|(mem, _)| std::cmp::Reverse(*mem));
        let (mut over, mut n) = (total - limit, 0);
        for (mem, c) in candidates {
            if over == 0 {
                break;
            }
            tracing::info!(client = c.id, mem, "evicting client: maxmemory-clients reached");
            c.kill();
            over = over.saturating_sub(mem);
            n += 1;
        }
        self.evicted.fetch_add(n as u64, Ordering::Relaxed);
        n
    }

    /// INFO stats `evicted_clients`.
    pub fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }
}

impl Clients {
    pub fn register(
        &self,
        addr: Peer,
        laddr: Peer,
        fd: i64,
        now_ms: u64,
    ) -> (Arc<ClientInfo>, Arc<crate::pubsub::Outbox>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let info = Arc::new(ClientInfo {
            id,
            addr,
            laddr,
            fd,
            created: Instant::now(),
            meta: Mutex::new(ClientMeta { resp: 2, last_cmd: "NULL".into(), ..Default::default() }),
            last_interaction: AtomicU64::new(now_ms),
            killed: AtomicBool::new(false),
            qbuf: AtomicU64::new(0),
            qbuf_free: AtomicU64::new(0),
            qbuf_peak: AtomicU64::new(0),
            rbs: AtomicU64::new(0),
            rbp: AtomicU64::new(0),
            rbp_reset_at: AtomicU64::new(now_ms),
            obl: AtomicU64::new(0),
            argv_mem: AtomicU64::new(0),
            multi_mem: AtomicU64::new(0),
            multi: AtomicI64::new(-1),
            subs: Default::default(),
            monitor: AtomicBool::new(false),
            redir: AtomicI64::new(-1),
            bcast: AtomicBool::new(false),
            mem: AtomicU64::new(0),
            no_evict: AtomicBool::new(false),
            replica: AtomicBool::new(false),
            no_touch: AtomicBool::new(false),
            evictable: AtomicBool::new(false),
            shrink: AtomicU8::new(0),
            waker: AtomicWaker::new(),
        });
        let outbox = Arc::new(crate::pubsub::Outbox::new(info.clone(), Proto::Resp2));
        self.map.lock().insert(id, (info.clone(), outbox.clone()));
        (info, outbox)
    }

    /// The cron's pass over the connections (Redis's `clientsCron`),
    /// `now_ms` being the uptime: closes those idle longer than
    /// `timeout_secs` (0: never), asks for buffers to be released or
    /// trimmed ([`Shrink`]), starts the buffer peaks again, and keeps the
    /// last seconds' largest buffers. Reads only what the connections
    /// published, and wakes only those it asks something of.
    pub fn tick(&self, now_ms: u64, timeout_secs: u64) {
        let w = &self.buffers;
        let (reset_ms, resizing) = (w.peak_reset_ms.load(Ordering::Relaxed), w.resizing.load(Ordering::Relaxed));
        let slot = (now_ms / 1000) as usize % RECENT_SECONDS;
        let (mut max_in, mut max_out) = (0, 0);
        // Off the registry's lock: asking and killing wake tasks, and an
        // outbox's figure takes its own lock.
        for (c, outbox) in &self.registered() {
            let idle = now_ms.saturating_sub(c.last_interaction.load(Ordering::Relaxed));
            if timeout_secs > 0 && idle > timeout_secs * 1000 {
                tracing::debug!(client = c.id, "closing idle client");
                c.kill();
                continue;
            }
            let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
            let (qbuf, qbuf_free, rbs, rbp) = (load(&c.qbuf), load(&c.qbuf_free), load(&c.rbs), load(&c.rbp));
            let mut why = 0;
            if idle >= IDLE_SHRINK_MS {
                // Only what an empty buffer holds can go (a buffer with a
                // partial command in it, or a write stuck on the socket,
                // stays), so ask only while there is some.
                if (qbuf == 0 && qbuf_free > 0) || (rbs > 0 && load(&c.obl) == 0) {
                    why |= Shrink::IDLE;
                }
            } else if qbuf == 0 && qbuf_free > QUERY_TRIM_ABOVE && qbuf_free / 2 > load(&c.qbuf_peak) {
                // Only between commands: a buffer a large argument is
                // still arriving in keeps growing (Redis keeps room for
                // the bulk it reads).
                why |= Shrink::QUERY;
            }
            c.qbuf_peak.store(qbuf, Ordering::Relaxed);
            if resizing && rbs / 2 >= REPLY_MIN && rbp < rbs / 2 {
                why |= Shrink::REPLY;
            }
            if reset_ms >= 0 && now_ms.saturating_sub(load(&c.rbp_reset_at)) >= reset_ms as u64 {
                c.rbp.store(load(&c.obl), Ordering::Relaxed);
                c.rbp_reset_at.store(now_ms, Ordering::Relaxed);
            }
            if why != 0 {
                c.ask_shrink(why);
            }
            max_in = max_in.max(qbuf + qbuf_free + load(&c.argv_mem));
            max_out = max_out.max(outbox.queued() as u64);
        }
        let mut r = w.recent.lock();
        let second = now_ms / 1000;
        if second != r.second {
            // Seconds no pass saw (a paused cron) held nothing.
            for s in 1..=second.saturating_sub(r.second).min(RECENT_SECONDS as u64) {
                let i = (r.second + s) as usize % RECENT_SECONDS;
                r.input[i] = 0;
                r.output[i] = 0;
            }
            r.second = second;
        }
        r.input[slot] = r.input[slot].max(max_in);
        r.output[slot] = r.output[slot].max(max_out);
    }

    /// What the connections hold (their published `tot-mem`): the
    /// replicas', then the others' (INFO `mem_clients_slaves`,
    /// `mem_clients_normal`).
    pub fn memory_by_kind(&self) -> (u64, u64) {
        self.map.lock().values().fold((0, 0), |(r, n), (c, outbox)| {
            let mem = c.live_mem(outbox);
            if c.replica.load(Ordering::Relaxed) {
                (r + mem, n)
            } else {
                (r, n + mem)
            }
        })
    }

    /// Every connected client with its outbox, by id (CLIENT LIST's
    /// `oll` and `omem` are the outbox's).
    pub fn all_with_outboxes(&self) -> Vec<Registered> {
        let mut v = self.registered();
        v.sort_by_key(|(c, _)| c.id);
        v
    }

    /// Every connected client with its outbox, in no order (the cron's
    /// pass, several times a second, has no use for CLIENT LIST's sort).
    fn registered(&self) -> Vec<Registered> {
        self.map.lock().values().cloned().collect()
    }

    /// The outbox of a connected client.
    pub fn outbox(&self, id: u64) -> Option<Arc<crate::pubsub::Outbox>> {
        self.map.lock().get(&id).map(|(_, o)| o.clone())
    }

    /// Kills client `id` if it is connected (its connection closes).
    pub fn kill(&self, id: u64) {
        if let Some((info, _)) = self.map.lock().get(&id) {
            info.kill();
        }
    }

    pub fn exists(&self, id: u64) -> bool {
        self.map.lock().contains_key(&id)
    }

    pub fn unregister(&self, id: u64) {
        self.map.lock().remove(&id);
    }

    pub fn count(&self) -> usize {
        self.map.lock().len()
    }

    /// A snapshot, ordered by id as CLIENT LIST prints them.
    pub fn all(&self) -> Vec<Arc<ClientInfo>> {
        self.all_with_outboxes().into_iter().map(|(c, _)| c).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::task::{Wake, Waker};

    struct Counting(AtomicUsize);

    impl Wake for Counting {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// The cron asks again at every tick while the reason holds; the
    /// connection is woken for a new reason only, and again once it has
    /// taken the last ask.
    #[test]
    fn a_shrink_ask_wakes_the_connection_once_until_taken() {
        let clients = Clients::default();
        let addr = Peer::Tcp("127.0.0.1:1".parse().unwrap());
        let (info, _outbox) = clients.register(addr.clone(), addr, -1, 0);
        let wakes = Arc::new(Counting(AtomicUsize::new(0)));
        let waker = Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(info.poll_signal(&mut cx, || false).is_pending());
        let count = || wakes.0.load(Ordering::SeqCst);
        info.ask_shrink(Shrink::IDLE);
        assert_eq!(count(), 1);
        // Woken, the task polls what it waits on (a blocked client's wait
        // does not take the ask) and sleeps again.
        assert!(info.poll_signal(&mut cx, || false).is_pending());
        info.ask_shrink(Shrink::IDLE);
        assert_eq!(count(), 1, "the same ask again wakes nobody");
        info.ask_shrink(Shrink::REPLY);
        assert_eq!(count(), 2, "a new reason wakes");
        assert_eq!(info.shrink.swap(0, Ordering::Relaxed), Shrink::IDLE | Shrink::REPLY);
        assert!(info.poll_signal(&mut cx, || false).is_pending());
        info.ask_shrink(Shrink::IDLE);
        assert_eq!(count(), 3, "once taken, an ask wakes again");
    }
}
