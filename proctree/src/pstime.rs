//! The time forms ps users read: a start time as STIME/START show it (`14:28` within the
//! last day, `Dec03` within the year, `2025` before that), elapsed time as ELAPSED does
//! (`[[dd-]hh:]mm:ss`) and CPU time as TIME does (`[dd-]hh:mm:ss`). Records keep the full
//! RFC 3339 stamp and plain numbers; these are for text only (procps `ps/output.c`).

use std::time::{Duration, SystemTime};

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// Turns start times into ps's short local form, against one "now" for the whole run.
pub struct ShortTimes {
    now: SystemTime,
    zone: TimeZone,
}

impl ShortTimes {
    pub fn new(now: SystemTime) -> Self {
        Self {
            now,
            zone: TimeZone::system(),
        }
    }

    /// ps's `pr_stime`: hours and minutes for a start within the last 24 hours, month and
    /// day within the last year, the year before that.
    pub fn start(&self, start: SystemTime) -> String {
        let age = self.now.duration_since(start).unwrap_or_default();
        let format = if age > Duration::from_secs(365 * 86_400) {
            "%Y"
        } else if age > Duration::from_secs(86_400) {
            "%b%d"
        } else {
            "%H:%M"
        };
        // Every SystemTime a clock gives is in jiff's range (years -9999 to 9999).
        let instant = Timestamp::try_from(start).unwrap_or(Timestamp::UNIX_EPOCH);
        instant
            .to_zoned(self.zone.clone())
            .strftime(format)
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_times_shorten_with_age_as_in_ps() {
        // 2026-12-05T14:28:00Z, read in UTC.
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_480_880);
        let times = ShortTimes {
            now,
            zone: TimeZone::UTC,
        };
        let cases = [
            (0, "14:28"),
            (3600 * 15, "23:28"),
            (86_400 + 60, "Dec04"),
            (86_400 * 40, "Oct26"),
            (86_400 * 366, "2025"),
        ];
        for (ago, expected) in cases {
            assert_eq!(
                times.start(now - Duration::from_secs(ago)),
                expected,
                "{ago}"
            );
        }
    }
}
