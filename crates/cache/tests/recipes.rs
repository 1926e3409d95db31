//! The recipes against Larder (in-process) and against a real
//! redis-server, the same checks on each: sliding sessions, the four rate
//! limiters (including exactly `limit` passes out of many concurrent
//! requests), fenced locks, both reliable queues through a simulated
//! consumer crash, and leaderboards.

use larder_cache::recipes::{Leaderboard, Limit, ListQueue, Locks, RateLimiter, Sessions, StreamQueue};
use larder_testkit::{spawn_server, RedisServer};
use std::time::Duration;

async fn sessions(client: redis::Client) {
    let s = Sessions::new(client.clone(), "sess", Duration::from_millis(1000)).await.unwrap();
    let id = s.create(&[("user", "42"), ("cart", "3")]).await.unwrap();
    assert_eq!(id.len(), 32);
    let got = s.get(&id).await.unwrap().unwrap();
    assert_eq!((got["user"].as_str(), got["cart"].as_str()), ("42", "3"));
    // Reads slide the expiry: alive 1.5 s after creation with a 1 s TTL.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(s.get(&id).await.unwrap().is_some(), "a read slides the TTL");
    }
    assert!(s.set(&id, "cart", "4").await.unwrap());
    assert_eq!(s.get(&id).await.unwrap().unwrap()["cart"], "4");
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(s.get(&id).await.unwrap(), None, "idle past the TTL: gone");
    assert!(!s.set(&id, "cart", "5").await.unwrap(), "no writes into an expired session");
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let ghosts: i64 = redis::cmd("EXISTS").arg(format!("sess:{{{id}}}")).query_async(&mut con).await.unwrap();
    assert_eq!(ghosts, 0);
    let other = s.create(&[("a", "b")]).await.unwrap();
    assert!(s.destroy(&other).await.unwrap());
    assert_eq!(s.get(&other).await.unwrap(), None);
}

async fn rate_limits(client: redis::Client) {
    let second = Duration::from_secs(1);
    let rules = [
        ("fixed", Limit::FixedWindow { limit: 5, window: second }),
        ("sliding", Limit::SlidingWindow { limit: 5, window: second }),
        // Slow refills, so the concurrent burst below cannot earn a token.
        ("bucket", Limit::TokenBucket { capacity: 5, per_second: 2.0 }),
        ("gcra", Limit::Gcra { rate: 2, period: second, burst: 5 }),
    ];
    for (name, rule) in rules {
        let rl = RateLimiter::new(client.clone(), &format!("rl:{name}"), rule).await.unwrap();
        // 20 concurrent requests: exactly the burst of 5 passes.
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let rl = rl.clone();
            tasks.push(tokio::spawn(async move { rl.check("alice").await.unwrap() }));
        }
        let mut passed = 0;
        for t in tasks {
            passed += t.await.unwrap().allowed as u32;
        }
        assert_eq!(passed, 5, "{name}: exactly the limit passes");
        let denied = rl.check("alice").await.unwrap();
        assert!(!denied.allowed && denied.remaining == 0, "{name}: {denied:?}");
        assert!(denied.retry_after > Duration::ZERO && denied.retry_after <= second, "{name}: {denied:?}");
        // Another client has its own allowance.
        let bob = rl.check("bob").await.unwrap();
        assert!(bob.allowed && bob.remaining == 4, "{name}: {bob:?}");
        // Waiting out Retry-After lets the next request through.
        tokio::time::sleep(denied.retry_after + Duration::from_millis(30)).await;
        assert!(rl.check("alice").await.unwrap().allowed, "{name}: allowed after Retry-After");
    }
}

