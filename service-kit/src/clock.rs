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
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
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
}
