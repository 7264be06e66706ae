//! An in-memory backend with the full semantics of the others (history, compaction, TTL,
//! watch), for unit tests of the crates above the store. Nothing survives the process.
//!
//! Time (TTL) goes through `tokio::time`, so tests may pause and advance it.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::{Notify, broadcast};
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::watch::{self, Commit, History, HistoryPage};
use crate::{
    Backend, Error, Event, EventType, KeyValue, ListResult, Result, Revision, WatchStream,
};

/// An in-memory [`Backend`]. Cheap to create; each instance is its own empty store.
pub struct MemoryBackend {
    shared: Arc<Shared>,
    _stop: DropGuard,
}

struct Shared {
    state: Mutex<State>,
    events: broadcast::Sender<Arc<Commit>>,
    /// Wakes the expiry task when a key with a TTL is written.
    expiry_wake: Arc<Notify>,
    expiry_started: AtomicBool,
    cancel: CancellationToken,
}

struct Row {
    key: String,
    create_rev: Revision,
    /// The row this one replaces (0 for a create).
    prev_rev: Revision,
    deleted: bool,
    value: Bytes,
    expires_at: Option<Instant>,
}

#[derive(Default)]
struct State {
    rev: Revision,
    compacted: Revision,
    log: BTreeMap<Revision, Row>,
    /// Every revision of each key still in `log`, ascending.
    keys: BTreeMap<String, Vec<Revision>>,
    /// (deadline, revision of the row that set it).
    expiry: BTreeSet<(Instant, Revision)>,
}

impl Default for MemoryBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryBackend {
    /// An empty store at revision 0. Needs no runtime; the TTL task starts on the first write
    /// with a TTL (inside the caller's runtime) and stops when the backend is dropped.
    pub fn new() -> Self {
        let cancel = CancellationToken::new();
        let (events, _) = broadcast::channel(watch::CHANNEL_CAPACITY);
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            events,
            expiry_wake: Arc::new(Notify::new()),
            expiry_started: AtomicBool::new(false),
            cancel: cancel.clone(),
        });
        MemoryBackend {
            shared,
            _stop: cancel.drop_guard(),
        }
    }

    fn start_expiry(&self) {
        if self.shared.expiry_started.swap(true, Ordering::AcqRel) {
            return;
        }
        tokio::spawn(expiry_loop(
            Arc::downgrade(&self.shared),
            self.shared.expiry_wake.clone(),
            self.shared.cancel.clone(),
        ));
    }
}

async fn expiry_loop(shared: Weak<Shared>, wake: Arc<Notify>, cancel: CancellationToken) {
    loop {
        let next = {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            let now = Instant::now();
            let mut state = shared.state.lock();
            while let Some(&(deadline, rev)) = state.expiry.first() {
                if deadline > now {
                    break;
                }
                state.expiry.pop_first();
                let Some(key) = state.log.get(&rev).map(|row| row.key.clone()) else {
                    continue;
                };
                // Only if the write that set this deadline is still the key's latest.
                if let Ok((_, commit)) = state.delete(&key, rev) {
                    let _ = shared.events.send(Arc::new(commit));
                }
            }
            state.expiry.first().map(|&(deadline, _)| deadline)
        };
        let notified = wake.notified();
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = notified => {}
            _ = async {
                match next {
                    Some(deadline) => tokio::time::sleep_until(deadline).await,
                    None => std::future::pending().await,
                }
            } => {}
        }
    }
}

impl Row {
    fn kv(&self, rev: Revision) -> KeyValue {
        KeyValue {
            key: self.key.clone(),
            value: self.value.clone(),
            create_revision: self.create_rev,
            mod_revision: rev,
        }
    }
}

impl State {
    /// The latest live row of `key`: (revision, row).
    fn live(&self, key: &str) -> Option<(Revision, &Row)> {
        let rev = *self.keys.get(key)?.last()?;
        let row = self.log.get(&rev)?;
        (!row.deleted).then_some((rev, row))
    }

