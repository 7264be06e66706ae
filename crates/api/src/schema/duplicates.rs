//! Duplicate keys in request bodies. `serde_json` keeps the last of two equal keys silently;
//! upstream's strict decoders report them (`duplicate field "spec.paused"` for JSON,
//! `line 14: key "paused" already set in map` for YAML), so the raw body is scanned for them,
//! and for the order in which its fields appear, which is the order upstream reports strict
//! decoding problems in.

use std::collections::{HashMap, HashSet};

/// One key repeated within an object of a body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Duplicate {
    /// The field path as strict decoding errors print it (`spec.containers[0].image`); empty
    /// for YAML, whose messages carry lines instead.
    pub path: String,
    pub key: String,
    /// 1-based line of the repeated key.
    pub line: usize,
    /// Position among all keys of the body, in document order.
    pub ordinal: usize,
}

/// What a body's scan found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BodyKeys {
    /// Ordinal of each field path's first appearance.
    pub order: HashMap<String, usize>,
    pub duplicates: Vec<Duplicate>,
}

/// Bodies nested deeper than this are not scanned (the JSON parser refuses them anyway).
const MAX_DEPTH: usize = 512;

enum Frame {
    Object {
        prefix: String,
        keys: HashSet<String>,
    },
    Array {
        prefix: String,
        index: usize,
    },
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Scans a JSON body. A body that is not valid JSON yields what was seen before the error;
/// the real parser reports the error itself.
pub fn scan_json(body: &[u8]) -> BodyKeys {
    let mut out = BodyKeys::default();
    let mut stack: Vec<Frame> = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let mut ordinal = 0;
    // The path a value about to start will have.
    let mut pending: Option<String> = Some(String::new());
    while i < body.len() {
        let c = body[i];
        match c {
            b'\n' => {
                line += 1;
                i += 1;
            }
            b' ' | b'\t' | b'\r' | b',' | b':' => i += 1,
            b'{' | b'[' => {
                if stack.len() >= MAX_DEPTH {
                    return out;
                }
                let prefix = pending.take().unwrap_or_default();
                stack.push(if c == b'{' {
                    Frame::Object {
                        prefix,
                        keys: HashSet::new(),
                    }
                } else {
                    Frame::Array { prefix, index: 0 }
                });
                i += 1;
                pending = next_element_path(&mut stack);
            }
            b'}' | b']' => {
                stack.pop();
                i += 1;
                advance_array(&mut stack);
                pending = next_element_path(&mut stack);
            }
            b'"' => {
                let start = i + 1;
                let mut j = start;
                let mut escaped = false;
                while j < body.len() {
                    match body[j] {
                        b'\\' if !escaped => escaped = true,
                        b'"' if !escaped => break,
                        b'\n' => {
                            line += 1;
                            escaped = false
                        }
                        _ => escaped = false,
                    }
                    j += 1;
                }
                if j >= body.len() {
                    return out;
                }
                let raw = &body[start..j];
                i = j + 1;
                // A string is a key when a ':' follows.
                let mut k = i;
                while k < body.len() && matches!(body[k], b' ' | b'\t' | b'\r' | b'\n') {
                    k += 1;
                }
                let is_key = body.get(k) == Some(&b':')
                    && matches!(stack.last(), Some(Frame::Object { .. }));
                if is_key {
                    let key: String = serde_json::from_slice::<String>(
                        &[b"\"".as_slice(), raw, b"\"".as_slice()].concat(),
                    )
                    .unwrap_or_else(|_| String::from_utf8_lossy(raw).into_owned());
                    if let Some(Frame::Object { prefix, keys }) = stack.last_mut() {
                        let path = join(prefix, &key);
                        if !keys.insert(key.clone()) {
                            out.duplicates.push(Duplicate {
                                path: path.clone(),
                                key,
                                line,
                                ordinal,
                            });
                        }
                        out.order.entry(path.clone()).or_insert(ordinal);
                        ordinal += 1;
                        pending = Some(path);
                    }
                } else {
                    advance_array(&mut stack);
                    pending = next_element_path(&mut stack);
                }
            }
            _ => {
                // A number or literal: skip to the next delimiter.
                while i < body.len() && !matches!(body[i], b',' | b'}' | b']' | b'\n' | b' ') {
                    i += 1;
                }
                advance_array(&mut stack);
                pending = next_element_path(&mut stack);
            }
        }
    }
    out
}

/// After a value inside an array, the next element gets the next index.
fn advance_array(stack: &mut [Frame]) {
    if let Some(Frame::Array { index, .. }) = stack.last_mut() {
        *index += 1;
    }
}

fn next_element_path(stack: &mut [Frame]) -> Option<String> {
    match stack.last() {
        Some(Frame::Array { prefix, index }) => Some(format!("{prefix}[{index}]")),
        _ => None,
    }
}

/// Scans a block-style YAML body for keys repeated within one mapping, as yaml.v2's strict
/// decoder reports them. Flow collections (`{a: 1}`) and block scalars are skipped over.
pub fn scan_yaml(body: &[u8]) -> Vec<Duplicate> {
    let text = String::from_utf8_lossy(body);
    let mut out = Vec::new();
    // (indent of the mapping's keys, keys seen)
    let mut stack: Vec<(usize, HashSet<String>)> = Vec::new();
    let mut block_scalar_indent: Option<usize> = None;
    let mut ordinal = 0;
    for (n, raw) in text.lines().enumerate() {
        let line = n + 1;
        let trimmed = raw.trim_start();
        let mut indent = raw.len() - trimmed.len();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some(bi) = block_scalar_indent {
            if indent > bi {
                continue;
            }
            block_scalar_indent = None;
        }
        if trimmed.starts_with("---") || trimmed.starts_with("...") {
            stack.clear();
            continue;
        }
        let mut rest = trimmed;
        let mut new_item = false;
        while let Some(r) = rest
            .strip_prefix("- ")
            .or_else(|| (rest == "-").then_some(""))
        {
            new_item = true;
            indent += rest.len() - r.len();
            rest = r.trim_start_matches(' ');
            indent += r.len() - rest.len();
        }
        if new_item {
            while stack.last().is_some_and(|(i, _)| *i >= indent) {
                stack.pop();
            }
        }
        let Some(key) = yaml_key(rest) else {
            continue;
        };
        while stack.last().is_some_and(|(i, _)| *i > indent) {
            stack.pop();
        }
        if stack.last().is_none_or(|(i, _)| *i < indent) {
            stack.push((indent, HashSet::new()));
        }
        if let Some((_, keys)) = stack.last_mut()
            && !keys.insert(key.clone())
        {
            out.push(Duplicate {
                path: String::new(),
                key: key.clone(),
                line,
                ordinal,
            });
        }
        ordinal += 1;
        let value = rest[rest.find(':').map_or(rest.len(), |p| p + 1)..].trim();
        if value.starts_with('|') || value.starts_with('>') {
            block_scalar_indent = Some(indent);
        }
    }
    out
}

/// The key of a `key: value` line, unquoted.
fn yaml_key(s: &str) -> Option<String> {
    if s.starts_with('{') || s.starts_with('[') {
        return None;
    }
    if let Some(q) = s.strip_prefix('"').or_else(|| s.strip_prefix('\'')) {
        let quote = s.as_bytes()[0] as char;
        let end = q.find(quote)?;
        let after = &q[end + 1..];
        return after
            .trim_start()
            .starts_with(':')
            .then(|| q[..end].to_string());
    }
    let colon = s
        .find(": ")
        .or_else(|| s.ends_with(':').then(|| s.len() - 1))?;
    let key = s[..colon].trim_end();
    if key.is_empty() || key.contains('#') {
        return None;
    }
    Some(key.to_string())
}

/// yaml.v2's message for the duplicates, one line each.
pub fn yaml_duplicate_lines(dups: &[Duplicate]) -> Vec<String> {
    dups.iter()
        .map(|d| {
            format!(
                "line {}: key {} already set in map",
                d.line,
                crate::error::go_quote(&d.key)
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_duplicates_carry_paths_lines_and_document_order() {
        let body = br#"{
  "metadata": {"name": "a", "name": "b"},
  "spec": {
    "paused": true,
    "paused": false,
    "containers": [{"name": "c", "image": "x", "image": "y"}]
  }
}"#;
        let s = scan_json(body);
        let got: Vec<(&str, usize)> = s
            .duplicates
            .iter()
            .map(|d| (d.path.as_str(), d.line))
            .collect();
        assert_eq!(
            got,
            [
                ("metadata.name", 2),
                ("spec.paused", 5),
                ("spec.containers[0].image", 6)
            ]
        );
        assert!(s.order["metadata.name"] < s.order["spec.paused"]);
        assert!(s.order["spec.paused"] < s.order["spec.containers[0].name"]);
    }

    #[test]
    fn json_strings_with_escapes_and_arrays_of_scalars_do_not_confuse_the_scan() {
        let body = br#"{"a": ["x\"y", 1, {"k": 1}], "b": {"k\"": 1, "k\"": 2}}"#;
        let s = scan_json(body);
        assert_eq!(s.duplicates.len(), 1);
        assert_eq!(s.duplicates[0].path, "b.k\"");
        assert!(s.order.contains_key("a[2].k"));
    }

    #[test]
    fn yaml_duplicates_are_found_per_mapping_with_their_lines() {
        let body = b"apiVersion: apps/v1
kind: Deployment
metadata:
  name: x
  name: y
spec:
  paused: true
  paused: false
  template:
    spec:
      containers:
      - name: nginx
        image: a
        imagePullPolicy: Always
        imagePullPolicy: Never
      - name: other
        image: b
  script: |
    paused: again
    paused: again
";
        let lines = yaml_duplicate_lines(&scan_yaml(body));
        assert_eq!(
            lines,
            [
                "line 5: key \"name\" already set in map",
                "line 8: key \"paused\" already set in map",
                "line 15: key \"imagePullPolicy\" already set in map"
            ]
        );
    }

    #[test]
    fn scanning_garbage_never_panics() {
        for body in [
            &b"{\"a\""[..],
            b"[[[[",
            b"}}}",
            b"\"",
            b"- - - :",
            b"'a",
            b"\xff\xfe",
        ] {
            let _ = scan_json(body);
            let _ = scan_yaml(body);
        }
        let deep = "[".repeat(100_000);
        let _ = scan_json(deep.as_bytes());
    }
}
