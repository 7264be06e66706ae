//! `ferrokube bench api`: the API server's throughput and latency as clients see it.
//!
//! Phases, in order, each against its own namespace so they do not disturb each other:
//! idle RSS (from `/metrics`); creates of pods by N concurrent clients (rate, p50, p99); gets of
//! random pods; a full list of 10k pods as a kubectl-style Table; more creates up to 100k pods
//! and the same list again; one change fanned out to 1,000 watchers; RSS holding 100k pods.
//! The pods are removed afterwards unless asked to keep them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferrokube_client::Connection;
use futures::StreamExt;
use http::Method;
use http_body_util::BodyExt;
use serde::Serialize;

use crate::conn::{H2, connect};
use crate::{Error, Result};

const TABLE_ACCEPT: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";

#[derive(Clone, Debug)]
pub struct Options {
    /// Concurrent clients (one HTTP/2 connection each) for creates and gets.
    pub clients: usize,
    /// Pods in the big list (and created in total).
    pub total_pods: usize,
    /// Pods in the small list; the create figures come from creating these.
    pub small_list: usize,
    pub gets: usize,
    pub watchers: usize,
    /// Leave the benchmark's pods in place.
    pub keep: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            clients: 64,
            total_pods: 100_000,
            small_list: 10_000,
            gets: 50_000,
            watchers: 1_000,
            keep: false,
        }
    }
}

/// The figures, with the key names the issue asks for.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub creates_per_s: f64,
    pub create_p50_ms: f64,
    pub create_p99_ms: f64,
    pub gets_per_s: f64,
    pub list_10k_ms: f64,
    pub list_100k_ms: f64,
    pub watch_fanout_1000_ms: f64,
    pub rss_idle_mb: f64,
    pub rss_100k_mb: f64,
}

impl Report {
    pub fn text(&self, o: &Options) -> String {
        format!(
            "creates: {:.0}/s with {} clients (p50 {:.2} ms, p99 {:.2} ms)\n\
             gets: {:.0}/s\n\
             list {} pods as Table: {:.0} ms\n\
             list {} pods as Table: {:.0} ms\n\
             one change to {} watchers: {:.1} ms\n\
             server RSS: {:.1} MB idle, {:.1} MB holding {} pods\n",
            self.creates_per_s,
            o.clients,
            self.create_p50_ms,
            self.create_p99_ms,
            self.gets_per_s,
            o.small_list,
            self.list_10k_ms,
            o.total_pods,
            self.list_100k_ms,
            o.watchers,
            self.watch_fanout_1000_ms,
            self.rss_idle_mb,
            self.rss_100k_mb,
            o.total_pods,
        )
    }
}

fn pod_body(name: &str) -> Bytes {
    Bytes::from(
        serde_json::to_vec(&serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": "bench", "shard": name.len().to_string()}},
            "spec": {"containers": [{"name": "main", "image": "busybox:1.36", "command": ["sleep", "3600"],
                                      "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]},
        }))
        .expect("pod json"),
    )
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

async fn rss_mb(c: &H2) -> Result<f64> {
    let body = c.ok(Method::GET, "/metrics", None).await?;
    let text = String::from_utf8_lossy(&body);
    let v = text
        .lines()
        .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .ok_or_else(|| Error::Request {
            what: "GET /metrics".into(),
            message: "no process_resident_memory_bytes".into(),
        })?;
    Ok(v / 1_048_576.0)
}

async fn ensure_namespace(c: &H2, ns: &str) -> Result<()> {
    let body = serde_json::to_vec(
        &serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
    )
    .expect("json");
    let (status, resp) = c
        .call(
            Method::POST,
            "/api/v1/namespaces",
            "application/json",
            Some(Bytes::from(body)),
        )
        .await?;
    if status.is_success() || status.as_u16() == 409 {
        Ok(())
    } else {
        Err(Error::Api {
            what: format!("create namespace {ns}"),
            status: status.as_u16(),
            body: String::from_utf8_lossy(&resp).into(),
        })
    }
}

/// Creates pods `from..to` named `bench-<i>` with `clients` concurrent connections; returns the
/// latency of each create and the wall time.
async fn create_pods(
    clients: &[H2],
    ns: &str,
    from: usize,
    to: usize,
) -> Result<(Vec<Duration>, Duration)> {
    let next = Arc::new(AtomicUsize::new(from));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in clients {
        let c = c.clone();
        let next = next.clone();
        let path = format!("/api/v1/namespaces/{ns}/pods");
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= to {
                    return Ok::<_, Error>(lat);
                }
                let t = Instant::now();
                c.ok(Method::POST, &path, Some(pod_body(&format!("bench-{i}"))))
                    .await?;
                lat.push(t.elapsed());
            }
        }));
    }
    let mut all = Vec::with_capacity(to - from);
    for t in tasks {
        let lat = t.await.map_err(|e| Error::Request {
            what: "create task".into(),
            message: e.to_string(),
        })??;
        all.extend(lat);
    }
    Ok((all, started.elapsed()))
}

