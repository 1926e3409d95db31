//! The Lua debugger behind SCRIPT DEBUG (Redis's LDB), which `redis-cli
//! --ldb` and `--ldb-sync-mode` drive.
//!
//! A client that sent SCRIPT DEBUG YES or SYNC has its next EVAL run under
//! a line hook. At each stop the hook talks to the client itself, on the
//! connection's socket (blocking reads and writes on its descriptor), as
//! Redis does: the script is inside a Lua call, so the debugger cannot
//! return to the connection's task to read a command and come back. The
//! protocol is Redis's: each answer is an array of status lines, commands
//! arrive as RESP arrays, and the session ends with `<endsession>`, the
//! EVAL reply, and the connection closing.
//!
//! Redis runs a YES session in a forked child, so the server goes on
//! serving and the script's changes vanish with the child. Larder cannot
//! fork, so a YES session runs in place like a SYNC one (other clients get
//! BUSY meanwhile, as behind any long script) and refuses the script's
//! write commands: what redis-cli reports as "dataset changes rolled back"
//! then holds, since there were none. SYNC sessions run writes and keep
//! them, as Redis's do.
//!
//! A session lives in a thread-local: everything it serves (the EVAL, its
//! hook, the `redis.call`s and `redis.debug`s of its script) runs on the
//! thread that began it, and servers that share a process (tests, an
//! embedded Larder) each run their scripts on their own threads, so one's
//! session never sees another's script.
//!
//! The hook is a raw C hook, not mlua's: printing locals needs
//! `lua_getlocal` on the frame being stopped in, and raising `abort` from
//! inside a hook needs `lua_error`. Each unsafe block says what it relies
//! on; errors are raised only once no Rust value is left on the frame.
#![allow(unsafe_code)]

use larder_protocol::repr;
use mlua::ffi;
use std::cell::RefCell;
use std::ffi::{c_int, CStr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What SCRIPT DEBUG asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// YES: Redis forks; here, run in place with writes refused.
    NoWrites,
    /// SYNC: run in place, changes kept.
    Sync,
}

/// The error a YES session's write commands get.
pub const WRITE_REFUSED: &str = "ERR Larder runs SCRIPT DEBUG YES sessions without fork, so their changes could not \
     be rolled back: write commands are refused. Use SCRIPT DEBUG SYNC (redis-cli --ldb-sync-mode) to run them";

const MAX_LEN_DEFAULT: usize = 256;
const BREAKPOINTS_MAX: usize = 64;
/// A debugger command longer than this ends the session (Redis's bound).
const MAX_COMMAND_BUFFER: usize = 1 << 20;
/// How deep a logged value's nested tables are followed (LUA_MINSTACK/2).
const MAX_DEPTH: usize = 10;
/// How long a write to the client may wait (Redis's send timeout).
const SEND_TIMEOUT_MS: c_int = 5000;
/// Instructions between two looks at the clock, for the timeout stop.
const COUNT_EVERY: c_int = 100_000;

struct Session {
    fd: c_int,
    mode: Mode,
    /// The script's lines, for listings.
    src: Vec<Vec<u8>>,
    logs: Vec<Vec<u8>>,
    /// Stop at the next line.
    step: bool,
    /// redis.breakpoint() was called.
    luabp: bool,
    breakpoints: Vec<i32>,
    maxlen: usize,
    maxlen_hint_sent: bool,
    line: i32,
    /// Bytes read from the client and not yet a whole command.
    cbuf: Vec<u8>,
    /// Since the last stop: a script that runs this long unattended stops
    /// (an infinite loop, perhaps).
    since: Instant,
    timeout: Duration,
    kill: Arc<AtomicBool>,
    /// The tokio worker was handed on at the first stop.
    left_worker: bool,
}

thread_local! {
    static SESSION: RefCell<Option<Session>> = const { RefCell::new(None) };
}

/// Ends this thread's session when dropped (its last logs and `<endsession>` go out).
#[must_use = "the session ends when this is dropped"]
pub struct Running;

impl Drop for Running {
    fn drop(&mut self) {
        finish();
    }
}

/// Starts a session for the EVAL of `body` on the connection `fd`; it
/// lasts until the value returned is dropped.
pub fn begin(fd: i64, mode: Mode, body: &[u8], timeout_ms: u64, kill: Arc<AtomicBool>) -> Running {
    let mut body = body;
    while let [rest @ .., b'\n' | b'\r'] = body {
        body = rest;
    }
    let src = body.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    let timeout = Duration::from_millis(if timeout_ms == 0 { 5000 } else { timeout_ms });
    let session = Session {
        fd: fd as c_int,
        mode,
        src,
        logs: Vec::new(),
        step: true,
        luabp: false,
        breakpoints: Vec::new(),
        maxlen: MAX_LEN_DEFAULT,
        maxlen_hint_sent: false,
        line: 0,
        cbuf: Vec::new(),
        since: Instant::now(),
        timeout,
        kill,
        left_worker: false,
    };
    SESSION.with_borrow_mut(|s| *s = Some(session));
    tracing::warn!("Lua debugging session started ({mode:?})");
    Running
}

/// Ends the session: the last logs and `<endsession>` go out before the
/// EVAL's reply.
fn finish() {
    if let Some(mut s) = SESSION.with_borrow_mut(Option::take) {
        s.log("<endsession>".into());
        s.send_logs();
        tracing::warn!("Lua debugging session ended");
    }
}

