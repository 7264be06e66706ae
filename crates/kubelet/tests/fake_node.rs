//! The kubelet over the fake runtime against an in-process API server: node registration,
//! heartbeat Lease, pods driven to Running with IPs and upstream's conditions, crash loops,
//! graceful deletion ending in the final delete, and a restart that adopts running pods.

use std::sync::Arc;
use std::time::Duration;

use ferrokube_apiserver::in_process::InProcess;
use ferrokube_apiserver::{ApiServer, Config};
use ferrokube_client::in_process;
use ferrokube_kubelet::hollow::{self, HollowOptions};
use ferrokube_store::memory::MemoryBackend;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, PostParams};
use tokio_util::sync::CancellationToken;

async fn client() -> (kube::Client, CancellationToken) {
    let cancel = CancellationToken::new();
    let config = Config {
        advertise_address: "127.0.0.1:6443".into(),
        serving_cert_pem: String::new(),
        serving_key_pem: String::new(),
        client_ca_pem: String::new(),
        compaction_interval: Duration::from_secs(300),
    };
    let srv = ApiServer::new(config, Arc::new(MemoryBackend::new()), cancel.clone())
        .await
        .unwrap();
    (in_process(InProcess::new(srv)), cancel)
}

async fn eventually<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn pod(name: &str, node: &str, extra: serde_json::Value) -> Pod {
    let mut v = serde_json::json!({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "nodeName": node,
            "containers": [{"name": "web", "image": "busybox:1.35", "ports": [{"containerPort": 80}]}]
        }
    });
    if let (Some(base), Some(add)) = (v.as_object_mut(), extra.as_object()) {
        for (k, val) in add {
            if k == "metadata" || k == "spec" {
                for (k2, v2) in val.as_object().unwrap() {
                    base[k][k2] = v2.clone();
                }
            } else {
                base.insert(k.clone(), val.clone());
            }
        }
    }
    serde_json::from_value(v).unwrap()
}

fn phase(p: &Pod) -> String {
    p.status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default()
}

fn condition(p: &Pod, t: &str) -> Option<String> {
    p.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == t)
        .map(|c| c.status.clone())
}

#[tokio::test]
async fn a_hollow_node_registers_heartbeats_and_runs_a_pod() {
    let (client, cancel) = client().await;
    let nodes = hollow::start(
        client.clone(),
        &["hollow-0".to_string()],
        &HollowOptions::default(),
        cancel.clone(),
    )
    .await;
    let node_api: Api<Node> = Api::all(client.clone());
    let node = eventually("node Ready", || {
        let api = node_api.clone();
        async move {
            let n = api.get_opt("hollow-0").await.ok()??;
            let ready = n
                .status
                .as_ref()?
                .conditions
                .as_ref()?
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            ready.then_some(n)
        }
    })
    .await;
    let labels = node.metadata.labels.clone().unwrap();
    assert_eq!(labels["kubernetes.io/hostname"], "hollow-0");
    assert_eq!(labels["kubernetes.io/os"], "linux");
    let status = node.status.unwrap();
    assert_eq!(status.capacity.as_ref().unwrap()["pods"].0, "110");
    assert_eq!(status.capacity.as_ref().unwrap()["cpu"].0, "4");
    let conds: Vec<String> = status
        .conditions
        .unwrap()
        .into_iter()
        .map(|c| c.type_)
        .collect();
    assert_eq!(
        conds,
        vec!["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]
    );
    assert_eq!(status.node_info.unwrap().kubelet_version, "v1.33.1");

    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let lease = eventually("lease", || {
        let api = leases.clone();
        async move { api.get_opt("hollow-0").await.ok()? }
    })
    .await;
    let spec = lease.spec.unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("hollow-0"));
    assert_eq!(spec.lease_duration_seconds, Some(40));
    assert_eq!(lease.metadata.owner_references.unwrap()[0].kind, "Node");

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.create(
        &PostParams::default(),
        &pod("web", "hollow-0", serde_json::json!({})),
    )
    .await
    .unwrap();
    let running = eventually("pod Running and Ready", || {
        let api = pods.clone();
        async move {
            let p = api.get("web").await.ok()?;
            (phase(&p) == "Running" && condition(&p, "Ready").as_deref() == Some("True"))
                .then_some(p)
        }
    })
    .await;
    let st = running.status.unwrap();
    assert!(
        st.pod_ip.as_deref().unwrap().starts_with("10.64.0."),
        "{:?}",
        st.pod_ip
    );
    assert!(st.start_time.is_some());
    assert_eq!(st.qos_class.as_deref(), Some("BestEffort"));
    let types: Vec<String> = st
        .conditions
        .unwrap()
        .into_iter()
        .map(|c| c.type_)
        .collect();
    assert_eq!(
        types,
        vec![
            "PodReadyToStartContainers",
            "Initialized",
            "Ready",
            "ContainersReady",
            "PodScheduled"
        ]
    );
    let cs = &st.container_statuses.unwrap()[0];
    assert!(cs.container_id.as_deref().unwrap().starts_with("fake://"));
    assert_eq!(cs.image, "docker.io/library/busybox:1.35");
    assert!(cs.state.as_ref().unwrap().running.is_some());
    drop(nodes);
    cancel.cancel();
}

