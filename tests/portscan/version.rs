//! portscan -sV against real servers on 127.0.0.1: listeners written here for the cases a
//! server rarely shows (silence, a hang-up, an answer only to a probe, an endless banner),
//! and, as root, Debian's sshd, nginx, vsftpd and dnsmasq, each started with a config of
//! the test's own (on their usual ports, in a network namespace the test makes), whose
//! product and version must be what nmap -sV says of them.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Place, Running, free_port, start_in, start_sshd};
use crate::fixtures::{Netns, TempDir, require_program, require_root};
use crate::util::{code, run, stderr_text, stdout_text, tool, tool_path};

/// Long enough for the slowest port: a silent one gets every probe in turn (the NULL
/// probe's 5 s, then 3 s for each of four), in parallel with the others; with nmap's file,
/// dnsmasq on a port of no name hears six probes of 5-6 s before the DNS one.
const SCAN_LIMIT: Duration = Duration::from_secs(120);

/// How a listener of the test's own behaves once it accepts a connection.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Reads and says nothing, until the test ends.
    Silent,
    /// Closes at once: nmap's `tcpwrapped`.
    HangsUp,
    /// Answers an HTTP request, and only that.
    HttpOnRequest,
    /// Sends bytes until the peer goes away (or 10 s pass).
    Endless,
    /// Greets with these bytes, as SSH does.
    Greets(&'static [u8]),
}

/// A listener on a free port of 127.0.0.1, serving each connection on a thread of its own
/// until the test drops it.
struct Listener {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Listener {
    fn start(behaviour: Behaviour) -> Self {
        Self::on(TcpListener::bind("127.0.0.1:0").unwrap(), behaviour)
    }

