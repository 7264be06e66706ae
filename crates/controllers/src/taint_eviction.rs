//! The taint-eviction controller: a pod on a node with a NoExecute taint it does not tolerate
//! is deleted at once; a pod that tolerates every such taint for a while
//! (`tolerationSeconds`) is deleted when the shortest of those times has passed since the
//! controller saw the taint, unless the taint went away first. Before deleting, the pod gets
//! the `DisruptionTarget` condition (`DeletionByTaintManager`), and a `TaintManagerEviction`
//! event says so, as upstream's taint manager does.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ferrokube_client::events::{EventRecorder, EventType};
use ferrokube_client::{Action, Change, Informer, WorkQueue};
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Node, Pod, Taint};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::Context;
use crate::util::{self, Result};

pub const NAME: &str = "taint-eviction-controller";
const COMPONENT: &str = "taint-eviction-controller";

pub fn start(ctx: Arc<Context>) -> BoxFuture<'static, ()> {
    Box::pin(run(ctx))
}

/// When a pod must go given a node's taints: None when it may stay (no NoExecute taint, or
/// all tolerated forever), otherwise how long after the taint was seen.
pub fn eviction_delay(pod: &Pod, taints: &[Taint]) -> Option<Duration> {
    let no_execute: Vec<&Taint> = taints.iter().filter(|t| t.effect == "NoExecute").collect();
    if no_execute.is_empty() {
        return None;
    }
    let tolerations = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.clone())
        .unwrap_or_default();
    let mut used = Vec::new();
    for taint in no_execute {
        let matching: Vec<_> = tolerations
            .iter()
            .filter(|t| util::tolerates(t, taint))
            .collect();
        if matching.is_empty() {
            return Some(Duration::ZERO);
        }
        used.extend(matching);
    }
    used.iter()
        .filter_map(|t| t.toleration_seconds)
        .map(|s| Duration::from_secs(s.max(0) as u64))
        .min()
}

#[derive(Clone, Copy, Debug)]
struct Scheduled {
    fire: Instant,
}

pub struct TaintEviction {
    pub nodes: Arc<Informer<Node>>,
    pub pods: Arc<Informer<Pod>>,
    scheduled: Mutex<HashMap<String, Scheduled>>,
}

/// What a sync concluded about one pod.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Stay,
    /// Evict once this much more time has passed.
    Wait(Duration),
    EvictNow,
    /// A scheduled eviction was called off.
    Cancelled,
}

impl TaintEviction {
    pub fn new(nodes: Arc<Informer<Node>>, pods: Arc<Informer<Pod>>) -> Self {
        util::index_pods_by_node(&pods);
        TaintEviction {
            nodes,
            pods,
            scheduled: Default::default(),
        }
    }

