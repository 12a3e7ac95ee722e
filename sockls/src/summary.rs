//! `-s`: ss's summary of the namespace's sockets. The counts are the kernel's own, from
//! /proc/net/sockstat, sockstat6 and snmp, read as ss reads them, so that the numbers are
//! ss's: a dump cannot give them (orphans, the sockets allocated but not hashed, fragments).

use std::io::Write;

use common::contract::error::{Error, Result};
use common::contract::output::Format;
use serde::Serialize;

/// The counts `ss -s` prints; `tcp_total` and `tcp_closed` are derived as ss derives them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Sockets of every kind in use ("sockets: used").
    pub total: u64,
    /// TCP sockets allocated, and those in time-wait (which are not).
    pub tcp_total: u64,
    /// TCP connections established or in close-wait (the snmp CurrEstab).
    pub tcp_estab: u64,
    /// Allocated TCP sockets that are not hashed: closed, never bound.
    pub tcp_closed: u64,
    pub tcp_orphaned: u64,
    pub tcp_timewait: u64,
    pub raw_ipv4: u64,
    pub raw_ipv6: u64,
    pub udp_ipv4: u64,
    pub udp_ipv6: u64,
    /// Hashed TCP sockets: bound, listening or connected.
    pub tcp_ipv4: u64,
    pub tcp_ipv6: u64,
    /// Fragment reassembly queues.
    pub frag_ipv4: u64,
    pub frag_ipv6: u64,
}

/// The counts read from the files, before ss's arithmetic.
#[derive(Debug, Default)]
struct Sockstat {
    used: u64,
    tcp_inuse: u64,
    tcp_orphan: u64,
    tcp_tw: u64,
    tcp_alloc: u64,
    tcp6_inuse: u64,
    udp: u64,
    udp6: u64,
    raw: u64,
    raw6: u64,
    frag: u64,
    frag6: u64,
}

impl Summary {
    /// Reads the counts of the namespace sockls runs in.
    pub fn read() -> Result<Self> {
        let read =
            |path: &str| std::fs::read_to_string(path).map_err(|error| Error::input(path, error));
        let sockstat = read("/proc/net/sockstat")?;
        // Without IPv6 there is no sockstat6, and no IPv6 socket: zeros, as ss has.
        let sockstat6 = std::fs::read_to_string("/proc/net/sockstat6").unwrap_or_default();
        Ok(Self::from_texts(
            &sockstat,
            &sockstat6,
            &read("/proc/net/snmp")?,
        ))
    }

    /// The counts in the texts of /proc/net/sockstat, sockstat6 and snmp.
    pub fn from_texts(sockstat: &str, sockstat6: &str, snmp: &str) -> Self {
        let mut counts = Sockstat::default();
        counts.parse(sockstat);
        counts.parse(sockstat6);
        Self::from_counts(&counts, current_established(snmp))
    }

    fn from_counts(counts: &Sockstat, estab: u64) -> Self {
        // Saturating: the counts are the kernel's text, parsed, and never worth a panic.
        let hashed = counts.tcp_inuse.saturating_add(counts.tcp6_inuse);
        let tcp_total = counts.tcp_alloc.saturating_add(counts.tcp_tw);
        Self {
            total: counts.used,
            tcp_total,
            tcp_estab: estab,
            // Time-wait sockets are hashed but not allocated: ss's sum, which may dip below
            // zero while the counters are read at different instants.
            tcp_closed: tcp_total.saturating_sub(hashed),
            tcp_orphaned: counts.tcp_orphan,
            tcp_timewait: counts.tcp_tw,
            raw_ipv4: counts.raw,
            raw_ipv6: counts.raw6,
            udp_ipv4: counts.udp,
            udp_ipv6: counts.udp6,
            tcp_ipv4: counts.tcp_inuse,
            tcp_ipv6: counts.tcp6_inuse,
            frag_ipv4: counts.frag,
            frag_ipv6: counts.frag6,
        }
    }

    /// Prints the summary: in text as ss lays it out, in JSON as one object.
    /// With `hostname` (`--hostname-field`), the machine's name comes first: JSON's first
    /// field, and the first word of each text line, as in every other record.
    pub fn write(
        &self,
        out: &mut impl Write,
        format: Format,
        hostname: Option<&str>,
    ) -> Result<()> {
        let json_error = |error: serde_json::Error| Error::output(std::io::Error::other(error));
        match format {
            Format::Json => {
                let body = serde_json::to_string(self).map_err(json_error)?;
                let line = match hostname {
                    // The object's own fields after the name: `{"hostname":"vm","total":7,...}`.
                    Some(name) => {
                        let name = serde_json::to_string(name).map_err(json_error)?;
                        format!("{{\"hostname\":{name},{}", &body[1..])
                    }
                    None => body,
                };
                writeln!(out, "{line}").map_err(Error::output)
            }
            Format::Text | Format::Csv => {
                let mut text = Vec::new();
                self.write_text(&mut text).map_err(Error::output)?;
                for line in String::from_utf8_lossy(&text).lines() {
                    match hostname {
                        Some(name) if !line.is_empty() => writeln!(out, "{name} {line}"),
                        _ => writeln!(out, "{line}"),
                    }
                    .map_err(Error::output)?;
                }
                Ok(())
            }
        }
    }

