//! End-to-end tests of proctree: a real process tree with hostile names, a zombie and a
//! multi-threaded process, printed exactly; a differential test against ps; a run as an
//! unprivileged user; the write side; every view beside processes and threads that end.

use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use serde_json::{Value, json};

use crate::fixtures::{
    assert_full_disk_is_an_error, assert_quiet_on_closed_pipe, exclusive, require_program,
    require_root, wait_for_stderr,
};
use crate::util::{LIMIT, code, run, stderr_text, stdout_text, tool};

/// How long the processes of a test live at most, should the test die before killing them.
pub(crate) const LIFETIME: &str = "30";

/// A process group this test started: killed (SIGKILL to the group) and reaped on drop.
pub(crate) struct Group {
    leader: Child,
    dir: PathBuf,
}

impl Group {
    pub(crate) fn pid(&self) -> u32 {
        self.leader.id()
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.leader.id())])
            .status();
        let _ = self.leader.kill();
        let _ = self.leader.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh directory for one test's files.
pub(crate) fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("proctree-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    dir
}

/// Copies with cp, not std::fs::copy: a child forked meanwhile by a concurrent test would
/// inherit our open, writable file and make the later exec fail with ETXTBSY.
fn copy_executable(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg(from)
        .arg(to)
        .status()
        .expect("run cp");
    assert!(status.success(), "cp {} {}", from.display(), to.display());
}

/// Starts bash running `script` as the leader of a new process group.
pub(crate) fn spawn_group(dir: PathBuf, script: &str, env: &[(&str, &Path)]) -> Group {
    let mut command = Command::new("bash");
    command
        .args(["-c", script])
        .current_dir(&dir)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    Group {
        leader: command.spawn().expect("spawn bash"),
        dir,
    }
}

