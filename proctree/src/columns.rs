//! The flat view's columns: each knows its header, how it shows a [`ProcessRecord`] in text
//! and how it lines up, and [`Table`] pads them as ps does: numbers to the right, names to
//! the left, and paths and command lines not at all, so that one long path does not push
//! every other line's command to the right (issue 17).

use std::cmp::Ordering;
use std::io::Write;

use serde::ser::{Serialize, SerializeStruct, Serializer};
use serde_json::Value;

use common::contract::error::{Error, Result};
use common::contract::output::{Record, TextRow};
use common::contract::record::{DENIED, OsText, ProcessRecord, ports_suffix};
use common::contract::text::{self, ABSENT};

use crate::pstime::{self, ShortTimes};
use crate::view::Context;

/// One column of the flat view, or one field of a record chosen with `-o`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Pid,
    Ppid,
    Pgid,
    Sid,
    Tty,
    Uid,
    User,
    State,
    Kthread,
    Nice,
    /// The record's priority, as /proc shows it (20 at nice 0).
    Priority,
    /// ps's PRI: 39 minus the kernel's priority (19 at nice 0).
    PsPriority,
    Threads,
    /// The start in clock ticks since boot.
    StartTime,
    /// The start, in ps's short local form in text.
    Started,
    CpuTimeMs,
    /// ps's TIME: `hh:mm:ss`.
    CpuTime,
    Rss,
    Vsz,
    Comm,
    Args,
    Exe,
    Denied,
    Depth,
    Matched,
    Tid,
    Ports,
    CpuPercent,
    MemPercent,
    ElapsedS,
    /// ps's ELAPSED: `[[dd-]hh:]mm:ss`.
    Elapsed,
    /// ps's STAT: the state letter and its flags.
    Stat,
    Gid,
    Group,
    /// ps's TT: the terminal, `?` for none.
    PsTty,
    /// ps's NI: the nice value, `-` for a policy that has none (real-time, idle, deadline).
    PsNice,
    Policy,
    /// ps's CLS: the policy as `TS`, `FF`, `RR`, `B`, `IDL`, `DLN`.
    Class,
    /// ps's START (`start_time`): the short form of [`Column::Started`], under the
    /// record's `start_time`.
    StartTimeShort,
    /// ps's STARTED (`start`): `hh:mm:ss` within a day, `Mmm dd` before.
    Start,
    /// ps's STARTED (`lstart`): `Sat Dec  5 11:40:18 2026`.
    Lstart,
}

/// How a column's cells line up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Right,
    /// Not padded: a path or a command line, whose width varies too much to line up.
    Free,
}

