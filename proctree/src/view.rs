//! What a process becomes on output: a [`ProcessRecord`] for the flat list, JSON and CSV, or a
//! line of the tree drawing. The units and names are documented in docs/FORMAT.md.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::contract::output::{Record, TextRow};
use common::contract::record::{OsText, ProcessRecord};
use common::contract::timestamp::rfc3339;

use crate::read::{Exe, Process};
use crate::stat::Stat;
use crate::tty;
use common::host::users::Users;

/// What turns ticks and pages into times and sizes, and uids into names.
pub struct Context {
    pub users: Users,
    ticks_per_second: u64,
    page_kib: u64,
    boot_time: SystemTime,
}

impl Context {
    pub fn new() -> Self {
        Self {
            users: Users::default(),
            ticks_per_second: procfs::ticks_per_second().max(1),
            page_kib: procfs::page_size() / 1024,
            // Without /proc/stat no start time can be placed in the calendar; the epoch
            // makes that visible rather than plausible.
            boot_time: UNIX_EPOCH
                + Duration::from_secs(procfs::boot_time_secs().unwrap_or_default()),
        }
    }

    /// The record of `process`, which was read with status, cmdline and exe.
    pub fn record(&mut self, process: &Process, depth: u32, matched: bool) -> ProcessRecord {
        let stat = &process.stat;
        let uid = process.uid.unwrap_or_default();
        let (exe, denied) = match &process.exe {
            Exe::Path(path) => (Some(OsText::from(path.as_slice())), vec![]),
            Exe::Denied => (None, vec!["exe".to_owned()]),
            Exe::Absent | Exe::NotRead => (None, vec![]),
        };
        ProcessRecord {
            pid: stat.pid,
            ppid: stat.ppid,
            pgid: stat.pgid,
            sid: stat.sid,
            tty: tty::name(stat.tty_nr),
            uid,
            user: self.users.name(uid).map(str::to_owned),
            state: char::from(stat.state).to_string(),
            kthread: stat.is_kthread(),
            nice: stat.nice,
            priority: stat.priority,
            threads: stat.threads,
            start_time: stat.start_time,
            started: self.started(stat.start_time),
            cpu_time_ms: (stat.utime + stat.stime) * 1000 / self.ticks_per_second,
            rss_kib: stat.rss_pages * self.page_kib,
            vsz_kib: stat.vsize / 1024,
            comm: OsText::from(stat.comm.as_slice()),
            args: process
                .args
                .iter()
                .map(|a| OsText::from(a.as_slice()))
                .collect(),
            exe,
            denied,
            depth,
            matched,
            tid: None,
            ports: None,
        }
    }

    /// The record of one thread of a process, from the process's record: what is per thread
    /// (name, state, priority, times) comes from the thread's own stat.
    pub fn thread_record(&self, process: &ProcessRecord, task: &Stat) -> ProcessRecord {
        ProcessRecord {
            comm: OsText::from(task.comm.as_slice()),
            state: char::from(task.state).to_string(),
            nice: task.nice,
            priority: task.priority,
            start_time: task.start_time,
            started: self.started(task.start_time),
            cpu_time_ms: (task.utime + task.stime) * 1000 / self.ticks_per_second,
            depth: process.depth + 1,
            tid: Some(task.pid),
            ..process.clone()
        }
    }

    fn started(&self, ticks: u64) -> String {
        rfc3339(self.start_instant(ticks))
    }

    /// When a task that started `ticks` after boot started.
    pub fn start_instant(&self, ticks: u64) -> SystemTime {
        self.boot_time + Duration::from_millis(ticks * 1000 / self.ticks_per_second)
    }
}

/// The characters the tree is drawn with.
#[derive(Debug, Clone, Copy)]
pub struct Drawing {
    branch: &'static str,
    last: &'static str,
    through: &'static str,
    blank: &'static str,
}

