//! The target language (addresses, names, CIDR blocks, ranges), walked lazily: a target set
//! is a count and a way to find its i-th address, so `198.18.0.0/15` or an IPv6 /64 costs no
//! more memory than one host, and a scanner can visit addresses in any order it likes.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One target operand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSpec {
    /// One literal address.
    Address(IpAddr),
    /// A CIDR block, every address in it (network and broadcast addresses included, as nmap
    /// does): `198.18.0.0/24`, `2001:db8::/120`. Host bits in the base are cleared.
    Network { base: IpAddr, prefix: u8 },
    /// Consecutive addresses from `first` to `last`: `198.18.0.1-198.18.0.20`, `2001:db8::1-2001:db8::ff`.
    Span { first: IpAddr, last: IpAddr },
    /// IPv4 with a range in any octet, nmap style: `198.18.0.1-20`, `198.18.0-3.*`.
    Octets([(u8, u8); 4]),
    /// A host name, for the system resolver.
    Name(String),
}

impl TargetSpec {
    /// Whether the target is IPv4 addresses (a name is neither until resolved).
    pub fn is_ipv4(&self) -> bool {
        match self {
            Self::Address(address) | Self::Network { base: address, .. } => address.is_ipv4(),
            Self::Span { first, .. } => first.is_ipv4(),
            Self::Octets(_) => true,
            Self::Name(_) => false,
        }
    }

    /// Parses one operand, which nmap's octet lists make several specs: `198.18.0.1,5,7`
    /// is three addresses, `198.18.0,2.1-9` two ranges (each comma-separated item of an
    /// octet a number, a range or `*`), in the order the items are given.
    pub fn parse_operand(text: &str) -> Result<Vec<Self>, String> {
        let trimmed = text.trim();
        if !trimmed.contains(',') {
            return Ok(vec![Self::parse(text)?]);
        }
        let parts: Vec<&str> = trimmed.split('.').collect();
        if parts.len() != 4 || !trimmed.bytes().all(|b| b == b',' || looks_numeric_byte(b)) {
            return Err(format!(
                "'{trimmed}' is not an address, a CIDR block, a range or a host name \
                 (a comma may only list an IPv4 octet's values, as in 198.18.0.1,5,7)"
            ));
        }
        let mut octets: Vec<Vec<(u8, u8)>> = Vec::with_capacity(4);
        for part in parts {
            let items = part
                .split(',')
                .map(parse_octet_range)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|why| format!("'{trimmed}': {why}"))?;
            octets.push(items);
        }
        let combinations = octets.iter().map(Vec::len).product::<usize>();
        if combinations > MOST_OCTET_COMBINATIONS {
            return Err(format!(
                "'{trimmed}': its octet lists make {combinations} ranges; \
                 {MOST_OCTET_COMBINATIONS} at most (a range per octet, 1-9, covers more at once)"
            ));
        }
        let mut specs = vec![[(0u8, 0u8); 4]];
        for (slot, items) in octets.iter().enumerate() {
            specs = specs
                .into_iter()
                .flat_map(|spec| {
                    items.iter().map(move |&item| {
                        let mut spec = spec;
                        spec[slot] = item;
                        spec
                    })
                })
                .collect();
        }
        Ok(specs.into_iter().map(Self::Octets).collect())
    }

    /// Parses one operand without octet lists. The rules are in docs/FORMAT.md, "Targets".
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("the target is empty".into());
        }
        if let Some((base, prefix)) = text.split_once('/') {
            return parse_network(base, prefix);
        }
        let unbracketed = text
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .unwrap_or(text);
        if let Ok(address) = unbracketed.parse::<IpAddr>() {
            return Ok(Self::Address(address));
        }
        if let Some((first, last)) = text.split_once('-')
            && let (Ok(first), Ok(last)) = (first.parse::<IpAddr>(), last.parse::<IpAddr>())
        {
            return parse_span(first, last);
        }
        if text.contains(':') {
            return Err(format!("'{text}' is not an IPv6 address"));
        }
        if looks_numeric(text) {
            return parse_octets(text);
        }
        validate_name(text)?;
        Ok(Self::Name(text.to_owned()))
    }

    /// How many addresses the spec stands for; `None` for a name, which is resolved later.
    pub fn count(&self) -> Option<u128> {
        match self {
            Self::Address(_) => Some(1),
            Self::Network { base, prefix } => {
                let host_bits = u32::from(bits_of(*base)) - u32::from(*prefix);
                Some(1u128 << host_bits)
            }
            Self::Span { first, last } => Some(to_u128(*last) - to_u128(*first) + 1),
            Self::Octets(octets) => Some(
                octets
                    .iter()
                    .map(|&(lo, hi)| u128::from(hi - lo) + 1)
                    .product(),
            ),
            Self::Name(_) => None,
        }
    }

    /// The `index`-th address (0-based), or `None` past the end or for a name.
    pub fn address(&self, index: u128) -> Option<IpAddr> {
        if index >= self.count()? {
            return None;
        }
        match self {
            Self::Address(address) => Some(*address),
            Self::Network { base, .. } => Some(from_u128(to_u128(*base) + index, *base)),
            Self::Span { first, .. } => Some(from_u128(to_u128(*first) + index, *first)),
            Self::Octets(octets) => {
                // Mixed radix, the last octet varying fastest.
                let mut rest = index;
                let mut out = [0u8; 4];
                for (slot, &(lo, hi)) in out.iter_mut().zip(octets).rev() {
                    let width = u128::from(hi - lo) + 1;
                    *slot = lo + u8::try_from(rest % width).expect("below width");
                    rest /= width;
                }
                Some(IpAddr::V4(Ipv4Addr::from(out)))
            }
            Self::Name(_) => None,
        }
    }

    /// Whether the spec stands for `address` (an exclusion list asks this; a name stands
    /// for nothing until it is resolved).
    pub fn contains(&self, address: IpAddr) -> bool {
        let same_family = |other: IpAddr| other.is_ipv4() == address.is_ipv4();
        let value = to_u128(address);
        match self {
            Self::Address(a) => *a == address,
            Self::Network { base, prefix } => {
                let mask = network_mask(bits_of(*base), *prefix);
                same_family(*base) && value & mask == to_u128(*base) & mask
            }
            Self::Span { first, last } => {
                same_family(*first) && (to_u128(*first)..=to_u128(*last)).contains(&value)
            }
            Self::Octets(octets) => match address {
                IpAddr::V4(v4) => v4
                    .octets()
                    .iter()
                    .zip(octets)
                    .all(|(o, &(lo, hi))| (lo..=hi).contains(o)),
                IpAddr::V6(_) => false,
            },
            Self::Name(_) => false,
        }
    }

    /// Every address, in order, computed one at a time.
    pub fn addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        let len = self.count().unwrap_or(0);
        let mut index = 0u128;
        std::iter::from_fn(move || {
            if index >= len {
                return None;
            }
            index += 1;
            self.address(index - 1)
        })
    }
}

