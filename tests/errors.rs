//! End-to-end tests of how the tools say what went wrong: the usage errors the command-line
//! parser finds in the same `tool: what: why` form as the tools' own, with status 2, and an
//! input that cannot be read reported and skipped, while a failed write still ends the run.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::util::{LIMIT, code, run, stderr_text, stdout_text, tool};

/// The lines a usage error is said in, after `tool: `, for each tool: clap's errors (an
/// unknown option, a missing value, a value outside its list, conflicting options, a value
/// its parser refuses) and one of the tool's own, which end the same way.
const USAGE_ERRORS: &[(&str, &[&str], &[&str])] = &[
    (
        "portscan",
        &["--bogus", "127.0.0.1"],
        &[
            "unexpected argument '--bogus' found",
            "tip: to pass '--bogus' as a value, use '-- --bogus'",
        ],
    ),
    (
        "portscan",
        &["127.0.0.1", "-p"],
        &["a value is required for '--ports <LIST>' but none was supplied"],
    ),
    (
        "portscan",
        &["127.0.0.1", "-p", "10-5"],
        &["invalid value '10-5' for '--ports <LIST>': range 10-5 is reversed; write 5-10"],
    ),
    (
        "portscan",
        &["127.0.0.1", "--timeout", "5x"],
        &["invalid value '5x' for '--timeout <TIME>': \
           '5x' is not a time (such as 500ms, 2s, 5m, 1h)"],
    ),
    (
        "portscan",
        &["127.0.0.1", "-T", "9"],
        &["invalid value '9' for '--timing <0-5>': 9 is not in 0..=5"],
    ),
    (
        "portscan",
        &["127.0.0.1", "--show", "opne"],
        &[
            "invalid value 'opne' for '--show <STATES>' [possible values: open, closed, filtered, open|filtered]",
            "tip: a similar value exists: 'open'",
        ],
    ),
    (
        "portscan",
        &["127.0.0.1", "--json", "--csv"],
        &["the argument '--json' cannot be used with '--csv'"],
    ),
    (
        "portscan",
        &["300.0.0.1"],
        &["target '300.0.0.1': '300.0.0.1': octet 300 is more than 255"],
    ),
    (
        "portscan",
        &["-sA", "127.0.0.1"],
        &["-sA (ACK scan) is not supported; -sT is the connect scan"],
    ),
    (
        "portscan",
        &["--exclude", "127.0.0.1", "-p", "21", "127.0.0.1"],
        &[
            "no target is left to scan: --exclude or --excludefile leaves out every one \
             (or, in a range, each is an address no host answers from)",
        ],
    ),
    (
        "portscan",
        &["-sS", "-sT", "127.0.0.1"],
        &["the argument '--syn' cannot be used with '--tcp'"],
    ),
    (
        "portscan",
        &["-sn", "-p", "22", "127.0.0.1"],
        &["the argument '--ping-only' cannot be used with '--ports <LIST>'"],
    ),
    (
        "portscan",
        &["-sV", "--version-intensity", "10", "127.0.0.1"],
        &["invalid value '10' for '--version-intensity <N>': 10 is not in 0..=9"],
    ),
    (
        "portscan",
        &["-A", "--from", "-"],
        &["the argument '--os-hint' cannot be used with '--from <FILE>'"],
    ),
    (
        "portscan",
        &["-O", "127.0.0.1"],
        &[
            "-O (OS detection) is not supported; -A gives an OS hint from the echo reply's TTL, the SYN-ACK and the banners",
        ],
    ),
    (
        "portscan",
        &["-oX", "/nonexistent/x.xml", "127.0.0.1"],
        &["-oX /nonexistent/x.xml: No such file or directory"],
    ),
    (
        "portscan",
        &["-oS", "scan.txt", "127.0.0.1"],
        &["-oS is not supported"],
    ),
    (
        "portscan",
        &["--script", "banner", "127.0.0.1"],
        &["--script is not supported"],
    ),
    (
        "portscan",
        &["-PS22", "127.0.0.1"],
        &[
            "-PS (TCP SYN ping) is not supported: host discovery sends ICMP echo requests, then connects to ports 80 and 443 of the hosts silent to them; -Pn skips it",
        ],
    ),
    (
        "portscan",
        &["127.0.0.1", "--exclude-ports", "10-5"],
        &["invalid value '10-5' for '--exclude-ports <LIST>': range 10-5 is reversed; write 5-10"],
    ),
    (
        "portscan",
        &["127.0.0.1", "-p", "22", "--exclude-ports", "1-100"],
        &["--exclude-ports leaves no port to scan"],
    ),
    (
        "portscan",
        &["127.0.0.1", "-p", "22,no-such-service"],
        &["invalid value '22,no-such-service' for '--ports <LIST>': \
           'no-such-service' is not a port or a service name"],
    ),
    (
        "portscan",
        &["-6", "-p", "22", "::1", "127.0.0.1"],
        &["target '127.0.0.1': -6 scans IPv6 addresses only"],
    ),
    (
        "portscan",
        &["127.0.0.1", "-T", "fast"],
        &[
            "invalid value 'fast' for '--timing <0-5>': 'fast' is not a timing template \
           (0-5, or paranoid, sneaky, polite, normal, aggressive, insane)",
        ],
    ),
    (
        "sockls",
        &["--bogus"],
        // sockls takes positional arguments (its filter), hence clap's tip.
        &[
            "unexpected argument '--bogus' found",
            "tip: to pass '--bogus' as a value, use '-- --bogus'",
        ],
    ),
    (
        "sockls",
        &["--port"],
        &["a value is required for '--port <LIST>' but none was supplied"],
    ),
    (
        "sockls",
        &["--source", "nope"],
        &["invalid value 'nope' for '--source <SOURCE>' [possible values: auto, netlink, proc]"],
    ),
    (
        "sockls",
        &["--json", "--csv"],
        &["the argument '--json' cannot be used with '--csv'"],
    ),
    (
        "sockls",
        &["--port", "99999"],
        &["--port '99999': port 99999 is out of range 1-65535"],
    ),
    (
        "sockls",
        &["state", "established", "( dport = :443"],
        &["filter: '(' without ')'"],
    ),
    (
        "sockls",
        &["dst", "::1"],
        &["filter: '::1': not an address (10.0.0.0/8, [::1]:22, *:22, :22)"],
    ),
    (
        "proctree",
        &["foo"],
        &["invalid value 'foo' for '[PID]': 'foo' is not a process id (a number from 1)"],
    ),
    (
        "proctree",
        &["-s"],
        &["--ancestors: needs a process (--pid PID or a PID argument)"],
    ),
    (
        "proctree",
        &["--json", "--csv"],
        &["the argument '--json' cannot be used with '--csv'"],
    ),
    (
        "proctree",
        &["--pid", "abc"],
        &["invalid value 'abc' for '--pid [<PID>]': 'abc' is not a process id (a number from 1)"],
    ),
    (
        "proctree",
        &["0"],
        &["invalid value '0' for '[PID]': '0' is not a process id (a number from 1)"],
    ),
    (
        "svcname",
        &["--bogus"],
        &[
            "unexpected argument '--bogus' found",
            "tip: to pass '--bogus' as a value, use '-- --bogus'",
        ],
    ),
    (
        "svcname",
        &["--jsn", "22"],
        &[
            "unexpected argument '--jsn' found",
            "tip: a similar argument exists: '--json'",
        ],
    ),
    (
        "svcname",
        &["--proto"],
        &["a value is required for '--proto <PROTO>' but none was supplied"],
    ),
    (
        "svcname",
        &["-p", "xyz", "22"],
        &["invalid value 'xyz' for '--proto <PROTO>': \
           'xyz' is not a protocol (tcp, udp, sctp, dccp)"],
    ),
    (
        "svcname",
        &["--field", "proto", "22"],
        &["--field 'proto' cannot hold a port"],
    ),
    (
        "portscan",
        &["--min-hostgroup=64", "127.0.0.1"],
        &[
            "--min-hostgroup is nmap's and not supported by portscan; portscan scans hosts in groups of 4096",
        ],
    ),
    (
        "portscan",
        &["-g53", "127.0.0.1"],
        &["-g is nmap's and not supported by portscan; portscan sends no crafted packets"],
    ),
];

