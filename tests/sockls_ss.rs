//! sockls against ss's flags: the header on a terminal (-H), and -e, -o, -i, -m and -s held
//! against ss itself on the sockets of a namespace the test makes, where nothing else moves;
//! the owners of time-wait sockets, which have none, -l and -a given together, and the
//! addresses of dual-stack sockets, likewise.

use std::collections::{BTreeSet, HashMap};
use std::net::{TcpListener, TcpStream};
use std::process::Child;
use std::time::Duration;

use crate::fixtures::{Netns, require_program, require_root};
use crate::util::{LIMIT, code, run, spawn_ready, stderr_text, stdout_text, tool, tool_path};

/// What `script` prints of `command` run on a terminal, without the terminal's carriage
/// returns.
fn on_a_terminal(command: &str) -> String {
    require_program("script", &["--version"]);
    let output = run(
        std::process::Command::new("script").args(["-qc", command, "/dev/null"]),
        LIMIT,
    );
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    stdout_text(&output).replace('\r', "")
}

#[test]
fn an_empty_listing_on_a_terminal_has_its_header_and_h_drops_it() {
    let sockls = tool_path("sockls");
    // No connected socket has port 1 at either end here.
    let empty = on_a_terminal(&format!("{sockls} -t --port 1"));
    assert_eq!(
        empty,
        "proto state recv_q send_q local remote user inode owner comm netns\n"
    );
    // -e brings the timers too, as ss -e does: with or without -o, the same columns.
    for columns in ["-eo", "-e"] {
        let with_columns = on_a_terminal(&format!("{sockls} -t --port 1 {columns}"));
        assert!(
            with_columns.trim_end().ends_with("netns uid cookie timer"),
            "{columns}: {with_columns:?}"
        );
    }
    assert_eq!(on_a_terminal(&format!("{sockls} -H -t --port 1")), "");
    let listeners = on_a_terminal(&format!("{sockls} -H -tla"));
    assert!(!listeners.starts_with("proto "), "{listeners:?}");
}

#[test]
fn watch_shows_the_columns_and_lines_of_e_o_i_m() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // The connection is made once the first listing is taken, so that it is printed as added.
    let connect = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(1));
        let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let accepted = listener.accept().unwrap();
        std::thread::sleep(Duration::from_millis(3500));
        (client, accepted)
    });
    let port_list = port.to_string();
    let output = run(
        tool("sockls").args([
            "-t", "-eoim", "--header", "--port", &port_list, "--watch", "300ms", "--count", "10",
        ]),
        LIMIT,
    );
    drop(connect.join().unwrap());
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    let text = stdout_text(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "change was proto state recv_q send_q local remote user inode owner comm netns uid \
         cookie timer"
    );
    // Both ends of the connection, each with its internals on the line after it.
    let added: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].starts_with("added - tcp established "))
        .collect();
    assert_eq!(added.len(), 2, "{text}");
    for i in added {
        assert_eq!(lines[i].split(' ').count(), 16, "{}", lines[i]);
        let detail = lines[i + 1];
        assert!(
            detail.starts_with("\tskmem:(") && detail.contains(" cwnd:"),
            "{text}"
        );
    }
}

/// A namespace with, on its loopback: a TCP listener on 7000 and a connection to it whose
/// client end has keepalive on (a timer, two hours off), a TCP listener on [::1]:7001 and a
/// UDP socket on 7002, held by a python process that ends by itself after 60 s.
struct Sockets {
    child: Child,
    netns: Netns,
}

