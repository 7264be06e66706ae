//! What the scheduler knows about pods and nodes, precomputed once per object: requests,
//! compiled affinity terms, host ports, image sizes. `NodeInfo` aggregates a node with the
//! pods on it (bound, assumed, or nominated during preemption).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use ferrokube_api::quantity::Quantity;
use k8s_openapi::api::core::v1::{Node, Pod, PodAffinityTerm, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as KQuantity;

use super::label_ids::{self, LabelId};
use super::selector::Selector;

/// Requests the scheduler assumes for containers that state none, when it scores.
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

fn milli(q: &KQuantity) -> i64 {
    Quantity::parse(&q.0).map(|q| q.milli_value()).unwrap_or(0)
}

fn value(q: &KQuantity) -> i64 {
    Quantity::parse(&q.0).map(|q| q.value()).unwrap_or(0)
}

/// Extended and hugepage resources are "scalar": counted by value, compared by name.
pub fn is_scalar_resource_name(name: &str) -> bool {
    name.starts_with("hugepages-")
        || name.starts_with("attachable-volumes-")
        || (name.contains('/') && !name.starts_with("kubernetes.io/"))
        || name.starts_with("requests.")
}

/// framework.Resource: integer amounts, CPU in millicores.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[repr(C)] // the amounts first, the rarely used extended resources last
pub struct Resource {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    pub allowed_pod_number: i64,
    pub scalar: Vec<(String, i64)>,
}

impl Resource {
    pub fn from_list(list: Option<&BTreeMap<String, KQuantity>>) -> Self {
        let mut r = Resource::default();
        r.add_list(list);
        r
    }

    pub fn scalar(&self, name: &str) -> i64 {
        self.scalar
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
            .unwrap_or(0)
    }

    fn set_scalar(&mut self, name: &str, v: i64) {
        match self.scalar.iter_mut().find(|(n, _)| n == name) {
            Some(e) => e.1 = v,
            None => self.scalar.push((name.to_string(), v)),
        }
    }

    pub fn add_list(&mut self, list: Option<&BTreeMap<String, KQuantity>>) {
        for (name, q) in list.into_iter().flatten() {
            match name.as_str() {
                "cpu" => self.milli_cpu += milli(q),
                "memory" => self.memory += value(q),
                "pods" => self.allowed_pod_number += value(q),
                "ephemeral-storage" => self.ephemeral_storage += value(q),
                n if is_scalar_resource_name(n) => {
                    let v = self.scalar(n) + value(q);
                    self.set_scalar(n, v);
                }
                _ => {}
            }
        }
    }

    pub fn add(&mut self, o: &Resource) {
        self.milli_cpu += o.milli_cpu;
        self.memory += o.memory;
        self.ephemeral_storage += o.ephemeral_storage;
        self.allowed_pod_number += o.allowed_pod_number;
        for (n, v) in &o.scalar {
            let cur = self.scalar(n);
            self.set_scalar(n, cur + v);
        }
    }

    pub fn sub(&mut self, o: &Resource) {
        self.milli_cpu -= o.milli_cpu;
        self.memory -= o.memory;
        self.ephemeral_storage -= o.ephemeral_storage;
        self.allowed_pod_number -= o.allowed_pod_number;
        for (n, v) in &o.scalar {
            let cur = self.scalar(n);
            self.set_scalar(n, cur - v);
        }
    }

    pub fn max_with(&mut self, o: &Resource) {
        self.milli_cpu = self.milli_cpu.max(o.milli_cpu);
        self.memory = self.memory.max(o.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(o.ephemeral_storage);
        for (n, v) in &o.scalar {
            let cur = self.scalar(n);
            self.set_scalar(n, cur.max(*v));
        }
    }

    pub fn is_zero_request(&self) -> bool {
        self.milli_cpu == 0
            && self.memory == 0
            && self.ephemeral_storage == 0
            && self.scalar.iter().all(|(_, v)| *v == 0)
    }

    /// The amount of a named resource (as NodeResourcesFit scoring names them).
    pub fn get(&self, name: &str) -> i64 {
        match name {
            "cpu" => self.milli_cpu,
            "memory" => self.memory,
            "ephemeral-storage" => self.ephemeral_storage,
            "pods" => self.allowed_pod_number,
            n => self.scalar(n),
        }
    }
}

/// A pod's effective requests as upstream's resourcehelper.PodRequests computes them: the sum
/// of the regular containers, raised to the largest init container (each init container
/// counted together with the restartable sidecars started before it; the sidecars also run
/// alongside the regular containers), plus the pod overhead. With `non_zero`, containers
/// that request no CPU or memory count as requesting 100m and 200Mi (for scoring only).
pub fn pod_requests(pod: &Pod, non_zero: bool) -> Resource {
    let Some(spec) = pod.spec.as_ref() else {
        return Resource::default();
    };
    let container_req = |c: &k8s_openapi::api::core::v1::Container| {
        let reqs = c.resources.as_ref().and_then(|r| r.requests.as_ref());
        let mut r = Resource::from_list(reqs);
        if non_zero {
            let has = |n: &str| reqs.is_some_and(|m| m.contains_key(n));
            if !has("cpu") {
                r.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
            }
            if !has("memory") {
                r.memory = DEFAULT_MEMORY_REQUEST;
            }
        }
        r
    };
    let mut reqs = Resource::default();
    for c in &spec.containers {
        reqs.add(&container_req(c));
    }
    let mut restartable = Resource::default();
    let mut init_max = Resource::default();
    for c in spec.init_containers.iter().flatten() {
        let r = container_req(c);
        if c.restart_policy.as_deref() == Some("Always") {
            reqs.add(&r);
            restartable.add(&r);
            init_max.max_with(&restartable);
        } else {
            let mut tmp = r;
            tmp.add(&restartable);
            init_max.max_with(&tmp);
        }
    }
    reqs.max_with(&init_max);
    if let Some(o) = spec.overhead.as_ref() {
        reqs.add_list(Some(o));
    }
    reqs.allowed_pod_number = 0;
    reqs
}

/// The pod's priority: `spec.priority` (set by the Priority admission plugin), else 0.
pub fn pod_priority(pod: &Pod) -> i32 {
    pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
}

/// v1 Toleration.ToleratesTaint.
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if let Some(e) = t.effect.as_deref().filter(|e| !e.is_empty())
        && e != taint.effect
    {
        return false;
    }
    if let Some(k) = t.key.as_deref().filter(|k| !k.is_empty())
        && k != taint.key
    {
        return false;
    }
    match t.operator.as_deref().unwrap_or("") {
        "" | "Equal" => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        "Exists" => true,
        _ => false,
    }
}

pub fn tolerations_tolerate(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|t| tolerates(t, taint))
}

