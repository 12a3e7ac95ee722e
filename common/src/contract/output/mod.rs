//! The writer every tool prints its records through, and the formats it can print them in:
//! one [`Formatter`] a format, each in a module of its own (text, NDJSON, CSV here; a tool
//! can bring its own, document-shaped ones too), behind one flush policy, so that the
//! formats stay identical across tools and a closed pipe or a full disk is handled the same
//! way everywhere. The formats are documented in docs/FORMAT.md.

mod csv;
mod json;
mod stamped;
mod text;

use std::io::{self, IsTerminal, Write};

use nix::sys::signalfd::SignalFd;
use serde::Serialize;

use crate::contract::error::{Error, Result};
use crate::contract::watch::pending;

pub use self::csv::Csv;
pub use self::json::Json;
pub use self::stamped::{Stamped, hostname};
pub(crate) use self::stamped::{fields, prefixed};
pub use self::text::{Text, TextOptions, TextRow, write_aligned};

/// The output formats every tool offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// One record per line, whitespace-separated, free text last.
    #[default]
    Text,
    /// NDJSON: one JSON object per line.
    Json,
    /// CSV with a header row.
    Csv,
}

/// The output flags of every tool, one clap group flattened into each tool's command line,
/// so that they are spelled, explained and combined the same way everywhere.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct OutputArgs {
    /// Print records as NDJSON, one JSON object a line.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,

    /// Print records as CSV, with a header row.
    #[arg(long)]
    pub csv: bool,

    /// Print a line of column names before text records.
    #[arg(long)]
    pub header: bool,

    /// Give every record the machine's name (the hostname field, first), so that the
    /// output of many machines merges.
    #[arg(long)]
    pub hostname_field: bool,
}

impl OutputArgs {
    /// The format the flags ask for: text unless --json or --csv.
    pub fn format(&self) -> Format {
        match (self.json, self.csv) {
            (true, _) => Format::Json,
            (_, true) => Format::Csv,
            _ => Format::Text,
        }
    }
}

/// When buffered output reaches the consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushPolicy {
    /// After every record: for a terminal, and for results that trickle in over time.
    PerRecord,
    /// When the buffer fills and at the end: for bulk output. A producer that is about to
    /// wait for more input calls [`RecordWriter::flush`] first.
    Block,
}

impl FlushPolicy {
    /// Per record on a terminal, block-buffered otherwise.
    pub fn for_stdout() -> Self {
        if io::stdout().is_terminal() {
            Self::PerRecord
        } else {
            Self::Block
        }
    }
}

/// A record every tool can print in all three formats.
pub trait Record: Serialize {
    /// The names of the text columns, the same as the JSON keys and CSV headers they show
    /// (a column may join two fields, as `port/proto` does).
    const TEXT_HEADER: &'static [&'static str];

    /// The column names of this record's text line: [`Record::TEXT_HEADER`], unless the
    /// run adds columns to every record (portscan -sV's service and version).
    fn text_header(&self) -> &'static [&'static str] {
        Self::TEXT_HEADER
    }

    /// Fills one text line, in the order of [`Record::text_header`].
    fn write_text(&self, row: &mut TextRow);

    /// Appends the record's detail line, if it has one: printed after its text line,
    /// indented by a tab, as `ss -i` prints a socket's internals. The text line stays whole,
    /// so a line that does not start with a tab is always one record.
    fn text_detail(&self, _line: &mut String) {}

    /// What the CSV format serializes: the record itself, unless a field needs a form of
    /// its own in a cell (bytes escaped as in text, a list joined into one cell).
    fn csv(&self) -> impl Serialize + '_ {
        self
    }
}

/// One output format: how records become bytes. A line-shaped format writes each record
/// as it comes; a document-shaped one (nmap's XML) also opens and closes the document.
pub trait Formatter {
    /// Writes what comes before the first record; called once, before it, or at the end
    /// when there was none.
    fn begin(&mut self, _out: &mut impl Write) -> Result<()> {
        Ok(())
    }

    /// Writes one record.
    fn record<R: Record>(&mut self, out: &mut impl Write, record: &R) -> Result<()>;

    /// Writes what ends the output (rows held for alignment, a closing tag); called once,
    /// after the last record.
    fn end(&mut self, _out: &mut impl Write) -> Result<()> {
        Ok(())
    }
}

/// The formats every tool offers, chosen at run time from the [`Format`] asked for.
#[expect(
    clippy::large_enum_variant,
    reason = "one formatter per run: its size does not matter"
)]
pub enum Builtin {
    Text(Text),
    Json(Json),
    Csv(Csv),
}

