//! Turns definitions and paths into the two document formats upstream serves:
//! OpenAPI 3.0 per group version (`/openapi/v3/<path>`) and Swagger 2.0 for everything
//! (`/openapi/v2`). Both shapes follow kube-openapi's output, key for key where kubectl looks.

use super::definitions::{self, Definitions};
use super::gnostic;
use super::paths::{In, Operation, Param, PathItem, Payload};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha512};
use std::collections::BTreeSet;

/// `info.version` of every document: the Kubernetes release whose API this server serves.
pub const KUBERNETES_VERSION: &str = "v1.33.0";

const V3_PREFIX: &str = "#/components/schemas/";
const V2_PREFIX: &str = "#/definitions/";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    V2,
    V3,
}

/// Rewrites a neutral schema for one format: reference prefixes, `allOf` around references
/// with siblings (v3), and `oneOf` scalar unions as `type: string` (v2, which has no `oneOf`).
fn schema(neutral: &Value, format: Format) -> Value {
    let Value::Object(obj) = neutral else {
        return neutral.clone();
    };
    let mut out = Map::new();
    let mut reference = None;
    for (key, value) in obj {
        match key.as_str() {
            "$ref" => reference = value.as_str().map(str::to_string),
            "properties" => {
                let props = value
                    .as_object()
                    .map(|p| {
                        p.iter()
                            .map(|(k, v)| (k.clone(), schema(v, format)))
                            .collect::<Map<_, _>>()
                    })
                    .unwrap_or_default();
                out.insert(key.clone(), Value::Object(props));
            }
            "items" | "additionalProperties" | "not" => {
                out.insert(key.clone(), schema(value, format));
            }
            "allOf" | "anyOf" => {
                let list = value
                    .as_array()
                    .map(|l| l.iter().map(|s| schema(s, format)).collect())
                    .unwrap_or_default();
                out.insert(key.clone(), Value::Array(list));
            }
            "oneOf" if format == Format::V2 => {
                out.insert("type".into(), json!("string"));
            }
            "x-kubernetes-int-or-string" if format == Format::V2 => {}
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    if let Some(name) = reference {
        let prefix = match format {
            Format::V2 => V2_PREFIX,
            Format::V3 => V3_PREFIX,
        };
        let target = json!({"$ref": format!("{prefix}{name}")});
        if out.is_empty() {
            return target;
        }
        match format {
            Format::V2 => {
                out.insert("$ref".into(), json!(format!("{prefix}{name}")));
            }
            Format::V3 => {
                out.insert("allOf".into(), Value::Array(vec![target]));
            }
        }
    }
    Value::Object(out)
}

fn gvk_value(gvk: &(String, String, String)) -> Value {
    json!({"group": gvk.0, "kind": gvk.2, "version": gvk.1})
}

fn v3_param(p: &Param) -> Value {
    let mut obj = Map::new();
    if !p.description.is_empty() {
        obj.insert("description".into(), json!(p.description));
    }
    obj.insert(
        "in".into(),
        json!(match p.location {
            In::Path => "path",
            In::Query => "query",
        }),
    );
    obj.insert("name".into(), json!(p.name));
    if p.required {
        obj.insert("required".into(), json!(true));
    }
    obj.insert(
        "schema".into(),
        json!({"type": p.ty.as_str(), "uniqueItems": true}),
    );
    Value::Object(obj)
}

fn v2_param(p: &Param) -> Value {
    let mut obj = Map::new();
    if !p.description.is_empty() {
        obj.insert("description".into(), json!(p.description));
    }
    obj.insert(
        "in".into(),
        json!(match p.location {
            In::Path => "path",
            In::Query => "query",
        }),
    );
    obj.insert("name".into(), json!(p.name));
    if p.required {
        obj.insert("required".into(), json!(true));
    }
    obj.insert("type".into(), json!(p.ty.as_str()));
    obj.insert("uniqueItems".into(), json!(true));
    Value::Object(obj)
}

fn payload_schema(payload: &Payload, format: Format) -> Value {
    match payload {
        Payload::Ref(name) => {
            let prefix = match format {
                Format::V2 => V2_PREFIX,
                Format::V3 => V3_PREFIX,
            };
            json!({"$ref": format!("{prefix}{name}")})
        }
        Payload::Text => json!({"type": "string"}),
    }
}

fn v3_operation(op: &Operation) -> Value {
    let mut obj = Map::new();
    obj.insert("description".into(), json!(op.description));
    obj.insert("operationId".into(), json!(op.id));
    if !op.params.is_empty() {
        obj.insert(
            "parameters".into(),
            Value::Array(op.params.iter().map(v3_param).collect()),
        );
    }
    if let Some((body, media_types)) = &op.body {
        let content: Map<String, Value> = media_types
            .iter()
            .map(|mt| {
                (
                    mt.to_string(),
                    json!({"schema": {"$ref": format!("{V3_PREFIX}{body}")}}),
                )
            })
            .collect();
        let mut request = Map::new();
        request.insert("content".into(), Value::Object(content));
        if op.method != "delete" {
            request.insert("required".into(), json!(true));
        }
        obj.insert("requestBody".into(), Value::Object(request));
    }
    let mut responses = Map::new();
    for (code, description, payload) in &op.responses {
        let content: Map<String, Value> = op
            .produces
            .media_types()
            .iter()
            .map(|mt| {
                (
                    mt.to_string(),
                    json!({"schema": payload_schema(payload, Format::V3)}),
                )
            })
            .collect();
        responses.insert(
            code.to_string(),
            json!({"content": content, "description": description}),
        );
    }
    obj.insert("responses".into(), Value::Object(responses));
    obj.insert("tags".into(), json!([op.tag]));
    if let Some(action) = op.action {
        obj.insert("x-kubernetes-action".into(), json!(action));
    }
    if let Some(gvk) = &op.gvk {
        obj.insert("x-kubernetes-group-version-kind".into(), gvk_value(gvk));
    }
    Value::Object(obj)
}

fn v2_operation(op: &Operation) -> Value {
    let mut obj = Map::new();
    let consumes: &[&str] = match &op.body {
        Some((_, media_types)) if op.method == "patch" => media_types,
        _ => &["*/*"],
    };
    obj.insert("consumes".into(), json!(consumes));
    obj.insert("description".into(), json!(op.description));
    obj.insert("operationId".into(), json!(op.id));
    let mut params: Vec<Value> = Vec::new();
    if let Some((body, _)) = &op.body {
        let mut p = Map::new();
        p.insert("in".into(), json!("body"));
        p.insert("name".into(), json!("body"));
        if op.method != "delete" {
            p.insert("required".into(), json!(true));
        }
        p.insert(
            "schema".into(),
            json!({"$ref": format!("{V2_PREFIX}{body}")}),
        );
        params.push(Value::Object(p));
    }
    params.extend(op.params.iter().map(v2_param));
    if !params.is_empty() {
        obj.insert("parameters".into(), Value::Array(params));
    }
    obj.insert("produces".into(), json!(op.produces.media_types()));
    let mut responses = Map::new();
    for (code, description, payload) in &op.responses {
        responses.insert(
            code.to_string(),
            json!({"description": description, "schema": payload_schema(payload, Format::V2)}),
        );
    }
    responses.insert("401".into(), json!({"description": "Unauthorized"}));
    obj.insert("responses".into(), Value::Object(responses));
    obj.insert("schemes".into(), json!(["https"]));
    obj.insert("tags".into(), json!([op.tag]));
    if let Some(action) = op.action {
        obj.insert("x-kubernetes-action".into(), json!(action));
    }
    if let Some(gvk) = &op.gvk {
        obj.insert("x-kubernetes-group-version-kind".into(), gvk_value(gvk));
    }
    Value::Object(obj)
}

/// One path's operations and parameters in one format.
fn path_item(item: &PathItem, format: Format) -> Value {
    let mut obj = Map::new();
    for op in &item.operations {
        let rendered = match format {
            Format::V2 => v2_operation(op),
            Format::V3 => v3_operation(op),
        };
        obj.insert(op.method.to_string(), rendered);
    }
    if !item.params.is_empty() {
        let params = item
            .params
            .iter()
            .map(|p| match format {
                Format::V2 => v2_param(p),
                Format::V3 => v3_param(p),
            })
            .collect();
        obj.insert("parameters".into(), Value::Array(params));
    }
    Value::Object(obj)
}

/// Every definition the operations of `items` reach.
fn used_definitions(defs: &Definitions, items: &[PathItem]) -> BTreeSet<String> {
    let mut roots: Vec<String> = Vec::new();
    for item in items {
        for op in &item.operations {
            if let Some((body, _)) = &op.body {
                roots.push(body.clone());
            }
            for (_, _, payload) in &op.responses {
                if let Payload::Ref(name) = payload {
                    roots.push(name.clone());
                }
            }
        }
    }
    definitions::closure(defs, roots.iter().map(String::as_str))
}

fn security_scheme() -> Value {
    json!({"BearerToken": {
        "description": "Bearer Token authentication",
        "in": "header",
        "name": "authorization",
        "type": "apiKey",
    }})
}

/// A document's parts, rendered one entry at a time while being written so that no tree of
/// the whole document is ever held: the definitions are the only large structure alive.
struct Document<'a> {
    defs: &'a Definitions,
    /// Sorted by path, as a JSON object's keys are.
    items: Vec<&'a PathItem>,
    schemas: BTreeSet<String>,
    format: Format,
}

impl<'a> Document<'a> {
    fn new(defs: &'a Definitions, items: &'a [PathItem], format: Format) -> Self {
        let mut sorted: Vec<&PathItem> = items.iter().collect();
        sorted.sort_by(|a, b| a.path.cmp(&b.path));
        sorted.dedup_by(|a, b| a.path == b.path);
        Document {
            defs,
            items: sorted,
            schemas: used_definitions(defs, items),
            format,
        }
    }

    fn paths(&self) -> impl Iterator<Item = (&'a str, Value)> + '_ {
        self.items
            .iter()
            .map(|item| (item.path.as_str(), path_item(item, self.format)))
    }

    fn schemas(&self) -> impl Iterator<Item = (&str, Value)> + '_ {
        self.schemas.iter().filter_map(|name| {
            let s = self.defs.get(name)?;
            Some((name.as_str(), schema(s, self.format)))
        })
    }
}

/// Serializes a map from an iterator of rendered entries.
struct Entries<I>(std::cell::RefCell<Option<I>>);

impl<I> Entries<I> {
    fn new(iter: I) -> Self {
        Entries(std::cell::RefCell::new(Some(iter)))
    }
}

impl<'k, I: Iterator<Item = (&'k str, Value)>> Serialize for Entries<I> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let iter = self.0.borrow_mut().take();
        let mut map = serializer.serialize_map(None)?;
        for (k, v) in iter.into_iter().flatten() {
            map.serialize_entry(k, &v)?;
        }
        map.end()
    }
}

