//! Scarce resources and faults (issue #16): each tool run while the system says no (few
//! descriptors, few local ports, ENOBUFS and ENOMEM injected by strace), against peers
//! that stall or never stop talking, while processes and sockets come and go under it,
//! on megabytes of random bytes, and stopped by SIGPIPE, SIGINT and SIGTERM part way. The
//! results must be right and whole, memory bounded, and nothing may panic.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use crate::fixtures::{
    Netns, TempDir, assert_quiet_on_closed_pipe, exclusive, require_program, require_root, sh,
    wait_for_stderr,
};
use crate::util::{LIMIT, code, run, run_with_input, stderr_text, stdout_text, tool, tool_path};

/// A -sV run against ports that never answer: every probe's wait in turn (about 17 s a
/// port, the ports in parallel), with room for a slow machine.
const SCAN_LIMIT: Duration = Duration::from_secs(120);

/// Each line as a JSON object, failing the test on a line that is not one (a half record).
fn json_lines(text: &str) -> Vec<Value> {
    assert!(text.is_empty() || text.ends_with('\n'), "a cut last line");
    text.lines()
        .map(|line| {
            let value: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
            assert!(value.is_object(), "{line}");
            value
        })
        .collect()
}

/// port -> state of a portscan run's records for one address and protocol.
fn port_states(records: &[Value], proto: &str) -> BTreeMap<u64, String> {
    let mut states = BTreeMap::new();
    for record in records.iter().filter(|r| r["proto"] == proto) {
        let port = record["port"].as_u64().unwrap();
        let state = record["state"].as_str().unwrap().to_owned();
        assert!(states.insert(port, state).is_none(), "{port} twice");
    }
    states
}

