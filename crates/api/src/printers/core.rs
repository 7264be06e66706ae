//! The core ("") group: pods, nodes, services, events, volumes and the rest of `/api/v1`.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use serde_json::Value;

use super::util::{
    access_modes, annotation, arr_at, as_int, first_non_empty, format_labels, get, has, int_at,
    join_host_port, layout_containers, len_at, opt_str, quantity_at, quantity_or, str_at, time_at,
};
use super::{AGE_COLUMN, CREATED_AT_COLUMNS, NAME_COLUMN, docs};
use super::{Cell, Column, Row, RowCondition, created_at_row, creation_timestamp, name_of};

pub(super) const CONTAINERS_DESCRIPTION: &str = "Names of each container in the template.";
pub(super) const IMAGES_DESCRIPTION: &str = "Images referenced by each container in the template.";

pub(super) const fn col(
    name: &'static str,
    type_: &'static str,
    description: &'static str,
) -> Column {
    Column {
        name,
        type_,
        format: "",
        description,
        priority: 0,
    }
}

pub(super) const fn wide(
    name: &'static str,
    type_: &'static str,
    description: &'static str,
) -> Column {
    Column {
        name,
        type_,
        format: "",
        description,
        priority: 1,
    }
}

pub(super) const CONTAINERS_WIDE: Column = wide("Containers", "string", CONTAINERS_DESCRIPTION);
pub(super) const IMAGES_WIDE: Column = wide("Images", "string", IMAGES_DESCRIPTION);

static POD_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col(
        "Ready",
        "string",
        "The aggregate readiness state of this pod for accepting traffic.",
    ),
    col(
        "Status",
        "string",
        "The aggregate status of the containers in this pod.",
    ),
    col(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
    ),
    AGE_COLUMN,
    wide("IP", "string", docs::POD_STATUS_POD_IP),
    wide("Node", "string", docs::POD_SPEC_NODE_NAME),
    wide(
        "Nominated Node",
        "string",
        docs::POD_STATUS_NOMINATED_NODE_NAME,
    ),
    wide("Readiness Gates", "string", docs::POD_SPEC_READINESS_GATES),
];

static POD_TEMPLATE_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Containers", "string", CONTAINERS_DESCRIPTION),
    col("Images", "string", IMAGES_DESCRIPTION),
    col("Pod Labels", "string", "The labels for the pod template."),
];

static REPLICATION_CONTROLLER_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Desired", "integer", docs::RC_SPEC_REPLICAS),
    col("Current", "integer", docs::RC_STATUS_REPLICAS),
    col("Ready", "integer", docs::RC_STATUS_READY_REPLICAS),
    AGE_COLUMN,
    CONTAINERS_WIDE,
    IMAGES_WIDE,
    wide("Selector", "string", docs::RC_SPEC_SELECTOR),
];

static SERVICE_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Type", "string", docs::SERVICE_SPEC_TYPE),
    col("Cluster-IP", "string", docs::SERVICE_SPEC_CLUSTER_IP),
    col("External-IP", "string", docs::SERVICE_SPEC_EXTERNAL_IPS),
    col("Port(s)", "string", docs::SERVICE_SPEC_PORTS),
    AGE_COLUMN,
    wide("Selector", "string", docs::SERVICE_SPEC_SELECTOR),
];

static ENDPOINTS_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Endpoints", "string", docs::ENDPOINTS_SUBSETS),
    AGE_COLUMN,
];

static NODE_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Status", "string", "The status of the node"),
    col("Roles", "string", "The roles of the node"),
    AGE_COLUMN,
    col("Version", "string", docs::NODE_INFO_KUBELET_VERSION),
    wide("Internal-IP", "string", docs::NODE_STATUS_ADDRESSES),
    wide("External-IP", "string", docs::NODE_STATUS_ADDRESSES),
    wide("OS-Image", "string", docs::NODE_INFO_OS_IMAGE),
    wide("Kernel-Version", "string", docs::NODE_INFO_KERNEL_VERSION),
    wide(
        "Container-Runtime",
        "string",
        docs::NODE_INFO_CONTAINER_RUNTIME_VERSION,
    ),
];

