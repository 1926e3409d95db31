//! One task per connection: read, parse every complete command in the
//! buffer, run each on this thread, and write all replies with one write
//! (for a pipelined batch, once the other connections with requests ready
//! have run theirs: see `BackOfQueue` and the hold before the write).
//!
//! A malformed frame gets Redis's protocol error and the connection closes;
//! a bad command only gets an error reply. Buffers are reused across
//! batches, released after an unusually large request, and trimmed or
//! released when the cron asks (`shrink`: the connection owns its
//! buffers, so the cron only reads what it publishes and asks).

use crate::conn::client::{Client, ClientInfo, Peer, Shrink};
use crate::conn::reply::Reply;
use crate::dispatch::dispatch;
use crate::Shared;
use bytes::{Buf, Bytes, BytesMut};
use larder_protocol::{encode, parse_request, Frame, Request, RequestLimits};
use larder_store::value::ADOPT_FROM;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// What a client connects over: a TCP stream, a Unix socket's, or TLS
/// over TCP (whose descriptor is the TCP stream's).
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// Its file descriptor, for CLIENT LIST (-1 where there is none).
    fn fd(&self) -> i64;
}

#[cfg(unix)]
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static + std::os::fd::AsRawFd> Stream for T {
    fn fd(&self) -> i64 {
        self.as_raw_fd() as i64
    }
}

#[cfg(not(unix))]
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for T {
    fn fd(&self) -> i64 {
        -1
    }
}

const READ_CHUNK: usize = 16 * 1024;
/// Replies beyond this are written before the rest of the batch runs, so a
/// pipeline of large GETs does not build one giant buffer.
const OUT_FLUSH_AT: usize = 1024 * 1024;
/// Buffers that grew past this are released once empty.
const SHRINK_ABOVE: usize = 1024 * 1024;
/// The cron trims a query buffer only past this (Redis's
/// `PROTO_RESIZE_THRESHOLD`), and a reply buffer never below this
/// (`PROTO_REPLY_MIN_BYTES`).
pub const QUERY_TRIM_ABOVE: u64 = 32 * 1024;
pub const REPLY_MIN: u64 = 1024;
/// Room after a large argument, in the buffer read for its request, for
/// the arguments that may follow it (SET's options): past it, the buffer
/// grows as any does. Small, because the value keeps it.
const AFTER_LARGE_ARG: usize = 64;
/// A connection's own state beyond its buffers (the client, its info, its
/// outbox, the task), for its memory figure.
const CLIENT_BASE: usize = std::mem::size_of::<Client>() + 1024;

