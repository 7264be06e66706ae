//! Small helpers the controllers share: running a queue until cancelled, pod and node
//! predicates as upstream's helpers define them, and mapping the kinds registry to kube-rs.

use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use ferrokube_api::resources::ResourceInfo;
use ferrokube_client::{Action, WorkQueue};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::core::ApiResource;
use tokio_util::sync::CancellationToken;

pub use crate::error::{Error, Result};

/// Whether an API error is a 404.
pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// Whether an API error is a 409 (conflict or already exists).
pub fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

/// Runs `workers` workers on `queue` until `cancel` fires.
pub async fn run_queue<K, F, Fut>(
    queue: Arc<WorkQueue<K>>,
    workers: usize,
    cancel: CancellationToken,
    reconcile: F,
) where
    K: Clone + Eq + Hash + Send + Sync + std::fmt::Debug + 'static,
    F: Fn(K) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Action>> + Send + 'static,
{
    let q = queue.clone();
    tokio::spawn(async move {
        cancel.cancelled().await;
        q.shut_down();
    });
    ferrokube_client::workqueue::run_workers(queue, workers, reconcile).await;
}

/// Runs `f` every `period` until `cancel` fires (upstream's `wait.Until`).
pub async fn every<F, Fut>(period: Duration, cancel: CancellationToken, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        f().await;
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(period) => {}
        }
    }
}

/// The kube-rs description of a resource from the kinds registry.
pub fn api_resource(info: &ResourceInfo) -> ApiResource {
    ApiResource {
        group: info.group.to_string(),
        version: info.version.to_string(),
        api_version: info.api_version(),
        kind: info.kind.to_string(),
        plural: info.resource.to_string(),
    }
}

pub fn now() -> Time {
    Time(jiff::Timestamp::now())
}

/// upstream `podutil.IsPodReady`: the Ready condition is True.
pub fn is_pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

pub fn pod_phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// Succeeded or Failed.
pub fn is_pod_terminal(pod: &Pod) -> bool {
    matches!(pod_phase(pod), "Succeeded" | "Failed")
}

pub fn pod_node(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

pub fn is_being_deleted<K: kube::Resource>(o: &K) -> bool {
    o.meta().deletion_timestamp.is_some()
}

/// The status of a node condition (`Ready`, `MemoryPressure`, ...), if reported.
pub fn node_condition<'a>(
    node: &'a Node,
    type_: &str,
) -> Option<&'a k8s_openapi::api::core::v1::NodeCondition> {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == type_))
}

/// The index every pod-watching controller uses: pods by `spec.nodeName`.
pub const PODS_BY_NODE: &str = "spec.nodeName";

pub fn index_pods_by_node(pods: &ferrokube_client::Informer<Pod>) {
    pods.add_index(PODS_BY_NODE, |p: &Pod| {
        let n = pod_node(p);
        if n.is_empty() {
            Vec::new()
        } else {
            vec![n.to_string()]
        }
    });
}

/// upstream `Toleration.ToleratesTaint`.
pub fn tolerates(
    t: &k8s_openapi::api::core::v1::Toleration,
    taint: &k8s_openapi::api::core::v1::Taint,
) -> bool {
    if let Some(e) = t.effect.as_deref().filter(|e| !e.is_empty())
        && e != taint.effect
    {
        return false;
    }
    let key = t.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        _ => false,
    }
}
