//! The NETLINK_SOCK_DIAG wire format (man 7 sock_diag, include/uapi/linux/{inet,unix}_diag.h):
//! dump requests out, socket records in. Pure byte work, so it is tested on captured
//! messages without a kernel; the transport lives in `netlink`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use nix::libc::{self, c_int};

use crate::contract::record::{
    Family, OsText, SockType, SocketProto, SocketRecord, SocketState, SocketTimer,
};

/// The request and reply type of every sock_diag dump (linux/sock_diag.h; libc lacks it).
pub const SOCK_DIAG_BY_FAMILY: u16 = 20;
pub(crate) const NLMSG_ERROR: u16 = narrow_u16(libc::NLMSG_ERROR);
pub(crate) const NLMSG_DONE: u16 = narrow_u16(libc::NLMSG_DONE);
const NLM_F_REQUEST: u16 = narrow_u16(libc::NLM_F_REQUEST);
const NLM_F_DUMP: u16 = narrow_u16(libc::NLM_F_DUMP);
pub(crate) const NLM_F_DUMP_INTR: u16 = narrow_u16(libc::NLM_F_DUMP_INTR);
pub(crate) const NLMSG_HDRLEN: usize = 16;

pub const AF_UNIX: u8 = narrow_u8(libc::AF_UNIX);
pub const AF_INET: u8 = narrow_u8(libc::AF_INET);
pub const AF_INET6: u8 = narrow_u8(libc::AF_INET6);
pub const IPPROTO_TCP: u8 = narrow_u8(libc::IPPROTO_TCP);
pub const IPPROTO_UDP: u8 = narrow_u8(libc::IPPROTO_UDP);
pub const IPPROTO_RAW: u8 = narrow_u8(libc::IPPROTO_RAW);

/// libc's C-int constants narrowed to the width of the wire's fields, the range checked
/// when the crate is compiled.
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "the assert checks the range"
)]
const fn narrow_u8(value: c_int) -> u8 {
    assert!(value >= 0 && value <= 0xff);
    value as u8
}

#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "the assert checks the range"
)]
pub(crate) const fn narrow_u16(value: c_int) -> u16 {
    assert!(value >= 0 && value <= 0xffff);
    value as u16
}

/// `idiag_ext` bits: the extras an inet dump should carry (bit n asks for attribute n+1).
pub const EXT_INFO: u8 = 1 << (INET_DIAG_INFO - 1);
pub const EXT_CONG: u8 = 1 << (INET_DIAG_CONG - 1);
pub const EXT_SKMEMINFO: u8 = 1 << (INET_DIAG_SKMEMINFO - 1);

const INET_DIAG_INFO: u16 = 2;
const INET_DIAG_CONG: u16 = 4;
const INET_DIAG_SKMEMINFO: u16 = 7;
/// IPV6_V6ONLY of an IPv6 socket, a byte; the kernel sends it unasked (not for time-wait and
/// request sockets).
const INET_DIAG_SKV6ONLY: u16 = 11;

/// `udiag_show` bits.
pub const UDIAG_SHOW_NAME: u32 = 0x01;
pub const UDIAG_SHOW_PEER: u32 = 0x04;
pub const UDIAG_SHOW_RQLEN: u32 = 0x10;
pub const UDIAG_SHOW_MEMINFO: u32 = 0x20;
pub const UDIAG_SHOW_UID: u32 = 0x40;

const UNIX_DIAG_NAME: u16 = 0;
const UNIX_DIAG_PEER: u16 = 2;
const UNIX_DIAG_RQLEN: u16 = 4;
const UNIX_DIAG_MEMINFO: u16 = 5;
const UNIX_DIAG_UID: u16 = 7;

const INET_DIAG_MSG_LEN: usize = 72;
const UNIX_DIAG_MSG_LEN: usize = 16;

/// Why a message could not be decoded: the kernel sent something we do not understand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

