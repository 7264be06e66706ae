//! API errors: the `Status` objects every failure turns into, and field errors for 422 Invalid.
//!
//! Messages, reasons and codes follow upstream `k8s.io/apimachinery/pkg/api/errors` and
//! `k8s.io/apimachinery/pkg/util/validation/field` word for word, because kubectl prints them.

use serde_json::{Value, json};

/// The kind of a field validation error; its `Display` is upstream's `ErrorType.String()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldErrorType {
    NotFound,
    Required,
    Duplicate,
    Invalid,
    NotSupported,
    Forbidden,
    TooLong,
    TooMany,
    Internal,
    TypeInvalid,
}

impl FieldErrorType {
    /// The `StatusCause.reason` (upstream `CauseType`).
    pub fn cause_type(self) -> &'static str {
        match self {
            FieldErrorType::NotFound => "FieldValueNotFound",
            FieldErrorType::Required => "FieldValueRequired",
            FieldErrorType::Duplicate => "FieldValueDuplicate",
            FieldErrorType::Invalid => "FieldValueInvalid",
            FieldErrorType::NotSupported => "FieldValueNotSupported",
            FieldErrorType::Forbidden => "FieldValueForbidden",
            FieldErrorType::TooLong => "FieldValueTooLong",
            FieldErrorType::TooMany => "FieldValueTooMany",
            FieldErrorType::Internal => "InternalError",
            FieldErrorType::TypeInvalid => "FieldValueTypeInvalid",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FieldErrorType::NotFound => "Not found",
            FieldErrorType::Required => "Required value",
            FieldErrorType::Duplicate => "Duplicate value",
            FieldErrorType::Invalid => "Invalid value",
            FieldErrorType::NotSupported => "Unsupported value",
            FieldErrorType::Forbidden => "Forbidden",
            FieldErrorType::TooLong => "Too long",
            FieldErrorType::TooMany => "Too many",
            FieldErrorType::Internal => "Internal error",
            FieldErrorType::TypeInvalid => "Invalid value",
        }
    }
}

/// One validation failure at a field path such as `spec.containers[0].image`.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    pub kind: FieldErrorType,
    pub field: String,
    /// The offending value; None means "omit the value from the message".
    pub bad_value: Option<Value>,
    pub detail: String,
}

