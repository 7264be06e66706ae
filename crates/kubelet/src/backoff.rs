//! Upstream's crash-loop and image-pull backoff: 10 s, doubling up to 5 minutes, forgotten after
//! twice the maximum without a new failure. Times are the moments failures happened (a
//! container's `finishedAt`), so a restarted kubelet keeps the same rhythm.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;

#[derive(Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    backoff: Duration,
    /// Nanoseconds since the epoch of the failure that set `backoff`.
    last_update: i64,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The kubelet's: 10 s to 300 s.
    pub fn kubelet() -> Self {
        Self::new(Duration::from_secs(10), Duration::from_secs(300))
    }

    fn expired(&self, e: &Entry, now: i64) -> bool {
        now - e.last_update > 2 * self.max.as_nanos() as i64
    }

    /// The current backoff of `key`, if any.
    pub fn get(&self, key: &str) -> Option<Duration> {
        self.entries.lock().get(key).map(|e| e.backoff)
    }

    /// Whether `key` is still backing off from a failure at `event_time`; if so, how long is left.
    pub fn in_backoff_since(&self, key: &str, event_time: i64, now: i64) -> Option<Duration> {
        let entries = self.entries.lock();
        let e = entries.get(key)?;
        if self.expired(e, now) {
            return None;
        }
        let since = Duration::from_nanos((now - event_time).max(0) as u64);
        (since < e.backoff).then(|| e.backoff - since)
    }

    /// Whether `key` is backing off from its last recorded failure (image pulls).
    pub fn in_backoff_since_update(&self, key: &str, now: i64) -> bool {
        let entries = self.entries.lock();
        entries.get(key).is_some_and(|e| {
            !self.expired(e, now) && now - e.last_update < e.backoff.as_nanos() as i64
        })
    }

    /// Records a new failure at `event_time`: the first sets the initial backoff, each next one
    /// doubles it up to the maximum.
    pub fn next(&self, key: &str, event_time: i64, now: i64) {
        let mut entries = self.entries.lock();
        let backoff = match entries.get(key) {
            Some(e) if !self.expired(e, now) => (e.backoff * 2).min(self.max),
            _ => self.initial,
        };
        entries.insert(
            key.to_string(),
            Entry {
                backoff,
                last_update: event_time,
            },
        );
    }

    /// Forgets every key starting with `prefix` (a pod going away).
    pub fn forget_prefix(&self, prefix: &str) {
        self.entries.lock().retain(|k, _| !k.starts_with(prefix));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn backoff_doubles_from_ten_seconds_to_five_minutes() {
        let b = Backoff::kubelet();
        let mut t = 1_000 * S;
        let mut seen = Vec::new();
        for _ in 0..8 {
            assert!(b.in_backoff_since("c", t, t).is_none() || b.get("c").is_some());
            b.next("c", t, t);
            seen.push(b.get("c").unwrap().as_secs());
            t += b.get("c").unwrap().as_nanos() as i64;
        }
        assert_eq!(seen, vec![10, 20, 40, 80, 160, 300, 300, 300]);
    }

    #[test]
    fn a_failure_is_in_backoff_until_its_delay_passed_and_old_entries_expire() {
        let b = Backoff::kubelet();
        let t = 1_000 * S;
        assert_eq!(b.in_backoff_since("c", t, t), None, "no failure yet");
        b.next("c", t, t);
        assert_eq!(
            b.in_backoff_since("c", t, t + 4 * S),
            Some(Duration::from_secs(6))
        );
        assert_eq!(b.in_backoff_since("c", t, t + 10 * S), None);
        b.next("c", t + 11 * S, t + 11 * S);
        assert_eq!(b.get("c"), Some(Duration::from_secs(20)));
        // Ten quiet minutes reset the rhythm.
        let later = t + 11 * S + 601 * S;
        b.next("c", later, later);
        assert_eq!(b.get("c"), Some(Duration::from_secs(10)));
    }
}
