//! What every built-in Kubernetes type looks like on the wire: its JSON field names, protobuf
//! tags and wire types, and the patch and list markers strategic merge patch is driven by.
//!
//! The table lives in `generated.rs`, written by `tools/gen-schema.py` from the k8s-pb and
//! k8s-openapi (v1_33) sources. This module is the API over it, plus [`normalize`], which
//! checks a decoded JSON object against its type the way upstream's strict JSON decoder does.

pub mod duplicates;
mod generated;
mod normalize;

pub use normalize::{FieldIssue, normalize, strict_decoding_message};

use generated::{FIELDS, KINDS, LIST_INFOS, TYPES};
use std::collections::HashMap;
use std::sync::LazyLock;

/// The protobuf wire type of a field (of a map's value for maps).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    String,
    Bool,
    Int32,
    Int64,
    Double,
    Bytes,
    Message,
}

/// How many values a field holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cardinality {
    Single,
    Repeated,
    /// A map from string keys to values of the field's wire type.
    Map,
    /// A Go struct embedded with `json:",inline"`: one protobuf field whose message's fields
    /// appear directly in the parent's JSON object (Volume's VolumeSource, Probe's handler).
    Inline,
}

/// Types whose JSON form is not the JSON form of their protobuf message. Code that walks
/// objects treats them as scalars.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Special {
    None,
    /// `resource.Quantity`: a string such as `"500m"` (JSON numbers are accepted on input).
    Quantity,
    /// `intstr.IntOrString`: a JSON number or string.
    IntOrString,
    /// `metav1.Time`: RFC 3339 with second precision.
    Time,
    /// `metav1.MicroTime`: RFC 3339 with microseconds.
    MicroTime,
    /// `metav1.Duration`: a Go duration string such as `"1h0m0s"`.
    Duration,
    /// `runtime.RawExtension`: any embedded JSON object.
    RawExtension,
    /// `metav1.FieldsV1`: a managed-fields trie, any JSON object.
    FieldsV1,
    /// apiextensions `JSON`: any JSON value.
    Json,
    /// A JSONSchemaProps object or an array of them.
    JsonSchemaPropsOrArray,
    /// A JSONSchemaProps object or a boolean.
    JsonSchemaPropsOrBool,
    /// A JSONSchemaProps object or an array of strings.
    JsonSchemaPropsOrStringArray,
    /// A message wrapping `repeated string items` that is a plain string array in JSON
    /// (`ExtraValue`, `metav1.Verbs`).
    StringList,
}

/// `+listType=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListType {
    Unspecified,
    Atomic,
    Set,
    Map,
}

/// `+mapType=` on map fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapType {
    Unspecified,
    Atomic,
    Granular,
}

/// `+structType=` on a type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StructType {
    Unspecified,
    Atomic,
    Granular,
}

/// `+patchStrategy=`: any of merge, retainKeys, replace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PatchStrategy(u8);

impl PatchStrategy {
    pub fn merge(self) -> bool {
        self.0 & 1 != 0
    }
    pub fn retain_keys(self) -> bool {
        self.0 & 2 != 0
    }
    pub fn replace(self) -> bool {
        self.0 & 4 != 0
    }
}

/// A list field's `+patchMergeKey` and `+listMapKey` markers.
#[derive(Debug)]
pub struct ListInfo {
    pub merge_key: &'static str,
    pub map_keys: &'static [&'static str],
}

/// One message type of the Kubernetes API.
#[derive(Debug)]
pub struct TypeSchema {
    name: &'static str,
    first: u32,
    len: u16,
    special: Special,
    struct_type: StructType,
}

/// One field of a [`TypeSchema`].
#[derive(Debug)]
pub struct FieldSchema {
    json: &'static str,
    tag: u32,
    wire: Wire,
    card: Cardinality,
    ty: u16,
    strategy: u8,
    list_type: ListType,
    map_type: MapType,
    info: u16,
    flags: u8,
}