/// Events of both groups print with the internal Event's columns.
pub(super) static EVENT_COLUMNS: &[Column] = &[
    col("Last Seen", "string", docs::EVENT_LAST_TIMESTAMP),
    col("Type", "string", docs::EVENT_TYPE),
    col("Reason", "string", docs::EVENT_REASON),
    col("Object", "string", docs::EVENT_INVOLVED_OBJECT),
    wide("Subobject", "string", docs::OBJECT_REFERENCE_FIELD_PATH),
    wide("Source", "string", docs::EVENT_SOURCE),
    col("Message", "string", docs::EVENT_MESSAGE),
    wide("First Seen", "string", docs::EVENT_FIRST_TIMESTAMP),
    wide("Count", "string", docs::EVENT_COUNT),
    Column {
        priority: 1,
        ..NAME_COLUMN
    },
];

static NAMESPACE_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Status", "string", "The status of the namespace"),
    AGE_COLUMN,
];

static SECRET_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Type", "string", docs::SECRET_TYPE),
    col("Data", "string", docs::SECRET_DATA),
    AGE_COLUMN,
];

static SERVICE_ACCOUNT_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Secrets", "string", docs::SERVICE_ACCOUNT_SECRETS),
    AGE_COLUMN,
];

static PERSISTENT_VOLUME_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Capacity", "string", docs::PV_SPEC_CAPACITY),
    col("Access Modes", "string", docs::PV_SPEC_ACCESS_MODES),
    col("Reclaim Policy", "string", docs::PV_SPEC_RECLAIM_POLICY),
    col("Status", "string", docs::PV_STATUS_PHASE),
    col("Claim", "string", docs::PV_SPEC_CLAIM_REF),
    col("StorageClass", "string", "StorageClass of the pv"),
    col(
        "VolumeAttributesClass",
        "string",
        "VolumeAttributesClass of the pv",
    ),
    col("Reason", "string", docs::PV_STATUS_REASON),
    AGE_COLUMN,
    wide("VolumeMode", "string", docs::PV_SPEC_VOLUME_MODE),
];

static PERSISTENT_VOLUME_CLAIM_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Status", "string", docs::PVC_STATUS_PHASE),
    col("Volume", "string", docs::PVC_SPEC_VOLUME_NAME),
    col("Capacity", "string", docs::PVC_STATUS_CAPACITY),
    col("Access Modes", "string", docs::PVC_STATUS_ACCESS_MODES),
    col("StorageClass", "string", "StorageClass of the pvc"),
    col(
        "VolumeAttributesClass",
        "string",
        "VolumeAttributesClass of the pvc",
    ),
    AGE_COLUMN,
    wide("VolumeMode", "string", docs::PVC_SPEC_VOLUME_MODE),
];

static COMPONENT_STATUS_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Status", "string", "Status of the component conditions"),
    col("Message", "string", "Message of the component conditions"),
    col("Error", "string", "Error of the component conditions"),
];

static CONFIG_MAP_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Data", "string", docs::CONFIG_MAP_DATA),
    AGE_COLUMN,
];

static RESOURCE_QUOTA_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col(
        "Request",
        "string",
        "Request represents a minimum amount of cpu/memory that a container may consume.",
    ),
    col(
        "Limit",
        "string",
        "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
    ),
    AGE_COLUMN,
];

