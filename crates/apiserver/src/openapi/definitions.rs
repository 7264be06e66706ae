//! Every schema the served API uses, named as upstream names them
//! (`io.k8s.api.core.v1.Pod`), in one neutral form both document renderers start from.
//!
//! Descriptions, JSON types, formats and `required` come from k8s-openapi's `schemars`
//! implementations, which k8s-openapi generates from upstream's own OpenAPI definitions, so they
//! carry upstream's words. What k8s-openapi drops on the way (the patch, list and map markers
//! strategic merge patch and server-side apply are driven by) comes back from
//! [`ferrokube_api::schema`], the table generated from the protobuf definitions. List kinds
//! (`PodList`) have no schemars implementation (k8s-openapi models them as one generic `List<T>`)
//! and are built from the same table.
//!
//! The neutral form is OpenAPI 3 flavoured: a reference is `{"$ref": "<name>"}` with the bare
//! definition name, possibly with a sibling `description`; IntOrString and Quantity are `oneOf`.
//! The v2 and v3 renderers rewrite references and the `oneOf` types for their format.

use ferrokube_api::resources::{self, RESOURCES};
use ferrokube_api::schema::{self, Cardinality, ListType, MapType, StructType};
use k8s_openapi::api::{
    apps::v1 as apps, authentication::v1 as authn, authorization::v1 as authz,
    autoscaling::v1 as autoscaling_v1, autoscaling::v2 as autoscaling_v2, batch::v1 as batch,
    certificates::v1 as certificates, coordination::v1 as coordination, core::v1 as core,
    discovery::v1 as discovery, events::v1 as events, networking::v1 as networking,
    policy::v1 as policy, rbac::v1 as rbac, scheduling::v1 as scheduling, storage::v1 as storage,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_openapi::schemars::{SchemaGenerator, generate::SchemaSettings};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// The metav1 kinds every group version registers (upstream's `AddToGroupVersion`); their
/// definitions carry one group-version-kind per served group version.
const PER_GROUP_VERSION_META_KINDS: &[&str] = &["DeleteOptions", "WatchEvent"];

/// Discovery documents, served at `/api`, `/apis`, `/apis/<group>` and `/<prefix>/<version>`.
pub const API_VERSIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIVersions";
pub const API_GROUP_LIST: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroupList";
pub const API_GROUP: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroup";
pub const API_RESOURCE_LIST: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList";
pub const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
pub const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
pub const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";

/// Every definition by name, in the neutral form.
pub type Definitions = BTreeMap<String, Value>;

/// Registers the root types of every served group version with the generator; schemars
/// follows their fields and collects everything they reference.
fn register_roots(generator: &mut SchemaGenerator) {
    macro_rules! roots {
        ($($ty:ty),* $(,)?) => { $( generator.subschema_for::<$ty>(); )* };
    }
    roots!(
        // core/v1
        core::Binding,
        core::ComponentStatus,
        core::ConfigMap,
        core::Endpoints,
        core::Event,
        core::LimitRange,
        core::Namespace,
        core::Node,
        core::PersistentVolumeClaim,
        core::PersistentVolume,
        core::Pod,
        core::PodTemplate,
        core::ReplicationController,
        core::ResourceQuota,
        core::Secret,
        core::ServiceAccount,
        core::Service,
        // apps/v1
        apps::ControllerRevision,
        apps::DaemonSet,
        apps::Deployment,
        apps::ReplicaSet,
        apps::StatefulSet,
        // authentication.k8s.io/v1, authorization.k8s.io/v1
        authn::SelfSubjectReview,
        authn::TokenReview,
        authn::TokenRequest,
        authz::LocalSubjectAccessReview,
        authz::SelfSubjectAccessReview,
        authz::SelfSubjectRulesReview,
        authz::SubjectAccessReview,
        // autoscaling
        autoscaling_v1::HorizontalPodAutoscaler,
        autoscaling_v1::Scale,
        autoscaling_v2::HorizontalPodAutoscaler,
        // batch/v1
        batch::CronJob,
        batch::Job,
        certificates::CertificateSigningRequest,
        coordination::Lease,
        discovery::EndpointSlice,
        events::Event,
        networking::IngressClass,
        networking::Ingress,
        networking::NetworkPolicy,
        policy::PodDisruptionBudget,
        policy::Eviction,
        rbac::ClusterRoleBinding,
        rbac::ClusterRole,
        rbac::RoleBinding,
        rbac::Role,
        scheduling::PriorityClass,
        storage::StorageClass,
        // meta/v1: what every group version answers with or accepts
        meta::APIGroup,
        meta::APIGroupList,
        meta::APIResourceList,
        meta::APIVersions,
        meta::DeleteOptions,
        meta::Patch,
        meta::Status,
        meta::WatchEvent<core::Pod>,
    );
}

/// Builds every definition the served API uses (about 400). Takes a few milliseconds and a
/// few MB while alive; callers keep what they render from it, not the definitions.
pub fn build() -> Definitions {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| {
            s.meta_schema = None;
            s.transforms.clear();
        })
        .into_generator();
    register_roots(&mut generator);
    let raw = generator.take_definitions(false);

    let mut defs = Definitions::new();
    for (name, mut schema) in raw {
        strip_ref_prefixes(&mut schema);
        defs.insert(name, schema);
    }
    for (name, schema) in defs.iter_mut() {
        decorate(name, schema);
    }
    for info in RESOURCES {
        let name = list_type_name(info.group, info.version, info.kind);
        let list = list_definition(info.group, info.version, info.kind, &defs);
        if let (Some(name), Some(list)) = (name, list) {
            defs.entry(name).or_insert(list);
        }
    }
    add_group_version_kinds(&mut defs);
    defs
}

