//! Object semantics through the HTTP handlers, in process over the memory store: what a client
//! sees for generateName, optimistic concurrency, graceful deletion, finalizers, namespaces,
//! field validation, dry run, watches, pagination and the body formats.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ferrokube_apiserver::{ApiServer, Config, UserInfo, handlers};
use ferrokube_store::Backend;
use ferrokube_store::memory::MemoryBackend;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

struct Api {
    srv: Arc<ApiServer>,
    store: Arc<dyn Backend>,
    cancel: CancellationToken,
}

impl Drop for Api {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn admin() -> UserInfo {
    UserInfo {
        name: "admin".into(),
        uid: String::new(),
        groups: vec!["system:masters".into(), "system:authenticated".into()],
    }
}

async fn api() -> Api {
    let store: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let cancel = CancellationToken::new();
    let config = Config {
        advertise_address: "127.0.0.1:6443".into(),
        serving_cert_pem: String::new(),
        serving_key_pem: String::new(),
        client_ca_pem: String::new(),
        compaction_interval: Duration::from_secs(300),
    };
    let srv = ApiServer::new(config, store.clone(), cancel.clone())
        .await
        .expect("server");
    Api { srv, store, cancel }
}

struct Resp {
    status: StatusCode,
    headers: http::HeaderMap,
    body: Value,
}

impl Api {
    async fn req(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        self.raw(
            method,
            path,
            "application/json",
            "",
            body.map(|b| serde_json::to_vec(&b).unwrap())
                .unwrap_or_default(),
            Some(admin()),
        )
        .await
    }

    async fn merge_patch(&self, path: &str, body: Value) -> Resp {
        self.raw(
            Method::PATCH,
            path,
            "application/merge-patch+json",
            "",
            serde_json::to_vec(&body).unwrap(),
            Some(admin()),
        )
        .await
    }

    async fn raw(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        accept: &str,
        body: Vec<u8>,
        user: Option<UserInfo>,
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(path);
        if !content_type.is_empty() {
            b = b.header("content-type", content_type);
        }
        if !accept.is_empty() {
            b = b.header("accept", accept);
        }
        let req = b.body(Full::new(Bytes::from(body))).unwrap();
        let resp = handlers::handle(self.srv.clone(), req, user).await;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        Resp {
            status,
            headers,
            body,
        }
    }

    async fn create_pod(&self, ns: &str, name: &str) -> Value {
        let r = self
            .req(
                Method::POST,
                &format!("/api/v1/namespaces/{ns}/pods"),
                Some(pod(name)),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body
    }
}

fn pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "web"}},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
}

#[tokio::test]
async fn unauthenticated_requests_get_401_but_health_is_public() {
    let a = api().await;
    let r = a
        .raw(Method::GET, "/api/v1/pods", "", "", vec![], None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["reason"], "Unauthorized");
    assert_eq!(
        a.raw(Method::GET, "/readyz", "", "", vec![], None)
            .await
            .status,
        StatusCode::OK
    );
    let v = a.raw(Method::GET, "/version", "", "", vec![], None).await;
    assert_eq!(v.body["major"], "1");
    assert_eq!(v.body["minor"], "33");
}

