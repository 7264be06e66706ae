//! Server-side apply (`PATCH` with `application/apply-patch+yaml`), as structured-merge-diff
//! (sigs.k8s.io/structured-merge-diff v4) and kube-apiserver's field manager perform it.
//!
//! An apply sends a partial object, the *applied configuration*. The server:
//!
//! 1. merges it into the live object, schema-aware: structs and maps field by field, lists by
//!    their `listType` (`map` lists by their keys, `set` lists by value, `atomic` lists and
//!    structs replaced whole), keeping the relative order structured-merge-diff keeps;
//! 2. prunes what the same manager applied last time and no longer applies, unless another
//!    manager owns it;
//! 3. compares the result with the live object: a field another manager owns whose value the
//!    apply changes is a conflict (409, upstream's message and causes) unless `force=true`,
//!    which moves the field to the applier;
//! 4. records the applied configuration's fields as the manager's set (`operation: Apply`).
//!
//! kubectl's client-side to server-side upgrade is honoured as upstream does it for the
//! `kubectl` manager: conflicts on fields the `last-applied-configuration` annotation holds with
//! the live value are not conflicts, and the annotation is kept in step with what is applied.
//!
//! Defaulting, validation and storage are the caller's: this module only computes the object
//! and its managed fields.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::managed_fields::{
    FieldValues, IGNORED_METADATA, from_fields_v1, in_scope, list_item_key, to_fields_v1,
};
use crate::schema::{self, Cardinality, FieldSchema, ListType, MapType, StructType, TypeSchema};

/// One FieldsV1 path (`f:spec`, `k:{"name":"web"}`, `v:"x"`).
type Path = Vec<String>;
type Set = BTreeSet<Path>;

/// The annotation kubectl's client-side apply keeps.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The manager whose apply keeps the last-applied annotation in step (upstream hard-codes it).
const KUBECTL_MANAGER: &str = "kubectl";

/// What an apply request asks for.
#[derive(Clone, Debug)]
pub struct ApplyOptions<'a> {
    pub manager: &'a str,
    /// The request's group version (`apps/v1`): recorded in the manager's entry.
    pub api_version: &'a str,
    /// "" for the main resource, "status" for `.../status`.
    pub subresource: &'a str,
    pub force: bool,
    /// RFC 3339 time for the entry.
    pub now: &'a str,
}

/// One field another manager owns that the apply would change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The manager as upstream prints it: `"kubectl-client-side-apply" using apps/v1`.
    pub manager: String,
    /// The field as structured-merge-diff prints a path: `.spec.replicas`,
    /// `.spec.template.spec.containers[name="web"].image`.
    pub field: String,
}

/// Why an apply failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// 409: fields owned by other managers would change.
    #[error("{}", conflict_message(.0))]
    Conflicts(Vec<Conflict>),
    /// The applied configuration does not fit the type (unknown field, list item without its
    /// key, duplicate keys). Upstream answers these with an unclassified 500.
    #[error("{0}")]
    Schema(String),
    /// 400: the request itself is malformed.
    #[error("{0}")]
    BadRequest(String),
}

pub type Result<T, E = ApplyError> = std::result::Result<T, E>;