/// `#/$defs/io.k8s.api.core.v1.PodSpec` -> `io.k8s.api.core.v1.PodSpec`, everywhere.
fn strip_ref_prefixes(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get_mut("$ref")
                && let Some(bare) = r.strip_prefix("#/$defs/")
            {
                *r = bare.to_string();
            }
            for v in map.values_mut() {
                strip_ref_prefixes(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strip_ref_prefixes),
        _ => {}
    }
}

/// Puts back what k8s-openapi leaves out and reshapes the types upstream serves specially.
fn decorate(name: &str, schema: &mut Value) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    match name {
        INT_OR_STRING => {
            obj.remove("x-kubernetes-int-or-string");
            obj.insert("format".into(), json!("int-or-string"));
            obj.insert(
                "oneOf".into(),
                json!([{"type": "integer"}, {"type": "string"}]),
            );
            // Not in upstream's built-in documents, but the one marker every structural-schema
            // consumer (kubectl-validate, kubeconform, CEL) understands for this type.
            obj.insert("x-kubernetes-int-or-string".into(), json!(true));
            return;
        }
        QUANTITY => {
            obj.remove("x-kubernetes-int-or-string");
            obj.insert(
                "oneOf".into(),
                json!([{"type": "string"}, {"type": "number"}]),
            );
            return;
        }
        _ => {}
    }
    // k8s-openapi makes `metadata` of every resource required (it is not an Option there);
    // upstream requires no object's metadata.
    if let Some(Value::Array(required)) = obj.get_mut("required") {
        required.retain(|r| r != "metadata");
        if required.is_empty() {
            obj.remove("required");
        }
    }
    let Some(table) = schema::type_named(name) else {
        return;
    };
    if table.struct_type() == StructType::Atomic {
        obj.insert("x-kubernetes-map-type".into(), json!("atomic"));
    }
    let Some(Value::Object(props)) = obj.get_mut("properties") else {
        return;
    };
    for (json_name, prop) in props.iter_mut() {
        let (Some(field), Some(prop)) = (table.field(json_name), prop.as_object_mut()) else {
            continue;
        };
        field_markers(field, prop);
    }
}

/// The `x-kubernetes-*` markers of one field, as upstream's OpenAPI generator writes them from
/// the Go struct tags and `+listType` / `+mapType` comments.
fn field_markers(field: &schema::FieldSchema, prop: &mut Map<String, Value>) {
    let strategy = field.patch_strategy();
    let mut parts = Vec::new();
    if strategy.merge() {
        parts.push("merge");
    }
    if strategy.retain_keys() {
        parts.push("retainKeys");
    }
    if strategy.replace() {
        parts.push("replace");
    }
    if !parts.is_empty() {
        prop.insert("x-kubernetes-patch-strategy".into(), json!(parts.join(",")));
    }
    if let Some(key) = field.merge_key() {
        prop.insert("x-kubernetes-patch-merge-key".into(), json!(key));
    }
    if field.cardinality() == Cardinality::Repeated {
        let list_type = match field.list_type() {
            ListType::Atomic => Some("atomic"),
            ListType::Set => Some("set"),
            ListType::Map => Some("map"),
            ListType::Unspecified => None,
        };
        if let Some(t) = list_type {
            prop.insert("x-kubernetes-list-type".into(), json!(t));
        }
        let keys = field.list_map_keys();
        if !keys.is_empty() {
            prop.insert("x-kubernetes-list-map-keys".into(), json!(keys));
        }
    }
    let map_type = match field.map_type() {
        MapType::Atomic => Some("atomic"),
        MapType::Granular => Some("granular"),
        MapType::Unspecified => None,
    };
    if let Some(t) = map_type {
        prop.insert("x-kubernetes-map-type".into(), json!(t));
    }
}

