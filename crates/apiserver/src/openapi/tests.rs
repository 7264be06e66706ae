use super::*;
use serde_json::Value;

fn v3(path: &str) -> Value {
    let (data, _) = v3_document(path).expect(path);
    serde_json::from_slice(&data).expect("v3 document is JSON")
}

fn v2() -> Value {
    serde_json::from_slice(&v2_json()).expect("v2 document is JSON")
}

/// Every `$ref` in a document, as written.
fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn the_index_points_at_every_group_version_with_its_hash() {
    let index: Value = serde_json::from_slice(&v3_index()).unwrap();
    let paths = index["paths"].as_object().unwrap();
    for key in [
        "api",
        "api/v1",
        "apis",
        "apis/apps",
        "apis/apps/v1",
        "apis/autoscaling/v2",
    ] {
        let url = paths[key]["serverRelativeURL"].as_str().unwrap();
        let (_, hash) = v3_document(key).unwrap();
        assert_eq!(url, format!("/openapi/v3/{key}?hash={hash}"));
        assert_eq!(hash.len(), 128, "SHA-512 in hex");
        assert!(
            hash.chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
        );
    }
    assert!(v3_document("apis/nope/v1").is_none());
}

#[test]
fn the_hash_is_the_sha512_of_the_served_bytes() {
    let (data, hash) = v3_document("apis/apps/v1").unwrap();
    assert_eq!(etag(&data), hash);
}

#[test]
fn every_served_kind_has_a_patch_operation_declaring_field_validation() {
    for (group, version) in definitions::served_group_versions() {
        let path = if group.is_empty() {
            format!("api/{version}")
        } else {
            format!("apis/{group}/{version}")
        };
        let doc = v3(&path);
        for info in resources::in_group_version(group, version) {
            if !info.allows("patch") {
                continue;
            }
            let found = doc["paths"].as_object().unwrap().values().any(|item| {
                let Some(patch) = item.get("patch") else {
                    return false;
                };
                let gvk = &patch["x-kubernetes-group-version-kind"];
                gvk["group"] == info.group
                    && gvk["version"] == info.version
                    && gvk["kind"] == info.kind
                    && patch["parameters"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|p| p["name"] == "fieldValidation" && p["in"] == "query")
            });
            assert!(found, "{path} {}", info.kind);
        }
    }
}

#[test]
fn patch_operations_declare_what_server_side_apply_needs() {
    let doc = v3("api/v1");
    let patch = &doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"];
    let names: Vec<&str> = patch["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["dryRun", "fieldManager", "fieldValidation", "force"]
    );
    assert_eq!(patch["operationId"], "patchCoreV1NamespacedPod");
    assert_eq!(patch["x-kubernetes-action"], "patch");
    let content = patch["requestBody"]["content"].as_object().unwrap();
    assert!(content.contains_key("application/apply-patch+yaml"));
    assert!(content.contains_key("application/strategic-merge-patch+json"));
}

#[test]
fn every_reference_resolves_within_its_document() {
    for path in v3_paths() {
        let doc = v3(&path);
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let mut all = Vec::new();
        refs(&doc, &mut all);
        for r in all {
            let name = r.strip_prefix("#/components/schemas/").expect(&r);
            assert!(schemas.contains_key(name), "{path}: {name}");
        }
    }
    let doc = v2();
    let defs = doc["definitions"].as_object().unwrap();
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in all {
        let name = r.strip_prefix("#/definitions/").expect(&r);
        assert!(defs.contains_key(name), "v2: {name}");
    }
}

#[test]
fn every_served_kind_and_list_kind_is_explainable_from_its_own_document() {
    for (group, version) in definitions::served_group_versions() {
        let path = if group.is_empty() {
            format!("api/{version}")
        } else {
            format!("apis/{group}/{version}")
        };
        let doc = v3(&path);
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for info in resources::in_group_version(group, version) {
            let mut kinds = vec![info.kind.to_string()];
            if info.allows("list") {
                kinds.push(info.list_kind());
            }
            for kind in kinds {
                let want = serde_json::json!({"group": group, "kind": kind, "version": version});
                let found = schemas.values().any(|s| {
                    s["x-kubernetes-group-version-kind"]
                        .as_array()
                        .is_some_and(|l| l.contains(&want))
                });
                assert!(found, "{path}: {kind}");
            }
        }
    }
}

