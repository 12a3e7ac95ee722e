//! End-to-end tests of the tools piped into each other through real pipes, as the README
//! shows them: each tool's output is svcname's input, in text and in NDJSON.

use std::net::TcpListener;
use std::process::{Command, Output, Stdio};

use common::contract::output::{FlushPolicy, Format, RecordWriter, TextOptions};
use common::contract::record::{PortRecord, PortState, Reason};
use common::services::ports::Proto;
use serde_json::Value;

use crate::util::{
    LIMIT, code, run, run_with_input, stderr_text, stdout_text, tool, wait_with_deadline,
};

/// Runs `first | second` and returns the second's output and the first's exit code.
fn pipe(mut first: Command, mut second: Command) -> (Output, i32) {
    let mut producer = first
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the producer");
    let consumer = second
        .stdin(producer.stdout.take().expect("piped stdout"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the consumer");
    let output = wait_with_deadline(consumer, LIMIT);
    let status = producer.wait().expect("wait for the producer");
    (output, status.code().expect("the producer exited"))
}

/// What svcname says the service on `port`/tcp is, asked directly.
fn service_of(port: u16) -> String {
    let output = run(tool("svcname").args(["--json", &port.to_string()]), LIMIT);
    let record: Value = serde_json::from_str(stdout_text(&output).trim()).unwrap();
    record["service"].as_str().unwrap().to_owned()
}

#[test]
fn sockls_json_through_svcname_names_our_listener() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut sockls = tool("sockls");
    sockls.args(["-tl", "-p", "--json"]);
    let (output, sockls_code) = pipe(sockls, tool("svcname"));
    assert_eq!(
        (sockls_code, code(&output)),
        (0, 0),
        "{}",
        stderr_text(&output)
    );
    let ours: Vec<Value> = stdout_text(&output)
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        // A child that another test forks at this moment holds our fds until it execs: one
        // record per owner, so look for ours.
        .filter(|r| r["local_port"] == port && r["pid"] == std::process::id())
        .collect();
    assert_eq!(ours.len(), 1, "{}", stdout_text(&output));
    assert_eq!(ours[0]["local_service"], service_of(port).as_str());
    assert_eq!(
        ours[0]["remote_service"],
        Value::Null,
        "a listener's remote port is 0"
    );
}

#[test]
fn sockls_text_through_svcname_appends_the_service() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut sockls = tool("sockls");
    sockls.args(["-tl"]);
    let (output, _) = pipe(sockls, tool("svcname"));
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    let needle = format!("127.0.0.1:{port} ");
    let line = stdout_text(&output)
        .lines()
        .find(|line| line.contains(&needle))
        .map_or_else(|| panic!("no line for port {port}"), str::to_owned);
    assert!(line.ends_with(&format!(" {}", service_of(port))), "{line}");
}

#[test]
fn proctree_records_pass_through_svcname_unchanged() {
    let proctree = run(tool("proctree").args(["--json", "--pid", "1"]), LIMIT);
    assert_eq!(code(&proctree), 0, "{}", stderr_text(&proctree));
    assert!(!proctree.stdout.is_empty());
    let output = run_with_input(&mut tool("svcname"), &proctree.stdout, LIMIT);
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    assert_eq!(
        output.stdout, proctree.stdout,
        "records without ports pass unchanged"
    );
}

/// portscan's records in every state, each format as portscan writes it: what svcname reads
/// from a scan, open|filtered (a UDP scan's silence) included.
fn port_records(format: Format) -> Vec<u8> {
    let mut out = Vec::new();
    let mut writer =
        RecordWriter::new(&mut out, format, FlushPolicy::Block, TextOptions::default());
    for (port, proto, state) in [
        (22, Proto::Tcp, PortState::Open),
        (23, Proto::Tcp, PortState::Closed),
        (25, Proto::Tcp, PortState::Filtered),
        (53, Proto::Udp, PortState::OpenFiltered),
    ] {
        let record = PortRecord {
            host: "localhost".into(),
            address: "127.0.0.1".parse().unwrap(),
            port,
            proto,
            state,
            reason: Reason::NoResponse,
            rtt_ms: None,
            time: "2026-11-27T17:14:54.123Z".into(),
            ..PortRecord::default()
        };
        writer.write(&record).unwrap();
    }
    writer.finish().unwrap();
    out
}

