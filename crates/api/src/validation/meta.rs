//! ObjectMeta, labels, annotations, finalizers, owner references and label selectors:
//! `k8s.io/apimachinery/pkg/api/validation` and `.../apis/meta/v1/validation`.

use serde_json::{Map, Value};

use super::names::{self, NameValidator};
use super::{Errs, Path, arr, go_string_map, int, opt_str, str_map};
use crate::error::FieldError;

pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;
pub const FIELD_IMMUTABLE: &str = "field is immutable";
pub const IS_NEGATIVE: &str = "must be greater than or equal to 0";

/// Upstream `ValidateObjectMeta` (with the core group's extra finalizer-name check).
///
/// `name` is required unless `generateName` is set (the server generates the name before
/// validating); both are checked with `name_validator`.
pub fn validate_object_meta(
    meta: &Value,
    namespaced: bool,
    name_validator: NameValidator,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Errs::default();
    let empty = Map::new();
    let m = match meta {
        Value::Object(m) => m,
        Value::Null => &empty,
        other => {
            errs.type_invalid(path, other, "object");
            &empty
        }
    };
    let generate_name = opt_str(&mut errs, m, "generateName", path).unwrap_or("");
    if !generate_name.is_empty() {
        for msg in name_validator(generate_name, true) {
            errs.push(FieldError::invalid(
                path.child("generateName"),
                generate_name,
                msg,
            ));
        }
    }
    let name = opt_str(&mut errs, m, "name", path).unwrap_or("");
    if name.is_empty() {
        errs.push(FieldError::required(
            path.child("name"),
            "name or generateName is required",
        ));
    } else {
        for msg in name_validator(name, false) {
            errs.push(FieldError::invalid(path.child("name"), name, msg));
        }
    }
    let namespace = opt_str(&mut errs, m, "namespace", path).unwrap_or("");
    if namespaced {
        if namespace.is_empty() {
            errs.push(FieldError::required(path.child("namespace"), ""));
        } else {
            for msg in names::is_dns1123_label(namespace) {
                errs.push(FieldError::invalid(path.child("namespace"), namespace, msg));
            }
        }
    } else if !namespace.is_empty() {
        errs.push(FieldError::forbidden(
            path.child("namespace"),
            "not allowed on this type",
        ));
    }
    if let Some(g) = int(&mut errs, m, "generation", path) {
        nonnegative(&mut errs, g, &path.child("generation"));
    }
    common_meta(&mut errs, m, path);
    errs.0
}

fn common_meta(errs: &mut Errs, m: &Map<String, Value>, path: &Path) {
    let labels = str_map(errs, m, "labels", path);
    validate_labels(errs, &labels, &path.child("labels"));
    let annotations = str_map(errs, m, "annotations", path);
    validate_annotations(errs, &annotations, &path.child("annotations"));
    let refs = arr(errs, m, "ownerReferences", path);
    validate_owner_references(errs, refs, &path.child("ownerReferences"));
    let fpath = path.child("finalizers");
    let finalizers: Vec<&str> = arr(errs, m, "finalizers", path)
        .iter()
        .enumerate()
        .filter_map(|(i, f)| match f {
            Value::String(s) => Some(s.as_str()),
            other => {
                errs.type_invalid(&fpath.index(i), other, "string");
                None
            }
        })
        .collect();
    validate_finalizers(errs, &finalizers, &fpath);
    for (i, f) in finalizers.iter().enumerate() {
        validate_kube_finalizer_name(errs, f, &fpath.index(i));
    }
}

