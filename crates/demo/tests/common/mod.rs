//! What the demo's tests share: the whole stack (a throwaway PostgreSQL,
//! Larder in-process, the service on a free port) and a small HTTP client.
#![allow(dead_code)]

use larder_testkit::{spawn_server, PgServer, TestServer};
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub struct Reply {
    pub status: u16,
    pub cache: Option<String>,
    pub head: String,
    pub body: String,
}

pub async fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> Reply {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = body.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: demo\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let cache =
        head.lines().find_map(|l| l.to_ascii_lowercase().strip_prefix("x-cache: ").map(|v| v.trim().to_uppercase()));
    Reply { status, cache, head: head.to_string(), body: body.to_string() }
}

/// The running stack; everything stops on drop.
pub struct Stack {
    pub addr: SocketAddr,
    pub db: tokio_postgres::Client,
    pub app: larder_demo::Shared,
    _larder: TestServer,
    _pg: PgServer,
}

/// Starts it all with `config` and small seed data, or None without
/// PostgreSQL (see `PgServer::start`).
pub async fn stack(config: larder_demo::Config) -> Option<Stack> {
    let pg = PgServer::start()?;
    let larder = spawn_server();
    let db = larder_demo::connect(&pg.url()).await.unwrap();
    larder_demo::seed(&db, 100, 50, 2000).await.unwrap();
    let app = larder_demo::start_with(&format!("redis://{}/", larder.addr), &pg.url(), config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(larder_demo::serve(app.clone(), listener));
    Some(Stack { addr, db, app, _larder: larder, _pg: pg })
}
