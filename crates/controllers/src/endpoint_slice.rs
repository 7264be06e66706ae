//! The endpointslice controller: every Service with a selector has EndpointSlices
//! (`discovery.k8s.io/v1`) holding one endpoint per pod with an IP, with `ready`, `serving`
//! and `terminating` conditions, at most 100 endpoints per slice, one group of slices per set
//! of resolved ports, labelled `kubernetes.io/service-name` and
//! `endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io`, and owned by the
//! Service. A Service without endpoints keeps one empty placeholder slice.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use ferrokube_client::{Action, Change, Informer, WorkQueue};
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::watcher;
use parking_lot::Mutex;

use crate::Context;
use crate::endpoints::{self, HEADLESS_LABEL};
use crate::util::{self, Result};

pub const NAME: &str = "endpointslice";
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";
/// `--max-endpoints-per-slice`.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;
const BY_SERVICE: &str = "service";

pub fn start(ctx: Arc<Context>) -> BoxFuture<'static, ()> {
    Box::pin(run(ctx))
}

/// One slice as the controller wants it: its ports and endpoints.
#[derive(Clone, Debug, PartialEq)]
pub struct SliceContent {
    pub ports: Option<Vec<EndpointPort>>,
    pub endpoints: Option<Vec<Endpoint>>,
}

type PortKey = Vec<(String, i32, String)>;

fn port_key(ports: &[EndpointPort]) -> PortKey {
    let mut k: PortKey = ports
        .iter()
        .map(|p| {
            (
                p.name.clone().unwrap_or_default(),
                p.port.unwrap_or(0),
                p.protocol.clone().unwrap_or_default(),
            )
        })
        .collect();
    k.sort();
    k
}

fn slice_port_key(s: &EndpointSlice) -> Option<PortKey> {
    s.ports.as_deref().map(port_key)
}

/// The slices a Service should have, grouped and chunked.
pub fn desired_slices(
    svc: &Service,
    pods: &[Arc<Pod>],
    nodes: &Informer<Node>,
) -> Vec<SliceContent> {
    let publish = endpoints::publish_not_ready(svc);
    let svc_ports = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default();
    let mut groups: BTreeMap<PortKey, (Vec<EndpointPort>, Vec<Endpoint>)> = BTreeMap::new();
    let mut sorted: Vec<&Arc<Pod>> = pods.iter().collect();
    sorted.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    for pod in sorted {
        if !endpoints::pod_in_endpoints(pod, true) {
            continue;
        }
        let Some(ip) = endpoints::pod_ip(svc, pod) else {
            continue;
        };
        let ports: Vec<EndpointPort> = svc_ports
            .iter()
            .filter_map(|sp| {
                let n = endpoints::find_port(pod, sp)?;
                Some(EndpointPort {
                    name: Some(sp.name.clone().unwrap_or_default()),
                    port: Some(n),
                    protocol: Some(sp.protocol.clone().unwrap_or_else(|| "TCP".into())),
                    app_protocol: sp.app_protocol.clone(),
                })
            })
            .collect();
        let terminating = pod.metadata.deletion_timestamp.is_some();
        let ready_pod = util::is_pod_ready(pod);
        let serving = publish || ready_pod;
        let ready = publish || (ready_pod && !terminating);
        let node = util::pod_node(pod);
        let zone = (!node.is_empty())
            .then(|| nodes.get(node))
            .flatten()
            .and_then(|n| {
                n.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("topology.kubernetes.io/zone").cloned())
            });
        let ep = Endpoint {
            addresses: vec![ip],
            conditions: Some(EndpointConditions {
                ready: Some(ready),
                serving: Some(serving),
                terminating: Some(terminating),
            }),
            hostname: endpoints::hostname(svc, pod),
            node_name: (!node.is_empty()).then(|| node.to_string()),
            target_ref: Some(endpoints::target_ref(pod)),
            zone,
            ..Default::default()
        };
        let entry = groups
            .entry(port_key(&ports))
            .or_insert_with(|| (ports.clone(), Vec::new()));
        entry.1.push(ep);
    }
    let mut out = Vec::new();
    for (_, (ports, eps)) in groups {
        for chunk in eps.chunks(MAX_ENDPOINTS_PER_SLICE) {
            out.push(SliceContent {
                ports: Some(ports.clone()),
                endpoints: Some(chunk.to_vec()),
            });
        }
    }
    if out.is_empty() {
        out.push(SliceContent {
            ports: None,
            endpoints: None,
        });
    }
    out
}

/// Labels of a Service's slices.
pub fn slice_labels(svc: &Service) -> BTreeMap<String, String> {
    let mut l = svc.metadata.labels.clone().unwrap_or_default();
    l.insert(
        SERVICE_NAME_LABEL.into(),
        svc.metadata.name.clone().unwrap_or_default(),
    );
    l.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    if endpoints::is_headless(svc) {
        l.insert(HEADLESS_LABEL.into(), String::new());
    } else {
        l.remove(HEADLESS_LABEL);
    }
    l
}