/// Serves one client: `addr` is where it connected from, `laddr` where to.
pub async fn run(shared: Arc<Shared>, mut stream: impl Stream, addr: Peer, laddr: Peer) {
    let fd = stream.fd();
    let (info, outbox) = shared.clients.register(addr, laddr, fd, shared.uptime_ms());
    let mut client = Client::new(info.clone(), outbox.clone(), shared.acl.default_user(), shared.acl.default_open());
    // A shutdown that swept the clients before this one registered.
    if *shared.shutdown_rx().borrow() {
        info.kill();
    }
    let mut inbuf = BytesMut::with_capacity(READ_CHUNK);
    let mut out = Reply::with_capacity(READ_CHUNK);
    let mut req = Request::default();
    // The query buffer was made for the request at its front, which has a
    // large argument (see `read_large_argument`).
    let mut own_buffer = false;
    // The query buffer's first byte is its allocation's first: a request
    // split off from the front takes no consumed bytes along (which the
    // value would keep alive). Cleared when bytes are consumed and others
    // remain; set again once it is emptied back to its start.
    let mut at_start = true;
    // A new reply buffer counts as used to the full until its first peak
    // reset, as in Redis, so a short-lived connection is never trimmed.
    info.rbp.store(out.capacity() as u64, Relaxed);
    // Bytes this connection counts against maxmemory-clients.
    let mut counted = publish_footprint(&shared, &client, &outbox, &inbuf, &out, 0);

    'conn: loop {
        // A buffer made for one request has room for it: it grows only
        // if what follows the large argument outruns its spare room.
        if !own_buffer || inbuf.len() == inbuf.capacity() {
            make_room(&mut inbuf);
        }
        // Wake also for messages and invalidations other clients queue.
        // Biased: the branches are cheap to poll in order, and tokio's
        // random start costs a thread-local RNG step per request.
        tokio::select! {
            biased;
            r = stream.read_buf(&mut inbuf) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    shared.stats.total_net_input_bytes.add(n as u64);
                    shared.stats.total_reads_processed.add(1);
                }
            },
            _ = info.killed() => break,
            _ = outbox.ready() => {
                out.extend_from_slice(&outbox.take());
                if write_out_or_killed(&shared, &mut stream, &mut out, &info).await.is_err() {
                    break;
                }
                continue;
            }
            // The cron asks: idle a while, give the buffers back, as Redis
            // frees an idle client's query buffer, so thousands of idle
            // connections do not hold 32 KB each of maxmemory; or trim a
            // buffer to what it held at most lately.
            why = info.shrink_asked() => {
                shrink(&shared, &info, why, &mut inbuf, &mut out);
                // (Only an empty query buffer is replaced.)
                at_start |= inbuf.is_empty();
                counted = publish_footprint(&shared, &client, &outbox, &inbuf, &out, counted);
                continue;
            }
        }
        if info.is_killed() {
            break;
        }
        let (limits, query_buffer_limit) = {
            let cfg = shared.config.read();
            let limits = RequestLimits {
                max_bulk_len: cfg.proto_max_bulk_len as i64,
                authenticated: client.authenticated,
                ..Default::default()
            };
            client.limits = cfg.limits;
            (limits, cfg.client_query_buffer_limit)
        };
        let mut pos = 0;
        let mut processed = 0u64;
        let mut close = false;
        let reply_room = out.capacity();
        info.qbuf.store(inbuf.len() as u64, Relaxed);
        info.qbuf_free.store((inbuf.capacity() - inbuf.len()) as u64, Relaxed);
        ClientInfo::raise(&info.qbuf_peak, inbuf.len() as u64);
        let mut waiting = None;
        loop {
            match parse_request(&inbuf[pos..], &limits, &mut req) {
                Ok(None) => {
                    waiting = req.waiting_for();
                    break;
                }
                Ok(Some(n)) => {
                    // A request the buffer was made for (by
                    // `read_large_argument`, or left at its size by the
                    // large request before and filled whole) leaves with
                    // the buffer, so a write may keep its large argument
                    // where it is (`Ctx::str_value`).
                    let fitted = pos == 0
                        && at_start
                        && (own_buffer
                            || (inbuf.capacity() <= n + n / 16 + AFTER_LARGE_ARG
                                && req.args_lens().any(|len| len >= ADOPT_FROM)));
                    let owned = fitted.then(|| {
                        let request = inbuf.split_to(n).freeze();
                        // What follows moves to a new buffer of the same
                        // size, as Redis's does after a large argument:
                        // the next large one likely arrives whole in it.
                        let mut next = BytesMut::with_capacity(n + AFTER_LARGE_ARG);
                        next.extend_from_slice(&inbuf);
                        inbuf = next;
                        request
                    });
                    own_buffer = false;
                    if !req.is_empty() {
                        client.owned_input.clone_from(&owned);
                        let input = request_bytes(&owned, &inbuf, &(pos..pos + n));
                        dispatch(&shared, &mut client, &req, input, &mut out);
                        processed += 1;
                        if client.postponed || client.wants_block {
                            let mut parked = Parked {
                                shared: &shared,
                                client: &mut client,
                                stream: &mut stream,
                                inbuf: &mut inbuf,
                                out: &mut out,
                                req: &req,
                                owned: &owned,
                                at: pos..pos + n,
                            };
                            // Its arguments stay in the query buffer while it
                            // waits: CLIENT LIST shows them as `argv-mem`.
                            info.argv_mem.store(req.args_len() as u64, Relaxed);
                            let go_on = parked.wait_unpaused().await && parked.wait_blocked().await;
                            info.argv_mem.store(0, Relaxed);
                            if !go_on {
                                break 'conn;
                            }
                        }
                        client.owned_input = None;
                    }
                    if owned.is_none() {
                        pos += n;
                    }
                    if client.close_after_reply || info.is_killed() {
                        close = true;
                        break;
                    }
                    if out.total_len() >= OUT_FLUSH_AT
                        && write_out(&shared, &mut stream, &mut out, &info).await.is_err()
                    {
                        break 'conn;
                    }
                }
                Err(e) => {
                    tracing::debug!(client = client.id(), "protocol error: {e}");
                    out.extend_from_slice(format!("-ERR {e}\r\n").as_bytes());
                    close = true;
                    break;
                }
            }
        }
        inbuf.advance(pos);
        at_start &= pos == 0 || inbuf.is_empty();
        if let Some(arg) = waiting.filter(|a| !own_buffer && a.len() >= ADOPT_FROM) {
            own_buffer = read_large_argument(&mut inbuf, arg, query_buffer_limit, at_start);
            at_start |= own_buffer;
        }
        if inbuf.is_empty() {
            // Back to the start of its allocation (no copy: it is empty),
            // so the next read has all of it and `qbuf-free` says so.
            // Asking for one byte more than the room it shows is what
            // makes `try_reclaim` look at the consumed front at all (it
            // returns at once when the room suffices); it never allocates,
            // so a released buffer stays released.
            let _ = inbuf.try_reclaim(inbuf.capacity() + 1);
            at_start = true;
        }
        info.qbuf.store(inbuf.len() as u64, Relaxed);
        // What the batch freed or took is published before this task can
        // move to another thread (at the write below), so a command from
        // elsewhere (an eviction check, INFO) never works from a figure
        // without it. Cheap: two counter reads, a store once 4 KB moved.
        crate::memory::settle();
        if processed > 0 {
            shared.stats.total_commands_processed.add(processed);
            info.last_interaction.store(shared.uptime_ms(), Relaxed);
        }
        if processed > 1 && !out.is_empty() {
            // A pipelined batch's replies wait until the other connections
            // with requests ready have run theirs, as Redis writes every
            // client's replies in one go before it sleeps. Why: a client
            // on the same host sleeps between replies once the server is
            // the slower side, and the server's send pays for waking it
            // (on a VM an inter-processor interrupt, about 10 µs). Sent
            // together, the replies of many connections cost the client
            // one wake-up. EVALSHA at pipeline 16 from 50 connections: the
            // server's kernel time went from about 1 µs a request to 0.3,
            // its throughput up 39%, SET's 34%. The price is the wait: at
            // a fixed 100k SET/s from 50 connections sending together,
            // p99 went from 0.52 to 0.71 ms (Redis's 1.04; BENCHMARKS.md).
            // A batch of one command is not held: at pipeline 1 the
            // kernel's time a request measured the same either way.
            BackOfQueue(false).await;
        }
        if !out.is_empty() {
            ClientInfo::raise(&info.rbp, out.len() as u64);
            if out.capacity() > reply_room {
                shared.stats.reply_buffer_expands.fetch_add(1, Relaxed);
            }
            // A client others write to must stay killable by the output
            // buffer limit while its own write is stuck.
            let written = if client.outbox.subscribed() || client.tracking.is_some() || client.monitoring() {
                write_out_or_killed(&shared, &mut stream, &mut out, &info).await
            } else {
                write_out(&shared, &mut stream, &mut out, &info).await
            };
            if written.is_err() {
                break;
            }
        }
        if close {
            break;
        }
        if inbuf.len() as u64 > query_buffer_limit {
            tracing::warn!(client = client.id(), "closing client that reached max query buffer length");
            break;
        }
        if inbuf.is_empty() && inbuf.capacity() > SHRINK_ABOVE {
            inbuf = BytesMut::with_capacity(READ_CHUNK);
        }
        if out.capacity() > SHRINK_ABOVE {
            out.set_buffer(BytesMut::with_capacity(READ_CHUNK));
        }
        counted = publish_footprint(&shared, &client, &outbox, &inbuf, &out, counted);
        if shared.clients.over_mem_limit() && shared.clients.evict_over_limit() > 0 && info.is_killed() {
            break;
        }
    }
    shared.clients.forget_mem(counted);
    let _ = stream.shutdown().await;
    if let Some((flag, keys)) = client.watch.take() {
        shared.watches.unwatch(&keys, &flag);
    }
    for (kind, names) in [crate::pubsub::Kind::Channel, crate::pubsub::Kind::Pattern, crate::pubsub::Kind::Shard]
        .into_iter()
        .zip(std::mem::take(&mut client.subs))
    {
        for name in names {
            shared.pubsub.unsubscribe(kind, &name, client.id());
        }
    }
    if client.tracking.is_some() {
        shared.tracking.disable(&mut client);
    }
    outbox.close();
    shared.clients.unregister(client.id());
}

