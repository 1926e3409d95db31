//! Single flight: concurrent misses of one key in this process share one
//! fetch. Built on tokio's `OnceCell`, so if the fetching task panics or
//! is cancelled, a waiting task runs its own fetch instead of hanging.

use crate::Result;
use hashbrown::HashMap;
use parking_lot::Mutex;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::OnceCell;

/// What a fetch produced, with the generation it started from.
#[derive(Clone)]
pub struct Fetched {
    pub value: crate::Stored,
    /// The key's generation read before the fetch looked anywhere.
    pub generation: String,
    /// False when the loaded value was not stored (invalidated meanwhile):
    /// only the caller that loaded it may use it.
    pub fresh: bool,
    /// Where the value came from (L2, loaded, or stale from the fail-safe).
    pub source: crate::Source,
}

#[derive(Default)]
pub struct Flights {
    map: Mutex<HashMap<String, Arc<OnceCell<Fetched>>>>,
}

/// How a caller took part in a flight.
pub struct Joined {
    pub fetched: Fetched,
    /// This caller's own fetch produced the result.
    pub led: bool,
}

impl Flights {
    /// Whether a fetch of `key` is already in flight.
    pub fn in_flight(&self, key: &str) -> bool {
        self.map.lock().contains_key(key)
    }

    pub async fn run<F, Fut>(&self, key: &str, fetch: F) -> Result<Joined>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Fetched>>,
    {
        let cell = self.map.lock().entry(key.to_string()).or_default().clone();
        let mut led = false;
        let out = cell
            .get_or_try_init(|| {
                led = true;
                fetch()
            })
            .await
            .cloned();
        let mut map = self.map.lock();
        if map.get(key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
            map.remove(key);
        }
        Ok(Joined { fetched: out?, led })
    }
}
