//! The port-list language every tool shares (`22`, `22,80,443`, `1-1024`, `-`, `T:22,U:53`)
//! and the transport protocols, so that `portscan -p`, `sockls --port` and svcname agree on
//! what a list means and reject the same mistakes with the same words.

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

impl FromStr for Proto {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Proto::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("'{s}' is not a protocol (tcp, udp, sctp, dccp)"))
    }
}

/// Parses one port number, 1 to 65535.
pub fn parse_port(text: &str) -> Result<u16, String> {
    if text.is_empty() {
        return Err("empty port number".into());
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("'{text}' is not a port number"));
    }
    match text.parse::<u32>() {
        Ok(0) => Err("port 0 cannot be used; ports are 1-65535".into()),
        Ok(port) if port <= 65535 => Ok(u16::try_from(port).expect("checked range")),
        _ => Err(format!("port {text} is out of range 1-65535")),
    }
}

/// Parses `22/tcp` (or a bare `22`, taking `default_proto`).
pub fn parse_port_proto(text: &str, default_proto: Proto) -> Result<(u16, Proto), String> {
    match text.split_once('/') {
        Some((port, proto)) => Ok((parse_port(port)?, proto.parse()?)),
        None => Ok((parse_port(text)?, default_proto)),
    }
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
        let port = parse_port(item)?;
        return Ok((port, port));
    };
    let first = if first.is_empty() {
        1
    } else {
        parse_port(first)?
    };
    let last = if last.is_empty() {
        u16::MAX
    } else {
        parse_port(last)?
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
        assert_eq!(parse_port_proto("53/udp", Proto::Tcp), Ok((53, Proto::Udp)));
        assert_eq!(parse_port_proto("22", Proto::Tcp), Ok((22, Proto::Tcp)));
        assert_eq!(parse_port_proto("22/TCP", Proto::Udp), Ok((22, Proto::Tcp)));
        assert!(parse_port_proto("22/icmp", Proto::Tcp).is_err());
        assert!(parse_port_proto("70000/tcp", Proto::Tcp).is_err());
    }
}
