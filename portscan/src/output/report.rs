//! The report a person reads at a terminal, in the shape of nmap's normal output (issue
//! #11): a block per host when the host is done (its name and address, whether it
//! answered and how fast, a "Not shown" line counting the ports of the states left out,
//! then aligned PORT STATE SERVICE columns), and a closing line with the count of hosts and
//! the time. Records stay what pipes and files get: this is for eyes, not for parsing.
//!
//! The engine interleaves hosts, so each host's results are held until it is done. What is
//! held is bounded: the ports the report lists, and under nmap's rule at most
//! [`LIST_AT_MOST`] ports of each state but open, until that state collapses into a count.
//!
//! The same per-host results make nmap's other documents (issue #12): the report writes
//! each finished host into every [`Document`] it has, its own text on stdout or in an -oN
//! file, and the XML and grepable files (`xml`, `grepable`), so that all of them list the
//! same ports and count the same hosts.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use common::contract::error::Result;
use common::contract::output::write_aligned;
use common::contract::record::{HostState, PortState, Reason};
use common::contract::text;
use common::services::ServiceDb;
use common::services::ports::Proto;

use super::files::Dest;
use super::{STATES, sort_key};
use crate::TOOL;
use crate::engine::{HOST_TIMEOUT, TargetPort};
use crate::os_hint::{Hint, Unknown};
use crate::service::Identity;
use crate::targets::Host;

/// nmap lists every port of a state with at most this many ports on the host, and counts
/// a state with more in its "Not shown" line (open ports are always listed).
pub const LIST_AT_MOST: u64 = 25;

/// nmap's least probe timeout, the floor of the timeout the XML's `<times>` gives.
const MIN_TIMEOUT: Duration = Duration::from_millis(100);

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

/// The highest confidence that nmap's reports mark as a guess, with a `?` after the name.
const GUESS: u8 = 5;

/// One port as the report lists it.
#[derive(Debug, Clone)]
pub struct Line {
    pub port: TargetPort,
    pub state: PortState,
    pub reason: Reason,
    /// What -sV found, for the SERVICE and VERSION columns and the files' service fields.
    pub identity: Option<Identity>,
}

impl Line {
    /// The port's service name as nmap shows it: -sV's (behind its tunnel, `ssl/http`),
    /// else the service table's. An open port that -sV could name only by guessing (the
    /// table's name, nothing matched) gets nmap's `?`: `domain?`.
    pub fn service_name(&self, scan: &Scan) -> Option<String> {
        match &self.identity {
            Some(identity) => {
                let guess = if self.state == PortState::Open
                    && identity.confidence <= GUESS
                    && identity.service != "unknown"
                {
                    "?"
                } else {
                    ""
                };
                Some(match &identity.tunnel {
                    Some(tunnel) => format!("{tunnel}/{}{guess}", identity.service),
                    None => format!("{}{guess}", identity.service),
                })
            }
            None => scan.service(self.port).map(str::to_owned),
        }
    }

    /// -sV's product, version and extra information, as nmap's VERSION column shows them.
    pub fn version_text(&self) -> Option<String> {
        let identity = self.identity.as_ref()?;
        let words: Vec<String> = [&identity.product, &identity.version]
            .into_iter()
            .flatten()
            .cloned()
            .chain(identity.extra_info.as_ref().map(|info| format!("({info})")))
            .collect();
        (!words.is_empty()).then(|| words.join(" "))
    }
}

/// What the report knows of one host until it is done.
#[derive(Debug)]
pub struct HostReport {
    /// Ports in each (state, proto, reason), for the "Not shown" line.
    counts: Vec<((PortState, Proto, Reason), u64)>,
    /// Ports in each state, indexed by [`PortState::index`].
    per_state: [u64; STATES],
    /// The ports that may be listed: of listed states, or under nmap's rule of a state
    /// that has not passed [`LIST_AT_MOST`] yet.
    lines: Vec<Line>,
    /// The quickest answer: the closest to the path's own latency, as nmap's ping is.
    pub latency: Option<Duration>,
    /// The smoothed round trip and its variation (RFC 6298's estimator, as nmap keeps
    /// one per host), for the XML's `<times>`.
    rtt: Option<(Duration, Duration)>,
    /// Whether anything came back from the host (a refusal is an answer too).
    pub answered: bool,
    /// Why the host could not be scanned to the end, if it could not.
    failure: Option<String>,
    /// When its first result came, and when it was done.
    pub started: SystemTime,
    pub ended: Option<SystemTime>,
    /// With -A, what its system likely is.
    pub os_hint: Option<Hint>,
}

