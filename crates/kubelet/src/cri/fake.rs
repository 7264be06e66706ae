//! An in-memory container runtime: what simulated ("hollow") nodes run on, and what unit tests
//! drive the kubelet with. It keeps CRI's state machine (sandboxes ready/not ready, containers
//! created/running/exited), hands out pod IPs from the node's pod CIDR, and lets tests decide
//! what containers do: exit with a code, get OOM-killed, fail image pulls.
//!
//! Without instructions a container runs until stopped, except init containers, which succeed
//! at once. Pods may script their containers with annotations, which reach the runtime through
//! the sandbox config: `fake.ferrokube.io/exit-after: 2s` and `fake.ferrokube.io/exit-code: 1`
//! make every regular container exit after that long with that code.
//!
//! Commands run by exec: `false` and `sh -c "exit N"` fail with their code, `cat` echoes stdin,
//! anything else prints its arguments and succeeds. Port-forward connects to an echo server.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::api;
use super::{Error, Result, Runtime, StreamIo, StreamOutcome, labels, normalize_image};

pub const EXIT_AFTER_ANNOTATION: &str = "fake.ferrokube.io/exit-after";
pub const EXIT_CODE_ANNOTATION: &str = "fake.ferrokube.io/exit-code";

struct Sandbox {
    id: String,
    config: api::PodSandboxConfig,
    state: i32,
    created_at: i64,
    ip: Option<Ipv4Addr>,
}

struct Container {
    id: String,
    sandbox_id: String,
    config: api::ContainerConfig,
    image_ref: String,
    state: i32,
    created_at: i64,
    started_at: i64,
    finished_at: i64,
    exit_code: i32,
    reason: String,
    log_path: String,
}

#[derive(Default)]
struct State {
    sandboxes: HashMap<String, Sandbox>,
    containers: HashMap<String, Container>,
    images: BTreeMap<String, api::Image>,
    pull_failures: HashMap<String, String>,
    pod_cidr: Option<(u32, u8)>,
    used_ips: HashSet<u32>,
    calls: Vec<String>,
}

/// The fake runtime. Cheap to clone: clones share state.
#[derive(Clone, Default)]
pub struct FakeRuntime {
    state: Arc<Mutex<State>>,
    write_logs: bool,
}

impl std::fmt::Debug for FakeRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeRuntime").finish_non_exhaustive()
    }
}

fn now_nanos() -> i64 {
    jiff::Timestamp::now().as_nanosecond() as i64
}

fn new_id() -> String {
    let a: u128 = rand::random();
    let b: u128 = rand::random();
    format!("{a:032x}{b:032x}")
}

fn image_id(name: &str) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(name.as_bytes());
    let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn labels_match(have: &HashMap<String, String>, want: &HashMap<String, String>) -> bool {
    want.iter().all(|(k, v)| have.get(k) == Some(v))
}

impl FakeRuntime {
    pub fn new() -> Self {
        Self::default()
    }

    /// A fake that also writes a line to each container's log file when it starts, so log
    /// streaming can be exercised.
    pub fn with_logs() -> Self {
        FakeRuntime {
            write_logs: true,
            ..Self::default()
        }
    }

    /// Makes pulls of `image` fail with `message`.
    pub fn fail_pulls(&self, image: &str, message: &str) {
        self.state
            .lock()
            .pull_failures
            .insert(normalize_image(image), message.to_string());
    }

    /// Adds an image as if it had been imported.
    pub fn add_image(&self, image: &str) {
        let name = normalize_image(image);
        self.state.lock().images.insert(
            name.clone(),
            api::Image {
                id: image_id(&name),
                repo_tags: vec![name],
                size: 1 << 20,
                ..Default::default()
            },
        );
    }

    /// Ends a running container as if its process had exited.
    pub fn exit_container(&self, id: &str, code: i32, reason: &str) {
        exit(&self.state, id, code, reason);
    }

