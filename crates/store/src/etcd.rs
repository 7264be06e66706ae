//! The etcd v3 backend, for HA: every call maps onto one etcd request, as kube-apiserver's own
//! etcd3 storage does (creates and conditional updates/deletes are transactions comparing the
//! key's create/mod revision). etcd revisions are the store's revisions.

use std::time::Duration;

use bytes::Bytes;
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, DeleteOptions, EventType as EtcdEventType,
    GetOptions, PutOptions, Txn, TxnOp, TxnOpResponse, WatchOptions,
};
use futures::StreamExt;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::{
    Backend, Error, Event, EventType, KeyValue, ListResult, Result, Revision, WatchBatch,
    WatchStream, prefix_end,
};

const BACKEND: &str = "etcd";

const COMPACTED: &str = "required revision has been compacted";
const FUTURE: &str = "required revision is a future revision";

/// Leases are reused for keys with the same TTL for up to this share of the TTL (capped at a
/// minute), as kube-apiserver does, so a burst of TTL writes does not grant a lease per write.
/// A key may thus live up to that much longer than asked, never shorter.
const LEASE_REUSE_SHARE: f64 = 0.05;
const LEASE_REUSE_MAX_SECS: i64 = 60;

/// A [`Backend`] on a real etcd v3 cluster.
pub struct EtcdBackend {
    client: Client,
    endpoints: String,
    /// The last lease granted: (id, when it expires).
    lease: Mutex<Option<(i64, Instant)>>,
    /// The newest compacted revision seen, a lower bound for the search in
    /// [`Backend::compacted_revision`].
    known_compacted: std::sync::atomic::AtomicI64,
}

/// Which kind of call failed, to judge whether retrying is safe.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Call {
    Read,
    Write,
}

impl EtcdBackend {
    /// Connects to etcd at `endpoints` (`http://host:port`). The connection is made lazily and
    /// re-made on failure by the client, so this fails only on malformed endpoints.
    pub async fn connect(endpoints: &[String]) -> Result<Self> {
        let joined = endpoints.join(",");
        let options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(10))
            .with_require_leader(true);
        let client = Client::connect(endpoints, Some(options))
            .await
            .map_err(|err| Error::InvalidEndpoint {
                endpoint: joined.clone(),
                reason: err.to_string(),
            })?;
        Ok(EtcdBackend {
            client,
            endpoints: joined,
            lease: Mutex::new(None),
            known_compacted: std::sync::atomic::AtomicI64::new(0),
        })
    }

    fn error(&self, err: etcd_client::Error, call: Call) -> Error {
        let retryable = match &err {
            etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => true,
            etcd_client::Error::GRpcStatus(status) => {
                let message = status.message();
                match status.code() as i32 {
                    // Refused before it reached raft.
                    tonic_code::RESOURCE_EXHAUSTED => true,
                    tonic_code::UNAVAILABLE => {
                        call == Call::Read
                            || message.contains("no leader")
                            || message.contains("transport error")
                            || message.contains("connection refused")
                            || message.contains("tcp connect error")
                    }
                    tonic_code::DEADLINE_EXCEEDED | tonic_code::ABORTED => call == Call::Read,
                    _ => false,
                }
            }
            _ => false,
        };
        Error::Backend {
            backend: BACKEND,
            message: format!("{}: {err}", self.endpoints),
            retryable,
        }
    }

    /// Turns etcd's revision errors into ours; everything else into a backend error.
    async fn read_error(&self, err: etcd_client::Error, requested: Revision) -> Error {
        let text = err.to_string();
        if text.contains(COMPACTED) {
            let compacted = self.compacted_revision().await.unwrap_or(requested + 1);
            return Error::Compacted {
                requested,
                compacted,
            };
        }
        if text.contains(FUTURE) {
            let current = self.current_revision().await.unwrap_or(0);
            return Error::FutureRevision { requested, current };
        }
        self.error(err, Call::Read)
    }

    /// A lease for a key that must expire after `ttl`.
    async fn lease_for(&self, ttl: Duration) -> Result<i64> {
        let ttl_secs = i64::try_from(ttl.as_secs())
            .unwrap_or(i64::MAX / 2)
            .saturating_add(i64::from(ttl.subsec_nanos() > 0))
            .max(1);
        let reuse = ((ttl_secs as f64 * LEASE_REUSE_SHARE) as i64).min(LEASE_REUSE_MAX_SECS);
        let mut last = self.lease.lock().await;
        let now = Instant::now();
        if let Some((id, expires)) = *last {
            let valid = now + Duration::from_secs(ttl_secs as u64) < expires;
            let sufficient = now + Duration::from_secs((ttl_secs + reuse) as u64) > expires;
            if valid && sufficient {
                return Ok(id);
            }
        }
        let granted = self
            .client
            .lease_client()
            .grant(ttl_secs + reuse, None)
            .await
            .map_err(|e| self.error(e, Call::Write))?;
        let granted_ttl = granted.ttl().max(ttl_secs + reuse);
        *last = Some((
            granted.id(),
            now + Duration::from_secs(u64::try_from(granted_ttl).unwrap_or(0)),
        ));
        Ok(granted.id())
    }

    async fn put_options(&self, ttl: Option<Duration>) -> Result<PutOptions> {
        Ok(match ttl {
            Some(ttl) => PutOptions::new().with_lease(self.lease_for(ttl).await?),
            None => PutOptions::new(),
        })
    }
}

