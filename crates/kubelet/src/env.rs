//! A container's environment as upstream builds it: `envFrom` sources, then `env` entries in
//! order (values with `$(VAR)` expanded, `valueFrom` resolved from the pod, its resources,
//! ConfigMaps and Secrets), then the Docker-links-style variables of the namespace's Services.
//! Also the `$(VAR)` expansion of command and args.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{Container, EnvVar, Pod, Service};

use crate::objects::Objects;

/// Node resources used when a container sets no limit (`resourceFieldRef` on limits).
#[derive(Clone, Copy, Debug, Default)]
pub struct Allocatable {
    pub cpu_milli: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
}

/// Facts about the running pod that `fieldRef` can name.
#[derive(Clone, Debug, Default)]
pub struct PodFacts {
    pub host_ips: Vec<String>,
    pub pod_ips: Vec<String>,
}

/// Upstream's `expansion.Expand`: `$(NAME)` becomes the value when NAME is known, `$$` escapes
/// a `$`, anything else is kept as written.
pub fn expand(input: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let b = input.as_bytes();
    let mut out = String::with_capacity(input.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' && i + 1 < b.len() {
            match b[i + 1] {
                b'$' => {
                    out.push('$');
                    i += 2;
                    continue;
                }
                b'(' => {
                    if let Some(end) = input[i + 2..].find(')') {
                        let name = &input[i + 2..i + 2 + end];
                        match lookup(name) {
                            Some(v) => out.push_str(&v),
                            None => {
                                out.push_str("$(");
                                out.push_str(name);
                                out.push(')');
                            }
                        }
                        i += end + 3;
                        continue;
                    }
                }
                _ => {}
            }
        }
        let ch = input[i..].chars().next().expect("in bounds");
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// Service environment variables for the pod's namespace (and the master `kubernetes` Service
/// from `default`, which every pod sees), as `{NAME}_SERVICE_HOST` and friends.
pub fn service_env(pod: &Pod, services: &[std::sync::Arc<Service>]) -> BTreeMap<String, String> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let links = pod
        .spec
        .as_ref()
        .and_then(|s| s.enable_service_links)
        .unwrap_or(true);
    let mut chosen: HashMap<String, &Service> = HashMap::new();
    for s in services {
        let sns = s.metadata.namespace.as_deref().unwrap_or("");
        let name = s.metadata.name.as_deref().unwrap_or("");
        let ip = s
            .spec
            .as_ref()
            .and_then(|sp| sp.cluster_ip.as_deref())
            .unwrap_or("");
        if ip.is_empty() || ip == "None" {
            continue;
        }
        let master = sns == "default" && name == "kubernetes";
        if master {
            chosen.entry(name.to_string()).or_insert(s);
        } else if links && sns == ns {
            chosen.insert(name.to_string(), s);
        }
    }
    let mut env = BTreeMap::new();
    for (name, s) in chosen {
        let spec = s.spec.as_ref().expect("checked above");
        let ip = spec.cluster_ip.clone().unwrap_or_default();
        let prefix = name.to_uppercase().replace('-', "_");
        let ports = spec.ports.as_deref().unwrap_or(&[]);
        env.insert(format!("{prefix}_SERVICE_HOST"), ip.clone());
        if let Some(first) = ports.first() {
            env.insert(format!("{prefix}_SERVICE_PORT"), first.port.to_string());
            let proto = first.protocol.as_deref().unwrap_or("TCP").to_lowercase();
            env.insert(
                format!("{prefix}_PORT"),
                format!("{proto}://{ip}:{}", first.port),
            );
        }
        for p in ports {
            if let Some(pn) = p.name.as_deref().filter(|n| !n.is_empty()) {
                env.insert(
                    format!(
                        "{prefix}_SERVICE_PORT_{}",
                        pn.to_uppercase().replace('-', "_")
                    ),
                    p.port.to_string(),
                );
            }
            let proto = p.protocol.as_deref().unwrap_or("TCP");
            let base = format!("{prefix}_PORT_{}_{}", p.port, proto.to_uppercase());
            let lower = proto.to_lowercase();
            env.insert(base.clone(), format!("{lower}://{ip}:{}", p.port));
            env.insert(format!("{base}_PROTO"), lower);
            env.insert(format!("{base}_PORT"), p.port.to_string());
            env.insert(format!("{base}_ADDR"), ip.clone());
        }
    }
    env
}

