//! storage.k8s.io: storageclasses, volumeattachments, csinodes, csidrivers,
//! csistoragecapacities, volumeattributesclasses.

use serde_json::Value;

use super::core::{age, cells, col, name, text};
use super::util::{
    annotation, arr_at, bool_at, get, len_at, opt_bool, opt_str, quantity_or, str_at,
};
use super::{AGE_COLUMN, Cell, Column, NAME_COLUMN, Row, docs};

static STORAGE_CLASS_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Provisioner", "string", docs::STORAGE_CLASS_PROVISIONER),
    col(
        "ReclaimPolicy",
        "string",
        docs::STORAGE_CLASS_RECLAIM_POLICY,
    ),
    col(
        "VolumeBindingMode",
        "string",
        docs::STORAGE_CLASS_VOLUME_BINDING_MODE,
    ),
    col(
        "AllowVolumeExpansion",
        "string",
        docs::STORAGE_CLASS_ALLOW_VOLUME_EXPANSION,
    ),
    AGE_COLUMN,
];

static VOLUME_ATTRIBUTES_CLASS_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col(
        "DriverName",
        "string",
        docs::VOLUME_ATTRIBUTES_CLASS_DRIVER_NAME,
    ),
    AGE_COLUMN,
];

static VOLUME_ATTACHMENT_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    Column {
        format: "name",
        ..col("Attacher", "string", docs::VOLUME_ATTACHMENT_SPEC_ATTACHER)
    },
    col("PV", "string", docs::VOLUME_ATTACHMENT_SOURCE_PV_NAME),
    col("Node", "string", docs::VOLUME_ATTACHMENT_SPEC_NODE_NAME),
    col(
        "Attached",
        "boolean",
        docs::VOLUME_ATTACHMENT_STATUS_ATTACHED,
    ),
    AGE_COLUMN,
];

static CSI_NODE_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col(
        "Drivers",
        "integer",
        "Drivers indicates the number of CSI drivers registered on the node",
    ),
    AGE_COLUMN,
];

static CSI_DRIVER_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col(
        "AttachRequired",
        "boolean",
        docs::CSI_DRIVER_SPEC_ATTACH_REQUIRED,
    ),
    col(
        "PodInfoOnMount",
        "boolean",
        docs::CSI_DRIVER_SPEC_POD_INFO_ON_MOUNT,
    ),
    col(
        "StorageCapacity",
        "boolean",
        docs::CSI_DRIVER_SPEC_STORAGE_CAPACITY,
    ),
    col(
        "TokenRequests",
        "string",
        docs::CSI_DRIVER_SPEC_TOKEN_REQUESTS,
    ),
    col(
        "RequiresRepublish",
        "boolean",
        docs::CSI_DRIVER_SPEC_REQUIRES_REPUBLISH,
    ),
    col(
        "Modes",
        "string",
        docs::CSI_DRIVER_SPEC_VOLUME_LIFECYCLE_MODES,
    ),
    AGE_COLUMN,
];

static CSI_STORAGE_CAPACITY_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col(
        "StorageClassName",
        "string",
        docs::CSI_STORAGE_CAPACITY_STORAGE_CLASS_NAME,
    ),
    col("Capacity", "string", docs::CSI_STORAGE_CAPACITY_CAPACITY),
];

pub(super) fn columns(resource: &str) -> Option<&'static [Column]> {
    Some(match resource {
        "storageclasses" => STORAGE_CLASS_COLUMNS,
        "volumeattributesclasses" => VOLUME_ATTRIBUTES_CLASS_COLUMNS,
        "volumeattachments" => VOLUME_ATTACHMENT_COLUMNS,
        "csinodes" => CSI_NODE_COLUMNS,
        "csidrivers" => CSI_DRIVER_COLUMNS,
        "csistoragecapacities" => CSI_STORAGE_CAPACITY_COLUMNS,
        _ => return None,
    })
}

pub(super) fn row(resource: &str, obj: &Value) -> Option<Row> {
    Some(match resource {
        "storageclasses" => storage_class_row(obj),
        "volumeattributesclasses" => {
            let mut class_name = super::name_of(obj);
            if annotation(
                obj,
                "volumeattributesclass.alpha.kubernetes.io/is-default-class",
            ) == Some("true")
            {
                class_name.push_str(" (default)");
            }
            cells(vec![
                text(class_name),
                text(str_at(obj, "/driverName")),
                age(obj),
            ])
        }
        "volumeattachments" => cells(vec![
            name(obj),
            text(str_at(obj, "/spec/attacher")),
            text(str_at(obj, "/spec/source/persistentVolumeName")),
            text(str_at(obj, "/spec/nodeName")),
            Cell::Bool(bool_at(obj, "/status/attached")),
            age(obj),
        ]),
        "csinodes" => cells(vec![
            name(obj),
            Cell::Int(len_at(obj, "/spec/drivers")),
            age(obj),
        ]),
        "csidrivers" => csi_driver_row(obj),
        "csistoragecapacities" => cells(vec![
            name(obj),
            text(str_at(obj, "/storageClassName")),
            text(quantity_or(get(obj, "/capacity"), "<unset>")),
        ]),
        _ => return None,
    })
}

/// `storageutil.IsDefaultAnnotation`: the GA or the beta annotation says "true".
fn is_default_class(obj: &Value) -> bool {
    annotation(obj, "storageclass.kubernetes.io/is-default-class") == Some("true")
        || annotation(obj, "storageclass.beta.kubernetes.io/is-default-class") == Some("true")
}

fn storage_class_row(obj: &Value) -> Row {
    let mut class_name = super::name_of(obj);
    if is_default_class(obj) {
        class_name.push_str(" (default)");
    }
    cells(vec![
        text(class_name),
        text(str_at(obj, "/provisioner")),
        text(opt_str(obj, "/reclaimPolicy").unwrap_or("Delete")),
        text(opt_str(obj, "/volumeBindingMode").unwrap_or("Immediate")),
        Cell::Bool(bool_at(obj, "/allowVolumeExpansion")),
        age(obj),
    ])
}

fn csi_driver_row(obj: &Value) -> Row {
    let modes: Vec<&str> = arr_at(obj, "/spec/volumeLifecycleModes")
        .iter()
        .map(|m| m.as_str().unwrap_or(""))
        .collect();
    let modes = if modes.is_empty() {
        "<none>".to_string()
    } else {
        modes.join(",")
    };
    let token_requests = match obj.pointer("/spec/tokenRequests").and_then(Value::as_array) {
        None => "<unset>".to_string(),
        Some(requests) => requests
            .iter()
            .map(|t| str_at(t, "/audience"))
            .collect::<Vec<_>>()
            .join(","),
    };
    cells(vec![
        name(obj),
        Cell::Bool(opt_bool(obj, "/spec/attachRequired").unwrap_or(true)),
        Cell::Bool(bool_at(obj, "/spec/podInfoOnMount")),
        Cell::Bool(bool_at(obj, "/spec/storageCapacity")),
        text(token_requests),
        Cell::Bool(bool_at(obj, "/spec/requiresRepublish")),
        text(modes),
        age(obj),
    ])
}
