//! Pod cgroups with the cgroupfs driver on cgroup v1, as upstream lays them out:
//! `<cgroup-root>/kubepods/pod<uid>` for Guaranteed pods,
//! `<cgroup-root>/kubepods/{burstable,besteffort}/pod<uid>` for the others. The runtime puts the
//! pod's containers under that parent; the pod level carries the pod's memory and CPU limits
//! and is where `/stats/summary` reads a pod's usage.
//!
//! Behind a trait: simulated nodes have no cgroups at all.

use std::path::{Path, PathBuf};

use crate::qos::QosClass;

/// Limits set on a pod's cgroup (0 = none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PodLimits {
    pub memory_bytes: i64,
    pub cpu_shares: i64,
    pub cpu_quota: i64,
}

/// CPU and memory use read from a cgroup.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub cpu_ns: u64,
    pub memory_usage: u64,
    pub memory_working_set: u64,
    pub memory_rss: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("cgroup {path}: {source}")]
pub struct Error {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

pub trait PodCgroups: Send + Sync {
    /// The cgroup parent the runtime is given for the pod's sandbox and containers.
    fn pod_parent(&self, uid: &str, qos: QosClass) -> String;
    /// Creates the pod's cgroup (and the QoS levels above it) with its limits. Idempotent.
    fn ensure_pod(&self, uid: &str, qos: QosClass, limits: PodLimits) -> Result<String, Error>;
    /// Removes the pod's cgroup from every hierarchy once its containers are gone. Idempotent.
    fn remove_pod(&self, uid: &str, qos: QosClass);
    /// The pod's usage, if its cgroup exists.
    fn pod_usage(&self, uid: &str, qos: QosClass) -> Option<Usage>;
    /// Usage of everything under `kubepods`.
    fn kubepods_usage(&self) -> Option<Usage>;
}

/// No cgroups: simulated nodes.
#[derive(Debug, Default)]
pub struct NoCgroups;

impl PodCgroups for NoCgroups {
    fn pod_parent(&self, uid: &str, qos: QosClass) -> String {
        relative(uid, qos)
    }
    fn ensure_pod(&self, uid: &str, qos: QosClass, _: PodLimits) -> Result<String, Error> {
        Ok(relative(uid, qos))
    }
    fn remove_pod(&self, _: &str, _: QosClass) {}
    fn pod_usage(&self, _: &str, _: QosClass) -> Option<Usage> {
        None
    }
    fn kubepods_usage(&self) -> Option<Usage> {
        None
    }
}

fn relative(uid: &str, qos: QosClass) -> String {
    match qos {
        QosClass::Guaranteed => format!("/kubepods/pod{uid}"),
        QosClass::Burstable => format!("/kubepods/burstable/pod{uid}"),
        QosClass::BestEffort => format!("/kubepods/besteffort/pod{uid}"),
    }
}

/// cgroup v1 through the filesystem under `/sys/fs/cgroup`.
#[derive(Debug)]
pub struct Cgroupfs {
    mount: PathBuf,
    /// `--cgroup-root`, e.g. `/` or `/ferrokube-test`.
    root: String,
}

/// The hierarchies the kubelet itself writes to (runc creates the others as it needs them).
const MANAGED: &[&str] = &["cpu", "cpuacct", "memory", "pids"];

impl Cgroupfs {
    pub fn new(root: &str) -> Self {
        Self::with_mount(Path::new("/sys/fs/cgroup"), root)
    }

    pub fn with_mount(mount: &Path, root: &str) -> Self {
        let root = format!("/{}", root.trim_matches('/'));
        Cgroupfs {
            mount: mount.to_path_buf(),
            root: if root == "/" { String::new() } else { root },
        }
    }

    fn path(&self, uid: &str, qos: QosClass) -> String {
        format!("{}{}", self.root, relative(uid, qos))
    }

    fn dir(&self, subsystem: &str, cgroup: &str) -> PathBuf {
        self.mount
            .join(subsystem)
            .join(cgroup.trim_start_matches('/'))
    }

    fn write(&self, subsystem: &str, cgroup: &str, file: &str, value: &str) -> Result<(), Error> {
        let p = self.dir(subsystem, cgroup).join(file);
        std::fs::write(&p, value).map_err(|source| Error { path: p, source })
    }

