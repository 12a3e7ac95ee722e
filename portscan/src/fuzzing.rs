//! The parsers portscan runs on what others write (target operands, nmap-service-probes
//! files, banners and UDP replies against the match rules, the ICMP echo replies and TCP
//! segments its raw sockets read, and -sS's replies), named in one place for the fuzz targets in fuzz/
//! (README, "Fuzzing") so that the engine's modules stay private. Not part of portscan's
//! interface. ICMP errors need no parser of ours: the kernel hands them over decoded
//! (IP_RECVERR, see `probe`).

pub use crate::discovery::echo::{Echo, parse_reply as parse_echo_reply, request as echo_request};
pub use crate::os_hint::system_named;
pub use crate::os_hint::tcp::{parse_ipv4, parse_segment};
pub use crate::scope::{never_meant, public_count};
pub use crate::service::builtin as builtin_probes;
pub use crate::service::db::{Found, ProbeDb};
pub use crate::service::stage::best_match;
pub use crate::syn::packet::{
    Cookie, icmp_reply as parse_syn_icmp, syn as syn_packet, tcp_reply as parse_syn_reply,
};
pub use crate::target_spec::TargetSpec;
pub use crate::targets::parse_list as parse_target_list;
