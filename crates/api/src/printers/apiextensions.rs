//! apiextensions.k8s.io customresourcedefinitions (the generic NAME / CREATED AT) and
//! apiregistration.k8s.io apiservices (the aggregator's own table).

use serde_json::Value;

use super::core::{age, cells, name, text};
use super::util::{arr_at, get, str_at};
use super::{CREATED_AT_COLUMNS, Column, Row, created_at_row};

static API_SERVICE_COLUMNS: &[Column] = &[
    Column {
        name: "Name",
        type_: "string",
        format: "name",
        description: "",
        priority: 0,
    },
    Column {
        name: "Service",
        type_: "string",
        format: "",
        description: "",
        priority: 0,
    },
    Column {
        name: "Available",
        type_: "string",
        format: "",
        description: "",
        priority: 0,
    },
    Column {
        name: "Age",
        type_: "string",
        format: "",
        description: "",
        priority: 0,
    },
];

pub(super) fn columns(group: &str, resource: &str) -> Option<&'static [Column]> {
    match (group, resource) {
        ("apiextensions.k8s.io", "customresourcedefinitions") => Some(CREATED_AT_COLUMNS),
        ("apiregistration.k8s.io", "apiservices") => Some(API_SERVICE_COLUMNS),
        _ => None,
    }
}

pub(super) fn row(group: &str, resource: &str, obj: &Value) -> Option<Row> {
    match (group, resource) {
        ("apiextensions.k8s.io", "customresourcedefinitions") => Some(created_at_row(obj)),
        ("apiregistration.k8s.io", "apiservices") => Some(api_service_row(obj)),
        _ => None,
    }
}

fn api_service_row(obj: &Value) -> Row {
    let service = match get(obj, "/spec/service") {
        Some(s) => format!("{}/{}", str_at(s, "/namespace"), str_at(s, "/name")),
        None => "Local".to_string(),
    };
    let available = match arr_at(obj, "/status/conditions")
        .iter()
        .find(|c| str_at(c, "/type") == "Available")
    {
        None => "Unknown".to_string(),
        Some(c) => {
            let status = str_at(c, "/status");
            let reason = str_at(c, "/reason");
            if status != "True" && !reason.is_empty() {
                format!("{status} ({reason})")
            } else {
                status.to_string()
            }
        }
    };
    cells(vec![name(obj), text(service), text(available), age(obj)])
}
