//! The endpoints controller: every Service with a selector has an Endpoints object of the same
//! name listing the IPs of its pods — ready pods under `addresses`, the others under
//! `notReadyAddresses` (all of them as ready with `publishNotReadyAddresses`) — with each
//! service port resolved against the pod (named target ports through the containers' ports),
//! grouped into subsets by port set as upstream's `RepackSubsets` does.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ferrokube_client::{Action, Change, Informer, WorkQueue};
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
    ServicePort,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, PostParams};

use crate::Context;
use crate::util::{self, Result};

pub const NAME: &str = "endpoint";
/// Endpoints objects list at most this many addresses (upstream `maxCapacity`).
const MAX_CAPACITY: usize = 1000;
const OVER_CAPACITY: &str = "endpoints.kubernetes.io/over-capacity";
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";

pub fn start(ctx: Arc<Context>) -> BoxFuture<'static, ()> {
    Box::pin(run(ctx))
}

/// Whether a Service's selector picks `pod` (a Service without selector picks nothing).
pub fn selects(svc: &Service, pod: &Pod) -> bool {
    if svc.metadata.namespace != pod.metadata.namespace {
        return false;
    }
    let Some(sel) = svc.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
        return false;
    };
    let labels = pod.metadata.labels.as_ref();
    sel.iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// Services whose endpoints are computed by the controllers: with a selector, not
/// ExternalName.
pub fn managed(svc: &Service) -> bool {
    let Some(spec) = svc.spec.as_ref() else {
        return false;
    };
    spec.type_.as_deref() != Some("ExternalName") && spec.selector.is_some()
}

pub fn is_headless(svc: &Service) -> bool {
    svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None")
}

pub fn publish_not_ready(svc: &Service) -> bool {
    svc.spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false)
}

/// upstream `ShouldPodBeInEndpoints`.
pub fn pod_in_endpoints(pod: &Pod, include_terminating: bool) -> bool {
    if util::is_pod_terminal(pod) {
        return false;
    }
    let has_ip = pod.status.as_ref().is_some_and(|s| {
        s.pod_ip.as_deref().is_some_and(|ip| !ip.is_empty())
            || s.pod_ips.as_ref().is_some_and(|ips| !ips.is_empty())
    });
    if !has_ip {
        return false;
    }
    include_terminating || pod.metadata.deletion_timestamp.is_none()
}

/// The pod's address in the Service's family (the first IPv4 address for IPv4 Services).
pub fn pod_ip(svc: &Service, pod: &Pod) -> Option<String> {
    let want_v6 = svc
        .spec
        .as_ref()
        .and_then(|s| s.ip_families.as_ref())
        .and_then(|f| f.first())
        .is_some_and(|f| f == "IPv6");
    let status = pod.status.as_ref()?;
    let mut ips: Vec<String> = status
        .pod_ips
        .iter()
        .flatten()
        .map(|p| p.ip.clone())
        .collect();
    if ips.is_empty()
        && let Some(ip) = &status.pod_ip
    {
        ips.push(ip.clone());
    }
    ips.into_iter().find(|ip| ip.contains(':') == want_v6)
}

/// upstream `ShouldSetHostname`.
pub fn hostname(svc: &Service, pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let h = spec.hostname.as_deref().filter(|h| !h.is_empty())?;
    (spec.subdomain.as_deref() == svc.metadata.name.as_deref()
        && svc.metadata.namespace == pod.metadata.namespace)
        .then(|| h.to_string())
}

/// upstream `podutil.FindPort`: a numbered target port as is, a named one through the pod's
/// container ports of the same protocol (sidecar init containers included).
pub fn find_port(pod: &Pod, port: &ServicePort) -> Option<i32> {
    let protocol = port.protocol.as_deref().unwrap_or("TCP");
    match port.target_port.as_ref() {
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            let spec = pod.spec.as_ref()?;
            let sidecars = spec
                .init_containers
                .iter()
                .flatten()
                .filter(|c| c.restart_policy.as_deref() == Some("Always"));
            spec.containers
                .iter()
                .chain(sidecars)
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| {
                    p.name.as_deref() == Some(name.as_str())
                        && p.protocol.as_deref().unwrap_or("TCP") == protocol
                })
                .map(|p| p.container_port)
        }
        None => Some(port.port),
    }
}

pub fn target_ref(pod: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".into()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        ..Default::default()
    }
}

/// (port name, number, protocol)
type PortKey = (String, i32, String);
/// (IP, pod UID)
type AddressKey = (String, String);
type Addresses = BTreeMap<AddressKey, (EndpointAddress, bool)>;
/// (ready, not ready, ports)
type Subset = (
    Vec<EndpointAddress>,
    Vec<EndpointAddress>,
    Vec<EndpointPort>,
);

