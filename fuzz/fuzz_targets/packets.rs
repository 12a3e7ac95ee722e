//! The packets portscan's raw and ICMP sockets read, on any bytes: ICMP and ICMPv6 echo
//! replies (host discovery), behind an IPv4 header or not, and TCP segments behind one
//! (`-A`'s SYN-ACK), and -sS's replies (TCP segments, ICMP and ICMPv6 unreachables quoting
//! a SYN). Nothing panics; what an echo reply gives back is what its bytes say;
//! a request we build, answered as a host answers it, reads back as the request's
//! identifier, sequence and token, and is never taken for a reply itself; a segment's
//! options fit in its header; a SYN we build is never its own answer, and the SYN-ACK a
//! host makes of it answers its cookie.
#![no_main]

use libfuzzer_sys::fuzz_target;

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use portscan::fuzzing::{
    Cookie, Echo, echo_request, parse_echo_reply, parse_ipv4, parse_segment, parse_syn_icmp,
    parse_syn_reply, syn_packet,
};

/// The reply a host makes of an ICMP (`v6` false) or ICMPv6 echo request: type 0 or 129,
/// and for ICMP the checksum computed anew (RFC 1071), as a host computes it.
fn answer(mut packet: [u8; 16], v6: bool) -> [u8; 16] {
    packet[0] = if v6 { 129 } else { 0 };
    if !v6 {
        packet[2..4].fill(0);
        let mut sum: u32 = packet
            .chunks(2)
            .map(|pair| u32::from(u16::from_be_bytes([pair[0], pair[1]])))
            .sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        packet[2..4].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    }
    packet
}

fuzz_target!(|data: &[u8]| {
    for v6 in [false, true] {
        for ip_header in [false, true] {
            if let Some(echo) = parse_echo_reply(v6, ip_header, data) {
                let at = if ip_header {
                    usize::from(data[0] & 0x0f) * 4
                } else {
                    0
                };
                let message = &data[at..];
                assert_eq!(message[0], if v6 { 129 } else { 0 });
                assert_eq!(echo.id, u16::from_be_bytes([message[4], message[5]]));
                assert_eq!(echo.seq, u16::from_be_bytes([message[6], message[7]]));
            }
        }
    }
    if let Some(head) = data.first_chunk::<12>() {
        let echo = Echo {
            id: u16::from_be_bytes([head[0], head[1]]),
            seq: u16::from_be_bytes([head[2], head[3]]),
            token: u64::from_be_bytes(head[4..].try_into().unwrap()),
        };
        for v6 in [false, true] {
            let request = echo_request(v6, echo);
            assert_eq!(parse_echo_reply(v6, false, &request), None);
            assert_eq!(
                parse_echo_reply(v6, false, &answer(request, v6)),
                Some(echo)
            );
        }
    }
    if let Some(segment) = parse_segment(data) {
        let header = usize::from(data[12] >> 4) * 4;
        assert!(segment.options.len() <= header - 20);
        let _ = (segment.layout(), segment.values(), segment.is_syn_ack());
    }
    if let Some((_source, ttl, segment)) = parse_ipv4(data) {
        assert_eq!(ttl, data[8]);
        let header = usize::from(data[0] & 0x0f) * 4;
        assert_eq!(parse_segment(&data[header..]), Some(segment));
    }
    let v4 = IpAddr::from([198, 18, 0, 1]);
    for from in [v4, IpAddr::V6(Ipv6Addr::LOCALHOST)] {
        if let Some(reply) = parse_syn_reply(from, data) {
            assert_eq!(reply.target.ip(), from);
        }
    }
    let _ = (parse_syn_icmp(false, data), parse_syn_icmp(true, data));
    if let Some(head) = data.first_chunk::<8>() {
        let cookie = Cookie {
            port: u16::from_be_bytes([head[0], head[1]]) | 0x8000,
            seq: u32::from_be_bytes([head[2], head[3], head[4], head[5]]),
        };
        let to = IpAddr::V6(Ipv6Addr::LOCALHOST);
        let target = SocketAddr::new(to, u16::from_be_bytes([head[6], head[7]]));
        let syn = syn_packet(to, target, cookie).unwrap();
        assert_eq!(parse_syn_reply(to, &syn), None);
        // The host's answer: ports swapped, our sequence number plus one acknowledged,
        // SYN and ACK set (IPv6's raw sockets read the TCP header alone).
        let mut answer = syn.clone();
        answer[0..2].copy_from_slice(&syn[2..4]);
        answer[2..4].copy_from_slice(&syn[0..2]);
        answer[8..12].copy_from_slice(&cookie.seq.wrapping_add(1).to_be_bytes());
        answer[13] = 0x12;
        let reply = parse_syn_reply(to, &answer).unwrap();
        assert!(reply.answers(cookie));
        assert_eq!(reply.target, target);
    }
});
