//! What the runtime holds for one pod: its sandboxes and containers, newest first, read back
//! from CRI and the labels and annotations the kubelet wrote on them. This is the observed state
//! every pod sync starts from, and why a restarted kubelet adopts running pods.

use std::collections::HashMap;

use crate::cri::{self, Runtime, api, labels};

#[derive(Clone, Debug, PartialEq)]
pub struct SandboxInfo {
    pub id: String,
    pub ready: bool,
    pub attempt: u32,
    pub created_at: i64,
    pub ips: Vec<String>,
    pub host_network: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContainerState {
    Created,
    Running,
    Exited,
    Unknown,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ContainerInfo {
    pub id: String,
    pub name: String,
    pub sandbox_id: String,
    pub state: ContainerState,
    pub created_at: i64,
    pub started_at: i64,
    pub finished_at: i64,
    pub exit_code: i32,
    pub reason: String,
    pub message: String,
    pub image: String,
    pub image_ref: String,
    pub hash: String,
    pub restart_count: i32,
    pub is_init: bool,
    pub log_path: String,
}

impl ContainerInfo {
    pub fn running(&self) -> bool {
        self.state == ContainerState::Running
    }
    pub fn exited(&self) -> bool {
        self.state == ContainerState::Exited
    }
}

/// A pod as the runtime has it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuntimePod {
    pub uid: String,
    pub name: String,
    pub namespace: String,
    /// Newest first.
    pub sandboxes: Vec<SandboxInfo>,
    /// Newest first.
    pub containers: Vec<ContainerInfo>,
}

impl RuntimePod {
    pub fn latest_sandbox(&self) -> Option<&SandboxInfo> {
        self.sandboxes.first()
    }

    /// The newest container instance called `name`.
    pub fn latest(&self, name: &str, init: bool) -> Option<&ContainerInfo> {
        self.containers
            .iter()
            .find(|c| c.name == name && c.is_init == init)
    }

    /// The instance before the newest: what `lastState` and `logs --previous` show.
    pub fn previous(&self, name: &str, init: bool) -> Option<&ContainerInfo> {
        self.containers
            .iter()
            .filter(|c| c.name == name && c.is_init == init)
            .nth(1)
    }

    pub fn running(&self) -> impl Iterator<Item = &ContainerInfo> {
        self.containers.iter().filter(|c| c.running())
    }