/// Upstream's `getConflictMessage`.
fn conflict_message(conflicts: &[Conflict]) -> String {
    if let [only] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            only.manager, only.field
        );
    }
    let mut by_manager: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for c in conflicts {
        by_manager.entry(&c.manager).or_default().push(&c.field);
    }
    let mut lines = Vec::new();
    for (manager, fields) in by_manager {
        lines.push(format!("conflicts with {manager}:"));
        for f in fields {
            lines.push(format!("- {f}"));
        }
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

// ------------------------------------------------------------------------------ schema shapes

/// How structured-merge-diff treats a node, from the schema table.
#[derive(Clone, Copy, Debug)]
enum Shape {
    /// A struct merged field by field (None: the kind has no schema; deduced as a map).
    Struct(Option<&'static TypeSchema>),
    /// A `map[string]T` merged key by key, with the element's shape.
    Map(Option<&'static TypeSchema>),
    /// `listType=map`: items merged by their key fields.
    AssocList(&'static FieldSchema),
    /// `listType=set`: scalar items merged by value.
    SetList,
    /// Scalars, and atomic lists, maps and structs: replaced whole.
    Atomic,
}

fn struct_shape(t: Option<&'static TypeSchema>) -> Shape {
    match t {
        Some(t) if t.is_scalar() => Shape::Atomic,
        Some(t) if t.struct_type() == StructType::Atomic => Shape::Atomic,
        other => Shape::Struct(other),
    }
}

fn field_shape(f: &'static FieldSchema) -> Shape {
    match f.cardinality() {
        Cardinality::Repeated => match f.list_type() {
            ListType::Map if !keys_of(f).is_empty() => Shape::AssocList(f),
            ListType::Set => Shape::SetList,
            _ => Shape::Atomic,
        },
        Cardinality::Map => {
            if f.map_type() == MapType::Atomic {
                Shape::Atomic
            } else {
                Shape::Map(f.message_type())
            }
        }
        Cardinality::Single | Cardinality::Inline => match f.message_type() {
            Some(t) => struct_shape(Some(t)),
            None => Shape::Atomic,
        },
    }
}

fn keys_of(f: &FieldSchema) -> Vec<&'static str> {
    if !f.list_map_keys().is_empty() {
        f.list_map_keys().to_vec()
    } else {
        f.merge_key().into_iter().collect()
    }
}

/// The shape of a map's values or a list's items.
fn element_shape(t: Option<&'static TypeSchema>) -> Shape {
    match t {
        Some(t) => struct_shape(Some(t)),
        None => Shape::Atomic,
    }
}

/// The shape of `key` inside a node of shape `parent`, and whether it is a named struct field.
fn child_of_object(parent: Shape, key: &str) -> Option<(Shape, bool)> {
    match parent {
        Shape::Struct(Some(t)) => t.field(key).map(|f| (field_shape(f), true)),
        Shape::Struct(None) => Some((Shape::Atomic, true)),
        Shape::Map(elem) => Some((element_shape(elem), false)),
        _ => None,
    }
}

/// The FieldsV1 element of a list item.
fn item_element(shape: Shape, item: &Value) -> Option<String> {
    match shape {
        Shape::AssocList(f) => Some(list_item_key(item, &keys_of(f))),
        Shape::SetList => Some(format!("v:{item}")),
        _ => None,
    }
}

fn item_shape(shape: Shape) -> Shape {
    match shape {
        Shape::AssocList(f) => element_shape(f.message_type()),
        _ => Shape::Atomic,
    }
}

// ------------------------------------------------------------------------------ field sets

/// Structured-merge-diff's `ToFieldSet`: leaves, list items, map entries and empty or null
/// struct fields. Errors name the offending path as upstream prints it.
fn field_set(v: &Value, shape: Shape, path: &mut Path, out: &mut Set) -> Result<()> {
    match (shape, v) {
        (Shape::Struct(_) | Shape::Map(_), Value::Object(m)) => {
            for (k, x) in m {
                let (child, named) = child_of_object(shape, k).ok_or_else(|| {
                    ApplyError::Schema(format!(
                        "{}: field not declared in schema",
                        print_path(&[path.as_slice(), &[format!("f:{k}")]].concat())
                    ))
                })?;
                path.push(format!("f:{k}"));
                field_set(x, child, path, out)?;
                let empty = x.is_null() || x.as_object().is_some_and(Map::is_empty);
                if empty || !named {
                    out.insert(path.clone());
                }
                path.pop();
            }
            Ok(())
        }
        (Shape::AssocList(f), Value::Array(items)) => {
            let keys = keys_of(f);
            let mut seen = BTreeSet::new();
            for (i, item) in items.iter().enumerate() {
                for k in &keys {
                    if item.get(*k).is_none_or(Value::is_null) && *k != "protocol" {
                        return Err(ApplyError::Schema(format!(
                            "{}: element {i}: associative list with keys has an element that omits key field {k:?} (and doesn't have default value)",
                            print_path(path)
                        )));
                    }
                }
                let pe = list_item_key(item, &keys);
                if !seen.insert(pe.clone()) {
                    return Err(ApplyError::Schema(format!(
                        "{}: duplicate entries for key {}",
                        print_path(path),
                        print_element(&pe)
                    )));
                }
                path.push(pe);
                field_set(item, item_shape(shape), path, out)?;
                out.insert(path.clone());
                path.pop();
            }
            Ok(())
        }
        (Shape::SetList, Value::Array(items)) => {
            let mut seen = BTreeSet::new();
            for item in items {
                let pe = format!("v:{item}");
                if !seen.insert(pe.clone()) {
                    return Err(ApplyError::Schema(format!(
                        "{}: duplicate entries for key {}",
                        print_path(path),
                        print_element(&pe)
                    )));
                }
                path.push(pe);
                out.insert(path.clone());
                path.pop();
            }
            Ok(())
        }
        (Shape::AssocList(_) | Shape::SetList, Value::Null) => Ok(()),
        _ => {
            if !path.is_empty() {
                out.insert(path.clone());
            }
            Ok(())
        }
    }
}

/// `EnsureNamedFieldsAreMembers`: every struct field on the way to a member is a member too.
fn ensure_named(set: &Set, root: Shape) -> Set {
    let mut out = set.clone();
    for p in set {
        let mut shape = root;
        for i in 0..p.len() {
            let seg = &p[i];
            let (next, named) = match seg.strip_prefix("f:") {
                Some(k) => match child_of_object(shape, k) {
                    Some(c) => c,
                    None => break,
                },
                None => (item_shape(shape), false),
            };
            if named && i + 1 < p.len() {
                out.insert(p[..=i].to_vec());
            }
            shape = next;
        }
    }
    out
}

fn has_prefix(set: &Set, p: &Path) -> bool {
    set.range(p.clone()..)
        .next()
        .is_some_and(|q| q.starts_with(p))
}

/// `RemoveItems`: drops every node whose path is in `set` (with everything beneath it).
fn remove_items(v: &mut Value, shape: Shape, path: &mut Path, set: &Set) {
    match (shape, v) {
        (Shape::Struct(_) | Shape::Map(_), Value::Object(m)) => {
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                path.push(format!("f:{k}"));
                if set.contains(path) {
                    m.remove(&k);
                } else if has_prefix(set, path)
                    && let (Some((child, _)), Some(x)) = (child_of_object(shape, &k), m.get_mut(&k))
                {
                    remove_items(x, child, path, set);
                }
                path.pop();
            }
        }
        (Shape::AssocList(_) | Shape::SetList, Value::Array(items)) => {
            let mut kept = Vec::with_capacity(items.len());
            for mut item in items.drain(..) {
                let Some(pe) = item_element(shape, &item) else {
                    kept.push(item);
                    continue;
                };
                path.push(pe);
                if !set.contains(path) {
                    if has_prefix(set, path) {
                        remove_items(&mut item, item_shape(shape), path, set);
                    }
                    kept.push(item);
                }
                path.pop();
            }
            *items = kept;
        }
        _ => {}
    }
}

fn fields_of(v: &Value, root: Shape) -> Set {
    let mut out = Set::new();
    // The live object and merge results were checked already; errors cannot happen on them
    // except for objects stored before their schema changed, which then simply own less.
    let _ = field_set(v, root, &mut Vec::new(), &mut out);
    ensure_named(&out, root)
}

// ------------------------------------------------------------------------------ merge

/// Structured-merge-diff's `Merge(live, config)`: `rhs` wins.
fn merge(lhs: Option<&Value>, rhs: &Value, shape: Shape) -> Value {
    match (shape, lhs, rhs) {
        (Shape::Struct(_) | Shape::Map(_), Some(Value::Object(l)), Value::Object(r)) => {
            let mut out = l.clone();
            for (k, rv) in r {
                if rv.is_null() {
                    out.remove(k);
                    continue;
                }
                let child = child_of_object(shape, k).map_or(Shape::Atomic, |c| c.0);
                let merged = merge(l.get(k), rv, child);
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Shape::AssocList(_) | Shape::SetList, Some(Value::Array(l)), Value::Array(r)) => {
            merge_list(l, r, shape)
        }
        _ => rhs.clone(),
    }
}

/// The list merge of structured-merge-diff's merging walker: items of both sides in an order
/// that keeps the right side's relative order, with left-only items where they stood.
fn merge_list(lhs: &[Value], rhs: &[Value], shape: Shape) -> Value {
    let pe = |v: &Value| item_element(shape, v).unwrap_or_default();
    let lpes: Vec<String> = lhs.iter().map(pe).collect();
    let rpes: Vec<String> = rhs.iter().map(pe).collect();
    let lset: BTreeMap<&str, usize> = lpes
        .iter()
        .enumerate()
        .map(|(i, p)| (p.as_str(), i))
        .collect();
    let rset: BTreeMap<&str, usize> = rpes
        .iter()
        .enumerate()
        .map(|(i, p)| (p.as_str(), i))
        .collect();
    let mut shared: std::collections::VecDeque<&str> = rpes
        .iter()
        .filter(|p| lset.contains_key(p.as_str()))
        .map(String::as_str)
        .collect();
    let mut next_shared = shared.pop_front();
    let mut merged_rhs: BTreeSet<&str> = BTreeSet::new();
    let item = item_shape(shape);
    let merge_item = |p: &str| -> Value {
        let l = lset.get(p).map(|i| &lhs[*i]);
        match rset.get(p) {
            Some(ri) => merge(l, &rhs[*ri], item),
            None => l.cloned().unwrap_or(Value::Null),
        }
    };
    let mut out = Vec::with_capacity(lhs.len().max(rhs.len()));
    let (mut li, mut ri) = (0, 0);
    while li < lpes.len() || ri < rpes.len() {
        if li < lpes.len() && ri < rpes.len() {
            let p = lpes[li].as_str();
            if p == rpes[ri] {
                merged_rhs.insert(p);
                out.push(merge_item(p));
                li += 1;
                ri += 1;
                next_shared = shared.pop_front();
                continue;
            }
            if rset.contains_key(p) && next_shared.is_some_and(|n| n != p) {
                li += 1;
                continue;
            }
        }
        if li < lpes.len() {
            let p = lpes[li].as_str();
            if !rset.contains_key(p) {
                out.push(lhs[li].clone());
                li += 1;
                continue;
            }
            if merged_rhs.contains(p) {
                li += 1;
                continue;
            }
        }
        if ri < rpes.len() {
            let p = rpes[ri].as_str();
            merged_rhs.insert(p);
            out.push(merge_item(p));
            ri += 1;
            if next_shared == Some(p) {
                next_shared = shared.pop_front();
            }
        }
    }
    Value::Array(out)
}

// ------------------------------------------------------------------------------ prune

/// Removes what the manager applied last time (`last`) and applies no more, unless some
/// manager (`managed`, which holds the applier's new set) still owns it.
fn prune(merged: &Value, root: Shape, last: &Set, managed: &Set) -> Value {
    if last.is_empty() {
        return merged.clone();
    }
    let last = ensure_named(last, root);
    let managed = ensure_named(managed, root);
    let all = fields_of(merged, root);
    let mut without_last = merged.clone();
    remove_items(&mut without_last, root, &mut Vec::new(), &last);
    let kept: Set = fields_of(&without_last, root)
        .union(&managed)
        .cloned()
        .collect();
    let doomed: Set = all.difference(&kept).cloned().collect();
    let mut pruned = merged.clone();
    remove_items(&mut pruned, root, &mut Vec::new(), &doomed);
    let survived = fields_of(&pruned, root);
    let removed: Set = all
        .difference(&survived)
        .filter(|p| last.contains(*p))
        .cloned()
        .collect();
    let mut out = merged.clone();
    remove_items(&mut out, root, &mut Vec::new(), &removed);
    out
}

// ------------------------------------------------------------------------------ managers

/// One `managedFields` entry.
#[derive(Clone, Debug)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    subresource: String,
    time: Option<Value>,
    set: Set,
}

impl Entry {
    fn parse(v: &Value) -> Entry {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        Entry {
            manager: s("manager"),
            operation: s("operation"),
            api_version: s("apiVersion"),
            subresource: s("subresource"),
            time: v.get("time").cloned(),
            set: v.get("fieldsV1").map(from_fields_v1).unwrap_or_default(),
        }
    }

    fn to_value(&self) -> Value {
        let mut e = Map::new();
        if !self.manager.is_empty() {
            e.insert("manager".into(), json!(self.manager));
        }
        e.insert("operation".into(), json!(self.operation));
        e.insert("apiVersion".into(), json!(self.api_version));
        if let Some(t) = &self.time {
            e.insert("time".into(), t.clone());
        }
        e.insert("fieldsType".into(), json!("FieldsV1"));
        e.insert("fieldsV1".into(), to_fields_v1(&self.set));
        if !self.subresource.is_empty() {
            e.insert("subresource".into(), json!(self.subresource));
        }
        Value::Object(e)
    }

    /// Upstream's `printManager` of the manager's identifier (which never holds the time).
    fn printed(&self) -> String {
        let mut s = go_quote(&self.manager);
        if !self.subresource.is_empty() {
            s = format!("{s} with subresource {}", go_quote(&self.subresource));
        }
        if self.operation == "Update" {
            s = format!("{s} using {}", self.api_version);
        }
        s
    }
}

fn go_quote(s: &str) -> String {
    crate::error::go_quote(s)
}

/// Upstream's `sortEncodedManagedFields`: by operation, time, manager, apiVersion,
/// subresource.
pub(crate) fn sort_entries(entries: &mut [Value]) {
    let key = |e: &Value| {
        let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let secs = e
            .get("time")
            .and_then(Value::as_str)
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .map_or(0, |t| t.as_second());
        (
            s("operation"),
            secs,
            s("manager"),
            s("apiVersion"),
            s("subresource"),
        )
    };
    entries.sort_by_key(key);
}

/// The fields the server owns, which never enter a manager's stored set.
fn strip_server_fields(set: &Set) -> Set {
    set.iter()
        .filter(|p| match p.first().map(String::as_str) {
            Some("f:apiVersion" | "f:kind") => false,
            Some("f:metadata") => !p.get(1).is_some_and(|s| {
                s.strip_prefix("f:")
                    .is_some_and(|k| IGNORED_METADATA.contains(&k))
            }),
            _ => true,
        })
        .cloned()
        .collect()
}

// ------------------------------------------------------------------------------ paths

/// Structured-merge-diff's `Path.String()`: `.spec.containers[name="web"].image`.
fn print_path(p: &[String]) -> String {
    p.iter().map(|s| print_element(s)).collect()
}

fn print_element(seg: &str) -> String {
    if let Some(k) = seg.strip_prefix("f:") {
        return format!(".{k}");
    }
    if let Some(k) = seg.strip_prefix("k:") {
        let parts: Vec<String> = serde_json::from_str::<Map<String, Value>>(k)
            .map(|m| {
                m.iter()
                    .map(|(n, v)| format!("{n}={}", value_string(v)))
                    .collect()
            })
            .unwrap_or_default();
        return format!("[{}]", parts.join(","));
    }
    if let Some(v) = seg.strip_prefix("v:") {
        let v: Value = serde_json::from_str(v).unwrap_or(Value::Null);
        return format!("[={}]", value_string(&v));
    }
    if let Some(i) = seg.strip_prefix("i:") {
        return format!("[{i}]");
    }
    seg.to_string()
}

/// structured-merge-diff's `value.ToString`.
fn value_string(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::String(s) => go_quote(s),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(value_string).collect::<Vec<_>>().join(",")
        ),
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, x)| format!("{k}={}", value_string(x)))
                .collect::<Vec<_>>()
                .join(",")
        ),
        other => other.to_string(),
    }
}