fn port_list(ports: impl IntoIterator<Item = u16>) -> String {
    ports
        .into_iter()
        .map(|port| port.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Ports of 127.0.0.1 that were free a moment ago, bound and released: closed.
fn released_ports(count: usize) -> Vec<u16> {
    let held: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    held.iter()
        .map(|listener| listener.local_addr().unwrap().port())
        .collect()
}

/// The kilobytes of memory a command's process held at most, as GNU time's `%M` wrote
/// it to `file`.
fn max_rss_kb(file: &Path) -> u64 {
    let text = std::fs::read_to_string(file).unwrap();
    text.lines()
        .last()
        .and_then(|line| line.trim().parse().ok())
        .unwrap_or_else(|| panic!("no figure from time: {text:?}"))
}

/// Runs `work` on a thread of its own inside network namespace `name` (the thread's
/// sockets are the namespace's).
fn in_netns<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> JoinHandle<T> {
    let path = format!("/run/netns/{name}");
    thread::spawn(move || {
        let namespace = File::open(&path).unwrap();
        nix::sched::setns(namespace, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        work()
    })
}

/// What a server of the test's own does with each connection it accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Peer {
    /// Sends a greeting and closes.
    Greets,
    /// Reads and never says a word.
    Stalls,
    /// Sends bytes until the peer goes away.
    Floods,
}

const GREETING: &[u8] = b"SSH-2.0-OpenSSH_9.6p1 Debian-3\r\n";

/// Sockets of the test's own, served by one thread until dropped (or `SCAN_LIMIT`): the
/// ports they were bound to, and the thread's stop flag.
struct Background {
    ports: Vec<u16>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Background {
    /// Binds with `bind` (inside namespace `netns` if given), then serves the sockets with
    /// `serve` until told to stop.
    fn start<S: Send + 'static>(
        netns: Option<&str>,
        bind: impl FnOnce() -> (Vec<u16>, S) + Send + 'static,
        serve: impl FnOnce(S, &AtomicBool) + Send + 'static,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let (ready, ports) = mpsc::channel();
        let work = move || {
            let (bound, sockets) = bind();
            ready.send(bound).unwrap();
            serve(sockets, &stopped);
        };
        let thread = match netns {
            Some(name) => in_netns(name, work),
            None => thread::spawn(work),
        };
        Self {
            ports: ports.recv().unwrap(),
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// TCP listeners, non-blocking, on each of `addresses` (port 0: one the kernel picks),
/// inside namespace `netns` if given; each connection is served as `peer` says.
fn tcp_servers(netns: Option<&str>, addresses: Vec<SocketAddr>, peer: Peer) -> Background {
    let bind = move || {
        let listeners: Vec<TcpListener> = addresses
            .iter()
            .map(|address| {
                let listener = TcpListener::bind(address).unwrap();
                listener.set_nonblocking(true).unwrap();
                listener
            })
            .collect();
        let ports = listeners
            .iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect();
        (ports, listeners)
    };
    Background::start(netns, bind, move |listeners, stop| {
        serve(&listeners, peer, stop);
    })
}

fn serve(listeners: &[TcpListener], peer: Peer, stop: &AtomicBool) {
    let until = Instant::now() + SCAN_LIMIT;
    let chunk = [b'x'; 16 * 1024];
    let mut sink = [0u8; 4096];
    let mut streams: Vec<TcpStream> = Vec::new();
    while !stop.load(Ordering::Relaxed) && Instant::now() < until {
        let mut busy = false;
        for listener in listeners {
            while let Ok((mut stream, _)) = listener.accept() {
                busy = true;
                stream.set_nonblocking(true).unwrap();
                if peer == Peer::Greets {
                    let _ = stream.write_all(GREETING);
                } else {
                    streams.push(stream);
                }
            }
        }
        streams.retain_mut(|stream| match stream.read(&mut sink) {
            Ok(0) => false,
            Err(e) if e.kind() != ErrorKind::WouldBlock => false,
            _ => match peer {
                Peer::Floods => match stream.write(&chunk) {
                    Ok(_) => {
                        busy = true;
                        true
                    }
                    Err(e) => e.kind() == ErrorKind::WouldBlock,
                },
                _ => true,
            },
        });
        if !busy {
            thread::sleep(Duration::from_millis(2));
        }
    }
}

/// Runs `program` with `args` under `ulimit -n 32`, soft and hard, so it cannot raise it.
fn with_32_descriptors(program: &str, args: &[&str]) -> Command {
    let mut command = Command::new("sh");
    command
        .args([
            "-c",
            "ulimit -Sn 32 && ulimit -Hn 32 && exec \"$@\"",
            "sh",
            program,
        ])
        .args(args)
        .env("LC_ALL", "C.UTF-8")
        .stdin(Stdio::null());
    command
}

/// Under `ulimit -n 32` (which it cannot raise) the scanner has a dozen sockets at a
/// time: every port must still get its state, with and without service probing (whose
/// connections come from the same descriptors).
#[test]
fn portscan_with_32_descriptors_gets_every_state_right() {
    let servers = tcp_servers(None, vec!["127.0.0.1:0".parse().unwrap(); 10], Peer::Greets);
    let closed = released_ports(300);
    let ports = port_list(servers.ports.iter().chain(&closed).copied());
    for extra in [&[][..], &["-sV"][..]] {
        let mut args = vec!["--all", "--json", "-p", &ports];
        args.extend(extra);
        args.push("127.0.0.1");
        let output = run(
            &mut with_32_descriptors(tool_path("portscan"), &args),
            SCAN_LIMIT,
        );
        assert_eq!(code(&output), 0, "{extra:?}: {}", stderr_text(&output));
        assert_eq!(stderr_text(&output), "", "{extra:?}");
        let records = json_lines(&stdout_text(&output));
        let states = port_states(&records, "tcp");
        assert_eq!(states.len(), 310, "{extra:?}");
        for port in &servers.ports {
            assert_eq!(states[&u64::from(*port)], "open", "{port} {extra:?}");
        }
        for port in &closed {
            assert_eq!(states[&u64::from(*port)], "closed", "{port} {extra:?}");
        }
        if !extra.is_empty() {
            for record in records.iter().filter(|r| r["state"] == "open") {
                assert_eq!(record["service"], "ssh", "{record}");
                assert_eq!(record["product"], "OpenSSH", "{record}");
            }
        }
    }
}

/// Replies to every datagram on UDP sockets bound to `addresses` (port 0: one the kernel
/// picks) in namespace `netns` (or here), until dropped.
fn udp_responders(netns: Option<&str>, addresses: Vec<SocketAddr>) -> Background {
    let bind = move || {
        let sockets: Vec<UdpSocket> = addresses
            .iter()
            .map(|address| {
                let socket = UdpSocket::bind(address).unwrap();
                socket.set_nonblocking(true).unwrap();
                socket
            })
            .collect();
        let ports = sockets
            .iter()
            .map(|s| s.local_addr().unwrap().port())
            .collect();
        (ports, sockets)
    };
    Background::start(netns, bind, |sockets, stop| {
        let until = Instant::now() + SCAN_LIMIT;
        let mut buffer = [0u8; 2048];
        while !stop.load(Ordering::Relaxed) && Instant::now() < until {
            let mut busy = false;
            for socket in &sockets {
                while let Ok((_, from)) = socket.recv_from(&mut buffer) {
                    busy = true;
                    let _ = socket.send_to(b"pong", from);
                }
            }
            if !busy {
                thread::sleep(Duration::from_millis(1));
            }
        }
    })
}

/// Sockets of namespace `name` bound to each port of `ports`, UDP and TCP, taking those
/// local ports from whatever connects there.
fn hold_ports(name: &str, ports: std::ops::Range<u16>) -> (Vec<UdpSocket>, Vec<TcpListener>) {
    in_netns(name, move || {
        let udp = ports
            .clone()
            .map(|port| UdpSocket::bind(("0.0.0.0", port)).unwrap())
            .collect();
        let tcp = ports
            .map(|port| TcpListener::bind(("0.0.0.0", port)).unwrap())
            .collect();
        (udp, tcp)
    })
    .join()
    .unwrap()
}

/// With 100 local ports (a per-namespace setting), 97 of them held by the test: each
/// connected UDP socket takes a local port of its own, and connect() runs out of them
/// (EAGAIN) as soon as a few tries are in flight. The scan must wait and try again, never
/// call a port anything for it; strace shows that the shortage happened. (TCP connections
/// to different ends share a local port, so TCP is scanned on 3 ports, and does not run
/// out.) The target is an address of the namespace other than loopback, which portscan
/// would probe on one unconnected UDP socket.
#[test]
#[ignore = "needs root: a network namespace with its own local port range"]
fn portscan_with_3_free_local_ports_gets_every_state_right() {
    require_root();
    require_program("strace", &["-o", "/dev/null", "true"]);
    let namespace = Netns::new("faults-ports");
    let name = namespace.name.clone();
    sh(&format!(
        "ip netns exec {name} sysctl -q -w net.ipv4.ip_local_port_range='40000 40099'\n\
         ip -n {name} address add 198.18.0.1/32 dev lo"
    ));
    let _held = hold_ports(&name, 40000..40097);
    let tcp_open: Vec<u16> = (1..=2000).step_by(97).collect();
    let addresses = tcp_open
        .iter()
        .map(|port| SocketAddr::from(([198, 18, 0, 1], *port)))
        .collect();
    let _servers = tcp_servers(Some(&name), addresses, Peer::Greets);
    let udp_open: Vec<u16> = (5000..5050).collect();
    let addresses = udp_open
        .iter()
        .map(|port| SocketAddr::from(([198, 18, 0, 1], *port)))
        .collect();
    let _responders = udp_responders(Some(&name), addresses);
    let udp_closed: Vec<u16> = (3000..3200).collect();
    let list = "T:1-2000,U:5000-5049,3000-3199";
    let dir = TempDir::new("faults-ports");
    let log = dir.join("trace");
    let output = run(
        namespace
            .exec("strace")
            .arg("-o")
            .arg(&log)
            .args(["-qq", "-e", "trace=connect", "-e", "status=failed"])
            .arg(tool_path("portscan"))
            .args(["--all", "--json", "-p", list, "198.18.0.1"]),
        SCAN_LIMIT,
    );
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    assert_eq!(stderr_text(&output), "");
    let trace = std::fs::read_to_string(&log).unwrap();
    let short = trace.matches("= -1 EAGAIN").count() + trace.matches("= -1 EADDRNOTAVAIL").count();
    assert!(short > 0, "the local ports never ran out:\n{trace}");
    let records = json_lines(&stdout_text(&output));
    let tcp = port_states(&records, "tcp");
    assert_eq!(tcp.len(), 2000);
    for (port, state) in &tcp {
        let open = tcp_open.contains(&u16::try_from(*port).unwrap());
        assert_eq!(state, if open { "open" } else { "closed" }, "{port}/tcp");
    }
    let udp = port_states(&records, "udp");
    assert_eq!(udp.len(), 250);
    for port in &udp_open {
        assert_eq!(udp[&u64::from(*port)], "open", "{port}/udp");
    }
    for port in &udp_closed {
        assert_eq!(udp[&u64::from(*port)], "closed", "{port}/udp");
    }
    eprintln!("{short} connect() calls found no local port");
}

/// Runs portscan under strace, failing the syscalls `inject` names as it says; the trace
/// must show failures were injected.
fn portscan_under_strace(inject: &str, args: &[&str]) -> (Vec<Value>, usize) {
    let dir = TempDir::new("faults-strace");
    let log = dir.join("trace");
    let output = run(
        Command::new("strace")
            .arg("-o")
            .arg(&log)
            .args(["-qq", "-e", "trace=connect,sendto", "-e", inject])
            .arg(tool_path("portscan"))
            .args(args)
            .env("LC_ALL", "C.UTF-8")
            .stdin(Stdio::null()),
        SCAN_LIMIT,
    );
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    assert_eq!(stderr_text(&output), "");
    let trace = std::fs::read_to_string(&log).unwrap();
    let injected = trace.matches("(INJECTED)").count();
    assert!(injected > 0, "nothing injected:\n{trace}");
    (json_lines(&stdout_text(&output)), injected)
}

/// connect() failing with ENOBUFS and sendto() with ENOMEM now and then: the system was
/// short, not the port; the try goes again and every state is right.
#[test]
fn portscan_retries_what_enobufs_and_enomem_stopped() {
    require_program("strace", &["-o", "/dev/null", "true"]);
    let servers = tcp_servers(None, vec!["127.0.0.1:0".parse().unwrap(); 5], Peer::Greets);
    let responders = udp_responders(None, vec!["127.0.0.1:0".parse().unwrap(); 3]);
    let closed = released_ports(200);
    let tcp = port_list(servers.ports.iter().chain(&closed).copied());
    let (records, injected) = portscan_under_strace(
        "inject=connect:error=ENOBUFS:when=2+3",
        &["--all", "--json", "-p", &tcp, "127.0.0.1"],
    );
    assert!(injected > 50, "{injected}");
    eprintln!("{injected} connect() calls failed with ENOBUFS");
    let states = port_states(&records, "tcp");
    assert_eq!(states.len(), 205);
    for port in &servers.ports {
        assert_eq!(states[&u64::from(*port)], "open", "{port}");
    }
    for port in &closed {
        assert_eq!(states[&u64::from(*port)], "closed", "{port}");
    }

    // UDP: a datagram sendto() refused never left; silence after it means nothing.
    let udp_closed: Vec<u16> = {
        let held: Vec<UdpSocket> = (0..100)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        held.iter()
            .map(|s| s.local_addr().unwrap().port())
            .collect()
    };
    let udp = format!(
        "U:{}",
        port_list(responders.ports.iter().chain(&udp_closed).copied())
    );
    let (records, injected) = portscan_under_strace(
        "inject=sendto:error=ENOMEM:when=2+3",
        &["--all", "--json", "-p", &udp, "127.0.0.1"],
    );
    assert!(injected > 20, "{injected}");
    eprintln!("{injected} sendto() calls failed with ENOMEM");
    let states = port_states(&records, "udp");
    assert_eq!(states.len(), 103);
    for port in &responders.ports {
        assert_eq!(states[&u64::from(*port)], "open", "{port}/udp");
    }
    for port in &udp_closed {
        assert_eq!(states[&u64::from(*port)], "closed", "{port}/udp");
    }
}

/// A system that refuses every try (connect() always ENOBUFS, sendto() always ENOMEM) is
/// not a scan of closed ports: portscan gives up after its bounded backoff, with the
/// system's reason in one line and status 1, and prints no state it did not see.
#[test]
fn portscan_gives_up_with_the_reason_when_every_try_is_refused() {
    require_program("strace", &["-o", "/dev/null", "true"]);
    let cases = [
        (
            "inject=connect:error=ENOBUFS",
            "40000-40009",
            "No buffer space available",
        ),
        (
            "inject=sendto:error=ENOMEM",
            "U:40000-40009",
            "Cannot allocate memory",
        ),
    ];
    for (inject, ports, reason) in cases {
        let output = run(
            Command::new("strace")
                .args([
                    "-o",
                    "/dev/null",
                    "-qq",
                    "-e",
                    "trace=connect,sendto",
                    "-e",
                    inject,
                ])
                .arg(tool_path("portscan"))
                .args(["--json", "-p", ports, "127.0.0.1"])
                .env("LC_ALL", "C.UTF-8")
                .stdin(Stdio::null()),
            SCAN_LIMIT,
        );
        assert_eq!(code(&output), 1, "{inject}: {}", stderr_text(&output));
        assert_eq!(
            stderr_text(&output),
            format!("portscan: opening sockets: {reason}\n"),
            "{inject}"
        );
        assert_eq!(stdout_text(&output), "", "{inject}");
    }
}

/// Every port of a target accepts (a NAT rule sends ports 1-200 to one server) and then
/// stalls, or floods: -sV ends, with every port's record, in bounded memory.
#[test]
#[ignore = "needs root: a network namespace whose every port accepts"]
fn portscan_sv_against_stalling_and_flooding_peers_ends_in_bounded_memory() {
    require_root();
    require_program("nft", &["--version"]);
    require_program("/usr/bin/time", &["true"]);
    for peer in [Peer::Stalls, Peer::Floods] {
        let namespace = Netns::new("faults-peer");
        let name = namespace.name.clone();
        sh(&format!(
            "ip netns exec {name} nft 'add table ip faults; \
             add chain ip faults out {{ type nat hook output priority -100; }}; \
             add rule ip faults out ip daddr 127.0.0.1 tcp dport 1-200 redirect to :9999'"
        ));
        let _servers = tcp_servers(Some(&name), vec!["127.0.0.1:9999".parse().unwrap()], peer);
        let dir = TempDir::new("faults-rss");
        let rss = dir.join("rss");
        let output = run(
            namespace
                .exec("/usr/bin/time")
                .args(["-f", "%M", "-o"])
                .arg(&rss)
                .arg(tool_path("portscan"))
                .args(["-sV", "--json", "-p", "1-200", "127.0.0.1"]),
            SCAN_LIMIT,
        );
        assert_eq!(code(&output), 0, "{}", stderr_text(&output));
        assert_eq!(stderr_text(&output), "");
        let records = json_lines(&stdout_text(&output));
        let states = port_states(&records, "tcp");
        assert_eq!(states.len(), 200);
        assert!(states.values().all(|state| state == "open"), "{states:?}");
        for record in &records {
            if peer == Peer::Stalls {
                assert_eq!(record["banner"], Value::Null, "{record}");
                assert_eq!(record["method"], "table", "{record}");
            } else {
                let banner = record["banner"].as_str().unwrap();
                assert!(
                    banner.len() == 1024 && banner.bytes().all(|b| b == b'x'),
                    "{record}"
                );
            }
        }
        // 200 answers of 16 KiB (the cut) are 3.2 MB; a reader without the cut would
        // hold what loopback delivers in seconds, gigabytes.
        let kb = max_rss_kb(&rss);
        assert!(kb < 64 * 1024, "{kb} kB");
        eprintln!("{peer:?}: 200 ports, max RSS {kb} kB");
    }
}

/// Spawns `count` short-lived processes, `batch` at a time.
fn process_churn(count: usize, stop: Arc<AtomicBool>) -> JoinHandle<usize> {
    thread::spawn(move || {
        let mut started = 0;
        while started < count && !stop.load(Ordering::Relaxed) {
            let batch: Vec<Child> = (0..20)
                .filter_map(|_| {
                    Command::new("sleep")
                        .arg("0.02")
                        .stdin(Stdio::null())
                        .spawn()
                        .ok()
                })
                .collect();
            started += batch.len();
            for mut child in batch {
                let _ = child.wait();
            }
        }
        started
    })
}

/// Opens and closes `count` sockets on 127.0.0.1 (ports the kernel picks: above 32767):
/// listeners, their connections and UDP sockets.
fn socket_churn(count: usize, stop: Arc<AtomicBool>) -> JoinHandle<usize> {
    thread::spawn(move || {
        let mut opened = 0;
        while opened < count && !stop.load(Ordering::Relaxed) {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let address = listener.local_addr().unwrap();
            let clients: Vec<TcpStream> = (0..8)
                .filter_map(|_| TcpStream::connect(address).ok())
                .collect();
            let accepted: Vec<TcpStream> = clients
                .iter()
                .filter_map(|_| listener.accept().ok().map(|(stream, _)| stream))
                .collect();
            let udp: Vec<UdpSocket> = (0..8)
                .filter_map(|_| UdpSocket::bind("127.0.0.1:0").ok())
                .collect();
            opened += 1 + clients.len() + accepted.len() + udp.len();
            // Paced, so that the churn lasts through several runs of the tools.
            thread::sleep(Duration::from_millis(3));
        }
        opened
    })
}

/// sockls and proctree read /proc and netlink while a thousand processes and ten
/// thousand sockets come and go: each run ends with 0 and nothing said, every record
/// whole, and what stayed the whole time (made before, kept after) is in every run.
#[test]
fn sockls_and_proctree_read_through_churn() {
    let _alone = exclusive();
    let stable_sockets: Vec<TcpListener> = (0..5)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let stable_ports: BTreeSet<u64> = stable_sockets
        .iter()
        .map(|l| u64::from(l.local_addr().unwrap().port()))
        .collect();
    let mut stable_processes: Vec<Child> = (0..5)
        .map(|_| {
            Command::new("sleep")
                .arg("120")
                .stdin(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let stable_pids: BTreeSet<u64> = stable_processes.iter().map(|c| u64::from(c.id())).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let processes = process_churn(1000, Arc::clone(&stop));
    let sockets = socket_churn(10_000, Arc::clone(&stop));
    let mut runs = 0;
    // Runs while the churn lasts, and at least a few.
    while runs < 200 && (runs < 6 || !(processes.is_finished() && sockets.is_finished())) {
        runs += 1;
        let sockls = run(tool("sockls").args(["-tuap", "--json"]), LIMIT);
        assert_eq!(code(&sockls), 0, "{}", stderr_text(&sockls));
        assert_eq!(stderr_text(&sockls), "");
        let records = json_lines(&stdout_text(&sockls));
        for record in &records {
            assert!(
                record["proto"].is_string() && record["state"].is_string(),
                "{record}"
            );
        }
        let listening: BTreeSet<u64> = records
            .iter()
            .filter(|r| r["state"] == "listen" && r["pid"] == u64::from(std::process::id()))
            .filter_map(|r| r["local_port"].as_u64())
            .collect();
        assert!(stable_ports.is_subset(&listening), "{stable_ports:?}");

        let proctree = run(tool("proctree").arg("--json"), LIMIT);
        assert_eq!(code(&proctree), 0, "{}", stderr_text(&proctree));
        assert_eq!(stderr_text(&proctree), "");
        let records = json_lines(&stdout_text(&proctree));
        for record in &records {
            assert!(
                record["pid"].is_u64() && !record["comm"].is_null(),
                "{record}"
            );
        }
        let pids: BTreeSet<u64> = records.iter().filter_map(|r| r["pid"].as_u64()).collect();
        assert!(stable_pids.is_subset(&pids), "{stable_pids:?}");
    }
    stop.store(true, Ordering::Relaxed);
    let started = processes.join().unwrap();
    let opened = sockets.join().unwrap();
    for child in &mut stable_processes {
        let _ = child.kill();
        let _ = child.wait();
    }
    assert!(started >= 1000 && opened >= 10_000, "{started} {opened}");
    eprintln!("{runs} runs of each, {started} processes and {opened} sockets churned");
}

/// `bytes` pseudo-random bytes (xorshift64*, fixed seed: a failure repeats).
fn random_bytes(bytes: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut out = Vec::with_capacity(bytes + 8);
    while out.len() < bytes {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(bytes);
    out
}

/// 64 MB of random bytes through svcname: every line comes out, itself or itself with a
/// service added at its end (before a `\r`), in constant memory; the lines reported are
/// those that open like JSON (after blanks) and are not (docs/FORMAT.md: a malformed
/// line is reported and passed through, status 1).
#[test]
fn svcname_passes_random_bytes_through_in_bounded_memory() {
    require_program("/usr/bin/time", &["true"]);
    let input = random_bytes(64 << 20);
    let dir = TempDir::new("faults-svcname");
    let rss = dir.join("rss");
    let output = run_with_input(
        Command::new("/usr/bin/time")
            .args(["-f", "%M", "-o"])
            .arg(&rss)
            .arg(tool_path("svcname"))
            .env("LC_ALL", "C.UTF-8"),
        &input,
        SCAN_LIMIT,
    );
    let lines_in: Vec<&[u8]> = input.split(|b| *b == b'\n').collect();
    let lines_out: Vec<&[u8]> = output.stdout.split(|b| *b == b'\n').collect();
    assert_eq!(lines_in.len(), lines_out.len());
    let mut annotated = 0;
    for (number, (line_in, line_out)) in lines_in.iter().zip(&lines_out).enumerate() {
        if line_in == line_out {
            continue;
        }
        annotated += 1;
        let (body, end) = match line_in.strip_suffix(b"\r") {
            Some(body) => (body, &b"\r"[..]),
            None => (*line_in, &b""[..]),
        };
        assert!(
            line_out.starts_with(body) && line_out.ends_with(end) && line_out.len() > line_in.len(),
            "line {}: {line_in:?} became {line_out:?}",
            number + 1
        );
    }
    let stderr = stderr_text(&output);
    let reported: Vec<usize> = stderr
        .lines()
        .map(|line| {
            let rest = line
                .strip_prefix("svcname: stdin:")
                .unwrap_or_else(|| panic!("{line}"));
            let (number, why) = rest.split_once(": ").unwrap();
            assert!(why.starts_with("not a valid JSON object: "), "{line}");
            number.parse().unwrap()
        })
        .collect();
    for number in &reported {
        let line = lines_in[number - 1].trim_ascii_start();
        assert!(line.starts_with(b"{"), "line {number}");
    }
    assert_eq!(code(&output), i32::from(!reported.is_empty()));
    let kb = max_rss_kb(&rss);
    assert!(kb < 32 * 1024, "{kb} kB for 64 MB");
    eprintln!(
        "{} lines, {annotated} annotated, {} reported, max RSS {kb} kB",
        lines_in.len(),
        reported.len()
    );
}

fn signal(child: &Child, signal: Signal) {
    kill(Pid::from_raw(i32::try_from(child.id()).unwrap()), signal).unwrap();
}

/// Reads lines from `reader` until one satisfies `wanted` (at most `LIMIT`'s worth of
/// lines from a tool that prints as things happen).
fn read_until(reader: &mut impl BufRead, text: &mut String, wanted: impl Fn(&str) -> bool) {
    loop {
        let mut line = String::new();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "ended before: {text}"
        );
        text.push_str(&line);
        if wanted(&line) {
            return;
        }
    }
}

/// Starts `command` (stdout and stderr piped), waits for its first record, sends
/// `signal`, and returns everything it printed, its status and its stderr.
fn signal_after_first_line(command: &mut Command, sent: Signal) -> (String, Option<i32>, String) {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    crate::fixtures::signal_after_first_line(child, sent)
}

/// A scan slowed by --max-rate, stopped by SIGTERM: the records so far, whole, and the
/// documented status of an interrupted scan (SIGINT's is tested in portscan.rs).
#[test]
fn sigterm_stops_a_scan_between_records() {
    let (text, code, stderr) = signal_after_first_line(
        tool("portscan").args([
            "--max-rate",
            "50",
            "--all",
            "--json",
            "-p",
            "1-2000",
            "127.0.0.1",
        ]),
        Signal::SIGTERM,
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stderr, "portscan: interrupted\n");
    let records = json_lines(&text);
    assert!(
        !records.is_empty() && records.len() < 2000,
        "{}",
        records.len()
    );
}

/// Processes that start now and then, so that `proctree --watch` has something to say;
/// stopped when dropped.
struct Spawner(Arc<AtomicBool>, Option<JoinHandle<()>>);

impl Spawner {
    fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let until = Instant::now() + LIMIT;
            while !stopped.load(Ordering::Relaxed) && Instant::now() < until {
                if let Ok(mut child) = Command::new("sleep").arg("0.05").spawn() {
                    let _ = child.wait();
                }
                // A socket that comes and goes too, for sockls --watch.
                let listener = TcpListener::bind("127.0.0.1:0").unwrap();
                thread::sleep(Duration::from_millis(60));
                drop(listener);
            }
        });
        Self(stop, Some(thread))
    }
}

impl Drop for Spawner {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
        if let Some(thread) = self.1.take() {
            let _ = thread.join();
        }
    }
}

/// A watch stopped by SIGTERM in the middle of what it reports: whole records, status 0
/// (docs/FORMAT.md, "Watch mode"), in text and JSON.
#[test]
fn sigint_and_sigterm_end_a_busy_watch_with_whole_records() {
    let _spawner = Spawner::start();
    for name in ["sockls", "proctree"] {
        for sent in [Signal::SIGINT, Signal::SIGTERM] {
            for json in [false, true] {
                let mut command = tool(name);
                command.args(["--watch", "20ms"]);
                if json {
                    command.arg("--json");
                }
                let (text, code, stderr) = signal_after_first_line(&mut command, sent);
                assert_eq!(code, Some(0), "{name} {sent}: {stderr}");
                assert_eq!(stderr, "", "{name} {sent}");
                if json {
                    json_lines(&text);
                } else {
                    assert!(text.ends_with('\n'), "{name}: {text}");
                    for line in text.lines() {
                        let change = line.split(' ').next().unwrap();
                        assert!(["added", "removed"].contains(&change), "{name}: {line}");
                    }
                }
            }
        }
    }
}

/// A reader that goes away while a watch runs: the next write ends it quietly, status 0.
#[test]
fn a_watch_whose_reader_goes_away_ends_quietly() {
    let _spawner = Spawner::start();
    for name in ["sockls", "proctree"] {
        let first = assert_quiet_on_closed_pipe(tool(name).args(["--watch", "20ms", "--json"]));
        serde_json::from_str::<Value>(&first).unwrap_or_else(|e| panic!("{name}: {first}: {e}"));
    }
}

/// svcname fed a line at a time, as from `tail -f`: what it had read is out, whole, when
/// a signal comes; SIGINT and SIGTERM are an interrupted run (status 1, said), a reader
/// gone away is the end (status 0, quiet).
#[test]
fn svcname_on_a_slow_pipe_stops_whole() {
    for sent in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGPIPE] {
        let mut child = tool("svcname")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut text = String::new();
        for _ in 0..3 {
            input.write_all(b"127.0.0.1 22/tcp open syn-ack\n").unwrap();
            read_until(&mut reader, &mut text, |_| true);
        }
        assert_eq!(text, "127.0.0.1 22/tcp open syn-ack ssh\n".repeat(3));
        if sent == Signal::SIGPIPE {
            // The reader goes: the next line svcname writes finds no one.
            drop(reader);
            for _ in 0..100 {
                if input.write_all(b"127.0.0.1 80/tcp open\n").is_err() {
                    break;
                }
                thread::sleep(Duration::from_millis(10));
            }
            drop(input);
            let (code, stderr) = wait_for_stderr(child);
            assert_eq!(code, Some(0), "{stderr}");
            assert_eq!(stderr, "");
            continue;
        }
        signal(&child, sent);
        reader.read_to_string(&mut text).unwrap();
        drop(input);
        let (code, stderr) = wait_for_stderr(child);
        assert_eq!(code, Some(1), "{sent}: {stderr}");
        assert_eq!(stderr, "svcname: interrupted\n", "{sent}");
        assert_eq!(text, "127.0.0.1 22/tcp open syn-ack ssh\n".repeat(3));
    }
}

/// svcname busy with a large input when SIGTERM comes: it stops between two lines, with
/// every line it wrote whole and in order.
#[test]
fn svcname_interrupted_mid_input_writes_no_half_line() {
    let line = "127.0.0.1 22/tcp open syn-ack\n";
    let mut child = tool("svcname")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let writer = thread::spawn(move || {
        for _ in 0..200_000 {
            if input.write_all(line.as_bytes()).is_err() {
                break;
            }
        }
    });
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut text = String::new();
    read_until(&mut reader, &mut text, |_| true);
    signal(&child, Signal::SIGTERM);
    reader.read_to_string(&mut text).unwrap();
    let (code, stderr) = wait_for_stderr(child);
    writer.join().unwrap();
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stderr, "svcname: interrupted\n");
    assert!(text.ends_with('\n'));
    assert!(
        text.lines()
            .all(|l| l == "127.0.0.1 22/tcp open syn-ack ssh"),
        "a half line"
    );
}

/// stdin closed (`<&-`): svcname, which reads it, says so as for any unreadable input;
/// the others, which never read it, do their work.
#[test]
fn a_closed_stdin() {
    let closed = |program: &str, args: &[&str]| {
        run(
            Command::new("sh")
                .args(["-c", "exec \"$@\" <&-", "sh", program])
                .args(args)
                .env("LC_ALL", "C.UTF-8"),
            LIMIT,
        )
    };
    let output = closed(tool_path("svcname"), &[]);
    assert_eq!(code(&output), 1, "{}", stderr_text(&output));
    assert_eq!(
        stderr_text(&output),
        "svcname: reading stdin: Bad file descriptor\n"
    );
    assert_eq!(stdout_text(&output), "");
    // With operands, stdin is not read.
    let output = closed(tool_path("svcname"), &["22"]);
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    assert!(stdout_text(&output).starts_with("22/tcp ssh "));

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let runs: [(&str, &[&str]); 3] = [
        ("portscan", &["-p", &port, "127.0.0.1"]),
        ("sockls", &["-tl"]),
        ("proctree", &[]),
    ];
    for (name, args) in runs {
        let output = closed(tool_path(name), args);
        assert_eq!(code(&output), 0, "{name}: {}", stderr_text(&output));
        assert_eq!(stderr_text(&output), "", "{name}");
        assert!(!output.stdout.is_empty(), "{name}");
    }
}

/// stdin a terminal (script(1) gives one): svcname reads what is typed and answers each
/// line at once; the others never wait for it (script's own input stays open throughout).
#[test]
fn stdin_a_terminal() {
    require_program("script", &["--version"]);
    let on_a_terminal = |command: &str, typed: &[u8], close: bool| {
        let mut child = Command::new("script")
            .args(["-qec", command, "/dev/null"])
            .env("LC_ALL", "C.UTF-8")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(typed).unwrap();
        let held = if close { None } else { Some(input) };
        let output = crate::util::wait_with_deadline(child, LIMIT);
        drop(held);
        output
    };
    let svcname = tool_path("svcname");
    let output = on_a_terminal(svcname, b"22\n80/tcp open\n\x04", true);
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    let text = stdout_text(&output);
    assert!(text.contains("22 ssh\r\n"), "{text:?}");
    assert!(text.contains("80/tcp open http\r\n"), "{text:?}");

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let portscan = format!("{} -p {port} 127.0.0.1", tool_path("portscan"));
    let sockls = format!("{} -tl", tool_path("sockls"));
    for command in [&portscan, &sockls, tool_path("proctree")] {
        let output = on_a_terminal(command, b"", false);
        assert_eq!(code(&output), 0, "{command}: {}", stderr_text(&output));
        assert!(!output.stdout.is_empty(), "{command}");
    }
}

/// Waits until `child` is blocked writing to its stdout pipe, which the test has not read:
/// its output is more than the pipe holds, and the rest is still to come.
fn wait_until_blocked_on_output(child: &Child) {
    let wchan = format!("/proc/{}/wchan", child.id());
    for _ in 0..2000 {
        if std::fs::read_to_string(&wchan).is_ok_and(|at| at.ends_with("pipe_write")) {
            return;
        }
        thread::sleep(Duration::from_millis(5));
    }
    panic!("never blocked on its output");
}

/// Processes with a 4 KiB command line each, so that a listing of them is more than a
/// pipe holds; each in a process group of its own, ended with it.
struct Bulky(Vec<Child>);

impl Bulky {
    fn start(count: usize) -> Self {
        use std::os::unix::process::CommandExt;
        let name = "x".repeat(4096);
        let children = (0..count)
            .map(|_| {
                Command::new("sh")
                    .args(["-c", "sleep 60; :", &name])
                    .stdin(Stdio::null())
                    .process_group(0)
                    .spawn()
                    .unwrap()
            })
            .collect();
        Self(children)
    }
}

impl Drop for Bulky {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let group = Pid::from_raw(i32::try_from(child.id()).unwrap());
            let _ = nix::sys::signal::killpg(group, Signal::SIGTERM);
            let _ = child.wait();
        }
    }
}

