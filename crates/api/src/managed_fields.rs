//! Field ownership (`metadata.managedFields`), as structured-merge-diff records it.
//!
//! An object's fields form a set of paths (`f:spec`, `f:containers`, `k:{"name":"web"}`,
//! `v:"finalizer"`, `.` for a node that is itself a member). On every write the writing manager
//! takes ownership of the fields it changed, and every other manager loses them; fields that
//! disappear leave every set. Lists are keyed as the schema says (`listType=map` by their map
//! keys, `set` by value, otherwise atomic).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::schema::{self, Cardinality, FieldSchema, ListType, TypeSchema};

/// One path element in FieldsV1 syntax.
type Path = Vec<String>;

/// Every node of an object as a field path, with the value of each leaf (None for a node with
/// children), for structured-merge-diff's comparison of two objects.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FieldValues(BTreeMap<Path, Option<Value>>);

/// Metadata fields the server owns; never part of a manager's set.
pub(crate) const IGNORED_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

impl FieldValues {
    /// The fields of `obj` a manager can own through `subresource` ("" or "status").
    pub fn of(obj: &Value, subresource: &str) -> Self {
        let ty = schema::kind_type_of(obj);
        let mut out = FieldValues::default();
        let Some(m) = obj.as_object() else { return out };
        for (k, v) in m {
            if !in_scope(k, subresource) {
                continue;
            }
            let f = ty.and_then(|t| t.field(k));
            let mut path = vec![format!("f:{k}")];
            if k == "metadata" {
                out.node(&path, None);
                if let Some(mm) = v.as_object() {
                    let meta_ty = f.and_then(FieldSchema::message_type);
                    for (mk, mv) in mm {
                        if IGNORED_METADATA.contains(&mk.as_str()) {
                            continue;
                        }
                        path.push(format!("f:{mk}"));
                        out.walk(&mut path, mv, meta_ty.and_then(|t| t.field(mk)));
                        path.pop();
                    }
                }
                continue;
            }
            out.walk(&mut path, v, f);
        }
        out
    }

    /// What Go's zero value of the object's type looks like as field paths: fields without
    /// `omitempty` are present (structs with their own such fields, lists and maps as null),
    /// which is what a create is compared against.
    pub fn zero_of(obj: &Value, subresource: &str) -> Self {
        let mut out = FieldValues::default();
        let Some(ty) = schema::kind_type_of(obj) else {
            return out;
        };
        let mut path = Vec::new();
        out.zero_struct(&mut path, ty, subresource, 0);
        out
    }

    fn zero_struct(
        &mut self,
        path: &mut Path,
        ty: &'static TypeSchema,
        subresource: &str,
        depth: usize,
    ) {
        if depth > 16 {
            return;
        }
        for f in ty.fields() {
            let name = f.json_name();
            if depth == 0 && (!in_scope(name, subresource) || name == "metadata") {
                if name == "metadata" && in_scope(name, subresource) {
                    self.node(&vec!["f:metadata".to_string()], None);
                }
                continue;
            }
            let is_struct = f.cardinality() == Cardinality::Single
                && f.message_type().is_some_and(|t| !t.is_scalar());
            // Go's zero value holds value structs and non-omitempty fields; pointer structs
            // (even required ones, such as a Deployment's selector) are nil.
            let present = if is_struct {
                is_value_struct(ty, name)
            } else {
                f.is_required()
            };
            if !present || f.tag() == 0 {
                continue;
            }
            path.push(format!("f:{name}"));
            match (f.cardinality(), f.message_type()) {
                (Cardinality::Repeated | Cardinality::Map, _) => self.node(path, Some(Value::Null)),
                (_, Some(t)) if !t.is_scalar() => {
                    self.node(path, None);
                    self.zero_struct(path, t, subresource, depth + 1);
                }
                _ => {
                    let zero = match f.wire() {
                        schema::Wire::String | schema::Wire::Bytes => json!(""),
                        schema::Wire::Bool => json!(false),
                        _ => json!(0),
                    };
                    self.node(path, Some(zero));
                }
            }
            path.pop();
        }
    }

