//! The container runtime as the kubelet sees it: CRI v1's RuntimeService and ImageService.
//!
//! [`Runtime`] carries CRI's own message types (`k8s_cri::v1`), so the gRPC client
//! ([`remote::RemoteRuntime`], containerd over its unix socket) and the in-memory
//! [`fake::FakeRuntime`] (tests and simulated nodes) are interchangeable. Streaming calls (exec,
//! attach, port-forward) are expressed as sessions over channels: the remote runtime carries them
//! over the runtime's own streaming server, the fake answers them itself.

use std::time::Duration;

use bytes::Bytes;
pub use k8s_cri::v1 as api;
use tokio::io::DuplexStream;
use tokio::sync::mpsc;

pub mod containerd;
pub mod fake;
pub mod remote;

/// Labels and annotations the kubelet puts on sandboxes and containers, as upstream names them:
/// they are how a restarted kubelet finds its pods again.
pub mod labels {
    pub const POD_NAME: &str = "io.kubernetes.pod.name";
    pub const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
    pub const POD_UID: &str = "io.kubernetes.pod.uid";
    pub const CONTAINER_NAME: &str = "io.kubernetes.container.name";
    pub const CONTAINER_TYPE: &str = "io.kubernetes.container.type";
    pub const MANAGED: &str = "io.kubernetes.container.managed";
    pub const CONTAINER_HASH: &str = "io.kubernetes.container.hash";
    pub const RESTART_COUNT: &str = "io.kubernetes.container.restartCount";
    pub const TERMINATION_MESSAGE_PATH: &str = "io.kubernetes.container.terminationMessagePath";
    pub const TERMINATION_MESSAGE_POLICY: &str = "io.kubernetes.container.terminationMessagePolicy";
    pub const POD_TERMINATION_GRACE: &str = "io.kubernetes.pod.terminationGracePeriod";
    pub const CONTAINER_PORTS: &str = "io.kubernetes.container.ports";
    /// ferrokube's own: the host path of the termination-log file mounted into the container.
    pub const TERMINATION_LOG_HOST_PATH: &str = "io.ferrokube.container.terminationLog";
    /// ferrokube's own: the container is an init container.
    pub const INIT_CONTAINER: &str = "io.ferrokube.container.init";
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{op}: rpc error: code = {code:?} desc = {message}")]
    Rpc {
        op: &'static str,
        code: tonic::Code,
        message: String,
    },
    #[error("connecting to the container runtime at {endpoint}: {message}")]
    Connect { endpoint: String, message: String },
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    #[error("{0}")]
    Failed(String),
    #[error("streaming from the container runtime: {0}")]
    Stream(String),
}

impl Error {
    /// Whether the object the call was about does not exist (any more).
    pub fn is_not_found(&self) -> bool {
        match self {
            Error::NotFound { .. } => true,
            Error::Rpc { code, .. } => *code == tonic::Code::NotFound,
            _ => false,
        }
    }