impl Drawing {
    pub const UNICODE: Self = Self {
        branch: "├─ ",
        last: "└─ ",
        through: "│  ",
        blank: "   ",
    };
    pub const ASCII: Self = Self {
        branch: "|- ",
        last: "`- ",
        through: "|  ",
        blank: "   ",
    };

    /// The lead of a line, from the last-child flags of its levels (see [`crate::tree::Visit`]).
    pub fn lead(self, lasts: &[bool], out: &mut String) {
        out.clear();
        if let Some((&own, above)) = lasts.split_last() {
            for &last in above {
                out.push_str(if last { self.blank } else { self.through });
            }
            out.push_str(if own { self.last } else { self.branch });
        }
    }
}

/// One line of the tree view: the ids, then the drawing and the name or command.
pub struct TreeLine<'a> {
    pub pid: u32,
    pub pgid: u32,
    pub sid: u32,
    pub tty: Option<String>,
    pub state: u8,
    pub lead: &'a str,
    pub label: Label<'a>,
    /// The tokens after the label: the ports, with `--ports` (see `common::contract::record::ports_suffix`).
    pub suffix: Vec<String>,
}

/// What follows the drawing.
pub enum Label<'a> {
    /// The kernel's name, as pstree and `ps -ejH` show it.
    Comm(&'a [u8]),
    /// The argument vector (`--args`), or `[comm]` when there is none.
    Args(&'a Process),
    /// A thread, as pstree shows it: `{comm}`.
    Thread(&'a [u8]),
}

impl TreeLine<'_> {
    pub fn of<'a>(process: &'a Process, lead: &'a str, args: bool) -> TreeLine<'a> {
        let stat = &process.stat;
        TreeLine {
            pid: stat.pid,
            pgid: stat.pgid,
            sid: stat.sid,
            tty: tty::name(stat.tty_nr),
            state: stat.state,
            lead,
            label: if args {
                Label::Args(process)
            } else {
                Label::Comm(&stat.comm)
            },
            suffix: Vec::new(),
        }
    }
}

/// Serialised only through the text writer; JSON and CSV print [`ProcessRecord`]s.
impl serde::Serialize for TreeLine<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u32(self.pid)
    }
}

impl Record for TreeLine<'_> {
    const TEXT_HEADER: &'static [&'static str] = &["pid", "pgid", "sid", "tty", "state", "tree"];

    fn write_text(&self, row: &mut TextRow) {
        row.field(self.pid)
            .field(self.pgid)
            .field(self.sid)
            .optional(self.tty.as_ref())
            .field(char::from(self.state));
        let suffix = self.suffix.iter().map(String::as_bytes);
        match &self.label {
            Label::Comm(comm) => row.words(self.lead, std::iter::once(*comm).chain(suffix)),
            Label::Thread(comm) => {
                let mut name = Vec::with_capacity(comm.len() + 2);
                name.push(b'{');
                name.extend_from_slice(comm);
                name.push(b'}');
                row.words(self.lead, std::iter::once(name.as_slice()).chain(suffix))
            }
            Label::Args(process) if process.args.is_empty() => {
                let mut name = Vec::with_capacity(process.stat.comm.len() + 2);
                name.push(b'[');
                name.extend_from_slice(&process.stat.comm);
                name.push(b']');
                row.words(self.lead, std::iter::once(name.as_slice()).chain(suffix))
            }
            Label::Args(process) => row.words(
                self.lead,
                process.args.iter().map(Vec::as_slice).chain(suffix),
            ),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leads() {
        let mut out = String::new();
        let cases: &[(&[bool], &str, &str)] = &[
            (&[], "", ""),
            (&[false], "├─ ", "|- "),
            (&[true], "└─ ", "`- "),
            (&[false, true], "│  └─ ", "|  `- "),
            (&[true, false], "   ├─ ", "   |- "),
        ];
        for (lasts, unicode, ascii) in cases {
            Drawing::UNICODE.lead(lasts, &mut out);
            assert_eq!(out, *unicode);
            Drawing::ASCII.lead(lasts, &mut out);
            assert_eq!(out, *ascii);
        }
    }
}