impl Builtin {
    pub fn new(format: Format, text_options: TextOptions) -> Self {
        match format {
            Format::Text => Self::Text(Text::new(text_options)),
            Format::Json => Self::Json(Json),
            Format::Csv => Self::Csv(Csv::default()),
        }
    }
}

impl Formatter for Builtin {
    fn record<R: Record>(&mut self, out: &mut impl Write, record: &R) -> Result<()> {
        match self {
            Self::Text(text) => text.record(out, record),
            Self::Json(json) => json.record(out, record),
            Self::Csv(csv) => csv.record(out, record),
        }
    }

    fn end(&mut self, out: &mut impl Write) -> Result<()> {
        match self {
            Self::Text(text) => text.end(out),
            Self::Json(json) => json.end(out),
            Self::Csv(csv) => csv.end(out),
        }
    }
}

/// Writes records through a [`Formatter`], flushing as the policy says.
pub struct RecordWriter<W: Write, F: Formatter = Builtin> {
    out: W,
    formatter: F,
    policy: FlushPolicy,
    begun: bool,
    /// `--hostname-field`: the machine's name, given to every record.
    hostname: Option<String>,
    /// SIGINT and SIGTERM, held back: looked at before each record ([`RecordWriter::stop_on`]).
    interrupts: Option<SignalFd>,
}

impl<W: Write> RecordWriter<W> {
    /// A writer in one of the formats every tool offers.
    pub fn new(out: W, format: Format, policy: FlushPolicy, text_options: TextOptions) -> Self {
        Self::with_formatter(out, Builtin::new(format, text_options), policy)
    }
}

impl<W: Write, F: Formatter> RecordWriter<W, F> {
    /// A writer in a format of the caller's own.
    pub fn with_formatter(out: W, formatter: F, policy: FlushPolicy) -> Self {
        Self {
            out,
            formatter,
            policy,
            begun: false,
            hostname: None,
            interrupts: None,
        }
    }

    /// Ends the run between two records once SIGINT or SIGTERM is pending on `signals`
    /// ([`crate::contract::watch::interrupts`]): what was written before is flushed, and
    /// [`RecordWriter::write`] fails with [`Error::Interrupted`]. For a run with an end of
    /// its own (a listing); a watch, which has none, ends between listings instead.
    #[must_use]
    pub fn stop_on(self, signals: SignalFd) -> Self {
        Self {
            interrupts: Some(signals),
            ..self
        }
    }

    /// Gives every record the machine's name, if `wanted` (`--hostname-field`).
    #[must_use]
    pub fn with_hostname(self, wanted: bool) -> Self {
        Self {
            hostname: wanted.then(hostname),
            ..self
        }
    }

    pub fn write<R: Record>(&mut self, record: &R) -> Result<()> {
        if self.interrupts.as_ref().is_some_and(pending) {
            self.flush()?;
            return Err(Error::Interrupted);
        }
        self.begin()?;
        match &self.hostname {
            Some(hostname) => {
                let stamped = Stamped { hostname, record };
                self.formatter.record(&mut self.out, &stamped)?;
            }
            None => self.formatter.record(&mut self.out, record)?,
        }
        if self.policy == FlushPolicy::PerRecord {
            self.flush()?;
        }
        Ok(())
    }

    fn begin(&mut self) -> Result<()> {
        if !self.begun {
            self.begun = true;
            self.formatter.begin(&mut self.out)?;
        }
        Ok(())
    }

    /// The underlying writer, for a filter that passes its input lines through between
    /// records. Not for aligned text, whose rows are held until [`RecordWriter::finish`].
    pub fn raw(&mut self) -> &mut W {
        &mut self.out
    }