    fn node(&mut self, path: &Path, leaf: Option<Value>) {
        self.0.insert(path.clone(), leaf);
    }

    fn walk(&mut self, path: &mut Path, v: &Value, f: Option<&'static FieldSchema>) {
        match v {
            Value::Object(m) if m.is_empty() => self.node(path, Some(json!({}))),
            Value::Object(m) if f.is_some_and(|f| f.cardinality() == Cardinality::Map) => {
                // A map (labels, annotations, data): the map itself and each key.
                self.node(path, None);
                let elem = f.and_then(FieldSchema::message_type);
                for (k, x) in m {
                    path.push(format!("f:{k}"));
                    self.walk_typed(path, x, elem);
                    path.pop();
                }
            }
            Value::Object(_) => self.walk_typed(path, v, f.and_then(FieldSchema::message_type)),
            Value::Array(items) if items.is_empty() => self.node(path, Some(json!([]))),
            Value::Array(items) => {
                let lt = f.map(FieldSchema::list_type).unwrap_or(ListType::Atomic);
                let keys: Vec<&str> = match f {
                    Some(f) if !f.list_map_keys().is_empty() => f.list_map_keys().to_vec(),
                    Some(f) => f.merge_key().into_iter().collect(),
                    None => Vec::new(),
                };
                let elem = f.and_then(FieldSchema::message_type);
                match lt {
                    ListType::Map if !keys.is_empty() => {
                        self.node(path, None);
                        for item in items {
                            path.push(list_item_key(item, &keys));
                            self.walk_typed(path, item, elem);
                            path.pop();
                        }
                    }
                    ListType::Set => {
                        self.node(path, None);
                        for item in items {
                            path.push(format!("v:{item}"));
                            self.node(path, Some(json!(true)));
                            path.pop();
                        }
                    }
                    _ => self.node(path, Some(v.clone())),
                }
            }
            other => self.node(path, Some(other.clone())),
        }
    }

    /// A struct (or a map value, or a list element): the node and its fields; an empty struct
    /// is a leaf.
    fn walk_typed(&mut self, path: &mut Path, v: &Value, ty: Option<&'static TypeSchema>) {
        match v {
            Value::Object(m) if ty.is_none_or(|t| !t.is_scalar()) => {
                if m.is_empty() || ty.is_some_and(|t| t.struct_type() == schema::StructType::Atomic)
                {
                    self.node(path, Some(v.clone()));
                    return;
                }
                self.node(path, None);
                for (k, x) in m {
                    path.push(format!("f:{k}"));
                    self.walk(path, x, ty.and_then(|t| t.field(k)));
                    path.pop();
                }
            }
            other => self.node(path, Some(other.clone())),
        }
    }

    /// Structured-merge-diff's `Added ∪ Modified` from `old` to `self`: nodes absent before, and
    /// leaves whose value changed.
    pub(crate) fn changed_since(&self, old: &FieldValues) -> BTreeSet<Path> {
        self.0
            .iter()
            .filter(|(p, v)| match (old.0.get(*p), v) {
                (None, _) => true,
                (Some(Some(a)), Some(b)) => a != b,
                _ => false,
            })
            .map(|(p, _)| p.clone())
            .collect()
    }

    pub(crate) fn removed_since(&self, old: &FieldValues) -> BTreeSet<Path> {
        old.0
            .keys()
            .filter(|p| !self.0.contains_key(*p))
            .cloned()
            .collect()
    }

    fn contains(&self, p: &Path) -> bool {
        self.0.contains_key(p)
    }
}

