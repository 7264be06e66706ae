//! The kubelet proper: the desired pods (from the API and from static manifests), one worker
//! per pod that drives the runtime toward the pod's spec, the relist that notices containers
//! changing on their own, and the cleanup of whatever no source wants any more.
//!
//! A pod sync is level-triggered: read what the runtime has for the pod, decide what to kill and
//! what to start ([`compute_actions`]), do it, write the status. Every sync can be repeated.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ferrokube_client::Informer;
use ferrokube_client::events::{EventRecorder, EventType};
use k8s_openapi::api::core::v1::{Container, Node, ObjectReference, Pod, Service};
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::cgroups::PodCgroups;
use crate::clock;
use crate::config::Config;
use crate::cri::{self, Runtime, api};
use crate::dns::DnsSettings;
use crate::env::{Allocatable, PodFacts};
use crate::metrics::Metrics;
use crate::node::NodeStatusManager;
use crate::objects::Objects;
use crate::probes::{ProbeKind, ProbeManager, ProbeTarget};
use crate::qos::{self, QosClass};
use crate::runtime_config::{self, ContainerInputs, PodFiles, pod_desc};
use crate::runtime_pod::{self, ContainerInfo, RuntimePod};
use crate::status::{self, StatusInputs, StatusManager, Waiting, reason_key, should_restart};
use crate::volumes::{MountedVolume, Mounter, VolumeManager};

/// The annotation marking a mirror pod (the API's copy of a static pod).
pub const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";
pub const CONFIG_SOURCE_ANNOTATION: &str = "kubernetes.io/config.source";
pub const CONFIG_HASH_ANNOTATION: &str = "kubernetes.io/config.hash";

/// Upstream never gives a container less than this to stop.
const MINIMUM_GRACE_SECONDS: i64 = 2;

/// Where a desired pod comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Api,
    File,
}

#[derive(Clone, Debug)]
pub struct PodEntry {
    pub pod: Arc<Pod>,
    pub source: Source,
}

/// What the kubelet is built from: the API, the runtime, and the host's side effects.
pub struct Deps {
    pub client: kube::Client,
    pub runtime: Arc<dyn Runtime>,
    pub cgroups: Arc<dyn PodCgroups>,
    pub mounter: Arc<dyn Mounter>,
    pub objects: Arc<dyn Objects>,
    pub services: Arc<Informer<Service>>,
    pub nodes: Arc<Informer<Node>>,
    pub recorder: EventRecorder,
}

struct Worker {
    notify: Arc<Notify>,
}

/// Told the pod CIDR whenever it changes.
type PodCidrHook = Box<dyn Fn(&str) + Send + Sync>;

/// What a sync asks for next.
enum Next {
    Done,
    After(Duration),
}

pub struct Kubelet {
    pub(crate) cfg: Arc<Config>,
    pub(crate) client: kube::Client,
    pub(crate) runtime: Arc<dyn Runtime>,
    cgroups: Arc<dyn PodCgroups>,
    pub(crate) objects: Arc<dyn Objects>,
    services: Arc<Informer<Service>>,
    pub(crate) nodes: Arc<Informer<Node>>,
    pub(crate) recorder: EventRecorder,
    pub(crate) volumes: VolumeManager,
    pub(crate) node: Arc<NodeStatusManager>,
    pub(crate) status: Arc<StatusManager>,
    pub(crate) probes: Arc<ProbeManager>,
    backoff: Backoff,
    image_backoff: Backoff,
    pods: RwLock<HashMap<String, PodEntry>>,
    /// Mirror pods in the API by `namespace/name`: (uid, config hash).
    mirrors: Mutex<HashMap<String, (String, String)>>,
    workers: Mutex<HashMap<String, Worker>>,
    reasons: Mutex<HashMap<String, HashMap<String, Waiting>>>,
    prev_pull_errors: Mutex<HashMap<String, String>>,
    /// Pods whose start latency was recorded.
    started: Mutex<HashSet<String>>,
    api_synced: AtomicBool,
    files_synced: AtomicBool,
    dns: DnsSettings,
    runtime_name: RwLock<String>,
    pod_cidr: Mutex<Option<String>>,
    on_pod_cidr: Mutex<Option<PodCidrHook>>,
    pub(crate) metrics: Metrics,
    pub(crate) runtime_pid: Mutex<Option<u32>>,
    pub(crate) cancel: CancellationToken,
}

impl std::fmt::Debug for Kubelet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kubelet")
            .field("node", &self.cfg.node_name)
            .finish_non_exhaustive()
    }
}

fn uid_of(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

fn full_name(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.name.as_deref().unwrap_or("")
    )
}

/// Whether a pod is a mirror pod.
pub fn is_mirror(pod: &Pod) -> bool {
    pod.metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(MIRROR_ANNOTATION))
}

/// Go's `time.Duration` formatting for whole seconds: `10s`, `1m20s`, `5m0s`.
pub fn go_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{}s", s / 60, s % 60)
    } else {
        format!("{}h{}m{}s", s / 3600, (s % 3600) / 60, s % 60)
    }
}

/// What a sync decided to do.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Actions {
    /// Stop every container and sandbox of the pod first.
    pub kill_pod: bool,
    pub create_sandbox: bool,
    pub attempt: u32,
    pub sandbox_id: Option<String>,
    /// Index of the init container to start next.
    pub start_init: Option<usize>,
    /// Indexes of regular containers to start.
    pub start: Vec<usize>,
    /// Containers to stop: (id, name, event message).
    pub kill: Vec<(String, String, String)>,
}

/// Upstream's `computePodActions`: from the spec, what the runtime has and the probe results,
/// what to stop and what to start.
pub fn compute_actions(pod: &Pod, rt: &RuntimePod, probes: &ProbeManager) -> Actions {
    let spec = pod.spec.clone().unwrap_or_default();
    let policy = spec.restart_policy.as_deref().unwrap_or("Always");
    let host_network = spec.host_network.unwrap_or(false);
    let inits = spec.init_containers.clone().unwrap_or_default();
    let mut a = Actions::default();
    let sandbox = rt.latest_sandbox();
    let (create, attempt) = match sandbox {
        None => (true, 0),
        Some(s) if !s.ready || (!host_network && !s.host_network && s.ips.is_empty()) => {
            (true, s.attempt + 1)
        }
        Some(s) => {
            a.sandbox_id = Some(s.id.clone());
            (false, 0)
        }
    };
    let succeeded = |name: &str, init: bool| {
        rt.latest(name, init)
            .is_some_and(|c| c.exited() && c.exit_code == 0)
    };
    if create {
        a.kill_pod = sandbox.is_some();
        if policy == "Never" && sandbox.is_some() && !rt.containers.is_empty() {
            // Everything already ran once and nothing may run again.
            return a;
        }
        let to_start: Vec<usize> = spec
            .containers
            .iter()
            .enumerate()
            .filter(|(_, c)| !(policy == "OnFailure" && succeeded(&c.name, false)))
            .map(|(i, _)| i)
            .collect();
        if to_start.is_empty() && inits.is_empty() {
            return a;
        }
        a.create_sandbox = true;
        a.attempt = attempt;
        if !inits.is_empty() {
            a.start_init = Some(0);
        } else {
            a.start = to_start;
        }
        return a;
    }

    for (i, c) in inits.iter().enumerate() {
        match rt.latest(&c.name, true) {
            None => {
                a.start_init = Some(i);
                return a;
            }
            Some(s) if s.running() => return a,
            Some(s) if s.exited() && s.exit_code == 0 => continue,
            Some(s) if s.exited() => {
                if policy == "Never" {
                    a.kill_pod = true;
                } else {
                    a.start_init = Some(i);
                }
                return a;
            }
            Some(s) => {
                a.kill.push((s.id.clone(), c.name.clone(), String::new()));
                a.start_init = Some(i);
                return a;
            }
        }
    }

    let mut keep = 0;
    for (i, c) in spec.containers.iter().enumerate() {
        match rt.latest(&c.name, false) {
            None => a.start.push(i),
            Some(s) if s.running() => {
                let hash = runtime_config::container_hash(c);
                let message = if !s.hash.is_empty() && s.hash != hash {
                    Some(format!(
                        "Container {} definition changed, will be restarted",
                        c.name
                    ))
                } else if c.startup_probe.is_some()
                    && probes.result(&s.id, ProbeKind::Startup) == Some(false)
                {
                    Some(format!(
                        "Container {} failed startup probe, will be restarted",
                        c.name
                    ))
                } else if c.liveness_probe.is_some()
                    && probes.result(&s.id, ProbeKind::Liveness) == Some(false)
                {
                    Some(format!(
                        "Container {} failed liveness probe, will be restarted",
                        c.name
                    ))
                } else {
                    None
                };
                match message {
                    None => keep += 1,
                    Some(m) => {
                        a.kill.push((s.id.clone(), c.name.clone(), m));
                        if policy != "Never" {
                            a.start.push(i);
                        }
                    }
                }
            }
            Some(s) if s.exited() => {
                if should_restart(policy, s.exit_code) {
                    a.start.push(i);
                }
            }
            Some(s) => {
                a.kill.push((s.id.clone(), c.name.clone(), String::new()));
                a.start.push(i);
            }
        }
    }
    if keep == 0 && a.start.is_empty() {
        // Nothing runs and nothing will: the sandbox goes too.
        a.kill_pod = true;
    }
    a
}

