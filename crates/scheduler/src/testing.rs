//! Builders for plugin unit tests (as upstream's st.MakePod / st.MakeNode).

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::{Value, json};

use crate::framework::*;

pub struct PodBuilder(Value);

pub fn pod(name: &str) -> PodBuilder {
    PodBuilder(json!({
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "labels": {}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}], "schedulerName": "default-scheduler"},
    }))
}

impl PodBuilder {
    pub fn namespace(mut self, ns: &str) -> Self {
        self.0["metadata"]["namespace"] = json!(ns);
        self
    }
    pub fn node_name(mut self, n: &str) -> Self {
        self.0["spec"]["nodeName"] = json!(n);
        self
    }
    pub fn label(mut self, k: &str, v: &str) -> Self {
        self.0["metadata"]["labels"][k] = json!(v);
        self
    }
    pub fn toleration(mut self, t: Value) -> Self {
        if !self.0["spec"]["tolerations"].is_array() {
            self.0["spec"]["tolerations"] = json!([]);
        }
        self.0["spec"]["tolerations"]
            .as_array_mut()
            .unwrap()
            .push(t);
        self
    }
    pub fn gate(mut self, g: &str) -> Self {
        if !self.0["spec"]["schedulingGates"].is_array() {
            self.0["spec"]["schedulingGates"] = json!([]);
        }
        self.0["spec"]["schedulingGates"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": g}));
        self
    }
    pub fn container_port(mut self, container: i32, host: Option<i32>, ip: &str) -> Self {
        let mut p = json!({"containerPort": container, "protocol": "TCP"});
        if let Some(h) = host {
            p["hostPort"] = json!(h);
        }
        if !ip.is_empty() {
            p["hostIP"] = json!(ip);
        }
        self.0["spec"]["containers"][0]["ports"] = json!([p]);
        self
    }
    pub fn host_network(mut self) -> Self {
        self.0["spec"]["hostNetwork"] = json!(true);
        self
    }
    pub fn req(mut self, cpu: &str, mem: &str) -> Self {
        let mut r = json!({});
        if !cpu.is_empty() {
            r["cpu"] = json!(cpu);
        }
        if !mem.is_empty() {
            r["memory"] = json!(mem);
        }
        self.0["spec"]["containers"][0]["resources"] = json!({"requests": r});
        self
    }
    pub fn image(mut self, img: &str) -> Self {
        self.0["spec"]["containers"][0]["image"] = json!(img);
        self
    }
    pub fn priority(mut self, p: i32) -> Self {
        self.0["spec"]["priority"] = json!(p);
        self
    }
    pub fn node_selector(mut self, k: &str, v: &str) -> Self {
        self.0["spec"]["nodeSelector"][k] = json!(v);
        self
    }
    pub fn affinity(mut self, a: Value) -> Self {
        self.0["spec"]["affinity"] = a;
        self
    }
    pub fn spread(mut self, c: Value) -> Self {
        if !self.0["spec"]["topologySpreadConstraints"].is_array() {
            self.0["spec"]["topologySpreadConstraints"] = json!([]);
        }
        self.0["spec"]["topologySpreadConstraints"]
            .as_array_mut()
            .unwrap()
            .push(c);
        self
    }
    pub fn pvc(mut self, claim: &str) -> Self {
        self.0["spec"]["volumes"] =
            json!([{"name": "v", "persistentVolumeClaim": {"claimName": claim}}]);
        self
    }
    pub fn raw(self) -> Pod {
        serde_json::from_value(self.0).expect("test pod")
    }
    pub fn obj(self) -> Arc<PodInfo> {
        PodInfo::new(Arc::new(self.raw()))
    }
}

pub struct NodeBuilder {
    v: Value,
    pods: Vec<Arc<PodInfo>>,
}

pub fn node(name: &str) -> NodeBuilder {
    NodeBuilder {
        v: json!({
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "spec": {},
            "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                       "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"}},
        }),
        pods: Vec::new(),
    }
}

impl NodeBuilder {
    pub fn unschedulable(mut self) -> Self {
        self.v["spec"]["unschedulable"] = json!(true);
        self
    }
    pub fn label(mut self, k: &str, v: &str) -> Self {
        self.v["metadata"]["labels"][k] = json!(v);
        self
    }
    pub fn taint(mut self, key: &str, value: &str, effect: &str) -> Self {
        if !self.v["spec"]["taints"].is_array() {
            self.v["spec"]["taints"] = json!([]);
        }
        let mut t = json!({"key": key, "effect": effect});
        if !value.is_empty() {
            t["value"] = json!(value);
        }
        self.v["spec"]["taints"].as_array_mut().unwrap().push(t);
        self
    }
    pub fn allocatable(mut self, cpu: &str, mem: &str, pods: &str) -> Self {
        self.v["status"]["allocatable"] = json!({"cpu": cpu, "memory": mem, "pods": pods});
        self
    }
    pub fn image(mut self, name: &str, size: i64) -> Self {
        if !self.v["status"]["images"].is_array() {
            self.v["status"]["images"] = json!([]);
        }
        self.v["status"]["images"]
            .as_array_mut()
            .unwrap()
            .push(json!({"names": [name], "sizeBytes": size}));
        self
    }
    pub fn with_pod(mut self, p: Arc<PodInfo>) -> Self {
        self.pods.push(p);
        self
    }
    pub fn raw(&self) -> Node {
        serde_json::from_value(self.v.clone()).expect("test node")
    }
    pub fn info(self) -> NodeInfo {
        let mut n = NodeInfo::new(Arc::new(self.raw()));
        for p in self.pods {
            n.add_pod(p);
        }
        n
    }
}

/// A kube client whose every request fails: for plugins that never reach the API in tests.
pub fn offline_client() -> kube::Client {
    let svc = tower::service_fn(|_req: http::Request<kube::client::Body>| async {
        Err::<http::Response<kube::client::Body>, std::io::Error>(std::io::Error::other(
            "no API server in unit tests",
        ))
    });
    // kube's client spawns its request buffer: give it a runtime of its own so plain #[test]s
    // can build one.
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    let rt = RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("test runtime")
    });
    let _g = rt.enter();
    kube::Client::new(svc, "default")
}

pub fn handle() -> Arc<Handle> {
    Arc::new(Handle::new(offline_client(), Listers::detached(), None))
}
