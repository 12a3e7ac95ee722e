//! End-to-end tests of svcname: lookups, and real text, NDJSON and CSV piped through the
//! built binary. `--builtin-only` keeps answers the same whatever /etc/services a machine has.

use std::fmt::Write as _;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::fixtures::{assert_full_disk_is_an_error, assert_quiet_on_closed_pipe, require_program};
use crate::util::{LIMIT, code, run, run_with_input, stderr_text, stdout_text, tool};

fn svcname(args: &[&str]) -> Command {
    let mut command = tool("svcname");
    command.arg("--builtin-only").args(args);
    command
}

fn filter(args: &[&str], input: &str) -> std::process::Output {
    run_with_input(&mut svcname(args), input.as_bytes(), LIMIT)
}

#[test]
fn looks_up_ports_and_names() {
    let output = run(&mut svcname(&["22", "53/udp", "ssh"]), LIMIT);
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    assert_eq!(
        stdout_text(&output),
        "22/tcp ssh well-known The Secure Shell (SSH) Protocol\n\
         53/udp domain well-known Domain Name Server\n\
         22/tcp ssh well-known The Secure Shell (SSH) Protocol\n\
         22/udp ssh well-known The Secure Shell (SSH) Protocol\n\
         22/sctp ssh well-known SSH\n"
    );
    assert_eq!(stderr_text(&output), "");
}