/// The writes that bring a Service's slices to what it should have.
#[derive(Debug, Default)]
pub struct Plan {
    pub create: Vec<SliceContent>,
    /// (existing slice name, new content)
    pub update: Vec<(String, SliceContent)>,
    pub delete: Vec<String>,
}

fn content_of(s: &EndpointSlice) -> SliceContent {
    SliceContent {
        ports: s.ports.clone().filter(|p| !p.is_empty()),
        endpoints: Some(s.endpoints.clone()).filter(|e| !e.is_empty()),
    }
}

fn normalized(c: &SliceContent) -> SliceContent {
    SliceContent {
        ports: c.ports.clone().filter(|p| !p.is_empty()),
        endpoints: c.endpoints.clone().filter(|e| !e.is_empty()),
    }
}

/// Matches wanted slices to existing ones with the same ports (reusing each at most once),
/// updating those whose content or labels differ.
pub fn plan(svc: &Service, existing: &[Arc<EndpointSlice>], want: Vec<SliceContent>) -> Plan {
    let labels = slice_labels(svc);
    let mut free: Vec<&Arc<EndpointSlice>> = existing.iter().collect();
    free.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let mut p = Plan::default();
    let mut pending = Vec::new();
    // First keep slices that already hold exactly what is wanted.
    for w in want {
        let w = normalized(&w);
        if let Some(i) = free.iter().position(|s| {
            content_of(s) == w && s.metadata.labels.clone().unwrap_or_default() == labels
        }) {
            free.remove(i);
        } else {
            pending.push(w);
        }
    }
    for w in pending {
        let key = w.ports.as_deref().map(port_key);
        match free
            .iter()
            .position(|s| slice_port_key(s).filter(|k| !k.is_empty()) == key)
        {
            Some(i) => {
                let s = free.remove(i);
                p.update
                    .push((s.metadata.name.clone().unwrap_or_default(), w));
            }
            None => p.create.push(w),
        }
    }
    // Leftover slices are reused for new content before anything is created.
    while let (Some(_), Some(_)) = (free.first(), p.create.first()) {
        let s = free.remove(0);
        let w = p.create.remove(0);
        p.update
            .push((s.metadata.name.clone().unwrap_or_default(), w));
    }
    p.delete = free
        .into_iter()
        .filter_map(|s| s.metadata.name.clone())
        .collect();
    p
}

/// What the controller last wrote per Service, until its informer has caught up (upstream's
/// endpointSliceTracker): a sync against a stale cache would create duplicate slices.
#[derive(Default)]
struct Expectations {
    /// service key -> (slice name -> Some(resourceVersion) written / None deleted)
    by_service: HashMap<String, (tokio::time::Instant, HashMap<String, Option<String>>)>,
}

#[derive(Clone)]
pub struct EndpointSliceController {
    pub services: Arc<Informer<Service>>,
    pub pods: Arc<Informer<Pod>>,
    pub nodes: Arc<Informer<Node>>,
    pub slices: Arc<Informer<EndpointSlice>>,
    expectations: Arc<Mutex<Expectations>>,
}

fn rv_number(s: &Option<String>) -> i64 {
    s.as_deref().and_then(|r| r.parse().ok()).unwrap_or(0)
}

impl EndpointSliceController {
    pub fn new(
        services: Arc<Informer<Service>>,
        pods: Arc<Informer<Pod>>,
        nodes: Arc<Informer<Node>>,
        slices: Arc<Informer<EndpointSlice>>,
    ) -> Self {
        slices.add_index(BY_SERVICE, |s: &EndpointSlice| {
            let labels = s.metadata.labels.as_ref();
            match (
                labels.and_then(|l| l.get(SERVICE_NAME_LABEL)),
                labels.and_then(|l| l.get(MANAGED_BY_LABEL)),
            ) {
                (Some(svc), Some(m)) if m == MANAGED_BY => vec![format!(
                    "{}/{svc}",
                    s.metadata.namespace.as_deref().unwrap_or("")
                )],
                _ => Vec::new(),
            }
        });
        EndpointSliceController {
            services,
            pods,
            nodes,
            slices,
            expectations: Default::default(),
        }
    }

