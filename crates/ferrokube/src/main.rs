//! The ferrokube binary: command-line wiring only.

fn main() {}
