//! A scripted network and clock for the event loop's tests. A [`Network`] hands out a
//! [`Prober`] whose tries get the replies a script chooses, and a [`Driver`] whose clock
//! jumps straight to the next answer, signal or deadline: a scan of simulated seconds takes
//! microseconds and comes out the same on every run.
//!
//! The network also plays the kernel's part where the loop relies on it, and says so loudly
//! when the loop breaks a rule the kernel would have enforced: a socket is watched once,
//! re-armed only when watched, armed for the event its protocol's answer brings, reported
//! once per arming, and leaves the watch when dropped. It carries TCP and UDP, so that a
//! plan of both is tested (UDP only as far as the loop sees it: a try, an answer or
//! silence). Like Linux, it may ration the ICMP errors each host sends (a token bucket
//! per host: UDP's closed and filtered answers past it are silence). A verdict may ask to keep an open socket for a follow-up stage, which a
//! second script answers, as a service would answer a banner read or a further probe. It
//! records every attempt and every stage, so that tests can check what happened when.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::contract::record::{PortState, Reason};
use common::services::ports::Proto;
use nix::errno::Errno;
use nix::sys::epoll::EpollFlags;

use crate::driver::{Driver, Wakeup};
use crate::engine::TargetPort;
use crate::probe::{Destination, Prober, Started, Verdict, reusable};

/// What the network does with one try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// The try never leaves: no descriptor is left for its socket (EMFILE).
    NoDescriptor,
    /// connect() itself gives the verdict (loopback, a local firewall, no route), and the
    /// call takes this long.
    AtOnce(Verdict, Duration),
    /// The verdict comes this long after the try went out.
    After(Duration, Verdict),
    /// Nothing ever comes back.
    Silence,
}

/// What a script knows when it chooses a reply.
#[derive(Debug, Clone, Copy)]
pub struct Attempt {
    pub address: SocketAddr,
    pub proto: Proto,
    /// How many attempts went to this address and protocol before (0 = first), refused
    /// ones included.
    pub number: u32,
    /// How many attempts went anywhere before.
    pub overall: u64,
    /// Simulated time since the network came up.
    pub at: Duration,
    /// Sockets open now: in flight, and kept for later tries.
    pub open: usize,
    /// Whether a socket kept from an earlier try would carry this one, needing no new
    /// descriptor.
    pub spare: bool,
}

/// What a follow-up script knows when it chooses what comes next on an open socket; also
/// what the network logs of each stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stage {
    pub address: SocketAddr,
    pub proto: Proto,
    /// Which follow-up stage of the socket's probe it is (1 = the first).
    pub number: u32,
    /// Simulated time since the network came up, when the stage began.
    pub at: Duration,
}

/// One attempt, as the network saw it.
#[derive(Debug, Clone, Copy)]
pub struct Logged {
    pub address: SocketAddr,
    pub proto: Proto,
    pub at: Duration,
    /// Whether it never left ([`Reply::NoDescriptor`]).
    pub refused: bool,
    /// Tries to this address's host awaiting their answer, this one included.
    pub in_flight: usize,
    /// Sockets open, this one's included.
    pub open: usize,
}

/// A shared handle on the simulated network; clones see the same one.
#[derive(Clone)]
pub struct Network(Rc<RefCell<State>>);

struct State {
    start: Instant,
    now: Instant,
    script: Box<dyn Fn(Attempt) -> Reply>,
    /// What comes next on a socket kept for a follow-up stage.
    follow_up: Option<Box<dyn Fn(Stage) -> Reply>>,
    stages: Vec<Stage>,
    /// Open sockets, by id; ordered, so that what a wait finds comes in the same order on
    /// every run.
    sockets: BTreeMap<u64, Connection>,
    next_socket: u64,
    attempts: HashMap<Destination, u32>,
    log: Vec<Logged>,
    most_open: usize,
    signal_at: Option<Instant>,
    waits: u64,
    /// Hosts that ration their ICMP errors, with their buckets.
    rations: HashMap<IpAddr, Ration>,
}

/// A host's ICMP errors as Linux rations them (`inet_peer_xrlim_allow`): a token every
/// `interval`, at most `burst` kept, one spent on each error; none left, no error.
struct Ration {
    interval: Duration,
    burst: f64,
    tokens: f64,
    at: Instant,
    /// When the host did not send an error, since the network came up.
    withheld: Vec<Duration>,
}

impl Ration {
    /// Whether the host sends an error at `now`, spending a token on it.
    fn allows(&mut self, now: Instant, start: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed / self.interval.as_secs_f64()).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            self.withheld.push(now - start);
            false
        }
    }
}

