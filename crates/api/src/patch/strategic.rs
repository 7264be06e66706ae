//! Strategic merge patch (`application/strategic-merge-patch+json`), the patch kubectl sends
//! for `apply`, `edit`, `set image`, `cordon`, `taint` and `rollout`.
//!
//! It is a JSON merge patch whose list handling follows each field's `+patchStrategy` and
//! `+patchMergeKey` markers (from the schema table), plus directives: `$patch:
//! replace|delete|merge` on maps and list elements, `$setElementOrder/<list>`, `$retainKeys`
//! and `$deleteFromPrimitiveList/<list>`. The algorithm follows upstream's
//! `strategicpatch.StrategicMergeMapPatch` step by step, including how merged lists are
//! ordered; fields the schema does not know are merged as in a JSON merge patch.

use super::{PatchError, Result, go_fmt};
use crate::schema::{Cardinality, FieldSchema, Special, TypeSchema, Wire};
use serde_json::{Map, Value};

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";

// upstream mergepatch errors, word for word.
const BAD_RETAIN_KEYS: &str = "invalid patch format of retainKeys";
const BAD_PRIMITIVE_LIST: &str = "invalid patch format of primitive list";
const BAD_SET_ELEMENT_ORDER: &str = "invalid patch format of setElementOrder list";
const NO_LIST_OF_LISTS: &str = "lists of lists are not supported";

/// Applies a strategic merge patch to `original`, an object of type `ty`.
pub fn strategic_merge(original: &Value, patch: &Value, ty: &'static TypeSchema) -> Result<Value> {
    let original = match original {
        Value::Object(m) => m.clone(),
        Value::Null => Map::new(),
        _ => return Err(PatchError::BadRequest("invalid JSON document".into())),
    };
    let Value::Object(patch) = patch else {
        return Err(PatchError::BadRequest(format!(
            "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            go_kind_word(patch)
        )));
    };
    merge_map(original, patch.clone(), Ctx::Struct(ty)).map(Value::Object)
}

/// Where in the type tree a map sits.
#[derive(Clone, Copy)]
enum Ctx {
    Struct(&'static TypeSchema),
    /// The values of a Go map field (labels, resources.limits, ...).
    MapValues(&'static FieldSchema),
    /// Not in the schema: merged like a JSON merge patch.
    Untyped,
}

/// What upstream's `LookupPatchMetadata` returns for a key.
struct Meta {
    merge: bool,
    replace: bool,
    merge_key: &'static str,
    child: Ctx,
}

fn value_ctx(f: &'static FieldSchema) -> Ctx {
    match f.message_type() {
        Some(t) if f.wire() == Wire::Message && t.special() == Special::None => Ctx::Struct(t),
        _ => Ctx::Untyped,
    }
}

impl Ctx {
    fn lookup(self, key: &str) -> Meta {
        let untyped = Meta {
            merge: false,
            replace: false,
            merge_key: "",
            child: Ctx::Untyped,
        };
        match self {
            Ctx::Struct(ty) => match ty.field(key) {
                Some(f) => Meta {
                    merge: f.patch_strategy().merge(),
                    replace: f.patch_strategy().replace(),
                    merge_key: f.merge_key().unwrap_or(""),
                    child: if f.cardinality() == Cardinality::Map {
                        Ctx::MapValues(f)
                    } else {
                        value_ctx(f)
                    },
                },
                None => untyped,
            },
            Ctx::MapValues(f) => Meta {
                child: value_ctx(f),
                ..untyped
            },
            Ctx::Untyped => untyped,
        }
    }
}

fn internal(msg: String) -> PatchError {
    PatchError::Internal(msg)
}

/// Go's `reflect.TypeOf` name for a decoded JSON value.
fn go_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

fn go_kind_word(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `mergepatch.ErrBadArgType`.
fn bad_arg_type(expected: &str, actual: &Value) -> PatchError {
    internal(format!(
        "expected a {expected}, but received a {}",
        go_type_name(actual)
    ))
}

/// `mergepatch.ErrNoMergeKey`.
fn no_merge_key(m: &Map<String, Value>, key: &str) -> PatchError {
    internal(format!(
        "map: {} does not contain declared merge key: {key}",
        go_fmt(&Value::Object(m.clone()))
    ))
}

/// `mergepatch.ErrBadPatchType`.
fn bad_patch_type(t: &Value, m: &Map<String, Value>) -> PatchError {
    internal(format!(
        "unknown patch type: {} in map: {}",
        go_fmt(t),
        go_fmt(&Value::Object(m.clone()))
    ))
}

/// Go's `==` on two decoded JSON values (numbers are all float64 there).
fn go_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Object(_), _) | (Value::Array(_), _) => false,
        _ => a == b,
    }
}

/// Upstream's `extractKey`: `$setElementOrder/containers` -> `containers`.
fn extract_key(key: &str, prefix: &str) -> Result<String> {
    match key.split_once('/') {
        Some((head, rest)) if head == prefix => Ok(rest.to_string()),
        _ => Err(PatchError::BadRequest(
            if prefix == SET_ELEMENT_ORDER {
                BAD_SET_ELEMENT_ORDER
            } else {
                BAD_PRIMITIVE_LIST
            }
            .into(),
        )),
    }
}

fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    ctx: Ctx,
) -> Result<Map<String, Value>> {
    if let Some(directive) = patch.get(DIRECTIVE) {
        return match directive.as_str() {
            Some("replace") => {
                patch.remove(DIRECTIVE);
                Ok(patch)
            }
            Some("delete") => Ok(Map::new()),
            _ => Err(bad_patch_type(directive, &patch)),
        };
    }
    apply_retain_keys(&mut original, &mut patch)?;
    merge_set_element_order(&mut original, &mut patch, ctx)?;

    for (key, patch_value) in patch {
        let (key, is_delete_list) = if key.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
            (extract_key(&key, DELETE_FROM_PRIMITIVE_LIST)?, true)
        } else if key.starts_with(SET_ELEMENT_ORDER) {
            return Err(PatchError::BadRequest(BAD_SET_ELEMENT_ORDER.into()));
        } else {
            (key, false)
        };
        if patch_value.is_null() {
            original.remove(&key);
            continue;
        }
        let meta = ctx.lookup(&key);
        let Some(current) = original.remove(&key) else {
            if !is_delete_list {
                original.insert(key, fresh(patch_value, &meta)?);
            }
            continue;
        };
        let merged = match (current, patch_value) {
            (Value::Object(cur), Value::Object(p)) => {
                if meta.replace {
                    Value::Object(p)
                } else {
                    Value::Object(merge_map(cur, p, meta.child)?)
                }
            }
            (Value::Array(cur), Value::Array(p)) => {
                if meta.merge {
                    Value::Array(merge_slice(
                        cur,
                        p,
                        meta.child,
                        meta.merge_key,
                        is_delete_list,
                    )?)
                } else {
                    Value::Array(p)
                }
            }
            (cur, p) if std::mem::discriminant(&cur) != std::mem::discriminant(&p) => {
                fresh(p, &meta)?
            }
            (_, p) => p,
        };
        original.insert(key, merged);
    }
    Ok(original)
}

/// A patch value for a key the original lacks: merged into an empty value so directives and
/// nulls inside it are resolved rather than stored.
fn fresh(patch_value: Value, meta: &Meta) -> Result<Value> {
    Ok(match patch_value {
        Value::Object(p) if !meta.replace => Value::Object(merge_map(Map::new(), p, meta.child)?),
        Value::Array(p) if meta.merge => Value::Array(merge_slice(
            Vec::new(),
            p,
            meta.child,
            meta.merge_key,
            false,
        )?),
        other => other,
    })
}

/// `$retainKeys`: clear the original's keys missing from the list, after checking that
/// the patch sets nothing outside it.
fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<()> {
    let Some(list) = patch.remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(list) = list else {
        return Err(PatchError::BadRequest(BAD_RETAIN_KEYS.into()));
    };
    let retained = |k: &str| list.iter().any(|v| v.as_str() == Some(k));
    for (k, v) in patch.iter() {
        if v.is_null()
            || k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            || k.starts_with(SET_ELEMENT_ORDER)
        {
            continue;
        }
        if !retained(k) {
            return Err(PatchError::BadRequest(BAD_RETAIN_KEYS.into()));
        }
    }
    original.retain(|k, _| retained(k));
    Ok(())
}

/// `$setElementOrder/<list>`: merge the list (if the patch has it) and order the result as
/// the directive says, server-only items interleaved where they were.
fn merge_set_element_order(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    ctx: Ctx,
) -> Result<()> {
    let keys: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
        .cloned()
        .collect();
    for key in keys {
        let Some(order) = patch.remove(&key) else {
            continue;
        };
        let Value::Array(order) = order else {
            return Err(bad_arg_type("[]interface {}", &order));
        };
        let list_key = extract_key(&key, SET_ELEMENT_ORDER)?;
        let original_list = match original.get(&list_key) {
            Some(Value::Array(a)) => Some(a.clone()),
            Some(other) => return Err(bad_arg_type("[]interface {}", other)),
            None => None,
        };
        let patch_list = match patch.get(&list_key) {
            Some(Value::Array(a)) => Some(a.clone()),
            Some(other) => return Err(bad_arg_type("[]interface {}", other)),
            None => None,
        };
        let meta = ctx.lookup(&list_key);
        validate_order(patch_list.as_deref().unwrap_or(&[]), &order, meta.merge_key)?;
        let merged = match (&original_list, &patch_list) {
            (Some(o), None) => o.clone(),
            (None, Some(p)) if meta.merge => {
                merge_slice(Vec::new(), p.clone(), meta.child, meta.merge_key, false)?
            }
            (None, Some(p)) => p.clone(),
            (Some(o), Some(p)) if meta.merge => {
                merge_slice(o.clone(), p.clone(), meta.child, meta.merge_key, false)?
            }
            (Some(_), Some(p)) => p.clone(),
            (None, None) => continue,
        };
        let is_map = element_is_map(&[
            original_list.as_deref().unwrap_or(&[]),
            patch_list.as_deref().unwrap_or(&[]),
        ])?;
        let (patch_items, server_only) = partition(merged, &order, meta.merge_key, is_map)?;
        let both = normalize_element_order(
            patch_items,
            server_only,
            &order,
            original_list.as_deref().unwrap_or(&[]),
            meta.merge_key,
            is_map,
        )?;
        original.insert(list_key.clone(), Value::Array(both));
        patch.remove(&list_key);
    }
    Ok(())
}

/// Upstream's `validatePatchWithSetOrderList`: the patch list's items must appear in the
/// `$setElementOrder` list, in the same relative order.
fn validate_order(patch_list: &[Value], order: &[Value], merge_key: &str) -> Result<()> {
    if order.is_empty() || patch_list.is_empty() {
        return Ok(());
    }
    let non_delete: Vec<&Value> = if merge_key.is_empty() {
        patch_list.iter().collect()
    } else {
        let mut keep = Vec::new();
        for item in patch_list {
            let Value::Object(m) = item else {
                return Err(bad_arg_type("map[string]interface {}", item));
            };
            if m.get(DIRECTIVE).and_then(Value::as_str) != Some("delete") {
                keep.push(item);
            }
        }
        keep
    };
    let (mut pi, mut si) = (0, 0);
    while pi < non_delete.len() && si < order.len() {
        if non_delete[pi]
            .as_object()
            .is_some_and(|m| m.contains_key(DIRECTIVE))
        {
            pi += 1;
            continue;
        }
        if merge_key_equal(non_delete[pi], &order[si], merge_key)? {
            pi += 1;
        }
        si += 1;
    }
    if pi < non_delete.len() && si >= order.len() {
        return Err(internal(format!(
            "The order in patch list:\n{}\n doesn't match {SET_ELEMENT_ORDER} list:\n{}\n",
            go_fmt(&Value::Array(patch_list.to_vec())),
            go_fmt(&Value::Array(order.to_vec()))
        )));
    }
    Ok(())
}

