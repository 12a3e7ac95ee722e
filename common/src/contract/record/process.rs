//! The process record: one process (or, with proctree `--threads`, one thread) as /proc
//! shows it, identified by (pid, start_time) so that a reused pid is never confused with the
//! process that had it before. Names and arguments are bytes to the kernel; [`OsText`] keeps
//! them without loss in JSON and escaped in text and CSV (docs/FORMAT.md, "proctree").

use std::net::{IpAddr, SocketAddr};

use serde::ser::{SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};

use crate::contract::output::{Record, TextRow};
use crate::contract::record::{OsText, SocketProto};

/// Shown in text for a field that exists but that we were not allowed to read.
pub const DENIED: &str = "?";

/// One process, or one thread of a process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessRecord {
    /// The process id (the thread-group id for a thread row).
    pub pid: u32,
    /// The parent's pid; 0 for the roots the kernel starts (init, kthreadd).
    pub ppid: u32,
    /// The process group.
    pub pgid: u32,
    /// The session.
    pub sid: u32,
    /// The controlling terminal (`pts/0`, `tty1`, `ttyS0`, or `MAJOR:MINOR`); null if none.
    pub tty: Option<String>,
    /// The effective user id.
    pub uid: u32,
    /// The effective user's name; null if the uid has none.
    pub user: Option<String>,
    /// The state letter of /proc/PID/stat: R, S, D, Z, T, t, X, I.
    pub state: String,
    /// A kernel thread (the PF_KTHREAD flag), not a user-space process.
    pub kthread: bool,
    pub nice: i32,
    /// The kernel's priority as /proc/PID/stat field 18 shows it: 20 at nice 0, 0 to 39 for
    /// normal tasks, negative for real-time ones.
    pub priority: i32,
    /// Threads in the process.
    pub threads: u32,
    /// When the process started, in clock ticks since boot (stat field 22): with `pid`, the
    /// identity of the process.
    pub start_time: u64,
    /// When the process started (RFC 3339, UTC, to the clock tick).
    pub started: String,
    /// User plus system CPU time, in milliseconds.
    pub cpu_time_ms: u64,
    /// Resident memory, in KiB.
    pub rss_kib: u64,
    /// Virtual memory size, in KiB.
    pub vsz_kib: u64,
    /// The kernel's name of the task (up to 15 bytes for user tasks, longer for kernel
    /// threads), which the process may change.
    pub comm: OsText,
    /// The argument vector; empty for kernel threads and zombies.
    pub args: Vec<OsText>,
    /// The executable's path (with ` (deleted)` if it was removed); null when there is none
    /// (kernel threads, zombies) or when it may not be read (then `denied` names it).
    pub exe: Option<OsText>,
    /// The fields that exist but that we were not allowed to read (`exe`).
    pub denied: Vec<String>,
    /// Depth in the printed tree: 0 for a process whose parent is not printed.
    pub depth: u32,
    /// The process matched the filters (`--name`, `--user`); false for its ancestors and
    /// descendants, printed to keep the tree readable.
    pub matched: bool,
    /// The thread id, for a thread row (`--threads`); null for a process.
    pub tid: Option<u32>,
    /// With proctree `--ports`: the sockets the process listens on, in (proto, port,
    /// address) order; null without `--ports`, or when the fd table may not be read (then
    /// `denied` names it).
    pub ports: Option<Vec<ListenPort>>,
    /// CPU time over the process's life (ps's %CPU: user plus system time over the time
    /// since it started), to 0.1, as ps truncates it.
    pub cpu_percent: f64,
    /// Resident memory over the machine's memory (ps's %MEM: rss_kib over MemTotal), to 0.1.
    pub mem_percent: f64,
    /// Seconds since the process started (ps's etimes).
    pub elapsed_s: u64,
    /// ps's STAT: the state letter, then `<` (nice below 0), `N` (above 0), `L` (memory
    /// locked), `s` (session leader), `l` (multi-threaded), `+` (in the terminal's
    /// foreground group).
    pub stat: String,
    /// The effective group id.
    pub gid: u32,
    /// The effective group's name; null if the gid has none.
    pub group: Option<String>,
    /// The scheduling policy (sched(7)): 0 normal, 1 FIFO, 2 round robin, 3 batch, 5 idle,
    /// 6 deadline. ps shows no nice value (`-`) outside normal and batch.
    pub policy: u32,
}

/// A socket a process listens on: TCP in LISTEN, or UDP bound to a port and not connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ListenPort {
    pub proto: SocketProto,
    pub address: IpAddr,
    pub port: u16,
}

impl ListenPort {
    /// The two text tokens, `tcp` and `0.0.0.0:22` (`[::]:53` for IPv6), as ss shows them
    /// and svcname reads them.
    pub fn tokens(self) -> [String; 2] {
        [
            self.proto.to_string(),
            SocketAddr::new(self.address, self.port).to_string(),
        ]
    }
}