/// Room for the next read: another READ_CHUNK once less than a quarter of
/// one is free. A buffer released while idle (capacity 0) stays released
/// until bytes arrive: that read takes a small chunk, and the buffer grows
/// back to READ_CHUNK for the rest.
fn make_room(inbuf: &mut BytesMut) {
    if inbuf.capacity() != 0 && inbuf.capacity() - inbuf.len() < READ_CHUNK / 4 {
        inbuf.reserve(READ_CHUNK);
    }
}

/// The request at the front of `inbuf` waits for a large argument (at
/// `arg`, at least [`ADOPT_FROM`] bytes): its bytes go into a buffer of
/// the request's size, with a little room for what follows, so the rest
/// arrives in place (no doubling and copying on the way) and a write can
/// keep the argument in that buffer as its value, as Redis reads a large
/// argument into a buffer of its own and keeps it as the value. Returns
/// whether it made the buffer: not when the request would pass the
/// query buffer limit (the connection closes at the limit anyway).
/// `at_start`: the request begins at the buffer's allocation.
fn read_large_argument(inbuf: &mut BytesMut, arg: std::ops::Range<usize>, limit: u64, at_start: bool) -> bool {
    let size = arg.end + 2 + AFTER_LARGE_ARG;
    if size as u64 > limit {
        return false;
    }
    // The buffer a large request left behind already fits this one, from
    // its start and not by much more (the value keeps all of it): no copy.
    let fits = at_start && (arg.end + 2..=size + size / 16).contains(&inbuf.capacity());
    if !fits {
        let mut own = BytesMut::with_capacity(size);
        own.extend_from_slice(inbuf);
        *inbuf = own;
    }
    true
}

