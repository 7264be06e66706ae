//! RFC 6902 JSON patch (`application/json-patch+json`) with the semantics and messages of
//! evanphx/json-patch v4, the library kube-apiserver applies it with: add, remove, replace,
//! move, copy, test; `-` appends; negative array indices count from the end; `~0`/`~1`
//! escapes. A failing operation is a 422 whose message names the operation and path.

use super::{PatchError, Result, go_fmt};
use serde_json::{Map, Value};

/// kube-apiserver's limit on operations in one JSON patch.
pub const MAX_OPERATIONS: usize = 10_000;

const MISSING: &str = "missing value";
const INVALID_INDEX: &str = "invalid index referenced";

/// Applies the operations in `ops` (a JSON array) to `original`.
pub fn json_patch(original: &Value, ops: &Value) -> Result<Value> {
    let Value::Array(ops) = ops else {
        return Err(PatchError::BadRequest(format!(
            "json: cannot unmarshal {} into Go value of type jsonpatch.Patch",
            json_kind(ops)
        )));
    };
    let mut parsed = Vec::with_capacity(ops.len());
    for op in ops {
        match op {
            Value::Object(m) => parsed.push(m),
            other => {
                return Err(PatchError::BadRequest(format!(
                    "json: cannot unmarshal {} into Go value of type jsonpatch.Operation",
                    json_kind(other)
                )));
            }
        }
    }
    if parsed.len() > MAX_OPERATIONS {
        return Err(PatchError::TooLarge(format!(
            "The allowed maximum operations in a JSON patch is {MAX_OPERATIONS}, got {}",
            parsed.len()
        )));
    }
    let mut doc = original.clone();
    for op in parsed {
        apply_op(&mut doc, op).map_err(PatchError::Unprocessable)?;
    }
    Ok(doc)
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

type OpResult<T = ()> = std::result::Result<T, String>;

fn apply_op(doc: &mut Value, op: &Map<String, Value>) -> OpResult {
    let kind = op.get("op").and_then(Value::as_str).unwrap_or("unknown");
    let path = op.get("path").and_then(Value::as_str);
    let from = op.get("from").and_then(Value::as_str);
    let value = op.get("value").cloned().unwrap_or(Value::Null);
    let no_path = |name: &str| format!("{name} operation failed to decode path: {MISSING}");
    let no_path_field = |name: &str| {
        format!("{name} operation failed to decode path: operation missing path field: {MISSING}")
    };
    let no_from = |name: &str| {
        format!("{name} operation failed to decode from: operation, missing from field: {MISSING}")
    };
    match kind {
        "add" => {
            let path = path.ok_or_else(|| no_path("add"))?;
            let (con, key) = find(doc, path).ok_or_else(|| {
                format!("add operation does not apply: doc is missing path: \"{path}\": {MISSING}")
            })?;
            add(con, &key, value).map_err(|e| format!("error in add for path: '{path}': {e}"))
        }
        "remove" => {
            let path = path.ok_or_else(|| no_path("remove"))?;
            let (con, key) = find(doc, path).ok_or_else(|| {
                format!(
                    "remove operation does not apply: doc is missing path: \"{path}\": {MISSING}"
                )
            })?;
            remove(con, &key)
                .map(drop)
                .map_err(|e| format!("error in remove for path: '{path}': {e}"))
        }
        "replace" => {
            let path = path.ok_or_else(|| no_path_field("replace"))?;
            let (con, key) = find(doc, path).ok_or_else(|| {
                format!("replace operation does not apply: doc is missing path: {path}: {MISSING}")
            })?;
            let slot = get_mut(con, &key)
                .map_err(|_| {
                    format!(
                        "replace operation does not apply: doc is missing key: {path}: {MISSING}"
                    )
                })?
                .ok_or_else(|| {
                    format!(
                        "replace operation does not apply: doc is missing key: {path}: {MISSING}"
                    )
                })?;
            *slot = value;
            Ok(())
        }
        "move" => {
            let from = from.ok_or_else(|| no_from("move"))?;
            let (con, key) = find(doc, from).ok_or_else(|| {
                format!(
                    "move operation does not apply: doc is missing from path: {from}: {MISSING}"
                )
            })?;
            get_mut(con, &key).map_err(|e| format!("error in move for path: '{key}': {e}"))?;
            let moved =
                remove(con, &key).map_err(|e| format!("error in move for path: '{key}': {e}"))?;
            let path = path.ok_or_else(|| no_path_field("move"))?;
            let (con, key) = find(doc, path).ok_or_else(|| {
                format!("move operation does not apply: doc is missing destination path: {path}: {MISSING}")
            })?;
            add(con, &key, moved).map_err(|e| format!("error in move for path: '{path}': {e}"))
        }
        "copy" => {
            let from = from.ok_or_else(|| no_from("copy"))?;
            let (con, key) = find(doc, from).ok_or_else(|| {
                format!(
                    "copy operation does not apply: doc is missing from path: {from}: {MISSING}"
                )
            })?;
            let copied = get_mut(con, &key)
                .map_err(|e| format!("error in copy for from: '{from}': {e}"))?
                .map(|v| v.clone())
                .unwrap_or(Value::Null);
            let path = path.ok_or_else(|| no_path("copy"))?;
            let (con, key) = find(doc, path).ok_or_else(|| {
                format!("copy operation does not apply: doc is missing destination path: {path}: {MISSING}")
            })?;
            add(con, &key, copied).map_err(|e| format!("error while adding value during copy: {e}"))
        }
        "test" => {
            let path = path.ok_or_else(|| no_path_field("test"))?;
            let (con, key) = find(doc, path).ok_or_else(|| {
                format!("test operation does not apply: is missing path: {path}: {MISSING}")
            })?;
            let current =
                get_mut(con, &key).map_err(|e| format!("error in test for path: '{path}': {e}"))?;
            let equal = match current {
                None => value.is_null(),
                Some(v) => *v == value,
            };
            if equal {
                Ok(())
            } else {
                Err(format!("testing value {path} failed: test failed"))
            }
        }
        other => Err(format!("Unexpected kind: {other}")),
    }
}

/// RFC 6901 unescaping: `~1` is `/`, `~0` is `~`.
fn unescape(token: &str) -> String {
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.peek() {
                Some('1') => {
                    chars.next();
                    out.push('/');
                }
                Some('0') => {
                    chars.next();
                    out.push('~');
                }
                _ => out.push('~'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The container holding the last token of `path`, and that token (evanphx's `findObject`).
fn find<'a>(doc: &'a mut Value, path: &str) -> Option<(&'a mut Value, String)> {
    let split: Vec<&str> = path.split('/').collect();
    if split.len() < 2 {
        return None;
    }
    let key = unescape(split[split.len() - 1]);
    let mut cur = doc;
    for part in &split[1..split.len() - 1] {
        let part = unescape(part);
        cur = match cur {
            Value::Object(m) => m.get_mut(&part)?,
            Value::Array(a) => {
                let i = go_atoi(&part).ok()?;
                a.get_mut(usize::try_from(i).ok()?)?
            }
            _ => return None,
        };
        if !matches!(cur, Value::Object(_) | Value::Array(_)) {
            return None;
        }
    }
    Some((cur, key))
}

/// Go's `strconv.Atoi` with its error text.
fn go_atoi(s: &str) -> OpResult<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "strconv.Atoi: parsing {}: invalid syntax",
            crate::error::go_quote(s)
        ));
    }
    s.parse::<i64>().map_err(|_| {
        format!(
            "strconv.Atoi: parsing {}: value out of range",
            crate::error::go_quote(s)
        )
    })
}

