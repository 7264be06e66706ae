//! Checking a JSON object against its type the way kube-apiserver's decoder does: unknown
//! fields are collected with their full path (and dropped, as upstream drops them from
//! built-in types), values of the wrong JSON type are reported with Go's wording, `null`
//! optional fields are removed, and numbers given for quantities become strings.

use super::{Cardinality, FieldSchema, Special, TypeSchema, Wire};
use crate::error::go_quote;
use base64::Engine;
use serde_json::{Map, Value};

/// Something wrong with one field of a decoded object.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FieldIssue {
    /// A field the type does not have. Only an error under `fieldValidation=Strict`
    /// (a warning under `Warn`); the field has been removed from the object either way.
    #[error("unknown field {}", go_quote(path))]
    Unknown { path: String },
    /// A JSON value of the wrong type: Go's `json.UnmarshalTypeError`.
    #[error("{}", mismatch_message(value, go_struct, field_path, go_type))]
    Mismatch {
        /// Go's description of the JSON value: `string`, `number`, `number 1.5`, `object`.
        value: String,
        /// The Go struct holding the field (`PodSpec`); empty at the top level.
        go_struct: String,
        /// Go's field stack from the root, without list indices: `spec.containers`.
        field_path: String,
        /// The Go type the value was decoded into: `[]v1.Container`.
        go_type: String,
    },
    /// A value a custom decoder refused (a malformed quantity or timestamp, bad base64).
    #[error("{message}")]
    Invalid { path: String, message: String },
}

impl FieldIssue {
    /// True for problems that only fail a request under `fieldValidation=Strict`.
    pub fn is_strict_only(&self) -> bool {
        matches!(self, FieldIssue::Unknown { .. })
    }
}

fn mismatch_message(value: &str, go_struct: &str, field_path: &str, go_type: &str) -> String {
    if go_struct.is_empty() && field_path.is_empty() {
        format!("json: cannot unmarshal {value} into Go value of type {go_type}")
    } else {
        format!(
            "json: cannot unmarshal {value} into Go struct field {go_struct}.{field_path} of type {go_type}"
        )
    }
}

/// Upstream's `runtime.NewStrictDecodingError(...).Error()` for the strict-only issues:
/// `strict decoding error: unknown field "spec.foo", unknown field "spec.bar"`.
pub fn strict_decoding_message(issues: &[FieldIssue]) -> String {
    let parts: Vec<String> = issues
        .iter()
        .filter(|i| i.is_strict_only())
        .map(|i| i.to_string())
        .collect();
    format!("strict decoding error: {}", parts.join(", "))
}

const QUANTITY_ERROR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// Walks `value` against `ty`, fixing what upstream's decoder fixes and reporting the rest
/// into `out`. `path` prefixes the reported field paths (usually empty: paths then read
/// `spec.containers[0].imagee`). Never panics, whatever the input.
pub fn normalize(
    value: &mut Value,
    ty: &'static TypeSchema,
    path: &str,
    out: &mut Vec<FieldIssue>,
) {
    let mut walk = Walk {
        out,
        stack: Vec::new(),
    };
    match value {
        Value::Object(map) => walk.object(map, ty, path),
        other => walk.out.push(FieldIssue::Mismatch {
            value: describe(other),
            go_struct: String::new(),
            field_path: String::new(),
            go_type: ty.go_name(),
        }),
    }
}

struct Walk<'a> {
    out: &'a mut Vec<FieldIssue>,
    /// Go's error-context field stack (JSON names from the root, no indices).
    stack: Vec<&'static str>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// A plain (non-pointer, `omitempty`) scalar at its zero value, which Go leaves out.
fn is_go_zero_scalar(v: &Value, f: &FieldSchema) -> bool {
    match (f.wire(), v) {
        (Wire::String, Value::String(s)) => s.is_empty(),
        (Wire::Bool, Value::Bool(b)) => !b,
        (Wire::Int32 | Wire::Int64 | Wire::Double, Value::Number(n)) => n.as_f64() == Some(0.0),
        _ => false,
    }
}