struct Connection {
    address: SocketAddr,
    proto: Proto,
    /// Follow-up stages begun since the socket's try went out.
    stage: u32,
    /// The event the socket's answer brings: what it must be armed for.
    brings: EpollFlags,
    /// When the verdict comes, if it does.
    answer: Option<(Instant, Verdict)>,
    /// Gone out and not yet answered (or not yet told to the loop).
    awaited: bool,
    /// In the driver's watch set.
    watched: bool,
    /// The token of the one event the socket is armed for.
    armed: Option<usize>,
}

/// A loop that turns this often without finishing a scan of a few thousand probes is stuck.
const MOST_WAITS: u64 = 1_000_000;

impl Network {
    /// A network that answers each attempt as `script` says.
    pub fn new(script: impl Fn(Attempt) -> Reply + 'static) -> Self {
        let now = Instant::now();
        Self(Rc::new(RefCell::new(State {
            start: now,
            now,
            script: Box::new(script),
            follow_up: None,
            stages: Vec::new(),
            sockets: BTreeMap::new(),
            next_socket: 0,
            attempts: HashMap::new(),
            log: Vec::new(),
            most_open: 0,
            signal_at: None,
            waits: 0,
            rations: HashMap::new(),
        })))
    }

    /// Makes `host` ration its ICMP errors: a token every `interval`, at most `burst`, the
    /// bucket full now. A UDP answer that is not open is such an error; past the ration it
    /// never comes.
    pub fn ration_icmp(&self, host: &str, interval: Duration, burst: u32) {
        let mut state = self.0.borrow_mut();
        let ration = Ration {
            interval,
            burst: f64::from(burst),
            tokens: f64::from(burst),
            at: state.now,
            withheld: Vec::new(),
        };
        state
            .rations
            .insert(host.parse().expect("an address"), ration);
    }

    /// When `host` did not send an ICMP error for its ration, in order.
    pub fn withheld(&self, host: &str) -> Vec<Duration> {
        let host: IpAddr = host.parse().expect("an address");
        let state = self.0.borrow();
        let ration = state.rations.get(&host);
        ration.map_or_else(Vec::new, |ration| ration.withheld.clone())
    }

    /// Answers the follow-up stages that verdicts ask for as `script` says: after a delay
    /// with a verdict (which may ask for a further stage), or never ([`Reply::Silence`]).
    pub fn follow_ups(&self, script: impl Fn(Stage) -> Reply + 'static) {
        self.0.borrow_mut().follow_up = Some(Box::new(script));
    }

    /// Every follow-up stage begun, in order.
    pub fn stages(&self) -> Vec<Stage> {
        self.0.borrow().stages.clone()
    }

    /// Delivers a signal `after` the network came up.
    pub fn signal_after(&self, after: Duration) {
        let mut state = self.0.borrow_mut();
        state.signal_at = Some(state.start + after);
    }

    pub fn prober(&self) -> FakeProber {
        FakeProber {
            network: self.clone(),
            spares: Vec::new(),
        }
    }

    pub fn driver(&self) -> FakeDriver {
        FakeDriver {
            network: self.clone(),
            ready: Vec::new(),
        }
    }

    /// Simulated time since the network came up.
    pub fn elapsed(&self) -> Duration {
        let state = self.0.borrow();
        state.now - state.start
    }

    /// Every attempt, in order.
    pub fn log(&self) -> Vec<Logged> {
        self.0.borrow().log.clone()
    }

    /// Attempts made to `address` over `proto`, refused ones included.
    pub fn attempts(&self, address: SocketAddr, proto: Proto) -> u32 {
        let destination = Destination { address, proto };
        let attempts = &self.0.borrow().attempts;
        attempts.get(&destination).copied().unwrap_or(0)
    }

    /// The most sockets that were open at once.
    pub fn most_open(&self) -> usize {
        self.0.borrow().most_open
    }

    /// Sockets open now.
    pub fn open(&self) -> usize {
        self.0.borrow().sockets.len()
    }

    fn open_socket(&self, address: SocketAddr) -> FakeSocket {
        let mut state = self.0.borrow_mut();
        let id = state.next_socket;
        state.next_socket += 1;
        let connection = Connection {
            address,
            proto: Proto::Tcp,
            stage: 0,
            brings: EpollFlags::empty(),
            answer: None,
            awaited: false,
            watched: false,
            armed: None,
        };
        state.sockets.insert(id, connection);
        state.most_open = state.most_open.max(state.sockets.len());
        FakeSocket {
            id,
            network: self.clone(),
        }
    }

    /// Logs an attempt to `destination` made at `at`.
    fn record(&self, destination: Destination, at: Instant, refused: bool) {
        let mut state = self.0.borrow_mut();
        let address = destination.address;
        let in_flight = state
            .sockets
            .values()
            .filter(|connection| connection.awaited && connection.address.ip() == address.ip())
            .count();
        let logged = Logged {
            address,
            proto: destination.proto,
            at: at - state.start,
            refused,
            in_flight,
            open: state.sockets.len(),
        };
        state.log.push(logged);
    }

