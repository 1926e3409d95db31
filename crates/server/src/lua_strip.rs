//! Lua 5.1 bytecode without its debug information: what `luac -s` writes,
//! for the prelude the scripting VM loads at start.
//!
//! Why: the prelude's functions live as long as the VM, and every full
//! collection walks them. Compiled from source, each keeps a line number
//! per instruction and the names of its locals, about 3.6 KB of the 59 KB
//! a fresh VM holds. A script never sees them: the debugger and the error
//! handler look only at the script's own frames. The names of upvalues
//! stay (as much again): Lua names a C function in its argument errors by
//! the upvalue its caller called it through, and the prelude's wrappers
//! call `rawset`, `insert` and the rest so (without them the error says
//! `'?'`). Lua 5.1's `lua_dump` has no strip flag (mlua passes it on only
//! for later versions), so this rewrites the dump, a format simple enough
//! to walk (`ldump.c`): the code, constants and upvalue names are copied
//! as they are, and each function's line numbers and locals are written
//! as empty lists.
//!
//! The format is checked as it is read (the header must be this build's:
//! little-endian, 4-byte ints and instructions, 8-byte sizes and numbers);
//! anything else gives `None` and the caller keeps the unstripped chunk.

/// The header `lua_dump` writes on this kind of machine: signature,
/// version 5.1, official format, little-endian, sizes of int, size_t,
/// Instruction and lua_Number, floating-point numbers.
const HEADER: [u8; 12] = [0x1b, b'L', b'u', b'a', 0x51, 0, 1, 4, 8, 4, 8, 0];

/// `chunk` (a `lua_dump` of a Lua 5.1 function) without line numbers or
/// local names.
pub fn strip(chunk: &[u8]) -> Option<Vec<u8>> {
    let mut r = Reader { at: chunk, out: Vec::with_capacity(chunk.len()) };
    if r.take(HEADER.len())? != HEADER {
        return None;
    }
    r.out.extend_from_slice(&HEADER);
    r.function()?;
    r.at.is_empty().then_some(r.out)
}

struct Reader<'a> {
    at: &'a [u8],
    out: Vec<u8>,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.at.len() < n {
            return None;
        }
        let (head, rest) = self.at.split_at(n);
        self.at = rest;
        Some(head)
    }

    /// Copies `n` bytes through.
    fn copy(&mut self, n: usize) -> Option<()> {
        let bytes = self.take(n)?.to_vec();
        self.out.extend_from_slice(&bytes);
        Some(())
    }

    fn int(&mut self) -> Option<usize> {
        let n = i32::from_le_bytes(self.take(4)?.try_into().ok()?);
        usize::try_from(n).ok()
    }

    /// Reads an int and copies it through.
    fn copy_int(&mut self) -> Option<usize> {
        let n = self.int()?;
        self.out.extend_from_slice(&(n as i32).to_le_bytes());
        Some(n)
    }

    /// A string: its size (with the closing NUL; 0 for none), then its
    /// bytes.
    fn string(&mut self, keep: bool) -> Option<()> {
        let n = usize::try_from(u64::from_le_bytes(self.take(8)?.try_into().ok()?)).ok()?;
        let bytes = self.take(n)?.to_vec();
        if keep {
            self.out.extend_from_slice(&(n as u64).to_le_bytes());
            self.out.extend_from_slice(&bytes);
        }
        Some(())
    }

    fn function(&mut self) -> Option<()> {
        self.string(true)?; // source (none in a nested function)
        self.copy(4 + 4 + 4)?; // first and last line; upvalues, params, vararg, stack size
        let code = self.copy_int()?;
        self.copy(code.checked_mul(4)?)?;
        for _ in 0..self.copy_int()? {
            let kind = self.take(1)?[0];
            self.out.push(kind);
            match kind {
                0 => {}                  // nil
                1 => self.copy(1)?,      // boolean
                3 => self.copy(8)?,      // number
                4 => self.string(true)?, // string
                _ => return None,
            }
        }
        for _ in 0..self.copy_int()? {
            self.function()?;
        }
        // Debug information: line numbers and locals written as empty
        // lists, upvalue names as they are.
        let lines = self.int()?;
        self.take(lines.checked_mul(4)?)?;
        for _ in 0..self.int()? {
            self.string(false)?;
            self.take(8)?; // where the local is live
        }
        self.out.extend_from_slice(&[0; 8]);
        for _ in 0..self.copy_int()? {
            self.string(true)?;
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlua::{ChunkMode, Lua};

    const CODE: &str = r#"
        local up, t = 10, { 'a', 2.5, true, n = nil }
        local function inner(x)
          local y = x * 2
          return function() return y + up end
        end
        return inner(#t)() , t[1], t[3]
    "#;

    #[test]
    fn a_stripped_chunk_runs_as_the_original_and_is_smaller() {
        let lua = Lua::new();
        let f = lua.load(CODE).set_name("=test").into_function().unwrap();
        let dump = f.dump(false);
        let stripped = strip(&dump).expect("a dump of this build strips");
        assert!(stripped.len() < dump.len() * 3 / 4, "{} → {}", dump.len(), stripped.len());
        let g = lua.load(&stripped[..]).set_mode(ChunkMode::Binary).set_name("=test").into_function().unwrap();
        let (n, a, b): (i64, String, bool) = g.call(()).unwrap();
        assert_eq!((n, a.as_str(), b), (16, "a", true));
        assert_eq!(strip(&stripped).as_deref(), Some(&stripped[..]), "stripping twice changes nothing");
    }

    #[test]
    fn anything_else_is_refused() {
        let lua = Lua::new();
        let dump = lua.load(CODE).into_function().unwrap().dump(false);
        assert!(strip(b"return 1").is_none());
        assert!(strip(&dump[..dump.len() - 1]).is_none(), "cut short");
        let mut longer = dump.clone();
        longer.push(0);
        assert!(strip(&longer).is_none(), "trailing bytes");
        let mut other = dump;
        other[8] = 4; // a 4-byte size_t
        assert!(strip(&other).is_none());
    }
}
