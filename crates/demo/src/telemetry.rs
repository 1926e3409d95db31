//! What the service measures about itself: request latency (a middleware
//! on every route), Prometheus metrics at `/metrics` (the service's own
//! plus larder-cache's, through the `metrics` crate), and the sampler
//! that turns counters into the dashboard's time series once per
//! interval.
//!
//! The series is computed on the server, from deltas between samples, so
//! every viewer of the dashboard sees the same figures and a page opened
//! late still gets the history (the last [`KEEP`] samples).

use crate::{AppState, Shared};
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

/// Samples kept for the dashboard.
pub const KEEP: usize = 600;

/// One point of the dashboard's charts: what happened during one
/// sampling interval.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Unix time, ms, at the end of the interval.
    pub t: u64,
    /// API requests per second (the dashboard's own routes excluded).
    pub rps: f64,
    pub db_qps: f64,
    /// Cacheable responses served from the cache, over all cacheable
    /// responses (bypassed requests count as misses); None when there
    /// were none.
    pub hit_ratio: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Entries larder-cache's L1 evicted for capacity.
    pub l1_evictions: u64,
    /// Keys the cache server evicted (its INFO `evicted_keys`).
    pub server_evictions: u64,
}

pub struct Telemetry {
    prometheus: PrometheusHandle,
    /// API request latencies (µs) since the last sample.
    latencies: Mutex<Vec<u32>>,
    pub series: Mutex<VecDeque<Sample>>,
}

impl Telemetry {
    pub fn new(prometheus: PrometheusHandle) -> Telemetry {
        Telemetry { prometheus, latencies: Mutex::new(Vec::new()), series: Mutex::new(VecDeque::new()) }
    }
}

/// The process's Prometheus recorder, installed on first use. A process
/// has one global recorder, so every service started in it (tests start
/// several) shares it.
pub fn install_recorder() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
            }
            handle
        })
        .clone()
}

/// Routes that watch the service rather than use it: not in the
/// dashboard's latency and request figures.
fn is_watching(route: &str) -> bool {
    ["/dashboard", "/stats", "/metrics", "/scenarios", "/openapi.json"].iter().any(|p| route.starts_with(p))
}

/// Middleware: times every request, for the dashboard and Prometheus.
pub async fn observe(State(app): State<Shared>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", |m| m.as_str()).to_string();
    let method = req.method().as_str().to_string();
    let started = Instant::now();
    let response = next.run(req).await;
    let took = started.elapsed();
    if !is_watching(&route) {
        let us = took.as_micros().min(u32::MAX as u128) as u32;
        app.telemetry.latencies.lock().unwrap_or_else(|e| e.into_inner()).push(us);
    }
    let status = response.status().as_u16().to_string();
    metrics::histogram!("larder_demo_http_request_duration_seconds", "route" => route.clone())
        .record(took.as_secs_f64());
    metrics::counter!("larder_demo_http_requests_total", "method" => method, "route" => route, "status" => status)
        .increment(1);
    response
}

/// `GET /metrics`.
pub async fn metrics(State(app): State<Shared>) -> Response {
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], app.telemetry.prometheus.render())
        .into_response()
}

/// The counters a sample is the difference of.
#[derive(Default, Clone, Copy)]
struct Totals {
    db: u64,
    hits: u64,
    cacheable: u64,
    l1_evictions: u64,
    server_evictions: u64,
}

async fn totals(app: &AppState) -> Totals {
    let c = &app.counters;
    let hits = c.cache_hits.load(Ordering::Relaxed);
    let cacheable = hits + c.cache_misses.load(Ordering::Relaxed) + c.cache_stale.load(Ordering::Relaxed);
    let mut conn = app.redis.clone();
    let info: String = redis::cmd("INFO").arg("stats").query_async(&mut conn).await.unwrap_or_default();
    let server_evictions =
        info.lines().find_map(|l| l.strip_prefix("evicted_keys:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    Totals {
        db: c.db_queries.load(Ordering::Relaxed),
        hits,
        cacheable,
        l1_evictions: app.cache.stats().l1_evictions.load(Ordering::Relaxed),
        server_evictions,
    }
}

/// The `p` quantile of sorted `v`, in ms.
fn quantile_ms(v: &[u32], p: f64) -> Option<f64> {
    let i = ((v.len() as f64 * p) as usize).min(v.len().checked_sub(1)?);
    Some(v[i] as f64 / 1000.0)
}

/// Samples every `every` until the service is dropped.
pub async fn sample(app: Weak<AppState>, every: Duration) {
    let mut before = match app.upgrade() {
        Some(a) => totals(&a).await,
        None => return,
    };
    let mut last = Instant::now();
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(app) = app.upgrade() else { return };
        let now = totals(&app).await;
        let secs = last.elapsed().as_secs_f64().max(1e-3);
        last = Instant::now();
        let mut lat = std::mem::take(&mut *app.telemetry.latencies.lock().unwrap_or_else(|e| e.into_inner()));
        lat.sort_unstable();
        let cacheable = now.cacheable - before.cacheable;
        let point = Sample {
            t: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64),
            rps: lat.len() as f64 / secs,
            db_qps: (now.db - before.db) as f64 / secs,
            hit_ratio: (cacheable > 0).then(|| (now.hits - before.hits) as f64 / cacheable as f64),
            p50_ms: quantile_ms(&lat, 0.50),
            p99_ms: quantile_ms(&lat, 0.99),
            l1_evictions: now.l1_evictions - before.l1_evictions,
            server_evictions: now.server_evictions.saturating_sub(before.server_evictions),
        };
        before = now;
        let mut series = app.telemetry.series.lock().unwrap_or_else(|e| e.into_inner());
        if series.len() == KEEP {
            series.pop_front();
        }
        series.push_back(point);
    }
}

#[cfg(test)]
mod tests {
    use super::quantile_ms;

    #[test]
    fn quantiles_pick_from_the_sorted_latencies() {
        assert_eq!(quantile_ms(&[], 0.5), None);
        assert_eq!(quantile_ms(&[1000], 0.99), Some(1.0));
        let v: Vec<u32> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(quantile_ms(&v, 0.50), Some(51.0));
        assert_eq!(quantile_ms(&v, 0.99), Some(100.0));
    }
}