/// Go's description of a JSON value in `UnmarshalTypeError`.
fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(_) => "bool".into(),
        Value::Number(_) => "number".into(),
        Value::String(_) => "string".into(),
        Value::Array(_) => "array".into(),
        Value::Object(_) => "object".into(),
    }
}

impl Walk<'_> {
    fn mismatch(&mut self, v: &Value, owner: &TypeSchema, go_type: String) {
        self.out.push(FieldIssue::Mismatch {
            value: describe(v),
            go_struct: owner.short_name().to_string(),
            field_path: self.stack.join("."),
            go_type,
        });
    }

    fn object(&mut self, map: &mut Map<String, Value>, ty: &'static TypeSchema, path: &str) {
        let keys: Vec<String> = map.keys().cloned().collect();
        for key in keys {
            let Some(field) = ty.field(&key) else {
                self.out.push(FieldIssue::Unknown {
                    path: join(path, &key),
                });
                map.remove(&key);
                continue;
            };
            let owner = owner_of(ty, field);
            self.stack.push(field.json_name());
            let keep = match map.get_mut(&key) {
                Some(v) => self.field(v, field, owner, &join(path, &key)),
                None => true,
            };
            self.stack.pop();
            if !keep {
                map.remove(&key);
            }
        }
    }

    /// Checks one field's value; returns false when the key should be dropped.
    fn field(
        &mut self,
        v: &mut Value,
        f: &'static FieldSchema,
        owner: &TypeSchema,
        path: &str,
    ) -> bool {
        if v.is_null() {
            return false;
        }
        match f.cardinality() {
            Cardinality::Repeated => match v {
                Value::Array(items) => {
                    for (i, item) in items.iter_mut().enumerate() {
                        self.element(item, f, owner, &format!("{path}[{i}]"));
                    }
                    // Go's `omitempty` drops empty slices: upstream never stores `[]` for them.
                    !items.is_empty() || f.is_required()
                }
                other => {
                    self.mismatch(other, owner, f.go_type());
                    false
                }
            },
            Cardinality::Map => match v {
                Value::Object(entries) => {
                    for (k, item) in entries.iter_mut() {
                        self.element(item, f, owner, &join(path, k));
                    }
                    !entries.is_empty() || f.is_required()
                }
                other => {
                    self.mismatch(other, owner, f.go_type());
                    false
                }
            },
            Cardinality::Single | Cardinality::Inline => {
                self.value(v, f, owner, path, f.go_type())
                    && (f.keeps_zero() || !is_go_zero_scalar(v, f))
            }
        }
    }

    /// One element of a list or value of a map; `null` becomes the Go zero value.
    fn element(&mut self, v: &mut Value, f: &'static FieldSchema, owner: &TypeSchema, path: &str) {
        if v.is_null() {
            *v = match f.wire() {
                Wire::String | Wire::Bytes => Value::String(String::new()),
                Wire::Bool => Value::Bool(false),
                Wire::Int32 | Wire::Int64 | Wire::Double => Value::from(0),
                Wire::Message => match f.message_type().map(|t| t.special()) {
                    Some(Special::Quantity) => Value::String("0".into()),
                    Some(Special::IntOrString) => Value::from(0),
                    Some(Special::None) => Value::Object(Map::new()),
                    _ => Value::Null,
                },
            };
            return;
        }
        self.value(v, f, owner, path, f.element_go_type());
    }

    fn value(
        &mut self,
        v: &mut Value,
        f: &'static FieldSchema,
        owner: &TypeSchema,
        path: &str,
        go_type: String,
    ) -> bool {
        match f.wire() {
            Wire::String => {
                if !v.is_string() {
                    self.mismatch(v, owner, go_type);
                }
            }
            Wire::Bool => {
                if !v.is_boolean() {
                    self.mismatch(v, owner, go_type);
                }
            }
            Wire::Int32 | Wire::Int64 => {
                let ok = match v {
                    Value::Number(n) => {
                        let (lo, hi) = if f.wire() == Wire::Int32 {
                            (i32::MIN as i64, i32::MAX as i64)
                        } else {
                            (i64::MIN, i64::MAX)
                        };
                        match n.as_i64() {
                            Some(i) if (lo..=hi).contains(&i) => true,
                            _ => {
                                // Go names the literal when a number does not fit the type.
                                self.out.push(FieldIssue::Mismatch {
                                    value: format!("number {n}"),
                                    go_struct: owner.short_name().to_string(),
                                    field_path: self.stack.join("."),
                                    go_type: go_type.clone(),
                                });
                                return true;
                            }
                        }
                    }
                    _ => false,
                };
                if !ok {
                    self.mismatch(v, owner, go_type);
                }
            }
            Wire::Double => {
                if !v.is_number() {
                    self.mismatch(v, owner, go_type);
                }
            }
            Wire::Bytes => match v {
                Value::String(s) => {
                    if let Err(e) = base64::engine::general_purpose::STANDARD.decode(s.as_bytes()) {
                        let at = match e {
                            base64::DecodeError::InvalidByte(i, _) => i,
                            base64::DecodeError::InvalidLastSymbol(i, _) => i,
                            _ => s.len(),
                        };
                        self.out.push(FieldIssue::Invalid {
                            path: path.to_string(),
                            message: format!("illegal base64 data at input byte {at}"),
                        });
                    }
                }
                other => self.mismatch(other, owner, go_type),
            },
            Wire::Message => {
                let Some(ty) = f.message_type() else {
                    return true;
                };
                return self.message(v, ty, owner, path, go_type);
            }
        }
        true
    }

    fn message(
        &mut self,
        v: &mut Value,
        ty: &'static TypeSchema,
        owner: &TypeSchema,
        path: &str,
        go_type: String,
    ) -> bool {
        match ty.special() {
            Special::None => match v {
                Value::Object(map) => self.object(map, ty, path),
                other => self.mismatch(other, owner, go_type),
            },
            Special::Quantity => match v {
                Value::Number(n) => *v = Value::String(n.to_string()),
                Value::String(s) if quantity_syntax_ok(s.trim()) => {}
                _ => self.invalid(path, QUANTITY_ERROR.to_string()),
            },
            Special::IntOrString => match v {
                Value::String(_) => {}
                Value::Number(n) => {
                    if n.as_i64().is_none_or(|i| i32::try_from(i).is_err()) {
                        self.invalid(
                            path,
                            format!(
                                "json: cannot unmarshal number {n} into Go value of type int32"
                            ),
                        );
                    }
                }
                other => {
                    let d = describe(other);
                    self.invalid(
                        path,
                        format!("json: cannot unmarshal {d} into Go value of type int32"),
                    );
                }
            },
            Special::Time | Special::MicroTime => match v {
                Value::String(s) => {
                    if s.parse::<jiff::Timestamp>().is_err() {
                        let layout = if ty.special() == Special::Time {
                            "2006-01-02T15:04:05Z07:00"
                        } else {
                            "2006-01-02T15:04:05.000000Z07:00"
                        };
                        let q = go_quote(s);
                        self.invalid(
                            path,
                            format!(
                                "parsing time {q} as \"{layout}\": cannot parse {q} as \"2006\""
                            ),
                        );
                    }
                }
                other => {
                    let d = describe(other);
                    self.invalid(
                        path,
                        format!("json: cannot unmarshal {d} into Go value of type string"),
                    );
                }
            },
            Special::Duration => {
                if !v.is_string() {
                    let d = describe(v);
                    self.invalid(
                        path,
                        format!("json: cannot unmarshal {d} into Go value of type string"),
                    );
                }
            }
            Special::RawExtension | Special::FieldsV1 | Special::Json => {}
            Special::StringList => match v {
                Value::Array(items) if items.iter().all(|i| i.is_string() || i.is_null()) => {}
                other => self.mismatch(other, owner, "[]string".into()),
            },
            Special::JsonSchemaPropsOrArray => match v {
                Value::Object(map) => self.schema_props(map, ty, 1, path),
                Value::Array(items) => {
                    for (i, item) in items.iter_mut().enumerate() {
                        if let Value::Object(map) = item {
                            self.schema_props(map, ty, 1, &format!("{path}[{i}]"));
                        }
                    }
                }
                _ => self.invalid(
                    path,
                    "JSONSchemaPropsOrArray must be an object or an array".into(),
                ),
            },
            Special::JsonSchemaPropsOrBool => match v {
                Value::Object(map) => self.schema_props(map, ty, 2, path),
                Value::Bool(_) => {}
                _ => self.invalid(
                    path,
                    "JSONSchemaPropsOrBool must be an object or a boolean".into(),
                ),
            },
            Special::JsonSchemaPropsOrStringArray => match v {
                Value::Object(map) => self.schema_props(map, ty, 1, path),
                Value::Array(items) if items.iter().all(Value::is_string) => {}
                _ => self.invalid(
                    path,
                    "JSONSchemaPropsOrStringArray must be an object or an array of strings".into(),
                ),
            },
        }
        true
    }

    /// The JSONSchemaProps inside one of the `JSONSchemaPropsOr...` unions (at `tag`).
    fn schema_props(
        &mut self,
        map: &mut Map<String, Value>,
        union: &TypeSchema,
        tag: u32,
        path: &str,
    ) {
        if let Some(props) = union.field_by_tag(tag).and_then(|f| f.message_type()) {
            self.object(map, props, path);
        }
    }

    fn invalid(&mut self, path: &str, message: String) {
        self.out.push(FieldIssue::Invalid {
            path: path.to_string(),
            message,
        });
    }
}

