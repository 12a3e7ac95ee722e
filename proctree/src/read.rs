//! The /proc reader: one pass over /proc with direct reads of the few files the chosen output
//! needs (stat always; status, cmdline and exe only when asked), because every extra file per
//! process costs as much as the stat read itself. A process that exits while it is read is
//! skipped, not reported: that is what processes do.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::stat::{self, NoStat, Stat};

/// Which files to read beyond stat.
#[derive(Debug, Clone, Copy, Default)]
pub struct Want {
    /// /proc/PID/status, for the effective uid and gid and the locked memory.
    pub status: bool,
    /// /proc/PID/cmdline, for the argument vector.
    pub cmdline: bool,
    /// The /proc/PID/exe link.
    pub exe: bool,
    /// /proc/PID/task/*, for the threads.
    pub threads: bool,
}

/// The executable link, read or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exe {
    NotRead,
    Path(Vec<u8>),
    /// No executable: a kernel thread or a zombie.
    Absent,
    /// The link exists but only its owner (or root) may follow it.
    Denied,
}

/// One process as read, with what was not asked for left empty.
#[derive(Debug, Clone)]
pub struct Process {
    pub stat: Stat,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Memory locked into RAM (VmLck), ps's `L` flag; false when status was not read.
    pub locked: bool,
    /// Resident memory in KiB as status counts it (VmRSS, exact), which stat's rss field
    /// only estimates (per-CPU counters not yet folded in); 0 for a task without memory.
    pub rss_kib: Option<u64>,
    pub args: Vec<Vec<u8>>,
    pub exe: Exe,
    /// The threads (other than the main one) when asked for, ordered by tid.
    pub tasks: Vec<Stat>,
}

/// Everything read in one pass, and the problems worth telling the user about.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Ordered by pid.
    pub processes: Vec<Process>,
    pub problems: Vec<String>,
}

/// Reads every process under `root` (normally /proc). A few thousand processes are read
/// by up to four threads, each a run of pids: the reads are system calls that run in
/// parallel, and most of proctree's time with `-o` (status and cmdline are as costly
/// as stat each).
pub fn read_all(root: &Path, want: Want) -> io::Result<Snapshot> {
    let mut pids: Vec<u32> = fs::read_dir(root)?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(4)
        .min(pids.len() / PIDS_PER_THREAD)
        .max(1);
    let read = |pids: &[u32]| {
        let mut reader = Reader {
            path: root.to_path_buf(),
            buffer: vec![0; 4096],
            filled: 0,
        };
        let mut snapshot = Snapshot::default();
        for &pid in pids {
            match reader.process(pid, want) {
                Ok(Some(process)) => snapshot.processes.push(process),
                Ok(None) => {}
                Err(problem) => snapshot.problems.push(problem),
            }
        }
        snapshot
    };
    if threads == 1 {
        return Ok(read(&pids));
    }
    let parts: Vec<Snapshot> = std::thread::scope(|scope| {
        let handles: Vec<_> = pids
            .chunks(pids.len().div_ceil(threads))
            .map(|chunk| scope.spawn(move || read(chunk)))
            .collect();
        // A reader does not panic; should one, its panic is carried on here.
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|e| std::panic::resume_unwind(e))
            })
            .collect()
    });
    let mut snapshot = Snapshot::default();
    for part in parts {
        snapshot.processes.extend(part.processes);
        snapshot.problems.extend(part.problems);
    }
    Ok(snapshot)
}

/// Below this many processes a thread, starting threads costs more than they save.
const PIDS_PER_THREAD: usize = 500;

/// Reads with one buffer reused for every file.
struct Reader {
    path: PathBuf,
    buffer: Vec<u8>,
    /// How much of `buffer` the last read filled.
    filled: usize,
}

/// What a failed read means.
enum Failure {
    /// The process is gone (or became a zombie that no longer has the file, or was reaped
    /// while its stat was written).
    Vanished,
    Denied,
    Other(io::Error),
}

