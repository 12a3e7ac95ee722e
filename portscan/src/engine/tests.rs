//! The event loop on a scripted network and clock ([`fake`](super::fake)): retries, the
//! congestion window, local shortages, the descriptor budget, host timeouts, routes and
//! signals, each held to what the loop's and the timing's rules say should happen, to the
//! simulated millisecond.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::ops::RangeInclusive;

use crate::target_spec::TargetSpec;
use nix::errno::Errno;

use super::fake::{Attempt, FakeProber, Network, Reply, Stage};
use super::*;
use crate::probe::TcpConnect;
use crate::targets;

const MS: Duration = Duration::from_millis(1);
const SECOND: Duration = Duration::from_secs(1);
const CLOSED: Verdict = Verdict::Final(PortState::Closed, Reason::ConnRefused);
const OPEN: Verdict = Verdict::Final(PortState::Open, Reason::SynAck);

/// What the loop told its observer, in order.
#[derive(Debug)]
enum Told {
    Result {
        address: IpAddr,
        port: TargetPort,
        state: PortState,
        reason: Reason,
        rtt: Option<Duration>,
    },
    HostFailed {
        address: IpAddr,
        why: String,
    },
    IcmpLimited {
        address: IpAddr,
        interval: Duration,
        remaining: Duration,
    },
}

#[derive(Default)]
struct Report {
    told: Vec<Told>,
    /// The hosts said to be done, in order, each with how many things it had been told
    /// by then (kept apart from `told`, whose length the tests count results by).
    done: Vec<(IpAddr, usize)>,
}

impl<S> FollowUp<S> for Report {}

impl Observer for Report {
    fn result(
        &mut self,
        host: &Host,
        port: TargetPort,
        state: PortState,
        reason: Reason,
        rtt: Option<Duration>,
    ) -> Result<()> {
        self.told.push(Told::Result {
            address: host.address,
            port,
            state,
            reason,
            rtt,
        });
        Ok(())
    }

    fn host_failed(&mut self, host: &Host, why: &str) {
        self.told.push(Told::HostFailed {
            address: host.address,
            why: why.to_owned(),
        });
    }

    fn icmp_limited(&mut self, host: &Host, interval: Duration, remaining: Duration) {
        self.told.push(Told::IcmpLimited {
            address: host.address,
            interval,
            remaining,
        });
    }

    fn host_done(&mut self, host: &Host) -> Result<()> {
        self.done.push((host.address, self.told.len()));
        Ok(())
    }

    fn progress(&mut self, _now: Instant, _done: u64, _total: u64) -> Result<()> {
        Ok(())
    }
}

/// A port's result: port, state, reason, round trip.
type Found = (u16, PortState, Reason, Option<Duration>);

impl Report {
    /// The TCP results for `host`, in port order.
    fn results(&self, host: &str) -> Vec<Found> {
        self.results_of(host, Proto::Tcp)
    }

    /// The results for `host` over `proto`, in port order.
    fn results_of(&self, host: &str, proto: Proto) -> Vec<Found> {
        let host: IpAddr = host.parse().expect("an address");
        let mut found: Vec<Found> = self
            .told
            .iter()
            .filter_map(|told| match told {
                Told::Result {
                    address,
                    port,
                    state,
                    reason,
                    rtt,
                } if *address == host && port.proto == proto => {
                    Some((port.port, *state, *reason, *rtt))
                }
                _ => None,
            })
            .collect();
        found.sort_by_key(|found| found.0);
        found
    }

    fn failures(&self) -> Vec<(IpAddr, &str)> {
        self.told
            .iter()
            .filter_map(|told| match told {
                Told::HostFailed { address, why } => Some((*address, why.as_str())),
                Told::Result { .. } | Told::IcmpLimited { .. } => None,
            })
            .collect()
    }
}

/// A plan of TCP `ports` on each of `hosts`.
fn plan(hosts: &[&str], ports: RangeInclusive<u16>, profile: Profile, budget: usize) -> Plan {
    let tcp = |port| TargetPort {
        proto: Proto::Tcp,
        port,
    };
    plan_of(hosts, ports.map(tcp).collect(), profile, budget)
}

fn plan_of(hosts: &[&str], ports: Vec<TargetPort>, profile: Profile, budget: usize) -> Plan {
    let specs = hosts
        .iter()
        .map(|host| TargetSpec::parse(host).expect("a target"))
        .collect();
    // Addresses only: the resolver is never asked.
    let (targets, problems) =
        Targets::build(specs, Vec::new(), false, targets::system_resolve).expect("targets");
    assert!(problems.is_empty(), "{problems:?}");
    let pairs = targets.len() * ports.len() as u64;
    Plan {
        targets,
        ports,
        // Shuffled, as a real scan is, so that hosts and ports interleave; seeded, so that
        // every run is the same.
        order: Permutation::new(pairs, pairs, Some(7)),
        shard: Shard::WHOLE,
        profile,
        max_rate: None,
        min_rate: None,
        budget,
    }
}

fn profile() -> Profile {
    Profile::preset(3)
}

fn scan(plan: &Plan, network: &Network) -> (Result<Summary>, Report) {
    let mut report = Report::default();
    let outcome = run(plan, network.prober(), &mut network.driver(), &mut report);
    (outcome, report)
}

/// Runs a scan that must end on its own.
fn complete(plan: &Plan, network: &Network) -> (Summary, Report) {
    let (outcome, report) = scan(plan, network);
    let summary = outcome.expect("the scan succeeds");
    assert!(!summary.interrupted);
    (summary, report)
}

fn address(text: &str) -> SocketAddr {
    text.parse().expect("an address and port")
}

fn every(
    ports: RangeInclusive<u16>,
    state: PortState,
    reason: Reason,
    rtt: Duration,
) -> Vec<Found> {
    ports.map(|port| (port, state, reason, Some(rtt))).collect()
}

