//! End-to-end tests of the rules every tool shares at the edges of a run: where its output
//! cannot be written (a full disk, a closed stdout), and what an empty or `-` input means.

use std::net::TcpListener;
use std::process::{Command, Stdio};

use crate::fixtures::assert_full_disk_is_an_error;
use crate::util::{LIMIT, code, run, run_with_input, stderr_text, stdout_text, tool, tool_path};

const TOOLS: [&str; 4] = ["portscan", "sockls", "proctree", "svcname"];

/// `--help` and `--version` are output like any other: into a full disk they fail.
#[test]
fn help_and_version_into_a_full_disk_are_errors() {
    for name in TOOLS {
        for flag in ["--help", "-h", "--version", "-V"] {
            assert_full_disk_is_an_error(name, tool(name).arg(flag));
        }
    }
}

/// With stdout closed (`tool 1>&-`) the output has nowhere to go: said, and status 1, as
/// coreutils do, for a run that would print records and for --help alike.
#[test]
fn a_closed_stdout_is_an_error() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let runs: [(&str, &[&str]); 6] = [
        ("portscan", &["-p", &port, "127.0.0.1"]),
        ("sockls", &["-tl"]),
        ("proctree", &[]),
        ("svcname", &["22"]),
        ("svcname", &["--json", "ssh"]),
        ("proctree", &["--help"]),
    ];
    for (name, args) in runs {
        let program = tool_path(name);
        let output = run(
            Command::new("sh")
                .args(["-c", "exec \"$@\" 1>&-", "sh", program])
                .args(args)
                .stdin(Stdio::null()),
            LIMIT,
        );
        assert_eq!(code(&output), 1, "{name} {args:?}");
        assert_eq!(
            stderr_text(&output),
            format!("{name}: writing output: Bad file descriptor\n"),
            "{name} {args:?}"
        );
    }
    // Output sent to /dev/null on purpose is not a closed stdout.
    let null = run(
        Command::new("sh")
            .args([
                "-c",
                "exec \"$@\" >/dev/null",
                "sh",
                tool_path("svcname"),
                "22",
            ])
            .stdin(Stdio::null()),
        LIMIT,
    );
    assert_eq!(code(&null), 0, "{}", stderr_text(&null));
    assert_eq!(stderr_text(&null), "");
}

/// Targets from an empty stdin, as an operand or as a list, are no targets: one answer.
#[test]
fn portscan_with_no_targets_from_a_list_is_a_usage_error() {
    let empty = tempfile("portscan-empty-list", "# only a comment\n\n");
    let runs: [&[&str]; 4] = [
        &["-"],
        &["-iL", "-"],
        &["--input-list", "-"],
        &["-iL", &empty],
    ];
    for args in runs {
        let output = run_with_input(tool("portscan").args(args), b"", LIMIT);
        assert_eq!(code(&output), 2, "{args:?}: {}", stderr_text(&output));
        assert!(
            stderr_text(&output).starts_with("portscan: no target given\n"),
            "{args:?}: {}",
            stderr_text(&output)
        );
        assert_eq!(stdout_text(&output), "", "{args:?}");
    }
    std::fs::remove_file(empty).unwrap();
}

/// A file of `contents` in the temporary folder, named after the test and this process.
fn tempfile(name: &str, contents: &str) -> String {
    let path = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    std::fs::write(&path, contents).unwrap();
    path.to_str().unwrap().to_owned()
}

/// A lone `-` is stdin for svcname, as for every Unix filter, never "all ports".
#[test]
fn svcname_reads_stdin_for_a_lone_dash() {
    let input = b"22/tcp\nsome log line\n";
    let dash = run_with_input(tool("svcname").arg("-"), input, LIMIT);
    let bare = run_with_input(&mut tool("svcname"), input, LIMIT);
    assert_eq!(code(&dash), 0, "{}", stderr_text(&dash));
    assert_eq!(stdout_text(&dash), stdout_text(&bare));
    assert_eq!(stdout_text(&dash).lines().count(), 2);
    assert!(stdout_text(&dash).ends_with("some log line\n"));

    let mixed = run_with_input(tool("svcname").args(["-", "22"]), input, LIMIT);
    assert_eq!(code(&mixed), 2);
    assert!(
        stderr_text(&mixed)
            .starts_with("svcname: '-' (stdin) and queries cannot be given together\n"),
        "{}",
        stderr_text(&mixed)
    );
    // All ports are still there, spelled as a range.
    let all = run(tool("svcname").arg("1-65535"), LIMIT);
    assert_eq!(code(&all), 0);
    assert_eq!(stdout_text(&all).lines().count(), 65535);
}
