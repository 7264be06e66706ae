//! ferrokube-store: the cluster's datastore.
//!
//! The whole store is one small trait, [`Backend`], shaped like kine's: a revisioned key-value
//! space where every write gets the next cluster-wide revision, reads can be served at a past
//! revision, and a watch replays every change after a revision. The API server keeps objects
//! under `/registry/<resource>/<namespace>/<name>`; the store knows nothing about objects.
//!
//! Backends are chosen by URL scheme (see [`open`]): `sqlite://PATH` (embedded, the default),
//! `etcd://host:port[,host:port...]` (a real etcd v3 cluster, for HA) and `memory://` (tests).

use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;

mod compactor;
pub mod etcd;
pub mod memory;
pub mod sqlite;
pub mod testing;
mod watch;

pub use compactor::Compactor;

/// A cluster-wide revision. Revisions increase by one per successful write (a TTL expiry is a
/// write too). An empty embedded store is at 0 and its first write gets 1; an empty etcd is at 1.
pub type Revision = i64;

/// One stored key at one revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Bytes,
    /// Revision of the write that created this key (stays the same across updates).
    pub create_revision: Revision,
    /// Revision of the write that produced this value.
    pub mod_revision: Revision,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Create,
    Update,
    Delete,
}

/// One change, as a watch reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: EventType,
    /// The key after the change. For a delete: the key's last value, with `mod_revision` set to
    /// the revision of the delete.
    pub kv: KeyValue,
    /// The value before the change (absent for a create).
    pub prev: Option<KeyValue>,
}

impl Event {
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }
}

/// A batch of events delivered by a watch, in revision order. `revision` is the store revision
/// the batch brings the watcher up to; a batch with no events is a progress notification
/// (nothing under the prefix changed up to `revision`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchBatch {
    pub revision: Revision,
    pub events: Vec<Event>,
}

pub type WatchStream = BoxStream<'static, Result<WatchBatch>>;

/// The result of a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListResult {
    /// The revision the list was read at.
    pub revision: Revision,
    pub kvs: Vec<KeyValue>,
    /// True when the limit cut the list short and more keys follow the last one returned.
    pub more: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("key {key} already exists")]
    KeyExists { key: String },
    #[error("key {key} not found")]
    NotFound { key: String },
    /// The key's revision is not the one the caller expected. `current` is what is stored now
    /// (None if the key is gone) so the caller can retry without a second read.
    #[error("key {key} was modified: expected revision {expected}")]
    Conflict {
        key: String,
        expected: Revision,
        current: Option<KeyValue>,
    },
    /// The requested revision has been compacted away.
    #[error("required revision {requested} has been compacted (compacted up to {compacted})")]
    Compacted {
        requested: Revision,
        compacted: Revision,
    },
    /// The requested revision is newer than anything stored.
    #[error("required revision {requested} is a future revision (current {current})")]
    FutureRevision {
        requested: Revision,
        current: Revision,
    },
    #[error("invalid datastore endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint { endpoint: String, reason: String },
    /// The backend failed; the operation may or may not have happened only if `retryable` is
    /// false. A retryable error guarantees nothing was written.
    #[error("datastore {backend}: {message}")]
    Backend {
        backend: &'static str,
        message: String,
        retryable: bool,
    },
}

