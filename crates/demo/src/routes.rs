//! The route table: every route of the service, declared once, with
//! what the OpenAPI description needs beside its handler. The router and
//! `/openapi.json` are both built from it, so they cannot disagree.

use super::*;
use axum::routing::{delete, get, post, put, MethodRouter};
use axum::Router;

/// Where a route parameter goes.
#[derive(Debug, Clone, Copy)]
pub enum In {
    Path,
    Query,
}

/// A route parameter, for the OpenAPI description.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub at: In,
    /// JSON schema type: "integer" or "string".
    pub ty: &'static str,
    pub required: bool,
}

const ID: Param = Param { name: "id", at: In::Path, ty: "integer", required: true };

/// One route: what the router serves and the OpenAPI description says.
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    pub params: &'static [Param],
    /// An example JSON request body.
    pub body: Option<&'static str>,
    /// Status codes and what they mean.
    pub responses: &'static [(u16, &'static str)],
    /// The media type of a 200/201 answer.
    pub produces: &'static str,
    pub handler: MethodRouter<Shared>,
}

const JSON: &str = "application/json";

/// Every route of the service, once.
pub fn routes() -> Vec<Route> {
    let r = |method, path, summary, params, body, responses, produces, handler| Route {
        method,
        path,
        summary,
        params,
        body,
        responses,
        produces,
        handler,
    };
    let cached_answers: &'static [(u16, &'static str)] =
        &[(200, "found; X-Cache: HIT, MISS or STALE"), (404, "no such row"), (500, "database and cache both failed")];
    vec![
        r(
            "get",
            "/users/{id}",
            "A user, cache-aside (X-Cache-Bypass: 1 skips the cache)",
            &[ID],
            None,
            cached_answers,
            JSON,
            get(get_user),
        ),
        r(
            "put",
            "/users/{id}",
            "Update a user, then invalidate its cache entry",
            &[ID],
            Some(r#"{"name":"Ada","email":"ada@example.com"}"#),
            &[(200, "the updated user"), (404, "no such user")],
            JSON,
            put(update_user),
        ),
        r(
            "patch",
            "/users/{id}",
            "Update some fields of a user, then invalidate",
            &[ID],
            Some(r#"{"name":"Ada"}"#),
            &[(200, "the updated user"), (404, "no such user")],
            JSON,
            axum::routing::patch(update_user),
        ),
        r(
            "delete",
            "/cache/users/{id}",
            "Drop a user's cache entry",
            &[ID],
            None,
            &[(204, "dropped")],
            JSON,
            delete(drop_user_cache),
        ),
        r(
            "get",
            "/products",
            "Top products of a category by rating (the slow query), cache-aside",
            &[Param { name: "category", at: In::Query, ty: "string", required: true }],
            None,
            cached_answers,
            JSON,
            get(list_products),
        ),
        r("get", "/products/{id}", "A product, cache-aside", &[ID], None, cached_answers, JSON, get(get_product)),
        r(
            "put",
            "/products/{id}/price",
            "Set a price, write-through (database, then cache)",
            &[ID],
            Some(r#"{"price_cents":1999}"#),
            &[(200, "the product as cached"), (404, "no such product")],
            JSON,
            put(set_price),
        ),
        r(
            "post",
            "/products/{id}/views",
            "Count a view, write-behind (queued, flushed in batches)",
            &[ID],
            None,
            &[(202, "queued durably on the cache server")],
            JSON,
            post(add_view),
        ),
        r(
            "get",
            "/products/{id}/views",
            "A product's flushed view count",
            &[ID],
            None,
            &[(200, "the count")],
            JSON,
            get(get_views),
        ),
        r(
            "post",
            "/sessions",
            "Create a session (a hash with a sliding 30-minute TTL)",
            &[],
            Some(r#"{"user":1}"#),
            &[(201, "the session id")],
            JSON,
            post(create_session),
        ),
        r(
            "get",
            "/sessions/{id}",
            "Read a session and extend its TTL",
            &[Param { name: "id", at: In::Path, ty: "string", required: true }],
            None,
            &[(200, "the session data"), (404, "no such session")],
            JSON,
            get(get_session),
        ),
        r(
            "get",
            "/limited",
            "Rate limited: 10 requests per second per X-Client",
            &[],
            None,
            &[(200, "ok"), (429, "rate limited; see Retry-After")],
            "text/plain",
            get(limited),
        ),
        r("get", "/stats", "Database queries and cache counters", &[], None, &[(200, "counters")], JSON, get(stats)),
        r(
            "get",
            "/stats/series",
            "The dashboard's samples: hit ratio, database QPS, latency, evictions",
            &[],
            None,
            &[(200, "samples, oldest first")],
            JSON,
            get(dashboard::series),
        ),
        r(
            "get",
            "/dashboard",
            "Live charts and scenario buttons",
            &[],
            None,
            &[(200, "the page")],
            "text/html",
            get(dashboard::page),
        ),
        r(
            "post",
            "/scenarios/{name}",
            "Run a scenario: load (cache off, then on) or stampede",
            &[
                Param { name: "name", at: In::Path, ty: "string", required: true },
                Param { name: "seconds", at: In::Query, ty: "integer", required: false },
                Param { name: "workers", at: In::Query, ty: "integer", required: false },
            ],
            None,
            &[(202, "started"), (404, "no such scenario"), (409, "a scenario is running")],
            JSON,
            post(dashboard::start_scenario),
        ),
        r(
            "get",
            "/scenarios/current",
            "The last scenario's state and result",
            &[],
            None,
            &[(200, "state")],
            JSON,
            get(dashboard::current_scenario),
        ),
        r(
            "get",
            "/metrics",
            "Prometheus metrics",
            &[],
            None,
            &[(200, "text exposition format")],
            "text/plain",
            get(telemetry::metrics),
        ),
        r("get", "/openapi.json", "This description", &[], None, &[(200, "OpenAPI 3.1")], JSON, get(openapi::serve)),
    ]
}

pub fn router(app: Shared) -> Router {
    let mut router = Router::new();
    for route in routes() {
        // Routes on one path merge their methods.
        router = router.route(route.path, route.handler);
    }
    router.route_layer(axum::middleware::from_fn_with_state(app.clone(), telemetry::observe)).with_state(app)
}

/// Serves the service on `listener` until the future is dropped or fails.
pub async fn serve(app: Shared, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    let _ = app.addr.set(listener.local_addr()?);
    axum::serve(listener, router(app)).await
}