fn invalid_index(i: i64) -> String {
    format!("Unable to access invalid index: {i}: {INVALID_INDEX}")
}

fn add(con: &mut Value, key: &str, value: Value) -> OpResult {
    match con {
        Value::Object(m) => {
            m.insert(key.to_string(), value);
            Ok(())
        }
        Value::Array(a) => {
            if key == "-" {
                a.push(value);
                return Ok(());
            }
            let mut i = go_atoi(key)
                .map_err(|e| format!("value was not a proper array index: '{key}': {e}"))?;
            let len = a.len() as i64 + 1;
            if i >= len || i < -len {
                return Err(invalid_index(i));
            }
            if i < 0 {
                i += len;
            }
            a.insert(i as usize, value);
            Ok(())
        }
        _ => Err(format!("unknown object type: {MISSING}")),
    }
}

fn remove(con: &mut Value, key: &str) -> OpResult<Value> {
    match con {
        Value::Object(m) => m
            .remove(key)
            .ok_or_else(|| format!("Unable to remove nonexistent key: {key}: {MISSING}")),
        Value::Array(a) => {
            let mut i = go_atoi(key)?;
            let len = a.len() as i64;
            if i >= len || i < -len {
                return Err(invalid_index(i));
            }
            if i < 0 {
                i += len;
            }
            Ok(a.remove(i as usize))
        }
        _ => Err(format!("unknown object type: {MISSING}")),
    }
}

