//! Shared server state, the accept loop, background cron tasks, and
//! graceful shutdown.

use crate::cmd::table::CommandTable;
use crate::config::Config;
use crate::conn::client::{Clients, Peer};
use crate::conn::connection::Stream;
use crate::error::{DENIED_PROTECTED_MODE, MAX_CLIENTS_REACHED};
use crate::listen::Accepted;
use crate::stats::Stats;
use larder_store::{Clock, Keyspace, SystemClock};
use parking_lot::RwLock;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Shutdown snapshot modes: as configured (save points), SAVE, NOSAVE.
pub const SHUTDOWN_DEFAULT: u8 = 0;
pub const SHUTDOWN_SAVE: u8 = 1;
pub const SHUTDOWN_NOSAVE: u8 = 2;

/// Everything connections share.
pub struct Shared {
    /// Users and their permissions (see acl.rs).
    pub acl: crate::acl::Acl,
    pub config: RwLock<Config>,
    pub keyspace: Keyspace,
    pub clock: Arc<dyn Clock>,
    pub stats: Stats,
    pub clients: Clients,
    pub commands: Arc<CommandTable>,
    pub active_expire_enabled: AtomicBool,
    /// DEBUG PAUSE-CRON: the cron skips its work while set.
    pub cron_paused: AtomicBool,
    pub run_id: String,
    /// On the TSC clock: `uptime_ms` is read after every batch of commands
    /// (a client's last interaction), and `std`'s clock_gettime and
    /// checked subtraction cost three times as much.
    pub started: quanta::Instant,
    /// The first listening socket's address (INFO's tcp_port, a replica's
    /// REPLCONF listening-port); set with the sockets (see listen.rs).
    pub listen_addr: RwLock<Option<SocketAddr>>,
    /// The sockets the accept loop serves (see listen.rs).
    pub listeners: crate::listen::Listeners,
    /// The TLS configuration `tls-port`'s connections shake hands with.
    pub tls: crate::tls::Tls,
    /// MIGRATE's cached connections to its targets.
    pub migrate_sockets: crate::cmd::migrate::Sockets,
    /// Completed cron runs; tests wait on it instead of sleeping.
    pub cron_loops: AtomicU64,
    pub blocking: Arc<crate::blocking::Blocking>,
    /// Held for reading by every command, for writing by EXEC (see multi.rs).
    pub world: crate::multi::WorldLock,
    pub watches: Arc<crate::multi::Watches>,
    pub pubsub: Arc<crate::pubsub::PubSub>,
    /// SLOWLOG's entries (see slowlog.rs).
    pub slowlog: crate::slowlog::SlowLog,
    /// Drops large values and emptied databases off the workers.
    pub lazyfree: crate::lazyfree::LazyFree,
    /// FAILOVER's state.
    pub failover: crate::failover::Failover,
    /// LATENCY's spikes (see latency.rs).
    pub latency: crate::latency::Latency,
    /// CLIENT PAUSE's state (see pause.rs).
    pub pause: crate::pause::Pause,
    /// MONITOR's clients (see monitor.rs).
    pub monitors: crate::monitor::Monitors,
    pub notifier: Arc<crate::notify::Notifier>,
    pub tracking: Arc<crate::tracking::Tracking>,
    pub scripting: crate::scripting::Scripting,
    /// Memory use and the maxmemory limit (see memory.rs).
    pub memory: crate::memory::Memory,
    /// The append-only file (see aof.rs).
    pub aof: Arc<crate::aof::Aof>,
    pub replication: Arc<crate::replication::Replication>,
    /// SAVE's bookkeeping (see snapshot.rs).
    pub snapshots: crate::snapshot::Snapshots,
    /// What to do about a final snapshot on shutdown: `SHUTDOWN_*`.
    pub shutdown_save: std::sync::atomic::AtomicU8,
    /// SHUTDOWN NOW (or a signal whose `shutdown-on-*` says `now`): no
    /// wait for lagging replicas.
    pub shutdown_now: std::sync::atomic::AtomicBool,
    /// SHUTDOWN FORCE (or `force` in `shutdown-on-*`): exit even if the
    /// final snapshot fails.
    pub shutdown_force: std::sync::atomic::AtomicBool,
    /// The connections whose SHUTDOWN is in progress: told if it fails.
    pub shutdown_callers: parking_lot::Mutex<Vec<Arc<crate::pubsub::Outbox>>>,
    /// While a shutdown waits for its replicas: until when, in ms of the
    /// server's clock (INFO's `shutdown_in_milliseconds`); 0 otherwise.
    pub shutdown_deadline_ms: AtomicU64,
    shutdown_tx: watch::Sender<bool>,
    /// SHUTDOWN asked for a stop: the accept loop ends, the connections
    /// go on until the replicas are waited for (see [`Shared::begin_shutdown`]).
    begin_tx: watch::Sender<bool>,
    /// This Shared's own Arc, for work that outlives a command (BGSAVE).
    me: std::sync::OnceLock<std::sync::Weak<Shared>>,
}