/// A listing stopped part way: its reader is slow (the test reads nothing until the tool
/// waits on a full pipe), SIGINT or SIGTERM comes, then the reader catches up. Records
/// written one by one stop between two of them, those before out whole, and the run ends
/// with `tool: interrupted`, status 1; the tree, aligned and so written whole at its end,
/// was all written when the signal is seen, and ends as usual (docs/FORMAT.md,
/// "Signals and standard input").
#[test]
fn a_listing_stopped_by_a_signal_ends_between_records() {
    let listeners: Vec<TcpListener> = (0..600)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let bulky = Bulky::start(100);
    let runs: [(&str, &[&str], Signal); 3] = [
        ("sockls", &["-tl", "--json"], Signal::SIGTERM),
        ("proctree", &["--json"], Signal::SIGINT),
        ("proctree", &["-a"], Signal::SIGTERM),
    ];
    for (name, args, sent) in runs {
        let mut child = tool(name)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_until_blocked_on_output(&child);
        signal(&child, sent);
        let mut text = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        let (code, stderr) = wait_for_stderr(child);
        assert!(text.ends_with('\n'), "{name}: a cut last line");
        if !args.contains(&"--json") {
            assert_eq!(code, Some(0), "{name} {sent}: {stderr}");
            assert_eq!(stderr, "", "{name}");
            for bulky in &bulky.0 {
                let pid = format!(" {} ", bulky.id());
                assert!(text.lines().any(|line| line.contains(&pid)), "{pid} lost");
            }
            continue;
        }
        assert_eq!(code, Some(1), "{name} {sent}: {stderr}");
        assert_eq!(stderr, format!("{name}: interrupted\n"), "{name}");
        let records = json_lines(&text);
        if name == "sockls" {
            let ours = records
                .iter()
                .filter(|r| r["local_address"] == "127.0.0.1" && r["state"] == "listen")
                .count();
            assert!(ours < listeners.len(), "the listing was not stopped");
        }
    }
}
