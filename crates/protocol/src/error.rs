//! Protocol errors. `Display` is Redis's exact text, because clients and the
//! differential tests compare it byte for byte.

use thiserror::Error;

/// A frame that can never become valid, however many bytes follow.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolError {
    #[error("Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    #[error("Protocol error: invalid bulk length")]
    InvalidBulkLength,
    #[error("Protocol error: expected '$', got '{0}'")]
    ExpectedDollar(char),
    #[error("Protocol error: too big mbulk count string")]
    TooBigMbulkCount,
    #[error("Protocol error: too big bulk count string")]
    TooBigBulkCount,
    #[error("Protocol error: too big inline request")]
    TooBigInline,
    #[error("Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
    #[error("Protocol error: unauthenticated multibulk length")]
    UnauthenticatedMultibulk,
    #[error("Protocol error: unauthenticated bulk length")]
    UnauthenticatedBulk,
    /// Reply-side decoding only: a type byte RESP does not define.
    #[error("Protocol error: invalid frame type byte {0:#04x}")]
    InvalidType(u8),
    /// Reply-side decoding only: a malformed number, boolean or terminator.
    #[error("Protocol error: invalid frame")]
    Invalid,
    #[error("Protocol error: nesting too deep")]
    TooDeep,
}
