//! The port-list language every tool shares (`22`, `22,80,443`, `1-1024`, `-`, `T:22,U:53`)
//! and the transport protocols, so that `portscan -p`, `sockls --port` and svcname agree on
//! what a list means and reject the same mistakes with the same words. Port numbers and
//! protocol names are read here once, for every tool and for svcname's line scanners, so the
//! readers cannot disagree (docs/FORMAT.md, "Protocol names").

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A transport protocol with port numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
    Dccp,
}

impl Proto {
    pub const ALL: [Proto; 4] = [Proto::Tcp, Proto::Udp, Proto::Sctp, Proto::Dccp];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Sctp => "sctp",
            Self::Dccp => "dccp",
        }
    }

    /// The protocol's position in [`Proto::ALL`], for tables indexed by protocol.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which spellings of a protocol name a reader takes (docs/FORMAT.md, "Protocol names").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtoNames {
    /// `tcp`, `udp`, `sctp`, `dccp`, in any ASCII case: what a person writes (a command line,
    /// a services file). A `6` there would read as "IPv6 only", which no option means.
    Canonical,
    /// Those, or followed by a `6`, as netstat and ss name IPv6 sockets (`tcp6`, `udp6`):
    /// what other tools print, which svcname reads. A port's service is the same over
    /// either address family, so the `6` is dropped.
    WithIpv6Suffix,
}

impl Proto {
    /// Reads a protocol name: the one reader of protocol names, which every tool and
    /// svcname's line scanners call. Bytes, not str: a name read from a line need not be
    /// checked as UTF-8 to be compared with ASCII ones.
    #[inline]
    pub fn from_name(name: &[u8], names: ProtoNames) -> Option<Proto> {
        let name = match names {
            ProtoNames::Canonical => name,
            ProtoNames::WithIpv6Suffix => name.strip_suffix(b"6").unwrap_or(name),
        };
        // Packed into a u32 and lower-cased by setting bit 5 of every byte, which maps a
        // byte to one of these lower-case letters only from that letter or its capital:
        // svcname asks for every line it reads.
        let packed = match *name {
            [a, b, c] => u32::from_le_bytes([a, b, c, 0]) | 0x0020_2020,
            [a, b, c, d] => u32::from_le_bytes([a, b, c, d]) | 0x2020_2020,
            _ => return None,
        };
        PACKED_NAMES
            .iter()
            .find(|(packed_name, _)| *packed_name == packed)
            .map(|&(_, proto)| proto)
    }
}

/// Every protocol's name as [`Proto::from_name`] packs it; a test checks them against
/// [`Proto::as_str`].
const PACKED_NAMES: [(u32, Proto); 4] = [
    (u32::from_le_bytes(*b"tcp\0"), Proto::Tcp),
    (u32::from_le_bytes(*b"udp\0"), Proto::Udp),
    (u32::from_le_bytes(*b"sctp"), Proto::Sctp),
    (u32::from_le_bytes(*b"dccp"), Proto::Dccp),
];

impl FromStr for Proto {
    type Err = String;

    /// A protocol named by a person: [`ProtoNames::Canonical`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Proto::from_name(s.as_bytes(), ProtoNames::Canonical).ok_or_else(|| not_a_protocol(s))
    }
}

fn not_a_protocol(name: &str) -> String {
    format!("'{name}' is not a protocol (tcp, udp, sctp, dccp)")
}

/// Why a text is not a port number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortError {
    Empty,
    /// Not only decimal digits (a sign, a space, a letter): the text, for the message.
    NotANumber(String),
    Zero,
    /// Above 65535: the number as written.
    OutOfRange(String),
}

impl fmt::Display for PortError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty port number"),
            Self::NotANumber(text) => write!(f, "'{text}' is not a port number"),
            Self::Zero => f.write_str("port 0 cannot be used; ports are 1-65535"),
            Self::OutOfRange(number) => write!(f, "port {number} is out of range 1-65535"),
        }
    }
}

impl std::error::Error for PortError {}

impl From<PortError> for String {
    fn from(error: PortError) -> Self {
        error.to_string()
    }
}

