//! The ICMP echo sweep: one socket per address family sends an echo request to every host
//! and hears every reply, so a /24 costs two sockets, not 256, and the sweep is bounded by
//! round trips, not by descriptors. An ICMP datagram socket (what `ping` uses unprivileged
//! where `net.ipv4.ping_group_range` admits the group; it governs ICMPv6 too) is tried
//! first, then a raw socket (root, or CAP_NET_RAW); without either, discovery falls back
//! to TCP connects (`super`).
//!
//! The sweep keeps one timing per address family for all its hosts, as nmap does for a
//! ping scan: the first replies set the round-trip estimate, and the timeout of every echo
//! still in flight follows it, so silent addresses are given up a few round trips after
//! the live ones answered rather than after the initial timeout. A host that stays silent
//! is retried as the timing says (once, unless answers came only to retries), then is
//! down. IPv4's and IPv6's paths differ (another route, a tunnel, neighbour discovery
//! instead of ARP), so the round trips of one family never shorten the other's waits.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use common::contract::error::{Error, Result};
use common::contract::record::{HostState, Reason};
use nix::errno::Errno;
use nix::sys::epoll::EpollFlags;
use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, SockaddrStorage, recvfrom, recvmsg, sendto, setsockopt, sockopt,
};
use socket2::{Domain, Protocol, Socket, Type};

use super::Listener;
use super::echo::{self, Echo};
use crate::driver::{Driver, Wakeup};
use crate::probe::{Verdict, classify_immediate};
use crate::source;
use crate::targets::{Host, Targets};
use crate::timing::{HostTiming, Profile, Rate};

/// Which kind of ICMP socket the sweep got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SOCK_DGRAM, IPPROTO_ICMP: no privilege, the kernel keeps the identifier.
    Datagram,
    /// SOCK_RAW: privileged; every ICMP message the host gets is ours to sort.
    Raw,
}

/// The sockets of a sweep, IPv4's and IPv6's. A family whose socket cannot be had (a
/// kernel without IPv6) keeps the error, which each of its hosts then reports.
pub struct Pinger {
    kind: Kind,
    sockets: [io::Result<Socket>; 2],
    /// The identifier of a raw socket's requests; a datagram socket's is the kernel's.
    id: u16,
    /// Echoed by every reply to this run's requests.
    token: u64,
}

impl Pinger {
    /// ICMP sockets of the least privileged kind this process may open, or `None`.
    pub fn open(token: u64) -> Option<Self> {
        for (kind, type_) in [(Kind::Datagram, Type::DGRAM), (Kind::Raw, Type::RAW)] {
            let open = |domain, protocol| {
                let socket = Socket::new(domain, type_.nonblocking().cloexec(), Some(protocol))?;
                // A sweep's replies come in bursts; a bigger buffer (where the system
                // allows one) loses fewer of them while the loop is still sending. On the
                // sending side, a request to an address on the link waits in the kernel
                // for its ARP or NDP answer, up to three seconds for a silent address, and
                // counts against the socket's send buffer meanwhile: when that is full,
                // sendto() says EAGAIN and the sweep must wait (see `send`).
                let _ = socket.set_recv_buffer_size(BUFFER);
                let _ = socket.set_send_buffer_size(BUFFER);
                Ok(socket)
            };
            if let Ok(v4) = open(Domain::IPV4, Protocol::ICMPV4) {
                let v6 = open(Domain::IPV6, Protocol::ICMPV6);
                return Some(Self {
                    kind,
                    sockets: [Ok(v4), v6],
                    id: u16::try_from(token >> 48).expect("16 bits"),
                    token,
                });
            }
        }
        None
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Sends try `seq`'s echo request to `address`.
    fn send(&self, address: IpAddr, seq: u16) -> std::result::Result<(), SendError<'_>> {
        let ipv6 = address.is_ipv6();
        let socket = self.sockets[usize::from(ipv6)]
            .as_ref()
            .map_err(SendError::NoSocket)?;
        let packet = echo::request(
            ipv6,
            Echo {
                id: self.id,
                seq,
                token: self.token,
            },
        );
        let to = SockaddrStorage::from(SocketAddr::new(address, 0));
        sendto(socket.as_raw_fd(), &packet, &to, MsgFlags::empty()).map_err(SendError::Refused)?;
        Ok(())
    }