#[test]
fn a_silent_port_is_tried_as_often_as_the_retries_allow() {
    // --max-retries; whether port 2 of the same host answers, but only its second try; how
    // many tries silent port 1 gets: the most allowed, and of those one more than ever
    // helped with this host (nmap's rule).
    let cases = [
        (0, false, 1),
        (1, false, 2),
        (10, false, 2),
        (10, true, 3),
        (1, true, 2),
    ];
    for (max_retries, lossy, tries) in cases {
        let network = Network::new(|attempt| match attempt.address.port() {
            2 if attempt.number > 0 => Reply::After(10 * MS, CLOSED),
            _ => Reply::Silence,
        });
        let ports = if lossy { 1..=2 } else { 1..=1 };
        let profile = Profile {
            max_retries,
            ..profile()
        };
        let (_, report) = complete(&plan(&["192.0.2.1"], ports, profile, 100), &network);
        let case = format!("--max-retries {max_retries}, lossy {lossy}");
        let silent = address("192.0.2.1:1");
        let starts: Vec<Duration> = network
            .log()
            .iter()
            .filter(|logged| logged.address == silent)
            .map(|logged| logged.at)
            .collect();
        // No answer ever timed a round trip: each try waits the initial timeout.
        let expected: Vec<Duration> = (0..tries).map(|n| n * SECOND).collect();
        assert_eq!(starts, expected, "{case}");
        let filtered = (1, PortState::Filtered, Reason::NoResponse, None);
        assert_eq!(report.results("192.0.2.1")[0], filtered, "{case}");
    }
}

#[test]
fn a_port_answering_its_second_try_gets_that_answer() {
    let network = Network::new(|attempt| match (attempt.number, attempt.address.port()) {
        (0, _) => Reply::Silence,
        (_, 1) => Reply::After(10 * MS, CLOSED),
        _ => Reply::After(20 * MS, OPEN),
    });
    let (summary, report) = complete(&plan(&["192.0.2.1"], 1..=2, profile(), 100), &network);
    // Each once, timed from the try that got the answer.
    assert_eq!(
        report.results("192.0.2.1"),
        [
            (1, PortState::Closed, Reason::ConnRefused, Some(10 * MS)),
            (2, PortState::Open, Reason::SynAck, Some(20 * MS)),
        ]
    );
    assert_eq!(network.attempts(address("192.0.2.1:1"), Proto::Tcp), 2);
    assert_eq!(network.attempts(address("192.0.2.1:2"), Proto::Tcp), 2);
    assert_eq!(summary.sent, 4);
}

#[test]
fn the_window_starts_at_its_initial_size_and_grows_by_one_per_answer() {
    let network = Network::new(|_| Reply::After(10 * MS, CLOSED));
    let (_, report) = complete(&plan(&["192.0.2.1"], 1..=300, profile(), 1000), &network);
    let log = network.log();
    let launched_at = |ms: u32| log.iter().filter(|logged| logged.at == ms * MS).count();
    // Slow start: a round trip's answers double the window. The 80 go out in two turns of
    // the loop (at most LAUNCHES_PER_TURN each) at the same moment.
    assert_eq!([0, 10, 20, 30].map(launched_at), [10, 20, 40, 80]);
    let most_in_flight = log.iter().map(|logged| logged.in_flight).max();
    assert_eq!(most_in_flight, Some(150), "the 150 ports left, at once");
    assert_eq!(
        report.results("192.0.2.1"),
        every(1..=300, PortState::Closed, Reason::ConnRefused, 10 * MS)
    );
}

#[test]
fn silence_neither_grows_nor_shrinks_the_window() {
    let network = Network::new(|_| Reply::Silence);
    let profile = Profile {
        max_retries: 0,
        ..profile()
    };
    let (_, report) = complete(&plan(&["192.0.2.1"], 1..=50, profile, 100), &network);
    // Ten at a time, each ten waiting out the initial timeout.
    let starts: Vec<Duration> = network.log().iter().map(|logged| logged.at).collect();
    let expected: Vec<Duration> = (0..50).map(|n| n / 10 * SECOND).collect();
    assert_eq!(starts, expected);
    assert!(network.log().iter().all(|logged| logged.in_flight <= 10));
    assert_eq!(report.results("192.0.2.1").len(), 50);
    assert_eq!(network.elapsed(), 5 * SECOND);
}

#[test]
fn losses_piling_up_halve_the_window() {
    // Every first try is lost and every retry answered: answers to retries are losses. A
    // round trip is judged once it has 20 answers: here the third round's first answer, at
    // 3.03 s, finds all of them retried, a burst far above any link's noise, and halves
    // the window.
    let network = Network::new(|attempt| match attempt.number {
        0 => Reply::Silence,
        _ => Reply::After(10 * MS, CLOSED),
    });
    let (_, report) = complete(&plan(&["192.0.2.1"], 1..=40, profile(), 100), &network);
    let log = network.log();
    let most_in_flight_from = |from: Duration| {
        log.iter()
            .filter(|logged| logged.at >= from)
            .map(|logged| logged.in_flight)
            .max()
    };
    assert_eq!(most_in_flight_from(Duration::ZERO), Some(10));
    assert_eq!(most_in_flight_from(3020 * MS), Some(10));
    assert_eq!(most_in_flight_from(3030 * MS), Some(5));
    assert_eq!(
        report.results("192.0.2.1"),
        every(1..=40, PortState::Closed, Reason::ConnRefused, 10 * MS)
    );
}

