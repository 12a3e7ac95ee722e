//! The event loop: one thread, one epoll instance, thousands of connect() probes in flight.
//!
//! In the style of mio's `tcp_server` example: a slab of probes indexed by the epoll token,
//! and a loop whose body sends what the timing allows, waits for the next event or deadline,
//! and matches on what came. The clock and the wait come from a [`Driver`], so that the
//! tests run the loop on a scripted network and clock. A probe lives through these states,
//! moved on by the events in parentheses, in the functions named on the right:
//!
//! ```text
//!   queued: not yet drawn from the permutation, a retry, or parked for its host's window
//!     -> dropped             (its host excluded, failed, or past --host-timeout)     send
//!     -> queued, same try    (local failure: no descriptor, no local port)           launch
//!     -> final at once       (connect() answered: loopback, a local firewall)        launch
//!     -> dropped with host   (no route)                                              launch
//!     -> in flight: a socket in the slab, armed with its slot, a deadline in the heap
//!          -> final          (an answer: open, closed, or filtered)                  complete
//!          -> queued, same try       (local failure)                                 complete
//!          -> dropped with host      (no route)                                      complete
//!          -> queued, one try more   (deadline, retries left)                        expire
//!          -> final: P::SILENCE      (deadline after the last try)                   expire
//!          -> dropped        (an answer or a deadline after its host failed)  complete, expire
//! ```
//!
//! What a try is, how it goes out and what its answer means belong to a [`Prober`]
//! (TCP connect() today, a UDP probe tomorrow); order, timing, retries, deadlines and
//! output are the loop's, the same for every kind of probe.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::error::{Error, Result};
use common::ports::{PortList, Proto};
use common::record::{PortState, Reason};

use crate::driver::{Driver, Wakeup};
use crate::order::{Permutation, Shard};
use crate::probe::{Destination, Prober, Started, Verdict};
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
    /// Called on every turn of the loop; `done` of `total` probes are final.
    fn progress(&mut self, now: Instant, done: u64, total: u64) -> Result<()>;
}

/// How a scan ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Probes sent, retries included.
    pub sent: u64,
    /// Whether a signal stopped it.
    pub interrupted: bool,
}

/// A (host, port) pair waiting to be probed, on its `tries`-th try (0 = first).
#[derive(Debug, Clone, Copy)]
struct Pending {
    pair: u64,
    tries: u8,
}

struct Probe<S> {
    socket: S,
    pending: Pending,
    sent: Instant,
    serial: u64,
}

struct HostEntry {
    host: Host,
    timing: HostTiming,
    started: Instant,
    failed: bool,
    /// Its pairs that are done; at `ports.len()` the entry goes.
    settled: u64,
}

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

struct Scan<'a, O: Observer, P: Prober> {
    plan: &'a Plan,
    observer: &'a mut O,
    prober: P,
    slab: Vec<Option<Probe<P::Socket>>>,
    free: Vec<usize>,
    deadlines: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    hosts: HashMap<u64, HostEntry>,
    retries: VecDeque<Pending>,
    parked: VecDeque<Pending>,
    /// The next position of the permutation this shard takes.
    position: u64,
    in_flight: usize,
    /// The socket ceiling: the budget, lowered when the system runs short.
    ceiling: usize,
    answers_since_cut: usize,
    rate: Rate,
    serial: u64,
    done: u64,
    total: u64,
    local_failures: u32,
    last_local_error: Option<std::io::Error>,
}

