//! The namespace controller: a namespace being deleted (phase `Terminating`, spec finalizer
//! `kubernetes`) has everything inside deleted, resource by resource, with its status
//! conditions saying what remains; once nothing is left the `kubernetes` finalizer is removed
//! through `namespaces/NAME/finalize` and the API server deletes the namespace.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ferrokube_api::resources::{self, ResourceInfo};
use ferrokube_client::workqueue::Backoff;
use ferrokube_client::{Action, Change, Informer, WorkQueue};
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Namespace, NamespaceCondition};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams};

use crate::Context;
use crate::util::{self, Result, api_resource};

pub const NAME: &str = "namespace";
pub const FINALIZER: &str = "kubernetes";

pub fn start(ctx: Arc<Context>) -> BoxFuture<'static, ()> {
    Box::pin(run(ctx))
}

/// Every namespaced resource the controller empties, once per stored resource.
pub fn namespaced_resources() -> Vec<&'static ResourceInfo> {
    resources::RESOURCES
        .iter()
        .filter(|r| r.namespaced && r.is_stored() && (r.group, r.version) == r.storage_version)
        .filter(|r| r.allows("list") && r.allows("delete"))
        .collect()
}

/// What deleting the content left behind.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Remaining {
    /// `pods` / `deployments.apps` -> objects left
    pub by_resource: BTreeMap<String, usize>,
    /// finalizer -> objects carrying it
    pub by_finalizer: BTreeMap<String, usize>,
    /// Deletions that failed, per resource.
    pub errors: Vec<String>,
    /// The longest grace period of a pod still terminating.
    pub grace_seconds: i64,
}

impl Remaining {
    pub fn is_empty(&self) -> bool {
        self.by_resource.values().all(|n| *n == 0)
    }
}

fn condition(type_: &str, status: bool, reason: &str, message: String) -> NamespaceCondition {
    NamespaceCondition {
        type_: type_.into(),
        status: if status { "True" } else { "False" }.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_transition_time: None,
    }
}

/// upstream's five deletion conditions, in upstream's order.
pub fn conditions(r: &Remaining) -> Vec<NamespaceCondition> {
    let content_failure = if r.errors.is_empty() {
        condition(
            "NamespaceDeletionContentFailure",
            false,
            "ContentDeleted",
            "All content successfully deleted, may be waiting on finalization".into(),
        )
    } else {
        condition(
            "NamespaceDeletionContentFailure",
            true,
            "ContentDeletionFailed",
            format!(
                "Failed to delete all resource types, {} remaining: {}",
                r.errors.len(),
                r.errors.join(", ")
            ),
        )
    };
    let left: Vec<String> = r
        .by_resource
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(res, n)| format!("{res} has {n} resource instances"))
        .collect();
    let remaining = if left.is_empty() {
        condition(
            "NamespaceContentRemaining",
            false,
            "ContentRemoved",
            "All content successfully removed".into(),
        )
    } else {
        condition(
            "NamespaceContentRemaining",
            true,
            "SomeResourcesRemain",
            format!("Some resources are remaining: {}", left.join(", ")),
        )
    };
    let fins: Vec<String> = r
        .by_finalizer
        .iter()
        .map(|(f, n)| format!("{f} in {n} resource instances"))
        .collect();
    let finalizers = if fins.is_empty() {
        condition(
            "NamespaceFinalizersRemaining",
            false,
            "ContentHasNoFinalizers",
            "All content-preserving finalizers finished".into(),
        )
    } else {
        condition(
            "NamespaceFinalizersRemaining",
            true,
            "SomeFinalizersRemain",
            format!(
                "Some content in the namespace has finalizers remaining: {}",
                fins.join(", ")
            ),
        )
    };
    vec![
        condition(
            "NamespaceDeletionDiscoveryFailure",
            false,
            "ResourcesDiscovered",
            "All resources successfully discovered".into(),
        ),
        condition(
            "NamespaceDeletionGroupVersionParsingFailure",
            false,
            "ParsedGroupVersions",
            "All legacy kube types successfully parsed".into(),
        ),
        content_failure,
        remaining,
        finalizers,
    ]
}

