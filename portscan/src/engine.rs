//! The event loop: one thread, one epoll instance, thousands of probes in flight.
//!
//! In the style of mio's `tcp_server` example: a slab of probes indexed by the epoll token,
//! and a loop whose body sends what the timing allows, waits for the next event or deadline,
//! and matches on what came. The clock and the wait come from a [`Driver`], so that the
//! tests run the loop on a scripted network and clock.
//!
//! Each probe is in one of the states of [`ProbeState`] (`lifecycle`), whose table says
//! what moves it on. The loop calls the move for what happened, in the functions that
//! handle each happening: `send` abandons the probes of a host that is gone, `launch` sends
//! a queued probe's try, `complete` takes a socket's answer, `expire` a passed deadline; then
//! it does what the new state needs: a socket armed and a deadline in the heap, the probe
//! queued again, or its end reported. An open port's socket may stay in the slab after
//! its try's answer, armed for reading with a deadline of its own, for a follow-up stage
//! the prober asks for (a banner to read, a further probe: the seam for service
//! detection); it holds a socket of the budget, and no place in its host's window.
//!
//! What a try is, how it goes out and what its answer means belong to a [`Prober`]
//! (TCP connect(), a UDP datagram); order, timing, retries, deadlines and
//! output are the loop's, the same for every kind of probe. So is the pace of the tries
//! a host answers with rationed ICMP errors ([`Prober::icmp_errors`]): a host that rations
//! them waits, parked, for its [`IcmpLimit`](crate::timing::IcmpLimit) to allow each
//! try, while other hosts go on at their own pace.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::contract::error::{Error, Result};
use common::contract::record::{PortState, Reason};
use common::services::ports::{PortList, Proto};
use nix::sys::epoll::EpollFlags;

use crate::driver::{Driver, Wakeup};
use crate::engine::lifecycle::{Outcome, ProbeState, Transition};
use crate::order::{Permutation, Shard};
use crate::probe::{Destination, Prober, Started, Verdict};
use crate::source;
use crate::targets::{Host, Targets};
use crate::timing::{HostTiming, Profile, Rate};

/// Everything a scan needs to know before it starts.
#[derive(Debug)]
pub struct Plan {
    pub targets: Targets,
    /// Every host's ports, each with its protocol. The permutation numbers the pairs
    /// host-major: pair `n` is port `n % ports.len()` of host `n / ports.len()`.
    pub ports: Vec<TargetPort>,
    pub order: Permutation,
    pub shard: Shard,
    pub profile: Profile,
    pub max_rate: Option<f64>,
    pub min_rate: Option<f64>,
    /// The most sockets open at once (from RLIMIT_NOFILE, with headroom).
    pub budget: usize,
}

impl Plan {
    /// How many pairs of the order this run's shard probes: those at its positions.
    pub fn shard_pairs(&self) -> u64 {
        let len = self.order.len();
        if len > self.shard.index {
            (len - self.shard.index).div_ceil(self.shard.count)
        } else {
            0
        }
    }
}

/// One port of a plan: a number and the protocol it is probed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TargetPort {
    pub proto: Proto,
    pub port: u16,
}

/// The ports of `list` that `P` can probe, a protocol at a time in the order of
/// [`Prober::PROTOCOLS`], each in port order. A list with none of them is refused, in words
/// that name the protocols there is a prober for; ports of other protocols are left out.
pub fn scannable<P: Prober>(list: &PortList) -> std::result::Result<Vec<TargetPort>, String> {
    let ports: Vec<TargetPort> = P::PROTOCOLS
        .iter()
        .flat_map(|&proto| {
            let numbers = list.ports(proto).iter();
            numbers.map(move |port| TargetPort { proto, port })
        })
        .collect();
    if ports.is_empty() {
        let names: Vec<String> = P::PROTOCOLS
            .iter()
            .map(|proto| proto.as_str().to_ascii_uppercase())
            .collect();
        return Err(format!(
            "portscan scans {} only; the list has no {} port",
            names.join(" and "),
            names.join(" or ")
        ));
    }
    Ok(ports)
}

/// Why a host failed when --host-timeout ran out, as [`Observer::host_failed`] says it:
/// nmap's files mark such a host `timedout`.
pub const HOST_TIMEOUT: &str = "host timeout";