    pub fn watch(&self, queue: &Arc<WorkQueue<String>>) {
        let q = queue.clone();
        self.pods.on_change(move |c: &Change<'_, Pod>| match c {
            Change::Deleted(p) | Change::Added(p) => q.add(ferrokube_client::key_of(&***p)),
            Change::Updated { old, new } => {
                let relevant = |p: &Pod| {
                    (
                        util::pod_node(p).to_string(),
                        p.spec.as_ref().and_then(|s| s.tolerations.clone()),
                    )
                };
                if relevant(old) != relevant(new) {
                    q.add(ferrokube_client::key_of(&***new));
                }
            }
        });
        let q = queue.clone();
        let pods = self.pods.clone();
        self.nodes.on_change(move |c: &Change<'_, Node>| {
            let taints = |n: &Node| n.spec.as_ref().and_then(|s| s.taints.clone());
            let changed = match c {
                Change::Updated { old, new } => taints(old) != taints(new),
                _ => true,
            };
            if changed {
                let name = c.object().metadata.name.clone().unwrap_or_default();
                for p in pods.by_index(util::PODS_BY_NODE, &name) {
                    q.add(ferrokube_client::key_of(&*p));
                }
            }
        });
    }

    /// Decides for one pod, scheduling or cancelling its eviction.
    pub fn decide(&self, key: &str) -> Outcome {
        let taints = self
            .pods
            .get(key)
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .and_then(|p| {
                let node = self.nodes.get(util::pod_node(&p))?;
                Some((
                    p,
                    node.spec
                        .as_ref()
                        .and_then(|s| s.taints.clone())
                        .unwrap_or_default(),
                ))
            });
        let delay = taints.as_ref().and_then(|(p, t)| eviction_delay(p, t));
        let mut scheduled = self.scheduled.lock();
        let Some(delay) = delay else {
            return if scheduled.remove(key).is_some() && taints.is_some() {
                Outcome::Cancelled
            } else {
                Outcome::Stay
            };
        };
        let now = Instant::now();
        // The first time decides when: later syncs never push an eviction back.
        let s = scheduled
            .entry(key.to_string())
            .or_insert(Scheduled { fire: now + delay });
        if now >= s.fire {
            scheduled.remove(key);
            Outcome::EvictNow
        } else {
            Outcome::Wait(s.fire - now)
        }
    }

    async fn evict(
        &self,
        client: &kube::Client,
        recorder: &EventRecorder,
        key: &str,
    ) -> Result<()> {
        let Some(pod) = self.pods.get(key) else {
            return Ok(());
        };
        let (ns, name) = ferrokube_client::split_key(key);
        let api: Api<Pod> = Api::namespaced(client.clone(), ns);
        let condition = serde_json::json!({"status": {"conditions": [{
            "type": "DisruptionTarget",
            "status": "True",
            "reason": "DeletionByTaintManager",
            "message": "Taint manager: deleting due to NoExecute taint",
            "lastTransitionTime": util::now(),
        }]}});
        match api
            .patch_status(name, &PatchParams::default(), &Patch::Strategic(&condition))
            .await
        {
            Ok(_) => {}
            Err(e) if util::is_not_found(&e) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        recorder.record(
            &*pod,
            EventType::Normal,
            "TaintManagerEviction",
            &format!("Marking for deletion Pod {key}"),
        );
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(e) if util::is_not_found(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn sync(
        &self,
        client: &kube::Client,
        recorder: &EventRecorder,
        key: &str,
    ) -> Result<Action> {
        match self.decide(key) {
            Outcome::Stay => Ok(Action::AwaitChange),
            Outcome::Wait(d) => Ok(Action::Requeue(d)),
            Outcome::Cancelled => {
                if let Some(p) = self.pods.get(key) {
                    recorder.record(
                        &*p,
                        EventType::Normal,
                        "TaintManagerEviction",
                        &format!("Cancelling deletion of Pod {key}"),
                    );
                }
                Ok(Action::AwaitChange)
            }
            Outcome::EvictNow => {
                self.evict(client, recorder, key).await?;
                Ok(Action::AwaitChange)
            }
        }
    }
}

async fn run(ctx: Arc<Context>) {
    let c = Arc::new(TaintEviction::new(
        ctx.informers.get::<Node>(),
        ctx.informers.get::<Pod>(),
    ));
    c.nodes.wait_synced().await;
    c.pods.wait_synced().await;
    let queue = WorkQueue::new();
    c.watch(&queue);
    let recorder = ctx.recorder(COMPONENT);
    let client = ctx.client.clone();
    util::run_queue(
        queue,
        ctx.config.workers,
        ctx.cancel.clone(),
        move |key: String| {
            let c = c.clone();
            let client = client.clone();
            let recorder = recorder.clone();
            async move { c.sync(&client, &recorder, &key).await }
        },
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(tolerations: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "d"},
            "spec": {"nodeName": "n1", "containers": [], "tolerations": tolerations}
        }))
        .unwrap()
    }

    fn node(taints: serde_json::Value) -> Node {
        serde_json::from_value(json!({"metadata": {"name": "n1"}, "spec": {"taints": taints}}))
            .unwrap()
    }

    const UNREACHABLE: &str = "node.kubernetes.io/unreachable";

    #[test]
    fn delays_come_from_the_shortest_matching_toleration() {
        let taints: Vec<Taint> =
            serde_json::from_value(json!([{"key": UNREACHABLE, "effect": "NoExecute"}])).unwrap();
        assert_eq!(
            eviction_delay(&pod(json!([])), &taints),
            Some(Duration::ZERO)
        );
        let p = pod(json!([
            {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"operator": "Exists", "tolerationSeconds": 5}
        ]));
        assert_eq!(eviction_delay(&p, &taints), Some(Duration::from_secs(5)));
        let forever = pod(json!([{"operator": "Exists"}]));
        assert_eq!(eviction_delay(&forever, &taints), None);
        let no_schedule: Vec<Taint> =
            serde_json::from_value(json!([{"key": "x", "effect": "NoSchedule"}])).unwrap();
        assert_eq!(eviction_delay(&pod(json!([])), &no_schedule), None);
    }

    #[tokio::test(start_paused = true)]
    async fn evictions_wait_for_the_toleration_and_are_cancelled_when_the_taint_goes() {
        let c = TaintEviction::new(Informer::detached(), Informer::detached());
        let q = WorkQueue::new();
        c.watch(&q);
        c.pods.apply(pod(json!([{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30}])));
        c.nodes.apply(node(json!([])));
        assert_eq!(c.decide("d/p"), Outcome::Stay);
        c.nodes
            .apply(node(json!([{"key": UNREACHABLE, "effect": "NoExecute"}])));
        assert_eq!(c.decide("d/p"), Outcome::Wait(Duration::from_secs(30)));
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(c.decide("d/p"), Outcome::Wait(Duration::from_secs(20)));
        c.nodes.apply(node(json!([])));
        assert_eq!(c.decide("d/p"), Outcome::Cancelled);
        c.nodes
            .apply(node(json!([{"key": UNREACHABLE, "effect": "NoExecute"}])));
        assert_eq!(
            c.decide("d/p"),
            Outcome::Wait(Duration::from_secs(30)),
            "a new taint starts over"
        );
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(c.decide("d/p"), Outcome::EvictNow);
    }
}
