//! Controller expectations (upstream `ControllerExpectations` / `UIDTrackingExpectations`): a
//! controller that asked for N creates or deletes waits until its informer has seen them before
//! it counts pods again, so a burst of events can never make it over- or under-shoot. Stale
//! expectations expire after five minutes, after which the controller acts on what it sees.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// Upstream's `ExpectationsTimeout`.
pub const EXPECTATIONS_TIMEOUT: Duration = Duration::from_secs(5 * 60);

#[derive(Clone, Debug)]
struct Expectation {
    add: i64,
    del: i64,
    at: Instant,
}

impl Expectation {
    fn fulfilled(&self) -> bool {
        self.add <= 0 && self.del <= 0
    }
}

#[derive(Default)]
struct State {
    counts: HashMap<String, Expectation>,
    /// Keys of pods whose deletion is awaited, per controller key.
    uids: HashMap<String, HashSet<String>>,
}

/// Expected creations (counted) and deletions (tracked by pod key) per controller key.
#[derive(Default)]
pub struct Expectations {
    state: Mutex<State>,
}

impl Expectations {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the controller may act: no expectations, all met, or expired.
    pub fn satisfied(&self, key: &str) -> bool {
        let st = self.state.lock();
        match st.counts.get(key) {
            Some(e) => e.fulfilled() || e.at.elapsed() > EXPECTATIONS_TIMEOUT,
            None => true,
        }
    }

    fn set(&self, key: &str, add: i64, del: i64) {
        self.state.lock().counts.insert(
            key.to_string(),
            Expectation {
                add,
                del,
                at: Instant::now(),
            },
        );
    }

    pub fn expect_creations(&self, key: &str, n: usize) {
        self.set(key, n as i64, 0);
    }

    /// Expects the deletion of these pods (keys `ns/name`).
    pub fn expect_deletions(&self, key: &str, pods: &[String]) {
        {
            let mut st = self.state.lock();
            st.uids
                .insert(key.to_string(), pods.iter().cloned().collect());
        }
        self.set(key, 0, pods.len() as i64);
    }

    /// Expects `creates` creations and the deletion of these pods at once (`SetExpectations`).
    pub fn expect(&self, key: &str, creates: usize, pods: &[String]) {
        {
            let mut st = self.state.lock();
            st.uids
                .insert(key.to_string(), pods.iter().cloned().collect());
        }
        self.set(key, creates as i64, pods.len() as i64);
    }

    /// Lowers the outstanding counts (a create was observed, or will never happen).
    pub fn lower(&self, key: &str, add: i64, del: i64) {
        if let Some(e) = self.state.lock().counts.get_mut(key) {
            e.add -= add;
            e.del -= del;
        }
    }

    pub fn creation_observed(&self, key: &str) {
        self.lower(key, 1, 0);
    }

    /// A pod's deletion was seen; counts only once per expected pod.
    pub fn deletion_observed(&self, key: &str, pod_key: &str) {
        let mut st = self.state.lock();
        let tracked = st.uids.get_mut(key).is_some_and(|s| s.remove(pod_key));
        if tracked && let Some(e) = st.counts.get_mut(key) {
            e.del -= 1;
        }
    }

    /// Forgets a controller (it was deleted).
    pub fn delete(&self, key: &str) {
        let mut st = self.state.lock();
        st.counts.remove(key);
        st.uids.remove(key);
    }

    /// Outstanding (creates, deletes), for tests and logs.
    pub fn pending(&self, key: &str) -> Option<(i64, i64)> {
        self.state.lock().counts.get(key).map(|e| (e.add, e.del))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn expectations_are_met_by_observations_or_expire() {
        let e = Expectations::new();
        assert!(e.satisfied("d/a"), "no expectations: act");
        e.expect_creations("d/a", 2);
        assert!(!e.satisfied("d/a"));
        e.creation_observed("d/a");
        assert!(!e.satisfied("d/a"));
        e.creation_observed("d/a");
        assert!(e.satisfied("d/a"));

        e.expect_deletions("d/a", &["d/p1".into(), "d/p2".into()]);
        e.deletion_observed("d/a", "d/p1");
        e.deletion_observed("d/a", "d/p1");
        assert!(!e.satisfied("d/a"), "the same pod counts once");
        e.deletion_observed("d/a", "d/other");
        assert!(
            !e.satisfied("d/a"),
            "a pod that was not expected does not count"
        );
        tokio::time::advance(EXPECTATIONS_TIMEOUT + Duration::from_secs(1)).await;
        assert!(e.satisfied("d/a"), "expired");
    }
}
