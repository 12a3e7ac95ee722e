//! The state machines of version detection: each open port a small one (wait for a socket,
//! connect, send, read the answer until a match, its close, a size cap or its deadline,
//! then the next probe on a fresh connection), all of them on the scan's own epoll
//! instance, so that a port is probed as soon as the scan finds it open, and a silent
//! service costs time on its own port only.
//!
//! An [`Identifier`] takes ports as they come and is driven by the loop that owns the
//! [`Driver`] (the scan's, or one of its own for ports read from a file): it starts
//! what its share of sockets allows, takes the wakeups of its tokens, and expires its
//! deadlines; finished ports are collected with [`Identifier::finished`]. Its tokens are
//! its job numbers plus a base, apart from those of the loop's own sockets.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::mem;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::epoll::EpollFlags;
use nix::sys::socket::{self, sockopt};
use rustls::{ClientConfig, ClientConnection};
use socket2::{Domain, Protocol, Socket, Type};

use common::services::ports::Proto;

use crate::driver::Driver;
use crate::service::db::{Found, ProbeDb};
use crate::service::tls::{self, Certificate};

/// The most bytes of one answer read and matched: an endless banner is cut here.
pub const ANSWER_CAP: usize = 16 * 1024;

/// The most bytes of an answer kept as the port's banner.
pub const BANNER_CAP: usize = 1024;

/// How long a connection may take to open before the probe counts as unanswered.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long to listen for a greeting before sending a probe made for the port.
const GREETING_WAIT: Duration = Duration::from_secs(1);

/// How long to wait before trying again when the system had no socket to give and none of
/// ours is open to free one.
const SHORTAGE_BACKOFF: Duration = Duration::from_millis(20);

/// What probing one port found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Probed {
    /// The rule that named the service: a match, or else the last softmatch; `None` when
    /// no probe's answer matched anything.
    pub found: Option<Found>,
    /// The port accepted and hung up at once, without a word (nmap's `tcpwrapped`).
    pub wrapped: bool,
    /// The first answer, the NULL probe's greeting if there was one, cut at [`BANNER_CAP`].
    /// Inside a TLS tunnel, the first answer inside it.
    pub banner: Vec<u8>,
    /// The service answered a TLS ClientHello: the probes went again inside TLS.
    pub tunnel: bool,
    /// The certificate the TLS server showed.
    pub certificate: Option<Certificate>,
    /// UDP: a datagram came back from the port, so something listens there.
    pub answered: bool,
    /// UDP: a probe drew an ICMP port unreachable, so nothing listens there.
    pub refused: bool,
}

/// Where one port's identification stands.
///
/// `Waiting` → `Connecting` (a socket of the budget is free) → `Reading` (connected, the
/// probe's bytes sent) → `Waiting` again for the next probe (no match, and probes left),
/// or `Done` (a match, `tcpwrapped`, or no probes left). A failed or timed-out connect
/// moves to the next probe as an unanswered one does. A match of `ssl` starts the probes
/// again from the first, each `Reading` then through a TLS client on its connection. A UDP
/// port goes from `Waiting` straight to `Reading`, every probe's datagram sent at once, and
/// is `Done` at the first hard match, an ICMP error or the longest probe's wait.
enum Step {
    Waiting,
    Connecting {
        socket: Socket,
    },
    Reading {
        socket: Socket,
        /// In a TLS tunnel: the client, whose handshake goes on while the probe waits in
        /// its send buffer.
        tls: Option<Box<ClientConnection>>,
        connected: Instant,
        answer: Vec<u8>,
    },
    Done,
}

/// One port: its probes in the order they are tried, and what came so far.
struct Job {
    address: SocketAddr,
    proto: Proto,
    plan: Vec<usize>,
    /// The index in `plan` of the probe in flight, or of the next to send.
    next: usize,
    step: Step,
    deadline: Instant,
    result: Probed,
}

impl Job {
    /// Whether it holds a socket: connecting, or reading an answer.
    fn busy(&self) -> bool {
        matches!(self.step, Step::Connecting { .. } | Step::Reading { .. })
    }
}

/// How the probes are chosen for a port.
#[derive(Debug, Clone, Copy)]
pub struct Choice {
    /// nmap's `--version-intensity`: probes rarer than this are tried only on the ports
    /// they name.
    pub intensity: u8,
    /// The most ports probed at once (sockets of the descriptor budget).
    pub parallel: usize,
}