impl Serialize for Document<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let info = json!({"title": "Kubernetes", "version": KUBERNETES_VERSION});
        let security = json!([{"BearerToken": []}]);
        let mut map = serializer.serialize_map(None)?;
        match self.format {
            Format::V3 => {
                let components = Components(self);
                map.serialize_entry("components", &components)?;
                map.serialize_entry("info", &info)?;
                map.serialize_entry("openapi", "3.0.0")?;
                map.serialize_entry("paths", &Entries::new(self.paths()))?;
                map.serialize_entry("security", &security)?;
            }
            Format::V2 => {
                map.serialize_entry("definitions", &Entries::new(self.schemas()))?;
                map.serialize_entry("info", &info)?;
                map.serialize_entry("paths", &Entries::new(self.paths()))?;
                map.serialize_entry("security", &security)?;
                map.serialize_entry("securityDefinitions", &security_scheme())?;
                map.serialize_entry("swagger", "2.0")?;
            }
        }
        map.end()
    }
}

/// `components` of a v3 document.
struct Components<'a, 'b>(&'b Document<'a>);

impl Serialize for Components<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("schemas", &Entries::new(self.0.schemas()))?;
        map.serialize_entry("securitySchemes", &security_scheme())?;
        map.end()
    }
}

/// One OpenAPI 3.0 document, serialized: the given paths and every schema they reach.
pub fn v3_document(defs: &Definitions, items: &[PathItem]) -> Vec<u8> {
    serde_json::to_vec(&Document::new(defs, items, Format::V3)).unwrap_or_default()
}

/// The Swagger 2.0 document of every path, serialized as JSON.
pub fn v2_document(defs: &Definitions, items: &[PathItem]) -> Vec<u8> {
    serde_json::to_vec(&Document::new(defs, items, Format::V2)).unwrap_or_default()
}

/// Hashes what [`v2_document`] would write, without keeping it.
pub fn v2_document_etag(defs: &Definitions, items: &[PathItem]) -> String {
    let mut hasher = HashWriter(Sha512::new());
    // Writing into a hasher cannot fail; an error would only leave the hash short.
    let _ = serde_json::to_writer(&mut hasher, &Document::new(defs, items, Format::V2));
    hasher
        .0
        .finalize()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

struct HashWriter(Sha512);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The Swagger 2.0 document of every path as a gnostic protobuf message.
pub fn v2_protobuf(defs: &Definitions, items: &[PathItem]) -> Vec<u8> {
    let doc = Document::new(defs, items, Format::V2);
    let head = json!({
        "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION},
        "security": [{"BearerToken": []}],
        "securityDefinitions": security_scheme(),
        "swagger": "2.0",
    });
    gnostic::document_from_parts(&head, doc.paths(), doc.schemas())
}