impl Drop for Sockets {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn namespace_with_sockets() -> Sockets {
    require_root();
    require_program("python3", &["-V"]);
    require_program("ss", &["-V"]);
    let netns = Netns::new("ssg-flags");
    let (child, line) = spawn_ready(netns.exec("python3").arg("-c").arg(
        "import socket, time\n\
         l = socket.socket()\n\
         l.bind(('127.0.0.1', 7000))\n\
         l.listen()\n\
         c = socket.socket()\n\
         c.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)\n\
         c.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 7200)\n\
         c.connect(('127.0.0.1', 7000))\n\
         a, _ = l.accept()\n\
         l6 = socket.socket(socket.AF_INET6)\n\
         l6.bind(('::1', 7001))\n\
         l6.listen()\n\
         u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         u.bind(('127.0.0.1', 7002))\n\
         print('ready', flush=True)\n\
         time.sleep(60)\n",
    ));
    let sockets = Sockets { child, netns };
    assert_eq!(line.trim(), "ready");
    sockets
}

impl Sockets {
    /// `program args` run inside the namespace: its stdout.
    fn output(&self, program: &str, args: &[&str]) -> String {
        let output = run(self.netns.exec(program).args(args), LIMIT);
        assert_eq!(
            code(&output),
            0,
            "{program} {args:?}: {}",
            stderr_text(&output)
        );
        stdout_text(&output)
    }
}

/// One socket as a text listing shows it: its line, and the tab-indented line after it.
#[derive(Debug, Default)]
struct Shown {
    line: String,
    detail: String,
}

/// The sockets of a listing without a header, by inode (ss's `ino:N`, sockls's `inode`
/// column).
fn by_inode(text: &str, inode_of: impl Fn(&str) -> u64) -> HashMap<u64, Shown> {
    let mut sockets = HashMap::new();
    let mut last = None;
    for line in text.lines() {
        if let Some(detail) = line.strip_prefix('\t') {
            let shown: &mut Shown = sockets
                .get_mut(&last.expect("a detail after a socket"))
                .unwrap();
            detail.trim().clone_into(&mut shown.detail);
            continue;
        }
        let inode = inode_of(line);
        sockets.insert(
            inode,
            Shown {
                line: line.to_owned(),
                detail: String::new(),
            },
        );
        last = Some(inode);
    }
    sockets
}

/// The value of ss's `name:VALUE` item on a line.
fn ss_item<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|word| word.strip_prefix(name)?.strip_prefix(':'))
}

/// The `-eo` columns of a sockls line: inode, uid, cookie, timer.
fn sockls_columns(line: &str) -> (u64, String, u64, String) {
    let fields: Vec<&str> = line.split(' ').collect();
    assert_eq!(fields.len(), 14, "{line}");
    (
        fields[7].parse().unwrap(),
        fields[11].to_owned(),
        fields[12].parse().unwrap(),
        fields[13].to_owned(),
    )
}

#[test]
#[ignore = "needs root: makes a network namespace"]
fn extended_timers_internals_and_memory_agree_with_ss() {
    let sockets = namespace_with_sockets();
    let sockls = tool_path("sockls");
    let ss = by_inode(&sockets.output("ss", &["-tuaneoimH"]), |line| {
        ss_item(line, "ino").unwrap().parse().unwrap()
    });
    let ours = by_inode(&sockets.output(sockls, &["-tuaeoimH"]), |line| {
        sockls_columns(line).0
    });
    // The listeners, the two ends of the connection, the UDP socket.
    assert_eq!(ours.len(), 5, "{ours:?}");
    let mut keepalives = 0;
    for (inode, theirs) in &ss {
        let mine = ours
            .get(inode)
            .unwrap_or_else(|| panic!("ss has {theirs:?}, sockls not"));
        let (_, uid, cookie, timer) = sockls_columns(&mine.line);
        // -e: ss leaves out a uid of 0, and shows the cookie in hex.
        assert_eq!(ss_item(&theirs.line, "uid").unwrap_or("0"), uid);
        let sk = u64::from_str_radix(ss_item(&theirs.line, "sk").unwrap(), 16).unwrap();
        assert_eq!(sk, cookie, "{theirs:?} {mine:?}");
        // -o: the timer's name and count; its time to go moves between the two dumps.
        match ss_item(&theirs.line, "timer") {
            Some(ss_timer) => {
                let ss_timer = ss_timer.trim_start_matches('(').trim_end_matches(')');
                let (name, rest) = ss_timer.split_once(',').unwrap();
                let ours: Vec<&str> = timer.split(',').collect();
                assert_eq!(ours[0], name, "{theirs:?} {mine:?}");
                assert_eq!(ours[2], rest.rsplit(',').next().unwrap());
                if name == "keepalive" {
                    keepalives += 1;
                    assert!(ours[1].ends_with("min"), "two hours off: {timer}");
                }
            }
            None => assert_eq!(timer, "-", "{theirs:?} {mine:?}"),
        }
        // -m: the buffer sizes, which idle sockets keep.
        let skmem = |detail: &str| {
            let items = ss_item(detail, "skmem").unwrap().to_owned();
            let size = |key: &str| {
                items
                    .trim_matches(|c| c == '(' || c == ')')
                    .split(',')
                    .find_map(|item| {
                        item.strip_prefix(key)
                            .filter(|rest| rest.bytes().all(|b| b.is_ascii_digit()))
                    })
                    .unwrap()
                    .to_owned()
            };
            (size("rb"), size("tb"))
        };
        assert_eq!(skmem(&theirs.detail), skmem(&mine.detail), "{inode}");
        // -i, TCP: the congestion control and the window.
        if mine.line.starts_with("tcp ") {
            let congestion = mine.detail.split(' ').nth(1).unwrap();
            assert!(
                theirs
                    .detail
                    .split_whitespace()
                    .any(|word| word == congestion),
                "{theirs:?} {mine:?}"
            );
            assert_eq!(
                ss_item(&theirs.detail, "cwnd"),
                ss_item(&mine.detail, "cwnd"),
                "{theirs:?} {mine:?}"
            );
        }
    }
    assert_eq!(ss.len(), ours.len());
    assert_eq!(keepalives, 1, "the client end has its keepalive timer");
    // /proc/net/tcp has the same timers, as ss reads them when it falls back to it.
    let timers = |source: &str| -> Vec<(u64, serde_json::Value, serde_json::Value)> {
        let mut timers: Vec<_> = sockets
            .output(sockls, &["-tao", "--json", "--source", source])
            .lines()
            .map(|line| {
                let record: serde_json::Value = serde_json::from_str(line).unwrap();
                let inode = record["inode"].as_u64().unwrap();
                (
                    inode,
                    record["timer"].clone(),
                    record["timer_retrans"].clone(),
                )
            })
            .collect();
        timers.sort_by_key(|(inode, _, _)| *inode);
        timers
    };
    let from_netlink = timers("netlink");
    assert_eq!(from_netlink.len(), 4);
    assert_eq!(from_netlink, timers("proc"));
}

