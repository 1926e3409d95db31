//! CLIENT TRACKING's replies and errors against real Redis, one
//! connection, both protocols. Invalidation delivery needs several
//! connections and is tested in tests/it/tracking.rs.

use crate::check_script;

#[test]
fn client_tracking_replies_match_redis() {
    check_script(
        r#"
        CLIENT GETREDIR
        CLIENT TRACKINGINFO
        CLIENT CACHING yes
        CLIENT TRACKING
        CLIENT TRACKING maybe
        CLIENT TRACKING on foo
        CLIENT TRACKING on PREFIX a
        CLIENT TRACKING on BCAST OPTIN
        CLIENT TRACKING on OPTIN OPTOUT
        CLIENT TRACKING on REDIRECT 999999
        CLIENT TRACKING on REDIRECT notanumber
        CLIENT TRACKING on REDIRECT
        CLIENT TRACKING on BCAST PREFIX a PREFIX ab
        CLIENT TRACKING on BCAST PREFIX ab PREFIX a
        CLIENT TRACKING on OPTIN
        CLIENT TRACKINGINFO
        CLIENT GETREDIR
        CLIENT CACHING no
        CLIENT CACHING maybe
        CLIENT CACHING yes
        CLIENT TRACKINGINFO
        GET k
        CLIENT TRACKINGINFO
        CLIENT TRACKING on OPTOUT
        CLIENT TRACKING on BCAST
        CLIENT TRACKING on OPTIN NOLOOP
        CLIENT TRACKINGINFO
        CLIENT TRACKING off
        CLIENT TRACKINGINFO
        CLIENT TRACKING on OPTOUT
        CLIENT CACHING yes
        CLIENT CACHING no
        CLIENT TRACKINGINFO
        CLIENT TRACKING off
        CLIENT TRACKING on BCAST PREFIX user: PREFIX post:
        CLIENT TRACKINGINFO
        CLIENT TRACKING on BCAST PREFIX us
        CLIENT TRACKING on BCAST PREFIX user:
        CLIENT TRACKING on BCAST PREFIX other
        ~CLIENT TRACKINGINFO
        CLIENT TRACKING on
        CLIENT TRACKING off
        CLIENT TRACKING on BCAST
        CLIENT TRACKINGINFO
        CLIENT TRACKING off
        CONFIG GET tracking-table-max-keys
        CONFIG SET tracking-table-max-keys 10
        CONFIG GET tracking-table-max-keys
        "#,
    );
}