/// Reads one port number, 1 to 65535, in decimal digits (leading zeros allowed): the one
/// reader of port numbers, which every tool and svcname's line scanners call.
#[inline]
pub fn parse_port(text: &[u8]) -> Result<u16, PortError> {
    // Saturates at 65536, so any run of digits, however long, is read in one pass.
    let mut value: u32 = 0;
    for &byte in text {
        let digit = byte.wrapping_sub(b'0');
        if digit > 9 {
            return Err(not_a_number(text));
        }
        value = (value * 10 + u32::from(digit)).min(65_536);
    }
    match u16::try_from(value) {
        Ok(0) if text.is_empty() => Err(PortError::Empty),
        Ok(0) => Err(PortError::Zero),
        Ok(port) => Ok(port),
        Err(_) => Err(out_of_range(text)),
    }
}

#[cold]
fn not_a_number(text: &[u8]) -> PortError {
    PortError::NotANumber(String::from_utf8_lossy(text).into_owned())
}

#[cold]
fn number_out_of_range(number: u64) -> PortError {
    PortError::OutOfRange(number.to_string())
}

#[cold]
fn out_of_range(text: &[u8]) -> PortError {
    PortError::OutOfRange(String::from_utf8_lossy(text).into_owned())
}

/// A port given as a number (a JSON value): 1 to 65535, with [`parse_port`]'s messages.
#[inline]
pub fn port_from_number(number: u64) -> Result<u16, PortError> {
    match u16::try_from(number) {
        Ok(0) => Err(PortError::Zero),
        Ok(port) => Ok(port),
        Err(_) => Err(number_out_of_range(number)),
    }
}

/// Reads `22/tcp`, or a bare `22` (with no protocol), taking the protocol names `names`
/// allows. The port is read first, so a bad number is what a message names.
pub fn parse_port_proto(text: &[u8], names: ProtoNames) -> Result<(u16, Option<Proto>), String> {
    let Some(slash) = text.iter().position(|&b| b == b'/') else {
        return Ok((parse_port(text)?, None));
    };
    let port = parse_port(&text[..slash])?;
    let name = &text[slash + 1..];
    let proto = Proto::from_name(name, names)
        .ok_or_else(|| not_a_protocol(&String::from_utf8_lossy(name)))?;
    Ok((port, Some(proto)))
}

/// A set of port numbers as a 65536-bit map: 8 KiB whatever the list, ordered iteration,
/// duplicates merged.
#[derive(Clone, PartialEq, Eq)]
pub struct PortSet {
    bits: Box<[u64; 1024]>,
    len: usize,
}

impl PortSet {
    pub fn new() -> Self {
        Self {
            bits: Box::new([0; 1024]),
            len: 0,
        }
    }

    pub fn insert(&mut self, port: u16) {
        let (word, bit) = (usize::from(port / 64), port % 64);
        if self.bits[word] & (1 << bit) == 0 {
            self.bits[word] |= 1 << bit;
            self.len += 1;
        }
    }

    pub fn insert_range(&mut self, first: u16, last: u16) {
        for port in first..=last {
            self.insert(port);
        }
    }

    pub fn contains(&self, port: u16) -> bool {
        self.bits[usize::from(port / 64)] & (1 << (port % 64)) != 0
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The ports in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        (0..=u16::MAX).filter(move |&port| self.contains(port))
    }
}

impl Default for PortSet {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for PortSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// The ports of a protocol a service name stands for; `None` for an unknown name
/// ([`PortList::parse_with_names`]).
pub type PortsNamed<'a> = dyn Fn(&str, Proto) -> Option<Vec<u16>> + 'a;

/// A parsed port list: a set of ports for each protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortList {
    sets: [PortSet; 4],
}

impl PortList {
    /// Parses a list. Items are separated by commas; each is `N`, `N-M`, `N-` (to 65535),
    /// `-M` (from 1) or `-` (all). A `T:`, `U:`, `S:` or `D:` prefix selects tcp, udp, sctp
    /// or dccp for its item and those after it, as nmap's `-p` does; before any prefix,
    /// items are `default_proto`.
    pub fn parse(text: &str, default_proto: Proto) -> Result<Self, String> {
        Self::parse_inner(text, default_proto, None)
    }

    /// Parses a list whose items may also be service names (`ssh,http`, `U:domain`, mixed
    /// with numbers and ranges), as nmap's `-p` takes them. An item that starts with a
    /// letter is a name, whole (names hold dashes: `http-alt`), and stands for the ports
    /// `ports_named` gives for the item's protocol, which may be none; `None` from it means
    /// no table knows the name, which is an error. [`ServiceDb::ports_named`] is the
    /// resolver of the tools; one parser, so a list means the same with names or without.
    ///
    /// [`ServiceDb::ports_named`]: super::ServiceDb::ports_named
    pub fn parse_with_names(
        text: &str,
        default_proto: Proto,
        ports_named: &PortsNamed<'_>,
    ) -> Result<Self, String> {
        Self::parse_inner(text, default_proto, Some(ports_named))
    }

