//! The OpenAPI documents upstream's API server publishes, generated from the Kubernetes types
//! this server serves rather than copied from upstream spec files:
//!
//! * `/openapi/v3` — [`v3_index`]: every document path with its `serverRelativeURL`
//!   (`/openapi/v3/apis/apps/v1?hash=<SHA-512, upper-case hex>`), as kube-openapi's handler3;
//! * `/openapi/v3/<path>` — [`v3_document`]: one OpenAPI 3.0 document per group version
//!   (`api/v1`, `apis/apps/v1`) and per discovery endpoint (`api`, `apis`, `apis/apps`);
//! * `/openapi/v2` — [`v2_json`] and [`v2_protobuf`]: the Swagger 2.0 document of everything,
//!   as JSON and as gnostic's `openapi.v2.Document` protobuf.
//!
//! kubectl reads these to decide that the server validates fields itself (a PATCH operation per
//! kind with `x-kubernetes-group-version-kind` and a `fieldValidation` parameter), for
//! `kubectl explain`, and for strategic-merge-patch metadata in `apply`.
//!
//! Nothing is built until first asked for; what is built is kept as serialized bytes, never as
//! JSON trees. The first call of each family takes tens to a few hundred milliseconds of CPU:
//! call these from `spawn_blocking` in async code.

mod definitions;
mod gnostic;
mod paths;
mod render;

use bytes::Bytes;
use ferrokube_api::resources;
use paths::PathItem;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha512};
use std::collections::BTreeMap;
use std::sync::OnceLock;

pub use render::KUBERNETES_VERSION;

/// The Content-Type of [`v2_protobuf`], which is also what clients put in Accept to get it.
pub const V2_PROTOBUF_CONTENT_TYPE: &str =
    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// The v3 documents and the index that points at them.
struct V3Documents {
    index: Bytes,
    documents: BTreeMap<String, (Bytes, String)>,
}

/// The `/openapi/v3` index: `{"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=..."}, ...}}`.
pub fn v3_index() -> Bytes {
    v3_documents().index.clone()
}

/// The OpenAPI 3.0 document at `/openapi/v3/<path>` (`api/v1`, `apis/apps/v1`, `apis/apps`,
/// `api`, `apis`) with its hash, which is both the `hash` query value in the index and the
/// ETag. `None` for a path the server does not publish.
pub fn v3_document(path: &str) -> Option<(Bytes, String)> {
    let path = path.trim_matches('/');
    v3_documents().documents.get(path).cloned()
}

/// The Swagger 2.0 document at `/openapi/v2`, as JSON.
pub fn v2_json() -> Bytes {
    static DOC: OnceLock<Bytes> = OnceLock::new();
    DOC.get_or_init(|| Bytes::from(serde_json::to_vec(&v2_value()).unwrap_or_default()))
        .clone()
}

/// The Swagger 2.0 document at `/openapi/v2`, as a gnostic `openapi.v2.Document` protobuf
/// message; serve it with [`V2_PROTOBUF_CONTENT_TYPE`].
pub fn v2_protobuf() -> Bytes {
    static DOC: OnceLock<Bytes> = OnceLock::new();
    DOC.get_or_init(|| Bytes::from(gnostic::document(&v2_value())))
        .clone()
}

/// The ETag upstream gives a document: SHA-512 of its bytes, upper-case hex.
pub fn etag(data: &[u8]) -> String {
    Sha512::digest(data)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// Every document path under `/openapi/v3`, in index order.
fn v3_paths() -> Vec<String> {
    let mut out = vec!["api".to_string(), "api/v1".to_string(), "apis".to_string()];
    for (group, versions) in resources::GROUPS {
        out.push(format!("apis/{group}"));
        for version in versions.iter() {
            out.push(format!("apis/{group}/{version}"));
        }
    }
    out
}

/// The paths one v3 document describes.
fn v3_path_items(path: &str) -> Vec<PathItem> {
    if let Some(item) = paths::discovery_path(path) {
        return vec![item];
    }
    let (group, version) = match path.split('/').collect::<Vec<_>>().as_slice() {
        ["api", version] => ("", *version),
        ["apis", group, version] => (*group, *version),
        _ => return Vec::new(),
    };
    paths::group_version_paths(group, version)
}

fn v3_documents() -> &'static V3Documents {
    static DOCS: OnceLock<V3Documents> = OnceLock::new();
    DOCS.get_or_init(|| {
        let defs = definitions::build();
        let mut documents = BTreeMap::new();
        let mut index = Map::new();
        for path in v3_paths() {
            let items = v3_path_items(&path);
            if items.is_empty() {
                continue;
            }
            let doc = render::v3_document(&defs, &items);
            let data = serde_json::to_vec(&doc).unwrap_or_default();
            let hash = etag(&data);
            index.insert(
                path.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={hash}")}),
            );
            documents.insert(path, (Bytes::from(data), hash));
        }
        let index = serde_json::to_vec(&json!({"paths": index})).unwrap_or_default();
        V3Documents {
            index: Bytes::from(index),
            documents,
        }
    })
}

/// The whole Swagger 2.0 document as a JSON tree, built afresh: it is only ever kept
/// serialized.
fn v2_value() -> Value {
    let defs = definitions::build();
    let mut items: Vec<PathItem> = Vec::new();
    for doc in ["api", "apis"] {
        items.extend(paths::discovery_path(doc));
    }
    for (group, _) in resources::GROUPS {
        items.extend(paths::discovery_path(&format!("apis/{group}")));
    }
    for (group, version) in definitions::served_group_versions() {
        items.extend(paths::group_version_paths(group, version));
    }
    render::v2_document(&defs, &items)
}

#[cfg(test)]
mod tests;