/// `io.k8s.api.core.v1.PodList` for core/v1 Pod, from the type table.
pub fn list_type_name(group: &str, version: &str, kind: &str) -> Option<String> {
    schema::kind_type(group, version, &format!("{kind}List")).map(|t| t.name().to_string())
}

/// The definition name of a served kind.
pub fn kind_type_name(group: &str, version: &str, kind: &str) -> Option<&'static str> {
    schema::kind_type(group, version, kind).map(|t| t.name())
}

/// A list kind's schema: upstream's list types all have the same four fields.
fn list_definition(group: &str, version: &str, kind: &str, defs: &Definitions) -> Option<Value> {
    let item = kind_type_name(group, version, kind)?;
    if !defs.contains_key(item) {
        return None;
    }
    let api_version = defs
        .get(item)
        .and_then(|d| d.pointer("/properties/apiVersion"))
        .cloned()
        .unwrap_or_else(|| json!({"type": "string"}));
    let kind_prop = defs
        .get(item)
        .and_then(|d| d.pointer("/properties/kind"))
        .cloned()
        .unwrap_or_else(|| json!({"type": "string"}));
    Some(json!({
        "description": format!("{kind}List is a list of {kind} objects."),
        "type": "object",
        "properties": {
            "apiVersion": api_version,
            "items": {
                "description": format!("items is the list of {kind} objects."),
                "type": "array",
                "items": {"$ref": item},
            },
            "kind": kind_prop,
            "metadata": {
                "$ref": "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta",
                "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
            },
        },
        "required": ["items"],
    }))
}

/// Every served (group, version), core first.
pub fn served_group_versions() -> Vec<(&'static str, &'static str)> {
    let mut out = vec![("", "v1")];
    for (group, versions) in resources::GROUPS {
        for version in versions.iter() {
            out.push((group, version));
        }
    }
    out
}

/// `x-kubernetes-group-version-kind` on every definition that is a served kind.
fn add_group_version_kinds(defs: &mut Definitions) {
    let mut kinds: Vec<(&str, &str, String)> = Vec::new();
    for info in RESOURCES {
        kinds.push((info.group, info.version, info.kind.to_string()));
        kinds.push((info.group, info.version, info.list_kind()));
        for sub in info.subresources {
            if !sub.kind.is_empty() && !sub.group.is_empty() {
                kinds.push((sub.group, sub.version, sub.kind.to_string()));
            }
        }
    }
    let mut gvks: BTreeMap<String, BTreeSet<(String, String, String)>> = BTreeMap::new();
    for (group, version, kind) in kinds {
        if let Some(name) = kind_type_name(group, version, &kind) {
            gvks.entry(name.to_string()).or_default().insert((
                group.to_string(),
                version.to_string(),
                kind,
            ));
        }
    }
    for (group, version) in served_group_versions() {
        for kind in PER_GROUP_VERSION_META_KINDS {
            gvks.entry(meta_name(kind)).or_default().insert((
                group.to_string(),
                version.to_string(),
                kind.to_string(),
            ));
        }
    }
    for kind in [
        "Status",
        "APIGroup",
        "APIGroupList",
        "APIResourceList",
        "APIVersions",
    ] {
        gvks.entry(meta_name(kind))
            .or_default()
            .insert((String::new(), "v1".into(), kind.into()));
    }
    for (name, set) in gvks {
        let Some(Value::Object(obj)) = defs.get_mut(&name) else {
            continue;
        };
        let list: Vec<Value> = set
            .into_iter()
            .map(|(g, v, k)| json!({"group": g, "kind": k, "version": v}))
            .collect();
        obj.insert("x-kubernetes-group-version-kind".into(), Value::Array(list));
    }
}

fn meta_name(kind: &str) -> String {
    format!("io.k8s.apimachinery.pkg.apis.meta.v1.{kind}")
}

/// The names `schema` references directly.
pub fn references(schema: &Value, out: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "$ref" {
                    if let Value::String(r) = v {
                        out.push(r.clone());
                    }
                } else {
                    references(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, out)),
        _ => {}
    }
}

/// `roots` and everything they reference, transitively.
pub fn closure<'a>(
    defs: &Definitions,
    roots: impl IntoIterator<Item = &'a str>,
) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<String> = roots.into_iter().map(str::to_string).collect();
    while let Some(name) = stack.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(schema) = defs.get(&name) {
            let mut refs = Vec::new();
            references(schema, &mut refs);
            stack.extend(refs.into_iter().filter(|r| !seen.contains(r)));
        }
    }
    seen.retain(|n| defs.contains_key(n));
    seen
}