#[test]
fn a_local_failure_is_never_a_port_state() {
    // Each port fails locally twice: no descriptor for the socket, connect() failing at once
    // (no local port), or the failure showing on the socket later. Then one host answers,
    // and the other is silent.
    let network = Network::new(|attempt| {
        let local = match attempt.address.port() % 3 {
            0 => Reply::NoDescriptor,
            1 => Reply::AtOnce(Verdict::Local, Duration::ZERO),
            _ => Reply::After(10 * MS, Verdict::Local),
        };
        match (attempt.number, attempt.address.ip().to_string().as_str()) {
            (0 | 1, _) => local,
            (_, "192.0.2.1") => Reply::After(10 * MS, CLOSED),
            _ => Reply::Silence,
        }
    });
    let profile = Profile {
        max_retries: 1,
        ..profile()
    };
    let plan = plan(&["192.0.2.1", "192.0.2.2"], 1..=30, profile, 100);
    let (summary, report) = complete(&plan, &network);
    assert_eq!(
        report.results("192.0.2.1"),
        every(1..=30, PortState::Closed, Reason::ConnRefused, 10 * MS)
    );
    let silent: Vec<Found> = (1..=30)
        .map(|port| (port, PortState::Filtered, Reason::NoResponse, None))
        .collect();
    assert_eq!(report.results("192.0.2.2"), silent);
    for port in 1..=30 {
        let answering = network.attempts(address(&format!("192.0.2.1:{port}")), Proto::Tcp);
        assert_eq!(
            answering, 3,
            "port {port}: two failures and the answered try"
        );
        let silent = network.attempts(address(&format!("192.0.2.2:{port}")), Proto::Tcp);
        assert_eq!(silent, 4, "port {port}: two failures use up no try");
    }
    let went_out = network
        .log()
        .iter()
        .filter(|logged| !logged.refused)
        .count();
    assert_eq!(
        summary.sent, went_out as u64,
        "a try without a socket is not sent"
    );
}

#[test]
fn the_ceiling_drops_on_a_shortage_and_climbs_back() {
    // For its first 200 ms the system has 40 descriptors for the scan, then the budget's 100.
    let shortage = 200 * MS;
    let network = Network::new(move |attempt| {
        if attempt.at < shortage && attempt.open >= 40 && !attempt.spare {
            Reply::NoDescriptor
        } else {
            Reply::After(10 * MS, CLOSED)
        }
    });
    let (_, report) = complete(&plan(&["192.0.2.1"], 1..=4000, profile(), 100), &network);
    assert_eq!(
        report.results("192.0.2.1"),
        every(1..=4000, PortState::Closed, Reason::ConnRefused, 10 * MS)
    );
    // The most in flight, and the most sockets open, at each moment a try went out or
    // was refused.
    let mut most = BTreeMap::new();
    for logged in network.log() {
        let (in_flight, open) = most.entry(logged.at).or_insert((0, 0));
        *in_flight = logged.in_flight.max(*in_flight);
        *open = logged.open.max(*open);
    }
    let refused: Vec<(Duration, usize)> = network
        .log()
        .iter()
        .filter(|logged| logged.refused)
        .map(|logged| (logged.at, logged.in_flight))
        .collect();
    assert!(refused.len() > 1, "the shortage was felt again and again");
    for (at, in_flight) in refused {
        assert!(at < shortage);
        // The next round trip: the ceiling cut to three quarters of what was in flight,
        // and grown by one per 16 answers since; sockets kept for later tries count too.
        let ceiling = in_flight * 3 / 4 + in_flight / 16;
        assert_eq!(most[&(at + 10 * MS)], (ceiling, ceiling), "after {at:?}");
    }
    let most_after = most.range(shortage..).map(|(_, most)| *most).max();
    assert_eq!(most_after, Some((100, 100)), "back up to the budget");
    assert_eq!(network.most_open(), 100);
}

#[test]
fn a_shortage_with_nothing_in_flight_fails_the_scan_only_after_the_last_attempt() {
    // No descriptor for a socket, or no local port for connect(); for as many attempts as
    // the loop makes before giving up, or one more.
    let shortages = [
        (Reply::NoDescriptor, Errno::EMFILE),
        (
            Reply::AtOnce(Verdict::Local, Duration::ZERO),
            Errno::EADDRNOTAVAIL,
        ),
    ];
    for (shortage, errno) in shortages {
        for refused in [u64::from(LOCAL_ATTEMPTS), u64::from(LOCAL_ATTEMPTS) + 1] {
            let network = Network::new(move |attempt| {
                if attempt.overall < refused {
                    shortage
                } else {
                    Reply::AtOnce(CLOSED, Duration::ZERO)
                }
            });
            let (outcome, report) = scan(&plan(&["192.0.2.1"], 1..=5, profile(), 100), &network);
            let case = format!("{refused} times {shortage:?}");
            if refused == u64::from(LOCAL_ATTEMPTS) {
                outcome.expect("the last attempt got through");
                assert_eq!(report.results("192.0.2.1").len(), 5, "{case}");
                continue;
            }
            let Err(Error::Io { context, source }) = outcome else {
                panic!("{case}: the scan gives up: {outcome:?}");
            };
            assert_eq!(context, "opening sockets", "{case}");
            assert_eq!(source.raw_os_error(), Some(errno as i32), "{case}");
            assert!(report.told.is_empty(), "{case}");
            assert_eq!(network.log().len() as u64, refused, "{case}");
            assert_eq!(network.elapsed(), LOCAL_BACKOFF * LOCAL_ATTEMPTS, "{case}");
        }
    }
}

#[test]
fn sockets_in_flight_and_kept_never_exceed_the_budget() {
    // Four hosts whose windows hold forty tries; closed ports, whose sockets are kept for
    // later tries, and silent ones, which hold theirs for a second.
    let network = Network::new(|attempt| match attempt.address.port() % 2 {
        0 => Reply::After(5 * MS, CLOSED),
        _ => Reply::Silence,
    });
    let profile = Profile {
        max_retries: 0,
        ..profile()
    };
    let hosts = ["192.0.2.0/30"];
    let (_, report) = complete(&plan(&hosts, 1..=50, profile, 16), &network);
    assert_eq!(network.most_open(), 16);
    assert_eq!(report.told.len(), 200);
    assert_eq!(network.open(), 0, "every socket is closed in the end");
}

