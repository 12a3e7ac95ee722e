//! The parser of /proc/PID/stat, the one file that holds nearly everything the tree needs.
//! The name (comm) sits between parentheses and may itself hold `)`, spaces or newlines,
//! so the fields start after the LAST `)` (proc_pid_stat(5); ss gets this wrong).

/// The fields of /proc/PID/stat that proctree uses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stat {
    pub pid: u32,
    pub comm: Vec<u8>,
    pub state: u8,
    pub ppid: u32,
    pub pgid: u32,
    pub sid: u32,
    pub tty_nr: u32,
    /// The foreground process group of the terminal; -1 without one (ps's `+` flag).
    pub tpgid: i32,
    pub flags: u32,
    pub utime: u64,
    pub stime: u64,
    pub priority: i32,
    pub nice: i32,
    pub threads: u32,
    pub start_time: u64,
    pub vsize: u64,
    pub rss_pages: u64,
    /// The scheduling policy (field 41): 0 normal, 1 FIFO, 2 round robin, 3 batch, 5 idle,
    /// 6 deadline; 0 when a kernel before 2.5.19 leaves it out.
    pub policy: u32,
}

/// The kernel's flag for a kernel thread, as stat's unsigned field holds it.
const PF_KTHREAD: u32 = nix::libc::PF_KTHREAD as u32;

impl Stat {
    pub fn is_kthread(&self) -> bool {
        self.flags & PF_KTHREAD != 0
    }
}

/// Why a line gave no [`Stat`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoStat {
    /// The task was released (reaped) while the kernel wrote the line: it is gone.
    Released,
    /// The line is not what proc_pid_stat(5) describes: the field that did not parse.
    Malformed(&'static str),
}

/// Parses one /proc/PID/stat (or /proc/PID/task/TID/stat) line.
pub fn parse(line: &[u8]) -> Result<Stat, NoStat> {
    match fields(line) {
        Ok(Some(stat)) => Ok(stat),
        Ok(None) => Err(NoStat::Released),
        Err(field) => Err(NoStat::Malformed(field)),
    }
}

/// The fields of `line`; `None` for a released task's, an error naming the first field that
/// did not parse.
fn fields(line: &[u8]) -> Result<Option<Stat>, &'static str> {
    let open = line.iter().position(|&b| b == b'(').ok_or("no '('")?;
    let close = line.iter().rposition(|&b| b == b')').ok_or("no ')'")?;
    if close < open {
        return Err("')' before '('");
    }
    let pid = number(line[..open].trim_ascii()).ok_or("pid")?;
    let comm = line[open + 1..close].to_vec();
    // Fields 3.. of proc_pid_stat(5), so that fields[n - 3] is field n.
    let mut fields = line[close + 1..]
        .split(|&b| b == b' ')
        .filter(|f| !f.is_empty());
    let mut next = |name: &'static str| fields.next().map(<[u8]>::trim_ascii).ok_or(name);
    let state = *next("state")?.first().ok_or("state")?;
    let ppid = number(next("ppid")?).ok_or("ppid")?;
    let (pgrp, session) = (next("pgrp")?, next("session")?);
    // The kernel reads pgrp and session under the task's signal lock, which a task released
    // (reaped) between the open and the read no longer has; it then prints the values it
    // started from, `0 -1 -1` for ppid, pgrp and session (fs/proc/array.c, do_task_stat).
    // No live task is in a negative group: this task has gone.
    if pgrp == b"-1" && session == b"-1" {
        return Ok(None);
    }
    let pgid = number(pgrp).ok_or("pgrp")?;
    let sid = number(session).ok_or("session")?;
    // tty_nr is printed as a signed int; a terminal's device number is never negative.
    let tty_nr = signed(next("tty_nr")?).ok_or("tty_nr")?;
    let tpgid = signed(next("tpgid")?).ok_or("tpgid")?;
    let flags = number(next("flags")?).ok_or("flags")?;
    for name in ["minflt", "cminflt", "majflt", "cmajflt"] {
        next(name)?;
    }
    let utime = number(next("utime")?).ok_or("utime")?;
    let stime = number(next("stime")?).ok_or("stime")?;
    next("cutime")?;
    next("cstime")?;
    let priority = signed(next("priority")?).ok_or("priority")?;
    let nice = signed(next("nice")?).ok_or("nice")?;
    let threads = number(next("num_threads")?).ok_or("num_threads")?;
    next("itrealvalue")?;
    let start_time = number(next("starttime")?).ok_or("starttime")?;
    let vsize = number(next("vsize")?).ok_or("vsize")?;
    let rss_pages = number(next("rss")?).ok_or("rss")?;
    // Fields 25 (rsslim) to 40 (rt_priority) lie between rss and the policy.
    let policy = match fields.nth(16) {
        Some(policy) => number(policy.trim_ascii()).ok_or("policy")?,
        None => 0,
    };
    Ok(Some(Stat {
        pid,
        comm,
        state,
        ppid,
        pgid,
        sid,
        tty_nr: u32::try_from(tty_nr).unwrap_or(0),
        tpgid,
        flags,
        utime,
        stime,
        priority,
        nice,
        threads,
        start_time,
        vsize,
        rss_pages,
        policy,
    }))
}

fn number<T: std::str::FromStr>(field: &[u8]) -> Option<T> {
    std::str::from_utf8(field).ok()?.parse().ok()
}

