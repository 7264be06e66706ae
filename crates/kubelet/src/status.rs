//! Pod status as upstream's kubelet writes it (`generateAPIPodStatus`): container statuses with
//! their states, reasons and restart counts, the phase, the kubelet-owned conditions
//! (PodReadyToStartContainers, Initialized, Ready, ContainersReady, PodScheduled), IPs and start
//! time; and the status manager that patches it into the API when it changes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use ferrokube_client::WorkQueue;
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
    ResourceRequirements, VolumeMountStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use parking_lot::Mutex;
use serde_json::json;

use crate::clock;
use crate::probes::{ProbeKind, ProbeManager};
use crate::runtime_pod::{ContainerInfo, RuntimePod};

/// Conditions the kubelet owns; others (set by the scheduler, controllers, readiness-gate
/// owners) are left as they are.
pub const KUBELET_CONDITIONS: &[&str] = &[
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
];

/// Why a container is waiting, from the last sync (upstream's reason cache).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waiting {
    pub reason: String,
    pub message: String,
}

/// Inputs for one status computation.
pub struct StatusInputs<'a> {
    pub pod: &'a Pod,
    pub runtime: &'a RuntimePod,
    pub probes: &'a ProbeManager,
    pub reasons: &'a HashMap<String, Waiting>,
    pub old: Option<&'a PodStatus>,
    pub host_ips: &'a [String],
    /// The pod is being torn down or finished: its containers will not run again.
    pub terminal: bool,
    /// The runtime's name in container ids (`containerd://...`).
    pub runtime_name: &'a str,
}

fn time_of(nanos: i64) -> Option<Time> {
    clock::from_nanos(nanos)
}

/// Whether a container that stopped will be started again under the pod's restart policy.
pub fn should_restart(policy: &str, exit_code: i32) -> bool {
    match policy {
        "Never" => false,
        "OnFailure" => exit_code != 0,
        _ => true,
    }
}

fn terminated(c: &ContainerInfo, runtime_name: &str) -> ContainerState {
    let reason = if !c.reason.is_empty() {
        c.reason.clone()
    } else if c.exit_code == 0 {
        "Completed".into()
    } else {
        "Error".into()
    };
    ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code: c.exit_code,
            reason: Some(reason),
            message: (!c.message.is_empty()).then(|| c.message.clone()),
            started_at: time_of(c.started_at),
            finished_at: time_of(c.finished_at),
            container_id: Some(format!("{runtime_name}://{}", c.id)),
            signal: None,
        }),
        ..Default::default()
    }
}

fn container_state(c: &ContainerInfo, runtime_name: &str) -> ContainerState {
    use crate::runtime_pod::ContainerState as S;
    match c.state {
        S::Running => ContainerState {
            running: Some(ContainerStateRunning {
                started_at: time_of(c.started_at),
            }),
            ..Default::default()
        },
        S::Exited => terminated(c, runtime_name),
        S::Created => ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some("ContainerCreating".into()),
                message: None,
            }),
            ..Default::default()
        },
        S::Unknown => ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: 137,
                reason: Some("ContainerStatusUnknown".into()),
                message: Some(
                    "The container could not be located when the pod was terminated".into(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        },
    }
}

fn mounts_status(c: &Container) -> Option<Vec<VolumeMountStatus>> {
    let mounts = c.volume_mounts.as_ref()?;
    Some(
        mounts
            .iter()
            .map(|m| {
                let ro = m.read_only.unwrap_or(false);
                VolumeMountStatus {
                    name: m.name.clone(),
                    mount_path: m.mount_path.clone(),
                    read_only: ro.then_some(true),
                    recursive_read_only: ro.then(|| "Disabled".to_string()),
                }
            })
            .collect(),
    )
}

fn resources_status(c: &Container) -> Option<ResourceRequirements> {
    let r = c.resources.as_ref()?;
    let empty = |m: &Option<BTreeMap<String, _>>| m.as_ref().is_none_or(|m| m.is_empty());
    if empty(&r.requests) && empty(&r.limits) {
        return None;
    }
    Some(ResourceRequirements {
        limits: r.limits.clone(),
        requests: r.requests.clone(),
        claims: None,
    })
}

