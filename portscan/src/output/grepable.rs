//! nmap's grepable output (-oG): a comment line at each end, and per host a `Status` line
//! and a `Ports` line, `Host: ADDR (NAME)\tPorts: 22/open/tcp//ssh///, ...\tIgnored State:
//! closed (998)`, which scripts written for nmap cut apart with grep, awk and cut. Fields
//! are tab-separated and a port's subfields slash-separated, so the free text in them (a
//! name, a service) is escaped to hold neither.

use std::io::{self, Write};

use common::contract::record::{HostState, PortState};
use common::contract::text;

use super::normal_file::{ended, initiated};
use super::report::{Document, Ending, HostReport, HostStatus, Scan};
use crate::targets::Host;

/// The grepable document; it keeps nothing between hosts.
pub struct Grepable;

impl Document for Grepable {
    fn begin(&mut self, out: &mut dyn Write, scan: &Scan) -> io::Result<()> {
        writeln!(out, "{}", initiated(scan))
    }

    fn host(
        &mut self,
        out: &mut dyn Write,
        scan: &Scan,
        host: &Host,
        report: &HostReport,
    ) -> io::Result<()> {
        let who = who(host);
        writeln!(out, "{who}\tStatus: Up")?;
        // A host given up on: nmap's line for one its --host-timeout ended, and no ports;
        // "Unknown" (nmap's word for a state it could not tell) where something else ended it.
        if report.failure().is_some() {
            let fate = if report.timed_out() {
                "Timeout"
            } else {
                "Unknown"
            };
            return writeln!(out, "{who}\tStatus: {fate}");
        }
        let ports: Vec<String> = report
            .listed_lines(scan.listed)
            .iter()
            .map(|line| {
                // port/state/protocol/owner/service/rpc info/version/
                format!(
                    "{}/{}/{}//{}//{}/",
                    line.port.port,
                    line.state.as_str(),
                    line.port.proto,
                    line.service_name(scan)
                        .as_deref()
                        .map(field)
                        .unwrap_or_default(),
                    line.version_text()
                        .as_deref()
                        .map(free_field)
                        .unwrap_or_default()
                )
            })
            .collect();
        write!(out, "{who}\tPorts: {}", ports.join(", "))?;
        // nmap names the one state it left out most of.
        let mut ignored: Vec<(PortState, u64)> = Vec::new();
        for ((state, _, _), count) in report.unlisted(scan.listed) {
            match ignored.iter_mut().find(|(have, _)| *have == state) {
                Some((_, total)) => *total += count,
                None => ignored.push((state, count)),
            }
        }
        if let Some((state, count)) = ignored.iter().max_by_key(|(_, count)| *count) {
            write!(out, "\tIgnored State: {} ({count})", state.as_str())?;
        }
        // nmap's `OS:` field names its best match, and is left out where there is none.
        if let Some(hint) = report.os_hint.as_ref().filter(|hint| hint.verdict.is_ok()) {
            write!(out, "\tOS: {}", free_field(&hint.name()))?;
        }
        writeln!(out)
    }

    fn status(
        &mut self,
        out: &mut dyn Write,
        _scan: &Scan,
        host: &Host,
        status: &HostStatus,
    ) -> io::Result<()> {
        let state = match status.state {
            HostState::Up => "Up",
            HostState::Down => "Down",
        };
        writeln!(out, "{}\tStatus: {state}", who(host))
    }

    fn end(&mut self, out: &mut dyn Write, _scan: &Scan, ending: &Ending<'_>) -> io::Result<()> {
        writeln!(out, "{}", ended(ending))
    }
}

/// "Host: 127.0.0.1 (localhost)": the name in parentheses is the one given, empty where
/// the target was an address.
fn who(host: &Host) -> String {
    let name = if host.label == host.address.to_string() {
        String::new()
    } else {
        field(&host.label)
    };
    format!("Host: {} ({name})", host.address)
}

/// Free text in a field: escaped as the text format escapes a token (no whitespace, no
/// control characters), and with nmap's `|` for the `/` that separates subfields.
/// A field of words, as nmap writes the version: spaces kept, the rest escaped as free
/// text, and `/` (the field separator) as `|`.
fn free_field(text: &str) -> String {
    let mut escaped = String::new();
    text::escape_free_text(text.as_bytes(), &mut escaped);
    escaped.replace('/', "|")
}

fn field(text: &str) -> String {
    let mut escaped = String::new();
    text::escape_token(text.as_bytes(), &mut escaped);
    escaped.replace('/', "|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_text_holds_no_separator() {
        assert_eq!(field("a/b c\td"), r"a|b\x20c\td");
    }
}