/// gRPC status codes as numbered by the gRPC spec (etcd-client does not re-export tonic's
/// `Code`, and this crate does not depend on tonic directly).
mod tonic_code {
    pub(super) const DEADLINE_EXCEEDED: i32 = 4;
    pub(super) const RESOURCE_EXHAUSTED: i32 = 8;
    pub(super) const ABORTED: i32 = 10;
    pub(super) const UNAVAILABLE: i32 = 14;
}

fn convert(kv: &etcd_client::KeyValue) -> Result<KeyValue> {
    let key = kv.key_str().map_err(|err| Error::Backend {
        backend: BACKEND,
        message: format!(
            "key {:?} is not UTF-8: {err}",
            String::from_utf8_lossy(kv.key())
        ),
        retryable: false,
    })?;
    Ok(KeyValue {
        key: key.to_string(),
        value: Bytes::copy_from_slice(kv.value()),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
    })
}

fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> Revision {
    header.map_or(0, |h| h.revision())
}

/// The first key of a `get` inside a failed transaction's else branch.
fn txn_get(responses: Vec<TxnOpResponse>) -> Result<Option<KeyValue>> {
    for response in responses {
        if let TxnOpResponse::Get(get) = response {
            return get.kvs().first().map(convert).transpose();
        }
    }
    Ok(None)
}

struct WatchState {
    stream: etcd_client::WatchStream,
    after: Revision,
    delivered: Revision,
    done: bool,
}

impl WatchState {
    async fn next(&mut self) -> Option<Result<WatchBatch>> {
        loop {
            if self.done {
                return None;
            }
            let response = match self.stream.message().await {
                Ok(Some(response)) => response,
                Ok(None) => {
                    self.done = true;
                    return Some(Err(Error::Backend {
                        backend: BACKEND,
                        message: "watch stream closed by the server".to_string(),
                        retryable: true,
                    }));
                }
                Err(err) => {
                    self.done = true;
                    return Some(Err(Error::Backend {
                        backend: BACKEND,
                        message: format!("watch failed: {err}"),
                        retryable: true,
                    }));
                }
            };
            if response.canceled() {
                self.done = true;
                let compacted = response.compact_revision();
                return Some(Err(if compacted > 0 {
                    Error::Compacted {
                        requested: self.after,
                        compacted,
                    }
                } else {
                    Error::Backend {
                        backend: BACKEND,
                        message: format!("watch canceled: {}", response.cancel_reason()),
                        retryable: true,
                    }
                }));
            }
            if response.events().is_empty() {
                // The creation acknowledgement carries the current revision while history may
                // still be on its way: only later empty responses are progress notifications.
                let revision = header_revision(response.header());
                if response.created() || revision <= self.delivered {
                    continue;
                }
                self.delivered = revision;
                return Some(Ok(WatchBatch {
                    revision,
                    events: Vec::new(),
                }));
            }
            let mut events = Vec::with_capacity(response.events().len());
            for event in response.events() {
                let (Some(kv), prev) = (event.kv(), event.prev_kv()) else {
                    continue;
                };
                if kv.mod_revision() <= self.delivered {
                    continue;
                }
                let prev = match prev.map(convert).transpose() {
                    Ok(prev) => prev,
                    Err(err) => return Some(Err(err)),
                };
                let converted = match event.event_type() {
                    EtcdEventType::Delete => {
                        let key = match kv.key_str() {
                            Ok(key) => key.to_string(),
                            Err(err) => {
                                return Some(Err(Error::Backend {
                                    backend: BACKEND,
                                    message: format!("key is not UTF-8: {err}"),
                                    retryable: false,
                                }));
                            }
                        };
                        Event {
                            kind: EventType::Delete,
                            kv: KeyValue {
                                key,
                                value: prev.as_ref().map(|p| p.value.clone()).unwrap_or_default(),
                                create_revision: prev.as_ref().map_or(0, |p| p.create_revision),
                                mod_revision: kv.mod_revision(),
                            },
                            prev,
                        }
                    }
                    EtcdEventType::Put => {
                        let converted = match convert(kv) {
                            Ok(kv) => kv,
                            Err(err) => return Some(Err(err)),
                        };
                        Event {
                            kind: if kv.create_revision() == kv.mod_revision() {
                                EventType::Create
                            } else {
                                EventType::Update
                            },
                            kv: converted,
                            prev: if kv.create_revision() == kv.mod_revision() {
                                None
                            } else {
                                prev
                            },
                        }
                    }
                };
                events.push(converted);
            }
            let Some(last) = events.last().map(Event::revision) else {
                continue;
            };
            self.delivered = last;
            return Some(Ok(WatchBatch {
                revision: last,
                events,
            }));
        }
    }
}