#[test]
fn a_host_past_its_timeout_fails_and_the_others_complete() {
    // A slow host may take 400 ms: its odd ports answer in 300 ms and its even ones never,
    // so its first tries' answers send more at 300 ms, and its first silent tries time out
    // at 500 ms, past its time, with those in flight. The other host is quick.
    let network = Network::new(|attempt| {
        match (
            attempt.address.ip().to_string().as_str(),
            attempt.address.port() % 2,
        ) {
            ("192.0.2.1", 0) => Reply::Silence,
            ("192.0.2.1", _) => Reply::After(300 * MS, CLOSED),
            _ => Reply::After(10 * MS, CLOSED),
        }
    });
    let timeout = 500 * MS;
    let profile = Profile {
        initial_timeout: timeout,
        max_timeout: timeout,
        host_timeout: Some(400 * MS),
        ..profile()
    };
    let plan = plan(&["192.0.2.1", "192.0.2.2"], 1..=100, profile, 1000);
    let (_, report) = complete(&plan, &network);
    let slow: IpAddr = "192.0.2.1".parse().unwrap();
    assert_eq!(report.failures(), [(slow, "host timeout")]);
    let tries: Vec<(Duration, u16)> = network
        .log()
        .iter()
        .filter(|logged| logged.address.ip() == slow)
        .map(|logged| (logged.at, logged.address.port()))
        .collect();
    assert!(
        tries.iter().all(|(at, _)| *at <= 400 * MS),
        "none after its time"
    );
    let answered_in_time: Vec<Found> = tries
        .iter()
        .filter(|(at, port)| at.is_zero() && port % 2 == 1)
        .map(|(_, port)| {
            (
                *port,
                PortState::Closed,
                Reason::ConnRefused,
                Some(300 * MS),
            )
        })
        .collect();
    let answered_late = tries
        .iter()
        .filter(|(at, port)| *at == 300 * MS && port % 2 == 1)
        .count();
    assert!(answered_late > 0, "some answers came after the host failed");
    assert!(!answered_in_time.is_empty());
    let mut expected = answered_in_time;
    expected.sort_unstable_by_key(|found| found.0);
    assert_eq!(
        report.results("192.0.2.1"),
        expected,
        "only the answers before the host failed"
    );
    assert_eq!(
        report.results("192.0.2.2"),
        every(1..=100, PortState::Closed, Reason::ConnRefused, 10 * MS)
    );
}

#[test]
fn no_route_fails_the_host_and_drops_its_ports() {
    // connect() knows at once (a route table without the host), or the kernel says later.
    for no_route in [
        Reply::AtOnce(Verdict::NoRoute, Duration::ZERO),
        Reply::After(10 * MS, Verdict::NoRoute),
    ] {
        let network =
            Network::new(
                move |attempt| match attempt.address.ip().to_string().as_str() {
                    "192.0.2.1" => no_route,
                    _ => Reply::AtOnce(CLOSED, Duration::ZERO),
                },
            );
        let plan = plan(&["192.0.2.1", "192.0.2.2"], 1..=50, profile(), 100);
        let (_, report) = complete(&plan, &network);
        let unroutable: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(
            report.failures(),
            [(unroutable, "no route to 192.0.2.1")],
            "{no_route:?}"
        );
        assert_eq!(report.results("192.0.2.1"), [], "{no_route:?}");
        assert_eq!(
            report.results("192.0.2.2"),
            every(
                1..=50,
                PortState::Closed,
                Reason::ConnRefused,
                Duration::ZERO
            )
        );
    }
}

#[test]
fn a_signal_stops_the_scan_where_it_is() {
    let network = Network::new(|_| Reply::Silence);
    network.signal_after(1500 * MS);
    let profile = Profile {
        max_retries: 0,
        ..profile()
    };
    let (outcome, report) = scan(&plan(&["192.0.2.1"], 1..=100, profile, 100), &network);
    let summary = outcome.expect("a signal is no error");
    assert!(summary.interrupted);
    assert_eq!(network.elapsed(), 1500 * MS, "at once");
    // The first ten timed out at 1 s; the next ten were in flight.
    assert_eq!(report.told.len(), 10);
    assert_eq!(summary.sent, 20);
}

#[test]
fn a_turn_of_answers_at_once_still_looks_at_signals() {
    // Loopback: every answer comes inside connect(), and the window never closes.
    let network = Network::new(|_| Reply::AtOnce(CLOSED, Duration::ZERO));
    network.signal_after(Duration::ZERO);
    let (outcome, report) = scan(&plan(&["127.0.0.1"], 1..=1000, profile(), 100), &network);
    assert!(outcome.expect("a signal is no error").interrupted);
    assert_eq!(report.told.len(), LAUNCHES_PER_TURN);
}

#[test]
fn an_answer_at_once_is_timed_around_its_own_connect() {
    // Port N's connect() takes N ms: each round trip is its own, not the sum of the
    // connect() calls before it in the same turn.
    let network = Network::new(|attempt| {
        let takes = u32::from(attempt.address.port()) * MS;
        Reply::AtOnce(CLOSED, takes)
    });
    let (_, report) = complete(&plan(&["127.0.0.1"], 1..=5, profile(), 100), &network);
    let rtts: Vec<Option<Duration>> = report
        .results("127.0.0.1")
        .iter()
        .map(|found| found.3)
        .collect();
    assert_eq!(rtts, (1..=5).map(|ms| Some(ms * MS)).collect::<Vec<_>>());
}