#[test]
#[ignore = "needs root: makes a network namespace"]
fn of_l_and_a_the_last_wins_as_in_ss() {
    let sockets = namespace_with_sockets();
    let sockls = tool_path("sockls");
    let inodes = |program: &str, args: &[&str]| -> BTreeSet<u64> {
        sockets
            .output(program, args)
            .lines()
            .map(|line| {
                if program == "ss" {
                    ss_item(line, "ino").unwrap().parse().unwrap()
                } else {
                    sockls_columns(line).0
                }
            })
            .collect()
    };
    // Two listeners and the UDP socket with -l last; the connection's two ends too with -a.
    for (flags, count) in [("-tulanp", 5), ("-tualnp", 3)] {
        let theirs = inodes("ss", &[flags, "-eoH"]);
        assert_eq!(theirs.len(), count, "ss {flags}");
        assert_eq!(inodes(sockls, &[flags, "-eoH"]), theirs, "{flags}");
    }
    let ours = inodes(sockls, &["-t", "-l", "-e", "-o", "-a", "-l", "-a", "-H"]);
    assert_eq!(ours.len(), 4, "-a last, as separate words: {ours:?}");
}

/// The numbers of `ss -s`'s TCP line: total, estab, closed, orphaned, timewait.
fn tcp_line(summary: &str) -> Vec<u64> {
    let line = summary
        .lines()
        .find(|line| line.starts_with("TCP:"))
        .unwrap();
    line.split(|c: char| !c.is_ascii_digit())
        .filter(|word| !word.is_empty())
        .map(|number| number.parse().unwrap())
        .collect()
}

