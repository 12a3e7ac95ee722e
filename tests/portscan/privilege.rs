//! portscan gives up its privilege once its sockets are open, as /proc tells while it
//! runs: root becomes nobody (or, with --update-baseline, uid 0 without capabilities), a
//! binary given CAP_NET_RAW with setcap drops it, and the raw sockets opened before still
//! read -A's SYN-ACK. And no tool runs setuid or setgid.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::fixtures::{TempDir, require_program, require_root};
use crate::util::{LIMIT, code, run, stderr_text, stdout_text, tool_path, wait_with_deadline};

/// A port that accepts every connection and then says nothing, so that -sV waits on it
/// and the run lasts long enough to be looked at.
struct Silent {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Silent {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        thread::spawn(move || {
            let mut held: Vec<TcpStream> = Vec::new();
            let until = Instant::now() + LIMIT;
            while !stopped.load(Ordering::Relaxed) && Instant::now() < until {
                match listener.accept() {
                    Ok((stream, _)) if held.len() < 64 => held.push(stream),
                    Ok(_) => {}
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self { port, stop }
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The lines of /proc/PID/status that say what a process may do.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Privilege {
    pub(super) uid: String,
    pub(super) gid: String,
    pub(super) groups: String,
    pub(super) cap_permitted: String,
    pub(super) cap_effective: String,
    pub(super) no_new_privs: String,
}

pub(super) fn privilege_of(pid: u32) -> Option<Privilege> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .map(|value| value.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    Some(Privilege {
        uid: field("Uid:"),
        gid: field("Gid:"),
        groups: field("Groups:"),
        cap_permitted: field("CapPrm:"),
        cap_effective: field("CapEff:"),
        no_new_privs: field("NoNewPrivs:"),
    })
}

/// Watches `child` until its /proc status satisfies `settled` (it gave up what it had) or
/// it exits; returns the last status seen and the run's JSON record of `port`, the run
/// having ended with `status`.
fn watch_run(
    child: Child,
    port: u16,
    status: i32,
    settled: impl Fn(&Privilege) -> bool,
) -> (Privilege, Value) {
    let pid = child.id();
    let until = Instant::now() + LIMIT;
    let mut seen = Privilege::default();
    while Instant::now() < until {
        match privilege_of(pid) {
            Some(now) if settled(&now) => {
                seen = now;
                break;
            }
            Some(now) => seen = now,
            None => break,
        }
        thread::sleep(Duration::from_millis(2));
    }
    let output = wait_with_deadline(child, LIMIT);
    assert_eq!(code(&output), status, "stderr: {}", stderr_text(&output));
    let record = stdout_text(&output)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|record| record["port"] == port)
        .unwrap_or_else(|| panic!("no record of {port}: {}", stdout_text(&output)));
    (seen, record)
}

/// `portscan -A --json -p PORT 127.0.0.1` run by `command`, started.
fn spawn_hinted(mut command: Command, port: u16, extra: &[&str]) -> Child {
    command
        .args([
            "-A",
            "--version-intensity",
            "0",
            "--json",
            "-p",
            &port.to_string(),
        ])
        .args(extra)
        .arg("127.0.0.1")
        .env("LC_ALL", "C.UTF-8")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The raw socket opened before the drop still read the SYN-ACK.
fn assert_syn_ack_read(record: &Value, port: u16) {
    let evidence = record["os_evidence"].as_str().unwrap_or_default();
    assert!(
        evidence.contains(&format!("SYN-ACK from {port}/tcp: TTL 64, window ")),
        "{record}"
    );
}

const NO_CAPABILITY: &str = "0000000000000000";

#[test]
#[ignore = "needs root: checks that root's privilege is given up"]
fn a_root_scan_runs_on_as_nobody_with_no_capability() {
    require_root();
    let silent = Silent::start();
    let child = spawn_hinted(Command::new(tool_path("portscan")), silent.port, &[]);
    let (seen, record) = watch_run(child, silent.port, 0, |now| now.uid != "0 0 0 0");
    assert_eq!(seen.uid, "65534 65534 65534 65534", "{seen:?}");
    assert_eq!(seen.groups, "", "{seen:?}");
    assert_eq!(seen.cap_permitted, NO_CAPABILITY, "{seen:?}");
    assert_eq!(seen.cap_effective, NO_CAPABILITY, "{seen:?}");
    assert_eq!(seen.no_new_privs, "1", "{seen:?}");
    assert_eq!(record["state"], "open", "{record}");
    assert_syn_ack_read(&record, silent.port);
}

#[test]
#[ignore = "needs root: checks that root's capabilities are given up"]
fn a_root_scan_that_updates_a_baseline_keeps_uid_0_and_no_capability() {
    require_root();
    let silent = Silent::start();
    let dir = TempDir::new("privilege-baseline");
    let baseline = dir.join("scan.json");
    let baseline = baseline.to_str().unwrap();
    let child = spawn_hinted(
        Command::new(tool_path("portscan")),
        silent.port,
        &["--baseline", baseline, "--update-baseline"],
    );
    // Status 3: the port is new to the (empty) baseline.
    let (seen, record) = watch_run(child, silent.port, 3, |now| {
        now.cap_effective == NO_CAPABILITY
    });
    assert_eq!(seen.uid, "0 0 0 0", "{seen:?}");
    assert_eq!(seen.cap_permitted, NO_CAPABILITY, "{seen:?}");
    assert_eq!(seen.cap_effective, NO_CAPABILITY, "{seen:?}");
    assert_eq!(seen.no_new_privs, "1", "{seen:?}");
    assert_eq!(record["change"], "added", "{record}");
    // The file was renamed into place after the drop.
    let written = std::fs::read_to_string(baseline).unwrap();
    assert!(
        written.contains(&format!("\"port\":{}", silent.port)),
        "{written}"
    );
}

/// A copy of `tool` in a directory of its own that every user may read.
fn copy_of(tool: &str, dir: &TempDir) -> String {
    std::fs::set_permissions(
        dir.join(""),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let copy = dir.join(tool);
    // cp, not std::fs::copy: a file this process held open for writing could be busy
    // (ETXTBSY) when another test's child forks at that moment.
    let status = Command::new("cp")
        .arg(tool_path(tool))
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    copy.to_str().unwrap().to_owned()
}

fn as_nobody(program: &str) -> Command {
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
        .arg(program);
    command
}

#[test]
#[ignore = "needs root: gives a copy of portscan CAP_NET_RAW and runs it as nobody"]
fn a_user_given_cap_net_raw_reads_the_syn_ack_and_drops_it() {
    require_root();
    require_program("setpriv", &["--version"]);
    require_program("setcap", &["--license"]);
    let dir = TempDir::new("privilege-setcap");
    let portscan = copy_of("portscan", &dir);
    let status = Command::new("setcap")
        .args(["cap_net_raw+ep", &portscan])
        .status()
        .unwrap();
    assert!(status.success(), "setcap on {portscan}");
    let silent = Silent::start();
    let child = spawn_hinted(as_nobody(&portscan), silent.port, &[]);
    let (seen, record) = watch_run(child, silent.port, 0, |now| {
        now.cap_permitted == NO_CAPABILITY && now.uid.starts_with("65534")
    });
    assert_eq!(seen.uid, "65534 65534 65534 65534", "{seen:?}");
    assert_eq!(seen.cap_permitted, NO_CAPABILITY, "{seen:?}");
    assert_eq!(seen.cap_effective, NO_CAPABILITY, "{seen:?}");
    assert_eq!(seen.no_new_privs, "1", "{seen:?}");
    assert_syn_ack_read(&record, silent.port);
}

#[test]
#[ignore = "needs root: installs copies setuid and setgid root and runs them as nobody"]
fn no_tool_runs_setuid_or_setgid() {
    require_root();
    require_program("setpriv", &["--version"]);
    let dir = TempDir::new("privilege-setuid");
    for tool in ["portscan", "sockls", "proctree", "svcname"] {
        let copy = copy_of(tool, &dir);
        for (mode, refusal) in [
            (
                0o4755,
                "refusing to run setuid (user 65534, effective user 0): ",
            ),
            (
                0o2755,
                "refusing to run setgid (group 65534, effective group 0): ",
            ),
        ] {
            std::fs::set_permissions(
                Path::new(&copy),
                std::os::unix::fs::PermissionsExt::from_mode(mode),
            )
            .unwrap();
            let output = run(as_nobody(&copy).arg("--version"), LIMIT);
            let stderr = stderr_text(&output);
            assert!(
                stderr.starts_with(&format!("{tool}: {refusal}")),
                "{tool} {mode:o}: {stderr}"
            );
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
            assert_eq!(code(&output), 1, "{tool} {mode:o}");
            assert_eq!(stdout_text(&output), "", "{tool} {mode:o}");
        }
        // The same copy without the bits runs.
        std::fs::set_permissions(
            Path::new(&copy),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let output = run(as_nobody(&copy).arg("--version"), LIMIT);
        assert_eq!(code(&output), 0, "{tool}: {}", stderr_text(&output));
    }
}