/// A session is running on this thread (redis.debug and
/// redis.breakpoint act).
pub fn active() -> bool {
    SESSION.with_borrow(Option::is_some)
}

/// `f` with this thread's session, if one runs. Never called inside
/// another `with`, nor across a call into Lua (which may come back here).
fn with<R>(f: impl FnOnce(&mut Session) -> R) -> Option<R> {
    SESSION.with_borrow_mut(|s| s.as_mut().map(f))
}

/// Stepping: redis.call logs its commands and replies.
pub fn stepping() -> bool {
    with(|s| s.step).unwrap_or(false)
}

/// A YES session: the script may not write.
pub fn refuses_writes() -> bool {
    with(|s| s.mode == Mode::NoWrites).unwrap_or(false)
}

/// `<redis> cmd args…` for a command the script runs while stepping.
pub fn log_command(argv: &[&[u8]]) {
    with(|s| {
        let mut line = b"<redis>".to_vec();
        for (j, a) in argv.iter().enumerate() {
            if j == 10 {
                line.extend_from_slice(format!(" ... ({} more)", argv.len() - j - 1).as_bytes());
                break;
            }
            line.push(b' ');
            line.extend_from_slice(a);
        }
        s.log(line);
    });
}

/// `<error> …` for an error a command gave the script while stepping.
pub fn log_error(msg: &[u8]) {
    with(|s| s.log([b"<error> ".as_slice(), msg].concat()));
}

/// `<reply> …`: the reply (as RESP bytes) in the debugger's notation.
pub fn log_reply(resp: &[u8]) {
    with(|s| {
        let mut out = b"<reply> ".to_vec();
        human(&mut out, resp);
        s.log_trimmed(out);
    });
}

/// redis.breakpoint(): stop at the next line; false outside a session.
///
/// # Safety
/// Called by Lua, as a C function.
pub unsafe extern "C-unwind" fn lua_breakpoint(state: *mut ffi::lua_State) -> c_int {
    let set = with(|s| s.luabp = true).is_some();
    // SAFETY: a C function always has room for one result.
    unsafe { ffi::lua_pushboolean(state, set as c_int) };
    1
}

/// redis.debug(…): logs its arguments; nothing outside a session.
///
/// # Safety
/// Called by Lua, as a C function.
pub unsafe extern "C-unwind" fn lua_debug(state: *mut ffi::lua_State) -> c_int {
    if !active() {
        return 0;
    }
    // SAFETY: the arguments are the stack of this C call.
    let n = unsafe { ffi::lua_gettop(state) };
    let mut line = Vec::new();
    for i in 1..=n {
        if i > 1 {
            line.extend_from_slice(b", ");
        }
        // SAFETY: `i` is one of the arguments.
        unsafe { cat_value(&mut line, state, i, 0) };
    }
    with(|s| {
        let mut out = format!("<debug> line {}: ", s.line).into_bytes();
        out.extend_from_slice(&line);
        s.log(out)
    });
    0
}

/// Installs the debugger's hook on `state` for a session's EVAL.
///
/// # Safety
/// `state` is the Lua state the script runs on.
pub unsafe fn install_hook(state: *mut ffi::lua_State) {
    // SAFETY: per the caller.
    unsafe { ffi::lua_sethook(state, Some(line_hook), ffi::LUA_MASKLINE | ffi::LUA_MASKCOUNT, COUNT_EVERY) };
}

unsafe extern "C-unwind" fn line_hook(state: *mut ffi::lua_State, ar: *mut ffi::lua_Debug) {
    // SAFETY: Lua hands the hook its state and a record for this event.
    let raise = unsafe { on_hook(state, ar) };
    if let Some(msg) = raise {
        // An error table, as redis.call raises; nothing of Rust's is left
        // on this frame when lua_error jumps out of it.
        // SAFETY: a hook may push values and raise errors.
        unsafe {
            ffi::lua_createtable(state, 0, 1);
            ffi::lua_pushstring(state, c"err".as_ptr());
            ffi::lua_pushlstring(state, msg.as_ptr().cast(), msg.len());
            ffi::lua_rawset(state, -3);
        }
        drop(msg);
        // SAFETY: as above.
        unsafe { ffi::lua_error(state) };
    }
}

/// What the hook found at a line.
enum Stop {
    No,
    Raise(String),
    At { timeout: bool, leave: bool },
}

