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
//! they cost.

use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
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
    if args.first().is_some_and(|a| a == "load") {
        let seconds = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10);
        let workers = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(16);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        tokio::spawn(async move { axum::serve(listener, larder_demo::router(app)).await });
        larder_demo::load::compare(&addr, seconds, workers).await?;
        return Ok(());
    }
    if args.first().is_some_and(|a| a == "stampede") {
        let n = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(100);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        tokio::spawn(async move { axum::serve(listener, larder_demo::router(app)).await });
        larder_demo::load::stampede(&addr, n).await?;
        return Ok(());
    }
    let port: u16 = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(8080);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    tracing::info!("serving on http://{}  (try: curl -i localhost:{port}/users/1)", listener.local_addr()?);
    axum::serve(listener, larder_demo::router(app))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
