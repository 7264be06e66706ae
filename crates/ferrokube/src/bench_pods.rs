//! `ferrokube bench pods`: pod startup on one real node. The command sets up its own cluster in
//! a temporary data dir — `ferrokube server --disable-agent` and a separate `ferrokube agent`
//! (so the agent's memory is its own), which starts its own containerd — builds the busybox
//! test image, creates `--count` pods at once bound to the node, and watches them: a pod's
//! startup latency runs from the moment its create request is sent to the watch event showing
//! every container running (creationTimestamp only has second precision). It reports p50/p99,
//! pods/s, the agent's RSS idle and with the pods running, and containerd's own RSS. Everything
//! it started is stopped by PID afterwards, also on error.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams, WatchEvent, WatchParams};
use serde::Serialize;

#[derive(Args, Debug)]
pub struct PodsArgs {
    /// Pods created at once.
    #[arg(long, default_value_t = 100)]
    count: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// The bridge the benchmark node's pods attach to.
    #[arg(long, default_value = "fkbench0")]
    cni_bridge: String,
    /// The benchmark node's pod CIDR (a /24 inside `10.250.0.0/16` by default).
    #[arg(long, default_value = "10.250.0.0/24")]
    pod_cidr: String,
}

#[derive(Debug, Default, Serialize)]
struct Report {
    count: usize,
    p50_ms: f64,
    p99_ms: f64,
    pods_per_s: f64,
    agent_rss_idle_mb: f64,
    agent_rss_mb: f64,
    containerd_rss_mb: f64,
}

/// A child process stopped by PID when dropped: TERM, a grace period, KILL.
struct Proc {
    child: Option<Child>,
    grace: Duration,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }
    fn stop(&mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        signal(c.id(), "TERM");
        let deadline = Instant::now() + self.grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = c.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The benchmark's cluster. Dropping it stops the agent and the server, then cleans the node up
/// (`ferrokube agent-cleanup`) and stops by PID anything still naming the data dir.
struct Cluster {
    dir: tempfile::TempDir,
    agent: Option<Proc>,
    server: Option<Proc>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(mut a) = self.agent.take() {
            a.stop();
        }
        if let Some(mut s) = self.server.take() {
            s.stop();
        }
        let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("ferrokube"));
        if let Ok(c) = Command::new(exe)
            .args(["agent-cleanup", "--data-dir"])
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            let mut p = Proc {
                child: Some(c),
                grace: Duration::from_secs(60),
            };
            // Waits for it to finish on its own first.
            if let Some(c) = p.child.as_mut() {
                let deadline = Instant::now() + Duration::from_secs(60);
                while Instant::now() < deadline && !matches!(c.try_wait(), Ok(Some(_))) {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            p.stop();
        }
        let needle = self.dir.path().display().to_string();
        let me = std::process::id();
        if let Ok(rd) = std::fs::read_dir("/proc") {
            for pid in rd
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter(|&p| p != me)
            {
                if std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&needle))
                {
                    signal(pid, "KILL");
                }
            }
        }
    }
}

fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn spawn(exe: &Path, args: &[String], log: &Path) -> anyhow::Result<Proc> {
    let f = std::fs::File::create(log).with_context(|| log.display().to_string())?;
    let child = Command::new(exe)
        .args(args)
        .env("FERROKUBE_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(f.try_clone()?)
        .stderr(f)
        .spawn()
        .with_context(|| format!("starting {} {}", exe.display(), args.join(" ")))?;
    Ok(Proc {
        child: Some(child),
        grace: Duration::from_secs(20),
    })
}

async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn all_running(p: &Pod) -> bool {
    let want = p.spec.as_ref().map(|s| s.containers.len()).unwrap_or(0);
    let running = p
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| {
            cs.iter()
                .filter(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()))
                .count()
        })
        .unwrap_or(0);
    want > 0 && running == want
}

