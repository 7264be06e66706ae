//! The watch cache: every stored object in memory, per resource, fed by one store watch.
//!
//! Lists and watches are served from here so reads never touch the database. Each object is
//! kept as its JSON bytes (with `resourceVersion` filled in) plus what serving needs without
//! parsing it again: labels, field-selector values, its metadata JSON and its table row. Maps are
//! persistent (`imbl`), so a list takes an O(1) snapshot and paginated lists continue from the
//! very snapshot their first page came from.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferrokube_api::ApiError;
use ferrokube_api::printers::{self, Row};
use ferrokube_api::resources::{self, ResourceInfo};
use ferrokube_api::selector::{FieldSelector, LabelSelector, field_set};
use ferrokube_store::{Backend, Event, EventType as StoreEventType, Revision};
use futures::StreamExt;
use parking_lot::RwLock;
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// Events kept for replaying watches: at least this many per resource...
const MIN_HISTORY: usize = 1_000;
/// ...and every event younger than this...
const HISTORY_WINDOW: Duration = Duration::from_secs(300);
/// ...but never more than this many.
const MAX_HISTORY: usize = 200_000;
/// Pending events a watcher may lag behind before it is closed (the client re-watches).
pub const WATCHER_BUFFER: usize = 4_096;
/// Paginated-list snapshots kept for `continue`.
const SNAPSHOTS_KEPT: usize = 32;
const SNAPSHOT_TTL: Duration = Duration::from_secs(120);

/// One object as the cache holds it.
#[derive(Debug)]
pub struct CachedObject {
    pub key: String,
    pub namespace: String,
    pub name: String,
    pub rev: Revision,
    /// The whole object, JSON, `metadata.resourceVersion` set.
    pub json: Bytes,
    /// `metadata` alone, JSON (for PartialObjectMetadata and table rows).
    pub meta: Bytes,
    pub labels: BTreeMap<String, String>,
    pub fields: Vec<(&'static str, String)>,
    pub row: Row,
}

impl CachedObject {
    /// Builds the cached form of a stored value, stamping `rev` as its resourceVersion.
    pub fn build(
        info: &'static ResourceInfo,
        key: &str,
        raw: &[u8],
        rev: Revision,
    ) -> Result<Self, serde_json::Error> {
        let mut v: Value = serde_json::from_slice(raw)?;
        crate::object::set_resource_version(&mut v, rev);
        Ok(Self::from_value(info, key, &v, rev))
    }

