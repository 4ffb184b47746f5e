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

/// The current UTC time as SQLite's `strftime('%Y-%m-%dT%H:%M:%fZ', 'now')` writes it
/// (milliseconds): the form stored timestamps and [`parse_rfc3339`]'s answers have.
pub fn now_millis_text() -> String {
    let now = now_rfc3339();
    // `...SS.ffffffZ` less the last three digits of the fraction.
    format!("{}Z", &now[..now.len() - 4])
}

/// An RFC 3339 timestamp a client sent (`2026-12-01T00:00:00Z`, any offset), as UTC text in
/// the form SQLite's `strftime('%Y-%m-%dT%H:%M:%fZ')` writes (milliseconds), so it compares
/// with stored timestamps as text; `None` if it is not one.
pub fn parse_rfc3339(raw: &str) -> Option<String> {
    let at =
        time::OffsetDateTime::parse(raw.trim(), &time::format_description::well_known::Rfc3339)
            .ok()?
            .to_offset(time::UtcOffset::UTC);
    Some(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    ))
    .filter(|_| (0..=9999).contains(&at.year()))
}

/// [`parse_rfc3339`] for a field a client sent: a 422 naming `field` when it is not a time.
pub fn rfc3339_field(field: &str, raw: &str) -> Result<String, crate::domain::Invalid> {
    parse_rfc3339(raw).ok_or_else(|| {
        crate::domain::Invalid(format!(
            "{field} must be an RFC 3339 time such as 2026-12-01T00:00:00Z"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_timestamps_become_utc_text_that_sorts_like_stored_ones() {
        let now = now_millis_text();
        assert_eq!(now.len(), "2026-12-01T00:30:00.000Z".len(), "{now}");
        assert_eq!(parse_rfc3339(&now).as_deref(), Some(now.as_str()));
        assert_eq!(
            parse_rfc3339("2026-12-01T01:30:00+01:00").as_deref(),
            Some("2026-12-01T00:30:00.000Z")
        );
        assert_eq!(
            parse_rfc3339("2026-12-01T00:00:00.5Z").as_deref(),
            Some("2026-12-01T00:00:00.500Z")
        );
        for bad in ["", "2026-12-01", "yesterday", "2026-13-01T00:00:00Z"] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

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
