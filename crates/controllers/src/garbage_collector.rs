//! The garbage collector: objects whose owners are gone are deleted, as upstream's
//! `garbagecollector` does it.
//!
//! A graph of every object of every stored resource (metadata only: one metadata watch per
//! resource) links owners to dependents through `metadata.ownerReferences`. Workers take object
//! UIDs from the one work queue and decide, level-triggered, from the graph and — where the
//! graph may lag — a live read of the owner:
//!
//! - an object none of whose owners exists any more is deleted (Background, or with the
//!   propagation its own finalizers ask for); references to missing owners are dropped from
//!   objects that still have a live owner;
//! - an owner deleted with `propagationPolicy=Orphan` (the `orphan` finalizer) has its
//!   reference removed from every dependent, then the finalizer removed;
//! - an owner deleted with `propagationPolicy=Foreground` (the `foregroundDeletion` finalizer)
//!   has its dependents deleted and keeps the finalizer until no dependent that sets
//!   `blockOwnerDeletion` remains.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use ferrokube_api::resources::{self, ResourceInfo};
use ferrokube_client::events::{EventRecorder, EventType};
use ferrokube_client::{Action, WorkQueue};
use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{
    Api, DeleteParams, DynamicObject, ObjectMeta, PartialObjectMeta, Patch, PatchParams,
    Preconditions,
};
use kube::runtime::watcher::{self, watcher};
use parking_lot::Mutex;
use serde_json::json;

use crate::Context;
use crate::util::{self, Result, api_resource};

pub const NAME: &str = "garbagecollector";
const COMPONENT: &str = "garbage-collector-controller";
pub const ORPHAN: &str = "orphan";
pub const FOREGROUND: &str = "foregroundDeletion";

pub fn start(ctx: Arc<Context>) -> BoxFuture<'static, ()> {
    Box::pin(run(ctx))
}

/// The resources the collector watches: every stored, deletable resource at its storage
/// version, except events (upstream ignores them too).
pub fn watched_resources() -> Vec<&'static ResourceInfo> {
    resources::RESOURCES
        .iter()
        .filter(|r| r.is_stored() && (r.group, r.version) == r.storage_version)
        .filter(|r| r.allows("list") && r.allows("watch") && r.allows("delete"))
        .filter(|r| r.resource != "events")
        .collect()
}

/// One object in the graph.
#[derive(Clone, Debug, PartialEq)]
pub struct GraphNode {
    pub info: &'static ResourceInfo,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub owners: Vec<OwnerReference>,
    pub finalizers: Vec<String>,
    pub deleting: bool,
}

impl GraphNode {
    pub fn from_meta(info: &'static ResourceInfo, m: &ObjectMeta) -> Option<GraphNode> {
        Some(GraphNode {
            info,
            namespace: m.namespace.clone().unwrap_or_default(),
            name: m.name.clone()?,
            uid: m.uid.clone()?,
            owners: m.owner_references.clone().unwrap_or_default(),
            finalizers: m.finalizers.clone().unwrap_or_default(),
            deleting: m.deletion_timestamp.is_some(),
        })
    }

    fn has_finalizer(&self, f: &str) -> bool {
        self.finalizers.iter().any(|x| x == f)
    }

    fn key(&self) -> String {
        format!(
            "{}/{}/{}",
            self.info.storage_prefix, self.namespace, self.name
        )
    }
}

/// Owners and dependents of every watched object.
#[derive(Default)]
pub struct Graph {
    nodes: HashMap<String, GraphNode>,
    /// owner UID -> dependent UIDs
    dependents: HashMap<String, HashSet<String>>,
    /// storage key -> UID, to find what a relist no longer contains
    by_key: HashMap<String, String>,
}

impl Graph {
    pub fn get(&self, uid: &str) -> Option<&GraphNode> {
        self.nodes.get(uid)
    }

