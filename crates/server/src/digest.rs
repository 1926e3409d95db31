//! DEBUG DIGEST and DEBUG DIGEST-VALUE: a fingerprint of the dataset or of
//! single values, computed exactly as Redis's debug.c does.
//!
//! Why Redis's own algorithm rather than any hash: the Redis test suite
//! compares digests taken before and after a reload, a rewrite or a
//! replica sync, and a byte-identical algorithm lets a digest taken on
//! Larder be compared with one taken on redis-server for the same data.
//! Unordered collections (sets, hashes, zsets, the keys of a database)
//! XOR their elements' digests so iteration order does not matter;
//! ordered ones (lists, streams) chain them through SHA1.

use larder_store::types::stream::StreamId;
use larder_store::{Entry, Value};

type Digest = [u8; 20];

fn sha1(data: &[u8]) -> Digest {
    sha1_smol::Sha1::from(data).digest().bytes()
}

/// Redis's `xorDigest`: digest ^= SHA1(data).
fn xor(digest: &mut Digest, data: &[u8]) {
    for (d, h) in digest.iter_mut().zip(sha1(data)) {
        *d ^= h;
    }
}

/// Redis's `mixDigest`: digest = SHA1(digest ^ SHA1(data)).
fn mix(digest: &mut Digest, data: &[u8]) {
    xor(digest, data);
    *digest = sha1(digest);
}

/// Redis's `xorObjectDigest`: the value's type, its contents and whether
/// it has a TTL, mixed into `digest`.
fn mix_value(digest: &mut Digest, entry: &Entry) {
    let value = entry.value();
    let type_id: u32 = match &*value {
        Value::Str(_) => 0,
        Value::List(_) => 1,
        Value::Set(_) => 2,
        Value::ZSet(_) => 3,
        Value::Hash(_) => 4,
        Value::Stream(_) => 6,
    };
    mix(digest, &type_id.to_be_bytes());
    match &*value {
        Value::Str(s) => mix(digest, &s.to_bytes()),
        Value::List(l) => l.iter().for_each(|item| mix(digest, item)),
        Value::Set(s) => s.members().iter().for_each(|m| xor(digest, m)),
        Value::ZSet(z) => {
            for e in z.iter() {
                let mut one = [0u8; 20];
                mix(&mut one, e.member);
                mix(&mut one, crate::scripting::format_g(e.score, 17).as_bytes());
                xor(digest, &one);
            }
        }
        Value::Hash(h) => {
            for (f, v) in h.iter() {
                let mut one = [0u8; 20];
                mix(&mut one, f);
                mix(&mut one, v);
                xor(digest, &one);
            }
        }
        Value::Stream(s) => {
            for (id, e) in s.range(StreamId::MIN, StreamId::MAX, false) {
                mix(digest, format!("{}.{}", id.ms, id.seq).as_bytes());
                e.each_field(|f| mix(digest, f));
            }
        }
    }
    if entry.expire_at().is_some() {
        xor(digest, b"!!expire!!");
    }
}

/// Bytes as lowercase hex (digests, ACL password hashes, ACL GENPASS).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// DEBUG DIGEST-VALUE's answer for one key (all zeros when it is absent).
pub fn value_digest(entry: Option<&Entry>) -> String {
    let mut d = [0u8; 20];
    if let Some(e) = entry {
        mix_value(&mut d, e);
    }
    hex(&d)
}

/// DEBUG DIGEST's answer: every database's keys and values.
pub fn dataset_digest(shared: &crate::Shared) -> String {
    let mut total = [0u8; 20];
    let ks = &shared.keyspace;
    for db in 0..ks.databases() {
        if ks.dbsize(db) == 0 {
            continue;
        }
        mix(&mut total, &(db as u32).to_be_bytes());
        let mut cursor = 0;
        loop {
            cursor = ks.scan_stored(db, cursor, 1024, |k, e| {
                let mut one = [0u8; 20];
                mix(&mut one, k);
                mix_value(&mut one, e);
                xor(&mut total, &one);
            });
            if cursor == 0 {
                break;
            }
        }
    }
    hex(&total)
}