/// An affinity term with its selectors compiled and its namespaces resolved.
#[derive(Clone, Debug)]
pub struct AffinityTerm {
    pub namespaces: HashSet<String>,
    pub selector: Selector,
    pub topology_key: String,
    /// None: the term names no namespace selector.
    pub namespace_selector: Option<Selector>,
}

impl AffinityTerm {
    pub fn new(pod_namespace: &str, t: &PodAffinityTerm) -> Self {
        let mut namespaces: HashSet<String> = t.namespaces.iter().flatten().cloned().collect();
        if namespaces.is_empty() && t.namespace_selector.is_none() {
            namespaces.insert(pod_namespace.to_string());
        }
        let mut selector = Selector::from_label_selector(t.label_selector.as_ref());
        // matchLabelKeys / mismatchLabelKeys are merged into the selector by the apiserver
        // (MatchLabelKeysInPodAffinity); nothing to do here.
        if let Selector::All(reqs) = &mut selector {
            reqs.shrink_to_fit();
        }
        AffinityTerm {
            namespaces,
            selector,
            topology_key: t.topology_key.clone(),
            namespace_selector: t
                .namespace_selector
                .as_ref()
                .map(|s| Selector::from_label_selector(Some(s))),
        }
    }

    /// Whether `pod` (in a namespace labelled `ns_labels`) is selected by this term.
    pub fn matches(&self, pod: &PodInfo, ns_labels: Option<&BTreeMap<String, String>>) -> bool {
        let ns_ok = self.namespaces.contains(pod.namespace())
            || match (&self.namespace_selector, ns_labels) {
                (Some(s), Some(l)) => s.matches(l),
                (Some(s), None) => s.matches(&BTreeMap::new()),
                (None, _) => false,
            };
        ns_ok && self.selector.matches(pod.labels())
    }
}

