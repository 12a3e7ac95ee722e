//! proctree's ps columns held against ps itself (issue 17): the same `-o` lists run through
//! both, every process compared column by column, and `--sort -%mem` ordered as ps orders
//! it. ps reads /proc before and after proctree; a process is compared when ps saw it the
//! same both times, and a value that moves by itself (CPU, elapsed time, memory) must lie
//! between ps's two readings.

use std::collections::HashMap;
use std::process::Command;

use crate::fixtures::require_program;
use crate::proctree::{Group, LIFETIME, poll, scratch, spawn_group};
use crate::util::{LIMIT, code, run, stderr_text, stdout_text, tool};

/// The test's own processes, each for a STAT flag or an odd command line: a niced sleeper
/// (N), a session leader (s), a multi-threaded process (l), a sleeper in the foreground of
/// a terminal (pts/N, +), a zombie, arguments that are empty or hold spaces, a tab and a
/// byte beyond UTF-8. Twelve processes with the bash that leads them.
const FAMILY: &str = r#"
sleep $LIFETIME &
nice -n 5 sleep $LIFETIME &
setsid sleep $LIFETIME &
(exec -a "$(printf 'two  spaces\there\377')" sleep "$LIFETIME") &
sh -c 'sleep "$0"; :' "$LIFETIME" '' 'an  arg' &
sh -c '/bin/true & exec sleep "$0"' "$LIFETIME" &
script -qec "exec sleep $LIFETIME" /dev/null </dev/null >/dev/null &
PROCTREE_THREAD_HOLDER=1 "$HOLDER" --exact proctree::thread_holder --test-threads=1 -q &
wait
"#;

/// The `-o` lists compared: the issue's, then every other ps name proctree takes, then
/// names separated by blanks. A column that may hold blanks (`start`, `args`, `comm`) is
/// last; `lstart` is always five words.
const LISTS: &[&str] = &[
    "pid,ppid,user,%cpu,%mem,rss,vsz,etimes,args",
    "pid,pgid,sid,uid,gid,group,tty,stat,ni,pri,cls,nlwp,etime,time,start_time,stime,comm",
    "pid,pgrp,sess,euid,euser,egid,egroup,tname,s,nice,rssize,vsize,pcpu,pmem,cputime,lstart,start",
    "pid,tid,lwp,tt,state,thcount,rsz,ucmd",
    "pid,uname,command",
    "pid,cmd",
    // A blank separates names as a comma does.
    "pid user,tty stat comm",
];

/// Columns whose value moves by itself between two reads; every other one must not.
fn moves(column: &str) -> bool {
    matches!(
        column,
        "%cpu"
            | "pcpu"
            | "%mem"
            | "pmem"
            | "rss"
            | "rssize"
            | "rsz"
            | "vsz"
            | "vsize"
            | "etimes"
            | "etime"
            | "time"
            | "cputime"
            | "nlwp"
            | "thcount"
    )
}

/// The header, and the rows by pid, of one run of `command` printing `list`.
type Table = (Vec<String>, HashMap<u32, Vec<String>>);

/// Splits a line into the columns of `list`: one word each, five for `lstart`, and the
/// rest of the line (blanks and all, trimmed) for the last.
fn split(line: &str, list: &[&str]) -> Option<Vec<String>> {
    let mut rest = line.trim_start();
    let mut cells = Vec::new();
    for (i, column) in list.iter().enumerate() {
        if i + 1 == list.len() {
            cells.push(rest.trim().to_owned());
            break;
        }
        let words = if *column == "lstart" { 5 } else { 1 };
        let mut cell = Vec::new();
        for _ in 0..words {
            let end = rest.find(' ').unwrap_or(rest.len());
            cell.push(&rest[..end]);
            rest = rest[end..].trim_start();
        }
        cells.push(cell.join(" "));
    }
    (cells.len() == list.len()).then_some(cells)
}

fn table(command: &mut Command, list: &[&str]) -> Table {
    let output = run(command.env("LC_ALL", "C"), LIMIT);
    assert_eq!(code(&output), 0, "{command:?}: {}", stderr_text(&output));
    let text = stdout_text(&output);
    let mut lines = text.lines();
    let header = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let rows = lines
        .map(|line| split(line, list).unwrap_or_else(|| panic!("{command:?}: {line:?}")))
        .map(|row| (row[0].parse().unwrap(), row))
        .collect();
    (header, rows)
}

