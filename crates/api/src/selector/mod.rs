//! Label and field selectors: parsing the query-string forms, matching objects, and the field
//! labels each kind supports (upstream's `GetAttrs` / field label conversion functions).

pub mod fields;
pub mod labels;

pub use fields::{FieldSelector, field_set};
pub use labels::{LabelSelector, Requirement};