#[tokio::test]
async fn a_crashing_container_backs_off_and_a_deleted_pod_is_removed_by_the_kubelet() {
    let (client, cancel) = client().await;
    let nodes = hollow::start(
        client.clone(),
        &["n1".to_string()],
        &HollowOptions::default(),
        cancel.clone(),
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.create(
        &PostParams::default(),
        &pod("crash", "n1", serde_json::json!({})),
    )
    .await
    .unwrap();
    let rt = nodes.runtimes["n1"].clone();
    eventually("container started", || {
        let rt = rt.clone();
        async move { (!rt.containers_named("web").is_empty()).then_some(()) }
    })
    .await;
    // Crash once: restarted at once, restartCount 1.
    let first = rt.containers_named("web")[0].clone();
    rt.exit_container(&first, 1, "Error");
    eventually("restart", || {
        let rt = rt.clone();
        async move { (rt.containers_named("web").len() == 2).then_some(()) }
    })
    .await;
    // Crash again: now the kubelet backs off 10 s and says so.
    let second = rt.containers_named("web")[1].clone();
    rt.exit_container(&second, 1, "Error");
    let p = eventually("CrashLoopBackOff", || {
        let api = pods.clone();
        async move {
            let p = api.get("crash").await.ok()?;
            let cs = p
                .status
                .as_ref()?
                .container_statuses
                .as_ref()?
                .first()?
                .clone();
            let w = cs.state.as_ref()?.waiting.as_ref()?.clone();
            (w.reason.as_deref() == Some("CrashLoopBackOff")).then_some(p)
        }
    })
    .await;
    let cs = p.status.unwrap().container_statuses.unwrap()[0].clone();
    assert_eq!(cs.restart_count, 1);
    let msg = cs.state.unwrap().waiting.unwrap().message.unwrap();
    assert!(
        msg.starts_with("back-off 10s restarting failed container=web pod=crash_default("),
        "{msg}"
    );
    assert_eq!(cs.last_state.unwrap().terminated.unwrap().exit_code, 1);

    // Graceful delete: the kubelet stops the containers and deletes the object itself.
    pods.delete("crash", &DeleteParams::default())
        .await
        .unwrap();
    eventually("pod gone", || {
        let api = pods.clone();
        async move { api.get_opt("crash").await.ok()?.is_none().then_some(()) }
    })
    .await;
    eventually("sandbox removed", || {
        let rt = rt.clone();
        async move { (rt.sandbox_count() == 0).then_some(()) }
    })
    .await;
    cancel.cancel();
}

#[tokio::test]
async fn init_containers_run_first_and_annotated_pods_complete() {
    let (client, cancel) = client().await;
    let _nodes = hollow::start(
        client.clone(),
        &["n1".to_string()],
        &HollowOptions::default(),
        cancel.clone(),
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let job_pod = pod(
        "job",
        "n1",
        serde_json::json!({
            "metadata": {"annotations": {"fake.ferrokube.io/exit-after": "200ms", "fake.ferrokube.io/exit-code": "0"}},
            "spec": {
                "restartPolicy": "Never",
                "initContainers": [{"name": "setup", "image": "busybox:1.35"}]
            }
        }),
    );
    pods.create(&PostParams::default(), &job_pod).await.unwrap();
    let done = eventually("pod Succeeded", || {
        let api = pods.clone();
        async move {
            let p = api.get("job").await.ok()?;
            (phase(&p) == "Succeeded").then_some(p)
        }
    })
    .await;
    let st = done.status.unwrap();
    let init = &st.init_container_statuses.unwrap()[0];
    assert_eq!(
        init.state
            .as_ref()
            .unwrap()
            .terminated
            .as_ref()
            .unwrap()
            .reason
            .as_deref(),
        Some("Completed")
    );
    let web = &st.container_statuses.unwrap()[0];
    assert_eq!(
        web.state
            .as_ref()
            .unwrap()
            .terminated
            .as_ref()
            .unwrap()
            .exit_code,
        0
    );
    assert_eq!(
        condition(&pods.get("job").await.unwrap(), "Ready").as_deref(),
        Some("False")
    );
    cancel.cancel();
}

#[tokio::test]
async fn a_failed_pull_shows_err_image_pull_then_image_pull_backoff() {
    let (client, cancel) = client().await;
    let nodes = hollow::start(
        client.clone(),
        &["n1".to_string()],
        &HollowOptions::default(),
        cancel.clone(),
    )
    .await;
    nodes.runtimes["n1"].fail_pulls(
        "127.0.0.1:1/nope:1",
        "failed to pull and unpack image \"127.0.0.1:1/nope:1\": connection refused",
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let mut p = pod("bad", "n1", serde_json::json!({}));
    p.spec.as_mut().unwrap().containers[0].image = Some("127.0.0.1:1/nope:1".into());
    pods.create(&PostParams::default(), &p).await.unwrap();
    let reason = |p: &Pod| -> Option<(String, String)> {
        let w = p
            .status
            .as_ref()?
            .container_statuses
            .as_ref()?
            .first()?
            .state
            .as_ref()?
            .waiting
            .clone()?;
        Some((w.reason?, w.message.unwrap_or_default()))
    };
    let (r, m) = eventually("ErrImagePull", || {
        let api = pods.clone();
        async move { reason(&api.get("bad").await.ok()?).filter(|(r, _)| r == "ErrImagePull") }
    })
    .await;
    assert_eq!(r, "ErrImagePull");
    assert!(m.contains("connection refused"), "{m}");
    let (_, m) = eventually("ImagePullBackOff", || {
        let api = pods.clone();
        async move { reason(&api.get("bad").await.ok()?).filter(|(r, _)| r == "ImagePullBackOff") }
    })
    .await;
    assert!(
        m.starts_with("Back-off pulling image \"127.0.0.1:1/nope:1\": ErrImagePull: "),
        "{m}"
    );
    cancel.cancel();
}
