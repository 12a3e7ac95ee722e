//! ICMP and ICMPv6 echo messages, built and read without a socket, so that what host
//! discovery sends and what it accepts as an answer are tested byte for byte.
//!
//! A request carries an identifier, a sequence number and an 8-byte token of the run; a
//! reply echoes all three (RFC 792, RFC 4443). The sequence number tells which try of
//! which host an answer belongs to; the token tells our replies from those to other ping
//! programs, which a raw socket sees too. On an ICMP datagram socket the kernel rewrites
//! the identifier to the socket's own and hands it only the replies that carry it, and it
//! fills in the checksum itself (icmp(7), "ping sockets"); on a raw socket both are ours,
//! except ICMPv6's checksum, which covers a pseudo-header of addresses the kernel chooses
//! and which it always computes (raw(7)).

/// The ICMP header: type, code, checksum, identifier, sequence number.
const HEADER: usize = 8;

/// The length of a request and of the reply to it: the header and the token.
pub const LEN: usize = HEADER + 8;

const ECHO_REQUEST_V4: u8 = 8;
const ECHO_REPLY_V4: u8 = 0;
const ECHO_REQUEST_V6: u8 = 128;
const ECHO_REPLY_V6: u8 = 129;

/// What an echo reply says: the request's identifier, sequence number and token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Echo {
    pub id: u16,
    pub seq: u16,
    pub token: u64,
}

/// An echo request, ICMPv6's if `ipv6`.
pub fn request(ipv6: bool, echo: Echo) -> [u8; LEN] {
    let mut packet = [0; LEN];
    packet[0] = if ipv6 {
        ECHO_REQUEST_V6
    } else {
        ECHO_REQUEST_V4
    };
    packet[4..6].copy_from_slice(&echo.id.to_be_bytes());
    packet[6..8].copy_from_slice(&echo.seq.to_be_bytes());
    packet[8..].copy_from_slice(&echo.token.to_be_bytes());
    if !ipv6 {
        let sum = checksum(&packet);
        packet[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    packet
}

/// The echo reply in `packet`, if it is one: a whole ICMPv6 message if `ipv6`, else an
/// ICMP message, behind its IPv4 header if `ip_header` (what a raw IPv4 socket reads).
/// Anything else (our own requests looped back, errors, other ICMP traffic, a damaged
/// message) is `None`.
pub fn parse_reply(ipv6: bool, ip_header: bool, packet: &[u8]) -> Option<Echo> {
    let message = if ip_header {
        let first = *packet.first()?;
        if first >> 4 != 4 {
            return None;
        }
        packet.get(usize::from(first & 0x0f) * 4..)?
    } else {
        packet
    };
    if message.len() < LEN {
        return None;
    }
    let reply = if ipv6 { ECHO_REPLY_V6 } else { ECHO_REPLY_V4 };
    // The kernel checks ICMPv6 checksums before any socket sees a message; a raw IPv4
    // socket gets a copy before ICMP's own check.
    if message[0] != reply || message[1] != 0 || (!ipv6 && checksum(message) != 0) {
        return None;
    }
    let word = |at: usize| u16::from_be_bytes([message[at], message[at + 1]]);
    let mut token = [0; 8];
    token.copy_from_slice(&message[8..16]);
    Some(Echo {
        id: word(4),
        seq: word(6),
        token: u64::from_be_bytes(token),
    })
}

/// The Internet checksum (RFC 1071): the ones' complement of the ones' complement sum of
/// the 16-bit words, an odd last byte padded with zero. Over a message that carries its
/// checksum it is 0.
fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !u16::try_from(sum).expect("folded to 16 bits")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ECHO: Echo = Echo {
        id: 0x1234,
        seq: 0xbeef,
        token: 0x0102_0304_0506_0708,
    };

    /// The reply a host makes of `request`: the type changed, the checksum redone.
    fn answer(mut request: [u8; LEN], ipv6: bool) -> [u8; LEN] {
        request[0] = if ipv6 { ECHO_REPLY_V6 } else { ECHO_REPLY_V4 };
        if !ipv6 {
            request[2..4].fill(0);
            let sum = checksum(&request);
            request[2..4].copy_from_slice(&sum.to_be_bytes());
        }
        request
    }

    #[test]
    fn a_request_is_laid_out_as_rfc_792_says() {
        let packet = request(false, ECHO);
        assert_eq!(
            packet,
            [
                8, 0, 0x16, 0xc8, 0x12, 0x34, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8
            ]
        );
        assert_eq!(checksum(&packet), 0);
        // ICMPv6: the kernel fills the checksum in over its pseudo-header.
        let packet = request(true, ECHO);
        assert_eq!(packet[..4], [128, 0, 0, 0]);
        assert_eq!(packet[4..], request(false, ECHO)[4..]);
    }

    #[test]
    fn the_checksum_is_rfc_1071s() {
        // RFC 1071's worked example: the sum of these words is ddf2, its complement 220d.
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0x220d
        );
        // An odd length is padded with a zero byte.
        assert_eq!(checksum(&[0xff]), !0xff00);
        assert_eq!(checksum(&[]), 0xffff);
    }

    #[test]
    fn a_reply_gives_back_identifier_sequence_and_token() {
        for ipv6 in [false, true] {
            let reply = answer(request(ipv6, ECHO), ipv6);
            assert_eq!(parse_reply(ipv6, false, &reply), Some(ECHO), "{ipv6}");
            // A longer reply (a host may pad) is still one.
            let mut padded = reply.to_vec();
            padded.extend([0, 0]);
            assert_eq!(parse_reply(ipv6, false, &padded), Some(ECHO), "{ipv6}");
        }
    }

    #[test]
    fn a_raw_ipv4_socket_reads_the_ip_header_first() {
        let reply = answer(request(false, ECHO), false);
        // Version 4, a header of 6 words (one word of options).
        let mut packet = vec![0x46];
        packet.extend([0; 23]);
        packet.extend(reply);
        assert_eq!(parse_reply(false, true, &packet), Some(ECHO));
        assert_eq!(parse_reply(false, true, &packet[..30]), None);
        packet[0] = 0x66;
        assert_eq!(parse_reply(false, true, &packet), None);
        assert_eq!(parse_reply(false, true, &[]), None);
    }

    #[test]
    fn what_is_not_a_sound_echo_reply_is_refused() {
        let reply = answer(request(false, ECHO), false);
        // Our own request, looped back to a raw socket.
        assert_eq!(parse_reply(false, false, &request(false, ECHO)), None);
        assert_eq!(parse_reply(true, false, &request(true, ECHO)), None);
        // A damaged message, whose checksum no longer holds.
        let mut damaged = reply;
        damaged[9] ^= 1;
        assert_eq!(parse_reply(false, false, &damaged), None);
        // A reply with a code, and one too short to hold the token.
        let mut coded = reply;
        coded[1] = 1;
        assert_eq!(parse_reply(false, false, &coded), None);
        assert_eq!(parse_reply(false, false, &reply[..LEN - 1]), None);
        // An ICMPv4 reply read as ICMPv6, and the other way round.
        assert_eq!(parse_reply(true, false, &reply), None);
        assert_eq!(
            parse_reply(false, false, &answer(request(true, ECHO), true)),
            None
        );
    }
}
