//! kube-rs, the Rust client every ferrokube component uses, against the API server through
//! the in-process transport: typed CRUD, lists with selectors, and a kube-runtime watcher.

use std::sync::Arc;
use std::time::Duration;

use ferrokube_apiserver::in_process::InProcess;
use ferrokube_apiserver::{ApiServer, Config};
use ferrokube_client::{Informers, in_process};
use ferrokube_store::memory::MemoryBackend;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use tokio_util::sync::CancellationToken;

async fn server() -> (Arc<ApiServer>, CancellationToken) {
    let cancel = CancellationToken::new();
    let config = Config {
        advertise_address: "127.0.0.1:6443".into(),
        serving_cert_pem: String::new(),
        serving_key_pem: String::new(),
        client_ca_pem: String::new(),
        compaction_interval: Duration::from_secs(300),
    };
    (
        ApiServer::new(config, Arc::new(MemoryBackend::new()), cancel.clone())
            .await
            .unwrap(),
        cancel,
    )
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": {"app": "x"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}
    }))
    .unwrap()
}

#[tokio::test]
async fn kube_rs_reads_and_writes_through_the_in_process_transport() {
    let (srv, cancel) = server().await;
    let client = in_process(InProcess::new(srv));
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let created = pods
        .create(&PostParams::default(), &pod("a"))
        .await
        .unwrap();
    assert_eq!(
        created.spec.unwrap().restart_policy.as_deref(),
        Some("Always")
    );
    pods.create(&PostParams::default(), &pod("b"))
        .await
        .unwrap();
    let listed = pods
        .list(&ListParams::default().labels("app=x"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 2);
    let patched = pods
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"labels": {"p": "1"}}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.metadata.labels.unwrap()["p"], "1");
    pods.delete("b", &DeleteParams::default()).await.unwrap();
    assert!(pods.get_opt("b").await.unwrap().is_none());
    cancel.cancel();
}

#[tokio::test]
async fn shared_informers_follow_the_api() {
    let (srv, cancel) = server().await;
    let client = in_process(InProcess::new(srv));
    let informers = Informers::new(client.clone(), cancel.clone());
    let inf = informers.get::<Pod>();
    tokio::time::timeout(Duration::from_secs(10), inf.wait_synced())
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client, "default");
    pods.create(&PostParams::default(), &pod("w"))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while inf.get("default/w").is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "informer never saw the pod"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    pods.delete("w", &DeleteParams::default()).await.unwrap();
    while inf.get("default/w").is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "informer never saw the delete"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cancel.cancel();
}