fn short(what: &str, need: usize, have: usize) -> DecodeError {
    DecodeError(format!("{what}: {have} bytes, need {need}"))
}

/// The request attribute that carries a filter program (`bytecode`).
const INET_DIAG_REQ_BYTECODE: u16 = 1;

/// An inet dump request (`inet_diag_req_v2`), with a filter program if given.
pub fn inet_request(
    seq: u32,
    family: u8,
    protocol: u8,
    ext: u8,
    states: u32,
    bytecode: Option<&[u8]>,
) -> Vec<u8> {
    let mut body = Vec::with_capacity(56);
    // The pad byte is sdiag_raw_protocol for raw sockets: IPPROTO_RAW asks for every one.
    let raw_protocol = if protocol == IPPROTO_RAW {
        IPPROTO_RAW
    } else {
        0
    };
    body.extend_from_slice(&[family, protocol, ext, raw_protocol]);
    body.extend_from_slice(&states.to_ne_bytes());
    // inet_diag_sockid: zero ports, addresses, interface and cookie match every socket.
    body.resize(56, 0);
    if let Some(program) = bytecode {
        let len = u16::try_from(4 + program.len()).expect("programs fit a u16");
        body.extend_from_slice(&len.to_ne_bytes());
        body.extend_from_slice(&INET_DIAG_REQ_BYTECODE.to_ne_bytes());
        body.extend_from_slice(program);
        body.resize(align(body.len()), 0);
    }
    dump_request(seq, &body)
}

/// A UNIX dump request (`unix_diag_req`).
pub fn unix_request(seq: u32, states: u32, show: u32) -> Vec<u8> {
    let mut body = Vec::with_capacity(24);
    body.extend_from_slice(&[AF_UNIX, 0, 0, 0]);
    body.extend_from_slice(&states.to_ne_bytes());
    body.extend_from_slice(&0u32.to_ne_bytes());
    body.extend_from_slice(&show.to_ne_bytes());
    body.resize(24, 0);
    dump_request(seq, &body)
}

fn dump_request(seq: u32, body: &[u8]) -> Vec<u8> {
    message(SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, seq, body)
}

/// One netlink message: the header, then `body` (which the caller pads, if it must).
pub(crate) fn message(kind: u16, flags: u16, seq: u32, body: &[u8]) -> Vec<u8> {
    let len = u32::try_from(NLMSG_HDRLEN + body.len()).expect("a small message");
    let mut out = Vec::with_capacity(NLMSG_HDRLEN + body.len());
    out.extend_from_slice(&len.to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.extend_from_slice(body);
    out
}

/// One netlink message of a dump reply.
#[derive(Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// A socket record's payload, with the sequence number it answers; `interrupted` when
    /// the kernel flagged it NLM_F_DUMP_INTR (its table changed during the dump).
    Socket {
        seq: u32,
        payload: &'a [u8],
        interrupted: bool,
    },
    /// The end of the dump, which may carry the NLM_F_DUMP_INTR flag too.
    Done { interrupted: bool },
    /// The kernel refused the request or failed mid-dump: a positive errno.
    Error(i32),
    /// A message of a type a dump does not send; skipped.
    Other,
}

