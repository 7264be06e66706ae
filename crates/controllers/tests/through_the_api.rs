//! The controllers against a real API server in the same process (memory store, in-process
//! transport): what a user sees through the API when nodes, pods and volumes are driven by the
//! test as a kubelet and a scheduler would drive them.

use std::sync::Arc;
use std::time::Duration;

use ferrokube_apiserver::in_process::InProcess;
use ferrokube_apiserver::{ApiServer, Config as ServerConfig, Options};
use ferrokube_client::Informers;
use ferrokube_controllers::{Config, Context};
use ferrokube_store::memory::MemoryBackend;
use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, LimitRange, Namespace, Node, PersistentVolume, PersistentVolumeClaim,
    Pod, ResourceQuota, Service, ServiceAccount,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

struct Cluster {
    client: kube::Client,
    cancel: CancellationToken,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn fast_config() -> Config {
    Config {
        node_monitor_grace_period: Duration::from_secs(2),
        node_monitor_period: Duration::from_millis(300),
        node_startup_grace_period: Duration::from_secs(2),
        pod_gc_period: Duration::from_millis(300),
        pod_gc_quarantine: Duration::from_secs(1),
        root_ca_pem: "-----BEGIN CERTIFICATE-----\nTEST\n-----END CERTIFICATE-----\n".into(),
        local_path_dir: "/var/lib/ferrokube/storage".into(),
        ..Default::default()
    }
}

async fn cluster_with(config: Config) -> Cluster {
    let cancel = CancellationToken::new();
    let server_config = ServerConfig {
        advertise_address: "127.0.0.1:6443".into(),
        serving_cert_pem: String::new(),
        serving_key_pem: String::new(),
        client_ca_pem: String::new(),
        compaction_interval: Duration::from_secs(300),
    };
    let mut options = Options::default();
    options.admission.verify_service_accounts = true;
    let srv = ApiServer::with_options(
        server_config,
        options,
        Arc::new(MemoryBackend::new()),
        cancel.clone(),
    )
    .await
    .expect("API server");
    let client = ferrokube_client::in_process(InProcess::new(srv));
    let ctx = Arc::new(Context::new(
        client.clone(),
        Informers::new(client.clone(), cancel.clone()),
        cancel.clone(),
        config,
    ));
    tokio::spawn(async move { ferrokube_controllers::run(ctx, &["*".to_string()]).await });
    Cluster { client, cancel }
}

async fn cluster() -> Cluster {
    cluster_with(fast_config()).await
}

fn obj<K: DeserializeOwned>(v: Value) -> K {
    serde_json::from_value(v).expect("test object")
}

/// Polls `f` until it returns Some, for at most `secs` seconds.
async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn gone<K>(api: &Api<K>, name: &str) -> bool
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    api.get_opt(name).await.expect("get").is_none()
}

fn node(name: &str) -> Node {
    obj(json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
            "message": "kubelet is posting ready status",
            "lastHeartbeatTime": jiff::Timestamp::now(), "lastTransitionTime": jiff::Timestamp::now()}]}
    }))
}

/// Reports the node Ready with a fresh heartbeat, as its kubelet would.
async fn heartbeat(nodes: &Api<Node>, name: &str) {
    let now = jiff::Timestamp::now().to_string();
    let patch = json!({"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
        "message": "kubelet is posting ready status", "lastHeartbeatTime": now, "lastTransitionTime": now}]}});
    let _ = nodes
        .patch_status(name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await;
}

/// Starts a kubelet-like heartbeat loop for a node; dropping the token stops it.
fn keep_alive(client: &kube::Client, name: &str) -> CancellationToken {
    let stop = CancellationToken::new();
    let s = stop.clone();
    let nodes: Api<Node> = Api::all(client.clone());
    let name = name.to_string();
    tokio::spawn(async move {
        loop {
            heartbeat(&nodes, &name).await;
            tokio::select! {
                _ = s.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(300)) => {}
            }
        }
    });
    stop
}

/// Marks a pod Running with an IP and the given readiness, as its kubelet would.
async fn run_pod(pods: &Api<Pod>, name: &str, ip: &str, ready: bool) {
    let now = jiff::Timestamp::now().to_string();
    let status = if ready { "True" } else { "False" };
    let patch = json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": status, "lastTransitionTime": now},
                       {"type": "ContainersReady", "status": status, "lastTransitionTime": now}]}});
    pods.patch_status(name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .expect("pod status");
}

