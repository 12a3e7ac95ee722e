//! -sS, the SYN scan: on loopback it finds what the connect scan and nmap's own SYN scan
//! find, with nmap's SYN-scan reasons, and with -sU the UDP states nmap -sS -sU finds; through a firewall in a namespace pair it reads the
//! ICMP errors for their reasons, and over all 65535 ports agrees with nmap -sS; it refuses
//! to run without CAP_NET_RAW, and it runs on as nobody with no capability once its raw
//! sockets are open.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, UdpSocket};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::privilege::privilege_of;
use super::{
    FIREWALL, check_the_firewalls_answers, firewalled_pair, json_lines, listen_in, listeners,
    port_list, port_of, states, wait_until_open,
};
use crate::fixtures::{require_program, require_root};
use crate::util::{
    LIMIT, code, run, stderr_text, stdout_text, tool, tool_path, wait_with_deadline,
};

/// (port, state) of each record of a `--json` run.
fn port_states(text: &str) -> Vec<(u64, String, String)> {
    states(&json_lines(text))
        .into_iter()
        .map(|(_, port, state, reason)| (port, state, reason))
        .collect()
}

/// The states `nmap -sS` gives the ports of `list` on `address`, from its grepable output.
fn nmap_states(address: &str, list: &str) -> Vec<(u64, String)> {
    nmap_ports(&["-sS"], address, list)
        .into_iter()
        .map(|(port, _, state)| (port, state))
        .collect()
}

/// (port, protocol, state) of each port of `list` on `address` in the grepable output of
/// an nmap run of the `scans` (`-sS`, `-sU`).
fn nmap_ports(scans: &[&str], address: &str, list: &str) -> Vec<(u64, String, String)> {
    let output = run(
        Command::new("nmap")
            .args(scans)
            .args(["-n", "-Pn", "-p", list, "-oG", "-", address]),
        LIMIT,
    );
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    let text = stdout_text(&output);
    let ports = text
        .lines()
        .find_map(|line| {
            line.split_once("Ports: ")
                .map(|(_, ports)| ports.to_owned())
        })
        .unwrap_or_else(|| panic!("no Ports line: {text}"));
    let mut found: Vec<(u64, String, String)> = ports
        .split(", ")
        .map(|entry| {
            let fields: Vec<&str> = entry.split('/').collect();
            let port = fields[0].trim().parse().unwrap();
            (port, fields[2].to_owned(), fields[1].to_owned())
        })
        .collect();
    found.sort();
    found
}

#[test]
#[ignore = "needs root: a raw socket, and nmap's SYN scan"]
fn a_syn_scan_of_loopback_finds_what_the_connect_scan_and_nmap_find() {
    require_root();
    require_program("nmap", &["--version"]);
    for address in [
        IpAddr::from(Ipv4Addr::LOCALHOST),
        IpAddr::from(Ipv6Addr::LOCALHOST),
    ] {
        let (open, closed) = listeners(address, 3);
        let list = port_list(open.iter().map(port_of).chain(closed.iter().copied()));
        let scan = |kind: &str| {
            let output = run(
                tool("portscan").args([kind, "--all", "--json", "-p", &list, &address.to_string()]),
                LIMIT,
            );
            assert_eq!(code(&output), 0, "{kind}: {}", stderr_text(&output));
            port_states(&stdout_text(&output))
        };
        let syn = scan("-sS");
        let connect = scan("-sT");
        assert_eq!(syn.len(), 6, "{syn:?}");
        for ((port, state, reason), (connect_port, connect_state, _)) in syn.iter().zip(&connect) {
            assert_eq!((port, state), (connect_port, connect_state));
            let open = open
                .iter()
                .any(|listener| u64::from(port_of(listener)) == *port);
            let expected = if open {
                ("open", "syn-ack")
            } else {
                ("closed", "reset")
            };
            assert_eq!(
                (state.as_str(), reason.as_str()),
                expected,
                "{address} {port}"
            );
        }
        if address.is_ipv4() {
            let nmap = nmap_states("127.0.0.1", &list);
            let ours: Vec<(u64, String)> = syn
                .iter()
                .map(|(port, state, _)| (*port, state.clone()))
                .collect();
            assert_eq!(ours, nmap);
        }
    }
}

