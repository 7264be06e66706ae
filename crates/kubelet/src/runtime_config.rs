//! Translating a pod into CRI: the sandbox config (metadata, hostname, DNS, port mappings,
//! namespaces, cgroup parent, labels the kubelet finds it by) and each container's config
//! (image, command, environment, mounts, log path, resources as cgroup limits, security
//! context), as upstream's kuberuntime manager builds them.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, Pod};
use sha2::Digest;

use crate::cri::{api, labels};
use crate::qos::{self, QosClass};
use crate::volumes::MountedVolume;

/// Paths upstream masks and makes read-only in unprivileged containers.
const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];
const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// `name_namespace(uid)`, upstream's `format.Pod`.
pub fn pod_desc(pod: &Pod) -> String {
    format!(
        "{}_{}({})",
        pod.metadata.name.as_deref().unwrap_or(""),
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.uid.as_deref().unwrap_or("")
    )
}

/// The directory of a pod's container logs (upstream `/var/log/pods/<ns>_<name>_<uid>`).
pub fn pod_log_dir(logs_root: &Path, pod: &Pod) -> PathBuf {
    logs_root.join(format!(
        "{}_{}_{}",
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.name.as_deref().unwrap_or(""),
        pod.metadata.uid.as_deref().unwrap_or("")
    ))
}

/// A hash of everything in a container's spec whose change means the container must be
/// replaced (resources are left out: they change in place).
pub fn container_hash(c: &Container) -> String {
    let mut v = serde_json::to_value(c).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.remove("resources");
        o.remove("resizePolicy");
    }
    let d = sha2::Sha256::digest(v.to_string().as_bytes());
    d[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn host_network(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false)
}

fn namespace_options(pod: &Pod) -> api::NamespaceOption {
    let spec = pod.spec.as_ref();
    let node = |b: Option<bool>| {
        if b.unwrap_or(false) {
            api::NamespaceMode::Node as i32
        } else {
            api::NamespaceMode::Pod as i32
        }
    };
    let pid = if spec.and_then(|s| s.host_pid).unwrap_or(false) {
        api::NamespaceMode::Node as i32
    } else if spec
        .and_then(|s| s.share_process_namespace)
        .unwrap_or(false)
    {
        api::NamespaceMode::Pod as i32
    } else {
        api::NamespaceMode::Container as i32
    };
    api::NamespaceOption {
        network: node(spec.and_then(|s| s.host_network)),
        pid,
        ipc: node(spec.and_then(|s| s.host_ipc)),
        ..Default::default()
    }
}

/// The labels that tie runtime objects to a pod.
pub fn pod_labels(pod: &Pod) -> HashMap<String, String> {
    let mut l: HashMap<String, String> = pod
        .metadata
        .labels
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    l.insert(
        labels::POD_NAME.into(),
        pod.metadata.name.clone().unwrap_or_default(),
    );
    l.insert(
        labels::POD_NAMESPACE.into(),
        pod.metadata.namespace.clone().unwrap_or_default(),
    );
    l.insert(
        labels::POD_UID.into(),
        pod.metadata.uid.clone().unwrap_or_default(),
    );
    l
}

