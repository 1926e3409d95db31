//! Lua scripts with several connections: atomicity against concurrent
//! readers, effects propagated as the writes made (inside MULTI/EXEC),
//! BUSY replies while a long script runs, and SCRIPT KILL.

use larder_protocol::Frame;
use larder_store::{Effect, EffectSink};
use larder_testkit::{spawn_server, RawConn};
use parking_lot::Mutex;
use std::sync::Arc;

#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl EffectSink for Recorder {
    fn apply(&self, e: &Effect<'_>) {
        let text: Vec<String> = e.args.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        self.0.lock().push(text.join(" "));
    }
}

#[test]
fn a_scripts_writes_are_one_multi_exec_on_the_effect_stream() {
    let s = spawn_server();
    let rec = Arc::new(Recorder::default());
    s.shared.keyspace.effects.subscribe(rec.clone());
    let mut c = s.raw();
    let script = "redis.call('set', KEYS[1], 'a'); redis.call('get', KEYS[1]); \
                  redis.call('incrbyfloat', 'undeclared', '1.5'); return 1";
    assert_eq!(c.call(&["EVAL", script, "1", "k"]).unwrap(), Frame::Integer(1));
    // A read-only script emits nothing.
    assert_eq!(c.call(&["EVAL", "return redis.call('get', 'k')", "0"]).unwrap(), Frame::bulk("a"));
    assert_eq!(*rec.0.lock(), ["MULTI", "SET k a", "SET undeclared 1.5 KEEPTTL", "EXEC"]);
}

#[test]
fn concurrent_readers_never_see_half_a_script() {
    let s = spawn_server();
    let mut setup = s.raw();
    assert_eq!(setup.call(&["MSET", "a", "0", "b", "0"]).unwrap(), Frame::ok());
    let addr = s.addr;
    let writer = std::thread::spawn(move || {
        let mut w = RawConn::connect(addr).unwrap();
        for _ in 0..500 {
            let r = w.call(&["EVAL", "redis.call('incr', 'a'); redis.call('incr', 'b'); return 1", "0"]).unwrap();
            assert_eq!(r, Frame::Integer(1));
        }
    });
    let mut reader = s.raw();
    let mut checks = 0;
    while !writer.is_finished() || checks == 0 {
        let Frame::Array(v) = reader.call(&["MGET", "a", "b"]).unwrap() else { panic!() };
        assert_eq!(v[0], v[1], "a reader saw one INCR of a script without the other");
        checks += 1;
    }
    writer.join().unwrap();
    assert_eq!(reader.call(&["GET", "b"]).unwrap(), Frame::bulk("500"));
}

#[test]
fn eval_inside_multi_runs_at_exec() {
    let s = spawn_server();
    let mut c = s.raw();
    assert_eq!(c.call(&["MULTI"]).unwrap(), Frame::ok());
    assert_eq!(
        c.call(&["EVAL", "return redis.call('incr', KEYS[1])", "1", "n"]).unwrap(),
        Frame::Simple("QUEUED".into())
    );
    assert_eq!(c.call(&["INCR", "n"]).unwrap(), Frame::Simple("QUEUED".into()));
    assert_eq!(c.call(&["EXEC"]).unwrap(), Frame::Array(vec![Frame::Integer(1), Frame::Integer(2)]));
}

fn is_busy(f: &Frame) -> bool {
    matches!(f, Frame::Error(e) if e.starts_with(b"BUSY "))
}

/// Polls with GET until the server answers BUSY (the script passed the
/// threshold); a GET that arrives earlier waits and then gets BUSY too.
fn wait_busy(c: &mut RawConn, runner: &mut RawConn) {
    let start = std::time::Instant::now();
    loop {
        let f = c.call(&["GET", "x"]).unwrap();
        if is_busy(&f) {
            return;
        }
        if start.elapsed().as_secs() >= 20 {
            panic!("never BUSY: {f:?}; the script replied {:?}", runner.read_frame());
        }
    }
}

#[test]
fn a_long_script_makes_others_busy_and_script_kill_stops_it() {
    long_script_is_busy_and_killable(spawn_server());
}

