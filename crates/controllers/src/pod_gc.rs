//! The pod garbage collector (upstream `podgc`), every 20 seconds:
//!
//! - pods bound to a node that no longer exists (absent from the cache for the quarantine
//!   time, then confirmed absent by the API) are marked Failed with the `DisruptionTarget`
//!   condition (`DeletionByPodGC`) and deleted at once;
//! - terminating pods that were never scheduled are deleted at once;
//! - terminating pods on a not-ready node with the `node.kubernetes.io/out-of-service` taint are
//!   deleted at once;
//! - past `--terminated-pod-gc-threshold` finished pods, the oldest are deleted.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use ferrokube_client::Informer;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::Context;
use crate::util::{self, Result};

pub const NAME: &str = "podgc";
const OUT_OF_SERVICE: &str = "node.kubernetes.io/out-of-service";

pub fn start(ctx: Arc<Context>) -> BoxFuture<'static, ()> {
    Box::pin(run(ctx))
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub period: Duration,
    pub quarantine: Duration,
    pub terminated_threshold: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            period: Duration::from_secs(20),
            quarantine: Duration::from_secs(40),
            terminated_threshold: 12500,
        }
    }
}

/// Why a pod is collected.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Reason {
    Orphaned,
    UnscheduledTerminating,
    OutOfService,
    Terminated,
}

pub struct PodGc {
    pub nodes: Arc<Informer<Node>>,
    pub pods: Arc<Informer<Pod>>,
    pub settings: Settings,
    missing_since: Mutex<HashMap<String, Instant>>,
}

impl PodGc {
    pub fn new(nodes: Arc<Informer<Node>>, pods: Arc<Informer<Pod>>, settings: Settings) -> Self {
        PodGc {
            nodes,
            pods,
            settings,
            missing_since: Default::default(),
        }
    }

    /// Nodes pods are bound to that the cache has not had for the whole quarantine time.
    pub fn quarantined_missing_nodes(&self) -> Vec<String> {
        let bound: HashSet<String> = self
            .pods
            .list()
            .iter()
            .map(|p| util::pod_node(p).to_string())
            .filter(|n| !n.is_empty())
            .collect();
        let mut missing = self.missing_since.lock();
        missing.retain(|n, _| bound.contains(n) && self.nodes.get(n).is_none());
        let now = Instant::now();
        let mut out = Vec::new();
        for n in bound {
            if self.nodes.get(&n).is_some() {
                continue;
            }
            let since = *missing.entry(n.clone()).or_insert(now);
            if now.duration_since(since) >= self.settings.quarantine {
                out.push(n);
            }
        }
        out.sort();
        out
    }

    /// Pods to collect now, given the nodes confirmed gone.
    pub fn collectable(&self, gone_nodes: &[String]) -> Vec<(Arc<Pod>, Reason)> {
        let mut out = Vec::new();
        let mut terminated = Vec::new();
        for p in self.pods.list() {
            let node = util::pod_node(&p);
            let deleting = p.metadata.deletion_timestamp.is_some();
            if !node.is_empty() && gone_nodes.iter().any(|g| g == node) {
                out.push((p.clone(), Reason::Orphaned));
            } else if node.is_empty() && deleting {
                out.push((p.clone(), Reason::UnscheduledTerminating));
            } else if deleting
                && let Some(n) = self.nodes.get(node)
                && util::node_condition(&n, "Ready").is_none_or(|c| c.status != "True")
                && n.spec
                    .as_ref()
                    .and_then(|s| s.taints.as_ref())
                    .is_some_and(|ts| ts.iter().any(|t| t.key == OUT_OF_SERVICE))
            {
                out.push((p.clone(), Reason::OutOfService));
            } else if util::is_pod_terminal(&p) {
                terminated.push(p.clone());
            }
        }
        if terminated.len() > self.settings.terminated_threshold {
            terminated.sort_by(|a, b| {
                a.metadata
                    .creation_timestamp
                    .as_ref()
                    .map(|t| t.0)
                    .cmp(&b.metadata.creation_timestamp.as_ref().map(|t| t.0))
            });
            let excess = terminated.len() - self.settings.terminated_threshold;
            out.extend(
                terminated
                    .into_iter()
                    .take(excess)
                    .map(|p| (p, Reason::Terminated)),
            );
        }
        out
    }

