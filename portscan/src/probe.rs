//! One TCP connect() probe: opening the non-blocking socket, and turning what the kernel says
//! about it into a port state and reason, or into a local failure that is no state at all.
//! [`Prober`] is what the event loop asks of any kind of probe; [`TcpConnect`] is this one,
//! [`UdpProbe`] (`udp`) the UDP one, and [`ScanProber`] the one a real scan drives, which
//! decides the protocols it can scan.
//!
//! The kernel reports an ICMP "administratively prohibited" to connect() as EHOSTUNREACH,
//! the same as a real host unreachable; IP_RECVERR queues the ICMP message itself on the
//! socket's error queue, where its type and code tell the two apart (ip(7), "IP_RECVERR").

use std::io;
use std::io::IoSliceMut;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::Duration;

use common::contract::record::{PortState, Reason};
use common::services::ports::Proto;
use nix::errno::Errno;
use nix::sys::epoll::EpollFlags;
use nix::sys::socket::{self, ControlMessageOwned, MsgFlags, SockaddrStorage, sockopt};
use socket2::{Domain, Protocol, Socket, Type};

pub use udp::UdpProbe;

use crate::engine::TargetPort;

mod udp;

/// What became of a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The port's state is known.
    Final(PortState, Reason),
    /// The port's state is known, and the prober keeps the socket for a follow-up stage:
    /// a banner to read, or a further probe it has sent on the socket. The loop watches
    /// the socket for reading for up to `wait` and asks [`Prober::finish`] again when
    /// something comes, which ends the stage with a verdict or begins another; a stage that
    /// hears nothing in time, or fails, ends with this state. This is the seam for service
    /// detection (nmap's -sV); TCP connect() asks for no follow-up.
    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "the seam for service detection, the next step: no prober of a real \
                      scan asks for a follow-up yet, and the loop's tests drive it"
        )
    )]
    FollowUp {
        state: PortState,
        reason: Reason,
        wait: Duration,
    },
    /// Something on this machine ran short (descriptors, local ports, buffers): not an
    /// answer from the target. The probe is tried again later, with less in flight.
    Local,
    /// This machine has no route to the target: the host cannot be scanned.
    NoRoute,
}

/// Where one try goes: an address and port, and the protocol to probe it with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Destination {
    pub address: SocketAddr,
    pub proto: Proto,
}

/// The prober a real scan drives: TCP connect() for TCP ports, [`UdpProbe`] for UDP ones.
/// The protocols it probes are the protocols portscan scans: the command line refuses a
/// port list with none of them, and a scan's plan holds the ports of those alone
/// ([`crate::engine::scannable`]). Both probers work on a [`Socket`], so the loop needs no
/// socket type of its own: each call goes to the prober of the try's protocol, a branch on
/// a value, and TCP's path is the one it always was.
#[derive(Default)]
pub struct ScanProber {
    tcp: TcpConnect,
    udp: UdpProbe,
}

impl Prober for ScanProber {
    type Socket = Socket;
    const PROTOCOLS: &'static [Proto] = &[Proto::Tcp, Proto::Udp];

    #[inline]
    fn interest(proto: Proto) -> EpollFlags {
        match proto {
            Proto::Udp => UdpProbe::interest(proto),
            _ => TcpConnect::interest(proto),
        }
    }

    fn silence(proto: Proto) -> (PortState, Reason) {
        match proto {
            Proto::Udp => UdpProbe::silence(proto),
            _ => TcpConnect::silence(proto),
        }
    }

    fn icmp_errors(port: TargetPort) -> u8 {
        match port.proto {
            Proto::Udp => UdpProbe::icmp_errors(port),
            _ => TcpConnect::icmp_errors(port),
        }
    }

    #[inline]
    fn start(&mut self, destination: Destination) -> io::Result<Started<Socket>> {
        match destination.proto {
            Proto::Udp => self.udp.start(destination),
            _ => self.tcp.start(destination),
        }
    }

    #[inline]
    fn finish(&mut self, socket: &Socket, destination: Destination) -> Verdict {
        match destination.proto {
            Proto::Udp => self.udp.finish(socket, destination),
            _ => self.tcp.finish(socket, destination),
        }
    }

