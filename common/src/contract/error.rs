//! One error type for every tool, knowing its exit status, and the rules for ending a run:
//! a closed stdout pipe ends quietly with 0, any other write failure is reported with 1,
//! bad usage is 2 (docs/FORMAT.md, "Exit status").

use std::fmt;
use std::io::{self, Write};
use std::process::ExitCode;

/// The run did what was asked.
pub const EXIT_SUCCESS: u8 = 0;
/// A runtime failure, or a finished run in which some input could not be handled.
pub const EXIT_FAILURE: u8 = 1;
/// The command line (or a value in it) is malformed.
pub const EXIT_USAGE: u8 = 2;
/// The run worked, and found its result differs from a baseline or an expectation.
pub const EXIT_CHANGED: u8 = 3;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, by kind: the kind, never a message's text, decides the exit status and
/// whether a tool with several inputs may go on with the next.
#[derive(Debug)]
pub enum Error {
    /// A malformed option, operand or value: exit status 2. `tip` is a second line that
    /// may help (clap's suggestions: a similar option, the way to pass a value that looks
    /// like an option).
    Usage {
        message: String,
        tip: Option<String>,
    },
    /// An input that was read but is not what its option needs (a `--baseline` file that
    /// is no baseline): exit status 2, as a usage error, but in one line, without the
    /// pointer to --help, since no option was misspelt.
    Unusable(String),
    /// Opening or reading an input failed (a file, stdin, /proc): `context` says which,
    /// as "reading NAME" or "opening NAME". A tool with several inputs reports it and goes
    /// on with the next.
    Input { context: String, source: io::Error },
    /// Writing our output failed. A broken pipe is no failure: the reader has what it wanted.
    Output(io::Error),
    /// Any other system call failed: `context` says what was being done.
    Io { context: String, source: io::Error },
    /// Any other reason the run cannot go on.
    Failed(String),
    /// SIGINT or SIGTERM stopped a run before its end, between two records: status 1,
    /// said as `tool: interrupted` (docs/FORMAT.md, "Signals and standard input").
    Interrupted,
}

impl Error {
    pub fn usage(message: impl Into<String>) -> Self {
        Self::Usage {
            message: message.into(),
            tip: None,
        }
    }

    pub fn unusable(message: impl Into<String>) -> Self {
        Self::Unusable(message.into())
    }

    pub fn input(context: impl Into<String>, source: io::Error) -> Self {
        Self::Input {
            context: context.into(),
            source,
        }
    }

    pub fn output(source: io::Error) -> Self {
        Self::Output(source)
    }

    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    pub fn failed(message: impl Into<String>) -> Self {
        Self::Failed(message.into())
    }

    /// The exit status this error ends a run with (docs/FORMAT.md, "Exit status"): the one
    /// place where a kind becomes a status.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage { .. } | Self::Unusable(_) => EXIT_USAGE,
            Self::Output(_) if self.is_broken_pipe() => EXIT_SUCCESS,
            Self::Input { .. }
            | Self::Output(_)
            | Self::Io { .. }
            | Self::Failed(_)
            | Self::Interrupted => EXIT_FAILURE,
        }
    }

    /// Whether this is the reader of our stdout going away (`tool | head -1`), which is not
    /// a failure: the consumer got what it wanted.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Self::Output(source) if source.kind() == io::ErrorKind::BrokenPipe)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Usage { message, .. } | Self::Unusable(message) | Self::Failed(message) => {
                f.write_str(message)
            }
            Self::Input { context, source } | Self::Io { context, source } => {
                write!(f, "{context}: {}", describe_io_error(source))
            }
            Self::Output(source) => write!(f, "writing output: {}", describe_io_error(source)),
            Self::Interrupted => f.write_str("interrupted"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Input { source, .. } | Self::Output(source) | Self::Io { source, .. } => {
                Some(source)
            }
            Self::Usage { .. } | Self::Unusable(_) | Self::Failed(_) | Self::Interrupted => None,
        }
    }
}

/// An I/O error as a person reads it: "No space left on device", without Rust's
/// " (os error 28)" suffix (coreutils strips it the same way).
pub fn describe_io_error(error: &io::Error) -> String {
    let text = error.to_string();
    match text.find(" (os error ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// How a run that got to its end went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Status {
    /// Something was skipped or could not be handled, and was reported on stderr.
    pub had_errors: bool,
    /// The result differs from a baseline or an expectation (`--baseline`,
    /// `--expect-open`, `--expect-listen`), and the differences were printed.
    pub changed: bool,
}

impl Status {
    /// A failure says more than a change: both are worth a look, and the failure may
    /// be why things look changed.
    pub fn exit_code(self) -> u8 {
        if self.had_errors {
            EXIT_FAILURE
        } else if self.changed {
            EXIT_CHANGED
        } else {
            EXIT_SUCCESS
        }
    }
}

/// Writes `tool: message` on stderr. A failure to write there cannot be reported anywhere,
/// so it is ignored (eprintln! would panic instead).
pub fn warn(tool: &str, message: impl fmt::Display) {
    let _ = writeln!(io::stderr().lock(), "{tool}: {message}");
}

/// Turns a run's outcome into the process exit status, reporting a fatal error on stderr.
pub fn finish(tool: &str, outcome: Result<Status>) -> ExitCode {
    match outcome {
        Ok(status) => ExitCode::from(status.exit_code()),
        Err(error) => {
            if !error.is_broken_pipe() {
                warn(tool, &error);
            }
            if let Error::Usage { tip, .. } = &error {
                if let Some(tip) = tip {
                    warn(tool, tip);
                }
                warn(
                    tool,
                    format_args!("try '{tool} --help' for more information"),
                );
            }
            ExitCode::from(error.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_contract() {
        assert_eq!(Error::usage("x").exit_code(), 2);
        assert_eq!(Error::failed("x").exit_code(), 1);
        assert_eq!(Error::Interrupted.exit_code(), 1);
        assert_eq!(Error::Interrupted.to_string(), "interrupted");
        let full = Error::output(io::Error::from_raw_os_error(28));
        assert_eq!(full.exit_code(), 1);
        assert_eq!(full.to_string(), "writing output: No space left on device");
        assert!(!full.is_broken_pipe());
        let pipe = Error::output(io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(pipe.is_broken_pipe());
        assert_eq!(pipe.exit_code(), 0);
        let unreadable = Error::input("reading x", io::Error::from_raw_os_error(21));
        assert_eq!(unreadable.exit_code(), 1);
        assert_eq!(unreadable.to_string(), "reading x: Is a directory");
        // Only our own output can be a reader gone away.
        let peer_gone = Error::io("sending", io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(!peer_gone.is_broken_pipe());
        assert_eq!(peer_gone.exit_code(), 1);
    }

    #[test]
    fn status_reports_skipped_input() {
        assert_eq!(Status::default().exit_code(), 0);
        let failed = Status {
            had_errors: true,
            changed: true,
        };
        assert_eq!(failed.exit_code(), 1);
        let changed = Status {
            changed: true,
            ..Status::default()
        };
        assert_eq!(changed.exit_code(), 3);
    }
}
