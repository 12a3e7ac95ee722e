//! The TCP segment a raw socket reads, taken apart without a socket, so that what the OS
//! hint learns from a SYN-ACK (its TTL, window and options, in their order) is tested
//! byte for byte. A raw IPv4 socket reads the IPv4 header first; a raw IPv6 socket reads
//! the segment alone (raw(7), ipv6(7)), its hop limit coming as ancillary data.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};

/// The TCP flags of a SYN-ACK.
const SYN: u8 = 0x02;
const ACK: u8 = 0x10;

/// A TCP option, as RFC 793, 2018, 7323 and 6691 number them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpOption {
    /// End of option list (kind 0).
    Eol,
    /// No-operation padding (kind 1).
    Nop,
    /// Maximum segment size (kind 2).
    Mss(u16),
    /// Window scale shift (kind 3).
    WindowScale(u8),
    /// SACK permitted (kind 4).
    SackPermitted,
    /// Timestamps (kind 8).
    Timestamps,
    /// Any other kind.
    Other(u8),
}

impl TcpOption {
    /// The option's name in p0f's layout notation: `mss`, `nop`, `ws`, `sok`, `ts`, `eol`.
    fn name(self) -> String {
        match self {
            Self::Eol => "eol".to_owned(),
            Self::Nop => "nop".to_owned(),
            Self::Mss(_) => "mss".to_owned(),
            Self::WindowScale(_) => "ws".to_owned(),
            Self::SackPermitted => "sok".to_owned(),
            Self::Timestamps => "ts".to_owned(),
            Self::Other(kind) => format!("?{kind}"),
        }
    }
}

/// A TCP segment's header, as far as the hint reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub source_port: u16,
    pub destination_port: u16,
    pub flags: u8,
    pub window: u16,
    pub options: Vec<TcpOption>,
}

impl Segment {
    pub fn is_syn_ack(&self) -> bool {
        self.flags & (SYN | ACK) == SYN | ACK
    }

    /// The options' kinds in order, as p0f writes a layout: `mss,sok,ts,nop,ws`.
    pub fn layout(&self) -> String {
        let names: Vec<String> = self.options.iter().map(|option| option.name()).collect();
        names.join(",")
    }

    /// The options' values: `mss 65495, ws 7`.
    pub fn values(&self) -> String {
        let mut said = String::new();
        for option in &self.options {
            let _ = match option {
                TcpOption::Mss(mss) => write!(said, ", mss {mss}"),
                TcpOption::WindowScale(shift) => write!(said, ", window scale {shift}"),
                _ => Ok(()),
            };
        }
        said.trim_start_matches(", ").to_owned()
    }
}

/// The TCP segment in `bytes` (its header and options); `None` if it is cut short or
/// malformed.
pub fn parse_segment(bytes: &[u8]) -> Option<Segment> {
    if bytes.len() < 20 {
        return None;
    }
    let word = |at: usize| u16::from_be_bytes([bytes[at], bytes[at + 1]]);
    let header = usize::from(bytes[12] >> 4) * 4;
    if header < 20 || bytes.len() < header {
        return None;
    }
    Some(Segment {
        source_port: word(0),
        destination_port: word(2),
        flags: bytes[13],
        window: word(14),
        options: parse_options(&bytes[20..header])?,
    })
}

/// The options of a header; `None` where one runs past the end or has a length below 2.
fn parse_options(mut bytes: &[u8]) -> Option<Vec<TcpOption>> {
    let mut options = Vec::new();
    while let Some(&kind) = bytes.first() {
        match kind {
            0 => {
                // The rest is padding.
                options.push(TcpOption::Eol);
                break;
            }
            1 => {
                options.push(TcpOption::Nop);
                bytes = &bytes[1..];
            }
            _ => {
                let length = usize::from(*bytes.get(1)?);
                if length < 2 || bytes.len() < length {
                    return None;
                }
                let body = &bytes[2..length];
                options.push(match (kind, body) {
                    (2, [high, low]) => TcpOption::Mss(u16::from_be_bytes([*high, *low])),
                    (3, [shift]) => TcpOption::WindowScale(*shift),
                    (4, []) => TcpOption::SackPermitted,
                    (8, _) if body.len() == 8 => TcpOption::Timestamps,
                    _ => TcpOption::Other(kind),
                });
                bytes = &bytes[length..];
            }
        }
    }
    Some(options)
}