/// Every name `-o` and `--sort` take: ps's (with ps's header) and the records' field names
/// (their own header). A name both ps and the records have means what ps means in text and
/// is the record's field in JSON and CSV.
const NAMES: &[(&str, Column, &str)] = &[
    ("pid", Column::Pid, "PID"),
    ("ppid", Column::Ppid, "PPID"),
    ("pgid", Column::Pgid, "PGID"),
    ("pgrp", Column::Pgid, "PGRP"),
    ("sid", Column::Sid, "SID"),
    ("sess", Column::Sid, "SESS"),
    ("session", Column::Sid, "SESS"),
    ("tty", Column::PsTty, "TT"),
    ("tt", Column::PsTty, "TT"),
    ("tname", Column::PsTty, "TTY"),
    ("uid", Column::Uid, "UID"),
    ("euid", Column::Uid, "EUID"),
    ("user", Column::User, "USER"),
    ("euser", Column::User, "EUSER"),
    ("uname", Column::User, "USER"),
    ("gid", Column::Gid, "GID"),
    ("egid", Column::Gid, "EGID"),
    ("group", Column::Group, "GROUP"),
    ("egroup", Column::Group, "EGROUP"),
    ("stat", Column::Stat, "STAT"),
    ("s", Column::State, "S"),
    ("state", Column::State, "S"),
    ("kthread", Column::Kthread, "kthread"),
    ("nice", Column::PsNice, "NI"),
    ("ni", Column::PsNice, "NI"),
    ("priority", Column::Priority, "priority"),
    ("pri", Column::PsPriority, "PRI"),
    ("policy", Column::Policy, "policy"),
    ("cls", Column::Class, "CLS"),
    ("class", Column::Class, "CLS"),
    ("nlwp", Column::Threads, "NLWP"),
    ("thcount", Column::Threads, "THCNT"),
    ("threads", Column::Threads, "threads"),
    ("start_time", Column::StartTimeShort, "START"),
    ("started", Column::Started, "started"),
    ("start", Column::Start, "STARTED"),
    ("lstart", Column::Lstart, "STARTED"),
    ("stime", Column::Started, "STIME"),
    ("cpu_time_ms", Column::CpuTimeMs, "cpu_time_ms"),
    ("time", Column::CpuTime, "TIME"),
    ("cputime", Column::CpuTime, "TIME"),
    ("rss", Column::Rss, "RSS"),
    ("rssize", Column::Rss, "RSS"),
    ("rsz", Column::Rss, "RSZ"),
    ("rss_kib", Column::Rss, "rss_kib"),
    ("vsz", Column::Vsz, "VSZ"),
    ("vsize", Column::Vsz, "VSZ"),
    ("vsz_kib", Column::Vsz, "vsz_kib"),
    ("comm", Column::Comm, "COMMAND"),
    ("ucomm", Column::Comm, "COMMAND"),
    ("ucmd", Column::Comm, "CMD"),
    ("args", Column::Args, "COMMAND"),
    ("command", Column::Args, "COMMAND"),
    ("cmd", Column::Args, "CMD"),
    ("exe", Column::Exe, "EXE"),
    ("denied", Column::Denied, "denied"),
    ("depth", Column::Depth, "depth"),
    ("matched", Column::Matched, "matched"),
    ("tid", Column::Tid, "TID"),
    ("lwp", Column::Tid, "LWP"),
    ("spid", Column::Tid, "SPID"),
    ("ports", Column::Ports, "ports"),
    ("%cpu", Column::CpuPercent, "%CPU"),
    ("pcpu", Column::CpuPercent, "%CPU"),
    ("cpu_percent", Column::CpuPercent, "cpu_percent"),
    ("%mem", Column::MemPercent, "%MEM"),
    ("pmem", Column::MemPercent, "%MEM"),
    ("mem_percent", Column::MemPercent, "mem_percent"),
    ("etimes", Column::ElapsedS, "ELAPSED"),
    ("elapsed_s", Column::ElapsedS, "elapsed_s"),
    ("etime", Column::Elapsed, "ELAPSED"),
];

/// A column and the header it is shown under.
pub type Spec = (Column, String);

/// The columns of `--flat`, those `ps -elf` users expect, under the records' field names.
pub fn flat() -> Vec<Spec> {
    [
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
        (Column::CpuTimeMs, "cpu_time_ms"),
        (Column::Exe, "exe"),
        (Column::Args, "args"),
    ]
    .into_iter()
    .map(|(column, name)| (column, name.to_owned()))
    .collect()
}