fn merge_key_equal(left: &Value, right: &Value, merge_key: &str) -> Result<bool> {
    if merge_key.is_empty() {
        return Ok(go_eq(left, right));
    }
    let l = left
        .as_object()
        .ok_or_else(|| bad_arg_type("map[string]interface {}", left))?;
    let r = right
        .as_object()
        .ok_or_else(|| bad_arg_type("map[string]interface {}", right))?;
    let lv = l.get(merge_key).ok_or_else(|| no_merge_key(l, merge_key))?;
    let rv = r.get(merge_key).ok_or_else(|| no_merge_key(r, merge_key))?;
    Ok(go_eq(lv, rv))
}

/// Upstream's `sliceElementType`: whether the lists hold maps, refusing lists of lists and
/// mixed element types.
fn element_is_map(lists: &[&[Value]]) -> Result<bool> {
    let mut first: Option<&Value> = None;
    for v in lists.iter().flat_map(|l| l.iter()) {
        match first {
            None => {
                if v.is_array() {
                    return Err(PatchError::Unprocessable(NO_LIST_OF_LISTS.into()));
                }
                first = Some(v);
            }
            Some(f) if std::mem::discriminant(f) != std::mem::discriminant(v) => {
                let all: Vec<Value> = lists.iter().map(|l| Value::Array(l.to_vec())).collect();
                return Err(internal(format!(
                    "list element types are not identical: {}",
                    go_fmt(&Value::Array(all))
                )));
            }
            Some(_) => {}
        }
    }
    match first {
        Some(v) => Ok(v.is_object()),
        None => Err(internal("no elements in any of the given slices".into())),
    }
}

fn merge_slice(
    original: Vec<Value>,
    patch: Vec<Value>,
    elem: Ctx,
    merge_key: &str,
    is_delete_list: bool,
) -> Result<Vec<Value>> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    let is_map = element_is_map(&[&original, &patch])?;
    let (original, patch, merged) = if !is_map {
        if is_delete_list {
            return Ok(original
                .into_iter()
                .filter(|v| !patch.iter().any(|d| go_eq(v, d)))
                .collect());
        }
        let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
        for v in original.iter().chain(patch.iter()) {
            if !merged.iter().any(|m| go_eq(m, v)) {
                merged.push(v.clone());
            }
        }
        (original, patch, merged)
    } else {
        if merge_key.is_empty() {
            return Err(internal(
                "cannot merge lists without merge key for type struct".into(),
            ));
        }
        let (original, patch) = merge_special_elements(original, patch, merge_key)?;
        let merged = merge_elements(original.clone(), &patch, merge_key, elem)?;
        (original, patch, merged)
    };
    let (patch_items, server_only) = partition(merged, &patch, merge_key, is_map)?;
    normalize_element_order(
        patch_items,
        server_only,
        &patch,
        &original,
        merge_key,
        is_map,
    )
}

/// List elements carrying `$patch`: `delete` removes the matching entries, `replace` makes
/// the rest of the patch list the whole list.
fn merge_special_elements(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut plain = Vec::new();
    let mut replace = false;
    for v in patch {
        let Value::Object(m) = &v else {
            return Err(bad_arg_type("map[string]interface {}", &v));
        };
        match m.get(DIRECTIVE) {
            None => plain.push(v),
            Some(d) => match d.as_str() {
                Some("delete") => {
                    let key_value = m.get(merge_key).ok_or_else(|| no_merge_key(m, merge_key))?;
                    let mut kept = Vec::with_capacity(original.len());
                    for o in original {
                        let Value::Object(om) = &o else {
                            return Err(internal(format!(
                                "value for key {} is not a map.",
                                kept.len()
                            )));
                        };
                        if !om.get(merge_key).is_some_and(|ov| go_eq(ov, key_value)) {
                            kept.push(o);
                        }
                    }
                    original = kept;
                }
                Some("replace") => replace = true,
                Some("merge") => {
                    return Err(internal(
                        "merging lists cannot yet be specified in the patch".into(),
                    ));
                }
                _ => return Err(bad_patch_type(d, m)),
            },
        }
    }
    if replace {
        Ok((plain, Vec::new()))
    } else {
        Ok((original, plain))
    }
}

/// Merges each patch element into the original element with the same merge key, or
/// appends it.
fn merge_elements(
    mut original: Vec<Value>,
    patch: &[Value],
    merge_key: &str,
    elem: Ctx,
) -> Result<Vec<Value>> {
    for v in patch {
        let Value::Object(pm) = v else {
            return Err(bad_arg_type("map[string]interface {}", v));
        };
        let key_value = pm
            .get(merge_key)
            .ok_or_else(|| no_merge_key(pm, merge_key))?;
        match find_by_key(&original, merge_key, key_value)? {
            Some(i) => {
                let Value::Object(om) = std::mem::take(&mut original[i]) else {
                    continue;
                };
                original[i] = Value::Object(merge_map(om, pm.clone(), elem)?);
            }
            None => original.push(v.clone()),
        }
    }
    Ok(original)
}

