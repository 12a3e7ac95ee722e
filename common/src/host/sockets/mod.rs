//! Listing the host's sockets: from the kernel over NETLINK_SOCK_DIAG as `ss` does, or from
//! the /proc/net tables when netlink is unavailable. Shared because sockls lists them and
//! proctree looks up listening sockets by inode.

pub mod bytecode;
pub mod codec;
pub mod netlink;
pub mod procnet;

use std::collections::HashSet;
use std::io;
use std::net::IpAddr;
use std::ops::ControlFlow;

use crate::contract::record::{Family, SocketProto, SocketRecord, SocketState};
use netlink::{DiagSocket, Dumped, Transport};

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
    /// TCP timers (idiag_timer, idiag_expires, idiag_retrans).
    pub timers: bool,
    /// Port conditions, all of which a TCP or UDP socket must meet, handed to the kernel as
    /// a filter program. The caller still checks them: /proc/net and a program too large
    /// for the kernel get no filtering here.
    pub ports: Vec<PortCondition>,
    /// A filter expression (ss's), handed to the kernel as a filter program for TCP and UDP
    /// sockets in place of the port conditions; the caller still checks both.
    pub expression: Option<bytecode::Node>,
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
            timers: false,
            ports: Vec::new(),
            expression: None,
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

/// The owner's uid of an inet socket that a source reports with `uid` and `inode`. A socket
/// in time-wait, and a request socket (SYN-RECV with no inode: a connection not yet
/// accepted), has no owner: inet_diag reports uid 0 for both (inet_twsk_diag_fill,
/// inet_req_diag_fill), /proc/net 0 for the one and the listener's uid for the other. ss -e
/// shows no uid for them; neither do we, so that `--user root` does not take them for root's.
pub(crate) fn owner_uid(state: SocketState, inode: u64, uid: u32) -> Option<u32> {
    let ownerless = match state {
        SocketState::TimeWait => true,
        SocketState::SynRecv | SocketState::NewSynRecv => inode == 0,
        _ => false,
    };
    (!ownerless).then_some(uid)
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
    let mut records = Vec::new();
    let problems = list_each(query, source, |record| {
        records.push(record);
        ControlFlow::Continue(())
    });
    Listing { records, problems }
}

/// Lists the sockets `query` asks for, handing each to `each` as it comes, so that a caller
/// that prints them need not hold them all; stops early when `each` breaks. Returns what
/// kept some from being listed, as [`Listing::problems`].
pub fn list_each(
    query: &Query,
    source: Source,
    mut each: impl FnMut(SocketRecord) -> ControlFlow<()>,
) -> Vec<String> {
    let mut diag = match source {
        Source::Proc => None,
        Source::Auto => DiagSocket::open().ok(),
        Source::Netlink => match DiagSocket::open() {
            Ok(socket) => Some(socket),
            Err(error) => {
                return vec![format!(
                    "opening a NETLINK_SOCK_DIAG socket: {}",
                    crate::contract::error::describe_io_error(&error)
                )];
            }
        },
    };
    list_with(query, source, diag.as_mut(), &mut each)
}

/// How many times a table is dumped while the kernel says its dump was interrupted.
const DUMP_ATTEMPTS: usize = 3;

/// The sockets of one table handed on so far. A table dumped again, or read from /proc
/// after a dump failed part way, lists only the sockets not already listed.
#[derive(Default)]
struct Seen {
    inodes: HashSet<u64>,
    /// Sockets without an inode (time-wait, orphans), by their addresses.
    unnamed: HashSet<Ends>,
}

/// Local address and port, remote address and port.
type Ends = (Option<IpAddr>, Option<u16>, Option<IpAddr>, Option<u16>);

impl Seen {
    /// Whether `record` is new, remembering it.
    fn first(&mut self, record: &SocketRecord) -> bool {
        if record.inode != 0 {
            return self.inodes.insert(record.inode);
        }
        self.unnamed.insert((
            record.local_address,
            record.local_port,
            record.remote_address,
            record.remote_port,
        ))
    }

    fn len(&self) -> usize {
        self.inodes.len() + self.unnamed.len()
    }
}