    /// Told by the socket's type: the loop asks without a destination, and only when a
    /// scan gives up, so the system call costs nothing that matters.
    fn local_error(&self, socket: &Socket) -> io::Error {
        match socket.r#type() {
            Ok(Type::DGRAM) => self.udp.local_error(socket),
            _ => self.tcp.local_error(socket),
        }
    }

    #[inline]
    fn recycle(
        &mut self,
        socket: Socket,
        destination: Destination,
        verdict: Verdict,
        registered: bool,
        room: bool,
    ) {
        match destination.proto {
            Proto::Udp => self
                .udp
                .recycle(socket, destination, verdict, registered, room),
            _ => self
                .tcp
                .recycle(socket, destination, verdict, registered, room),
        }
    }

    fn idle_sockets(&self) -> usize {
        self.tcp.idle_sockets() + self.udp.idle_sockets()
    }
}

/// A kind of probe the event loop can drive, for the protocols it names. The loop owns the
/// order, the timing, the retries, the deadlines and the output; a prober owns how one try
/// goes out on a socket of its own, and what the kernel's answer on that socket means.
pub trait Prober {
    /// What a try goes out on; the loop's [`Driver`](crate::driver::Driver) watches it.
    type Socket;
    /// The protocols it probes; the loop asks it about no other.
    const PROTOCOLS: &'static [Proto];

    /// The epoll events that mean a try of `proto` in flight has its answer.
    fn interest(proto: Proto) -> EpollFlags;

    /// What a port of `proto` is when every try went unanswered: `filtered` where an open
    /// port always answers (TCP), `open|filtered` where it may not (UDP).
    fn silence(proto: Proto) -> (PortState, Reason);

    /// How many ICMP errors a closed `port` answers a try with (0: none), which hosts
    /// ration (Linux: about one a second to each address after a small burst), so that
    /// silence may be the host's ration rather than the port's ([`crate::timing::IcmpLimit`]).
    fn icmp_errors(port: TargetPort) -> u8;

    /// Sends one try to `destination`. An error is a local shortage, never a port state.
    fn start(&mut self, destination: Destination) -> io::Result<Started<Self::Socket>>;

    /// The verdict on a socket to `destination` that epoll reported ready: a try's answer,
    /// or what a follow-up stage the prober asked for ([`Verdict::FollowUp`]) had to say.
    fn finish(&mut self, socket: &Self::Socket, destination: Destination) -> Verdict;

    /// Why a try that [`start`](Self::start) judged [`Verdict::Local`] failed, for the
    /// message if the scan gives up.
    fn local_error(&self, socket: &Self::Socket) -> io::Error;

    /// Takes back the socket of a try to `destination` that got `verdict`, to keep for
    /// another try if it can and `room` says the descriptor budget allows; `registered`: it
    /// is (one-shot, disarmed) in the loop's epoll set.
    fn recycle(
        &mut self,
        socket: Self::Socket,
        destination: Destination,
        verdict: Verdict,
        registered: bool,
        room: bool,
    );

    /// Sockets kept for later tries: they count against the descriptor budget.
    fn idle_sockets(&self) -> usize;
}

/// A try that went out.
pub struct Started<S> {
    pub socket: S,
    /// Whether the socket is in the loop's epoll set already (one-shot, disarmed).
    pub registered: bool,
    /// `Some` when the answer came at once.
    pub verdict: Option<Verdict>,
}

/// nmap's `-sT`: a non-blocking connect() per try, with refused sockets reused.
#[derive(Default)]
pub struct TcpConnect {
    /// Sockets ready to connect again, for IPv4 and IPv6 ([`reusable`]).
    spares: [Vec<Spare>; 2],
    /// The errno of the last connect() that failed at once for a local reason (ENOBUFS,
    /// EADDRNOTAVAIL, ...): the socket holds no error to ask for, and a scan that gives up
    /// on its sockets says why.
    last_local: Option<i32>,
}