/// Runs the scan to its end with `prober`'s probes, or until `driver` reports a signal.
pub fn run<P: Prober>(
    plan: &Plan,
    prober: P,
    driver: &mut impl Driver<P::Socket>,
    observer: &mut impl Observer,
) -> Result<Summary> {
    debug_assert!(
        plan.ports
            .iter()
            .all(|port| P::PROTOCOLS.contains(&port.proto)),
        "a plan holds only ports its prober can probe"
    );
    let now = driver.now();
    let len = plan.order.len();
    let total = if len > plan.shard.index {
        (len - plan.shard.index).div_ceil(plan.shard.count)
    } else {
        0
    };
    let mut scan = Scan {
        plan,
        observer,
        prober,
        slab: Vec::new(),
        free: Vec::new(),
        deadlines: BinaryHeap::new(),
        hosts: HashMap::new(),
        retries: VecDeque::new(),
        parked: VecDeque::new(),
        position: plan.shard.index,
        in_flight: 0,
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

impl<O: Observer, P: Prober> Scan<'_, O, P> {
    fn run(&mut self, driver: &mut impl Driver<P::Socket>) -> Result<bool> {
        loop {
            let now = driver.now();
            let wake = self.send(now, driver)?;
            if self.in_flight == 0 && self.exhausted() {
                return Ok(false);
            }
            self.observer.progress(now, self.done, self.total)?;
            driver
                .wait(self.wait_time(now, wake))
                .map_err(|e| Error::io("waiting for connections", e))?;
            let now = driver.now();
            for wakeup in driver.ready() {
                match wakeup {
                    Wakeup::Signal => return Ok(true),
                    Wakeup::Answer(slot) => self.complete(slot, now)?,
                }
            }
            self.expire(now)?;
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
            if self.in_flight >= self.ceiling {
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
            let Some(pending) = parked
                .pop_front()
                .or_else(|| self.retries.pop_front())
                .or_else(|| self.draw())
            else {
                break;
            };
            let host_index = pending.pair / self.plan.ports.len() as u64;
            let floor = self.rate.behind_floor(now);
            let host_timeout = self.plan.profile.host_timeout;
            let Some(entry) = self.host(host_index, now) else {
                // Excluded, or given up: the pair is done without a result.
                self.settle(host_index);
                continue;
            };
            let timed_out = host_timeout
                .is_some_and(|limit| now.saturating_duration_since(entry.started) > limit);
            let timing = &entry.timing;
            let blocked = !(timing.can_send(now) || floor && timing.next_send_at(now) <= now);
            let delayed = timing.window_open().then(|| timing.next_send_at(now));
            if timed_out {
                self.fail_host(host_index, "host timeout");
                self.settle(host_index);
                continue;
            }
            if blocked {
                if let Some(at) = delayed {
                    earliest(at, &mut wake);
                }
                self.parked.push_back(pending);
                // One host: nothing else could go. Many: look a little further.
                if self.plan.targets.len() == 1 || self.parked.len() >= PARK_LIMIT {
                    break;
                }
                continue;
            }
            match self.launch(pending, host_index, driver)? {
                Launched::Yes => launched += 1,
                Launched::LocalFailure => {
                    if self.in_flight == 0 {
                        self.local_failures += 1;
                        if self.local_failures > LOCAL_ATTEMPTS {
                            let why = self
                                .last_local_error
                                .take()
                                .unwrap_or_else(|| std::io::Error::other("unknown"));
                            return Err(Error::io("opening sockets", why));
                        }
                        earliest(now + LOCAL_BACKOFF, &mut wake);
                    }
                    break;
                }
            }
        }
        // What was parked and not tried this turn keeps its place ahead of the rest.
        while let Some(pending) = parked.pop_back() {
            self.parked.push_front(pending);
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
        Some(Pending { pair, tries: 0 })
    }

    /// The state of a host, created on first use; `None` if excluded or failed.
    fn host(&mut self, index: u64, now: Instant) -> Option<&mut HostEntry> {
        if !self.hosts.contains_key(&index) {
            let host = self.plan.targets.get(index)?;
            self.hosts.insert(
                index,
                HostEntry {
                    host,
                    timing: HostTiming::new(self.plan.profile),
                    started: now,
                    failed: false,
                    settled: 0,
                },
            );
        }
        self.hosts.get_mut(&index).filter(|entry| !entry.failed)
    }

    fn fail_host(&mut self, index: u64, why: &str) {
        if let Some(entry) = self.hosts.get_mut(&index)
            && !entry.failed
        {
            entry.failed = true;
            self.observer.host_failed(&entry.host, why);
        }
    }

    fn launch(
        &mut self,
        pending: Pending,
        host_index: u64,
        driver: &mut impl Driver<P::Socket>,
    ) -> Result<Launched> {
        let port = self.port_of(pending.pair);
        let entry = self
            .hosts
            .get_mut(&host_index)
            .expect("the host was just looked up");
        let destination = Destination {
            address: SocketAddr::new(entry.host.address, port.port),
            proto: port.proto,
        };
        // Read here, not once a turn: a probe's round trip is its own, however many
        // probes went before it in the same turn.
        let sent = driver.now();
        let Started {
            socket,
            registered,
            verdict,
        } = match self.prober.start(destination) {
            Ok(started) => started,
            Err(error) => return Ok(self.local_failure(pending, error)),
        };
        self.rate.on_send();
        if verdict != Some(Verdict::Local) {
            self.local_failures = 0;
        }
        match verdict {
            None => {}
            Some(verdict @ Verdict::Final(state, reason)) => {
                let answered = driver.now();
                entry.timing.on_send(sent);
                entry.timing.on_answer(answered, sent, pending.tries);
                self.recycle(socket, destination, verdict, registered);
                let rtt = answered.saturating_duration_since(sent);
                self.finalize(host_index, port, state, reason, Some(rtt))?;
                return Ok(Launched::Yes);
            }
            Some(Verdict::Local) => {
                let error = self.prober.local_error(&socket);
                return Ok(self.local_failure(pending, error));
            }
            Some(Verdict::NoRoute) => {
                let why = format!("no route to {}", destination.address.ip());
                self.fail_host(host_index, &why);
                self.settle(host_index);
                return Ok(Launched::Yes);
            }
        }
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slab.push(None);
            self.slab.len() - 1
        });
        // A socket kept as a spare after its event stays registered but silent until its
        // next probe re-arms it with that probe's token.
        let interest = P::interest(port.proto);
        let armed = if registered {
            driver.rearm(&socket, slot, interest)
        } else {
            driver.register(&socket, slot, interest)
        };
        if let Err(error) = armed {
            self.free.push(slot);
            return Ok(self.local_failure(pending, error));
        }
        entry.timing.on_send(sent);
        let deadline = sent + entry.timing.timeout_for(pending.tries);
        self.serial += 1;
        self.deadlines.push(Reverse((deadline, slot, self.serial)));
        self.slab[slot] = Some(Probe {
            socket,
            pending,
            sent,
            serial: self.serial,
        });
        self.in_flight += 1;
        Ok(Launched::Yes)
    }

    /// The system refused us a socket or a local port: fewer in flight, and the same try
    /// again later. Never a port state.
    fn local_failure(&mut self, pending: Pending, error: std::io::Error) -> Launched {
        self.ceiling = (self.in_flight * 3 / 4).max(1);
        self.answers_since_cut = 0;
        self.retries.push_front(pending);
        self.last_local_error = Some(error);
        Launched::LocalFailure
    }

    fn complete(&mut self, slot: usize, now: Instant) -> Result<()> {
        let Some(probe) = self.slab.get_mut(slot).and_then(Option::take) else {
            return Ok(());
        };
        self.free.push(slot);
        self.in_flight -= 1;
        let port = self.port_of(probe.pending.pair);
        let host_index = probe.pending.pair / self.plan.ports.len() as u64;
        // A host's entry goes only once every pair of it is settled, and this one is not.
        let entry = self
            .hosts
            .get(&host_index)
            .expect("a probe in flight keeps its host");
        let destination = Destination {
            address: SocketAddr::new(entry.host.address, port.port),
            proto: port.proto,
        };
        let verdict = self.prober.finish(&probe.socket, destination);
        self.recycle(probe.socket, destination, verdict, true);
        // The system gave us room again: let the ceiling climb back towards the budget.
        self.answers_since_cut += 1;
        if self.answers_since_cut >= 16 && self.ceiling < self.plan.budget {
            self.ceiling += 1;
            self.answers_since_cut = 0;
        }
        let Some(entry) = self.hosts.get_mut(&host_index) else {
            return Ok(());
        };
        match verdict {
            Verdict::Final(state, reason) => {
                entry.timing.on_answer(now, probe.sent, probe.pending.tries);
                if entry.failed {
                    self.settle(host_index);
                    return Ok(());
                }
                let rtt = now.saturating_duration_since(probe.sent);
                self.finalize(host_index, port, state, reason, Some(rtt))
            }
            Verdict::Local => {
                entry.timing.on_abandon();
                self.local_failure(
                    probe.pending,
                    std::io::Error::other("the connection failed locally"),
                );
                Ok(())
            }
            Verdict::NoRoute => {
                entry.timing.on_abandon();
                let why = format!("no route to {}", entry.host.address);
                self.fail_host(host_index, &why);
                self.settle(host_index);
                Ok(())
            }
        }
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
        let room = self.in_flight + self.prober.idle_sockets() < self.ceiling;
        self.prober
            .recycle(socket, destination, verdict, registered, room);
    }

    /// Gives up on probes whose deadline has passed: another try, or filtered.
    fn expire(&mut self, now: Instant) -> Result<()> {
        while let Some(Reverse((deadline, slot, serial))) = self.deadlines.peek().copied() {
            if deadline > now {
                break;
            }
            self.deadlines.pop();
            let current = self.slab[slot]
                .as_ref()
                .is_some_and(|probe| probe.serial == serial);
            if !current {
                continue;
            }
            let probe = self.slab[slot].take().expect("checked");
            self.free.push(slot);
            self.in_flight -= 1;
            drop(probe.socket);
            let pending = probe.pending;
            let host_index = pending.pair / self.plan.ports.len() as u64;
            let Some(entry) = self.hosts.get_mut(&host_index) else {
                continue;
            };
            entry.timing.on_timeout();
            if entry.failed {
                self.settle(host_index);
            } else if entry.timing.should_retry(pending.tries) {
                self.retries.push_back(Pending {
                    pair: pending.pair,
                    tries: pending.tries + 1,
                });
            } else {
                let port = self.port_of(pending.pair);
                let (state, reason) = P::silence(port.proto);
                self.finalize(host_index, port, state, reason, None)?;
            }
        }
        Ok(())
    }

    fn port_of(&self, pair: u64) -> TargetPort {
        let ports = &self.plan.ports;
        ports[usize::try_from(pair % ports.len() as u64).expect("port index")]
    }

    fn finalize(
        &mut self,
        host_index: u64,
        port: TargetPort,
        state: PortState,
        reason: Reason,
        rtt: Option<Duration>,
    ) -> Result<()> {
        let entry = self
            .hosts
            .get(&host_index)
            .expect("a result's host is known");
        let outcome = self.observer.result(&entry.host, port, state, reason, rtt);
        self.settle(host_index);
        outcome
    }

    /// Counts a pair as done. A host whose every pair is done leaves the table: with the
    /// permutation walking hosts a group at a time, memory follows the hosts in progress,
    /// not every host scanned so far.
    fn settle(&mut self, host_index: u64) {
        self.done += 1;
        let ports = self.plan.ports.len() as u64;
        if let Some(entry) = self.hosts.get_mut(&host_index) {
            entry.settled += 1;
            if entry.settled == ports {
                self.hosts.remove(&host_index);
            }
        }
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

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;
