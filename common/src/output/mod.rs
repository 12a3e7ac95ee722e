//! The writers every tool prints its records through: text, NDJSON and CSV, with one flush
//! policy, so that the formats stay identical across tools and a closed pipe or a full disk
//! is handled the same way everywhere. The formats are documented in docs/FORMAT.md.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::io::{self, IsTerminal, Write};
use std::rc::Rc;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::text;

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

    /// Fills one text line, in the order of [`Record::TEXT_HEADER`].
    fn write_text(&self, row: &mut TextRow);
}

/// One line of the text format being built; fields are escaped as they are added.
#[derive(Debug, Default)]
pub struct TextRow {
    line: String,
    ends: Vec<usize>,
    scratch: String,
}

impl TextRow {
    /// Adds a whitespace-free field; an empty value shows as `-`.
    pub fn field(&mut self, value: impl fmt::Display) -> &mut Self {
        self.scratch.clear();
        let _ = write!(self.scratch, "{value}");
        if self.scratch.is_empty() {
            self.line.push_str(text::ABSENT);
        } else if text::is_plain_token(&self.scratch) {
            self.line.push_str(&self.scratch);
        } else {
            text::escape_token(self.scratch.as_bytes(), &mut self.line);
        }
        self.end_field()
    }

    /// Adds a field that may have no value (shown as `-`).
    pub fn optional(&mut self, value: Option<impl fmt::Display>) -> &mut Self {
        if let Some(value) = value {
            self.field(value)
        } else {
            self.line.push_str(text::ABSENT);
            self.end_field()
        }
    }

    /// Adds a field from raw bytes, which need not be UTF-8 (a process name, a path).
    pub fn bytes(&mut self, value: &[u8]) -> &mut Self {
        if value.is_empty() {
            self.line.push_str(text::ABSENT);
        } else {
            text::escape_token(value, &mut self.line);
        }
        self.end_field()
    }

    /// Adds the free text that ends the line (a command line, a description): spaces stay.
    pub fn free_text(&mut self, value: &[u8]) -> &mut Self {
        text::escape_free_text(value, &mut self.line);
        self.end_field()
    }

    /// Adds free text made of `lead` (escaped as free text: a tree drawing keeps its spaces)
    /// and then `words`, each escaped as a token and joined by single spaces, so that an
    /// argument vector keeps its boundaries (`sh -c echo\x20hi`).
    pub fn words<'a>(
        &mut self,
        lead: &str,
        words: impl IntoIterator<Item = &'a [u8]>,
    ) -> &mut Self {
        text::escape_free_text(lead.as_bytes(), &mut self.line);
        for (i, word) in words.into_iter().enumerate() {
            if i > 0 {
                self.line.push(' ');
            }
            text::escape_token(word, &mut self.line);
        }
        self.end_field()
    }

    fn end_field(&mut self) -> &mut Self {
        self.ends.push(self.line.len());
        self
    }

    fn fields(&self) -> impl Iterator<Item = &str> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(start, end)| &self.line[start..end])
    }

    fn clear(&mut self) {
        self.line.clear();
        self.ends.clear();
    }
}

/// Options that shape the text format.
#[derive(Debug, Clone, Copy, Default)]
pub struct TextOptions {
    /// Print the column names first.
    pub header: bool,
    /// Pad columns to a common width. Needs every row before the first is printed, so it
    /// suits snapshots on a terminal, never streams.
    pub align: bool,
}

/// Writes records of one type in the chosen format.
pub struct RecordWriter<W: Write> {
    sink: Sink<W>,
    policy: FlushPolicy,
    row: TextRow,
}

#[expect(
    clippy::large_enum_variant,
    reason = "one writer per run: its size does not matter"
)]
enum Sink<W: Write> {
    Text {
        out: W,
        options: TextOptions,
        header_pending: bool,
        held_rows: Vec<Vec<String>>,
    },
    Json {
        out: W,
    },
    Csv {
        out: W,
        /// csv's writer owns what it writes to, so it encodes into a buffer shared with us,
        /// which is then handed on to `out`; this keeps `out` reachable for [`RecordWriter::raw`].
        encoder: csv::Writer<SharedBuffer>,
        encoded: SharedBuffer,
    },
}

/// A byte buffer that csv's writer can own while we still read it.
#[derive(Clone, Default)]
struct SharedBuffer(Rc<RefCell<Vec<u8>>>);