/// Does what the cron asked ([`Shrink`] bits), by the connection's own
/// view of its buffers, which may have moved since the cron looked:
/// an idle connection releases its empty buffers; an empty query buffer
/// is trimmed to what it held at most lately (not below one read's
/// chunk, which the next read would take back); an empty reply buffer
/// to its peak, 1 KB at least.
fn shrink(shared: &Shared, info: &ClientInfo, why: u8, inbuf: &mut BytesMut, out: &mut Reply) {
    if why & Shrink::IDLE != 0 {
        if inbuf.is_empty() {
            *inbuf = BytesMut::new();
        }
        if out.is_empty() {
            out.set_buffer(BytesMut::new());
        }
    }
    if why & Shrink::QUERY != 0 && inbuf.is_empty() {
        let keep = (info.qbuf_peak.load(Relaxed) as usize).max(READ_CHUNK);
        if inbuf.capacity() as u64 > QUERY_TRIM_ABOVE && keep < inbuf.capacity() {
            *inbuf = BytesMut::with_capacity(keep);
        }
    }
    if why & Shrink::REPLY != 0 && out.is_empty() {
        let keep = (info.rbp.load(Relaxed) + 1).max(REPLY_MIN) as usize;
        if keep < out.capacity() {
            out.set_buffer(BytesMut::with_capacity(keep));
            shared.stats.reply_buffer_shrinks.fetch_add(1, Relaxed);
        }
    }
}

/// Publishes what this connection holds, for CLIENT LIST (`tot-mem`,
/// `qbuf-free`) and client eviction (maxmemory-clients): its buffers, the
/// messages queued for it, and its own state. Replicas and NO-EVICT
/// clients do not count against the limit. Returns what it now counts
/// (`counted`, the figure it counted until now, comes back updated).
fn publish_footprint(
    shared: &Shared,
    client: &Client,
    outbox: &crate::pubsub::Outbox,
    inbuf: &BytesMut,
    out: &BytesMut,
    counted: u64,
) -> u64 {
    let info = &client.info;
    // The outbox is left out of what is published: readers add it as it
    // stands then (`ClientInfo::live_mem`).
    let held = (inbuf.capacity() + out.capacity() + CLIENT_BASE) as u64;
    info.qbuf_free.store((inbuf.capacity() - inbuf.len()) as u64, Relaxed);
    info.rbs.store(out.capacity() as u64, Relaxed);
    let evictable = client.replica.is_none() && !info.no_evict.load(Relaxed);
    let mem = held + outbox.queued() as u64;
    shared.clients.publish_mem(info, held, if evictable { mem } else { 0 }, counted)
}

/// A connection whose command waits: held by CLIENT PAUSE, or blocked
/// (BLPOP…). It keeps reading what the client sends meanwhile, and runs
/// the command again (the request at `at` in `inbuf`) when it may.
struct Parked<'a, S> {
    shared: &'a Shared,
    client: &'a mut Client,
    stream: &'a mut S,
    inbuf: &'a mut BytesMut,
    out: &'a mut Reply,
    req: &'a Request,
    /// The request's bytes when they left the query buffer (a large
    /// argument's request); else they are in it at `at`.
    owned: &'a Option<Bytes>,
    at: std::ops::Range<usize>,
}