pub(super) fn columns(resource: &str) -> Option<&'static [Column]> {
    Some(match resource {
        "pods" => POD_COLUMNS,
        "podtemplates" => POD_TEMPLATE_COLUMNS,
        "replicationcontrollers" => REPLICATION_CONTROLLER_COLUMNS,
        "services" => SERVICE_COLUMNS,
        "endpoints" => ENDPOINTS_COLUMNS,
        "nodes" => NODE_COLUMNS,
        "events" => EVENT_COLUMNS,
        "namespaces" => NAMESPACE_COLUMNS,
        "secrets" => SECRET_COLUMNS,
        "serviceaccounts" => SERVICE_ACCOUNT_COLUMNS,
        "persistentvolumes" => PERSISTENT_VOLUME_COLUMNS,
        "persistentvolumeclaims" => PERSISTENT_VOLUME_CLAIM_COLUMNS,
        "componentstatuses" => COMPONENT_STATUS_COLUMNS,
        "configmaps" => CONFIG_MAP_COLUMNS,
        "resourcequotas" => RESOURCE_QUOTA_COLUMNS,
        "limitranges" => CREATED_AT_COLUMNS,
        _ => return None,
    })
}

pub(super) fn row(resource: &str, obj: &Value) -> Option<Row> {
    Some(match resource {
        "pods" => pod_row(obj),
        "podtemplates" => pod_template_row(obj),
        "replicationcontrollers" => replication_controller_row(obj),
        "services" => service_row(obj),
        "endpoints" => endpoints_row(obj),
        "nodes" => node_row(obj),
        "events" => event_row(&EventFields::core(obj)),
        "namespaces" => cells(vec![
            name(obj),
            text(str_at(obj, "/status/phase")),
            age(obj),
        ]),
        "secrets" => cells(vec![
            name(obj),
            text(str_at(obj, "/type")),
            Cell::Int(len_at(obj, "/data")),
            age(obj),
        ]),
        "serviceaccounts" => cells(vec![
            name(obj),
            Cell::Int(len_at(obj, "/secrets")),
            age(obj),
        ]),
        "persistentvolumes" => persistent_volume_row(obj),
        "persistentvolumeclaims" => persistent_volume_claim_row(obj),
        "componentstatuses" => component_status_row(obj),
        "configmaps" => cells(vec![
            name(obj),
            Cell::Int(len_at(obj, "/data") + len_at(obj, "/binaryData")),
            age(obj),
        ]),
        "resourcequotas" => resource_quota_row(obj),
        "limitranges" => created_at_row(obj),
        _ => return None,
    })
}

pub(super) fn cells(cells: Vec<Cell>) -> Row {
    Row {
        cells,
        conditions: Vec::new(),
    }
}

pub(super) fn text(s: impl Into<String>) -> Cell {
    Cell::Text(s.into())
}

pub(super) fn name(obj: &Value) -> Cell {
    Cell::Text(name_of(obj))
}

pub(super) fn age(obj: &Value) -> Cell {
    Cell::Age(creation_timestamp(obj))
}

pub(super) fn is_deleting(obj: &Value) -> bool {
    has(obj, "/metadata/deletionTimestamp")
}

// ---- pods ------------------------------------------------------------------------------------

/// `podutil.IsRestartableInitContainer`: an init container with restartPolicy Always (sidecar).
fn is_restartable_init_container(c: Option<&Value>) -> bool {
    c.and_then(|c| c.get("restartPolicy"))
        .and_then(Value::as_str)
        == Some("Always")
}

fn later(current: Option<Timestamp>, t: Option<Timestamp>) -> Option<Timestamp> {
    match (current, t) {
        (Some(c), Some(t)) if c < t => Some(t),
        (None, Some(t)) => Some(t),
        (c, _) => c,
    }
}

fn condition_true(conditions: &[Value], type_: &str) -> bool {
    conditions.iter().any(|c| {
        c.get("type").and_then(Value::as_str) == Some(type_)
            && c.get("status").and_then(Value::as_str) == Some("True")
    })
}

/// The first condition of the type decides (`isPodInitializedConditionTrue`).
fn first_condition_true(conditions: &[Value], type_: &str) -> bool {
    conditions
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
        .is_some_and(|c| c.get("status").and_then(Value::as_str) == Some("True"))
}

fn terminated_reason(terminated: &Value, prefix: &str) -> String {
    let reason = str_at(terminated, "/reason");
    if !reason.is_empty() {
        return format!("{prefix}{reason}");
    }
    let signal = int_at(terminated, "/signal");
    if signal != 0 {
        format!("{prefix}Signal:{signal}")
    } else {
        format!("{prefix}ExitCode:{}", int_at(terminated, "/exitCode"))
    }
}

