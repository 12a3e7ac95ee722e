//! Readers for the two text formats of port tables: `/etc/services` (name, port/proto,
//! aliases) and nmap's `nmap-services` (name, port/proto, open-frequency). Both are
//! `name port/proto field... # comment`; each malformed line is reported with its number.

use super::compare_names;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use crate::services::ports::{Proto, parse_port};

/// One table entry, borrowing from the file's text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Entry {
    pub name: &'static str,
    /// The aliases, separated by whitespace, as they stand in the file.
    pub aliases: &'static str,
    pub description: Option<&'static str>,
    /// nmap's open-frequency; `None` in `/etc/services` files.
    pub frequency: Option<f64>,
}

/// A port table read from one file: the first entry for a (port, protocol) wins, as in
/// getservbyport(3). Entries borrow from the file's text, which lives as long as the
/// process (the tables are loaded once), so loading allocates no string per line: that
/// keeps a single lookup's start-up as cheap as getent's.
#[derive(Debug, Default)]
pub struct Table {
    by_port: Vec<((u16, Proto), Entry)>,
    /// The later entries for a (port, protocol) already taken: no port lookup sees them,
    /// but their names still stand for the port, as getservbyname(3) reads every line.
    shadowed: Vec<((u16, Proto), Entry)>,
    /// Names and aliases, sorted; built at the first name lookup (a port lookup, the
    /// common case, never needs it).
    by_name: OnceLock<Vec<(&'static str, (u16, Proto))>>,
}

/// Which of the two formats a file is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    EtcServices,
    NmapServices,
}

/// A line that could not be read, with its 1-based number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub why: String,
}

