//! What the tools share, in three parts:
//!
//! - [`contract`]: the record contract every tool keeps with its users — the records, the
//!   formats they are printed in, the escaping of untrusted text, the line readers, the
//!   errors and exit statuses, and the entry every binary goes through.
//! - [`services`]: the service data (IANA's registry, /etc/services, nmap's frequencies,
//!   why attackers favour a port) and the port-list language.
//! - [`host`]: readers of this host's state: sockets over netlink or /proc/net, the
//!   processes that own them, user names.
//!
//! What only one tool uses lives in that tool.

pub mod contract;
pub mod host;
pub mod services;

pub use contract::error::{Error, Result, Status};
