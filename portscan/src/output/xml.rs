//! nmap's XML output (-oX), valid against nmap's DTD (`/usr/share/nmap/nmap.dtd`), so that
//! the tools built for nmap's files read ours: ndiff, Metasploit's db_import, nmap's XSL
//! stylesheet. Written with a small escaping writer of our own: the document is flat and
//! written in one pass, a host at a time, and an XML crate would bring a dependency for
//! what [`escape`] and three functions do.
//!
//! The DTD admits one scanner, `nmap` (`<!ATTLIST nmaprun scanner (nmap)>`): the root says
//! so to stay valid, and `args`, the comment and `version` say that portscan wrote it.

use std::fmt::{Display, Write as _};
use std::io::{self, Write};
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::contract::record::PortState;
use common::contract::text;
use common::contract::timestamp::ctime_local;
use common::services::ports::Proto;

use super::report::{Document, Ending, HostReport, HostStatus, Scan, hosts_scanned};
use crate::TOOL;
use crate::engine::TargetPort;
use crate::os_hint::Hint;
use crate::service::Identity;
use crate::targets::Host;

/// The version of nmap's XML format this follows.
const XML_OUTPUT_VERSION: &str = "1.05";

/// The XML document; it keeps nothing between hosts.
pub struct Xml;

impl Document for Xml {
    fn begin(&mut self, out: &mut dyn Write, scan: &Scan) -> io::Result<()> {
        let version = env!("CARGO_PKG_VERSION");
        let start = ctime_local(scan.start_time);
        writeln!(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>")?;
        writeln!(out, "<!DOCTYPE nmaprun>")?;
        if let Some(stylesheet) = &scan.stylesheet {
            // A path becomes a file: URL, as nmap writes its own; a URL stays as given.
            let href = if stylesheet.starts_with('/') {
                format!("file://{stylesheet}")
            } else {
                stylesheet.clone()
            };
            writeln!(
                out,
                "<?xml-stylesheet href=\"{}\" type=\"text/xsl\"?>",
                escape(&href)
            )?;
        }
        writeln!(
            out,
            "<!-- {} -->",
            comment(&format!(
                "{TOOL} {version} scan initiated {start} as: {}",
                scan.command_line
            ))
        )?;
        element(
            out,
            "nmaprun",
            &[
                ("scanner", &"nmap"),
                ("args", &scan.command_line),
                ("start", &unix(scan.start_time)),
                ("startstr", &start),
                ("version", &format_args!("{version} ({TOOL})")),
                ("xmloutputversion", &XML_OUTPUT_VERSION),
            ],
            Close::Open,
        )?;
        writeln!(out)?;
        for proto in [Proto::Tcp, Proto::Udp] {
            let ports: Vec<u16> = scan
                .ports
                .iter()
                .filter(|port| port.proto == proto)
                .map(|port| port.port)
                .collect();
            if ports.is_empty() {
                continue;
            }
            let kind = if proto == Proto::Udp {
                "udp"
            } else if scan.syn {
                "syn"
            } else {
                "connect"
            };
            element(
                out,
                "scaninfo",
                &[
                    ("type", &kind),
                    ("protocol", &proto.as_str()),
                    ("numservices", &ports.len()),
                    ("services", &ranges(&ports)),
                ],
                Close::Empty,
            )?;
            writeln!(out)?;
        }
        element(out, "verbose", &[("level", &scan.verbose)], Close::Empty)?;
        writeln!(out)?;
        element(out, "debugging", &[("level", &0)], Close::Empty)?;
        writeln!(out)
    }

    fn host(
        &mut self,
        out: &mut dyn Write,
        scan: &Scan,
        host: &Host,
        report: &HostReport,
    ) -> io::Result<()> {
        let ended = report.ended.unwrap_or_else(SystemTime::now);
        let (started, ended) = (unix(report.started), unix(ended));
        let mut attributes: Vec<(&str, &dyn Display)> =
            vec![("starttime", &started), ("endtime", &ended)];
        // A host given up on is written as nmap writes one its --host-timeout ended: its
        // status and times, no ports; why, in the comment the DTD has for it.
        if report.timed_out() {
            attributes.push(("timedout", &"true"));
        }
        let failure = report.failure();
        if let Some(why) = &failure {
            attributes.push(("comment", why));
        }
        element(out, "host", &attributes, Close::Open)?;
        status(out, "up", scan.up_reason(host))?;
        names(out, host)?;
        if failure.is_none() {
            ports(out, scan, report)?;
        }
        if let Some(hint) = &report.os_hint {
            os(out, hint)?;
        }
        let (srtt, rttvar, timeout) = report.times();
        element(
            out,
            "times",
            &[
                ("srtt", &srtt.as_micros()),
                ("rttvar", &rttvar.as_micros()),
                ("to", &timeout.as_micros()),
            ],
            Close::Empty,
        )?;
        writeln!(out)?;
        writeln!(out, "</host>")
    }

    /// A host of -sn: its status, address and name, as nmap writes one.
    fn status(
        &mut self,
        out: &mut dyn Write,
        _scan: &Scan,
        host: &Host,
        found: &HostStatus,
    ) -> io::Result<()> {
        write!(out, "<host>")?;
        status(out, found.state.as_str(), found.reason.as_str())?;
        names(out, host)?;
        writeln!(out, "</host>")
    }

    fn end(&mut self, out: &mut dyn Write, _scan: &Scan, ending: &Ending<'_>) -> io::Result<()> {
        let said = ending.said;
        let timestr = ctime_local(ending.time);
        let elapsed = format!("{:.2}", ending.elapsed.as_secs_f64());
        let summary = format!(
            "{TOOL} done at {timestr}; {}",
            hosts_scanned(said, ending.elapsed)
        );
        // nmap ends an aborted run's file with exit="error" and why; a host that could not
        // be scanned to the end is one too, as portscan's exit status says.
        let error = if ending.interrupted {
            Some("interrupted".to_owned())
        } else if said.failed > 0 {
            Some(format!(
                "{} not scanned to the end",
                plural(said.failed, "host", "hosts")
            ))
        } else {
            None
        };
        write!(out, "<runstats>")?;
        let time = unix(ending.time);
        let mut finished: Vec<(&str, &dyn Display)> = vec![
            ("time", &time),
            ("timestr", &timestr),
            ("summary", &summary),
            ("elapsed", &elapsed),
        ];
        match &error {
            Some(message) => {
                finished.push(("exit", &"error"));
                finished.push(("errormsg", message));
            }
            None => finished.push(("exit", &"success")),
        }
        element(out, "finished", &finished, Close::Empty)?;
        let total = said.hosts + said.down + said.unreachable;
        // A host given up on is in the file as "up", as nmap has one: counted so here too.
        let up = said.up + said.failed;
        element(
            out,
            "hosts",
            &[("up", &up), ("down", &(total - up)), ("total", &total)],
            Close::Empty,
        )?;
        writeln!(out)?;
        writeln!(out, "</runstats>")?;
        writeln!(out, "</nmaprun>")
    }
}

/// A port's `<service>` element. nmap's attributes come in this order: name, product,
/// version, extrainfo, ostype, method, conf, tunnel, then `<cpe>` children; a port named
/// from the service table has the first of them, `method="table"` and `conf="3"`, and
/// version detection adds the others here, in that order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service<'a> {
    pub name: &'a str,
    /// "table" or "probed".
    pub method: &'static str,
    /// nmap's confidence, 0 to 10.
    pub conf: u8,
    /// What -sV found beyond the name.
    pub found: Option<&'a Identity>,
}

