//! discovery.k8s.io: endpointslices.

use serde_json::Value;

use super::core::{age, cells, col, name, text};
use super::util::{arr_at, as_int, list_with_more, str_at};
use super::{AGE_COLUMN, Column, NAME_COLUMN, Row, docs};

static ENDPOINT_SLICE_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("AddressType", "string", docs::ENDPOINT_SLICE_ADDRESS_TYPE),
    col("Ports", "string", docs::ENDPOINT_SLICE_PORTS),
    col("Endpoints", "string", docs::ENDPOINT_SLICE_ENDPOINTS),
    AGE_COLUMN,
];

pub(super) fn columns(resource: &str) -> Option<&'static [Column]> {
    (resource == "endpointslices").then_some(ENDPOINT_SLICE_COLUMNS)
}

pub(super) fn row(resource: &str, obj: &Value) -> Option<Row> {
    (resource == "endpointslices").then(|| {
        cells(vec![
            name(obj),
            text(str_at(obj, "/addressType")),
            text(format_ports(arr_at(obj, "/ports"))),
            text(format_endpoints(arr_at(obj, "/endpoints"))),
            age(obj),
        ])
    })
}

const MAX: usize = 3;

/// `formatDiscoveryPorts`: port numbers, else names, else `*`.
fn format_ports(ports: &[Value]) -> String {
    let mut list = Vec::new();
    let mut more = false;
    for port in ports {
        if list.len() < MAX {
            let number = port.get("port").and_then(as_int);
            let port_name = port.get("name").and_then(Value::as_str);
            list.push(match (number, port_name) {
                (Some(n), _) => n.to_string(),
                (None, Some(n)) => n.to_string(),
                (None, None) => "*".to_string(),
            });
        } else if list.len() == MAX {
            more = true;
        }
    }
    list_with_more(&list, more, ports.len(), MAX)
}

/// `formatDiscoveryEndpoints`: the addresses of all endpoints.
fn format_endpoints(endpoints: &[Value]) -> String {
    let mut list = Vec::new();
    let mut more = false;
    let mut count = 0;
    for endpoint in endpoints {
        for address in arr_at(endpoint, "/addresses") {
            if list.len() < MAX {
                list.push(address.as_str().unwrap_or("").to_string());
            } else if list.len() == MAX {
                more = true;
            }
            count += 1;
        }
    }
    list_with_more(&list, more, count, MAX)
}