#[test]
fn a_port_list_becomes_the_ports_of_the_protocols_there_is_a_prober_for() {
    let tcp = |port| TargetPort {
        proto: Proto::Tcp,
        port,
    };
    let udp = |port| TargetPort {
        proto: Proto::Udp,
        port,
    };
    let list = |text| PortList::parse(text, Proto::Tcp).expect("a port list");
    let mixed = list("443,22,T:80,U:53,161,S:9");
    assert_eq!(
        scannable::<FakeProber>(&mixed),
        Ok(vec![tcp(22), tcp(80), tcp(443), udp(53), udp(161)])
    );
    assert_eq!(
        scannable::<TcpConnect>(&mixed),
        Ok(vec![tcp(22), tcp(80), tcp(443)])
    );
    assert_eq!(scannable::<FakeProber>(&list("U:53")), Ok(vec![udp(53)]));
    assert_eq!(
        scannable::<TcpConnect>(&list("U:53")),
        Err("portscan scans TCP only; the list has no TCP port".to_owned())
    );
    assert_eq!(
        scannable::<FakeProber>(&list("S:9,D:10")),
        Err("portscan scans TCP and UDP only; the list has no TCP or UDP port".to_owned())
    );
}

/// TCP ports 1 to 3 and UDP ports 1 and 2, on each of two hosts.
fn tcp_and_udp() -> Vec<TargetPort> {
    let (tcp, udp) = (Proto::Tcp, Proto::Udp);
    [(tcp, 1), (tcp, 2), (tcp, 3), (udp, 1), (udp, 2)]
        .map(|(proto, port)| TargetPort { proto, port })
        .into()
}

#[test]
fn each_port_is_probed_and_reported_with_its_own_protocol() {
    // The same numbers over TCP and UDP: port 1 refuses (a reset, an ICMP port
    // unreachable), TCP port 3 accepts, the rest are silent. UDP's silence is open|filtered,
    // TCP's filtered, as the prober says.
    let network = Network::new(|attempt| match (attempt.proto, attempt.address.port()) {
        (Proto::Tcp, 1) => Reply::After(10 * MS, CLOSED),
        (Proto::Udp, 1) => Reply::After(20 * MS, CLOSED),
        (Proto::Tcp, 3) => Reply::After(10 * MS, OPEN),
        _ => Reply::Silence,
    });
    let profile = Profile {
        max_retries: 0,
        ..profile()
    };
    let hosts = ["192.0.2.1", "192.0.2.2"];
    let (_, report) = complete(&plan_of(&hosts, tcp_and_udp(), profile, 100), &network);
    for host in hosts {
        assert_eq!(
            report.results_of(host, Proto::Tcp),
            [
                (1, PortState::Closed, Reason::ConnRefused, Some(10 * MS)),
                (2, PortState::Filtered, Reason::NoResponse, None),
                (3, PortState::Open, Reason::SynAck, Some(10 * MS)),
            ],
            "{host}"
        );
        assert_eq!(
            report.results_of(host, Proto::Udp),
            [
                (1, PortState::Closed, Reason::ConnRefused, Some(20 * MS)),
                (2, PortState::OpenFiltered, Reason::NoResponse, None),
            ],
            "{host}"
        );
        // UDP port 2 fell silent after the host's port unreachable: the host may have
        // run out of ICMP errors, so that silence was no try, and the port went again
        // once the host could answer.
        for port in tcp_and_udp() {
            let address = address(&format!("{host}:{}", port.port));
            let tries = if port
                == (TargetPort {
                    proto: Proto::Udp,
                    port: 2,
                }) {
                2
            } else {
                1
            };
            assert_eq!(
                network.attempts(address, port.proto),
                tries,
                "{host} {port:?}"
            );
        }
    }
    // Ten results, and the ration noticed once per host.
    assert_eq!(report.told.len(), 12);
}

#[test]
fn the_permutation_numbers_every_port_of_every_host_with_its_protocol() {
    // In order (--sequential), pair n is port n % 5 of host n / 5; shuffled, each once.
    let hosts = ["192.0.2.1", "192.0.2.2"];
    let expected: Vec<(SocketAddr, Proto)> = hosts
        .iter()
        .flat_map(|host| {
            tcp_and_udp()
                .into_iter()
                .map(move |port| (address(&format!("{host}:{}", port.port)), port.proto))
        })
        .collect();
    for seed in [None, Some(7)] {
        let network = Network::new(|_| Reply::AtOnce(CLOSED, Duration::ZERO));
        let mut plan = plan_of(&hosts, tcp_and_udp(), profile(), 100);
        plan.order = Permutation::new(10, 10, seed);
        complete(&plan, &network);
        let mut probed: Vec<(SocketAddr, Proto)> = network
            .log()
            .iter()
            .map(|logged| (logged.address, logged.proto))
            .collect();
        if seed.is_some() {
            assert_ne!(probed, expected, "shuffled");
            probed.sort_by_key(|pair| expected.iter().position(|p| p == pair));
        }
        assert_eq!(probed, expected, "seed {seed:?}");
    }
}

/// An open port's answer that keeps the socket for a follow-up stage of up to `wait`.
fn open_with_follow_up(wait: Duration) -> Verdict {
    Verdict::FollowUp {
        state: PortState::Open,
        reason: Reason::SynAck,
        wait,
    }
}

fn stage(address_text: &str, number: u32, at: Duration) -> Stage {
    Stage {
        address: address(address_text),
        proto: Proto::Tcp,
        number,
        at,
    }
}

