//! The output stage: results become PortRecords the moment they are final (or, with
//! `--sort`, at the end in a stable order), filtered by state; or, for a person at a
//! terminal, a report per host (`report`). The progress line and the summary go to stderr,
//! and only where a person reads them, so cron stays quiet.

pub mod files;
mod grepable;
mod hosts;
mod normal_file;
mod progress;
mod report;
mod xml;

use std::collections::{HashMap, HashSet};
use std::io::{self, IsTerminal, Write};
use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime};

use common::contract::baseline::{self, ChangeRecord};
use common::contract::error::{Error, Result, warn};
use common::contract::output::{FlushPolicy, Format, RecordWriter, TextOptions};
use common::contract::record::{PortRecord, PortState, Reason};
use common::contract::timestamp::rfc3339;
use common::services::ports::Proto;

use crate::TOOL;
use crate::engine::{FollowUp, Observer, TargetPort};
use crate::os_hint::{Hint, Hinted};
use crate::service::{Identified, Identity};
use crate::targets::{Host, Problems};

use files::Dest;
pub use hosts::HostFiles;
pub use normal_file::NormalFile;
pub use progress::ProgressLine;
pub use report::{Document, Listed, Normal, Report, Scan};
pub use {grepable::Grepable, xml::Xml};

pub struct Printer<'a, W: Write> {
    /// The records stdout gets, unless it gets the report or a file's format.
    records: Option<Records<W>>,
    /// The records -oJ writes.
    json_file: Option<Records<Dest<'a>>>,
    /// The per-host report, writing into its documents: stdout's report, -oN, -oX, -oG.
    report: Option<Report<'a>>,
    /// Ports found in each state, indexed by [`PortState::index`].
    counts: [u64; STATES],
    /// Hosts that failed in the scan.
    hosts_failed: u64,
    /// Those, and the hosts that failed before it: names that did not resolve, hosts
    /// discovery could not reach.
    failed: FailedHosts,
    progress: ProgressLine,
    /// Whether notices (a host's ICMP ration) go to stderr: on a terminal, or with -v.
    notices: bool,
    /// A -sV run: its records carry the -sV columns in CSV.
    version_columns: bool,
    /// A -A run: its records carry the OS columns in CSV.
    os_columns: bool,
    /// The OS hint of each host whose open ports are being printed (-A), until it is done.
    os_hints: HashMap<Host, Hint>,
}

/// Where records go, and which.
pub struct Records<W: Write> {
    writer: RecordWriter<W>,
    /// Whether each state is shown, indexed by [`PortState::index`].
    show: [bool; STATES],
    /// With `--sort`, the records held until the end.
    held: Option<Vec<PortRecord>>,
    /// What a failed write is said to be about: "-oJ scan.json"; stdout's own if `None`.
    label: Option<String>,
    /// With `--baseline` or `--expect-open`: every port's record, of every state, held to
    /// be compared at the end; only the differences are written.
    compared: Option<(Comparison, Vec<PortRecord>)>,
}

/// The hosts that have no result this run: a baseline's ports on them are not reported
/// removed (nothing is known of them now), and the baseline is not rewritten without them.
#[derive(Debug, Default)]
pub struct FailedHosts {
    /// How many hosts failed, or might have been scanned wrongly (an --exclude whose name
    /// did not resolve).
    pub count: u64,
    pub addresses: HashSet<IpAddr>,
    /// The targets' names that did not resolve, as records name their host.
    pub names: HashSet<String>,
}

impl FailedHosts {
    /// No host failed by address or name: the comparison need not filter.
    fn is_empty(&self) -> bool {
        self.addresses.is_empty() && self.names.is_empty()
    }

    fn covers(&self, record: &PortRecord) -> bool {
        self.addresses.contains(&record.address) || self.names.contains(&record.host)
    }
}

/// What a scan's result is compared with.
#[derive(Debug, Clone)]
pub enum Comparison {
    /// An earlier run's records (read before the scan starts); `update`: rewrite `path`
    /// with this run's.
    Baseline {
        path: std::path::PathBuf,
        update: bool,
        earlier: Vec<PortRecord>,
    },
    /// The ports that must be open on every host scanned, and no others.
    ExpectOpen(Vec<TargetPort>),
}

impl Comparison {
    /// Reads the baseline, before anything is sent: a file that is not one is a usage
    /// error, and so is a missing one unless it is to be made.
    pub fn load(&mut self) -> Result<()> {
        if let Self::Baseline {
            path,
            update,
            earlier,
        } = self
        {
            *earlier = match baseline::read::<PortRecord>(path)? {
                Some(records) => records,
                None if *update => Vec::new(),
                None => {
                    return Err(Error::usage(format!(
                        "--baseline {}: no such file (--update-baseline makes it)",
                        path.display()
                    )));
                }
            };
        }
        Ok(())
    }

