//! The larder-server binary: redis-server's command line, tracing logs,
//! and signal handling around `larder_server::Server`.

use anyhow::Context;
use clap::Parser;
use larder_server::config::{args_to_config_text, Config};
use larder_server::Server;

/// A Redis-compatible in-memory data store.
///
/// Takes redis-server's arguments: an optional redis.conf-syntax file, then
/// any config directive as a flag, e.g. `--port 6380 --requirepass s3cret
/// --databases 16 --maxclients 10000 --timeout 0 --bind 127.0.0.1 ::1
/// --protected-mode yes --proto-max-bulk-len 512mb --hz 10 --shards 1024`.
/// With no arguments it listens on 127.0.0.1:6379.
#[derive(Parser, Debug)]
#[command(name = "larder-server", version, verbatim_doc_comment)]
struct Cli {
    /// [config-file] [--directive value ...]
    #[arg(allow_hyphen_values = true, trailing_var_arg = true, value_name = "ARGS")]
    args: Vec<String>,
}

fn load_config(args: &[String]) -> anyhow::Result<Config> {
    let (file, flags) = args_to_config_text(args).map_err(anyhow::Error::msg)?;
    let mut config = Config::default();
    if let Some(path) = file {
        let text =
            std::fs::read_to_string(&path).with_context(|| format!("Fatal error, can't open config file '{path}'"))?;
        config.apply_text(&text).map_err(anyhow::Error::msg)?;
        // Absolute, as Redis keeps it: CONFIG REWRITE must find it after
        // a `dir` change moves the working directory.
        let path = std::path::Path::new(&path);
        config.config_file = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()).display().to_string();
    }
    config.apply_text(&flags).map_err(anyhow::Error::msg)?;
    Ok(config)
}

fn main() {
    let cli = Cli::parse();
    let config = match load_config(&cli.args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e:#}");
            std::process::exit(1);
        }
    };
    // Redis checks the log file while it reads its config, before it
    // detaches: after that, standard error goes nowhere.
    if let Err(e) = larder_server::logging::init(&config.logfile, &config.loglevel) {
        eprintln!("Can't open the log file: {e}");
        std::process::exit(1);
    }
    larder_server::crash::install(&config.logfile);
    // Before the runtime starts its threads: a fork keeps only the
    // calling thread.
    let detached = larder_server::process::detach(&config);
    if let Err(e) = try_main(config, detached) {
        tracing::error!("{e:#}");
        std::process::exit(1);
    }
}

fn try_main(config: Config, detached: bool) -> anyhow::Result<()> {
    let threads = config.worker_threads(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2));
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder
        .worker_threads(threads)
        .thread_stack_size(larder_server::WORKER_STACK_BYTES)
        // Each thread's memory counts from its start (see memory.rs),
        // and each gets room to report a crash in (see crash.rs).
        .on_thread_start(|| {
            larder_server::memory::publish();
            larder_server::crash::arm_thread();
        })
        .on_thread_stop(larder_server::crash::disarm_thread)
        .enable_all();
    // tokio runs a task woken by the I/O driver or by another task before
    // the ones already queued (its LIFO slot), so of two connections whose
    // requests arrive together the later one was often served first: a
    // client's SET sent just after another's XREADGROUP BLOCK overtook it
    // in 55 of 2,000 tries, which Redis, serving in arrival order, never
    // does (and Redis's own test suite relies on). Without the slot they
    // are served in order; throughput was the same within the noise
    // (BENCHMARKS.md).
    #[cfg(tokio_unstable)]
    builder.disable_lifo_slot();
    let runtime = builder.build()?;
    let result = runtime.block_on(run(config, detached));
    // A load still running (a shutdown during it) is not waited for.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    result
}