/// The hook's work; an error message to raise in the script, if any.
unsafe fn on_hook(state: *mut ffi::lua_State, ar: *mut ffi::lua_Debug) -> Option<String> {
    // SAFETY: `ar` is the event's record, completed for the running function.
    let (line, event, ours) = unsafe {
        ffi::lua_getstack(state, 0, ar);
        ffi::lua_getinfo(state, c"Sl".as_ptr(), ar);
        let src = CStr::from_ptr((*ar).short_src.as_ptr()).to_bytes();
        ((*ar).currentline, (*ar).event, contains(src, b"user_script"))
    };
    // Lines of the prelude's Lua (the global lookups a script's
    // environment makes, say) are not the script's.
    if !ours {
        return None;
    }
    let stop = with(|s| {
        s.line = line;
        if s.kill.load(Ordering::Relaxed) {
            return Stop::Raise("ERR Script killed by user with SCRIPT KILL...".into());
        }
        let bp = s.breakpoints.contains(&line) || s.luabp;
        let mut timeout = false;
        if event == ffi::LUA_HOOKCOUNT && !s.step && !bp {
            if s.since.elapsed() < s.timeout {
                return Stop::No;
            }
            timeout = true;
            s.step = true;
        }
        if !(s.step || bp) {
            return Stop::No;
        }
        let reason = if bp {
            if s.luabp {
                "redis.breakpoint() called"
            } else {
                "break point"
            }
        } else if timeout {
            "timeout reached, infinite loop?"
        } else {
            "step over"
        };
        s.step = false;
        s.luabp = false;
        s.log(format!("* Stopped at {line}, stop reason = {reason}").into_bytes());
        s.log_source_line(line);
        s.send_logs();
        // Waiting on a person: other clients are served meanwhile (and
        // get BUSY), as behind any long script.
        Stop::At { timeout, leave: !std::mem::replace(&mut s.left_worker, true) }
    })?;
    let (timeout, leave) = match stop {
        Stop::No => return None,
        Stop::Raise(msg) => return Some(msg),
        Stop::At { timeout, leave } => (timeout, leave),
    };
    if leave {
        crate::scripting::leave_worker();
    }
    // SAFETY: the hook's state, as given.
    match unsafe { repl(state) } {
        Err(msg) => return Some(msg),
        Ok(false) if timeout => {
            return Some("ERR timeout during Lua debugging with client closing connection".into());
        }
        Ok(_) => {}
    }
    with(|s| s.since = Instant::now());
    None
}

/// Reads and runs debugger commands until one resumes the script: Ok(true)
/// to go on, Ok(false) if the client left (the script runs to its end
/// unattended), Err to end the script with that error.
unsafe fn repl(state: *mut ffi::lua_State) -> Result<bool, String> {
    loop {
        // The next command, or what repl returns (Err of the closure).
        let next = with(|s| loop {
            match parse_command(&s.cbuf) {
                Parsed::Command(argv) => {
                    s.cbuf.clear();
                    break Ok(argv);
                }
                Parsed::Error => break Err(Err("ERR protocol error".into())),
                Parsed::Incomplete => {
                    let mut buf = [0u8; 1024];
                    let n = match read_fd(s.fd, &mut buf, &s.kill) {
                        Read::Data(n) => n,
                        Read::Gone => {
                            s.step = false;
                            s.breakpoints.clear();
                            break Err(Ok(false));
                        }
                        // SCRIPT KILL from another client: the session
                        // need not wait for its user (Redis's sync mode
                        // blocks the server, and cannot take it).
                        Read::Killed => break Err(Err("ERR Script killed by user with SCRIPT KILL...".into())),
                    };
                    s.cbuf.extend_from_slice(&buf[..n]);
                    if s.cbuf.len() > MAX_COMMAND_BUFFER {
                        s.cbuf = Vec::new();
                        break Err(Err("ERR max client buffer reached".into()));
                    }
                }
            }
        });
        let argv = match next {
            None => return Ok(true),
            Some(Ok(argv)) => argv,
            Some(Err(done)) => return done,
        };
        let name = String::from_utf8_lossy(&argv[0]).to_ascii_lowercase();
        let is = |short: &str, long: &str| name == short || name == long;
        if is("s", "step") || is("n", "next") {
            with(|s| s.step = true);
            return Ok(true);
        } else if is("c", "continue") {
            return Ok(true);
        } else if is("a", "abort") {
            return Err("ERR script aborted for user request".into());
        } else if is("e", "eval") {
            // SAFETY: the hook's state; Lua code runs with no lock held.
            let line = unsafe { eval(state, &argv[1..]) };
            with(|s| s.log_trimmed(line));
        } else if argv.len() > 1 && is("r", "redis") {
            // SAFETY: as above.
            unsafe { redis(state, &argv[1..]) };
        } else if is("p", "print") {
            // SAFETY: reads the stack's locals only.
            let lines = unsafe {
                match argv.get(1) {
                    Some(name) if argv.len() == 2 => print_var(state, name),
                    _ => print_all(state),
                }
            };
            with(|s| lines.into_iter().for_each(|(l, trim)| if trim { s.log_trimmed(l) } else { s.log(l) }));
        } else if is("t", "trace") {
            // SAFETY: reads the stack only.
            let frames = unsafe { trace(state) };
            with(|s| {
                if frames.is_empty() {
                    s.log(b"<error> Can't retrieve Lua stack.".to_vec());
                }
                for (head, line) in frames {
                    s.log(head.into_bytes());
                    s.log_source_line(line);
                }
            });
        } else {
            with(|s| s.command(&name, &argv));
        }
        with(Session::send_logs);
    }
}

impl Session {
    fn log(&mut self, line: Vec<u8>) {
        self.logs.push(line);
    }

    /// Logs a reply or value, cut at `maxlen` bytes (with a hint, once).
    fn log_trimmed(&mut self, mut line: Vec<u8>) {
        let trimmed = self.maxlen != 0 && line.len() > self.maxlen;
        if trimmed {
            line.truncate(self.maxlen);
            line.extend_from_slice(b" ...");
        }
        self.log(line);
        if trimmed && !self.maxlen_hint_sent {
            self.maxlen_hint_sent = true;
            self.log(b"<hint> The above reply was trimmed. Use 'maxlen 0' to disable trimming.".to_vec());
        }
    }