/// Upstream `ValidateObjectMetaUpdate`: identity fields are immutable. The resourceVersion
/// precondition is the server's business and is not checked here.
pub fn validate_object_meta_update(new: &Value, old: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = Errs::default();
    let empty = Map::new();
    let n = new.as_object().unwrap_or(&empty);
    let o = old.as_object().unwrap_or(&empty);
    if o.get("deletionTimestamp").is_some_and(|d| !d.is_null()) {
        let old_f: Vec<&Value> = o
            .get("finalizers")
            .and_then(Value::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        let added: Vec<String> = n
            .get("finalizers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|f| !old_f.contains(f))
            .filter_map(|f| f.as_str().map(str::to_string))
            .collect();
        if !added.is_empty() {
            errs.push(FieldError::forbidden(
                path.child("finalizers"),
                format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                    added.iter().map(|s| crate::error::go_quote(s)).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }
    let gen_new = n.get("generation").and_then(Value::as_i64).unwrap_or(0);
    let gen_old = o.get("generation").and_then(Value::as_i64).unwrap_or(0);
    if gen_new < gen_old {
        errs.push(FieldError::invalid(
            path.child("generation"),
            gen_new,
            "must not be decremented",
        ));
    }
    for f in [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        let nv = n.get(f).filter(|v| !v.is_null());
        let ov = o.get(f).filter(|v| !v.is_null());
        let same = match (nv, ov) {
            (None, None) => true,
            (Some(Value::String(a)), None) | (None, Some(Value::String(a))) => a.is_empty(),
            (a, b) => a == b,
        };
        if !same {
            let v = nv.cloned().unwrap_or(Value::String(String::new()));
            errs.push(FieldError::invalid(path.child(f), v, FIELD_IMMUTABLE));
        }
    }
    let labels = str_map(&mut errs, n, "labels", path);
    validate_labels(&mut errs, &labels, &path.child("labels"));
    let annotations = str_map(&mut errs, n, "annotations", path);
    validate_annotations(&mut errs, &annotations, &path.child("annotations"));
    let refs = arr(&mut errs, n, "ownerReferences", path);
    validate_owner_references(&mut errs, refs, &path.child("ownerReferences"));
    for (i, f) in n
        .get("finalizers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if let Some(f) = f.as_str() {
            validate_kube_finalizer_name(&mut errs, f, &path.child("finalizers").index(i));
        }
    }
    errs.0
}

pub(crate) fn nonnegative(errs: &mut Errs, v: i64, path: &Path) {
    if v < 0 {
        errs.push(FieldError::invalid(path, v, IS_NEGATIVE));
    }
}

/// `ValidateLabels`: keys are qualified names, values label values; errors at the map's path.
pub(crate) fn validate_labels(errs: &mut Errs, labels: &[(&str, &str)], path: &Path) {
    for (k, v) in labels {
        validate_label_name(errs, k, path);
        for msg in names::is_valid_label_value(v) {
            errs.push(FieldError::invalid(path, *v, msg));
        }
    }
}

pub(crate) fn validate_label_name(errs: &mut Errs, name: &str, path: &Path) {
    for msg in names::is_qualified_name(name) {
        errs.push(FieldError::invalid(path, name, msg));
    }
}

pub(crate) fn validate_annotations(errs: &mut Errs, annotations: &[(&str, &str)], path: &Path) {
    let mut total = 0;
    for (k, v) in annotations {
        for msg in names::is_qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid(path, *k, msg));
        }
        total += k.len() + v.len();
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(FieldError::too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
}

fn validate_owner_references(errs: &mut Errs, refs: &[Value], path: &Path) {
    let mut first_controller = String::new();
    for r in refs {
        let Some(m) = r.as_object() else {
            errs.type_invalid(path, r, "object");
            continue;
        };
        let api_version = opt_str(errs, m, "apiVersion", path).unwrap_or("");
        let kind = opt_str(errs, m, "kind", path).unwrap_or("");
        let name = opt_str(errs, m, "name", path).unwrap_or("");
        let uid = opt_str(errs, m, "uid", path).unwrap_or("");
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        if version.is_empty() {
            errs.push(FieldError::invalid(
                path.child("apiVersion"),
                api_version,
                "version must not be empty",
            ));
        }
        if kind.is_empty() {
            errs.push(FieldError::invalid(
                path.child("kind"),
                kind,
                "must not be empty",
            ));
        }
        if name.is_empty() {
            errs.push(FieldError::invalid(
                path.child("name"),
                name,
                "must not be empty",
            ));
        }
        if uid.is_empty() {
            errs.push(FieldError::invalid(
                path.child("uid"),
                uid,
                "must not be empty",
            ));
        }
        if group.is_empty() && version == "v1" && kind == "Event" {
            errs.push(FieldError::invalid(
                path,
                r.clone(),
                "/v1, Kind=Event is disallowed from being an owner",
            ));
        }
        if m.get("controller").and_then(Value::as_bool) == Some(true) {
            let cur = format!("{kind}/{name}");
            if first_controller.is_empty() {
                first_controller = cur;
            } else {
                errs.push(FieldError::invalid(
                    path,
                    Value::Array(refs.to_vec()),
                    format!(
                        "Only one reference can have Controller set to true. Found \"true\" in references for {first_controller} and {cur}"
                    ),
                ));
            }
        }
    }
}

fn validate_finalizers(errs: &mut Errs, finalizers: &[&str], path: &Path) {
    let (mut orphan, mut foreground) = (false, false);
    for f in finalizers {
        for msg in names::is_qualified_name(f) {
            errs.push(FieldError::invalid(path, *f, msg));
        }
        orphan |= *f == "orphan";
        foreground |= *f == "foregroundDeletion";
    }
    if orphan && foreground {
        let list: Vec<Value> = finalizers.iter().map(|f| Value::from(*f)).collect();
        errs.push(FieldError::invalid(
            path,
            Value::Array(list),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
}

/// Core's `validateKubeFinalizerName`: an unqualified name must be a standard one.
pub(crate) fn validate_kube_finalizer_name(errs: &mut Errs, f: &str, path: &Path) {
    if !f.contains('/') && !matches!(f, "kubernetes" | "orphan" | "foregroundDeletion") {
        errs.push(FieldError::invalid(
            path,
            f,
            "name is neither a standard finalizer name nor is it fully qualified",
        ));
    }
}

/// `metav1validation.ValidateLabelSelector`.
pub(crate) fn validate_label_selector(errs: &mut Errs, sel: &Map<String, Value>, path: &Path) {
    let ml = str_map(errs, sel, "matchLabels", path);
    validate_labels(errs, &ml, &path.child("matchLabels"));
    let epath = path.child("matchExpressions");
    for (i, e) in arr(errs, sel, "matchExpressions", path).iter().enumerate() {
        let p = epath.index(i);
        let Some(e) = e.as_object() else {
            errs.type_invalid(&p, e, "object");
            continue;
        };
        let op = opt_str(errs, e, "operator", &p).unwrap_or("");
        let values = arr(errs, e, "values", &p);
        match op {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(FieldError::required(
                        p.child("values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(FieldError::forbidden(
                        p.child("values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            _ => errs.push(FieldError::invalid(
                p.child("operator"),
                op,
                "not a valid selector operator",
            )),
        }
        let key = opt_str(errs, e, "key", &p).unwrap_or("");
        validate_label_name(errs, key, &p.child("key"));
        for (j, v) in values.iter().enumerate() {
            match v.as_str() {
                Some(v) => {
                    for msg in names::is_valid_label_value(v) {
                        errs.push(FieldError::invalid(p.child("values").index(j), v, msg));
                    }
                }
                None => errs.type_invalid(&p.child("values").index(j), v, "string"),
            }
        }
    }
}

/// Whether a label selector (JSON) selects the given labels; None for a nil selector,
/// which upstream turns into "matches nothing".
pub(crate) fn selector_matches(sel: Option<&Map<String, Value>>, labels: &[(&str, &str)]) -> bool {
    let Some(sel) = sel else { return false };
    let get = |k: &str| labels.iter().find(|(lk, _)| *lk == k).map(|(_, v)| *v);
    if let Some(ml) = sel.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in ml {
            if get(k) != v.as_str() {
                return false;
            }
        }
    }
    for e in sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = e.get("key").and_then(Value::as_str).unwrap_or("");
        let values: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let have = get(key);
        let ok = match e.get("operator").and_then(Value::as_str).unwrap_or("") {
            "In" => have.is_some_and(|h| values.contains(&h)),
            "NotIn" => have.is_none_or(|h| !values.contains(&h)),
            "Exists" => have.is_some(),
            "DoesNotExist" => have.is_none(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// Go's `%#v` of a `*metav1.LabelSelector` after dereferencing, as upstream prints it.
pub(crate) fn go_label_selector(sel: &Map<String, Value>) -> String {
    let ml = match sel.get("matchLabels") {
        Some(Value::Object(m)) => {
            let pairs: Vec<(&str, &str)> = m
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or("")))
                .collect();
            go_string_map(Some(&pairs))
        }
        _ => go_string_map(None),
    };
    let me = match sel.get("matchExpressions") {
        Some(Value::Array(a)) if !a.is_empty() => "[]v1.LabelSelectorRequirement{...}".to_string(),
        Some(Value::Array(_)) => "[]v1.LabelSelectorRequirement{}".to_string(),
        _ => "[]v1.LabelSelectorRequirement(nil)".to_string(),
    };
    format!("v1.LabelSelector{{MatchLabels:{ml}, MatchExpressions:{me}}}")
}