impl fmt::Display for TargetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Address(address) => write!(f, "{address}"),
            Self::Network { base, prefix } => write!(f, "{base}/{prefix}"),
            Self::Span { first, last } => write!(f, "{first}-{last}"),
            Self::Octets(octets) => {
                for (i, (lo, hi)) in octets.iter().enumerate() {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    if lo == hi {
                        write!(f, "{lo}")?;
                    } else {
                        write!(f, "{lo}-{hi}")?;
                    }
                }
                Ok(())
            }
            Self::Name(name) => f.write_str(name),
        }
    }
}

fn bits_of(address: IpAddr) -> u8 {
    if address.is_ipv4() { 32 } else { 128 }
}

/// The bits of a `prefix`-long network in an address of `bits` bits, as a number.
fn network_mask(bits: u8, prefix: u8) -> u128 {
    u128::MAX.checked_shl(u32::from(bits - prefix)).unwrap_or(0)
}

fn to_u128(address: IpAddr) -> u128 {
    match address {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// An address of the same family as `family` from its number.
fn from_u128(value: u128, family: IpAddr) -> IpAddr {
    match family {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(
            u32::try_from(value).expect("IPv4 arithmetic stays in 32 bits"),
        )),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(value)),
    }
}

fn parse_network(base: &str, prefix: &str) -> Result<TargetSpec, String> {
    let address: IpAddr = base
        .parse()
        .map_err(|_| format!("'{base}' is not an IP address (in a CIDR block)"))?;
    let bits = bits_of(address);
    let prefix: u8 =
        prefix.parse().ok().filter(|p| *p <= bits).ok_or_else(|| {
            format!("'/{prefix}' is not a prefix length for this address (0-{bits})")
        })?;
    if address.is_ipv6() && prefix == 0 {
        return Err("an IPv6 /0 has more addresses than can be counted".into());
    }
    Ok(TargetSpec::Network {
        base: from_u128(to_u128(address) & network_mask(bits, prefix), address),
        prefix,
    })
}

fn parse_span(first: IpAddr, last: IpAddr) -> Result<TargetSpec, String> {
    if first.is_ipv4() != last.is_ipv4() {
        return Err(format!("range {first}-{last} mixes IPv4 and IPv6"));
    }
    if to_u128(first) > to_u128(last) {
        return Err(format!("range {first}-{last} is reversed"));
    }
    if to_u128(last) - to_u128(first) == u128::MAX {
        return Err("that range has more addresses than can be counted".into());
    }
    Ok(TargetSpec::Span { first, last })
}

