//! The ss-style selection: protocols, families and states become the kernel query (the
//! kernel skips sockets in other states), ports, users and pids are checked here.

use std::collections::HashSet;

use common::contract::error::{Error, Result};
use common::contract::record::{SocketProto, SocketRecord};
use common::host::sockets::bytecode::{self, End};
use common::host::sockets::{PortCondition, Query};
use common::services::ports::{PortList, Proto};
use common::services::{self, ServiceDb};

use crate::cli::Cli;
use crate::expr::{self, Selection};

/// What ss shows with no state asked for (misc/ss.c `SS_CONN`): all but listen, unconn,
/// time-wait and syn-recv. Narrower than its `connected` word, which keeps the last two.
const DEFAULT_STATES: u32 = Query::ALL_STATES & !(1 << 10 | 1 << 7 | 1 << 6 | 1 << 3);

/// What `-l` shows: listening sockets, and unconnected ones (a UDP server), as ss -l.
const LISTENING: u32 = 1 << 10 | 1 << 7;

/// The protocols, families, states and extras to ask the kernel for.
pub fn query(cli: &Cli) -> Result<Query> {
    let mut query = Query::all();
    let chosen: Vec<SocketProto> = [
        (cli.tcp, SocketProto::Tcp),
        (cli.udp, SocketProto::Udp),
        (cli.raw, SocketProto::Raw),
        (cli.unix, SocketProto::Unix),
    ]
    .into_iter()
    .filter_map(|(on, proto)| on.then_some(proto))
    .collect();
    if !chosen.is_empty() {
        query.protos = chosen;
    } else if cli.ipv4 || cli.ipv6 {
        // -4 and -6 ask for internet sockets, as in ss.
        query.protos.retain(|&p| p != SocketProto::Unix);
    }
    if cli.ipv4 || cli.ipv6 {
        query.ipv4 = cli.ipv4;
        query.ipv6 = cli.ipv6;
    }
    let filter = Filter::from_cli(cli)?;
    query.states = if let Some(states) = filter.selection.states {
        if cli.state.is_some() {
            return Err(Error::usage(
                "filter: 'state' words and --state do not go together",
            ));
        }
        states
    } else if cli.all {
        Query::ALL_STATES
    } else if cli.listening {
        LISTENING
    } else if let Some(list) = &cli.state {
        parse_states(list)?
    } else {
        DEFAULT_STATES
    };
    query.tcp_info = cli.info;
    query.memory = cli.memory;
    query.ports = filter.kernel_conditions();
    if filter.selection.expression.is_some() {
        // UNIX sockets have no addresses or ports: an expression selects none of them.
        query.protos.retain(|&p| p != SocketProto::Unix);
    }
    query.expression = filter.selection.expression;
    Ok(query)
}

/// Parses `--state`: ss's state names and groups, comma-separated, meaning what they mean
/// as `state` words.
pub fn parse_states(list: &str) -> Result<u32> {
    list.split(',').try_fold(0, |mask, name| {
        expr::state_mask(name.trim())
            .map(|states| mask | states)
            .map_err(|why| Error::usage(format!("--state: {why} (see --help)")))
    })
}

/// A port list with whether its items name protocols (`T:22`), in which case a socket must
/// match within its own protocol.
#[derive(Debug, Clone)]
pub struct PortFilter {
    list: PortList,
    by_proto: bool,
}

impl PortFilter {
    fn parse(option: &str, text: &str) -> Result<Self> {
        let list = PortList::parse(text, Proto::Tcp)
            .map_err(|why| Error::usage(format!("--{option} '{text}': {why}")))?;
        Ok(Self {
            list,
            by_proto: text.contains(':'),
        })
    }

    /// The ranges a socket of `proto` must have its port in.
    fn ranges(&self, proto: Proto) -> Vec<(u16, u16)> {
        if self.by_proto {
            return bytecode::ranges(self.list.ports(proto).iter());
        }
        let mut ports: Vec<u16> = Proto::ALL
            .into_iter()
            .flat_map(|p| self.list.ports(p).iter())
            .collect();
        ports.sort_unstable();
        ports.dedup();
        bytecode::ranges(ports)
    }