async fn gets(clients: &[H2], ns: &str, total: usize, existing: usize) -> Result<Duration> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in clients {
        let c = c.clone();
        let next = next.clone();
        let ns = ns.to_string();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return Ok::<_, Error>(());
                }
                let n = rand::random::<u64>() as usize % existing;
                c.ok(
                    Method::GET,
                    &format!("/api/v1/namespaces/{ns}/pods/bench-{n}"),
                    None,
                )
                .await?;
            }
        }));
    }
    for t in tasks {
        t.await.map_err(|e| Error::Request {
            what: "get task".into(),
            message: e.to_string(),
        })??;
    }
    Ok(started.elapsed())
}

/// Lists every pod of the namespace as a Table in one response; best of three.
async fn list_table(c: &H2, ns: &str, expect: usize) -> Result<f64> {
    let mut best = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let (status, body) = c
            .call(
                Method::GET,
                &format!("/api/v1/namespaces/{ns}/pods"),
                TABLE_ACCEPT,
                None,
            )
            .await?;
        let took = t.elapsed().as_secs_f64() * 1000.0;
        if !status.is_success() {
            return Err(Error::Api {
                what: "list pods".into(),
                status: status.as_u16(),
                body: String::from_utf8_lossy(&body).into(),
            });
        }
        let rows = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["rows"].as_array().map(Vec::len))
            .unwrap_or(0);
        if rows != expect {
            return Err(Error::Request {
                what: "list pods".into(),
                message: format!("expected {expect} rows, got {rows}"),
            });
        }
        best = best.min(took);
    }
    Ok(best)
}

/// Opens `n` watches on an empty namespace, creates one pod there and measures the time until
/// the last watcher has seen it.
async fn watch_fanout(conn: &Connection, admin: &H2, ns: &str, n: usize) -> Result<f64> {
    ensure_namespace(admin, ns).await?;
    let list = admin
        .ok(Method::GET, &format!("/api/v1/namespaces/{ns}/pods"), None)
        .await?;
    let rv = serde_json::from_slice::<serde_json::Value>(&list)
        .ok()
        .and_then(|v| v["metadata"]["resourceVersion"].as_str().map(String::from))
        .unwrap_or_default();
    const PER_CONN: usize = 100;
    let mut conns = Vec::new();
    for _ in 0..n.div_ceil(PER_CONN) {
        conns.push(connect(conn).await?);
    }
    let path =
        format!("/api/v1/namespaces/{ns}/pods?watch=true&resourceVersion={rv}&timeoutSeconds=120");
    let mut bodies = Vec::with_capacity(n);
    for i in 0..n {
        bodies.push(conns[i / PER_CONN].stream(&path).await?);
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Instant>(n);
    for mut body in bodies {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut seen = Vec::new();
            while let Some(frame) = body.frame().await {
                let Ok(frame) = frame else { return };
                if let Some(d) = frame.data_ref() {
                    seen.extend_from_slice(d);
                    if seen.windows(12).any(|w| w == b"fanout-probe") {
                        let _ = tx.send(Instant::now()).await;
                        return;
                    }
                }
            }
        });
    }
    drop(tx);
    // Let every watch register before the change.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t0 = Instant::now();
    admin
        .ok(
            Method::POST,
            &format!("/api/v1/namespaces/{ns}/pods"),
            Some(pod_body("fanout-probe")),
        )
        .await?;
    let mut last = t0;
    let mut got = 0;
    let deadline = tokio::time::sleep(Duration::from_secs(60));
    tokio::pin!(deadline);
    while got < n {
        tokio::select! {
            t = rx.recv() => match t {
                Some(t) => { got += 1; last = last.max(t); }
                None => break,
            },
            _ = &mut deadline => break,
        }
    }
    if got < n {
        return Err(Error::Request {
            what: "watch fan-out".into(),
            message: format!("only {got} of {n} watchers saw the change"),
        });
    }
    Ok(last.duration_since(t0).as_secs_f64() * 1000.0)
}