/// The FieldsV1 element (`k:{"containerPort":80,"protocol":"TCP"}`) of an item of a list keyed
/// by `keys`. A missing key field takes its schema default where it has one (the `protocol` of
/// ports is "TCP"), as structured-merge-diff fills it in.
pub(crate) fn list_item_key(item: &Value, keys: &[&str]) -> String {
    let mut key = Map::new();
    for k in keys {
        match item.get(*k) {
            Some(kv) if !kv.is_null() => {
                key.insert((*k).to_string(), kv.clone());
            }
            _ if *k == "protocol" => {
                key.insert("protocol".into(), json!("TCP"));
            }
            _ => {}
        }
    }
    format!("k:{}", Value::Object(key))
}

/// Struct fields Go holds by value (not by pointer): present in a zero object even when the
/// OpenAPI schema calls them optional, so they are never owned as nodes of their own. The
/// OpenAPI schema does not tell pointers from values; this is the list for the built-in types.
fn is_value_struct(ty: &TypeSchema, field: &str) -> bool {
    matches!(
        (ty.short_name(), field),
        (_, "metadata" | "spec" | "status")
            | (
                "DeploymentSpec"
                    | "ReplicaSetSpec"
                    | "DaemonSetSpec"
                    | "StatefulSetSpec"
                    | "JobSpec"
                    | "ReplicationControllerSpec",
                "template"
            )
            | ("CronJobSpec", "jobTemplate")
            | ("DeploymentSpec", "strategy")
            | ("DaemonSetSpec" | "StatefulSetSpec", "updateStrategy")
            | ("Container" | "EphemeralContainer", "resources")
            | ("PersistentVolumeClaimSpec", "resources")
            | ("ServiceStatus" | "IngressStatus", "loadBalancer")
            | ("NodeStatus", "daemonEndpoints" | "nodeInfo")
            | ("NodeDaemonEndpoints", "kubeletEndpoint")
            | ("HorizontalPodAutoscalerSpec", "scaleTargetRef")
            | ("RoleBinding" | "ClusterRoleBinding", "roleRef")
            | (
                "Event",
                "involvedObject" | "source" | "firstTimestamp" | "lastTimestamp" | "eventTime"
            )
            | ("NetworkPolicySpec", "podSelector")
            | ("Endpoint", "conditions")
            | ("ServicePort", "targetPort")
    )
}

/// Whether a top-level field belongs to what a write through `subresource` may own.
pub(crate) fn in_scope(field: &str, subresource: &str) -> bool {
    match field {
        "apiVersion" | "kind" => false,
        "status" => subresource == "status",
        _ => subresource != "status",
    }
}

/// Serializes a set of member paths as FieldsV1 JSON.
pub fn to_fields_v1(set: &BTreeSet<Path>) -> Value {
    let mut root = Map::new();
    for p in set {
        let mut node = &mut root;
        for (i, seg) in p.iter().enumerate() {
            let entry = node.entry(seg.clone()).or_insert_with(|| json!({}));
            let last = i + 1 == p.len();
            let obj = entry.as_object_mut().expect("fieldsV1 nodes are objects");
            node = obj;
            if last {
                // A member that also has children is marked with ".".
                let has_children = set.iter().any(|q| q.len() > p.len() && q.starts_with(p));
                if has_children {
                    node.insert(".".into(), json!({}));
                }
            }
        }
    }
    Value::Object(root)
}

/// Parses FieldsV1 JSON into member paths.
pub fn from_fields_v1(v: &Value) -> BTreeSet<Path> {
    fn go(v: &Value, path: &mut Path, out: &mut BTreeSet<Path>) {
        let Some(m) = v.as_object() else { return };
        if m.is_empty() && !path.is_empty() {
            out.insert(path.clone());
            return;
        }
        for (k, x) in m {
            if k == "." {
                out.insert(path.clone());
                continue;
            }
            path.push(k.clone());
            go(x, path, out);
            path.pop();
        }
    }
    let mut out = BTreeSet::new();
    go(v, &mut Vec::new(), &mut out);
    out
}

