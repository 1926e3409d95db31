//! The connection the cache talks through: one server (`ConnectionManager`,
//! which reconnects on its own) or a Redis Cluster (the `redis` crate's
//! cluster client, which routes each command by its key's slot).
//!
//! Both sit behind `ConnectionLike`, so every command, pipeline and script
//! in the crate runs unchanged on either. What differs is what a cluster
//! cannot do in one call: a script or pipeline whose keys live in
//! different slots. The key layout puts each cache key's value,
//! generation and lease in one slot (a hash tag around the key) and the
//! namespace's version and invalidation sequence in another, and the few
//! operations that span keys ask [`Conn::is_cluster`] and split.

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Conn {
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Conn::Cluster(_))
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(_) => 0,
        }
    }
}
