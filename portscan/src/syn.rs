//! The SYN scan (-sS): one raw TCP socket per address family sends a crafted SYN for every
//! (host, port) pair, and reads every reply, as discovery's echo sweep does with ICMP. The
//! kernel's TCP stack never knows of these probes, so it answers a SYN-ACK with a reset by
//! itself and no connection is left half-open (FORMAT.md says what a host firewall that
//! drops those resets changes). A probe's identity is a keyed hash of its addresses
//! ([`packet::Keys`]), so a reply is taken only if it echoes it; what is kept per probe is
//! what its timing and retries need, for the probes in flight alone.
//!
//! Order, shard, timing (each host's window, round trips, retries), rate and output are
//! the connect scan's ([`crate::engine`]): the same [`Plan`], [`HostTiming`], [`Rate`]
//! and [`Observer`], so records, states and files are the same, with nmap's SYN-scan
//! reasons. ICMP errors quoting a SYN are read on raw ICMP sockets, for the reason of a
//! filtered port.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use common::contract::error::{Error, Result};
use common::contract::record::{PortState, Reason};
use nix::errno::Errno;
use nix::sys::epoll::EpollFlags;
use nix::sys::socket::{MsgFlags, SockaddrStorage, recvfrom, sendto};
use socket2::{Domain, Protocol, SockFilter, Socket, Type};

use crate::driver::{Driver, Wakeup};
use crate::engine::{
    FOLLOW_UP_TOKENS, FollowUp, HOST_TIMEOUT, Observer, Plan, Summary, TargetPort, pairs_of,
};
use crate::probe::{Verdict, classify_immediate};
use crate::source;
use crate::targets::Host;
use crate::timing::{HostTiming, Rate};

pub(crate) mod packet;

use packet::{Cookie, Keys, Reply};

/// The sockets of a SYN scan, opened with privilege ([`crate::privilege`]): raw TCP to send
/// SYNs and read the replies, raw ICMP to read the errors; IPv4's, then IPv6's. A family
/// whose socket cannot be had keeps the error, which each of its hosts reports.
pub struct SynSockets {
    tcp: [io::Result<Socket>; 2],
    icmp: [Option<Socket>; 2],
}

impl SynSockets {
    /// Opens them; the error of IPv4's raw TCP socket if even that cannot be had (no
    /// CAP_NET_RAW).
    pub fn open() -> io::Result<Self> {
        let raw = |domain, protocol| {
            let socket = Socket::new(domain, Type::RAW.nonblocking().cloexec(), Some(protocol))?;
            // Replies come in bursts while the loop is still sending; where the system
            // allows it, a larger buffer loses fewer of them.
            let _ = socket.set_recv_buffer_size(BUFFER);
            let _ = socket.set_send_buffer_size(BUFFER);
            Ok::<_, io::Error>(socket)
        };
        let v4 = raw(Domain::IPV4, Protocol::TCP)?;
        v4.attach_filter(&ACKS_V4)?;
        let v6 = raw(Domain::IPV6, Protocol::TCP).and_then(|v6| {
            v6.attach_filter(&ACKS_V6)?;
            Ok(v6)
        });
        Ok(Self {
            tcp: [Ok(v4), v6],
            icmp: [
                raw(Domain::IPV4, Protocol::ICMPV4).ok(),
                raw(Domain::IPV6, Protocol::ICMPV6).ok(),
            ],
        })
    }
}

