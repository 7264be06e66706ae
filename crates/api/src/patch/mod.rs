//! The three PATCH body types kube-apiserver accepts besides server-side apply, applied to
//! objects as JSON values with upstream's semantics and error messages:
//!
//! * `application/merge-patch+json`: RFC 7386 JSON merge patch ([`merge`]);
//! * `application/json-patch+json`: RFC 6902 JSON patch as evanphx/json-patch v4 applies it
//!   ([`json`]);
//! * `application/strategic-merge-patch+json`: strategic merge patch, driven by the schema
//!   table's patch markers ([`strategic`]).
//!
//! Errors carry the upstream message and the HTTP code upstream answers with; the apiserver
//! turns them into `Status` objects.

pub mod json;
pub mod merge;
pub mod strategic;

pub use json::json_patch;
pub use merge::merge_patch;
pub use strategic::strategic_merge;

use crate::schema::TypeSchema;
use serde_json::Value;

/// A patch that could not be applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// 400 BadRequest: the patch document itself is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// 422: the patch is well formed but does not apply to this object. Upstream answers
    /// with a generic 422 Status whose cause carries this message.
    #[error("{0}")]
    Unprocessable(String),
    /// 413: too many JSON patch operations.
    #[error("{0}")]
    TooLarge(String),
    /// 415: strategic merge patch on a type without a schema (custom resources).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Errors upstream does not classify, which it reports as 500 InternalError.
    #[error("{0}")]
    Internal(String),
}

impl PatchError {
    /// The HTTP status code upstream answers with.
    pub fn code(&self) -> u16 {
        match self {
            PatchError::BadRequest(_) => 400,
            PatchError::Unprocessable(_) => 422,
            PatchError::TooLarge(_) => 413,
            PatchError::UnsupportedMediaType(_) => 415,
            PatchError::Internal(_) => 500,
        }
    }
}

pub type Result<T, E = PatchError> = std::result::Result<T, E>;

/// A PATCH request's body type, from its Content-Type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    Strategic,
    /// `application/apply-patch+yaml`: server-side apply ([`crate::apply`]), which needs the
    /// object's managed fields and so is not applied by [`apply`].
    Apply,
}

impl PatchType {
    /// The patch type of a Content-Type header value (parameters such as `charset` ignored).
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let base = content_type.split(';').next().unwrap_or_default().trim();
        match base {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::Strategic),
            "application/apply-patch+yaml" => Some(PatchType::Apply),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            PatchType::Json => "application/json-patch+json",
            PatchType::Merge => "application/merge-patch+json",
            PatchType::Strategic => "application/strategic-merge-patch+json",
            PatchType::Apply => "application/apply-patch+yaml",
        }
    }
}

/// Applies a raw PATCH body to `original`. `ty` is the object's type; without one (custom
/// resources) strategic merge patch is refused as upstream refuses it.
pub fn apply(
    patch_type: PatchType,
    original: &Value,
    body: &[u8],
    ty: Option<&'static TypeSchema>,
) -> Result<Value> {
    match patch_type {
        PatchType::Json => {
            let ops: Value =
                serde_json::from_slice(body).map_err(|e| PatchError::BadRequest(e.to_string()))?;
            json_patch(original, &ops)
        }
        PatchType::Merge => {
            let patch: Value = serde_json::from_slice(body)
                .map_err(|_| PatchError::BadRequest(merge::BAD_PATCH.into()))?;
            merge_patch(original, &patch)
        }
        PatchType::Strategic => {
            let Some(ty) = ty else {
                return Err(PatchError::UnsupportedMediaType(
                    "the body of the request was in an unknown format - accepted media types include: \
                     application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
                        .into(),
                ));
            };
            let patch: Value =
                serde_json::from_slice(body).map_err(|e| PatchError::BadRequest(e.to_string()))?;
            strategic_merge(original, &patch, ty)
        }
        PatchType::Apply => Err(PatchError::Internal(
            "apply patches are merged by server-side apply, not as a patch document".into(),
        )),
    }
}

/// Go's `%v` rendering of a decoded JSON value, as upstream error messages print it:
/// `map[name:x ports:[map[containerPort:80]]]`.
pub(crate) fn go_fmt(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        // Go decodes every JSON number as float64 and prints integral ones without a point.
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (_, Some(f)) if f.fract() == 0.0 && f.abs() < 1e21 => format!("{f:.0}"),
            _ => n.to_string(),
        },
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(go_fmt).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Object(m) => {
            let parts: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k}:{}", go_fmt(v)))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_types_name_patch_types() {
        let cases = [
            ("application/json-patch+json", Some(PatchType::Json)),
            (
                "application/merge-patch+json; charset=utf-8",
                Some(PatchType::Merge),
            ),
            (
                "application/strategic-merge-patch+json",
                Some(PatchType::Strategic),
            ),
            ("application/apply-patch+yaml", Some(PatchType::Apply)),
            ("application/json", None),
        ];
        for (ct, want) in cases {
            assert_eq!(PatchType::from_content_type(ct), want, "{ct}");
        }
    }

    #[test]
    fn raw_bodies_are_parsed_and_applied_by_type() {
        let pod = json!({"metadata": {"name": "p", "labels": {"a": "1"}}});
        let ty = crate::schema::kind_type("", "v1", "Pod");
        let merged = apply(
            PatchType::Merge,
            &pod,
            br#"{"metadata":{"labels":{"a":null,"b":"2"}}}"#,
            ty,
        )
        .unwrap();
        assert_eq!(merged["metadata"]["labels"], json!({"b": "2"}));
        let patched = apply(
            PatchType::Json,
            &pod,
            br#"[{"op":"add","path":"/metadata/labels/c","value":"3"}]"#,
            ty,
        )
        .unwrap();
        assert_eq!(patched["metadata"]["labels"], json!({"a": "1", "c": "3"}));
        let err = apply(PatchType::Strategic, &pod, b"{}", None).unwrap_err();
        assert_eq!(err.code(), 415);
        assert_eq!(
            apply(PatchType::Merge, &pod, b"{nope", ty)
                .unwrap_err()
                .code(),
            400
        );
        assert_eq!(
            apply(PatchType::Json, &pod, b"[{", ty).unwrap_err().code(),
            400
        );
    }

    #[test]
    fn values_print_as_go_prints_them() {
        let v =
            json!({"name": "x", "ports": [{"containerPort": 80}], "ok": true, "n": null, "f": 1.5});
        assert_eq!(
            go_fmt(&v),
            "map[f:1.5 n:<nil> name:x ok:true ports:[map[containerPort:80]]]"
        );
    }
}
