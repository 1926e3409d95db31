//! INFO: renders the sections Redis clients and tools parse, with Redis's
//! field names. Memory figures come from jemalloc, the global allocator.

use crate::cmd::connection::REDIS_VERSION;
use crate::config::Config;
use crate::Shared;
use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

const DEFAULT_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "errorstats",
    "cluster",
    "keyspace",
];

/// Sections only `all`, `everything` or their own name ask for.
const EXTRA_SECTIONS: &[&str] = &["commandstats", "latencystats"];

/// Redis's bytesToHuman.
pub fn human_bytes(n: u64) -> String {
    let n = n as f64;
    let units =
        [("B", 1.0), ("K", 1024.0), ("M", 1024.0 * 1024.0), ("G", 1024.0 * 1024.0 * 1024.0), ("T", 1024f64.powi(4))];
    for w in units.windows(2) {
        if n < w[1].1 {
            return if w[0].0 == "B" { format!("{n}B") } else { format!("{:.2}{}", n / w[0].1, w[0].0) };
        }
    }
    format!("{:.2}P", n / 1024f64.powi(5))
}

/// Physical memory, from /proc/meminfo (0 where there is none).
fn total_system_memory() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kb: Option<u64> = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok());
    kb.unwrap_or(0) * 1024
}

fn cpu_seconds() -> (f64, f64) {
    // utime and stime are fields 14 and 15 of /proc/self/stat, in ticks.
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / 100.0;
    (tick(12), tick(11))
}

pub fn render(shared: &Shared, requested: &[String]) -> String {
    let mut wanted: Vec<&str> = Vec::new();
    if requested.is_empty() {
        wanted.extend(DEFAULT_SECTIONS);
    }
    for r in requested {
        match r.as_str() {
            "default" => wanted.extend(DEFAULT_SECTIONS),
            "all" | "everything" => {
                wanted.extend(DEFAULT_SECTIONS.iter().copied().chain(EXTRA_SECTIONS.iter().copied()))
            }
            other => wanted.push(other),
        }
    }
    let cfg = shared.config.read().clone();
    let order = DEFAULT_SECTIONS.iter().copied().chain(EXTRA_SECTIONS.iter().copied());
    let mut out = String::new();
    for section in order.filter(|s| wanted.contains(s)) {
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        render_section(shared, &cfg, section, &mut out);
    }
    out
}