#[test]
fn a_follow_up_keeps_the_open_socket_until_the_stage_ends_and_reports_once() {
    // Port 1 opens in 10 ms and its prober keeps the socket to read what comes, for up to
    // 5 s; it comes 100 ms later. Port 2 is closed.
    let network = Network::new(|attempt| match attempt.address.port() {
        1 => Reply::After(10 * MS, open_with_follow_up(5 * SECOND)),
        _ => Reply::After(10 * MS, CLOSED),
    });
    network.follow_ups(|_| Reply::After(100 * MS, OPEN));
    let (summary, report) = complete(&plan(&["192.0.2.1"], 1..=2, profile(), 100), &network);
    // Timed by the try's answer, which decided the state.
    assert_eq!(
        report.results("192.0.2.1"),
        [
            (1, PortState::Open, Reason::SynAck, Some(10 * MS)),
            (2, PortState::Closed, Reason::ConnRefused, Some(10 * MS)),
        ]
    );
    assert_eq!(report.told.len(), 2, "each port once");
    assert_eq!(network.stages(), [stage("192.0.2.1:1", 1, 10 * MS)]);
    assert_eq!(network.elapsed(), 110 * MS, "the scan waited for the stage");
    assert_eq!(summary.sent, 2, "a follow-up is no try");
    assert_eq!(network.open(), 0, "the socket closed when its stage ended");
}

#[test]
fn a_silent_follow_up_ends_at_its_own_deadline_with_the_state_it_began_with() {
    let network = Network::new(|_| Reply::After(10 * MS, open_with_follow_up(2 * SECOND)));
    network.follow_ups(|_| Reply::Silence);
    let (_, report) = complete(&plan(&["192.0.2.1"], 1..=1, profile(), 100), &network);
    assert_eq!(
        report.results("192.0.2.1"),
        [(1, PortState::Open, Reason::SynAck, Some(10 * MS))]
    );
    assert_eq!(
        network.elapsed(),
        2010 * MS,
        "the stage's wait, not a try's timeout"
    );
    let tries = network.attempts(address("192.0.2.1:1"), Proto::Tcp);
    assert_eq!(tries, 1, "no retry: the port answered");
}

#[test]
fn a_follow_up_stage_may_begin_a_further_one() {
    // What the first stage reads (a banner) leads to a further probe, whose answer ends it.
    let network = Network::new(|_| Reply::After(10 * MS, open_with_follow_up(SECOND)));
    network.follow_ups(|stage| match stage.number {
        1 => Reply::After(50 * MS, open_with_follow_up(SECOND)),
        _ => Reply::After(30 * MS, OPEN),
    });
    let (_, report) = complete(&plan(&["192.0.2.1"], 1..=1, profile(), 100), &network);
    assert_eq!(
        report.results("192.0.2.1"),
        [(1, PortState::Open, Reason::SynAck, Some(10 * MS))]
    );
    assert_eq!(
        network.stages(),
        [
            stage("192.0.2.1:1", 1, 10 * MS),
            stage("192.0.2.1:1", 2, 60 * MS)
        ]
    );
    assert_eq!(network.elapsed(), 90 * MS);
}

#[test]
fn an_answer_at_once_may_ask_for_a_follow_up() {
    // Loopback: connect() succeeds within the call, and the socket, never watched for the
    // try, is registered for the stage (the fake checks that it is armed for reading).
    let network = Network::new(|attempt| match attempt.address.port() {
        1 => Reply::AtOnce(open_with_follow_up(SECOND), Duration::ZERO),
        _ => Reply::AtOnce(CLOSED, Duration::ZERO),
    });
    network.follow_ups(|_| Reply::After(20 * MS, OPEN));
    let (_, report) = complete(&plan(&["127.0.0.1"], 1..=3, profile(), 100), &network);
    assert_eq!(
        report.results("127.0.0.1")[0],
        (1, PortState::Open, Reason::SynAck, Some(Duration::ZERO))
    );
    assert_eq!(report.told.len(), 3);
    assert_eq!(network.elapsed(), 20 * MS);
}

#[test]
fn follow_ups_hold_sockets_of_the_budget_not_places_in_the_window() {
    // Every port opens in 10 ms and reads nothing for its second-long stage. With four
    // sockets to spend, four ports at a time, each group a second; with a hundred, the
    // window is what the answers made it, the stages aside: all twenty tries are out by
    // the second round trip.
    let scan_with = |budget, ports| {
        let network = Network::new(|_| Reply::After(10 * MS, open_with_follow_up(SECOND)));
        network.follow_ups(|_| Reply::Silence);
        let (_, report) = complete(
            &plan(&["192.0.2.1"], 1..=ports, profile(), budget),
            &network,
        );
        assert_eq!(report.told.len(), usize::from(ports));
        network
    };
    let few = scan_with(4, 10);
    assert_eq!(few.most_open(), 4);
    assert_eq!(few.elapsed(), 3 * 1010 * MS);
    let many = scan_with(100, 20);
    let last_try = many.log().iter().map(|logged| logged.at).max();
    assert_eq!(last_try, Some(10 * MS));
    assert_eq!(many.elapsed(), 1020 * MS);
}

#[test]
fn a_follow_up_that_fails_ends_with_the_state_it_began_with() {
    for failure in [Verdict::Local, Verdict::NoRoute] {
        let network = Network::new(|_| Reply::After(10 * MS, open_with_follow_up(SECOND)));
        network.follow_ups(move |_| Reply::After(10 * MS, failure));
        let (_, report) = complete(&plan(&["192.0.2.1"], 1..=1, profile(), 100), &network);
        assert_eq!(
            report.results("192.0.2.1"),
            [(1, PortState::Open, Reason::SynAck, Some(10 * MS))],
            "{failure:?}"
        );
        assert_eq!(report.failures(), [], "{failure:?}: the host answered");
        assert_eq!(network.attempts(address("192.0.2.1:1"), Proto::Tcp), 1);
        assert_eq!(network.elapsed(), 20 * MS, "{failure:?}");
    }
}

