//! Validation as upstream's `pkg/apis/*/validation`: the same rules, field paths and messages,
//! on objects after defaulting.
//!
//! [`validate_create`] and [`validate_update`] check a whole object (metadata included) of one
//! kind; [`validate_object_meta`], [`name_validator`] and the `is_*` checks are exported for the
//! server's generic paths (for example custom resources and subresources).
//!
//! Objects arrive as JSON. Upstream rejects a field of the wrong JSON type while decoding,
//! before validation; here such a field becomes a `TypeInvalid` error (`Invalid value: 5:
//! expected string`) and is otherwise treated as absent, so odd input never panics.
//!
//! Where upstream prints a Go value with `%#v` (label maps, `IntOrString`, selectors) the
//! message reproduces Go's syntax, e.g. `map[string]string{"app":"x"}`.

mod apps;
mod batch;
mod core;
mod meta;
mod names;
mod others;
#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

pub use crate::error::Path;
use crate::error::{FieldError, FieldErrorType};
pub use meta::{validate_object_meta, validate_object_meta_update};
pub use names::{
    NameValidator, is_c_identifier, is_config_map_key, is_dns1035_label, is_dns1123_label,
    is_dns1123_subdomain, is_qualified_name, is_relaxed_env_var_name, is_valid_label_value,
    is_valid_percent, is_valid_port_name, is_valid_port_num, mask_trailing_dash, name_is_dns_label,
    name_is_dns_subdomain, name_is_dns1035_label, name_is_path_segment, name_validator,
};

/// Whether objects of a built-in kind live in a namespace.
pub fn is_namespaced(group: &str, kind: &str) -> bool {
    !matches!(
        (group, kind),
        (
            "",
            "Namespace" | "Node" | "PersistentVolume" | "ComponentStatus"
        ) | (
            "rbac.authorization.k8s.io",
            "ClusterRole" | "ClusterRoleBinding"
        ) | (
            "storage.k8s.io",
            "StorageClass" | "CSIDriver" | "CSINode" | "VolumeAttachment"
        ) | ("scheduling.k8s.io", "PriorityClass")
            | (
                "networking.k8s.io",
                "IngressClass" | "IPAddress" | "ServiceCIDR"
            )
            | ("certificates.k8s.io", "CertificateSigningRequest")
            | ("node.k8s.io", "RuntimeClass")
            | (
                "admissionregistration.k8s.io",
                "MutatingWebhookConfiguration"
                    | "ValidatingWebhookConfiguration"
                    | "ValidatingAdmissionPolicy"
                    | "ValidatingAdmissionPolicyBinding"
            )
            | ("apiextensions.k8s.io", "CustomResourceDefinition")
            | ("apiregistration.k8s.io", "APIService")
            | ("flowcontrol.apiserver.k8s.io", _)
    )
}

/// Validates a new object of `group/version, Kind=kind` as upstream's `Validate<Kind>` does.
///
/// Kinds without specific rules get the ObjectMeta checks only.
pub fn validate_create(group: &str, version: &str, kind: &str, obj: &Value) -> Vec<FieldError> {
    let _ = version;
    let mut errs = Errs::default();
    let empty = Map::new();
    let m = match obj {
        Value::Object(m) => m,
        other => {
            errs.type_invalid(&Path::new(""), other, "object");
            &empty
        }
    };
    let meta_path = Path::new("metadata");
    let meta = m.get("metadata").unwrap_or(&Value::Null);
    if (group, kind) == ("", "Event") {
        // core/v1 Events skip ObjectMeta validation for backwards compatibility.
        if meta
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            errs.push(FieldError::required(
                meta_path.child("name"),
                "name or generateName is required",
            ));
        }
    } else {
        errs.0.extend(validate_object_meta(
            meta,
            is_namespaced(group, kind),
            name_validator(group, kind),
            &meta_path,
        ));
    }
    match (group, kind) {
        ("", _) => core::validate(&mut errs, kind, m, None),
        ("apps", _) => apps::validate(&mut errs, kind, m, None),
        ("batch", _) => batch::validate(&mut errs, kind, m, None),
        _ => others::validate(&mut errs, group, version, kind, m, None),
    }
    errs.0
}