    /// What differs between `now` (every port scanned) and what was expected; a record of
    /// `now` counts as added only in a state `show` prints. The hosts that `failed` are
    /// left out of the comparison: their ports are neither removed nor added. The baseline
    /// is rewritten only if no host failed: rewriting would drop a failed host's ports from
    /// the baseline, to come back as `added` on the next run.
    fn changes(
        self,
        now: &[PortRecord],
        show: [bool; STATES],
        failed: &FailedHosts,
    ) -> Result<Vec<ChangeRecord<PortRecord>>> {
        let shown = |record: &PortRecord| show[record.state.index()];
        match self {
            Self::Baseline {
                path,
                update,
                earlier,
            } => {
                let changes = if failed.is_empty() {
                    baseline::compare(earlier, now, shown)
                } else {
                    let earlier = earlier.into_iter().filter(|r| !failed.covers(r)).collect();
                    let now: Vec<PortRecord> =
                        now.iter().filter(|r| !failed.covers(r)).cloned().collect();
                    baseline::compare(earlier, &now, shown)
                };
                if update && failed.count > 0 {
                    warn(
                        TOOL,
                        format_args!(
                            "--update-baseline: kept {}: {} host(s) failed",
                            path.display(),
                            failed.count
                        ),
                    );
                } else if update {
                    let kept: Vec<&PortRecord> = now.iter().filter(|r| shown(r)).collect();
                    baseline::write(&path, kept.iter().copied())?;
                }
                Ok(changes)
            }
            Self::ExpectOpen(ports) => {
                // Every host scanned, once, in the order met.
                let mut hosts: Vec<(&str, IpAddr)> = Vec::new();
                for record in now {
                    let host = (record.host.as_str(), record.address);
                    if !hosts.contains(&host) {
                        hosts.push(host);
                    }
                }
                let expected: Vec<PortRecord> = hosts
                    .iter()
                    .flat_map(|&(host, address)| {
                        ports.iter().map(move |port| PortRecord {
                            host: host.to_owned(),
                            address,
                            port: port.port,
                            proto: port.proto,
                            state: PortState::Open,
                            ..PortRecord::default()
                        })
                    })
                    .collect();
                let open = |record: &PortRecord| record.state == PortState::Open;
                Ok(baseline::compare(expected, now, open))
            }
        }
    }
}

impl<W: Write> Records<W> {
    pub fn new(writer: RecordWriter<W>, show: [bool; STATES], sort: bool) -> Self {
        Self {
            writer,
            show,
            held: sort.then(Vec::new),
            label: None,
            compared: None,
        }
    }

    /// Writes how the result differs from `comparison`, instead of the result.
    pub fn compared(self, comparison: Comparison) -> Self {
        Self {
            compared: Some((comparison, Vec::new())),
            ..self
        }
    }

    fn relabel(&self, error: Error) -> Error {
        files::relabel(self.label.as_deref(), error)
    }

    fn write(&mut self, record: &PortRecord) -> Result<()> {
        if let Some((_, now)) = &mut self.compared {
            now.push(record.clone());
            return Ok(());
        }
        if !self.show[record.state.index()] {
            return Ok(());
        }
        match &mut self.held {
            Some(held) => {
                held.push(record.clone());
                Ok(())
            }
            None => self.writer.write(record).map_err(|e| self.relabel(e)),
        }
    }

    /// Writes what is held, and ends the output; `true` if a comparison found changes. An
    /// `interrupted` scan is compared with nothing: what it did not reach is no change.
    /// With `failed` hosts, a baseline is not rewritten ([`Comparison::changes`]).
    fn finish(mut self, interrupted: bool, failed: &FailedHosts) -> Result<bool> {
        let mut changed = false;
        if let Some((comparison, mut now)) = self.compared.take().filter(|_| !interrupted) {
            // In order, as --sort prints them: the changes, and the rewritten baseline.
            now.sort_by(in_order);
            let changes = comparison.changes(&now, self.show, failed)?;
            changed = !changes.is_empty();
            for change in &changes {
                self.writer.write(change).map_err(|e| self.relabel(e))?;
            }
        }
        if let Some(mut held) = self.held.take() {
            held.sort_by(in_order);
            for record in &held {
                self.writer.write(record).map_err(|e| self.relabel(e))?;
            }
        }
        let label = self.label.take();
        self.writer
            .finish()
            .map_err(|e| files::relabel(label.as_deref(), e))?;
        Ok(changed)
    }
}