/// [`list_each`] over `diag`, which the tests give replies that fail part way.
fn list_with<T: Transport>(
    query: &Query,
    source: Source,
    mut diag: Option<&mut DiagSocket<T>>,
    each: &mut dyn FnMut(SocketRecord) -> ControlFlow<()>,
) -> Vec<String> {
    let mut problems = Vec::new();
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
    for table in tables {
        if !query.could_match(table.proto) {
            continue;
        }
        let mut seen = Seen::default();
        if let Some(socket) = diag.as_mut() {
            let mut outcome = dump(socket, table, query, &mut seen, each);
            for _ in 1..DUMP_ATTEMPTS {
                if !matches!(outcome, Ok(Dumped::Interrupted)) {
                    break;
                }
                outcome = dump(socket, table, query, &mut seen, each);
            }
            match outcome {
                Ok(Dumped::Complete) => continue,
                Ok(Dumped::Stopped) => return problems,
                // /proc/net is read in pieces with the table unlocked in between, so it
                // would be no more consistent: what the dumps gave stands, with a warning.
                Ok(Dumped::Interrupted) => {
                    let name = table.name();
                    problems.push(format!(
                        "netlink dump of {name}: the kernel's socket table changed during each \
                         of {DUMP_ATTEMPTS} dumps, so the list of {name} may miss a socket"
                    ));
                    continue;
                }
                Err(error) => {
                    let name = table.name();
                    let why = if error.error.raw_os_error() == Some(2) {
                        // inet_diag answers ENOENT for a protocol it has no handler for.
                        "the kernel has no sock_diag handler for it".to_owned()
                    } else {
                        crate::contract::error::describe_io_error(&error.error)
                    };
                    let listed = seen.len();
                    let failed = format!(
                        "netlink dump of {name} failed after {} ({why})",
                        sockets(listed)
                    );
                    if source == Source::Netlink {
                        problems.push(if listed == 0 {
                            format!("netlink dump of {name}: {why}")
                        } else {
                            format!("{failed}; the list of {name} is incomplete")
                        });
                        continue;
                    }
                    // The rest comes from /proc, so that the list is complete; a refusal
                    // up front is just fallback.
                    if listed > 0 {
                        problems.push(format!("{failed}; the rest of it was read from /proc"));
                    }
                }
            }
        }
        match read_proc(table, query, &mut seen, each) {
            Ok(ControlFlow::Continue(())) => {}
            Ok(ControlFlow::Break(())) => return problems,
            Err(problem) => problems.push(problem),
        }
    }
    problems
}

fn sockets(count: usize) -> String {
    if count == 1 {
        "1 socket".to_owned()
    } else {
        format!("{count} sockets")
    }
}