/// The data lines of a table file with their 1-based numbers, comments and blank lines
/// skipped. A plain byte loop: str::lines and its char searcher cost three times as much.
fn data_lines(text: &'static str) -> impl Iterator<Item = (usize, &'static str)> {
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut number = 0;
    std::iter::from_fn(move || {
        while start < bytes.len() {
            let end = bytes[start..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(bytes.len(), |at| start + at);
            let line = &text[start..end];
            start = end + 1;
            number += 1;
            if !line.is_empty() && !line.starts_with('#') {
                return Some((number, line));
            }
        }
        None
    })
}

/// A table file read only as far as a lookup needs: a single lookup scans the text for its
/// line and parses that one, which keeps `svcname 22` as quick to start as getent; from the
/// fifth lookup on (a filter), the whole file is indexed once.
#[derive(Debug)]
pub struct LazyTable {
    text: &'static str,
    flavor: Flavor,
    scans_left: AtomicU8,
    table: OnceLock<(Table, Vec<Problem>)>,
    /// What the scans found for a port, every protocol at once: a name lookup asks for
    /// 22/tcp, 22/udp and 22/sctp in turn, and one scan answers all three.
    scanned: Mutex<Vec<(u16, [Option<Entry>; 4])>>,
}

impl LazyTable {
    pub fn new(text: String, flavor: Flavor) -> Self {
        Self {
            text: text.leak(),
            flavor,
            scans_left: AtomicU8::new(4),
            table: OnceLock::new(),
            scanned: Mutex::new(Vec::new()),
        }
    }

    /// The whole table, parsed, with the problems met doing so.
    pub fn indexed(&self) -> &(Table, Vec<Problem>) {
        self.table
            .get_or_init(|| Table::parse_static(self.text, self.flavor))
    }

    fn scan(&self) -> bool {
        self.table.get().is_none()
            && self
                .scans_left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                    left.checked_sub(1)
                })
                .is_ok()
    }

    pub fn by_port(&self, port: u16, proto: Proto) -> Option<Entry> {
        let mut scanned = self.scanned.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, entries)) = scanned.iter().find(|(p, _)| *p == port) {
            return entries[proto.index()];
        }
        if !self.scan() {
            return self.indexed().0.by_port(port, proto).copied();
        }
        // A substring search (memchr's, a tenth of str's two-way search for a short
        // needle) finds the few candidate lines; each is parsed, and the first
        // line for each protocol of this port is its answer, as in getservbyport(3).
        let wanted = format!("{port}/");
        let mut entries = [None; 4];
        let bytes = self.text.as_bytes();
        for at in memchr::memmem::find_iter(bytes, &wanted) {
            // The port begins a token, after any leading zeros `parse_port` reads past
            // (`022/tcp` is 22/tcp; 1522/tcp is not).
            let token = bytes[..at]
                .iter()
                .rposition(|&b| b != b'0')
                .map_or(0, |i| i + 1);
            if token == 0 || !bytes[token - 1].is_ascii_whitespace() {
                continue;
            }
            let start = self.text[..at].rfind('\n').map_or(0, |i| i + 1);
            let end = self.text[at..]
                .find('\n')
                .map_or(self.text.len(), |i| at + i);
            if let Ok(Some((found, found_proto, entry))) =
                parse_line(&self.text[start..end], self.flavor)
                && found == port
            {
                entries[found_proto.index()].get_or_insert(entry);
            }
        }
        scanned.push((port, entries));
        entries[proto.index()]
    }

    pub fn by_name(&self, name: &str) -> Vec<(u16, Proto)> {
        if !self.scan() {
            return self.indexed().0.by_name(name).collect();
        }
        // As for ports, a substring search finds the candidate lines, in lower-cased pieces
        // of the text (names match without regard to case): a piece on the stack, rather
        // than a lower-cased copy of the whole file, spares a single lookup the page faults
        // of fresh memory. Pieces overlap by a name's length less one, so that each match
        // lies whole in exactly one piece.
        let lower_name = name.to_ascii_lowercase();
        let finder = memchr::memmem::Finder::new(&lower_name);
        let bytes = self.text.as_bytes();
        let overlap = lower_name.len().saturating_sub(1);
        let mut on_stack = [0_u8; 4096];
        let mut on_heap;
        let piece: &mut [u8] = if overlap < on_stack.len() / 2 {
            &mut on_stack
        } else {
            // An absurdly long name: the whole text in one piece.
            on_heap = vec![0; bytes.len()];
            &mut on_heap
        };
        let mut pairs = Vec::new();
        let mut last_line_start = None;
        let mut from = 0;
        while from < bytes.len() {
            let end = (from + piece.len()).min(bytes.len());
            let lower = &mut piece[..end - from];
            lower.copy_from_slice(&bytes[from..end]);
            lower.make_ascii_lowercase();
            for at in finder.find_iter(lower).map(|at| from + at) {
                let start = self.text[..at].rfind('\n').map_or(0, |i| i + 1);
                if last_line_start == Some(start) {
                    continue;
                }
                last_line_start = Some(start);
                let end = self.text[at..]
                    .find('\n')
                    .map_or(self.text.len(), |i| at + i);
                let line = &self.text[start..end];
                if line.starts_with('#') {
                    continue;
                }
                if let Ok(Some((port, proto, entry))) = parse_line(line, self.flavor)
                    && std::iter::once(entry.name)
                        .chain(entry.aliases.split_ascii_whitespace())
                        .any(|n| n.eq_ignore_ascii_case(name))
                {
                    pairs.push((port, proto));
                }
            }
            if end == bytes.len() {
                break;
            }
            from = end - overlap;
        }
        pairs
    }
}

impl Table {
    pub fn parse(text: String, flavor: Flavor) -> (Self, Vec<Problem>) {
        Self::parse_static(text.leak(), flavor)
    }

    fn parse_static(text: &'static str, flavor: Flavor) -> (Self, Vec<Problem>) {
        let mut by_port = Vec::new();
        let mut problems = Vec::new();
        for (index, line) in data_lines(text) {
            match parse_line(line, flavor) {
                Ok(None) => {}
                Ok(Some((port, proto, entry))) => by_port.push(((port, proto), entry)),
                Err(why) => problems.push(Problem { line: index, why }),
            }
        }
        // A stable sort keeps file order among equal keys, so the first is kept.
        by_port.sort_by_key(|(key, _)| *key);
        let mut kept: Vec<((u16, Proto), Entry)> = Vec::with_capacity(by_port.len());
        let mut shadowed = Vec::new();
        for item in by_port {
            if kept.last().is_some_and(|(key, _)| *key == item.0) {
                shadowed.push(item);
            } else {
                kept.push(item);
            }
        }
        let table = Self {
            by_port: kept,
            shadowed,
            by_name: OnceLock::new(),
        };
        (table, problems)
    }

