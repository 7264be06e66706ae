//! Wall-clock time for controllers, driven by `tokio::time` so that tests with paused time
//! move the clock the controllers see: the clock is anchored to the system time when it is
//! created and advances with tokio's monotonic clock.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Clock {
    wall: jiff::Timestamp,
    mono: tokio::time::Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    pub fn new() -> Self {
        Clock {
            wall: jiff::Timestamp::now(),
            mono: tokio::time::Instant::now(),
        }
    }

    /// A clock that reads `at` now (tests).
    pub fn at(at: jiff::Timestamp) -> Self {
        Clock {
            wall: at,
            mono: tokio::time::Instant::now(),
        }
    }

    pub fn now(&self) -> jiff::Timestamp {
        let elapsed = self.mono.elapsed();
        self.wall.checked_add(elapsed).unwrap_or(self.wall)
    }

    /// `metav1.Now()` as the API stores it: whole seconds.
    pub fn now_time(&self) -> Time {
        Time(truncate_seconds(self.now()))
    }

    pub fn now_micro(&self) -> MicroTime {
        MicroTime(self.now())
    }

    /// How long ago `t` was (zero if in the future).
    pub fn since(&self, t: &Time) -> Duration {
        let d = self.now().duration_since(t.0);
        Duration::try_from(d).unwrap_or(Duration::ZERO)
    }
}

pub fn truncate_seconds(t: jiff::Timestamp) -> jiff::Timestamp {
    jiff::Timestamp::from_second(t.as_second()).unwrap_or(t)
}