impl Shared {
    pub fn shutdown_rx(&self) -> watch::Receiver<bool> {
        self.shutdown_tx.subscribe()
    }

    /// SHUTDOWN: the server stops as on SIGTERM. The accept loop ends,
    /// then a primary waits for its lagging replicas (`shutdown-timeout`)
    /// while its connections are still served, then every connection
    /// closes ([`Shared::request_shutdown`]).
    /// `save` is one of the `SHUTDOWN_*` modes; `now` skips the wait for
    /// replicas; `force` exits even if the final snapshot fails.
    pub fn begin_shutdown(&self, save: u8, now: bool, force: bool) {
        self.shutdown_save.store(save, Relaxed);
        self.shutdown_now.store(now, Relaxed);
        self.shutdown_force.store(force, Relaxed);
        self.begin_tx.send_replace(true);
    }

    /// Asks the server to stop: the accept loop ends and every connection
    /// closes. Connections wait on their own kill signal only, so the
    /// read loop registers one waiter per wake-up rather than two.
    pub fn request_shutdown(&self) {
        self.shutdown_tx.send_replace(true);
        for c in self.clients.all() {
            c.kill();
        }
    }

    /// Pushes the settings that live components keep their own copy of
    /// (so they never take the config lock on a hot path).
    pub fn apply_config(&self, config: &Config) {
        self.acl.sync_requirepass(&config.requirepass);
        self.replication.set_min_replicas(config.min_replicas_to_write, config.min_replicas_max_lag);
        self.replication.set_replica_options(
            config.replica_read_only,
            config.replica_serve_stale_data,
            config.replica_ignore_maxmemory,
        );
        self.replication.set_backlog(config.repl_backlog_size, config.repl_backlog_ttl);
        self.pubsub.set_limit(config.output_limits[2]);
        self.notifier.set_flags(config.notify_flags, &self.keyspace.effects);
        self.tracking.set_max_keys(config.tracking_table_max_keys);
        self.slowlog.configure(config.slowlog_log_slower_than, config.slowlog_max_len);
        self.acl.set_log_max(config.acllog_max_len);
        self.acl.set_pubsub_default(config.extra("acl-pubsub-default") == "allchannels");
        self.latency.set_threshold(config.latency_monitor_threshold);
        self.latency.set_tracking(config.latency_tracking);
        self.scripting.set_busy_threshold(config.busy_reply_threshold);
        self.aof.set_policy(&config.appendfsync);
        self.aof.set_timestamps(config.extra_flag("aof-timestamp-enabled"));
        larder_persist::lzf::set_enabled(config.rdbcompression);
        let policy = larder_store::Policy::parse(&config.maxmemory_policy).unwrap_or(larder_store::Policy::NoEviction);
        let tenacity = config.extra_int("maxmemory-eviction-tenacity") as u64;
        self.memory.set_limits(config.maxmemory, policy, config.maxmemory_samples as usize, tenacity);
        // A lower limit takes effect at once, as in Redis.
        self.clients.set_mem_limit(config.clients_memory_limit());
        if self.clients.over_mem_limit() {
            self.clients.evict_over_limit();
        }
        let ev = &self.keyspace.evictor;
        ev.lfu_log_factor.store(config.lfu_log_factor as u32, Relaxed);
        ev.lfu_decay_time.store(config.lfu_decay_time as u32, Relaxed);
        ev.lfu.store(matches!(policy, larder_store::Policy::AllKeysLfu | larder_store::Policy::VolatileLfu), Relaxed);
        ev.newcomers.set_enabled(policy == larder_store::Policy::AllKeysSieve);
        crate::process::apply(config, self.replication.is_replica() || !config.replicaof.is_empty());
        crate::logging::set_level(&config.loglevel);
        crate::crash::set_enabled(config.extra_flag("crash-log-enabled"));
        for (option, why) in [
            ("lazyfree-lazy-eviction", larder_store::Disposal::Eviction),
            ("lazyfree-lazy-expire", larder_store::Disposal::Expiry),
            ("lazyfree-lazy-server-del", larder_store::Disposal::Overwrite),
        ] {
            self.keyspace.set_lazy(why, config.extra_flag(option));
        }
    }

