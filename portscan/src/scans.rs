//! The scans of a run, one after the other over the same hosts: one, or with `-sS -sU`
//! the SYN scan of the TCP ports and then the UDP ports' scan, as nmap runs its scan types
//! in turn. Each host's report waits for the last of them.

use std::time::{Duration, Instant};

use common::contract::error::Result;
use common::contract::record::{PortState, Reason};
use common::services::ports::Proto;
use socket2::Socket;

use crate::driver::{Driver, Epoller};
use crate::engine::{self, FollowUp, Observer, Plan, TargetPort};
use crate::probe::ScanProber;
use crate::syn;
use crate::targets::Host;

pub struct Scans<'a> {
    /// At least one; each over the same hosts, with ports of its own.
    plans: Vec<Plan>,
    /// -sS's raw sockets: the TCP ports' scan sends SYNs from them instead of connecting.
    syn: Option<&'a syn::SynSockets>,
}

impl<'a> Scans<'a> {
    /// `plans`: at least one. With `syn` sockets, the plans of TCP ports are SYN scans.
    pub fn new(plans: Vec<Plan>, syn: Option<&'a syn::SynSockets>) -> Self {
        assert!(!plans.is_empty(), "a scan has a plan");
        Self { plans, syn }
    }

    /// The most sockets open at once, the same in each scan.
    pub fn budget(&self) -> usize {
        self.plans[0].budget
    }

    /// Runs the scans in turn, until one is interrupted; `host_done` reaches `observer`
    /// in the last only, when every scan has settled the host.
    pub fn run(
        &self,
        driver: &mut Epoller,
        observer: &mut (impl Observer + FollowUp<Socket>),
    ) -> Result<engine::Summary> {
        let (last, earlier) = self.plans.split_last().expect("a plan, as new checked");
        let mut sent = 0;
        for plan in earlier {
            let outcome = self.run_one(plan, driver, &mut HostsHeld(&mut *observer))?;
            sent += outcome.sent;
            if outcome.interrupted {
                return Ok(engine::Summary {
                    sent,
                    interrupted: true,
                });
            }
        }
        let outcome = self.run_one(last, driver, observer)?;
        Ok(engine::Summary {
            sent: sent + outcome.sent,
            interrupted: outcome.interrupted,
        })
    }

    fn run_one(
        &self,
        plan: &Plan,
        driver: &mut Epoller,
        observer: &mut (impl Observer + FollowUp<Socket>),
    ) -> Result<engine::Summary> {
        match self.syn {
            Some(sockets) if plan.ports.iter().all(|port| port.proto == Proto::Tcp) => {
                syn::run(plan, sockets, driver, observer)
            }
            _ => engine::run(plan, ScanProber::default(), driver, observer),
        }
    }
}

/// An observer of a scan that another follows: everything passes through but the end of
/// each host, which the last scan tells.
struct HostsHeld<'o, O>(&'o mut O);

impl<O: Observer> Observer for HostsHeld<'_, O> {
    fn result(
        &mut self,
        host: &Host,
        port: TargetPort,
        state: PortState,
        reason: Reason,
        rtt: Option<Duration>,
    ) -> Result<()> {
        self.0.result(host, port, state, reason, rtt)
    }

    fn host_failed(&mut self, host: &Host, why: &str) {
        self.0.host_failed(host, why);
    }

    fn icmp_limited(&mut self, host: &Host, interval: Duration, remaining: Duration) {
        self.0.icmp_limited(host, interval, remaining);
    }

    fn host_done(&mut self, _host: &Host) -> Result<()> {
        Ok(())
    }

    fn progress(&mut self, now: Instant, done: u64, total: u64) -> Result<()> {
        self.0.progress(now, done, total)
    }
}

impl<S, O: FollowUp<S>> FollowUp<S> for HostsHeld<'_, O> {
    fn sockets(&self) -> usize {
        self.0.sockets()
    }

    fn busy(&self) -> bool {
        self.0.busy()
    }

    fn turn<D: Driver<S>>(&mut self, driver: &mut D) -> Result<Option<Instant>> {
        self.0.turn(driver)
    }

    fn ready<D: Driver<S>>(&mut self, token: usize, driver: &mut D) -> Result<()> {
        self.0.ready(token, driver)
    }
}
