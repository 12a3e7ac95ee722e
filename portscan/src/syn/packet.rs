//! -sS's packets, apart from any socket so they are tested without a network: the SYN a
//! probe sends, with its identity (source port and sequence number) taken from a keyed hash
//! of the addresses, and the replies that may answer it: a TCP segment, or an ICMP
//! destination unreachable quoting the SYN. A reply counts only if it echoes the identity
//! (its acknowledgment is the SYN's sequence number plus one, or the quoted SYN carries
//! it), as masscan and zmap check theirs; a forged reply would have to guess 47 bits (15
//! of the port, 32 of the sequence number).

use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};

use common::contract::record::{PortState, Reason};
use etherparse::{
    Icmpv4Slice, Icmpv4Type, Icmpv6Slice, Icmpv6Type, LaxIpSlice, TcpHeader, TcpSlice,
    icmpv4::DestUnreachableHeader, icmpv6::DestUnreachableCode,
};

/// The window our SYNs offer: nmap's default for its SYN probes.
const WINDOW: u16 = 1024;

/// A probe's identity: the source port it is sent from, and its sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cookie {
    pub port: u16,
    pub seq: u32,
}

/// The run's secret: std's SipHash with keys the standard library draws at random for
/// each `RandomState`, so no two runs (and no stranger) know the cookies of another.
pub struct Keys(std::collections::hash_map::RandomState);

impl Keys {
    pub fn new() -> Self {
        Self(std::collections::hash_map::RandomState::new())
    }

    /// The identity of the SYN from `source` to `target`. Source ports stay in the upper
    /// half (32768 and up), clear of the well-known ones.
    pub fn cookie(&self, source: IpAddr, target: SocketAddr) -> Cookie {
        let hash = self.0.hash_one((source, target));
        #[expect(clippy::cast_possible_truncation, reason = "the hash's bits, cut up")]
        Cookie {
            port: ((hash >> 32) as u16) | 0x8000,
            seq: hash as u32,
        }
    }
}

/// The SYN of `cookie` from `source` to `target` (same family), TCP header alone: the
/// kernel writes the IP header of a raw IPPROTO_TCP socket (raw(7)); the checksum covers
/// the pseudo header, so it is ours to compute.
pub fn syn(source: IpAddr, target: SocketAddr, cookie: Cookie) -> Option<Vec<u8>> {
    let mut header = TcpHeader::new(cookie.port, target.port(), cookie.seq, WINDOW);
    header.syn = true;
    header.checksum = match (source, target.ip()) {
        (IpAddr::V4(from), IpAddr::V4(to)) => {
            header.calc_checksum_ipv4_raw(from.octets(), to.octets(), &[])
        }
        (IpAddr::V6(from), IpAddr::V6(to)) => {
            header.calc_checksum_ipv6_raw(from.octets(), to.octets(), &[])
        }
        _ => return None,
    }
    .ok()?;
    Some(header.to_bytes().to_vec())
}

/// A reply that may answer one of our SYNs: which probe it names (the target it came from
/// or quotes, and our source port), what it says, and the sequence number it vouches for
/// (the SYN's, as the reply says it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    pub target: SocketAddr,
    pub our_port: u16,
    pub seq: u32,
    pub state: PortState,
    pub reason: Reason,
}

impl Reply {
    /// Whether this answers the SYN of `cookie`.
    pub fn answers(&self, cookie: Cookie) -> bool {
        self.our_port == cookie.port && self.seq == cookie.seq
    }
}

