//! scheduling.k8s.io: priorityclasses.

use serde_json::Value;

use super::core::{age, cells, col, name, text};
use super::util::{bool_at, int_at, str_at};
use super::{AGE_COLUMN, Cell, Column, NAME_COLUMN, Row, docs};

static PRIORITY_CLASS_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Value", "integer", docs::PRIORITY_CLASS_VALUE),
    col(
        "Global-Default",
        "boolean",
        docs::PRIORITY_CLASS_GLOBAL_DEFAULT,
    ),
    AGE_COLUMN,
    col(
        "PreemptionPolicy",
        "string",
        docs::PRIORITY_CLASS_PREEMPTION_POLICY,
    ),
];

pub(super) fn columns(resource: &str) -> Option<&'static [Column]> {
    (resource == "priorityclasses").then_some(PRIORITY_CLASS_COLUMNS)
}

pub(super) fn row(resource: &str, obj: &Value) -> Option<Row> {
    (resource == "priorityclasses").then(|| {
        cells(vec![
            name(obj),
            Cell::Int(int_at(obj, "/value")),
            Cell::Bool(bool_at(obj, "/globalDefault")),
            age(obj),
            text(str_at(obj, "/preemptionPolicy")),
        ])
    })
}