impl Error {
    /// Whether trying the same call again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::Backend {
                retryable: true,
                ..
            }
        )
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A revisioned key-value store.
///
/// Every write that succeeds returns the revision it was given; the write is durable (it
/// survives a crash of this process and, for sqlite, of the machine) before the call returns.
/// Writes are linearizable: revisions order them.
#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    /// The name of the backend for logs and metrics ("sqlite", "etcd", "memory").
    fn name(&self) -> &'static str;

    /// The newest revision in the store (0 for an empty embedded store, 1 for an empty etcd).
    /// Never goes backwards, also across restarts.
    async fn current_revision(&self) -> Result<Revision>;

    /// The key at `revision` (0 = latest). Returns the revision the read was served at and the
    /// key, or None if the key did not exist then. `Compacted` if `revision` is compacted,
    /// `FutureRevision` if it is newer than the store.
    async fn get(&self, key: &str, revision: Revision) -> Result<(Revision, Option<KeyValue>)>;

    /// Keys with the given prefix, in key order, as of `revision` (0 = latest), starting strictly
    /// after `start_after` (empty = from the beginning of the prefix), at most `limit` keys
    /// (0 = no limit). Deleted keys are not returned. `Compacted` / `FutureRevision` as for
    /// [`Backend::get`]. Paginate by listing again at the returned `revision` with `start_after`
    /// set to the last key returned.
    async fn list(
        &self,
        prefix: &str,
        start_after: &str,
        limit: i64,
        revision: Revision,
    ) -> Result<ListResult>;

    /// The number of live keys under `prefix` now, and the revision counted at.
    async fn count(&self, prefix: &str) -> Result<(Revision, i64)>;

    /// Creates `key` if it does not exist. `ttl`: the key is deleted (with a delete event) once
    /// this long has passed since this write. Returns the new revision; `KeyExists` otherwise.
    async fn create(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<Revision>;

    /// Replaces `key` if its mod revision is `expected`. A new `ttl` replaces the old one (None
    /// removes it). Returns the new revision; `Conflict` (with the current value) if the key
    /// changed or is gone.
    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Revision,
        ttl: Option<Duration>,
    ) -> Result<Revision>;

    /// Deletes `key` if its mod revision is `expected` (0 = whatever it is). Returns the revision
    /// of the delete and the key value as it was just before the delete (with its own
    /// `mod_revision`, not the delete's). `NotFound` if absent (whatever `expected` is),
    /// `Conflict` (with the current value) if it changed.
    async fn delete(&self, key: &str, expected: Revision) -> Result<(Revision, KeyValue)>;

    /// Every change under `prefix` with a revision greater than `after`, first the stored history
    /// and then live changes, in order, with no gaps and no duplicates. The stream ends with a
    /// `Compacted` error if `after` is older than the compacted revision (or history is lost while
    /// the watcher lags); the caller then lists again. Dropping the stream cancels the watch.
    ///
    /// `after` equal to the compacted revision (or newer) always works; `after` below it fails.
    /// Batches may also be progress notifications (no events), sent now and then when the store
    /// moved on without a change under `prefix`; a watcher may take `revision` as seen. Every
    /// event of one write arrives in one batch. The stream ends (without an error) when the
    /// backend is dropped.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream>;

    /// Discards history older than `revision`: afterwards reads and watches at revisions below it
    /// fail with `Compacted`; the latest value of every live key is kept, and reads at `revision`
    /// itself still work. Idempotent; compacting to an older revision than already compacted is
    /// a no-op. Returns the compacted revision (the newer of `revision` and the one before).
    /// `FutureRevision` if `revision` is newer than the store.
    async fn compact(&self, revision: Revision) -> Result<Revision>;

    /// The revision up to which history has been compacted (0 = none).
    async fn compacted_revision(&self) -> Result<Revision>;
}

/// The smallest key greater than every key starting with `prefix`, or None when no such key
/// exists (empty prefix, or all bytes 0xff): the exclusive end of a prefix range.
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Opens the backend named by a datastore endpoint URL.
pub async fn open(endpoint: &str) -> Result<std::sync::Arc<dyn Backend>> {
    let invalid = |reason: &str| Error::InvalidEndpoint {
        endpoint: endpoint.to_string(),
        reason: reason.to_string(),
    };
    let (scheme, rest) = endpoint.split_once("://").ok_or_else(|| {
        invalid("expected sqlite://PATH, etcd://HOST:PORT[,HOST:PORT...] or memory://")
    })?;
    match scheme {
        "sqlite" => {
            if rest.is_empty() {
                return Err(invalid("sqlite:// needs a file path"));
            }
            Ok(std::sync::Arc::new(sqlite::SqliteBackend::open(
                std::path::Path::new(rest),
            )?))
        }
        "etcd" | "http" | "https" => {
            let hosts: Vec<String> = rest
                .split(',')
                .filter(|h| !h.is_empty())
                .map(|h| format!("http://{h}"))
                .collect();
            if hosts.is_empty() {
                return Err(invalid("etcd:// needs at least one host:port"));
            }
            Ok(std::sync::Arc::new(
                etcd::EtcdBackend::connect(&hosts).await?,
            ))
        }
        "memory" => Ok(std::sync::Arc::new(memory::MemoryBackend::new())),
        _ => Err(invalid("unknown scheme")),
    }
}