/// Validates an update: the new object as on create (with the rules that only apply on
/// create left out) plus upstream's immutability rules against `old`.
pub fn validate_update(
    group: &str,
    version: &str,
    kind: &str,
    new: &Value,
    old: &Value,
) -> Vec<FieldError> {
    let mut errs = Errs::default();
    let empty = Map::new();
    let n = match new {
        Value::Object(m) => m,
        other => {
            errs.type_invalid(&Path::new(""), other, "object");
            &empty
        }
    };
    let o = old.as_object().unwrap_or(&empty);
    let meta_path = Path::new("metadata");
    let nm = n.get("metadata").unwrap_or(&Value::Null);
    let om = o.get("metadata").unwrap_or(&Value::Null);
    errs.0
        .extend(validate_object_meta_update(nm, om, &meta_path));
    // The create-time name checks still apply to the (immutable) name and labels.
    let create_meta = validate_object_meta(
        nm,
        is_namespaced(group, kind),
        name_validator(group, kind),
        &meta_path,
    );
    for e in create_meta {
        if !errs.0.contains(&e) {
            errs.push(e);
        }
    }
    match (group, kind) {
        ("", _) => core::validate(&mut errs, kind, n, Some(o)),
        ("apps", _) => apps::validate(&mut errs, kind, n, Some(o)),
        ("batch", _) => batch::validate(&mut errs, kind, n, Some(o)),
        _ => others::validate(&mut errs, group, version, kind, n, Some(o)),
    }
    errs.0
}

// ---------------------------------------------------------------------------------------------
// Shared plumbing: an error list and typed accessors that report wrong JSON types.

#[derive(Default, Debug)]
pub(crate) struct Errs(pub Vec<FieldError>);

impl Errs {
    pub fn push(&mut self, e: FieldError) {
        self.0.push(e);
    }

    pub fn type_invalid(&mut self, path: &Path, v: &Value, expected: &str) {
        self.0.push(FieldError {
            kind: FieldErrorType::TypeInvalid,
            field: path.to_string(),
            bad_value: Some(v.clone()),
            detail: format!("expected {expected}"),
        });
    }
}

/// A field error whose value is already rendered the way Go's `%#v` prints it.
pub(crate) fn invalid_go(path: &Path, rendered: &str, detail: &str) -> FieldError {
    FieldError {
        kind: FieldErrorType::Invalid,
        field: path.to_string(),
        bad_value: None,
        detail: format!("{rendered}: {detail}"),
    }
}

/// `NotSupported` with a Go-rendered value.
pub(crate) fn not_supported_go(path: &Path, rendered: &str, supported: &[&str]) -> FieldError {
    let quoted: Vec<String> = supported
        .iter()
        .map(|s| crate::error::go_quote(s))
        .collect();
    FieldError {
        kind: FieldErrorType::NotSupported,
        field: path.to_string(),
        bad_value: None,
        detail: format!("{rendered}: supported values: {}", quoted.join(", ")),
    }
}

/// Go's `%#v` of a `map[string]string` (None is a nil map).
pub(crate) fn go_string_map(m: Option<&[(&str, &str)]>) -> String {
    match m {
        None => "map[string]string(nil)".to_string(),
        Some(pairs) => {
            let mut sorted: Vec<&(&str, &str)> = pairs.iter().collect();
            sorted.sort();
            let body: Vec<String> = sorted
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{}:{}",
                        crate::error::go_quote(k),
                        crate::error::go_quote(v)
                    )
                })
                .collect();
            format!("map[string]string{{{}}}", body.join(", "))
        }
    }
}

/// Go's `%#v` of an `intstr.IntOrString` given as JSON.
pub(crate) fn go_int_or_string(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => format!(
            "intstr.IntOrString{{Type:1, IntVal:0, StrVal:{}}}",
            crate::error::go_quote(s)
        ),
        Some(Value::Number(n)) => {
            format!("intstr.IntOrString{{Type:0, IntVal:{n}, StrVal:\"\"}}")
        }
        _ => "intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}".to_string(),
    }
}

pub(crate) fn present<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    m.get(key).filter(|v| !v.is_null())
}

pub(crate) fn opt_str<'a>(
    errs: &mut Errs,
    m: &'a Map<String, Value>,
    key: &str,
    path: &Path,
) -> Option<&'a str> {
    match present(m, key) {
        None => None,
        Some(Value::String(s)) => Some(s),
        Some(other) => {
            errs.type_invalid(&path.child(key), other, "string");
            None
        }
    }
}