#[test]
fn usage_errors_are_said_as_tool_what_why_with_status_2() {
    for (name, args, lines) in USAGE_ERRORS {
        let output = run(tool(name).args(*args), LIMIT);
        let expected: String = lines
            .iter()
            .map(|line| format!("{name}: {line}\n"))
            .chain([format!(
                "{name}: try '{name} --help' for more information\n"
            )])
            .collect();
        assert_eq!(stderr_text(&output), expected, "{name} {args:?}");
        assert_eq!(code(&output), 2, "{name} {args:?}");
        assert_eq!(stdout_text(&output), "", "{name} {args:?}");
    }
}

/// A scratch folder for one test, empty, named after it and this process.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("errors-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn text(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Of svcname's inputs, one that cannot be opened and one that cannot be read (a folder
/// opens, and fails on the first read) are reported and skipped; the others are annotated.
#[test]
fn svcname_reports_an_unreadable_input_and_reads_the_others() {
    let dir = scratch("svcname-inputs");
    let first = dir.join("first");
    let last = dir.join("last");
    let missing = dir.join("missing");
    std::fs::write(&first, "22\n").unwrap();
    std::fs::write(&last, "80/udp\n").unwrap();
    let output = run(
        tool("svcname").args([
            "--builtin-only",
            "-i",
            text(&first),
            "-i",
            text(&dir),
            "-i",
            text(&missing),
            "-i",
            text(&last),
        ]),
        LIMIT,
    );
    assert_eq!(
        stderr_text(&output),
        format!(
            "svcname: reading {}: Is a directory\n\
             svcname: opening {}: No such file or directory\n",
            text(&dir),
            text(&missing)
        )
    );
    assert_eq!(code(&output), 1);
    assert_eq!(stdout_text(&output), "22 ssh\n80/udp www-http\n");
    std::fs::remove_dir_all(dir).unwrap();
}

