//! What a UDP probe sends, port by port: the one table of payloads.
//!
//! A UDP service answers only a datagram it understands, and silence cannot tell an open
//! port from a filtered one (`open|filtered`). So a probe of a well-known port carries a
//! request its service answers, as nmap's `nmap-payloads` file does; any datagram that
//! comes back makes the port `open`, whatever it says, so no reply is ever parsed. A port
//! not in the table gets an empty datagram, which is still enough for a closed port's ICMP
//! port unreachable and for services that answer anything (daytime, chargen).
//!
//! Each entry is data: a port and the datagrams one try sends (SNMP sends two, one per
//! protocol version). The requests, and where their format is defined:
//!
//! | port  | service   | request | format |
//! |-------|-----------|---------|--------|
//! | 7     | echo      | a short text, sent back as it is | RFC 862 |
//! | 53    | DNS       | a query for `version.bind` TXT in class CH (recursion desired): servers answer it, or refuse it, and either is an answer | RFC 1035 §4.1 |
//! | 67    | DHCP      | a DHCPINFORM from a locally administered hardware address | RFC 2131 §2, RFC 2132 §9.6 |
//! | 69    | TFTP      | a read request for a file in octet mode; the error that answers it comes from a new port (the server's transfer id), which a connected socket never hears, so an open TFTP port mostly stays `open\|filtered` | RFC 1350 §5 |
//! | 111   | portmapper| an ONC RPC call of procedure 0 (NULL) of program 100000 version 2, with no credentials | RFC 5531 §9, RFC 1833 §3 |
//! | 123   | NTP       | a version 4 client-mode packet (48 bytes, all else zero) | RFC 5905 §7.3 |
//! | 137   | NetBIOS   | a node status (NBSTAT) request for the wildcard name `*` | RFC 1002 §4.2.17 |
//! | 161   | SNMP      | a GetRequest for sysDescr.0 (1.3.6.1.2.1.1.1.0) with community `public`, once as v1 and once as v2c | RFC 1157 §4.1, RFC 3416 |
//! | 500   | IKE       | an IKEv1 main-mode SA proposal: 3DES, SHA-1, pre-shared key, group 2, 8 hours | RFC 2408 §3, RFC 2409 App. A |
//! | 1900  | SSDP      | an M-SEARCH for `ssdp:all` | UPnP Device Architecture 1.1 §1.3.2 |
//! | 5060  | SIP       | an OPTIONS request; `rport` asks for the answer at our source port | RFC 3261 §11, RFC 3581 |
//! | 5353  | mDNS      | a query for `_services._dns-sd._udp.local` PTR from a port other than 5353, which responders answer by unicast | RFC 6762 §6.7, RFC 6763 §9 |
//! | 11211 | memcached | `version` behind the 8-byte UDP frame header | memcached protocol.txt, "UDP protocol" |
//!
//! Syslog (514) is not in the table: nothing provokes a syslog server to answer, and a
//! message would only end up in the target's logs; it gets the empty datagram.

/// The datagrams one try of a probe of `port` sends, in order.
pub fn datagrams(port: u16) -> &'static [&'static [u8]] {
    match PAYLOADS.binary_search_by_key(&port, |&(p, _)| p) {
        Ok(index) => PAYLOADS[index].1,
        Err(_) => EMPTY,
    }
}

/// What a port without a payload of its own gets.
const EMPTY: &[&[u8]] = &[b""];

/// The table, in port order (a test holds it sorted).
const PAYLOADS: &[(u16, &[&[u8]])] = &[
    (7, &[b"portscan\n"]),
    (53, &[DNS_VERSION_BIND]),
    (67, &[&DHCP_INFORM]),
    (69, &[b"\x00\x01portscan.txt\x00octet\x00"]),
    (111, &[PORTMAP_NULL]),
    (123, &[&NTP_CLIENT]),
    (137, &[NBSTAT_WILDCARD]),
    (161, &[SNMP_V1_GET, SNMP_V2C_GET]),
    (500, &[IKE_MAIN_MODE]),
    (1900, &[SSDP_SEARCH]),
    (5060, &[SIP_OPTIONS]),
    (5353, &[MDNS_SERVICES]),
    (11211, &[b"\x00\x01\x00\x00\x00\x01\x00\x00version\r\n"]),
];