/// Iterates a set as structured-merge-diff's `Set.Iterate` does: at each level the members
/// first, then the children, each in order.
fn iterate_order(set: &Set) -> Vec<Path> {
    fn walk(set: &Set, prefix: &Path, out: &mut Vec<Path>) {
        let mut members = BTreeSet::new();
        let mut children = BTreeSet::new();
        for p in set.range(prefix.clone()..) {
            if !p.starts_with(prefix) {
                break;
            }
            if p.len() == prefix.len() + 1 {
                members.insert(p[prefix.len()].clone());
            }
            if p.len() > prefix.len() + 1 {
                children.insert(p[prefix.len()].clone());
            }
        }
        let order = |a: &String, b: &String| element_rank(a).cmp(&element_rank(b));
        let mut members: Vec<String> = members.into_iter().collect();
        members.sort_by(order);
        let mut children: Vec<String> = children.into_iter().collect();
        children.sort_by(order);
        for m in members {
            let mut p = prefix.clone();
            p.push(m);
            out.push(p);
        }
        for c in children {
            let mut p = prefix.clone();
            p.push(c);
            walk(set, &p, out);
        }
    }
    let mut out = Vec::new();
    walk(set, &Vec::new(), &mut out);
    out
}

/// PathElement ordering: field names, then keys, then values, then indices.
fn element_rank(seg: &str) -> (u8, &str) {
    let rank = match seg.get(..2) {
        Some("f:") => 0,
        Some("k:") => 1,
        Some("v:") => 2,
        _ => 3,
    };
    (rank, seg.get(2..).unwrap_or(""))
}