    /// Whether `echo` answers one of this run's requests.
    fn ours(&self, echo: Echo) -> bool {
        echo.token == self.token && (self.kind == Kind::Datagram || echo.id == self.id)
    }

    /// The socket of `ipv6`'s family, or why there is none.
    pub fn socket(&self, ipv6: bool) -> std::result::Result<&Socket, &io::Error> {
        self.sockets[usize::from(ipv6)].as_ref()
    }

    /// Asks the kernel to hand each message read on `ipv6`'s socket its TTL (IP_RECVTTL)
    /// or hop limit (IPV6_RECVHOPLIMIT) as ancillary data, for the OS hint
    /// (`crate::os_hint`): an ICMPv6 socket never reads the IPv6 header, and a datagram
    /// ICMP socket reads no IPv4 header either, so this is the one way that works for
    /// every kind (ip(7), ipv6(7)).
    pub fn read_ttls(&self, ipv6: bool) -> io::Result<()> {
        let socket = self
            .socket(ipv6)
            .map_err(|e| io::Error::new(e.kind(), e.to_string()))?;
        if ipv6 {
            setsockopt(socket, sockopt::Ipv6RecvHopLimit, &true)?;
        } else {
            setsockopt(socket, sockopt::Ipv4RecvTtl, &true)?;
        }
        Ok(())
    }

    /// Sends one echo request to `address`, numbered `seq`.
    pub fn send_one(&self, address: IpAddr, seq: u16) -> io::Result<()> {
        match self.send(address, seq) {
            Ok(()) => Ok(()),
            Err(SendError::NoSocket(e)) => Err(io::Error::new(e.kind(), e.to_string())),
            Err(SendError::Refused(errno)) => Err(errno.into()),
        }
    }

    /// Reads the messages waiting on `address`'s family's socket: the TTL or hop limit
    /// of the reply from `address` to request `seq`, if it is among them (after
    /// [`read_ttls`](Self::read_ttls)).
    pub fn reply_ttl(&self, address: IpAddr, seq: u16) -> io::Result<Option<u8>> {
        let ipv6 = address.is_ipv6();
        let socket = self
            .socket(ipv6)
            .map_err(|e| io::Error::new(e.kind(), e.to_string()))?;
        let ip_header = self.kind == Kind::Raw && !ipv6;
        let mut buffer = [0; READ_SIZE];
        loop {
            let Some(Received { from, length, ttl }) =
                receive_with_ttl(socket.as_raw_fd(), &mut buffer)?
            else {
                return Ok(None);
            };
            let echo = echo::parse_reply(ipv6, ip_header, &buffer[..length]);
            if from == Some(address)
                && let Some(echo) = echo
                && echo.seq == seq
                && self.ours(echo)
            {
                return Ok(ttl);
            }
        }
    }
}

/// A datagram read by [`receive_with_ttl`].
pub(crate) struct Received {
    pub from: Option<IpAddr>,
    /// How much of the buffer it filled.
    pub length: usize,
    /// The TTL or hop limit the kernel reported with it (IP_RECVTTL, IPV6_RECVHOPLIMIT,
    /// where the socket asked for them).
    pub ttl: Option<u8>,
}

/// Receives one datagram from `fd` into `buffer`; `Ok(None)` when nothing waits. -A's raw
/// TCP socket reads its SYN-ACKs this way too.
pub(crate) fn receive_with_ttl(fd: RawFd, buffer: &mut [u8]) -> io::Result<Option<Received>> {
    loop {
        let mut space = nix::cmsg_space!(i32);
        let mut parts = [io::IoSliceMut::new(buffer)];
        let message =
            match recvmsg::<SockaddrStorage>(fd, &mut parts, Some(&mut space), MsgFlags::empty()) {
                Ok(message) => message,
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return Ok(None),
                Err(error) => return Err(error.into()),
            };
        let from = message.address.as_ref().and_then(address_of);
        let ttl = message.cmsgs().ok().and_then(|mut found| {
            found.find_map(|cmsg| match cmsg {
                ControlMessageOwned::Ipv4Ttl(ttl) | ControlMessageOwned::Ipv6HopLimit(ttl) => {
                    u8::try_from(ttl).ok()
                }
                _ => None,
            })
        });
        let length = message.bytes;
        return Ok(Some(Received {
            from,
            length: length.min(buffer.len()),
            ttl,
        }));
    }
}

