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
///
/// About two significant figures: seconds below 2 minutes, minutes and seconds below 10 minutes,
/// minutes below 3 hours, hours and minutes below 8 hours, hours below 2 days, days and hours
/// below 8 days, days below 2 years, years and days below 8 years, then years. A clock up to
/// (but excluding) 2 seconds behind the timestamp still reads "0s"; further in the future is
/// `<invalid>`.
pub fn human_duration(d: SignedDuration) -> String {
    // Whole seconds truncated towards zero, as Go's int(d.Seconds()).
    let seconds = d.as_secs();
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        if s == 0 {
            return format!("{minutes}m");
        }
        return format!("{minutes}m{s}s");
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        if m == 0 {
            return format!("{hours}h");
        }
        return format!("{hours}h{m}m");
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            return format!("{}d", hours / 24);
        }
        return format!("{}d{h}h", hours / 24);
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        if dy == 0 {
            return format!("{}y", hours / 24 / 365);
        }
        return format!("{}y{dy}d", hours / 24 / 365);
    }
    format!("{}y", hours / 24 / 365)
}

/// kubectl's `duration.ShortHumanDuration`: one unit only ("45s", "5m", "3h", "8d", "2y").
pub fn short_human_duration(d: SignedDuration) -> String {
    let seconds = d.as_secs();
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    if seconds < 60 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 60 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 24 {
        return format!("{hours}h");
    }
    if hours < 24 * 365 {
        return format!("{}d", hours / 24);
    }
    format!("{}y", hours / 24 / 365)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: i64) -> SignedDuration {
        SignedDuration::from_secs(s)
    }

    #[test]
    fn human_duration_matches_kubectl_at_every_boundary() {
        const M: i64 = 60;
        const H: i64 = 3600;
        const D: i64 = 24 * H;
        const Y: i64 = 365 * D;
        let cases: &[(SignedDuration, &str)] = &[
            (SignedDuration::from_millis(-2500), "<invalid>"),
            (secs(-2), "<invalid>"),
            (SignedDuration::from_millis(-1999), "0s"),
            (secs(-1), "0s"),
            (SignedDuration::from_millis(-500), "0s"),
            (secs(0), "0s"),
            (SignedDuration::from_millis(1999), "1s"),
            (secs(59), "59s"),
            (secs(60), "60s"),
            (secs(119), "119s"),
            (secs(120), "2m"),
            (secs(121), "2m1s"),
            (secs(5 * M + 30), "5m30s"),
            (secs(9 * M + 59), "9m59s"),
            (secs(10 * M), "10m"),
            (secs(10 * M + 59), "10m"),
            (secs(179 * M + 59), "179m"),
            (secs(3 * H), "3h"),
            (secs(3 * H + 25 * M + 10), "3h25m"),
            (secs(7 * H + 59 * M), "7h59m"),
            (secs(8 * H), "8h"),
            (secs(8 * H + 30 * M), "8h"),
            (secs(47 * H + 59 * M), "47h"),
            (secs(48 * H), "2d"),
            (secs(2 * D + 5 * H), "2d5h"),
            (secs(7 * D + 23 * H), "7d23h"),
            (secs(8 * D), "8d"),
            (secs(8 * D + 5 * H), "8d"),
            (secs(729 * D), "729d"),
            (secs(730 * D), "2y"),
            (secs(2 * Y + 100 * D), "2y100d"),
            (secs(8 * Y - D), "7y364d"),
            (secs(8 * Y), "8y"),
            (secs(20 * Y + 100 * D), "20y"),
        ];
        for (d, want) in cases {
            assert_eq!(human_duration(*d), *want, "human_duration({d:?})");
        }
    }

    #[test]
    fn short_human_duration_keeps_one_unit() {
        let cases: &[(i64, &str)] = &[
            (-2, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (59, "59s"),
            (60, "1m"),
            (3599, "59m"),
            (3600, "1h"),
            (86399, "23h"),
            (86400, "1d"),
            (364 * 86400, "364d"),
            (365 * 86400, "1y"),
        ];
        for (s, want) in cases {
            assert_eq!(
                short_human_duration(secs(*s)),
                *want,
                "short_human_duration({s}s)"
            );
        }
    }
}
