//! The DaemonSet controller: one daemon pod on every node the pod may run on (nodeSelector,
//! required node affinity and taints judged as the scheduler would, with the tolerations every
//! daemon pod gets). Pods are created unbound with a required node affinity on
//! `metadata.name`, so the scheduler binds them, as upstream does. Updates roll out node by
//! node within maxUnavailable / maxSurge (or wait for deletes with OnDelete); every template
//! is kept as a ControllerRevision whose hash labels the pods.

mod update;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use ferrokube_api::selector::LabelSelector as Selector;
use ferrokube_client::events::{EventRecorder, EventType};
use ferrokube_client::workqueue::{Action, WorkQueue, run_workers};
use ferrokube_client::{Change, Informer, key_of};
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    PodSpec, PodTemplateSpec, Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::ResourceExt;
use kube::api::{Api, Patch};
use parking_lot::Mutex;
use serde_json::json;
use tokio::time::Instant;

use crate::clock::Clock;
use crate::controller_utils::{
    BURST_REPLICAS, PodControl, SLOW_START_INITIAL_BATCH_SIZE, add_owner_indexes, claim_candidates,
    controller_of, is_pod_available, is_pod_ready, labels_of, new_controller_ref, patch_params,
    phase, pod_from_template, pod_key, selector,
};
use crate::expectations::Expectations;
use crate::history::CONTROLLER_REVISION_HASH;
use crate::node_predicates::{matches_node_affinity, taints, untolerated_taint};
use crate::ref_manager::RefManager;
use crate::replicaset::replace_fields;
use crate::{Context, Error, Result};

/// Legacy label of daemon pods (`extensions.DaemonSetTemplateGenerationKey`).
pub const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";
const TEMPLATE_GENERATION_ANNOTATION: &str = "deprecated.daemonset.template.generation";

/// `AddOrUpdateDaemonPodTolerations`: daemon pods survive node problems and run on nodes
/// that are cordoned or under pressure.
pub fn add_daemon_tolerations(spec: &mut PodSpec) {
    let mut add = |key: &str, effect: &str| {
        let t = Toleration {
            key: Some(key.into()),
            operator: Some("Exists".into()),
            effect: Some(effect.into()),
            ..Default::default()
        };
        let ts = spec.tolerations.get_or_insert_with(Vec::new);
        match ts.iter_mut().find(|x| {
            x.key == t.key && x.operator == t.operator && x.value == t.value && x.effect == t.effect
        }) {
            Some(x) => *x = t,
            None => ts.push(t),
        }
    };
    add("node.kubernetes.io/not-ready", "NoExecute");
    add("node.kubernetes.io/unreachable", "NoExecute");
    add("node.kubernetes.io/disk-pressure", "NoSchedule");
    add("node.kubernetes.io/memory-pressure", "NoSchedule");
    add("node.kubernetes.io/pid-pressure", "NoSchedule");
    add("node.kubernetes.io/unschedulable", "NoSchedule");
    if spec.host_network == Some(true) {
        add("node.kubernetes.io/network-unavailable", "NoSchedule");
    }
}

/// `ReplaceDaemonSetPodNodeNameNodeAffinity`: the pod may only go to `node`.
pub fn replace_node_name_affinity(affinity: Option<Affinity>, node: &str) -> Affinity {
    let req = NodeSelectorRequirement {
        key: "metadata.name".into(),
        operator: "In".into(),
        values: Some(vec![node.into()]),
    };
    let term = NodeSelectorTerm {
        match_fields: Some(vec![req]),
        match_expressions: None,
    };
    let mut a = affinity.unwrap_or_default();
    let na = a.node_affinity.get_or_insert_with(NodeAffinity::default);
    match na
        .required_during_scheduling_ignored_during_execution
        .as_mut()
    {
        Some(sel) => sel.node_selector_terms = vec![term],
        None => {
            na.required_during_scheduling_ignored_during_execution = Some(NodeSelector {
                node_selector_terms: vec![term],
            })
        }
    }
    a
}

