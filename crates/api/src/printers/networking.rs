//! networking.k8s.io: ingresses, ingressclasses, networkpolicies, servicecidrs, ipaddresses.

use serde_json::Value;

use super::core::{age, cells, col, load_balancer_ingress, name, text};
use super::util::{arr_at, format_label_selector, get, opt_str, str_at};
use super::{AGE_COLUMN, Column, NAME_COLUMN, Row, docs};

static INGRESS_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col(
        "Class",
        "string",
        "The name of the IngressClass resource that should be used for additional configuration",
    ),
    col(
        "Hosts",
        "string",
        "Hosts that incoming requests are matched against before the ingress rule",
    ),
    col(
        "Address",
        "string",
        "Address is a list containing ingress points for the load-balancer",
    ),
    col("Ports", "string", "Ports of TLS configurations that open"),
    AGE_COLUMN,
];

static INGRESS_CLASS_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col(
        "Controller",
        "string",
        "Controller that is responsible for handling this class",
    ),
    col(
        "Parameters",
        "string",
        "A reference to a resource with additional parameters",
    ),
    AGE_COLUMN,
];

static NETWORK_POLICY_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col(
        "Pod-Selector",
        "string",
        docs::NETWORK_POLICY_SPEC_POD_SELECTOR,
    ),
    AGE_COLUMN,
];

static SERVICE_CIDR_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("CIDRs", "string", docs::SERVICE_CIDR_SPEC_CIDRS),
    AGE_COLUMN,
];

/// Upstream defines no Age column for IPAddresses but still sends the age cell; kubectl drops
/// cells beyond the columns.
static IP_ADDRESS_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("ParentRef", "string", docs::IP_ADDRESS_SPEC_PARENT_REF),
];

pub(super) fn columns(resource: &str) -> Option<&'static [Column]> {
    Some(match resource {
        "ingresses" => INGRESS_COLUMNS,
        "ingressclasses" => INGRESS_CLASS_COLUMNS,
        "networkpolicies" => NETWORK_POLICY_COLUMNS,
        "servicecidrs" => SERVICE_CIDR_COLUMNS,
        "ipaddresses" => IP_ADDRESS_COLUMNS,
        _ => return None,
    })
}

pub(super) fn row(resource: &str, obj: &Value) -> Option<Row> {
    Some(match resource {
        "ingresses" => ingress_row(obj),
        "ingressclasses" => ingress_class_row(obj),
        "networkpolicies" => cells(vec![
            name(obj),
            // podSelector is a struct, not a pointer: absent selects everything.
            text(format_label_selector(Some(
                obj.pointer("/spec/podSelector").unwrap_or(&Value::Null),
            ))),
            age(obj),
        ]),
        "servicecidrs" => {
            let cidrs: Vec<&str> = arr_at(obj, "/spec/cidrs")
                .iter()
                .map(|c| c.as_str().unwrap_or(""))
                .collect();
            cells(vec![name(obj), text(cidrs.join(",")), age(obj)])
        }
        "ipaddresses" => ip_address_row(obj),
        _ => return None,
    })
}

/// `formatHosts`: the first three hosts, `*` when no rule names one.
fn format_hosts(rules: &[Value]) -> String {
    const MAX: usize = 3;
    let mut list: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if list.len() == MAX {
            more = true;
        }
        let host = str_at(rule, "/host");
        if !more && !host.is_empty() {
            list.push(host);
        }
    }
    if list.is_empty() {
        return "*".to_string();
    }
    let ret = list.join(",");
    if more {
        format!("{ret} + {} more...", rules.len() - MAX)
    } else {
        ret
    }
}

fn ingress_row(obj: &Value) -> Row {
    let ports = if arr_at(obj, "/spec/tls").is_empty() {
        "80"
    } else {
        "80, 443"
    };
    cells(vec![
        name(obj),
        text(opt_str(obj, "/spec/ingressClassName").unwrap_or("<none>")),
        text(format_hosts(arr_at(obj, "/spec/rules"))),
        text(load_balancer_ingress(arr_at(
            obj,
            "/status/loadBalancer/ingress",
        ))),
        text(ports),
        age(obj),
    ])
}

fn ingress_class_row(obj: &Value) -> Row {
    let parameters = match get(obj, "/spec/parameters") {
        None => "<none>".to_string(),
        Some(p) => {
            let mut s = str_at(p, "/kind").to_string();
            if let Some(group) = opt_str(p, "/apiGroup") {
                s = format!("{s}.{group}");
            }
            format!("{s}/{}", str_at(p, "/name"))
        }
    };
    cells(vec![
        name(obj),
        text(str_at(obj, "/spec/controller")),
        text(parameters),
        age(obj),
    ])
}

fn ip_address_row(obj: &Value) -> Row {
    let parent = match get(obj, "/spec/parentRef") {
        None => "<none>".to_string(),
        Some(p) => {
            let group = str_at(p, "/group");
            let resource = str_at(p, "/resource");
            let mut s = if group.is_empty() {
                resource.to_lowercase()
            } else {
                format!("{resource}.{group}").to_lowercase()
            };
            let namespace = str_at(p, "/namespace");
            if !namespace.is_empty() {
                s = format!("{s}/{namespace}");
            }
            format!("{s}/{}", str_at(p, "/name"))
        }
    };
    cells(vec![name(obj), text(parent), age(obj)])
}