    /// The logs so far, as one array of status lines.
    fn send_logs(&mut self) {
        let mut out = format!("*{}\r\n", self.logs.len()).into_bytes();
        for mut l in self.logs.drain(..) {
            l.iter_mut().filter(|b| **b == b'\r' || **b == b'\n').for_each(|b| *b = b' ');
            out.push(b'+');
            out.extend_from_slice(&l);
            out.extend_from_slice(b"\r\n");
        }
        // A failed write shows as the next read failing.
        write_fd(self.fd, &out);
    }

    fn source_line(&self, line: i32) -> &[u8] {
        match usize::try_from(line - 1).ok().and_then(|i| self.src.get(i)) {
            Some(l) => l,
            None => b"<out of range source code line>",
        }
    }

    fn log_source_line(&mut self, line: i32) {
        let prefix = match (self.line == line, self.breakpoints.contains(&line)) {
            (true, true) => "->#",
            (true, false) => "-> ",
            (false, true) => "  #",
            (false, false) => "   ",
        };
        let mut out = format!("{prefix}{line:<3} ").into_bytes();
        out.extend_from_slice(self.source_line(line));
        self.log(out);
    }

    fn list(&mut self, around: i32, context: i32) {
        for j in 1..=self.src.len() as i32 {
            if around != 0 && (around - j).abs() > context {
                continue;
            }
            self.log_source_line(j);
        }
    }

    /// The commands that need nothing of Lua's.
    fn command(&mut self, name: &str, argv: &[Vec<u8>]) {
        let int = |i: usize| argv.get(i).map(|a| atoi(a) as i32);
        match name {
            "h" | "help" => HELP.iter().for_each(|l| self.log(l.as_bytes().to_vec())),
            "m" | "maxlen" => {
                if argv.len() == 2 {
                    let n = atoi(&argv[1]);
                    self.maxlen_hint_sent = true;
                    self.maxlen = if n != 0 && n <= 60 { 60 } else { n.max(0) as usize };
                }
                let text = match self.maxlen {
                    0 => "<value> replies are unlimited.".to_string(),
                    n => format!("<value> replies are truncated at {n} bytes."),
                };
                self.log(text.into_bytes());
            }
            "b" | "break" => self.break_command(&argv[1..]),
            "l" | "list" => {
                let around = int(1).filter(|&n| n > 0).unwrap_or(self.line);
                self.list(around, int(2).unwrap_or(5));
            }
            "w" | "whole" => self.list(1, 1_000_000),
            _ => self.log(b"<error> Unknown Redis Lua debugger command or wrong number of arguments.".to_vec()),
        }
    }

    fn break_command(&mut self, args: &[Vec<u8>]) {
        if args.is_empty() {
            if self.breakpoints.is_empty() {
                self.log(b"No breakpoints set. Use 'b <line>' to add one.".to_vec());
            } else {
                self.log(format!("{} breakpoints set:", self.breakpoints.len()).into_bytes());
                for l in self.breakpoints.clone() {
                    self.log_source_line(l);
                }
            }
            return;
        }
        for arg in args {
            let Some(line) = std::str::from_utf8(arg).ok().and_then(|a| a.parse::<i64>().ok()) else {
                self.log([b"Invalid argument:'".as_slice(), arg, b"'"].concat());
                continue;
            };
            if line == 0 {
                self.breakpoints.clear();
                self.log(b"All breakpoints removed.".to_vec());
            } else if line > 0 {
                if self.breakpoints.len() == BREAKPOINTS_MAX {
                    self.log(b"Too many breakpoints set.".to_vec());
                } else if line <= self.src.len() as i64 {
                    let line = line as i32;
                    if !self.breakpoints.contains(&line) {
                        self.breakpoints.push(line);
                    }
                    self.list(line, 1);
                } else {
                    self.log(b"Wrong line number.".to_vec());
                }
            } else {
                match self.breakpoints.iter().position(|&b| i64::from(b) == -line) {
                    Some(i) => {
                        self.breakpoints.remove(i);
                        self.log(b"Breakpoint removed.".to_vec());
                    }
                    None => self.log(b"No breakpoint in the specified line.".to_vec()),
                }
            }
        }
    }
}

const HELP: &[&str] = &[
    "Redis Lua debugger help:",
    "[h]elp               Show this help.",
    "[s]tep               Run current line and stop again.",
    "[n]ext               Alias for step.",
    "[c]ontinue           Run till next breakpoint.",
    "[l]ist               List source code around current line.",
    "[l]ist [line]        List source code around [line].",
    "                     line = 0 means: current position.",
    "[l]ist [line] [ctx]  In this form [ctx] specifies how many lines",
    "                     to show before/after [line].",
    "[w]hole              List all source code. Alias for 'list 1 1000000'.",
    "[p]rint              Show all the local variables.",
    "[p]rint <var>        Show the value of the specified variable.",
    "                     Can also show global vars KEYS and ARGV.",
    "[b]reak              Show all breakpoints.",
    "[b]reak <line>       Add a breakpoint to the specified line.",
    "[b]reak -<line>      Remove breakpoint from the specified line.",
    "[b]reak 0            Remove all breakpoints.",
    "[t]race              Show a backtrace.",
    "[e]val <code>        Execute some Lua code (in a different callframe).",
    "[r]edis <cmd>        Execute a Redis command.",
    "[m]axlen [len]       Trim logged Redis replies and Lua var dumps to len.",
    "                     Specifying zero as <len> means unlimited.",
    "[a]bort              Stop the execution of the script. In sync",
    "                     mode dataset changes will be retained.",
    "",
    "Debugger functions you can call from Lua scripts:",
    "redis.debug()        Produce logs in the debugger console.",
    "redis.breakpoint()   Stop execution like if there was a breakpoint in the",
    "                     next line of code.",
];