    pub fn watch(&self, queue: &Arc<WorkQueue<String>>) {
        let q = queue.clone();
        self.services.on_change(move |c: &Change<'_, Service>| {
            q.add(ferrokube_client::key_of(&**c.object()))
        });
        let q = queue.clone();
        let services = self.services.clone();
        self.pods.on_change(move |c: &Change<'_, Pod>| {
            for k in endpoints::services_of_pod(&services, c) {
                q.add(k);
            }
        });
        let q = queue.clone();
        self.slices.on_change(move |c: &Change<'_, EndpointSlice>| {
            let s = c.object();
            let labels = s.metadata.labels.as_ref();
            if labels
                .and_then(|l| l.get(MANAGED_BY_LABEL))
                .map(String::as_str)
                == Some(MANAGED_BY)
                && let Some(svc) = labels.and_then(|l| l.get(SERVICE_NAME_LABEL))
            {
                q.add(format!(
                    "{}/{svc}",
                    s.metadata.namespace.as_deref().unwrap_or("")
                ));
            }
        });
    }

    /// The slices this controller manages for a Service.
    pub fn existing(&self, key: &str) -> Vec<Arc<EndpointSlice>> {
        self.slices.by_index(BY_SERVICE, key)
    }

    /// Whether the informer has seen every write made for this Service.
    fn caught_up(&self, key: &str) -> bool {
        let mut exp = self.expectations.lock();
        let Some((at, names)) = exp.by_service.get(key) else {
            return true;
        };
        let seen = names.iter().all(|(name, want)| {
            let (ns, _) = ferrokube_client::split_key(key);
            let got = self.slices.get_named(ns, name);
            match (want, got) {
                (None, None) => true,
                (None, Some(_)) => false,
                (Some(_), None) => false,
                (Some(rv), Some(s)) => {
                    rv_number(&s.metadata.resource_version) >= rv_number(&Some(rv.clone()))
                }
            }
        });
        if seen || at.elapsed() > Duration::from_secs(30) {
            exp.by_service.remove(key);
            return true;
        }
        false
    }

    fn expect(&self, key: &str, name: String, rv: Option<String>) {
        let mut exp = self.expectations.lock();
        let e = exp
            .by_service
            .entry(key.to_string())
            .or_insert_with(|| (tokio::time::Instant::now(), HashMap::new()));
        e.0 = tokio::time::Instant::now();
        e.1.insert(name, rv);
    }

    async fn sync(&self, client: &kube::Client, key: &str) -> Result<Action> {
        if !self.caught_up(key) {
            return Ok(Action::Requeue(Duration::from_millis(100)));
        }
        let (ns, name) = ferrokube_client::split_key(key);
        let api: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);
        let existing = self.existing(key);
        let Some(svc) = self.services.get(key).filter(|s| endpoints::managed(s)) else {
            // Slices of a deleted Service go with it (they are also owned by it).
            for s in existing {
                let n = s.metadata.name.clone().unwrap_or_default();
                match api.delete(&n, &Default::default()).await {
                    Ok(_) => self.expect(key, n, None),
                    Err(e) if util::is_not_found(&e) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            return Ok(Action::AwaitChange);
        };
        let pods: Vec<Arc<Pod>> = self
            .pods
            .list_namespace(ns)
            .into_iter()
            .filter(|p| endpoints::selects(&svc, p))
            .collect();
        let want = desired_slices(&svc, &pods, &self.nodes);
        let plan = plan(&svc, &existing, want);
        let labels = slice_labels(&svc);
        let v6 = svc
            .spec
            .as_ref()
            .and_then(|s| s.ip_families.as_ref())
            .and_then(|f| f.first())
            .is_some_and(|f| f == "IPv6");
        let owner = OwnerReference {
            api_version: "v1".into(),
            kind: "Service".into(),
            name: name.into(),
            uid: svc.metadata.uid.clone().unwrap_or_default(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        };
        for (slice_name, content) in plan.update {
            let Some(current) = self.slices.get_named(ns, &slice_name) else {
                continue;
            };
            let mut s = (*current).clone();
            s.metadata.labels = Some(labels.clone());
            s.ports = content.ports;
            s.endpoints = content.endpoints.unwrap_or_default();
            match api.replace(&slice_name, &PostParams::default(), &s).await {
                Ok(w) => self.expect(key, slice_name, w.metadata.resource_version),
                Err(e) => return Err(e.into()),
            }
        }
        for content in plan.create {
            let base: String = name.chars().take(57).collect();
            let s = EndpointSlice {
                metadata: ObjectMeta {
                    generate_name: Some(format!("{base}-")),
                    namespace: Some(ns.into()),
                    labels: Some(labels.clone()),
                    owner_references: Some(vec![owner.clone()]),
                    ..Default::default()
                },
                address_type: if v6 { "IPv6" } else { "IPv4" }.into(),
                endpoints: content.endpoints.unwrap_or_default(),
                ports: content.ports,
            };
            match api.create(&PostParams::default(), &s).await {
                Ok(w) => self.expect(
                    key,
                    w.metadata.name.unwrap_or_default(),
                    w.metadata.resource_version,
                ),
                Err(kube::Error::Api(st)) if st.code == 403 || st.code == 404 => {
                    return Ok(Action::AwaitChange);
                }
                Err(e) => return Err(e.into()),
            }
        }
        for slice_name in plan.delete {
            match api.delete(&slice_name, &Default::default()).await {
                Ok(_) => self.expect(key, slice_name, None),
                Err(e) if util::is_not_found(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Action::AwaitChange)
    }
}

async fn run(ctx: Arc<Context>) {
    let slices = ctx.informers.get_with::<EndpointSlice>(
        watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}")),
        "managed-by-endpointslice-controller",
    );
    let c = EndpointSliceController::new(
        ctx.informers.get::<Service>(),
        ctx.informers.get::<Pod>(),
        ctx.informers.get::<Node>(),
        slices,
    );
    c.services.wait_synced().await;
    c.pods.wait_synced().await;
    c.nodes.wait_synced().await;
    c.slices.wait_synced().await;
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
            async move { c.sync(&client, &key).await }
        },
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::tests::{pod, service};
    use serde_json::json;

    fn controller() -> EndpointSliceController {
        EndpointSliceController::new(
            Informer::detached(),
            Informer::detached(),
            Informer::detached(),
            Informer::detached(),
        )
    }

    #[test]
    fn slices_hold_at_most_a_hundred_endpoints_with_readiness_conditions() {
        let c = controller();
        let svc = service(
            "web",
            json!({"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "web", "protocol": "TCP"}]}),
        );
        let pods: Vec<Arc<Pod>> = (0..250)
            .map(|i| {
                Arc::new(pod(
                    &format!("p{i:03}"),
                    &format!("10.244.{}.{}", i / 200, i % 200 + 1),
                    i % 2 == 0,
                    json!({"app": "web"}),
                ))
            })
            .collect();
        let want = desired_slices(&svc, &pods, &c.nodes);
        assert_eq!(
            want.iter()
                .map(|s| s.endpoints.as_ref().unwrap().len())
                .collect::<Vec<_>>(),
            vec![100, 100, 50]
        );
        let first = &want[0].endpoints.as_ref().unwrap()[0];
        assert_eq!(first.conditions.as_ref().unwrap().ready, Some(true));
        let second = &want[0].endpoints.as_ref().unwrap()[1];
        assert_eq!(second.conditions.as_ref().unwrap().ready, Some(false));
        assert_eq!(want[0].ports.as_ref().unwrap()[0].port, Some(8080));
    }

    #[test]
    fn terminating_pods_are_serving_but_not_ready() {
        let c = controller();
        let svc = service(
            "web",
            json!({"selector": {"app": "web"}, "ports": [{"port": 80, "protocol": "TCP"}]}),
        );
        let mut p = pod("a", "10.244.0.2", true, json!({"app": "web"}));
        p.metadata.deletion_timestamp = Some(util::now());
        let want = desired_slices(&svc, &[Arc::new(p)], &c.nodes);
        let cond = want[0].endpoints.as_ref().unwrap()[0]
            .conditions
            .clone()
            .unwrap();
        assert_eq!(
            (cond.ready, cond.serving, cond.terminating),
            (Some(false), Some(true), Some(true))
        );
    }

    #[test]
    fn services_without_endpoints_keep_one_placeholder_and_plans_reuse_slices() {
        let c = controller();
        let svc = service(
            "web",
            json!({"selector": {"app": "web"}, "ports": [{"port": 80, "protocol": "TCP"}]}),
        );
        let want = desired_slices(&svc, &[], &c.nodes);
        assert_eq!(
            want,
            vec![SliceContent {
                ports: None,
                endpoints: None
            }]
        );
        let p = plan(&svc, &[], want.clone());
        assert_eq!(p.create.len(), 1);
        // An existing placeholder is reused when endpoints appear.
        let existing = Arc::new(EndpointSlice {
            metadata: ObjectMeta {
                name: Some("web-abcde".into()),
                namespace: Some("d".into()),
                labels: Some(slice_labels(&svc)),
                ..Default::default()
            },
            address_type: "IPv4".into(),
            endpoints: vec![],
            ports: None,
        });
        assert!(
            plan(&svc, std::slice::from_ref(&existing), want)
                .create
                .is_empty()
        );
        let pods = vec![Arc::new(pod(
            "a",
            "10.244.0.2",
            true,
            json!({"app": "web"}),
        ))];
        let p = plan(&svc, &[existing], desired_slices(&svc, &pods, &c.nodes));
        assert!(p.create.is_empty() && p.delete.is_empty());
        assert_eq!(p.update.len(), 1);
        assert_eq!(p.update[0].0, "web-abcde");
        let labels = slice_labels(&svc);
        assert_eq!(labels[SERVICE_NAME_LABEL], "web");
        assert_eq!(labels[MANAGED_BY_LABEL], MANAGED_BY);
    }
}
