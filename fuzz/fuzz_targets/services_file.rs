//! The readers of `/etc/services` and nmap's `nmap-services` on any text (the first byte
//! picks the format): nothing panics, and the lazy lookups (a scan of the text for the
//! lines of one port or name, which keeps a single `svcname 22` quick) answer what the
//! whole indexed table answers, for the ports and names the text's own lines give. Both
//! readers keep the text for the life of the process (tables load once), so each input
//! is leaked: run with the leak check off, `ASAN_OPTIONS=detect_leaks=0` (as `make fuzz` does).
#![no_main]

use libfuzzer_sys::fuzz_target;

use common::services::file::{Flavor, LazyTable};
use common::services::ports::{Proto, ProtoNames, parse_port_proto};

/// What a reader would look up: the names and port/protocol pairs of the first lines.
fn lookups(text: &str) -> (Vec<(u16, Proto)>, Vec<String>) {
    let mut ports = Vec::new();
    let mut names = Vec::new();
    for line in text.lines().filter(|line| !line.starts_with('#')).take(2) {
        let mut words = line.split_ascii_whitespace();
        if let Some(name) = words.next() {
            names.push(name.to_owned());
        }
        if let Some(Ok((port, proto))) = words
            .next()
            .map(|word| parse_port_proto(word.as_bytes(), ProtoNames::Canonical))
        {
            ports.push((port, proto.unwrap_or(Proto::Tcp)));
        }
    }
    (ports, names)
}

fn sorted(mut pairs: Vec<(u16, Proto)>) -> Vec<(u16, Proto)> {
    pairs.sort_unstable();
    pairs.dedup();
    pairs
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let flavor = if first & 1 == 0 {
        Flavor::EtcServices
    } else {
        Flavor::NmapServices
    };
    let text = String::from_utf8_lossy(rest).into_owned();
    let (ports, names) = lookups(&text);
    let lazy = LazyTable::new(text, flavor);
    // Four lookups at most: the ones a lazy table answers by scanning.
    let scanned_ports: Vec<_> = ports
        .iter()
        .map(|&(p, proto)| lazy.by_port(p, proto))
        .collect();
    let scanned_names: Vec<_> = names
        .iter()
        .map(|name| sorted(lazy.by_name(name)))
        .collect();
    let (table, problems) = lazy.indexed();
    for (&(port, proto), scanned) in ports.iter().zip(scanned_ports) {
        assert_eq!(
            table.by_port(port, proto).copied(),
            scanned,
            "{port}/{proto}"
        );
    }
    for (name, scanned) in names.iter().zip(scanned_names) {
        assert_eq!(
            sorted(table.by_name(name).collect()),
            scanned,
            "name {name}"
        );
    }
    for ((port, proto), entry) in table.entries() {
        assert_ne!(port, 0);
        assert_eq!(table.by_port(port, proto), Some(entry));
        assert!(table.by_name(entry.name).any(|pair| pair == (port, proto)));
        if let Some(frequency) = entry.frequency {
            assert!((0.0..=1.0).contains(&frequency));
        }
    }
    for problem in problems {
        assert!(problem.line >= 1 && !problem.why.is_empty());
    }
});