    /// Ids of containers whose name (metadata) is `name`, newest last.
    pub fn containers_named(&self, name: &str) -> Vec<String> {
        let st = self.state.lock();
        let mut v: Vec<&Container> = st
            .containers
            .values()
            .filter(|c| c.config.metadata.as_ref().map(|m| m.name.as_str()) == Some(name))
            .collect();
        v.sort_by_key(|c| c.created_at);
        v.iter().map(|c| c.id.clone()).collect()
    }

    /// The CRI calls made so far, as `Method id` strings (for tests that check call patterns).
    pub fn calls(&self) -> Vec<String> {
        self.state.lock().calls.clone()
    }

    pub fn sandbox_count(&self) -> usize {
        self.state.lock().sandboxes.len()
    }

    fn record(&self, call: String) {
        let mut st = self.state.lock();
        if st.calls.len() < 10_000 {
            st.calls.push(call);
        }
    }

    fn allocate_ip(st: &mut State) -> Option<Ipv4Addr> {
        let (base, prefix) = st.pod_cidr?;
        let size = 1u32 << (32 - prefix as u32);
        // .0 is the network, .1 the gateway, the last the broadcast address.
        for offset in 2..size.saturating_sub(1) {
            let ip = base + offset;
            if st.used_ips.insert(ip) {
                return Some(Ipv4Addr::from(ip));
            }
        }
        None
    }

    fn write_log_line(&self, sandbox_dir: &str, log_path: &str, line: &str) {
        if !self.write_logs || sandbox_dir.is_empty() || log_path.is_empty() {
            return;
        }
        let path = std::path::Path::new(sandbox_dir).join(log_path);
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let ts = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S.%fZ");
        let text = format!("{ts} stdout F {line}\n");
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
        {
            let _ = f.write_all(text.as_bytes());
        }
    }
}

fn exit(state: &Arc<Mutex<State>>, id: &str, code: i32, reason: &str) {
    let mut st = state.lock();
    if let Some(c) = st.containers.get_mut(id)
        && c.state == api::ContainerState::ContainerRunning as i32
    {
        c.state = api::ContainerState::ContainerExited as i32;
        c.finished_at = now_nanos();
        c.exit_code = code;
        c.reason = reason.to_string();
    }
}

fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if let Some(ms) = s.strip_suffix("ms") {
        return ms.parse().ok().map(Duration::from_millis);
    }
    if let Some(m) = s.strip_suffix('m') {
        return m
            .parse::<f64>()
            .ok()
            .map(|m| Duration::from_secs_f64(m * 60.0));
    }
    let secs = s.strip_suffix('s').unwrap_or(s);
    secs.parse::<f64>().ok().map(Duration::from_secs_f64)
}

