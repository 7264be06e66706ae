//! Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`), decoded to
//! and encoded from the JSON form every other part of the server works with.
//!
//! A body is the magic `k8s\0` followed by a `runtime.Unknown` envelope (1: typeMeta
//! {1: apiVersion, 2: kind}, 2: raw, 3: contentEncoding, 4: contentType) whose `raw` is the
//! object's own message. The message is decoded generically with the schema table.
//!
//! Go's protobuf encoder writes every non-pointer field, zero or not, and its JSON encoder
//! then leaves the zero ones out (`omitempty`). To produce the JSON upstream would have
//! produced, the decoder drops zero scalars unless the field is required or a known pointer
//! whose zero means something (see `FieldSchema::keeps_zero`); a zero `Time` is dropped as
//! Go writes it as `null`.

use crate::schema::{self, Cardinality, FieldSchema, Special, TypeSchema, Wire};
use base64::Engine;
use serde_json::{Map, Value};

/// The four bytes every Kubernetes protobuf body starts with.
pub const MAGIC: &[u8; 4] = b"k8s\0";

/// Nested messages deeper than this are refused, so a hostile body cannot exhaust the stack.
const MAX_DEPTH: usize = 100;

/// Why a protobuf body could not be decoded or an object encoded. Every variant is a
/// client error (400) except where noted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtobufError {
    /// Upstream's wording for a body without the `k8s\0` prefix.
    #[error(
        "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]"
    )]
    NotProtobuf,
    #[error("unexpected EOF")]
    Truncated,
    #[error("proto: integer overflow")]
    VarintOverflow,
    #[error("proto: wrong wireType = {wire} for field {field}")]
    WrongWireType { field: String, wire: u8 },
    #[error("proto: illegal wireType {0}")]
    IllegalWireType(u8),
    #[error("proto: illegal tag 0")]
    IllegalTag,
    #[error("Object 'Kind' is missing in protobuf envelope")]
    MissingKind,
    /// The envelope names a kind the table does not know.
    #[error(
        "no kind {} is registered for version {}",
        crate::error::go_quote(kind),
        crate::error::go_quote(api_version)
    )]
    UnknownKind { api_version: String, kind: String },
    #[error("unsupported protobuf content encoding {0:?}")]
    ContentEncoding(String),
    #[error("{field}: {message}")]
    InvalidValue { field: String, message: String },
    #[error("protobuf message nested more than {MAX_DEPTH} levels deep")]
    TooDeep,
    /// `encode_object` was given a value that does not fit its type.
    #[error("cannot encode {path}: {message}")]
    Encode { path: String, message: String },
}

pub type Result<T, E = ProtobufError> = std::result::Result<T, E>;

/// The parts of the `runtime.Unknown` envelope.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Envelope {
    pub api_version: String,
    pub kind: String,
    pub raw: Vec<u8>,
    pub content_encoding: String,
    pub content_type: String,
}

/// Decodes a whole request body into the object's JSON, with `apiVersion` and `kind` set.
pub fn decode_object(body: &[u8]) -> Result<Value> {
    let env = decode_envelope(body)?;
    if !env.content_encoding.is_empty() {
        return Err(ProtobufError::ContentEncoding(env.content_encoding));
    }
    if env.kind.is_empty() {
        return Err(ProtobufError::MissingKind);
    }
    let (group, version) = schema::split_api_version(&env.api_version);
    let ty =
        schema::kind_type(group, version, &env.kind).ok_or_else(|| ProtobufError::UnknownKind {
            api_version: env.api_version.clone(),
            kind: env.kind.clone(),
        })?;
    let mut obj = decode_fields(&env.raw, ty, 0)?;
    obj.insert("apiVersion".into(), Value::String(env.api_version));
    obj.insert("kind".into(), Value::String(env.kind));
    Ok(Value::Object(obj))
}

/// Reads the magic and the `runtime.Unknown` envelope.
pub fn decode_envelope(body: &[u8]) -> Result<Envelope> {
    let rest = body
        .strip_prefix(MAGIC.as_slice())
        .ok_or(ProtobufError::NotProtobuf)?;
    let mut env = Envelope::default();
    let mut r = Reader::new(rest);
    while let Some((tag, wire)) = r.key()? {
        match tag {
            1 => {
                let meta = r.len_delimited(wire, "typeMeta")?;
                let mut m = Reader::new(meta);
                while let Some((t, w)) = m.key()? {
                    match t {
                        1 => env.api_version = lossy(m.len_delimited(w, "apiVersion")?),
                        2 => env.kind = lossy(m.len_delimited(w, "kind")?),
                        _ => m.skip(w)?,
                    }
                }
            }
            2 => env.raw = r.len_delimited(wire, "raw")?.to_vec(),
            3 => env.content_encoding = lossy(r.len_delimited(wire, "contentEncoding")?),
            4 => env.content_type = lossy(r.len_delimited(wire, "contentType")?),
            _ => r.skip(wire)?,
        }
    }
    Ok(env)
}