/// The most ranges one operand's octet lists may stand for: a list is for a few hosts
/// typed by hand, and every range is a spec held for the whole scan.
const MOST_OCTET_COMBINATIONS: usize = 4096;

fn looks_numeric(text: &str) -> bool {
    text.bytes().all(looks_numeric_byte)
}

fn looks_numeric_byte(b: u8) -> bool {
    b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'*')
}

fn parse_octets(text: &str) -> Result<TargetSpec, String> {
    let parts: Vec<&str> = text.split('.').collect();
    if parts.len() != 4 {
        return Err(format!(
            "'{text}' is not an IPv4 address or range (expected four octets, like 198.18.0.1-20)"
        ));
    }
    let mut octets = [(0u8, 0u8); 4];
    for (slot, part) in octets.iter_mut().zip(&parts) {
        *slot = parse_octet_range(part).map_err(|why| format!("'{text}': {why}"))?;
    }
    Ok(TargetSpec::Octets(octets))
}

fn parse_octet_range(part: &str) -> Result<(u8, u8), String> {
    let octet = |s: &str, default: u8| -> Result<u8, String> {
        if s.is_empty() {
            return Ok(default);
        }
        if !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("'{s}' is not an octet"));
        }
        s.parse::<u8>()
            .map_err(|_| format!("octet {s} is more than 255"))
    };
    if part == "*" {
        return Ok((0, 255));
    }
    if part.is_empty() {
        return Err("an octet is empty".into());
    }
    let (lo, hi) = if let Some((lo, hi)) = part.split_once('-') {
        (octet(lo, 0)?, octet(hi, 255)?)
    } else {
        let value = octet(part, 0)?;
        (value, value)
    };
    if lo > hi {
        return Err(format!("octet range {part} is reversed"));
    }
    Ok((lo, hi))
}