/// A TCP segment read from a raw socket, from `from`: a SYN-ACK (open) or a reset
/// (closed). IPv4's raw sockets read the IP header too, IPv6's do not (raw(7), ipv6(7)).
pub fn tcp_reply(from: IpAddr, packet: &[u8]) -> Option<Reply> {
    let segment = match from {
        IpAddr::V4(_) => LaxIpSlice::from_slice(packet).ok()?.0.payload().payload,
        IpAddr::V6(_) => packet,
    };
    let tcp = TcpSlice::from_slice(segment).ok()?;
    // Our own SYNs come back on loopback, and the kernel's resets of SYN-ACKs carry no
    // acknowledgment: only a segment that acknowledges can answer.
    if !tcp.ack() {
        return None;
    }
    let (state, reason) = if tcp.rst() {
        (PortState::Closed, Reason::Reset)
    } else if tcp.syn() {
        (PortState::Open, Reason::SynAck)
    } else {
        return None;
    };
    Some(Reply {
        target: SocketAddr::new(from, tcp.source_port()),
        our_port: tcp.destination_port(),
        seq: tcp.acknowledgment_number().wrapping_sub(1),
        state,
        reason,
    })
}

/// An ICMP message read from a raw ICMP (IPv4, header included) or ICMPv6 socket: a
/// destination unreachable quoting one of our SYNs says the port is filtered, and why.
pub fn icmp_reply(ipv6: bool, packet: &[u8]) -> Option<Reply> {
    let (quoted, reason) = if ipv6 {
        let icmp = Icmpv6Slice::from_slice(packet).ok()?;
        let Icmpv6Type::DestinationUnreachable(code) = icmp.icmp_type() else {
            return None;
        };
        (icmp.payload(), icmpv6_reason(code))
    } else {
        let ip = LaxIpSlice::from_slice(packet).ok()?.0;
        let icmp = Icmpv4Slice::from_slice(ip.payload().payload).ok()?;
        let Icmpv4Type::DestinationUnreachable(header) = icmp.icmp_type() else {
            return None;
        };
        (icmp.payload(), icmpv4_reason(&header))
    };
    let inner = LaxIpSlice::from_slice(quoted).ok()?.0;
    // Only the first 8 bytes of the SYN are sure to be quoted (RFC 792): the ports and
    // the sequence number, read as they lie rather than as a whole header.
    let tcp = inner.payload().payload;
    if inner.payload().ip_number != etherparse::IpNumber::TCP || tcp.len() < 8 {
        return None;
    }
    Some(Reply {
        target: SocketAddr::new(
            inner.destination_addr(),
            u16::from_be_bytes([tcp[2], tcp[3]]),
        ),
        our_port: u16::from_be_bytes([tcp[0], tcp[1]]),
        seq: u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]),
        state: PortState::Filtered,
        reason,
    })
}

/// nmap's reasons for ICMP's unreachable codes.
fn icmpv4_reason(header: &DestUnreachableHeader) -> Reason {
    match header {
        DestUnreachableHeader::Network | DestUnreachableHeader::NetworkUnknown => {
            Reason::NetUnreach
        }
        DestUnreachableHeader::NetworkProhibited
        | DestUnreachableHeader::HostProhibited
        | DestUnreachableHeader::FilterProhibited => Reason::AdminProhibited,
        DestUnreachableHeader::Port => Reason::PortUnreach,
        _ => Reason::HostUnreach,
    }
}