#[async_trait::async_trait]
impl Backend for EtcdBackend {
    fn name(&self) -> &'static str {
        BACKEND
    }

    async fn current_revision(&self) -> Result<Revision> {
        let response = self
            .client
            .kv_client()
            .get("/", Some(GetOptions::new().with_count_only()))
            .await
            .map_err(|e| self.error(e, Call::Read))?;
        Ok(header_revision(response.header()))
    }

    async fn get(&self, key: &str, revision: Revision) -> Result<(Revision, Option<KeyValue>)> {
        let response = match self
            .client
            .kv_client()
            .get(key, Some(GetOptions::new().with_revision(revision.max(0))))
            .await
        {
            Ok(response) => response,
            Err(err) => return Err(self.read_error(err, revision).await),
        };
        let at = if revision > 0 {
            revision
        } else {
            header_revision(response.header())
        };
        Ok((at, response.kvs().first().map(convert).transpose()?))
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: &str,
        limit: i64,
        revision: Revision,
    ) -> Result<ListResult> {
        let lower: Vec<u8> = if start_after >= prefix {
            let mut k = start_after.as_bytes().to_vec();
            k.push(0);
            k
        } else {
            prefix.as_bytes().to_vec()
        };
        // "\0" as range end: every key from `lower` on.
        let upper = prefix_end(prefix.as_bytes()).unwrap_or_else(|| vec![0]);
        let options = GetOptions::new()
            .with_range(upper)
            .with_limit(limit.max(0))
            .with_revision(revision.max(0));
        let response = match self.client.kv_client().get(lower, Some(options)).await {
            Ok(response) => response,
            Err(err) => return Err(self.read_error(err, revision).await),
        };
        let at = if revision > 0 {
            revision
        } else {
            header_revision(response.header())
        };
        Ok(ListResult {
            revision: at,
            kvs: response.kvs().iter().map(convert).collect::<Result<_>>()?,
            more: response.more(),
        })
    }

    async fn count(&self, prefix: &str) -> Result<(Revision, i64)> {
        let response = self
            .client
            .kv_client()
            .get(
                prefix,
                Some(GetOptions::new().with_prefix().with_count_only()),
            )
            .await
            .map_err(|e| self.error(e, Call::Read))?;
        Ok((header_revision(response.header()), response.count()))
    }

    async fn create(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<Revision> {
        let put = self.put_options(ttl).await?;
        let txn = Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, value.to_vec(), Some(put))]);
        let response = self
            .client
            .kv_client()
            .txn(txn)
            .await
            .map_err(|e| self.error(e, Call::Write))?;
        if !response.succeeded() {
            return Err(Error::KeyExists {
                key: key.to_string(),
            });
        }
        Ok(header_revision(response.header()))
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Revision,
        ttl: Option<Duration>,
    ) -> Result<Revision> {
        let put = self.put_options(ttl).await?;
        let txn = Txn::new()
            .when([
                Compare::create_revision(key, CompareOp::Greater, 0),
                Compare::mod_revision(key, CompareOp::Equal, expected),
            ])
            .and_then([TxnOp::put(key, value.to_vec(), Some(put))])
            .or_else([TxnOp::get(key, None)]);
        let response = self
            .client
            .kv_client()
            .txn(txn)
            .await
            .map_err(|e| self.error(e, Call::Write))?;
        if !response.succeeded() {
            return Err(Error::Conflict {
                key: key.to_string(),
                expected,
                current: txn_get(response.op_responses())?,
            });
        }
        Ok(header_revision(response.header()))
    }

    async fn delete(&self, key: &str, expected: Revision) -> Result<(Revision, KeyValue)> {
        let not_found = || Error::NotFound {
            key: key.to_string(),
        };
        let mut kv = self.client.kv_client();
        if expected == 0 {
            let response = kv
                .delete(key, Some(DeleteOptions::new().with_prev_key()))
                .await
                .map_err(|e| self.error(e, Call::Write))?;
            let prev = response.prev_kvs().first().ok_or_else(not_found)?;
            return Ok((header_revision(response.header()), convert(prev)?));
        }
        let txn = Txn::new()
            .when([Compare::mod_revision(key, CompareOp::Equal, expected)])
            .and_then([TxnOp::delete(
                key,
                Some(DeleteOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(key, None)]);
        let response = kv.txn(txn).await.map_err(|e| self.error(e, Call::Write))?;
        let revision = header_revision(response.header());
        if !response.succeeded() {
            return match txn_get(response.op_responses())? {
                None => Err(not_found()),
                current => Err(Error::Conflict {
                    key: key.to_string(),
                    expected,
                    current,
                }),
            };
        }
        for op in response.op_responses() {
            if let TxnOpResponse::Delete(delete) = op
                && let Some(prev) = delete.prev_kvs().first()
            {
                return Ok((revision, convert(prev)?));
            }
        }
        Err(not_found())
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        // Start at `after` itself (not after+1) so that etcd refuses exactly when `after` is
        // below the compacted revision, as the other backends do; events at `after` are skipped.
        let options = WatchOptions::new()
            .with_prefix()
            .with_start_revision(after.max(1))
            .with_prev_key()
            .with_progress_notify();
        let stream = self
            .client
            .watch_client()
            .watch(prefix, Some(options))
            .await
            .map_err(|e| self.error(e, Call::Read))?;
        let state = WatchState {
            stream,
            after,
            delivered: after,
            done: false,
        };
        Ok(futures::stream::unfold(state, |mut state| async move {
            let item = state.next().await?;
            Some((item, state))
        })
        .boxed())
    }

    async fn compact(&self, revision: Revision) -> Result<Revision> {
        if revision <= 0 {
            return self.compacted_revision().await;
        }
        match self.client.kv_client().compact(revision, None).await {
            Ok(_) => {
                self.known_compacted
                    .fetch_max(revision, std::sync::atomic::Ordering::AcqRel);
                Ok(revision)
            }
            Err(err) if err.to_string().contains(COMPACTED) => self.compacted_revision().await,
            Err(err) if err.to_string().contains(FUTURE) => Err(Error::FutureRevision {
                requested: revision,
                current: self.current_revision().await.unwrap_or(0),
            }),
            Err(err) => Err(self.error(err, Call::Write)),
        }
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        // etcd does not report its compacted revision directly; a read at a revision below it
        // fails, so search for the oldest revision that can still be read.
        let known = self
            .known_compacted
            .load(std::sync::atomic::Ordering::Acquire);
        let current = self.current_revision().await?;
        let readable = |rev: Revision| async move {
            match self
                .client
                .kv_client()
                .get(
                    "/",
                    Some(GetOptions::new().with_revision(rev).with_count_only()),
                )
                .await
            {
                Ok(_) => Ok(true),
                Err(err) if err.to_string().contains(COMPACTED) => Ok(false),
                Err(err) => Err(self.error(err, Call::Read)),
            }
        };
        let (mut low, mut high) = (known.max(1), current.max(1));
        if readable(low).await? {
            return Ok(known);
        }
        // Invariant: `low` is not readable, `high` is (the current revision always is).
        while high - low > 1 {
            let mid = low + (high - low) / 2;
            if readable(mid).await? {
                high = mid;
            } else {
                low = mid;
            }
        }
        self.known_compacted
            .fetch_max(high, std::sync::atomic::Ordering::AcqRel);
        Ok(high)
    }
}