fn find_by_key(list: &[Value], merge_key: &str, key_value: &Value) -> Result<Option<usize>> {
    for (i, v) in list.iter().enumerate() {
        let Value::Object(m) = v else {
            return Err(internal(format!("value for key {i} is not a map.")));
        };
        if m.get(merge_key).is_some_and(|x| go_eq(x, key_value)) {
            return Ok(Some(i));
        }
    }
    Ok(None)
}

/// Splits `merged` into the items present in `by` and the server-only rest.
fn partition(
    merged: Vec<Value>,
    by: &[Value],
    merge_key: &str,
    is_map: bool,
) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut in_patch = Vec::new();
    let mut server_only = Vec::new();
    for v in merged {
        let present = if is_map && !merge_key.is_empty() {
            let Value::Object(m) = &v else {
                return Err(bad_arg_type("map[string]interface {}", &v));
            };
            let key_value = m.get(merge_key).ok_or_else(|| no_merge_key(m, merge_key))?;
            find_by_key(by, merge_key, key_value)?.is_some()
        } else {
            by.iter().any(|b| go_eq(b, &v))
        };
        if present {
            in_patch.push(v)
        } else {
            server_only.push(v)
        }
    }
    Ok((in_patch, server_only))
}

/// Upstream's `index`: the position of `item` in `list`, by merge key for maps.
fn index_of(list: &[Value], item: &Value, merge_key: &str, is_map: bool) -> Option<usize> {
    let key = |v: &Value| -> Value {
        if is_map {
            v.as_object()
                .and_then(|m| m.get(merge_key))
                .cloned()
                .unwrap_or(Value::Null)
        } else {
            v.clone()
        }
    };
    let wanted = key(item);
    list.iter().position(|v| {
        let k = key(v);
        if wanted.is_null() && k.is_null() {
            true
        } else {
            go_eq(&k, &wanted)
        }
    })
}

/// Sorts `items` by their position in `order`, `$patch: delete` items last.
fn normalize_slice_order(
    items: Vec<Value>,
    order: &[Value],
    merge_key: &str,
    is_map: bool,
) -> Result<Vec<Value>> {
    let (mut keep, mut deletes) = (Vec::new(), Vec::new());
    if is_map {
        for v in order.iter().chain(items.iter()) {
            let Value::Object(m) = v else {
                return Err(bad_arg_type("map[string]interface {}", v));
            };
            if !m.contains_key(merge_key) {
                return Err(no_merge_key(m, merge_key));
            }
        }
        for v in items {
            if v.get(DIRECTIVE).and_then(Value::as_str) == Some("delete") {
                deletes.push(v)
            } else {
                keep.push(v)
            }
        }
    } else {
        keep = items;
    }
    keep.sort_by_key(|v| index_of(order, v, merge_key, is_map).unwrap_or(usize::MAX));
    keep.extend(deletes);
    Ok(keep)
}

