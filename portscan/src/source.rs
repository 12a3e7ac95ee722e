//! Whether this machine has an address to send from to a target yet. An IPv6 address is
//! no source until duplicate address detection has passed, a second or two after it was
//! added or its link came up. Meanwhile the kernel picks `::1` as the source if loopback is
//! up, or finds none; a probe still goes out (or connect() fails with EADDRNOTAVAIL, which
//! reads as a shortage of local ports), its answer never comes back here, and a live host
//! looks down, an open port filtered. nmap stops with "Failed to convert source address".
//! A probe to such a target waits for the address instead, a few seconds at most.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use socket2::{Domain, Socket, Type};

/// How long to wait for an IPv6 source address to pass duplicate address detection (a
/// random delay of up to `rtr_solicit_delay`, 1 s, then one probe of `retrans_time`, 1 s,
/// by default).
const MOST_WAIT: Duration = Duration::from_secs(4);

/// How often to look again while waiting.
const RECHECK: Duration = Duration::from_millis(50);

/// Why a target has to be given up: for the message that names it.
pub const NO_SOURCE: &str =
    "no IPv6 address of this machine can reach it (none has passed duplicate address detection)";

/// Whether this machine can send to `address` from an address that the answer can come
/// back to. A UDP socket's connect() shows the kernel's choice and sends nothing; a new one
/// each time, as a connected socket keeps the source it got first. IPv4 has no such wait.
pub fn ready(address: IpAddr) -> bool {
    let IpAddr::V6(target) = address else {
        return true;
    };
    let Ok(socket) = Socket::new(Domain::IPV6, Type::DGRAM.cloexec(), None) else {
        return true;
    };
    // The port is never sent to: connect() on a UDP socket only chooses the route.
    if let Err(error) = socket.connect(&SocketAddr::new(address, 9).into()) {
        // No source at all. Any other failure is the probe's own to meet and report.
        return error.raw_os_error() != Some(Errno::EADDRNOTAVAIL as i32);
    }
    let source = socket.local_addr().ok().and_then(|local| local.as_socket());
    source.is_none_or(|source| target.is_loopback() || !source.ip().is_loopback())
}

/// A target waiting for a source address.
#[derive(Debug, Clone, Copy)]
pub struct Wait {
    since: Instant,
    next_check: Instant,
}

/// What a waiting target may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poll {
    Ready,
    /// Not before this time.
    Later(Instant),
    /// It waited long enough: the target cannot be reached from here.
    GiveUp,
}

impl Wait {
    /// `None` if `address` can be sent to now, else a wait that starts at `now`.
    pub fn start(address: IpAddr, now: Instant) -> Option<Self> {
        (!ready(address)).then_some(Self {
            since: now,
            next_check: now + RECHECK,
        })
    }

    /// When [`poll`](Self::poll) looks again.
    pub fn next_check(&self) -> Instant {
        self.next_check
    }

    /// Looks again, no more often than every [`RECHECK`].
    pub fn poll(&mut self, address: IpAddr, now: Instant) -> Poll {
        if now < self.next_check {
            return Poll::Later(self.next_check);
        }
        if ready(address) {
            return Poll::Ready;
        }
        if now.saturating_duration_since(self.since) >= MOST_WAIT {
            return Poll::GiveUp;
        }
        self.next_check = now + RECHECK;
        Poll::Later(self.next_check)
    }
}