/// Why a request did not go.
enum SendError<'a> {
    /// The family's socket could not be opened.
    NoSocket(&'a io::Error),
    /// sendto() failed.
    Refused(Errno),
}

/// The socket buffers to ask for, where the system lets a socket have them
/// (net.core.rmem_max, wmem_max).
const BUFFER: usize = 1 << 22;

/// Hosts waiting for a reply at once. Each costs a few bytes, not a socket; the bound
/// keeps the sweep's state small on a huge target set, as the scan's host groups do.
const MOST_IN_FLIGHT: usize = 1024;

/// Requests sent in one turn of the loop before it reads the replies that are already
/// back, so that a burst of them never outgrows the socket's buffer.
const SENDS_PER_TURN: usize = 64;

/// How long to wait before sending again when the system had no buffer for a request,
/// and how many such waits in a row, with nothing in flight, before giving up.
const LOCAL_BACKOFF: Duration = Duration::from_millis(20);
const LOCAL_ATTEMPTS: u32 = 250;

/// The largest message read; a reply to our requests is far smaller.
const READ_SIZE: usize = 2048;

/// One request waiting for its reply.
struct Try {
    host: Host,
    /// 0 for the first try.
    number: u8,
    sent: Instant,
}

struct Sweep<'a, L: Listener> {
    targets: &'a Targets,
    pinger: &'a Pinger,
    listener: &'a mut L,
    /// IPv4's timing, and IPv6's.
    timings: [HostTiming; 2],
    rate: Rate,
    /// The next host of `targets` to try the first time.
    next: u64,
    /// Hosts to try again, before any new one.
    retries: VecDeque<(Host, u8)>,
    /// Hosts waiting for an address of this machine to reach them from.
    unsourced: Vec<(Host, u8, source::Wait)>,
    /// Requests in flight, by sequence number.
    in_flight: HashMap<u16, Try>,
    next_seq: u16,
    local_failures: u32,
    woken: Vec<Wakeup>,
}

/// How a sweep ended.
pub struct Swept {
    /// Whether a signal stopped it.
    pub interrupted: bool,
    /// How long the round trips of the hosts that answered say to wait for an answer
    /// from their network (the longer of the two families'), if any answered.
    pub timeout: Option<Duration>,
}

/// Sweeps `targets` with `pinger`'s echo requests, telling `listener` each host's state as
/// it is known.
pub fn sweep<L: Listener>(
    targets: &Targets,
    pinger: &Pinger,
    profile: Profile,
    max_rate: Option<f64>,
    driver: &mut impl Driver<Socket>,
    listener: &mut L,
) -> Result<Swept> {
    for (token, socket) in pinger.sockets.iter().enumerate() {
        if let Ok(socket) = socket {
            driver
                .register(socket, token, EpollFlags::EPOLLIN)
                .map_err(|e| Error::io("watching an ICMP socket", e))?;
        }
    }
    let mut sweep = Sweep {
        targets,
        pinger,
        listener,
        timings: [HostTiming::new(profile), HostTiming::new(profile)],
        rate: Rate::new(driver.now(), max_rate, None),
        next: 0,
        retries: VecDeque::new(),
        unsourced: Vec::new(),
        in_flight: HashMap::new(),
        next_seq: 0,
        local_failures: 0,
        woken: Vec::new(),
    };
    let interrupted = sweep.run(driver)?;
    let timeout = sweep
        .timings
        .iter()
        .filter(|timing| timing.has_rtt())
        .map(HostTiming::timeout)
        .max();
    Ok(Swept {
        interrupted,
        timeout,
    })
}

