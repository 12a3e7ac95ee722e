//! inet_diag filter programs (include/uapi/linux/inet_diag.h, `struct inet_diag_bc_op`): port
//! conditions compiled so that the kernel skips non-matching sockets before building a
//! record, as `ss` does with its filter expressions (misc/ss.c `ssfilter_bytecompile`).
//!
//! A program accepts a socket when execution runs exactly off its end and rejects it when a
//! jump lands 4 bytes past the end. Every op is 4 bytes: code, `yes` (u8) and `no` (u16)
//! offsets relative to the op; port comparisons carry the port in a second op's `no`. The
//! kernel's audit only accepts jump targets on the chain of `yes` offsets from the start,
//! which is why alternatives are joined with a JMP op (taken as `no`) the way ss does.

const BC_JMP: u8 = 1;
const BC_S_GE: u8 = 2;
const BC_S_LE: u8 = 3;
const BC_D_GE: u8 = 4;
const BC_D_LE: u8 = 5;
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

/// A program under construction: ops, each followed by its port when it compares one.
#[derive(Debug, Clone, Default)]
struct Program {
    /// (op, port operand) pairs; the operand takes another 4 bytes.
    ops: Vec<(Op, Option<u16>)>,
}

impl Program {
    fn len(&self) -> usize {
        self.ops
            .iter()
            .map(|(_, port)| if port.is_some() { 8 } else { 4 })
            .sum()
    }

    /// Offsets of each op from the start.
    fn positions(&self) -> Vec<usize> {
        let mut at = 0;
        self.ops
            .iter()
            .map(|(_, port)| {
                let here = at;
                at += if port.is_some() { 8 } else { 4 };
                here
            })
            .collect()
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
                    Some(first),
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
                    Some(first),
                ),
                (
                    Op {
                        code: le,
                        yes: 8,
                        no: 12,
                    },
                    Some(last),
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
            None,
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
        for (op, port) in &self.ops {
            out.push(op.code);
            out.push(op.yes);
            out.extend_from_slice(&op.no.to_ne_bytes());
            if let Some(port) = port {
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&port.to_ne_bytes());
            }
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

    /// The kernel's inet_diag_bc_run, for checking programs without a kernel.
    fn run(program: &[u8], sport: u16, dport: u16) -> bool {
        let mut at = 0usize;
        let len = program.len();
        while at < len {
            let code = program[at];
            let yes = usize::from(program[at + 1]);
            let no = usize::from(u16::from_ne_bytes([program[at + 2], program[at + 3]]));
            let port = || u16::from_ne_bytes([program[at + 6], program[at + 7]]);
            let ok = match code {
                BC_JMP => false,
                BC_S_GE => sport >= port(),
                BC_S_LE => sport <= port(),
                BC_D_GE => dport >= port(),
                BC_D_LE => dport <= port(),
                BC_S_EQ => sport == port(),
                BC_D_EQ => dport == port(),
                other => panic!("op {other}"),
            };
            at += if ok { yes } else { no };
        }
        at == len
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
            let min = if code == BC_JMP { 4 } else { 8 };
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

    #[test]
    fn ports_coalesce_into_ranges() {
        assert_eq!(ranges([1, 2, 3, 5, 7, 8]), [(1, 3), (5, 5), (7, 8)]);
        assert_eq!(ranges([65534, 65535]), [(65534, 65535)]);
        assert!(ranges([]).is_empty());
    }
}