    /// An owning handle, for threads that outlive the calling command.
    pub fn arc(&self) -> Arc<Shared> {
        self.me.get().and_then(|w| w.upgrade()).expect("Shared lives in an Arc")
    }

    /// Whether eviction may run now: a limit is set, no script is busy
    /// (it holds the world), and this is not a replica that leaves its
    /// keys to the primary's stream (replica-ignore-maxmemory). The
    /// check before each command, the cron and eviction ahead all ask it.
    pub fn may_evict(&self) -> bool {
        self.memory.limited()
            && !self.scripting.busy()
            && !self.replication.ignores_maxmemory()
            // A pause holds the dataset still: no evictions, and so no OOM
            // refusals either, as Redis's isSafeToPerformEvictions.
            // (The clock is read only while one may be on: this runs
            // before every command while a limit is set.)
            && !self.pause.holds(|| self.clock.now_ms())
    }

    pub fn uptime_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }
}

/// 40 random hex digits: a run id or a replication id.
pub(crate) fn random_hex_id() -> String {
    (0..40).map(|_| format!("{:x}", rand::random::<u8>() % 16)).collect()
}

/// A configured server, not yet listening.
pub struct Server {
    shared: Arc<Shared>,
}

impl Server {
    pub fn new(config: Config) -> Server {
        Server::with_clock(config, Arc::new(SystemClock))
    }