#[test]
#[ignore = "needs root: makes a network namespace"]
fn the_summary_is_ss_s() {
    let sockets = namespace_with_sockets();
    let sockls = tool_path("sockls");
    let before = sockets.output("ss", &["-s"]);
    let ours = sockets.output(sockls, &["-s"]);
    let after = sockets.output("ss", &["-s"]);
    // The namespace's own counts are ss's to the byte: one UDP socket, four TCP ones hashed
    // (two listeners, two ends of a connection, one of them IPv6).
    let without_tcp_line = |summary: &str| -> Vec<String> {
        summary
            .lines()
            .filter(|line| !line.starts_with("TCP:"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(without_tcp_line(&ours), without_tcp_line(&before), "{ours}");
    assert!(
        ours.contains("\nUDP\t  1         1         0        \n"),
        "{ours}"
    );
    assert!(
        ours.contains("\nTCP\t  4         3         1        \n"),
        "{ours}"
    );
    // The TCP line's allocated and orphaned sockets are the host's, which other programs'
    // sockets move: ours lies between ss's before and after, or equals one of them.
    let (before, ours, after) = (tcp_line(&before), tcp_line(&ours), tcp_line(&after));
    assert_eq!(ours[1], 2, "estab: the namespace's connection, both ends");
    assert_eq!(ours[4], 0, "no time-wait socket in the namespace");
    for i in [0, 2, 3] {
        let (low, high) = (before[i].min(after[i]), before[i].max(after[i]));
        assert!(
            (low..=high).contains(&ours[i]) || ours == before || ours == after,
            "ss before {before:?}, sockls {ours:?}, ss after {after:?}"
        );
    }
    let json: serde_json::Value =
        serde_json::from_str(&sockets.output(sockls, &["-s", "--json"])).unwrap();
    assert_eq!(json["tcp_ipv4"], 3);
    assert_eq!(json["tcp_ipv6"], 1);
    assert_eq!(json["tcp_estab"], 2);
    // --hostname-field: the machine first, in JSON and on each text line, as in records.
    let machine = sockets.output("hostname", &[]).trim().to_owned();
    let stamped = sockets.output(sockls, &["-s", "--json", "--hostname-field"]);
    assert!(
        stamped.starts_with(&format!("{{\"hostname\":\"{machine}\",\"total\":")),
        "{stamped}"
    );
    let stamped: serde_json::Value = serde_json::from_str(&stamped).unwrap();
    assert_eq!(stamped["tcp_ipv4"], 3);
    let text = sockets.output(sockls, &["-s", "--hostname-field"]);
    for line in text.lines().filter(|line| !line.is_empty()) {
        assert!(line.starts_with(&format!("{machine} ")), "{text}");
    }
}

/// A namespace where nobody (uid 65534) listens on 127.0.0.1:7000, has made four connections
/// to it and closed them, the accepted end first for two and the client's first for the other
/// two, so that both ends of a connection leave time-wait sockets, and holds one more open.
fn namespace_with_time_wait() -> Sockets {
    require_root();
    require_program("python3", &["-V"]);
    require_program("ss", &["-V"]);
    let netns = Netns::new("ssg-tw");
    let (child, line) = spawn_ready(netns.exec("python3").arg("-c").arg(
        "import os, socket, time\n\
         os.setgid(65534)\n\
         os.setuid(65534)\n\
         l = socket.socket()\n\
         l.bind(('127.0.0.1', 7000))\n\
         l.listen()\n\
         for i in range(4):\n\
         \x20   c = socket.socket()\n\
         \x20   c.connect(('127.0.0.1', 7000))\n\
         \x20   a, _ = l.accept()\n\
         \x20   first, second = (a, c) if i % 2 == 0 else (c, a)\n\
         \x20   first.close()\n\
         \x20   time.sleep(0.05)\n\
         \x20   second.close()\n\
         c = socket.socket()\n\
         c.connect(('127.0.0.1', 7000))\n\
         a, _ = l.accept()\n\
         print('ready', flush=True)\n\
         time.sleep(60)\n",
    ));
    let sockets = Sockets { child, netns };
    assert_eq!(line.trim(), "ready");
    sockets
}

#[test]
#[ignore = "needs root: makes a network namespace"]
fn time_wait_sockets_have_no_owner_as_in_ss() {
    let sockets = namespace_with_time_wait();
    let sockls = tool_path("sockls");
    // ss -e shows `uid:N` for a socket with an owner other than root, none for a time-wait
    // socket; every socket here but those is nobody's.
    let ss: HashMap<u64, Option<u64>> = sockets
        .output("ss", &["-taneH"])
        .lines()
        .map(|line| {
            let sk = u64::from_str_radix(ss_item(line, "sk").unwrap(), 16).unwrap();
            (sk, ss_item(line, "uid").map(|uid| uid.parse().unwrap()))
        })
        .collect();
    let records: Vec<serde_json::Value> = sockets
        .output(sockls, &["-ta", "--json"])
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let ours: HashMap<u64, Option<u64>> = records
        .iter()
        .map(|r| (r["cookie"].as_u64().unwrap(), r["uid"].as_u64()))
        .collect();
    assert_eq!(ours, ss);
    let time_wait: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r["state"] == "time-wait")
        .collect();
    assert!(time_wait.len() >= 4, "{records:?}");
    for record in &time_wait {
        assert_eq!(record["uid"], serde_json::Value::Null, "{record}");
        assert_eq!(record["user"], serde_json::Value::Null, "{record}");
    }
    assert_eq!(
        ours.values().filter(|uid| **uid == Some(65534)).count(),
        3,
        "the listener and both ends of the open connection: {records:?}"
    );
    // So --user root takes none of them, and the proc source agrees.
    assert_eq!(sockets.output(sockls, &["-ta", "--user", "root"]), "");
    for source in ["netlink", "proc"] {
        let nobodys = sockets.output(sockls, &["-ta", "--user", "nobody", "--source", source]);
        assert_eq!(nobodys.lines().count(), 3, "{source}: {nobodys}");
    }
    let from_proc = sockets.output(sockls, &["-ta", "--json", "--source", "proc"]);
    let unowned = from_proc
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|r| r["uid"].is_null())
        .count();
    assert_eq!(unowned, time_wait.len(), "{from_proc}");
}

#[test]
#[ignore = "needs root: makes a network namespace"]
fn dual_stack_sockets_show_a_star_as_in_ss() {
    require_root();
    require_program("python3", &["-V"]);
    require_program("ss", &["-V"]);
    let netns = Netns::new("ssg-v6only");
    // TCP listeners and UDP sockets on :: with IPV6_V6ONLY off and on, a listener on ::1
    // with it off, and an IPv4 connection to the dual-stack listener.
    let (child, line) = spawn_ready(netns.exec("python3").arg("-c").arg(
        "import socket, time\n\
         def six(kind, address, port, v6only):\n\
         \x20   s = socket.socket(socket.AF_INET6, kind)\n\
         \x20   s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, v6only)\n\
         \x20   s.bind((address, port))\n\
         \x20   if kind == socket.SOCK_STREAM:\n\
         \x20       s.listen()\n\
         \x20   return s\n\
         tcp, udp = socket.SOCK_STREAM, socket.SOCK_DGRAM\n\
         held = [six(tcp, '::', 7100, 0), six(tcp, '::', 7101, 1), six(udp, '::', 7102, 0),\n\
         \x20       six(udp, '::', 7103, 1), six(tcp, '::1', 7104, 0)]\n\
         c = socket.create_connection(('127.0.0.1', 7100))\n\
         a, _ = held[0].accept()\n\
         print('ready', flush=True)\n\
         time.sleep(60)\n",
    ));
    let sockets = Sockets { child, netns };
    assert_eq!(line.trim(), "ready");
    let sockls = tool_path("sockls");
    // ss: NETID STATE RECV-Q SEND-Q LOCAL PEER ino:N ... v6only:N; sockls's text: local and
    // remote are its fifth and sixth columns, the inode its eighth.
    let ss: HashMap<u64, (String, String, Option<bool>)> = sockets
        .output("ss", &["-tuaneH"])
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let inode = ss_item(line, "ino").unwrap().parse().unwrap();
            let v6only = ss_item(line, "v6only").map(|set| set == "1");
            (inode, (fields[4].to_owned(), fields[5].to_owned(), v6only))
        })
        .collect();
    assert_eq!(ss.len(), 7, "{ss:?}");
    let v6only: HashMap<u64, Option<bool>> = sockets
        .output(sockls, &["-tua", "--json"])
        .lines()
        .map(|line| {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            (
                record["inode"].as_u64().unwrap(),
                record["v6only"].as_bool(),
            )
        })
        .collect();
    let ours: HashMap<u64, (String, String, Option<bool>)> = sockets
        .output(sockls, &["-tuaH"])
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let inode = fields[7].parse().unwrap();
            let ends = (fields[4].to_owned(), fields[5].to_owned(), v6only[&inode]);
            (inode, ends)
        })
        .collect();
    assert_eq!(ours, ss);
    let locals: BTreeSet<&str> = ours.values().map(|(local, _, _)| local.as_str()).collect();
    for expected in ["*:7100", "[::]:7101", "*:7102", "[::]:7103", "[::1]:7104"] {
        assert!(locals.contains(expected), "{expected}: {ours:?}");
    }
    // The CSV has the field too, after the others.
    let csv = sockets.output(sockls, &["-tl", "--csv", "--port", "7100"]);
    let mut lines = csv.lines();
    assert!(
        lines.next().unwrap().ends_with(",timer_retrans,v6only"),
        "{csv}"
    );
    assert!(lines.next().unwrap().ends_with(",false"), "{csv}");
}
