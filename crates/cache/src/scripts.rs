//! The Lua scripts that make each cache step atomic on the server. They
//! run through EVALSHA (loaded on first use), so any Redis-protocol server
//! with scripting works.

use redis::Script;
use std::sync::OnceLock;

/// Stores a loaded value only if the key's generation is still the one
/// read before the load, and the caller's lease (if any) is not someone
/// else's. KEYS: value, generation, lease. ARGV: generation, payload,
/// ttl ms, lease token. Returns 1 stored, 0 invalidated meanwhile, -1
/// another loader holds the lease.
pub fn store() -> &'static Script {
    static S: OnceLock<Script> = OnceLock::new();
    S.get_or_init(|| {
        Script::new(
            r#"
local g = redis.call('GET', KEYS[2]) or '0'
local lease = redis.call('GET', KEYS[3])
if lease == ARGV[4] then redis.call('DEL', KEYS[3]) end
if g ~= ARGV[1] then return 0 end
if lease and lease ~= ARGV[4] then return -1 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"#,
        )
    })
}

/// Deletes values, bumps their generations and publishes one numbered
/// invalidation per key. KEYS: sequence, then (value, generation) pairs.
/// ARGV: channel, generation ttl ms, then the logical keys.
pub fn invalidate() -> &'static Script {
    static S: OnceLock<Script> = OnceLock::new();
    S.get_or_init(|| {
        Script::new(
            r#"
for i = 2, #KEYS, 2 do
  redis.call('DEL', KEYS[i])
  redis.call('INCR', KEYS[i + 1])
  redis.call('PEXPIRE', KEYS[i + 1], ARGV[2])
end
for j = 3, #ARGV do
  local seq = redis.call('INCR', KEYS[1])
  redis.call('PUBLISH', ARGV[1], seq .. ':' .. ARGV[j])
end
return 1
"#,
        )
    })
}

/// Bumps the namespace version and announces it (`<seq>:*`).
/// KEYS: version, sequence. ARGV: channel.
pub fn bump_version() -> &'static Script {
    static S: OnceLock<Script> = OnceLock::new();
    S.get_or_init(|| {
        Script::new(
            r#"
redis.call('INCR', KEYS[1])
local seq = redis.call('INCR', KEYS[2])
redis.call('PUBLISH', ARGV[1], seq .. ':*')
return 1
"#,
        )
    })
}

/// Deletes a lease if it still holds the caller's token.
/// KEYS: lease. ARGV: token.
pub fn release() -> &'static Script {
    static S: OnceLock<Script> = OnceLock::new();
    S.get_or_init(|| {
        Script::new(
            r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#,
        )
    })
}

/// The cluster form of `invalidate`, in two steps because a cluster runs
/// a script on one slot: this one per key (value and generation share the
/// key's slot). KEYS: value, generation. ARGV: generation ttl ms.
pub fn drop_key() -> &'static Script {
    static S: OnceLock<Script> = OnceLock::new();
    S.get_or_init(|| {
        Script::new(
            r#"
redis.call('DEL', KEYS[1])
redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return 1
"#,
        )
    })
}

/// Then one numbered invalidation per key, from the namespace's slot.
/// KEYS: sequence. ARGV: channel, then the logical keys.
pub fn announce() -> &'static Script {
    static S: OnceLock<Script> = OnceLock::new();
    S.get_or_init(|| {
        Script::new(
            r#"
for j = 2, #ARGV do
  local seq = redis.call('INCR', KEYS[1])
  redis.call('PUBLISH', ARGV[1], seq .. ':' .. ARGV[j])
end
return 1
"#,
        )
    })
}
