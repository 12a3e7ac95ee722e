//! portscan -A against real listeners: the OS hint of 127.0.0.1 and ::1 (as root, from the
//! echo reply's TTL and the SYN-ACK a raw socket reads), of Debian's sshd in a namespace
//! of the test's (its banner names Debian), the "unknown" of a host that shows too
//! little, and the hint in every output file, the XML valid against nmap's DTD.

use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Place, start_in, start_sshd};
use crate::fixtures::{Netns, TempDir, require_program, require_root};
use crate::util::{LIMIT, code, is_root, run, stderr_text, stdout_text, tool, tool_path};

/// A listener that greets each connection with `greeting` and hangs up, until dropped
/// (or for [`LIMIT`]).
struct Greeter {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Greeter {
    fn start(address: IpAddr, greeting: &'static [u8]) -> Self {
        let listener = TcpListener::bind(SocketAddr::new(address, 0)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        thread::spawn(move || {
            let until = Instant::now() + LIMIT;
            while !stopped.load(Ordering::Relaxed) && Instant::now() < until {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        let _ = stream.write_all(greeting);
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self { port, stop }
    }
}

impl Drop for Greeter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The one record of `portscan -A --json` on `port` of `target`, run by `command`.
fn hinted_record(mut command: Command, port: u16, target: &str) -> Value {
    let output = run(
        command.args(["-A", "--json", "-p", &port.to_string(), target]),
        LIMIT,
    );
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    let records: Vec<Value> = stdout_text(&output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    records.into_iter().next().unwrap()
}

#[test]
#[ignore = "needs root: the SYN-ACK is read on a raw socket"]
fn loopback_is_linux_by_its_ttl_and_syn_ack() {
    require_root();
    // The connect scan's -A, and -sS -A, whose open ports are probed as its SYNs find them.
    for (address, scan) in [
        ("127.0.0.1", "-sT"),
        ("::1", "-sT"),
        ("127.0.0.1", "-sS"),
        ("::1", "-sS"),
    ] {
        let greeter = Greeter::start(address.parse().unwrap(), b"SSH-2.0-OpenSSH_9.6\r\n");
        let mut portscan = tool("portscan");
        portscan.arg(scan);
        let record = hinted_record(portscan, greeter.port, address);
        assert_eq!(record["state"], "open", "{scan}: {record}");
        assert_eq!(record["reason"], "syn-ack", "{scan}: {record}");
        assert_eq!(record["product"], "OpenSSH", "{scan}: {record}");
        assert_eq!(record["os_family"], "Linux", "{record}");
        assert_eq!(record["os_distribution"], Value::Null, "{record}");
        // The echo's TTL (1 unit) and Linux's SYN-ACK layout (2): 30 + 3 * 12.
        assert_eq!(record["os_accuracy"], 66, "{record}");
        let evidence = record["os_evidence"].as_str().unwrap();
        assert!(
            evidence.contains("ICMP echo reply TTL 64 (initial 64, 0 hops)"),
            "{address}: {evidence}"
        );
        let syn_ack = format!("SYN-ACK from {}/tcp: TTL 64, window ", greeter.port);
        assert!(evidence.contains(&syn_ack), "{address}: {evidence}");
        // Linux answers a SYN that offers every option with this layout.
        assert!(
            evidence.contains("options mss,sok,ts,nop,ws (mss "),
            "{address}: {evidence}"
        );
    }
}

#[test]
fn a_host_that_shows_too_little_is_unknown() {
    // A greeting that names no system, and, as root, no raw socket: the process runs
    // without CAP_NET_RAW, as an ordinary user's would.
    let greeter = Greeter::start("127.0.0.1".parse().unwrap(), b"SSH-2.0-OpenSSH_9.6\r\n");
    let command = if is_root() {
        require_program("setpriv", &["--version"]);
        let mut command = Command::new("setpriv");
        command
            .args(["--bounding-set=-net_raw", "--inh-caps=-net_raw", "--"])
            .arg(tool_path("portscan"));
        command
    } else {
        tool("portscan")
    };
    let record = hinted_record(command, greeter.port, "127.0.0.1");
    assert_eq!(record["os_family"], "unknown", "{record}");
    assert_eq!(record["os_accuracy"], 0, "{record}");
    let evidence = record["os_evidence"].as_str().unwrap();
    assert!(
        evidence.contains("no raw TCP socket") && evidence.contains("CAP_NET_RAW"),
        "{evidence}"
    );
    // The report says so too, with the evidence, and a host with no open port is
    // unknown for want of one.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let output = run(
        tool("portscan").args(["-A", "--report", "-p", &closed.to_string(), "127.0.0.1"]),
        LIMIT,
    );
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    let report = stdout_text(&output);
    assert!(
        report.contains("OS hint: unknown (too little evidence)\nOS evidence:\n"),
        "{report}"
    );
    assert!(report.contains("  no open TCP port: "), "{report}");
}

#[test]
fn the_hint_is_in_every_file_and_the_xml_is_valid() {
    require_program("xmllint", &["--version"]);
    // A banner that names Debian: Linux (Debian), whatever the privileges.
    let greeter = Greeter::start(
        "127.0.0.1".parse().unwrap(),
        b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n",
    );
    let dir = TempDir::new("osh-files");
    let base = dir.join("scan");
    let output = run(
        tool("portscan").args([
            "-A",
            "-p",
            &greeter.port.to_string(),
            "-oA",
            base.to_str().unwrap(),
            "127.0.0.1",
        ]),
        LIMIT,
    );
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    let read = |suffix: &str| std::fs::read_to_string(dir.join(&format!("scan.{suffix}"))).unwrap();
    let xml_path = dir.join("scan.xml");
    let valid = Command::new("xmllint")
        .args(["--noout", "--dtdvalid", "/usr/share/nmap/nmap.dtd"])
        .arg(&xml_path)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        valid.status.success(),
        "{}",
        String::from_utf8_lossy(&valid.stderr)
    );
    let xml = read("xml");
    assert!(
        xml.contains("<osmatch name=\"Linux (Debian)\" accuracy=\""),
        "{xml}"
    );
    assert!(
        xml.contains("<osclass type=\"general purpose\" vendor=\"Linux\" osfamily=\"Linux\""),
        "{xml}"
    );
    assert!(
        xml.contains("<cpe>cpe:/o:linux:linux_kernel</cpe>"),
        "{xml}"
    );
    assert!(xml.contains("<osfingerprint fingerprint=\""), "{xml}");
    let banner = format!(
        "{}/tcp names a system: OpenSSH 9.2p1 Debian 2+deb12u3 (protocol 2.0) -&gt; Linux (Debian)",
        greeter.port
    );
    assert!(xml.contains(&banner), "{xml}");
    let grepable = read("gnmap");
    assert!(grepable.contains("/\tOS: Linux (Debian)\n"), "{grepable}");
    let normal = read("nmap");
    assert!(normal.contains("OS hint: Linux (Debian), "), "{normal}");
    assert!(
        normal.contains("Service Info: OS: Linux; CPE: cpe:/o:linux:linux_kernel\n"),
        "{normal}"
    );
    let json: Value = serde_json::from_str(read("json").lines().next().unwrap()).unwrap();
    assert_eq!(json["os_family"], "Linux", "{json}");
    assert_eq!(json["os_distribution"], "Debian", "{json}");
    if is_root() {
        // Echo, SYN-ACK and banner agree: the most this hint claims.
        assert_eq!(json["os_accuracy"], 98, "{json}");
        let used = format!(
            "<portused state=\"open\" proto=\"tcp\" portid=\"{}\"/>",
            greeter.port
        );
        assert!(xml.contains(&used), "{xml}");
        assert!(xml.contains("<distance value=\"0\"/>"), "{xml}");
    }
}

#[test]
#[ignore = "needs root: a network namespace whose ping_group_range admits root's group"]
fn the_echo_ttl_comes_through_a_datagram_socket_too() {
    // Without CAP_NET_RAW, in a namespace whose net.ipv4.ping_group_range (which governs
    // ICMPv6 too) admits group 0: the echo goes through an ICMP datagram socket, whose
    // reply's TTL or hop limit comes only as ancillary data.
    require_root();
    require_program("setpriv", &["--version"]);
    let namespace = Netns::new("osh-ping");
    let allowed = namespace
        .exec("sysctl")
        .args(["-qw", "net.ipv4.ping_group_range=0 0"])
        .status()
        .unwrap();
    assert!(allowed.success());
    // A greeter on port 2222 of both loopback addresses, inside the namespace, that
    // names no system; it ends on its own after 30 s, and is killed by its pid before.
    // (`ip netns exec` runs python in its own place, so that pid is python's.)
    let greeter = "import socket, time\n\
        server = socket.create_server(('', 2222), family=socket.AF_INET6, dualstack_ipv6=True)\n\
        server.settimeout(1)\n\
        end = time.monotonic() + 30\n\
        while time.monotonic() < end:\n\
        \x20   try:\n\
        \x20       connection, _ = server.accept()\n\
        \x20       connection.sendall(b'SSH-2.0-OpenSSH_9.6\\r\\n')\n\
        \x20       connection.close()\n\
        \x20   except OSError:\n\
        \x20       pass\n";
    let place = Place::Inside(&namespace);
    let mut python = place.command("python3");
    python.args(["-c", greeter]);
    let server = start_in(place, &mut python, 2222, "the greeter");
    let mut reports = Vec::new();
    for address in ["127.0.0.1", "::1"] {
        let mut portscan = namespace.exec("setpriv");
        portscan
            .args(["--bounding-set=-net_raw", "--inh-caps=-net_raw", "--"])
            .arg(tool_path("portscan"));
        let output = run(
            portscan.args(["-A", "--report", "-p", "2222", address]),
            LIMIT,
        );
        assert_eq!(code(&output), 0, "{}", stderr_text(&output));
        reports.push((address, stdout_text(&output)));
    }
    drop(server);
    for (address, report) in reports {
        // The TTL alone, with no SYN-ACK to read: too little.
        assert!(
            report.contains("OS hint: unknown (too little evidence)\n"),
            "{report}"
        );
        assert!(
            report.contains(
                "  ICMP echo reply TTL 64 (initial 64, 0 hops) -> Linux or BSD or macOS\n"
            ),
            "{address}: {report}"
        );
        assert!(report.contains("no raw TCP socket"), "{report}");
        assert!(report.contains("Network Distance: 0 hops\n"), "{report}");
    }
}

#[test]
#[ignore = "needs root: a network namespace, and sshd starts as root"]
fn debian_sshd_in_a_namespace_is_linux_debian() {
    require_root();
    for program in ["/usr/sbin/sshd", "/usr/bin/ssh-keygen"] {
        require_program("test", &["-x", program]);
    }
    let namespace = Netns::new("osh-sshd");
    let dir = TempDir::new("osh-sshd");
    // Inside a namespace, sshd listens on its own port, 22.
    let (sshd, _) = start_sshd(Place::Inside(&namespace), &dir.join(""));
    let record = hinted_record(namespace.exec(tool_path("portscan")), 22, "127.0.0.1");
    drop(sshd);
    assert_eq!(record["product"], "OpenSSH", "{record}");
    assert_eq!(record["os_family"], "Linux", "{record}");
    assert_eq!(record["os_distribution"], "Debian", "{record}");
    assert_eq!(record["os_accuracy"], 98, "{record}");
    let evidence = record["os_evidence"].as_str().unwrap();
    for piece in [
        "ICMP echo reply TTL 64",
        "SYN-ACK from 22/tcp: TTL 64",
        "22/tcp names a system: OpenSSH ",
        " Debian ",
        "-> Linux (Debian)",
    ] {
        assert!(evidence.contains(piece), "{piece}: {evidence}");
    }
}