/// Records a write by `manager` in `new.metadata.managedFields`: `old` is the object before
/// (None on create). `operation` is "Update" or "Apply".
pub fn record(
    new: &mut Value,
    old: Option<&Value>,
    manager: &str,
    operation: &str,
    api_version: &str,
    subresource: &str,
    now: &str,
) {
    let new_fields = FieldValues::of(new, subresource);
    let old_fields = match old {
        Some(o) => FieldValues::of(o, subresource),
        None => FieldValues::zero_of(new, subresource),
    };
    let changed = new_fields.changed_since(&old_fields);
    let removed = new_fields.removed_since(&old_fields);
    let mut entries: Vec<Value> = new
        .pointer("/metadata/managedFields")
        .or_else(|| old.and_then(|o| o.pointer("/metadata/managedFields")))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let is_mine = |e: &Value| {
        e.get("manager").and_then(Value::as_str).unwrap_or("") == manager
            && e.get("operation").and_then(Value::as_str) == Some(operation)
            && e.get("apiVersion").and_then(Value::as_str) == Some(api_version)
            && e.get("subresource").and_then(Value::as_str).unwrap_or("") == subresource
    };
    let mut mine: BTreeSet<Path> = BTreeSet::new();
    let mut mine_time: Option<Value> = None;
    let mut others = Vec::new();
    for e in entries.drain(..) {
        if is_mine(&e) {
            mine = e.get("fieldsV1").map(from_fields_v1).unwrap_or_default();
            mine_time = e.get("time").cloned();
            continue;
        }
        let mut set = e.get("fieldsV1").map(from_fields_v1).unwrap_or_default();
        let same_subresource =
            e.get("subresource").and_then(Value::as_str).unwrap_or("") == subresource;
        if same_subresource {
            let before = set.len();
            set.retain(|p| !changed.contains(p) && !removed.contains(p));
            if set.is_empty() {
                continue;
            }
            if set.len() != before {
                let mut e = e.clone();
                e["fieldsV1"] = to_fields_v1(&set);
                others.push(e);
                continue;
            }
        }
        others.push(e);
    }
    let before = mine.clone();
    mine.retain(|p| !removed.contains(p));
    mine.extend(changed.iter().cloned());
    // Drop paths no longer in the object at all (e.g. a member whose children vanished).
    mine.retain(|p| new_fields.contains(p));
    let mut out = others;
    if !mine.is_empty() {
        let mut e = Map::new();
        if !manager.is_empty() {
            e.insert("manager".into(), json!(manager));
        }
        e.insert("operation".into(), json!(operation));
        e.insert("apiVersion".into(), json!(api_version));
        let time = if mine != before || mine_time.is_none() {
            json!(now)
        } else {
            mine_time.unwrap_or(json!(now))
        };
        e.insert("time".into(), time);
        e.insert("fieldsType".into(), json!("FieldsV1"));
        e.insert("fieldsV1".into(), to_fields_v1(&mine));
        if !subresource.is_empty() {
            e.insert("subresource".into(), json!(subresource));
        }
        // Upstream keeps entries in the order they were first written.
        let pos = new
            .pointer("/metadata/managedFields")
            .or_else(|| old.and_then(|o| o.pointer("/metadata/managedFields")))
            .and_then(Value::as_array)
            .and_then(|a| a.iter().position(is_mine))
            .unwrap_or(out.len());
        out.insert(pos.min(out.len()), Value::Object(e));
    }
    let meta = new
        .as_object_mut()
        .and_then(|o| o.get_mut("metadata"))
        .and_then(Value::as_object_mut);
    if let Some(meta) = meta {
        if out.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(out));
        }
    }
}