/// Classic BPF programs that take only the TCP segments with the ACK flag (a SYN-ACK, a
/// reset that answers a SYN): a raw TCP socket gets a copy of every segment the host
/// receives, and on a busy host the rest would crowd the replies out of its buffer. IPv4's
/// raw socket sees the IP header first (its length in the low nibble of byte 0, BPF's
/// `ldxb 4*([0]&0xf)`), IPv6's the TCP header alone; the flags are byte 13 of TCP's.
const ACKS_V4: [SockFilter; 5] = [
    SockFilter::new(0xb1, 0, 0, 0),      // ldxb 4*([0]&0xf)
    SockFilter::new(0x50, 0, 0, 13),     // ldb [x + 13]
    SockFilter::new(0x45, 0, 1, 0x10),   // jset #ACK, take, drop
    SockFilter::new(0x06, 0, 0, 0xffff), // ret: take
    SockFilter::new(0x06, 0, 0, 0),      // ret: drop
];
const ACKS_V6: [SockFilter; 4] = [
    SockFilter::new(0x30, 0, 0, 13),     // ldb [13]
    SockFilter::new(0x45, 0, 1, 0x10),   // jset #ACK, take, drop
    SockFilter::new(0x06, 0, 0, 0xffff), // ret: take
    SockFilter::new(0x06, 0, 0, 0),      // ret: drop
];

/// The socket buffers to ask for.
const BUFFER: usize = 1 << 22;
/// The largest packet read; a reply to a SYN, or an error quoting one, is far smaller.
const READ_SIZE: usize = 2048;
/// SYNs waiting for their answers at once: each costs a few bytes, and the bound keeps
/// the state small however large the scan. As many as the connect scan's most sockets
/// ([`crate::limits::MOST`]): with fewer, silent addresses (each waiting out its
/// timeouts) went at a quarter of the connect scan's pace.
const MOST_IN_FLIGHT: usize = crate::limits::MOST;
/// Parked pairs wait for their host's window; past this many, no new pair is drawn.
const PARK_LIMIT: usize = 1024;
/// SYNs sent in one turn before the loop reads the replies already back.
const SENDS_PER_TURN: usize = 64;
/// How long to wait before sending again when the system had no buffer for a SYN, and how
/// many such waits in a row, with nothing in flight, before giving up.
const LOCAL_BACKOFF: Duration = Duration::from_millis(20);
const LOCAL_ATTEMPTS: u32 = 250;
/// The epoll tokens of the sockets: TCP's by family, then ICMP's.
const TCP_TOKENS: usize = 0;
const ICMP_TOKENS: usize = 2;

/// A pair to try: its number in the plan's order, and its try (0: the first).
#[derive(Debug, Clone, Copy)]
struct Pending {
    pair: u64,
    number: u8,
}

/// A SYN waiting for its answer.
struct InFlight {
    pair: u64,
    number: u8,
    cookie: Cookie,
    sent: Instant,
    /// Tells its deadline in the heap from those of earlier tries of the same target.
    serial: u64,
}

struct HostEntry {
    host: Host,
    timing: HostTiming,
    started: Instant,
    /// The address our SYNs go from, the kernel's choice; `None` while it has none yet.
    source: Option<IpAddr>,
    unsourced: Option<source::Wait>,
    failed: bool,
    settled: u64,
    pairs: u64,
}

struct SynScan<'a, O: Observer + FollowUp<Socket>> {
    plan: &'a Plan,
    sockets: &'a SynSockets,
    observer: &'a mut O,
    keys: Keys,
    /// Boxed: the map's table grows to its peak of hosts under way and never shrinks, so
    /// its slots stay small and a host's state lives only as long as its scan.
    hosts: HashMap<u64, Box<HostEntry>>,
    /// By the target it went to: a reply names its sender and port.
    in_flight: HashMap<SocketAddr, InFlight>,
    deadlines: BinaryHeap<Reverse<(Instant, u64, SocketAddr)>>,
    retries: VecDeque<Pending>,
    parked: VecDeque<Pending>,
    position: u64,
    rate: Rate,
    serial: u64,
    done: u64,
    total: u64,
    local_failures: u32,
    woken: Vec<Wakeup>,
}

