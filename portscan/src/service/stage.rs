//! The event loop of version detection: every open port's probes on one epoll instance,
//! each port a small state machine (wait for a socket, connect, send, read the answer until
//! a match, its close, a size cap or its deadline, then the next probe on a fresh
//! connection), so that a silent service costs time on its own port only.
//!
//! It runs after the port scan, on the ports it found open, through the scan's own
//! [`Driver`] (the clock and the epoll wait), in the scan loop's style: a slab of jobs
//! indexed by the epoll token, and a loop body that matches on what came.

use std::io::{self, Read, Write};
use std::mem;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::epoll::EpollFlags;
use rustls::{ClientConfig, ClientConnection};
use socket2::{Domain, Protocol, Socket, Type};

use common::services::ports::Proto;

use crate::driver::{Driver, Wakeup};
use crate::service::db::{Found, ProbeDb};
use crate::service::tls::{self, Certificate};

/// The most bytes of one answer read and matched: an endless banner is cut here.
pub const ANSWER_CAP: usize = 16 * 1024;

/// The most bytes of an answer kept as the port's banner.
pub const BANNER_CAP: usize = 1024;

/// How long a connection may take to open before the probe counts as unanswered.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

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
}

/// Where one port's identification stands.
///
/// `Waiting` → `Connecting` (a socket of the budget is free) → `Reading` (connected, the
/// probe's bytes sent) → `Waiting` again for the next probe (no match, and probes left),
/// or `Done` (a match, `tcpwrapped`, or no probes left). A failed or timed-out connect
/// moves to the next probe as an unanswered one does. A match of `ssl` starts the probes
/// again from the first, each `Reading` then through a TLS client on its connection.
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

/// Identifies the service behind each of `ports`; the results come in their order. Stops
/// early, returning `None`, when a signal comes.
pub fn identify<D: Driver<Socket>>(
    db: &ProbeDb,
    ports: &[SocketAddr],
    choice: Choice,
    driver: &mut D,
) -> io::Result<Option<Vec<Probed>>> {
    let now = driver.now();
    let tls = tls::client_config();
    let mut jobs: Vec<Job> = ports
        .iter()
        .map(|&address| Job {
            address,
            plan: plan(db, address.port(), choice.intensity),
            next: 0,
            step: Step::Waiting,
            deadline: now,
            result: Probed::default(),
        })
        .collect();
    let mut waiting: Vec<usize> = (0..jobs.len()).rev().collect();
    let mut active = 0usize;
    loop {
        while active < choice.parallel.max(1) {
            let Some(token) = waiting.pop() else { break };
            if start(&mut jobs[token], token, driver)? {
                active += 1;
            } else {
                waiting.push(token);
            }
        }
        if active == 0 && waiting.is_empty() {
            break;
        }
        let now = driver.now();
        let soonest = jobs
            .iter()
            .filter(|job| job.busy())
            .map(|job| job.deadline)
            .min()
            .unwrap_or(now);
        driver.wait(soonest.saturating_duration_since(now))?;
        let ready: Vec<Wakeup> = driver.ready().collect();
        for wakeup in ready {
            let token = match wakeup {
                Wakeup::Signal => return Ok(None),
                Wakeup::Answer(token) => token,
            };
            let job = &mut jobs[token];
            if !job.busy() {
                continue;
            }
            let step = mem::replace(&mut job.step, Step::Done);
            job.step = match step {
                Step::Connecting { socket } => connected(db, &tls, job, socket, token, driver)?,
                Step::Reading {
                    socket,
                    tls,
                    connected,
                    answer,
                } => read(db, job, (socket, tls), connected, answer, token, driver)?,
                other => other,
            };
            settle(job, &mut active, &mut waiting, token);
        }
        let now = driver.now();
        for (token, job) in jobs.iter_mut().enumerate() {
            if !job.busy() || job.deadline > now {
                continue;
            }
            let step = mem::replace(&mut job.step, Step::Done);
            job.step = match step {
                Step::Connecting { .. } => next_probe(db, job),
                Step::Reading {
                    answer, connected, ..
                } => judge(db, job, &answer, connected, now, true)
                    .expect("a complete answer is judged"),
                other => other,
            };
            settle(job, &mut active, &mut waiting, token);
        }
    }
    Ok(Some(jobs.into_iter().map(|job| job.result).collect()))
}

/// Counts a job that gave up its socket, and queues it again if it has probes left.
fn settle(job: &Job, active: &mut usize, waiting: &mut Vec<usize>, token: usize) {
    match job.step {
        Step::Waiting => {
            *active -= 1;
            waiting.push(token);
        }
        Step::Done => *active -= 1,
        Step::Connecting { .. } | Step::Reading { .. } => {}
    }
}

/// The probes to try on `port`, in order: NULL (listen), those whose `ports` name it, then
/// the rest no rarer than `intensity`, commonest first. Printers' ports (`Exclude`) are the
/// caller's to leave out.
fn plan(db: &ProbeDb, port: u16, intensity: u8) -> Vec<usize> {
    let tcp = |&(_, probe): &(usize, &crate::service::db::Probe)| probe.proto == Proto::Tcp;
    let null = db.probe(Proto::Tcp, "NULL");
    let mut plan: Vec<usize> = null.into_iter().collect();
    let probes = || db.probes.iter().enumerate().filter(tcp);
    plan.extend(
        probes()
            .filter(|(index, probe)| Some(*index) != null && probe.likes(port))
            .map(|(index, _)| index),
    );
    let mut rest: Vec<(u8, usize)> = probes()
        .filter(|(index, probe)| {
            Some(*index) != null && !probe.likes(port) && probe.rarity <= intensity
        })
        .map(|(index, probe)| (probe.rarity, index))
        .collect();
    rest.sort_unstable();
    plan.extend(rest.into_iter().map(|(_, index)| index));
    plan
}

/// Opens a connection for the job's next probe; `false` when the system has no socket to
/// give now (the job waits for another's).
fn start<D: Driver<Socket>>(job: &mut Job, token: usize, driver: &mut D) -> io::Result<bool> {
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
    job.deadline = now + Duration::from_millis(probe.wait_ms);
    driver.rearm(&socket, token, interest(tls.as_deref()))?;
    Ok(Step::Reading {
        socket,
        tls,
        connected: now,
        answer: Vec::new(),
    })
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
    if hard && !job.result.tunnel && found.as_ref().is_some_and(|f| f.service == "ssl") {
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
pub(super) fn best_match(db: &ProbeDb, probe_index: usize, answer: &[u8]) -> Option<Found> {
    let probe = &db.probes[probe_index];
    let mut sources = vec![probe_index];
    // A fallback may name a probe of the other protocol: nmap keeps the rules for DNS over
    // TCP under its UDP probe (DNSVersionBindReqTCP falls back to DNSVersionBindReq).
    sources.extend(probe.fallback.iter().filter_map(|name| {
        db.probe(probe.proto, name)
            .or_else(|| db.probes.iter().position(|other| other.name == *name))
    }));
    sources.extend(db.probe(Proto::Tcp, "NULL"));
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