fn ps(list: &str) -> Command {
    let mut ps = Command::new("ps");
    ps.args(["-e", "-o", list]);
    ps
}

/// Undoes proctree's text escaping (docs/FORMAT.md, "Text that is not UTF-8").
fn unescape(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1)) {
            (b'\\', Some(b'\\')) => (out.push(b'\\'), i += 2).1,
            (b'\\', Some(b't')) => (out.push(b'\t'), i += 2).1,
            (b'\\', Some(b'n')) => (out.push(b'\n'), i += 2).1,
            (b'\\', Some(b'r')) => (out.push(b'\r'), i += 2).1,
            (b'\\', Some(b'x')) => {
                let hex = std::str::from_utf8(&bytes[i + 2..i + 4]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 4;
            }
            (byte, _) => (out.push(byte), i += 1).1,
        }
    }
    out
}

/// Whether proctree's escaped command (or name) is what ps shows in the C locale: the same
/// bytes, where ps puts `?`, `.` or (for a newline) a blank for each that is not
/// printable ASCII.
fn same_command(ours: &str, theirs: &str) -> bool {
    // A kworker's name ends with the work queue it serves at the moment, after a `-`, or a
    // `+` while it is busy (`kworker/1:1+events_freezable`).
    let worker = |name: &str| -> Option<String> {
        let (open, rest) = name
            .strip_prefix("kworker/")
            .map(|rest| ("", rest))
            .or_else(|| Some(("[", name.strip_prefix("[kworker/")?)))?;
        Some(format!("{open}kworker/{}", rest.split(['-', '+']).next()?))
    };
    if let (Some(ours), Some(theirs)) = (worker(ours), worker(theirs)) {
        return ours == theirs;
    }
    let ours = unescape(ours);
    // The line ends where ps's blanks (and ours, where ps shows blanks) end.
    let end = ours
        .iter()
        .rposition(u8::is_ascii_graphic)
        .map_or(0, |i| i + 1);
    let ours = &ours[..end];
    let theirs = theirs.as_bytes();
    ours.len() == theirs.len()
        && ours.iter().zip(theirs).all(|(&o, &t)| {
            if (0x20..0x7f).contains(&o) {
                o == t
            } else {
                matches!(t, b'?' | b'.' | b' ')
            }
        })
}

/// `[[dd-]hh:]mm:ss` in seconds.
fn clock_seconds(text: &str) -> u64 {
    let (days, clock) = text.split_once('-').unwrap_or(("0", text));
    let days: u64 = days.parse().unwrap();
    let parts: Vec<u64> = clock.split(':').map(|part| part.parse().unwrap()).collect();
    let (hours, minutes, seconds) = match parts[..] {
        [minutes, seconds] => (0, minutes, seconds),
        [hours, minutes, seconds] => (hours, minutes, seconds),
        _ => panic!("not [[dd-]hh:]mm:ss: {text}"),
    };
    ((days * 24 + hours) * 60 + minutes) * 60 + seconds
}

/// ps's ELAPSED for that many seconds.
fn etime_form(seconds: u64) -> String {
    let (d, h, m, s) = (
        seconds / 86_400,
        seconds % 86_400 / 3600,
        seconds % 3600 / 60,
        seconds % 60,
    );
    match (d, h) {
        (0, 0) => format!("{m:02}:{s:02}"),
        (0, _) => format!("{h:02}:{m:02}:{s:02}"),
        _ => format!("{d}-{h:02}:{m:02}:{s:02}"),
    }
}

/// Whether `ours` lies between ps's two readings `a` and `b`, give or take `slack`.
fn between(ours: f64, a: f64, b: f64, slack: f64) -> bool {
    a.min(b) - slack <= ours && ours <= a.max(b) + slack
}

