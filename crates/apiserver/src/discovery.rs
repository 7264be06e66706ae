//! API discovery: the legacy documents (`APIVersions`, `APIGroupList`, `APIGroup`,
//! `APIResourceList`) and the aggregated `APIGroupDiscoveryList` (apidiscovery.k8s.io v2 and
//! v2beta1) that kubectl 1.30+ asks for first. Built once from the kinds registry.

use std::sync::LazyLock;

use bytes::Bytes;
use ferrokube_api::resources::{self, GROUPS, ResourceInfo};
use http::HeaderMap;
use serde_json::{Value, json};

fn legacy_resource(r: &ResourceInfo) -> Vec<Value> {
    let mut out = Vec::new();
    let mut main = json!({
        "name": r.resource,
        "singularName": r.singular,
        "namespaced": r.namespaced,
        "kind": r.kind,
        "verbs": r.verbs,
    });
    if !r.short_names.is_empty() {
        main["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        main["categories"] = json!(r.categories);
    }
    out.push(main);
    for s in r.subresources {
        let mut v = json!({
            "name": format!("{}/{}", r.resource, s.name),
            "singularName": "",
            "namespaced": r.namespaced,
            "kind": if s.kind.is_empty() { r.kind } else { s.kind },
            "verbs": s.verbs,
        });
        if !s.group.is_empty() {
            v["group"] = json!(s.group);
            v["version"] = json!(s.version);
        }
        out.push(v);
    }
    out
}

/// `APIResourceList` of one group/version, or None if not served.
pub fn resource_list(group: &str, version: &str) -> Option<Bytes> {
    let resources: Vec<Value> = resources::in_group_version(group, version)
        .flat_map(legacy_resource)
        .collect();
    if resources.is_empty() {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(to_bytes(&json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": resources,
    })))
}

fn group_json(name: &str, versions: &[&str]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({
        "name": name,
        "versions": vs,
        "preferredVersion": {"groupVersion": format!("{name}/{}", versions[0]), "version": versions[0]},
    })
}

pub fn api_versions(server_address: &str) -> Bytes {
    to_bytes(&json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }))
}

pub fn group_list() -> Bytes {
    static DOC: LazyLock<Bytes> = LazyLock::new(|| {
        let groups: Vec<Value> = GROUPS.iter().map(|(g, vs)| group_json(g, vs)).collect();
        to_bytes(&json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}))
    });
    DOC.clone()
}

pub fn group(name: &str) -> Option<Bytes> {
    let (_, vs) = GROUPS.iter().find(|(g, _)| *g == name)?;
    let mut g = group_json(name, vs);
    g["kind"] = json!("APIGroup");
    g["apiVersion"] = json!("v1");
    Some(to_bytes(&g))
}

fn aggregated_resource(r: &ResourceInfo) -> Value {
    let mut v = json!({
        "resource": r.resource,
        "responseKind": {"group": "", "version": "", "kind": r.kind},
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": r.verbs,
    });
    if !r.short_names.is_empty() {
        v["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        v["categories"] = json!(r.categories);
    }
    if !r.subresources.is_empty() {
        let subs: Vec<Value> = r
            .subresources
            .iter()
            .map(|s| {
                json!({
                    "subresource": s.name,
                    "responseKind": {"group": s.group, "version": s.version,
                                     "kind": if s.kind.is_empty() { r.kind } else { s.kind }},
                    "verbs": s.verbs,
                })
            })
            .collect();
        v["subresources"] = json!(subs);
    }
    v
}

fn aggregated_group(name: &str, versions: &[&str]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|ver| {
            let resources: Vec<Value> = resources::in_group_version(name, ver)
                .map(aggregated_resource)
                .collect();
            json!({"version": ver, "resources": resources, "freshness": "Current"})
        })
        .collect();
    let mut meta = json!({"creationTimestamp": null});
    if !name.is_empty() {
        meta["name"] = json!(name);
    }
    json!({"metadata": meta, "versions": vs})
}

/// The aggregated discovery document of `/api` (legacy=true) or `/apis`, in apidiscovery
/// version `v2` or `v2beta1`.
pub fn aggregated(legacy: bool, version: &str) -> Bytes {
    let items: Vec<Value> = if legacy {
        vec![aggregated_group("", &["v1"])]
    } else {
        GROUPS
            .iter()
            .map(|(g, vs)| aggregated_group(g, vs))
            .collect()
    };
    to_bytes(&json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{version}"),
        "metadata": {},
        "items": items,
    }))
}

/// Whether the client asks for aggregated discovery, and at which version (first acceptable).
pub fn wants_aggregated(headers: &HeaderMap) -> Option<&'static str> {
    let accept = headers.get(http::header::ACCEPT)?.to_str().ok()?;
    for clause in accept.split(',') {
        let params: Vec<&str> = clause.split(';').map(str::trim).collect();
        let has = |p: &str| params.iter().any(|x| x.replace(' ', "") == p);
        if has("g=apidiscovery.k8s.io") && has("as=APIGroupDiscoveryList") {
            if has("v=v2") {
                return Some("v2");
            }
            if has("v=v2beta1") {
                return Some("v2beta1");
            }
        }
        let mime = params.first().copied().unwrap_or("");
        if mime == "application/json" && params.len() == 1 {
            return None;
        }
    }
    None
}

fn to_bytes(v: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(v).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eviction_is_listed_as_policy_v1() {
        let list: Value = serde_json::from_slice(&resource_list("", "v1").unwrap()).unwrap();
        let ev = list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "pods/eviction")
            .unwrap();
        assert_eq!(
            (
                ev["group"].as_str(),
                ev["version"].as_str(),
                ev["kind"].as_str()
            ),
            (Some("policy"), Some("v1"), Some("Eviction"))
        );
    }

    #[test]
    fn aggregated_discovery_is_negotiated_from_accept() {
        let mut h = HeaderMap::new();
        h.insert(http::header::ACCEPT, "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json".parse().unwrap());
        assert_eq!(wants_aggregated(&h), Some("v2"));
        h.insert(http::header::ACCEPT, "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json".parse().unwrap());
        assert_eq!(wants_aggregated(&h), Some("v2beta1"));
        h.insert(
            http::header::ACCEPT,
            "application/json, */*".parse().unwrap(),
        );
        assert_eq!(wants_aggregated(&h), None);
    }
}