fn pod(name: &str, labels: Value, node: Option<&str>) -> Pod {
    let mut v = json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "web", "image": "busybox",
                                 "ports": [{"name": "http", "containerPort": 8080}]}]}
    });
    if let Some(n) = node {
        v["spec"]["nodeName"] = json!(n);
    }
    obj(v)
}

async fn namespace(client: &kube::Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    api.create(
        &PostParams::default(),
        &obj(json!({"metadata": {"name": name}})),
    )
    .await
    .expect("namespace");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_collection_cascades_in_background_foreground_and_orphan_modes() {
    let c = cluster().await;
    let cms: Api<ConfigMap> = Api::namespaced(c.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let owned_by = |o: &ConfigMap, block: bool| {
        json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": o.metadata.name,
                "uid": o.metadata.uid, "controller": true, "blockOwnerDeletion": block}])
    };
    for (mode, policy) in [
        ("background", DeleteParams::background()),
        ("foreground", DeleteParams::foreground()),
        ("orphan", DeleteParams::orphan()),
    ] {
        let owner = cms
            .create(
                &PostParams::default(),
                &obj(json!({"metadata": {"name": format!("{mode}-owner")}})),
            )
            .await
            .unwrap();
        cms.create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": format!("{mode}-cm"), "ownerReferences": owned_by(&owner, true)}})),
        )
        .await
        .unwrap();
        let mut p = pod(&format!("{mode}-pod"), json!({}), None);
        p.metadata.owner_references = Some(obj(owned_by(&owner, false)));
        pods.create(&PostParams::default(), &p).await.unwrap();
        cms.delete(&format!("{mode}-owner"), &policy).await.unwrap();
        eventually(20, &format!("{mode}: the owner is gone"), || async {
            gone(&cms, &format!("{mode}-owner")).await.then_some(())
        })
        .await;
        if mode == "orphan" {
            let dep = cms.get(&format!("{mode}-cm")).await.unwrap();
            assert!(
                dep.metadata.owner_references.unwrap_or_default().is_empty(),
                "orphaned dependents lose their reference"
            );
            let p = pods.get(&format!("{mode}-pod")).await.unwrap();
            assert!(p.metadata.owner_references.unwrap_or_default().is_empty());
        } else {
            eventually(
                20,
                &format!("{mode}: the dependents are collected"),
                || async {
                    (gone(&cms, &format!("{mode}-cm")).await
                        && gone(&pods, &format!("{mode}-pod")).await)
                        .then_some(())
                },
            )
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreground_deletion_waits_for_blocking_dependents_and_missing_owners_are_collected() {
    let c = cluster().await;
    let cms: Api<ConfigMap> = Api::namespaced(c.client.clone(), "default");
    let owner = cms
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "owner"}})),
        )
        .await
        .unwrap();
    let refs = json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
                       "uid": owner.metadata.uid, "blockOwnerDeletion": true}]);
    cms.create(
        &PostParams::default(),
        &obj(json!({"metadata": {"name": "held", "ownerReferences": refs, "finalizers": ["example.com/hold"]}})),
    )
    .await
    .unwrap();
    cms.delete("owner", &DeleteParams::foreground())
        .await
        .unwrap();
    // The dependent is being deleted but held by its finalizer; the owner waits for it.
    eventually(20, "the dependent is being deleted", || async {
        cms.get("held")
            .await
            .ok()?
            .metadata
            .deletion_timestamp
            .map(|_| ())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let waiting = cms.get("owner").await.expect("owner still there");
    assert_eq!(
        waiting.metadata.finalizers,
        Some(vec!["foregroundDeletion".to_string()])
    );
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    eventually(20, "the owner goes once its dependent went", || async {
        gone(&cms, "owner").await.then_some(())
    })
    .await;

    // A dependent whose only owner never existed is collected; one with a live owner too
    // only loses the dangling reference.
    let alive = cms
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "alive"}})),
        )
        .await
        .unwrap();
    let ghost = json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "ghost", "uid": "00000000-0000-0000-0000-000000000000"});
    cms.create(
        &PostParams::default(),
        &obj(json!({"metadata": {"name": "orphaned", "ownerReferences": [ghost]}})),
    )
    .await
    .unwrap();
    cms.create(
        &PostParams::default(),
        &obj(json!({"metadata": {"name": "half", "ownerReferences": [ghost,
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "alive", "uid": alive.metadata.uid}]}})),
    )
    .await
    .unwrap();
    eventually(
        20,
        "the dependent of a missing owner is collected",
        || async { gone(&cms, "orphaned").await.then_some(()) },
    )
    .await;
    eventually(20, "the dangling reference is dropped", || async {
        let h = cms.get("half").await.ok()?;
        let refs = h.metadata.owner_references.unwrap_or_default();
        (refs.len() == 1 && refs[0].name == "alive").then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_namespace_removes_everything_inside_then_the_namespace() {
    let c = cluster().await;
    namespace(&c.client, "doomed").await;
    let cms: Api<ConfigMap> = Api::namespaced(c.client.clone(), "doomed");
    let sas: Api<ServiceAccount> = Api::namespaced(c.client.clone(), "doomed");
    eventually(
        20,
        "the default service account and root CA map exist",
        || async {
            (sas.get_opt("default").await.ok()??.metadata.name.is_some()
                && cms.get_opt("kube-root-ca.crt").await.ok()?.is_some())
            .then_some(())
        },
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "doomed");
    let created = pods
        .create(&PostParams::default(), &pod("p", json!({"app": "x"}), None))
        .await
        .unwrap();
    assert_eq!(
        created.spec.unwrap().service_account_name.as_deref(),
        Some("default")
    );
    let svcs: Api<Service> = Api::namespaced(c.client.clone(), "doomed");
    svcs.create(
        &PostParams::default(),
        &obj(json!({"metadata": {"name": "s"}, "spec": {"selector": {"app": "x"}, "ports": [{"port": 80}]}})),
    )
    .await
    .unwrap();
    cms.create(
        &PostParams::default(),
        &obj(json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}})),
    )
    .await
    .unwrap();
    let nss: Api<Namespace> = Api::all(c.client.clone());
    nss.delete("doomed", &DeleteParams::background())
        .await
        .unwrap();
    let ns = eventually(20, "the namespace reports what keeps it", || async {
        let ns = nss.get("doomed").await.ok()?;
        let conds = ns.status.as_ref()?.conditions.clone()?;
        let fin = conds
            .iter()
            .find(|c| c.type_ == "NamespaceFinalizersRemaining")?;
        (fin.status == "True").then_some(ns)
    })
    .await;
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Terminating"));
    let conds = nss
        .get("doomed")
        .await
        .unwrap()
        .status
        .unwrap()
        .conditions
        .unwrap();
    let fin = conds
        .iter()
        .find(|c| c.type_ == "NamespaceFinalizersRemaining")
        .unwrap();
    assert_eq!(
        fin.message.as_deref(),
        Some(
            "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
        )
    );
    assert!(gone(&pods, "p").await, "the unscheduled pod is gone");
    assert!(gone(&svcs, "s").await);
    let refused = cms
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "late"}})),
        )
        .await
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("because it is being terminated"),
        "{refused}"
    );
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    eventually(20, "the namespace is gone", || async {
        gone(&nss, "doomed").await.then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_stops_heartbeating_is_tainted_and_its_pods_are_evicted_after_their_toleration()
{
    let c = cluster().await;
    let nodes: Api<Node> = Api::all(c.client.clone());
    nodes
        .create(&PostParams::default(), &node("n1"))
        .await
        .unwrap();
    nodes
        .create(&PostParams::default(), &node("n2"))
        .await
        .unwrap();
    let stop_n1 = keep_alive(&c.client, "n1");
    let _keep_n2 = keep_alive(&c.client, "n2");
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let mut short = pod("short", json!({"app": "w"}), Some("n1"));
    short.spec.as_mut().unwrap().tolerations = Some(obj(json!([
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 3}
    ])));
    let created = pods.create(&PostParams::default(), &short).await.unwrap();
    let tolerations = created.spec.unwrap().tolerations.unwrap();
    assert!(
        tolerations
            .iter()
            .any(|t| t.key.as_deref() == Some("node.kubernetes.io/not-ready")
                && t.toleration_seconds == Some(300)),
        "DefaultTolerationSeconds adds the not-ready toleration: {tolerations:?}"
    );
    pods.create(
        &PostParams::default(),
        &pod("patient", json!({"app": "w"}), Some("n1")),
    )
    .await
    .unwrap();
    pods.create(
        &PostParams::default(),
        &pod("elsewhere", json!({"app": "w"}), Some("n2")),
    )
    .await
    .unwrap();
    for (p, ip) in [
        ("short", "10.244.0.2"),
        ("patient", "10.244.0.3"),
        ("elsewhere", "10.244.1.2"),
    ] {
        run_pod(&pods, p, ip, true).await;
    }
    // Healthy nodes lose the not-ready taint new nodes start with and get pod CIDRs.
    eventually(
        20,
        "healthy nodes are untainted and have pod CIDRs",
        || async {
            let n = nodes.get("n1").await.ok()?;
            let spec = n.spec?;
            (spec.taints.unwrap_or_default().is_empty() && spec.pod_cidr.is_some()).then_some(())
        },
    )
    .await;
    let mut cidrs: Vec<String> = nodes
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.spec?.pod_cidr)
        .collect();
    cidrs.sort();
    assert_eq!(cidrs, vec!["10.244.0.0/24", "10.244.1.0/24"]);

    stop_n1.cancel();
    let n1 = eventually(20, "n1 is unreachable and tainted", || async {
        let n = nodes.get("n1").await.ok()?;
        let taints = n.spec.as_ref()?.taints.clone()?;
        taints
            .iter()
            .any(|t| t.key == "node.kubernetes.io/unreachable" && t.effect == "NoExecute")
            .then_some(n)
    })
    .await;
    let ready = n1
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.status, "Unknown");
    assert_eq!(ready.reason.as_deref(), Some("NodeStatusUnknown"));
    assert_eq!(
        ready.message.as_deref(),
        Some("Kubelet stopped posting node status.")
    );
    let taints = n1.spec.unwrap().taints.unwrap();
    assert!(
        taints
            .iter()
            .any(|t| t.key == "node.kubernetes.io/unreachable" && t.effect == "NoSchedule")
    );
    // The pods of the node are no longer ready.
    eventually(20, "pods of the lost node are marked not ready", || async {
        let p = pods.get("patient").await.ok()?;
        let ready = p
            .status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "Ready")?;
        (ready.status == "False").then_some(())
    })
    .await;
    let evicted = eventually(20, "the pod with a short toleration is evicted", || async {
        let p = pods.get("short").await.ok()?;
        p.metadata.deletion_timestamp.is_some().then_some(p)
    })
    .await;
    let cond = evicted
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "DisruptionTarget")
        .expect("DisruptionTarget condition");
    assert_eq!(cond.reason.as_deref(), Some("DeletionByTaintManager"));
    let patient = pods.get("patient").await.unwrap();
    assert!(
        patient.metadata.deletion_timestamp.is_none(),
        "300 s have not passed"
    );
    assert!(
        pods.get("elsewhere")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_none()
    );
    let events: Api<k8s_openapi::api::core::v1::Event> =
        Api::namespaced(c.client.clone(), "default");
    eventually(20, "the eviction is reported", || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items
            .iter()
            .any(|e| {
                e.reason.as_deref() == Some("TaintManagerEviction")
                    && e.message.as_deref() == Some("Marking for deletion Pod default/short")
            })
            .then_some(())
    })
    .await;

    // A deleted node's pods are garbage collected.
    nodes.delete("n1", &DeleteParams::default()).await.unwrap();
    eventually(20, "pods of the deleted node are collected", || async {
        (gone(&pods, "patient").await && gone(&pods, "short").await).then_some(())
    })
    .await;
    assert!(pods.get_opt("elsewhere").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_and_slices_follow_pod_readiness_and_named_ports() {
    let c = cluster().await;
    let svcs: Api<Service> = Api::namespaced(c.client.clone(), "default");
    svcs.create(
        &PostParams::default(),
        &obj(json!({"metadata": {"name": "web", "labels": {"tier": "front"}},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}})),
    )
    .await
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    for (n, ip) in [("a", "10.244.0.10"), ("b", "10.244.0.11")] {
        pods.create(
            &PostParams::default(),
            &pod(n, json!({"app": "web"}), Some("n1")),
        )
        .await
        .unwrap();
        run_pod(&pods, n, ip, n == "a").await;
    }
    let eps: Api<Endpoints> = Api::namespaced(c.client.clone(), "default");
    let ep = eventually(
        20,
        "endpoints list a ready and a not-ready address",
        || async {
            let e = eps.get("web").await.ok()?;
            let s = e.subsets.clone()?.into_iter().next()?;
            (s.addresses.as_ref()?.len() == 1 && s.not_ready_addresses.as_ref()?.len() == 1)
                .then_some(e)
        },
    )
    .await;
    let s = &ep.subsets.unwrap()[0];
    assert_eq!(s.addresses.as_ref().unwrap()[0].ip, "10.244.0.10");
    assert_eq!(
        s.ports.as_ref().unwrap()[0].port,
        8080,
        "the named target port resolves"
    );
    assert_eq!(ep.metadata.labels.unwrap()["tier"], "front");
    run_pod(&pods, "b", "10.244.0.11", true).await;
    eventually(20, "both addresses are ready", || async {
        let e = eps.get("web").await.ok()?;
        let s = e.subsets?.into_iter().next()?;
        (s.addresses?.len() == 2 && s.not_ready_addresses.is_none()).then_some(())
    })
    .await;
    let slices: Api<EndpointSlice> = Api::namespaced(c.client.clone(), "default");
    let slice = eventually(20, "one slice holds both endpoints", || async {
        let list = slices
            .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
            .await
            .ok()?;
        let s = list.items.into_iter().next()?;
        (s.endpoints.len() == 2
            && s.endpoints
                .iter()
                .all(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true)))
        .then_some(s)
    })
    .await;
    let labels = slice.metadata.labels.unwrap();
    assert_eq!(
        labels["endpointslice.kubernetes.io/managed-by"],
        "endpointslice-controller.k8s.io"
    );
    assert_eq!(slice.ports.unwrap()[0].port, Some(8080));
    assert_eq!(slice.metadata.owner_references.unwrap()[0].kind, "Service");
    pods.delete("a", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    eventually(20, "a deleted pod leaves the endpoints", || async {
        let e = eps.get("web").await.ok()?;
        let s = e.subsets?.into_iter().next()?;
        (s.addresses?.len() == 1).then_some(())
    })
    .await;
    svcs.delete("web", &DeleteParams::default()).await.unwrap();
    eventually(20, "endpoints and slices go with the service", || async {
        let none_left = slices
            .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
            .await
            .ok()?
            .items
            .is_empty();
        (gone(&eps, "web").await && none_left).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_ips_and_node_ports_are_allocated_refused_when_taken_and_released() {
    let c = cluster().await;
    let svcs: Api<Service> = Api::namespaced(c.client.clone(), "default");
    let kube = eventually(20, "the kubernetes Service exists", || async {
        svcs.get_opt("kubernetes").await.ok()?
    })
    .await;
    assert_eq!(
        kube.spec.as_ref().unwrap().cluster_ip.as_deref(),
        Some("10.96.0.1")
    );
    let eps: Api<Endpoints> = Api::namespaced(c.client.clone(), "default");
    let ep = eventually(
        20,
        "the kubernetes endpoints name the API server",
        || async { eps.get_opt("kubernetes").await.ok()? },
    )
    .await;
    let s = &ep.subsets.unwrap()[0];
    assert_eq!(s.addresses.as_ref().unwrap()[0].ip, "127.0.0.1");
    assert_eq!(s.ports.as_ref().unwrap()[0].port, 6443);

    let dns: Service = obj(json!({"metadata": {"name": "dns"},
        "spec": {"clusterIP": "10.96.0.10", "selector": {"k8s-app": "dns"}, "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]}}));
    svcs.create(&PostParams::default(), &dns).await.unwrap();
    let mut again = dns.clone();
    again.metadata.name = Some("dns2".into());
    let err = svcs
        .create(&PostParams::default(), &again)
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("{err}")
    };
    assert_eq!(status.code, 422);
    assert_eq!(
        status.message,
        r#"Service "dns2" is invalid: spec.clusterIPs: Invalid value: []string{"10.96.0.10"}: failed to allocate IP 10.96.0.10: provided IP is already allocated"#
    );
    let np = svcs
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "np"}, "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}})),
        )
        .await
        .unwrap();
    assert_eq!(
        np.spec.as_ref().unwrap().ports.as_ref().unwrap()[0].node_port,
        Some(30080)
    );
    let lb = svcs
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer", "ports": [{"port": 8000, "targetPort": 80}]}})),
        )
        .await
        .unwrap();
    let lb_port = lb.spec.as_ref().unwrap().ports.as_ref().unwrap()[0]
        .node_port
        .unwrap();
    assert!((30000..=32767).contains(&lb_port));
    let err = svcs
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "np2"}, "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}})),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(
            "spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated"
        ),
        "{err}"
    );
    let headless = svcs
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "h"}, "spec": {"clusterIP": "None", "selector": {"a": "b"}, "ports": [{"port": 80}]}})),
        )
        .await
        .unwrap();
    assert_eq!(
        headless.spec.unwrap().cluster_ips,
        Some(vec!["None".to_string()])
    );
    svcs.delete("dns", &DeleteParams::default()).await.unwrap();
    svcs.delete("np", &DeleteParams::default()).await.unwrap();
    svcs.create(&PostParams::default(), &again)
        .await
        .expect("the address was released");
    svcs.create(
        &PostParams::default(),
        &obj(json!({"metadata": {"name": "np3"}, "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}})),
    )
    .await
    .expect("the node port was released");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeds_five_gig_volume_binds_a_three_gig_claim_and_is_released_on_delete() {
    let c = cluster_with(Config {
        default_storage_class: false,
        ..fast_config()
    })
    .await;
    let pvs: Api<PersistentVolume> = Api::all(c.client.clone());
    pvs.create(
        &PostParams::default(),
        &obj(json!({"metadata": {"name": "nfspv001"}, "spec": {"capacity": {"storage": "5Gi"},
            "accessModes": ["ReadWriteMany"], "nfs": {"path": "/mnt/share/nfs/k8s", "server": "172.25.0.8"}}})),
    )
    .await
    .unwrap();
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(c.client.clone(), "default");
    pvcs.create(
        &PostParams::default(),
        &obj(
            json!({"metadata": {"name": "myclaim001"}, "spec": {"accessModes": ["ReadWriteMany"],
            "resources": {"requests": {"storage": "3Gi"}}}}),
        ),
    )
    .await
    .unwrap();
    let claim = eventually(20, "the claim is bound", || async {
        let c = pvcs.get("myclaim001").await.ok()?;
        (c.status.as_ref()?.phase.as_deref() == Some("Bound")).then_some(c)
    })
    .await;
    assert_eq!(claim.spec.unwrap().volume_name.as_deref(), Some("nfspv001"));
    let status = claim.status.unwrap();
    assert_eq!(status.capacity.unwrap()["storage"].0, "5Gi");
    assert_eq!(status.access_modes, Some(vec!["ReadWriteMany".to_string()]));
    let pv = eventually(20, "the volume is bound", || async {
        let v = pvs.get("nfspv001").await.ok()?;
        (v.status.as_ref()?.phase.as_deref() == Some("Bound")).then_some(v)
    })
    .await;
    let r = pv.spec.unwrap().claim_ref.unwrap();
    assert_eq!(
        (r.namespace.as_deref(), r.name.as_deref()),
        (Some("default"), Some("myclaim001"))
    );
    assert_eq!(
        pv.metadata.annotations.unwrap()["pv.kubernetes.io/bound-by-controller"],
        "yes"
    );
    pvcs.delete("myclaim001", &DeleteParams::default())
        .await
        .unwrap();
    eventually(20, "the retained volume is released", || async {
        let v = pvs.get("nfspv001").await.ok()?;
        (v.status?.phase.as_deref() == Some("Released")).then_some(())
    })
    .await;
    // Delete without a provisioner, and Recycle, fail as upstream's do without plugins.
    for (name, policy) in [("del", "Delete"), ("rec", "Recycle")] {
        pvs.create(
            &PostParams::default(),
            &obj(
                json!({"metadata": {"name": name}, "spec": {"capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteOnce"], "persistentVolumeReclaimPolicy": policy,
                "hostPath": {"path": format!("/tmp/{name}")},
                "claimRef": {"namespace": "default", "name": format!("claim-{name}")}}}),
            ),
        )
        .await
        .unwrap();
        pvcs.create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": format!("claim-{name}")}, "spec": {"accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}}}})),
        )
        .await
        .unwrap();
        eventually(20, "the pre-bound claim binds", || async {
            let c = pvcs.get(&format!("claim-{name}")).await.ok()?;
            (c.status?.phase.as_deref() == Some("Bound")).then_some(())
        })
        .await;
        pvcs.delete(&format!("claim-{name}"), &DeleteParams::default())
            .await
            .unwrap();
        let failed = eventually(30, "the volume fails to be reclaimed", || async {
            let v = pvs.get(name).await.ok()?;
            (v.status.as_ref()?.phase.as_deref() == Some("Failed")).then_some(v)
        })
        .await;
        let msg = failed.status.unwrap().message.unwrap_or_default();
        if policy == "Recycle" {
            assert_eq!(msg, "No recycler plugin found for the volume!");
        } else {
            assert!(msg.contains("no deletable volume plugin matched"), "{msg}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_path_provisions_a_pinned_volume_once_the_scheduler_picks_a_node() {
    let c = cluster().await;
    let classes: Api<StorageClass> = Api::all(c.client.clone());
    let class = eventually(20, "the default StorageClass exists", || async {
        classes.get_opt("local-path").await.ok()?
    })
    .await;
    assert_eq!(class.provisioner, "rancher.io/local-path");
    assert_eq!(
        class.volume_binding_mode.as_deref(),
        Some("WaitForFirstConsumer")
    );
    let nodes: Api<Node> = Api::all(c.client.clone());
    nodes
        .create(&PostParams::default(), &node("worker-1"))
        .await
        .unwrap();
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(c.client.clone(), "default");
    let created = pvcs
        .create(
            &PostParams::default(),
            &obj(
                json!({"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "2Gi"}}}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        created.spec.as_ref().unwrap().storage_class_name.as_deref(),
        Some("local-path"),
        "DefaultStorageClass fills in the class"
    );
    assert_eq!(
        created.metadata.finalizers,
        Some(vec!["kubernetes.io/pvc-protection".to_string()])
    );
    let events: Api<k8s_openapi::api::core::v1::Event> =
        Api::namespaced(c.client.clone(), "default");
    let has_event = |reason: &'static str| {
        let events = events.clone();
        async move {
            let list = events.list(&ListParams::default()).await.ok()?;
            list.items
                .iter()
                .any(|e| {
                    e.reason.as_deref() == Some(reason)
                        && e.involved_object.name.as_deref() == Some("data")
                })
                .then_some(())
        }
    };
    eventually(20, "the claim waits for its first consumer", || {
        has_event("WaitForFirstConsumer")
    })
    .await;
    pvcs.patch(
        "data",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"volume.kubernetes.io/selected-node": "worker-1"}}})),
    )
    .await
    .unwrap();
    let claim = eventually(20, "the provisioned volume is bound", || async {
        let c = pvcs.get("data").await.ok()?;
        (c.status.as_ref()?.phase.as_deref() == Some("Bound")).then_some(c)
    })
    .await;
    let uid = created.metadata.uid.unwrap();
    let pv_name = format!("pvc-{uid}");
    assert_eq!(
        claim.spec.unwrap().volume_name.as_deref(),
        Some(pv_name.as_str())
    );
    let pvs: Api<PersistentVolume> = Api::all(c.client.clone());
    let pv = pvs.get(&pv_name).await.unwrap();
    let spec = pv.spec.unwrap();
    let hp = spec.host_path.unwrap();
    assert_eq!(
        hp.path,
        format!("/var/lib/ferrokube/storage/pvc-{uid}_default_data")
    );
    assert_eq!(hp.type_.as_deref(), Some("DirectoryOrCreate"));
    let term = &spec
        .node_affinity
        .unwrap()
        .required
        .unwrap()
        .node_selector_terms[0];
    assert_eq!(
        term.match_expressions.as_ref().unwrap()[0].values,
        Some(vec!["worker-1".to_string()])
    );
    assert_eq!(
        pv.metadata.annotations.unwrap()["pv.kubernetes.io/provisioned-by"],
        "rancher.io/local-path"
    );
    eventually(20, "provisioning is reported", || {
        has_event("ProvisioningSucceeded")
    })
    .await;
    eventually(20, "the hand-over is reported", || {
        has_event("ExternalProvisioning")
    })
    .await;

    // A claim in use by a running pod is kept until the pod finishes.
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    let mut user = pod("user", json!({}), Some("worker-1"));
    user.spec.as_mut().unwrap().volumes = Some(obj(
        json!([{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}]),
    ));
    pods.create(&PostParams::default(), &user).await.unwrap();
    run_pod(&pods, "user", "10.244.0.5", true).await;
    pvcs.delete("data", &DeleteParams::default()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        pvcs.get("data")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    );
    pods.delete("user", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    eventually(30, "the claim and its Delete-policy volume go", || async {
        (gone(&pvcs, "data").await && gone(&pvs, &pv_name).await).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evictions_respect_the_disruption_budget() {
    let c = cluster().await;
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    for (i, n) in ["p0", "p1", "p2"].iter().enumerate() {
        pods.create(
            &PostParams::default(),
            &pod(n, json!({"app": "db"}), Some("n1")),
        )
        .await
        .unwrap();
        run_pod(&pods, n, &format!("10.244.0.{}", 20 + i), i < 2).await;
    }
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(c.client.clone(), "default");
    pdbs.create(
        &PostParams::default(),
        &obj(json!({"metadata": {"name": "db"}, "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "db"}}}})),
    )
    .await
    .unwrap();
    let status = eventually(20, "the budget is computed", || async {
        let b = pdbs.get("db").await.ok()?;
        let s = b.status?;
        (s.observed_generation == Some(1)).then_some(s)
    })
    .await;
    assert_eq!(
        (
            status.current_healthy,
            status.desired_healthy,
            status.expected_pods,
            status.disruptions_allowed
        ),
        (2, 2, 3, 0)
    );
    let cond = &status.conditions.unwrap()[0];
    assert_eq!(
        (
            cond.type_.as_str(),
            cond.status.as_str(),
            cond.reason.as_str()
        ),
        ("DisruptionAllowed", "False", "InsufficientPods")
    );
    let evict = |name: &'static str| {
        let client = c.client.clone();
        async move {
            let req =
                http::Request::post(format!("/api/v1/namespaces/default/pods/{name}/eviction"))
                    .header("content-type", "application/json")
                    .body(
                        serde_json::to_vec(&json!({"apiVersion": "policy/v1", "kind": "Eviction",
                    "metadata": {"name": name, "namespace": "default"}}))
                        .unwrap(),
                    )
                    .unwrap();
            client.request::<Value>(req).await
        }
    };
    let err = evict("p0").await.unwrap_err();
    let kube::Error::Api(s) = err else {
        panic!("{err}")
    };
    assert_eq!(s.code, 429);
    assert_eq!(
        s.message,
        "Cannot evict pod as it would violate the pod's disruption budget."
    );
    run_pod(&pods, "p2", "10.244.0.22", true).await;
    eventually(20, "one disruption is allowed", || async {
        let b = pdbs.get("db").await.ok()?;
        (b.status?.disruptions_allowed == 1).then_some(())
    })
    .await;
    evict("p0").await.expect("eviction within budget");
    assert!(
        pods.get("p0")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    );
    let err = evict("p1").await.unwrap_err();
    assert!(err.to_string().contains("disruption budget"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_track_usage_and_refuse_what_exceeds_them_and_limit_ranges_default_and_bound() {
    let c = cluster().await;
    namespace(&c.client, "team").await;
    let quotas: Api<ResourceQuota> = Api::namespaced(c.client.clone(), "team");
    quotas
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "compute"}, "spec": {"hard": {"pods": "2", "requests.cpu": "1", "count/configmaps": "10"}}})),
        )
        .await
        .unwrap();
    eventually(20, "the quota's usage is known", || async {
        let q = quotas.get("compute").await.ok()?;
        let used = q.status?.used?;
        (used.get("pods")?.0 == "0").then_some(())
    })
    .await;
    let limits: Api<LimitRange> = Api::namespaced(c.client.clone(), "team");
    limits
        .create(
            &PostParams::default(),
            &obj(
                json!({"metadata": {"name": "defaults"}, "spec": {"limits": [{"type": "Container",
                "default": {"cpu": "500m", "memory": "128Mi"}, "defaultRequest": {"cpu": "300m"},
                "max": {"cpu": "1"}}]}}),
            ),
        )
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "team");
    // Give the admission cache a moment to see the LimitRange.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let p = pods
        .create(&PostParams::default(), &pod("a", json!({}), None))
        .await
        .unwrap();
    let res = p.spec.unwrap().containers[0].resources.clone().unwrap();
    assert_eq!(res.requests.unwrap()["cpu"].0, "300m");
    assert_eq!(res.limits.unwrap()["memory"].0, "128Mi");
    assert_eq!(
        p.metadata.annotations.unwrap()["kubernetes.io/limit-ranger"],
        "LimitRanger plugin set: cpu, memory request for container web; cpu, memory limit for container web"
    );
    let mut big = pod("big", json!({}), None);
    big.spec.as_mut().unwrap().containers[0].resources = Some(obj(
        json!({"limits": {"cpu": "2"}, "requests": {"cpu": "200m"}}),
    ));
    let err = pods.create(&PostParams::default(), &big).await.unwrap_err();
    assert!(
        err.to_string().contains(
            r#"pods "big" is forbidden: maximum cpu usage per Container is 1, but limit is 2"#
        ),
        "{err}"
    );
    pods.create(&PostParams::default(), &pod("b", json!({}), None))
        .await
        .unwrap();
    let err = pods
        .create(&PostParams::default(), &pod("c", json!({}), None))
        .await
        .unwrap_err();
    let kube::Error::Api(s) = err else {
        panic!("{err}")
    };
    assert_eq!(s.code, 403);
    assert_eq!(
        s.message,
        r#"pods "c" is forbidden: exceeded quota: compute, requested: pods=1, used: pods=2, limited: pods=2"#
    );
    eventually(20, "the controller agrees with admission", || async {
        let q = quotas.get("compute").await.ok()?;
        let used = q.status?.used?;
        (used.get("pods")?.0 == "2" && used.get("requests.cpu")?.0 == "600m").then_some(())
    })
    .await;
    pods.delete("a", &DeleteParams::default()).await.unwrap();
    eventually(20, "deleting a pod gives its share back", || async {
        let q = quotas.get("compute").await.ok()?;
        (q.status?.used?.get("pods")?.0 == "1").then_some(())
    })
    .await;
}
