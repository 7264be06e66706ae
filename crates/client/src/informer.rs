//! Shared informers: one list+watch per resource (and selector) feeding an in-memory store that
//! every reader shares, with change notifications for event handlers and secondary indexes
//! (pods by node, objects by owner). Handlers only turn objects into keys for a work queue.
//!
//! A relist after a broken watch is diffed against the store, so objects deleted while the watch
//! was down are reported as deleted: controllers never depend on having seen the delete itself.

use std::any::{Any, TypeId};
use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::sync::Arc;

use futures::StreamExt;
use kube::Resource;
use kube::api::Api;
use kube::runtime::watcher;
use parking_lot::{Mutex, RwLock};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// `namespace/name`, or `name` for cluster-scoped objects (client-go's MetaNamespaceKey).
pub fn key_of<K: Resource>(o: &K) -> String {
    let meta = o.meta();
    let name = meta.name.as_deref().unwrap_or("");
    match meta.namespace.as_deref() {
        Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
        _ => name.to_string(),
    }
}

/// Splits a key back into (namespace, name).
pub fn split_key(key: &str) -> (&str, &str) {
    match key.split_once('/') {
        Some((ns, n)) => (ns, n),
        None => ("", key),
    }
}

/// A change an informer reports.
pub enum Change<'a, K> {
    Added(&'a Arc<K>),
    Updated { old: &'a Arc<K>, new: &'a Arc<K> },
    Deleted(&'a Arc<K>),
}

impl<K> Change<'_, K> {
    /// The object as it is now (or was last, for a delete).
    pub fn object(&self) -> &Arc<K> {
        match self {
            Change::Added(o) | Change::Deleted(o) => o,
            Change::Updated { new, .. } => new,
        }
    }
}

