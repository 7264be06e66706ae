//! The root-ca-cert-publisher: a `kube-root-ca.crt` ConfigMap with the cluster CA in every
//! namespace, kept as published (recreated when deleted, restored when edited).

use std::collections::BTreeMap;
use std::sync::Arc;

use ferrokube_client::{Action, Change, Informer, WorkQueue};
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, PostParams};

use crate::Context;
use crate::util::{self, Result};

pub const NAME: &str = "root-ca-cert-publisher";
pub const CONFIG_MAP: &str = "kube-root-ca.crt";
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

pub fn start(ctx: Arc<Context>) -> BoxFuture<'static, ()> {
    Box::pin(run(ctx))
}

#[derive(Clone)]
pub struct RootCaPublisher {
    pub namespaces: Arc<Informer<Namespace>>,
    pub config_maps: Arc<Informer<ConfigMap>>,
    pub ca_pem: String,
}

/// What the publisher wants to do in a namespace.
#[derive(Debug, PartialEq, Eq)]
pub enum Publish {
    Nothing,
    Create,
    /// Restore the data and description of the existing map.
    Update,
}

impl RootCaPublisher {
    pub fn desired(&self, ns: &str) -> Publish {
        let Some(n) = self.namespaces.get(ns) else {
            return Publish::Nothing;
        };
        if n.metadata.deletion_timestamp.is_some() {
            return Publish::Nothing;
        }
        match self.config_maps.get_named(ns, CONFIG_MAP) {
            None => Publish::Create,
            Some(cm) => {
                let data_ok = cm
                    .data
                    .as_ref()
                    .and_then(|d| d.get("ca.crt"))
                    .is_some_and(|v| *v == self.ca_pem)
                    && cm.data.as_ref().map(|d| d.len()) == Some(1);
                let ann_ok = cm
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get("kubernetes.io/description"))
                    .is_some_and(|d| d == DESCRIPTION);
                if data_ok && ann_ok {
                    Publish::Nothing
                } else {
                    Publish::Update
                }
            }
        }
    }

    pub fn watch(&self, queue: &Arc<WorkQueue<String>>) {
        let q = queue.clone();
        self.namespaces.on_change(move |c: &Change<'_, Namespace>| {
            q.add(ferrokube_client::key_of(&**c.object()))
        });
        let q = queue.clone();
        self.config_maps
            .on_change(move |c: &Change<'_, ConfigMap>| {
                let cm = c.object();
                if cm.metadata.name.as_deref() == Some(CONFIG_MAP)
                    && let Some(ns) = cm.metadata.namespace.clone()
                {
                    q.add(ns);
                }
            });
    }

    fn body(&self, base: Option<&ConfigMap>) -> ConfigMap {
        let mut cm = base.cloned().unwrap_or_default();
        cm.metadata.name = Some(CONFIG_MAP.into());
        cm.metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert("kubernetes.io/description".into(), DESCRIPTION.into());
        cm.data = Some(BTreeMap::from([(
            "ca.crt".to_string(),
            self.ca_pem.clone(),
        )]));
        cm.binary_data = None;
        cm
    }
}

async fn run(ctx: Arc<Context>) {
    if ctx.config.root_ca_pem.is_empty() {
        tracing::info!("no root CA configured: {NAME} stays idle");
        return;
    }
    let c = RootCaPublisher {
        namespaces: ctx.informers.get::<Namespace>(),
        config_maps: ctx.informers.get::<ConfigMap>(),
        ca_pem: ctx.config.root_ca_pem.clone(),
    };
    c.namespaces.wait_synced().await;
    c.config_maps.wait_synced().await;
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

async fn sync(c: &RootCaPublisher, client: &kube::Client, ns: &str) -> Result<Action> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let r = match c.desired(ns) {
        Publish::Nothing => return Ok(Action::AwaitChange),
        Publish::Create => api.create(&PostParams::default(), &c.body(None)).await,
        Publish::Update => {
            let current = c.config_maps.get_named(ns, CONFIG_MAP);
            api.replace(
                CONFIG_MAP,
                &PostParams::default(),
                &c.body(current.as_deref()),
            )
            .await
        }
    };
    match r {
        Ok(_) => Ok(Action::AwaitChange),
        Err(kube::Error::Api(s)) if s.code == 403 || s.code == 404 => Ok(Action::AwaitChange),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_map_is_created_and_restored_after_edits() {
        let c = RootCaPublisher {
            namespaces: Informer::detached(),
            config_maps: Informer::detached(),
            ca_pem: "PEM".into(),
        };
        c.namespaces
            .apply(serde_json::from_value(serde_json::json!({"metadata": {"name": "a"}})).unwrap());
        assert_eq!(c.desired("a"), Publish::Create);
        assert_eq!(c.desired("missing"), Publish::Nothing);
        let mut cm = c.body(None);
        cm.metadata.namespace = Some("a".into());
        c.config_maps.apply(cm.clone());
        assert_eq!(c.desired("a"), Publish::Nothing);
        cm.data
            .as_mut()
            .unwrap()
            .insert("ca.crt".into(), "edited".into());
        c.config_maps.apply(cm);
        assert_eq!(c.desired("a"), Publish::Update);
    }
}
