//! One UDP probe, unprivileged: a connected non-blocking UDP socket per try, the port's
//! payload sent on it ([`crate::udp_payloads`]), and what comes back read as nmap reads it.
//!
//! A connected UDP socket is told of the ICMP errors its datagrams draw (ip(7), udp(7)): a
//! port unreachable fails the next call with ECONNREFUSED (`closed port-unreach`), and with
//! IP_RECVERR/IPV6_RECVERR the ICMP message itself is queued on the socket's error queue,
//! whose type and code tell a firewall's reject from a host unreachable, as for TCP. A
//! datagram back from the port is `open udp-response`, whatever it says; silence is
//! `open|filtered no-response`, since an open port may ignore what it did not understand.
//!
//! Retries open a new socket, and a socket never carries a second try: the error queue and
//! the receive queue then only ever hold what this try drew.
//!
//! Loopback is the exception, for speed: there the port unreachable comes back within the
//! send, so one unconnected socket per family carries every loopback try first. sendto()
//! and a read of its error queue, whose messages name the datagram's destination, say
//! "closed" in two system calls instead of six (a scan of every port of 127.0.0.1 is
//! almost all closed ports). A try that draws no error within the send (an open port, a
//! silent one) goes again on a connected socket of its own, which waits for the answer.

use std::io;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};

use common::contract::record::{PortState, Reason};
use common::services::ports::Proto;
use nix::errno::Errno;
use nix::sys::epoll::EpollFlags;
use socket2::{Domain, Protocol, Socket, Type};

use super::{
    Destination, Prober, Started, Verdict, classify_answer, classify_immediate, queue_icmp_errors,
};
use crate::engine::TargetPort;
use crate::udp_payloads;

const CLOSED: Verdict = Verdict::Final(PortState::Closed, Reason::PortUnreach);
const OPEN: Verdict = Verdict::Final(PortState::Open, Reason::UdpResponse);

/// nmap's `-sU`, without raw sockets.
#[derive(Default)]
pub struct UdpProbe {
    /// The errno of the last try that failed here, for [`Prober::local_error`]: a send()
    /// error is returned, not left on the socket as a connect()'s is.
    last_local: Option<i32>,
    /// The unconnected socket of each family (IPv4, IPv6) that carries loopback tries
    /// first, opened on first use; lent to the loop with a try answered within the send,
    /// and back with [`Prober::recycle`].
    loopback: [Option<Socket>; 2],
    /// The descriptor of each family's loopback socket while it is lent.
    lent: [Option<RawFd>; 2],
}

impl Prober for UdpProbe {
    type Socket = Socket;
    const PROTOCOLS: &'static [Proto] = &[Proto::Udp];

    /// Readable: a datagram came back. An error: the ICMP answer (epoll reports EPOLLERR
    /// whatever is asked; it is named here for the reader).
    fn interest(_udp: Proto) -> EpollFlags {
        EpollFlags::EPOLLIN | EpollFlags::EPOLLERR
    }

    /// An open UDP port may ignore a datagram it did not understand.
    fn silence(_udp: Proto) -> (PortState, Reason) {
        (PortState::OpenFiltered, Reason::NoResponse)
    }

    /// A closed port answers each datagram of a try with an ICMP port unreachable.
    fn icmp_errors(port: TargetPort) -> u8 {
        let datagrams = udp_payloads::datagrams(port.port).len();
        u8::try_from(datagrams).unwrap_or(u8::MAX)
    }

    fn start(&mut self, destination: Destination) -> io::Result<Started<Socket>> {
        let address = destination.address;
        if address.ip().is_loopback()
            && let Some(started) = self.on_loopback(address)
        {
            return Ok(started);
        }
        let socket = Socket::new(
            Domain::for_address(address),
            Type::DGRAM.nonblocking().cloexec(),
            Some(Protocol::UDP),
        )?;
        queue_icmp_errors(&socket, address)?;
        let known = match socket.connect(&address.into()) {
            Ok(()) => send(&socket, address),
            Err(error) => Some((immediate(&error), error)),
        };
        self.last_local = match &known {
            Some((Verdict::Local, error)) => error.raw_os_error(),
            _ => None,
        };
        Ok(Started {
            socket,
            registered: false,
            verdict: known.map(|(verdict, _)| verdict),
        })
    }

