//! The disruption controller: every PodDisruptionBudget's status says how many of its pods are
//! healthy (`currentHealthy`), how many must stay so (`desiredHealthy`), how many there should
//! be (`expectedPods`, from the owning controllers' scale for percentages and maxUnavailable)
//! and so how many may be disrupted now (`disruptionsAllowed`), with the `DisruptionAllowed`
//! condition. The eviction subresource reads exactly these fields, which is how
//! `kubectl drain` respects budgets.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ferrokube_client::events::{EventRecorder, EventType};
use ferrokube_client::{Action, Change, Informer, WorkQueue};
use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, PostParams};

use crate::Context;
use crate::util::{self, Result};

pub const NAME: &str = "disruption";
const COMPONENT: &str = "controllermanager";
/// How long an evicted pod counts as disrupted before it should have gone (upstream
/// `DeletionTimeout`).
pub const DELETION_TIMEOUT: Duration = Duration::from_secs(120);

pub fn start(ctx: Arc<Context>) -> BoxFuture<'static, ()> {
    Box::pin(run(ctx))
}

/// upstream `GetScaledValueFromIntOrPercent` with rounding up.
pub fn scaled(v: &IntOrString, total: i32) -> std::result::Result<i32, String> {
    match v {
        IntOrString::Int(i) => Ok(*i),
        IntOrString::String(s) => {
            let p: f64 = s
                .strip_suffix('%')
                .and_then(|n| n.parse::<i64>().ok())
                .ok_or_else(|| format!("invalid value for IntOrString: invalid value {s:?}"))?
                as f64;
            Ok((p * f64::from(total) / 100.0).ceil() as i32)
        }
    }
}

fn selects(pdb: &PodDisruptionBudget, pod: &Pod) -> bool {
    if pdb.metadata.namespace != pod.metadata.namespace {
        return false;
    }
    let Some(sel) = pdb.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
        return false;
    };
    let Ok(v) = serde_json::to_value(sel) else {
        return false;
    };
    let Ok(s) = ferrokube_api::selector::LabelSelector::from_structured(Some(&v)) else {
        return false;
    };
    s.matches(
        &pod.metadata
            .labels
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
    )
}

#[derive(Clone)]
pub struct DisruptionController {
    pub pdbs: Arc<Informer<PodDisruptionBudget>>,
    pub pods: Arc<Informer<Pod>>,
    pub rcs: Arc<Informer<ReplicationController>>,
    pub rss: Arc<Informer<ReplicaSet>>,
    pub deployments: Arc<Informer<Deployment>>,
    pub statefulsets: Arc<Informer<StatefulSet>>,
}

/// The numbers a budget's status is made of.
#[derive(Debug, PartialEq, Eq)]
pub struct Counts {
    pub expected: i32,
    pub desired_healthy: i32,
    pub current_healthy: i32,
    pub disruptions_allowed: i32,
    pub disrupted: BTreeMap<String, Time>,
    pub unmanaged: Vec<String>,
    /// When a disrupted pod's deadline passes and the budget must be looked at again.
    pub recheck: Option<Duration>,
}

impl DisruptionController {
    pub fn pods_of(&self, pdb: &PodDisruptionBudget) -> Vec<Arc<Pod>> {
        let ns = pdb.metadata.namespace.as_deref().unwrap_or("");
        self.pods
            .list_namespace(ns)
            .into_iter()
            .filter(|p| selects(pdb, p))
            .collect()
    }

