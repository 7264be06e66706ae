//! certificates.k8s.io: certificatesigningrequests and clustertrustbundles.

use jiff::SignedDuration;
use serde_json::Value;

use super::core::{age, cells, col, name, or_none, text};
use super::util::{arr_at, opt_int, str_at};
use super::{AGE_COLUMN, Column, NAME_COLUMN, Row, docs};

static CSR_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    AGE_COLUMN,
    col("SignerName", "string", docs::CSR_SPEC_SIGNER_NAME),
    col("Requestor", "string", docs::CSR_SPEC_REQUEST),
    col(
        "RequestedDuration",
        "string",
        docs::CSR_SPEC_EXPIRATION_SECONDS,
    ),
    col("Condition", "string", docs::CSR_STATUS_CONDITIONS),
];

static CLUSTER_TRUST_BUNDLE_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col(
        "SignerName",
        "string",
        docs::CLUSTER_TRUST_BUNDLE_SPEC_SIGNER_NAME,
    ),
];

pub(super) fn columns(resource: &str) -> Option<&'static [Column]> {
    Some(match resource {
        "certificatesigningrequests" => CSR_COLUMNS,
        "clustertrustbundles" => CLUSTER_TRUST_BUNDLE_COLUMNS,
        _ => return None,
    })
}

pub(super) fn row(resource: &str, obj: &Value) -> Option<Row> {
    Some(match resource {
        "certificatesigningrequests" => csr_row(obj),
        "clustertrustbundles" => cells(vec![
            name(obj),
            text(or_none(str_at(obj, "/spec/signerName"))),
        ]),
        _ => return None,
    })
}

/// `extractCSRStatus`: Denied over Approved over Pending, then `,Failed` and `,Issued`.
fn csr_condition(obj: &Value) -> String {
    let conditions = arr_at(obj, "/status/conditions");
    let has = |t: &str| conditions.iter().any(|c| str_at(c, "/type") == t);
    let mut status = if has("Denied") {
        "Denied"
    } else if has("Approved") {
        "Approved"
    } else {
        "Pending"
    }
    .to_string();
    if has("Failed") {
        status.push_str(",Failed");
    }
    if !str_at(obj, "/status/certificate").is_empty() {
        status.push_str(",Issued");
    }
    status
}

fn csr_row(obj: &Value) -> Row {
    let requested = match opt_int(obj, "/spec/expirationSeconds") {
        Some(s) => crate::time::human_duration(SignedDuration::from_secs(s)),
        None => "<none>".to_string(),
    };
    cells(vec![
        name(obj),
        age(obj),
        text(or_none(str_at(obj, "/spec/signerName"))),
        text(str_at(obj, "/spec/username")),
        text(requested),
        text(csr_condition(obj)),
    ])
}