/// The ports being identified, each a [`Job`] numbered in the order it came.
pub struct Identifier<'db> {
    db: &'db ProbeDb,
    tls: Arc<ClientConfig>,
    choice: Choice,
    /// A job's token is its number plus this.
    token_base: usize,
    jobs: Vec<Job>,
    /// Jobs waiting for a socket; one between two probes goes first, so that a port once
    /// begun is finished before others are begun.
    waiting: VecDeque<usize>,
    /// Jobs holding a socket.
    active: usize,
    /// Jobs not yet done.
    unfinished: usize,
    /// Done jobs whose results are not collected yet.
    done: Vec<usize>,
    /// When the system had no socket to give: no start is tried before this.
    short_until: Option<Instant>,
}

impl<'db> Identifier<'db> {
    /// Tokens from `token_base` up are its own; the loop's other sockets use lower ones.
    pub fn new(db: &'db ProbeDb, choice: Choice, token_base: usize) -> Self {
        Self {
            db,
            tls: tls::client_config(),
            choice,
            token_base,
            jobs: Vec::new(),
            waiting: VecDeque::new(),
            active: 0,
            unfinished: 0,
            done: Vec::new(),
            short_until: None,
        }
    }

    /// Queues a port to identify; its number is the order it came in, from 0. A port with
    /// no probe of its protocol to try is done at once, with nothing found.
    pub fn add(&mut self, address: SocketAddr, proto: Proto, now: Instant) -> usize {
        let number = self.jobs.len();
        let plan = plan(self.db, proto, address.port(), self.choice.intensity);
        let step = if plan.is_empty() {
            self.done.push(number);
            Step::Done
        } else {
            self.unfinished += 1;
            self.waiting.push_back(number);
            Step::Waiting
        };
        self.jobs.push(Job {
            address,
            proto,
            plan,
            next: 0,
            step,
            deadline: now,
            result: Probed::default(),
        });
        number
    }

    /// Whether some port is not identified yet.
    pub fn busy(&self) -> bool {
        self.unfinished > 0
    }

    /// The sockets its probes hold now.
    pub fn sockets(&self) -> usize {
        self.active
    }

    /// Starts the waiting ports' next probes, as many as its share of sockets allows.
    pub fn start<D: Driver<Socket>>(&mut self, driver: &mut D) -> io::Result<()> {
        let now = driver.now();
        if self.short_until.is_some_and(|until| until > now) {
            return Ok(());
        }
        self.short_until = None;
        while self.active < self.choice.parallel.max(1) {
            let Some(number) = self.waiting.pop_front() else {
                break;
            };
            let token = number + self.token_base;
            let job = &mut self.jobs[number];
            let started = match job.proto {
                Proto::Udp => send_datagram(self.db, job, token, driver)?,
                _ => connect(job, token, driver)?,
            };
            if !started {
                self.waiting.push_front(number);
                self.short_until = Some(now + SHORTAGE_BACKOFF);
                break;
            }
            self.settle(number, false);
        }
        Ok(())
    }

    /// A socket of its own (`token`) has something to say.
    pub fn ready<D: Driver<Socket>>(&mut self, token: usize, driver: &mut D) -> io::Result<()> {
        let number = token - self.token_base;
        let Some(job) = self.jobs.get_mut(number) else {
            return Ok(());
        };
        if !job.busy() {
            return Ok(());
        }
        let step = mem::replace(&mut job.step, Step::Done);
        job.step = match step {
            Step::Connecting { socket } => {
                connected(self.db, &self.tls, job, socket, token, driver)?
            }
            Step::Reading { socket, .. } if job.proto == Proto::Udp => {
                read_datagrams(self.db, job, socket, token, driver)?
            }
            Step::Reading {
                socket,
                tls,
                connected,
                answer,
            } => read(
                self.db,
                job,
                (socket, tls),
                connected,
                answer,
                token,
                driver,
            )?,
            other => other,
        };
        self.settle(number, true);
        Ok(())
    }

    /// Ends the probes whose deadlines have passed.
    pub fn expire(&mut self, now: Instant) {
        for number in 0..self.jobs.len() {
            let job = &mut self.jobs[number];
            if !job.busy() || job.deadline > now {
                continue;
            }
            let step = mem::replace(&mut job.step, Step::Done);
            job.step = match step {
                Step::Connecting { .. } => next_probe(self.db, job),
                // Every UDP probe went at once: the wait for their answers is over.
                Step::Reading { .. } if job.proto == Proto::Udp => Step::Done,
                Step::Reading {
                    answer, connected, ..
                } => judge(self.db, job, &answer, connected, now, true)
                    .expect("a complete answer is judged"),
                other => other,
            };
            self.settle(number, true);
        }
    }