    /// A server whose keyspace reads time from `clock` (tests use a manual one).
    pub fn with_clock(config: Config, clock: Arc<dyn Clock>) -> Server {
        let keyspace = Keyspace::new(config.databases, config.shards);
        let commands = Arc::new(CommandTable::build());
        let watches: Arc<crate::multi::Watches> = Default::default();
        keyspace
            .effects
            .subscribe(Arc::new(crate::multi::WatchSink { watches: watches.clone(), commands: commands.clone() }));
        let pubsub: Arc<crate::pubsub::PubSub> = Default::default();
        let notifier = Arc::new(crate::notify::Notifier::new(pubsub.clone()));
        keyspace.effects.subscribe(notifier.clone());
        let tracking = Arc::new(crate::tracking::Tracking::new(commands.clone()));
        keyspace.effects.subscribe(tracking.clone());
        let blocking: Arc<crate::blocking::Blocking> = Default::default();
        keyspace.effects.subscribe(Arc::new(crate::blocking::BlockingSink {
            blocking: blocking.clone(),
            commands: commands.clone(),
        }));
        let aof: Arc<crate::aof::Aof> = Default::default();
        keyspace.effects.subscribe(aof.clone());
        let replication: Arc<crate::replication::Replication> = Default::default();
        keyspace.effects.subscribe(replication.clone());
        let run_id = random_hex_id();
        let (shutdown_tx, _) = watch::channel(false);
        let acl = crate::acl::Acl::new(commands.clone());
        let shared = Shared {
            acl,
            config: RwLock::new(config),
            keyspace,
            clock,
            stats: Stats::default(),
            clients: Clients::default(),
            commands,
            active_expire_enabled: AtomicBool::new(true),
            cron_paused: AtomicBool::new(false),
            run_id,
            started: quanta::Instant::now(),
            listen_addr: RwLock::new(None),
            listeners: Default::default(),
            tls: Default::default(),
            migrate_sockets: Default::default(),
            cron_loops: AtomicU64::new(0),
            blocking,
            world: Default::default(),
            watches,
            pubsub,
            slowlog: Default::default(),
            lazyfree: Default::default(),
            failover: Default::default(),
            latency: Default::default(),
            pause: Default::default(),
            monitors: Default::default(),
            notifier,
            tracking,
            scripting: Default::default(),
            memory: Default::default(),
            aof,
            replication,
            snapshots: Default::default(),
            shutdown_save: std::sync::atomic::AtomicU8::new(SHUTDOWN_DEFAULT),
            shutdown_now: Default::default(),
            shutdown_force: Default::default(),
            shutdown_callers: Default::default(),
            shutdown_deadline_ms: Default::default(),
            shutdown_tx,
            begin_tx: watch::channel(false).0,
            me: Default::default(),
        };
        shared.keyspace.set_disposer(Box::new(shared.lazyfree.clone()));
        let config = shared.config.read().clone();
        shared.apply_config(&config);
        shared.memory.mark_startup();
        shared.snapshots.last_save.store(shared.clock.now_ms() / 1000, Relaxed);
        let shared = Arc::new(shared);
        let _ = shared.me.set(Arc::downgrade(&shared));
        Server { shared }
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Listens on `unixsocket`, if it is set and not listened on yet;
    /// returns its path. Needs a runtime context.
    pub fn listen_unix(&self) -> std::io::Result<Option<String>> {
        let (path, perm) = {
            let config = self.shared.config.read();
            (
                config.extra("unixsocket").to_string(),
                // Checked as octal when set: CONFIG GET shows what was given.
                u32::from_str_radix(config.extra("unixsocketperm"), 8).unwrap_or(0),
            )
        };
        if path.is_empty() || self.shared.listeners.has_unix() {
            return Ok(None);
        }
        #[cfg(unix)]
        {
            self.shared
                .listeners
                .bind_unix(&path, perm)
                .map_err(|e| std::io::Error::new(e.kind(), format!("Failed opening Unix socket: {e} ({path})")))?;
            Ok(Some(path))
        }
        #[cfg(not(unix))]
        {
            let _ = perm;
            Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "Unix sockets need a Unix system"))
        }
    }

    /// Listens on `tls-port`, if it is set and not listened on yet, with
    /// the TLS configuration the `tls-*` parameters describe; returns the
    /// addresses. Needs a runtime context.
    pub fn listen_tls(&self) -> std::io::Result<Vec<String>> {
        let config = self.shared.config.read().clone();
        let port = config.extra_int("tls-port") as u16;
        if port == 0 || self.shared.listeners.has_tls() {
            return Ok(Vec::new());
        }
        let failed = |why: String| std::io::Error::other(why);
        self.shared.tls.configure(&config).map_err(|e| failed(format!("Failed to configure TLS: {e}")))?;
        let sockets = crate::listen::bind_tokio(&config.bind, port, config.tcp_backlog).map_err(failed)?;
        let addrs = sockets.iter().filter_map(|l| l.local_addr().ok()).map(|a| format!("{a} (TLS)")).collect();
        self.shared.listeners.install_tls(sockets);
        Ok(addrs)
    }

    /// Accepts connections on `listeners` (CONFIG SET port / bind may
    /// replace them), on `tls-port` and on `unixsocket` if set, until
    /// `shutdown` completes or SHUTDOWN is run.
    pub async fn run(self, listeners: Vec<TcpListener>, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        self.run_after(listeners, shutdown, None).await
    }

    /// [`Self::run`], serving clients while `startup` loads the dataset
    /// (see `snapshot::Loading`): the cron, background eviction and the
    /// link to a configured primary start once it is done. A load that
    /// fails ends the process, in the log, as one before serving did.
    pub async fn run_after(
        self,
        listeners: Vec<TcpListener>,
        shutdown: impl Future<Output = ()>,
        startup: Option<Startup>,
    ) -> std::io::Result<()> {
        self.listen_unix()?;
        self.listen_tls()?;
        let shared = self.shared;
        let loads = startup.is_some();
        if loads {
            shared.snapshots.loading.begin(shared.clock.now_ms());
        }
        let background = tokio::spawn(start_background(shared.clone(), startup));
        if loads {
            shared.snapshots.loading.sized().await;
        }
        shared.listeners.install(&shared, listeners);
        let mut stop = shared.shutdown_rx();
        let mut begun = shared.begin_tx.subscribe();
        tokio::pin!(shutdown);
        let mut signalled = false;
        let mut conns = tokio::task::JoinSet::new();
        loop {
            let shutting_down = tokio::select! {
                accepted = shared.listeners.accept() => {
                    let accepted = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            // Out of file descriptors and the like: back off, keep serving.
                            tracing::warn!("accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    };
                    match accepted {
                        Accepted::Tcp(stream, addr) => {
                            let laddr = tcp_options(&shared, &stream, addr);
                            let addr = Peer::Tcp(addr);
                            if let Some(stream) = admit(&shared, stream, &addr).await {
                                conns.spawn(crate::conn::connection::run(shared.clone(), stream, addr, laddr));
                            }
                        }
                        Accepted::Tls(stream, addr) => {
                            let laddr = tcp_options(&shared, &stream, addr);
                            let shared = shared.clone();
                            // The handshake runs in the connection's own task:
                            // a slow or silent peer holds up nobody else.
                            conns.spawn(async move {
                                let Some(stream) = handshake(&shared, stream, addr).await else { return };
                                let addr = Peer::Tcp(addr);
                                if let Some(stream) = admit(&shared, stream, &addr).await {
                                    crate::conn::connection::run(shared.clone(), stream, addr, laddr).await;
                                }
                            });
                        }
                        #[cfg(unix)]
                        Accepted::Unix(stream, path) => {
                            let addr = Peer::Unix(path);
                            if let Some(stream) = admit(&shared, stream, &addr).await {
                                conns.spawn(crate::conn::connection::run(shared.clone(), stream, addr.clone(), addr));
                            }
                        }
                    }
                    false
                }
                // The host's own stop (an embedded server's owner, a
                // test) is final: it has no second signal to send, so
                // a failed final snapshot does not keep the server up.
                _ = &mut shutdown, if !signalled => {
                    signalled = true;
                    shared.shutdown_force.store(true, Relaxed);
                    true
                }
                _ = stop.changed() => true,
                _ = begun.changed() => true,
                Some(_) = conns.join_next(), if !conns.is_empty() => false,
            };
            if shutting_down {
                wait_for_replicas(&shared).await;
                if final_save(&shared) {
                    break;
                }
                shutdown_failed(&shared);
            }
        }
        // New connections are refused from here on, not left in a backlog
        // nobody accepts (Shared, which holds the sockets, may outlive this).
        shared.listeners.close();
        shared.listeners.close_tls();
        // Redis removes its socket file as it exits.
        shared.listeners.close_unix();
        tracing::info!("shutting down: closing {} clients", shared.clients.count());
        shared.request_shutdown();
        let drain = async { while conns.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(5), drain).await.is_err() {
            conns.abort_all();
        }
        background.abort();
        // What was appended reaches the disk, whatever appendfsync says.
        shared.aof.flush_all();
        tracing::info!("Larder is now ready to exit, bye bye...");
        Ok(())
    }
}

