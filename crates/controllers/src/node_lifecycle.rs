//! The node lifecycle controller: node health from kubelet heartbeats, as upstream's
//! `nodelifecycle` controller judges it.
//!
//! A node is healthy while its Ready condition's `lastHeartbeatTime` or its Lease in
//! `kube-node-lease` keeps changing, as seen on this controller's own clock. After
//! `--node-monitor-grace-period` without either (60 s for a node that never reported), its
//! Ready, MemoryPressure, DiskPressure and PIDPressure conditions go `Unknown`
//! (`NodeStatusUnknown`, `Kubelet stopped posting node status.`) and its pods are marked not
//! ready. Nodes are tainted from their conditions: `node.kubernetes.io/unreachable` (Ready
//! Unknown) or `node.kubernetes.io/not-ready` (Ready False) with effect NoExecute — added at
//! `--node-eviction-rate` per zone, not at all in a zone where every node is down — and the
//! NoSchedule taints of TaintNodesByCondition. The taint-eviction controller evicts the pods.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use ferrokube_client::Informer;
use ferrokube_client::events::{EventRecorder, EventType};
use futures::future::BoxFuture;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams, PostParams};
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::Context;
use crate::util;

pub const NAME: &str = "nodelifecycle";
const COMPONENT: &str = "node-controller";
pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
const LEASE_NAMESPACE: &str = "kube-node-lease";
/// Conditions upstream turns Unknown along with Ready.
const WATCHED_CONDITIONS: &[&str] = &["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

pub fn start(ctx: Arc<Context>) -> BoxFuture<'static, ()> {
    Box::pin(run(ctx))
}

/// The controller's knobs (kube-controller-manager flags).
#[derive(Clone, Debug)]
pub struct Settings {
    pub grace_period: Duration,
    pub startup_grace_period: Duration,
    pub monitor_period: Duration,
    /// NoExecute taints per second per healthy zone (`--node-eviction-rate`).
    pub eviction_rate: f64,
    /// ... in a partially disrupted large zone (`--secondary-node-eviction-rate`).
    pub secondary_eviction_rate: f64,
    pub large_cluster_threshold: usize,
    pub unhealthy_zone_threshold: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            grace_period: Duration::from_secs(40),
            startup_grace_period: Duration::from_secs(60),
            monitor_period: Duration::from_secs(5),
            eviction_rate: 0.1,
            secondary_eviction_rate: 0.01,
            large_cluster_threshold: 50,
            unhealthy_zone_threshold: 0.55,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ZoneState {
    Normal,
    PartialDisruption,
    FullDisruption,
}

/// When the controller last saw a node's kubelet report.
#[derive(Clone, Debug)]
struct Health {
    probe: Instant,
    heartbeat: Option<String>,
    lease: Option<String>,
}

/// A token bucket (burst 1), as upstream's rate-limited timed queue.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    rate: f64,
    at: Instant,
}