impl From<io::Error> for Failure {
    fn from(error: io::Error) -> Self {
        // ESRCH: a read of a task that is being torn down.
        if error.kind() == io::ErrorKind::NotFound || error.raw_os_error() == Some(nix::libc::ESRCH)
        {
            Self::Vanished
        } else if error.kind() == io::ErrorKind::PermissionDenied {
            Self::Denied
        } else {
            Self::Other(error)
        }
    }
}

impl Reader {
    /// One process, `None` if it vanished, `Err` with a message for anything else.
    fn process(&mut self, pid: u32, want: Want) -> Result<Option<Process>, String> {
        match self.try_process(pid, want) {
            Ok(process) => Ok(Some(process)),
            Err((_, Failure::Vanished)) => Ok(None),
            Err((file, Failure::Denied)) => Err(format!("/proc/{pid}/{file}: permission denied")),
            Err((file, Failure::Other(error))) => Err(format!(
                "/proc/{pid}/{file}: {}",
                common::contract::error::describe_io_error(&error)
            )),
        }
    }

    fn try_process(&mut self, pid: u32, want: Want) -> Result<Process, (&'static str, Failure)> {
        let stat = self.stat(pid, None).map_err(|f| ("stat", f))?;
        let ids = if want.status {
            Some(self.status(pid).map_err(|f| ("status", f))?)
        } else {
            None
        };
        let args = if want.cmdline {
            self.read(pid, "cmdline").map_err(|f| ("cmdline", f))?;
            split_args(self.data())
        } else {
            Vec::new()
        };
        // Kernel threads and zombies have no executable; asking would only be refused for
        // another user's task, which would wrongly read as "denied".
        let exe = if want.exe && (stat.is_kthread() || stat.state == b'Z') {
            Exe::Absent
        } else if want.exe {
            self.exe(pid).map_err(|f| ("exe", f))?
        } else {
            Exe::NotRead
        };
        let tasks = if want.threads && stat.threads > 1 {
            self.tasks(pid).map_err(|f| ("task", f))?
        } else {
            Vec::new()
        };
        Ok(Process {
            stat,
            uid: ids.map(|ids| ids.uid),
            gid: ids.map(|ids| ids.gid),
            locked: ids.is_some_and(|ids| ids.locked),
            rss_kib: ids.map(|ids| ids.rss_kib),
            args,
            exe,
            tasks,
        })
    }

    fn read(&mut self, pid: u32, file: &str) -> Result<(), Failure> {
        let path = self.file(pid, file);
        let mut file = File::open(&path)?;
        // Plain reads into a buffer kept across files: read_to_end would first ask for the
        // size (statx, lseek), which /proc does not know, doubling the system calls.
        let mut filled = 0;
        loop {
            if filled == self.buffer.len() {
                self.buffer.resize(filled.max(4096) * 2, 0);
            }
            match file.read(&mut self.buffer[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error.into()),
            }
        }
        self.filled = filled;
        Ok(())
    }

    fn data(&self) -> &[u8] {
        &self.buffer[..self.filled]
    }

    fn dir(&self, pid: u32) -> PathBuf {
        let mut path = self.path.clone();
        path.push(pid.to_string());
        path
    }

    fn file(&self, pid: u32, file: &str) -> PathBuf {
        let mut path = self.dir(pid);
        path.push(file);
        path
    }