    pub fn from_value(info: &'static ResourceInfo, key: &str, v: &Value, rev: Revision) -> Self {
        let meta = v
            .get("metadata")
            .cloned()
            .unwrap_or(Value::Object(Default::default()));
        let str_of = |p: &str| {
            meta.get(p)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        CachedObject {
            key: key.to_string(),
            namespace: str_of("namespace"),
            name: str_of("name"),
            rev,
            json: Bytes::from(serde_json::to_vec(v).unwrap_or_default()),
            meta: Bytes::from(serde_json::to_vec(&meta).unwrap_or_default()),
            labels: ferrokube_api::selector::labels::labels_of(v),
            fields: field_set(info.group, info.resource, v),
            row: printers::row(info.group, info.resource, v),
        }
    }

    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.json).unwrap_or(Value::Null)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// A change as the cache saw it. For a delete, `obj` is the last state stamped with the
/// revision of the delete.
#[derive(Debug)]
pub struct CacheEvent {
    pub rev: Revision,
    pub kind: EventType,
    pub obj: Arc<CachedObject>,
    pub prev: Option<Arc<CachedObject>>,
}

/// What a watcher receives.
#[derive(Clone, Debug)]
pub enum WatchItem {
    Event(EventType, Arc<CachedObject>),
    Error(ApiError),
}

/// Which objects a list or watch wants.
#[derive(Clone, Debug)]
pub struct Filter {
    pub namespace: String,
    pub name: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Filter {
    pub fn matches(&self, o: &CachedObject) -> bool {
        (self.namespace.is_empty() || o.namespace == self.namespace)
            && self.name.as_ref().is_none_or(|n| &o.name == n)
            && self.labels.matches(&o.labels)
            && self.fields.matches(&o.fields)
    }

    /// The event a watcher with this filter sees for a change, if any: an object that stops
    /// matching is DELETED for it, one that starts matching is ADDED.
    pub fn translate(&self, ev: &CacheEvent) -> Option<EventType> {
        let now = self.matches(&ev.obj);
        let before = ev.prev.as_ref().is_some_and(|p| self.matches(p));
        match (ev.kind, before, now) {
            (EventType::Deleted, _, true) => Some(EventType::Deleted),
            (EventType::Deleted, _, false) => None,
            (_, true, true) => Some(EventType::Modified),
            (_, false, true) => Some(EventType::Added),
            (_, true, false) => Some(EventType::Deleted),
            (_, false, false) => None,
        }
    }
}

struct Watcher {
    filter: Filter,
    tx: mpsc::Sender<WatchItem>,
}

type Objects = imbl::OrdMap<String, Arc<CachedObject>>;

struct State {
    objects: Objects,
    rev: Revision,
    events: VecDeque<(Instant, Arc<CacheEvent>)>,
    /// Every event with a revision above this one is in `events`.
    history_from: Revision,
    watchers: Vec<Watcher>,
    snapshots: VecDeque<(Revision, Instant, Objects)>,
}

/// The cache of one stored resource (one key prefix, at its storage version).
pub struct WatchCache {
    pub info: &'static ResourceInfo,
    state: RwLock<State>,
}

/// Why a watch cannot start from the cache.
#[derive(Debug)]
pub enum StartError {
    /// The requested revision is older than the cache's history.
    TooOld { oldest: Revision },
}

impl WatchCache {
    fn new(info: &'static ResourceInfo, objects: Objects, rev: Revision) -> Self {
        WatchCache {
            info,
            state: RwLock::new(State {
                objects,
                rev,
                events: VecDeque::new(),
                history_from: rev,
                watchers: Vec::new(),
                snapshots: VecDeque::new(),
            }),
        }
    }

    pub fn revision(&self) -> Revision {
        self.state.read().rev
    }

    pub fn len(&self) -> usize {
        self.state.read().objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.state.read().objects.is_empty()
    }

    pub fn get(&self, key: &str) -> Option<Arc<CachedObject>> {
        self.state.read().objects.get(key).cloned()
    }

    /// A consistent view of every object and the revision it is current at.
    pub fn snapshot(&self) -> (Revision, Objects) {
        let st = self.state.read();
        (st.rev, st.objects.clone())
    }

    /// Keeps a snapshot for `continue` tokens of a paginated list.
    pub fn retain_snapshot(&self, rev: Revision, objects: &Objects) {
        let mut st = self.state.write();
        if st.snapshots.iter().any(|(r, _, _)| *r == rev) {
            return;
        }
        let now = Instant::now();
        st.snapshots
            .retain(|(_, t, _)| now.duration_since(*t) < SNAPSHOT_TTL);
        if st.snapshots.len() >= SNAPSHOTS_KEPT {
            st.snapshots.pop_front();
        }
        st.snapshots.push_back((rev, now, objects.clone()));
    }

    /// The snapshot at exactly `rev`, if the cache still has it.
    pub fn snapshot_at(&self, rev: Revision) -> Option<Objects> {
        let st = self.state.read();
        if st.rev == rev {
            return Some(st.objects.clone());
        }
        st.snapshots
            .iter()
            .find(|(r, _, _)| *r == rev)
            .map(|(_, _, o)| o.clone())
    }