/// The final snapshot a shutdown owes, taken while the connections are
/// still open, with writes held from here on so it holds every
/// acknowledged write. False when it failed and the server must stay up:
/// as Redis does, a server whose data could not be saved does not exit
/// and lose it, unless FORCE said to. True when no snapshot was due.
fn final_save(shared: &Arc<Shared>) -> bool {
    let mode = shared.shutdown_save.load(Relaxed);
    let save_points = !shared.config.read().save.trim().is_empty();
    if !(mode == SHUTDOWN_SAVE || (mode == SHUTDOWN_DEFAULT && save_points)) {
        return true;
    }
    // A dataset half loaded is never saved over the file it came from
    // (Redis turns such a SHUTDOWN into NOSAVE too).
    if shared.snapshots.loading.is_active() {
        tracing::warn!("Shutting down during the load: not saving.");
        return true;
    }
    let now = shared.clock.now_ms();
    // Held until the process ends (a day is forever here), or the save fails.
    let until = now + 86_400_000;
    shared.pause.start(crate::pause::Purpose::Shutdown, crate::pause::Mode::Write, until, now, &shared.keyspace);
    tracing::info!("Saving the final RDB snapshot before exiting.");
    crate::snapshot::wait_for_bgsave(shared);
    let _world = shared.world.write();
    match crate::snapshot::save(shared) {
        Ok(_) => true,
        Err(e) if shared.shutdown_force.load(Relaxed) => {
            tracing::warn!("Error trying to save the DB: {e}. Exit anyway (FORCE).");
            true
        }
        Err(e) => {
            tracing::warn!("Error trying to save the DB, can't exit: {e}");
            false
        }
    }
}

