//! End-to-end tests of sockls: the test opens real sockets on loopback and in the file
//! system, runs the built binary, and finds each socket with the test's own pid; a
//! differential test holds sockls against `ss` run at the same moment.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

use crate::fixtures::{
    Netns, assert_full_disk_is_an_error, assert_quiet_on_closed_pipe, require_program, require_root,
};
use crate::util::{LIMIT, code, run, spawn_ready, stderr_text, stdout_text, tool};

/// The socket inode behind one of our fds, as /proc shows it.
fn inode_of(fd: &impl AsRawFd) -> u64 {
    inode_of_raw(fd.as_raw_fd())
}

fn inode_of_raw(fd: RawFd) -> u64 {
    std::fs::metadata(format!("/proc/self/fd/{fd}"))
        .expect("stat our own fd")
        .ino()
}

/// The test's effective uid: the owner of its /proc entry.
fn my_uid() -> u64 {
    u64::from(std::fs::metadata("/proc/self").unwrap().uid())
}

/// Runs sockls with `args` and parses its NDJSON, failing on any problem it reports.
fn records(args: &[&str]) -> Vec<Value> {
    let output = run(tool("sockls").args(args).arg("--json"), LIMIT);
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    stdout_text(&output)
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object a line"))
        .collect()
}

fn by_inode(records: &[Value], inode: u64) -> Vec<&Value> {
    records
        .iter()
        .filter(|r| r["inode"].as_u64() == Some(inode))
        .collect()
}

/// The sockets a test holds open while sockls looks at them.
struct Fixture {
    _dir: TempDir,
    tcp4: TcpListener,
    tcp6: Option<TcpListener>,
    client: TcpStream,
    server: TcpStream,
    udp: UdpSocket,
    unix_listener: UnixListener,
    unix_path: String,
    dgram: UnixDatagram,
}