/// The statuses of `containers` (init or regular).
fn container_statuses(
    inp: &StatusInputs<'_>,
    containers: &[Container],
    init: bool,
    default_reason: &str,
) -> Vec<ContainerStatus> {
    let policy = inp
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always");
    containers
        .iter()
        .map(|spec| {
            let latest = inp.runtime.latest(&spec.name, init);
            let previous = inp.runtime.previous(&spec.name, init);
            let mut st = ContainerStatus {
                name: spec.name.clone(),
                image: spec.image.clone().unwrap_or_default(),
                image_id: String::new(),
                ready: false,
                restart_count: 0,
                started: Some(false),
                state: Some(ContainerState {
                    waiting: Some(ContainerStateWaiting {
                        reason: Some(default_reason.into()),
                        message: None,
                    }),
                    ..Default::default()
                }),
                volume_mounts: mounts_status(spec),
                ..Default::default()
            };
            if let Some(c) = latest {
                st.container_id = Some(format!("{}://{}", inp.runtime_name, c.id));
                if !c.image.is_empty() {
                    st.image = c.image.clone();
                }
                st.image_id = c.image_ref.clone();
                st.restart_count = c.restart_count;
                st.state = Some(container_state(c, inp.runtime_name));
                if c.running() {
                    let started = spec.startup_probe.is_none()
                        || inp.probes.result(&c.id, ProbeKind::Startup) == Some(true);
                    st.started = Some(started);
                    st.ready = started
                        && match &spec.readiness_probe {
                            None => true,
                            Some(_) => inp.probes.result(&c.id, ProbeKind::Readiness) == Some(true),
                        };
                    st.resources = resources_status(spec);
                }
                if let Some(p) = previous.filter(|p| p.exited()) {
                    st.last_state = Some(terminated(p, inp.runtime_name));
                }
            }
            // A container that will be started again and has a reason from the last sync is
            // waiting for that reason (CrashLoopBackOff, ErrImagePull, ...).
            let will_restart = match latest {
                None => true,
                Some(c) if c.running() => false,
                Some(c) => {
                    if init && c.exit_code == 0 && c.exited() {
                        false
                    } else {
                        !inp.terminal && should_restart(policy, c.exit_code)
                    }
                }
            };
            if will_restart && let Some(w) = inp.reasons.get(&reason_key(&spec.name, init)) {
                if let Some(s) = &st.state
                    && s.terminated.is_some()
                {
                    st.last_state = st.state.clone();
                }
                st.state = Some(ContainerState {
                    waiting: Some(ContainerStateWaiting {
                        reason: Some(w.reason.clone()),
                        message: (!w.message.is_empty()).then(|| w.message.clone()),
                    }),
                    ..Default::default()
                });
            }
            st
        })
        .collect()
}

/// The key of a container in the reason cache.
pub fn reason_key(name: &str, init: bool) -> String {
    if init {
        format!("init:{name}")
    } else {
        name.to_string()
    }
}

fn state_is(s: &ContainerStatus, f: impl Fn(&ContainerState) -> bool) -> bool {
    s.state.as_ref().is_some_and(f)
}