fn valid_names() -> String {
    NAMES
        .iter()
        .map(|(name, _, _)| *name)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Parses `-o`'s lists: names separated by a comma or a blank (the option may be repeated),
/// each with an optional `=HEADER`, as the ps of procps-ng 4 takes them (`pid,%cpu`,
/// `'pid user'`, `pid=`, `pid=ID,comm=NAME`): a header ends at the next comma or blank, so
/// `args=COMMAND LINE` names a column `LINE`, an error there as here.
pub fn parse_list(lists: &[String]) -> Result<Vec<Spec>> {
    let mut specs = Vec::new();
    for list in lists {
        // ps takes one separator between two names, no more: `pid,,user` is an error there.
        for item in list.split([',', ' ']) {
            let (name, renamed) = match item.split_once('=') {
                Some((name, header)) => (name, Some(header)),
                None => (item, None),
            };
            if name.is_empty() {
                return Err(Error::usage(format!(
                    "-o '{list}': an empty column name (names are separated by one comma or blank)"
                )));
            }
            let (column, header) = lookup(name).ok_or_else(|| {
                Error::usage(format!(
                    "-o '{name}': unknown column; valid ones are: {}",
                    valid_names()
                ))
            })?;
            specs.push((column, renamed.unwrap_or(header).to_owned()));
        }
    }
    Ok(specs)
}

fn lookup(name: &str) -> Option<(Column, &'static str)> {
    let lower = name.to_ascii_lowercase();
    NAMES
        .iter()
        .find(|(known, _, _)| *known == lower)
        .map(|&(_, column, header)| (column, header))
}

/// One sort key: a column, and whether it sorts from the largest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortKey {
    pub column: Column,
    pub descending: bool,
}

/// Parses `--sort`'s keys as ps does: names separated by commas, each with an optional `+`
/// (ascending, the default) or `-` (descending): `-%mem,+pid`.
pub fn parse_sort(lists: &[String]) -> Result<Vec<SortKey>> {
    lists
        .iter()
        .flat_map(|list| list.split(','))
        .map(|key| {
            let (name, descending) = match key.as_bytes().first() {
                Some(b'-') => (&key[1..], true),
                Some(b'+') => (&key[1..], false),
                _ => (key, false),
            };
            let (column, _) = lookup(name).ok_or_else(|| {
                Error::usage(format!(
                    "--sort '{key}': unknown key; valid ones (each may start with + or -) are: {}",
                    valid_names()
                ))
            })?;
            Ok(SortKey { column, descending })
        })
        .collect()
}

/// Orders `a` and `b` by `keys`, the first that differs deciding.
pub fn compare(keys: &[SortKey], a: &ProcessRecord, b: &ProcessRecord) -> Ordering {
    keys.iter()
        .map(|key| {
            let order = key.column.compare(a, b);
            if key.descending {
                order.reverse()
            } else {
                order
            }
        })
        .find(|order| order.is_ne())
        .unwrap_or(Ordering::Equal)
}

