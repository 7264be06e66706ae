//! Resource usage: `/stats/summary` (the Summary API metrics-server and `kubectl top` build on)
//! and `/metrics/resource`, from the pod cgroups and the runtime's container stats. CPU rates
//! (`usageNanoCores`) come from the difference to the previous sample.

use std::collections::HashMap;
use std::sync::OnceLock;

use parking_lot::Mutex;
use serde::Serialize;

use crate::cri::labels;
use crate::kubelet::Kubelet;

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CpuStats {
    pub time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_nano_cores: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_core_nano_seconds: Option<u64>,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemoryStats {
    pub time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_set_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_bytes: Option<u64>,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStats {
    pub name: String,
    pub start_time: String,
    pub cpu: CpuStats,
    pub memory: MemoryStats,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct PodReference {
    pub name: String,
    pub namespace: String,
    pub uid: String,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodStats {
    pub pod_ref: PodReference,
    pub start_time: String,
    pub containers: Vec<ContainerStats>,
    pub cpu: CpuStats,
    pub memory: MemoryStats,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStats {
    pub node_name: String,
    pub start_time: String,
    pub cpu: CpuStats,
    pub memory: MemoryStats,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    pub node: NodeStats,
    pub pods: Vec<PodStats>,
}

/// Previous CPU samples: key -> (timestamp ns, cumulative cpu ns).
fn samples() -> &'static Mutex<HashMap<String, (i64, u64)>> {
    static S: OnceLock<Mutex<HashMap<String, (i64, u64)>>> = OnceLock::new();
    S.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The CPU rate since the previous sample of `key`, in nanocores.
fn rate(key: &str, now: i64, cpu_ns: u64) -> Option<u64> {
    let mut s = samples().lock();
    if s.len() > 100_000 {
        s.clear();
    }
    let prev = s.insert(key.to_string(), (now, cpu_ns));
    let (t0, c0) = prev?;
    let dt = now - t0;
    if dt <= 0 || cpu_ns < c0 {
        return None;
    }
    Some(((cpu_ns - c0) as u128 * 1_000_000_000 / dt as u128) as u64)
}

fn rfc3339(nanos: i64) -> String {
    jiff::Timestamp::from_nanosecond(nanos as i128)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

fn host_usage() -> (u64, u64, u64) {
    // Node totals from the root cgroup: CPU nanoseconds and memory working set.
    let read = |p: &str| std::fs::read_to_string(p).ok();
    let cpu = read("/sys/fs/cgroup/cpuacct/cpuacct.usage")
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let meminfo = read("/proc/meminfo").unwrap_or_default();
    let kb = |name: &str| -> u64 {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
            * 1024
    };
    let total = kb("MemTotal:");
    let available = kb("MemAvailable:");
    (cpu, total.saturating_sub(available), available)
}

/// The Summary API's answer for this node.
pub async fn summary(kubelet: &Kubelet) -> Summary {
    let now = crate::clock::now_nanos();
    let ts = rfc3339(now);
    let runtime = kubelet.runtime();
    let container_stats = runtime.list_container_stats().await.unwrap_or_default();
    let sandbox_stats = runtime.list_pod_sandbox_stats().await.unwrap_or_default();
    let mut by_pod: HashMap<String, Vec<ContainerStats>> = HashMap::new();
    for c in &container_stats {
        let Some(attr) = &c.attributes else { continue };
        let uid = attr
            .labels
            .get(labels::POD_UID)
            .cloned()
            .unwrap_or_default();
        let name = attr
            .labels
            .get(labels::CONTAINER_NAME)
            .cloned()
            .unwrap_or_else(|| {
                attr.metadata
                    .as_ref()
                    .map(|m| m.name.clone())
                    .unwrap_or_default()
            });
        let cpu_ns = c
            .cpu
            .as_ref()
            .and_then(|u| u.usage_core_nano_seconds.as_ref())
            .map(|v| v.value)
            .unwrap_or(0);
        let nano_cores = c
            .cpu
            .as_ref()
            .and_then(|u| u.usage_nano_cores.as_ref())
            .map(|v| v.value)
            .or_else(|| rate(&format!("c/{}", attr.id), now, cpu_ns));
        let mem = c.memory.as_ref();
        let v = |f: Option<&crate::cri::api::UInt64Value>| f.map(|v| v.value);
        by_pod.entry(uid).or_default().push(ContainerStats {
            name,
            start_time: ts.clone(),
            cpu: CpuStats {
                time: ts.clone(),
                usage_nano_cores: nano_cores,
                usage_core_nano_seconds: Some(cpu_ns),
            },
            memory: MemoryStats {
                time: ts.clone(),
                available_bytes: None,
                usage_bytes: mem.and_then(|m| v(m.usage_bytes.as_ref())),
                working_set_bytes: mem.and_then(|m| v(m.working_set_bytes.as_ref())),
                rss_bytes: mem.and_then(|m| v(m.rss_bytes.as_ref())),
            },
        });
    }
    let sandbox_usage: HashMap<String, (u64, u64)> = sandbox_stats
        .iter()
        .filter_map(|s| {
            let uid = s.attributes.as_ref()?.labels.get(labels::POD_UID)?.clone();
            let l = s.linux.as_ref()?;
            let cpu = l.cpu.as_ref()?.usage_core_nano_seconds.as_ref()?.value;
            let mem = l
                .memory
                .as_ref()?
                .working_set_bytes
                .as_ref()
                .map(|v| v.value)
                .unwrap_or(0);
            Some((uid, (cpu, mem)))
        })
        .collect();
    let mut pods = Vec::new();
    for p in kubelet.desired_pods() {
        let uid = p.metadata.uid.clone().unwrap_or_default();
        let containers = by_pod.remove(&uid).unwrap_or_default();
        if containers.is_empty() {
            continue;
        }
        let qos = crate::qos::pod_qos(&p);
        let cg = kubelet_cgroup_usage(kubelet, &uid, qos);
        let (cpu_ns, mem_ws) = match (cg, sandbox_usage.get(&uid)) {
            (Some(u), _) => (u.cpu_ns, u.memory_working_set),
            (None, Some((c, m))) => (*c, *m),
            (None, None) => (
                containers
                    .iter()
                    .filter_map(|c| c.cpu.usage_core_nano_seconds)
                    .sum(),
                containers
                    .iter()
                    .filter_map(|c| c.memory.working_set_bytes)
                    .sum(),
            ),
        };
        pods.push(PodStats {
            pod_ref: PodReference {
                name: p.metadata.name.clone().unwrap_or_default(),
                namespace: p.metadata.namespace.clone().unwrap_or_default(),
                uid: uid.clone(),
            },
            start_time: p
                .status
                .as_ref()
                .and_then(|s| s.start_time.as_ref())
                .map(|t| t.0.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
                .unwrap_or_else(|| ts.clone()),
            containers,
            cpu: CpuStats {
                time: ts.clone(),
                usage_nano_cores: rate(&format!("p/{uid}"), now, cpu_ns),
                usage_core_nano_seconds: Some(cpu_ns),
            },
            memory: MemoryStats {
                time: ts.clone(),
                working_set_bytes: Some(mem_ws),
                usage_bytes: Some(mem_ws),
                ..Default::default()
            },
        });
    }
    let hollow = !kubelet.config().write_pod_files;
    let (cpu_ns, mem_ws, available) = if hollow {
        let cpu: u64 = pods
            .iter()
            .filter_map(|p| p.cpu.usage_core_nano_seconds)
            .sum();
        let mem: u64 = pods.iter().filter_map(|p| p.memory.working_set_bytes).sum();
        (
            cpu,
            mem,
            (kubelet.node_status().machine().memory_bytes as u64).saturating_sub(mem),
        )
    } else {
        host_usage()
    };
    Summary {
        node: NodeStats {
            node_name: kubelet.node_name().to_string(),
            start_time: ts.clone(),
            cpu: CpuStats {
                time: ts.clone(),
                usage_nano_cores: rate("node", now, cpu_ns),
                usage_core_nano_seconds: Some(cpu_ns),
            },
            memory: MemoryStats {
                time: ts.clone(),
                available_bytes: Some(available),
                usage_bytes: Some(mem_ws),
                working_set_bytes: Some(mem_ws),
                rss_bytes: None,
            },
        },
        pods,
    }
}

fn kubelet_cgroup_usage(
    kubelet: &Kubelet,
    uid: &str,
    qos: crate::qos::QosClass,
) -> Option<crate::cgroups::Usage> {
    kubelet.pod_cgroup_usage(uid, qos)
}

/// `/metrics/resource` in Prometheus text, as metrics-server scrapes it.
pub fn resource_metrics(s: &Summary) -> String {
    use std::fmt::Write;
    let ms = crate::clock::now().as_millisecond();
    let mut out = String::new();
    let secs = |ns: Option<u64>| ns.unwrap_or(0) as f64 / 1e9;
    let _ = writeln!(
        out,
        "# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds\n# TYPE container_cpu_usage_seconds_total counter"
    );
    for p in &s.pods {
        for c in &p.containers {
            let _ = writeln!(
                out,
                "container_cpu_usage_seconds_total{{container=\"{}\",namespace=\"{}\",pod=\"{}\"}} {} {ms}",
                c.name,
                p.pod_ref.namespace,
                p.pod_ref.name,
                secs(c.cpu.usage_core_nano_seconds)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP container_memory_working_set_bytes [STABLE] Current working set of the container in bytes\n# TYPE container_memory_working_set_bytes gauge"
    );
    for p in &s.pods {
        for c in &p.containers {
            let _ = writeln!(
                out,
                "container_memory_working_set_bytes{{container=\"{}\",namespace=\"{}\",pod=\"{}\"}} {} {ms}",
                c.name,
                p.pod_ref.namespace,
                p.pod_ref.name,
                c.memory.working_set_bytes.unwrap_or(0)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds\n# TYPE node_cpu_usage_seconds_total counter\nnode_cpu_usage_seconds_total {} {ms}",
        secs(s.node.cpu.usage_core_nano_seconds)
    );
    let _ = writeln!(
        out,
        "# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes\n# TYPE node_memory_working_set_bytes gauge\nnode_memory_working_set_bytes {} {ms}",
        s.node.memory.working_set_bytes.unwrap_or(0)
    );
    let _ = writeln!(
        out,
        "# HELP pod_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the pod in core-seconds\n# TYPE pod_cpu_usage_seconds_total counter"
    );
    for p in &s.pods {
        let _ = writeln!(
            out,
            "pod_cpu_usage_seconds_total{{namespace=\"{}\",pod=\"{}\"}} {} {ms}",
            p.pod_ref.namespace,
            p.pod_ref.name,
            secs(p.cpu.usage_core_nano_seconds)
        );
    }
    let _ = writeln!(
        out,
        "# HELP pod_memory_working_set_bytes [STABLE] Current working set of the pod in bytes\n# TYPE pod_memory_working_set_bytes gauge"
    );
    for p in &s.pods {
        let _ = writeln!(
            out,
            "pod_memory_working_set_bytes{{namespace=\"{}\",pod=\"{}\"}} {} {ms}",
            p.pod_ref.namespace,
            p.pod_ref.name,
            p.memory.working_set_bytes.unwrap_or(0)
        );
    }
    let _ = writeln!(
        out,
        "# HELP scrape_error [ALPHA] 1 if there was an error while getting container metrics, 0 otherwise\n# TYPE scrape_error gauge\nscrape_error 0"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_rates_come_from_consecutive_samples() {
        assert_eq!(rate("t/x", 1_000_000_000, 0), None, "first sample");
        // Half a core for two seconds.
        assert_eq!(rate("t/x", 3_000_000_000, 1_000_000_000), Some(500_000_000));
    }

    #[test]
    fn resource_metrics_name_containers_pods_and_the_node() {
        let s = Summary {
            node: NodeStats {
                node_name: "n".into(),
                cpu: CpuStats {
                    usage_core_nano_seconds: Some(2_000_000_000),
                    ..Default::default()
                },
                ..Default::default()
            },
            pods: vec![PodStats {
                pod_ref: PodReference {
                    name: "web".into(),
                    namespace: "default".into(),
                    uid: "u".into(),
                },
                containers: vec![ContainerStats {
                    name: "nginx".into(),
                    memory: MemoryStats {
                        working_set_bytes: Some(4096),
                        ..Default::default()
                    },
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let text = resource_metrics(&s);
        assert!(text.contains("container_memory_working_set_bytes{container=\"nginx\",namespace=\"default\",pod=\"web\"} 4096 "));
        assert!(text.contains("node_cpu_usage_seconds_total 2 "));
    }
}
