//! Every error a command can reply with, and Redis's exact text for it.
//! Clients and our differential tests compare these byte for byte, so they
//! live in this one file and nowhere else.

use larder_protocol::Frame;
use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum CmdError {
    #[error("ERR syntax error")]
    Syntax,
    #[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
    WrongType,
    #[error("ERR value is not an integer or out of range")]
    NotInteger,
    #[error("ERR value is not a valid float")]
    NotFloat,
    #[error("ERR increment or decrement would overflow")]
    Overflow,
    #[error("ERR increment would produce NaN or Infinity")]
    NanOrInfinity,
    #[error("ERR invalid expire time in '{0}' command")]
    InvalidExpire(String),
    #[error("ERR no such key")]
    NoSuchKey,
    #[error("ERR DB index is out of range")]
    DbIndexOutOfRange,
    #[error("ERR source and destination objects are the same")]
    SameObject,
    #[error("ERR wrong number of arguments for '{0}' command")]
    WrongArity(String),
    #[error("ERR unknown command '{name}', with args beginning with: {args}")]
    UnknownCommand { name: String, args: String },
    #[error("ERR unknown subcommand '{sub}'. Try {cmd} HELP.")]
    UnknownSubcommand { sub: String, cmd: String },
    #[error("NOAUTH Authentication required.")]
    NoAuth,
    #[error("OOM command not allowed when used memory > 'maxmemory'.")]
    Oom,
    #[error("NOREPLICAS Not enough good replicas to write.")]
    NoReplicas,
    #[error("READONLY You can't write against a read only replica.")]
    ReadOnlyReplica,
    #[error("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.")]
    MasterDown,
    #[error("WRONGPASS invalid username-password pair or user is disabled.")]
    WrongPass,
    #[error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")]
    AuthNotConfigured,
    #[error("NOPROTO unsupported protocol version")]
    NoProto,
    #[error("BUSYKEY Target key name already exists.")]
    BusyKey,
    #[error("ERR string exceeds maximum allowed size (proto-max-bulk-len)")]
    StringTooLong,
    #[error("ERR offset is out of range")]
    OffsetOutOfRange,
    #[error("ERR invalid cursor")]
    InvalidCursor,
    #[error("ERR timeout is negative")]
    NegativeTimeout,
    #[error("ERR timeout is not a float or out of range")]
    TimeoutNotFloat,
    #[error("ERR No such client")]
    NoSuchClient,
    #[error("ERR Client names cannot contain spaces, newlines or special characters.")]
    BadClientName,
    #[error("ERR {0} option can't be used with {1} option")]
    ExclusiveOptions(&'static str, &'static str),
    #[error("ERR {0} and {1} options at the same time are not compatible")]
    IncompatibleOptions(&'static str, &'static str),
    #[error("ERR Errors trying to SHUTDOWN. Check logs.")]
    ShutdownFailed,
    /// Any other `-ERR` reply; the text follows "ERR ".
    #[error("ERR {0}")]
    Err(String),
    /// A reply with its own error code, e.g. "DENIED ...".
    #[error("{0}")]
    Raw(String),
}

impl CmdError {
    /// The error reply. Texts may quote user input (a key, an option),
    /// so CR and LF become spaces, as Redis's `addReplyErrorLength` does:
    /// an error must stay one protocol line.
    pub fn to_frame(&self) -> Frame {
        Frame::error(self.to_string().replace(['\r', '\n'], " "))
    }

    /// The error code Redis counts in INFO errorstats ("ERR", "WRONGTYPE").
    pub fn code(&self) -> String {
        let s = self.to_string();
        s.split(' ').next().unwrap_or("ERR").to_string()
    }
}

/// Redis's reply when a client that has not authenticated is refused
/// because of protected mode, sent before the connection is closed.
pub const DENIED_PROTECTED_MODE: &str = "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Set up an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

/// Sent when `maxclients` is reached, before closing the connection.
pub const MAX_CLIENTS_REACHED: &str = "-ERR max number of clients reached\r\n";
