//! Per-node results a plugin keeps from one scheduling cycle to the next. Upstream's
//! PodTopologySpread and InterPodAffinity walk every pod on every node for every pod they
//! schedule; with these memos only the nodes whose `NodeInfo` changed since the last cycle are
//! walked again. A changed node is a different `Arc` in the snapshot: the cache copies a
//! `NodeInfo` on write while the snapshot and the memo still hold the old one, so pointer
//! identity is a sound test, and holding the `Arc` keeps its address from being reused.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use super::types::NodeInfo;

/// Sums that per-node parts are folded into.
pub trait Totals<T> {
    /// Forgets every part (the node list itself changed).
    fn clear(&mut self);
    /// Adds (`sign` 1) or takes away (`sign` -1) one node's part.
    fn apply(&mut self, part: &T, sign: i64);
}

/// Adds (`sign` 1) or takes away (`sign` -1) one part's `amount` under `key`, where the entry
/// counts the parts it holds and goes away with the last one (so an entry exists exactly when
/// a walk over the nodes would have created it, even if its amounts sum to zero).
pub fn fold_counted<K, Q, S: std::hash::BuildHasher>(
    map: &mut HashMap<K, (usize, i64), S>,
    key: &Q,
    amount: i64,
    sign: i64,
) where
    K: Hash + Eq + Borrow<Q>,
    Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
{
    if !map.contains_key(key) {
        map.insert(key.to_owned(), (0, 0));
    }
    let Some(e) = map.get_mut(key) else {
        return;
    };
    if sign > 0 {
        e.0 += 1;
    } else {
        e.0 -= 1;
    }
    e.1 += sign * amount;
    if e.0 == 0 {
        map.remove(key);
    }
}

/// Each node's part, as computed from the `NodeInfo` it holds.
struct NodeMemo<T> {
    nodes: Vec<(Arc<NodeInfo>, T)>,
}

impl<T> Default for NodeMemo<T> {
    fn default() -> Self {
        NodeMemo { nodes: Vec::new() }
    }
}

impl<T> NodeMemo<T> {
    /// Brings `totals` up to `nodes`: parts are computed again only for nodes that changed,
    /// or for all of them when nodes were added, removed or reordered.
    fn refresh<A: Totals<T>>(
        &mut self,
        nodes: &[Arc<NodeInfo>],
        totals: &mut A,
        mut compute: impl FnMut(&NodeInfo) -> T,
    ) {
        let same_nodes = self.nodes.len() == nodes.len()
            && self
                .nodes
                .iter()
                .zip(nodes)
                .all(|((old, _), new)| Arc::ptr_eq(old, new) || old.name() == new.name());
        if !same_nodes {
            totals.clear();
            self.nodes = nodes
                .iter()
                .map(|n| {
                    let part = compute(n);
                    totals.apply(&part, 1);
                    (n.clone(), part)
                })
                .collect();
            return;
        }
        for (slot, n) in self.nodes.iter_mut().zip(nodes) {
            if Arc::ptr_eq(&slot.0, n) {
                continue;
            }
            let part = compute(n);
            totals.apply(&slot.1, -1);
            totals.apply(&part, 1);
            *slot = (n.clone(), part);
        }
    }
}

/// Per-node parts and their totals, kept per key (what the parts depend on besides the node:
/// the incoming pod's shape), the most recently used first; at most `kept` keys.
pub struct Memos<T, A> {
    entries: parking_lot::Mutex<Vec<(String, NodeMemo<T>, A)>>,
    kept: usize,
}

impl<T, A: Totals<T> + Clone + Default> Memos<T, A> {
    pub fn new(kept: usize) -> Self {
        Memos {
            entries: parking_lot::Mutex::new(Vec::new()),
            kept: kept.max(1),
        }
    }

    /// The totals of `compute` over `nodes`. With a key, from the memo of that key, brought up
    /// to date by computing only changed nodes; without one (the parts depend on more than the
    /// nodes show), computed afresh.
    pub fn totals(
        &self,
        key: Option<String>,
        nodes: &[Arc<NodeInfo>],
        mut compute: impl FnMut(&NodeInfo) -> T,
    ) -> A {
        let Some(key) = key else {
            let mut totals = A::default();
            for n in nodes {
                totals.apply(&compute(n), 1);
            }
            return totals;
        };
        let mut entries = self.entries.lock();
        match entries.iter().position(|(k, _, _)| *k == key) {
            Some(i) => {
                let e = entries.remove(i);
                entries.insert(0, e);
            }
            None => {
                entries.insert(0, (key, NodeMemo::default(), A::default()));
                entries.truncate(self.kept);
            }
        }
        let (_, memo, totals) = &mut entries[0];
        memo.refresh(nodes, totals, compute);
        totals.clone()
    }
}
