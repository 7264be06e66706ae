//! Two API servers on one store, as in an HA control plane: Services created through either
//! never share a ClusterIP, and the `kubernetes` Service lists both servers.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use ferrokube_apiserver::in_process::InProcess;
use ferrokube_apiserver::service_alloc::ServiceNetwork;
use ferrokube_apiserver::{ApiServer, Config, Options};
use ferrokube_store::Backend;
use ferrokube_store::memory::MemoryBackend;
use k8s_openapi::api::core::v1::{Endpoints, Service};
use kube::api::{Api, PostParams};
use tokio_util::sync::CancellationToken;

async fn server(
    store: Arc<dyn Backend>,
    address: &str,
    cancel: &CancellationToken,
) -> kube::Client {
    let config = Config {
        advertise_address: address.into(),
        serving_cert_pem: String::new(),
        serving_key_pem: String::new(),
        client_ca_pem: String::new(),
        compaction_interval: Duration::from_secs(300),
    };
    let options = Options {
        // A small range, so that the two servers compete for the same few addresses.
        service_network: ServiceNetwork {
            cluster_ip_range: "10.96.0.0/26".into(),
            ..Default::default()
        },
        ..Default::default()
    };
    let srv = ApiServer::with_options(config, options, store, cancel.clone())
        .await
        .unwrap();
    ferrokube_client::in_process(InProcess::new(srv))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_api_servers_on_one_store_never_hand_out_the_same_cluster_ip() {
    let cancel = CancellationToken::new();
    let store: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let a = server(store.clone(), "10.0.0.1:6443", &cancel).await;
    let b = server(store, "10.0.0.2:6443", &cancel).await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let client = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let svcs: Api<Service> = Api::namespaced(client, "default");
            let svc: Service = serde_json::from_value(serde_json::json!({
                "metadata": {"name": format!("s{i}")},
                "spec": {"ports": [{"port": 80}], "selector": {"app": "x"}}
            }))
            .unwrap();
            svcs.create(&PostParams::default(), &svc).await
        }));
    }
    let mut ips = HashSet::new();
    for t in tasks {
        let svc = t.await.unwrap().expect("create");
        let ip = svc.spec.unwrap().cluster_ip.unwrap();
        assert!(ips.insert(ip.clone()), "{ip} handed out twice");
    }
    assert_eq!(ips.len(), 40);

    let eps: Api<Endpoints> = Api::namespaced(a.clone(), "default");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let addrs: Vec<String> = eps
            .get_opt("kubernetes")
            .await
            .unwrap()
            .and_then(|e| e.subsets)
            .and_then(|s| s.into_iter().next())
            .and_then(|s| s.addresses)
            .unwrap_or_default()
            .into_iter()
            .map(|a| a.ip)
            .collect();
        if addrs == ["10.0.0.1", "10.0.0.2"] {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "kubernetes endpoints never listed both servers: {addrs:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let kube: Api<Service> = Api::namespaced(b, "default");
    let svc = kube.get("kubernetes").await.unwrap();
    assert_eq!(svc.spec.unwrap().cluster_ip.as_deref(), Some("10.96.0.1"));
    cancel.cancel();
}