impl Column {
    /// The record field this column shows, the one `-o` keeps in JSON and CSV.
    pub fn field(self) -> &'static str {
        match self {
            Self::Pid => "pid",
            Self::Ppid => "ppid",
            Self::Pgid => "pgid",
            Self::Sid => "sid",
            Self::Tty | Self::PsTty => "tty",
            Self::Uid => "uid",
            Self::User => "user",
            Self::State => "state",
            Self::Kthread => "kthread",
            Self::Nice | Self::PsNice => "nice",
            Self::Priority | Self::PsPriority => "priority",
            Self::Threads => "threads",
            Self::StartTime | Self::StartTimeShort => "start_time",
            Self::Started | Self::Start | Self::Lstart => "started",
            Self::CpuTimeMs | Self::CpuTime => "cpu_time_ms",
            Self::Rss => "rss_kib",
            Self::Vsz => "vsz_kib",
            Self::Comm => "comm",
            Self::Args => "args",
            Self::Exe => "exe",
            Self::Denied => "denied",
            Self::Depth => "depth",
            Self::Matched => "matched",
            Self::Tid => "tid",
            Self::Ports => "ports",
            Self::CpuPercent => "cpu_percent",
            Self::MemPercent => "mem_percent",
            Self::ElapsedS | Self::Elapsed => "elapsed_s",
            Self::Stat => "stat",
            Self::Gid => "gid",
            Self::Group => "group",
            Self::Policy | Self::Class => "policy",
        }
    }

    /// Whether showing this column needs /proc/PID/status: the uid and gid, the locked
    /// memory of STAT's `L`, and the resident memory that stat only estimates.
    pub fn needs_status(self) -> bool {
        matches!(
            self,
            Self::Uid
                | Self::User
                | Self::Gid
                | Self::Group
                | Self::Stat
                | Self::Rss
                | Self::MemPercent
        )
    }

    /// Whether showing this column needs /proc/PID/cmdline.
    pub fn needs_cmdline(self) -> bool {
        self == Self::Args
    }

    /// Whether showing this column needs the exe link.
    pub fn needs_exe(self) -> bool {
        matches!(self, Self::Exe | Self::Denied)
    }

    fn align(self) -> Align {
        match self {
            Self::Tty
            | Self::PsTty
            | Self::User
            | Self::Group
            | Self::State
            | Self::Stat
            | Self::Class
            | Self::Kthread
            | Self::Started
            | Self::StartTimeShort
            | Self::Start
            | Self::Lstart
            | Self::Comm
            | Self::Denied
            | Self::Matched => Align::Left,
            Self::Exe | Self::Args | Self::Ports => Align::Free,
            _ => Align::Right,
        }
    }

    fn compare(self, a: &ProcessRecord, b: &ProcessRecord) -> Ordering {
        let user = |r: &ProcessRecord| r.user.clone().unwrap_or_else(|| r.uid.to_string());
        let group = |r: &ProcessRecord| r.group.clone().unwrap_or_else(|| r.gid.to_string());
        let args = |r: &ProcessRecord| -> Vec<u8> {
            let mut out = String::new();
            command(r, &mut out);
            out.into_bytes()
        };
        match self {
            Self::Pid => a.pid.cmp(&b.pid),
            Self::Ppid => a.ppid.cmp(&b.ppid),
            Self::Pgid => a.pgid.cmp(&b.pgid),
            Self::Sid => a.sid.cmp(&b.sid),
            Self::Tty | Self::PsTty => a.tty.cmp(&b.tty),
            Self::Uid => a.uid.cmp(&b.uid),
            Self::User => user(a).cmp(&user(b)),
            Self::Gid => a.gid.cmp(&b.gid),
            Self::Group => group(a).cmp(&group(b)),
            Self::State => a.state.cmp(&b.state),
            // ps sorts STAT by its state letter alone (`S<Ll` with `S`), ties in pid order.
            Self::Stat => a.stat.bytes().next().cmp(&b.stat.bytes().next()),
            Self::Kthread => a.kthread.cmp(&b.kthread),
            Self::Nice | Self::PsNice => a.nice.cmp(&b.nice),
            Self::Policy | Self::Class => a.policy.cmp(&b.policy),
            Self::Priority => a.priority.cmp(&b.priority),
            Self::PsPriority => b.priority.cmp(&a.priority),
            Self::Threads => a.threads.cmp(&b.threads),
            Self::StartTime | Self::StartTimeShort | Self::Started | Self::Start | Self::Lstart => {
                a.start_time.cmp(&b.start_time)
            }
            Self::CpuTimeMs | Self::CpuTime => a.cpu_time_ms.cmp(&b.cpu_time_ms),
            // As ps: %MEM by the resident memory itself, which the truncated share hides.
            Self::Rss | Self::MemPercent => a.rss_kib.cmp(&b.rss_kib),
            Self::Vsz => a.vsz_kib.cmp(&b.vsz_kib),
            Self::Comm => a.comm.0.cmp(&b.comm.0),
            Self::Args => args(a).cmp(&args(b)),
            Self::Exe => a
                .exe
                .as_ref()
                .map(|e| &e.0)
                .cmp(&b.exe.as_ref().map(|e| &e.0)),
            Self::Denied => a.denied.cmp(&b.denied),
            Self::Depth => a.depth.cmp(&b.depth),
            Self::Matched => a.matched.cmp(&b.matched),
            Self::Tid => a.tid.unwrap_or(a.pid).cmp(&b.tid.unwrap_or(b.pid)),
            Self::Ports => a.ports.cmp(&b.ports),
            Self::CpuPercent => a.cpu_percent.total_cmp(&b.cpu_percent),
            Self::ElapsedS | Self::Elapsed => a.elapsed_s.cmp(&b.elapsed_s),
        }
    }

    /// Appends the text of this column for `record`, escaped so that a line stays one record.
    fn text(self, record: &ProcessRecord, clock: &Clock<'_>, out: &mut String) {
        match self {
            Self::Pid => number(record.pid, out),
            Self::Ppid => number(record.ppid, out),
            Self::Pgid => number(record.pgid, out),
            Self::Sid => number(record.sid, out),
            Self::Tty => token(record.tty.as_deref().unwrap_or_default().as_bytes(), out),
            Self::PsTty => match &record.tty {
                Some(tty) => token(tty.as_bytes(), out),
                None => out.push('?'),
            },
            Self::Uid => number(record.uid, out),
            Self::Gid => number(record.gid, out),
            Self::Group => match &record.group {
                Some(group) => token(group.as_bytes(), out),
                None => number(record.gid, out),
            },
            Self::Stat => token(record.stat.as_bytes(), out),
            Self::Policy => number(record.policy, out),
            Self::Class => out.push_str(class(record.policy)),
            Self::PsNice if has_nice(record.policy) => number(record.nice, out),
            Self::PsNice => out.push('-'),
            Self::User => match &record.user {
                Some(user) => token(user.as_bytes(), out),
                None => number(record.uid, out),
            },
            Self::State => token(record.state.as_bytes(), out),
            Self::Kthread => number(record.kthread, out),
            Self::Nice => number(record.nice, out),
            Self::Priority => number(record.priority, out),
            Self::PsPriority => number(39 - record.priority, out),
            Self::Threads => number(record.threads, out),
            Self::StartTime => number(record.start_time, out),
            Self::Started | Self::StartTimeShort => {
                let start = clock.context.start_instant(record.start_time);
                token(clock.short_times.start(start).as_bytes(), out);
            }
            // Spaced as ps spaces them (`Dec 05`, `Sat Dec  5 11:40:18 2026`): a reader that
            // splits on blanks counts them as ps's users do.
            Self::Start => {
                let start = clock.context.start_instant(record.start_time);
                out.push_str(&clock.short_times.started(start));
            }
            Self::Lstart => {
                let start = clock.context.start_instant(record.start_time);
                out.push_str(&clock.short_times.long(start));
            }
            Self::CpuTimeMs => number(record.cpu_time_ms, out),
            Self::CpuTime => out.push_str(&pstime::cpu_time(record.cpu_time_ms)),
            Self::Rss => number(record.rss_kib, out),
            Self::Vsz => number(record.vsz_kib, out),
            Self::Comm => token(&record.comm.0, out),
            Self::Args => command(record, out),
            Self::Exe => match &record.exe {
                Some(exe) => token(exe.as_bytes(), out),
                None if record.denied.iter().any(|f| f == "exe") => token(DENIED.as_bytes(), out),
                None => token(b"", out),
            },
            Self::Denied => token(record.denied.join(",").as_bytes(), out),
            Self::Depth => number(record.depth, out),
            Self::Matched => number(record.matched, out),
            // A process's row is its main thread's, whose id is the pid, as ps shows it.
            Self::Tid => number(record.tid.unwrap_or(record.pid), out),
            Self::Ports => {
                let words = ports_suffix(
                    record.ports.as_deref(),
                    record.denied.iter().any(|f| f == "ports"),
                );
                let words = words.get(1..).unwrap_or_default();
                token(words.join(" ").as_bytes(), out);
            }
            // ps drops the tenths from 100% on (a multi-threaded process's share).
            Self::CpuPercent if record.cpu_percent >= 100.0 => {
                number(format_args!("{:.0}", record.cpu_percent.trunc()), out);
            }
            Self::CpuPercent => number(format_args!("{:.1}", record.cpu_percent), out),
            Self::MemPercent => number(format_args!("{:.1}", record.mem_percent), out),
            Self::ElapsedS => number(record.elapsed_s, out),
            Self::Elapsed => out.push_str(&pstime::elapsed(record.elapsed_s)),
        }
    }
}