impl<'a> Service<'a> {
    /// A service known by its port alone, with the confidence nmap gives one.
    pub fn from_table(name: &'a str) -> Self {
        Self {
            name,
            method: "table",
            conf: 3,
            found: None,
        }
    }

    /// A service as version detection named it.
    pub fn detected(identity: &'a Identity) -> Self {
        Self {
            name: &identity.service,
            method: identity.method.as_str(),
            conf: identity.confidence,
            found: Some(identity),
        }
    }

    fn write(&self, out: &mut dyn Write) -> io::Result<()> {
        let mut attributes: Vec<(&str, &dyn Display)> = vec![("name", &self.name)];
        let found = self.found;
        let optional = [
            ("product", found.and_then(|f| f.product.as_ref())),
            ("version", found.and_then(|f| f.version.as_ref())),
            ("extrainfo", found.and_then(|f| f.extra_info.as_ref())),
        ];
        for (name, value) in &optional {
            if let Some(value) = value {
                attributes.push((name, value));
            }
        }
        attributes.push(("method", &self.method));
        attributes.push(("conf", &self.conf));
        let tunnel = found.and_then(|f| f.tunnel.as_ref());
        if let Some(tunnel) = &tunnel {
            attributes.push(("tunnel", tunnel));
        }
        let cpes: Vec<&str> = found
            .and_then(|f| f.cpe.as_deref())
            .map(|cpe| cpe.split(' ').filter(|c| !c.is_empty()).collect())
            .unwrap_or_default();
        if cpes.is_empty() {
            return element(out, "service", &attributes, Close::Empty);
        }
        element(out, "service", &attributes, Close::Open)?;
        for cpe in cpes {
            writeln!(out, "<cpe>{}</cpe>", escape(cpe))?;
        }
        writeln!(out, "</service>")
    }
}