/// The value a `fieldRef` names.
pub fn field_value(pod: &Pod, path: &str, facts: &PodFacts) -> Result<String, String> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let subscript = |p: &str, prefix: &str| -> Option<String> {
        p.strip_prefix(prefix)?
            .strip_prefix("['")?
            .strip_suffix("']")
            .map(String::from)
    };
    if let Some(k) = subscript(path, "metadata.labels") {
        return Ok(meta
            .labels
            .as_ref()
            .and_then(|l| l.get(&k).cloned())
            .unwrap_or_default());
    }
    if let Some(k) = subscript(path, "metadata.annotations") {
        return Ok(meta
            .annotations
            .as_ref()
            .and_then(|l| l.get(&k).cloned())
            .unwrap_or_default());
    }
    Ok(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "metadata.labels" => format_map(meta.labels.as_ref()),
        "metadata.annotations" => format_map(meta.annotations.as_ref()),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.hostIP" => facts.host_ips.first().cloned().unwrap_or_default(),
        "status.hostIPs" => facts.host_ips.join(","),
        "status.podIP" => facts.pod_ips.first().cloned().unwrap_or_default(),
        "status.podIPs" => facts.pod_ips.join(","),
        other => return Err(format!("unsupported fieldPath: {other}")),
    })
}

/// `key="value"` lines, sorted, as the downward API writes label and annotation maps.
pub fn format_map(m: Option<&BTreeMap<String, String>>) -> String {
    m.map(|m| {
        m.iter()
            .map(|(k, v)| format!("{k}={}", go_quote(v)))
            .collect::<Vec<_>>()
            .join("\n")
    })
    .unwrap_or_default()
}

fn go_quote(s: &str) -> String {
    ferrokube_api::error::go_quote(s)
}

/// The value a `resourceFieldRef` names, rounded up in units of its divisor.
pub fn resource_value(
    pod: &Pod,
    container: &Container,
    container_name: Option<&str>,
    resource: &str,
    divisor: Option<&str>,
    node: &Allocatable,
) -> Result<String, String> {
    let c = match container_name.filter(|n| !n.is_empty()) {
        Some(n) => pod
            .spec
            .as_ref()
            .and_then(|s| {
                s.containers
                    .iter()
                    .chain(s.init_containers.iter().flatten())
                    .find(|c| c.name == n)
            })
            .ok_or_else(|| format!("container {n} not found"))?,
        None => container,
    };
    let (kind, name) = resource
        .split_once('.')
        .ok_or_else(|| format!("unsupported container resource : {resource}"))?;
    let q = match kind {
        "limits" => crate::qos::limit(c, name),
        "requests" => crate::qos::request(c, name),
        _ => return Err(format!("unsupported container resource : {resource}")),
    };
    let is_cpu = name == "cpu";
    let mut amount = if is_cpu {
        crate::qos::milli(q)
    } else {
        crate::qos::value(q)
    };
    if amount == 0 && kind == "limits" {
        amount = match name {
            "cpu" => node.cpu_milli,
            "memory" => node.memory,
            "ephemeral-storage" => node.ephemeral_storage,
            _ => 0,
        };
    }
    let divisor = divisor
        .and_then(|d| ferrokube_api::quantity::Quantity::parse(d).ok())
        .map(|d| if is_cpu { d.milli_value() } else { d.value() })
        .filter(|d| *d > 0)
        .unwrap_or(if is_cpu { 1000 } else { 1 });
    let v = (amount + divisor - 1) / divisor;
    Ok(v.max(if is_cpu && amount > 0 { 1 } else { 0 }).to_string())
}

