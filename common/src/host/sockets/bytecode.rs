//! inet_diag filter programs (include/uapi/linux/inet_diag.h, `struct inet_diag_bc_op`): port
//! conditions and ss-style filter expressions ([`Node`]) compiled so that the kernel skips
//! non-matching sockets before building a record, as `ss` does with its filter expressions
//! (misc/ss.c `ssfilter_bytecompile`).
//!
//! A program accepts a socket when execution runs exactly off its end and rejects it when a
//! jump lands 4 bytes past the end. Every op is 4 bytes: code, `yes` (u8) and `no` (u16)
//! offsets relative to the op; port comparisons carry the port in a second op's `no`, address
//! conditions a `struct inet_diag_hostcond` (family, prefix length, port, address). The
//! kernel's audit only accepts jump targets on the chain of `yes` offsets from the start,
//! which is why alternatives are joined with a JMP op (taken as `no`) the way ss does.

use std::net::IpAddr;

const BC_JMP: u8 = 1;
const BC_S_GE: u8 = 2;
const BC_S_LE: u8 = 3;
const BC_D_GE: u8 = 4;
const BC_D_LE: u8 = 5;
const BC_S_COND: u8 = 7;
const BC_D_COND: u8 = 8;
const BC_S_EQ: u8 = 11;
const BC_D_EQ: u8 = 12;

/// Which end of a connection a port condition looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Local,
    Remote,
    Either,
}

/// One op as (code, yes, no), before encoding; `no` is relative to the op.
#[derive(Debug, Clone, Copy)]
struct Op {
    code: u8,
    yes: u8,
    no: u16,
}

/// A program under construction: ops, each followed by its operand (a port, a host
/// condition, or nothing).
#[derive(Debug, Clone, Default)]
struct Program {
    ops: Vec<(Op, Vec<u8>)>,
}

/// A port compared with: the `no` of a second op.
fn port_operand(port: u16) -> Vec<u8> {
    let mut operand = vec![0, 0];
    operand.extend_from_slice(&port.to_ne_bytes());
    operand
}

impl Program {
    fn len(&self) -> usize {
        self.ops.iter().map(|(_, operand)| 4 + operand.len()).sum()
    }

    /// Offsets of each op from the start.
    fn positions(&self) -> Vec<usize> {
        let mut at = 0;
        self.ops
            .iter()
            .map(|(_, operand)| {
                let here = at;
                at += 4 + operand.len();
                here
            })
            .collect()
    }

    /// One condition with its operand: accept by running off the end, reject 4 past it.
    fn test(code: u8, operand: Vec<u8>) -> Option<Self> {
        let size = 4 + operand.len();
        Some(Self {
            ops: vec![(
                Op {
                    code,
                    yes: u8::try_from(size).ok()?,
                    no: u16::try_from(size + 4).ok()?,
                },
                operand,
            )],
        })
    }

    /// `not self`: a JMP appended after self turns its acceptance (reaching the JMP) into a
    /// rejection, and its rejection (4 past its end, now the new end) into acceptance.
    fn not(mut self) -> Self {
        self.ops.push((
            Op {
                code: BC_JMP,
                yes: 4,
                no: 8,
            },
            Vec::new(),
        ));
        self
    }

    /// Accepts sockets whose port at `end` (Local or Remote) is in `first..=last`.
    fn range(end: End, first: u16, last: u16) -> Self {
        let (eq, ge, le) = if end == End::Local {
            (BC_S_EQ, BC_S_GE, BC_S_LE)
        } else {
            (BC_D_EQ, BC_D_GE, BC_D_LE)
        };
        if first == last {
            // yes: run off the end (accept); no: 4 past the end (reject).
            return Self {
                ops: vec![(
                    Op {
                        code: eq,
                        yes: 8,
                        no: 12,
                    },
                    port_operand(first),
                )],
            };
        }
        Self {
            ops: vec![
                (
                    Op {
                        code: ge,
                        yes: 8,
                        no: 20,
                    },
                    port_operand(first),
                ),
                (
                    Op {
                        code: le,
                        yes: 8,
                        no: 12,
                    },
                    port_operand(last),
                ),
            ],
        }
    }

    /// `self or other`: where self rejects, other runs; where self accepts, a JMP skips other.
    fn or(mut self, other: Self) -> Option<Self> {
        let skip = u16::try_from(other.len() + 4).ok()?;
        self.ops.push((
            Op {
                code: BC_JMP,
                yes: 4,
                no: skip,
            },
            Vec::new(),
        ));
        self.ops.extend(other.ops);
        Some(self)
    }

