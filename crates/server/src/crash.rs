//! What the server says when it dies: Redis's bug report on a fatal
//! signal, and panics in the log.
//!
//! A server that dies of SIGSEGV, SIGBUS, SIGFPE, SIGILL or SIGABRT writes
//! a report to its log before it goes, as Redis's `sigsegvHandler` does:
//! the signal, the address it touched, the thread, and the stack. With
//! `logfile` set, standard error usually goes nowhere (a daemon's is
//! /dev/null), so without this a crash left no trace but its exit status.
//! `crash-log-enabled no` turns the report off; the signal then kills the
//! process as it would have anyway.
//!
//! Being a signal handler shapes it:
//!
//! - The first lines are formatted on the stack and written with
//!   `write(2)`: they get out even when the crash was inside the allocator
//!   and the allocator's lock is held.
//! - The stack trace then needs the allocator (and the symbols), as
//!   Redis's `backtrace_symbols` does. If that deadlocks, an `alarm`
//!   set first ends the process.
//! - The handler runs on an alternate stack, so a stack overflow still
//!   reaches it. Std's alternate stacks are a few kilobytes, too few to
//!   read debug info, so the runtime's threads get larger ones
//!   ([`arm_thread`]); elsewhere a report cut short by its own overflow
//!   still has its first lines.
//! - Afterwards the signal's default action runs, so the exit status
//!   (and any core dump) is what it would have been without a report.
//!
//! Panics are not signals: tokio catches one in a connection's task,
//! which drops that connection and leaves the server up. The panic hook
//! puts the message and the stack in the log, where an operator looks.
//!
//! Every unsafe block here is a libc call; each says what it relies on.
#![allow(unsafe_code)]

use std::cell::Cell;
use std::ffi::CString;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::OnceLock;

static ENABLED: AtomicBool = AtomicBool::new(true);

/// The log file's path (`None`: standard output).
static LOGFILE: OnceLock<Option<CString>> = OnceLock::new();

const SIGNALS: [libc::c_int; 5] = [libc::SIGSEGV, libc::SIGBUS, libc::SIGFPE, libc::SIGILL, libc::SIGABRT];

/// Room for formatting a symbolized stack trace, a few hundred
/// kilobytes at most; pages never touched cost nothing.
const ALT_STACK_BYTES: usize = 1 << 20;

/// Seconds a report may take before the process ends without it.
const REPORT_SECONDS: libc::c_uint = 10;

/// Installs the handlers and the panic hook, for the server binary (an
/// embedded server leaves its host's alone). `logfile` as configured.
pub fn install(logfile: &str) {
    let _ = LOGFILE.set((!logfile.is_empty()).then(|| CString::new(logfile).expect("config values have no NUL")));
    // SAFETY: a zeroed sigaction is a valid value to fill in; the handler
    // has the SA_SIGINFO signature.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_fatal_signal as *const () as usize;
        // NODEFER and RESETHAND: a fault inside the report, or the signal
        // raised again at the end, takes the default action at once.
        action.sa_flags = libc::SA_SIGINFO | libc::SA_NODEFER | libc::SA_RESETHAND | libc::SA_ONSTACK;
        libc::sigemptyset(&mut action.sa_mask);
        for sig in SIGNALS {
            libc::sigaction(sig, &action, std::ptr::null_mut());
        }
    }
    arm_thread();
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let backtrace = std::backtrace::Backtrace::force_capture();
        tracing::error!(
            "panic in thread '{}' at {}: {}\n{backtrace}",
            thread.name().unwrap_or("<unnamed>"),
            info.location().map_or_else(|| "?".to_string(), |l| l.to_string()),
            panic_message(info),
        );
    }));
}

fn panic_message(info: &std::panic::PanicHookInfo<'_>) -> String {
    match (info.payload().downcast_ref::<&str>(), info.payload().downcast_ref::<String>()) {
        (Some(s), _) => s.to_string(),
        (_, Some(s)) => s.clone(),
        _ => "Box<dyn Any>".to_string(),
    }
}

/// `crash-log-enabled`.
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Relaxed);
}

thread_local! {
    /// This thread's alternate stack, from [`arm_thread`].
    static ALT_STACK: Cell<Option<(usize, usize)>> = const { Cell::new(None) };
}

/// Gives the calling thread an alternate signal stack big enough for a
/// symbolized stack trace (the runtime calls it as each thread starts).
pub fn arm_thread() {
    if ALT_STACK.with(Cell::get).is_some() {
        return;
    }
    // SAFETY: a fresh private mapping, handed to sigaltstack whole; it is
    // unmapped only after the stack is switched off (`disarm_thread`).
    unsafe {
        let page = libc::sysconf(libc::_SC_PAGESIZE) as usize;
        let len = ALT_STACK_BYTES + page;
        let base = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        );
        if base == libc::MAP_FAILED {
            return;
        }
        // The lowest page is a guard: a report that overflows faults
        // instead of writing over whatever lies below.
        libc::mprotect(base, page, libc::PROT_NONE);
        let stack = libc::stack_t { ss_sp: base.add(page), ss_flags: 0, ss_size: ALT_STACK_BYTES };
        if libc::sigaltstack(&stack, std::ptr::null_mut()) != 0 {
            libc::munmap(base, len);
            return;
        }
        ALT_STACK.with(|s| s.set(Some((base as usize, len))));
    }
}