    /// The scale of the controller owning a pod, by the owner chain upstream's finders follow.
    fn controller_scale(&self, pod: &Pod) -> Option<(String, i32)> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("");
        let r = pod
            .metadata
            .owner_references
            .as_ref()?
            .iter()
            .find(|r| r.controller == Some(true))?;
        let uid_ok = |u: Option<&String>| u == Some(&r.uid);
        match (r.api_version.as_str(), r.kind.as_str()) {
            ("v1", "ReplicationController") => {
                let rc = self
                    .rcs
                    .get_named(ns, &r.name)
                    .filter(|x| uid_ok(x.metadata.uid.as_ref()))?;
                Some((
                    r.uid.clone(),
                    rc.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                ))
            }
            ("apps/v1", "ReplicaSet") => {
                let rs = self
                    .rss
                    .get_named(ns, &r.name)
                    .filter(|x| uid_ok(x.metadata.uid.as_ref()))?;
                let dep = rs
                    .metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .find(|o| o.controller == Some(true) && o.kind == "Deployment");
                match dep {
                    Some(d) => {
                        let dep = self
                            .deployments
                            .get_named(ns, &d.name)
                            .filter(|x| x.metadata.uid.as_deref() == Some(d.uid.as_str()))?;
                        Some((
                            d.uid.clone(),
                            dep.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                        ))
                    }
                    None => Some((
                        r.uid.clone(),
                        rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                    )),
                }
            }
            ("apps/v1", "StatefulSet") => {
                let ss = self
                    .statefulsets
                    .get_named(ns, &r.name)
                    .filter(|x| uid_ok(x.metadata.uid.as_ref()))?;
                Some((
                    r.uid.clone(),
                    ss.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                ))
            }
            _ => None,
        }
    }

    fn expected_scale(&self, pods: &[Arc<Pod>]) -> std::result::Result<(i32, Vec<String>), String> {
        let mut scales: BTreeMap<String, i32> = BTreeMap::new();
        let mut unmanaged = Vec::new();
        for p in pods {
            let has_controller = p
                .metadata
                .owner_references
                .iter()
                .flatten()
                .any(|r| r.controller == Some(true));
            if !has_controller {
                unmanaged.push(p.metadata.name.clone().unwrap_or_default());
                continue;
            }
            match self.controller_scale(p) {
                Some((uid, scale)) => {
                    scales.insert(uid, scale);
                }
                None => {
                    return Err(format!(
                        "found no controllers for pod {:?}",
                        p.metadata.name.as_deref().unwrap_or("")
                    ));
                }
            }
        }
        Ok((scales.values().sum(), unmanaged))
    }

    /// upstream `trySync` without the write.
    pub fn counts(
        &self,
        pdb: &PodDisruptionBudget,
        now: jiff::Timestamp,
    ) -> std::result::Result<Counts, String> {
        let pods = self.pods_of(pdb);
        let spec = pdb.spec.clone().unwrap_or_default();
        let (expected, desired, unmanaged) = if let Some(mu) = &spec.max_unavailable {
            let (expected, unmanaged) = self.expected_scale(&pods)?;
            let max = scaled(mu, expected)?;
            (expected, (expected - max).max(0), unmanaged)
        } else if let Some(ma) = &spec.min_available {
            match ma {
                IntOrString::Int(i) => (pods.len() as i32, *i, Vec::new()),
                IntOrString::String(_) => {
                    let (expected, unmanaged) = self.expected_scale(&pods)?;
                    (expected, scaled(ma, expected)?, unmanaged)
                }
            }
        } else {
            (0, 0, Vec::new())
        };
        let previous = pdb
            .status
            .as_ref()
            .and_then(|s| s.disrupted_pods.clone())
            .unwrap_or_default();
        let mut disrupted = BTreeMap::new();
        let mut recheck: Option<Duration> = None;
        for p in &pods {
            let name = p.metadata.name.clone().unwrap_or_default();
            if p.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let Some(at) = previous.get(&name) else {
                continue;
            };
            let deadline =
                at.0 + jiff::SignedDuration::try_from(DELETION_TIMEOUT).unwrap_or_default();
            if deadline <= now {
                continue;
            }
            let left = Duration::try_from(deadline.duration_since(now)).unwrap_or_default();
            recheck = Some(recheck.map_or(left, |r| r.min(left)));
            disrupted.insert(name, at.clone());
        }
        let healthy = pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter(|p| !disrupted.contains_key(p.metadata.name.as_deref().unwrap_or("")))
            .filter(|p| util::is_pod_ready(p))
            .count() as i32;
        let mut allowed = healthy - desired;
        if expected <= 0 || allowed <= 0 {
            allowed = 0;
        }
        Ok(Counts {
            expected,
            desired_healthy: desired,
            current_healthy: healthy,
            disruptions_allowed: allowed,
            disrupted,
            unmanaged,
            recheck,
        })
    }

    pub fn watch(&self, queue: &Arc<WorkQueue<String>>) {
        let q = queue.clone();
        self.pdbs
            .on_change(move |c: &Change<'_, PodDisruptionBudget>| {
                q.add(ferrokube_client::key_of(&**c.object()))
            });
        let q = queue.clone();
        let pdbs = self.pdbs.clone();
        self.pods.on_change(move |c: &Change<'_, Pod>| {
            let consider = |p: &Pod| {
                let ns = p.metadata.namespace.as_deref().unwrap_or("");
                for b in pdbs.list_namespace(ns) {
                    if selects(&b, p) {
                        q.add(ferrokube_client::key_of(&*b));
                    }
                }
            };
            match c {
                Change::Updated { old, new } => {
                    consider(old);
                    consider(new);
                }
                other => consider(other.object()),
            }
        });
    }
}