#[derive(Clone, Debug)]
pub struct WeightedAffinityTerm {
    pub term: AffinityTerm,
    pub weight: i32,
}

/// A host port a pod holds: (hostIP, protocol, port).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostPort {
    pub ip: String,
    pub protocol: String,
    pub port: i32,
}

/// Host ports the pod asks for. hostNetwork pods hold their container ports (the apiserver
/// defaults hostPort to containerPort for them; a missing default is filled in here too).
pub fn pod_host_ports(pod: &Pod) -> Vec<HostPort> {
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    let host_network = spec.host_network == Some(true);
    let mut out = Vec::new();
    let containers = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten());
    for c in containers {
        for p in c.ports.iter().flatten() {
            let port = match p.host_port {
                Some(h) if h > 0 => h,
                _ if host_network => p.container_port,
                _ => continue,
            };
            if port <= 0 {
                continue;
            }
            let ip = p
                .host_ip
                .clone()
                .filter(|i| !i.is_empty())
                .unwrap_or_else(|| "0.0.0.0".into());
            out.push(HostPort {
                ip,
                protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                port,
            });
        }
    }
    out
}

/// A pod with what the scheduler precomputes about it.
#[derive(Debug)]
pub struct PodInfo {
    pub pod: Arc<Pod>,
    pub key: String,
    pub requests: Resource,
    pub non_zero_requests: Resource,
    pub priority: i32,
    pub required_affinity: Vec<AffinityTerm>,
    pub required_anti_affinity: Vec<AffinityTerm>,
    pub preferred_affinity: Vec<WeightedAffinityTerm>,
    pub preferred_anti_affinity: Vec<WeightedAffinityTerm>,
    pub host_ports: Vec<HostPort>,
}

static EMPTY_LABELS: BTreeMap<String, String> = BTreeMap::new();

impl PodInfo {
    pub fn new(pod: Arc<Pod>) -> Arc<Self> {
        Self::with_priority(pod, None)
    }

    /// `priority` overrides `spec.priority` (resolved from the PriorityClass when the
    /// admission plugin did not set it).
    pub fn with_priority(pod: Arc<Pod>, priority: Option<i32>) -> Arc<Self> {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let key = format!("{}/{}", ns, pod.metadata.name.as_deref().unwrap_or(""));
        let aff = pod.spec.as_ref().and_then(|s| s.affinity.as_ref());
        let pa = aff.and_then(|a| a.pod_affinity.as_ref());
        let paa = aff.and_then(|a| a.pod_anti_affinity.as_ref());
        let req = |terms: Option<&Vec<PodAffinityTerm>>| {
            terms
                .into_iter()
                .flatten()
                .map(|t| AffinityTerm::new(&ns, t))
                .collect::<Vec<_>>()
        };
        let pref = |terms: Option<&Vec<k8s_openapi::api::core::v1::WeightedPodAffinityTerm>>| {
            terms
                .into_iter()
                .flatten()
                .map(|t| WeightedAffinityTerm {
                    term: AffinityTerm::new(&ns, &t.pod_affinity_term),
                    weight: t.weight,
                })
                .collect::<Vec<_>>()
        };
        Arc::new(PodInfo {
            requests: pod_requests(&pod, false),
            non_zero_requests: pod_requests(&pod, true),
            priority: priority.unwrap_or_else(|| pod_priority(&pod)),
            required_affinity: req(pa.and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })),
            required_anti_affinity: req(paa.and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })),
            preferred_affinity: pref(pa.and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })),
            preferred_anti_affinity: pref(paa.and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })),
            host_ports: pod_host_ports(&pod),
            key,
            pod,
        })
    }

    pub fn namespace(&self) -> &str {
        self.pod.metadata.namespace.as_deref().unwrap_or("")
    }

    pub fn name(&self) -> &str {
        self.pod.metadata.name.as_deref().unwrap_or("")
    }

    pub fn uid(&self) -> &str {
        self.pod.metadata.uid.as_deref().unwrap_or("")
    }

    pub fn labels(&self) -> &BTreeMap<String, String> {
        self.pod.metadata.labels.as_ref().unwrap_or(&EMPTY_LABELS)
    }

    pub fn has_affinity(&self) -> bool {
        !self.required_affinity.is_empty()
            || !self.required_anti_affinity.is_empty()
            || !self.preferred_affinity.is_empty()
            || !self.preferred_anti_affinity.is_empty()
    }

    pub fn node_name(&self) -> &str {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .unwrap_or("")
    }

    pub fn is_terminating(&self) -> bool {
        self.pod.metadata.deletion_timestamp.is_some()
    }
}

