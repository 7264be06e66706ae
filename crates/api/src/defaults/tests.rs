use serde_json::{Value, json};

use super::core::image_tag;
use super::*;

fn defaulted(group: &str, version: &str, kind: &str, mut obj: Value) -> Value {
    apply(group, version, kind, &mut obj);
    obj
}

fn nginx_container() -> Value {
    json!({"name": "nginx", "image": "nginx"})
}

/// A container as upstream stores it when only name and image were given.
fn stored_container(pull: &str, image: &str) -> Value {
    json!({
        "name": "nginx",
        "image": image,
        "imagePullPolicy": pull,
        "resources": {},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File"
    })
}

fn stored_template_spec() -> Value {
    json!({
        "containers": [stored_container("Always", "nginx")],
        "dnsPolicy": "ClusterFirst",
        "restartPolicy": "Always",
        "schedulerName": "default-scheduler",
        "securityContext": {},
        "terminationGracePeriodSeconds": 30
    })
}

#[test]
fn minimal_pod_is_stored_with_upstream_defaults() {
    let pod = defaulted(
        "",
        "v1",
        "Pod",
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "nginx"},
               "spec": {"containers": [nginx_container()]}}),
    );
    let mut spec = stored_template_spec();
    spec["enableServiceLinks"] = json!(true);
    assert_eq!(
        pod,
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "nginx"},
               "spec": spec, "status": {}})
    );
}

