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
        let mut out = FieldValues::default();
        out.collect(
            &mut Vec::new(),
            obj,
            Ctx::Root(schema::kind_type_of(obj)),
            subresource,
        );
        out
    }

    /// `v` and everything under it, at `path`.
    fn collect(&mut self, path: &mut Path, v: &Value, ctx: Ctx, subresource: &str) {
        match shape(v, ctx, subresource) {
            Shape::Leaf(leaf) => self.node(path, Some(leaf.cloned().unwrap_or(json!(true)))),
            Shape::Node(children) => {
                if !path.is_empty() {
                    self.node(path, None);
                }
                for (seg, x, c) in children {
                    path.push(seg);
                    self.collect(path, x, c, subresource);
                    path.pop();
                }
            }
        }
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
}

/// The schema a node of an object is read with, which decides how its children are named.
#[derive(Clone, Copy)]
enum Ctx {
    /// The object itself: top-level fields in the write's scope.
    Root(Option<&'static TypeSchema>),
    /// `metadata`, without the fields the server owns.
    Metadata(Option<&'static TypeSchema>),
    /// The value of a field.
    Field(Option<&'static FieldSchema>),
    /// A struct: a map value, a list element, or a field's message.
    Typed(Option<&'static TypeSchema>),
    /// A member of a `set` list, whose value is its name.
    SetItem,
}

/// A node as field paths see it: a leaf (with its value; None for a set member) or a node with
/// named children.
enum Shape<'a> {
    Leaf(Option<&'a Value>),
    Node(Vec<(String, &'a Value, Ctx)>),
}

fn shape<'a>(v: &'a Value, ctx: Ctx, subresource: &str) -> Shape<'a> {
    let fields = |m: &'a Map<String, Value>, ty: Option<&'static TypeSchema>| {
        m.iter()
            .map(|(k, x)| (format!("f:{k}"), x, Ctx::Field(ty.and_then(|t| t.field(k)))))
            .collect()
    };
    match (ctx, v) {
        (Ctx::SetItem, _) => Shape::Leaf(None),
        (Ctx::Root(ty), _) => Shape::Node(
            v.as_object()
                .into_iter()
                .flatten()
                .filter(|(k, _)| in_scope(k, subresource))
                .map(|(k, x)| {
                    let f = ty.and_then(|t| t.field(k));
                    let c = if k == "metadata" {
                        Ctx::Metadata(f.and_then(FieldSchema::message_type))
                    } else {
                        Ctx::Field(f)
                    };
                    (format!("f:{k}"), x, c)
                })
                .collect(),
        ),
        (Ctx::Metadata(ty), _) => Shape::Node(
            v.as_object()
                .into_iter()
                .flatten()
                .filter(|(k, _)| !IGNORED_METADATA.contains(&k.as_str()))
                .map(|(k, x)| (format!("f:{k}"), x, Ctx::Field(ty.and_then(|t| t.field(k)))))
                .collect(),
        ),
        (Ctx::Field(_), Value::Object(m)) if m.is_empty() => Shape::Leaf(Some(v)),
        (Ctx::Field(Some(f)), Value::Object(m)) if f.cardinality() == Cardinality::Map => {
            // A map (labels, annotations, data): the map itself and each key.
            let elem = f.message_type();
            Shape::Node(
                m.iter()
                    .map(|(k, x)| (format!("f:{k}"), x, Ctx::Typed(elem)))
                    .collect(),
            )
        }
        (Ctx::Field(f), Value::Object(_)) => shape(
            v,
            Ctx::Typed(f.and_then(FieldSchema::message_type)),
            subresource,
        ),
        (Ctx::Field(f), Value::Array(items)) if !items.is_empty() => {
            let lt = f.map(FieldSchema::list_type).unwrap_or(ListType::Atomic);
            let keys: Vec<&str> = match f {
                Some(f) if !f.list_map_keys().is_empty() => f.list_map_keys().to_vec(),
                Some(f) => f.merge_key().into_iter().collect(),
                None => Vec::new(),
            };
            let elem = f.and_then(FieldSchema::message_type);
            match lt {
                ListType::Map if !keys.is_empty() => Shape::Node(
                    items
                        .iter()
                        .map(|item| (list_item_key(item, &keys), item, Ctx::Typed(elem)))
                        .collect(),
                ),
                ListType::Set => Shape::Node(
                    items
                        .iter()
                        .map(|item| (format!("v:{item}"), item, Ctx::SetItem))
                        .collect(),
                ),
                _ => Shape::Leaf(Some(v)),
            }
        }
        (Ctx::Typed(ty), Value::Object(m)) if ty.is_none_or(|t| !t.is_scalar()) => {
            // An empty or atomic struct is a leaf.
            if m.is_empty() || ty.is_some_and(|t| t.struct_type() == schema::StructType::Atomic) {
                Shape::Leaf(Some(v))
            } else {
                Shape::Node(fields(m, ty))
            }
        }
        _ => Shape::Leaf(Some(v)),
    }
}

/// Every path of `v` (at `path`) and below, into `out`.
fn all_paths(path: &mut Path, v: &Value, ctx: Ctx, subresource: &str, out: &mut BTreeSet<Path>) {
    if !path.is_empty() {
        out.insert(path.clone());
    }
    if let Shape::Node(children) = shape(v, ctx, subresource) {
        for (seg, x, c) in children {
            path.push(seg);
            all_paths(path, x, c, subresource, out);
            path.pop();
        }
    }
}

/// What `FieldValues::changed_since` and `removed_since` give for `old` -> `new`, found by
/// walking both objects together and skipping equal subtrees, so a write that changes a few
/// fields costs a few paths rather than two copies of every path of the object.
fn diff(
    path: &mut Path,
    old: &Value,
    new: &Value,
    ctx: Ctx,
    subresource: &str,
    changed: &mut BTreeSet<Path>,
    removed: &mut BTreeSet<Path>,
) {
    if old == new {
        return;
    }
    fn children(s: Shape<'_>) -> BTreeMap<String, (&Value, Ctx)> {
        match s {
            Shape::Node(c) => c.into_iter().map(|(s, x, c)| (s, (x, c))).collect(),
            Shape::Leaf(_) => BTreeMap::new(),
        }
    }
    match (shape(old, ctx, subresource), shape(new, ctx, subresource)) {
        (Shape::Leaf(a), Shape::Leaf(b)) => {
            if a != b && !path.is_empty() {
                changed.insert(path.clone());
            }
        }
        (o, n) => {
            let (old_children, new_children) = (children(o), children(n));
            for (seg, (x, c)) in &new_children {
                path.push(seg.clone());
                match old_children.get(seg) {
                    Some((ox, _)) => diff(path, ox, x, *c, subresource, changed, removed),
                    None => all_paths(path, x, *c, subresource, changed),
                }
                path.pop();
            }
            for (seg, (x, c)) in &old_children {
                if !new_children.contains_key(seg) {
                    path.push(seg.clone());
                    all_paths(path, x, *c, subresource, removed);
                    path.pop();
                }
            }
        }
    }
}

/// The child `seg` of the object `m` read with `ctx`, as `shape` would name it.
fn field_child<'a>(
    m: &'a Map<String, Value>,
    ctx: Ctx,
    subresource: &str,
    seg: &str,
) -> Option<(&'a Value, Ctx)> {
    let name = seg.strip_prefix("f:")?;
    let x = m.get(name)?;
    match ctx {
        Ctx::SetItem => None,
        Ctx::Root(ty) => {
            let f = ty.and_then(|t| t.field(name));
            match name {
                _ if !in_scope(name, subresource) => None,
                "metadata" => Some((x, Ctx::Metadata(f.and_then(FieldSchema::message_type)))),
                _ => Some((x, Ctx::Field(f))),
            }
        }
        Ctx::Metadata(ty) => (!IGNORED_METADATA.contains(&name))
            .then(|| (x, Ctx::Field(ty.and_then(|t| t.field(name))))),
        _ if m.is_empty() => None,
        Ctx::Field(Some(f)) if f.cardinality() == Cardinality::Map => {
            Some((x, Ctx::Typed(f.message_type())))
        }
        Ctx::Field(f) => field_child(
            m,
            Ctx::Typed(f.and_then(FieldSchema::message_type)),
            subresource,
            seg,
        ),
        Ctx::Typed(ty) => {
            let leaf =
                ty.is_some_and(|t| t.is_scalar() || t.struct_type() == schema::StructType::Atomic);
            (!leaf).then(|| (x, Ctx::Field(ty.and_then(|t| t.field(name)))))
        }
    }
}

/// The paths of `want` (each starting with the `depth` segments that led to `v`) that are
/// paths of `v`, into `out`; each node on the way is named once.
fn existing(
    v: &Value,
    ctx: Ctx,
    subresource: &str,
    depth: usize,
    want: &[&Path],
    out: &mut BTreeSet<Path>,
) {
    let mut deeper: BTreeMap<&str, Vec<&Path>> = BTreeMap::new();
    for p in want {
        match p.get(depth) {
            None => {
                out.insert((*p).clone());
            }
            Some(seg) => deeper.entry(seg.as_str()).or_default().push(p),
        }
    }
    if deeper.is_empty() {
        return;
    }
    // A struct's or a map's children are looked up by name; only lists need every child named.
    if let Some(m) = v.as_object() {
        for (seg, group) in deeper {
            if let Some((x, c)) = field_child(m, ctx, subresource, seg) {
                existing(x, c, subresource, depth + 1, &group, out);
            }
        }
        return;
    }
    if let Shape::Node(children) = shape(v, ctx, subresource) {
        for (seg, x, c) in children {
            if let Some(group) = deeper.get(seg.as_str()) {
                existing(x, c, subresource, depth + 1, group, out);
            }
        }
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
                // A member that also has children is marked with ".". Paths sort depth-first,
                // so any child of `p` comes right after it.
                let has_children = set
                    .range::<Path, _>((std::ops::Bound::Excluded(p), std::ops::Bound::Unbounded))
                    .next()
                    .is_some_and(|q| q.starts_with(p));
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
    let root = Ctx::Root(schema::kind_type_of(new));
    let (changed, removed) = match old {
        Some(o) => {
            let (mut changed, mut removed) = (BTreeSet::new(), BTreeSet::new());
            diff(
                &mut Vec::new(),
                o,
                new,
                root,
                subresource,
                &mut changed,
                &mut removed,
            );
            (changed, removed)
        }
        None => {
            let new_fields = FieldValues::of(new, subresource);
            let zero = FieldValues::zero_of(new, subresource);
            (
                new_fields.changed_since(&zero),
                new_fields.removed_since(&zero),
            )
        }
    };
    // A write of the main resource whose managedFields is one empty entry resets them
    // (upstream's isResetManagedFields). One without them, or with an empty list, keeps the
    // stored ones: upstream documents that an empty list does not reset them, so clients
    // unaware of the field never strip it.
    let requested = new
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty());
    let reset = subresource.is_empty()
        && requested.is_some_and(|a| a.len() == 1 && a[0].as_object().is_some_and(Map::is_empty));
    let stored = if reset {
        None
    } else {
        requested.or_else(|| {
            old.and_then(|o| o.pointer("/metadata/managedFields"))
                .and_then(Value::as_array)
        })
    };
    let mut entries: Vec<Value> = stored.cloned().unwrap_or_default();
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
        let same_subresource =
            e.get("subresource").and_then(Value::as_str).unwrap_or("") == subresource;
        if same_subresource && !(changed.is_empty() && removed.is_empty()) {
            let mut set = e.get("fieldsV1").map(from_fields_v1).unwrap_or_default();
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
    let mut kept = BTreeSet::new();
    existing(
        new,
        root,
        subresource,
        0,
        &mine.iter().collect::<Vec<_>>(),
        &mut kept,
    );
    let mine = kept;
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
        let pos = stored
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

    /// The walk of both objects together finds what comparing every path of both finds.
    #[test]
    fn diffing_two_objects_agrees_with_comparing_all_their_paths() {
        let base = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web", "tier": "a"},
                         "finalizers": ["x/y"], "resourceVersion": "5"},
            "spec": {"containers": [{"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80}],
                                     "resources": {"limits": {"cpu": "1"}}}],
                     "restartPolicy": "Always", "securityContext": {}},
            "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False"}]}});
        type Edit = (&'static str, fn(&mut Value));
        let edits: Vec<Edit> = vec![
            ("same", |_| {}),
            ("bind", |p| p["spec"]["nodeName"] = json!("n1")),
            ("image", |p| {
                p["spec"]["containers"][0]["image"] = json!("nginx:2")
            }),
            ("label gone", |p| {
                p["metadata"]["labels"]
                    .as_object_mut()
                    .unwrap()
                    .remove("tier");
            }),
            ("labels emptied", |p| p["metadata"]["labels"] = json!({})),
            ("labels removed", |p| {
                p["metadata"].as_object_mut().unwrap().remove("labels");
            }),
            ("finalizer added", |p| {
                p["metadata"]["finalizers"] = json!(["x/y", "z"])
            }),
            ("rv only", |p| p["metadata"]["resourceVersion"] = json!("6")),
            ("port", |p| {
                p["spec"]["containers"][0]["ports"] =
                    json!([{"containerPort": 81, "protocol": "UDP"}])
            }),
            ("second container", |p| {
                let c = json!({"name": "side", "image": "busybox"});
                p["spec"]["containers"].as_array_mut().unwrap().push(c);
            }),
            ("sc filled", |p| {
                p["spec"]["securityContext"] = json!({"runAsUser": 1})
            }),
            ("limits emptied", |p| {
                p["spec"]["containers"][0]["resources"] = json!({})
            }),
            ("status", |p| {
                p["status"] = json!({"phase": "Running", "podIP": "10.0.0.1",
                    "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"}]})
            }),
            ("type changed", |p| {
                p["spec"]["containers"] = json!({"odd": 1})
            }),
        ];
        for sub in ["", "status"] {
            for (what, edit) in &edits {
                let mut new = base.clone();
                edit(&mut new);
                let (nf, of) = (FieldValues::of(&new, sub), FieldValues::of(&base, sub));
                let (mut changed, mut removed) = (BTreeSet::new(), BTreeSet::new());
                let root = Ctx::Root(schema::kind_type_of(&new));
                diff(
                    &mut Vec::new(),
                    &base,
                    &new,
                    root,
                    sub,
                    &mut changed,
                    &mut removed,
                );
                assert_eq!(changed, nf.changed_since(&of), "{what} ({sub:?}): changed");
                assert_eq!(removed, nf.removed_since(&of), "{what} ({sub:?}): removed");
                // Every path of either object, asked of the new one.
                let asked: Vec<&Path> = of.0.keys().chain(nf.0.keys()).collect();
                let mut found = BTreeSet::new();
                existing(&new, root, sub, 0, &asked, &mut found);
                let expected: BTreeSet<Path> = nf.0.keys().cloned().collect();
                assert_eq!(found, expected, "{what} ({sub:?}): existing");
            }
        }
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