/// Upstream's `getPhase`.
pub fn phase(
    pod: &Pod,
    init: &[ContainerStatus],
    regular: &[ContainerStatus],
    terminal: bool,
) -> &'static str {
    let policy = pod
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always");
    let (mut pending_init, mut failed_init) = (0, 0);
    let init_specs = pod
        .spec
        .as_ref()
        .and_then(|s| s.init_containers.as_deref())
        .unwrap_or(&[]);
    for (spec, s) in init_specs.iter().zip(init) {
        let sidecar = spec.restart_policy.as_deref() == Some("Always");
        if sidecar {
            if !(state_is(s, |st| st.running.is_some()) && s.started == Some(true)) {
                pending_init += 1;
            }
            continue;
        }
        if state_is(s, |st| st.running.is_some()) {
            pending_init += 1;
        } else if let Some(t) = s.state.as_ref().and_then(|st| st.terminated.as_ref()) {
            if t.exit_code != 0 {
                failed_init += 1;
            }
        } else if state_is(s, |st| st.waiting.is_some()) {
            match s.last_state.as_ref().and_then(|l| l.terminated.as_ref()) {
                Some(t) if t.exit_code != 0 => failed_init += 1,
                Some(_) => {}
                None => pending_init += 1,
            }
        } else {
            pending_init += 1;
        }
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for s in regular {
        if state_is(s, |st| st.running.is_some()) {
            running += 1;
        } else if let Some(t) = s.state.as_ref().and_then(|st| st.terminated.as_ref()) {
            stopped += 1;
            if t.exit_code == 0 {
                succeeded += 1;
            }
        } else if s
            .last_state
            .as_ref()
            .is_some_and(|l| l.terminated.is_some())
        {
            stopped += 1;
        } else {
            waiting += 1;
        }
    }
    if failed_init > 0 && policy == "Never" {
        return "Failed";
    }
    let any_regular_started = regular.iter().any(|s| {
        s.container_id.is_some()
            || s.last_state
                .as_ref()
                .is_some_and(|l| l.terminated.is_some())
    });
    if (pending_init > 0 && !any_regular_started) || waiting > 0 {
        return "Pending";
    }
    if running > 0 {
        return "Running";
    }
    if stopped > 0 {
        if terminal {
            return if stopped == succeeded {
                "Succeeded"
            } else {
                "Failed"
            };
        }
        if policy == "Always" {
            return "Running";
        }
        if stopped == succeeded {
            return "Succeeded";
        }
        if policy == "Never" {
            return "Failed";
        }
        return "Running";
    }
    "Pending"
}

fn condition(t: &str, ok: bool, reason: Option<&str>, message: Option<String>) -> PodCondition {
    PodCondition {
        type_: t.into(),
        status: if ok { "True" } else { "False" }.into(),
        reason: reason.map(String::from),
        message,
        last_probe_time: None,
        last_transition_time: None,
        observed_generation: None,
    }
}

fn names(list: &[&str]) -> String {
    format!("[{}]", list.join(" "))
}