#[test]
fn defaulting_twice_changes_nothing() {
    let once = defaulted(
        "apps",
        "v1",
        "Deployment",
        json!({"spec": {"selector": {"matchLabels": {"app": "x"}},
               "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [nginx_container()]}}}}),
    );
    let twice = defaulted("apps", "v1", "Deployment", once.clone());
    assert_eq!(once, twice);
}

#[test]
fn image_pull_policy_follows_the_tag() {
    let table = [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("nginx:1.25", "IfNotPresent"),
        ("docker.io/library/nginx", "Always"),
        ("localhost:5000/app", "Always"),
        ("localhost:5000/app:v1", "IfNotPresent"),
        (
            "nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "IfNotPresent",
        ),
        (
            "nginx:latest@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "Always",
        ),
        ("NGINX", "IfNotPresent"),
        ("", "IfNotPresent"),
    ];
    for (image, want) in table {
        let pod = defaulted(
            "",
            "v1",
            "Pod",
            json!({"spec": {"containers": [{"name": "c", "image": image}]}}),
        );
        assert_eq!(
            pod["spec"]["containers"][0]["imagePullPolicy"], want,
            "{image}"
        );
    }
    assert_eq!(
        image_tag("registry.example.com/team/app:2.0").as_deref(),
        Some("2.0")
    );
}

#[test]
fn explicit_pull_policy_is_kept() {
    let pod = defaulted(
        "",
        "v1",
        "Pod",
        json!({"spec": {"containers": [{"name": "c", "image": "nginx", "imagePullPolicy": "Never"}]}}),
    );
    assert_eq!(pod["spec"]["containers"][0]["imagePullPolicy"], "Never");
}

#[test]
fn pod_limits_become_requests_and_quantities_are_canonical() {
    let pod = defaulted(
        "",
        "v1",
        "Pod",
        json!({"spec": {"containers": [{"name": "c", "image": "x:1",
            "resources": {"limits": {"cpu": "0.5", "memory": "1024Mi"}, "requests": {"cpu": "100m"}}}]}}),
    );
    assert_eq!(
        pod["spec"]["containers"][0]["resources"],
        json!({"limits": {"cpu": "500m", "memory": "1Gi"}, "requests": {"cpu": "100m", "memory": "1Gi"}})
    );
}

#[test]
fn resource_lists_round_up_to_milli() {
    let pod = defaulted(
        "",
        "v1",
        "Pod",
        json!({"spec": {"containers": [{"name": "c", "image": "x:1",
            "resources": {"requests": {"cpu": "100u", "memory": 1000}}}]}}),
    );
    assert_eq!(
        pod["spec"]["containers"][0]["resources"]["requests"],
        json!({"cpu": "1m", "memory": "1k"})
    );
}

#[test]
fn probes_ports_env_and_volumes_get_their_defaults() {
    let pod = defaulted(
        "",
        "v1",
        "Pod",
        json!({"spec": {
        "containers": [{"name": "c", "image": "x:1",
            "ports": [{"containerPort": 80}],
            "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            "livenessProbe": {"httpGet": {"port": 80}},
            "readinessProbe": {"grpc": {"port": 9000}, "periodSeconds": 5},
            "lifecycle": {"preStop": {"httpGet": {"port": 8080, "path": "/stop"}}}}],
        "volumes": [
            {"name": "a"},
            {"name": "b", "configMap": {"name": "cm"}},
            {"name": "c", "secret": {"secretName": "s"}},
            {"name": "d", "hostPath": {"path": "/tmp"}},
            {"name": "e", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}},
                {"downwardAPI": {"items": [{"path": "n", "fieldRef": {"fieldPath": "metadata.name"}}]}}]}},
            {"name": "f", "emptyDir": {"sizeLimit": "1024Mi"}},
            {"name": "g", "ephemeral": {"volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}}}}}}
        ]}}),
    );
    let c = &pod["spec"]["containers"][0];
    assert_eq!(
        c["ports"],
        json!([{"containerPort": 80, "protocol": "TCP"}])
    );
    assert_eq!(
        c["env"][0]["valueFrom"]["fieldRef"],
        json!({"apiVersion": "v1", "fieldPath": "metadata.name"})
    );
    assert_eq!(
        c["livenessProbe"],
        json!({"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
               "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
    );
    assert_eq!(
        c["readinessProbe"],
        json!({"grpc": {"port": 9000, "service": ""}, "timeoutSeconds": 1,
               "periodSeconds": 5, "successThreshold": 1, "failureThreshold": 3})
    );
    assert_eq!(
        c["lifecycle"]["preStop"]["httpGet"],
        json!({"port": 8080, "path": "/stop", "scheme": "HTTP"})
    );
    let v = &pod["spec"]["volumes"];
    assert_eq!(v[0], json!({"name": "a", "emptyDir": {}}));
    assert_eq!(v[1]["configMap"]["defaultMode"], 420);
    assert_eq!(v[2]["secret"]["defaultMode"], 420);
    assert_eq!(v[3]["hostPath"], json!({"path": "/tmp", "type": ""}));
    assert_eq!(
        v[4]["projected"],
        json!({"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"path": "t", "expirationSeconds": 3600}},
            {"downwardAPI": {"items": [{"path": "n", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}]}}]})
    );
    assert_eq!(v[5]["emptyDir"]["sizeLimit"], "1Gi");
    assert_eq!(
        v[6]["ephemeral"]["volumeClaimTemplate"],
        json!({"metadata": {"creationTimestamp": null}, "spec": {"accessModes": ["ReadWriteOnce"],
               "resources": {"requests": {"storage": "1Gi"}}, "volumeMode": "Filesystem"}})
    );
}

#[test]
fn host_network_pods_publish_container_ports_on_the_host() {
    let pod = defaulted(
        "",
        "v1",
        "Pod",
        json!({"spec": {"hostNetwork": true, "containers": [{"name": "c", "image": "x:1",
            "ports": [{"containerPort": 80}, {"containerPort": 81, "hostPort": 9081}]}]}}),
    );
    assert_eq!(
        pod["spec"]["containers"][0]["ports"],
        json!([{"containerPort": 80, "hostPort": 80, "protocol": "TCP"},
               {"containerPort": 81, "hostPort": 9081, "protocol": "TCP"}])
    );
}

#[test]
fn minimal_deployment_is_stored_with_upstream_defaults() {
    let d = defaulted(
        "apps",
        "v1",
        "Deployment",
        json!({"metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [nginx_container()]}}}}),
    );
    assert_eq!(
        d,
        json!({"metadata": {"name": "web"}, "spec": {
            "progressDeadlineSeconds": 600,
            "replicas": 1,
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {"metadata": {"creationTimestamp": null, "labels": {"app": "web"}}, "spec": stored_template_spec()}
        }, "status": {}})
    );
}

#[test]
fn recreate_deployments_get_no_rolling_update_block() {
    let d = defaulted(
        "apps",
        "v1",
        "Deployment",
        json!({"spec": {"strategy": {"type": "Recreate"}, "template": {"spec": {"containers": []}}}}),
    );
    assert_eq!(d["spec"]["strategy"], json!({"type": "Recreate"}));
}

#[test]
fn daemon_set_stateful_set_and_replica_set_defaults_match_upstream() {
    let ds = defaulted("apps", "v1", "DaemonSet", json!({"spec": {"template": {}}}));
    assert_eq!(
        ds["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
    );
    assert_eq!(ds["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(
        ds["status"],
        json!({"currentNumberScheduled": 0, "desiredNumberScheduled": 0, "numberMisscheduled": 0, "numberReady": 0})
    );

    let sts = defaulted(
        "apps",
        "v1",
        "StatefulSet",
        json!({"spec": {"serviceName": "s", "template": {},
            "volumeClaimTemplates": [{"metadata": {"name": "www"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}}),
    );
    assert_eq!(sts["spec"]["podManagementPolicy"], "OrderedReady");
    assert_eq!(
        sts["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    );
    assert_eq!(
        sts["spec"]["persistentVolumeClaimRetentionPolicy"],
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
    );
    assert_eq!(sts["spec"]["replicas"], 1);
    assert_eq!(sts["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(
        sts["spec"]["volumeClaimTemplates"][0],
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
               "metadata": {"name": "www", "creationTimestamp": null},
               "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                        "volumeMode": "Filesystem"},
               "status": {"phase": "Pending"}})
    );

    let explicit = defaulted(
        "apps",
        "v1",
        "StatefulSet",
        json!({"spec": {"updateStrategy": {"type": "RollingUpdate"}}}),
    );
    assert_eq!(
        explicit["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate"})
    );

    let rs = defaulted("apps", "v1", "ReplicaSet", json!({"spec": {}}));
    assert_eq!(rs["spec"]["replicas"], 1);
    assert_eq!(rs["status"], json!({"replicas": 0}));
}

#[test]
fn replication_controller_copies_template_labels() {
    let rc = defaulted(
        "",
        "v1",
        "ReplicationController",
        json!({"metadata": {"name": "rc"}, "spec": {"template": {"metadata": {"labels": {"app": "a"}}, "spec": {}}}}),
    );
    assert_eq!(rc["spec"]["selector"], json!({"app": "a"}));
    assert_eq!(rc["metadata"]["labels"], json!({"app": "a"}));
    assert_eq!(rc["spec"]["replicas"], 1);
}

#[test]
fn minimal_job_and_generated_selector_match_upstream() {
    let mut job = defaulted(
        "batch",
        "v1",
        "Job",
        json!({"metadata": {"name": "pi", "uid": "u-1"}, "spec": {"template": {"spec": {
            "restartPolicy": "Never", "containers": [nginx_container()]}}}}),
    );
    generate_job_selector(&mut job);
    let labels = json!({
        "batch.kubernetes.io/controller-uid": "u-1",
        "batch.kubernetes.io/job-name": "pi",
        "controller-uid": "u-1",
        "job-name": "pi"
    });
    let mut tspec = stored_template_spec();
    tspec["restartPolicy"] = json!("Never");
    assert_eq!(
        job,
        json!({"metadata": {"name": "pi", "uid": "u-1", "labels": labels}, "spec": {
            "backoffLimit": 6,
            "completionMode": "NonIndexed",
            "completions": 1,
            "parallelism": 1,
            "podReplacementPolicy": "TerminatingOrFailed",
            "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}},
            "suspend": false,
            "template": {"metadata": {"creationTimestamp": null, "labels": labels}, "spec": tspec}
        }, "status": {}})
    );
}

#[test]
fn parallel_jobs_and_failure_policies_get_their_defaults() {
    let job = defaulted(
        "batch",
        "v1",
        "Job",
        json!({"spec": {"parallelism": 3, "podFailurePolicy": {"rules": [
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}, "template": {}}}),
    );
    assert_eq!(job["spec"].get("completions"), None);
    assert_eq!(job["spec"]["parallelism"], 3);
    assert_eq!(job["spec"]["podReplacementPolicy"], "Failed");
    assert_eq!(
        job["spec"]["podFailurePolicy"]["rules"][0]["onPodConditions"][0]["status"],
        "True"
    );
    let per_index = defaulted(
        "batch",
        "v1",
        "Job",
        json!({"spec": {"backoffLimitPerIndex": 1, "completionMode": "Indexed", "completions": 2}}),
    );
    assert_eq!(per_index["spec"]["backoffLimit"], 2147483647);
}

#[test]
fn manual_selector_jobs_are_not_given_a_selector() {
    let mut job = json!({"metadata": {"name": "j", "uid": "u"}, "spec": {"manualSelector": true,
        "selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}}}}});
    let before = job.clone();
    generate_job_selector(&mut job);
    assert_eq!(job, before);
}

#[test]
fn cron_job_defaults_match_upstream() {
    let cj = defaulted(
        "batch",
        "v1",
        "CronJob",
        json!({"spec": {"schedule": "*/1 * * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "OnFailure", "containers": [nginx_container()]}}}}}}),
    );
    let mut tspec = stored_template_spec();
    tspec["restartPolicy"] = json!("OnFailure");
    assert_eq!(
        cj,
        json!({"spec": {
            "concurrencyPolicy": "Allow",
            "failedJobsHistoryLimit": 1,
            "schedule": "*/1 * * * *",
            "successfulJobsHistoryLimit": 3,
            "suspend": false,
            "jobTemplate": {"metadata": {"creationTimestamp": null}, "spec": {"template": {
                "metadata": {"creationTimestamp": null}, "spec": tspec}}}
        }, "status": {}})
    );
}

#[test]
fn minimal_service_is_stored_with_upstream_defaults() {
    let svc = defaulted(
        "",
        "v1",
        "Service",
        json!({"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}),
    );
    assert_eq!(
        svc,
        json!({"metadata": {"name": "web"}, "spec": {
            "internalTrafficPolicy": "Cluster",
            "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
            "selector": {"app": "web"},
            "sessionAffinity": "None",
            "type": "ClusterIP"
        }, "status": {"loadBalancer": {}}})
    );
}

#[test]
fn load_balancer_services_get_external_policies_and_node_ports_flag() {
    let svc = defaulted(
        "",
        "v1",
        "Service",
        json!({"spec": {"type": "LoadBalancer", "sessionAffinity": "ClientIP",
            "ports": [{"port": 443, "targetPort": "https"}]}}),
    );
    assert_eq!(svc["spec"]["externalTrafficPolicy"], "Cluster");
    assert_eq!(svc["spec"]["allocateLoadBalancerNodePorts"], true);
    assert_eq!(
        svc["spec"]["sessionAffinityConfig"],
        json!({"clientIP": {"timeoutSeconds": 10800}})
    );
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], "https");
    let en = defaulted(
        "",
        "v1",
        "Service",
        json!({"spec": {"type": "ExternalName", "externalName": "x.com"}}),
    );
    assert_eq!(en["spec"].get("internalTrafficPolicy"), None);
    assert_eq!(en["spec"].get("externalTrafficPolicy"), None);
}

#[test]
fn namespace_node_volume_and_secret_defaults_match_upstream() {
    let ns = defaulted("", "v1", "Namespace", json!({"metadata": {"name": "dev"}}));
    assert_eq!(
        ns,
        json!({"metadata": {"name": "dev", "labels": {"kubernetes.io/metadata.name": "dev"}},
               "spec": {}, "status": {"phase": "Active"}})
    );
    let mut created = ns.clone();
    prepare_for_create("", "v1", "Namespace", &mut created);
    assert_eq!(created["spec"]["finalizers"], json!(["kubernetes"]));

    let node = defaulted(
        "",
        "v1",
        "Node",
        json!({"status": {"capacity": {"cpu": "4", "memory": "8Gi"}}}),
    );
    assert_eq!(
        node["status"]["allocatable"],
        json!({"cpu": "4", "memory": "8Gi"})
    );

    let pv = defaulted(
        "",
        "v1",
        "PersistentVolume",
        json!({"spec": {"capacity": {"storage": "10Gi"}, "hostPath": {"path": "/d"}}}),
    );
    assert_eq!(
        pv,
        json!({"spec": {"capacity": {"storage": "10Gi"}, "hostPath": {"path": "/d", "type": ""},
               "persistentVolumeReclaimPolicy": "Retain", "volumeMode": "Filesystem"},
               "status": {"phase": "Pending"}})
    );
    let pvc = defaulted(
        "",
        "v1",
        "PersistentVolumeClaim",
        json!({"spec": {"resources": {"requests": {"storage": "1Gi"}}}}),
    );
    assert_eq!(pvc["spec"]["volumeMode"], "Filesystem");
    assert_eq!(pvc["status"], json!({"phase": "Pending"}));

    let secret = defaulted("", "v1", "Secret", json!({"data": {}}));
    assert_eq!(secret["type"], "Opaque");
}

#[test]
fn limit_range_container_items_fill_default_and_request() {
    let lr = defaulted(
        "",
        "v1",
        "LimitRange",
        json!({"spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "64Mi"}},
            {"type": "Pod", "max": {"cpu": "4"}}]}}),
    );
    assert_eq!(
        lr["spec"]["limits"][0],
        json!({"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "64Mi"},
               "default": {"cpu": "2"}, "defaultRequest": {"cpu": "2", "memory": "64Mi"}})
    );
    assert_eq!(
        lr["spec"]["limits"][1],
        json!({"type": "Pod", "max": {"cpu": "4"}})
    );
    let bare = defaulted(
        "",
        "v1",
        "LimitRange",
        json!({"spec": {"limits": [{"type": "Container"}]}}),
    );
    assert_eq!(bare["spec"]["limits"][0], json!({"type": "Container"}));
}

#[test]
fn other_groups_get_their_defaults() {
    let hpa = defaulted(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        json!({"spec": {"maxReplicas": 5, "scaleTargetRef": {"kind": "Deployment", "name": "w", "apiVersion": "apps/v1"},
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}}),
    );
    assert_eq!(hpa["spec"]["minReplicas"], 1);
    assert_eq!(
        hpa["spec"]["metrics"],
        json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}])
    );
    assert_eq!(
        hpa["spec"]["behavior"],
        json!({"scaleDown": {"stabilizationWindowSeconds": 60, "selectPolicy": "Max",
                 "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]},
               "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                 "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                              {"type": "Percent", "value": 100, "periodSeconds": 15}]}})
    );
    let hpa1 = defaulted(
        "autoscaling",
        "v1",
        "HorizontalPodAutoscaler",
        json!({"spec": {"maxReplicas": 3}}),
    );
    assert_eq!(hpa1["spec"]["minReplicas"], 1);
    assert_eq!(hpa1["spec"]["targetCPUUtilizationPercentage"], 80);

    let np = defaulted(
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        json!({"spec": {"podSelector": {}, "egress": [{"ports": [{"port": 53}]}]}}),
    );
    assert_eq!(np["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    assert_eq!(np["spec"]["egress"][0]["ports"][0]["protocol"], "TCP");

    let rb = defaulted(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        json!({"roleRef": {"kind": "Role", "name": "r"}, "subjects": [
            {"kind": "User", "name": "u"}, {"kind": "Group", "name": "g"},
            {"kind": "ServiceAccount", "name": "s", "namespace": "d"}]}),
    );
    assert_eq!(rb["roleRef"]["apiGroup"], "rbac.authorization.k8s.io");
    assert_eq!(rb["subjects"][0]["apiGroup"], "rbac.authorization.k8s.io");
    assert_eq!(rb["subjects"][1]["apiGroup"], "rbac.authorization.k8s.io");
    assert_eq!(rb["subjects"][2].get("apiGroup"), None);

    let sc = defaulted(
        "storage.k8s.io",
        "v1",
        "StorageClass",
        json!({"provisioner": "p"}),
    );
    assert_eq!(sc["reclaimPolicy"], "Delete");
    assert_eq!(sc["volumeBindingMode"], "Immediate");

    let pc = defaulted(
        "scheduling.k8s.io",
        "v1",
        "PriorityClass",
        json!({"value": 10}),
    );
    assert_eq!(pc["preemptionPolicy"], "PreemptLowerPriority");

    let es = defaulted(
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        json!({"addressType": "IPv4", "ports": [{"port": 80}]}),
    );
    assert_eq!(
        es["ports"],
        json!([{"port": 80, "name": "", "protocol": "TCP"}])
    );

    let pdb = defaulted(
        "policy",
        "v1",
        "PodDisruptionBudget",
        json!({"spec": {"minAvailable": 1}}),
    );
    assert_eq!(
        pdb["status"],
        json!({"currentHealthy": 0, "desiredHealthy": 0, "disruptionsAllowed": 0, "expectedPods": 0})
    );
}

#[test]
fn pod_qos_class_is_computed_as_upstream() {
    let table = [
        (json!({}), "BestEffort"),
        (json!({"requests": {"cpu": "100m"}}), "Burstable"),
        (
            json!({"limits": {"cpu": "1", "memory": "1Gi"}}),
            "Guaranteed",
        ),
        (
            json!({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}}),
            "Burstable",
        ),
    ];
    for (res, want) in table {
        let mut pod =
            json!({"spec": {"containers": [{"name": "c", "image": "i", "resources": res}]}});
        apply("", "v1", "Pod", &mut pod);
        prepare_for_create("", "v1", "Pod", &mut pod);
        assert_eq!(pod["status"], json!({"phase": "Pending", "qosClass": want}));
    }
}

#[test]
fn odd_json_types_are_left_alone_without_panicking() {
    let table = [
        json!(null),
        json!([]),
        json!({"spec": 5}),
        json!({"spec": {"containers": "x", "volumes": [1, null, "a"], "initContainers": [{"ports": 3, "resources": []}]}}),
        json!({"spec": {"template": [], "selector": 1}}),
        json!({"spec": {"ports": [{"port": "x", "targetPort": {}}], "type": 7}}),
        json!({"metadata": 3, "status": "x"}),
    ];
    for kind in [
        ("", "v1", "Pod"),
        ("", "v1", "Service"),
        ("apps", "v1", "Deployment"),
        ("apps", "v1", "StatefulSet"),
        ("batch", "v1", "Job"),
        ("batch", "v1", "CronJob"),
        ("", "v1", "Namespace"),
        ("", "v1", "ReplicationController"),
        ("", "v1", "LimitRange"),
        ("autoscaling", "v2", "HorizontalPodAutoscaler"),
    ] {
        for obj in &table {
            let mut o = obj.clone();
            apply(kind.0, kind.1, kind.2, &mut o);
            generate_job_selector(&mut o);
            prepare_for_create(kind.0, kind.1, kind.2, &mut o);
        }
    }
}

#[test]
fn secret_string_data_is_stored_base64_in_data() {
    let s = defaulted(
        "",
        "v1",
        "Secret",
        json!({"metadata": {"name": "s"}, "data": {"a": "eA==", "b": "eQ=="}, "stringData": {"b": "hello"}}),
    );
    assert_eq!(
        s,
        json!({"metadata": {"name": "s"}, "type": "Opaque", "data": {"a": "eA==", "b": "aGVsbG8="}})
    );
}

#[test]
fn zero_values_of_omitempty_fields_are_not_stored() {
    let pod = defaulted(
        "",
        "v1",
        "Pod",
        json!({"metadata": {"name": "p", "labels": {}}, "spec": {"hostNetwork": false, "nodeSelector": {},
            "tolerations": [], "containers": [{"name": "c", "image": "i:1", "args": [], "tty": false,
                "ports": [{"containerPort": 80, "hostPort": 0, "name": ""}],
                "env": [{"name": "E", "value": ""}],
                "readinessProbe": {"tcpSocket": {"port": 80}, "initialDelaySeconds": 0},
                "securityContext": {"privileged": false, "runAsUser": 0}}]}}),
    );
    assert_eq!(pod["metadata"], json!({"name": "p"}));
    let spec = pod["spec"].as_object().cloned().unwrap_or_default();
    for gone in ["hostNetwork", "nodeSelector", "tolerations"] {
        assert!(!spec.contains_key(gone), "{gone}");
    }
    let c = &pod["spec"]["containers"][0];
    assert_eq!(c.get("args"), None);
    assert_eq!(c.get("tty"), None);
    assert_eq!(
        c["ports"],
        json!([{"containerPort": 80, "protocol": "TCP"}])
    );
    assert_eq!(c["env"], json!([{"name": "E"}]));
    assert_eq!(c["readinessProbe"].get("initialDelaySeconds"), None);
    // pointers keep their zero values
    assert_eq!(
        c["securityContext"],
        json!({"privileged": false, "runAsUser": 0})
    );
    let d = defaulted(
        "apps",
        "v1",
        "Deployment",
        json!({"spec": {"replicas": 0, "paused": false, "minReadySeconds": 0}}),
    );
    assert_eq!(d["spec"]["replicas"], 0);
    assert_eq!(d["spec"].get("paused"), None);
    assert_eq!(d["spec"].get("minReadySeconds"), None);
}

#[test]
fn conversion_aliases_are_mirrored_as_upstream() {
    let pod = defaulted(
        "",
        "v1",
        "Pod",
        json!({"spec": {"serviceAccount": "builder", "containers": []}}),
    );
    assert_eq!(pod["spec"]["serviceAccountName"], "builder");
    assert_eq!(pod["spec"]["serviceAccount"], "builder");
    let node = defaulted(
        "",
        "v1",
        "Node",
        json!({"spec": {"podCIDR": "10.244.1.0/24"}}),
    );
    assert_eq!(node["spec"]["podCIDRs"], json!(["10.244.1.0/24"]));
    let pod = defaulted(
        "",
        "v1",
        "Pod",
        json!({"spec": {"containers": []}, "status": {"podIPs": [{"ip": "10.0.0.5"}]}}),
    );
    assert_eq!(pod["status"]["podIP"], "10.0.0.5");
}

#[test]
fn gated_pods_start_with_the_scheduling_gated_condition() {
    let mut pod = json!({"spec": {"schedulingGates": [{"name": "example.com/wait"}], "containers": [nginx_container()]}});
    apply("", "v1", "Pod", &mut pod);
    prepare_for_create("", "v1", "Pod", &mut pod);
    assert_eq!(pod["status"]["conditions"][0]["reason"], "SchedulingGated");
    assert_eq!(pod["status"]["conditions"][0]["status"], "False");
    assert_eq!(pod["status"]["qosClass"], "BestEffort");
}