    fn on(listener: TcpListener, behaviour: Behaviour) -> Self {
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        thread::spawn(move || {
            let until = Instant::now() + SCAN_LIMIT;
            while !stopped.load(Ordering::Relaxed) && Instant::now() < until {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let stopped = Arc::clone(&stopped);
                        thread::spawn(move || serve(stream, behaviour, &stopped));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self { port, stop }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(mut stream: TcpStream, behaviour: Behaviour, stop: &AtomicBool) {
    let until = Instant::now() + Duration::from_secs(10);
    match behaviour {
        Behaviour::HangsUp => {}
        Behaviour::Greets(greeting) => {
            let _ = stream.write_all(greeting);
        }
        Behaviour::Silent => {
            stream
                .set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            let mut sink = [0u8; 1024];
            while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                if let Ok(0) = stream.read(&mut sink) {
                    break;
                }
            }
        }
        Behaviour::HttpOnRequest => {
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut request = [0u8; 1024];
            if let Ok(n) = stream.read(&mut request)
                && request[..n].starts_with(b"GET ")
            {
                let _ = stream.write_all(
                    b"HTTP/1.0 200 OK\r\nServer: lighttpd/1.4.69\r\nContent-Length: 0\r\n\r\n",
                );
            }
        }
        Behaviour::Endless => {
            let chunk = [b'x'; 4096];
            while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                if stream.write_all(&chunk).is_err() {
                    break;
                }
            }
        }
    }
}

/// Runs `portscan -sV --json` on 127.0.0.1's `ports`, returning each port's record and the
/// time the run took.
fn probe(ports: &[u16], extra: &[&str]) -> (Vec<Value>, Duration) {
    probe_in(Place::Here, ports, extra)
}

/// As [`probe`], run in `place`.
fn probe_in(place: Place<'_>, ports: &[u16], extra: &[&str]) -> (Vec<Value>, Duration) {
    let list: Vec<String> = ports.iter().map(u16::to_string).collect();
    let mut command = match place {
        Place::Here => tool("portscan"),
        Place::Inside(namespace) => {
            let mut command = namespace.exec(tool_path("portscan"));
            command
                .env_remove("NO_COLOR")
                .env_remove("COLUMNS")
                .env_remove("NMAPDIR")
                .env("LC_ALL", "C.UTF-8");
            command
        }
    };
    let started = Instant::now();
    let output = run(
        command
            .args(["-sV", "--json", "-p", &list.join(",")])
            .args(extra)
            .arg("127.0.0.1"),
        SCAN_LIMIT,
    );
    let took = started.elapsed();
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    assert_eq!(stderr_text(&output), "");
    let records = stdout_text(&output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    (records, took)
}

fn record_of(records: &[Value], port: u16) -> &Value {
    records
        .iter()
        .find(|record| record["port"] == port)
        .unwrap_or_else(|| panic!("no record of port {port}: {records:?}"))
}

#[test]
fn silence_hangups_probe_only_answers_and_endless_banners() {
    let silent = Listener::start(Behaviour::Silent);
    let hangs_up = Listener::start(Behaviour::HangsUp);
    let http = Listener::start(Behaviour::HttpOnRequest);
    let endless = Listener::start(Behaviour::Endless);
    let ports = [silent.port, hangs_up.port, http.port, endless.port];
    let (records, took) = probe(&ports, &[]);
    assert_eq!(records.len(), 4, "{records:?}");

    let wrapped = record_of(&records, hangs_up.port);
    assert_eq!(wrapped["service"], "tcpwrapped", "{wrapped}");
    assert_eq!(
        (wrapped["method"].as_str(), wrapped["confidence"].as_u64()),
        (Some("probed"), Some(8))
    );

    // Nothing before the GET; its answer names the server (nmap: "lighttpd 1.4.69").
    let web = record_of(&records, http.port);
    assert_eq!(web["service"], "http", "{web}");
    assert_eq!(web["product"], "lighttpd");
    assert_eq!(web["version"], "1.4.69");
    assert_eq!(web["method"], "probed");
    assert!(
        web["banner"]
            .as_str()
            .unwrap()
            .starts_with("HTTP/1.0 200 OK\r\n")
    );

    // Silence: named from the port table, with no banner.
    let quiet = record_of(&records, silent.port);
    assert_eq!(quiet["method"], "table", "{quiet}");
    assert_eq!(quiet["confidence"], 3);
    assert_eq!(quiet["banner"], Value::Null);

    // An endless banner is read up to a bound and cut; the port costs no more than others.
    let flood = record_of(&records, endless.port);
    let banner = flood["banner"].as_str().unwrap();
    assert!(
        banner.len() == 1024 && banner.bytes().all(|b| b == b'x'),
        "{flood}"
    );

    // The four ports are probed at once: the run takes about as long as the silent port's
    // probes (5 s, then 3 s each for 4 more), not the sum of every port's waits.
    assert!(took < Duration::from_secs(25), "{took:?}");
}

#[test]
fn printer_ports_are_left_alone_unless_allports() {
    // Printers print what they receive: 9100-9107 get no probe without --allports. The
    // port may be taken on this machine; then there is nothing to check.
    let Ok(bound) = TcpListener::bind("127.0.0.1:9103") else {
        return;
    };
    let _printer = Listener::on(bound, Behaviour::Greets(b"SSH-2.0-OpenSSH_9.6\r\n"));
    let (records, _) = probe(&[9103], &[]);
    assert_eq!(records[0]["state"], "open", "{records:?}");
    assert_eq!(records[0]["service"], Value::Null, "{records:?}");
    let (records, _) = probe(&[9103], &["--allports"]);
    assert_eq!(records[0]["product"], "OpenSSH", "{records:?}");
    assert_eq!(records[0]["version"], "9.6", "{records:?}");
}

#[test]
fn printer_ports_are_probed_over_udp() {
    // nmap's `Exclude T:9100-9107` spares the printers' TCP ports only: a UDP service on
    // 9101 is probed without --allports. The port may be taken; then there is nothing to check.
    let Ok(socket) = std::net::UdpSocket::bind("127.0.0.1:9101") else {
        return;
    };
    let _responder = UdpResponder::start(socket, |request| {
        // The DNS probe (id 6, version.bind) gets dnsmasq's answer; anything else, silence.
        request.starts_with(b"\0\x06\x01\0\0\x01").then(|| {
            b"\0\x06\x85\x80\0\x01\0\x01\0\0\0\0\x07version\x04bind\0\0\x10\0\x03\
              \xc0\x0c\0\x10\0\x03\0\0\0\0\0\x0d\x0cdnsmasq-2.90"
                .to_vec()
        })
    });
    let (records, _) = probe(&[9101], &["-sU", "--all"]);
    let record = record_of(&records, 9101);
    assert_eq!(record["proto"], "udp", "{record}");
    assert_eq!(record["state"], "open", "{record}");
    assert_eq!(record["method"], "probed", "{record}");
    assert_eq!(record["service"], "domain", "{record}");
    assert_eq!(record["product"], "dnsmasq", "{record}");
}

/// A UDP socket of the test's answering each datagram with what `answer` makes of it (or
/// nothing), on a thread of its own, until dropped (or the scan's limit passes).
struct UdpResponder {
    stop: Arc<AtomicBool>,
}

impl UdpResponder {
    fn start(
        socket: std::net::UdpSocket,
        answer: impl Fn(&[u8]) -> Option<Vec<u8>> + Send + 'static,
    ) -> Self {
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        thread::spawn(move || {
            let until = Instant::now() + SCAN_LIMIT;
            let mut buffer = [0u8; 2048];
            while !stopped.load(Ordering::Relaxed) && Instant::now() < until {
                if let Ok((n, from)) = socket.recv_from(&mut buffer)
                    && let Some(reply) = answer(&buffer[..n])
                {
                    let _ = socket.send_to(&reply, from);
                }
            }
        });
        Self { stop }
    }
}

impl Drop for UdpResponder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn start(command: &mut Command, port: u16, what: &str) -> Running {
    start_in(Place::Here, command, port, what)
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// What nmap -sV says of each TCP port: (port, service, product, version), from its XML.
fn nmap_versions(ports: &[u16]) -> Vec<(u16, String, String, String)> {
    nmap_versions_of("tcp", ports)
}

/// As [`nmap_versions`], of `proto`'s ports ("udp": nmap -sU -sV).
fn nmap_versions_of(proto: &str, ports: &[u16]) -> Vec<(u16, String, String, String)> {
    nmap_versions_at(Command::new("nmap"), proto, ports, "127.0.0.1")
}

/// As [`nmap_versions_of`], of `target`, nmap run as `nmap` (inside a namespace, say).
fn nmap_versions_at(
    mut nmap: Command,
    proto: &str,
    ports: &[u16],
    target: &str,
) -> Vec<(u16, String, String, String)> {
    let list: Vec<String> = ports.iter().map(u16::to_string).collect();
    let scan = if proto == "udp" { "-sU" } else { "-sT" };
    let output = run(
        nmap.args([
            scan,
            "-sV",
            "-Pn",
            "-n",
            "-oX",
            "-",
            "-p",
            &list.join(","),
            target,
        ]),
        Duration::from_secs(120),
    );
    let xml = stdout_text(&output);
    let attribute = |element: &str, name: &str| -> String {
        let key = format!(" {name}=\"");
        element
            .find(&key)
            .map(|at| {
                let rest = &element[at + key.len()..];
                rest[..rest.find('"').unwrap()].to_owned()
            })
            .unwrap_or_default()
    };
    xml.split(&format!("<port protocol=\"{proto}\""))
        .skip(1)
        .map(|element| {
            let port = attribute(element, "portid").parse().unwrap();
            let service = &element[element.find("<service").unwrap()..];
            let service = &service[..service.find('>').unwrap()];
            (
                port,
                attribute(service, "name"),
                attribute(service, "product"),
                attribute(service, "version"),
            )
        })
        .collect()
}

/// nginx as one process (no master and workers), so that killing it leaves nothing behind.
fn start_nginx(place: Place<'_>, dir: &Path) -> (Running, u16) {
    let port = place.port(80);
    let config = format!(
        "daemon off;\nmaster_process off;\npid {0}/nginx.pid;\nerror_log {0}/nginx.log;\n\
         events {{}}\n\
         http {{ access_log off; server {{ listen 127.0.0.1:{port}; \
         location / {{ return 200 \"hi\\n\"; }} }} }}\n",
        dir.display()
    );
    let config = write(dir, "nginx.conf", &config);
    let mut command = place.command("nginx");
    command.arg("-c").arg(&config).arg("-p").arg(dir);
    (start_in(place, &mut command, port, "nginx"), port)
}

fn start_vsftpd(place: Place<'_>, dir: &Path) -> (Running, u16) {
    let port = place.port(21);
    std::fs::create_dir_all(dir.join("empty")).unwrap();
    let config = format!(
        "listen=YES\nlisten_address=127.0.0.1\nlisten_port={port}\nbackground=NO\n\
         anonymous_enable=YES\nno_anon_password=YES\nanon_root={0}/empty\n\
         ftp_username=nobody\nlocal_enable=NO\nsecure_chroot_dir={0}/empty\n\
         seccomp_sandbox=NO\n",
        dir.display()
    );
    let config = write(dir, "vsftpd.conf", &config);
    let mut command = place.command("vsftpd");
    command.arg(&config);
    (start_in(place, &mut command, port, "vsftpd"), port)
}

/// dnsmasq answering DNS (over UDP and TCP) on a free port, with no upstream.
fn start_dnsmasq(place: Place<'_>) -> (Running, u16) {
    let port = place.port(53);
    let mut command = place.command("dnsmasq");
    command.args([
        "-k",
        "--conf-file=/dev/null",
        &format!("--port={port}"),
        "--listen-address=127.0.0.1",
        "--bind-interfaces",
        "--no-resolv",
        "--no-hosts",
        "--user=root",
    ]);
    (start_in(place, &mut command, port, "dnsmasq"), port)
}

#[test]
#[ignore = "needs root: a network namespace, where sshd, vsftpd and dnsmasq start as root"]
fn debian_servers_are_named_as_nmap_names_them() {
    require_root();
    for program in [
        "/usr/sbin/sshd",
        "/usr/sbin/nginx",
        "/usr/sbin/vsftpd",
        "/usr/sbin/dnsmasq",
        "/usr/bin/nmap",
        "/usr/bin/ssh-keygen",
    ] {
        require_program("test", &["-x", program]);
    }
    // The servers on their usual ports, in a namespace of the test's (declared first, so
    // that it is deleted after they are stopped); both scanners run inside it.
    let namespace = Netns::new("sv-servers");
    let place = Place::Inside(&namespace);
    let temp = TempDir::new("sv-servers");
    let dir = temp.join("");
    let (_sshd, ssh) = start_sshd(place, &dir);
    let (_nginx, http) = start_nginx(place, &dir);
    let (_vsftpd, ftp) = start_vsftpd(place, &dir);
    let (_dnsmasq, dns) = start_dnsmasq(place);

    let ports = [ssh, http, ftp, dns];
    assert_eq!(ports, [22, 80, 21, 53]);
    let nmap = nmap_versions_at(namespace.exec("nmap"), "tcp", &ports, "127.0.0.1");
    assert_eq!(nmap.len(), 4, "{nmap:?}");
    // Our rules, and nmap's own file read at run time: both must say what nmap says.
    for db in ["builtin", "nmap"] {
        let (records, _) = probe_in(place, &ports, &["--probe-db", db]);
        for (port, service, product, version) in &nmap {
            let ours = record_of(&records, *port);
            assert!(!product.is_empty(), "nmap named no product on {port}");
            assert_eq!(ours["service"], service.as_str(), "{db}: {ours}");
            assert_eq!(ours["product"], product.as_str(), "{db}: {ours}");
            assert_eq!(ours["version"], version.as_str(), "{db}: {ours}");
        }
    }
}

#[test]
fn tls_is_a_tunnel_probed_inside_with_its_certificate_read() {
    require_program("openssl", &["version"]);
    let dir = std::env::temp_dir().join(format!("sv-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (key, cert) = (dir.join("key.pem"), dir.join("cert.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=sv-test"])
        .args(["-addext", "subjectAltName=DNS:sv.test,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(made.success());
    let port = free_port();
    let mut command = Command::new("openssl");
    command
        .args(["s_server", "-quiet", "-www", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key);
    let _server = start(&mut command, port, "openssl s_server");

    let (records, _) = probe(&[port], &[]);
    let record = record_of(&records, port);
    assert_eq!(record["tunnel"], "ssl", "{record}");
    assert_eq!(record["service"], "http", "{record}");
    assert_eq!(record["method"], "probed");
    // The answer inside the tunnel, in plain text: s_server -www's page.
    let banner = record["banner"].as_str().unwrap();
    assert!(banner.starts_with("HTTP/1.0 200 ok\r\n"), "{banner}");
    assert_eq!(record["cert_subject"], "CN=sv-test");
    assert_eq!(record["cert_issuer"], "CN=sv-test");
    assert_eq!(record["cert_names"], "sv.test 127.0.0.1");
    let expiry = record["cert_not_after"].as_str().unwrap();
    assert!(expiry.ends_with('Z') && expiry.len() == 24, "{expiry}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn from_probes_only_what_an_earlier_scan_found_open() {
    let ssh = Listener::start(Behaviour::Greets(b"SSH-2.0-OpenSSH_9.6\r\n"));
    let closed = free_port();
    let ports = format!("{},{closed}", ssh.port);
    let scan = run(
        tool("portscan").args(["--json", "--all", "-p", &ports, "127.0.0.1"]),
        SCAN_LIMIT,
    );
    assert_eq!(code(&scan), 0, "{}", stderr_text(&scan));
    let mut input = scan.stdout.clone();
    input.extend_from_slice(b"not a record\n");
    let output = crate::util::run_with_input(
        tool("portscan").args(["-sV", "--json", "--from", "-"]),
        &input,
        SCAN_LIMIT,
    );
    // The line that is not a record is reported, the rest goes on: status 1.
    assert_eq!(code(&output), 1, "{}", stderr_text(&output));
    assert_eq!(
        stderr_text(&output),
        "portscan: stdin: line 3: not a port record: expected ident at line 1 column 2\n"
    );
    let records: Vec<Value> = stdout_text(&output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(records.len(), 1, "only the open port: {records:?}");
    assert_eq!(records[0]["port"], ssh.port);
    assert_eq!(records[0]["product"], "OpenSSH");
    assert_eq!(records[0]["version"], "9.6");

    let alone = run(tool("portscan").args(["--from", "-"]), SCAN_LIMIT);
    assert_eq!(code(&alone), 2, "--from needs -sV");
}

#[test]
fn open_ports_are_probed_while_the_scan_goes_on() {
    check_probed_while_the_scan_goes_on("-sT");
}

#[test]
#[ignore = "needs root: -sS's raw socket"]
fn open_ports_are_probed_while_a_syn_scan_goes_on() {
    require_root();
    check_probed_while_the_scan_goes_on("-sS");
}

/// The open port comes first in a slow sequential `scan` of 300 ports: its record, with
/// its service, must come out long before the scan's last ports are done, not after them
/// as when probing waited for the scan's end.
fn check_probed_while_the_scan_goes_on(scan: &str) {
    let ssh = Listener::start(Behaviour::Greets(b"SSH-2.0-OpenSSH_9.6\r\n"));
    let first = ssh.port.saturating_sub(1).max(1);
    let ports = format!("{first}-{}", u32::from(first) + 299);
    let output = run(
        tool("portscan").args([
            scan,
            "-sV",
            "--json",
            "--all",
            "--sequential",
            "--max-rate",
            "100",
            "-p",
            &ports,
            "127.0.0.1",
        ]),
        SCAN_LIMIT,
    );
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    let records: Vec<Value> = stdout_text(&output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(records.len(), 300, "every port once");
    let at = records
        .iter()
        .position(|record| record["port"] == ssh.port)
        .unwrap();
    assert_eq!(records[at]["product"], "OpenSSH", "{scan}: {}", records[at]);
    assert!(at < 150, "{scan}: the open port came out at {at} of 300");
}

#[test]
#[ignore = "needs root: dnsmasq starts as root"]
fn udp_ports_are_probed_and_named_as_nmap_names_them() {
    require_root();
    for program in ["/usr/sbin/dnsmasq", "/usr/bin/nmap"] {
        require_program("test", &["-x", program]);
    }
    let (_dnsmasq, dns) = start_dnsmasq(Place::Here);
    // A socket that takes datagrams and never answers, and a port where nothing listens.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let quiet = silent.local_addr().unwrap().port();
    let closed = {
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let ports = [dns, quiet, closed];
    let nmap = nmap_versions_of("udp", &[dns]);
    assert_eq!(nmap.len(), 1, "{nmap:?}");
    let (_, service, product, version) = &nmap[0];
    assert!(!product.is_empty(), "nmap named no product: {nmap:?}");
    for db in ["nmap", "builtin"] {
        let (records, _) = probe(&ports, &["-sU", "--all", "--probe-db", db]);
        let ours = record_of(&records, dns);
        assert_eq!(ours["proto"], "udp", "{ours}");
        assert_eq!(ours["state"], "open", "{db}: {ours}");
        assert_eq!(ours["service"], service.as_str(), "{db}: {ours}");
        assert_eq!(ours["product"], product.as_str(), "{db}: {ours}");
        assert_eq!(ours["version"], version.as_str(), "{db}: {ours}");
        assert_eq!(ours["method"], "probed", "{db}: {ours}");
        // Silence keeps the scan's open|filtered, named from the table as nmap does.
        let unanswered = record_of(&records, quiet);
        assert_eq!(unanswered["state"], "open|filtered", "{db}: {unanswered}");
        assert_eq!(unanswered["method"], "table", "{db}: {unanswered}");
        let refused = record_of(&records, closed);
        assert_eq!(refused["state"], "closed", "{db}: {refused}");
        assert_eq!(refused["service"], Value::Null, "not probed: {refused}");
    }
    drop(silent);
}

#[test]
fn the_text_header_names_the_version_columns() {
    let ssh = Listener::start(Behaviour::Greets(b"SSH-2.0-OpenSSH_9.6\r\n"));
    let ports = ssh.port.to_string();
    let output = run(
        tool("portscan").args(["-sV", "--header", "--records", "-p", &ports, "127.0.0.1"]),
        SCAN_LIMIT,
    );
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    let text = stdout_text(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        [
            "host",
            "port/proto",
            "state",
            "reason",
            "service",
            "version"
        ],
        "{text}"
    );
    assert_eq!(
        lines[1],
        format!("127.0.0.1 {ports}/tcp open syn-ack ssh OpenSSH 9.6 (protocol 2.0)"),
        "{text}"
    );
    // Without -sV the header stops at the reason.
    let plain = run(
        tool("portscan").args(["--header", "--records", "-p", &ports, "127.0.0.1"]),
        SCAN_LIMIT,
    );
    assert_eq!(
        stdout_text(&plain).lines().next(),
        Some("host port/proto state reason")
    );
}

#[test]
fn hostile_banners_cannot_reach_the_terminal_or_a_spreadsheet() {
    // An escape that retitles the terminal and clears it, a bell, and a right-to-left
    // override, in what a rule captures; and a version a spreadsheet would compute.
    let escapes = Listener::start(Behaviour::Greets(
        b"500 OOPS: vsftpd: \x1b]0;pwned\x07\x1b[2J\xe2\x80\xaeexe.txt\r\n",
    ));
    let formula = Listener::start(Behaviour::Greets(b"SSH-2.0-OpenSSH_-2+3\r\n"));
    let ports = format!("{},{}", escapes.port, formula.port);
    let dangerous = |text: &str| {
        text.chars()
            .any(|c| c == '\u{1b}' || c == '\u{7}' || c == '\u{202e}')
    };
    let dir = std::env::temp_dir().join(format!("sv-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let base = dir.join("scan");
    for format in ["--report", "--records", "--csv"] {
        let output = run(
            tool("portscan")
                .args(["-sV", format, "-p", &ports, "-oA"])
                .arg(&base)
                .arg("127.0.0.1"),
            SCAN_LIMIT,
        );
        assert_eq!(code(&output), 0, "{}", stderr_text(&output));
        let text = stdout_text(&output);
        assert!(!dangerous(&text), "{format}: {text:?}");
        assert!(text.contains("\\x1b]0;pwned\\x07"), "{format}: {text}");
        if format == "--csv" {
            assert!(text.contains(",'-2+3,"), "a formula is made inert: {text}");
        }
        for file in ["nmap", "gnmap", "xml"] {
            let written = std::fs::read_to_string(base.with_extension(file)).unwrap();
            assert!(!dangerous(&written), "-o{file}: {written:?}");
        }
    }
    // JSON keeps the bytes exactly, as data.
    let (records, _) = probe(&[escapes.port], &[]);
    assert_eq!(
        records[0]["extra_info"],
        "broken: \u{1b}]0;pwned\u{7}\u{1b}[2J\u{202e}exe.txt"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn telnet_is_named_from_its_option_negotiation() {
    // inetutils' telnetd opens with DO TERMINAL-TYPE, TERMINAL-SPEED, X-DISPLAY-LOCATION and
    // NEW-ENVIRON, and waits for the client's answer.
    let telnetd = Listener::start(Behaviour::Greets(
        b"\xff\xfd\x18\xff\xfd\x20\xff\xfd\x23\xff\xfd\x27",
    ));
    let (records, _) = probe(&[telnetd.port], &[]);
    let record = record_of(&records, telnetd.port);
    assert_eq!(record["service"], "telnet", "{record}");
    assert_eq!(record["product"], "Linux telnetd", "{record}");
    assert_eq!(record["method"], "probed", "{record}");
    if Path::new("/usr/bin/nmap").exists() {
        let nmap = nmap_versions(&[telnetd.port]);
        assert_eq!(nmap.len(), 1, "{nmap:?}");
        let (_, service, product, _) = &nmap[0];
        assert_eq!(record["service"], service.as_str(), "nmap: {nmap:?}");
        assert_eq!(record["product"], product.as_str(), "nmap: {nmap:?}");
    }
}

#[test]
#[ignore = "needs root: a network namespace, and dnsmasq serving TFTP and DHCP in it"]
fn tftp_and_dhcp_are_named_as_nmap_names_them() {
    require_root();
    for program in ["/usr/sbin/dnsmasq", "/usr/bin/nmap"] {
        require_program("test", &["-x", program]);
    }
    // DHCP is served only on an interface with an address in the range: 198.18.0.1/24 on
    // the namespace's loopback, where nothing outside can hear it.
    let namespace = Netns::new("sv-udp");
    crate::fixtures::sh(&format!(
        "ip -n {} addr add 198.18.0.1/24 dev lo",
        namespace.name
    ));
    let dir = TempDir::new("sv-tftp");
    let root = dir.join("root");
    std::fs::create_dir_all(&root).unwrap();
    let log = dir.join("dnsmasq.log");
    let mut command = namespace.exec("dnsmasq");
    command
        .args([
            "-k",
            "--conf-file=/dev/null",
            "--port=0",
            "--interface=lo",
            "--bind-interfaces",
            "--dhcp-range=198.18.0.10,198.18.0.50",
            "--enable-tftp",
            "--user=root",
        ])
        .arg(format!("--tftp-root={}", root.display()))
        .arg(format!("--log-facility={}", log.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _dnsmasq = Running(command.spawn().unwrap());
    // Its log says when both services are up (bounded).
    let until = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&log).is_ok_and(|text| text.contains("TFTP root is")) {
        assert!(Instant::now() < until, "dnsmasq did not start");
        thread::sleep(Duration::from_millis(50));
    }

    let mut ours = namespace.exec(tool_path("portscan"));
    ours.env("LC_ALL", "C.UTF-8").args([
        "-sU",
        "-sV",
        "--json",
        "--all",
        "-p",
        "67,69",
        "198.18.0.1",
    ]);
    let output = run(&mut ours, SCAN_LIMIT);
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    let records: Vec<Value> = stdout_text(&output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    // dnsmasq answers the DHCPINFORM with a DHCPACK to our port, and the read request for
    // a missing file with an error from a port of its own.
    let dhcp = record_of(&records, 67);
    assert_eq!(
        (dhcp["state"].as_str(), dhcp["service"].as_str()),
        (Some("open"), Some("dhcps")),
        "{dhcp}"
    );
    assert_eq!(dhcp["method"], "probed", "{dhcp}");
    let tftp = record_of(&records, 69);
    assert_eq!(
        (tftp["state"].as_str(), tftp["service"].as_str()),
        (Some("open"), Some("tftp")),
        "{tftp}"
    );
    assert_eq!(tftp["product"], "dnsmasq tftpd", "{tftp}");
    assert!(
        tftp["banner"].as_str().unwrap().contains("not found"),
        "{tftp}"
    );

    // nmap names the two services the same (from its port table: it has no probe that
    // dnsmasq answers on either port). Its rarer probes would only add a minute of waiting
    // on two ports that keep silent to them.
    let mut nmap = namespace.exec("nmap");
    nmap.args(["--version-intensity", "2"]);
    let nmap = nmap_versions_at(nmap, "udp", &[67, 69], "198.18.0.1");
    assert_eq!(nmap.len(), 2, "{nmap:?}");
    for (port, service, _, _) in &nmap {
        let record = record_of(&records, *port);
        assert_eq!(record["service"], service.as_str(), "nmap: {nmap:?}");
    }
}