impl Bucket {
    fn take(&mut self, rate: f64) -> bool {
        let now = Instant::now();
        if rate != self.rate {
            self.rate = rate;
        }
        self.tokens =
            (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate).min(1.0);
        self.at = now;
        if self.rate > 0.0 && self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

pub fn zone_of(node: &Node) -> String {
    let l = node.metadata.labels.as_ref();
    let get = |k: &str| l.and_then(|l| l.get(k)).cloned().unwrap_or_default();
    format!(
        "{}:\u{0}:{}",
        get("topology.kubernetes.io/region"),
        get("topology.kubernetes.io/zone")
    )
}

fn ready_status(node: &Node) -> &str {
    util::node_condition(node, "Ready")
        .map(|c| c.status.as_str())
        .unwrap_or("Unknown")
}

/// upstream `ComputeZoneState`.
pub fn zone_state(ready: usize, not_ready: usize, threshold: f64) -> ZoneState {
    if ready == 0 && not_ready > 0 {
        ZoneState::FullDisruption
    } else if not_ready > 2 && not_ready as f64 / (ready + not_ready) as f64 >= threshold {
        ZoneState::PartialDisruption
    } else {
        ZoneState::Normal
    }
}

/// The conditions of a node whose kubelet stopped reporting, or None when nothing changes.
pub fn mark_unknown(node: &Node, now: &Time) -> Option<Vec<NodeCondition>> {
    let mut conds = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let mut changed = false;
    for t in WATCHED_CONDITIONS {
        match conds.iter_mut().find(|c| c.type_ == *t) {
            None => {
                conds.push(NodeCondition {
                    type_: t.to_string(),
                    status: "Unknown".into(),
                    reason: Some("NodeStatusNeverUpdated".into()),
                    message: Some("Kubelet never posted node status.".into()),
                    last_heartbeat_time: node.metadata.creation_timestamp.clone(),
                    last_transition_time: Some(now.clone()),
                });
                changed = true;
            }
            Some(c) if c.status != "Unknown" => {
                c.status = "Unknown".into();
                c.reason = Some("NodeStatusUnknown".into());
                c.message = Some("Kubelet stopped posting node status.".into());
                c.last_transition_time = Some(now.clone());
                changed = true;
            }
            Some(_) => {}
        }
    }
    changed.then_some(conds)
}

fn taint(key: &str, effect: &str) -> Taint {
    Taint {
        key: key.into(),
        effect: effect.into(),
        value: None,
        time_added: None,
    }
}

/// The NoSchedule taints the node's conditions call for (TaintNodesByCondition).
pub fn condition_taints(node: &Node) -> Vec<Taint> {
    let mut out = Vec::new();
    // Only reported conditions count: a node that never reported has none of these taints
    // (the one TaintNodesByCondition admission put on it goes) until its startup grace ends.
    match util::node_condition(node, "Ready").map(|c| c.status.as_str()) {
        Some("False") => out.push(taint(NOT_READY, "NoSchedule")),
        Some("Unknown") => out.push(taint(UNREACHABLE, "NoSchedule")),
        _ => {}
    }
    for (cond, key) in [
        ("MemoryPressure", "node.kubernetes.io/memory-pressure"),
        ("DiskPressure", "node.kubernetes.io/disk-pressure"),
        ("PIDPressure", "node.kubernetes.io/pid-pressure"),
        (
            "NetworkUnavailable",
            "node.kubernetes.io/network-unavailable",
        ),
    ] {
        if util::node_condition(node, cond).is_some_and(|c| c.status == "True") {
            out.push(taint(key, "NoSchedule"));
        }
    }
    if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
        out.push(taint("node.kubernetes.io/unschedulable", "NoSchedule"));
    }
    out
}

const CONDITION_TAINT_KEYS: &[&str] = &[
    NOT_READY,
    UNREACHABLE,
    "node.kubernetes.io/memory-pressure",
    "node.kubernetes.io/disk-pressure",
    "node.kubernetes.io/pid-pressure",
    "node.kubernetes.io/network-unavailable",
    "node.kubernetes.io/unschedulable",
];

/// The node's taints with the controller-managed ones brought in line. `may_add_no_execute`
/// says whether the zone's rate limit allows a new NoExecute taint now; `remove_no_execute`
/// forces them off (every zone down: upstream's master disruption mode).
pub fn desired_taints(
    node: &Node,
    may_add_no_execute: bool,
    remove_no_execute: bool,
    now: &Time,
) -> Vec<Taint> {
    let current = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let has = |k: &str, e: &str| current.iter().any(|t| t.key == k && t.effect == e);
    let want_no_execute = match util::node_condition(node, "Ready").map(|c| c.status.as_str()) {
        Some("False") => Some(NOT_READY),
        Some("Unknown") => Some(UNREACHABLE),
        _ => None,
    };
    let mut out: Vec<Taint> = current
        .iter()
        .filter(|t| {
            if t.effect == "NoSchedule" && CONDITION_TAINT_KEYS.contains(&t.key.as_str()) {
                return false;
            }
            if t.effect == "NoExecute" && (t.key == NOT_READY || t.key == UNREACHABLE) {
                return !remove_no_execute && Some(t.key.as_str()) == want_no_execute;
            }
            true
        })
        .cloned()
        .collect();
    for t in condition_taints(node) {
        // Keep the original entry (and its position) when it is already there.
        match current
            .iter()
            .find(|c| c.key == t.key && c.effect == t.effect)
        {
            Some(c) => out.push(c.clone()),
            None => out.push(t),
        }
    }
    if let Some(key) = want_no_execute
        && !remove_no_execute
        && !has(key, "NoExecute")
    {
        // Swapping not-ready for unreachable (or back) is immediate, as upstream swaps.
        let swapping = has(NOT_READY, "NoExecute") || has(UNREACHABLE, "NoExecute");
        if swapping || may_add_no_execute {
            let mut t = taint(key, "NoExecute");
            t.time_added = Some(now.clone());
            out.push(t);
        }
    }
    // Stable order: what was there keeps its place, new entries follow.
    let pos = |t: &Taint| {
        current
            .iter()
            .position(|c| c.key == t.key && c.effect == t.effect)
            .unwrap_or(usize::MAX)
    };
    out.sort_by_key(pos);
    out
}

pub struct NodeLifecycle {
    pub nodes: Arc<Informer<Node>>,
    pub leases: Arc<Informer<Lease>>,
    pub pods: Arc<Informer<Pod>>,
    pub settings: Settings,
    health: Mutex<HashMap<String, Health>>,
    buckets: Mutex<HashMap<String, Bucket>>,
    known: Mutex<HashSet<String>>,
    /// Nodes that went from Ready to not ready whose pods are still to be marked not ready.
    pods_to_mark: Mutex<HashSet<String>>,
}

impl NodeLifecycle {
    pub fn new(
        nodes: Arc<Informer<Node>>,
        leases: Arc<Informer<Lease>>,
        pods: Arc<Informer<Pod>>,
        settings: Settings,
    ) -> Self {
        util::index_pods_by_node(&pods);
        NodeLifecycle {
            nodes,
            leases,
            pods,
            settings,
            health: Default::default(),
            buckets: Default::default(),
            known: Default::default(),
            pods_to_mark: Default::default(),
        }
    }