    /// `self and other`: self's rejections move to the end of other.
    fn and(mut self, other: Self) -> Option<Self> {
        let len = self.len();
        let extra = u16::try_from(other.len()).ok()?;
        let positions = self.positions();
        for ((op, _), at) in self.ops.iter_mut().zip(positions) {
            if at + usize::from(op.no) == len + 4 {
                op.no = op.no.checked_add(extra)?;
            }
        }
        self.ops.extend(other.ops);
        Some(self)
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len());
        for (op, operand) in &self.ops {
            out.push(op.code);
            out.push(op.yes);
            out.extend_from_slice(&op.no.to_ne_bytes());
            out.extend_from_slice(operand);
        }
        out
    }
}

/// "The port at this end is in one of these inclusive ranges".
pub type Condition = (End, Vec<(u16, u16)>);

/// Compiles "the port at `end` is in one of `ranges`" for each condition, all of which must
/// hold. None when a condition has no ranges or the program would not fit the kernel's
/// 16-bit jumps; the caller then filters on its own.
pub fn compile(conditions: &[Condition]) -> Option<Vec<u8>> {
    let mut whole: Option<Program> = None;
    for (end, ranges) in conditions {
        let ends: &[End] = match end {
            End::Either => &[End::Local, End::Remote],
            End::Local => &[End::Local],
            End::Remote => &[End::Remote],
        };
        let mut alternatives: Option<Program> = None;
        for &end in ends {
            for &(first, last) in ranges {
                let range = Program::range(end, first, last);
                alternatives = Some(match alternatives {
                    None => range,
                    Some(before) => before.or(range)?,
                });
            }
        }
        let alternatives = alternatives?;
        whole = Some(match whole {
            None => alternatives,
            Some(before) => before.and(alternatives)?,
        });
    }
    let program = whole?;
    (program.len() <= usize::from(u16::MAX) - 4).then(|| program.encode())
}

/// Which end of a socket a [`Node`] condition looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Local,
    Remote,
}

/// "The address at this end is in `prefix` (any, if None) and its port is `port` (any, if
/// None)": ss's `src`, `dst`, `sport =` and `dport =`. A v4 prefix also takes the v4-mapped
/// addresses of v6 sockets, as the kernel's check does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCondition {
    pub prefix: Option<(IpAddr, u8)>,
    pub port: Option<u16>,
}

/// A filter expression as the kernel can run it: ss's `ssfilter` tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Not(Box<Node>),
    /// The port at this end is at least this.
    PortAtLeast(Side, u16),
    /// The port at this end is at most this.
    PortAtMost(Side, u16),
    Host(Side, HostCondition),
}

impl HostCondition {
    fn accepts(&self, (address, port): (IpAddr, u16)) -> bool {
        if self.port.is_some_and(|wanted| wanted != port) {
            return false;
        }
        let Some((network, len)) = self.prefix else {
            return true;
        };
        let (address, network): (Vec<u8>, Vec<u8>) = match (address, network) {
            (IpAddr::V4(a), IpAddr::V4(n)) => (a.octets().into(), n.octets().into()),
            (IpAddr::V6(a), IpAddr::V6(n)) => (a.octets().into(), n.octets().into()),
            (IpAddr::V6(a), IpAddr::V4(n)) => match a.to_ipv4_mapped() {
                Some(a) => (a.octets().into(), n.octets().into()),
                None => return false,
            },
            (IpAddr::V4(_), IpAddr::V6(_)) => return false,
        };
        let len = usize::from(len);
        (0..len).all(|bit| (address[bit / 8] ^ network[bit / 8]) & (0x80 >> (bit % 8)) == 0)
    }
}

impl Node {
    /// "The port at `end` is in one of `ranges`"; None for no ranges.
    pub fn port_ranges(end: End, ranges: &[(u16, u16)]) -> Option<Self> {
        let sides: &[Side] = match end {
            End::Local => &[Side::Local],
            End::Remote => &[Side::Remote],
            End::Either => &[Side::Local, Side::Remote],
        };
        sides
            .iter()
            .flat_map(|&side| {
                ranges.iter().map(move |&(first, last)| {
                    if first == last {
                        Self::Host(
                            side,
                            HostCondition {
                                prefix: None,
                                port: Some(first),
                            },
                        )
                    } else {
                        Self::And(
                            Box::new(Self::PortAtLeast(side, first)),
                            Box::new(Self::PortAtMost(side, last)),
                        )
                    }
                })
            })
            .reduce(|either, next| Self::Or(Box::new(either), Box::new(next)))
    }

