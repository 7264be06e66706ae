//! Server-side printing: the `meta.k8s.io/v1` Table columns and rows of every kind, as
//! upstream's `pkg/printers/internalversion` prints them for `kubectl get`.
//!
//! A row is computed once from the object (the watch cache keeps it) and rendered against the
//! current time on every request, so columns like AGE stay live without re-reading the object.
//!
//! Upstream's apiserver always generates the wide form of a row (`GenerateOptions{Wide: true}`)
//! and lets the client hide the columns of priority 1, so every row here carries one cell per
//! column, wide ones included. Kinds live in one module per API group; [`columns`] and [`row`]
//! dispatch on (group, plural resource).

use jiff::Timestamp;
use serde_json::Value;

mod admissionregistration;
mod apiextensions;
mod apiserverinternal;
mod apps;
mod autoscaling;
mod batch;
mod certificates;
mod coordination;
mod core;
mod discovery;
mod docs;
mod events;
mod flowcontrol;
mod networking;
mod node;
mod policy;
mod quantity;
mod rbac;
mod resource;
mod scheduling;
mod storage;
mod util;

#[cfg(test)]
mod tests;

/// One Table column definition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    /// OpenAPI type: "string", "integer", "number", "boolean", "date".
    pub type_: &'static str,
    /// "name" for the NAME column, otherwise usually empty.
    pub format: &'static str,
    pub description: &'static str,
    /// 0 = shown by default, 1 = only with `-o wide`.
    pub priority: i32,
}

/// One cell, possibly relative to the time it is rendered at.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Text(String),
    Int(i64),
    /// A JSON boolean (StorageClass ALLOWVOLUMEEXPANSION, PriorityClass GLOBAL-DEFAULT, ...).
    Bool(bool),
    /// kubectl's `HumanDuration` since the timestamp; `<unknown>` when absent.
    Age(Option<Timestamp>),
    /// Pod RESTARTS: `3` or `3 (5m ago)` when the last restart time is known. Always a string,
    /// as upstream renders it.
    Restarts {
        count: i64,
        last: Option<Timestamp>,
    },
    /// A duration that runs until `end` or, while `end` is None, until now (Job DURATION).
    Elapsed {
        start: Timestamp,
        end: Option<Timestamp>,
    },
}

/// Upstream's `metav1.TableRowCondition` (pods in a terminal phase are marked Completed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowCondition {
    pub type_: String,
    pub status: String,
    pub reason: String,
    pub message: String,
}

impl RowCondition {
    /// The JSON of the condition in a Table row.
    pub fn render(&self) -> Value {
        serde_json::json!({
            "type": self.type_,
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
        })
    }
}

/// A row: its cells (one per column) and upstream's row conditions (pods mark Completed).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Row {
    pub cells: Vec<Cell>,
    pub conditions: Vec<RowCondition>,
}

impl Row {
    /// The `cells` of a Table row rendered at `now`.
    pub fn render_cells(&self, now: Timestamp) -> Vec<Value> {
        self.cells.iter().map(|c| c.render(now)).collect()
    }
}

impl Cell {
    /// The JSON value this cell takes in a Table response rendered at `now`.
    pub fn render(&self, now: Timestamp) -> Value {
        match self {
            Cell::Text(s) => Value::String(s.clone()),
            Cell::Int(i) => Value::from(*i),
            Cell::Bool(b) => Value::Bool(*b),
            Cell::Age(Some(t)) => {
                Value::String(crate::time::human_duration(now.duration_since(*t)))
            }
            Cell::Age(None) => Value::String("<unknown>".into()),
            Cell::Restarts {
                count,
                last: Some(t),
            } => Value::String(format!(
                "{} ({} ago)",
                count,
                crate::time::human_duration(now.duration_since(*t))
            )),
            Cell::Restarts { count, last: None } => Value::String(count.to_string()),
            Cell::Elapsed { start, end } => {
                let end = end.unwrap_or(now);
                Value::String(crate::time::human_duration(end.duration_since(*start)))
            }
        }
    }
}