    /// Starts a watch. `from = None`: the current state as synthetic ADDED events, then changes.
    /// `from = Some(rev)`: every matching change after `rev`. Returns the events to send first and
    /// the receiver of live ones, without gap or overlap between them.
    pub fn watch(
        &self,
        filter: Filter,
        from: Option<Revision>,
    ) -> Result<(Vec<WatchItem>, Revision, mpsc::Receiver<WatchItem>), StartError> {
        let mut st = self.state.write();
        let mut initial = Vec::new();
        match from {
            None => {
                let prefix = self.info.collection_prefix(&filter.namespace);
                for (_, o) in st.objects.range(prefix.clone()..) {
                    if !o.key.starts_with(&prefix) {
                        break;
                    }
                    if filter.matches(o) {
                        initial.push(WatchItem::Event(EventType::Added, o.clone()));
                    }
                }
            }
            Some(rev) => {
                if rev < st.history_from {
                    return Err(StartError::TooOld {
                        oldest: st.history_from,
                    });
                }
                let start = st.events.partition_point(|(_, e)| e.rev <= rev);
                for (_, ev) in st.events.iter().skip(start) {
                    if let Some(kind) = filter.translate(ev) {
                        initial.push(WatchItem::Event(kind, ev.obj.clone()));
                    }
                }
            }
        }
        let (tx, rx) = mpsc::channel(WATCHER_BUFFER);
        st.watchers.push(Watcher { filter, tx });
        Ok((initial, st.rev, rx))
    }

    pub fn watcher_count(&self) -> usize {
        self.state.read().watchers.len()
    }

    /// Applies a batch of changes (in revision order) and tells the watchers.
    fn apply(&self, events: Vec<CacheEvent>, rev: Revision) {
        let mut st = self.state.write();
        let now = Instant::now();
        for ev in events {
            let ev = Arc::new(ev);
            match ev.kind {
                EventType::Deleted => {
                    st.objects.remove(&ev.obj.key);
                }
                _ => {
                    st.objects.insert(ev.obj.key.clone(), ev.obj.clone());
                }
            }
            st.watchers.retain(|w| match w.filter.translate(&ev) {
                None => true,
                Some(kind) => match w.tx.try_send(WatchItem::Event(kind, ev.obj.clone())) {
                    Ok(()) => true,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        tracing::info!(
                            resource = self.info.resource,
                            "closing a watcher that fell too far behind"
                        );
                        false
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                },
            });
            st.events.push_back((now, ev));
        }
        if rev > st.rev {
            st.rev = rev;
        }
        while st.events.len() > MAX_HISTORY
            || (st.events.len() > MIN_HISTORY
                && st
                    .events
                    .front()
                    .is_some_and(|(t, _)| now.duration_since(*t) > HISTORY_WINDOW))
        {
            if let Some((_, ev)) = st.events.pop_front() {
                st.history_from = ev.rev;
            }
        }
        if st.watchers.iter().any(|w| w.tx.is_closed()) {
            st.watchers.retain(|w| !w.tx.is_closed());
        }
    }

    /// Moves the cache's revision forward when nothing of its own changed. `history_from`
    /// stays: no event of this resource happened in between, so a watch from any revision
    /// since then is still served from the cache (moving it forward sent clients that listed
    /// a quiet resource while others were written to the store's much slower replay).
    fn advance(&self, rev: Revision) {
        let mut st = self.state.write();
        if rev > st.rev {
            st.rev = rev;
        }
    }

    /// Replaces the whole content after the feed had to list again; every watcher is closed
    /// (clients watch again from their last revision).
    fn reset(&self, objects: Objects, rev: Revision) {
        let mut st = self.state.write();
        st.objects = objects;
        st.rev = rev;
        st.events.clear();
        st.history_from = rev;
        for w in st.watchers.drain(..) {
            let _ = w.tx.try_send(WatchItem::Error(ApiError::expired(
                "the watch cache was re-initialized; please watch again",
            )));
        }
        st.snapshots.clear();
    }
}

/// Every resource's cache, and the one store watch that feeds them.
pub struct Caches {
    by_prefix: HashMap<&'static str, Arc<WatchCache>>,
    rev_rx: watch::Receiver<Revision>,
}

impl Caches {
    /// Lists the whole store, fills the caches, and starts the feed.
    pub async fn start(
        store: Arc<dyn Backend>,
        cancel: CancellationToken,
    ) -> Result<Arc<Caches>, ferrokube_store::Error> {
        let (rev, contents) = list_all(store.as_ref()).await?;
        let mut by_prefix = HashMap::new();
        for info in storage_resources() {
            let objects = contents
                .get(info.storage_prefix)
                .cloned()
                .unwrap_or_default();
            by_prefix.insert(
                info.storage_prefix,
                Arc::new(WatchCache::new(info, objects, rev)),
            );
        }
        let (rev_tx, rev_rx) = watch::channel(rev);
        let caches = Arc::new(Caches { by_prefix, rev_rx });
        let feed = caches.clone();
        tokio::spawn(async move { feed.run_feed(store, rev, rev_tx, cancel).await });
        Ok(caches)
    }