/// Images present on a node, with how many nodes have each (for ImageLocality's spread).
#[derive(Clone, Debug, Default)]
pub struct ImageStateSummary {
    pub size: i64,
    pub num_nodes: usize,
}

/// A node and the pods on it.
///
/// Filter and Score read a few fields of hundreds of nodes per pod, each node a separate
/// allocation: those fields come first, in declaration order (`repr(C)`) from a cache-line
/// boundary, so a node costs two or three cache lines instead of one per field.
#[derive(Clone, Debug)]
#[repr(C, align(64))]
pub struct NodeInfo {
    /// `spec.unschedulable` and whether the node has taints, kept here so the filters that
    /// run on every node need not reach into the node object (a cache miss each).
    cordoned: bool,
    tainted: bool,
    /// The node's labels as ids ([`label_ids`](super::label_ids)), for filters that read a
    /// label of every node.
    label_ids: Box<[(LabelId, LabelId)]>,
    pub pods: Vec<Arc<PodInfo>>,
    pub requested: Resource,
    pub allocatable: Resource,
    pub non_zero_requested: Resource,
    pub node: Arc<Node>,
    /// Pods with any pod (anti-)affinity term, for InterPodAffinity.
    pub pods_with_affinity: usize,
    pub pods_with_required_anti_affinity: usize,
    pub used_ports: HashSet<HostPort>,
    /// Normalized image name -> size; `num_nodes` is filled in by the snapshot.
    pub image_states: HashMap<String, ImageStateSummary>,
    pub pvc_ref_counts: HashMap<String, usize>,
    pub generation: u64,
}

static EMPTY_TAINTS: Vec<Taint> = Vec::new();

impl NodeInfo {
    pub fn new(node: Arc<Node>) -> Self {
        let allocatable =
            Resource::from_list(node.status.as_ref().and_then(|s| s.allocatable.as_ref()));
        let mut image_states = HashMap::new();
        for img in node
            .status
            .as_ref()
            .and_then(|s| s.images.as_ref())
            .into_iter()
            .flatten()
        {
            for name in img.names.iter().flatten() {
                image_states.insert(
                    normalized_image_name(name),
                    ImageStateSummary {
                        size: img.size_bytes.unwrap_or(0),
                        num_nodes: 1,
                    },
                );
            }
        }
        let spec = node.spec.as_ref();
        NodeInfo {
            label_ids: label_ids::of_labels(node.metadata.labels.iter().flatten()),
            cordoned: spec.and_then(|s| s.unschedulable) == Some(true),
            tainted: spec
                .and_then(|s| s.taints.as_ref())
                .is_some_and(|t| !t.is_empty()),
            node,
            pods: Vec::new(),
            pods_with_affinity: 0,
            pods_with_required_anti_affinity: 0,
            requested: Resource::default(),
            non_zero_requested: Resource::default(),
            allocatable,
            used_ports: HashSet::new(),
            image_states,
            pvc_ref_counts: HashMap::new(),
            generation: 0,
        }
    }