/// `GetTargetNodeName`: where a daemon pod is or will be.
pub fn target_node(p: &Pod) -> Option<String> {
    let spec = p.spec.as_ref()?;
    if let Some(n) = spec.node_name.as_ref().filter(|n| !n.is_empty()) {
        return Some(n.clone());
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    for t in terms {
        for f in t.match_fields.iter().flatten() {
            if f.key == "metadata.name" && f.operator == "In" {
                let v = f.values.as_deref().unwrap_or(&[]);
                return (v.len() == 1).then(|| v[0].clone());
            }
        }
    }
    None
}

fn template_generation(ds: &DaemonSet) -> Option<i64> {
    ds.metadata
        .annotations
        .as_ref()?
        .get(TEMPLATE_GENERATION_ANNOTATION)?
        .parse()
        .ok()
}

/// `IsPodUpdated`.
pub fn is_pod_updated(p: &Pod, hash: &str, generation: Option<i64>) -> bool {
    let labels = labels_of(&p.metadata);
    let template_matches =
        generation.is_some_and(|g| labels.get(TEMPLATE_GENERATION_LABEL) == Some(&g.to_string()));
    let hash_matches =
        !hash.is_empty() && labels.get(CONTROLLER_REVISION_HASH).map(String::as_str) == Some(hash);
    hash_matches || template_matches
}

fn ds_template(ds: &DaemonSet) -> PodTemplateSpec {
    ds.spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default()
}

fn ds_selector(ds: &DaemonSet) -> Selector {
    selector(ds.spec.as_ref().map(|s| &s.selector))
}

fn min_ready_seconds(ds: &DaemonSet) -> i32 {
    ds.spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0)
}

/// `NodeShouldRunDaemonPod`: (should run, may keep running).
pub fn node_should_run(node: &Node, ds: &DaemonSet) -> (bool, bool) {
    let mut spec = ds_template(ds).spec.unwrap_or_default();
    let node_name = node.metadata.name.clone().unwrap_or_default();
    if spec
        .node_name
        .as_ref()
        .is_some_and(|n| !n.is_empty() && *n != node_name)
    {
        return (false, false);
    }
    spec.node_name = Some(node_name);
    add_daemon_tolerations(&mut spec);
    if !matches_node_affinity(&spec, node) {
        return (false, false);
    }
    let tolerations = spec.tolerations.clone().unwrap_or_default();
    let ts = taints(node);
    let fits = untolerated_taint(ts, &tolerations, |t| {
        t.effect == "NoSchedule" || t.effect == "NoExecute"
    })
    .is_none();
    if !fits {
        let no_execute = untolerated_taint(ts, &tolerations, |t| t.effect == "NoExecute").is_some();
        return (false, !no_execute);
    }
    (true, true)
}

/// `podByCreationTimestampAndPhase`: scheduled pods first, then oldest.
fn sort_pods(pods: &mut [Arc<Pod>]) {
    pods.sort_by(|a, b| {
        let sa = a
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_ref())
            .is_some_and(|n| !n.is_empty());
        let sb = b
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_ref())
            .is_some_and(|n| !n.is_empty());
        sb.cmp(&sa)
            .then_with(|| crate::controller_utils::by_creation(&a.metadata, &b.metadata))
    });
}

/// Upstream's failed-pod backoff (1 s doubling to 15 min) per DaemonSet and node.
#[derive(Default)]
struct Backoff {
    entries: Mutex<HashMap<String, (Duration, Instant)>>,
}

const BACKOFF_INITIAL: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(15 * 60);

impl Backoff {
    fn in_backoff(&self, key: &str) -> Option<Duration> {
        let e = self.entries.lock();
        let (d, at) = e.get(key)?;
        (at.elapsed() < *d).then_some(*d)
    }

    fn next(&self, key: &str) {
        let mut e = self.entries.lock();
        let now = Instant::now();
        let d = match e.get(key) {
            Some((d, at)) if now.duration_since(*at) <= 2 * BACKOFF_MAX => {
                (*d * 2).min(BACKOFF_MAX)
            }
            _ => BACKOFF_INITIAL,
        };
        e.insert(key.to_string(), (d, now));
    }
}

