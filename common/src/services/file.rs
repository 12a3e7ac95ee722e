//! Readers for the two text formats of port tables: `/etc/services` (name, port/proto,
//! aliases) and nmap's `nmap-services` (name, port/proto, open-frequency). Both are
//! `name port/proto field... # comment`; each malformed line is reported with its number.

use std::collections::HashMap;

use crate::ports::{Proto, parse_port_proto};

/// One table entry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub name: String,
    pub aliases: Vec<String>,
    pub description: Option<String>,
    /// nmap's open-frequency; `None` in `/etc/services` files.
    pub frequency: Option<f64>,
}

/// A port table read from one file: the first entry for a (port, protocol) wins, as in
/// getservbyport(3).
#[derive(Debug, Default)]
pub(crate) struct Table {
    by_port: HashMap<(u16, Proto), Entry>,
    by_name: HashMap<String, Vec<(u16, Proto)>>,
}

/// Which of the two formats a file is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    EtcServices,
    NmapServices,
}

/// A line that could not be read, with its 1-based number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub line: usize,
    pub why: String,
}

impl Table {
    pub fn parse(text: &str, flavor: Flavor) -> (Self, Vec<Problem>) {
        let mut table = Table::default();
        let mut problems = Vec::new();
        for (index, line) in text.lines().enumerate() {
            match parse_line(line, flavor) {
                Ok(None) => {}
                Ok(Some((port, proto, entry))) => table.insert(port, proto, entry),
                Err(why) => problems.push(Problem {
                    line: index + 1,
                    why,
                }),
            }
        }
        (table, problems)
    }

    fn insert(&mut self, port: u16, proto: Proto, entry: Entry) {
        if self.by_port.contains_key(&(port, proto)) {
            return;
        }
        for name in std::iter::once(&entry.name).chain(&entry.aliases) {
            self.by_name
                .entry(name.to_ascii_lowercase())
                .or_default()
                .push((port, proto));
        }
        self.by_port.insert((port, proto), entry);
    }

    pub fn by_port(&self, port: u16, proto: Proto) -> Option<&Entry> {
        self.by_port.get(&(port, proto))
    }

    /// The (port, protocol) pairs a name or alias stands for, ignoring ASCII case.
    pub fn by_name(&self, name: &str) -> &[(u16, Proto)] {
        self.by_name
            .get(&name.to_ascii_lowercase())
            .map_or(&[], Vec::as_slice)
    }

    pub fn entries(&self) -> impl Iterator<Item = ((u16, Proto), &Entry)> {
        self.by_port.iter().map(|(key, entry)| (*key, entry))
    }
}

fn parse_line(line: &str, flavor: Flavor) -> Result<Option<(u16, Proto, Entry)>, String> {
    let (data, comment) = match line.split_once('#') {
        Some((data, comment)) => (data, Some(comment.trim())),
        None => (line, None),
    };
    let mut fields = data.split_whitespace();
    let Some(name) = fields.next() else {
        return Ok(None);
    };
    let Some(port_proto) = fields.next() else {
        return Err(format!("'{name}' has no port/protocol"));
    };
    if port_proto
        .split_once('/')
        .is_some_and(|(port, _)| port == "0")
    {
        // /etc/services lists port 0 for a few reserved names; no port list can name it.
        return Ok(None);
    }
    let Some((_, proto_name)) = port_proto.split_once('/') else {
        return Err(format!("'{port_proto}' is not PORT/PROTOCOL"));
    };
    if proto_name.parse::<Proto>().is_err() && proto_name.bytes().all(|b| b.is_ascii_alphabetic()) {
        // Entries for protocols without ports of ours (AppleTalk's ddp) are not mistakes.
        return Ok(None);
    }
    let (port, proto) = parse_port_proto(port_proto, Proto::Tcp)?;
    let rest: Vec<String> = fields.map(str::to_owned).collect();
    let (aliases, frequency) = match flavor {
        Flavor::EtcServices => (rest, None),
        Flavor::NmapServices => {
            let frequency = rest
                .first()
                .and_then(|f| f.parse::<f64>().ok())
                .filter(|f| (0.0..=1.0).contains(f))
                .ok_or_else(|| format!("{port_proto}: no open-frequency between 0 and 1"))?;
            (Vec::new(), Some(frequency))
        }
    };
    let description = comment.filter(|c| !c.is_empty()).map(str::to_owned);
    Ok(Some((
        port,
        proto,
        Entry {
            name: name.to_owned(),
            aliases,
            description,
            frequency,
        },
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etc_services_format() {
        let text = "\
# comment line
tcpmux		1/tcp				# TCP port service multiplexer
ssh		22/tcp				# SSH Remote Login Protocol
smtp		25/tcp		mail
domain		53/udp
myweb		8080/tcp	web alt-http
dup		22/tcp
broken
bad		70000/tcp
worse		22/1cmp
rtmp		1/ddp				# Routing Table Maintenance Protocol
";
        let (table, problems) = Table::parse(text, Flavor::EtcServices);
        assert_eq!(table.by_port(22, Proto::Tcp).unwrap().name, "ssh");
        assert_eq!(
            table
                .by_port(22, Proto::Tcp)
                .unwrap()
                .description
                .as_deref(),
            Some("SSH Remote Login Protocol")
        );
        assert_eq!(table.by_name("mail"), [(25, Proto::Tcp)]);
        assert_eq!(table.by_name("ALT-HTTP"), [(8080, Proto::Tcp)]);
        assert!(table.by_port(53, Proto::Tcp).is_none());
        let lines: Vec<usize> = problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, [8, 9, 10]);
        assert!(problems[1].why.contains("out of range"), "{problems:?}");
    }

    #[test]
    fn nmap_services_format() {
        let text = "http\t80/tcp\t0.484143\t# World Wide Web HTTP\nunknown\t4/tcp\t0.000477\nx\t9/tcp\tlots\n";
        let (table, problems) = Table::parse(text, Flavor::NmapServices);
        assert_eq!(
            table.by_port(80, Proto::Tcp).unwrap().frequency,
            Some(0.484_143)
        );
        assert_eq!(table.by_port(4, Proto::Tcp).unwrap().name, "unknown");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].line, 3);
    }
}