    /// Replaces the node object, keeping the pods.
    pub fn set_node(&mut self, node: Arc<Node>) {
        let fresh = NodeInfo::new(node);
        self.node = fresh.node;
        self.cordoned = fresh.cordoned;
        self.tainted = fresh.tainted;
        self.label_ids = fresh.label_ids;
        self.allocatable = fresh.allocatable;
        self.image_states = fresh.image_states;
    }

    pub fn name(&self) -> &str {
        self.node.metadata.name.as_deref().unwrap_or("")
    }

    pub fn labels(&self) -> &BTreeMap<String, String> {
        self.node.metadata.labels.as_ref().unwrap_or(&EMPTY_LABELS)
    }

    /// The id of the node's value for the label key with id `key`.
    pub fn label_id(&self, key: LabelId) -> Option<LabelId> {
        label_ids::get(&self.label_ids, key)
    }

    pub fn taints(&self) -> &[Taint] {
        if !self.tainted {
            return &EMPTY_TAINTS;
        }
        self.node
            .spec
            .as_ref()
            .and_then(|s| s.taints.as_ref())
            .unwrap_or(&EMPTY_TAINTS)
    }

    pub fn unschedulable(&self) -> bool {
        self.cordoned
    }

    pub fn add_pod(&mut self, p: Arc<PodInfo>) {
        self.requested.add(&p.requests);
        self.non_zero_requested.add(&p.non_zero_requests);
        for hp in &p.host_ports {
            self.used_ports.insert(hp.clone());
        }
        if p.has_affinity() {
            self.pods_with_affinity += 1;
        }
        if !p.required_anti_affinity.is_empty() {
            self.pods_with_required_anti_affinity += 1;
        }
        for claim in pod_pvc_names(&p.pod) {
            *self
                .pvc_ref_counts
                .entry(format!("{}/{}", p.namespace(), claim))
                .or_default() += 1;
        }
        self.pods.push(p);
    }

    /// Removes the pod with this key; false if it was not here.
    pub fn remove_pod(&mut self, key: &str) -> bool {
        let Some(i) = self.pods.iter().position(|p| p.key == key) else {
            return false;
        };
        let p = self.pods.swap_remove(i);
        self.requested.sub(&p.requests);
        self.non_zero_requested.sub(&p.non_zero_requests);
        for hp in &p.host_ports {
            self.used_ports.remove(hp);
        }
        // Ports could be shared by two pods only if they conflicted; recompute to be exact.
        if !p.host_ports.is_empty() {
            self.used_ports = self
                .pods
                .iter()
                .flat_map(|p| p.host_ports.iter().cloned())
                .collect();
        }
        if p.has_affinity() {
            self.pods_with_affinity -= 1;
        }
        if !p.required_anti_affinity.is_empty() {
            self.pods_with_required_anti_affinity -= 1;
        }
        for claim in pod_pvc_names(&p.pod) {
            let k = format!("{}/{}", p.namespace(), claim);
            if let Some(n) = self.pvc_ref_counts.get_mut(&k) {
                *n -= 1;
                if *n == 0 {
                    self.pvc_ref_counts.remove(&k);
                }
            }
        }
        true
    }

    /// HostPortInfo.CheckConflict: 0.0.0.0 conflicts with every address on the same
    /// protocol and port.
    pub fn port_conflicts(&self, want: &HostPort) -> bool {
        if want.ip == "0.0.0.0" {
            self.used_ports
                .iter()
                .any(|u| u.protocol == want.protocol && u.port == want.port)
        } else {
            self.used_ports.iter().any(|u| {
                u.protocol == want.protocol
                    && u.port == want.port
                    && (u.ip == want.ip || u.ip == "0.0.0.0")
            })
        }
    }
}

