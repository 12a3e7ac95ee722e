//! The progress line a person at a terminal sees on stderr while a scan or a host discovery
//! runs: how far it is, how fast it goes and how long the rest will take. Drawn in place
//! (carriage return, erase line) at most once a second, and erased before anything else is
//! printed, so that it never mixes with records or messages; nothing at all where stderr
//! is not a terminal, so cron and pipes stay quiet.

use std::io::{self, IsTerminal, Write};
use std::time::{Duration, Instant};

use crate::TOOL;

/// How often the line is redrawn.
const EVERY: Duration = Duration::from_secs(1);

pub struct ProgressLine {
    /// Whether stderr is a terminal, where the line is drawn.
    enabled: bool,
    shown: bool,
    /// When the line was first asked for: the start of the pace it shows.
    first: Option<Instant>,
    last: Option<Instant>,
}

impl ProgressLine {
    /// A line drawn only if stderr is a terminal.
    pub fn on_terminal() -> Self {
        Self {
            enabled: io::stderr().is_terminal(),
            shown: false,
            first: None,
            last: None,
        }
    }

    /// Draws "`what`: `done`/`total` `unit` (P%)`detail`, pace" if a second has gone by
    /// since the last drawing; `detail` is only built then.
    pub fn draw(
        &mut self,
        now: Instant,
        what: &str,
        done: u64,
        total: u64,
        unit: &'static str,
        detail: impl FnOnce() -> String,
    ) {
        let first = *self.first.get_or_insert(now);
        if !self.enabled
            || done == 0
            || self
                .last
                .is_some_and(|last| now.saturating_duration_since(last) < EVERY)
        {
            return;
        }
        self.last = Some(now);
        #[expect(clippy::cast_precision_loss, reason = "a percentage to one decimal")]
        let percent = done as f64 * 100.0 / total.max(1) as f64;
        let pace = match Pace::of(done, total, now.saturating_duration_since(first), unit) {
            Some(pace) => format!(", {pace}"),
            None => String::new(),
        };
        let _ = write!(
            io::stderr(),
            "\r\x1b[K{TOOL}: {what}{done}/{total} {unit} ({percent:.1}%){}{pace}",
            detail()
        );
        self.shown = true;
    }

    /// Starts the pace again: the next drawing counts from `now` (a new phase, with its own
    /// total).
    pub fn restart(&mut self) {
        self.first = None;
        self.last = None;
    }

    /// Erases the line, if it is shown, before anything else is printed.
    pub fn clear(&mut self) {
        if self.shown {
            let _ = io::stderr().write_all(b"\r\x1b[K");
            self.shown = false;
        }
    }
}

/// How fast the work goes and how long the rest will take at that pace: things settled a
/// second over the whole run so far (steadier than the last second's, which a burst of
/// retries or a slow host's timeouts would swing), as nmap's estimate is.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Pace {
    per_second: f64,
    left: Duration,
    unit: &'static str,
}

impl Pace {
    /// `None` before there is a pace to tell: nothing settled, or no time gone by.
    fn of(done: u64, total: u64, elapsed: Duration, unit: &'static str) -> Option<Self> {
        if done == 0 || elapsed.is_zero() {
            return None;
        }
        #[expect(clippy::cast_precision_loss, reason = "a rate to show, to 3 digits")]
        let per_second = done as f64 / elapsed.as_secs_f64();
        #[expect(clippy::cast_precision_loss, reason = "an estimate, to the second")]
        let left = total.saturating_sub(done) as f64 / per_second;
        Some(Self {
            per_second,
            left: Duration::try_from_secs_f64(left).unwrap_or(Duration::MAX),
            unit,
        })
    }
}

impl std::fmt::Display for Pace {
    /// "5120 ports/s, 12s left"; "0.8 ports/s, 2m05s left"; "1h02m left".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = self.unit;
        if self.per_second < 10.0 {
            write!(f, "{:.1} {unit}/s, ", self.per_second)?;
        } else {
            write!(f, "{:.0} {unit}/s, ", self.per_second)?;
        }
        let seconds = self.left.as_secs_f64().round();
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "a non-negative count of seconds, saturating"
        )]
        let seconds = seconds as u64;
        let (hours, minutes, seconds) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
        match (hours, minutes) {
            (0, 0) => write!(f, "{seconds}s left"),
            (0, _) => write!(f, "{minutes}m{seconds:02}s left"),
            _ => write!(f, "{hours}h{minutes:02}m left"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pace_is_things_a_second_so_far_and_the_rest_at_that_pace() {
        let second = Duration::from_secs(1);
        assert_eq!(
            Pace::of(0, 1000, second, "ports"),
            None,
            "nothing settled yet"
        );
        assert_eq!(
            Pace::of(10, 1000, Duration::ZERO, "ports"),
            None,
            "no time gone by"
        );
        let pace = Pace::of(250, 1000, 2 * second, "ports").unwrap();
        assert!((pace.per_second - 125.0).abs() < 1e-9);
        assert_eq!(pace.left, 6 * second);
        assert_eq!(pace.to_string(), "125 ports/s, 6s left");
        assert_eq!(
            Pace::of(1000, 1000, 3 * second, "ports").unwrap().left,
            Duration::ZERO,
            "done"
        );
        for (done, total, elapsed, text) in [
            (4, 100, 5, "0.8 ports/s, 2m00s left"),
            (3, 100, 2, "1.5 ports/s, 1m05s left"),
            (10, 65_535, 1, "10 ports/s, 1h49m left"),
            (65_000, 65_535, 13, "5000 ports/s, 0s left"),
            (64_000, 65_535, 4, "16000 ports/s, 0s left"),
            (60_000, 65_535, 6, "10000 ports/s, 1s left"),
        ] {
            let pace = Pace::of(done, total, elapsed * second, "ports").unwrap();
            assert_eq!(pace.to_string(), text, "{done}/{total} in {elapsed}s");
        }
        assert_eq!(
            Pace::of(30_000, 65_536, 5 * second, "hosts")
                .unwrap()
                .to_string(),
            "6000 hosts/s, 6s left"
        );
    }
}
