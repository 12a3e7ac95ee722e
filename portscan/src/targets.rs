//! The hosts of a scan: target operands, `-iL` files and stdin turned into one indexed
//! table, so the scan order can ask for host `i` without expanding a CIDR block into memory.
//! Names are resolved up front through the system resolver; a name that does not resolve
//! is reported and skipped, and the rest of the scan goes on.

use std::collections::HashMap;
use std::net::{IpAddr, ToSocketAddrs};

use crate::scope;
use crate::target_spec::TargetSpec;
use common::contract::error::{Error, Result};
use common::contract::input::{LineRead, LineSource};

/// One host: the target as written, the address probed, and where it stands in the
/// table. Two operands that name one address are two hosts, scanned and reported apart,
/// as nmap does: the index keeps their results from mixing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Host {
    pub label: String,
    pub address: IpAddr,
    pub index: u64,
}

impl Host {
    /// How a message names the host: its label, and the address too where the label is a
    /// name.
    pub fn describe(&self) -> String {
        if self.label == self.address.to_string() {
            self.label.clone()
        } else {
            format!("{} ({})", self.label, self.address)
        }
    }
}

#[derive(Debug, Clone)]
enum Group {
    /// Addresses computed on demand; each is its own label.
    Spec(TargetSpec),
    /// A resolved name: the name labels every address.
    Resolved {
        name: String,
        addresses: Vec<IpAddr>,
        /// The name's other addresses, left out without --resolve-all.
        unscanned: Vec<IpAddr>,
    },
}

impl Group {
    fn count(&self) -> u64 {
        match self {
            Self::Spec(spec) => u64::try_from(spec.count().unwrap_or(0)).unwrap_or(u64::MAX),
            Self::Resolved { addresses, .. } => addresses.len() as u64,
        }
    }
}

/// Every host of the scan, indexed.
#[derive(Debug, Default, Clone)]
pub struct Targets {
    groups: Vec<Group>,
    /// Where each group's first host is in the whole table.
    starts: Vec<u64>,
    len: u64,
    excluded: Vec<TargetSpec>,
    excluded_addresses: Vec<IpAddr>,
    /// Hosts left out by index: those an earlier stage has dealt with.
    skipped: Option<IndexSet>,
}

/// A set of host indices, one bit each: a /8 costs 2 MB.
#[derive(Debug, Clone)]
pub struct IndexSet {
    words: Vec<u64>,
}

impl IndexSet {
    /// The most indices a set is made for.
    pub const MOST: u64 = 1 << 27;

    /// An empty set for indices below `len`, or `None` past [`Self::MOST`].
    pub fn new(len: u64) -> Option<Self> {
        (len <= Self::MOST).then(|| Self {
            words: vec![0; usize::try_from(len.div_ceil(64)).expect("at most 2^21 words")],
        })
    }

    pub fn insert(&mut self, index: u64) {
        let word = usize::try_from(index / 64).expect("an index below the set's length");
        self.words[word] |= 1 << (index % 64);
    }

    pub fn contains(&self, index: u64) -> bool {
        usize::try_from(index / 64)
            .ok()
            .and_then(|word| self.words.get(word))
            .is_some_and(|word| word & (1 << (index % 64)) != 0)
    }
}

/// What building the table left out, to be reported.
#[derive(Debug, Default)]
pub struct Problems {
    /// One line each, for stderr.
    pub messages: Vec<String>,
    /// The targets' names that did not resolve: hosts this run knows nothing of, whose
    /// ports in a baseline are not reported removed.
    pub unresolved: Vec<String>,
}

impl Problems {
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// How many problems: each a host, or an --exclude that may have let one in.
    pub fn count(&self) -> u64 {
        self.messages.len() as u64
    }
}