/// Splits one datagram from the kernel into its messages.
pub fn messages(mut buffer: &[u8]) -> impl Iterator<Item = Result<Message<'_>, DecodeError>> {
    std::iter::from_fn(move || {
        if buffer.is_empty() {
            return None;
        }
        if buffer.len() < NLMSG_HDRLEN {
            let error = short("netlink header", NLMSG_HDRLEN, buffer.len());
            buffer = &[];
            return Some(Err(error));
        }
        let len = u32_at(buffer, 0) as usize;
        if len < NLMSG_HDRLEN || len > buffer.len() {
            let error = DecodeError(format!(
                "netlink message length {len} does not fit its {} bytes",
                buffer.len()
            ));
            buffer = &[];
            return Some(Err(error));
        }
        let kind = u16_at(buffer, 4);
        let interrupted = u16_at(buffer, 6) & NLM_F_DUMP_INTR != 0;
        let seq = u32_at(buffer, 8);
        let payload = &buffer[NLMSG_HDRLEN..len];
        buffer = &buffer[align(len).min(buffer.len())..];
        Some(Ok(match kind {
            NLMSG_DONE => match payload.get(..4) {
                // A dump that failed part way ends with its error in the DONE message.
                // Saturating: -i32::MIN overflows (found by the sock_diag fuzz target).
                Some(bytes) if i32_of(bytes) < 0 => Message::Error(i32_of(bytes).saturating_neg()),
                _ => Message::Done { interrupted },
            },
            NLMSG_ERROR => match payload.get(..4) {
                Some(bytes) if i32_of(bytes) != 0 => Message::Error(i32_of(bytes).saturating_neg()),
                Some(_) => Message::Other,
                None => return Some(Err(short("netlink error", 4, payload.len()))),
            },
            SOCK_DIAG_BY_FAMILY => Message::Socket {
                seq,
                payload,
                interrupted,
            },
            _ => Message::Other,
        }))
    })
}

/// Decodes an `inet_diag_msg` and its attributes from a dump of `proto` sockets.
pub fn parse_inet(payload: &[u8], proto: SocketProto) -> Result<SocketRecord, DecodeError> {
    if payload.len() < INET_DIAG_MSG_LEN {
        return Err(short("inet_diag_msg", INET_DIAG_MSG_LEN, payload.len()));
    }
    let family = match payload[0] {
        AF_INET => Family::Ipv4,
        AF_INET6 => Family::Ipv6,
        other => return Err(DecodeError(format!("inet socket of family {other}"))),
    };
    let state = SocketState::from_number(payload[1])
        .ok_or_else(|| DecodeError(format!("unknown socket state {}", payload[1])))?;
    let sock_type = match proto {
        SocketProto::Tcp => SockType::Stream,
        SocketProto::Udp => SockType::Dgram,
        SocketProto::Raw | SocketProto::Unix => SockType::Raw,
    };
    let mut record = SocketRecord::new(proto, family, sock_type, state);
    record.local_port = Some(u16::from_be_bytes([payload[4], payload[5]]));
    record.remote_port = Some(u16::from_be_bytes([payload[6], payload[7]]));
    record.local_address = Some(address(family, &payload[8..24]));
    record.remote_address = Some(address(family, &payload[24..40]));
    record.cookie = Some(u64::from(u32_at(payload, 44)) | u64::from(u32_at(payload, 48)) << 32);
    record.recv_q = u32_at(payload, 56);
    record.send_q = u32_at(payload, 60);
    record.inode = u64::from(u32_at(payload, 68));
    record.uid = super::owner_uid(state, record.inode, u32_at(payload, 64));
    for (kind, value) in attributes(&payload[INET_DIAG_MSG_LEN..])? {
        match kind {
            INET_DIAG_INFO if proto == SocketProto::Tcp => tcp_info(value, &mut record),
            INET_DIAG_CONG => {
                let name = value.split(|&b| b == 0).next().unwrap_or_default();
                record.congestion = Some(String::from_utf8_lossy(name).into_owned());
            }
            INET_DIAG_SKMEMINFO => sk_meminfo(value, &mut record),
            INET_DIAG_SKV6ONLY if family == Family::Ipv6 => {
                record.v6only = value.first().map(|&set| set != 0);
            }
            _ => {}
        }
    }
    Ok(record)
}

/// Sets the timer fields (`-o`) from an `inet_diag_msg` that [`parse_inet`] accepted:
/// idiag_timer, idiag_retrans and idiag_expires. Apart, so that a dump without `-o` reads
/// nothing more.
pub fn inet_timer(payload: &[u8], record: &mut SocketRecord) {
    if payload.len() < INET_DIAG_MSG_LEN {
        return;
    }
    record.timer = SocketTimer::from_number(payload[2]);
    if record.timer.is_some() {
        record.timer_retrans = Some(payload[3]);
        record.timer_expires_ms = Some(u32_at(payload, 52));
    }
}