/// The exit code of a command run by exec in a fake container.
fn exec_exit_code(cmd: &[String]) -> i32 {
    match cmd.first().map(String::as_str) {
        Some("false") => 1,
        Some("sh") if cmd.get(1).map(String::as_str) == Some("-c") => cmd
            .get(2)
            .and_then(|s| s.trim().strip_prefix("exit "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0),
        _ => 0,
    }
}

#[async_trait::async_trait]
impl Runtime for FakeRuntime {
    async fn version(&self) -> Result<api::VersionResponse> {
        Ok(api::VersionResponse {
            version: "0.1.0".into(),
            runtime_name: "fake".into(),
            runtime_version: "0.1.0".into(),
            runtime_api_version: "v1".into(),
        })
    }

    async fn status(&self) -> Result<api::RuntimeStatus> {
        Ok(api::RuntimeStatus {
            conditions: ["RuntimeReady", "NetworkReady"]
                .iter()
                .map(|t| api::RuntimeCondition {
                    r#type: t.to_string(),
                    status: true,
                    ..Default::default()
                })
                .collect(),
        })
    }

    async fn update_runtime_config(&self, pod_cidr: &str) -> Result<()> {
        let parsed = pod_cidr.split_once('/').and_then(|(ip, p)| {
            let ip: Ipv4Addr = ip.parse().ok()?;
            let p: u8 = p.parse().ok()?;
            (p <= 30).then_some((u32::from(ip), p))
        });
        self.state.lock().pod_cidr = parsed;
        Ok(())
    }

    async fn run_pod_sandbox(
        &self,
        config: api::PodSandboxConfig,
        _runtime_handler: &str,
    ) -> Result<String> {
        let id = new_id();
        self.record(format!("RunPodSandbox {id}"));
        let host_network = config
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref())
            .and_then(|s| s.namespace_options.as_ref())
            .is_some_and(|n| n.network == api::NamespaceMode::Node as i32);
        let mut st = self.state.lock();
        let ip = if host_network {
            None
        } else {
            Self::allocate_ip(&mut st)
        };
        st.sandboxes.insert(
            id.clone(),
            Sandbox {
                id: id.clone(),
                config,
                state: api::PodSandboxState::SandboxReady as i32,
                created_at: now_nanos(),
                ip,
            },
        );
        Ok(id)
    }

    async fn stop_pod_sandbox(&self, id: &str) -> Result<()> {
        self.record(format!("StopPodSandbox {id}"));
        let running: Vec<String> = {
            let mut st = self.state.lock();
            let ip = match st.sandboxes.get_mut(id) {
                Some(s) => {
                    s.state = api::PodSandboxState::SandboxNotready as i32;
                    s.ip.take()
                }
                None => None,
            };
            if let Some(ip) = ip {
                st.used_ips.remove(&u32::from(ip));
            }
            st.containers
                .values()
                .filter(|c| c.sandbox_id == id)
                .map(|c| c.id.clone())
                .collect()
        };
        for c in running {
            exit(&self.state, &c, 137, "Error");
        }
        Ok(())
    }

    async fn remove_pod_sandbox(&self, id: &str) -> Result<()> {
        self.stop_pod_sandbox(id).await?;
        self.record(format!("RemovePodSandbox {id}"));
        let mut st = self.state.lock();
        st.sandboxes.remove(id);
        st.containers.retain(|_, c| c.sandbox_id != id);
        Ok(())
    }

    async fn pod_sandbox_status(&self, id: &str) -> Result<api::PodSandboxStatus> {
        let st = self.state.lock();
        let s = st.sandboxes.get(id).ok_or_else(|| Error::NotFound {
            what: "sandbox",
            id: id.to_string(),
        })?;
        Ok(api::PodSandboxStatus {
            id: s.id.clone(),
            metadata: s.config.metadata.clone(),
            state: s.state,
            created_at: s.created_at,
            network: Some(api::PodSandboxNetworkStatus {
                ip: s.ip.map(|i| i.to_string()).unwrap_or_default(),
                additional_ips: Vec::new(),
            }),
            labels: s.config.labels.clone(),
            annotations: s.config.annotations.clone(),
            ..Default::default()
        })
    }

    async fn list_pod_sandbox(
        &self,
        filter: Option<api::PodSandboxFilter>,
    ) -> Result<Vec<api::PodSandbox>> {
        let st = self.state.lock();
        let f = filter.unwrap_or_default();
        Ok(st
            .sandboxes
            .values()
            .filter(|s| f.id.is_empty() || s.id == f.id)
            .filter(|s| f.state.as_ref().is_none_or(|v| v.state == s.state))
            .filter(|s| labels_match(&s.config.labels, &f.label_selector))
            .map(|s| api::PodSandbox {
                id: s.id.clone(),
                metadata: s.config.metadata.clone(),
                state: s.state,
                created_at: s.created_at,
                labels: s.config.labels.clone(),
                annotations: s.config.annotations.clone(),
                runtime_handler: String::new(),
            })
            .collect())
    }

    async fn create_container(
        &self,
        sandbox_id: &str,
        config: api::ContainerConfig,
        _sandbox_config: api::PodSandboxConfig,
    ) -> Result<String> {
        let id = new_id();
        self.record(format!("CreateContainer {id}"));
        let mut st = self.state.lock();
        match st.sandboxes.get(sandbox_id) {
            Some(s) if s.state == api::PodSandboxState::SandboxReady as i32 => {}
            Some(_) => {
                return Err(Error::Failed(format!(
                    "sandbox container {sandbox_id:?} is not running"
                )));
            }
            None => {
                return Err(Error::NotFound {
                    what: "sandbox",
                    id: sandbox_id.to_string(),
                });
            }
        }
        let image = config
            .image
            .as_ref()
            .map(|i| i.image.clone())
            .unwrap_or_default();
        let image_ref = st
            .images
            .get(&normalize_image(&image))
            .map(|i| i.id.clone())
            .or_else(|| {
                st.images
                    .values()
                    .find(|i| i.id == image)
                    .map(|i| i.id.clone())
            })
            .ok_or_else(|| {
                Error::Failed(format!(
                    "failed to get image {image:?}: image not found in the fake runtime"
                ))
            })?;
        let log_path = config.log_path.clone();
        st.containers.insert(
            id.clone(),
            Container {
                id: id.clone(),
                sandbox_id: sandbox_id.to_string(),
                config,
                image_ref,
                state: api::ContainerState::ContainerCreated as i32,
                created_at: now_nanos(),
                started_at: 0,
                finished_at: 0,
                exit_code: 0,
                reason: String::new(),
                log_path,
            },
        );
        Ok(id)
    }

    async fn start_container(&self, id: &str) -> Result<()> {
        self.record(format!("StartContainer {id}"));
        let (plan, log) = {
            let mut st = self.state.lock();
            let (sandbox_id, is_init, name, log_path) = {
                let c = st.containers.get_mut(id).ok_or_else(|| Error::NotFound {
                    what: "container",
                    id: id.to_string(),
                })?;
                if c.state != api::ContainerState::ContainerCreated as i32 {
                    return Err(Error::Failed(format!(
                        "container {id} is not in created state"
                    )));
                }
                c.state = api::ContainerState::ContainerRunning as i32;
                c.started_at = now_nanos();
                (
                    c.sandbox_id.clone(),
                    c.config.labels.contains_key(labels::INIT_CONTAINER),
                    c.config
                        .metadata
                        .as_ref()
                        .map(|m| m.name.clone())
                        .unwrap_or_default(),
                    c.log_path.clone(),
                )
            };
            let sandbox = st.sandboxes.get(&sandbox_id);
            let annotations = sandbox
                .map(|s| s.config.annotations.clone())
                .unwrap_or_default();
            let log_dir = sandbox
                .map(|s| s.config.log_directory.clone())
                .unwrap_or_default();
            let plan = if is_init {
                Some((Duration::from_millis(5), 0))
            } else {
                annotations
                    .get(EXIT_AFTER_ANNOTATION)
                    .and_then(|d| parse_duration(d))
                    .map(|d| {
                        let code = annotations
                            .get(EXIT_CODE_ANNOTATION)
                            .and_then(|c| c.parse().ok())
                            .unwrap_or(0);
                        (d, code)
                    })
            };
            (plan, (log_dir, log_path, name))
        };
        self.write_log_line(&log.0, &log.1, &format!("fake container {} started", log.2));
        if let Some((after, code)) = plan {
            let state = self.state.clone();
            let id = id.to_string();
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                let reason = if code == 0 { "Completed" } else { "Error" };
                exit(&state, &id, code, reason);
            });
        }
        Ok(())
    }

    async fn stop_container(&self, id: &str, _timeout: i64) -> Result<()> {
        self.record(format!("StopContainer {id}"));
        exit(&self.state, id, 0, "Completed");
        Ok(())
    }

    async fn remove_container(&self, id: &str) -> Result<()> {
        self.record(format!("RemoveContainer {id}"));
        self.state.lock().containers.remove(id);
        Ok(())
    }

    async fn list_containers(
        &self,
        filter: Option<api::ContainerFilter>,
    ) -> Result<Vec<api::Container>> {
        let st = self.state.lock();
        let f = filter.unwrap_or_default();
        Ok(st
            .containers
            .values()
            .filter(|c| f.id.is_empty() || c.id == f.id)
            .filter(|c| f.pod_sandbox_id.is_empty() || c.sandbox_id == f.pod_sandbox_id)
            .filter(|c| f.state.as_ref().is_none_or(|v| v.state == c.state))
            .filter(|c| labels_match(&c.config.labels, &f.label_selector))
            .map(|c| api::Container {
                id: c.id.clone(),
                pod_sandbox_id: c.sandbox_id.clone(),
                metadata: c.config.metadata.clone(),
                image: c.config.image.clone(),
                image_ref: c.image_ref.clone(),
                state: c.state,
                created_at: c.created_at,
                labels: c.config.labels.clone(),
                annotations: c.config.annotations.clone(),
                image_id: c.image_ref.clone(),
            })
            .collect())
    }

    async fn container_status(&self, id: &str) -> Result<api::ContainerStatus> {
        let st = self.state.lock();
        let c = st.containers.get(id).ok_or_else(|| Error::NotFound {
            what: "container",
            id: id.to_string(),
        })?;
        // Like containerd: the image's first name, whatever reference created the container.
        let image = st
            .images
            .values()
            .find(|i| i.id == c.image_ref)
            .and_then(|i| i.repo_tags.first().cloned())
            .unwrap_or_else(|| {
                c.config
                    .image
                    .as_ref()
                    .map(|i| normalize_image(&i.image))
                    .unwrap_or_default()
            });
        let log_dir = st
            .sandboxes
            .get(&c.sandbox_id)
            .map(|s| s.config.log_directory.clone())
            .unwrap_or_default();
        Ok(api::ContainerStatus {
            id: c.id.clone(),
            metadata: c.config.metadata.clone(),
            state: c.state,
            created_at: c.created_at,
            started_at: c.started_at,
            finished_at: c.finished_at,
            exit_code: c.exit_code,
            image: Some(api::ImageSpec {
                image,
                ..Default::default()
            }),
            image_ref: c.image_ref.clone(),
            reason: c.reason.clone(),
            labels: c.config.labels.clone(),
            annotations: c.config.annotations.clone(),
            mounts: c.config.mounts.clone(),
            log_path: if log_dir.is_empty() || c.log_path.is_empty() {
                String::new()
            } else {
                format!("{log_dir}/{}", c.log_path)
            },
            image_id: c.image_ref.clone(),
            ..Default::default()
        })
    }

    async fn exec_sync(
        &self,
        id: &str,
        cmd: Vec<String>,
        _timeout: Duration,
    ) -> Result<api::ExecSyncResponse> {
        let running = self
            .state
            .lock()
            .containers
            .get(id)
            .is_some_and(|c| c.state == api::ContainerState::ContainerRunning as i32);
        if !running {
            return Err(Error::Failed(format!("container {id} is not running")));
        }
        let code = exec_exit_code(&cmd);
        let stdout = if code == 0 && cmd.first().map(String::as_str) != Some("true") {
            format!("{}\n", cmd.join(" ")).into_bytes()
        } else {
            Vec::new()
        };
        Ok(api::ExecSyncResponse {
            stdout,
            stderr: Vec::new(),
            exit_code: code,
        })
    }

    async fn exec(&self, req: api::ExecRequest, mut io: StreamIo) -> Result<StreamOutcome> {
        let running = self
            .state
            .lock()
            .containers
            .get(&req.container_id)
            .is_some_and(|c| c.state == api::ContainerState::ContainerRunning as i32);
        if !running {
            return Err(Error::Failed(format!(
                "container {} is not running",
                req.container_id
            )));
        }
        if req.cmd.first().map(String::as_str) == Some("cat") {
            echo(&mut io).await;
            return Ok(StreamOutcome::Exited(0));
        }
        let code = exec_exit_code(&req.cmd);
        if code == 0
            && let Some(out) = &io.stdout
        {
            let _ = out
                .send(Bytes::from(format!("{}\n", req.cmd.join(" "))))
                .await;
        }
        Ok(StreamOutcome::Exited(code))
    }

    async fn attach(&self, _req: api::AttachRequest, mut io: StreamIo) -> Result<StreamOutcome> {
        echo(&mut io).await;
        Ok(StreamOutcome::Exited(0))
    }

    async fn port_forward(
        &self,
        sandbox_id: &str,
        _port: u16,
        mut conn: DuplexStream,
    ) -> Result<()> {
        if !self.state.lock().sandboxes.contains_key(sandbox_id) {
            return Err(Error::NotFound {
                what: "sandbox",
                id: sandbox_id.to_string(),
            });
        }
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = conn
                .read(&mut buf)
                .await
                .map_err(|e| Error::Stream(e.to_string()))?;
            if n == 0 {
                return Ok(());
            }
            conn.write_all(&buf[..n])
                .await
                .map_err(|e| Error::Stream(e.to_string()))?;
        }
    }

    async fn list_container_stats(&self) -> Result<Vec<api::ContainerStats>> {
        let st = self.state.lock();
        let now = now_nanos();
        Ok(st
            .containers
            .values()
            .filter(|c| c.state == api::ContainerState::ContainerRunning as i32)
            .map(|c| fake_stats(c, now))
            .collect())
    }

    async fn list_pod_sandbox_stats(&self) -> Result<Vec<api::PodSandboxStats>> {
        let st = self.state.lock();
        let now = now_nanos();
        Ok(st
            .sandboxes
            .values()
            .filter(|s| s.state == api::PodSandboxState::SandboxReady as i32)
            .map(|s| {
                let containers: Vec<api::ContainerStats> = st
                    .containers
                    .values()
                    .filter(|c| {
                        c.sandbox_id == s.id
                            && c.state == api::ContainerState::ContainerRunning as i32
                    })
                    .map(|c| fake_stats(c, now))
                    .collect();
                let cpu: u64 = containers
                    .iter()
                    .filter_map(|c| c.cpu.as_ref()?.usage_core_nano_seconds.as_ref())
                    .map(|v| v.value)
                    .sum();
                let mem: u64 = containers
                    .iter()
                    .filter_map(|c| c.memory.as_ref()?.working_set_bytes.as_ref())
                    .map(|v| v.value)
                    .sum();
                api::PodSandboxStats {
                    attributes: Some(api::PodSandboxAttributes {
                        id: s.id.clone(),
                        metadata: s.config.metadata.clone(),
                        labels: s.config.labels.clone(),
                        annotations: s.config.annotations.clone(),
                    }),
                    linux: Some(api::LinuxPodSandboxStats {
                        cpu: Some(api::CpuUsage {
                            timestamp: now,
                            usage_core_nano_seconds: Some(api::UInt64Value { value: cpu }),
                            usage_nano_cores: None,
                        }),
                        memory: Some(api::MemoryUsage {
                            timestamp: now,
                            working_set_bytes: Some(api::UInt64Value { value: mem }),
                            usage_bytes: Some(api::UInt64Value { value: mem }),
                            ..Default::default()
                        }),
                        containers,
                        ..Default::default()
                    }),
                    windows: None,
                }
            })
            .collect())
    }

    async fn list_images(&self) -> Result<Vec<api::Image>> {
        Ok(self.state.lock().images.values().cloned().collect())
    }

    async fn image_status(&self, image: &str) -> Result<Option<api::Image>> {
        let st = self.state.lock();
        Ok(st
            .images
            .get(&normalize_image(image))
            .or_else(|| st.images.values().find(|i| i.id == image))
            .cloned())
    }

    async fn pull_image(
        &self,
        image: &str,
        _auth: Option<api::AuthConfig>,
        _sandbox_config: Option<api::PodSandboxConfig>,
    ) -> Result<String> {
        let name = normalize_image(image);
        self.record(format!("PullImage {name}"));
        if let Some(msg) = self.state.lock().pull_failures.get(&name) {
            return Err(Error::Rpc {
                op: "PullImage",
                code: tonic::Code::NotFound,
                message: msg.clone(),
            });
        }
        self.add_image(&name);
        Ok(image_id(&name))
    }

    async fn remove_image(&self, image: &str) -> Result<()> {
        let name = normalize_image(image);
        let mut st = self.state.lock();
        st.images.remove(&name);
        st.images.retain(|_, i| i.id != image);
        Ok(())
    }

    async fn image_fs_info(&self) -> Result<Vec<api::FilesystemUsage>> {
        let used = self.state.lock().images.values().map(|i| i.size).sum();
        Ok(vec![api::FilesystemUsage {
            timestamp: now_nanos(),
            fs_id: Some(api::FilesystemIdentifier {
                mountpoint: "/fake/images".into(),
            }),
            used_bytes: Some(api::UInt64Value { value: used }),
            inodes_used: Some(api::UInt64Value { value: 0 }),
        }])
    }

    async fn import_images(&self, archive: &std::path::Path) -> Result<Vec<String>> {
        let names = crate::images::archive::image_names(archive)
            .map_err(|e| Error::Failed(e.to_string()))?;
        for n in &names {
            self.add_image(n);
        }
        Ok(names)
    }
}

