//! The output stage: results become PortRecords the moment they are final (or, with
//! `--sort`, at the end in a stable order), filtered by state; or, for a person at a
//! terminal, a report per host (`report`). The progress line and the summary go to stderr,
//! and only where a person reads them, so cron stays quiet.

mod report;

use std::io::{self, IsTerminal, Write};
use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime};

use common::contract::error::{Result, warn};
use common::contract::output::RecordWriter;
use common::contract::record::{PortRecord, PortState, Reason};
use common::contract::timestamp::rfc3339;

use crate::TOOL;
use crate::engine::{Observer, TargetPort};
use crate::service::{Identified, Identity};
use crate::targets::Host;

pub use report::{Listed, Report};

/// How often the progress line is redrawn.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

pub struct Printer<W: Write> {
    sink: Sink<W>,
    /// Ports found in each state, indexed by [`PortState::index`].
    counts: [u64; STATES],
    hosts_failed: u64,
    /// Whether stderr is a terminal, where the progress line is drawn.
    progress: bool,
    /// Whether notices (a host's ICMP ration) go to stderr: on a terminal, or with -v.
    notices: bool,
    progress_shown: bool,
    /// A -sV run: its records carry the -sV columns in CSV.
    version_columns: bool,
    /// When the progress line was first asked for: the start of the pace it shows.
    first_progress: Option<Instant>,
    last_progress: Option<Instant>,
}

/// Where results go: records, or the report.
enum Sink<W: Write> {
    Records {
        writer: RecordWriter<W>,
        /// Whether each state is shown, indexed by [`PortState::index`].
        show: [bool; STATES],
        /// With `--sort`, the records held until the end.
        held: Option<Vec<PortRecord>>,
    },
    Report(Report<W>),
}

/// How many states a port can be in.
const STATES: usize = PortState::ALL.len();

impl<W: Write> Printer<W> {
    /// A printer of records.
    pub fn new(writer: RecordWriter<W>, show: [bool; STATES], sort: bool) -> Self {
        Self::with_sink(Sink::Records {
            writer,
            show,
            held: sort.then(Vec::new),
        })
    }

    /// A printer of the report.
    pub fn report(report: Report<W>) -> Self {
        Self::with_sink(Sink::Report(report))
    }

    fn with_sink(sink: Sink<W>) -> Self {
        Self {
            sink,
            counts: [0; STATES],
            hosts_failed: 0,
            progress: io::stderr().is_terminal(),
            notices: io::stderr().is_terminal(),
            progress_shown: false,
            version_columns: false,
            first_progress: None,
            last_progress: None,
        }
    }

    /// Gives every record the -sV columns in CSV (a -sV run).
    pub fn version_columns(&mut self) {
        self.version_columns = true;
    }

    /// Shows notices even where stderr is no terminal (-v).
    pub fn show_notices(&mut self) {
        self.notices = true;
    }

    /// Counts the addresses that host discovery left out of the port scan, `down` and
    /// `unreachable`, for the report's closing line.
    pub fn unscanned(&mut self, down: u64, unreachable: u64) {
        if let Sink::Report(report) = &mut self.sink {
            report.unscanned(down, unreachable);
        }
    }

    pub fn hosts_failed(&self) -> u64 {
        self.hosts_failed
    }

    /// Prints what is held (sorted records; the report's last hosts and its closing line,
    /// which says whether the scan was `interrupted`) and flushes; the summary line is the
    /// caller's to ask for.
    pub fn finish(mut self, interrupted: bool) -> Result<[u64; STATES]> {
        clear_progress(&mut self.progress_shown);
        match self.sink {
            Sink::Records {
                mut writer, held, ..
            } => {
                if let Some(mut held) = held {
                    held.sort_by(|a, b| {
                        sort_key(a.address)
                            .cmp(&sort_key(b.address))
                            .then_with(|| a.host.cmp(&b.host))
                            .then(a.proto.cmp(&b.proto))
                            .then(a.port.cmp(&b.port))
                    });
                    for record in &held {
                        writer.write(record)?;
                    }
                }
                writer.finish()?;
            }
            Sink::Report(report) => report.finish(interrupted)?,
        }
        Ok(self.counts)
    }
}

/// Erases the progress line, if one is `shown`, before anything else is printed.
fn clear_progress(shown: &mut bool) {
    if *shown {
        let _ = io::stderr().write_all(b"\r\x1b[K");
        *shown = false;
    }
}

/// IPv4 before IPv6, each in numeric order.
fn sort_key(address: IpAddr) -> (u8, u128) {
    match address {
        IpAddr::V4(v4) => (4, u128::from(u32::from(v4))),
        IpAddr::V6(v6) => (6, u128::from(v6)),
    }
}

impl<W: Write> Printer<W> {
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
        let index = state.index();
        self.counts[index] += 1;
        let (writer, held) = match &mut self.sink {
            Sink::Report(report) => {
                report.result(host, port, state, reason, rtt, identity);
                return Ok(());
            }
            Sink::Records { show, .. } if !show[index] => return Ok(()),
            Sink::Records { writer, held, .. } => (writer, held),
        };
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
            ..PortRecord::default()
        };
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
        if let Some(held) = held {
            held.push(record);
            return Ok(());
        }
        clear_progress(&mut self.progress_shown);
        writer.write(&record)
    }
}

impl<W: Write> Identified for Printer<W> {
    fn identified(
        &mut self,
        host: &Host,
        port: TargetPort,
        rtt: Option<Duration>,
        identity: Option<Identity>,
    ) -> Result<()> {
        let open = (PortState::Open, Reason::SynAck);
        self.emit(host, port, open, rtt, identity)
    }
}