fn pod_row(pod: &Value) -> Row {
    let init_specs = arr_at(pod, "/spec/initContainers");
    let containers = arr_at(pod, "/spec/containers");
    let conditions = arr_at(pod, "/status/conditions");
    let phase = str_at(pod, "/status/phase");
    let status_reason = str_at(pod, "/status/reason");

    let mut restarts: i64 = 0;
    let mut restartable_init_restarts: i64 = 0;
    let mut total = containers.len();
    let mut ready = 0usize;
    let mut last_restart: Option<Timestamp> = None;
    let mut last_restartable_init_restart: Option<Timestamp> = None;

    let mut reason = if status_reason.is_empty() {
        phase
    } else {
        status_reason
    }
    .to_string();
    for c in conditions {
        if c.get("type").and_then(Value::as_str) == Some("PodScheduled")
            && c.get("reason").and_then(Value::as_str) == Some("SchedulingGated")
        {
            reason = "SchedulingGated".to_string();
        }
    }

    let mut row_conditions = Vec::new();
    match phase {
        "Succeeded" => row_conditions.push(completed_condition(
            "Succeeded",
            "The pod has completed successfully.",
        )),
        "Failed" => row_conditions.push(completed_condition("Failed", "The pod failed.")),
        _ => {}
    }

    let init_by_name: BTreeMap<&str, &Value> = init_specs
        .iter()
        .map(|c| (c.get("name").and_then(Value::as_str).unwrap_or(""), c))
        .collect();
    total += init_specs
        .iter()
        .filter(|c| is_restartable_init_container(Some(c)))
        .count();

    let mut initializing = false;
    for (i, status) in arr_at(pod, "/status/initContainerStatuses")
        .iter()
        .enumerate()
    {
        let count = int_at(status, "/restartCount");
        restarts += count;
        let finished = time_at(status, "/lastState/terminated/finishedAt");
        if has(status, "/lastState/terminated") {
            last_restart = later(last_restart, finished);
        }
        let restartable =
            is_restartable_init_container(init_by_name.get(str_at(status, "/name")).copied());
        if restartable {
            restartable_init_restarts += count;
            if has(status, "/lastState/terminated") {
                last_restartable_init_restart = later(last_restartable_init_restart, finished);
            }
        }
        let terminated = get(status, "/state/terminated");
        let waiting_reason = str_at(status, "/state/waiting/reason");
        if terminated.is_some_and(|t| int_at(t, "/exitCode") == 0) {
            continue;
        }
        if restartable && status.get("started").and_then(Value::as_bool) == Some(true) {
            if status.get("ready").and_then(Value::as_bool) == Some(true) {
                ready += 1;
            }
            continue;
        }
        if let Some(terminated) = terminated {
            reason = terminated_reason(terminated, "Init:");
        } else if has(status, "/state/waiting")
            && !waiting_reason.is_empty()
            && waiting_reason != "PodInitializing"
        {
            reason = format!("Init:{waiting_reason}");
        } else {
            reason = format!("Init:{i}/{}", init_specs.len());
        }
        initializing = true;
        break;
    }

    if !initializing || first_condition_true(conditions, "Initialized") {
        restarts = restartable_init_restarts;
        last_restart = last_restartable_init_restart;
        let mut has_running = false;
        for status in arr_at(pod, "/status/containerStatuses").iter().rev() {
            restarts += int_at(status, "/restartCount");
            if has(status, "/lastState/terminated") {
                last_restart = later(
                    last_restart,
                    time_at(status, "/lastState/terminated/finishedAt"),
                );
            }
            let waiting_reason = str_at(status, "/state/waiting/reason");
            let terminated = get(status, "/state/terminated");
            if has(status, "/state/waiting") && !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if let Some(terminated) = terminated {
                reason = terminated_reason(terminated, "");
            } else if status.get("ready").and_then(Value::as_bool) == Some(true)
                && has(status, "/state/running")
            {
                has_running = true;
                ready += 1;
            }
        }
        // A pod whose last reported container completed but another still runs is running.
        if reason == "Completed" && has_running {
            reason = if condition_true(conditions, "Ready") {
                "Running"
            } else {
                "NotReady"
            }
            .to_string();
        }
    }

    if is_deleting(pod) && status_reason == "NodeLost" {
        reason = "Unknown".to_string();
    } else if is_deleting(pod) && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".to_string();
    }

    let restarts_cell = Cell::Restarts {
        count: restarts,
        last: if restarts != 0 { last_restart } else { None },
    };

    let pod_ip = arr_at(pod, "/status/podIPs")
        .first()
        .and_then(|ip| ip.get("ip"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let readiness_gates = arr_at(pod, "/spec/readinessGates");
    let gates = if readiness_gates.is_empty() {
        "<none>".to_string()
    } else {
        let true_conditions = readiness_gates
            .iter()
            .filter(|gate| {
                let type_ = str_at(gate, "/conditionType");
                conditions
                    .iter()
                    .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
                    .is_some_and(|c| c.get("status").and_then(Value::as_str) == Some("True"))
            })
            .count();
        format!("{true_conditions}/{}", readiness_gates.len())
    };

    Row {
        cells: vec![
            name(pod),
            text(format!("{ready}/{total}")),
            text(reason),
            restarts_cell,
            age(pod),
            text(or_none(pod_ip)),
            text(or_none(str_at(pod, "/spec/nodeName"))),
            text(or_none(str_at(pod, "/status/nominatedNodeName"))),
            text(gates),
        ],
        conditions: row_conditions,
    }
}

fn completed_condition(reason: &str, message: &str) -> RowCondition {
    RowCondition {
        type_: "Completed".to_string(),
        status: "True".to_string(),
        reason: reason.to_string(),
        message: message.to_string(),
    }
}

pub(super) fn or_none(s: &str) -> String {
    if s.is_empty() {
        "<none>".to_string()
    } else {
        s.to_string()
    }
}

fn pod_template_row(obj: &Value) -> Row {
    let (names, images) = layout_containers(arr_at(obj, "/template/spec/containers"));
    cells(vec![
        name(obj),
        text(names),
        text(images),
        text(format_labels(obj.pointer("/template/metadata/labels"))),
    ])
}

fn replication_controller_row(obj: &Value) -> Row {
    let (names, images) = layout_containers(arr_at(obj, "/spec/template/spec/containers"));
    cells(vec![
        name(obj),
        Cell::Int(int_at(obj, "/spec/replicas")),
        Cell::Int(int_at(obj, "/status/replicas")),
        Cell::Int(int_at(obj, "/status/readyReplicas")),
        age(obj),
        text(names),
        text(images),
        text(format_labels(obj.pointer("/spec/selector"))),
    ])
}

// ---- services and endpoints ------------------------------------------------------------------

/// `loadBalancerStatusStringer` (wide, so never truncated): the IPs, else hostnames, sorted and
/// deduplicated.
pub(super) fn load_balancer_ingress(ingress: &[Value]) -> String {
    let set: BTreeSet<&str> = ingress
        .iter()
        .filter_map(|i| {
            let ip = str_at(i, "/ip");
            let host = str_at(i, "/hostname");
            if !ip.is_empty() {
                Some(ip)
            } else if !host.is_empty() {
                Some(host)
            } else {
                None
            }
        })
        .collect();
    set.into_iter().collect::<Vec<_>>().join(",")
}

fn service_external_ip(svc: &Value) -> String {
    let external_ips: Vec<&str> = arr_at(svc, "/spec/externalIPs")
        .iter()
        .map(|v| v.as_str().unwrap_or(""))
        .collect();
    match str_at(svc, "/spec/type") {
        "ClusterIP" | "NodePort" => {
            if external_ips.is_empty() {
                "<none>".to_string()
            } else {
                external_ips.join(",")
            }
        }
        "LoadBalancer" => {
            let lb = load_balancer_ingress(arr_at(svc, "/status/loadBalancer/ingress"));
            if !external_ips.is_empty() {
                let mut all: Vec<&str> = Vec::new();
                if !lb.is_empty() {
                    all.extend(lb.split(','));
                }
                all.extend(external_ips);
                return all.join(",");
            }
            if lb.is_empty() {
                "<pending>".to_string()
            } else {
                lb
            }
        }
        "ExternalName" => str_at(svc, "/spec/externalName").to_string(),
        _ => "<unknown>".to_string(),
    }
}

fn service_ports(svc: &Value) -> String {
    let ports: Vec<String> = arr_at(svc, "/spec/ports")
        .iter()
        .map(|p| {
            let port = int_at(p, "/port");
            let protocol = str_at(p, "/protocol");
            let node_port = int_at(p, "/nodePort");
            if node_port > 0 {
                format!("{port}:{node_port}/{protocol}")
            } else {
                format!("{port}/{protocol}")
            }
        })
        .collect();
    if ports.is_empty() {
        "<none>".to_string()
    } else {
        ports.join(",")
    }
}

fn service_row(svc: &Value) -> Row {
    // clusterIPs is defaulted from clusterIP; an object written before that still prints.
    let cluster_ip = arr_at(svc, "/spec/clusterIPs")
        .first()
        .and_then(Value::as_str)
        .or_else(|| opt_str(svc, "/spec/clusterIP").filter(|s| !s.is_empty()))
        .unwrap_or("<none>");
    cells(vec![
        name(svc),
        text(str_at(svc, "/spec/type")),
        text(cluster_ip),
        text(service_external_ip(svc)),
        text(service_ports(svc)),
        age(svc),
        text(format_labels(svc.pointer("/spec/selector"))),
    ])
}

/// `formatEndpoints`: up to three `ip:port`, then ` + N more...`.
fn format_endpoints(obj: &Value) -> String {
    let subsets = arr_at(obj, "/subsets");
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    const MAX: usize = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0usize;
    for ss in subsets {
        let addresses = arr_at(ss, "/addresses");
        let ports = arr_at(ss, "/ports");
        if ports.is_empty() {
            // Headless services may have no ports.
            count += addresses.len();
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(str_at(a, "/ip").to_string());
            }
            continue;
        }
        for port in ports {
            count += addresses.len();
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(join_host_port(str_at(a, "/ip"), int_at(port, "/port")));
            }
        }
    }
    let ret = list.join(",");
    if more {
        format!("{ret} + {} more...", count - MAX)
    } else {
        ret
    }
}

