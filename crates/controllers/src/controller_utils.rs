//! Helpers every workload controller shares, as upstream's `controller_utils.go` and
//! `podutil`: owner references, pod readiness and availability, which pods to delete first,
//! pods from templates, slow-start batches, and the pod writes with their events.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use ferrokube_api::selector::LabelSelector as Selector;
use ferrokube_client::Informer;
use ferrokube_client::events::{EventRecorder, EventType};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, ObjectMeta, OwnerReference, Time,
};
use kube::api::{Api, DeleteParams, PostParams};
use kube::{Resource, ResourceExt};

use crate::clock::Clock;
use crate::{Error, Result};

/// Field manager of every write, as kube-controller-manager's requests carry it.
pub const FIELD_MANAGER: &str = "kube-controller-manager";

/// Index of informers: the UID of the object's controller.
pub const INDEX_CONTROLLER: &str = "controller-uid";
/// Index of informers: the namespace of objects that have no controller.
pub const INDEX_ORPHANS: &str = "orphan-namespace";

/// Upstream's `SlowStartInitialBatchSize`.
pub const SLOW_START_INITIAL_BATCH_SIZE: usize = 1;

/// Upstream's `BurstReplicas`: at most this many creates or deletes per sync.
pub const BURST_REPLICAS: usize = 500;

pub fn post_params() -> PostParams {
    PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    }
}

pub fn patch_params() -> kube::api::PatchParams {
    kube::api::PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    }
}

/// The owner reference with `controller: true`, if any.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
}

/// `metav1.NewControllerRef`.
pub fn new_controller_ref<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).to_string(),
        kind: K::kind(&()).to_string(),
        name: owner.name_any(),
        uid: owner.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Adds the controller-UID and orphan indexes to a shared informer (idempotent).
pub fn add_owner_indexes<K>(inf: &Informer<K>)
where
    K: Resource + Clone + Send + Sync + 'static,
{
    inf.add_index(INDEX_CONTROLLER, |o: &K| {
        controller_of(o.meta())
            .map(|r| r.uid.clone())
            .into_iter()
            .collect()
    });
    inf.add_index(INDEX_ORPHANS, |o: &K| {
        if controller_of(o.meta()).is_none() {
            vec![o.meta().namespace.clone().unwrap_or_default()]
        } else {
            Vec::new()
        }
    });
}

/// Objects a controller might claim: the ones it controls and the orphans of its namespace.
pub fn claim_candidates<K>(inf: &Informer<K>, owner_uid: &str, namespace: &str) -> Vec<Arc<K>>
where
    K: Resource + Clone + Send + Sync + 'static,
{
    let mut v = inf.by_index(INDEX_CONTROLLER, owner_uid);
    v.extend(inf.by_index(INDEX_ORPHANS, namespace));
    v
}

/// A structured selector as the matcher: `None` selects nothing, `{}` everything.
pub fn selector(sel: Option<&LabelSelector>) -> Selector {
    let v = sel.and_then(|s| serde_json::to_value(s).ok());
    Selector::from_structured(v.as_ref()).unwrap_or_else(|_| Selector::nothing())
}

/// A selector from a label map (ReplicationController, Service): equality on every pair.
pub fn selector_from_map(m: Option<&BTreeMap<String, String>>) -> Selector {
    let v = serde_json::json!({"matchLabels": m.cloned().unwrap_or_default()});
    Selector::from_structured(Some(&v)).unwrap_or_else(|_| Selector::nothing())
}

pub fn labels_of(meta: &ObjectMeta) -> &BTreeMap<String, String> {
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    meta.labels.as_ref().unwrap_or(&EMPTY)
}

pub fn key(namespace: &str, name: &str) -> String {
    if namespace.is_empty() {
        name.to_string()
    } else {
        format!("{namespace}/{name}")
    }
}

pub fn pod_key(p: &Pod) -> String {
    key(
        p.metadata.namespace.as_deref().unwrap_or(""),
        p.metadata.name.as_deref().unwrap_or(""),
    )
}

pub fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// Not finished and not being deleted (upstream `IsPodActive`).
pub fn is_pod_active(p: &Pod) -> bool {
    let ph = phase(p);
    ph != "Succeeded" && ph != "Failed" && p.metadata.deletion_timestamp.is_none()
}

pub fn is_pod_terminating(p: &Pod) -> bool {
    let ph = phase(p);
    ph != "Succeeded" && ph != "Failed" && p.metadata.deletion_timestamp.is_some()
}