// ------------------------------------------------------------------------------ apply

/// The applied configuration's own fields, checked against the kind's schema. Errors read as
/// upstream's `failed to create typed patch object (apps/v1, Kind=Deployment) ns/name: ...`.
fn config_fields(config: &Value, root: Shape) -> Result<Set> {
    let mut set = Set::new();
    field_set(config, root, &mut Vec::new(), &mut set).map_err(|e| match e {
        ApplyError::Schema(msg) => {
            let av = config
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or("");
            let kind = config.get("kind").and_then(Value::as_str).unwrap_or("");
            let (g, v) = schema::split_api_version(av);
            let meta = |k: &str| {
                config
                    .pointer(&format!("/metadata/{k}"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            ApplyError::Schema(format!(
                "failed to create typed patch object ({}/{}; {g}/{v}, Kind={kind}): {msg}",
                meta("namespace"),
                meta("name")
            ))
        }
        other => other,
    })?;
    Ok(set)
}

/// The fields of a top-level set that a write through `subresource` may own.
fn scoped(set: &Set, subresource: &str) -> Set {
    set.iter()
        .filter(|p| {
            p.first()
                .and_then(|s| s.strip_prefix("f:"))
                .is_some_and(|k| k == "metadata" || in_scope(k, subresource))
                || p.first()
                    .is_some_and(|s| s == "f:apiVersion" || s == "f:kind")
        })
        .filter(|p| {
            // metadata is in scope for the main resource only.
            subresource.is_empty() || p.first().is_none_or(|s| s != "f:metadata")
        })
        .cloned()
        .collect()
}

/// Applies `config` to `live` (for a create: an object holding only apiVersion, kind and
/// metadata.name/namespace) and returns the object to store, with its managed fields. The
/// result still needs defaulting and validation.
pub fn apply(live: &Value, config: &Value, opts: &ApplyOptions<'_>) -> Result<Value> {
    if config.pointer("/metadata/managedFields").is_some() {
        return Err(ApplyError::BadRequest(
            "metadata.managedFields must be nil".into(),
        ));
    }
    let root = struct_shape(schema::kind_type_of(config).or_else(|| schema::kind_type_of(live)));
    let applied = config_fields(config, root)?;
    match apply_once(live, config, &applied, root, opts, opts.force) {
        Err(ApplyError::Conflicts(conflicts)) if opts.manager == KUBECTL_MANAGER => {
            // The client-side to server-side upgrade: fields kubectl's last-applied annotation
            // holds with the live value are kubectl's to take.
            let allowed = allowed_by_last_applied(live, root);
            let left: Vec<Conflict> = conflicts
                .iter()
                .filter(|c| !allowed.contains(&c.field))
                .cloned()
                .collect();
            if !left.is_empty() {
                return Err(ApplyError::Conflicts(left));
            }
            apply_once(live, config, &applied, root, opts, true)
        }
        other => other,
    }
}

fn apply_once(
    live: &Value,
    config: &Value,
    applied: &Set,
    root: Shape,
    opts: &ApplyOptions<'_>,
    force: bool,
) -> Result<Value> {
    let sub = opts.subresource;
    let entries: Vec<Entry> = live
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(Entry::parse).collect())
        .unwrap_or_default();
    let is_applier =
        |e: &Entry| e.manager == opts.manager && e.operation == "Apply" && e.subresource == sub;
    let last: Set = entries
        .iter()
        .find(|e| is_applier(e))
        .map(|e| e.set.clone())
        .unwrap_or_default();
    let new_set = scoped(applied, sub);

    let mut base = live.clone();
    if let Some(m) = base.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
    let merged = merge(Some(&base), config, root);
    let mut managed: Set = new_set.clone();
    for e in entries.iter().filter(|e| !is_applier(e)) {
        managed.extend(e.set.iter().cloned());
    }
    // Paths the server owns are members of every set (upstream's sets hold metadata.name).
    managed.insert(vec!["f:metadata".into(), "f:name".into()]);
    let mut result = prune(&merged, root, &last, &managed);

    let before = FieldValues::of(live, sub);
    let after = FieldValues::of(&result, sub);
    let changed = after.changed_since(&before);
    let removed = after.removed_since(&before);

    let mut conflicts = Vec::new();
    let mut others = Vec::new();
    for e in entries.iter().filter(|e| !is_applier(e)) {
        let clash: Set = e.set.intersection(&changed).cloned().collect();
        for p in iterate_order(&clash) {
            conflicts.push(Conflict {
                manager: e.printed(),
                field: print_path(&p),
            });
        }
        let mut e = e.clone();
        e.set.retain(|p| !clash.contains(p) && !removed.contains(p));
        if !e.set.is_empty() {
            others.push(e);
        }
    }
    if !force && !conflicts.is_empty() {
        return Err(ApplyError::Conflicts(conflicts));
    }

    let unchanged = {
        let mut a = result.clone();
        let mut b = base.clone();
        for o in [&mut a, &mut b] {
            if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("managedFields");
            }
        }
        a == b
    };
    let previous_time = entries
        .iter()
        .find(|e| is_applier(e))
        .and_then(|e| e.time.clone());
    let time = match previous_time {
        Some(t) if unchanged => t,
        _ => json!(opts.now),
    };
    let applier = Entry {
        manager: opts.manager.to_string(),
        operation: "Apply".into(),
        api_version: opts.api_version.to_string(),
        subresource: sub.to_string(),
        time: Some(time),
        set: strip_server_fields(&new_set),
    };
    let mut out: Vec<Value> = others.iter().map(Entry::to_value).collect();
    if !applier.set.is_empty() {
        out.push(applier.to_value());
    }
    sort_entries(&mut out);

    if opts.manager == KUBECTL_MANAGER
        && let Some(annotation) = last_applied_of(live)
    {
        let _ = annotation;
        let mut cfg = config.clone();
        if let Some(a) = cfg
            .pointer_mut("/metadata/annotations")
            .and_then(Value::as_object_mut)
        {
            a.remove(LAST_APPLIED);
        }
        let text = serde_json::to_string(&cfg).unwrap_or_default();
        let meta = meta_mut(&mut result);
        let ann = meta
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(a) = ann.as_object_mut() {
            a.insert(LAST_APPLIED.into(), Value::String(text));
        }
    }
    let meta = meta_mut(&mut result);
    if out.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert("managedFields".into(), Value::Array(out));
    }
    Ok(result)
}

fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    obj["metadata"]
        .as_object_mut()
        .expect("metadata was just made an object")
}

fn last_applied_of(live: &Value) -> Option<&str> {
    live.pointer("/metadata/annotations")
        .and_then(|a| a.get(LAST_APPLIED))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Fields of the last-applied annotation whose live value is still the annotated one, printed
/// as conflict paths.
fn allowed_by_last_applied(live: &Value, root: Shape) -> BTreeSet<String> {
    let Some(text) = last_applied_of(live) else {
        return BTreeSet::new();
    };
    let Ok(last) = serde_json::from_str::<Value>(text) else {
        return BTreeSet::new();
    };
    let mut set = Set::new();
    if field_set(&last, root, &mut Vec::new(), &mut set).is_err() {
        return BTreeSet::new();
    }
    let live_values = FieldValues::of(live, "");
    let last_values = FieldValues::of(&last, "");
    let modified = last_values.changed_since(&live_values);
    set.iter()
        .filter(|p| !modified.contains(*p))
        .map(|p| print_path(p))
        .collect()
}

#[cfg(test)]
mod tests;