/// A string field, "" when absent.
pub(crate) fn string<'a>(
    errs: &mut Errs,
    m: &'a Map<String, Value>,
    key: &str,
    path: &Path,
) -> &'a str {
    opt_str(errs, m, key, path).unwrap_or("")
}

pub(crate) fn int(errs: &mut Errs, m: &Map<String, Value>, key: &str, path: &Path) -> Option<i64> {
    match present(m, key) {
        None => None,
        Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64(),
        Some(other) => {
            errs.type_invalid(&path.child(key), other, "integer");
            None
        }
    }
}

pub(crate) fn boolean(
    errs: &mut Errs,
    m: &Map<String, Value>,
    key: &str,
    path: &Path,
) -> Option<bool> {
    match present(m, key) {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(other) => {
            errs.type_invalid(&path.child(key), other, "boolean");
            None
        }
    }
}

pub(crate) fn obj<'a>(
    errs: &mut Errs,
    m: &'a Map<String, Value>,
    key: &str,
    path: &Path,
) -> Option<&'a Map<String, Value>> {
    match present(m, key) {
        None => None,
        Some(Value::Object(o)) => Some(o),
        Some(other) => {
            errs.type_invalid(&path.child(key), other, "object");
            None
        }
    }
}

pub(crate) fn arr<'a>(
    errs: &mut Errs,
    m: &'a Map<String, Value>,
    key: &str,
    path: &Path,
) -> &'a [Value] {
    match present(m, key) {
        None => &[],
        Some(Value::Array(a)) => a,
        Some(other) => {
            errs.type_invalid(&path.child(key), other, "array");
            &[]
        }
    }
}

/// The objects of an array field with their index paths; non-objects are reported.
pub(crate) fn objs<'a>(
    errs: &mut Errs,
    m: &'a Map<String, Value>,
    key: &str,
    path: &Path,
) -> Vec<(Path, &'a Map<String, Value>)> {
    let p = path.child(key);
    let mut out = Vec::new();
    for (i, v) in arr(errs, m, key, path).iter().enumerate() {
        match v {
            Value::Object(o) => out.push((p.index(i), o)),
            other => errs.type_invalid(&p.index(i), other, "object"),
        }
    }
    out
}

/// The strings of an array field; non-strings are reported.
pub(crate) fn strs<'a>(
    errs: &mut Errs,
    m: &'a Map<String, Value>,
    key: &str,
    path: &Path,
) -> Vec<&'a str> {
    let p = path.child(key);
    let mut out = Vec::new();
    for (i, v) in arr(errs, m, key, path).iter().enumerate() {
        match v {
            Value::String(s) => out.push(s.as_str()),
            other => errs.type_invalid(&p.index(i), other, "string"),
        }
    }
    out
}

/// A `map[string]string` field; non-string values are reported.
pub(crate) fn str_map<'a>(
    errs: &mut Errs,
    m: &'a Map<String, Value>,
    key: &str,
    path: &Path,
) -> Vec<(&'a str, &'a str)> {
    let Some(o) = obj(errs, m, key, path) else {
        return Vec::new();
    };
    let p = path.child(key);
    let mut out = Vec::new();
    for (k, v) in o {
        match v {
            Value::String(s) => out.push((k.as_str(), s.as_str())),
            Value::Null => out.push((k.as_str(), "")),
            other => errs.type_invalid(&p.key(k), other, "string"),
        }
    }
    out
}

/// Upstream `ValidateImmutableField` over JSON values (absent and null are equal).
pub(crate) fn immutable(errs: &mut Errs, new: Option<&Value>, old: Option<&Value>, path: &Path) {
    let n = new.filter(|v| !v.is_null());
    let o = old.filter(|v| !v.is_null());
    if n != o {
        let shown = n.cloned().unwrap_or(Value::Null);
        match shown {
            Value::Object(_) | Value::Array(_) | Value::Null => {
                errs.push(FieldError {
                    kind: FieldErrorType::Invalid,
                    field: path.to_string(),
                    bad_value: None,
                    detail: meta::FIELD_IMMUTABLE.to_string(),
                });
            }
            v => errs.push(FieldError::invalid(path, v, meta::FIELD_IMMUTABLE)),
        }
    }
}