/// `<status>`.
fn status(out: &mut dyn Write, state: &str, reason: &str) -> io::Result<()> {
    element(
        out,
        "status",
        &[("state", &state), ("reason", &reason), ("reason_ttl", &0)],
        Close::Empty,
    )?;
    writeln!(out)
}

/// `<address>` and `<hostnames>`: the name the user gave, nmap's type "user", not a
/// reverse lookup's "PTR".
fn names(out: &mut dyn Write, host: &Host) -> io::Result<()> {
    address(out, host.address)?;
    writeln!(out, "<hostnames>")?;
    if host.label != host.address.to_string() {
        element(
            out,
            "hostname",
            &[("name", &host.label), ("type", &"user")],
            Close::Empty,
        )?;
        writeln!(out)?;
    }
    writeln!(out, "</hostnames>")
}

/// `<address>`.
fn address(out: &mut dyn Write, address: IpAddr) -> io::Result<()> {
    let kind = if address.is_ipv4() { "ipv4" } else { "ipv6" };
    element(
        out,
        "address",
        &[("addr", &address), ("addrtype", &kind)],
        Close::Empty,
    )?;
    writeln!(out)
}

/// `<ports>`: an `<extraports>` per state not listed, with its reasons, then every listed
/// port.
fn ports(out: &mut dyn Write, scan: &Scan, report: &HostReport) -> io::Result<()> {
    write!(out, "<ports>")?;
    let unlisted = report.unlisted(scan.listed);
    let mut states: Vec<PortState> = Vec::new();
    for ((state, _, _), _) in &unlisted {
        if !states.contains(state) {
            states.push(*state);
        }
    }
    for state in states {
        let of_state = || unlisted.iter().filter(move |((s, _, _), _)| *s == state);
        let count: u64 = of_state().map(|(_, count)| count).sum();
        element(
            out,
            "extraports",
            &[("state", &state.as_str()), ("count", &count)],
            Close::Open,
        )?;
        writeln!(out)?;
        for ((_, proto, reason), count) in of_state() {
            element(
                out,
                "extrareasons",
                &[
                    ("reason", &reason.as_str()),
                    ("count", count),
                    ("proto", &proto.as_str()),
                ],
                Close::Empty,
            )?;
            writeln!(out)?;
        }
        writeln!(out, "</extraports>")?;
    }
    for line in report.listed_lines(scan.listed) {
        let TargetPort { proto, port } = line.port;
        element(
            out,
            "port",
            &[("protocol", &proto.as_str()), ("portid", &port)],
            Close::Open,
        )?;
        element(
            out,
            "state",
            &[
                ("state", &line.state.as_str()),
                ("reason", &line.reason.as_str()),
                ("reason_ttl", &0),
            ],
            Close::Empty,
        )?;
        if let Some(identity) = &line.identity {
            Service::detected(identity).write(out)?;
        } else if let Some(name) = scan.service(line.port) {
            Service::from_table(name).write(out)?;
        }
        writeln!(out, "</port>")?;
    }
    writeln!(out, "</ports>")
}

/// `<os>` (-A): the port whose SYN-ACK was read as `<portused>`, the hint as an
/// `<osmatch>` with its `<osclass>` (none when it is "unknown", as nmap writes no match),
/// and the evidence where nmap puts its fingerprint, `<osfingerprint>`; then `<distance>`,
/// the hops the TTL tells. `line` is nmap's line in its OS database: 0, since the hint
/// comes from none.
fn os(out: &mut dyn Write, hint: &Hint) -> io::Result<()> {
    writeln!(out, "<os>")?;
    if let Some(port) = hint.port_used {
        element(
            out,
            "portused",
            &[("state", &"open"), ("proto", &"tcp"), ("portid", &port)],
            Close::Empty,
        )?;
        writeln!(out)?;
    }
    if let Ok(family) = hint.verdict {
        element(
            out,
            "osmatch",
            &[
                ("name", &hint.name()),
                ("accuracy", &hint.accuracy),
                ("line", &0),
            ],
            Close::Open,
        )?;
        writeln!(out)?;
        let (vendor, osfamily, kind) = family.nmap_class();
        element(
            out,
            "osclass",
            &[
                ("type", &kind),
                ("vendor", &vendor),
                ("osfamily", &osfamily),
                ("accuracy", &hint.accuracy),
            ],
            Close::Open,
        )?;
        if let Some(cpe) = family.cpe() {
            write!(out, "<cpe>{}</cpe>", escape(cpe))?;
        }
        writeln!(out, "</osclass>")?;
        writeln!(out, "</osmatch>")?;
    }
    element(
        out,
        "osfingerprint",
        &[("fingerprint", &hint.evidence_line())],
        Close::Empty,
    )?;
    writeln!(out)?;
    writeln!(out, "</os>")?;
    if let Some(hops) = hint.distance {
        element(out, "distance", &[("value", &hops)], Close::Empty)?;
        writeln!(out)?;
    }
    Ok(())
}

