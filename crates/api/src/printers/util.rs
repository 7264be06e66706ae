//! Reading loosely typed objects the way Go reads typed ones: an absent field, a null or a value
//! of the wrong type is the field's zero value. Plus the formatting helpers upstream's printers
//! share (label sets, label selectors, container lists, access modes).

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde_json::Value;

use super::quantity;

static EMPTY: Vec<Value> = Vec::new();

/// The value at a JSON pointer unless it is null.
pub(super) fn get<'a>(v: &'a Value, ptr: &str) -> Option<&'a Value> {
    v.pointer(ptr).filter(|x| !x.is_null())
}

pub(super) fn opt_str<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(Value::as_str)
}

/// A string field, "" when absent.
pub(super) fn str_at<'a>(v: &'a Value, ptr: &str) -> &'a str {
    opt_str(v, ptr).unwrap_or("")
}

pub(super) fn opt_int(v: &Value, ptr: &str) -> Option<i64> {
    v.pointer(ptr).and_then(as_int)
}

/// An integer field, 0 when absent.
pub(super) fn int_at(v: &Value, ptr: &str) -> i64 {
    opt_int(v, ptr).unwrap_or(0)
}

pub(super) fn as_int(v: &Value) -> Option<i64> {
    v.as_i64()
        .or_else(|| v.as_u64().map(|u| i64::try_from(u).unwrap_or(i64::MAX)))
}

pub(super) fn opt_bool(v: &Value, ptr: &str) -> Option<bool> {
    v.pointer(ptr).and_then(Value::as_bool)
}

/// A boolean field, false when absent.
pub(super) fn bool_at(v: &Value, ptr: &str) -> bool {
    opt_bool(v, ptr).unwrap_or(false)
}

/// An array field, empty when absent.
pub(super) fn arr_at<'a>(v: &'a Value, ptr: &str) -> &'a [Value] {
    v.pointer(ptr).and_then(Value::as_array).unwrap_or(&EMPTY)
}

/// How many entries a map (or list) field has.
pub(super) fn len_at(v: &Value, ptr: &str) -> i64 {
    let n = match v.pointer(ptr) {
        Some(Value::Object(m)) => m.len(),
        Some(Value::Array(a)) => a.len(),
        _ => 0,
    };
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A `metav1.Time` or `metav1.MicroTime` field; None is Go's zero time.
pub(super) fn time_at(v: &Value, ptr: &str) -> Option<Timestamp> {
    opt_str(v, ptr).and_then(|s| s.parse().ok())
}

/// Whether a pointer field is set (present and not null).
pub(super) fn has(v: &Value, ptr: &str) -> bool {
    get(v, ptr).is_some()
}

/// A metadata annotation (keys contain '/', so no JSON pointer).
pub(super) fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.get("metadata")?.get("annotations")?.get(key)?.as_str()
}

/// The first of the strings that is not empty.
pub(super) fn first_non_empty<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.is_empty() { b } else { a }
}

/// `labels.FormatLabels`: `k=v` pairs sorted by key, or `<none>`.
pub(super) fn format_labels(map: Option<&Value>) -> String {
    let s = label_set_string(map);
    if s.is_empty() {
        "<none>".to_string()
    } else {
        s
    }
}

/// `labels.Set.String()`: `k=v` pairs sorted by key, joined by commas.
pub(super) fn label_set_string(map: Option<&Value>) -> String {
    let Some(Value::Object(m)) = map else {
        return String::new();
    };
    let sorted: BTreeMap<&str, &str> = m
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or("")))
        .collect();
    sorted
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `metav1.LabelSelectorAsSelector(sel).String()`: requirements sorted by key, `k=v`,
/// `k in (a,b)`, `k notin (a,b)`, `k`, `!k`, joined by commas. A nil or empty selector is "".
/// Err when the selector would not convert (bad operator, key or value).
pub(super) fn label_selector_string(sel: Option<&Value>) -> Result<String, ()> {
    let Some(sel) = sel.filter(|s| !s.is_null()) else {
        return Ok(String::new());
    };
    let mut reqs: Vec<(String, String)> = Vec::new();
    if let Some(Value::Object(labels)) = sel.get("matchLabels") {
        for (k, v) in labels {
            let v = v.as_str().unwrap_or("");
            check_label_key(k)?;
            check_label_value(v)?;
            reqs.push((k.clone(), format!("{k}={v}")));
        }
    }
    for expr in sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .unwrap_or(&EMPTY)
    {
        let key = expr.get("key").and_then(Value::as_str).unwrap_or("");
        let op = expr.get("operator").and_then(Value::as_str).unwrap_or("");
        let mut values: Vec<&str> = expr
            .get("values")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|v| v.as_str().unwrap_or("")).collect())
            .unwrap_or_default();
        check_label_key(key)?;
        let text = match op {
            "In" | "NotIn" => {
                if values.is_empty() {
                    return Err(());
                }
                for v in &values {
                    check_label_value(v)?;
                }
                values.sort_unstable();
                let word = if op == "In" { "in" } else { "notin" };
                format!("{key} {word} ({})", values.join(","))
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    return Err(());
                }
                if op == "Exists" {
                    key.to_string()
                } else {
                    format!("!{key}")
                }
            }
            _ => return Err(()),
        };
        reqs.push((key.to_string(), text));
    }
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(reqs
        .into_iter()
        .map(|(_, t)| t)
        .collect::<Vec<_>>()
        .join(","))
}

