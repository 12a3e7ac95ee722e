//! Host discovery: which addresses of a scan answer at all, found before their ports are
//! scanned (a /24 of which three hosts are up costs three hosts' port scans, not 256), or
//! instead of a port scan with nmap's `-sn`.
//!
//! As nmap does, by the least privileged means that works: ICMP echo through an ICMP
//! datagram socket where `net.ipv4.ping_group_range` admits the process's group, through
//! a raw socket when privileged (`ping`), and otherwise TCP connects to ports 80 and 443,
//! where an accepted connection and a refused one alike mean something is there. The
//! connects are the scan engine's own, driven with the TCP prober over a plan of those two
//! ports: the same order, timing, retries and socket budget as a port scan.
//!
//! A host that does not answer echo requests (a firewall that drops ICMP, as many do) may
//! still serve or refuse TCP: nmap's default discovery sends TCP probes to 443 and 80
//! beside the echo. Here the hosts silent to the echo sweep get the TCP connects after it,
//! waiting as long as the round trips of the hosts that answered say, not the initial
//! timeout; `-PE` asks for the echo alone.

pub(crate) mod echo;
mod ping;

pub use ping::Pinger;
pub(crate) use ping::{Received, receive_with_ttl};

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime};

use common::contract::error::{Error, Result, warn};
use common::contract::output::RecordWriter;
use common::contract::record::{HostRecord, HostState, PortState, Reason};
use common::contract::timestamp::rfc3339;
use common::services::ports::Proto;
use nix::sys::signalfd::SignalFd;

use crate::TOOL;
use crate::driver::Epoller;
use crate::engine::{self, FollowUp, Observer, Plan, TargetPort};
use crate::order::{Permutation, Shard};
use crate::output::ProgressLine;
use crate::probe::TcpConnect;
use crate::targets::{Host, IndexSet, Targets};
use crate::timing::Profile;

/// Whether and how hosts are discovered before the port scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discovery {
    /// Before the port scan of more than one address (a single one is scanned at once:
    /// its port scan tells as much as a ping would).
    Auto,
    /// `-Pn`: every address is scanned.
    Skip,
    /// `-sn`: discovery only, a host record per host.
    Only,
}

/// What discovery used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    IcmpDatagram,
    IcmpRaw,
    TcpConnect,
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::IcmpDatagram => "ICMP echo, datagram socket",
            Self::IcmpRaw => "ICMP echo, raw socket",
            Self::TcpConnect => "TCP connect to ports 80 and 443",
        })
    }
}

/// The discovery's knobs, the port scan's own.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// ICMP echo alone (`-PE`): no TCP connects for the hosts silent to it.
    pub echo_only: bool,
    pub profile: Profile,
    pub max_rate: Option<f64>,
    pub min_rate: Option<f64>,
    pub seed: Option<u64>,
    /// The most sockets open at once, for TCP connects.
    pub budget: usize,
}

/// How a discovery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub mechanism: Mechanism,
    /// After an echo sweep, how many hosts silent to it got TCP connects.
    pub connects_after_echo: Option<u64>,
    /// Whether a signal stopped it.
    pub interrupted: bool,
}

