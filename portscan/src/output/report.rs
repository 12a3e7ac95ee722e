//! The report a person reads at a terminal, in the shape of nmap's normal output (issue
//! #11): a block per host when the host is done (its name and address, whether it
//! answered and how fast, a "Not shown" line counting the ports of the states left out,
//! then aligned PORT STATE SERVICE columns), and a closing line with the count of hosts and
//! the time. Records stay what pipes and files get: this is for eyes, not for parsing.
//!
//! The engine interleaves hosts, so each host's results are held until it is done. What is
//! held is bounded: the ports the report lists, and under nmap's rule at most
//! [`LIST_AT_MOST`] ports of each state but open, until that state collapses into a count.

use std::collections::HashMap;
use std::io::{self, Write};
use std::time::{Duration, Instant};

use common::contract::error::{Error, Result};
use common::contract::output::write_aligned;
use common::contract::record::{PortState, Reason};
use common::contract::text;
use common::services::ServiceDb;
use common::services::ports::Proto;

use super::{STATES, sort_key};
use crate::TOOL;
use crate::engine::TargetPort;
use crate::service::Identity;
use crate::targets::Host;

/// nmap lists every port of a state with at most this many ports on the host, and counts
/// a state with more in its "Not shown" line (open ports are always listed).
pub const LIST_AT_MOST: u64 = 25;

/// Which states the report lists port by port; the others are counted in "Not shown".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listed {
    /// nmap's rule, for a scan that names no states: open ports, and the ports of any
    /// other state that has at most [`LIST_AT_MOST`] of them on the host.
    Nmap,
    /// The states `--show`, `--open` or `--all` name, as records show them; indexed by
    /// [`PortState::index`].
    States([bool; STATES]),
}

/// One port as the report lists it.
#[derive(Debug, Clone)]
struct Line {
    port: TargetPort,
    state: PortState,
    reason: Reason,
    /// What -sV found, for the SERVICE and VERSION columns.
    identity: Option<Identity>,
}

/// What the report knows of one host until it is done.
#[derive(Debug, Default)]
struct HostReport {
    /// Ports in each (state, proto, reason), for the "Not shown" line.
    counts: Vec<((PortState, Proto, Reason), u64)>,
    /// Ports in each state, indexed by [`PortState::index`].
    per_state: [u64; STATES],
    /// The ports that may be listed: of listed states, or under nmap's rule of a state
    /// that has not passed [`LIST_AT_MOST`] yet.
    lines: Vec<Line>,
    /// The quickest answer: the closest to the path's own latency, as nmap's ping is.
    latency: Option<Duration>,
    /// Whether anything came back from the host (a refusal is an answer too).
    answered: bool,
    failed: bool,
}

impl HostReport {
    fn add(&mut self, line: Line, rtt: Option<Duration>, listed: Listed) {
        let key = (line.state, line.port.proto, line.reason);
        match self.counts.iter_mut().find(|(have, _)| *have == key) {
            Some((_, count)) => *count += 1,
            None => self.counts.push((key, 1)),
        }
        let index = line.state.index();
        self.per_state[index] += 1;
        if line.reason != Reason::NoResponse {
            self.answered = true;
            if let Some(rtt) = rtt {
                self.latency = Some(self.latency.map_or(rtt, |quickest| quickest.min(rtt)));
            }
        }
        match listed {
            Listed::States(shown) if shown[index] => self.lines.push(line),
            Listed::States(_) => {}
            Listed::Nmap
                if line.state == PortState::Open || self.per_state[index] <= LIST_AT_MOST =>
            {
                self.lines.push(line);
            }
            Listed::Nmap => {
                // The state has collapsed into a count for good: its lines go.
                if self.per_state[index] == LIST_AT_MOST + 1 {
                    self.lines.retain(|held| held.state != line.state);
                }
            }
        }
    }

    fn is_listed(&self, state: PortState, listed: Listed) -> bool {
        match listed {
            Listed::States(shown) => shown[state.index()],
            Listed::Nmap => {
                state == PortState::Open || self.per_state[state.index()] <= LIST_AT_MOST
            }
        }
    }

