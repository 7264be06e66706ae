//! The `default/kubernetes` Service, as kube-apiserver's kubernetes-service controller keeps
//! it: at the first address of the service range, port 443 (`https`) to the API servers'
//! secure port, with an Endpoints and an EndpointSlice listing every live API server.
//!
//! API servers find each other the way upstream's lease endpoint reconciler does: each keeps
//! a key `/registry/masterleases/<ip>` alive with a TTL, and the endpoints list every address
//! with a live key. A server that stops cleanly removes its key at once.
//!
//! Alongside runs the repair loop of the service allocators (upstream's ClusterIP and NodePort
//! repair controllers): it re-marks what stored Services hold and frees leaked items.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ferrokube_api::resources;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::registry::WriteCtx;
use crate::{ApiServer, object};

const LEASES_PREFIX: &str = "/registry/masterleases/";
/// upstream `--endpoint-reconciler-type=lease`: leases live 15 s, renewed every 10 s.
const LEASE_TTL: Duration = Duration::from_secs(15);
const RECONCILE_EVERY: Duration = Duration::from_secs(10);
/// upstream's allocation repair loops run every 3 minutes.
const REPAIR_EVERY: Duration = Duration::from_secs(180);
const MANAGER: &str = "kube-apiserver";

/// Where this API server is reached from inside the cluster: the advertise address.
pub fn endpoint(advertise: &str) -> Option<(IpAddr, u16)> {
    let (host, port) = advertise.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host.parse().ok()?, port.parse().ok()?))
}

/// Runs until `cancel`; then gives up this server's lease.
pub async fn run(srv: Arc<ApiServer>, cancel: CancellationToken) {
    let Some((ip, port)) = endpoint(&srv.config.advertise_address) else {
        tracing::warn!(address = %srv.config.advertise_address, "advertise address is not an IP: the kubernetes Service gets no endpoints");
        return;
    };
    let mut leaked = Default::default();
    let mut last_repair: Option<tokio::time::Instant> = None;
    loop {
        if let Err(e) = reconcile(&srv, ip, port).await {
            tracing::warn!(error = %e, "could not reconcile the kubernetes Service");
        }
        if last_repair.is_none_or(|t| t.elapsed() >= REPAIR_EVERY) {
            last_repair = Some(tokio::time::Instant::now());
            repair(&srv, &mut leaked).await;
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(RECONCILE_EVERY) => {}
        }
    }
    let key = format!("{LEASES_PREFIX}{ip}");
    let _ = srv.store.delete(&key, 0).await;
    let _ = write_endpoints(&srv, port).await;
}

async fn repair(srv: &ApiServer, leaked: &mut (Vec<u64>, Vec<u64>)) {
    let info = resources::find("", "v1", "services").expect("services are registered");
    let services: Vec<Value> = match srv.store.list(info.storage_prefix, "", 0, 0).await {
        Ok(l) => l
            .kvs
            .iter()
            .filter_map(|kv| serde_json::from_slice(&kv.value).ok())
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "service allocation repair could not list services");
            return;
        }
    };
    if let Err(e) = srv.registry.services.repair(&services, leaked).await {
        tracing::warn!(error = ?e, "service allocation repair failed");
    }
}

async fn reconcile(srv: &ApiServer, ip: IpAddr, port: u16) -> Result<(), ferrokube_api::ApiError> {
    ensure_service(srv, port).await?;
    renew_lease(srv, ip).await?;
    write_endpoints(srv, port).await
}

async fn renew_lease(srv: &ApiServer, ip: IpAddr) -> Result<(), ferrokube_api::ApiError> {
    let key = format!("{LEASES_PREFIX}{ip}");
    let value = Bytes::from(
        serde_json::to_vec(&json!({
            "kind": "Endpoints", "apiVersion": "v1",
            "metadata": {"name": ip.to_string(), "creationTimestamp": null},
            "subsets": [{"addresses": [{"ip": ip.to_string()}]}],
        }))
        .unwrap_or_default(),
    );
    let internal = ferrokube_api::ApiError::internal;
    match srv.store.get(&key, 0).await.map_err(internal)? {
        (_, Some(kv)) => {
            srv.store
                .update(&key, value, kv.mod_revision, Some(LEASE_TTL))
                .await
                .map_err(internal)?;
        }
        (_, None) => match srv.store.create(&key, value, Some(LEASE_TTL)).await {
            Ok(_) | Err(ferrokube_store::Error::KeyExists { .. }) => {}
            Err(e) => return Err(internal(e)),
        },
    }
    Ok(())
}

async fn live_servers(srv: &ApiServer) -> Result<Vec<IpAddr>, ferrokube_api::ApiError> {
    let listed = srv
        .store
        .list(LEASES_PREFIX, "", 0, 0)
        .await
        .map_err(ferrokube_api::ApiError::internal)?;
    let mut ips: Vec<IpAddr> = listed
        .kvs
        .iter()
        .filter_map(|kv| kv.key.strip_prefix(LEASES_PREFIX)?.parse().ok())
        .collect();
    ips.sort();
    Ok(ips)
}