    /// When it next needs the clock: its soonest deadline, or the end of a shortage.
    pub fn deadline(&self) -> Option<Instant> {
        let soonest = self
            .jobs
            .iter()
            .filter(|job| job.busy())
            .map(|job| job.deadline)
            .min();
        match (soonest, self.short_until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The ports identified since the last call: their numbers and what was found.
    pub fn finished(&mut self) -> impl Iterator<Item = (usize, Probed)> + '_ {
        self.done.drain(..).map(|number| {
            let job = &mut self.jobs[number];
            job.plan = Vec::new();
            (number, mem::take(&mut job.result))
        })
    }

    /// Counts a job that moved (`was_busy`: it held a socket before): one that took or
    /// gave up a socket, queued again if it has probes left, or done.
    fn settle(&mut self, number: usize, was_busy: bool) {
        let job = &self.jobs[number];
        match (was_busy, job.busy()) {
            (false, true) => self.active += 1,
            (true, false) => self.active -= 1,
            _ => {}
        }
        match job.step {
            Step::Waiting => self.waiting.push_front(number),
            Step::Done => {
                self.unfinished -= 1;
                self.done.push(number);
            }
            Step::Connecting { .. } | Step::Reading { .. } => {}
        }
    }
}

/// The probes to try on `port` of `proto`, in order: NULL (listen; TCP only), those whose
/// `ports` name it, then the rest no rarer than `intensity`, commonest first. Printers'
/// ports (`Exclude`) are the caller's to leave out.
fn plan(db: &ProbeDb, proto: Proto, port: u16, intensity: u8) -> Vec<usize> {
    let null = db.probe(Proto::Tcp, "NULL").filter(|_| proto == Proto::Tcp);
    let mut plan: Vec<usize> = null.into_iter().collect();
    let probes = || {
        db.probes
            .iter()
            .enumerate()
            .filter(move |(index, probe)| probe.proto == proto && Some(*index) != null)
    };
    plan.extend(
        probes()
            .filter(|(_, probe)| probe.likes(port))
            .map(|(index, _)| index),
    );
    let mut rest: Vec<(u8, usize)> = probes()
        .filter(|(_, probe)| !probe.likes(port) && probe.rarity <= intensity)
        .map(|(index, probe)| (probe.rarity, index))
        .collect();
    rest.sort_unstable();
    plan.extend(rest.into_iter().map(|(_, index)| index));
    plan
}

/// Opens a connection for the job's next probe; `false` when the system has no socket to
/// give now (the job waits for another's).
fn connect<D: Driver<Socket>>(job: &mut Job, token: usize, driver: &mut D) -> io::Result<bool> {
    let socket = match open(job.address) {
        Ok(socket) => socket,
        Err(error) if is_shortage(&error) => return Ok(false),
        Err(error) => return Err(error),
    };
    driver.register(&socket, token, EpollFlags::EPOLLOUT)?;
    job.deadline = driver.now() + CONNECT_TIMEOUT;
    job.step = Step::Connecting { socket };
    Ok(true)
}

/// A non-blocking socket with its connect() under way to `address`.
fn open(address: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_nonblocking(true)?;
    socket.set_cloexec(true)?;
    match socket.connect(&address.into()) {
        Err(error) if is_shortage(&error) => Err(error),
        // Under way (EINPROGRESS), or refused at once: the socket's error says which when
        // epoll reports it.
        _ => Ok(socket),
    }
}

/// Sends every UDP probe of the job's plan at once, from one socket of its own: with no
/// connection to set up, waiting out each probe's silence in turn (as nmap does) would
/// cost a silent port the sum of their waits. `false` when the system has no socket to
/// give now.
fn send_datagram<D: Driver<Socket>>(
    db: &ProbeDb,
    job: &mut Job,
    token: usize,
    driver: &mut D,
) -> io::Result<bool> {
    let socket = match udp_socket(job.address) {
        Ok(socket) => socket,
        Err(error) if is_shortage(&error) => return Ok(false),
        Err(error) => return Err(error),
    };
    let now = driver.now();
    let mut wait = Duration::ZERO;
    for &index in &job.plan {
        let probe = &db.probes[index];
        wait = wait.max(Duration::from_millis(probe.wait_ms));
        // Any other error is an ICMP error to an earlier probe, which the read finds too.
        if let Err(error) = socket.send_to(&probe.payload, &job.address.into())
            && is_shortage(&error)
        {
            return Ok(false);
        }
    }
    driver.register(&socket, token, EpollFlags::EPOLLIN)?;
    job.deadline = now + wait;
    job.step = Step::Reading {
        socket,
        tls: None,
        connected: now,
        answer: Vec::new(),
    };
    Ok(true)
}

/// Reads the datagrams that came back from the target (from any of its ports: see
/// [`udp_socket`]), each a whole answer, matched against the rules of every probe sent: a
/// hard match ends the job, as does an ICMP port unreachable.
fn read_datagrams<D: Driver<Socket>>(
    db: &ProbeDb,
    job: &mut Job,
    socket: Socket,
    token: usize,
    driver: &mut D,
) -> io::Result<Step> {
    let mut datagram = vec![0u8; ANSWER_CAP];
    // std's UdpSocket reads into a plain buffer and names the sender; the descriptor, and
    // its registration, stay the same.
    let udp = std::net::UdpSocket::from(socket);
    let outcome = read_answers(db, job, &udp, &mut datagram);
    let socket = Socket::from(udp);
    if let Some(step) = outcome {
        return Ok(step);
    }
    driver.rearm(&socket, token, EpollFlags::EPOLLIN)?;
    Ok(Step::Reading {
        socket,
        tls: None,
        connected: driver.now(),
        answer: Vec::new(),
    })
}

/// The datagrams waiting on `udp`, read and matched: `None` until one ends the job.
fn read_answers(
    db: &ProbeDb,
    job: &mut Job,
    udp: &std::net::UdpSocket,
    datagram: &mut [u8],
) -> Option<Step> {
    loop {
        let answer = match udp.recv_from(datagram) {
            // Another host's datagram to our port answers nothing of ours.
            Ok((_, from)) if from.ip() != job.address.ip() => continue,
            Ok((n, _)) => &datagram[..n],
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return None,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => {
                // An ICMP port unreachable before any answer: nothing listens there.
                job.result.refused =
                    !job.result.answered && error.kind() == io::ErrorKind::ConnectionRefused;
                return Some(Step::Done);
            }
        };
        job.result.answered = true;
        if job.result.banner.is_empty() {
            job.result.banner = answer[..answer.len().min(BANNER_CAP)].to_vec();
        }
        for &index in &job.plan {
            match best_match(db, index, answer) {
                Some(found) if !found.soft => {
                    job.result.found = Some(found);
                    return Some(Step::Done);
                }
                Some(found) if job.result.found.is_none() => job.result.found = Some(found),
                _ => {}
            }
        }
    }
}

/// A UDP socket for the probes of `address`, not connected: a TFTP server answers from a
/// port of its own (the transfer's id, RFC 1350), which a socket connected to port 69
/// would never hear; so the reader takes a datagram from any port of the target's. Without
/// a connection the kernel reports an ICMP error only when asked (IP_RECVERR,
/// IPV6_RECVERR): then a read fails with it (port unreachable: ECONNREFUSED), as on a
/// connected socket.
fn udp_socket(address: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    socket.set_nonblocking(true)?;
    socket.set_cloexec(true)?;
    if address.is_ipv4() {
        sockopt_set(&socket, sockopt::Ipv4RecvErr)?;
    } else {
        sockopt_set(&socket, sockopt::Ipv6RecvErr)?;
    }
    Ok(socket)
}

fn sockopt_set<O: socket::SetSockOpt<Val = bool>>(socket: &Socket, option: O) -> io::Result<()> {
    socket::setsockopt(socket, option, &true).map_err(io::Error::from)
}

/// Errors that mean "no socket now", not "no service there".
fn is_shortage(error: &io::Error) -> bool {
    let errno = error.raw_os_error().map(Errno::from_raw);
    matches!(
        errno,
        Some(Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM | Errno::EADDRNOTAVAIL)
    )
}

/// The connect() finished: on success the probe's bytes go out and the answer is awaited.
fn connected<D: Driver<Socket>>(
    db: &ProbeDb,
    config: &Arc<ClientConfig>,
    job: &mut Job,
    socket: Socket,
    token: usize,
    driver: &mut D,
) -> io::Result<Step> {
    if socket.take_error().ok().flatten().is_some() || socket.peer_addr().is_err() {
        return Ok(next_probe(db, job));
    }
    let probe = &db.probes[job.plan[job.next]];
    let mut tls = None;
    if job.result.tunnel {
        let name = tls::server_name(job.address.ip());
        let Ok(mut client) = ClientConnection::new(Arc::clone(config), name) else {
            return Ok(next_probe(db, job));
        };
        // Held by rustls until the handshake is done, then sent encrypted.
        client.writer().write_all(&probe.payload)?;
        if flush_tls(&mut client, &socket).is_err() {
            return Ok(next_probe(db, job));
        }
        tls = Some(Box::new(client));
    } else if !probe.payload.is_empty() && (&socket).write_all(&probe.payload).is_err() {
        // A payload is a few hundred bytes at most: it fits the empty send buffer of a new
        // connection, so one non-blocking write sends it whole, or the peer is gone.
        return Ok(next_probe(db, job));
    }
    let now = driver.now();
    job.deadline = now + wait_for(db, job);
    driver.rearm(&socket, token, interest(tls.as_deref()))?;
    Ok(Step::Reading {
        socket,
        tls,
        connected: now,
        answer: Vec::new(),
    })
}

/// How long the probe in flight waits for its answer: its `totalwaitms`, but the greeting
/// (the NULL probe) only [`GREETING_WAIT`] where a later probe is made for this port (GET on
/// 80, a DNS query on 53): a server that speaks first does so within a round trip or two,
/// and one that greets late still has its greeting matched, since every TCP probe's answer
/// is tried against the NULL probe's rules too. nmap waits out the full 6 s on each such
/// port before its first probe.
fn wait_for(db: &ProbeDb, job: &Job) -> Duration {
    let probe = &db.probes[job.plan[job.next]];
    let wait = Duration::from_millis(probe.wait_ms);
    let greeting = db.probe(Proto::Tcp, "NULL") == Some(job.plan[job.next]);
    let port = job.address.port();
    let made_for_port = job.plan[job.next + 1..]
        .iter()
        .any(|&index| db.probes[index].likes(port));
    if greeting && made_for_port {
        wait.min(GREETING_WAIT)
    } else {
        wait
    }
}

/// What a reading socket waits for: its answer, and room to send what TLS has to send.
fn interest(tls: Option<&ClientConnection>) -> EpollFlags {
    let read = EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP;
    if tls.is_some_and(|client| client.wants_write()) {
        read | EpollFlags::EPOLLOUT
    } else {
        read
    }
}

/// Sends what the TLS client has to send, as far as the socket takes it now.
fn flush_tls(client: &mut ClientConnection, socket: &Socket) -> io::Result<()> {
    while client.wants_write() {
        match client.write_tls(&mut &*socket) {
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Reads what a TLS connection has into `answer`: records from the socket, the plaintext
/// they hold, and what the handshake has to say back. `true` when the connection is over
/// (closed, reset, or a TLS error).
fn read_tls(client: &mut ClientConnection, socket: &Socket, answer: &mut Vec<u8>) -> bool {
    let mut closed = false;
    loop {
        match client.read_tls(&mut &*socket) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(_) => {
                if client.process_new_packets().is_err() {
                    return true;
                }
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    let mut chunk = [0u8; 4096];
    while answer.len() < ANSWER_CAP {
        match client.reader().read(&mut chunk) {
            Ok(0) => return true,
            Ok(n) => answer.extend_from_slice(&chunk[..n.min(ANSWER_CAP - answer.len())]),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
            Err(_) => return true,
        }
    }
    closed || flush_tls(client, socket).is_err()
}

/// Reads what the socket has. A hard match, the peer's close or the cap ends the probe; else
/// the socket waits for more.
fn read<D: Driver<Socket>>(
    db: &ProbeDb,
    job: &mut Job,
    (socket, mut tls): (Socket, Option<Box<ClientConnection>>),
    connected: Instant,
    mut answer: Vec<u8>,
    token: usize,
    driver: &mut D,
) -> io::Result<Step> {
    let mut closed = false;
    let mut chunk = [0u8; 4096];
    if let Some(client) = tls.as_deref_mut() {
        closed = read_tls(client, &socket, &mut answer);
        if job.result.certificate.is_none() {
            let der = client.peer_certificates().and_then(|chain| chain.first());
            job.result.certificate = der.and_then(|der| Certificate::read(der));
        }
    }
    while tls.is_none() && answer.len() < ANSWER_CAP {
        match (&socket).read(&mut chunk) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => answer.extend_from_slice(&chunk[..n.min(ANSWER_CAP - answer.len())]),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            // A reset ends the answer as a close does.
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    let complete = closed || answer.len() >= ANSWER_CAP;
    if let Some(step) = judge(db, job, &answer, connected, driver.now(), complete) {
        return Ok(step);
    }
    driver.rearm(&socket, token, interest(tls.as_deref()))?;
    Ok(Step::Reading {
        socket,
        tls,
        connected,
        answer,
    })
}

/// Judges the answer of the probe in flight: the job's next step, or `None` to read on.
/// `complete`: nothing more will come (the peer closed, the cap or the deadline was
/// reached), so an answer without a hard match moves on to the next probe.
fn judge(
    db: &ProbeDb,
    job: &mut Job,
    answer: &[u8],
    connected: Instant,
    now: Instant,
    complete: bool,
) -> Option<Step> {
    let probe_index = job.plan[job.next];
    let probe = &db.probes[probe_index];
    if answer.is_empty() {
        if !complete {
            return None;
        }
        let null = db.probe(Proto::Tcp, "NULL") == Some(probe_index);
        let quick =
            now.saturating_duration_since(connected) < Duration::from_millis(probe.tcpwrapped_ms);
        // Closed at once without a word: something accepts and hangs up (nmap's
        // tcpwrapped); a deadline passing is silence, not that.
        if null && quick && job.deadline > now && !job.result.tunnel {
            job.result.wrapped = true;
            return Some(Step::Done);
        }
        return Some(next_probe(db, job));
    }
    let found = best_match(db, probe_index, answer);
    let hard = found.as_ref().is_some_and(|found| !found.soft);
    if !hard && !complete {
        return None;
    }
    if job.result.banner.is_empty() {
        job.result.banner = answer[..answer.len().min(BANNER_CAP)].to_vec();
    }
    let tls = found.as_ref().is_some_and(|f| f.service == "ssl");
    if hard && tls && job.proto == Proto::Tcp && !job.result.tunnel {
        // TLS: the probes again, from the first, inside the tunnel, but the one that
        // found it.
        job.result.tunnel = true;
        job.result.banner.clear();
        job.plan.remove(job.next);
        job.next = 0;
        return Some(Step::Waiting);
    }
    if hard {
        job.result.found = found;
        return Some(Step::Done);
    }
    if job.result.found.is_none() {
        job.result.found = found;
    }
    Some(next_probe(db, job))
}

/// The first hard match of `answer` among the probe's rules, its fallbacks' and the NULL
/// probe's, in that order; else the first softmatch.
pub fn best_match(db: &ProbeDb, probe_index: usize, answer: &[u8]) -> Option<Found> {
    let probe = &db.probes[probe_index];
    let mut sources = vec![probe_index];
    // A fallback may name a probe of the other protocol: nmap keeps the rules for DNS over
    // TCP under its UDP probe (DNSVersionBindReqTCP falls back to DNSVersionBindReq).
    sources.extend(probe.fallback.iter().filter_map(|name| {
        db.probe(probe.proto, name)
            .or_else(|| db.probes.iter().position(|other| other.name == *name))
    }));
    if probe.proto == Proto::Tcp {
        sources.extend(db.probe(Proto::Tcp, "NULL"));
    }
    let mut soft = None;
    for source in sources {
        for rule in &db.probes[source].matches {
            if soft.is_some() && rule.soft {
                continue;
            }
            if let Some(found) = rule.apply(answer) {
                if !found.soft {
                    return Some(found);
                }
                soft = Some(found);
            }
        }
    }
    soft
}

/// Moves to the next probe worth sending: with a softmatch in hand, only those with a rule
/// for its service (as nmap narrows its probes); `Done` when none is left.
fn next_probe(db: &ProbeDb, job: &mut Job) -> Step {
    let soft = job
        .result
        .found
        .as_ref()
        .map(|found| found.service.as_str());
    loop {
        job.next += 1;
        let Some(&index) = job.plan.get(job.next) else {
            return Step::Done;
        };
        let useful = soft.is_none_or(|service| {
            db.probes[index]
                .matches
                .iter()
                .any(|rule| !rule.soft && rule.service == service)
        });
        if useful {
            return Step::Waiting;
        }
    }
}