fn signed(field: &[u8]) -> Option<i32> {
    number(field)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stat line for `comm` with otherwise realistic fields.
    fn line(comm: &[u8]) -> Vec<u8> {
        let mut line = b"4242 (".to_vec();
        line.extend_from_slice(comm);
        line.extend_from_slice(
            b") S 1 4240 4239 34816 4240 4194560 101 0 0 0 7 3 0 0 20 0 2 0 154003 \
              3133440 363 18446744073709551615 94362101858304 94362101878185 0 0 0 0 0 0 0 \
              0 0 0 17 1 0 0 0 0 0\n",
        );
        line
    }

    #[test]
    fn hostile_names_never_shift_the_fields() {
        let names: &[&[u8]] = &[
            b"sleep",
            b"a) b",
            b"x) (y",
            b")",
            b"(",
            b"()",
            b"a\nb",
            b"",
            b"0123456789abcdef",
            b"pool_workqueue_release",
            b") R 99 99 99 99",
            b"\xff\xfe",
            b" ",
        ];
        for name in names {
            let stat = parse(&line(name)).unwrap_or_else(|e| panic!("{name:?}: {e:?}"));
            assert_eq!(stat.comm, *name, "{name:?}");
            assert_eq!(stat.pid, 4242);
            assert_eq!(stat.state, b'S', "{name:?}");
            assert_eq!(
                (stat.ppid, stat.pgid, stat.sid, stat.tty_nr),
                (1, 4240, 4239, 34816),
                "{name:?}"
            );
            assert_eq!((stat.utime, stat.stime), (7, 3));
            assert_eq!((stat.priority, stat.nice, stat.threads), (20, 0, 2));
            assert_eq!(
                (stat.start_time, stat.vsize, stat.rss_pages),
                (154_003, 3_133_440, 363)
            );
            assert!(!stat.is_kthread());
            assert_eq!((stat.tpgid, stat.policy), (4240, 0));
        }
    }

    #[test]
    fn kernel_threads_are_known_by_their_flag() {
        let stat = parse(
            b"2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 1 0 0 \
              18446744073709551615 0 0 0 0 0 0 0 2147483647 0 0 0 0 17 1 0 0 0 0 0",
        )
        .unwrap();
        assert!(stat.is_kthread());
        assert_eq!((stat.pid, stat.ppid, stat.tty_nr), (2, 0, 0));
    }

    #[test]
    fn real_time_priorities_and_negative_nice() {
        let stat = parse(
            b"17 (migration/0) S 2 0 0 0 -1 69238848 0 0 0 0 0 5 0 0 -100 -20 1 0 3 0 0 \
              18446744073709551615",
        )
        .unwrap();
        assert_eq!((stat.priority, stat.nice, stat.policy), (-100, -20, 0));
        let stat = parse(
            b"18 (migration/0) S 2 0 0 0 -1 69238848 0 0 0 0 0 5 0 0 -100 0 1 0 3 0 0 \
              18446744073709551615 0 0 0 0 0 0 0 2147483647 0 0 0 0 17 0 99 1 0 0 0",
        )
        .unwrap();
        assert_eq!((stat.tpgid, stat.policy), (-1, 1));
    }

    #[test]
    fn a_zombie_is_a_process() {
        // Read from a child that had exited and was not yet waited for.
        let stat = parse(
            b"8238 (python3) Z 8197 8194 5353 0 -1 4227148 225 0 0 0 0 0 0 0 20 0 1 0 256939 0 \
              0 18446744073709551615 0 0 0 0 0 0 0 16781312 2 1 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 \
              0 0\n",
        )
        .unwrap();
        assert_eq!(stat.state, b'Z');
        assert_eq!((stat.ppid, stat.pgid, stat.sid), (8197, 8194, 5353));
        // A group and session outside our pid namespace read 0: a live task, not a released one.
        let stat = parse(b"1 (init) S 0 0 0 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0").unwrap();
        assert_eq!((stat.ppid, stat.pgid, stat.sid), (0, 0, 0));
    }

    #[test]
    fn a_task_reaped_while_it_was_read_is_released() {
        // Caught from /proc/PID/stat of children reaped by their parent while being read,
        // in both states a task shows then, and from /proc/PID/task/TID/stat of a thread.
        let lines: &[&[u8]] = &[
            b"12876 (python3) Z 0 -1 -1 0 -1 4227148 215 0 0 0 0 0 0 0 20 0 0 0 266934 0 0 0 0 \
              0 0 0 0 0 0 0 0 1 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
            b"8631 (python3) X 0 -1 -1 0 -1 4227148 222 0 0 0 0 0 0 0 20 0 0 0 257792 0 0 0 0 \
              0 0 0 0 0 0 0 0 1 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
            b"30440 (python3) X 0 -1 -1 0 -1 4194380 1 6514 0 0 0 0 5 1 20 0 0 0 262492 0 0 0 \
              0 0 0 0 0 0 2147221247 0 0 0 0 0 -1 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
        ];
        for line in lines {
            assert_eq!(parse(line), Err(NoStat::Released), "{line:?}");
        }
    }

    #[test]
    fn broken_lines_are_errors() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "no '('"),
            (b"12 (x", "no ')'"),
            (b"12 )x( S", "')' before '('"),
            (b"abc (x) S 1 1 1 0", "pid"),
            (b"12 (x) S 1 1", "session"),
            (b"12 (x) S one 1 1 0", "ppid"),
            (b"12 (x) S 1 -1 7 0", "pgrp"),
            (b"12 (x) S 1 7 -1 0", "session"),
            (
                b"12 (x) S 1 1 1 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0",
                "starttime",
            ),
        ];
        for (input, why) in cases {
            assert_eq!(parse(input), Err(NoStat::Malformed(why)), "{input:?}");
        }
    }
}
