//! The append-only file's manifest, in Redis 7's multi-part layout.
//!
//! An AOF is a directory (`appenddirname`) holding one base file (an RDB
//! snapshot, or RESP commands), any number of incremental files of RESP
//! commands, and a manifest that lists them in order:
//!
//! ```text
//! file appendonly.aof.2.base.rdb seq 2 type b
//! file appendonly.aof.3.incr.aof seq 3 type i
//! ```
//!
//! The manifest is the commit point of a rewrite: files it does not list
//! do not exist as far as loading goes, so it is replaced atomically
//! (temporary file, fsync, rename). The format is Redis's, so redis-server
//! and redis-check-aof read a Larder AOF directory and Larder reads
//! theirs.

use std::fmt::Write as _;

/// What a listed file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Base,
    /// A former base or incremental file, kept until it can be deleted.
    History,
    Incr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub name: String,
    pub seq: u64,
    pub kind: Kind,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    pub base: Option<Part>,
    pub incrs: Vec<Part>,
    pub history: Vec<Part>,
}

/// Why a manifest was refused, in Redis's words (its `aofLoadManifestFromFile`
/// logs them; tools and Redis's own test suite look for them).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    #[error("Found an empty AOF manifest")]
    Empty,
    #[error("The AOF manifest file contains too long line")]
    LineTooLong,
    #[error("Invalid AOF manifest file format")]
    Format,
    #[error("File can't be a path, just a filename")]
    Path,
    #[error("Unknown AOF file type")]
    UnknownType,
    #[error("Found duplicate base file information")]
    TwoBases,
    #[error("Found a non-monotonic sequence number")]
    Sequence,
}

/// Longest manifest line Redis reads, its newline included.
const MAX_LINE: usize = 1024;

impl Manifest {
    /// Reads a manifest as Redis 7 does, refusing what it refuses: no
    /// lines at all, a line without its newline or longer than 1,024
    /// bytes, a blank line, fewer than three key-value pairs, a file name
    /// that is a path, a missing name, sequence (0 counts as missing) or
    /// type, an unknown type, a second base, or incremental files out of
    /// order. Keys are case-insensitive; unknown keys are skipped (later
    /// versions may add some); names may be quoted as Redis writes them.
    pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
        if text.is_empty() {
            return Err(ManifestError::Empty);
        }
        let mut m = Manifest::default();
        let mut rest = text;
        while !rest.is_empty() {
            let end = rest.find('\n').filter(|&n| n < MAX_LINE).ok_or(ManifestError::LineTooLong)?;
            let line = &rest[..end];
            rest = &rest[end + 1..];
            // Only a '#' in the first column makes a comment, as in Redis.
            if line.starts_with('#') {
                continue;
            }
            let words = larder_protocol::split_args(line.trim_matches([' ', '\t', '\r']).as_bytes())
                .map_err(|_| ManifestError::Format)?;
            if words.len() < 6 || !words.len().is_multiple_of(2) {
                return Err(ManifestError::Format);
            }
            let (mut name, mut seq, mut kind) = (None, 0u64, None);
            for kv in words.chunks(2) {
                let value = String::from_utf8_lossy(&kv[1]);
                match kv[0].to_ascii_lowercase().as_slice() {
                    b"file" if value.contains(['/', '\\']) => return Err(ManifestError::Path),
                    b"file" => name = Some(value.into_owned()),
                    // atoll: leading digits, anything else 0 (and no
                    // overflow: a sequence past u64 stays at its top).
                    b"seq" => {
                        seq = value
                            .bytes()
                            .take_while(u8::is_ascii_digit)
                            .fold(0u64, |n, d| n.saturating_mul(10).saturating_add(u64::from(d - b'0')))
                    }
                    b"type" => kind = value.bytes().next(),
                    _ => {}
                }
            }
            let (Some(name), true, Some(kind)) = (name, seq > 0, kind) else {
                return Err(ManifestError::Format);
            };
            let kind = match kind {
                b'b' => Kind::Base,
                b'h' => Kind::History,
                b'i' => Kind::Incr,
                _ => return Err(ManifestError::UnknownType),
            };
            let part = Part { name, seq, kind };
            match kind {
                Kind::Base if m.base.is_some() => return Err(ManifestError::TwoBases),
                Kind::Base => m.base = Some(part),
                Kind::History => m.history.push(part),
                Kind::Incr => {
                    if m.incrs.last().is_some_and(|p| p.seq >= seq) {
                        return Err(ManifestError::Sequence);
                    }
                    m.incrs.push(part)
                }
            }
        }
        Ok(m)
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let tag = |k: Kind| match k {
            Kind::Base => "b",
            Kind::History => "h",
            Kind::Incr => "i",
        };
        for p in self.base.iter().chain(&self.history).chain(&self.incrs) {
            let name = match larder_protocol::needs_repr(p.name.as_bytes()) {
                true => larder_protocol::repr(p.name.as_bytes()),
                false => p.name.clone(),
            };
            let _ = writeln!(out, "file {name} seq {} type {}", p.seq, tag(p.kind));
        }
        out
    }

    /// The next sequence numbers for a base and an incremental file.
    pub fn next_seqs(&self) -> (u64, u64) {
        let base = self.base.as_ref().map_or(0, |p| p.seq).max(self.history.iter().map(|p| p.seq).max().unwrap_or(0));
        let incr = self.incrs.iter().chain(&self.history).map(|p| p.seq).max().unwrap_or(0);
        (base + 1, incr + 1)
    }
}