/// Where the loop reports what it finds.
pub trait Observer {
    fn result(
        &mut self,
        host: &Host,
        port: TargetPort,
        state: PortState,
        reason: Reason,
        rtt: Option<Duration>,
    ) -> Result<()>;
    /// A host that could not be scanned (to the end); its other ports are dropped.
    fn host_failed(&mut self, host: &Host, why: &str);
    /// `host` rations its ICMP errors to one each `interval` (or slower): its ports that
    /// answer with one are paced to it, and the rest of its scan takes up to about
    /// `remaining`. Told once per host.
    fn icmp_limited(&mut self, host: &Host, interval: Duration, remaining: Duration);
    /// Every port of `host` this scan (or shard) probes is settled, failed host or not:
    /// nothing more about it will come, so what was held for it can be said.
    fn host_done(&mut self, host: &Host) -> Result<()>;
    /// Called on every turn of the loop; `done` of `total` probes are final.
    fn progress(&mut self, now: Instant, done: u64, total: u64) -> Result<()>;
}

/// Work an observer does on the loop's own epoll instance beside the scan's probes:
/// service detection probing the open ports the scan has found, while it goes on. Its
/// sockets' tokens are [`FOLLOW_UP_TOKENS`] and up, and they count against the scan's
/// socket ceiling. Observers with no such work take the defaults: none.
pub trait FollowUp<S> {
    /// Sockets it holds now.
    fn sockets(&self) -> usize {
        0
    }
    /// Whether it has work left: the loop runs until it has none.
    fn busy(&self) -> bool {
        false
    }
    /// Called on every turn of the loop: ends what has timed out, starts what it can,
    /// says what is finished; returns when it next needs the clock.
    fn turn<D: Driver<S>>(&mut self, _driver: &mut D) -> Result<Option<Instant>> {
        Ok(None)
    }
    /// One of its sockets, armed with `token`, has something to say.
    fn ready<D: Driver<S>>(&mut self, _token: usize, _driver: &mut D) -> Result<()> {
        Ok(())
    }
}

/// The lowest token of a [`FollowUp`]'s sockets: far above any slab index of the scan's.
pub const FOLLOW_UP_TOKENS: usize = 1 << (usize::BITS - 2);

/// How a scan ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Probes sent, retries included.
    pub sent: u64,
    /// Whether a signal stopped it.
    pub interrupted: bool,
}

/// One (host, port) pair's probe: the pair's number, and where the probe is in its life.
/// The queues hold queued probes, the slab those on a socket.
struct Probe<S> {
    pair: u64,
    state: ProbeState<S>,
}

/// A probe on a socket, at its socket's token in the slab. `serial` tells its deadline in
/// the heap from those of the probes that held the slot before it.
struct Slot<S> {
    probe: Probe<S>,
    serial: u64,
}

struct HostEntry {
    host: Host,
    timing: HostTiming,
    started: Instant,
    failed: bool,
    /// Its pairs that are done; at `pairs` the entry goes.
    settled: u64,
    /// How many of its pairs this run probes: all of them, or with `--shard`, those at
    /// the shard's positions of the order.
    pairs: u64,
    /// While this machine has no address to reach it from yet.
    unsourced: Option<source::Wait>,
}

/// What a follow-up stage waits for: something to read (a banner, the answer to a further
/// probe), or the peer's close, which reads as the end of the stream.
const FOLLOW_UP_INTEREST: EpollFlags = EpollFlags::EPOLLIN;
/// Parked pairs wait for their host's window; past this many, no new pair is drawn.
const PARK_LIMIT: usize = 1024;
/// How long to wait before retrying when nothing is in flight and the system refused a
/// socket; and how many such waits before giving up.
const LOCAL_BACKOFF: Duration = Duration::from_millis(20);
const LOCAL_ATTEMPTS: u32 = 250;
/// The most probes launched in one turn of the loop before it looks at its answers and
/// signals. Where the kernel answers inside connect() (loopback), the window never closes
/// and nothing else would stop the launching: without this bound every record waited for
/// the whole scan, and so did Ctrl-C. A turn this long takes well under a millisecond.
const LAUNCHES_PER_TURN: usize = 64;