fn set_condition(
    conds: &mut Vec<Condition>,
    allowed: bool,
    reason: &str,
    message: &str,
    generation: i64,
) {
    let status = if allowed { "True" } else { "False" };
    match conds.iter_mut().find(|c| c.type_ == "DisruptionAllowed") {
        Some(c) => {
            if c.status != status {
                c.last_transition_time = util::now();
            }
            c.status = status.into();
            c.reason = reason.into();
            c.message = message.into();
            c.observed_generation = Some(generation);
        }
        None => conds.push(Condition {
            type_: "DisruptionAllowed".into(),
            status: status.into(),
            reason: reason.into(),
            message: message.into(),
            observed_generation: Some(generation),
            last_transition_time: util::now(),
        }),
    }
}

fn status_for(pdb: &PodDisruptionBudget, counts: &Counts) -> PodDisruptionBudgetStatus {
    let generation = pdb.metadata.generation.unwrap_or(0);
    let mut conds = pdb
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let (reason, allowed) = if counts.disruptions_allowed > 0 {
        ("SufficientPods", true)
    } else {
        ("InsufficientPods", false)
    };
    set_condition(&mut conds, allowed, reason, "", generation);
    PodDisruptionBudgetStatus {
        current_healthy: counts.current_healthy,
        desired_healthy: counts.desired_healthy,
        expected_pods: counts.expected,
        disruptions_allowed: counts.disruptions_allowed,
        disrupted_pods: (!counts.disrupted.is_empty()).then(|| counts.disrupted.clone()),
        observed_generation: Some(generation),
        conditions: Some(conds),
    }
}

