//! ferrokube-apiserver.
