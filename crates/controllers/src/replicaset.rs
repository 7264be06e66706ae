//! The ReplicaSet controller, which also runs ReplicationControllers (upstream's replication
//! manager is the same code over a converted object): keeps `spec.replicas` pods matching the
//! selector, adopting orphans and releasing pods whose labels stop matching, creating pods in
//! slow-start batches and deleting the ones that are least far along first, with expectations
//! so that a burst of watch events never makes it create or delete too many. Status counts
//! replicas, fully labeled, ready and available pods; a failed create or delete shows as the
//! ReplicaFailure condition.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use ferrokube_api::selector::LabelSelector as Selector;
use ferrokube_client::workqueue::{Action, WorkQueue, run_workers};
use ferrokube_client::{Change, Informer, key_of};
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::{
    Pod, PodTemplateSpec, ReplicationController, ReplicationControllerCondition,
    ReplicationControllerStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::clock::Clock;
use crate::controller_utils::{
    BURST_REPLICAS, PodControl, SLOW_START_INITIAL_BATCH_SIZE, add_owner_indexes, claim_candidates,
    controller_of, is_pod_active, is_pod_available, is_pod_ready, labels_of, new_controller_ref,
    patch_params, pod_key, selector, selector_from_map, slow_start_batch, sort_for_deletion,
};
use crate::expectations::Expectations;
use crate::ref_manager::RefManager;
use crate::{Context, Error, Result};

/// The status fields both kinds share.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReplicaStatus {
    pub replicas: i32,
    pub fully_labeled_replicas: i32,
    pub ready_replicas: i32,
    pub available_replicas: i32,
    pub observed_generation: i64,
    /// (type, status, reason, message, lastTransitionTime)
    pub conditions: Vec<Condition>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    pub type_: String,
    pub status: String,
    pub reason: String,
    pub message: String,
    pub last_transition_time: Option<Time>,
}

/// What the controller needs to know about ReplicaSets and ReplicationControllers.
pub trait ReplicaSetKind:
    Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + Serialize
    + DeserializeOwned
    + Debug
    + Send
    + Sync
    + 'static
{
    /// The event source upstream uses.
    const COMPONENT: &'static str;
    fn selector(&self) -> Selector;
    fn replicas(&self) -> i32;
    fn min_ready_seconds(&self) -> i32;
    fn template(&self) -> Option<&PodTemplateSpec>;
    fn replica_status(&self) -> ReplicaStatus;
    /// The status as JSON for the status subresource.
    fn status_json(s: &ReplicaStatus) -> serde_json::Value;
}

fn cond_json(c: &Condition) -> serde_json::Value {
    json!({"type": c.type_, "status": c.status, "reason": c.reason, "message": c.message,
           "lastTransitionTime": c.last_transition_time})
}

/// A merge patch value that also clears the listed fields when they are absent (Go omits
/// zero values, so "absent" means zero).
pub fn replace_fields(mut v: serde_json::Value, fields: &[&str]) -> serde_json::Value {
    if let Some(o) = v.as_object_mut() {
        for f in fields {
            o.entry(f.to_string()).or_insert(serde_json::Value::Null);
        }
    }
    v
}

fn status_json(s: &ReplicaStatus) -> serde_json::Value {
    let mut v = json!({"replicas": s.replicas});
    let o = v.as_object_mut().expect("object");
    for (k, n) in [
        ("fullyLabeledReplicas", s.fully_labeled_replicas),
        ("readyReplicas", s.ready_replicas),
        ("availableReplicas", s.available_replicas),
    ] {
        if n != 0 {
            o.insert(k.into(), json!(n));
        }
    }
    if s.observed_generation != 0 {
        o.insert("observedGeneration".into(), json!(s.observed_generation));
    }
    if !s.conditions.is_empty() {
        o.insert(
            "conditions".into(),
            s.conditions.iter().map(cond_json).collect(),
        );
    }
    v
}

