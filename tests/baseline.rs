//! Baselines and expectations for unattended runs: `portscan --baseline`/`--expect-open`
//! and `sockls --baseline`/`--expect-listen` against listeners the tests open and close on
//! 127.0.0.1, checking the change records, the exit status 3, the atomic rewrite, and the
//! refusal of a file that is not a baseline (another tool's, cut short, truncated at a line
//! end, empty), and the keeping of a baseline when a host failed.

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::fixtures::{Netns, require_root};
use crate::many_machines::listen_in;
use crate::util::{code, run, run_with_input, stderr_text, stdout_text, tool};

const LIMIT: Duration = Duration::from_secs(30);

/// A directory of the test's own, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Four ports of 127.0.0.1 in a row, the first two listening; the listeners stay open as
/// long as the vector lives. They are taken below the ephemeral range (32768 and up), so
/// that a port a test closes and binds again is not taken meanwhile as the source port of
/// another test's connection. Each test starts its search at a place of its own.
fn listeners() -> (Vec<TcpListener>, u16) {
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let start = 20_000 + (std::process::id() % 1000) as u16 * 8;
    for _ in 0..200 {
        let step = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let base = 20_000 + (start - 20_000 + step * 4) % 12_000;
        let mut bound: Vec<TcpListener> = (0..4)
            .map_while(|offset| TcpListener::bind(("127.0.0.1", base + offset)).ok())
            .collect();
        if bound.len() == 4 {
            // The last two were bound only to see that they are free.
            bound.truncate(2);
            return (bound, base);
        }
    }
    panic!("no four free ports in a row on 127.0.0.1");
}

/// Binds `port` of 127.0.0.1 again after its listener was dropped. A child that another
/// test forks at that moment holds the listener until it execs (close-on-exec), so the
/// port can be busy for a few milliseconds: try for up to two seconds.
fn bind_again(port: u16) -> TcpListener {
    for _ in 0..200 {
        match TcpListener::bind(("127.0.0.1", port)) {
            Ok(listener) => return listener,
            Err(error) if error.kind() == std::io::ErrorKind::AddrInUse => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(error) => panic!("binding 127.0.0.1:{port}: {error}"),
        }
    }
    panic!("127.0.0.1:{port} stayed busy");
}

fn portscan(args: &[&str], ports: &str) -> std::process::Output {
    run(
        tool("portscan").args(args).args(["-p", ports, "127.0.0.1"]),
        LIMIT,
    )
}