/// PVC names a pod's volumes refer to (directly or as generic ephemeral volumes).
pub fn pod_pvc_names(pod: &Pod) -> Vec<String> {
    let pod_name = pod.metadata.name.as_deref().unwrap_or("");
    pod.spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|v| {
            if let Some(c) = &v.persistent_volume_claim {
                Some(c.claim_name.clone())
            } else {
                v.ephemeral
                    .as_ref()
                    .map(|_| format!("{pod_name}-{}", v.name))
            }
        })
        .collect()
}

/// ImageLocality's normalization: a reference without a tag or digest means `:latest`.
pub fn normalized_image_name(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') || name.contains('@') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn pod_requests_follow_upstream_init_container_and_sidecar_rules() {
        let cases = [
            (
                "regular containers add up",
                serde_json::json!({"spec": {"containers": [
                    {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "1Gi"}}},
                    {"name": "b", "resources": {"requests": {"cpu": "200m"}}}]}}),
                300,
                1 << 30,
            ),
            (
                "a big init container raises the total",
                serde_json::json!({"spec": {"initContainers": [
                    {"name": "i", "resources": {"requests": {"cpu": "2"}}}],
                    "containers": [{"name": "a", "resources": {"requests": {"cpu": "100m"}}}]}}),
                2000,
                0,
            ),
            (
                "sidecars run with the containers and with later init containers",
                serde_json::json!({"spec": {"initContainers": [
                    {"name": "s", "restartPolicy": "Always", "resources": {"requests": {"cpu": "500m"}}},
                    {"name": "i", "resources": {"requests": {"cpu": "1"}}}],
                    "containers": [{"name": "a", "resources": {"requests": {"cpu": "100m"}}}]}}),
                1500,
                0,
            ),
            (
                "overhead is added",
                serde_json::json!({"spec": {"overhead": {"cpu": "250m"},
                    "containers": [{"name": "a", "resources": {"requests": {"cpu": "100m"}}}]}}),
                350,
                0,
            ),
        ];
        for (name, p, cpu, mem) in cases {
            let r = pod_requests(&pod(p), false);
            assert_eq!((r.milli_cpu, r.memory), (cpu, mem), "{name}");
        }
    }

    #[test]
    fn non_zero_requests_fill_in_defaults_for_scoring() {
        let p = pod(serde_json::json!({"spec": {"containers": [{"name": "a"}]}}));
        let r = pod_requests(&p, true);
        assert_eq!((r.milli_cpu, r.memory), (100, 200 * 1024 * 1024));
    }

    #[test]
    fn tolerations_match_as_upstream() {
        let taint = Taint {
            key: "zhu".into(),
            value: Some("haha".into()),
            effect: "NoSchedule".into(),
            ..Default::default()
        };
        let t = |v: serde_json::Value| serde_json::from_value::<Toleration>(v).unwrap();
        let cases = [
            (
                serde_json::json!({"key": "zhu", "value": "haha", "effect": "NoSchedule"}),
                true,
            ),
            (
                serde_json::json!({"key": "zhu", "value": "xixi", "effect": "NoSchedule"}),
                false,
            ),
            (
                serde_json::json!({"key": "zhu", "operator": "Exists"}),
                true,
            ),
            (serde_json::json!({"operator": "Exists"}), true),
            (
                serde_json::json!({"key": "zhu", "operator": "Exists", "effect": "NoExecute"}),
                false,
            ),
            (
                serde_json::json!({"key": "other", "operator": "Exists"}),
                false,
            ),
        ];
        for (tol, want) in cases {
            assert_eq!(tolerates(&t(tol.clone()), &taint), want, "{tol}");
        }
    }

    #[test]
    fn host_network_pods_hold_their_container_ports() {
        let p = pod(serde_json::json!({"spec": {"hostNetwork": true,
            "containers": [{"name": "a", "ports": [{"containerPort": 80}]}]}}));
        assert_eq!(pod_host_ports(&p)[0].port, 80);
    }
}