    fn stat(&mut self, pid: u32, tid: Option<u32>) -> Result<Stat, Failure> {
        match tid {
            None => self.read(pid, "stat")?,
            Some(tid) => self.read(pid, &format!("task/{tid}/stat"))?,
        }
        if self.filled == 0 {
            return Err(Failure::Vanished);
        }
        stat::parse(self.data()).map_err(|no| match no {
            NoStat::Released => Failure::Vanished,
            NoStat::Malformed(why) => Failure::Other(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unexpected format ({why})"),
            )),
        })
    }

    fn status(&mut self, pid: u32) -> Result<Ids, Failure> {
        self.read(pid, "status")?;
        parse_status(self.data()).ok_or_else(|| {
            Failure::Other(io::Error::new(
                io::ErrorKind::InvalidData,
                "no Uid or Gid line",
            ))
        })
    }

    fn exe(&mut self, pid: u32) -> Result<Exe, Failure> {
        match fs::read_link(self.file(pid, "exe")) {
            Ok(path) => Ok(Exe::Path(path.into_os_string().into_encoded_bytes())),
            Err(error) => match Failure::from(error) {
                // Its stat showed a live process, which has since let go of its executable
                // in its exit: skipped if it has gone meanwhile, shown if it is still there
                // (a zombie now, or stuck in its exit, which is worth seeing).
                Failure::Vanished if self.dir(pid).exists() => Ok(Exe::Absent),
                Failure::Denied => Ok(Exe::Denied),
                other => Err(other),
            },
        }
    }

    fn tasks(&mut self, pid: u32) -> Result<Vec<Stat>, Failure> {
        let mut tids: Vec<u32> = fs::read_dir(self.file(pid, "task"))?
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
            .filter(|&tid| tid != pid)
            .collect();
        tids.sort_unstable();
        let mut tasks = Vec::with_capacity(tids.len());
        for tid in tids {
            match self.stat(pid, Some(tid)) {
                Ok(stat) => tasks.push(stat),
                // A thread that ended since the listing is not a problem.
                Err(Failure::Vanished) => {}
                Err(other) => return Err(other),
            }
        }
        Ok(tasks)
    }
}

/// The argument vector of /proc/PID/cmdline: NUL-terminated arguments (a process that
/// rewrote its title may leave one unterminated string).
pub fn split_args(bytes: &[u8]) -> Vec<Vec<u8>> {
    let bytes = bytes.strip_suffix(b"\0").unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes.split(|&b| b == 0).map(<[u8]>::to_vec).collect()
}

/// The effective uid of a /proc/PID/status text, as proctree reads it (for the fuzz
/// target of /proc files).
pub fn effective_uid(status: &[u8]) -> Option<u32> {
    parse_status(status).map(|ids| ids.uid)
}

/// What proctree takes from /proc/PID/status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ids {
    uid: u32,
    gid: u32,
    locked: bool,
    rss_kib: u64,
}

