//! Cron schedules with the semantics of robfig/cron's standard parser, which CronJobs use:
//! five fields (minute, hour, day of month, month, day of week; names like `jan` and `mon`;
//! `*`, `?`, ranges, steps, lists), the `@yearly`, `@annually`, `@monthly`, `@weekly`,
//! `@daily`, `@midnight`, `@hourly` and `@every <duration>` descriptors, and an optional
//! `TZ=`/`CRON_TZ=` prefix. When both day of month and day of week are restricted, either
//! may match.

use jiff::tz::TimeZone;
use jiff::{Timestamp, civil};

const STAR: u64 = 1 << 63;

#[derive(Clone, Debug)]
enum Kind {
    Spec {
        minute: u64,
        hour: u64,
        dom: u64,
        month: u64,
        dow: u64,
    },
    Every(std::time::Duration),
}

#[derive(Clone, Debug)]
pub struct Schedule {
    kind: Kind,
    tz: TimeZone,
}

struct Bounds {
    min: u32,
    max: u32,
    names: &'static [&'static str],
    offset: u32,
}

const MINUTES: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
    offset: 0,
};
const HOURS: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
    offset: 0,
};
const DOM: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
    offset: 0,
};
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
    offset: 1,
};
const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
    offset: 0,
};

fn bits(start: u32, end: u32, step: u32) -> u64 {
    let mut b = 0u64;
    let mut i = start;
    while i <= end {
        b |= 1 << i;
        i += step;
    }
    b
}

fn all(r: &Bounds) -> u64 {
    bits(r.min, r.max, 1) | STAR
}

fn parse_int_or_name(v: &str, r: &Bounds) -> Result<u32, String> {
    if let Some(i) = r.names.iter().position(|n| n.eq_ignore_ascii_case(v)) {
        return Ok(i as u32 + r.offset);
    }
    let n: i64 = v.parse().map_err(|_| {
        format!("failed to parse int from {v}: strconv.Atoi: parsing {v:?}: invalid syntax")
    })?;
    if n < 0 {
        return Err(format!("negative number ({n}) not allowed: {v}"));
    }
    Ok(n as u32)
}

/// robfig's `getRange`.
fn range(expr: &str, r: &Bounds) -> Result<u64, String> {
    let (range_part, step_part) = match expr.split_once('/') {
        Some((a, b)) => {
            if b.contains('/') {
                return Err(format!("too many slashes: {expr}"));
            }
            (a, Some(b))
        }
        None => (expr, None),
    };
    let low_high: Vec<&str> = range_part.split('-').collect();
    let single = low_high.len() == 1;
    let mut extra = 0;
    let (start, mut end) = if low_high[0] == "*" || low_high[0] == "?" {
        extra = STAR;
        (r.min, r.max)
    } else {
        let s = parse_int_or_name(low_high[0], r)?;
        match low_high.len() {
            1 => (s, s),
            2 => (s, parse_int_or_name(low_high[1], r)?),
            _ => return Err(format!("too many hyphens: {expr}")),
        }
    };
    let step = match step_part {
        None => 1,
        Some(s) => {
            let n: u32 = s.parse().map_err(|_| {
                format!("failed to parse int from {s}: strconv.Atoi: parsing {s:?}: invalid syntax")
            })?;
            if single {
                end = r.max;
            }
            if n > 1 {
                extra = 0;
            }
            n
        }
    };
    if start < r.min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            r.min
        ));
    }
    if end > r.max {
        return Err(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            r.max
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    Ok(bits(start, end, step) | extra)
}

fn field(f: &str, r: &Bounds) -> Result<u64, String> {
    let mut b = 0;
    for e in f.split(',') {
        b |= range(e, r)?;
    }
    Ok(b)
}

/// Go's `time.ParseDuration` for the units cron schedules use.
fn parse_go_duration(s: &str) -> Result<std::time::Duration, String> {
    let mut total = 0f64;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(format!("time: invalid duration {s:?}"));
    }
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_end);
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let n: f64 = num
            .parse()
            .map_err(|_| format!("time: invalid duration {s:?}"))?;
        let mult = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(format!("time: missing unit in duration {s:?}")),
            u => return Err(format!("time: unknown unit {u:?} in duration {s:?}")),
        };
        total += n * mult;
        rest = tail;
    }
    Ok(std::time::Duration::from_secs_f64(total))
}

/// `cron.ParseStandard`; schedules without a `TZ=` prefix use `default_tz`.
pub fn parse_standard(spec: &str, default_tz: &TimeZone) -> Result<Schedule, String> {
    let mut s = spec.trim();
    let mut tz = default_tz.clone();
    if let Some(rest) = s.strip_prefix("TZ=").or_else(|| s.strip_prefix("CRON_TZ=")) {
        let (name, body) = rest.split_once(' ').unwrap_or((rest, ""));
        tz = TimeZone::get(name).map_err(|e| format!("provided bad location {name}: {e}"))?;
        s = body.trim();
    }
    if let Some(d) = s.strip_prefix('@') {
        let (dom, month, dow, hour, minute) =
            (all(&DOM), all(&MONTHS), all(&DOW), all(&HOURS), 1u64);
        let kind = match d {
            "yearly" | "annually" => Kind::Spec {
                minute,
                hour: 1,
                dom: 1 << 1,
                month: 1 << 1,
                dow,
            },
            "monthly" => Kind::Spec {
                minute,
                hour: 1,
                dom: 1 << 1,
                month,
                dow,
            },
            "weekly" => Kind::Spec {
                minute,
                hour: 1,
                dom,
                month,
                dow: 1,
            },
            "daily" | "midnight" => Kind::Spec {
                minute,
                hour: 1,
                dom,
                month,
                dow,
            },
            "hourly" => Kind::Spec {
                minute,
                hour,
                dom,
                month,
                dow,
            },
            e if e.starts_with("every ") => {
                let dur = parse_go_duration(&e["every ".len()..])
                    .map_err(|err| format!("failed to parse duration {s}: {err}"))?;
                let secs = dur.as_secs_f64().round().max(1.0) as u64;
                Kind::Every(std::time::Duration::from_secs(secs))
            }
            _ => return Err(format!("unrecognized descriptor: {s}")),
        };
        return Ok(Schedule { kind, tz });
    }
    let fields: Vec<&str> = s.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: {:?}",
            fields.len(),
            fields
        ));
    }
    Ok(Schedule {
        kind: Kind::Spec {
            minute: field(fields[0], &MINUTES)?,
            hour: field(fields[1], &HOURS)?,
            dom: field(fields[2], &DOM)?,
            month: field(fields[3], &MONTHS)?,
            dow: field(fields[4], &DOW)?,
        },
        tz,
    })
}

