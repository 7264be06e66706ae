//! Wall-clock time that follows tokio's clock: in production it is the real time, in tests with
//! paused time it advances with `tokio::time`, so timestamps written by the fake runtime and the
//! kubelet's backoff and probe timing agree with each other.

use std::sync::OnceLock;

struct Base {
    wall: jiff::Timestamp,
    instant: tokio::time::Instant,
}

static BASE: OnceLock<Base> = OnceLock::new();

/// Now, as a timestamp.
pub fn now() -> jiff::Timestamp {
    let base = BASE.get_or_init(|| Base {
        wall: jiff::Timestamp::now(),
        instant: tokio::time::Instant::now(),
    });
    let elapsed = tokio::time::Instant::now().saturating_duration_since(base.instant);
    base.wall
        .checked_add(jiff::SignedDuration::try_from(elapsed).unwrap_or_default())
        .unwrap_or(base.wall)
}

/// Now, in nanoseconds since the Unix epoch (CRI's timestamps).
pub fn now_nanos() -> i64 {
    now().as_nanosecond() as i64
}

/// A CRI timestamp (nanoseconds) as a Kubernetes `Time`.
pub fn from_nanos(n: i64) -> Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time> {
    (n > 0)
        .then(|| jiff::Timestamp::from_nanosecond(n as i128).ok())
        .flatten()
        .map(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time)
}

/// Now as a Kubernetes `Time`.
pub fn time_now() -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now())
}
