//! SET latency at a fixed request rate, for the eviction benchmark.
//!
//! redis-benchmark sends as fast as it can, so its latencies are those of
//! a saturated server: any extra work, eviction included, shows up as
//! queueing. A cache's question is different: at the rate it serves, does
//! eviction cost its clients anything? This sends SETs of random keys at a
//! set rate over many connections and reports the service-time
//! percentiles. Each connection wakes every millisecond and sends, in one
//! write, the requests due since its last turn (so at 100k/s over 50
//! connections, two at a time), then reads their replies; a request's
//! latency runs from that write to its reply. How far the sender fell
//! behind its schedule is reported too: a server slow enough to hold the
//! client back shows there.
//!
//! Usage: rate-bench --port P [--rate 100000] [--secs 10] [--conns 50]
//!        [--keyspace 10000000] [--size 100]

use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Opts {
    port: u16,
    rate: u64,
    secs: u64,
    conns: u64,
    keyspace: u64,
    size: usize,
}

fn parse_opts() -> Opts {
    let mut o = Opts { port: 6379, rate: 100_000, secs: 10, conns: 50, keyspace: 10_000_000, size: 100 };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).unwrap_or_else(|| usage(&format!("{} needs a value", pair[0])));
        let number = || value.parse::<u64>().unwrap_or_else(|_| usage(&format!("bad number for {}", pair[0])));
        match pair[0].as_str() {
            "--port" => o.port = number() as u16,
            "--rate" => o.rate = number().max(1),
            "--secs" => o.secs = number().max(1),
            "--conns" => o.conns = number().max(1),
            "--keyspace" => o.keyspace = number().max(1),
            "--size" => o.size = number() as usize,
            other => usage(&format!("unknown option {other}")),
        }
    }
    o
}

fn usage(why: &str) -> ! {
    eprintln!(
        "rate-bench: {why}\nusage: rate-bench --port P [--rate N] [--secs N] [--conns N] [--keyspace N] [--size N]"
    );
    std::process::exit(2)
}

/// What one connection measured.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    worst_lag: Duration,
}

async fn connection(o: &Opts, seed: u64, start: Instant, end: Instant) -> std::io::Result<Tally> {
    let mut stream = TcpStream::connect(("127.0.0.1", o.port)).await?;
    stream.set_nodelay(true)?;
    let per_conn = o.rate as f64 / o.conns as f64;
    let value = vec![b'v'; o.size];
    let (mut out, mut reply) = (Vec::new(), vec![0u8; 4096]);
    let mut tally = Tally::default();
    let mut rng = seed | 1;
    let mut sent = 0u64;
    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        ticker.tick().await;
        let now = Instant::now();
        if now >= end {
            return Ok(tally);
        }
        let due = (now.duration_since(start).as_secs_f64() * per_conn) as u64;
        if due <= sent {
            continue;
        }
        // The oldest request of this batch was due this long ago.
        let first_due = start + Duration::from_secs_f64(sent as f64 / per_conn);
        tally.worst_lag = tally.worst_lag.max(now.saturating_duration_since(first_due));
        let batch = due - sent;
        out.clear();
        for _ in 0..batch {
            // xorshift: cheap, and keys spread over the whole keyspace.
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let key = format!("key:{:012}", rng % o.keyspace);
            out.extend_from_slice(
                format!("*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n", key.len(), value.len()).as_bytes(),
            );
            out.extend_from_slice(&value);
            out.extend_from_slice(b"\r\n");
        }
        let sent_at = Instant::now();
        stream.write_all(&out).await?;
        // Every reply is "+OK\r\n" (or an error line): count line ends.
        let mut lines = 0;
        while lines < batch {
            let n = stream.read(&mut reply).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let elapsed = sent_at.elapsed().as_micros().min(u32::MAX as u128) as u32;
            for &b in &reply[..n] {
                if b == b'\n' {
                    lines += 1;
                    tally.latencies_us.push(elapsed);
                }
            }
        }
        sent = due;
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn main() {
    let o = parse_opts();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let (tallies, elapsed) = rt.block_on(async {
        let start = Instant::now();
        let end = start + Duration::from_secs(o.secs);
        let o = &o;
        // A fresh seed per run: a second run writes new keys, not the
        // first run's again.
        let base =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
        let runs = (0..o.conns).map(|i| connection(o, base ^ 0x9E37_79B9_7F4A_7C15u64.wrapping_mul(i + 1), start, end));
        let results = futures_util::future::join_all(runs).await;
        (results, start.elapsed())
    });
    let mut all = Vec::new();
    let mut worst_lag = Duration::ZERO;
    for t in tallies {
        match t {
            Ok(t) => {
                all.extend(t.latencies_us);
                worst_lag = worst_lag.max(t.worst_lag);
            }
            Err(e) => {
                eprintln!("rate-bench: connection failed: {e}");
                std::process::exit(1);
            }
        }
    }
    all.sort_unstable();
    println!(
        "rate {:.0}/s achieved {:.0}/s  p50 {:.3} ms  p99 {:.3} ms  p99.9 {:.3} ms  max {:.3} ms  worst schedule lag {:.1} ms",
        o.rate,
        all.len() as f64 / elapsed.as_secs_f64(),
        percentile(&all, 0.50),
        percentile(&all, 0.99),
        percentile(&all, 0.999),
        percentile(&all, 1.0),
        worst_lag.as_secs_f64() * 1000.0,
    );
}