/// A parked request's bytes (see [`Parked::owned`]).
fn request_bytes<'b>(owned: &'b Option<Bytes>, inbuf: &'b BytesMut, at: &std::ops::Range<usize>) -> &'b [u8] {
    match owned {
        Some(b) => b,
        None => &inbuf[at.clone()],
    }
}

impl<S: Stream> Parked<'_, S> {
    /// Waits while CLIENT PAUSE holds the client's command: until the pause
    /// ends, is lifted or changes, then runs the command again (which a pause
    /// still on holds again). Bytes that arrive meanwhile are kept for later.
    /// Returns false if the connection must close.
    async fn wait_unpaused(&mut self) -> bool {
        let Parked { shared, client, stream, inbuf, out, req, owned, at } = self;
        let (shared, req, at) = (*shared, *req, at.clone());
        if !client.postponed {
            return true;
        }
        let info = client.info.clone();
        let _held = shared.pause.hold();
        while client.postponed {
            client.postponed = false;
            if !out.is_empty() && write_out(shared, &mut **stream, out, &client.info).await.is_err() {
                return false;
            }
            // Subscribed before the check, so an UNPAUSE right after it wakes us.
            let mut changed = shared.pause.subscribe();
            let now = shared.clock.now_ms();
            if let Some((_, end)) = shared.pause.current(now) {
                make_room(inbuf);
                let closed = tokio::select! {
                    _ = changed.changed() => false,
                    _ = tokio::time::sleep(std::time::Duration::from_millis(end - now)) => false,
                    _ = info.killed() => true,
                    r = stream.read_buf(inbuf) => matches!(r, Ok(0) | Err(_)),
                };
                if closed || info.is_killed() {
                    return false;
                }
            }
            dispatch(shared, client, req, request_bytes(owned, inbuf, &at), out);
        }
        true
    }

    /// Waits while the client is blocked (BLPOP…): until a key it waits on
    /// may be ready (then the command runs again), its deadline passes, it is
    /// killed, or it disconnects. Bytes that arrive meanwhile are kept for
    /// later, as Redis does. Returns false if the connection must close.
    async fn wait_blocked(&mut self) -> bool {
        let Parked { shared, client, stream, inbuf, out, req, owned, at } = self;
        let (shared, req, at) = (*shared, *req, at.clone());
        enum Event {
            Woken,
            Timeout,
            Closed,
            Data,
        }
        let info = client.info.clone();
        while client.wants_block {
            client.wants_block = false;
            if !out.is_empty() && write_out(shared, &mut **stream, out, &client.info).await.is_err() {
                break;
            }
            let st = client.blocked.as_ref().expect("block() sets the state");
            let (waiter, deadline) = (st.waiter.clone(), st.deadline);
            let timeout = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            make_room(inbuf);
            let event = tokio::select! {
                _ = waiter.woken() => Event::Woken,
                _ = timeout => Event::Timeout,
                _ = info.killed() => Event::Closed,
                r = stream.read_buf(inbuf) => match r {
                    Ok(0) | Err(_) => Event::Closed,
                    Ok(_) => Event::Data,
                },
            };
            match event {
                Event::Woken => match waiter.take_unblock() {
                    // CLIENT UNBLOCK TIMEOUT of a WAIT: as if its deadline passed.
                    Some(crate::blocking::Unblock::Timeout)
                        if client.blocked.as_ref().is_some_and(|st| st.rerun_at_deadline) =>
                    {
                        if let Some(st) = client.blocked.as_mut() {
                            st.deadline = Some(std::time::Instant::now());
                        }
                        dispatch(shared, client, req, request_bytes(owned, inbuf, &at), out)
                    }
                    // CLIENT UNBLOCK: the wait ends as asked, the command unrun.
                    Some(how) => {
                        let st = client.blocked.take().expect("still blocked");
                        shared.blocking.unregister(&st);
                        let reply = match how {
                            crate::blocking::Unblock::Timeout => st.timeout_reply.clone(),
                            crate::blocking::Unblock::Error => {
                                Frame::Error("UNBLOCKED client unblocked via CLIENT UNBLOCK".into())
                            }
                        };
                        encode(&reply, client.proto, out);
                    }
                    None => dispatch(shared, client, req, request_bytes(owned, inbuf, &at), out),
                },
                Event::Timeout if client.blocked.as_ref().is_some_and(|st| st.rerun_at_deadline) => {
                    dispatch(shared, client, req, request_bytes(owned, inbuf, &at), out)
                }
                Event::Timeout => {
                    let st = client.blocked.take().expect("still blocked");
                    shared.blocking.unregister(&st);
                    encode(&st.timeout_reply, client.proto, out);
                }
                Event::Closed => break,
                Event::Data => client.wants_block = true,
            }
            if info.is_killed() {
                break;
            }
        }
        if let Some(st) = client.blocked.take() {
            shared.blocking.unregister(&st);
            return false;
        }
        true
    }
}