/// The sandbox config of a pod.
pub fn sandbox_config(
    pod: &Pod,
    attempt: u32,
    log_dir: &Path,
    dns: api::DnsConfig,
    cgroup_parent: String,
) -> api::PodSandboxConfig {
    let spec = pod.spec.clone().unwrap_or_default();
    let mut port_mappings = Vec::new();
    for c in &spec.containers {
        for p in c.ports.iter().flatten() {
            let Some(host_port) = p.host_port.filter(|h| *h > 0) else {
                continue;
            };
            let protocol = match p.protocol.as_deref().unwrap_or("TCP") {
                "UDP" => api::Protocol::Udp,
                "SCTP" => api::Protocol::Sctp,
                _ => api::Protocol::Tcp,
            } as i32;
            port_mappings.push(api::PortMapping {
                protocol,
                container_port: p.container_port,
                host_port,
                host_ip: p.host_ip.clone().unwrap_or_default(),
            });
        }
    }
    let psc = spec.security_context.clone().unwrap_or_default();
    let privileged = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .any(|c| {
            c.security_context
                .as_ref()
                .and_then(|s| s.privileged)
                .unwrap_or(false)
        });
    let sysctls: HashMap<String, String> = psc
        .sysctls
        .iter()
        .flatten()
        .map(|s| (s.name.clone(), s.value.clone()))
        .collect();
    api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata {
            name: pod.metadata.name.clone().unwrap_or_default(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            attempt,
        }),
        hostname: if host_network(pod) {
            String::new()
        } else {
            crate::dns::pod_hostname(pod)
        },
        log_directory: log_dir.display().to_string(),
        dns_config: Some(dns),
        port_mappings,
        labels: pod_labels(pod),
        annotations: pod
            .metadata
            .annotations
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        linux: Some(api::LinuxPodSandboxConfig {
            cgroup_parent,
            security_context: Some(api::LinuxSandboxSecurityContext {
                namespace_options: Some(namespace_options(pod)),
                run_as_user: psc.run_as_user.map(|v| api::Int64Value { value: v }),
                run_as_group: psc.run_as_group.map(|v| api::Int64Value { value: v }),
                supplemental_groups: psc.supplemental_groups.clone().unwrap_or_default(),
                privileged,
                ..Default::default()
            }),
            sysctls,
            ..Default::default()
        }),
        windows: None,
    }
}

/// Files the kubelet mounts into every container besides volumes.
#[derive(Clone, Debug, Default)]
pub struct PodFiles {
    pub etc_hosts: Option<PathBuf>,
    pub termination_log: Option<PathBuf>,
}

/// What a container config is made from.
pub struct ContainerInputs<'a> {
    pub pod: &'a Pod,
    pub container: &'a Container,
    pub is_init: bool,
    pub restart_count: i32,
    pub image_ref: &'a str,
    pub env: Vec<(String, String)>,
    pub volumes: &'a HashMap<String, MountedVolume>,
    pub files: &'a PodFiles,
    pub qos: QosClass,
    pub memory_capacity: i64,
    pub image_user: Option<i64>,
}