    pub fn dependents_of(&self, uid: &str) -> Vec<GraphNode> {
        self.dependents
            .get(uid)
            .into_iter()
            .flatten()
            .filter_map(|d| self.nodes.get(d).cloned())
            .collect()
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Records an added or changed object; returns the UIDs to look at.
    pub fn upsert(&mut self, node: GraphNode) -> Vec<String> {
        let mut enqueue = Vec::new();
        let key = node.key();
        if let Some(prev_uid) = self.by_key.get(&key).cloned()
            && prev_uid != node.uid
        {
            // Deleted and recreated under the same name between two observations.
            enqueue.extend(self.remove_uid(&prev_uid));
        }
        let old = self.nodes.get(&node.uid).cloned();
        if old.as_ref() == Some(&node) {
            return enqueue;
        }
        if let Some(o) = &old {
            for r in &o.owners {
                if let Some(s) = self.dependents.get_mut(&r.uid) {
                    s.remove(&o.uid);
                    if s.is_empty() {
                        self.dependents.remove(&r.uid);
                    }
                }
            }
        }
        for r in &node.owners {
            self.dependents
                .entry(r.uid.clone())
                .or_default()
                .insert(node.uid.clone());
        }
        if !node.owners.is_empty() || node.deleting {
            enqueue.push(node.uid.clone());
        }
        if node.deleting && !old.as_ref().is_some_and(|o| o.deleting) {
            // Foreground deletion waits for the dependents; orphaning edits them.
            enqueue.extend(
                self.dependents
                    .get(&node.uid)
                    .into_iter()
                    .flatten()
                    .cloned(),
            );
        }
        if let Some(o) = &old {
            // An owner waiting in foreground deletion may be unblocked by a dependent
            // dropping its reference or its blockOwnerDeletion.
            for r in &o.owners {
                let now = node.owners.iter().find(|x| x.uid == r.uid);
                let was_blocking = r.block_owner_deletion == Some(true);
                if now.is_none()
                    || (was_blocking && now.and_then(|x| x.block_owner_deletion) != Some(true))
                {
                    enqueue.push(r.uid.clone());
                }
            }
            if node.deleting && !o.deleting {
                for r in &node.owners {
                    enqueue.push(r.uid.clone());
                }
            }
        }
        self.by_key.insert(key, node.uid.clone());
        self.nodes.insert(node.uid.clone(), node);
        enqueue
    }

    /// Records a deleted object; returns the UIDs to look at (its dependents and owners).
    pub fn remove(&mut self, node: &GraphNode) -> Vec<String> {
        self.remove_uid(&node.uid)
    }

    fn remove_uid(&mut self, uid: &str) -> Vec<String> {
        let Some(old) = self.nodes.remove(uid) else {
            return Vec::new();
        };
        if self.by_key.get(&old.key()).is_some_and(|u| u == uid) {
            self.by_key.remove(&old.key());
        }
        let mut enqueue: Vec<String> = self
            .dependents
            .get(uid)
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        for r in &old.owners {
            if let Some(s) = self.dependents.get_mut(&r.uid) {
                s.remove(uid);
                if s.is_empty() {
                    self.dependents.remove(&r.uid);
                }
            }
            enqueue.push(r.uid.clone());
        }
        enqueue
    }

    /// Replaces everything of one resource after a (re)list; returns the UIDs to look at.
    pub fn replace(&mut self, info: &'static ResourceInfo, nodes: Vec<GraphNode>) -> Vec<String> {
        let listed: HashSet<String> = nodes.iter().map(|n| n.uid.clone()).collect();
        let gone: Vec<String> = self
            .nodes
            .values()
            .filter(|n| std::ptr::eq(n.info, info) && !listed.contains(&n.uid))
            .map(|n| n.uid.clone())
            .collect();
        let mut enqueue = Vec::new();
        for uid in gone {
            enqueue.extend(self.remove_uid(&uid));
        }
        for n in nodes {
            enqueue.extend(self.upsert(n));
        }
        enqueue
    }
}

/// What an owner reference points at, as the collector sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OwnerState {
    /// Exists and is not waiting for its dependents.
    Solid,
    /// Gone (or replaced by another object of the same name).
    Dangling,
    /// Being deleted in the foreground.
    WaitingForDependents,
}

/// The decision for one object with owners (upstream `attemptToDeleteItem`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Keep,
    /// Remove these owner references (missing owners, or owners waiting for dependents).
    DropOwners(Vec<String>),
    /// Delete with this propagation policy.
    Delete(&'static str),
}