impl ReplicaSetKind for ReplicaSet {
    const COMPONENT: &'static str = "replicaset-controller";
    fn selector(&self) -> Selector {
        selector(self.spec.as_ref().map(|s| &s.selector))
    }
    fn replicas(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }
    fn min_ready_seconds(&self) -> i32 {
        self.spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }
    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref()?.template.as_ref()
    }
    fn replica_status(&self) -> ReplicaStatus {
        let s: ReplicaSetStatus = self.status.clone().unwrap_or_default();
        ReplicaStatus {
            replicas: s.replicas,
            fully_labeled_replicas: s.fully_labeled_replicas.unwrap_or(0),
            ready_replicas: s.ready_replicas.unwrap_or(0),
            available_replicas: s.available_replicas.unwrap_or(0),
            observed_generation: s.observed_generation.unwrap_or(0),
            conditions: s
                .conditions
                .unwrap_or_default()
                .into_iter()
                .map(|c: ReplicaSetCondition| Condition {
                    type_: c.type_,
                    status: c.status,
                    reason: c.reason.unwrap_or_default(),
                    message: c.message.unwrap_or_default(),
                    last_transition_time: c.last_transition_time,
                })
                .collect(),
        }
    }
    fn status_json(s: &ReplicaStatus) -> serde_json::Value {
        status_json(s)
    }
}

impl ReplicaSetKind for ReplicationController {
    const COMPONENT: &'static str = "replication-controller";
    fn selector(&self) -> Selector {
        selector_from_map(self.spec.as_ref().and_then(|s| s.selector.as_ref()))
    }
    fn replicas(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }
    fn min_ready_seconds(&self) -> i32 {
        self.spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }
    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref()?.template.as_ref()
    }
    fn replica_status(&self) -> ReplicaStatus {
        let s: ReplicationControllerStatus = self.status.clone().unwrap_or_default();
        ReplicaStatus {
            replicas: s.replicas,
            fully_labeled_replicas: s.fully_labeled_replicas.unwrap_or(0),
            ready_replicas: s.ready_replicas.unwrap_or(0),
            available_replicas: s.available_replicas.unwrap_or(0),
            observed_generation: s.observed_generation.unwrap_or(0),
            conditions: s
                .conditions
                .unwrap_or_default()
                .into_iter()
                .map(|c: ReplicationControllerCondition| Condition {
                    type_: c.type_,
                    status: c.status,
                    reason: c.reason.unwrap_or_default(),
                    message: c.message.unwrap_or_default(),
                    last_transition_time: c.last_transition_time,
                })
                .collect(),
        }
    }
    fn status_json(s: &ReplicaStatus) -> serde_json::Value {
        status_json(s)
    }
}

/// The controller for one of the two kinds.
pub struct ReplicaSetController<K: ReplicaSetKind> {
    client: kube::Client,
    sets: Arc<Informer<K>>,
    pods: Arc<Informer<Pod>>,
    queue: Arc<WorkQueue<String>>,
    expectations: Arc<Expectations>,
    pod_control: PodControl,
    clock: Clock,
    burst_replicas: usize,
}

/// Resolves a pod's controller reference to one of our objects (kind, name and UID match).
fn resolve<K: ReplicaSetKind>(
    sets: &Informer<K>,
    namespace: &str,
    r: &k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
) -> Option<Arc<K>> {
    if r.kind != K::kind(&()) {
        return None;
    }
    let s = sets.get_named(namespace, &r.name)?;
    (s.uid().as_deref() == Some(r.uid.as_str())).then_some(s)
}

/// Our objects whose selector matches the pod (candidates to adopt an orphan).
fn pod_owners<K: ReplicaSetKind>(sets: &Informer<K>, pod: &Pod) -> Vec<Arc<K>> {
    let ns = pod.namespace().unwrap_or_default();
    let labels = labels_of(&pod.metadata);
    if labels.is_empty() {
        return Vec::new();
    }
    sets.list_namespace(&ns)
        .into_iter()
        .filter(|s| {
            let sel = s.selector();
            !sel.is_everything() && sel.matches(labels)
        })
        .collect()
}

