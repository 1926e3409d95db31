//! Connections: the per-client state a command sees (`client`), the task
//! that reads, parses, dispatches and writes (`connection`), and the
//! replies on their way out (`reply`).

pub mod client;
pub mod connection;
pub mod reply;
