//! coordination.k8s.io: leases and leasecandidates.

use serde_json::Value;

use super::core::{age, cells, col, name, text};
use super::util::str_at;
use super::{AGE_COLUMN, Column, NAME_COLUMN, Row, docs};

static LEASE_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Holder", "string", docs::LEASE_SPEC_HOLDER_IDENTITY),
    AGE_COLUMN,
];

/// BinaryVersion and EmulationVersion take their descriptions from ObjectMeta upstream, which
/// has no such fields: they are empty.
static LEASE_CANDIDATE_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("LeaseName", "string", docs::LEASE_CANDIDATE_SPEC_LEASE_NAME),
    col("BinaryVersion", "string", ""),
    col("EmulationVersion", "string", ""),
    AGE_COLUMN,
];

pub(super) fn columns(resource: &str) -> Option<&'static [Column]> {
    Some(match resource {
        "leases" => LEASE_COLUMNS,
        "leasecandidates" => LEASE_CANDIDATE_COLUMNS,
        _ => return None,
    })
}

pub(super) fn row(resource: &str, obj: &Value) -> Option<Row> {
    Some(match resource {
        "leases" => cells(vec![
            name(obj),
            text(str_at(obj, "/spec/holderIdentity")),
            age(obj),
        ]),
        "leasecandidates" => cells(vec![
            name(obj),
            text(str_at(obj, "/spec/leaseName")),
            text(str_at(obj, "/spec/binaryVersion")),
            text(str_at(obj, "/spec/emulationVersion")),
            age(obj),
        ]),
        _ => return None,
    })
}
