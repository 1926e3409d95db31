//! RDB files: the snapshot format Redis writes and loads.
//!
//! Files are written as RDB version 10, which Redis 7.0 and 7.2 both load:
//! sets in listpack form go out as plain sets and streams as 7.0's stream
//! type. The exception is a hash with field TTLs, in Redis 7.4's type,
//! which only 7.4 and later load. Keys carry their seconds idle or LFU
//! counter when the saver's policy keeps one ([`Recency`]), as Redis's
//! do. Loading accepts versions 1 to 11, every
//! opcode Redis 7.2 writes for a standalone server (AUX, RESIZEDB,
//! SELECTDB, both expiry forms, LRU idle and LFU frequency, FUNCTION2),
//! and checks the CRC64 trailer; anything else (modules) is an error,
//! never a silent partial load.
//!
//! The writer streams: entries are encoded into a buffer that is flushed
//! to the underlying writer as it grows, with the checksum computed as the
//! bytes go out, so a snapshot never needs a second copy of the dataset.

use crate::rdb::{self, put_bytes, put_len, RdbError, Reader};
use bytes::{BufMut, Bytes, BytesMut};
use larder_store::{Limits, Value};
use std::io::Write;

/// The version stamped on files we write.
pub const FILE_VERSION: u16 = 10;
/// The newest version we load (Redis 7.2's).
pub const MAX_LOAD_VERSION: u16 = 11;

/// Slice-by-16 tables: the checksum runs over every byte of a snapshot,
/// and the one-table form was a visible part of a BGSAVE's time.
static CRC: crc::Crc<u64, crc::Table<16>> = crc::Crc::<u64, crc::Table<16>>::new(&crc::CRC_64_REDIS);

const OP_FUNCTION2: u8 = rdb::OPCODE_FUNCTION2;
const OP_MODULE_AUX: u8 = 247;
const OP_IDLE: u8 = 248;
const OP_FREQ: u8 = 249;
const OP_AUX: u8 = 250;
const OP_RESIZEDB: u8 = 251;
const OP_EXPIRETIME_MS: u8 = 252;
const OP_EXPIRETIME: u8 = 253;
const OP_SELECTDB: u8 = 254;
const OP_EOF: u8 = 255;

/// Buffered bytes before a flush to the writer.
const FLUSH_AT: usize = 64 * 1024;

/// Writes an RDB file to `out`.
pub struct Writer<W: Write> {
    out: W,
    buf: BytesMut,
    /// None under `rdbchecksum no`: the trailer is zero, which loaders
    /// (Redis's and ours) take as "not checked".
    digest: Option<crc::Digest<'static, u64, crc::Table<16>>>,
    /// The database the last SELECTDB chose.
    db: Option<usize>,
}

/// What a file keeps of a key's accesses: Redis saves the seconds it has
/// been idle under an LRU policy, its LFU counter under an LFU one, and
/// nothing otherwise (rdbSaveKeyValuePair), so a restarted server or a
/// replica's full sync evicts as the saver would have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recency {
    None,
    Idle(u64),
    Freq(u8),
}

/// Encodes one key, with its absolute expiry in ms if it has one and its
/// recency, as a file holds it. BGSAVE encodes shards into buffers with
/// this and adds them to the file with [`Writer::chunk`].
pub fn encode_entry(
    buf: &mut BytesMut,
    key: &[u8],
    value: &Value,
    expire_at_ms: Option<u64>,
    recency: Recency,
) -> Result<(), FileError> {
    if let Some(at) = expire_at_ms {
        buf.put_u8(OP_EXPIRETIME_MS);
        buf.put_u64_le(at);
    }
    match recency {
        Recency::None => {}
        Recency::Idle(secs) => {
            buf.put_u8(OP_IDLE);
            put_len(buf, secs);
        }
        Recency::Freq(counter) => {
            buf.put_u8(OP_FREQ);
            buf.put_u8(counter);
        }
    }
    match value {
        // Strings, most of most datasets, without an intermediate buffer.
        Value::Str(s) => {
            buf.put_u8(rdb::RDB_TYPE_STRING);
            put_bytes(buf, key);
            rdb::put_string(buf, s);
        }
        // RDB 11's stream type adds consumers' active time: version 10 has the 7.0 type.
        Value::Stream(s) => {
            buf.put_u8(crate::stream::RDB_TYPE_STREAM_LISTPACKS_2);
            put_bytes(buf, key);
            crate::stream::put_stream(buf, s, crate::stream::RDB_TYPE_STREAM_LISTPACKS_2);
        }
        _ => {
            // The type byte goes before the key: encode the value aside.
            let mut body = BytesMut::new();
            rdb::put_value(&mut body, value)?;
            buf.put_u8(body[0]);
            put_bytes(buf, key);
            buf.put_slice(&body[1..]);
        }
    }
    Ok(())
}