fn dump<T: Transport>(
    socket: &mut DiagSocket<T>,
    table: Table,
    query: &Query,
    seen: &mut Seen,
    each: &mut dyn FnMut(SocketRecord) -> ControlFlow<()>,
) -> Result<Dumped, netlink::DumpError> {
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
            let program = match (&query.expression, table.proto) {
                (Some(expression), SocketProto::Tcp | SocketProto::Udp) => {
                    expression_program(query, expression, table.proto)
                }
                _ => port_program(query, table.proto),
            };
            let states = kernel_states(query.states, table.proto);
            codec::inet_request(seq, family, protocol, ext, states, program.as_deref())
        }
    };
    socket.dump(&request, |payload| {
        let record = if table.family == Family::Unix {
            codec::parse_unix(payload)?
        } else {
            let mut record = codec::parse_inet(payload, table.proto)?;
            if query.timers {
                codec::inet_timer(payload, &mut record);
            }
            record
        };
        // The kernel applies the state mask, except for the few protocols that ignore it.
        if query.wants_state(record.state) && seen.first(&record) {
            return Ok(each(record));
        }
        Ok(ControlFlow::Continue(()))
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

/// The filter program for the expression and `proto`'s port conditions, all of which must
/// hold; the expression's alone if the conditions make the program too large.
fn expression_program(
    query: &Query,
    expression: &bytecode::Node,
    proto: SocketProto,
) -> Option<Vec<u8>> {
    let whole = query
        .ports
        .iter()
        .try_fold(expression.clone(), |whole, condition| {
            let ranges = if proto == SocketProto::Tcp {
                &condition.tcp
            } else {
                &condition.udp
            };
            Some(bytecode::Node::And(
                Box::new(whole),
                Box::new(bytecode::Node::port_ranges(condition.end, ranges)?),
            ))
        });
    whole
        .and_then(|whole| bytecode::compile_expression(&whole))
        .or_else(|| bytecode::compile_expression(expression))
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

/// Reads one /proc/net table of the calling thread's namespace, handing on the sockets not
/// in `seen`. A missing file is a table the kernel does not have (IPv6 disabled): no
/// sockets, not an error.
fn read_proc(
    table: Table,
    query: &Query,
    seen: &mut Seen,
    each: &mut dyn FnMut(SocketRecord) -> ControlFlow<()>,
) -> Result<ControlFlow<()>, String> {
    let path = format!("/proc/thread-self/net/{}", table.name());
    // Bytes: a UNIX socket's path need not be UTF-8.
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Ok(ControlFlow::Continue(()));
        }
        Err(error) => {
            return Err(format!(
                "reading {path}: {}",
                crate::contract::error::describe_io_error(&error)
            ));
        }
    };
    let parsed = if table.family == Family::Unix {
        procnet::parse_unix(&text)
    } else {
        // Hex and decimal numbers only: a byte that is not UTF-8 fails its line's parse.
        let timers = query.timers.then(procnet::ticks_per_second);
        procnet::parse_inet(
            &String::from_utf8_lossy(&text),
            table.proto,
            table.family,
            timers,
        )
    }
    .map_err(|problem| format!("{path}: {problem}"))?;
    for record in parsed {
        if query.wants_state(record.state) && seen.first(&record) && each(record).is_break() {
            return Ok(ControlFlow::Break(()));
        }
    }
    Ok(ControlFlow::Continue(()))
}

#[cfg(test)]
mod tests {
    use super::netlink::script::{NLM_F_DUMP_INTR, Reply, Script, done, error, tcp};
    use super::*;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;

    const EIO: i32 = 5;
    const ENOBUFS: i32 = 105;

    /// Every TCP socket over IPv4: one table, one dump.
    fn tcp4() -> Query {
        Query {
            protos: vec![SocketProto::Tcp],
            ipv6: false,
            ..Query::all()
        }
    }

    fn list_over(source: Source, replies: Vec<Reply>) -> Listing {
        let mut socket = DiagSocket::new(Script::new(replies));
        let mut records = Vec::new();
        let problems = list_with(&tcp4(), source, Some(&mut socket), &mut |record| {
            records.push(record);
            ControlFlow::Continue(())
        });
        Listing { records, problems }
    }

    fn inodes(listing: &Listing) -> Vec<u64> {
        listing.records.iter().map(|r| r.inode).collect()
    }

    /// A listener of the test's own, which /proc/net/tcp lists, and its inode.
    fn listener() -> (std::net::TcpListener, u64) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let inode = std::fs::metadata(format!("/proc/self/fd/{}", listener.as_raw_fd()))
            .unwrap()
            .ino();
        (listener, inode)
    }

    /// Replies whose dump fails after two records.
    fn failing_after_two() -> Vec<Reply> {
        vec![
            Reply::Datagram([tcp(1, 0, 80, 11), tcp(1, 0, 81, 12)].concat()),
            Reply::Datagram(done(1, 0, -EIO)),
        ]
    }

    #[test]
    fn with_netlink_only_a_failed_dump_keeps_what_came_and_says_it_is_incomplete() {
        let listing = list_over(Source::Netlink, failing_after_two());
        assert_eq!(inodes(&listing), [11, 12]);
        assert_eq!(
            listing.problems,
            [
                "netlink dump of tcp failed after 2 sockets (Input/output error); \
                 the list of tcp is incomplete"
            ]
        );
        let listing = list_over(
            Source::Netlink,
            vec![Reply::Datagram(tcp(1, 0, 80, 11)), Reply::Fails(ENOBUFS)],
        );
        assert_eq!(inodes(&listing), [11]);
        assert_eq!(
            listing.problems,
            [
                "netlink dump of tcp failed after 1 socket (No buffer space available); \
                 the list of tcp is incomplete"
            ]
        );
    }

    #[test]
    fn otherwise_the_rest_of_a_failed_dump_is_read_from_proc_without_repeats() {
        let (_listener, inode) = listener();
        let listing = list_over(Source::Auto, failing_after_two());
        let found = inodes(&listing);
        assert_eq!(found[..2], [11, 12], "what the dump gave is kept");
        assert_eq!(
            found.iter().filter(|&&i| i == inode).count(),
            1,
            "{found:?}"
        );
        assert!(
            listing.records[2..].iter().all(|r| r.cookie.is_none()),
            "from /proc"
        );
        assert_eq!(
            listing.problems,
            [
                "netlink dump of tcp failed after 2 sockets (Input/output error); \
                 the rest of it was read from /proc"
            ]
        );
        // The dump had given our own listener: /proc lists it too, but it comes once.
        let listing = list_over(
            Source::Auto,
            vec![
                Reply::Datagram(tcp(1, 0, 80, u32::try_from(inode).unwrap())),
                Reply::Fails(ENOBUFS),
            ],
        );
        let found = inodes(&listing);
        assert_eq!(
            found.iter().filter(|&&i| i == inode).count(),
            1,
            "{found:?}"
        );
        assert_eq!(listing.records[0].cookie, Some(inode), "the dump's record");
        // A message cut short in the second datagram.
        let mut cut = tcp(1, 0, 82, 13);
        cut.truncate(40);
        let listing = list_over(
            Source::Auto,
            vec![Reply::Datagram(tcp(1, 0, 80, 11)), Reply::Datagram(cut)],
        );
        assert!(inodes(&listing).contains(&inode));
        assert_eq!(inodes(&listing)[0], 11);
        assert_eq!(listing.problems.len(), 1, "{:?}", listing.problems);
        assert!(
            listing.problems[0].starts_with(
                "netlink dump of tcp failed after 1 socket (undecodable sock_diag reply: \
                 netlink message length"
            ),
            "{:?}",
            listing.problems
        );
    }

    #[test]
    fn a_caller_that_stops_gets_no_more() {
        let mut socket = DiagSocket::new(Script::new(vec![
            Reply::Datagram([tcp(1, 0, 80, 11), tcp(1, 0, 81, 12)].concat()),
            Reply::Datagram(done(1, 0, 0)),
        ]));
        let mut records = Vec::new();
        let problems = list_with(&Query::all(), Source::Auto, Some(&mut socket), &mut |r| {
            records.push(r.inode);
            ControlFlow::Break(())
        });
        assert_eq!(records, [11], "no other table is listed");
        assert!(problems.is_empty());
    }

    #[test]
    fn a_refusal_before_any_record_is_a_quiet_fallback() {
        let (_listener, inode) = listener();
        let listing = list_over(Source::Auto, vec![Reply::Datagram(error(1, -2))]);
        assert!(inodes(&listing).contains(&inode));
        assert!(listing.problems.is_empty(), "{:?}", listing.problems);
        let listing = list_over(Source::Netlink, vec![Reply::Datagram(error(1, -2))]);
        assert!(listing.records.is_empty());
        assert_eq!(
            listing.problems,
            ["netlink dump of tcp: the kernel has no sock_diag handler for it"]
        );
    }

    #[test]
    fn an_interrupted_dump_is_made_again_and_lists_each_socket_once() {
        let listing = list_over(
            Source::Auto,
            vec![
                Reply::Datagram([tcp(1, NLM_F_DUMP_INTR, 80, 11), done(1, 0, 0)].concat()),
                Reply::Datagram([tcp(2, 0, 80, 11), tcp(2, 0, 81, 22)].concat()),
                Reply::Datagram(done(2, 0, 0)),
            ],
        );
        assert_eq!(inodes(&listing), [11, 22]);
        assert!(listing.problems.is_empty(), "{:?}", listing.problems);
    }

    #[test]
    fn a_dump_interrupted_each_time_is_listed_with_a_warning() {
        let replies = (1..=3)
            .map(|seq| {
                let inode = 10 * seq + 1;
                Reply::Datagram(
                    [
                        tcp(seq, 0, 79, 5),
                        tcp(seq, 0, 80, inode),
                        done(seq, NLM_F_DUMP_INTR, 0),
                    ]
                    .concat(),
                )
            })
            .collect();
        let listing = list_over(Source::Auto, replies);
        assert_eq!(
            inodes(&listing),
            [5, 11, 21, 31],
            "what each dump gave, once"
        );
        assert_eq!(
            listing.problems,
            [
                "netlink dump of tcp: the kernel's socket table changed during each of 3 dumps, \
                 so the list of tcp may miss a socket"
            ]
        );
    }
}
