//! ferrokube-apiserver.
pub mod openapi;