/// Header: id, flags (RD), one question; the name; type TXT (16), class CH (3).
const DNS_VERSION_BIND: &[u8] =
    b"\x70\x73\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07version\x04bind\x00\x00\x10\x00\x03";

/// Header: id 0, flags 0 (a query), one question; the name; type PTR (12), class IN (1).
const MDNS_SERVICES: &[u8] = b"\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\
\x09_services\x07_dns-sd\x04_udp\x05local\x00\x00\x0c\x00\x01";

/// Header: id, flags 0, one question; `*` in NetBIOS first-level encoding (each nibble
/// plus 'A', padded with NULs to 16 bytes); type NBSTAT (33), class IN.
const NBSTAT_WILDCARD: &[u8] = b"\x70\x73\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\
\x20CKAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\x00\x00\x21\x00\x01";

/// LI 0, version 4, mode 3 (client); the rest zero.
const NTP_CLIENT: [u8; 48] = {
    let mut packet = [0; 48];
    packet[0] = 0x23;
    packet
};

/// A BOOTREQUEST (op 1, Ethernet, 6-byte address) with the magic cookie and two options:
/// message type 8 (DHCPINFORM) and the end.
const DHCP_INFORM: [u8; 244] = {
    let mut packet = [0; 244];
    packet[0] = 1;
    packet[1] = 1;
    packet[2] = 6;
    // xid
    packet[4] = 0x70;
    packet[5] = 0x73;
    packet[6] = 0x63;
    packet[7] = 0x6e;
    // chaddr: a locally administered unicast address.
    packet[28] = 0x02;
    packet[33] = 0x01;
    packet[236] = 0x63;
    packet[237] = 0x82;
    packet[238] = 0x53;
    packet[239] = 0x63;
    packet[240] = 53;
    packet[241] = 1;
    packet[242] = 8;
    packet[243] = 255;
    packet
};

/// xid, CALL (0), RPC version 2, program 100000, version 2, procedure 0, AUTH_NONE
/// credentials and verifier, each empty.
const PORTMAP_NULL: &[u8] = b"\x70\x73\x63\x6e\x00\x00\x00\x00\x00\x00\x00\x02\
\x00\x01\x86\xa0\x00\x00\x00\x02\x00\x00\x00\x00\
\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";

/// SEQUENCE { version, community, GetRequest-PDU { request-id, error-status, error-index,
/// SEQUENCE OF { SEQUENCE { OID 1.3.6.1.2.1.1.1.0, NULL } } } }.
const SNMP_V1_GET: &[u8] = b"\x30\x26\x02\x01\x00\x04\x06public\
\xa0\x19\x02\x01\x01\x02\x01\x00\x02\x01\x00\
\x30\x0e\x30\x0c\x06\x08\x2b\x06\x01\x02\x01\x01\x01\x00\x05\x00";
/// The same with version 1 (SNMPv2c).
const SNMP_V2C_GET: &[u8] = b"\x30\x26\x02\x01\x01\x04\x06public\
\xa0\x19\x02\x01\x02\x02\x01\x00\x02\x01\x00\
\x30\x0e\x30\x0c\x06\x08\x2b\x06\x01\x02\x01\x01\x01\x00\x05\x00";

