//! The OpenAPI 3.1 description at `/openapi.json`, generated from the same
//! route table the router is built from ([`crate::routes`]), so a route
//! cannot exist without being described, or be described without existing.
//! Written out rather than derived with a macro crate: the table already
//! holds everything the description needs.

use crate::{In, Route};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

/// The description of `routes`.
pub fn document(routes: &[Route]) -> Value {
    let mut paths = Map::new();
    for r in routes {
        let params: Vec<Value> = r
            .params
            .iter()
            .map(|p| {
                json!({
                    "name": p.name,
                    "in": match p.at { In::Path => "path", In::Query => "query" },
                    "required": p.required,
                    "schema": { "type": p.ty },
                })
            })
            .collect();
        let responses: Map<String, Value> = r
            .responses
            .iter()
            .map(|(code, what)| {
                let mut resp = json!({ "description": what });
                if matches!(code, 200 | 201) {
                    resp["content"] = json!({ r.produces: {} });
                }
                (code.to_string(), resp)
            })
            .collect();
        let mut op = json!({
            "summary": r.summary,
            "operationId": operation_id(r.method, r.path),
            "parameters": params,
            "responses": responses,
        });
        if let Some(example) = r.body {
            let example: Value = serde_json::from_str(example).expect("route body examples are JSON");
            op["requestBody"] = json!({
                "required": true,
                "content": { "application/json": { "schema": { "type": "object" }, "example": example } },
            });
        }
        let entry = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        entry[r.method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "larder-demo",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The reference service of the caching guides: PostgreSQL with larder-cache in front.",
        },
        "paths": paths,
    })
}

/// `get /users/{id}` → `get_users_id`.
fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_string();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        id.push('_');
        id.extend(part.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').map(|c| c.to_ascii_lowercase()));
    }
    id
}

/// `GET /openapi.json`.
pub async fn serve() -> Response {
    Json(document(&crate::routes())).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_described_once_with_its_parameters() {
        let routes = crate::routes();
        let doc = document(&routes);
        let mut ids = std::collections::HashSet::new();
        for r in &routes {
            let op = &doc["paths"][r.path][r.method];
            assert!(op.is_object(), "{} {} is not described", r.method, r.path);
            assert!(ids.insert(op["operationId"].as_str().unwrap().to_string()), "duplicate id for {}", r.path);
            // Every {param} in the path is declared as a path parameter.
            for seg in r.path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')) {
                let declared =
                    op["parameters"].as_array().unwrap().iter().any(|p| p["name"] == seg && p["in"] == "path");
                assert!(declared, "{} {}: path parameter {seg} undeclared", r.method, r.path);
            }
        }
        assert_eq!(operation_id("get", "/users/{id}"), "get_users_id");
        assert_eq!(
            doc["paths"]["/users/{id}"]["put"]["requestBody"]["content"]["application/json"]["example"]["name"],
            "Ada"
        );
    }
}