    /// The cache holding a resource's objects (shared by its versions).
    pub fn for_resource(&self, info: &ResourceInfo) -> Option<&Arc<WatchCache>> {
        self.by_prefix.get(info.storage_prefix)
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<WatchCache>> {
        self.by_prefix.values()
    }

    /// The revision every cache has caught up with.
    pub fn revision(&self) -> Revision {
        *self.rev_rx.borrow()
    }

    /// Waits until the caches have seen revision `rev`; false on timeout.
    pub async fn wait_for(&self, rev: Revision, timeout: Duration) -> bool {
        let mut rx = self.rev_rx.clone();
        let fut = rx.wait_for(|r| *r >= rev);
        matches!(tokio::time::timeout(timeout, fut).await, Ok(Ok(_)))
    }

    async fn run_feed(
        self: Arc<Self>,
        store: Arc<dyn Backend>,
        mut rev: Revision,
        rev_tx: watch::Sender<Revision>,
        cancel: CancellationToken,
    ) {
        loop {
            let stream = tokio::select! {
                _ = cancel.cancelled() => return,
                s = store.watch("/registry/", rev) => s,
            };
            let mut stream = match stream {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "watch cache feed could not start; retrying");
                    if matches!(e, ferrokube_store::Error::Compacted { .. }) {
                        rev = self.resync(store.as_ref(), &rev_tx).await;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            loop {
                let next = tokio::select! {
                    _ = cancel.cancelled() => return,
                    n = stream.next() => n,
                };
                match next {
                    Some(Ok(batch)) => {
                        self.apply_batch(batch.events);
                        if batch.revision > rev {
                            rev = batch.revision;
                        }
                        for c in self.by_prefix.values() {
                            c.advance(rev);
                        }
                        rev_tx.send_replace(rev);
                    }
                    Some(Err(ferrokube_store::Error::Compacted { .. })) => {
                        tracing::warn!("watch cache feed fell behind compaction; listing again");
                        rev = self.resync(store.as_ref(), &rev_tx).await;
                        break;
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "watch cache feed failed; watching again");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        break;
                    }
                    None => {
                        if cancel.is_cancelled() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        break;
                    }
                }
            }
        }
    }

    fn apply_batch(&self, events: Vec<Event>) {
        let mut per_cache: HashMap<&'static str, (&'static ResourceInfo, Vec<CacheEvent>)> =
            HashMap::new();
        // The previous state of a changed object is the one the cache holds (this feed is its
        // only writer), or an earlier event of this batch: no need to parse it again.
        let mut latest: HashMap<String, Option<Arc<CachedObject>>> = HashMap::new();
        for ev in events {
            let Some(info) = resources::for_key(&ev.kv.key) else {
                continue;
            };
            let key = ev.kv.key.clone();
            let known = match latest.get(&key) {
                Some(o) => o.clone(),
                None => self
                    .by_prefix
                    .get(info.storage_prefix)
                    .and_then(|c| c.get(&key)),
            };
            let Some(ce) = to_cache_event_with_prev(info, &ev, known) else {
                continue;
            };
            latest.insert(key, (ce.kind != EventType::Deleted).then(|| ce.obj.clone()));
            per_cache
                .entry(info.storage_prefix)
                .or_insert_with(|| (info, Vec::new()))
                .1
                .push(ce);
        }
        for (prefix, (_, evs)) in per_cache {
            if let Some(c) = self.by_prefix.get(prefix) {
                let last = evs.last().map(|e| e.rev).unwrap_or(0);
                c.apply(evs, last);
            }
        }
    }

