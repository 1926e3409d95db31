//! `larder-demo`: runs the reference service with embedded defaults.
//!
//! With no environment it starts Larder in-process and a throwaway
//! PostgreSQL from the local binaries, seeds data, and serves on
//! 127.0.0.1:8080. `REDIS_URL`, `DATABASE_URL` and `PORT` override.
//!
//! `larder-demo load [seconds] [workers]` starts the same stack and runs
//! the load generator against it (cache off, then on), printing a live
//! progress line and the side-by-side figures. `larder-demo stampede [n]`
//! fires n concurrent misses of one key and reports the database queries
//! they cost. The dashboard is at /dashboard.

use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Logs to stderr: stdout carries the load generator's table.
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let _larder;
    let redis_url = match std::env::var("REDIS_URL") {
        Ok(url) => url,
        Err(_) => {
            let s = larder_testkit::spawn_server();
            tracing::info!("started Larder in-process on {}", s.addr);
            let url = format!("redis://{}/", s.addr);
            _larder = s;
            url
        }
    };
    let _pg;
    let database_url = match std::env::var("DATABASE_URL") {
        Ok(url) => url,
        Err(_) => {
            let Some(pg) = larder_testkit::PgServer::start() else {
                anyhow::bail!(
                    "PostgreSQL is not installed: install it (apt-get install postgresql) or set DATABASE_URL"
                );
            };
            tracing::info!(
                "started a throwaway PostgreSQL on port {} (psql -h 127.0.0.1 -p {} -U postgres)",
                pg.port,
                pg.port
            );
            let url = pg.url();
            _pg = pg;
            url
        }
    };
    let db = larder_demo::connect(&database_url).await?;
    larder_demo::seed(&db, 10_000, 5_000, 200_000).await?;
    let app = larder_demo::start(&redis_url, &database_url).await?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("load") => {
            let addr = serve_in_background(app).await?;
            larder_demo::load::compare(&addr, arg(&args, 1).unwrap_or(10), arg(&args, 2).unwrap_or(16)).await?;
        }
        Some("stampede") => {
            let addr = serve_in_background(app).await?;
            larder_demo::load::stampede(&addr, arg(&args, 1).unwrap_or(100)).await?;
        }
        Some(other) => anyhow::bail!("unknown subcommand {other:?}: use load [seconds] [workers] or stampede [n]"),
        None => {
            let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(8080);
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
            let addr = listener.local_addr()?;
            tracing::info!("serving on http://{addr}  (try: curl -i {addr}/users/1, or open http://{addr}/dashboard)");
            tokio::select! {
                served = larder_demo::serve(app, listener) => served?,
                _ = tokio::signal::ctrl_c() => tracing::info!("shutting down"),
            }
        }
    }
    Ok(())
}

/// Serves on a free loopback port in the background; returns the address.
async fn serve_in_background(app: larder_demo::Shared) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?.to_string();
    tokio::spawn(larder_demo::serve(app, listener));
    Ok(addr)
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize) -> Option<T> {
    args.get(i).and_then(|s| s.parse().ok())
}
