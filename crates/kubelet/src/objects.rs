//! ConfigMaps, Secrets, claims and volumes the kubelet reads for its pods: fetched when a pod
//! needs them and kept for a short while, as upstream's TTL cache strategy does, so a burst of
//! containers referring to one ConfigMap costs one request.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolume, PersistentVolumeClaim, Secret};
use kube::api::Api;
use parking_lot::Mutex;
use tokio::time::Instant;

/// How long a fetched object is used before it is fetched again.
pub const TTL: Duration = Duration::from_secs(5);

/// The reading side: a trait so tests and simulated nodes can answer without an API server.
#[async_trait::async_trait]
pub trait Objects: Send + Sync {
    async fn config_map(&self, namespace: &str, name: &str) -> Result<Option<ConfigMap>, String>;
    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<Secret>, String>;
    async fn claim(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<PersistentVolumeClaim>, String>;
    async fn volume(&self, name: &str) -> Result<Option<PersistentVolume>, String>;
    /// A token for the pod's service account (TokenRequest).
    async fn service_account_token(
        &self,
        namespace: &str,
        service_account: &str,
        audience: Option<String>,
        expiration_seconds: i64,
        pod: (&str, &str),
    ) -> Result<String, String>;
}

type Cached<T> = Mutex<HashMap<String, (Instant, Option<Arc<T>>)>>;

/// Objects read through the API with a TTL cache.
pub struct ApiObjects {
    client: kube::Client,
    config_maps: Cached<ConfigMap>,
    secrets: Cached<Secret>,
    /// Service account tokens by namespace, account, audience, lifetime and pod: reused until
    /// 80% of their lifetime has passed, as upstream's token manager does, so a pod resync does
    /// not cost a TokenRequest.
    tokens: Mutex<HashMap<String, (Instant, Duration, String)>>,
}

impl ApiObjects {
    pub fn new(client: kube::Client) -> Arc<Self> {
        Arc::new(ApiObjects {
            client,
            config_maps: Mutex::new(HashMap::new()),
            secrets: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
        })
    }
}

async fn cached_get<K>(
    cache: &Cached<K>,
    api: Api<K>,
    namespace: &str,
    name: &str,
) -> Result<Option<Arc<K>>, String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let key = format!("{namespace}/{name}");
    if let Some((at, v)) = cache.lock().get(&key)
        && at.elapsed() < TTL
    {
        return Ok(v.clone());
    }
    let v = api
        .get_opt(name)
        .await
        .map_err(|e| e.to_string())?
        .map(Arc::new);
    let mut c = cache.lock();
    if c.len() > 4096 {
        c.clear();
    }
    c.insert(key, (Instant::now(), v.clone()));
    Ok(v)
}

#[async_trait::async_trait]
impl Objects for ApiObjects {
    async fn config_map(&self, namespace: &str, name: &str) -> Result<Option<ConfigMap>, String> {
        let api = Api::namespaced(self.client.clone(), namespace);
        Ok(cached_get(&self.config_maps, api, namespace, name)
            .await?
            .map(|c| (*c).clone()))
    }

    async fn secret(&self, namespace: &str, name: &str) -> Result<Option<Secret>, String> {
        let api = Api::namespaced(self.client.clone(), namespace);
        Ok(cached_get(&self.secrets, api, namespace, name)
            .await?
            .map(|s| (*s).clone()))
    }

    async fn claim(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<PersistentVolumeClaim>, String> {
        Api::<PersistentVolumeClaim>::namespaced(self.client.clone(), namespace)
            .get_opt(name)
            .await
            .map_err(|e| e.to_string())
    }

    async fn volume(&self, name: &str) -> Result<Option<PersistentVolume>, String> {
        Api::<PersistentVolume>::all(self.client.clone())
            .get_opt(name)
            .await
            .map_err(|e| e.to_string())
    }

    async fn service_account_token(
        &self,
        namespace: &str,
        service_account: &str,
        audience: Option<String>,
        expiration_seconds: i64,
        pod: (&str, &str),
    ) -> Result<String, String> {
        use k8s_openapi::api::authentication::v1::{
            BoundObjectReference, TokenRequest, TokenRequestSpec,
        };
        let key = format!(
            "{namespace}/{service_account}/{}/{expiration_seconds}/{}",
            audience.as_deref().unwrap_or(""),
            pod.1
        );
        if let Some((at, ttl, token)) = self.tokens.lock().get(&key)
            && at.elapsed() < ttl.mul_f64(0.8)
        {
            return Ok(token.clone());
        }
        let api: Api<k8s_openapi::api::core::v1::ServiceAccount> =
            Api::namespaced(self.client.clone(), namespace);
        let req = TokenRequest {
            spec: TokenRequestSpec {
                audiences: audience.into_iter().collect(),
                expiration_seconds: Some(expiration_seconds),
                bound_object_ref: Some(BoundObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    name: Some(pod.0.to_string()),
                    uid: Some(pod.1.to_string()),
                }),
            },
            ..Default::default()
        };
        let resp = api
            .create_token_request(service_account, &Default::default(), &req)
            .await
            .map_err(|e| e.to_string())?;
        let token = resp
            .status
            .map(|s| s.token)
            .ok_or_else(|| "the token request returned no token".to_string())?;
        let ttl = Duration::from_secs(expiration_seconds.max(1) as u64);
        let mut tokens = self.tokens.lock();
        // Tokens past their lifetime belong to pods long gone or are refreshed anyway.
        tokens.retain(|_, (at, ttl, _)| at.elapsed() < *ttl);
        tokens.insert(key, (Instant::now(), ttl, token.clone()));
        Ok(token)
    }
}
