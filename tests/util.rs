//! Helpers for spawning the built tools with a clean environment and a deadline.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// A command for one of the workspace's binaries, with an environment that cannot change
/// its output (locale, color, terminal width).
pub fn tool(name: &str) -> Command {
    let mut command = Command::new(tool_path(name));
    command
        .env_remove("NO_COLOR")
        .env_remove("COLUMNS")
        .env_remove("NMAPDIR")
        .env("LC_ALL", "C.UTF-8")
        .stdin(Stdio::null());
    command
}

/// Where cargo built one of the workspace's binaries.
pub fn tool_path(name: &str) -> &'static str {
    match name {
        "portscan" => env!("CARGO_BIN_EXE_portscan"),
        "proctree" => env!("CARGO_BIN_EXE_proctree"),
        "sockls" => env!("CARGO_BIN_EXE_sockls"),
        "svcname" => env!("CARGO_BIN_EXE_svcname"),
        other => panic!("no binary named {other}"),
    }
}

/// Runs `command` with `input` on stdin, killing it if it outlives `limit`.
pub fn run_with_input(command: &mut Command, input: &[u8], limit: Duration) -> Output {
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn the tool");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        // The tool may stop reading early; a broken pipe here is not the test's concern.
        let _ = stdin.write_all(&input);
    });
    let output = wait_with_deadline(child, limit);
    writer.join().expect("stdin writer");
    output
}

/// Runs `command` without input, killing it if it outlives `limit`.
pub fn run(command: &mut Command, limit: Duration) -> Output {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = command.spawn().expect("spawn the tool");
    wait_with_deadline(child, limit)
}

/// Waits for `child`, collecting its output; kills it and fails the test past `limit`.
pub fn wait_with_deadline(mut child: Child, limit: Duration) -> Output {
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stdout.read_to_end(&mut bytes);
        bytes
    });
    let err_reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stderr.read_to_end(&mut bytes);
        bytes
    });
    let status = wait_until_exit(&mut child, limit);
    Output {
        status,
        stdout: out_reader.join().expect("stdout reader"),
        stderr: err_reader.join().expect("stderr reader"),
    }
}

/// Waits for `child` to end; kills it and fails the test past `limit`.
pub fn wait_until_exit(child: &mut Child, limit: Duration) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait for the tool") {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the tool ran longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A helper process (a listener, a renamed process) started from `command`, and the first
/// line it printed: it prints one when it is ready, so the test waits for that.
pub fn spawn_ready(command: &mut Command) -> (Child, String) {
    let mut child = command
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn the helper");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .expect("the helper's first line");
    (child, line)
}

/// stdout as text, for assertions.
pub fn stdout_text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// stderr as text, for assertions.
pub fn stderr_text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Whether the tests run as root (network namespaces, nftables); tests that need it print
/// why they skip elsewhere.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// The exit code, failing the test if the tool died of a signal.
pub fn code(output: &Output) -> i32 {
    output
        .status
        .code()
        .unwrap_or_else(|| panic!("killed by a signal: {output:?}"))
}

pub const LIMIT: Duration = Duration::from_secs(30);
