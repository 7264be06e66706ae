//! The embedded backend: one SQLite file (WAL, `synchronous=FULL`), shaped like kine's log.
//!
//! Layout:
//! - `log`: one row per write (rev, key, create_rev, prev_rev, deleted, value, expires_at).
//!   A delete is a tombstone row; `prev_rev` points at the row a write replaced (0 for a
//!   create), which is how events get their previous value and how compaction finds history.
//! - `live`: each live key and the revision of its latest row, for current reads, counts and
//!   TTL expiry (`expires_at`, absolute unix milliseconds, so expiry survives a restart).
//! - `meta`: the current revision (so revisions never go backwards, even when the newest rows
//!   are compacted or the newest write was a delete), the compacted revision, and how far the
//!   physical deletion of compacted history has got.
//!
//! Every write goes through one writer thread that applies whatever requests are queued in one
//! transaction (group commit: one fsync for many writes) and then answers each caller and
//! publishes the events to watchers. The same thread expires TTL keys (through the normal delete
//! path, so watchers see the deletes) and deletes compacted history in small chunks between
//! batches, so compaction never holds writers up for long. Reads run on a small pool of
//! connections on tokio's blocking threads; WAL lets them read a consistent snapshot while the
//! writer writes.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use tokio::sync::{broadcast, oneshot};
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::watch::{self, Commit, History, HistoryPage};
use crate::{
    Backend, Error, Event, EventType, KeyValue, ListResult, Result, Revision, WatchStream,
    prefix_end,
};

const BACKEND: &str = "sqlite";

/// Most requests applied in one transaction.
const MAX_BATCH: usize = 1000;
/// Most expired keys deleted in one transaction.
const EXPIRY_CHUNK: i64 = 500;
/// Most history rows examined by one compaction transaction.
const COMPACTION_CHUNK: i64 = 1000;
/// Idle read connections kept open.
const MAX_IDLE_READERS: usize = 4;
/// Longest the writer sleeps without looking at the clock (TTL expiry).
const MAX_IDLE_WAIT: Duration = Duration::from_secs(10);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS log (
    rev        INTEGER PRIMARY KEY,
    key        BLOB    NOT NULL,
    create_rev INTEGER NOT NULL,
    prev_rev   INTEGER NOT NULL,
    deleted    INTEGER NOT NULL,
    value      BLOB    NOT NULL,
    expires_at INTEGER
);
CREATE INDEX IF NOT EXISTS log_key_rev ON log (key, rev);
CREATE TABLE IF NOT EXISTS live (
    key        BLOB PRIMARY KEY,
    rev        INTEGER NOT NULL,
    expires_at INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS live_expires_at ON live (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (name, value) VALUES
    ('schema', 1), ('revision', 0), ('compacted', 0), ('compact_cursor', 0);
";

/// A [`Backend`] in one SQLite database file.
pub struct SqliteBackend {
    shared: Arc<Shared>,
    _stop: DropGuard,
}

struct Shared {
    path: PathBuf,
    readers: Mutex<Vec<Connection>>,
    writer: Option<mpsc::Sender<Request>>,
    writer_thread: Option<JoinHandle<()>>,
    events: broadcast::Sender<Arc<Commit>>,
    revision: Arc<AtomicI64>,
    compacted: Arc<AtomicI64>,
    cancel: CancellationToken,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Closing the queue stops the writer once it has answered everything queued.
        drop(self.writer.take());
        if let Some(thread) = self.writer_thread.take()
            && thread.join().is_err()
        {
            tracing::error!(path = %self.path.display(), "sqlite writer thread panicked");
        }
    }
}

fn sql_error(path: &Path, context: &str, err: rusqlite::Error, retryable: bool) -> Error {
    Error::Backend {
        backend: BACKEND,
        message: format!("{}: {context}: {err}", path.display()),
        retryable,
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn expiry_ms(ttl: Option<Duration>) -> Option<i64> {
    ttl.map(|ttl| now_ms().saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)))
}

fn key_of(row: &Row<'_>, idx: usize) -> rusqlite::Result<String> {
    let bytes = row.get_ref(idx)?.as_blob()?;
    String::from_utf8(bytes.to_vec()).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Blob, e.into())
    })
}

fn bytes_of(row: &Row<'_>, idx: usize) -> rusqlite::Result<Bytes> {
    Ok(Bytes::copy_from_slice(row.get_ref(idx)?.as_blob()?))
}