/// The type that declares `field` (an inline embedding's type when the field came from one).
fn owner_of(ty: &'static TypeSchema, field: &'static FieldSchema) -> &'static TypeSchema {
    for f in ty.fields() {
        if std::ptr::eq(f, field) {
            return ty;
        }
        if f.cardinality() == Cardinality::Inline
            && let Some(inner) = f.message_type()
            && inner
                .field(field.json_name())
                .is_some_and(|g| std::ptr::eq(g, field))
        {
            return owner_of(inner, field);
        }
    }
    ty
}

/// `^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$`, the shape upstream's quantity parser
/// requires before it looks at the suffix.
fn quantity_syntax_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let start = i;
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
        i += 1;
    }
    if i == start {
        return false;
    }
    while i < b.len() && b"eEinumkKMGTP".contains(&b[i]) {
        i += 1;
    }
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{kind_type, type_named};
    use serde_json::json;

    fn run(kind: (&str, &str, &str), mut v: Value) -> (Value, Vec<String>) {
        let ty = kind_type(kind.0, kind.1, kind.2).unwrap();
        let mut out = Vec::new();
        normalize(&mut v, ty, "", &mut out);
        (v, out.iter().map(|i| i.to_string()).collect())
    }

    const POD: (&str, &str, &str) = ("", "v1", "Pod");

    #[test]
    fn unknown_fields_are_reported_with_their_full_path_and_dropped() {
        let (v, issues) = run(
            POD,
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "b"}},
                   "spec": {"containers": [{"name": "c", "image": "i"}, {"name": "d", "imagee": "x"}], "foo": 1},
                   "bar": true}),
        );
        assert_eq!(
            issues,
            [
                r#"unknown field "bar""#,
                r#"unknown field "spec.containers[1].imagee""#,
                r#"unknown field "spec.foo""#
            ]
        );
        assert_eq!(v["spec"]["containers"][1], json!({"name": "d"}));
        assert!(v.get("bar").is_none());
        assert_eq!(
            strict_decoding_message(&[
                FieldIssue::Unknown { path: "a".into() },
                FieldIssue::Unknown { path: "b.c".into() }
            ]),
            r#"strict decoding error: unknown field "a", unknown field "b.c""#
        );
    }

    #[test]
    fn wrong_json_types_are_reported_in_go_words() {
        let cases = [
            (
                json!({"spec": {"containers": "nginx"}}),
                "json: cannot unmarshal string into Go struct field PodSpec.spec.containers of type []v1.Container",
            ),
            (
                json!({"spec": {"containers": ["nginx"]}}),
                "json: cannot unmarshal string into Go struct field PodSpec.spec.containers of type v1.Container",
            ),
            (
                json!({"spec": {"containers": [{"name": 3}]}}),
                "json: cannot unmarshal number into Go struct field Container.spec.containers.name of type string",
            ),
            (
                json!({"spec": {"priority": "high"}}),
                "json: cannot unmarshal string into Go struct field PodSpec.spec.priority of type int32",
            ),
            (
                json!({"spec": {"priority": 1.5}}),
                "json: cannot unmarshal number 1.5 into Go struct field PodSpec.spec.priority of type int32",
            ),
            (
                json!({"metadata": {"labels": ["a"]}}),
                "json: cannot unmarshal array into Go struct field ObjectMeta.metadata.labels of type map[string]string",
            ),
            (
                json!([]),
                "json: cannot unmarshal array into Go value of type v1.Pod",
            ),
        ];
        for (input, want) in cases {
            let (_, issues) = run(POD, input.clone());
            assert_eq!(issues, [want], "{input}");
        }
    }

    #[test]
    fn nulls_are_removed_and_quantities_become_strings() {
        let (v, issues) = run(
            POD,
            json!({"metadata": {"name": "p", "annotations": null},
                   "spec": {"nodeName": null, "containers": [{"name": "c",
                     "resources": {"limits": {"cpu": 1, "memory": "1Gi"}, "requests": {"cpu": 0.5}}}]}}),
        );
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(
            v,
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c",
                "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "0.5"}}}]}})
        );
    }

    #[test]
    fn special_values_are_checked_by_their_own_rules() {
        let cases = [
            (
                json!({"metadata": {"creationTimestamp": "2024-01-01T00:00:00Z"}}),
                vec![],
            ),
            (
                json!({"metadata": {"creationTimestamp": "yesterday"}}),
                vec![
                    r#"parsing time "yesterday" as "2006-01-02T15:04:05Z07:00": cannot parse "yesterday" as "2006""#,
                ],
            ),
            (
                json!({"spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": "lots"}}}]}}),
                vec![QUANTITY_ERROR],
            ),
            (
                json!({"spec": {"containers": [{"name": "c", "livenessProbe": {"httpGet": {"port": "http"}}}]}}),
                vec![],
            ),
            (
                json!({"spec": {"containers": [{"name": "c", "livenessProbe": {"httpGet": {"port": 8080}}}]}}),
                vec![],
            ),
            (
                json!({"spec": {"containers": [{"name": "c", "livenessProbe": {"httpGet": {"port": true}}}]}}),
                vec!["json: cannot unmarshal bool into Go value of type int32"],
            ),
            (
                json!({"spec": {"volumes": [{"name": "v", "configMap": {"name": "x", "nope": 1}}]}}),
                vec![r#"unknown field "spec.volumes[0].configMap.nope""#],
            ),
        ];
        for (input, want) in cases {
            let (_, issues) = run(POD, input.clone());
            assert_eq!(issues, want, "{input}");
        }
    }

    #[test]
    fn secret_data_must_be_base64() {
        let (_, issues) = run(
            ("", "v1", "Secret"),
            json!({"data": {"a": "aGVsbG8=", "b": "no!"}}),
        );
        assert_eq!(issues, ["illegal base64 data at input byte 2"]);
    }

    #[test]
    fn map_values_keep_their_path_in_unknown_field_errors() {
        let ty = type_named(
            "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
        )
        .unwrap();
        let mut v = json!({"spec": {"versions": [{"name": "v1", "schema": {"openAPIV3Schema":
            {"type": "object", "properties": {"spec": {"type": "object", "colour": "red"}}}}}]}});
        let mut out = Vec::new();
        normalize(&mut v, ty, "", &mut out);
        let got: Vec<String> = out.iter().map(|i| i.to_string()).collect();
        assert_eq!(
            got,
            [r#"unknown field "spec.versions[0].schema.openAPIV3Schema.properties.spec.colour""#]
        );
    }

    #[test]
    fn quantity_syntax_follows_the_upstream_regular_expression() {
        for ok in ["1", "500m", "1Gi", "1.5", "+1e3", "-2Ki", "1E-3"] {
            assert!(quantity_syntax_ok(ok), "{ok}");
        }
        for bad in ["", "m", "1 Gi", "lots", "1Gi1Gi1x"] {
            assert!(!quantity_syntax_ok(bad), "{bad}");
        }
    }
}