#[test]
fn pod_schema_is_named_as_upstream_with_its_group_version_kind() {
    let doc = v3("api/v1");
    let pod = &doc["components"]["schemas"]["io.k8s.api.core.v1.Pod"];
    assert_eq!(
        pod["x-kubernetes-group-version-kind"],
        serde_json::json!([{"group": "", "kind": "Pod", "version": "v1"}])
    );
    assert!(
        pod["description"]
            .as_str()
            .unwrap()
            .starts_with("Pod is a collection")
    );
    assert!(
        pod.get("required").is_none(),
        "upstream requires no metadata"
    );
    let list = &doc["components"]["schemas"]["io.k8s.api.core.v1.PodList"];
    assert_eq!(list["required"], serde_json::json!(["items"]));
    assert_eq!(
        list["x-kubernetes-group-version-kind"][0]["kind"],
        "PodList"
    );
}

#[test]
fn containers_carry_the_strategic_merge_and_list_markers() {
    let doc = v3("api/v1");
    let containers =
        &doc["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(containers["x-kubernetes-list-type"], "map");
    assert_eq!(
        containers["x-kubernetes-list-map-keys"],
        serde_json::json!(["name"])
    );
    let volumes =
        &doc["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"]["properties"]["volumes"];
    assert_eq!(volumes["x-kubernetes-patch-strategy"], "merge,retainKeys");
    let reference = &doc["components"]["schemas"]["io.k8s.api.core.v1.LocalObjectReference"];
    assert_eq!(reference["x-kubernetes-map-type"], "atomic");
}

#[test]
fn container_port_is_a_required_integer() {
    let doc = v3("api/v1");
    let port = &doc["components"]["schemas"]["io.k8s.api.core.v1.ContainerPort"];
    assert_eq!(port["properties"]["containerPort"]["type"], "integer");
    assert_eq!(port["properties"]["containerPort"]["format"], "int32");
    assert_eq!(port["required"], serde_json::json!(["containerPort"]));
}

#[test]
fn references_with_descriptions_are_wrapped_in_all_of_in_v3_and_not_in_v2() {
    let doc = v3("apis/apps/v1");
    let spec = &doc["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"]["properties"]["spec"];
    assert_eq!(
        spec["allOf"],
        serde_json::json!([{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"}])
    );
    assert!(spec["description"].is_string());
    let doc = v2();
    let spec = &doc["definitions"]["io.k8s.api.apps.v1.Deployment"]["properties"]["spec"];
    assert_eq!(
        spec["$ref"],
        "#/definitions/io.k8s.api.apps.v1.DeploymentSpec"
    );
    assert!(spec["description"].is_string());
}

#[test]
fn special_types_keep_their_upstream_shapes() {
    let doc = v3("api/v1");
    let schemas = &doc["components"]["schemas"];
    let ios = &schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"];
    assert_eq!(ios["format"], "int-or-string");
    assert_eq!(ios["x-kubernetes-int-or-string"], true);
    assert_eq!(
        ios["oneOf"],
        serde_json::json!([{"type": "integer"}, {"type": "string"}])
    );
    let time = &schemas["io.k8s.apimachinery.pkg.apis.meta.v1.Time"];
    assert_eq!(time["format"], "date-time");
    assert_eq!(time["type"], "string");
    let quantity = &schemas["io.k8s.apimachinery.pkg.api.resource.Quantity"];
    assert_eq!(
        quantity["oneOf"],
        serde_json::json!([{"type": "string"}, {"type": "number"}])
    );
    let doc = v2();
    let ios = &doc["definitions"]["io.k8s.apimachinery.pkg.util.intstr.IntOrString"];
    assert_eq!(ios["type"], "string");
    assert_eq!(ios["format"], "int-or-string");
    assert!(ios.get("oneOf").is_none());
}

#[test]
fn subresources_have_their_own_operations_and_kinds() {
    let doc = v3("apis/apps/v1");
    let paths = &doc["paths"];
    let scale = &paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"];
    assert_eq!(
        scale["patch"]["operationId"],
        "patchAppsV1NamespacedDeploymentScale"
    );
    assert_eq!(
        scale["patch"]["x-kubernetes-group-version-kind"]["kind"],
        "Scale"
    );
    assert_eq!(
        scale["patch"]["x-kubernetes-group-version-kind"]["group"],
        "autoscaling"
    );
    let status = &paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/status"];
    assert_eq!(
        status["get"]["operationId"],
        "readAppsV1NamespacedDeploymentStatus"
    );
    assert!(doc["components"]["schemas"]["io.k8s.api.autoscaling.v1.Scale"].is_object());
    let doc = v3("api/v1");
    let paths = &doc["paths"];
    let exec = &paths["/api/v1/namespaces/{namespace}/pods/{name}/exec"];
    assert_eq!(
        exec["get"]["operationId"],
        "connectCoreV1GetNamespacedPodExec"
    );
    assert_eq!(exec["post"]["x-kubernetes-action"], "connect");
    let eviction = &paths["/api/v1/namespaces/{namespace}/pods/{name}/eviction"];
    assert_eq!(
        eviction["post"]["x-kubernetes-group-version-kind"]["group"],
        "policy"
    );
    assert!(paths["/api/v1/watch/namespaces/{namespace}/pods/{name}"]["get"].is_object());
    assert_eq!(
        paths["/api/v1/pods"]["get"]["operationId"],
        "listCoreV1PodForAllNamespaces"
    );
}

#[test]
fn operation_ids_spell_groups_as_upstream() {
    assert_eq!(
        paths::group_camel("rbac.authorization.k8s.io"),
        "RbacAuthorization"
    );
    assert_eq!(paths::group_camel(""), "Core");
    assert_eq!(
        paths::group_tag("rbac.authorization.k8s.io"),
        "rbacAuthorization"
    );
    assert_eq!(paths::group_tag("apps"), "apps");
}

#[test]
fn the_v2_document_holds_every_group_version() {
    let doc = v2();
    assert_eq!(doc["swagger"], "2.0");
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.contains_key("/api/v1/namespaces/{namespace}/pods/{name}"));
    assert!(
        paths.contains_key("/apis/autoscaling/v1/namespaces/{namespace}/horizontalpodautoscalers")
    );
    assert!(
        paths.contains_key("/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers")
    );
    let patch = &paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    let params = patch["parameters"].as_array().unwrap();
    assert_eq!(params[0]["in"], "body");
    assert!(
        params
            .iter()
            .any(|p| p["name"] == "fieldValidation" && p["type"] == "string")
    );
    assert_eq!(
        doc["definitions"]["io.k8s.api.apps.v1.Deployment"]["x-kubernetes-group-version-kind"][0]["kind"],
        "Deployment"
    );
}

#[test]
fn v2_formats_are_negotiated_as_kube_openapi_does() {
    let cases = [
        ("", Some(V2Format::Json)),
        ("*/*", Some(V2Format::Json)),
        ("application/json", Some(V2Format::Json)),
        // kubectl 1.27 and 1.28
        (
            "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
            Some(V2Format::Protobuf),
        ),
        (
            "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
            Some(V2Format::Protobuf),
        ),
        (
            "application/com.github.proto-openapi.spec.v2.v1.0+protobuf;q=0.9, application/json",
            Some(V2Format::Json),
        ),
        (
            "application/com.github.proto-openapi.spec.v2@v1.0+protobuf, application/json;q=0.5",
            Some(V2Format::Protobuf),
        ),
        ("text/html", None),
        ("application/json;q=0", None),
    ];
    for (accept, want) in cases {
        assert_eq!(v2_negotiate(accept), want, "{accept}");
    }
    assert_eq!(V2Format::Protobuf.content_type(), V2_PROTOBUF_CONTENT_TYPE);
}

#[test]
fn gzip_bodies_inflate_to_the_served_documents() {
    use std::io::Read;
    let inflate = |b: &[u8]| {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(b)
            .read_to_end(&mut out)
            .unwrap();
        out
    };
    let (plain, hash) = v3_document("apis/apps/v1").unwrap();
    let (gz, gz_hash) = v3_document_gzip("apis/apps/v1").unwrap();
    assert_eq!(hash, gz_hash);
    assert!(
        gz.len() * 5 < plain.len(),
        "{} vs {}",
        gz.len(),
        plain.len()
    );
    assert_eq!(inflate(&gz), plain.to_vec());
    assert_eq!(inflate(&v2_protobuf_gzip()), v2_protobuf().to_vec());
    assert_eq!(inflate(&V2Format::Json.body_gzip()), v2_json().to_vec());
}

#[test]
fn both_v2_formats_share_the_etag_of_the_json_form() {
    assert_eq!(v2_etag(), etag(&v2_json()));
}

#[test]
fn the_v2_protobuf_encodes_the_same_document_as_the_v2_json() {
    let json: Value = serde_json::from_slice(&v2_json()).unwrap();
    assert_eq!(gnostic::document(&json), v2_protobuf().to_vec());
}

#[test]
fn the_v2_protobuf_is_a_gnostic_document() {
    let pb = v2_protobuf();
    // Document.swagger = 1: "2.0"
    assert_eq!(&pb[..5], &[0x0a, 3, b'2', b'.', b'0']);
    assert!(pb.len() > 100_000);
}

#[test]
fn documents_are_the_same_every_time_they_are_built() {
    let defs_a = definitions::build();
    let defs_b = definitions::build();
    assert_eq!(defs_a, defs_b);
    let items = v3_path_items("api/v1");
    let a = render::v3_document(&defs_a, &items);
    let (served, _) = v3_document("api/v1").unwrap();
    assert_eq!(a, served.to_vec());
}

/// Prints sizes, build times and the process RSS they cost:
/// `cargo test -p ferrokube-apiserver --lib openapi::tests::report -- --ignored --nocapture`
/// (`OPENAPI_DUMP_DIR=/tmp/x` also writes every document there).
#[test]
#[ignore]
fn report() {
    use std::time::Instant;
    let rss = || {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        status
            .lines()
            .filter(|l| l.starts_with("VmRSS") || l.starts_with("VmHWM"))
            .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("before: {}", rss());
    let t = Instant::now();
    let defs = definitions::build();
    println!("definitions: {} in {:?}", defs.len(), t.elapsed());
    drop(defs);
    println!("after definitions (dropped): {}", rss());
    let t = Instant::now();
    let index = v3_index();
    println!("v3 (all documents + index): {:?}", t.elapsed());
    let gz: usize = v3_paths()
        .iter()
        .filter_map(|p| v3_document_gzip(p))
        .map(|(b, _)| b.len())
        .sum();
    println!("v3 stored (gzip) {gz} bytes, index {} bytes", index.len());
    println!("after v3: {}", rss());
    let t = Instant::now();
    let json_gz = v2_json_gzip();
    println!(
        "v2 json built in {:?}, stored {} bytes",
        t.elapsed(),
        json_gz.len()
    );
    let t = Instant::now();
    let pb_gz = v2_protobuf_gzip();
    println!(
        "v2 protobuf built in {:?}, stored {} bytes",
        t.elapsed(),
        pb_gz.len()
    );
    println!("after v2: {}", rss());
    let mut total = 0;
    for path in v3_paths() {
        if let Some((data, _)) = v3_document(&path) {
            println!("  v3 {path}: {} bytes", data.len());
            total += data.len();
        }
    }
    let t = Instant::now();
    let json = v2_json();
    let pb = v2_protobuf();
    println!(
        "v3 total {total} bytes; v2 json {} bytes, protobuf {} bytes (inflated in {:?})",
        json.len(),
        pb.len(),
        t.elapsed()
    );
    if let Ok(dir) = std::env::var("OPENAPI_DUMP_DIR") {
        std::fs::write(format!("{dir}/v2.json"), &json).unwrap();
        std::fs::write(format!("{dir}/v2.pb"), &pb).unwrap();
        std::fs::write(format!("{dir}/index.json"), &index).unwrap();
        for path in v3_paths() {
            if let Some((data, _)) = v3_document(&path) {
                let file = path.replace('/', "__");
                std::fs::write(format!("{dir}/v3_{file}.json"), &data).unwrap();
            }
        }
    }
}
