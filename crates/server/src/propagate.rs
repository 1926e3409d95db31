//! Effects as the RESP commands a follower replays: what the AOF appends
//! and what replicas are sent.
//!
//! Both consumers need the same two things from the effect stream: each
//! effect encoded as one command, and a transaction or script kept whole.
//! A MULTI … EXEC arrives on one thread (the thread that holds its locks),
//! so it is staged thread-locally and released at its EXEC; an unrelated
//! write on another shard can never land inside it. A script run by EXEC
//! brings its own MULTI … EXEC, which must not nest, hence the depth.
//! Each consumer owns its thread-local staging (`Staging`), since each
//! sees every effect.

use larder_protocol::encode_command;
use larder_store::Effect;
use std::cell::RefCell;
use std::thread::LocalKey;

/// A transaction or script being emitted on this thread.
pub struct Staged {
    cmds: Vec<(usize, Vec<u8>)>,
    depth: u32,
}

/// One consumer's thread-local staging slot.
pub type Staging = LocalKey<RefCell<Option<Staged>>>;

/// `effect` encoded; returns the commands now complete (one write, or a
/// whole transaction at its EXEC) with their databases, or None while a
/// transaction is open.
pub fn stage(slot: &'static Staging, effect: &Effect<'_>) -> Option<Vec<(usize, Vec<u8>)>> {
    let name = effect.args[0];
    let (multi, exec) = (name.eq_ignore_ascii_case(b"MULTI"), name.eq_ignore_ascii_case(b"EXEC"));
    let encode = || {
        let mut cmd = Vec::with_capacity(16 + effect.args.iter().map(|a| a.len() + 16).sum::<usize>());
        encode_command(&mut cmd, effect.args);
        cmd
    };
    slot.with(|staged| {
        let mut staged = staged.borrow_mut();
        match staged.as_mut() {
            None if multi => {
                *staged = Some(Staged { cmds: vec![(effect.db, encode())], depth: 1 });
                None
            }
            None => Some(vec![(effect.db, encode())]),
            Some(st) if multi => {
                st.depth += 1;
                None
            }
            Some(st) if exec && st.depth > 1 => {
                st.depth -= 1;
                None
            }
            Some(st) => {
                st.cmds.push((effect.db, encode()));
                if exec {
                    staged.take().and_then(|s| unwrap_transaction(s.cmds))
                } else {
                    None
                }
            }
        }
    })
}

/// A finished MULTI … EXEC as Redis propagates it: nothing if no write
/// happened inside, the write alone if there was one, and otherwise the
/// wrapper in the databases of the first and last write, so the stream
/// selects the first write's database before MULTI and none before EXEC.
fn unwrap_transaction(mut cmds: Vec<(usize, Vec<u8>)>) -> Option<Vec<(usize, Vec<u8>)>> {
    match cmds.len() {
        0..=2 => None,
        3 => Some(vec![cmds.swap_remove(1)]),
        n => {
            cmds[0].0 = cmds[1].0;
            cmds[n - 1].0 = cmds[n - 2].0;
            Some(cmds)
        }
    }
}

/// Appends `cmds` to `out`, preceded by a SELECT wherever the database
/// differs from the one `db` says the reader is in (None: unknown).
pub fn append_selecting(out: &mut Vec<u8>, db: &mut Option<usize>, cmds: &[(usize, Vec<u8>)]) {
    for (cmd_db, cmd) in cmds {
        if *db != Some(*cmd_db) {
            encode_command(out, &[b"SELECT", itoa::Buffer::new().format(*cmd_db).as_bytes()]);
            *db = Some(*cmd_db);
        }
        out.extend_from_slice(cmd);
    }
}