pub struct DaemonSetController {
    client: kube::Client,
    dss: Arc<Informer<DaemonSet>>,
    nodes: Arc<Informer<Node>>,
    pods: Arc<Informer<Pod>>,
    revisions: Arc<Informer<ControllerRevision>>,
    queue: Arc<WorkQueue<String>>,
    expectations: Arc<Expectations>,
    pod_control: PodControl,
    recorder: EventRecorder,
    clock: Clock,
    failed_backoff: Backoff,
}

fn resolve(dss: &Informer<DaemonSet>, ns: &str, r: &OwnerReference) -> Option<Arc<DaemonSet>> {
    if r.kind != "DaemonSet" {
        return None;
    }
    let d = dss.get_named(ns, &r.name)?;
    (d.metadata.uid.as_deref() == Some(r.uid.as_str())).then_some(d)
}

fn matching(
    dss: &Informer<DaemonSet>,
    ns: &str,
    labels: &std::collections::BTreeMap<String, String>,
) -> Vec<String> {
    if labels.is_empty() {
        return Vec::new();
    }
    dss.list_namespace(ns)
        .into_iter()
        .filter(|d| {
            let s = ds_selector(d);
            !s.is_everything() && s.matches(labels)
        })
        .map(|d| key_of(&*d))
        .collect()
}

impl DaemonSetController {
    pub fn new(
        client: kube::Client,
        dss: Arc<Informer<DaemonSet>>,
        nodes: Arc<Informer<Node>>,
        pods: Arc<Informer<Pod>>,
        revisions: Arc<Informer<ControllerRevision>>,
        recorder: EventRecorder,
        clock: Clock,
    ) -> Arc<Self> {
        add_owner_indexes(&pods);
        add_owner_indexes(&revisions);
        let queue: Arc<WorkQueue<String>> = WorkQueue::new();
        let expectations = Arc::new(Expectations::new());
        {
            let (q, exp) = (queue.clone(), expectations.clone());
            dss.on_change(move |c| {
                let key = key_of(&**c.object());
                if let Change::Deleted(_) = c {
                    exp.delete(&key);
                }
                q.add(key);
            });
        }
        {
            let (q, d2) = (queue.clone(), dss.clone());
            nodes.on_change(move |c| {
                if let Change::Updated { old, new } = c
                    && old.metadata.labels == new.metadata.labels
                    && old.spec == new.spec
                {
                    return;
                }
                for d in d2.list() {
                    q.add(key_of(&*d));
                }
            });
        }
        {
            let (q, d2) = (queue.clone(), dss.clone());
            revisions.on_change(move |c| {
                let r = c.object();
                let ns = r.namespace().unwrap_or_default();
                match controller_of(&r.metadata) {
                    Some(o) => {
                        if let Some(d) = resolve(&d2, &ns, o) {
                            q.add(key_of(&*d));
                        }
                    }
                    None => {
                        for k in matching(&d2, &ns, labels_of(&r.metadata)) {
                            q.add(k);
                        }
                    }
                }
            });
        }
        {
            let (q, exp, d2) = (queue.clone(), expectations.clone(), dss.clone());
            let deleted = {
                let (q, exp, d2) = (q.clone(), exp.clone(), d2.clone());
                move |pod: &Pod| {
                    let Some(r) = controller_of(&pod.metadata) else {
                        return;
                    };
                    if let Some(d) = resolve(&d2, &pod.namespace().unwrap_or_default(), r) {
                        let key = key_of(&*d);
                        exp.deletion_observed(&key, &pod_key(pod));
                        q.add(key);
                    }
                }
            };
            pods.on_change(move |c| match c {
                Change::Added(pod) => {
                    if pod.metadata.deletion_timestamp.is_some() {
                        return deleted(pod);
                    }
                    let ns = pod.namespace().unwrap_or_default();
                    match controller_of(&pod.metadata) {
                        Some(r) => {
                            if let Some(d) = resolve(&d2, &ns, r) {
                                let key = key_of(&*d);
                                exp.creation_observed(&key);
                                q.add(key);
                            }
                        }
                        None => {
                            for k in matching(&d2, &ns, labels_of(&pod.metadata)) {
                                q.add(k);
                            }
                        }
                    }
                }
                Change::Updated { old, new } => {
                    if old.metadata.resource_version == new.metadata.resource_version {
                        return;
                    }
                    if new.metadata.deletion_timestamp.is_some() {
                        deleted(new);
                        return;
                    }
                    let ns = new.namespace().unwrap_or_default();
                    let (cur, prev) = (controller_of(&new.metadata), controller_of(&old.metadata));
                    if cur != prev
                        && let Some(p) = prev
                        && let Some(d) = resolve(&d2, &ns, p)
                    {
                        q.add(key_of(&*d));
                    }
                    match cur {
                        Some(r) => {
                            if let Some(d) = resolve(&d2, &ns, r) {
                                let key = key_of(&*d);
                                let mrs = min_ready_seconds(&d);
                                if !is_pod_ready(old) && is_pod_ready(new) && mrs > 0 {
                                    q.add_after(key.clone(), Duration::from_secs(mrs as u64 + 1));
                                }
                                q.add(key);
                            }
                        }
                        None => {
                            if cur != prev || old.metadata.labels != new.metadata.labels {
                                for k in matching(&d2, &ns, labels_of(&new.metadata)) {
                                    q.add(k);
                                }
                            }
                        }
                    }
                }
                Change::Deleted(pod) => deleted(pod),
            });
        }
        Arc::new(DaemonSetController {
            pod_control: PodControl::new(client.clone(), recorder.clone()),
            client,
            dss,
            nodes,
            pods,
            revisions,
            queue,
            expectations,
            recorder,
            clock,
            failed_backoff: Backoff::default(),
        })
    }