/// Where discovery reports each host, once, as soon as its state is known.
pub trait Listener {
    /// `rtt`: of the answer that showed the host up.
    fn host(
        &mut self,
        host: &Host,
        state: HostState,
        reason: Reason,
        rtt: Option<Duration>,
    ) -> Result<()>;
    /// A host that could not be probed (no route from here).
    fn host_failed(&mut self, host: &Host, why: &str);
    /// A phase begins: what it sends, to how many hosts (for the progress line).
    fn phase(&mut self, what: &'static str, hosts: u64);
    /// A host silent to this phase, left to the next.
    fn deferred(&mut self);
}

/// Whether `discovery` asks for a discovery of `targets`.
pub fn wanted(discovery: Discovery, targets: &Targets) -> bool {
    match discovery {
        Discovery::Skip => false,
        Discovery::Only => true,
        Discovery::Auto => (0..targets.len())
            .filter_map(|index| targets.get(index))
            .nth(1)
            .is_some(),
    }
}

/// The ports whose connects stand in for a ping where no ICMP socket can be had: nmap's
/// choice for an unprivileged ping, the two ports most hosts either serve or refuse.
const PING_PORTS: [u16; 2] = [80, 443];

/// What the phases send, as the progress line names them.
const ECHO_PHASE: &str = "ICMP echo";
const CONNECT_PHASE: &str = "TCP connects to 80 and 443";

/// Finds which hosts of `targets` are up, telling `listener` each one's state.
pub fn run(
    targets: Targets,
    options: &Options,
    pinger: Option<&Pinger>,
    signals: &SignalFd,
    listener: &mut impl Listener,
) -> Result<Outcome> {
    let Some(pinger) = pinger else {
        listener.phase(CONNECT_PHASE, targets.len());
        let interrupted = connect_sweep(targets, options, options.profile, signals, listener)?;
        return Ok(Outcome {
            mechanism: Mechanism::TcpConnect,
            connects_after_echo: None,
            interrupted,
        });
    };
    let mechanism = match pinger.kind() {
        ping::Kind::Datagram => Mechanism::IcmpDatagram,
        ping::Kind::Raw => Mechanism::IcmpRaw,
    };
    // A table too big for the set of hosts already known gets the echo alone.
    let known = (!options.echo_only)
        .then(|| IndexSet::new(targets.len()))
        .flatten();
    listener.phase(ECHO_PHASE, targets.len());
    let mut echo = EchoAnswers {
        listener: &mut *listener,
        known,
        silent: 0,
    };
    let swept = {
        let mut driver = Epoller::new(Some(signals))?;
        ping::sweep(
            &targets,
            pinger,
            options.profile,
            options.max_rate,
            &mut driver,
            &mut echo,
        )?
    };
    let (silent, known) = (echo.silent, echo.known);
    let outcome = Outcome {
        mechanism,
        connects_after_echo: None,
        interrupted: swept.interrupted,
    };
    let Some(known) = known.filter(|_| silent > 0 && !swept.interrupted) else {
        return Ok(outcome);
    };
    // The hosts that answered set how long an answer from their network takes; a silent
    // host's TCP answer takes about as long (never longer than the initial timeout).
    let mut profile = options.profile;
    if let Some(timeout) = swept.timeout {
        profile.initial_timeout = timeout.min(profile.initial_timeout);
    }
    listener.phase(CONNECT_PHASE, silent);
    let interrupted = connect_sweep(targets.without(known), options, profile, signals, listener)?;
    Ok(Outcome {
        connects_after_echo: Some(silent),
        interrupted,
        ..outcome
    })
}

/// TCP connects to [`PING_PORTS`] of every host of `targets`, through the scan engine.
/// Whether a signal stopped them.
fn connect_sweep(
    targets: Targets,
    options: &Options,
    profile: Profile,
    signals: &SignalFd,
    listener: &mut impl Listener,
) -> Result<bool> {
    let ports: Vec<TargetPort> = PING_PORTS
        .map(|port| TargetPort {
            proto: Proto::Tcp,
            port,
        })
        .into();
    let pairs = targets
        .len()
        .checked_mul(ports.len() as u64)
        .ok_or_else(|| Error::usage("more than 2^64 (host, port) pairs to probe"))?;
    let plan = Plan {
        targets,
        order: Permutation::new(pairs, crate::HOST_GROUP * ports.len() as u64, options.seed),
        ports,
        shard: Shard::WHOLE,
        profile,
        max_rate: options.max_rate,
        min_rate: options.min_rate,
        budget: options.budget,
    };
    let mut connects = Connects {
        listener,
        pending: HashMap::new(),
    };
    let mut driver = Epoller::new(Some(signals))?;
    let summary = engine::run(&plan, TcpConnect::default(), &mut driver, &mut connects)?;
    Ok(summary.interrupted)
}

/// What the echo sweep tells of each host, passed on, except that a host silent to it is
/// held back for the TCP connects while `known` records the hosts already decided.
struct EchoAnswers<'a, L: Listener> {
    listener: &'a mut L,
    known: Option<IndexSet>,
    /// Hosts held back.
    silent: u64,
}

impl<L: Listener> Listener for EchoAnswers<'_, L> {
    fn host(
        &mut self,
        host: &Host,
        state: HostState,
        reason: Reason,
        rtt: Option<Duration>,
    ) -> Result<()> {
        let Some(known) = &mut self.known else {
            return self.listener.host(host, state, reason, rtt);
        };
        if state == HostState::Down && reason == Reason::NoResponse {
            self.silent += 1;
            self.listener.deferred();
            return Ok(());
        }
        known.insert(host.index);
        self.listener.host(host, state, reason, rtt)
    }

    fn host_failed(&mut self, host: &Host, why: &str) {
        if let Some(known) = &mut self.known {
            known.insert(host.index);
        }
        self.listener.host_failed(host, why);
    }

    fn phase(&mut self, what: &'static str, hosts: u64) {
        self.listener.phase(what, hosts);
    }

    fn deferred(&mut self) {
        self.listener.deferred();
    }
}