/// Decodes one message of type `ty` (no envelope) into its JSON form.
pub fn decode_message(raw: &[u8], ty: &'static TypeSchema) -> Result<Value> {
    decode_typed(raw, ty, 0)
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

// ------------------------------------------------------------------------- wire reading

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let b = *self.buf.get(self.pos).ok_or(ProtobufError::Truncated)?;
            self.pos += 1;
            if i == 9 && b > 1 {
                return Err(ProtobufError::VarintOverflow);
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(value);
            }
        }
        Err(ProtobufError::VarintOverflow)
    }

    /// The next field key, or None at the end of the message.
    fn key(&mut self) -> Result<Option<(u32, u8)>> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let k = self.varint()?;
        let tag = u32::try_from(k >> 3).map_err(|_| ProtobufError::VarintOverflow)?;
        if tag == 0 {
            return Err(ProtobufError::IllegalTag);
        }
        Ok(Some((tag, (k & 7) as u8)))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or(ProtobufError::Truncated)?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or(ProtobufError::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = usize::try_from(self.varint()?).map_err(|_| ProtobufError::Truncated)?;
        self.take(n)
    }

    fn len_delimited(&mut self, wire: u8, field: &str) -> Result<&'a [u8]> {
        if wire != 2 {
            return Err(ProtobufError::WrongWireType {
                field: field.to_string(),
                wire,
            });
        }
        self.bytes()
    }

    fn skip(&mut self, wire: u8) -> Result<()> {
        match wire {
            0 => self.varint().map(drop),
            1 => self.take(8).map(drop),
            2 => self.bytes().map(drop),
            5 => self.take(4).map(drop),
            other => Err(ProtobufError::IllegalWireType(other)),
        }
    }
}

// ------------------------------------------------------------------------- decoding

fn wrong_wire(f: &FieldSchema, wire: u8) -> ProtobufError {
    ProtobufError::WrongWireType {
        field: f.json_name().to_string(),
        wire,
    }
}