async fn run(mut config: Config, detached: bool) -> anyhow::Result<()> {
    // `port 0` beside `tls-port` or `unixsocket` is Redis's "no plain TCP".
    // Alone it takes a port the system picks; CONFIG GET port then names
    // it, and a CONFIG SET port of that value changes nothing.
    let plain = config.port != 0 || (config.extra_int("tls-port") == 0 && config.extra("unixsocket").is_empty());
    let listeners = match plain {
        true => larder_server::listen::bind_tokio(&config.bind, config.port, config.tcp_backlog)
            .map_err(anyhow::Error::msg)?,
        false => Vec::new(),
    };
    let mut addrs: Vec<String> = listeners.iter().filter_map(|l| l.local_addr().ok()).map(|a| a.to_string()).collect();
    if let Some(l) = listeners.first() {
        config.port = l.local_addr()?.port();
    }
    // Redis's banner, once the port is bound: with `always-show-logo` its
    // logo, which names the port and the pid (Redis's test suite waits
    // for " PID: <pid>" before it connects), else one line.
    match config.extra_flag("always-show-logo") {
        true => tracing::info!(
            "Larder {} (Redis {} compatible) 64 bit, mode standalone, Port: {}, PID: {}",
            env!("CARGO_PKG_VERSION"),
            larder_server::cmd::connection::REDIS_VERSION,
            config.port,
            std::process::id()
        ),
        false => tracing::info!("Running mode=standalone, port={}.", config.port),
    }
    let (databases, shards) = (config.databases, config.shards.next_power_of_two());
    // A detached server writes a pid file even when none is named, at
    // Redis's default path, as Redis does: it is how an init script finds
    // the process it started.
    let pidfile = match config.extra("pidfile") {
        "" if detached => larder_server::process::DEFAULT_PIDFILE.to_string(),
        named => named.to_string(),
    };
    let supervised = config.extra("supervised").to_string();
    larder_server::process::tune(&config);
    let server = Server::new(config);
    {
        let shared = server.shared();
        larder_server::acl::load_at_startup(&shared.acl, &shared.config.read()).map_err(anyhow::Error::msg)?;
    }
    // Every socket is bound before the load, which runs while clients are
    // served (they get LOADING until it is done: see snapshot::Loading).
    addrs.extend(server.listen_tls()?);
    if let Some(path) = server.listen_unix()? {
        addrs.push(path);
    }
    // A signal during the load stops the server without saving.
    shutdown_signal(server.shared().clone())?;
    let pid = larder_server::process::PidFile::create(&pidfile);
    let ready = move || {
        // Redis's words start the line: tools and Redis's own test suite
        // wait for "Ready to accept connections" in the log, once the
        // data is loaded.
        tracing::info!(
            "Ready to accept connections on {} (Larder {}, {databases} databases, {shards} shards each)",
            addrs.join(" and "),
            env!("CARGO_PKG_VERSION"),
        );
        larder_server::process::notify_ready(&supervised);
    };
    let startup = larder_server::server::Startup {
        load: Box::new(larder_server::snapshot::load_at_startup),
        ready: Box::new(ready),
    };
    server.run_after(listeners, std::future::pending(), Some(startup)).await?;
    drop(pid);
    Ok(())
}

/// Registers SIGINT and SIGTERM now; each one received starts a shutdown
/// (as SHUTDOWN does), having set how it saves from `shutdown-on-sigint`
/// or `shutdown-on-sigterm` (`default`: as the save points say). Every
/// signal counts: a shutdown whose final snapshot failed leaves the
/// server up, and the next signal tries again, as in Redis.
fn shutdown_signal(shared: std::sync::Arc<larder_server::Shared>) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    tokio::spawn(async move {
        loop {
            let option = tokio::select! {
                _ = int.recv() => {
                    tracing::warn!("Received SIGINT scheduling shutdown...");
                    "shutdown-on-sigint"
                }
                _ = term.recv() => {
                    tracing::warn!("Received SIGTERM scheduling shutdown...");
                    "shutdown-on-sigterm"
                }
            };
            let flags = shared.config.read().extra(option).to_string();
            let has = |flag: &str| flags.split(' ').any(|f| f == flag);
            let mode = if has("nosave") {
                larder_server::server::SHUTDOWN_NOSAVE
            } else if has("save") {
                larder_server::server::SHUTDOWN_SAVE
            } else {
                larder_server::server::SHUTDOWN_DEFAULT
            };
            shared.begin_shutdown(mode, has("now"), has("force"));
        }
    });
    Ok(())
}