/// A socket whose connect() was refused, ready for another.
struct Spare {
    socket: Socket,
    registered: bool,
}

/// The most refused sockets kept for reuse, per address family.
const MOST_SPARES: usize = 4096;

impl Prober for TcpConnect {
    type Socket = Socket;
    const PROTOCOLS: &'static [Proto] = &[Proto::Tcp];

    /// Writable: the handshake is done, or failed.
    fn interest(_tcp: Proto) -> EpollFlags {
        EpollFlags::EPOLLOUT
    }

    /// An open TCP port always answers a SYN: silence is a firewall's drop.
    fn silence(_tcp: Proto) -> (PortState, Reason) {
        (PortState::Filtered, Reason::NoResponse)
    }

    /// A closed port answers with a reset, which no host rations.
    fn icmp_errors(_tcp: TargetPort) -> u8 {
        0
    }

    fn start(&mut self, destination: Destination) -> io::Result<Started<Socket>> {
        let address = destination.address;
        let family = usize::from(address.is_ipv6());
        if self.spares[family].is_empty() {
            // A new socket is about to open: one idle spare of the other family closes for
            // it, or in a scan of both families the spares of one would sit idle while the
            // other opened new sockets up to the ceiling, nearly twice the budget in all.
            self.spares[1 - family].pop();
        }
        let spare = self.spares[family].pop().and_then(|spare| {
            reset(spare.socket, address).map(|socket| Spare {
                socket,
                registered: spare.registered,
            })
        });
        let registered = spare.as_ref().is_some_and(|spare| spare.registered);
        let (socket, verdict, local_errno) = start(address, spare.map(|spare| spare.socket))?;
        self.last_local = local_errno;
        Ok(Started {
            socket,
            registered,
            verdict,
        })
    }

    fn finish(&mut self, socket: &Socket, destination: Destination) -> Verdict {
        finish(socket, destination.address.port())
    }

    fn local_error(&self, socket: &Socket) -> io::Error {
        let error = socket.take_error().ok().flatten();
        error
            .or_else(|| self.last_local.map(io::Error::from_raw_os_error))
            .unwrap_or_else(|| io::Error::other("connect failed"))
    }

    fn recycle(
        &mut self,
        socket: Socket,
        destination: Destination,
        verdict: Verdict,
        registered: bool,
        room: bool,
    ) {
        let family = &mut self.spares[usize::from(destination.address.is_ipv6())];
        if reusable(verdict) && room && family.len() < MOST_SPARES {
            family.push(Spare { socket, registered });
        }
    }

    fn idle_sockets(&self) -> usize {
        self.spares[0].len() + self.spares[1].len()
    }
}

/// Starts connecting, on `spare` if given (a socket [`reset`] returned), else on a new
/// non-blocking socket. A verdict of `None` means the connection is under way; `Some(_)`
/// that the answer came at once, with connect()'s errno where it was a local failure.
fn start(
    address: SocketAddr,
    spare: Option<Socket>,
) -> io::Result<(Socket, Option<Verdict>, Option<i32>)> {
    let socket = match spare {
        Some(socket) => socket,
        None => open(address)?,
    };
    match socket.connect(&address.into()) {
        Ok(()) => {
            let verdict = accepted(&socket);
            Ok((socket, Some(verdict), None))
        }
        // Loopback answers within the call, the handshake or the reset included: asking
        // now gives the answer its own moment (not that of the loop's next turn) and saves
        // registering the socket with epoll. Elsewhere the answer cannot have come yet.
        Err(error) if error.raw_os_error() == Some(Errno::EINPROGRESS as i32) => {
            if address.ip().is_loopback() {
                match socket.take_error() {
                    Ok(Some(error)) => {
                        let verdict = refused(&socket, &error, address.port());
                        return Ok((socket, Some(verdict), None));
                    }
                    // Connected: a peer address exists only once the handshake is done
                    // (a firewall's drop leaves it trying, and unconnected).
                    Ok(None) if socket.peer_addr().is_ok() => {
                        let verdict = accepted(&socket);
                        return Ok((socket, Some(verdict), None));
                    }
                    _ => {}
                }
            }
            Ok((socket, None, None))
        }
        Err(error) => {
            let verdict = classify_immediate(Errno::from_raw(error.raw_os_error().unwrap_or(0)));
            let local_errno = (verdict == Verdict::Local)
                .then(|| error.raw_os_error())
                .flatten();
            Ok((socket, Some(verdict), local_errno))
        }
    }
}