/// C's atoi: leading digits, 0 for none.
fn atoi(b: &[u8]) -> i64 {
    let s = std::str::from_utf8(b).unwrap_or("").trim_start();
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let end = digits.bytes().position(|c| !c.is_ascii_digit()).unwrap_or(digits.len());
    let n = digits[..end].parse::<i64>().unwrap_or(0);
    if neg {
        -n
    } else {
        n
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

enum Parsed {
    Command(Vec<Vec<u8>>),
    Incomplete,
    Error,
}

/// One RESP array of bulk strings, as forgiving as Redis's debugger is
/// (anything before the `*` is skipped; arguments are 1 to 1024 bytes).
fn parse_command(buf: &[u8]) -> Parsed {
    if buf.is_empty() {
        return Parsed::Incomplete;
    }
    let Some(star) = buf.iter().position(|&b| b == b'*') else { return Parsed::Error };
    let mut p = star + 1;
    let line = |p: usize| buf[p..].windows(2).position(|w| w == b"\r\n").map(|e| (atoi(&buf[p..p + e]), p + e + 2));
    let Some((argc, next)) = line(p) else { return Parsed::Incomplete };
    if argc <= 0 || argc > 1024 {
        return Parsed::Error;
    }
    p = next;
    let mut argv = Vec::with_capacity(argc as usize);
    while argv.len() < argc as usize {
        match buf.get(p) {
            None => return Parsed::Incomplete,
            Some(b'$') => {}
            Some(_) => return Parsed::Error,
        }
        let Some((len, start)) = line(p + 1) else { return Parsed::Incomplete };
        if len <= 0 || len > 1024 {
            return Parsed::Error;
        }
        let end = start + len as usize;
        if end + 2 > buf.len() {
            return Parsed::Incomplete;
        }
        if &buf[end..end + 2] != b"\r\n" {
            return Parsed::Error;
        }
        argv.push(buf[start..end].to_vec());
        p = end + 2;
    }
    Parsed::Command(argv)
}

enum Read {
    Data(usize),
    /// The client is gone.
    Gone,
    /// SCRIPT KILL asked the script to end.
    Killed,
}

/// How often a wait for the user looks at the kill flag.
const KILL_CHECK_MS: c_int = 100;

/// Reads what the client sent, waiting for it.
fn read_fd(fd: c_int, buf: &mut [u8], kill: &AtomicBool) -> Read {
    loop {
        if kill.load(Ordering::Relaxed) {
            return Read::Killed;
        }
        let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd; the descriptor is the connection's,
        // open while its task waits in this command.
        let ready = unsafe { libc::poll(&mut pfd, 1, KILL_CHECK_MS) };
        if ready == 0 || (ready < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted) {
            continue;
        }
        // SAFETY: `buf` is writable for its length.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n > 0 {
            return Read::Data(n as usize);
        }
        let err = std::io::Error::last_os_error().kind();
        if n < 0 && matches!(err, std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted) {
            continue;
        }
        return Read::Gone;
    }
}

/// Writes all of `data`, each wait for room bounded by the send timeout.
fn write_fd(fd: c_int, mut data: &[u8]) {
    while !data.is_empty() {
        // SAFETY: `data` is readable for its length.
        let n = unsafe { libc::send(fd, data.as_ptr().cast(), data.len(), libc::MSG_NOSIGNAL) };
        if n > 0 {
            data = &data[n as usize..];
            continue;
        }
        let err = std::io::Error::last_os_error().kind();
        if n < 0 && err == std::io::ErrorKind::WouldBlock {
            let mut pfd = libc::pollfd { fd, events: libc::POLLOUT, revents: 0 };
            // SAFETY: one valid pollfd.
            if unsafe { libc::poll(&mut pfd, 1, SEND_TIMEOUT_MS) } > 0 {
                continue;
            }
        } else if n < 0 && err == std::io::ErrorKind::Interrupted {
            continue;
        }
        return;
    }
}

/// A RESP reply in the debugger's notation (Redis's
/// ldbRedisProtocolToHuman); the bytes after it.
fn human<'a>(out: &mut Vec<u8>, reply: &'a [u8]) -> &'a [u8] {
    let Some(end) = reply.windows(2).position(|w| w == b"\r\n") else { return &[] };
    let (head, mut rest) = (&reply[1..end], &reply[end + 2..]);
    let count = || std::str::from_utf8(head).ok().and_then(|h| h.parse::<i64>().ok()).unwrap_or(0);
    match reply[0] {
        b':' => out.extend_from_slice(head),
        b'$' if count() < 0 => out.extend_from_slice(b"NULL"),
        b'$' => {
            let n = (count() as usize).min(rest.len());
            out.extend_from_slice(repr(&rest[..n]).as_bytes());
            rest = rest.get(n + 2..).unwrap_or(&[]);
        }
        b'+' | b'-' => out.extend_from_slice(repr(&reply[..end]).as_bytes()),
        b'*' if count() < 0 => out.extend_from_slice(b"NULL"),
        b'*' | b'~' => {
            out.extend_from_slice(if reply[0] == b'*' { b"[" } else { b"~(" });
            let n = count();
            for j in 0..n {
                if rest.is_empty() {
                    break;
                }
                rest = human(out, rest);
                if j != n - 1 {
                    out.push(b',');
                }
            }
            out.push(if reply[0] == b'*' { b']' } else { b')' });
        }
        b'%' => {
            out.push(b'{');
            let n = count();
            for j in 0..n {
                if rest.is_empty() {
                    break;
                }
                rest = human(out, rest);
                out.extend_from_slice(b" => ");
                rest = human(out, rest);
                if j != n - 1 {
                    out.push(b',');
                }
            }
            out.push(b'}');
        }
        b'_' => out.extend_from_slice(b"(null)"),
        b'#' => out.extend_from_slice(if head == b"t" { b"#true" } else { b"#false" }),
        b',' => {
            out.extend_from_slice(b"(double) ");
            out.extend_from_slice(head);
        }
        _ => {}
    }
    rest
}