impl Part {
    /// A base file, named as Redis names them: `prefix.seq.base.rdb`.
    pub fn base(prefix: &str, seq: u64) -> Part {
        Part { name: format!("{prefix}.{seq}.base.rdb"), seq, kind: Kind::Base }
    }

    /// An incremental file: `prefix.seq.incr.aof`.
    pub fn incr(prefix: &str, seq: u64) -> Part {
        Part { name: format!("{prefix}.{seq}.incr.aof"), seq, kind: Kind::Incr }
    }
}

pub fn manifest_name(prefix: &str) -> String {
    format!("{prefix}.manifest")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trips_in_redis_format() {
        let text = "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n\
                    file appendonly.aof.2.incr.aof seq 2 type i\n";
        let m = Manifest::parse(text).unwrap();
        assert_eq!(m.base.as_ref().unwrap().name, "appendonly.aof.1.base.rdb");
        assert_eq!(m.incrs.len(), 2);
        assert_eq!(m.render(), text);
        assert_eq!(m.next_seqs(), (2, 3));
    }

    /// What Redis 7.0's `aofLoadManifestFromFile` refuses, this refuses
    /// with its words; what it reads, this reads the same.
    #[test]
    fn manifests_are_read_as_redis_reads_them() {
        use ManifestError as E;
        let refused = [
            ("", E::Empty),
            ("file a seq 1 type b", E::LineTooLong),
            (&format!("file {} seq 1 type b\n", "a".repeat(1010)), E::LineTooLong),
            ("file a seq 1 type b\n\nfile b seq 1 type i\n", E::Format),
            ("file a seq 1\n", E::Format),
            ("file a seq 1 type b extra\n", E::Format),
            ("file a seq x type b\n", E::Format),
            ("file a seq 0 type b\n", E::Format),
            ("name a seq 1 type b\n", E::Format),
            ("file dir/a seq 1 type b\n", E::Path),
            ("file dir\\\\a seq 1 type b\n", E::Path),
            ("file a seq 1 type x\n", E::UnknownType),
            ("file a seq 1 type b\nfile b seq 2 type b\n", E::TwoBases),
            // A sequence past u64 stays at its top rather than overflowing.
            ("file a seq 99999999999999999999999 type i\nfile b seq 1 type i\n", E::Sequence),
            ("file a seq 2 type i\nfile b seq 1 type i\n", E::Sequence),
        ];
        for (text, why) in refused {
            assert_eq!(Manifest::parse(text), Err(why), "{text:?}");
        }
        // Comments (first column only), any case of the keys, unknown keys,
        // a trailing \r, and a quoted name.
        let m = Manifest::parse(
            "# made by hand\nFILE \"odd name.aof\" SEQ 3 TYPE b new-key x\r\nfile i.aof seq 4 type i\n",
        )
        .unwrap();
        assert_eq!(m.base.as_ref().map(|b| (b.name.as_str(), b.seq)), Some(("odd name.aof", 3)));
        assert_eq!(m.render(), "file \"odd name.aof\" seq 3 type b\nfile i.aof seq 4 type i\n");
        assert_eq!(Manifest::parse(&m.render()), Ok(m));
    }
}
