//! The scheduler cache: nodes with the pods bound or assumed on them. A pod is assumed on its
//! node the moment the scheduling cycle picks it, so the next cycle already counts it, long
//! before the watch reports the binding; the informer's copy then confirms (or, if the
//! binding failed, the assumption is forgotten). Snapshots copy only the nodes that changed.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Node;
use parking_lot::Mutex;

use crate::framework::{NodeInfo, PodInfo, Snapshot};

struct NodeEntry {
    info: Arc<NodeInfo>,
    /// False for a node we only know from pods bound to it.
    present: bool,
}

struct PodState {
    node: String,
    assumed: bool,
}

/// Nodes grouped by zone, listed round-robin across zones as upstream's nodeTree does, so
/// that sampling a share of the nodes spreads over zones.
#[derive(Default)]
struct NodeTree {
    zones: Vec<(String, Vec<String>)>,
}

fn zone_of(n: &Node) -> String {
    let l = n.metadata.labels.as_ref();
    let get = |k: &str| l.and_then(|l| l.get(k)).cloned().unwrap_or_default();
    let region = get("topology.kubernetes.io/region");
    let zone = get("topology.kubernetes.io/zone");
    if region.is_empty() && zone.is_empty() {
        String::new()
    } else {
        format!("{region}:\x00:{zone}")
    }
}

impl NodeTree {
    fn add(&mut self, zone: &str, name: &str) {
        match self.zones.iter_mut().find(|(z, _)| z == zone) {
            Some((_, v)) => {
                if !v.iter().any(|n| n == name) {
                    v.push(name.to_string());
                }
            }
            None => self.zones.push((zone.to_string(), vec![name.to_string()])),
        }
    }

    fn remove(&mut self, name: &str) {
        for (_, v) in self.zones.iter_mut() {
            v.retain(|n| n != name);
        }
        self.zones.retain(|(_, v)| !v.is_empty());
    }

    fn list(&self) -> Vec<String> {
        let total: usize = self.zones.iter().map(|(_, v)| v.len()).sum();
        let mut out = Vec::with_capacity(total);
        let mut i = 0;
        while out.len() < total {
            for (_, v) in &self.zones {
                if let Some(n) = v.get(i) {
                    out.push(n.clone());
                }
            }
            i += 1;
        }
        out
    }
}

#[derive(Default)]
struct Inner {
    nodes: HashMap<String, NodeEntry>,
    zone: HashMap<String, String>,
    pods: HashMap<String, PodState>,
    tree: NodeTree,
    dirty: HashSet<String>,
    tree_changed: bool,
    affinity_changed: bool,
    images_changed: bool,
}

#[derive(Default)]
pub struct Cache {
    inner: Mutex<Inner>,
}

fn placeholder(name: &str) -> Arc<Node> {
    Arc::new(Node {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_string()),
            ..Default::default()
        },
        ..Default::default()
    })
}

impl Inner {
    fn entry(&mut self, node: &str) -> &mut NodeEntry {
        self.nodes
            .entry(node.to_string())
            .or_insert_with(|| NodeEntry {
                info: Arc::new(NodeInfo::new(placeholder(node))),
                present: false,
            })
    }

    fn add_pod_to(&mut self, node: &str, pod: Arc<PodInfo>) {
        if pod.has_affinity() {
            self.affinity_changed = true;
        }
        let e = self.entry(node);
        Arc::make_mut(&mut e.info).add_pod(pod);
        self.dirty.insert(node.to_string());
    }

    fn remove_pod_from(&mut self, node: &str, key: &str) {
        let Some(e) = self.nodes.get_mut(node) else {
            return;
        };
        let info = Arc::make_mut(&mut e.info);
        if let Some(p) = info.pods.iter().find(|p| p.key == key)
            && p.has_affinity()
        {
            self.affinity_changed = true;
        }
        info.remove_pod(key);
        if !e.present && info.pods.is_empty() {
            self.nodes.remove(node);
        }
        self.dirty.insert(node.to_string());
    }
}

impl Cache {
    pub fn new() -> Arc<Self> {
        Arc::new(Cache::default())
    }

    pub fn add_node(&self, node: Arc<Node>) {
        let name = node.metadata.name.clone().unwrap_or_default();
        let zone = zone_of(&node);
        let mut g = self.inner.lock();
        let had_images = g
            .nodes
            .get(&name)
            .is_some_and(|e| !e.info.image_states.is_empty());
        let e = g.entry(&name);
        Arc::make_mut(&mut e.info).set_node(node);
        let has_images = !e.info.image_states.is_empty();
        let was_present = std::mem::replace(&mut e.present, true);
        if had_images || has_images {
            g.images_changed = true;
        }
        let old_zone = g.zone.insert(name.clone(), zone.clone());
        if !was_present || old_zone.as_deref() != Some(zone.as_str()) {
            g.tree.remove(&name);
            g.tree.add(&zone, &name);
            g.tree_changed = true;
        }
        g.dirty.insert(name);
    }

    pub fn update_node(&self, node: Arc<Node>) {
        self.add_node(node);
    }

    pub fn remove_node(&self, name: &str) {
        let mut g = self.inner.lock();
        let keep = match g.nodes.get_mut(name) {
            Some(e) => {
                e.present = false;
                !e.info.pods.is_empty()
            }
            None => false,
        };
        if !keep {
            g.nodes.remove(name);
        }
        g.zone.remove(name);
        g.tree.remove(name);
        g.tree_changed = true;
        g.images_changed = true;
    }

