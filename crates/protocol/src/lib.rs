//! larder-protocol: the RESP2/RESP3 wire format, and nothing else.
//!
//! It owns three things: the [`Frame`] value that covers every RESP3 type,
//! the decoders (a general one for replies and tests, and a zero-copy request
//! parser for the server's hot path), and the encoder that downgrades RESP3
//! frames for RESP2 clients. It does no I/O and knows nothing about storage,
//! so the server, the test kit and fuzzers can all share it.

mod decode;
mod encode;
mod error;
mod frame;
mod request;

pub use decode::{decode, MAX_DEPTH};
pub use encode::{encode, format_double};
pub use error::ProtocolError;
pub use frame::{Frame, Proto};
pub use request::{
    encode_command, needs_repr, parse_request, quote, repr, split_args, Request, RequestLimits, PROTO_INLINE_MAX_SIZE,
};