    async fn resync(&self, store: &dyn Backend, rev_tx: &watch::Sender<Revision>) -> Revision {
        loop {
            match list_all(store).await {
                Ok((rev, mut contents)) => {
                    for (prefix, c) in &self.by_prefix {
                        c.reset(contents.remove(prefix).unwrap_or_default(), rev);
                    }
                    rev_tx.send_replace(rev);
                    return rev;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "listing the store for the watch cache failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

/// Converts a store event into the cache's form; None for values that do not parse (logged).
pub fn to_cache_event(info: &'static ResourceInfo, ev: &Event) -> Option<CacheEvent> {
    to_cache_event_with_prev(info, ev, None)
}

/// As [`to_cache_event`], with the cached form of the previous state when the caller has it
/// (it must be the state `ev.prev` holds).
fn to_cache_event_with_prev(
    info: &'static ResourceInfo,
    ev: &Event,
    known_prev: Option<Arc<CachedObject>>,
) -> Option<CacheEvent> {
    let build = |kv: &ferrokube_store::KeyValue, rev: Revision| match CachedObject::build(
        info, &kv.key, &kv.value, rev,
    ) {
        Ok(o) => Some(Arc::new(o)),
        Err(e) => {
            tracing::error!(key = %kv.key, error = %e, "stored object is not valid JSON; skipping it");
            None
        }
    };
    let prev = match (&ev.prev, known_prev) {
        (Some(p), Some(k)) if k.rev == p.mod_revision => Some(k),
        (Some(p), _) => build(p, p.mod_revision),
        (None, _) => None,
    };
    let (kind, obj) = match ev.kind {
        StoreEventType::Create => (EventType::Added, build(&ev.kv, ev.kv.mod_revision)?),
        StoreEventType::Update => (EventType::Modified, build(&ev.kv, ev.kv.mod_revision)?),
        StoreEventType::Delete => {
            let last = ev.prev.as_ref().unwrap_or(&ev.kv);
            let mut kv = last.clone();
            kv.key = ev.kv.key.clone();
            (EventType::Deleted, build(&kv, ev.kv.mod_revision)?)
        }
    };
    Some(CacheEvent {
        rev: ev.kv.mod_revision,
        kind,
        obj,
        prev,
    })
}

/// The resources that own a storage prefix (one per prefix, at the storage version).
pub fn storage_resources() -> impl Iterator<Item = &'static ResourceInfo> {
    resources::RESOURCES
        .iter()
        .filter(|r| r.is_stored() && (r.group, r.version) == r.storage_version)
}

type Contents = HashMap<&'static str, Objects>;

async fn list_all(store: &dyn Backend) -> Result<(Revision, Contents), ferrokube_store::Error> {
    const PAGE: i64 = 10_000;
    let mut contents: Contents = HashMap::new();
    let mut rev = 0;
    let mut after = String::new();
    loop {
        let page = store.list("/registry/", &after, PAGE, rev).await?;
        rev = page.revision;
        for kv in &page.kvs {
            let Some(info) = resources::for_key(&kv.key) else {
                continue;
            };
            match CachedObject::build(info, &kv.key, &kv.value, kv.mod_revision) {
                Ok(o) => {
                    contents
                        .entry(info.storage_prefix)
                        .or_default()
                        .insert(kv.key.clone(), Arc::new(o));
                }
                Err(e) => {
                    tracing::error!(key = %kv.key, error = %e, "stored object is not valid JSON; skipping it")
                }
            }
        }
        match (page.more, page.kvs.last()) {
            (true, Some(last)) => after = last.key.clone(),
            _ => break,
        }
    }
    Ok((rev, contents))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrokube_store::memory::MemoryBackend;
    use serde_json::json;

    fn pod(name: &str, app: &str) -> Bytes {
        Bytes::from(
            serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": "default", "labels": {"app": app}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}))
            .unwrap(),
        )
    }

    fn pods() -> &'static ResourceInfo {
        resources::find("", "v1", "pods").unwrap()
    }

    async fn started() -> (Arc<dyn Backend>, Arc<Caches>, CancellationToken) {
        let store: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
        store
            .create("/registry/pods/default/a", pod("a", "web"), None)
            .await
            .unwrap();
        let cancel = CancellationToken::new();
        let caches = Caches::start(store.clone(), cancel.clone()).await.unwrap();
        (store, caches, cancel)
    }

    /// Sets pod a's app label through the store.
    async fn relabel(store: &Arc<dyn Backend>, app: &str) {
        let cur = store
            .get("/registry/pods/default/a", 0)
            .await
            .unwrap()
            .1
            .unwrap();
        store
            .update(
                "/registry/pods/default/a",
                pod("a", app),
                cur.mod_revision,
                None,
            )
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn cache_starts_with_the_stored_objects_and_follows_writes() {
        let (store, caches, cancel) = started().await;
        let c = caches.for_resource(pods()).unwrap().clone();
        assert_eq!(c.len(), 1);
        let rev = store
            .create("/registry/pods/default/b", pod("b", "db"), None)
            .await
            .unwrap();
        assert!(caches.wait_for(rev, Duration::from_secs(5)).await);
        let b = c.get("/registry/pods/default/b").unwrap();
        assert_eq!(b.rev, rev);
        assert_eq!(b.value()["metadata"]["resourceVersion"], rev.to_string());
        cancel.cancel();
    }

    #[tokio::test]
    async fn label_filtered_watch_sees_objects_leave_the_selection_as_deleted() {
        let (store, caches, cancel) = started().await;
        let c = caches.for_resource(pods()).unwrap().clone();
        let filter = Filter {
            namespace: "default".into(),
            name: None,
            labels: LabelSelector::parse("app=web").unwrap(),
            fields: FieldSelector::default(),
        };
        let (initial, _, mut rx) = c.watch(filter, None).unwrap();
        assert_eq!(initial.len(), 1);
        relabel(&store, "other").await;
        match tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap()
        {
            WatchItem::Event(EventType::Deleted, o) => assert_eq!(o.name, "a"),
            other => panic!("{other:?}"),
        }
        cancel.cancel();
    }

    #[tokio::test]
    async fn watch_from_a_revision_replays_history_then_goes_live() {
        let (store, caches, cancel) = started().await;
        let c = caches.for_resource(pods()).unwrap().clone();
        let start = caches.revision();
        let r1 = store
            .create("/registry/pods/default/b", pod("b", "x"), None)
            .await
            .unwrap();
        store.delete("/registry/pods/default/b", 0).await.unwrap();
        assert!(caches.wait_for(r1 + 1, Duration::from_secs(5)).await);
        let filter = Filter {
            namespace: String::new(),
            name: None,
            labels: LabelSelector::default(),
            fields: FieldSelector::default(),
        };
        let (initial, _, _rx) = c.watch(filter.clone(), Some(start)).unwrap();
        let kinds: Vec<EventType> = initial
            .iter()
            .map(|i| match i {
                WatchItem::Event(k, _) => *k,
                WatchItem::Error(_) => panic!(),
            })
            .collect();
        assert_eq!(kinds, [EventType::Added, EventType::Deleted]);
        assert!(matches!(c.watch(filter, Some(0)), Err(StartError::TooOld { .. })) || start == 0);
        cancel.cancel();
    }
    #[tokio::test]
    async fn a_quiet_resource_serves_watches_from_revisions_other_writes_made() {
        let (store, caches, cancel) = started().await;
        let c = caches.for_resource(pods()).unwrap().clone();
        // A client lists pods here, while only other resources are being written...
        let listed = caches.revision();
        let mut last = 0;
        for i in 0..3 {
            last = store
                .create(&format!("/registry/configmaps/default/c{i}"), Bytes::from_static(b"{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"c\",\"namespace\":\"default\"}}"), None)
                .await
                .unwrap();
        }
        assert!(caches.wait_for(last, Duration::from_secs(5)).await);
        // ...then a pod changes, with its previous state taken from the cache.
        relabel(&store, "db").await;
        let filter = Filter {
            namespace: String::new(),
            name: None,
            labels: LabelSelector::parse("app=web").unwrap(),
            fields: FieldSelector::default(),
        };
        // The watch from the listed revision is served by the cache, not refused as too old,
        // and the label change reaches it as the object leaving the selection.
        let mut initial = Vec::new();
        for _ in 0..100 {
            initial = c
                .watch(filter.clone(), Some(listed))
                .expect("served from the cache")
                .0;
            if !initial.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        match initial.as_slice() {
            [WatchItem::Event(EventType::Deleted, o)] => assert_eq!(o.name, "a"),
            other => panic!("{other:?}"),
        }
        cancel.cancel();
    }
}