/// Whether tasks of this scheduling policy have a nice value: normal and batch ones
/// (sched(7)), the two ps shows one for (`pr_nice` in procps `ps/output.c`).
fn has_nice(policy: u32) -> bool {
    matches!(policy, 0 | 3)
}

/// ps's CLS for a scheduling policy (procps `SCHED_CLASSSTR`).
fn class(policy: u32) -> &'static str {
    match policy {
        0 => "TS",
        1 => "FF",
        2 => "RR",
        3 => "B",
        4 => "ISO",
        5 => "IDL",
        6 => "DLN",
        _ => "?",
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
/// survive, `[comm]` for a task without arguments (`[comm] <defunct>` for a zombie); then
/// the ports, if asked for.
fn command(record: &ProcessRecord, out: &mut String) {
    let suffix = ports_suffix(
        record.ports.as_deref(),
        record.denied.iter().any(|f| f == "ports"),
    );
    if record.args.is_empty() {
        out.push('[');
        text::escape_token(&record.comm.0, out);
        out.push(']');
        // ps's args of a zombie, whose command line is gone with its memory.
        if record.stat.starts_with('Z') {
            out.push_str(" <defunct>");
        }
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

/// A record with only the fields `-o` chose, in its order, for JSON and CSV.
pub struct Selected<'a> {
    pub record: &'a ProcessRecord,
    pub fields: &'a [&'static str],
}

/// Serializes `fields` of `value` (a record, or its CSV form) in their order.
fn pick<S: Serializer>(
    value: impl Serialize,
    fields: &[&'static str],
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    let Value::Object(map) = serde_json::to_value(value).map_err(serde::ser::Error::custom)? else {
        return Err(serde::ser::Error::custom("a record is a JSON object"));
    };
    let mut out = serializer.serialize_struct("ProcessRecord", fields.len())?;
    for field in fields {
        out.serialize_field(field, map.get(*field).unwrap_or(&Value::Null))?;
    }
    out.end()
}

impl Serialize for Selected<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        pick(self.record, self.fields, serializer)
    }
}