    /// "998 closed tcp ports (conn-refused), 2 filtered tcp ports (no-response)": the
    /// ports of states not listed, largest group first; `None` if every port is listed.
    fn not_shown(&self, listed: Listed) -> Option<String> {
        let mut groups: Vec<_> = self
            .counts
            .iter()
            .filter(|((state, _, _), _)| !self.is_listed(*state, listed))
            .collect();
        if groups.is_empty() {
            return None;
        }
        groups.sort_by(|(a, a_count), (b, b_count)| b_count.cmp(a_count).then(a.cmp(b)));
        let said: Vec<String> = groups
            .into_iter()
            .map(|((state, proto, reason), count)| {
                let ports = if *count == 1 { "port" } else { "ports" };
                format!(
                    "{count} {} {proto} {ports} ({})",
                    state.as_str(),
                    reason.as_str()
                )
            })
            .collect();
        Some(said.join(", "))
    }

    fn total(&self) -> u64 {
        self.per_state.iter().sum()
    }
}

/// The report: hosts in the order they finish (each is said as soon as it is done, as nmap
/// does, rather than waiting on a slower host that came first), or in address order at the
/// end with `--sort`.
pub struct Report<W: Write> {
    out: W,
    services: ServiceDb,
    listed: Listed,
    /// A REASON column, as nmap's --reason adds.
    reason: bool,
    /// With `--sort`: finished hosts, held until the end.
    held: Option<Vec<(Host, HostReport)>>,
    /// Hosts with results not yet said.
    hosts: HashMap<Host, HostReport>,
    started: Instant,
    said: Said,
}

/// What the closing line counts.
#[derive(Debug, Default)]
struct Said {
    hosts: u64,
    /// Addresses that host discovery found down, and that it could not reach: no port
    /// scan.
    down: u64,
    unreachable: u64,
    up: u64,
    failed: u64,
}

impl<W: Write> Report<W> {
    /// A report to `out`; `started` is when the scan began, for the closing line.
    pub fn new(
        out: W,
        services: ServiceDb,
        listed: Listed,
        reason: bool,
        sort: bool,
        started: Instant,
    ) -> Self {
        Self {
            out,
            services,
            listed,
            reason,
            held: sort.then(Vec::new),
            hosts: HashMap::new(),
            started,
            said: Said::default(),
        }
    }

    fn entry(&mut self, host: &Host) -> &mut HostReport {
        self.hosts.entry(host.clone()).or_default()
    }

    pub fn result(
        &mut self,
        host: &Host,
        port: TargetPort,
        state: PortState,
        reason: Reason,
        rtt: Option<Duration>,
        identity: Option<Identity>,
    ) {
        let listed = self.listed;
        let line = Line {
            port,
            state,
            reason,
            identity,
        };
        self.entry(host).add(line, rtt, listed);
    }

    pub fn host_failed(&mut self, host: &Host) {
        self.entry(host).failed = true;
    }

    /// Says the host's block now, or holds it for the end with `--sort`.
    pub fn host_done(&mut self, host: &Host) -> Result<()> {
        let Some(report) = self.hosts.remove(host) else {
            return Ok(());
        };
        if let Some(held) = &mut self.held {
            held.push((host.clone(), report));
            return Ok(());
        }
        self.say(host, &report)?;
        self.out.flush().map_err(Error::output)
    }