impl Schedule {
    /// The first activation strictly after `t` (None if none within five years).
    pub fn next(&self, t: Timestamp) -> Option<Timestamp> {
        let Kind::Spec {
            minute,
            hour,
            dom,
            month,
            dow,
        } = self.kind
        else {
            let Kind::Every(d) = self.kind else {
                unreachable!()
            };
            let base = Timestamp::from_second(t.as_second()).ok()?;
            return base.checked_add(d).ok();
        };
        let start = Timestamp::from_second(t.as_second() + 1).ok()?;
        let local = start.to_zoned(self.tz.clone());
        let year_limit = local.year() + 5;
        let mut date = local.date();
        let day_matches = |d: civil::Date| {
            let dom_match = dom & (1 << d.day()) != 0;
            let dow_match = dow & (1 << d.weekday().to_sunday_zero_offset()) != 0;
            if dom & STAR != 0 || dow & STAR != 0 {
                dom_match && dow_match
            } else {
                dom_match || dow_match
            }
        };
        while date.year() <= year_limit {
            if month & (1 << date.month()) == 0 {
                date = date
                    .first_of_month()
                    .checked_add(jiff::Span::new().months(1))
                    .ok()?;
                continue;
            }
            if day_matches(date) {
                for h in 0..24i8 {
                    if hour & (1 << h) == 0 {
                        continue;
                    }
                    for m in 0..60i8 {
                        if minute & (1 << m) == 0 {
                            continue;
                        }
                        let dt = date.at(h, m, 0, 0);
                        let Ok(z) = self.tz.to_ambiguous_zoned(dt).compatible() else {
                            continue;
                        };
                        if z.timestamp() >= start {
                            return Some(z.timestamp());
                        }
                    }
                }
            }
            date = date.tomorrow().ok()?;
        }
        None
    }

    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn next(spec: &str, from: &str) -> String {
        let s = parse_standard(spec, &TimeZone::UTC).unwrap();
        s.next(from.parse().unwrap()).unwrap().to_string()
    }

    #[test]
    fn schedules_fire_at_the_next_matching_minute() {
        let cases = [
            (
                "*/5 * * * *",
                "2024-01-01T00:02:30Z",
                "2024-01-01T00:05:00Z",
            ),
            (
                "*/5 * * * *",
                "2024-01-01T00:05:00Z",
                "2024-01-01T00:10:00Z",
            ),
            ("0 * * * *", "2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z"),
            ("@hourly", "2024-01-01T10:59:59Z", "2024-01-01T11:00:00Z"),
            ("@daily", "2024-01-01T10:00:00Z", "2024-01-02T00:00:00Z"),
            ("@weekly", "2024-01-01T10:00:00Z", "2024-01-07T00:00:00Z"),
            ("@monthly", "2024-01-15T00:00:00Z", "2024-02-01T00:00:00Z"),
            ("@yearly", "2024-01-15T00:00:00Z", "2025-01-01T00:00:00Z"),
            (
                "30 6 * * mon-fri",
                "2024-01-06T00:00:00Z",
                "2024-01-08T06:30:00Z",
            ),
            (
                "0 0 29 feb *",
                "2024-03-01T00:00:00Z",
                "2028-02-29T00:00:00Z",
            ),
            // Day of month OR day of week when both are restricted.
            (
                "0 0 13 * fri",
                "2024-01-01T00:00:00Z",
                "2024-01-05T00:00:00Z",
            ),
            (
                "@every 90s",
                "2024-01-01T00:00:10.5Z",
                "2024-01-01T00:01:40Z",
            ),
            (
                "TZ=Europe/Berlin 0 9 * * *",
                "2024-07-01T00:00:00Z",
                "2024-07-01T07:00:00Z",
            ),
        ];
        for (spec, from, want) in cases {
            assert_eq!(next(spec, from), want, "{spec} after {from}");
        }
    }

    #[test]
    fn bad_schedules_are_refused_with_robfig_messages() {
        assert_eq!(
            parse_standard("* * *", &TimeZone::UTC).unwrap_err(),
            r#"expected exactly 5 fields, found 3: ["*", "*", "*"]"#
        );
        assert_eq!(
            parse_standard("61 * * * *", &TimeZone::UTC).unwrap_err(),
            "end of range (61) above maximum (59): 61"
        );
        assert_eq!(
            parse_standard("@fortnightly", &TimeZone::UTC).unwrap_err(),
            "unrecognized descriptor: @fortnightly"
        );
        assert!(parse_standard("0 31 2 *", &TimeZone::UTC).is_err());
    }
}