/// Appends the value at `idx` of the stack as the debugger shows values
/// (Redis's ldbCatStackValueRec).
///
/// # Safety
/// `idx` is a valid index of `state`'s stack, which has room for two more.
unsafe fn cat_value(out: &mut Vec<u8>, state: *mut ffi::lua_State, idx: c_int, depth: usize) {
    // SAFETY (whole body): reads of a valid index; a table's walk pushes
    // two values (key, value) and pops them before the next.
    unsafe {
        let idx = if idx < 0 { ffi::lua_gettop(state) + idx + 1 } else { idx };
        if depth == MAX_DEPTH {
            out.extend_from_slice(b"<max recursion level reached! Nested table?>");
            return;
        }
        match ffi::lua_type(state, idx) {
            ffi::LUA_TSTRING => {
                let mut len = 0;
                let p = ffi::lua_tolstring(state, idx, &mut len);
                out.extend_from_slice(repr(std::slice::from_raw_parts(p.cast(), len)).as_bytes());
            }
            ffi::LUA_TBOOLEAN => {
                out.extend_from_slice(if ffi::lua_toboolean(state, idx) != 0 { b"true" } else { b"false" })
            }
            ffi::LUA_TNUMBER => {
                out.extend_from_slice(crate::scripting::format_g(ffi::lua_tonumber(state, idx), 6).as_bytes())
            }
            ffi::LUA_TNIL => out.extend_from_slice(b"nil"),
            ffi::LUA_TTABLE => {
                // As an array ({a; b}) if its keys are 1..n in order,
                // else with its keys ({[k]=v; …}).
                let (mut as_array, mut as_map) = (Vec::new(), Vec::new());
                let mut is_array = true;
                let mut expected = 1.0;
                ffi::luaL_checkstack(state, 2, std::ptr::null());
                ffi::lua_pushnil(state);
                while ffi::lua_next(state, idx) != 0 {
                    if is_array
                        && (ffi::lua_type(state, -2) != ffi::LUA_TNUMBER || ffi::lua_tonumber(state, -2) != expected)
                    {
                        is_array = false;
                    }
                    if !as_array.is_empty() {
                        as_array.extend_from_slice(b"; ");
                        as_map.extend_from_slice(b"; ");
                    }
                    cat_value(&mut as_array, state, -1, depth + 1);
                    as_map.push(b'[');
                    cat_value(&mut as_map, state, -2, depth + 1);
                    as_map.extend_from_slice(b"]=");
                    cat_value(&mut as_map, state, -1, depth + 1);
                    ffi::lua_pop(state, 1);
                    expected += 1.0;
                }
                out.push(b'{');
                out.extend_from_slice(if is_array { &as_array } else { &as_map });
                out.push(b'}');
            }
            t => {
                let name = match t {
                    ffi::LUA_TFUNCTION => "function",
                    ffi::LUA_TUSERDATA => "userdata",
                    ffi::LUA_TTHREAD => "thread",
                    ffi::LUA_TLIGHTUSERDATA => "light-userdata",
                    _ => {
                        out.extend_from_slice(b"\"<unknown-lua-type>\"");
                        return;
                    }
                };
                out.extend_from_slice(format!("\"{name}@{:p}\"", ffi::lua_topointer(state, idx)).as_bytes());
            }
        }
    }
}

/// The value on top of the stack, prefixed, for a trimmed log line.
unsafe fn top_value(state: *mut ffi::lua_State, prefix: &[u8]) -> Vec<u8> {
    let mut out = prefix.to_vec();
    // SAFETY: the caller pushed the value.
    unsafe { cat_value(&mut out, state, -1, 0) };
    out
}

