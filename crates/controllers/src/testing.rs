//! A fake API server for unit tests: a tower service behind a real `kube::Client` that keeps
//! objects in memory, answers GET/POST/PUT/PATCH/DELETE like the API server would for the
//! shapes controllers send (generateName, resourceVersion conflicts, status subresources,
//! merge / strategic / JSON patches, pod bindings), and records every request so tests can
//! assert on what a controller did.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::clock::Clock;

#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// Path without the query string.
    pub path: String,
    pub body: Value,
}

#[derive(Default)]
struct State {
    objects: BTreeMap<String, Value>,
    rv: u64,
    uid: u64,
    requests: Vec<Recorded>,
    /// (method, path fragment, code): the next matching request fails with `code`.
    failures: Vec<(String, String, u16)>,
}

#[derive(Clone)]
pub struct FakeApi {
    state: Arc<Mutex<State>>,
    clock: Clock,
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

struct Parsed {
    /// `/api/v1/namespaces/ns/pods` (the collection).
    collection: String,
    name: Option<String>,
    sub: Option<String>,
    namespace: String,
}

fn parse(path: &str) -> Parsed {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let prefix_len = if segs.first() == Some(&"api") { 2 } else { 3 };
    let (prefix, rest) = segs.split_at(prefix_len.min(segs.len()));
    let (ns, tail) = if rest.first() == Some(&"namespaces") && rest.len() >= 3 {
        (rest[1].to_string(), &rest[2..])
    } else {
        (String::new(), rest)
    };
    let mut collection = format!("/{}", prefix.join("/"));
    if !ns.is_empty() {
        collection.push_str(&format!("/namespaces/{ns}"));
    }
    collection.push_str(&format!("/{}", tail.first().copied().unwrap_or("")));
    Parsed {
        collection,
        name: tail.get(1).map(|s| s.to_string()),
        sub: tail.get(2).map(|s| s.to_string()),
        namespace: ns,
    }
}

/// RFC 7386 merge patch; lists of objects keyed by `uid` (owner references) merge by key and
/// honour `$patch: delete`, as a strategic merge patch would.
pub fn merge(target: &mut Value, patch: &Value, strategic: bool) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = json!({});
            }
            let t = target.as_object_mut().expect("object");
            for (k, v) in p {
                if k.starts_with("$setElementOrder") {
                    continue;
                }
                if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
                    if let Some(Value::Array(cur)) = t.get_mut(field) {
                        cur.retain(|x| !v.as_array().is_some_and(|d| d.contains(x)));
                    }
                    continue;
                }
                if v.is_null() {
                    t.remove(k);
                } else if strategic
                    && let (Some(Value::Array(cur)), Value::Array(items)) = (t.get_mut(k), v)
                    && items.iter().all(|i| i.get("uid").is_some())
                {
                    for item in items {
                        let uid = item.get("uid").cloned();
                        let pos = cur.iter().position(|c| c.get("uid") == uid.as_ref());
                        if item.get("$patch").and_then(Value::as_str) == Some("delete") {
                            if let Some(i) = pos {
                                cur.remove(i);
                            }
                        } else if let Some(i) = pos {
                            merge(&mut cur[i], item, strategic);
                        } else {
                            cur.push(item.clone());
                        }
                    }
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v, strategic);
                }
            }
        }
        other => *target = other.clone(),
    }
}

