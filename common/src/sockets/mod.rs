//! Listing the host's sockets: from the kernel over NETLINK_SOCK_DIAG as `ss` does, or from
//! the /proc/net tables when netlink is unavailable. Shared because sockls lists them and
//! proctree looks up listening sockets by inode.

pub mod bytecode;
pub mod codec;
pub mod netlink;
pub mod procnet;

use std::io;

use crate::record::{Family, SocketProto, SocketRecord, SocketState};
use netlink::DiagSocket;

/// Which sockets to list and what to learn about them.
#[derive(Debug, Clone)]
pub struct Query {
    pub protos: Vec<SocketProto>,
    pub ipv4: bool,
    pub ipv6: bool,
    /// A bit per [`SocketState::number`]; the kernel skips the other sockets.
    pub states: u32,
    /// TCP internals (tcp_info and the congestion control name).
    pub tcp_info: bool,
    /// Socket memory (sk_meminfo).
    pub memory: bool,
    /// Port conditions, all of which a TCP or UDP socket must meet, handed to the kernel as
    /// a filter program. The caller still checks them: /proc/net and a program too large
    /// for the kernel get no filtering here.
    pub ports: Vec<PortCondition>,
}

/// "The port at `end` is in one of these ranges", per protocol.
#[derive(Debug, Clone)]
pub struct PortCondition {
    pub end: bytecode::End,
    pub tcp: Vec<(u16, u16)>,
    pub udp: Vec<(u16, u16)>,
}

impl Query {
    /// The state mask with every state.
    pub const ALL_STATES: u32 = 0x1ffe;

    /// Every socket of every protocol and family, in every state.
    pub fn all() -> Self {
        Self {
            protos: vec![
                SocketProto::Tcp,
                SocketProto::Udp,
                SocketProto::Raw,
                SocketProto::Unix,
            ],
            ipv4: true,
            ipv6: true,
            states: Self::ALL_STATES,
            tcp_info: false,
            memory: false,
            ports: Vec::new(),
        }
    }

    /// Whether sockets of `proto` can meet the port conditions: only TCP and UDP have
    /// ports, and a condition may leave one of them no range.
    fn could_match(&self, proto: SocketProto) -> bool {
        self.ports.iter().all(|condition| match proto {
            SocketProto::Tcp => !condition.tcp.is_empty(),
            SocketProto::Udp => !condition.udp.is_empty(),
            SocketProto::Raw | SocketProto::Unix => false,
        })
    }

    fn wants_state(&self, state: SocketState) -> bool {
        self.states & (1 << state.number()) != 0
    }
}

/// Where socket records come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Source {
    /// Netlink, and /proc/net for any table netlink cannot give.
    #[default]
    Auto,
    Netlink,
    Proc,
}

/// The sockets found, and what kept some from being listed (each a complete sentence for
/// stderr); a problem means the list may be incomplete.
#[derive(Debug, Default)]
pub struct Listing {
    pub records: Vec<SocketRecord>,
    pub problems: Vec<String>,
}

/// One table: a protocol in one family.
#[derive(Debug, Clone, Copy)]
struct Table {
    proto: SocketProto,
    family: Family,
}

impl Table {
    fn name(self) -> String {
        match self.family {
            Family::Ipv4 => format!("{}", self.proto),
            Family::Ipv6 => format!("{}6", self.proto),
            Family::Unix => "unix".to_owned(),
        }
    }
}

/// Lists the sockets `query` asks for, in the calling thread's network namespace.
pub fn list(query: &Query, source: Source) -> Listing {
    let mut listing = Listing::default();
    let mut tables = Vec::new();
    for &proto in &query.protos {
        if proto == SocketProto::Unix {
            tables.push(Table {
                proto,
                family: Family::Unix,
            });
            continue;
        }
        for (wanted, family) in [(query.ipv4, Family::Ipv4), (query.ipv6, Family::Ipv6)] {
            if wanted {
                tables.push(Table { proto, family });
            }
        }
    }
    let mut diag = match source {
        Source::Proc => None,
        Source::Auto => DiagSocket::open().ok(),
        Source::Netlink => match DiagSocket::open() {
            Ok(socket) => Some(socket),
            Err(error) => {
                listing.problems.push(format!(
                    "opening a NETLINK_SOCK_DIAG socket: {}",
                    crate::error::describe_io_error(&error)
                ));
                return listing;
            }
        },
    };
    for table in tables {
        if !query.could_match(table.proto) {
            continue;
        }
        let start = listing.records.len();
        if let Some(socket) = diag.as_mut() {
            match dump(socket, table, query, &mut listing.records) {
                Ok(()) => continue,
                Err(error) => {
                    let why = if error.error.raw_os_error() == Some(2) {
                        // inet_diag answers ENOENT for a protocol it has no handler for.
                        "the kernel has no sock_diag handler for it".to_owned()
                    } else {
                        crate::error::describe_io_error(&error.error)
                    };
                    if source == Source::Netlink {
                        listing
                            .problems
                            .push(format!("netlink dump of {}: {why}", table.name()));
                        continue;
                    }
                    // A partial dump is dropped whole and the table read again from /proc,
                    // so that the list is complete; a refusal up front is just fallback.
                    listing.records.truncate(start);
                    if error.records_seen {
                        listing.problems.push(format!(
                            "netlink dump of {} failed part way ({why}); listed it from /proc instead",
                            table.name()
                        ));
                    }
                }
            }
        }
        if let Err(problem) = read_proc(table, query, &mut listing.records) {
            listing.problems.push(problem);
        }
    }
    listing
}