fn open(address: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM.nonblocking().cloexec(),
        Some(Protocol::TCP),
    )?;
    // Nothing between us and a loopback address sends ICMP but our own firewall, whose
    // reject the errno already reports; elsewhere the ICMP message tells its kind.
    if !address.ip().is_loopback() {
        queue_icmp_errors(&socket, address)?;
    }
    Ok(socket)
}

/// Asks the kernel to queue the ICMP messages about the socket's packets on its error
/// queue (IP_RECVERR, IPV6_RECVERR), where [`icmp_of`] reads their type and code.
fn queue_icmp_errors(socket: &Socket, address: SocketAddr) -> io::Result<()> {
    if address.is_ipv4() {
        socket::setsockopt(socket, sockopt::Ipv4RecvErr, &true)?;
    } else {
        socket::setsockopt(socket, sockopt::Ipv6RecvErr, &true)?;
    }
    Ok(())
}

/// Whether a socket whose probe ended with `verdict` can carry the next probe to the same
/// address family. Linux lets a socket whose connect() was refused by a reset connect
/// again; this saves a socket() and a close() per closed port, half the cost of a loopback
/// scan. (An open port's socket is connected; after silence or an ICMP error the
/// connection is still trying.)
pub fn reusable(verdict: Verdict) -> bool {
    verdict == Verdict::Final(PortState::Closed, Reason::ConnRefused)
}

/// Readies a socket whose connect() was refused for another: the first connect() after a
/// refusal only returns it to the unconnected state, failing with ECONNABORTED. Any other
/// outcome means it is not reusable after all (a refusal by ICMP port unreachable leaves
/// the connection trying), and it is closed.
fn reset(socket: Socket, address: SocketAddr) -> Option<Socket> {
    match socket.connect(&address.into()) {
        Err(error) if error.raw_os_error() == Some(Errno::ECONNABORTED as i32) => Some(socket),
        _ => None,
    }
}

/// The verdict on a connection that epoll reported ready.
fn finish(socket: &Socket, port: u16) -> Verdict {
    match socket.take_error() {
        Ok(None) => accepted(socket),
        Ok(Some(error)) => refused(socket, &error, port),
        Err(_) => Verdict::Local,
    }
}

/// A connection that was established.
fn accepted(socket: &Socket) -> Verdict {
    // Connecting to a free port of our own address can pick that very port as the local
    // one, and TCP's simultaneous open then connects the socket to itself: nothing
    // listens there, and the next try picks another local port.
    if let (Ok(local), Ok(peer)) = (socket.local_addr(), socket.peer_addr())
        && local == peer
    {
        return Verdict::Local;
    }
    // A reset instead of a FIN on close: an open port costs the target no TIME_WAIT slot
    // and us no local port for a minute.
    let _ = socket.set_linger(Some(Duration::ZERO));
    Verdict::Final(PortState::Open, Reason::SynAck)
}

/// A connection that failed with `error`.
fn refused(socket: &Socket, error: &io::Error, port: u16) -> Verdict {
    let errno = Errno::from_raw(error.raw_os_error().unwrap_or(0));
    if errno == Errno::ECONNREFUSED {
        // A reset: no ICMP message to look for.
        return Verdict::Final(PortState::Closed, Reason::ConnRefused);
    }
    classify_answer(errno, icmp_of(socket, port))
}

