//! Claiming objects by selector, as upstream's `ControllerRefManager`: a controller keeps the
//! objects it controls whose labels still match, releases those that stopped matching (removes
//! its owner reference), and adopts orphans that match (adds a controller reference) after
//! checking with a fresh read that it is not itself being deleted.

use std::fmt::Debug;
use std::sync::Arc;

use ferrokube_api::selector::LabelSelector as Selector;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, Patch};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;
use tokio::sync::OnceCell;

use crate::controller_utils::{controller_of, labels_of, patch_params};
use crate::{Error, Result};

/// Claims children of kind `C` for an owner of kind `K`.
pub struct RefManager<'a, K> {
    client: kube::Client,
    owner: &'a K,
    controller_ref: OwnerReference,
    selector: &'a Selector,
    can_adopt: OnceCell<Result<(), String>>,
}

impl<'a, K> RefManager<'a, K>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static,
{
    pub fn new(
        client: kube::Client,
        owner: &'a K,
        controller_ref: OwnerReference,
        selector: &'a Selector,
    ) -> Self {
        RefManager {
            client,
            owner,
            controller_ref,
            selector,
            can_adopt: OnceCell::new(),
        }
    }

    /// `CanAdopt`: the owner, read fresh from the API, is the same object and not being deleted.
    async fn can_adopt(&self) -> Result<(), String> {
        self.can_adopt
            .get_or_init(|| async {
                let ns = self.owner.namespace().unwrap_or_default();
                let name = self.owner.name_any();
                let api: Api<K> = Api::namespaced(self.client.clone(), &ns);
                let fresh = api
                    .get(&name)
                    .await
                    .map_err(|e| format!("can't recheck DeletionTimestamp: {e}"))?;
                let (want, got) = (self.owner.uid(), fresh.uid());
                if want != got {
                    return Err(format!(
                        "original {ns}/{name} is gone: got uid {}, wanted {}",
                        got.unwrap_or_default(),
                        want.unwrap_or_default()
                    ));
                }
                if fresh.meta().deletion_timestamp.is_some() {
                    return Err(format!("{ns}/{name} has just been deleted"));
                }
                Ok(())
            })
            .await
            .clone()
    }

    /// Claims from `candidates` (the owner's children and the namespace's orphans); `filter`
    /// is an extra condition for matching (e.g. DaemonSet pods on existing nodes).
    pub async fn claim<C>(
        &self,
        candidates: Vec<Arc<C>>,
        filter: impl Fn(&C) -> bool,
    ) -> Result<Vec<Arc<C>>>
    where
        C: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + Debug
            + Send
            + Sync
            + 'static,
    {
        let owner_uid = self.owner.uid().unwrap_or_default();
        let owner_deleting = self.owner.meta().deletion_timestamp.is_some();
        let owner_ns = self.owner.namespace().unwrap_or_default();
        let mut claimed = Vec::new();
        let mut errors = Vec::new();
        for c in candidates {
            let matches = self.selector.matches(labels_of(c.meta())) && filter(&c);
            match controller_of(c.meta()) {
                Some(r) if r.uid != owner_uid => continue,
                Some(_) => {
                    if matches {
                        claimed.push(c);
                        continue;
                    }
                    if owner_deleting {
                        continue;
                    }
                    if let Err(e) = self.release(&*c).await
                        && !matches!(e.code(), Some(404) | Some(422))
                    {
                        errors.push(e);
                    }
                }
                None => {
                    if owner_deleting
                        || !matches
                        || c.meta().deletion_timestamp.is_some()
                        || c.namespace().unwrap_or_default() != owner_ns
                    {
                        continue;
                    }
                    match self.adopt(&*c).await {
                        Ok(()) => claimed.push(c),
                        Err(e) if e.is_not_found() => {}
                        Err(e) => errors.push(e),
                    }
                }
            }
        }
        match errors.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(claimed),
        }
    }

    async fn adopt<C>(&self, c: &C) -> Result<()>
    where
        C: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + Debug,
    {
        let what = format!("{}/{}", c.namespace().unwrap_or_default(), c.name_any());
        if let Err(e) = self.can_adopt().await {
            return Err(Error::invalid(
                what,
                format!(
                    "can't adopt {} ({}): {e}",
                    C::kind(&()),
                    c.uid().unwrap_or_default()
                ),
            ));
        }
        let patch = json!({"metadata": {
            "ownerReferences": [self.controller_ref],
            "uid": c.uid(),
        }});
        let api: Api<C> = Api::namespaced(self.client.clone(), &c.namespace().unwrap_or_default());
        api.patch(&c.name_any(), &patch_params(), &Patch::Strategic(patch))
            .await
            .map(|_| ())
            .map_err(|e| Error::api("adopting", what, e))
    }

    async fn release<C>(&self, c: &C) -> Result<()>
    where
        C: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + Debug,
    {
        let patch = json!({"metadata": {
            "ownerReferences": [{"$patch": "delete", "uid": self.controller_ref.uid}],
            "uid": c.uid(),
        }});
        let api: Api<C> = Api::namespaced(self.client.clone(), &c.namespace().unwrap_or_default());
        api.patch(&c.name_any(), &patch_params(), &Patch::Strategic(patch))
            .await
            .map(|_| ())
            .map_err(|e| {
                Error::api(
                    "releasing",
                    format!("{}/{}", c.namespace().unwrap_or_default(), c.name_any()),
                    e,
                )
            })
    }
}