    /// Says what is still held (every host with `--sort`; after an interrupt, the hosts in
    /// progress), then
    /// the closing line.
    pub fn finish(mut self, interrupted: bool) -> Result<()> {
        let mut rest: Vec<(Host, HostReport)> = self.held.take().unwrap_or_default();
        rest.extend(std::mem::take(&mut self.hosts));
        rest.sort_by(|(a, _), (b, _)| {
            sort_key(a.address)
                .cmp(&sort_key(b.address))
                .then_with(|| a.label.cmp(&b.label))
                .then_with(|| a.index.cmp(&b.index))
        });
        for (host, report) in &rest {
            self.say(host, report)?;
        }
        if self.said.up == 0 && self.said.down > 0 {
            writeln!(
                self.out,
                "Note: no host answered host discovery. If they are up but block its probes, \
                 try -Pn"
            )
            .map_err(Error::output)?;
        }
        let closing = closing_line(&self.said, self.started.elapsed(), interrupted);
        writeln!(self.out, "{closing}").map_err(Error::output)?;
        self.out.flush().map_err(Error::output)
    }

    /// Counts the addresses that host discovery left out of the port scan, `down` and
    /// `unreachable`, which the closing line counts as nmap's does: "256 IP addresses (3
    /// hosts up)".
    pub fn unscanned(&mut self, down: u64, unreachable: u64) {
        self.said.down += down;
        self.said.unreachable += unreachable;
    }

    /// Writes one host's block. A host that failed is left to its message on stderr and
    /// the closing line's count: its ports are not all known.
    fn say(&mut self, host: &Host, report: &HostReport) -> Result<()> {
        self.said.hosts += 1;
        if report.failed {
            self.said.failed += 1;
            return Ok(());
        }
        if report.answered {
            self.said.up += 1;
        }
        let (listed, reason) = (self.listed, self.reason);
        write_host(&mut self.out, host, report, listed, reason, &self.services)
            .map_err(Error::output)
    }
}

/// Writes one host's block, ending with a blank line.
fn write_host(
    out: &mut impl Write,
    host: &Host,
    report: &HostReport,
    listed: Listed,
    reason: bool,
    services: &ServiceDb,
) -> io::Result<()> {
    let name = host_name(host);
    writeln!(out, "{TOOL} report for {name}")?;
    match (report.answered, report.latency) {
        (true, Some(latency)) => {
            writeln!(out, "Host is up ({}s latency).", significant(latency))?;
        }
        (true, None) => writeln!(out, "Host is up.")?,
        (false, _) => writeln!(out, "No answer from the host.")?,
    }
    let mut lines: Vec<Line> = report
        .lines
        .iter()
        .filter(|line| report.is_listed(line.state, listed))
        .cloned()
        .collect();
    if lines.is_empty() {
        let total = report.total();
        writeln!(
            out,
            "All {total} scanned ports on {name} are in states not shown."
        )?;
    }
    if let Some(not_shown) = report.not_shown(listed) {
        writeln!(out, "Not shown: {not_shown}")?;
    }
    if !lines.is_empty() {
        // TCP before UDP, each in port order, as nmap lists them.
        lines.sort_by_key(|line| (line.port.proto, line.port.port));
        write_aligned(out, &table(&lines, reason, services))?;
    }
    writeln!(out)
}

/// "localhost (127.0.0.1)", or the address alone when it is the target as given; a name
/// escaped as the text format escapes a field, so that it cannot move the cursor or end a
/// line.
fn host_name(host: &Host) -> String {
    let mut label = String::new();
    text::escape_token(host.label.as_bytes(), &mut label);
    if host.label == host.address.to_string() {
        label
    } else {
        format!("{label} ({})", host.address)
    }
}