    pub fn by_port(&self, port: u16, proto: Proto) -> Option<&Entry> {
        self.by_port
            .binary_search_by_key(&(port, proto), |(key, _)| *key)
            .ok()
            .map(|i| &self.by_port[i].1)
    }

    /// The (port, protocol) pairs a name or alias stands for, ignoring ASCII case.
    pub fn by_name<'a>(&'a self, name: &'a str) -> impl Iterator<Item = (u16, Proto)> + 'a {
        let by_name = self.by_name.get_or_init(|| {
            let mut by_name: Vec<(&'static str, (u16, Proto))> = self
                .by_port
                .iter()
                .chain(&self.shadowed)
                .flat_map(|(key, entry)| {
                    std::iter::once(entry.name)
                        .chain(entry.aliases.split_ascii_whitespace())
                        .map(move |name| (name, *key))
                })
                .collect();
            by_name.sort_by(|a, b| compare_names(a.0, b.0).then(a.1.cmp(&b.1)));
            by_name
        });
        let start = by_name.partition_point(|(n, _)| compare_names(n, name).is_lt());
        by_name[start..]
            .iter()
            .take_while(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, key)| *key)
    }

    pub fn entries(&self) -> impl Iterator<Item = ((u16, Proto), &Entry)> {
        self.by_port.iter().map(|(key, entry)| (*key, entry))
    }
}

