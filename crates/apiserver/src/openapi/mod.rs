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
//! Nothing is built until first asked for; what is built is kept as gzip-compressed serialized
//! bytes (the `*_gzip` functions hand them out as they are, for `Content-Encoding: gzip`),
//! never as JSON trees. The first call of each family (v3, v2 JSON, v2 protobuf) takes about a
//! hundred milliseconds of CPU: call these from `spawn_blocking` in async code.
//!
//! How upstream's handlers (kube-openapi `handler`, `handler3`) serve these, for the HTTP layer:
//! `/openapi/v3` is `application/json` with a quoted ETag of its own SHA-512; a group-version
//! document is `application/json`, `ETag: "<hash>"`, `Vary: Accept`, and when the request
//! carries `?hash=`: the same hash gets `Cache-Control: public, immutable` and an `Expires` a
//! year ahead, another hash a 301 to the current `serverRelativeURL`. `/openapi/v2` picks its
//! format with [`v2_negotiate`] (406 when nothing fits), sets `Vary: Accept` and
//! `ETag: "<`[`v2_etag`]`>"`. Both honour `If-None-Match` (304) and gzip when accepted.

mod definitions;
mod gnostic;
mod paths;
mod render;

use bytes::Bytes;
use ferrokube_api::resources;
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use paths::PathItem;
use serde_json::{Map, json};
use sha2::{Digest, Sha512};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::OnceLock;

pub use render::KUBERNETES_VERSION;

/// The Content-Type of [`v2_protobuf`]. Clients ask for it under this name or the deprecated
/// `application/com.github.proto-openapi.spec.v2@v1.0+protobuf` (kubectl 1.27 and 1.28).
pub const V2_PROTOBUF_CONTENT_TYPE: &str =
    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// A served document, kept gzip-compressed (JSON documents shrink about tenfold): clients
/// that accept gzip (kubectl always does) get these bytes as they are, others get them
/// inflated per request.
struct Stored {
    gzip: Bytes,
    etag: String,
}

/// Fast compression: the documents are compressed once, and level 1 already gets most of
/// the ratio on text this repetitive.
const GZIP_LEVEL: u32 = 6;

impl Stored {
    fn new(data: &[u8], etag: String) -> Stored {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::new(GZIP_LEVEL));
        // Writing into a Vec does not fail.
        let gzip = encoder
            .write_all(data)
            .and_then(|()| encoder.finish())
            .unwrap_or_default();
        Stored {
            gzip: Bytes::from(gzip),
            etag,
        }
    }

    /// The document itself. Inflating bytes this module deflated does not fail.
    fn identity(&self) -> Bytes {
        let mut out = Vec::new();
        let _ = GzDecoder::new(&self.gzip[..]).read_to_end(&mut out);
        Bytes::from(out)
    }
}

/// The v3 documents and the index that points at them.
struct V3Documents {
    index: Bytes,
    documents: BTreeMap<String, Stored>,
}

/// The `/openapi/v3` index: `{"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=..."}, ...}}`.
pub fn v3_index() -> Bytes {
    v3_documents().index.clone()
}

/// The OpenAPI 3.0 document at `/openapi/v3/<path>` (`api/v1`, `apis/apps/v1`, `apis/apps`,
/// `api`, `apis`) with its hash, which is both the `hash` query value in the index and the
/// ETag. `None` for a path the server does not publish. JSON only: upstream also offers
/// gnostic v3 protobuf, which no kubectl asks for.
pub fn v3_document(path: &str) -> Option<(Bytes, String)> {
    let stored = v3_documents().documents.get(path.trim_matches('/'))?;
    Some((stored.identity(), stored.etag.clone()))
}

/// [`v3_document`] gzip-compressed, to send with `Content-Encoding: gzip` when the client
/// accepts it.
pub fn v3_document_gzip(path: &str) -> Option<(Bytes, String)> {
    let stored = v3_documents().documents.get(path.trim_matches('/'))?;
    Some((stored.gzip.clone(), stored.etag.clone()))
}

/// The Swagger 2.0 document at `/openapi/v2`, as JSON.
pub fn v2_json() -> Bytes {
    v2_json_stored().identity()
}

/// [`v2_json`] gzip-compressed.
pub fn v2_json_gzip() -> Bytes {
    v2_json_stored().gzip.clone()
}

/// The Swagger 2.0 document at `/openapi/v2`, as a gnostic `openapi.v2.Document` protobuf
/// message; serve it with [`V2_PROTOBUF_CONTENT_TYPE`].
pub fn v2_protobuf() -> Bytes {
    v2_protobuf_stored().identity()
}