pub async fn run(a: PodsArgs) -> anyhow::Result<()> {
    if a.count == 0 {
        bail!("--count must be at least 1");
    }
    let exe = std::env::current_exe().context("locating the ferrokube binary")?;
    let tmp = tempfile::Builder::new()
        .prefix("fk-bench-pods-")
        .tempdir()
        .context("creating a temporary data dir")?;
    let dir = tmp.path().to_path_buf();
    let mut cluster = Cluster {
        dir: tmp,
        agent: None,
        server: None,
    };
    let quiet = a.json;
    let say = |s: &str| {
        if !quiet {
            eprintln!("  {s}");
        }
    };

    let images = dir.join("agent/images");
    std::fs::create_dir_all(&images)?;
    let out = Command::new(&exe)
        .args(["images", "build-test", "--out"])
        .arg(&images)
        .output()?;
    if !out.status.success() {
        bail!(
            "building the busybox test image: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let octets: Vec<&str> = a.pod_cidr.split('.').collect();
    let cluster_cidr = match octets.as_slice() {
        [a1, b1, ..] => format!("{a1}.{b1}.0.0/16"),
        _ => bail!("invalid --pod-cidr {:?}", a.pod_cidr),
    };
    let d = dir.display().to_string();
    cluster.server = Some(spawn(
        &exe,
        &[
            "server".into(),
            "--data-dir".into(),
            d.clone(),
            "--bind-address".into(),
            "127.0.0.1".into(),
            "--port".into(),
            "0".into(),
            "--disable-agent".into(),
            "--cluster-cidr".into(),
            cluster_cidr,
        ],
        &dir.join("server.log"),
    )?);
    let kubeconfig = dir.join("admin.kubeconfig");
    wait_for("the API server", Duration::from_secs(60), || async {
        kubeconfig.exists().then_some(())
    })
    .await?;
    let conn = ferrokube_client::load(&kubeconfig).await?;
    let client = kube::Client::try_from(conn.config.clone())?;
    let node_name = "bench-node".to_string();
    cluster.agent = Some(spawn(
        &exe,
        &[
            "agent".into(),
            "--kubeconfig".into(),
            kubeconfig.display().to_string(),
            "--data-dir".into(),
            d.clone(),
            "--node-name".into(),
            node_name.clone(),
            "--kubelet-address".into(),
            "127.0.0.1".into(),
            "--kubelet-port".into(),
            "0".into(),
            "--cni-bridge".into(),
            a.cni_bridge.clone(),
            "--pod-cidr".into(),
            a.pod_cidr.clone(),
            "--cgroup-root".into(),
            format!("/ferrokube-bench-{}", std::process::id()),
        ],
        &dir.join("agent.log"),
    )?);
    let agent_pid = cluster.agent.as_ref().map(Proc::pid).unwrap_or(0);

    let nodes: Api<Node> = Api::all(client.clone());
    wait_for("the node to be Ready", Duration::from_secs(90), || async {
        let n = nodes.get_opt(&node_name).await.ok()??;
        n.status?
            .conditions?
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
            .then_some(())
    })
    .await
    .with_context(|| {
        format!(
            "agent log:\n{}",
            std::fs::read_to_string(dir.join("agent.log")).unwrap_or_default()
        )
    })?;
    let sas: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(client.clone(), "default");
    wait_for(
        "the default service account",
        Duration::from_secs(30),
        || async { sas.get_opt("default").await.ok()?.map(|_| ()) },
    )
    .await?;
    // Idle: the node registered, its images imported, nothing running.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let agent_rss_idle_mb = rss_mb(agent_pid);
    say(&format!(
        "node Ready; agent RSS idle {agent_rss_idle_mb:.1} MB"
    ));

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let list = pods
        .list(&ListParams::default().labels("app=bench-pods"))
        .await?;
    let rv = list.metadata.resource_version.unwrap_or_default();
    let stream = pods
        .watch(&WatchParams::default().labels("app=bench-pods"), &rv)
        .await?
        .boxed();
    let count = a.count;
    let watcher = tokio::spawn(async move {
        let mut stream = stream;
        let mut seen: std::collections::HashMap<String, Instant> = Default::default();
        while seen.len() < count {
            match stream.try_next().await {
                Ok(Some(WatchEvent::Added(p) | WatchEvent::Modified(p))) => {
                    if all_running(&p) {
                        let name = p.metadata.name.clone().unwrap_or_default();
                        seen.entry(name).or_insert_with(Instant::now);
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        seen
    });

    let pod = |i: usize| -> anyhow::Result<Pod> {
        Ok(serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": format!("bench-{i}"), "labels": {"app": "bench-pods"}},
            "spec": {
                "nodeName": node_name,
                "terminationGracePeriodSeconds": 0,
                "containers": [{
                    "name": "sleep",
                    "image": "busybox:1.35",
                    "command": ["sleep", "3600"],
                }],
            },
        }))?)
    };
    say(&format!("creating {count} pods at once"));
    let started = Instant::now();
    let creates = (0..count).map(|i| {
        let pods = pods.clone();
        let p = pod(i);
        async move {
            let p = p?;
            let sent = Instant::now();
            pods.create(&PostParams::default(), &p).await?;
            anyhow::Ok((format!("bench-{i}"), sent))
        }
    });
    let sent: Vec<(String, Instant)> = futures::future::join_all(creates)
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let seen = match tokio::time::timeout(Duration::from_secs(180), watcher).await {
        Ok(r) => r?,
        Err(_) => bail!("not every pod was running within 180 s"),
    };
    if seen.len() < count {
        bail!(
            "only {} of {count} pods were seen running (the watch ended)",
            seen.len()
        );
    }
    let mut lat: Vec<f64> = sent
        .iter()
        .filter_map(|(n, at)| Some(seen.get(n)?.duration_since(*at).as_secs_f64() * 1000.0))
        .collect();
    lat.sort_by(f64::total_cmp);
    let last = seen.values().max().copied().unwrap_or(started);
    let span = last.duration_since(started).as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let containerd_pid = std::fs::read_to_string(dir.join("agent/containerd/containerd.pid"))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok());
    let report = Report {
        count,
        p50_ms: percentile(&lat, 0.50),
        p99_ms: percentile(&lat, 0.99),
        pods_per_s: if span > 0.0 { count as f64 / span } else { 0.0 },
        agent_rss_idle_mb,
        agent_rss_mb: rss_mb(agent_pid),
        containerd_rss_mb: containerd_pid.map(rss_mb).unwrap_or(0.0),
    };

    say("deleting the pods");
    let _ = pods
        .delete_collection(
            &DeleteParams::default().grace_period(0),
            &ListParams::default().labels("app=bench-pods"),
        )
        .await;
    let gone = wait_for(
        "the pods to be deleted",
        Duration::from_secs(120),
        || async {
            let l = pods
                .list(&ListParams::default().labels("app=bench-pods"))
                .await
                .ok()?;
            l.items.is_empty().then_some(())
        },
    )
    .await;
    drop(cluster);
    gone?;

    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{} pods on one node: startup p50 {:.0} ms, p99 {:.0} ms, {:.1} pods/s\n\
             agent RSS: {:.1} MB idle, {:.1} MB with {} pods running; containerd RSS {:.1} MB",
            report.count,
            report.p50_ms,
            report.p99_ms,
            report.pods_per_s,
            report.agent_rss_idle_mb,
            report.agent_rss_mb,
            report.count,
            report.containerd_rss_mb
        );
    }
    Ok(())
}
