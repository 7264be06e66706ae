//! placeholder
mod support;
#[test]
fn placeholder_is_replaced() {
    let _ = support::KUBECTL_DIR;
}
