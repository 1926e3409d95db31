//! ACL through the `redis` crate, in RESP2 and RESP3: a user logs in and is
//! refused what its rules do not allow (commands, keys, channels, inside a
//! script and inside MULTI); ACL DELUSER disconnects its clients; ACL LOG
//! records refusals; requirepass is the default user's password.

use larder_protocol::Proto;
use larder_testkit::spawn_server;

fn err_text(r: redis::RedisResult<redis::Value>) -> String {
    match r {
        Err(e) => e.to_string(),
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

#[test]
fn a_restricted_user_is_refused_what_its_rules_leave_out() {
    for proto in [Proto::Resp2, Proto::Resp3] {
        let s = spawn_server();
        let mut admin = s.conn(proto);
        let _: () = redis::cmd("ACL")
            .arg(&[
                "SETUSER",
                "bob",
                "on",
                ">123",
                "+@scripting",
                "+set",
                "+get",
                "+multi",
                "+exec",
                "+acl|whoami",
                "~x*",
            ])
            .query(&mut admin)
            .unwrap();
        let mut bob = s.conn(proto);
        let _: () = redis::cmd("AUTH").arg("bob").arg("123").query(&mut bob).unwrap();
        let who: String = redis::cmd("ACL").arg("WHOAMI").query(&mut bob).unwrap();
        assert_eq!(who, "bob");
        let _: () = redis::cmd("SET").arg("xa").arg("1").query(&mut bob).unwrap();
        let e = err_text(redis::cmd("HSET").arg("xa").arg("f").arg("v").query(&mut bob));
        assert!(e.contains("NOPERM") && e.contains("User bob has no permissions to run the 'hset' command"), "{e}");
        let e = err_text(redis::cmd("GET").arg("ya").query(&mut bob));
        assert!(e.contains("No permissions to access a key"), "{e}");
        // Inside a script: the script's own error, as Redis 7.2 words it.
        let e = err_text(redis::cmd("EVAL").arg("return redis.call('get','ya')").arg(0).query(&mut bob));
        assert!(e.contains("ACL failure in script: No permissions to access a key"), "{e}");
        let allowed: Option<i64> = redis::cmd("EVAL")
            .arg("return redis.acl_check_cmd('set','xb',1)")
            .arg(1)
            .arg("xb")
            .query(&mut bob)
            .unwrap();
        assert_eq!(allowed, Some(1));
        let denied: Option<i64> =
            redis::cmd("EVAL").arg("return redis.acl_check_cmd('hset','xb','f',1)").arg(0).query(&mut bob).unwrap();
        assert_eq!(denied, None, "false becomes a nil reply");
        // Too few arguments for the key's place (no arity check here, as in
        // Redis): no key to check, and no crash.
        let short: Option<i64> =
            redis::cmd("EVAL").arg("return redis.acl_check_cmd('set')").arg(0).query(&mut bob).unwrap();
        assert_eq!(short, Some(1));
        // A refusal while queuing dooms the EXEC.
        let mut raw = s.raw();
        raw.call(&["AUTH", "bob", "123"]).unwrap();
        raw.call(&["MULTI"]).unwrap();
        let queued = raw.call(&["GET", "ya"]).unwrap();
        assert!(format!("{queued:?}").contains("NOPERM"), "{queued:?}");
        let exec = raw.call(&["EXEC"]).unwrap();
        assert!(format!("{exec:?}").contains("EXECABORT"), "{exec:?}");
        // The log has each refusal, newest first, with its context.
        let log: Vec<redis::Value> = redis::cmd("ACL").arg("LOG").query(&mut admin).unwrap();
        let text = format!("{log:?}");
        for part in ["\"multi\"", "\"lua\"", "\"toplevel\"", "\"ya\"", "\"hset\""] {
            assert!(text.contains(part), "{part} missing from {text}");
        }
        // The admin changes bob's rules: bob's open connection follows.
        let _: () = redis::cmd("ACL").arg(&["SETUSER", "bob", "+hset"]).query(&mut admin).unwrap();
        let n: i64 = redis::cmd("HSET").arg("xa2").arg("f").arg("v").query(&mut bob).unwrap();
        assert_eq!(n, 1);
    }
}

/// `%R~` and `%W~` are checked key by key against what the command does
/// to each key (its key spec's flags), as Redis checks them: COPY reads
/// its source and writes its destination, LMOVE also deletes from its
/// source, EXISTS only looks, SET … GET also reads. Each expectation below
/// is what redis-server 7.0.15's ACL DRYRUN answered for the same user.
/// And the categories are Redis's: -@dangerous refuses FLUSHALL, KEYS and
/// SORT, which Larder once filed elsewhere.
#[test]
fn read_and_write_selectors_apply_per_key() {
    let s = spawn_server();
    let mut admin = s.conn(Proto::Resp3);
    let _: () = redis::cmd("ACL")
        .arg(&["SETUSER", "u", "on", "nopass", "+@all", "%R~r*", "%W~w*", "~b*"])
        .query(&mut admin)
        .unwrap();
    let dryrun = |admin: &mut redis::Connection, line: &str| -> String {
        redis::cmd("ACL").arg("DRYRUN").arg("u").arg(line.split(' ').collect::<Vec<_>>()).query(admin).unwrap()
    };
    let denied = |key: &str| format!("User u has no permissions to access the '{key}' key");
    for (line, want) in [
        ("copy r1 w1", "OK".to_string()),
        ("copy w1 r1", denied("w1")),
        ("lmove r1 w1 left left", denied("r1")),
        ("lmove b1 w1 left left", "OK".to_string()),
        ("exists w1 r1", "OK".to_string()),
        ("type w1", "OK".to_string()),
        ("get w1", denied("w1")),
        ("set w1 v", "OK".to_string()),
        ("set w1 v get", denied("w1")),
        ("del r1", denied("r1")),
        ("sort r1 store w1", "OK".to_string()),
        ("sort w1", denied("w1")),
        ("eval x 1 r1", denied("r1")),
        ("xread streams r1 0", "OK".to_string()),
        ("bitfield r1 get u8 0", "OK".to_string()),
        ("bitfield r1 set u8 0 1", denied("r1")),
        ("object encoding w1", "OK".to_string()),
        ("zunionstore w1 2 r1 r2", "OK".to_string()),
        ("zunionstore r1 2 r1 r2", denied("r1")),
    ] {
        assert_eq!(dryrun(&mut admin, line), want, "{line}");
    }
    // The real command, from the user's own connection.
    let mut u = s.conn(Proto::Resp2);
    let _: () = redis::cmd("AUTH").arg("u").arg("x").query(&mut u).unwrap();
    let _: () = redis::cmd("SET").arg("r1").arg("1").query(&mut admin).unwrap();
    let copied: i64 = redis::cmd("COPY").arg("r1").arg("w1").query(&mut u).unwrap();
    assert_eq!(copied, 1);
    let e = err_text(redis::cmd("LMOVE").arg("r1").arg("w1").arg("LEFT").arg("LEFT").query(&mut u));
    assert!(e.contains("No permissions to access a key"), "{e}");

    let _: () = redis::cmd("ACL")
        .arg(&["SETUSER", "v", "on", "nopass", "+@all", "-@dangerous", "~*"])
        .query(&mut admin)
        .unwrap();
    for line in ["flushall", "keys *", "sort k", "swapdb 0 1", "info", "role"] {
        let name = line.split(' ').next().unwrap();
        let got: String = redis::cmd("ACL")
            .arg("DRYRUN")
            .arg("v")
            .arg(line.split(' ').collect::<Vec<_>>())
            .query(&mut admin)
            .unwrap();
        assert_eq!(got, format!("User v has no permissions to run the '{name}' command"), "{line}");
    }
    let cats: Vec<String> = redis::cmd("ACL").arg("CAT").arg("dangerous").query(&mut admin).unwrap();
    for name in ["flushall", "keys", "sort", "sort_ro", "restore", "lastsave"] {
        assert!(cats.iter().any(|c| c == name), "{name} not in @dangerous: {cats:?}");
    }
}

/// What ACL SETUSER does beyond the user's own rules, as Redis's acl
/// and acl-v2 units check it: a subscriber whose channel is revoked is
/// disconnected (one whose channels stay is not); SORT's BY and GET need
/// read access to every key; of two selectors refusing keys, ACL LOG names
/// the later key; acllog-max-len bounds the log; ACL CAT takes one
/// category at most.
#[test]
fn acl_changes_reach_subscribers_sort_and_the_log() {
    let s = spawn_server();
    let mut admin = s.conn(Proto::Resp2);
    let _: () = redis::cmd("ACL")
        .arg(&["SETUSER", "ps", "on", "nopass", "+@all", "~*", "resetchannels", "&news*", "&keep"])
        .query(&mut admin)
        .unwrap();
    let subscriber = |channel: &str, kind: &str| {
        let mut raw = s.raw();
        raw.call(&["AUTH", "ps", "x"]).unwrap();
        raw.call(&[kind, channel]).unwrap();
        raw
    };
    let mut news = subscriber("news.1", "SUBSCRIBE");
    let mut pattern = subscriber("news*", "PSUBSCRIBE");
    let mut keep = subscriber("keep", "SUBSCRIBE");
    let _: () = redis::cmd("ACL").arg(&["SETUSER", "ps", "resetchannels", "&keep"]).query(&mut admin).unwrap();
    assert!(news.read_to_close().is_ok(), "the news subscriber is disconnected");
    assert!(pattern.read_to_close().is_ok(), "the pattern subscriber is disconnected");
    let n: i64 = redis::cmd("PUBLISH").arg("keep").arg("still here").query(&mut admin).unwrap();
    assert_eq!(n, 1, "the subscriber to a channel still allowed stays");
    let msg = keep.read_frame().unwrap();
    assert!(format!("{msg:?}").contains("still here"), "{msg:?}");

    // SORT's BY and GET read keys the command does not name.
    let _: () = redis::cmd("RPUSH").arg("mylist").arg(1).query(&mut admin).unwrap();
    let _: () = redis::cmd("SET").arg("v1").arg(1).query(&mut admin).unwrap();
    let mut sorter = s.conn(Proto::Resp2);
    for (rules, allowed) in [("~mylist ~v*", false), ("~mylist %W~*", false), ("~mylist %R~*", true)] {
        let mut args = vec!["SETUSER", "sorter", "reset", "on", "nopass", "+sort"];
        args.extend(rules.split(' '));
        let _: () = redis::cmd("ACL").arg(&args).query(&mut admin).unwrap();
        let _: () = redis::cmd("AUTH").arg("sorter").arg("x").query(&mut sorter).unwrap();
        let by = redis::cmd("SORT").arg("mylist").arg("BY").arg("v*").query::<Vec<String>>(&mut sorter);
        let get = redis::cmd("SORT").arg("mylist").arg("GET").arg("v*").query::<Vec<String>>(&mut sorter);
        if allowed {
            assert_eq!(by.unwrap(), vec!["1"]);
            assert_eq!(get.unwrap(), vec!["1"]);
        } else {
            let by = by.unwrap_err().to_string();
            assert!(by.contains("BY option of SORT denied due to insufficient ACL permissions."), "{rules}: {by}");
            let get = get.unwrap_err().to_string();
            assert!(get.contains("GET option of SORT denied due to insufficient ACL permissions."), "{rules}: {get}");
        }
        // A BY without '*' reads nothing: allowed either way.
        let plain: Vec<String> = redis::cmd("SORT").arg("mylist").arg("BY").arg("nosort").query(&mut sorter).unwrap();
        assert_eq!(plain, vec!["1"]);
    }

    // Two selectors refuse; the log names the later of the keys refused.
    let _: () = redis::cmd("ACL")
        .arg(&["SETUSER", "sel", "on", "nopass", "+mget", "~key", "(+mget ~key ~otherkey)"])
        .query(&mut admin)
        .unwrap();
    let mut sel = s.conn(Proto::Resp2);
    let _: () = redis::cmd("AUTH").arg("sel").arg("x").query(&mut sel).unwrap();
    let _: () = redis::cmd("ACL").arg("LOG").arg("RESET").query(&mut admin).unwrap();
    assert!(redis::cmd("MGET").arg("otherkey").arg("someotherkey").query::<redis::Value>(&mut sel).is_err());
    let log: Vec<std::collections::HashMap<String, redis::Value>> =
        redis::cmd("ACL").arg("LOG").query(&mut admin).unwrap();
    assert_eq!(log[0]["object"], redis::Value::BulkString(b"someotherkey".to_vec()), "{log:?}");

    let _: () = redis::cmd("CONFIG").arg("SET").arg("acllog-max-len").arg(2).query(&mut admin).unwrap();
    for key in ["a", "b", "c"] {
        assert!(redis::cmd("GET").arg(key).query::<redis::Value>(&mut sel).is_err());
    }
    let log: Vec<redis::Value> = redis::cmd("ACL").arg("LOG").query(&mut admin).unwrap();
    assert_eq!(log.len(), 2);

    let e = err_text(redis::cmd("ACL").arg("CAT").arg("read").arg("extra").query(&mut admin));
    assert!(e.contains("unknown subcommand or wrong number of arguments for 'CAT'. Try ACL HELP."), "{e}");
}

#[test]
fn deluser_disconnects_the_users_clients() {
    let s = spawn_server();
    let mut admin = s.conn(Proto::Resp2);
    let _: () = redis::cmd("ACL").arg(&["SETUSER", "eve", "on", "nopass", "+@all", "~*"]).query(&mut admin).unwrap();
    let mut eve = s.raw();
    eve.call(&["AUTH", "eve", "anything"]).unwrap();
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut admin).unwrap();
    assert!(list.contains("user=eve"), "{list}");
    let n: i64 = redis::cmd("ACL").arg(&["DELUSER", "eve"]).query(&mut admin).unwrap();
    assert_eq!(n, 1);
    assert!(eve.read_to_close().is_ok(), "eve's connection is closed");
    let e = err_text(redis::cmd("AUTH").arg("eve").arg("x").query(&mut admin));
    assert!(e.contains("WRONGPASS"), "{e}");
}

#[test]
fn requirepass_is_the_default_users_password() {
    let s = spawn_server();
    let mut admin = s.conn(Proto::Resp2);
    let _: () = redis::cmd("CONFIG").arg(&["SET", "requirepass", "s3cret"]).query(&mut admin).unwrap();
    let mut c = s.raw();
    let f = c.call(&["GET", "k"]).unwrap();
    assert!(format!("{f:?}").contains("NOAUTH"), "{f:?}");
    let f = c.call(&["AUTH", "default", "s3cret"]).unwrap();
    assert!(!format!("{f:?}").contains("Error"), "{f:?}");
    // An unrelated CONFIG SET leaves an ACL change to the default user.
    let _: () = redis::cmd("ACL").arg(&["SETUSER", "default", ">another"]).query(&mut admin).unwrap();
    let _: () = redis::cmd("CONFIG").arg(&["SET", "maxclients", "100"]).query(&mut admin).unwrap();
    let mut d = s.raw();
    let f = d.call(&["AUTH", "another"]).unwrap();
    assert!(!format!("{f:?}").contains("Error"), "{f:?}");
}