#[test]
fn the_follow_up_of_a_host_that_failed_is_dropped() {
    // Port 1 opens and its stage ends after the host has failed (port 2: no route), by an
    // answer or by its deadline: no result, and the socket closes.
    for ending in [Reply::After(100 * MS, OPEN), Reply::Silence] {
        let network = Network::new(|attempt| match attempt.address.port() {
            1 => Reply::After(10 * MS, open_with_follow_up(SECOND)),
            _ => Reply::After(50 * MS, Verdict::NoRoute),
        });
        network.follow_ups(move |_| ending);
        let (_, report) = complete(&plan(&["192.0.2.1"], 1..=2, profile(), 100), &network);
        let unroutable: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(report.failures(), [(unroutable, "no route to 192.0.2.1")]);
        assert_eq!(report.results("192.0.2.1"), [], "{ending:?}");
        assert_eq!(network.stages().len(), 1, "{ending:?}");
        assert_eq!(network.open(), 0, "{ending:?}");
    }
}

#[test]
fn silent_udp_ports_are_retried_and_then_open_filtered() {
    // UDP port 1 answers only its third try (two datagrams lost), port 2 refuses its
    // second, port 3 never answers: silence decides only once every retry was spent, and a
    // late answer still decides, as for TCP.
    let udp_open = Verdict::Final(PortState::Open, Reason::UdpResponse);
    let udp_closed = Verdict::Final(PortState::Closed, Reason::PortUnreach);
    let network = Network::new(
        move |attempt| match (attempt.address.port(), attempt.number) {
            (1, 2) => Reply::After(10 * MS, udp_open),
            (2, 1) => Reply::After(10 * MS, udp_closed),
            _ => Reply::Silence,
        },
    );
    let ports: Vec<TargetPort> = (1..=3)
        .map(|port| TargetPort {
            proto: Proto::Udp,
            port,
        })
        .collect();
    let profile = Profile {
        max_retries: 3,
        ..profile()
    };
    let (summary, report) = complete(&plan_of(&["192.0.2.1"], ports, profile, 100), &network);
    assert_eq!(
        report.results_of("192.0.2.1", Proto::Udp),
        [
            (1, PortState::Open, Reason::UdpResponse, Some(10 * MS)),
            (2, PortState::Closed, Reason::PortUnreach, Some(10 * MS)),
            (3, PortState::OpenFiltered, Reason::NoResponse, None),
        ]
    );
    let tries = |port| network.attempts(address(&format!("192.0.2.1:{port}")), Proto::Udp);
    assert_eq!((tries(1), tries(2), tries(3)), (3, 2, 4));
    assert_eq!(summary.sent, 9);
}

const UDP_CLOSED: Verdict = Verdict::Final(PortState::Closed, Reason::PortUnreach);
const UDP_OPEN: Verdict = Verdict::Final(PortState::Open, Reason::UdpResponse);

/// UDP ports 1 to 40: 1 to 36 closed, 37 and 38 answering, 39 and 40 dropped.
fn udp_host(attempt: Attempt) -> Reply {
    match attempt.address.port() {
        1..=36 => Reply::After(MS, UDP_CLOSED),
        37 | 38 => Reply::After(MS, UDP_OPEN),
        _ => Reply::Silence,
    }
}

fn udp_ports(ports: RangeInclusive<u16>) -> Vec<TargetPort> {
    let udp = |port| TargetPort {
        proto: Proto::Udp,
        port,
    };
    ports.map(udp).collect()
}

fn udp_states(report: &Report, host: &str) -> Vec<(u16, PortState)> {
    let found = report.results_of(host, Proto::Udp).into_iter();
    found.map(|(port, state, ..)| (port, state)).collect()
}

fn udp_host_states() -> Vec<(u16, PortState)> {
    (1..=40)
        .map(|port| match port {
            1..=36 => (port, PortState::Closed),
            37 | 38 => (port, PortState::Open),
            _ => (port, PortState::OpenFiltered),
        })
        .collect()
}

#[test]
fn a_host_rationing_icmp_errors_is_paced_to_them_and_every_state_is_right() {
    // Linux's default: an error a second after a burst of six. 36 closed ports: the
    // ration alone makes the scan last (36 - 6) seconds.
    let network = Network::new(udp_host);
    network.ration_icmp("192.0.2.1", SECOND, 6);
    let plan = plan_of(&["192.0.2.1"], udp_ports(1..=40), profile(), 100);
    let (_, report) = complete(&plan, &network);
    assert_eq!(udp_states(&report, "192.0.2.1"), udp_host_states());
    let notices: Vec<_> = report
        .told
        .iter()
        .filter_map(|told| match told {
            Told::IcmpLimited {
                address,
                interval,
                remaining,
            } => Some((address.to_string(), *interval, *remaining)),
            _ => None,
        })
        .collect();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!((notices[0].0.as_str(), notices[0].1), ("192.0.2.1", SECOND));
    // The closed ports past the burst that went before the ration was noticed, at the
    // first silence (100 ms, the timeout), lost that try; no paced try was sent into an
    // empty bucket.
    let withheld = network.withheld("192.0.2.1");
    assert!(!withheld.is_empty());
    assert!(withheld.iter().all(|at| *at < 100 * MS), "{withheld:?}");
    let floor = 30 * SECOND;
    let elapsed = network.elapsed();
    assert!(
        elapsed >= floor && elapsed < floor + 2 * SECOND,
        "{elapsed:?}"
    );
    // The dropped ports: two paced tries each (the first, and the retry nmap's rule
    // allows), and before them the unpaced one if it went before the ration was noticed.
    for port in [39, 40] {
        let dropped = address(&format!("192.0.2.1:{port}"));
        let log = network.log();
        let paced = log
            .iter()
            .filter(|logged| logged.address == dropped && logged.at >= 100 * MS);
        assert_eq!(paced.count(), 2, "port {port}");
    }
}