    /// The key as of `rev`.
    fn at(&self, key: &str, rev: Revision) -> Option<KeyValue> {
        let revs = self.keys.get(key)?;
        let idx = revs.partition_point(|&r| r <= rev);
        let found = *revs.get(idx.checked_sub(1)?)?;
        let row = self.log.get(&found)?;
        (!row.deleted).then(|| row.kv(found))
    }

    fn check_read_revision(&self, revision: Revision) -> Result<Revision> {
        if revision <= 0 {
            return Ok(self.rev);
        }
        if revision > self.rev {
            return Err(Error::FutureRevision {
                requested: revision,
                current: self.rev,
            });
        }
        if revision < self.compacted {
            return Err(Error::Compacted {
                requested: revision,
                compacted: self.compacted,
            });
        }
        Ok(revision)
    }

    fn append(&mut self, row: Row) -> Revision {
        self.rev += 1;
        let rev = self.rev;
        if let Some(deadline) = row.expires_at {
            self.expiry.insert((deadline, rev));
        }
        self.keys.entry(row.key.clone()).or_default().push(rev);
        self.log.insert(rev, row);
        rev
    }

    fn forget_expiry(&mut self, rev: Revision) {
        if let Some(deadline) = self.log.get(&rev).and_then(|row| row.expires_at) {
            self.expiry.remove(&(deadline, rev));
        }
    }