    /// A verdict kept `socket` for a follow-up stage: what comes next on it is the follow-up
    /// script's, and it comes to be read.
    fn begin_follow_up(&self, socket: &FakeSocket) {
        let mut state = self.0.borrow_mut();
        let (now, at) = (state.now, state.now - state.start);
        let connection = state.sockets.get_mut(&socket.id).expect("a live socket");
        connection.stage += 1;
        let stage = Stage {
            address: connection.address,
            proto: connection.proto,
            number: connection.stage,
            at,
        };
        state.stages.push(stage);
        let script = state.follow_up.as_ref().expect("a script for follow-ups");
        let answer = match script(stage) {
            Reply::After(delay, verdict) => Some((now + delay, verdict)),
            Reply::Silence => None,
            reply => panic!("a follow-up reads from a socket it has: {reply:?}"),
        };
        let connection = state.sockets.get_mut(&socket.id).expect("a live socket");
        connection.answer = answer;
        connection.brings = EpollFlags::EPOLLIN;
    }

    fn connection<T>(&self, socket: &FakeSocket, look: impl FnOnce(&mut Connection) -> T) -> T {
        let mut state = self.0.borrow_mut();
        let connection = state
            .sockets
            .get_mut(&socket.id)
            .expect("a live socket is known");
        look(connection)
    }
}

impl State {
    /// What comes of `reply` to a try to `destination` once its host's ration has its say.
    /// The error is counted when it is sent, which in a script's terms is when the try went
    /// out: the host answers at once, the delay is the path's.
    fn ration(&mut self, destination: Destination, reply: Reply) -> Reply {
        let error = |verdict: Verdict| {
            destination.proto == Proto::Udp
                && matches!(verdict, Verdict::Final(state, _) if state != PortState::Open)
        };
        let (now, start) = (self.now, self.start);
        let (Reply::After(_, verdict) | Reply::AtOnce(verdict, _)) = reply else {
            return reply;
        };
        let ration = self.rations.get_mut(&destination.address.ip());
        let withheld = error(verdict) && ration.is_some_and(|ration| !ration.allows(now, start));
        if withheld { Reply::Silence } else { reply }
    }
}

/// A socket of the simulated network; dropping it closes it.
pub struct FakeSocket {
    id: u64,
    network: Network,
}

impl Drop for FakeSocket {
    fn drop(&mut self) {
        self.network.0.borrow_mut().sockets.remove(&self.id);
    }
}

/// Sends tries into the network and keeps the sockets [`TcpConnect`](crate::probe::TcpConnect)
/// would keep for later tries (in one pool, whatever the family; each for its protocol).
pub struct FakeProber {
    network: Network,
    spares: Vec<(Proto, FakeSocket)>,
}

impl Prober for FakeProber {
    type Socket = FakeSocket;
    const PROTOCOLS: &'static [Proto] = &[Proto::Tcp, Proto::Udp];

    /// A connect()'s end makes a TCP socket writable; a UDP answer makes it readable.
    fn interest(proto: Proto) -> EpollFlags {
        match proto {
            Proto::Udp => EpollFlags::EPOLLIN,
            _ => EpollFlags::EPOLLOUT,
        }
    }

    fn silence(proto: Proto) -> (PortState, Reason) {
        match proto {
            Proto::Udp => (PortState::OpenFiltered, Reason::NoResponse),
            _ => (PortState::Filtered, Reason::NoResponse),
        }
    }

    /// One datagram a UDP try, one error a closed port.
    fn icmp_errors(port: TargetPort) -> u8 {
        u8::from(port.proto == Proto::Udp)
    }