fn render_section(shared: &Shared, cfg: &Config, section: &str, out: &mut String) {
    let st = &shared.stats;
    let uptime = shared.started.elapsed().as_secs();
    macro_rules! field {
        ($($arg:tt)*) => {{ let _ = write!(out, $($arg)*); out.push_str("\r\n"); }};
    }
    match section {
        "server" => {
            out.push_str("# Server\r\n");
            field!("redis_version:{REDIS_VERSION}");
            field!("larder_version:{}", env!("CARGO_PKG_VERSION"));
            field!("redis_git_sha1:00000000");
            field!("redis_git_dirty:0");
            field!("redis_build_id:0");
            field!("redis_mode:standalone");
            field!("os:{} {}", std::env::consts::OS, std::env::consts::ARCH);
            field!("arch_bits:64");
            field!("multiplexing_api:epoll");
            field!("process_id:{}", std::process::id());
            field!("process_supervised:no");
            field!("run_id:{}", shared.run_id);
            field!("tcp_port:{}", shared.listen_addr.read().map(|a| a.port()).unwrap_or(cfg.port));
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            field!("server_time_usec:{}", now.as_micros());
            field!("uptime_in_seconds:{uptime}");
            field!("uptime_in_days:{}", uptime / 86400);
            field!("hz:{}", cfg.hz);
            field!("configured_hz:{}", cfg.hz);
            field!("lru_clock:{}", (shared.clock.now_ms() / 1000) & 0xff_ffff);
            field!("executable:{}", std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default());
            field!("config_file:{}", cfg.config_file);
            field!("io_threads_active:0");
            // Only while a shutdown waits for its replicas, as in Redis.
            let deadline = shared.shutdown_deadline_ms.load(Relaxed);
            if deadline != 0 {
                field!("shutdown_in_milliseconds:{}", deadline.saturating_sub(shared.clock.now_ms()));
            }
        }
        "clients" => {
            out.push_str("# Clients\r\n");
            field!("connected_clients:{}", shared.clients.count());
            field!("cluster_connections:0");
            field!("maxclients:{}", cfg.maxclients);
            let (input, output) = shared.clients.buffers.recent_max();
            field!("client_recent_max_input_buffer:{input}");
            field!("client_recent_max_output_buffer:{output}");
            let (blocked, keys, timed) = shared.blocking.stats();
            field!("blocked_clients:{}", blocked + shared.pause.held());
            field!("tracking_clients:{}", shared.tracking.stats().0);
            field!("clients_in_timeout_table:{}", timed);
            field!("total_blocking_keys:{}", keys);
        }
        "memory" => {
            let r = crate::cmd::memory::report(shared);
            let (allocated, active, resident) = r.allocator;
            let (used, peak) = (r.used, r.peak);
            out.push_str("# Memory\r\n");
            field!("used_memory:{used}");
            field!("used_memory_human:{}", human_bytes(used));
            field!("used_memory_rss:{}", r.rss);
            field!("used_memory_rss_human:{}", human_bytes(r.rss));
            field!("used_memory_peak:{peak}");
            field!("used_memory_peak_human:{}", human_bytes(peak));
            field!("used_memory_peak_perc:{:.2}%", crate::cmd::memory::Report::percent(used, peak));
            field!("used_memory_overhead:{}", r.overhead);
            field!("used_memory_startup:{}", r.startup);
            field!("used_memory_dataset:{}", r.dataset());
            let net = used.saturating_sub(r.startup);
            field!("used_memory_dataset_perc:{:.2}%", crate::cmd::memory::Report::percent(r.dataset(), net));
            field!("allocator_allocated:{allocated}");
            field!("allocator_active:{active}");
            field!("allocator_resident:{resident}");
            let total = total_system_memory();
            field!("total_system_memory:{total}");
            field!("total_system_memory_human:{}", human_bytes(total));
            let scripts = &r.scripts;
            let lua = scripts.vm;
            field!("used_memory_lua:{lua}");
            field!("used_memory_vm_eval:{lua}");
            field!("used_memory_lua_human:{}", human_bytes(lua));
            field!("used_memory_scripts_eval:{}", scripts.eval_bytes);
            field!("number_of_cached_scripts:{}", scripts.scripts);
            let (libraries, functions) = shared.scripting.function_counts();
            field!("number_of_functions:{functions}");
            field!("number_of_libraries:{libraries}");
            // One Lua VM runs both EVAL scripts and functions.
            field!("used_memory_vm_total:{lua}");
            field!("used_memory_vm_total_human:{}", human_bytes(lua));
            field!("used_memory_functions:{}", scripts.function_bytes);
            let overhead = (scripts.eval_bytes + scripts.function_bytes) as u64;
            field!("used_memory_scripts:{overhead}");
            field!("used_memory_scripts_human:{}", human_bytes(overhead));
            field!("maxmemory:{}", cfg.maxmemory);
            field!("maxmemory_human:{}", human_bytes(cfg.maxmemory));
            field!("maxmemory_policy:{}", cfg.maxmemory_policy);
            let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
            field!("allocator_frag_ratio:{:.2}", ratio(active, allocated));
            field!("allocator_frag_bytes:{}", active as i64 - allocated as i64);
            field!("allocator_rss_ratio:{:.2}", ratio(resident, active));
            field!("allocator_rss_bytes:{}", resident as i64 - active as i64);
            field!("rss_overhead_ratio:{:.2}", ratio(r.rss, resident));
            field!("rss_overhead_bytes:{}", r.rss as i64 - resident as i64);
            field!("mem_fragmentation_ratio:{:.2}", ratio(r.rss, used));
            field!("mem_fragmentation_bytes:{}", r.rss as i64 - used as i64);
            field!("mem_not_counted_for_evict:{}", shared.memory.not_counted());
            field!("mem_replication_backlog:{}", r.backlog);
            // Redis 7 shares one buffer between the backlog and its
            // replicas and reports the whole; here it is the two summed.
            field!("mem_total_replication_buffers:{}", r.backlog + r.clients_replicas);
            field!("mem_clients_slaves:{}", r.clients_replicas);
            field!("mem_clients_normal:{}", r.clients_normal);
            field!("mem_cluster_links:0");
            field!("mem_aof_buffer:{}", r.aof_buffer);
            field!("mem_allocator:jemalloc");
            field!("active_defrag_running:0");
            let (pending, freed) = shared.lazyfree.stats();
            field!("lazyfree_pending_objects:{pending}");
            field!("lazyfreed_objects:{freed}");
        }
        "persistence" => {
            out.push_str("# Persistence\r\n");
            let loading = &shared.snapshots.loading;
            field!("loading:{}", loading.is_active() as u8);
            field!("async_loading:0");
            let snaps = &shared.snapshots;
            field!("current_cow_size:{}", snaps.current_cow.load(Relaxed));
            let changes = shared.keyspace.write_count().saturating_sub(snaps.seq_at_save.load(Relaxed));
            field!("rdb_changes_since_last_save:{changes}");
            let bg = snaps.bgsave_in_progress.load(Relaxed);
            field!("rdb_bgsave_in_progress:{}", bg as u8);
            field!("rdb_last_save_time:{}", snaps.last_save.load(Relaxed));
            field!("rdb_last_bgsave_status:{}", if snaps.last_failed.load(Relaxed) { "err" } else { "ok" });
            field!("rdb_last_bgsave_time_sec:{}", snaps.last_bgsave_secs.load(Relaxed));
            let current = if bg {
                (shared.clock.now_ms().saturating_sub(snaps.bgsave_started_ms.load(Relaxed)) / 1000) as i64
            } else {
                -1
            };
            field!("rdb_current_bgsave_time_sec:{current}");
            field!("rdb_saves:{}", snaps.saves.load(Relaxed));
            field!("rdb_last_cow_size:{}", snaps.last_cow.load(Relaxed));
            field!("rdb_last_load_keys_expired:{}", snaps.last_load_expired.load(Relaxed));
            field!("rdb_last_load_keys_loaded:{}", snaps.last_load_keys.load(Relaxed));
            let aof = &shared.aof;
            field!("aof_enabled:{}", aof.enabled() as u8);
            field!("aof_rewrite_in_progress:{}", aof.rewrite_in_progress.load(Relaxed) as u8);
            field!("aof_rewrite_scheduled:{}", aof.rewrite_scheduled.load(Relaxed) as u8);
            field!("aof_last_rewrite_time_sec:{}", aof.last_rewrite_secs.load(Relaxed));
            field!("aof_current_rewrite_time_sec:{}", aof.rewrite_elapsed_secs(shared.clock.now_ms()));
            let ok = |b: bool| if b { "ok" } else { "err" };
            field!("aof_last_bgrewrite_status:{}", ok(aof.last_rewrite_ok.load(Relaxed)));
            field!("aof_rewrites:{}", aof.rewrites.load(Relaxed));
            field!("aof_last_write_status:{}", ok(aof.last_write_ok.load(Relaxed)));
            field!("aof_last_cow_size:{}", aof.last_cow.load(Relaxed));
            field!("module_fork_in_progress:0");
            field!("module_fork_last_cow_size:0");
            if aof.enabled() {
                let (current, base) = aof.sizes();
                field!("aof_current_size:{current}");
                field!("aof_base_size:{base}");
                field!("aof_pending_rewrite:{}", aof.rewrite_scheduled.load(Relaxed) as u8);
                field!("aof_buffer_length:{}", aof.pending_len());
                field!("aof_pending_bio_fsync:0");
                field!("aof_delayed_fsync:0");
            }
            if loading.is_active() {
                // Redis's figures and arithmetic (its ETA: the seconds so
                // far, scaled by the bytes left over the bytes read).
                let (total, loaded) = (loading.total_bytes.load(Relaxed), loading.loaded_bytes.load(Relaxed));
                let started = loading.started_s.load(Relaxed);
                let perc = match total {
                    0 if loaded > 0 => 100.0,
                    0 => 0.0,
                    t => loaded as f64 / t as f64 * 100.0,
                };
                let remaining = if total > 0 { total.saturating_sub(loaded) } else { 1 };
                let elapsed = (shared.clock.now_ms() / 1000).saturating_sub(started);
                let eta = if elapsed == 0 { 1 } else { elapsed * remaining / (loaded + 1) };
                field!("loading_start_time:{started}");
                field!("loading_total_bytes:{total}");
                field!("loading_rdb_used_mem:{}", loading.rdb_used_mem.load(Relaxed));
                field!("loading_loaded_bytes:{loaded}");
                field!("loading_loaded_perc:{perc:.2}");
                field!("loading_eta_seconds:{eta}");
            }
        }
        "stats" => {
            out.push_str("# Stats\r\n");
            field!("total_connections_received:{}", st.total_connections_received.load(Relaxed));
            field!("total_commands_processed:{}", st.total_commands_processed.get());
            let rates = {
                use crate::stats::Rate::*;
                let r = st.rates.lock();
                [Commands, NetInput, NetOutput, ReplInput, ReplOutput].map(|which| r.per_sec(which))
            };
            field!("instantaneous_ops_per_sec:{}", rates[0] as u64);
            field!("total_net_input_bytes:{}", st.total_net_input_bytes.get());
            field!("total_net_output_bytes:{}", st.total_net_output_bytes.get());
            field!("total_net_repl_input_bytes:{}", st.total_net_repl_input_bytes.get());
            field!("total_net_repl_output_bytes:{}", st.total_net_repl_output_bytes.get());
            field!("instantaneous_input_kbps:{:.2}", rates[1] / 1024.0);
            field!("instantaneous_output_kbps:{:.2}", rates[2] / 1024.0);
            field!("instantaneous_input_repl_kbps:{:.2}", rates[3] / 1024.0);
            field!("instantaneous_output_repl_kbps:{:.2}", rates[4] / 1024.0);
            field!("rejected_connections:{}", st.rejected_connections.load(Relaxed));
            let sync = &shared.replication.stats;
            field!("sync_full:{}", sync.full.load(Relaxed));
            field!("sync_partial_ok:{}", sync.partial_ok.load(Relaxed));
            field!("sync_partial_err:{}", sync.partial_err.load(Relaxed));
            field!("expired_keys:{}", shared.keyspace.expired_keys());
            field!("expired_time_cap_reached_count:{}", shared.keyspace.capped_expire_cycles());
            field!("expire_cycle_cpu_milliseconds:{}", st.expire_cycle_us.load(Relaxed) / 1000);
            field!("evicted_keys:{}", shared.keyspace.evicted_keys());
            field!("evicted_clients:{}", shared.clients.evicted());
            let (current, total) = shared.memory.over_limit_ms();
            field!("total_eviction_exceeded_time:{total}");
            field!("current_eviction_exceeded_time:{current}");
            // Larder's own: the part of evicted_keys evicted while idle
            // (memory.rs), not by a command.
            field!("evicted_keys_ahead:{}", shared.memory.evicted_ahead());
            field!("keyspace_hits:{}", st.keyspace_hits.get());
            field!("keyspace_misses:{}", st.keyspace_misses.get());
            let (channels, patterns, shard) = shared.pubsub.counts();
            field!("pubsub_channels:{}", channels);
            field!("pubsub_patterns:{}", patterns);
            field!("pubsubshard_channels:{}", shard);
            // Larder saves and rewrites without forking (a point-in-time
            // cut of the shards instead): no fork has happened, ever.
            field!("latest_fork_usec:0");
            field!("total_forks:0");
            field!("migrate_cached_sockets:{}", shared.migrate_sockets.len());
            let (_, keys, items, prefixes) = shared.tracking.stats();
            field!("tracking_total_keys:{keys}");
            field!("tracking_total_items:{items}");
            field!("tracking_total_prefixes:{prefixes}");
            field!("unexpected_error_replies:{}", st.unexpected_error_replies.load(Relaxed));
            field!("total_error_replies:{}", st.total_error_replies.load(Relaxed));
            field!("total_reads_processed:{}", st.total_reads_processed.get());
            field!("total_writes_processed:{}", st.total_writes_processed.get());
            field!("reply_buffer_shrinks:{}", st.reply_buffer_shrinks.load(Relaxed));
            field!("reply_buffer_expands:{}", st.reply_buffer_expands.load(Relaxed));
        }
        "replication" => {
            out.push_str("# Replication\r\n");
            let now = shared.clock.now_ms();
            match (shared.replication.is_replica(), shared.replication.upstream.link()) {
                (true, Some(link)) => {
                    let up = link.state.load(Relaxed) == crate::replica::CONNECTED;
                    field!("role:slave");
                    field!("master_host:{}", link.host);
                    field!("master_port:{}", link.port);
                    field!("master_link_status:{}", if up { "up" } else { "down" });
                    let last = link.last_io_ms.load(Relaxed);
                    let ago = if last == 0 { -1 } else { (now.saturating_sub(last) / 1000) as i64 };
                    field!("master_last_io_seconds_ago:{ago}");
                    field!("master_sync_in_progress:{}", (link.state.load(Relaxed) == crate::replica::SYNCING) as u8);
                    let offset = link.offset.load(Relaxed);
                    field!("slave_read_repl_offset:{}", link.read_offset.load(Relaxed).max(offset));
                    field!("slave_repl_offset:{offset}");
                    let (priority, announced) = {
                        let c = shared.config.read();
                        (c.extra_int("replica-priority"), c.extra_flag("replica-announced"))
                    };
                    field!("slave_priority:{priority}");
                    field!("slave_read_only:{}", shared.replication.read_only_replica() as u8);
                    field!("replica_announced:{}", announced as u8);
                }
                _ => field!("role:master"),
            }
            let replicas = shared.replication.replicas(now);
            field!("connected_slaves:{}", replicas.len());
            let (min_write, max_lag) = {
                let c = shared.config.read();
                (c.min_replicas_to_write, c.min_replicas_max_lag)
            };
            if min_write > 0 && max_lag > 0 {
                field!("min_slaves_good_slaves:{}", shared.replication.good_replicas(now, max_lag));
            }
            for (i, r) in replicas.iter().enumerate() {
                let state = if r.online { "online" } else { "wait_bgsave" };
                field!("slave{i}:ip={},port={},state={state},offset={},lag={}", r.ip, r.port, r.offset, r.lag);
            }
            field!("master_failover_state:{}", shared.failover.state_name());
            field!("master_replid:{}", shared.replication.replid());
            let (replid2, second) = shared.replication.replid2();
            field!("master_replid2:{replid2}");
            field!("master_repl_offset:{}", shared.replication.offset());
            field!("second_repl_offset:{second}");
            let backlog = shared.replication.backlog();
            let (size, first, held) = backlog.unwrap_or((shared.config.read().repl_backlog_size, 0, 0));
            field!("repl_backlog_active:{}", backlog.is_some() as u8);
            field!("repl_backlog_size:{size}");
            field!("repl_backlog_first_byte_offset:{first}");
            field!("repl_backlog_histlen:{held}");
        }
        "cpu" => {
            let (sys, user) = cpu_seconds();
            out.push_str("# CPU\r\n");
            field!("used_cpu_sys:{sys:.6}");
            field!("used_cpu_user:{user:.6}");
        }
        "modules" => out.push_str("# Modules\r\n"),
        "errorstats" => {
            out.push_str("# Errorstats\r\n");
            let mut errors: Vec<(String, u64)> = st.errors.lock().iter().map(|(k, v)| (k.clone(), *v)).collect();
            errors.sort();
            for (code, n) in errors {
                field!("errorstat_{code}:count={n}");
            }
        }
        "cluster" => {
            out.push_str("# Cluster\r\n");
            field!("cluster_enabled:0");
        }
        "keyspace" => {
            out.push_str("# Keyspace\r\n");
            for db in 0..shared.keyspace.databases() {
                let (keys, expires) = shared.keyspace.db_stats(db);
                if keys > 0 {
                    field!("db{db}:keys={keys},expires={expires},avg_ttl=0");
                }
            }
        }
        "latencystats" => {
            // Per command, the latency under which each configured share of
            // its calls fell (latency-tracking-info-percentiles). Larder's
            // histograms have a bucket per power of two µs (see
            // LATENCY HISTOGRAM), so a figure is its bucket's upper bound:
            // within a factor of two, where Redis's HDR histogram is
            // within 1%.
            out.push_str("# Latencystats\r\n");
            let percentiles: Vec<(String, f64)> = cfg
                .extra("latency-tracking-info-percentiles")
                .split_whitespace()
                .filter_map(|p| Some((p.to_string(), p.parse().ok()?)))
                .collect();
            for c in shared.commands.iter_all() {
                let buckets = c.stats.histogram();
                let calls: u64 = buckets.iter().sum();
                if calls == 0 {
                    continue;
                }
                let at = |p: f64| {
                    let want = ((p / 100.0 * calls as f64).ceil() as u64).max(1);
                    let mut seen = 0;
                    buckets.iter().position(|n| {
                        seen += n;
                        seen >= want
                    })
                };
                let parts: Vec<String> = percentiles
                    .iter()
                    .map(|(name, p)| format!("p{name}={:.3}", (1u64 << at(*p).unwrap_or(0)) as f64))
                    .collect();
                field!("latency_percentiles_usec_{}:{}", c.full_name, parts.join(","));
            }
        }
        "commandstats" => {
            out.push_str("# Commandstats\r\n");
            for c in shared.commands.iter_all() {
                let calls = c.stats.calls();
                let rejected = c.stats.rejected_calls();
                let failed = c.stats.failed_calls();
                if calls == 0 && rejected == 0 && failed == 0 {
                    continue;
                }
                let usec = c.stats.usec();
                let per = if calls > 0 { usec as f64 / calls as f64 } else { 0.0 };
                field!(
                    "cmdstat_{}:calls={calls},usec={usec},usec_per_call={per:.2},rejected_calls={rejected},failed_calls={failed}",
                    c.full_name
                );
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn human_bytes_like_redis() {
        assert_eq!(human_bytes(512), "512B");
        assert_eq!(human_bytes(1024 * 1024 * 3 / 2), "1.50M");
    }
}