/// Undoes [`arm_thread`] as the thread ends (threads of the runtime's
/// blocking pool come and go).
pub fn disarm_thread() {
    let Some((base, len)) = ALT_STACK.with(Cell::take) else { return };
    // SAFETY: switch the stack off before freeing it; a thread never
    // exits while running a handler on it.
    unsafe {
        let off = libc::stack_t { ss_sp: std::ptr::null_mut(), ss_flags: libc::SS_DISABLE, ss_size: 0 };
        libc::sigaltstack(&off, std::ptr::null_mut());
        libc::munmap(base as *mut libc::c_void, len);
    }
}

/// A line built on the stack: no allocation.
struct Line {
    buf: [u8; 512],
    len: usize,
}

impl Line {
    fn new() -> Line {
        Line { buf: [0; 512], len: 0 }
    }
}

impl std::fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

fn signal_name(sig: libc::c_int) -> &'static str {
    match sig {
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        _ => "?",
    }
}

/// The descriptor the report goes to, opened as `logging` opens the log
/// for each line (`open(2)` is safe in a handler).
fn log_fd() -> (libc::c_int, bool) {
    match LOGFILE.get() {
        Some(Some(path)) => {
            // SAFETY: a NUL-terminated path.
            let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT, 0o644) };
            (fd, fd >= 0)
        }
        _ => (libc::STDOUT_FILENO, false),
    }
}

fn write_all(fd: libc::c_int, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: writing from a live slice.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if n <= 0 {
            return;
        }
        bytes = &bytes[n as usize..];
    }
}

extern "C" fn on_fatal_signal(sig: libc::c_int, info: *mut libc::siginfo_t, _context: *mut libc::c_void) {
    if ENABLED.load(Relaxed) {
        // SAFETY: alarm is async-signal-safe; SIGALRM's default action
        // ends the process if the report hangs.
        unsafe {
            libc::signal(libc::SIGALRM, libc::SIG_DFL);
            libc::alarm(REPORT_SECONDS);
        }
        report(sig, info);
    }
    // SAFETY: back to the default action, then the same signal again:
    // the exit status (and a core dump) are the signal's own.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

fn report(sig: libc::c_int, info: *mut libc::siginfo_t) {
    let (fd, opened) = log_fd();
    let pid = std::process::id();
    let mut line = Line::new();
    let _ = writeln!(line, "\n\n=== LARDER BUG REPORT START: Cut & paste starting from here ===");
    // SAFETY: the kernel hands a valid siginfo to an SA_SIGINFO handler.
    let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr()) };
    let _ = writeln!(
        line,
        "{pid}:M # Larder {} crashed by signal: {sig} ({}), si_code: {code}",
        env!("CARGO_PKG_VERSION"),
        signal_name(sig)
    );
    // A positive code is the kernel's own, with a faulting address; a
    // signal sent with kill(2) or raise(3) has none.
    if code > 0 && matches!(sig, libc::SIGSEGV | libc::SIGBUS | libc::SIGFPE | libc::SIGILL) {
        let _ = writeln!(line, "{pid}:M # Accessing address: {addr:p}");
    }
    let mut name = [0u8; 32];
    // SAFETY: the buffer's length is passed; the name is NUL-terminated.
    unsafe { libc::pthread_getname_np(libc::pthread_self(), name.as_mut_ptr().cast(), name.len()) };
    let name = std::ffi::CStr::from_bytes_until_nul(&name).map(|c| c.to_string_lossy()).unwrap_or_default();
    let _ = writeln!(line, "{pid}:M # Crashed running thread '{name}'");
    write_all(fd, &line.buf[..line.len]);

    // From here the allocator is needed (see the module docs).
    let trace = std::backtrace::Backtrace::force_capture();
    let mut text = String::new();
    let _ = writeln!(text, "\n------ STACK TRACE ------\n{trace}\n------ END OF STACK TRACE ------");
    let _ = writeln!(
        text,
        "\n=== LARDER BUG REPORT END. Make sure to include from START to END. ===\n\n       \
         Please report the crash by opening an issue on github, with the lines above.\n"
    );
    write_all(fd, text.as_bytes());
    if opened {
        // SAFETY: the descriptor opened above.
        unsafe { libc::close(fd) };
    }
}

/// DEBUG SEGFAULT: a real fault, as Redis's is (a write to a read-only
/// page), so the report shows what a crash's would.
pub fn segfault() -> ! {
    // SAFETY: deliberately faults: the page is mapped read-only, and the
    // handler's default action ends the process at the write.
    unsafe {
        let page =
            libc::mmap(std::ptr::null_mut(), 4096, libc::PROT_READ, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0);
        if page != libc::MAP_FAILED {
            std::ptr::write_volatile(page.cast::<u8>(), 1);
        }
        libc::raise(libc::SIGSEGV);
    }
    // Reached only if something ignores SIGSEGV: end anyway.
    std::process::abort()
}
