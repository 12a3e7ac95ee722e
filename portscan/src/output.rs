//! The output stage: results become PortRecords the moment they are final (or, with
//! `--sort`, at the end in a stable order), filtered by state; or, for a person at a
//! terminal, a report per host (`report`). The progress line and the summary go to stderr,
//! and only where a person reads them, so cron stays quiet.

mod progress;
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
use crate::targets::Host;

pub use progress::ProgressLine;
pub use report::{Listed, Report};

pub struct Printer<W: Write> {
    sink: Sink<W>,
    /// Ports found in each state, indexed by [`PortState::index`].
    counts: [u64; STATES],
    hosts_failed: u64,
    progress: ProgressLine,
    /// Whether notices (a host's ICMP ration) go to stderr: on a terminal, or with -v.
    notices: bool,
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
            progress: ProgressLine::on_terminal(),
            notices: io::stderr().is_terminal(),
        }
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
        self.progress.clear();
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

/// IPv4 before IPv6, each in numeric order.
fn sort_key(address: IpAddr) -> (u8, u128) {
    match address {
        IpAddr::V4(v4) => (4, u128::from(u32::from(v4))),
        IpAddr::V6(v6) => (6, u128::from(v6)),
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
        let index = state.index();
        self.counts[index] += 1;
        let (writer, held) = match &mut self.sink {
            Sink::Report(report) => {
                report.result(host, port, state, reason, rtt);
                return Ok(());
            }
            Sink::Records { show, .. } if !show[index] => return Ok(()),
            Sink::Records { writer, held, .. } => (writer, held),
        };
        let record = PortRecord {
            host: host.label.clone(),
            address: host.address,
            port: port.port,
            proto: port.proto,
            state,
            reason,
            // Microsecond resolution: finer is noise from the loop itself.
            rtt_ms: rtt.map(|rtt| (rtt.as_secs_f64() * 1e6).round() / 1e3),
            time: rfc3339(SystemTime::now()),
        };
        if let Some(held) = held {
            held.push(record);
            return Ok(());
        }
        self.progress.clear();
        writer.write(&record)
    }

    fn host_failed(&mut self, host: &Host, why: &str) {
        self.progress.clear();
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
        if let Sink::Report(report) = &mut self.sink {
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
}