impl HostReport {
    fn new() -> Self {
        Self {
            counts: Vec::new(),
            per_state: [0; STATES],
            lines: Vec::new(),
            latency: None,
            rtt: None,
            answered: false,
            failure: None,
            started: SystemTime::now(),
            ended: None,
            os_hint: None,
        }
    }

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
                self.rtt = Some(match self.rtt {
                    None => (rtt, rtt / 2),
                    Some((srtt, rttvar)) => {
                        ((srtt * 7 + rtt) / 8, (rttvar * 3 + srtt.abs_diff(rtt)) / 4)
                    }
                });
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

    /// The ports listed one by one: TCP before UDP, each in port order, as nmap lists them.
    pub fn listed_lines(&self, listed: Listed) -> Vec<Line> {
        let mut lines: Vec<Line> = self
            .lines
            .iter()
            .filter(|line| self.is_listed(line.state, listed))
            .cloned()
            .collect();
        lines.sort_by_key(|line| (line.port.proto, line.port.port));
        lines
    }

    /// The ports of states not listed, counted by (state, proto, reason), largest group
    /// first.
    pub fn unlisted(&self, listed: Listed) -> Vec<((PortState, Proto, Reason), u64)> {
        let mut groups: Vec<_> = self
            .counts
            .iter()
            .filter(|((state, _, _), _)| !self.is_listed(*state, listed))
            .copied()
            .collect();
        groups.sort_by(|(a, a_count), (b, b_count)| b_count.cmp(a_count).then(a.cmp(b)));
        groups
    }

    /// "998 closed tcp ports (conn-refused), 2 filtered tcp ports (no-response)": the
    /// ports of states not listed, largest group first; `None` if every port is listed.
    fn not_shown(&self, listed: Listed) -> Option<String> {
        let groups = self.unlisted(listed);
        if groups.is_empty() {
            return None;
        }
        let said: Vec<String> = groups
            .into_iter()
            .map(|((state, proto, reason), count)| {
                let ports = if count == 1 { "port" } else { "ports" };
                format!(
                    "{count} {} {proto} {ports} ({})",
                    state.as_str(),
                    reason.as_str()
                )
            })
            .collect();
        Some(said.join(", "))
    }

    /// Why the host could not be scanned to the end: its ports are not listed, as nmap
    /// lists none of a host it gave up on.
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    /// Whether --host-timeout ended the host's scan (nmap's `timedout`).
    pub fn timed_out(&self) -> bool {
        self.failure() == Some(HOST_TIMEOUT)
    }

    fn total(&self) -> u64 {
        self.per_state.iter().sum()
    }

    /// The smoothed round trip, its variation, and the timeout they give, as nmap's
    /// `<times>` has them; zeros for a host that never answered.
    pub fn times(&self) -> (Duration, Duration, Duration) {
        match self.rtt {
            Some((srtt, rttvar)) => (srtt, rttvar, (srtt + rttvar * 4).max(MIN_TIMEOUT)),
            None => (Duration::ZERO, Duration::ZERO, MIN_TIMEOUT),
        }
    }
}

/// What every document is told of the scan it reports.
pub struct Scan {
    /// Shared with -sV, which names what its probes do not.
    pub services: Arc<ServiceDb>,
    pub listed: Listed,
    /// A REASON column, as nmap's --reason adds.
    pub reason: bool,
    /// With `--sort`: hosts in address order at the end.
    pub sort: bool,
    pub started: Instant,
    /// The wall-clock time the scan began, for the files.
    pub start_time: SystemTime,
    pub command_line: String,
    /// The ports scanned, each protocol's in port order.
    pub ports: Vec<TargetPort>,
    /// -v's count.
    pub verbose: u8,
    /// The XSL stylesheet the XML names, if any.
    pub stylesheet: Option<String>,
    /// Why host discovery found each host it found up; a host without one was scanned
    /// without it, as the user said.
    pub up_reasons: HashMap<Host, Reason>,
    /// Each name's addresses left out of the scan (all but the first without
    /// --resolve-all), by name.
    pub unscanned_addresses: HashMap<String, Vec<IpAddr>>,
    /// -sS: TCP ports were probed with SYNs, which the XML file calls a "syn" scan.
    pub syn: bool,
}