/// The subsets of a Service's Endpoints.
pub fn desired_subsets(svc: &Service, pods: &[Arc<Pod>]) -> Vec<EndpointSubset> {
    let tolerate = publish_not_ready(svc);
    let ports = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default();
    // (port or sentinel) -> address key -> (address, ready)
    let mut by_port: BTreeMap<Option<PortKey>, Addresses> = BTreeMap::new();
    let mut port_defs: BTreeMap<PortKey, EndpointPort> = BTreeMap::new();
    for pod in pods {
        if !pod_in_endpoints(pod, tolerate) {
            continue;
        }
        let Some(ip) = pod_ip(svc, pod) else { continue };
        let addr = EndpointAddress {
            ip: ip.clone(),
            hostname: hostname(svc, pod),
            node_name: Some(util::pod_node(pod).to_string()).filter(|n| !n.is_empty()),
            target_ref: Some(target_ref(pod)),
        };
        let ready = tolerate || util::is_pod_ready(pod);
        let key = (ip, pod.metadata.uid.clone().unwrap_or_default());
        if ports.is_empty() {
            if is_headless(svc) {
                by_port.entry(None).or_default().insert(key, (addr, ready));
            }
            continue;
        }
        for sp in &ports {
            let Some(num) = find_port(pod, sp) else {
                continue;
            };
            let ep = EndpointPort {
                name: sp.name.clone().filter(|n| !n.is_empty()),
                port: num,
                protocol: Some(sp.protocol.clone().unwrap_or_else(|| "TCP".into())),
                app_protocol: sp.app_protocol.clone(),
            };
            let pk = (
                ep.name.clone().unwrap_or_default(),
                num,
                ep.protocol.clone().unwrap_or_default(),
            );
            port_defs.insert(pk.clone(), ep);
            by_port
                .entry(Some(pk))
                .or_default()
                .insert(key.clone(), (addr.clone(), ready));
        }
    }
    // RepackSubsets: addresses offering the same ports share a subset.
    let mut groups: BTreeMap<Vec<(AddressKey, bool)>, Subset> = BTreeMap::new();
    for (port, addrs) in by_port {
        let sig: Vec<(AddressKey, bool)> =
            addrs.iter().map(|(k, (_, r))| (k.clone(), *r)).collect();
        let entry = groups.entry(sig).or_insert_with(|| {
            let mut ready = Vec::new();
            let mut not_ready = Vec::new();
            for (a, r) in addrs.values() {
                if *r {
                    ready.push(a.clone());
                } else {
                    not_ready.push(a.clone());
                }
            }
            (ready, not_ready, Vec::new())
        });
        if let Some(pk) = port {
            entry.2.push(port_defs[&pk].clone());
        }
    }
    let mut subsets: Vec<EndpointSubset> = groups
        .into_values()
        .map(|(ready, not_ready, ports)| EndpointSubset {
            addresses: (!ready.is_empty()).then_some(ready),
            not_ready_addresses: (!not_ready.is_empty()).then_some(not_ready),
            ports: (!ports.is_empty()).then_some(ports),
        })
        .collect();
    subsets.sort_by_key(|s| {
        s.addresses
            .iter()
            .chain(s.not_ready_addresses.iter())
            .flatten()
            .map(|a| a.ip.clone())
            .next()
            .unwrap_or_default()
    });
    subsets
}

/// Keeps at most [`MAX_CAPACITY`] addresses, ready ones first (upstream `truncateEndpoints`).
fn truncate(subsets: &mut [EndpointSubset]) -> bool {
    let total: usize = subsets
        .iter()
        .map(|s| {
            s.addresses.as_ref().map_or(0, Vec::len)
                + s.not_ready_addresses.as_ref().map_or(0, Vec::len)
        })
        .sum();
    if total <= MAX_CAPACITY {
        return false;
    }
    let mut budget = MAX_CAPACITY;
    for s in subsets.iter_mut() {
        if let Some(a) = s.addresses.as_mut() {
            a.truncate(budget);
            budget -= a.len();
        }
    }
    for s in subsets.iter_mut() {
        if let Some(a) = s.not_ready_addresses.as_mut() {
            a.truncate(budget);
            budget -= a.len();
        }
    }
    true
}

#[derive(Clone)]
pub struct EndpointsController {
    pub services: Arc<Informer<Service>>,
    pub pods: Arc<Informer<Pod>>,
    pub endpoints: Arc<Informer<Endpoints>>,
}

/// The labels an Endpoints object carries: the Service's, plus the headless marker.
pub fn endpoints_labels(svc: &Service) -> BTreeMap<String, String> {
    let mut l = svc.metadata.labels.clone().unwrap_or_default();
    if is_headless(svc) {
        l.insert(HEADLESS_LABEL.into(), String::new());
    } else {
        l.remove(HEADLESS_LABEL);
    }
    l
}

