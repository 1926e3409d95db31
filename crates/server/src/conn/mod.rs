//! Connections: the per-client state a command sees (`client`), and the
//! task that reads, parses, dispatches and writes (`connection`).

pub mod client;
pub mod connection;
pub mod reply;