/// The NDJSON records of one proctree run.
pub(crate) fn records(args: &[&str]) -> Vec<Value> {
    let output = run(tool("proctree").args(args), LIMIT);
    assert_eq!(code(&output), 0, "stderr: {}", stderr_text(&output));
    stdout_text(&output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// Runs proctree until `ready` accepts its records, for at most ten seconds.
pub(crate) fn poll(args: &[&str], ready: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let found = records(args);
        if ready(&found) {
            return found;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the process tree never got ready: {found:#?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Not a test: the multi-threaded process of [`odd_tree_is_printed_exactly`], which runs the
/// test binary again with this one selected and the variable set.
#[test]
fn thread_holder() {
    if std::env::var_os("PROCTREE_THREAD_HOLDER").is_none() {
        return;
    }
    let lifetime = Duration::from_secs(LIFETIME.parse().unwrap());
    let holders: Vec<_> = (1..=2)
        .map(|n| {
            std::thread::Builder::new()
                .name(format!("holder-{n}"))
                .spawn(move || std::thread::sleep(lifetime))
                .unwrap()
        })
        .collect();
    std::thread::sleep(lifetime);
    drop(holders);
}

/// The script of the odd tree: the children are exec'd from bash in this order.
const ODD_TREE: &str = r#"
(exec -a "$(printf 'a\nb\377')" "./x) (y" 30) &
(exec -a "spaced name" sleep 30) &
sh -c '/bin/true & exec sleep 31' &
"./$(printf 'nl\nname')" 30 &
PROCTREE_THREAD_HOLDER=1 "$HOLDER" --exact proctree::thread_holder --test-threads=1 -q &
wait
"#;

#[test]
fn odd_tree_is_printed_exactly() {
    let dir = scratch("odd");
    let sleep = Path::new("/usr/bin/sleep");
    copy_executable(sleep, &dir.join("x) (y"));
    copy_executable(sleep, &dir.join("nl\nname"));
    let holder = std::env::current_exe().unwrap();
    let group = spawn_group(dir.clone(), ODD_TREE, &[("HOLDER", &holder)]);
    let pid = group.pid().to_string();
    let holder_comm: String = holder
        .file_name()
        .unwrap()
        .to_string_lossy()
        .chars()
        .take(15)
        .collect();
    let args = ["--json", "-T", "--pid", &pid];
    let found = poll(&args, |found| {
        let names: Vec<&Value> = found.iter().map(|r| &r["comm"]).collect();
        names.contains(&&json!("true"))
            && found.iter().any(|r| r["comm"] == "true" && r["state"] == "Z")
            && names.contains(&&json!("holder-2"))
            && names.contains(&&json!("nl\nname"))
            && names.iter().filter(|&&n| n == "sleep").count() == 2
            // Each has settled into its wait (a process that just exec'd may still run).
            && found
                .iter()
                .filter(|r| r["tid"].is_null() && r["comm"] != "true")
                .all(|r| r["state"] == "S")
    });
    let d = dir.to_str().unwrap();
    let processes: Vec<Value> = found
        .iter()
        .filter(|r| r["tid"].is_null())
        .map(|r| json!([r["depth"], r["comm"], r["args"], r["state"], r["kthread"]]))
        .collect();
    let expected = vec![
        json!([0, "bash", ["bash", "-c", ODD_TREE], "S", false]),
        json!([1, "x) (y", [{"base64": "YQpi/w==", "lossy": "a\nb\u{fffd}"}, "30"], "S", false]),
        json!([1, "sleep", ["spaced name", "30"], "S", false]),
        json!([1, "sleep", ["sleep", "31"], "S", false]),
        json!([2, "true", [], "Z", false]),
        json!([1, "nl\nname", ["./nl\nname", "30"], "S", false]),
        json!([
            1,
            holder_comm,
            [
                holder.to_str().unwrap(),
                "--exact",
                "proctree::thread_holder",
                "--test-threads=1",
                "-q"
            ],
            "S",
            false
        ]),
    ];
    assert_eq!(processes, expected, "{found:#?}");

    // Identity, links and the fields that follow from how the tree was made.
    let by_pid: HashMap<u64, &Value> = found
        .iter()
        .filter(|r| r["tid"].is_null())
        .map(|r| (r["pid"].as_u64().unwrap(), r))
        .collect();
    let leader = u64::from(group.pid());
    for record in found.iter().filter(|r| r["tid"].is_null()) {
        assert_eq!(record["pgid"], leader, "{record}");
        assert!(record["start_time"].as_u64().unwrap() > 0);
        assert_eq!(record["uid"], found[0]["uid"]);
        if record["pid"] != leader {
            let parent = by_pid[&record["ppid"].as_u64().unwrap()];
            assert_eq!(record["depth"], parent["depth"].as_u64().unwrap() + 1);
        }
    }
    assert_eq!(found[0]["pid"], leader);
    assert_eq!(found[1]["exe"], format!("{d}/x) (y"));
    let zombie = found.iter().find(|r| r["comm"] == "true").unwrap();
    assert_eq!(zombie["exe"], Value::Null);
    assert_eq!(zombie["denied"], json!([]));

    // Threads follow their process, one level deeper, with the process's pid.
    let holder_at = found.iter().position(|r| r["comm"] == holder_comm).unwrap();
    let holder_record = &found[holder_at];
    let threads = &found[holder_at + 1..];
    assert!(threads.iter().all(|t| t["pid"] == holder_record["pid"]));
    assert!(threads.iter().all(|t| t["depth"] == 2));
    assert_eq!(
        threads.len() as u64 + 1,
        holder_record["threads"].as_u64().unwrap()
    );
    let thread_names: Vec<&Value> = threads.iter().map(|t| &t["comm"]).collect();
    assert!(
        thread_names.contains(&&json!("holder-1")),
        "{thread_names:?}"
    );
    assert!(
        thread_names.contains(&&json!("holder-2")),
        "{thread_names:?}"
    );

    check_tree_text(&found, &pid, &holder_comm);
    check_filters_and_csv(&pid, &zombie["pid"].to_string());
    drop(group);
}

/// The drawing of the odd tree, escaped so that each line stays one record.
fn check_tree_text(found: &[Value], pid: &str, holder_comm: &str) {
    let pid_of =
        |i: usize| found.iter().filter(|r| r["tid"].is_null()).nth(i).unwrap()["pid"].clone();
    let output = run(tool("proctree").args(["--ascii", "--pid", pid]), LIMIT);
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    let lines: Vec<Vec<String>> = stdout_text(&output)
        .lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect();
    let expected_tails: [&[&str]; 7] = [
        &["S", "bash"],
        &["S", "|-", "x)\\x20(y"],
        &["S", "|-", "sleep"],
        &["S", "|-", "sleep"],
        &["Z", "|", "`-", "true"],
        &["S", "|-", "nl\\nname"],
        &["S", "`-", holder_comm],
    ];
    assert_eq!(
        lines.len(),
        expected_tails.len(),
        "{}",
        stdout_text(&output)
    );
    for (i, (line, tail)) in lines.iter().zip(expected_tails).enumerate() {
        assert_eq!(line[0], pid_of(i).to_string(), "{line:?}");
        assert_eq!(line[1], pid, "pgid column: {line:?}");
        assert_eq!(&line[4..], tail, "{line:?}");
    }

    // --args shows argument vectors with their boundaries; -T draws threads as pstree does.
    let output = run(tool("proctree").args(["-a", "-T", "--pid", pid]), LIMIT);
    let text = stdout_text(&output);
    assert!(text.contains("├─ a\\nb\\xff 30\n"), "{text}");
    assert!(text.contains("├─ spaced\\x20name 30\n"), "{text}");
    assert!(text.contains("│  └─ [true]\n"), "{text}");
    assert!(
        text.contains("   ├─ {holder-1}\n") || text.contains("   └─ {holder-1}\n"),
        "{text}"
    );
}

/// Filters keep context; CSV holds the same records, flattened and escaped.
fn check_filters_and_csv(pid: &str, zombie: &str) {
    // Filters: a name keeps its ancestors; the flat list keeps the match alone.
    let matched = records(&["--json", "--pid", pid, "--name", "true"]);
    let names: Vec<&Value> = matched.iter().map(|r| &r["comm"]).collect();
    assert_eq!(names, [&json!("bash"), &json!("sleep"), &json!("true")]);
    assert_eq!(
        matched.iter().map(|r| &r["matched"]).collect::<Vec<_>>(),
        [&json!(false), &json!(false), &json!(true)]
    );
    let output = run(
        tool("proctree").args(["--flat", "--pid", pid, "--name", "tr?e"]),
        LIMIT,
    );
    let text = stdout_text(&output);
    assert_eq!(text.lines().count(), 1, "{text}");
    // The zombie's command, as ps -ef shows it.
    assert!(text.ends_with(" [true] <defunct>\n"), "{text}");
    let chain = records(&["--json", "--pid", zombie, "--ancestors"]);
    let depths: Vec<&Value> = chain.iter().map(|r| &r["depth"]).collect();
    assert!(chain.len() >= 3, "{chain:#?}");
    assert_eq!(chain.last().unwrap()["comm"], "true");
    assert_eq!(
        usize::try_from(depths.last().unwrap().as_u64().unwrap()).unwrap(),
        chain.len() - 1
    );

    // CSV: the same records, flattened and escaped.
    let output = run(tool("proctree").args(["--csv", "--pid", pid]), LIMIT);
    let mut reader = csv::Reader::from_reader(output.stdout.as_slice());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let headers = reader.headers().unwrap().clone();
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    assert_eq!(rows.len(), 7);
    assert_eq!(&rows[1][column("comm")], "x)\\x20(y");
    assert_eq!(&rows[1][column("args")], "a\\nb\\xff 30");
    assert_eq!(&rows[4][column("state")], "Z");
}

/// One `ps -e -o pid,ppid,pgid,sid,uid,stat,comm` snapshot, keyed by pid.
fn ps_snapshot() -> HashMap<u64, Vec<String>> {
    let output = Command::new("ps")
        .args(["-e", "-o", "pid=,ppid=,pgid=,sid=,uid=,stat=,comm="])
        .env("LC_ALL", "C")
        .output()
        .expect("run ps");
    assert!(output.status.success());
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let mut fields: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
            if fields.len() < 7 {
                return None;
            }
            // comm is last and may hold spaces.
            let comm = fields[6..].join(" ");
            fields.truncate(6);
            fields[5].truncate(1);
            fields.push(comm.trim_end_matches(" <defunct>").to_owned());
            Some((fields[0].parse().ok()?, fields))
        })
        .collect()
}

#[test]
fn agrees_with_ps() {
    // Ten sleeping processes of our own, so that a near-empty CI container still gives
    // enough processes to compare.
    let group = spawn_group(
        scratch("ps"),
        "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 60 & done; wait",
        &[],
    );
    let leader = u64::from(group.pid());
    poll(&["--json", "--pid", &leader.to_string()], |found| {
        found.iter().filter(|r| r["ppid"] == leader).count() == 10
    });
    // Taken between two ps runs; only processes that ps saw unchanged twice are compared.
    let before = ps_snapshot();
    let ours = records(&["--json"]);
    let after = ps_snapshot();
    let stable: HashMap<&u64, &Vec<String>> = before
        .iter()
        .filter(|(pid, fields)| after.get(pid) == Some(fields))
        .collect();
    assert!(stable.len() >= 10, "too few stable processes: {stable:?}");
    let mut compared = 0;
    let mut seen = 0;
    for record in &ours {
        let pid = record["pid"].as_u64().unwrap();
        let Some(fields) = stable.get(&pid) else {
            continue;
        };
        seen += 1;
        let comm = match &record["comm"] {
            Value::String(comm) => comm.clone(),
            other => other["lossy"].as_str().unwrap().to_owned(),
        };
        let mine = [
            pid.to_string(),
            record["ppid"].to_string(),
            record["pgid"].to_string(),
            record["sid"].to_string(),
            record["uid"].to_string(),
            record["state"].as_str().unwrap().to_owned(),
            comm,
        ];
        assert_eq!(mine[..5], fields[..5], "pid {pid}");
        // A process that ps saw asleep twice may have been running when we looked.
        let transient = |state: &str| state == "R" || state == "D";
        if !(transient(&mine[5]) || transient(&fields[5])) {
            assert_eq!(mine[5], fields[5], "state of pid {pid}");
        }
        // ps shows control characters and bytes beyond ASCII as ? or . in the C locale.
        if mine[6]
            .chars()
            .all(|c| c.is_ascii() && !c.is_ascii_control())
        {
            // A kworker's name ends with the work queue it serves at the moment.
            let fixed = |comm: &str| match comm.strip_prefix("kworker/") {
                Some(rest) => rest.split('-').next().unwrap_or_default().to_owned(),
                None => comm.to_owned(),
            };
            assert_eq!(fixed(&mine[6]), fixed(&fields[6]), "comm of pid {pid}");
        }
        compared += 1;
    }
    // Every stable process (but ps itself and our own run, which came and went) is ours too.
    assert_eq!(seen, stable.len(), "processes ps saw twice that we missed");
    assert!(compared >= 10);
}

#[test]
#[ignore = "needs root: runs proctree as nobody"]
fn unprivileged_run_marks_what_it_may_not_read() {
    require_root();
    require_program("setpriv", &["--version"]);
    // The build directory may not be open to nobody; a copy in a scratch directory is.
    let dir = scratch("nobody");
    let binary = dir.join("proctree");
    copy_executable(Path::new(env!("CARGO_BIN_EXE_proctree")), &binary);
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let as_nobody = |args: &[&str]| {
        let mut command = Command::new("setpriv");
        command
            .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
            .arg(&binary)
            .args(args)
            .env("LC_ALL", "C.UTF-8")
            .stdin(Stdio::null());
        run(&mut command, LIMIT)
    };
    let output = as_nobody(&["--json"]);
    assert_eq!(code(&output), 0, "stderr: {}", stderr_text(&output));
    assert_eq!(stderr_text(&output), "");
    let found: Vec<Value> = stdout_text(&output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ours = found
        .iter()
        .find(|r| r["exe"] == binary.to_str().unwrap())
        .expect("our own executable is readable");
    assert_eq!(ours["user"], "nobody");
    assert_eq!(ours["denied"], json!([]));
    let root_processes: Vec<&Value> = found
        .iter()
        .filter(|r| r["uid"] == 0 && r["kthread"] == false && r["state"] != "Z")
        .collect();
    assert!(!root_processes.is_empty());
    for record in &root_processes {
        assert_eq!(record["exe"], Value::Null, "{record}");
        assert_eq!(record["denied"], json!(["exe"]), "{record}");
        assert!(record["args"].as_array().is_some());
    }
    for record in found.iter().filter(|r| r["kthread"] == true) {
        assert_eq!(record["denied"], json!([]), "{record}");
    }
    // In text, a denied field is ? and an absent one is -.
    let output = as_nobody(&["--flat", "--pid", "1"]);
    assert_eq!(code(&output), 0);
    let line = stdout_text(&output);
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields[..3], ["1", "0", "root"], "{line}");
    assert_eq!(fields[12], "?", "{line}");
    // Another user's fds may not be read: its ports are unknown, not none.
    let output = as_nobody(&["--flat", "--ports", "--pid", "1"]);
    assert_eq!(code(&output), 0, "stderr: {}", stderr_text(&output));
    let text = stdout_text(&output);
    let init_line = text
        .lines()
        .find(|line| line.split_whitespace().next() == Some("1"))
        .unwrap_or_else(|| panic!("no line for pid 1: {text}"));
    assert!(init_line.ends_with(" ports: ?"), "{init_line}");
    let output = as_nobody(&["--json", "--ports", "--pid", "1"]);
    let init: Value = serde_json::from_str(stdout_text(&output).lines().next().unwrap()).unwrap();
    assert_eq!(init["denied"], json!(["exe", "ports"]), "{init}");
    assert_eq!(init["ports"], Value::Null, "{init}");
    // --user keeps that user's processes: this run itself, and whatever else runs as
    // nobody meanwhile (other tests' servers drop to it), nothing of another user.
    let output = as_nobody(&["--flat", "--user", "nobody"]);
    assert_eq!(code(&output), 0);
    let text = stdout_text(&output);
    for line in text.lines() {
        assert_eq!(line.split_whitespace().nth(2), Some("nobody"), "{text}");
    }
    let this_run = text
        .lines()
        .filter(|line| line.ends_with(" --flat --user nobody"));
    assert_eq!(this_run.count(), 1, "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn kernel_threads_are_flagged_and_can_be_hidden() {
    let all = records(&["--json"]);
    let kernel = all.iter().filter(|r| r["kthread"] == true).count();
    let hidden = records(&["--json", "--no-kernel"]);
    assert!(hidden.iter().all(|r| r["kthread"] == false));
    if kernel == 0 {
        // Inside a pid namespace no kernel thread is visible: /proc must agree.
        assert_eq!(
            kernel_threads_in_proc(),
            0,
            "proctree missed kernel threads"
        );
        return;
    }
    assert!(
        all.iter()
            .any(|r| r["pid"] == 2 && r["comm"] == "kthreadd" && r["kthread"] == true)
    );
    assert!(hidden.len() < all.len());
}

/// How many processes /proc itself flags as kernel threads (PF_KTHREAD in stat's flags).
fn kernel_threads_in_proc() -> usize {
    const PF_KTHREAD: u64 = 0x0020_0000;
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .filter(|stat| {
            // state ppid pgrp session tty_nr tpgid flags: the 7th field after the name.
            let after_name = &stat[stat.rfind(')').unwrap() + 2..];
            let flags: u64 = after_name.split(' ').nth(6).unwrap().parse().unwrap();
            flags & PF_KTHREAD != 0
        })
        .count()
}

#[test]
fn a_closed_pipe_is_quiet_and_a_full_disk_is_not() {
    assert_quiet_on_closed_pipe(tool("proctree").args(["--threads", "-a"]));
    assert_full_disk_is_an_error("proctree", &mut tool("proctree"));
}

#[test]
fn bad_usage_and_missing_processes() {
    // A user that is not there is a thing named that is not there: status 1, as ps and
    // pstree give, one line, and the other users' processes still shown.
    let by_ps = Command::new("ps")
        .args(["-u", "no-such-user-here"])
        .output()
        .expect("run ps");
    assert_eq!(by_ps.status.code(), Some(1));
    let output = run(
        tool("proctree").args(["--user", "no-such-user-here"]),
        LIMIT,
    );
    assert_eq!(code(&output), 1);
    assert_eq!(stdout_text(&output), "");
    assert_eq!(
        stderr_text(&output),
        "proctree: --user 'no-such-user-here': no such user\n"
    );
    let output = run(
        tool("proctree").args(["-o", "uid", "-u", "no-such-user-here,root"]),
        LIMIT,
    );
    assert_eq!(code(&output), 1);
    assert!(
        stdout_text(&output).lines().any(|line| line.trim() == "0"),
        "{}",
        stdout_text(&output)
    );
    assert_eq!(
        stderr_text(&output),
        "proctree: --user 'no-such-user-here': no such user\n"
    );
    let output = run(tool("proctree").args(["--ancestors"]), LIMIT);
    assert_eq!(code(&output), 2);
    let output = run(tool("proctree").args(["--pid", "4294967295"]), LIMIT);
    assert_eq!(code(&output), 1);
    assert_eq!(stdout_text(&output), "");
    assert_eq!(
        stderr_text(&output),
        "proctree: --pid 4294967295: no such process\n"
    );
}

/// The script of the listener test: a python3 (renamed, so --name can find it) that listens
/// on TCP and UDP ports of 127.0.0.1 and writes them down, beside a sleep that listens on
/// nothing. The interpreter is exec'd by its real path: a pyenv shim would lose the name.
const LISTENER: &str = r#"
python=$(python3 -c 'import sys; print(sys.executable)')
(exec -a "$NAME" "$python" -c '
import os, socket, time
tcp = socket.socket(); tcp.bind(("127.0.0.1", 0)); tcp.listen()
udp = socket.socket(type=socket.SOCK_DGRAM); udp.bind(("127.0.0.1", 0))
with open("ports.tmp", "w") as f:
    f.write("%d %d" % (tcp.getsockname()[1], udp.getsockname()[1]))
os.rename("ports.tmp", "ports")
time.sleep(30)
') &
sleep 30 &
wait
"#;

#[test]
fn ports_are_shown_beside_their_process() {
    let dir = scratch("ports");
    let name = format!("ptports-{}", std::process::id());
    let group = spawn_group(dir.clone(), LISTENER, &[("NAME", Path::new(&name))]);
    let started = Instant::now();
    let written = loop {
        if let Ok(text) = std::fs::read_to_string(dir.join("ports")) {
            break text;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no listener");
        std::thread::sleep(Duration::from_millis(20));
    };
    let (tcp, udp) = written.split_once(' ').unwrap();
    let pid = group.pid().to_string();
    let found = records(&["--json", "--ports", "--pid", &pid]);
    let listener = found
        .iter()
        .find(|r| r["args"][0] == name.as_str())
        .expect("the listener is in the tree");
    let (tcp_port, udp_port): (u16, u16) = (tcp.parse().unwrap(), udp.parse().unwrap());
    assert_eq!(
        listener["ports"],
        json!([
            {"proto": "tcp", "address": "127.0.0.1", "port": tcp_port},
            {"proto": "udp", "address": "127.0.0.1", "port": udp_port},
        ]),
        "{listener}"
    );
    for other in found.iter().filter(|r| r["pid"] != listener["pid"]) {
        assert_eq!(other["ports"], json!([]), "{other}");
    }
    // Without --ports there is no answer, not an empty one.
    let plain = records(&["--json", "--pid", &pid]);
    assert!(plain.iter().all(|r| r["ports"].is_null()));

    // In text, after the name or the command; svcname reads the first port.
    let suffix = format!(" ports: tcp 127.0.0.1:{tcp} udp 127.0.0.1:{udp}");
    let pid_of_listener = listener["pid"].to_string();
    for args in [
        &["--ports", "--pid", &pid][..],
        &["--ports", "--flat", "--pid", &pid],
        &["--ports", "--name", &name],
        &["--ports", "-a", "--name", &name],
    ] {
        let output = run(tool("proctree").args(args), LIMIT);
        assert_eq!(code(&output), 0, "{args:?}: {}", stderr_text(&output));
        let text = stdout_text(&output);
        for line in text.lines() {
            let first = line.split_whitespace().next().unwrap();
            if first == pid_of_listener {
                assert!(line.ends_with(&suffix), "{args:?}: {line}");
            } else if first == std::process::id().to_string() {
                // The test process itself is an ancestor shown for context; other tests
                // running beside this one hold listeners of their own in it.
            } else {
                assert!(!line.contains("ports:"), "{args:?}: {line}");
            }
        }
        assert!(
            text.lines().any(|l| l.ends_with(&suffix)),
            "{args:?}: {text}"
        );
    }
    // --name keeps the listener and its context: the bash above it, not the sleep beside it.
    let named = records(&["--json", "--ports", "--name", &name]);
    let matched: Vec<&Value> = named.iter().filter(|r| r["matched"] == true).collect();
    assert_eq!(matched.len(), 1, "{named:#?}");
    assert_eq!(matched[0]["ports"], listener["ports"]);
    assert!(
        !named
            .iter()
            .any(|r| r["comm"] == "sleep" && r["ppid"] == listener["ppid"])
    );

    // CSV: one cell.
    let output = run(
        tool("proctree").args(["--csv", "--ports", "--name", &name]),
        LIMIT,
    );
    let mut reader = csv::Reader::from_reader(output.stdout.as_slice());
    let ports_column = reader.headers().unwrap().iter().position(|h| h == "ports");
    let cells: Vec<String> = reader
        .records()
        .map(|r| r.unwrap()[ports_column.expect("a ports column")].to_owned())
        .collect();
    assert!(
        cells.contains(&format!("tcp 127.0.0.1:{tcp} udp 127.0.0.1:{udp}")),
        "{cells:?}"
    );

    // The ports column (and sort key) looks the ports up, --ports or not: a `-` there
    // would say "listens on nothing".
    let column = format!("tcp 127.0.0.1:{tcp} udp 127.0.0.1:{udp}");
    for args in [
        &["-o", "pid,ports", "-p", &pid_of_listener][..],
        &["-o", "pid,ports", "--ports", "-p", &pid_of_listener],
        &["-o", "pid,ports", "--sort", "ports", "-p", &pid_of_listener],
    ] {
        let output = run(tool("proctree").args(args), LIMIT);
        assert_eq!(code(&output), 0, "{args:?}: {}", stderr_text(&output));
        // The cell is one token, its blanks escaped as in any text cell.
        assert_eq!(
            stdout_text(&output).replace(r"\x20", " "),
            format!("{pid_of_listener} {column}\n"),
            "{args:?}"
        );
    }
    let chosen = records(&["--json", "-o", "pid,ports", "-p", &pid_of_listener]);
    assert_eq!(chosen.len(), 1, "{chosen:#?}");
    assert_eq!(chosen[0]["ports"], listener["ports"]);
    let sorted = records(&["--json", "--sort", "ports", "--pid", &pid]);
    let found = sorted.iter().find(|r| r["pid"] == listener["pid"]).unwrap();
    assert_eq!(found["ports"], listener["ports"]);
}

/// The script of the churn test: bursts of short-lived children, reaped by bash as their
/// SIGCHLD arrives, so that proctree finds some of them dying (Z) and some being reaped (X)
/// as it reads them. Bounded in count and time, should the test die before killing it.
const CHURN: &str = r"
n=0
while [ $n -lt 5000 ] && [ $SECONDS -lt 30 ]; do
    for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16; do (exit) & done
    wait
    n=$((n + 1))
done
";

/// Starts and ends threads in this process until `stop` is set (or a bound is reached), so
/// that `--threads` finds some of them ended as it reads them.
fn churn_threads(stop: &AtomicBool) {
    let started = Instant::now();
    for _ in 0..10_000 {
        if stop.load(Ordering::Relaxed) || started.elapsed() > Duration::from_secs(30) {
            return;
        }
        let threads: Vec<_> = (0..32).map(|_| std::thread::spawn(|| {})).collect();
        for thread in threads {
            thread.join().unwrap();
        }
    }
}

/// A task reaped between the listing of /proc and the read of its stat shows
/// `Z 0 -1 -1` or `X 0 -1 -1` there, and must be skipped like one whose entry has gone.
/// It shows that form only between two kernel locks, so the churn is heavy: a shell ending
/// processes, two threads ending threads of this process; and every view is run with
/// --threads, which reads what the view reads and each thread besides. Short-lived threads
/// are ended far faster than processes, so most failures of a broken reader come from them.
#[test]
fn processes_that_end_while_they_are_read_are_skipped() {
    // Seconds of churn on two cores: the tests that time themselves wait for it.
    let _alone = exclusive();
    let churner = spawn_group(scratch("churn"), CHURN, &[]);
    let stop = AtomicBool::new(false);
    let leader = churner.pid().to_string();
    let uid = nix::unistd::geteuid().to_string();
    let views: &[&[&str]] = &[
        &[],
        &["--flat"],
        &["--json"],
        &["--csv"],
        &["-a"],
        &["--pid", &leader, "--ancestors"],
        &["--json", "--pid", &leader, "-s"],
        &["--name", "bash"],
        &["--flat", "--name", "bash"],
        &["--csv", "--user", &uid],
        &["--ports"],
        &["--flat", "--ports", "-K"],
    ];
    let mut failures = Vec::new();
    let mut runs = 0;
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| churn_threads(&stop));
        }
        let started = Instant::now();
        for view in views.iter().cycle().take(1000) {
            if started.elapsed() > Duration::from_secs(10) {
                break;
            }
            let output = run(tool("proctree").args(*view).arg("--threads"), LIMIT);
            runs += 1;
            if code(&output) != 0 || !output.stderr.is_empty() {
                failures.push(format!(
                    "{view:?}: status {}: {}",
                    code(&output),
                    stderr_text(&output)
                ));
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    drop(churner);
    assert!(
        failures.is_empty(),
        "{} of {runs} runs failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A process whose argument holds a terminal escape and a right-to-left override: the
/// text lines carry them escaped, JSON exactly, CSV escaped.
#[test]
fn hostile_command_lines_are_escaped_in_text_and_csv() {
    let mut child = Command::new("sleep")
        .arg0("\u{202e}txt.exe\u{1b}]0;pwned\u{7}")
        .arg("20")
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let dangerous = |text: &str| text.contains(['\u{1b}', '\u{7}', '\u{202e}']);
    for args in [
        &["-a", "--pid", &pid][..],
        &["--flat", "--pid", &pid],
        &["--csv", "--pid", &pid],
    ] {
        let output = run(tool("proctree").args(args), LIMIT);
        assert_eq!(code(&output), 0, "{args:?}: {}", stderr_text(&output));
        let text = stdout_text(&output);
        assert!(!dangerous(&text), "{args:?}: {text:?}");
        assert!(
            text.contains("\\xe2\\x80\\xaetxt.exe\\x1b]0;pwned\\x07"),
            "{args:?}: {text}"
        );
    }
    let json = records(&["--json", "--pid", &pid]);
    assert_eq!(json[0]["args"][0], "\u{202e}txt.exe\u{1b}]0;pwned\u{7}");
    let _ = child.kill();
    let _ = child.wait();
}

/// Runs proctree with `args` on a pseudo-terminal (util-linux's `script`), as a person does;
/// returns what the terminal showed, with `\r\n` made `\n`.
fn on_a_terminal(args: &[&str]) -> String {
    require_program("script", &["--version"]);
    let words: Vec<String> = std::iter::once(crate::util::tool_path("proctree"))
        .chain(args.iter().copied())
        .map(|word| format!("'{}'", word.replace('\'', r"'\''")))
        .collect();
    let mut script = Command::new("script");
    script.args(["-qec", &words.join(" "), "/dev/null"]);
    for (name, value) in tool("proctree").get_envs() {
        match value {
            Some(value) => script.env(name, value),
            None => script.env_remove(name),
        };
    }
    let output = run(script.stdin(Stdio::null()), LIMIT);
    assert_eq!(code(&output), 0, "{}", stdout_text(&output));
    stdout_text(&output).replace("\r\n", "\n")
}

/// What pstree and ps users type: a positional pid, pstree's -p, a header on a terminal,
/// ps's short start times, and no padding after a path.
#[test]
fn pstree_and_ps_habits() {
    let group = spawn_group(
        scratch("habits"),
        &format!("sleep {LIFETIME} & sleep {LIFETIME} & wait"),
        &[],
    );
    let leader = group.pid().to_string();
    poll(&["--json", "--pid", &leader], |found| found.len() == 3);
    // `proctree PID`, `-p PID` and `-p` before `--pid PID` are --pid PID.
    let pids =
        |args: &[&str]| -> Vec<Value> { records(args).iter().map(|r| r["pid"].clone()).collect() };
    let expected = pids(&["--json", "--pid", &leader]);
    assert_eq!(pids(&["--json", &leader]), expected);
    assert_eq!(pids(&["--json", "-p", &leader]), expected);
    assert_eq!(pids(&["--json", "-p", "--pid", &leader]), expected);
    let output = run(tool("proctree").arg("-p"), LIMIT);
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    assert!(
        stdout_text(&output).starts_with("1 "),
        "{}",
        stdout_text(&output)
    );
    let output = run(tool("proctree").arg("-s"), LIMIT);
    assert_eq!(code(&output), 2);
    assert!(stderr_text(&output).starts_with("proctree: --ancestors: "));

    // A header on a terminal, none in a pipe.
    let shown = on_a_terminal(&[&leader]);
    let mut lines = shown.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["pid", "pgid", "sid", "tty", "state", "tree"],
        "{shown}"
    );
    assert!(
        lines.next().unwrap().starts_with(&format!("{leader} ")),
        "{shown}"
    );
    let piped = stdout_text(&run(tool("proctree").arg(&leader), LIMIT));
    assert!(piped.starts_with(&format!("{leader} ")), "{piped}");
    let shown = on_a_terminal(&["--flat", &leader]);
    let header: Vec<&str> = shown.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header[..3], ["pid", "ppid", "user"], "{shown}");

    // Start times as ps's STIME shows them, in the same time zone.
    let output = Command::new("ps")
        .args(["-o", "stime=", "-p", &leader])
        .env("LC_ALL", "C")
        .output()
        .expect("run ps");
    let stime = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let flat = stdout_text(&run(tool("proctree").args(["--flat", &leader]), LIMIT));
    let first: Vec<&str> = flat.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(first[9], stime, "{flat}");

    // The exe column is not padded: every line, `?` or a long path, is one space before
    // its command (arguments are escaped tokens, single-spaced).
    let flat = stdout_text(&run(tool("proctree").arg("--flat"), LIMIT));
    for line in flat.lines() {
        let mut rest = line;
        for _ in 0..13 {
            let (_, after) = rest
                .trim_start()
                .split_once(' ')
                .unwrap_or_else(|| panic!("too few columns: {line}"));
            rest = after;
        }
        assert!(!rest.starts_with(' '), "padded exe: {line}");
    }
    drop(group);
}

/// The pids in pstree's drawing: `name(pid)`, or with -a (`args`) `name,pid ARGS`, a
/// process a line, whose arguments are not looked into.
fn pstree_pids(text: &str, args: bool) -> Vec<u64> {
    let mut pids: Vec<u64> = if args {
        text.lines()
            .filter_map(|line| {
                let name = line.trim_start_matches([' ', '|', '`', '-', '+']);
                let (_, pid) = name.split(' ').next()?.rsplit_once(',')?;
                pid.parse().ok()
            })
            .collect()
    } else {
        text.split(')')
            .filter_map(|part| part.rsplit_once('(')?.1.parse().ok())
            .collect()
    };
    pids.sort_unstable();
    pids
}

/// pstree's bundles after -p: `-pa` is `-p -a`, `-ps PID` is `-p -s PID`, and they show the
/// processes pstree shows; `-p123` is still pid 123.
#[test]
fn pstree_bundles_after_p() {
    require_program("pstree", &["--version"]);
    let group = spawn_group(
        scratch("bundles"),
        &format!("sleep {LIFETIME} & sleep {LIFETIME} & wait"),
        &[],
    );
    let leader = group.pid().to_string();
    poll(&["--json", "--pid", &leader], |found| found.len() == 3);
    let text = |args: &[&str]| {
        let output = run(tool("proctree").args(args), LIMIT);
        assert_eq!(code(&output), 0, "{args:?}: {}", stderr_text(&output));
        stdout_text(&output)
    };
    let pids = |args: &[&str]| -> Vec<u64> {
        let mut pids: Vec<u64> = records(args)
            .iter()
            .map(|r| r["pid"].as_u64().unwrap())
            .collect();
        pids.sort_unstable();
        pids
    };
    let pstree = |args: &[&str]| {
        // -l: pstree cuts lines at 132 columns in a pipe.
        let output = Command::new("pstree")
            .arg("-l")
            .args(args)
            .env("LC_ALL", "C")
            .output()
            .expect("run pstree");
        assert!(output.status.success(), "pstree {args:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let with_args = text(&["-pa", &leader]);
    assert_eq!(with_args, text(&["-p", "-a", &leader]));
    assert!(
        with_args.contains(&format!("sleep {LIFETIME}")),
        "{with_args}"
    );
    assert_eq!(
        pids(&["--json", "-pa", &leader]),
        pstree_pids(&pstree(&["-pa", &leader]), true)
    );
    let chain = pids(&["--json", "-ps", &leader]);
    assert_eq!(chain, pids(&["--json", "-p", "-s", &leader]));
    assert!(chain.contains(&1), "{chain:?}");
    let drawn = pstree(&["-ps", &leader]);
    assert_eq!(chain, pstree_pids(&drawn, false), "{drawn}");
    assert_eq!(
        pids(&["--json", "-psa", &leader]),
        pstree_pids(&pstree(&["-psa", &leader]), true)
    );
    // A pid glued on is a pid, as before.
    assert_eq!(
        pids(&["--json", &format!("-p{leader}")]),
        pids(&["--json", &leader])
    );
    drop(group);
}

/// -p and -u take comma lists and repeats, as ps's do; with -o, -p is ps's -p: the listed
/// processes alone, which ps prints too, where without -o it is pstree's subtree.
#[test]
fn pid_and_user_lists() {
    let group = spawn_group(
        scratch("lists"),
        &format!("sleep {LIFETIME} & sleep {LIFETIME} & wait"),
        &[],
    );
    let leader = group.pid().to_string();
    let found = poll(&["--json", "--pid", &leader], |found| found.len() == 3);
    let children: Vec<String> = found
        .iter()
        .map(|r| r["pid"].to_string())
        .filter(|pid| *pid != leader)
        .collect();
    let sorted = |text: &str| -> Vec<u64> {
        let mut pids: Vec<u64> = text
            .split_whitespace()
            .map(|pid| pid.parse().unwrap())
            .collect();
        pids.sort_unstable();
        pids
    };
    let proctree = |args: &[&str]| {
        let output = run(tool("proctree").args(args), LIMIT);
        assert_eq!(code(&output), 0, "{args:?}: {}", stderr_text(&output));
        sorted(&stdout_text(&output))
    };
    let listed = format!("{leader},{}", children[0]);
    let output = Command::new("ps")
        .args(["-o", "pid=", "-p", &listed])
        .output()
        .expect("run ps");
    let by_ps = sorted(&String::from_utf8_lossy(&output.stdout));
    assert_eq!(by_ps.len(), 2, "{by_ps:?}");
    assert_eq!(proctree(&["-o", "pid", "-p", &listed]), by_ps);
    assert_eq!(
        proctree(&["-o", "pid", "-p", &leader, "--pid", &children[0]]),
        by_ps
    );
    let pids = |args: &[&str]| -> Vec<u64> {
        let mut pids: Vec<u64> = records(args)
            .iter()
            .map(|r| r["pid"].as_u64().unwrap())
            .collect();
        pids.sort_unstable();
        pids
    };
    assert_eq!(pids(&["--json", "-o", "pid", "-p", &listed]), by_ps);
    // Without -o, each listed pid's subtree, as pstree shows it.
    let whole = pids(&["--json", "-p", &leader]);
    assert_eq!(whole.len(), 3, "{whole:?}");
    assert_eq!(pids(&["--json", "-p", &listed]), whole);
    // The positional pid stays pstree's, -o or not.
    assert_eq!(pids(&["--json", "-o", "pid", &leader]), whole);

    // Users: a list, names and uids mixed; in -o's text the matches alone.
    let uids = proctree(&["-o", "uid", "-u", "nobody,0"]);
    assert!(uids.contains(&0), "{uids:?}");
    assert!(uids.iter().all(|&uid| uid == 0 || uid == 65534), "{uids:?}");
    let output = run(
        tool("proctree").args(["-u", "root,nobody", "-u", "0"]),
        LIMIT,
    );
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    drop(group);
}

/// Whether process `pid` holds back SIGINT and SIGTERM (bits 2 and 15 of SigBlk in its
/// status), as the tools do once they are ready to take them between two records.
fn holds_back_interrupts(pid: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("SigBlk:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & 0x4002 == 0x4002)
}

/// SIGINT or SIGTERM while `--interval` measures: `proctree: interrupted`, status 1,
/// nothing printed, at once rather than after the interval (docs/FORMAT.md, "Signals and
/// standard input").
#[test]
fn a_signal_during_the_interval_is_an_interrupted_run() {
    for sent in [Signal::SIGINT, Signal::SIGTERM] {
        let mut child = tool("proctree")
            .args(["-o", "pid,%cpu", "--interval", "3s"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn proctree");
        let started = Instant::now();
        // Sent before the signals are held back, it would kill proctree: wait for that
        // (still in the interval), up to two seconds.
        while !holds_back_interrupts(child.id()) && started.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(10));
        }
        let pid = Pid::from_raw(i32::try_from(child.id()).unwrap());
        let sent_at = Instant::now();
        nix::sys::signal::kill(pid, sent).unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let (code, stderr) = wait_for_stderr(child);
        assert!(
            sent_at.elapsed() < Duration::from_secs(2),
            "{sent}: not at once"
        );
        assert_eq!(code, Some(1), "{sent}: {stderr}");
        assert_eq!(stderr, "proctree: interrupted\n", "{sent}");
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut text).unwrap();
        assert_eq!(text, "", "{sent}");
    }
}

/// %CPU, %MEM and elapsed time: a busy loop shows its CPU, a sleeper none, and the
/// memory share is RSS over MemTotal.
#[test]
fn cpu_memory_and_elapsed_time() {
    let group = spawn_group(
        scratch("usage"),
        &format!("sleep {LIFETIME} & timeout {LIFETIME} sh -c 'while :; do :; done' & wait"),
        &[],
    );
    let leader = group.pid().to_string();
    poll(&["--json", "--pid", &leader], |found| {
        ["sleep", "sh"]
            .iter()
            .all(|comm| found.iter().any(|r| r["comm"] == *comm))
    });
    std::thread::sleep(Duration::from_millis(1500));
    let found = records(&["--json", "--pid", &leader]);
    let mem_total: f64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap();
    for record in &found {
        let elapsed = record["elapsed_s"].as_u64().unwrap();
        assert!((1..=12).contains(&elapsed), "{record}");
        let rss = record["rss_kib"].as_f64().unwrap();
        let mem = record["mem_percent"].as_f64().unwrap();
        assert!((mem - rss * 100.0 / mem_total).abs() <= 0.1, "{record}");
    }
    let cpu = |comm: &str| {
        found
            .iter()
            .find(|r| r["comm"] == comm)
            .unwrap_or_else(|| panic!("no {comm}: {found:#?}"))["cpu_percent"]
            .as_f64()
            .unwrap()
    };
    assert!(cpu("sleep") < 1.0, "{found:#?}");
    // The loop shares two cores with the rest of the tests; it still gets a good part.
    assert!(cpu("sh") > 10.0, "{found:#?}");
    drop(group);
}

/// ps's column choice and sorting: -o with ps's names and headers (and ours), --sort with
/// ps's keys, the chosen fields alone in JSON and CSV, %CPU over an interval.
#[test]
fn ps_columns_sorting_and_interval() {
    let group = spawn_group(
        scratch("columns"),
        &format!("sleep {LIFETIME} & timeout {LIFETIME} sh -c 'while :; do :; done' & wait"),
        &[],
    );
    let leader = group.pid().to_string();
    poll(&["--json", "--pid", &leader], |found| {
        ["sleep", "sh"]
            .iter()
            .all(|comm| found.iter().any(|r| r["comm"] == *comm))
    });
    let text = |args: &[&str]| {
        let output = run(tool("proctree").args(args), LIMIT);
        assert_eq!(code(&output), 0, "{args:?}: {}", stderr_text(&output));
        stdout_text(&output)
    };
    let shown = text(&[
        "--header",
        "-o",
        "pid,ppid,user,%cpu,%mem,rss,vsz,etimes,args",
        &leader,
    ]);
    let header: Vec<&str> = shown.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "PID", "PPID", "USER", "%CPU", "%MEM", "RSS", "VSZ", "ELAPSED", "COMMAND"
        ]
    );
    // Rows are in pid order, which need not put the leader first once pids wrap around.
    assert!(
        shown
            .lines()
            .skip(1)
            .any(|line| line.trim_start().starts_with(&format!("{leader} "))),
        "{shown}"
    );
    let shown = text(&["--header", "-o", "pid,rss_kib", "-o", "args=CMD", &leader]);
    assert_eq!(
        shown
            .lines()
            .next()
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["PID", "rss_kib", "CMD"]
    );
    // ps's keys: - descending, + ascending, the next key breaking ties.
    let column = |text: &str, n: usize| -> Vec<u64> {
        text.lines()
            .map(|line| line.split_whitespace().nth(n).unwrap().parse().unwrap())
            .collect()
    };
    let rss = column(&text(&["-o", "rss,pid", "--sort", "-rss,+pid"]), 0);
    assert!(rss.windows(2).all(|w| w[0] >= w[1]), "{rss:?}");
    let pids = column(&text(&["-o", "pid", "--sort", "+pid"]), 0);
    assert!(pids.windows(2).all(|w| w[0] < w[1]), "{pids:?}");
    let pids = column(&text(&["-o", "pid", "--sort", "-pid"]), 0);
    assert!(pids.windows(2).all(|w| w[0] > w[1]), "{pids:?}");
    // JSON and CSV keep the chosen fields, under the records' names, in the given order.
    let found = records(&[
        "--json",
        "-o",
        "pid,%cpu,args",
        "--sort",
        "-etimes",
        &leader,
    ]);
    for record in &found {
        let keys: Vec<&String> = record.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["pid", "cpu_percent", "args"], "{record}");
    }
    assert_eq!(
        found[0]["pid"].to_string(),
        leader,
        "the oldest first: {found:#?}"
    );
    let output = run(
        tool("proctree").args(["--csv", "-o", "pid,etime,comm", &leader]),
        LIMIT,
    );
    let mut reader = csv::Reader::from_reader(output.stdout.as_slice());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        ["pid", "elapsed_s", "comm"]
    );
    // --interval: the loop is busy now, the sleeper is not.
    let found = records(&["--json", "-o", "comm,%cpu", "--interval", "500ms", &leader]);
    let cpu = |comm: &str| {
        found.iter().find(|r| r["comm"] == comm).unwrap()["cpu_percent"]
            .as_f64()
            .unwrap()
    };
    assert!(cpu("sleep") < 1.0, "{found:#?}");
    assert!(cpu("sh") > 10.0, "{found:#?}");
    drop(group);
}

/// An unknown -o column or --sort key is a usage error that lists the valid ones.
#[test]
fn unknown_columns_and_sort_keys() {
    for (args, start) in [
        (
            &["-o", "pid,nope"][..],
            "proctree: -o 'nope': unknown column; valid ones are: pid ppid ",
        ),
        (
            &["--sort", "-nope"][..],
            "proctree: --sort '-nope': unknown key; valid ones",
        ),
    ] {
        let output = run(tool("proctree").args(args), LIMIT);
        assert_eq!(code(&output), 2, "{args:?}");
        assert!(
            stderr_text(&output).starts_with(start),
            "{}",
            stderr_text(&output)
        );
        assert_eq!(stdout_text(&output), "");
    }
}
