//! The in-tree plugins, one module each, and the registry that builds a profile's framework
//! from its configuration.

pub mod default_binder;
pub mod default_preemption;
pub mod helper;
pub mod image_locality;
pub mod inter_pod_affinity;
pub mod node_affinity;
pub mod node_name;
pub mod node_ports;
pub mod node_resources;
pub mod node_unschedulable;
pub mod pod_topology_spread;
pub mod scheduling_gates;
pub mod taint_toleration;
pub mod volume_binding;

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::Profile;
use crate::framework::{Framework, Handle, PluginInstance};
use crate::{Error, Result};

/// QueueSort is built into the scheduling queue (priority, then age); the name is accepted
/// in configurations.
pub const PRIORITY_SORT: &str = "PrioritySort";

type Factory = fn(&serde_json::Value, &Arc<Handle>) -> std::result::Result<PluginInstance, String>;

/// Every plugin by name.
pub fn registry() -> Vec<(&'static str, Factory)> {
    vec![
        (scheduling_gates::NAME, |_, _| Ok(scheduling_gates::new())),
        (PRIORITY_SORT, |_, _| Ok(PluginInstance::new(PRIORITY_SORT))),
        (node_unschedulable::NAME, |_, _| {
            Ok(node_unschedulable::new())
        }),
        (node_name::NAME, |_, _| Ok(node_name::new())),
        (taint_toleration::NAME, |_, _| Ok(taint_toleration::new())),
        (node_affinity::NAME, |a, _| node_affinity::new(a)),
        (node_ports::NAME, |_, _| Ok(node_ports::new())),
        (node_resources::FIT_NAME, |a, _| node_resources::new_fit(a)),
        (volume_binding::NAME, volume_binding::new),
        (pod_topology_spread::NAME, pod_topology_spread::new),
        (inter_pod_affinity::NAME, inter_pod_affinity::new),
        (default_preemption::NAME, default_preemption::new),
        (node_resources::BALANCED_NAME, |a, _| {
            node_resources::new_balanced(a)
        }),
        (image_locality::NAME, |_, _| Ok(image_locality::new())),
        (default_binder::NAME, |_, _| Ok(default_binder::new())),
    ]
}

/// The default profile's plugins, in upstream's order, with their default score weights.
pub fn default_plugins() -> Vec<(&'static str, i64)> {
    vec![
        (scheduling_gates::NAME, 0),
        (PRIORITY_SORT, 0),
        (node_unschedulable::NAME, 0),
        (node_name::NAME, 0),
        (taint_toleration::NAME, 3),
        (node_affinity::NAME, 2),
        (node_ports::NAME, 0),
        (node_resources::FIT_NAME, 1),
        (volume_binding::NAME, 0),
        (pod_topology_spread::NAME, 2),
        (inter_pod_affinity::NAME, 2),
        (default_preemption::NAME, 0),
        (node_resources::BALANCED_NAME, 1),
        (image_locality::NAME, 1),
        (default_binder::NAME, 0),
    ]
}

/// Extension points as KubeSchedulerConfiguration names them.
pub const POINTS: &[&str] = &[
    "preEnqueue",
    "queueSort",
    "preFilter",
    "filter",
    "postFilter",
    "preScore",
    "score",
    "reserve",
    "permit",
    "preBind",
    "bind",
];

fn implements(p: &PluginInstance, point: &str) -> bool {
    match point {
        "preEnqueue" => p.pre_enqueue.is_some(),
        "queueSort" => p.name == PRIORITY_SORT,
        "preFilter" => p.pre_filter.is_some(),
        "filter" => p.filter.is_some(),
        "postFilter" => p.post_filter.is_some(),
        "preScore" => p.pre_score.is_some(),
        "score" => p.score.is_some(),
        "reserve" => p.reserve.is_some(),
        "permit" => p.permit.is_some(),
        "preBind" => p.pre_bind.is_some(),
        "bind" => p.bind.is_some(),
        _ => false,
    }
}