/// Merges wanted conditions into the current ones, keeping transition times of conditions
/// whose status did not change. Returns None when nothing changed.
pub fn merge_conditions(
    current: &[NamespaceCondition],
    wanted: Vec<NamespaceCondition>,
    now: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
) -> Option<Vec<NamespaceCondition>> {
    let mut changed = false;
    let mut out = Vec::new();
    for mut w in wanted {
        match current.iter().find(|c| c.type_ == w.type_) {
            Some(c) if c.status == w.status && c.reason == w.reason && c.message == w.message => {
                out.push(c.clone());
                continue;
            }
            Some(c) if c.status == w.status => {
                w.last_transition_time = c.last_transition_time.clone();
            }
            _ => w.last_transition_time = Some(now.clone()),
        }
        changed = true;
        out.push(w);
    }
    for c in current {
        if !out.iter().any(|o| o.type_ == c.type_) {
            out.push(c.clone());
        }
    }
    changed.then_some(out)
}

pub fn needs_deletion(ns: &Namespace) -> bool {
    ns.metadata.deletion_timestamp.is_some()
        && ns
            .spec
            .as_ref()
            .and_then(|s| s.finalizers.as_ref())
            .is_some_and(|f| f.iter().any(|x| x == FINALIZER))
}

#[derive(Clone)]
struct NamespaceController {
    namespaces: Arc<Informer<Namespace>>,
    client: kube::Client,
}

async fn run(ctx: Arc<Context>) {
    let c = NamespaceController {
        namespaces: ctx.informers.get::<Namespace>(),
        client: ctx.client.clone(),
    };
    c.namespaces.wait_synced().await;
    // upstream's namespace queue backs off from 5 ms up to a minute; content that needs
    // finalizers or kubelets to go is looked at again more often here.
    let queue = WorkQueue::with_backoff(Backoff {
        base: Duration::from_millis(50),
        max: Duration::from_secs(5),
    });
    let q = queue.clone();
    c.namespaces.on_change(move |ch: &Change<'_, Namespace>| {
        if let Change::Deleted(_) = ch {
            return;
        }
        if needs_deletion(ch.object()) {
            q.add(ferrokube_client::key_of(&**ch.object()));
        }
    });
    // upstream `--concurrent-namespace-syncs` is 10.
    util::run_queue(queue, 10, ctx.cancel.clone(), move |name: String| {
        let c = c.clone();
        async move { c.sync(&name).await }
    })
    .await;
}

