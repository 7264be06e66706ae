//! Scheme defaulting (placeholder until the defaulting work lands).

use serde_json::Value;

pub fn apply(_group: &str, _version: &str, _kind: &str, _obj: &mut Value) {}

pub fn generate_job_selector(_obj: &mut Value) {}
