//! FAILOVER: a primary hands its role to one of its replicas without
//! losing an acknowledged write, as Redis 6.2+ coordinates it.
//!
//! 1. FAILOVER pauses writes (a pause of its own purpose, which CLIENT
//!    UNPAUSE does not end) and the state becomes `waiting-for-sync`.
//! 2. The cron looks for the target (or, without TO, any replica) whose
//!    acknowledged offset has reached this primary's. Past the TIMEOUT it
//!    gives up, or with FORCE goes on anyway.
//! 3. `failover-in-progress`: this server becomes a replica of the target
//!    and its link asks `PSYNC <id> <offset> FAILOVER`; the target, seeing
//!    its own primary's id, promotes itself first, so the PSYNC continues
//!    (PSYNC2, see replication.rs) and nothing is copied in full.
//! 4. When the target answers, the failover is over and writes resume
//!    (refused now with READONLY, this server being a replica); a refusal
//!    makes this server a primary again (FAILOVER ABORT does the same).

use crate::pause::{Mode, Purpose};
use crate::Shared;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::sync::Arc;

const NONE: u8 = 0;
const WAITING: u8 = 1;
const IN_PROGRESS: u8 = 2;

#[derive(Default)]
pub struct Failover {
    state: AtomicU8,
    plan: Mutex<Plan>,
}

#[derive(Default, Clone)]
struct Plan {
    /// The replica to hand over to (its address and listening port):
    /// named by TO, or the first found in step.
    target: Option<(String, u16)>,
    /// TIMEOUT's end, in ms (server clock; 0: none).
    deadline_ms: u64,
    force: bool,
}

impl Failover {
    /// INFO's master_failover_state.
    pub fn state_name(&self) -> &'static str {
        match self.state.load(Relaxed) {
            WAITING => "waiting-for-sync",
            IN_PROGRESS => "failover-in-progress",
            _ => "no-failover",
        }
    }

    pub fn active(&self) -> bool {
        self.state.load(Relaxed) != NONE
    }

    pub fn in_progress(&self) -> bool {
        self.state.load(Relaxed) == IN_PROGRESS
    }

    /// FAILOVER, its arguments checked: writes pause until it ends.
    pub fn begin(&self, shared: &Shared, target: Option<(String, u16)>, timeout_ms: u64, force: bool) {
        let now = shared.clock.now_ms();
        let deadline_ms = if timeout_ms > 0 { now.saturating_add(timeout_ms) } else { 0 };
        *self.plan.lock() = Plan { target, deadline_ms, force };
        self.state.store(WAITING, Relaxed);
        shared.pause.start(Purpose::Failover, Mode::Write, u64::MAX, now, &shared.keyspace);
        // Ask for offsets now, not at the replicas' next second.
        shared.replication.request_acks();
    }

    /// From the cron: starts the handover once a replica is in step, or
    /// gives up (or forces it) past the timeout.
    pub fn tick(&self, shared: &Arc<Shared>) {
        if self.state.load(Relaxed) != WAITING {
            return;
        }
        let now = shared.clock.now_ms();
        let plan = self.plan.lock().clone();
        if plan.deadline_ms != 0 && plan.deadline_ms <= now {
            match (&plan.target, plan.force) {
                (Some((host, port)), true) => {
                    tracing::info!("FAILOVER to {host}:{port} time out exceeded, failing over.");
                    self.hand_over(shared, host.clone(), *port);
                }
                _ => self.abort(shared, "Replica never caught up before timeout"),
            }
            return;
        }
        let offset = shared.replication.offset();
        let replicas = shared.replication.replicas(now);
        let found = replicas.iter().find(|r| {
            let named = plan.target.as_ref().is_none_or(|(host, port)| *host == r.ip && *port == r.port);
            named && r.online && r.offset == offset
        });
        if let Some(r) = found {
            tracing::info!("Failover target {}:{} is synced, failing over.", r.ip, r.port);
            self.hand_over(shared, r.ip.clone(), r.port);
        }
    }

    /// This server follows `host:port`, its link asking PSYNC … FAILOVER.
    fn hand_over(&self, shared: &Arc<Shared>, host: String, port: u16) {
        self.plan.lock().target = Some((host.clone(), port));
        self.state.store(IN_PROGRESS, Relaxed);
        crate::cmd::replication::follow(shared, host, port);
    }

    /// The target answered the link's PSYNC … FAILOVER: continued or
    /// synced in full, the failover is done; refused, it is aborted.
    pub fn answered(&self, shared: &Shared, accepted: bool) {
        if !self.in_progress() {
            return;
        }
        if accepted {
            self.clear(shared);
        } else {
            self.abort(shared, "Failover target rejected psync request");
        }
    }

    /// FAILOVER ABORT, a timeout or a refusal: a handover under way is
    /// undone (this server is a primary again) and writes resume.
    pub fn abort(&self, shared: &Shared, why: &str) {
        if !self.active() {
            return;
        }
        match &self.plan.lock().target {
            Some((host, port)) => tracing::info!("FAILOVER to {host}:{port} aborted: {why}"),
            None => tracing::info!("FAILOVER to any replica aborted: {why}"),
        }
        if self.in_progress() {
            crate::cmd::replication::promote(shared);
        }
        self.clear(shared);
    }

    fn clear(&self, shared: &Shared) {
        *self.plan.lock() = Plan::default();
        self.state.store(NONE, Relaxed);
        shared.pause.end(Purpose::Failover, shared.clock.now_ms(), &shared.keyspace);
    }
}