fn service_body(srv: &ApiServer, port: u16) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {"component": "apiserver", "provider": "kubernetes"},
        },
        "spec": {
            "type": "ClusterIP",
            "clusterIP": srv.registry.services.first_ip().to_string(),
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}],
            "sessionAffinity": "None",
        },
    })
}

async fn ensure_service(srv: &ApiServer, port: u16) -> Result<(), ferrokube_api::ApiError> {
    let info = resources::find("", "v1", "services").expect("services are registered");
    let mut ctx = WriteCtx::system(MANAGER);
    match srv.registry.get(info, "default", "kubernetes", None).await {
        Ok(existing) => {
            let want_port = existing
                .pointer("/spec/ports/0/targetPort")
                .and_then(Value::as_u64)
                == Some(u64::from(port))
                && existing
                    .pointer("/spec/ports/0/port")
                    .and_then(Value::as_u64)
                    == Some(443);
            if want_port {
                return Ok(());
            }
            let mut updated = existing.clone();
            updated["spec"]["ports"] =
                json!([{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]);
            let obj = srv
                .registry
                .decode_input(&mut ctx, info, updated, "Service")?;
            srv.registry
                .update(&mut ctx, info, "default", "kubernetes", "", obj)
                .await
                .map(|_| ())
        }
        Err(e) if e.code == 404 => {
            let obj =
                srv.registry
                    .decode_input(&mut ctx, info, service_body(srv, port), "Service")?;
            match srv.registry.create(&mut ctx, info, "default", obj).await {
                Ok(_) => Ok(()),
                Err(e) if e.code == 409 => Ok(()),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// Puts `want` in place of the stored object unless they already agree on `compare`.
async fn put(
    srv: &ApiServer,
    info: &'static resources::ResourceInfo,
    kind: &str,
    want: Value,
    same: impl Fn(&Value) -> bool,
) -> Result<(), ferrokube_api::ApiError> {
    let mut ctx = WriteCtx::system(MANAGER);
    match srv.registry.get(info, "default", "kubernetes", None).await {
        Ok(existing) if same(&existing) => Ok(()),
        Ok(existing) => {
            let mut updated = want;
            object::set_meta(
                &mut updated,
                "resourceVersion",
                object::resource_version(&existing).to_string(),
            );
            let obj = srv.registry.decode_input(&mut ctx, info, updated, kind)?;
            match srv
                .registry
                .update(&mut ctx, info, "default", "kubernetes", "", obj)
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if e.code == 409 => Ok(()),
                Err(e) => Err(e),
            }
        }
        Err(e) if e.code == 404 => {
            let obj = srv.registry.decode_input(&mut ctx, info, want, kind)?;
            match srv.registry.create(&mut ctx, info, "default", obj).await {
                Ok(_) => Ok(()),
                Err(e) if e.code == 409 => Ok(()),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

async fn write_endpoints(srv: &ApiServer, port: u16) -> Result<(), ferrokube_api::ApiError> {
    let ips = live_servers(srv).await?;
    let ep_info = resources::find("", "v1", "endpoints").expect("endpoints are registered");
    let addresses: Vec<Value> = ips.iter().map(|ip| json!({"ip": ip.to_string()})).collect();
    let ports = json!([{"name": "https", "port": port, "protocol": "TCP"}]);
    let subsets = if addresses.is_empty() {
        json!([])
    } else {
        json!([{"addresses": addresses, "ports": ports}])
    };
    let want_ep = json!({
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": subsets,
    });
    let subsets_now = want_ep["subsets"].clone();
    put(srv, ep_info, "Endpoints", want_ep, |e| {
        e.get("subsets").cloned().unwrap_or(json!([])) == subsets_now
    })
    .await?;

    let es_info = resources::find("discovery.k8s.io", "v1", "endpointslices")
        .expect("endpointslices are registered");
    let v6 = ips.first().is_some_and(IpAddr::is_ipv6);
    let endpoints: Vec<Value> = ips
        .iter()
        .map(|ip| json!({"addresses": [ip.to_string()], "conditions": {"ready": true}}))
        .collect();
    let want_es = json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"kubernetes.io/service-name": "kubernetes"}},
        "addressType": if v6 { "IPv6" } else { "IPv4" },
        "endpoints": endpoints,
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    });
    let endpoints_now = want_es["endpoints"].clone();
    put(srv, es_info, "EndpointSlice", want_es, |e| {
        e.get("endpoints").cloned().unwrap_or(json!([])) == endpoints_now
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertise_addresses_name_the_endpoint() {
        assert_eq!(
            endpoint("127.0.0.1:6443"),
            Some(("127.0.0.1".parse().unwrap(), 6443))
        );
        assert_eq!(endpoint("[::1]:443"), Some(("::1".parse().unwrap(), 443)));
        assert_eq!(endpoint("example.com:443"), None);
    }
}