    async fn collect(&self, client: &kube::Client, pod: &Pod, reason: Reason) -> Result<()> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("");
        let name = pod.metadata.name.as_deref().unwrap_or("");
        let api: Api<Pod> = Api::namespaced(client.clone(), ns);
        let condition = match reason {
            Reason::Orphaned => Some("PodGC: node no longer exists"),
            Reason::OutOfService => Some("PodGC: node is out-of-service"),
            _ => None,
        };
        if let Some(message) = condition {
            let mut status = serde_json::json!({"conditions": [{
                "type": "DisruptionTarget", "status": "True", "reason": "DeletionByPodGC",
                "message": message, "lastTransitionTime": util::now(),
            }]});
            if !util::is_pod_terminal(pod) {
                status["phase"] = "Failed".into();
            }
            match api
                .patch_status(
                    name,
                    &PatchParams::default(),
                    &Patch::Strategic(&serde_json::json!({"status": status})),
                )
                .await
            {
                Ok(_) => {}
                Err(e) if util::is_not_found(&e) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
        let dp = if reason == Reason::Terminated {
            DeleteParams::default()
        } else {
            DeleteParams {
                grace_period_seconds: Some(0),
                ..Default::default()
            }
        };
        match api.delete(name, &dp).await {
            Ok(_) => Ok(()),
            Err(e) if util::is_not_found(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn pass(&self, client: &kube::Client) {
        let nodes: Api<Node> = Api::all(client.clone());
        let mut gone = Vec::new();
        for n in self.quarantined_missing_nodes() {
            // The cache may lag: only the API can say a node is really gone.
            match nodes.get_opt(&n).await {
                Ok(None) => gone.push(n),
                Ok(Some(_)) => {}
                Err(e) => tracing::debug!(node = %n, error = %e, "podgc could not check node"),
            }
        }
        for (p, reason) in self.collectable(&gone) {
            if let Err(e) = self.collect(client, &p, reason).await {
                tracing::debug!(pod = ?p.metadata.name, error = %e, "podgc could not delete pod");
            } else {
                tracing::info!(pod = ?p.metadata.name, namespace = ?p.metadata.namespace, reason = ?reason, "garbage collected pod");
            }
        }
    }
}

async fn run(ctx: Arc<Context>) {
    let c = PodGc::new(
        ctx.informers.get::<Node>(),
        ctx.informers.get::<Pod>(),
        Settings {
            period: ctx.config.pod_gc_period,
            quarantine: ctx.config.pod_gc_quarantine,
            terminated_threshold: ctx.config.terminated_pod_gc_threshold,
        },
    );
    c.nodes.wait_synced().await;
    c.pods.wait_synced().await;
    let client = ctx.client.clone();
    util::every(c.settings.period, ctx.cancel.clone(), || c.pass(&client)).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, node: &str, extra: serde_json::Value) -> Pod {
        let mut v = json!({"metadata": {"name": name, "namespace": "d", "creationTimestamp": format!("2025-01-01T00:00:0{}Z", name.len() % 10)},
                           "spec": {"nodeName": node, "containers": []}, "status": {"phase": "Running"}});
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            for (k, x) in e {
                o.insert(k.clone(), x.clone());
            }
        }
        serde_json::from_value(v).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn pods_of_missing_nodes_wait_out_the_quarantine() {
        let c = PodGc::new(
            Informer::detached(),
            Informer::detached(),
            Settings::default(),
        );
        c.nodes
            .apply(serde_json::from_value(json!({"metadata": {"name": "alive"}})).unwrap());
        c.pods.apply(pod("a", "alive", json!({})));
        c.pods.apply(pod("b", "gone", json!({})));
        assert!(c.quarantined_missing_nodes().is_empty());
        tokio::time::sleep(Duration::from_secs(41)).await;
        assert_eq!(c.quarantined_missing_nodes(), vec!["gone".to_string()]);
        let collected = c.collectable(&["gone".into()]);
        assert_eq!(collected.len(), 1);
        assert_eq!(collected[0].0.metadata.name.as_deref(), Some("b"));
        assert_eq!(collected[0].1, Reason::Orphaned);
    }

    #[test]
    fn unscheduled_terminating_and_excess_finished_pods_go() {
        let c = PodGc::new(
            Informer::detached(),
            Informer::detached(),
            Settings {
                terminated_threshold: 1,
                ..Default::default()
            },
        );
        c.pods.apply(pod("t", "", json!({"metadata": {"name": "t", "namespace": "d", "deletionTimestamp": "2025-01-01T00:00:00Z"}})));
        c.pods.apply(pod("old", "n", json!({"metadata": {"name": "old", "namespace": "d", "creationTimestamp": "2025-01-01T00:00:00Z"}, "status": {"phase": "Succeeded"}})));
        c.pods.apply(pod("new", "n", json!({"metadata": {"name": "new", "namespace": "d", "creationTimestamp": "2025-01-02T00:00:00Z"}, "status": {"phase": "Failed"}})));
        c.nodes
            .apply(serde_json::from_value(json!({"metadata": {"name": "n"}})).unwrap());
        let mut got: Vec<(String, Reason)> = c
            .collectable(&[])
            .into_iter()
            .map(|(p, r)| (p.metadata.name.clone().unwrap(), r))
            .collect();
        got.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            got,
            vec![
                ("old".into(), Reason::Terminated),
                ("t".into(), Reason::UnscheduledTerminating)
            ]
        );
    }
}