    /// Notes the node's latest heartbeat and lease renewal; whether it has gone quiet for
    /// longer than its grace period.
    pub fn is_stale(&self, node: &Node) -> bool {
        let name = node.metadata.name.clone().unwrap_or_default();
        let heartbeat = util::node_condition(node, "Ready")
            .and_then(|c| c.last_heartbeat_time.as_ref())
            .map(|t| t.0.to_string());
        let lease = self
            .leases
            .get_named(LEASE_NAMESPACE, &name)
            .and_then(|l| l.spec.as_ref().and_then(|s| s.renew_time.clone()))
            .map(|t| t.0.to_string());
        let mut health = self.health.lock();
        let h = health.entry(name).or_insert_with(|| Health {
            probe: Instant::now(),
            heartbeat: heartbeat.clone(),
            lease: lease.clone(),
        });
        if h.heartbeat != heartbeat || (lease.is_some() && h.lease != lease) {
            h.probe = Instant::now();
            h.heartbeat = heartbeat;
            h.lease = lease;
        }
        let grace = if util::node_condition(node, "Ready").is_none() {
            self.settings.startup_grace_period
        } else {
            self.settings.grace_period
        };
        h.probe.elapsed() > grace
    }

    fn rate_for(&self, state: &ZoneState, zone_size: usize) -> f64 {
        match state {
            ZoneState::Normal => self.settings.eviction_rate,
            ZoneState::PartialDisruption if zone_size > self.settings.large_cluster_threshold => {
                self.settings.secondary_eviction_rate
            }
            _ => 0.0,
        }
    }

