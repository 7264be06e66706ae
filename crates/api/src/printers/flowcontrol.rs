//! flowcontrol.apiserver.k8s.io: flowschemas and prioritylevelconfigurations.

use serde_json::Value;

use super::core::{age, cells, col, name, text};
use super::util::{arr_at, get, int_at, opt_int, str_at};
use super::{AGE_COLUMN, Cell, Column, NAME_COLUMN, Row, docs};

static FLOW_SCHEMA_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("PriorityLevel", "string", docs::PL_REFERENCE_NAME),
    col(
        "MatchingPrecedence",
        "string",
        docs::FLOW_SCHEMA_SPEC_MATCHING_PRECEDENCE,
    ),
    col(
        "DistinguisherMethod",
        "string",
        docs::FLOW_SCHEMA_SPEC_DISTINGUISHER_METHOD,
    ),
    AGE_COLUMN,
    col(
        "MissingPL",
        "string",
        "references a broken or non-existent PriorityLevelConfiguration",
    ),
];

static PRIORITY_LEVEL_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Type", "string", docs::PL_SPEC_TYPE),
    col(
        "NominalConcurrencyShares",
        "string",
        docs::LIMITED_PL_NOMINAL_CONCURRENCY_SHARES,
    ),
    col("Queues", "string", docs::QUEUING_QUEUES),
    col("HandSize", "string", docs::QUEUING_HAND_SIZE),
    col(
        "QueueLengthLimit",
        "string",
        docs::QUEUING_QUEUE_LENGTH_LIMIT,
    ),
    AGE_COLUMN,
];

pub(super) fn columns(resource: &str) -> Option<&'static [Column]> {
    Some(match resource {
        "flowschemas" => FLOW_SCHEMA_COLUMNS,
        "prioritylevelconfigurations" => PRIORITY_LEVEL_COLUMNS,
        _ => return None,
    })
}

pub(super) fn row(resource: &str, obj: &Value) -> Option<Row> {
    Some(match resource {
        "flowschemas" => flow_schema_row(obj),
        "prioritylevelconfigurations" => priority_level_row(obj),
        _ => return None,
    })
}

fn flow_schema_row(obj: &Value) -> Row {
    let distinguisher = match get(obj, "/spec/distinguisherMethod") {
        Some(d) => str_at(d, "/type").to_string(),
        None => "<none>".to_string(),
    };
    let missing = arr_at(obj, "/status/conditions")
        .iter()
        .find(|c| str_at(c, "/type") == "Dangling")
        .map(|c| str_at(c, "/status").to_string())
        .unwrap_or_else(|| "?".to_string());
    cells(vec![
        name(obj),
        text(str_at(obj, "/spec/priorityLevelConfiguration/name")),
        Cell::Int(int_at(obj, "/spec/matchingPrecedence")),
        text(distinguisher),
        age(obj),
        text(missing),
    ])
}

fn priority_level_row(obj: &Value) -> Row {
    let none = || text("<none>");
    let (mut shares, mut queues, mut hand_size, mut queue_length) =
        (none(), none(), none(), none());
    if let Some(limited) = get(obj, "/spec/limited") {
        shares = Cell::Int(opt_int(limited, "/nominalConcurrencyShares").unwrap_or(0));
        if let Some(q) = get(limited, "/limitResponse/queuing") {
            queues = Cell::Int(int_at(q, "/queues"));
            hand_size = Cell::Int(int_at(q, "/handSize"));
            queue_length = Cell::Int(int_at(q, "/queueLengthLimit"));
        }
    }
    cells(vec![
        name(obj),
        text(str_at(obj, "/spec/type")),
        shares,
        queues,
        hand_size,
        queue_length,
        age(obj),
    ])
}