impl DisruptionController {
    async fn write_status(
        &self,
        client: &kube::Client,
        pdb: &PodDisruptionBudget,
        status: PodDisruptionBudgetStatus,
    ) -> Result<()> {
        let same = pdb.status.as_ref().is_some_and(|s| {
            let strip = |c: &Option<Vec<Condition>>| {
                c.clone()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|mut c| {
                        c.last_transition_time = Time(jiff::Timestamp::UNIX_EPOCH);
                        c
                    })
                    .collect::<Vec<_>>()
            };
            s.current_healthy == status.current_healthy
                && s.desired_healthy == status.desired_healthy
                && s.expected_pods == status.expected_pods
                && s.disruptions_allowed == status.disruptions_allowed
                && s.disrupted_pods.clone().unwrap_or_default()
                    == status.disrupted_pods.clone().unwrap_or_default()
                && s.observed_generation == status.observed_generation
                && strip(&s.conditions) == strip(&status.conditions)
        });
        if same {
            return Ok(());
        }
        let mut updated = pdb.clone();
        updated.status = Some(status);
        let api: Api<PodDisruptionBudget> = Api::namespaced(
            client.clone(),
            pdb.metadata.namespace.as_deref().unwrap_or(""),
        );
        api.replace_status(
            pdb.metadata.name.as_deref().unwrap_or(""),
            &PostParams::default(),
            &updated,
        )
        .await?;
        Ok(())
    }

    async fn sync(
        &self,
        client: &kube::Client,
        recorder: &EventRecorder,
        key: &str,
    ) -> Result<Action> {
        let Some(pdb) = self.pdbs.get(key) else {
            return Ok(Action::AwaitChange);
        };
        if self.pods_of(&pdb).is_empty() {
            recorder.record(&*pdb, EventType::Normal, "NoPods", "No matching pods found");
        }
        match self.counts(&pdb, jiff::Timestamp::now()) {
            Ok(counts) => {
                if !counts.unmanaged.is_empty() {
                    let sel = pdb
                        .spec
                        .as_ref()
                        .and_then(|s| s.selector.as_ref())
                        .map(|s| format!("{s:?}"))
                        .unwrap_or_default();
                    recorder.record(
                        &*pdb,
                        EventType::Warning,
                        "UnmanagedPods",
                        &format!("Pods selected by this PodDisruptionBudget (selector: {sel}) were found to be unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may result in undefined behavior. To account for these pods please set \".spec.minAvailable\" field of the PDB to an integer value."),
                    );
                }
                let recheck = counts.recheck;
                self.write_status(client, &pdb, status_for(&pdb, &counts))
                    .await?;
                Ok(match recheck {
                    Some(d) => Action::Requeue(d),
                    None => Action::AwaitChange,
                })
            }
            Err(e) => {
                recorder.record(
                    &*pdb,
                    EventType::Warning,
                    "CalculateExpectedPodCountFailed",
                    &format!("Failed to calculate the number of expected pods: {e}"),
                );
                // Fail safe: no disruptions while the budget cannot be computed.
                let mut status = pdb.status.clone().unwrap_or_default();
                status.disruptions_allowed = 0;
                let mut conds = status.conditions.clone().unwrap_or_default();
                set_condition(
                    &mut conds,
                    false,
                    "SyncFailed",
                    &e,
                    pdb.metadata.generation.unwrap_or(0),
                );
                status.conditions = Some(conds);
                self.write_status(client, &pdb, status).await?;
                Err(util::Error::Other(e))
            }
        }
    }
}