impl FieldError {
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            kind: FieldErrorType::Required,
            field: field.into(),
            bad_value: None,
            detail: detail.into(),
        }
    }

    pub fn invalid(
        field: impl Into<String>,
        value: impl Into<Value>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            kind: FieldErrorType::Invalid,
            field: field.into(),
            bad_value: Some(value.into()),
            detail: detail.into(),
        }
    }

    pub fn not_supported<S: AsRef<str>>(
        field: impl Into<String>,
        value: impl Into<Value>,
        supported: &[S],
    ) -> Self {
        let detail = if supported.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = supported.iter().map(|s| go_quote(s.as_ref())).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        Self {
            kind: FieldErrorType::NotSupported,
            field: field.into(),
            bad_value: Some(value.into()),
            detail,
        }
    }

    pub fn duplicate(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self {
            kind: FieldErrorType::Duplicate,
            field: field.into(),
            bad_value: Some(value.into()),
            detail: String::new(),
        }
    }

    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            kind: FieldErrorType::Forbidden,
            field: field.into(),
            bad_value: None,
            detail: detail.into(),
        }
    }

    pub fn not_found(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self {
            kind: FieldErrorType::NotFound,
            field: field.into(),
            bad_value: Some(value.into()),
            detail: String::new(),
        }
    }

    /// `Too long: may not be more than N bytes` (upstream 1.33 wording).
    pub fn too_long(field: impl Into<String>, max: usize) -> Self {
        Self {
            kind: FieldErrorType::TooLong,
            field: field.into(),
            bad_value: None,
            detail: format!("may not be more than {max} bytes"),
        }
    }

    /// `Too many: N: must have at most M items`.
    pub fn too_many(field: impl Into<String>, actual: usize, max: usize) -> Self {
        Self {
            kind: FieldErrorType::TooMany,
            field: field.into(),
            bad_value: Some(Value::from(actual)),
            detail: format!("must have at most {max} items"),
        }
    }

    pub fn internal(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            kind: FieldErrorType::Internal,
            field: field.into(),
            bad_value: None,
            detail: detail.into(),
        }
    }

    /// Upstream `field.Error.ErrorBody()`: the message without the field path.
    pub fn body(&self) -> String {
        let mut s = match (&self.kind, &self.bad_value) {
            (
                FieldErrorType::Required
                | FieldErrorType::Forbidden
                | FieldErrorType::TooLong
                | FieldErrorType::Internal,
                _,
            )
            | (_, None) => self.kind.as_str().to_string(),
            (_, Some(v)) => format!("{}: {}", self.kind.as_str(), go_value(v)),
        };
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

/// Formats a value the way Go's `%q` / `%v` would print it in a field error.
fn go_value(v: &Value) -> String {
    match v {
        Value::Null => "\"null\"".to_string(),
        Value::String(s) => go_quote(s),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => other.to_string(),
    }
}

/// Go's `strconv.Quote` for the printable strings validation reports.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Builds field paths: `Path::new("spec").child("containers").index(0).child("image")`
/// displays as `spec.containers[0].image`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Path(String);

impl Path {
    pub fn new(root: &str) -> Self {
        Path(root.to_string())
    }

    pub fn child(&self, name: &str) -> Self {
        if self.0.is_empty() {
            Path(name.to_string())
        } else {
            Path(format!("{}.{}", self.0, name))
        }
    }

    pub fn index(&self, i: usize) -> Self {
        Path(format!("{}[{}]", self.0, i))
    }

    /// A map key: `metadata.labels[app]`.
    pub fn key(&self, k: &str) -> Self {
        Path(format!("{}[{}]", self.0, k))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Path> for String {
    fn from(p: Path) -> String {
        p.0
    }
}

impl From<&Path> for String {
    fn from(p: &Path) -> String {
        p.0.clone()
    }
}

/// Upstream `metav1.StatusReason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Unauthorized,
    Forbidden,
    NotFound,
    AlreadyExists,
    Conflict,
    Gone,
    Invalid,
    ServerTimeout,
    Timeout,
    TooManyRequests,
    BadRequest,
    MethodNotAllowed,
    NotAcceptable,
    RequestEntityTooLarge,
    UnsupportedMediaType,
    InternalError,
    Expired,
    ServiceUnavailable,
    /// `StatusReasonUnknown` (""): errors upstream never classified; kubectl prints them as
    /// `Error from server: <message>`.
    Unknown,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Unauthorized => "Unauthorized",
            Reason::Forbidden => "Forbidden",
            Reason::NotFound => "NotFound",
            Reason::AlreadyExists => "AlreadyExists",
            Reason::Conflict => "Conflict",
            Reason::Gone => "Gone",
            Reason::Invalid => "Invalid",
            Reason::ServerTimeout => "ServerTimeout",
            Reason::Timeout => "Timeout",
            Reason::TooManyRequests => "TooManyRequests",
            Reason::BadRequest => "BadRequest",
            Reason::MethodNotAllowed => "MethodNotAllowed",
            Reason::NotAcceptable => "NotAcceptable",
            Reason::RequestEntityTooLarge => "RequestEntityTooLarge",
            Reason::UnsupportedMediaType => "UnsupportedMediaType",
            Reason::InternalError => "InternalError",
            Reason::Expired => "Expired",
            Reason::ServiceUnavailable => "ServiceUnavailable",
            Reason::Unknown => "",
        }
    }
}

/// One entry of `Status.details.causes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cause {
    pub reason: String,
    pub message: String,
    pub field: String,
}

/// A failed API call, rendered as a `v1 Status` in exactly one place (the apiserver).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: Reason,
    pub message: String,
    pub name: String,
    pub group: String,
    /// Details kind: a resource for most errors (`pods`), the Kind for Invalid (`Pod`).
    pub kind: String,
    pub causes: Vec<Cause>,
    /// Seconds a client should wait before retrying (429, 503, 504).
    pub retry_after_seconds: Option<u32>,
}

pub type Result<T, E = ApiError> = std::result::Result<T, E>;

/// `resource.group` as upstream's `GroupResource.String()`.
pub fn qualified(group: &str, name: &str) -> String {
    if group.is_empty() {
        name.to_string()
    } else {
        format!("{name}.{group}")
    }
}

