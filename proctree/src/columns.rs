//! The flat view's columns: each knows its header, how it shows a [`ProcessRecord`] in text
//! and how it lines up, and [`Table`] pads them as ps does: numbers to the right, names to
//! the left, and paths and command lines not at all, so that one long path does not push
//! every other line's command to the right (issue 17).

use std::io::Write;

use common::contract::error::{Error, Result};
use common::contract::record::{DENIED, OsText, ProcessRecord, ports_suffix};
use common::contract::text::{self, ABSENT};

use crate::pstime::ShortTimes;
use crate::view::Context;

/// One column of the flat view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Pid,
    Ppid,
    User,
    State,
    Priority,
    Nice,
    Threads,
    Vsz,
    Rss,
    Started,
    Tty,
    CpuTime,
    Exe,
    Args,
}

/// How a column's cells line up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Right,
    /// Not padded: a path or a command line, whose width varies too much to line up.
    Free,
}

/// The columns of `--flat`, those `ps -elf` users expect, under the records' field names.
pub const FLAT: &[(Column, &str)] = &[
    (Column::Pid, "pid"),
    (Column::Ppid, "ppid"),
    (Column::User, "user"),
    (Column::State, "state"),
    (Column::Priority, "priority"),
    (Column::Nice, "nice"),
    (Column::Threads, "threads"),
    (Column::Vsz, "vsz_kib"),
    (Column::Rss, "rss_kib"),
    (Column::Started, "started"),
    (Column::Tty, "tty"),
    (Column::CpuTime, "cpu_time_ms"),
    (Column::Exe, "exe"),
    (Column::Args, "args"),
];

impl Column {
    fn align(self) -> Align {
        match self {
            Self::User | Self::State | Self::Started | Self::Tty => Align::Left,
            Self::Exe | Self::Args => Align::Free,
            Self::Pid
            | Self::Ppid
            | Self::Priority
            | Self::Nice
            | Self::Threads
            | Self::Vsz
            | Self::Rss
            | Self::CpuTime => Align::Right,
        }
    }

    /// Appends the text of this column for `record`, escaped so that a line stays one record.
    fn text(self, record: &ProcessRecord, clock: &Clock<'_>, out: &mut String) {
        match self {
            Self::Pid => number(record.pid, out),
            Self::Ppid => number(record.ppid, out),
            Self::User => match &record.user {
                Some(user) => token(user.as_bytes(), out),
                None => number(record.uid, out),
            },
            Self::State => token(record.state.as_bytes(), out),
            Self::Priority => number(record.priority, out),
            Self::Nice => number(record.nice, out),
            Self::Threads => number(record.threads, out),
            Self::Vsz => number(record.vsz_kib, out),
            Self::Rss => number(record.rss_kib, out),
            Self::Started => {
                let start = clock.context.start_instant(record.start_time);
                token(clock.short_times.start(start).as_bytes(), out);
            }
            Self::Tty => token(record.tty.as_deref().unwrap_or_default().as_bytes(), out),
            Self::CpuTime => number(record.cpu_time_ms, out),
            Self::Exe => match &record.exe {
                Some(exe) => token(exe.as_bytes(), out),
                None if record.denied.iter().any(|f| f == "exe") => token(DENIED.as_bytes(), out),
                None => token(b"", out),
            },
            Self::Args => command(record, out),
        }
    }
}

fn number(value: impl std::fmt::Display, out: &mut String) {
    use std::fmt::Write as _;
    let _ = write!(out, "{value}");
}

/// An escaped token, `-` when empty.
fn token(bytes: &[u8], out: &mut String) {
    if bytes.is_empty() {
        out.push_str(ABSENT);
    } else {
        text::escape_token(bytes, out);
    }
}