/// The CSV cells of the chosen fields.
pub struct SelectedCsv<'a>(&'a Selected<'a>);

impl Serialize for SelectedCsv<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        pick(self.0.record.csv(), self.0.fields, serializer)
    }
}

/// Printed as JSON and CSV only: text goes through [`Table`], which knows ps's forms.
impl Record for Selected<'_> {
    const TEXT_HEADER: &'static [&'static str] = &[];

    fn write_text(&self, row: &mut TextRow) {
        if let Ok(Value::Object(map)) = serde_json::to_value(self.record.csv()) {
            for field in self.fields {
                row.field(map.get(*field).map(ToString::to_string).unwrap_or_default());
            }
        }
    }

    fn csv(&self) -> impl Serialize + '_ {
        SelectedCsv(self)
    }
}

/// What the time columns are read against.
pub struct Clock<'a> {
    pub context: &'a Context,
    pub short_times: ShortTimes,
}

/// The rows of the flat view, held until every width is known.
pub struct Table<'a> {
    columns: &'a [Spec],
    hostname: Option<String>,
    /// Every cell, row after row.
    cells: Vec<String>,
}

impl<'a> Table<'a> {
    /// `hostname`: the first column of every line (`--hostname-field`).
    pub fn new(columns: &'a [Spec], hostname: Option<String>) -> Self {
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
        let mut names: Vec<&str> = self.columns.iter().map(|(_, name)| name.as_str()).collect();
        if self.hostname.is_some() {
            aligns.insert(0, Align::Left);
            names.insert(0, "hostname");
        }
        let width = aligns.len();
        let mut widths = vec![0; width];
        // `-o pid=,args=` asks for no header, as in ps; one empty name among others is a blank cell
        // that keeps its place, so the cells after it are measured against their own column.
        let header = header && names.iter().any(|name| !name.is_empty());
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
    fn column_lists_take_ps_names_ours_and_headers() {
        let list = |text: &str| {
            parse_list(&[text.to_owned()])
                .map(|specs| {
                    specs
                        .iter()
                        .map(|(column, header)| format!("{}:{header}", column.field()))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .map_err(|e| e.to_string())
        };
        let cases = [
            ("pid,%CPU,pmem", "pid:PID cpu_percent:%CPU mem_percent:%MEM"),
            (
                "rss_kib,etime,etimes",
                "rss_kib:rss_kib elapsed_s:ELAPSED elapsed_s:ELAPSED",
            ),
            ("pid=,args=", "pid: args:"),
            ("pid=ID,comm=NAME", "pid:ID comm:NAME"),
            ("pid=X=Y;Z", "pid:X=Y;Z"),
            ("pid user", "pid:PID user:USER"),
            ("pid user,comm=NAME", "pid:PID user:USER comm:NAME"),
            (
                "stat,cmd,nlwp,pri",
                "stat:STAT args:CMD threads:NLWP priority:PRI",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(list(input).unwrap(), expected, "{input}");
        }
        for (bad, unknown) in [("pid,bogus", "bogus"), ("args=COMMAND LINE", "LINE")] {
            assert!(
                list(bad)
                    .unwrap_err()
                    .contains(&format!("'{unknown}': unknown column")),
                "{bad}"
            );
        }
        assert!(list("").is_err());
        for bad in ["pid,,user", "pid  user", "pid, user", " pid", "pid,", ",=X"] {
            assert!(
                list(bad).unwrap_err().contains("an empty column name"),
                "{bad}"
            );
        }
    }

    #[test]
    fn sort_keys_as_ps_takes_them() {
        let keys = parse_sort(&["-%mem,+pid".to_owned(), "rss".to_owned()]).unwrap();
        let expected = [
            (Column::MemPercent, true),
            (Column::Pid, false),
            (Column::Rss, false),
        ];
        assert_eq!(
            keys.iter()
                .map(|k| (k.column, k.descending))
                .collect::<Vec<_>>(),
            expected
        );
        assert!(parse_sort(&["-".to_owned()]).is_err());
    }

    #[test]
    fn paths_and_commands_are_not_padded_numbers_are_right_aligned() {
        let columns = [
            (Column::Pid, "pid"),
            (Column::User, "user"),
            (Column::Exe, "exe"),
            (Column::Args, "args"),
        ]
        .map(|(column, name)| (column, name.to_owned()));
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

    /// `-o pid= -o user -o comm`: ps prints the header with a blank over the pid, and every
    /// cell after it stays under its own name; only when every name is empty is there no header.
    #[test]
    fn an_empty_header_keeps_its_column() {
        let table = |names: [&str; 3], header: bool| {
            let columns = [Column::Pid, Column::User, Column::Comm]
                .into_iter()
                .zip(names.map(str::to_owned))
                .collect::<Vec<_>>();
            let mut table = Table::new(&columns, None);
            table.cells = ["1", "root", "init", "4242", "nobody", "sleep"]
                .map(str::to_owned)
                .to_vec();
            let mut out = Vec::new();
            table.write(&mut out, header).unwrap();
            String::from_utf8(out).unwrap()
        };
        let rows = "   1 root   init\n4242 nobody sleep\n";
        assert_eq!(
            table(["", "USER", "COMMAND"], true),
            format!("     USER   COMMAND\n{rows}")
        );
        assert_eq!(
            table(["PID", "", "COMMAND"], true),
            format!(" PID        COMMAND\n{rows}")
        );
        assert_eq!(table(["", "", ""], true), rows);
        assert_eq!(table(["", "USER", "COMMAND"], false), rows);
    }
}