fn records(text: &str) -> Vec<Value> {
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn portscan_prints_only_what_changed_since_its_baseline() {
    let scratch = Scratch::new("baseline-portscan");
    let (mut open, base) = listeners();
    let ports = format!("{base}-{}", base + 3);
    let baseline = scratch.file("scan.json");
    let first = portscan(&["--json"], &ports);
    assert_eq!(code(&first), 0, "{}", stderr_text(&first));
    std::fs::write(&baseline, &first.stdout).unwrap();
    let path = baseline.to_str().unwrap();

    // Nothing changed: nothing printed, status 0.
    let same = portscan(&["--baseline", path], &ports);
    assert_eq!(
        (code(&same), stdout_text(&same)),
        (0, String::new()),
        "{}",
        stderr_text(&same)
    );

    // One listener closes, another opens: a change and an addition, status 3.
    open.remove(1);
    let third = bind_again(base + 2);
    let changed = portscan(&["--baseline", path, "--json"], &ports);
    assert_eq!(code(&changed), 3, "{}", stderr_text(&changed));
    let changes = records(&stdout_text(&changed));
    assert_eq!(changes.len(), 2, "{changes:?}");
    let closed = changes.iter().find(|c| c["port"] == base + 1).unwrap();
    assert_eq!(closed["change"], "changed");
    assert_eq!(closed["state"], "closed");
    assert_eq!(closed["old"]["state"], "open");
    let added = changes.iter().find(|c| c["port"] == base + 2).unwrap();
    assert_eq!(added["change"], "added");
    assert_eq!(added["state"], "open");
    assert!(
        stdout_text(&changed).starts_with("{\"change\":"),
        "the change comes first"
    );

    // Text: the change, the old values, the record's own line.
    let text = portscan(&["--baseline", path], &ports);
    assert_eq!(code(&text), 3);
    let lines = stdout_text(&text);
    assert!(
        lines.contains(&format!(
            "changed state=open 127.0.0.1 {}/tcp closed conn-refused\n",
            base + 1
        )),
        "{lines}"
    );
    assert!(
        lines.contains(&format!(
            "added - 127.0.0.1 {}/tcp open syn-ack\n",
            base + 2
        )),
        "{lines}"
    );

    // --update-baseline reports, then takes this run as the new baseline.
    let update = portscan(&["--baseline", path, "--update-baseline"], &ports);
    assert_eq!(code(&update), 3, "{}", stderr_text(&update));
    let after = portscan(&["--baseline", path], &ports);
    assert_eq!((code(&after), stdout_text(&after)), (0, String::new()));
    let rewritten = records(&std::fs::read_to_string(&baseline).unwrap());
    assert_eq!(
        rewritten[0],
        serde_json::json!({"baseline": "portscan", "records": 2}),
        "the header says whose records follow, and how many"
    );
    let open_ports: Vec<&Value> = rewritten[1..].iter().map(|r| &r["port"]).collect();
    assert_eq!(open_ports, [&Value::from(base), &Value::from(base + 2)]);
    let left: Vec<_> = std::fs::read_dir(&scratch.0).unwrap().collect();
    assert_eq!(
        left.len(),
        1,
        "no temporary file is left beside the baseline"
    );
    drop(third);
}

#[test]
fn a_file_that_is_not_a_whole_baseline_is_refused() {
    let scratch = Scratch::new("baseline-bad");
    let (_open, base) = listeners();
    let ports = base.to_string();
    let good = portscan(&["--json"], &ports);
    let text = stdout_text(&good);

    let cut = scratch.file("cut.json");
    std::fs::write(&cut, &text[..text.len() - 5]).unwrap();
    let output = portscan(&["--baseline", cut.to_str().unwrap()], &ports);
    assert_eq!(code(&output), 2);
    assert!(
        stderr_text(&output).starts_with(&format!(
            "portscan: {}: line 1: cut short (no newline at the end): not a whole baseline\n",
            cut.display()
        )),
        "{}",
        stderr_text(&output)
    );
    assert_eq!(stdout_text(&output), "", "nothing is reported as removed");

    let report = scratch.file("report.txt");
    std::fs::write(&report, "127.0.0.1 22/tcp open syn-ack\n").unwrap();
    let output = portscan(&["--baseline", report.to_str().unwrap()], &ports);
    assert_eq!(code(&output), 2);
    assert!(
        stderr_text(&output).contains("line 1: not a port record of --json"),
        "{}",
        stderr_text(&output)
    );

    // A socket listing is not a scan's baseline either.
    let sockets = scratch.file("sockets.json");
    let listing = run(tool("sockls").args(["-tl", "--json"]), LIMIT);
    std::fs::write(&sockets, &listing.stdout).unwrap();
    if !listing.stdout.is_empty() {
        let output = portscan(&["--baseline", sockets.to_str().unwrap()], &ports);
        assert_eq!(code(&output), 2, "{}", stderr_text(&output));
    }

    let missing = scratch.file("missing.json");
    let output = portscan(&["--baseline", missing.to_str().unwrap()], &ports);
    assert_eq!(code(&output), 2);
    assert!(stderr_text(&output).contains("no such file (--update-baseline makes it)"));
    let made = portscan(
        &["--baseline", missing.to_str().unwrap(), "--update-baseline"],
        &ports,
    );
    assert_eq!(
        code(&made),
        3,
        "everything open is new: {}",
        stderr_text(&made)
    );
    assert!(missing.exists());
}

#[test]
fn expect_open_says_how_reality_differs() {
    let (_open, base) = listeners();
    let ports = format!("{base}-{}", base + 3);
    let met = portscan(&["--expect-open", &format!("{base},{}", base + 1)], &ports);
    assert_eq!(
        (code(&met), stdout_text(&met)),
        (0, String::new()),
        "{}",
        stderr_text(&met)
    );

    let unmet = portscan(
        &["--expect-open", &format!("{base},{}", base + 2), "--json"],
        &ports,
    );
    assert_eq!(code(&unmet), 3, "{}", stderr_text(&unmet));
    let changes = records(&stdout_text(&unmet));
    let by_port = |port: u16| changes.iter().find(|c| c["port"] == port).unwrap();
    assert_eq!(by_port(base + 1)["change"], "added", "open, not expected");
    assert_eq!(by_port(base + 2)["change"], "changed", "expected, not open");
    assert_eq!(by_port(base + 2)["old"]["state"], "open");
    assert_eq!(by_port(base + 2)["state"], "closed");
    assert_eq!(changes.len(), 2, "{changes:?}");

    let outside = portscan(&["--expect-open", "1"], &ports);
    assert_eq!(code(&outside), 2);
    assert!(
        stderr_text(&outside)
            .starts_with("portscan: --expect-open: 1/tcp is not among the ports scanned\n")
    );
}

fn sockls(args: &[&str]) -> std::process::Output {
    run(tool("sockls").args(args), LIMIT)
}

#[test]
fn sockls_matches_sockets_by_local_end_and_owner_not_inode() {
    let scratch = Scratch::new("baseline-sockls");
    let (open, base) = listeners();
    let range = format!("{base}-{}", base + 3);
    let baseline = scratch.file("sockets.json");
    let path = baseline.to_str().unwrap();
    let first = sockls(&["-tlp", "--sport", &range, "--json"]);
    assert_eq!(code(&first), 0, "{}", stderr_text(&first));
    assert_eq!(records(&stdout_text(&first)).len(), 2);
    std::fs::write(&baseline, &first.stdout).unwrap();

    // The same listeners, closed and opened again: new inodes and cookies, no change.
    drop(open);
    let again = [bind_again(base), bind_again(base + 1)];
    let same = sockls(&["-tlp", "--sport", &range, "--baseline", path]);
    assert_eq!(
        (code(&same), stdout_text(&same)),
        (0, String::new()),
        "{}",
        stderr_text(&same)
    );

    // One goes away.
    let [kept, closed] = again;
    drop(closed);
    let gone = sockls(&["-tlp", "--sport", &range, "--baseline", path, "--json"]);
    assert_eq!(code(&gone), 3, "{}", stderr_text(&gone));
    let changes = records(&stdout_text(&gone));
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0]["change"], "removed");
    assert_eq!(changes[0]["local_port"], base + 1);
    drop(kept);
}

