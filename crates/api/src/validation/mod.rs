//! Validation (placeholder until the validation work lands).

use serde_json::Value;

use crate::FieldError;

pub fn validate_create(_g: &str, _v: &str, _k: &str, _obj: &Value) -> Vec<FieldError> {
    Vec::new()
}

pub fn validate_update(_g: &str, _v: &str, _k: &str, _new: &Value, _old: &Value) -> Vec<FieldError> {
    Vec::new()
}

pub fn validate_object_meta_for(_info: &crate::resources::ResourceInfo, _obj: &Value) -> Vec<FieldError> {
    Vec::new()
}