    fn finish(&mut self, socket: &Socket, _destination: Destination) -> Verdict {
        // One byte is enough to know a datagram came; the rest of it is discarded.
        // (A datagram may be empty: its length says nothing.)
        let mut byte = [MaybeUninit::uninit(); 1];
        match socket.recv(&mut byte) {
            Ok(_) => OPEN,
            Err(error) => answer(socket, &error),
        }
    }

    fn local_error(&self, _socket: &Socket) -> io::Error {
        self.last_local.map_or_else(
            || io::Error::other("sending a datagram failed"),
            io::Error::from_raw_os_error,
        )
    }

    /// Only a loopback socket is kept, for the next loopback try: a connected socket
    /// carries one try (see the module's note).
    fn recycle(
        &mut self,
        socket: Socket,
        destination: Destination,
        _verdict: Verdict,
        _registered: bool,
        room: bool,
    ) {
        let family = family(destination.address);
        if self.lent[family] == Some(socket.as_raw_fd()) {
            self.lent[family] = None;
            if room {
                self.loopback[family] = Some(socket);
            }
        }
    }

    fn idle_sockets(&self) -> usize {
        self.loopback.iter().flatten().count()
    }
}

impl UdpProbe {
    /// Sends the try to a loopback `address` on the family's unconnected socket; `Some`
    /// with the socket lent and the verdict if the port answered within the send, `None`
    /// if the try must go on a connected socket (nothing came back yet, or the loopback
    /// socket could not be had).
    fn on_loopback(&mut self, address: SocketAddr) -> Option<Started<Socket>> {
        let family = family(address);
        let socket = if let Some(socket) = self.loopback[family].take() {
            socket
        } else {
            let domain = Domain::for_address(address);
            let kind = Type::DGRAM.nonblocking().cloexec();
            let socket = Socket::new(domain, kind, Some(Protocol::UDP)).ok()?;
            queue_icmp_errors(&socket, address).ok()?;
            socket
        };
        let verdict = send_unconnected(&socket, address);
        if let Some(verdict) = verdict {
            self.lent[family] = Some(socket.as_raw_fd());
            return Some(Started {
                socket,
                registered: false,
                verdict: Some(verdict),
            });
        }
        self.loopback[family] = Some(socket);
        // The try goes again on a connected socket. A loopback socket of ours bound to its
        // port would take the datagram as a listener would (an IPv6 one takes IPv4 too):
        // it closes first, so that the port is found as it is without us.
        for kept in &mut self.loopback {
            let local = kept.as_ref().and_then(|socket| socket.local_addr().ok());
            if local
                .and_then(|local| local.as_socket())
                .map(|local| local.port())
                == Some(address.port())
            {
                *kept = None;
            }
        }
        None
    }
}

/// The index of `address`'s family in [`UdpProbe::loopback`].
fn family(address: SocketAddr) -> usize {
    usize::from(address.is_ipv6())
}

/// Sends the payload of `address`'s port on an unconnected `socket`, and reads the verdict
/// from the errors the send drew: `None` if none did (or the send failed), and the try
/// must go on a connected socket.
fn send_unconnected(socket: &Socket, address: SocketAddr) -> Option<Verdict> {
    let datagrams = udp_payloads::datagrams(address.port());
    for datagram in datagrams {
        if socket.send_to(datagram, &address.into()).is_err() {
            // An error of an earlier try that came after its send (the machine was busy)
            // fails the next send without sending: clear it, and try once more.
            while queued_error(socket).is_some() {}
            socket.send_to(datagram, &address.into()).ok()?;
        }
    }
    // Each datagram draws its own error; an earlier try's late one goes with them.
    let mut verdict = None;
    let mut drawn = 0;
    while drawn < datagrams.len() {
        let (destination, errno, icmp) = queued_error(socket)?;
        if destination == address {
            drawn += 1;
            verdict = Some(match errno {
                Errno::ECONNREFUSED => CLOSED,
                errno => classify_answer(errno, icmp),
            });
        }
    }
    verdict.filter(|verdict| matches!(verdict, Verdict::Final(..)))
}