#[test]
fn sockls_expect_listen_names_missing_and_unexpected_listeners() {
    let (_open, base) = listeners();
    let range = format!("{base}-{}", base + 3);
    let met = sockls(&[
        "-tl",
        "--sport",
        &range,
        "--expect-listen",
        &format!("{base},{}", base + 1),
    ]);
    assert_eq!(
        (code(&met), stdout_text(&met)),
        (0, String::new()),
        "{}",
        stderr_text(&met)
    );
    let unmet = sockls(&[
        "-tl",
        "--sport",
        &range,
        "--expect-listen",
        &format!("{base},{}", base + 2),
        "--json",
    ]);
    assert_eq!(code(&unmet), 3, "{}", stderr_text(&unmet));
    let changes = records(&stdout_text(&unmet));
    let summary: Vec<(String, u64)> = changes
        .iter()
        .map(|c| {
            (
                c["change"].as_str().unwrap().to_owned(),
                c["local_port"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("added".to_owned(), u64::from(base + 1)),
            ("removed".to_owned(), u64::from(base + 2))
        ]
    );
    let bad = sockls(&["--expect-listen", "http-x"]);
    assert_eq!(code(&bad), 2, "{}", stderr_text(&bad));
}

/// Asserts that `output` is a refusal with status 2, nothing on stdout, and one line on
/// stderr: `{tool}: {file}: {why}`, `why` starting so.
fn assert_refused(output: &std::process::Output, tool: &str, file: &std::path::Path, why: &str) {
    let stderr = stderr_text(output);
    assert_eq!(code(output), 2, "{stderr}");
    assert_eq!(stdout_text(output), "", "nothing is reported as removed");
    let prefix = format!("{tool}: {}: {why}", file.display());
    assert!(
        stderr.starts_with(&prefix) && stderr.ends_with('\n') && stderr.lines().count() == 1,
        "{stderr:?} is not one line starting {prefix:?}"
    );
}

#[test]
fn a_baseline_cut_at_a_line_end_or_empty_is_refused_and_a_headerless_one_is_not() {
    let scratch = Scratch::new("baseline-header");
    let (_open, base) = listeners();
    let ports = format!("{base}-{}", base + 3);
    let baseline = scratch.file("scan.json");
    let path = baseline.to_str().unwrap();
    let made = portscan(&["--baseline", path, "--update-baseline"], &ports);
    assert_eq!(code(&made), 3, "{}", stderr_text(&made));
    let text = std::fs::read_to_string(&baseline).unwrap();
    assert!(
        text.starts_with("{\"baseline\":\"portscan\",\"records\":2}\n"),
        "{text}"
    );

    // The last record gone, at a line end: the header's count tells.
    let cut = scratch.file("cut.json");
    let last = text.trim_end().rfind('\n').unwrap() + 1;
    std::fs::write(&cut, &text[..last]).unwrap();
    let output = portscan(&["--baseline", cut.to_str().unwrap()], &ports);
    assert_refused(&output, "portscan", &cut, "truncated: 1 of 2 records\n");

    let empty = scratch.file("empty.json");
    std::fs::write(&empty, "").unwrap();
    let output = portscan(&["--baseline", empty.to_str().unwrap()], &ports);
    assert_refused(&output, "portscan", &empty, "empty; not a baseline\n");

    // Without its header (a plain --json run) the same records are a baseline as before.
    let plain = scratch.file("plain.json");
    std::fs::write(&plain, &text[text.find('\n').unwrap() + 1..]).unwrap();
    let output = portscan(&["--baseline", plain.to_str().unwrap()], &ports);
    assert_eq!(
        (code(&output), stdout_text(&output)),
        (0, String::new()),
        "{}",
        stderr_text(&output)
    );

    // A run with nothing to record still writes a baseline: its header.
    let none = scratch.file("none.json");
    let closed = format!("{}", base + 3);
    let first = portscan(
        &["--baseline", none.to_str().unwrap(), "--update-baseline"],
        &closed,
    );
    assert_eq!(code(&first), 0, "{}", stderr_text(&first));
    assert_eq!(
        std::fs::read_to_string(&none).unwrap(),
        "{\"baseline\":\"portscan\",\"records\":0}\n"
    );
    let again = portscan(&["--baseline", none.to_str().unwrap()], &closed);
    assert_eq!(
        (code(&again), stdout_text(&again)),
        (0, String::new()),
        "{}",
        stderr_text(&again)
    );

    // The header is no record to svcname (passed through as it is) nor to -sV --from.
    let annotated = run_with_input(&mut tool("svcname"), text.as_bytes(), LIMIT);
    assert_eq!(code(&annotated), 0, "{}", stderr_text(&annotated));
    let lines = records(&stdout_text(&annotated));
    assert_eq!(
        lines[0],
        serde_json::json!({"baseline": "portscan", "records": 2})
    );
    assert_eq!(lines.len(), 3);
    assert!(lines[1].get("service").is_some(), "{:?}", lines[1]);
    let from = run(
        tool("portscan").args(["-sV", "--from", none.to_str().unwrap(), "--json"]),
        LIMIT,
    );
    assert_eq!(
        (code(&from), stderr_text(&from), stdout_text(&from)),
        (0, String::new(), String::new())
    );
}

#[test]
fn sockls_reports_a_listener_whose_user_changed_and_updates_its_baseline() {
    let scratch = Scratch::new("baseline-sockls-changed");
    let (_open, base) = listeners();
    let range = format!("{base}-{}", base + 3);
    let baseline = scratch.file("sockets.json");
    let path = baseline.to_str().unwrap();
    let first = sockls(&["-tlp", "--sport", &range, "--json"]);
    assert_eq!(code(&first), 0, "{}", stderr_text(&first));
    // The baseline as if the first listener had had another owner: same command, same
    // port, another user.
    let mut earlier = records(&stdout_text(&first));
    assert_eq!(earlier.len(), 2, "{earlier:?}");
    let (user, uid) = (earlier[0]["user"].clone(), earlier[0]["uid"].clone());
    assert!(uid.is_u64(), "{:?}", earlier[0]);
    earlier[0]["user"] = Value::from("someone-else");
    earlier[0]["uid"] = Value::from(uid.as_u64().unwrap() + 4242);
    let edited: String = earlier.iter().map(|r| r.to_string() + "\n").collect();
    std::fs::write(&baseline, edited).unwrap();

    let changed = sockls(&["-tlp", "--sport", &range, "--baseline", path, "--json"]);
    assert_eq!(code(&changed), 3, "{}", stderr_text(&changed));
    let changes = records(&stdout_text(&changed));
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0]["change"], "changed");
    assert_eq!(changes[0]["local_port"], earlier[0]["local_port"]);
    assert_eq!((&changes[0]["user"], &changes[0]["uid"]), (&user, &uid));
    assert_eq!(
        changes[0]["old"],
        serde_json::json!({"user": "someone-else", "uid": uid.as_u64().unwrap() + 4242})
    );

    // --update-baseline reports the change, then takes this listing as the baseline.
    let update = sockls(&[
        "-tlp",
        "--sport",
        &range,
        "--baseline",
        path,
        "--update-baseline",
    ]);
    assert_eq!(code(&update), 3, "{}", stderr_text(&update));
    let rewritten = records(&std::fs::read_to_string(&baseline).unwrap());
    assert_eq!(
        rewritten[0],
        serde_json::json!({"baseline": "sockls", "records": 2})
    );
    assert_eq!(rewritten[1]["user"], user);
    let left: Vec<_> = std::fs::read_dir(&scratch.0).unwrap().collect();
    assert_eq!(left.len(), 1, "no temporary file is left beside it");
    let after = sockls(&["-tlp", "--sport", &range, "--baseline", path]);
    assert_eq!(
        (code(&after), stdout_text(&after)),
        (0, String::new()),
        "{}",
        stderr_text(&after)
    );
}