/// The effective uid and gid (the second numbers of the `Uid:` and `Gid:` lines), whether
/// `VmLck:` is above 0 kB, and `VmRSS:` (kernel threads and zombies have no Vm lines).
fn parse_status(status: &[u8]) -> Option<Ids> {
    let (mut uid, mut gid, mut locked, mut rss_kib) = (None, None, false, 0);
    for line in status.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let mut numbers = line[colon + 1..]
            .split(u8::is_ascii_whitespace)
            .filter(|f| !f.is_empty());
        let mut second = || -> Option<u32> {
            numbers.next()?;
            std::str::from_utf8(numbers.next()?).ok()?.parse().ok()
        };
        match &line[..colon] {
            b"Uid" => uid = second(),
            b"Gid" => gid = second(),
            b"VmLck" => locked = numbers.next().is_some_and(|kib| kib != b"0"),
            b"VmRSS" => {
                rss_kib = numbers
                    .next()
                    .and_then(|kib| std::str::from_utf8(kib).ok()?.parse().ok())
                    .unwrap_or_default();
            }
            _ => {}
        }
    }
    Some(Ids {
        uid: uid?,
        gid: gid?,
        locked,
        rss_kib,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_vectors_keep_empty_and_odd_arguments() {
        let cases: &[(&[u8], &[&[u8]])] = &[
            (b"", &[]),
            (b"sleep\x0030\x00", &[b"sleep", b"30"]),
            (b"a\x00\x00b\x00", &[b"a", b"", b"b"]),
            (b"nginx: worker process", &[b"nginx: worker process"]),
            (b"x\n\xff\x00", &[b"x\n\xff"]),
        ];
        for (input, expected) in cases {
            assert_eq!(split_args(input), *expected, "{input:?}");
        }
    }

    /// A /proc of stat files: a live process, one with a thread that was reaped while it
    /// was read, two processes reaped while they were read, and a line that is broken.
    #[test]
    fn tasks_reaped_while_they_are_read_are_skipped_silently() {
        let root = std::env::temp_dir().join(format!("proctree-read-{}", std::process::id()));
        // proc_pid_stat(5) from pid to session is given; the rest, with `threads`, is filled.
        let line = |head: &str, threads: u32| {
            format!("{head} 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 {threads} 0 5 0 0")
        };
        let files = [
            ("100/stat", line("100 (sh) S 1 100 100", 1)),
            ("103/stat", line("103 (app) S 1 103 100", 2)),
            ("103/task/103/stat", line("103 (app) S 1 103 100", 2)),
            ("103/task/104/stat", line("104 (worker) X 0 -1 -1", 0)),
            ("110/stat", line("110 (true) Z 0 -1 -1", 0)),
            ("111/stat", line("111 (true) X 0 -1 -1", 0)),
            ("120/stat", "120 (odd) S 1 -1 100 0".to_owned()),
        ];
        for (path, text) in files {
            let path = root.join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }
        let want = Want {
            threads: true,
            ..Want::default()
        };
        let snapshot = read_all(&root, want).unwrap();
        fs::remove_dir_all(&root).unwrap();
        let pids: Vec<u32> = snapshot.processes.iter().map(|p| p.stat.pid).collect();
        assert_eq!(pids, [100, 103]);
        assert!(snapshot.processes[1].tasks.is_empty());
        assert_eq!(
            snapshot.problems,
            ["/proc/120/stat: unexpected format (pgrp)"]
        );
    }

    /// Enough processes for several reading threads: every one read, in pid order.
    #[test]
    fn many_processes_are_read_in_parallel_and_kept_in_order() {
        let root = std::env::temp_dir().join(format!("proctree-many-{}", std::process::id()));
        let count = PIDS_PER_THREAD * 4 + 7;
        for pid in 1..=count {
            let dir = root.join(pid.to_string());
            fs::create_dir_all(&dir).unwrap();
            let line =
                format!("{pid} (p) S 1 {pid} {pid} 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0");
            fs::write(dir.join("stat"), line).unwrap();
        }
        let snapshot = read_all(&root, Want::default()).unwrap();
        fs::remove_dir_all(&root).unwrap();
        let pids: Vec<usize> = snapshot
            .processes
            .iter()
            .map(|p| usize::try_from(p.stat.pid).unwrap())
            .collect();
        assert_eq!(pids, (1..=count).collect::<Vec<_>>());
        assert!(snapshot.problems.is_empty());
    }

    #[test]
    fn the_effective_ids_are_the_second() {
        let status =
            b"Name:\tsu\nUmask:\t0022\nState:\tS\nUid:\t1000\t0\t0\t0\nGid:\t100\t5\t5\t5\n";
        let ids = |uid, gid, locked, rss_kib| {
            Some(Ids {
                uid,
                gid,
                locked,
                rss_kib,
            })
        };
        assert_eq!(parse_status(status), ids(0, 5, false, 0));
        let locked = b"Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nVmPeak:\t  46620 kB\n\
                       VmLck:\t   10288 kB\nVmRSS:\t   11196 kB\n";
        assert_eq!(parse_status(locked), ids(0, 0, true, 11_196));
        let unlocked = b"Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nVmLck:\t       0 kB\n";
        assert_eq!(parse_status(unlocked), ids(0, 0, false, 0));
        assert_eq!(parse_status(b"Name:\tx\nUid:\t0\t0\t0\t0\n"), None);
    }
}
