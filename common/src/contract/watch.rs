//! Watch mode (`sockls --watch`, `proctree --watch`): the listing taken again every interval
//! and compared with the one before, printing a change record (`added`, `removed`) for each
//! thing that appeared or went away, until interrupted or `--count` intervals have passed.
//!
//! Polling, not event subscriptions: sock_diag's multicast groups tell of destroyed TCP and
//! UDP sockets but of no new ones, the proc connector needs CAP_NET_ADMIN and says nothing
//! of a command line, and both drop events when the reader falls behind (ENOBUFS), after
//! which only a full listing tells what is there; one listing an interval is cheap enough
//! (docs/FORMAT.md, "Watch mode", with the proc connector measured against it).

use std::collections::HashSet;
use std::hash::Hash;
use std::io::Write;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::contract::baseline::{Change, ChangeRecord};
use crate::contract::error::{Error, Result};
use crate::contract::output::{Record, RecordWriter};

/// How often, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watch {
    pub interval: Duration,
    /// Stop after this many intervals; `None`: until interrupted.
    pub count: Option<u64>,
}

/// Takes a listing with `list` now and after every interval, and writes what changed from
/// one to the next, identified by `key` (what tells one thing from another between two
/// listings: an inode, a pid and its start time). Each interval's events are flushed at
/// once. SIGINT and SIGTERM end it between two listings, with the output whole.
pub fn run<R: Record + Clone, W: Write, K: Hash + Eq>(
    watch: Watch,
    writer: &mut RecordWriter<W>,
    mut list: impl FnMut() -> Result<Vec<R>>,
    key: impl Fn(&R) -> K,
) -> Result<()> {
    let signals = interrupts()?;
    let mut before = list()?;
    let mut known: HashSet<K> = before.iter().map(&key).collect();
    let mut next = Instant::now() + watch.interval;
    for _ in 0..watch.count.unwrap_or(u64::MAX) {
        if interrupted_before(&signals, next)? {
            return Ok(());
        }
        next += watch.interval;
        let now = list()?;
        let current: HashSet<K> = now.iter().map(&key).collect();
        for record in &now {
            if !known.contains(&key(record)) {
                writer.write(&event(Change::Added, record))?;
            }
        }
        for record in &before {
            if !current.contains(&key(record)) {
                writer.write(&event(Change::Removed, record))?;
            }
        }
        writer.flush()?;
        before = now;
        known = current;
    }
    Ok(())
}

fn event<R: Clone>(change: Change, record: &R) -> ChangeRecord<R> {
    ChangeRecord {
        change,
        record: record.clone(),
        old: None,
    }
}

/// SIGINT and SIGTERM, held back from now on and read from a descriptor, so that they end
/// a watch (or a scan, in portscan's loop) between two records rather than in the middle
/// of one.
pub fn interrupts() -> Result<SignalFd> {
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    signals
        .thread_block()
        .map_err(|e| Error::io("blocking signals", e.into()))?;
    SignalFd::with_flags(&signals, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(|e| Error::io("watching for signals", e.into()))
}

/// Whether a signal is waiting on `signals` (it stays there, to be seen again).
pub fn pending(signals: &SignalFd) -> bool {
    let mut fds = [PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
    poll(&mut fds, PollTimeout::ZERO).is_ok_and(|ready| ready > 0)
}

/// Sleeps until `deadline`; `true` if a signal came first (a watch's interval, proctree's
/// `--interval` measure).
pub fn interrupted_before(signals: &SignalFd, deadline: Instant) -> Result<bool> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        let millis = u16::try_from(left.as_millis().max(1)).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(millis)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => {}
            Ok(_) => return Ok(true),
            Err(e) => return Err(Error::io("waiting for the next interval", e.into())),
        }
    }
}
