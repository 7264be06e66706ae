//! ferrokube-bootstrap.