impl ApiError {
    pub fn new(code: u16, reason: Reason, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            name: String::new(),
            group: String::new(),
            kind: String::new(),
            causes: Vec::new(),
            retry_after_seconds: None,
        }
    }

    fn with_details(mut self, group: &str, kind: &str, name: &str) -> Self {
        self.group = group.to_string();
        self.kind = kind.to_string();
        self.name = name.to_string();
        self
    }

    /// `pods "nope" not found`
    pub fn not_found(group: &str, resource: &str, name: &str) -> Self {
        Self::new(
            404,
            Reason::NotFound,
            format!(
                "{} {} not found",
                qualified(group, resource),
                go_quote(name)
            ),
        )
        .with_details(group, resource, name)
    }

    /// `pods "nginx" already exists`
    pub fn already_exists(group: &str, resource: &str, name: &str) -> Self {
        Self::new(
            409,
            Reason::AlreadyExists,
            format!(
                "{} {} already exists",
                qualified(group, resource),
                go_quote(name)
            ),
        )
        .with_details(group, resource, name)
    }

    /// Optimistic concurrency failure on update.
    pub fn conflict(group: &str, resource: &str, name: &str, why: &str) -> Self {
        Self::new(
            409,
            Reason::Conflict,
            format!(
                "Operation cannot be fulfilled on {} {}: {}",
                qualified(group, resource),
                go_quote(name),
                why
            ),
        )
        .with_details(group, resource, name)
    }

    /// The standard stale-resourceVersion conflict.
    pub fn conflict_modified(group: &str, resource: &str, name: &str) -> Self {
        Self::conflict(
            group,
            resource,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422: `Pod "x" is invalid: spec.containers[0].image: Required value`.
    pub fn invalid(group: &str, kind: &str, name: &str, errs: &[FieldError]) -> Self {
        let qk = qualified(group, kind);
        let message = match errs.len() {
            0 => format!("{} {} is invalid", qk, go_quote(name)),
            1 => format!("{} {} is invalid: {}", qk, go_quote(name), errs[0]),
            _ => {
                let all: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
                format!("{} {} is invalid: [{}]", qk, go_quote(name), all.join(", "))
            }
        };
        let mut e = Self::new(422, Reason::Invalid, message).with_details(group, kind, name);
        e.causes = errs
            .iter()
            .map(|fe| Cause {
                reason: fe.kind.cause_type().to_string(),
                message: fe.body(),
                field: fe.field.clone(),
            })
            .collect();
        e
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, Reason::BadRequest, message)
    }

    pub fn unauthorized() -> Self {
        Self::new(401, Reason::Unauthorized, "Unauthorized")
    }

    /// `pods "x" is forbidden: why` (or `pods is forbidden: why` without a name).
    pub fn forbidden(group: &str, resource: &str, name: &str, why: &str) -> Self {
        let target = if name.is_empty() {
            qualified(group, resource)
        } else {
            format!("{} {}", qualified(group, resource), go_quote(name))
        };
        Self::new(
            403,
            Reason::Forbidden,
            format!("{target} is forbidden: {why}"),
        )
        .with_details(group, resource, name)
    }

    pub fn method_not_supported(group: &str, resource: &str, action: &str) -> Self {
        Self::new(
            405,
            Reason::MethodNotAllowed,
            format!(
                "{} is not supported on resources of kind {}",
                action,
                go_quote(&qualified(group, resource))
            ),
        )
        .with_details(group, resource, "")
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            Reason::MethodNotAllowed,
            "the server does not allow this method on the requested resource",
        )
    }

    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(406, Reason::NotAcceptable, message)
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            Reason::UnsupportedMediaType,
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf; got {content_type}"
            ),
        )
    }

    pub fn request_entity_too_large(message: impl Into<String>) -> Self {
        Self::new(413, Reason::RequestEntityTooLarge, message)
    }

    /// 410 Expired, for watches and continues from a compacted or too old resourceVersion.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, Reason::Expired, message)
    }

    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, Reason::Gone, message)
    }

    pub fn internal(message: impl std::fmt::Display) -> Self {
        Self::new(
            500,
            Reason::InternalError,
            format!("Internal error occurred: {message}"),
        )
    }

    pub fn server_timeout(group: &str, resource: &str, operation: &str, retry_after: u32) -> Self {
        let mut e = Self::new(
            504,
            Reason::Timeout,
            format!(
                "The {} operation against {} could not be completed at this time, please try again.",
                operation,
                qualified(group, resource)
            ),
        )
        .with_details(group, resource, "");
        e.retry_after_seconds = Some(retry_after);
        e
    }

    pub fn too_many_requests(message: impl Into<String>, retry_after: u32) -> Self {
        let mut e = Self::new(429, Reason::TooManyRequests, message);
        e.retry_after_seconds = Some(retry_after);
        e
    }

    pub fn service_unavailable(message: impl Into<String>) -> Self {
        Self::new(503, Reason::ServiceUnavailable, message)
    }

    /// Adds a cause to the details.
    pub fn with_cause(mut self, reason: &str, message: &str, field: &str) -> Self {
        self.causes.push(Cause {
            reason: reason.to_string(),
            message: message.to_string(),
            field: field.to_string(),
        });
        self
    }

    /// The `v1 Status` object clients receive.
    pub fn to_status(&self) -> Value {
        let mut details = serde_json::Map::new();
        if !self.name.is_empty() {
            details.insert("name".into(), json!(self.name));
        }
        if !self.group.is_empty() {
            details.insert("group".into(), json!(self.group));
        }
        if !self.kind.is_empty() {
            details.insert("kind".into(), json!(self.kind));
        }
        if !self.causes.is_empty() {
            let causes: Vec<Value> = self
                .causes
                .iter()
                .map(|c| {
                    let mut m = serde_json::Map::new();
                    if !c.reason.is_empty() {
                        m.insert("reason".into(), json!(c.reason));
                    }
                    if !c.message.is_empty() {
                        m.insert("message".into(), json!(c.message));
                    }
                    if !c.field.is_empty() {
                        m.insert("field".into(), json!(c.field));
                    }
                    Value::Object(m)
                })
                .collect();
            details.insert("causes".into(), Value::Array(causes));
        }
        if let Some(s) = self.retry_after_seconds {
            details.insert("retryAfterSeconds".into(), json!(s));
        }
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason.as_str(),
            "code": self.code,
        });
        if !details.is_empty() {
            status["details"] = Value::Object(details);
        }
        if self.reason == Reason::Unknown {
            // omitempty: an unclassified error carries no reason at all.
            if let Some(m) = status.as_object_mut() {
                m.remove("reason");
            }
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_message_matches_upstream() {
        let e = ApiError::not_found("", "pods", "nope");
        assert_eq!(e.message, r#"pods "nope" not found"#);
        let e = ApiError::not_found("apps", "deployments", "web");
        assert_eq!(e.message, r#"deployments.apps "web" not found"#);
        assert_eq!(e.to_status()["details"]["group"], "apps");
    }

    #[test]
    fn invalid_single_and_many_errors_read_as_upstream() {
        let one = ApiError::invalid(
            "",
            "Pod",
            "x",
            &[FieldError::required("spec.containers[0].image", "")],
        );
        assert_eq!(
            one.message,
            r#"Pod "x" is invalid: spec.containers[0].image: Required value"#
        );
        let two = ApiError::invalid(
            "apps",
            "Deployment",
            "d",
            &[
                FieldError::invalid("metadata.name", "A", "bad"),
                FieldError::not_supported(
                    "spec.strategy.type",
                    "X",
                    &["Recreate", "RollingUpdate"],
                ),
            ],
        );
        assert_eq!(
            two.message,
            r#"Deployment.apps "d" is invalid: [metadata.name: Invalid value: "A": bad, spec.strategy.type: Unsupported value: "X": supported values: "Recreate", "RollingUpdate"]"#
        );
        let st = two.to_status();
        assert_eq!(st["code"], 422);
        assert_eq!(st["details"]["causes"][0]["reason"], "FieldValueInvalid");
        assert_eq!(st["details"]["causes"][1]["field"], "spec.strategy.type");
    }

    #[test]
    fn numbers_in_field_errors_are_not_quoted() {
        let e = FieldError::invalid("spec.replicas", -1, "must be greater than or equal to 0");
        assert_eq!(
            e.to_string(),
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        );
    }
}