/// The next message on the error queue of `socket`: the destination of the datagram it is
/// about, its errno, and the ICMP message's (IPv6?, type, code) if one said it.
fn queued_error(socket: &Socket) -> Option<(SocketAddr, Errno, Option<super::Icmp>)> {
    let queued = super::next_queued_error(socket, &mut [0u8; 8])?;
    Some((queued.destination?, queued.errno?, queued.icmp))
}

/// Sends the payload of `address`'s port; `Some` when the answer is known at once, with
/// the error that told it.
fn send(socket: &Socket, address: SocketAddr) -> Option<(Verdict, io::Error)> {
    for (index, datagram) in udp_payloads::datagrams(address.port()).iter().enumerate() {
        if let Err(error) = socket.send(datagram) {
            // An error after the first datagram went out may be the answer to it (a send()
            // reports an error the socket holds); before, nothing went out to be answered.
            let verdict = if index == 0 {
                immediate(&error)
            } else {
                answer(socket, &error)
            };
            return Some((verdict, error));
        }
    }
    // Loopback delivers the datagram within send(), and with it the port unreachable a
    // closed port draws: taking it now gives it its own moment and spares the epoll round.
    // (No error yet: an open port's answer or a firewall's drop, which the loop waits for.)
    if address.ip().is_loopback()
        && let Ok(Some(error)) = socket.take_error()
    {
        return Some((answer(socket, &error), error));
    }
    None
}

/// An error connect() or the first send() returned: nothing had gone out to be answered.
fn immediate(error: &io::Error) -> Verdict {
    match errno_of(error) {
        // Not TCP's reset: whatever refused, it was a port unreachable.
        Errno::ECONNREFUSED => CLOSED,
        errno => classify_immediate(errno),
    }
}

/// An error the socket reported after a datagram went out: the ICMP message that came
/// back for it, or a local failure.
fn answer(socket: &Socket, error: &io::Error) -> Verdict {
    let errno = errno_of(error);
    match errno {
        Errno::ECONNREFUSED => CLOSED,
        // Woken with nothing to read: the try goes again.
        Errno::EAGAIN => Verdict::Local,
        _ => {
            // The socket carried this try alone, so the first ICMP message queued is its.
            let mut data = [0u8; 8];
            let icmp = super::next_queued_error(socket, &mut data).and_then(|queued| queued.icmp);
            classify_answer(errno, icmp)
        }
    }
}