fn json_patch(target: &mut Value, ops: &Value) -> Result<(), String> {
    for op in ops.as_array().ok_or("not a JSON patch")? {
        let path = op["path"].as_str().ok_or("no path")?;
        let (parent, last) = path.rsplit_once('/').ok_or("bad path")?;
        let last = last.replace("~1", "/").replace("~0", "~");
        let p = target
            .pointer_mut(parent)
            .ok_or_else(|| format!("missing {parent}"))?;
        match op["op"].as_str() {
            Some("add") | Some("replace") => match p {
                Value::Object(m) => {
                    m.insert(last, op["value"].clone());
                }
                Value::Array(a) if last == "-" => a.push(op["value"].clone()),
                Value::Array(a) => {
                    let i: usize = last.parse().map_err(|_| "bad index")?;
                    if op["op"] == "add" {
                        a.insert(i, op["value"].clone());
                    } else {
                        a[i] = op["value"].clone();
                    }
                }
                _ => return Err("bad parent".into()),
            },
            Some("remove") => match p {
                Value::Object(m) => {
                    m.remove(&last);
                }
                Value::Array(a) => {
                    let i: usize = last.parse().map_err(|_| "bad index")?;
                    a.remove(i);
                }
                _ => return Err("bad parent".into()),
            },
            Some("test") => {}
            _ => return Err("unsupported op".into()),
        }
    }
    Ok(())
}

impl FakeApi {
    pub fn new(clock: Clock) -> Self {
        FakeApi {
            state: Arc::new(Mutex::new(State::default())),
            clock,
        }
    }

    pub fn client(&self) -> kube::Client {
        let me = self.clone();
        let svc = tower::service_fn(move |req: Request<kube::client::Body>| {
            let me = me.clone();
            async move {
                let (parts, body) = req.into_parts();
                let bytes = body
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                let ct = parts
                    .headers
                    .get(http::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let (code, body) = me.handle(parts.method.as_str(), parts.uri.path(), &ct, &bytes);
                Ok::<_, Infallible>(
                    Response::builder()
                        .status(StatusCode::from_u16(code).expect("status code"))
                        .header("content-type", "application/json")
                        .body(Full::new(Bytes::from(body.to_string())))
                        .expect("response"),
                )
            }
        });
        kube::Client::new(svc, "default")
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().requests.clone()
    }

    /// Requests with this method whose path ends with `suffix`, not counting events.
    pub fn writes(&self, method: &str, suffix: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| {
                r.method == method && r.path.ends_with(suffix) && !r.path.contains("/events")
            })
            .collect()
    }