/// The port table's cells, with its header row.
fn table(lines: &[Line], reason: bool, services: &ServiceDb) -> Vec<Vec<String>> {
    let mut header = vec!["PORT".to_owned(), "STATE".to_owned(), "SERVICE".to_owned()];
    if reason {
        header.push("REASON".to_owned());
    }
    // nmap's -sV adds a VERSION column, last since it holds spaces.
    let versions = lines.iter().any(|line| line.identity.is_some());
    if versions {
        header.push("VERSION".to_owned());
    }
    let mut rows = vec![header];
    for line in lines {
        let TargetPort { proto, port } = line.port;
        let mut service = String::new();
        match (&line.identity, services.by_port(port, proto)) {
            (Some(identity), _) => {
                let name = match &identity.tunnel {
                    Some(tunnel) => format!("{tunnel}/{}", identity.service),
                    None => identity.service.clone(),
                };
                text::escape_token(name.as_bytes(), &mut service);
            }
            (None, Some(found)) => text::escape_token(found.name.as_bytes(), &mut service),
            (None, None) => service.push_str("unknown"),
        }
        let mut row = vec![
            format!("{port}/{proto}"),
            line.state.as_str().to_owned(),
            service,
        ];
        if reason {
            row.push(line.reason.as_str().to_owned());
        }
        if versions {
            let mut version = String::new();
            if let Some(identity) = &line.identity {
                let words: Vec<String> = [&identity.product, &identity.version]
                    .into_iter()
                    .flatten()
                    .cloned()
                    .chain(identity.extra_info.as_ref().map(|info| format!("({info})")))
                    .collect();
                text::escape_free_text(words.join(" ").as_bytes(), &mut version);
            }
            // An empty last cell would leave padding at the end of the line.
            if !version.is_empty() {
                row.push(version);
            }
        }
        rows.push(row);
    }
    rows
}

/// "portscan done: 1 IP address (1 host up) scanned in 0.05 seconds".
fn closing_line(said: &Said, elapsed: Duration, interrupted: bool) -> String {
    let plural = |count: u64, one: &'static str, many: &'static str| {
        if count == 1 { one } else { many }
    };
    let addresses = said.hosts + said.down + said.unreachable;
    let failed = match said.failed {
        0 => String::new(),
        failed => format!(", {failed} not scanned to the end"),
    };
    format!(
        "{TOOL} {}: {} IP {} ({} {} up{failed}) scanned in {:.2} seconds",
        if interrupted { "interrupted" } else { "done" },
        addresses,
        plural(addresses, "address", "addresses"),
        said.up,
        plural(said.up, "host", "hosts"),
        elapsed.as_secs_f64()
    )
}

