//! Table-driven tests: each kind's columns, and the cells users notice in `kubectl get`.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::{Cell, Column, columns, row};

const NOW: &str = "2024-05-01T12:00:00Z";

fn now() -> Timestamp {
    NOW.parse().unwrap()
}

/// `seconds` before NOW, as an RFC 3339 timestamp.
fn ago(seconds: i64) -> String {
    crate::time::format_rfc3339(now() - jiff::SignedDuration::from_secs(seconds))
}

/// The cells of the row, rendered at NOW.
fn render(group: &str, resource: &str, obj: &Value) -> Vec<Value> {
    row(group, resource, obj).render_cells(now())
}

/// The rendered cell under the column named `column`.
fn cell(group: &str, resource: &str, obj: &Value, column: &str) -> Value {
    let cols = columns(group, resource);
    let i = cols
        .iter()
        .position(|c| c.name == column)
        .unwrap_or_else(|| panic!("{group}/{resource} has no column {column}"));
    render(group, resource, obj)[i].clone()
}

fn names(cols: &[Column]) -> Vec<&str> {
    cols.iter().map(|c| c.name).collect()
}

fn wide_names(cols: &[Column]) -> Vec<&str> {
    cols.iter()
        .filter(|c| c.priority == 1)
        .map(|c| c.name)
        .collect()
}

const KINDS: &[(&str, &str)] = &[
    ("", "pods"),
    ("", "podtemplates"),
    ("", "replicationcontrollers"),
    ("", "services"),
    ("", "endpoints"),
    ("", "nodes"),
    ("", "events"),
    ("", "namespaces"),
    ("", "secrets"),
    ("", "serviceaccounts"),
    ("", "persistentvolumes"),
    ("", "persistentvolumeclaims"),
    ("", "componentstatuses"),
    ("", "configmaps"),
    ("", "resourcequotas"),
    ("", "limitranges"),
    ("apps", "deployments"),
    ("apps", "replicasets"),
    ("apps", "daemonsets"),
    ("apps", "statefulsets"),
    ("apps", "controllerrevisions"),
    ("batch", "jobs"),
    ("batch", "cronjobs"),
    ("autoscaling", "horizontalpodautoscalers"),
    ("policy", "poddisruptionbudgets"),
    ("networking.k8s.io", "ingresses"),
    ("networking.k8s.io", "ingressclasses"),
    ("networking.k8s.io", "networkpolicies"),
    ("networking.k8s.io", "servicecidrs"),
    ("networking.k8s.io", "ipaddresses"),
    ("rbac.authorization.k8s.io", "roles"),
    ("rbac.authorization.k8s.io", "clusterroles"),
    ("rbac.authorization.k8s.io", "rolebindings"),
    ("rbac.authorization.k8s.io", "clusterrolebindings"),
    ("certificates.k8s.io", "certificatesigningrequests"),
    ("certificates.k8s.io", "clustertrustbundles"),
    ("coordination.k8s.io", "leases"),
    ("coordination.k8s.io", "leasecandidates"),
    ("storage.k8s.io", "storageclasses"),
    ("storage.k8s.io", "volumeattributesclasses"),
    ("storage.k8s.io", "volumeattachments"),
    ("storage.k8s.io", "csinodes"),
    ("storage.k8s.io", "csidrivers"),
    ("storage.k8s.io", "csistoragecapacities"),
    ("scheduling.k8s.io", "priorityclasses"),
    ("node.k8s.io", "runtimeclasses"),
    ("discovery.k8s.io", "endpointslices"),
    ("events.k8s.io", "events"),
    (
        "admissionregistration.k8s.io",
        "mutatingwebhookconfigurations",
    ),
    (
        "admissionregistration.k8s.io",
        "validatingwebhookconfigurations",
    ),
    (
        "admissionregistration.k8s.io",
        "validatingadmissionpolicies",
    ),
    (
        "admissionregistration.k8s.io",
        "validatingadmissionpolicybindings",
    ),
    ("admissionregistration.k8s.io", "mutatingadmissionpolicies"),
    (
        "admissionregistration.k8s.io",
        "mutatingadmissionpolicybindings",
    ),
    ("flowcontrol.apiserver.k8s.io", "flowschemas"),
    (
        "flowcontrol.apiserver.k8s.io",
        "prioritylevelconfigurations",
    ),
    ("resource.k8s.io", "deviceclasses"),
    ("resource.k8s.io", "resourceclaims"),
    ("resource.k8s.io", "resourceclaimtemplates"),
    ("resource.k8s.io", "resourceslices"),
    ("internal.apiserver.k8s.io", "storageversions"),
    ("storagemigration.k8s.io", "storageversionmigrations"),
    ("apiextensions.k8s.io", "customresourcedefinitions"),
    ("apiregistration.k8s.io", "apiservices"),
];

#[test]
fn every_kind_has_one_cell_per_column_even_for_odd_objects() {
    let odd_objects = [
        json!({}),
        json!(null),
        json!({"metadata": {"name": 5, "creationTimestamp": "yesterday"}, "spec": "x", "status": []}),
        json!({"metadata": {"name": "a", "labels": {"x": 1}}, "spec": {"containers": "c", "ports": [1, "a", null], "selector": {"matchExpressions": 3}, "metrics": [{"type": "Resource"}, {"type": 7}], "rules": [null]}, "status": {"conditions": [1, {"type": null}], "containerStatuses": [{"state": {"terminated": {}}}], "hard": {"cpu": 1}}}),
    ];
    for (group, resource) in KINDS {
        let cols = columns(group, resource);
        assert_ne!(
            cols,
            columns("example.com", "widgets"),
            "{group}/{resource} has no printer"
        );
        for obj in &odd_objects {
            let cells = render(group, resource, obj);
            // Upstream sends an age cell for IP addresses without defining an Age column.
            let expected = cols.len() + usize::from(*resource == "ipaddresses");
            assert_eq!(cells.len(), expected, "{group}/{resource} with {obj}");
        }
    }
}

#[test]
fn every_table_starts_with_a_name_column_except_events() {
    for (group, resource) in KINDS {
        let cols = columns(group, resource);
        if *resource == "events" {
            assert_eq!(cols[0].name, "Last Seen");
            assert_eq!(cols[9].name, "Name");
            assert_eq!(cols[9].format, "name");
            continue;
        }
        assert_eq!(cols[0].name, "Name", "{group}/{resource}");
        for c in cols {
            assert!(
                c.priority == 0 || c.priority == 1,
                "{group}/{resource} {}",
                c.name
            );
            assert!(
                ["string", "integer", "boolean", "date"].contains(&c.type_),
                "{group}/{resource} {}",
                c.name
            );
        }
    }
}