/// ICMPv6's codes, as nmap reads them.
fn icmpv6_reason(code: DestUnreachableCode) -> Reason {
    match code {
        DestUnreachableCode::NoRoute | DestUnreachableCode::RejectRoute => Reason::NetUnreach,
        DestUnreachableCode::Prohibited | DestUnreachableCode::SourceAddressFailedPolicy => {
            Reason::AdminProhibited
        }
        DestUnreachableCode::Port => Reason::PortUnreach,
        _ => Reason::HostUnreach,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    const US: [u8; 4] = [198, 18, 0, 1];
    const THEM: [u8; 4] = [198, 18, 0, 2];

    /// The IPv4 packet of a segment from THEM's `port` to `to_port`, acknowledging `ack`.
    fn segment(port: u16, to_port: u16, ack: u32, rst: bool) -> Vec<u8> {
        let builder = PacketBuilder::ipv4(THEM, US, 64).tcp(port, to_port, 7, 65535);
        let builder = if rst { builder.rst() } else { builder.syn() }.ack(ack);
        let mut packet = Vec::new();
        builder.write(&mut packet, &[]).unwrap();
        packet
    }

    fn probe() -> (Keys, SocketAddr, Cookie) {
        let keys = Keys::new();
        let target = SocketAddr::from((THEM, 80));
        let cookie = keys.cookie(IpAddr::from(US), target);
        (keys, target, cookie)
    }

    #[test]
    fn a_syn_ack_that_acknowledges_the_cookie_answers_it() {
        let (_, target, cookie) = probe();
        let packet = segment(80, cookie.port, cookie.seq.wrapping_add(1), false);
        let reply = tcp_reply(target.ip(), &packet).unwrap();
        assert_eq!(reply.target, target);
        assert_eq!(
            (reply.state, reply.reason),
            (PortState::Open, Reason::SynAck)
        );
        assert!(reply.answers(cookie));
        let reset = segment(80, cookie.port, cookie.seq.wrapping_add(1), true);
        let reply = tcp_reply(target.ip(), &reset).unwrap();
        assert_eq!(
            (reply.state, reply.reason),
            (PortState::Closed, Reason::Reset)
        );
        assert!(reply.answers(cookie));
    }

    #[test]
    fn a_forged_reply_is_ignored() {
        let (_, target, cookie) = probe();
        // The right port, a guessed acknowledgment; the right acknowledgment, another port.
        let wrong_ack = segment(80, cookie.port, cookie.seq.wrapping_add(2), false);
        let wrong_port = segment(80, cookie.port ^ 1, cookie.seq.wrapping_add(1), false);
        for packet in [wrong_ack, wrong_port] {
            let reply = tcp_reply(target.ip(), &packet).unwrap();
            assert!(!reply.answers(cookie), "{reply:?}");
        }
    }

    #[test]
    fn the_cookie_is_keyed() {
        let (keys, target, cookie) = probe();
        assert_eq!(keys.cookie(IpAddr::from(US), target), cookie);
        // Another run's keys give another identity (a 2^-47 chance of a false failure).
        assert_ne!(Keys::new().cookie(IpAddr::from(US), target), cookie);
    }

    #[test]
    fn a_syn_is_a_checksummed_syn() {
        let (_, target, cookie) = probe();
        let bytes = syn(IpAddr::from(US), target, cookie).unwrap();
        let tcp = TcpSlice::from_slice(&bytes).unwrap();
        assert!(tcp.syn() && !tcp.ack());
        assert_eq!(
            (tcp.source_port(), tcp.sequence_number()),
            (cookie.port, cookie.seq)
        );
        let header = tcp.to_header();
        let sum = header.calc_checksum_ipv4_raw(US, THEM, &[]).unwrap();
        assert_eq!(tcp.checksum(), sum);
    }

    #[test]
    fn an_unreachable_quoting_the_syn_names_its_reason() {
        let (_, target, cookie) = probe();
        let quoted = {
            let builder = PacketBuilder::ipv4(US, THEM, 64).tcp(cookie.port, 80, cookie.seq, 1024);
            let mut packet = Vec::new();
            builder.syn().write(&mut packet, &[]).unwrap();
            packet
        };
        let mut packet = Vec::new();
        PacketBuilder::ipv4(THEM, US, 64)
            .icmpv4(Icmpv4Type::DestinationUnreachable(
                DestUnreachableHeader::FilterProhibited,
            ))
            .write(&mut packet, &quoted)
            .unwrap();
        let reply = icmp_reply(false, &packet).unwrap();
        assert_eq!(reply.target, target);
        assert_eq!(
            (reply.state, reply.reason),
            (PortState::Filtered, Reason::AdminProhibited)
        );
        assert!(reply.answers(cookie));
    }
}