impl<'a> Records<Dest<'a>> {
    /// NDJSON records into an output file (-oJ), whose failures name it.
    /// `hostname`: each names the machine (`--hostname-field`).
    pub fn into_file(dest: Dest<'a>, show: [bool; STATES], sort: bool, hostname: bool) -> Self {
        let label = dest.label().map(str::to_owned);
        // Records in a file trickle in as in a pipe: each is whole on disk when written,
        // so that `tail -f` and a Ctrl-C leave complete lines.
        let policy = if sort {
            FlushPolicy::Block
        } else {
            FlushPolicy::PerRecord
        };
        let writer = RecordWriter::new(dest, Format::Json, policy, TextOptions::default())
            .with_hostname(hostname);
        Self {
            label,
            ..Self::new(writer, show, sort)
        }
    }
}

/// How many states a port can be in.
const STATES: usize = PortState::ALL.len();

impl<'a, W: Write> Printer<'a, W> {
    /// A printer of records to stdout, the report (to stdout or files only), and records
    /// to an -oJ file.
    pub fn new(
        records: Option<Records<W>>,
        report: Option<Report<'a>>,
        json_file: Option<Records<Dest<'a>>>,
    ) -> Self {
        Self {
            records,
            json_file,
            report,
            counts: [0; STATES],
            hosts_failed: 0,
            failed: FailedHosts::default(),
            progress: ProgressLine::on_terminal(),
            notices: io::stderr().is_terminal(),
            version_columns: false,
            os_columns: false,
            os_hints: HashMap::new(),
        }
    }

    /// Gives every record the -sV columns in CSV (a -sV run).
    pub fn version_columns(&mut self) {
        self.version_columns = true;
    }

    /// Gives every record the -A columns in CSV (a -A run).
    pub fn os_columns(&mut self) {
        self.os_columns = true;
    }

    /// Shows notices even where stderr is no terminal (-v).
    pub fn show_notices(&mut self) {
        self.notices = true;
    }

    /// Counts the addresses that host discovery left out of the port scan, `down` and
    /// `unreachable`, for the report's closing line.
    pub fn unscanned(&mut self, down: u64, unreachable: u64) {
        if let Some(report) = &mut self.report {
            report.unscanned(down, unreachable);
        }
    }

    pub fn hosts_failed(&self) -> u64 {
        self.hosts_failed
    }

    /// Adds the hosts that failed before the scan, the targets' `problems` (names that did
    /// not resolve) and the addresses discovery found `unreachable`, so that a baseline's
    /// comparison leaves them out and --update-baseline keeps the old baseline rather than
    /// drop their ports.
    pub fn failed_before(&mut self, problems: &Problems, unreachable: Vec<IpAddr>) {
        self.failed.count += problems.count() + unreachable.len() as u64;
        self.failed.addresses.extend(unreachable);
        self.failed
            .names
            .extend(problems.unresolved.iter().cloned());
    }

    /// Prints what is held (sorted records; the report's last hosts and its closing lines,
    /// which say whether the scan was `interrupted`) and flushes; the summary line is the
    /// caller's to ask for.
    /// Returns the counts of ports in each state, and whether a comparison (--baseline,
    /// --expect-open) found changes.
    pub fn finish(mut self, interrupted: bool) -> Result<([u64; STATES], bool)> {
        self.progress.clear();
        // Every output is ended, the XML closed, even when one of them fails; the first
        // failure is the run's.
        let failed = &self.failed;
        let finish_records = |records: Records<_>| records.finish(interrupted, failed);
        let (stdout, json_file) = (
            self.records.map_or(Ok(false), finish_records),
            self.json_file
                .map_or(Ok(false), |file| file.finish(interrupted, failed)),
        );
        let report = self
            .report
            .map_or(Ok(()), |report| report.finish(interrupted));
        let changed = stdout?;
        json_file?;
        report?;
        Ok((self.counts, changed))
    }
}

/// Records in (address, host, proto, port) order.
fn in_order(a: &PortRecord, b: &PortRecord) -> std::cmp::Ordering {
    sort_key(a.address)
        .cmp(&sort_key(b.address))
        .then_with(|| a.host.cmp(&b.host))
        .then(a.proto.cmp(&b.proto))
        .then(a.port.cmp(&b.port))
}

/// IPv4 before IPv6, each in numeric order.
fn sort_key(address: IpAddr) -> (u8, u128) {
    match address {
        IpAddr::V4(v4) => (4, u128::from(u32::from(v4))),
        IpAddr::V6(v6) => (6, u128::from(v6)),
    }
}