/// What the engine's port results say of their hosts: the first answer to either port
/// shows a host up; a host is down once both ports went unanswered or unreachable.
struct Connects<'a, L: Listener> {
    listener: &'a mut L,
    /// Hosts with a port still being probed: ports concluded, and whether one answered.
    pending: HashMap<Host, (usize, bool)>,
}

impl<L: Listener, S> FollowUp<S> for Connects<'_, L> {}

impl<L: Listener> Observer for Connects<'_, L> {
    fn result(
        &mut self,
        host: &Host,
        _port: TargetPort,
        state: PortState,
        reason: Reason,
        rtt: Option<Duration>,
    ) -> Result<()> {
        let (concluded, up) = self.pending.entry(host.clone()).or_default();
        *concluded += 1;
        // Accepted or refused: a SYN-ACK or a reset came back, so a host is there.
        let answered = matches!(state, PortState::Open | PortState::Closed);
        let first_answer = answered && !*up;
        *up |= answered;
        let last = *concluded == PING_PORTS.len();
        let down = last && !*up;
        if last {
            self.pending.remove(host);
        }
        if first_answer {
            self.listener.host(host, HostState::Up, reason, rtt)?;
        } else if down {
            // Both ports said the same here (silence, or an unreachable): the last one's
            // reason stands for the host.
            self.listener.host(host, HostState::Down, reason, None)?;
        }
        Ok(())
    }

    fn host_failed(&mut self, host: &Host, why: &str) {
        self.pending.remove(host);
        self.listener.host_failed(host, why);
    }

    /// TCP connects draw no rationed ICMP errors worth a notice: never called for them.
    fn icmp_limited(&mut self, _host: &Host, _interval: Duration, _remaining: Duration) {}

    /// A host is told as soon as it is known up or down, in `result`.
    fn host_done(&mut self, _host: &Host) -> Result<()> {
        Ok(())
    }

    fn progress(&mut self, _now: Instant, _done: u64, _total: u64) -> Result<()> {
        Ok(())
    }
}

/// A token for this run's echo requests: it only needs to differ from other ping
/// programs', so the clock and the process id do.
pub(crate) fn run_token() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    #[expect(clippy::cast_possible_truncation, reason = "any 64 bits will do")]
    let low = nanos as u64;
    low ^ u64::from(std::process::id()).rotate_left(40)
}

/// The hosts a discovery found, counted, and with `-sn` printed as host records: as they
/// come, or all at the end in address order with `--sort`.
pub struct Found<W: Write> {
    /// The hosts that are up, to be port-scanned.
    pub live: Vec<Host>,
    /// Why each host in `live` is taken to be up, for the XML file.
    pub reasons: HashMap<Host, Reason>,
    pub down: u64,
    /// The hosts discovery could not probe (an unreachable network).
    pub failed: Vec<IpAddr>,
    /// With `-sn`: where the records go, and whether down hosts get one (`--all`).
    records: Option<(RecordWriter<W>, bool)>,
    /// With `--sort`: the records held until the end.
    held: Option<Vec<HostRecord>>,
    progress: ProgressLine,
    /// The phase under way, as the progress line begins: "host discovery, ICMP echo: ".
    phase: String,
    /// Its hosts, and how many of them it has settled.
    phase_hosts: u64,
    phase_done: u64,
}

impl<W: Write> Found<W> {
    /// Counts the hosts and keeps the live ones, printing nothing.
    pub fn quiet() -> Self {
        Self {
            live: Vec::new(),
            reasons: HashMap::new(),
            down: 0,
            failed: Vec::new(),
            records: None,
            held: None,
            progress: ProgressLine::on_terminal(),
            phase: String::new(),
            phase_hosts: 0,
            phase_done: 0,
        }
    }

    /// Also prints a host record per live host, and per down host if `all`.
    pub fn printing(writer: RecordWriter<W>, all: bool, sort: bool) -> Self {
        Self {
            records: Some((writer, all)),
            held: sort.then(Vec::new),
            ..Self::quiet()
        }
    }

    /// Prints held records and ends the output.
    pub fn finish(mut self) -> Result<Self> {
        self.progress.clear();
        if let Some((mut writer, _)) = self.records.take() {
            if let Some(mut held) = self.held.take() {
                held.sort_by(|a, b| a.address.cmp(&b.address).then_with(|| a.host.cmp(&b.host)));
                for record in &held {
                    writer.write(record)?;
                }
            }
            writer.finish()?;
        }
        Ok(self)
    }

    /// The closing line, as nmap's "N IP addresses (M hosts up)", with the means used.
    pub fn summary(&self, outcome: Outcome, elapsed: Duration) -> String {
        summary(
            self.live.len() as u64,
            self.down + self.failed.len() as u64,
            outcome,
            elapsed,
        )
    }
}