    pub fn is_empty(&self) -> bool {
        self.sandboxes.is_empty() && self.containers.is_empty()
    }
}

fn state_of(s: i32) -> ContainerState {
    match api::ContainerState::try_from(s) {
        Ok(api::ContainerState::ContainerCreated) => ContainerState::Created,
        Ok(api::ContainerState::ContainerRunning) => ContainerState::Running,
        Ok(api::ContainerState::ContainerExited) => ContainerState::Exited,
        _ => ContainerState::Unknown,
    }
}

fn pod_filter(uid: &str) -> HashMap<String, String> {
    HashMap::from([(labels::POD_UID.to_string(), uid.to_string())])
}

/// Reads one pod from the runtime.
pub async fn get(runtime: &dyn Runtime, uid: &str) -> cri::Result<RuntimePod> {
    let sandboxes = runtime
        .list_pod_sandbox(Some(api::PodSandboxFilter {
            label_selector: pod_filter(uid),
            ..Default::default()
        }))
        .await?;
    let containers = runtime
        .list_containers(Some(api::ContainerFilter {
            label_selector: pod_filter(uid),
            ..Default::default()
        }))
        .await?;
    let mut pod = RuntimePod {
        uid: uid.to_string(),
        ..Default::default()
    };
    for s in sandboxes {
        if let Some(m) = &s.metadata {
            pod.name = m.name.clone();
            pod.namespace = m.namespace.clone();
        }
        let ready = s.state == api::PodSandboxState::SandboxReady as i32;
        let (ips, host_network) = if ready {
            match runtime.pod_sandbox_status(&s.id).await {
                Ok(st) => {
                    let host = st
                        .linux
                        .as_ref()
                        .and_then(|l| l.namespaces.as_ref())
                        .and_then(|n| n.options.as_ref())
                        .is_some_and(|o| o.network == api::NamespaceMode::Node as i32);
                    let mut ips = Vec::new();
                    if let Some(n) = st.network {
                        if !n.ip.is_empty() {
                            ips.push(n.ip);
                        }
                        ips.extend(n.additional_ips.into_iter().map(|i| i.ip));
                    }
                    (ips, host)
                }
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e),
            }
        } else {
            (Vec::new(), false)
        };
        pod.sandboxes.push(SandboxInfo {
            attempt: s.metadata.as_ref().map(|m| m.attempt).unwrap_or(0),
            id: s.id,
            ready,
            created_at: s.created_at,
            ips,
            host_network,
        });
    }
    pod.sandboxes
        .sort_by_key(|s| std::cmp::Reverse(s.created_at));
    for c in containers {
        let st = match runtime.container_status(&c.id).await {
            Ok(st) => st,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e),
        };
        let name = c
            .labels
            .get(labels::CONTAINER_NAME)
            .cloned()
            .or_else(|| c.metadata.as_ref().map(|m| m.name.clone()))
            .unwrap_or_default();
        let restart_count = c
            .annotations
            .get(labels::RESTART_COUNT)
            .and_then(|r| r.parse().ok())
            .unwrap_or(0);
        let mut message = st.message.clone();
        // The termination message written by the application wins over the runtime's.
        if st.state == api::ContainerState::ContainerExited as i32
            && let Some(path) = c.annotations.get(labels::TERMINATION_LOG_HOST_PATH)
            && let Ok(text) = std::fs::read_to_string(path)
            && !text.is_empty()
        {
            message = text.chars().take(4096).collect();
        }
        let fallback_to_logs = c
            .annotations
            .get(labels::TERMINATION_MESSAGE_POLICY)
            .is_some_and(|p| p == "FallbackToLogsOnError");
        if message.is_empty()
            && fallback_to_logs
            && st.state == api::ContainerState::ContainerExited as i32
            && st.exit_code != 0
            && !st.log_path.is_empty()
        {
            message = crate::logs::tail_text(std::path::Path::new(&st.log_path), 80, 2048);
        }
        pod.containers.push(ContainerInfo {
            id: c.id.clone(),
            name,
            sandbox_id: c.pod_sandbox_id.clone(),
            state: state_of(st.state),
            created_at: st.created_at,
            started_at: st.started_at,
            finished_at: st.finished_at,
            exit_code: st.exit_code,
            reason: st.reason.clone(),
            message,
            image: st.image.map(|i| i.image).unwrap_or_default(),
            image_ref: st.image_ref.clone(),
            hash: c
                .annotations
                .get(labels::CONTAINER_HASH)
                .cloned()
                .unwrap_or_default(),
            restart_count,
            is_init: c.labels.contains_key(labels::INIT_CONTAINER),
            log_path: st.log_path.clone(),
        });
    }
    pod.containers
        .sort_by_key(|c| std::cmp::Reverse(c.created_at));
    Ok(pod)
}

/// Every pod uid the runtime holds something for (sandboxes or containers the kubelet made).
pub async fn all_pod_uids(runtime: &dyn Runtime) -> cri::Result<Vec<String>> {
    let mut uids: Vec<String> = runtime
        .list_pod_sandbox(None)
        .await?
        .into_iter()
        .filter_map(|s| s.labels.get(labels::POD_UID).cloned())
        .collect();
    uids.extend(
        runtime
            .list_containers(None)
            .await?
            .into_iter()
            .filter_map(|c| c.labels.get(labels::POD_UID).cloned()),
    );
    uids.sort();
    uids.dedup();
    Ok(uids)
}