/// How an element written by [`element`] ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Close {
    /// `<name .../>`
    Empty,
    /// `<name ...>`, its end tag written later.
    Open,
}

/// Writes a start tag, or an empty element, with its attributes escaped.
fn element(
    out: &mut dyn Write,
    name: &str,
    attributes: &[(&str, &dyn Display)],
    close: Close,
) -> io::Result<()> {
    write!(out, "<{name}")?;
    for (key, value) in attributes {
        write!(out, " {key}=\"{}\"", escape(&value.to_string()))?;
    }
    match close {
        Close::Empty => write!(out, "/>"),
        Close::Open => write!(out, ">"),
    }
}

// Writing into a String cannot fail: the results of `write!` below are ignored.
/// Text made safe inside an attribute value: markup characters as entities, tabs and
/// line ends as character references (a parser would turn them into spaces), and the
/// characters XML 1.0 cannot carry at all (most control characters), and those a terminal
/// would act on (C1 controls, bidi overrides), as `\xNN`, the way the text format escapes
/// them.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => {
                let _ = write!(out, "&#{};", u32::from(c));
            }
            c if text::is_unsafe(c) || c == '\u{fffe}' || c == '\u{ffff}' => hex(c, &mut out),
            c => out.push(c),
        }
    }
    out
}

/// `c` as the text format writes what a terminal would act on: `\xHH` for each byte.
fn hex(c: char, out: &mut String) {
    let mut utf8 = [0; 4];
    for byte in c.encode_utf8(&mut utf8).bytes() {
        let _ = write!(out, "\\x{byte:02x}");
    }
}

/// Text made safe inside a comment, which cannot hold `--` nor end with `-`: the second
/// dash of a pair is written `&#45;`, as nmap writes it (`-&#45;reason`), which a reader
/// of the file takes back as the command line typed, where a space would change it.
fn comment(text: &str) -> String {
    let mut safe = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '-' if safe.ends_with('-') => safe.push_str("&#45;"),
            c if text::is_unsafe(c) => hex(c, &mut safe),
            c => safe.push(c),
        }
    }
    if safe.ends_with('-') {
        safe.push(' ');
    }
    safe
}

/// "1 host", "2 hosts".
fn plural(count: u64, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

/// Seconds since the epoch, as nmap's times are.
fn unix(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

/// Ports in order as nmap's `services` attribute gives them: "22,80,8000-8100".
fn ranges(ports: &[u16]) -> String {
    let mut said: Vec<String> = Vec::new();
    let mut iter = ports.iter().copied().peekable();
    while let Some(first) = iter.next() {
        let mut last = first;
        while iter.peek() == Some(&(last.wrapping_add(1))) && last != u16::MAX {
            last = iter.next().expect("peeked");
        }
        said.push(if first == last {
            first.to_string()
        } else {
            format!("{first}-{last}")
        });
    }
    said.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_collapse_runs_of_ports() {
        assert_eq!(ranges(&[22, 47320, 47321, 47322]), "22,47320-47322");
        assert_eq!(ranges(&[1]), "1");
        assert_eq!(ranges(&[65534, 65535]), "65534-65535");
        assert_eq!(ranges(&[]), "");
    }

    #[test]
    fn escaping_keeps_every_value_well_formed() {
        assert_eq!(
            escape("a<b>&\"c'\td\x1b"),
            "a&lt;b&gt;&amp;&quot;c&apos;&#9;d\\x1b"
        );
        assert_eq!(comment("portscan --all -p-"), "portscan -&#45;all -p- ");
        assert_eq!(comment("a ---b"), "a -&#45;-b");
    }

    #[test]
    fn the_service_element_has_nmaps_attribute_order() {
        let mut out = Vec::new();
        Service::from_table("ssh").write(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"<service name="ssh" method="table" conf="3"/>"#
        );
    }
}