fn ready_condition(p: &Pod) -> Option<&k8s_openapi::api::core::v1::PodCondition> {
    p.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

pub use crate::util::is_pod_ready;

/// When the pod last became ready (the Ready condition's transition time).
pub fn pod_ready_time(p: &Pod) -> Option<&Time> {
    ready_condition(p)
        .filter(|c| c.status == "True")
        .and_then(|c| c.last_transition_time.as_ref())
}

/// Ready for at least `min_ready_seconds` (upstream `IsPodAvailable`).
pub fn is_pod_available(p: &Pod, min_ready_seconds: i32, now: jiff::Timestamp) -> bool {
    if !is_pod_ready(p) {
        return false;
    }
    if min_ready_seconds <= 0 {
        return true;
    }
    match ready_condition(p).and_then(|c| c.last_transition_time.as_ref()) {
        Some(t) => t.0 + jiff::SignedDuration::from_secs(min_ready_seconds as i64) < now,
        None => false,
    }
}

fn phase_ordinal(p: &Pod) -> u8 {
    match phase(p) {
        "Pending" => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 3,
    }
}

fn deletion_cost(p: &Pod) -> i32 {
    p.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("controller.kubernetes.io/pod-deletion-cost"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn max_restarts(p: &Pod) -> i32 {
    p.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().map(|c| c.restart_count).max().unwrap_or(0))
        .unwrap_or(0)
}

/// `afterOrZero`: a zero time sorts first, then the later time.
fn after_or_zero(a: Option<&Time>, b: Option<&Time>) -> bool {
    match (a, b) {
        (None, _) | (_, None) => a.is_none(),
        (Some(a), Some(b)) => a.0 > b.0,
    }
}

/// Upstream's `logarithmicRankDiff`: times in the same power-of-two age bucket rank equal.
fn log_rank_diff(a: &Time, b: &Time, now: jiff::Timestamp) -> i64 {
    let rank = |t: &Time| {
        let d = now.as_nanosecond() - t.0.as_nanosecond();
        if d > 0 { (d as f64).log2() as i64 } else { -1 }
    };
    rank(a) - rank(b)
}

/// Upstream's `ActivePodsWithRanks.Less`: true when `a` should be deleted before `b`.
/// `rank` counts the related pods on the same node (doubled-up pods go first).
pub fn delete_before(a: &Pod, ra: usize, b: &Pod, rb: usize, now: jiff::Timestamp) -> bool {
    let node = |p: &Pod| {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default()
    };
    let (na, nb) = (node(a), node(b));
    // 1. Unassigned < assigned.
    if na != nb && (na.is_empty() || nb.is_empty()) {
        return na.is_empty();
    }
    // 2. Pending < Unknown < Running.
    if phase_ordinal(a) != phase_ordinal(b) {
        return phase_ordinal(a) < phase_ordinal(b);
    }
    // 3. Not ready < ready.
    if is_pod_ready(a) != is_pod_ready(b) {
        return !is_pod_ready(a);
    }
    // 4. Lower pod-deletion-cost first.
    if deletion_cost(a) != deletion_cost(b) {
        return deletion_cost(a) < deletion_cost(b);
    }
    // 5. Doubled up < not doubled up.
    if ra != rb {
        return ra > rb;
    }
    // 6. Ready for less time first (logarithmic buckets).
    if is_pod_ready(a) && is_pod_ready(b) {
        let (ta, tb) = (pod_ready_time(a), pod_ready_time(b));
        if ta.map(|t| &t.0) != tb.map(|t| &t.0) {
            return match (ta, tb) {
                (Some(ta), Some(tb)) => {
                    let d = log_rank_diff(ta, tb, now);
                    if d == 0 {
                        a.metadata.uid < b.metadata.uid
                    } else {
                        d < 0
                    }
                }
                _ => after_or_zero(ta, tb),
            };
        }
    }
    // 7. More restarts first.
    if max_restarts(a) != max_restarts(b) {
        return max_restarts(a) > max_restarts(b);
    }
    // 8. Newer first (logarithmic buckets).
    let (ca, cb) = (
        a.metadata.creation_timestamp.as_ref(),
        b.metadata.creation_timestamp.as_ref(),
    );
    if ca.map(|t| &t.0) != cb.map(|t| &t.0) {
        return match (ca, cb) {
            (Some(ta), Some(tb)) => {
                let d = log_rank_diff(ta, tb, now);
                if d == 0 {
                    a.metadata.uid < b.metadata.uid
                } else {
                    d < 0
                }
            }
            _ => after_or_zero(ca, cb),
        };
    }
    false
}

/// Sorts pods so the ones to delete first come first.
pub fn sort_for_deletion(pods: &mut [(Arc<Pod>, usize)], now: jiff::Timestamp) {
    pods.sort_by(|(a, ra), (b, rb)| {
        if delete_before(a, *ra, b, *rb, now) {
            Ordering::Less
        } else if delete_before(b, *rb, a, *ra, now) {
            Ordering::Greater
        } else {
            Ordering::Equal
        }
    });
}

/// `getPodsPrefix`: `<name>-` unless that is not a valid generateName.
pub fn pods_prefix(controller_name: &str) -> String {
    let p = format!("{controller_name}-");
    if p.len() > 253 {
        controller_name.to_string()
    } else {
        p
    }
}

/// `GetPodFromTemplate`: a pod with the template's labels, annotations, finalizers and spec,
/// named by `generateName` after its controller.
pub fn pod_from_template(
    template: &PodTemplateSpec,
    controller_name: &str,
    controller_ref: Option<OwnerReference>,
) -> Pod {
    let tm = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(pods_prefix(controller_name)),
            labels: tm.labels,
            annotations: tm.annotations,
            finalizers: tm.finalizers,
            owner_references: controller_ref.map(|r| vec![r]),
            ..Default::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

/// Runs `count` calls in batches of 1, 2, 4, ... that each run concurrently, stopping after
/// the first batch with a failure. Returns how many succeeded and the first error.
pub async fn slow_start_batch<F, Fut, T>(
    count: usize,
    initial: usize,
    f: F,
) -> (usize, Vec<T>, Option<Error>)
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut remaining = count;
    let mut successes = 0;
    let mut results = Vec::new();
    let mut batch = remaining.min(initial.max(1));
    let mut index = 0;
    while batch > 0 {
        let futs: Vec<Fut> = (0..batch).map(|i| f(index + i)).collect();
        index += batch;
        let outcomes = futures::future::join_all(futs).await;
        let mut first_err = None;
        for o in outcomes {
            match o {
                Ok(v) => {
                    successes += 1;
                    results.push(v);
                }
                Err(e) => {
                    if first_err.is_none() {
                        first_err = Some(e);
                    }
                }
            }
        }
        if first_err.is_some() {
            return (successes, results, first_err);
        }
        remaining -= batch;
        batch = remaining.min(2 * batch);
    }
    (successes, results, None)
}

/// Creates and deletes pods for a controller, recording upstream's events on it.
#[derive(Clone)]
pub struct PodControl {
    pub client: kube::Client,
    pub recorder: EventRecorder,
}

impl PodControl {
    pub fn new(client: kube::Client, recorder: EventRecorder) -> Self {
        PodControl { client, recorder }
    }

    /// `CreatePods`: a pod from the template, owned by `owner`.
    pub async fn create_pod<K: Resource<DynamicType = ()>>(
        &self,
        namespace: &str,
        template: &PodTemplateSpec,
        owner: &K,
        controller_ref: OwnerReference,
    ) -> Result<Pod> {
        let pod = pod_from_template(template, &owner.name_any(), Some(controller_ref));
        self.create_pod_object(namespace, pod, owner).await
    }

    /// Creates a pod built by the caller (StatefulSet, DaemonSet, Job set names and fields).
    pub async fn create_pod_object<K: Resource<DynamicType = ()>>(
        &self,
        namespace: &str,
        pod: Pod,
        owner: &K,
    ) -> Result<Pod> {
        if pod.metadata.labels.as_ref().is_none_or(|l| l.is_empty()) {
            return Err(Error::invalid(
                key(namespace, &owner.name_any()),
                "unable to create pods, no labels",
            ));
        }
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        match api.create(&post_params(), &pod).await {
            Ok(p) => {
                self.recorder.record(
                    owner,
                    EventType::Normal,
                    "SuccessfulCreate",
                    &format!("Created pod: {}", p.name_any()),
                );
                Ok(p)
            }
            Err(e) => {
                let err = Error::api("creating pod for", key(namespace, &owner.name_any()), e);
                if !err.is_namespace_terminating() {
                    self.recorder.record(
                        owner,
                        EventType::Warning,
                        "FailedCreate",
                        &format!("Error creating: {}", err.api_message()),
                    );
                }
                Err(err)
            }
        }
    }

    /// `DeletePod`: a NotFound answer counts as deleted.
    pub async fn delete_pod<K: Resource<DynamicType = ()>>(
        &self,
        namespace: &str,
        name: &str,
        owner: &K,
    ) -> Result<()> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => {
                self.recorder.record(
                    owner,
                    EventType::Normal,
                    "SuccessfulDelete",
                    &format!("Deleted pod: {name}"),
                );
                Ok(())
            }
            Err(e) => {
                let err = Error::api("deleting pod", key(namespace, name), e);
                if !err.is_not_found() {
                    self.recorder.record(
                        owner,
                        EventType::Warning,
                        "FailedDelete",
                        &format!("Error deleting: {}", err.api_message()),
                    );
                }
                Err(err)
            }
        }
    }
}

/// Sorts objects by creation time, then name (upstream `ByCreationTimestamp`).
pub fn by_creation(a: &ObjectMeta, b: &ObjectMeta) -> Ordering {
    let ta = a.creation_timestamp.as_ref().map(|t| t.0);
    let tb = b.creation_timestamp.as_ref().map(|t| t.0);
    ta.cmp(&tb).then_with(|| a.name.cmp(&b.name))
}

/// The clock's now as the time conditions and statuses carry.
pub fn now(clock: &Clock) -> Time {
    clock.now_time()
}