    fn write_text(&self, out: &mut impl Write) -> std::io::Result<()> {
        writeln!(out, "Total: {}", self.total)?;
        writeln!(
            out,
            "TCP:   {} (estab {}, closed {}, orphaned {}, timewait {})",
            self.tcp_total, self.tcp_estab, self.tcp_closed, self.tcp_orphaned, self.tcp_timewait
        )?;
        writeln!(out)?;
        writeln!(out, "Transport Total     IP        IPv6")?;
        let rows = [
            ("RAW", self.raw_ipv4, self.raw_ipv6),
            ("UDP", self.udp_ipv4, self.udp_ipv6),
            ("TCP", self.tcp_ipv4, self.tcp_ipv6),
            (
                "INET",
                self.raw_ipv4
                    .saturating_add(self.udp_ipv4)
                    .saturating_add(self.tcp_ipv4),
                self.raw_ipv6
                    .saturating_add(self.udp_ipv6)
                    .saturating_add(self.tcp_ipv6),
            ),
            ("FRAG", self.frag_ipv4, self.frag_ipv6),
        ];
        for (name, ipv4, ipv6) in rows {
            writeln!(
                out,
                "{name}\t  {:<9} {ipv4:<9} {ipv6:<9}",
                ipv4.saturating_add(ipv6)
            )?;
        }
        // ss ends with an empty line too.
        writeln!(out)
    }
}

impl Sockstat {
    /// Takes the counts from sockstat's or sockstat6's lines (`TCP: inuse 2 orphan 0 tw 244
    /// alloc 10 mem 57`); a count the kernel does not print stays 0.
    fn parse(&mut self, text: &str) {
        for line in text.lines() {
            let mut words = line.split_whitespace();
            let Some(kind) = words.next() else { continue };
            let rest: Vec<&str> = words.collect();
            let count = |name: &str| {
                rest.windows(2)
                    .find(|pair| pair[0] == name)
                    .and_then(|pair| pair[1].parse().ok())
                    .unwrap_or(0)
            };
            match kind {
                "sockets:" => self.used = count("used"),
                "TCP:" => {
                    self.tcp_inuse = count("inuse");
                    self.tcp_orphan = count("orphan");
                    self.tcp_tw = count("tw");
                    self.tcp_alloc = count("alloc");
                }
                "TCP6:" => self.tcp6_inuse = count("inuse"),
                "UDP:" => self.udp = count("inuse"),
                "UDP6:" => self.udp6 = count("inuse"),
                "RAW:" => self.raw = count("inuse"),
                "RAW6:" => self.raw6 = count("inuse"),
                "FRAG:" => self.frag = count("inuse"),
                "FRAG6:" => self.frag6 = count("inuse"),
                _ => {}
            }
        }
    }
}

/// The `CurrEstab` of /proc/net/snmp's `Tcp:` lines (a line of names, then one of values).
fn current_established(snmp: &str) -> u64 {
    let mut tcp = snmp.lines().filter(|line| line.starts_with("Tcp:"));
    let (Some(names), Some(values)) = (tcp.next(), tcp.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(name, _)| *name == "CurrEstab")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOCKSTAT: &str = "sockets: used 20\nTCP: inuse 2 orphan 1 tw 244 alloc 10 mem 57\n\
                            UDP: inuse 3 mem 0\nUDPLITE: inuse 0\nRAW: inuse 1\n\
                            FRAG: inuse 0 memory 0\n";
    const SOCKSTAT6: &str = "TCP6: inuse 4\nUDP6: inuse 5\nUDPLITE6: inuse 0\nRAW6: inuse 0\n\
                             FRAG6: inuse 0 memory 0\n";
    const SNMP: &str = "Tcp: RtoAlgorithm RtoMin CurrEstab InSegs\nTcp: 1 200 7 66199243\n";

    #[test]
    fn the_text_is_ss_s_with_its_arithmetic() {
        let mut counts = Sockstat::default();
        counts.parse(SOCKSTAT);
        counts.parse(SOCKSTAT6);
        let summary = Summary::from_counts(&counts, current_established(SNMP));
        let mut out = Vec::new();
        summary.write(&mut out, Format::Text, None).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Total: 20\n\
             TCP:   254 (estab 7, closed 248, orphaned 1, timewait 244)\n\
             \n\
             Transport Total     IP        IPv6\n\
             RAW\t  1         1         0        \n\
             UDP\t  8         3         5        \n\
             TCP\t  6         2         4        \n\
             INET\t  15        6         9        \n\
             FRAG\t  0         0         0        \n\n"
        );
    }

    #[test]
    fn json_is_one_object_of_the_same_counts() {
        let mut counts = Sockstat::default();
        counts.parse(SOCKSTAT);
        let summary = Summary::from_counts(&counts, 7);
        let mut out = Vec::new();
        summary.write(&mut out, Format::Json, None).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(json["tcp_total"], 254);
        assert_eq!(json["tcp_estab"], 7);
        assert_eq!(json["tcp_ipv6"], 0);
        assert!(out.ends_with(b"}\n") && !out[..out.len() - 1].contains(&b'\n'));
    }

    #[test]
    fn counts_at_the_edge_of_u64_saturate_rather_than_panic() {
        let max = u64::MAX;
        let mut counts = Sockstat::default();
        counts.parse(&format!(
            "sockets: used {max}\nTCP: inuse {max} orphan 0 tw {max} alloc {max}\n\
             UDP: inuse {max}\nRAW: inuse {max}\n"
        ));
        counts.parse(&format!(
            "TCP6: inuse {max}\nUDP6: inuse {max}\nRAW6: inuse {max}\n"
        ));
        let summary = Summary::from_counts(&counts, 0);
        let mut out = Vec::new();
        summary.write(&mut out, Format::Text, None).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains(&format!("TCP:   {max} (estab 0, closed 0,")),
            "{text}"
        );
        assert!(text.contains(&format!("INET\t  {max}")), "{text}");
    }
}
