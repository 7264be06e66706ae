//! ferrokube-api: what the Kubernetes API *is*, with no I/O.
//!
//! The kinds registry (group/version/resource, scope, short names, categories, verbs,
//! subresources), defaulting and validation as upstream stores and checks objects, label and
//! field selectors, merge / JSON / strategic-merge patch, protobuf request decoding, table
//! printers, and the `Status` errors every failure becomes. Objects are handled as
//! `serde_json::Value` so that every kind goes through the same code.

pub mod apply;
pub mod defaults;
pub mod error;
pub mod managed_fields;
pub mod patch;
pub mod printers;
pub mod protobuf;
pub mod quantity;
pub mod quota;
pub mod resources;
pub mod schema;
pub mod selector;
pub mod time;
pub mod validation;

pub use error::{ApiError, FieldError, Result};