impl NamespaceController {
    fn dynamic(&self, info: &ResourceInfo, ns: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), ns, &api_resource(info))
    }

    /// Deletes everything in `ns`, then counts what is left.
    async fn delete_content(&self, ns: &str) -> Remaining {
        let mut r = Remaining::default();
        let bg = DeleteParams::background();
        for info in namespaced_resources() {
            let api = self.dynamic(info, ns);
            let result = if info.allows("deletecollection") {
                api.delete_collection(&bg, &ListParams::default())
                    .await
                    .map(|_| ())
            } else {
                match api.list_metadata(&ListParams::default()).await {
                    Ok(list) => {
                        let mut res = Ok(());
                        for o in list.items {
                            if o.metadata.deletion_timestamp.is_some() {
                                continue;
                            }
                            let name = o.metadata.name.unwrap_or_default();
                            match api.delete(&name, &bg).await {
                                Ok(_) => {}
                                Err(e) if util::is_not_found(&e) => {}
                                Err(e) => res = Err(e),
                            }
                        }
                        res
                    }
                    Err(e) => Err(e),
                }
            };
            if let Err(e) = result {
                r.errors.push(format!("{}: {e}", info.group_resource()));
            }
            match api.list_metadata(&ListParams::default()).await {
                Ok(list) => {
                    if list.items.is_empty() {
                        continue;
                    }
                    r.by_resource
                        .insert(info.group_resource(), list.items.len());
                    for o in &list.items {
                        for f in o.metadata.finalizers.iter().flatten() {
                            *r.by_finalizer.entry(f.clone()).or_default() += 1;
                        }
                        if info.resource == "pods" {
                            let g = o.metadata.deletion_grace_period_seconds.unwrap_or(0);
                            r.grace_seconds = r.grace_seconds.max(g);
                        }
                    }
                }
                Err(e) => r.errors.push(format!("{}: {e}", info.group_resource())),
            }
        }
        r
    }

    async fn sync(&self, name: &str) -> Result<Action> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let Some(ns) = api.get_opt(name).await? else {
            return Ok(Action::AwaitChange);
        };
        if !needs_deletion(&ns) {
            return Ok(Action::AwaitChange);
        }
        let remaining = self.delete_content(name).await;
        let current = ns
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        if let Some(conds) = merge_conditions(&current, conditions(&remaining), &util::now()) {
            let mut updated = ns.clone();
            let status = updated.status.get_or_insert_with(Default::default);
            status.conditions = Some(conds);
            status.phase = Some("Terminating".into());
            match api
                .replace_status(name, &PostParams::default(), &updated)
                .await
            {
                Ok(_) => {}
                Err(e) if util::is_not_found(&e) => return Ok(Action::AwaitChange),
                // Stale: the next round reads the namespace again.
                Err(e) if util::is_conflict(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if !remaining.is_empty() || !remaining.errors.is_empty() {
            if remaining.grace_seconds > 0 {
                return Ok(Action::Requeue(Duration::from_secs(
                    remaining.grace_seconds as u64,
                )));
            }
            return Err(util::Error::Other(format!(
                "namespace {name} still has content: {:?}",
                remaining.by_resource
            )));
        }
        self.finalize(&api, name).await?;
        Ok(Action::AwaitChange)
    }

    /// Removes the `kubernetes` finalizer through the finalize subresource.
    async fn finalize(&self, api: &Api<Namespace>, name: &str) -> Result<()> {
        for _ in 0..8 {
            let Some(mut ns) = api.get_opt(name).await? else {
                return Ok(());
            };
            let spec = ns.spec.get_or_insert_with(Default::default);
            let fins: Vec<String> = spec
                .finalizers
                .clone()
                .unwrap_or_default()
                .into_iter()
                .filter(|f| f != FINALIZER)
                .collect();
            spec.finalizers = Some(fins);
            let req = http::Request::put(format!("/api/v1/namespaces/{name}/finalize"))
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(&ns)?)
                .map_err(|e| util::Error::Other(e.to_string()))?;
            match self.client.request::<Namespace>(req).await {
                Ok(_) => return Ok(()),
                Err(e) if util::is_not_found(&e) => return Ok(()),
                Err(e) if util::is_conflict(&e) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(util::Error::Other(format!(
            "namespace {name} kept changing while being finalized"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_say_what_remains_in_upstreams_words() {
        let mut r = Remaining::default();
        r.by_resource.insert("pods".into(), 2);
        r.by_resource.insert("deployments.apps".into(), 1);
        r.by_finalizer.insert("example.com/hold".into(), 1);
        let c = conditions(&r);
        assert_eq!(c.len(), 5);
        assert_eq!(c[3].type_, "NamespaceContentRemaining");
        assert_eq!(c[3].status, "True");
        assert_eq!(
            c[3].message.as_deref(),
            Some(
                "Some resources are remaining: deployments.apps has 1 resource instances, pods has 2 resource instances"
            )
        );
        assert_eq!(
            c[4].message.as_deref(),
            Some(
                "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
            )
        );
        let done = conditions(&Remaining::default());
        assert_eq!(done[3].reason.as_deref(), Some("ContentRemoved"));
        assert_eq!(done[4].reason.as_deref(), Some("ContentHasNoFinalizers"));
    }

    #[test]
    fn transition_times_move_only_with_the_status() {
        let t0 = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            "2025-01-01T00:00:00Z".parse().unwrap(),
        );
        let t1 = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            "2025-01-01T00:01:00Z".parse().unwrap(),
        );
        let mut r = Remaining::default();
        r.by_resource.insert("pods".into(), 1);
        let first = merge_conditions(&[], conditions(&r), &t0).unwrap();
        assert!(merge_conditions(&first, conditions(&r), &t1).is_none());
        let second = merge_conditions(&first, conditions(&Remaining::default()), &t1).unwrap();
        let rem = second
            .iter()
            .find(|c| c.type_ == "NamespaceContentRemaining")
            .unwrap();
        assert_eq!(rem.last_transition_time, Some(t1));
        let disc = second
            .iter()
            .find(|c| c.type_ == "NamespaceDeletionDiscoveryFailure")
            .unwrap();
        assert_eq!(disc.last_transition_time, Some(t0));
    }

    #[test]
    fn every_namespaced_resource_is_emptied_once() {
        let r = namespaced_resources();
        assert!(r.iter().any(|i| i.resource == "pods"));
        assert!(
            r.iter()
                .any(|i| i.resource == "events" && i.group.is_empty())
        );
        assert!(!r.iter().any(|i| i.group == "events.k8s.io"));
        assert!(!r.iter().any(|i| i.resource == "nodes"));
    }
}