    /// Hands what is buffered to the consumer: call before waiting for more input.
    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(Error::output)
    }

    /// Ends the output and flushes; the final write's error is the run's error, so a full
    /// disk is reported rather than lost in a destructor.
    pub fn finish(mut self) -> Result<()> {
        self.begin()?;
        self.formatter.end(&mut self.out)?;
        self.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;

    #[derive(Serialize)]
    struct Sample {
        name: String,
        port: u16,
        note: Option<String>,
        comment: String,
    }

    impl Record for Sample {
        const TEXT_HEADER: &'static [&'static str] = &["name", "port", "note", "comment"];
        fn write_text(&self, row: &mut TextRow) {
            row.field(&self.name)
                .field(self.port)
                .optional(self.note.as_ref())
                .free_text(self.comment.as_bytes());
        }
    }

    fn render(format: Format, options: TextOptions, records: &[Sample]) -> String {
        let mut out = Vec::new();
        let mut writer = RecordWriter::new(&mut out, format, FlushPolicy::Block, options);
        for record in records {
            writer.write(record).unwrap();
        }
        writer.finish().unwrap();
        String::from_utf8(out).unwrap()
    }

    fn samples() -> Vec<Sample> {
        vec![
            Sample {
                name: "ssh".into(),
                port: 22,
                note: None,
                comment: "secure shell".into(),
            },
            Sample {
                name: "my app".into(),
                port: 8080,
                note: Some("x".into()),
                comment: "line\nbreak".into(),
            },
        ]
    }

    #[test]
    fn text_is_one_escaped_line_per_record() {
        let text = render(Format::Text, TextOptions::default(), &samples());
        assert_eq!(
            text,
            "ssh 22 - secure shell\nmy\\x20app 8080 x line\\nbreak\n"
        );
    }

    #[test]
    fn text_header_and_alignment() {
        let options = TextOptions {
            header: true,
            align: true,
        };
        let text = render(Format::Text, options, &samples());
        assert_eq!(
            text,
            "name      port note comment\n\
             ssh       22   -    secure shell\n\
             my\\x20app 8080 x    line\\nbreak\n"
        );
    }

    #[test]
    fn json_is_one_object_per_line_with_the_same_names() {
        let text = render(Format::Json, TextOptions::default(), &samples());
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["comment"], "line\nbreak");
        assert_eq!(lines[0]["note"], serde_json::Value::Null);
        let keys: Vec<&String> = lines[0].as_object().unwrap().keys().collect();
        assert_eq!(keys, Sample::TEXT_HEADER);
    }

    #[test]
    fn csv_has_the_same_header() {
        let text = render(Format::Csv, TextOptions::default(), &samples());
        let mut reader = ::csv::Reader::from_reader(text.as_bytes());
        assert_eq!(reader.headers().unwrap(), Sample::TEXT_HEADER.to_vec());
        let rows: Vec<::csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(&rows[1][3], "line\nbreak");
    }

    /// A document-shaped format of a tool's own: its opening and closing come once each,
    /// around the records, and even with no record at all.
    #[test]
    fn a_formatter_of_the_callers_own_opens_and_closes_its_document() {
        struct Listing;
        impl Formatter for Listing {
            fn begin(&mut self, out: &mut impl Write) -> Result<()> {
                out.write_all(b"<list>\n").map_err(Error::output)
            }
            fn record<R: Record>(&mut self, out: &mut impl Write, record: &R) -> Result<()> {
                let mut row = TextRow::default();
                record.write_text(&mut row);
                writeln!(
                    out,
                    "<item>{}</item>",
                    row.fields().next().unwrap_or_default()
                )
                .map_err(Error::output)
            }
            fn end(&mut self, out: &mut impl Write) -> Result<()> {
                out.write_all(b"</list>\n").map_err(Error::output)
            }
        }
        for (records, expected) in [
            (
                samples(),
                "<list>\n<item>ssh</item>\n<item>my\\x20app</item>\n</list>\n",
            ),
            (Vec::new(), "<list>\n</list>\n"),
        ] {
            let mut out = Vec::new();
            let mut writer =
                RecordWriter::with_formatter(&mut out, Listing, FlushPolicy::PerRecord);
            for record in &records {
                writer.write(record).unwrap();
            }
            writer.finish().unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), expected);
        }
    }

    #[test]
    fn a_full_disk_is_an_error_and_a_closed_pipe_is_recognised() {
        struct Failing(io::ErrorKind);
        impl Write for Failing {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::from(self.0))
            }
            fn flush(&mut self) -> io::Result<()> {
                Err(io::Error::from(self.0))
            }
        }
        for format in [Format::Text, Format::Json, Format::Csv] {
            let mut writer = RecordWriter::new(
                Failing(io::ErrorKind::BrokenPipe),
                format,
                FlushPolicy::PerRecord,
                TextOptions::default(),
            );
            let error = writer.write(&samples()[0]).unwrap_err();
            assert!(error.is_broken_pipe(), "{format:?}: {error}");
            let mut writer = RecordWriter::new(
                Failing(io::ErrorKind::StorageFull),
                format,
                FlushPolicy::Block,
                TextOptions::default(),
            );
            let _ = writer.write(&samples()[0]);
            let error = writer.finish().unwrap_err();
            assert_eq!(error.exit_code(), 1, "{format:?}");
            assert!(!error.is_broken_pipe());
        }
    }
}