impl Scan {
    /// The name of a port's service in the service table, if it has one.
    pub fn service(&self, port: TargetPort) -> Option<&str> {
        self.services
            .by_port(port.port, port.proto)
            .map(|found| found.name)
    }

    /// Why `host` is taken to be up: discovery's reason, or nmap's "user-set".
    pub fn up_reason(&self, host: &Host) -> &'static str {
        self.up_reasons
            .get(host)
            .map_or("user-set", |reason| reason.as_str())
    }
}

/// How the scan ended, for the documents' closing lines.
pub struct Ending<'a> {
    pub said: &'a Said,
    pub elapsed: Duration,
    pub interrupted: bool,
    pub time: SystemTime,
}

/// One document-shaped output: a beginning, a block per host, an end.
pub trait Document {
    fn begin(&mut self, out: &mut dyn Write, scan: &Scan) -> io::Result<()>;
    /// A host that is done, or that failed ([`HostReport::failure`]): each host's fate is in
    /// every document, as nmap's files have a host it gave up on.
    fn host(
        &mut self,
        out: &mut dyn Write,
        scan: &Scan,
        host: &Host,
        report: &HostReport,
    ) -> io::Result<()>;
    /// A host that host discovery alone (-sn) found up or down.
    fn status(
        &mut self,
        out: &mut dyn Write,
        scan: &Scan,
        host: &Host,
        status: &HostStatus,
    ) -> io::Result<()>;
    fn end(&mut self, out: &mut dyn Write, scan: &Scan, ending: &Ending<'_>) -> io::Result<()>;
}

/// What host discovery found of a host, for -sn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostStatus {
    pub state: HostState,
    pub reason: Reason,
    /// Of the answer that showed it up.
    pub rtt: Option<Duration>,
}

/// The report: hosts in the order they finish (each is said as soon as it is done, as nmap
/// does, rather than waiting on a slower host that came first), or in address order at the
/// end with `--sort`.
pub struct Report<'a> {
    scan: Scan,
    documents: Vec<(Box<dyn Document>, Dest<'a>)>,
    /// With `--sort`: finished hosts, held until the end.
    held: Option<Vec<(Host, HostReport)>>,
    /// Hosts with results not yet said.
    hosts: HashMap<Host, HostReport>,
    said: Said,
}

/// What the closing line counts.
#[derive(Debug, Default)]
pub struct Said {
    pub hosts: u64,
    /// Addresses that host discovery found down, and that it could not reach: no port
    /// scan.
    pub down: u64,
    pub unreachable: u64,
    pub up: u64,
    pub failed: u64,
}

impl<'a> Report<'a> {
    /// A report of `scan`, into no document yet.
    pub fn new(scan: Scan) -> Self {
        Self {
            held: scan.sort.then(Vec::new),
            scan,
            documents: Vec::new(),
            hosts: HashMap::new(),
            said: Said::default(),
        }
    }

    /// Writes `document` into `dest` as well, beginning it now.
    pub fn add(&mut self, mut document: Box<dyn Document>, mut dest: Dest<'a>) -> Result<()> {
        document
            .begin(&mut dest, &self.scan)
            .and_then(|()| dest.flush())
            .map_err(|e| dest.error(e))?;
        self.documents.push((document, dest));
        Ok(())
    }

    fn entry(&mut self, host: &Host) -> &mut HostReport {
        self.hosts
            .entry(host.clone())
            .or_insert_with(HostReport::new)
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
        let listed = self.scan.listed;
        let line = Line {
            port,
            state,
            reason,
            identity,
        };
        self.entry(host).add(line, rtt, listed);
    }

    pub fn host_failed(&mut self, host: &Host, why: &str) {
        self.entry(host).failure = Some(why.to_owned());
    }

    /// The OS hint of `host` (-A), said with its ports.
    pub fn os_hint(&mut self, host: &Host, hint: Hint) {
        self.entry(host).os_hint = Some(hint);
    }

