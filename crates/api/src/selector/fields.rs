//! Field selectors (`?fieldSelector=spec.nodeName=n1,status.phase!=Failed`) and the field
//! labels each kind exposes, as upstream's per-kind `GetAttrs` functions define them.

use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldRequirement {
    pub field: String,
    pub value: String,
    pub negate: bool,
}

/// A conjunction of `field=value` / `field!=value` terms.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct FieldSelector {
    pub requirements: Vec<FieldRequirement>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

impl FieldSelector {
    pub fn is_everything(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Parses the query-string form. `\` escapes `,`, `=`, `!` and `\` in values.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let mut requirements = Vec::new();
        for term in split_unescaped(s, ',') {
            if term.trim().is_empty() {
                continue;
            }
            let (field, value, negate) = if let Some(i) = find_unescaped(&term, "!=") {
                (&term[..i], &term[i + 2..], true)
            } else if let Some(i) = find_unescaped(&term, "==") {
                (&term[..i], &term[i + 2..], false)
            } else if let Some(i) = find_unescaped(&term, "=") {
                (&term[..i], &term[i + 1..], false)
            } else {
                return Err(ParseError(format!(
                    "invalid selector: '{s}'; can't understand '{term}'"
                )));
            };
            requirements.push(FieldRequirement {
                field: field.trim().to_string(),
                value: unescape(value),
                negate,
            });
        }
        Ok(FieldSelector { requirements })
    }

    /// Checks every field label is one the resource supports: upstream's
    /// `field label not supported: X` (a 400) otherwise.
    pub fn check_supported(&self, group: &str, resource: &str) -> Result<(), ParseError> {
        let supported = supported_fields(group, resource);
        for r in &self.requirements {
            if !supported.contains(&r.field.as_str()) {
                return Err(ParseError(format!(
                    "field label not supported: {}",
                    r.field
                )));
            }
        }
        Ok(())
    }

    /// Matches against an object's field set (see [`field_set`]).
    pub fn matches(&self, fields: &[(&'static str, String)]) -> bool {
        self.requirements.iter().all(|r| {
            let got = fields
                .iter()
                .find(|(k, _)| *k == r.field)
                .map(|(_, v)| v.as_str())
                .unwrap_or("");
            (got == r.value) != r.negate
        })
    }

    /// The value a single `field=value` term requires, if the selector has one (used to route
    /// `metadata.name=x` lists to a single key).
    pub fn required_value(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.field == field && !r.negate)
            .map(|r| r.value.as_str())
    }
}

fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            cur.push(c);
            if let Some(n) = chars.next() {
                cur.push(n);
            }
        } else if c == sep {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    out.push(cur);
    out
}

fn find_unescaped(s: &str, pat: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            i += 2;
            continue;
        }
        if s[i..].starts_with(pat) {
            return Some(i);
        }
        i += 1;
    }
    None
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The field labels a resource supports besides `metadata.name` / `metadata.namespace`.
fn kind_fields(group: &str, resource: &str) -> &'static [&'static str] {
    match (group, resource) {
        ("", "pods") => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        ("", "events") => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        ("events.k8s.io", "events") => &[
            "regarding.kind",
            "regarding.namespace",
            "regarding.name",
            "regarding.uid",
            "regarding.apiVersion",
            "regarding.resourceVersion",
            "regarding.fieldPath",
            "reason",
            "reportingController",
            "type",
        ],
        ("", "nodes") => &["spec.unschedulable"],
        ("", "secrets") => &["type"],
        ("", "namespaces") => &["status.phase"],
        ("", "replicationcontrollers") | ("apps", "replicasets") => &["status.replicas"],
        ("batch", "jobs") => &["status.successful"],
        ("", "services") => &["spec.clusterIP", "spec.type"],
        ("certificates.k8s.io", "certificatesigningrequests") => &["spec.signerName"],
        _ => &[],
    }
}

/// Every field label a resource supports.
pub fn supported_fields(group: &str, resource: &str) -> Vec<&'static str> {
    let mut v = vec!["metadata.name", "metadata.namespace"];
    v.extend_from_slice(kind_fields(group, resource));
    v
}

fn str_at(obj: &Value, ptr: &str) -> String {
    match obj.pointer(ptr) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// The field label values of an object, for matching field selectors.
pub fn field_set(group: &str, resource: &str, obj: &Value) -> Vec<(&'static str, String)> {
    let mut out = vec![
        ("metadata.name", str_at(obj, "/metadata/name")),
        ("metadata.namespace", str_at(obj, "/metadata/namespace")),
    ];
    for &f in kind_fields(group, resource) {
        let v = match (resource, f) {
            ("pods", "spec.hostNetwork") => obj
                .pointer("/spec/hostNetwork")
                .and_then(Value::as_bool)
                .unwrap_or(false)
                .to_string(),
            ("nodes", "spec.unschedulable") => obj
                .pointer("/spec/unschedulable")
                .and_then(Value::as_bool)
                .unwrap_or(false)
                .to_string(),
            ("events", "source") if group.is_empty() => str_at(obj, "/source/component"),
            ("events", "reportingComponent") if group.is_empty() => {
                str_at(obj, "/reportingComponent")
            }
            ("replicationcontrollers" | "replicasets", "status.replicas") => obj
                .pointer("/status/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                .to_string(),
            ("jobs", "status.successful") => obj
                .pointer("/status/succeeded")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                .to_string(),
            _ => str_at(obj, &format!("/{}", f.replace('.', "/"))),
        };
        out.push((f, v));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn describe_pod_selector_filters_by_node_and_phase() {
        let sel =
            FieldSelector::parse("spec.nodeName=n1,status.phase!=Succeeded,status.phase!=Failed")
                .unwrap();
        sel.check_supported("", "pods").unwrap();
        let running = json!({"metadata": {"name": "a"}, "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}});
        let done = json!({"metadata": {"name": "b"}, "spec": {"nodeName": "n1"}, "status": {"phase": "Succeeded"}});
        let other = json!({"metadata": {"name": "c"}, "spec": {"nodeName": "n2"}, "status": {"phase": "Running"}});
        assert!(sel.matches(&field_set("", "pods", &running)));
        assert!(!sel.matches(&field_set("", "pods", &done)));
        assert!(!sel.matches(&field_set("", "pods", &other)));
    }

    #[test]
    fn unsupported_field_labels_are_rejected_with_upstreams_message() {
        let sel = FieldSelector::parse("spec.foo=bar").unwrap();
        assert_eq!(
            sel.check_supported("", "pods").unwrap_err().to_string(),
            "field label not supported: spec.foo"
        );
    }

    #[test]
    fn unset_booleans_and_empty_strings_match_as_upstream() {
        let node = json!({"metadata": {"name": "n"}, "spec": {}});
        let fs = field_set("", "nodes", &node);
        assert!(
            FieldSelector::parse("spec.unschedulable=false")
                .unwrap()
                .matches(&fs)
        );
        let pod = json!({"metadata": {"name": "p"}, "spec": {}});
        assert!(
            FieldSelector::parse("spec.nodeName=")
                .unwrap()
                .matches(&field_set("", "pods", &pod))
        );
    }

    #[test]
    fn escaped_separators_stay_in_values() {
        let sel = FieldSelector::parse(r"metadata.name=a\,b").unwrap();
        assert_eq!(sel.requirements[0].value, "a,b");
        assert!(FieldSelector::parse("nonsense").is_err());
    }

    #[test]
    fn event_involved_object_fields_are_selectable() {
        let ev = json!({"metadata": {"name": "e", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "nginx", "namespace": "default", "uid": "u1"},
            "source": {"component": "kubelet"}, "type": "Normal", "reason": "Pulled"});
        let fs = field_set("", "events", &ev);
        let sel = FieldSelector::parse("involvedObject.name=nginx,involvedObject.namespace=default,involvedObject.kind=Pod,involvedObject.uid=u1,source=kubelet").unwrap();
        assert!(sel.matches(&fs));
    }
}