#[test]
fn sockls_refuses_a_file_that_is_not_its_baseline() {
    let scratch = Scratch::new("baseline-sockls-bad");
    let (_open, base) = listeners();
    let range = format!("{base}-{}", base + 3);
    let refused = |file: &std::path::Path, why: &str| {
        let output = sockls(&[
            "-tlp",
            "--sport",
            &range,
            "--baseline",
            file.to_str().unwrap(),
        ]);
        assert_refused(&output, "sockls", file, why);
    };

    let text = scratch.file("text.txt");
    std::fs::write(&text, "tcp LISTEN 0 128 127.0.0.1:22 0.0.0.0:*\n").unwrap();
    refused(&text, "line 1: not a socket record of --json: ");

    // A scan's records, headerless and with the header --update-baseline writes.
    let scan = scratch.file("scan.json");
    let output = portscan(&["--json"], &base.to_string());
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    std::fs::write(&scan, &output.stdout).unwrap();
    refused(&scan, "line 1: not a socket record of --json: ");
    let scan_baseline = scratch.file("scan-baseline.json");
    let made = portscan(
        &[
            "--baseline",
            scan_baseline.to_str().unwrap(),
            "--update-baseline",
        ],
        &base.to_string(),
    );
    assert_eq!(code(&made), 3, "{}", stderr_text(&made));
    refused(&scan_baseline, "a baseline of portscan, not of sockls\n");

    // Its own baseline with the last line cut mid-line, or a line end cut away.
    let own = scratch.file("own.json");
    let made = sockls(&[
        "-tlp",
        "--sport",
        &range,
        "--baseline",
        own.to_str().unwrap(),
        "--update-baseline",
    ]);
    assert_eq!(code(&made), 3, "{}", stderr_text(&made));
    let whole = std::fs::read_to_string(&own).unwrap();
    let cut = scratch.file("cut.json");
    std::fs::write(&cut, &whole[..whole.len() - 20]).unwrap();
    refused(
        &cut,
        "line 3: cut short (no newline at the end): not a whole baseline\n",
    );
    let last = whole.trim_end().rfind('\n').unwrap() + 1;
    std::fs::write(&cut, &whole[..last]).unwrap();
    refused(&cut, "truncated: 1 of 2 records\n");
    std::fs::write(&cut, "").unwrap();
    refused(&cut, "empty; not a baseline\n");
}