/// The pod status the kubelet reports now.
pub fn generate(inp: &StatusInputs<'_>) -> PodStatus {
    let pod = inp.pod;
    let spec = pod.spec.clone().unwrap_or_default();
    let init_specs = spec.init_containers.clone().unwrap_or_default();
    let has_init = !init_specs.is_empty();
    let default_reason = if has_init {
        "PodInitializing"
    } else {
        "ContainerCreating"
    };
    let init = container_statuses(inp, &init_specs, true, "PodInitializing");
    let regular = container_statuses(inp, &spec.containers, false, default_reason);
    let phase = phase(pod, &init, &regular, inp.terminal);
    let completed = phase == "Succeeded" || phase == "Failed";

    let sandbox = inp.runtime.latest_sandbox();
    let sandbox_ready = sandbox.is_some_and(|s| s.ready && (s.host_network || !s.ips.is_empty()));
    let mut conds = Vec::new();
    conds.push(condition(
        "PodReadyToStartContainers",
        sandbox_ready,
        None,
        None,
    ));

    let incomplete: Vec<&str> = init_specs
        .iter()
        .zip(&init)
        .filter(|(spec, s)| {
            if spec.restart_policy.as_deref() == Some("Always") {
                return !(state_is(s, |st| st.running.is_some()) && s.started == Some(true));
            }
            s.state
                .as_ref()
                .and_then(|st| st.terminated.as_ref())
                .is_none_or(|t| t.exit_code != 0)
        })
        .map(|(spec, _)| spec.name.as_str())
        .collect();
    conds.push(if incomplete.is_empty() {
        condition("Initialized", true, None, None)
    } else if completed && phase == "Succeeded" {
        condition("Initialized", true, Some("PodCompleted"), None)
    } else {
        condition(
            "Initialized",
            false,
            Some("ContainersNotInitialized"),
            Some(format!(
                "containers with incomplete status: {}",
                names(&incomplete)
            )),
        )
    });

    let unready: Vec<&str> = spec
        .containers
        .iter()
        .zip(&regular)
        .filter(|(_, s)| !s.ready)
        .map(|(c, _)| c.name.as_str())
        .chain(
            init_specs
                .iter()
                .zip(&init)
                .filter(|(c, s)| c.restart_policy.as_deref() == Some("Always") && !s.ready)
                .map(|(c, _)| c.name.as_str()),
        )
        .collect();
    let containers_ready = if completed && phase == "Succeeded" {
        condition("ContainersReady", false, Some("PodCompleted"), None)
    } else if unready.is_empty() {
        condition("ContainersReady", true, None, None)
    } else {
        condition(
            "ContainersReady",
            false,
            Some("ContainersNotReady"),
            Some(format!(
                "containers with unready status: {}",
                names(&unready)
            )),
        )
    };
    let mut ready = containers_ready.clone();
    ready.type_ = "Ready".into();
    if ready.status == "True" {
        // Readiness gates: conditions others set on the pod must be True too.
        let existing = inp.old.and_then(|s| s.conditions.as_ref());
        let mut gate_msgs = Vec::new();
        for g in spec.readiness_gates.iter().flatten() {
            let c = existing.and_then(|cs| cs.iter().find(|c| c.type_ == g.condition_type));
            match c {
                None => gate_msgs.push(format!(
                    "corresponding condition of pod readiness gate {:?} does not exist.",
                    g.condition_type
                )),
                Some(c) if c.status != "True" => gate_msgs.push(format!(
                    "the status of pod readiness gate {:?} is not \"True\", but {}",
                    g.condition_type, c.status
                )),
                _ => {}
            }
        }
        if !gate_msgs.is_empty() {
            ready = condition(
                "Ready",
                false,
                Some("ReadinessGatesNotReady"),
                Some(gate_msgs.join(", ")),
            );
        }
    }
    conds.push(ready);
    conds.push(containers_ready);
    conds.push(condition("PodScheduled", true, None, None));

    // Transition times stay while a condition's status stays.
    let now = clock::time_now();
    let old_conds = inp
        .old
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    for c in conds.iter_mut() {
        c.last_transition_time = match old_conds.iter().find(|o| o.type_ == c.type_) {
            Some(o) if o.status == c.status && o.last_transition_time.is_some() => {
                o.last_transition_time.clone()
            }
            _ => Some(now.clone()),
        };
    }
    // Conditions others own are kept, after the kubelet's.
    for o in &old_conds {
        if !KUBELET_CONDITIONS.contains(&o.type_.as_str())
            && !conds.iter().any(|c| c.type_ == o.type_)
        {
            conds.push(o.clone());
        }
    }

    let host_network = spec.host_network.unwrap_or(false);
    let pod_ips: Vec<String> = if host_network {
        inp.host_ips.to_vec()
    } else {
        sandbox
            .filter(|s| s.ready)
            .map(|s| s.ips.clone())
            .filter(|ips| !ips.is_empty())
            .or_else(|| {
                // Keep the address while the pod shuts down, as upstream does.
                inp.old
                    .and_then(|o| o.pod_ips.as_ref())
                    .map(|ips| ips.iter().map(|i| i.ip.clone()).collect())
            })
            .unwrap_or_default()
    };
    let start_time = inp
        .old
        .and_then(|o| o.start_time.clone())
        .or_else(|| Some(now.clone()));
    let qos = inp
        .old
        .and_then(|o| o.qos_class.clone())
        .unwrap_or_else(|| crate::qos::compute_qos(pod).as_str().to_string());
    PodStatus {
        phase: Some(phase.into()),
        conditions: Some(conds),
        host_ip: inp.host_ips.first().cloned(),
        host_ips: (!inp.host_ips.is_empty()).then(|| {
            inp.host_ips
                .iter()
                .map(|ip| HostIP { ip: ip.clone() })
                .collect()
        }),
        pod_ip: pod_ips.first().cloned(),
        pod_ips: (!pod_ips.is_empty())
            .then(|| pod_ips.iter().map(|ip| PodIP { ip: ip.clone() }).collect()),
        start_time,
        qos_class: Some(qos),
        container_statuses: Some(regular),
        init_container_statuses: has_init.then_some(init),
        message: inp.old.and_then(|o| o.message.clone()),
        reason: inp.old.and_then(|o| o.reason.clone()),
        ..Default::default()
    }
}