/// The default field manager of a request: the `fieldManager` parameter, or the user agent's
/// program name (`kubectl/v1.33.1 (linux/amd64) ...` gives `kubectl`), truncated to 128 bytes.
pub fn manager_from_user_agent(ua: &str) -> String {
    let name = ua.split('/').next().unwrap_or("").trim();
    let mut s: String = name.chars().filter(|c| !c.is_control()).collect();
    s.truncate(128);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80, "protocol": "TCP"}]}],
                     "restartPolicy": "Always", "securityContext": {}}})
    }

    #[test]
    fn create_owns_every_field_in_upstreams_syntax() {
        let mut p = pod();
        record(
            &mut p,
            None,
            "kubectl-create",
            "Update",
            "v1",
            "",
            "2024-01-01T00:00:00Z",
        );
        let mf = &p["metadata"]["managedFields"][0];
        assert_eq!(mf["manager"], "kubectl-create");
        let f = &mf["fieldsV1"];
        assert_eq!(f["f:metadata"]["f:labels"]["."], json!({}));
        assert_eq!(f["f:metadata"]["f:labels"]["f:app"], json!({}));
        let c = &f["f:spec"]["f:containers"]["k:{\"name\":\"nginx\"}"];
        assert_eq!(c["."], json!({}));
        assert_eq!(c["f:image"], json!({}));
        assert_eq!(
            c["f:ports"]["k:{\"containerPort\":80,\"protocol\":\"TCP\"}"]["f:containerPort"],
            json!({})
        );
        assert_eq!(f["f:spec"]["f:securityContext"], json!({}));
        assert!(f["f:metadata"].get("f:name").is_none());
    }

    #[test]
    fn an_update_moves_changed_fields_to_the_new_manager() {
        let mut old = pod();
        record(&mut old, None, "kubectl-create", "Update", "v1", "", "t0");
        let mut new = old.clone();
        new["spec"]["containers"][0]["image"] = json!("nginx:1.25");
        record(
            &mut new,
            Some(&old),
            "kubectl-set",
            "Update",
            "v1",
            "",
            "t1",
        );
        let mfs = new["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(mfs.len(), 2);
        let create = &mfs[0]["fieldsV1"]["f:spec"]["f:containers"]["k:{\"name\":\"nginx\"}"];
        assert!(create.get("f:image").is_none());
        let set = &mfs[1]["fieldsV1"]["f:spec"]["f:containers"]["k:{\"name\":\"nginx\"}"];
        assert_eq!(set["f:image"], json!({}));
        assert_eq!(mfs[1]["time"], "t1");
    }

    #[test]
    fn value_structs_and_required_lists_are_not_owned_as_nodes() {
        let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "labels": {"app": "d"}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "d"}},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                     "template": {"metadata": {"labels": {"app": "d"}},
                                  "spec": {"containers": [{"name": "c", "image": "x", "resources": {}}]}}}});
        record(&mut d, None, "kubectl-create", "Update", "apps/v1", "", "t");
        let f = &d["metadata"]["managedFields"][0]["fieldsV1"];
        assert!(f["f:spec"].get(".").is_none(), "{f}");
        assert!(f["f:spec"]["f:strategy"].get(".").is_none());
        assert_eq!(f["f:spec"]["f:strategy"]["f:rollingUpdate"]["."], json!({}));
        assert!(
            f["f:spec"]["f:template"]["f:spec"]["f:containers"]
                .get(".")
                .is_none()
        );
        assert_eq!(
            f["f:spec"]["f:selector"],
            json!({}),
            "LabelSelector is an atomic struct"
        );
        assert_eq!(
            f["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"c\"}"]["f:resources"],
            json!({})
        );
    }

    #[test]
    fn fields_v1_round_trips() {
        let mut p = pod();
        record(&mut p, None, "m", "Update", "v1", "", "t");
        let f = p["metadata"]["managedFields"][0]["fieldsV1"].clone();
        assert_eq!(to_fields_v1(&from_fields_v1(&f)), f);
    }

    #[test]
    fn user_agents_name_the_manager() {
        assert_eq!(
            manager_from_user_agent("kubectl/v1.33.1 (linux/amd64) kubernetes/8adc0f0"),
            "kubectl"
        );
        assert_eq!(
            manager_from_user_agent("OpenAPI-Generator/37.0.2/python"),
            "OpenAPI-Generator"
        );
    }
}
