//! The resourcequota controller: every ResourceQuota's status carries `hard` (its spec) and
//! `used`, recomputed from what exists in the namespace — pods (`pods`, `requests.cpu`,
//! `limits.memory`, ...), services (`services.nodeports`, ...), claims (`requests.storage`,
//! per class), and `count/<resource>[.<group>]` of any resource — with the same evaluators the
//! API server's ResourceQuota admission charges with. Quotas are recomputed when they change,
//! when the objects they count change, and every five minutes.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use ferrokube_api::quota::{self, ResourceList};
use ferrokube_api::resources;
use ferrokube_client::{Action, Change, Informer, WorkQueue};
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Pod, ReplicationController, ResourceQuota,
    ResourceQuotaStatus, Secret, Service,
};
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use serde::Serialize;
use serde_json::Value;

use crate::Context;
use crate::util::{self, Result, api_resource};

pub const NAME: &str = "resourcequota";

pub fn start(ctx: Arc<Context>) -> BoxFuture<'static, ()> {
    Box::pin(run(ctx))
}

#[derive(Clone)]
pub struct ResourceQuotaController {
    pub quotas: Arc<Informer<ResourceQuota>>,
    pub pods: Arc<Informer<Pod>>,
    pub services: Arc<Informer<Service>>,
    pub claims: Arc<Informer<PersistentVolumeClaim>>,
    pub config_maps: Arc<Informer<ConfigMap>>,
    pub secrets: Arc<Informer<Secret>>,
    pub rcs: Arc<Informer<ReplicationController>>,
}

fn values<K: Serialize>(objs: Vec<Arc<K>>) -> Vec<Value> {
    objs.iter()
        .filter_map(|o| serde_json::to_value(&**o).ok())
        .collect()
}

fn hard_of(q: &ResourceQuota) -> ResourceList {
    let v =
        serde_json::to_value(q.spec.as_ref().and_then(|s| s.hard.clone())).unwrap_or(Value::Null);
    quota::parse_list(Some(&v))
}

/// Sums what matching objects use, for the names the quota limits.
pub fn usage_of(
    q: &Value,
    group: &str,
    resource: &str,
    objects: &[Value],
    hard: &[String],
    now: jiff::Timestamp,
) -> ResourceList {
    let names = quota::matching_resources(group, resource, hard);
    let mut used = ResourceList::new();
    if names.is_empty() {
        return used;
    }
    for n in &names {
        used.insert(n.clone(), ferrokube_api::quantity::Quantity::from_i64(0));
    }
    for o in objects {
        if !quota::matches_scopes(q, group, resource, o) {
            continue;
        }
        let u = quota::mask(&quota::usage(group, resource, o, now), &names);
        used = quota::add(&used, &u);
    }
    used
}

impl ResourceQuotaController {
    /// The evaluators whose objects the controller caches.
    fn cached(&self, resource: &str, ns: &str) -> Option<Vec<Value>> {
        Some(match resource {
            "pods" => values(self.pods.list_namespace(ns)),
            "services" => values(self.services.list_namespace(ns)),
            "persistentvolumeclaims" => values(self.claims.list_namespace(ns)),
            "configmaps" => values(self.config_maps.list_namespace(ns)),
            "secrets" => values(self.secrets.list_namespace(ns)),
            "replicationcontrollers" => values(self.rcs.list_namespace(ns)),
            "resourcequotas" => values(self.quotas.list_namespace(ns)),
            _ => return None,
        })
    }

    /// The quota's `used`, from the caches and (for `count/...` of other resources) the API.
    pub async fn compute(
        &self,
        client: Option<&kube::Client>,
        q: &ResourceQuota,
    ) -> Result<ResourceList> {
        let ns = q.metadata.namespace.clone().unwrap_or_default();
        let hard: Vec<String> = hard_of(q).keys().cloned().collect();
        let qv = serde_json::to_value(q)?;
        let now = jiff::Timestamp::now();
        let mut used = ResourceList::new();
        let mut seen = BTreeSet::new();
        for info in resources::RESOURCES
            .iter()
            .filter(|r| r.namespaced && r.is_stored() && (r.group, r.version) == r.storage_version)
        {
            if !seen.insert((info.group, info.resource)) {
                continue;
            }
            if quota::matching_resources(info.group, info.resource, &hard).is_empty() {
                continue;
            }
            let objects = match (info.group.is_empty(), self.cached(info.resource, &ns)) {
                (true, Some(objs)) => objs,
                _ => {
                    let Some(client) = client else { continue };
                    let api: Api<DynamicObject> =
                        Api::namespaced_with(client.clone(), &ns, &api_resource(info));
                    api.list_metadata(&ListParams::default())
                        .await?
                        .items
                        .iter()
                        .filter_map(|o| serde_json::to_value(o).ok())
                        .collect()
                }
            };
            used = quota::add(
                &used,
                &usage_of(&qv, info.group, info.resource, &objects, &hard, now),
            );
        }
        Ok(used)
    }