/// A failed write is no input error: it ends the run at once, said once, however many
/// inputs are left.
#[test]
fn svcname_stops_at_a_failed_write_whatever_inputs_are_left() {
    let dir = scratch("svcname-full");
    let input = dir.join("ports");
    std::fs::write(&input, "22\n".repeat(100_000)).unwrap();
    let full = OpenOptions::new().write(true).open("/dev/full").unwrap();
    let output = tool("svcname")
        .args(["-i", text(&input), "-i", text(&input), "-i", text(&input)])
        .stdout(Stdio::from(full))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(
        stderr_text(&output),
        "svcname: writing output: No space left on device\n"
    );
    assert_eq!(code(&output), 1);
    std::fs::remove_dir_all(dir).unwrap();
}

/// portscan's target lists are read before any scan: one that cannot be opened or read
/// ends the run, status 1, with nothing scanned.
#[test]
fn portscan_stops_at_an_unreadable_target_list() {
    let dir = scratch("portscan-lists");
    let missing = dir.join("missing");
    let (missing, directory) = (text(&missing), text(&dir));
    // A list of targets, or of targets to leave out: the same reading, the file that
    // cannot be opened said with the option that named it.
    for option in ["-iL", "--excludefile"] {
        for (list, expected) in [
            (
                missing,
                format!("portscan: {option} {missing}: No such file or directory\n"),
            ),
            (
                directory,
                format!("portscan: reading {directory}: Is a directory\n"),
            ),
        ] {
            let output = run(
                tool("portscan").args(["-p", "1", option, list, "127.0.0.1"]),
                LIMIT,
            );
            assert_eq!(stderr_text(&output), expected, "{option}");
            assert_eq!(code(&output), 1, "{option} {list}");
            assert_eq!(stdout_text(&output), "", "{option} {list}");
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// One rule for a thing named that is not there (docs/FORMAT.md, "Exit status"): it is
/// reported once as `tool: what: why`, the rest is done, and the status is 1.
#[test]
fn a_missing_thing_is_reported_and_the_rest_is_done() {
    let me = std::process::id().to_string();
    let both = format!("999999,{me}");
    let cases: [(&str, Vec<&str>, &str); 3] = [
        (
            "proctree",
            vec!["--json", "--pid", "999999", "--pid", &me],
            "proctree: --pid 999999: no such process\n",
        ),
        (
            "sockls",
            vec!["--json", "--pid", &both],
            "sockls: --pid 999999: no such process\n",
        ),
        (
            "svcname",
            vec!["--services", "/nonexistent/services", "22"],
            "svcname: reading /nonexistent/services: No such file or directory\n",
        ),
    ];
    for (name, args, said) in &cases {
        let output = run(tool(name).args(args), LIMIT);
        assert_eq!(code(&output), 1, "{name}: {}", stderr_text(&output));
        assert_eq!(stderr_text(&output), *said, "{name}");
        if *name != "sockls" {
            // The rest is done: the process that exists, the port the other tables know.
            assert!(!stdout_text(&output).is_empty(), "{name}: nothing printed");
        }
    }
    let answer = run(
        tool("svcname").args(["--services", "/nonexistent/services", "22"]),
        LIMIT,
    );
    assert_eq!(
        stdout_text(&answer),
        "22/tcp ssh well-known SSH Remote Login Protocol\n"
    );
}
