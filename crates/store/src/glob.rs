//! Redis's glob matching (`stringmatchlen`), used by KEYS, SCAN MATCH and
//! CONFIG GET: `*`, `?`, `[abc]`, `[^a-z]`, and `\` escapes.

/// Matches `string` against `pattern`, optionally ignoring ASCII case.
pub fn glob_match(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
    // Bounded backtracking: remember the last '*' and retry from there.
    // This is linear-ish and cannot blow the stack on hostile patterns,
    // unlike Redis's recursive version.
    let (mut p, mut s) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    let eq = |a: u8, b: u8| if nocase { a.eq_ignore_ascii_case(&b) } else { a == b };
    while s < string.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    while p < pattern.len() && pattern[p] == b'*' {
                        p += 1;
                    }
                    if p == pattern.len() {
                        return true;
                    }
                    star = Some((p, s));
                    continue;
                }
                b'?' => {
                    p += 1;
                    s += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = class(pattern, p, string[s], nocase) {
                        if matched {
                            p = next;
                            s += 1;
                            continue;
                        }
                    }
                }
                b'\\' if p + 1 < pattern.len() => {
                    if eq(pattern[p + 1], string[s]) {
                        p += 2;
                        s += 1;
                        continue;
                    }
                }
                c => {
                    if eq(c, string[s]) {
                        p += 1;
                        s += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, ss)) => {
                p = sp;
                s = ss + 1;
                star = Some((sp, ss + 1));
            }
            None => return false,
        }
    }
    while p < pattern.len() && pattern[p] == b'*' {
        p += 1;
    }
    p == pattern.len()
}

/// Evaluates the character class starting at `pattern[p] == b'['`. Returns
/// whether `c` matched and where the pattern continues.
fn class(pattern: &[u8], mut p: usize, c: u8, nocase: bool) -> Option<(bool, usize)> {
    p += 1;
    let not = pattern.get(p) == Some(&b'^');
    if not {
        p += 1;
    }
    let fold = |x: u8| if nocase { x.to_ascii_lowercase() } else { x };
    let c = fold(c);
    let mut matched = false;
    loop {
        match pattern.get(p) {
            // Redis treats an unterminated class as ending at the pattern's end.
            None => {
                p = pattern.len();
                break;
            }
            Some(b']') => {
                p += 1;
                break;
            }
            Some(b'\\') if p + 1 < pattern.len() => {
                if fold(pattern[p + 1]) == c {
                    matched = true;
                }
                p += 2;
            }
            Some(&lo) if pattern.get(p + 1) == Some(&b'-') && p + 2 < pattern.len() => {
                let hi = pattern[p + 2];
                let (mut a, mut b) = (fold(lo), fold(hi));
                if a > b {
                    std::mem::swap(&mut a, &mut b);
                }
                if c >= a && c <= b {
                    matched = true;
                }
                p += 3;
            }
            Some(&x) => {
                if fold(x) == c {
                    matched = true;
                }
                p += 1;
            }
        }
    }
    Some((matched != not, p))
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn redis_glob_cases() {
        let m = |p: &str, s: &str| glob_match(p.as_bytes(), s.as_bytes(), false);
        assert!(m("*", ""));
        assert!(m("h?llo", "hello"));
        assert!(m("h*llo", "heeeello"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(m("a\\*b", "a*b"));
        assert!(!m("a\\*b", "axb"));
        assert!(m("*foo*bar", "xxfooyybar"));
        assert!(!m("*foo*bar", "xxfooyybaz"));
        assert!(m("key:*", "key:1"));
        assert!(!m("a", "ab"));
        assert!(glob_match(b"MAX*", b"maxmemory", true));
        // Hostile pattern terminates quickly.
        let p = "*a".repeat(50) + "b";
        assert!(!m(&p, &"a".repeat(100)));
    }
}
