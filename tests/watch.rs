//! `sockls --watch` and `proctree --watch`: a listener and a process the test starts and
//! stops while the tool watches, each seen to appear and go away once, and SIGINT ending a
//! watch with whole records and status 0.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{code, run, stderr_text, stdout_text, tool, wait_until_exit, wait_with_deadline};

const LIMIT: Duration = Duration::from_secs(30);

/// Reads the watch's records until one satisfies `wanted` (bounded in time).
fn until(lines: &mut impl Iterator<Item = String>, wanted: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + LIMIT;
    for line in lines.by_ref() {
        let record: Value = serde_json::from_str(&line).unwrap();
        if wanted(&record) {
            return record;
        }
        assert!(Instant::now() < deadline, "no such event in time");
    }
    panic!("the watch ended before the event came");
}

fn interrupt(child: &std::process::Child) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
}

#[test]
fn sockls_watch_sees_a_listener_come_and_go() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = tool("sockls")
        .args([
            "-tl",
            "--sport",
            &port.to_string(),
            "--json",
            "--watch",
            "100ms",
            "--count",
            "60",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map(Result::unwrap);
    // The first listing is taken before the listener exists.
    thread::sleep(Duration::from_millis(300));
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let added = until(&mut lines, |record| record["change"] == "added");
    assert_eq!(added["local_port"], port);
    assert_eq!(added["state"], "listen");
    drop(listener);
    let removed = until(&mut lines, |record| record["change"] == "removed");
    assert_eq!(removed["local_port"], port);
    let rest: Vec<String> = lines.collect();
    assert!(rest.is_empty(), "one event each: {rest:?}");
    assert!(wait_until_exit(&mut child, LIMIT).success());
}

#[test]
fn proctree_watch_sees_a_process_start_and_end() {
    let me = std::process::id().to_string();
    let mut watch = tool("proctree")
        .args(["--pid", &me, "--json", "--watch", "100ms", "--count", "60"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap())
        .lines()
        .map(Result::unwrap);
    thread::sleep(Duration::from_millis(300));
    let mut sleeper = Command::new("sleep").arg("1").spawn().unwrap();
    let pid = sleeper.id();
    let started = until(&mut lines, |record| record["pid"] == pid);
    assert_eq!(started["change"], "added");
    assert_eq!(started["comm"], "sleep");
    sleeper.wait().unwrap();
    let ended = until(&mut lines, |record| record["pid"] == pid);
    assert_eq!(ended["change"], "removed");
    drop(lines);
    interrupt(&watch);
    assert!(wait_until_exit(&mut watch, LIMIT).success());
}

#[test]
fn sigint_ends_a_watch_with_whole_records_and_status_0() {
    for name in ["sockls", "proctree"] {
        let child = tool(name)
            .args(["--watch", "50ms"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        thread::sleep(Duration::from_millis(400));
        interrupt(&child);
        let output = wait_with_deadline(child, LIMIT);
        assert_eq!(code(&output), 0, "{name}: {}", stderr_text(&output));
        assert_eq!(stderr_text(&output), "", "{name}");
        let text = stdout_text(&output);
        assert!(text.is_empty() || text.ends_with('\n'), "{name}: {text}");
    }
}

#[test]
fn watch_options_are_checked() {
    for (name, args) in [
        ("sockls", &["--watch", "0"][..]),
        ("sockls", &["--count", "3"][..]),
        ("proctree", &["--watch", "soon"][..]),
        ("proctree", &["--watch", "1", "--count", "0"][..]),
    ] {
        let output = run(tool(name).args(args), LIMIT);
        assert_eq!(
            code(&output),
            2,
            "{name} {args:?}: {}",
            stderr_text(&output)
        );
    }
}

/// A watch's text shows a start as the flat list and ps's STIME do (`14:28`, `Dec03`);
/// JSON and CSV keep the record's full RFC 3339 stamp.
#[test]
fn proctree_watch_text_shows_short_start_times_json_and_csv_the_full_stamp() {
    let me = std::process::id().to_string();
    let watch = |format: &[&str]| {
        let mut child = tool("proctree")
            .args(["--pid", &me, "--watch", "100ms", "--count", "60"])
            .args(format)
            .env("LC_ALL", "C")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap())
            .lines()
            .map(Result::unwrap);
        (child, lines)
    };
    let (mut text, mut text_lines) = watch(&[]);
    let (mut json, mut json_lines) = watch(&["--json"]);
    let (mut csv, mut csv_lines) = watch(&["--csv"]);
    thread::sleep(Duration::from_millis(300));
    let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
    let pid = sleeper.id().to_string();

    let added = until(&mut json_lines, |record| record["pid"] == sleeper.id());
    assert_eq!(added["change"], "added");
    let stamp = added["started"].as_str().unwrap().to_owned();
    assert!(
        stamp.len() > 20 && stamp.as_bytes()[10] == b'T' && stamp.ends_with('Z'),
        "{stamp}"
    );

    // CSV: the header, then the row of the sleeper with the same stamp as JSON.
    let header = csv_lines.next().unwrap();
    let column = header
        .split(',')
        .position(|name| name == "started")
        .unwrap();
    let row = csv_lines
        .find(|line| line.split(',').nth(2) == Some(pid.as_str()))
        .unwrap();
    assert!(row.starts_with("added,"), "{row}");
    assert_eq!(
        row.split(',').nth(column),
        Some(stamp.as_str()),
        "{header}\n{row}"
    );

    // Text: `added - PID PPID USER STATE PRIORITY NICE THREADS VSZ RSS STARTED ...`, the
    // start as ps's STIME says it.
    let line = text_lines
        .find(|line| line.split_whitespace().nth(2) == Some(pid.as_str()))
        .unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields[0], "added", "{line}");
    let ps = Command::new("ps")
        .args(["-o", "stime=", "-p", &pid])
        .env("LC_ALL", "C")
        .output()
        .expect("run ps");
    let stime = String::from_utf8_lossy(&ps.stdout).trim().to_owned();
    assert!(!stime.is_empty());
    assert_eq!(fields[11], stime, "{line}");

    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    drop((text_lines, json_lines, csv_lines));
    for child in [&mut text, &mut json, &mut csv] {
        interrupt(child);
        assert!(wait_until_exit(child, LIMIT).success());
    }
}
