//! DefaultBinder: binds through the `pods/binding` subresource.

use std::sync::Arc;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::{Binding, ObjectReference, Pod};
use kube::api::{Api, ObjectMeta, PostParams};

use crate::framework::*;

pub const NAME: &str = "DefaultBinder";

pub struct DefaultBinder;

impl Plugin for DefaultBinder {
    fn name(&self) -> &'static str {
        NAME
    }
}

#[async_trait]
impl BindPlugin for DefaultBinder {
    async fn bind(&self, handle: &Handle, _: &CycleState, pod: &PodInfo, node: &str) -> Status {
        let api: Api<Pod> = Api::namespaced(handle.client.clone(), pod.namespace());
        let binding = Binding {
            metadata: ObjectMeta {
                name: Some(pod.name().to_string()),
                namespace: Some(pod.namespace().to_string()),
                uid: pod.pod.metadata.uid.clone(),
                ..Default::default()
            },
            target: ObjectReference {
                kind: Some("Node".into()),
                name: Some(node.to_string()),
                ..Default::default()
            },
        };
        let r: Result<serde_json::Value, _> = api
            .create_subresource("binding", pod.name(), &PostParams::default(), &binding)
            .await;
        match r {
            Ok(_) => Status::success(),
            Err(e) => Status::error(e.to_string()),
        }
    }
}

pub fn new() -> PluginInstance {
    PluginInstance {
        bind: Some(Arc::new(DefaultBinder)),
        ..PluginInstance::new(NAME)
    }
}
