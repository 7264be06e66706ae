//! admissionregistration.k8s.io: webhook configurations and admission policies with bindings.

use serde_json::Value;

use super::core::{age, cells, col, name, text};
use super::util::{get, label_selector_go_string, len_at, str_at};
use super::{AGE_COLUMN, Cell, Column, NAME_COLUMN, Row};

const WEBHOOKS_DESCRIPTION: &str =
    "Webhooks indicates the number of webhooks registered in this configuration";
const PARAM_KIND_DESCRIPTION: &str =
    "ParamKind specifies the kind of resources used to parameterize this policy";
const POLICY_NAME_DESCRIPTION: &str =
    "PolicyName indicates the policy definition which the policy binding binded to";
const PARAM_REF_DESCRIPTION: &str =
    "ParamRef indicates the param resource which sets the configration param";

static WEBHOOK_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Webhooks", "integer", WEBHOOKS_DESCRIPTION),
    AGE_COLUMN,
];

static VALIDATING_POLICY_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col(
        "Validations",
        "integer",
        "Validations indicates the number of validation rules defined in this configuration",
    ),
    col("ParamKind", "string", PARAM_KIND_DESCRIPTION),
    AGE_COLUMN,
];

static MUTATING_POLICY_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col(
        "Mutations",
        "integer",
        "Mutation indicates the number of mutations rules defined in this configuration",
    ),
    col("ParamKind", "string", PARAM_KIND_DESCRIPTION),
    AGE_COLUMN,
];

static BINDING_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("PolicyName", "string", POLICY_NAME_DESCRIPTION),
    col("ParamRef", "string", PARAM_REF_DESCRIPTION),
    AGE_COLUMN,
];

pub(super) fn columns(resource: &str) -> Option<&'static [Column]> {
    Some(match resource {
        "mutatingwebhookconfigurations" | "validatingwebhookconfigurations" => WEBHOOK_COLUMNS,
        "validatingadmissionpolicies" => VALIDATING_POLICY_COLUMNS,
        "mutatingadmissionpolicies" => MUTATING_POLICY_COLUMNS,
        "validatingadmissionpolicybindings" | "mutatingadmissionpolicybindings" => BINDING_COLUMNS,
        _ => return None,
    })
}

pub(super) fn row(resource: &str, obj: &Value) -> Option<Row> {
    Some(match resource {
        "mutatingwebhookconfigurations" | "validatingwebhookconfigurations" => cells(vec![
            name(obj),
            Cell::Int(len_at(obj, "/webhooks")),
            age(obj),
        ]),
        "validatingadmissionpolicies" => policy_row(obj, "/spec/validations"),
        "mutatingadmissionpolicies" => policy_row(obj, "/spec/mutations"),
        "validatingadmissionpolicybindings" | "mutatingadmissionpolicybindings" => binding_row(obj),
        _ => return None,
    })
}

fn policy_row(obj: &Value, rules: &str) -> Row {
    let param_kind = match get(obj, "/spec/paramKind") {
        Some(p) => format!("{}/{}", str_at(p, "/apiVersion"), str_at(p, "/kind")),
        None => "<unset>".to_string(),
    };
    cells(vec![
        name(obj),
        Cell::Int(len_at(obj, rules)),
        text(param_kind),
        age(obj),
    ])
}

fn binding_row(obj: &Value) -> Row {
    let param = match get(obj, "/spec/paramRef") {
        None => "<unset>".to_string(),
        Some(p) => {
            let param_name = str_at(p, "/name");
            let namespace = str_at(p, "/namespace");
            if !param_name.is_empty() {
                // Whether the param is cluster-scoped is unknown here: no namespace reads `*`.
                if namespace.is_empty() {
                    format!("*/{param_name}")
                } else {
                    format!("{namespace}/{param_name}")
                }
            } else if let Some(selector) = get(p, "/selector") {
                label_selector_go_string(selector)
            } else {
                "<unset>".to_string()
            }
        }
    };
    cells(vec![
        name(obj),
        text(str_at(obj, "/spec/policyName")),
        text(param),
        age(obj),
    ])
}