    /// The runtime's own words, without the gRPC framing: what users see in messages.
    pub fn message(&self) -> String {
        match self {
            Error::Rpc { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Size of a terminal, as the resize stream sends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct TerminalSize {
    #[serde(rename = "Width")]
    pub width: u16,
    #[serde(rename = "Height")]
    pub height: u16,
}

/// The streams of one exec or attach session, seen from the runtime side: bytes arriving for the
/// container's stdin, and senders for what it writes.
#[derive(Debug, Default)]
pub struct StreamIo {
    pub stdin: Option<mpsc::Receiver<Bytes>>,
    pub stdout: Option<mpsc::Sender<Bytes>>,
    pub stderr: Option<mpsc::Sender<Bytes>>,
    pub resize: Option<mpsc::Receiver<TerminalSize>>,
}

/// How an exec or attach session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamOutcome {
    /// The command exited; 0 is success.
    Exited(i32),
    /// The runtime reported an error instead of an exit code.
    Failed(String),
}

/// Everything the kubelet asks of a container runtime. Every method is one CRI call and has its
/// contract: idempotent where CRI says so (stop and remove of something already gone succeed).
#[async_trait::async_trait]
pub trait Runtime: Send + Sync {
    /// Runtime name and version (`containerd`, `1.6.20`).
    async fn version(&self) -> Result<api::VersionResponse>;
    /// Whether the runtime and its network are ready.
    async fn status(&self) -> Result<api::RuntimeStatus>;
    /// Tells the runtime the node's pod CIDR (CRI UpdateRuntimeConfig).
    async fn update_runtime_config(&self, pod_cidr: &str) -> Result<()>;

    /// Creates and starts a sandbox; returns its id.
    async fn run_pod_sandbox(
        &self,
        config: api::PodSandboxConfig,
        runtime_handler: &str,
    ) -> Result<String>;
    /// Stops a sandbox and its containers, tearing down its network. Idempotent.
    async fn stop_pod_sandbox(&self, id: &str) -> Result<()>;
    /// Removes a stopped sandbox and everything in it. Idempotent.
    async fn remove_pod_sandbox(&self, id: &str) -> Result<()>;
    async fn pod_sandbox_status(&self, id: &str) -> Result<api::PodSandboxStatus>;
    async fn list_pod_sandbox(
        &self,
        filter: Option<api::PodSandboxFilter>,
    ) -> Result<Vec<api::PodSandbox>>;

    /// Creates a container in a sandbox; returns its id.
    async fn create_container(
        &self,
        sandbox_id: &str,
        config: api::ContainerConfig,
        sandbox_config: api::PodSandboxConfig,
    ) -> Result<String>;
    async fn start_container(&self, id: &str) -> Result<()>;
    /// Sends the stop signal, waits up to `timeout` seconds, then kills. Idempotent.
    async fn stop_container(&self, id: &str, timeout: i64) -> Result<()>;
    /// Removes a container. Idempotent.
    async fn remove_container(&self, id: &str) -> Result<()>;
    async fn list_containers(
        &self,
        filter: Option<api::ContainerFilter>,
    ) -> Result<Vec<api::Container>>;
    async fn container_status(&self, id: &str) -> Result<api::ContainerStatus>;
    /// Runs a command in a container and waits for it (probes, hooks).
    async fn exec_sync(
        &self,
        id: &str,
        cmd: Vec<String>,
        timeout: Duration,
    ) -> Result<api::ExecSyncResponse>;
    /// Runs an interactive command in a container until it exits.
    async fn exec(&self, req: api::ExecRequest, io: StreamIo) -> Result<StreamOutcome>;
    /// Attaches to a container's main process until the session ends.
    async fn attach(&self, req: api::AttachRequest, io: StreamIo) -> Result<StreamOutcome>;
    /// Connects `conn` to `port` inside the sandbox's network namespace until either side closes.
    async fn port_forward(&self, sandbox_id: &str, port: u16, conn: DuplexStream) -> Result<()>;
    /// Resource usage of every container.
    async fn list_container_stats(&self) -> Result<Vec<api::ContainerStats>>;
    /// Resource usage of every sandbox (pod-level CPU and memory).
    async fn list_pod_sandbox_stats(&self) -> Result<Vec<api::PodSandboxStats>>;

    async fn list_images(&self) -> Result<Vec<api::Image>>;
    /// The image if present.
    async fn image_status(&self, image: &str) -> Result<Option<api::Image>>;
    /// Pulls an image; returns its reference (id).
    async fn pull_image(
        &self,
        image: &str,
        auth: Option<api::AuthConfig>,
        sandbox_config: Option<api::PodSandboxConfig>,
    ) -> Result<String>;
    async fn remove_image(&self, image: &str) -> Result<()>;
    /// Usage of the filesystem that holds images.
    async fn image_fs_info(&self) -> Result<Vec<api::FilesystemUsage>>;
    /// Makes images from an archive (OCI layout, OCI archive or docker-archive) available;
    /// returns the names imported. Not part of CRI: containerd does it through its own API.
    async fn import_images(&self, archive: &std::path::Path) -> Result<Vec<String>>;
}

/// Normalizes an image reference the way containerd does: `busybox` ->
/// `docker.io/library/busybox:latest`, `me/app:1` -> `docker.io/me/app:1`.
pub fn normalize_image(image: &str) -> String {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let first = name.split('/').next().unwrap_or("");
    let has_domain =
        name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let mut full = if has_domain {
        name.to_string()
    } else if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    };
    let last = full.rsplit('/').next().unwrap_or("");
    if digest.is_none() && !last.contains(':') {
        full.push_str(":latest");
    }
    match digest {
        Some(d) => format!("{full}@{d}"),
        None => full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_are_normalized_as_containerd_does() {
        for (given, want) in [
            ("busybox", "docker.io/library/busybox:latest"),
            ("busybox:1.35", "docker.io/library/busybox:1.35"),
            ("me/app:1", "docker.io/me/app:1"),
            ("registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10"),
            ("localhost:5000/x", "localhost:5000/x:latest"),
            ("127.0.0.1:1/nope:1", "127.0.0.1:1/nope:1"),
            ("busybox@sha256:abc", "docker.io/library/busybox@sha256:abc"),
        ] {
            assert_eq!(normalize_image(given), want, "{given}");
        }
    }
}