    fn matches(&self, proto: SocketProto, port: Option<u16>) -> bool {
        let Some(port) = port else { return false };
        // Only TCP and UDP have ports; a raw socket's "port" is its protocol number.
        let proto = match proto {
            SocketProto::Tcp => Proto::Tcp,
            SocketProto::Udp => Proto::Udp,
            SocketProto::Raw | SocketProto::Unix => return false,
        };
        if self.by_proto {
            self.list.ports(proto).contains(port)
        } else {
            self.list.contains_any(port)
        }
    }
}

/// The checks made on each socket the kernel returned.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub port: Option<PortFilter>,
    pub sport: Option<PortFilter>,
    pub dport: Option<PortFilter>,
    pub uids: Option<HashSet<u32>>,
    /// `--user` names that are no user: each reported, the rest listed (status 1), as
    /// ps and proctree do.
    pub unknown_users: Vec<String>,
    /// Applied to owners, once they are known.
    pub pids: Option<HashSet<u32>>,
    /// ss's filter expression (its states are the query's).
    pub selection: Selection,
}

impl Filter {
    pub fn from_cli(cli: &Cli) -> Result<Self> {
        let ports = |option: &str, text: &Option<String>| {
            text.as_deref()
                .map(|text| PortFilter::parse(option, text))
                .transpose()
        };
        let (uids, unknown_users) = match cli.user.as_deref().map(parse_users) {
            Some((uids, unknown)) => (Some(uids), unknown),
            None => (None, Vec::new()),
        };
        Ok(Self {
            port: ports("port", &cli.port)?,
            sport: ports("sport", &cli.sport)?,
            dport: ports("dport", &cli.dport)?,
            uids,
            unknown_users,
            pids: cli.pid.as_deref().map(parse_pids).transpose()?,
            selection: expr::parse(&cli.filter, &service_port)
                .map_err(|why| Error::usage(format!("filter: {why}")))?,
        })
    }

    /// The port filters as conditions for the kernel's filter program.
    pub fn kernel_conditions(&self) -> Vec<PortCondition> {
        [
            (End::Either, &self.port),
            (End::Local, &self.sport),
            (End::Remote, &self.dport),
        ]
        .into_iter()
        .filter_map(|(end, filter)| {
            let filter = filter.as_ref()?;
            Some(PortCondition {
                end,
                tcp: filter.ranges(Proto::Tcp),
                udp: filter.ranges(Proto::Udp),
            })
        })
        .collect()
    }

    pub fn matches(&self, record: &SocketRecord) -> bool {
        if !self.selection.matches(record) {
            return false;
        }
        let proto = record.proto;
        if let Some(port) = &self.port {
            if !port.matches(proto, record.local_port) && !port.matches(proto, record.remote_port) {
                return false;
            }
        }
        if self
            .sport
            .as_ref()
            .is_some_and(|p| !p.matches(proto, record.local_port))
        {
            return false;
        }
        if self
            .dport
            .as_ref()
            .is_some_and(|p| !p.matches(proto, record.remote_port))
        {
            return false;
        }
        if let Some(uids) = &self.uids {
            if !record.uid.is_some_and(|uid| uids.contains(&uid)) {
                return false;
            }
        }
        true
    }
}

/// A service name's port, as ss looks it up with getservbyname: from the first service
/// table that has the name for TCP or UDP (/etc/services, then IANA's registry), read only
/// when a name is used.
fn service_port(name: &str) -> std::result::Result<u16, String> {
    let db = ServiceDb::load(&services::Options::default()).map_err(|e| e.to_string())?;
    let mut ports: Vec<u16> = db
        .by_name_first(name, &[Proto::Tcp, Proto::Udp])
        .into_iter()
        .map(|(port, _)| port)
        .collect();
    ports.dedup();
    match ports[..] {
        [port] => Ok(port),
        [] => Err(format!("'{name}' is not a port number or service name")),
        _ => Err(format!(
            "the service name '{name}' is ambiguous: ports {ports:?}"
        )),
    }
}

fn parse_pids(list: &str) -> Result<HashSet<u32>> {
    list.split(',')
        .map(|item| {
            item.trim()
                .parse::<u32>()
                .map_err(|_| Error::usage(format!("--pid: '{item}' is not a process id")))
        })
        .collect()
}