    /// One monitoring pass over every node.
    async fn monitor(&self, client: &kube::Client, recorder: &EventRecorder) {
        let now = util::now();
        let api: Api<Node> = Api::all(client.clone());
        let mut nodes: Vec<Node> = Vec::new();
        let names: HashSet<String> = self
            .nodes
            .list()
            .iter()
            .filter_map(|n| n.metadata.name.clone())
            .collect();
        {
            let mut known = self.known.lock();
            for n in self.nodes.list() {
                let name = n.metadata.name.clone().unwrap_or_default();
                if known.insert(name.clone()) {
                    recorder.record(
                        &*n,
                        EventType::Normal,
                        "RegisteredNode",
                        &format!("Node {name} event: Registered Node {name} in Controller"),
                    );
                }
            }
            let gone: Vec<String> = known
                .iter()
                .filter(|k| !names.contains(*k))
                .cloned()
                .collect();
            for name in gone {
                known.remove(&name);
                self.health.lock().remove(&name);
                self.pods_to_mark.lock().remove(&name);
                let reference = k8s_openapi::api::core::v1::ObjectReference {
                    kind: Some("Node".into()),
                    api_version: Some("v1".into()),
                    name: Some(name.clone()),
                    uid: Some(name.clone()),
                    ..Default::default()
                };
                recorder.record_ref(
                    reference,
                    EventType::Normal,
                    "RemovingNode",
                    &format!("Node {name} event: Removing Node {name} from Controller"),
                );
            }
        }
        for n in self.nodes.list() {
            let mut node = (*n).clone();
            let was_ready = ready_status(&node) == "True";
            if self.is_stale(&node)
                && let Some(conds) = mark_unknown(&node, &now)
            {
                node.status.get_or_insert_with(Default::default).conditions = Some(conds);
                match api
                    .replace_status(
                        node.metadata.name.as_deref().unwrap_or(""),
                        &PostParams::default(),
                        &node,
                    )
                    .await
                {
                    Ok(updated) => node = updated,
                    Err(e) => {
                        tracing::debug!(node = ?node.metadata.name, error = %e, "could not mark node status unknown");
                        continue;
                    }
                }
            }
            if was_ready && ready_status(&node) != "True" {
                let name = node.metadata.name.clone().unwrap_or_default();
                self.pods_to_mark.lock().insert(name.clone());
                recorder.record(
                    &node,
                    EventType::Normal,
                    "NodeNotReady",
                    &format!("Node {name} status is now: NodeNotReady"),
                );
            }
            nodes.push(node);
        }
        // Zone health decides whether NoExecute taints may be added.
        let mut zones: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for n in &nodes {
            let e = zones.entry(zone_of(n)).or_default();
            if ready_status(n) == "True" {
                e.0 += 1;
            } else {
                e.1 += 1;
            }
        }
        let states: BTreeMap<String, ZoneState> = zones
            .iter()
            .map(|(z, (r, nr))| {
                (
                    z.clone(),
                    zone_state(*r, *nr, self.settings.unhealthy_zone_threshold),
                )
            })
            .collect();
        let all_down =
            !states.is_empty() && states.values().all(|s| *s == ZoneState::FullDisruption);
        for node in &nodes {
            let zone = zone_of(node);
            let state = states.get(&zone).cloned().unwrap_or(ZoneState::Normal);
            let size = zones.get(&zone).map(|(r, nr)| r + nr).unwrap_or(0);
            let rate = self.rate_for(&state, size);
            let wants_new = {
                let t = desired_taints(node, true, all_down, &now);
                let current = node
                    .spec
                    .as_ref()
                    .and_then(|s| s.taints.clone())
                    .unwrap_or_default();
                t.iter().any(|x| {
                    x.effect == "NoExecute"
                        && !current
                            .iter()
                            .any(|c| c.key == x.key && c.effect == x.effect)
                }) && !current.iter().any(|c| {
                    c.effect == "NoExecute" && (c.key == NOT_READY || c.key == UNREACHABLE)
                })
            };
            let may_add = !wants_new || {
                let mut buckets = self.buckets.lock();
                buckets
                    .entry(zone.clone())
                    .or_insert_with(|| Bucket {
                        tokens: 1.0,
                        rate,
                        at: Instant::now(),
                    })
                    .take(rate)
            };
            let want = desired_taints(node, may_add, all_down, &now);
            let current = node
                .spec
                .as_ref()
                .and_then(|s| s.taints.clone())
                .unwrap_or_default();
            if want != current {
                let patch = serde_json::json!({
                    "metadata": {"resourceVersion": node.metadata.resource_version},
                    "spec": {"taints": if want.is_empty() { serde_json::Value::Null } else { serde_json::to_value(&want).unwrap_or_default() }},
                });
                if let Err(e) = api
                    .patch(
                        node.metadata.name.as_deref().unwrap_or(""),
                        &PatchParams::default(),
                        &Patch::Merge(&patch),
                    )
                    .await
                {
                    tracing::debug!(node = ?node.metadata.name, error = %e, "could not update node taints");
                }
            }
            self.mark_pods(client, recorder, node).await;
        }
    }