/// The text that ends a line for `ports`: `ports: tcp 0.0.0.0:22 udp [::]:53`, `ports: ?`
/// when the fd table may not be read, nothing when there are none or they were not asked for.
pub fn ports_suffix(ports: Option<&[ListenPort]>, denied: bool) -> Vec<String> {
    match ports {
        _ if denied => vec!["ports:".to_owned(), DENIED.to_owned()],
        Some(ports) if !ports.is_empty() => std::iter::once("ports:".to_owned())
            .chain(ports.iter().flat_map(|p| p.tokens()))
            .collect(),
        Some(_) | None => Vec::new(),
    }
}

impl Record for ProcessRecord {
    const TEXT_HEADER: &'static [&'static str] = &[
        "pid",
        "ppid",
        "user",
        "state",
        "priority",
        "nice",
        "threads",
        "vsz_kib",
        "rss_kib",
        "started",
        "tty",
        "cpu_time_ms",
        "exe",
        "args",
    ];

    fn write_text(&self, row: &mut TextRow) {
        row.field(self.pid).field(self.ppid);
        match &self.user {
            Some(user) => row.field(user),
            None => row.field(self.uid),
        };
        row.field(&self.state)
            .field(self.priority)
            .field(self.nice)
            .field(self.threads)
            .field(self.vsz_kib)
            .field(self.rss_kib)
            .field(&self.started)
            .optional(self.tty.as_ref());
        row.field(self.cpu_time_ms);
        match &self.exe {
            Some(exe) => row.bytes(exe.as_bytes()),
            None if self.denied.iter().any(|f| f == "exe") => row.field(DENIED),
            None => row.field(""),
        };
        write_command(row, self);
    }

    /// CSV cells hold no arrays nor objects, and bytes escaped as in text.
    fn csv(&self) -> impl Serialize + '_ {
        CsvProcess(self)
    }
}

/// Ends a text line with the command: the arguments, each escaped as a token so their
/// boundaries survive, or `[comm]` for a task without arguments, as ps shows it; then the
/// ports, if asked for.
fn write_command(row: &mut TextRow, record: &ProcessRecord) {
    let suffix = ports_suffix(
        record.ports.as_deref(),
        record.denied.iter().any(|f| f == "ports"),
    );
    let suffix = suffix.iter().map(String::as_bytes);
    if record.args.is_empty() {
        let mut name = Vec::with_capacity(record.comm.0.len() + 2);
        name.push(b'[');
        name.extend_from_slice(&record.comm.0);
        name.push(b']');
        row.words("", std::iter::once(name.as_slice()).chain(suffix));
    } else {
        row.words("", record.args.iter().map(OsText::as_bytes).chain(suffix));
    }
}

/// [`ProcessRecord`] for CSV: byte strings escaped as in text (lossless: `\\`, `\n`, `\xHH`),
/// `args` as escaped tokens joined by spaces, `denied` joined by spaces.
pub struct CsvProcess<'a>(&'a ProcessRecord);

