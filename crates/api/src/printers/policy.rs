//! policy: poddisruptionbudgets.

use serde_json::Value;

use super::core::{age, cells, col, name, text};
use super::util::{get, int_at, int_or_string};
use super::{AGE_COLUMN, Cell, Column, NAME_COLUMN, Row};

static PDB_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col(
        "Min Available",
        "string",
        "The minimum number of pods that must be available.",
    ),
    col(
        "Max Unavailable",
        "string",
        "The maximum number of pods that may be unavailable.",
    ),
    col(
        "Allowed Disruptions",
        "integer",
        "Calculated number of pods that may be disrupted at this time.",
    ),
    AGE_COLUMN,
];

pub(super) fn columns(resource: &str) -> Option<&'static [Column]> {
    (resource == "poddisruptionbudgets").then_some(PDB_COLUMNS)
}

pub(super) fn row(resource: &str, obj: &Value) -> Option<Row> {
    if resource != "poddisruptionbudgets" {
        return None;
    }
    let bound = |ptr: &str| {
        get(obj, ptr)
            .map(int_or_string)
            .unwrap_or_else(|| "N/A".to_string())
    };
    Some(cells(vec![
        name(obj),
        text(bound("/spec/minAvailable")),
        text(bound("/spec/maxUnavailable")),
        Cell::Int(int_at(obj, "/status/disruptionsAllowed")),
        age(obj),
    ]))
}