/// ISAKMP header (initiator cookie, zero responder cookie, next payload SA, version 1.0,
/// exchange 2 = identity protection, length 84); SA payload (DOI IPsec, situation
/// identity only) holding one proposal (ISAKMP) of one transform (KEY_IKE) whose
/// attributes are 3DES-CBC, SHA, pre-shared key, MODP group 2, a lifetime in seconds and
/// that lifetime, 28800.
const IKE_MAIN_MODE: &[u8] = b"\x70\x73\x63\x6e\x70\x73\x63\x6e\x00\x00\x00\x00\x00\x00\x00\x00\
\x01\x10\x02\x00\x00\x00\x00\x00\x00\x00\x00\x54\
\x00\x00\x00\x38\x00\x00\x00\x01\x00\x00\x00\x01\
\x00\x00\x00\x2c\x01\x01\x00\x01\
\x00\x00\x00\x24\x01\x01\x00\x00\
\x80\x01\x00\x05\x80\x02\x00\x02\x80\x03\x00\x01\x80\x04\x00\x02\x80\x0b\x00\x01\
\x00\x0c\x00\x04\x00\x00\x70\x80";

const SSDP_SEARCH: &[u8] = b"M-SEARCH * HTTP/1.1\r\n\
HOST: 239.255.255.250:1900\r\n\
MAN: \"ssdp:discover\"\r\n\
MX: 1\r\n\
ST: ssdp:all\r\n\r\n";

