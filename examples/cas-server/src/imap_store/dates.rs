//! Calendar arithmetic for INTERNALDATE and the SEARCH date keys (proleptic Gregorian, UTC).

use cas_imap_proto::types::{Date, DateTime};

/// Days since 1970-01-01 of a civil date (Howard Hinnant's `days_from_civil`).
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// INTERNALDATE of a Unix time, in UTC. Years outside 1..=9999 are clamped (the wire form
/// has four digits).
pub(crate) fn date_time_of(unix: i64) -> DateTime {
    let min = -62_135_596_800; // 0001-01-01T00:00:00Z
    let max = 253_402_300_799; // 9999-12-31T23:59:59Z
    let unix = unix.clamp(min, max);
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let date = Date::new(y as u16, m as u8, d as u8).unwrap_or_else(|_| {
        Date::new(1970, 1, 1).unwrap_or_else(|_| unreachable!("1970-01-01 is a valid date"))
    });
    DateTime::new(
        date,
        (secs / 3600) as u8,
        (secs / 60 % 60) as u8,
        (secs % 60) as u8,
        0,
    )
    .unwrap_or_else(|_| unreachable!("hour, minute and second are in range by construction"))
}

/// The Unix time of an IMAP date-time (APPEND's date argument).
pub fn unix_of(dt: DateTime) -> i64 {
    let d = dt.date();
    let days = days_from_civil(
        i64::from(d.year()),
        u32::from(d.month()),
        u32::from(d.day()),
    );
    days * 86_400
        + i64::from(dt.hour()) * 3600
        + i64::from(dt.minute()) * 60
        + i64::from(dt.second())
        - i64::from(dt.zone_minutes()) * 60
}

/// Day number of an IMAP date (for comparisons).
pub(crate) fn day_of(date: Date) -> i64 {
    days_from_civil(
        i64::from(date.year()),
        u32::from(date.month()),
        u32::from(date.day()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use cas_imap_proto::encode::to_bytes;

    #[test]
    fn known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        // 2025-11-23T08:00:00Z
        assert_eq!(
            to_bytes(&date_time_of(1_763_884_800)),
            b"\"23-Nov-2025 08:00:00 +0000\""
        );
        assert_eq!(
            to_bytes(&date_time_of(0)),
            b"\" 1-Jan-1970 00:00:00 +0000\""
        );
        let dt = DateTime::new(Date::new(1996, 7, 17).unwrap(), 2, 44, 25, -7 * 60).unwrap();
        assert_eq!(
            to_bytes(&date_time_of(unix_of(dt))),
            b"\"17-Jul-1996 09:44:25 +0000\""
        );
        for t in [-86_401, -1, 0, 59, 951_782_400, 4_102_444_800] {
            assert_eq!(unix_of(date_time_of(t)), t);
        }
    }
}