/// The uids of a `--user` list, and the message of each item that is no user.
fn parse_users(list: &str) -> (HashSet<u32>, Vec<String>) {
    let mut uids = HashSet::new();
    let mut unknown = Vec::new();
    for item in list.split(',') {
        match common::host::users::resolve(item.trim()) {
            Ok(uid) => {
                uids.insert(uid);
            }
            Err(why) => unknown.push(why),
        }
    }
    (uids, unknown)
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::contract::record::{Family, SockType, SocketState};

    #[test]
    fn states_parse_names_and_groups() {
        assert_eq!(parse_states("listen").unwrap(), 1 << 10);
        assert_eq!(
            parse_states("established,time-wait").unwrap(),
            1 << 1 | 1 << 6
        );
        assert_eq!(parse_states("ESTAB").unwrap(), 1 << 1);
        assert_eq!(parse_states("all").unwrap(), Query::ALL_STATES);
        assert_eq!(parse_states("listening").unwrap(), 1 << 10);
        assert!(parse_states("").is_err());
        assert!(parse_states("established,bogus").is_err());
        // The groups are ss's: `connected` is all but listening and closed, time-wait and
        // syn-recv included, unlike what ss (and sockls) show with no state asked for.
        let states = |names: &[SocketState]| names.iter().map(|s| 1 << s.number()).sum::<u32>();
        let connected = Query::ALL_STATES & !states(&[SocketState::Listen, SocketState::Unconn]);
        assert_eq!(parse_states("connected").unwrap(), connected);
        assert_eq!(
            DEFAULT_STATES,
            connected & !states(&[SocketState::TimeWait, SocketState::SynRecv])
        );
        assert_eq!(
            parse_states("synchronized").unwrap(),
            connected & !states(&[SocketState::SynSent])
        );
        let bucket = states(&[
            SocketState::SynRecv,
            SocketState::NewSynRecv,
            SocketState::TimeWait,
        ]);
        assert_eq!(parse_states("bucket").unwrap(), bucket);
        assert_eq!(parse_states("big").unwrap(), Query::ALL_STATES & !bucket);
        assert_eq!(
            parse_states("syn-recv").unwrap(),
            parse_states("new-syn-recv").unwrap()
        );
        for state in SocketState::ALL {
            assert_ne!(
                parse_states(state.as_str()).unwrap() & 1 << state.number(),
                0
            );
        }
    }

    fn tcp(local: u16, remote: u16) -> SocketRecord {
        let mut record = SocketRecord::new(
            SocketProto::Tcp,
            Family::Ipv4,
            SockType::Stream,
            SocketState::Established,
        );
        record.local_port = Some(local);
        record.remote_port = Some(remote);
        record.uid = Some(1000);
        record
    }

    #[test]
    fn port_filters_match_either_end_or_one() {
        let filter = Filter {
            port: Some(PortFilter::parse("port", "22").unwrap()),
            ..Filter::default()
        };
        assert!(filter.matches(&tcp(22, 5000)));
        assert!(filter.matches(&tcp(5000, 22)));
        assert!(!filter.matches(&tcp(5000, 5001)));
        let filter = Filter {
            sport: Some(PortFilter::parse("sport", "20-30").unwrap()),
            dport: Some(PortFilter::parse("dport", "U:5000").unwrap()),
            ..Filter::default()
        };
        assert!(!filter.matches(&tcp(22, 5000)), "U: limits dport to UDP");
        assert!(PortFilter::parse("port", "0").is_err());
    }

    #[test]
    fn service_names_are_ports() {
        assert_eq!(service_port("https"), Ok(443));
        assert_eq!(service_port("SSH"), Ok(22));
        assert!(service_port("no-such-service").is_err());
    }

    #[test]
    fn user_and_pid_lists() {
        assert_eq!(parse_users("0,root"), (HashSet::from([0]), Vec::new()));
        assert_eq!(
            parse_users("root,no-such-user-here"),
            (
                HashSet::from([0]),
                vec!["--user 'no-such-user-here': no such user".to_owned()]
            )
        );
        assert_eq!(parse_pids("1, 2").unwrap(), HashSet::from([1, 2]));
        assert!(parse_pids("x").is_err());
        let filter = Filter {
            uids: Some(HashSet::from([0])),
            ..Filter::default()
        };
        assert!(!filter.matches(&tcp(1, 2)));
    }
}
