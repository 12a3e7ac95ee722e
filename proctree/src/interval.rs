//! `--interval`: %CPU over a short interval, as top measures it, rather than over each
//! process's life as ps does. /proc is read twice, the interval apart; a task's share is
//! the CPU time it used between the reads over the time that passed between them.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::read::Snapshot;

/// The CPU time of every task at the first read.
pub struct Baseline {
    /// Clock ticks of user plus system time, by (tid, start_time): a reused id is a new task.
    ticks: HashMap<(u32, u64), u64>,
    taken: Instant,
}

impl Baseline {
    pub fn of(snapshot: &Snapshot) -> Self {
        let ticks = snapshot
            .processes
            .iter()
            .flat_map(|process| std::iter::once(&process.stat).chain(&process.tasks))
            .map(|stat| ((stat.pid, stat.start_time), stat.utime + stat.stime))
            .collect();
        Self {
            ticks,
            taken: Instant::now(),
        }
    }

    /// The measure, once the second read is done.
    pub fn until_now(self, ticks_per_second: u64) -> Usage {
        Usage {
            ticks: self.ticks,
            seconds: self.taken.elapsed(),
            ticks_per_second: ticks_per_second.max(1),
        }
    }
}

/// The CPU share of each task over the interval.
pub struct Usage {
    ticks: HashMap<(u32, u64), u64>,
    seconds: Duration,
    ticks_per_second: u64,
}

impl Usage {
    /// %CPU of the task `(tid, start_time)`, which has used `ticks` by now, in whole tenths
    /// as ps shows it; a task that started meanwhile counts all of its time.
    pub fn percent(&self, tid: u32, start_time: u64, ticks: u64) -> f64 {
        let before = self.ticks.get(&(tid, start_time)).copied().unwrap_or(0);
        let used_ms = ticks.saturating_sub(before) * 1000 / self.ticks_per_second;
        let elapsed_ms = self.seconds.as_millis().max(1);
        let permille = u128::from(used_ms) * 1000 / elapsed_ms;
        #[expect(
            clippy::cast_precision_loss,
            reason = "a permille of CPU is far below 2^52"
        )]
        let permille = permille as f64;
        permille / 10.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_is_the_time_used_over_the_time_passed() {
        let usage = Usage {
            ticks: HashMap::from([((10, 5), 100)]),
            seconds: Duration::from_secs(2),
            ticks_per_second: 100,
        };
        // 50 ticks (0.5 s) in 2 s: 25%.
        assert!((usage.percent(10, 5, 150) - 25.0).abs() < 1e-9);
        // A new task (or a reused pid) counts from zero.
        assert!((usage.percent(10, 6, 30) - 15.0).abs() < 1e-9);
        assert!((usage.percent(11, 5, 0)).abs() < 1e-9);
    }
}
