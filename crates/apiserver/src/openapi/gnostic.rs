//! The Swagger 2.0 document as gnostic's `openapi.v2.Document` protobuf message
//! (github.com/google/gnostic-models, `openapiv2/OpenAPIv2.proto`), which kubectl 1.27 and
//! 1.28 ask for with `Accept: application/com.github.proto-openapi.spec.v2.v1.0+protobuf`.
//!
//! Encoded straight from the JSON document the way gnostic's compiler reads one: known keys
//! become fields, `x-` keys become `NamedAny` vendor extensions whose `Any.yaml` holds the value
//! (JSON is YAML, which is all kubectl's `yaml.Unmarshal` of it needs), maps become repeated
//! `Named*` pairs in document order, and proto3 defaults (empty strings, `false`) are left out.

use serde_json::{Map, Value};

/// A protobuf message being written. Nested messages are written into their own buffer and
/// copied in with their length; the document is a few MB, so the copies cost milliseconds.
#[derive(Default)]
struct Message(Vec<u8>);

impl Message {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, field: u32, wire: u8) {
        self.varint((u64::from(field) << 3) | u64::from(wire));
    }

    fn bytes(&mut self, field: u32, data: &[u8]) {
        self.key(field, 2);
        self.varint(data.len() as u64);
        self.0.extend_from_slice(data);
    }

    /// A proto3 string: left out when empty.
    fn string(&mut self, field: u32, s: &str) {
        if !s.is_empty() {
            self.bytes(field, s.as_bytes());
        }
    }

    /// An element of a repeated string: written even when empty.
    fn repeated_string(&mut self, field: u32, s: &str) {
        self.bytes(field, s.as_bytes());
    }

    fn boolean(&mut self, field: u32, b: bool) {
        if b {
            self.key(field, 0);
            self.varint(1);
        }
    }

    fn int64(&mut self, field: u32, v: i64) {
        if v != 0 {
            self.key(field, 0);
            self.varint(v as u64);
        }
    }

    fn double(&mut self, field: u32, v: f64) {
        if v != 0.0 {
            self.key(field, 1);
            self.0.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// A message field: written even when empty, as a set singular message is.
    fn message(&mut self, field: u32, m: Message) {
        self.bytes(field, &m.0);
    }
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

/// `Any { yaml = 2 }` holding a value.
fn any(value: &Value) -> Message {
    let mut m = Message::default();
    let yaml = match value {
        // A plain scalar reads back as the same string; quoting keeps "true" or "1" strings.
        Value::String(s) => serde_json::to_string(s).unwrap_or_default(),
        other => serde_json::to_string(other).unwrap_or_default(),
    };
    m.string(2, &format!("{yaml}\n"));
    m
}

/// `NamedAny { name = 1; value = 2 }`.
fn named_any(name: &str, value: &Value) -> Message {
    let mut m = Message::default();
    m.string(1, name);
    m.message(2, any(value));
    m
}

fn vendor_extensions(m: &mut Message, field: u32, obj: &Map<String, Value>) {
    for (k, v) in obj {
        if k.starts_with("x-") {
            m.message(field, named_any(k, v));
        }
    }
}

fn strings(m: &mut Message, field: u32, v: Option<&Value>) {
    if let Some(Value::Array(items)) = v {
        for s in items {
            m.repeated_string(field, str_of(s));
        }
    }
}

/// Encodes a whole Swagger 2.0 JSON document.
#[cfg(test)]
pub fn document(doc: &Value) -> Vec<u8> {
    let empty = Map::new();
    let obj = doc.as_object().unwrap_or(&empty);
    let paths = obj
        .get("paths")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let defs = obj
        .get("definitions")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    document_from_parts(
        doc,
        paths.iter().map(|(k, v)| (k.as_str(), v.clone())),
        defs.iter().map(|(k, v)| (k.as_str(), v.clone())),
    )
}

/// Encodes a Swagger 2.0 document from its top-level fields (`head`: everything but `paths`
/// and `definitions`) and its paths and definitions, each rendered only when it is encoded.
pub fn document_from_parts<'a>(
    head: &Value,
    paths: impl Iterator<Item = (&'a str, Value)>,
    definitions: impl Iterator<Item = (&'a str, Value)>,
) -> Vec<u8> {
    let mut m = Message::default();
    let empty = Map::new();
    let obj = head.as_object().unwrap_or(&empty);
    m.string(1, obj.get("swagger").map_or("", str_of));
    if let Some(Value::Object(info)) = obj.get("info") {
        let mut i = Message::default();
        i.string(1, info.get("title").map_or("", str_of));
        i.string(2, info.get("version").map_or("", str_of));
        i.string(3, info.get("description").map_or("", str_of));
        vendor_extensions(&mut i, 7, info);
        m.message(2, i);
    }
    m.string(3, obj.get("host").map_or("", str_of));
    m.string(4, obj.get("basePath").map_or("", str_of));
    strings(&mut m, 5, obj.get("schemes"));
    strings(&mut m, 6, obj.get("consumes"));
    strings(&mut m, 7, obj.get("produces"));
    let mut p = Message::default();
    let mut any_path = false;
    for (name, item) in paths {
        any_path = true;
        let mut named = Message::default();
        named.string(1, name);
        named.message(2, path_item(&item));
        p.message(2, named);
    }
    if any_path {
        m.message(8, p);
    }
    let mut d = Message::default();
    let mut any_definition = false;
    for (name, s) in definitions {
        any_definition = true;
        let mut named = Message::default();
        named.string(1, name);
        named.message(2, schema(&s));
        d.message(1, named);
    }
    if any_definition {
        m.message(9, d);
    }
    if let Some(Value::Array(security)) = obj.get("security") {
        for requirement in security {
            m.message(12, security_requirement(requirement));
        }
    }
    if let Some(Value::Object(defs)) = obj.get("securityDefinitions") {
        let mut s = Message::default();
        for (name, def) in defs {
            let mut named = Message::default();
            named.string(1, name);
            named.message(2, security_definition(def));
            s.message(1, named);
        }
        m.message(13, s);
    }
    vendor_extensions(&mut m, 16, obj);
    m.0
}

fn security_requirement(v: &Value) -> Message {
    let mut m = Message::default();
    if let Some(obj) = v.as_object() {
        for (name, scopes) in obj {
            let mut array = Message::default();
            strings(&mut array, 1, Some(scopes));
            let mut named = Message::default();
            named.string(1, name);
            named.message(2, array);
            m.message(1, named);
        }
    }
    m
}

/// `SecurityDefinitionsItem`: only the `apiKey` kind (`api_key_security = 2`) is served.
fn security_definition(v: &Value) -> Message {
    let mut item = Message::default();
    let Some(obj) = v.as_object() else {
        return item;
    };
    if obj.get("type").map(str_of) == Some("apiKey") {
        let mut k = Message::default();
        k.string(1, "apiKey");
        k.string(2, obj.get("name").map_or("", str_of));
        k.string(3, obj.get("in").map_or("", str_of));
        k.string(4, obj.get("description").map_or("", str_of));
        vendor_extensions(&mut k, 5, obj);
        item.message(2, k);
    }
    item
}

fn path_item(v: &Value) -> Message {
    let mut m = Message::default();
    let Some(obj) = v.as_object() else {
        return m;
    };
    m.string(1, obj.get("$ref").map_or("", str_of));
    for (method, field) in [
        ("get", 2),
        ("put", 3),
        ("post", 4),
        ("delete", 5),
        ("options", 6),
        ("head", 7),
        ("patch", 8),
    ] {
        if let Some(op) = obj.get(method) {
            m.message(field, operation(op));
        }
    }
    if let Some(Value::Array(params)) = obj.get("parameters") {
        for p in params {
            m.message(9, parameters_item(p));
        }
    }
    vendor_extensions(&mut m, 10, obj);
    m
}

fn operation(v: &Value) -> Message {
    let mut m = Message::default();
    let Some(obj) = v.as_object() else {
        return m;
    };
    strings(&mut m, 1, obj.get("tags"));
    m.string(2, obj.get("summary").map_or("", str_of));
    m.string(3, obj.get("description").map_or("", str_of));
    m.string(5, obj.get("operationId").map_or("", str_of));
    strings(&mut m, 6, obj.get("produces"));
    strings(&mut m, 7, obj.get("consumes"));
    if let Some(Value::Array(params)) = obj.get("parameters") {
        for p in params {
            m.message(8, parameters_item(p));
        }
    }
    if let Some(Value::Object(responses)) = obj.get("responses") {
        let mut r = Message::default();
        for (code, response) in responses {
            if code.starts_with("x-") {
                continue;
            }
            let mut named = Message::default();
            named.string(1, code);
            let mut value = Message::default();
            value.message(1, response_message(response));
            named.message(2, value);
            r.message(1, named);
        }
        vendor_extensions(&mut r, 2, responses);
        m.message(9, r);
    }
    strings(&mut m, 10, obj.get("schemes"));
    m.boolean(
        11,
        obj.get("deprecated").and_then(Value::as_bool) == Some(true),
    );
    vendor_extensions(&mut m, 13, obj);
    m
}

fn response_message(v: &Value) -> Message {
    let mut m = Message::default();
    let Some(obj) = v.as_object() else {
        return m;
    };
    m.string(1, obj.get("description").map_or("", str_of));
    if let Some(s) = obj.get("schema") {
        let mut item = Message::default();
        item.message(1, schema(s));
        m.message(2, item);
    }
    vendor_extensions(&mut m, 5, obj);
    m
}

/// `ParametersItem { parameter = 1 }` around a body or non-body parameter.
fn parameters_item(v: &Value) -> Message {
    let mut item = Message::default();
    let Some(obj) = v.as_object() else {
        return item;
    };
    if let Some(r) = obj.get("$ref") {
        let mut reference = Message::default();
        reference.string(1, str_of(r));
        reference.string(2, obj.get("description").map_or("", str_of));
        item.message(2, reference);
        return item;
    }
    let location = obj.get("in").map_or("", str_of);
    let mut parameter = Message::default();
    if location == "body" {
        let mut b = Message::default();
        b.string(1, obj.get("description").map_or("", str_of));
        b.string(2, obj.get("name").map_or("", str_of));
        b.string(3, location);
        b.boolean(
            4,
            obj.get("required").and_then(Value::as_bool) == Some(true),
        );
        if let Some(s) = obj.get("schema") {
            b.message(5, schema(s));
        }
        vendor_extensions(&mut b, 6, obj);
        parameter.message(1, b);
    } else {
        let required = obj.get("required").and_then(Value::as_bool) == Some(true);
        let unique = obj.get("uniqueItems").and_then(Value::as_bool) == Some(true);
        let mut sub = Message::default();
        let oneof_field = match location {
            "query" => {
                // QueryParameterSubSchema
                sub.boolean(1, required);
                sub.string(2, location);
                sub.string(3, obj.get("description").map_or("", str_of));
                sub.string(4, obj.get("name").map_or("", str_of));
                sub.string(6, obj.get("type").map_or("", str_of));
                sub.string(7, obj.get("format").map_or("", str_of));
                sub.boolean(20, unique);
                vendor_extensions(&mut sub, 23, obj);
                3
            }
            "header" => {
                // HeaderParameterSubSchema
                sub.boolean(1, required);
                sub.string(2, location);
                sub.string(3, obj.get("description").map_or("", str_of));
                sub.string(4, obj.get("name").map_or("", str_of));
                sub.string(5, obj.get("type").map_or("", str_of));
                sub.string(6, obj.get("format").map_or("", str_of));
                sub.boolean(19, unique);
                vendor_extensions(&mut sub, 22, obj);
                1
            }
            _ => {
                // PathParameterSubSchema
                sub.boolean(1, required);
                sub.string(2, location);
                sub.string(3, obj.get("description").map_or("", str_of));
                sub.string(4, obj.get("name").map_or("", str_of));
                sub.string(5, obj.get("type").map_or("", str_of));
                sub.string(6, obj.get("format").map_or("", str_of));
                sub.boolean(19, unique);
                vendor_extensions(&mut sub, 22, obj);
                4
            }
        };
        let mut non_body = Message::default();
        non_body.message(oneof_field, sub);
        parameter.message(2, non_body);
    }
    item.message(1, parameter);
    item
}

fn named_schemas(map: &Map<String, Value>) -> Message {
    let mut m = Message::default();
    for (name, s) in map {
        let mut named = Message::default();
        named.string(1, name);
        named.message(2, schema(s));
        m.message(1, named);
    }
    m
}

/// `Schema`, field numbers from OpenAPIv2.proto.
fn schema(v: &Value) -> Message {
    let mut m = Message::default();
    let Some(obj) = v.as_object() else {
        return m;
    };
    for (key, value) in obj {
        match key.as_str() {
            "$ref" => m.string(1, str_of(value)),
            "format" => m.string(2, str_of(value)),
            "title" => m.string(3, str_of(value)),
            "description" => m.string(4, str_of(value)),
            "default" => m.message(5, any(value)),
            "multipleOf" => m.double(6, value.as_f64().unwrap_or_default()),
            "maximum" => m.double(7, value.as_f64().unwrap_or_default()),
            "exclusiveMaximum" => m.boolean(8, value.as_bool() == Some(true)),
            "minimum" => m.double(9, value.as_f64().unwrap_or_default()),
            "exclusiveMinimum" => m.boolean(10, value.as_bool() == Some(true)),
            "maxLength" => m.int64(11, value.as_i64().unwrap_or_default()),
            "minLength" => m.int64(12, value.as_i64().unwrap_or_default()),
            "pattern" => m.string(13, str_of(value)),
            "maxItems" => m.int64(14, value.as_i64().unwrap_or_default()),
            "minItems" => m.int64(15, value.as_i64().unwrap_or_default()),
            "uniqueItems" => m.boolean(16, value.as_bool() == Some(true)),
            "maxProperties" => m.int64(17, value.as_i64().unwrap_or_default()),
            "minProperties" => m.int64(18, value.as_i64().unwrap_or_default()),
            "required" => strings(&mut m, 19, Some(value)),
            "enum" => {
                if let Value::Array(items) = value {
                    for item in items {
                        m.message(20, any(item));
                    }
                }
            }
            "additionalProperties" => {
                let mut item = Message::default();
                match value {
                    Value::Bool(b) => {
                        // A set oneof bool is written even when false.
                        item.key(2, 0);
                        item.varint(u64::from(*b));
                    }
                    other => item.message(1, schema(other)),
                }
                m.message(21, item);
            }
            "type" => {
                let mut t = Message::default();
                match value {
                    Value::Array(_) => strings(&mut t, 1, Some(value)),
                    other => t.repeated_string(1, str_of(other)),
                }
                m.message(22, t);
            }
            "items" => {
                let mut items = Message::default();
                match value {
                    Value::Array(list) => {
                        for s in list {
                            items.message(1, schema(s));
                        }
                    }
                    other => items.message(1, schema(other)),
                }
                m.message(23, items);
            }
            "allOf" => {
                if let Value::Array(list) = value {
                    for s in list {
                        m.message(24, schema(s));
                    }
                }
            }
            "properties" => {
                if let Value::Object(props) = value {
                    m.message(25, named_schemas(props));
                }
            }
            "discriminator" => m.string(26, str_of(value)),
            "readOnly" => m.boolean(27, value.as_bool() == Some(true)),
            "example" => m.message(30, any(value)),
            k if k.starts_with("x-") => m.message(31, named_any(k, value)),
            _ => {}
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn varints_and_keys_are_encoded_as_protobuf_does() {
        let mut m = Message::default();
        m.varint(300);
        assert_eq!(m.0, [0xac, 0x02]);
        let mut m = Message::default();
        m.string(1, "2.0");
        assert_eq!(m.0, [0x0a, 3, b'2', b'.', b'0']);
    }

    #[test]
    fn empty_strings_and_false_are_left_out_like_proto3_defaults() {
        let encoded = document(&json!({"swagger": "", "host": ""}));
        assert!(encoded.is_empty());
    }

    #[test]
    fn a_vendor_extension_carries_its_value_as_yaml() {
        let encoded = schema(&json!({"x-kubernetes-list-type": "map"}));
        // field 31, length-delimited: NamedAny { name, Any { yaml } }
        assert_eq!(&encoded.0[..2], &[0xfa, 0x01]);
        let text = String::from_utf8_lossy(&encoded.0);
        assert!(text.contains("x-kubernetes-list-type"));
        assert!(text.contains("\"map\"\n"));
    }
}