/// An error connect() returned at once, before any packet could come back.
pub fn classify_immediate(errno: Errno) -> Verdict {
    match errno {
        // Loopback answers within the call.
        Errno::ECONNREFUSED => Verdict::Final(PortState::Closed, Reason::ConnRefused),
        // A local firewall's reject, in the OUTPUT chain.
        Errno::EACCES | Errno::EPERM => {
            Verdict::Final(PortState::Filtered, Reason::AdminProhibited)
        }
        // A blackhole route fails connect() with EINVAL: the host is unroutable, not our
        // sockets short (as an "unreachable" route fails it with EHOSTUNREACH).
        Errno::ENETUNREACH | Errno::EHOSTUNREACH | Errno::EINVAL => Verdict::NoRoute,
        _ => Verdict::Local,
    }
}

/// An ICMP message from the error queue: (IPv6?, type, code).
pub type Icmp = (bool, u8, u8);

/// An error on a connection under way: the target's answer, or what came back for it.
pub fn classify_answer(errno: Errno, icmp: Option<Icmp>) -> Verdict {
    if errno == Errno::ECONNREFUSED {
        return Verdict::Final(PortState::Closed, Reason::ConnRefused);
    }
    let filtered = |reason| Verdict::Final(PortState::Filtered, reason);
    if let Some(icmp) = icmp
        && let Some(reason) = icmp_reason(icmp)
    {
        return filtered(reason);
    }
    match errno {
        Errno::ENETUNREACH => filtered(Reason::NetUnreach),
        // The neighbour never answered ARP or NDP, or an ICMP host unreachable.
        Errno::EHOSTUNREACH | Errno::EHOSTDOWN => filtered(Reason::HostUnreach),
        Errno::EACCES | Errno::EPERM => filtered(Reason::AdminProhibited),
        Errno::ETIMEDOUT => filtered(Reason::NoResponse),
        _ => Verdict::Local,
    }
}

/// The reason an ICMP destination-unreachable gives (nmap's names; RFC 792, RFC 1812 and
/// RFC 4443 for the codes).
fn icmp_reason((v6, kind, code): Icmp) -> Option<Reason> {
    match (v6, kind, code) {
        (false, 3, 0 | 6 | 11) | (true, 1, 0) => Some(Reason::NetUnreach),
        (false, 3, 1 | 5 | 7 | 8 | 12) | (true, 1, 2 | 3) => Some(Reason::HostUnreach),
        (false, 3, 9 | 10 | 13) | (true, 1, 1 | 5 | 6) => Some(Reason::AdminProhibited),
        _ => None,
    }
}

/// The ICMP message about our SYN to `port` on the socket's error queue, if one came.
/// The queue may also hold a message about an earlier probe of a reused socket (a port
/// unreachable that connect() reported as a plain refusal); the message's payload, the TCP
/// header of the SYN it answers, tells them apart.
fn icmp_of(socket: &Socket, port: u16) -> Option<Icmp> {
    // A queue never holds more than one message per probe the socket carried; a few
    // reads drain what a run of refusals could have left.
    for _ in 0..8 {
        let mut data = [0u8; 64];
        let queued = next_queued_error(socket, &mut data)?;
        let about = (queued.copied >= 4).then(|| u16::from_be_bytes([data[2], data[3]]));
        if queued.icmp.is_some() && about == Some(port) {
            return queued.icmp;
        }
    }
    None
}

/// One message taken off a socket's error queue.
pub struct QueuedError {
    /// Where the packet that drew it was going (an unconnected socket's datagrams go to
    /// many places).
    pub destination: Option<SocketAddr>,
    /// The error it reports, if the kernel said one.
    pub errno: Option<Errno>,
    /// The ICMP message it carries, if it came from one.
    pub icmp: Option<Icmp>,
    /// How many bytes of the packet that drew it were copied to the caller's buffer (for
    /// TCP the header of our segment, for UDP our datagram's payload).
    pub copied: usize,
}

