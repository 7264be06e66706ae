//! internal.apiserver.k8s.io storageversions and storagemigration.k8s.io
//! storageversionmigrations.

use serde_json::Value;

use super::core::{age, cells, col, name, text};
use super::util::{arr_at, list_with_more, opt_str, str_at};
use super::{AGE_COLUMN, Column, NAME_COLUMN, Row, docs};

static STORAGE_VERSION_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col(
        "CommonEncodingVersion",
        "string",
        docs::STORAGE_VERSION_STATUS_COMMON_ENCODING_VERSION,
    ),
    col(
        "StorageVersions",
        "string",
        docs::STORAGE_VERSION_STATUS_STORAGE_VERSIONS,
    ),
    AGE_COLUMN,
];

/// Upstream gives this table's Name column no "name" format.
static STORAGE_VERSION_MIGRATION_COLUMNS: &[Column] = &[
    Column {
        format: "",
        ..NAME_COLUMN
    },
    col("Resource", "string", "Fully qualified resource to migrate"),
];

pub(super) fn columns(group: &str, resource: &str) -> Option<&'static [Column]> {
    match (group, resource) {
        ("internal.apiserver.k8s.io", "storageversions") => Some(STORAGE_VERSION_COLUMNS),
        ("storagemigration.k8s.io", "storageversionmigrations") => {
            Some(STORAGE_VERSION_MIGRATION_COLUMNS)
        }
        _ => None,
    }
}

pub(super) fn row(group: &str, resource: &str, obj: &Value) -> Option<Row> {
    match (group, resource) {
        ("internal.apiserver.k8s.io", "storageversions") => Some(storage_version_row(obj)),
        ("storagemigration.k8s.io", "storageversionmigrations") => Some(cells(vec![
            name(obj),
            text(format!(
                "{}.{}.{}",
                str_at(obj, "/spec/resource/resource"),
                str_at(obj, "/spec/resource/version"),
                str_at(obj, "/spec/resource/group")
            )),
        ])),
        _ => None,
    }
}

fn storage_version_row(obj: &Value) -> Row {
    const MAX: usize = 3;
    let versions = arr_at(obj, "/status/storageVersions");
    let list: Vec<String> = versions
        .iter()
        .take(MAX)
        .map(|v| {
            format!(
                "{}={}",
                str_at(v, "/apiServerID"),
                str_at(v, "/encodingVersion")
            )
        })
        .collect();
    cells(vec![
        name(obj),
        text(opt_str(obj, "/status/commonEncodingVersion").unwrap_or("<unset>")),
        text(list_with_more(
            &list,
            versions.len() > MAX,
            versions.len(),
            MAX,
        )),
        age(obj),
    ])
}