#[test]
fn a_name_can_stand_for_several_ports_and_proto_narrows_it() {
    let output = run(&mut svcname(&["--json", "-p", "tcp", "domain"]), LIMIT);
    let ports: Vec<u64> = stdout_text(&output)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["port"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(ports, [53]);
    let output = run(&mut svcname(&["--json", "domain"]), LIMIT);
    assert_eq!(stdout_text(&output).lines().count(), 2, "53/tcp and 53/udp");
    // -t and -u, as netstat and ss spell the protocols, are -p tcp and -p udp.
    for (short, proto) in [("-u", "udp"), ("-t", "tcp")] {
        let ours = run(&mut svcname(&[short, "53", "domain"]), LIMIT);
        let long = run(&mut svcname(&["-p", proto, "53", "domain"]), LIMIT);
        assert_eq!(code(&ours), 0, "{}", stderr_text(&ours));
        assert_eq!(stdout_text(&ours), stdout_text(&long), "{short}");
        assert!(stdout_text(&ours).starts_with(&format!("53/{proto} domain")));
    }
}

#[test]
fn records_carry_range_description_and_risk() {
    let output = run(
        &mut svcname(&["--json", "--risk", "23", "8080", "50000"]),
        LIMIT,
    );
    assert_eq!(code(&output), 0);
    let records: Vec<Value> = stdout_text(&output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records[0]["service"], "telnet");
    assert_eq!(records[0]["range"], "well-known");
    assert!(records[0]["risk"].as_str().unwrap().contains("cleartext"));
    assert_eq!(records[1]["range"], "registered");
    assert_eq!(records[1]["risk"], Value::Null);
    assert_eq!(records[2]["range"], "dynamic");
}

#[test]
fn csv_lookups_have_the_record_header() {
    let output = run(&mut svcname(&["--csv", "22", "4"]), LIMIT);
    let text = stdout_text(&output);
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(
        reader.headers().unwrap(),
        vec![
            "port",
            "proto",
            "service",
            "range",
            "description",
            "source",
            "frequency",
            "risk",
            "aliases"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(&rows[0][2], "ssh");
    assert_eq!(
        &rows[1][2], "unknown",
        "unassigned ports are unknown, as nmap says"
    );
}

#[test]
fn unknown_names_and_bad_ports_are_reported() {
    let output = run(&mut svcname(&["ssh", "no-such-service"]), LIMIT);
    assert_eq!(code(&output), 1);
    assert!(stdout_text(&output).starts_with("22/tcp ssh"));
    assert_eq!(
        stderr_text(&output),
        "svcname: no-such-service: no such service\n"
    );
    for bad in ["70000", "0", "10-5", "22/icmp", "1,,2"] {
        let output = run(&mut svcname(&[bad]), LIMIT);
        assert_eq!(code(&output), 2, "{bad}");
        assert!(
            stderr_text(&output).starts_with(&format!("svcname: {bad}: ")),
            "{bad}: {}",
            stderr_text(&output)
        );
        assert_eq!(stdout_text(&output), "");
    }
    let output = run(&mut svcname(&["--json", "--csv", "22"]), LIMIT);
    assert_eq!(code(&output), 2);
    let output = run(
        &mut svcname(&["--services", "/nonexistent/file", "22"]),
        LIMIT,
    );
    assert_eq!(code(&output), 1);
    assert_eq!(
        stderr_text(&output),
        "svcname: reading /nonexistent/file: No such file or directory\n"
    );
}

#[test]
fn a_users_services_file_comes_first() {
    let dir = std::env::temp_dir().join(format!("svcname-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("services");
    std::fs::write(&path, "bastion 22/tcp jump # our jump host\n").unwrap();
    let output = run(
        &mut svcname(&["--services", path.to_str().unwrap(), "22", "jump"]),
        LIMIT,
    );
    assert_eq!(
        stdout_text(&output),
        "22/tcp bastion well-known our jump host [aliases: jump]\n\
         22/tcp bastion well-known our jump host [aliases: jump]\n"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn annotates_text_lines_and_passes_the_rest() {
    let input = "\
127.0.0.1 22/tcp open syn-ack
Nmap scan report for localhost (127.0.0.1)
53/udp   open  domain
tcp   LISTEN 0      128    0.0.0.0:22   0.0.0.0:*
udp   UNCONN 0      0      127.0.0.53%lo:53   0.0.0.0:*

unknown port 4/tcp here
";
    let output = filter(&[], input);
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    assert_eq!(
        stdout_text(&output),
        "\
127.0.0.1 22/tcp open syn-ack ssh
Nmap scan report for localhost (127.0.0.1)
53/udp   open  domain
tcp   LISTEN 0      128    0.0.0.0:22   0.0.0.0:* ssh
udp   UNCONN 0      0      127.0.0.53%lo:53   0.0.0.0:* domain

unknown port 4/tcp here unknown
"
    );
}

/// A line that names its service already gets no second name: nmap's normal and grepable
/// output, ss and netstat with names, portscan -sV's records, and svcname's own output
/// read again.
#[test]
fn lines_that_name_their_service_get_no_second_name() {
    let named = "\
22/tcp   open  ssh
8000/tcp closed http-alt  conn-refused
53/udp   open|filtered domain
Host: 127.0.0.1 ()\tPorts: 22/open/tcp//ssh///, 8000/closed/tcp//http-alt///\tIgnored State: closed (998)
LISTEN 0      128        0.0.0.0:ssh        0.0.0.0:*
ESTAB  0      0        127.0.0.1:44744    127.0.0.1:https
tcp        0      0 0.0.0.0:ssh             0.0.0.0:*               LISTEN
tcp        0      0 127.0.0.1:44744         127.0.0.1:https         ESTABLISHED
127.0.0.1 2222/tcp open syn-ack ssh OpenSSH 8.9p1 Ubuntu 3 (Ubuntu Linux; protocol 2.0)
vm 127.0.0.1 8080/tcp open syn-ack http nginx 1.22.1
";
    let output = filter(&[], named);
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    assert_eq!(stdout_text(&output), named);
    // A table row without a service is still named, and so is portscan's record without
    // -sV's columns, with the machine's name first or not.
    let output = filter(
        &[],
        "8000/tcp open\n127.0.0.1 1/tcp closed conn-refused\nvm 127.0.0.1 1/tcp closed conn-refused\n",
    );
    assert_eq!(
        stdout_text(&output),
        "8000/tcp open irdmi\n127.0.0.1 1/tcp closed conn-refused tcpmux\n\
         vm 127.0.0.1 1/tcp closed conn-refused tcpmux\n"
    );
}

/// svcname's output piped into svcname again comes out unchanged, in every format and with
/// the additions, so a pipeline may hold it twice.
#[test]
fn the_filter_is_idempotent() {
    let input = "\
127.0.0.1 22/tcp open syn-ack
25/tcp open\r
53/udp  \t
443
ESTAB 0 0 127.0.0.1:44744 127.0.0.1:443
tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:*
{\"port\":22,\"proto\":\"tcp\"}
{\"local_port\":53,\"remote_port\":0,\"proto\":\"udp\"}
host,port,proto
h,23,tcp
";
    for args in [&[][..], &["-r", "-d", "--risk"]] {
        let once = filter(args, input);
        assert_eq!(code(&once), 0, "{}", stderr_text(&once));
        assert_ne!(stdout_text(&once), input);
        let twice = run_with_input(&mut svcname(args), &once.stdout, LIMIT);
        assert_eq!(code(&twice), 0, "{}", stderr_text(&twice));
        assert_eq!(stdout_text(&twice), stdout_text(&once), "{args:?}");
    }
    // Lookups' records name their service too: `svcname 22 | svcname` is `svcname 22`.
    for format in [&[][..], &["--json"], &["--csv"], &["--risk"]] {
        let lookups = run(
            &mut svcname(&[format, &["22", "53/udp", "50000"]].concat()),
            LIMIT,
        );
        let filtered = run_with_input(&mut svcname(&[]), &lookups.stdout, LIMIT);
        assert_eq!(code(&filtered), 0, "{}", stderr_text(&filtered));
        assert_eq!(stdout_text(&filtered), stdout_text(&lookups), "{format:?}");
    }
}

/// In a filter, a line that is only a port is a port, and gets its name like any other;
/// a lone word is a word (a log line `login` or `time`), and passes as it came.
#[test]
fn a_lone_port_is_annotated_and_a_lone_name_is_not() {
    let output = filter(
        &[],
        "22\n53/udp\nssh/tcp\nhello\ntime\nlogin\nnot-a-service\n 443 \n",
    );
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    assert_eq!(
        stdout_text(&output),
        "22 ssh\n53/udp domain\nssh/tcp\nhello\ntime\nlogin\nnot-a-service\n 443  https\n"
    );
    // The output formats shape lookups; a filter keeps each line's own.
    let output = filter(&["--json"], "22\n");
    assert_eq!(stdout_text(&output), "22 ssh\n");
}

/// --queries: the input is a list of queries, answered as operands are, in any format; a
/// bad one is reported with its line and the rest are still answered.
#[test]
fn queries_from_stdin_are_looked_up() {
    let output = filter(
        &["--queries"],
        "22 53/udp\n\nssh/tcp\nno-such-service\n70000\n25\n",
    );
    assert_eq!(code(&output), 1);
    assert_eq!(
        stdout_text(&output),
        "22/tcp ssh well-known The Secure Shell (SSH) Protocol\n\
         53/udp domain well-known Domain Name Server\n\
         22/tcp ssh well-known The Secure Shell (SSH) Protocol\n\
         25/tcp smtp well-known Simple Mail Transfer\n"
    );
    assert_eq!(
        stderr_text(&output),
        "svcname: stdin:4: no-such-service: no such service\n\
         svcname: stdin:5: 70000: port 70000 is out of range 1-65535\n"
    );
    let output = filter(&["-q", "--csv", "-"], "domain\n");
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    let text = stdout_text(&output);
    let rows: Vec<&str> = text.lines().collect();
    assert!(rows[0].starts_with("port,proto,service,"), "{text}");
    assert!(rows.len() > 2, "{text}");
    assert!(rows[1..].iter().all(|row| row.starts_with("53,")), "{text}");
    // Queries come from the input or the operands, not both.
    let output = run(&mut svcname(&["-q", "22"]), LIMIT);
    assert_eq!(code(&output), 2);
}

#[test]
fn annotates_ndjson_keeping_every_field_in_order() {
    let input = concat!(
        r#"{"host":"localhost","address":"127.0.0.1","port":22,"proto":"tcp","state":"open","extra":{"nested":[1,2]}}"#,
        "\n",
        r#"{"proto":"udp","local_address":"0.0.0.0","local_port":53,"remote_address":"0.0.0.0","remote_port":0}"#,
        "\n",
        r#"{"pid":1,"comm":"init"}"#,
        "\n",
        r#"{"port":"443/tcp","service":"stale","z":true}"#,
        "\n",
    );
    let output = filter(&["--range"], input);
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    let stdout = stdout_text(&output);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[0],
        r#"{"host":"localhost","address":"127.0.0.1","port":22,"proto":"tcp","state":"open","extra":{"nested":[1,2]},"service":"ssh","range":"well-known"}"#
    );
    let second: serde_json::Map<String, Value> = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(second["local_service"], "domain");
    assert_eq!(second["local_range"], "well-known");
    assert_eq!(second["remote_service"], Value::Null);
    assert_eq!(
        lines[2], r#"{"pid":1,"comm":"init"}"#,
        "records without ports pass unchanged"
    );
    assert_eq!(
        lines[3], r#"{"port":"443/tcp","service":"stale","z":true,"range":"well-known"}"#,
        "a service the record names is its own (portscan -sV's); the other fields svcname \
         adds are replaced where they stand"
    );
}

#[test]
fn field_picks_the_port_field() {
    let output = filter(&["--field", "dst"], "{\"dst\":443,\"src\":40000}\n");
    assert_eq!(
        stdout_text(&output),
        "{\"dst\":443,\"src\":40000,\"dst_service\":\"https\"}\n"
    );
}

#[test]
fn annotates_csv_with_a_header() {
    let input = "host,port,proto,state\nlocalhost,22,tcp,open\n\"odd, name\",53,udp,open\nlocalhost,,tcp,open\n";
    let output = filter(&["--description"], input);
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    let mut reader = csv::Reader::from_reader(output.stdout.as_slice());
    assert_eq!(
        reader.headers().unwrap(),
        vec!["host", "port", "proto", "state", "service", "description"]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(&rows[0][4], "ssh");
    assert_eq!(&rows[1][0], "odd, name");
    assert_eq!(&rows[1][4], "domain");
    assert_eq!(&rows[2][4], "", "no port, no service");
}

#[test]
fn bad_input_is_reported_with_its_line_and_passed_through() {
    let mut input = Vec::new();
    input.extend_from_slice(b"22/tcp open\n");
    input.extend_from_slice(b"{\"port\": 22,\n");
    input.extend_from_slice(b"x 70000/tcp open\n");
    input.extend_from_slice(b"\xff\xfe binary \x00 garbage 80/tcp\n");
    input.extend_from_slice(b"{\"port\":70000}\n");
    let long = vec![b'a'; 2 * 1024 * 1024];
    input.extend_from_slice(&long);
    input.extend_from_slice(b" 22/tcp\n");
    input.extend_from_slice(b"last 25/tcp\n");
    let output = run_with_input(&mut svcname(&[]), &input, LIMIT);
    assert_eq!(code(&output), 1);
    let stderr = stderr_text(&output);
    let messages: Vec<&str> = stderr.lines().collect();
    assert_eq!(messages.len(), 4, "{stderr}");
    assert!(
        messages[0].starts_with("svcname: stdin:2: not a valid JSON object"),
        "{stderr}"
    );
    assert_eq!(
        messages[1],
        "svcname: stdin:3: port 70000 is out of range 1-65535"
    );
    assert_eq!(
        messages[2],
        "svcname: stdin:5: field port: port 70000 is out of range 1-65535"
    );
    assert_eq!(
        messages[3],
        "svcname: stdin:6: longer than 1048576 bytes, passed through"
    );
    let stdout = output.stdout;
    let expected_lines = [
        &b"22/tcp open ssh"[..],
        b"{\"port\": 22,",
        b"x 70000/tcp open",
        b"\xff\xfe binary \x00 garbage 80/tcp www-http",
        b"{\"port\":70000}",
    ];
    let mut rest = stdout.as_slice();
    for expected in expected_lines {
        let end = rest.iter().position(|&b| b == b'\n').unwrap();
        assert_eq!(&rest[..end], expected);
        rest = &rest[end + 1..];
    }
    assert_eq!(
        rest.len(),
        long.len() + b" 22/tcp\nlast 25/tcp smtp\n".len()
    );
    assert!(rest.ends_with(b"a 22/tcp\nlast 25/tcp smtp\n"));
}

#[test]
fn reads_input_files_and_reports_unreadable_ones() {
    let dir = std::env::temp_dir().join(format!("svcname-input-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("scan.txt");
    std::fs::write(&path, "443/tcp open\n").unwrap();
    let output = run(
        &mut svcname(&["-i", path.to_str().unwrap(), "-i", "/nonexistent/input"]),
        LIMIT,
    );
    assert_eq!(code(&output), 1);
    assert_eq!(stdout_text(&output), "443/tcp open https\n");
    assert_eq!(
        stderr_text(&output),
        "svcname: opening /nonexistent/input: No such file or directory\n"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_closed_pipe_ends_quietly_and_a_full_disk_is_reported() {
    let many = (1..=20_000).fold(String::new(), |mut text, i| {
        text.push_str(&(i % 1000 + 1).to_string());
        text.push_str("/tcp open\n");
        text
    });
    let dir = std::env::temp_dir().join(format!("svcname-pipe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        Stdio::from(std::fs::File::open(path).unwrap())
    };
    let first = assert_quiet_on_closed_pipe(
        tool("svcname")
            .arg("--builtin-only")
            .stdin(input("many", &many)),
    );
    assert_eq!(first, "2/tcp open unknown\n");

    assert_full_disk_is_an_error("svcname", &mut svcname(&["22"]));
    assert_full_disk_is_an_error("svcname", svcname(&[]).stdin(input("one", "80/tcp open\n")));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Big inputs are annotated on several threads in chunks: a CSV header must reach every
/// chunk, and the output must keep the input's order.
#[test]
fn large_inputs_keep_order_and_csv_context() {
    let mut input = String::from("host,port,proto\n");
    for i in 0..30_000 {
        let port = [22, 25, 53, 443][i % 4];
        writeln!(input, "h{i},{port},tcp").unwrap();
    }
    input.push('\n');
    for i in 0..30_000 {
        writeln!(input, "{{\"seq\":{i},\"port\":443}}").unwrap();
    }
    let output = filter(&[], &input);
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    let text = stdout_text(&output);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("host,port,proto,service"));
    for i in 0..30_000 {
        let (port, service) = [(22, "ssh"), (25, "smtp"), (53, "domain"), (443, "https")][i % 4];
        assert_eq!(
            lines.next(),
            Some(format!("h{i},{port},tcp,{service}").as_str())
        );
    }
    assert_eq!(lines.next(), Some(""));
    for i in 0..30_000 {
        let expected = format!("{{\"seq\":{i},\"port\":443,\"service\":\"https\"}}");
        assert_eq!(lines.next(), Some(expected.as_str()));
    }
    assert_eq!(lines.next(), None);
}

#[test]
fn csv_quirks_never_lose_a_byte_or_the_header() {
    // A quoted field over two lines is one record.
    let output = filter(&[], "port,desc\n22,\"multi\nline\"\n25,x\n");
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    assert_eq!(
        stdout_text(&output),
        "port,desc,service\n22,\"multi\nline\",ssh\n25,x,smtp\n"
    );
    // A quote inside a line of text opens nothing; a malformed row keeps the header.
    let output = filter(
        &[],
        "host,port,proto\na,22,tcp\nsome \"quoted text\nb,c,23,tcp\nd,25,tcp\n",
    );
    assert_eq!(code(&output), 1);
    assert_eq!(
        stdout_text(&output),
        "host,port,proto,service\na,22,tcp,ssh\nsome \"quoted text\nb,c,23,tcp\nd,25,tcp,smtp\n"
    );
    assert_eq!(
        stderr_text(&output),
        "svcname: stdin:3: a CSV row of 1 fields under a header of 3, passed through\n\
         svcname: stdin:4: a CSV row of 4 fields under a header of 3, passed through\n"
    );
    // An open quote followed by an overlong line: both pass through whole.
    let mut input = b"port,proto\n22,\"tcp\n".to_vec();
    input.extend(std::iter::repeat_n(b'A', 1 << 20));
    input.extend_from_slice(b"BCDEFG\nnext\n");
    let output = run_with_input(&mut svcname(&[]), &input, LIMIT);
    assert_eq!(code(&output), 1);
    assert_eq!(output.stdout.len(), input.len() + ",service".len());
    assert!(output.stdout.ends_with(b"AAABCDEFG\nnext\n"));
}

/// Protocol names (docs/FORMAT.md, "Protocol names"): input may spell them as netstat and
/// ss do, `tcp6` and `udp6`, in every place a protocol is read; a command line may not.
#[test]
fn netstat_protocol_names_in_input_only() {
    let input = "53/udp6\n\
                 {\"port\":\"53/udp6\"}\n\
                 {\"port\":53,\"proto\":\"udp6\"}\n\
                 port,proto\n53,UDP6\n53/udp6,\n\n\
                 udp6 0 0 :::53 :::*\n";
    let output = filter(&[], input);
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    assert_eq!(
        stdout_text(&output),
        "53/udp6 domain\n\
         {\"port\":\"53/udp6\",\"service\":\"domain\"}\n\
         {\"port\":53,\"proto\":\"udp6\",\"service\":\"domain\"}\n\
         port,proto,service\n53,UDP6,domain\n53/udp6,,domain\n\n\
         udp6 0 0 :::53 :::* domain\n"
    );
    let output = filter(&["--queries"], "domain/udp6 53/udp6\n");
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    assert_eq!(
        stdout_text(&output),
        "53/udp domain well-known Domain Name Server\n\
         53/udp domain well-known Domain Name Server\n"
    );
    // On the command line `udp6` is no protocol: not a port's, not --proto, and a name
    // with it is a name like any other.
    let cases: [(&[&str], i32); 3] = [
        (&["53/udp6"], 2),
        (&["-p", "udp6", "53"], 2),
        (&["domain/udp6"], 1),
    ];
    for (args, status) in cases {
        let output = run(&mut svcname(args), LIMIT);
        assert_eq!(code(&output), status, "{args:?}: {}", stderr_text(&output));
        assert_eq!(stdout_text(&output), "", "{args:?}");
    }
}

/// svcname's CSV output reads back through the csv crate: each cell of the input as it was
/// (commas, quotes, CR and LF, bytes that are not UTF-8), and the added cells as svcname
/// means them (a description with a comma, quotes and a CR, from a services file).
#[test]
fn csv_output_round_trips_through_the_csv_crate() {
    let dir = std::env::temp_dir().join(format!("svcname-csv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let services = dir.join("services");
    std::fs::write(
        &services,
        "odd 4242/tcp # one\rtwo, \"three\"\nplain 4242/udp # plain\n",
    )
    .unwrap();
    let notes: [&[u8]; 8] = [
        b"plain",
        b"a, b",
        b"say \"hi\"",
        b"two\r\nlines",
        b"lf\nonly",
        b"\xff\xfe not UTF-8",
        b"cr\r",
        b"",
    ];
    let mut rows: Vec<[&[u8]; 3]> = Vec::new();
    for (index, note) in notes.into_iter().enumerate() {
        rows.push([note, b"4242", if index % 2 == 0 { b"tcp" } else { b"udp" }]);
    }
    for terminator in [csv::Terminator::Any(b'\n'), csv::Terminator::CRLF] {
        let mut input = Vec::new();
        {
            let mut writer = csv::WriterBuilder::new()
                .terminator(terminator)
                .from_writer(&mut input);
            writer.write_record(["note", "port", "proto"]).unwrap();
            for row in &rows {
                writer.write_record(row).unwrap();
            }
        }
        let output = run_with_input(
            &mut svcname(&["-d", "--services", services.to_str().unwrap()]),
            &input,
            LIMIT,
        );
        assert_eq!(code(&output), 0, "{}", stderr_text(&output));
        let mut reader = csv::Reader::from_reader(output.stdout.as_slice());
        assert_eq!(
            reader.byte_headers().unwrap(),
            &csv::ByteRecord::from(vec!["note", "port", "proto", "service", "description"])
        );
        let read: Vec<csv::ByteRecord> = reader.byte_records().map(Result::unwrap).collect();
        assert_eq!(read.len(), rows.len());
        for (row, record) in rows.iter().zip(&read) {
            let (service, description): (&[u8], &[u8]) = if row[2] == b"tcp" {
                (b"odd", b"one\rtwo, \"three\"")
            } else {
                (b"plain", b"plain")
            };
            let expected: Vec<&[u8]> = row.iter().copied().chain([service, description]).collect();
            assert_eq!(
                record.iter().collect::<Vec<_>>(),
                expected,
                "{terminator:?}"
            );
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn lone_dashes_times_and_dates_are_not_ports() {
    let output = filter(&[], "-\n17:35\n2024-01-01\n22/icmp\n0\n70000\n22\n");
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    assert_eq!(
        stdout_text(&output),
        "-\n17:35\n2024-01-01\n22/icmp\n0\n70000\n22 ssh\n"
    );
}

#[test]
fn an_unreadable_input_does_not_stop_the_others() {
    let dir = std::env::temp_dir().join(format!("svcname-inputs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("one.txt");
    std::fs::write(&path, "443/tcp open\n").unwrap();
    let output = run(
        &mut svcname(&["-i", dir.to_str().unwrap(), "-i", path.to_str().unwrap()]),
        LIMIT,
    );
    assert_eq!(code(&output), 1);
    assert_eq!(stdout_text(&output), "443/tcp open https\n");
    assert_eq!(
        stderr_text(&output),
        format!("svcname: reading {}: Is a directory\n", dir.display())
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Output is block-buffered, but handed over before svcname waits for more input: a line
/// written to a pipe that stays open is answered (`tail -f log | svcname`).
#[test]
fn each_line_is_answered_before_waiting_for_the_next() {
    use std::io::{BufRead, BufReader, Write};
    let mut child = svcname(&[])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (sender, answers) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    for (input, expected) in [
        ("22\n", "22 ssh"),
        ("x 53/udp open\n", "x 53/udp open domain"),
    ] {
        stdin.write_all(input.as_bytes()).unwrap();
        stdin.flush().unwrap();
        // stdin stays open: the answer can only come from a flush before waiting.
        let answer = answers.recv_timeout(LIMIT);
        if answer.is_err() {
            let _ = child.kill();
        }
        let answer = answer.expect("an answer while stdin is still open");
        assert!(answer.starts_with(expected), "{answer}");
    }
    drop(stdin);
    let status = child.wait().unwrap();
    reader.join().unwrap();
    assert!(status.success());
}

/// Byte for byte: each line leaves with the end it came with (CR LF, LF, or none at the end
/// of the input) and its blanks, annotated or not; an addition goes before the CR.
#[test]
fn lines_leave_as_they_came() {
    let input = b"a\r\n25/tcp open  \r\n  \t\r\n{\"port\":25}\r\nport,proto\r\n25,tcp\r\n\r\n\
                  lone\r\n25\r\nplain \nlast 25/tcp";
    let output = run_with_input(&mut svcname(&[]), input, LIMIT);
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "a\r\n25/tcp open   smtp\r\n  \t\r\n{\"port\":25,\"service\":\"smtp\"}\r\n\
         port,proto,service\r\n25,tcp,smtp\r\n\r\nlone\r\n25 smtp\r\nplain \nlast 25/tcp smtp"
    );
    // Unannotated last lines, short and over the 1 MiB a line is read in, get no newline.
    for input in [b"x\r".to_vec(), vec![b'y'; (1 << 20) + 5]] {
        let output = run_with_input(&mut svcname(&[]), &input, LIMIT);
        assert_eq!(output.stdout, input);
    }
}

/// A connection's line names the end that is a service: the local port of a listener and
/// of an accepted connection, the peer's of an outgoing one (ss and netstat alike).
#[test]
fn a_connection_is_named_by_its_service_end() {
    let (listener, port, services) = listener_with_a_name("two-ends");
    let client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (_server, _) = listener.accept().unwrap();
    let ephemeral = client.local_addr().unwrap().port();
    let ss = run(
        Command::new("ss").args(["-tan", &format!("( sport = :{port} or dport = :{port} )")]),
        LIMIT,
    );
    let output = run_with_input(
        &mut svcname(&["--services", services.to_str().unwrap()]),
        &ss.stdout,
        LIMIT,
    );
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    let (ours, theirs) = (
        format!("127.0.0.1:{port}"),
        format!("127.0.0.1:{ephemeral}"),
    );
    let lines: Vec<&str> = std::str::from_utf8(&output.stdout)
        .unwrap()
        .lines()
        .collect();
    for (first, second) in [(&ours, &theirs), (&theirs, &ours)] {
        let line = lines
            .iter()
            .find(|line| {
                let at = |end: &str| line.split_whitespace().position(|token| token == end);
                at(first).is_some() && at(first) < at(second)
            })
            .unwrap_or_else(|| panic!("no {first} {second} in {lines:?}"));
        assert!(line.ends_with(" testsvc"), "{line}");
    }
    assert!(
        lines.iter().any(|line| line.starts_with("LISTEN")
            && line.contains(&ours)
            && line.ends_with(" testsvc")),
        "{lines:?}"
    );
    std::fs::remove_dir_all(services.parent().unwrap()).unwrap();
}

/// proctree's sockets are an array in NDJSON and one cell in CSV: this process listens on
/// TCP and UDP ports a services file names, and proctree's records of it, piped through
/// svcname, name each port in place, ours by those names.
#[test]
fn proctree_ports_are_named_inside_the_array_and_the_cell() {
    let (listener, tcp_port, services) = listener_with_a_name("nested");
    let udp = std::net::UdpSocket::bind(("127.0.0.1", 0)).unwrap();
    let udp_port = udp.local_addr().unwrap().port();
    let udp_services = services.with_file_name("udp-services");
    std::fs::write(&udp_services, format!("testudp {udp_port}/udp\n")).unwrap();
    let pid = std::process::id().to_string();
    let through_svcname = |format: &str| {
        let proctree = run(
            tool("proctree").args(["--ports", format, "--pid", &pid]),
            LIMIT,
        );
        assert_eq!(code(&proctree), 0, "{}", stderr_text(&proctree));
        let output = run_with_input(
            &mut svcname(&[
                "--services",
                services.to_str().unwrap(),
                "--services",
                udp_services.to_str().unwrap(),
            ]),
            &proctree.stdout,
            LIMIT,
        );
        assert_eq!(code(&output), 0, "{}", stderr_text(&output));
        output.stdout
    };
    let ours = [(tcp_port, "tcp", "testsvc"), (udp_port, "udp", "testudp")];

    let json = through_svcname("--json");
    let record: Value =
        serde_json::from_slice(json.split(|&b| b == b'\n').next().unwrap()).unwrap();
    assert_eq!(record["pid"].to_string(), pid);
    let ports = record["ports"].as_array().expect("an array of ports");
    assert!(
        ports.iter().all(|port| port["service"].is_string()),
        "{ports:?}"
    );
    for (port, proto, name) in ours {
        assert!(
            ports.iter().any(|element| element["port"] == port
                && element["proto"] == proto
                && element["service"] == name),
            "{port}/{proto} named {name} in {ports:?}"
        );
    }

    let csv_text = through_svcname("--csv");
    let mut reader = csv::Reader::from_reader(&csv_text[..]);
    let header = reader.headers().unwrap().clone();
    assert_eq!(header.iter().next_back(), Some("services"));
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    let row = reader.records().next().unwrap().unwrap();
    let pairs: Vec<&str> = row[column("ports")].split(' ').collect();
    let names: Vec<&str> = row[column("services")].split(' ').collect();
    assert_eq!(names.len() * 2, pairs.len(), "{pairs:?} {names:?}");
    for (port, proto, name) in ours {
        let at = pairs
            .chunks(2)
            .position(|pair| pair[0] == proto && pair[1] == format!("127.0.0.1:{port}"))
            .expect("our socket in the cell");
        assert_eq!(names[at], name);
    }
    drop((listener, udp));
    std::fs::remove_dir_all(services.parent().unwrap()).unwrap();
}

/// Every port, in an order that mixes them, is named in a filter as a lookup names it, with
/// its range, in text, NDJSON and CSV: the answers kept for the ports met so far never mix up two ports, and ports
/// without a name share theirs without losing their range.
#[test]
fn every_port_is_named_as_a_lookup_names_it() {
    let lookups = run(&mut svcname(&["--json", "1-65535"]), LIMIT);
    assert_eq!(code(&lookups), 0, "{}", stderr_text(&lookups));
    let expected: Vec<(u64, String)> = stdout_text(&lookups)
        .lines()
        .map(|line| {
            let record: Value = serde_json::from_str(line).unwrap();
            let service = record["service"].as_str().unwrap();
            let range = record["range"].as_str().unwrap();
            (
                record["port"].as_u64().unwrap(),
                format!("{service} {range}"),
            )
        })
        .collect();
    assert_eq!(expected.len(), 65_535);
    // Each port twice, a stride apart, so that most are met before and after others.
    let order: Vec<usize> = (0..2 * 65_535).map(|i| i * 7_919 % 65_535).collect();
    let mut input = String::new();
    for &at in &order {
        writeln!(input, "127.0.0.1 {}/tcp open syn-ack", expected[at].0).unwrap();
    }
    let output = filter(&["-r"], &input);
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    let text = stdout_text(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), order.len());
    for (line, &at) in lines.iter().zip(&order) {
        let (port, addition) = &expected[at];
        assert_eq!(
            *line,
            format!("127.0.0.1 {port}/tcp open syn-ack {addition}")
        );
    }
    // The same in NDJSON and CSV, whose answers are kept apart from text's.
    let mut json = String::new();
    let mut csv = String::from("port,proto\n");
    for &at in &order {
        writeln!(json, "{{\"port\":{}}}", expected[at].0).unwrap();
        writeln!(csv, "{},tcp", expected[at].0).unwrap();
    }
    let output = filter(&["-r"], &json);
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    for (line, &at) in stdout_text(&output).lines().zip(&order) {
        let record: Value = serde_json::from_str(line).unwrap();
        let (port, addition) = &expected[at];
        assert_eq!(record["port"], *port);
        assert_eq!(
            format!(
                "{} {}",
                record["service"].as_str().unwrap(),
                record["range"].as_str().unwrap()
            ),
            *addition
        );
    }
    let output = filter(&["-r"], &csv);
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    let text = stdout_text(&output);
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let mut rows = 0;
    for (row, &at) in reader.records().zip(&order) {
        let row = row.unwrap();
        let (port, addition) = &expected[at];
        assert_eq!(row[0], port.to_string());
        assert_eq!(format!("{} {}", &row[2], &row[3]), *addition);
        rows += 1;
    }
    assert_eq!(rows, order.len());
}

/// A directory with an nmap-services file of our own, for `NMAPDIR`: 8000 is http-alt,
/// 8001 is one of nmap's `unknown`s.
fn nmap_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("svcname-nmap-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("nmap-services"),
        "# test table\nhttp-alt\t8000/tcp\t0.025\t# A common alternative http port\n\
         unknown\t8001/tcp\t0.001\n",
    )
    .unwrap();
    dir
}

/// --frequency shows in a lookup's text as in its JSON, after the range, `-` where nmap's
/// table has none; --names nmap gives nmap's names, and the others where nmap has none.
#[test]
fn frequency_and_nmap_names() {
    let dir = nmap_dir("names");
    let svcname = |args: &[&str]| {
        let mut command = tool("svcname");
        command.env("NMAPDIR", &dir).args(args);
        command
    };
    let output = run(&mut svcname(&["--frequency", "8000", "8002"]), LIMIT);
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    let text = stdout_text(&output);
    let columns: Vec<Vec<&str>> = text.lines().map(|l| l.split(' ').collect()).collect();
    assert_eq!(
        columns[0][..4],
        ["8000/tcp", "irdmi", "registered", "0.025"]
    );
    assert_eq!(columns[1][0], "8002/tcp");
    assert_eq!(columns[1][3], "-");
    let output = run(&mut svcname(&["--frequency", "--json", "8000"]), LIMIT);
    let record: Value = serde_json::from_str(stdout_text(&output).trim()).unwrap();
    assert_eq!(record["frequency"], 0.025);

    let output = run(
        &mut svcname(&["--names", "nmap", "--json", "8000", "8001"]),
        LIMIT,
    );
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    let records: Vec<Value> = stdout_text(&output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records[0]["service"], "http-alt");
    assert_eq!(records[0]["source"], "nmap-services");
    assert_ne!(
        records[1]["service"], "unknown",
        "nmap's unknown is no name"
    );
    assert_ne!(records[1]["source"], "nmap-services");
    let output = run(&mut svcname(&["--names", "nmap", "http-alt"]), LIMIT);
    assert!(
        stdout_text(&output)
            .lines()
            .any(|l| l.starts_with("8000/tcp http-alt ")),
        "{}",
        stdout_text(&output)
    );
    let output = run_with_input(
        &mut svcname(&["--names", "nmap"]),
        b"8000/tcp open\n{\"port\":8000}\n",
        LIMIT,
    );
    assert_eq!(
        stdout_text(&output),
        "8000/tcp open http-alt\n{\"port\":8000,\"service\":\"http-alt\"}\n"
    );
    let output = run(&mut svcname(&["8000"]), LIMIT);
    assert!(
        !stdout_text(&output).contains("http-alt"),
        "system names by default"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A service's other names in its file are its `aliases`: a JSON array, a CSV cell, and
/// `[aliases: ...]` at the end of a text line.
#[test]
fn aliases_are_a_field() {
    let dir = std::env::temp_dir().join(format!("svcname-aliases-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let services = dir.join("services");
    std::fs::write(&services, "web 80/tcp www w3 # our web\nplain 81/tcp\n").unwrap();
    let path = services.to_str().unwrap();
    let output = run(&mut svcname(&["--services", path, "80", "81"]), LIMIT);
    assert_eq!(
        stdout_text(&output),
        "80/tcp web well-known our web [aliases: www w3]\n81/tcp plain well-known -\n"
    );
    let output = run(&mut svcname(&["--services", path, "--json", "www"]), LIMIT);
    let record: Value = serde_json::from_str(stdout_text(&output).trim()).unwrap();
    assert_eq!(record["aliases"], serde_json::json!(["www", "w3"]));
    let output = run(&mut svcname(&["--services", path, "--json", "81"]), LIMIT);
    let record: Value = serde_json::from_str(stdout_text(&output).trim()).unwrap();
    assert_eq!(record["aliases"], serde_json::json!([]));
    let output = run(&mut svcname(&["--services", path, "--csv", "80"]), LIMIT);
    let mut reader = csv::Reader::from_reader(output.stdout.as_slice());
    let header = reader.headers().unwrap().clone();
    let row = reader.records().next().unwrap().unwrap();
    let aliases = header.iter().position(|h| h == "aliases").unwrap();
    assert_eq!(&row[aliases], "www w3");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A listener on 127.0.0.1 at a port below the ephemeral range (32768 up, Linux's
/// default), so that a connection's two ends are told apart by number too, and a services
/// file in a directory of its own naming it `testsvc`.
fn listener_with_a_name(tag: &str) -> (std::net::TcpListener, u16, std::path::PathBuf) {
    let first = 20_000 + u16::try_from(std::process::id() % 5_000).unwrap();
    let (listener, port) = (first..first + 200)
        .find_map(|port| {
            std::net::TcpListener::bind(("127.0.0.1", port))
                .ok()
                .map(|listener| (listener, port))
        })
        .expect("a free port in 20000-25200");
    let dir = std::env::temp_dir().join(format!("svcname-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let services = dir.join("services");
    std::fs::write(&services, format!("testsvc {port}/tcp\n")).unwrap();
    (listener, port, services)
}

/// A few megabytes of what svcname meets in pipelines: a syslog sample, nmap's normal and
/// grepable output of a local scan, ss and netstat output, with CR LF and trailing blanks
/// in places, binary noise, and no newline at the very end. Every line that comes out is
/// the line that went in, byte for byte, or that line with ` SERVICE` added before its end;
/// a line that names its service already is not annotated; the output read again is the
/// same.
#[test]
fn a_filter_changes_no_byte_it_does_not_add() {
    require_program("nmap", &["--version"]);
    require_program("netstat", &["--version"]);
    let (listener, port, services) = listener_with_a_name("differential");
    let client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (_server, _) = listener.accept().unwrap();
    let ephemeral = client.local_addr().unwrap().port();
    // A listener on a port /etc/services names, which ss and netstat then print by name.
    let named_listener = [9418, 5432, 3306, 873]
        .into_iter()
        .find_map(|port| std::net::TcpListener::bind(("127.0.0.1", port)).ok())
        .expect("one of git, postgresql, mysql, rsync's ports free");
    let reports = local_reports(port);
    let nmap = reports[0].clone();
    let input = mixed_input(&reports);
    let output = run_with_input(
        &mut svcname(&["--services", services.to_str().unwrap()]),
        &input,
        LIMIT,
    );
    // Noise makes malformed JSON and out-of-range ports, each reported: status 1.
    assert!(matches!(code(&output), 0 | 1), "{}", stderr_text(&output));
    let ins: Vec<&[u8]> = input.split_inclusive(|&b| b == b'\n').collect();
    let outs: Vec<&[u8]> = output.stdout.split_inclusive(|&b| b == b'\n').collect();
    assert_eq!(ins.len(), outs.len(), "one line out for each line in");
    let annotated_lines = check_additions(&ins, &outs);
    check_named_lines_unchanged(&ins, &outs);
    // svcname's output read again is unchanged.
    let again = run_with_input(
        &mut svcname(&["--services", services.to_str().unwrap()]),
        &output.stdout,
        LIMIT,
    );
    assert!(output.stdout == again.stdout, "the filter is idempotent");
    drop(named_listener);
    // What must have been named: our port in nmap's report, and both ends of our
    // connection and our listener in ss's and netstat's (each seen in several rounds).
    let annotated = |body: String| {
        let ins_with = ins
            .iter()
            .filter(|line| line.starts_with(body.as_bytes()))
            .count();
        assert!(ins_with > 0, "{body:?} is not in the input");
        let out_with = outs
            .iter()
            .filter(|line| {
                line.starts_with(body.as_bytes())
                    && line[body.len()..].trim_ascii_end().ends_with(b" testsvc")
            })
            .count();
        assert_eq!(out_with, ins_with, "{body:?} named testsvc each time");
    };
    assert!(
        std::str::from_utf8(&nmap)
            .unwrap()
            .lines()
            .any(|line| line.starts_with(&format!("{port}/tcp "))),
        "our port in nmap's report"
    );
    let (ours, theirs) = (
        format!("127.0.0.1:{port}"),
        format!("127.0.0.1:{ephemeral}"),
    );
    for report in &reports[2..] {
        for line in std::str::from_utf8(report).unwrap().lines() {
            let ours_at = line.find(&format!("{ours} "));
            let theirs_at = line.find(&format!("{theirs} "));
            if ours_at.is_some() && theirs_at.is_some()
                || line.contains("LISTEN") && ours_at.is_some()
            {
                annotated(line.to_owned());
            }
        }
    }
    // Log lines that are one word, or name a port only in passing, are not touched.
    for word in ["hello", "time", "login", "ssh"] {
        let lone: Vec<_> = ins
            .iter()
            .zip(&outs)
            .filter(|(line, _)| line.trim_ascii() == word.as_bytes())
            .collect();
        assert!(!lone.is_empty(), "{word}");
        assert!(lone.iter().all(|(line, out)| line == out), "{word}");
    }
    assert!(
        annotated_lines > 50,
        "{annotated_lines} distinct lines annotated"
    );
    std::fs::remove_dir_all(services.parent().unwrap()).unwrap();
}

/// nmap's normal and grepable reports of a scan of 127.0.0.1 that includes `port`, then
/// ss's and netstat's tables, numbered and with names.
fn local_reports(port: u16) -> [Vec<u8>; 8] {
    let capture = |program: &str, args: &[&str]| {
        let output = run(Command::new(program).args(args), LIMIT);
        assert!(
            output.status.success(),
            "{program} {args:?}: {}",
            stderr_text(&output)
        );
        output.stdout
    };
    let ports = format!("1-2000,{port}");
    let nmap = capture("nmap", &["-sT", "-Pn", "-n", "-p", &ports, "127.0.0.1"]);
    let grepable = capture(
        "nmap",
        &["-sT", "-Pn", "-n", "-p", &ports, "-oG", "-", "127.0.0.1"],
    );
    [
        nmap,
        grepable,
        capture("ss", &["-tan"]),
        capture("ss", &["-tuanp"]),
        capture("netstat", &["-tan"]),
        capture("netstat", &["-tuanp"]),
        capture("ss", &["-ta"]),
        capture("netstat", &["-ta", "--numeric-hosts"]),
    ]
}

/// Lines that name their service already pass unchanged: nmap's table rows and grepable
/// lines, ss's and netstat's with names; each kind is met.
fn check_named_lines_unchanged(ins: &[&[u8]], outs: &[&[u8]]) {
    let mut named_lines = [0; 3];
    for (line, out) in ins.iter().zip(outs) {
        if let Some(kind) = names_its_service(line) {
            named_lines[kind] += 1;
            assert_eq!(
                String::from_utf8_lossy(out),
                String::from_utf8_lossy(line),
                "no second name"
            );
        }
    }
    assert!(
        named_lines.iter().all(|&count| count > 0),
        "{named_lines:?}"
    );
}

/// Whether a line names its service itself, found as the test reads it: an nmap table row
/// (`22/tcp open ssh`: 0), a grepable `Host:` line with `Ports:` (1), an ss or netstat end
/// `ADDRESS:NAME` (2).
fn names_its_service(line: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(line).ok()?;
    let tokens: Vec<&str> = text.split_ascii_whitespace().collect();
    let nmap_row = tokens.len() >= 3
        && tokens[0].split_once('/').is_some_and(|(port, proto)| {
            port.parse::<u16>().is_ok() && ["tcp", "udp"].contains(&proto)
        })
        && ["open", "closed", "filtered", "open|filtered"].contains(&tokens[1]);
    if nmap_row {
        return Some(0);
    }
    if text.starts_with("Host: ") && text.contains("\tPorts: ") {
        return Some(1);
    }
    let address_name = |token: &&str| {
        token.rsplit_once(':').is_some_and(|(address, name)| {
            name.starts_with(|c: char| c.is_ascii_alphabetic())
                && (address == "*"
                    || address
                        .trim_start_matches('[')
                        .trim_end_matches(']')
                        .parse::<std::net::IpAddr>()
                        .is_ok())
        })
    };
    tokens.iter().any(address_name).then_some(2)
}

/// The differential test's input: rounds of syslog, one of the reports (some with CR LF or
/// trailing blanks on each line), and binary noise; at the very end noise without a newline.
fn mixed_input(reports: &[Vec<u8>]) -> Vec<u8> {
    let mut rng = XorShift(0x5eed_cafe_f00d_d00d);
    let mut input = Vec::new();
    for round in 0..40 {
        input.extend(syslog(&mut rng, 500));
        let report = &reports[round % reports.len()];
        if round % 3 == 0 {
            // The same report as a Windows tool, or a serial console, would send it.
            for line in report.split_inclusive(|&b| b == b'\n') {
                input.extend_from_slice(line.strip_suffix(b"\n").unwrap_or(line));
                input.extend_from_slice(if round % 2 == 0 { b"\r\n" } else { b"  \t\n" });
            }
        } else {
            input.extend_from_slice(report);
        }
        input.extend((0..25_000).map(|_| rng.byte()));
        input.push(b'\n');
    }
    input.extend((0..5_000).map(|_| rng.byte()));
    assert!(input.len() > 2_000_000, "{}", input.len());

    input
}

/// Checks that each line out is its line in, or that line with ` SERVICE` before its end;
/// returns how many distinct lines were annotated.
fn check_additions(ins: &[&[u8]], outs: &[&[u8]]) -> usize {
    let mut added = std::collections::HashSet::new();
    for (number, (line, out)) in ins.iter().zip(outs).enumerate() {
        if line == out {
            continue;
        }
        let end_len = if line.ends_with(b"\r\n") {
            2
        } else {
            usize::from(line.ends_with(b"\n"))
        };
        let (body, end) = line.split_at(line.len() - end_len);
        let addition = out
            .strip_prefix(body)
            .and_then(|rest| rest.strip_suffix(end))
            .unwrap_or_else(|| {
                panic!(
                    "line {}: {:?} became {:?}",
                    number + 1,
                    String::from_utf8_lossy(line),
                    String::from_utf8_lossy(out)
                )
            });
        let name = addition.strip_prefix(b" ").unwrap_or_default();
        assert!(
            !name.is_empty() && name.iter().all(u8::is_ascii_graphic),
            "line {}: {:?} added to {:?}",
            number + 1,
            String::from_utf8_lossy(addition),
            String::from_utf8_lossy(line)
        );
        added.insert(body);
    }
    added.len()
}

/// `count` lines as a syslog of a busy host holds them: sshd, cron, the kernel's firewall
/// (ports as `SPT=`/`DPT=`), postfix, and programs that log a lone word.
fn syslog(rng: &mut XorShift, count: usize) -> Vec<u8> {
    let mut out = String::new();
    for _ in 0..count {
        let (minute, second, pid) = (rng.below(60), rng.below(60), 1000 + rng.below(30_000));
        let port = 1024 + rng.below(64_000);
        let stamp = format!("Dec  4 19:{minute:02}:{second:02} web1");
        let line = match rng.below(8) {
            0 => format!(
                "{stamp} sshd[{pid}]: Accepted publickey for root from 127.0.0.1 port {port} ssh2"
            ),
            1 => format!(
                "{stamp} CRON[{pid}]: (root) CMD (test -x /usr/sbin/anacron || run-parts /etc/cron.daily)"
            ),
            2 => format!(
                "{stamp} kernel: [UFW BLOCK] IN=lo OUT= SRC=127.0.0.1 DST=127.0.0.1 PROTO=TCP SPT={port} DPT=22 SYN"
            ),
            3 => format!("{stamp} postfix/smtpd[{pid}]: connect from localhost[127.0.0.1]:{port}"),
            4 => ["hello", "time", "login", "ssh"][usize::from(rng.byte() % 4)].to_owned(),
            5 => format!("{stamp} app[{pid}]: listening on 127.0.0.1:{port} (pid {pid})   "),
            6 => format!("{stamp} systemd[1]: Started session {pid} of user root."),
            _ => format!(
                "{stamp} nginx: 127.0.0.1 - - [04/Dec/2026:19:{minute:02}:{second:02} +0000] \"GET / HTTP/1.1\" 200 {pid}"
            ),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out.into_bytes()
}

/// Marsaglia's xorshift64: the same noise on every run, without a dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn byte(&mut self) -> u8 {
        self.next().to_le_bytes()[0]
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

/// portscan -sV's records name their services by probing: svcname keeps that name (8000
/// stays http, not the table's irdmi) and adds only what was asked beside it; a record
/// whose service is null gets the table's.
#[test]
fn a_probed_service_in_a_record_is_kept() {
    let probed = r#"{"port":8000,"proto":"tcp","state":"open","service":"http","product":"SimpleHTTPServer"}"#;
    let unnamed = r#"{"port":8000,"proto":"tcp","service":null}"#;
    let output = filter(&["-r"], &format!("{probed}\n{unnamed}\n"));
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    let records: Vec<Value> = stdout_text(&output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(records[0]["service"], "http", "{}", records[0]);
    assert_eq!(records[0]["product"], "SimpleHTTPServer");
    assert_eq!(records[0]["range"], "registered", "{}", records[0]);
    assert_ne!(records[1]["service"], Value::Null, "{}", records[1]);
    assert_ne!(records[1]["service"], "http", "{}", records[1]);
}