/// Reads columns (rev, key, create_rev, value) starting at `at`.
fn kv_of(row: &Row<'_>, at: usize) -> rusqlite::Result<KeyValue> {
    Ok(KeyValue {
        mod_revision: row.get(at)?,
        key: key_of(row, at + 1)?,
        create_revision: row.get(at + 2)?,
        value: bytes_of(row, at + 3)?,
    })
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.execute_batch("PRAGMA cache_size = -32768; PRAGMA temp_store = MEMORY;")
}

impl SqliteBackend {
    /// Opens (creating if needed, with its parent directories) the database at `path` and
    /// starts its writer thread. Revisions continue after the last write stored; history
    /// compaction interrupted by a crash is finished in the background.
    pub fn open(path: &Path) -> Result<Self> {
        let fail = |context: &str, err: rusqlite::Error| sql_error(path, context, err, false);
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|err| Error::Backend {
                backend: BACKEND,
                message: format!("creating {}: {err}", parent.display()),
                retryable: false,
            })?;
        }
        let conn = Connection::open(path).map_err(|e| fail("open", e))?;
        configure(&conn).map_err(|e| fail("configure", e))?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(|e| fail("enable WAL", e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Backend {
                backend: BACKEND,
                message: format!("{}: journal_mode is {mode}, WAL needed", path.display()),
                retryable: false,
            });
        }
        conn.execute_batch("PRAGMA synchronous = FULL;")
            .map_err(|e| fail("set synchronous", e))?;
        conn.execute_batch(SCHEMA)
            .map_err(|e| fail("create schema", e))?;
        let meta = |name: &str| -> Result<i64> {
            conn.query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .map_err(|e| fail("read meta", e))
        };
        let max_log: Option<i64> = conn
            .query_row("SELECT max(rev) FROM log", [], |r| r.get(0))
            .map_err(|e| fail("read log", e))?;
        let revision = meta("revision")?.max(max_log.unwrap_or(0));
        let compacted = meta("compacted")?;
        let compact_cursor = meta("compact_cursor")?;
        let next_expiry: Option<i64> = conn
            .query_row(
                "SELECT min(expires_at) FROM live WHERE expires_at IS NOT NULL",
                [],
                |r| r.get(0),
            )
            .map_err(|e| fail("read expiry", e))?;

        let (events, _) = broadcast::channel(watch::CHANNEL_CAPACITY);
        let revision_cell = Arc::new(AtomicI64::new(revision));
        let compacted_cell = Arc::new(AtomicI64::new(compacted));
        let (queue, requests) = mpsc::channel();
        let writer = Writer {
            path: path.to_path_buf(),
            conn,
            revision,
            compacted,
            compact_cursor,
            compaction_waiters: Vec::new(),
            next_expiry,
            events: events.clone(),
            published_revision: revision_cell.clone(),
            published_compacted: compacted_cell.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".to_string())
            .spawn(move || writer.run(requests))
            .map_err(|err| Error::Backend {
                backend: BACKEND,
                message: format!("{}: starting writer thread: {err}", path.display()),
                retryable: false,
            })?;
        let cancel = CancellationToken::new();
        let shared = Arc::new(Shared {
            path: path.to_path_buf(),
            readers: Mutex::new(Vec::new()),
            writer: Some(queue),
            writer_thread: Some(thread),
            events,
            revision: revision_cell,
            compacted: compacted_cell,
            cancel: cancel.clone(),
        });
        Ok(SqliteBackend {
            shared,
            _stop: cancel.drop_guard(),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Writes

enum Op {
    Create {
        key: String,
        value: Bytes,
        ttl: Option<Duration>,
    },
    Update {
        key: String,
        value: Bytes,
        expected: Revision,
        ttl: Option<Duration>,
    },
    Delete {
        key: String,
        expected: Revision,
    },
    /// Raise the compacted revision; answered once the history below it is physically gone.
    Compact {
        revision: Revision,
    },
}

enum Reply {
    Revision(Revision),
    Deleted(Revision, KeyValue),
}

struct Request {
    op: Op,
    reply: oneshot::Sender<Result<Reply>>,
}

struct Writer {
    path: PathBuf,
    conn: Connection,
    /// The newest revision written (including the open transaction's writes).
    revision: Revision,
    compacted: Revision,
    /// History rows up to here have been checked for deletion.
    compact_cursor: Revision,
    compaction_waiters: Vec<(Revision, oneshot::Sender<Result<Reply>>)>,
    /// Earliest TTL deadline (unix ms) there may be, None if no key has a TTL.
    next_expiry: Option<i64>,
    events: broadcast::Sender<Arc<Commit>>,
    published_revision: Arc<AtomicI64>,
    published_compacted: Arc<AtomicI64>,
}

/// What applying one request in the open transaction produced.
type Applied = Result<(Reply, Vec<Event>)>;

impl Writer {
    fn run(mut self, requests: mpsc::Receiver<Request>) {
        loop {
            let compaction_pending = self.compact_cursor < self.compacted;
            let wait = if compaction_pending {
                Some(Duration::ZERO)
            } else {
                self.next_expiry.map(|at| {
                    Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0))
                        .min(MAX_IDLE_WAIT)
                })
            };
            let first = match wait {
                None => match requests.recv() {
                    Ok(request) => Some(request),
                    Err(_) => break,
                },
                Some(wait) => match requests.recv_timeout(wait) {
                    Ok(request) => Some(request),
                    Err(mpsc::RecvTimeoutError::Timeout) => None,
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                },
            };
            let mut batch: Vec<Request> = first.into_iter().collect();
            while batch.len() < MAX_BATCH {
                match requests.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
            let expiry_due = self.next_expiry.is_some_and(|at| at <= now_ms());
            if !batch.is_empty() || expiry_due {
                self.run_batch(batch, expiry_due);
            }
            if self.compact_cursor < self.compacted {
                self.compaction_chunk();
            }
        }
        if self.compact_cursor < self.compacted {
            tracing::debug!(
                path = %self.path.display(),
                cursor = self.compact_cursor,
                compacted = self.compacted,
                "closing with compaction unfinished; it resumes on the next open"
            );
        }
    }

    fn fail(&self, context: &str, err: rusqlite::Error, retryable: bool) -> Error {
        sql_error(&self.path, context, err, retryable)
    }

    /// Applies `batch` (and, if due, TTL expiry) in one transaction, then answers and publishes.
    fn run_batch(&mut self, batch: Vec<Request>, expiry_due: bool) {
        let start_revision = self.revision;
        let start_compacted = self.compacted;
        let mut applied: Vec<Applied> = Vec::with_capacity(batch.len());
        let mut events = Vec::new();
        let outcome = (|| -> rusqlite::Result<()> {
            self.conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
            if expiry_due {
                events.extend(self.expire()?);
            }
            for request in &batch {
                let result = self.apply(&request.op)?;
                applied.push(result);
            }
            if self.revision != start_revision {
                self.conn
                    .prepare_cached("UPDATE meta SET value = ?1 WHERE name = 'revision'")?
                    .execute([self.revision])?;
            }
            if self.compacted != start_compacted {
                self.conn
                    .prepare_cached("UPDATE meta SET value = ?1 WHERE name = 'compacted'")?
                    .execute([self.compacted])?;
            }
            Ok(())
        })();
        let outcome = outcome
            .map_err(|e| self.fail("write", e, true))
            .and_then(|()| {
                self.conn
                    .prepare_cached("COMMIT")
                    .and_then(|mut s| s.execute([]))
                    .map(|_| ())
                    // The commit may or may not have reached the disk.
                    .map_err(|e| self.fail("commit", e, false))
            });
        if let Err(err) = outcome {
            tracing::error!(path = %self.path.display(), error = %err, "sqlite write batch failed");
            if !self.conn.is_autocommit() {
                let _ = self.conn.execute_batch("ROLLBACK");
            }
            self.reload_after_failure();
            for request in batch {
                let _ = request.reply.send(Err(match &err {
                    Error::Backend {
                        message, retryable, ..
                    } => Error::Backend {
                        backend: BACKEND,
                        message: message.clone(),
                        retryable: *retryable,
                    },
                    _ => Error::Backend {
                        backend: BACKEND,
                        message: err.to_string(),
                        retryable: false,
                    },
                }));
            }
            return;
        }

        self.published_revision
            .store(self.revision, Ordering::Release);
        self.published_compacted
            .store(self.compacted, Ordering::Release);
        let mut replies = Vec::with_capacity(batch.len());
        for (request, result) in batch.into_iter().zip(applied) {
            let reply = match result {
                Ok((reply, mut evs)) => {
                    events.append(&mut evs);
                    Ok(reply)
                }
                Err(err) => Err(err),
            };
            if let (Op::Compact { .. }, Ok(Reply::Revision(target))) = (&request.op, &reply)
                && self.compact_cursor < *target
            {
                // Answered once the history is physically gone.
                self.compaction_waiters.push((*target, request.reply));
                continue;
            }
            replies.push((request.reply, reply));
        }
        if self.revision != start_revision {
            // Nobody listening is fine.
            let _ = self.events.send(Arc::new(Commit {
                revision: self.revision,
                events,
            }));
        }
        for (reply, result) in replies {
            let _ = reply.send(result);
        }
    }

    /// After a failed transaction the in-memory counters may be ahead of the database.
    fn reload_after_failure(&mut self) {
        let read = |name: &str| -> Option<i64> {
            self.conn
                .query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| {
                    r.get(0)
                })
                .ok()
        };
        if let Some(rev) = read("revision") {
            let max_log: Option<i64> = self
                .conn
                .query_row("SELECT max(rev) FROM log", [], |r| r.get(0))
                .ok()
                .flatten();
            self.revision = rev.max(max_log.unwrap_or(0));
        }
        if let Some(compacted) = read("compacted") {
            self.compacted = compacted;
        }
        // Look at the expiry index again soon.
        self.next_expiry = Some(now_ms());
    }

    /// Applies one request in the open transaction. The outer error is a database failure (the
    /// whole batch fails); the inner one is this request's own answer.
    fn apply(&mut self, op: &Op) -> rusqlite::Result<Applied> {
        Ok(match op {
            Op::Create { key, value, ttl } => self.create(key, value, *ttl)?,
            Op::Update {
                key,
                value,
                expected,
                ttl,
            } => self.update(key, value, *expected, *ttl)?,
            Op::Delete { key, expected } => self.delete(key, *expected)?,
            Op::Compact { revision } => self
                .compact(*revision)
                .map(|r| (Reply::Revision(r), vec![])),
        })
    }

    fn compact(&mut self, revision: Revision) -> Result<Revision> {
        if revision > self.revision {
            return Err(Error::FutureRevision {
                requested: revision,
                current: self.revision,
            });
        }
        self.compacted = self.compacted.max(revision);
        Ok(self.compacted)
    }

    /// The live row of `key`.
    fn live(&self, key: &str) -> rusqlite::Result<Option<KeyValue>> {
        self.conn
            .prepare_cached(
                "SELECT l.rev, l.key, l.create_rev, l.value FROM live k JOIN log l ON l.rev = k.rev \
                 WHERE k.key = ?1",
            )?
            .query_row([key.as_bytes()], |r| kv_of(r, 0))
            .optional()
    }

    fn insert_log(
        &mut self,
        key: &str,
        create_rev: Revision,
        prev_rev: Revision,
        deleted: bool,
        value: &[u8],
        expires_at: Option<i64>,
    ) -> rusqlite::Result<Revision> {
        let rev = self.revision + 1;
        self.conn
            .prepare_cached(
                "INSERT INTO log (rev, key, create_rev, prev_rev, deleted, value, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                rev,
                key.as_bytes(),
                if create_rev == 0 { rev } else { create_rev },
                prev_rev,
                deleted,
                value,
                expires_at
            ])?;
        self.revision = rev;
        if let Some(at) = expires_at {
            self.next_expiry = Some(self.next_expiry.map_or(at, |next| next.min(at)));
        }
        Ok(rev)
    }

    fn create(
        &mut self,
        key: &str,
        value: &Bytes,
        ttl: Option<Duration>,
    ) -> rusqlite::Result<Applied> {
        let exists = self
            .conn
            .prepare_cached("SELECT 1 FROM live WHERE key = ?1")?
            .exists([key.as_bytes()])?;
        if exists {
            return Ok(Err(Error::KeyExists {
                key: key.to_string(),
            }));
        }
        let expires_at = expiry_ms(ttl);
        let rev = self.insert_log(key, 0, 0, false, value, expires_at)?;
        self.conn
            .prepare_cached("INSERT INTO live (key, rev, expires_at) VALUES (?1, ?2, ?3)")?
            .execute(params![key.as_bytes(), rev, expires_at])?;
        let kv = KeyValue {
            key: key.to_string(),
            value: value.clone(),
            create_revision: rev,
            mod_revision: rev,
        };
        Ok(Ok((
            Reply::Revision(rev),
            vec![Event {
                kind: EventType::Create,
                kv,
                prev: None,
            }],
        )))
    }

    fn update(
        &mut self,
        key: &str,
        value: &Bytes,
        expected: Revision,
        ttl: Option<Duration>,
    ) -> rusqlite::Result<Applied> {
        let current = self.live(key)?;
        let prev = match current {
            Some(prev) if prev.mod_revision == expected => prev,
            current => {
                return Ok(Err(Error::Conflict {
                    key: key.to_string(),
                    expected,
                    current,
                }));
            }
        };
        let expires_at = expiry_ms(ttl);
        let rev = self.insert_log(
            key,
            prev.create_revision,
            prev.mod_revision,
            false,
            value,
            expires_at,
        )?;
        self.conn
            .prepare_cached("UPDATE live SET rev = ?2, expires_at = ?3 WHERE key = ?1")?
            .execute(params![key.as_bytes(), rev, expires_at])?;
        let kv = KeyValue {
            key: key.to_string(),
            value: value.clone(),
            create_revision: prev.create_revision,
            mod_revision: rev,
        };
        Ok(Ok((
            Reply::Revision(rev),
            vec![Event {
                kind: EventType::Update,
                kv,
                prev: Some(prev),
            }],
        )))
    }

    fn delete(&mut self, key: &str, expected: Revision) -> rusqlite::Result<Applied> {
        let Some(prev) = self.live(key)? else {
            return Ok(Err(Error::NotFound {
                key: key.to_string(),
            }));
        };
        if expected != 0 && prev.mod_revision != expected {
            return Ok(Err(Error::Conflict {
                key: key.to_string(),
                expected,
                current: Some(prev),
            }));
        }
        let rev = self.insert_log(
            key,
            prev.create_revision,
            prev.mod_revision,
            true,
            &[],
            None,
        )?;
        self.conn
            .prepare_cached("DELETE FROM live WHERE key = ?1")?
            .execute([key.as_bytes()])?;
        let kv = KeyValue {
            mod_revision: rev,
            ..prev.clone()
        };
        Ok(Ok((
            Reply::Deleted(rev, prev.clone()),
            vec![Event {
                kind: EventType::Delete,
                kv,
                prev: Some(prev),
            }],
        )))
    }

    /// Deletes keys whose TTL has passed, in the open transaction.
    fn expire(&mut self) -> rusqlite::Result<Vec<Event>> {
        let now = now_ms();
        let expired: Vec<(String, Revision)> = self
            .conn
            .prepare_cached(
                "SELECT key, rev FROM live WHERE expires_at IS NOT NULL AND expires_at <= ?1 \
                 ORDER BY expires_at LIMIT ?2",
            )?
            .query_map(params![now, EXPIRY_CHUNK], |r| {
                Ok((key_of(r, 0)?, r.get(1)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut events = Vec::new();
        for (key, rev) in &expired {
            if let Ok((_, mut evs)) = self.delete(key, *rev)? {
                events.append(&mut evs);
            }
        }
        self.next_expiry = self.conn.query_row(
            "SELECT min(expires_at) FROM live WHERE expires_at IS NOT NULL",
            [],
            |r| r.get(0),
        )?;
        if !expired.is_empty() {
            tracing::debug!(path = %self.path.display(), count = expired.len(), "expired keys");
        }
        Ok(events)
    }

    /// Deletes one chunk of compacted history in its own transaction: for every row at or
    /// below the compacted revision, the row it replaced, and the row itself if a tombstone.
    /// What is left at or below it is the latest value of each key that was live then.
    fn compaction_chunk(&mut self) {
        let target = self.compacted;
        let result = (|| -> rusqlite::Result<Revision> {
            self.conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
            let rows: Vec<(Revision, Revision, bool)> = self
                .conn
                .prepare_cached(
                    "SELECT rev, prev_rev, deleted FROM log WHERE rev > ?1 AND rev <= ?2 \
                     ORDER BY rev LIMIT ?3",
                )?
                .query_map(
                    params![self.compact_cursor, target, COMPACTION_CHUNK],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )?
                .collect::<rusqlite::Result<_>>()?;
            {
                let mut remove = self.conn.prepare_cached("DELETE FROM log WHERE rev = ?1")?;
                for &(rev, prev_rev, deleted) in &rows {
                    if prev_rev > 0 {
                        remove.execute([prev_rev])?;
                    }
                    if deleted {
                        remove.execute([rev])?;
                    }
                }
            }
            let cursor = if (rows.len() as i64) < COMPACTION_CHUNK {
                target
            } else {
                rows.last().map_or(target, |r| r.0)
            };
            self.conn
                .prepare_cached("UPDATE meta SET value = ?1 WHERE name = 'compact_cursor'")?
                .execute([cursor])?;
            self.conn.prepare_cached("COMMIT")?.execute([])?;
            Ok(cursor)
        })();
        match result {
            Ok(cursor) => {
                self.compact_cursor = cursor;
                let (done, waiting): (Vec<_>, Vec<_>) =
                    std::mem::take(&mut self.compaction_waiters)
                        .into_iter()
                        .partition(|(rev, _)| *rev <= cursor);
                self.compaction_waiters = waiting;
                for (rev, reply) in done {
                    let _ = reply.send(Ok(Reply::Revision(rev)));
                }
                if cursor == target {
                    tracing::debug!(path = %self.path.display(), revision = target, "compaction done");
                }
            }
            Err(err) => {
                if !self.conn.is_autocommit() {
                    let _ = self.conn.execute_batch("ROLLBACK");
                }
                let err = self.fail("compaction", err, true);
                tracing::error!(error = %err, "sqlite compaction chunk failed");
                // Give up on this run; the next compact call or open retries.
                self.compact_cursor = self.compacted;
                for (_, reply) in std::mem::take(&mut self.compaction_waiters) {
                    let _ = reply.send(Err(Error::Backend {
                        backend: BACKEND,
                        message: err.to_string(),
                        retryable: true,
                    }));
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reads

impl Shared {
    fn open_reader(&self) -> Result<Connection> {
        let conn = Connection::open(&self.path)
            .map_err(|e| sql_error(&self.path, "open reader", e, true))?;
        configure(&conn)
            .and_then(|()| conn.execute_batch("PRAGMA query_only = ON;"))
            .map_err(|e| sql_error(&self.path, "configure reader", e, true))?;
        Ok(conn)
    }

    /// Runs `f` in a read transaction (one consistent snapshot) on a blocking thread, with a
    /// connection from the pool.
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>, &Path) -> Result<T> + Send + 'static,
    {
        let idle = self.readers.lock().pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.open_reader()?,
        };
        let path = self.path.clone();
        let (conn, result) = tokio::task::spawn_blocking(move || {
            let mut conn = conn;
            let result = conn
                .transaction()
                .map_err(|e| sql_error(&path, "begin read", e, true))
                .and_then(|tx| f(&tx, &path));
            (conn, result)
        })
        .await
        .map_err(|err| Error::Backend {
            backend: BACKEND,
            message: format!("read task failed: {err}"),
            retryable: true,
        })?;
        let mut idle = self.readers.lock();
        if idle.len() < MAX_IDLE_READERS && conn.is_autocommit() {
            idle.push(conn);
        }
        result
    }

    async fn write(&self, op: Op) -> Result<Reply> {
        let (reply, answer) = oneshot::channel();
        let closed = || Error::Backend {
            backend: BACKEND,
            message: format!("{}: writer stopped", self.path.display()),
            retryable: false,
        };
        self.writer
            .as_ref()
            .ok_or_else(closed)?
            .send(Request { op, reply })
            .map_err(|_| Error::Backend {
                backend: BACKEND,
                message: format!("{}: writer stopped", self.path.display()),
                retryable: true,
            })?;
        answer.await.map_err(|_| closed())?
    }
}

/// (current revision, compacted revision) in the read's snapshot.
fn read_meta(tx: &Transaction<'_>) -> rusqlite::Result<(Revision, Revision)> {
    tx.prepare_cached(
        "SELECT (SELECT value FROM meta WHERE name = 'revision'), \
                (SELECT value FROM meta WHERE name = 'compacted')",
    )?
    .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
}

/// The revision a read at `revision` (0 = latest) is served at.
fn read_revision(tx: &Transaction<'_>, path: &Path, revision: Revision) -> Result<Revision> {
    let (current, compacted) = read_meta(tx).map_err(|e| sql_error(path, "read meta", e, true))?;
    if revision <= 0 {
        Ok(current)
    } else if revision > current {
        Err(Error::FutureRevision {
            requested: revision,
            current,
        })
    } else if revision < compacted {
        Err(Error::Compacted {
            requested: revision,
            compacted,
        })
    } else {
        Ok(revision)
    }
}

fn get_at(
    tx: &Transaction<'_>,
    key: &str,
    revision: Revision,
    latest: bool,
) -> rusqlite::Result<Option<KeyValue>> {
    if latest {
        tx.prepare_cached(
            "SELECT l.rev, l.key, l.create_rev, l.value FROM live k JOIN log l ON l.rev = k.rev \
             WHERE k.key = ?1",
        )?
        .query_row([key.as_bytes()], |r| kv_of(r, 0))
        .optional()
    } else {
        let row = tx
            .prepare_cached(
                "SELECT rev, key, create_rev, value, deleted FROM log \
                 WHERE key = ?1 AND rev <= ?2 ORDER BY rev DESC LIMIT 1",
            )?
            .query_row(params![key.as_bytes(), revision], |r| {
                Ok((kv_of(r, 0)?, r.get::<_, bool>(4)?))
            })
            .optional()?;
        Ok(row.and_then(|(kv, deleted)| (!deleted).then_some(kv)))
    }
}

fn list_at(
    tx: &Transaction<'_>,
    prefix: &str,
    start_after: &str,
    limit: i64,
    revision: Revision,
    latest: bool,
) -> rusqlite::Result<ListResult> {
    let lower: Vec<u8> = if start_after >= prefix {
        let mut k = start_after.as_bytes().to_vec();
        k.push(0);
        k
    } else {
        prefix.as_bytes().to_vec()
    };
    let upper = prefix_end(prefix.as_bytes());
    let upper_sql = if upper.is_some() {
        "AND l.key < ?2"
    } else {
        "AND ?2 IS NULL"
    };
    let sql = if latest {
        format!(
            "SELECT l.rev, l.key, l.create_rev, l.value FROM live k JOIN log l ON l.rev = k.rev \
             WHERE k.key >= ?1 {} ORDER BY k.key LIMIT ?3",
            upper_sql.replace("l.key", "k.key")
        )
    } else {
        format!(
            "SELECT l.rev, l.key, l.create_rev, l.value FROM log l \
             WHERE l.key >= ?1 {upper_sql} AND l.deleted = 0 AND l.rev = \
               (SELECT max(x.rev) FROM log x WHERE x.key = l.key AND x.rev <= ?4) \
             ORDER BY l.key LIMIT ?3"
        )
    };
    let fetch = if limit > 0 {
        limit.saturating_add(1)
    } else {
        -1
    };
    let mut stmt = tx.prepare_cached(&sql)?;
    let mut kvs: Vec<KeyValue> = if latest {
        stmt.query_map(params![lower, upper, fetch], |r| kv_of(r, 0))?
            .collect::<rusqlite::Result<_>>()?
    } else {
        stmt.query_map(params![lower, upper, fetch, revision], |r| kv_of(r, 0))?
            .collect::<rusqlite::Result<_>>()?
    };
    let more = limit > 0 && kvs.len() as i64 > limit;
    if more {
        kvs.truncate(limit as usize);
    }
    Ok(ListResult {
        revision,
        kvs,
        more,
    })
}

fn history_page(
    tx: &Transaction<'_>,
    prefix: &str,
    after: Revision,
    limit: usize,
) -> rusqlite::Result<std::result::Result<HistoryPage, (Revision, Revision)>> {
    let (current, compacted) = read_meta(tx)?;
    if after < compacted {
        return Ok(Err((after, compacted)));
    }
    let lower = prefix.as_bytes();
    let upper = prefix_end(lower);
    // NOT INDEXED: walk the log by revision (the primary key) rather than by key, since a watch
    // usually starts at a recent revision.
    let sql = format!(
        "SELECT l.rev, l.key, l.create_rev, l.value, l.prev_rev, l.deleted, \
                p.rev, p.key, p.create_rev, p.value \
         FROM log AS l NOT INDEXED LEFT JOIN log AS p ON p.rev = l.prev_rev \
         WHERE l.rev > ?1 AND l.key >= ?2 {} ORDER BY l.rev LIMIT ?4",
        if upper.is_some() {
            "AND l.key < ?3"
        } else {
            "AND ?3 IS NULL"
        }
    );
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let events: Vec<Event> = tx
        .prepare_cached(&sql)?
        .query_map(params![after, lower, upper, limit], |r| {
            let kv = kv_of(r, 0)?;
            let prev_rev: Revision = r.get(4)?;
            let deleted: bool = r.get(5)?;
            let prev = match r.get::<_, Option<Revision>>(6)? {
                Some(_) => Some(kv_of(r, 6)?),
                None => None,
            };
            Ok(if deleted {
                let kv = KeyValue {
                    mod_revision: kv.mod_revision,
                    create_revision: kv.create_revision,
                    key: kv.key,
                    value: prev.as_ref().map(|p| p.value.clone()).unwrap_or_default(),
                };
                Event {
                    kind: EventType::Delete,
                    kv,
                    prev,
                }
            } else {
                Event {
                    kind: if prev_rev == 0 {
                        EventType::Create
                    } else {
                        EventType::Update
                    },
                    kv,
                    prev,
                }
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let full = events.len() as i64 >= limit;
    let last = events.last().map(Event::revision);
    Ok(Ok(match (full, last) {
        (true, Some(last)) if last < current => HistoryPage {
            events,
            upto: last,
            complete: false,
        },
        _ => HistoryPage {
            events,
            upto: current,
            complete: true,
        },
    }))
}

#[async_trait::async_trait]
impl History for Shared {
    async fn history(&self, prefix: &str, after: Revision, limit: usize) -> Result<HistoryPage> {
        let prefix = prefix.to_string();
        self.read(move |tx, path| {
            history_page(tx, &prefix, after, limit)
                .map_err(|e| sql_error(path, "read history", e, true))?
                .map_err(|(requested, compacted)| Error::Compacted {
                    requested,
                    compacted,
                })
        })
        .await
    }
}

#[async_trait::async_trait]
impl Backend for SqliteBackend {
    fn name(&self) -> &'static str {
        BACKEND
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.shared.revision.load(Ordering::Acquire))
    }

    async fn get(&self, key: &str, revision: Revision) -> Result<(Revision, Option<KeyValue>)> {
        let key = key.to_string();
        self.shared
            .read(move |tx, path| {
                let at = read_revision(tx, path, revision)?;
                let kv = get_at(tx, &key, at, revision <= 0)
                    .map_err(|e| sql_error(path, "get", e, true))?;
                Ok((at, kv))
            })
            .await
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: &str,
        limit: i64,
        revision: Revision,
    ) -> Result<ListResult> {
        let prefix = prefix.to_string();
        let start_after = start_after.to_string();
        self.shared
            .read(move |tx, path| {
                let at = read_revision(tx, path, revision)?;
                list_at(tx, &prefix, &start_after, limit, at, revision <= 0)
                    .map_err(|e| sql_error(path, "list", e, true))
            })
            .await
    }

    async fn count(&self, prefix: &str) -> Result<(Revision, i64)> {
        let prefix = prefix.to_string();
        self.shared
            .read(move |tx, path| {
                let fail = |e| sql_error(path, "count", e, true);
                let (current, _) = read_meta(tx).map_err(fail)?;
                let upper = prefix_end(prefix.as_bytes());
                let sql = if upper.is_some() {
                    "SELECT count(*) FROM live WHERE key >= ?1 AND key < ?2"
                } else {
                    "SELECT count(*) FROM live WHERE key >= ?1 AND ?2 IS NULL"
                };
                let count: i64 = tx
                    .prepare_cached(sql)
                    .and_then(|mut s| s.query_row(params![prefix.as_bytes(), upper], |r| r.get(0)))
                    .map_err(fail)?;
                Ok((current, count))
            })
            .await
    }

    async fn create(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<Revision> {
        match self
            .shared
            .write(Op::Create {
                key: key.to_string(),
                value,
                ttl,
            })
            .await?
        {
            Reply::Revision(rev) | Reply::Deleted(rev, _) => Ok(rev),
        }
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Revision,
        ttl: Option<Duration>,
    ) -> Result<Revision> {
        match self
            .shared
            .write(Op::Update {
                key: key.to_string(),
                value,
                expected,
                ttl,
            })
            .await?
        {
            Reply::Revision(rev) | Reply::Deleted(rev, _) => Ok(rev),
        }
    }

    async fn delete(&self, key: &str, expected: Revision) -> Result<(Revision, KeyValue)> {
        match self
            .shared
            .write(Op::Delete {
                key: key.to_string(),
                expected,
            })
            .await?
        {
            Reply::Deleted(rev, kv) => Ok((rev, kv)),
            Reply::Revision(rev) => Err(Error::Backend {
                backend: BACKEND,
                message: format!("delete of {key} at {rev} returned no value"),
                retryable: false,
            }),
        }
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
        if revision <= self.shared.compacted.load(Ordering::Acquire) {
            return Ok(self.shared.compacted.load(Ordering::Acquire));
        }
        match self.shared.write(Op::Compact { revision }).await? {
            Reply::Revision(rev) | Reply::Deleted(rev, _) => Ok(rev),
        }
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        Ok(self.shared.compacted.load(Ordering::Acquire))
    }
}