impl<W: Write> Printer<'_, W> {
    /// Prints (or holds) a port's result, with what version detection found of it, if it
    /// was asked.
    fn emit(
        &mut self,
        host: &Host,
        port: TargetPort,
        (state, reason): (PortState, Reason),
        rtt: Option<Duration>,
        identity: Option<Identity>,
    ) -> Result<()> {
        self.counts[state.index()] += 1;
        if let Some(report) = &mut self.report {
            report.result(host, port, state, reason, rtt, identity.clone());
        }
        if self.records.is_none() && self.json_file.is_none() {
            return Ok(());
        }
        let mut record = PortRecord {
            host: host.label.clone(),
            address: host.address,
            port: port.port,
            proto: port.proto,
            state,
            reason,
            // Microsecond resolution: finer is noise from the loop itself.
            rtt_ms: rtt.map(|rtt| (rtt.as_secs_f64() * 1e6).round() / 1e3),
            time: rfc3339(SystemTime::now()),
            version_columns: self.version_columns,
            os_columns: self.os_columns,
            ..PortRecord::default()
        };
        if let Some(hint) = self.os_hints.get(host)
            && state == PortState::Open
            && port.proto == Proto::Tcp
        {
            record.os_family = Some(hint.family_name().to_owned());
            record.os_distribution = hint.distribution.map(str::to_owned);
            record.os_accuracy = Some(hint.accuracy);
            record.os_evidence = Some(hint.evidence_line());
        }
        if let Some(identity) = identity {
            record.service = Some(identity.service);
            record.product = identity.product;
            record.version = identity.version;
            record.extra_info = identity.extra_info;
            record.tunnel = identity.tunnel;
            record.cpe = identity.cpe;
            record.banner = identity.banner;
            record.method = Some(identity.method);
            record.confidence = Some(identity.confidence);
            if let Some(certificate) = identity.certificate {
                record.cert_subject = Some(certificate.subject);
                record.cert_issuer = Some(certificate.issuer);
                record.cert_names = Some(certificate.names.join(" "));
                record.cert_not_after = Some(certificate.not_after);
            }
        }
        if let Some(json_file) = &mut self.json_file {
            json_file.write(&record)?;
        }
        if let Some(records) = &mut self.records {
            self.progress.clear();
            records.write(&record)?;
        }
        Ok(())
    }
}

impl<W: Write> Identified for Printer<'_, W> {
    fn identified(
        &mut self,
        host: &Host,
        port: TargetPort,
        state: (PortState, Reason),
        rtt: Option<Duration>,
        identity: Option<Identity>,
    ) -> Result<()> {
        self.emit(host, port, state, rtt, identity)
    }
}

impl<W: Write, S> FollowUp<S> for Printer<'_, W> {}

impl<W: Write> Hinted for Printer<'_, W> {
    fn os_hint(&mut self, host: &Host, hint: Hint) -> Result<()> {
        if let Some(report) = &mut self.report {
            report.os_hint(host, hint.clone());
        }
        self.os_hints.insert(host.clone(), hint);
        Ok(())
    }
}

impl<W: Write> Observer for Printer<'_, W> {
    fn result(
        &mut self,
        host: &Host,
        port: TargetPort,
        state: PortState,
        reason: Reason,
        rtt: Option<Duration>,
    ) -> Result<()> {
        self.emit(host, port, (state, reason), rtt, None)
    }

    fn host_failed(&mut self, host: &Host, why: &str) {
        self.progress.clear();
        self.hosts_failed += 1;
        self.failed.count += 1;
        self.failed.addresses.insert(host.address);
        if let Some(report) = &mut self.report {
            report.host_failed(host, why);
        }
        warn(TOOL, format_args!("{}: {why}", host.describe()));
    }

    fn icmp_limited(&mut self, host: &Host, interval: Duration, remaining: Duration) {
        if !self.notices {
            return;
        }
        self.progress.clear();
        let per_second = 1.0 / interval.as_secs_f64();
        warn(
            TOOL,
            format_args!(
                "{}: ICMP errors rate limited to about {}/s; waiting for them (the rest of \
                 its UDP scan takes up to about {} s)",
                host.label,
                if (per_second - per_second.round()).abs() < 0.05 {
                    format!("{per_second:.0}")
                } else {
                    format!("{per_second:.1}")
                },
                remaining.as_secs()
            ),
        );
    }

    fn host_done(&mut self, host: &Host) -> Result<()> {
        self.os_hints.remove(host);
        if let Some(report) = &mut self.report {
            self.progress.clear();
            report.host_done(host)?;
        }
        Ok(())
    }

    fn progress(&mut self, now: Instant, done: u64, total: u64) -> Result<()> {
        let open = self.counts[PortState::Open.index()];
        self.progress
            .draw(now, "", done, total, "ports", || format!(", {open} open"));
        Ok(())
    }
}