/// Builds the container's environment. The error is the message of a
/// `CreateContainerConfigError`.
pub async fn make_environment(
    pod: &Pod,
    container: &Container,
    services: &[std::sync::Arc<Service>],
    objects: &dyn Objects,
    node: &Allocatable,
    facts: &PodFacts,
) -> Result<Vec<(String, String)>, String> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let service = service_env(pod, services);
    let mut order: Vec<String> = Vec::new();
    let mut values: HashMap<String, String> = HashMap::new();
    fn set(values: &mut HashMap<String, String>, order: &mut Vec<String>, k: String, v: String) {
        if !values.contains_key(&k) {
            order.push(k.clone());
        }
        values.insert(k, v);
    }
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        if let Some(r) = &from.config_map_ref {
            let optional = r.optional.unwrap_or(false);
            match objects.config_map(ns, &r.name).await? {
                Some(cm) => {
                    for (k, v) in cm.data.iter().flatten() {
                        let key = format!("{prefix}{k}");
                        if key.is_empty() || key.contains('=') {
                            continue;
                        }
                        set(&mut values, &mut order, key, v.clone());
                    }
                }
                None if optional => {}
                None => return Err(format!("configmap {:?} not found", r.name)),
            }
        }
        if let Some(r) = &from.secret_ref {
            let optional = r.optional.unwrap_or(false);
            match objects.secret(ns, &r.name).await? {
                Some(s) => {
                    for (k, v) in s.data.iter().flatten() {
                        let key = format!("{prefix}{k}");
                        if key.is_empty() || key.contains('=') {
                            continue;
                        }
                        set(
                            &mut values,
                            &mut order,
                            key,
                            String::from_utf8_lossy(&v.0).into_owned(),
                        );
                    }
                }
                None if optional => {}
                None => return Err(format!("secret {:?} not found", r.name)),
            }
        }
    }
    for EnvVar {
        name,
        value,
        value_from,
    } in container.env.iter().flatten()
    {
        let v = match (value, value_from) {
            (_, Some(from)) => {
                if let Some(f) = &from.field_ref {
                    field_value(pod, &f.field_path, facts)?
                } else if let Some(r) = &from.resource_field_ref {
                    resource_value(
                        pod,
                        container,
                        r.container_name.as_deref(),
                        &r.resource,
                        r.divisor.as_ref().map(|d| d.0.as_str()),
                        node,
                    )?
                } else if let Some(k) = &from.config_map_key_ref {
                    let optional = k.optional.unwrap_or(false);
                    match objects.config_map(ns, &k.name).await? {
                        Some(cm) => match cm.data.as_ref().and_then(|d| d.get(&k.key)) {
                            Some(v) => v.clone(),
                            None if optional => continue,
                            None => {
                                return Err(format!(
                                    "couldn't find key {} in ConfigMap {ns}/{}",
                                    k.key, k.name
                                ));
                            }
                        },
                        None if optional => continue,
                        None => return Err(format!("configmap {:?} not found", k.name)),
                    }
                } else if let Some(k) = &from.secret_key_ref {
                    let optional = k.optional.unwrap_or(false);
                    match objects.secret(ns, &k.name).await? {
                        Some(s) => match s.data.as_ref().and_then(|d| d.get(&k.key)) {
                            Some(v) => String::from_utf8_lossy(&v.0).into_owned(),
                            None if optional => continue,
                            None => {
                                return Err(format!(
                                    "couldn't find key {} in Secret {ns}/{}",
                                    k.key, k.name
                                ));
                            }
                        },
                        None if optional => continue,
                        None => return Err(format!("secret {:?} not found", k.name)),
                    }
                } else {
                    String::new()
                }
            }
            (Some(v), None) => {
                let lookup = |n: &str| values.get(n).cloned().or_else(|| service.get(n).cloned());
                expand(v, &lookup)
            }
            (None, None) => String::new(),
        };
        set(&mut values, &mut order, name.clone(), v);
    }
    let mut out: Vec<(String, String)> = order
        .into_iter()
        .map(|k| {
            let v = values.remove(&k).unwrap_or_default();
            (k, v)
        })
        .collect();
    let declared: std::collections::HashSet<String> = out.iter().map(|(k, _)| k.clone()).collect();
    for (k, v) in service {
        if !declared.contains(&k) {
            out.push((k, v));
        }
    }
    Ok(out)
}