/// Short names the generated table is written with.
#[allow(dead_code)]
mod codes {
    use super::*;
    pub const S: Wire = Wire::String;
    pub const B: Wire = Wire::Bool;
    pub const I: Wire = Wire::Int32;
    pub const L: Wire = Wire::Int64;
    pub const D: Wire = Wire::Double;
    pub const Y: Wire = Wire::Bytes;
    pub const M: Wire = Wire::Message;
    pub const O: Cardinality = Cardinality::Single;
    pub const R: Cardinality = Cardinality::Repeated;
    pub const P: Cardinality = Cardinality::Map;
    pub const N: Cardinality = Cardinality::Inline;
    pub const NO: u16 = u16::MAX;
    pub const LU: ListType = ListType::Unspecified;
    pub const LA: ListType = ListType::Atomic;
    pub const LS: ListType = ListType::Set;
    pub const LM: ListType = ListType::Map;
    pub const MU: MapType = MapType::Unspecified;
    pub const MA: MapType = MapType::Atomic;
    pub const MG: MapType = MapType::Granular;
    pub const SU: StructType = StructType::Unspecified;
    pub const SA: StructType = StructType::Atomic;
    pub const SG: StructType = StructType::Granular;

    pub const fn t(
        name: &'static str,
        first: u32,
        len: u16,
        special: Special,
        struct_type: StructType,
    ) -> TypeSchema {
        TypeSchema {
            name,
            first,
            len,
            special,
            struct_type,
        }
    }

    pub const fn f(
        json: &'static str,
        tag: u32,
        wire: Wire,
        card: Cardinality,
        ty: u16,
        strategy: u8,
        list_type: ListType,
        map_type: MapType,
        info: u16,
        flags: u8,
    ) -> FieldSchema {
        FieldSchema {
            json,
            tag,
            wire,
            card,
            ty,
            strategy,
            list_type,
            map_type,
            info,
            flags,
        }
    }
}

impl TypeSchema {
    /// The canonical upstream name: `io.k8s.api.core.v1.PodSpec`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The Go type name without its package: `PodSpec`.
    pub fn short_name(&self) -> &'static str {
        self.name.rsplit('.').next().unwrap_or(self.name)
    }

    /// The name Go's `reflect.Type.String()` gives the type: `v1.PodSpec`,
    /// `resource.Quantity`, `intstr.IntOrString`.
    pub fn go_name(&self) -> String {
        let mut parts = self.name.rsplit('.');
        let short = parts.next().unwrap_or(self.name);
        match parts.next() {
            Some(pkg) => format!("{pkg}.{short}"),
            None => short.to_string(),
        }
    }

    /// Every field, including the JSON-only ones (tag 0) and inline embeddings, in
    /// declaration order.
    pub fn fields(&self) -> &'static [FieldSchema] {
        let start = self.first as usize;
        FIELDS.get(start..start + self.len as usize).unwrap_or(&[])
    }

    /// The field a JSON key names, looking through inline embeddings.
    pub fn field(&self, json_name: &str) -> Option<&'static FieldSchema> {
        for f in self.fields() {
            if f.card == Cardinality::Inline {
                if let Some(found) = f.message_type().and_then(|t| t.field(json_name)) {
                    return Some(found);
                }
            } else if f.json == json_name {
                return Some(f);
            }
        }
        None
    }

    /// The field with a protobuf tag (not looking into inline embeddings, which have their
    /// own tag space).
    pub fn field_by_tag(&self, tag: u32) -> Option<&'static FieldSchema> {
        if tag == 0 {
            return None;
        }
        self.fields().iter().find(|f| f.tag == tag)
    }

    pub fn special(&self) -> Special {
        self.special
    }

    /// True for types with a custom JSON form, which object walkers treat as one value.
    pub fn is_scalar(&self) -> bool {
        self.special != Special::None
    }

    pub fn struct_type(&self) -> StructType {
        self.struct_type
    }
}