impl Targets {
    /// Builds the table. `resolve` maps a name to its addresses (the system resolver in a
    /// real run), and `all_addresses` keeps all of them rather than the first.
    pub fn build(
        specs: Vec<TargetSpec>,
        excluded: Vec<TargetSpec>,
        all_addresses: bool,
        resolve: impl Fn(&str) -> std::io::Result<Vec<IpAddr>>,
    ) -> Result<(Self, Problems)> {
        let mut targets = Targets::default();
        let mut problems = Problems::default();
        for spec in specs {
            let group = match spec {
                TargetSpec::Name(name) => match resolve(&name) {
                    Ok(mut addresses) if !addresses.is_empty() => {
                        dedup_in_order(&mut addresses);
                        let unscanned = if all_addresses {
                            Vec::new()
                        } else {
                            addresses.split_off(1)
                        };
                        Group::Resolved {
                            name,
                            addresses,
                            unscanned,
                        }
                    }
                    Ok(_) => {
                        problems
                            .messages
                            .push(format!("{name}: the name has no address"));
                        problems.unresolved.push(name);
                        continue;
                    }
                    Err(error) => {
                        problems
                            .messages
                            .push(format!("{name}: cannot resolve: {error}"));
                        problems.unresolved.push(name);
                        continue;
                    }
                },
                spec => Group::Spec(spec),
            };
            targets.starts.push(targets.len);
            targets.len = targets
                .len
                .checked_add(group.count())
                .ok_or_else(|| Error::usage("the targets hold more than 2^64 addresses"))?;
            targets.groups.push(group);
        }
        for spec in excluded {
            match spec {
                TargetSpec::Name(name) => match resolve(&name) {
                    Ok(addresses) => targets.excluded_addresses.extend(addresses),
                    Err(error) => {
                        problems
                            .messages
                            .push(format!("--exclude {name}: cannot resolve: {error}"));
                    }
                },
                spec => targets.excluded.push(spec),
            }
        }
        Ok((targets, problems))
    }

    /// A table of these hosts alone, each with its own label: the hosts that host
    /// discovery found up.
    pub fn from_hosts(hosts: Vec<Host>) -> Self {
        let mut targets = Targets::default();
        for host in hosts {
            targets.starts.push(targets.len);
            targets.len += 1;
            targets.groups.push(Group::Resolved {
                name: host.label,
                addresses: vec![host.address],
                unscanned: Vec::new(),
            });
        }
        targets
    }

    /// The same table without the hosts in `skipped`, which keep their indices.
    pub fn without(mut self, skipped: IndexSet) -> Self {
        self.skipped = Some(skipped);
        self
    }

    /// Each name's addresses that are not scanned (all but the first, without
    /// --resolve-all), which the report mentions as nmap's does.
    pub fn unscanned_addresses(&self) -> HashMap<String, Vec<IpAddr>> {
        let mut unscanned = HashMap::new();
        for group in &self.groups {
            if let Group::Resolved {
                name,
                unscanned: addresses,
                ..
            } = group
                && !addresses.is_empty()
            {
                unscanned.insert(name.clone(), addresses.clone());
            }
        }
        unscanned
    }

    /// How many hosts, excluded ones included.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Host `index`, or `None` if it is excluded or skipped.
    pub fn get(&self, index: u64) -> Option<Host> {
        if self.skipped.as_ref().is_some_and(|set| set.contains(index)) {
            return None;
        }
        let group = self.starts.partition_point(|&start| start <= index) - 1;
        let offset = index - self.starts[group];
        let host = match &self.groups[group] {
            Group::Spec(spec) => {
                let address = spec.address(u128::from(offset))?;
                // A range never means multicast, this network or the reserved block; an
                // address named alone does.
                if !matches!(spec, TargetSpec::Address(_)) && scope::never_meant(address) {
                    return None;
                }
                Host {
                    label: address.to_string(),
                    address,
                    index,
                }
            }
            Group::Resolved {
                name, addresses, ..
            } => Host {
                label: name.clone(),
                address: addresses[usize::try_from(offset).expect("a resolved list is small")],
                index,
            },
        };
        let excluded = self.excluded_addresses.contains(&host.address)
            || self.excluded.iter().any(|spec| spec.contains(host.address));
        (!excluded).then_some(host)
    }
}