async fn run(ctx: Arc<Context>) {
    let c = DisruptionController {
        pdbs: ctx.informers.get::<PodDisruptionBudget>(),
        pods: ctx.informers.get::<Pod>(),
        rcs: ctx.informers.get::<ReplicationController>(),
        rss: ctx.informers.get::<ReplicaSet>(),
        deployments: ctx.informers.get::<Deployment>(),
        statefulsets: ctx.informers.get::<StatefulSet>(),
    };
    c.pdbs.wait_synced().await;
    c.pods.wait_synced().await;
    c.rcs.wait_synced().await;
    c.rss.wait_synced().await;
    c.deployments.wait_synced().await;
    c.statefulsets.wait_synced().await;
    let queue = WorkQueue::new();
    c.watch(&queue);
    let recorder = ctx.recorder(COMPONENT);
    let client = ctx.client.clone();
    util::run_queue(
        queue,
        ctx.config.workers,
        ctx.cancel.clone(),
        move |key: String| {
            let c = c.clone();
            let client = client.clone();
            let recorder = recorder.clone();
            async move { c.sync(&client, &recorder, &key).await }
        },
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn controller() -> DisruptionController {
        DisruptionController {
            pdbs: Informer::detached(),
            pods: Informer::detached(),
            rcs: Informer::detached(),
            rss: Informer::detached(),
            deployments: Informer::detached(),
            statefulsets: Informer::detached(),
        }
    }

    fn pod(name: &str, ready: bool, owner: Option<&str>) -> Pod {
        let mut v = json!({"metadata": {"name": name, "namespace": "d", "labels": {"app": "web"}},
            "spec": {"containers": []},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}});
        if let Some(o) = owner {
            v["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": o, "uid": format!("uid-{o}"), "controller": true}]);
        }
        serde_json::from_value(v).unwrap()
    }

    fn pdb(spec: serde_json::Value) -> PodDisruptionBudget {
        let mut s = spec;
        s["selector"] = json!({"matchLabels": {"app": "web"}});
        serde_json::from_value(
            json!({"metadata": {"name": "b", "namespace": "d", "generation": 1}, "spec": s}),
        )
        .unwrap()
    }

    fn now() -> jiff::Timestamp {
        jiff::Timestamp::now()
    }

    #[test]
    fn min_available_as_a_number_counts_ready_pods() {
        let c = controller();
        for (i, ready) in [true, true, false].iter().enumerate() {
            c.pods.apply(pod(&format!("p{i}"), *ready, None));
        }
        let counts = c.counts(&pdb(json!({"minAvailable": 1})), now()).unwrap();
        assert_eq!(
            (
                counts.expected,
                counts.desired_healthy,
                counts.current_healthy,
                counts.disruptions_allowed
            ),
            (3, 1, 2, 1)
        );
        let counts = c.counts(&pdb(json!({"minAvailable": 2})), now()).unwrap();
        assert_eq!(counts.disruptions_allowed, 0);
    }

    #[test]
    fn percentages_and_max_unavailable_use_the_controllers_scale() {
        let c = controller();
        c.rss.apply(
            serde_json::from_value(
                json!({"metadata": {"name": "rs", "namespace": "d", "uid": "uid-rs"},
            "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "web"}}}}),
            )
            .unwrap(),
        );
        for i in 0..4 {
            c.pods.apply(pod(&format!("p{i}"), i < 3, Some("rs")));
        }
        let counts = c
            .counts(&pdb(json!({"minAvailable": "50%"})), now())
            .unwrap();
        assert_eq!(
            (
                counts.expected,
                counts.desired_healthy,
                counts.disruptions_allowed
            ),
            (4, 2, 1)
        );
        let counts = c.counts(&pdb(json!({"maxUnavailable": 1})), now()).unwrap();
        assert_eq!(
            (
                counts.expected,
                counts.desired_healthy,
                counts.disruptions_allowed
            ),
            (4, 3, 0)
        );
        c.pods.apply(pod("stray", true, Some("missing")));
        assert_eq!(
            c.counts(&pdb(json!({"maxUnavailable": 1})), now())
                .unwrap_err(),
            "found no controllers for pod \"stray\""
        );
    }

    #[test]
    fn recently_evicted_pods_do_not_count_as_healthy() {
        let c = controller();
        c.pods.apply(pod("p0", true, None));
        c.pods.apply(pod("p1", true, None));
        let mut b = pdb(json!({"minAvailable": 1}));
        b.status = Some(PodDisruptionBudgetStatus {
            disrupted_pods: Some(BTreeMap::from([("p0".to_string(), util::now())])),
            ..Default::default()
        });
        let counts = c.counts(&b, now()).unwrap();
        assert_eq!(counts.current_healthy, 1);
        assert_eq!(counts.disruptions_allowed, 0);
        assert!(counts.recheck.is_some());
        let later = now() + jiff::SignedDuration::from_secs(121);
        let counts = c.counts(&b, later).unwrap();
        assert_eq!(
            counts.current_healthy, 2,
            "past the deletion timeout it counts again"
        );
        let status = status_for(&b, &counts);
        let cond = &status.conditions.unwrap()[0];
        assert_eq!(
            (
                cond.type_.as_str(),
                cond.status.as_str(),
                cond.reason.as_str()
            ),
            ("DisruptionAllowed", "True", "SufficientPods")
        );
    }
}