/// A UDP port of `address` that echoes what it gets, for a bounded time, and a UDP port
/// that was free a moment ago and is closed now.
fn udp_echo_and_closed(address: IpAddr) -> (u16, u16) {
    let echo = UdpSocket::bind((address, 0)).unwrap();
    echo.set_read_timeout(Some(LIMIT)).unwrap();
    let port = echo.local_addr().unwrap().port();
    thread::spawn(move || {
        let mut buffer = [0; 2048];
        // Ends at the first quiet LIMIT.
        while let Ok((length, peer)) = echo.recv_from(&mut buffer) {
            let _ = echo.send_to(&buffer[..length], peer);
        }
    });
    let closed = UdpSocket::bind((address, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    (port, closed)
}

/// `-sS -sU`, as nmap's users give it: the TCP ports by SYN, then the UDP ports, with the
/// states and reasons of `nmap -sS -sU`, and one block for the host in the report.
#[test]
#[ignore = "needs root: a raw socket, and nmap's SYN and UDP scans"]
fn a_syn_scan_with_udp_scans_both_as_nmap_does() {
    require_root();
    require_program("nmap", &["--version"]);
    let address = IpAddr::from(Ipv4Addr::LOCALHOST);
    let (open, closed) = listeners(address, 2);
    let (udp_open, udp_closed) = udp_echo_and_closed(address);
    let tcp = port_list(open.iter().map(port_of).chain(closed.iter().copied()));
    let list = format!("T:{tcp},U:{udp_open},{udp_closed}");
    let scratch = std::env::temp_dir().join(format!("portscan-syn-udp-{}", std::process::id()));
    let output = run(
        tool("portscan").args([
            "-sS",
            "-sU",
            "--all",
            "--json",
            "-p",
            &list,
            "-oN",
            scratch.to_str().unwrap(),
            "127.0.0.1",
        ]),
        LIMIT,
    );
    let report = std::fs::read_to_string(&scratch).unwrap_or_default();
    let _ = std::fs::remove_file(&scratch);
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    let mut ours: Vec<(u64, String, String, String)> = json_lines(&stdout_text(&output))
        .iter()
        .map(|record| {
            let field = |name: &str| record[name].as_str().unwrap().to_owned();
            (
                record["port"].as_u64().unwrap(),
                field("proto"),
                field("state"),
                field("reason"),
            )
        })
        .collect();
    ours.sort();
    let mut expected: Vec<(u64, String, String, String)> = Vec::new();
    let mut expect = |port: u16, proto: &str, state: &str, reason: &str| {
        expected.push((port.into(), proto.into(), state.into(), reason.into()));
    };
    for listener in &open {
        expect(port_of(listener), "tcp", "open", "syn-ack");
    }
    for &port in &closed {
        expect(port, "tcp", "closed", "reset");
    }
    expect(udp_open, "udp", "open", "udp-response");
    expect(udp_closed, "udp", "closed", "port-unreach");
    expected.sort();
    assert_eq!(ours, expected);
    assert_eq!(report.matches("scan report for").count(), 1, "{report}");
    for (port, proto, state, _) in &expected {
        assert!(
            report
                .lines()
                .any(|line| line.starts_with(&format!("{port}/{proto} "))
                    && line.contains(state.as_str())),
            "{port}/{proto} {state}: {report}"
        );
    }

    let theirs = nmap_ports(&["-sS", "-sU"], "127.0.0.1", &list);
    let ours: Vec<(u64, String, String)> = ours
        .into_iter()
        .map(|(port, proto, state, _)| (port, proto, state))
        .collect();
    assert_eq!(ours, theirs);
}

/// While a silent host's window holds its SYNs back, the loop sleeps until an answer or a
/// timeout: it once spun instead, taking most of a core for the whole scan (7.7 s of CPU
/// in 10.4 s here). Not a timing check: the scan's CPU time against its own wall time,
/// a ratio of about 0.75 with the defect and under 0.01 without it.
#[test]
#[ignore = "needs root: network namespaces and a raw socket"]
fn a_syn_scan_waiting_on_a_silent_host_sleeps() {
    require_root();
    require_program("/usr/bin/time", &["--version"]);
    let (scanner, _target) = firewalled_pair("synidle", FIREWALL);
    // 198.18.0.9 is on the link and no one's: its SYNs go unanswered.
    let output = run(
        scanner.exec("/usr/bin/time").args([
            "-f",
            "cpu %U %S wall %e",
            tool_path("portscan"),
            "-sS",
            "-Pn",
            "--max-retries",
            "1",
            "-p",
            "1-300",
            "198.18.0.2",
            "198.18.0.9",
        ]),
        LIMIT,
    );
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    let stderr = stderr_text(&output);
    let line = stderr
        .lines()
        .find(|line| line.starts_with("cpu "))
        .unwrap_or_else(|| panic!("no time line: {stderr}"));
    let numbers: Vec<f64> = line
        .split_whitespace()
        .filter_map(|word| word.parse().ok())
        .collect();
    let [user, system, wall] = numbers[..] else {
        panic!("{line}");
    };
    assert!(wall >= 1.0, "the silent host was not waited for: {line}");
    assert!(user + system < wall / 2.0, "the loop spun: {line}");
}

#[test]
#[ignore = "needs root: network namespaces and nftables"]
fn a_syn_scan_reads_the_firewalls_answers() {
    require_root();
    require_program("nft", &["--version"]);
    check_the_firewalls_answers("ss", &["-sS"], "reset");
}

#[test]
#[ignore = "needs root: network namespaces, nftables and nmap's SYN scan"]
fn every_port_through_a_firewall_is_what_nmap_finds() {
    require_root();
    require_program("nft", &["--version"]);
    require_program("nmap", &["--version"]);
    let (scanner, target) = firewalled_pair("sn", FIREWALL);
    let (a, b) = (&scanner.name, &target.name);
    let _servers = listen_in(b, &[2000, 2001]);
    wait_until_open(a, "198.18.0.2", 2000);
    let output = run(
        scanner
            .exec(tool_path("portscan"))
            .args(["-sS", "--all", "--json", "-p-", "198.18.0.2"]),
        LIMIT,
    );
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    let ours = port_states(&stdout_text(&output));
    assert_eq!(ours.len(), 65535);
    let output = run(
        scanner
            .exec("nmap")
            .args(["-sS", "-n", "-Pn", "-p-", "-oG", "-", "198.18.0.2"]),
        LIMIT,
    );
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    let text = stdout_text(&output);
    // nmap's grepable line lists every port but those of the most common state, which it
    // counts: "Ignored State: closed (65508)".
    let line = text.lines().find(|line| line.contains("Ports: ")).unwrap();
    let (listed, ignored) = line
        .split_once("Ports: ")
        .unwrap()
        .1
        .split_once("\tIgnored State: ")
        .unwrap();
    let (ignored_state, count) = ignored.trim_end_matches(')').split_once(" (").unwrap();
    let nmap: Vec<(u64, String)> = listed
        .split(", ")
        .map(|entry| {
            let mut fields = entry.split('/');
            let port = fields.next().unwrap().trim().parse().unwrap();
            (port, fields.next().unwrap().to_owned())
        })
        .collect();
    let (unlisted, listed_ours): (Vec<_>, Vec<_>) = ours
        .iter()
        .partition(|(_, state, _)| state == ignored_state);
    assert_eq!(unlisted.len(), count.parse::<usize>().unwrap(), "{ignored}");
    let listed_ours: Vec<(u64, String)> = listed_ours
        .into_iter()
        .map(|(port, state, _)| (*port, state.clone()))
        .collect();
    let mut nmap = nmap;
    nmap.sort();
    assert_eq!(listed_ours, nmap);
}

#[test]
#[ignore = "needs root: runs portscan as nobody, who has no CAP_NET_RAW"]
fn without_cap_net_raw_a_syn_scan_is_refused() {
    require_root();
    require_program("setpriv", &["--version"]);
    let output = run(
        Command::new("setpriv")
            .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
            .args([tool_path("portscan"), "-sS", "-p", "1", "127.0.0.1"]),
        LIMIT,
    );
    assert_eq!(code(&output), 2, "{}", stderr_text(&output));
    // A usage error, with the line every usage error of the tools ends with.
    assert_eq!(
        stderr_text(&output),
        "portscan: -sS: needs CAP_NET_RAW (run as root, or use -sT)\n\
         portscan: try 'portscan --help' for more information\n"
    );
    assert_eq!(stdout_text(&output), "");
}

#[test]
#[ignore = "needs root: network namespaces, and root's privilege given up"]
fn a_syn_scan_runs_on_as_nobody_with_no_capability() {
    require_root();
    require_program("nft", &["--version"]);
    let (scanner, _target) = firewalled_pair("sp", FIREWALL);
    // Dropped ports keep the scan waiting a while after its sockets are open.
    let child = scanner
        .exec(tool_path("portscan"))
        .args([
            "-sS",
            "--json",
            "--all",
            "--timeout",
            "300ms",
            "-p",
            "1000-1009",
            "198.18.0.2",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // `ip netns exec` execs the program in its own process.
    let pid = child.id();
    let until = Instant::now() + LIMIT;
    let mut seen = None;
    while Instant::now() < until {
        match privilege_of(pid) {
            Some(now) if now.uid != "0 0 0 0" => {
                seen = Some((now.uid, now.cap_permitted, now.cap_effective));
                break;
            }
            Some(_) => thread::sleep(Duration::from_millis(2)),
            None => break,
        }
    }
    let output = wait_with_deadline(child, LIMIT);
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    let none = "0000000000000000".to_owned();
    assert_eq!(
        seen,
        Some(("65534 65534 65534 65534".to_owned(), none.clone(), none))
    );
    // The sockets opened before the drop still sent and read: every port was settled.
    let found = port_states(&stdout_text(&output));
    assert_eq!(found.len(), 10, "{found:?}");
    assert!(
        found.iter().all(|(_, state, _)| state == "filtered"),
        "{found:?}"
    );
}
