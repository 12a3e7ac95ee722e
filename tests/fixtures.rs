//! What the tools' end-to-end tests share beyond spawning a tool (util.rs): the checks of
//! prerequisites, network namespaces that clean up after themselves, and the two write
//! failures every tool must handle alike (a reader that goes away, a full disk).
//!
//! A test that needs root is marked `#[ignore = "needs root: ..."]` and calls
//! [`require_root`] first: it runs only when asked (`make test` asks as root, so CI always
//! does), and there a missing privilege or program fails it rather than passing silently.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::util::{LIMIT, is_root, wait_until_exit};

/// Held by a test that loads the machine on purpose (churn) and by tests that time what
/// they check: the two kinds never run at once within this test binary.
pub fn exclusive() -> MutexGuard<'static, ()> {
    static ALONE: Mutex<()> = Mutex::new(());
    // A failed test that held it poisons it; the next one can still go.
    ALONE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Fails the test unless it runs as root.
pub fn require_root() {
    assert!(
        is_root(),
        "this test needs root; it runs with `make test` as root, as in CI"
    );
}

/// Fails the test unless `program` runs (`program --version` or the given `probe` args);
/// .ci/run installs every such program.
pub fn require_program(program: &str, probe: &[&str]) {
    let ran = Command::new(program)
        .args(probe)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(
        ran.is_ok_and(|status| status.success()),
        "this test needs {program}: install it (.ci/run says how)"
    );
}

/// Runs a shell script, failing the test with its stderr if any command fails.
pub fn sh(script: &str) {
    let output = Command::new("sh").args(["-ec", script]).output().unwrap();
    assert!(
        output.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Writes an executable script through a child process. Written from the test process, the
/// file would be open for writing in it while another test's thread forks, and the child's
/// copy of that descriptor makes exec fail with "Text file busy" until it execs in turn.
pub fn write_executable(path: &std::path::Path, text: &str) {
    use std::io::Write;
    let mut writer = Command::new("sh")
        .args(["-ec", "cat > \"$1\"; chmod 755 \"$1\"", "sh"])
        .arg(path)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    writer
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    assert!(writer.wait().unwrap().success(), "{}", path.display());
}

/// A network namespace of the test's own, with its loopback up; deleted (with its
/// /etc/netns settings folder, if it has one) however the test ends.
pub struct Netns {
    pub name: String,
    settings: Option<PathBuf>,
}

impl Netns {
    /// A new namespace named after `tag`, this process and a counter, so that tests that
    /// run at the same time, or a stale one from a killed run, never share one.
    pub fn new(tag: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(Stdio::null())
            .status();
        sh(&format!("ip netns add {name}\nip -n {name} link set lo up"));
        Self {
            name,
            settings: None,
        }
    }

    /// Like [`Netns::new`], with files that `ip netns exec` mounts over /etc inside it
    /// (resolv.conf, hosts, ...): (file name, contents) pairs.
    pub fn with_etc(tag: &str, files: &[(&str, &str)]) -> Self {
        let mut namespace = Self::new(tag);
        let settings = PathBuf::from(format!("/etc/netns/{}", namespace.name));
        std::fs::create_dir_all(&settings).unwrap();
        namespace.settings = Some(settings.clone());
        for (file, contents) in files {
            std::fs::write(settings.join(file), contents).unwrap();
        }
        namespace
    }

    /// A command that runs `program` inside the namespace.
    pub fn exec(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.name, program])
            .stdin(Stdio::null());
        command
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        if let Some(settings) = &self.settings {
            let _ = std::fs::remove_dir_all(settings);
        }
    }
}

/// Runs `command`, reads its first line of output, then closes the pipe: the tool must
/// notice at its next write and end with status 0 and nothing on stderr, as after
/// `tool | head -1`. Returns the line read.
pub fn assert_quiet_on_closed_pipe(command: &mut Command) -> String {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(
        !first.is_empty(),
        "the tool printed nothing before the pipe closed"
    );
    let (status, said) = wait_for_stderr(child);
    assert_eq!(status, Some(0), "{said}");
    assert_eq!(said, "");
    first
}

/// Runs `command` with its stdout on /dev/full: status 1 and one line,
/// `tool: writing output: No space left on device`.
pub fn assert_full_disk_is_an_error(tool: &str, command: &mut Command) {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let child = command
        .stdout(Stdio::from(full))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (status, said) = wait_for_stderr(child);
    assert_eq!(status, Some(1), "{said}");
    assert_eq!(
        said,
        format!("{tool}: writing output: No space left on device\n")
    );
}

/// Waits for a child whose stdout is not ours to read, within the tests' limit; its exit
/// code and what it said on stderr.
pub fn wait_for_stderr(mut child: Child) -> (Option<i32>, String) {
    let mut stderr = child.stderr.take().expect("piped stderr");
    let reader = std::thread::spawn(move || {
        let mut said = String::new();
        let _ = stderr.read_to_string(&mut said);
        said
    });
    let status = wait_until_exit(&mut child, LIMIT);
    (status.code(), reader.join().unwrap())
}

/// Sends SIGINT to a running child as soon as it has printed its first line on stdout
/// (piped, as its stderr), then reads the rest: the output, the exit code, and stderr.
pub fn interrupt_after_first_line(child: Child) -> (String, Option<i32>, String) {
    signal_after_first_line(child, nix::sys::signal::Signal::SIGINT)
}

/// Sends `sent` to a running child as soon as it has printed its first line on stdout
/// (piped, as its stderr), then reads the rest: the output, the exit code, and stderr.
pub fn signal_after_first_line(
    mut child: Child,
    sent: nix::sys::signal::Signal,
) -> (String, Option<i32>, String) {
    let mut reader = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut output = String::new();
    reader.read_line(&mut output).unwrap();
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, sent).unwrap();
    reader.read_to_string(&mut output).unwrap();
    let (code, stderr) = wait_for_stderr(child);
    (output, code, stderr)
}

/// A directory of the test's own under the system's temporary directory, removed with
/// everything in it however the test ends.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new, empty directory named after `tag` and this process.
    pub fn new(tag: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    /// A path inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