async fn locks(client: redis::Client) {
    let locks = Locks::new(client, "app").await.unwrap();
    let ttl = Duration::from_millis(300);
    let first = locks.try_acquire("report", ttl).await.unwrap().expect("free lock");
    assert!(locks.try_acquire("report", ttl).await.unwrap().is_none(), "held");
    assert!(locks.extend(&first, ttl).await.unwrap());
    assert!(locks.release(&first).await.unwrap());
    let second = locks.try_acquire("report", ttl).await.unwrap().expect("released");
    assert!(second.fence > first.fence, "fencing tokens only grow");
    assert!(!locks.release(&first).await.unwrap(), "a stale holder cannot release");
    // The holder stalls past its TTL; someone else takes the lock, and
    // the stale holder can neither extend nor release it.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let third = locks.try_acquire("report", ttl).await.unwrap().expect("expired");
    assert!(third.fence > second.fence);
    assert!(!locks.extend(&second, ttl).await.unwrap());
    assert!(!locks.release(&second).await.unwrap());
    assert!(locks.release(&third).await.unwrap());
}

async fn queues(client: redis::Client) {
    let q = ListQueue::new(client.clone(), "jobs").await.unwrap();
    for item in ["a", "b", "c"] {
        q.push(item).await.unwrap();
    }
    assert_eq!(q.take(Duration::ZERO).await.unwrap().as_deref(), Some("a"), "first in, first out");
    assert_eq!(q.take(Duration::ZERO).await.unwrap().as_deref(), Some("b"));
    assert_eq!(q.lens().await.unwrap(), (1, 2));
    assert!(q.ack("a").await.unwrap());
    // The consumer working on "b" crashes: recovery puts it back first.
    assert_eq!(q.recover().await.unwrap(), 1);
    assert_eq!(q.take(Duration::ZERO).await.unwrap().as_deref(), Some("b"));
    assert_eq!(q.take(Duration::ZERO).await.unwrap().as_deref(), Some("c"));
    assert_eq!(q.take(Duration::from_millis(100)).await.unwrap(), None, "empty after waiting");

    let s = StreamQueue::new(client, "events", "workers").await.unwrap();
    for body in ["e1", "e2", "e3"] {
        s.push(body).await.unwrap();
    }
    let got = s.take("w1", 2).await.unwrap();
    assert_eq!(got.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(), ["e1", "e2"]);
    assert!(s.ack(&got[0].id).await.unwrap());
    assert_eq!(s.pending().await.unwrap(), 1);
    // w1 dies holding e2: w2 reclaims it once it has been idle long enough.
    assert!(s.reclaim("w2", Duration::from_secs(60), 10).await.unwrap().is_empty(), "not idle yet");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let reclaimed = s.reclaim("w2", Duration::from_millis(20), 10).await.unwrap();
    assert_eq!(reclaimed, vec![got[1].clone()]);
    assert!(s.ack(&reclaimed[0].id).await.unwrap());
    assert_eq!(s.take("w2", 10).await.unwrap().iter().map(|m| m.body.as_str()).collect::<Vec<_>>(), ["e3"]);
    assert_eq!(s.pending().await.unwrap(), 1);
}

async fn leaderboard(client: redis::Client) {
    let lb = Leaderboard::new(client, "scores").await.unwrap();
    for (m, s) in [("ann", 10.0), ("bob", 30.0), ("cat", 20.0), ("dan", 5.0)] {
        lb.set(m, s).await.unwrap();
    }
    assert_eq!(lb.add("ann", 25.0).await.unwrap(), 35.0);
    assert_eq!(lb.top(2).await.unwrap(), vec![("ann".to_string(), 35.0), ("bob".to_string(), 30.0)]);
    assert_eq!(lb.rank("cat").await.unwrap(), Some((2, 20.0)));
    assert_eq!(lb.rank("nobody").await.unwrap(), None);
    let names: Vec<String> = lb.around("bob", 1).await.unwrap().into_iter().map(|(m, _)| m).collect();
    assert_eq!(names, ["ann", "bob", "cat"]);
}

async fn all(client: redis::Client) {
    sessions(client.clone()).await;
    rate_limits(client.clone()).await;
    locks(client.clone()).await;
    queues(client.clone()).await;
    leaderboard(client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recipes_work_on_larder() {
    let s = spawn_server();
    all(redis::Client::open(format!("redis://{}/", s.addr)).unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recipes_work_on_redis() {
    let Some(r) = RedisServer::start() else { return };
    all(redis::Client::open(format!("redis://{}/", r.addr)).unwrap()).await;
}