fn endpoints_row(obj: &Value) -> Row {
    cells(vec![name(obj), text(format_endpoints(obj)), age(obj)])
}

// ---- nodes -----------------------------------------------------------------------------------

fn node_roles(node: &Value) -> String {
    let mut roles = BTreeSet::new();
    if let Some(Value::Object(labels)) = node.pointer("/metadata/labels") {
        for (k, v) in labels {
            if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                if !role.is_empty() {
                    roles.insert(role.to_string());
                }
            } else if k == "kubernetes.io/role" {
                let v = v.as_str().unwrap_or("");
                if !v.is_empty() {
                    roles.insert(v.to_string());
                }
            }
        }
    }
    if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.into_iter().collect::<Vec<_>>().join(",")
    }
}

fn node_address(node: &Value, type_: &str) -> String {
    arr_at(node, "/status/addresses")
        .iter()
        .find(|a| str_at(a, "/type") == type_)
        .map(|a| str_at(a, "/address").to_string())
        .unwrap_or_else(|| "<none>".to_string())
}

fn node_row(node: &Value) -> Row {
    // Only the Ready condition counts; the last one of that type wins, as in a Go map.
    let ready = arr_at(node, "/status/conditions")
        .iter()
        .rfind(|c| str_at(c, "/type") == "Ready");
    let mut status = vec![match ready {
        Some(c) if str_at(c, "/status") == "True" => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if node.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        status.push("SchedulingDisabled");
    }
    let unknown_if_empty = |s: &str| {
        if s.is_empty() {
            "<unknown>".to_string()
        } else {
            s.to_string()
        }
    };
    cells(vec![
        name(node),
        text(status.join(",")),
        text(node_roles(node)),
        age(node),
        text(str_at(node, "/status/nodeInfo/kubeletVersion")),
        text(node_address(node, "InternalIP")),
        text(node_address(node, "ExternalIP")),
        text(unknown_if_empty(str_at(node, "/status/nodeInfo/osImage"))),
        text(unknown_if_empty(str_at(
            node,
            "/status/nodeInfo/kernelVersion",
        ))),
        text(unknown_if_empty(str_at(
            node,
            "/status/nodeInfo/containerRuntimeVersion",
        ))),
    ])
}

// ---- events ----------------------------------------------------------------------------------

/// The fields of the internal Event that the printer reads, from either API group's form.
pub(super) struct EventFields<'a> {
    pub obj: &'a Value,
    pub first_timestamp: Option<Timestamp>,
    pub last_timestamp: Option<Timestamp>,
    pub event_time: Option<Timestamp>,
    pub series: Option<&'a Value>,
    pub count: i64,
    pub kind: &'a str,
    pub involved_name: &'a str,
    pub field_path: &'a str,
    pub type_: &'a str,
    pub reason: &'a str,
    pub source_component: &'a str,
    pub source_host: &'a str,
    pub reporting_controller: &'a str,
    pub reporting_instance: &'a str,
    pub message: &'a str,
}