/// Whether two statuses differ in something worth writing (transition times only move with
/// status changes, so equality of the rest is enough).
pub fn differs(a: &PodStatus, b: &PodStatus) -> bool {
    a != b
}

struct Entry {
    namespace: String,
    name: String,
    /// The uid the API object must still have (the mirror pod's, for static pods).
    api_uid: Option<String>,
    status: PodStatus,
    sent: Option<PodStatus>,
}

/// Keeps the latest status of each pod and writes it to the API when it changes, one pod at a
/// time per worker through the shared work queue.
pub struct StatusManager {
    client: kube::Client,
    entries: Mutex<HashMap<String, Entry>>,
    queue: Arc<WorkQueue<String>>,
    pushed: Arc<tokio::sync::Notify>,
}

impl StatusManager {
    pub fn new(client: kube::Client) -> Arc<Self> {
        Arc::new(StatusManager {
            client,
            entries: Mutex::new(HashMap::new()),
            queue: WorkQueue::new(),
            pushed: Arc::new(tokio::sync::Notify::new()),
        })
    }

    /// Runs `workers` writers until `cancel` fires.
    pub fn start(self: &Arc<Self>, workers: usize, cancel: tokio_util::sync::CancellationToken) {
        let q = self.queue.clone();
        let me = self.clone();
        tokio::spawn(async move {
            let run = ferrokube_client::workqueue::run_workers(q.clone(), workers, move |uid| {
                let me = me.clone();
                async move { me.sync(&uid).await }
            });
            tokio::select! {
                _ = run => {}
                _ = cancel.cancelled() => q.shut_down(),
            }
        });
    }

    /// The status last set for a pod.
    pub fn get(&self, uid: &str) -> Option<PodStatus> {
        self.entries.lock().get(uid).map(|e| e.status.clone())
    }

    /// Sets a pod's status; it is written if it differs from what was written last.
    pub fn set(
        &self,
        uid: &str,
        namespace: &str,
        name: &str,
        api_uid: Option<String>,
        status: PodStatus,
    ) {
        let changed = {
            let mut entries = self.entries.lock();
            let e = entries.entry(uid.to_string()).or_insert_with(|| Entry {
                namespace: namespace.to_string(),
                name: name.to_string(),
                api_uid: api_uid.clone(),
                status: status.clone(),
                sent: None,
            });
            e.namespace = namespace.to_string();
            e.name = name.to_string();
            e.api_uid = api_uid;
            e.status = status;
            e.sent.as_ref().is_none_or(|s| differs(s, &e.status))
        };
        if changed {
            self.queue.add(uid.to_string());
        }
    }

    /// Whether the latest status of a pod has been written.
    pub fn is_synced(&self, uid: &str) -> bool {
        self.entries
            .lock()
            .get(uid)
            .is_some_and(|e| e.sent.as_ref() == Some(&e.status))
    }

