//! Where the server's log goes and how much of it: Redis's `logfile` and
//! `loglevel`.
//!
//! `logfile ""` is standard output, as in Redis (which is where a service
//! manager or a test harness reads it). A path is opened for appending
//! anew for each line, as Redis's `serverLog` does: a log that logrotate
//! moves away is started afresh at the next line, with no signal and no
//! `copytruncate`. Lines are few (start-up, saves, replication, warnings),
//! so the open per line costs nothing that matters. Each line reaches the
//! file in one `write` on an `O_APPEND` descriptor, so lines from two
//! threads never interleave.
//!
//! The level is a reloadable filter, so `CONFIG SET loglevel` takes effect
//! at once, as in Redis. `RUST_LOG`, when set, decides the level at start
//! instead (a finer filter for debugging Larder itself).

use parking_lot::Mutex;
use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Registry};

/// The installed filter's handle and the `loglevel` it was last set
/// from, once [`init`] has run (an embedded server, as in tests, has none
/// and leaves logging to its host).
static LEVEL: OnceLock<(reload::Handle<EnvFilter, Registry>, Mutex<String>)> = OnceLock::new();

/// Redis's level names as filters: `verbose` and `notice` are both
/// tracing's `info` (Larder has no line between them), `nothing` is off.
fn filter(loglevel: &str) -> EnvFilter {
    EnvFilter::new(match loglevel {
        "debug" => "debug",
        "warning" => "warn",
        "nothing" => "off",
        _ => "info",
    })
}

/// Where lines go.
#[derive(Clone)]
enum Target {
    Stdout,
    File(PathBuf),
}

/// One line's writer: standard output, or the log file opened for that
/// line (`None` when it could not be opened: the line is dropped, as
/// Redis drops it).
enum Sink {
    Stdout(std::io::Stdout),
    File(Option<std::fs::File>),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::Stdout(s) => s.write(buf),
            Sink::File(Some(f)) => f.write(buf),
            Sink::File(None) => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Stdout(s) => s.flush(),
            Sink::File(Some(f)) => f.flush(),
            Sink::File(None) => Ok(()),
        }
    }
}

fn open(path: &PathBuf) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new().create(true).append(true).open(path)
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Target {
    type Writer = Sink;

    fn make_writer(&'a self) -> Sink {
        match self {
            Target::Stdout => Sink::Stdout(std::io::stdout()),
            Target::File(path) => Sink::File(open(path).ok()),
        }
    }
}

/// Installs the process's logger for `logfile` and `loglevel`. Fails, as
/// Redis does at start, when the log file cannot be opened; the caller
/// reports that on standard error, the only place left to say it.
pub fn init(logfile: &str, loglevel: &str) -> std::io::Result<()> {
    let target = match logfile {
        "" => Target::Stdout,
        path => {
            let path = PathBuf::from(path);
            open(&path)?;
            Target::File(path)
        }
    };
    let ansi = matches!(target, Target::Stdout) && std::io::IsTerminal::is_terminal(&std::io::stdout());
    let initial = EnvFilter::try_from_default_env().unwrap_or_else(|_| filter(loglevel));
    let (level, handle) = reload::Layer::new(initial);
    tracing_subscriber::registry()
        .with(level)
        .with(tracing_subscriber::fmt::layer().with_writer(target).with_ansi(ansi))
        .init();
    let _ = LEVEL.set((handle, Mutex::new(loglevel.to_string())));
    Ok(())
}

/// Applies `loglevel` when it changed (CONFIG SET; the server applies
/// its whole config at start too, which must leave a `RUST_LOG` filter in
/// place). Without [`init`] (a server embedded in another program) it does
/// nothing: the host owns the logger.
pub fn set_level(loglevel: &str) {
    let Some((handle, current)) = LEVEL.get() else { return };
    let mut current = current.lock();
    if *current != loglevel {
        let _ = handle.reload(filter(loglevel));
        *current = loglevel.to_string();
    }
}
