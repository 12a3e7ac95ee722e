//! The sockets of the OS hint: one ICMP echo of a host for its reply's TTL (discovery's
//! [`Pinger`], told to hand over the TTL), and, where a raw TCP socket may be opened
//! (root, CAP_NET_RAW), the SYN-ACK of one connect() to an open port, read off that
//! socket. Each waits a few of the host's round trips, at most [`MOST_WAIT`], and a
//! signal stops it, as it stops the scan; what cannot be had is said as evidence
//! unseen, never an error.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signalfd::SignalFd;
use nix::sys::socket::{setsockopt, sockopt};
use socket2::{Domain, Protocol, Socket, Type};

use super::Evidence;
use super::tcp::{self, Segment};
use crate::discovery::{Pinger, Received, receive_with_ttl};

/// The least and the most time an answer is waited for: a few round trips of the host
/// in between.
const LEAST_WAIT: Duration = Duration::from_millis(250);
pub const MOST_WAIT: Duration = Duration::from_secs(1);
const ROUND_TRIPS: u32 = 4;

/// The largest packet read; a SYN-ACK or an echo reply is far smaller.
const READ_SIZE: usize = 2048;

/// What a wait found.
enum Waited {
    Ready,
    TimedOut,
    Signal,
}

/// The sockets of the hint, opened with privilege before the scan began
/// ([`crate::privilege`]).
pub struct HintSockets {
    /// The echo sockets, if this process could open any.
    pub pinger: Option<Pinger>,
    /// Each family's raw TCP socket (IPv4, IPv6), or why there is none; `None` where the
    /// run asked for none.
    pub raw_tcp: [Option<io::Result<Socket>>; 2],
}

/// The sockets, kept for every host.
pub struct Gatherer<'a> {
    signals: &'a SignalFd,
    sockets: HintSockets,
    /// Whether each family's echo socket hands over TTLs yet (IPv4, IPv6).
    ttls_asked: [bool; 2],
    /// Whether each family's raw TCP socket has its idle filter taken off yet.
    raw_listening: [bool; 2],
    seq: u16,
    interrupted: bool,
}

impl<'a> Gatherer<'a> {
    pub fn new(signals: &'a SignalFd, sockets: HintSockets) -> Self {
        Self {
            signals,
            sockets,
            ttls_asked: [false; 2],
            raw_listening: [false; 2],
            seq: 0,
            interrupted: false,
        }
    }

    /// Whether a signal came while gathering: the run stops.
    pub fn interrupted(&self) -> bool {
        self.interrupted
    }

    /// What can be seen of `address`: its echo reply's TTL, and the SYN-ACK of the first
    /// of its `open` TCP ports, waiting a few of its round trips (`rtt`) for each.
    pub fn gather(
        &mut self,
        address: IpAddr,
        open: &[u16],
        rtt: Option<Duration>,
    ) -> Vec<Evidence> {
        let wait = rtt.map_or(MOST_WAIT, |rtt| {
            (rtt * ROUND_TRIPS).clamp(LEAST_WAIT, MOST_WAIT)
        });
        let mut evidence = Vec::new();
        if self.interrupted {
            return evidence;
        }
        evidence.push(self.echo(address, wait));
        if let Some(&port) = open.first()
            && !self.interrupted
        {
            evidence.push(self.syn_ack(SocketAddr::new(address, port), wait));
        }
        evidence
    }

    /// The TTL of `address`'s reply to one echo request.
    fn echo(&mut self, address: IpAddr, wait: Duration) -> Evidence {
        let unseen = |why: String| Evidence::Unseen(format!("ICMP echo: {why}"));
        let Some(pinger) = &self.sockets.pinger else {
            return unseen(
                "no ICMP socket (net.ipv4.ping_group_range leaves out this user's groups, \
                 and a raw one needs CAP_NET_RAW)"
                    .to_owned(),
            );
        };
        let ipv6 = address.is_ipv6();
        let family = usize::from(ipv6);
        if !self.ttls_asked[family] {
            if let Err(why) = pinger.read_ttls(ipv6) {
                return unseen(format!("no TTL to read: {why}"));
            }
            self.ttls_asked[family] = true;
        }
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        // The socket was open through the scan, and a raw one gets a copy of every ICMP
        // message the host receives: reading away what waits leaves room for this reply.
        let _ = pinger.reply_ttl(address, seq);
        if let Err(why) = pinger.send_one(address, seq) {
            return unseen(format!("not sent: {why}"));
        }
        let Ok(socket) = pinger.socket(ipv6) else {
            return unseen("no socket".to_owned());
        };
        let deadline = Instant::now() + wait;
        loop {
            match wait_for(socket, self.signals, deadline) {
                Waited::Ready => match pinger.reply_ttl(address, seq) {
                    Ok(Some(ttl)) => return Evidence::Echo { ttl },
                    Ok(None) => {}
                    Err(why) => return unseen(format!("reading the reply: {why}")),
                },
                Waited::TimedOut => {
                    return unseen(format!("no reply within {} ms", wait.as_millis()));
                }
                Waited::Signal => {
                    self.interrupted = true;
                    return unseen("interrupted".to_owned());
                }
            }
        }
    }