impl Serialize for CsvProcess<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        let args = r
            .args
            .iter()
            .map(OsText::escaped)
            .collect::<Vec<_>>()
            .join(" ");
        let ports = r.ports.as_ref().map(|ports| {
            ports
                .iter()
                .flat_map(|p| p.tokens())
                .collect::<Vec<_>>()
                .join(" ")
        });
        let mut s = serializer.serialize_struct("ProcessRecord", 32)?;
        s.serialize_field("pid", &r.pid)?;
        s.serialize_field("ppid", &r.ppid)?;
        s.serialize_field("pgid", &r.pgid)?;
        s.serialize_field("sid", &r.sid)?;
        s.serialize_field("tty", &r.tty)?;
        s.serialize_field("uid", &r.uid)?;
        s.serialize_field("user", &r.user)?;
        s.serialize_field("state", &r.state)?;
        s.serialize_field("kthread", &r.kthread)?;
        s.serialize_field("nice", &r.nice)?;
        s.serialize_field("priority", &r.priority)?;
        s.serialize_field("threads", &r.threads)?;
        s.serialize_field("start_time", &r.start_time)?;
        s.serialize_field("started", &r.started)?;
        s.serialize_field("cpu_time_ms", &r.cpu_time_ms)?;
        s.serialize_field("rss_kib", &r.rss_kib)?;
        s.serialize_field("vsz_kib", &r.vsz_kib)?;
        s.serialize_field("comm", &r.comm.escaped())?;
        s.serialize_field("args", &args)?;
        s.serialize_field("exe", &r.exe.as_ref().map(OsText::escaped))?;
        s.serialize_field("denied", &r.denied.join(" "))?;
        s.serialize_field("depth", &r.depth)?;
        s.serialize_field("matched", &r.matched)?;
        s.serialize_field("tid", &r.tid)?;
        s.serialize_field("ports", &ports)?;
        s.serialize_field("cpu_percent", &r.cpu_percent)?;
        s.serialize_field("mem_percent", &r.mem_percent)?;
        s.serialize_field("elapsed_s", &r.elapsed_s)?;
        s.serialize_field("stat", &r.stat)?;
        s.serialize_field("gid", &r.gid)?;
        s.serialize_field("group", &r.group)?;
        s.serialize_field("policy", &r.policy)?;
        s.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::record::test_support::text_of;

    fn sample() -> ProcessRecord {
        ProcessRecord {
            pid: 4242,
            ppid: 1,
            pgid: 4242,
            sid: 4242,
            tty: Some("pts/0".into()),
            uid: 65534,
            user: Some("nobody".into()),
            state: "S".into(),
            kthread: false,
            nice: 0,
            priority: 20,
            threads: 1,
            start_time: 1234,
            started: "2026-11-27T17:14:54.120Z".into(),
            cpu_time_ms: 30,
            rss_kib: 1024,
            vsz_kib: 4096,
            comm: OsText(b"x) (y".to_vec()),
            args: vec![
                OsText(b"./x) (y".to_vec()),
                OsText(b"a\nb".to_vec()),
                OsText(b"\xff".to_vec()),
            ],
            exe: None,
            denied: vec!["exe".into()],
            depth: 1,
            matched: true,
            tid: None,
            ports: None,
            cpu_percent: 1.5,
            mem_percent: 0.2,
            elapsed_s: 3600,
            stat: "Ss+".into(),
            gid: 65534,
            group: Some("nogroup".into()),
            policy: 0,
        }
    }

    #[test]
    fn json_is_lossless_for_invalid_utf8() {
        let record = sample();
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["comm"], "x) (y");
        assert_eq!(json["args"][1], "a\nb");
        assert_eq!(json["args"][2]["base64"], "/w==");
        assert_eq!(json["args"][2]["lossy"], "\u{fffd}");
        assert_eq!(json["exe"], serde_json::Value::Null);
        let back: ProcessRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back, record);
    }

    #[test]
    fn text_escapes_and_marks_what_was_denied() {
        assert_eq!(
            text_of(&sample()),
            "4242 1 nobody S 20 0 1 4096 1024 2026-11-27T17:14:54.120Z pts/0 30 ? \
             ./x)\\x20(y a\\nb \\xff\n"
        );
        let mut kernel = sample();
        kernel.args.clear();
        kernel.denied.clear();
        kernel.comm = OsText(b"kworker/0:1".to_vec());
        assert!(text_of(&kernel).ends_with(" 30 - [kworker/0:1]\n"));
    }

    #[test]
    fn csv_has_the_json_keys_and_flat_cells() {
        let record = sample();
        let mut out = Vec::new();
        {
            let mut writer = csv::Writer::from_writer(&mut out);
            writer.serialize(record.csv()).unwrap();
        }
        let mut reader = csv::Reader::from_reader(out.as_slice());
        let json = serde_json::to_value(&record).unwrap();
        let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
        assert_eq!(reader.headers().unwrap().iter().collect::<Vec<_>>(), keys);
        let row = reader.records().next().unwrap().unwrap();
        assert_eq!(&row[18], "./x)\\x20(y a\\nb \\xff");
        assert_eq!(&row[19], "");
        assert_eq!(&row[20], "exe");
        assert_eq!(&row[24], "");
    }

    #[test]
    fn ports_end_the_line_where_svcname_finds_them() {
        let mut record = sample();
        record.args = vec![OsText(b"nginx".to_vec())];
        record.ports = Some(vec![
            ListenPort {
                proto: SocketProto::Tcp,
                address: "0.0.0.0".parse().unwrap(),
                port: 80,
            },
            ListenPort {
                proto: SocketProto::Udp,
                address: "::".parse().unwrap(),
                port: 53,
            },
        ]);
        assert!(
            text_of(&record).ends_with(" ? nginx ports: tcp 0.0.0.0:80 udp [::]:53\n"),
            "{}",
            text_of(&record)
        );
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(
            json["ports"],
            serde_json::json!([
                {"proto": "tcp", "address": "0.0.0.0", "port": 80},
                {"proto": "udp", "address": "::", "port": 53},
            ])
        );
        let back: ProcessRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back, record);
        let mut out = Vec::new();
        csv::Writer::from_writer(&mut out)
            .serialize(record.csv())
            .unwrap();
        let row = csv::Reader::from_reader(out.as_slice())
            .records()
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(&row[24], "tcp 0.0.0.0:80 udp [::]:53");
        record.ports = None;
        record.denied.push("ports".into());
        assert!(text_of(&record).ends_with(" nginx ports: ?\n"));
        record.ports = Some(Vec::new());
        record.denied.clear();
        assert!(text_of(&record).ends_with(" nginx\n"));
    }
}
