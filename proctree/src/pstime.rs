//! The time forms ps users read: a start time as STIME shows it (`14:28` today, `Dec03`
//! this year, `2025` before), as STARTED does (`14:28:07` within a day, `Dec 03` before;
//! or in full, `Sat Dec  5 14:28:07 2026`), elapsed time as ELAPSED does
//! (`[[dd-]hh:]mm:ss`) and CPU time as TIME does (`[dd-]hh:mm:ss`). Records keep the full
//! RFC 3339 stamp and plain numbers; these are for text only (procps `ps/output.c`).

use std::time::{Duration, SystemTime};

use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

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

    fn zoned(&self, time: SystemTime) -> Zoned {
        // Every SystemTime a clock gives is in jiff's range (years -9999 to 9999).
        Timestamp::try_from(time)
            .unwrap_or(Timestamp::UNIX_EPOCH)
            .to_zoned(self.zone.clone())
    }

    /// ps's `pr_stime` (STIME, START): hours and minutes for a start today (local time),
    /// month and day for one this year, the year before that.
    pub fn start(&self, start: SystemTime) -> String {
        let (then, now) = (self.zoned(start), self.zoned(self.now));
        let format = if then.year() != now.year() {
            "%Y"
        } else if then.date() != now.date() {
            "%b%d"
        } else {
            "%H:%M"
        };
        then.strftime(format).to_string()
    }

    /// ps's `pr_start` (STARTED, `start`): `hh:mm:ss` for a start within the last 24 hours,
    /// `Mmm dd` before.
    pub fn started(&self, start: SystemTime) -> String {
        let within_a_day = self
            .now
            .duration_since(start)
            .is_ok_and(|ago| ago < Duration::from_secs(86_400));
        let format = if within_a_day { "%H:%M:%S" } else { "%b %d" };
        self.zoned(start).strftime(format).to_string()
    }

    /// ps's `pr_lstart` (STARTED, `lstart`): `Sat Dec  5 11:40:18 2026`.
    pub fn long(&self, start: SystemTime) -> String {
        self.zoned(start)
            .strftime("%a %b %e %H:%M:%S %Y")
            .to_string()
    }
}

/// ps's ELAPSED: `mm:ss`, `hh:mm:ss` from an hour, `dd-hh:mm:ss` from a day.
pub fn elapsed(seconds: u64) -> String {
    let (days, hours, minutes, seconds) = split(seconds);
    if days > 0 {
        format!("{days}-{hours:02}:{minutes:02}:{seconds:02}")
    } else if hours > 0 {
        format!("{hours:02}:{minutes:02}:{seconds:02}")
    } else {
        format!("{minutes:02}:{seconds:02}")
    }
}

/// ps's TIME: `hh:mm:ss`, `dd-hh:mm:ss` from a day.
pub fn cpu_time(milliseconds: u64) -> String {
    let (days, hours, minutes, seconds) = split(milliseconds / 1000);
    if days > 0 {
        format!("{days}-{hours:02}:{minutes:02}:{seconds:02}")
    } else {
        format!("{hours:02}:{minutes:02}:{seconds:02}")
    }
}

fn split(seconds: u64) -> (u64, u64, u64, u64) {
    (
        seconds / 86_400,
        seconds % 86_400 / 3600,
        seconds % 3600 / 60,
        seconds % 60,
    )
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
            (3600 * 14, "00:28"),
            (3600 * 15, "Dec04"),
            (86_400 * 40, "Oct26"),
            (86_400 * 340, "2025"),
        ];
        for (ago, expected) in cases {
            assert_eq!(
                times.start(now - Duration::from_secs(ago)),
                expected,
                "{ago}"
            );
        }
    }

    #[test]
    fn started_and_long_forms_are_ps_s() {
        // 2026-12-05T14:28:00Z, read in UTC.
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_480_880);
        let times = ShortTimes {
            now,
            zone: TimeZone::UTC,
        };
        let cases = [
            (7, "14:27:53", "Sat Dec  5 14:27:53 2026"),
            (86_399, "14:28:01", "Fri Dec  4 14:28:01 2026"),
            (86_400, "Dec 04", "Fri Dec  4 14:28:00 2026"),
            (86_400 * 40, "Oct 26", "Mon Oct 26 14:28:00 2026"),
            (86_400 * 340, "Dec 30", "Tue Dec 30 14:28:00 2025"),
        ];
        for (ago, started, long) in cases {
            let start = now - Duration::from_secs(ago);
            assert_eq!(times.started(start), started, "{ago}");
            assert_eq!(times.long(start), long, "{ago}");
        }
    }

    #[test]
    fn elapsed_and_cpu_times_are_ps_s() {
        let cases = [
            (0, "00:00", "00:00:00"),
            (59, "00:59", "00:00:59"),
            (3599, "59:59", "00:59:59"),
            (3600, "01:00:00", "01:00:00"),
            (86_400 + 3661, "1-01:01:01", "1-01:01:01"),
        ];
        for (seconds, etime, time) in cases {
            assert_eq!(elapsed(seconds), etime);
            assert_eq!(cpu_time(seconds * 1000 + 999), time);
        }
    }
}
