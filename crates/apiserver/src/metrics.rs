//! Prometheus metrics on `/metrics`: requests by verb, resource and code with latency
//! histograms, open watches, store latency by operation, objects per resource, process memory.
//! Names follow upstream's where one exists (`apiserver_request_total`, ...).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferrokube_store::{Backend, KeyValue, ListResult, Revision, WatchStream};
use parking_lot::Mutex;

const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0,
];

#[derive(Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS.len()];
        }
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += secs;
        self.count += 1;
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {}",
                self.counts.get(i).copied().unwrap_or(0)
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, String, u16), u64>,
    request_latency: BTreeMap<(String, String), Histogram>,
    store_latency: BTreeMap<&'static str, Histogram>,
    watches: HashMap<&'static str, i64>,
}

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

/// Decrements the open-watch gauge when dropped.
pub struct OpenWatch {
    metrics: Arc<Metrics>,
    resource: &'static str,
}

impl Drop for OpenWatch {
    fn drop(&mut self) {
        *self
            .metrics
            .inner
            .lock()
            .watches
            .entry(self.resource)
            .or_default() -= 1;
    }
}

/// Verb names as upstream reports them.
fn metric_verb(verb: &str) -> String {
    match verb {
        "" => "UNKNOWN".into(),
        "deletecollection" => "DELETECOLLECTION".into(),
        v => v.to_ascii_uppercase(),
    }
}

impl Metrics {
    pub fn observe_request(&self, verb: &str, resource: &str, code: u16, took: Duration) {
        let mut i = self.inner.lock();
        let v = metric_verb(verb);
        *i.requests
            .entry((v.clone(), resource.to_string(), code))
            .or_default() += 1;
        i.request_latency
            .entry((v, resource.to_string()))
            .or_default()
            .observe(took.as_secs_f64());
    }

    pub fn open_watch(self: &Arc<Self>, resource: &'static str) -> OpenWatch {
        *self.inner.lock().watches.entry(resource).or_default() += 1;
        OpenWatch {
            metrics: self.clone(),
            resource,
        }
    }

    pub fn observe_store(&self, op: &'static str, took: Duration) {
        self.inner
            .lock()
            .store_latency
            .entry(op)
            .or_default()
            .observe(took.as_secs_f64());
    }

    /// The text exposition format. `objects` gives the number of stored objects per resource.
    pub fn render(&self, objects: &[(String, usize)]) -> String {
        let i = self.inner.lock();
        let mut out = String::new();
        out.push_str("# HELP apiserver_request_total Counter of apiserver requests broken out for each verb, resource and HTTP response code.\n# TYPE apiserver_request_total counter\n");
        for ((verb, res, code), n) in &i.requests {
            let _ = writeln!(
                out,
                "apiserver_request_total{{code=\"{code}\",resource=\"{res}\",verb=\"{verb}\"}} {n}"
            );
        }
        out.push_str("# HELP apiserver_request_duration_seconds Response latency distribution in seconds for each verb and resource.\n# TYPE apiserver_request_duration_seconds histogram\n");
        for ((verb, res), h) in &i.request_latency {
            h.write(
                &mut out,
                "apiserver_request_duration_seconds",
                &format!("resource=\"{res}\",verb=\"{verb}\""),
            );
        }
        out.push_str("# HELP apiserver_longrunning_requests Gauge of all active long-running apiserver requests broken out by verb and resource.\n# TYPE apiserver_longrunning_requests gauge\n");
        let mut watches: Vec<_> = i.watches.iter().collect();
        watches.sort();
        for (res, n) in watches {
            let _ = writeln!(
                out,
                "apiserver_longrunning_requests{{resource=\"{res}\",verb=\"WATCH\"}} {n}"
            );
        }
        out.push_str("# HELP ferrokube_store_request_duration_seconds Datastore request latency in seconds by operation.\n# TYPE ferrokube_store_request_duration_seconds histogram\n");
        for (op, h) in &i.store_latency {
            h.write(
                &mut out,
                "ferrokube_store_request_duration_seconds",
                &format!("operation=\"{op}\""),
            );
        }
        out.push_str("# HELP apiserver_storage_objects Number of stored objects at the time of last check split by kind.\n# TYPE apiserver_storage_objects gauge\n");
        for (res, n) in objects {
            let _ = writeln!(out, "apiserver_storage_objects{{resource=\"{res}\"}} {n}");
        }
        if let Some(rss) = resident_memory_bytes() {
            out.push_str("# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\n");
            let _ = writeln!(out, "process_resident_memory_bytes {rss}");
        }
        out
    }
}

/// This process's resident set size, from /proc.
pub fn resident_memory_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// A store that records the latency of every call.
pub struct InstrumentedStore {
    inner: Arc<dyn Backend>,
    metrics: Arc<Metrics>,
}

impl InstrumentedStore {
    pub fn new(inner: Arc<dyn Backend>, metrics: Arc<Metrics>) -> Self {
        InstrumentedStore { inner, metrics }
    }
}

macro_rules! timed {
    ($self:ident, $op:literal, $call:expr) => {{
        let t = Instant::now();
        let r = $call.await;
        $self.metrics.observe_store($op, t.elapsed());
        r
    }};
}

#[async_trait::async_trait]
impl Backend for InstrumentedStore {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    async fn current_revision(&self) -> ferrokube_store::Result<Revision> {
        self.inner.current_revision().await
    }
    async fn get(
        &self,
        key: &str,
        revision: Revision,
    ) -> ferrokube_store::Result<(Revision, Option<KeyValue>)> {
        timed!(self, "get", self.inner.get(key, revision))
    }
    async fn list(
        &self,
        prefix: &str,
        start_after: &str,
        limit: i64,
        revision: Revision,
    ) -> ferrokube_store::Result<ListResult> {
        timed!(
            self,
            "list",
            self.inner.list(prefix, start_after, limit, revision)
        )
    }
    async fn count(&self, prefix: &str) -> ferrokube_store::Result<(Revision, i64)> {
        timed!(self, "count", self.inner.count(prefix))
    }
    async fn create(
        &self,
        key: &str,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> ferrokube_store::Result<Revision> {
        timed!(self, "create", self.inner.create(key, value, ttl))
    }
    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Revision,
        ttl: Option<Duration>,
    ) -> ferrokube_store::Result<Revision> {
        timed!(self, "update", self.inner.update(key, value, expected, ttl))
    }
    async fn delete(
        &self,
        key: &str,
        expected: Revision,
    ) -> ferrokube_store::Result<(Revision, KeyValue)> {
        timed!(self, "delete", self.inner.delete(key, expected))
    }
    async fn watch(&self, prefix: &str, after: Revision) -> ferrokube_store::Result<WatchStream> {
        self.inner.watch(prefix, after).await
    }
    async fn compact(&self, revision: Revision) -> ferrokube_store::Result<Revision> {
        timed!(self, "compact", self.inner.compact(revision))
    }
    async fn compacted_revision(&self) -> ferrokube_store::Result<Revision> {
        self.inner.compacted_revision().await
    }
}
