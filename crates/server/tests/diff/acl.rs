//! ACL against redis-server: users read back, rule errors, AUTH, and what a
//! restricted user is refused. Refusal texts changed in Redis 7.2 ("User
//! bob has no permissions…" instead of 7.0's "this user has…"), so those
//! lines compare the error code only; Larder words them as 7.2 does. A
//! `-cmd` for a command the user lacks is left out: 7.0 rebuilds the rule
//! text from the permission bits and drops it, while 7.2 keeps the rules as
//! typed (which Larder follows). Two single-command rules are never given
//! to one user here: 7.0 prints them in its hash table order, which varies.

use crate::check_script;

#[test]
fn acl_users_and_rules_read_back_like_redis() {
    check_script(
        r#"
        ACL SETUSER bob on >123 +@scripting +set ~x* &ch*
        ACL GETUSER bob
        ACL LIST
        ACL USERS
        ACL WHOAMI
        ACL SETUSER bob %R~y* resetpass nopass "(~z +hset)"
        ACL LIST
        ACL GETUSER bob
        ACL SETUSER bob -@all +@read -get
        ACL LIST
        ACL SETUSER alice reset on #a665a45920422f9d417e4867efdc4fb8a04a1f3fff1fa07e998e86f7f7a27ae3 allkeys allchannels +@all -flushall
        ACL LIST
        ACL SETUSER alice <123
        ACL GETUSER alice
        ACL SETUSER alice +select|0
        ACL LIST
        ACL SETUSER x +foo
        ACL SETUSER x +@foo
        ACL SETUSER x bar
        ACL SETUSER x ~* ~a
        ACL SETUSER x &* &a
        ACL SETUSER x <nope
        ACL SETUSER x #abc
        ACL SETUSER x +client|id|x
        ACL SETUSER "a b"
        ACL GETUSER x
        ACL GETUSER nobody
        ACL CAT
        ACL CAT nope
        ?ACL DRYRUN bob get x
        ACL DRYRUN nobody get x
        ACL DRYRUN bob nocmd
        %ACL GENPASS
        %ACL GENPASS 5
        ACL GENPASS 0
        ACL SAVE
        ACL DELUSER default
        ACL DELUSER alice nobody
        ACL USERS
        AUTH default nopass-user-takes-anything
        AUTH nobody x
        ACL SETUSER bob resetpass >bobpw
        AUTH bob wrong
        ACL SETUSER carol on >pw ~k* resetchannels &news +get +set +publish +subscribe +psubscribe
        AUTH carol pw
        !ACL WHOAMI
        SET k1 v
        GET k1
        !GET other
        !HSET k1 f v
        PUBLISH news m
        !PUBLISH sports m
        !PSUBSCRIBE n*
        !EVAL "return 1" 0
        AUTH default x
        ACL WHOAMI
        "#,
    );
}

/// acl-pubsub-default: users and selectors made while it says
/// `allchannels` start with every channel, as does `reset`; the default
/// (`resetchannels`) starts them with none.
#[test]
fn acl_pubsub_default_matches_redis() {
    crate::check_script(
        r#"
        CONFIG SET acl-pubsub-default allchannels
        ACL SETUSER u1 on
        ACL SETUSER u2 reset
        ACL SETUSER u3 on (~x +get)
        ACL SETUSER u3 (~y +set)
        CONFIG SET acl-pubsub-default resetchannels
        ACL SETUSER u4 on (~z +get)
        ACL SETUSER u1 reset
        ACL SETUSER u3 (~w +del)
        ACL LIST
        ACL GETUSER u3
        "#,
    );
}