struct Scan<'a, O: Observer + FollowUp<P::Socket>, P: Prober> {
    plan: &'a Plan,
    observer: &'a mut O,
    prober: P,
    slab: Vec<Option<Slot<P::Socket>>>,
    free: Vec<usize>,
    deadlines: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    /// What the last wait found, kept to save an allocation a turn.
    woken: Vec<Wakeup>,
    /// Boxed: the map's table grows to its peak of hosts under way and never shrinks, so
    /// its slots stay small and a host's state lives only as long as its scan.
    hosts: HashMap<u64, Box<HostEntry>>,
    retries: VecDeque<Probe<P::Socket>>,
    parked: VecDeque<Probe<P::Socket>>,
    /// The next position of the permutation this shard takes.
    position: u64,
    /// Probes in the slab, each holding a socket: tries in flight and follow-up stages.
    watched: usize,
    /// The socket ceiling: the budget, lowered when the system runs short.
    ceiling: usize,
    answers_since_cut: usize,
    rate: Rate,
    serial: u64,
    done: u64,
    total: u64,
    local_failures: u32,
    last_local_error: Option<io::Error>,
}

/// Runs the scan to its end with `prober`'s probes, or until `driver` reports a signal.
pub fn run<P: Prober>(
    plan: &Plan,
    prober: P,
    driver: &mut impl Driver<P::Socket>,
    observer: &mut (impl Observer + FollowUp<P::Socket>),
) -> Result<Summary> {
    debug_assert!(
        plan.ports
            .iter()
            .all(|port| P::PROTOCOLS.contains(&port.proto)),
        "a plan holds only ports its prober can probe"
    );
    let now = driver.now();
    let total = plan.shard_pairs();
    let mut scan = Scan {
        plan,
        observer,
        prober,
        slab: Vec::new(),
        free: Vec::new(),
        deadlines: BinaryHeap::new(),
        woken: Vec::new(),
        hosts: HashMap::new(),
        retries: VecDeque::new(),
        parked: VecDeque::new(),
        position: plan.shard.index,
        watched: 0,
        ceiling: plan.budget.max(1),
        answers_since_cut: 0,
        rate: Rate::new(now, plan.max_rate, plan.min_rate),
        serial: 0,
        done: 0,
        total,
        local_failures: 0,
        last_local_error: None,
    };
    let interrupted = scan.run(driver)?;
    Ok(Summary {
        sent: scan.rate.sent(),
        interrupted,
    })
}