fn decode_fields(raw: &[u8], ty: &'static TypeSchema, depth: usize) -> Result<Map<String, Value>> {
    if depth > MAX_DEPTH {
        return Err(ProtobufError::TooDeep);
    }
    let mut out = Map::new();
    let mut r = Reader::new(raw);
    while let Some((tag, wire)) = r.key()? {
        let Some(f) = ty.field_by_tag(tag) else {
            r.skip(wire)?;
            continue;
        };
        match f.cardinality() {
            Cardinality::Single => {
                let v = scalar_or_message(&mut r, f, wire, depth)?;
                if keep_single(f, &v) {
                    out.insert(f.json_name().to_string(), v);
                } else {
                    out.remove(f.json_name());
                }
            }
            Cardinality::Repeated => {
                let list = out
                    .entry(f.json_name().to_string())
                    .or_insert_with(|| Value::Array(Vec::new()));
                let Value::Array(items) = list else { continue };
                let packable = matches!(
                    f.wire(),
                    Wire::Bool | Wire::Int32 | Wire::Int64 | Wire::Double
                );
                if packable && wire == 2 {
                    let mut packed = Reader::new(r.bytes()?);
                    let elem_wire = if f.wire() == Wire::Double { 1 } else { 0 };
                    while packed.pos < packed.buf.len() {
                        items.push(scalar_or_message(&mut packed, f, elem_wire, depth)?);
                    }
                } else {
                    items.push(scalar_or_message(&mut r, f, wire, depth)?);
                }
            }
            Cardinality::Map => {
                let entry = r.len_delimited(wire, f.json_name())?;
                let mut e = Reader::new(entry);
                let mut key = String::new();
                let mut value = None;
                while let Some((t, w)) = e.key()? {
                    match t {
                        1 => key = lossy(e.len_delimited(w, "key")?),
                        2 => value = Some(scalar_or_message(&mut e, f, w, depth)?),
                        _ => e.skip(w)?,
                    }
                }
                let value = match value {
                    Some(v) => v,
                    None => zero_value(f, depth)?,
                };
                let map = out
                    .entry(f.json_name().to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(m) = map {
                    m.insert(key, value);
                }
            }
            Cardinality::Inline => {
                let inner_raw = r.len_delimited(wire, f.json_name())?;
                if let Some(inner) = f.message_type() {
                    for (k, v) in decode_fields(inner_raw, inner, depth + 1)? {
                        out.insert(k, v);
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Go's JSON encoder leaves out zero values of `omitempty` fields; protobuf carried them.
fn keep_single(f: &FieldSchema, v: &Value) -> bool {
    if v.is_null() {
        return false;
    }
    if f.keeps_zero() {
        return true;
    }
    match (f.wire(), v) {
        (Wire::String | Wire::Bytes, Value::String(s)) => !s.is_empty(),
        (Wire::Bool, Value::Bool(b)) => *b,
        (Wire::Int32 | Wire::Int64 | Wire::Double, Value::Number(n)) => {
            n.as_f64().is_some_and(|x| x != 0.0)
        }
        _ => true,
    }
}

/// The value a map entry without a value field stands for.
fn zero_value(f: &FieldSchema, depth: usize) -> Result<Value> {
    Ok(match f.wire() {
        Wire::String | Wire::Bytes => Value::String(String::new()),
        Wire::Bool => Value::Bool(false),
        Wire::Int32 | Wire::Int64 | Wire::Double => Value::from(0),
        Wire::Message => match f.message_type() {
            Some(t) => decode_typed(&[], t, depth + 1)?,
            None => Value::Null,
        },
    })
}

fn scalar_or_message(r: &mut Reader<'_>, f: &FieldSchema, wire: u8, depth: usize) -> Result<Value> {
    Ok(match f.wire() {
        Wire::String => Value::String(lossy(r.len_delimited(wire, f.json_name())?)),
        Wire::Bytes => {
            let b = r.len_delimited(wire, f.json_name())?;
            Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        Wire::Bool => {
            if wire != 0 {
                return Err(wrong_wire(f, wire));
            }
            Value::Bool(r.varint()? != 0)
        }
        Wire::Int32 => {
            if wire != 0 {
                return Err(wrong_wire(f, wire));
            }
            Value::from(r.varint()? as i64 as i32)
        }
        Wire::Int64 => {
            if wire != 0 {
                return Err(wrong_wire(f, wire));
            }
            Value::from(r.varint()? as i64)
        }
        Wire::Double => {
            if wire != 1 {
                return Err(wrong_wire(f, wire));
            }
            let b = r.take(8)?;
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            let x = f64::from_le_bytes(a);
            serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
        }
        Wire::Message => {
            let raw = r.len_delimited(wire, f.json_name())?;
            match f.message_type() {
                Some(t) => decode_typed(raw, t, depth + 1)?,
                None => Value::Null,
            }
        }
    })
}

/// One message in its JSON form, special types included.
fn decode_typed(raw: &[u8], ty: &'static TypeSchema, depth: usize) -> Result<Value> {
    if depth > MAX_DEPTH {
        return Err(ProtobufError::TooDeep);
    }
    if ty.special() == Special::None {
        return Ok(Value::Object(decode_fields(raw, ty, depth)?));
    }
    let fields = RawFields::read(raw)?;
    let name = ty.short_name();
    Ok(match ty.special() {
        Special::None => Value::Null,
        Special::Quantity => Value::String(fields.string(1)),
        Special::IntOrString => {
            if fields.varint(1) == 1 {
                Value::String(fields.string(3))
            } else {
                Value::from(fields.varint(2) as i64 as i32)
            }
        }
        // metav1.Time writes Go's zero time as an empty message; JSON has it as null.
        Special::Time | Special::MicroTime if raw.is_empty() => Value::Null,
        Special::Time | Special::MicroTime => {
            let seconds = fields.varint(1) as i64;
            let nanos = fields.varint(2) as i64 as i32;
            format_time(seconds, nanos, ty.special() == Special::MicroTime).map_err(|message| {
                ProtobufError::InvalidValue {
                    field: name.into(),
                    message,
                }
            })?
        }
        Special::Duration => Value::String(go_duration(fields.varint(1) as i64)),
        Special::RawExtension | Special::FieldsV1 | Special::Json => {
            let bytes = fields.bytes(1);
            if bytes.is_empty() {
                Value::Null
            } else if bytes.starts_with(MAGIC) {
                decode_object(bytes)?
            } else {
                serde_json::from_slice(bytes).map_err(|e| ProtobufError::InvalidValue {
                    field: name.into(),
                    message: e.to_string(),
                })?
            }
        }
        Special::StringList => Value::Array(fields.all_strings(1)),
        Special::JsonSchemaPropsOrArray => {
            let props = union_props(ty, 1)?;
            let many = fields.all_bytes(2);
            if !many.is_empty() {
                let items: Result<Vec<Value>> = many
                    .iter()
                    .map(|b| decode_typed(b, props, depth + 1))
                    .collect();
                Value::Array(items?)
            } else {
                decode_typed(fields.bytes(1), props, depth + 1)?
            }
        }
        Special::JsonSchemaPropsOrBool => {
            if fields.has(2) {
                decode_typed(fields.bytes(2), union_props(ty, 2)?, depth + 1)?
            } else {
                Value::Bool(fields.varint(1) != 0)
            }
        }
        Special::JsonSchemaPropsOrStringArray => {
            if fields.has(1) {
                decode_typed(fields.bytes(1), union_props(ty, 1)?, depth + 1)?
            } else {
                Value::Array(fields.all_strings(2))
            }
        }
    })
}

fn union_props(union: &TypeSchema, tag: u32) -> Result<&'static TypeSchema> {
    union
        .field_by_tag(tag)
        .and_then(|f| f.message_type())
        .ok_or_else(|| ProtobufError::InvalidValue {
            field: union.short_name().into(),
            message: "no schema type".into(),
        })
}

/// The raw fields of a small message, for the special types decoded by tag.
struct RawFields<'a>(Vec<(u32, RawValue<'a>)>);

enum RawValue<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Other,
}

impl<'a> RawFields<'a> {
    fn read(raw: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(raw);
        let mut out = Vec::new();
        while let Some((tag, wire)) = r.key()? {
            let v = match wire {
                0 => RawValue::Varint(r.varint()?),
                2 => RawValue::Bytes(r.bytes()?),
                other => {
                    r.skip(other)?;
                    RawValue::Other
                }
            };
            out.push((tag, v));
        }
        Ok(RawFields(out))
    }

    fn has(&self, tag: u32) -> bool {
        self.0.iter().any(|(t, _)| *t == tag)
    }

    fn varint(&self, tag: u32) -> u64 {
        self.0
            .iter()
            .rev()
            .find_map(|(t, v)| match v {
                RawValue::Varint(x) if *t == tag => Some(*x),
                _ => None,
            })
            .unwrap_or(0)
    }

    fn bytes(&self, tag: u32) -> &'a [u8] {
        self.all_bytes(tag).last().copied().unwrap_or(&[])
    }

    fn all_bytes(&self, tag: u32) -> Vec<&'a [u8]> {
        self.0
            .iter()
            .filter_map(|(t, v)| match v {
                RawValue::Bytes(b) if *t == tag => Some(*b),
                _ => None,
            })
            .collect()
    }

    fn string(&self, tag: u32) -> String {
        lossy(self.bytes(tag))
    }

    fn all_strings(&self, tag: u32) -> Vec<Value> {
        self.all_bytes(tag)
            .into_iter()
            .map(|b| Value::String(lossy(b)))
            .collect()
    }
}

/// Go's zero `time.Time`, which `metav1.Time` writes to JSON as `null`.
const GO_ZERO_TIME_UNIX: i64 = -62_135_596_800;

fn format_time(seconds: i64, nanos: i32, micro: bool) -> std::result::Result<Value, String> {
    if seconds == GO_ZERO_TIME_UNIX && nanos == 0 {
        return Ok(Value::Null);
    }
    let ts = jiff::Timestamp::new(seconds, nanos).map_err(|e| e.to_string())?;
    let fmt = if micro {
        "%Y-%m-%dT%H:%M:%S.%6fZ"
    } else {
        "%Y-%m-%dT%H:%M:%SZ"
    };
    Ok(Value::String(ts.strftime(fmt).to_string()))
}

/// Go's `time.Duration.String()`: `1h0m0s`, `1.5s`, `300ms`, `0s`.
pub fn go_duration(d: i64) -> String {
    if d == 0 {
        return "0s".into();
    }
    let neg = d < 0;
    let mut u = d.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        let (prec, unit) = if u < 1_000 {
            (0, "ns")
        } else if u < 1_000_000 {
            (3, "µs")
        } else {
            (6, "ms")
        };
        out.push_str(&frac(u, prec));
        out.push_str(unit);
    } else {
        let secs_part = frac(u % 60_000_000_000, 9);
        u /= 60_000_000_000;
        let mut s = String::new();
        if u > 0 {
            let minutes = u % 60;
            let hours = u / 60;
            if hours > 0 {
                s.push_str(&format!("{hours}h"));
            }
            s.push_str(&format!("{minutes}m"));
        }
        s.push_str(&secs_part);
        s.push('s');
        out = s;
    }
    if neg { format!("-{out}") } else { out }
}

/// `v / 10^prec` printed with the fraction's trailing zeros removed.
fn frac(v: u64, prec: u32) -> String {
    let div = 10u64.pow(prec);
    let whole = v / div;
    let mut f = v % div;
    if f == 0 {
        return whole.to_string();
    }
    let mut digits = prec as usize;
    while f.is_multiple_of(10) {
        f /= 10;
        digits -= 1;
    }
    format!("{whole}.{f:0digits$}")
}

// ------------------------------------------------------------------------- encoding

/// Encodes an object (with `apiVersion` and `kind`) as a complete protobuf body: magic,
/// envelope and message. The inverse of [`decode_object`].
pub fn encode_object(value: &Value) -> Result<Vec<u8>> {
    let obj = value
        .as_object()
        .ok_or_else(|| enc_err("", "object expected"))?;
    let api_version = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = obj
        .get("kind")
        .and_then(Value::as_str)
        .ok_or(ProtobufError::MissingKind)?;
    let (group, version) = schema::split_api_version(api_version);
    let ty = schema::kind_type(group, version, kind).ok_or_else(|| ProtobufError::UnknownKind {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
    })?;
    let raw = encode_message(value, ty)?;
    let mut meta = Vec::new();
    put_bytes(&mut meta, 1, api_version.as_bytes());
    put_bytes(&mut meta, 2, kind.as_bytes());
    let mut body = MAGIC.to_vec();
    put_bytes(&mut body, 1, &meta);
    put_bytes(&mut body, 2, &raw);
    put_bytes(&mut body, 3, b"");
    put_bytes(&mut body, 4, b"");
    Ok(body)
}

/// Encodes one value of type `ty` as its message (no envelope).
pub fn encode_message(value: &Value, ty: &'static TypeSchema) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    encode_typed(value, ty, "", &mut out, 0)?;
    Ok(out)
}

fn enc_err(path: &str, message: &str) -> ProtobufError {
    ProtobufError::Encode {
        path: path.to_string(),
        message: message.to_string(),
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_key(out: &mut Vec<u8>, tag: u32, wire: u8) {
    put_varint(out, (u64::from(tag) << 3) | u64::from(wire));
}

fn put_bytes(out: &mut Vec<u8>, tag: u32, b: &[u8]) {
    put_key(out, tag, 2);
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn encode_typed(
    v: &Value,
    ty: &'static TypeSchema,
    path: &str,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(ProtobufError::TooDeep);
    }
    match ty.special() {
        Special::None => {
            let obj = v
                .as_object()
                .ok_or_else(|| enc_err(path, "object expected"))?;
            encode_fields(obj, ty, path, out, depth)
        }
        Special::Quantity => {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return Err(enc_err(path, "quantity expected")),
            };
            put_bytes(out, 1, s.as_bytes());
            Ok(())
        }
        Special::IntOrString => {
            match v {
                Value::Number(n) => {
                    let i = n
                        .as_i64()
                        .ok_or_else(|| enc_err(path, "integer expected"))?;
                    put_key(out, 1, 0);
                    put_varint(out, 0);
                    put_key(out, 2, 0);
                    put_varint(out, i as u64);
                    put_bytes(out, 3, b"");
                }
                Value::String(s) => {
                    put_key(out, 1, 0);
                    put_varint(out, 1);
                    put_key(out, 2, 0);
                    put_varint(out, 0);
                    put_bytes(out, 3, s.as_bytes());
                }
                _ => return Err(enc_err(path, "integer or string expected")),
            }
            Ok(())
        }
        Special::Time | Special::MicroTime => {
            let (seconds, nanos) = match v {
                Value::Null => return Ok(()),
                Value::String(s) => {
                    let ts: jiff::Timestamp = s
                        .parse()
                        .map_err(|e: jiff::Error| enc_err(path, &e.to_string()))?;
                    (ts.as_second(), ts.subsec_nanosecond())
                }
                _ => return Err(enc_err(path, "timestamp expected")),
            };
            put_key(out, 1, 0);
            put_varint(out, seconds as u64);
            put_key(out, 2, 0);
            put_varint(out, nanos as i64 as u64);
            Ok(())
        }
        Special::Duration => {
            let s = v
                .as_str()
                .ok_or_else(|| enc_err(path, "duration expected"))?;
            let nanos = parse_go_duration(s).ok_or_else(|| enc_err(path, "invalid duration"))?;
            put_key(out, 1, 0);
            put_varint(out, nanos as u64);
            Ok(())
        }
        Special::RawExtension | Special::FieldsV1 | Special::Json => {
            if !v.is_null() {
                let raw = serde_json::to_vec(v).map_err(|e| enc_err(path, &e.to_string()))?;
                put_bytes(out, 1, &raw);
            }
            Ok(())
        }
        Special::StringList => {
            for item in v
                .as_array()
                .ok_or_else(|| enc_err(path, "string array expected"))?
            {
                put_bytes(out, 1, item.as_str().unwrap_or_default().as_bytes());
            }
            Ok(())
        }
        Special::JsonSchemaPropsOrArray => {
            let props = union_props(ty, 1)?;
            match v {
                Value::Array(items) => {
                    for item in items {
                        let mut b = Vec::new();
                        encode_typed(item, props, path, &mut b, depth + 1)?;
                        put_bytes(out, 2, &b);
                    }
                }
                other => {
                    let mut b = Vec::new();
                    encode_typed(other, props, path, &mut b, depth + 1)?;
                    put_bytes(out, 1, &b);
                }
            }
            Ok(())
        }
        Special::JsonSchemaPropsOrBool => {
            match v {
                Value::Bool(b) => {
                    put_key(out, 1, 0);
                    put_varint(out, u64::from(*b));
                }
                other => {
                    let mut b = Vec::new();
                    encode_typed(other, union_props(ty, 2)?, path, &mut b, depth + 1)?;
                    put_key(out, 1, 0);
                    put_varint(out, 1);
                    put_bytes(out, 2, &b);
                }
            }
            Ok(())
        }
        Special::JsonSchemaPropsOrStringArray => {
            match v {
                Value::Array(items) => {
                    for item in items {
                        put_bytes(out, 2, item.as_str().unwrap_or_default().as_bytes());
                    }
                }
                other => {
                    let mut b = Vec::new();
                    encode_typed(other, union_props(ty, 1)?, path, &mut b, depth + 1)?;
                    put_bytes(out, 1, &b);
                }
            }
            Ok(())
        }
    }
}

fn encode_fields(
    obj: &Map<String, Value>,
    ty: &'static TypeSchema,
    path: &str,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<()> {
    let mut fields: Vec<&'static FieldSchema> =
        ty.fields().iter().filter(|f| f.tag() > 0).collect();
    fields.sort_by_key(|f| f.tag());
    for f in fields {
        let fpath = if path.is_empty() {
            f.json_name().to_string()
        } else {
            format!("{path}.{}", f.json_name())
        };
        if f.cardinality() == Cardinality::Inline {
            // Go always writes an embedded struct, empty or not.
            if let Some(inner) = f.message_type() {
                let mut b = Vec::new();
                encode_fields(obj, inner, path, &mut b, depth + 1)?;
                put_bytes(out, f.tag(), &b);
            }
            continue;
        }
        let Some(v) = obj.get(f.json_name()) else {
            continue;
        };
        if v.is_null() {
            continue;
        }
        match f.cardinality() {
            Cardinality::Repeated => {
                for (i, item) in v
                    .as_array()
                    .ok_or_else(|| enc_err(&fpath, "array expected"))?
                    .iter()
                    .enumerate()
                {
                    encode_value(item, f, &format!("{fpath}[{i}]"), out, depth)?;
                }
            }
            Cardinality::Map => {
                for (k, item) in v
                    .as_object()
                    .ok_or_else(|| enc_err(&fpath, "object expected"))?
                {
                    let mut entry = Vec::new();
                    put_bytes(&mut entry, 1, k.as_bytes());
                    encode_value_tagged(item, f, 2, &format!("{fpath}.{k}"), &mut entry, depth)?;
                    put_bytes(out, f.tag(), &entry);
                }
            }
            _ => encode_value(v, f, &fpath, out, depth)?,
        }
    }
    Ok(())
}

fn encode_value(
    v: &Value,
    f: &'static FieldSchema,
    path: &str,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<()> {
    encode_value_tagged(v, f, f.tag(), path, out, depth)
}

fn encode_value_tagged(
    v: &Value,
    f: &'static FieldSchema,
    tag: u32,
    path: &str,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<()> {
    match f.wire() {
        Wire::String => put_bytes(
            out,
            tag,
            v.as_str()
                .ok_or_else(|| enc_err(path, "string expected"))?
                .as_bytes(),
        ),
        Wire::Bytes => {
            let s = v
                .as_str()
                .ok_or_else(|| enc_err(path, "base64 string expected"))?;
            let b = base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|e| enc_err(path, &e.to_string()))?;
            put_bytes(out, tag, &b);
        }
        Wire::Bool => {
            put_key(out, tag, 0);
            put_varint(
                out,
                u64::from(v.as_bool().ok_or_else(|| enc_err(path, "bool expected"))?),
            );
        }
        Wire::Int32 | Wire::Int64 => {
            let i = v
                .as_i64()
                .ok_or_else(|| enc_err(path, "integer expected"))?;
            put_key(out, tag, 0);
            put_varint(out, i as u64);
        }
        Wire::Double => {
            let x = v.as_f64().ok_or_else(|| enc_err(path, "number expected"))?;
            put_key(out, tag, 1);
            out.extend_from_slice(&x.to_le_bytes());
        }
        Wire::Message => {
            let ty = f
                .message_type()
                .ok_or_else(|| enc_err(path, "unknown message type"))?;
            let mut b = Vec::new();
            encode_typed(v, ty, path, &mut b, depth + 1)?;
            put_bytes(out, tag, &b);
        }
    }
    Ok(())
}

/// Parses a Go duration string (`1h2m3.5s`, `300ms`, `-1.5h`) into nanoseconds.
pub fn parse_go_duration(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_end == 0 {
            return None;
        }
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += n * scale;
    }
    if total > i64::MAX as f64 {
        return None;
    }
    let t = total.round() as i64;
    Some(if neg { -t } else { t })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_pb::api::apps::v1 as apps;
    use k8s_pb::api::batch::v1 as batch;
    use k8s_pb::api::core::v1 as core;
    use k8s_pb::apimachinery::pkg::api::resource::Quantity;
    use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
    use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
    use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
    use prost::Message;
    use serde_json::json;
    use std::collections::BTreeMap;

    /// A body as kubectl sends it: magic, envelope, message.
    fn body<M: Message>(api_version: &str, kind: &str, msg: &M) -> Vec<u8> {
        let env = Unknown {
            type_meta: Some(TypeMeta {
                api_version: Some(api_version.into()),
                kind: Some(kind.into()),
            }),
            raw: Some(msg.encode_to_vec()),
            content_encoding: Some(String::new()),
            content_type: Some(String::new()),
        };
        let mut b = MAGIC.to_vec();
        b.extend(env.encode_to_vec());
        b
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    /// ObjectMeta the way Go writes it: every non-pointer field present, zero or not.
    fn go_meta(name: &str, namespace: &str) -> meta::ObjectMeta {
        meta::ObjectMeta {
            name: s(name),
            generate_name: s(""),
            namespace: s(namespace),
            self_link: s(""),
            uid: s(""),
            resource_version: s(""),
            generation: Some(0),
            creation_timestamp: Some(meta::Time {
                seconds: Some(GO_ZERO_TIME_UNIX),
                nanos: Some(0),
            }),
            deletion_grace_period_seconds: None,
            ..Default::default()
        }
    }

    #[test]
    fn a_namespace_decodes_like_its_json() {
        let ns = core::Namespace {
            metadata: Some(go_meta("team-a", "")),
            spec: Some(core::NamespaceSpec::default()),
            status: Some(core::NamespaceStatus {
                phase: s(""),
                conditions: vec![],
            }),
        };
        let got = decode_object(&body("v1", "Namespace", &ns)).unwrap();
        assert_eq!(
            got,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}, "spec": {}, "status": {}})
        );
    }

    #[test]
    fn configmaps_and_secrets_keep_their_data_maps() {
        let cm = core::ConfigMap {
            metadata: Some(go_meta("cfg", "default")),
            data: BTreeMap::from([("a".into(), "1".into()), ("empty".into(), String::new())]),
            binary_data: BTreeMap::from([("bin".into(), vec![0u8, 1, 2])]),
            immutable: None,
        };
        let got = decode_object(&body("v1", "ConfigMap", &cm)).unwrap();
        assert_eq!(
            got,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "default"},
                   "data": {"a": "1", "empty": ""}, "binaryData": {"bin": "AAEC"}})
        );
        let secret = core::Secret {
            metadata: Some(go_meta("tls", "default")),
            data: BTreeMap::from([("password".into(), b"hunter2".to_vec())]),
            r#type: s("Opaque"),
            immutable: Some(false),
            ..Default::default()
        };
        let got = decode_object(&body("v1", "Secret", &secret)).unwrap();
        assert_eq!(
            got,
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "tls", "namespace": "default"},
                   "data": {"password": "aHVudGVyMg=="}, "type": "Opaque", "immutable": false})
        );
    }

    #[test]
    fn a_service_target_port_is_an_int_or_a_string_by_its_type() {
        let port = |name: &str, target: IntOrString| core::ServicePort {
            name: s(name),
            protocol: s("TCP"),
            port: Some(80),
            target_port: Some(target),
            node_port: Some(0),
            app_protocol: None,
        };
        let svc = core::Service {
            metadata: Some(go_meta("web", "default")),
            spec: Some(core::ServiceSpec {
                ports: vec![
                    port(
                        "http",
                        IntOrString {
                            r#type: Some(0),
                            int_val: Some(8080),
                            str_val: s(""),
                        },
                    ),
                    port(
                        "named",
                        IntOrString {
                            r#type: Some(1),
                            int_val: Some(0),
                            str_val: s("web"),
                        },
                    ),
                ],
                selector: BTreeMap::from([("app".into(), "web".into())]),
                r#type: s("ClusterIP"),
                cluster_ip: s(""),
                session_affinity: s(""),
                ..Default::default()
            }),
            status: Some(core::ServiceStatus {
                load_balancer: Some(Default::default()),
                conditions: vec![],
            }),
        };
        let got = decode_object(&body("v1", "Service", &svc)).unwrap();
        assert_eq!(
            got["spec"],
            json!({"ports": [
                    {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080},
                    {"name": "named", "protocol": "TCP", "port": 80, "targetPort": "web"}],
                   "selector": {"app": "web"}, "type": "ClusterIP"})
        );
        assert_eq!(got["status"], json!({"loadBalancer": {}}));
    }

    fn deployment() -> apps::Deployment {
        let mut meta = go_meta("web", "default");
        meta.labels = BTreeMap::from([("app".into(), "web".into())]);
        meta.creation_timestamp = Some(meta::Time {
            seconds: Some(1_704_067_200),
            nanos: Some(0),
        });
        let container = core::Container {
            name: s("nginx"),
            image: s("nginx:1.27"),
            resources: Some(core::ResourceRequirements {
                limits: BTreeMap::from([("memory".into(), Quantity { string: s("128Mi") })]),
                requests: BTreeMap::from([("cpu".into(), Quantity { string: s("250m") })]),
                claims: vec![],
            }),
            termination_message_path: s(""),
            image_pull_policy: s(""),
            stdin: Some(false),
            tty: Some(false),
            ..Default::default()
        };
        apps::Deployment {
            metadata: Some(meta),
            spec: Some(apps::DeploymentSpec {
                replicas: Some(0),
                selector: Some(meta::LabelSelector {
                    match_labels: BTreeMap::from([("app".into(), "web".into())]),
                    match_expressions: vec![],
                }),
                template: Some(core::PodTemplateSpec {
                    metadata: Some(meta::ObjectMeta {
                        labels: BTreeMap::from([("app".into(), "web".into())]),
                        creation_timestamp: Some(meta::Time {
                            seconds: Some(GO_ZERO_TIME_UNIX),
                            nanos: Some(0),
                        }),
                        ..Default::default()
                    }),
                    spec: Some(core::PodSpec {
                        containers: vec![container],
                        ..Default::default()
                    }),
                }),
                strategy: Some(apps::DeploymentStrategy {
                    r#type: s(""),
                    rolling_update: Some(apps::RollingUpdateDeployment {
                        max_unavailable: Some(IntOrString {
                            r#type: Some(1),
                            int_val: Some(0),
                            str_val: s("25%"),
                        }),
                        max_surge: None,
                    }),
                }),
                min_ready_seconds: Some(0),
                paused: Some(false),
                ..Default::default()
            }),
            status: Some(apps::DeploymentStatus::default()),
        }
    }

    #[test]
    fn a_deployment_decodes_with_template_quantities_times_and_explicit_zero_replicas() {
        let got = decode_object(&body("apps/v1", "Deployment", &deployment())).unwrap();
        assert_eq!(
            got,
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"},
                             "creationTimestamp": "2024-01-01T00:00:00Z"},
                "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                        {"name": "nginx", "image": "nginx:1.27",
                         "resources": {"limits": {"memory": "128Mi"}, "requests": {"cpu": "250m"}}}]}},
                    "strategy": {"rollingUpdate": {"maxUnavailable": "25%"}}},
                "status": {}})
        );
    }

    #[test]
    fn a_job_decodes_with_its_pointer_fields() {
        let job = batch::Job {
            metadata: Some(go_meta("pi", "default")),
            spec: Some(batch::JobSpec {
                backoff_limit: Some(0),
                template: Some(core::PodTemplateSpec {
                    metadata: None,
                    spec: Some(core::PodSpec {
                        containers: vec![core::Container {
                            name: s("pi"),
                            image: s("perl"),
                            command: vec!["perl".into(), "-e".into(), "print 1".into()],
                            ..Default::default()
                        }],
                        restart_policy: s("Never"),
                        ..Default::default()
                    }),
                }),
                ..Default::default()
            }),
            status: None,
        };
        let got = decode_object(&body("batch/v1", "Job", &job)).unwrap();
        assert_eq!(
            got["spec"],
            json!({"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "pi", "image": "perl", "command": ["perl", "-e", "print 1"]}]}}})
        );
    }

    #[test]
    fn micro_times_durations_and_raw_json_keep_their_json_forms() {
        let event = k8s_pb::api::events::v1::Event {
            metadata: Some(go_meta("e", "default")),
            event_time: Some(meta::MicroTime {
                seconds: Some(1_704_067_200),
                nanos: Some(123_456_000),
            }),
            reason: s("Started"),
            ..Default::default()
        };
        let got = decode_object(&body("events.k8s.io/v1", "Event", &event)).unwrap();
        assert_eq!(got["eventTime"], json!("2024-01-01T00:00:00.123456Z"));

        let rev = apps::ControllerRevision {
            metadata: Some(go_meta("r", "default")),
            data: Some(k8s_pb::apimachinery::pkg::runtime::RawExtension {
                raw: Some(br#"{"spec":{"a":1}}"#.to_vec()),
            }),
            revision: Some(3),
        };
        let got = decode_object(&body("apps/v1", "ControllerRevision", &rev)).unwrap();
        assert_eq!(got["data"], json!({"spec": {"a": 1}}));
        assert_eq!(got["revision"], json!(3));
    }

    #[test]
    fn durations_print_as_go_does() {
        let cases = [
            (0, "0s"),
            (3_600_000_000_000, "1h0m0s"),
            (90_000_000_000, "1m30s"),
            (1_500_000_000, "1.5s"),
            (300_000_000, "300ms"),
            (1_500, "1.5µs"),
            (42, "42ns"),
            (-2_000_000_000, "-2s"),
            (3_723_000_000_000, "1h2m3s"),
        ];
        for (nanos, want) in cases {
            assert_eq!(go_duration(nanos), want);
            assert_eq!(parse_go_duration(want), Some(nanos), "{want}");
        }
    }

    #[test]
    fn encoding_then_decoding_gives_the_same_object_and_prost_reads_it() {
        let objects = [
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": "b"}},
                   "data": {"k": "v"}, "binaryData": {"b": "AAEC"}}),
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": "web", "creationTimestamp": "2024-01-01T00:00:00Z"},
                   "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                       {"name": "c", "image": "i", "ports": [{"containerPort": 80}],
                        "resources": {"limits": {"cpu": "1"}},
                        "livenessProbe": {"httpGet": {"path": "/", "port": "http"}}}],
                       "volumes": [{"name": "v", "configMap": {"name": "cm"}}]}},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                   "spec": {"ports": [{"port": 80, "targetPort": "web"}], "clusterIPs": ["10.0.0.1"]}}),
        ];
        for obj in objects {
            let bytes = encode_object(&obj).unwrap();
            assert_eq!(decode_object(&bytes).unwrap(), obj);
        }
        let dep = deployment();
        let bytes =
            encode_object(&decode_object(&body("apps/v1", "Deployment", &dep)).unwrap()).unwrap();
        let env = decode_envelope(&bytes).unwrap();
        let back = apps::Deployment::decode(env.raw.as_slice()).unwrap();
        assert_eq!(back.spec.as_ref().unwrap().replicas, Some(0));
        assert_eq!(
            back.spec
                .unwrap()
                .template
                .unwrap()
                .spec
                .unwrap()
                .containers[0]
                .image,
            s("nginx:1.27")
        );
    }

    #[test]
    fn bad_bodies_are_errors_not_panics() {
        assert_eq!(
            decode_object(b"{\"kind\":\"Pod\"}"),
            Err(ProtobufError::NotProtobuf)
        );
        assert_eq!(
            decode_object(b"k8s\0\x0a\x05"),
            Err(ProtobufError::Truncated)
        );
        let unknown = body("v1", "Frobnicator", &core::Namespace::default());
        assert!(matches!(
            decode_object(&unknown),
            Err(ProtobufError::UnknownKind { .. })
        ));

        // Random bytes and random corruptions of a real body.
        let good = body("apps/v1", "Deployment", &deployment());
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..3000 {
            let mut b = if round % 2 == 0 {
                let len = (next() % 200) as usize;
                let mut v = MAGIC.to_vec();
                v.extend((0..len).map(|_| next() as u8));
                v
            } else {
                good.clone()
            };
            for _ in 0..(1 + next() % 4) {
                let i = 4 + (next() as usize) % (b.len() - 4).max(1);
                if i < b.len() {
                    b[i] = next() as u8;
                }
            }
            if round % 3 == 0 {
                let cut = (next() as usize) % b.len();
                b.truncate(cut.max(4));
            }
            let _ = decode_object(&b);
        }
    }

    #[test]
    fn deeply_nested_schemas_are_refused_instead_of_overflowing_the_stack() {
        // JSONSchemaProps.not (tag 35?) nests without limit; build 200 levels of field 1 bytes.
        let props = schema::type_named(
            "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps",
        )
        .unwrap();
        let not_tag = props.field("not").unwrap().tag();
        let mut msg = Vec::new();
        for _ in 0..200 {
            let mut outer = Vec::new();
            put_bytes(&mut outer, not_tag, &msg);
            msg = outer;
        }
        assert_eq!(decode_message(&msg, props), Err(ProtobufError::TooDeep));
    }

    /// Bodies recorded from kubectl 1.32 and 1.33 with tools/capture-kubectl-bodies.py.
    #[test]
    fn bodies_recorded_from_real_kubectl_decode_to_the_json_upstream_would_store() {
        let cases: [(&[u8], Value); 12] = [
            (
                include_bytes!("../testdata/kubectl/create-namespaces.pb"),
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}, "spec": {}, "status": {}}),
            ),
            (
                include_bytes!("../testdata/kubectl/create-configmaps.pb"),
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "default"},
                       "data": {"a": "1", "empty": ""}}),
            ),
            (
                include_bytes!("../testdata/kubectl/create-secrets.pb"),
                json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "pw", "namespace": "default"},
                       "data": {"password": "aHVudGVyMg=="}}),
            ),
            (
                include_bytes!("../testdata/kubectl/create-services.pb"),
                json!({"apiVersion": "v1", "kind": "Service",
                       "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
                       "spec": {"ports": [{"name": "80-8080", "port": 80, "protocol": "TCP", "targetPort": 8080}],
                                "selector": {"app": "web"}, "type": "ClusterIP"},
                       "status": {"loadBalancer": {}}}),
            ),
            (
                include_bytes!("../testdata/kubectl/create-deployments.pb"),
                json!({"apiVersion": "apps/v1", "kind": "Deployment",
                       "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
                       "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}}, "strategy": {},
                                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                                    {"name": "nginx", "image": "nginx:1.27", "ports": [{"containerPort": 80}], "resources": {}}]}}},
                       "status": {}}),
            ),
            (
                include_bytes!("../testdata/kubectl/create-jobs.pb"),
                json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi", "namespace": "default"},
                       "spec": {"template": {"metadata": {}, "spec": {"restartPolicy": "Never", "containers": [
                           {"name": "pi", "image": "perl", "command": ["perl", "-e", "print 1"], "resources": {}}]}}},
                       "status": {}}),
            ),
            (
                include_bytes!("../testdata/kubectl/create-cronjobs.pb"),
                json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "cj", "namespace": "default"},
                       "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"metadata": {"name": "cj"}, "spec": {
                           "template": {"metadata": {}, "spec": {"restartPolicy": "OnFailure",
                               "containers": [{"name": "cj", "image": "busybox", "resources": {}}]}}}}},
                       "status": {}}),
            ),
            (
                include_bytes!("../testdata/kubectl/create-serviceaccounts.pb"),
                json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa", "namespace": "default"}}),
            ),
            (
                include_bytes!("../testdata/kubectl/create-roles.pb"),
                json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                       "metadata": {"name": "r", "namespace": "default"},
                       "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}),
            ),
            (
                include_bytes!("../testdata/kubectl/create-poddisruptionbudgets.pb"),
                json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                       "metadata": {"name": "p", "namespace": "default"},
                       "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}},
                       "status": {"currentHealthy": 0, "desiredHealthy": 0, "disruptionsAllowed": 0, "expectedPods": 0}}),
            ),
            (
                include_bytes!("../testdata/kubectl/create-token.pb"),
                json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "metadata": {},
                       "spec": {"expirationSeconds": 3600}, "status": {"token": ""}}),
            ),
            (
                include_bytes!("../testdata/kubectl/auth-can-i.pb"),
                json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "metadata": {},
                       "spec": {"resourceAttributes": {"namespace": "default", "resource": "pods", "verb": "create"}},
                       "status": {"allowed": false}}),
            ),
        ];
        for (body, want) in cases {
            let got = decode_object(body).unwrap();
            assert_eq!(got, want);
            // And back: our encoding decodes to the same object.
            assert_eq!(decode_object(&encode_object(&got).unwrap()).unwrap(), want);
        }
    }

    #[test]
    fn delete_options_decode_under_any_group_version() {
        let opts = meta::DeleteOptions {
            grace_period_seconds: Some(0),
            propagation_policy: s("Background"),
            dry_run: vec![],
            ..Default::default()
        };
        for api_version in ["v1", "apps/v1", "meta.k8s.io/v1"] {
            let got = decode_object(&body(api_version, "DeleteOptions", &opts)).unwrap();
            assert_eq!(
                got,
                json!({"apiVersion": api_version, "kind": "DeleteOptions", "gracePeriodSeconds": 0,
                       "propagationPolicy": "Background"})
            );
        }
    }
}