#[test]
fn other_hosts_go_on_at_full_speed_while_one_rations_its_errors() {
    let network = Network::new(|attempt| {
        match (
            attempt.address.ip().to_string().as_str(),
            attempt.address.port(),
        ) {
            ("192.0.2.2", 39 | 40) => Reply::After(MS, UDP_OPEN),
            _ => udp_host(attempt),
        }
    });
    network.ration_icmp("192.0.2.1", SECOND, 6);
    let hosts = ["192.0.2.1", "192.0.2.2"];
    let (_, report) = complete(
        &plan_of(&hosts, udp_ports(1..=40), profile(), 100),
        &network,
    );
    assert_eq!(udp_states(&report, "192.0.2.1"), udp_host_states());
    let unrationed = (1..=40).map(|port| {
        let state = if port > 36 {
            PortState::Open
        } else {
            PortState::Closed
        };
        (port, state)
    });
    assert_eq!(
        udp_states(&report, "192.0.2.2"),
        unrationed.collect::<Vec<_>>()
    );
    let last_try_to = |host: &str| {
        let host: IpAddr = host.parse().unwrap();
        let log = network.log();
        log.iter()
            .filter(|logged| logged.address.ip() == host)
            .map(|logged| logged.at)
            .max()
    };
    assert!(
        last_try_to("192.0.2.2") < Some(10 * MS),
        "{:?}",
        last_try_to("192.0.2.2")
    );
    assert!(last_try_to("192.0.2.1") > Some(29 * SECOND));
    assert!(network.withheld("192.0.2.2").is_empty());
}

#[test]
fn a_loopback_host_never_waits_for_a_ration() {
    // The script's silences after errors would pass for a ration anywhere else.
    let network = Network::new(udp_host);
    let plan = plan_of(&["127.0.0.1"], udp_ports(1..=40), profile(), 100);
    let (_, report) = complete(&plan, &network);
    assert_eq!(udp_states(&report, "127.0.0.1"), udp_host_states());
    assert!(
        report
            .told
            .iter()
            .all(|told| !matches!(told, Told::IcmpLimited { .. }))
    );
    for port in [39, 40] {
        let dropped = address(&format!("127.0.0.1:{port}"));
        assert_eq!(network.attempts(dropped, Proto::Udp), 2);
    }
    // The first tries wait out the initial second, the retries 200 ms: no pause for a
    // ration.
    assert!(network.elapsed() < 1500 * MS, "{:?}", network.elapsed());
}

/// A shard probes some pairs of each host; each host is done as soon as the shard's own
/// pairs of it are, not at the end of the scan (holding every host until then would keep
/// all their results in memory), and the shards together probe every pair once.
#[test]
fn a_shard_finishes_each_host_when_its_own_pairs_are_done() {
    let hosts = ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"];
    let mut probed = Vec::new();
    for index in 0..3 {
        let network = Network::new(|_| Reply::After(10 * MS, CLOSED));
        let mut plan = plan(&hosts, 1..=50, profile(), 1000);
        plan.shard = Shard { index, count: 3 };
        let (_, report) = complete(&plan, &network);
        let results = |host: &IpAddr| {
            report
                .told
                .iter()
                .filter(|told| matches!(told, Told::Result { address, .. } if address == host))
                .count()
        };
        for host in &hosts {
            let host: IpAddr = host.parse().unwrap();
            let done: Vec<usize> = report
                .done
                .iter()
                .filter(|(address, _)| *address == host)
                .map(|(_, told_before)| *told_before)
                .collect();
            assert_eq!(done.len(), 1, "{host} is done once in shard {index}");
            let last = report
                .told
                .iter()
                .rposition(|told| matches!(told, Told::Result { address, .. } if *address == host));
            assert_eq!(
                last.map(|last| last + 1),
                Some(done[0]),
                "{host}: done at once"
            );
            assert!(results(&host) < 50, "a shard probes part of {host}");
        }
        probed.extend(report.told.iter().filter_map(|told| match told {
            Told::Result { address, port, .. } => Some((*address, port.port)),
            _ => None,
        }));
    }
    probed.sort_unstable();
    let every: Vec<(IpAddr, u16)> = hosts
        .iter()
        .flat_map(|host| (1..=50).map(move |port| (host.parse().unwrap(), port)))
        .collect();
    assert_eq!(probed, every, "the shards together probe every pair once");
}

/// Each host is said to be done once, after the last thing said about it: its last result,
/// or, for a host that failed, the failure and the results it had before.
#[test]
fn each_host_is_done_once_after_everything_about_it() {
    let network = Network::new(|attempt| match attempt.address.ip().to_string().as_str() {
        "192.0.2.1" => Reply::After(10 * MS, Verdict::NoRoute),
        _ => Reply::After(10 * MS, CLOSED),
    });
    let hosts = ["192.0.2.1", "192.0.2.2", "192.0.2.3"];
    let plan = plan(&hosts, 1..=40, profile(), 1000);
    let (_, report) = complete(&plan, &network);
    let mut done: Vec<IpAddr> = report.done.iter().map(|(address, _)| *address).collect();
    done.sort_unstable();
    let expected: Vec<IpAddr> = hosts.iter().map(|host| host.parse().unwrap()).collect();
    assert_eq!(done, expected, "every host, once");
    for (host, told_before) in &report.done {
        let last_about_it = report.told.iter().rposition(|told| match told {
            Told::Result { address, .. }
            | Told::HostFailed { address, .. }
            | Told::IcmpLimited { address, .. } => address == host,
        });
        assert!(
            last_about_it.is_some_and(|last| last < *told_before),
            "{host}: done after everything about it"
        );
    }
}