    pub fn queue(&self) -> &Arc<WorkQueue<String>> {
        &self.queue
    }

    pub async fn run(self: Arc<Self>, workers: usize, cancel: tokio_util::sync::CancellationToken) {
        tokio::select! {
            _ = async {
                self.dss.wait_synced().await;
                self.nodes.wait_synced().await;
                self.pods.wait_synced().await;
                self.revisions.wait_synced().await;
            } => {}
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
            async move { me.sync(&key).await.map(|_| Action::AwaitChange) }
        })
        .await;
    }

    /// `syncDaemonSet`.
    pub async fn sync(&self, key: &str) -> Result<()> {
        let Some(ds) = self.dss.get(key) else {
            self.expectations.delete(key);
            return Ok(());
        };
        let nodes = self.nodes.list();
        let sel = ds.spec.as_ref().map(|s| &s.selector);
        if sel.is_some_and(|s| {
            s.match_labels.as_ref().is_none_or(|m| m.is_empty())
                && s.match_expressions.as_ref().is_none_or(|m| m.is_empty())
        }) {
            self.recorder.record(
                &*ds,
                EventType::Warning,
                "SelectingAll",
                "This daemon set is selecting all pods. A non-empty selector is required.",
            );
            return Ok(());
        }
        if ds.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        let (cur, old) = self.construct_history(&ds).await?;
        let hash = labels_of(&cur.metadata)
            .get(CONTROLLER_REVISION_HASH)
            .cloned()
            .unwrap_or_default();
        if !self.expectations.satisfied(key) {
            return self.update_status(&ds, &nodes, &hash, false).await;
        }
        let res = self.update_daemon_set(&ds, &nodes, &hash, key, &old).await;
        let status = self.update_status(&ds, &nodes, &hash, true).await;
        res?;
        status
    }

    async fn update_daemon_set(
        &self,
        ds: &Arc<DaemonSet>,
        nodes: &[Arc<Node>],
        hash: &str,
        key: &str,
        old: &[ControllerRevision],
    ) -> Result<()> {
        self.manage(ds, nodes, hash).await?;
        if self.expectations.satisfied(key) {
            let strategy = ds
                .spec
                .as_ref()
                .and_then(|s| s.update_strategy.as_ref())
                .and_then(|u| u.type_.as_deref())
                .unwrap_or("RollingUpdate");
            if strategy == "RollingUpdate" {
                self.rolling_update(ds, nodes, hash).await?;
            }
        }
        self.cleanup_history(ds, old).await
    }

    /// The DaemonSet's pods after claiming (adopting matching orphans, releasing strays).
    async fn daemon_pods(&self, ds: &DaemonSet) -> Result<Vec<Arc<Pod>>> {
        let sel = ds_selector(ds);
        let candidates = claim_candidates(
            &self.pods,
            &ds.uid().unwrap_or_default(),
            &ds.namespace().unwrap_or_default(),
        );
        RefManager::new(self.client.clone(), ds, new_controller_ref(ds), &sel)
            .claim(candidates, |_| true)
            .await
    }

    /// `getNodesToDaemonPods`.
    async fn nodes_to_daemon_pods(
        &self,
        ds: &DaemonSet,
        include_deleted_terminal: bool,
    ) -> Result<HashMap<String, Vec<Arc<Pod>>>> {
        let mut m: HashMap<String, Vec<Arc<Pod>>> = HashMap::new();
        for p in self.daemon_pods(ds).await? {
            let terminal = matches!(phase(&p), "Succeeded" | "Failed");
            if !include_deleted_terminal && terminal && p.metadata.deletion_timestamp.is_some() {
                continue;
            }
            if let Some(n) = target_node(&p) {
                m.entry(n).or_default().push(p);
            }
        }
        Ok(m)
    }

    async fn manage(&self, ds: &Arc<DaemonSet>, nodes: &[Arc<Node>], hash: &str) -> Result<()> {
        let node_pods = self.nodes_to_daemon_pods(ds, false).await?;
        let mut needing = Vec::new();
        let mut to_delete = Vec::new();
        for n in nodes {
            let (need, del) = self.pods_should_be_on_node(n, &node_pods, ds, hash);
            needing.extend(need);
            to_delete.extend(del);
        }
        // Unscheduled pods aimed at nodes that no longer exist would never be scheduled.
        let names: HashSet<String> = nodes
            .iter()
            .filter_map(|n| n.metadata.name.clone())
            .collect();
        for (node, pods) in &node_pods {
            if names.contains(node) {
                continue;
            }
            for p in pods {
                let unscheduled = p
                    .spec
                    .as_ref()
                    .and_then(|s| s.node_name.as_ref())
                    .is_none_or(|n| n.is_empty());
                if unscheduled && p.metadata.deletion_timestamp.is_none() {
                    to_delete.push(p.name_any());
                }
            }
        }
        self.sync_nodes(ds, &to_delete, &needing, hash).await
    }

    /// `podsShouldBeOnNode`: (nodes needing a pod, pods to delete) for one node.
    fn pods_should_be_on_node(
        &self,
        node: &Node,
        node_pods: &HashMap<String, Vec<Arc<Pod>>>,
        ds: &DaemonSet,
        hash: &str,
    ) -> (Vec<String>, Vec<String>) {
        let (should_run, should_continue) = node_should_run(node, ds);
        let name = node.metadata.name.clone().unwrap_or_default();
        let pods = node_pods.get(&name);
        let mut needing = Vec::new();
        let mut to_delete = Vec::new();
        if should_run && pods.is_none() {
            needing.push(name);
            return (needing, to_delete);
        }
        if should_continue {
            let mut running: Vec<Arc<Pod>> = Vec::new();
            for p in pods.into_iter().flatten() {
                if p.metadata.deletion_timestamp.is_some() {
                    continue;
                }
                match phase(p) {
                    "Failed" => {
                        let bkey = format!(
                            "{}/{}/{name}",
                            ds.namespace().unwrap_or_default(),
                            ds.name_any()
                        );
                        if let Some(d) = self.failed_backoff.in_backoff(&bkey) {
                            self.queue.add_after(key_of(ds), d);
                            continue;
                        }
                        self.failed_backoff.next(&bkey);
                        self.recorder.record(
                            ds,
                            EventType::Warning,
                            "FailedDaemonPod",
                            &format!(
                                "Found failed daemon pod {}/{} on node {name}, will try to kill it",
                                p.namespace().unwrap_or_default(),
                                p.name_any()
                            ),
                        );
                        to_delete.push(p.name_any());
                    }
                    "Succeeded" => to_delete.push(p.name_any()),
                    _ => running.push(p.clone()),
                }
            }
            if !update::allows_surge(ds) {
                if running.len() > 1 {
                    sort_pods(&mut running);
                    to_delete.extend(running[1..].iter().map(|p| p.name_any()));
                }
                return (needing, to_delete);
            }
            if running.len() <= 1 {
                if running.is_empty() && should_run {
                    needing.push(name);
                }
                return (needing, to_delete);
            }
            sort_pods(&mut running);
            let generation = template_generation(ds);
            let (mut oldest_new, mut oldest_old): (Option<Arc<Pod>>, Option<Arc<Pod>>) =
                (None, None);
            for p in &running {
                let slot = if is_pod_updated(p, hash, generation) {
                    &mut oldest_new
                } else {
                    &mut oldest_old
                };
                if slot.is_none() {
                    *slot = Some(p.clone());
                } else {
                    to_delete.push(p.name_any());
                }
            }
            if let (Some(n), Some(o)) = (oldest_new, oldest_old)
                && (!is_pod_ready(&o)
                    || is_pod_available(&n, min_ready_seconds(ds), self.clock.now()))
            {
                to_delete.push(o.name_any());
            }
        } else if let Some(pods) = pods {
            for p in pods {
                if p.metadata.deletion_timestamp.is_none() {
                    to_delete.push(p.name_any());
                }
            }
        }
        (needing, to_delete)
    }

    /// `syncNodes`: deletes pods and creates pods for nodes, at most a burst of each.
    async fn sync_nodes(
        &self,
        ds: &Arc<DaemonSet>,
        to_delete: &[String],
        needing: &[String],
        hash: &str,
    ) -> Result<()> {
        let key = key_of(&**ds);
        let ns = ds.namespace().unwrap_or_default();
        let create = needing.len().min(BURST_REPLICAS);
        let delete = &to_delete[..to_delete.len().min(BURST_REPLICAS)];
        let delete_keys: Vec<String> = delete.iter().map(|n| format!("{ns}/{n}")).collect();
        self.expectations.expect(&key, create, &delete_keys);

        let mut template = ds_template(ds);
        {
            let spec = template.spec.get_or_insert_with(Default::default);
            add_daemon_tolerations(spec);
            let labels = template
                .metadata
                .get_or_insert_with(Default::default)
                .labels
                .get_or_insert_with(Default::default);
            if let Some(g) = template_generation(ds) {
                labels.insert(TEMPLATE_GENERATION_LABEL.into(), g.to_string());
            }
            if !hash.is_empty() {
                labels.insert(CONTROLLER_REVISION_HASH.into(), hash.into());
            }
        }
        let controller_ref = new_controller_ref(&**ds);
        let mut first_err: Option<Error> = None;
        let mut pos = 0;
        let mut batch = create.min(SLOW_START_INITIAL_BATCH_SIZE);
        while pos < create {
            let results = futures::future::join_all((pos..pos + batch).map(|i| {
                let mut pod =
                    pod_from_template(&template, &ds.name_any(), Some(controller_ref.clone()));
                if let Some(spec) = pod.spec.as_mut() {
                    spec.affinity = Some(replace_node_name_affinity(
                        spec.affinity.take(),
                        &needing[i],
                    ));
                }
                let ns = ns.clone();
                async move { self.pod_control.create_pod_object(&ns, pod, &**ds).await }
            }))
            .await;
            let mut failed = false;
            for r in results {
                if let Err(e) = r {
                    if e.is_namespace_terminating() {
                        continue;
                    }
                    self.expectations.creation_observed(&key);
                    failed = true;
                    if first_err.is_none() {
                        first_err = Some(e);
                    }
                }
            }
            pos += batch;
            if failed {
                let skipped = create - pos;
                if skipped > 0 {
                    self.expectations.lower(&key, skipped as i64, 0);
                }
                break;
            }
            batch = (2 * batch).min(create - pos);
        }
        let results = futures::future::join_all(delete.iter().map(|n| {
            let ns = ns.clone();
            async move { (n, self.pod_control.delete_pod(&ns, n, &**ds).await) }
        }))
        .await;
        for (n, r) in results {
            if let Err(e) = r {
                self.expectations
                    .deletion_observed(&key, &format!("{ns}/{n}"));
                if !e.is_not_found() && first_err.is_none() {
                    first_err = Some(e);
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// `updateDaemonSetStatus`.
    async fn update_status(
        &self,
        ds: &DaemonSet,
        nodes: &[Arc<Node>],
        hash: &str,
        update_observed: bool,
    ) -> Result<()> {
        let node_pods = self.nodes_to_daemon_pods(ds, false).await?;
        let (mut desired, mut current, mut misscheduled, mut ready, mut updated, mut available) =
            (0, 0, 0, 0, 0, 0);
        let now = self.clock.now();
        let generation = template_generation(ds);
        let mrs = min_ready_seconds(ds);
        for n in nodes {
            let (should_run, _) = node_should_run(n, ds);
            let pods = n
                .metadata
                .name
                .as_ref()
                .and_then(|name| node_pods.get(name));
            let scheduled = pods.is_some_and(|p| !p.is_empty());
            if should_run {
                desired += 1;
                let Some(pods) = pods.filter(|_| scheduled) else {
                    continue;
                };
                current += 1;
                let mut pods = pods.clone();
                sort_pods(&mut pods);
                let p = &pods[0];
                if is_pod_ready(p) {
                    ready += 1;
                    if is_pod_available(p, mrs, now) {
                        available += 1;
                    }
                }
                if is_pod_updated(p, hash, generation) {
                    updated += 1;
                }
            } else if scheduled {
                misscheduled += 1;
            }
        }
        let unavailable = desired - available;
        let st = ds.status.clone().unwrap_or_default();
        let generation = ds.metadata.generation.unwrap_or(0);
        let same = st.desired_number_scheduled == desired
            && st.current_number_scheduled == current
            && st.number_misscheduled == misscheduled
            && st.number_ready == ready
            && st.updated_number_scheduled.unwrap_or(0) == updated
            && st.number_available.unwrap_or(0) == available
            && st.number_unavailable.unwrap_or(0) == unavailable
            && (!update_observed || st.observed_generation.unwrap_or(0) >= generation);
        if !same {
            let mut v = json!({
                "desiredNumberScheduled": desired, "currentNumberScheduled": current,
                "numberMisscheduled": misscheduled, "numberReady": ready,
            });
            let o = v.as_object_mut().expect("object");
            for (k, n) in [
                ("updatedNumberScheduled", updated),
                ("numberAvailable", available),
                ("numberUnavailable", unavailable),
            ] {
                if n != 0 {
                    o.insert(k.into(), json!(n));
                }
            }
            let mut fields = vec![
                "updatedNumberScheduled",
                "numberAvailable",
                "numberUnavailable",
            ];
            if update_observed && generation != 0 {
                o.insert("observedGeneration".into(), json!(generation));
                fields.push("observedGeneration");
            }
            let patch = json!({"status": replace_fields(v, &fields)});
            let api: Api<DaemonSet> =
                Api::namespaced(self.client.clone(), &ds.namespace().unwrap_or_default());
            api.patch_status(&ds.name_any(), &patch_params(), &Patch::Merge(&patch))
                .await
                .map_err(|e| Error::api("updating status of", key_of(ds), e))?;
        }
        if mrs > 0 && ready != available {
            self.queue
                .add_after(key_of(ds), Duration::from_secs(mrs as u64));
        }
        Ok(())
    }
}

pub fn start(ctx: Arc<Context>) -> futures::future::BoxFuture<'static, ()> {
    Box::pin(async move {
        let c = DaemonSetController::new(
            ctx.client.clone(),
            ctx.informers.get::<DaemonSet>(),
            ctx.informers.get::<Node>(),
            ctx.informers.get::<Pod>(),
            ctx.informers.get::<ControllerRevision>(),
            ctx.recorder("daemonset-controller"),
            ctx.clock.clone(),
        );
        c.run(ctx.config.workers, ctx.cancel.clone()).await;
    })
}

#[cfg(test)]
mod tests;
