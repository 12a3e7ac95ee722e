//! sockls's ss filter expressions held against ss itself: in a namespace of the test's own,
//! a python helper keeps a farm of a few thousand TCP and UDP sockets (listeners and
//! connections on two v4 and two v6 addresses, connections in ESTABLISHED, CLOSE-WAIT,
//! FIN-WAIT-2 and TIME-WAIT), and each expression must select the same (state, local end,
//! remote end) set from `sockls` as from `ss`.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::Child;

use serde_json::Value;

use crate::fixtures::{Netns, require_program, require_root, sh};
use crate::util::{LIMIT, code, run, spawn_ready, stderr_text, stdout_text, tool_path};

/// The farm: listeners on ports 1000-1009 of each address, 1,600 connections among them
/// from the other address of the same family (every tenth half-closed by the server, every
/// tenth closed by the client first, leaving TIME-WAIT), and UDP sockets on 2000-2009, half
/// connected. The helper ends by itself after 120 s.
const FARM: &str = r#"
import socket, time
v4, v6 = ["127.0.0.1", "127.0.0.2"], ["::1", "2001:db8::1"]
deadline = time.monotonic() + 120
listeners, held = [], []
for host in v4 + v6:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for port in range(1000, 1010):
        l = socket.socket(family)
        l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            l.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        l.bind((host, port))
        l.listen(1024)
        listeners.append((family, host, port, l))
