//! RFC 7386 JSON merge patch (`application/merge-patch+json`), as evanphx/json-patch's
//! `MergePatch` applies it for kube-apiserver: `null` deletes, objects merge recursively,
//! anything else replaces, and nulls inside newly added objects are dropped.

use super::{PatchError, Result};
use serde_json::{Map, Value};

/// evanphx/json-patch's `ErrBadJSONPatch`.
pub(crate) const BAD_PATCH: &str = "Invalid JSON Patch";

/// Applies `patch` to `original`. A patch that is an array replaces the document (with
/// nulls inside its objects pruned); `null` or a scalar patch is refused as upstream does.
pub fn merge_patch(original: &Value, patch: &Value) -> Result<Value> {
    match (original, patch) {
        (_, Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_)) => {
            Err(PatchError::BadRequest(BAD_PATCH.into()))
        }
        (Value::Object(doc), Value::Object(p)) => {
            let mut doc = doc.clone();
            merge_into(&mut doc, p);
            Ok(Value::Object(doc))
        }
        (_, other) => Ok(pruned(other)),
    }
}

fn merge_into(doc: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (k, pv) in patch {
        match pv {
            Value::Null => {
                doc.remove(k);
            }
            Value::Object(pm) => match doc.get_mut(k) {
                Some(Value::Object(dm)) => merge_into(dm, pm),
                _ => {
                    doc.insert(k.clone(), pruned(pv));
                }
            },
            other => {
                doc.insert(k.clone(), pruned(other));
            }
        }
    }
}

/// A value with the nulls of its objects removed (array elements are kept, as upstream
/// keeps them).
fn pruned(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), pruned(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(pruned).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7386() {
        // The examples of RFC 7386 appendix A.
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (
                json!({"a": "b", "b": "c"}),
                json!({"a": null}),
                json!({"b": "c"}),
            ),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (
                json!({"a": [{"b": "c"}]}),
                json!({"a": [1]}),
                json!({"a": [1]}),
            ),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!({}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a": "b"}), json!(["c"]), json!(["c"])),
        ];
        for (doc, patch, want) in cases {
            assert_eq!(merge_patch(&doc, &patch).unwrap(), want, "{doc} + {patch}");
        }
    }

    #[test]
    fn kubectl_label_and_annotate_patches_add_and_remove_keys() {
        let pod = json!({"metadata": {"name": "p", "labels": {"app": "web", "tier": "fe"}}});
        let patch = json!({"metadata": {"labels": {"tier": null, "env": "prod"}, "annotations": {"a": "1"}}});
        assert_eq!(
            merge_patch(&pod, &patch).unwrap(),
            json!({"metadata": {"name": "p", "labels": {"app": "web", "env": "prod"}, "annotations": {"a": "1"}}})
        );
    }

    #[test]
    fn scalar_and_null_patches_are_bad_requests() {
        for patch in [json!(null), json!("x"), json!(3)] {
            assert_eq!(
                merge_patch(&json!({}), &patch),
                Err(PatchError::BadRequest(BAD_PATCH.into()))
            );
        }
    }
}