/// Takes the next message off the socket's error queue, copying the start of the packet
/// that drew it to `data`. `None`: the queue is empty.
pub fn next_queued_error(socket: &Socket, data: &mut [u8]) -> Option<QueuedError> {
    use nix::libc::{SO_EE_ORIGIN_ICMP, SO_EE_ORIGIN_ICMP6};
    let mut iov = [IoSliceMut::new(data)];
    let mut control = nix::cmsg_space!(nix::libc::sock_extended_err, nix::libc::sockaddr_in6);
    let message = socket::recvmsg::<SockaddrStorage>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut control),
        MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT,
    )
    .ok()?;
    let destination = message.address.as_ref().and_then(|address| {
        let v4 = address.as_sockaddr_in().map(|v4| SocketAddr::from(*v4));
        v4.or_else(|| address.as_sockaddr_in6().map(|v6| SocketAddr::from(*v6)))
    });
    let (errno, icmp) = message
        .cmsgs()
        .ok()?
        .find_map(|cmsg| {
            let (err, v6, icmp_origin) = match cmsg {
                ControlMessageOwned::Ipv4RecvErr(err, _) => (err, false, SO_EE_ORIGIN_ICMP),
                ControlMessageOwned::Ipv6RecvErr(err, _) => (err, true, SO_EE_ORIGIN_ICMP6),
                _ => return None,
            };
            let errno = Errno::from_raw(i32::try_from(err.ee_errno).unwrap_or(0));
            let icmp = (err.ee_origin == icmp_origin).then_some((v6, err.ee_type, err.ee_code));
            Some((Some(errno), icmp))
        })
        .unwrap_or((None, None));
    Some(QueuedError {
        destination,
        errno,
        icmp,
        copied: message.bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLOSED: Verdict = Verdict::Final(PortState::Closed, Reason::ConnRefused);

    fn filtered(reason: Reason) -> Verdict {
        Verdict::Final(PortState::Filtered, reason)
    }

    #[test]
    fn local_shortages_are_never_port_states() {
        for errno in [
            Errno::EMFILE,
            Errno::ENFILE,
            Errno::ENOBUFS,
            Errno::ENOMEM,
            Errno::EADDRNOTAVAIL,
            Errno::EAGAIN,
            Errno::EADDRINUSE,
        ] {
            assert_eq!(classify_immediate(errno), Verdict::Local, "{errno}");
            assert_eq!(classify_answer(errno, None), Verdict::Local, "{errno}");
        }
    }

    #[test]
    fn immediate_errors() {
        assert_eq!(classify_immediate(Errno::ECONNREFUSED), CLOSED);
        assert_eq!(classify_immediate(Errno::ENETUNREACH), Verdict::NoRoute);
        assert_eq!(classify_immediate(Errno::EHOSTUNREACH), Verdict::NoRoute);
        assert_eq!(classify_immediate(Errno::EINVAL), Verdict::NoRoute);
        assert_eq!(
            classify_immediate(Errno::EPERM),
            filtered(Reason::AdminProhibited)
        );
    }

    #[test]
    fn answers_and_icmp_codes() {
        let cases = [
            (Errno::ECONNREFUSED, None, CLOSED),
            (Errno::ECONNREFUSED, Some((false, 3, 3)), CLOSED),
            (Errno::EHOSTUNREACH, None, filtered(Reason::HostUnreach)),
            (Errno::ENETUNREACH, None, filtered(Reason::NetUnreach)),
            (Errno::EACCES, None, filtered(Reason::AdminProhibited)),
            (
                Errno::EHOSTUNREACH,
                Some((false, 3, 13)),
                filtered(Reason::AdminProhibited),
            ),
            (
                Errno::EHOSTUNREACH,
                Some((false, 3, 10)),
                filtered(Reason::AdminProhibited),
            ),
            (
                Errno::EHOSTUNREACH,
                Some((false, 3, 1)),
                filtered(Reason::HostUnreach),
            ),
            (
                Errno::ENETUNREACH,
                Some((false, 3, 0)),
                filtered(Reason::NetUnreach),
            ),
            (
                Errno::EACCES,
                Some((true, 1, 1)),
                filtered(Reason::AdminProhibited),
            ),
            (
                Errno::EHOSTUNREACH,
                Some((true, 1, 3)),
                filtered(Reason::HostUnreach),
            ),
            (
                Errno::ENETUNREACH,
                Some((true, 1, 0)),
                filtered(Reason::NetUnreach),
            ),
        ];
        for (errno, icmp, expected) in cases {
            assert_eq!(classify_answer(errno, icmp), expected, "{errno} {icmp:?}");
        }
    }

    #[test]
    fn a_real_refusal_and_a_real_accept_on_loopback() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listener.local_addr().unwrap();
        let closed = {
            let spare = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            spare.local_addr().unwrap()
        };
        for (address, expected) in [
            (open, Verdict::Final(PortState::Open, Reason::SynAck)),
            (closed, CLOSED),
        ] {
            let (socket, verdict, _) = start(address, None).unwrap();
            let verdict = verdict.unwrap_or_else(|| {
                let mut poll = [nix::poll::PollFd::new(
                    std::os::fd::AsFd::as_fd(&socket),
                    nix::poll::PollFlags::POLLOUT,
                )];
                nix::poll::poll(&mut poll, 5000u16).unwrap();
                finish(&socket, address.port())
            });
            assert_eq!(verdict, expected, "{address}");
        }
    }

    /// Spares of one family give way to new sockets of the other: the descriptors held,
    /// in flight and idle, stay within what the loop allows.
    #[test]
    fn a_new_socket_of_one_family_closes_an_idle_spare_of_the_other() {
        let tcp = |address| Destination {
            address,
            proto: Proto::Tcp,
        };
        let closed = |address: &str| {
            let spare = std::net::TcpListener::bind(address).unwrap();
            tcp(spare.local_addr().unwrap())
        };
        let v4 = closed("127.0.0.1:0");
        let Ok(v6_listener) = std::net::TcpListener::bind("[::1]:0") else {
            panic!("this test needs IPv6 on loopback");
        };
        let v6 = tcp(v6_listener.local_addr().unwrap());
        drop(v6_listener);
        let mut prober = TcpConnect::default();
        let started = prober.start(v4).unwrap();
        assert_eq!(started.verdict, Some(CLOSED));
        prober.recycle(started.socket, v4, CLOSED, false, true);
        assert_eq!(prober.idle_sockets(), 1);
        let started = prober.start(v6).unwrap();
        assert_eq!(started.verdict, Some(CLOSED));
        assert_eq!(prober.idle_sockets(), 0, "the IPv4 spare made room");
        prober.recycle(started.socket, v6, CLOSED, false, true);
        // A spare of the right family is reused, and the other is left alone.
        let started = prober.start(v6).unwrap();
        assert_eq!(prober.idle_sockets(), 0);
        prober.recycle(started.socket, v6, CLOSED, false, true);
        let again = prober.start(v4).unwrap();
        assert_eq!(again.verdict, Some(CLOSED));
        assert_eq!(prober.idle_sockets(), 0);
    }

    #[test]
    fn a_refused_loopback_socket_carries_the_next_probes() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listener.local_addr().unwrap();
        let closed = {
            let spare = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            spare.local_addr().unwrap()
        };
        let (socket, verdict, _) = start(closed, None).unwrap();
        assert_eq!(verdict, Some(CLOSED));
        assert!(reusable(CLOSED));
        let socket = reset(socket, closed).unwrap();
        let (socket, verdict, _) = start(closed, Some(socket)).unwrap();
        assert_eq!(verdict, Some(CLOSED), "refused again, not aborted");
        let socket = reset(socket, open).unwrap();
        let (socket, verdict, _) = start(open, Some(socket)).unwrap();
        let verdict = verdict.unwrap_or_else(|| {
            let mut poll = [nix::poll::PollFd::new(
                std::os::fd::AsFd::as_fd(&socket),
                nix::poll::PollFlags::POLLOUT,
            )];
            nix::poll::poll(&mut poll, 5000u16).unwrap();
            finish(&socket, open.port())
        });
        assert_eq!(verdict, Verdict::Final(PortState::Open, Reason::SynAck));
        assert!(!reusable(filtered(Reason::AdminProhibited)));
        assert!(!reusable(Verdict::Final(PortState::Open, Reason::SynAck)));
        assert!(!reusable(filtered(Reason::NoResponse)));
        assert!(!reusable(Verdict::Local));
    }
}