impl FieldSchema {
    /// The JSON name exactly as the API spells it (`podCIDR`); empty for inline embeddings.
    pub fn json_name(&self) -> &'static str {
        self.json
    }

    /// The protobuf tag; 0 for JSON-only fields such as `apiVersion` and `kind`.
    pub fn tag(&self) -> u32 {
        self.tag
    }

    /// The wire type of the value (of each element for lists, of each value for maps).
    pub fn wire(&self) -> Wire {
        self.wire
    }

    pub fn cardinality(&self) -> Cardinality {
        self.card
    }

    pub fn is_repeated(&self) -> bool {
        self.card == Cardinality::Repeated
    }

    pub fn is_map(&self) -> bool {
        self.card == Cardinality::Map
    }

    /// The message type of the value, for message fields.
    pub fn message_type(&self) -> Option<&'static TypeSchema> {
        TYPES.get(self.ty as usize)
    }

    pub fn patch_strategy(&self) -> PatchStrategy {
        PatchStrategy(self.strategy)
    }

    /// `+patchMergeKey`, for lists merged by key.
    pub fn merge_key(&self) -> Option<&'static str> {
        let key = LIST_INFOS.get(self.info as usize)?.merge_key;
        (!key.is_empty()).then_some(key)
    }

    pub fn list_type(&self) -> ListType {
        self.list_type
    }

    /// `+listMapKey` markers, in order.
    pub fn list_map_keys(&self) -> &'static [&'static str] {
        LIST_INFOS
            .get(self.info as usize)
            .map_or(&[], |i| i.map_keys)
    }

    pub fn map_type(&self) -> MapType {
        self.map_type
    }

    /// A field without `Option` in the v1_33 definition (Go: no `omitempty`).
    pub fn is_required(&self) -> bool {
        self.flags & 1 != 0
    }

    /// A Go pointer scalar whose explicit zero value means something (`replicas: 0`).
    pub fn keeps_zero(&self) -> bool {
        self.flags & 3 != 0
    }

    /// The Go type as `reflect.Type.String()` prints it: `[]v1.Container`, `*int32` is
    /// printed without the pointer as the JSON decoder reports it, `map[string]string`.
    pub fn go_type(&self) -> String {
        let elem = self.element_go_type();
        match self.card {
            Cardinality::Repeated => format!("[]{elem}"),
            Cardinality::Map => format!("map[string]{elem}"),
            _ => elem,
        }
    }

    /// The Go type of one value (of one element for lists and maps).
    pub fn element_go_type(&self) -> String {
        match self.wire {
            Wire::String => "string".into(),
            Wire::Bool => "bool".into(),
            Wire::Int32 => "int32".into(),
            Wire::Int64 => "int64".into(),
            Wire::Double => "float64".into(),
            Wire::Bytes => "[]uint8".into(),
            Wire::Message => match self.message_type() {
                Some(t) if t.special == Special::StringList => "[]string".into(),
                Some(t) => t.go_name(),
                None => "interface {}".into(),
            },
        }
    }
}

/// The type with a canonical name such as `io.k8s.api.core.v1.PodSpec`.
pub fn type_named(name: &str) -> Option<&'static TypeSchema> {
    TYPES
        .binary_search_by(|t| t.name.cmp(name))
        .ok()
        .map(|i| &TYPES[i])
}

/// Kinds that every group version accepts (metav1 registers them everywhere), so a request
/// body may name them with any apiVersion.
const META_OPTION_KINDS: &[&str] = &[
    "DeleteOptions",
    "ListOptions",
    "GetOptions",
    "CreateOptions",
    "UpdateOptions",
    "PatchOptions",
    "WatchEvent",
];

/// The type of a top-level kind: `kind_type("apps", "v1", "Deployment")`. The core group is
/// `""`. Lists (`PodList`) are kinds too.
pub fn kind_type(group: &str, version: &str, kind: &str) -> Option<&'static TypeSchema> {
    let found = KINDS
        .binary_search_by(|(g, v, k, _)| (*g, *v, *k).cmp(&(group, version, kind)))
        .ok()
        .and_then(|i| TYPES.get(KINDS[i].3 as usize));
    found.or_else(|| {
        META_OPTION_KINDS
            .contains(&kind)
            .then(|| kind_type("meta.k8s.io", "v1", kind))
            .flatten()
    })
}

/// Every (group, version, kind) the table knows, with its type.
pub fn kinds() -> impl Iterator<
    Item = (
        &'static str,
        &'static str,
        &'static str,
        &'static TypeSchema,
    ),
> {
    KINDS
        .iter()
        .filter_map(|(g, v, k, i)| TYPES.get(*i as usize).map(|t| (*g, *v, *k, t)))
}

