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
    /// Seconds since boot when the run began (/proc/uptime), for elapsed times.
    uptime_s: f64,
    /// The machine's memory (/proc/meminfo MemTotal), for %MEM.
    mem_total_kib: u64,
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
            uptime_s: std::fs::read_to_string("/proc/uptime")
                .ok()
                .and_then(|text| parse_uptime(&text))
                .unwrap_or_default(),
            mem_total_kib: std::fs::read_to_string("/proc/meminfo")
                .ok()
                .and_then(|text| parse_mem_total(&text))
                .unwrap_or_default(),
        }
    }

    pub fn ticks_per_second(&self) -> u64 {
        self.ticks_per_second
    }

    /// Seconds since a task that started `ticks` after boot started, with their fraction,
    /// as ps's TIME_ELAPSED (procps `library/pids.c`).
    fn elapsed(&self, ticks: u64) -> f64 {
        #[expect(
            clippy::cast_precision_loss,
            reason = "ticks since boot are far below 2^52"
        )]
        let started = ticks as f64 / self.ticks_per_second as f64;
        (self.uptime_s - started).max(0.0)
    }

    /// Whole seconds since a task that started `ticks` after boot started, as ps's etimes.
    fn elapsed_s(&self, ticks: u64) -> u64 {
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "an uptime in seconds is far below 2^52, and floored at 0"
        )]
        let elapsed = self.elapsed(ticks) as u64;
        elapsed
    }

    /// ps's %CPU: CPU time over the time since the task started, to its fraction of a
    /// second, in whole tenths of a percent as ps computes it (`pr_pcpu` in procps
    /// `ps/output.c`): 0 for a task younger than a clock tick.
    fn cpu_percent(&self, cpu_ticks: u64, start_ticks: u64) -> f64 {
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss,
            reason = "ticks of uptime are far below 2^52, and floored at 0"
        )]
        let life_ticks = (self.elapsed(start_ticks) * self.ticks_per_second as f64) as u64;
        if life_ticks == 0 {
            return 0.0;
        }
        tenths(cpu_ticks * 1000 / life_ticks)
    }

    /// ps's %MEM: resident memory over MemTotal, in whole tenths of a percent.
    fn mem_percent(&self, rss_kib: u64) -> f64 {
        if self.mem_total_kib == 0 {
            return 0.0;
        }
        tenths(rss_kib * 1000 / self.mem_total_kib)
    }

    /// The record of `process`, which was read with status, cmdline and exe.
    pub fn record(&mut self, process: &Process, depth: u32, matched: bool) -> ProcessRecord {
        let stat = &process.stat;
        let uid = process.uid.unwrap_or_default();
        let gid = process.gid.unwrap_or_default();
        let elapsed_s = self.elapsed_s(stat.start_time);
        // As ps: status's exact count when it was read, stat's estimate otherwise.
        let rss_kib = process.rss_kib.unwrap_or(stat.rss_pages * self.page_kib);
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
            rss_kib,
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
            cpu_percent: self.cpu_percent(stat.utime + stat.stime, stat.start_time),
            mem_percent: self.mem_percent(rss_kib),
            elapsed_s,
            stat: ps_stat(stat, stat.pid, process.locked),
            gid,
            group: self.users.group(gid).map(str::to_owned),
            policy: stat.policy,
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
            cpu_percent: self.cpu_percent(task.utime + task.stime, task.start_time),
            elapsed_s: self.elapsed_s(task.start_time),
            stat: ps_stat(task, process.pid, process.stat.contains('L')),
            policy: task.policy,
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

/// ps's STAT (`pr_stat` in procps `ps/output.c`): the state letter and its flags, in
/// ps's order, from the stat of the process or of one of its threads (`tgid`: the
/// process's pid, which leads a session when it equals the session id).
fn ps_stat(stat: &Stat, tgid: u32, locked: bool) -> String {
    let mut out = String::with_capacity(7);
    out.push(char::from(stat.state));
    let flags = [
        (stat.nice < 0, '<'),
        (stat.nice > 0, 'N'),
        (locked, 'L'),
        (stat.sid == tgid, 's'),
        (stat.threads > 1, 'l'),
        (i64::from(stat.pgid) == i64::from(stat.tpgid), '+'),
    ];
    out.extend(flags.iter().filter(|(set, _)| *set).map(|&(_, flag)| flag));
    out
}

/// Tenths of a percent as a percentage.
fn tenths(permille: u64) -> f64 {
    #[expect(
        clippy::cast_precision_loss,
        reason = "a permille of CPU or memory is far below 2^52"
    )]
    let permille = permille as f64;
    permille / 10.0
}

/// The seconds since boot: the first number of /proc/uptime (`350735.47 234388.90`).
fn parse_uptime(text: &str) -> Option<f64> {
    text.split_whitespace().next()?.parse().ok()
}

/// MemTotal of /proc/meminfo, in KiB (`MemTotal:       16777216 kB`).
fn parse_mem_total(text: &str) -> Option<u64> {
    let line = text.lines().find(|line| line.starts_with("MemTotal:"))?;
    line["MemTotal:".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
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
    fn uptime_and_memory_are_read_from_their_files() {
        assert_eq!(parse_uptime("350735.47 234388.90\n"), Some(350_735.47));
        assert_eq!(parse_uptime(""), None);
        let meminfo = "MemTotal:       16377816 kB\nMemFree:         1234 kB\n";
        assert_eq!(parse_mem_total(meminfo), Some(16_377_816));
        assert_eq!(parse_mem_total("MemFree: 1 kB\n"), None);
    }

    #[test]
    fn percentages_are_truncated_to_tenths_as_ps_does() {
        let mut context = Context::new();
        context.ticks_per_second = 100;
        context.mem_total_kib = 3000;
        context.uptime_s = 100.5;
        // 1.5 s of CPU over 7 s: 21.4...%, shown by ps as 21.4; over 0.5 s, 300%.
        assert!((context.cpu_percent(150, 9350) - 21.4).abs() < 1e-9);
        assert!((context.cpu_percent(150, 10_000) - 300.0).abs() < 1e-9);
        assert!(context.cpu_percent(150, 10_050).abs() < 1e-9);
        // 1999 KiB of 3000: 66.63%, ps shows 66.6.
        assert!((context.mem_percent(1999) - 66.6).abs() < 1e-9);
        assert_eq!(context.elapsed_s(2000), 80);
        assert_eq!(context.elapsed_s(20_000), 0);
    }

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