    /// Waits (bounded) until the latest status of a pod has been written.
    pub async fn wait_synced(&self, uid: &str, timeout: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.pushed.notified();
            if self.is_synced(uid) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.is_synced(uid);
            }
        }
    }

    pub fn forget(&self, uid: &str) {
        self.entries.lock().remove(uid);
    }

    async fn sync(&self, uid: &str) -> Result<ferrokube_client::Action, kube::Error> {
        let Some((ns, name, api_uid, status)) = self.entries.lock().get(uid).map(|e| {
            (
                e.namespace.clone(),
                e.name.clone(),
                e.api_uid.clone(),
                e.status.clone(),
            )
        }) else {
            return Ok(ferrokube_client::Action::AwaitChange);
        };
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let mut body = status_patch(&status);
        if let Some(u) = &api_uid {
            body["metadata"] = json!({ "uid": u });
        }
        match api
            .patch_status(&name, &PatchParams::default(), &Patch::Strategic(&body))
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 || e.code == 422 => {
                // Gone, or replaced by a pod of the same name: nothing to write to.
                tracing::debug!(pod = %format!("{ns}/{name}"), code = e.code, "not writing the status of a pod that is gone");
            }
            Err(e) => return Err(e),
        }
        if let Some(e) = self.entries.lock().get_mut(uid) {
            e.sent = Some(status);
        }
        self.pushed.notify_waiters();
        Ok(ferrokube_client::Action::AwaitChange)
    }
}

