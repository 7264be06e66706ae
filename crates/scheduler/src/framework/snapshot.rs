//! The consistent view one scheduling cycle works on: every node with its pods, taken from the
//! cache at the start of the cycle (only changed nodes are copied).

use std::collections::HashMap;
use std::sync::Arc;

use super::types::NodeInfo;

#[derive(Clone, Default)]
pub struct Snapshot {
    /// Nodes in node-tree order (zones interleaved), as upstream lists them.
    pub nodes: Vec<Arc<NodeInfo>>,
    pub index: HashMap<String, usize>,
    /// Indices of nodes with at least one pod that has pod (anti-)affinity.
    pub with_affinity: Vec<usize>,
    /// Indices of nodes with at least one pod with required anti-affinity.
    pub with_required_anti_affinity: Vec<usize>,
    /// Normalized image name -> number of nodes that have it.
    pub image_nodes: HashMap<String, usize>,
}

impl Snapshot {
    /// A snapshot of these nodes, in this order (tests, simulations).
    pub fn from_nodes(nodes: Vec<NodeInfo>) -> Self {
        let mut s = Snapshot {
            nodes: nodes.into_iter().map(Arc::new).collect(),
            ..Default::default()
        };
        s.reindex();
        s
    }

    /// Recomputes the name index, the affinity lists and image counts from `nodes`.
    pub fn reindex(&mut self) {
        self.index = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name().to_string(), i))
            .collect();
        self.refresh_affinity_lists();
        self.image_nodes.clear();
        for n in &self.nodes {
            for img in n.image_states.keys() {
                *self.image_nodes.entry(img.clone()).or_default() += 1;
            }
        }
    }

    pub fn refresh_affinity_lists(&mut self) {
        self.with_affinity.clear();
        self.with_required_anti_affinity.clear();
        for (i, n) in self.nodes.iter().enumerate() {
            if n.pods_with_affinity > 0 {
                self.with_affinity.push(i);
            }
            if n.pods_with_required_anti_affinity > 0 {
                self.with_required_anti_affinity.push(i);
            }
        }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<NodeInfo>> {
        self.index.get(name).map(|&i| &self.nodes[i])
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn nodes_with_affinity(&self) -> impl Iterator<Item = &Arc<NodeInfo>> {
        self.with_affinity.iter().map(|&i| &self.nodes[i])
    }

    pub fn nodes_with_required_anti_affinity(&self) -> impl Iterator<Item = &Arc<NodeInfo>> {
        self.with_required_anti_affinity
            .iter()
            .map(|&i| &self.nodes[i])
    }
}