/// Runs the SYN scan of `plan` to its end, or until `driver` reports a signal. An
/// observer with work of its own (-sV probing the open ports as they are found) shares the
/// loop, as it does the connect scan's.
pub fn run(
    plan: &Plan,
    sockets: &SynSockets,
    driver: &mut impl Driver<Socket>,
    observer: &mut (impl Observer + FollowUp<Socket>),
) -> Result<Summary> {
    let watched = sockets.tcp.iter().map(|socket| socket.as_ref().ok());
    let watched = watched.chain(sockets.icmp.iter().map(Option::as_ref));
    for (token, socket) in watched.enumerate() {
        if let Some(socket) = socket {
            driver
                .register(socket, token, EpollFlags::EPOLLIN)
                .map_err(|e| Error::io("watching a raw socket", e))?;
        }
    }
    let now = driver.now();
    let total = plan.shard_pairs();
    let mut scan = SynScan {
        plan,
        sockets,
        observer,
        keys: Keys::new(),
        hosts: HashMap::new(),
        in_flight: HashMap::new(),
        deadlines: BinaryHeap::new(),
        retries: VecDeque::new(),
        parked: VecDeque::new(),
        position: plan.shard.index,
        rate: Rate::new(now, plan.max_rate, plan.min_rate),
        serial: 0,
        done: 0,
        total,
        local_failures: 0,
        woken: Vec::new(),
    };
    let interrupted = scan.run(driver)?;
    Ok(Summary {
        sent: scan.rate.sent(),
        interrupted,
    })
}

