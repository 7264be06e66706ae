//! events.k8s.io: events, printed with the same columns as core events after upstream's
//! conversion to the internal Event (regarding -> involvedObject, note -> message,
//! deprecated* -> the legacy fields).

use serde_json::Value;

use super::core::{EVENT_COLUMNS, EventFields, event_row};
use super::util::{get, int_at, str_at, time_at};
use super::{Column, Row};

pub(super) fn columns(resource: &str) -> Option<&'static [Column]> {
    (resource == "events").then_some(EVENT_COLUMNS)
}

pub(super) fn row(resource: &str, obj: &Value) -> Option<Row> {
    (resource == "events").then(|| {
        event_row(&EventFields {
            obj,
            first_timestamp: time_at(obj, "/deprecatedFirstTimestamp"),
            last_timestamp: time_at(obj, "/deprecatedLastTimestamp"),
            event_time: time_at(obj, "/eventTime"),
            series: get(obj, "/series"),
            count: int_at(obj, "/deprecatedCount"),
            kind: str_at(obj, "/regarding/kind"),
            involved_name: str_at(obj, "/regarding/name"),
            field_path: str_at(obj, "/regarding/fieldPath"),
            type_: str_at(obj, "/type"),
            reason: str_at(obj, "/reason"),
            source_component: str_at(obj, "/deprecatedSource/component"),
            source_host: str_at(obj, "/deprecatedSource/host"),
            reporting_controller: str_at(obj, "/reportingController"),
            reporting_instance: str_at(obj, "/reportingInstance"),
            message: str_at(obj, "/note"),
        })
    })
}