impl<K: ReplicaSetKind> ReplicaSetController<K> {
    /// Wires the event handlers: they only turn objects into keys (and note observed
    /// creations and deletions in the expectations).
    pub fn new(
        client: kube::Client,
        sets: Arc<Informer<K>>,
        pods: Arc<Informer<Pod>>,
        recorder: ferrokube_client::events::EventRecorder,
        clock: Clock,
    ) -> Arc<Self> {
        add_owner_indexes(&pods);
        let queue: Arc<WorkQueue<String>> = WorkQueue::new();
        let expectations = Arc::new(Expectations::new());
        {
            let (q, exp) = (queue.clone(), expectations.clone());
            sets.on_change(move |c| {
                let key = key_of(&**c.object());
                if let Change::Deleted(_) = c {
                    exp.delete(&key);
                }
                q.add(key);
            });
        }
        {
            let (q, exp, sets2) = (queue.clone(), expectations.clone(), sets.clone());
            let deleted = move |pod: &Pod, q: &WorkQueue<String>| {
                let Some(r) = controller_of(&pod.metadata) else {
                    return;
                };
                let ns = pod.namespace().unwrap_or_default();
                if let Some(s) = resolve(&sets2, &ns, r) {
                    let key = key_of(&*s);
                    exp.deletion_observed(&key, &pod_key(pod));
                    q.add(key);
                }
            };
            let (q2, exp2, sets3) = (queue.clone(), expectations.clone(), sets.clone());
            pods.on_change(move |c| match c {
                Change::Added(pod) => {
                    if pod.metadata.deletion_timestamp.is_some() {
                        return deleted(pod, &q);
                    }
                    let ns = pod.namespace().unwrap_or_default();
                    if let Some(r) = controller_of(&pod.metadata) {
                        if let Some(s) = resolve(&sets3, &ns, r) {
                            let key = key_of(&*s);
                            exp2.creation_observed(&key);
                            q2.add(key);
                        }
                        return;
                    }
                    for s in pod_owners(&sets3, pod) {
                        q2.add(key_of(&*s));
                    }
                }
                Change::Updated { old, new } => {
                    if old.metadata.resource_version == new.metadata.resource_version {
                        return;
                    }
                    let label_changed = old.metadata.labels != new.metadata.labels;
                    if new.metadata.deletion_timestamp.is_some() {
                        deleted(new, &q);
                        if label_changed {
                            deleted(old, &q);
                        }
                        return;
                    }
                    let ns = new.namespace().unwrap_or_default();
                    let (cur, prev) = (controller_of(&new.metadata), controller_of(&old.metadata));
                    let ref_changed = cur != prev;
                    if ref_changed
                        && let Some(p) = prev
                        && let Some(s) = resolve(&sets3, &ns, p)
                    {
                        q2.add(key_of(&*s));
                    }
                    if let Some(r) = cur {
                        if let Some(s) = resolve(&sets3, &ns, r) {
                            let key = key_of(&*s);
                            let mrs = s.min_ready_seconds();
                            if !is_pod_ready(old) && is_pod_ready(new) && mrs > 0 {
                                q2.add_after(key.clone(), Duration::from_secs(mrs as u64 + 1));
                            }
                            q2.add(key);
                        }
                        return;
                    }
                    if label_changed || ref_changed {
                        for s in pod_owners(&sets3, new) {
                            q2.add(key_of(&*s));
                        }
                    }
                }
                Change::Deleted(pod) => deleted(pod, &q),
            });
        }
        Arc::new(ReplicaSetController {
            pod_control: PodControl::new(client.clone(), recorder),
            client,
            sets,
            pods,
            queue,
            expectations,
            clock,
            burst_replicas: BURST_REPLICAS,
        })
    }

    pub fn queue(&self) -> &Arc<WorkQueue<String>> {
        &self.queue
    }

    pub fn expectations(&self) -> &Expectations {
        &self.expectations
    }

    /// Waits for the caches, then runs `workers` workers until `cancel`.
    pub async fn run(self: Arc<Self>, workers: usize, cancel: tokio_util::sync::CancellationToken) {
        tokio::select! {
            _ = async { self.sets.wait_synced().await; self.pods.wait_synced().await } => {}
            _ = cancel.cancelled() => return,
        }
        let q = self.queue.clone();
        let stop = cancel.clone();
        tokio::spawn(async move {
            stop.cancelled().await;
            q.shut_down();
        });
        let me = self.clone();
        run_workers(self.queue.clone(), workers, move |key: String| {
            let me = me.clone();
            async move { me.sync(&key).await }
        })
        .await;
    }