/// Command and args with `$(VAR)` expanded from the container's environment.
pub fn expand_command(
    container: &Container,
    env: &[(String, String)],
) -> (Vec<String>, Vec<String>) {
    let map: HashMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let lookup = |n: &str| map.get(n).map(|v| v.to_string());
    let ex = |v: &Option<Vec<String>>| {
        v.iter()
            .flatten()
            .map(|s| expand(s, &lookup))
            .collect::<Vec<_>>()
    };
    (ex(&container.command), ex(&container.args))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ConfigMap, ConfigMapKeySelector, EnvFromSource, EnvVarSource, ObjectFieldSelector,
        PersistentVolume, PersistentVolumeClaim, PodSpec, Secret, ServicePort, ServiceSpec,
    };
    use kube::api::ObjectMeta;

    struct Fixed(Vec<ConfigMap>);

    #[async_trait::async_trait]
    impl Objects for Fixed {
        async fn config_map(&self, ns: &str, name: &str) -> Result<Option<ConfigMap>, String> {
            Ok(self
                .0
                .iter()
                .find(|c| {
                    c.metadata.name.as_deref() == Some(name)
                        && c.metadata.namespace.as_deref() == Some(ns)
                })
                .cloned())
        }
        async fn secret(&self, _: &str, _: &str) -> Result<Option<Secret>, String> {
            Ok(None)
        }
        async fn claim(&self, _: &str, _: &str) -> Result<Option<PersistentVolumeClaim>, String> {
            Ok(None)
        }
        async fn volume(&self, _: &str) -> Result<Option<PersistentVolume>, String> {
            Ok(None)
        }
        async fn service_account_token(
            &self,
            _: &str,
            _: &str,
            _: Option<String>,
            _: i64,
            _: (&str, &str),
        ) -> Result<String, String> {
            Err("no tokens here".into())
        }
    }

    fn pod() -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("shop".into()),
                uid: Some("u1".into()),
                labels: Some(BTreeMap::from([("app".into(), "web".into())])),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: Some("n1".into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn service(
        ns: &str,
        name: &str,
        ip: &str,
        port: i32,
        port_name: Option<&str>,
    ) -> std::sync::Arc<Service> {
        std::sync::Arc::new(Service {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(ns.into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                cluster_ip: Some(ip.into()),
                ports: Some(vec![ServicePort {
                    port,
                    name: port_name.map(String::from),
                    protocol: Some("TCP".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    #[test]
    fn expansion_follows_upstream_rules() {
        let lookup = |n: &str| (n == "A").then(|| "1".to_string());
        assert_eq!(expand("x$(A)y", &lookup), "x1y");
        assert_eq!(expand("$(B)", &lookup), "$(B)");
        assert_eq!(expand("$$(A)", &lookup), "$(A)");
        assert_eq!(expand("cost $5", &lookup), "cost $5");
        assert_eq!(expand("$(A", &lookup), "$(A");
    }

    #[test]
    fn services_in_the_namespace_and_the_master_service_become_variables() {
        let svcs = vec![
            service("shop", "redis-master", "10.96.0.10", 6379, Some("redis")),
            service("default", "kubernetes", "10.96.0.1", 443, Some("https")),
            service("other", "hidden", "10.96.0.11", 80, None),
        ];
        let env = service_env(&pod(), &svcs);
        assert_eq!(env["REDIS_MASTER_SERVICE_HOST"], "10.96.0.10");
        assert_eq!(env["REDIS_MASTER_SERVICE_PORT"], "6379");
        assert_eq!(env["REDIS_MASTER_SERVICE_PORT_REDIS"], "6379");
        assert_eq!(env["REDIS_MASTER_PORT"], "tcp://10.96.0.10:6379");
        assert_eq!(env["REDIS_MASTER_PORT_6379_TCP_ADDR"], "10.96.0.10");
        assert_eq!(env["REDIS_MASTER_PORT_6379_TCP_PROTO"], "tcp");
        assert_eq!(env["KUBERNETES_SERVICE_HOST"], "10.96.0.1");
        assert!(!env.contains_key("HIDDEN_SERVICE_HOST"));
    }

    #[tokio::test]
    async fn env_resolves_fields_config_maps_and_expansion_in_order() {
        let cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some("cfg".into()),
                namespace: Some("shop".into()),
                ..Default::default()
            },
            data: Some(BTreeMap::from([
                ("MODE".into(), "fast".into()),
                ("level".into(), "3".into()),
            ])),
            ..Default::default()
        };
        let objects = Fixed(vec![cm]);
        let c = Container {
            name: "c".into(),
            env_from: Some(vec![EnvFromSource {
                config_map_ref: Some(k8s_openapi::api::core::v1::ConfigMapEnvSource {
                    name: "cfg".into(),
                    optional: None,
                }),
                prefix: Some("CFG_".into()),
                ..Default::default()
            }]),
            env: Some(vec![
                EnvVar {
                    name: "POD".into(),
                    value_from: Some(EnvVarSource {
                        field_ref: Some(ObjectFieldSelector {
                            field_path: "metadata.name".into(),
                            api_version: None,
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                EnvVar {
                    name: "GREETING".into(),
                    value: Some("hello $(POD) in $(CFG_MODE)".into()),
                    ..Default::default()
                },
                EnvVar {
                    name: "LEVEL".into(),
                    value_from: Some(EnvVarSource {
                        config_map_key_ref: Some(ConfigMapKeySelector {
                            name: "cfg".into(),
                            key: "level".into(),
                            optional: None,
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        };
        let env = make_environment(
            &pod(),
            &c,
            &[],
            &objects,
            &Allocatable::default(),
            &PodFacts::default(),
        )
        .await
        .unwrap();
        let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            vec!["CFG_MODE", "CFG_level", "POD", "GREETING", "LEVEL"]
        );
        assert_eq!(env[3].1, "hello web in fast");
        assert_eq!(env[4].1, "3");

        let mut missing = c.clone();
        missing.env_from = None;
        missing.env = Some(vec![EnvVar {
            name: "X".into(),
            value_from: Some(EnvVarSource {
                config_map_key_ref: Some(ConfigMapKeySelector {
                    name: "cfg".into(),
                    key: "nope".into(),
                    optional: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        }]);
        let err = make_environment(
            &pod(),
            &missing,
            &[],
            &objects,
            &Allocatable::default(),
            &PodFacts::default(),
        )
        .await
        .unwrap_err();
        assert_eq!(err, "couldn't find key nope in ConfigMap shop/cfg");
    }

    #[test]
    fn resource_fields_round_up_and_fall_back_to_the_node() {
        use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
        let mut c = Container {
            name: "c".into(),
            ..Default::default()
        };
        c.resources = Some(k8s_openapi::api::core::v1::ResourceRequirements {
            limits: Some(BTreeMap::from([("cpu".into(), Quantity("250m".into()))])),
            ..Default::default()
        });
        let node = Allocatable {
            cpu_milli: 4000,
            memory: 8 << 30,
            ephemeral_storage: 0,
        };
        let p = pod();
        assert_eq!(
            resource_value(&p, &c, None, "limits.cpu", None, &node).unwrap(),
            "1"
        );
        assert_eq!(
            resource_value(&p, &c, None, "limits.cpu", Some("1m"), &node).unwrap(),
            "250"
        );
        assert_eq!(
            resource_value(&p, &c, None, "limits.memory", Some("1Mi"), &node).unwrap(),
            "8192"
        );
    }
}
