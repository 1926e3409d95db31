//! Integration tests: Larder in-process on port 0, driven through the
//! `redis` crate in RESP2 and RESP3, or through raw bytes.

mod binary;
mod blocking;
mod collections;
mod connection;
mod effects;
mod expire;
mod fuzz;
mod keyspace;
mod protocol;
mod pubsub;
mod scripting;
mod server;
mod string;
mod tools;
mod tracking;
mod transactions;

use larder_protocol::Proto;
use larder_testkit::{spawn_server, TestServer};

/// Runs `f` once per protocol, each on a fresh server.
pub fn each_proto(f: impl Fn(&TestServer, &mut redis::Connection, Proto)) {
    for proto in [Proto::Resp2, Proto::Resp3] {
        let server = spawn_server();
        let mut con = server.conn(proto);
        f(&server, &mut con, proto);
    }
}

pub fn cmd(name: &str) -> redis::Cmd {
    redis::cmd(name)
}