/// `metav1.FormatLabelSelector`: the selector, `<none>` when it selects by nothing, `<error>`
/// when it does not convert.
pub(super) fn format_label_selector(sel: Option<&Value>) -> String {
    match label_selector_string(sel) {
        Err(()) => "<error>".to_string(),
        Ok(s) if s.is_empty() => "<none>".to_string(),
        Ok(s) => s,
    }
}

/// A label key: an optional DNS-subdomain prefix and '/', then a name of at most 63 characters.
fn check_label_key(key: &str) -> Result<(), ()> {
    let name = match key.split_once('/') {
        Some((prefix, name)) => {
            if prefix.is_empty() || prefix.len() > 253 || !is_dns_subdomain(prefix) {
                return Err(());
            }
            name
        }
        None => key,
    };
    if name.is_empty() || !is_label_name(name) {
        Err(())
    } else {
        Ok(())
    }
}

fn check_label_value(v: &str) -> Result<(), ()> {
    if v.is_empty() || is_label_name(v) {
        Ok(())
    } else {
        Err(())
    }
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, at most 63 characters.
fn is_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

fn is_dns_subdomain(s: &str) -> bool {
    s.split('.').all(|label| {
        let b = label.as_bytes();
        !b.is_empty()
            && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
            && (b[b.len() - 1].is_ascii_lowercase() || b[b.len() - 1].is_ascii_digit())
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
    })
}

/// The generated Go `String()` of a `*metav1.LabelSelector`, which a few printers show as is.
pub(super) fn label_selector_go_string(sel: &Value) -> String {
    let mut exprs = String::from("[]LabelSelectorRequirement{");
    for e in sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .unwrap_or(&EMPTY)
    {
        let values: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|v| v.as_str().unwrap_or("")).collect())
            .unwrap_or_default();
        exprs.push_str(&format!(
            "LabelSelectorRequirement{{Key:{},Operator:{},Values:[{}],}},",
            e.get("key").and_then(Value::as_str).unwrap_or(""),
            e.get("operator").and_then(Value::as_str).unwrap_or(""),
            values.join(" ")
        ));
    }
    exprs.push('}');
    let mut labels = String::from("map[string]string{");
    if let Some(Value::Object(m)) = sel.get("matchLabels") {
        let sorted: BTreeMap<&str, &str> = m
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or("")))
            .collect();
        for (k, v) in sorted {
            labels.push_str(&format!("{k}: {v},"));
        }
    }
    labels.push('}');
    format!("&LabelSelector{{MatchLabels:{labels},MatchExpressions:{exprs},}}")
}

/// Container names and images, each joined by commas (`layoutContainerCells`).
pub(super) fn layout_containers(containers: &[Value]) -> (String, String) {
    let names: Vec<&str> = containers
        .iter()
        .map(|c| c.get("name").and_then(Value::as_str).unwrap_or(""))
        .collect();
    let images: Vec<&str> = containers
        .iter()
        .map(|c| c.get("image").and_then(Value::as_str).unwrap_or(""))
        .collect();
    (names.join(","), images.join(","))
}

/// `helper.GetAccessModesAsString`: RWO, ROX, RWX, RWOP in that order, each once.
pub(super) fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| has(mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

/// `intstr.IntOrString.String()`.
pub(super) fn int_or_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => as_int(other).unwrap_or(0).to_string(),
    }
}

/// `printBoolPtr`: "True", "False" or "<unset>".
pub(super) fn print_bool_ptr(b: Option<bool>) -> String {
    match b {
        Some(true) => "True".to_string(),
        Some(false) => "False".to_string(),
        None => "<unset>".to_string(),
    }
}

/// `resource.Quantity.String()` of a quantity field; "0" when absent (the zero Quantity).
pub(super) fn quantity_at(v: &Value, ptr: &str) -> String {
    quantity_or(v.pointer(ptr), "0")
}

/// `(*resource.Quantity).String()` of a pointer field; `<nil>` when absent.
pub(super) fn quantity_ptr_at(v: &Value, ptr: &str) -> String {
    quantity_or(v.pointer(ptr), "<nil>")
}

pub(super) fn quantity_or(v: Option<&Value>, absent: &str) -> String {
    match v {
        Some(Value::String(s)) => quantity::canonical(s),
        Some(Value::Number(n)) => quantity::canonical(&n.to_string()),
        _ => absent.to_string(),
    }
}

/// `net.JoinHostPort`: IPv6 addresses in brackets.
pub(super) fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `fmt.Sprintf("%s + %d more...")` lists and `<unset>` for an empty one (`listWithMoreString`).
pub(super) fn list_with_more(list: &[String], more: bool, count: usize, max: usize) -> String {
    let ret = list.join(",");
    if more {
        return format!("{ret} + {} more...", count.saturating_sub(max));
    }
    if ret.is_empty() {
        "<unset>".to_string()
    } else {
        ret
    }
}