impl<'a> EventFields<'a> {
    pub(super) fn core(obj: &'a Value) -> Self {
        EventFields {
            obj,
            first_timestamp: time_at(obj, "/firstTimestamp"),
            last_timestamp: time_at(obj, "/lastTimestamp"),
            event_time: time_at(obj, "/eventTime"),
            series: get(obj, "/series"),
            count: int_at(obj, "/count"),
            kind: str_at(obj, "/involvedObject/kind"),
            involved_name: str_at(obj, "/involvedObject/name"),
            field_path: str_at(obj, "/involvedObject/fieldPath"),
            type_: str_at(obj, "/type"),
            reason: str_at(obj, "/reason"),
            source_component: str_at(obj, "/source/component"),
            source_host: str_at(obj, "/source/host"),
            reporting_controller: str_at(obj, "/reportingComponent"),
            reporting_instance: str_at(obj, "/reportingInstance"),
            message: str_at(obj, "/message"),
        }
    }
}

pub(super) fn event_row(e: &EventFields<'_>) -> Row {
    // FIRST SEEN falls back to eventTime, LAST SEEN to FIRST SEEN; a series decides both the
    // last time and the count.
    let first = e.first_timestamp.or(e.event_time);
    let mut last = e.last_timestamp.or(first);
    let mut count = e.count;
    if let Some(series) = e.series {
        last = time_at(series, "/lastObservedTime");
        count = series.get("count").and_then(as_int).unwrap_or(0);
    } else if count == 0 {
        // Singleton events don't have a count set in the new API.
        count = 1;
    }
    let target = if e.involved_name.is_empty() {
        e.kind.to_lowercase()
    } else {
        format!("{}/{}", e.kind.to_lowercase(), e.involved_name)
    };
    let component = first_non_empty(e.source_component, e.reporting_controller);
    let instance = first_non_empty(e.source_host, e.reporting_instance);
    let source = if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    };
    cells(vec![
        Cell::Age(last),
        text(e.type_),
        text(e.reason),
        text(target),
        text(e.field_path),
        text(source),
        text(e.message.trim()),
        Cell::Age(first),
        Cell::Int(count),
        name(e.obj),
    ])
}