/// A directory removed when the test ends.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A new directory for one test's sockets.
fn temp_dir(tag: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("sockls-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

fn fixture(tag: &str) -> Fixture {
    let temp = temp_dir(tag);
    let dir = temp.0.clone();
    let tcp4 = TcpListener::bind("127.0.0.1:0").unwrap();
    // IPv6 may be disabled on a CI host; the IPv4 checks still run.
    let tcp6 = TcpListener::bind("[::1]:0").ok();
    let client = TcpStream::connect(tcp4.local_addr().unwrap()).unwrap();
    let (server, _) = tcp4.accept().unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let unix_path = dir.join("listener.sock").to_string_lossy().into_owned();
    let unix_listener = UnixListener::bind(&unix_path).unwrap();
    let dgram = UnixDatagram::bind(dir.join("dgram.sock")).unwrap();
    Fixture {
        _dir: temp,
        tcp4,
        tcp6,
        client,
        server,
        udp,
        unix_listener,
        unix_path,
        dgram,
    }
}

fn port(value: &Value) -> u16 {
    u16::try_from(value.as_u64().expect("a port")).unwrap()
}

#[test]
fn lists_the_tests_own_sockets_with_their_owner() {
    let f = fixture("own");
    let all = records(&["-a", "-p"]);
    let me = u64::from(std::process::id());
    let check = |fd: &dyn AsRawFd, proto: &str, state: &str| -> Value {
        let inode = inode_of_raw(fd.as_raw_fd());
        let found = by_inode(&all, inode);
        let mine: Vec<&&Value> = found.iter().filter(|r| r["pid"] == me).collect();
        assert_eq!(mine.len(), 1, "{proto} {state} inode {inode}: {found:?}");
        let record = (*mine[0]).clone();
        assert_eq!(record["proto"], proto);
        assert_eq!(record["state"], state);
        assert_eq!(record["owner"], "known");
        assert_eq!(record["fd"], fd.as_raw_fd());
        assert!(record["comm"].is_string());
        assert!(record["cookie"].is_u64(), "netlink gives cookies: {record}");
        record
    };
    let listener = check(&f.tcp4, "tcp", "listen");
    assert_eq!(
        port(&listener["local_port"]),
        f.tcp4.local_addr().unwrap().port()
    );
    assert_eq!(listener["local_address"], "127.0.0.1");
    assert_eq!(listener["family"], "ipv4");
    if let Some(tcp6) = &f.tcp6 {
        let record = check(tcp6, "tcp", "listen");
        assert_eq!(record["family"], "ipv6");
        assert_eq!(record["local_address"], "::1");
    }
    let client = check(&f.client, "tcp", "established");
    assert_eq!(
        port(&client["remote_port"]),
        f.tcp4.local_addr().unwrap().port()
    );
    assert_eq!(
        port(&client["local_port"]),
        f.client.local_addr().unwrap().port()
    );
    let server = check(&f.server, "tcp", "established");
    assert_eq!(
        port(&server["remote_port"]),
        f.client.local_addr().unwrap().port()
    );
    let udp = check(&f.udp, "udp", "unconn");
    assert_eq!(port(&udp["local_port"]), f.udp.local_addr().unwrap().port());
    let unix = check(&f.unix_listener, "unix", "listen");
    assert_eq!(unix["path"], f.unix_path.as_str());
    assert_eq!(unix["sock_type"], "stream");
    assert_eq!(unix["uid"], my_uid());
    let dgram = check(&f.dgram, "unix", "unconn");
    assert_eq!(dgram["sock_type"], "dgram");
}

#[test]
fn the_proc_source_gives_the_same_records() {
    let f = fixture("proc");
    let same = |record: &Value| {
        // What both sources know: everything but the cookie, the UNIX peer and uid, and the
        // queues of listeners (ss and /proc/net define them differently).
        let mut record = record.clone();
        for field in ["cookie", "peer", "user"] {
            record[field] = Value::Null;
        }
        if record["proto"] == "unix" {
            record["uid"] = Value::Null;
        }
        if record["state"] == "listen" {
            record["recv_q"] = Value::Null;
            record["send_q"] = Value::Null;
        }
        record
    };
    // Raw sockets are left out: kernels without raw_diag cannot list them over netlink.
    let netlink = records(&["-tuxa", "--source", "netlink"]);
    let proc = records(&["-tuxa", "--source", "proc"]);
    let fds = [
        f.tcp4.as_raw_fd(),
        f.client.as_raw_fd(),
        f.server.as_raw_fd(),
        f.udp.as_raw_fd(),
        f.unix_listener.as_raw_fd(),
        f.dgram.as_raw_fd(),
    ];
    for fd in fds {
        let inode = inode_of_raw(fd);
        let a = by_inode(&netlink, inode);
        let b = by_inode(&proc, inode);
        assert_eq!(a.len(), 1, "netlink, inode {inode}");
        assert_eq!(b.len(), 1, "proc, inode {inode}");
        assert_eq!(same(a[0]), same(b[0]));
        assert!(b[0]["cookie"].is_null());
    }
}

#[test]
fn filters_select_like_ss() {
    let f = fixture("filter");
    let listen_port = f.tcp4.local_addr().unwrap().port();
    let listener = inode_of(&f.tcp4);
    let client = inode_of(&f.client);
    let udp = inode_of(&f.udp);
    let unix = inode_of(&f.unix_listener);

    let listening = records(&["-l"]);
    assert_eq!(by_inode(&listening, listener).len(), 1);
    assert_eq!(
        by_inode(&listening, udp).len(),
        1,
        "-l shows unconnected UDP, as ss -l"
    );
    assert!(by_inode(&listening, client).is_empty());
    assert!(
        listening
            .iter()
            .all(|r| r["state"] == "listen" || r["state"] == "unconn")
    );

    let connected = records(&["-t"]);
    assert_eq!(by_inode(&connected, client).len(), 1);
    assert!(
        by_inode(&connected, listener).is_empty(),
        "no listeners by default"
    );
    assert!(connected.iter().all(|r| r["proto"] == "tcp"));

    let port = listen_port.to_string();
    let on_port = records(&["-ta", "--port", &port]);
    let inodes: BTreeSet<u64> = on_port.iter().filter_map(|r| r["inode"].as_u64()).collect();
    assert_eq!(
        inodes,
        BTreeSet::from([listener, client, inode_of(&f.server)]),
        "the listener and both ends of the connection"
    );
    let sport = records(&["-ta", "--sport", &port]);
    assert!(by_inode(&sport, client).is_empty());
    assert_eq!(by_inode(&sport, listener).len(), 1);
    let dport = records(&["-ta", "--dport", &port]);
    assert_eq!(
        dport
            .iter()
            .filter_map(|r| r["inode"].as_u64())
            .collect::<Vec<_>>(),
        [client]
    );

    let established = records(&["-t", "--state", "established", "--port", &port]);
    assert_eq!(established.len(), 2);
    let v6 = records(&["-6", "-a"]);
    assert!(v6.iter().all(|r| r["family"] == "ipv6"));
    let unix_only = records(&["-xa"]);
    assert!(unix_only.iter().all(|r| r["proto"] == "unix"));
    assert_eq!(by_inode(&unix_only, unix).len(), 1);

    let me = std::process::id().to_string();
    let mine = records(&["-ta", "--pid", &me]);
    assert!(
        mine.iter()
            .all(|r| r["pid"].as_u64() == Some(std::process::id().into()))
    );
    assert_eq!(by_inode(&mine, listener).len(), 1);
    let uid = my_uid().to_string();
    let by_user = records(&["-ta", "--user", &uid]);
    assert_eq!(by_inode(&by_user, listener).len(), 1);
    let other_user = records(&["-ta", "--user", "4242424"]);
    assert!(other_user.is_empty());
}

#[test]
fn text_output_is_one_socket_a_line_for_svcname() {
    let f = fixture("text");
    let port = f.tcp4.local_addr().unwrap().port().to_string();
    let output = run(tool("sockls").args(["-tl", "-p", "--sport", &port]), LIMIT);
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    let text = stdout_text(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "piped output has no header: {text}");
    let fields: Vec<&str> = lines[0].split(' ').collect();
    assert_eq!(fields[0], "tcp");
    assert_eq!(fields[1], "listen");
    assert_eq!(fields[4], format!("127.0.0.1:{port}"));
    assert_eq!(fields[5], "0.0.0.0:*");
    assert_eq!(
        fields[8],
        format!("{}/{}", std::process::id(), f.tcp4.as_raw_fd())
    );
    let output = run(
        tool("sockls").args(["-tl", "--header", "--sport", &port]),
        LIMIT,
    );
    let text = stdout_text(&output);
    assert!(
        text.starts_with("proto state recv_q send_q local remote user inode owner comm netns\n")
    );

    let csv = run(
        tool("sockls").args(["-tl", "--csv", "--sport", &port]),
        LIMIT,
    );
    let csv_text = stdout_text(&csv);
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let header = reader.headers().unwrap().clone();
    assert_eq!(&header[0], "proto");
    assert!(header.iter().any(|h| h == "local_port"));
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1);
}

#[test]
fn a_closed_pipe_is_quiet_and_a_full_disk_is_an_error() {
    let _f = fixture("pipe");
    assert_quiet_on_closed_pipe(tool("sockls").arg("-a"));
    assert_full_disk_is_an_error("sockls", tool("sockls").arg("-a"));
}

#[test]
fn bad_usage_is_one_line_and_status_2() {
    for args in [
        &["--state", "listen-ish"][..],
        &["--port", "0"],
        &["--sport", "x"],
        &["--pid", "me"],
    ] {
        let output = run(tool("sockls").args(args), LIMIT);
        assert_eq!(code(&output), 2, "{args:?}");
        assert!(stderr_text(&output).starts_with("sockls: "), "{args:?}");
        assert!(stdout_text(&output).is_empty());
    }
    let output = run(tool("sockls").args(["-l", "--state", "listen"]), LIMIT);
    assert_eq!(code(&output), 2, "clap rejects conflicting options");
}

/// A user that is not there is reported and the rest listed, status 1, as ps -u and
/// proctree do (not a usage error: the command line is right, the machine lacks the user).
#[test]
fn an_unknown_user_is_reported_and_the_others_listed() {
    let _f = fixture("unknown-user");
    let output = run(
        tool("sockls").args(["-tl", "--user", "no-such-user-sockls,root"]),
        LIMIT,
    );
    assert_eq!(code(&output), 1);
    assert_eq!(
        stderr_text(&output),
        "sockls: --user 'no-such-user-sockls': no such user\n"
    );
    let alone = run(tool("sockls").args(["-tl", "--user", "root"]), LIMIT);
    let rows = |text: String| text.lines().count();
    assert_eq!(rows(stdout_text(&output)), rows(stdout_text(&alone)));
}

#[test]
#[ignore = "needs root: runs sockls as another user"]
fn owners_that_cannot_be_read_are_reported_as_denied() {
    require_root();
    let f = fixture("denied");
    let port = f.tcp4.local_addr().unwrap().port().to_string();
    let mut command = tool("sockls");
    command
        .args(["-tl", "-p", "--json", "--sport", &port])
        .uid(65534)
        .gid(65534);
    // The binary must be reachable by that user: a build under a private home is not.
    let output = match command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
    {
        Ok(output) => output,
        // A build under a private home cannot be run by that user: a failure to mend (build
        // where every user can reach the binary), not a pass.
        Err(error) => panic!("running sockls as user 65534: {error}"),
    };
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    let record: Value = serde_json::from_str(stdout_text(&output).trim()).unwrap();
    assert_eq!(record["owner"], "denied");
    assert!(record["pid"].is_null());
    // A time-wait socket belongs to no process.
    drop(f.client);
    drop(f.server);
    // The closing handshake on loopback is quick but not instant: look a few times.
    let mut time_wait = Vec::new();
    for _ in 0..40 {
        let output = run(
            tool("sockls").args([
                "-t",
                "--state",
                "time-wait",
                "-p",
                "--json",
                "--port",
                &port,
            ]),
            LIMIT,
        );
        assert_eq!(code(&output), 0, "{}", stderr_text(&output));
        time_wait = stdout_text(&output)
            .lines()
            .map(|line| serde_json::from_str::<Value>(line).unwrap())
            .collect();
        if !time_wait.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(!time_wait.is_empty(), "no time-wait socket on port {port}");
    for record in &time_wait {
        assert_eq!(record["owner"], "none");
    }
}

/// One socket as `ss` shows it.
#[derive(Debug, PartialEq, Eq, Clone)]
struct SsSocket {
    netid: String,
    state: String,
    local_port: String,
    remote_port: String,
    owners: BTreeSet<(u64, u64)>,
}

/// Parses `ss -Htuanpe` or `ss -Hxap` lines, by inode.
fn parse_ss(text: &str, unix: bool) -> HashMap<u64, SsSocket> {
    let mut found = HashMap::new();
    for line in text.lines() {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        // ss prints process names and paths raw: a newline in one (the tests below make
        // such names) starts a line that is no socket's.
        if tokens.len() < 6 || !["tcp", "udp", "u_str", "u_dgr", "u_seq"].contains(&tokens[0]) {
            continue;
        }
        let inode = if unix {
            tokens[5].parse().ok()
        } else {
            tokens
                .iter()
                .find_map(|t| t.strip_prefix("ino:").and_then(|n| n.parse().ok()))
        };
        let Some(inode) = inode.filter(|&i: &u64| i != 0) else {
            continue;
        };
        let port = |t: &str| t.rsplit(':').next().unwrap_or(t).to_owned();
        let (local_port, remote_port) = if unix {
            (
                tokens[4].to_owned(),
                tokens.get(7).copied().unwrap_or("").to_owned(),
            )
        } else {
            (port(tokens[4]), port(tokens[5]))
        };
        let mut owners = BTreeSet::new();
        let mut rest = line;
        while let Some(at) = rest.find("pid=") {
            rest = &rest[at + 4..];
            let pid: String = rest.chars().take_while(char::is_ascii_digit).collect();
            let fd_at = rest.find("fd=").unwrap() + 3;
            let fd: String = rest[fd_at..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            owners.insert((pid.parse().unwrap(), fd.parse().unwrap()));
        }
        found.insert(
            inode,
            SsSocket {
                netid: tokens[0].to_owned(),
                state: tokens[1].to_owned(),
                local_port,
                remote_port,
                owners,
            },
        );
    }
    found
}

/// sockls's records in the shape of `parse_ss`, by inode.
fn as_ss(records: &[Value]) -> HashMap<u64, SsSocket> {
    let mut found: HashMap<u64, SsSocket> = HashMap::new();
    for r in records {
        let Some(inode) = r["inode"].as_u64().filter(|&i| i != 0) else {
            continue;
        };
        let unix = r["proto"] == "unix";
        let netid = match (
            r["proto"].as_str().unwrap(),
            r["sock_type"].as_str().unwrap(),
        ) {
            ("unix", "stream") => "u_str",
            ("unix", "dgram") => "u_dgr",
            ("unix", _) => "u_seq",
            (proto, _) => proto,
        };
        let state = match r["state"].as_str().unwrap() {
            "established" => "ESTAB".to_owned(),
            other => other.to_ascii_uppercase(),
        };
        let ss_port = |v: &Value| match v.as_u64() {
            Some(0) | None => "*".to_owned(),
            Some(p) => p.to_string(),
        };
        let (local_port, remote_port) = if unix {
            (
                r["path"].as_str().unwrap_or("*").to_owned(),
                r["peer"].as_u64().unwrap_or(0).to_string(),
            )
        } else {
            (ss_port(&r["local_port"]), ss_port(&r["remote_port"]))
        };
        let entry = found.entry(inode).or_insert_with(|| SsSocket {
            netid: netid.to_owned(),
            state,
            local_port,
            remote_port,
            owners: BTreeSet::new(),
        });
        if let (Some(pid), Some(fd)) = (r["pid"].as_u64(), r["fd"].as_u64()) {
            entry.owners.insert((pid, fd));
        }
    }
    found
}

/// Runs ss and sockls back to back and compares the sockets both saw; sockets opened or
/// closed between the two runs, and processes that came or went, are the only differences
/// tolerated. The test's own sockets must be in both.
fn compare_with_ss(
    ss_args: &[&str],
    sockls_args: &[&str],
    unix: bool,
    mine: &[u64],
) -> Result<(), String> {
    let ss = Command::new("ss")
        .args(ss_args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running ss: {e}"))?;
    let ours = records(sockls_args);
    let theirs = parse_ss(&String::from_utf8_lossy(&ss.stdout), unix);
    let ours = as_ss(&ours);
    for inode in mine {
        if !theirs.contains_key(inode) || !ours.contains_key(inode) {
            return Err(format!(
                "socket {inode}: ss {:?}, sockls {:?}",
                theirs.get(inode),
                ours.get(inode)
            ));
        }
    }
    // Pids seen by only one of the runs are processes that came or went in between.
    let pids = |map: &HashMap<u64, SsSocket>| -> BTreeSet<u64> {
        map.values()
            .flat_map(|s| s.owners.iter().map(|o| o.0))
            .collect()
    };
    let stable: BTreeSet<u64> = pids(&theirs).intersection(&pids(&ours)).copied().collect();
    let mut compared = 0;
    for (inode, theirs) in &theirs {
        let Some(ours) = ours.get(inode) else {
            continue;
        };
        let keep = |s: &SsSocket| {
            let mut s = s.clone();
            s.owners.retain(|o| stable.contains(&o.0));
            s
        };
        if keep(theirs) != keep(ours) {
            return Err(format!("socket {inode}: ss {theirs:?}, sockls {ours:?}"));
        }
        compared += 1;
    }
    if compared < mine.len() {
        return Err(format!("only {compared} sockets in common"));
    }
    Ok(())
}

#[test]
fn agrees_with_ss_on_the_same_sockets() {
    require_program("ss", &["-V"]);
    let f = fixture("ss");
    let inet = [
        inode_of(&f.tcp4),
        inode_of(&f.client),
        inode_of(&f.server),
        inode_of(&f.udp),
    ];
    let unix = [inode_of(&f.unix_listener), inode_of(&f.dgram)];
    let _pair = UnixStream::pair().unwrap();
    let mut last = Ok(());
    // Up to three tries: another process may change a socket between the two runs.
    for _ in 0..3 {
        last = compare_with_ss(&["-Htuanpe"], &["-tua", "-p"], false, &inet)
            .and_then(|()| compare_with_ss(&["-Hxap"], &["-xa", "-p"], true, &unix));
        if last.is_ok() {
            break;
        }
    }
    last.unwrap();
}

#[test]
fn tcp_internals_and_memory_come_with_i_and_m() {
    let f = fixture("info");
    let client = inode_of(&f.client);
    let unix = inode_of(&f.unix_listener);
    let with_info = records(&["-t", "-i"]);
    let record = by_inode(&with_info, client)[0];
    assert!(
        record["rtt_ms"].as_f64().is_some_and(|rtt| rtt > 0.0),
        "{record}"
    );
    assert!(record["cwnd"].as_u64().is_some_and(|cwnd| cwnd > 0));
    assert_eq!(record["retransmits"], 0);
    assert!(
        record["congestion"]
            .as_str()
            .is_some_and(|name| !name.is_empty())
    );
    assert!(record["rcvbuf"].is_null(), "memory only with -m");
    let with_memory = records(&["-tx", "-a", "-m"]);
    for inode in [client, unix] {
        let record = by_inode(&with_memory, inode)[0];
        assert!(
            record["rcvbuf"].as_u64().is_some_and(|size| size > 0),
            "{record}"
        );
        assert!(record["rtt_ms"].is_null(), "internals only with -i");
    }
    let plain = records(&["-t"]);
    assert!(by_inode(&plain, client)[0]["cwnd"].is_null());
}

/// A network namespace made for one test, with a process listening in it; both removed at
/// the end (the process first).
struct Namespace {
    child: Child,
    netns: Netns,
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Makes a namespace with a TCP listener on 127.0.0.1:`port` held by a python process that
/// exits by itself after 60 s.
fn namespace_with_listener(port: u16) -> Namespace {
    let netns = Netns::new("sockls-test");
    let (child, line) = spawn_ready(netns.exec("python3").arg("-c").arg(format!(
        "import socket, time\n\
             s = socket.socket()\n\
             s.bind(('127.0.0.1', {port}))\n\
             s.listen()\n\
             print('ready', flush=True)\n\
             time.sleep(60)\n"
    )));
    let namespace = Namespace { child, netns };
    assert_eq!(line.trim(), "ready");
    namespace
}

/// Fails the test unless python3, which the helper processes of some tests run in, is
/// installed.
fn require_python() {
    require_program("python3", &["-V"]);
}

/// A process that has renamed itself (prctl PR_SET_NAME, as any program may) and listens on
/// a TCP port of 127.0.0.1, or on a UNIX socket; killed when dropped.
struct Renamed {
    child: Child,
    /// The fd of its listener.
    fd: u64,
    /// Its TCP listener's port; 0 for a UNIX listener.
    port: u16,
    /// The base64 of the UNIX listener's path, as python encodes it.
    path_base64: String,
}

impl Renamed {
    fn pid(&self) -> u64 {
        u64::from(self.child.id())
    }
}

impl Drop for Renamed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a python3 process named `name` that listens on TCP, or on the UNIX socket `path`.
fn renamed(name: &[u8], path: Option<&[u8]>) -> Renamed {
    let hex = |bytes: &[u8]| {
        bytes.iter().fold(String::new(), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
    };
    let (child, line) = spawn_ready(
        Command::new("python3")
            .args([
                "-c",
                "import base64, ctypes, socket, sys, time\n\
             name, path = bytes.fromhex(sys.argv[1]), bytes.fromhex(sys.argv[2])\n\
             ctypes.CDLL(None).prctl(15, name, 0, 0, 0)  # PR_SET_NAME\n\
             if path:\n\
             \x20   s = socket.socket(socket.AF_UNIX)\n\
             \x20   s.bind(path)\n\
             else:\n\
             \x20   s = socket.socket()\n\
             \x20   s.bind(('127.0.0.1', 0))\n\
             s.listen()\n\
             port = 0 if path else s.getsockname()[1]\n\
             print(s.fileno(), port, base64.b64encode(path).decode() or '-', flush=True)\n\
             time.sleep(60)\n",
            ])
            .arg(hex(name))
            .arg(hex(path.unwrap_or_default())),
    );
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields.len(), 3, "the helper said {line:?}");
    Renamed {
        fd: fields[0].parse().unwrap(),
        port: fields[1].parse().unwrap(),
        path_base64: fields[2].to_owned(),
        child,
    }
}

/// The rows of sockls's CSV output, as bytes (a raw byte that is not UTF-8 must fail the
/// test's assertions, not its CSV reader), after checking that no cell holds a control
/// character: each record is one line.
fn csv_rows(args: &[&str]) -> (csv::ByteRecord, Vec<csv::ByteRecord>) {
    let output = run(tool("sockls").args(args).arg("--csv"), LIMIT);
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    let raw: Vec<u8> = output
        .stdout
        .iter()
        .copied()
        .filter(|&b| b < 0x20 && b != b'\n')
        .collect();
    assert!(
        raw.is_empty(),
        "control bytes {raw:?} in {:?}",
        stdout_text(&output)
    );
    let mut reader = csv::Reader::from_reader(output.stdout.as_slice());
    let header = reader.byte_headers().unwrap().clone();
    let rows: Vec<csv::ByteRecord> = reader.byte_records().map(Result::unwrap).collect();
    assert_eq!(
        stdout_text(&output).lines().count(),
        rows.len() + 1,
        "one line a row: {}",
        stdout_text(&output)
    );
    (header, rows)
}

/// The cell of column `name` in `row`, as text.
fn cell(header: &csv::ByteRecord, row: &csv::ByteRecord, name: &str) -> String {
    let at = header.iter().position(|h| h == name.as_bytes()).unwrap();
    String::from_utf8_lossy(&row[at]).into_owned()
}

/// The one line of sockls's text output for `args`, split into its fields.
fn text_fields(args: &[&str]) -> Vec<String> {
    let output = run(tool("sockls").args(args), LIMIT);
    assert_eq!(code(&output), 0, "{}", stderr_text(&output));
    let text = stdout_text(&output);
    assert_eq!(text.lines().count(), 1, "one socket, one line: {text:?}");
    text.trim_end_matches('\n')
        .split(' ')
        .map(str::to_owned)
        .collect()
}

/// A live process whose name is not UTF-8 was once reported `gone`, its name lost.
#[test]
fn an_owner_whose_name_is_not_utf8_is_known_and_its_name_kept() {
    require_python();
    let holder = renamed(b"bad\xff\xfe\x1b[1m", None);
    let port = holder.port.to_string();
    let args = ["-tl", "-p", "--sport", port.as_str()];

    let listed = records(&args);
    assert_eq!(listed.len(), 1, "{listed:?}");
    let record = &listed[0];
    assert_eq!(record["owner"], "known", "{record}");
    assert_eq!(record["pid"], holder.pid());
    assert_eq!(record["fd"], holder.fd);
    let comm = json!({"base64": "YmFk//4bWzFt", "lossy": "bad\u{fffd}\u{fffd}\u{1b}[1m"});
    assert_eq!(record["comm"], comm);
    // As proctree keeps the same name.
    let pid = holder.pid().to_string();
    let tree = run(tool("proctree").args(["--json", "--pid", &pid]), LIMIT);
    assert_eq!(code(&tree), 0, "{}", stderr_text(&tree));
    let process: Value = serde_json::from_str(stdout_text(&tree).lines().next().unwrap()).unwrap();
    assert_eq!(process["pid"], holder.pid());
    assert_eq!(process["comm"], comm);

    let fields = text_fields(&args);
    assert_eq!(fields[8], format!("{pid}/{}", holder.fd));
    assert_eq!(fields[9], r"bad\xff\xfe\x1b[1m");

    let (header, rows) = csv_rows(&args);
    assert_eq!(rows.len(), 1);
    assert_eq!(cell(&header, &rows[0], "owner"), "known");
    assert_eq!(cell(&header, &rows[0], "pid"), pid);
    assert_eq!(cell(&header, &rows[0], "comm"), r"bad\xff\xfe\x1b[1m");
}

/// UNIX socket paths and process names are untrusted bytes. Text and CSV escape
/// them as proctree does (`\xHH`, `\n`), JSON keeps them (base64 when not UTF-8), and both
/// sources agree.
#[test]
fn untrusted_paths_and_names_are_escaped_in_text_and_csv_and_kept_in_json() {
    require_python();
    let dir = temp_dir("bytes");
    let plain = dir.0.to_str().unwrap();
    assert!(
        !plain.contains(['\\', ' ']),
        "the escaping below assumes {plain:?}"
    );
    let mut path = dir.0.as_os_str().as_bytes().to_vec();
    path.extend_from_slice(b"/s\x1b[31m\x07\n\xff\xfe.sock");
    let holder = renamed(b"c\x1b[1m\x07\nd", Some(&path));
    let pid = holder.pid().to_string();
    let args = ["-xl", "-p", "--pid", pid.as_str()];
    let escaped_path = format!(r"{plain}/s\x1b[31m\x07\n\xff\xfe.sock");
    let escaped_name = r"c\x1b[1m\x07\nd";

    let fields = text_fields(&args);
    assert_eq!(fields[0], "u_str");
    assert_eq!(fields[4], escaped_path);
    assert_eq!(fields[8], format!("{pid}/{}", holder.fd));
    assert_eq!(fields[9], escaped_name);

    let (header, rows) = csv_rows(&args);
    assert_eq!(rows.len(), 1);
    assert_eq!(cell(&header, &rows[0], "path"), escaped_path);
    assert_eq!(cell(&header, &rows[0], "comm"), escaped_name);

    let lossy = String::from_utf8_lossy(&path);
    for source in ["netlink", "proc"] {
        let listed = records(&[&args[..], &["--source", source]].concat());
        assert_eq!(listed.len(), 1, "{source}: {listed:?}");
        let record = &listed[0];
        assert_eq!(
            record["path"],
            json!({"base64": holder.path_base64, "lossy": lossy}),
            "{source}"
        );
        assert_eq!(record["comm"], "c\u{1b}[1m\u{7}\nd", "{source}");
        assert_eq!(record["owner"], "known", "{source}");
    }
}

#[test]
#[ignore = "needs root: makes a network namespace"]
fn other_network_namespaces_are_listed_with_their_owners() {
    require_root();
    require_python();
    // A port our own namespace is unlikely to use; the namespace is new and empty.
    let namespace = namespace_with_listener(4321);
    let pid = u64::from(namespace.child.id());
    let listed = records(&["-tl", "-p", "--netns", &namespace.netns.name]);
    assert_eq!(listed.len(), 1, "{listed:?}");
    let record = &listed[0];
    assert_eq!(record["local_port"], 4321);
    assert_eq!(record["netns"], namespace.netns.name.as_str());
    assert_eq!(record["pid"], pid, "ip netns exec becomes python3");
    let inode = record["inode"].as_u64().unwrap();

    let by_pid = records(&["-tl", "--netns", &format!("pid:{pid}")]);
    assert_eq!(by_inode(&by_pid, inode)[0]["netns"], format!("pid:{pid}"));
    let by_path = format!("/run/netns/{}", namespace.netns.name);
    assert_eq!(
        by_inode(&records(&["-tl", "--netns", &by_path]), inode).len(),
        1
    );

    let ours = records(&["-tl"]);
    assert!(by_inode(&ours, inode).is_empty(), "not in our namespace");
    assert!(ours.iter().all(|r| r["netns"].is_null()));

    let everywhere = records(&["-tl", "--all-netns"]);
    let found = by_inode(&everywhere, inode);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["netns"], namespace.netns.name.as_str());
    assert!(everywhere.iter().all(|r| r["netns"].is_string()));

    let missing = run(tool("sockls").args(["--netns", "sockls-no-such-ns"]), LIMIT);
    assert_eq!(code(&missing), 1);
    assert!(stderr_text(&missing).starts_with("sockls: network namespace sockls-no-such-ns: "));
}

#[test]
#[ignore = "needs root: opens a raw socket"]
fn raw_sockets_are_listed_with_netlink_or_from_proc() {
    require_root();
    require_python();
    let (mut child, line) = spawn_ready(Command::new("python3").args([
        "-c",
        "import socket, os, time\n\
         s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)\n\
         print(os.stat(f'/proc/self/fd/{s.fileno()}').st_ino, s.fileno(), flush=True)\n\
         time.sleep(30)\n",
    ]));
    let ids: Vec<u64> = line
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    // Kernels without raw_diag answer the netlink dump with ENOENT; sockls then reads
    // /proc/net/raw by itself, so the socket is there either way.
    let listed = records(&["-wa", "-p"]);
    let _ = child.kill();
    let _ = child.wait();
    let found = by_inode(&listed, ids[0]);
    assert_eq!(found.len(), 1, "{listed:?}");
    assert_eq!(found[0]["proto"], "raw");
    assert_eq!(found[0]["local_port"], 1, "the ICMP protocol number");
    assert_eq!(found[0]["pid"], u64::from(child.id()));
    assert_eq!(found[0]["fd"], ids[1]);
}

#[test]
fn port_filters_run_in_the_kernel() {
    let f = fixture("bytecode");
    let port = f.tcp4.local_addr().unwrap().port();
    let udp_port = f.udp.local_addr().unwrap().port();
    // --source netlink: a program the kernel refused would be an error, not a fallback.
    let either = records(&["-tua", "--source", "netlink", "--port", &port.to_string()]);
    // Inode 0 is a time-wait socket: another test's closed connection may have used this
    // port number as its ephemeral port a moment ago.
    let inodes: BTreeSet<u64> = either
        .iter()
        .filter_map(|r| r["inode"].as_u64())
        .filter(|&inode| inode != 0)
        .collect();
    assert_eq!(
        inodes,
        BTreeSet::from([inode_of(&f.tcp4), inode_of(&f.client), inode_of(&f.server)])
    );
    let range = format!("{}-{}", port.saturating_sub(1), port.saturating_add(1));
    let by_range = records(&["-ta", "--source", "netlink", "--sport", &range]);
    assert_eq!(by_inode(&by_range, inode_of(&f.tcp4)).len(), 1);
    assert!(by_inode(&by_range, inode_of(&f.client)).is_empty());
    let udp_only = records(&[
        "-tua",
        "--source",
        "netlink",
        "--port",
        &format!("U:{udp_port}"),
    ]);
    assert_eq!(
        udp_only
            .iter()
            .filter_map(|r| r["inode"].as_u64())
            .filter(|&inode| inode != 0)
            .collect::<Vec<_>>(),
        [inode_of(&f.udp)]
    );
    let both = records(&[
        "-ta",
        "--source",
        "netlink",
        "--sport",
        &port.to_string(),
        "--dport",
        &f.client.local_addr().unwrap().port().to_string(),
    ]);
    assert_eq!(
        both.iter()
            .filter_map(|r| r["inode"].as_u64())
            .filter(|&inode| inode != 0)
            .collect::<Vec<_>>(),
        [inode_of(&f.server)]
    );
}

/// A netlink dump that really fails part way: strace makes the binary's second recvfrom fail
/// with ENOBUFS, in the middle of the TCP/IPv4 dump (the test's 401 sockets take more than
/// one of the kernel's 32 KiB datagrams). The sockets the dump gave are listed, the rest of
/// the table comes from /proc with none twice, the failure is reported and the status is 1;
/// and the next table (TCP/IPv6) comes over netlink again, on a new socket, since the old
/// one is still in the abandoned dump.
#[test]
fn a_dump_that_fails_part_way_is_reported_and_completed_from_proc() {
    require_program("strace", &["-o", "/dev/null", "true"]);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp6 = TcpListener::bind("[::1]:0").ok();
    let mut ours = BTreeSet::from([inode_of(&listener)]);
    let mut held = Vec::new();
    for _ in 0..200 {
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        ours.extend([inode_of(&client), inode_of(&server)]);
        held.push((client, server));
    }
    let dir = std::env::temp_dir().join(format!("sockls-inject-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _dir = TempDir(dir.clone());
    let log = dir.join("strace.log");
    let output = run(
        Command::new("strace")
            .arg("-o")
            .arg(&log)
            .args([
                "-e",
                "trace=recvfrom",
                "-e",
                "inject=recvfrom:error=ENOBUFS:when=2",
            ])
            .arg(env!("CARGO_BIN_EXE_sockls"))
            .args(["-ta", "--json"])
            .env("LC_ALL", "C.UTF-8")
            .stdin(Stdio::null()),
        LIMIT,
    );
    let trace = std::fs::read_to_string(&log).unwrap();
    assert!(
        trace.contains("(INJECTED)"),
        "no failure was injected:\n{trace}"
    );
    let stderr = stderr_text(&output);
    let got = stderr
        .strip_prefix("sockls: netlink dump of tcp failed after ")
        .and_then(|rest| {
            rest.strip_suffix(
                " sockets (No buffer space available); the rest of it was read from /proc\n",
            )
        })
        .and_then(|count| count.parse::<usize>().ok());
    let got = got.unwrap_or_else(|| panic!("stderr: {stderr:?}"));
    assert_eq!(code(&output), 1);
    let listed: Vec<Value> = stdout_text(&output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let from_netlink = listed
        .iter()
        .filter(|r| r["family"] == "ipv4" && r["cookie"].is_u64())
        .count();
    assert_eq!(
        from_netlink, got,
        "the dump's records before the failure, all listed"
    );
    let mut from_proc = 0;
    for &inode in &ours {
        let found = by_inode(&listed, inode);
        assert_eq!(found.len(), 1, "inode {inode}: {found:?}");
        from_proc += usize::from(found[0]["cookie"].is_null());
    }
    assert!(from_proc > 0, "the rest of the table comes from /proc/net");
    if let Some(tcp6) = &tcp6 {
        let found = by_inode(&listed, inode_of(tcp6));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0]["cookie"].is_u64(), "from netlink: {:?}", found[0]);
    }
    drop(held);
}