/// Seconds to two significant digits, as nmap gives latencies: 0.00014, 0.0000070, 0.050,
/// 1.2, 12.
fn significant(duration: Duration) -> String {
    let seconds = duration.as_secs_f64();
    if seconds == 0.0 {
        return "0".to_owned();
    }
    #[expect(
        clippy::cast_possible_truncation,
        reason = "the decimal magnitude of a duration fits an i32"
    )]
    let magnitude = seconds.log10().floor() as i32;
    let decimals = usize::try_from(1 - magnitude).unwrap_or(0);
    format!("{seconds:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::services::Options;

    fn services() -> ServiceDb {
        ServiceDb::load(&Options {
            builtin_only: true,
            ..Options::default()
        })
        .unwrap()
    }

    fn host(label: &str, address: &str) -> Host {
        Host {
            label: label.into(),
            address: address.parse().unwrap(),
            index: 0,
        }
    }

    fn tcp(port: u16) -> TargetPort {
        TargetPort {
            proto: Proto::Tcp,
            port,
        }
    }

    fn udp(port: u16) -> TargetPort {
        TargetPort {
            proto: Proto::Udp,
            port,
        }
    }

    const CLOSED: (PortState, Reason) = (PortState::Closed, Reason::ConnRefused);
    const OPEN: (PortState, Reason) = (PortState::Open, Reason::SynAck);
    const SILENT: (PortState, Reason) = (PortState::Filtered, Reason::NoResponse);

    /// The block and closing line of one host given `results`, its RTTs 140 µs and up.
    fn report_of(
        host: &Host,
        results: &[(TargetPort, (PortState, Reason))],
        listed: Listed,
        reason: bool,
    ) -> String {
        let mut out = Vec::new();
        let mut report = Report::new(&mut out, services(), listed, reason, false, Instant::now());
        for (i, (port, (state, why))) in results.iter().enumerate() {
            let rtt = (*why != Reason::NoResponse)
                .then(|| Duration::from_micros(140 + u64::try_from(i).unwrap()));
            report.result(host, *port, *state, *why, rtt, None);
        }
        report.host_done(host).unwrap();
        report.finish(false).unwrap();
        let text = String::from_utf8(out).unwrap();
        // The closing line's time is the test's own: cut it off.
        let body = text.strip_suffix('\n').unwrap();
        let (block, closing) = body.rsplit_once('\n').unwrap();
        assert!(
            closing.starts_with("portscan done: 1 IP address ("),
            "{closing}"
        );
        format!("{block}\n")
    }

    #[test]
    fn many_closed_ports_collapse_and_the_open_ones_are_aligned() {
        let mut results: Vec<_> = (1..=999)
            .filter(|port| *port != 22)
            .map(|port| (tcp(port), CLOSED))
            .collect();
        results.push((tcp(3306), OPEN));
        results.insert(500, (tcp(22), OPEN));
        let report = report_of(
            &host("localhost", "127.0.0.1"),
            &results,
            Listed::Nmap,
            false,
        );
        assert_eq!(
            report,
            "portscan report for localhost (127.0.0.1)\n\
             Host is up (0.00014s latency).\n\
             Not shown: 998 closed tcp ports (conn-refused)\n\
             PORT     STATE SERVICE\n\
             22/tcp   open  ssh\n\
             3306/tcp open  mysql\n\n"
        );
    }

    /// The whole report of `results`, each (host, port, answer), every host done at the
    /// end; discovery left out `down` and `unreachable` addresses. The closing line's time
    /// is cut off.
    fn whole_report(
        results: &[(&Host, TargetPort, (PortState, Reason))],
        down: u64,
        unreachable: u64,
    ) -> String {
        let mut out = Vec::new();
        let mut report = Report::new(
            &mut out,
            services(),
            Listed::Nmap,
            false,
            false,
            Instant::now(),
        );
        report.unscanned(down, unreachable);
        for (host, port, (state, why)) in results {
            report.result(
                host,
                *port,
                *state,
                *why,
                Some(Duration::from_micros(140)),
                None,
            );
        }
        for (host, _, _) in results {
            report.host_done(host).unwrap();
        }
        report.finish(false).unwrap();
        let text = String::from_utf8(out).unwrap();
        text.split(" scanned in ").next().unwrap().to_owned()
    }

    #[test]
    fn version_detection_adds_a_version_column() {
        let host = host("localhost", "127.0.0.1");
        let mut out = Vec::new();
        let mut report = Report::new(
            &mut out,
            services(),
            Listed::Nmap,
            false,
            false,
            Instant::now(),
        );
        let ssh = Identity {
            service: "ssh".into(),
            product: Some("OpenSSH".into()),
            version: Some("9.2p1 Debian 2+deb12u10".into()),
            extra_info: Some("protocol 2.0".into()),
            tunnel: None,
            cpe: None,
            banner: None,
            method: common::contract::record::Method::Probed,
            confidence: 10,
            certificate: None,
        };
        let odd = Identity {
            service: "unknown".into(),
            product: None,
            version: None,
            extra_info: None,
            method: common::contract::record::Method::Table,
            confidence: 3,
            ..ssh.clone()
        };
        report.result(&host, tcp(22), OPEN.0, OPEN.1, None, Some(ssh));
        report.result(&host, tcp(4444), OPEN.0, OPEN.1, None, Some(odd));
        report.host_done(&host).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains(
                "PORT     STATE SERVICE VERSION\n\
                 22/tcp   open  ssh     OpenSSH 9.2p1 Debian 2+deb12u10 (protocol 2.0)\n\
                 4444/tcp open  unknown\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn an_address_given_twice_is_two_hosts() {
        let first = host("127.0.0.1", "127.0.0.1");
        let second = Host {
            index: 1,
            ..first.clone()
        };
        let results = [
            (&first, tcp(22), OPEN),
            (&second, tcp(22), OPEN),
            (&second, tcp(1), CLOSED),
            (&first, tcp(1), CLOSED),
        ];
        let block = "portscan report for 127.0.0.1\n\
                     Host is up (0.00014s latency).\n\
                     PORT   STATE  SERVICE\n\
                     1/tcp  closed tcpmux\n\
                     22/tcp open   ssh\n\n";
        assert_eq!(
            whole_report(&results, 0, 0),
            format!("{block}{block}portscan done: 2 IP addresses (2 hosts up)")
        );
    }

    #[test]
    fn the_closing_line_counts_the_addresses_discovery_left_out() {
        let up = host("198.18.0.7", "198.18.0.7");
        let report = whole_report(&[(&up, tcp(22), OPEN)], 254, 1);
        assert!(
            report.ends_with("\n\nportscan done: 256 IP addresses (1 host up)"),
            "{report}"
        );
        // No host up: the closing line says so, and what to try if they block pings.
        assert_eq!(
            whole_report(&[], 256, 0),
            "Note: no host answered host discovery. If they are up but block its probes, \
             try -Pn\nportscan done: 256 IP addresses (0 hosts up)"
        );
        // Unreachable hosts were said on stderr; -Pn would not help them.
        assert_eq!(
            whole_report(&[], 0, 2),
            "portscan done: 2 IP addresses (0 hosts up)"
        );
    }

    #[test]
    fn nmaps_rule_lists_a_state_of_at_most_25_ports() {
        for (closed, listed) in [(25, true), (26, false)] {
            let mut results: Vec<_> = (1..=closed).map(|port| (tcp(port), CLOSED)).collect();
            results.push((tcp(8080), OPEN));
            let report = report_of(
                &host("127.0.0.1", "127.0.0.1"),
                &results,
                Listed::Nmap,
                true,
            );
            let lines: Vec<&str> = report.lines().collect();
            assert_eq!(lines[0], "portscan report for 127.0.0.1");
            if listed {
                assert_eq!(lines[2], "PORT     STATE  SERVICE  REASON", "{report}");
                assert_eq!(lines[3], "1/tcp    closed tcpmux   conn-refused");
                assert_eq!(lines[22], "20/tcp   closed ftp-data conn-refused");
                assert_eq!(lines[28], "8080/tcp open   http-alt syn-ack");
                assert_eq!(lines[29], "", "the blank line that ends a host");
                assert_eq!(lines.len(), 30, "{report}");
            } else {
                assert_eq!(lines[2], "Not shown: 26 closed tcp ports (conn-refused)");
                assert_eq!(lines[3], "PORT     STATE SERVICE  REASON", "{report}");
                assert_eq!(lines[4], "8080/tcp open  http-alt syn-ack");
                assert_eq!(lines.len(), 6, "{report}");
            }
        }
    }

    #[test]
    fn not_shown_groups_by_state_protocol_and_reason_largest_first() {
        let mut results: Vec<_> = (1..=40).map(|port| (tcp(port), CLOSED)).collect();
        results.extend((41..=70).map(|port| (tcp(port), SILENT)));
        results.extend((1..=50).map(|port| (udp(port), (PortState::Closed, Reason::PortUnreach))));
        results.push((udp(53), (PortState::OpenFiltered, Reason::NoResponse)));
        results.push((tcp(80), (PortState::Filtered, Reason::AdminProhibited)));
        let open_only = [true, false, false, false];
        let report = report_of(
            &host("h", "198.18.0.2"),
            &results,
            Listed::States(open_only),
            false,
        );
        assert_eq!(
            report,
            "portscan report for h (198.18.0.2)\n\
             Host is up (0.00014s latency).\n\
             All 122 scanned ports on h (198.18.0.2) are in states not shown.\n\
             Not shown: 50 closed udp ports (port-unreach), 40 closed tcp ports \
             (conn-refused), 30 filtered tcp ports (no-response), 1 filtered tcp port \
             (admin-prohibited), 1 open|filtered udp port (no-response)\n\n"
        );
    }

    #[test]
    fn the_states_asked_for_are_listed_whatever_their_count() {
        let mut results: Vec<_> = (1..=30)
            .map(|port| (udp(port), (PortState::OpenFiltered, Reason::NoResponse)))
            .collect();
        results.push((udp(53), (PortState::Open, Reason::UdpResponse)));
        results.push((tcp(22), CLOSED));
        // --open: open and open|filtered.
        let report = report_of(
            &host("::1", "::1"),
            &results,
            Listed::States([true, false, false, true]),
            false,
        );
        let lines: Vec<&str> = report.lines().collect();
        assert_eq!(lines[1], "Host is up (0.00017s latency).");
        assert_eq!(lines[2], "Not shown: 1 closed tcp port (conn-refused)");
        assert_eq!(lines[3], "PORT   STATE         SERVICE");
        assert_eq!(lines[4], "1/udp  open|filtered tcpmux");
        assert!(lines.contains(&"53/udp open          domain"), "{report}");
        assert_eq!(lines.len(), 3 + 1 + 31 + 1, "{report}");
    }

    #[test]
    fn a_host_that_never_answered_says_so_and_a_name_is_escaped() {
        let results: Vec<_> = [9, 7, 1].map(|port| (tcp(port), SILENT)).to_vec();
        let report = report_of(
            &host("evil\x1b[2Jname", "198.18.0.9"),
            &results,
            Listed::Nmap,
            false,
        );
        assert_eq!(
            report,
            "portscan report for evil\\x1b[2Jname (198.18.0.9)\n\
             No answer from the host.\n\
             PORT  STATE    SERVICE\n\
             1/tcp filtered tcpmux\n\
             7/tcp filtered echo\n\
             9/tcp filtered discard\n\n"
        );
    }

    #[test]
    fn hosts_come_as_they_finish_or_sorted_and_failed_ones_are_counted() {
        for sort in [false, true] {
            let mut out = Vec::new();
            let mut report = Report::new(
                &mut out,
                services(),
                Listed::Nmap,
                false,
                sort,
                Instant::now(),
            );
            let (late, early, failed) = (
                host("127.0.0.9", "127.0.0.9"),
                host("127.0.0.10", "127.0.0.10"),
                host("127.0.0.3", "127.0.0.3"),
            );
            for host in [&late, &early, &failed] {
                report.result(
                    host,
                    tcp(22),
                    OPEN.0,
                    OPEN.1,
                    Some(Duration::from_millis(50)),
                    None,
                );
            }
            report.host_failed(&failed);
            report.host_done(&early).unwrap();
            report.host_done(&failed).unwrap();
            // `late` is still in progress at the end (interrupted).
            report.finish(true).unwrap();
            let text = String::from_utf8(out).unwrap();
            let headers: Vec<&str> = text
                .lines()
                .filter(|line| line.starts_with("portscan report for"))
                .collect();
            let expected = if sort {
                [
                    "portscan report for 127.0.0.9",
                    "portscan report for 127.0.0.10",
                ]
            } else {
                [
                    "portscan report for 127.0.0.10",
                    "portscan report for 127.0.0.9",
                ]
            };
            assert_eq!(headers, expected, "sort: {sort}");
            assert!(text.contains("Host is up (0.050s latency).\n"), "{text}");
            let closing = text.lines().last().unwrap();
            assert!(
                closing.starts_with(
                    "portscan interrupted: 3 IP addresses (2 hosts up, 1 not scanned to the end) \
                     scanned in "
                ),
                "{closing}"
            );
            assert!(closing.ends_with(" seconds"), "{closing}");
        }
    }

    #[test]
    fn latencies_have_two_significant_digits() {
        for (micros, text) in [
            (140, "0.00014"),
            (54, "0.000054"),
            (7, "0.0000070"),
            (50_000, "0.050"),
            (1_234_000, "1.2"),
            (12_300_000, "12"),
            (0, "0"),
        ] {
            assert_eq!(
                significant(Duration::from_micros(micros)),
                text,
                "{micros} µs"
            );
        }
    }
}