pub fn decide(
    node: &GraphNode,
    states: &[(OwnerReference, OwnerState)],
    has_dependents: bool,
) -> Decision {
    let solid = states
        .iter()
        .filter(|(_, s)| *s == OwnerState::Solid)
        .count();
    let dangling: Vec<String> = states
        .iter()
        .filter(|(_, s)| *s == OwnerState::Dangling)
        .map(|(r, _)| r.uid.clone())
        .collect();
    let waiting: Vec<String> = states
        .iter()
        .filter(|(_, s)| *s == OwnerState::WaitingForDependents)
        .map(|(r, _)| r.uid.clone())
        .collect();
    if solid > 0 {
        if dangling.is_empty() && waiting.is_empty() {
            return Decision::Keep;
        }
        return Decision::DropOwners(dangling.into_iter().chain(waiting).collect());
    }
    if !waiting.is_empty() && has_dependents {
        return Decision::Delete("Foreground");
    }
    if node.has_finalizer(ORPHAN) {
        Decision::Delete("Orphan")
    } else if node.has_finalizer(FOREGROUND) {
        Decision::Delete("Foreground")
    } else {
        Decision::Delete("Background")
    }
}

pub struct GarbageCollector {
    pub graph: Mutex<Graph>,
    client: kube::Client,
    recorder: EventRecorder,
}

fn owner_info(r: &OwnerReference) -> Option<&'static ResourceInfo> {
    let (g, v) = resources::split_api_version(&r.api_version);
    resources::find_kind(g, v, &r.kind)
}

impl GarbageCollector {
    fn dynamic(&self, info: &'static ResourceInfo, ns: &str) -> Api<DynamicObject> {
        let ar = api_resource(info);
        if info.namespaced {
            Api::namespaced_with(self.client.clone(), ns, &ar)
        } else {
            Api::all_with(self.client.clone(), &ar)
        }
    }

    /// The state of one owner of `node`: from the graph when it knows the owner, otherwise
    /// from a live read (the graph may not have seen a new owner yet).
    async fn owner_state(&self, node: &GraphNode, r: &OwnerReference) -> Result<OwnerState> {
        let Some(info) = owner_info(r) else {
            // A kind this server does not serve can never be resolved: keep the dependent.
            return Ok(OwnerState::Solid);
        };
        if info.namespaced && !node.info.namespaced {
            let reference = ObjectReference {
                api_version: Some(node.info.api_version()),
                kind: Some(node.info.kind.into()),
                name: Some(node.name.clone()),
                uid: Some(node.uid.clone()),
                ..Default::default()
            };
            self.recorder.record_ref(
                reference,
                EventType::Warning,
                "OwnerRefInvalidNamespace",
                &format!(
                    "ownerRef [{}, namespace: , name: {}, uid: {}] does not exist in namespace \"\"",
                    r.api_version_kind(),
                    r.name,
                    r.uid
                ),
            );
            return Ok(OwnerState::Solid);
        }
        let known = self.graph.lock().get(&r.uid).cloned();
        if let Some(owner) = known {
            return Ok(if owner.deleting && owner.has_finalizer(FOREGROUND) {
                OwnerState::WaitingForDependents
            } else {
                OwnerState::Solid
            });
        }
        let ns = if info.namespaced {
            node.namespace.as_str()
        } else {
            ""
        };
        match self.dynamic(info, ns).get_metadata_opt(&r.name).await? {
            None => Ok(OwnerState::Dangling),
            Some(o) if o.metadata.uid.as_deref() != Some(r.uid.as_str()) => {
                Ok(OwnerState::Dangling)
            }
            Some(o) => {
                let fg = o
                    .metadata
                    .finalizers
                    .as_ref()
                    .is_some_and(|f| f.iter().any(|x| x == FOREGROUND));
                Ok(if o.metadata.deletion_timestamp.is_some() && fg {
                    OwnerState::WaitingForDependents
                } else {
                    OwnerState::Solid
                })
            }
        }
    }