impl Write for SharedBuffer {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write> RecordWriter<W> {
    pub fn new(out: W, format: Format, policy: FlushPolicy, text_options: TextOptions) -> Self {
        let sink = match format {
            Format::Text => Sink::Text {
                out,
                options: text_options,
                header_pending: text_options.header,
                held_rows: Vec::new(),
            },
            Format::Json => Sink::Json { out },
            Format::Csv => {
                let encoded = SharedBuffer::default();
                Sink::Csv {
                    out,
                    encoder: csv::Writer::from_writer(encoded.clone()),
                    encoded,
                }
            }
        };
        Self {
            sink,
            policy,
            row: TextRow::default(),
        }
    }

    pub fn write<R: Record>(&mut self, record: &R) -> Result<()> {
        match &mut self.sink {
            Sink::Text {
                out,
                options,
                header_pending,
                held_rows,
            } => {
                self.row.clear();
                record.write_text(&mut self.row);
                if options.align {
                    if *header_pending {
                        held_rows.push(R::TEXT_HEADER.iter().map(|s| (*s).to_owned()).collect());
                        *header_pending = false;
                    }
                    held_rows.push(self.row.fields().map(str::to_owned).collect());
                    return Ok(());
                }
                if *header_pending {
                    writeln!(out, "{}", R::TEXT_HEADER.join(" ")).map_err(Error::output)?;
                    *header_pending = false;
                }
                let line = self.row.line.as_bytes();
                // Fields were appended back to back; separate them with single spaces.
                let mut start = 0;
                for (i, &end) in self.row.ends.iter().enumerate() {
                    if i > 0 {
                        out.write_all(b" ").map_err(Error::output)?;
                    }
                    out.write_all(&line[start..end]).map_err(Error::output)?;
                    start = end;
                }
                out.write_all(b"\n").map_err(Error::output)?;
            }
            Sink::Json { out } => {
                serde_json::to_writer(&mut *out, record)
                    .map_err(|e| Error::output(io::Error::from(e)))?;
                out.write_all(b"\n").map_err(Error::output)?;
            }
            Sink::Csv {
                out,
                encoder,
                encoded,
            } => {
                encoder.serialize(record).map_err(csv_error)?;
                encoder.flush().map_err(Error::output)?;
                let mut bytes = encoded.0.borrow_mut();
                out.write_all(&bytes).map_err(Error::output)?;
                bytes.clear();
            }
        }
        if self.policy == FlushPolicy::PerRecord {
            self.flush()?;
        }
        Ok(())
    }

    /// The underlying writer, for a filter that passes its input lines through between
    /// records. Not for aligned text, whose rows are held until [`RecordWriter::finish`].
    pub fn raw(&mut self) -> &mut W {
        match &mut self.sink {
            Sink::Text { out, .. } | Sink::Json { out } | Sink::Csv { out, .. } => out,
        }
    }

    /// Hands what is buffered to the consumer: call before waiting for more input.
    pub fn flush(&mut self) -> Result<()> {
        match &mut self.sink {
            Sink::Text { out, .. } | Sink::Json { out } | Sink::Csv { out, .. } => out.flush(),
        }
        .map_err(Error::output)
    }

    /// Prints held rows and flushes; the final write's error is the run's error, so a full
    /// disk is reported rather than lost in a destructor.
    pub fn finish(mut self) -> Result<()> {
        if let Sink::Text { out, held_rows, .. } = &mut self.sink {
            write_aligned(out, held_rows).map_err(Error::output)?;
        }
        self.flush()
    }
}

/// Pads every column but the last to its widest cell, as ps and ss do on a terminal.
fn write_aligned(out: &mut impl Write, rows: &[Vec<String>]) -> io::Result<()> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; columns];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    for row in rows {
        let last = row.len().saturating_sub(1);
        for (i, cell) in row.iter().enumerate() {
            if i == last {
                writeln!(out, "{cell}")?;
            } else {
                write!(out, "{cell:<width$} ", width = widths[i])?;
            }
        }
    }
    Ok(())
}

fn csv_error(error: csv::Error) -> Error {
    match error.into_kind() {
        csv::ErrorKind::Io(error) => Error::output(error),
        other => Error::failed(format!("writing output: CSV: {other:?}")),
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
    fn words_keep_argument_boundaries() {
        let mut row = TextRow::default();
        row.field(1)
            .words("├─ ", [&b"sh"[..], b"-c", b"echo hi\n", b"\xff"]);
        assert_eq!(row.line, "1├─ sh -c echo\\x20hi\\n \\xff");
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
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        assert_eq!(reader.headers().unwrap(), Sample::TEXT_HEADER.to_vec());
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(&rows[1][3], "line\nbreak");
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