/// The command as ps shows it, each argument escaped as a token so that their boundaries
/// survive, `[comm]` for a task without arguments; then the ports, if asked for.
fn command(record: &ProcessRecord, out: &mut String) {
    let suffix = ports_suffix(
        record.ports.as_deref(),
        record.denied.iter().any(|f| f == "ports"),
    );
    if record.args.is_empty() {
        out.push('[');
        text::escape_token(&record.comm.0, out);
        out.push(']');
    } else {
        for (i, arg) in record.args.iter().map(OsText::as_bytes).enumerate() {
            if i > 0 {
                out.push(' ');
            }
            text::escape_token(arg, out);
        }
    }
    for word in suffix {
        out.push(' ');
        text::escape_token(word.as_bytes(), out);
    }
}

/// What the time columns are read against.
pub struct Clock<'a> {
    pub context: &'a Context,
    pub short_times: ShortTimes,
}

/// The rows of the flat view, held until every width is known.
pub struct Table<'a> {
    columns: &'a [(Column, &'a str)],
    hostname: Option<String>,
    /// Every cell, row after row.
    cells: Vec<String>,
}

impl<'a> Table<'a> {
    /// `hostname`: the first column of every line (`--hostname-field`).
    pub fn new(columns: &'a [(Column, &'a str)], hostname: Option<String>) -> Self {
        Self {
            columns,
            hostname,
            cells: Vec::new(),
        }
    }

    pub fn push(&mut self, record: &ProcessRecord, clock: &Clock<'_>) {
        if let Some(hostname) = &self.hostname {
            self.cells.push(hostname.clone());
        }
        for &(column, _) in self.columns {
            let mut cell = String::new();
            column.text(record, clock, &mut cell);
            self.cells.push(cell);
        }
    }

    /// Writes the lines, the column names first with `header`.
    pub fn write(&self, out: &mut impl Write, header: bool) -> Result<()> {
        let mut aligns: Vec<Align> = self.columns.iter().map(|(c, _)| c.align()).collect();
        let mut names: Vec<&str> = self.columns.iter().map(|&(_, name)| name).collect();
        if self.hostname.is_some() {
            aligns.insert(0, Align::Left);
            names.insert(0, "hostname");
        }
        let width = aligns.len();
        let mut widths = vec![0; width];
        let header_cells = names.iter().copied().filter(|_| header);
        for (i, cell) in header_cells
            .chain(self.cells.iter().map(String::as_str))
            .enumerate()
        {
            widths[i % width] = widths[i % width].max(cell.chars().count());
        }
        let mut line = String::new();
        let mut write_row = |row: &mut dyn Iterator<Item = &str>| -> Result<()> {
            line.clear();
            for (i, cell) in row.enumerate() {
                if i > 0 {
                    line.push(' ');
                }
                let pad = widths[i].saturating_sub(cell.chars().count());
                match aligns[i] {
                    _ if i + 1 == width => line.push_str(cell),
                    Align::Free => line.push_str(cell),
                    Align::Left => {
                        line.push_str(cell);
                        line.extend(std::iter::repeat_n(' ', pad));
                    }
                    Align::Right => {
                        line.extend(std::iter::repeat_n(' ', pad));
                        line.push_str(cell);
                    }
                }
            }
            line.push('\n');
            out.write_all(line.as_bytes()).map_err(Error::output)
        };
        if header {
            write_row(&mut names.iter().copied())?;
        }
        for row in self.cells.chunks(width) {
            write_row(&mut row.iter().map(String::as_str))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_commands_are_not_padded_numbers_are_right_aligned() {
        let columns = [
            (Column::Pid, "pid"),
            (Column::User, "user"),
            (Column::Exe, "exe"),
            (Column::Args, "args"),
        ];
        let mut table = Table::new(&columns, None);
        table.cells = [
            "1",
            "root",
            "?",
            "init",
            "4242",
            "nobody",
            "/usr/lib/a/very/long/path",
            "x y",
        ]
        .map(str::to_owned)
        .to_vec();
        let mut out = Vec::new();
        table.write(&mut out, true).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            " pid user   exe args\n   1 root   ? init\n4242 nobody /usr/lib/a/very/long/path x y\n"
        );
    }
}
