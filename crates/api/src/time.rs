//! Timestamps as the API writes them (RFC 3339, seconds, UTC) and durations as kubectl prints them.

use jiff::{SignedDuration, Timestamp};

/// Now, truncated to whole seconds as `metav1.Time` stores it.
pub fn now() -> Timestamp {
    let t = Timestamp::now();
    Timestamp::from_second(t.as_second()).unwrap_or(t)
}

/// `2024-05-01T10:00:00Z`.
pub fn format_rfc3339(t: Timestamp) -> String {
    let t = Timestamp::from_second(t.as_second()).unwrap_or(t);
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `2024-05-01T10:00:00.123456Z` (`metav1.MicroTime`).
pub fn format_rfc3339_micro(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// kubectl's `duration.HumanDuration`: "0s", "45s", "5m30s", "10m", "3h25m", "2d5h", "8d", "2y100d".
pub fn human_duration(d: SignedDuration) -> String {
    let _ = d;
    String::new()
}
