//! End-to-end tests of portscan's output files (-oN, -oX, -oG, -oJ, -oA): real listeners on
//! 127.0.0.1 and ::1 and a refused port, and the files read by the tools written for
//! nmap's: xmllint against nmap's DTD, ndiff, xsltproc with nmap.xsl, and nmap's own
//! grepable file of the same ports.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::fixtures::{TempDir, interrupt_after_first_line, require_program};
use crate::util::{LIMIT, code, run, stderr_text, stdout_text, tool};

const DTD: &str = "/usr/share/nmap/nmap.dtd";
const XSL: &str = "/usr/share/nmap/nmap.xsl";

/// A listening port on `address`, and a port of it that refuses (bound, then released).
fn open_and_closed(address: &str) -> (TcpListener, u16, u16) {
    let open = TcpListener::bind((address, 0)).unwrap();
    let closed = TcpListener::bind((address, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let port = open.local_addr().unwrap().port();
    (open, port, closed)
}

/// Runs portscan with `args`, which must succeed; its stdout.
fn portscan(args: &[&str]) -> String {
    let output = run(tool("portscan").args(args), LIMIT);
    assert_eq!(code(&output), 0, "{args:?}: {}", stderr_text(&output));
    stdout_text(&output)
}

/// Runs `program` with `args`; its status and stdout.
fn external(program: &str, args: &[&str]) -> (i32, String) {
    let output = run(Command::new(program).args(args), LIMIT);
    (code(&output), stdout_text(&output))
}

fn path(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Fails the test unless xmllint finds `file` valid against nmap's DTD.
fn assert_valid(file: &Path) {
    require_program("xmllint", &["--version"]);
    let output = run(
        Command::new("xmllint").args(["--noout", "--dtdvalid", DTD, path(file)]),
        LIMIT,
    );
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
}

#[test]
fn the_xml_is_valid_and_ndiff_and_nmaps_stylesheet_read_it() {
    let dir = TempDir::new("of-xml");
    let (open4, port4, closed4) = open_and_closed("127.0.0.1");
    let (_open6, port6, closed6) = open_and_closed("::1");
    let ports = format!("{port4},{closed4},{port6},{closed6}");
    let (before, after) = (dir.join("before.xml"), dir.join("after.xml"));
    let scan = |file: &Path| {
        portscan(&[
            "-Pn",
            "-p",
            &ports,
            "-oX",
            path(file),
            "127.0.0.1",
            "::1",
            "localhost",
        ])
    };
    scan(&before);
    assert_valid(&before);
    let xml = std::fs::read_to_string(&before).unwrap();
    for expected in [
        format!(r#"<port protocol="tcp" portid="{port4}"><state state="open" reason="syn-ack""#),
        format!(
            r#"<port protocol="tcp" portid="{closed6}"><state state="closed" reason="conn-refused""#
        ),
        r#"<address addr="::1" addrtype="ipv6"/>"#.to_owned(),
        r#"<hostname name="localhost" type="user"/>"#.to_owned(),
        r#"<hosts up="3" down="0" total="3"/>"#.to_owned(),
        r#"exit="success""#.to_owned(),
    ] {
        assert!(xml.contains(&expected), "{expected} in\n{xml}");
    }
    assert!(xml.ends_with("</runstats>\n</nmaprun>\n"), "{xml}");

    // The port closes between two runs: ndiff says so (status 1: they differ).
    drop(open4);
    scan(&after);
    assert_valid(&after);
    require_program("ndiff", &["--help"]);
    let (status, diff) = external("ndiff", &[path(&before), path(&after)]);
    assert_eq!(status, 1, "{diff}");
    assert!(
        diff.contains(&format!("-{port4}/tcp open"))
            && diff.contains(&format!("+{port4}/tcp closed")),
        "{diff}"
    );
    let (status, same) = external("ndiff", &[path(&after), path(&after)]);
    assert_eq!(status, 0, "{same}");

    require_program("xsltproc", &["--version"]);
    let (status, html) = external("xsltproc", &[XSL, path(&before)]);
    assert_eq!(status, 0);
    assert!(
        html.contains("<html") && html.contains(&port4.to_string()),
        "{html}"
    );
}

#[test]
fn the_grepable_file_has_a_host_line_with_every_port_as_nmaps() {
    let dir = TempDir::new("of-grepable");
    let (_open, port, closed) = open_and_closed("127.0.0.1");
    let ports = format!("{port},{closed}");
    let ours = dir.join("ours.gnmap");
    portscan(&["-Pn", "-p", &ports, "-oG", path(&ours), "127.0.0.1", "::1"]);
    let text = std::fs::read_to_string(&ours).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("# portscan "), "{text}");
    assert!(
        lines.last().unwrap().starts_with("# portscan done at "),
        "{text}"
    );
    // Each host: a Status line and a Ports line, cut apart as nmap's users do.
    let ports_of = |text: &str, address: &str| -> Vec<String> {
        let line = text
            .lines()
            .find(|line| {
                line.starts_with(&format!("Host: {address} (")) && line.contains("\tPorts: ")
            })
            .unwrap_or_else(|| panic!("no Ports line for {address} in\n{text}"));
        let field = line
            .split('\t')
            .find_map(|f| f.strip_prefix("Ports: "))
            .unwrap();
        // port/state/proto, without the service: nmap's table names ports ours may not.
        field
            .split(", ")
            .map(|port| port.split('/').take(3).collect::<Vec<_>>().join("/"))
            .collect()
    };
    assert!(text.contains("Host: 127.0.0.1 ()\tStatus: Up\n"), "{text}");
    assert!(text.contains("Host: ::1 ()\tStatus: Up\n"), "{text}");
    let mut expected = vec![format!("{port}/open/tcp"), format!("{closed}/closed/tcp")];
    expected.sort_by_key(|entry| entry.split('/').next().unwrap().parse::<u16>().unwrap());
    assert_eq!(ports_of(&text, "127.0.0.1"), expected);
    assert_eq!(ports_of(&text, "::1").len(), 2);

    // nmap's own file of the same ports says the same.
    require_program("nmap", &["--version"]);
    let (status, nmap) = external(
        "nmap",
        &["-sT", "-Pn", "-n", "-p", &ports, "-oG", "-", "127.0.0.1"],
    );
    assert_eq!(status, 0, "{nmap}");
    assert_eq!(ports_of(&nmap, "127.0.0.1"), expected, "{nmap}");
}

#[test]
fn all_writes_four_files_and_json_holds_the_records_of_json() {
    let dir = TempDir::new("of-all");
    let (_open, port, closed) = open_and_closed("127.0.0.1");
    let ports = format!("{port},{closed}");
    let base = dir.join("scan");
    let stdout = portscan(&[
        "-Pn",
        "--all",
        "--json",
        "-p",
        &ports,
        "-oA",
        path(&base),
        "127.0.0.1",
    ]);
    for extension in ["nmap", "xml", "gnmap", "json"] {
        let file = dir.join(&format!("scan.{extension}"));
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file:?}: {e}"));
        assert!(!text.is_empty(), "{file:?}");
    }
    assert_valid(&dir.join("scan.xml"));
    let json = std::fs::read_to_string(dir.join("scan.json")).unwrap();
    assert_eq!(json, stdout, "the very records --json printed");
    assert_eq!(json.lines().count(), 2);
    for line in json.lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap();
    }
}

#[test]
fn xml_to_stdout_and_the_normal_file_is_the_report() {
    let dir = TempDir::new("of-stdout");
    let (_open, port, closed) = open_and_closed("127.0.0.1");
    let ports = format!("{port},{closed}");
    let xml = portscan(&["-Pn", "-p", &ports, "-oX", "-", "127.0.0.1"]);
    assert!(
        xml.starts_with("<?xml version=\"1.0\""),
        "stdout gets the XML alone:\n{xml}"
    );
    let file = dir.join("stdout.xml");
    std::fs::write(&file, &xml).unwrap();
    assert_valid(&file);
    let no_sheet = portscan(&[
        "-Pn",
        "-p",
        &ports,
        "--no-stylesheet",
        "-oX",
        "-",
        "127.0.0.1",
    ]);
    assert!(!no_sheet.contains("xml-stylesheet") && xml.contains("xml-stylesheet"));

    let normal = dir.join("report.nmap");
    let report = portscan(&[
        "-Pn",
        "--report",
        "-p",
        &ports,
        "-oN",
        path(&normal),
        "127.0.0.1",
    ]);
    assert!(
        report.starts_with("portscan report for 127.0.0.1\n"),
        "{report}"
    );
    // The file is the report between nmap's comment lines, the last in place of the
    // report's closing line.
    let file = std::fs::read_to_string(&normal).unwrap();
    let (first, rest) = file.split_once('\n').unwrap();
    assert!(first.starts_with("# portscan "), "{file}");
    assert!(first.contains(" scan initiated "), "{file}");
    let (body, last) = rest.trim_end().rsplit_once('\n').unwrap();
    let (report_body, closing) = report.trim_end().rsplit_once('\n').unwrap();
    assert_eq!(body, report_body);
    assert!(closing.starts_with("portscan done: "), "{report}");
    assert!(
        last.starts_with("# portscan done at ")
            && last.ends_with(closing.trim_start_matches("portscan done: ")),
        "{file}"
    );
}

#[test]
fn a_file_that_cannot_be_written_is_an_error() {
    // At the start: a usage error, before any probe.
    let output = run(
        tool("portscan").args(["-p", "1", "-oG", "/nonexistent/x.gnmap", "127.0.0.1"]),
        LIMIT,
    );
    assert_eq!(code(&output), 2);
    assert!(
        stderr_text(&output)
            .starts_with("portscan: -oG /nonexistent/x.gnmap: No such file or directory\n"),
        "{}",
        stderr_text(&output)
    );
    // Part way: reported, status 1.
    for flag in ["-oN", "-oX", "-oG", "-oJ"] {
        let (_open, port, _) = open_and_closed("127.0.0.1");
        let output = run(
            tool("portscan").args([
                "-Pn",
                "-p",
                &port.to_string(),
                flag,
                "/dev/full",
                "127.0.0.1",
            ]),
            LIMIT,
        );
        assert_eq!(code(&output), 1, "{flag}");
        assert_eq!(
            stderr_text(&output),
            format!("portscan: writing {flag} /dev/full: No space left on device\n")
        );
    }
}

#[test]
fn an_interrupted_scan_still_closes_its_xml() {
    let dir = TempDir::new("of-interrupt");
    let file = dir.join("interrupted.xml");
    // -T2 paces the probes, so the scan is still going when the signal comes.
    let child = tool("portscan")
        .args([
            "-T2",
            "-Pn",
            "--all",
            "--json",
            "-p",
            "1-1000",
            "-oX",
            path(&file),
        ])
        .arg("127.0.0.1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (_, code, stderr) = interrupt_after_first_line(child);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stderr, "portscan: interrupted\n");
    assert_valid(&file);
    let xml = std::fs::read_to_string(&file).unwrap();
    assert!(
        xml.contains(r#"exit="error" errormsg="interrupted""#) && xml.ends_with("</nmaprun>\n"),
        "{xml}"
    );
}

#[test]
fn host_discovery_alone_writes_each_host_into_the_files() {
    let dir = TempDir::new("of-ping");
    let base = dir.join("hosts");
    let stdout = portscan(&["-sn", "--json", "-oA", path(&base), "127.0.0.1", "::1"]);
    let xml = dir.join("hosts.xml");
    assert_valid(&xml);
    let xml = std::fs::read_to_string(&xml).unwrap();
    assert_eq!(
        xml.matches("<host><status state=\"up\"").count(),
        2,
        "{xml}"
    );
    assert!(!xml.contains("<scaninfo"), "no port is scanned:\n{xml}");
    assert!(
        xml.contains(r#"<hosts up="2" down="0" total="2"/>"#),
        "{xml}"
    );
    let grepable = std::fs::read_to_string(dir.join("hosts.gnmap")).unwrap();
    for address in ["127.0.0.1", "::1"] {
        assert!(
            grepable.contains(&format!("Host: {address} ()\tStatus: Up\n")),
            "{grepable}"
        );
    }
    let normal = std::fs::read_to_string(dir.join("hosts.nmap")).unwrap();
    assert!(
        normal.contains("portscan report for ::1\nHost is up ("),
        "{normal}"
    );
    assert!(
        normal.contains(" -- 2 IP addresses (2 hosts up) scanned in "),
        "{normal}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("hosts.json")).unwrap(),
        stdout
    );
}

/// `-sn --report` prints nmap's report of the hosts on stdout, as a port scan's `--report`
/// does, where it printed records.
#[test]
fn host_discovery_alone_prints_the_report_when_asked() {
    let stdout = portscan(&["-sn", "--report", "127.0.0.1", "::1"]);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "portscan report for 127.0.0.1", "{stdout}");
    assert!(lines[1].starts_with("Host is up ("), "{stdout}");
    assert_eq!(lines[2], "portscan report for ::1", "{stdout}");
    assert!(
        lines
            .last()
            .unwrap()
            .starts_with("portscan done: 2 IP addresses (2 hosts up) scanned in "),
        "{stdout}"
    );
}

#[test]
fn a_host_not_scanned_to_the_end_is_an_error_in_the_xml() {
    let dir = TempDir::new("of-timeout");
    let file = dir.join("timeout.xml");
    // -T2 waits 400 ms between probes to a host: 20 ports outlast the 1 s host timeout.
    let output = run(
        tool("portscan").args([
            "-T2",
            "-Pn",
            "--host-timeout",
            "1s",
            "-p",
            "1-20",
            "-oA",
            path(&dir.join("timeout")),
            "127.0.0.1",
        ]),
        LIMIT,
    );
    assert_eq!(code(&output), 1, "{}", stderr_text(&output));
    assert_valid(&file);
    let xml = std::fs::read_to_string(&file).unwrap();
    assert!(
        xml.contains(r#"exit="error" errormsg="1 host not scanned to the end""#),
        "{xml}"
    );
    // The host is in the file as nmap writes one its --host-timeout ended: marked, with
    // its status and times and no ports; and in the other files, each in its way.
    assert!(
        xml.contains(r#" timedout="true" comment="host timeout"><status state="up""#),
        "{xml}"
    );
    assert!(!xml.contains("<ports>"), "{xml}");
    assert!(
        xml.contains(r#"<hosts up="1" down="0" total="1"/>"#),
        "{xml}"
    );
    let grepable = std::fs::read_to_string(dir.join("timeout.gnmap")).unwrap();
    assert!(
        grepable.contains("Host: 127.0.0.1 ()\tStatus: Up\nHost: 127.0.0.1 ()\tStatus: Timeout\n"),
        "{grepable}"
    );
    let normal = std::fs::read_to_string(dir.join("timeout.nmap")).unwrap();
    assert!(
        normal.contains("Skipping host 127.0.0.1: host timeout\n"),
        "{normal}"
    );
}

/// The files' times are local, as nmap's are (C's localtime: TZ, else /etc/localtime):
/// each the `date` of the XML's own epoch seconds in the zone TZ names.
#[test]
fn the_files_times_follow_tz() {
    let dir = TempDir::new("of-tz");
    let (_open, port, _) = open_and_closed("127.0.0.1");
    let base = dir.join("tz");
    // JST-9 is TZ's POSIX form: nine hours east of UTC, no tzdata needed to read it.
    let output = run(
        tool("portscan").env("TZ", "JST-9").args([
            "-Pn",
            "-p",
            &port.to_string(),
            "-oA",
            path(&base),
            "127.0.0.1",
        ]),
        LIMIT,
    );
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    let xml = std::fs::read_to_string(dir.join("tz.xml")).unwrap();
    let attribute = |name: &str| {
        let key = format!(" {name}=\"");
        let at = xml.find(&key).unwrap_or_else(|| panic!("no {name}: {xml}")) + key.len();
        xml[at..at + xml[at..].find('"').unwrap()].to_owned()
    };
    let date = |zone: &str, seconds: &str| {
        let output = run(
            Command::new("date")
                .env("TZ", zone)
                .args([&format!("--date=@{seconds}"), "+%a %b %e %H:%M:%S %Y"]),
            LIMIT,
        );
        stdout_text(&output).trim_end().to_owned()
    };
    let (start, end) = (attribute("start"), attribute("time"));
    let (started, ended) = (date("JST-9", &start), date("JST-9", &end));
    assert_ne!(started, date("UTC0", &start), "the zone changes the time");
    assert_eq!(attribute("startstr"), started, "{xml}");
    assert_eq!(attribute("timestr"), ended, "{xml}");
    for file in ["tz.nmap", "tz.gnmap"] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let first = text.lines().next().unwrap();
        assert!(
            first.starts_with(&format!(
                "# portscan {} scan initiated {started} as: ",
                env!("CARGO_PKG_VERSION")
            )),
            "{file}: {text}"
        );
        let last = text.lines().last().unwrap();
        assert!(
            last.starts_with(&format!(
                "# portscan done at {ended} -- 1 IP address (1 host up) scanned in "
            )),
            "{file}: {text}"
        );
    }
}

/// What -sV finds reaches the files: the XML's `<service>` (valid against nmap's DTD)
/// names the product and version, and the grepable line's version field holds them with
/// their spaces, as nmap writes both.
#[test]
fn version_detection_fills_the_files_service_fields() {
    let dir = TempDir::new("of-version");
    let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    // An SSH server's greeting, sent to each connection: the NULL probe's answer.
    let server = std::thread::spawn(move || {
        use std::io::Write;
        for stream in listener.incoming().take(4) {
            let Ok(mut stream) = stream else { return };
            let _ = stream.write_all(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n");
        }
    });
    let (xml, grepable) = (dir.join("sv.xml"), dir.join("sv.gnmap"));
    let ports = port.to_string();
    let args = [
        "-sV",
        "-p",
        &ports,
        "-oX",
        path(&xml),
        "-oG",
        path(&grepable),
    ];
    portscan(&[&args[..], &["127.0.0.1"]].concat());
    assert_valid(&xml);
    let text = std::fs::read_to_string(&xml).unwrap();
    assert!(
        text.contains(r#"<service name="ssh" product="OpenSSH" version="9.2p1 Debian 2+deb12u3""#),
        "{text}"
    );
    assert!(text.contains(r#"method="probed" conf="10""#), "{text}");
    let text = std::fs::read_to_string(&grepable).unwrap();
    let expected = format!("Ports: {port}/open/tcp//ssh//OpenSSH 9.2p1 Debian 2+deb12u3");
    assert!(text.contains(&expected), "{text}");
    drop(server);
}

/// With --sort every file has its hosts in the order stdout has them, address order, for
/// a port scan and for host discovery alone (-sn) alike, whatever order they were given in.
#[test]
fn sort_orders_the_files_hosts_as_stdout() {
    let dir = TempDir::new("of-sort");
    let targets = ["127.0.0.3", "::1", "127.0.0.1", "127.0.0.2"];
    let sorted = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "::1"];
    for (name, mode) in [("ping", "-sn"), ("ports", "-Pn")] {
        let base = dir.join(name);
        let mut args = vec![mode, "--sort", "--all", "-p", "1", "-oA", path(&base)];
        if mode == "-sn" {
            args.retain(|arg| *arg != "-p" && *arg != "1");
        }
        args.extend(targets);
        let stdout = portscan(&args);
        let in_order = |text: &str, before: &str, after: &str| -> Vec<String> {
            let mut found: Vec<String> = Vec::new();
            for piece in text.split(before).skip(1) {
                let address = piece[..piece.find(after).unwrap()].to_owned();
                if found.last() != Some(&address) {
                    found.push(address);
                }
            }
            found
        };
        // Text records on stdout: the host first on each line.
        let mut stdout_hosts: Vec<&str> = stdout
            .lines()
            .map(|line| line.split(' ').next().unwrap())
            .collect();
        stdout_hosts.dedup();
        assert_eq!(stdout_hosts, sorted, "{name}: stdout:\n{stdout}");
        let read = |ext: &str| std::fs::read_to_string(dir.join(&format!("{name}.{ext}"))).unwrap();
        assert_eq!(
            in_order(&read("xml"), "<address addr=\"", "\""),
            sorted,
            "{name}.xml"
        );
        assert_eq!(
            in_order(&read("gnmap"), "Host: ", " "),
            sorted,
            "{name}.gnmap"
        );
        assert_eq!(
            in_order(&read("nmap"), "portscan report for ", "\n"),
            sorted,
            "{name}.nmap"
        );
        assert_eq!(
            in_order(&read("json"), "\"host\":\"", "\""),
            sorted,
            "{name}.json"
        );
    }
}