/// The container config; the error is a `CreateContainerConfigError` message.
pub fn container_config(inp: &ContainerInputs<'_>) -> Result<api::ContainerConfig, String> {
    let c = inp.container;
    let pod = inp.pod;
    let spec = pod.spec.clone().unwrap_or_default();
    let (command, args) = crate::env::expand_command(c, &inp.env);

    let mut mounts = Vec::new();
    for vm in c.volume_mounts.iter().flatten() {
        let v = inp.volumes.get(&vm.name).ok_or_else(|| {
            format!(
                "cannot find volume {:?} to mount into container {:?}",
                vm.name, c.name
            )
        })?;
        let mut host_path = v.host_path.clone();
        let sub = vm
            .sub_path_expr
            .as_ref()
            .map(|e| {
                let env: HashMap<&str, &str> = inp
                    .env
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                crate::env::expand(e, &|n| env.get(n).map(|v| v.to_string()))
            })
            .or_else(|| vm.sub_path.clone())
            .filter(|s| !s.is_empty());
        if let Some(sub) = sub {
            if sub.starts_with('/') || sub.split('/').any(|p| p == "..") {
                return Err(format!(
                    "invalid subpath {sub:?}: must be a relative path without '..'"
                ));
            }
            host_path = host_path.join(&sub);
            if !host_path.exists() {
                let _ = std::fs::create_dir_all(&host_path);
            }
        }
        let propagation = match vm.mount_propagation.as_deref() {
            Some("HostToContainer") => api::MountPropagation::PropagationHostToContainer,
            Some("Bidirectional") => api::MountPropagation::PropagationBidirectional,
            _ => api::MountPropagation::PropagationPrivate,
        } as i32;
        mounts.push(api::Mount {
            container_path: vm.mount_path.clone(),
            host_path: host_path.display().to_string(),
            readonly: vm.read_only.unwrap_or(false) || v.read_only,
            propagation,
            ..Default::default()
        });
    }
    fn mounted(mounts: &[api::Mount], p: &str) -> bool {
        mounts.iter().any(|m| m.container_path == p)
    }
    if let Some(h) = &inp.files.etc_hosts
        && !mounted(&mounts, "/etc/hosts")
    {
        mounts.push(api::Mount {
            container_path: "/etc/hosts".into(),
            host_path: h.display().to_string(),
            ..Default::default()
        });
    }
    let term_path = c
        .termination_message_path
        .clone()
        .unwrap_or_else(|| "/dev/termination-log".into());
    if let Some(t) = &inp.files.termination_log
        && !term_path.is_empty()
        && !mounted(&mounts, &term_path)
    {
        mounts.push(api::Mount {
            container_path: term_path.clone(),
            host_path: t.display().to_string(),
            ..Default::default()
        });
    }

    let mut container_labels = HashMap::from([
        (
            labels::POD_NAME.to_string(),
            pod.metadata.name.clone().unwrap_or_default(),
        ),
        (
            labels::POD_NAMESPACE.to_string(),
            pod.metadata.namespace.clone().unwrap_or_default(),
        ),
        (
            labels::POD_UID.to_string(),
            pod.metadata.uid.clone().unwrap_or_default(),
        ),
        (labels::CONTAINER_NAME.to_string(), c.name.clone()),
    ]);
    if inp.is_init {
        container_labels.insert(labels::INIT_CONTAINER.into(), "true".into());
    }
    let mut annotations = HashMap::from([
        (labels::CONTAINER_HASH.to_string(), container_hash(c)),
        (
            labels::RESTART_COUNT.to_string(),
            inp.restart_count.to_string(),
        ),
        (labels::TERMINATION_MESSAGE_PATH.to_string(), term_path),
        (
            labels::TERMINATION_MESSAGE_POLICY.to_string(),
            c.termination_message_policy
                .clone()
                .unwrap_or_else(|| "File".into()),
        ),
        (
            labels::POD_TERMINATION_GRACE.to_string(),
            spec.termination_grace_period_seconds
                .unwrap_or(30)
                .to_string(),
        ),
    ]);
    if let Some(t) = &inp.files.termination_log {
        annotations.insert(
            labels::TERMINATION_LOG_HOST_PATH.into(),
            t.display().to_string(),
        );
    }
    if let Some(ports) = &c.ports {
        annotations.insert(
            labels::CONTAINER_PORTS.into(),
            serde_json::to_string(ports).unwrap_or_default(),
        );
    }

    // Resources become cgroup limits.
    let cpu_req = qos::milli(qos::request(c, "cpu"));
    let cpu_lim = qos::milli(qos::limit(c, "cpu"));
    let mem_lim = qos::value(qos::limit(c, "memory"));
    let resources = api::LinuxContainerResources {
        cpu_shares: qos::milli_cpu_to_shares(if cpu_req == 0 { cpu_lim } else { cpu_req }),
        cpu_period: if cpu_lim > 0 { qos::CPU_PERIOD } else { 0 },
        cpu_quota: qos::milli_cpu_to_quota(cpu_lim),
        memory_limit_in_bytes: mem_lim,
        oom_score_adj: qos::oom_score_adj(inp.qos, c, inp.memory_capacity),
        ..Default::default()
    };

    let psc = spec.security_context.clone().unwrap_or_default();
    let sc = c.security_context.clone().unwrap_or_default();
    let run_as_user = sc.run_as_user.or(psc.run_as_user);
    let run_as_group = sc.run_as_group.or(psc.run_as_group);
    let run_as_non_root = sc.run_as_non_root.or(psc.run_as_non_root).unwrap_or(false);
    if run_as_non_root {
        let uid = run_as_user.or(inp.image_user).unwrap_or(0);
        if uid == 0 {
            return Err(format!(
                "container has runAsNonRoot and image will run as root (pod: {:?}, container: {})",
                pod_desc(pod),
                c.name
            ));
        }
    }
    let privileged = sc.privileged.unwrap_or(false);
    let mut supplemental = psc.supplemental_groups.clone().unwrap_or_default();
    if let Some(fs_group) = psc.fs_group
        && !supplemental.contains(&fs_group)
    {
        supplemental.push(fs_group);
    }
    let security = api::LinuxContainerSecurityContext {
        capabilities: sc.capabilities.as_ref().map(|caps| api::Capability {
            add_capabilities: caps.add.clone().unwrap_or_default(),
            drop_capabilities: caps.drop.clone().unwrap_or_default(),
            add_ambient_capabilities: Vec::new(),
        }),
        privileged,
        namespace_options: Some(namespace_options(pod)),
        run_as_user: run_as_user.map(|v| api::Int64Value { value: v }),
        run_as_group: run_as_group.map(|v| api::Int64Value { value: v }),
        readonly_rootfs: sc.read_only_root_filesystem.unwrap_or(false),
        supplemental_groups: supplemental,
        no_new_privs: sc.allow_privilege_escalation == Some(false),
        masked_paths: if privileged || sc.proc_mount.as_deref() == Some("Unmasked") {
            Vec::new()
        } else {
            MASKED_PATHS.iter().map(|s| s.to_string()).collect()
        },
        readonly_paths: if privileged || sc.proc_mount.as_deref() == Some("Unmasked") {
            Vec::new()
        } else {
            READONLY_PATHS.iter().map(|s| s.to_string()).collect()
        },
        ..Default::default()
    };

    Ok(api::ContainerConfig {
        metadata: Some(api::ContainerMetadata {
            name: c.name.clone(),
            attempt: inp.restart_count as u32,
        }),
        image: Some(api::ImageSpec {
            image: inp.image_ref.to_string(),
            user_specified_image: c.image.clone().unwrap_or_default(),
            ..Default::default()
        }),
        command,
        args,
        working_dir: c.working_dir.clone().unwrap_or_default(),
        envs: inp
            .env
            .iter()
            .map(|(k, v)| api::KeyValue {
                key: k.clone(),
                value: v.clone(),
            })
            .collect(),
        mounts,
        labels: container_labels,
        annotations,
        log_path: format!("{}/{}.log", c.name, inp.restart_count),
        stdin: c.stdin.unwrap_or(false),
        stdin_once: c.stdin_once.unwrap_or(false),
        tty: c.tty.unwrap_or(false),
        linux: Some(api::LinuxContainerConfig {
            resources: Some(resources),
            security_context: Some(security),
        }),
        ..Default::default()
    })
}

