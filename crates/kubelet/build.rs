//! Builds the pod sandbox ("pause") program as a static executable; the kubelet embeds it and
//! makes the sandbox image from it, so no registry is ever needed for pods to start.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = PathBuf::from("pause/pause.c");
    println!("cargo:rerun-if-changed={}", src.display());
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("pause");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args(["-static", "-Os", "-s", "-Wall", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .unwrap_or_else(|e| {
            panic!("running {cc} to build the pause program: {e} (install gcc and libc6-dev)")
        });
    assert!(
        status.success(),
        "{cc} -static failed building the pause program (needs libc6-dev for libc.a)"
    );
}