fn errno_of(error: &io::Error) -> Errno {
    Errno::from_raw(error.raw_os_error().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::time::Duration;

    fn udp(address: SocketAddr) -> Destination {
        Destination {
            address,
            proto: Proto::Udp,
        }
    }

    /// The verdict on one try to `address`, waiting up to a second for it.
    fn probe(address: SocketAddr) -> Option<Verdict> {
        probe_with(&mut UdpProbe::default(), address)
    }

    fn probe_with(prober: &mut UdpProbe, address: SocketAddr) -> Option<Verdict> {
        let started = prober.start(udp(address)).unwrap();
        started.verdict.or_else(|| {
            let socket = &started.socket;
            let mut poll = [nix::poll::PollFd::new(
                std::os::fd::AsFd::as_fd(socket),
                nix::poll::PollFlags::POLLIN,
            )];
            let ready = nix::poll::poll(&mut poll, 1000u16).unwrap();
            (ready > 0).then(|| prober.finish(socket, udp(address)))
        })
    }

    fn free_port(address: &str) -> SocketAddr {
        UdpSocket::bind(address).unwrap().local_addr().unwrap()
    }

    #[test]
    fn a_closed_loopback_port_is_refused_within_send() {
        for address in ["127.0.0.1:0", "[::1]:0"] {
            let closed = free_port(address);
            let mut prober = UdpProbe::default();
            let started = prober.start(udp(closed)).unwrap();
            assert_eq!(started.verdict, Some(CLOSED), "{closed}");
        }
    }

    #[test]
    fn loopback_tries_share_one_socket_whatever_it_holds_from_before() {
        for address in ["127.0.0.1:0", "[::1]:0"] {
            let closed = free_port(address);
            let mut prober = UdpProbe::default();
            let mut descriptors = std::collections::BTreeSet::new();
            for _ in 0..3 {
                let started = prober.start(udp(closed)).unwrap();
                assert_eq!(started.verdict, Some(CLOSED), "{closed}");
                descriptors.insert(started.socket.as_raw_fd());
                prober.recycle(started.socket, udp(closed), CLOSED, false, true);
                assert_eq!(prober.idle_sockets(), 1);
            }
            assert_eq!(descriptors.len(), 1, "{closed}");
            // The refusal of an earlier try that came only after its send: it fails the
            // next send, and names another port.
            let other = free_port(address);
            let shared = prober.loopback[family(closed)].as_ref().unwrap();
            shared.send_to(&[], &other.into()).unwrap();
            let started = prober.start(udp(closed)).unwrap();
            assert_eq!(started.verdict, Some(CLOSED), "{closed}");
            prober.recycle(started.socket, udp(closed), CLOSED, false, false);
            assert_eq!(prober.idle_sockets(), 0, "no room: the socket closes");
        }
    }

    #[test]
    fn the_port_of_our_own_loopback_socket_is_found_closed() {
        for address in ["127.0.0.1:0", "[::1]:0"] {
            let closed = free_port(address);
            let mut prober = UdpProbe::default();
            let started = prober.start(udp(closed)).unwrap();
            prober.recycle(started.socket, udp(closed), CLOSED, false, true);
            let shared = prober.loopback[family(closed)].as_ref().unwrap();
            let port = shared.local_addr().unwrap().as_socket().unwrap().port();
            let ours = SocketAddr::new(closed.ip(), port);
            assert_eq!(probe_with(&mut prober, ours), Some(CLOSED), "{ours}");
        }
    }

    #[test]
    fn an_answering_port_is_open_and_a_silent_one_unanswered() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let address = server.local_addr().unwrap();
        let echo = std::thread::spawn(move || {
            let mut buffer = [0u8; 512];
            // Each try sends twice on loopback: on the shared socket, which draws no
            // refusal, then on a connected socket of its own. The first try's two
            // datagrams are answered, the second's left unanswered.
            for answer in [true, true, false, false] {
                let (length, peer) = server.recv_from(&mut buffer).unwrap();
                if answer {
                    server.send_to(&buffer[..length], peer).unwrap();
                }
            }
        });
        assert_eq!(probe(address), Some(OPEN));
        let mut prober = UdpProbe::default();
        let started = prober.start(udp(address)).unwrap();
        assert_eq!(started.verdict, None, "silence: the loop waits");
        echo.join().unwrap();
    }

    #[test]
    fn several_datagrams_to_a_closed_port_are_one_refusal() {
        // SNMP's port gets two datagrams; on loopback the second send() reports the port
        // unreachable the first drew. Port 161 is not ours to bind: only a free one is
        // probed, so the test runs where an SNMP agent listens too.
        let snmp = SocketAddr::from(([127, 0, 0, 1], 161));
        if UdpSocket::bind(snmp).is_ok() {
            assert_eq!(probe(snmp), Some(CLOSED));
        }
    }

    #[test]
    fn errors_after_a_datagram_are_answers() {
        let socket = Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap();
        let refused = io::Error::from_raw_os_error(Errno::ECONNREFUSED as i32);
        assert_eq!(answer(&socket, &refused), CLOSED);
        let unreachable = io::Error::from_raw_os_error(Errno::EHOSTUNREACH as i32);
        assert_eq!(
            answer(&socket, &unreachable),
            Verdict::Final(PortState::Filtered, Reason::HostUnreach)
        );
        let again = io::Error::from_raw_os_error(Errno::EAGAIN as i32);
        assert_eq!(answer(&socket, &again), Verdict::Local);
        let no_route = io::Error::from_raw_os_error(Errno::ENETUNREACH as i32);
        assert_eq!(immediate(&no_route), Verdict::NoRoute);
    }
}
