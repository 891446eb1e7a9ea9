//! Timestamps at the edges: nanoseconds since the epoch as RFC 3339 UTC text.

const NANOS_PER_SECOND: u64 = 1_000_000_000;
const SECONDS_PER_DAY: u64 = 86_400;

/// `2026-11-21T14:30:00Z` for a time in nanoseconds since the Unix epoch.
pub fn rfc3339_from_ns(timestamp_ns: u64) -> String {
    let seconds = timestamp_ns / NANOS_PER_SECOND;
    let days = seconds / SECONDS_PER_DAY;
    let second_of_day = seconds % SECONDS_PER_DAY;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        second_of_day / 3_600,
        (second_of_day % 3_600) / 60,
        second_of_day % 60
    )
}

/// Nanoseconds since the epoch at the start (00:00 UTC) of a `YYYY-MM-DD` date, for
/// years 1970 to 9999; `None` for any other text or an impossible date.
pub fn ns_from_date(text: &str) -> Option<u64> {
    let bytes = text.as_bytes();
    let shaped = bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(index, byte)| matches!(index, 4 | 7) || byte.is_ascii_digit());
    if !shaped {
        return None;
    }
    let year: u64 = text[0..4].parse().ok()?;
    let month: u64 = text[5..7].parse().ok()?;
    let day: u64 = text[8..10].parse().ok()?;
    if year < 1970 || !(1..=12).contains(&month) || day == 0 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    // Round-trip to refuse dates like 2026-02-30.
    if civil_from_days(days) != (year, month, day) {
        return None;
    }
    days.checked_mul(SECONDS_PER_DAY)?
        .checked_mul(NANOS_PER_SECOND)
}

/// Howard Hinnant's `days_from_civil`, for dates from 1970 on.
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year / 400;
    let year_of_era = year - era * 400;
    let month_shifted = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * month_shifted + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    (era * 146_097 + day_of_era).saturating_sub(719_468)
}

/// Howard Hinnant's `civil_from_days`, for days since 1970-01-01 (never negative here).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let shifted = days + 719_468;
    let era = shifted / 146_097;
    let day_of_era = shifted % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::{ns_from_date, rfc3339_from_ns};

    #[test]
    fn dates_parse_to_the_start_of_their_day() {
        assert_eq!(ns_from_date("1970-01-01"), Some(0));
        assert_eq!(
            ns_from_date("2000-02-29"),
            Some(951_782_400 * 1_000_000_000)
        );
        let ns = ns_from_date("2026-11-27").unwrap();
        assert_eq!(rfc3339_from_ns(ns), "2026-11-27T00:00:00Z");
        for bad in [
            "2026-02-30",
            "2026-13-01",
            "2026-00-10",
            "1969-12-31",
            "2026-1-01",
            "26-11-27",
            "2026/11/27",
            "",
            "2026-11-2x",
        ] {
            assert_eq!(ns_from_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339_from_ns(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339_from_ns(951_782_400 * 1_000_000_000),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            rfc3339_from_ns(1_795_789_845 * 1_000_000_000 + 5),
            "2026-11-27T14:30:45Z"
        );
    }
}