/// Builds a profile's framework: the default plugins, changed by `multiPoint` and then by
/// each extension point's `enabled`/`disabled` lists, with `pluginConfig` args.
pub fn build_framework(
    profile: &Profile,
    handle: &Arc<Handle>,
    percentage: i32,
) -> Result<Framework> {
    let reg: HashMap<&str, Factory> = registry().into_iter().collect();
    let err = |m: String| Error::Config(format!("profile {:?}: {m}", profile.scheduler_name));
    let mut instances: HashMap<String, PluginInstance> = HashMap::new();
    let mut instance = |name: &str| -> Result<PluginInstance> {
        if let Some(i) = instances.get(name) {
            return Ok(i.clone());
        }
        let f = reg
            .get(name)
            .ok_or_else(|| err(format!("plugin {name:?} does not exist")))?;
        let args = profile
            .plugin_config
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| a.clone())
            .unwrap_or(serde_json::Value::Null);
        let i = f(&args, handle).map_err(|m| err(format!("{name}: {m}")))?;
        instances.insert(name.to_string(), i.clone());
        Ok(i)
    };
    // Start from the defaults, then apply multiPoint.
    let mut multi: Vec<(String, i64)> = default_plugins()
        .into_iter()
        .map(|(n, w)| (n.to_string(), w))
        .collect();
    let set = &profile.plugins;
    if let Some(mp) = set.get("multiPoint") {
        apply(&mut multi, mp);
    }
    let mut per_point: HashMap<&str, Vec<(String, i64)>> = HashMap::new();
    for point in POINTS {
        let mut list = Vec::new();
        for (name, w) in &multi {
            if implements(&instance(name)?, point) {
                list.push((name.clone(), *w));
            }
        }
        if let Some(cfg) = set.get(*point) {
            apply(&mut list, cfg);
        }
        for (name, _) in &list {
            if !implements(&instance(name)?, point) {
                return Err(err(format!(
                    "plugin {name:?} does not extend {point} plugin"
                )));
            }
        }
        per_point.insert(point, list);
    }
    let mut fw = Framework {
        scheduler_name: profile.scheduler_name.clone(),
        handle: Some(handle.clone()),
        percentage_of_nodes_to_score: profile.percentage_of_nodes_to_score.unwrap_or(percentage),
        ..Default::default()
    };
    for (point, list) in &per_point {
        for (name, weight) in list {
            let i = instance(name)?;
            fw.events.insert(i.name, i.events);
            match *point {
                "preEnqueue" => fw.pre_enqueue.extend(i.pre_enqueue),
                "preFilter" => fw.pre_filter.extend(i.pre_filter),
                "filter" => fw.filter.extend(i.filter),
                "postFilter" => fw.post_filter.extend(i.post_filter),
                "preScore" => fw.pre_score.extend(i.pre_score),
                "score" => fw.score.extend(i.score.map(|s| (s, (*weight).max(1)))),
                "reserve" => fw.reserve.extend(i.reserve),
                "permit" => fw.permit.extend(i.permit),
                "preBind" => fw.pre_bind.extend(i.pre_bind),
                "bind" => fw.bind.extend(i.bind),
                _ => {}
            }
        }
    }
    if fw.bind.is_empty() {
        return Err(err("at least one bind plugin is needed".into()));
    }
    Ok(fw)
}

/// Applies `{enabled: [{name, weight}], disabled: [{name}]}` to an ordered plugin list.
fn apply(list: &mut Vec<(String, i64)>, cfg: &serde_json::Value) {
    for d in cfg
        .get("disabled")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
    {
        let name = d.get("name").and_then(|v| v.as_str()).unwrap_or("");
        if name == "*" {
            list.clear();
        } else {
            list.retain(|(n, _)| n != name);
        }
    }
    for e in cfg
        .get("enabled")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
    {
        let name = e
            .get("name")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string();
        let weight = e.get("weight").and_then(|v| v.as_i64());
        match list.iter_mut().find(|(n, _)| *n == name) {
            Some(entry) => {
                if let Some(w) = weight {
                    entry.1 = w;
                }
            }
            None => list.push((name, weight.unwrap_or(1))),
        }
    }
}

/// The default profile's framework (tests, simulations).
pub fn build_default_framework(handle: &Arc<Handle>) -> Result<Framework> {
    build_framework(&Profile::default(), handle, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::handle;
    use serde_json::json;

    #[test]
    fn the_default_profile_runs_filters_in_upstream_order_with_upstream_weights() {
        let fw = build_default_framework(&handle()).unwrap();
        let filters: Vec<&str> = fw.filter.iter().map(|p| p.name()).collect();
        assert_eq!(
            filters,
            vec![
                "NodeUnschedulable",
                "NodeName",
                "TaintToleration",
                "NodeAffinity",
                "NodePorts",
                "NodeResourcesFit",
                "VolumeBinding",
                "PodTopologySpread",
                "InterPodAffinity"
            ]
        );
        let weights: Vec<(&str, i64)> = fw.score.iter().map(|(p, w)| (p.name(), *w)).collect();
        assert!(weights.contains(&("TaintToleration", 3)));
        assert!(weights.contains(&("NodeResourcesFit", 1)));
        assert_eq!(fw.post_filter.len(), 1);
    }

    #[test]
    fn profiles_disable_enable_and_reweight_plugins() {
        let profile = Profile {
            scheduler_name: "custom".into(),
            plugins: serde_json::from_value(json!({
                "multiPoint": {"disabled": [{"name": "ImageLocality"}]},
                "score": {"enabled": [{"name": "NodeResourcesFit", "weight": 5}]},
                "filter": {"disabled": [{"name": "NodePorts"}]},
                "postFilter": {"disabled": [{"name": "*"}]}
            }))
            .unwrap(),
            ..Default::default()
        };
        let fw = build_framework(&profile, &handle(), 0).unwrap();
        assert!(!fw.score.iter().any(|(p, _)| p.name() == "ImageLocality"));
        assert!(
            fw.score
                .iter()
                .any(|(p, w)| p.name() == "NodeResourcesFit" && *w == 5)
        );
        assert!(!fw.filter.iter().any(|p| p.name() == "NodePorts"));
        assert!(fw.post_filter.is_empty());
    }

    #[test]
    fn unknown_plugins_are_configuration_errors() {
        let profile = Profile {
            plugins: serde_json::from_value(json!({"filter": {"enabled": [{"name": "Nope"}]}}))
                .unwrap(),
            ..Default::default()
        };
        let e = build_framework(&profile, &handle(), 0).err().unwrap();
        assert!(e.to_string().contains("\"Nope\" does not exist"), "{e}");
    }
}