#[test]
fn column_names_and_wide_columns_match_upstream() {
    let cases: &[(&str, &str, &[&str], &[&str])] = &[
        (
            "",
            "pods",
            &[
                "Name",
                "Ready",
                "Status",
                "Restarts",
                "Age",
                "IP",
                "Node",
                "Nominated Node",
                "Readiness Gates",
            ],
            &["IP", "Node", "Nominated Node", "Readiness Gates"],
        ),
        (
            "",
            "nodes",
            &[
                "Name",
                "Status",
                "Roles",
                "Age",
                "Version",
                "Internal-IP",
                "External-IP",
                "OS-Image",
                "Kernel-Version",
                "Container-Runtime",
            ],
            &[
                "Internal-IP",
                "External-IP",
                "OS-Image",
                "Kernel-Version",
                "Container-Runtime",
            ],
        ),
        (
            "",
            "services",
            &[
                "Name",
                "Type",
                "Cluster-IP",
                "External-IP",
                "Port(s)",
                "Age",
                "Selector",
            ],
            &["Selector"],
        ),
        (
            "",
            "events",
            &[
                "Last Seen",
                "Type",
                "Reason",
                "Object",
                "Subobject",
                "Source",
                "Message",
                "First Seen",
                "Count",
                "Name",
            ],
            &["Subobject", "Source", "First Seen", "Count", "Name"],
        ),
        (
            "events.k8s.io",
            "events",
            &[
                "Last Seen",
                "Type",
                "Reason",
                "Object",
                "Subobject",
                "Source",
                "Message",
                "First Seen",
                "Count",
                "Name",
            ],
            &["Subobject", "Source", "First Seen", "Count", "Name"],
        ),
        (
            "",
            "persistentvolumes",
            &[
                "Name",
                "Capacity",
                "Access Modes",
                "Reclaim Policy",
                "Status",
                "Claim",
                "StorageClass",
                "VolumeAttributesClass",
                "Reason",
                "Age",
                "VolumeMode",
            ],
            &["VolumeMode"],
        ),
        (
            "",
            "persistentvolumeclaims",
            &[
                "Name",
                "Status",
                "Volume",
                "Capacity",
                "Access Modes",
                "StorageClass",
                "VolumeAttributesClass",
                "Age",
                "VolumeMode",
            ],
            &["VolumeMode"],
        ),
        (
            "",
            "resourcequotas",
            &["Name", "Request", "Limit", "Age"],
            &[],
        ),
        (
            "",
            "podtemplates",
            &["Name", "Containers", "Images", "Pod Labels"],
            &[],
        ),
        (
            "",
            "replicationcontrollers",
            &[
                "Name",
                "Desired",
                "Current",
                "Ready",
                "Age",
                "Containers",
                "Images",
                "Selector",
            ],
            &["Containers", "Images", "Selector"],
        ),
        (
            "",
            "componentstatuses",
            &["Name", "Status", "Message", "Error"],
            &[],
        ),
        ("", "limitranges", &["Name", "Created At"], &[]),
        (
            "apps",
            "deployments",
            &[
                "Name",
                "Ready",
                "Up-to-date",
                "Available",
                "Age",
                "Containers",
                "Images",
                "Selector",
            ],
            &["Containers", "Images", "Selector"],
        ),
        (
            "apps",
            "replicasets",
            &[
                "Name",
                "Desired",
                "Current",
                "Ready",
                "Age",
                "Containers",
                "Images",
                "Selector",
            ],
            &["Containers", "Images", "Selector"],
        ),
        (
            "apps",
            "daemonsets",
            &[
                "Name",
                "Desired",
                "Current",
                "Ready",
                "Up-to-date",
                "Available",
                "Node Selector",
                "Age",
                "Containers",
                "Images",
                "Selector",
            ],
            &["Containers", "Images", "Selector"],
        ),
        (
            "apps",
            "statefulsets",
            &["Name", "Ready", "Age", "Containers", "Images"],
            &["Containers", "Images"],
        ),
        (
            "apps",
            "controllerrevisions",
            &["Name", "Controller", "Revision", "Age"],
            &[],
        ),
        (
            "batch",
            "jobs",
            &[
                "Name",
                "Status",
                "Completions",
                "Duration",
                "Age",
                "Containers",
                "Images",
                "Selector",
            ],
            &["Containers", "Images", "Selector"],
        ),
        (
            "batch",
            "cronjobs",
            &[
                "Name",
                "Schedule",
                "Timezone",
                "Suspend",
                "Active",
                "Last Schedule",
                "Age",
                "Containers",
                "Images",
                "Selector",
            ],
            &["Containers", "Images", "Selector"],
        ),
        (
            "autoscaling",
            "horizontalpodautoscalers",
            &[
                "Name",
                "Reference",
                "Targets",
                "MinPods",
                "MaxPods",
                "Replicas",
                "Age",
            ],
            &[],
        ),
        (
            "policy",
            "poddisruptionbudgets",
            &[
                "Name",
                "Min Available",
                "Max Unavailable",
                "Allowed Disruptions",
                "Age",
            ],
            &[],
        ),
        (
            "networking.k8s.io",
            "ingresses",
            &["Name", "Class", "Hosts", "Address", "Ports", "Age"],
            &[],
        ),
        (
            "rbac.authorization.k8s.io",
            "rolebindings",
            &["Name", "Role", "Age", "Users", "Groups", "ServiceAccounts"],
            &["Users", "Groups", "ServiceAccounts"],
        ),
        (
            "rbac.authorization.k8s.io",
            "clusterroles",
            &["Name", "Created At"],
            &[],
        ),
        (
            "certificates.k8s.io",
            "certificatesigningrequests",
            &[
                "Name",
                "Age",
                "SignerName",
                "Requestor",
                "RequestedDuration",
                "Condition",
            ],
            &[],
        ),
        (
            "storage.k8s.io",
            "storageclasses",
            &[
                "Name",
                "Provisioner",
                "ReclaimPolicy",
                "VolumeBindingMode",
                "AllowVolumeExpansion",
                "Age",
            ],
            &[],
        ),
        (
            "scheduling.k8s.io",
            "priorityclasses",
            &["Name", "Value", "Global-Default", "Age", "PreemptionPolicy"],
            &[],
        ),
        (
            "discovery.k8s.io",
            "endpointslices",
            &["Name", "AddressType", "Ports", "Endpoints", "Age"],
            &[],
        ),
        ("example.com", "widgets", &["Name", "Age"], &[]),
    ];
    for (group, resource, want, want_wide) in cases {
        let cols = columns(group, resource);
        assert_eq!(names(cols), *want, "{group}/{resource}");
        assert_eq!(wide_names(cols), *want_wide, "{group}/{resource} wide");
    }
}

#[test]
fn column_types_follow_upstream_even_where_cells_differ() {
    let cases: &[(&str, &str, &str, &str)] = &[
        ("", "pods", "Restarts", "string"),
        ("", "secrets", "Data", "string"),
        ("", "replicationcontrollers", "Desired", "integer"),
        ("apps", "deployments", "Up-to-date", "string"),
        ("apps", "daemonsets", "Desired", "integer"),
        ("batch", "cronjobs", "Suspend", "boolean"),
        ("batch", "cronjobs", "Active", "integer"),
        (
            "scheduling.k8s.io",
            "priorityclasses",
            "Global-Default",
            "boolean",
        ),
        (
            "policy",
            "poddisruptionbudgets",
            "Allowed Disruptions",
            "integer",
        ),
        ("rbac.authorization.k8s.io", "roles", "Created At", "date"),
        ("example.com", "widgets", "Age", "date"),
    ];
    for (group, resource, column, type_) in cases {
        let col = columns(group, resource)
            .iter()
            .find(|c| c.name == *column)
            .unwrap();
        assert_eq!(col.type_, *type_, "{group}/{resource} {column}");
    }
    let pod = columns("", "pods");
    assert_eq!(pod[0].format, "name");
    assert!(
        pod[0]
            .description
            .starts_with("Name must be unique within a namespace.")
    );
    assert!(
        pod[5]
            .description
            .starts_with("podIP address allocated to the pod.")
    );
}

// ---- pods ------------------------------------------------------------------------------------

fn running(name: &str, restarts: i64) -> Value {
    json!({"name": name, "ready": true, "restartCount": restarts, "state": {"running": {"startedAt": ago(600)}}})
}