/// The one-line summary: counts per state, elapsed time, probes sent. open|filtered is
/// counted only where some port was: a TCP scan never finds one, and its line stays short.
pub fn summary(counts: [u64; STATES], elapsed: Duration, sent: u64, interrupted: bool) -> String {
    let count = |state: PortState| counts[state.index()];
    let open_filtered = match count(PortState::OpenFiltered) {
        0 => String::new(),
        found => format!(", {found} open|filtered"),
    };
    format!(
        "{} open, {} closed, {} filtered{open_filtered}; {sent} probes in {:.2}s{}",
        count(PortState::Open),
        count(PortState::Closed),
        count(PortState::Filtered),
        elapsed.as_secs_f64(),
        if interrupted { " (interrupted)" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::contract::baseline::Change;

    fn host(text: &str) -> Host {
        Host {
            label: text.into(),
            address: text.parse().unwrap(),
            index: 0,
        }
    }

    #[test]
    fn sorted_output_is_in_host_proto_port_order_filtered_by_state_with_each_proto() {
        let mut out = Vec::new();
        let writer = RecordWriter::new(
            &mut out,
            Format::Text,
            FlushPolicy::Block,
            TextOptions::default(),
        );
        let records = Records::new(writer, [true, true, false, false], true);
        let mut printer = Printer::new(Some(records), None, None);
        let (tcp, udp) = (Proto::Tcp, Proto::Udp);
        let results = [
            ("::1", tcp, 22, PortState::Open),
            ("127.0.0.10", tcp, 80, PortState::Closed),
            ("127.0.0.2", udp, 53, PortState::Open),
            ("127.0.0.2", tcp, 443, PortState::Open),
            ("127.0.0.2", tcp, 22, PortState::Open),
            ("127.0.0.2", tcp, 23, PortState::Filtered),
            ("127.0.0.2", udp, 54, PortState::OpenFiltered),
        ];
        for (address, proto, port, state) in results {
            let port = TargetPort { proto, port };
            printer
                .result(&host(address), port, state, Reason::SynAck, None)
                .unwrap();
        }
        assert_eq!(printer.finish(false).unwrap(), ([4, 1, 1, 1], false));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "127.0.0.2 22/tcp open syn-ack\n127.0.0.2 443/tcp open syn-ack\n\
             127.0.0.2 53/udp open syn-ack\n127.0.0.10 80/tcp closed syn-ack\n\
             ::1 22/tcp open syn-ack\n"
        );
    }

    #[test]
    fn a_baseline_leaves_out_the_hosts_that_failed() {
        let record = |host: &str, address: &str, port: u16, state: PortState| PortRecord {
            host: host.into(),
            address: address.parse().unwrap(),
            port,
            proto: Proto::Tcp,
            state,
            ..PortRecord::default()
        };
        let earlier = vec![
            record("198.18.0.1", "198.18.0.1", 22, PortState::Open),
            record("gone.test", "198.18.0.9", 80, PortState::Open),
            record("198.18.0.2", "198.18.0.2", 22, PortState::Open),
        ];
        // The failed address's partial result is no addition either.
        let now = vec![
            record("198.18.0.1", "198.18.0.1", 25, PortState::Open),
            record("198.18.0.2", "198.18.0.2", 22, PortState::Closed),
        ];
        let comparison = Comparison::Baseline {
            path: "unwritten.json".into(),
            update: false,
            earlier,
        };
        let failed = FailedHosts {
            count: 2,
            addresses: ["198.18.0.1".parse().unwrap()].into(),
            names: ["gone.test".to_owned()].into(),
        };
        let changes = comparison.changes(&now, [true; STATES], &failed).unwrap();
        let changes: Vec<_> = changes
            .iter()
            .map(|c| (c.change, c.record.address.to_string(), c.record.port))
            .collect();
        assert_eq!(changes, [(Change::Changed, "198.18.0.2".to_owned(), 22)]);
    }

    #[test]
    fn the_summary_counts_states() {
        assert_eq!(
            summary([2, 998, 0, 0], Duration::from_millis(1234), 1000, false),
            "2 open, 998 closed, 0 filtered; 1000 probes in 1.23s"
        );
        assert_eq!(
            summary([1, 0, 2, 3], Duration::from_millis(1234), 9, true),
            "1 open, 0 closed, 2 filtered, 3 open|filtered; 9 probes in 1.23s (interrupted)"
        );
    }
}
