//! The serviceaccount controller: every active namespace has a `default` ServiceAccount,
//! recreated if it is deleted.

use std::sync::Arc;

use ferrokube_client::{Action, Change, Informer, WorkQueue};
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, ObjectMeta, PostParams};

use crate::Context;
use crate::util::{self, Result};

pub const NAME: &str = "serviceaccount";
const DEFAULT: &str = "default";

pub fn start(ctx: Arc<Context>) -> BoxFuture<'static, ()> {
    Box::pin(run(ctx))
}

/// What the controller reads.
#[derive(Clone)]
pub struct ServiceAccountController {
    pub namespaces: Arc<Informer<Namespace>>,
    pub accounts: Arc<Informer<ServiceAccount>>,
}

impl ServiceAccountController {
    /// Whether `ns` needs its default account created.
    pub fn missing(&self, ns: &str) -> bool {
        let Some(n) = self.namespaces.get(ns) else {
            return false;
        };
        let active = n
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .is_none_or(|p| p == "Active")
            && n.metadata.deletion_timestamp.is_none();
        active && self.accounts.get_named(ns, DEFAULT).is_none()
    }

    pub fn watch(&self, queue: &Arc<WorkQueue<String>>) {
        let q = queue.clone();
        self.namespaces.on_change(move |c: &Change<'_, Namespace>| {
            q.add(ferrokube_client::key_of(&**c.object()))
        });
        let q = queue.clone();
        self.accounts
            .on_change(move |c: &Change<'_, ServiceAccount>| {
                if let Change::Deleted(sa) = c
                    && let Some(ns) = sa.metadata.namespace.clone()
                {
                    q.add(ns);
                }
            });
    }
}

async fn run(ctx: Arc<Context>) {
    let c = ServiceAccountController {
        namespaces: ctx.informers.get::<Namespace>(),
        accounts: ctx.informers.get::<ServiceAccount>(),
    };
    c.namespaces.wait_synced().await;
    c.accounts.wait_synced().await;
    let queue = WorkQueue::new();
    c.watch(&queue);
    let client = ctx.client.clone();
    util::run_queue(
        queue,
        ctx.config.workers,
        ctx.cancel.clone(),
        move |ns: String| {
            let c = c.clone();
            let client = client.clone();
            async move { sync(&c, &client, &ns).await }
        },
    )
    .await;
}

async fn sync(c: &ServiceAccountController, client: &kube::Client, ns: &str) -> Result<Action> {
    if !c.missing(ns) {
        return Ok(Action::AwaitChange);
    }
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    let sa = ServiceAccount {
        metadata: ObjectMeta {
            name: Some(DEFAULT.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    match api.create(&PostParams::default(), &sa).await {
        Ok(_) => Ok(Action::AwaitChange),
        // Already there, or the namespace started terminating meanwhile.
        Err(kube::Error::Api(s)) if s.code == 409 || s.code == 403 || s.code == 404 => {
            Ok(Action::AwaitChange)
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(name: &str, phase: &str) -> Namespace {
        serde_json::from_value(
            serde_json::json!({"metadata": {"name": name}, "status": {"phase": phase}}),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn active_namespaces_without_a_default_account_are_queued_and_need_one() {
        let c = ServiceAccountController {
            namespaces: Informer::detached(),
            accounts: Informer::detached(),
        };
        let q = WorkQueue::new();
        c.watch(&q);
        c.namespaces.apply(ns("a", "Active"));
        c.namespaces.apply(ns("b", "Terminating"));
        assert_eq!(q.len(), 2);
        assert!(c.missing("a"));
        assert!(
            !c.missing("b"),
            "terminating namespaces get no new accounts"
        );
        let sa: ServiceAccount = serde_json::from_value(
            serde_json::json!({"metadata": {"name": "default", "namespace": "a"}}),
        )
        .unwrap();
        c.accounts.apply(sa.clone());
        assert!(!c.missing("a"));
        while let Some(k) = { if q.is_empty() { None } else { q.get().await } } {
            q.done(&k);
        }
        c.accounts.delete(&sa);
        assert_eq!(
            q.get().await.as_deref(),
            Some("a"),
            "a deleted default account is recreated"
        );
        assert!(c.missing("a"));
    }
}