/// Enqueues the Services that select a pod, before and after a change.
pub fn services_of_pod(services: &Informer<Service>, change: &Change<'_, Pod>) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let mut consider = |p: &Pod| {
        let ns = p.metadata.namespace.as_deref().unwrap_or("");
        for s in services.list_namespace(ns) {
            if selects(&s, p) {
                keys.insert(ferrokube_client::key_of(&*s));
            }
        }
    };
    match change {
        Change::Added(p) | Change::Deleted(p) => consider(p),
        Change::Updated { old, new } => {
            consider(old);
            if old.metadata.labels != new.metadata.labels {
                consider(new);
            }
        }
    }
    keys
}

impl EndpointsController {
    pub fn watch(&self, queue: &Arc<WorkQueue<String>>) {
        let q = queue.clone();
        self.services.on_change(move |c: &Change<'_, Service>| {
            q.add(ferrokube_client::key_of(&**c.object()))
        });
        let q = queue.clone();
        let services = self.services.clone();
        self.pods.on_change(move |c: &Change<'_, Pod>| {
            for k in services_of_pod(&services, c) {
                q.add(k);
            }
        });
        let q = queue.clone();
        self.endpoints.on_change(move |c: &Change<'_, Endpoints>| {
            if let Change::Deleted(e) = c {
                q.add(ferrokube_client::key_of(&***e));
            }
        });
    }

    /// The Endpoints a Service should have now; None when the controller leaves the name alone
    /// (no Service, or one without selector).
    pub fn desired(&self, key: &str) -> Option<Endpoints> {
        let svc = self.services.get(key)?;
        if !managed(&svc) {
            return None;
        }
        let (ns, _) = ferrokube_client::split_key(key);
        let pods: Vec<Arc<Pod>> = self
            .pods
            .list_namespace(ns)
            .into_iter()
            .filter(|p| selects(&svc, p))
            .collect();
        let mut subsets = desired_subsets(&svc, &pods);
        let truncated = truncate(&mut subsets);
        let mut ep = Endpoints::default();
        ep.metadata.name = svc.metadata.name.clone();
        ep.metadata.namespace = svc.metadata.namespace.clone();
        ep.metadata.labels = Some(endpoints_labels(&svc));
        if truncated {
            ep.metadata.annotations = Some(BTreeMap::from([(
                OVER_CAPACITY.to_string(),
                "truncated".to_string(),
            )]));
        }
        ep.subsets = (!subsets.is_empty()).then_some(subsets);
        Some(ep)
    }
}

fn same(current: &Endpoints, want: &Endpoints) -> bool {
    let ann = |e: &Endpoints| {
        e.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(OVER_CAPACITY).cloned())
    };
    current.subsets.clone().unwrap_or_default() == want.subsets.clone().unwrap_or_default()
        && current.metadata.labels.clone().unwrap_or_default()
            == want.metadata.labels.clone().unwrap_or_default()
        && ann(current) == ann(want)
}

async fn run(ctx: Arc<Context>) {
    let c = EndpointsController {
        services: ctx.informers.get::<Service>(),
        pods: ctx.informers.get::<Pod>(),
        endpoints: ctx.informers.get::<Endpoints>(),
    };
    c.services.wait_synced().await;
    c.pods.wait_synced().await;
    c.endpoints.wait_synced().await;
    let queue = WorkQueue::new();
    c.watch(&queue);
    let client = ctx.client.clone();
    util::run_queue(
        queue,
        ctx.config.workers,
        ctx.cancel.clone(),
        move |key: String| {
            let c = c.clone();
            let client = client.clone();
            async move { sync(&c, &client, &key).await }
        },
    )
    .await;
}