    /// Says the host's block now, or holds it for the end with `--sort`.
    pub fn host_done(&mut self, host: &Host) -> Result<()> {
        let Some(mut report) = self.hosts.remove(host) else {
            return Ok(());
        };
        report.ended = Some(SystemTime::now());
        if let Some(held) = &mut self.held {
            held.push((host.clone(), report));
            return Ok(());
        }
        self.say(host, &report)?;
        for (_, dest) in &mut self.documents {
            dest.flush().map_err(|e| dest.error(e))?;
        }
        Ok(())
    }

    /// Says what is still held (every host with `--sort`; after an interrupt, the hosts in
    /// progress), then the closing lines.
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
        let ending = Ending {
            said: &self.said,
            elapsed: self.scan.started.elapsed(),
            interrupted,
            time: SystemTime::now(),
        };
        for (document, dest) in &mut self.documents {
            document
                .end(dest, &self.scan, &ending)
                .and_then(|()| dest.flush())
                .map_err(|e| dest.error(e))?;
        }
        Ok(())
    }

    /// Counts the addresses that host discovery left out of the port scan, `down` and
    /// `unreachable`, which the closing line counts as nmap's does: "256 IP addresses (3
    /// hosts up)".
    pub fn unscanned(&mut self, down: u64, unreachable: u64) {
        self.said.down += down;
        self.said.unreachable += unreachable;
    }

    /// Counts a host that host discovery alone (-sn) found, and writes it into every
    /// document if it is `shown` (down hosts are, with --all).
    pub fn status(&mut self, host: &Host, status: HostStatus, shown: bool) -> Result<()> {
        match status.state {
            HostState::Up => {
                self.said.hosts += 1;
                self.said.up += 1;
            }
            HostState::Down => self.said.down += 1,
        }
        if !shown {
            return Ok(());
        }
        for (document, dest) in &mut self.documents {
            document
                .status(dest, &self.scan, host, &status)
                .and_then(|()| dest.flush())
                .map_err(|e| dest.error(e))?;
        }
        Ok(())
    }

    /// Writes one host into every document, counting it.
    fn say(&mut self, host: &Host, report: &HostReport) -> Result<()> {
        self.said.hosts += 1;
        if report.failure.is_some() {
            self.said.failed += 1;
        } else if report.answered {
            self.said.up += 1;
        }
        for (document, dest) in &mut self.documents {
            document
                .host(dest, &self.scan, host, report)
                .map_err(|e| dest.error(e))?;
        }
        Ok(())
    }
}

/// The report itself, as nmap's normal output: a block per host, the closing line.
pub struct Normal;

impl Document for Normal {
    fn begin(&mut self, _out: &mut dyn Write, _scan: &Scan) -> io::Result<()> {
        Ok(())
    }

    fn host(
        &mut self,
        out: &mut dyn Write,
        scan: &Scan,
        host: &Host,
        report: &HostReport,
    ) -> io::Result<()> {
        write_host(out, host, report, scan)
    }

    /// nmap's -sn report: the host's line, and whether it is up and how fast.
    fn status(
        &mut self,
        out: &mut dyn Write,
        _scan: &Scan,
        host: &Host,
        status: &HostStatus,
    ) -> io::Result<()> {
        let name = host_name(host);
        match (status.state, status.rtt) {
            (HostState::Down, _) => writeln!(out, "{TOOL} report for {name} [host down]"),
            (HostState::Up, Some(rtt)) => writeln!(
                out,
                "{TOOL} report for {name}\nHost is up ({}s latency).",
                significant(rtt)
            ),
            (HostState::Up, None) => writeln!(out, "{TOOL} report for {name}\nHost is up."),
        }
    }

    fn end(&mut self, out: &mut dyn Write, _scan: &Scan, ending: &Ending<'_>) -> io::Result<()> {
        if ending.said.up == 0 && ending.said.down > 0 {
            writeln!(
                out,
                "Note: no host answered host discovery. If they are up but block its probes, \
                 try -Pn"
            )?;
        }
        writeln!(
            out,
            "{}",
            closing_line(ending.said, ending.elapsed, ending.interrupted)
        )
    }
}

