//! ferrokube-client.