impl<O: Observer + FollowUp<Socket>> SynScan<'_, O> {
    fn run(&mut self, driver: &mut impl Driver<Socket>) -> Result<bool> {
        loop {
            let now = driver.now();
            let mut wake = self.send(now)?;
            if let Some(at) = self.observer.turn(driver)? {
                earliest(at, &mut wake);
            }
            let exhausted = self.retries.is_empty()
                && self.parked.is_empty()
                && self.position >= self.plan.order.len();
            if self.in_flight.is_empty() && exhausted && !self.observer.busy() {
                return Ok(false);
            }
            self.observer.progress(now, self.done, self.total)?;
            let deadline = self.deadlines.peek().map(|Reverse((at, _, _))| *at);
            let until = match (deadline, wake) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => a.or(b).unwrap_or(now + Duration::from_secs(1)),
            };
            driver
                .wait(until.saturating_duration_since(now))
                .map_err(|e| Error::io("waiting for replies", e))?;
            let now = driver.now();
            let mut woken = std::mem::take(&mut self.woken);
            woken.extend(driver.ready());
            for wakeup in woken.drain(..) {
                match wakeup {
                    Wakeup::Signal => return Ok(true),
                    Wakeup::Answer(token) if token >= FOLLOW_UP_TOKENS => {
                        self.observer.ready(token, driver)?;
                    }
                    Wakeup::Answer(token) => self.receive(token, now, driver)?,
                }
            }
            self.woken = woken;
            self.expire(now)?;
        }
    }

    /// Sends what the windows, the rate and the bound on SYNs in flight allow; returns
    /// when the clock alone would let more go.
    fn send(&mut self, now: Instant) -> Result<Option<Instant>> {
        let mut wake = None;
        let mut parked = std::mem::take(&mut self.parked);
        // Only what went out (or was settled) counts: pairs that wait for their host's
        // window cost a look each, and counting them made a turn of parked pairs end as
        // if more could go at once, so the loop spun while a silent host held them.
        let mut sends_left = SENDS_PER_TURN;
        loop {
            if sends_left == 0 {
                // More could go at once: read what came back, then carry on at once
                // rather than at the next deadline.
                earliest(now, &mut wake);
                break;
            }
            if self.in_flight.len() >= MOST_IN_FLIGHT {
                break;
            }
            if !self.rate.allows(now) {
                earliest(self.rate.next_allowed(now), &mut wake);
                break;
            }
            let Some(pending) = parked
                .pop_front()
                .or_else(|| self.retries.pop_front())
                .or_else(|| self.draw())
            else {
                break;
            };
            match self.try_send(pending, now)? {
                Sent::Yes | Sent::Settled => sends_left -= 1,
                Sent::Wait(at) => {
                    if let Some(at) = at {
                        earliest(at, &mut wake);
                    }
                    self.parked.push_back(pending);
                    if self.plan.targets.len() == 1 || self.parked.len() >= PARK_LIMIT {
                        break;
                    }
                }
                Sent::Backoff => {
                    self.retries.push_front(pending);
                    earliest(now + LOCAL_BACKOFF, &mut wake);
                    break;
                }
            }
        }
        // What was parked and not tried this turn keeps its place ahead of the rest.
        while let Some(pending) = parked.pop_back() {
            self.parked.push_front(pending);
        }
        if !self.parked.is_empty() && wake.is_none() && self.in_flight.is_empty() {
            earliest(now + LOCAL_BACKOFF, &mut wake);
        }
        Ok(wake)
    }

    /// The next pair of this shard from the permutation.
    fn draw(&mut self) -> Option<Pending> {
        if self.position >= self.plan.order.len() {
            return None;
        }
        let pair = self.plan.order.at(self.position);
        self.position = self.position.saturating_add(self.plan.shard.count);
        Some(Pending { pair, number: 0 })
    }

    /// Sends one try of `pending`, if its host may have it now.
    fn try_send(&mut self, pending: Pending, now: Instant) -> Result<Sent> {
        let host_index = self.host_of(pending.pair);
        let port = self.port_of(pending.pair);
        let floor = self.rate.behind_floor(now);
        let host_timeout = self.plan.profile.host_timeout;
        let Some(entry) = self.host(host_index, now) else {
            // Excluded, or given up: the pair is done without a result.
            self.settle(host_index)?;
            return Ok(Sent::Settled);
        };
        if host_timeout.is_some_and(|limit| now.saturating_duration_since(entry.started) > limit) {
            self.fail_host(host_index, HOST_TIMEOUT);
            self.settle(host_index)?;
            return Ok(Sent::Settled);
        }
        let address = entry.host.address;
        if let Some(wait) = entry.unsourced.as_mut() {
            match wait.poll(address, now) {
                source::Poll::Later(at) => return Ok(Sent::Wait(Some(at))),
                source::Poll::GiveUp => {
                    self.fail_host(host_index, source::NO_SOURCE);
                    self.settle(host_index)?;
                    return Ok(Sent::Settled);
                }
                source::Poll::Ready => entry.unsourced = None,
            }
        }
        let timing = &entry.timing;
        if !(timing.can_send(now) || floor && timing.next_send_at(now) <= now) {
            return Ok(Sent::Wait(
                timing.window_open().then(|| timing.next_send_at(now)),
            ));
        }
        let target = SocketAddr::new(address, port.port);
        if self.in_flight.contains_key(&target) {
            // The same address twice among the targets: one SYN to it at a time, or the
            // replies could not be told apart.
            return Ok(Sent::Wait(None));
        }
        let entry = self.hosts.get_mut(&host_index).expect("just looked up");
        let source = match entry.source {
            Some(source) => source,
            None => match source_towards(address) {
                Ok(source) => *entry.source.insert(source),
                Err(_) => return self.unroutable(host_index),
            },
        };
        let cookie = self.keys.cookie(source, target);
        let socket = match &self.sockets.tcp[usize::from(address.is_ipv6())] {
            Ok(socket) => socket,
            Err(error) => {
                let why = format!("no raw socket for its address family: {error}");
                self.fail_host(host_index, &why);
                self.settle(host_index)?;
                return Ok(Sent::Settled);
            }
        };
        let Some(syn) = packet::syn(source, target, cookie) else {
            return self.unroutable(host_index);
        };
        let to = SockaddrStorage::from(SocketAddr::new(address, 0));
        if let Err(errno) = sendto(socket.as_raw_fd(), &syn, &to, MsgFlags::empty()) {
            return self.refused(pending, port, errno);
        }
        self.local_failures = 0;
        self.rate.on_send();
        let entry = self.hosts.get_mut(&host_index).expect("just looked up");
        entry.timing.on_send(now);
        self.serial += 1;
        let deadline = now + entry.timing.timeout_for(pending.number);
        self.deadlines
            .push(Reverse((deadline, self.serial, target)));
        self.in_flight.insert(
            target,
            InFlight {
                pair: pending.pair,
                number: pending.number,
                cookie,
                sent: now,
                serial: self.serial,
            },
        );
        Ok(Sent::Yes)
    }

    /// A SYN the system would not send: a local firewall's verdict, no route, or a
    /// shortage to wait out.
    fn refused(&mut self, pending: Pending, port: TargetPort, errno: Errno) -> Result<Sent> {
        let host_index = self.host_of(pending.pair);
        match classify_immediate(errno) {
            Verdict::Final(_, reason) => {
                self.report(host_index, port, PortState::Filtered, reason, None)?;
                Ok(Sent::Settled)
            }
            Verdict::NoRoute => self.unroutable(host_index),
            _ => {
                self.local_failures += 1;
                if self.local_failures > LOCAL_ATTEMPTS && self.in_flight.is_empty() {
                    return Err(Error::io("sending SYNs", errno.into()));
                }
                Ok(Sent::Backoff)
            }
        }
    }

    fn unroutable(&mut self, host_index: u64) -> Result<Sent> {
        let why = format!("no route to {}", self.entry(host_index).host.address);
        self.fail_host(host_index, &why);
        self.settle(host_index)?;
        Ok(Sent::Settled)
    }

    /// Reads every packet waiting on the socket of `token`, and watches it again.
    fn receive(
        &mut self,
        token: usize,
        now: Instant,
        driver: &mut impl Driver<Socket>,
    ) -> Result<()> {
        let icmp = token >= ICMP_TOKENS;
        let ipv6 = token % 2 == 1;
        let socket = if icmp {
            self.sockets.icmp[usize::from(ipv6)].as_ref()
        } else {
            self.sockets.tcp[usize::from(ipv6)].as_ref().ok()
        };
        let Some(socket) = socket else {
            return Ok(());
        };
        let mut buffer = [0; READ_SIZE];
        loop {
            let (length, from) = match recvfrom::<SockaddrStorage>(socket.as_raw_fd(), &mut buffer)
            {
                Ok(read) => read,
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => break,
                Err(error) => return Err(Error::io("reading replies", error.into())),
            };
            let packet = &buffer[..length.min(READ_SIZE)];
            let reply = if icmp {
                packet::icmp_reply(ipv6, packet)
            } else {
                from.as_ref()
                    .and_then(address_of)
                    .and_then(|from| packet::tcp_reply(from, packet))
            };
            if let Some(reply) = reply {
                self.answer(reply, now)?;
            }
        }
        let token = if icmp { ICMP_TOKENS } else { TCP_TOKENS } + usize::from(ipv6);
        driver
            .rearm(socket, token, EpollFlags::EPOLLIN)
            .map_err(|e| Error::io("watching a raw socket", e))
    }

    /// A reply: the port's state, if it answers a SYN in flight.
    fn answer(&mut self, reply: Reply, now: Instant) -> Result<()> {
        let ours = self
            .in_flight
            .get(&reply.target)
            .is_some_and(|try_| reply.answers(try_.cookie));
        if !ours {
            return Ok(());
        }
        let try_ = self.in_flight.remove(&reply.target).expect("just found");
        let host_index = self.host_of(try_.pair);
        let port = self.port_of(try_.pair);
        self.entry(host_index)
            .timing
            .on_answer(now, try_.sent, try_.number);
        let rtt = now.saturating_duration_since(try_.sent);
        self.report(host_index, port, reply.state, reply.reason, Some(rtt))
    }

    /// Gives up the SYNs whose deadline has passed: tried again, or the port is filtered.
    fn expire(&mut self, now: Instant) -> Result<()> {
        while let Some(Reverse((deadline, serial, target))) = self.deadlines.peek().copied() {
            if deadline > now {
                break;
            }
            self.deadlines.pop();
            if self
                .in_flight
                .get(&target)
                .is_none_or(|try_| try_.serial != serial)
            {
                continue;
            }
            let try_ = self.in_flight.remove(&target).expect("just found");
            let host_index = self.host_of(try_.pair);
            let port = self.port_of(try_.pair);
            let timing = &mut self.entry(host_index).timing;
            timing.on_timeout();
            if timing.should_retry(try_.number) {
                self.retries.push_back(Pending {
                    pair: try_.pair,
                    number: try_.number + 1,
                });
            } else {
                let silence = (PortState::Filtered, Reason::NoResponse);
                self.report(host_index, port, silence.0, silence.1, None)?;
            }
        }
        Ok(())
    }

    /// The state of a host, created on first use; `None` if excluded or failed.
    fn host(&mut self, index: u64, now: Instant) -> Option<&mut HostEntry> {
        if !self.hosts.contains_key(&index) {
            let host = self.plan.targets.get(index)?;
            let unsourced = source::Wait::start(host.address, now);
            let pairs = pairs_of(self.plan, index);
            let entry = HostEntry {
                host,
                timing: HostTiming::new(self.plan.profile),
                started: now,
                source: None,
                unsourced,
                failed: false,
                settled: 0,
                pairs,
            };
            self.hosts.insert(index, Box::new(entry));
        }
        self.hosts
            .get_mut(&index)
            .map(|entry| &mut **entry)
            .filter(|entry| !entry.failed)
    }

    fn entry(&mut self, host_index: u64) -> &mut HostEntry {
        self.hosts
            .get_mut(&host_index)
            .expect("a probe under way keeps its host")
    }

    fn fail_host(&mut self, index: u64, why: &str) {
        if let Some(entry) = self.hosts.get_mut(&index)
            && !entry.failed
        {
            entry.failed = true;
            self.observer.host_failed(&entry.host, why);
        }
    }

    /// A port's result, told unless its host failed meanwhile; the pair is done.
    fn report(
        &mut self,
        host_index: u64,
        port: TargetPort,
        state: PortState,
        reason: Reason,
        rtt: Option<Duration>,
    ) -> Result<()> {
        let entry = self.entry(host_index);
        let reported = if entry.failed {
            Ok(())
        } else {
            let host = entry.host.clone();
            self.observer.result(&host, port, state, reason, rtt)
        };
        let settled = self.settle(host_index);
        reported.and(settled)
    }

    /// Counts a pair as done; a host whose every pair is done leaves the table, and the
    /// observer hears of it.
    fn settle(&mut self, host_index: u64) -> Result<()> {
        self.done += 1;
        if let Some(entry) = self.hosts.get_mut(&host_index) {
            entry.settled += 1;
            if entry.settled == entry.pairs {
                let entry = self.hosts.remove(&host_index).expect("just looked up");
                return self.observer.host_done(&entry.host);
            }
        }
        Ok(())
    }

    fn host_of(&self, pair: u64) -> u64 {
        pair / self.plan.ports.len() as u64
    }

    fn port_of(&self, pair: u64) -> TargetPort {
        let ports = &self.plan.ports;
        ports[usize::try_from(pair % ports.len() as u64).expect("port index")]
    }
}

