//! The kubelet's own Prometheus metrics (`/metrics`): pod start latency, operation counts and
//! the process's memory, in upstream's metric names where they exist.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

/// Upstream's pod start duration buckets (seconds).
const BUCKETS: &[f64] = &[
    0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 20.0, 30.0, 45.0, 60.0, 120.0, 180.0, 240.0,
    300.0, 360.0, 480.0, 600.0, 900.0, 1200.0, 1800.0, 2700.0, 3600.0,
];

#[derive(Debug)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

#[derive(Debug)]
pub struct Metrics {
    pod_start: Mutex<Histogram>,
    pub containers_started: AtomicU64,
    pub container_start_errors: AtomicU64,
    pub pod_syncs: AtomicU64,
    pub running_pods: AtomicU64,
    pub running_containers: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            pod_start: Mutex::new(Histogram {
                counts: vec![0; BUCKETS.len()],
                sum: 0.0,
                count: 0,
            }),
            containers_started: AtomicU64::new(0),
            container_start_errors: AtomicU64::new(0),
            pod_syncs: AtomicU64::new(0),
            running_pods: AtomicU64::new(0),
            running_containers: AtomicU64::new(0),
        }
    }
}

/// Resident memory of a process, in bytes, from /proc.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = s
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

impl Metrics {
    /// Records how long a pod took from creation until all its containers ran.
    pub fn observe_pod_start(&self, seconds: f64) {
        let mut h = self.pod_start.lock();
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += seconds;
        h.count += 1;
    }

    /// The text exposition. `runtime_pid` adds the supervised runtime's memory.
    pub fn render(&self, runtime_pid: Option<u32>) -> String {
        let mut out = String::new();
        let h = self.pod_start.lock();
        out.push_str("# HELP kubelet_pod_start_duration_seconds Duration in seconds from kubelet seeing a pod for the first time to the pod starting to run\n");
        out.push_str("# TYPE kubelet_pod_start_duration_seconds histogram\n");
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "kubelet_pod_start_duration_seconds_bucket{{le=\"{b}\"}} {}",
                h.counts[i]
            );
        }
        let _ = writeln!(
            out,
            "kubelet_pod_start_duration_seconds_bucket{{le=\"+Inf\"}} {}",
            h.count
        );
        let _ = writeln!(out, "kubelet_pod_start_duration_seconds_sum {}", h.sum);
        let _ = writeln!(out, "kubelet_pod_start_duration_seconds_count {}", h.count);
        drop(h);
        let counter = |out: &mut String, name: &str, help: &str, v: u64, kind: &str| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        };
        counter(
            &mut out,
            "kubelet_started_containers_total",
            "Cumulative number of containers started",
            self.containers_started.load(Ordering::Relaxed),
            "counter",
        );
        counter(
            &mut out,
            "kubelet_started_containers_errors_total",
            "Cumulative number of errors when starting containers",
            self.container_start_errors.load(Ordering::Relaxed),
            "counter",
        );
        counter(
            &mut out,
            "kubelet_pod_worker_syncs_total",
            "Pod syncs run by pod workers",
            self.pod_syncs.load(Ordering::Relaxed),
            "counter",
        );
        counter(
            &mut out,
            "kubelet_running_pods",
            "Number of pods that have a running pod sandbox",
            self.running_pods.load(Ordering::Relaxed),
            "gauge",
        );
        counter(
            &mut out,
            "kubelet_running_containers",
            "Number of containers currently running",
            self.running_containers.load(Ordering::Relaxed),
            "gauge",
        );
        if let Some(rss) = rss_bytes(std::process::id()) {
            counter(
                &mut out,
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                rss,
                "gauge",
            );
        }
        if let Some(rss) = runtime_pid.and_then(rss_bytes) {
            counter(
                &mut out,
                "ferrokube_container_runtime_resident_memory_bytes",
                "Resident memory of the container runtime the agent supervises.",
                rss,
                "gauge",
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_start_latencies_land_in_cumulative_buckets() {
        let m = Metrics::default();
        m.observe_pod_start(0.3);
        m.observe_pod_start(1.5);
        let text = m.render(None);
        assert!(text.contains("kubelet_pod_start_duration_seconds_bucket{le=\"0.5\"} 1\n"));
        assert!(text.contains("kubelet_pod_start_duration_seconds_bucket{le=\"2\"} 2\n"));
        assert!(text.contains("kubelet_pod_start_duration_seconds_count 2\n"));
        assert!(text.contains("process_resident_memory_bytes "));
    }
}