const SIP_OPTIONS: &[u8] = b"OPTIONS sip:nm SIP/2.0\r\n\
Via: SIP/2.0/UDP nm;branch=z9hG4bK-portscan;rport\r\n\
From: <sip:nm@nm>;tag=portscan\r\n\
To: <sip:nm2@nm2>\r\n\
Call-ID: 50000@portscan\r\n\
CSeq: 42 OPTIONS\r\n\
Max-Forwards: 70\r\n\
Content-Length: 0\r\n\
Contact: <sip:nm@nm>\r\n\
Accept: application/sdp\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    fn be16(bytes: &[u8], at: usize) -> usize {
        usize::from(u16::from_be_bytes([bytes[at], bytes[at + 1]]))
    }

    fn be32(bytes: &[u8], at: usize) -> u32 {
        u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap())
    }

    /// A DNS-format message with one question and nothing else: the question's name as
    /// dotted labels, its type and class; the message ends with it.
    fn dns_question(message: &[u8]) -> (String, usize, usize) {
        assert_eq!(be16(message, 4), 1, "one question");
        assert_eq!(&message[6..12], &[0; 6], "no answer, authority, additional");
        assert_eq!(message[2] & 0x80, 0, "a query, not a response");
        let mut at = 12;
        let mut labels = Vec::new();
        loop {
            let length = usize::from(message[at]);
            assert!(length < 64, "a plain label, no compression");
            at += 1;
            if length == 0 {
                break;
            }
            labels.push(String::from_utf8(message[at..at + length].to_vec()).unwrap());
            at += length;
        }
        assert_eq!(message.len(), at + 4, "the question ends the message");
        (labels.join("."), be16(message, at), be16(message, at + 2))
    }

    /// Walks BER from `at` to `end`, checking that every length fits its container
    /// exactly; returns the tags of the top level.
    fn ber(bytes: &[u8], mut at: usize, end: usize) -> Vec<u8> {
        let mut tags = Vec::new();
        while at < end {
            let tag = bytes[at];
            let length = usize::from(bytes[at + 1]);
            assert!(length < 0x80, "short-form lengths");
            let content = at + 2;
            assert!(
                content + length <= end,
                "tag {tag:#x} overruns its container"
            );
            // Constructed: SEQUENCE (0x30) and context-specific PDUs (0xa0-0xa8).
            if tag & 0x20 != 0 {
                ber(bytes, content, content + length);
            }
            tags.push(tag);
            at = content + length;
        }
        assert_eq!(at, end);
        tags
    }

    #[test]
    fn the_table_is_in_port_order_and_unique() {
        assert!(PAYLOADS.windows(2).all(|pair| pair[0].0 < pair[1].0));
        for (port, datagrams) in PAYLOADS {
            assert_eq!(super::datagrams(*port), *datagrams);
        }
        assert_eq!(datagrams(9), &[b""]);
        assert_eq!(datagrams(514), &[b""], "syslog is never provoked");
    }

    #[test]
    fn the_ports_the_issue_names_have_payloads() {
        for port in [
            7, 53, 67, 69, 111, 123, 137, 161, 500, 1900, 5060, 5353, 11211,
        ] {
            assert!(!datagrams(port)[0].is_empty(), "{port}");
        }
    }

    #[test]
    fn dns_queries_parse() {
        assert_eq!(
            dns_question(DNS_VERSION_BIND),
            ("version.bind".to_owned(), 16, 3)
        );
        assert_eq!(
            dns_question(MDNS_SERVICES),
            ("_services._dns-sd._udp.local".to_owned(), 12, 1)
        );
        let (name, kind, class) = dns_question(NBSTAT_WILDCARD);
        assert_eq!((kind, class), (33, 1));
        // First-level encoding: two letters A-P a byte, '*' and fifteen NULs.
        let decoded: Vec<u8> = name
            .as_bytes()
            .chunks(2)
            .map(|pair| ((pair[0] - b'A') << 4) | (pair[1] - b'A'))
            .collect();
        assert_eq!(decoded, b"*\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0");
    }

    #[test]
    fn snmp_ber_lengths_are_consistent() {
        for (message, version) in [(SNMP_V1_GET, 0), (SNMP_V2C_GET, 1)] {
            assert_eq!(ber(message, 0, message.len()), [0x30]);
            // version INTEGER, community OCTET STRING "public", GetRequest-PDU
            assert_eq!(ber(message, 2, message.len()), [0x02, 0x04, 0xa0]);
            assert_eq!(message[4], version);
            assert_eq!(&message[7..13], b"public");
        }
    }

    #[test]
    fn binary_headers_are_consistent() {
        // NTP: version 4, client mode.
        assert_eq!((NTP_CLIENT[0] >> 3) & 7, 4);
        assert_eq!(NTP_CLIENT[0] & 7, 3);
        // DHCP: a request, the magic cookie, message type INFORM, then the end.
        assert_eq!(DHCP_INFORM[0], 1);
        assert_eq!(be32(&DHCP_INFORM, 236), 0x6382_5363);
        assert_eq!(&DHCP_INFORM[240..], &[53, 1, 8, 255]);
        // RPC: a call, version 2, portmapper v2, NULL.
        let rpc: Vec<u32> = (0..10).map(|word| be32(PORTMAP_NULL, word * 4)).collect();
        assert_eq!(rpc[1..], [0, 2, 100_000, 2, 0, 0, 0, 0, 0]);
        assert_eq!(PORTMAP_NULL.len(), 40);
        // IKE: the header's length is the message's, and each payload's fits its parent.
        let ike = IKE_MAIN_MODE;
        assert_eq!(be32(ike, 24) as usize, ike.len());
        assert_eq!(ike[16], 1, "next payload: SA");
        let sa = 28;
        assert_eq!(sa + be16(ike, sa + 2), ike.len());
        let proposal = sa + 12;
        assert_eq!(proposal + be16(ike, proposal + 2), ike.len());
        let transform = proposal + 8;
        assert_eq!(transform + be16(ike, transform + 2), ike.len());
        // TFTP: RRQ, a file name and a mode, each NUL-terminated.
        let tftp = datagrams(69)[0];
        assert_eq!(be16(tftp, 0), 1);
        let fields: Vec<&[u8]> = tftp[2..].split(|&b| b == 0).collect();
        assert_eq!(fields, [&b"portscan.txt"[..], b"octet", b""]);
        // memcached: request 1, datagram 0 of 1.
        let memcached = datagrams(11211)[0];
        assert_eq!(&memcached[..8], &[0, 1, 0, 0, 0, 1, 0, 0]);
    }

    #[test]
    fn text_requests_end_their_headers() {
        for request in [SSDP_SEARCH, SIP_OPTIONS] {
            let text = std::str::from_utf8(request).unwrap();
            assert!(text.ends_with("\r\n\r\n"));
            assert_eq!(text.matches("\r\n\r\n").count(), 1);
            assert!(!text.replace("\r\n", "").contains('\n'));
        }
    }
}