    fn parse_inner(
        text: &str,
        default_proto: Proto,
        ports_named: Option<&PortsNamed<'_>>,
    ) -> Result<Self, String> {
        let mut list = PortList {
            sets: Default::default(),
        };
        let mut proto = default_proto;
        if text.trim().is_empty() {
            return Err("the port list is empty".into());
        }
        for (position, raw_item) in text.split(',').enumerate() {
            let mut item = raw_item.trim();
            if let Some((prefix, rest)) = item.split_once(':') {
                proto = match prefix.to_ascii_uppercase().as_str() {
                    "T" => Proto::Tcp,
                    "U" => Proto::Udp,
                    "S" => Proto::Sctp,
                    "D" => Proto::Dccp,
                    _ => {
                        return Err(format!(
                            "'{prefix}:' is not a protocol prefix (T:, U:, S:, D:)"
                        ));
                    }
                };
                item = rest.trim();
            }
            if item.is_empty() {
                return Err(format!("item {} is empty", position + 1));
            }
            if let Some(ports_named) = ports_named
                && item.starts_with(|c: char| c.is_ascii_alphabetic())
            {
                let ports = ports_named(item, proto)
                    .ok_or_else(|| format!("'{item}' is not a port or a service name"))?;
                for port in ports.into_iter().filter(|&port| port != 0) {
                    list.sets[proto.index()].insert(port);
                }
                continue;
            }
            let (first, last) = parse_item(item)?;
            list.sets[proto.index()].insert_range(first, last);
        }
        Ok(list)
    }

    /// Every port of one protocol: 1-65535.
    pub fn all(proto: Proto) -> Self {
        let mut list = PortList {
            sets: Default::default(),
        };
        list.sets[proto.index()].insert_range(1, u16::MAX);
        list
    }

    pub fn ports(&self, proto: Proto) -> &PortSet {
        &self.sets[proto.index()]
    }

    /// Whether `port` is in the list for any protocol (for filters that do not care which).
    pub fn contains_any(&self, port: u16) -> bool {
        self.sets.iter().any(|set| set.contains(port))
    }