for i in range(1600):
    family, host, port, l = listeners[i % len(listeners)]
    sources = v4 if family == socket.AF_INET else v6
    c = socket.socket(family)
    c.bind((sources[(i // len(listeners)) % 2], 0))
    c.connect((host, port))
    s, _ = l.accept()
    if i % 10 == 7:
        s.shutdown(socket.SHUT_WR)
    if i % 10 == 8:
        c.close()
        time.sleep(0.001)
        s.close()
        continue
    held += [c, s]
for host in ["127.0.0.1", "::1"]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for port in range(2000, 2010):
        u = socket.socket(family, socket.SOCK_DGRAM)
        u.bind((host, port))
        if port % 2:
            u.connect((host, 3000))
        held.append(u)
time.sleep(0.5)
print("ready", flush=True)
while time.monotonic() < deadline:
    time.sleep(0.5)
"#;

/// The namespace and the helper holding the farm (or other sockets); the helper is killed
/// first.
struct Farm {
    child: Child,
    netns: Netns,
}

impl Drop for Farm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn farm() -> Farm {
    let netns = Netns::new("ssf-farm");
    sh(&format!(
        "ip -n {0} addr add 2001:db8::1/64 dev lo nodad",
        netns.name
    ));
    let (child, line) = spawn_ready(netns.exec("python3").args(["-c", FARM]));
    let farm = Farm { child, netns };
    assert_eq!(line.trim(), "ready", "the farm's helper failed");
    farm
}

/// A socket as both tools show it: state, local end, remote end (port 0 for `*`).
type Socket = (String, IpAddr, u16, IpAddr, u16);

/// The state of ss's lines that have none: the one state asked for.
const SINGLE_STATE: &str = "(the one asked for)";

/// An `ss` end: `127.0.0.1:22`, `[::1]:22`, `0.0.0.0:*`, `[::]:*`.
fn ss_end(text: &str) -> (IpAddr, u16) {
    let (address, port) = text.rsplit_once(':').expect("ADDRESS:PORT");
    let address = address.trim_start_matches('[').trim_end_matches(']');
    let port = if port == "*" {
        0
    } else {
        port.parse().unwrap()
    };
    (address.parse().expect(text), port)
}

/// A state name with its dashes dropped: ss says FIN-WAIT-2, sockls's JSON fin-wait2.
fn state_key(name: &str) -> String {
    match name {
        "ESTAB" => "established".into(),
        other => other.to_ascii_lowercase().replace('-', ""),
    }
}

fn ss_sockets(netns: &Netns, flags: &str, filter: &[&str]) -> BTreeSet<Socket> {
    let output = run(netns.exec("ss").arg(flags).args(filter), LIMIT);
    assert_eq!(
        code(&output),
        0,
        "ss {flags} {filter:?}: {}",
        stderr_text(&output)
    );
    stdout_text(&output)
        .lines()
        .map(|line| {
            let mut fields: Vec<&str> = line.split_whitespace().collect();
            // With more than one protocol, ss puts a Netid column first.
            if matches!(fields[0], "tcp" | "udp") {
                fields.remove(0);
            }
            // With a single state asked for, ss leaves the State column out.
            let state = if fields.len() == 4 {
                SINGLE_STATE.to_owned()
            } else {
                state_key(fields.remove(0))
            };
            let (local, local_port) = ss_end(fields[2]);
            let (remote, remote_port) = ss_end(fields[3]);
            (state, local, local_port, remote, remote_port)
        })
        .collect()
}

fn sockls_sockets(netns: &Netns, flags: &str, filter: &[&str]) -> BTreeSet<Socket> {
    let output = run(
        netns
            .exec(tool_path("sockls"))
            .args([flags, "--json"])
            .args(filter),
        LIMIT,
    );
    assert_eq!(
        code(&output),
        0,
        "sockls {flags} {filter:?}: {}",
        stderr_text(&output)
    );
    stdout_text(&output)
        .lines()
        .map(|line| {
            let record: Value = serde_json::from_str(line).unwrap();
            let local: IpAddr = record["local_address"].as_str().unwrap().parse().unwrap();
            let unspecified = if local.is_ipv4() {
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            } else {
                IpAddr::V6(Ipv6Addr::UNSPECIFIED)
            };
            let port = |key: &str| {
                record[key]
                    .as_u64()
                    .map_or(0, |p| u16::try_from(p).unwrap())
            };
            let remote = record["remote_address"]
                .as_str()
                .map_or(unspecified, |a| a.parse().unwrap());
            let state = state_key(record["state"].as_str().unwrap());
            (
                state,
                local,
                port("local_port"),
                remote,
                port("remote_port"),
            )
        })
        .collect()
}

/// (flags, filter words): states and groups, ports with each operator, v4 and v6 addresses
/// and prefixes, and/or/not and parentheses, for TCP and UDP.
const CASES: &[(&str, &str)] = &[
    ("-tn", ""),
    ("-tn", "state all"),
    ("-tn", "state established"),
    ("-tn", "state listening"),
    ("-tn", "state connected"),
    ("-tn", "state synchronized"),
    ("-tn", "state bucket"),
    ("-tn", "state big"),
    ("-tn", "state time-wait"),
    ("-tn", "state close-wait state fin-wait-2"),
    ("-tn", "exclude established"),
    ("-tn", "exclude listening exclude time-wait"),
    ("-tn", "sport = :1003"),
    ("-tn", "dport == :1003"),
    ("-tn", "state all dport eq 1003"),
    ("-tn", "state all sport != :1003"),
    ("-tn", "state all dport ne :1003"),
    ("-tn", "state all sport < :1005"),
    ("-tn", "state all sport lt 1005"),
    ("-tn", "state all sport > :1005"),
    ("-tn", "state all dport gt :1005"),
    ("-tn", "state all dport <= :1004"),
    ("-tn", "state all dport le :1004"),
    ("-tn", "state all sport >= :1008"),
    ("-tn", "state all dport ge :40000"),
    ("-tn", "state all dst 127.0.0.2"),
    ("-tn", "state all src 127.0.0.0/8"),
    ("-tn", "state all src 127.0.0.2:1001"),
    ("-tn", "state all dst [::1]"),
    ("-tn", "state all src [2001:db8::/32]"),
    ("-tn", "state all dst [::1]:1002"),
    ("-tn", "state all src [2001:db8::1]:1002"),
    ("-tn", "state all src *:1003"),
    ("-tn", "state all src :1003"),
    ("-tn", "state all dst = 127.0.0.1/32"),
    // Abbreviated v4 addresses, as ss's man page writes them: the missing bytes are zero.
    ("-tn", "state all dst 127/8"),
    ("-tn", "state all src 127.0.0/24:1004"),
    ("-tn", "state all dst 193.233.7/24"),
    ("-tn", "state all not dst 127.0/16"),
    ("-uan", "src 127/8"),
    (
        "-tn",
        "state established ( dport = :1001 or sport = :1001 )",
    ),
    ("-tn", "state all not ( src 127.0.0.1 or dst [::1] )"),
    ("-tn", "state all ! sport = :1000 and dport != :1000"),
    (
        "-tn",
        "state all sport = :1000 || sport = :1001 && dst 127.0.0.2",
    ),
    (
        "-tn",
        "state all ( sport = :1000 or sport = :1001 ) ( src 127.0.0.1 or src [::1] )",
    ),
    (
        "-tn",
        "state all not not sport > :1002 && ! ( dport < :1006 || src [::1/128] )",
    ),
    ("-un", ""),
    ("-un", "sport = :2003"),
    ("-uan", "src 127.0.0.1 or sport >= :2008"),
    ("-uan", "state all dst [::1]:3000"),
    ("-tuan", "sport > :1008 or dport = :3000"),
];

/// (flags, `--state` list, the same states as ss's filter words).
const STATE_CASES: &[(&str, &str, &str)] = &[
    ("-tn", "connected", "state connected"),
    ("-tn", "synchronized", "state synchronized"),
    ("-tn", "bucket", "state bucket"),
    ("-tn", "big", "state big"),
    ("-tn", "all", "state all"),
    ("-tn", "listening", "state listening"),
    ("-tn", "listen", "state listening"),
    ("-tn", "time-wait", "state time-wait"),
    (
        "-tn",
        "established,TIME-WAIT",
        "state established state time-wait",
    ),
    (
        "-tn",
        "close-wait, fin-wait-2",
        "state close-wait state fin-wait-2",
    ),
    ("-un", "connected", "state connected"),
    ("-un", "closed", "state closed"),
    (
        "-tun",
        "unconn,listening",
        "state unconnected state listening",
    ),
];

/// `ss -H FLAGS SS_WORDS` and `sockls FLAGS SOCKLS_ARGS` show the same sockets.
fn assert_same_sockets(netns: &Netns, flags: &str, ss_words: &[&str], sockls_args: &[&str]) {
    let theirs = ss_sockets(netns, &format!("-H{}", &flags[1..]), ss_words);
    let mut ours = sockls_sockets(netns, flags, sockls_args);
    if theirs.iter().any(|socket| socket.0 == SINGLE_STATE) {
        let states: BTreeSet<&String> = ours.iter().map(|socket| &socket.0).collect();
        assert!(
            states.len() <= 1,
            "sockls {flags} {sockls_args:?}: states {states:?}"
        );
        ours = ours
            .into_iter()
            .map(|(_, local, lport, remote, rport)| {
                (SINGLE_STATE.to_owned(), local, lport, remote, rport)
            })
            .collect();
    }
    assert!(
        ours == theirs,
        "sockls {flags} {sockls_args:?}: {} sockets, ss {ss_words:?}: {}; only sockls: {:?}; only ss: {:?}",
        ours.len(),
        theirs.len(),
        ours.difference(&theirs).take(5).collect::<Vec<_>>(),
        theirs.difference(&ours).take(5).collect::<Vec<_>>(),
    );
}

#[test]
#[ignore = "needs root: a network namespace with a farm of sockets"]
fn filter_expressions_select_what_ss_selects() {
    require_root();
    require_program("ss", &["-V"]);
    require_program("python3", &["-V"]);
    let farm = farm();
    let all = ss_sockets(&farm.netns, "-Htan", &[]);
    assert!(all.len() > 3000, "the farm holds {} TCP sockets", all.len());
    for state in [
        "established",
        "listen",
        "time-wait",
        "close-wait",
        "fin-wait-2",
    ] {
        assert!(
            all.iter().any(|s| s.0 == state_key(state)),
            "no socket in {state}"
        );
    }
    for (flags, filter) in CASES {
        let words: Vec<&str> = filter.split_whitespace().collect();
        assert_same_sockets(&farm.netns, flags, &words, &words);
    }
    // --state's names and groups mean what ss's state words mean: `--state connected` keeps
    // the farm's TIME-WAIT sockets, which ss (and sockls) leave out with no state asked for.
    for (flags, list, words) in STATE_CASES {
        let words: Vec<&str> = words.split_whitespace().collect();
        assert_same_sockets(&farm.netns, flags, &words, &["--state", list]);
    }
    let time_wait = |sockets: &BTreeSet<Socket>| {
        sockets
            .iter()
            .filter(|s| s.0 == state_key("TIME-WAIT"))
            .count()
    };
    assert!(
        time_wait(&sockls_sockets(
            &farm.netns,
            "-tn",
            &["--state", "connected"]
        )) > 100
    );
    assert_eq!(time_wait(&sockls_sockets(&farm.netns, "-tn", &[])), 0);
    // --sport and --port hold along with the expression.
    let theirs = ss_sockets(
        &farm.netns,
        "-Htn",
        &[
            "state",
            "all",
            "sport",
            "=",
            ":1003",
            "and",
            "dst",
            "127.0.0.2",
        ],
    );
    assert!(!theirs.is_empty());
    let ours = sockls_sockets(
        &farm.netns,
        "-tn",
        &[
            "--sport",
            "1003",
            "--port",
            "1000-1005",
            "state",
            "all",
            "dst",
            "127.0.0.2",
        ],
    );
    assert_eq!(ours, theirs);
    // A quoted expression is one argument to both.
    let quoted = ["state", "established", "( dport = :1001 or sport = :1001 )"];
    let theirs = ss_sockets(&farm.netns, "-Htn", &quoted);
    assert!(!theirs.is_empty());
    let ours: BTreeSet<Socket> = sockls_sockets(&farm.netns, "-tn", &quoted)
        .into_iter()
        .map(|(_, local, lport, remote, rport)| {
            (SINGLE_STATE.to_owned(), local, lport, remote, rport)
        })
        .collect();
    assert_eq!(ours, theirs);
}

#[test]
#[ignore = "needs root: a network namespace with its own /etc/services"]
fn a_service_name_means_the_port_etc_services_gives_it_as_in_ss() {
    require_root();
    require_program("ss", &["-V"]);
    require_program("python3", &["-V"]);
    // Debian's line for http-alt; IANA's registry gives the name 591 and 8008 as well.
    let netns = Netns::with_etc(
        "ssf-services",
        &[(
            "services",
            "http-alt\t8080/tcp\twebcache\ntwice\t7001/tcp\ntwice\t7002/tcp\n",
        )],
    );
    let (child, line) = spawn_ready(netns.exec("python3").args([
        "-c",
        "import socket, time\n\
         held = []\n\
         for port in (591, 8008, 8080, 7001, 7002):\n\
         \x20   l = socket.socket()\n\
         \x20   l.bind(('127.0.0.1', port))\n\
         \x20   l.listen()\n\
         \x20   held.append(l)\n\
         print('ready', flush=True)\n\
         time.sleep(60)\n",
    ]));
    let listeners = Farm { child, netns };
    let netns = &listeners.netns;
    assert_eq!(line.trim(), "ready");
    for filter in ["sport = :http-alt", "sport = :webcache", "src *:http-alt"] {
        let words: Vec<&str> = filter.split_whitespace().collect();
        let theirs = ss_sockets(netns, "-Htln", &words);
        assert_eq!(theirs.len(), 1, "ss {filter}: {theirs:?}");
        assert_eq!(theirs.first().unwrap().2, 8080);
        assert_eq!(sockls_sockets(netns, "-tln", &words), theirs, "{filter}");
    }
    // A name the system gives two ports stays ambiguous (ss takes the first line's).
    let output = run(
        netns
            .exec(tool_path("sockls"))
            .args(["-tln", "sport", "=", ":twice"]),
        LIMIT,
    );
    assert_eq!(code(&output), 2);
    assert!(
        stderr_text(&output).contains("'twice' is ambiguous: ports [7001, 7002]"),
        "{}",
        stderr_text(&output)
    );
}
