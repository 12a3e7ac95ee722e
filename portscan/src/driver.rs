//! What the event loop takes from the world outside it: the time, and the wait for the
//! answers to its probes and for signals. [`Driver`] is that seam; [`Epoller`] is the real
//! one (the monotonic clock and one epoll instance), and the engine's tests put a scripted
//! clock and network in its place, so that retries, windows and timeouts are tested in
//! simulated seconds that take microseconds.

use std::io;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use common::contract::error::{Error, Result};
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::signalfd::SignalFd;

/// Something a wait found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wakeup {
    /// The socket armed with this token has its answer.
    Answer(usize),
    /// A signal came: the scan stops.
    Signal,
}

/// The clock and the readiness of sockets of type `S`, as the event loop sees them.
///
/// A socket is armed for one event: once reported it stays watched but silent until its
/// next try re-arms it, so a socket kept for later tries never wakes the loop. There is no
/// way to unwatch one: closing it does that (epoll(7): a closed descriptor leaves every
/// epoll set), and asking the kernel again would cost a system call per probe.
pub trait Driver<S> {
    /// The time now, for deadlines, round trips and the timing's decisions.
    fn now(&self) -> Instant;

    /// Watches a socket not yet watched for one `interest` event, reported with `token`.
    fn register(&mut self, socket: &S, token: usize, interest: EpollFlags) -> io::Result<()>;

    /// Re-arms a socket registered before for one more event, reported with `token`.
    fn rearm(&mut self, socket: &S, token: usize, interest: EpollFlags) -> io::Result<()>;

    /// Sleeps until an armed socket or a signal has something to say, or `timeout` has
    /// passed; [`ready`](Self::ready) then lists what came.
    fn wait(&mut self, timeout: Duration) -> io::Result<()>;

    /// What the last [`wait`](Self::wait) found.
    fn ready(&self) -> impl Iterator<Item = Wakeup> + '_;
}

/// The real world: `Instant::now()` and one epoll instance watching the probes' sockets and
/// the signal descriptor.
pub struct Epoller {
    epoll: Epoll,
    events: Vec<EpollEvent>,
    /// How many of `events` the last wait filled.
    found: usize,
}

/// The token of the signal descriptor; a socket's token is its slab index, never this.
const SIGNAL_TOKEN: u64 = u64::MAX;

/// The most events one wait reports; more stay queued for the next.
const EVENTS_PER_WAIT: usize = 1024;

impl Epoller {
    /// An epoll instance watching `signals`, if given.
    pub fn new(signals: Option<&SignalFd>) -> Result<Self> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
            .map_err(|e| Error::io("creating an epoll instance", e.into()))?;
        if let Some(signals) = signals {
            epoll
                .add(
                    signals.as_fd(),
                    EpollEvent::new(EpollFlags::EPOLLIN, SIGNAL_TOKEN),
                )
                .map_err(|e| Error::io("watching for signals", e.into()))?;
        }
        Ok(Self {
            epoll,
            events: vec![EpollEvent::empty(); EVENTS_PER_WAIT],
            found: 0,
        })
    }
}

impl<S: AsFd> Driver<S> for Epoller {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn register(&mut self, socket: &S, token: usize, interest: EpollFlags) -> io::Result<()> {
        let event = EpollEvent::new(interest | EpollFlags::EPOLLONESHOT, token as u64);
        Ok(self.epoll.add(socket, event)?)
    }

    fn rearm(&mut self, socket: &S, token: usize, interest: EpollFlags) -> io::Result<()> {
        let mut event = EpollEvent::new(interest | EpollFlags::EPOLLONESHOT, token as u64);
        Ok(self.epoll.modify(socket, &mut event)?)
    }

    fn wait(&mut self, timeout: Duration) -> io::Result<()> {
        // Round up: epoll counts milliseconds, and waking a millisecond early only to find
        // nothing due would spin.
        let millis = timeout.as_micros().div_ceil(1000);
        let timeout = EpollTimeout::from(u16::try_from(millis).unwrap_or(u16::MAX));
        self.found = match self.epoll.wait(&mut self.events, timeout) {
            Ok(found) => found,
            Err(Errno::EINTR) => 0,
            Err(e) => return Err(e.into()),
        };
        Ok(())
    }

    fn ready(&self) -> impl Iterator<Item = Wakeup> + '_ {
        self.events[..self.found]
            .iter()
            .map(|event| match event.data() {
                SIGNAL_TOKEN => Wakeup::Signal,
                token => Wakeup::Answer(usize::try_from(token).expect("tokens are slab indices")),
            })
    }
}