    /// The SYN-ACK of one connect() to `target`, as a raw TCP socket sees it.
    fn syn_ack(&mut self, target: SocketAddr, wait: Duration) -> Evidence {
        let port = target.port();
        let unseen = |why: String| Evidence::Unseen(format!("SYN-ACK from {port}/tcp: {why}"));
        let ipv6 = target.is_ipv6();
        let raw = match &self.sockets.raw_tcp[usize::from(ipv6)] {
            Some(Ok(raw)) => raw,
            None => return unseen("not read: no raw TCP socket was opened".to_owned()),
            Some(Err(why)) => {
                return unseen(format!(
                    "not read: no raw TCP socket ({why}; it needs root or CAP_NET_RAW)"
                ));
            }
        };
        if !self.raw_listening[usize::from(ipv6)] {
            if let Err(why) = raw.detach_filter() {
                return unseen(format!(
                    "not read: the raw TCP socket stays filtered ({why})"
                ));
            }
            self.raw_listening[usize::from(ipv6)] = true;
        }
        // What came before is another connection's.
        while let Ok(Some(_)) = read_segment(raw, ipv6) {}
        let probe = match connect(target) {
            Ok(probe) => probe,
            Err(why) => return unseen(format!("connect: {why}")),
        };
        let Some(local_port) = probe
            .local_addr()
            .ok()
            .and_then(|local| local.as_socket())
            .map(|local| local.port())
        else {
            return unseen("the connection has no local port".to_owned());
        };
        let deadline = Instant::now() + wait;
        loop {
            match wait_for(raw, self.signals, deadline) {
                Waited::Ready => loop {
                    match read_segment(raw, ipv6) {
                        Ok(Some((from, ttl, segment))) => {
                            if from == target.ip()
                                && segment.source_port == port
                                && segment.destination_port == local_port
                                && segment.is_syn_ack()
                            {
                                let Some(ttl) = ttl else {
                                    return unseen("no hop limit came with it".to_owned());
                                };
                                return Evidence::SynAck { port, ttl, segment };
                            }
                        }
                        Ok(None) => break,
                        Err(why) => return unseen(format!("reading the raw socket: {why}")),
                    }
                },
                Waited::TimedOut => {
                    return unseen(format!("not seen within {} ms", wait.as_millis()));
                }
                Waited::Signal => {
                    self.interrupted = true;
                    return unseen("interrupted".to_owned());
                }
            }
        }
    }
}

/// A raw TCP socket of `ipv6`'s family, which sees a copy of every TCP segment the host
/// receives (raw(7)); an IPv6 one is told to hand over each segment's hop limit, since it
/// reads no IPv6 header.
pub fn open_raw(ipv6: bool) -> io::Result<Socket> {
    let domain = if ipv6 { Domain::IPV6 } else { Domain::IPV4 };
    let socket = Socket::new(
        domain,
        Type::RAW.nonblocking().cloexec(),
        Some(Protocol::TCP),
    )?;
    if ipv6 {
        setsockopt(&socket, sockopt::Ipv6RecvHopLimit, &true)?;
    }
    Ok(socket)
}

/// A non-blocking connect() to `target`, under way.
fn connect(target: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(
        Domain::for_address(target),
        Type::STREAM.nonblocking().cloexec(),
        None,
    )?;
    match socket.connect(&target.into()) {
        Ok(()) => Ok(socket),
        Err(error) if error.raw_os_error() == Some(Errno::EINPROGRESS as i32) => Ok(socket),
        Err(error) => Err(error),
    }
}

/// The next TCP segment waiting on a raw socket: its sender, its TTL or hop limit, and
/// the segment; `Ok(None)` when none waits. Segments that do not parse are skipped.
fn read_segment(raw: &Socket, ipv6: bool) -> io::Result<Option<(IpAddr, Option<u8>, Segment)>> {
    let mut buffer = [0; READ_SIZE];
    loop {
        let Some(Received {
            from,
            length,
            ttl: hop_limit,
        }) = receive_with_ttl(raw.as_raw_fd(), &mut buffer)?
        else {
            return Ok(None);
        };
        let read = &buffer[..length];
        let parsed = if ipv6 {
            from.zip(tcp::parse_segment(read))
                .map(|(from, segment)| (from, hop_limit, segment))
        } else {
            tcp::parse_ipv4(read).map(|(from, ttl, segment)| (from, Some(ttl), segment))
        };
        if parsed.is_some() {
            return Ok(parsed);
        }
    }
}

/// Waits for `socket` to be readable, a signal, or `deadline`.
fn wait_for(socket: &Socket, signals: &SignalFd, deadline: Instant) -> Waited {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Waited::TimedOut;
        }
        // Round up: waking a millisecond early only to find nothing would spin.
        let millis = u16::try_from(left.as_micros().div_ceil(1000)).unwrap_or(u16::MAX);
        let mut watched = [
            PollFd::new(socket.as_fd(), PollFlags::POLLIN),
            PollFd::new(signals.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut watched, PollTimeout::from(millis)) {
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => {}
            // A poll that fails cannot wait: nothing more will be seen.
            Err(_) => return Waited::TimedOut,
        }
        let readable =
            |fd: &PollFd<'_>| fd.revents().is_some_and(|r| r.contains(PollFlags::POLLIN));
        if readable(&watched[1]) {
            return Waited::Signal;
        }
        if readable(&watched[0]) {
            return Waited::Ready;
        }
    }
}