async fn delete_all(clients: &[H2], ns: &str, count: usize) -> Result<()> {
    let names: Vec<String> = (0..count)
        .map(|i| format!("/api/v1/namespaces/{ns}/pods/bench-{i}?gracePeriodSeconds=0"))
        .collect();
    let clients = clients.to_vec();
    futures::stream::iter(names.into_iter().enumerate())
        .map(|(i, p)| {
            let c = clients[i % clients.len()].clone();
            async move { c.call(Method::DELETE, &p, "application/json", None).await }
        })
        .buffer_unordered(clients.len())
        .for_each(|_| async {})
        .await;
    Ok(())
}

/// Runs the whole benchmark; `progress` receives one line per phase.
pub async fn run(conn: &Connection, o: &Options, progress: impl Fn(&str)) -> Result<Report> {
    let mut clients = Vec::with_capacity(o.clients);
    for _ in 0..o.clients.max(1) {
        clients.push(connect(conn).await?);
    }
    let admin = clients[0].clone();
    let mut r = Report {
        rss_idle_mb: rss_mb(&admin).await?,
        ..Default::default()
    };
    progress(&format!("idle RSS {:.1} MB", r.rss_idle_mb));

    let suffix: u32 = rand::random::<u32>() % 100_000;
    let ns = format!("bench-{suffix}");
    ensure_namespace(&admin, &ns).await?;

    let (mut lat, took) = create_pods(&clients, &ns, 0, o.small_list).await?;
    r.creates_per_s = o.small_list as f64 / took.as_secs_f64();
    lat.sort();
    r.create_p50_ms = percentile(&lat, 0.50);
    r.create_p99_ms = percentile(&lat, 0.99);
    progress(&format!(
        "{} creates: {:.0}/s, p50 {:.2} ms, p99 {:.2} ms",
        o.small_list, r.creates_per_s, r.create_p50_ms, r.create_p99_ms
    ));

    let took = gets(&clients, &ns, o.gets, o.small_list).await?;
    r.gets_per_s = o.gets as f64 / took.as_secs_f64();
    progress(&format!("{} gets: {:.0}/s", o.gets, r.gets_per_s));

    r.list_10k_ms = list_table(&admin, &ns, o.small_list).await?;
    progress(&format!(
        "list {} as Table: {:.0} ms",
        o.small_list, r.list_10k_ms
    ));

    if o.total_pods > o.small_list {
        let (_, took) = create_pods(&clients, &ns, o.small_list, o.total_pods).await?;
        progress(&format!(
            "{} more creates: {:.0}/s",
            o.total_pods - o.small_list,
            (o.total_pods - o.small_list) as f64 / took.as_secs_f64()
        ));
    }
    r.list_100k_ms = list_table(&admin, &ns, o.total_pods).await?;
    progress(&format!(
        "list {} as Table: {:.0} ms",
        o.total_pods, r.list_100k_ms
    ));

    let wns = format!("bench-watch-{suffix}");
    r.watch_fanout_1000_ms = watch_fanout(conn, &admin, &wns, o.watchers).await?;
    progress(&format!(
        "one change to {} watchers: {:.1} ms",
        o.watchers, r.watch_fanout_1000_ms
    ));

    r.rss_100k_mb = rss_mb(&admin).await?;
    progress(&format!(
        "RSS holding {} pods: {:.1} MB",
        o.total_pods, r.rss_100k_mb
    ));

    if !o.keep {
        delete_all(&clients, &ns, o.total_pods).await?;
        let _ = admin
            .call(
                Method::DELETE,
                &format!("/api/v1/namespaces/{wns}/pods/fanout-probe"),
                "application/json",
                None,
            )
            .await;
        for n in [&ns, &wns] {
            let _ = admin
                .call(
                    Method::DELETE,
                    &format!("/api/v1/namespaces/{n}"),
                    "application/json",
                    None,
                )
                .await;
        }
        progress("cleaned up");
    }
    Ok(r)
}