/// A (group, version) a kind is served in, with its type.
pub type KindVersion = (&'static str, &'static str, &'static TypeSchema);

/// The group versions a kind is served in, by kind alone (`Deployment` -> apps/v1).
pub fn kinds_named(kind: &str) -> &'static [KindVersion] {
    static BY_KIND: LazyLock<HashMap<&'static str, Vec<KindVersion>>> = LazyLock::new(|| {
        let mut map: HashMap<_, Vec<_>> = HashMap::new();
        for (g, v, k, t) in kinds() {
            map.entry(k).or_default().push((g, v, t));
        }
        map
    });
    BY_KIND.get(kind).map_or(&[], |v| v.as_slice())
}

/// The schema of an object's own kind, from its `apiVersion` and `kind`.
pub fn kind_type_of(obj: &serde_json::Value) -> Option<&'static TypeSchema> {
    let av = obj.get("apiVersion").and_then(serde_json::Value::as_str)?;
    let kind = obj.get("kind").and_then(serde_json::Value::as_str)?;
    let (g, v) = split_api_version(av);
    kind_type(g, v, kind)
}

/// Splits an apiVersion into (group, version): `apps/v1` -> (`apps`, `v1`), `v1` -> (``, `v1`).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

/// Number of types, fields and kinds in the table (for reports and tests).
pub fn table_size() -> (usize, usize, usize) {
    (TYPES.len(), FIELDS.len(), KINDS.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_sorted_so_lookup_by_name_works() {
        assert!(TYPES.windows(2).all(|w| w[0].name < w[1].name));
        assert!(
            KINDS
                .windows(2)
                .all(|w| (w[0].0, w[0].1, w[0].2) < (w[1].0, w[1].1, w[1].2))
        );
    }

    #[test]
    fn every_message_field_points_at_a_type_and_every_range_is_in_bounds() {
        for t in TYPES.iter() {
            assert_eq!(t.fields().len(), t.len as usize, "{}", t.name);
            for f in t.fields() {
                if f.wire == Wire::Message {
                    assert!(f.message_type().is_some(), "{}.{}", t.name, f.json);
                }
            }
        }
    }

    #[test]
    fn json_names_keep_the_api_spelling() {
        let cases = [
            ("io.k8s.api.core.v1.NodeSpec", "podCIDR", 1, Wire::String),
            ("io.k8s.api.core.v1.NodeSpec", "podCIDRs", 7, Wire::String),
            ("io.k8s.api.core.v1.PodSpec", "hostIPC", 13, Wire::Bool),
            (
                "io.k8s.api.core.v1.ServiceSpec",
                "clusterIP",
                3,
                Wire::String,
            ),
            (
                "io.k8s.api.core.v1.ServiceSpec",
                "externalIPs",
                5,
                Wire::String,
            ),
            (
                "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
                "creationTimestamp",
                8,
                Wire::Message,
            ),
            ("io.k8s.api.core.v1.Pod", "apiVersion", 0, Wire::String),
        ];
        for (ty, field, tag, wire) in cases {
            let f = type_named(ty)
                .and_then(|t| t.field(field))
                .unwrap_or_else(|| panic!("{ty}.{field}"));
            assert_eq!((f.tag(), f.wire()), (tag, wire), "{ty}.{field}");
        }
    }

    #[test]
    fn patch_markers_come_from_the_upstream_comments() {
        let spec = type_named("io.k8s.api.core.v1.PodSpec").unwrap();
        let containers = spec.field("containers").unwrap();
        assert!(containers.patch_strategy().merge());
        assert_eq!(containers.merge_key(), Some("name"));
        assert_eq!(containers.list_type(), ListType::Map);
        let volumes = spec.field("volumes").unwrap();
        assert!(volumes.patch_strategy().merge() && volumes.patch_strategy().retain_keys());
        let ports = type_named("io.k8s.api.core.v1.Container")
            .unwrap()
            .field("ports")
            .unwrap();
        assert_eq!(ports.merge_key(), Some("containerPort"));
        assert_eq!(ports.list_map_keys(), ["containerPort", "protocol"]);
        let taints = type_named("io.k8s.api.core.v1.NodeSpec")
            .unwrap()
            .field("taints")
            .unwrap();
        assert_eq!(taints.patch_strategy(), PatchStrategy::default());
        let finalizers = type_named("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")
            .unwrap()
            .field("finalizers")
            .unwrap();
        assert!(finalizers.patch_strategy().merge());
        assert_eq!(finalizers.merge_key(), None);
        let strategy = type_named("io.k8s.api.apps.v1.DeploymentSpec")
            .unwrap()
            .field("strategy")
            .unwrap();
        assert!(strategy.patch_strategy().retain_keys());
    }

    #[test]
    fn inline_embeddings_are_looked_through() {
        let volume = type_named("io.k8s.api.core.v1.Volume").unwrap();
        let cm = volume.field("configMap").unwrap();
        assert_eq!(
            cm.message_type().unwrap().name(),
            "io.k8s.api.core.v1.ConfigMapVolumeSource"
        );
        let probe = type_named("io.k8s.api.core.v1.Probe").unwrap();
        assert!(probe.field("httpGet").is_some());
        let eph = type_named("io.k8s.api.core.v1.EphemeralContainer").unwrap();
        assert!(eph.field("image").is_some() && eph.field("targetContainerName").is_some());
        let sel = type_named("io.k8s.api.core.v1.ConfigMapKeySelector").unwrap();
        assert!(sel.field("name").is_some() && sel.field("key").is_some());
    }

    #[test]
    fn kinds_map_to_their_types() {
        let cases = [
            ("apps", "v1", "Deployment", "io.k8s.api.apps.v1.Deployment"),
            ("", "v1", "Pod", "io.k8s.api.core.v1.Pod"),
            ("", "v1", "PodList", "io.k8s.api.core.v1.PodList"),
            ("batch", "v1", "Job", "io.k8s.api.batch.v1.Job"),
            ("policy", "v1", "Eviction", "io.k8s.api.policy.v1.Eviction"),
            (
                "authentication.k8s.io",
                "v1",
                "TokenRequest",
                "io.k8s.api.authentication.v1.TokenRequest",
            ),
            (
                "apps",
                "v1",
                "DeleteOptions",
                "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
            ),
            (
                "apiextensions.k8s.io",
                "v1",
                "CustomResourceDefinition",
                "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
            ),
        ];
        for (g, v, k, name) in cases {
            assert_eq!(
                kind_type(g, v, k).map(|t| t.name()),
                Some(name),
                "{g}/{v} {k}"
            );
        }
        assert!(kind_type("apps", "v1", "Nope").is_none());
        assert!(
            kinds_named("Deployment")
                .iter()
                .any(|(g, v, _)| (*g, *v) == ("apps", "v1"))
        );
    }

    #[test]
    fn special_types_are_marked_as_scalars() {
        let cases = [
            (
                "io.k8s.apimachinery.pkg.api.resource.Quantity",
                Special::Quantity,
            ),
            (
                "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
                Special::IntOrString,
            ),
            ("io.k8s.apimachinery.pkg.apis.meta.v1.Time", Special::Time),
            (
                "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime",
                Special::MicroTime,
            ),
            (
                "io.k8s.apimachinery.pkg.runtime.RawExtension",
                Special::RawExtension,
            ),
            (
                "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1",
                Special::FieldsV1,
            ),
            (
                "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON",
                Special::Json,
            ),
            (
                "io.k8s.api.authentication.v1.ExtraValue",
                Special::StringList,
            ),
        ];
        for (name, special) in cases {
            assert_eq!(
                type_named(name).map(|t| t.special()),
                Some(special),
                "{name}"
            );
        }
    }

    #[test]
    fn go_type_names_read_like_go_error_messages() {
        let spec = type_named("io.k8s.api.core.v1.PodSpec").unwrap();
        assert_eq!(
            spec.field("containers").unwrap().go_type(),
            "[]v1.Container"
        );
        assert_eq!(
            spec.field("nodeSelector").unwrap().go_type(),
            "map[string]string"
        );
        assert_eq!(spec.field("priority").unwrap().go_type(), "int32");
        let req = type_named("io.k8s.api.core.v1.ResourceRequirements").unwrap();
        assert_eq!(
            req.field("limits").unwrap().go_type(),
            "map[string]resource.Quantity"
        );
    }
}
