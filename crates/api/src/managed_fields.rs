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

/// The members of a field set, with the value of each leaf (for change detection).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FieldValues(BTreeMap<Path, Value>);

/// Metadata fields the server owns; never part of a manager's set.
const IGNORED_METADATA: &[&str] = &[
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
            match k.as_str() {
                "apiVersion" | "kind" => continue,
                "status" if subresource != "status" => continue,
                "status" => {}
                _ if subresource == "status" => continue,
                _ => {}
            }
            let f = ty.and_then(|t| t.field(k));
            let mut path = vec![format!("f:{k}")];
            if k == "metadata" {
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

    fn member(&mut self, path: &Path, v: Value) {
        self.0.insert(path.clone(), v);
    }

    fn walk(&mut self, path: &mut Path, v: &Value, f: Option<&'static FieldSchema>) {
        match v {
            Value::Object(m) if f.is_some_and(|f| f.cardinality() == Cardinality::Map) => {
                // A map (labels, annotations, data): the map itself and each key.
                self.member(path, Value::Null);
                let elem = f.and_then(FieldSchema::message_type);
                for (k, x) in m {
                    path.push(format!("f:{k}"));
                    self.walk_typed(path, x, elem);
                    path.pop();
                }
            }
            Value::Object(_) => self.walk_typed(path, v, f.and_then(FieldSchema::message_type)),
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
                        self.member(path, Value::Null);
                        for item in items {
                            let mut key = Map::new();
                            for k in &keys {
                                if let Some(kv) = item.get(*k) {
                                    key.insert((*k).to_string(), kv.clone());
                                }
                            }
                            path.push(format!("k:{}", Value::Object(key)));
                            self.member(path, Value::Null);
                            self.walk_typed(path, item, elem);
                            path.pop();
                        }
                    }
                    ListType::Set => {
                        self.member(path, Value::Null);
                        for item in items {
                            path.push(format!("v:{item}"));
                            self.member(path, Value::Null);
                            path.pop();
                        }
                    }
                    _ => self.member(path, v.clone()),
                }
            }
            other => self.member(path, other.clone()),
        }
    }

    /// A struct value: its fields; an empty struct is itself a leaf.
    fn walk_typed(&mut self, path: &mut Path, v: &Value, ty: Option<&'static TypeSchema>) {
        match v {
            Value::Object(m) if ty.is_none_or(|t| !t.is_scalar()) => {
                if m.is_empty() {
                    if !self.0.contains_key(path) {
                        self.member(path, json!({}));
                    }
                    return;
                }
                for (k, x) in m {
                    path.push(format!("f:{k}"));
                    self.walk(path, x, ty.and_then(|t| t.field(k)));
                    path.pop();
                }
            }
            other => {
                if !self.0.contains_key(path) {
                    self.member(path, other.clone());
                }
            }
        }
    }

    pub fn paths(&self) -> BTreeSet<Path> {
        self.0.keys().cloned().collect()
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
    let old_fields = old
        .map(|o| FieldValues::of(o, subresource))
        .unwrap_or_default();
    let changed: BTreeSet<Path> = new_fields
        .0
        .iter()
        .filter(|(p, v)| old_fields.0.get(*p) != Some(*v))
        .map(|(p, _)| p.clone())
        .collect();
    let removed: BTreeSet<Path> = old_fields
        .0
        .keys()
        .filter(|p| !new_fields.0.contains_key(*p))
        .cloned()
        .collect();
    let mut entries: Vec<Value> = new
        .pointer("/metadata/managedFields")
        .or_else(|| old.and_then(|o| o.pointer("/metadata/managedFields")))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let is_mine = |e: &Value| {
        e.get("manager").and_then(Value::as_str) == Some(manager)
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
    mine.retain(|p| new_fields.0.contains_key(p));
    let mut out = others;
    if !mine.is_empty() {
        let mut e = Map::new();
        e.insert("manager".into(), json!(manager));
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