type Handler<K> = Box<dyn Fn(&Change<'_, K>) + Send + Sync>;
type IndexFn<K> = Box<dyn Fn(&K) -> Vec<String> + Send + Sync>;

struct Store<K> {
    objects: HashMap<String, Arc<K>>,
    indexers: HashMap<&'static str, IndexFn<K>>,
    /// index name -> index value -> object keys
    indexes: HashMap<&'static str, HashMap<String, HashSet<String>>>,
}

impl<K> Store<K> {
    fn index_insert(&mut self, key: &str, obj: &K) {
        for (name, f) in &self.indexers {
            let idx = self.indexes.entry(name).or_default();
            for v in f(obj) {
                idx.entry(v).or_default().insert(key.to_string());
            }
        }
    }

    fn index_remove(&mut self, key: &str, obj: &K) {
        for (name, f) in &self.indexers {
            if let Some(idx) = self.indexes.get_mut(name) {
                for v in f(obj) {
                    if let Some(set) = idx.get_mut(&v) {
                        set.remove(key);
                        if set.is_empty() {
                            idx.remove(&v);
                        }
                    }
                }
            }
        }
    }
}

/// One resource's shared cache.
pub struct Informer<K> {
    store: RwLock<Store<K>>,
    handlers: RwLock<Vec<Handler<K>>>,
    synced: watch::Sender<bool>,
}

impl<K> Informer<K>
where
    K: Resource + Clone + Send + Sync + 'static,
{
    fn new() -> Self {
        Informer {
            store: RwLock::new(Store {
                objects: HashMap::new(),
                indexers: HashMap::new(),
                indexes: HashMap::new(),
            }),
            handlers: RwLock::new(Vec::new()),
            synced: watch::channel(false).0,
        }
    }

    /// An informer fed by the caller (tests, simulations): nothing watches the API.
    pub fn detached() -> Arc<Self> {
        Arc::new(Self::new())
    }

    pub fn get(&self, key: &str) -> Option<Arc<K>> {
        self.store.read().objects.get(key).cloned()
    }

    pub fn get_named(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        if namespace.is_empty() {
            self.get(name)
        } else {
            self.get(&format!("{namespace}/{name}"))
        }
    }

    pub fn list(&self) -> Vec<Arc<K>> {
        self.store.read().objects.values().cloned().collect()
    }

    pub fn list_namespace(&self, namespace: &str) -> Vec<Arc<K>> {
        let prefix = format!("{namespace}/");
        self.store
            .read()
            .objects
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn len(&self) -> usize {
        self.store.read().objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds a secondary index. Objects already in the store are indexed at once.
    pub fn add_index(
        &self,
        name: &'static str,
        f: impl Fn(&K) -> Vec<String> + Send + Sync + 'static,
    ) {
        let mut st = self.store.write();
        st.indexers.insert(name, Box::new(f));
        let objects: Vec<(String, Arc<K>)> = st
            .objects
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let f = st.indexers.get(name).expect("just inserted");
        let mut idx: HashMap<String, HashSet<String>> = HashMap::new();
        for (k, o) in &objects {
            for v in f(o) {
                idx.entry(v).or_default().insert(k.clone());
            }
        }
        st.indexes.insert(name, idx);
    }

    /// Objects whose index `name` includes `value`.
    pub fn by_index(&self, name: &str, value: &str) -> Vec<Arc<K>> {
        let st = self.store.read();
        let Some(keys) = st.indexes.get(name).and_then(|i| i.get(value)) else {
            return Vec::new();
        };
        keys.iter()
            .filter_map(|k| st.objects.get(k).cloned())
            .collect()
    }

    /// Registers a handler; it is first told about every object already in the store.
    pub fn on_change(&self, f: impl Fn(&Change<'_, K>) + Send + Sync + 'static) {
        let mut hs = self.handlers.write();
        for o in self.list() {
            f(&Change::Added(&o));
        }
        hs.push(Box::new(f));
    }

    fn notify(&self, change: Change<'_, K>) {
        for h in self.handlers.read().iter() {
            h(&change);
        }
    }

    /// Puts an object in the store (as a watch event would) and tells the handlers.
    pub fn apply(&self, obj: K) {
        let key = key_of(&obj);
        let new = Arc::new(obj);
        let old = {
            let mut st = self.store.write();
            let old = st.objects.insert(key.clone(), new.clone());
            if let Some(o) = &old {
                st.index_remove(&key, o);
            }
            st.index_insert(&key, &new);
            old
        };
        match old {
            Some(old) => self.notify(Change::Updated {
                old: &old,
                new: &new,
            }),
            None => self.notify(Change::Added(&new)),
        }
    }

    /// Removes an object (as a watch delete would) and tells the handlers.
    pub fn delete(&self, obj: &K) {
        let key = key_of(obj);
        let old = {
            let mut st = self.store.write();
            let old = st.objects.remove(&key);
            if let Some(o) = &old {
                st.index_remove(&key, o);
            }
            old
        };
        let gone = old.unwrap_or_else(|| Arc::new(obj.clone()));
        self.notify(Change::Deleted(&gone));
    }

    /// Replaces the whole content after a (re)list, reporting what changed.
    fn replace(&self, objects: Vec<K>) {
        let listed: HashSet<String> = objects.iter().map(key_of).collect();
        let gone: Vec<Arc<K>> = {
            let st = self.store.read();
            st.objects
                .iter()
                .filter(|(k, _)| !listed.contains(*k))
                .map(|(_, v)| v.clone())
                .collect()
        };
        for g in gone {
            self.delete(&g);
        }
        for o in objects {
            self.apply(o);
        }
        self.synced.send_replace(true);
    }

    pub fn has_synced(&self) -> bool {
        *self.synced.borrow()
    }

    /// Waits until the first list has been stored.
    pub async fn wait_synced(&self) {
        let mut rx = self.synced.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    /// Marks a detached informer as synced.
    pub fn mark_synced(&self) {
        self.synced.send_replace(true);
    }
}

impl<K> Informer<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    async fn run(self: Arc<Self>, api: Api<K>, config: watcher::Config, cancel: CancellationToken) {
        use kube::runtime::WatchStreamExt;
        let mut stream = watcher(api, config).default_backoff().boxed();
        let mut buffer: Vec<K> = Vec::new();
        loop {
            let ev = tokio::select! {
                _ = cancel.cancelled() => return,
                ev = stream.next() => ev,
            };
            match ev {
                None => return,
                Some(Err(e)) => {
                    tracing::debug!(kind = %K::kind(&()), error = %e, "informer watch error; retrying")
                }
                Some(Ok(watcher::Event::Init)) => buffer.clear(),
                Some(Ok(watcher::Event::InitApply(o))) => buffer.push(without_managed_fields(o)),
                Some(Ok(watcher::Event::InitDone)) => self.replace(std::mem::take(&mut buffer)),
                Some(Ok(watcher::Event::Apply(o))) => self.apply(without_managed_fields(o)),
                Some(Ok(watcher::Event::Delete(o))) => self.delete(&o),
            }
        }
    }
}

/// Watched objects are cached without `metadata.managedFields`, as upstream's controllers and
/// scheduler do (`TransformStripManagedFields`): nothing that reads a cache needs them, they are
/// often the larger part of a small object, and a write that sends a cached object back
/// without them keeps the stored ones.
fn without_managed_fields<K: Resource>(mut o: K) -> K {
    o.meta_mut().managed_fields = None;
    o
}

/// Creates informers on first use and shares them: everyone asking for pods gets the same one.
pub struct Informers {
    client: kube::Client,
    cancel: CancellationToken,
    started: Mutex<HashMap<(TypeId, String), Arc<dyn Any + Send + Sync>>>,
}

impl Informers {
    pub fn new(client: kube::Client, cancel: CancellationToken) -> Arc<Self> {
        Arc::new(Informers {
            client,
            cancel,
            started: Mutex::new(HashMap::new()),
        })
    }

    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// The cluster-wide informer of `K`.
    pub fn get<K>(&self) -> Arc<Informer<K>>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        self.get_with(watcher::Config::default(), "")
    }

    /// An informer of `K` limited by a watcher config (label or field selector); `id` names the
    /// selection so equal selections share an informer.
    pub fn get_with<K>(&self, config: watcher::Config, id: &str) -> Arc<Informer<K>>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        let mut started = self.started.lock();
        let key = (TypeId::of::<K>(), id.to_string());
        if let Some(i) = started.get(&key)
            && let Ok(i) = i.clone().downcast::<Informer<K>>()
        {
            return i;
        }
        let inf = Arc::new(Informer::<K>::new());
        started.insert(key, inf.clone());
        let api = Api::<K>::all(self.client.clone());
        tokio::spawn(inf.clone().run(api, config, self.cancel.clone()));
        inf
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::ObjectMeta;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn pod(ns: &str, name: &str, node: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                namespace: Some(ns.into()),
                name: Some(name.into()),
                ..Default::default()
            },
            spec: Some(k8s_openapi::api::core::v1::PodSpec {
                node_name: Some(node.into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn node_of(p: &Pod) -> Vec<String> {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .into_iter()
            .collect()
    }

    #[test]
    fn indexes_follow_updates_and_deletes() {
        let inf = Informer::<Pod>::detached();
        inf.add_index("node", node_of);
        inf.apply(pod("d", "a", "n1"));
        inf.apply(pod("d", "b", "n1"));
        assert_eq!(inf.by_index("node", "n1").len(), 2);
        inf.apply(pod("d", "a", "n2"));
        assert_eq!(inf.by_index("node", "n1").len(), 1);
        assert_eq!(inf.by_index("node", "n2").len(), 1);
        inf.delete(&pod("d", "b", "n1"));
        assert!(inf.by_index("node", "n1").is_empty());
    }

    #[test]
    fn late_handlers_hear_about_existing_objects_and_relists_report_deletes() {
        let inf = Informer::<Pod>::detached();
        inf.apply(pod("d", "a", "n1"));
        let adds = Arc::new(AtomicUsize::new(0));
        let dels = Arc::new(AtomicUsize::new(0));
        let (a, d) = (adds.clone(), dels.clone());
        inf.on_change(move |c| match c {
            Change::Added(_) => {
                a.fetch_add(1, Ordering::SeqCst);
            }
            Change::Deleted(_) => {
                d.fetch_add(1, Ordering::SeqCst);
            }
            Change::Updated { .. } => {}
        });
        assert_eq!(adds.load(Ordering::SeqCst), 1);
        inf.replace(vec![pod("d", "b", "n1")]);
        assert_eq!(dels.load(Ordering::SeqCst), 1, "a was gone from the relist");
        assert_eq!(adds.load(Ordering::SeqCst), 2);
        assert!(inf.has_synced());
        assert_eq!(key_of(&pod("d", "b", "")), "d/b");
        assert_eq!(split_key("d/b"), ("d", "b"));
    }
}