/// Why `column`'s value `ours` disagrees with ps's readings `a` (before) and `b` (after);
/// `own`: one of the test's idle processes, whose memory does not move.
fn disagreement(column: &str, ours: &str, a: &str, b: &str, own: bool) -> Option<String> {
    let number = |text: &str| -> f64 { text.parse().unwrap_or(f64::NAN) };
    let agrees = match column {
        // Another process that ps saw busy (its %CPU moved between the two readings): a
        // young one's %CPU swings by more than a tenth within the run, and ps and proctree
        // read its clock a moment apart (a failure seen: 33.9 against 39.5 then 40.0).
        "%cpu" | "pcpu" if !own && a != b => true,
        "%cpu" | "pcpu" => {
            let (o, a, b) = (number(ours), number(a), number(b));
            between(o, a, b, 0.2 + a.max(b) / 10.0)
        }
        "etimes" => between(number(ours), number(a), number(b), 1.0),
        "etime" => {
            let seconds = clock_seconds(ours);
            #[expect(clippy::cast_precision_loss, reason = "seconds of a process's life")]
            let within = between(
                seconds as f64,
                clock_seconds(a) as f64,
                clock_seconds(b) as f64,
                1.0,
            );
            within && etime_form(seconds) == ours
        }
        "time" | "cputime" => {
            #[expect(clippy::cast_precision_loss, reason = "seconds of CPU time")]
            let [o, a, b] = [ours, a, b].map(|t| clock_seconds(t) as f64);
            between(o, a, b, 1.0)
        }
        "rss" | "rssize" | "rsz" | "vsz" | "vsize" | "%mem" | "pmem" | "nlwp" | "thcount"
            if own =>
        {
            ours == a && ours == b
        }
        // Threads come and go in another process (a compiler's workers).
        "nlwp" | "thcount" => true,
        // Memory goes up and down (an exec drops it all): another process's is compared
        // only when ps saw it unchanged, and then within a tenth.
        "rss" | "rssize" | "rsz" | "vsz" | "vsize" | "%mem" | "pmem" if a != b => true,
        "rss" | "rssize" | "rsz" | "vsz" | "vsize" => {
            let (o, a) = (number(ours), number(a));
            (o - a).abs() <= 64.0 + a / 10.0
        }
        "%mem" | "pmem" => {
            let (o, a) = (number(ours), number(a));
            (o - a).abs() <= 0.1 + a / 10.0
        }
        "args" | "cmd" | "command" | "comm" | "ucmd" => same_command(ours, a),
        // ps cuts a name longer than its column to 7 characters and a `+`.
        "user" | "euser" | "uname" | "group" | "egroup" => match a.strip_suffix('+') {
            Some(cut) if a.len() == 8 => ours.starts_with(cut) && ours.len() > 8,
            _ => ours == a,
        },
        // A process ps saw asleep twice may have been running, or waiting on a disk, when
        // proctree looked; its flags do not move.
        "stat" | "s" | "state" => {
            let transient = |state: &str| state.starts_with(['R', 'D']);
            ours.get(1..) == a.get(1..) && (ours == a || transient(ours) || transient(a))
        }
        _ => ours == a,
    };
    (!agrees).then(|| format!("{column}: proctree {ours:?}, ps {a:?} then {b:?}"))
}

#[test]
fn ps_columns_agree_with_ps() {
    require_program("ps", &["--version"]);
    require_program("script", &["--version"]);
    let holder = std::env::current_exe().unwrap();
    let family: Group = spawn_group(
        scratch("ps-columns"),
        &FAMILY.replace("$LIFETIME", LIFETIME),
        &[("HOLDER", &holder)],
    );
    let leader = family.pid().to_string();
    // Ready when every process has settled: each sleeper asleep, the zombie a zombie, the
    // thread holder with its threads.
    let found = poll(&["--json", "-o", "pid,comm,stat,args", &leader], |found| {
        found.len() == 12
            && found.iter().filter(|r| r["stat"] == "Z").count() == 1
            && found.iter().any(|r| r["stat"] == "Ss+")
            && found
                .iter()
                .any(|r| r["stat"] == "SNs" || r["stat"] == "SN")
            && found.iter().any(|r| r["stat"] == "Sl")
            && found
                .iter()
                .all(|r| r["stat"].as_str().unwrap().starts_with(['S', 'Z']))
    });
    let own: Vec<u32> = found
        .iter()
        .map(|r| u32::try_from(r["pid"].as_u64().unwrap()).unwrap())
        .collect();

    for list in LISTS {
        let columns: Vec<&str> = list.split([',', ' ']).collect();
        let before = table(&mut ps(list), &columns);
        let ours = table(tool("proctree").args(["--header", "-o", list]), &columns);
        let after = table(&mut ps(list), &columns);
        assert_eq!(ours.0, before.0, "-o {list}: the headers");
        let mut compared = Vec::new();
        let mut problems = Vec::new();
        for (pid, a) in &before.1 {
            let Some(b) = after.1.get(pid) else { continue };
            let steady = columns
                .iter()
                .enumerate()
                .all(|(i, column)| moves(column) || a[i] == b[i]);
            if !steady {
                continue;
            }
            let Some(row) = ours.1.get(pid) else {
                problems.push(format!("pid {pid}: ps saw it twice, proctree not at all"));
                continue;
            };
            for (i, column) in columns.iter().enumerate() {
                let idle = own.contains(pid);
                if let Some(why) = disagreement(column, &row[i], &a[i], &b[i], idle) {
                    problems.push(format!("pid {pid}: {why}"));
                }
            }
            compared.push(*pid);
        }
        assert!(problems.is_empty(), "-o {list}:\n{}", problems.join("\n"));
        assert!(
            compared.len() >= 12,
            "-o {list}: compared only {compared:?}"
        );
        for pid in &own {
            assert!(
                compared.contains(pid),
                "-o {list}: our pid {pid} not compared"
            );
        }
    }
    drop(family);
}