    /// A bound pod seen by the informer. Confirms an assumed pod (moving it if it ended up
    /// on another node).
    pub fn add_pod(&self, pod: Arc<PodInfo>) {
        let node = pod.node_name().to_string();
        let mut g = self.inner.lock();
        if let Some(st) = g.pods.remove(&pod.key) {
            g.remove_pod_from(&st.node, &pod.key);
        }
        g.add_pod_to(&node, pod.clone());
        g.pods.insert(
            pod.key.clone(),
            PodState {
                node,
                assumed: false,
            },
        );
    }

    pub fn update_pod(&self, pod: Arc<PodInfo>) {
        self.add_pod(pod);
    }

    pub fn remove_pod(&self, key: &str) {
        let mut g = self.inner.lock();
        if let Some(st) = g.pods.remove(key) {
            g.remove_pod_from(&st.node, key);
        }
    }

    /// Counts the pod on its chosen node before the binding is written.
    pub fn assume_pod(&self, pod: Arc<PodInfo>) {
        let node = pod.node_name().to_string();
        let mut g = self.inner.lock();
        if let Some(st) = g.pods.remove(&pod.key) {
            g.remove_pod_from(&st.node, &pod.key);
        }
        g.add_pod_to(&node, pod.clone());
        g.pods.insert(
            pod.key.clone(),
            PodState {
                node,
                assumed: true,
            },
        );
    }

    /// Drops an assumed pod whose binding failed.
    pub fn forget_pod(&self, key: &str) {
        let mut g = self.inner.lock();
        if g.pods.get(key).is_some_and(|s| s.assumed)
            && let Some(st) = g.pods.remove(key)
        {
            g.remove_pod_from(&st.node, key);
        }
    }

    pub fn is_assumed(&self, key: &str) -> bool {
        self.inner.lock().pods.get(key).is_some_and(|s| s.assumed)
    }

    /// Whether the pod is bound or assumed on a node.
    pub fn has_pod(&self, key: &str) -> bool {
        self.inner.lock().pods.contains_key(key)
    }

    pub fn node_count(&self) -> usize {
        self.inner
            .lock()
            .nodes
            .values()
            .filter(|e| e.present)
            .count()
    }

    /// Brings a snapshot up to date, copying only changed nodes.
    pub fn update_snapshot(&self, snap: &mut Snapshot) {
        let mut g = self.inner.lock();
        if g.tree_changed {
            let order = g.tree.list();
            snap.nodes = order
                .iter()
                .filter_map(|n| g.nodes.get(n).filter(|e| e.present).map(|e| e.info.clone()))
                .collect();
            snap.reindex();
            g.tree_changed = false;
            g.affinity_changed = false;
            g.images_changed = false;
            g.dirty.clear();
            return;
        }
        let dirty = std::mem::take(&mut g.dirty);
        for name in dirty {
            if let (Some(&i), Some(e)) = (snap.index.get(&name), g.nodes.get(&name))
                && e.present
            {
                snap.nodes[i] = e.info.clone();
            }
        }
        if g.affinity_changed {
            snap.refresh_affinity_lists();
            g.affinity_changed = false;
        }
        if g.images_changed {
            snap.reindex();
            g.images_changed = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    #[test]
    fn assumed_pods_count_until_confirmed_or_forgotten() {
        let c = Cache::new();
        c.add_node(Arc::new(node("n1").raw()));
        let mut snap = Snapshot::default();
        c.update_snapshot(&mut snap);
        assert_eq!(snap.len(), 1);
        c.assume_pod(pod("p").node_name("n1").req("1", "").obj());
        c.update_snapshot(&mut snap);
        assert_eq!(snap.get("n1").unwrap().requested.milli_cpu, 1000);
        assert!(c.is_assumed("default/p"));
        c.forget_pod("default/p");
        c.update_snapshot(&mut snap);
        assert_eq!(snap.get("n1").unwrap().requested.milli_cpu, 0);
        c.assume_pod(pod("p").node_name("n1").req("1", "").obj());
        c.add_pod(pod("p").node_name("n1").req("1", "").obj());
        assert!(!c.is_assumed("default/p"));
        c.update_snapshot(&mut snap);
        assert_eq!(snap.get("n1").unwrap().pods.len(), 1);
    }

    #[test]
    fn snapshots_interleave_zones() {
        let c = Cache::new();
        for (n, z) in [("a1", "a"), ("a2", "a"), ("b1", "b"), ("b2", "b")] {
            c.add_node(Arc::new(
                node(n).label("topology.kubernetes.io/zone", z).raw(),
            ));
        }
        let mut snap = Snapshot::default();
        c.update_snapshot(&mut snap);
        let names: Vec<&str> = snap.nodes.iter().map(|n| n.name()).collect();
        assert_eq!(names, vec!["a1", "b1", "a2", "b2"]);
    }

    #[test]
    fn pods_seen_before_their_node_are_kept() {
        let c = Cache::new();
        c.add_pod(pod("p").node_name("late").req("1", "").obj());
        let mut snap = Snapshot::default();
        c.update_snapshot(&mut snap);
        assert!(snap.is_empty());
        c.add_node(Arc::new(node("late").raw()));
        c.update_snapshot(&mut snap);
        assert_eq!(snap.get("late").unwrap().requested.milli_cpu, 1000);
    }
}