    /// One reconcile of `namespace/name`.
    pub async fn sync(&self, key: &str) -> Result<Action> {
        let Some(set) = self.sets.get(key) else {
            self.expectations.delete(key);
            return Ok(Action::AwaitChange);
        };
        let needs_sync = self.expectations.satisfied(key);
        let sel = set.selector();
        let ns = set.namespace().unwrap_or_default();
        let uid = set.uid().unwrap_or_default();
        let candidates: Vec<Arc<Pod>> = claim_candidates(&self.pods, &uid, &ns)
            .into_iter()
            .filter(|p| is_pod_active(p))
            .collect();
        let refs = RefManager::new(self.client.clone(), &*set, new_controller_ref(&*set), &sel);
        let pods = refs.claim(candidates, |_| true).await?;

        let mut manage_err = None;
        if needs_sync && set.meta().deletion_timestamp.is_none() {
            manage_err = self.manage_replicas(&pods, &set, key).await.err();
        }
        let status = self.calculate_status(&set, &pods, manage_err.as_ref());
        let updated = self.update_status(&set, status).await?;
        if manage_err.is_none()
            && updated.min_ready_seconds() > 0
            && updated.ready_replicas == updated.replicas_wanted
            && updated.available_replicas != updated.replicas_wanted
        {
            self.queue.add_after(
                key.to_string(),
                Duration::from_secs(updated.min_ready_seconds() as u64),
            );
        }
        match manage_err {
            Some(e) => Err(e),
            None => Ok(Action::AwaitChange),
        }
    }

    async fn manage_replicas(&self, pods: &[Arc<Pod>], set: &Arc<K>, key: &str) -> Result<()> {
        let wanted = set.replicas().max(0) as usize;
        let ns = set.namespace().unwrap_or_default();
        if pods.len() < wanted {
            let diff = (wanted - pods.len()).min(self.burst_replicas);
            let Some(template) = set.template() else {
                return Err(Error::invalid(key, "no pod template"));
            };
            self.expectations.expect_creations(key, diff);
            let controller_ref = new_controller_ref(&**set);
            let (ok, _, err) = slow_start_batch(diff, SLOW_START_INITIAL_BATCH_SIZE, |_| {
                let (ns, r) = (ns.clone(), controller_ref.clone());
                async move {
                    match self.pod_control.create_pod(&ns, template, &**set, r).await {
                        Err(e) if e.is_namespace_terminating() => Ok(()),
                        other => other.map(|_| ()),
                    }
                }
            })
            .await;
            let skipped = diff - ok;
            if skipped > 0 {
                // The informer will never see these: do not wait for them.
                self.expectations.lower(key, skipped as i64, 0);
            }
            if let Some(e) = err {
                return Err(e);
            }
        } else if pods.len() > wanted {
            let diff = (pods.len() - wanted).min(self.burst_replicas);
            let to_delete = self.pods_to_delete(pods, set, diff);
            let keys: Vec<String> = to_delete.iter().map(|p| pod_key(p)).collect();
            self.expectations.expect_deletions(key, &keys);
            let results = futures::future::join_all(to_delete.iter().map(|p| {
                let name = p.name_any();
                let ns = ns.clone();
                async move {
                    let r = self.pod_control.delete_pod(&ns, &name, &**set).await;
                    (pod_key(p), r)
                }
            }))
            .await;
            let mut first = None;
            for (pk, r) in results {
                if let Err(e) = r {
                    self.expectations.deletion_observed(key, &pk);
                    if !e.is_not_found() && first.is_none() {
                        first = Some(e);
                    }
                }
            }
            if let Some(e) = first {
                return Err(e);
            }
        }
        Ok(())
    }

