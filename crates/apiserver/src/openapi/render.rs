//! Turns definitions and paths into the two document formats upstream serves:
//! OpenAPI 3.0 per group version (`/openapi/v3/<path>`) and Swagger 2.0 for everything
//! (`/openapi/v2`). Both shapes follow kube-openapi's output, key for key where kubectl looks.

use super::definitions::{self, Definitions};
use super::paths::{In, Operation, Param, PathItem, Payload};
use serde_json::{Map, Value, json};
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

fn path_items(items: &[PathItem], format: Format) -> Map<String, Value> {
    let mut paths = Map::new();
    for item in items {
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
        paths.insert(item.path.clone(), Value::Object(obj));
    }
    paths
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

/// One OpenAPI 3.0 document: the given paths and every schema they reach.
pub fn v3_document(defs: &Definitions, items: &[PathItem]) -> Value {
    let schemas: Map<String, Value> = used_definitions(defs, items)
        .into_iter()
        .filter_map(|name| {
            let s = defs.get(&name)?;
            Some((name, schema(s, Format::V3)))
        })
        .collect();
    json!({
        "components": {
            "schemas": schemas,
            "securitySchemes": security_scheme(),
        },
        "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION},
        "openapi": "3.0.0",
        "paths": path_items(items, Format::V3),
        "security": [{"BearerToken": []}],
    })
}

/// The Swagger 2.0 document of every path.
pub fn v2_document(defs: &Definitions, items: &[PathItem]) -> Value {
    let definitions: Map<String, Value> = used_definitions(defs, items)
        .into_iter()
        .filter_map(|name| {
            let s = defs.get(&name)?;
            Some((name, schema(s, Format::V2)))
        })
        .collect();
    json!({
        "definitions": definitions,
        "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION},
        "paths": path_items(items, Format::V2),
        "security": [{"BearerToken": []}],
        "securityDefinitions": security_scheme(),
        "swagger": "2.0",
    })
}