/// A shutdown that could not save: writes resume, the SHUTDOWN callers
/// get Redis's error, and the server goes on serving.
fn shutdown_failed(shared: &Shared) {
    tracing::warn!("Errors trying to shut down the server. Check the logs for more information.");
    shared.pause.end(crate::pause::Purpose::Shutdown, shared.clock.now_ms(), &shared.keyspace);
    shared.shutdown_deadline_ms.store(0, Relaxed);
    shared.shutdown_now.store(false, Relaxed);
    shared.shutdown_force.store(false, Relaxed);
    shared.shutdown_save.store(SHUTDOWN_DEFAULT, Relaxed);
    let error = larder_protocol::Frame::error(crate::error::CmdError::ShutdownFailed.to_string());
    for caller in shared.shutdown_callers.lock().drain(..) {
        caller.push_frame(&error, crate::pubsub::BufferLimit::default());
    }
}

/// Redis 7's `shutdown-timeout`: a primary whose replicas have not
/// acknowledged everything it sent pauses writes, asks them for their
/// offsets (REPLCONF GETACK) and waits, up to that many seconds, for each
/// to catch up, so a failover after a planned stop loses no acknowledged
/// write. Connections are still served meanwhile (reads; writes wait).
/// Skipped by SHUTDOWN NOW, a `shutdown-timeout` of 0, or no replicas.
/// Logs, as Redis does, each replica still behind and how many were in
/// sync.
async fn wait_for_replicas(shared: &Arc<Shared>) {
    let repl = &shared.replication;
    let timeout_s = shared.config.read().extra_int("shutdown-timeout").max(0) as u64;
    let in_sync = || repl.acked_at_least(repl.offset());
    let count = || repl.replicas(shared.clock.now_ms()).len();
    if count() == 0 {
        return;
    }
    if !shared.shutdown_now.load(Relaxed) && timeout_s > 0 && in_sync() < count() {
        let now = shared.clock.now_ms();
        let deadline = now + timeout_s * 1000;
        shared.shutdown_deadline_ms.store(deadline, Relaxed);
        // Writes wait until the deadline at most; the process ends then.
        shared.pause.start(crate::pause::Purpose::Shutdown, crate::pause::Mode::Write, deadline, now, &shared.keyspace);
        repl.request_acks();
        tracing::info!("Waiting for replicas before shutting down.");
        while in_sync() < count() && shared.clock.now_ms() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let now = shared.clock.now_ms();
    let (offset, replicas) = (repl.offset(), repl.replicas(now));
    for r in replicas.iter().filter(|r| r.offset != offset) {
        let state = if r.online { "online" } else { "wait_bgsave" };
        tracing::warn!(
            "Lagging replica {}:{} reported offset {} behind master, lag={}, state={state}.",
            r.ip,
            r.port,
            offset.saturating_sub(r.offset),
            if r.online { r.lag } else { 0 },
        );
    }
    let synced = replicas.iter().filter(|r| r.offset == offset).count();
    tracing::info!("{synced} of {} replicas are in sync when shutting down.", replicas.len());
}

/// Sets a new TCP connection's options (no Nagle delay, `tcp-keepalive`);
/// returns the local end it arrived at.
fn tcp_options(shared: &Shared, stream: &tokio::net::TcpStream, addr: SocketAddr) -> Peer {
    let _ = stream.set_nodelay(true);
    let keepalive = shared.config.read().tcp_keepalive;
    if keepalive > 0 {
        let _ = crate::listen::keep_alive(stream, keepalive);
    }
    Peer::Tcp(stream.local_addr().unwrap_or(addr))
}

/// How long a TLS client has to finish its handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A `tls-port` connection's TLS handshake; None (logged, as Redis logs
/// it) if it fails or takes too long.
async fn handshake(
    shared: &Shared,
    stream: tokio::net::TcpStream,
    addr: SocketAddr,
) -> Option<tokio_rustls::server::TlsStream<tokio::net::TcpStream>> {
    let acceptor = shared.tls.acceptor()?;
    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(e)) => {
            tracing::warn!("Error accepting a client connection: {e} (addr={addr})");
            None
        }
        Err(_) => {
            tracing::warn!("Error accepting a client connection: TLS handshake timed out (addr={addr})");
            None
        }
    }
}