fn dump(
    socket: &mut DiagSocket,
    table: Table,
    query: &Query,
    records: &mut Vec<SocketRecord>,
) -> Result<(), netlink::DumpError> {
    let seq = socket.next_seq();
    let request = match table.family {
        Family::Unix => {
            let mut show = codec::UDIAG_SHOW_NAME
                | codec::UDIAG_SHOW_PEER
                | codec::UDIAG_SHOW_RQLEN
                | codec::UDIAG_SHOW_UID;
            if query.memory {
                show |= codec::UDIAG_SHOW_MEMINFO;
            }
            codec::unix_request(seq, query.states, show)
        }
        Family::Ipv4 | Family::Ipv6 => {
            let family = if table.family == Family::Ipv4 {
                codec::AF_INET
            } else {
                codec::AF_INET6
            };
            let protocol = match table.proto {
                SocketProto::Tcp => codec::IPPROTO_TCP,
                SocketProto::Udp => codec::IPPROTO_UDP,
                SocketProto::Raw | SocketProto::Unix => codec::IPPROTO_RAW,
            };
            let mut ext = 0;
            if query.tcp_info && table.proto == SocketProto::Tcp {
                ext |= codec::EXT_INFO | codec::EXT_CONG;
            }
            if query.memory {
                ext |= codec::EXT_SKMEMINFO;
            }
            let program = port_program(query, table.proto);
            let states = kernel_states(query.states, table.proto);
            codec::inet_request(seq, family, protocol, ext, states, program.as_deref())
        }
    };
    socket.dump(&request, |payload| {
        let record = if table.family == Family::Unix {
            codec::parse_unix(payload)?
        } else {
            codec::parse_inet(payload, table.proto)?
        };
        // The kernel applies the state mask, except for the few protocols that ignore it.
        if query.wants_state(record.state) {
            records.push(record);
        }
        Ok(())
    })
}

/// The state mask to send for a dump of `proto`. Any state besides LISTEN makes the kernel
/// walk its whole table of connected TCP sockets (`inet_diag_dump_icsk`), and no TCP socket
/// in that table is in CLOSE (`tcp_set_state` unhashes it as it closes), so for TCP the bit
/// that `-l` sets for unconnected UDP sockets would cost a walk of every connection of the
/// host, per family, and find nothing.
fn kernel_states(states: u32, proto: SocketProto) -> u32 {
    if proto == SocketProto::Tcp {
        states & !(1 << SocketState::Unconn.number())
    } else {
        states
    }
}

/// The filter program for `proto`'s port conditions, if there are any it can express.
fn port_program(query: &Query, proto: SocketProto) -> Option<Vec<u8>> {
    if query.ports.is_empty() {
        return None;
    }
    let conditions: Vec<bytecode::Condition> = query
        .ports
        .iter()
        .map(|condition| {
            let ranges = match proto {
                SocketProto::Tcp => condition.tcp.clone(),
                SocketProto::Udp => condition.udp.clone(),
                SocketProto::Raw | SocketProto::Unix => Vec::new(),
            };
            (condition.end, ranges)
        })
        .collect();
    bytecode::compile(&conditions)
}

/// Reads one /proc/net table of the calling thread's namespace. A missing file is a table
/// the kernel does not have (IPv6 disabled): no sockets, not an error.
fn read_proc(table: Table, query: &Query, records: &mut Vec<SocketRecord>) -> Result<(), String> {
    let path = format!("/proc/thread-self/net/{}", table.name());
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(error) => {
            return Err(format!(
                "reading {path}: {}",
                crate::error::describe_io_error(&error)
            ));
        }
    };
    let parsed = if table.family == Family::Unix {
        procnet::parse_unix(&text)
    } else {
        procnet::parse_inet(&text, table.proto, table.family)
    }
    .map_err(|problem| format!("{path}: {problem}"))?;
    records.extend(parsed.into_iter().filter(|r| query.wants_state(r.state)));
    Ok(())
}