/// `--sort stat` orders by the state letter alone, ties in pid order, as ps does (the whole
/// STAT string put `I` before `I<` and `S` before `S<Ll`). Processes whose state changed
/// between the two listings are left out of the comparison.
#[test]
fn sorting_by_stat_matches_ps() {
    require_program("ps", &["--version"]);
    let listing = |command: &mut Command| -> Vec<(String, char)> {
        let output = run(command.env("LC_ALL", "C"), LIMIT);
        assert_eq!(code(&output), 0, "{}", stderr_text(&output));
        stdout_text(&output)
            .lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                let pid = words.next()?.to_owned();
                let state = words.next()?.chars().next()?;
                Some((pid, state))
            })
            .collect()
    };
    let args = ["-o", "pid=,stat=", "--sort", "stat"];
    let theirs = listing(Command::new("ps").arg("-e").args(args));
    let ours = listing(tool("proctree").args(args));
    let steady: HashMap<&str, char> = theirs.iter().map(|(p, s)| (p.as_str(), *s)).collect();
    let same = |list: &[(String, char)]| -> Vec<String> {
        list.iter()
            .filter(|(pid, state)| {
                steady.get(pid.as_str()) == Some(state)
                    && ours.iter().any(|(p, s)| p == pid && s == state)
            })
            .map(|(pid, _)| pid.clone())
            .collect()
    };
    let (a, b) = (same(&theirs), same(&ours));
    assert!(a.len() >= 10, "{a:?}");
    assert_eq!(b, a);
}

/// The issue's "what is eating this machine": the same headers as ps, etime in ps's form,
/// and the order by %mem (processes with the same resident memory may come in any order).
#[test]
fn sorting_by_memory_matches_ps() {
    require_program("ps", &["--version"]);
    let list = "pid,user,%cpu,%mem,rss,etime,args";
    let columns: Vec<&str> = list.split(',').collect();
    let lines = |command: &mut Command| -> (Vec<String>, Vec<Vec<String>>) {
        let output = run(command.env("LC_ALL", "C"), LIMIT);
        assert_eq!(code(&output), 0, "{command:?}: {}", stderr_text(&output));
        let text = stdout_text(&output);
        let mut lines = text.lines();
        let header = lines.next().unwrap().split_whitespace().map(str::to_owned);
        let rows = lines.map(|line| split(line, &columns).unwrap()).collect();
        (header.collect(), rows)
    };
    let theirs = lines(ps(list).args(["--sort", "-%mem"]));
    let ours = lines(tool("proctree").args(["--header", "-o", list, "--sort", "-%mem"]));
    assert_eq!(ours.0, theirs.0);
    assert_eq!(
        ours.0,
        ["PID", "USER", "%CPU", "%MEM", "RSS", "ELAPSED", "COMMAND"]
    );
    let rss = |row: &Vec<String>| -> u64 { row[4].parse().unwrap() };
    for rows in [&ours.1, &theirs.1] {
        for pair in rows.windows(2) {
            assert!(rss(&pair[0]) >= rss(&pair[1]), "out of order: {pair:?}");
        }
    }
    for row in &ours.1 {
        assert_eq!(row[5], etime_form(clock_seconds(&row[5])), "{row:?}");
    }
    // Where ps and proctree saw a process with the same memory, the two orders agree on
    // every pair of such processes whose memory differs.
    let theirs_by_pid: HashMap<&str, u64> =
        theirs.1.iter().map(|r| (r[0].as_str(), rss(r))).collect();
    let ranked: Vec<(usize, u64)> = ours
        .1
        .iter()
        .filter(|row| theirs_by_pid.get(row[0].as_str()) == Some(&rss(row)))
        .map(|row| {
            let position = theirs.1.iter().position(|r| r[0] == row[0]).unwrap();
            (position, rss(row))
        })
        .collect();
    assert!(ranked.len() >= 10, "too few processes in both: {ranked:?}");
    for (i, &(position, memory)) in ranked.iter().enumerate() {
        for &(later, less) in &ranked[i + 1..] {
            assert!(
                memory == less || position < later,
                "ps puts {less} KiB (at {later}) before {memory} KiB (at {position})"
            );
        }
    }
}

