//! Node label keys and values as small numbers. Filters that look up a topology label on
//! thousands of nodes per pod (PodTopologySpread) would otherwise search each node's label map
//! through the node object, comparing heap strings: several cache misses per node. A
//! `NodeInfo` keeps its labels as pairs of ids in one small slice instead, and a plugin turns
//! the key it needs into an id once per cycle.
//!
//! The table is process-wide (every scheduler profile and test sees the same ids) and only
//! grows: it holds each distinct node label key and value once, so it is bounded by the label
//! strings nodes have ever carried (for most clusters, a hostname per node and a handful of
//! zones, roles and instance types). Pod labels are never put in it.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use parking_lot::RwLock;

use super::interface::NameBuildHasher;

pub type LabelId = u32;

static IDS: LazyLock<RwLock<HashMap<Arc<str>, LabelId, NameBuildHasher>>> =
    LazyLock::new(Default::default);

/// The id of `s`, given a new one if it has none yet. Only for node labels.
pub fn intern(s: &str) -> LabelId {
    if let Some(id) = IDS.read().get(s) {
        return *id;
    }
    let mut ids = IDS.write();
    let next = ids.len() as LabelId;
    *ids.entry(Arc::from(s)).or_insert(next)
}

/// The id of `s` if any node label ever had it (no id: no node has it now either).
pub fn lookup(s: &str) -> Option<LabelId> {
    IDS.read().get(s).copied()
}

/// The string with this id (tests: the table keeps no reverse index).
#[cfg(test)]
pub fn name(id: LabelId) -> Option<Arc<str>> {
    IDS.read()
        .iter()
        .find(|(_, v)| **v == id)
        .map(|(k, _)| k.clone())
}

/// A node's labels as (key id, value id), sorted by key id.
pub fn of_labels<'a>(
    labels: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Box<[(LabelId, LabelId)]> {
    let mut ids: Vec<(LabelId, LabelId)> = labels
        .into_iter()
        .map(|(k, v)| (intern(k), intern(v)))
        .collect();
    ids.sort_unstable();
    ids.into_boxed_slice()
}

/// The value id under `key` in pairs made by [`of_labels`].
pub fn get(ids: &[(LabelId, LabelId)], key: LabelId) -> Option<LabelId> {
    ids.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn the_same_string_has_the_same_id_and_lookups_find_only_interned_ones() {
        let labels: BTreeMap<String, String> = [
            ("topology.kubernetes.io/zone", "label-ids-zone-a"),
            ("kubernetes.io/hostname", "label-ids-node-1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let ids = of_labels(&labels);
        let zone = lookup("topology.kubernetes.io/zone").unwrap();
        assert_eq!(get(&ids, zone), lookup("label-ids-zone-a"));
        assert_eq!(
            intern("label-ids-zone-a"),
            lookup("label-ids-zone-a").unwrap()
        );
        assert_ne!(lookup("label-ids-zone-a"), lookup("label-ids-node-1"));
        assert_eq!(name(zone).as_deref(), Some("topology.kubernetes.io/zone"));
        assert_eq!(lookup("label-ids-never-on-a-node"), None);
        assert!(ids.windows(2).all(|w| w[0].0 < w[1].0));
    }
}
