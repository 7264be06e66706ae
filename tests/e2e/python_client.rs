//! The official Python client against a real `ferrokube server`: tests/e2e/python/test_client.py.

mod support;

use std::path::PathBuf;
use std::process::Command;

use support::Server;

fn python() -> PathBuf {
    if let Ok(p) = std::env::var("FERROKUBE_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    assert!(
        venv.exists(),
        "{} is missing: create it with `python3 -m venv .venv && .venv/bin/pip install kubernetes` (.ci/run does)",
        venv.display()
    );
    venv
}

fn run_suite(file: &str) {
    let s = Server::start();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/e2e/python")
        .join(file);
    let out = Command::new(python())
        .arg(&script)
        .env("KUBECONFIG", &s.kubeconfig)
        .output()
        .expect("run python");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python client suite {file} failed:\n{stderr}\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(stderr.contains("\nOK"), "{stderr}");
}

#[test]
fn python_client_suite_passes() {
    run_suite("test_client.py");
}

#[test]
fn every_kind_round_trips_through_the_python_client() {
    run_suite("test_kinds.py");
}