    fn create(&mut self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<Commit> {
        if self.live(key).is_some() {
            return Err(Error::KeyExists {
                key: key.to_string(),
            });
        }
        let rev = self.rev + 1;
        let row = Row {
            key: key.to_string(),
            create_rev: rev,
            prev_rev: 0,
            deleted: false,
            value,
            expires_at: ttl.map(|ttl| Instant::now() + ttl),
        };
        let kv = row.kv(rev);
        self.append(row);
        Ok(Commit {
            revision: rev,
            events: vec![Event {
                kind: EventType::Create,
                kv,
                prev: None,
            }],
        })
    }

    fn update(
        &mut self,
        key: &str,
        value: Bytes,
        expected: Revision,
        ttl: Option<Duration>,
    ) -> Result<Commit> {
        let (old_rev, prev) = match self.live(key) {
            Some((rev, row)) => (rev, row.kv(rev)),
            None => {
                return Err(Error::Conflict {
                    key: key.to_string(),
                    expected,
                    current: None,
                });
            }
        };
        if old_rev != expected {
            return Err(Error::Conflict {
                key: key.to_string(),
                expected,
                current: Some(prev),
            });
        }
        self.forget_expiry(old_rev);
        let rev = self.rev + 1;
        let row = Row {
            key: key.to_string(),
            create_rev: prev.create_revision,
            prev_rev: old_rev,
            deleted: false,
            value,
            expires_at: ttl.map(|ttl| Instant::now() + ttl),
        };
        let kv = row.kv(rev);
        self.append(row);
        Ok(Commit {
            revision: rev,
            events: vec![Event {
                kind: EventType::Update,
                kv,
                prev: Some(prev),
            }],
        })
    }

    /// Deletes `key` if its revision is `expected` (0 = any).
    fn delete(&mut self, key: &str, expected: Revision) -> Result<(KeyValue, Commit)> {
        let (old_rev, prev) = match self.live(key) {
            Some((rev, row)) => (rev, row.kv(rev)),
            None => {
                return Err(Error::NotFound {
                    key: key.to_string(),
                });
            }
        };
        if expected != 0 && old_rev != expected {
            return Err(Error::Conflict {
                key: key.to_string(),
                expected,
                current: Some(prev),
            });
        }
        self.forget_expiry(old_rev);
        let rev = self.append(Row {
            key: key.to_string(),
            create_rev: prev.create_revision,
            prev_rev: old_rev,
            deleted: true,
            value: Bytes::new(),
            expires_at: None,
        });
        let kv = KeyValue {
            mod_revision: rev,
            ..prev.clone()
        };
        Ok((
            prev.clone(),
            Commit {
                revision: rev,
                events: vec![Event {
                    kind: EventType::Delete,
                    kv,
                    prev: Some(prev),
                }],
            },
        ))
    }

    /// The event of the row at `rev`.
    fn event(&self, rev: Revision, row: &Row) -> Event {
        let prev = (row.prev_rev > 0)
            .then(|| self.log.get(&row.prev_rev).map(|p| p.kv(row.prev_rev)))
            .flatten();
        if row.deleted {
            let mut kv = prev.clone().unwrap_or_else(|| row.kv(rev));
            kv.mod_revision = rev;
            kv.create_revision = row.create_rev;
            Event {
                kind: EventType::Delete,
                kv,
                prev,
            }
        } else {
            Event {
                kind: if row.prev_rev == 0 {
                    EventType::Create
                } else {
                    EventType::Update
                },
                kv: row.kv(rev),
                prev,
            }
        }
    }

    fn remove_row(&mut self, rev: Revision) {
        let Some(row) = self.log.remove(&rev) else {
            return;
        };
        if let Some(deadline) = row.expires_at {
            self.expiry.remove(&(deadline, rev));
        }
        if let Some(revs) = self.keys.get_mut(&row.key) {
            revs.retain(|&r| r != rev);
            if revs.is_empty() {
                self.keys.remove(&row.key);
            }
        }
    }

    fn compact(&mut self, revision: Revision) -> Result<Revision> {
        if revision > self.rev {
            return Err(Error::FutureRevision {
                requested: revision,
                current: self.rev,
            });
        }
        if revision <= self.compacted {
            return Ok(self.compacted);
        }
        // A row is history once a newer row of its key at or below `revision` exists, and that
        // newer row names it as `prev_rev`; deletion tombstones at or below go too.
        let rows: Vec<(Revision, Revision, bool)> = self
            .log
            .range(self.compacted + 1..=revision)
            .map(|(&rev, row)| (rev, row.prev_rev, row.deleted))
            .collect();
        for (rev, prev_rev, deleted) in rows {
            if prev_rev > 0 {
                self.remove_row(prev_rev);
            }
            if deleted {
                self.remove_row(rev);
            }
        }
        self.compacted = revision;
        Ok(revision)
    }
}

#[async_trait::async_trait]
impl History for Shared {
    async fn history(&self, prefix: &str, after: Revision, limit: usize) -> Result<HistoryPage> {
        let state = self.state.lock();
        if after < state.compacted {
            return Err(Error::Compacted {
                requested: after,
                compacted: state.compacted,
            });
        }
        let mut events = Vec::new();
        for (&rev, row) in state.log.range(after + 1..) {
            if !row.key.starts_with(prefix) {
                continue;
            }
            events.push(state.event(rev, row));
            if events.len() >= limit {
                let complete = rev == state.rev;
                return Ok(HistoryPage {
                    events,
                    upto: rev,
                    complete,
                });
            }
        }
        Ok(HistoryPage {
            events,
            upto: state.rev,
            complete: true,
        })
    }
}

impl Shared {
    fn publish(&self, commit: Commit) {
        // No receiver is not an error: nobody watches.
        let _ = self.events.send(Arc::new(commit));
    }
}

#[async_trait::async_trait]
impl Backend for MemoryBackend {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.shared.state.lock().rev)
    }

    async fn get(&self, key: &str, revision: Revision) -> Result<(Revision, Option<KeyValue>)> {
        let state = self.shared.state.lock();
        let at = state.check_read_revision(revision)?;
        Ok((at, state.at(key, at)))
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: &str,
        limit: i64,
        revision: Revision,
    ) -> Result<ListResult> {
        let state = self.shared.state.lock();
        let at = state.check_read_revision(revision)?;
        let start = if start_after >= prefix {
            Bound::Excluded(start_after)
        } else {
            Bound::Included(prefix)
        };
        let limit = usize::try_from(limit).ok().filter(|&l| l > 0);
        let mut kvs = Vec::new();
        let mut more = false;
        for key in state
            .keys
            .range::<str, _>((start, Bound::Unbounded))
            .map(|(key, _)| key)
            .take_while(|key| key.starts_with(prefix))
        {
            if let Some(kv) = state.at(key, at) {
                if limit.is_some_and(|l| kvs.len() >= l) {
                    more = true;
                    break;
                }
                kvs.push(kv);
            }
        }
        Ok(ListResult {
            revision: at,
            kvs,
            more,
        })
    }

    async fn count(&self, prefix: &str) -> Result<(Revision, i64)> {
        let state = self.shared.state.lock();
        let count = state
            .keys
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .map(|(key, _)| key)
            .take_while(|key| key.starts_with(prefix))
            .filter(|key| state.live(key).is_some())
            .count();
        Ok((state.rev, count as i64))
    }

    async fn create(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<Revision> {
        let commit = self.shared.state.lock().create(key, value, ttl).map(|c| {
            let rev = c.revision;
            self.shared.publish(c);
            rev
        });
        if ttl.is_some() && commit.is_ok() {
            self.start_expiry();
            self.shared.expiry_wake.notify_one();
        }
        commit
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Revision,
        ttl: Option<Duration>,
    ) -> Result<Revision> {
        let commit = self
            .shared
            .state
            .lock()
            .update(key, value, expected, ttl)
            .map(|c| {
                let rev = c.revision;
                self.shared.publish(c);
                rev
            });
        if ttl.is_some() && commit.is_ok() {
            self.start_expiry();
            self.shared.expiry_wake.notify_one();
        }
        commit
    }

    async fn delete(&self, key: &str, expected: Revision) -> Result<(Revision, KeyValue)> {
        let mut state = self.shared.state.lock();
        let (kv, commit) = state.delete(key, expected)?;
        let rev = commit.revision;
        self.shared.publish(commit);
        Ok((rev, kv))
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        let live = self.shared.events.subscribe();
        Ok(watch::stream(
            self.shared.clone(),
            live,
            prefix,
            after,
            self.shared.cancel.clone(),
        ))
    }

    async fn compact(&self, revision: Revision) -> Result<Revision> {
        self.shared.state.lock().compact(revision)
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        Ok(self.shared.state.lock().compacted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test(start_paused = true)]
    async fn ttl_follows_tokio_time_so_paused_tests_need_not_sleep() {
        let store = MemoryBackend::new();
        let created = store
            .create(
                "/leases/a",
                Bytes::from_static(b"x"),
                Some(Duration::from_secs(3600)),
            )
            .await
            .unwrap();
        let mut watch = store.watch("/leases/", created).await.unwrap();
        tokio::time::advance(Duration::from_secs(3599)).await;
        assert!(store.get("/leases/a", 0).await.unwrap().1.is_some());
        let batch = tokio::time::timeout(Duration::from_secs(5), watch.next())
            .await
            .expect("expired within the TTL")
            .unwrap()
            .unwrap();
        assert_eq!(batch.events.len(), 1);
        assert_eq!(batch.events[0].kind, EventType::Delete);
        assert!(store.get("/leases/a", 0).await.unwrap().1.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn quiet_watch_gets_a_progress_notification_when_the_store_moves_elsewhere() {
        let store = MemoryBackend::new();
        let mut watch = store.watch("/registry/pods/", 0).await.unwrap();
        let rev = store
            .create("/registry/nodes/n1", Bytes::from_static(b"x"), None)
            .await
            .unwrap();
        let batch = tokio::time::timeout(watch::PROGRESS_INTERVAL * 2, watch.next())
            .await
            .expect("a progress notification")
            .unwrap()
            .unwrap();
        assert!(batch.events.is_empty());
        assert_eq!(batch.revision, rev);
    }

    #[tokio::test]
    async fn watch_ends_when_the_backend_is_dropped() {
        let store = MemoryBackend::new();
        let mut watch = store.watch("/", 0).await.unwrap();
        drop(store);
        assert!(watch.next().await.is_none());
    }
}
