//! RFC 3339 timestamps in UTC for records (`2026-11-27T17:14:54.123Z`): sortable as text,
//! read by jq's `fromdate` family, and the same on every machine of a fleet; and the local
//! `ctime` form nmap's output files give their times in.

use std::time::{SystemTime, UNIX_EPOCH};

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// Formats a point in time as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC).
pub fn rfc3339(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_epoch.as_secs();
    let (year, month, day) = civil_from_days(seconds / 86_400);
    let of_day = seconds % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60,
        since_epoch.subsec_millis()
    )
}

/// Formats a point in time as C's `ctime` does, in local time: `Sat Dec  5 08:00:00 2026`,
/// the form nmap's output files give their times in, and the zone nmap gives them in
/// (`localtime`: the TZ variable, else /etc/localtime; UTC where neither says).
pub fn ctime_local(time: SystemTime) -> String {
    ctime_in(time, TimeZone::system())
}

fn ctime_in(time: SystemTime, zone: TimeZone) -> String {
    // Every SystemTime a clock gives is in jiff's range (years -9999 to 9999).
    let instant = Timestamp::try_from(time).unwrap_or(Timestamp::UNIX_EPOCH);
    instant
        .to_zoned(zone)
        .strftime("%a %b %e %H:%M:%S %Y")
        .to_string()
}

/// Days since 1970-01-01 to a (year, month, day) date in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn known_instants() {
        let at = |secs: u64, millis: u64| {
            rfc3339(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis))
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(at(1_795_799_694, 123), "2026-11-27T17:14:54.123Z");
        assert_eq!(at(4_107_542_399, 999), "2100-02-28T23:59:59.999Z");
    }

    #[test]
    fn ctime_as_nmap_prints_it() {
        let at = |secs: u64, zone: TimeZone| ctime_in(UNIX_EPOCH + Duration::from_secs(secs), zone);
        assert_eq!(at(0, TimeZone::UTC), "Thu Jan  1 00:00:00 1970");
        assert_eq!(at(1_796_447_998, TimeZone::UTC), "Sat Dec  5 05:19:58 2026");
        assert_eq!(at(951_782_400, TimeZone::UTC), "Tue Feb 29 00:00:00 2000");
        // A zone east of UTC moves the date on; TZ's POSIX rules, with summer time.
        let tokyo = TimeZone::posix("JST-9").unwrap();
        assert_eq!(at(1_796_447_998, tokyo), "Sat Dec  5 14:19:58 2026");
        let new_york = || TimeZone::posix("EST5EDT,M3.2.0,M11.1.0").unwrap();
        assert_eq!(at(1_796_447_998, new_york()), "Sat Dec  5 00:19:58 2026");
        assert_eq!(at(1_783_000_000, new_york()), "Thu Jul  2 09:46:40 2026");
    }
}