    pub fn len(&self) -> usize {
        self.sets.iter().map(PortSet::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn parse_item(item: &str) -> Result<(u16, u16), String> {
    let Some((first, last)) = item.split_once('-') else {
        let port = parse_port(item.as_bytes())?;
        return Ok((port, port));
    };
    let first = if first.is_empty() {
        1
    } else {
        parse_port(first.as_bytes())?
    };
    let last = if last.is_empty() {
        u16::MAX
    } else {
        parse_port(last.as_bytes())?
    };
    if first > last {
        return Err(format!("range {item} is reversed; write {last}-{first}"));
    }
    Ok((first, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(text: &str) -> Vec<u16> {
        PortList::parse(text, Proto::Tcp)
            .unwrap()
            .ports(Proto::Tcp)
            .iter()
            .collect()
    }

    #[test]
    fn valid_lists() {
        assert_eq!(tcp("22"), [22]);
        assert_eq!(tcp("443,22,80,22"), [22, 80, 443]);
        assert_eq!(tcp("1-5"), [1, 2, 3, 4, 5]);
        assert_eq!(tcp(" 8080 , 8443 "), [8080, 8443]);
        assert_eq!(tcp("65530-"), [65530, 65531, 65532, 65533, 65534, 65535]);
        assert_eq!(tcp("-3"), [1, 2, 3]);
        assert_eq!(tcp("-").len(), 65535);
        assert_eq!(tcp("1-65535").len(), 65535);
        assert_eq!(
            PortList::all(Proto::Tcp),
            PortList::parse("-", Proto::Tcp).unwrap()
        );
    }

    #[test]
    fn protocol_prefixes_carry_forward() {
        let list = PortList::parse("22,T:80,U:53,161-162,t:443", Proto::Tcp).unwrap();
        assert_eq!(
            list.ports(Proto::Tcp).iter().collect::<Vec<_>>(),
            [22, 80, 443]
        );
        assert_eq!(
            list.ports(Proto::Udp).iter().collect::<Vec<_>>(),
            [53, 161, 162]
        );
        assert_eq!(list.len(), 6);
        assert!(list.contains_any(53));
        assert!(!list.contains_any(54));
        let udp_default = PortList::parse("53", Proto::Udp).unwrap();
        assert!(udp_default.ports(Proto::Tcp).is_empty());
    }

    #[test]
    fn service_names_stand_for_their_ports_of_the_item_protocol() {
        let names = |name: &str, proto: Proto| match (name, proto) {
            ("ssh", Proto::Tcp) => Some(vec![22]),
            ("http", Proto::Tcp) => Some(vec![80, 8008]),
            ("domain", _) => Some(vec![53]),
            ("ssh" | "http" | "http-alt", _) => Some(vec![]),
            _ => None,
        };
        let parse = |text: &str| PortList::parse_with_names(text, Proto::Tcp, &names);
        let list = parse("ssh,http,1-3,U:domain,T:http-alt").unwrap();
        assert_eq!(
            list.ports(Proto::Tcp).iter().collect::<Vec<_>>(),
            [1, 2, 3, 22, 80, 8008]
        );
        assert_eq!(list.ports(Proto::Udp).iter().collect::<Vec<_>>(), [53]);
        assert_eq!(parse("U:ssh").unwrap().len(), 0);
        assert_eq!(
            parse("22,foo").unwrap_err(),
            "'foo' is not a port or a service name"
        );
        // Numbers and ranges read as without names, mistakes included.
        assert_eq!(parse("10-5"), PortList::parse("10-5", Proto::Tcp));
        assert_eq!(parse("+22"), PortList::parse("+22", Proto::Tcp));
        // Without a resolver, a name is not a port number, as before.
        assert_eq!(
            PortList::parse("ssh", Proto::Tcp).unwrap_err(),
            "'ssh' is not a port number"
        );
    }

    #[test]
    fn malformed_lists_say_why() {
        let cases = [
            ("0", "port 0 cannot be used"),
            ("65536", "port 65536 is out of range 1-65535"),
            ("99999999999999999999", "out of range"),
            ("10-5", "range 10-5 is reversed"),
            ("abc", "'abc' is not a port number"),
            ("22,,80", "item 2 is empty"),
            ("22,", "item 2 is empty"),
            ("", "the port list is empty"),
            ("X:22", "'X:' is not a protocol prefix"),
            ("T:", "item 1 is empty"),
            ("1-2-3", "'2-3' is not a port number"),
            ("+22", "'+22' is not a port number"),
            ("0-10", "port 0 cannot be used"),
        ];
        for (input, expected) in cases {
            let error = PortList::parse(input, Proto::Tcp).unwrap_err();
            assert!(error.contains(expected), "{input:?}: got {error:?}");
        }
    }

    #[test]
    fn port_with_protocol() {
        let canonical = |text: &str| parse_port_proto(text.as_bytes(), ProtoNames::Canonical);
        assert_eq!(canonical("53/udp"), Ok((53, Some(Proto::Udp))));
        assert_eq!(canonical("22"), Ok((22, None)));
        assert_eq!(canonical("22/TCP"), Ok((22, Some(Proto::Tcp))));
        assert_eq!(
            canonical("22/icmp"),
            Err("'icmp' is not a protocol (tcp, udp, sctp, dccp)".into())
        );
        assert_eq!(
            canonical("70000/icmp"),
            Err("port 70000 is out of range 1-65535".into())
        );
        assert!(canonical("53/udp6").is_err());
        assert_eq!(
            parse_port_proto(b"53/udp6", ProtoNames::WithIpv6Suffix),
            Ok((53, Some(Proto::Udp)))
        );
    }

    #[test]
    fn port_numbers() {
        let cases: &[(&[u8], Result<u16, PortError>)] = &[
            (b"22", Ok(22)),
            (b"1", Ok(1)),
            (b"65535", Ok(65535)),
            (b"0000022", Ok(22)),
            (b"", Err(PortError::Empty)),
            (b"0", Err(PortError::Zero)),
            (b"000", Err(PortError::Zero)),
            (b"65536", Err(PortError::OutOfRange("65536".into()))),
            (
                b"99999999999999999999999",
                Err(PortError::OutOfRange("99999999999999999999999".into())),
            ),
            (b"+22", Err(PortError::NotANumber("+22".into()))),
            (b"22 ", Err(PortError::NotANumber("22 ".into()))),
            (b"2\xff", Err(PortError::NotANumber("2\u{fffd}".into()))),
            (b"99999x", Err(PortError::NotANumber("99999x".into()))),
        ];
        for (text, expected) in cases {
            assert_eq!(&parse_port(text), expected, "{text:?}");
        }
        assert_eq!(port_from_number(443), Ok(443));
        assert_eq!(port_from_number(0), Err(PortError::Zero));
        assert_eq!(
            port_from_number(u64::MAX).unwrap_err().to_string(),
            format!("port {} is out of range 1-65535", u64::MAX)
        );
    }

    /// The one-pass reader gives what the plain definition gives (digits only, then std's
    /// number parser) on every text of up to four bytes from digits, zeros and others, and
    /// on numbers of every length around the limits.
    #[test]
    fn port_numbers_agree_with_their_definition() {
        fn definition(text: &[u8]) -> Result<u16, PortError> {
            let text = String::from_utf8_lossy(text);
            if text.is_empty() {
                return Err(PortError::Empty);
            }
            if !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err(PortError::NotANumber(text.into_owned()));
            }
            match text.parse::<u32>() {
                Ok(0) => Err(PortError::Zero),
                Ok(port) if port <= 65535 => Ok(u16::try_from(port).unwrap()),
                _ => Err(PortError::OutOfRange(text.into_owned())),
            }
        }
        let alphabet = b"0123456789 a/-+\xff";
        let mut texts = vec![Vec::new()];
        let mut longest = vec![Vec::new()];
        for _ in 0..4 {
            longest = longest
                .iter()
                .flat_map(|text| alphabet.iter().map(move |&b| [&text[..], &[b]].concat()))
                .collect();
            texts.extend(longest.iter().cloned());
        }
        for port in
            (0..=70_000u64)
                .step_by(7)
                .chain([65_535, 65_536, 99_999, 100_000, 655_350, u64::MAX])
        {
            texts.push(port.to_string().into_bytes());
            texts.push(format!("000{port}").into_bytes());
        }
        texts.push(b"1".repeat(60));
        for text in &texts {
            assert_eq!(parse_port(text), definition(text), "{text:?}");
        }
    }

    #[test]
    fn protocol_names() {
        for proto in Proto::ALL {
            let name = proto.as_str();
            for spelling in [name.to_owned(), name.to_ascii_uppercase(), {
                let mut mixed = name.to_owned();
                mixed[..1].make_ascii_uppercase();
                mixed
            }] {
                for names in [ProtoNames::Canonical, ProtoNames::WithIpv6Suffix] {
                    assert_eq!(Proto::from_name(spelling.as_bytes(), names), Some(proto));
                }
                let ipv6 = format!("{spelling}6");
                assert_eq!(
                    Proto::from_name(ipv6.as_bytes(), ProtoNames::WithIpv6Suffix),
                    Some(proto)
                );
                assert_eq!(
                    Proto::from_name(ipv6.as_bytes(), ProtoNames::Canonical),
                    None
                );
            }
            assert_eq!(name.parse::<Proto>(), Ok(proto));
        }
        for other in [
            &b"tc"[..],
            b"tcpx",
            b"tcp66",
            b"",
            b"6",
            b"t\xe3p",
            b"TC\x10",
            b"tcp\0",
        ] {
            for names in [ProtoNames::Canonical, ProtoNames::WithIpv6Suffix] {
                assert_eq!(Proto::from_name(other, names), None, "{other:?}");
            }
        }
        assert_eq!(
            "udp6".parse::<Proto>(),
            Err("'udp6' is not a protocol (tcp, udp, sctp, dccp)".into())
        );
    }

    /// The packed comparison is a case-insensitive match of the four names: every byte put
    /// in every place of every name, and a `6` after it, gives what the plain rule gives.
    #[test]
    fn protocol_names_agree_with_their_definition() {
        fn definition(name: &[u8], names: ProtoNames) -> Option<Proto> {
            let name = match names {
                ProtoNames::WithIpv6Suffix => name.strip_suffix(b"6").unwrap_or(name),
                ProtoNames::Canonical => name,
            };
            Proto::ALL
                .into_iter()
                .find(|proto| proto.as_str().as_bytes().eq_ignore_ascii_case(name))
        }
        for proto in Proto::ALL {
            for at in 0..proto.as_str().len() {
                for byte in 0..=u8::MAX {
                    let mut name = proto.as_str().as_bytes().to_vec();
                    name[at] = byte;
                    for text in [name.clone(), [&name[..], b"6"].concat()] {
                        for names in [ProtoNames::Canonical, ProtoNames::WithIpv6Suffix] {
                            assert_eq!(
                                Proto::from_name(&text, names),
                                definition(&text, names),
                                "{text:?}"
                            );
                        }
                    }
                }
            }
        }
    }
}