    fn start(&mut self, destination: Destination) -> io::Result<Started<FakeSocket>> {
        assert!(
            Self::PROTOCOLS.contains(&destination.proto),
            "asked to probe {destination:?}"
        );
        let address = destination.address;
        let (now, reply) = {
            let mut state = self.network.0.borrow_mut();
            let overall = state.log.len() as u64;
            let attempts = state.attempts.entry(destination).or_default();
            let number = *attempts;
            *attempts += 1;
            let attempt = Attempt {
                address,
                proto: destination.proto,
                number,
                overall,
                at: state.now - state.start,
                open: state.sockets.len(),
                spare: self.spare_for(destination.proto).is_some(),
            };
            let reply = (state.script)(attempt);
            (state.now, state.ration(destination, reply))
        };
        let (answer, verdict) = match reply {
            Reply::NoDescriptor => {
                self.network.record(destination, now, true);
                return Err(Errno::EMFILE.into());
            }
            Reply::AtOnce(verdict, _) => (None, Some(verdict)),
            Reply::After(delay, verdict) => (Some((now + delay, verdict)), None),
            Reply::Silence => (None, None),
        };
        let spare = self.spare_for(destination.proto);
        let socket = spare.map_or_else(
            || self.network.open_socket(address),
            |at| self.spares.remove(at).1,
        );
        let registered = self.network.connection(&socket, |connection| {
            assert!(connection.armed.is_none(), "a spare was left armed");
            connection.address = address;
            connection.proto = destination.proto;
            connection.stage = 0;
            connection.brings = Self::interest(destination.proto);
            connection.answer = answer;
            connection.awaited = verdict.is_none();
            connection.watched
        });
        self.network.record(destination, now, false);
        if let Reply::AtOnce(_, takes) = reply {
            self.network.0.borrow_mut().now += takes;
        }
        if let Some(Verdict::FollowUp { .. }) = verdict {
            self.network.begin_follow_up(&socket);
        }
        Ok(Started {
            socket,
            registered,
            verdict,
        })
    }

    fn finish(&mut self, socket: &FakeSocket, _destination: Destination) -> Verdict {
        let verdict = self.network.connection(socket, |connection| {
            connection.awaited = false;
            connection
                .answer
                .expect("only an answered socket is ready")
                .1
        });
        if let Verdict::FollowUp { .. } = verdict {
            self.network.begin_follow_up(socket);
        }
        verdict
    }

    fn local_error(&self, _socket: &FakeSocket) -> io::Error {
        Errno::EADDRNOTAVAIL.into()
    }

    fn recycle(
        &mut self,
        socket: FakeSocket,
        destination: Destination,
        verdict: Verdict,
        registered: bool,
        room: bool,
    ) {
        let watched = self.network.connection(&socket, |connection| {
            let address = destination.address;
            assert_eq!(connection.address, address, "recycled with its own address");
            connection.watched
        });
        assert_eq!(
            registered, watched,
            "the loop knows which sockets are watched"
        );
        if reusable(verdict) && room {
            self.spares.push((destination.proto, socket));
        }
    }

    fn idle_sockets(&self) -> usize {
        self.spares.len()
    }
}

impl FakeProber {
    /// Where the latest spare that can carry a try of `proto` is.
    fn spare_for(&self, proto: Proto) -> Option<usize> {
        self.spares.iter().rposition(|(kept, _)| *kept == proto)
    }
}

/// The simulated clock, and epoll's part: one-shot events for watched sockets.
pub struct FakeDriver {
    network: Network,
    ready: Vec<Wakeup>,
}

impl Driver<FakeSocket> for FakeDriver {
    fn now(&self) -> Instant {
        self.network.0.borrow().now
    }

    fn register(
        &mut self,
        socket: &FakeSocket,
        token: usize,
        interest: EpollFlags,
    ) -> io::Result<()> {
        self.network.connection(socket, |connection| {
            assert!(!connection.watched, "registered twice (EEXIST)");
            assert_eq!(interest, connection.brings, "armed for the wrong event");
            connection.watched = true;
            connection.armed = Some(token);
        });
        Ok(())
    }

    fn rearm(&mut self, socket: &FakeSocket, token: usize, interest: EpollFlags) -> io::Result<()> {
        self.network.connection(socket, |connection| {
            assert!(connection.watched, "re-armed but never registered (ENOENT)");
            assert_eq!(interest, connection.brings, "armed for the wrong event");
            connection.armed = Some(token);
        });
        Ok(())
    }

    /// Moves the clock to the first of `timeout`, the next answer to an armed socket and the
    /// signal, and reports everything due by then.
    fn wait(&mut self, timeout: Duration) -> io::Result<()> {
        let mut state = self.network.0.borrow_mut();
        state.waits += 1;
        assert!(state.waits < MOST_WAITS, "the loop spins");
        let next_answer = state
            .sockets
            .values()
            .filter(|connection| connection.armed.is_some())
            .filter_map(|connection| connection.answer.map(|(at, _)| at))
            .min();
        let woken = [next_answer, state.signal_at]
            .into_iter()
            .flatten()
            .fold(state.now + timeout, Instant::min);
        let now = state.now.max(woken);
        state.now = now;
        self.ready.clear();
        if state.signal_at.is_some_and(|at| at <= now) {
            self.ready.push(Wakeup::Signal);
        }
        for connection in state.sockets.values_mut() {
            if let (Some(token), Some((at, _))) = (connection.armed, connection.answer)
                && at <= now
            {
                connection.armed = None;
                self.ready.push(Wakeup::Answer(token));
            }
        }
        Ok(())
    }

    fn ready(&self) -> impl Iterator<Item = Wakeup> + '_ {
        self.ready.iter().copied()
    }
}