fn dedup_in_order(addresses: &mut Vec<IpAddr>) {
    let mut seen = Vec::new();
    addresses.retain(|a| {
        let new = !seen.contains(a);
        seen.push(*a);
        new
    });
}

/// The system resolver (getaddrinfo), in its order.
pub fn system_resolve(name: &str) -> std::io::Result<Vec<IpAddr>> {
    Ok((name, 0)
        .to_socket_addrs()?
        .map(|socket| socket.ip())
        .collect())
}

/// Parses a comma-separated `--exclude` list.
pub fn parse_list(text: &str) -> Result<Vec<TargetSpec>, String> {
    text.split(',').map(TargetSpec::parse).collect()
}

/// Reads targets from a file or stdin (`-`): whitespace-separated, `#` starts a comment.
/// A file that cannot be opened is said with the `option` that named it (`-iL FILE`).
pub fn read_list(option: &str, path: &str, out: &mut Vec<TargetSpec>) -> Result<()> {
    let mut source = LineSource::open(path).map_err(|error| match error {
        Error::Input { source, .. } if path != "-" => {
            Error::input(format!("{option} {path}"), source)
        }
        other => other,
    })?;
    let mut line = Vec::new();
    loop {
        match source.read_line(&mut line)? {
            LineRead::End => return Ok(()),
            LineRead::TooLong => {
                return Err(Error::usage(format!(
                    "{}:{}: the line is too long",
                    source.name(),
                    source.line_number()
                )));
            }
            LineRead::Line => {}
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.split('#').next().unwrap_or_default();
        for word in text.split_whitespace() {
            let specs = TargetSpec::parse_operand(word).map_err(|why| {
                Error::usage(format!("{}:{}: {why}", source.name(), source.line_number()))
            })?;
            out.extend(specs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> TargetSpec {
        TargetSpec::parse(text).unwrap()
    }

    fn fake_resolve(name: &str) -> std::io::Result<Vec<IpAddr>> {
        match name {
            "two.test" => Ok(vec![
                "198.18.0.7".parse().unwrap(),
                "2001:db8::7".parse().unwrap(),
                "198.18.0.7".parse().unwrap(),
            ]),
            _ => Err(std::io::Error::other("no such name")),
        }
    }

    fn hosts(targets: &Targets) -> Vec<String> {
        (0..targets.len())
            .filter_map(|i| targets.get(i))
            .map(|h| format!("{} {}", h.label, h.address))
            .collect()
    }

    #[test]
    fn ranges_leave_out_multicast_and_reserved_addresses_unless_named() {
        let specs = vec![
            spec("223.255.255.254-224.0.0.1"),
            spec("0.0.0.0/31"),
            spec("ff02::1-ff02::2"),
            spec("224.0.0.251"),
            spec("255.255.255.255"),
        ];
        let (targets, _) = Targets::build(specs, vec![], false, fake_resolve).unwrap();
        assert_eq!(
            hosts(&targets),
            [
                "223.255.255.254 223.255.255.254",
                "223.255.255.255 223.255.255.255",
                "224.0.0.251 224.0.0.251",
                "255.255.255.255 255.255.255.255"
            ]
        );
    }

    #[test]
    fn a_table_without_some_hosts_keeps_the_others_and_their_indices() {
        let (all, _) =
            Targets::build(vec![spec("198.18.0.0/29")], vec![], false, fake_resolve).unwrap();
        let mut done = IndexSet::new(all.len()).unwrap();
        for index in [0, 3, 7] {
            done.insert(index);
        }
        assert!(done.contains(3) && !done.contains(4) && !done.contains(1 << 40));
        let rest = all.without(done);
        assert_eq!(rest.len(), 8);
        let left: Vec<(u64, String)> = (0..rest.len())
            .filter_map(|index| rest.get(index))
            .map(|host| (host.index, host.label))
            .collect();
        let expected: Vec<(u64, String)> = [1, 2, 4, 5, 6]
            .map(|index| (index, format!("198.18.0.{index}")))
            .into();
        assert_eq!(left, expected);
        assert!(IndexSet::new(IndexSet::MOST + 1).is_none());
    }

    #[test]
    fn groups_are_indexed_in_order() {
        let (targets, problems) = Targets::build(
            vec![
                spec("198.18.0.0/31"),
                spec("two.test"),
                spec("nowhere.test"),
                spec("::1"),
            ],
            vec![],
            false,
            fake_resolve,
        )
        .unwrap();
        assert_eq!(
            problems.messages,
            ["nowhere.test: cannot resolve: no such name"]
        );
        assert_eq!(problems.unresolved, ["nowhere.test"]);
        assert_eq!(
            hosts(&targets),
            [
                "198.18.0.0 198.18.0.0",
                "198.18.0.1 198.18.0.1",
                "two.test 198.18.0.7",
                "::1 ::1"
            ]
        );
        let (all, _) = Targets::build(vec![spec("two.test")], vec![], true, fake_resolve).unwrap();
        assert_eq!(hosts(&all), ["two.test 198.18.0.7", "two.test 2001:db8::7"]);
        // The address left out is kept for the report's "Other addresses" line.
        let unscanned = targets.unscanned_addresses();
        assert_eq!(unscanned.len(), 1);
        assert_eq!(
            unscanned["two.test"],
            ["2001:db8::7".parse::<IpAddr>().unwrap()]
        );
        assert!(all.unscanned_addresses().is_empty());
    }

    #[test]
    fn a_table_of_found_hosts_keeps_their_labels() {
        let found = vec![
            Host {
                label: "two.test".into(),
                address: "2001:db8::7".parse().unwrap(),
                index: 3,
            },
            Host {
                label: "198.18.0.9".into(),
                address: "198.18.0.9".parse().unwrap(),
                index: 9,
            },
        ];
        let targets = Targets::from_hosts(found);
        assert_eq!(
            hosts(&targets),
            ["two.test 2001:db8::7", "198.18.0.9 198.18.0.9"]
        );
        assert_eq!(Targets::from_hosts(Vec::new()).len(), 0);
    }

    #[test]
    fn exclusions_remove_hosts() {
        let (targets, _) = Targets::build(
            vec![spec("198.18.0.0/28"), spec("2001:db8::/126")],
            parse_list("198.18.0.0/30,198.18.0.8-9,198.18.0.14-20,two.test,2001:db8::1").unwrap(),
            false,
            fake_resolve,
        )
        .unwrap();
        let left: Vec<String> = hosts(&targets)
            .iter()
            .map(|h| h.split(' ').next().unwrap().to_owned())
            .collect();
        assert_eq!(
            left,
            [
                "198.18.0.4",
                "198.18.0.5",
                "198.18.0.6",
                "198.18.0.10",
                "198.18.0.11",
                "198.18.0.12",
                "198.18.0.13",
                "2001:db8::",
                "2001:db8::2",
                "2001:db8::3"
            ]
        );
        assert_eq!(targets.len(), 20);
    }

    #[test]
    fn lists_are_read_with_comments() {
        let path = std::env::temp_dir().join(format!("portscan-targets-{}", std::process::id()));
        std::fs::write(
            &path,
            "127.0.0.1 ::1\n# a comment\n\nlocalhost # trailing\n",
        )
        .unwrap();
        let mut specs = Vec::new();
        read_list("-iL", path.to_str().unwrap(), &mut specs).unwrap();
        assert_eq!(specs, [spec("127.0.0.1"), spec("::1"), spec("localhost")]);
        std::fs::write(&path, "127.0.0.1\n300.1.1.1\n").unwrap();
        let error = read_list("-iL", path.to_str().unwrap(), &mut specs).unwrap_err();
        assert!(
            error.to_string().contains(":2: '300.1.1.1': octet 300"),
            "{error}"
        );
        std::fs::remove_file(path).unwrap();
    }
}