fn fake_stats(c: &Container, now: i64) -> api::ContainerStats {
    let running_for = (now - c.started_at).max(0) as u64;
    api::ContainerStats {
        attributes: Some(api::ContainerAttributes {
            id: c.id.clone(),
            metadata: c.config.metadata.clone(),
            labels: c.config.labels.clone(),
            annotations: c.config.annotations.clone(),
        }),
        // A thousandth of a core and a mebibyte: small, steady, and visibly non-zero.
        cpu: Some(api::CpuUsage {
            timestamp: now,
            usage_core_nano_seconds: Some(api::UInt64Value {
                value: running_for / 1000,
            }),
            usage_nano_cores: Some(api::UInt64Value { value: 1_000_000 }),
        }),
        memory: Some(api::MemoryUsage {
            timestamp: now,
            working_set_bytes: Some(api::UInt64Value { value: 1 << 20 }),
            usage_bytes: Some(api::UInt64Value { value: 1 << 20 }),
            rss_bytes: Some(api::UInt64Value { value: 1 << 20 }),
            ..Default::default()
        }),
        writable_layer: None,
        swap: None,
    }
}

/// Copies stdin to stdout until stdin closes.
async fn echo(io: &mut StreamIo) {
    let Some(mut input) = io.stdin.take() else {
        return;
    };
    while let Some(b) = input.recv().await {
        if let Some(out) = &io.stdout
            && out.send(b).await.is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox_config(name: &str) -> api::PodSandboxConfig {
        api::PodSandboxConfig {
            metadata: Some(api::PodSandboxMetadata {
                name: name.into(),
                uid: format!("uid-{name}"),
                namespace: "default".into(),
                attempt: 0,
            }),
            labels: [(labels::POD_UID.to_string(), format!("uid-{name}"))].into(),
            ..Default::default()
        }
    }

    fn container_config(name: &str, image: &str) -> api::ContainerConfig {
        api::ContainerConfig {
            metadata: Some(api::ContainerMetadata {
                name: name.into(),
                attempt: 0,
            }),
            image: Some(api::ImageSpec {
                image: image.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn sandboxes_get_distinct_ips_from_the_pod_cidr_and_give_them_back() {
        let rt = FakeRuntime::new();
        rt.update_runtime_config("10.244.3.0/24").await.unwrap();
        let a = rt.run_pod_sandbox(sandbox_config("a"), "").await.unwrap();
        let b = rt.run_pod_sandbox(sandbox_config("b"), "").await.unwrap();
        let ip = |id: String| {
            let rt = rt.clone();
            async move {
                rt.pod_sandbox_status(&id)
                    .await
                    .unwrap()
                    .network
                    .unwrap()
                    .ip
            }
        };
        assert_eq!(ip(a.clone()).await, "10.244.3.2");
        assert_eq!(ip(b).await, "10.244.3.3");
        rt.remove_pod_sandbox(&a).await.unwrap();
        let c = rt.run_pod_sandbox(sandbox_config("c"), "").await.unwrap();
        assert_eq!(ip(c).await, "10.244.3.2", "a's address is free again");
    }

    #[tokio::test]
    async fn containers_need_their_image_and_follow_the_cri_state_machine() {
        let rt = FakeRuntime::new();
        let sb = rt.run_pod_sandbox(sandbox_config("p"), "").await.unwrap();
        let err = rt
            .create_container(&sb, container_config("c", "busybox"), sandbox_config("p"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("image not found"), "{err}");
        rt.pull_image("busybox", None, None).await.unwrap();
        let id = rt
            .create_container(&sb, container_config("c", "busybox"), sandbox_config("p"))
            .await
            .unwrap();
        rt.start_container(&id).await.unwrap();
        let st = rt.container_status(&id).await.unwrap();
        assert_eq!(st.state, api::ContainerState::ContainerRunning as i32);
        assert_eq!(st.image.unwrap().image, "docker.io/library/busybox:latest");
        rt.exit_container(&id, 137, "OOMKilled");
        let st = rt.container_status(&id).await.unwrap();
        assert_eq!(
            (st.state, st.exit_code, st.reason.as_str()),
            (
                api::ContainerState::ContainerExited as i32,
                137,
                "OOMKilled"
            )
        );
    }

    #[tokio::test(start_paused = true)]
    async fn annotated_pods_have_containers_that_exit_on_schedule() {
        let rt = FakeRuntime::new();
        rt.add_image("busybox");
        let mut cfg = sandbox_config("p");
        cfg.annotations
            .insert(EXIT_AFTER_ANNOTATION.into(), "2s".into());
        cfg.annotations
            .insert(EXIT_CODE_ANNOTATION.into(), "3".into());
        let sb = rt.run_pod_sandbox(cfg.clone(), "").await.unwrap();
        let id = rt
            .create_container(&sb, container_config("c", "busybox"), cfg)
            .await
            .unwrap();
        rt.start_container(&id).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1900)).await;
        assert_eq!(rt.container_status(&id).await.unwrap().exit_code, 0);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let st = rt.container_status(&id).await.unwrap();
        assert_eq!((st.exit_code, st.reason.as_str()), (3, "Error"));
    }

    #[tokio::test]
    async fn failed_pulls_report_the_runtime_message() {
        let rt = FakeRuntime::new();
        rt.fail_pulls("nope:1", "failed to resolve reference");
        let err = rt.pull_image("nope:1", None, None).await.unwrap_err();
        assert_eq!(err.message(), "failed to resolve reference");
        assert!(rt.image_status("nope:1").await.unwrap().is_none());
    }

    #[test]
    fn exec_exit_codes_follow_the_command() {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(exec_exit_code(&s(&["false"])), 1);
        assert_eq!(exec_exit_code(&s(&["sh", "-c", "exit 3"])), 3);
        assert_eq!(exec_exit_code(&s(&["cat", "/tmp/healthy"])), 0);
    }
}