impl<O: Observer + FollowUp<P::Socket>, P: Prober> Scan<'_, O, P> {
    fn run(&mut self, driver: &mut impl Driver<P::Socket>) -> Result<bool> {
        loop {
            let now = driver.now();
            let mut wake = self.send(now, driver)?;
            if let Some(at) = self.observer.turn(driver)? {
                earliest(at, &mut wake);
            }
            if self.watched == 0 && self.exhausted() && !self.observer.busy() {
                return Ok(false);
            }
            self.observer.progress(now, self.done, self.total)?;
            driver
                .wait(self.wait_time(now, wake))
                .map_err(|e| Error::io("waiting for connections", e))?;
            let now = driver.now();
            // Taken out of the driver first: an answer may arm its socket again.
            let mut woken = std::mem::take(&mut self.woken);
            woken.extend(driver.ready());
            for wakeup in woken.drain(..) {
                match wakeup {
                    Wakeup::Signal => return Ok(true),
                    Wakeup::Answer(token) if token >= FOLLOW_UP_TOKENS => {
                        self.observer.ready(token, driver)?;
                    }
                    Wakeup::Answer(slot) => self.complete(slot, now, driver)?,
                }
            }
            self.woken = woken;
            self.expire(now, driver)?;
        }
    }

    /// Whether no pair is left to send.
    fn exhausted(&self) -> bool {
        self.retries.is_empty() && self.parked.is_empty() && self.position >= self.plan.order.len()
    }

    /// How long the driver may sleep: until the next deadline, or `wake` if something is
    /// waiting on the clock (a scan delay, the rate ceiling, a local back-off).
    fn wait_time(&self, now: Instant, wake: Option<Instant>) -> Duration {
        let deadline = self.deadlines.peek().map(|Reverse((at, _, _))| *at);
        let until = match (deadline, wake) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).unwrap_or(now + Duration::from_secs(1)),
        };
        until.saturating_duration_since(now)
    }

    /// Sends what the windows, the rate and the socket ceiling allow; returns when the
    /// clock alone would let more go.
    fn send(
        &mut self,
        now: Instant,
        driver: &mut impl Driver<P::Socket>,
    ) -> Result<Option<Instant>> {
        let mut wake = None;
        let mut parked = std::mem::take(&mut self.parked);
        let mut launched = 0;
        loop {
            if self.watched + self.observer.sockets() >= self.ceiling {
                break;
            }
            if launched == LAUNCHES_PER_TURN {
                // More could go at once: look at what came, then carry on.
                earliest(now, &mut wake);
                break;
            }
            if !self.rate.allows(now) {
                earliest(self.rate.next_allowed(now), &mut wake);
                break;
            }
            let Some(probe) = parked
                .pop_front()
                .or_else(|| self.retries.pop_front())
                .or_else(|| self.draw())
            else {
                break;
            };
            let rationed = P::icmp_errors(self.port_of(probe.pair));
            let host_index = self.host_of(probe.pair);
            let floor = self.rate.behind_floor(now);
            let host_timeout = self.plan.profile.host_timeout;
            let Some(entry) = self.host(host_index, now) else {
                // Excluded, or given up: the pair is done without a result.
                self.abandon(probe)?;
                continue;
            };
            let timed_out = host_timeout
                .is_some_and(|limit| now.saturating_duration_since(entry.started) > limit);
            let address = entry.host.address;
            let source = entry.unsourced.as_mut().map(|wait| wait.poll(address, now));
            if source == Some(source::Poll::Ready) {
                entry.unsourced = None;
            }
            let timing = &mut entry.timing;
            // Not even --min-rate sends past the ration: a try the host cannot answer
            // teaches nothing, and has to go again.
            let paced = rationed > 0 && !timing.icmp_mut().allows(now, rationed);
            let blocked =
                paced || !(timing.can_send(now) || floor && timing.next_send_at(now) <= now);
            let delayed = if paced {
                timing.icmp().next_allowed(now, rationed)
            } else {
                timing.window_open().then(|| timing.next_send_at(now))
            };
            if timed_out {
                self.fail_host(host_index, HOST_TIMEOUT);
                self.abandon(probe)?;
                continue;
            }
            match source {
                Some(source::Poll::GiveUp) => {
                    self.fail_host(host_index, source::NO_SOURCE);
                    self.abandon(probe)?;
                    continue;
                }
                // Waiting for an address to send from, as a full window waits.
                Some(source::Poll::Later(at)) => {
                    earliest(at, &mut wake);
                    self.parked.push_back(probe);
                    if self.plan.targets.len() == 1 || self.parked.len() >= PARK_LIMIT {
                        break;
                    }
                    continue;
                }
                Some(source::Poll::Ready) | None => {}
            }
            if blocked {
                if let Some(at) = delayed {
                    earliest(at, &mut wake);
                }
                self.parked.push_back(probe);
                // One host: nothing else could go. Many: look a little further.
                if self.plan.targets.len() == 1 || self.parked.len() >= PARK_LIMIT {
                    break;
                }
                continue;
            }
            match self.launch(probe, host_index, driver)? {
                Launched::Yes => launched += 1,
                Launched::LocalFailure => {
                    if self.watched == 0 {
                        self.local_failures += 1;
                        if self.local_failures > LOCAL_ATTEMPTS {
                            let why = self
                                .last_local_error
                                .take()
                                .unwrap_or_else(|| io::Error::other("unknown"));
                            return Err(Error::io("opening sockets", why));
                        }
                        earliest(now + LOCAL_BACKOFF, &mut wake);
                    }
                    break;
                }
            }
        }
        // What was parked and not tried this turn keeps its place ahead of the rest.
        while let Some(probe) = parked.pop_back() {
            self.parked.push_front(probe);
        }
        Ok(wake)
    }

    /// The probe of the next pair of this shard from the permutation.
    fn draw(&mut self) -> Option<Probe<P::Socket>> {
        if self.position >= self.plan.order.len() {
            return None;
        }
        let pair = self.plan.order.at(self.position);
        self.position = self.position.saturating_add(self.plan.shard.count);
        Some(Probe {
            pair,
            state: ProbeState::Queued { tries: 0 },
        })
    }

    /// The state of a host, created on first use; `None` if excluded or failed.
    fn host(&mut self, index: u64, now: Instant) -> Option<&mut HostEntry> {
        if !self.hosts.contains_key(&index) {
            let host = self.plan.targets.get(index)?;
            let mut timing = HostTiming::new(self.plan.profile);
            if host.address.is_loopback() {
                // Linux never rations the errors it sends over the loopback device.
                timing.icmp_mut().exempt();
            }
            let unsourced = source::Wait::start(host.address, now);
            let pairs = self.pairs_of(index);
            self.hosts.insert(
                index,
                Box::new(HostEntry {
                    host,
                    timing,
                    started: now,
                    failed: false,
                    settled: 0,
                    pairs,
                    unsourced,
                }),
            );
        }
        self.hosts
            .get_mut(&index)
            .map(Box::as_mut)
            .filter(|entry| !entry.failed)
    }

    fn fail_host(&mut self, index: u64, why: &str) {
        if let Some(entry) = self.hosts.get_mut(&index)
            && !entry.failed
        {
            entry.failed = true;
            self.observer.host_failed(&entry.host, why);
        }
    }

    /// Sends the try of a queued probe.
    fn launch(
        &mut self,
        probe: Probe<P::Socket>,
        host_index: u64,
        driver: &mut impl Driver<P::Socket>,
    ) -> Result<Launched> {
        let port = self.port_of(probe.pair);
        let entry = self
            .hosts
            .get_mut(&host_index)
            .expect("the host was just looked up");
        let destination = destination(&entry.host, port);
        // Read here, not once a turn: a probe's round trip is its own, however many
        // probes went before it in the same turn.
        let sent = driver.now();
        let Started {
            socket,
            registered,
            verdict,
        } = match self.prober.start(destination) {
            Ok(started) => started,
            Err(error) => return Ok(self.local_failure(probe, error)),
        };
        self.rate.on_send();
        let local_error = if verdict == Some(Verdict::Local) {
            Some(self.prober.local_error(&socket))
        } else {
            self.local_failures = 0;
            None
        };
        let at_once = verdict.map(|verdict| (verdict, driver.now()));
        let timing = &mut entry.timing;
        let rationed = P::icmp_errors(port);
        let Transition { next, released } =
            probe.state.launch(socket, sent, at_once, rationed, timing);
        if let (Some(socket), Some(verdict)) = (released, verdict) {
            self.recycle(socket, destination, verdict, registered);
        }
        let probe = Probe {
            pair: probe.pair,
            state: next,
        };
        // A socket kept as a spare after its event stays registered but silent until its
        // next probe re-arms it with that probe's token.
        match self.place(probe, registered, driver)? {
            Placed::Queued(probe) => {
                let error = local_error.unwrap_or_else(|| io::Error::other("connect failed"));
                Ok(self.local_failure(probe, error))
            }
            Placed::Done(launched) => Ok(launched),
        }
    }

    /// Does what a probe's new state asks of the loop: a probe on a socket is watched, a
    /// probe at its end concluded. A queued probe is handed back: the caller knows why it
    /// is queued again (a local failure goes first, a retry last).
    fn place(
        &mut self,
        probe: Probe<P::Socket>,
        registered: bool,
        driver: &mut impl Driver<P::Socket>,
    ) -> Result<Placed<P::Socket>> {
        match probe.state {
            ProbeState::Queued { .. } => Ok(Placed::Queued(probe)),
            ProbeState::InFlight { .. } | ProbeState::FollowUp { .. } => {
                self.watch(probe, registered, driver).map(Placed::Done)
            }
            ProbeState::Final(outcome) => {
                let host_index = self.host_of(probe.pair);
                let port = self.port_of(probe.pair);
                self.conclude(host_index, port, outcome)?;
                Ok(Placed::Done(Launched::Yes))
            }
        }
    }

    /// Puts a probe on a socket into the slab: the socket armed for what its state awaits,
    /// with the slot as its token (`registered`: it is in the epoll set already), and its
    /// deadline in the heap. A socket the system will not watch is a local failure.
    fn watch(
        &mut self,
        probe: Probe<P::Socket>,
        registered: bool,
        driver: &mut impl Driver<P::Socket>,
    ) -> Result<Launched> {
        let interest = match probe.state {
            ProbeState::FollowUp { .. } => FOLLOW_UP_INTEREST,
            _ => P::interest(self.port_of(probe.pair).proto),
        };
        let (socket, deadline) = probe.state.watched().expect("a probe on a socket");
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slab.push(None);
            self.slab.len() - 1
        });
        let armed = if registered {
            driver.rearm(socket, slot, interest)
        } else {
            driver.register(socket, slot, interest)
        };
        if let Err(error) = armed {
            self.free.push(slot);
            let timing = &mut self.entry(self.host_of(probe.pair)).timing;
            let moved = probe.state.answer(Verdict::Local, driver.now(), timing);
            let probe = Probe {
                pair: probe.pair,
                state: moved.next,
            };
            return match self.place(probe, registered, driver)? {
                Placed::Queued(probe) => Ok(self.local_failure(probe, error)),
                Placed::Done(launched) => Ok(launched),
            };
        }
        self.serial += 1;
        self.deadlines.push(Reverse((deadline, slot, self.serial)));
        self.slab[slot] = Some(Slot {
            probe,
            serial: self.serial,
        });
        self.watched += 1;
        Ok(Launched::Yes)
    }

    /// The system refused us a socket or a local port: fewer in flight, and the same try
    /// again later. Never a port state.
    fn local_failure(&mut self, probe: Probe<P::Socket>, error: io::Error) -> Launched {
        self.ceiling = (self.watched * 3 / 4).max(1);
        self.answers_since_cut = 0;
        self.retries.push_front(probe);
        self.last_local_error = Some(error);
        Launched::LocalFailure
    }

    /// Takes what came to the socket in `slot`: a try's answer, or a follow-up's.
    fn complete(
        &mut self,
        slot: usize,
        now: Instant,
        driver: &mut impl Driver<P::Socket>,
    ) -> Result<()> {
        let Some(Slot { probe, .. }) = self.slab.get_mut(slot).and_then(Option::take) else {
            return Ok(());
        };
        self.free.push(slot);
        self.watched -= 1;
        // The system gave us room again: let the ceiling climb back towards the budget.
        self.answers_since_cut += 1;
        if self.answers_since_cut >= 16 && self.ceiling < self.plan.budget {
            self.ceiling += 1;
            self.answers_since_cut = 0;
        }
        let host_index = self.host_of(probe.pair);
        let port = self.port_of(probe.pair);
        let entry = self
            .hosts
            .get_mut(&host_index)
            .expect("a probe on a socket keeps its host");
        if entry.failed {
            // Its answer is of no use: the socket closes unread.
            return self.abandon(probe);
        }
        let destination = destination(&entry.host, port);
        let (socket, _) = probe.state.watched().expect("a probe on a socket");
        let verdict = self.prober.finish(socket, destination);
        let Transition { next, released } = probe.state.answer(verdict, now, &mut entry.timing);
        if let Some(socket) = released {
            self.recycle(socket, destination, verdict, true);
        }
        let probe = Probe {
            pair: probe.pair,
            state: next,
        };
        if let Placed::Queued(probe) = self.place(probe, true, driver)? {
            let error = io::Error::other("the connection failed locally");
            self.local_failure(probe, error);
        }
        Ok(())
    }

    /// Hands a socket whose try is over back to the prober, saying whether the descriptor
    /// budget has room for it to keep the socket for another try.
    fn recycle(
        &mut self,
        socket: P::Socket,
        destination: Destination,
        verdict: Verdict,
        registered: bool,
    ) {
        let room = self.watched + self.prober.idle_sockets() < self.ceiling;
        self.prober
            .recycle(socket, destination, verdict, registered, room);
    }

    /// Gives up on probes whose deadline has passed: another try, or the prober's silence;
    /// or the end of a follow-up stage.
    fn expire(&mut self, now: Instant, driver: &mut impl Driver<P::Socket>) -> Result<()> {
        while let Some(Reverse((deadline, slot, serial))) = self.deadlines.peek().copied() {
            if deadline > now {
                break;
            }
            self.deadlines.pop();
            let current = self.slab[slot]
                .as_ref()
                .is_some_and(|held| held.serial == serial);
            if !current {
                continue;
            }
            let Slot { probe, .. } = self.slab[slot].take().expect("checked");
            self.free.push(slot);
            self.watched -= 1;
            let host_index = self.host_of(probe.pair);
            let port = self.port_of(probe.pair);
            let plan = self.plan;
            let entry = self
                .hosts
                .get_mut(&host_index)
                .expect("a probe under way keeps its host");
            if entry.failed {
                self.abandon(probe)?;
                continue;
            }
            let silence = P::silence(port.proto);
            let noticed = entry.timing.icmp().noticed();
            // An unanswered socket is closed: it is still trying, and no use to another try.
            let Transition { next, .. } = probe.state.expire(silence, now, &mut entry.timing);
            if !noticed && let Some(interval) = entry.timing.icmp().interval() {
                let ports = plan.ports.len() as u64;
                let rationed = plan.ports.iter();
                let rationed = rationed.filter(|port| P::icmp_errors(**port) > 0).count() as u64;
                let left = (ports - entry.settled).min(rationed);
                let remaining = interval * u32::try_from(left).unwrap_or(u32::MAX);
                self.observer.icmp_limited(&entry.host, interval, remaining);
            }
            let probe = Probe {
                pair: probe.pair,
                state: next,
            };
            if let Placed::Queued(probe) = self.place(probe, true, driver)? {
                self.retries.push_back(probe);
            }
        }
        Ok(())
    }

    /// Ends a probe whose host is gone, closing its socket if it holds one.
    fn abandon(&mut self, probe: Probe<P::Socket>) -> Result<()> {
        let host_index = self.host_of(probe.pair);
        let port = self.port_of(probe.pair);
        let Transition { next, .. } = probe.state.abandon();
        match next {
            ProbeState::Final(outcome) => self.conclude(host_index, port, outcome),
            _ => unreachable!("abandoning ends a probe"),
        }
    }

    /// Does what the end of a probe asks: its result reported, or its host failed; then it
    /// is counted as done.
    fn conclude(&mut self, host_index: u64, port: TargetPort, outcome: Outcome) -> Result<()> {
        let reported = match outcome {
            Outcome::Found { state, reason, rtt } => {
                let entry = self.hosts.get(&host_index);
                let host = &entry.expect("a probe's host is known").host;
                self.observer.result(host, port, state, reason, rtt)
            }
            Outcome::Unroutable => {
                let why = format!("no route to {}", self.entry(host_index).host.address);
                self.fail_host(host_index, &why);
                Ok(())
            }
            Outcome::Abandoned => Ok(()),
        };
        let settled = self.settle(host_index);
        reported.and(settled)
    }

    fn host_of(&self, pair: u64) -> u64 {
        pair / self.plan.ports.len() as u64
    }

    fn port_of(&self, pair: u64) -> TargetPort {
        let ports = &self.plan.ports;
        ports[usize::try_from(pair % ports.len() as u64).expect("port index")]
    }

    /// The state of a host with a probe under way. A host's entry goes only once every
    /// pair of it is settled, and that probe's is not.
    fn entry(&mut self, host_index: u64) -> &mut HostEntry {
        self.hosts
            .get_mut(&host_index)
            .expect("a probe under way keeps its host")
    }

    /// How many pairs of host `index` this run probes.
    fn pairs_of(&self, index: u64) -> u64 {
        pairs_of(self.plan, index)
    }

    /// Counts a pair as done. A host whose every pair is done leaves the table: with the
    /// permutation walking hosts a group at a time, memory follows the hosts in progress,
    /// not every host scanned so far; the observer hears that the host is done.
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
}