impl<W: Write> Observer for Printer<W> {
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
        clear_progress(&mut self.progress_shown);
        self.hosts_failed += 1;
        if let Sink::Report(report) = &mut self.sink {
            report.host_failed(host);
        }
        warn(TOOL, format_args!("{}: {why}", host.describe()));
    }

    fn icmp_limited(&mut self, host: &Host, interval: Duration, remaining: Duration) {
        if !self.notices {
            return;
        }
        clear_progress(&mut self.progress_shown);
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
        if let Sink::Report(report) = &mut self.sink {
            clear_progress(&mut self.progress_shown);
            report.host_done(host)?;
        }
        Ok(())
    }

    fn progress(&mut self, now: Instant, done: u64, total: u64) -> Result<()> {
        let first = *self.first_progress.get_or_insert(now);
        if !self.progress
            || self
                .last_progress
                .is_some_and(|last| now.saturating_duration_since(last) < PROGRESS_EVERY)
        {
            return Ok(());
        }
        self.last_progress = Some(now);
        if done > 0 {
            #[expect(clippy::cast_precision_loss, reason = "a percentage to one decimal")]
            let percent = done as f64 * 100.0 / total.max(1) as f64;
            let pace = match Pace::of(done, total, now.saturating_duration_since(first)) {
                Some(pace) => format!(", {pace}"),
                None => String::new(),
            };
            let _ = write!(
                io::stderr(),
                "\r\x1b[K{TOOL}: {done}/{total} ports ({percent:.1}%), {} open{pace}",
                self.counts[PortState::Open.index()]
            );
            self.progress_shown = true;
        }
        Ok(())
    }
}

/// How fast the scan goes and how long the rest will take at that pace: ports settled a
/// second over the whole scan so far (steadier than the last second's, which a burst of
/// retries or a slow host's timeouts would swing), as nmap's estimate is.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Pace {
    per_second: f64,
    left: Duration,
}

impl Pace {
    /// `None` before there is a pace to tell: nothing settled, or no time gone by.
    fn of(done: u64, total: u64, elapsed: Duration) -> Option<Self> {
        if done == 0 || elapsed.is_zero() {
            return None;
        }
        #[expect(clippy::cast_precision_loss, reason = "a rate to show, to 3 digits")]
        let per_second = done as f64 / elapsed.as_secs_f64();
        #[expect(clippy::cast_precision_loss, reason = "an estimate, to the second")]
        let left = total.saturating_sub(done) as f64 / per_second;
        Some(Self {
            per_second,
            left: Duration::try_from_secs_f64(left).unwrap_or(Duration::MAX),
        })
    }
}

impl std::fmt::Display for Pace {
    /// "5120 ports/s, 12s left"; "0.8 ports/s, 2m05s left"; "1h02m left".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.per_second < 10.0 {
            write!(f, "{:.1} ports/s, ", self.per_second)?;
        } else {
            write!(f, "{:.0} ports/s, ", self.per_second)?;
        }
        let seconds = self.left.as_secs_f64().round();
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "a non-negative count of seconds, saturating"
        )]
        let seconds = seconds as u64;
        let (hours, minutes, seconds) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
        match (hours, minutes) {
            (0, 0) => write!(f, "{seconds}s left"),
            (0, _) => write!(f, "{minutes}m{seconds:02}s left"),
            _ => write!(f, "{hours}h{minutes:02}m left"),
        }
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
    use common::contract::output::{FlushPolicy, Format, TextOptions};
    use common::services::ports::Proto;

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
        let mut printer = Printer::new(writer, [true, true, false, false], true);
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
        assert_eq!(printer.finish(false).unwrap(), [4, 1, 1, 1]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "127.0.0.2 22/tcp open syn-ack\n127.0.0.2 443/tcp open syn-ack\n\
             127.0.0.2 53/udp open syn-ack\n127.0.0.10 80/tcp closed syn-ack\n\
             ::1 22/tcp open syn-ack\n"
        );
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

    #[test]
    fn the_pace_is_ports_a_second_so_far_and_the_rest_at_that_pace() {
        let second = Duration::from_secs(1);
        assert_eq!(Pace::of(0, 1000, second), None, "nothing settled yet");
        assert_eq!(Pace::of(10, 1000, Duration::ZERO), None, "no time gone by");
        let pace = Pace::of(250, 1000, 2 * second).unwrap();
        assert!((pace.per_second - 125.0).abs() < 1e-9);
        assert_eq!(pace.left, 6 * second);
        assert_eq!(pace.to_string(), "125 ports/s, 6s left");
        assert_eq!(
            Pace::of(1000, 1000, 3 * second).unwrap().left,
            Duration::ZERO,
            "done"
        );
        for (done, total, elapsed, text) in [
            (4, 100, 5, "0.8 ports/s, 2m00s left"),
            (3, 100, 2, "1.5 ports/s, 1m05s left"),
            (10, 65_535, 1, "10 ports/s, 1h49m left"),
            (65_000, 65_535, 13, "5000 ports/s, 0s left"),
            (64_000, 65_535, 4, "16000 ports/s, 0s left"),
            (60_000, 65_535, 6, "10000 ports/s, 1s left"),
        ] {
            let pace = Pace::of(done, total, elapsed * second).unwrap();
            assert_eq!(pace.to_string(), text, "{done}/{total} in {elapsed}s");
        }
    }
}