impl<L: Listener> Sweep<'_, L> {
    fn run(&mut self, driver: &mut impl Driver<Socket>) -> Result<bool> {
        loop {
            let now = driver.now();
            let wake = self.send(now)?;
            let more = !self.retries.is_empty() || self.next < self.targets.len();
            if self.in_flight.is_empty() && !more && self.unsourced.is_empty() {
                return Ok(false);
            }
            let room = self.in_flight.len() < MOST_IN_FLIGHT;
            let timeout = if more && room && wake.is_none() {
                // Only the turn's quota stopped the sending: look at the replies, go on.
                Duration::ZERO
            } else {
                let deadline = self
                    .in_flight
                    .values()
                    .map(|try_| try_.sent + self.timeout_for(try_))
                    .chain(wake)
                    .chain(self.unsourced.iter().map(|(_, _, wait)| wait.next_check()))
                    .min()
                    .unwrap_or(now);
                deadline.saturating_duration_since(now)
            };
            driver
                .wait(timeout)
                .map_err(|e| Error::io("waiting for echo replies", e))?;
            let now = driver.now();
            let mut woken = std::mem::take(&mut self.woken);
            woken.extend(driver.ready());
            for wakeup in woken.drain(..) {
                match wakeup {
                    Wakeup::Signal => return Ok(true),
                    Wakeup::Answer(family) => self.receive(family, now, driver)?,
                }
            }
            self.woken = woken;
            self.expire(now)?;
        }
    }

    /// The timing of `host`'s address family.
    fn timing(&mut self, host: &Host) -> &mut HostTiming {
        &mut self.timings[usize::from(host.address.is_ipv6())]
    }

    /// How long `try_` may wait for its reply.
    fn timeout_for(&self, try_: &Try) -> Duration {
        self.timings[usize::from(try_.host.address.is_ipv6())].timeout_for(try_.number)
    }

    /// Sends what the turn's quota, the bound on requests in flight and the rate allow;
    /// `Some` time when something must wait for the clock (the rate, a local back-off).
    fn send(&mut self, now: Instant) -> Result<Option<Instant>> {
        self.recheck_sources(now);
        for _ in 0..SENDS_PER_TURN {
            if self.in_flight.len() >= MOST_IN_FLIGHT {
                break;
            }
            if !self.rate.allows(now) {
                return Ok(Some(self.rate.next_allowed(now)));
            }
            let Some((host, number)) = self.next_try() else {
                break;
            };
            if number == 0
                && let Some(wait) = source::Wait::start(host.address, now)
            {
                self.unsourced.push((host, number, wait));
                continue;
            }
            let seq = self.free_seq();
            match self.pinger.send(host.address, seq) {
                Ok(()) => {
                    self.rate.on_send();
                    self.timing(&host).on_send(now);
                    self.local_failures = 0;
                    let sent = now;
                    self.in_flight.insert(seq, Try { host, number, sent });
                }
                Err(SendError::NoSocket(error)) => {
                    let why = format!("cannot send an echo request: {error}");
                    self.listener.host_failed(&host, &why);
                }
                Err(SendError::Refused(errno)) => match classify_immediate(errno) {
                    // A local firewall's reject, or the broadcast address.
                    Verdict::Final(_, reason) => {
                        self.listener.host(&host, HostState::Down, reason, None)?;
                    }
                    Verdict::NoRoute => {
                        let why = format!("no route to {}", host.address);
                        self.listener.host_failed(&host, &why);
                    }
                    // No buffer, for now (requests to silent neighbours fill the send
                    // buffer until their resolution fails): the request waits and goes
                    // again.
                    _ => {
                        self.local_failures += 1;
                        if self.local_failures > LOCAL_ATTEMPTS && self.in_flight.is_empty() {
                            return Err(Error::io("sending echo requests", errno.into()));
                        }
                        self.retries.push_front((host, number));
                        return Ok(Some(now + LOCAL_BACKOFF));
                    }
                },
            }
        }
        Ok(None)
    }

    /// Sends the hosts that waited for a source address and have one now to be tried,
    /// and gives up those that waited too long.
    fn recheck_sources(&mut self, now: Instant) {
        let mut waiting = std::mem::take(&mut self.unsourced);
        waiting.retain_mut(|(host, number, wait)| match wait.poll(host.address, now) {
            source::Poll::Later(_) => true,
            source::Poll::Ready => {
                self.retries.push_back((host.clone(), *number));
                false
            }
            source::Poll::GiveUp => {
                self.listener.host_failed(host, source::NO_SOURCE);
                false
            }
        });
        self.unsourced = waiting;
    }

    /// A host to retry, else the next new host (excluded ones are passed over).
    fn next_try(&mut self) -> Option<(Host, u8)> {
        if let Some(retry) = self.retries.pop_front() {
            return Some(retry);
        }
        while self.next < self.targets.len() {
            let index = self.next;
            self.next += 1;
            if let Some(host) = self.targets.get(index) {
                return Some((host, 0));
            }
        }
        None
    }

    /// A sequence number no request in flight holds; with at most [`MOST_IN_FLIGHT`] of
    /// them among 65536 numbers, the search is short. A late reply to a number used again
    /// must also come from the new request's address to count.
    fn free_seq(&mut self) -> u16 {
        while self.in_flight.contains_key(&self.next_seq) {
            self.next_seq = self.next_seq.wrapping_add(1);
        }
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        seq
    }

    /// Reads every message waiting on the socket of `family` (0: IPv4, 1: IPv6) and
    /// watches it again.
    fn receive(
        &mut self,
        family: usize,
        now: Instant,
        driver: &mut impl Driver<Socket>,
    ) -> Result<()> {
        let Ok(socket) = &self.pinger.sockets[family] else {
            return Ok(());
        };
        let ipv6 = family == 1;
        // Only a raw IPv4 socket reads the IP header (raw(7); IPv6 never passes it up).
        let ip_header = self.pinger.kind == Kind::Raw && !ipv6;
        let mut buffer = [0; READ_SIZE];
        loop {
            let (length, from) = match recvfrom::<SockaddrStorage>(socket.as_raw_fd(), &mut buffer)
            {
                Ok(read) => read,
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => break,
                Err(error) => return Err(Error::io("reading echo replies", error.into())),
            };
            let from = from.and_then(|from| address_of(&from));
            let length = length.min(READ_SIZE);
            if let (Some(from), Some(echo)) =
                (from, echo::parse_reply(ipv6, ip_header, &buffer[..length]))
            {
                self.answer(from, echo, now)?;
            }
        }
        driver
            .rearm(socket, family, EpollFlags::EPOLLIN)
            .map_err(|e| Error::io("watching an ICMP socket", e))
    }

    /// A reply from `from`: the host is up if it answers a request in flight to it.
    fn answer(&mut self, from: IpAddr, echo: Echo, now: Instant) -> Result<()> {
        let awaited = self
            .in_flight
            .get(&echo.seq)
            .is_some_and(|try_| try_.host.address == from);
        if !awaited || !self.pinger.ours(echo) {
            return Ok(());
        }
        let try_ = self.in_flight.remove(&echo.seq).expect("just found");
        self.timing(&try_.host)
            .on_answer(now, try_.sent, try_.number);
        let rtt = now.saturating_duration_since(try_.sent);
        self.listener
            .host(&try_.host, HostState::Up, Reason::EchoReply, Some(rtt))
    }

    /// Gives up the requests whose timeout has passed: retried, or the host is down.
    fn expire(&mut self, now: Instant) -> Result<()> {
        let expired: Vec<u16> = self
            .in_flight
            .iter()
            .filter(|(_, try_)| try_.sent + self.timeout_for(try_) <= now)
            .map(|(seq, _)| *seq)
            .collect();
        for seq in expired {
            let try_ = self.in_flight.remove(&seq).expect("just found");
            let timing = self.timing(&try_.host);
            timing.on_timeout();
            if timing.should_retry(try_.number) {
                self.retries.push_back((try_.host, try_.number + 1));
            } else {
                self.listener
                    .host(&try_.host, HostState::Down, Reason::NoResponse, None)?;
            }
        }
        Ok(())
    }
}

/// The IP address of a reply's sender.
fn address_of(from: &SockaddrStorage) -> Option<IpAddr> {
    if let Some(v4) = from.as_sockaddr_in() {
        return Some(IpAddr::V4(v4.ip()));
    }
    from.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
}
