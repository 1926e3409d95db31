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

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    #[error("Invalid AOF manifest file format at line {0}")]
    Format(usize),
    #[error("Found duplicate base file information")]
    TwoBases,
    #[error("Found a non-monotonic sequence number")]
    Sequence,
}

impl Manifest {
    pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
        let mut m = Manifest::default();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            if !words.len().is_multiple_of(2) {
                return Err(ManifestError::Format(i + 1));
            }
            let (mut name, mut seq, mut kind) = (None, None, None);
            for kv in words.chunks(2) {
                match kv[0] {
                    "file" => name = Some(kv[1].to_string()),
                    "seq" => seq = kv[1].parse::<u64>().ok(),
                    "type" => {
                        kind = match kv[1] {
                            "b" => Some(Kind::Base),
                            "h" => Some(Kind::History),
                            "i" => Some(Kind::Incr),
                            _ => None,
                        }
                    }
                    // Later Redis versions may add keys; skipping them is theirs too.
                    _ => {}
                }
            }
            let (Some(name), Some(seq), Some(kind)) = (name, seq, kind) else {
                return Err(ManifestError::Format(i + 1));
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
            let _ = writeln!(out, "file {} seq {} type {}", p.name, p.seq, tag(p.kind));
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

    #[test]
    fn bad_manifests_are_refused() {
        assert_eq!(Manifest::parse("file a seq 1\n"), Err(ManifestError::Format(1)));
        assert_eq!(Manifest::parse("file a seq x type b\n"), Err(ManifestError::Format(1)));
        assert_eq!(Manifest::parse("file a seq 1 type b\nfile b seq 2 type b\n"), Err(ManifestError::TwoBases));
        assert_eq!(Manifest::parse("file a seq 2 type i\nfile b seq 1 type i\n"), Err(ManifestError::Sequence));
    }
}