/// Decodes a `unix_diag_msg` and its attributes.
pub fn parse_unix(payload: &[u8]) -> Result<SocketRecord, DecodeError> {
    if payload.len() < UNIX_DIAG_MSG_LEN {
        return Err(short("unix_diag_msg", UNIX_DIAG_MSG_LEN, payload.len()));
    }
    let sock_type = match payload[1] {
        1 => SockType::Stream,
        2 => SockType::Dgram,
        5 => SockType::Seqpacket,
        other => return Err(DecodeError(format!("unknown UNIX socket type {other}"))),
    };
    let state = SocketState::from_number(payload[2])
        .ok_or_else(|| DecodeError(format!("unknown socket state {}", payload[2])))?;
    let mut record = SocketRecord::new(SocketProto::Unix, Family::Unix, sock_type, state);
    record.inode = u64::from(u32_at(payload, 4));
    record.cookie = Some(u64::from(u32_at(payload, 8)) | u64::from(u32_at(payload, 12)) << 32);
    for (kind, value) in attributes(&payload[UNIX_DIAG_MSG_LEN..])? {
        match kind {
            UNIX_DIAG_NAME => record.path = Some(unix_path(value)),
            UNIX_DIAG_PEER if value.len() >= 4 => record.peer = Some(u64::from(u32_at(value, 0))),
            UNIX_DIAG_RQLEN if value.len() >= 8 => {
                record.recv_q = u32_at(value, 0);
                record.send_q = u32_at(value, 4);
            }
            UNIX_DIAG_MEMINFO => sk_meminfo(value, &mut record),
            UNIX_DIAG_UID if value.len() >= 4 => record.uid = Some(u32_at(value, 0)),
            _ => {}
        }
    }
    Ok(record)
}

/// A UNIX socket name as ss and /proc/net/unix show it: abstract names get a leading `@`.
/// A name is bytes, chosen by whoever bound the socket: they are kept as they are, for the
/// writers to escape.
pub fn unix_path(name: &[u8]) -> OsText {
    if let Some((0, rest)) = name.split_first() {
        let mut path = Vec::with_capacity(name.len());
        path.push(b'@');
        path.extend_from_slice(rest);
        return OsText(path);
    }
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    OsText::from(&name[..end])
}

/// The `rtattr`s that follow a message, as (type, value) pairs.
fn attributes(mut bytes: &[u8]) -> Result<Vec<(u16, &[u8])>, DecodeError> {
    let mut found = Vec::new();
    while bytes.len() >= 4 {
        let len = usize::from(u16_at(bytes, 0));
        if len < 4 || len > bytes.len() {
            return Err(DecodeError(format!(
                "attribute length {len} does not fit its {} bytes",
                bytes.len()
            )));
        }
        // The top two bits are flags (nested, network byte order), not part of the type.
        found.push((u16_at(bytes, 2) & 0x3fff, &bytes[4..len]));
        bytes = &bytes[align(len).min(bytes.len())..];
    }
    Ok(found)
}

/// The fields of `struct tcp_info` (include/uapi/linux/tcp.h) that sockls shows; an older
/// kernel's shorter struct leaves the newer fields empty.
fn tcp_info(info: &[u8], record: &mut SocketRecord) {
    let field = |offset: usize| (info.len() >= offset + 4).then(|| u32_at(info, offset));
    record.rtt_ms = field(68).map(|us| f64::from(us) / 1000.0);
    record.rttvar_ms = field(72).map(|us| f64::from(us) / 1000.0);
    record.cwnd = field(80);
    record.retransmits = field(100);
    record.delivery_rate = (info.len() >= 168).then(|| u64_at(info, 160));
}

