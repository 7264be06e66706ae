use serde_json::{Value, json};

use super::*;
use crate::defaults;

/// Defaults then validates, as the server does, and renders each error as kubectl shows it.
fn create(group: &str, version: &str, kind: &str, mut obj: Value) -> Vec<String> {
    defaults::apply(group, version, kind, &mut obj);
    validate_create(group, version, kind, &obj)
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn update(group: &str, version: &str, kind: &str, mut new: Value, mut old: Value) -> Vec<String> {
    defaults::apply(group, version, kind, &mut new);
    defaults::apply(group, version, kind, &mut old);
    validate_update(group, version, kind, &new, &old)
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn pod(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"}, "spec": spec})
}

fn nginx() -> Value {
    json!({"name": "nginx", "image": "nginx"})
}

fn deployment(selector: Value, labels: Value) -> Value {
    json!({"metadata": {"name": "web", "namespace": "default"}, "spec": {
        "selector": selector,
        "template": {"metadata": {"labels": labels}, "spec": {"containers": [nginx()]}}}})
}

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

#[test]
fn valid_minimal_objects_pass() {
    let table: Vec<(&str, &str, &str, Value)> = vec![
        ("", "v1", "Pod", pod(json!({"containers": [nginx()]}))),
        (
            "apps",
            "v1",
            "Deployment",
            deployment(
                json!({"matchLabels": {"app": "web"}}),
                json!({"app": "web"}),
            ),
        ),
        (
            "",
            "v1",
            "Service",
            json!({"metadata": {"name": "web", "namespace": "d"}, "spec": {"ports": [{"port": 80}], "selector": {"app": "web"}}}),
        ),
        (
            "",
            "v1",
            "ConfigMap",
            json!({"metadata": {"name": "c", "namespace": "d"}, "data": {"a.b": "x", "K_1": "y"}}),
        ),
        (
            "",
            "v1",
            "Secret",
            json!({"metadata": {"name": "s", "namespace": "d"}, "data": {"k": "dg=="}}),
        ),
        ("", "v1", "Namespace", json!({"metadata": {"name": "dev"}})),
        ("batch", "v1", "Job", {
            let mut j = json!({"metadata": {"name": "pi", "namespace": "d", "uid": "u"}, "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [nginx()]}}}});
            defaults::apply("batch", "v1", "Job", &mut j);
            defaults::generate_job_selector(&mut j);
            j
        }),
        (
            "batch",
            "v1",
            "CronJob",
            json!({"metadata": {"name": "c", "namespace": "d"}, "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure", "containers": [nginx()]}}}}}}),
        ),
        (
            "apps",
            "v1",
            "DaemonSet",
            json!({"metadata": {"name": "ds", "namespace": "d"}, "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [nginx()]}}}}),
        ),
        (
            "apps",
            "v1",
            "StatefulSet",
            json!({"metadata": {"name": "web", "namespace": "d"}, "spec": {"serviceName": "web", "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i", "volumeMounts": [{"name": "www", "mountPath": "/d"}]}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "www"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}}),
        ),
        (
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRole",
            json!({"metadata": {"name": "system:foo"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}),
        ),
        (
            "rbac.authorization.k8s.io",
            "v1",
            "RoleBinding",
            json!({"metadata": {"name": "rb", "namespace": "d"}, "roleRef": {"kind": "Role", "name": "r", "apiGroup": "rbac.authorization.k8s.io"},
            "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "d"}, {"kind": "User", "name": "jane"}]}),
        ),
        (
            "autoscaling",
            "v2",
            "HorizontalPodAutoscaler",
            json!({"metadata": {"name": "h", "namespace": "d"}, "spec": {"maxReplicas": 3, "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}}}),
        ),
        (
            "policy",
            "v1",
            "PodDisruptionBudget",
            json!({"metadata": {"name": "p", "namespace": "d"}, "spec": {"minAvailable": "50%", "selector": {"matchLabels": {"a": "b"}}}}),
        ),
        (
            "networking.k8s.io",
            "v1",
            "Ingress",
            json!({"metadata": {"name": "i", "namespace": "d"}, "spec": {"rules": [{"host": "example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}}),
        ),
        (
            "networking.k8s.io",
            "v1",
            "NetworkPolicy",
            json!({"metadata": {"name": "n", "namespace": "d"}, "spec": {"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}], "ports": [{"port": 80}]}]}}),
        ),
        (
            "storage.k8s.io",
            "v1",
            "StorageClass",
            json!({"metadata": {"name": "fast"}, "provisioner": "rancher.io/local-path"}),
        ),
        (
            "scheduling.k8s.io",
            "v1",
            "PriorityClass",
            json!({"metadata": {"name": "high"}, "value": 1000}),
        ),
        (
            "coordination.k8s.io",
            "v1",
            "Lease",
            json!({"metadata": {"name": "n1", "namespace": "kube-node-lease"}, "spec": {"holderIdentity": "n1", "leaseDurationSeconds": 40}}),
        ),
        (
            "",
            "v1",
            "PersistentVolumeClaim",
            json!({"metadata": {"name": "c", "namespace": "d"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}),
        ),
        (
            "",
            "v1",
            "PersistentVolume",
            json!({"metadata": {"name": "pv"}, "spec": {"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}, "hostPath": {"path": "/d"}}}),
        ),
        (
            "",
            "v1",
            "Node",
            json!({"metadata": {"name": "n1"}, "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}}),
        ),
        (
            "",
            "v1",
            "Event",
            json!({"metadata": {"name": "e.1", "namespace": "d"}, "involvedObject": {"kind": "Pod", "name": "p", "namespace": "d"}}),
        ),
        (
            "discovery.k8s.io",
            "v1",
            "EndpointSlice",
            json!({"metadata": {"name": "s", "namespace": "d"}, "addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"]}], "ports": [{"port": 80}]}),
        ),
    ];
    for (g, v, k, obj) in table {
        assert_eq!(create(g, v, k, obj), Vec::<String>::new(), "{g}/{v} {k}");
    }
}

#[test]
fn object_meta_errors_read_as_upstream() {
    let table = [
        (json!({"metadata": {"namespace": "d"}}), vec!["metadata.name: Required value: name or generateName is required".to_string()]),
        (json!({"metadata": {"name": "Bad_Name", "namespace": "d"}}), vec![format!("metadata.name: Invalid value: \"Bad_Name\": {SUBDOMAIN_MSG}")]),
        (json!({"metadata": {"name": "ok"}}), vec!["metadata.namespace: Required value".to_string()]),
        (json!({"metadata": {"name": "ok", "namespace": "d", "labels": {"app": "-x"}}}), vec![
            "metadata.labels: Invalid value: \"-x\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".to_string(),
        ]),
        (json!({"metadata": {"name": "ok", "namespace": "d", "finalizers": ["foo"]}}), vec![
            "metadata.finalizers[0]: Invalid value: \"foo\": name is neither a standard finalizer name nor is it fully qualified".to_string(),
        ]),
        (json!({"metadata": {"name": "ok", "namespace": "d", "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "p"}]}}), vec![
            "metadata.ownerReferences.uid: Invalid value: \"\": must not be empty".to_string(),
        ]),
    ];
    for (obj, want) in table {
        assert_eq!(create("", "v1", "ConfigMap", obj.clone()), want, "{obj}");
    }
    let big = "x".repeat(256 * 1024);
    let errs = create(
        "",
        "v1",
        "ConfigMap",
        json!({"metadata": {"name": "c", "namespace": "d", "annotations": {"a": big}}}),
    );
    assert_eq!(
        errs,
        vec!["metadata.annotations: Too long: may not be more than 262144 bytes"]
    );
    let errs = create("", "v1", "Namespace", json!({"metadata": {"name": "a.b"}}));
    assert_eq!(
        errs,
        vec!["metadata.name: Invalid value: \"a.b\": must not contain dots"]
    );
    let errs = create(
        "",
        "v1",
        "Service",
        json!({"metadata": {"name": "1svc", "namespace": "d"}, "spec": {"ports": [{"port": 80}]}}),
    );
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0]
            .starts_with("metadata.name: Invalid value: \"1svc\": a DNS-1035 label must consist")
    );
    assert!(
        create(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRole",
            json!({"metadata": {"name": "a/b"}})
        )
        .contains(&"metadata.name: Invalid value: \"a/b\": may not contain '/'".to_string())
    );
    assert_eq!(
        create(
            "",
            "v1",
            "Namespace",
            json!({"metadata": {"name": "x", "namespace": "y"}})
        ),
        vec!["metadata.namespace: Forbidden: not allowed on this type"]
    );
    assert!(
        create(
            "",
            "v1",
            "ConfigMap",
            json!({"metadata": {"generateName": "web-", "name": "web-abcde", "namespace": "d"}})
        )
        .is_empty()
    );
}

#[test]
fn pod_rules_report_upstream_messages() {
    let table: Vec<(Value, Vec<&str>)> = vec![
        (
            json!({"containers": []}),
            vec!["spec.containers: Required value"],
        ),
        (
            json!({"containers": [{"name": "c"}]}),
            vec!["spec.containers[0].image: Required value"],
        ),
        (
            json!({"containers": [{"image": "i"}]}),
            vec!["spec.containers[0].name: Required value"],
        ),
        (
            json!({"containers": [nginx(), nginx()]}),
            vec!["spec.containers[1].name: Duplicate value: \"nginx\""],
        ),
        (
            json!({"initContainers": [nginx()], "containers": [nginx()]}),
            vec!["spec.containers[0].name: Duplicate value: \"nginx\""],
        ),
        (
            json!({"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 70000}]}]}),
            vec![
                "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
            ],
        ),
        (
            json!({"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80, "protocol": "HTTP"}]}]}),
            vec![
                "spec.containers[0].ports[0].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
            ],
        ),
        (
            json!({"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80, "name": "web"}, {"containerPort": 81, "name": "web"}]}]}),
            vec!["spec.containers[0].ports[1].name: Duplicate value: \"web\""],
        ),
        (
            json!({"restartPolicy": "Sometimes", "containers": [nginx()]}),
            vec![
                "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
            ],
        ),
        (
            json!({"dnsPolicy": "Bogus", "containers": [nginx()]}),
            vec![
                "spec.dnsPolicy: Unsupported value: \"Bogus\": supported values: \"ClusterFirstWithHostNet\", \"ClusterFirst\", \"Default\", \"None\"",
            ],
        ),
        (
            json!({"containers": [{"name": "c", "image": "i", "resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "2"}}}]}),
            vec![
                "spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1",
            ],
        ),
        (
            json!({"containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "-1"}}}]}),
            vec![
                "spec.containers[0].resources.requests[cpu]: Invalid value: \"-1\": must be greater than or equal to 0",
            ],
        ),
        (
            json!({"containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "abc"}}}]}),
            vec![
                "spec.containers[0].resources.requests[cpu]: Invalid value: \"abc\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
            ],
        ),
        (
            json!({"containers": [{"name": "c", "image": "i", "resources": {"requests": {"gpu": "1"}}}]}),
            vec![
                "spec.containers[0].resources.requests[gpu]: Invalid value: \"gpu\": must be a standard resource type or fully qualified",
                "spec.containers[0].resources.requests[gpu]: Invalid value: \"gpu\": must be a standard resource for containers",
            ],
        ),
        (
            json!({"containers": [{"name": "c", "image": "i", "volumeMounts": [{"name": "data", "mountPath": "/d"}]}]}),
            vec!["spec.containers[0].volumeMounts[0].name: Not found: \"data\""],
        ),
        (
            json!({"volumes": [{"name": "v", "emptyDir": {}, "hostPath": {"path": "/x"}}], "containers": [nginx()]}),
            vec!["spec.volumes[0].hostPath: Forbidden: may not specify more than 1 volume type"],
        ),
        (
            json!({"volumes": [{"name": "v"}, {"name": "v"}], "containers": [nginx()]}),
            vec!["spec.volumes[1].name: Duplicate value: \"v\""],
        ),
        (
            json!({"volumes": [{"name": "v", "configMap": {}}], "containers": [nginx()]}),
            vec!["spec.volumes[0].configMap.name: Required value"],
        ),
        (
            json!({"containers": [{"name": "c", "image": "i", "env": [{"name": "A=B", "value": "x"}]}]}),
            vec![
                "spec.containers[0].env[0].name: Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters other than '='",
            ],
        ),
        (
            json!({"containers": [{"name": "c", "image": "i", "livenessProbe": {"httpGet": {"port": 0}, "successThreshold": 2}}]}),
            vec![
                "spec.containers[0].livenessProbe.httpGet.port: Invalid value: 0: must be between 1 and 65535, inclusive",
                "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
            ],
        ),
        (
            json!({"containers": [{"name": "c", "image": "i", "readinessProbe": {}}]}),
            vec!["spec.containers[0].readinessProbe: Required value: must specify a handler type"],
        ),
        (
            json!({"nodeSelector": {"bad key!": "x"}, "containers": [nginx()]}),
            vec![
                "spec.nodeSelector: Invalid value: \"bad key!\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
            ],
        ),
        (
            json!({"tolerations": [{"operator": "Equal", "value": "x"}], "containers": [nginx()]}),
            vec![
                "spec.tolerations[0].operator: Invalid value: \"Equal\": operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ],
        ),
        (
            json!({"tolerations": [{"key": "k", "operator": "Maybe"}], "containers": [nginx()]}),
            vec![
                "spec.tolerations[0].operator: Unsupported value: \"Maybe\": supported values: \"Equal\", \"Exists\"",
            ],
        ),
        (
            json!({"tolerations": [{"key": "k", "effect": "Sometimes"}], "containers": [nginx()]}),
            vec![
                "spec.tolerations[0].effect: Unsupported value: \"Sometimes\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"",
            ],
        ),
        (
            json!({"tolerations": [{"key": "k", "effect": "NoSchedule", "tolerationSeconds": 5}], "containers": [nginx()]}),
            vec![
                "spec.tolerations[0].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' when `tolerationSeconds` is set",
            ],
        ),
        (
            json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}}, "containers": [nginx()]}),
            vec![
                "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms: Required value: must have at least one node selector term",
            ],
        ),
        (
            json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}, "topologyKey": "kubernetes.io/hostname"}]}}, "containers": [nginx()]}),
            vec![
                "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].labelSelector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
            ],
        ),
        (
            json!({"containers": [
            {"name": "a", "image": "i", "ports": [{"containerPort": 80, "hostPort": 8080}]},
            {"name": "b", "image": "i", "ports": [{"containerPort": 81, "hostPort": 8080}]}]}),
            vec!["spec.containers[1].ports[0].hostPort: Duplicate value: \"TCP//8080\""],
        ),
        (
            json!({"containers": [{"name": "c", "image": "i", "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "spec.bogus"}}}]}]}),
            vec![
                "spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Unsupported value: \"spec.bogus\": supported values: \"metadata.name\", \"metadata.namespace\", \"metadata.uid\", \"spec.nodeName\", \"spec.serviceAccountName\", \"status.hostIP\", \"status.hostIPs\", \"status.podIP\", \"status.podIPs\"",
            ],
        ),
        (
            json!({"containers": [{"name": "c", "image": "i", "env": [{"name": "N", "value": "x", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}}]}]}),
            vec![
                "spec.containers[0].env[0].valueFrom: Invalid value: \"\": may not be specified when `value` is not empty",
            ],
        ),
        (
            json!({"activeDeadlineSeconds": 0, "containers": [nginx()]}),
            vec![
                "spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive",
            ],
        ),
        (
            json!({"containers": [{"name": "Web", "image": "i"}]}),
            vec![],
        ),
    ];
    for (spec, want) in table {
        let got = create("", "v1", "Pod", pod(spec.clone()));
        if want.is_empty() {
            assert_eq!(
                got,
                vec![format!(
                    "spec.containers[0].name: Invalid value: \"Web\": {LABEL_MSG}"
                )],
                "{spec}"
            );
            continue;
        }
        assert_eq!(got, want, "{spec}");
    }
}

#[test]
fn pod_updates_may_change_only_images_and_a_few_fields() {
    let mut old =
        pod(json!({"containers": [nginx()], "tolerations": [{"key": "a", "operator": "Exists"}]}));
    defaults::apply("", "v1", "Pod", &mut old);
    let mut new_image = old.clone();
    new_image["spec"]["containers"][0]["image"] = json!("nginx:1.27");
    new_image["spec"]["activeDeadlineSeconds"] = json!(30);
    new_image["spec"]["tolerations"] =
        json!([{"key": "a", "operator": "Exists"}, {"key": "b", "operator": "Exists"}]);
    assert_eq!(
        update("", "v1", "Pod", new_image, old.clone()),
        Vec::<String>::new()
    );

    let mut new_port = old.clone();
    new_port["spec"]["containers"][0]["ports"] = json!([{"containerPort": 80}]);
    let errs = update("", "v1", "Pod", new_port, old.clone());
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n"), "{}", errs[0]);

    let mut renamed = old.clone();
    renamed["metadata"]["name"] = json!("q");
    assert_eq!(
        update("", "v1", "Pod", renamed, old),
        vec!["metadata.name: Invalid value: \"q\": field is immutable"]
    );
}

#[test]
fn workload_selectors_must_match_their_templates() {
    assert_eq!(
        create(
            "apps",
            "v1",
            "Deployment",
            deployment(json!({"matchLabels": {"app": "web"}}), json!({"app": "x"}))
        ),
        vec![
            "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"x\"}: `selector` does not match template `labels`"
        ]
    );
    let no_selector = json!({"metadata": {"name": "web", "namespace": "d"}, "spec": {
        "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [nginx()]}}}});
    assert_eq!(
        create("apps", "v1", "Deployment", no_selector),
        vec![
            "spec.selector: Required value",
            "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"x\"}: `selector` does not match template `labels`",
        ]
    );
    assert_eq!(
        create(
            "apps",
            "v1",
            "Deployment",
            deployment(json!({}), json!({"app": "x"}))
        ),
        vec![
            "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment"
        ]
    );
    let ds = json!({"metadata": {"name": "ds", "namespace": "d"}, "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "c"}}, "spec": {"containers": [nginx()]}}}});
    assert_eq!(
        create("apps", "v1", "DaemonSet", ds),
        vec![
            "spec.template.metadata.labels: Invalid value: map[string]string{\"a\":\"c\"}: `selector` does not match template `labels`"
        ]
    );
}

#[test]
fn workload_specs_report_upstream_messages() {
    let mut d = deployment(
        json!({"matchLabels": {"app": "web"}}),
        json!({"app": "web"}),
    );
    d["spec"]["replicas"] = json!(-1);
    d["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
    d["spec"]["strategy"] =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}});
    assert_eq!(
        create("apps", "v1", "Deployment", d),
        vec![
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
            "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
            "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}: may not be 0 when `maxSurge` is 0",
        ]
    );
    let mut d = deployment(
        json!({"matchLabels": {"app": "web"}}),
        json!({"app": "web"}),
    );
    d["spec"]["strategy"] = json!({"type": "Blue"});
    assert_eq!(
        create("apps", "v1", "Deployment", d),
        vec![
            "spec.strategy: Unsupported value: apps.DeploymentStrategy{Type:\"Blue\", RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}: supported values: \"Recreate\", \"RollingUpdate\""
        ]
    );
    let mut d = deployment(
        json!({"matchLabels": {"app": "web"}}),
        json!({"app": "web"}),
    );
    d["spec"]["strategy"] = json!({"rollingUpdate": {"maxSurge": "x"}});
    assert_eq!(
        create("apps", "v1", "Deployment", d),
        vec![
            "spec.strategy.rollingUpdate.maxSurge: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"x\"}: a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"
        ]
    );
    let job = json!({"metadata": {"name": "j", "namespace": "d", "uid": "u"}, "spec": {"template": {"spec": {"containers": [nginx()]}}}});
    let mut j = job.clone();
    defaults::apply("batch", "v1", "Job", &mut j);
    defaults::generate_job_selector(&mut j);
    assert_eq!(
        validate_create("batch", "v1", "Job", &j)
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        vec![
            "spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\""
        ]
    );
    let sts = json!({"metadata": {"name": "s", "namespace": "d"}, "spec": {"selector": {"matchLabels": {"a": "b"}}, "podManagementPolicy": "Random",
        "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [nginx()]}}}});
    assert_eq!(
        create("apps", "v1", "StatefulSet", sts),
        vec![
            "spec.podManagementPolicy: Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'"
        ]
    );
    let cj = json!({"metadata": {"name": "c", "namespace": "d"}, "spec": {"schedule": "61 * * * *", "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [nginx()]}}}}}});
    let errs = create("batch", "v1", "CronJob", cj);
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with(
            "spec.schedule: Invalid value: \"61 * * * *\": end of range (61) above maximum (59)"
        ),
        "{}",
        errs[0]
    );
}

#[test]
fn selectors_and_other_fields_are_immutable_on_update() {
    let old = deployment(
        json!({"matchLabels": {"app": "web"}}),
        json!({"app": "web", "v": "1"}),
    );
    let new = deployment(
        json!({"matchLabels": {"app": "web", "v": "1"}}),
        json!({"app": "web", "v": "1"}),
    );
    assert_eq!(
        update("apps", "v1", "Deployment", new, old.clone()),
        vec![
            "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web\", \"v\":\"1\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"
        ]
    );
    let mut scaled = old.clone();
    scaled["spec"]["replicas"] = json!(5);
    assert!(update("apps", "v1", "Deployment", scaled, old).is_empty());

    let svc = json!({"metadata": {"name": "s", "namespace": "d"}, "spec": {"clusterIP": "10.0.0.10", "ports": [{"port": 80}]}});
    let mut moved = svc.clone();
    moved["spec"]["clusterIP"] = json!("10.0.0.11");
    assert_eq!(
        update("", "v1", "Service", moved, svc),
        vec!["spec.clusterIPs[0]: Invalid value: \"10.0.0.11\": may not change once set"]
    );

    let cm =
        json!({"metadata": {"name": "c", "namespace": "d"}, "immutable": true, "data": {"a": "1"}});
    let mut changed = cm.clone();
    changed["data"]["a"] = json!("2");
    assert_eq!(
        update("", "v1", "ConfigMap", changed, cm),
        vec!["data: Forbidden: field is immutable when `immutable` is set"]
    );

    let rb = json!({"metadata": {"name": "rb", "namespace": "d"}, "roleRef": {"kind": "Role", "name": "a"}, "subjects": []});
    let mut other = rb.clone();
    other["roleRef"]["name"] = json!("b");
    assert_eq!(
        update("rbac.authorization.k8s.io", "v1", "RoleBinding", other, rb),
        vec![
            "roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"Role\", Name:\"b\"}: cannot change roleRef"
        ]
    );
}

#[test]
fn service_rules_report_upstream_messages() {
    let svc = |spec: Value| json!({"metadata": {"name": "s", "namespace": "d"}, "spec": spec});
    let table: Vec<(Value, Vec<&str>)> = vec![
        (json!({}), vec!["spec.ports: Required value"]),
        (json!({"clusterIP": "None"}), vec![]),
        (
            json!({"type": "ExternalName", "externalName": "example.com"}),
            vec![],
        ),
        (
            json!({"type": "Fancy", "ports": [{"port": 80}]}),
            vec![
                "spec.type: Unsupported value: \"Fancy\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"",
            ],
        ),
        (
            json!({"ports": [{"port": 0, "targetPort": 80}]}),
            vec!["spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"],
        ),
        (
            json!({"ports": [{"port": 80}, {"port": 81}]}),
            vec![
                "spec.ports[0].name: Required value",
                "spec.ports[1].name: Required value",
            ],
        ),
        (
            json!({"ports": [{"port": 80, "nodePort": 30080}]}),
            vec!["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"],
        ),
        (
            json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}),
            vec![],
        ),
        (
            json!({"clusterIP": "bogus", "ports": [{"port": 80}]}),
            vec![
                "spec.clusterIPs[0]: Invalid value: \"bogus\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
            ],
        ),
    ];
    for (spec, want) in table {
        assert_eq!(
            create("", "v1", "Service", svc(spec.clone())),
            want,
            "{spec}"
        );
    }
}

#[test]
fn config_keys_nodes_and_volumes_report_upstream_messages() {
    assert_eq!(
        create(
            "",
            "v1",
            "ConfigMap",
            json!({"metadata": {"name": "c", "namespace": "d"}, "data": {"a b": "x"}})
        ),
        vec![
            "data[a b]: Invalid value: \"a b\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
        ]
    );
    assert_eq!(
        create(
            "",
            "v1",
            "Secret",
            json!({"metadata": {"name": "s", "namespace": "d"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}})
        ),
        vec!["data[tls.key]: Required value"]
    );
    assert_eq!(
        create(
            "",
            "v1",
            "Node",
            json!({"metadata": {"name": "n"}, "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}, {"key": "k", "effect": "NoSchedule"}]}})
        ),
        vec![
            "spec.taints[1]: Duplicate value: core.Taint{Key:\"k\", Value:\"\", Effect:\"NoSchedule\", TimeAdded:<nil>}: taints must be unique by key and effect pair"
        ]
    );
    assert_eq!(
        create(
            "",
            "v1",
            "Node",
            json!({"metadata": {"name": "n"}, "spec": {"taints": [{"key": "k"}]}})
        ),
        vec!["spec.taints[0].effect: Required value"]
    );
    assert_eq!(
        create(
            "",
            "v1",
            "PersistentVolumeClaim",
            json!({"metadata": {"name": "c", "namespace": "d"}, "spec": {"accessModes": ["ReadWriteSometimes"], "resources": {"requests": {"storage": "1Gi"}}}})
        ),
        vec![
            "spec.accessModes: Unsupported value: \"ReadWriteSometimes\": supported values: \"ReadOnlyMany\", \"ReadWriteMany\", \"ReadWriteOnce\", \"ReadWriteOncePod\""
        ]
    );
    assert_eq!(
        create(
            "",
            "v1",
            "PersistentVolumeClaim",
            json!({"metadata": {"name": "c", "namespace": "d"}, "spec": {"accessModes": ["ReadWriteOnce"]}})
        ),
        vec!["spec.resources[storage]: Required value"]
    );
}

#[test]
fn other_groups_report_upstream_messages() {
    assert_eq!(
        create(
            "rbac.authorization.k8s.io",
            "v1",
            "Role",
            json!({"metadata": {"name": "r", "namespace": "d"}, "rules": [{"apiGroups": [""], "resources": ["pods"]}]})
        ),
        vec!["rules[0].verbs: Required value: verbs must contain at least one value"]
    );
    assert_eq!(
        create(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRoleBinding",
            json!({"metadata": {"name": "b"}, "roleRef": {"kind": "Role", "name": "r"}, "subjects": [{"kind": "ServiceAccount", "name": "default"}]})
        ),
        vec![
            "roleRef.kind: Unsupported value: \"Role\": supported values: \"ClusterRole\"",
            "subjects[0].namespace: Required value",
        ]
    );
    assert_eq!(
        create(
            "autoscaling",
            "v2",
            "HorizontalPodAutoscaler",
            json!({"metadata": {"name": "h", "namespace": "d"}, "spec": {"minReplicas": 3, "maxReplicas": 2, "scaleTargetRef": {"kind": "Deployment", "name": "w"}}})
        ),
        vec!["spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`"]
    );
    assert_eq!(
        create(
            "policy",
            "v1",
            "PodDisruptionBudget",
            json!({"metadata": {"name": "p", "namespace": "d"}, "spec": {"minAvailable": "150%"}})
        ),
        vec![
            "spec.minAvailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"150%\"}: must not be greater than 100%"
        ]
    );
    assert_eq!(
        create(
            "networking.k8s.io",
            "v1",
            "Ingress",
            json!({"metadata": {"name": "i", "namespace": "d"}, "spec": {"rules": [{"http": {"paths": [{"path": "/", "backend": {"service": {"name": "s", "port": {"number": 80}}}}]}}]}})
        ),
        vec!["spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified"]
    );
    assert_eq!(
        create(
            "scheduling.k8s.io",
            "v1",
            "PriorityClass",
            json!({"metadata": {"name": "huge"}, "value": 2000000000})
        ),
        vec!["value: Forbidden: maximum allowed value of a user defined priority is 1000000000"]
    );
    assert_eq!(
        create(
            "storage.k8s.io",
            "v1",
            "StorageClass",
            json!({"metadata": {"name": "s"}, "provisioner": "p", "reclaimPolicy": "Recycle"})
        ),
        vec![
            "reclaimPolicy: Unsupported value: \"Recycle\": supported values: \"Delete\", \"Retain\""
        ]
    );
    assert_eq!(
        create(
            "coordination.k8s.io",
            "v1",
            "Lease",
            json!({"metadata": {"name": "l", "namespace": "d"}, "spec": {"leaseDurationSeconds": 0}})
        ),
        vec!["spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"]
    );
    assert_eq!(
        create(
            "networking.k8s.io",
            "v1",
            "NetworkPolicy",
            json!({"metadata": {"name": "n", "namespace": "d"}, "spec": {"podSelector": {}, "ingress": [{"from": [{}]}]}})
        ),
        vec!["spec.ingress[0].from[0]: Required value: must specify a peer"]
    );
}

#[test]
fn wrong_json_types_become_errors_not_panics() {
    let odd = [
        json!(null),
        json!("x"),
        json!({"metadata": 5}),
        json!({"metadata": {"name": 5, "labels": [1]}, "spec": []}),
        json!({"metadata": {"name": "a", "namespace": "d"}, "spec": {"containers": [5, {"name": [], "image": {}, "ports": "x", "env": [1], "resources": {"limits": {"cpu": []}}}], "volumes": 3}}),
        json!({"metadata": {"name": "a", "namespace": "d"}, "spec": {"selector": "x", "template": 1, "strategy": {"type": 1, "rollingUpdate": {"maxSurge": []}}}}),
        json!({"metadata": {"name": "a", "namespace": "d"}, "spec": {"ports": [{"port": "x", "targetPort": []}], "type": 1}}),
        json!({"metadata": {"name": "a", "namespace": "d"}, "data": {"k": 1}, "rules": [1], "roleRef": 1, "subjects": {}}),
    ];
    let kinds = [
        ("", "Pod"),
        ("", "Service"),
        ("", "ConfigMap"),
        ("", "Secret"),
        ("", "Node"),
        ("", "PersistentVolume"),
        ("", "PersistentVolumeClaim"),
        ("", "LimitRange"),
        ("", "ResourceQuota"),
        ("", "Endpoints"),
        ("", "ReplicationController"),
        ("", "PodTemplate"),
        ("apps", "Deployment"),
        ("apps", "DaemonSet"),
        ("apps", "StatefulSet"),
        ("apps", "ReplicaSet"),
        ("batch", "Job"),
        ("batch", "CronJob"),
        ("rbac.authorization.k8s.io", "Role"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("autoscaling", "HorizontalPodAutoscaler"),
        ("policy", "PodDisruptionBudget"),
        ("networking.k8s.io", "Ingress"),
        ("networking.k8s.io", "NetworkPolicy"),
        ("storage.k8s.io", "StorageClass"),
        ("discovery.k8s.io", "EndpointSlice"),
        ("events.k8s.io", "Event"),
    ];
    for (g, k) in kinds {
        for o in &odd {
            let mut d = o.clone();
            defaults::apply(g, "v1", k, &mut d);
            let _ = validate_create(g, "v1", k, o);
            let _ = validate_create(g, "v1", k, &d);
            let _ = validate_update(g, "v1", k, o, &d);
            let _ = validate_update(g, "v1", k, &d, o);
        }
    }
    let errs = create(
        "",
        "v1",
        "ConfigMap",
        json!({"metadata": {"name": 5, "namespace": "d"}}),
    );
    assert_eq!(
        errs,
        vec![
            "metadata.name: Invalid value: 5: expected string",
            "metadata.name: Required value: name or generateName is required",
        ]
    );
}

#[test]
fn generated_job_selectors_and_template_labels_are_checked_as_upstream() {
    let mut j = json!({"metadata": {"name": "j", "namespace": "d", "uid": "u-1"}, "spec": {"template": {
        "metadata": {"labels": {"job-name": "other"}},
        "spec": {"restartPolicy": "Never", "containers": [nginx()]}}}});
    defaults::apply("batch", "v1", "Job", &mut j);
    defaults::generate_job_selector(&mut j);
    let errs: Vec<String> = validate_create("batch", "v1", "Job", &j)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with(
            "spec.template.metadata.labels[job-name]: Invalid value: map[string]string{"
        ) && errs[0].ends_with(": must be 'j'"),
        "{}",
        errs[0]
    );
    let d = deployment(
        json!({"matchLabels": {"app": "web"}}),
        json!({"app": "web", "bad key": "x"}),
    );
    let errs = create("apps", "v1", "Deployment", d);
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with(
            "spec.template.labels: Invalid value: \"bad key\": name part must consist"
        ),
        "{}",
        errs[0]
    );
}