/// An IPv4 packet carrying TCP, as a raw IPv4 socket reads it: the sender, the TTL and
/// the segment; `None` for anything else.
pub fn parse_ipv4(packet: &[u8]) -> Option<(IpAddr, u8, Segment)> {
    let first = *packet.first()?;
    let header = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || header < 20 || packet.len() < header || packet[9] != 6 {
        return None;
    }
    let source = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
    Some((
        IpAddr::V4(source),
        packet[8],
        parse_segment(&packet[header..])?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Linux's SYN-ACK on loopback, as tcpdump shows it: 22 -> 41000, window 65483,
    /// options mss 65495, sackOK, TS, nop, wscale 7.
    const LINUX_SYN_ACK: [u8; 40] = [
        0x00, 0x16, 0xa0, 0x28, 0, 0, 0, 1, 0, 0, 0, 2, 0xa0, 0x12, 0xff, 0xcb, 0, 0, 0, 0, 2, 4,
        0xff, 0xd7, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 3, 3, 7,
    ];

    #[test]
    fn a_syn_ack_gives_its_ports_window_and_options_in_order() {
        let segment = parse_segment(&LINUX_SYN_ACK).unwrap();
        assert_eq!(segment.source_port, 22);
        assert_eq!(segment.destination_port, 41000);
        assert!(segment.is_syn_ack());
        assert_eq!(segment.window, 65483);
        assert_eq!(
            segment.options,
            [
                TcpOption::Mss(65495),
                TcpOption::SackPermitted,
                TcpOption::Timestamps,
                TcpOption::Nop,
                TcpOption::WindowScale(7)
            ]
        );
        assert_eq!(segment.layout(), "mss,sok,ts,nop,ws");
        assert_eq!(segment.values(), "mss 65495, window scale 7");
    }

    #[test]
    fn behind_an_ipv4_header_the_ttl_and_sender_are_read_too() {
        let mut packet = vec![
            0x45, 0, 0, 60, 0, 0, 0x40, 0, 64, 6, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1,
        ];
        packet.extend(LINUX_SYN_ACK);
        let (from, ttl, segment) = parse_ipv4(&packet).unwrap();
        assert_eq!(from, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(ttl, 64);
        assert_eq!(segment.window, 65483);
        // UDP, a cut header, IPv6's version: not ours.
        packet[9] = 17;
        assert_eq!(parse_ipv4(&packet), None);
        packet[9] = 6;
        assert_eq!(parse_ipv4(&packet[..30]), None);
        packet[0] = 0x65;
        assert_eq!(parse_ipv4(&packet), None);
    }

    #[test]
    fn damaged_options_and_short_segments_are_refused() {
        assert_eq!(parse_segment(&LINUX_SYN_ACK[..19]), None);
        // A header length beyond the bytes read.
        let mut long = LINUX_SYN_ACK;
        long[12] = 0xf0;
        assert_eq!(parse_segment(&long), None);
        // An option whose length runs past the header, and one of length 0.
        let mut past = LINUX_SYN_ACK;
        past[38] = 9;
        assert_eq!(parse_segment(&past), None);
        let mut zero = LINUX_SYN_ACK;
        zero[21] = 0;
        assert_eq!(parse_segment(&zero), None);
        // A plain ACK is no SYN-ACK; EOL ends the list, and unknown kinds are kept.
        let mut ack = LINUX_SYN_ACK;
        ack[13] = 0x10;
        assert!(!parse_segment(&ack).unwrap().is_syn_ack());
        let mut odd = LINUX_SYN_ACK;
        odd[36..40].copy_from_slice(&[30, 2, 0, 1]);
        let segment = parse_segment(&odd).unwrap();
        assert_eq!(segment.layout(), "mss,sok,ts,?30,eol");
    }
}
