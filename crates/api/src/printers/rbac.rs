//! rbac.authorization.k8s.io: rolebindings and clusterrolebindings; roles and clusterroles have
//! no printer upstream and get the generic NAME / CREATED AT.

use serde_json::Value;

use super::core::{age, cells, col, name, text, wide};
use super::util::{arr_at, str_at};
use super::{AGE_COLUMN, CREATED_AT_COLUMNS, Column, NAME_COLUMN, Row, created_at_row, docs};

static ROLE_BINDING_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Role", "string", docs::ROLE_BINDING_ROLE_REF),
    AGE_COLUMN,
    wide("Users", "string", "Users in the roleBinding"),
    wide("Groups", "string", "Groups in the roleBinding"),
    wide(
        "ServiceAccounts",
        "string",
        "ServiceAccounts in the roleBinding",
    ),
];

static CLUSTER_ROLE_BINDING_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Role", "string", docs::CLUSTER_ROLE_BINDING_ROLE_REF),
    AGE_COLUMN,
    wide("Users", "string", "Users in the clusterRoleBinding"),
    wide("Groups", "string", "Groups in the clusterRoleBinding"),
    wide(
        "ServiceAccounts",
        "string",
        "ServiceAccounts in the clusterRoleBinding",
    ),
];

pub(super) fn columns(resource: &str) -> Option<&'static [Column]> {
    Some(match resource {
        "rolebindings" => ROLE_BINDING_COLUMNS,
        "clusterrolebindings" => CLUSTER_ROLE_BINDING_COLUMNS,
        "roles" | "clusterroles" => CREATED_AT_COLUMNS,
        _ => return None,
    })
}

pub(super) fn row(resource: &str, obj: &Value) -> Option<Row> {
    Some(match resource {
        "rolebindings" | "clusterrolebindings" => binding_row(obj),
        "roles" | "clusterroles" => created_at_row(obj),
        _ => return None,
    })
}

/// `rbac.SubjectsStrings`: users, groups and `namespace/name` service accounts, in order.
fn subjects(obj: &Value) -> (Vec<String>, Vec<String>, Vec<String>) {
    let mut users = Vec::new();
    let mut groups = Vec::new();
    let mut service_accounts = Vec::new();
    for s in arr_at(obj, "/subjects") {
        let subject_name = str_at(s, "/name").to_string();
        match str_at(s, "/kind") {
            "ServiceAccount" => {
                service_accounts.push(format!("{}/{subject_name}", str_at(s, "/namespace")));
            }
            "User" => users.push(subject_name),
            "Group" => groups.push(subject_name),
            _ => {}
        }
    }
    (users, groups, service_accounts)
}

fn binding_row(obj: &Value) -> Row {
    let (users, groups, service_accounts) = subjects(obj);
    cells(vec![
        name(obj),
        text(format!(
            "{}/{}",
            str_at(obj, "/roleRef/kind"),
            str_at(obj, "/roleRef/name")
        )),
        age(obj),
        text(users.join(", ")),
        text(groups.join(", ")),
        text(service_accounts.join(", ")),
    ])
}