/// The frames of the script (not the prelude's wrappers above it), from
/// the innermost: each with its stack level.
unsafe fn script_frames(state: *mut ffi::lua_State) -> Vec<(c_int, ffi::lua_Debug)> {
    let mut frames = Vec::new();
    let mut level = 0;
    loop {
        // SAFETY: lua_getstack fills a zeroed record or says there is no
        // such level; lua_getinfo completes a filled one.
        unsafe {
            let mut ar: ffi::lua_Debug = std::mem::zeroed();
            if ffi::lua_getstack(state, level, &mut ar) == 0 {
                break;
            }
            ffi::lua_getinfo(state, c"Snl".as_ptr(), &mut ar);
            if contains(CStr::from_ptr(ar.short_src.as_ptr()).to_bytes(), b"user_script") {
                frames.push((level, ar));
            }
        }
        level += 1;
    }
    frames
}

/// Calls `f` with the name of each local of the frame `ar` describes, its
/// value on top of the stack meanwhile, until `f` returns something.
///
/// # Safety
/// `ar` was filled by lua_getstack for `state`, whose stack has room for
/// what `f` pushes and one value more.
unsafe fn find_local<T>(
    state: *mut ffi::lua_State,
    ar: &ffi::lua_Debug,
    mut f: impl FnMut(&[u8]) -> Option<T>,
) -> Option<T> {
    let mut i = 1;
    loop {
        // SAFETY: per the caller; lua_getlocal pushes the local's value,
        // popped below, or returns null past the last local.
        let local = unsafe { ffi::lua_getlocal(state, ar, i) };
        if local.is_null() {
            return None;
        }
        i += 1;
        // SAFETY: a local's name is a NUL-terminated string Lua keeps.
        let found = f(unsafe { CStr::from_ptr(local) }.to_bytes());
        // SAFETY: the value lua_getlocal pushed.
        unsafe { ffi::lua_pop(state, 1) };
        if found.is_some() {
            return found;
        }
    }
}

/// `print <var>`: the innermost local of that name, or KEYS/ARGV.
unsafe fn print_var(state: *mut ffi::lua_State, name: &[u8]) -> Vec<(Vec<u8>, bool)> {
    // SAFETY (whole body): frames script_frames filled; each value read is
    // on top of the stack, and what is pushed is popped.
    unsafe {
        ffi::luaL_checkstack(state, 4, std::ptr::null());
        for (_, ar) in script_frames(state) {
            if let Some(line) = find_local(state, &ar, |n| (n == name).then(|| top_value(state, b"<value> "))) {
                return vec![(line, true)];
            }
        }
        if name == b"KEYS" || name == b"ARGV" {
            let global = if name == b"KEYS" { c"KEYS" } else { c"ARGV" };
            ffi::lua_getglobal(state, global.as_ptr());
            let line = top_value(state, b"<value> ");
            ffi::lua_pop(state, 1);
            return vec![(line, true)];
        }
    }
    vec![(b"No such variable.".to_vec(), false)]
}

/// `print`: every local of the current frame.
unsafe fn print_all(state: *mut ffi::lua_State) -> Vec<(Vec<u8>, bool)> {
    let mut lines = Vec::new();
    // SAFETY: as in print_var, for level 0 (the script's line being run).
    unsafe {
        ffi::luaL_checkstack(state, 4, std::ptr::null());
        let mut ar: ffi::lua_Debug = std::mem::zeroed();
        if ffi::lua_getstack(state, 0, &mut ar) != 0 {
            find_local::<()>(state, &ar, |name| {
                if !contains(name, b"(*temporary)") {
                    let prefix = [b"<value> ".as_slice(), name, b" = "].concat();
                    lines.push((top_value(state, &prefix), true));
                }
                None
            });
        }
    }
    if lines.is_empty() {
        lines.push((b"No local variables in the current context.".to_vec(), false));
    }
    lines
}

/// `trace`: each script frame's heading and line, innermost first.
unsafe fn trace(state: *mut ffi::lua_State) -> Vec<(String, i32)> {
    // SAFETY: reads records script_frames filled.
    unsafe {
        script_frames(state)
            .into_iter()
            .map(|(level, ar)| {
                let name = if ar.name.is_null() {
                    "top level".to_string()
                } else {
                    CStr::from_ptr(ar.name).to_string_lossy().into_owned()
                };
                (format!("{} {name}:", if level == 0 { "In" } else { "From" }), ar.currentline)
            })
            .collect()
    }
}

/// `eval <code>`: runs the code (as an expression if it compiles as one)
/// in a fresh environment like a script's; the line to log.
unsafe fn eval(state: *mut ffi::lua_State, words: &[Vec<u8>]) -> Vec<u8> {
    let code = words.join(&b' ');
    let expr = [b"return ".as_slice(), &code].concat();
    // SAFETY (whole body): each path pops what it pushed; the chunk runs
    // in a protected call.
    unsafe {
        ffi::luaL_checkstack(state, 4, std::ptr::null());
        let load = |src: &[u8]| ffi::luaL_loadbuffer(state, src.as_ptr().cast(), src.len(), c"@ldb_eval".as_ptr());
        if load(&expr) != 0 {
            ffi::lua_pop(state, 1);
            if load(&code) != 0 {
                let line = error_line(state);
                ffi::lua_pop(state, 1);
                return line;
            }
        }
        // The same environment a script gets: globals read through, a
        // missing one is an error, none may be created.
        ffi::lua_createtable(state, 0, 0);
        ffi::lua_getfield(state, ffi::LUA_REGISTRYINDEX, crate::scripting::ENV_META_KEY.as_ptr());
        ffi::lua_setmetatable(state, -2);
        ffi::lua_setfenv(state, -2);
        if ffi::lua_pcall(state, 0, 1, 0) != 0 {
            let line = error_line(state);
            ffi::lua_pop(state, 1);
            return line;
        }
        let line = top_value(state, b"<retval> ");
        ffi::lua_pop(state, 1);
        line
    }
}