    /// `(reason, message)` of every Event posted.
    pub fn events(&self) -> Vec<(String, String)> {
        self.state
            .lock()
            .objects
            .iter()
            .filter(|(k, _)| k.contains("/events/"))
            .map(|(_, v)| {
                (
                    v["reason"].as_str().unwrap_or("").to_string(),
                    v["message"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }

    pub fn clear_requests(&self) {
        self.state.lock().requests.clear();
    }

    /// Stores an object as if it had been created (keeps its name, uid and times).
    pub fn insert<K: serde::Serialize + kube::Resource<DynamicType = ()>>(&self, obj: &K) -> Value {
        let mut v = serde_json::to_value(obj).expect("serializable");
        v["apiVersion"] = json!(K::api_version(&()));
        v["kind"] = json!(K::kind(&()));
        let path = self.object_path::<K>(obj);
        let mut st = self.state.lock();
        st.rv += 1;
        v["metadata"]["resourceVersion"] = json!(st.rv.to_string());
        st.objects.insert(path, v.clone());
        v
    }

    pub fn get<K: kube::Resource<DynamicType = ()> + serde::de::DeserializeOwned>(
        &self,
        namespace: &str,
        name: &str,
    ) -> Option<K> {
        let url = K::url_path(&(), (!namespace.is_empty()).then_some(namespace));
        let path = format!("{}/{name}", url);
        let v = self.state.lock().objects.get(&path).cloned()?;
        serde_json::from_value(v).ok()
    }

    /// Every stored object of `K`.
    pub fn list<K: kube::Resource<DynamicType = ()> + serde::de::DeserializeOwned>(
        &self,
    ) -> Vec<K> {
        let plural = K::plural(&());
        let group = K::group(&());
        self.state
            .lock()
            .objects
            .iter()
            .filter(|(k, _)| {
                let p = parse(k);
                p.collection.ends_with(&format!("/{plural}"))
                    && (group.is_empty() == p.collection.starts_with("/api/"))
            })
            .filter_map(|(_, v)| serde_json::from_value(v.clone()).ok())
            .collect()
    }

    fn object_path<K: kube::Resource<DynamicType = ()>>(&self, obj: &K) -> String {
        let ns = obj.meta().namespace.as_deref();
        format!(
            "{}/{}",
            K::url_path(&(), ns),
            obj.meta().name.as_deref().unwrap_or("")
        )
    }

    /// The next request with `method` whose path contains `fragment` fails with `code`.
    pub fn fail_next(&self, method: &str, fragment: &str, code: u16) {
        self.state
            .lock()
            .failures
            .push((method.into(), fragment.into(), code));
    }

    fn handle(&self, method: &str, path: &str, ct: &str, body: &[u8]) -> (u16, Value) {
        let input: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let mut st = self.state.lock();
        st.requests.push(Recorded {
            method: method.into(),
            path: path.into(),
            body: input.clone(),
        });
        if let Some(i) = st
            .failures
            .iter()
            .position(|(m, f, _)| m == method && path.contains(f.as_str()))
        {
            let (_, _, code) = st.failures.remove(i);
            return (code, status(code, "InternalError", "injected failure"));
        }
        let p = parse(path);
        let now = self.clock.now_time();
        match (method, &p.name, p.sub.as_deref()) {
            ("GET", None, _) => {
                let items: Vec<Value> = st
                    .objects
                    .iter()
                    .filter(|(k, _)| k.starts_with(&format!("{}/", p.collection)))
                    .map(|(_, v)| v.clone())
                    .collect();
                (
                    200,
                    json!({"metadata": {"resourceVersion": st.rv.to_string()}, "items": items}),
                )
            }
            ("GET", Some(n), _) => match st.objects.get(&format!("{}/{n}", p.collection)) {
                Some(o) => (200, o.clone()),
                None => (404, status(404, "NotFound", &format!("{n} not found"))),
            },
            ("POST", Some(n), Some("binding")) => {
                let key = format!("{}/{n}", p.collection);
                st.rv += 1;
                let rv = st.rv;
                match st.objects.get_mut(&key) {
                    Some(o) => {
                        o["spec"]["nodeName"] = input["target"]["name"].clone();
                        o["metadata"]["resourceVersion"] = json!(rv.to_string());
                        (
                            201,
                            json!({"kind": "Status", "status": "Success", "code": 201}),
                        )
                    }
                    None => (404, status(404, "NotFound", &format!("{n} not found"))),
                }
            }
            ("POST", None, _) => {
                let mut obj = input;
                let mut name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
                if name.is_empty() {
                    let prefix = obj["metadata"]["generateName"].as_str().unwrap_or("");
                    st.uid += 1;
                    name = format!("{prefix}{:05}", st.uid);
                }
                let key = format!("{}/{name}", p.collection);
                if st.objects.contains_key(&key) {
                    return (
                        409,
                        status(409, "AlreadyExists", &format!("{name} already exists")),
                    );
                }
                st.uid += 1;
                st.rv += 1;
                let m = &mut obj["metadata"];
                m["name"] = json!(name);
                if !p.namespace.is_empty() {
                    m["namespace"] = json!(p.namespace);
                }
                m["uid"] = json!(format!("uid-{}", st.uid));
                m["resourceVersion"] = json!(st.rv.to_string());
                m["creationTimestamp"] = json!(now);
                if !p.collection.ends_with("/pods") {
                    m["generation"] = json!(1);
                } else if obj["status"]["phase"].is_null() {
                    // The API server starts pods Pending.
                    obj["status"]["phase"] = json!("Pending");
                }
                st.objects.insert(key, obj.clone());
                (201, obj)
            }
            ("PUT" | "PATCH", Some(n), sub) => {
                let key = format!("{}/{n}", p.collection);
                let Some(cur) = st.objects.get(&key).cloned() else {
                    return (404, status(404, "NotFound", &format!("{n} not found")));
                };
                let mut new = if method == "PUT" {
                    let want = input["metadata"]["resourceVersion"].as_str().unwrap_or("");
                    if !want.is_empty() && want != cur["metadata"]["resourceVersion"] {
                        return (
                            409,
                            status(
                                409,
                                "Conflict",
                                "the object has been modified; please apply your changes to the latest version and try again",
                            ),
                        );
                    }
                    input
                } else {
                    let mut o = cur.clone();
                    if ct.contains("json-patch") {
                        if let Err(e) = json_patch(&mut o, &input) {
                            return (422, status(422, "Invalid", &e));
                        }
                    } else {
                        merge(&mut o, &input, ct.contains("strategic"));
                    }
                    o
                };
                if sub == Some("status") {
                    let status = new.get("status").cloned();
                    new = cur.clone();
                    match status {
                        Some(s) => new["status"] = s,
                        None => {
                            new.as_object_mut().map(|m| m.remove("status"));
                        }
                    }
                } else if method == "PUT" {
                    match cur.get("status") {
                        Some(s) => new["status"] = s.clone(),
                        None => {
                            new.as_object_mut().map(|m| m.remove("status"));
                        }
                    }
                }
                for f in ["uid", "creationTimestamp", "namespace", "name"] {
                    new["metadata"][f] = cur["metadata"][f].clone();
                }
                if new.get("spec") != cur.get("spec") && cur["metadata"].get("generation").is_some()
                {
                    new["metadata"]["generation"] =
                        json!(cur["metadata"]["generation"].as_i64().unwrap_or(1) + 1);
                } else {
                    new["metadata"]["generation"] = cur["metadata"]["generation"].clone();
                    if new["metadata"]["generation"].is_null() {
                        new["metadata"]
                            .as_object_mut()
                            .map(|m| m.remove("generation"));
                    }
                }
                st.rv += 1;
                new["metadata"]["resourceVersion"] = json!(st.rv.to_string());
                st.objects.insert(key, new.clone());
                (200, new)
            }
            ("DELETE", Some(n), _) => {
                let key = format!("{}/{n}", p.collection);
                match st.objects.remove(&key) {
                    Some(o) if p.collection.ends_with("/pods") => (200, o),
                    Some(_) => (
                        200,
                        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}),
                    ),
                    None => (404, status(404, "NotFound", &format!("{n} not found"))),
                }
            }
            _ => (405, status(405, "MethodNotAllowed", method)),
        }
    }
}

/// Lets the background event writer and spawned tasks run.
pub async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

/// Builds a typed object from JSON (tests).
pub fn obj<K: serde::de::DeserializeOwned>(v: Value) -> K {
    serde_json::from_value(v).expect("test object")
}

/// A pod of `owner` (kind/name/uid), with labels, on `node` (empty: unscheduled), in `phase`,
/// Ready or not, created at `created` (seconds after the epoch).
pub fn pod(
    name: &str,
    labels: Value,
    owner: Option<(&str, &str, &str)>,
    node: &str,
    phase: &str,
    ready: bool,
    created: i64,
) -> k8s_openapi::api::core::v1::Pod {
    let mut v = json!({
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"),
                     "labels": labels, "resourceVersion": "1",
                     "creationTimestamp": jiff::Timestamp::from_second(created).unwrap().to_string()},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        "status": {"phase": phase, "conditions": [
            {"type": "Ready", "status": if ready {"True"} else {"False"},
             "lastTransitionTime": jiff::Timestamp::from_second(created).unwrap().to_string()}]},
    });
    if !node.is_empty() {
        v["spec"]["nodeName"] = json!(node);
    }
    if let Some((kind, oname, uid)) = owner {
        v["metadata"]["ownerReferences"] = json!([{"apiVersion": if kind == "ReplicationController" {"v1"} else {"apps/v1"},
            "kind": kind, "name": oname, "uid": uid, "controller": true, "blockOwnerDeletion": true}]);
    }
    obj(v)
}