#[tokio::test]
async fn create_defaults_and_stamps_server_fields() {
    let a = api().await;
    let p = a.create_pod("default", "web").await;
    assert_eq!(p["metadata"]["namespace"], "default");
    assert_eq!(p["metadata"]["uid"].as_str().unwrap().len(), 36);
    assert!(
        p["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(p["metadata"]["generation"], 1);
    assert_eq!(p["spec"]["restartPolicy"], "Always");
    assert_eq!(p["spec"]["dnsPolicy"], "ClusterFirst");
    assert_eq!(p["spec"]["terminationGracePeriodSeconds"], 30);
    assert_eq!(p["spec"]["schedulerName"], "default-scheduler");
    assert_eq!(p["spec"]["containers"][0]["imagePullPolicy"], "Always");
    assert_eq!(
        p["spec"]["containers"][0]["terminationMessagePath"],
        "/dev/termination-log"
    );
    assert_eq!(p["status"]["phase"], "Pending");
    assert_eq!(p["status"]["qosClass"], "BestEffort");
    assert_eq!(p["metadata"]["managedFields"][0]["operation"], "Update");
}

/// Informers cache objects without managedFields; an update that sends such an object back
/// keeps the stored entries (and records its own); a list of one empty entry clears them (an
/// empty list does not, on purpose upstream, so clients unaware of the field never strip it).
#[tokio::test]
async fn updates_without_managed_fields_keep_the_stored_ones() {
    let a = api().await;
    let mut p = a.create_pod("default", "web").await;
    let path = "/api/v1/namespaces/default/pods/web";
    p["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("managedFields");
    p["metadata"]["labels"] = json!({"tier": "front"});
    let r = a.req(Method::PUT, path, Some(p.clone())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let fields = r.body["metadata"]["managedFields"].as_array().unwrap();
    assert!(!fields.is_empty(), "{}", r.body);
    assert!(
        fields
            .iter()
            .any(|f| f["fieldsV1"]["f:metadata"]["f:labels"]["f:tier"].is_object()),
        "the update's own fields are recorded: {fields:?}"
    );
    assert!(
        fields
            .iter()
            .any(|f| f["fieldsV1"]["f:spec"]["f:containers"].is_object()),
        "the creator's fields are kept: {fields:?}"
    );
    let mut p = r.body;
    p["metadata"]["managedFields"] = json!([]);
    let r = a.req(Method::PUT, path, Some(p)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.body["metadata"]["managedFields"]
            .as_array()
            .is_some_and(|f| !f.is_empty()),
        "an empty list keeps them: {}",
        r.body
    );
    let mut p = r.body;
    p["metadata"]["managedFields"] = json!([{}]);
    let r = a.req(Method::PUT, path, Some(p)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        r.body["metadata"]["managedFields"].is_null(),
        "one empty entry resets them: {}",
        r.body
    );
}

#[tokio::test]
async fn generate_name_makes_unique_names() {
    let a = api().await;
    let body = json!({"metadata": {"generateName": "web-"}, "spec": {"containers": [{"name": "c", "image": "x"}]}});
    let r1 = a
        .req(
            Method::POST,
            "/api/v1/namespaces/default/pods",
            Some(body.clone()),
        )
        .await;
    let r2 = a
        .req(Method::POST, "/api/v1/namespaces/default/pods", Some(body))
        .await;
    let (n1, n2) = (
        r1.body["metadata"]["name"].as_str().unwrap(),
        r2.body["metadata"]["name"].as_str().unwrap(),
    );
    assert!(n1.starts_with("web-") && n1.len() == 9, "{n1}");
    assert_ne!(n1, n2);
}

#[tokio::test]
async fn stale_resource_version_is_a_conflict() {
    let a = api().await;
    let mut p = a.create_pod("default", "web").await;
    p["metadata"]["labels"]["v"] = json!("2");
    let ok = a
        .req(
            Method::PUT,
            "/api/v1/namespaces/default/pods/web",
            Some(p.clone()),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    p["metadata"]["labels"]["v"] = json!("3");
    let r = a
        .req(Method::PUT, "/api/v1/namespaces/default/pods/web", Some(p))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.body["reason"], "Conflict");
    assert_eq!(
        r.body["message"],
        r#"Operation cannot be fulfilled on pods "web": the object has been modified; please apply your changes to the latest version and try again"#
    );
}

#[tokio::test]
async fn an_unchanged_update_keeps_the_resource_version() {
    let a = api().await;
    let p = a.create_pod("default", "web").await;
    let r = a
        .req(
            Method::PUT,
            "/api/v1/namespaces/default/pods/web",
            Some(p.clone()),
        )
        .await;
    assert_eq!(
        r.body["metadata"]["resourceVersion"],
        p["metadata"]["resourceVersion"]
    );
}

#[tokio::test]
async fn status_and_spec_are_written_separately() {
    let a = api().await;
    let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}},
                 "spec": {"containers": [{"name": "c", "image": "x"}]}}}});
    let created = a
        .req(
            Method::POST,
            "/apis/apps/v1/namespaces/default/deployments",
            Some(d),
        )
        .await
        .body;
    let mut with_status = created.clone();
    with_status["status"] = json!({"replicas": 5});
    with_status["spec"]["replicas"] = json!(3);
    let main = a
        .req(
            Method::PUT,
            "/apis/apps/v1/namespaces/default/deployments/d",
            Some(with_status.clone()),
        )
        .await
        .body;
    assert_eq!(main["spec"]["replicas"], 3);
    assert!(
        main["status"].get("replicas").is_none(),
        "main resource ignores status: {}",
        main["status"]
    );
    assert_eq!(main["metadata"]["generation"], 2);
    with_status["metadata"]["resourceVersion"] = main["metadata"]["resourceVersion"].clone();
    with_status["spec"]["replicas"] = json!(9);
    let st = a
        .req(
            Method::PUT,
            "/apis/apps/v1/namespaces/default/deployments/d/status",
            Some(with_status),
        )
        .await
        .body;
    assert_eq!(st["status"]["replicas"], 5);
    assert_eq!(st["spec"]["replicas"], 3, "status subresource ignores spec");
    assert_eq!(st["metadata"]["generation"], 2);
}

