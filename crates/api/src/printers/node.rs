//! node.k8s.io: runtimeclasses.

use serde_json::Value;

use super::core::{age, cells, col, name, text};
use super::util::str_at;
use super::{AGE_COLUMN, Column, NAME_COLUMN, Row};

/// Upstream looks the Handler description up in ObjectMeta's docs, where it is empty.
static RUNTIME_CLASS_COLUMNS: &[Column] = &[NAME_COLUMN, col("Handler", "string", ""), AGE_COLUMN];

pub(super) fn columns(resource: &str) -> Option<&'static [Column]> {
    (resource == "runtimeclasses").then_some(RUNTIME_CLASS_COLUMNS)
}

pub(super) fn row(resource: &str, obj: &Value) -> Option<Row> {
    (resource == "runtimeclasses")
        .then(|| cells(vec![name(obj), text(str_at(obj, "/handler")), age(obj)]))
}