fn summary(up: u64, others: u64, outcome: Outcome, elapsed: Duration) -> String {
    let addresses = up + others;
    let plural = |count: u64| if count == 1 { "" } else { "s" };
    let connects = match outcome.connects_after_echo {
        Some(silent) => format!(
            "; then TCP connects to ports 80 and 443 of the {silent} host{} silent to it",
            plural(silent)
        ),
        None => String::new(),
    };
    format!(
        "host discovery: {addresses} address{}, {up} host{} up ({}{connects}) in {:.2}s{}",
        if addresses == 1 { "" } else { "es" },
        plural(up),
        outcome.mechanism,
        elapsed.as_secs_f64(),
        if outcome.interrupted {
            " (interrupted)"
        } else {
            ""
        }
    )
}

/// The record of a host that discovery found `state`, for `reason`, the answer (if any)
/// taking `rtt`; stamped now.
pub fn host_record(
    host: &Host,
    state: HostState,
    reason: Reason,
    rtt: Option<Duration>,
) -> HostRecord {
    HostRecord {
        host: host.label.clone(),
        address: host.address,
        state,
        reason,
        // Microsecond resolution, as port records have it.
        rtt_ms: rtt.map(|rtt| (rtt.as_secs_f64() * 1e6).round() / 1e3),
        time: rfc3339(SystemTime::now()),
    }
}

impl<W: Write> Found<W> {
    /// One more host of the phase settled: the progress line may show it.
    fn settled(&mut self) {
        self.phase_done += 1;
        let up = self.live.len();
        self.progress.draw(
            Instant::now(),
            &self.phase,
            self.phase_done,
            self.phase_hosts,
            "hosts",
            || format!(", {up} up"),
        );
    }
}

impl<W: Write> Found<W> {
    /// Takes a host's state as its record says it, and prints the record if it is shown:
    /// the one record, stamped once, that other outputs (-oJ) get too.
    pub fn take(&mut self, host: &Host, record: &HostRecord) -> Result<()> {
        let (state, reason) = (record.state, record.reason);
        match state {
            HostState::Up => {
                self.live.push(host.clone());
                self.reasons.insert(host.clone(), reason);
            }
            HostState::Down => self.down += 1,
        }
        self.settled();
        let Some((writer, all)) = &mut self.records else {
            return Ok(());
        };
        if state == HostState::Down && !*all {
            return Ok(());
        }
        if let Some(held) = &mut self.held {
            held.push(record.clone());
            return Ok(());
        }
        self.progress.clear();
        writer.write(record)
    }
}

impl<W: Write> Listener for Found<W> {
    fn host(
        &mut self,
        host: &Host,
        state: HostState,
        reason: Reason,
        rtt: Option<Duration>,
    ) -> Result<()> {
        self.take(host, &host_record(host, state, reason, rtt))
    }

    fn host_failed(&mut self, host: &Host, why: &str) {
        self.failed.push(host.address);
        self.settled();
        self.progress.clear();
        warn(TOOL, format_args!("{}: {why}", host.describe()));
    }

    fn phase(&mut self, what: &'static str, hosts: u64) {
        self.phase = format!("host discovery, {what}: ");
        self.phase_hosts = hosts;
        self.phase_done = 0;
        self.progress.restart();
    }

    fn deferred(&mut self) {
        self.settled();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_counts_addresses_and_hosts_up() {
        let outcome = Outcome {
            mechanism: Mechanism::IcmpDatagram,
            connects_after_echo: None,
            interrupted: false,
        };
        assert_eq!(
            summary(3, 253, outcome, Duration::from_millis(312)),
            "host discovery: 256 addresses, 3 hosts up (ICMP echo, datagram socket) in 0.31s"
        );
        let outcome = Outcome {
            mechanism: Mechanism::IcmpRaw,
            connects_after_echo: Some(253),
            interrupted: false,
        };
        assert_eq!(
            summary(4, 252, outcome, Duration::from_millis(512)),
            "host discovery: 256 addresses, 4 hosts up (ICMP echo, raw socket; then TCP \
             connects to ports 80 and 443 of the 253 hosts silent to it) in 0.51s"
        );
        let outcome = Outcome {
            mechanism: Mechanism::TcpConnect,
            connects_after_echo: None,
            interrupted: true,
        };
        assert_eq!(
            summary(1, 0, outcome, Duration::from_secs(2)),
            "host discovery: 1 address, 1 host up (TCP connect to ports 80 and 443) in 2.00s \
             (interrupted)"
        );
    }
}