/// Applies the connection-time gates: maxclients and protected mode.
async fn admit<S: Stream>(shared: &Shared, mut stream: S, addr: &Peer) -> Option<S> {
    shared.stats.total_connections_received.fetch_add(1, Relaxed);
    let refusal = refusal(&shared.config.read(), shared.acl.default_user().nopass, shared.clients.count(), addr);
    match refusal {
        Some(msg) => {
            shared.stats.rejected_connections.fetch_add(1, Relaxed);
            let _ = stream.write_all(msg.as_bytes()).await;
            None
        }
        None => Some(stream),
    }
}

/// Why a new connection must be refused, if it must: `maxclients`, then
/// protected mode (the default user needs no password and the client is
/// not on this host: loopback or the Unix socket).
fn refusal(config: &Config, open: bool, connected: usize, peer: &Peer) -> Option<&'static str> {
    if connected as u64 >= config.maxclients {
        Some(MAX_CLIENTS_REACHED)
    } else if config.protected_mode && open && !peer.is_local() {
        Some(DENIED_PROTECTED_MODE)
    } else {
        None
    }
}

/// Redis's serverCron, reduced to what exists: active expiry `hz` times a
/// second, the memory reading and background eviction, and closing
/// clients idle longer than `timeout`.
async fn cron(shared: Arc<Shared>) {
    /// Keys one shard may expire per tick, so no lock is held for long.
    const EXPIRE_BUDGET: usize = 200;
    let mut last_second = Instant::now();
    loop {
        let hz = shared.config.read().hz.max(1);
        tokio::time::sleep(Duration::from_millis(1000 / hz)).await;
        if shared.cron_paused.load(Relaxed) {
            continue;
        }
        // Not in the middle of an EXEC or script (see multi.rs), and never
        // waiting for one: this task shares a runtime thread with
        // connections, which must keep answering BUSY meanwhile.
        if shared.active_expire_enabled.load(Relaxed) {
            if let Some(_world) = shared.world.try_read() {
                let started = Instant::now();
                // active-expire-effort 1..10 looks at more keys a cycle, as
                // Redis's keys per loop grow (20, then 5 more a step).
                let effort = shared.config.read().extra_int("active-expire-effort").clamp(1, 10) as usize;
                shared.keyspace.active_expire(shared.clock.now_ms(), EXPIRE_BUDGET * (3 + effort) / 4);
                let took = started.elapsed();
                shared.stats.expire_cycle_us.fetch_add(took.as_micros() as u64, Relaxed);
                shared.latency.sample_if_needed("expire-cycle", took.as_millis() as u64);
            }
        }
        shared.tracking.enforce_limit();
        shared.failover.tick(&shared);
        if shared.may_evict() {
            // Eviction a command left unfinished at its time limit goes on
            // here, as Redis's eviction timer does.
            if let Some(_world) = shared.world.try_read() {
                shared.memory.enforce_in_background(&shared.keyspace, shared.clock.now_ms());
            }
        }
        let timeout = shared.config.read().timeout;
        shared.clients.tick(shared.uptime_ms(), timeout);
        let st = &shared.stats;
        let totals = [
            st.total_commands_processed.get(),
            st.total_net_input_bytes.get(),
            st.total_net_output_bytes.get(),
            st.total_net_repl_input_bytes.get(),
            st.total_net_repl_output_bytes.get(),
        ];
        st.rates.lock().sample(shared.uptime_ms(), totals);
        if last_second.elapsed() >= Duration::from_secs(1) {
            last_second = Instant::now();
            // A save's or rewrite's cut begins under the world lock, as
            // BGSAVE's and PSYNC's do: never inside an EXEC or a script,
            // whose writes it would split (a busy moment waits a second).
            if let Some(_world) = shared.world.try_read() {
                crate::snapshot::cron_tick(&shared);
                crate::aof::cron_tick(&shared);
            }
            shared.migrate_sockets.close_idle();
            let period = shared.config.read().repl_ping_replica_period;
            shared.replication.cron_tick(shared.clock.now_ms(), period);
            let repl_timeout = shared.config.read().extra_int("repl-timeout") as u64;
            for id in shared.replication.timed_out(shared.clock.now_ms(), repl_timeout) {
                tracing::warn!("Disconnecting timedout replica (client id {id})");
                shared.clients.kill(id);
            }
        }
        shared.cron_loops.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Eviction ahead (memory.rs): woken by a command that found memory near
/// maxmemory, it evicts a batch at a time, each when the worker has run
/// every ready task and polled for I/O, until memory is under the low mark.
/// Like the cron it never waits for an EXEC or a script, and DEBUG
/// PAUSE-CRON stops it too (tests that pause the cron want no eviction
/// behind their back).
async fn evict_ahead(shared: Arc<Shared>) {
    use crate::memory::Evicted;
    loop {
        shared.memory.ahead_wanted().await;
        loop {
            tokio::task::yield_now().await;
            if shared.cron_paused.load(Relaxed) || !shared.may_evict() {
                break;
            }
            let Some(world) = shared.world.try_read() else { break };
            match shared.memory.evict_ahead(&shared.keyspace, shared.clock.now_ms()) {
                Evicted::Bounded => continue,
                Evicted::Under => break,
                // Nothing the policy may take (noeviction, volatile-* with
                // no TTLs): do not come back at every command.
                Evicted::Nothing => {
                    drop(world);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    break;
                }
            }
        }
        shared.memory.ahead_done();
    }
}

/// Loads the dataset (on a blocking thread).
pub type Loader = Box<dyn FnOnce(&Shared) -> anyhow::Result<()> + Send>;

/// The start-up load and what follows it, for [`Server::run_after`].
pub struct Startup {
    pub load: Loader,
    /// Runs once it is loaded: the ready line, the service manager's
    /// notification.
    pub ready: Box<dyn FnOnce() + Send>,
}

/// Loads the dataset if there is a `startup`, then runs the cron, the
/// eviction ahead of writes and the link to a configured primary until
/// aborted (at shutdown).
async fn start_background(shared: Arc<Shared>, startup: Option<Startup>) {
    if let Some(Startup { load, ready }) = startup {
        let loader = shared.clone();
        let loaded = tokio::task::spawn_blocking(move || load(&loader)).await;
        match loaded {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!("{e:#}");
                std::process::exit(1);
            }
            Err(e) => {
                tracing::error!("the load failed: {e}");
                std::process::exit(1);
            }
        }
        shared.snapshots.loading.end();
        ready();
    }
    // `replicaof` in the config: follow that primary from the start.
    let upstream = shared.config.read().replicaof.clone();
    if let Some((host, port)) = upstream.split_once(' ') {
        let port = port.parse().expect("checked when the config was read");
        tracing::info!("REPLICAOF {host}:{port} (from the configuration)");
        shared.replication.start_from_config();
        shared.replication.follow(&shared, host.to_string(), port);
    }
    tokio::join!(cron(shared.clone()), evict_ahead(shared.clone()));
}

/// Serves `listener` with `config` until `shutdown` completes.
pub async fn serve(listener: TcpListener, config: Config, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
    Server::new(config).run(vec![listener], shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protected_mode_refuses_remote_clients_without_password() {
        let tcp = |ip: &str| Peer::Tcp(SocketAddr::new(ip.parse().unwrap(), 6379));
        let (local, local6, remote) = (&tcp("127.0.0.1"), &tcp("::1"), &tcp("192.0.2.7"));
        let unix = &Peer::Unix("/tmp/larder.sock".into());
        let mut c = Config::default();
        assert_eq!(refusal(&c, true, 0, local), None);
        assert_eq!(refusal(&c, true, 0, local6), None);
        assert_eq!(refusal(&c, true, 0, unix), None, "a Unix socket client is local");
        assert_eq!(refusal(&c, true, 0, remote), Some(DENIED_PROTECTED_MODE));
        assert_eq!(refusal(&c, false, 0, remote), None, "a password lifts protected mode");
        c.protected_mode = false;
        assert_eq!(refusal(&c, true, 0, remote), None);
        c.maxclients = 3;
        assert_eq!(refusal(&c, true, 3, local), Some(MAX_CLIENTS_REACHED));
        assert_eq!(refusal(&c, true, 3, unix), Some(MAX_CLIENTS_REACHED));
    }
}