#[tokio::test]
async fn bound_pods_are_deleted_gracefully() {
    let a = api().await;
    a.create_pod("default", "web").await;
    let b = a.req(Method::POST, "/api/v1/namespaces/default/pods/web/binding",
        Some(json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "web"}, "target": {"kind": "Node", "name": "n1"}}))).await;
    assert_eq!(b.status, StatusCode::CREATED, "{}", b.body);
    let again = a
        .req(
            Method::POST,
            "/api/v1/namespaces/default/pods/web/binding",
            Some(json!({"metadata": {"name": "web"}, "target": {"name": "n2"}})),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let p = a
        .req(Method::GET, "/api/v1/namespaces/default/pods/web", None)
        .await
        .body;
    assert_eq!(p["spec"]["nodeName"], "n1");
    assert_eq!(p["status"]["conditions"][0]["type"], "PodScheduled");
    let d = a
        .req(Method::DELETE, "/api/v1/namespaces/default/pods/web", None)
        .await;
    assert_eq!(d.status, StatusCode::OK);
    assert_eq!(d.body["metadata"]["deletionGracePeriodSeconds"], 30);
    assert!(d.body["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(
        a.req(Method::GET, "/api/v1/namespaces/default/pods/web", None)
            .await
            .status,
        StatusCode::OK
    );
    let now = a
        .req(
            Method::DELETE,
            "/api/v1/namespaces/default/pods/web",
            Some(json!({"gracePeriodSeconds": 0})),
        )
        .await;
    assert_eq!(now.status, StatusCode::OK);
    assert_eq!(
        a.req(Method::GET, "/api/v1/namespaces/default/pods/web", None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let a = api().await;
    let cm = json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}, "data": {"a": "1"}});
    a.req(
        Method::POST,
        "/api/v1/namespaces/default/configmaps",
        Some(cm),
    )
    .await;
    let d = a
        .req(
            Method::DELETE,
            "/api/v1/namespaces/default/configmaps/held",
            None,
        )
        .await;
    assert_eq!(d.status, StatusCode::OK);
    assert!(
        d.body["metadata"]["deletionTimestamp"].is_string(),
        "{}",
        d.body
    );
    let patch = a
        .raw(
            Method::PATCH,
            "/api/v1/namespaces/default/configmaps/held",
            "application/merge-patch+json",
            "",
            br#"{"metadata":{"finalizers":null}}"#.to_vec(),
            Some(admin()),
        )
        .await;
    assert_eq!(patch.status, StatusCode::OK, "{}", patch.body);
    assert_eq!(
        a.req(
            Method::GET,
            "/api/v1/namespaces/default/configmaps/held",
            None
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn foreground_and_orphan_deletes_add_their_finalizers() {
    let a = api().await;
    a.req(
        Method::POST,
        "/api/v1/namespaces/default/configmaps",
        Some(json!({"metadata": {"name": "f"}})),
    )
    .await;
    let d = a
        .req(
            Method::DELETE,
            "/api/v1/namespaces/default/configmaps/f",
            Some(json!({"propagationPolicy": "Foreground"})),
        )
        .await;
    assert_eq!(
        d.body["metadata"]["finalizers"],
        json!(["foregroundDeletion"])
    );
    a.req(
        Method::POST,
        "/api/v1/namespaces/default/configmaps",
        Some(json!({"metadata": {"name": "o"}})),
    )
    .await;
    let d = a
        .req(
            Method::DELETE,
            "/api/v1/namespaces/default/configmaps/o?propagationPolicy=Orphan",
            None,
        )
        .await;
    assert_eq!(d.body["metadata"]["finalizers"], json!(["orphan"]));
    let bad = a
        .req(
            Method::DELETE,
            "/api/v1/namespaces/default/configmaps/o?propagationPolicy=Sideways",
            None,
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn delete_preconditions_are_checked() {
    let a = api().await;
    a.req(
        Method::POST,
        "/api/v1/namespaces/default/configmaps",
        Some(json!({"metadata": {"name": "p"}})),
    )
    .await;
    let d = a
        .req(
            Method::DELETE,
            "/api/v1/namespaces/default/configmaps/p",
            Some(json!({"preconditions": {"uid": "nope"}})),
        )
        .await;
    assert_eq!(d.status, StatusCode::CONFLICT);
    assert!(
        d.body["message"]
            .as_str()
            .unwrap()
            .contains("Precondition failed: UID in precondition: nope")
    );
}

#[tokio::test]
async fn namespaces_gate_their_content() {
    let a = api().await;
    let r = a
        .req(Method::POST, "/api/v1/namespaces/nope/pods", Some(pod("x")))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.body["message"], r#"namespaces "nope" not found"#);
    a.req(
        Method::POST,
        "/api/v1/namespaces",
        Some(json!({"metadata": {"name": "gone"}})),
    )
    .await;
    let d = a.req(Method::DELETE, "/api/v1/namespaces/gone", None).await;
    assert_eq!(d.body["status"]["phase"], "Terminating");
    let r = a
        .req(Method::POST, "/api/v1/namespaces/gone/pods", Some(pod("x")))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        r.body["message"],
        r#"pods "x" is forbidden: unable to create new content in namespace gone because it is being terminated"#
    );
    let r = a
        .req(Method::DELETE, "/api/v1/namespaces/kube-system", None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn unknown_fields_follow_field_validation() {
    let a = api().await;
    let body = json!({"metadata": {"name": "u"}, "spec": {"containers": [{"name": "c", "image": "x", "imagee": "y"}]}});
    let strict = a
        .req(
            Method::POST,
            "/api/v1/namespaces/default/pods?fieldValidation=Strict",
            Some(body.clone()),
        )
        .await;
    assert_eq!(strict.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        strict.body["message"],
        r#"Pod in version "v1" cannot be handled as a Pod: strict decoding error: unknown field "spec.containers[0].imagee""#
    );
    let warn = a
        .req(
            Method::POST,
            "/api/v1/namespaces/default/pods?fieldValidation=Warn",
            Some(body),
        )
        .await;
    assert_eq!(warn.status, StatusCode::CREATED);
    assert_eq!(
        warn.headers.get("warning").unwrap(),
        r#"299 - "unknown field \"spec.containers[0].imagee\"""#
    );
    assert!(warn.body["spec"]["containers"][0].get("imagee").is_none());
}

#[tokio::test]
async fn invalid_objects_get_422_with_every_cause() {
    let a = api().await;
    let body = json!({"metadata": {"name": "Bad_Name"}, "spec": {"containers": [{"name": "c"}]}});
    let r = a
        .req(Method::POST, "/api/v1/namespaces/default/pods", Some(body))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["reason"], "Invalid");
    let fields: Vec<&str> = r.body["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&"metadata.name"), "{fields:?}");
    assert!(fields.contains(&"spec.containers[0].image"), "{fields:?}");
}

#[tokio::test]
async fn dry_run_validates_but_stores_nothing() {
    let a = api().await;
    let r = a
        .req(
            Method::POST,
            "/api/v1/namespaces/default/pods?dryRun=All",
            Some(pod("dry")),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body["spec"]["restartPolicy"], "Always");
    assert_eq!(
        a.req(Method::GET, "/api/v1/namespaces/default/pods/dry", None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn yaml_and_protobuf_bodies_are_accepted() {
    let a = api().await;
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  k: v\n";
    let r = a
        .raw(
            Method::POST,
            "/api/v1/namespaces/default/configmaps",
            "application/yaml",
            "",
            yaml.as_bytes().to_vec(),
            Some(admin()),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "from-pb"}, "data": {"k": "v"}});
    let pb = ferrokube_api::protobuf::encode_object(&cm).unwrap();
    let r = a
        .raw(
            Method::POST,
            "/api/v1/namespaces/default/configmaps",
            "application/vnd.kubernetes.protobuf",
            "",
            pb,
            Some(admin()),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["data"]["k"], "v");
    let r = a
        .raw(
            Method::POST,
            "/api/v1/namespaces/default/configmaps",
            "",
            "",
            br#"{"metadata":{"name":"no-ct"}}"#.to_vec(),
            Some(admin()),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "a missing Content-Type means JSON"
    );
    let r = a
        .raw(
            Method::POST,
            "/api/v1/namespaces/default/configmaps",
            "text/csv",
            "",
            b"a,b".to_vec(),
            Some(admin()),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn lists_paginate_with_continue_and_filter_by_selectors() {
    let a = api().await;
    for i in 0..25 {
        a.create_pod("default", &format!("p{i:02}")).await;
    }
    let mut names = Vec::new();
    let mut cont = String::new();
    let mut rv = String::new();
    loop {
        let path = format!("/api/v1/namespaces/default/pods?limit=10&continue={cont}");
        let r = a.req(Method::GET, &path, None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        if rv.is_empty() {
            rv = r.body["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .to_string();
            // A change between pages must not show up in later pages.
            a.create_pod("default", "p99").await;
        } else {
            assert_eq!(
                r.body["metadata"]["resourceVersion"],
                rv.as_str(),
                "pages share one snapshot"
            );
        }
        names.extend(
            r.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["metadata"]["name"].as_str().unwrap().to_string()),
        );
        match r.body["metadata"]["continue"].as_str() {
            Some(c) => cont = c.to_string(),
            None => break,
        }
    }
    assert_eq!(names.len(), 25);
    assert!(!names.contains(&"p99".to_string()));
    let r = a
        .req(
            Method::GET,
            "/api/v1/pods?fieldSelector=metadata.name%3Dp03",
            None,
        )
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    let r = a
        .req(Method::GET, "/api/v1/pods?labelSelector=app%21%3Dweb", None)
        .await;
    assert_eq!(r.body["items"], json!([]), "items is [] not null");
    let r = a
        .req(
            Method::GET,
            "/api/v1/pods?fieldSelector=spec.nope%3Dx",
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn delete_collection_removes_only_what_the_selector_picks() {
    let a = api().await;
    a.create_pod("default", "a").await;
    a.req(
        Method::POST,
        "/api/v1/namespaces/default/pods",
        Some(json!({"metadata": {"name": "b", "labels": {"app": "db"}},
        "spec": {"containers": [{"name": "c", "image": "x"}]}})),
    )
    .await;
    let r = a
        .req(
            Method::DELETE,
            "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb",
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let left = a
        .req(Method::GET, "/api/v1/namespaces/default/pods", None)
        .await;
    let names: Vec<&str> = left.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["b"]);
}

async fn read_watch(a: &Api, path: &str, want: usize) -> Vec<Value> {
    let req = Request::builder()
        .method(Method::GET)
        .uri(path)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = handlers::handle(a.srv.clone(), req, Some(admin())).await;
    let mut body = resp.into_body();
    let mut buf = Vec::new();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while events.len() < want {
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .expect("watch event in time");
        let Some(Ok(frame)) = frame else { break };
        if let Some(d) = frame.data_ref() {
            buf.extend_from_slice(d);
            while let Some(i) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=i).collect();
                events.push(serde_json::from_slice(&line).unwrap());
            }
        }
    }
    events
}

#[tokio::test]
async fn watch_replays_from_a_resource_version() {
    let a = api().await;
    let list = a
        .req(Method::GET, "/api/v1/namespaces/default/pods", None)
        .await;
    let rv = list.body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    a.create_pod("default", "w").await;
    a.req(Method::DELETE, "/api/v1/namespaces/default/pods/w", None)
        .await;
    let events = read_watch(
        &a,
        &format!("/api/v1/namespaces/default/pods?watch=true&resourceVersion={rv}"),
        2,
    )
    .await;
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ADDED", "DELETED"]);
    assert_eq!(events[1]["object"]["metadata"]["name"], "w");
}

#[tokio::test]
async fn watch_from_a_compacted_revision_is_expired() {
    let a = api().await;
    for i in 0..5 {
        a.create_pod("default", &format!("c{i}")).await;
    }
    let cur = a.store.current_revision().await.unwrap();
    a.store.compact(cur).await.unwrap();
    let events = read_watch(
        &a,
        "/api/v1/namespaces/default/pods?watch=true&resourceVersion=1",
        1,
    )
    .await;
    assert_eq!(events[0]["type"], "ERROR");
    assert_eq!(events[0]["object"]["code"], 410);
    assert_eq!(events[0]["object"]["reason"], "Expired");
}

#[tokio::test]
async fn table_lists_carry_columns_and_partial_metadata_rows() {
    let a = api().await;
    a.create_pod("default", "t").await;
    let r = a
        .raw(
            Method::GET,
            "/api/v1/namespaces/default/pods",
            "",
            "application/json;as=Table;v=v1;g=meta.k8s.io",
            vec![],
            Some(admin()),
        )
        .await;
    assert_eq!(r.body["kind"], "Table");
    let cols: Vec<&str> = r.body["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(&cols[..5], ["Name", "Ready", "Status", "Restarts", "Age"]);
    assert_eq!(r.body["rows"][0]["cells"][0], "t");
    assert_eq!(r.body["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    assert_eq!(
        r.body["rows"][0]["object"]["metadata"]["labels"]["app"],
        "web"
    );
}

#[tokio::test]
async fn scale_subresource_reads_and_writes_replicas() {
    let a = api().await;
    let d = json!({"metadata": {"name": "d"}, "spec": {"replicas": 2, "selector": {"matchLabels": {"a": "b"}},
        "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}});
    a.req(
        Method::POST,
        "/apis/apps/v1/namespaces/default/deployments",
        Some(d),
    )
    .await;
    let s = a
        .req(
            Method::GET,
            "/apis/apps/v1/namespaces/default/deployments/d/scale",
            None,
        )
        .await
        .body;
    assert_eq!(
        (
            s["kind"].as_str(),
            s["apiVersion"].as_str(),
            s["spec"]["replicas"].as_i64()
        ),
        (Some("Scale"), Some("autoscaling/v1"), Some(2))
    );
    assert_eq!(s["status"]["selector"], "a=b");
    let p = a
        .raw(
            Method::PATCH,
            "/apis/apps/v1/namespaces/default/deployments/d/scale",
            "application/merge-patch+json",
            "",
            br#"{"spec":{"replicas":7}}"#.to_vec(),
            Some(admin()),
        )
        .await;
    assert_eq!(p.body["spec"]["replicas"], 7);
}

#[tokio::test]
async fn scale_writes_follow_the_latest_object_unless_a_resource_version_is_named() {
    let a = api().await;
    let d = json!({"metadata": {"name": "d"}, "spec": {"replicas": 2, "selector": {"matchLabels": {"a": "b"}},
        "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}});
    let path = "/apis/apps/v1/namespaces/default/deployments/d";
    a.req(
        Method::POST,
        "/apis/apps/v1/namespaces/default/deployments",
        Some(d),
    )
    .await;
    let scale = format!("{path}/scale");
    let seen = a.req(Method::GET, &scale, None).await.body;
    let old_rv = seen["metadata"]["resourceVersion"].clone();
    // Someone else writes the Deployment after the Scale was read.
    a.merge_patch(path, json!({"metadata": {"labels": {"team": "x"}}}))
        .await;
    // Naming the old resourceVersion is a conflict, by update and by patch.
    let mut stale = seen.clone();
    stale["spec"]["replicas"] = json!(3);
    let r = a.req(Method::PUT, &scale, Some(stale.clone())).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    let pinned = json!({"metadata": {"resourceVersion": old_rv}, "spec": {"replicas": 3}});
    let r = a.merge_patch(&scale, pinned).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    // Without one, the write lands on the latest object and keeps the other write.
    stale["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    let r = a.req(Method::PUT, &scale, Some(stale)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["spec"]["replicas"], 3);
    let r = a
        .merge_patch(&scale, json!({"spec": {"replicas": 5}}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let got = a.req(Method::GET, path, None).await.body;
    assert_eq!(got["spec"]["replicas"], 5);
    assert_eq!(got["metadata"]["labels"]["team"], "x");
}

#[tokio::test]
async fn hpa_is_served_at_v1_and_v2_over_one_stored_object() {
    let a = api().await;
    let v1 = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"}, "maxReplicas": 5,
                 "targetCPUUtilizationPercentage": 60}});
    let r = a
        .req(
            Method::POST,
            "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers",
            Some(v1),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["spec"]["targetCPUUtilizationPercentage"], 60);
    let v2 = a
        .req(
            Method::GET,
            "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/h",
            None,
        )
        .await
        .body;
    assert_eq!(v2["apiVersion"], "autoscaling/v2");
    assert_eq!(
        v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        60
    );
    assert_eq!(v2["spec"]["minReplicas"], 1);
}

#[tokio::test]
async fn events_expire_after_an_hour() {
    let a = api().await;
    let ev = json!({"metadata": {"name": "e1"}, "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
                    "reason": "Test", "message": "m", "type": "Normal"});
    let r = a
        .req(Method::POST, "/api/v1/namespaces/default/events", Some(ev))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let info = ferrokube_api::resources::find("", "v1", "events").unwrap();
    assert_eq!(info.ttl_seconds, 3600);
    let r = a
        .req(
            Method::GET,
            "/apis/events.k8s.io/v1/namespaces/default/events/e1",
            None,
        )
        .await
        .body;
    assert_eq!(r["regarding"]["name"], "p");
    assert_eq!(r["note"], "m");
}

#[tokio::test]
async fn discovery_answers_aggregated_and_legacy() {
    let a = api().await;
    let agg = a
        .raw(
            Method::GET,
            "/apis",
            "",
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
            vec![],
            Some(admin()),
        )
        .await;
    assert_eq!(
        agg.headers["content-type"],
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    );
    assert_eq!(agg.body["apiVersion"], "apidiscovery.k8s.io/v2");
    let legacy = a.req(Method::GET, "/apis/apps/v1", None).await.body;
    assert_eq!(legacy["kind"], "APIResourceList");
    assert!(
        legacy["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "deployments/scale")
    );
}