    /// Pods of a node that stopped reporting are not ready either (upstream
    /// `MarkPodsNotReady`, done when this controller turns the node's Ready condition from
    /// True to Unknown, and retried until it succeeds).
    async fn mark_pods(&self, client: &kube::Client, recorder: &EventRecorder, node: &Node) {
        let name = node.metadata.name.clone().unwrap_or_default();
        if ready_status(node) == "True" {
            self.pods_to_mark.lock().remove(&name);
            return;
        }
        if !self.pods_to_mark.lock().contains(&name) {
            return;
        }
        let mut ok = true;
        for pod in self.pods.by_index(util::PODS_BY_NODE, &name) {
            if !util::is_pod_ready(&pod) {
                continue;
            }
            let mut p = (*pod).clone();
            if let Some(conds) = p.status.as_mut().and_then(|s| s.conditions.as_mut()) {
                for c in conds.iter_mut().filter(|c| c.type_ == "Ready") {
                    c.status = "False".into();
                    c.last_transition_time = Some(util::now());
                }
            }
            let api: Api<Pod> = Api::namespaced(
                client.clone(),
                p.metadata.namespace.as_deref().unwrap_or(""),
            );
            match api
                .replace_status(
                    p.metadata.name.as_deref().unwrap_or(""),
                    &PostParams::default(),
                    &p,
                )
                .await
            {
                Ok(_) => {
                    recorder.record(&p, EventType::Warning, "NodeNotReady", "Node is not ready")
                }
                Err(e) if util::is_not_found(&e) => {}
                Err(e) => {
                    tracing::debug!(pod = ?p.metadata.name, error = %e, "could not mark pod not ready");
                    ok = false;
                }
            }
        }
        if ok {
            self.pods_to_mark.lock().remove(&name);
        }
    }
}

async fn run(ctx: Arc<Context>) {
    let settings = Settings {
        grace_period: ctx.config.node_monitor_grace_period,
        monitor_period: ctx.config.node_monitor_period,
        startup_grace_period: ctx.config.node_startup_grace_period,
        ..Default::default()
    };
    let c = NodeLifecycle::new(
        ctx.informers.get::<Node>(),
        ctx.informers.get::<Lease>(),
        ctx.informers.get::<Pod>(),
        settings,
    );
    c.nodes.wait_synced().await;
    c.leases.wait_synced().await;
    c.pods.wait_synced().await;
    let recorder = ctx.recorder(COMPONENT);
    let client = ctx.client.clone();
    let period = c.settings.monitor_period;
    util::every(period, ctx.cancel.clone(), || c.monitor(&client, &recorder)).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, ready: &str, heartbeat: &str) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": name, "creationTimestamp": "2025-01-01T00:00:00Z"},
            "status": {"conditions": [
                {"type": "Ready", "status": ready, "reason": "KubeletReady", "message": "kubelet is posting ready status",
                 "lastHeartbeatTime": heartbeat, "lastTransitionTime": "2025-01-01T00:00:00Z"},
                {"type": "MemoryPressure", "status": "False", "lastHeartbeatTime": heartbeat}
            ]}
        }))
        .unwrap()
    }

    fn controller() -> NodeLifecycle {
        NodeLifecycle::new(
            Informer::detached(),
            Informer::detached(),
            Informer::detached(),
            Settings {
                grace_period: Duration::from_secs(5),
                ..Default::default()
            },
        )
    }

    #[tokio::test(start_paused = true)]
    async fn a_node_goes_stale_after_the_grace_period_without_heartbeats() {
        let c = controller();
        let n = node("n1", "True", "2025-01-01T00:00:00Z");
        assert!(!c.is_stale(&n));
        tokio::time::sleep(Duration::from_secs(4)).await;
        let n2 = node("n1", "True", "2025-01-01T00:00:04Z");
        assert!(!c.is_stale(&n2), "a new heartbeat resets the clock");
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert!(!c.is_stale(&n2));
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(c.is_stale(&n2));
        // A lease renewal counts as a heartbeat too.
        let lease: Lease = serde_json::from_value(json!({
            "metadata": {"name": "n1", "namespace": "kube-node-lease"},
            "spec": {"renewTime": "2025-01-01T00:00:10.000000Z"}
        }))
        .unwrap();
        c.leases.apply(lease);
        assert!(!c.is_stale(&n2));
    }

    #[test]
    fn stale_nodes_turn_unknown_with_upstreams_reason() {
        let now = util::now();
        let n = node("n1", "True", "2025-01-01T00:00:00Z");
        let conds = mark_unknown(&n, &now).unwrap();
        let ready = conds.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(ready.status, "Unknown");
        assert_eq!(ready.reason.as_deref(), Some("NodeStatusUnknown"));
        assert_eq!(
            ready.message.as_deref(),
            Some("Kubelet stopped posting node status.")
        );
        let never = conds.iter().find(|c| c.type_ == "DiskPressure").unwrap();
        assert_eq!(never.reason.as_deref(), Some("NodeStatusNeverUpdated"));
        let mut unknown = n.clone();
        unknown.status.as_mut().unwrap().conditions = Some(conds);
        assert!(
            mark_unknown(&unknown, &now).is_none(),
            "nothing changes twice"
        );
    }

    #[test]
    fn taints_follow_conditions_and_the_rate_limit() {
        let now = util::now();
        let mut n = node("n1", "Unknown", "2025-01-01T00:00:00Z");
        let t = desired_taints(&n, true, false, &now);
        let keys: Vec<(&str, &str)> = t
            .iter()
            .map(|t| (t.key.as_str(), t.effect.as_str()))
            .collect();
        assert_eq!(
            keys,
            vec![(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")]
        );
        assert!(t[1].time_added.is_some());
        let t = desired_taints(&n, false, false, &now);
        assert_eq!(
            t.len(),
            1,
            "without a token only the NoSchedule taint is added"
        );
        // Swapping unreachable for not-ready needs no token.
        n.spec = Some(k8s_openapi::api::core::v1::NodeSpec {
            taints: Some(desired_taints(&n, true, false, &now)),
            ..Default::default()
        });
        n.status.as_mut().unwrap().conditions.as_mut().unwrap()[0].status = "False".into();
        let t = desired_taints(&n, false, false, &now);
        let keys: Vec<(&str, &str)> = t
            .iter()
            .map(|t| (t.key.as_str(), t.effect.as_str()))
            .collect();
        assert_eq!(
            keys,
            vec![(NOT_READY, "NoSchedule"), (NOT_READY, "NoExecute")]
        );
        // Every zone down: no NoExecute taints at all.
        assert!(
            desired_taints(&n, true, true, &now)
                .iter()
                .all(|t| t.effect != "NoExecute")
        );
        // Ready again: all gone, user taints stay.
        n.status.as_mut().unwrap().conditions.as_mut().unwrap()[0].status = "True".into();
        n.spec
            .as_mut()
            .unwrap()
            .taints
            .as_mut()
            .unwrap()
            .push(taint("dedicated", "NoSchedule"));
        let t = desired_taints(&n, false, false, &now);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].key, "dedicated");
    }

    #[test]
    fn zones_are_disrupted_as_upstream_counts() {
        assert_eq!(zone_state(0, 1, 0.55), ZoneState::FullDisruption);
        assert_eq!(zone_state(1, 1, 0.55), ZoneState::Normal);
        assert_eq!(
            zone_state(1, 2, 0.55),
            ZoneState::Normal,
            "two down is never partial"
        );
        assert_eq!(zone_state(2, 3, 0.55), ZoneState::PartialDisruption);
    }

    #[tokio::test(start_paused = true)]
    async fn the_taint_rate_refills_over_time() {
        let mut b = Bucket {
            tokens: 1.0,
            rate: 0.1,
            at: Instant::now(),
        };
        assert!(b.take(0.1));
        assert!(!b.take(0.1));
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(b.take(0.1));
        tokio::time::sleep(Duration::from_secs(100)).await;
        assert!(!b.take(0.0), "a zone with rate 0 never taints");
    }
}