/// The value at `key`: Ok(None) for a missing object key, Err for a bad array index.
fn get_mut<'a>(con: &'a mut Value, key: &str) -> OpResult<Option<&'a mut Value>> {
    match con {
        Value::Object(m) => Ok(m.get_mut(key)),
        Value::Array(a) => {
            let i = go_atoi(key)?;
            match usize::try_from(i).ok().filter(|i| *i < a.len()) {
                Some(i) => Ok(a.get_mut(i)),
                None => Err(invalid_index(i)),
            }
        }
        other => Err(format!("unknown object type {}", go_fmt(other))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(doc: Value, ops: Value) -> std::result::Result<Value, String> {
        json_patch(&doc, &ops).map_err(|e| e.to_string())
    }

    #[test]
    fn operations_apply_as_rfc_6902_describes() {
        let cases = [
            (
                json!({"foo": "bar"}),
                json!([{"op": "add", "path": "/baz", "value": "qux"}]),
                json!({"foo": "bar", "baz": "qux"}),
            ),
            (
                json!({"foo": ["bar", "baz"]}),
                json!([{"op": "add", "path": "/foo/1", "value": "qux"}]),
                json!({"foo": ["bar", "qux", "baz"]}),
            ),
            (
                json!({"foo": [1, 2]}),
                json!([{"op": "add", "path": "/foo/-", "value": 3}]),
                json!({"foo": [1, 2, 3]}),
            ),
            (
                json!({"foo": [1, 2]}),
                json!([{"op": "add", "path": "/foo/-1", "value": 9}]),
                json!({"foo": [1, 2, 9]}),
            ),
            (
                json!({"baz": "qux", "foo": "bar"}),
                json!([{"op": "remove", "path": "/baz"}]),
                json!({"foo": "bar"}),
            ),
            (
                json!({"foo": ["bar", "qux", "baz"]}),
                json!([{"op": "remove", "path": "/foo/1"}]),
                json!({"foo": ["bar", "baz"]}),
            ),
            (
                json!({"baz": "qux"}),
                json!([{"op": "replace", "path": "/baz", "value": "boo"}]),
                json!({"baz": "boo"}),
            ),
            (
                json!({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}}),
                json!([{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}]),
                json!({"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}),
            ),
            (
                json!({"foo": ["all", "grass", "cows", "eat"]}),
                json!([{"op": "move", "from": "/foo/1", "path": "/foo/3"}]),
                json!({"foo": ["all", "cows", "eat", "grass"]}),
            ),
            (
                json!({"a": {"b": 1}}),
                json!([{"op": "copy", "from": "/a", "path": "/c"}]),
                json!({"a": {"b": 1}, "c": {"b": 1}}),
            ),
            (
                json!({"baz": "qux"}),
                json!([{"op": "test", "path": "/baz", "value": "qux"}]),
                json!({"baz": "qux"}),
            ),
            (
                json!({"metadata": {"annotations": {"a/b": "1", "m~n": "2"}}}),
                json!([{"op": "remove", "path": "/metadata/annotations/a~1b"},
                       {"op": "replace", "path": "/metadata/annotations/m~0n", "value": "3"}]),
                json!({"metadata": {"annotations": {"m~n": "3"}}}),
            ),
        ];
        for (doc, ops, want) in cases {
            assert_eq!(run(doc.clone(), ops.clone()).unwrap(), want, "{doc} {ops}");
        }
    }

    #[test]
    fn failing_operations_report_upstream_messages() {
        let cases = [
            (
                json!({"a": 1}),
                json!([{"op": "remove", "path": "/b"}]),
                "error in remove for path: '/b': Unable to remove nonexistent key: b: missing value",
            ),
            (
                json!({"a": 1}),
                json!([{"op": "replace", "path": "/b", "value": 2}]),
                "replace operation does not apply: doc is missing key: /b: missing value",
            ),
            (
                json!({"a": 1}),
                json!([{"op": "add", "path": "/x/y", "value": 2}]),
                "add operation does not apply: doc is missing path: \"/x/y\": missing value",
            ),
            (
                json!({"a": [1]}),
                json!([{"op": "add", "path": "/a/5", "value": 2}]),
                "error in add for path: '/a/5': Unable to access invalid index: 5: invalid index referenced",
            ),
            (
                json!({"a": [1]}),
                json!([{"op": "remove", "path": "/a/1"}]),
                "error in remove for path: '/a/1': Unable to access invalid index: 1: invalid index referenced",
            ),
            (
                json!({"a": 1}),
                json!([{"op": "test", "path": "/a", "value": 2}]),
                "testing value /a failed: test failed",
            ),
            (
                json!({"a": 1}),
                json!([{"op": "move", "from": "/nope/x", "path": "/b"}]),
                "move operation does not apply: doc is missing from path: /nope/x: missing value",
            ),
            (
                json!({"a": 1}),
                json!([{"op": "frobnicate", "path": "/a"}]),
                "Unexpected kind: frobnicate",
            ),
            (
                json!({"a": 1}),
                json!([{"path": "/a"}]),
                "Unexpected kind: unknown",
            ),
        ];
        for (doc, ops, want) in cases {
            let err = json_patch(&doc, &ops).unwrap_err();
            assert_eq!(err.code(), 422);
            assert_eq!(err.to_string(), want, "{ops}");
        }
    }

    #[test]
    fn a_failing_test_leaves_nothing_half_applied() {
        let doc = json!({"a": 1});
        let ops = json!([{"op": "replace", "path": "/a", "value": 2}, {"op": "test", "path": "/a", "value": 1}]);
        assert!(json_patch(&doc, &ops).is_err());
        assert_eq!(doc, json!({"a": 1}));
    }

    #[test]
    fn malformed_patch_documents_are_bad_requests() {
        let err = json_patch(&json!({}), &json!({"op": "add"})).unwrap_err();
        assert_eq!(
            err,
            PatchError::BadRequest(
                "json: cannot unmarshal object into Go value of type jsonpatch.Patch".into()
            )
        );
        assert_eq!(
            json_patch(&json!({}), &json!(["x"])).unwrap_err().code(),
            400
        );
        let many = Value::Array(vec![
            json!({"op": "test", "path": "/a"});
            MAX_OPERATIONS + 1
        ]);
        assert_eq!(json_patch(&json!({}), &many).unwrap_err().code(), 413);
    }
}
