//! The node IPAM controller (upstream `nodeipam` with the range allocator): every node gets a
//! pod CIDR from `--cluster-cidr` (default `10.244.0.0/16`, a /24 each), in
//! `spec.podCIDR` and `spec.podCIDRs`; CIDRs of deleted nodes are reused.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::Arc;

use ferrokube_client::events::{EventRecorder, EventType};
use ferrokube_client::{Action, Change, Informer, WorkQueue};
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use parking_lot::Mutex;

use crate::Context;
use crate::util::{self, Result};

pub const NAME: &str = "nodeipam";
const COMPONENT: &str = "cidrAllocator";

pub fn start(ctx: Arc<Context>) -> BoxFuture<'static, ()> {
    Box::pin(run(ctx))
}

#[derive(Debug, thiserror::Error)]
pub enum CidrError {
    #[error("invalid cluster CIDR {0:?}")]
    Invalid(String),
    #[error("the node CIDR mask /{mask} does not fit in the cluster CIDR {cidr}")]
    Mask { cidr: String, mask: u8 },
}

/// The subnets of the cluster CIDR and which are taken (upstream `cidrset`).
#[derive(Debug)]
pub struct CidrSet {
    base: u32,
    cluster_prefix: u8,
    mask: u8,
    used: BTreeSet<u32>,
    next: u32,
}

impl CidrSet {
    pub fn new(cluster_cidr: &str, mask: u8) -> Result<Self, CidrError> {
        let bad = || CidrError::Invalid(cluster_cidr.to_string());
        let (ip, prefix) = cluster_cidr.split_once('/').ok_or_else(bad)?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if prefix > 32 || mask < prefix || mask > 32 {
            return Err(CidrError::Mask {
                cidr: cluster_cidr.to_string(),
                mask,
            });
        }
        let host_mask = if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - prefix)
        };
        Ok(CidrSet {
            base: u32::from(ip) & host_mask,
            cluster_prefix: prefix,
            mask,
            used: BTreeSet::new(),
            next: 0,
        })
    }

    fn count(&self) -> u32 {
        1u32 << u32::from(self.mask - self.cluster_prefix).min(31)
    }

    fn cidr(&self, i: u32) -> String {
        let step = if self.mask == 32 {
            1
        } else {
            1u32 << (32 - self.mask)
        };
        format!("{}/{}", Ipv4Addr::from(self.base + i * step), self.mask)
    }

    fn index(&self, cidr: &str) -> Option<u32> {
        let (ip, m) = cidr.split_once('/')?;
        if m.parse::<u8>().ok()? != self.mask {
            return None;
        }
        let ip = u32::from(ip.parse::<Ipv4Addr>().ok()?);
        let step = if self.mask == 32 {
            1
        } else {
            1u32 << (32 - self.mask)
        };
        let off = ip.checked_sub(self.base)?;
        (off % step == 0 && off / step < self.count()).then_some(off / step)
    }

    /// Marks a CIDR a node already has.
    pub fn occupy(&mut self, cidr: &str) -> bool {
        match self.index(cidr) {
            Some(i) => {
                self.used.insert(i);
                true
            }
            None => false,
        }
    }

    pub fn release(&mut self, cidr: &str) {
        if let Some(i) = self.index(cidr) {
            self.used.remove(&i);
        }
    }

    /// The next free subnet, scanning on from the last one handed out.
    pub fn allocate_next(&mut self) -> Option<String> {
        let n = self.count();
        for k in 0..n {
            let i = (self.next + k) % n;
            if !self.used.contains(&i) {
                self.used.insert(i);
                self.next = (i + 1) % n;
                return Some(self.cidr(i));
            }
        }
        None
    }
}

fn pod_cidrs(node: &Node) -> Vec<String> {
    let spec = node.spec.as_ref();
    let mut out: Vec<String> = spec.and_then(|s| s.pod_cidrs.clone()).unwrap_or_default();
    if out.is_empty()
        && let Some(c) = spec
            .and_then(|s| s.pod_cidr.clone())
            .filter(|c| !c.is_empty())
    {
        out.push(c);
    }
    out
}

pub struct NodeIpam {
    pub nodes: Arc<Informer<Node>>,
    pub set: Mutex<CidrSet>,
}

impl NodeIpam {
    pub fn new(nodes: Arc<Informer<Node>>, set: CidrSet) -> Self {
        NodeIpam {
            nodes,
            set: Mutex::new(set),
        }
    }