async fn sync(c: &EndpointsController, client: &kube::Client, key: &str) -> Result<Action> {
    let (ns, name) = ferrokube_client::split_key(key);
    let api: Api<Endpoints> = Api::namespaced(client.clone(), ns);
    let Some(want) = c.desired(key) else {
        if c.services.get(key).is_none() && c.endpoints.get(key).is_some() {
            match api.delete(name, &Default::default()).await {
                Ok(_) => {}
                Err(e) if util::is_not_found(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        return Ok(Action::AwaitChange);
    };
    match c.endpoints.get(key) {
        Some(current) if same(&current, &want) => {}
        Some(current) => {
            let mut updated = (*current).clone();
            updated.subsets = want.subsets;
            updated.metadata.labels = want.metadata.labels;
            let mut ann = updated.metadata.annotations.take().unwrap_or_default();
            ann.remove(OVER_CAPACITY);
            ann.extend(want.metadata.annotations.unwrap_or_default());
            updated.metadata.annotations = (!ann.is_empty()).then_some(ann);
            api.replace(name, &PostParams::default(), &updated).await?;
        }
        None => match api.create(&PostParams::default(), &want).await {
            Ok(_) => {}
            // The informer has not seen it yet: look again with what the API has.
            Err(e) if util::is_conflict(&e) => return Err(e.into()),
            // The namespace is going away.
            Err(kube::Error::Api(s)) if s.code == 403 || s.code == 404 => {}
            Err(e) => return Err(e.into()),
        },
    }
    Ok(Action::AwaitChange)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub fn pod(name: &str, ip: &str, ready: bool, labels: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "d", "uid": format!("uid-{name}"), "labels": labels},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": [{"name": "web", "containerPort": 8080}]}]},
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                       "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
        }))
        .unwrap()
    }

    pub fn service(name: &str, spec: serde_json::Value) -> Service {
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": "d", "uid": "svc-uid", "labels": {"app": "web"}}, "spec": spec})).unwrap()
    }

    fn controller() -> EndpointsController {
        EndpointsController {
            services: Informer::detached(),
            pods: Informer::detached(),
            endpoints: Informer::detached(),
        }
    }

    #[tokio::test]
    async fn endpoints_follow_readiness_and_named_ports() {
        let c = controller();
        let q = WorkQueue::new();
        c.watch(&q);
        c.services.apply(service(
            "web",
            json!({"selector": {"app": "web"}, "clusterIP": "10.96.0.5",
            "ports": [{"name": "http", "port": 80, "targetPort": "web", "protocol": "TCP"},
                      {"name": "raw", "port": 81, "targetPort": 9090, "protocol": "TCP"}]}),
        ));
        c.pods
            .apply(pod("a", "10.244.0.2", true, json!({"app": "web"})));
        c.pods
            .apply(pod("b", "10.244.0.3", false, json!({"app": "web"})));
        c.pods
            .apply(pod("other", "10.244.0.4", true, json!({"app": "db"})));
        assert_eq!(
            q.len(),
            1,
            "one key for the service, however many pods changed"
        );
        let ep = c.desired("d/web").unwrap();
        let subsets = ep.subsets.unwrap();
        assert_eq!(subsets.len(), 1);
        let s = &subsets[0];
        assert_eq!(s.addresses.as_ref().unwrap()[0].ip, "10.244.0.2");
        assert_eq!(s.not_ready_addresses.as_ref().unwrap()[0].ip, "10.244.0.3");
        let ports: Vec<i32> = s.ports.as_ref().unwrap().iter().map(|p| p.port).collect();
        assert_eq!(ports, vec![8080, 9090]);
        assert_eq!(
            s.addresses.as_ref().unwrap()[0]
                .target_ref
                .as_ref()
                .unwrap()
                .name
                .as_deref(),
            Some("a")
        );
        // b becomes ready
        c.pods
            .apply(pod("b", "10.244.0.3", true, json!({"app": "web"})));
        let ep = c.desired("d/web").unwrap();
        let s = &ep.subsets.unwrap()[0];
        assert_eq!(s.addresses.as_ref().unwrap().len(), 2);
        assert!(s.not_ready_addresses.is_none());
    }

    #[test]
    fn publish_not_ready_lists_every_pod_as_ready_and_headless_services_need_no_ports() {
        let c = controller();
        c.services.apply(service("h", json!({"selector": {"app": "web"}, "clusterIP": "None", "publishNotReadyAddresses": true})));
        let mut p = pod("a", "10.244.0.2", false, json!({"app": "web"}));
        p.spec.as_mut().unwrap().hostname = Some("a".into());
        p.spec.as_mut().unwrap().subdomain = Some("h".into());
        c.pods.apply(p);
        let ep = c.desired("d/h").unwrap();
        assert_eq!(
            ep.metadata
                .labels
                .as_ref()
                .unwrap()
                .get(HEADLESS_LABEL)
                .map(String::as_str),
            Some("")
        );
        let s = &ep.subsets.unwrap()[0];
        let a = &s.addresses.as_ref().unwrap()[0];
        assert_eq!(a.hostname.as_deref(), Some("a"));
        assert!(s.ports.is_none());
    }

    #[test]
    fn pods_without_the_named_port_or_an_ip_are_left_out_and_selectorless_services_ignored() {
        let c = controller();
        c.services.apply(service(
            "s",
            json!({"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "nope"}]}),
        ));
        c.pods
            .apply(pod("a", "10.244.0.2", true, json!({"app": "web"})));
        let mut no_ip = pod("b", "", true, json!({"app": "web"}));
        no_ip.status.as_mut().unwrap().pod_ips = None;
        c.pods.apply(no_ip);
        assert!(c.desired("d/s").unwrap().subsets.is_none());
        c.services
            .apply(service("manual", json!({"ports": [{"port": 80}]})));
        assert!(c.desired("d/manual").is_none());
    }
}