/// `<error> …` for the error value on top of the stack.
unsafe fn error_line(state: *mut ffi::lua_State) -> Vec<u8> {
    let mut out = b"<error> ".to_vec();
    // SAFETY: the caller's error value is on top.
    unsafe {
        let mut len = 0;
        let p = ffi::lua_tolstring(state, -1, &mut len);
        if !p.is_null() {
            out.extend_from_slice(std::slice::from_raw_parts(p.cast(), len));
        }
    }
    out
}

/// `redis <cmd> …`: runs the command through redis.call while stepping,
/// so it and its reply are logged.
unsafe fn redis(state: *mut ffi::lua_State, words: &[Vec<u8>]) {
    // SAFETY: pushes the function and its arguments, calls it protected,
    // and pops what is left.
    unsafe {
        if ffi::lua_checkstack(state, words.len() as c_int + 2) == 0 {
            with(|s| s.log_trimmed(b"<reply> max lua stack reached".to_vec()));
            return;
        }
        ffi::lua_getglobal(state, c"redis".as_ptr());
        ffi::lua_getfield(state, -1, c"call".as_ptr());
        for w in words {
            ffi::lua_pushlstring(state, w.as_ptr().cast(), w.len());
        }
        with(|s| s.step = true);
        ffi::lua_pcall(state, words.len() as c_int, 1, 0);
        with(|s| s.step = false);
        ffi::lua_pop(state, 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_as_redis_debugger_reads_them() {
        assert!(matches!(parse_command(b""), Parsed::Incomplete));
        assert!(matches!(parse_command(b"*2\r\n$1\r\np"), Parsed::Incomplete));
        assert!(matches!(parse_command(b"hello"), Parsed::Error));
        assert!(matches!(parse_command(b"*0\r\n"), Parsed::Error));
        assert!(matches!(parse_command(b"*1\r\n$0\r\n\r\n"), Parsed::Error));
        let Parsed::Command(argv) = parse_command(b"junk*2\r\n$1\r\np\r\n$4\r\nKEYS\r\n") else { panic!() };
        assert_eq!(argv, vec![b"p".to_vec(), b"KEYS".to_vec()]);
    }

    proptest::proptest! {
        /// Whatever a debugging client sends parses to a command, asks for
        /// more, or is a protocol error; a whole command always parses.
        #[test]
        fn any_input_parses_or_is_refused(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
                                         words in proptest::collection::vec("[a-z0-9]{1,8}", 1..5)) {
            let _ = parse_command(&bytes);
            let mut whole = format!("*{}\r\n", words.len()).into_bytes();
            for w in &words {
                whole.extend_from_slice(format!("${}\r\n{w}\r\n", w.len()).as_bytes());
            }
            let Parsed::Command(argv) = parse_command(&whole) else { panic!("{whole:?}") };
            proptest::prop_assert_eq!(argv, words.iter().map(|w| w.as_bytes().to_vec()).collect::<Vec<_>>());
            for cut in 1..whole.len() {
                proptest::prop_assert!(matches!(parse_command(&whole[..cut]), Parsed::Incomplete));
            }
        }

        /// Any RESP reply the server could give reads without panicking,
        /// and nothing is left over; any bytes at all read without
        /// panicking or looping.
        #[test]
        fn any_reply_reads(items in proptest::collection::vec(proptest::prelude::any::<i64>(), 0..8),
                           junk in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            human(&mut Vec::new(), &junk);
            human(&mut Vec::new(), b"*99999999999\r\n:1\r\n");
            let mut resp = format!("*{}\r\n", items.len()).into_bytes();
            for n in &items {
                resp.extend_from_slice(format!(":{n}\r\n").as_bytes());
            }
            let mut out = Vec::new();
            proptest::prop_assert!(human(&mut out, &resp).is_empty());
        }
    }

    #[test]
    fn replies_read_as_redis_shows_them() {
        let show = |resp: &[u8]| {
            let mut out = Vec::new();
            let rest = human(&mut out, resp);
            assert!(rest.is_empty(), "{resp:?} left {rest:?}");
            String::from_utf8(out).unwrap()
        };
        assert_eq!(show(b":12\r\n"), "12");
        assert_eq!(show(b"$-1\r\n"), "NULL");
        assert_eq!(show(b"$3\r\na\"b\r\n"), "\"a\\\"b\"");
        assert_eq!(show(b"+OK\r\n"), "\"+OK\"");
        assert_eq!(show(b"-ERR x\r\n"), "\"-ERR x\"");
        assert_eq!(show(b"*2\r\n:1\r\n*1\r\n$1\r\nz\r\n"), "[1,[\"z\"]]");
        assert_eq!(show(b"%1\r\n$1\r\nk\r\n,1.5\r\n"), "{\"k\" => (double) 1.5}");
        assert_eq!(show(b"~1\r\n#t\r\n"), "~(#true)");
        assert_eq!(show(b"_\r\n"), "(null)");
    }
}