/// `SK_MEMINFO_*`: a u32 array, in this order, whose later entries older kernels lack.
fn sk_meminfo(values: &[u8], record: &mut SocketRecord) {
    let field = |index: usize| (values.len() >= index * 4 + 4).then(|| u32_at(values, index * 4));
    record.rmem_alloc = field(0);
    record.rcvbuf = field(1);
    record.wmem_alloc = field(2);
    record.sndbuf = field(3);
    record.fwd_alloc = field(4);
    record.wmem_queued = field(5);
    record.optmem = field(6);
    record.backlog = field(7);
    record.drops = field(8);
}

fn address(family: Family, bytes: &[u8]) -> IpAddr {
    if family == Family::Ipv4 {
        IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
    } else {
        let mut octets = [0; 16];
        octets.copy_from_slice(&bytes[..16]);
        IpAddr::V6(Ipv6Addr::from(octets))
    }
}

fn align(len: usize) -> usize {
    (len + 3) & !3
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([bytes[at], bytes[at + 1]])
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(bytes[at..at + 4].try_into().expect("four bytes"))
}

fn i32_of(bytes: &[u8]) -> i32 {
    i32::from_ne_bytes(bytes[..4].try_into().expect("four bytes"))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(bytes[at..at + 8].try_into().expect("eight bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reply captured from Linux 6.18: an accepted TCP connection on 127.0.0.1:47001, dumped
    /// with INFO and CONG asked for (tcp_info, then "bbr").
    const TCP_REPLY: &str = "a001000014000200010000002608000002010000b799d68c7f0000010000000000000000000000007f000001000000000000000000000000000000000f100000000000000000000000000000000000000000000009bf0000050008000000000008000f00000000000c001500010000000000000006001600520000001c010200010000000007aa01400d0300000000000080000018020000000000000000000000000000000000000000000000000000000000000000000000000000ffff0000cbff0000160000000b000000ffffff7f0a000000cbff00000300000000000000cbff0000000000000db227e909000000ffffffffffffffff00000000000000000000000000000000000000000200000000000000160000000000000000000000000000000000000000000000000000000000000000000000000000000000000001000000000000000000000000000000000000000000000000000000000000000000000000000100cbff000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000800040062627200";

    /// A listening abstract UNIX stream socket `@capt`, backlog 3, with name, peer, rqlen
    /// and uid shown.
    const UNIX_REPLY: &str = "4800000014000200010000002608000001010a000abf000011100000000000000900000000636170740000000c000400000000000300000005000600000000000800070000000000";

    fn bytes(hex: &str) -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    fn only_socket(reply: &[u8]) -> &[u8] {
        let found: Vec<Message<'_>> = messages(reply).map(Result::unwrap).collect();
        match found.as_slice() {
            [
                Message::Socket {
                    seq: 1,
                    payload,
                    interrupted: false,
                },
            ] => payload,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_captured_tcp_reply_decodes() {
        let reply = bytes(TCP_REPLY);
        let record = parse_inet(only_socket(&reply), SocketProto::Tcp).unwrap();
        assert_eq!(record.family, Family::Ipv4);
        assert_eq!(record.state, SocketState::Established);
        assert_eq!(record.local_address, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(record.local_port, Some(47001));
        assert_eq!(record.remote_port, Some(0xd68c));
        assert_eq!(record.inode, 48905);
        assert_eq!(record.uid, Some(0));
        assert_eq!(record.cookie, Some(4111));
        assert_eq!(record.rtt_ms, Some(0.022));
        assert_eq!(record.rttvar_ms, Some(0.011));
        assert_eq!(record.cwnd, Some(10));
        assert_eq!(record.retransmits, Some(0));
        assert_eq!(record.delivery_rate, Some(0));
        assert_eq!(record.congestion.as_deref(), Some("bbr"));
        assert_eq!(record.rmem_alloc, None);
    }

    #[test]
    fn time_wait_and_request_sockets_have_no_uid() {
        let reply = bytes(TCP_REPLY);
        let mut payload = only_socket(&reply).to_vec();
        // The captured socket in time-wait, then as a request socket: SYN-RECV, inode 0.
        payload[1] = SocketState::TimeWait.number();
        payload[68..72].copy_from_slice(&0u32.to_ne_bytes());
        assert_eq!(parse_inet(&payload, SocketProto::Tcp).unwrap().uid, None);
        payload[1] = SocketState::SynRecv.number();
        assert_eq!(parse_inet(&payload, SocketProto::Tcp).unwrap().uid, None);
        // An orphan (closed by its process, FIN-WAIT-1, no inode) keeps its uid.
        payload[1] = SocketState::FinWait1.number();
        assert_eq!(parse_inet(&payload, SocketProto::Tcp).unwrap().uid, Some(0));
    }

    #[test]
    fn v6only_comes_with_ipv6_sockets() {
        let reply = bytes(TCP_REPLY);
        let mut payload = only_socket(&reply).to_vec();
        assert_eq!(payload.len() % 4, 0, "attributes end aligned");
        assert_eq!(parse_inet(&payload, SocketProto::Tcp).unwrap().v6only, None);
        let with_v6only = |payload: &[u8], set: u8| {
            let mut with = payload.to_vec();
            with.extend_from_slice(&5u16.to_ne_bytes());
            with.extend_from_slice(&INET_DIAG_SKV6ONLY.to_ne_bytes());
            with.extend_from_slice(&[set, 0, 0, 0]);
            parse_inet(&with, SocketProto::Tcp).unwrap().v6only
        };
        // An IPv4 socket never has it; were it sent, it would say nothing.
        assert_eq!(with_v6only(&payload, 1), None);
        payload[0] = AF_INET6;
        assert_eq!(with_v6only(&payload, 0), Some(false));
        assert_eq!(with_v6only(&payload, 1), Some(true));
    }

    #[test]
    fn a_captured_unix_reply_decodes() {
        let reply = bytes(UNIX_REPLY);
        let record = parse_unix(only_socket(&reply)).unwrap();
        assert_eq!(record.sock_type, SockType::Stream);
        assert_eq!(record.state, SocketState::Listen);
        assert_eq!(record.path, Some(OsText(b"@capt".to_vec())));
        assert_eq!(record.inode, 0xbf0a);
        assert_eq!(record.peer, None, "a listener has no peer");
        assert_eq!((record.recv_q, record.send_q), (0, 3));
        assert_eq!(record.uid, Some(0));
        assert_eq!(record.cookie, Some(0x1011));
    }

    #[test]
    fn unix_paths_keep_every_byte() {
        assert_eq!(
            unix_path(b"/tmp/s\x1b[31m\x07\n\xff\xfe.sock\0"),
            OsText(b"/tmp/s\x1b[31m\x07\n\xff\xfe.sock".to_vec())
        );
        assert_eq!(unix_path(b"\0a\xff\0b"), OsText(b"@a\xff\0b".to_vec()));
    }

    #[test]
    fn requests_have_the_kernel_layout() {
        let request = inet_request(7, AF_INET6, IPPROTO_TCP, EXT_INFO, 1 << 10, None);
        assert_eq!(request.len(), 16 + 56);
        assert_eq!(u32_at(&request, 0), 72);
        assert_eq!(u16_at(&request, 4), SOCK_DIAG_BY_FAMILY);
        assert_eq!(u16_at(&request, 6), NLM_F_REQUEST | NLM_F_DUMP);
        assert_eq!(u32_at(&request, 8), 7);
        assert_eq!(&request[16..20], &[AF_INET6, IPPROTO_TCP, 2, 0]);
        assert_eq!(u32_at(&request, 20), 1 << 10);
        assert_eq!(
            inet_request(1, AF_INET, IPPROTO_RAW, 0, 0, None)[19],
            IPPROTO_RAW
        );
        let program = [11, 8, 12, 0, 0, 0, 22, 0];
        let request = inet_request(2, AF_INET, IPPROTO_TCP, 0, 0, Some(&program));
        assert_eq!(request.len(), 16 + 56 + 4 + 8);
        assert_eq!(u32_at(&request, 0), 84);
        assert_eq!(u16_at(&request, 72), 12, "attribute length");
        assert_eq!(u16_at(&request, 74), INET_DIAG_REQ_BYTECODE);
        assert_eq!(&request[76..], &program);
        let request = unix_request(3, 1 << 1, UDIAG_SHOW_NAME | UDIAG_SHOW_UID);
        assert_eq!(request.len(), 16 + 24);
        assert_eq!(request[16], AF_UNIX);
        assert_eq!(u32_at(&request, 20), 1 << 1);
        assert_eq!(u32_at(&request, 28), 0x41);
    }

    #[test]
    fn done_and_errors_end_a_dump() {
        let mut reply = Vec::new();
        let codes = [
            (NLMSG_DONE, 0i32),
            (NLMSG_DONE, -4),
            (NLMSG_ERROR, -2),
            (NLMSG_DONE, i32::MIN),
            (NLMSG_ERROR, i32::MIN),
        ];
        for (kind, code) in codes {
            reply.extend_from_slice(&20u32.to_ne_bytes());
            reply.extend_from_slice(&kind.to_ne_bytes());
            reply.extend_from_slice(&[0; 10]);
            reply.extend_from_slice(&code.to_ne_bytes());
        }
        let found: Vec<Message<'_>> = messages(&reply).map(Result::unwrap).collect();
        let max = i32::MAX;
        assert_eq!(
            found,
            [
                Message::Done { interrupted: false },
                Message::Error(4),
                Message::Error(2),
                Message::Error(max),
                Message::Error(max)
            ]
        );
    }

    #[test]
    fn truncated_input_is_an_error_never_a_panic() {
        let reply = bytes(TCP_REPLY);
        for cut in [3, 15, 17, 40, 100] {
            let results: Vec<_> = messages(&reply[..cut]).collect();
            assert!(results.iter().any(Result::is_err), "cut at {cut}");
        }
        let payload = &reply[16..];
        for cut in [0, 10, 71] {
            assert!(parse_inet(&payload[..cut], SocketProto::Tcp).is_err());
        }
        // An attribute whose length runs past the end.
        let mut bad = payload[..76].to_vec();
        bad[72] = 200;
        assert!(parse_inet(&bad, SocketProto::Tcp).is_err());
        let unix = bytes(UNIX_REPLY);
        assert!(parse_unix(&unix[16..30]).is_err());
        let mut bad_type = unix[16..].to_vec();
        bad_type[1] = 9;
        assert!(parse_unix(&bad_type).is_err());
    }

    #[test]
    fn timers_come_from_the_message_header_when_asked() {
        let reply = bytes(TCP_REPLY);
        let mut payload = only_socket(&reply).to_vec();
        let mut record = parse_inet(&payload, SocketProto::Tcp).unwrap();
        assert_eq!(record.timer, None, "parse_inet leaves timers to inet_timer");
        inet_timer(&payload, &mut record);
        assert_eq!(
            (record.timer, record.timer_expires_ms, record.timer_retrans),
            (None, None, None),
            "the captured connection had no timer running"
        );
        payload[2] = 2;
        payload[3] = 1;
        payload[52..56].copy_from_slice(&7_140_000_u32.to_ne_bytes());
        inet_timer(&payload, &mut record);
        assert_eq!(record.timer, Some(SocketTimer::Keepalive));
        assert_eq!(record.timer_expires_ms, Some(7_140_000));
        assert_eq!(record.timer_retrans, Some(1));
        payload[2] = 9;
        inet_timer(&payload, &mut record);
        assert_eq!(record.timer, Some(SocketTimer::Unknown));
    }
}