    /// `getPodsToDelete`: ranked by how far along each pod is, doubled-up pods first. Related
    /// pods are those of sets with the same controller (siblings in a Deployment).
    fn pods_to_delete(&self, pods: &[Arc<Pod>], set: &Arc<K>, diff: usize) -> Vec<Arc<Pod>> {
        if diff >= pods.len() {
            return pods.to_vec();
        }
        let mut related: Vec<Arc<Pod>> = Vec::new();
        match controller_of(set.meta()) {
            Some(owner) => {
                let ns = set.namespace().unwrap_or_default();
                for s in self.sets.list_namespace(&ns) {
                    if controller_of(s.meta()).is_some_and(|r| r.uid == owner.uid) {
                        related.extend(self.pods.by_index(
                            crate::controller_utils::INDEX_CONTROLLER,
                            &s.uid().unwrap_or_default(),
                        ));
                    }
                }
            }
            None => related.extend(pods.iter().cloned()),
        }
        let mut on_node: HashMap<String, usize> = HashMap::new();
        for p in related.iter().filter(|p| is_pod_active(p)) {
            if let Some(n) = p.spec.as_ref().and_then(|s| s.node_name.as_ref()) {
                *on_node.entry(n.clone()).or_default() += 1;
            }
        }
        let mut ranked: Vec<(Arc<Pod>, usize)> = pods
            .iter()
            .map(|p| {
                let rank = p
                    .spec
                    .as_ref()
                    .and_then(|s| s.node_name.as_ref())
                    .and_then(|n| on_node.get(n))
                    .copied()
                    .unwrap_or(0);
                (p.clone(), rank)
            })
            .collect();
        sort_for_deletion(&mut ranked, self.clock.now());
        ranked.into_iter().take(diff).map(|(p, _)| p).collect()
    }

    fn calculate_status(&self, set: &K, pods: &[Arc<Pod>], err: Option<&Error>) -> ReplicaStatus {
        let mut st = set.replica_status();
        let template_labels: BTreeMap<String, String> = set
            .template()
            .and_then(|t| t.metadata.as_ref())
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        let now = self.clock.now();
        let mrs = set.min_ready_seconds();
        let (mut fully, mut ready, mut available) = (0, 0, 0);
        for p in pods {
            let labels = labels_of(&p.metadata);
            if template_labels
                .iter()
                .all(|(k, v)| labels.get(k) == Some(v))
            {
                fully += 1;
            }
            if is_pod_ready(p) {
                ready += 1;
                if is_pod_available(p, mrs, now) {
                    available += 1;
                }
            }
        }
        let failure = st
            .conditions
            .iter()
            .position(|c| c.type_ == "ReplicaFailure");
        match (err, failure) {
            (Some(e), None) => {
                let diff = pods.len() as i64 - set.replicas() as i64;
                let reason = if diff < 0 {
                    "FailedCreate"
                } else if diff > 0 {
                    "FailedDelete"
                } else {
                    ""
                };
                st.conditions.push(Condition {
                    type_: "ReplicaFailure".into(),
                    status: "True".into(),
                    reason: reason.into(),
                    message: e.api_message(),
                    last_transition_time: Some(self.clock.now_time()),
                });
            }
            (None, Some(i)) => {
                st.conditions.remove(i);
            }
            _ => {}
        }
        st.replicas = pods.len() as i32;
        st.fully_labeled_replicas = fully;
        st.ready_replicas = ready;
        st.available_replicas = available;
        st
    }

    /// Writes the status unless it is unchanged; returns what the status now says.
    async fn update_status(&self, set: &K, mut st: ReplicaStatus) -> Result<Updated> {
        let generation = set.meta().generation.unwrap_or(0);
        let cur = set.replica_status();
        let mut out = Updated {
            replicas_wanted: set.replicas(),
            ready_replicas: st.ready_replicas,
            available_replicas: st.available_replicas,
            min_ready_seconds: set.min_ready_seconds(),
        };
        if cur.replicas == st.replicas
            && cur.fully_labeled_replicas == st.fully_labeled_replicas
            && cur.ready_replicas == st.ready_replicas
            && cur.available_replicas == st.available_replicas
            && cur.observed_generation == generation
            && cur.conditions == st.conditions
        {
            return Ok(out);
        }
        st.observed_generation = generation;
        let ns = set.namespace().unwrap_or_default();
        let name = set.name_any();
        let api: Api<K> = Api::namespaced(self.client.clone(), &ns);
        // Replacing every status field (no resourceVersion precondition): the work queue never
        // runs one key twice at once, and the status is computed from the caches anyway.
        let patch = json!({"status": replace_fields(
            K::status_json(&st),
            &["fullyLabeledReplicas", "readyReplicas", "availableReplicas", "observedGeneration", "conditions"],
        )});
        let res = api
            .patch_status(&name, &patch_params(), &Patch::Merge(&patch))
            .await
            .map_err(|e| Error::api("updating status of", format!("{ns}/{name}"), e))?;
        out.replicas_wanted = res.replicas();
        Ok(out)
    }
}