    async fn delete(&self, node: &GraphNode, policy: &str) -> Result<()> {
        let dp = DeleteParams {
            propagation_policy: Some(match policy {
                "Orphan" => kube::api::PropagationPolicy::Orphan,
                "Foreground" => kube::api::PropagationPolicy::Foreground,
                _ => kube::api::PropagationPolicy::Background,
            }),
            preconditions: Some(Preconditions {
                uid: Some(node.uid.clone()),
                resource_version: None,
            }),
            ..Default::default()
        };
        match self
            .dynamic(node.info, &node.namespace)
            .delete(&node.name, &dp)
            .await
        {
            Ok(_) => Ok(()),
            // Gone already, or replaced by a newer object of the same name.
            Err(e) if util::is_not_found(&e) || util::is_conflict(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Every object that names `owner` among its owners, read from the API rather than the
    /// graph: dependents live in the owner's namespace, or anywhere for a cluster-scoped owner.
    async fn live_dependents(&self, owner: &GraphNode) -> Result<Vec<GraphNode>> {
        let mut found = Vec::new();
        for info in watched_resources() {
            if owner.info.namespaced && !info.namespaced {
                continue;
            }
            let ar = api_resource(info);
            let api: Api<DynamicObject> = if info.namespaced && owner.info.namespaced {
                Api::namespaced_with(self.client.clone(), &owner.namespace, &ar)
            } else {
                Api::all_with(self.client.clone(), &ar)
            };
            let list = api.list_metadata(&Default::default()).await?;
            found.extend(
                list.items
                    .iter()
                    .filter_map(|o| GraphNode::from_meta(info, &o.metadata))
                    .filter(|n| n.owners.iter().any(|r| r.uid == owner.uid)),
            );
        }
        Ok(found)
    }

    /// Drops owner references by UID with a strategic merge patch, as upstream does.
    async fn drop_owners(&self, node: &GraphNode, uids: &[String]) -> Result<()> {
        let refs: Vec<serde_json::Value> = uids
            .iter()
            .map(|u| json!({"$patch": "delete", "uid": u}))
            .collect();
        let patch = json!({"metadata": {"ownerReferences": refs, "uid": node.uid}});
        match self
            .dynamic(node.info, &node.namespace)
            .patch(
                &node.name,
                &PatchParams::default(),
                &Patch::Strategic(&patch),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if util::is_not_found(&e) || util::is_conflict(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn remove_finalizer(&self, node: &GraphNode, finalizer: &str) -> Result<()> {
        let api = self.dynamic(node.info, &node.namespace);
        for _ in 0..8 {
            let Some(live) = api.get_metadata_opt(&node.name).await? else {
                return Ok(());
            };
            if live.metadata.uid.as_deref() != Some(node.uid.as_str()) {
                return Ok(());
            }
            let fins = live.metadata.finalizers.clone().unwrap_or_default();
            if !fins.iter().any(|f| f == finalizer) {
                return Ok(());
            }
            let rest: Vec<&String> = fins.iter().filter(|f| *f != finalizer).collect();
            let patch = json!({"metadata": {
                "resourceVersion": live.metadata.resource_version,
                "finalizers": if rest.is_empty() { serde_json::Value::Null } else { json!(rest) },
            }});
            match api
                .patch(&node.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if util::is_not_found(&e) => return Ok(()),
                Err(e) if util::is_conflict(&e) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(util::Error::Other(format!(
            "could not remove the {finalizer} finalizer of {}: it kept changing",
            node.name
        )))
    }

    /// One UID from the queue.
    pub async fn sync(&self, uid: &str) -> Result<Action> {
        let Some(node) = self.graph.lock().get(uid).cloned() else {
            return Ok(Action::AwaitChange);
        };
        if node.deleting {
            if node.has_finalizer(ORPHAN) {
                let mut deps = self.graph.lock().dependents_of(uid);
                // A dependent created just before the owner's delete may not have reached
                // the graph yet (each kind has its own watch); once the finalizer is gone
                // it would be judged dangling and deleted. Orphaning is rare, so look for
                // such dependents with live reads before letting the owner go.
                for dep in self.live_dependents(&node).await? {
                    if !deps.iter().any(|d| d.uid == dep.uid) {
                        deps.push(dep);
                    }
                }
                for dep in deps {
                    self.drop_owners(&dep, &[uid.to_string()]).await?;
                }
                self.remove_finalizer(&node, ORPHAN).await?;
                return Ok(Action::AwaitChange);
            }
            if node.has_finalizer(FOREGROUND) {
                let deps = self.graph.lock().dependents_of(uid);
                let blocking = deps.iter().any(|d| {
                    d.owners
                        .iter()
                        .any(|r| r.uid == uid && r.block_owner_deletion == Some(true))
                });
                if !blocking {
                    self.remove_finalizer(&node, FOREGROUND).await?;
                }
                // Dependents not yet being deleted are collected by their own sync, which sees
                // this owner waiting for them.
                return Ok(Action::AwaitChange);
            }
            return Ok(Action::AwaitChange);
        }
        if node.owners.is_empty() {
            return Ok(Action::AwaitChange);
        }
        let mut states = Vec::new();
        for r in &node.owners {
            states.push((r.clone(), self.owner_state(&node, r).await?));
        }
        let has_dependents = !self.graph.lock().dependents_of(uid).is_empty();
        let mut decision = decide(&node, &states, has_dependents);
        if decision != Decision::Keep {
            // The graph may be behind the object itself (an orphaning owner may just have
            // removed its reference): decide again on the object as it is now, as upstream
            // does before acting.
            let Some(live) = self
                .dynamic(node.info, &node.namespace)
                .get_metadata_opt(&node.name)
                .await?
            else {
                return Ok(Action::AwaitChange);
            };
            let Some(latest) = GraphNode::from_meta(node.info, &live.metadata)
                .filter(|l| l.uid == node.uid && !l.deleting)
            else {
                return Ok(Action::AwaitChange);
            };
            let mut states = Vec::new();
            for r in &latest.owners {
                states.push((r.clone(), self.owner_state(&latest, r).await?));
            }
            if latest.owners.is_empty() {
                return Ok(Action::AwaitChange);
            }
            decision = decide(&latest, &states, has_dependents);
        }
        match decision {
            Decision::Keep => {}
            Decision::DropOwners(uids) => self.drop_owners(&node, &uids).await?,
            Decision::Delete(policy) => {
                tracing::debug!(object = %node.name, namespace = %node.namespace, kind = node.info.kind, policy, "collecting an object whose owners are gone");
                self.delete(&node, policy).await?
            }
        }
        Ok(Action::AwaitChange)
    }
}

trait ApiVersionKind {
    fn api_version_kind(&self) -> String;
}

impl ApiVersionKind for OwnerReference {
    fn api_version_kind(&self) -> String {
        format!("{}/{}", self.api_version, self.kind)
    }
}

async fn watch_resource(
    gc: Arc<GarbageCollector>,
    queue: Arc<WorkQueue<String>>,
    info: &'static ResourceInfo,
    synced: tokio::sync::mpsc::Sender<()>,
    cancel: tokio_util::sync::CancellationToken,
) {
    use kube::runtime::WatchStreamExt;
    let api: Api<PartialObjectMeta<DynamicObject>> =
        Api::all_with(gc.client.clone(), &api_resource(info));
    let mut stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut buffer = Vec::new();
    let mut first = Some(synced);
    loop {
        let ev = tokio::select! {
            _ = cancel.cancelled() => return,
            ev = stream.next() => ev,
        };
        let enqueue = match ev {
            None => return,
            Some(Err(e)) => {
                tracing::debug!(resource = info.resource, error = %e, "garbage collector watch error; retrying");
                continue;
            }
            Some(Ok(watcher::Event::Init)) => {
                buffer.clear();
                continue;
            }
            Some(Ok(watcher::Event::InitApply(o))) => {
                buffer.extend(GraphNode::from_meta(info, &o.metadata));
                continue;
            }
            Some(Ok(watcher::Event::InitDone)) => {
                let e = gc.graph.lock().replace(info, std::mem::take(&mut buffer));
                if let Some(tx) = first.take() {
                    let _ = tx.send(()).await;
                }
                e
            }
            Some(Ok(watcher::Event::Apply(o))) => match GraphNode::from_meta(info, &o.metadata) {
                Some(n) => gc.graph.lock().upsert(n),
                None => Vec::new(),
            },
            Some(Ok(watcher::Event::Delete(o))) => match GraphNode::from_meta(info, &o.metadata) {
                Some(n) => gc.graph.lock().remove(&n),
                None => Vec::new(),
            },
        };
        for uid in enqueue {
            queue.add(uid);
        }
    }
}

async fn run(ctx: Arc<Context>) {
    let gc = Arc::new(GarbageCollector {
        graph: Mutex::new(Graph::default()),
        client: ctx.client.clone(),
        recorder: ctx.recorder(COMPONENT),
    });
    let queue: Arc<WorkQueue<String>> = WorkQueue::new();
    let watched = watched_resources();
    let (tx, mut rx) = tokio::sync::mpsc::channel(watched.len());
    for info in &watched {
        tokio::spawn(watch_resource(
            gc.clone(),
            queue.clone(),
            info,
            tx.clone(),
            ctx.cancel.clone(),
        ));
    }
    drop(tx);
    // Collect only once the graph holds every resource: a dependent must not be judged
    // before its owner's kind was listed.
    let mut seen = 0;
    while seen < watched.len() {
        tokio::select! {
            _ = ctx.cancel.cancelled() => return,
            r = rx.recv() => match r {
                Some(()) => seen += 1,
                None => break,
            },
        }
    }
    tracing::debug!(
        objects = gc.graph.lock().len(),
        "garbage collector graph synced"
    );
    // upstream `--concurrent-gc-syncs` is 20.
    util::run_queue(queue, 20, ctx.cancel.clone(), move |uid: String| {
        let gc = gc.clone();
        async move { gc.sync(&uid).await }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(resource: &str) -> &'static ResourceInfo {
        watched_resources()
            .into_iter()
            .find(|r| r.resource == resource)
            .unwrap()
    }

    fn owner(uid: &str, block: bool) -> OwnerReference {
        OwnerReference {
            api_version: "apps/v1".into(),
            kind: "ReplicaSet".into(),
            name: format!("rs-{uid}"),
            uid: uid.into(),
            controller: Some(true),
            block_owner_deletion: Some(block),
        }
    }

    fn node(resource: &str, uid: &str, owners: Vec<OwnerReference>) -> GraphNode {
        GraphNode {
            info: info(resource),
            namespace: "d".into(),
            name: format!("n-{uid}"),
            uid: uid.into(),
            owners,
            finalizers: vec![],
            deleting: false,
        }
    }

    #[test]
    fn every_stored_resource_but_events_is_watched() {
        let w = watched_resources();
        assert!(w.iter().any(|r| r.resource == "pods"));
        assert!(w.iter().any(|r| r.resource == "replicasets"));
        assert!(w.iter().any(|r| r.resource == "leases"));
        assert!(!w.iter().any(|r| r.resource == "events"));
        assert_eq!(
            w.iter()
                .filter(|r| r.resource == "horizontalpodautoscalers")
                .count(),
            1,
            "one watch per stored resource"
        );
    }

    #[test]
    fn the_graph_links_dependents_and_reports_what_to_look_at() {
        let mut g = Graph::default();
        assert_eq!(
            g.upsert(node("replicasets", "rs", vec![])),
            Vec::<String>::new()
        );
        assert_eq!(
            g.upsert(node("pods", "p1", vec![owner("rs", true)])),
            vec!["p1"]
        );
        g.upsert(node("pods", "p2", vec![owner("rs", false)]));
        assert_eq!(g.dependents_of("rs").len(), 2);
        let mut deleting = node("replicasets", "rs", vec![]);
        deleting.deleting = true;
        deleting.finalizers = vec![FOREGROUND.into()];
        let mut e = g.upsert(deleting.clone());
        e.sort();
        assert_eq!(
            e,
            vec!["p1", "p2", "rs"],
            "foreground deletion looks at the dependents"
        );
        let e = g.remove(&node("pods", "p1", vec![owner("rs", true)]));
        assert_eq!(e, vec!["rs"], "a waiting owner is told its dependent went");
        let mut e = g.remove(&deleting);
        e.sort();
        assert_eq!(e, vec!["p2"]);
        assert_eq!(
            g.dependents_of("rs").len(),
            1,
            "a dependent keeps pointing at its vanished owner until it is collected"
        );
    }

    #[test]
    fn relists_report_objects_deleted_while_the_watch_was_down() {
        let mut g = Graph::default();
        g.upsert(node("replicasets", "rs", vec![]));
        g.upsert(node("pods", "p1", vec![owner("rs", true)]));
        let e = g.replace(info("replicasets"), vec![]);
        assert_eq!(e, vec!["p1"]);
        assert!(g.get("rs").is_none());
        assert!(g.get("p1").is_some(), "other resources are untouched");
    }

    #[test]
    fn decisions_follow_upstreams_attempt_to_delete() {
        let n = node("pods", "p", vec![owner("a", true), owner("b", true)]);
        let st = |a: OwnerState, b: OwnerState| vec![(owner("a", true), a), (owner("b", true), b)];
        assert_eq!(
            decide(&n, &st(OwnerState::Solid, OwnerState::Solid), false),
            Decision::Keep
        );
        assert_eq!(
            decide(&n, &st(OwnerState::Solid, OwnerState::Dangling), false),
            Decision::DropOwners(vec!["b".into()])
        );
        assert_eq!(
            decide(&n, &st(OwnerState::Dangling, OwnerState::Dangling), false),
            Decision::Delete("Background")
        );
        assert_eq!(
            decide(
                &n,
                &st(OwnerState::WaitingForDependents, OwnerState::Dangling),
                true
            ),
            Decision::Delete("Foreground"),
            "a dependent with dependents of its own blocks its owner in turn"
        );
        let mut orphaning = n.clone();
        orphaning.finalizers = vec![ORPHAN.into()];
        assert_eq!(
            decide(
                &orphaning,
                &st(OwnerState::Dangling, OwnerState::Dangling),
                false
            ),
            Decision::Delete("Orphan")
        );
    }
}