    /// Whether a socket with these ends (address, port) is one the expression selects, as
    /// the kernel would decide it.
    pub fn accepts(&self, local: (IpAddr, u16), remote: (IpAddr, u16)) -> bool {
        let end = |side: &Side| if *side == Side::Local { local } else { remote };
        match self {
            Self::And(a, b) => a.accepts(local, remote) && b.accepts(local, remote),
            Self::Or(a, b) => a.accepts(local, remote) || b.accepts(local, remote),
            Self::Not(a) => !a.accepts(local, remote),
            Self::PortAtLeast(side, port) => end(side).1 >= *port,
            Self::PortAtMost(side, port) => end(side).1 <= *port,
            Self::Host(side, condition) => condition.accepts(end(side)),
        }
    }
}

/// `struct inet_diag_hostcond` and its address.
fn host_operand(condition: &HostCondition) -> Vec<u8> {
    let port = condition.port.map_or(-1, i32::from);
    let (family, prefix_len, address) = match condition.prefix {
        None => (0, 0, Vec::new()),
        Some((IpAddr::V4(address), len)) => (super::codec::AF_INET, len, address.octets().to_vec()),
        Some((IpAddr::V6(address), len)) => {
            (super::codec::AF_INET6, len, address.octets().to_vec())
        }
    };
    let mut operand = vec![family, prefix_len, 0, 0];
    operand.extend_from_slice(&port.to_ne_bytes());
    operand.extend_from_slice(&address);
    operand
}

fn program_of(node: &Node) -> Option<Program> {
    Some(match node {
        Node::And(left, right) => program_of(left)?.and(program_of(right)?)?,
        Node::Or(left, right) => program_of(left)?.or(program_of(right)?)?,
        Node::Not(inner) => program_of(inner)?.not(),
        Node::PortAtLeast(side, port) => {
            let code = if *side == Side::Local {
                BC_S_GE
            } else {
                BC_D_GE
            };
            Program::test(code, port_operand(*port))?
        }
        Node::PortAtMost(side, port) => {
            let code = if *side == Side::Local {
                BC_S_LE
            } else {
                BC_D_LE
            };
            Program::test(code, port_operand(*port))?
        }
        Node::Host(side, condition) => {
            let code = if *side == Side::Local {
                BC_S_COND
            } else {
                BC_D_COND
            };
            Program::test(code, host_operand(condition))?
        }
    })
}

/// Compiles a filter expression; None when it would not fit the kernel's 16-bit jumps (the
/// caller then filters on its own).
pub fn compile_expression(node: &Node) -> Option<Vec<u8>> {
    let program = program_of(node)?;
    (program.len() <= usize::from(u16::MAX) - 4).then(|| program.encode())
}