impl Kubelet {
    pub fn new(cfg: Config, deps: Deps) -> Arc<Kubelet> {
        let cfg = Arc::new(cfg);
        let node = NodeStatusManager::new(
            cfg.clone(),
            deps.client.clone(),
            deps.runtime.clone(),
            deps.recorder.clone(),
        );
        let volumes = VolumeManager::new(
            cfg.root_dir.join("pods"),
            deps.objects.clone(),
            deps.mounter.clone(),
            cfg.write_pod_files,
        );
        let dns = DnsSettings::load(&cfg.cluster_dns, &cfg.cluster_domain, &cfg.resolv_conf);
        Arc::new(Kubelet {
            status: StatusManager::new(deps.client.clone()),
            pod_cidr: Mutex::new(cfg.default_pod_cidr.clone()),
            cfg,
            client: deps.client,
            runtime: deps.runtime,
            cgroups: deps.cgroups,
            objects: deps.objects,
            services: deps.services,
            nodes: deps.nodes,
            recorder: deps.recorder,
            volumes,
            node,
            probes: ProbeManager::new(),
            backoff: Backoff::kubelet(),
            image_backoff: Backoff::kubelet(),
            pods: RwLock::new(HashMap::new()),
            mirrors: Mutex::new(HashMap::new()),
            workers: Mutex::new(HashMap::new()),
            reasons: Mutex::new(HashMap::new()),
            prev_pull_errors: Mutex::new(HashMap::new()),
            started: Mutex::new(HashSet::new()),
            api_synced: AtomicBool::new(false),
            files_synced: AtomicBool::new(true),
            dns,
            runtime_name: RwLock::new("containerd".into()),
            on_pod_cidr: Mutex::new(None),
            metrics: Metrics::default(),
            runtime_pid: Mutex::new(None),
            cancel: CancellationToken::new(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn node_name(&self) -> &str {
        &self.cfg.node_name
    }

    pub fn runtime(&self) -> &Arc<dyn Runtime> {
        &self.runtime
    }

    pub fn node_status(&self) -> &Arc<NodeStatusManager> {
        &self.node
    }

    /// Called with the node's pod CIDR whenever it changes (the agent rewrites the CNI config).
    pub fn on_pod_cidr(&self, f: impl Fn(&str) + Send + Sync + 'static) {
        *self.on_pod_cidr.lock() = Some(Box::new(f));
    }

    /// The process id of the runtime the agent supervises, for `/metrics`.
    pub fn set_runtime_pid(&self, pid: Option<u32>) {
        *self.runtime_pid.lock() = pid;
    }

    /// The pods this kubelet wants to run.
    pub fn desired_pods(&self) -> Vec<Arc<Pod>> {
        self.pods.read().values().map(|e| e.pod.clone()).collect()
    }

    pub fn desired_pod(&self, namespace: &str, name: &str) -> Option<Arc<Pod>> {
        self.pods
            .read()
            .values()
            .find(|e| {
                e.pod.metadata.namespace.as_deref() == Some(namespace)
                    && e.pod.metadata.name.as_deref() == Some(name)
            })
            .map(|e| e.pod.clone())
    }

    fn sources_ready(&self) -> bool {
        self.api_synced.load(Ordering::SeqCst) && self.files_synced.load(Ordering::SeqCst)
    }

    /// Marks the API pod source as having delivered its first full list.
    pub fn set_api_synced(&self) {
        self.api_synced.store(true, Ordering::SeqCst);
    }

    pub(crate) fn set_files_synced(&self, v: bool) {
        self.files_synced.store(v, Ordering::SeqCst);
    }

    // ---- pod sources ----

    fn changed_for_kubelet(old: &Pod, new: &Pod) -> bool {
        let foreign_conditions = |p: &Pod| {
            p.status
                .as_ref()
                .and_then(|s| s.conditions.clone())
                .unwrap_or_default()
                .into_iter()
                .filter(|c| {
                    !status::KUBELET_CONDITIONS.contains(&c.type_.as_str())
                        && c.type_ != "PodScheduled"
                })
                .map(|c| (c.type_, c.status))
                .collect::<Vec<_>>()
        };
        old.spec != new.spec
            || old.metadata.labels != new.metadata.labels
            || old.metadata.annotations != new.metadata.annotations
            || old.metadata.deletion_timestamp != new.metadata.deletion_timestamp
            || old.metadata.deletion_grace_period_seconds
                != new.metadata.deletion_grace_period_seconds
            || foreign_conditions(old) != foreign_conditions(new)
            || old.status.as_ref().and_then(|s| s.phase.clone())
                != new.status.as_ref().and_then(|s| s.phase.clone())
    }

    /// A pod bound to this node was added or changed in the API.
    pub fn api_pod_updated(self: &Arc<Self>, pod: Arc<Pod>) {
        if pod.spec.as_ref().and_then(|s| s.node_name.as_deref())
            != Some(self.cfg.node_name.as_str())
        {
            return;
        }
        if is_mirror(&pod) {
            self.mirror_updated(&pod);
            return;
        }
        let uid = uid_of(&pod);
        let dispatch = {
            let mut pods = self.pods.write();
            let changed = match pods.get(&uid) {
                Some(old) => Self::changed_for_kubelet(&old.pod, &pod),
                None => true,
            };
            pods.insert(
                uid.clone(),
                PodEntry {
                    pod,
                    source: Source::Api,
                },
            );
            changed
        };
        if dispatch {
            self.dispatch(&uid);
        }
    }

    /// A pod was removed from the API (or moved off this node).
    pub fn api_pod_deleted(self: &Arc<Self>, pod: &Pod) {
        if is_mirror(pod) {
            self.mirrors.lock().remove(&full_name(pod));
            // A static pod whose mirror went away gets a new one.
            let static_uid = self
                .pods
                .read()
                .values()
                .find(|e| e.source == Source::File && full_name(&e.pod) == full_name(pod))
                .map(|e| uid_of(&e.pod));
            if let Some(u) = static_uid {
                self.dispatch(&u);
            }
            return;
        }
        let uid = uid_of(pod);
        let removed = {
            let mut pods = self.pods.write();
            match pods.get(&uid) {
                Some(e) if e.source == Source::Api => pods.remove(&uid).is_some(),
                _ => false,
            }
        };
        if removed {
            self.dispatch(&uid);
        }
    }

    fn mirror_updated(self: &Arc<Self>, pod: &Pod) {
        let name = full_name(pod);
        let hash = pod
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(MIRROR_ANNOTATION).cloned())
            .unwrap_or_default();
        if pod.metadata.deletion_timestamp.is_some() {
            // Someone deleted the mirror: remove it at once; the static pod gets a new one.
            let me = self.clone();
            let ns = pod.metadata.namespace.clone().unwrap_or_default();
            let n = pod.metadata.name.clone().unwrap_or_default();
            let uid = uid_of(pod);
            tokio::spawn(async move {
                let _ = me.delete_pod_object(&ns, &n, &uid).await;
            });
            return;
        }
        self.mirrors
            .lock()
            .insert(name.clone(), (uid_of(pod), hash));
        let static_uid = self
            .pods
            .read()
            .values()
            .find(|e| e.source == Source::File && full_name(&e.pod) == name)
            .map(|e| uid_of(&e.pod));
        if let Some(u) = static_uid {
            self.dispatch(&u);
        }
    }

    /// The static pods now in the manifest directory.
    pub(crate) fn set_static_pods(self: &Arc<Self>, pods: Vec<Pod>) {
        let mut touched = Vec::new();
        {
            let mut current = self.pods.write();
            let wanted: HashSet<String> = pods.iter().map(uid_of).collect();
            current.retain(|uid, e| {
                let keep = e.source != Source::File || wanted.contains(uid);
                if !keep {
                    touched.push(uid.clone());
                }
                keep
            });
            for p in pods {
                let uid = uid_of(&p);
                let changed = current.get(&uid).is_none_or(|e| e.pod.spec != p.spec);
                if changed {
                    touched.push(uid.clone());
                    current.insert(
                        uid,
                        PodEntry {
                            pod: Arc::new(p),
                            source: Source::File,
                        },
                    );
                }
            }
        }
        for uid in touched {
            self.dispatch(&uid);
        }
    }

    // ---- workers ----

    /// Makes sure a worker syncs the pod soon.
    pub(crate) fn dispatch(self: &Arc<Self>, uid: &str) {
        if uid.is_empty() {
            return;
        }
        let mut workers = self.workers.lock();
        if let Some(w) = workers.get(uid) {
            w.notify.notify_one();
            return;
        }
        let notify = Arc::new(Notify::new());
        workers.insert(
            uid.to_string(),
            Worker {
                notify: notify.clone(),
            },
        );
        drop(workers);
        let me = self.clone();
        let uid = uid.to_string();
        tokio::spawn(async move { me.worker(uid, notify).await });
    }

    async fn worker(self: Arc<Self>, uid: String, notify: Arc<Notify>) {
        loop {
            self.metrics.pod_syncs.fetch_add(1, Ordering::Relaxed);
            // Boxed: a sync's state is some 18 KB, and a worker spends most of its life
            // waiting between syncs; inline, every pod's task would hold it all the time.
            let next = Box::pin(self.sync_pod(&uid)).await;
            match next {
                Next::Done => {
                    self.workers.lock().remove(&uid);
                    if self.pods.read().contains_key(&uid) {
                        self.dispatch(&uid);
                    }
                    return;
                }
                Next::After(d) => {
                    tokio::select! {
                        _ = self.cancel.cancelled() => {
                            self.workers.lock().remove(&uid);
                            return;
                        }
                        _ = notify.notified() => {}
                        _ = tokio::time::sleep(d) => {}
                    }
                }
            }
        }
    }

    fn pod_ref(pod: &Pod, container: Option<(&str, bool)>) -> ObjectReference {
        ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: pod.metadata.name.clone(),
            namespace: pod.metadata.namespace.clone(),
            uid: pod.metadata.uid.clone(),
            resource_version: pod.metadata.resource_version.clone(),
            field_path: container.map(|(n, init)| {
                if init {
                    format!("spec.initContainers{{{n}}}")
                } else {
                    format!("spec.containers{{{n}}}")
                }
            }),
        }
    }

    fn event(
        &self,
        pod: &Pod,
        container: Option<(&str, bool)>,
        t: EventType,
        reason: &str,
        msg: &str,
    ) {
        self.recorder
            .record_ref(Self::pod_ref(pod, container), t, reason, msg);
    }

    fn host_ips(&self) -> Vec<String> {
        self.node
            .node_ip()
            .map(|ip| ip.to_string())
            .into_iter()
            .collect()
    }

    pub(crate) fn allocatable(&self) -> Allocatable {
        let m = self.node.machine();
        let cpu = ferrokube_api::quantity::Quantity::parse(&m.cpu)
            .map(|q| q.milli_value())
            .unwrap_or(0);
        Allocatable {
            cpu_milli: cpu,
            memory: m.memory_bytes,
            ephemeral_storage: m.ephemeral_storage_bytes / 10 * 9,
        }
    }

    fn runtime_name(&self) -> String {
        self.runtime_name.read().clone()
    }

    fn set_reason(&self, uid: &str, key: String, w: Option<Waiting>) {
        let mut r = self.reasons.lock();
        let m = r.entry(uid.to_string()).or_default();
        match w {
            Some(w) => {
                m.insert(key, w);
            }
            None => {
                m.remove(&key);
            }
        }
    }

    fn old_status(&self, entry: &PodEntry) -> Option<k8s_openapi::api::core::v1::PodStatus> {
        self.status
            .get(&uid_of(&entry.pod))
            .or_else(|| entry.pod.status.clone())
    }

    /// Computes and records the status the pod has now.
    fn update_status(&self, entry: &PodEntry, rt: &RuntimePod, terminal: bool) {
        let pod = &entry.pod;
        let uid = uid_of(pod);
        let reasons = self.reasons.lock().get(&uid).cloned().unwrap_or_default();
        let old = self.old_status(entry);
        let host_ips = self.host_ips();
        let runtime_name = self.runtime_name();
        let mut st = status::generate(&StatusInputs {
            pod,
            runtime: rt,
            probes: &self.probes,
            reasons: &reasons,
            old: old.as_ref(),
            host_ips: &host_ips,
            terminal,
            runtime_name: &runtime_name,
        });
        if let Some((reason, message)) = self.deadline_exceeded(pod, old.as_ref()) {
            st.phase = Some("Failed".into());
            st.reason = Some(reason);
            st.message = Some(message);
        }
        self.record_start_latency(pod, &st);
        let (ns, name, api_uid) = match entry.source {
            Source::Api => (
                pod.metadata.namespace.clone().unwrap_or_default(),
                pod.metadata.name.clone().unwrap_or_default(),
                Some(uid.clone()),
            ),
            Source::File => {
                let mirror = self
                    .mirrors
                    .lock()
                    .get(&full_name(pod))
                    .map(|m| m.0.clone());
                match mirror {
                    Some(m) => (
                        pod.metadata.namespace.clone().unwrap_or_default(),
                        pod.metadata.name.clone().unwrap_or_default(),
                        Some(m),
                    ),
                    // No mirror yet: keep the status here until there is one.
                    None => {
                        self.status.set(&uid, "", "", None, st);
                        return;
                    }
                }
            }
        };
        if ns.is_empty() {
            return;
        }
        self.status.set(&uid, &ns, &name, api_uid, st);
    }

    fn record_start_latency(&self, pod: &Pod, st: &k8s_openapi::api::core::v1::PodStatus) {
        let all_running = st
            .container_statuses
            .iter()
            .flatten()
            .all(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()));
        if !all_running || st.container_statuses.as_ref().is_none_or(|c| c.is_empty()) {
            return;
        }
        let uid = uid_of(pod);
        if !self.started.lock().insert(uid) {
            return;
        }
        if let Some(created) = &pod.metadata.creation_timestamp {
            let secs = (clock::now().as_millisecond() - created.0.as_millisecond()) as f64 / 1000.0;
            self.metrics.observe_pod_start(secs.max(0.0));
        }
    }

    /// `activeDeadlineSeconds`: a pod running longer than that is stopped and Failed.
    fn deadline_exceeded(
        &self,
        pod: &Pod,
        old: Option<&k8s_openapi::api::core::v1::PodStatus>,
    ) -> Option<(String, String)> {
        let deadline = pod.spec.as_ref()?.active_deadline_seconds?;
        let start = old?.start_time.as_ref()?;
        let elapsed = clock::now().as_second() - start.0.as_second();
        (elapsed >= deadline).then(|| {
            (
                "DeadlineExceeded".to_string(),
                "Pod was active on the node longer than the specified deadline".to_string(),
            )
        })
    }

    // ---- the pod sync ----

    async fn sync_pod(self: &Arc<Self>, uid: &str) -> Next {
        let entry = self.pods.read().get(uid).cloned();
        let rt = match runtime_pod::get(&*self.runtime, uid).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(pod_uid = uid, error = %e, "could not read pod state from the runtime");
                return Next::After(Duration::from_secs(1));
            }
        };
        let Some(entry) = entry else {
            if !rt.is_empty() && !self.sources_ready() {
                // Not knowing every pod yet, the kubelet cannot tell an orphan from a pod it
                // has not heard of: wait.
                return Next::After(Duration::from_secs(1));
            }
            if !rt.is_empty() {
                let grace = rt
                    .containers
                    .iter()
                    .find(|c| c.running())
                    .map(|_| MINIMUM_GRACE_SECONDS)
                    .unwrap_or(MINIMUM_GRACE_SECONDS);
                self.kill_pod(None, &rt, grace).await;
            }
            self.cleanup(uid, None, &rt).await;
            return Next::Done;
        };
        let pod = entry.pod.clone();
        if pod.metadata.deletion_timestamp.is_some() {
            return self.sync_terminating(&entry, rt).await;
        }
        let api_phase = self
            .old_status(&entry)
            .and_then(|s| s.phase)
            .unwrap_or_default();
        if entry.source == Source::Api && (api_phase == "Succeeded" || api_phase == "Failed") {
            // Finished: nothing runs again; the sandbox's resources go back.
            if rt.running().next().is_some() || rt.sandboxes.iter().any(|s| s.ready) {
                self.kill_pod(Some(&pod), &rt, self.grace(&pod)).await;
                if let Ok(after) = runtime_pod::get(&*self.runtime, uid).await {
                    self.update_status(&entry, &after, true);
                }
            }
            return Next::After(self.cfg.sync_frequency);
        }
        if entry.source == Source::File {
            self.ensure_mirror(&pod).await;
        }
        if self
            .deadline_exceeded(&pod, self.old_status(&entry).as_ref())
            .is_some()
        {
            if rt.running().next().is_some() || rt.sandboxes.iter().any(|s| s.ready) {
                self.event(
                    &pod,
                    None,
                    EventType::Normal,
                    "DeadlineExceeded",
                    "Pod was active on the node longer than the specified deadline",
                );
                self.kill_pod(Some(&pod), &rt, self.grace(&pod)).await;
            }
            let after = runtime_pod::get(&*self.runtime, uid).await.unwrap_or(rt);
            self.update_status(&entry, &after, true);
            return Next::After(self.cfg.sync_frequency);
        }
        self.sync_running(&entry, rt).await
    }

    fn grace(&self, pod: &Pod) -> i64 {
        pod.metadata
            .deletion_grace_period_seconds
            .or_else(|| {
                pod.spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
            })
            .unwrap_or(30)
    }

    async fn sync_running(self: &Arc<Self>, entry: &PodEntry, rt: RuntimePod) -> Next {
        let pod = entry.pod.clone();
        let uid = uid_of(&pod);
        if self.status.get(&uid).is_none() {
            // First sight: report Pending with the node's address and a start time at once.
            self.update_status(entry, &rt, false);
        }
        let facts = PodFacts {
            host_ips: self.host_ips(),
            pod_ips: rt
                .latest_sandbox()
                .map(|s| s.ips.clone())
                .unwrap_or_default(),
        };
        let volumes = match self.volumes.setup(&pod, &self.allocatable(), &facts).await {
            Ok(v) => v,
            Err(e) => {
                self.event(
                    &pod,
                    None,
                    EventType::Warning,
                    "FailedMount",
                    &e.to_string(),
                );
                self.update_status(entry, &rt, false);
                return Next::After(Duration::from_secs(2));
            }
        };
        let actions = compute_actions(&pod, &rt, &self.probes);
        let mut next = self.cfg.sync_frequency;

        if actions.kill_pod {
            if actions.create_sandbox && rt.latest_sandbox().is_some() {
                self.event(
                    &pod,
                    None,
                    EventType::Normal,
                    "SandboxChanged",
                    "Pod sandbox changed, it will be killed and re-created.",
                );
            }
            self.kill_pod(Some(&pod), &rt, self.grace(&pod)).await;
            if !actions.create_sandbox {
                let after = runtime_pod::get(&*self.runtime, &uid).await.unwrap_or(rt);
                self.update_status(entry, &after, false);
                return Next::After(next);
            }
        }
        for (id, name, message) in &actions.kill {
            let info = rt.containers.iter().find(|c| &c.id == id).cloned();
            if let Some(c) = info {
                let m = (!message.is_empty()).then(|| message.clone());
                let grace = pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
                    .unwrap_or(30);
                self.kill_container(Some(&pod), &c, grace, m).await;
            } else {
                tracing::debug!(container = %name, "container to kill is gone already");
            }
        }

        let qos = qos::pod_qos(&pod);
        let mut sandbox_id = actions.sandbox_id.clone();
        let mut sandbox_config = None;
        let mut pod_ips = facts.pod_ips.clone();
        if actions.create_sandbox {
            match self.create_sandbox(&pod, qos, actions.attempt).await {
                Ok((id, cfg, ips)) => {
                    sandbox_id = Some(id);
                    sandbox_config = Some(cfg);
                    pod_ips = ips;
                }
                Err(msg) => {
                    self.event(
                        &pod,
                        None,
                        EventType::Warning,
                        "FailedCreatePodSandBox",
                        &format!("Failed to create pod sandbox: {msg}"),
                    );
                    let after = runtime_pod::get(&*self.runtime, &uid).await.unwrap_or(rt);
                    self.update_status(entry, &after, false);
                    return Next::After(Duration::from_secs(2));
                }
            }
        }
        let Some(sandbox_id) = sandbox_id else {
            self.update_status(entry, &rt, false);
            return Next::After(next);
        };
        let sandbox_config = match sandbox_config {
            Some(c) => c,
            None => self.sandbox_config(
                &pod,
                qos,
                rt.latest_sandbox().map(|s| s.attempt).unwrap_or(0),
            ),
        };
        let files = self.pod_files(&pod, &pod_ips);
        // Probes and env read the pod's IPs: the freshly created sandbox's.
        let facts = PodFacts {
            host_ips: facts.host_ips,
            pod_ips: pod_ips.clone(),
        };
        let spec = pod.spec.clone().unwrap_or_default();
        let mut to_start: Vec<(Container, bool)> = Vec::new();
        if let Some(i) = actions.start_init {
            to_start.push((
                spec.init_containers.clone().unwrap_or_default()[i].clone(),
                true,
            ));
        }
        for i in &actions.start {
            to_start.push((spec.containers[*i].clone(), false));
        }
        for (c, init) in to_start {
            match self
                .start_container(
                    &pod,
                    &c,
                    init,
                    &rt,
                    &sandbox_id,
                    &sandbox_config,
                    &volumes,
                    &files,
                    &facts,
                    qos,
                )
                .await
            {
                Ok(()) => self.set_reason(&uid, reason_key(&c.name, init), None),
                Err((w, retry)) => {
                    self.metrics
                        .container_start_errors
                        .fetch_add(1, Ordering::Relaxed);
                    self.set_reason(&uid, reason_key(&c.name, init), Some(w));
                    next = next.min(retry);
                }
            }
        }

        let after = match runtime_pod::get(&*self.runtime, &uid).await {
            Ok(r) => r,
            Err(_) => rt,
        };
        self.start_probes(&pod, &after, &pod_ips);
        self.gc_dead_containers(&after).await;
        self.update_status(entry, &after, false);
        Next::After(next)
    }

    fn sandbox_config(&self, pod: &Pod, qos: QosClass, attempt: u32) -> api::PodSandboxConfig {
        let uid = uid_of(pod);
        let (_, missing) = crate::dns::effective_policy(pod, &self.dns);
        let _ = missing;
        runtime_config::sandbox_config(
            pod,
            attempt,
            &runtime_config::pod_log_dir(&self.cfg.pod_logs_dir, pod),
            crate::dns::pod_dns_config(pod, &self.dns),
            self.cgroups.pod_parent(&uid, qos),
        )
    }

    async fn create_sandbox(
        &self,
        pod: &Pod,
        qos: QosClass,
        attempt: u32,
    ) -> Result<(String, api::PodSandboxConfig, Vec<String>), String> {
        let uid = uid_of(pod);
        self.cgroups
            .ensure_pod(&uid, qos, crate::cgroups::pod_limits(pod))
            .map_err(|e| e.to_string())?;
        let (_, missing_dns) = crate::dns::effective_policy(pod, &self.dns);
        if missing_dns
            && pod
                .spec
                .as_ref()
                .and_then(|s| s.dns_policy.as_deref())
                .unwrap_or("ClusterFirst")
                == "ClusterFirst"
            && !pod
                .spec
                .as_ref()
                .and_then(|s| s.host_network)
                .unwrap_or(false)
        {
            self.event(
                pod,
                None,
                EventType::Warning,
                "MissingClusterDNS",
                &format!("pod: {:?}. kubelet does not have ClusterDNS IP configured and cannot create Pod using \"ClusterFirst\" policy. Falling back to \"Default\" policy.", pod_desc(pod)),
            );
        }
        let cfg = self.sandbox_config(pod, qos, attempt);
        if self.cfg.write_pod_files {
            let dir = runtime_config::pod_log_dir(&self.cfg.pod_logs_dir, pod);
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let id = self
            .runtime
            .run_pod_sandbox(cfg.clone(), &self.cfg.runtime_handler)
            .await
            .map_err(|e| e.to_string())?;
        let status = self
            .runtime
            .pod_sandbox_status(&id)
            .await
            .map_err(|e| e.to_string())?;
        let mut ips = Vec::new();
        if let Some(n) = status.network {
            if !n.ip.is_empty() {
                ips.push(n.ip);
            }
            ips.extend(n.additional_ips.into_iter().map(|i| i.ip));
        }
        if pod
            .spec
            .as_ref()
            .and_then(|s| s.host_network)
            .unwrap_or(false)
        {
            ips = self.host_ips();
        }
        Ok((id, cfg, ips))
    }

    /// /etc/hosts and the termination-log directory.
    fn pod_files(&self, pod: &Pod, pod_ips: &[String]) -> PodFiles {
        if !self.cfg.write_pod_files {
            return PodFiles::default();
        }
        let dir = self.volumes.pod_dir(&uid_of(pod));
        let hosts = dir.join("etc-hosts");
        let host_hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
        let text = crate::dns::hosts_file(pod, pod_ips, &self.cfg.cluster_domain, &host_hosts);
        let ok = std::fs::create_dir_all(&dir).is_ok()
            && (std::fs::read_to_string(&hosts).ok().as_deref() == Some(text.as_str())
                || std::fs::write(&hosts, &text).is_ok());
        PodFiles {
            etc_hosts: ok.then_some(hosts),
            termination_log: None,
        }
    }

    async fn ensure_image(
        &self,
        pod: &Pod,
        c: &Container,
        init: bool,
        sandbox: &api::PodSandboxConfig,
    ) -> Result<String, Waiting> {
        let image = c.image.clone().unwrap_or_default();
        let reference = Some((c.name.as_str(), init));
        if image.is_empty() {
            return Err(Waiting {
                reason: "InvalidImageName".into(),
                message: "image is empty".into(),
            });
        }
        let policy = c.image_pull_policy.clone().unwrap_or_else(|| {
            let tag_latest = !image.contains('@')
                && image
                    .rsplit('/')
                    .next()
                    .is_some_and(|last| !last.contains(':') || last.ends_with(":latest"));
            if tag_latest { "Always" } else { "IfNotPresent" }.to_string()
        });
        let present = self
            .runtime
            .image_status(&image)
            .await
            .map_err(|e| Waiting {
                reason: "ImageInspectError".into(),
                message: format!("Failed to inspect image {image:?}: {e}"),
            })?;
        let pull = match policy.as_str() {
            "Never" => false,
            "Always" => true,
            _ => present.is_none(),
        };
        if !pull {
            return match present {
                Some(img) => {
                    self.event(
                        pod,
                        reference,
                        EventType::Normal,
                        "Pulled",
                        &format!("Container image {image:?} already present on machine"),
                    );
                    Ok(img.id)
                }
                None => {
                    let msg = format!(
                        "Container image {image:?} is not present with pull policy of Never"
                    );
                    self.event(
                        pod,
                        reference,
                        EventType::Warning,
                        "ErrImageNeverPull",
                        &msg,
                    );
                    Err(Waiting {
                        reason: "ErrImageNeverPull".into(),
                        message: msg,
                    })
                }
            };
        }
        let key = format!("{}_{image}", uid_of(pod));
        let now = clock::now_nanos();
        if self.image_backoff.in_backoff_since_update(&key, now) {
            let mut msg = format!("Back-off pulling image {image:?}");
            self.event(pod, reference, EventType::Normal, "BackOff", &msg);
            self.event(
                pod,
                reference,
                EventType::Warning,
                "Failed",
                "Error: ImagePullBackOff",
            );
            if let Some(prev) = self.prev_pull_errors.lock().get(&key) {
                msg = format!("{msg}: {prev}");
            }
            return Err(Waiting {
                reason: "ImagePullBackOff".into(),
                message: msg,
            });
        }
        self.event(
            pod,
            reference,
            EventType::Normal,
            "Pulling",
            &format!("Pulling image {image:?}"),
        );
        let started = tokio::time::Instant::now();
        let auth = self.pull_auth(pod, &image).await;
        match self
            .runtime
            .pull_image(&image, auth, Some(sandbox.clone()))
            .await
        {
            Ok(id) => {
                self.prev_pull_errors.lock().remove(&key);
                let took = started.elapsed().as_secs_f64();
                let size = self
                    .runtime
                    .image_status(&image)
                    .await
                    .ok()
                    .flatten()
                    .map(|i| i.size)
                    .unwrap_or(0);
                self.event(
                    pod,
                    reference,
                    EventType::Normal,
                    "Pulled",
                    &format!("Successfully pulled image {image:?} in {took:.3}s ({took:.3}s including waiting). Image size: {size} bytes."),
                );
                Ok(id)
            }
            Err(e) => {
                let err = e.message();
                self.image_backoff.next(&key, now, now);
                self.prev_pull_errors
                    .lock()
                    .insert(key, format!("ErrImagePull: {err}"));
                self.event(
                    pod,
                    reference,
                    EventType::Warning,
                    "Failed",
                    &format!("Failed to pull image {image:?}: {err}"),
                );
                self.event(
                    pod,
                    reference,
                    EventType::Warning,
                    "Failed",
                    "Error: ErrImagePull",
                );
                Err(Waiting {
                    reason: "ErrImagePull".into(),
                    message: err,
                })
            }
        }
    }

    /// Registry credentials from the pod's imagePullSecrets (dockerconfigjson), matched by host.
    async fn pull_auth(&self, pod: &Pod, image: &str) -> Option<api::AuthConfig> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let host = cri::normalize_image(image)
            .split('/')
            .next()
            .unwrap_or("")
            .to_string();
        for s in pod.spec.as_ref()?.image_pull_secrets.iter().flatten() {
            let Ok(Some(secret)) = self.objects.secret(ns, &s.name).await else {
                continue;
            };
            let data = secret.data.unwrap_or_default();
            let Some(raw) = data
                .get(".dockerconfigjson")
                .or_else(|| data.get(".dockercfg"))
            else {
                continue;
            };
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(&raw.0) else {
                continue;
            };
            let auths = v.get("auths").unwrap_or(&v);
            for (registry, a) in auths.as_object().into_iter().flatten() {
                let reg_host = registry
                    .trim_start_matches("https://")
                    .trim_start_matches("http://")
                    .split('/')
                    .next()
                    .unwrap_or("");
                let matches = reg_host == host
                    || (host == "docker.io"
                        && (reg_host == "index.docker.io" || reg_host == "registry-1.docker.io"));
                if matches {
                    let s = |k: &str| a.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
                    return Some(api::AuthConfig {
                        username: s("username"),
                        password: s("password"),
                        auth: s("auth"),
                        server_address: registry.clone(),
                        ..Default::default()
                    });
                }
            }
        }
        None
    }

    #[allow(clippy::too_many_arguments)]
    async fn start_container(
        self: &Arc<Self>,
        pod: &Pod,
        c: &Container,
        init: bool,
        rt: &RuntimePod,
        sandbox_id: &str,
        sandbox_config: &api::PodSandboxConfig,
        volumes: &HashMap<String, MountedVolume>,
        files: &PodFiles,
        facts: &PodFacts,
        qos: QosClass,
    ) -> Result<(), (Waiting, Duration)> {
        let uid = uid_of(pod);
        let reference = Some((c.name.as_str(), init));
        let latest = rt.latest(&c.name, init);
        let restart_count = latest.map(|l| l.restart_count + 1).unwrap_or(0);
        if let Some(l) = latest.filter(|l| l.exited()) {
            let key = format!("{uid}/{}/{}", c.name, runtime_config::container_hash(c));
            let now = clock::now_nanos();
            if let Some(left) = self.backoff.in_backoff_since(&key, l.finished_at, now) {
                let d = self.backoff.get(&key).unwrap_or(Duration::from_secs(10));
                self.event(
                    pod,
                    reference,
                    EventType::Warning,
                    "BackOff",
                    &format!(
                        "Back-off restarting failed container {} in pod {}",
                        c.name,
                        pod_desc(pod)
                    ),
                );
                return Err((
                    Waiting {
                        reason: "CrashLoopBackOff".into(),
                        message: format!(
                            "back-off {} restarting failed container={} pod={}",
                            go_duration(d),
                            c.name,
                            pod_desc(pod)
                        ),
                    },
                    left + Duration::from_millis(50),
                ));
            }
            self.backoff.next(&key, l.finished_at, now);
        }
        let image_ref = self
            .ensure_image(pod, c, init, sandbox_config)
            .await
            .map_err(|w| {
                let retry = match w.reason.as_str() {
                    "ImagePullBackOff" | "ErrImagePull" => Duration::from_secs(1),
                    _ => Duration::from_secs(5),
                };
                (w, retry)
            })?;
        let config_error = |msg: String| {
            self.event(
                pod,
                reference,
                EventType::Warning,
                "Failed",
                &format!("Error: {msg}"),
            );
            (
                Waiting {
                    reason: "CreateContainerConfigError".into(),
                    message: msg,
                },
                Duration::from_secs(2),
            )
        };
        let services = self.services.list();
        let env = crate::env::make_environment(
            pod,
            c,
            &services,
            &*self.objects,
            &self.allocatable(),
            facts,
        )
        .await
        .map_err(config_error)?;
        let image_user = self
            .runtime
            .image_status(&image_ref)
            .await
            .ok()
            .flatten()
            .and_then(|i| i.uid.map(|u| u.value));
        let mut files = files.clone();
        if self.cfg.write_pod_files {
            let dir = self.volumes.pod_dir(&uid).join("containers").join(&c.name);
            let path = dir.join(format!("{:08x}", rand::random::<u32>()));
            if std::fs::create_dir_all(&dir).is_ok() && std::fs::File::create(&path).is_ok() {
                files.termination_log = Some(path);
            }
        }
        let config = runtime_config::container_config(&ContainerInputs {
            pod,
            container: c,
            is_init: init,
            restart_count,
            image_ref: &image_ref,
            env,
            volumes,
            files: &files,
            qos,
            memory_capacity: self.node.machine().memory_bytes,
            image_user,
        })
        .map_err(config_error)?;
        let id = match self
            .runtime
            .create_container(sandbox_id, config, sandbox_config.clone())
            .await
        {
            Ok(id) => id,
            Err(e) => {
                let msg = e.message();
                self.event(
                    pod,
                    reference,
                    EventType::Warning,
                    "Failed",
                    &format!("Error: {msg}"),
                );
                return Err((
                    Waiting {
                        reason: "CreateContainerError".into(),
                        message: msg,
                    },
                    Duration::from_secs(2),
                ));
            }
        };
        self.event(
            pod,
            reference,
            EventType::Normal,
            "Created",
            &format!("Created container: {}", c.name),
        );
        if let Err(e) = self.runtime.start_container(&id).await {
            let msg = e.message();
            self.event(
                pod,
                reference,
                EventType::Warning,
                "Failed",
                &format!("Error: {msg}"),
            );
            return Err((
                Waiting {
                    reason: "RunContainerError".into(),
                    message: msg,
                },
                Duration::from_secs(2),
            ));
        }
        self.metrics
            .containers_started
            .fetch_add(1, Ordering::Relaxed);
        self.event(
            pod,
            reference,
            EventType::Normal,
            "Started",
            &format!("Started container {}", c.name),
        );
        if let Some(hook) = c.lifecycle.as_ref().and_then(|l| l.post_start.as_ref()) {
            let ip = facts.pod_ips.first().cloned().unwrap_or_default();
            let outcome = crate::lifecycle::run_hook(
                hook,
                &*self.runtime,
                &id,
                c,
                &ip,
                Duration::from_secs(120),
            )
            .await;
            if let crate::probes::Outcome::Failure(msg) = outcome {
                let text = crate::lifecycle::hook_failure_message("PostStart", hook, c, pod, &msg);
                self.event(
                    pod,
                    reference,
                    EventType::Warning,
                    "FailedPostStartHook",
                    &text,
                );
                if let Ok(info) = runtime_pod::get(&*self.runtime, &uid).await
                    && let Some(ci) = info.containers.iter().find(|x| x.id == id)
                {
                    self.kill_container(Some(pod), ci, 0, Some("FailedPostStartHook".to_string()))
                        .await;
                }
                return Err((
                    Waiting {
                        reason: "PostStartHookError".into(),
                        message: text,
                    },
                    Duration::from_secs(1),
                ));
            }
        }
        Ok(())
    }

    fn start_probes(self: &Arc<Self>, pod: &Pod, rt: &RuntimePod, pod_ips: &[String]) {
        let spec = pod.spec.clone().unwrap_or_default();
        let ip = pod_ips.first().cloned().unwrap_or_default();
        let uid = uid_of(pod);
        for c in spec.containers.iter().chain(
            spec.init_containers
                .iter()
                .flatten()
                .filter(|c| c.restart_policy.as_deref() == Some("Always")),
        ) {
            if c.liveness_probe.is_none()
                && c.readiness_probe.is_none()
                && c.startup_probe.is_none()
            {
                continue;
            }
            let init = spec
                .init_containers
                .iter()
                .flatten()
                .any(|i| i.name == c.name);
            let Some(info) = rt.latest(&c.name, init).filter(|i| i.running()) else {
                continue;
            };
            let me = Arc::downgrade(self);
            let u = uid.clone();
            self.probes.ensure(ProbeTarget {
                runtime: self.runtime.clone(),
                recorder: Some(self.recorder.clone()),
                reference: Self::pod_ref(pod, Some((&c.name, init))),
                container: c.clone(),
                container_id: info.id.clone(),
                pod_ip: ip.clone(),
                on_change: Arc::new(move || {
                    if let Some(k) = me.upgrade() {
                        k.dispatch(&u);
                    }
                }),
            });
        }
    }

    /// Keeps the two newest instances of each container (the current one, and the previous one
    /// for lastState and `logs --previous`), and removes sandboxes nothing lives in any more.
    async fn gc_dead_containers(&self, rt: &RuntimePod) {
        let mut seen: HashMap<(String, bool), usize> = HashMap::new();
        let mut removed = Vec::new();
        for c in &rt.containers {
            let n = seen.entry((c.name.clone(), c.is_init)).or_insert(0);
            *n += 1;
            // The newest instance and the one before it stay: status and logs need both.
            if *n > 2 && c.exited() && self.runtime.remove_container(&c.id).await.is_ok() {
                removed.push(c.id.clone());
                if !c.log_path.is_empty() {
                    let _ = std::fs::remove_file(&c.log_path);
                }
            }
        }
        let live_sandboxes: HashSet<&str> = rt
            .containers
            .iter()
            .filter(|c| !removed.contains(&c.id))
            .map(|c| c.sandbox_id.as_str())
            .collect();
        for (i, s) in rt.sandboxes.iter().enumerate() {
            if i > 0 && !s.ready && !live_sandboxes.contains(s.id.as_str()) {
                let _ = self.runtime.remove_pod_sandbox(&s.id).await;
            }
        }
    }

    /// Stops one container: preStop hook, then the runtime's stop with what is left of the grace
    /// period.
    async fn kill_container(
        &self,
        pod: Option<&Pod>,
        c: &ContainerInfo,
        grace: i64,
        message: Option<String>,
    ) {
        let spec = pod.and_then(|p| {
            let s = p.spec.as_ref()?;
            s.containers
                .iter()
                .chain(s.init_containers.iter().flatten())
                .find(|x| x.name == c.name)
                .cloned()
        });
        if let Some(p) = pod {
            let msg = message.unwrap_or_else(|| format!("Stopping container {}", c.name));
            self.event(
                p,
                Some((&c.name, c.is_init)),
                EventType::Normal,
                "Killing",
                &msg,
            );
        }
        let mut grace = grace;
        if let (Some(p), Some(s)) = (pod, &spec)
            && let Some(hook) = s.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref())
            && grace > 0
        {
            let started = tokio::time::Instant::now();
            let ip = self
                .status
                .get(&uid_of(p))
                .and_then(|st| st.pod_ip)
                .unwrap_or_default();
            let outcome = crate::lifecycle::run_hook(
                hook,
                &*self.runtime,
                &c.id,
                s,
                &ip,
                Duration::from_secs(grace as u64),
            )
            .await;
            if let crate::probes::Outcome::Failure(msg) = outcome {
                let text = crate::lifecycle::hook_failure_message("PreStop", hook, s, p, &msg);
                self.event(
                    p,
                    Some((&c.name, c.is_init)),
                    EventType::Warning,
                    "FailedPreStopHook",
                    &text,
                );
            }
            grace -= started.elapsed().as_secs() as i64;
        }
        let grace = grace.max(MINIMUM_GRACE_SECONDS);
        if let Err(e) = self.runtime.stop_container(&c.id, grace).await
            && !e.is_not_found()
        {
            tracing::warn!(container = %c.id, error = %e, "failed to stop container");
        }
        self.probes.forget(std::slice::from_ref(&c.id));
    }

    /// Stops every running container of a pod (in parallel) and then its sandboxes.
    async fn kill_pod(&self, pod: Option<&Pod>, rt: &RuntimePod, grace: i64) {
        let running: Vec<&ContainerInfo> = rt.running().collect();
        let kills = running
            .iter()
            .map(|c| self.kill_container(pod, c, grace, None));
        futures::future::join_all(kills).await;
        for s in &rt.sandboxes {
            if s.ready
                && let Err(e) = self.runtime.stop_pod_sandbox(&s.id).await
            {
                tracing::warn!(sandbox = %s.id, error = %e, "failed to stop pod sandbox");
            }
        }
    }

    async fn sync_terminating(self: &Arc<Self>, entry: &PodEntry, rt: RuntimePod) -> Next {
        let pod = entry.pod.clone();
        let uid = uid_of(&pod);
        let grace = pod
            .metadata
            .deletion_grace_period_seconds
            .unwrap_or_else(|| self.grace(&pod));
        if rt.running().next().is_some() || rt.sandboxes.iter().any(|s| s.ready) {
            self.kill_pod(Some(&pod), &rt, grace).await;
        }
        let after = runtime_pod::get(&*self.runtime, &uid).await.unwrap_or(rt);
        self.update_status(entry, &after, true);
        if entry.source == Source::File {
            return Next::After(self.cfg.sync_frequency);
        }
        // The final status first, then the pod object goes.
        self.status.wait_synced(&uid, Duration::from_secs(5)).await;
        self.cleanup(&uid, Some(&pod), &after).await;
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        match self.delete_pod_object(&ns, &name, &uid).await {
            Ok(()) => Next::After(Duration::from_secs(10)),
            Err(e) => {
                tracing::warn!(pod = %format!("{ns}/{name}"), error = %e, "could not delete the pod object");
                Next::After(Duration::from_secs(1))
            }
        }
    }

    /// DELETE with grace period 0 and the pod's uid as precondition: only this pod, now.
    async fn delete_pod_object(&self, ns: &str, name: &str, uid: &str) -> Result<(), kube::Error> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(uid.to_string()),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api.delete(name, &dp).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Removes everything the node holds for a pod: containers, sandboxes, volumes, cgroup, logs.
    async fn cleanup(&self, uid: &str, pod: Option<&Pod>, rt: &RuntimePod) {
        let ids: Vec<String> = rt.containers.iter().map(|c| c.id.clone()).collect();
        self.probes.forget(&ids);
        for c in &rt.containers {
            let _ = self.runtime.remove_container(&c.id).await;
        }
        for s in &rt.sandboxes {
            if let Err(e) = self.runtime.stop_pod_sandbox(&s.id).await {
                tracing::debug!(sandbox = %s.id, error = %e, "stopping sandbox during cleanup");
            }
            if let Err(e) = self.runtime.remove_pod_sandbox(&s.id).await {
                tracing::warn!(sandbox = %s.id, error = %e, "failed to remove pod sandbox");
            }
        }
        self.volumes.teardown(uid);
        match pod {
            Some(p) => self.cgroups.remove_pod(uid, qos::pod_qos(p)),
            None => {
                for q in [
                    QosClass::Guaranteed,
                    QosClass::Burstable,
                    QosClass::BestEffort,
                ] {
                    self.cgroups.remove_pod(uid, q);
                }
            }
        }
        if self.cfg.write_pod_files {
            let (ns, name) = match pod {
                Some(p) => (
                    p.metadata.namespace.clone().unwrap_or_default(),
                    p.metadata.name.clone().unwrap_or_default(),
                ),
                None => (rt.namespace.clone(), rt.name.clone()),
            };
            if !name.is_empty() {
                let _ = std::fs::remove_dir_all(
                    self.cfg.pod_logs_dir.join(format!("{ns}_{name}_{uid}")),
                );
            }
        }
        self.backoff.forget_prefix(&format!("{uid}/"));
        self.image_backoff.forget_prefix(&format!("{uid}_"));
        self.prev_pull_errors
            .lock()
            .retain(|k, _| !k.starts_with(&format!("{uid}_")));
        self.reasons.lock().remove(uid);
        self.started.lock().remove(uid);
        self.status.forget(uid);
    }

    // ---- static pods' mirrors ----

    async fn ensure_mirror(&self, pod: &Pod) {
        let hash = pod
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(CONFIG_HASH_ANNOTATION).cloned())
            .unwrap_or_default();
        let name = full_name(pod);
        let existing = self.mirrors.lock().get(&name).cloned();
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        match existing {
            Some((_, h)) if h == hash => return,
            Some((uid, _)) => {
                let n = pod.metadata.name.clone().unwrap_or_default();
                let _ = self.delete_pod_object(&ns, &n, &uid).await;
            }
            None => {}
        }
        let mut mirror = pod.clone();
        mirror.metadata.uid = None;
        mirror.metadata.resource_version = None;
        mirror.metadata.creation_timestamp = None;
        mirror.status = None;
        mirror
            .metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(MIRROR_ANNOTATION.into(), hash);
        if let Some(node) = self.nodes.get(&self.cfg.node_name)
            && let Some(node_uid) = node.metadata.uid.clone()
        {
            mirror.metadata.owner_references = Some(vec![
                k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                    api_version: "v1".into(),
                    kind: "Node".into(),
                    name: self.cfg.node_name.clone(),
                    uid: node_uid,
                    controller: Some(true),
                    ..Default::default()
                },
            ]);
        }
        match api.create(&PostParams::default(), &mirror).await {
            Ok(created) => {
                let uid = uid_of(&created);
                let h = created
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(MIRROR_ANNOTATION).cloned())
                    .unwrap_or_default();
                self.mirrors.lock().insert(name, (uid, h));
            }
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => tracing::debug!(pod = %name, error = %e, "could not create mirror pod"),
        }
    }

    // ---- background loops ----

    /// Relists the runtime: every pod whose containers or sandboxes changed state is synced.
    async fn relist(self: &Arc<Self>, previous: &mut HashMap<String, (String, i32)>) {
        let containers = match self.runtime.list_containers(None).await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "relist failed");
                return;
            }
        };
        let sandboxes = self
            .runtime
            .list_pod_sandbox(None)
            .await
            .unwrap_or_default();
        let mut now: HashMap<String, (String, i32)> = HashMap::new();
        let mut running_containers = 0;
        for c in &containers {
            if let Some(uid) = c.labels.get(cri::labels::POD_UID) {
                now.insert(c.id.clone(), (uid.clone(), c.state));
                if c.state == api::ContainerState::ContainerRunning as i32 {
                    running_containers += 1;
                }
            }
        }
        let mut running_pods = 0;
        for s in &sandboxes {
            if let Some(uid) = s.labels.get(cri::labels::POD_UID) {
                now.insert(format!("sandbox:{}", s.id), (uid.clone(), s.state + 100));
                if s.state == api::PodSandboxState::SandboxReady as i32 {
                    running_pods += 1;
                }
            }
        }
        self.metrics
            .running_containers
            .store(running_containers, Ordering::Relaxed);
        self.metrics
            .running_pods
            .store(running_pods, Ordering::Relaxed);
        let mut changed: HashSet<String> = HashSet::new();
        for (id, (uid, state)) in &now {
            if previous.get(id).is_none_or(|(_, s)| s != state) {
                changed.insert(uid.clone());
            }
        }
        for (id, (uid, _)) in previous.iter() {
            if !now.contains_key(id) {
                changed.insert(uid.clone());
            }
        }
        *previous = now;
        for uid in changed {
            self.dispatch(&uid);
        }
    }

    fn watch_pod_cidr(self: &Arc<Self>) {
        let me = Arc::downgrade(self);
        let apply = move |node: &Node| {
            let Some(k) = me.upgrade() else { return };
            if node.metadata.name.as_deref() != Some(k.cfg.node_name.as_str()) {
                return;
            }
            let Some(cidr) = node
                .spec
                .as_ref()
                .and_then(|s| s.pod_cidr.clone())
                .filter(|c| !c.is_empty())
            else {
                return;
            };
            let changed = {
                let mut cur = k.pod_cidr.lock();
                let changed = cur.as_deref() != Some(cidr.as_str());
                *cur = Some(cidr.clone());
                changed
            };
            if changed {
                k.apply_pod_cidr(cidr);
            }
        };
        self.nodes.on_change(move |c| apply(c.object()));
    }

    fn apply_pod_cidr(self: &Arc<Self>, cidr: String) {
        tracing::info!(node = %self.cfg.node_name, pod_cidr = %cidr, "using pod CIDR");
        if let Some(f) = &*self.on_pod_cidr.lock() {
            f(&cidr);
        }
        let rt = self.runtime.clone();
        tokio::spawn(async move {
            if let Err(e) = rt.update_runtime_config(&cidr).await {
                tracing::warn!(error = %e, "could not pass the pod CIDR to the runtime");
            }
        });
    }

    /// A pod's usage from its cgroup, if it has one on this node.
    pub fn pod_cgroup_usage(&self, uid: &str, qos: QosClass) -> Option<crate::cgroups::Usage> {
        self.cgroups.pod_usage(uid, qos)
    }

    /// The pod CIDR in use.
    pub fn pod_cidr(&self) -> Option<String> {
        self.pod_cidr.lock().clone()
    }

    /// Removes pod directories no pod owns any more (after a crash or restart).
    fn housekeeping(&self) {
        if !self.sources_ready() || !self.cfg.write_pod_files {
            return;
        }
        let Ok(rd) = std::fs::read_dir(self.cfg.root_dir.join("pods")) else {
            return;
        };
        let known: HashSet<String> = self.pods.read().keys().cloned().collect();
        let working: HashSet<String> = self.workers.lock().keys().cloned().collect();
        for e in rd.flatten() {
            let uid = e.file_name().to_string_lossy().to_string();
            if !known.contains(&uid) && !working.contains(&uid) {
                self.volumes.teardown(&uid);
            }
        }
    }

    /// Starts everything: node registration and status, the status writers, the relist, pod
    /// CIDR tracking, housekeeping. Returns at once; stops when `cancel` fires.
    pub async fn start(self: &Arc<Self>, cancel: CancellationToken) {
        let inner = self.cancel.clone();
        {
            let c = cancel.clone();
            tokio::spawn(async move {
                c.cancelled().await;
                inner.cancel();
            });
        }
        if let Ok(v) = self.runtime.version().await {
            *self.runtime_name.write() = v.runtime_name;
        }
        if let Some(cidr) = self.pod_cidr() {
            self.apply_pod_cidr(cidr);
        }
        self.watch_pod_cidr();
        self.status.start(self.cfg.status_workers, cancel.clone());
        tokio::spawn(self.node.clone().run(cancel.clone()));
        let me = self.clone();
        let c = cancel.clone();
        tokio::spawn(async move {
            let mut previous = HashMap::new();
            let mut interval = tokio::time::interval(me.cfg.pleg_relist_period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut ticks: u64 = 0;
            loop {
                tokio::select! {
                    _ = c.cancelled() => return,
                    _ = interval.tick() => {}
                }
                me.relist(&mut previous).await;
                ticks += 1;
                if ticks.is_multiple_of(10) {
                    me.housekeeping();
                }
            }
        });
        if let Some(dir) = self.cfg.pod_manifest_path.clone() {
            self.set_files_synced(false);
            tokio::spawn(crate::static_pods::run(self.clone(), dir, cancel.clone()));
        }
    }

    /// Feeds the kubelet from a pod informer (all pods, or this node's): every pod bound here.
    pub fn watch_pods(self: &Arc<Self>, informer: Arc<Informer<Pod>>) {
        let me = Arc::downgrade(self);
        informer.on_change(move |c| {
            let Some(k) = me.upgrade() else { return };
            match c {
                ferrokube_client::Change::Added(p) => k.api_pod_updated((*p).clone()),
                ferrokube_client::Change::Updated { old, new } => {
                    let node = k.cfg.node_name.as_str();
                    let moved = old.spec.as_ref().and_then(|s| s.node_name.as_deref())
                        == Some(node)
                        && new.spec.as_ref().and_then(|s| s.node_name.as_deref()) != Some(node);
                    if moved {
                        k.api_pod_deleted(old);
                    } else {
                        k.api_pod_updated((*new).clone());
                    }
                }
                ferrokube_client::Change::Deleted(p) => k.api_pod_deleted(p),
            }
        });
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            informer.wait_synced().await;
            if let Some(k) = me.upgrade() {
                k.set_api_synced();
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime_pod::{ContainerState as S, SandboxInfo};
    use k8s_openapi::api::core::v1::PodSpec;

    fn pod(policy: &str, containers: &[&str], inits: &[&str]) -> Pod {
        let mk = |n: &&str| Container {
            name: n.to_string(),
            image: Some("busybox".into()),
            ..Default::default()
        };
        Pod {
            metadata: kube::api::ObjectMeta {
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

    fn sandbox(ready: bool, attempt: u32) -> SandboxInfo {
        SandboxInfo {
            id: format!("sb{attempt}"),
            ready,
            attempt,
            created_at: attempt as i64,
            ips: if ready {
                vec!["10.0.0.2".into()]
            } else {
                vec![]
            },
            host_network: false,
        }
    }

    fn ctr(p: &Pod, name: &str, state: S, exit: i32, init: bool) -> ContainerInfo {
        let spec = p.spec.as_ref().unwrap();
        let c = spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .find(|c| c.name == name)
            .unwrap();
        ContainerInfo {
            id: format!("id-{name}"),
            name: name.into(),
            sandbox_id: "sb0".into(),
            state,
            created_at: 1,
            started_at: 1,
            finished_at: 2,
            exit_code: exit,
            reason: String::new(),
            message: String::new(),
            image: String::new(),
            image_ref: String::new(),
            hash: runtime_config::container_hash(c),
            restart_count: 0,
            is_init: init,
            log_path: String::new(),
        }
    }

    fn rt(sandboxes: Vec<SandboxInfo>, containers: Vec<ContainerInfo>) -> RuntimePod {
        RuntimePod {
            uid: "u".into(),
            sandboxes,
            containers,
            ..Default::default()
        }
    }

    #[test]
    fn a_new_pod_gets_a_sandbox_and_then_its_first_init_container() {
        let p = pod("Always", &["a", "b"], &[]);
        let a = compute_actions(&p, &rt(vec![], vec![]), &ProbeManager::default());
        assert!(a.create_sandbox && !a.kill_pod);
        assert_eq!(a.start, vec![0, 1]);
        let p = pod("Always", &["a"], &["i1", "i2"]);
        let a = compute_actions(&p, &rt(vec![], vec![]), &ProbeManager::default());
        assert_eq!((a.start_init, a.start.len()), (Some(0), 0));
    }

    #[test]
    fn init_containers_run_one_after_another() {
        let p = pod("Always", &["a"], &["i1", "i2"]);
        let running = rt(
            vec![sandbox(true, 0)],
            vec![ctr(&p, "i1", S::Running, 0, true)],
        );
        assert_eq!(
            compute_actions(&p, &running, &ProbeManager::default()),
            Actions {
                sandbox_id: Some("sb0".into()),
                ..Default::default()
            }
        );
        let first_done = rt(
            vec![sandbox(true, 0)],
            vec![ctr(&p, "i1", S::Exited, 0, true)],
        );
        assert_eq!(
            compute_actions(&p, &first_done, &ProbeManager::default()).start_init,
            Some(1)
        );
        let all_done = rt(
            vec![sandbox(true, 0)],
            vec![
                ctr(&p, "i1", S::Exited, 0, true),
                ctr(&p, "i2", S::Exited, 0, true),
            ],
        );
        assert_eq!(
            compute_actions(&p, &all_done, &ProbeManager::default()).start,
            vec![0]
        );
    }

    #[test]
    fn restart_policy_decides_which_exited_containers_start_again() {
        for (policy, code, restart) in [
            ("Always", 0, true),
            ("Always", 1, true),
            ("OnFailure", 0, false),
            ("OnFailure", 1, true),
            ("Never", 1, false),
        ] {
            let p = pod(policy, &["a"], &[]);
            let r = rt(
                vec![sandbox(true, 0)],
                vec![ctr(&p, "a", S::Exited, code, false)],
            );
            let a = compute_actions(&p, &r, &ProbeManager::default());
            assert_eq!(!a.start.is_empty(), restart, "{policy} exit {code}");
            assert_eq!(
                a.kill_pod, !restart,
                "a finished pod gives its sandbox back"
            );
        }
    }

    #[test]
    fn a_dead_sandbox_is_replaced_unless_the_pod_is_done() {
        let p = pod("Always", &["a"], &[]);
        let r = rt(
            vec![sandbox(false, 0)],
            vec![ctr(&p, "a", S::Exited, 137, false)],
        );
        let a = compute_actions(&p, &r, &ProbeManager::default());
        assert!(a.create_sandbox && a.kill_pod);
        assert_eq!(a.attempt, 1);
        let p = pod("Never", &["a"], &[]);
        let r = rt(
            vec![sandbox(false, 0)],
            vec![ctr(&p, "a", S::Exited, 0, false)],
        );
        assert!(!compute_actions(&p, &r, &ProbeManager::default()).create_sandbox);
    }

    #[test]
    fn a_changed_image_replaces_the_running_container() {
        let p = pod("Always", &["a"], &[]);
        let mut c = ctr(&p, "a", S::Running, 0, false);
        c.hash = "stale".into();
        let a = compute_actions(
            &p,
            &rt(vec![sandbox(true, 0)], vec![c]),
            &ProbeManager::default(),
        );
        assert_eq!(a.kill.len(), 1);
        assert_eq!(
            a.kill[0].2,
            "Container a definition changed, will be restarted"
        );
        assert_eq!(a.start, vec![0]);
    }

    #[test]
    fn go_durations_format_like_go() {
        assert_eq!(go_duration(Duration::from_secs(10)), "10s");
        assert_eq!(go_duration(Duration::from_secs(80)), "1m20s");
        assert_eq!(go_duration(Duration::from_secs(300)), "5m0s");
    }
}