/// A strategic merge patch that sets the status: kubelet conditions merge by type (others'
/// conditions stay), the IP lists are replaced whole.
pub fn status_patch(status: &PodStatus) -> serde_json::Value {
    let mut s = serde_json::to_value(status).expect("status serializes");
    if let Some(obj) = s.as_object_mut() {
        for list in ["podIPs", "hostIPs"] {
            if let Some(serde_json::Value::Array(items)) = obj.get_mut(list) {
                items.push(json!({"$patch": "replace"}));
            }
        }
        obj.entry("containerStatuses").or_insert(json!([]));
        // A merge keeps what the patch leaves out: absent fields are cleared explicitly.
        for f in ["message", "reason", "podIP", "hostIP"] {
            obj.entry(f).or_insert(serde_json::Value::Null);
        }
        if let Some(serde_json::Value::Array(conds)) = obj.get_mut("conditions") {
            for c in conds.iter_mut().filter_map(|c| c.as_object_mut()) {
                for f in ["reason", "message"] {
                    c.entry(f).or_insert(serde_json::Value::Null);
                }
            }
        }
    }
    json!({ "status": s })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime_pod::{ContainerState as S, SandboxInfo};
    use k8s_openapi::api::core::v1::PodSpec;

    fn spec(policy: &str, containers: &[&str], inits: &[&str]) -> Pod {
        let mk = |n: &&str| Container {
            name: n.to_string(),
            image: Some("busybox".into()),
            ..Default::default()
        };
        Pod {
            metadata: kube::api::ObjectMeta {
                name: Some("p".into()),
                namespace: Some("default".into()),
                uid: Some("u".into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                restart_policy: Some(policy.into()),
                containers: containers.iter().map(mk).collect(),
                init_containers: (!inits.is_empty()).then(|| inits.iter().map(mk).collect()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn ctr(name: &str, state: S, exit: i32, created: i64, init: bool) -> ContainerInfo {
        ContainerInfo {
            id: format!("{name}-{created}"),
            name: name.into(),
            sandbox_id: "sb".into(),
            state,
            created_at: created,
            started_at: created,
            finished_at: if state == S::Exited { created + 1 } else { 0 },
            exit_code: exit,
            reason: String::new(),
            message: String::new(),
            image: "docker.io/library/busybox:latest".into(),
            image_ref: "sha256:abc".into(),
            hash: String::new(),
            restart_count: (created - 1) as i32,
            is_init: init,
            log_path: String::new(),
        }
    }

    fn runtime(containers: Vec<ContainerInfo>) -> RuntimePod {
        let mut containers = containers;
        containers.sort_by_key(|c| std::cmp::Reverse(c.created_at));
        RuntimePod {
            uid: "u".into(),
            sandboxes: vec![SandboxInfo {
                id: "sb".into(),
                ready: true,
                attempt: 0,
                created_at: 1,
                ips: vec!["10.244.0.5".into()],
                host_network: false,
            }],
            containers,
            ..Default::default()
        }
    }

    fn generate_for(
        pod: &Pod,
        rt: &RuntimePod,
        reasons: &HashMap<String, Waiting>,
        terminal: bool,
    ) -> PodStatus {
        let probes = ProbeManager::default();
        generate(&StatusInputs {
            pod,
            runtime: rt,
            probes: &probes,
            reasons,
            old: None,
            host_ips: &["192.0.2.2".to_string()],
            terminal,
            runtime_name: "containerd",
        })
    }

    fn cond<'a>(s: &'a PodStatus, t: &str) -> &'a PodCondition {
        s.conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == t)
            .unwrap()
    }

    #[test]
    fn a_running_pod_is_ready_with_its_ips_and_upstreams_condition_order() {
        let pod = spec("Always", &["web"], &[]);
        let s = generate_for(
            &pod,
            &runtime(vec![ctr("web", S::Running, 0, 1, false)]),
            &HashMap::new(),
            false,
        );
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert_eq!(s.pod_ip.as_deref(), Some("10.244.0.5"));
        assert_eq!(s.host_ip.as_deref(), Some("192.0.2.2"));
        let types: Vec<&str> = s
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .map(|c| c.type_.as_str())
            .collect();
        assert_eq!(
            types,
            vec![
                "PodReadyToStartContainers",
                "Initialized",
                "Ready",
                "ContainersReady",
                "PodScheduled"
            ]
        );
        assert_eq!(cond(&s, "Ready").status, "True");
        let cs = &s.container_statuses.as_ref().unwrap()[0];
        assert!(cs.ready);
        assert_eq!(cs.container_id.as_deref(), Some("containerd://web-1"));
        assert_eq!(cs.image, "docker.io/library/busybox:latest");
    }

    #[test]
    fn a_crash_looping_container_waits_with_its_last_exit_as_last_state() {
        let pod = spec("Always", &["c"], &[]);
        let rt = runtime(vec![
            ctr("c", S::Exited, 1, 1, false),
            ctr("c", S::Exited, 1, 2, false),
        ]);
        let reasons = HashMap::from([(
            "c".to_string(),
            Waiting {
                reason: "CrashLoopBackOff".into(),
                message: "back-off 10s restarting failed container=c pod=p_default(u)".into(),
            },
        )]);
        let s = generate_for(&pod, &rt, &reasons, false);
        let cs = &s.container_statuses.as_ref().unwrap()[0];
        let w = cs.state.as_ref().unwrap().waiting.as_ref().unwrap();
        assert_eq!(w.reason.as_deref(), Some("CrashLoopBackOff"));
        let last = cs.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
        assert_eq!((last.exit_code, last.reason.as_deref()), (1, Some("Error")));
        assert_eq!(cs.restart_count, 1);
        assert_eq!(
            s.phase.as_deref(),
            Some("Running"),
            "Always pods keep running while restarting"
        );
        assert_eq!(
            cond(&s, "ContainersReady").message.as_deref(),
            Some("containers with unready status: [c]")
        );
    }

    #[test]
    fn phases_follow_restart_policy_and_exit_codes() {
        let done = |policy: &str, code: i32| {
            let pod = spec(policy, &["c"], &[]);
            generate_for(
                &pod,
                &runtime(vec![ctr("c", S::Exited, code, 1, false)]),
                &HashMap::new(),
                false,
            )
            .phase
            .unwrap()
        };
        assert_eq!(done("Never", 0), "Succeeded");
        assert_eq!(done("Never", 2), "Failed");
        assert_eq!(done("OnFailure", 0), "Succeeded");
        assert_eq!(done("OnFailure", 2), "Running");
        assert_eq!(done("Always", 0), "Running");
        let pod = spec("Always", &["c"], &[]);
        let s = generate_for(
            &pod,
            &runtime(vec![ctr("c", S::Exited, 137, 1, false)]),
            &HashMap::new(),
            true,
        );
        assert_eq!(
            s.phase.as_deref(),
            Some("Failed"),
            "a deleted pod ends terminal"
        );
        let pending = generate_for(&pod, &runtime(vec![]), &HashMap::new(), false);
        assert_eq!(pending.phase.as_deref(), Some("Pending"));
        let w = pending.container_statuses.unwrap()[0]
            .state
            .clone()
            .unwrap()
            .waiting
            .unwrap();
        assert_eq!(w.reason.as_deref(), Some("ContainerCreating"));
    }

    #[test]
    fn init_containers_gate_the_pod_until_they_succeed() {
        let pod = spec("Always", &["app"], &["setup"]);
        let s = generate_for(
            &pod,
            &runtime(vec![ctr("setup", S::Running, 0, 1, true)]),
            &HashMap::new(),
            false,
        );
        assert_eq!(s.phase.as_deref(), Some("Pending"));
        let init = cond(&s, "Initialized");
        assert_eq!(init.reason.as_deref(), Some("ContainersNotInitialized"));
        assert_eq!(
            init.message.as_deref(),
            Some("containers with incomplete status: [setup]")
        );
        let app = &s.container_statuses.as_ref().unwrap()[0];
        assert_eq!(
            app.state
                .as_ref()
                .unwrap()
                .waiting
                .as_ref()
                .unwrap()
                .reason
                .as_deref(),
            Some("PodInitializing")
        );
        let s = generate_for(
            &pod,
            &runtime(vec![
                ctr("setup", S::Exited, 0, 1, true),
                ctr("app", S::Running, 0, 2, false),
            ]),
            &HashMap::new(),
            false,
        );
        assert_eq!(cond(&s, "Initialized").status, "True");
        assert_eq!(s.phase.as_deref(), Some("Running"));
        let failed = spec("Never", &["app"], &["setup"]);
        let s = generate_for(
            &failed,
            &runtime(vec![ctr("setup", S::Exited, 1, 1, true)]),
            &HashMap::new(),
            false,
        );
        assert_eq!(s.phase.as_deref(), Some("Failed"));
    }

    #[test]
    fn readiness_gates_hold_ready_until_their_condition_is_true() {
        let mut pod = spec("Always", &["web"], &[]);
        pod.spec.as_mut().unwrap().readiness_gates =
            Some(vec![k8s_openapi::api::core::v1::PodReadinessGate {
                condition_type: "example.com/feature-1".into(),
            }]);
        let rt = runtime(vec![ctr("web", S::Running, 0, 1, false)]);
        let s = generate_for(&pod, &rt, &HashMap::new(), false);
        let r = cond(&s, "Ready");
        assert_eq!(r.reason.as_deref(), Some("ReadinessGatesNotReady"));
        assert_eq!(
            r.message.as_deref(),
            Some(
                "corresponding condition of pod readiness gate \"example.com/feature-1\" does not exist."
            )
        );
        assert_eq!(cond(&s, "ContainersReady").status, "True");
        let mut old = s.clone();
        old.conditions
            .as_mut()
            .unwrap()
            .push(condition("example.com/feature-1", true, None, None));
        let probes = ProbeManager::default();
        let s2 = generate(&StatusInputs {
            pod: &pod,
            runtime: &rt,
            probes: &probes,
            reasons: &HashMap::new(),
            old: Some(&old),
            host_ips: &[],
            terminal: false,
            runtime_name: "containerd",
        });
        assert_eq!(cond(&s2, "Ready").status, "True");
        assert!(
            s2.conditions
                .as_ref()
                .unwrap()
                .iter()
                .any(|c| c.type_ == "example.com/feature-1")
        );
    }

    #[test]
    fn status_patches_replace_ip_lists_and_merge_conditions() {
        let pod = spec("Always", &["web"], &[]);
        let s = generate_for(
            &pod,
            &runtime(vec![ctr("web", S::Running, 0, 1, false)]),
            &HashMap::new(),
            false,
        );
        let p = status_patch(&s);
        assert_eq!(p["status"]["podIPs"][1], json!({"$patch": "replace"}));
        assert_eq!(
            p["status"]["conditions"][0]["type"],
            "PodReadyToStartContainers"
        );
    }
}
