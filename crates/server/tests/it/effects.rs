//! Every write reaches the effect stream in its deterministic form, while
//! reads emit nothing. This is what the AOF, replication, keyspace events
//! and client tracking will consume.

use larder_protocol::Proto;
use larder_server::Config;
use larder_store::{Effect, EffectSink, ManualClock};
use larder_testkit::spawn_server_with_clock;
use parking_lot::Mutex;
use std::sync::Arc;

#[derive(Default)]
struct Recorder(Mutex<Vec<(usize, String)>>);

impl EffectSink for Recorder {
    fn apply(&self, e: &Effect<'_>) {
        let text: Vec<String> = e.args.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        self.0.lock().push((e.db, text.join(" ")));
    }
}

#[test]
fn writes_emit_deterministic_effects() {
    let clock = Arc::new(ManualClock::new(1_000_000));
    let s = spawn_server_with_clock(Config::default(), clock.clone());
    let rec = Arc::new(Recorder::default());
    s.shared.keyspace.effects.subscribe(rec.clone());
    let mut con = s.conn(Proto::Resp2);
    let q = |con: &mut redis::Connection, line: &str| {
        let mut c = redis::cmd(line.split(' ').next().unwrap());
        for a in line.split(' ').skip(1) {
            c.arg(a);
        }
        let _: redis::Value = c.query(con).unwrap();
    };
    for line in [
        "SET a 1 EX 10",
        "GET a",
        "EXPIRE a 100",
        "INCRBYFLOAT f 1.5",
        "INCR a",
        "SET k v NX",
        "SET k v2 NX",
        "PERSIST a",
        "GETEX a PX 5000",
        "SELECT 2",
        "MSET x 1 y 2",
        "DEL x nothere",
        "SET gone v PX 10",
    ] {
        q(&mut con, line);
    }
    clock.advance(20);
    q(&mut con, "GET gone");
    let got = rec.0.lock().clone();
    let expected: Vec<(usize, String)> = vec![
        (0, "SET a 1 PXAT 1010000".into()),
        (0, "PEXPIREAT a 1100000".into()),
        (0, "SET f 1.5 KEEPTTL".into()),
        (0, "INCR a".into()),
        (0, "SET k v".into()),
        (0, "PERSIST a".into()),
        (0, "PEXPIREAT a 1005000".into()),
        (2, "MSET x 1 y 2".into()),
        (2, "DEL x".into()),
        (2, "SET gone v PXAT 1000010".into()),
        (2, "DEL gone".into()),
    ];
    assert_eq!(got, expected);
    assert_eq!(s.shared.keyspace.write_count(), expected.len() as u64);
}
