//! Wall-clock readings in the forms the services store: Unix seconds and milliseconds, and
//! RFC 3339 text with microseconds (so events from several services sort by time).

/// The current Unix time in seconds.
pub fn unix_now() -> i64 {
    unix_now_ms() / 1000
}

/// The current Unix time in milliseconds.
pub fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(millis)
        .unwrap_or(0)
}

/// `duration` in whole milliseconds, saturating at `i64::MAX`: durations come from flags
/// and constants, and a huge one must mean "practically never", not wrap to a past time.
pub fn millis(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// The Unix time in milliseconds `duration` from now, saturating rather than overflowing.
pub fn unix_ms_after(duration: std::time::Duration) -> i64 {
    unix_now_ms().saturating_add(millis(duration))
}

/// This (year, month), in UTC: what a card's expiry is compared with.
pub fn current_year_month() -> (u32, u32) {
    let now = time::OffsetDateTime::now_utc();
    (now.year().max(0) as u32, u32::from(u8::from(now.month())))
}

/// The current UTC time as `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.microsecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_have_microseconds_and_sort_as_text() {
        let first = now_rfc3339();
        assert_eq!(first.len(), "2026-11-21T22:59:01.123456Z".len(), "{first}");
        assert!(first.ends_with('Z'));
        assert!(now_rfc3339() >= first);
        assert!((unix_now() - unix_now_ms() / 1000).abs() <= 1);
    }

    #[test]
    fn durations_past_i64_milliseconds_saturate_instead_of_wrapping() {
        use std::time::Duration;
        assert_eq!(millis(Duration::from_millis(1500)), 1500);
        assert_eq!(millis(Duration::MAX), i64::MAX);
        assert_eq!(unix_ms_after(Duration::MAX), i64::MAX);
        assert!(unix_ms_after(Duration::from_secs(1)) > unix_now_ms());
    }
}