impl<W: Write> Writer<W> {
    /// Starts a file: the header and the `aux` fields.
    pub fn new(out: W, aux: &[(&str, String)]) -> std::io::Result<Writer<W>> {
        let mut w = Writer { out, buf: BytesMut::with_capacity(FLUSH_AT * 2), digest: Some(CRC.digest()), db: None };
        w.buf.put_slice(format!("REDIS{FILE_VERSION:04}").as_bytes());
        for (k, v) in aux {
            w.buf.put_u8(OP_AUX);
            put_bytes(&mut w.buf, k.as_bytes());
            put_bytes(&mut w.buf, v.as_bytes());
        }
        Ok(w)
    }

    /// Leaves the checksum out (`rdbchecksum no`): a zero trailer.
    pub fn without_checksum(mut self) -> Writer<W> {
        self.digest = None;
        self
    }

    fn maybe_flush(&mut self) -> std::io::Result<()> {
        if self.buf.len() >= FLUSH_AT {
            if let Some(d) = &mut self.digest {
                d.update(&self.buf);
            }
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Starts database `db`, with its key and TTL-key counts as hints.
    pub fn select_db(&mut self, db: usize, keys: u64, expires: u64) {
        self.buf.put_u8(OP_SELECTDB);
        put_len(&mut self.buf, db as u64);
        self.db = Some(db);
        self.buf.put_u8(OP_RESIZEDB);
        put_len(&mut self.buf, keys);
        put_len(&mut self.buf, expires);
    }

    /// One key, with its absolute expiry in ms if it has one.
    pub fn entry(
        &mut self,
        key: &[u8],
        value: &Value,
        expire_at_ms: Option<u64>,
        recency: Recency,
    ) -> Result<(), FileError> {
        encode_entry(&mut self.buf, key, value, expire_at_ms, recency)?;
        self.maybe_flush()?;
        Ok(())
    }

    /// Keys of database `db` encoded by [`encode_entry`]. A database may
    /// come in several chunks, interleaved with others: each switch writes
    /// a SELECTDB, which loaders (Redis's included) simply follow.
    pub fn chunk(&mut self, db: usize, encoded: &[u8]) -> std::io::Result<()> {
        self.switch_db(db);
        self.buf.put_slice(encoded);
        self.maybe_flush()
    }

    /// Makes `db` the database the next keys belong to (a SELECTDB
    /// without size hints, if it is not already).
    pub fn switch_db(&mut self, db: usize) {
        if self.db != Some(db) {
            self.buf.put_u8(OP_SELECTDB);
            put_len(&mut self.buf, db as u64);
            self.db = Some(db);
        }
    }

    /// A function library, as its source code.
    pub fn function(&mut self, code: &[u8]) -> std::io::Result<()> {
        self.buf.put_u8(OP_FUNCTION2);
        put_bytes(&mut self.buf, code);
        self.maybe_flush()
    }

    /// Ends the file with EOF and the checksum; returns the writer.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.buf.put_u8(OP_EOF);
        let crc = match self.digest.take() {
            Some(mut d) => {
                d.update(&self.buf);
                d.finalize()
            }
            None => 0,
        };
        self.buf.put_u64_le(crc);
        self.out.write_all(&self.buf)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Rdb(#[from] RdbError),
    #[error("not an RDB file (bad header)")]
    BadHeader,
    #[error("can't handle RDB format version {0}")]
    Version(u16),
    /// Redis's words, which log watchers and its test suite look for
    /// ("expected" is what the content sums to).
    #[error("Wrong RDB checksum expected: ({computed:x}) but got ({stored:x}): RDB CRC error, the file is corrupt")]
    Checksum { stored: u64, computed: u64 },
    #[error("the file ends before its EOF marker: truncated")]
    Truncated,
    #[error("unknown RDB opcode or type {0} (module data is not supported)")]
    Unknown(u8),
}

/// What a file holds, item by item.
pub enum Item {
    Key {
        db: usize,
        key: Bytes,
        value: Value,
        expire_at_ms: Option<u64>,
        idle_secs: Option<u64>,
        freq: Option<u8>,
        /// Bytes of the image read once this key was: how far a load has
        /// got (INFO's `loading_loaded_bytes`).
        read: usize,
    },
    Function(Bytes),
    /// A key whose collection holds nothing (older Redis versions could
    /// save one): not loaded, as in Redis.
    Empty(Bytes),
}

/// The aux field `name` of an RDB image (they come first, after the
/// header), if it has one: `repl-stream-db` tells a replica which database
/// the stream that follows its primary's image is in.
pub fn aux_field(data: &[u8], name: &str) -> Option<Bytes> {
    if data.len() < 9 || &data[..5] != b"REDIS" {
        return None;
    }
    let mut r = Reader::new(&data[9..]);
    while r.u8().ok()? == OP_AUX {
        let (key, value) = (r.bytes().ok()?, r.bytes().ok()?);
        if key.as_ref() == name.as_bytes() {
            return Some(value);
        }
    }
    None
}

/// Reads an RDB file image, handing each key and function to `on`, and
/// returns the bytes it took (an old-style AOF goes on with commands after
/// it). The checksum is verified before anything is handed over, so a
/// corrupt file loads nothing.
pub fn load(data: &[u8], lim: &Limits, mut on: impl FnMut(Item)) -> Result<usize, FileError> {
    if data.len() < 9 || &data[..5] != b"REDIS" {
        return Err(FileError::BadHeader);
    }
    let version: u16 =
        std::str::from_utf8(&data[5..9]).ok().and_then(|v| v.parse().ok()).ok_or(FileError::BadHeader)?;
    if version == 0 || version > MAX_LOAD_VERSION {
        return Err(FileError::Version(version));
    }
    // First pass: find EOF and check the trailer, so nothing is loaded
    // from a file that fails it.
    walk(data, version, lim, &mut |_| {})?;
    walk(data, version, lim, &mut on)
}

/// Walks the image to its EOF marker (and checksum), handing each item to
/// `on`; returns how many bytes the image took, so whatever follows (the
/// commands after an AOF's RDB preamble) can be read on from there.
fn walk(data: &[u8], version: u16, lim: &Limits, on: &mut dyn FnMut(Item)) -> Result<usize, FileError> {
    let mut r = Reader::new(&data[9..]);
    let truncated = |e: RdbError| if e == RdbError::BadFormat { FileError::Truncated } else { FileError::Rdb(e) };
    let mut db = 0usize;
    let (mut expire, mut idle, mut freq) = (None, None, None);
    loop {
        let op = r.u8().map_err(truncated)?;
        match op {
            OP_EOF => {
                let end = 9 + r.pos();
                if version >= 5 {
                    let stored = u64::from_le_bytes(r.take(8).map_err(truncated)?.try_into().expect("8 bytes"));
                    if stored != 0 && !crate::rdb::skip_checksum() {
                        let got = CRC.checksum(&data[..end]);
                        if got != stored {
                            return Err(FileError::Checksum { stored, computed: got });
                        }
                    }
                }
                return Ok(9 + r.pos());
            }
            OP_AUX => {
                r.bytes().map_err(truncated)?;
                r.bytes().map_err(truncated)?;
            }
            OP_RESIZEDB => {
                r.len().map_err(truncated)?;
                r.len().map_err(truncated)?;
            }
            OP_SELECTDB => db = r.len().map_err(truncated)?.1 as usize,
            OP_EXPIRETIME_MS => {
                expire = Some(u64::from_le_bytes(r.take(8).map_err(truncated)?.try_into().expect("8 bytes")))
            }
            OP_EXPIRETIME => {
                let secs = u32::from_le_bytes(r.take(4).map_err(truncated)?.try_into().expect("4 bytes"));
                expire = Some(secs as u64 * 1000);
            }
            OP_IDLE => idle = Some(r.len().map_err(truncated)?.1),
            OP_FREQ => freq = Some(r.u8().map_err(truncated)?),
            OP_FUNCTION2 => on(Item::Function(r.bytes().map_err(truncated)?)),
            OP_MODULE_AUX => return Err(FileError::Unknown(op)),
            ty => {
                let key = r.bytes().map_err(truncated)?;
                let value = match rdb::read_value(&mut r, ty, lim) {
                    Ok(value) => value,
                    // Read whole and empty: skipped, as Redis skips it.
                    Err(RdbError::EmptyKey) => {
                        (expire, idle, freq) = (None, None, None);
                        on(Item::Empty(key));
                        continue;
                    }
                    // An unknown type byte (module values, newer types).
                    Err(RdbError::BadFormat) if !known_type(ty) => return Err(FileError::Unknown(ty)),
                    Err(e) => return Err(truncated(e)),
                };
                on(Item::Key {
                    db,
                    key,
                    value,
                    expire_at_ms: expire.take(),
                    idle_secs: idle.take(),
                    freq: freq.take(),
                    read: 9 + r.pos(),
                });
            }
        }
    }
}

/// The value types `read_value` knows (Redis 7.2's, streams aside).
fn known_type(ty: u8) -> bool {
    matches!(ty, 0..=5 | 9..=14 | 16..=18 | 20)
}

#[cfg(test)]
mod tests {
    use super::*;
    use larder_store::StrValue;

    fn file(entries: &[(&[u8], Value, Option<u64>)]) -> Vec<u8> {
        let mut w = Writer::new(Vec::new(), &[("redis-ver", "7.2.4".into())]).unwrap();
        w.select_db(0, entries.len() as u64, 0);
        for (k, v, at) in entries {
            w.entry(k, v, *at, Recency::None).unwrap();
        }
        w.function(b"#!lua name=lib\nredis.register_function('f', function() return 1 end)").unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn a_written_file_loads_back() {
        let lim = Limits::default();
        let data = file(&[
            (b"s", Value::Str(StrValue::from_slice(b"hello")), None),
            (b"n", Value::Str(StrValue::Int(42)), Some(1_700_000_000_000)),
        ]);
        assert_eq!(&data[..9], b"REDIS0010");
        let mut keys = Vec::new();
        let mut functions = 0;
        load(&data, &lim, |item| match item {
            Item::Key { key, value, expire_at_ms, .. } => keys.push((key, value, expire_at_ms)),
            Item::Function(_) => functions += 1,
            Item::Empty(_) => panic!("no empty key was written"),
        })
        .unwrap();
        assert_eq!(functions, 1);
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[1].2, Some(1_700_000_000_000));
        assert_eq!(keys[0].1, Value::Str(StrValue::from_slice(b"hello")));
    }

    /// Keys whose collections hold nothing (older Redis versions saved
    /// some) are skipped, and the load goes on, as Redis's does: an empty
    /// set, an empty listpack hash, a quicklist whose one node is empty.
    #[test]
    fn empty_keys_are_skipped_and_the_load_goes_on() {
        let empty_listpack: &[u8] = &[7, 7, 0, 0, 0, 0, 0, 0xff];
        let mut data = b"REDIS0011\xfe\x00".to_vec();
        data.extend_from_slice(b"\x02\x03set\x00");
        data.extend_from_slice(b"\x10\x01h");
        data.extend_from_slice(empty_listpack);
        data.extend_from_slice(b"\x12\x01l\x01\x02");
        data.extend_from_slice(empty_listpack);
        data.extend_from_slice(b"\x00\x01k\x01v\xff");
        data.extend_from_slice(&[0; 8]);
        let (mut keys, mut empty) = (Vec::new(), Vec::new());
        load(&data, &Limits::default(), |item| match item {
            Item::Key { key, .. } => keys.push(key),
            Item::Empty(key) => empty.push(key),
            Item::Function(_) => panic!("no function was written"),
        })
        .unwrap();
        assert_eq!(empty, ["set", "h", "l"]);
        assert_eq!(keys, ["k"]);
        // RESTORE still refuses an empty collection, in Redis's words.
        let mut payload = b"\x02\x00".to_vec();
        payload.extend_from_slice(&crate::rdb::RDB_VERSION.to_le_bytes());
        payload.extend_from_slice(&CRC.checksum(&payload).to_le_bytes());
        let e = crate::rdb::restore_payload(&payload, &Limits::default()).unwrap_err();
        assert_eq!(e.to_string(), "Bad data format");
    }

    #[test]
    fn idle_time_and_frequency_load_back_with_their_keys() {
        let mut w = Writer::new(Vec::new(), &[]).unwrap();
        w.select_db(0, 3, 1);
        let v = Value::Str(StrValue::from_slice(b"v"));
        w.entry(b"idle", &v, Some(1_700_000_000_000), Recency::Idle(86_400 * 300)).unwrap();
        w.entry(b"freq", &v, None, Recency::Freq(200)).unwrap();
        w.entry(b"none", &v, None, Recency::None).unwrap();
        let data = w.finish().unwrap();
        let mut got = Vec::new();
        load(&data, &Limits::default(), |item| {
            if let Item::Key { key, expire_at_ms, idle_secs, freq, .. } = item {
                got.push((key, expire_at_ms, idle_secs, freq));
            }
        })
        .unwrap();
        assert_eq!(
            got,
            vec![
                (Bytes::from_static(b"idle"), Some(1_700_000_000_000), Some(86_400 * 300), None),
                (Bytes::from_static(b"freq"), None, None, Some(200)),
                (Bytes::from_static(b"none"), None, None, None),
            ]
        );
    }

    #[test]
    fn corruption_and_truncation_load_nothing() {
        let lim = Limits::default();
        let data = file(&[(b"s", Value::Str(StrValue::from_slice(b"hello")), None)]);
        let mut flipped = data.clone();
        flipped[20] ^= 0x40;
        let mut seen = 0;
        assert!(load(&flipped, &lim, |_| seen += 1).is_err());
        assert!(matches!(load(&data[..data.len() - 12], &lim, |_| seen += 1), Err(FileError::Truncated)));
        assert_eq!(seen, 0, "nothing handed over from a bad file");
        assert!(matches!(load(b"REDIS0012....", &lim, |_| {}), Err(FileError::Version(12))));
        assert!(matches!(load(b"NOTREDIS0", &lim, |_| {}), Err(FileError::BadHeader)));
    }
}