#[test]
fn pod_ready_status_and_restarts_cover_every_reason_path() {
    let cases: Vec<(&str, Value, &str, &str, Value)> = vec![
        (
            "a running pod",
            json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}, "status": {"phase": "Running", "containerStatuses": [running("a", 0), running("b", 0)]}}),
            "2/2",
            "Running",
            json!("0"),
        ),
        (
            "a pending pod with no statuses",
            json!({"spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Pending"}}),
            "0/1",
            "Pending",
            json!("0"),
        ),
        (
            "a pod gated from scheduling",
            json!({"spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}}),
            "0/1",
            "SchedulingGated",
            json!("0"),
        ),
        (
            "a container still being created",
            json!({"spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Pending", "containerStatuses": [{"name": "a", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}]}}),
            "0/1",
            "ContainerCreating",
            json!("0"),
        ),
        (
            "a crash-looping container with its last restart time",
            json!({"spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Running", "containerStatuses": [{"name": "a", "ready": false, "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}}, "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(300)}}}]}}),
            "0/1",
            "CrashLoopBackOff",
            json!("3 (5m ago)"),
        ),
        (
            "restarts without a known last termination",
            json!({"spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Running", "containerStatuses": [running("a", 2)]}}),
            "1/1",
            "Running",
            json!("2"),
        ),
        (
            "a completed pod",
            json!({"spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Succeeded", "containerStatuses": [{"name": "a", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}}),
            "0/1",
            "Completed",
            json!("0"),
        ),
        (
            "a container killed by a signal without a reason",
            json!({"spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Failed", "containerStatuses": [{"name": "a", "state": {"terminated": {"exitCode": 137, "signal": 9}}}]}}),
            "0/1",
            "Signal:9",
            json!("0"),
        ),
        (
            "a container exiting without a reason",
            json!({"spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Failed", "containerStatuses": [{"name": "a", "state": {"terminated": {"exitCode": 2}}}]}}),
            "0/1",
            "ExitCode:2",
            json!("0"),
        ),
        (
            "a completed container next to a running ready one",
            json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}, "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}], "containerStatuses": [{"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}, running("b", 0)]}}),
            "1/2",
            "Running",
            json!("0"),
        ),
        (
            "a completed container next to a running one of a pod not ready",
            json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}, "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}], "containerStatuses": [{"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}, running("b", 0)]}}),
            "1/2",
            "NotReady",
            json!("0"),
        ),
        (
            "the first of two init containers running",
            json!({"spec": {"initContainers": [{"name": "i1"}, {"name": "i2"}], "containers": [{"name": "a"}]}, "status": {"phase": "Pending", "initContainerStatuses": [{"name": "i1", "state": {"running": {}}}, {"name": "i2", "state": {"waiting": {"reason": "PodInitializing"}}}], "containerStatuses": [{"name": "a", "state": {"waiting": {"reason": "PodInitializing"}}}]}}),
            "0/1",
            "Init:0/2",
            json!("0"),
        ),
        (
            "the second init container running after the first succeeded",
            json!({"spec": {"initContainers": [{"name": "i1"}, {"name": "i2"}], "containers": [{"name": "a"}]}, "status": {"phase": "Pending", "initContainerStatuses": [{"name": "i1", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}, {"name": "i2", "state": {"running": {}}}]}}),
            "0/1",
            "Init:1/2",
            json!("0"),
        ),
        (
            "an init container that failed",
            json!({"spec": {"initContainers": [{"name": "i1"}], "containers": [{"name": "a"}]}, "status": {"phase": "Pending", "initContainerStatuses": [{"name": "i1", "restartCount": 2, "state": {"terminated": {"exitCode": 1, "reason": "Error"}}, "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(30)}}}]}}),
            "0/1",
            "Init:Error",
            json!("2 (30s ago)"),
        ),
        (
            "an init container crash-looping",
            json!({"spec": {"initContainers": [{"name": "i1"}], "containers": [{"name": "a"}]}, "status": {"phase": "Pending", "initContainerStatuses": [{"name": "i1", "restartCount": 4, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}}),
            "0/1",
            "Init:CrashLoopBackOff",
            json!("4"),
        ),
        (
            "an init container killed by a signal",
            json!({"spec": {"initContainers": [{"name": "i1"}], "containers": [{"name": "a"}]}, "status": {"phase": "Pending", "initContainerStatuses": [{"name": "i1", "state": {"terminated": {"exitCode": 143, "signal": 15}}}]}}),
            "0/1",
            "Init:Signal:15",
            json!("0"),
        ),
        (
            "an init container exiting without a reason",
            json!({"spec": {"initContainers": [{"name": "i1"}], "containers": [{"name": "a"}]}, "status": {"phase": "Pending", "initContainerStatuses": [{"name": "i1", "state": {"terminated": {"exitCode": 3}}}]}}),
            "0/1",
            "Init:ExitCode:3",
            json!("0"),
        ),
        (
            "init done and the main container starting",
            json!({"spec": {"initContainers": [{"name": "i1"}], "containers": [{"name": "a"}]}, "status": {"phase": "Pending", "initContainerStatuses": [{"name": "i1", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}], "containerStatuses": [{"name": "a", "state": {"waiting": {"reason": "PodInitializing"}}}]}}),
            "0/1",
            "PodInitializing",
            json!("0"),
        ),
        (
            "a started sidecar counts in READY and its restarts count",
            json!({"spec": {"initContainers": [{"name": "side", "restartPolicy": "Always"}], "containers": [{"name": "a"}]}, "status": {"phase": "Running", "conditions": [{"type": "Initialized", "status": "True"}], "initContainerStatuses": [{"name": "side", "started": true, "ready": true, "restartCount": 1, "state": {"running": {}}, "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(7200)}}}], "containerStatuses": [running("a", 1)]}}),
            "2/2",
            "Running",
            json!("2 (120m ago)"),
        ),
        (
            "a sidecar not yet started holds initialization",
            json!({"spec": {"initContainers": [{"name": "side", "restartPolicy": "Always"}], "containers": [{"name": "a"}]}, "status": {"phase": "Pending", "initContainerStatuses": [{"name": "side", "started": false, "state": {"running": {}}}]}}),
            "0/2",
            "Init:0/1",
            json!("0"),
        ),
        (
            "a deleting pod is Terminating",
            json!({"metadata": {"deletionTimestamp": ago(5)}, "spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Running", "containerStatuses": [running("a", 0)]}}),
            "1/1",
            "Terminating",
            json!("0"),
        ),
        (
            "a deleting pod that already finished keeps its reason",
            json!({"metadata": {"deletionTimestamp": ago(5)}, "spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Succeeded", "containerStatuses": [{"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}}),
            "0/1",
            "Completed",
            json!("0"),
        ),
        (
            "a pod on a lost node that is being deleted is Unknown",
            json!({"metadata": {"deletionTimestamp": ago(5)}, "spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Running", "reason": "NodeLost", "containerStatuses": [running("a", 0)]}}),
            "1/1",
            "Unknown",
            json!("0"),
        ),
        (
            "a pod on a lost node shows NodeLost",
            json!({"spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Unknown", "reason": "NodeLost"}}),
            "0/1",
            "NodeLost",
            json!("0"),
        ),
        (
            "an evicted pod shows the status reason",
            json!({"spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Failed", "reason": "Evicted"}}),
            "0/1",
            "Evicted",
            json!("0"),
        ),
    ];
    for (what, pod, ready, status, restarts) in cases {
        let cells = render("", "pods", &pod);
        assert_eq!(cells[1], json!(ready), "READY of {what}");
        assert_eq!(cells[2], json!(status), "STATUS of {what}");
        assert_eq!(cells[3], restarts, "RESTARTS of {what}");
    }
}

#[test]
fn pod_wide_cells_show_ip_node_nominated_node_and_readiness_gates() {
    let pod = json!({
        "metadata": {"name": "web", "creationTimestamp": ago(90)},
        "spec": {"nodeName": "n1", "containers": [{"name": "a"}], "readinessGates": [{"conditionType": "x/ready"}, {"conditionType": "y/ready"}]},
        "status": {"phase": "Running", "podIP": "10.0.0.9", "podIPs": [{"ip": "10.0.0.9"}, {"ip": "fd00::9"}], "conditions": [{"type": "x/ready", "status": "True"}, {"type": "y/ready", "status": "False"}]},
    });
    assert_eq!(
        render("", "pods", &pod),
        vec![
            json!("web"),
            json!("0/1"),
            json!("Running"),
            json!("0"),
            json!("90s"),
            json!("10.0.0.9"),
            json!("n1"),
            json!("<none>"),
            json!("1/2")
        ]
    );
    let bare = json!({"metadata": {"name": "p"}, "status": {"podIP": "10.0.0.1"}});
    let cells = render("", "pods", &bare);
    assert_eq!(cells[4], json!("<unknown>"));
    // Only podIPs counts, as upstream reads it.
    assert_eq!(
        &cells[5..],
        &[
            json!("<none>"),
            json!("<none>"),
            json!("<none>"),
            json!("<none>")
        ]
    );
}

#[test]
fn terminal_pods_carry_the_completed_row_condition() {
    let cases = [
        (
            "Succeeded",
            "Succeeded",
            "The pod has completed successfully.",
        ),
        ("Failed", "Failed", "The pod failed."),
    ];
    for (phase, reason, message) in cases {
        let r = row("", "pods", &json!({"status": {"phase": phase}}));
        assert_eq!(r.conditions.len(), 1, "{phase}");
        assert_eq!(
            r.conditions[0].render(),
            json!({"type": "Completed", "status": "True", "reason": reason, "message": message})
        );
    }
    assert!(
        row("", "pods", &json!({"status": {"phase": "Running"}}))
            .conditions
            .is_empty()
    );
}

// ---- nodes -----------------------------------------------------------------------------------

#[test]
fn node_status_combines_readiness_and_cordoning() {
    let ready = |status: &str| json!([{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": status}]);
    let cases = [
        (
            "ready",
            json!({"status": {"conditions": ready("True")}}),
            "Ready",
        ),
        (
            "not ready",
            json!({"status": {"conditions": ready("False")}}),
            "NotReady",
        ),
        (
            "ready unknown",
            json!({"status": {"conditions": ready("Unknown")}}),
            "NotReady",
        ),
        (
            "no Ready condition",
            json!({"status": {"conditions": [{"type": "DiskPressure", "status": "False"}]}}),
            "Unknown",
        ),
        (
            "cordoned",
            json!({"spec": {"unschedulable": true}, "status": {"conditions": ready("True")}}),
            "Ready,SchedulingDisabled",
        ),
        (
            "cordoned and not ready",
            json!({"spec": {"unschedulable": true}, "status": {"conditions": ready("False")}}),
            "NotReady,SchedulingDisabled",
        ),
        (
            "cordoned without conditions",
            json!({"spec": {"unschedulable": true}}),
            "Unknown,SchedulingDisabled",
        ),
    ];
    for (what, node, want) in cases {
        assert_eq!(cell("", "nodes", &node, "Status"), json!(want), "{what}");
    }
}

#[test]
fn node_roles_come_from_role_labels_sorted() {
    let cases = [
        (json!({}), "<none>"),
        (json!({"kubernetes.io/hostname": "n1"}), "<none>"),
        (
            json!({"node-role.kubernetes.io/control-plane": ""}),
            "control-plane",
        ),
        (
            json!({"node-role.kubernetes.io/worker": "", "node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/": ""}),
            "control-plane,worker",
        ),
        (json!({"kubernetes.io/role": "master"}), "master"),
        (json!({"kubernetes.io/role": ""}), "<none>"),
        (
            json!({"kubernetes.io/role": "infra", "node-role.kubernetes.io/infra": ""}),
            "infra",
        ),
    ];
    for (labels, want) in cases {
        let node = json!({"metadata": {"labels": labels}});
        assert_eq!(cell("", "nodes", &node, "Roles"), json!(want), "{labels}");
    }
}

#[test]
fn node_row_shows_version_addresses_and_system_info() {
    let node = json!({
        "metadata": {"name": "n1", "creationTimestamp": ago(3 * 86400 + 3600)},
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "addresses": [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "192.168.1.10"}, {"type": "InternalIP", "address": "192.168.1.11"}],
            "nodeInfo": {"kubeletVersion": "v1.33.1", "osImage": "Debian GNU/Linux 12 (bookworm)", "kernelVersion": "6.1.0", "containerRuntimeVersion": "containerd://1.7.24"},
        },
    });
    assert_eq!(
        render("", "nodes", &node),
        vec![
            json!("n1"),
            json!("Ready"),
            json!("<none>"),
            json!("3d1h"),
            json!("v1.33.1"),
            json!("192.168.1.10"),
            json!("<none>"),
            json!("Debian GNU/Linux 12 (bookworm)"),
            json!("6.1.0"),
            json!("containerd://1.7.24")
        ]
    );
    let bare = render("", "nodes", &json!({"metadata": {"name": "n2"}}));
    assert_eq!(
        &bare[4..],
        &[
            json!(""),
            json!("<none>"),
            json!("<none>"),
            json!("<unknown>"),
            json!("<unknown>"),
            json!("<unknown>")
        ]
    );
}

// ---- services and endpoints ------------------------------------------------------------------

#[test]
fn service_cells_cover_types_ips_and_ports() {
    let ports = json!([{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 443, "protocol": "TCP"}]);
    let cases: Vec<(&str, Value, &str, &str, &str)> = vec![
        (
            "cluster IP",
            json!({"type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"], "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}),
            "10.96.0.10",
            "<none>",
            "53/UDP,53/TCP",
        ),
        (
            "headless",
            json!({"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"]}),
            "None",
            "<none>",
            "<none>",
        ),
        (
            "cluster IP with external IPs",
            json!({"type": "ClusterIP", "clusterIPs": ["10.96.0.1"], "externalIPs": ["1.2.3.4", "5.6.7.8"], "ports": [{"port": 80, "protocol": "TCP"}]}),
            "10.96.0.1",
            "1.2.3.4,5.6.7.8",
            "80/TCP",
        ),
        (
            "node port",
            json!({"type": "NodePort", "clusterIPs": ["10.96.0.2"], "ports": ports.clone()}),
            "10.96.0.2",
            "<none>",
            "80:30080/TCP,443/TCP",
        ),
        (
            "load balancer pending",
            json!({"type": "LoadBalancer", "clusterIPs": ["10.96.0.3"], "ports": ports.clone()}),
            "10.96.0.3",
            "<pending>",
            "80:30080/TCP,443/TCP",
        ),
        (
            "load balancer with ingress",
            json!({"type": "LoadBalancer", "clusterIPs": ["10.96.0.3"], "ports": ports.clone()}),
            "10.96.0.3",
            "203.0.113.7,lb.example.com",
            "80:30080/TCP,443/TCP",
        ),
        (
            "load balancer with ingress and external IPs",
            json!({"type": "LoadBalancer", "clusterIPs": ["10.96.0.3"], "externalIPs": ["1.1.1.1"]}),
            "10.96.0.3",
            "203.0.113.7,lb.example.com,1.1.1.1",
            "<none>",
        ),
        (
            "external name",
            json!({"type": "ExternalName", "externalName": "db.example.com"}),
            "<none>",
            "db.example.com",
            "<none>",
        ),
        (
            "cluster IP only in the singular field",
            json!({"type": "ClusterIP", "clusterIP": "10.96.0.4"}),
            "10.96.0.4",
            "<none>",
            "<none>",
        ),
        ("no type", json!({}), "<none>", "<unknown>", "<none>"),
    ];
    for (what, spec, cluster_ip, external_ip, svc_ports) in cases {
        let ingress = if what.contains("with ingress") {
            json!([{"hostname": "lb.example.com"}, {"ip": "203.0.113.7", "hostname": "ignored"}, {"ip": "203.0.113.7"}])
        } else {
            json!([])
        };
        let svc = json!({"metadata": {"name": "s"}, "spec": spec, "status": {"loadBalancer": {"ingress": ingress}}});
        let cells = render("", "services", &svc);
        assert_eq!(cells[2], json!(cluster_ip), "CLUSTER-IP of {what}");
        assert_eq!(cells[3], json!(external_ip), "EXTERNAL-IP of {what}");
        assert_eq!(cells[4], json!(svc_ports), "PORT(S) of {what}");
    }
    let svc = json!({"spec": {"type": "ClusterIP", "selector": {"tier": "web", "app": "shop"}}});
    assert_eq!(cell("", "services", &svc, "Type"), json!("ClusterIP"));
    assert_eq!(
        cell("", "services", &svc, "Selector"),
        json!("app=shop,tier=web")
    );
    assert_eq!(
        cell("", "services", &json!({}), "Selector"),
        json!("<none>")
    );
}

#[test]
fn endpoints_list_three_addresses_then_how_many_more() {
    let addrs = |ips: &[&str]| Value::Array(ips.iter().map(|ip| json!({"ip": ip})).collect());
    let cases = vec![
        (json!([]), "<none>"),
        (
            json!([{"addresses": addrs(&["10.0.0.1"]), "ports": [{"port": 80}]}]),
            "10.0.0.1:80",
        ),
        (
            json!([{"addresses": addrs(&["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"]), "ports": [{"port": 80}]}]),
            "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 1 more...",
        ),
        (
            json!([{"addresses": addrs(&["10.0.0.1", "10.0.0.2"]), "ports": [{"port": 80}, {"port": 443}]}]),
            "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 1 more...",
        ),
        (
            json!([{"addresses": addrs(&["10.0.0.1", "10.0.0.2"])}]),
            "10.0.0.1,10.0.0.2",
        ),
        (
            json!([{"addresses": addrs(&["fd00::1"]), "ports": [{"port": 8080}]}]),
            "[fd00::1]:8080",
        ),
        (
            json!([{"notReadyAddresses": addrs(&["10.0.0.1"]), "ports": [{"port": 80}]}]),
            "",
        ),
    ];
    for (subsets, want) in cases {
        let ep = json!({"subsets": subsets});
        assert_eq!(
            cell("", "endpoints", &ep, "Endpoints"),
            json!(want),
            "{subsets}"
        );
    }
}

#[test]
fn endpoint_slices_list_ports_and_addresses() {
    let slice = json!({
        "addressType": "IPv4",
        "ports": [{"port": 80, "name": "http"}, {"name": "metrics"}, {}, {"port": 9090}],
        "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2", "10.0.0.3"]}, {"addresses": ["10.0.0.4"]}],
    });
    let cells = render("discovery.k8s.io", "endpointslices", &slice);
    assert_eq!(cells[1], json!("IPv4"));
    assert_eq!(cells[2], json!("80,metrics,* + 1 more..."));
    assert_eq!(cells[3], json!("10.0.0.1,10.0.0.2,10.0.0.3 + 1 more..."));
    let empty = render(
        "discovery.k8s.io",
        "endpointslices",
        &json!({"addressType": "IPv6"}),
    );
    assert_eq!(&empty[2..4], &[json!("<unset>"), json!("<unset>")]);
}

// ---- events ----------------------------------------------------------------------------------

#[test]
fn core_event_columns_fall_back_between_timestamps() {
    let base = |extra: Value| {
        let mut e = json!({
            "metadata": {"name": "web.17a"},
            "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{app}"},
            "type": "Warning", "reason": "BackOff", "message": "  Back-off restarting failed container\n",
            "source": {"component": "kubelet", "host": "n1"},
        });
        e.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        e
    };
    let cases = vec![
        (
            "both legacy timestamps",
            base(json!({"firstTimestamp": ago(600), "lastTimestamp": ago(30), "count": 7})),
            "30s",
            "10m",
            7,
        ),
        (
            "only the first timestamp",
            base(json!({"firstTimestamp": ago(600)})),
            "10m",
            "10m",
            1,
        ),
        (
            "only eventTime, truncated to whole seconds",
            base(json!({"eventTime": "2024-05-01T11:59:00.123456Z"})),
            "59s",
            "59s",
            1,
        ),
        (
            "a series",
            base(
                json!({"eventTime": ago(3600), "series": {"count": 4, "lastObservedTime": "2024-05-01T11:58:00.000000Z"}}),
            ),
            "2m",
            "60m",
            4,
        ),
        (
            "no timestamps",
            base(json!({})),
            "<unknown>",
            "<unknown>",
            1,
        ),
        (
            "a timestamp in the future",
            base(
                json!({"lastTimestamp": "2024-05-01T12:00:05Z", "firstTimestamp": "2024-05-01T12:00:01Z"}),
            ),
            "<invalid>",
            "0s",
            1,
        ),
    ];
    for (what, event, last_seen, first_seen, count) in cases {
        let cells = render("", "events", &event);
        assert_eq!(cells[0], json!(last_seen), "LAST SEEN with {what}");
        assert_eq!(cells[7], json!(first_seen), "FIRST SEEN with {what}");
        assert_eq!(cells[8], json!(count), "COUNT with {what}");
    }
    let cells = render("", "events", &base(json!({})));
    assert_eq!(
        &cells[1..7],
        &[
            json!("Warning"),
            json!("BackOff"),
            json!("pod/web"),
            json!("spec.containers{app}"),
            json!("kubelet, n1"),
            json!("Back-off restarting failed container")
        ]
    );
    assert_eq!(cells[9], json!("web.17a"));
}

#[test]
fn event_source_falls_back_to_the_reporting_controller() {
    let e = json!({"involvedObject": {"kind": "Node"}, "reportingComponent": "node-controller", "reportingInstance": ""});
    assert_eq!(cell("", "events", &e, "Source"), json!("node-controller"));
    assert_eq!(cell("", "events", &e, "Object"), json!("node"));
    let e = json!({"reportingComponent": "c", "reportingInstance": "i"});
    assert_eq!(cell("", "events", &e, "Source"), json!("c, i"));
}

#[test]
fn events_k8s_io_events_print_like_core_events() {
    let e = json!({
        "apiVersion": "events.k8s.io/v1",
        "metadata": {"name": "web.17b"},
        "eventTime": "2024-05-01T11:55:00.000000Z",
        "regarding": {"kind": "Deployment", "name": "web"},
        "reason": "ScalingReplicaSet", "type": "Normal", "note": "Scaled up replica set web-5d to 3",
        "reportingController": "deployment-controller", "reportingInstance": "",
        "deprecatedSource": {"component": "deployment-controller"},
        "deprecatedCount": 2, "deprecatedFirstTimestamp": ago(600), "deprecatedLastTimestamp": ago(120),
    });
    assert_eq!(
        render("events.k8s.io", "events", &e),
        vec![
            json!("2m"),
            json!("Normal"),
            json!("ScalingReplicaSet"),
            json!("deployment/web"),
            json!(""),
            json!("deployment-controller"),
            json!("Scaled up replica set web-5d to 3"),
            json!("10m"),
            json!(2),
            json!("web.17b")
        ]
    );
    let new_style = json!({"eventTime": "2024-05-01T11:59:30.000000Z", "regarding": {"kind": "Pod", "name": "p"}, "reportingController": "kubelet", "reportingInstance": "n1"});
    let cells = render("events.k8s.io", "events", &new_style);
    assert_eq!(cells[0], json!("30s"));
    assert_eq!(cells[5], json!("kubelet, n1"));
    assert_eq!(cells[8], json!(1));
}

// ---- workloads -------------------------------------------------------------------------------

#[test]
fn workload_rows_show_replica_counts_containers_and_selectors() {
    let template = json!({"spec": {"containers": [{"name": "app", "image": "nginx:1.27"}, {"name": "log", "image": "busybox"}], "nodeSelector": {"kubernetes.io/os": "linux"}}});
    let selector = json!({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front", "edge"]}, {"key": "canary", "operator": "DoesNotExist"}]});
    let meta = json!({"name": "web", "creationTimestamp": ago(600)});
    let deploy = json!({"metadata": meta, "spec": {"replicas": 3, "selector": selector, "template": template}, "status": {"readyReplicas": 1, "updatedReplicas": 2, "availableReplicas": 1}});
    assert_eq!(
        render("apps", "deployments", &deploy),
        vec![
            json!("web"),
            json!("1/3"),
            json!(2),
            json!(1),
            json!("10m"),
            json!("app,log"),
            json!("nginx:1.27,busybox"),
            json!("app=web,!canary,tier in (edge,front)")
        ]
    );
    let rs = json!({"metadata": meta, "spec": {"replicas": 3, "selector": selector, "template": template}, "status": {"replicas": 3, "readyReplicas": 2}});
    assert_eq!(
        render("apps", "replicasets", &rs),
        vec![
            json!("web"),
            json!(3),
            json!(3),
            json!(2),
            json!("10m"),
            json!("app,log"),
            json!("nginx:1.27,busybox"),
            json!("app=web,!canary,tier in (edge,front)")
        ]
    );
    let ds = json!({"metadata": meta, "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": template}, "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2, "updatedNumberScheduled": 3, "numberAvailable": 2}});
    assert_eq!(
        render("apps", "daemonsets", &ds),
        vec![
            json!("web"),
            json!(3),
            json!(3),
            json!(2),
            json!(3),
            json!(2),
            json!("kubernetes.io/os=linux"),
            json!("10m"),
            json!("app,log"),
            json!("nginx:1.27,busybox"),
            json!("app=agent")
        ]
    );
    let sts = json!({"metadata": meta, "spec": {"replicas": 2, "template": template}, "status": {"readyReplicas": 2}});
    assert_eq!(
        render("apps", "statefulsets", &sts),
        vec![
            json!("web"),
            json!("2/2"),
            json!("10m"),
            json!("app,log"),
            json!("nginx:1.27,busybox")
        ]
    );
    let rc = json!({"metadata": meta, "spec": {"replicas": 2, "selector": {"app": "web"}, "template": template}, "status": {"replicas": 2, "readyReplicas": 1}});
    assert_eq!(
        render("", "replicationcontrollers", &rc),
        vec![
            json!("web"),
            json!(2),
            json!(2),
            json!(1),
            json!("10m"),
            json!("app,log"),
            json!("nginx:1.27,busybox"),
            json!("app=web")
        ]
    );
}

#[test]
fn selectors_print_as_upstream_formats_them() {
    let cases = [
        (json!(null), "", "<none>"),
        (json!({}), "", "<none>"),
        (
            json!({"matchLabels": {"b": "2", "a": "1"}}),
            "a=1,b=2",
            "a=1,b=2",
        ),
        (
            json!({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}, {"key": "app", "operator": "Exists"}]}),
            "app,env notin (prod)",
            "app,env notin (prod)",
        ),
        (
            json!({"matchExpressions": [{"key": "env", "operator": "Bogus", "values": ["x"]}]}),
            "<invalid>",
            "<error>",
        ),
        (
            json!({"matchExpressions": [{"key": "env", "operator": "In", "values": []}]}),
            "<invalid>",
            "<error>",
        ),
        (
            json!({"matchLabels": {"bad key!": "x"}}),
            "<invalid>",
            "<error>",
        ),
    ];
    for (selector, deployment, replica_set) in cases {
        let obj = json!({"spec": {"selector": selector}});
        assert_eq!(
            cell("apps", "deployments", &obj, "Selector"),
            json!(deployment),
            "deployment {selector}"
        );
        assert_eq!(
            cell("apps", "replicasets", &obj, "Selector"),
            json!(replica_set),
            "replicaset {selector}"
        );
    }
    let obj = json!({"spec": {}});
    assert_eq!(
        cell("networking.k8s.io", "networkpolicies", &obj, "Pod-Selector"),
        json!("<none>")
    );
    let obj = json!({"spec": {"podSelector": {"matchLabels": {"role": "db"}}}});
    assert_eq!(
        cell("networking.k8s.io", "networkpolicies", &obj, "Pod-Selector"),
        json!("role=db")
    );
}

#[test]
fn controller_revisions_name_their_controlling_owner() {
    let cases = [
        (json!([]), "<none>"),
        (
            json!([{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db", "controller": true}]),
            "statefulset.apps/db",
        ),
        (
            json!([{"apiVersion": "v1", "kind": "Pod", "name": "p", "controller": true}]),
            "pod/p",
        ),
        (
            json!([{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "x"}]),
            "<none>",
        ),
    ];
    for (owners, want) in cases {
        let obj = json!({"metadata": {"ownerReferences": owners}, "revision": 3});
        let cells = render("apps", "controllerrevisions", &obj);
        assert_eq!(cells[1], json!(want), "{owners}");
        assert_eq!(cells[2], json!(3));
    }
}

#[test]
fn job_status_completions_and_duration() {
    let cond = |t: &str, s: &str| json!({"type": t, "status": s});
    let cases: Vec<(&str, Value, &str, &str, &str)> = vec![
        (
            "running",
            json!({"spec": {"completions": 1}, "status": {"startTime": ago(75)}}),
            "Running",
            "0/1",
            "75s",
        ),
        (
            "complete",
            json!({"spec": {"completions": 3}, "status": {"succeeded": 3, "startTime": ago(3600), "completionTime": ago(3000), "conditions": [cond("SuccessCriteriaMet", "True"), cond("Complete", "True")]}}),
            "Complete",
            "3/3",
            "10m",
        ),
        (
            "failed",
            json!({"spec": {"completions": 1}, "status": {"failed": 1, "conditions": [cond("FailureTarget", "True"), cond("Failed", "True")]}}),
            "Failed",
            "0/1",
            "",
        ),
        (
            "failing",
            json!({"spec": {"completions": 1}, "status": {"conditions": [cond("FailureTarget", "True")]}}),
            "FailureTarget",
            "0/1",
            "",
        ),
        (
            "suspended",
            json!({"spec": {"completions": 1}, "status": {"conditions": [cond("Suspended", "True")]}}),
            "Suspended",
            "0/1",
            "",
        ),
        (
            "resumed",
            json!({"spec": {"completions": 1}, "status": {"conditions": [cond("Suspended", "False")]}}),
            "Running",
            "0/1",
            "",
        ),
        (
            "terminating",
            json!({"metadata": {"deletionTimestamp": ago(1)}, "spec": {"completions": 1}}),
            "Terminating",
            "0/1",
            "",
        ),
        (
            "work queue",
            json!({"spec": {"parallelism": 4}, "status": {"succeeded": 2}}),
            "Running",
            "2/1 of 4",
            "",
        ),
        (
            "single without completions",
            json!({"spec": {"parallelism": 1}}),
            "Running",
            "0/1",
            "",
        ),
    ];
    for (what, job, status, completions, duration) in cases {
        let cells = render("batch", "jobs", &job);
        assert_eq!(cells[1], json!(status), "STATUS of {what}");
        assert_eq!(cells[2], json!(completions), "COMPLETIONS of {what}");
        assert_eq!(cells[3], json!(duration), "DURATION of {what}");
    }
}

#[test]
fn cron_job_row_shows_schedule_timezone_suspend_and_last_schedule() {
    let cj = json!({
        "metadata": {"name": "backup", "creationTimestamp": ago(86400 * 10)},
        "spec": {"schedule": "*/5 * * * *", "timeZone": "Europe/Paris", "suspend": false, "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "backup:1"}]}}}}},
        "status": {"active": [{"name": "backup-1"}], "lastScheduleTime": ago(125)},
    });
    assert_eq!(
        render("batch", "cronjobs", &cj),
        vec![
            json!("backup"),
            json!("*/5 * * * *"),
            json!("Europe/Paris"),
            json!("False"),
            json!(1),
            json!("2m5s"),
            json!("10d"),
            json!("b"),
            json!("backup:1"),
            json!("<none>")
        ]
    );
    let bare = render(
        "batch",
        "cronjobs",
        &json!({"spec": {"schedule": "@daily"}}),
    );
    assert_eq!(
        &bare[2..6],
        &[json!("<none>"), json!("<unset>"), json!(0), json!("<none>")]
    );
}

// ---- autoscaling and policy ------------------------------------------------------------------

#[test]
fn hpa_targets_show_current_over_target_per_metric() {
    let cpu = |u: Value| json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": u}}});
    let cases: Vec<(&str, Value, Value, &str)> = vec![
        ("no metrics", json!([]), json!([]), "<none>"),
        (
            "cpu utilization measured",
            json!([cpu(json!(80))]),
            json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 40, "averageValue": "200m"}}}]),
            "cpu: 40%/80%",
        ),
        (
            "cpu utilization not yet measured",
            json!([cpu(json!(80))]),
            json!([]),
            "cpu: <unknown>/80%",
        ),
        (
            "utilization without a target",
            json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization"}}}]),
            json!([]),
            "cpu: <unknown>/<auto>",
        ),
        (
            "memory average value",
            json!([{"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "1024Mi"}}}]),
            json!([{"type": "Resource", "resource": {"name": "memory", "current": {"averageValue": "524288Ki"}}}]),
            "memory: 512Mi/1Gi",
        ),
        (
            "pods metric",
            json!([{"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "1k"}}}]),
            json!([{"type": "Pods", "pods": {"current": {"averageValue": "1500m"}}}]),
            "1500m/1k",
        ),
        (
            "object metric by value",
            json!([{"type": "Object", "object": {"target": {"type": "Value", "value": "10"}}}]),
            json!([]),
            "<unknown>/10",
        ),
        (
            "external metric averaged",
            json!([{"type": "External", "external": {"target": {"type": "AverageValue", "averageValue": "30"}}}]),
            json!([{"type": "External", "external": {"current": {"averageValue": "12"}}}]),
            "12/30 (avg)",
        ),
        (
            "container resource",
            json!([{"type": "ContainerResource", "containerResource": {"name": "cpu", "container": "app", "target": {"type": "Utilization", "averageUtilization": 60}}}]),
            json!([{"type": "ContainerResource", "containerResource": {"current": {"averageUtilization": 75}}}]),
            "cpu: 75%/60%",
        ),
        (
            "an unknown type",
            json!([{"type": "Magic"}]),
            json!([]),
            "<unknown type>",
        ),
        (
            "three metrics",
            json!([cpu(json!(80)), cpu(json!(70)), cpu(json!(60))]),
            json!([]),
            "cpu: <unknown>/80%, cpu: <unknown>/70% + 1 more...",
        ),
    ];
    for (what, metrics, current, want) in cases {
        let hpa = json!({"apiVersion": "autoscaling/v2", "spec": {"metrics": metrics}, "status": {"currentMetrics": current}});
        assert_eq!(
            cell("autoscaling", "horizontalpodautoscalers", &hpa, "Targets"),
            json!(want),
            "{what}"
        );
    }
}

#[test]
fn hpa_row_reads_v2_and_v1_objects() {
    let v2 = json!({
        "apiVersion": "autoscaling/v2",
        "metadata": {"name": "web", "creationTimestamp": ago(30)},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 1, "maxReplicas": 10, "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]},
        "status": {"currentReplicas": 3},
    });
    assert_eq!(
        render("autoscaling", "horizontalpodautoscalers", &v2),
        vec![
            json!("web"),
            json!("Deployment/web"),
            json!("cpu: <unknown>/50%"),
            json!("1"),
            json!(10),
            json!(3),
            json!("30s")
        ]
    );
    let v1 = json!({
        "apiVersion": "autoscaling/v1",
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 5, "targetCPUUtilizationPercentage": 80},
        "status": {"currentReplicas": 2, "currentCPUUtilizationPercentage": 35},
    });
    let cells = render("autoscaling", "horizontalpodautoscalers", &v1);
    assert_eq!(
        &cells[2..6],
        &[json!("cpu: 35%/80%"), json!("<unset>"), json!(5), json!(2)]
    );
}

#[test]
fn pdb_shows_bounds_or_not_applicable() {
    let pdb = json!({"spec": {"minAvailable": "50%"}, "status": {"disruptionsAllowed": 1}});
    assert_eq!(
        &render("policy", "poddisruptionbudgets", &pdb)[1..4],
        &[json!("50%"), json!("N/A"), json!(1)]
    );
    let pdb = json!({"spec": {"maxUnavailable": 1}});
    assert_eq!(
        &render("policy", "poddisruptionbudgets", &pdb)[1..4],
        &[json!("N/A"), json!("1"), json!(0)]
    );
}

// ---- configuration and storage ---------------------------------------------------------------

#[test]
fn config_and_identity_kinds_count_their_entries() {
    let cm = json!({"metadata": {"name": "cfg"}, "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}});
    assert_eq!(render("", "configmaps", &cm)[1], json!(3));
    let secret = json!({"metadata": {"name": "tls"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}});
    assert_eq!(
        &render("", "secrets", &secret)[1..3],
        &[json!("kubernetes.io/tls"), json!(2)]
    );
    let sa = json!({"metadata": {"name": "default"}});
    assert_eq!(render("", "serviceaccounts", &sa)[1], json!(0));
    let ns = json!({"metadata": {"name": "kube-system"}, "status": {"phase": "Active"}});
    assert_eq!(render("", "namespaces", &ns)[1], json!("Active"));
    let lease = json!({"metadata": {"name": "n1"}, "spec": {"holderIdentity": "n1"}});
    assert_eq!(
        render("coordination.k8s.io", "leases", &lease)[1],
        json!("n1")
    );
    assert_eq!(
        render("coordination.k8s.io", "leases", &json!({}))[1],
        json!("")
    );
}

#[test]
fn persistent_volumes_and_claims_show_capacity_modes_and_classes() {
    let pv = json!({
        "metadata": {"name": "pv1", "creationTimestamp": ago(60)},
        "spec": {"capacity": {"storage": "1024Mi"}, "accessModes": ["ReadWriteOncePod", "ReadWriteOnce", "ReadOnlyMany", "ReadWriteOnce"], "persistentVolumeReclaimPolicy": "Retain", "claimRef": {"namespace": "default", "name": "data"}, "storageClassName": "fast", "volumeMode": "Filesystem"},
        "status": {"phase": "Bound"},
    });
    assert_eq!(
        render("", "persistentvolumes", &pv),
        vec![
            json!("pv1"),
            json!("1Gi"),
            json!("RWO,ROX,RWOP"),
            json!("Retain"),
            json!("Bound"),
            json!("default/data"),
            json!("fast"),
            json!("<unset>"),
            json!(""),
            json!("60s"),
            json!("Filesystem")
        ]
    );
    let pv = json!({"metadata": {"deletionTimestamp": ago(1), "annotations": {"volume.beta.kubernetes.io/storage-class": "legacy"}}, "spec": {"storageClassName": "fast", "volumeAttributesClassName": "gold"}, "status": {"phase": "Released", "reason": "Oops"}});
    let cells = render("", "persistentvolumes", &pv);
    assert_eq!(
        &cells[1..9],
        &[
            json!("0"),
            json!(""),
            json!(""),
            json!("Terminating"),
            json!(""),
            json!("legacy"),
            json!("gold"),
            json!("Oops")
        ]
    );

    let bound = json!({"spec": {"volumeName": "pv1", "storageClassName": "fast", "resources": {"requests": {"storage": "1Gi"}}}, "status": {"phase": "Bound", "capacity": {"storage": "2Gi"}, "accessModes": ["ReadWriteMany"]}});
    assert_eq!(
        &render("", "persistentvolumeclaims", &bound)[1..7],
        &[
            json!("Bound"),
            json!("pv1"),
            json!("2Gi"),
            json!("RWX"),
            json!("fast"),
            json!("<unset>")
        ]
    );
    let pending = json!({"spec": {"resources": {"requests": {"storage": "1Gi"}}}, "status": {"phase": "Pending", "capacity": {"storage": "2Gi"}}});
    let cells = render("", "persistentvolumeclaims", &pending);
    assert_eq!(
        &cells[1..7],
        &[
            json!("Pending"),
            json!(""),
            json!(""),
            json!(""),
            json!(""),
            json!("<unset>")
        ]
    );
    assert_eq!(cells[8], json!("<unset>"));
}

#[test]
fn resource_quota_splits_requests_from_limits() {
    let rq = json!({
        "metadata": {"name": "q"},
        "status": {
            "hard": {"requests.cpu": "2", "limits.memory": "2Gi", "pods": "10", "limits.cpu": "4", "count/deployments.apps": "5"},
            "used": {"requests.cpu": "500m", "limits.memory": "1024Mi", "pods": "3"},
        },
    });
    assert_eq!(
        &render("", "resourcequotas", &rq)[1..3],
        &[
            json!("count/deployments.apps: 0/5, pods: 3/10, requests.cpu: 500m/2"),
            json!("limits.cpu: 0/4, limits.memory: 1Gi/2Gi")
        ]
    );
}

#[test]
fn storage_classes_mark_the_default_and_fill_defaults() {
    let sc = json!({"metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}, "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer", "allowVolumeExpansion": true});
    assert_eq!(
        &render("storage.k8s.io", "storageclasses", &sc)[..5],
        &[
            json!("standard (default)"),
            json!("rancher.io/local-path"),
            json!("Delete"),
            json!("WaitForFirstConsumer"),
            json!(true)
        ]
    );
    let sc = json!({"metadata": {"name": "old", "annotations": {"storageclass.beta.kubernetes.io/is-default-class": "true"}}, "reclaimPolicy": "Retain"});
    assert_eq!(
        &render("storage.k8s.io", "storageclasses", &sc)[..5],
        &[
            json!("old (default)"),
            json!(""),
            json!("Retain"),
            json!("Immediate"),
            json!(false)
        ]
    );
    let sc = json!({"metadata": {"name": "x", "annotations": {"storageclass.kubernetes.io/is-default-class": "false"}}});
    assert_eq!(
        render("storage.k8s.io", "storageclasses", &sc)[0],
        json!("x")
    );
}

#[test]
fn priority_classes_show_value_default_and_preemption() {
    let pc = json!({"metadata": {"name": "system-node-critical"}, "value": 2000001000, "globalDefault": false, "preemptionPolicy": "PreemptLowerPriority"});
    let cells = render("scheduling.k8s.io", "priorityclasses", &pc);
    assert_eq!(cells[1], json!(2000001000));
    assert_eq!(cells[2], json!(false));
    assert_eq!(cells[4], json!("PreemptLowerPriority"));
}

#[test]
fn csi_drivers_default_attach_required_and_list_modes() {
    let d = json!({"metadata": {"name": "csi.example.com"}, "spec": {"podInfoOnMount": true, "tokenRequests": [{"audience": "a"}, {"audience": "b"}], "volumeLifecycleModes": ["Persistent", "Ephemeral"]}});
    assert_eq!(
        &render("storage.k8s.io", "csidrivers", &d)[1..7],
        &[
            json!(true),
            json!(true),
            json!(false),
            json!("a,b"),
            json!(false),
            json!("Persistent,Ephemeral")
        ]
    );
    let d = json!({"spec": {"attachRequired": false}});
    assert_eq!(
        &render("storage.k8s.io", "csidrivers", &d)[1..7],
        &[
            json!(false),
            json!(false),
            json!(false),
            json!("<unset>"),
            json!(false),
            json!("<none>")
        ]
    );
}

// ---- networking, rbac, certificates ----------------------------------------------------------

#[test]
fn ingress_hosts_addresses_and_ports() {
    let rule = |h: &str| json!({"host": h});
    let cases = vec![
        (json!({}), "<none>", "*", "", "80"),
        (
            json!({"ingressClassName": "nginx", "rules": [rule("a.example.com"), rule("")], "tls": [{"hosts": ["a.example.com"]}]}),
            "nginx",
            "a.example.com",
            "",
            "80, 443",
        ),
        (
            json!({"rules": [rule("a"), rule("b"), rule("c"), rule("d"), rule("e")]}),
            "<none>",
            "a,b,c + 2 more...",
            "",
            "80",
        ),
    ];
    for (spec, class, hosts, address, ports) in cases {
        let ing = json!({"spec": spec, "status": {"loadBalancer": {"ingress": []}}});
        assert_eq!(
            &render("networking.k8s.io", "ingresses", &ing)[1..5],
            &[json!(class), json!(hosts), json!(address), json!(ports)],
            "{spec}"
        );
    }
    let ing = json!({"status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.200"}, {"hostname": "a-very-long-load-balancer.example.com"}]}}});
    assert_eq!(
        cell("networking.k8s.io", "ingresses", &ing, "Address"),
        json!("10.0.0.200,a-very-long-load-balancer.example.com")
    );
}

#[test]
fn role_bindings_show_the_role_and_subjects() {
    let rb = json!({
        "metadata": {"name": "admins"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
        "subjects": [{"kind": "User", "name": "alice"}, {"kind": "Group", "name": "ops"}, {"kind": "ServiceAccount", "namespace": "ci", "name": "deployer"}, {"kind": "User", "name": "bob"}],
    });
    for resource in ["rolebindings", "clusterrolebindings"] {
        let cells = render("rbac.authorization.k8s.io", resource, &rb);
        assert_eq!(cells[1], json!("ClusterRole/admin"));
        assert_eq!(
            &cells[3..],
            &[json!("alice, bob"), json!("ops"), json!("ci/deployer")]
        );
    }
}

#[test]
fn kinds_without_a_printer_show_created_at_as_rfc3339() {
    let role = json!({"metadata": {"name": "reader", "creationTimestamp": "2024-04-30T08:15:00Z"}});
    for (group, resource) in [
        ("rbac.authorization.k8s.io", "roles"),
        ("rbac.authorization.k8s.io", "clusterroles"),
        ("", "limitranges"),
        ("apiextensions.k8s.io", "customresourcedefinitions"),
    ] {
        assert_eq!(
            render(group, resource, &role),
            vec![json!("reader"), json!("2024-04-30T08:15:00Z")],
            "{group}/{resource}"
        );
    }
    assert_eq!(
        render("", "limitranges", &json!({}))[1],
        json!("0001-01-01T00:00:00Z")
    );
    assert_eq!(
        render("example.com", "widgets", &role),
        vec![json!("reader"), json!("27h")]
    );
}

#[test]
fn certificate_signing_requests_summarize_their_conditions() {
    let csr = |conditions: Value, certificate: &str| json!({"metadata": {"name": "csr-1"}, "spec": {"signerName": "kubernetes.io/kube-apiserver-client-kubelet", "username": "system:node:n1", "expirationSeconds": 86400}, "status": {"conditions": conditions, "certificate": certificate}});
    let cases = vec![
        (json!([]), "", "Pending"),
        (
            json!([{"type": "Approved", "status": "True"}]),
            "LS0t",
            "Approved,Issued",
        ),
        (
            json!([{"type": "Approved"}, {"type": "Denied"}]),
            "",
            "Denied",
        ),
        (
            json!([{"type": "Approved"}, {"type": "Failed"}]),
            "",
            "Approved,Failed",
        ),
    ];
    for (conditions, certificate, want) in cases {
        let cells = render(
            "certificates.k8s.io",
            "certificatesigningrequests",
            &csr(conditions.clone(), certificate),
        );
        assert_eq!(cells[5], json!(want), "{conditions}");
        assert_eq!(
            &cells[2..5],
            &[
                json!("kubernetes.io/kube-apiserver-client-kubelet"),
                json!("system:node:n1"),
                json!("24h")
            ]
        );
    }
    let bare = render(
        "certificates.k8s.io",
        "certificatesigningrequests",
        &json!({}),
    );
    assert_eq!(
        &bare[2..6],
        &[
            json!("<none>"),
            json!(""),
            json!("<none>"),
            json!("Pending")
        ]
    );
}

// ---- rendering -------------------------------------------------------------------------------

#[test]
fn cells_render_with_upstream_json_types() {
    let t: Timestamp = "2024-05-01T11:55:00Z".parse().unwrap();
    let cases = vec![
        (Cell::Text("x".into()), json!("x")),
        (Cell::Int(3), json!(3)),
        (Cell::Bool(true), json!(true)),
        (Cell::Age(Some(t)), json!("5m")),
        (Cell::Age(None), json!("<unknown>")),
        (
            Cell::Age(Some("2024-05-01T12:00:03Z".parse().unwrap())),
            json!("<invalid>"),
        ),
        (
            Cell::Age(Some("2024-05-01T12:00:01Z".parse().unwrap())),
            json!("0s"),
        ),
        (
            Cell::Restarts {
                count: 0,
                last: None,
            },
            json!("0"),
        ),
        (
            Cell::Restarts {
                count: 4,
                last: Some(t),
            },
            json!("4 (5m ago)"),
        ),
        (
            Cell::Elapsed {
                start: t,
                end: None,
            },
            json!("5m"),
        ),
        (
            Cell::Elapsed {
                start: t,
                end: Some("2024-05-01T11:55:42Z".parse().unwrap()),
            },
            json!("42s"),
        ),
    ];
    for (c, want) in cases {
        assert_eq!(c.render(now()), want, "{c:?}");
    }
}

#[test]
fn ages_render_at_the_human_duration_boundaries() {
    let cases = [
        (119, "119s"),
        (120, "2m"),
        (599, "9m59s"),
        (600, "10m"),
        (3 * 3600 - 1, "179m"),
        (3 * 3600, "3h"),
        (8 * 3600, "8h"),
        (48 * 3600, "2d"),
        (8 * 86400, "8d"),
        (730 * 86400, "2y"),
    ];
    for (seconds, want) in cases {
        let ns = json!({"metadata": {"name": "n", "creationTimestamp": ago(seconds)}});
        assert_eq!(
            cell("", "namespaces", &ns, "Age"),
            json!(want),
            "{seconds}s"
        );
    }
}

#[test]
fn smaller_kinds_print_their_one_or_two_fields() {
    let cases: Vec<(&str, &str, Value, Vec<Value>)> = vec![
        (
            "",
            "podtemplates",
            json!({"metadata": {"name": "t"}, "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}),
            vec![json!("t"), json!("c"), json!("i"), json!("app=x")],
        ),
        (
            "",
            "componentstatuses",
            json!({"metadata": {"name": "etcd-0"}, "conditions": [{"type": "Healthy", "status": "True", "message": "ok"}]}),
            vec![json!("etcd-0"), json!("Healthy"), json!("ok"), json!("")],
        ),
        (
            "",
            "componentstatuses",
            json!({"metadata": {"name": "scheduler"}}),
            vec![json!("scheduler"), json!("Unknown"), json!(""), json!("")],
        ),
        (
            "networking.k8s.io",
            "ingressclasses",
            json!({"metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx", "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "p"}}}),
            vec![
                json!("nginx"),
                json!("k8s.io/ingress-nginx"),
                json!("IngressParameters.k8s.example.com/p"),
                json!("<unknown>"),
            ],
        ),
        (
            "networking.k8s.io",
            "ipaddresses",
            json!({"metadata": {"name": "10.96.0.1"}, "spec": {"parentRef": {"group": "", "resource": "services", "namespace": "default", "name": "kubernetes"}}}),
            vec![
                json!("10.96.0.1"),
                json!("services/default/kubernetes"),
                json!("<unknown>"),
            ],
        ),
        (
            "networking.k8s.io",
            "servicecidrs",
            json!({"metadata": {"name": "kubernetes"}, "spec": {"cidrs": ["10.96.0.0/12", "fd00::/108"]}}),
            vec![
                json!("kubernetes"),
                json!("10.96.0.0/12,fd00::/108"),
                json!("<unknown>"),
            ],
        ),
        (
            "storage.k8s.io",
            "volumeattachments",
            json!({"metadata": {"name": "va"}, "spec": {"attacher": "csi", "nodeName": "n1", "source": {"persistentVolumeName": "pv1"}}, "status": {"attached": true}}),
            vec![
                json!("va"),
                json!("csi"),
                json!("pv1"),
                json!("n1"),
                json!(true),
                json!("<unknown>"),
            ],
        ),
        (
            "storage.k8s.io",
            "csistoragecapacities",
            json!({"metadata": {"name": "c"}, "storageClassName": "fast", "capacity": "2048Mi"}),
            vec![json!("c"), json!("fast"), json!("2Gi")],
        ),
        (
            "storage.k8s.io",
            "csistoragecapacities",
            json!({"metadata": {"name": "c"}}),
            vec![json!("c"), json!(""), json!("<unset>")],
        ),
        (
            "node.k8s.io",
            "runtimeclasses",
            json!({"metadata": {"name": "gvisor"}, "handler": "runsc"}),
            vec![json!("gvisor"), json!("runsc"), json!("<unknown>")],
        ),
        (
            "admissionregistration.k8s.io",
            "validatingwebhookconfigurations",
            json!({"metadata": {"name": "w"}, "webhooks": [{}, {}]}),
            vec![json!("w"), json!(2), json!("<unknown>")],
        ),
        (
            "admissionregistration.k8s.io",
            "validatingadmissionpolicies",
            json!({"metadata": {"name": "p"}, "spec": {"validations": [{}], "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"}}}),
            vec![
                json!("p"),
                json!(1),
                json!("v1/ConfigMap"),
                json!("<unknown>"),
            ],
        ),
        (
            "admissionregistration.k8s.io",
            "validatingadmissionpolicybindings",
            json!({"metadata": {"name": "b"}, "spec": {"policyName": "p", "paramRef": {"name": "cfg"}}}),
            vec![json!("b"), json!("p"), json!("*/cfg"), json!("<unknown>")],
        ),
        (
            "admissionregistration.k8s.io",
            "validatingadmissionpolicybindings",
            json!({"metadata": {"name": "b"}, "spec": {"policyName": "p", "paramRef": {"selector": {"matchLabels": {"a": "b"}}}}}),
            vec![
                json!("b"),
                json!("p"),
                json!(
                    "&LabelSelector{MatchLabels:map[string]string{a: b,},MatchExpressions:[]LabelSelectorRequirement{},}"
                ),
                json!("<unknown>"),
            ],
        ),
        (
            "flowcontrol.apiserver.k8s.io",
            "flowschemas",
            json!({"metadata": {"name": "exempt"}, "spec": {"priorityLevelConfiguration": {"name": "exempt"}, "matchingPrecedence": 1}, "status": {"conditions": [{"type": "Dangling", "status": "False"}]}}),
            vec![
                json!("exempt"),
                json!("exempt"),
                json!(1),
                json!("<none>"),
                json!("<unknown>"),
                json!("False"),
            ],
        ),
        (
            "flowcontrol.apiserver.k8s.io",
            "prioritylevelconfigurations",
            json!({"metadata": {"name": "workload-low"}, "spec": {"type": "Limited", "limited": {"nominalConcurrencyShares": 100, "limitResponse": {"type": "Queue", "queuing": {"queues": 128, "handSize": 6, "queueLengthLimit": 50}}}}}),
            vec![
                json!("workload-low"),
                json!("Limited"),
                json!(100),
                json!(128),
                json!(6),
                json!(50),
                json!("<unknown>"),
            ],
        ),
        (
            "flowcontrol.apiserver.k8s.io",
            "prioritylevelconfigurations",
            json!({"metadata": {"name": "exempt"}, "spec": {"type": "Exempt"}}),
            vec![
                json!("exempt"),
                json!("Exempt"),
                json!("<none>"),
                json!("<none>"),
                json!("<none>"),
                json!("<none>"),
                json!("<unknown>"),
            ],
        ),
        (
            "resource.k8s.io",
            "resourceclaims",
            json!({"metadata": {"name": "gpu"}, "status": {"allocation": {}, "reservedFor": [{"name": "p"}]}}),
            vec![
                json!("gpu"),
                json!("allocated,reserved"),
                json!("<unknown>"),
            ],
        ),
        (
            "resource.k8s.io",
            "resourceclaims",
            json!({"metadata": {"name": "gpu", "deletionTimestamp": ago(1)}}),
            vec![json!("gpu"), json!("deleted"), json!("<unknown>")],
        ),
        (
            "resource.k8s.io",
            "resourceclaims",
            json!({"metadata": {"name": "gpu"}}),
            vec![json!("gpu"), json!("pending"), json!("<unknown>")],
        ),
        (
            "apiregistration.k8s.io",
            "apiservices",
            json!({"metadata": {"name": "v1.metrics.k8s.io"}, "spec": {"service": {"namespace": "kube-system", "name": "metrics-server"}}, "status": {"conditions": [{"type": "Available", "status": "False", "reason": "MissingEndpoints"}]}}),
            vec![
                json!("v1.metrics.k8s.io"),
                json!("kube-system/metrics-server"),
                json!("False (MissingEndpoints)"),
                json!("<unknown>"),
            ],
        ),
        (
            "apiregistration.k8s.io",
            "apiservices",
            json!({"metadata": {"name": "v1.apps"}}),
            vec![
                json!("v1.apps"),
                json!("Local"),
                json!("Unknown"),
                json!("<unknown>"),
            ],
        ),
        (
            "internal.apiserver.k8s.io",
            "storageversions",
            json!({"metadata": {"name": "apps.deployments"}, "status": {"storageVersions": [{"apiServerID": "a", "encodingVersion": "apps/v1"}]}}),
            vec![
                json!("apps.deployments"),
                json!("<unset>"),
                json!("a=apps/v1"),
                json!("<unknown>"),
            ],
        ),
    ];
    for (group, resource, obj, want) in cases {
        assert_eq!(
            render(group, resource, &obj),
            want,
            "{group}/{resource} {obj}"
        );
    }
}