/// Writes one host's block, ending with a blank line.
fn write_host(
    mut out: &mut dyn Write,
    host: &Host,
    report: &HostReport,
    scan: &Scan,
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
    if let Some(others) = scan.unscanned_addresses.get(&host.label) {
        let mut label = String::new();
        text::escape_token(host.label.as_bytes(), &mut label);
        let others: Vec<String> = others.iter().map(ToString::to_string).collect();
        writeln!(
            out,
            "Other addresses for {label} (not scanned): {}",
            others.join(" ")
        )?;
    }
    if let Some(why) = report.failure() {
        // nmap: "Skipping host localhost (127.0.0.1) due to host timeout", and no ports.
        writeln!(out, "Skipping host {name}: {why}")?;
        return writeln!(out);
    }
    let lines = report.listed_lines(scan.listed);
    if lines.is_empty() {
        let total = report.total();
        writeln!(
            out,
            "All {total} scanned ports on {name} are in states not shown."
        )?;
    }
    if let Some(not_shown) = report.not_shown(scan.listed) {
        writeln!(out, "Not shown: {not_shown}")?;
    }
    if !lines.is_empty() {
        write_aligned(&mut out, &table(&lines, scan))?;
    }
    if let Some(hint) = &report.os_hint {
        write_os_hint(out, hint)?;
    }
    writeln!(out)
}

/// The OS hint's lines, where nmap's -A says its OS guesses, the distance and "Service
/// Info": `OS hint: Linux (Debian), 98% sure`, or `OS hint: unknown (...)`, then each
/// piece of evidence on a line of its own.
fn write_os_hint(out: &mut dyn Write, hint: &Hint) -> io::Result<()> {
    match hint.verdict {
        Ok(_) => writeln!(out, "OS hint: {}, {}% sure", hint.name(), hint.accuracy)?,
        Err(Unknown::Thin) => writeln!(out, "OS hint: unknown (too little evidence)")?,
        Err(Unknown::Contradictory) => {
            writeln!(out, "OS hint: unknown (the evidence disagrees)")?;
        }
    }
    writeln!(out, "OS evidence:")?;
    for piece in &hint.evidence {
        let mut line = String::new();
        text::escape_free_text(piece.as_bytes(), &mut line);
        writeln!(out, "  {line}")?;
    }
    if let Some(hops) = hint.distance {
        let unit = if hops == 1 { "hop" } else { "hops" };
        writeln!(out, "Network Distance: {hops} {unit}")?;
    }
    if let Some(family) = hint.service_family {
        match family.cpe() {
            Some(cpe) => writeln!(out, "Service Info: OS: {}; CPE: {cpe}", family.name())?,
            None => writeln!(out, "Service Info: OS: {}", family.name())?,
        }
    }
    Ok(())
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
fn table(lines: &[Line], scan: &Scan) -> Vec<Vec<String>> {
    let reason = scan.reason;
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
        match line.service_name(scan) {
            Some(name) => text::escape_token(name.as_bytes(), &mut service),
            None => service.push_str("unknown"),
        }
        let mut row = vec![
            format!("{port}/{proto}"),
            line.state.as_str().to_owned(),
            service,
        ];
        if reason {
            row.push(line.reason.as_str().to_owned());
        }
        // An empty last cell would leave padding at the end of the line.
        if let Some(words) = line.version_text().filter(|_| versions) {
            let mut version = String::new();
            text::escape_free_text(words.as_bytes(), &mut version);
            row.push(version);
        }
        rows.push(row);
    }
    rows
}

/// "portscan done: 1 IP address (1 host up) scanned in 0.05 seconds".
fn closing_line(said: &Said, elapsed: Duration, interrupted: bool) -> String {
    format!(
        "{TOOL} {}: {}",
        if interrupted { "interrupted" } else { "done" },
        hosts_scanned(said, elapsed)
    )
}