#[test]
#[ignore = "needs root: a network namespace whose second host loses its route"]
fn portscan_keeps_its_baseline_when_a_host_failed() {
    require_root();
    let scratch = Scratch::new("baseline-failed-host");
    let namespace = Netns::new("baseline-failed");
    let name = &namespace.name;
    // 198.18.0.1 is the namespace's own address, on lo, until it is taken away: then the
    // namespace has no route to it, and its scan fails at once, without a packet sent.
    let status = std::process::Command::new("ip")
        .args(["-n", name, "addr", "add", "198.18.0.1/32", "dev", "lo"])
        .status()
        .unwrap();
    assert!(status.success());
    let port = 41_015;
    let _listening = listen_in(name, &[(std::net::Ipv4Addr::UNSPECIFIED, port)]);
    let baseline = scratch.file("scan.json");
    let scan = || {
        run(
            namespace.exec(crate::util::tool_path("portscan")).args([
                "-Pn",
                "-p",
                &port.to_string(),
                "--baseline",
                baseline.to_str().unwrap(),
                "--update-baseline",
                "127.0.0.1",
                "198.18.0.1",
            ]),
            LIMIT,
        )
    };
    let first = scan();
    assert_eq!(code(&first), 3, "{}", stderr_text(&first));
    let before = std::fs::read_to_string(&baseline).unwrap();
    assert!(
        before.starts_with("{\"baseline\":\"portscan\",\"records\":2}\n"),
        "{before}"
    );

    let status = std::process::Command::new("ip")
        .args(["-n", name, "addr", "del", "198.18.0.1/32", "dev", "lo"])
        .status()
        .unwrap();
    assert!(status.success());
    let failed = scan();
    assert_eq!(code(&failed), 1, "{}", stderr_text(&failed));
    let stderr = stderr_text(&failed);
    let kept = format!(
        "portscan: --update-baseline: kept {}: 1 host(s) failed\n",
        baseline.display()
    );
    assert!(stderr.contains(&kept), "{stderr}");
    // Nothing is known of the failed host now: its port is not reported removed.
    assert_eq!(stdout_text(&failed), "", "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&baseline).unwrap(),
        before,
        "the failed host's port is still in the baseline"
    );
    let left: Vec<_> = std::fs::read_dir(&scratch.0).unwrap().collect();
    assert_eq!(left.len(), 1, "no temporary file is left beside it");
}