    fn read_u64(&self, subsystem: &str, cgroup: &str, file: &str) -> Option<u64> {
        std::fs::read_to_string(self.dir(subsystem, cgroup).join(file))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn usage(&self, cgroup: &str) -> Option<Usage> {
        let cpu_ns = self.read_u64("cpuacct", cgroup, "cpuacct.usage")?;
        let memory_usage = self
            .read_u64("memory", cgroup, "memory.usage_in_bytes")
            .unwrap_or(0);
        let stat = std::fs::read_to_string(self.dir("memory", cgroup).join("memory.stat"))
            .unwrap_or_default();
        let field = |name: &str| {
            stat.lines()
                .find_map(|l| l.strip_prefix(name)?.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        let inactive = field("total_inactive_file ");
        Some(Usage {
            cpu_ns,
            memory_usage,
            memory_working_set: memory_usage.saturating_sub(inactive),
            memory_rss: field("total_rss "),
        })
    }
}

impl PodCgroups for Cgroupfs {
    fn pod_parent(&self, uid: &str, qos: QosClass) -> String {
        self.path(uid, qos)
    }

    fn ensure_pod(&self, uid: &str, qos: QosClass, limits: PodLimits) -> Result<String, Error> {
        let cgroup = self.path(uid, qos);
        for s in MANAGED {
            let d = self.dir(s, &cgroup);
            std::fs::create_dir_all(&d).map_err(|source| Error { path: d, source })?;
        }
        if qos == QosClass::BestEffort {
            // Upstream gives the BestEffort level the minimum share.
            let _ = self.write(
                "cpu",
                &format!("{}/kubepods/besteffort", self.root),
                "cpu.shares",
                "2",
            );
        }
        if limits.cpu_shares > 0 {
            self.write("cpu", &cgroup, "cpu.shares", &limits.cpu_shares.to_string())?;
        }
        if limits.cpu_quota > 0 {
            self.write(
                "cpu",
                &cgroup,
                "cpu.cfs_period_us",
                &crate::qos::CPU_PERIOD.to_string(),
            )?;
            self.write(
                "cpu",
                &cgroup,
                "cpu.cfs_quota_us",
                &limits.cpu_quota.to_string(),
            )?;
        }
        if limits.memory_bytes > 0 {
            self.write(
                "memory",
                &cgroup,
                "memory.limit_in_bytes",
                &limits.memory_bytes.to_string(),
            )?;
        }
        Ok(cgroup)
    }

    fn remove_pod(&self, uid: &str, qos: QosClass) {
        let cgroup = self.path(uid, qos);
        let Ok(hierarchies) = std::fs::read_dir(&self.mount) else {
            return;
        };
        for h in hierarchies.flatten() {
            let d = h.path().join(cgroup.trim_start_matches('/'));
            if d.exists() {
                remove_tree(&d);
            }
        }
    }

    fn pod_usage(&self, uid: &str, qos: QosClass) -> Option<Usage> {
        self.usage(&self.path(uid, qos))
    }

    fn kubepods_usage(&self) -> Option<Usage> {
        self.usage(&format!("{}/kubepods", self.root))
    }
}

/// Removes a cgroup directory and its (empty) children, deepest first: cgroupfs directories
/// can only be removed with rmdir.
fn remove_tree(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&e.path());
            }
        }
    }
    if let Err(e) = std::fs::remove_dir(dir) {
        tracing::debug!(path = %dir.display(), error = %e, "could not remove cgroup");
    }
}

/// The limits upstream puts on a pod cgroup: memory when every container has a memory limit,
/// CPU quota when every container has a CPU limit, shares from the CPU requests.
pub fn pod_limits(pod: &k8s_openapi::api::core::v1::Pod) -> PodLimits {
    let Some(spec) = &pod.spec else {
        return PodLimits::default();
    };
    let containers = &spec.containers;
    let all_mem = containers
        .iter()
        .all(|c| crate::qos::value(crate::qos::limit(c, "memory")) > 0);
    let all_cpu = containers
        .iter()
        .all(|c| crate::qos::milli(crate::qos::limit(c, "cpu")) > 0);
    let mut memory: i64 = containers
        .iter()
        .map(|c| crate::qos::value(crate::qos::limit(c, "memory")))
        .sum();
    let mut cpu_limit: i64 = containers
        .iter()
        .map(|c| crate::qos::milli(crate::qos::limit(c, "cpu")))
        .sum();
    // An init container runs alone: the pod needs at least its largest limit.
    for c in spec.init_containers.iter().flatten() {
        memory = memory.max(crate::qos::value(crate::qos::limit(c, "memory")));
        cpu_limit = cpu_limit.max(crate::qos::milli(crate::qos::limit(c, "cpu")));
    }
    let cpu_request: i64 = containers
        .iter()
        .map(|c| {
            let r = crate::qos::milli(crate::qos::request(c, "cpu"));
            if r == 0 {
                crate::qos::milli(crate::qos::limit(c, "cpu"))
            } else {
                r
            }
        })
        .sum();
    PodLimits {
        memory_bytes: if all_mem { memory } else { 0 },
        cpu_shares: crate::qos::milli_cpu_to_shares(cpu_request),
        cpu_quota: if all_cpu {
            crate::qos::milli_cpu_to_quota(cpu_limit)
        } else {
            0
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_cgroups_sit_under_their_qos_level_and_carry_limits() {
        let dir = tempfile::tempdir().unwrap();
        for s in ["cpu", "cpuacct", "memory", "pids", "freezer"] {
            std::fs::create_dir_all(dir.path().join(s)).unwrap();
        }
        let cg = Cgroupfs::with_mount(dir.path(), "/test-root");
        let parent = cg
            .ensure_pod(
                "u1",
                QosClass::Burstable,
                PodLimits {
                    memory_bytes: 64 << 20,
                    cpu_shares: 256,
                    cpu_quota: 50_000,
                },
            )
            .unwrap();
        assert_eq!(parent, "/test-root/kubepods/burstable/podu1");
        let mem = dir.path().join("memory/test-root/kubepods/burstable/podu1");
        assert_eq!(
            std::fs::read_to_string(mem.join("memory.limit_in_bytes")).unwrap(),
            (64u64 << 20).to_string()
        );
        assert_eq!(
            cg.pod_parent("u2", QosClass::Guaranteed),
            "/test-root/kubepods/podu2"
        );
        // runc made a container cgroup in another hierarchy; removal takes it all.
        let ctr = dir
            .path()
            .join("freezer/test-root/kubepods/burstable/podu1/abc");
        std::fs::create_dir_all(&ctr).unwrap();
        // Plain directories with files in them stand in for cgroupfs, which has none to delete.
        for entry in walk(dir.path()) {
            if entry.is_file() {
                std::fs::remove_file(entry).unwrap();
            }
        }
        cg.remove_pod("u1", QosClass::Burstable);
        assert!(!mem.exists());
        assert!(!ctr.exists());
    }

    fn walk(p: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        if let Ok(rd) = std::fs::read_dir(p) {
            for e in rd.flatten() {
                let path = e.path();
                if path.is_dir() {
                    out.extend(walk(&path));
                } else {
                    out.push(path);
                }
            }
        }
        out
    }
}
