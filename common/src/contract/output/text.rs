//! The text format: one record a line, fields separated by single spaces and escaped so
//! that a line is always one record; optionally a header line, and columns aligned when a
//! whole snapshot is printed on a terminal.

use std::fmt::{self, Write as _};
use std::io::{self, Write};

use super::{Formatter, Record};
use crate::contract::error::{Error, Result};
use crate::contract::text;

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

    /// The fields added so far, escaped.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
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

/// The text formatter.
#[derive(Debug, Default)]
pub struct Text {
    options: TextOptions,
    header_pending: bool,
    /// With `align`: every row, until the widths are known at the end.
    held_rows: Vec<Vec<String>>,
    /// With `align`: the detail lines, each with the index of the row it follows.
    held_details: Vec<(usize, String)>,
    row: TextRow,
    detail: String,
}

impl Text {
    pub fn new(options: TextOptions) -> Self {
        Self {
            options,
            header_pending: options.header,
            ..Self::default()
        }
    }
}

impl Formatter for Text {
    fn record<R: Record>(&mut self, out: &mut impl Write, record: &R) -> Result<()> {
        self.row.clear();
        record.write_text(&mut self.row);
        self.detail.clear();
        record.text_detail(&mut self.detail);
        if self.options.align {
            if self.header_pending {
                self.held_rows.push(
                    record
                        .text_header()
                        .iter()
                        .map(|s| (*s).to_owned())
                        .collect(),
                );
                self.header_pending = false;
            }
            self.held_rows
                .push(self.row.fields().map(str::to_owned).collect());
            if !self.detail.is_empty() {
                self.held_details
                    .push((self.held_rows.len() - 1, self.detail.clone()));
            }
            return Ok(());
        }
        if self.header_pending {
            writeln!(out, "{}", record.text_header().join(" ")).map_err(Error::output)?;
            self.header_pending = false;
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
        if !self.detail.is_empty() {
            writeln!(out, "\t{}", self.detail).map_err(Error::output)?;
        }
        Ok(())
    }

    fn end(&mut self, out: &mut impl Write) -> Result<()> {
        write_aligned_with_details(out, &self.held_rows, &self.held_details).map_err(Error::output)
    }
}

/// Pads every column but the last to its widest cell, as ps and ss do on a terminal (and
/// nmap's port table, which portscan's report draws with it).
pub fn write_aligned(out: &mut impl Write, rows: &[Vec<String>]) -> io::Result<()> {
    write_aligned_with_details(out, rows, &[])
}

/// [`write_aligned`], with each detail line after the row of its index, tab-indented.
fn write_aligned_with_details(
    out: &mut impl Write,
    rows: &[Vec<String>],
    details: &[(usize, String)],
) -> io::Result<()> {
    let mut details = details.iter().peekable();
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; columns];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    for (index, row) in rows.iter().enumerate() {
        let last = row.len().saturating_sub(1);
        for (i, cell) in row.iter().enumerate() {
            if i == last {
                writeln!(out, "{cell}")?;
            } else {
                write!(out, "{cell:<width$} ", width = widths[i])?;
            }
        }
        while let Some((_, detail)) = details.next_if(|(after, _)| *after == index) {
            writeln!(out, "\t{detail}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keep_argument_boundaries() {
        let mut row = TextRow::default();
        row.field(1)
            .words("├─ ", [&b"sh"[..], b"-c", b"echo hi\n", b"\xff"]);
        assert_eq!(row.line, "1├─ sh -c echo\\x20hi\\n \\xff");
    }

    /// A record with a detail line: `n` and, when `n` is odd, `odd n`.
    #[derive(serde::Serialize)]
    struct Detailed(u32);

    impl Record for Detailed {
        const TEXT_HEADER: &'static [&'static str] = &["n", "name"];

        fn write_text(&self, row: &mut TextRow) {
            row.field(self.0)
                .field(if self.0 > 9 { "long" } else { "x" });
        }

        fn text_detail(&self, line: &mut String) {
            if self.0 % 2 == 1 {
                let _ = write!(line, "odd {}", self.0);
            }
        }
    }

    fn printed(options: TextOptions) -> String {
        let mut text = Text::new(options);
        let mut out = Vec::new();
        for n in [1, 2, 11] {
            text.record(&mut out, &Detailed(n)).unwrap();
        }
        text.end(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn detail_lines_follow_their_record_tab_indented() {
        let options = TextOptions {
            header: true,
            align: false,
        };
        assert_eq!(
            printed(options),
            "n name\n1 x\n\todd 1\n2 x\n11 long\n\todd 11\n"
        );
        let aligned = TextOptions {
            header: true,
            align: true,
        };
        assert_eq!(
            printed(aligned),
            "n  name\n1  x\n\todd 1\n2  x\n11 long\n\todd 11\n"
        );
    }
}
