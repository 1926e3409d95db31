//! What the server does to its own process at a config's word: detaching
//! from the terminal, the pid file, readiness for systemd, transparent huge pages, the kernel's OOM
//! score and jemalloc's background thread (Redis's `pidfile`,
//! `daemonize`, `supervised`, `disable-thp`, `oom-score-adj`, `jemalloc-bg-thread`).
//!
//! Each step that fails logs a warning and the server goes on, as Redis
//! does: none of them is needed to serve data correctly.

use crate::config::Config;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};

/// Where a detached server writes its pid when `pidfile` names no file
/// (Redis's `CONFIG_DEFAULT_PID_FILE`).
pub const DEFAULT_PIDFILE: &str = "/var/run/redis.pid";

/// Whether a service manager watches this process (`supervised`, as
/// Redis's `redisIsSupervised` decides): systemd through NOTIFY_SOCKET,
/// upstart through UPSTART_JOB, either under `auto`.
fn supervised(mode: &str) -> bool {
    let systemd = std::env::var_os("NOTIFY_SOCKET").is_some();
    let upstart = std::env::var_os("UPSTART_JOB").is_some();
    match mode {
        "systemd" => systemd,
        "upstart" => upstart,
        "auto" => systemd || upstart,
        _ => false,
    }
}

/// `daemonize yes` without a service manager: the process forks, the
/// parent exits at once, and the child carries on in a session of its
/// own with standard input, output and error on /dev/null, as Redis's
/// `daemonize()`. So a `logfile` of "" logs nowhere, as in Redis. Returns
/// whether it detached. Must run before any thread starts: the child
/// keeps only the thread that forked.
pub fn detach(config: &Config) -> bool {
    if !config.daemonize || supervised(config.extra("supervised")) {
        return false;
    }
    // SAFETY: daemon(3) forks, `_exit`s the parent and in the child calls
    // setsid and dup2s /dev/null over fds 0-2; it takes no pointers. The
    // caller runs it while the process has one thread, so the child is
    // not left holding a lock another thread had.
    #[allow(unsafe_code)]
    let r = unsafe { libc::daemon(1, 0) };
    if r != 0 {
        tracing::warn!("Failed to daemonize: {}", std::io::Error::last_os_error());
        return false;
    }
    true
}

/// The pid file, removed when this drops (a clean shutdown).
pub struct PidFile(Option<std::path::PathBuf>);

impl PidFile {
    /// Writes this process's id to `path` (empty: no file).
    pub fn create(path: &str) -> PidFile {
        if path.is_empty() {
            return PidFile(None);
        }
        match std::fs::write(path, format!("{}\n", std::process::id())) {
            Ok(()) => PidFile(Some(path.into())),
            Err(e) => {
                tracing::warn!("Failed to write PID file {path}: {e}");
                PidFile(None)
            }
        }
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Tells systemd the server is ready (`supervised systemd`, or `auto`
/// under a unit that set NOTIFY_SOCKET), as a `Type=notify` unit such as
/// Debian's redis-server.service waits for.
pub fn notify_ready(supervised: &str) {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
        if supervised == "systemd" {
            tracing::warn!("systemd supervision requested or auto-detected, but NOTIFY_SOCKET not found!");
        }
        return;
    };
    if !matches!(supervised, "systemd" | "auto") {
        return;
    }
    use std::os::unix::ffi::OsStrExt;
    let sent = (|| {
        let sock = std::os::unix::net::UnixDatagram::unbound()?;
        let bytes = socket.as_bytes();
        // A leading '@' names the abstract namespace.
        if let Some(name) = bytes.strip_prefix(b"@") {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            sock.send_to_addr(b"READY=1\n", &addr)
        } else {
            sock.send_to(b"READY=1\n", std::path::Path::new(&socket))
        }
    })();
    match sent {
        Ok(_) => tracing::info!("Supervised by systemd. Please make sure you set appropriate values for TimeoutStartSec and TimeoutStopSec in your service unit."),
        Err(e) => tracing::warn!("Can't send notification to systemd: {e}"),
    }
}

/// Start-up settings of the process: `disable-thp` (what [`apply`] sets
/// comes with the config's first application).
pub fn tune(config: &Config) {
    if config.extra_flag("disable-thp") {
        // Huge pages make a copy-on-write of one byte copy 2 MB, and
        // jemalloc's purging cannot give them back piecemeal.
        // SAFETY: prctl with integer arguments only; it touches no memory
        // of ours.
        #[allow(unsafe_code)]
        let r = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
        if r != 0 {
            tracing::warn!("Failed to disable transparent huge pages: {}", std::io::Error::last_os_error());
        }
    }
}

/// The OOM score the process started with (Redis's base for `relative`).
static BASE_OOM_SCORE: AtomicI64 = AtomicI64::new(i64::MIN);

const OOM_SCORE_FILE: &str = "/proc/self/oom_score_adj";

/// What may change at runtime: jemalloc's background purging thread and
/// the OOM score for the server's role (`oom-score-adj-values`' first
/// value for a primary, second for a replica).
pub fn apply(config: &Config, replica: bool) {
    let bg = config.extra_flag("jemalloc-bg-thread");
    if let Err(e) = tikv_jemalloc_ctl::background_thread::write(bg) {
        tracing::warn!("Failed to set jemalloc's background thread: {e}");
    }
    set_oom_score(config, replica);
}

fn set_oom_score(config: &Config, replica: bool) {
    let mode = config.extra("oom-score-adj");
    let read = || std::fs::read_to_string(OOM_SCORE_FILE).ok()?.trim().parse::<i64>().ok();
    if BASE_OOM_SCORE.load(Relaxed) == i64::MIN {
        match read() {
            Some(base) => BASE_OOM_SCORE.store(base, Relaxed),
            None => return,
        }
    }
    let base = BASE_OOM_SCORE.load(Relaxed);
    let values: Vec<i64> = config.extra("oom-score-adj-values").split(' ').filter_map(|v| v.parse().ok()).collect();
    let value = values.get(usize::from(replica)).copied().unwrap_or(0);
    let want = match mode {
        "no" => base,
        "absolute" => value,
        _ => base + value,
    }
    .clamp(-1000, 1000);
    if read() == Some(want) {
        return;
    }
    if let Err(e) = std::fs::write(OOM_SCORE_FILE, want.to_string()) {
        tracing::warn!("Unable to write oom_score_adj: {e}");
    }
}