/// Orders the patch items by the patch, the server-only items by the live list, and then
/// interleaves them: a server-only item goes before a patch item when the live list had it
/// first (upstream's `normalizeElementOrder` and `mergeSortedSlice`).
fn normalize_element_order(
    patch_items: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: &str,
    is_map: bool,
) -> Result<Vec<Value>> {
    let right = normalize_slice_order(patch_items, patch_order, merge_key, is_map)?;
    let left = normalize_slice_order(server_only, server_order, merge_key, is_map)?;
    let mut out = Vec::with_capacity(left.len() + right.len());
    let (mut left, mut right) = (left.into_iter().peekable(), right.into_iter().peekable());
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => {
                match (
                    index_of(server_order, l, merge_key, is_map),
                    index_of(server_order, r, merge_key, is_map),
                ) {
                    (Some(li), Some(ri)) => li < ri,
                    _ => false,
                }
            }
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::kind_type;
    use serde_json::json;

    fn smp(kind: (&str, &str, &str), original: Value, patch: Value) -> Result<Value> {
        strategic_merge(
            &original,
            &patch,
            kind_type(kind.0, kind.1, kind.2).unwrap(),
        )
    }

    const POD: (&str, &str, &str) = ("", "v1", "Pod");
    const NODE: (&str, &str, &str) = ("", "v1", "Node");
    const DEPLOYMENT: (&str, &str, &str) = ("apps", "v1", "Deployment");

    fn pod_with(containers: Value) -> Value {
        json!({"spec": {"containers": containers}})
    }

    type Kind = (&'static str, &'static str, &'static str);
    type Case = (&'static str, Kind, Value, Value, Value);

    /// (description, kind, original, patch, expected result). Descriptions follow the
    /// upstream strategicpatch test cases they mirror.
    fn cases() -> Vec<Case> {
        vec![
            (
                "merge lists of maps by merge key, keeping server-only entries in place",
                POD,
                pod_with(json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}])),
                pod_with(json!([{"name": "b", "image": "b:2"}])),
                pod_with(json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:2"}])),
            ),
            (
                "add a new item to a merging list",
                POD,
                pod_with(json!([{"name": "a", "image": "a:1"}, {"name": "c", "image": "c:1"}])),
                pod_with(json!([{"name": "b", "image": "b:1"}])),
                pod_with(
                    json!([{"name": "b", "image": "b:1"}, {"name": "a", "image": "a:1"}, {"name": "c", "image": "c:1"}]),
                ),
            ),
            (
                "delete an item from a merging list with $patch: delete",
                POD,
                pod_with(json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}])),
                pod_with(json!([{"name": "a", "$patch": "delete"}])),
                pod_with(json!([{"name": "b", "image": "b:1"}])),
            ),
            (
                "replace a merging list with $patch: replace",
                POD,
                pod_with(json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}])),
                pod_with(json!([{"name": "c", "image": "c:1"}, {"$patch": "replace"}])),
                pod_with(json!([{"name": "c", "image": "c:1"}])),
            ),
            (
                "kubectl set image sends $setElementOrder/containers and keeps the order",
                POD,
                pod_with(json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}])),
                json!({"spec": {"$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
                                "containers": [{"name": "b", "image": "b:2"}]}}),
                pod_with(json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:2"}])),
            ),
            (
                "setElementOrder reorders a list of maps",
                POD,
                pod_with(
                    json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}, {"name": "c", "image": "c:1"}]),
                ),
                json!({"spec": {"$setElementOrder/containers": [{"name": "c"}, {"name": "a"}, {"name": "b"}]}}),
                pod_with(
                    json!([{"name": "c", "image": "c:1"}, {"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]),
                ),
            ),
            (
                "setElementOrder with a deleted item and a new item",
                POD,
                pod_with(json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}])),
                json!({"spec": {"$setElementOrder/containers": [{"name": "n"}, {"name": "a"}],
                                "containers": [{"name": "n", "image": "n:1"}, {"name": "b", "$patch": "delete"}]}}),
                pod_with(json!([{"name": "n", "image": "n:1"}, {"name": "a", "image": "a:1"}])),
            ),
            (
                "env is merged by name",
                POD,
                pod_with(
                    json!([{"name": "c", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}]),
                ),
                pod_with(
                    json!([{"name": "c", "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}]}]),
                ),
                pod_with(
                    json!([{"name": "c", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}, {"name": "C", "value": "4"}]}]),
                ),
            ),
            (
                "ports are merged by containerPort",
                POD,
                pod_with(json!([{"name": "c", "ports": [{"containerPort": 80, "name": "http"}]}])),
                pod_with(
                    json!([{"name": "c", "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443}]}]),
                ),
                pod_with(
                    json!([{"name": "c", "ports": [{"containerPort": 80, "name": "http", "protocol": "TCP"}, {"containerPort": 443}]}]),
                ),
            ),
            (
                "volumes merge by name and $retainKeys drops the old volume source",
                POD,
                json!({"spec": {"volumes": [{"name": "v", "emptyDir": {}}, {"name": "w", "secret": {"secretName": "s"}}]}}),
                json!({"spec": {"volumes": [{"name": "v", "$retainKeys": ["configMap", "name"], "configMap": {"name": "cm"}}]}}),
                json!({"spec": {"volumes": [{"name": "v", "configMap": {"name": "cm"}}, {"name": "w", "secret": {"secretName": "s"}}]}}),
            ),
            (
                "retainKeys on a Deployment strategy switch to Recreate removes rollingUpdate",
                DEPLOYMENT,
                json!({"spec": {"replicas": 1, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}),
                json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
                json!({"spec": {"replicas": 1, "strategy": {"type": "Recreate"}}}),
            ),
            (
                "node taints have no patch strategy and are replaced wholesale",
                NODE,
                json!({"spec": {"taints": [{"key": "a", "effect": "NoSchedule"}, {"key": "b", "effect": "NoSchedule"}]}}),
                json!({"spec": {"taints": [{"key": "c", "effect": "NoExecute"}]}}),
                json!({"spec": {"taints": [{"key": "c", "effect": "NoExecute"}]}}),
            ),
            (
                "kubectl cordon sets unschedulable",
                NODE,
                json!({"metadata": {"name": "n"}, "spec": {"podCIDR": "10.0.0.0/24"}}),
                json!({"spec": {"unschedulable": true}}),
                json!({"metadata": {"name": "n"}, "spec": {"podCIDR": "10.0.0.0/24", "unschedulable": true}}),
            ),
            (
                "tolerations have no patch strategy and are replaced",
                POD,
                json!({"spec": {"tolerations": [{"key": "a", "operator": "Exists"}]}}),
                json!({"spec": {"tolerations": [{"key": "b", "operator": "Exists"}]}}),
                json!({"spec": {"tolerations": [{"key": "b", "operator": "Exists"}]}}),
            ),
            (
                "merge lists of scalars: finalizers are a union",
                POD,
                json!({"metadata": {"finalizers": ["a", "b"]}}),
                json!({"metadata": {"finalizers": ["b", "c"]}}),
                json!({"metadata": {"finalizers": ["a", "b", "c"]}}),
            ),
            (
                "delete from a list of scalars with $deleteFromPrimitiveList",
                POD,
                json!({"metadata": {"finalizers": ["a", "b", "c"]}}),
                json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}}),
                json!({"metadata": {"finalizers": ["a", "c"]}}),
            ),
            (
                "null deletes a field",
                POD,
                json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"nodeName": "n1"}}),
                json!({"metadata": {"labels": {"a": null}}, "spec": {"nodeName": null}}),
                json!({"metadata": {"labels": {"b": "2"}}, "spec": {}}),
            ),
            (
                "a map with $patch: replace replaces the whole map",
                POD,
                json!({"metadata": {"labels": {"a": "1", "b": "2"}}}),
                json!({"metadata": {"labels": {"$patch": "replace", "c": "3"}}}),
                json!({"metadata": {"labels": {"c": "3"}}}),
            ),
            (
                "a map with $patch: delete is emptied",
                POD,
                json!({"metadata": {"labels": {"a": "1"}}}),
                json!({"metadata": {"labels": {"$patch": "delete"}}}),
                json!({"metadata": {"labels": {}}}),
            ),
            (
                "kubectl rollout restart adds a template annotation",
                DEPLOYMENT,
                json!({"spec": {"template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c"}]}}}}),
                json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2024-01-01T00:00:00Z"}}}}}),
                json!({"spec": {"template": {"metadata": {"labels": {"app": "web"},
                    "annotations": {"kubectl.kubernetes.io/restartedAt": "2024-01-01T00:00:00Z"}},
                    "spec": {"containers": [{"name": "c"}]}}}}),
            ),
            (
                "fields unknown to the schema are merged like a JSON merge patch",
                POD,
                json!({"spec": {"mystery": {"a": [1, 2], "b": 1}}}),
                json!({"spec": {"mystery": {"a": [3], "b": null, "c": 2}}}),
                json!({"spec": {"mystery": {"a": [3], "c": 2}}}),
            ),
            (
                "a new merging list in the patch is taken without its directives",
                POD,
                json!({"spec": {}}),
                pod_with(json!([{"name": "a", "image": "a:1"}, {"name": "x", "$patch": "delete"}])),
                pod_with(json!([{"name": "a", "image": "a:1"}])),
            ),
        ]
    }

    #[test]
    fn strategic_merge_patch_cases_from_upstream() {
        for (description, kind, original, patch, want) in cases() {
            let got = smp(kind, original, patch).unwrap_or_else(|e| panic!("{description}: {e}"));
            assert_eq!(got, want, "{description}");
        }
    }

    #[test]
    fn malformed_directives_are_rejected_with_upstream_messages() {
        let cases = [
            (
                json!({"metadata": {"labels": {"$retainKeys": ["a"], "b": "1"}}}),
                PatchError::BadRequest(BAD_RETAIN_KEYS.into()),
            ),
            (
                json!({"metadata": {"labels": {"$patch": "frobnicate"}}}),
                PatchError::Internal(
                    "unknown patch type: frobnicate in map: map[$patch:frobnicate]".into(),
                ),
            ),
            (
                pod_with(json!([{"image": "x"}])),
                PatchError::Internal(
                    "map: map[image:x] does not contain declared merge key: name".into(),
                ),
            ),
            (
                pod_with(json!([{"name": "a", "$patch": "merge"}])),
                PatchError::Internal("merging lists cannot yet be specified in the patch".into()),
            ),
            (
                json!({"metadata": {"finalizers": [["a"]]}}),
                PatchError::Internal("list element types are not identical: [[x] [[a]]]".into()),
            ),
            (
                json!({"metadata": {"ownerReferences": [["a"]]}}),
                PatchError::Unprocessable(NO_LIST_OF_LISTS.into()),
            ),
            (
                json!({"spec": {"$setElementOrder": []}}),
                PatchError::BadRequest(BAD_SET_ELEMENT_ORDER.into()),
            ),
        ];
        let original = json!({"metadata": {"labels": {"a": "1"}, "finalizers": ["x"]},
                              "spec": {"containers": [{"name": "a", "image": "a"}]}});
        for (patch, want) in cases {
            assert_eq!(
                smp(POD, original.clone(), patch.clone()).unwrap_err(),
                want,
                "{patch}"
            );
        }
        assert_eq!(smp(POD, original, json!([1])).unwrap_err().code(), 400);
    }

    #[test]
    fn random_patches_never_panic() {
        let original = json!({"metadata": {"labels": {"a": "1"}, "finalizers": ["x"]},
            "spec": {"containers": [{"name": "a", "image": "a", "ports": [{"containerPort": 80}]}],
                     "volumes": [{"name": "v", "emptyDir": {}}]}});
        let atoms = [
            json!(null),
            json!("delete"),
            json!("replace"),
            json!(1),
            json!([]),
            json!({}),
            json!([{"name": "a"}]),
            json!([{"$patch": "delete"}]),
            json!(["a", 1]),
            json!([[1]]),
            json!({"$patch": "merge"}),
        ];
        let keys = [
            "metadata",
            "labels",
            "finalizers",
            "spec",
            "containers",
            "ports",
            "volumes",
            "name",
            "$patch",
            "$retainKeys",
            "$setElementOrder/containers",
            "$deleteFromPrimitiveList/finalizers",
            "containerPort",
        ];
        let mut seed: u64 = 42;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..2000 {
            fn build(
                depth: u32,
                next: &mut dyn FnMut() -> u64,
                atoms: &[Value],
                keys: &[&str],
            ) -> Value {
                if depth == 0 || next().is_multiple_of(3) {
                    return atoms[(next() as usize) % atoms.len()].clone();
                }
                if next().is_multiple_of(4) {
                    return Value::Array(
                        (0..next() % 3)
                            .map(|_| build(depth - 1, next, atoms, keys))
                            .collect(),
                    );
                }
                let mut m = Map::new();
                for _ in 0..(1 + next() % 3) {
                    m.insert(
                        keys[(next() as usize) % keys.len()].to_string(),
                        build(depth - 1, next, atoms, keys),
                    );
                }
                Value::Object(m)
            }
            let patch = build(4, &mut next, &atoms, &keys);
            let _ = smp(POD, original.clone(), patch);
        }
    }

    /// Patches recorded from kubectl 1.32 (tools/capture-kubectl-bodies.py) against the
    /// objects in testdata/kubectl/patch-targets.json.
    #[test]
    fn patches_recorded_from_real_kubectl_apply_as_upstream_does() {
        let targets: Value =
            serde_json::from_str(include_str!("../../testdata/kubectl/patch-targets.json"))
                .unwrap();
        let deployment = &targets["/apis/apps/v1/namespaces/default/deployments/web"];
        let node = &targets["/api/v1/nodes/n1"];
        let parse = |s: &str| -> Value { serde_json::from_str(s).unwrap() };

        let got = smp(
            DEPLOYMENT,
            deployment.clone(),
            parse(include_str!("../../testdata/kubectl/set-image.smp.json")),
        )
        .unwrap();
        assert_eq!(
            got["spec"]["template"]["spec"]["containers"],
            json!([{"name": "a", "image": "a:1", "imagePullPolicy": "IfNotPresent"},
                   {"name": "b", "image": "b:2", "imagePullPolicy": "IfNotPresent"}])
        );

        let got = smp(
            DEPLOYMENT,
            deployment.clone(),
            parse(include_str!(
                "../../testdata/kubectl/rollout-restart.smp.json"
            )),
        )
        .unwrap();
        assert_eq!(
            got["spec"]["template"]["metadata"],
            json!({"labels": {"app": "web"}, "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-23T12:10:57Z"}})
        );

        let got = smp(
            NODE,
            node.clone(),
            parse(include_str!("../../testdata/kubectl/cordon.smp.json")),
        )
        .unwrap();
        assert_eq!(got["spec"]["unschedulable"], json!(true));
        assert_eq!(got["spec"]["podCIDR"], json!("10.244.0.0/24"));

        let got = smp(
            NODE,
            node.clone(),
            parse(include_str!("../../testdata/kubectl/taint.smp.json")),
        )
        .unwrap();
        assert_eq!(
            got["spec"]["taints"],
            json!([{"effect": "NoExecute", "key": "new", "value": "y"}, {"effect": "NoSchedule", "key": "old", "value": "x"}])
        );

        // apply of a changed manifest: strategy switched to Recreate ($retainKeys drops
        // rollingUpdate), container b deleted, an env var added to a.
        let got = smp(
            DEPLOYMENT,
            deployment.clone(),
            parse(include_str!(
                "../../testdata/kubectl/apply-deployment.smp.json"
            )),
        )
        .unwrap();
        assert_eq!(got["spec"]["strategy"], json!({"type": "Recreate"}));
        assert_eq!(
            got["spec"]["template"]["spec"]["containers"],
            json!([{"name": "a", "image": "a:1", "imagePullPolicy": "IfNotPresent", "env": [{"name": "X", "value": "1"}]}])
        );
        assert_eq!(got["spec"]["replicas"], json!(1));
        let applied =
            got["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
                .as_str()
                .unwrap();
        assert!(applied.contains("Recreate"));
    }

    /// Upstream's test vocabulary (`mergingList` merged by name, `mergingIntList` merged as a
    /// set, `simpleMap`) mapped onto a Pod: containers (`value` is the image, `other` the
    /// workingDir), finalizers and labels. Scalars become strings.
    fn on_pod(abstract_doc: Value) -> Value {
        fn s(v: &Value) -> Value {
            match v {
                Value::String(_) => v.clone(),
                Value::Null => Value::Null,
                other => Value::String(other.to_string()),
            }
        }
        fn items(v: &Value) -> Value {
            let Value::Array(list) = v else {
                return v.clone();
            };
            Value::Array(
                list.iter()
                    .map(|item| match item {
                        Value::Object(m) => Value::Object(
                            m.iter()
                                .map(|(k, v)| match k.as_str() {
                                    "value" => ("image".to_string(), s(v)),
                                    "other" => ("workingDir".to_string(), s(v)),
                                    "$patch" => (k.clone(), v.clone()),
                                    _ => (k.clone(), s(v)),
                                })
                                .collect(),
                        ),
                        scalar => s(scalar),
                    })
                    .collect(),
            )
        }
        let (mut meta, mut spec) = (Map::new(), Map::new());
        for (k, v) in abstract_doc.as_object().unwrap() {
            let (target, key) = match k.as_str() {
                "mergingList" => (&mut spec, "containers".to_string()),
                "mergingIntList" => (&mut meta, "finalizers".to_string()),
                "simpleMap" => (&mut meta, "labels".to_string()),
                other if other.ends_with("/mergingList") => {
                    (&mut spec, other.replace("mergingList", "containers"))
                }
                other => (&mut meta, other.replace("mergingIntList", "finalizers")),
            };
            let value = match v {
                Value::Object(m) => {
                    Value::Object(m.iter().map(|(k, v)| (k.clone(), s(v))).collect())
                }
                other => items(other),
            };
            target.insert(key, value);
        }
        let mut out = Map::new();
        if !meta.is_empty() {
            out.insert("metadata".into(), Value::Object(meta));
        }
        if !spec.is_empty() {
            out.insert("spec".into(), Value::Object(spec));
        }
        Value::Object(out)
    }

    /// Cases from upstream's strategicpatch patch_test.go (custom and raw test cases),
    /// applied as upstream's testPatchApplication does: original + patch = expected.
    #[test]
    fn upstream_patch_application_cases() {
        let ok = |v: Value| Ok::<Value, &str>(v);
        let cases: Vec<(&str, Value, Value, std::result::Result<Value, &str>)> = vec![
            (
                "unique scalars when merging lists",
                json!({"mergingIntList": [1, 2]}),
                json!({"mergingIntList": [2, 3]}),
                ok(json!({"mergingIntList": [1, 2, 3]})),
            ),
            (
                "delete map from nested map",
                json!({"simpleMap": {"key1": 1, "key2": 1}}),
                json!({"simpleMap": {"$patch": "delete"}}),
                ok(json!({"simpleMap": {}})),
            ),
            (
                "delete all items from merging list",
                json!({"mergingList": [{"name": 1}, {"name": 2}]}),
                json!({"mergingList": [{"$patch": "replace"}]}),
                ok(json!({"mergingList": []})),
            ),
            (
                "merge empty merging lists",
                json!({"mergingList": []}),
                json!({"mergingList": []}),
                ok(json!({"mergingList": []})),
            ),
            (
                "delete all keys from map",
                json!({"simpleMap": {"name": 1, "value": 1}}),
                json!({"simpleMap": {"$patch": "replace"}}),
                ok(json!({"simpleMap": {}})),
            ),
            (
                "add key and delete all keys from map",
                json!({"simpleMap": {"name": 1, "value": 1}}),
                json!({"simpleMap": {"other": "a", "$patch": "replace"}}),
                ok(json!({"simpleMap": {"other": "a"}})),
            ),
            (
                "preserve the order from the patch in a merging list",
                json!({"mergingList": [{"name": 1}, {"name": 2, "value": "b"}, {"name": 3}]}),
                json!({"mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"}, {"name": 2, "other": "x"}]}),
                ok(
                    json!({"mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"},
                                          {"name": 2, "value": "b", "other": "x"}]}),
                ),
            ),
            (
                "preserve the order from the patch in a merging list 2",
                json!({"mergingList": [{"name": 1}, {"name": 2, "value": "b"}, {"name": 3}]}),
                json!({"mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"}]}),
                ok(
                    json!({"mergingList": [{"name": 2, "value": "b"}, {"name": 3, "value": "c"}, {"name": 1, "value": "a"}]}),
                ),
            ),
            (
                "preserve the order from the patch in a merging int list",
                json!({"mergingIntList": [1, 2, 3]}),
                json!({"mergingIntList": [3, 1, 2]}),
                ok(json!({"mergingIntList": [3, 1, 2]})),
            ),
            (
                "preserve the order from the patch in a merging int list (server-only item first)",
                json!({"mergingIntList": [1, 2, 3]}),
                json!({"mergingIntList": [3, 1]}),
                ok(json!({"mergingIntList": [2, 3, 1]})),
            ),
            (
                "$setElementOrder contains item that is not present in the list to be merged",
                json!({"mergingList": [{"name": 1}, {"name": 3}]}),
                json!({"$setElementOrder/mergingList": [{"name": 3}, {"name": 2}, {"name": 1}],
                       "mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]}),
                ok(json!({"mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]})),
            ),
            (
                "$setElementOrder contains item that is not present in the int list to be merged",
                json!({"mergingIntList": [1, 3]}),
                json!({"$setElementOrder/mergingIntList": [3, 2, 1]}),
                ok(json!({"mergingIntList": [3, 1]})),
            ),
            (
                "should check if order in $setElementOrder and patch list match",
                json!({"mergingList": [{"name": 1}, {"name": 3}, {"name": 2}]}),
                json!({"$setElementOrder/mergingList": [{"name": 1}, {"name": 2}, {"name": 3}],
                       "mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]}),
                Err("doesn't match"),
            ),
            (
                "should check if order in $setElementOrder and patch int list match",
                json!({"mergingIntList": [1, 3, 2]}),
                json!({"$setElementOrder/mergingIntList": [1, 2, 3], "mergingIntList": [3, 1]}),
                Err("doesn't match"),
            ),
            (
                "missing merge key should error out",
                json!({"mergingList": [{"name": 1, "value": "a"}]}),
                json!({"mergingList": [{"value": "b"}]}),
                Err("does not contain declared merge key"),
            ),
            (
                "delete items in lists of scalars",
                json!({"mergingIntList": [1, 2, 3, 4]}),
                json!({"$setElementOrder/mergingIntList": [1, 2], "$deleteFromPrimitiveList/mergingIntList": [3]}),
                ok(json!({"mergingIntList": [1, 2, 4]})),
            ),
            (
                "delete all duplicate items in lists of scalars",
                json!({"mergingIntList": [1, 2, 3, 3, 4]}),
                json!({"$setElementOrder/mergingIntList": [1, 2], "$deleteFromPrimitiveList/mergingIntList": [3]}),
                ok(json!({"mergingIntList": [1, 2, 4]})),
            ),
            (
                "add and delete items in lists of scalars",
                json!({"mergingIntList": [1, 2, 3, 4]}),
                json!({"$setElementOrder/mergingIntList": [1, 2, 4], "$deleteFromPrimitiveList/mergingIntList": [3],
                       "mergingIntList": [4]}),
                ok(json!({"mergingIntList": [1, 2, 4]})),
            ),
            (
                "merge lists of maps",
                json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}]}),
                json!({"$setElementOrder/mergingList": [{"name": 4}, {"name": 1}, {"name": 2}, {"name": 3}],
                       "mergingList": [{"name": 4, "value": 4}, {"name": 3, "value": 3}]}),
                ok(
                    json!({"mergingList": [{"name": 4, "value": 4}, {"name": 1, "other": "a"},
                                          {"name": 2, "value": 2, "other": "b"}, {"name": 3, "value": 3}]}),
                ),
            ),
            (
                "add field to map in merging list",
                json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}]}),
                json!({"$setElementOrder/mergingList": [{"name": 1}, {"name": 2}], "mergingList": [{"name": 1, "value": 1}]}),
                ok(
                    json!({"mergingList": [{"name": 1, "value": 1, "other": "a"}, {"name": 2, "value": 2, "other": "b"}]}),
                ),
            ),
            (
                "delete all maps from merging list",
                json!({"mergingList": [{"name": 1}, {"name": 2}]}),
                json!({"mergingList": [{"name": 1, "$patch": "delete"}, {"name": 2, "$patch": "delete"}]}),
                ok(json!({"mergingList": []})),
            ),
            (
                "delete field from nested map",
                json!({"simpleMap": {"key1": 1, "key2": 1, "other": "a"}}),
                json!({"simpleMap": {"key2": null}}),
                ok(json!({"simpleMap": {"key1": 1, "other": "a"}})),
            ),
        ];
        for (description, original, patch, want) in cases {
            let got = smp(POD, on_pod(original), on_pod(patch));
            match want {
                Ok(want) => assert_eq!(
                    got.unwrap_or_else(|e| panic!("{description}: {e}")),
                    on_pod(want),
                    "{description}"
                ),
                Err(fragment) => {
                    let err = got.expect_err(description).to_string();
                    assert!(err.contains(fragment), "{description}: {err}");
                }
            }
        }
    }
}