/// A renamed column's header ends at the next comma or blank, as in the ps installed here;
/// `args=COMMAND LINE` names a column `LINE`, an error in both.
#[test]
fn renamed_headers_end_where_ps_ends_them() {
    require_program("ps", &["--version"]);
    let header = |command: &mut Command| {
        let output = run(command.env("LC_ALL", "C"), LIMIT);
        (
            code(&output),
            stdout_text(&output).lines().next().map(str::to_owned),
        )
    };
    for list in ["pid=ID,comm=NAME", "pid=,user=WHO comm", "pid=X=Y;Z,comm="] {
        let (ps_code, ps_header) = header(Command::new("ps").args(["-o", list, "-p", "1"]));
        let (our_code, our_header) = header(tool("proctree").args(["--header", "-o", list, "1"]));
        assert_eq!((our_code, ps_code), (0, 0), "{list}");
        let words = |line: Option<String>| {
            line.unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        assert_eq!(words(our_header), words(ps_header), "-o {list}");
    }
    let refused = run(tool("proctree").args(["-o", "args=COMMAND LINE"]), LIMIT);
    let ps_refused = run(Command::new("ps").args(["-o", "args=COMMAND LINE"]), LIMIT);
    assert_ne!(code(&ps_refused), 0);
    assert_eq!(code(&refused), 2);
    assert!(
        stderr_text(&refused).contains("'LINE': unknown column"),
        "{}",
        stderr_text(&refused)
    );
}

/// `-o pid= -o user -o comm`: one empty name among others. ps prints the header with a blank
/// over the pid and every name over its own column, and so must proctree (the widths differ:
/// ps's are fixed, proctree's fit the cells); with every name empty neither prints a header.
#[test]
fn an_empty_header_among_others_keeps_the_columns_aligned() {
    require_program("ps", &["--version"]);
    let args = ["-o", "pid=", "-o", "user", "-o", "comm"];
    let check = |command: &mut Command| {
        let output = run(command.env("LC_ALL", "C"), LIMIT);
        assert_eq!(code(&output), 0, "{command:?}: {}", stderr_text(&output));
        let text = stdout_text(&output);
        let mut lines = text.lines();
        let header = lines.next().unwrap();
        assert!(header.starts_with(' '), "{command:?}: {header:?}");
        let user = header.find("USER").unwrap();
        let comm = header.find("COMMAND").unwrap();
        assert_eq!(
            header.split_whitespace().collect::<Vec<_>>(),
            ["USER", "COMMAND"]
        );
        let mut rows = 0;
        for line in lines {
            // The pid right-aligned up to the user's column, the user from it, the command
            // from the command's column on.
            let pid = line[..user].trim_start();
            assert!(
                pid.ends_with(' ') && pid.trim().parse::<u32>().is_ok(),
                "{line:?}"
            );
            assert!(!line[user..].starts_with(' '), "{header:?}\n{line:?}");
            assert!(line[user..comm].ends_with(' '), "{header:?}\n{line:?}");
            assert!(!line[comm..].starts_with(' '), "{header:?}\n{line:?}");
            rows += 1;
        }
        assert!(rows >= 2, "{command:?}: {text:?}");
    };
    check(Command::new("ps").arg("-e").args(args));
    check(tool("proctree").arg("--header").args(args));
    let silent = ["-o", "pid=", "-o", "user=", "-o", "comm="];
    let mut ps = Command::new("ps");
    ps.arg("-e").args(silent);
    let mut ours = tool("proctree");
    ours.arg("--header").args(silent);
    for command in [&mut ps, &mut ours] {
        let output = run(command.env("LC_ALL", "C"), LIMIT);
        let first = stdout_text(&output).lines().next().unwrap().to_owned();
        assert!(
            first
                .split_whitespace()
                .next()
                .unwrap()
                .parse::<u32>()
                .is_ok(),
            "{command:?}: {first:?}"
        );
    }
}