/// How many pairs of host `index` a run of `plan` probes. A shard takes positions of the
/// order, not hosts: which of a host's pairs are its own, the inverse permutation says.
pub(crate) fn pairs_of(plan: &Plan, index: u64) -> u64 {
    let ports = plan.ports.len() as u64;
    let shard = plan.shard;
    if shard == Shard::WHOLE {
        return ports;
    }
    let first = index * ports;
    (first..first + ports)
        .filter(|&pair| Permutation::takes(shard, plan.order.position_of(pair)))
        .count() as u64
}

/// Where the try of a probe of `port` on `host` goes.
fn destination(host: &Host, port: TargetPort) -> Destination {
    Destination {
        address: SocketAddr::new(host.address, port.port),
        proto: port.proto,
    }
}

/// Moves `wake` earlier to `at`.
fn earliest(at: Instant, wake: &mut Option<Instant>) {
    *wake = Some(wake.map_or(at, |w| w.min(at)));
}

enum Launched {
    Yes,
    LocalFailure,
}

/// Where [`Scan::place`] put a probe.
enum Placed<S> {
    /// Nowhere: it is queued again, and the caller says where.
    Queued(Probe<S>),
    /// On a watched socket, or at its end; `LocalFailure` if its socket could not be
    /// watched.
    Done(Launched),
}

mod lifecycle;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;