/// Turns a sorted run of ports into ranges.
pub fn ranges(ports: impl IntoIterator<Item = u16>) -> Vec<(u16, u16)> {
    let mut out: Vec<(u16, u16)> = Vec::new();
    for port in ports {
        match out.last_mut() {
            Some((_, last)) if u32::from(*last) + 1 == u32::from(port) => *last = port,
            _ => out.push((port, port)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket's ends as the kernel's filter sees them.
    struct Entry {
        v6: bool,
        local: [u8; 16],
        remote: [u8; 16],
        sport: u16,
        dport: u16,
    }

    fn entry(local: IpAddr, sport: u16, remote: IpAddr, dport: u16) -> Entry {
        let bytes = |address: IpAddr| match address {
            IpAddr::V4(a) => {
                let mut out = [0; 16];
                out[..4].copy_from_slice(&a.octets());
                out
            }
            IpAddr::V6(a) => a.octets(),
        };
        Entry {
            v6: local.is_ipv6(),
            local: bytes(local),
            remote: bytes(remote),
            sport,
            dport,
        }
    }

    /// The kernel's bitstring_match over the first `bits` bits.
    fn prefix_match(a: &[u8], b: &[u8], bits: usize) -> bool {
        (0..bits).all(|bit| (a[bit / 8] ^ b[bit / 8]) & (0x80 >> (bit % 8)) == 0)
    }

    /// The kernel's host condition check (inet_diag_bc_run's S_COND and D_COND).
    fn host_matches(operand: &[u8], entry: &Entry, local: bool) -> bool {
        let family = operand[0];
        let prefix = usize::from(operand[1]);
        let port = i32::from_ne_bytes(operand[4..8].try_into().unwrap());
        let (address, own_port) = if local {
            (&entry.local, entry.sport)
        } else {
            (&entry.remote, entry.dport)
        };
        if port != -1 && port != i32::from(own_port) {
            return false;
        }
        let wanted = &operand[8..];
        let own_family = if entry.v6 { AF_INET6 } else { AF_INET };
        if family != 0 && family != own_family {
            return entry.v6
                && family == AF_INET
                && address[..10] == [0; 10]
                && address[10..12] == [0xff, 0xff]
                && prefix_match(&address[12..], wanted, prefix);
        }
        prefix == 0 || prefix_match(address, wanted, prefix)
    }

    /// The kernel's inet_diag_bc_run, for checking programs without a kernel.
    fn run_on(program: &[u8], entry: &Entry) -> bool {
        let mut at = 0usize;
        let len = program.len();
        while at < len {
            let code = program[at];
            let yes = usize::from(program[at + 1]);
            let no = usize::from(u16::from_ne_bytes([program[at + 2], program[at + 3]]));
            let port = || u16::from_ne_bytes([program[at + 6], program[at + 7]]);
            let (sport, dport) = (entry.sport, entry.dport);
            let ok = match code {
                BC_JMP => false,
                BC_S_GE => sport >= port(),
                BC_S_LE => sport <= port(),
                BC_D_GE => dport >= port(),
                BC_D_LE => dport <= port(),
                BC_S_EQ => sport == port(),
                BC_D_EQ => dport == port(),
                BC_S_COND | BC_D_COND => {
                    host_matches(&program[at + 4..at + yes], entry, code == BC_S_COND)
                }
                other => panic!("op {other}"),
            };
            at += if ok { yes } else { no };
        }
        at == len
    }

    fn run(program: &[u8], sport: u16, dport: u16) -> bool {
        let loopback = IpAddr::from([127, 0, 0, 1]);
        run_on(program, &entry(loopback, sport, loopback, dport))
    }

    /// The kernel's inet_diag_bc_audit and valid_cc: every jump lands on the yes chain, at
    /// the end, or 4 past it.
    fn audit(program: &[u8]) {
        let len = program.len();
        let mut chain = vec![0];
        let mut at = 0;
        while at < len {
            let yes = usize::from(program[at + 1]);
            assert!(yes >= 4 && yes % 4 == 0);
            at += yes;
            chain.push(at);
        }
        assert_eq!(at, len, "the yes chain ends at the end");
        let mut at = 0;
        while at < len {
            let code = program[at];
            let yes = usize::from(program[at + 1]);
            let no = usize::from(u16::from_ne_bytes([program[at + 2], program[at + 3]]));
            let min = match code {
                BC_JMP => 4,
                BC_S_COND | BC_D_COND => {
                    12 + if program[at + 4] == AF_INET6 {
                        16
                    } else {
                        usize::from(program[at + 4] == AF_INET) * 4
                    }
                }
                _ => 8,
            };
            assert!(yes >= min && no >= min && no % 4 == 0, "op at {at}");
            let target = at + no;
            assert!(target <= len + 4, "op at {at} jumps past the end");
            assert!(
                target >= len || chain.contains(&target),
                "op at {at} lands mid-op"
            );
            at += yes;
        }
    }

    #[test]
    fn programs_match_what_a_userspace_filter_would() {
        let cases: Vec<Vec<Condition>> = vec![
            vec![(End::Local, vec![(22, 22)])],
            vec![(End::Either, vec![(22, 22), (80, 90), (443, 443)])],
            vec![
                (End::Local, vec![(20, 30)]),
                (End::Remote, vec![(5000, 5000), (7000, 7100)]),
            ],
            vec![(End::Either, vec![(1, 1024)]), (End::Local, vec![(80, 80)])],
        ];
        let sample = [
            1, 21, 22, 23, 25, 30, 31, 80, 85, 90, 91, 443, 1024, 5000, 7050, 65535,
        ];
        for conditions in cases {
            let program = compile(&conditions).unwrap();
            audit(&program);
            for sport in sample {
                for dport in sample {
                    let inside = |ranges: &[(u16, u16)], port: u16| {
                        ranges.iter().any(|&(a, b)| (a..=b).contains(&port))
                    };
                    let expected = conditions.iter().all(|(end, ranges)| match end {
                        End::Local => inside(ranges, sport),
                        End::Remote => inside(ranges, dport),
                        End::Either => inside(ranges, sport) || inside(ranges, dport),
                    });
                    assert_eq!(
                        run(&program, sport, dport),
                        expected,
                        "{conditions:?} sport {sport} dport {dport}"
                    );
                }
            }
        }
    }

    #[test]
    fn too_large_or_empty_conditions_are_left_to_userspace() {
        let every_other: Vec<(u16, u16)> = (1..20_000).step_by(2).map(|p| (p, p)).collect();
        assert!(compile(&[(End::Either, every_other)]).is_none());
        assert!(compile(&[(End::Local, vec![])]).is_none());
        assert!(compile(&[]).is_none());
    }

    use super::super::codec::{AF_INET, AF_INET6};

    fn meaning(node: &Node, e: &Entry) -> bool {
        let address = |bytes: &[u8; 16]| {
            if e.v6 {
                IpAddr::from(*bytes)
            } else {
                IpAddr::from([bytes[0], bytes[1], bytes[2], bytes[3]])
            }
        };
        node.accepts((address(&e.local), e.sport), (address(&e.remote), e.dport))
    }

    #[test]
    fn expressions_compile_to_programs_that_mean_the_same() {
        let host = |side, prefix: Option<(&str, u8)>, port| {
            Node::Host(
                side,
                HostCondition {
                    prefix: prefix.map(|(a, l)| (a.parse().unwrap(), l)),
                    port,
                },
            )
        };
        let and = |a, b| Node::And(Box::new(a), Box::new(b));
        let or = |a, b| Node::Or(Box::new(a), Box::new(b));
        let not = |a| Node::Not(Box::new(a));
        let cases = vec![
            host(Side::Remote, None, Some(443)),
            or(
                host(Side::Remote, None, Some(443)),
                host(Side::Local, None, Some(22)),
            ),
            not(host(Side::Local, Some(("10.0.0.0", 8)), None)),
            and(
                not(Node::PortAtLeast(Side::Local, 1024)),
                or(
                    host(Side::Remote, Some(("::1", 128)), None),
                    Node::PortAtMost(Side::Remote, 80),
                ),
            ),
            not(or(
                and(
                    host(Side::Local, Some(("127.0.0.0", 8)), Some(22)),
                    not(host(Side::Remote, None, Some(80))),
                ),
                not(Node::PortAtLeast(Side::Remote, 5000)),
            )),
        ];
        let addresses: Vec<IpAddr> = [
            "127.0.0.1",
            "10.1.2.3",
            "::1",
            "::ffff:10.0.0.9",
            "2001:db8::1",
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
        let ports = [1, 22, 80, 443, 1023, 1024, 5000, 65535];
        for node in &cases {
            let program = compile_expression(node).unwrap();
            audit(&program);
            for &local in &addresses {
                for &remote in addresses.iter().filter(|a| a.is_ipv6() == local.is_ipv6()) {
                    for sport in ports {
                        for dport in ports {
                            let e = entry(local, sport, remote, dport);
                            assert_eq!(
                                run_on(&program, &e),
                                meaning(node, &e),
                                "{node:?} {local}:{sport} {remote}:{dport}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn port_ranges_as_nodes_mean_what_compile_does() {
        let loopback = IpAddr::from([127, 0, 0, 1]);
        for (end, ranges) in [
            (End::Either, vec![(22, 22), (80, 90)]),
            (End::Remote, vec![(1, 1024)]),
        ] {
            let node = Node::port_ranges(end, &ranges).unwrap();
            let program = compile(&[(end, ranges.clone())]).unwrap();
            for sport in [1, 22, 23, 85, 91, 1024, 1025] {
                for dport in [1, 22, 23, 85, 91, 1024, 1025] {
                    assert_eq!(
                        node.accepts((loopback, sport), (loopback, dport)),
                        run(&program, sport, dport),
                        "{end:?} {ranges:?} {sport} {dport}"
                    );
                }
            }
        }
        assert!(Node::port_ranges(End::Local, &[]).is_none());
    }

    #[test]
    fn ports_coalesce_into_ranges() {
        assert_eq!(ranges([1, 2, 3, 5, 7, 8]), [(1, 3), (5, 5), (7, 8)]);
        assert_eq!(ranges([65534, 65535]), [(65534, 65535)]);
        assert!(ranges([]).is_empty());
    }
}