// ---- volumes ---------------------------------------------------------------------------------

/// `helper.GetPersistentVolumeClass` / `GetPersistentVolumeClaimClass`: the beta annotation wins
/// over spec.storageClassName.
fn storage_class_of(obj: &Value) -> String {
    if let Some(class) = annotation(obj, "volume.beta.kubernetes.io/storage-class") {
        return class.to_string();
    }
    str_at(obj, "/spec/storageClassName").to_string()
}

fn unset_if_absent(obj: &Value, ptr: &str) -> String {
    opt_str(obj, ptr).unwrap_or("<unset>").to_string()
}

fn persistent_volume_row(pv: &Value) -> Row {
    let claim = if has(pv, "/spec/claimRef") {
        format!(
            "{}/{}",
            str_at(pv, "/spec/claimRef/namespace"),
            str_at(pv, "/spec/claimRef/name")
        )
    } else {
        String::new()
    };
    let phase = if is_deleting(pv) {
        "Terminating"
    } else {
        str_at(pv, "/status/phase")
    }
    .to_string();
    cells(vec![
        name(pv),
        text(quantity_at(pv, "/spec/capacity/storage")),
        text(access_modes(arr_at(pv, "/spec/accessModes"))),
        text(str_at(pv, "/spec/persistentVolumeReclaimPolicy")),
        text(phase),
        text(claim),
        text(storage_class_of(pv)),
        text(unset_if_absent(pv, "/spec/volumeAttributesClassName")),
        text(str_at(pv, "/status/reason")),
        age(pv),
        text(unset_if_absent(pv, "/spec/volumeMode")),
    ])
}