/// What became of a pair the loop tried to send.
enum Sent {
    Yes,
    /// Done without a SYN: its host is excluded, failed, or the system decided.
    Settled,
    /// Its host may not have it yet (a window, a source address): parked, until the time
    /// given if known.
    Wait(Option<Instant>),
    /// The system had no room for it: it goes again after a pause.
    Backoff,
}

/// The address the kernel sends from towards `address`: a UDP socket's connect() shows its
/// choice and sends nothing.
fn source_towards(address: IpAddr) -> io::Result<IpAddr> {
    let any: IpAddr = if address.is_ipv6() {
        std::net::Ipv6Addr::UNSPECIFIED.into()
    } else {
        std::net::Ipv4Addr::UNSPECIFIED.into()
    };
    let socket = UdpSocket::bind((any, 0))?;
    // The port is never sent to.
    socket.connect((address, 9))?;
    Ok(socket.local_addr()?.ip())
}

/// The IP address of a packet's sender.
fn address_of(from: &SockaddrStorage) -> Option<IpAddr> {
    if let Some(v4) = from.as_sockaddr_in() {
        return Some(IpAddr::V4(v4.ip()));
    }
    from.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
}

/// Moves `wake` earlier to `at`.
fn earliest(at: Instant, wake: &mut Option<Instant>) {
    *wake = Some(wake.map_or(at, |w| w.min(at)));
}
