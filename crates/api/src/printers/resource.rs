//! resource.k8s.io (dynamic resource allocation): deviceclasses, resourceclaims,
//! resourceclaimtemplates, resourceslices.

use serde_json::Value;

use super::core::{age, cells, col, is_deleting, name, text};
use super::util::{arr_at, has, str_at};
use super::{AGE_COLUMN, Column, NAME_COLUMN, Row, default_row, docs};

static NAME_AGE_COLUMNS: &[Column] = &[NAME_COLUMN, AGE_COLUMN];

static RESOURCE_CLAIM_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col(
        "State",
        "string",
        "A summary of the current state (allocated, pending, reserved, etc.).",
    ),
    AGE_COLUMN,
];

static RESOURCE_SLICE_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Node", "string", docs::RESOURCE_SLICE_SPEC_NODE_NAME),
    col("Driver", "string", docs::RESOURCE_SLICE_SPEC_DRIVER),
    col("Pool", "string", docs::RESOURCE_POOL_NAME),
    AGE_COLUMN,
];

pub(super) fn columns(resource: &str) -> Option<&'static [Column]> {
    Some(match resource {
        "deviceclasses" | "resourceclaimtemplates" => NAME_AGE_COLUMNS,
        "resourceclaims" => RESOURCE_CLAIM_COLUMNS,
        "resourceslices" => RESOURCE_SLICE_COLUMNS,
        _ => return None,
    })
}

pub(super) fn row(resource: &str, obj: &Value) -> Option<Row> {
    Some(match resource {
        "deviceclasses" | "resourceclaimtemplates" => default_row(obj),
        "resourceclaims" => cells(vec![name(obj), text(claim_state(obj)), age(obj)]),
        "resourceslices" => cells(vec![
            name(obj),
            text(str_at(obj, "/spec/nodeName")),
            text(str_at(obj, "/spec/driver")),
            text(str_at(obj, "/spec/pool/name")),
            age(obj),
        ]),
        _ => return None,
    })
}

/// `resourceClaimState`: deleted, pending or allocated(,reserved).
fn claim_state(obj: &Value) -> String {
    let mut states = Vec::new();
    if is_deleting(obj) {
        states.push("deleted");
    }
    if !has(obj, "/status/allocation") {
        if !is_deleting(obj) {
            states.push("pending");
        }
    } else {
        states.push("allocated");
        if !arr_at(obj, "/status/reservedFor").is_empty() {
            states.push("reserved");
        }
    }
    states.join(",")
}
