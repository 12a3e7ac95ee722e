//! How every tool starts and ends: one `main` for all four, so that the rules around the run
//! (a closed stdout, --help and --version that cannot be written, the exit status) are kept
//! in one place rather than in each binary.

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::contract::error::{Error, Result, Status, finish};

/// Whether file descriptor 1 was closed when the process started (`tool 1>&-`). Rust's
/// runtime opens /dev/null on a closed standard descriptor before `main` runs (so that the
/// first file opened cannot become stdout by accident), and from then on the output would
/// vanish without an error. Only a constructor, run before the runtime's, can still see it.
static STDOUT_CLOSED_AT_START: AtomicBool = AtomicBool::new(false);

/// The same for file descriptor 0 (`tool <&-`): read, the runtime's /dev/null would pass
/// for an empty input.
static STDIN_CLOSED_AT_START: AtomicBool = AtomicBool::new(false);

// The one piece of code in the workspace that needs `unsafe`: code that runs before `main`
// cannot be declared any other way. It only asks whether /proc/self/fd/0 and 1 exist
// (metadata calls: no allocation worth naming, no output, no panic).
#[allow(unsafe_code)]
#[ctor::ctor(unsafe)]
fn note_whether_stdin_and_stdout_are_closed() {
    let closed = |path| {
        std::fs::symlink_metadata(path).is_err_and(|error| error.kind() == io::ErrorKind::NotFound)
    };
    STDIN_CLOSED_AT_START.store(closed("/proc/self/fd/0"), Ordering::Relaxed);
    STDOUT_CLOSED_AT_START.store(closed("/proc/self/fd/1"), Ordering::Relaxed);
}

/// Whether stdin was closed when the process started (`tool <&-`): a tool that reads it
/// reports it as an input that cannot be read, as cat does, rather than reading nothing.
pub fn stdin_closed_at_start() -> bool {
    STDIN_CLOSED_AT_START.load(Ordering::Relaxed)
}

/// Runs a tool, each of which has the same three steps: `parse` reads its command line
/// (clap, or a quicker reader of its own), `configure` checks it and turns it into what
/// the run needs, and `run` does the work, writing its records to stdout. Stdout comes
/// unbuffered by us: how to buffer is the tool's choice, as its output trickles in or comes
/// in bulk (docs/FORMAT.md, "Buffering"). Returns the exit status, having said on stderr
/// what went wrong.
pub fn main<Cli, Config>(
    tool: &str,
    parse: impl FnOnce() -> std::result::Result<Cli, clap::Error>,
    configure: impl FnOnce(Cli) -> Result<Config>,
    run: impl FnOnce(&Config, io::StdoutLock<'static>) -> Result<Status>,
) -> ExitCode {
    if STDOUT_CLOSED_AT_START.load(Ordering::Relaxed) {
        let closed = io::Error::from_raw_os_error(nix::libc::EBADF);
        return finish(tool, Err(Error::output(closed)));
    }
    if let Some(refusal) = setuid_refusal() {
        return finish(tool, Err(refusal));
    }
    match parse() {
        Ok(cli) => finish(
            tool,
            configure(cli).and_then(|config| run(&config, io::stdout().lock())),
        ),
        // --help and --version: data for stdout, whose failure (a full disk) is one.
        Err(answer) if !answer.use_stderr() => finish(tool, print_answer(&answer)),
        // A usage error, said as the tool's own are, with status 2.
        Err(error) => finish(tool, Err(Error::from_clap(&error))),
    }
}

/// A setuid or setgid install would run on behalf of any user with the owner's power,
/// reading files and command lines that user gave: refused before anything is read. A
/// privileged user runs the tools as themselves; a scanner that needs raw sockets is given
/// CAP_NET_RAW with setcap, which portscan gives up once its sockets are open.
fn setuid_refusal() -> Option<Error> {
    use nix::unistd::{getegid, geteuid, getgid, getuid};
    let (uid, euid, gid, egid) = (getuid(), geteuid(), getgid(), getegid());
    if uid != euid {
        Some(Error::failed(format!(
            "refusing to run setuid (user {uid}, effective user {euid}): \
             remove the setuid bit (chmod u-s); grant capabilities with setcap instead"
        )))
    } else if gid != egid {
        Some(Error::failed(format!(
            "refusing to run setgid (group {gid}, effective group {egid}): \
             remove the setgid bit (chmod g-s)"
        )))
    } else {
        None
    }
}

/// Writes clap's help or version text to stdout, in colour only on a terminal.
fn print_answer(answer: &clap::Error) -> Result<Status> {
    let text = answer.render();
    let mut out = io::stdout().lock();
    let written = if out.is_terminal() {
        write!(out, "{}", text.ansi())
    } else {
        write!(out, "{text}")
    };
    written.and_then(|()| out.flush()).map_err(Error::output)?;
    Ok(Status::default())
}
