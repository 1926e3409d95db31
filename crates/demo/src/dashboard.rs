//! The dashboard: one self-contained page (`/dashboard`, no CDN, so it
//! works offline and in CI) that polls `/stats/series` and draws the
//! charts on canvases, and the scenario runner behind its buttons.
//!
//! A scenario runs inside the service, against the service's own address,
//! with the same load generator as `larder-demo load` and `stampede`, so
//! what the buttons show is what the command line measures. One runs at a
//! time; `/scenarios/current` reports its state and result.

use crate::{load, Shared};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

const PAGE: &str = include_str!("dashboard.html");

/// `GET /dashboard`.
pub async fn page() -> Html<&'static str> {
    Html(PAGE)
}

/// `GET /stats/series`: the samples, oldest first.
pub async fn series(State(app): State<Shared>) -> Response {
    let series = app.telemetry.series.lock().unwrap_or_else(|e| e.into_inner());
    Json(serde_json::json!({ "samples": &*series })).into_response()
}

/// The last scenario run.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Scenario {
    pub name: String,
    /// "idle", "running", "done" or "failed".
    pub state: &'static str,
    /// A line for people.
    pub summary: String,
    /// The figures, for programs.
    pub result: serde_json::Value,
}

#[derive(Deserialize)]
pub struct Params {
    /// load: seconds per phase (default 5, at most 60).
    seconds: Option<u64>,
    /// load: concurrent connections (default 8, at most 64).
    workers: Option<usize>,
    /// stampede: concurrent misses (default 100, at most 1000).
    n: Option<usize>,
}

/// `GET /scenarios/current`.
pub async fn current_scenario(State(app): State<Shared>) -> Response {
    let s = app.scenario.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Json(if s.state.is_empty() { Scenario { state: "idle", ..s } } else { s }).into_response()
}

/// `POST /scenarios/{load|stampede}`: starts it in the background.
pub async fn start_scenario(State(app): State<Shared>, Path(name): Path<String>, Query(p): Query<Params>) -> Response {
    if name != "load" && name != "stampede" {
        return (StatusCode::NOT_FOUND, "scenarios: load, stampede").into_response();
    }
    let Some(addr) = app.addr.get().map(|a| a.to_string()) else {
        return (StatusCode::SERVICE_UNAVAILABLE, "the service is not listening yet").into_response();
    };
    {
        let mut s = app.scenario.lock().unwrap_or_else(|e| e.into_inner());
        if s.state == "running" {
            return (StatusCode::CONFLICT, format!("{} is running", s.name)).into_response();
        }
        *s = Scenario {
            name: name.clone(),
            state: "running",
            summary: format!("{name} running…"),
            ..Scenario::default()
        };
    }
    let (app2, started) = (app.clone(), name.clone());
    tokio::spawn(async move {
        let outcome = match name.as_str() {
            "load" => {
                let seconds = p.seconds.unwrap_or(5).clamp(1, 60);
                let workers = p.workers.unwrap_or(8).clamp(1, 64);
                load::compare(&addr, seconds, workers).await.map(|c| {
                    let summary = format!(
                        "database load with the cache / without: {:.3} (hit ratio {:.3}, {:.0} → {:.0} db queries/s)",
                        c.ratio,
                        c.on.hit_ratio(),
                        c.off.db_qps(),
                        c.on.db_qps()
                    );
                    (summary, serde_json::to_value(&c).unwrap_or_default())
                })
            }
            _ => {
                let n = p.n.unwrap_or(100).clamp(1, 1000);
                load::stampede(&addr, n).await.map(|cost| {
                    let summary = format!(
                        "{n} concurrent misses of one key cost {cost} database quer{}",
                        if cost == 1 { "y" } else { "ies" }
                    );
                    (summary, serde_json::json!({ "requests": n, "db_queries": cost }))
                })
            }
        };
        let mut s = app2.scenario.lock().unwrap_or_else(|e| e.into_inner());
        match outcome {
            Ok((summary, result)) => {
                s.state = "done";
                s.summary = summary;
                s.result = result;
            }
            Err(e) => {
                s.state = "failed";
                s.summary = format!("{} failed: {e}", s.name);
            }
        }
    });
    (StatusCode::ACCEPTED, Json(serde_json::json!({ "started": started }))).into_response()
}