fn persistent_volume_claim_row(pvc: &Value) -> Row {
    let phase = if is_deleting(pvc) {
        "Terminating"
    } else {
        str_at(pvc, "/status/phase")
    }
    .to_string();
    let volume_name = str_at(pvc, "/spec/volumeName");
    // Capacity and access modes show only once the claim is bound to a volume.
    let (capacity, modes) = if volume_name.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity_at(pvc, "/status/capacity/storage"),
            access_modes(arr_at(pvc, "/status/accessModes")),
        )
    };
    cells(vec![
        name(pvc),
        text(phase),
        text(volume_name),
        text(capacity),
        text(modes),
        text(storage_class_of(pvc)),
        text(unset_if_absent(pvc, "/spec/volumeAttributesClassName")),
        age(pvc),
        text(unset_if_absent(pvc, "/spec/volumeMode")),
    ])
}

// ---- the rest --------------------------------------------------------------------------------

fn component_status_row(obj: &Value) -> Row {
    let mut status = "Unknown";
    let mut message = "";
    let mut error = "";
    if let Some(c) = arr_at(obj, "/conditions")
        .iter()
        .find(|c| str_at(c, "/type") == "Healthy")
    {
        status = if str_at(c, "/status") == "True" {
            "Healthy"
        } else {
            "Unhealthy"
        };
        message = str_at(c, "/message");
        error = str_at(c, "/error");
    }
    cells(vec![name(obj), text(status), text(message), text(error)])
}

fn resource_quota_row(obj: &Value) -> Row {
    let hard = match obj.pointer("/status/hard") {
        Some(Value::Object(m)) => m.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        _ => BTreeSet::new(),
    };
    let mut requests = Vec::new();
    let mut limits = Vec::new();
    for resource in hard {
        let used = quantity_at_key(obj, "used", resource);
        let limit = quantity_at_key(obj, "hard", resource);
        let entry = format!("{resource}: {used}/{limit}");
        let mut pieces = resource.split('.');
        if pieces.next() == Some("limits") && pieces.next().is_some() {
            limits.push(entry);
        } else {
            requests.push(entry);
        }
    }
    cells(vec![
        name(obj),
        text(requests.join(", ")),
        text(limits.join(", ")),
        age(obj),
    ])
}

/// A quantity in status.<field>[resource]; resource names contain '/', so no JSON pointer.
fn quantity_at_key(obj: &Value, field: &str, resource: &str) -> String {
    let q = obj
        .get("status")
        .and_then(|s| s.get(field))
        .and_then(|m| m.get(resource));
    quantity_or(q, "0")
}