    pub fn watch(&self, queue: &Arc<WorkQueue<String>>) {
        let q = queue.clone();
        self.quotas.on_change(move |c: &Change<'_, ResourceQuota>| {
            let enqueue = match c {
                Change::Added(_) => true,
                Change::Deleted(_) => false,
                Change::Updated { old, new } => {
                    old.spec != new.spec
                        || new.status.as_ref().and_then(|s| s.hard.clone())
                            != new.spec.as_ref().and_then(|s| s.hard.clone())
                }
            };
            if enqueue {
                q.add(ferrokube_client::key_of(&**c.object()));
            }
        });
        // Replenishment: a change to anything counted looks at the namespace's quotas again.
        macro_rules! replenish {
            ($inf:expr, $ty:ty) => {{
                let q = queue.clone();
                let quotas = self.quotas.clone();
                $inf.on_change(move |c: &Change<'_, $ty>| {
                    let ns = c.object().metadata.namespace.clone().unwrap_or_default();
                    for rq in quotas.list_namespace(&ns) {
                        q.add(ferrokube_client::key_of(&*rq));
                    }
                });
            }};
        }
        replenish!(self.pods, Pod);
        replenish!(self.services, Service);
        replenish!(self.claims, PersistentVolumeClaim);
        replenish!(self.config_maps, ConfigMap);
        replenish!(self.secrets, Secret);
        replenish!(self.rcs, ReplicationController);
    }

    async fn sync(&self, client: &kube::Client, key: &str) -> Result<Action> {
        let Some(q) = self.quotas.get(key) else {
            return Ok(Action::AwaitChange);
        };
        let hard = hard_of(&q);
        let used = self.compute(Some(client), &q).await?;
        let current_hard = quota::parse_list(Some(
            &serde_json::to_value(q.status.as_ref().and_then(|s| s.hard.clone()))
                .unwrap_or(Value::Null),
        ));
        let current_used = quota::parse_list(Some(
            &serde_json::to_value(q.status.as_ref().and_then(|s| s.used.clone()))
                .unwrap_or(Value::Null),
        ));
        if current_hard == hard && current_used == used {
            return Ok(Action::AwaitChange);
        }
        let mut updated = (*q).clone();
        updated.status = Some(ResourceQuotaStatus {
            hard: serde_json::from_value(quota::list_to_json(&hard))?,
            used: serde_json::from_value(quota::list_to_json(&used))?,
        });
        let (ns, name) = ferrokube_client::split_key(key);
        let api: Api<ResourceQuota> = Api::namespaced(client.clone(), ns);
        match api
            .replace_status(name, &PostParams::default(), &updated)
            .await
        {
            Ok(_) => Ok(Action::AwaitChange),
            Err(e) if util::is_not_found(&e) => Ok(Action::AwaitChange),
            Err(e) => Err(e.into()),
        }
    }
}

async fn run(ctx: Arc<Context>) {
    let c = ResourceQuotaController {
        quotas: ctx.informers.get::<ResourceQuota>(),
        pods: ctx.informers.get::<Pod>(),
        services: ctx.informers.get::<Service>(),
        claims: ctx.informers.get::<PersistentVolumeClaim>(),
        config_maps: ctx.informers.get::<ConfigMap>(),
        secrets: ctx.informers.get::<Secret>(),
        rcs: ctx.informers.get::<ReplicationController>(),
    };
    c.quotas.wait_synced().await;
    c.pods.wait_synced().await;
    c.services.wait_synced().await;
    c.claims.wait_synced().await;
    c.config_maps.wait_synced().await;
    c.secrets.wait_synced().await;
    c.rcs.wait_synced().await;
    let queue = WorkQueue::new();
    c.watch(&queue);
    {
        // upstream `--resource-quota-sync-period`.
        let q = queue.clone();
        let quotas = c.quotas.clone();
        let cancel = ctx.cancel.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(300)) => {}
                }
                for rq in quotas.list() {
                    q.add(ferrokube_client::key_of(&*rq));
                }
            }
        });
    }
    let client = ctx.client.clone();
    util::run_queue(
        queue,
        ctx.config.workers,
        ctx.cancel.clone(),
        move |key: String| {
            let c = c.clone();
            let client = client.clone();
            async move { c.sync(&client, &key).await }
        },
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn controller() -> ResourceQuotaController {
        ResourceQuotaController {
            quotas: Informer::detached(),
            pods: Informer::detached(),
            services: Informer::detached(),
            claims: Informer::detached(),
            config_maps: Informer::detached(),
            secrets: Informer::detached(),
            rcs: Informer::detached(),
        }
    }

    #[tokio::test]
    async fn used_counts_pods_requests_services_and_objects() {
        let c = controller();
        let q: ResourceQuota = serde_json::from_value(json!({"metadata": {"name": "q", "namespace": "d"},
            "spec": {"hard": {"pods": "10", "requests.cpu": "2", "limits.memory": "1Gi",
                              "services.nodeports": "2", "count/configmaps": "5", "configmaps": "5"}}})).unwrap();
        c.quotas.apply(q.clone());
        for (n, phase) in [("a", "Running"), ("b", "Running"), ("done", "Succeeded")] {
            c.pods.apply(serde_json::from_value(json!({"metadata": {"name": n, "namespace": "d"},
                "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "250m"}, "limits": {"memory": "128Mi"}}}]},
                "status": {"phase": phase}})).unwrap());
        }
        c.services.apply(
            serde_json::from_value(json!({"metadata": {"name": "np", "namespace": "d"},
            "spec": {"type": "NodePort", "ports": [{"port": 80}]}}))
            .unwrap(),
        );
        c.config_maps.apply(
            serde_json::from_value(json!({"metadata": {"name": "cm", "namespace": "d"}})).unwrap(),
        );
        c.config_maps.apply(
            serde_json::from_value(json!({"metadata": {"name": "other", "namespace": "e"}}))
                .unwrap(),
        );
        let used = c.compute(None, &q).await.unwrap();
        let shown: Vec<String> = used.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(
            shown,
            vec![
                "configmaps=1",
                "count/configmaps=1",
                "limits.memory=256Mi",
                "pods=2",
                "requests.cpu=500m",
                "services.nodeports=1",
            ]
        );
    }
}