/// The columns for a resource (`group`, plural `resource`). Resources upstream has no printer
/// for get what their storage would answer: built-in ones (roles, limitranges, CRDs...) the
/// generic NAME / CREATED AT pair, anything else (custom resources) the NAME / AGE pair a
/// CustomResourceDefinition without printer columns gets.
pub fn columns(group: &str, resource: &str) -> &'static [Column] {
    let found = match group {
        "" => core::columns(resource),
        "apps" => apps::columns(resource),
        "batch" => batch::columns(resource),
        "autoscaling" => autoscaling::columns(resource),
        "policy" => policy::columns(resource),
        "networking.k8s.io" => networking::columns(resource),
        "rbac.authorization.k8s.io" => rbac::columns(resource),
        "certificates.k8s.io" => certificates::columns(resource),
        "coordination.k8s.io" => coordination::columns(resource),
        "storage.k8s.io" => storage::columns(resource),
        "scheduling.k8s.io" => scheduling::columns(resource),
        "node.k8s.io" => node::columns(resource),
        "discovery.k8s.io" => discovery::columns(resource),
        "events.k8s.io" => events::columns(resource),
        "admissionregistration.k8s.io" => admissionregistration::columns(resource),
        "flowcontrol.apiserver.k8s.io" => flowcontrol::columns(resource),
        "resource.k8s.io" => resource::columns(resource),
        "internal.apiserver.k8s.io" | "storagemigration.k8s.io" => {
            apiserverinternal::columns(group, resource)
        }
        "apiextensions.k8s.io" | "apiregistration.k8s.io" => {
            apiextensions::columns(group, resource)
        }
        _ => None,
    };
    found.unwrap_or(DEFAULT_COLUMNS)
}

/// The row for one object of the resource.
pub fn row(group: &str, resource: &str, obj: &Value) -> Row {
    let found = match group {
        "" => core::row(resource, obj),
        "apps" => apps::row(resource, obj),
        "batch" => batch::row(resource, obj),
        "autoscaling" => autoscaling::row(resource, obj),
        "policy" => policy::row(resource, obj),
        "networking.k8s.io" => networking::row(resource, obj),
        "rbac.authorization.k8s.io" => rbac::row(resource, obj),
        "certificates.k8s.io" => certificates::row(resource, obj),
        "coordination.k8s.io" => coordination::row(resource, obj),
        "storage.k8s.io" => storage::row(resource, obj),
        "scheduling.k8s.io" => scheduling::row(resource, obj),
        "node.k8s.io" => node::row(resource, obj),
        "discovery.k8s.io" => discovery::row(resource, obj),
        "events.k8s.io" => events::row(resource, obj),
        "admissionregistration.k8s.io" => admissionregistration::row(resource, obj),
        "flowcontrol.apiserver.k8s.io" => flowcontrol::row(resource, obj),
        "resource.k8s.io" => resource::row(resource, obj),
        "internal.apiserver.k8s.io" | "storagemigration.k8s.io" => {
            apiserverinternal::row(group, resource, obj)
        }
        "apiextensions.k8s.io" | "apiregistration.k8s.io" => {
            apiextensions::row(group, resource, obj)
        }
        _ => None,
    };
    found.unwrap_or_else(|| default_row(obj))
}

pub const NAME_COLUMN: Column = Column {
    name: "Name",
    type_: "string",
    format: "name",
    description: "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
    priority: 0,
};

pub const AGE_COLUMN: Column = Column {
    name: "Age",
    type_: "string",
    format: "",
    description: CREATION_TIMESTAMP_DESCRIPTION,
    priority: 0,
};

const CREATION_TIMESTAMP_DESCRIPTION: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// The Age column a CustomResourceDefinition without printer columns serves: a "date".
pub const CUSTOM_RESOURCE_AGE_COLUMN: Column = Column {
    name: "Age",
    type_: "date",
    format: "",
    description: CREATION_TIMESTAMP_DESCRIPTION,
    priority: 0,
};

/// The "Created At" column of the apiserver's generic table convertor, for built-in kinds
/// without a printer (roles, clusterroles, limitranges, customresourcedefinitions).
pub const CREATED_AT_COLUMN: Column = Column {
    name: "Created At",
    type_: "date",
    format: "",
    description: CREATION_TIMESTAMP_DESCRIPTION,
    priority: 0,
};

static DEFAULT_COLUMNS: &[Column] = &[NAME_COLUMN, CUSTOM_RESOURCE_AGE_COLUMN];

pub(crate) static CREATED_AT_COLUMNS: &[Column] = &[NAME_COLUMN, CREATED_AT_COLUMN];

/// NAME and AGE from metadata.
pub fn default_row(obj: &Value) -> Row {
    Row {
        cells: vec![Cell::Text(name_of(obj)), Cell::Age(creation_timestamp(obj))],
        conditions: Vec::new(),
    }
}

/// NAME and CREATED AT (RFC 3339, UTC; Go's zero time when absent), as the generic convertor.
pub(crate) fn created_at_row(obj: &Value) -> Row {
    let created = creation_timestamp(obj)
        .map(crate::time::format_rfc3339)
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_string());
    Row {
        cells: vec![Cell::Text(name_of(obj)), Cell::Text(created)],
        conditions: Vec::new(),
    }
}

pub(crate) fn name_of(obj: &Value) -> String {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

pub(crate) fn creation_timestamp(obj: &Value) -> Option<Timestamp> {
    obj.pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
}