/// "1 IP address (1 host up) scanned in 0.05 seconds", as nmap's files close too.
pub fn hosts_scanned(said: &Said, elapsed: Duration) -> String {
    let plural = |count: u64, one: &'static str, many: &'static str| {
        if count == 1 { one } else { many }
    };
    let addresses = said.hosts + said.down + said.unreachable;
    let failed = match said.failed {
        0 => String::new(),
        failed => format!(", {failed} not scanned to the end"),
    };
    format!(
        "{} IP {} ({} {} up{failed}) scanned in {:.2} seconds",
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
    use common::contract::record::Method;
    use common::services::Options;

    fn services() -> ServiceDb {
        ServiceDb::load(&Options {
            builtin_only: true,
            ..Options::default()
        })
        .unwrap()
    }

    /// A report in the shape of the terminal's, into `out`.
    fn report_into(out: &mut Vec<u8>, listed: Listed, reason: bool, sort: bool) -> Report<'_> {
        report_of_scan(out, scan(listed, reason, sort))
    }

    fn scan(listed: Listed, reason: bool, sort: bool) -> Scan {
        Scan {
            services: Arc::new(services()),
            listed,
            reason,
            sort,
            started: Instant::now(),
            start_time: SystemTime::now(),
            command_line: String::new(),
            ports: Vec::new(),
            verbose: 0,
            stylesheet: None,
            up_reasons: HashMap::new(),
            unscanned_addresses: HashMap::new(),
            syn: false,
        }
    }

    fn report_of_scan(out: &mut Vec<u8>, scan: Scan) -> Report<'_> {
        let mut report = Report::new(scan);
        report.add(Box::new(Normal), Dest::stdout(out)).unwrap();
        report
    }

    /// nmap's `?` marks an open port's name that -sV only took from the table; a probed
    /// name, `unknown`, and a port -sV did not probe have none.
    #[test]
    fn a_guessed_service_name_ends_with_a_question_mark() {
        let scan = scan(Listed::Nmap, false, false);
        let identity =
            |service, method, confidence| Identity::named(service, method, confidence, None);
        let line = |port, state, identity| Line {
            port: TargetPort {
                proto: Proto::Udp,
                port,
            },
            state,
            reason: Reason::UdpResponse,
            identity,
        };
        let named = |line: Line| line.service_name(&scan);
        let table = Some(identity("domain", Method::Table, 3));
        assert_eq!(
            named(line(53, PortState::Open, table.clone())).unwrap(),
            "domain?"
        );
        let closed = line(53, PortState::OpenFiltered, table);
        assert_eq!(named(closed).unwrap(), "domain");
        let probed = Some(identity("domain", Method::Probed, 10));
        assert_eq!(named(line(53, PortState::Open, probed)).unwrap(), "domain");
        let unknown = Some(identity("unknown", Method::Table, 3));
        assert_eq!(
            named(line(47000, PortState::Open, unknown)).unwrap(),
            "unknown"
        );
        assert_eq!(named(line(53, PortState::Open, None)).unwrap(), "domain");
    }

    /// A name's addresses left out of the scan are said under its header, as nmap does.
    #[test]
    fn a_names_other_addresses_are_mentioned() {
        let mut with_others = scan(Listed::Nmap, false, false);
        let others = vec!["::1".parse().unwrap()];
        with_others
            .unscanned_addresses
            .insert("localhost".into(), others);
        let mut out = Vec::new();
        let mut report = report_of_scan(&mut out, with_others);
        let localhost = host("localhost", "127.0.0.1");
        report.result(&localhost, tcp(22), OPEN.0, OPEN.1, None, None);
        report.host_done(&localhost).unwrap();
        report.finish(false).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with(
                "portscan report for localhost (127.0.0.1)\nHost is up.\n\
                 Other addresses for localhost (not scanned): ::1\n"
            ),
            "{text}"
        );
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
        let mut report = report_into(&mut out, listed, reason, false);
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
        let mut report = report_into(&mut out, Listed::Nmap, false, false);
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
            let mut report = report_into(&mut out, Listed::Nmap, false, sort);
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
            report.host_failed(&failed, HOST_TIMEOUT);
            report.host_done(&early).unwrap();
            report.host_done(&failed).unwrap();
            // `late` is still in progress at the end (interrupted).
            report.finish(true).unwrap();
            let text = String::from_utf8(out).unwrap();
            let headers: Vec<&str> = text
                .lines()
                .filter(|line| line.starts_with("portscan report for"))
                .collect();
            // The failed host has its block, without its ports.
            let expected = if sort {
                [
                    "portscan report for 127.0.0.3",
                    "portscan report for 127.0.0.9",
                    "portscan report for 127.0.0.10",
                ]
            } else {
                [
                    "portscan report for 127.0.0.10",
                    "portscan report for 127.0.0.3",
                    "portscan report for 127.0.0.9",
                ]
            };
            assert_eq!(headers, expected, "sort: {sort}");
            assert!(
                text.contains(
                    "portscan report for 127.0.0.3\nHost is up (0.050s latency).\n\
                     Skipping host 127.0.0.3: host timeout\n\n"
                ),
                "{text}"
            );
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