#[test]
fn port_records_in_every_state_through_svcname_get_their_service() {
    let services = ["ssh", "telnet", "smtp", "domain"];
    let states = ["open", "closed", "filtered", "open|filtered"];
    let through = |format| {
        let output = run_with_input(
            tool("svcname").arg("--builtin-only"),
            &port_records(format),
            LIMIT,
        );
        assert_eq!(code(&output), 0, "{}", stderr_text(&output));
        assert_eq!(stderr_text(&output), "");
        stdout_text(&output)
    };

    let text = through(Format::Text);
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split(' ').collect()).collect();
    assert_eq!(lines.len(), 4, "{text}");
    for ((line, state), service) in lines.iter().zip(states).zip(services) {
        assert_eq!((line[2], line[4]), (state, service), "{text}");
    }

    let json = through(Format::Json);
    let records: Vec<Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for ((record, state), service) in records.iter().zip(states).zip(services) {
        assert_eq!(
            (&record["state"], &record["service"]),
            (&state.into(), &service.into())
        );
    }
    assert_eq!(records.len(), 4, "{json}");

    let csv = through(Format::Csv);
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let column = |name| headers.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 4, "{csv}");
    for ((row, state), service) in rows.iter().zip(states).zip(services) {
        assert_eq!(
            (&row[column("state")], &row[column("service")]),
            (state, service)
        );
    }
}

/// `--hostname-field` puts the machine's name first in every tool's records, in each
/// format, so that many machines' output merges; it is the name `hostname` prints.
#[test]
fn every_tool_names_the_machine_with_hostname_field() {
    let name = String::from_utf8(
        Command::new("hostname")
            .output()
            .expect("hostname runs")
            .stdout,
    )
    .unwrap()
    .trim()
    .to_owned();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let pid = std::process::id().to_string();
    let runs: [(&str, Vec<&str>); 4] = [
        ("portscan", vec!["-p", &port, "127.0.0.1"]),
        ("sockls", vec!["-tl", "--sport", &port]),
        ("proctree", vec!["--pid", &pid]),
        ("svcname", vec!["22"]),
    ];
    for (name_of_tool, args) in &runs {
        let json = run(
            tool(name_of_tool)
                .args(args)
                .args(["--hostname-field", "--json"]),
            LIMIT,
        );
        let first = stdout_text(&json);
        let first = first
            .lines()
            .next()
            .unwrap_or_else(|| panic!("{name_of_tool}: no record"));
        assert!(
            first.starts_with(&format!("{{\"hostname\":\"{name}\",")),
            "{name_of_tool}: {first}"
        );
        let csv = run(
            tool(name_of_tool)
                .args(args)
                .args(["--hostname-field", "--csv"]),
            LIMIT,
        );
        let text = stdout_text(&csv);
        let mut lines = text.lines();
        assert!(
            lines.next().unwrap().starts_with("hostname,"),
            "{name_of_tool}: {text}"
        );
        assert!(
            lines.next().unwrap().starts_with(&format!("{name},")),
            "{name_of_tool}: {text}"
        );
        let plain = run(
            tool(name_of_tool)
                .args(args)
                .args(["--hostname-field", "--header"]),
            LIMIT,
        );
        let text = stdout_text(&plain);
        let mut lines = text.lines();
        assert!(
            lines.next().unwrap().starts_with("hostname "),
            "{name_of_tool}: {text}"
        );
        assert!(
            lines.next().unwrap().starts_with(&format!("{name} ")),
            "{name_of_tool}: {text}"
        );
    }
    drop(listener);
}