/// [`v2_protobuf`] gzip-compressed.
pub fn v2_protobuf_gzip() -> Bytes {
    v2_protobuf_stored().gzip.clone()
}

/// The ETag of `/openapi/v2` in either format: upstream hashes the JSON form for both.
pub fn v2_etag() -> String {
    match V2_JSON.get() {
        Some(json) => json.etag.clone(),
        None => v2_protobuf_stored().etag.clone(),
    }
}

/// A format of `/openapi/v2`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum V2Format {
    Json,
    Protobuf,
}

impl V2Format {
    pub fn content_type(self) -> &'static str {
        match self {
            V2Format::Json => "application/json",
            V2Format::Protobuf => V2_PROTOBUF_CONTENT_TYPE,
        }
    }

    pub fn body(self) -> Bytes {
        match self {
            V2Format::Json => v2_json(),
            V2Format::Protobuf => v2_protobuf(),
        }
    }

    /// [`V2Format::body`] gzip-compressed.
    pub fn body_gzip(self) -> Bytes {
        match self {
            V2Format::Json => v2_json_gzip(),
            V2Format::Protobuf => v2_protobuf_gzip(),
        }
    }
}

/// Picks the `/openapi/v2` format for an Accept header as kube-openapi does: clauses by
/// quality, and per clause JSON, then the deprecated protobuf subtype kubectl 1.27/1.28 send
/// (`...spec.v2@v1.0+protobuf`), then the current one; both protobuf subtypes are answered
/// with [`V2_PROTOBUF_CONTENT_TYPE`]. An empty header means `*/*` (JSON). `None`: answer 406.
pub fn v2_negotiate(accept: &str) -> Option<V2Format> {
    const OFFERS: [(&str, V2Format); 3] = [
        ("json", V2Format::Json),
        (
            "com.github.proto-openapi.spec.v2@v1.0+protobuf",
            V2Format::Protobuf,
        ),
        (
            "com.github.proto-openapi.spec.v2.v1.0+protobuf",
            V2Format::Protobuf,
        ),
    ];
    let accept = if accept.trim().is_empty() {
        "*/*"
    } else {
        accept
    };
    let mut clauses: Vec<(f32, usize, &str, &str)> = Vec::new();
    for clause in accept.split(',') {
        let mut parts = clause.split(';');
        let media = parts.next().unwrap_or_default().trim();
        let mut q = 1.0f32;
        for param in parts {
            if let Some(v) = param.trim().strip_prefix("q=") {
                q = v.trim().parse().unwrap_or(0.0);
            }
        }
        let (ty, sub) = media.split_once('/').unwrap_or((media, "*"));
        let wildcards = usize::from(ty == "*") + usize::from(sub == "*");
        if q > 0.0 {
            clauses.push((q, wildcards, ty, sub));
        }
    }
    clauses.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, _, ty, sub) in clauses {
        for (offer, format) in OFFERS {
            if (ty == "application" || ty == "*") && (sub == offer || sub == "*") {
                return Some(format);
            }
        }
    }
    None
}

static V2_JSON: OnceLock<Stored> = OnceLock::new();

fn v2_json_stored() -> &'static Stored {
    V2_JSON.get_or_init(|| {
        let (defs, items) = v2_parts();
        let data = render::v2_document(&defs, &items);
        Stored::new(&data, etag(&data))
    })
}

/// The protobuf form, with the hash of the JSON form it encodes; the JSON itself is only
/// hashed, not kept.
fn v2_protobuf_stored() -> &'static Stored {
    static DOC: OnceLock<Stored> = OnceLock::new();
    DOC.get_or_init(|| {
        let (defs, items) = v2_parts();
        let hash = render::v2_document_etag(&defs, &items);
        Stored::new(&render::v2_protobuf(&defs, &items), hash)
    })
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
            let data = render::v3_document(&defs, &items);
            let hash = etag(&data);
            index.insert(
                path.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={hash}")}),
            );
            documents.insert(path, Stored::new(&data, hash));
        }
        let index = serde_json::to_vec(&json!({"paths": index})).unwrap_or_default();
        V3Documents {
            index: Bytes::from(index),
            documents,
        }
    })
}

/// What the Swagger 2.0 document is rendered from: fresh definitions and every path.
fn v2_parts() -> (definitions::Definitions, Vec<PathItem>) {
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
    (defs, items)
}

#[cfg(test)]
mod tests;