/// Host names as RFC 1123 allows them (plus `_`, which real DNS zones contain).
fn validate_name(text: &str) -> Result<(), String> {
    let name = text.strip_suffix('.').unwrap_or(text);
    let bad = || format!("'{text}' is not an address, a CIDR block, a range or a host name");
    if name.len() > 253 || name.is_empty() {
        return Err(bad());
    }
    for label in name.split('.') {
        let valid = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(bad());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> TargetSpec {
        TargetSpec::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn all(text: &str) -> Vec<String> {
        spec(text).addresses().map(|a| a.to_string()).collect()
    }

    #[test]
    fn literals_and_names() {
        assert_eq!(all("127.0.0.1"), ["127.0.0.1"]);
        assert_eq!(all("::1"), ["::1"]);
        assert_eq!(all("[::1]"), ["::1"]);
        assert_eq!(spec("localhost"), TargetSpec::Name("localhost".into()));
        assert_eq!(
            spec("db-1.example.internal."),
            TargetSpec::Name("db-1.example.internal.".into())
        );
        assert_eq!(spec("localhost").count(), None);
    }

    #[test]
    fn octet_lists_are_several_specs_in_their_order() {
        let listed = |text: &str| -> Vec<String> {
            TargetSpec::parse_operand(text)
                .unwrap_or_else(|e| panic!("{text}: {e}"))
                .iter()
                .flat_map(TargetSpec::addresses)
                .map(|a| a.to_string())
                .collect()
        };
        assert_eq!(listed("127.0.0.1,2"), ["127.0.0.1", "127.0.0.2"]);
        assert_eq!(
            listed("198.18.0,2.7,1-2"),
            [
                "198.18.0.7",
                "198.18.0.1",
                "198.18.0.2",
                "198.18.2.7",
                "198.18.2.1",
                "198.18.2.2"
            ]
        );
        assert_eq!(listed("localhost"), ["localhost"; 0]);
        for bad in [
            "198.18.0.1,",
            "198.18.0.1,300",
            "a.b,c",
            "198.18.0,1",
            "::1,2",
        ] {
            assert!(TargetSpec::parse_operand(bad).is_err(), "{bad}");
        }
        let many = TargetSpec::parse_operand(
            "1,2,3,4,5,6,7,8.1,2,3,4,5,6,7,8.1,2,3,4,5,6,7,8.1,2,3,4,5,6,7,8,9",
        );
        let many = many.unwrap_err();
        assert!(many.contains("4608 ranges; 4096 at most"), "{many}");
    }

    #[test]
    fn cidr_blocks() {
        let block = spec("198.18.0.0/24");
        assert_eq!(block.count(), Some(256));
        assert_eq!(block.address(0).unwrap().to_string(), "198.18.0.0");
        assert_eq!(block.address(255).unwrap().to_string(), "198.18.0.255");
        assert_eq!(block.address(256), None);
        assert_eq!(
            all("198.18.0.77/30"),
            ["198.18.0.76", "198.18.0.77", "198.18.0.78", "198.18.0.79"]
        );
        assert_eq!(spec("198.18.0.1/32").count(), Some(1));
        assert_eq!(spec("0.0.0.0/0").count(), Some(1 << 32));
        let v6 = spec("2001:db8::/120");
        assert_eq!(v6.count(), Some(256));
        assert_eq!(v6.address(255).unwrap().to_string(), "2001:db8::ff");
        assert_eq!(spec("2001:db8::/32").count(), Some(1 << 96));
    }

    #[test]
    fn huge_sets_are_never_expanded() {
        let v4 = spec("198.18.0.0/15");
        assert_eq!(v4.count(), Some(131_072));
        assert_eq!(v4.address(131_071).unwrap().to_string(), "198.19.255.255");
        let v6 = spec("2001:db8::/64");
        assert_eq!(v6.count(), Some(1 << 64));
        assert_eq!(
            v6.address((1 << 64) - 1).unwrap().to_string(),
            "2001:db8::ffff:ffff:ffff:ffff"
        );
        assert_eq!(v6.addresses().nth(3).unwrap().to_string(), "2001:db8::3");
    }

    #[test]
    fn ranges() {
        assert_eq!(spec("198.18.0.1-20").count(), Some(20));
        assert_eq!(
            all("198.18.0.1-3"),
            ["198.18.0.1", "198.18.0.2", "198.18.0.3"]
        );
        assert_eq!(
            all("198.18.0-1.254-255"),
            [
                "198.18.0.254",
                "198.18.0.255",
                "198.18.1.254",
                "198.18.1.255"
            ]
        );
        assert_eq!(spec("198.18.0.*").count(), Some(256));
        assert_eq!(spec("198.18.0.250-").count(), Some(6));
        assert_eq!(
            all("198.18.0.255-198.18.1.1"),
            ["198.18.0.255", "198.18.1.0", "198.18.1.1"]
        );
        assert_eq!(
            all("2001:db8::fe-2001:db8::100"),
            ["2001:db8::fe", "2001:db8::ff", "2001:db8::100"]
        );
        assert_eq!(spec("198.18.0.1-20").to_string(), "198.18.0.1-20");
    }

    #[test]
    fn membership() {
        let inside = |text: &str, address: &str| spec(text).contains(address.parse().unwrap());
        assert!(inside("198.18.0.0/24", "198.18.0.77"));
        assert!(!inside("198.18.0.0/24", "198.18.1.0"));
        assert!(!inside("198.18.0.0/24", "::1"));
        assert!(inside("0.0.0.0/0", "203.0.113.9"));
        assert!(inside("2001:db8::/120", "2001:db8::ff"));
        assert!(!inside("2001:db8::/120", "2001:db8::100"));
        assert!(inside("198.18.0.1-20", "198.18.0.20"));
        assert!(!inside("198.18.0.1-20", "198.18.0.21"));
        assert!(inside("2001:db8::fe-2001:db8::100", "2001:db8::ff"));
        assert!(inside("127.0.0.1", "127.0.0.1"));
        assert!(
            !inside("localhost", "127.0.0.1"),
            "names stand for nothing unresolved"
        );
    }

    #[test]
    fn malformed_targets_say_why() {
        let cases = [
            ("", "empty"),
            ("198.18.0.300", "octet 300 is more than 255"),
            ("198.18.0.20-1", "octet range 20-1 is reversed"),
            ("198.18.0", "expected four octets"),
            ("198.18.0.0/33", "'/33' is not a prefix length"),
            ("198.18.0.0/x", "'/x' is not a prefix length"),
            ("2001:db8::/129", "'/129' is not a prefix length"),
            ("::/0", "more addresses than can be counted"),
            ("example.com/24", "not an IP address"),
            ("198.18.0.9-198.18.0.1", "reversed"),
            ("198.18.0.1-2001:db8::1", "mixes IPv4 and IPv6"),
            ("2001:db8:::1", "not an IPv6 address"),
            (
                "bad_host!",
                "is not an address, a CIDR block, a range or a host name",
            ),
            ("-leading.example", "is not an address"),
            ("a..b", "is not an address"),
            ("1.2.3.4.5", "expected four octets"),
        ];
        for (input, expected) in cases {
            let error = TargetSpec::parse(input).unwrap_err();
            assert!(error.contains(expected), "{input:?}: got {error:?}");
        }
    }
}
