//! apps: deployments, replicasets, daemonsets, statefulsets, controllerrevisions.

use serde_json::Value;

use super::core::{CONTAINERS_WIDE, IMAGES_WIDE, age, cells, col, name, text, wide};
use super::util::{
    arr_at, format_label_selector, format_labels, get, int_at, label_selector_string,
    layout_containers, str_at,
};
use super::{AGE_COLUMN, Cell, Column, NAME_COLUMN, Row, docs};

static DEPLOYMENT_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Ready", "string", "Number of the pod with ready state"),
    col(
        "Up-to-date",
        "string",
        docs::DEPLOYMENT_STATUS_UPDATED_REPLICAS,
    ),
    col(
        "Available",
        "string",
        docs::DEPLOYMENT_STATUS_AVAILABLE_REPLICAS,
    ),
    AGE_COLUMN,
    CONTAINERS_WIDE,
    IMAGES_WIDE,
    wide("Selector", "string", docs::DEPLOYMENT_SPEC_SELECTOR),
];

static REPLICA_SET_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Desired", "integer", docs::RS_SPEC_REPLICAS),
    col("Current", "integer", docs::RS_STATUS_REPLICAS),
    col("Ready", "integer", docs::RS_STATUS_READY_REPLICAS),
    AGE_COLUMN,
    CONTAINERS_WIDE,
    IMAGES_WIDE,
    wide("Selector", "string", docs::RS_SPEC_SELECTOR),
];

static DAEMON_SET_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col(
        "Desired",
        "integer",
        docs::DS_STATUS_DESIRED_NUMBER_SCHEDULED,
    ),
    col(
        "Current",
        "integer",
        docs::DS_STATUS_CURRENT_NUMBER_SCHEDULED,
    ),
    col("Ready", "integer", docs::DS_STATUS_NUMBER_READY),
    col(
        "Up-to-date",
        "integer",
        docs::DS_STATUS_UPDATED_NUMBER_SCHEDULED,
    ),
    col("Available", "integer", docs::DS_STATUS_NUMBER_AVAILABLE),
    col("Node Selector", "string", docs::POD_SPEC_NODE_SELECTOR),
    AGE_COLUMN,
    CONTAINERS_WIDE,
    IMAGES_WIDE,
    wide("Selector", "string", docs::DS_SPEC_SELECTOR),
];

static STATEFUL_SET_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Ready", "string", "Number of the pod with ready state"),
    AGE_COLUMN,
    CONTAINERS_WIDE,
    IMAGES_WIDE,
];

static CONTROLLER_REVISION_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Controller", "string", "Controller of the object"),
    col("Revision", "string", docs::CONTROLLER_REVISION_REVISION),
    AGE_COLUMN,
];

pub(super) fn columns(resource: &str) -> Option<&'static [Column]> {
    Some(match resource {
        "deployments" => DEPLOYMENT_COLUMNS,
        "replicasets" => REPLICA_SET_COLUMNS,
        "daemonsets" => DAEMON_SET_COLUMNS,
        "statefulsets" => STATEFUL_SET_COLUMNS,
        "controllerrevisions" => CONTROLLER_REVISION_COLUMNS,
        _ => return None,
    })
}

pub(super) fn row(resource: &str, obj: &Value) -> Option<Row> {
    Some(match resource {
        "deployments" => deployment_row(obj),
        "replicasets" => replica_set_row(obj),
        "daemonsets" => daemon_set_row(obj),
        "statefulsets" => stateful_set_row(obj),
        "controllerrevisions" => controller_revision_row(obj),
        _ => return None,
    })
}

fn template_containers(obj: &Value) -> (String, String) {
    layout_containers(arr_at(obj, "/spec/template/spec/containers"))
}

fn deployment_row(obj: &Value) -> Row {
    let (names, images) = template_containers(obj);
    // Unlike the other workloads, an empty selector prints as "" here, a bad one `<invalid>`.
    let selector = label_selector_string(get(obj, "/spec/selector"))
        .unwrap_or_else(|()| "<invalid>".to_string());
    cells(vec![
        name(obj),
        text(format!(
            "{}/{}",
            int_at(obj, "/status/readyReplicas"),
            int_at(obj, "/spec/replicas")
        )),
        Cell::Int(int_at(obj, "/status/updatedReplicas")),
        Cell::Int(int_at(obj, "/status/availableReplicas")),
        age(obj),
        text(names),
        text(images),
        text(selector),
    ])
}

fn replica_set_row(obj: &Value) -> Row {
    let (names, images) = template_containers(obj);
    cells(vec![
        name(obj),
        Cell::Int(int_at(obj, "/spec/replicas")),
        Cell::Int(int_at(obj, "/status/replicas")),
        Cell::Int(int_at(obj, "/status/readyReplicas")),
        age(obj),
        text(names),
        text(images),
        text(format_label_selector(get(obj, "/spec/selector"))),
    ])
}

fn daemon_set_row(obj: &Value) -> Row {
    let (names, images) = template_containers(obj);
    cells(vec![
        name(obj),
        Cell::Int(int_at(obj, "/status/desiredNumberScheduled")),
        Cell::Int(int_at(obj, "/status/currentNumberScheduled")),
        Cell::Int(int_at(obj, "/status/numberReady")),
        Cell::Int(int_at(obj, "/status/updatedNumberScheduled")),
        Cell::Int(int_at(obj, "/status/numberAvailable")),
        text(format_labels(
            obj.pointer("/spec/template/spec/nodeSelector"),
        )),
        age(obj),
        text(names),
        text(images),
        text(format_label_selector(get(obj, "/spec/selector"))),
    ])
}

fn stateful_set_row(obj: &Value) -> Row {
    let (names, images) = template_containers(obj);
    cells(vec![
        name(obj),
        text(format!(
            "{}/{}",
            int_at(obj, "/status/readyReplicas"),
            int_at(obj, "/spec/replicas")
        )),
        age(obj),
        text(names),
        text(images),
    ])
}

/// `kind.group/name` of the controlling owner (`formatResourceName`), `<none>` without one.
pub(super) fn controller_of(obj: &Value) -> String {
    let Some(owner) = arr_at(obj, "/metadata/ownerReferences")
        .iter()
        .find(|o| o.get("controller").and_then(Value::as_bool) == Some(true))
    else {
        return "<none>".to_string();
    };
    let api_version = str_at(owner, "/apiVersion");
    let group = match api_version.split_once('/') {
        Some((group, _)) => group,
        None => "",
    };
    let kind = str_at(owner, "/kind");
    let owner_name = str_at(owner, "/name");
    if group.is_empty() && kind.is_empty() {
        return owner_name.to_string();
    }
    let group_kind = if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    };
    format!("{}/{owner_name}", group_kind.to_lowercase())
}

fn controller_revision_row(obj: &Value) -> Row {
    cells(vec![
        name(obj),
        text(controller_of(obj)),
        Cell::Int(int_at(obj, "/revision")),
        age(obj),
    ])
}