fn parse_line(line: &'static str, flavor: Flavor) -> Result<Option<(u16, Proto, Entry)>, String> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let (data, comment) = match line.bytes().position(|b| b == b'#') {
        Some(at) => (&line[..at], Some(line[at + 1..].trim_ascii())),
        None => (line, None),
    };
    let mut fields = data.split_ascii_whitespace();
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
    let Some((port, proto_name)) = port_proto.split_once('/') else {
        return Err(format!("'{port_proto}' is not PORT/PROTOCOL"));
    };
    let proto = proto_name.parse::<Proto>();
    if proto.is_err() && proto_name.bytes().all(|b| b.is_ascii_alphabetic()) {
        // Entries for protocols without ports of ours (AppleTalk's ddp) are not mistakes.
        return Ok(None);
    }
    let port = parse_port(port.as_bytes())?;
    let proto = proto?;
    let aliases_start = fields
        .next()
        .map(|first| first.as_ptr() as usize - data.as_ptr() as usize);
    let rest = aliases_start.map_or("", |start| data[start..].trim_ascii_end());
    let (aliases, frequency) = match flavor {
        Flavor::EtcServices => (rest, None),
        Flavor::NmapServices => {
            let frequency = rest
                .split_ascii_whitespace()
                .next()
                .and_then(|f| f.parse::<f64>().ok())
                .filter(|f| (0.0..=1.0).contains(f))
                .ok_or_else(|| format!("{port_proto}: no open-frequency between 0 and 1"))?;
            ("", Some(frequency))
        }
    };
    let description = comment.filter(|c| !c.is_empty());
    Ok(Some((
        port,
        proto,
        Entry {
            name,
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
        let (table, problems) = Table::parse(text.to_owned(), Flavor::EtcServices);
        assert_eq!(table.by_port(22, Proto::Tcp).unwrap().name, "ssh");
        assert_eq!(
            table.by_port(22, Proto::Tcp).unwrap().description,
            Some("SSH Remote Login Protocol")
        );
        assert_eq!(
            table.by_name("mail").collect::<Vec<_>>(),
            [(25, Proto::Tcp)]
        );
        assert_eq!(
            table.by_name("ALT-HTTP").collect::<Vec<_>>(),
            [(8080, Proto::Tcp)]
        );
        assert_eq!(
            table.by_name("web").collect::<Vec<_>>(),
            [(8080, Proto::Tcp)]
        );
        assert!(table.by_port(53, Proto::Tcp).is_none());
        let lines: Vec<usize> = problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, [8, 9, 10]);
        assert!(problems[1].why.contains("out of range"), "{problems:?}");
    }

    #[test]
    fn lazy_tables_answer_like_indexed_ones() {
        let text = "ssh 22/tcp # SSH\nsmtp 25/tcp mail\nmail 26/tcp\nssh 22/tcp # second\n";
        let lazy = LazyTable::new(text.to_owned(), Flavor::EtcServices);
        let (table, _) = Table::parse(text.to_owned(), Flavor::EtcServices);
        for _ in 0..6 {
            assert_eq!(
                lazy.by_port(22, Proto::Tcp).unwrap().description,
                Some("SSH")
            );
            assert_eq!(
                lazy.by_port(22, Proto::Tcp),
                table.by_port(22, Proto::Tcp).copied()
            );
            assert_eq!(lazy.by_port(99, Proto::Tcp), None);
            assert_eq!(lazy.by_name("MAIL"), [(25, Proto::Tcp), (26, Proto::Tcp)]);
        }
        assert!(lazy.table.get().is_some(), "indexed after a few lookups");
    }

    /// Found by the fuzz target `services_file`: a port written with leading zeros is the
    /// port to the indexed table (`parse_port` reads `06` as 6), and was missed by the scan.
    #[test]
    fn lazy_port_lookups_read_leading_zeros_as_the_indexed_table_does() {
        let text = "# Transfer\nssh\t22/tcp\t0.182\ndomain\t06/udp\t0.213\t# DNS\nx 1006/udp 0.1\n";
        for flavor in [Flavor::EtcServices, Flavor::NmapServices] {
            let lazy = LazyTable::new(text.to_owned(), flavor);
            let (table, _) = Table::parse(text.to_owned(), flavor);
            let scanned = lazy.by_port(6, Proto::Udp);
            assert_eq!(scanned.map(|entry| entry.name), Some("domain"));
            assert_eq!(scanned, table.by_port(6, Proto::Udp).copied());
        }
    }

    /// Found by the fuzz target `services_file`: a name on a later line for a port already
    /// named still stands for that port, to the indexed table as to the scan (as
    /// getservbyname(3) reads every line), though the port keeps its first name.
    #[test]
    fn a_later_name_for_a_named_port_still_stands_for_it() {
        let text = "tcpmux\t1/tcp\nctpmux\t1/tcp # later\nother 2/tcp ctpmux\n";
        let lazy = LazyTable::new(text.to_owned(), Flavor::EtcServices);
        let scanned = lazy.by_name("ctpmux");
        let (table, _) = Table::parse(text.to_owned(), Flavor::EtcServices);
        let indexed: Vec<_> = table.by_name("CTPMUX").collect();
        assert_eq!(indexed, [(1, Proto::Tcp), (2, Proto::Tcp)]);
        assert_eq!(scanned, indexed);
        assert_eq!(table.by_port(1, Proto::Tcp).unwrap().name, "tcpmux");
    }

    /// A name is found wherever it stands in a long file, across the pieces the text is
    /// lower-cased in, in any case, as the indexed table finds it.
    #[test]
    fn lazy_name_lookups_in_a_long_file() {
        use std::fmt::Write as _;
        let mut text = String::new();
        for port in 1..=900_u16 {
            let name = if port % 97 == 0 { "Target" } else { "filler" };
            writeln!(text, "{name}-{port:03} {port}/tcp alias{port} TARGET").unwrap();
        }
        let (table, _) = Table::parse(text.clone(), Flavor::EtcServices);
        let long = "x".repeat(5000);
        for name in [
            "target-097",
            "TARGET-873",
            "alias500",
            "Alias1",
            "target",
            "filler-9",
            &long,
        ] {
            // A table of its own for each name, so each is a scan, not an index lookup.
            let lazy = LazyTable::new(text.clone(), Flavor::EtcServices);
            let expected: Vec<(u16, Proto)> = table.by_name(name).collect();
            let mut found = lazy.by_name(name);
            found.sort_unstable();
            assert_eq!(found, expected, "{name}");
            assert!(lazy.table.get().is_none());
        }
        assert_eq!(table.by_name("target").count(), 900);
    }

    #[test]
    fn nmap_services_format() {
        let text = "http\t80/tcp\t0.484143\t# World Wide Web HTTP\nunknown\t4/tcp\t0.000477\nx\t9/tcp\tlots\n";
        let (table, problems) = Table::parse(text.to_owned(), Flavor::NmapServices);
        assert_eq!(
            table.by_port(80, Proto::Tcp).unwrap().frequency,
            Some(0.484_143)
        );
        assert_eq!(table.by_port(4, Proto::Tcp).unwrap().name, "unknown");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].line, 3);
    }
}