    /// Takes note of every CIDR nodes already hold (called once the cache is synced).
    pub fn occupy_existing(&self) {
        let mut set = self.set.lock();
        for n in self.nodes.list() {
            for c in pod_cidrs(&n) {
                if !set.occupy(&c) {
                    tracing::warn!(node = ?n.metadata.name, cidr = %c, "node pod CIDR is outside the cluster CIDR");
                }
            }
        }
    }

    pub fn watch(&self, queue: &Arc<WorkQueue<String>>) {
        let q = queue.clone();
        self.nodes.on_change(move |c: &Change<'_, Node>| match c {
            Change::Deleted(n) => q.add(format!("deleted:{}", pod_cidrs(n).join(","))),
            _ => q.add(ferrokube_client::key_of(&**c.object())),
        });
    }

    async fn sync(
        &self,
        client: &kube::Client,
        recorder: &EventRecorder,
        key: &str,
    ) -> Result<Action> {
        if let Some(cidrs) = key.strip_prefix("deleted:") {
            let mut set = self.set.lock();
            for c in cidrs.split(',').filter(|c| !c.is_empty()) {
                // Another node may have been given the same CIDR by hand; keep it taken then.
                if !self
                    .nodes
                    .list()
                    .iter()
                    .any(|n| pod_cidrs(n).iter().any(|x| x == c))
                {
                    set.release(c);
                }
            }
            return Ok(Action::AwaitChange);
        }
        let Some(node) = self.nodes.get(key) else {
            return Ok(Action::AwaitChange);
        };
        if !pod_cidrs(&node).is_empty() {
            return Ok(Action::AwaitChange);
        }
        let Some(cidr) = self.set.lock().allocate_next() else {
            recorder.record(
                &*node,
                EventType::Normal,
                "CIDRNotAvailable",
                &format!("Node {key} status is now: CIDRNotAvailable"),
            );
            return Err(util::Error::Other(
                "no pod CIDR left in the cluster CIDR".into(),
            ));
        };
        let api: Api<Node> = Api::all(client.clone());
        let patch = serde_json::json!({"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}});
        match api
            .patch(key, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(Action::AwaitChange),
            Err(e) => {
                self.set.lock().release(&cidr);
                if util::is_not_found(&e) {
                    return Ok(Action::AwaitChange);
                }
                recorder.record(
                    &*node,
                    EventType::Warning,
                    "CIDRAssignmentFailed",
                    &format!("Node {key} status is now: CIDRAssignmentFailed"),
                );
                Err(e.into())
            }
        }
    }
}

async fn run(ctx: Arc<Context>) {
    let set = match CidrSet::new(&ctx.config.cluster_cidr, ctx.config.node_cidr_mask_size) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "node IPAM disabled");
            return;
        }
    };
    let c = Arc::new(NodeIpam::new(ctx.informers.get::<Node>(), set));
    c.nodes.wait_synced().await;
    c.occupy_existing();
    let queue = WorkQueue::new();
    c.watch(&queue);
    let recorder = ctx.recorder(COMPONENT);
    let client = ctx.client.clone();
    // One worker: allocation decisions are made one node at a time.
    util::run_queue(queue, 1, ctx.cancel.clone(), move |key: String| {
        let c = c.clone();
        let client = client.clone();
        let recorder = recorder.clone();
        async move { c.sync(&client, &recorder, &key).await }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_get_consecutive_slash_24s_and_freed_ones_come_back() {
        let mut s = CidrSet::new("10.244.0.0/16", 24).unwrap();
        assert!(s.occupy("10.244.0.0/24"));
        assert_eq!(s.allocate_next().as_deref(), Some("10.244.1.0/24"));
        assert_eq!(s.allocate_next().as_deref(), Some("10.244.2.0/24"));
        s.release("10.244.1.0/24");
        assert!(!s.occupy("10.1.0.0/24"), "outside the cluster CIDR");
        let mut small = CidrSet::new("10.0.0.0/23", 24).unwrap();
        assert_eq!(small.allocate_next().as_deref(), Some("10.0.0.0/24"));
        assert_eq!(small.allocate_next().as_deref(), Some("10.0.1.0/24"));
        assert_eq!(small.allocate_next(), None);
        small.release("10.0.0.0/24");
        assert_eq!(small.allocate_next().as_deref(), Some("10.0.0.0/24"));
        assert!(CidrSet::new("10.0.0.0/24", 16).is_err());
    }
}