/// Labels of a sandbox config as a plain map (for tests and logging).
pub fn sorted(m: &HashMap<String, String>) -> BTreeMap<String, String> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerPort, EnvVar, PodSpec, VolumeMount};
    use kube::api::ObjectMeta;

    fn pod() -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                uid: Some("u1".into()),
                labels: Some(BTreeMap::from([("app".into(), "web".into())])),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "nginx".into(),
                    image: Some("nginx".into()),
                    command: Some(vec!["sh".into(), "-c".into(), "echo $(GREETING)".into()]),
                    env: Some(vec![EnvVar {
                        name: "GREETING".into(),
                        value: Some("hi".into()),
                        ..Default::default()
                    }]),
                    ports: Some(vec![ContainerPort {
                        container_port: 80,
                        host_port: Some(8080),
                        protocol: Some("TCP".into()),
                        ..Default::default()
                    }]),
                    volume_mounts: Some(vec![VolumeMount {
                        name: "html".into(),
                        mount_path: "/usr/share/nginx/html".into(),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn sandboxes_carry_the_pod_identity_and_host_ports() {
        let p = pod();
        let cfg = sandbox_config(
            &p,
            1,
            Path::new("/logs/default_web_u1"),
            api::DnsConfig::default(),
            "/kubepods/besteffort/podu1".into(),
        );
        let md = cfg.metadata.unwrap();
        assert_eq!(
            (md.name.as_str(), md.uid.as_str(), md.attempt),
            ("web", "u1", 1)
        );
        assert_eq!(cfg.hostname, "web");
        assert_eq!(cfg.labels[labels::POD_UID], "u1");
        assert_eq!(cfg.labels["app"], "web");
        assert_eq!(cfg.port_mappings.len(), 1);
        assert_eq!(cfg.port_mappings[0].host_port, 8080);
        assert_eq!(
            cfg.linux.unwrap().cgroup_parent,
            "/kubepods/besteffort/podu1"
        );
    }

    #[test]
    fn containers_get_expanded_commands_mounts_and_kubelet_annotations() {
        let p = pod();
        let c = &p.spec.as_ref().unwrap().containers[0];
        let volumes = HashMap::from([(
            "html".to_string(),
            MountedVolume {
                host_path: PathBuf::from("/pods/u1/volumes/kubernetes.io~empty-dir/html"),
                read_only: false,
            },
        )]);
        let files = PodFiles {
            etc_hosts: Some(PathBuf::from("/pods/u1/etc-hosts")),
            termination_log: Some(PathBuf::from("/pods/u1/containers/nginx/abc")),
        };
        let cfg = container_config(&ContainerInputs {
            pod: &p,
            container: c,
            is_init: false,
            restart_count: 2,
            image_ref: "sha256:abc",
            env: vec![("GREETING".into(), "hi".into())],
            volumes: &volumes,
            files: &files,
            qos: QosClass::BestEffort,
            memory_capacity: 1 << 30,
            image_user: None,
        })
        .unwrap();
        assert_eq!(cfg.command, vec!["sh", "-c", "echo hi"]);
        assert_eq!(cfg.log_path, "nginx/2.log");
        assert_eq!(cfg.annotations[labels::RESTART_COUNT], "2");
        let paths: Vec<&str> = cfg
            .mounts
            .iter()
            .map(|m| m.container_path.as_str())
            .collect();
        assert_eq!(
            paths,
            vec![
                "/usr/share/nginx/html",
                "/etc/hosts",
                "/dev/termination-log"
            ]
        );
        let sec = cfg.linux.unwrap().security_context.unwrap();
        assert!(sec.masked_paths.contains(&"/proc/kcore".to_string()));
    }

    #[test]
    fn run_as_non_root_refuses_root_images() {
        let mut p = pod();
        let c = &mut p.spec.as_mut().unwrap().containers[0];
        c.volume_mounts = None;
        c.security_context = Some(k8s_openapi::api::core::v1::SecurityContext {
            run_as_non_root: Some(true),
            ..Default::default()
        });
        let c = c.clone();
        let err = container_config(&ContainerInputs {
            pod: &p,
            container: &c,
            is_init: false,
            restart_count: 0,
            image_ref: "x",
            env: vec![],
            volumes: &HashMap::new(),
            files: &PodFiles::default(),
            qos: QosClass::BestEffort,
            memory_capacity: 0,
            image_user: Some(0),
        })
        .unwrap_err();
        assert!(
            err.starts_with("container has runAsNonRoot and image will run as root"),
            "{err}"
        );
    }

    #[test]
    fn spec_changes_other_than_resources_change_the_hash() {
        let p = pod();
        let c = p.spec.unwrap().containers[0].clone();
        let mut d = c.clone();
        d.resources = Some(Default::default());
        assert_eq!(container_hash(&c), container_hash(&d));
        d.image = Some("nginx:2".into());
        assert_ne!(container_hash(&c), container_hash(&d));
    }
}