struct Updated {
    replicas_wanted: i32,
    ready_replicas: i32,
    available_replicas: i32,
    min_ready_seconds: i32,
}

impl Updated {
    fn min_ready_seconds(&self) -> i32 {
        self.min_ready_seconds
    }
}

fn start<K: ReplicaSetKind>(ctx: Arc<Context>) -> futures::future::BoxFuture<'static, ()> {
    Box::pin(async move {
        let c = ReplicaSetController::<K>::new(
            ctx.client.clone(),
            ctx.informers.get::<K>(),
            ctx.informers.get::<Pod>(),
            ctx.recorder(K::COMPONENT),
            ctx.clock.clone(),
        );
        c.run(ctx.config.workers, ctx.cancel.clone()).await;
    })
}

pub fn start_replicaset(ctx: Arc<Context>) -> futures::future::BoxFuture<'static, ()> {
    start::<ReplicaSet>(ctx)
}

pub fn start_replicationcontroller(ctx: Arc<Context>) -> futures::future::BoxFuture<'static, ()> {
    start::<ReplicationController>(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakeApi, obj, pod, settle};
    use ferrokube_client::events::EventRecorder;

    fn rs(replicas: i32, min_ready: i32) -> ReplicaSet {
        obj(json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "web", "namespace": "default", "uid": "rs-uid", "generation": 1,
                         "creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {"replicas": replicas, "minReadySeconds": min_ready,
                     "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web", "tier": "fe"}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
            "status": {"replicas": 0}
        }))
    }

    struct Rig {
        api: FakeApi,
        sets: Arc<Informer<ReplicaSet>>,
        pods: Arc<Informer<Pod>>,
        c: Arc<ReplicaSetController<ReplicaSet>>,
    }

    fn rig(set: ReplicaSet) -> Rig {
        let clock = Clock::at("2024-01-01T00:10:00Z".parse().unwrap());
        let api = FakeApi::new(clock.clone());
        api.insert(&set);
        let sets = Informer::<ReplicaSet>::detached();
        let pods = Informer::<Pod>::detached();
        sets.apply(set);
        let client = api.client();
        let rec = EventRecorder::new(client.clone(), "replicaset-controller", "");
        let c = ReplicaSetController::new(client, sets.clone(), pods.clone(), rec, clock);
        Rig { api, sets, pods, c }
    }

    impl Rig {
        /// Feeds what the fake API holds back into the informers, as watches would.
        fn observe(&self) {
            for p in self.api.list::<Pod>() {
                self.pods.apply(p);
            }
            for s in self.api.list::<ReplicaSet>() {
                self.sets.apply(s);
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn missing_pods_are_created_owned_and_named_after_the_replica_set() {
        let r = rig(rs(3, 0));
        r.c.sync("default/web").await.unwrap();
        let creates = r.api.writes("POST", "/pods");
        assert_eq!(creates.len(), 3);
        let body = &creates[0].body;
        assert_eq!(body["metadata"]["generateName"], "web-");
        assert_eq!(body["metadata"]["labels"]["tier"], "fe");
        let owner = &body["metadata"]["ownerReferences"][0];
        assert_eq!(owner["kind"], "ReplicaSet");
        assert_eq!(owner["uid"], "rs-uid");
        assert_eq!(owner["controller"], true);
        assert_eq!(owner["blockOwnerDeletion"], true);
        assert_eq!(r.c.expectations().pending("default/web"), Some((3, 0)));

        // Until the creates are observed, another sync must not create more.
        r.c.sync("default/web").await.unwrap();
        assert_eq!(r.api.writes("POST", "/pods").len(), 3);
        r.observe();
        assert!(r.c.expectations().satisfied("default/web"));
        r.c.sync("default/web").await.unwrap();
        assert_eq!(r.api.writes("POST", "/pods").len(), 3, "converged");
        let st = r
            .api
            .get::<ReplicaSet>("default", "web")
            .unwrap()
            .status
            .unwrap();
        assert_eq!(st.replicas, 3);
        assert_eq!(st.fully_labeled_replicas, Some(3));
        assert_eq!(st.observed_generation, Some(1));
        settle().await;
        let events = r.api.events();
        assert_eq!(
            events
                .iter()
                .filter(|(r, m)| r == "SuccessfulCreate" && m.starts_with("Created pod: web-"))
                .count(),
            3,
            "{events:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn creates_come_in_slow_start_batches_and_stop_at_the_first_failure() {
        let r = rig(rs(10, 0));
        r.api.fail_next("POST", "/pods", 500);
        r.api.clear_requests();
        let mut tries = 0;
        // The first create fails: the first batch (size 1) stops everything.
        assert!(r.c.sync("default/web").await.is_err());
        tries += 1;
        assert_eq!(r.api.writes("POST", "/pods").len(), tries);
        assert_eq!(
            r.c.expectations().pending("default/web"),
            Some((0, 0)),
            "skipped creates are not expected"
        );
        let st = r
            .api
            .get::<ReplicaSet>("default", "web")
            .unwrap()
            .status
            .unwrap();
        let cond = &st.conditions.unwrap()[0];
        assert_eq!(
            (
                cond.type_.as_str(),
                cond.status.as_str(),
                cond.reason.as_deref()
            ),
            ("ReplicaFailure", "True", Some("FailedCreate"))
        );
        settle().await;
        assert!(
            r.api
                .events()
                .iter()
                .any(|(r, m)| r == "FailedCreate" && m.starts_with("Error creating: "))
        );

        r.sets
            .apply(r.api.get::<ReplicaSet>("default", "web").unwrap());
        r.c.sync("default/web").await.unwrap();
        assert_eq!(r.api.writes("POST", "/pods").len(), 1 + 10);
        r.observe();
        r.c.sync("default/web").await.unwrap();
        let st = r
            .api
            .get::<ReplicaSet>("default", "web")
            .unwrap()
            .status
            .unwrap();
        assert!(
            st.conditions.unwrap_or_default().is_empty(),
            "ReplicaFailure cleared"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn surplus_pods_are_deleted_least_far_along_first() {
        let r = rig(rs(2, 0));
        let owner = Some(("ReplicaSet", "web", "rs-uid"));
        let l = json!({"app": "web", "tier": "fe"});
        let pods = [
            pod("running-old", l.clone(), owner, "n1", "Running", true, 1000),
            pod(
                "running-new",
                l.clone(),
                owner,
                "n2",
                "Running",
                true,
                999_999_000,
            ),
            pod("not-ready", l.clone(), owner, "n3", "Running", false, 1000),
            pod("pending", l.clone(), owner, "n3", "Pending", false, 1000),
            pod("unscheduled", l.clone(), owner, "", "Pending", false, 1000),
        ];
        for p in pods {
            r.api.insert(&p);
            r.pods.apply(p);
        }
        r.c.sync("default/web").await.unwrap();
        let mut deleted: Vec<String> = r
            .api
            .writes("DELETE", "")
            .iter()
            .map(|w| w.path.rsplit('/').next().unwrap().to_string())
            .collect();
        deleted.sort();
        assert_eq!(deleted, ["not-ready", "pending", "unscheduled"]);
        assert_eq!(r.c.expectations().pending("default/web"), Some((0, 3)));
        settle().await;
        assert!(
            r.api
                .events()
                .contains(&("SuccessfulDelete".into(), "Deleted pod: pending".into()))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn orphans_are_adopted_and_pods_that_stop_matching_are_released() {
        let r = rig(rs(2, 0));
        let orphan = pod(
            "orphan",
            json!({"app": "web"}),
            None,
            "n1",
            "Running",
            true,
            1000,
        );
        let strayed = pod(
            "strayed",
            json!({"app": "other"}),
            Some(("ReplicaSet", "web", "rs-uid")),
            "n1",
            "Running",
            true,
            1000,
        );
        let foreign = pod(
            "foreign",
            json!({"app": "web"}),
            Some(("ReplicaSet", "x", "x-uid")),
            "n1",
            "Running",
            true,
            1000,
        );
        for p in [orphan, strayed, foreign] {
            r.api.insert(&p);
            r.pods.apply(p);
        }
        r.c.sync("default/web").await.unwrap();
        let orphan = r.api.get::<Pod>("default", "orphan").unwrap();
        assert_eq!(controller_of(&orphan.metadata).unwrap().uid, "rs-uid");
        let strayed = r.api.get::<Pod>("default", "strayed").unwrap();
        assert!(controller_of(&strayed.metadata).is_none(), "released");
        let foreign = r.api.get::<Pod>("default", "foreign").unwrap();
        assert_eq!(controller_of(&foreign.metadata).unwrap().uid, "x-uid");
        // One adopted pod plus one new pod make two.
        assert_eq!(r.api.writes("POST", "/pods").len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn available_replicas_wait_for_min_ready_seconds() {
        let r = rig(rs(1, 30));
        let now = 1704067800; // the rig clock: 2024-01-01T00:10:00Z
        let p = pod(
            "p",
            json!({"app": "web", "tier": "fe"}),
            Some(("ReplicaSet", "web", "rs-uid")),
            "n1",
            "Running",
            true,
            now - 10,
        );
        r.api.insert(&p);
        r.pods.apply(p);
        r.c.sync("default/web").await.unwrap();
        let st = r
            .api
            .get::<ReplicaSet>("default", "web")
            .unwrap()
            .status
            .unwrap();
        assert_eq!((st.ready_replicas, st.available_replicas), (Some(1), None));
        r.sets
            .apply(r.api.get::<ReplicaSet>("default", "web").unwrap());
        // The controller asked to look again after minReadySeconds.
        let k = r.c.queue().get().await.unwrap(); // the key queued by the informer
        r.c.queue().done(&k);
        tokio::time::advance(Duration::from_secs(31)).await;
        settle().await;
        assert!(!r.c.queue().is_empty(), "requeued after minReadySeconds");
        r.c.sync("default/web").await.unwrap();
        let st = r
            .api
            .get::<ReplicaSet>("default", "web")
            .unwrap()
            .status
            .unwrap();
        assert_eq!(st.available_replicas, Some(1));
    }

    #[tokio::test(start_paused = true)]
    async fn replication_controllers_share_the_implementation() {
        let rc: ReplicationController = obj(json!({
            "apiVersion": "v1", "kind": "ReplicationController",
            "metadata": {"name": "nginx", "namespace": "default", "uid": "rc-uid", "generation": 1},
            "spec": {"replicas": 2, "selector": {"app": "nginx"},
                     "template": {"metadata": {"labels": {"app": "nginx"}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
        }));
        let clock = Clock::new();
        let api = FakeApi::new(clock.clone());
        api.insert(&rc);
        let sets = Informer::<ReplicationController>::detached();
        sets.apply(rc);
        let pods = Informer::<Pod>::detached();
        let client = api.client();
        let rec = EventRecorder::new(client.clone(), "replication-controller", "");
        let c = ReplicaSetController::new(client, sets, pods, rec, clock);
        c.sync("default/nginx").await.unwrap();
        let creates = api.writes("POST", "/pods");
        assert_eq!(creates.len(), 2);
        assert_eq!(
            creates[0].body["metadata"]["ownerReferences"][0]["apiVersion"],
            "v1"
        );
        assert_eq!(
            creates[0].body["metadata"]["ownerReferences"][0]["kind"],
            "ReplicationController"
        );
        settle().await;
        assert_eq!(api.events().len(), 2);
    }
}