/// With one worker (the binary's default on two cores) nothing can steal
/// the admin connection's task from the script's worker: only the hook's
/// hand-off lets it in to see BUSY and send SCRIPT KILL.
#[test]
fn a_long_script_on_one_worker_still_lets_the_others_in() {
    let config = larder_server::Config { io_threads: 1, ..Default::default() };
    long_script_is_busy_and_killable(larder_testkit::spawn_server_with(config));
}

fn long_script_is_busy_and_killable(s: larder_testkit::TestServer) {
    let mut admin = s.raw();
    assert_eq!(admin.call(&["CONFIG", "SET", "busy-reply-threshold", "50"]).unwrap(), Frame::ok());
    assert_eq!(
        admin.call(&["SCRIPT", "KILL"]).unwrap(),
        Frame::Error("NOTBUSY No scripts in execution right now.".into())
    );
    let mut runner = s.raw();
    // Spins for up to 30 s (bounded, so a failing test cannot hang CI).
    let spin = "local t0 = redis.call('time')[1] while redis.call('time')[1] - t0 < 30 do end";
    runner.send(&["EVAL", spin, "0"]).unwrap();
    wait_busy(&mut admin, &mut runner);
    assert_eq!(admin.call(&["SCRIPT", "KILL"]).unwrap(), Frame::ok());
    match runner.read_frame().unwrap() {
        Frame::Error(e) => {
            assert!(e.starts_with(b"ERR Script killed by user with SCRIPT KILL..."), "{}", String::from_utf8_lossy(&e))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(admin.call(&["GET", "x"]).unwrap(), Frame::Null);
}

/// A SCRIPT DEBUG SYNC session whose client goes away at a stop: the
/// script runs on to its end unattended (its write lands), other clients
/// are served again, and the next scripts run under the usual hook, not
/// the debugger's: a long one is BUSY and SCRIPT KILL stops it.
#[test]
fn a_debugging_session_left_by_its_client_runs_to_its_end() {
    let s = spawn_server();
    let mut debugging = s.raw();
    assert_eq!(debugging.call(&["SCRIPT", "DEBUG", "SYNC"]).unwrap(), Frame::ok());
    debugging.send(&["EVAL", "local a = 1\nredis.call('SET', 'left', a)\nreturn a", "0"]).unwrap();
    let Frame::Array(stop) = debugging.read_frame().unwrap() else { panic!("a stop is an array of lines") };
    assert_eq!(stop[0], Frame::Simple("* Stopped at 1, stop reason = step over".into()));
    drop(debugging);
    let mut other = s.raw();
    larder_testkit::eventually(10, || match other.call(&["GET", "left"]).unwrap() {
        Frame::Bulk(b) if b == "1" => Ok(()),
        got => Err(format!("the script never ended: left is {got:?}")),
    });
    long_script_is_busy_and_killable(s);
}

#[test]
fn a_script_that_wrote_cannot_be_killed() {
    let s = spawn_server();
    let mut admin = s.raw();
    assert_eq!(admin.call(&["CONFIG", "SET", "busy-reply-threshold", "20"]).unwrap(), Frame::ok());
    let mut runner = s.raw();
    // Writes, then spins for ~300 ms of server time and ends on its own.
    let script = "redis.call('set', 'w', '1') \
                  local t = redis.call('time') local start = t[1] * 1000000 + t[2] \
                  repeat t = redis.call('time') until t[1] * 1000000 + t[2] - start > 300000 \
                  return 'done'";
    runner.send(&["EVAL", script, "0"]).unwrap();
    wait_busy(&mut admin, &mut runner);
    match admin.call(&["SCRIPT", "KILL"]).unwrap() {
        Frame::Error(e) => assert!(e.starts_with(b"UNKILLABLE "), "{}", String::from_utf8_lossy(&e)),
        other => panic!("{other:?}"),
    }
    assert_eq!(runner.read_frame().unwrap(), Frame::bulk("done"));
    assert_eq!(admin.call(&["GET", "w"]).unwrap(), Frame::bulk("1"));
}

/// The `redis` crate's Script (EVALSHA, falling back to EVAL on NOSCRIPT)
/// in both protocols.
#[test]
fn the_redis_crates_script_api_works() {
    crate::each_proto(|_, con, _| {
        let script = redis::Script::new("return redis.call('incrby', KEYS[1], ARGV[1])");
        let n: i64 = script.key("counter").arg(5).invoke(con).unwrap();
        assert_eq!(n, 5);
        let n: i64 = script.key("counter").arg(2).invoke(con).unwrap();
        assert_eq!(n, 7);
        let loaded: Vec<bool> = redis::cmd("SCRIPT").arg("EXISTS").arg(script.get_hash()).query(con).unwrap();
        assert_eq!(loaded, [true]);
    });
}

#[test]
fn function_stats_and_function_kill_while_a_function_runs() {
    let s = spawn_server();
    let mut admin = s.raw();
    assert_eq!(admin.call(&["CONFIG", "SET", "busy-reply-threshold", "50"]).unwrap(), Frame::ok());
    let lib = "#!lua name=spin\nredis.register_function('spin', function() \
               local t0 = redis.call('time')[1] while redis.call('time')[1] - t0 < 30 do end end)";
    assert_eq!(admin.call(&["FUNCTION", "LOAD", lib]).unwrap(), Frame::bulk("spin"));
    let mut runner = s.raw();
    runner.send(&["FCALL", "spin", "0"]).unwrap();
    wait_busy(&mut admin, &mut runner);
    assert_eq!(
        admin.call(&["GET", "x"]).unwrap(),
        Frame::Error("BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.".into())
    );
    // SCRIPT KILL does not stop a function; FUNCTION STATS shows it.
    assert!(matches!(admin.call(&["SCRIPT", "KILL"]).unwrap(), Frame::Error(e) if e.starts_with(b"BUSY")));
    let Frame::Array(stats) = admin.call(&["FUNCTION", "STATS"]).unwrap() else { panic!() };
    let Frame::Array(running) = &stats[1] else { panic!("{stats:?}") };
    assert_eq!(running[1], Frame::bulk("spin"));
    assert_eq!(running[3], Frame::Array(vec![Frame::bulk("FCALL"), Frame::bulk("spin"), Frame::bulk("0")]));
    assert_eq!(admin.call(&["FUNCTION", "KILL"]).unwrap(), Frame::ok());
    match runner.read_frame().unwrap() {
        Frame::Error(e) => assert!(e.starts_with(b"ERR Script killed by user"), "{}", String::from_utf8_lossy(&e)),
        other => panic!("{other:?}"),
    }
    let Frame::Array(stats) = admin.call(&["FUNCTION", "STATS"]).unwrap() else { panic!() };
    assert_eq!(stats[1], Frame::Null);
}

/// The ways to the shared tables that redis-server (Debian's build, which
/// has no getfenv or setfenv) cannot be compared on: getfenv shows the
/// globals' read-only view, setfenv may not replace the thread's globals
/// or a shared function's environment, and a chunk loadstring makes runs
/// in a script's environment, not in the globals table. A script's own
/// functions still take an environment.
#[test]
fn getfenv_setfenv_and_loadstring_reach_no_shared_table() {
    let s = spawn_server();
    let mut c = s.raw();
    let readonly = |f: Frame| match f {
        Frame::Error(e) => assert!(String::from_utf8_lossy(&e).contains("Attempt to modify a readonly table"), "{e:?}"),
        other => panic!("{other:?}"),
    };
    readonly(c.call(&["EVAL", "rawset(getfenv(0), 'tostring', nil) return 1", "0"]).unwrap());
    readonly(c.call(&["EVAL", "getfenv(tostring).redis = nil return 1", "0"]).unwrap());
    readonly(c.call(&["EVAL", "setfenv(0, {}) return 1", "0"]).unwrap());
    readonly(c.call(&["EVAL", "setfenv(pcall, {}) return 1", "0"]).unwrap());
    readonly(c.call(&["EVAL", "setfenv(table.insert, {}) return 1", "0"]).unwrap());
    readonly(c.call(&["EVAL", "loadstring('tostring = nil')() return 1", "0"]).unwrap());
    assert_eq!(c.call(&["EVAL", "return getfenv(0) == _G", "0"]).unwrap(), Frame::Integer(1));
    assert_eq!(c.call(&["EVAL", "return loadstring('return 1 + 1')()", "0"]).unwrap(), Frame::Integer(2));
    let own = "local function f() return x end setfenv(f, {x = 7}) return f()";
    assert_eq!(c.call(&["EVAL", own, "0"]).unwrap(), Frame::Integer(7));
    assert_eq!(c.call(&["EVAL", "return tostring(1) .. type(redis.call)", "0"]).unwrap(), Frame::bulk("1function"));
}

/// A script's environment is empty at the start of every run. One its run
/// left empty serves the next run (a table fewer for the collector each
/// time); one a script rawset something into does not, so nothing stored
/// there reaches a later script.
#[test]
fn what_a_script_rawsets_into_its_environment_dies_with_the_run() {
    let s = spawn_server();
    let mut c = s.raw();
    let stash = "rawset(getfenv(1), 'left', ARGV[1]) return rawget(getfenv(1), 'left')";
    let peek = "return tostring(next(getfenv(1)))";
    assert_eq!(c.call(&["EVAL", stash, "0", "secret"]).unwrap(), Frame::bulk("secret"));
    assert_eq!(c.call(&["EVAL", peek, "0"]).unwrap(), Frame::bulk("nil"));
    let undone = "rawset(getfenv(1), 'left', 'x') rawset(getfenv(1), 'left', nil) return 1";
    assert_eq!(c.call(&["EVAL", undone, "0"]).unwrap(), Frame::Integer(1));
    assert_eq!(c.call(&["EVAL", peek, "0"]).unwrap(), Frame::bulk("nil"));
    assert_eq!(c.call(&["EVAL", stash, "0", "again"]).unwrap(), Frame::bulk("again"));
    let Frame::Bulk(sha) = c.call(&["SCRIPT", "LOAD", peek]).unwrap() else { panic!("a sha") };
    assert_eq!(c.call(&["EVALSHA", std::str::from_utf8(&sha).unwrap(), "0"]).unwrap(), Frame::bulk("nil"));
    // The spare is held between runs, so runs that leave it empty, of
    // any script, see the same table: the reuse itself, which a fresh
    // table each run (what this replaced) cannot show.
    let first = c.call(&["EVAL", "return tostring(getfenv(1))", "0"]).unwrap();
    assert_eq!(c.call(&["EVAL", "local t = tostring(getfenv(1)) return t", "0"]).unwrap(), first);
}

/// EVAL's KEYS and ARGV live in the globals; a function (another user's,
/// perhaps) run after it does not find them through `_G`: reading them
/// is the missing-global error, as in Redis (the differential test
/// `missing_globals_fail_as_in_redis` compares it).
#[test]
fn a_function_does_not_see_the_last_evals_keys() {
    let s = spawn_server();
    let mut c = s.raw();
    let lib = "#!lua name=peek\nredis.register_function('peek', function() \
               local ok, v = pcall(function() return _G.KEYS end) return tostring(v) end)";
    assert_eq!(c.call(&["FUNCTION", "LOAD", lib]).unwrap(), Frame::bulk("peek"));
    assert_eq!(c.call(&["EVAL", "return KEYS[1]", "1", "secret"]).unwrap(), Frame::bulk("secret"));
    let missing = "user_function:2: Script attempted to access nonexistent global variable 'KEYS'";
    assert_eq!(c.call(&["FCALL", "peek", "0"]).unwrap(), Frame::bulk(missing));
    assert_eq!(c.call(&["EVAL", "return KEYS[1]", "1", "again"]).unwrap(), Frame::bulk("again"));
}

/// SCRIPT KILL from another client ends a debugging session that waits
/// for its user (Redis's sync mode blocks the whole server instead): the
/// session ends and the EVAL gets the kill error.
#[test]
fn script_kill_ends_a_debugging_session_waiting_at_a_stop() {
    let s = spawn_server();
    let mut admin = s.raw();
    assert_eq!(admin.call(&["CONFIG", "SET", "busy-reply-threshold", "50"]).unwrap(), Frame::ok());
    let mut debugging = s.raw();
    assert_eq!(debugging.call(&["SCRIPT", "DEBUG", "SYNC"]).unwrap(), Frame::ok());
    debugging.send(&["EVAL", "local a = 1\nreturn a", "0"]).unwrap();
    assert!(matches!(debugging.read_frame().unwrap(), Frame::Array(_)), "a stop");
    larder_testkit::eventually(10, || match admin.call(&["SCRIPT", "KILL"]).unwrap() {
        f if f == Frame::ok() => Ok(()),
        f => Err(format!("SCRIPT KILL never took: {f:?}")),
    });
    assert_eq!(debugging.read_frame().unwrap(), Frame::Array(vec![Frame::Simple("<endsession>".into())]));
    match debugging.read_frame().unwrap() {
        Frame::Error(e) => assert!(e.starts_with(b"ERR Script killed by user with SCRIPT KILL"), "{e:?}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(admin.call(&["PING"]).unwrap(), Frame::Simple("PONG".into()));
}

/// Two servers in one process (tests, an embedded Larder): a debugging
/// session on one leaves the other's scripts alone. A YES session refuses
/// its own script's writes, not the other server's, and the other's
/// commands are not logged into it.
#[test]
fn a_debugging_session_is_its_own_servers_alone() {
    let (a, b) = (spawn_server(), spawn_server());
    let mut debugging = a.raw();
    assert_eq!(debugging.call(&["SCRIPT", "DEBUG", "YES"]).unwrap(), Frame::ok());
    debugging.send(&["EVAL", "local a = 1\nreturn a", "0"]).unwrap();
    assert!(matches!(debugging.read_frame().unwrap(), Frame::Array(_)), "a stop");
    let mut other = b.raw();
    let write = "redis.call('set', 'x', '1') return redis.call('get', 'x')";
    assert_eq!(other.call(&["EVAL", write, "0"]).unwrap(), Frame::bulk("1"));
    // The session's next answer holds only its own lines.
    assert_eq!(
        debugging.call(&["s"]).unwrap(),
        Frame::Array(vec![
            Frame::Simple("* Stopped at 2, stop reason = step over".into()),
            Frame::Simple("-> 2   return a".into()),
        ])
    );
    assert_eq!(debugging.call(&["c"]).unwrap(), Frame::Array(vec![Frame::Simple("<endsession>".into())]));
    assert_eq!(debugging.read_frame().unwrap(), Frame::Integer(1));
}

/// The VM starts small and stays so under many short scripts: the prelude
/// is loaded without its debug information, and a full collection runs
/// once the heap has doubled since the last (40 KB at least). Redis's
/// suite checks the same bound after 10,000 EVALs ("EVAL does not leak in
/// the Lua stack").
#[test]
fn the_lua_heap_starts_small_and_stays_bounded() {
    let s = spawn_server();
    let mut c = s.raw();
    let lua = |c: &mut RawConn| crate::info_field(c, "memory", "used_memory_lua").parse::<u64>().unwrap();
    let fresh = lua(&mut c);
    // About 58 KB with what setting it up left for the collector; 75 KB
    // with the prelude compiled in this VM and not stripped.
    assert!(fresh < 64 * 1024, "a fresh VM holds {fresh} bytes");
    assert_eq!(c.call(&["SCRIPT", "FLUSH"]).unwrap(), Frame::ok());
    let script = "return redis.call('incr', KEYS[1])";
    for _ in 0..10 {
        for _ in 0..1000 {
            c.send(&["EVAL", script, "1", "x"]).unwrap();
        }
        for _ in 0..1000 {
            assert!(matches!(c.read_frame().unwrap(), Frame::Integer(_)));
        }
    }
    assert_eq!(c.call(&["GET", "x"]).unwrap(), Frame::bulk("10000"));
    let after = lua(&mut c);
    assert!(after < 100 * 1024, "after 10,000 EVALs the VM holds {after} bytes");
}
