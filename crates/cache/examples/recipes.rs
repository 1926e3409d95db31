//! The recipes in one runnable tour against an in-process Larder or a
//! server you name: `cargo run -p larder-cache --example recipes [redis://host:port]`.

use larder_cache::recipes::{Leaderboard, Limit, ListQueue, Locks, RateLimiter, Sessions, StreamQueue};
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (_embedded, url) = larder_testkit::url_from_args_or_embedded();
    let client = redis::Client::open(url)?;

    let sessions = Sessions::new(client.clone(), "tour:session", Duration::from_secs(1800)).await?;
    let id = sessions.create(&[("user", "42")]).await?;
    println!("session {id}: {:?}", sessions.get(&id).await?);

    let limiter =
        RateLimiter::new(client.clone(), "tour:rl", Limit::Gcra { rate: 10, period: Duration::from_secs(1), burst: 3 })
            .await?;
    for i in 0..5 {
        let d = limiter.check("client-1").await?;
        println!("request {i}: allowed {} remaining {} retry after {:?}", d.allowed, d.remaining, d.retry_after);
    }

    let locks = Locks::new(client.clone(), "tour").await?;
    if let Some(lock) = locks.try_acquire("nightly-report", Duration::from_secs(30)).await? {
        println!("lock held with fencing token {}", lock.fence);
        locks.release(&lock).await?;
    }

    let jobs = ListQueue::new(client.clone(), "tour:jobs").await?;
    jobs.push("resize image 7").await?;
    if let Some(job) = jobs.take(Duration::from_millis(100)).await? {
        println!("working on {job}");
        jobs.ack(&job).await?;
    }

    let events = StreamQueue::new(client.clone(), "tour:events", "workers").await?;
    events.push("user 42 signed up").await?;
    for m in events.take("worker-1", 10).await? {
        println!("event {} {}", m.id, m.body);
        events.ack(&m.id).await?;
    }

    let board = Leaderboard::new(client, "tour:scores").await?;
    for (who, score) in [("ann", 120.0), ("bob", 90.0), ("cat", 150.0)] {
        board.set(who, score).await?;
    }
    println!("top 2: {:?}", board.top(2).await?);
    Ok(())
}
