//! With -sn, what host discovery finds goes to the output files too: each host's status
//! into the report's documents (-oN, -oX, -oG), its host record into -oJ, beside the
//! records stdout gets from [`Found`](crate::discovery::Found). With `--sort` they are held
//! and written at the end in address order, the order stdout gets them in.

use std::io::Write;
use std::time::Duration;

use common::contract::error::Result;
use common::contract::output::{FlushPolicy, Format, RecordWriter, TextOptions};
use common::contract::record::{HostRecord, HostState, Reason};

use super::files::{self, Dest};
use super::report::{HostStatus, Report};
use super::sort_key;
use crate::discovery::{Found, Listener, host_record};
use crate::targets::Host;

/// A discovery listener that tells `inner` first, then the files, the same record to all.
pub struct HostFiles<'a, 'l, W: Write> {
    inner: &'l mut Found<W>,
    report: Option<Report<'a>>,
    /// -oJ's writer, and its label for errors.
    json: Option<(RecordWriter<Dest<'a>>, Option<String>)>,
    /// Whether down hosts are written too (--all), as records are.
    all: bool,
    /// With `--sort`: the hosts found, held until the end.
    held: Option<Vec<(Host, HostStatus, HostRecord)>>,
}

impl<'a, 'l, W: Write> HostFiles<'a, 'l, W> {
    pub fn new(
        inner: &'l mut Found<W>,
        report: Option<Report<'a>>,
        json: Option<Dest<'a>>,
        all: bool,
        sort: bool,
    ) -> Self {
        let json = json.map(|dest| {
            let label = dest.label().map(str::to_owned);
            let writer = RecordWriter::new(
                dest,
                Format::Json,
                FlushPolicy::PerRecord,
                TextOptions::default(),
            );
            (writer, label)
        });
        Self {
            inner,
            report,
            json,
            all,
            held: sort.then(Vec::new),
        }
    }

    /// Writes what is held (`--sort`), then ends every file, the XML closed even if
    /// `interrupted`.
    pub fn finish(mut self, interrupted: bool) -> Result<()> {
        if let Some(mut held) = self.held.take() {
            held.sort_by(|(a, ..), (b, ..)| {
                sort_key(a.address)
                    .cmp(&sort_key(b.address))
                    .then_with(|| a.label.cmp(&b.label))
                    .then_with(|| a.index.cmp(&b.index))
            });
            for (host, status, record) in held {
                self.write(&host, status, &record)?;
            }
        }
        let json = self.json.map_or(Ok(()), |(writer, label)| {
            writer
                .finish()
                .map_err(|e| files::relabel(label.as_deref(), e))
        });
        let report = self
            .report
            .map_or(Ok(()), |report| report.finish(interrupted));
        json.and(report)
    }
}

impl<W: Write> HostFiles<'_, '_, W> {
    /// Writes one host into the documents and -oJ, if it is shown (down hosts are, with
    /// --all, as records are).
    fn write(&mut self, host: &Host, status: HostStatus, record: &HostRecord) -> Result<()> {
        let shown = status.state == HostState::Up || self.all;
        if let Some(report) = &mut self.report {
            report.status(host, status, shown)?;
        }
        if let Some((writer, label)) = &mut self.json
            && shown
        {
            writer
                .write(record)
                .map_err(|e| files::relabel(label.as_deref(), e))?;
        }
        Ok(())
    }
}

impl<W: Write> Listener for HostFiles<'_, '_, W> {
    fn host(
        &mut self,
        host: &Host,
        state: HostState,
        reason: Reason,
        rtt: Option<Duration>,
    ) -> Result<()> {
        let record = host_record(host, state, reason, rtt);
        self.inner.take(host, &record)?;
        let status = HostStatus { state, reason, rtt };
        match &mut self.held {
            Some(held) => {
                held.push((host.clone(), status, record));
                Ok(())
            }
            None => self.write(host, status, &record),
        }
    }

    fn host_failed(&mut self, host: &Host, why: &str) {
        self.inner.host_failed(host, why);
        if let Some(report) = &mut self.report {
            report.unscanned(0, 1);
        }
    }

    fn phase(&mut self, what: &'static str, hosts: u64) {
        self.inner.phase(what, hosts);
    }

    fn deferred(&mut self) {
        self.inner.deferred();
    }
}