/// A write that gives up when the client is killed (a subscriber that
/// stopped reading would otherwise hold its task in `write_all` forever).
async fn write_out_or_killed(
    shared: &Shared,
    stream: &mut impl Stream,
    out: &mut Reply,
    info: &crate::conn::client::ClientInfo,
) -> std::io::Result<()> {
    // Killed before this write began: do not start it.
    if info.is_killed() {
        return Err(std::io::ErrorKind::ConnectionAborted.into());
    }
    tokio::select! {
        r = write_out(shared, stream, out, info) => r,
        _ = info.killed() => Err(std::io::ErrorKind::ConnectionAborted.into()),
    }
}

async fn write_out(
    shared: &Shared,
    stream: &mut impl Stream,
    out: &mut Reply,
    info: &ClientInfo,
) -> std::io::Result<()> {
    // No reply leaves before the writes it acknowledges are in the AOF.
    shared.aof.before_reply().await;
    // CLIENT LIST's `obl`, published only once the write has to wait on
    // the socket: a write that goes at once (nearly all) costs no store,
    // and no reader can see its bytes as waiting after they arrived.
    let (waiting, mut shown) = (out.total_len() as u64, false);
    let written = {
        let mut write = std::pin::pin!(out.write_to(stream));
        std::future::poll_fn(|cx| {
            let poll = std::future::Future::poll(write.as_mut(), cx);
            if poll.is_pending() && !shown {
                info.obl.store(waiting, Relaxed);
                shown = true;
            }
            poll
        })
        .await
    };
    if shown {
        info.obl.store(0, Relaxed);
    }
    written?;
    if info.replica.load(Relaxed) {
        shared.stats.total_net_repl_output_bytes.add(waiting);
    } else {
        shared.stats.total_net_output_bytes.add(waiting);
    }
    shared.stats.total_writes_processed.add(1);
    out.clear();
    Ok(())
}

/// Ready on its second poll; the first wakes the task, which puts it at the
/// back of its worker's run queue: behind the connections already found
/// ready, and no further. With none queued the task runs on at once.
/// (tokio treats a task that wakes itself while it runs as a yield, which
/// goes to the back of the queue whether or not the LIFO slot is on.)
/// (`tokio::task::yield_now` waits for the next poll of the I/O driver
/// too: a syscall per batch when nothing else is ready, and replies held
/// also behind whatever that poll finds. The two measured the same under
/// load; this one does only what the hold needs.)
struct BackOfQueue(bool);

impl std::future::Future for BackOfQueue {
    type Output = ();
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::BackOfQueue;
    use std::sync::{Arc, Mutex};

    /// The hold relies on tokio putting a task that woke itself behind the
    /// tasks already queued on its worker: a connection whose request
    /// arrived meanwhile runs before the held replies are written.
    #[test]
    fn back_of_queue_lets_the_queued_tasks_run_first() {
        for lifo in [true, false] {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(1);
            #[cfg(tokio_unstable)]
            if !lifo {
                builder.disable_lifo_slot();
            }
            let rt = builder.build().unwrap();
            let order = Arc::new(Mutex::new(Vec::new()));
            let o = order.clone();
            rt.block_on(async move {
                tokio::spawn(async move {
                    let queued = {
                        let o = o.clone();
                        tokio::spawn(async move { o.lock().unwrap().push("queued") })
                    };
                    o.lock().unwrap().push("held");
                    BackOfQueue(false).await;
                    o.lock().unwrap().push("written");
                    queued.await.unwrap();
                    // Nothing queued now: the hold ends at once.
                    BackOfQueue(false).await;
                })
                .await
                .unwrap();
            });
            assert_eq!(*order.lock().unwrap(), ["held", "queued", "written"], "lifo slot {lifo}");
        }
    }
}
