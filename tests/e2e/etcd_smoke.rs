//! The everyday kubectl smoke test against a server whose datastore is a real etcd.

mod support;

use std::time::{Duration, Instant};

use support::{EtcdProcess, Server, table, testdata};

fn etcd() -> EtcdProcess {
    let mut e = EtcdProcess::start();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(e.endpoint.trim_start_matches("http://")).is_err() {
        if let Some(status) = e.exited() {
            panic!("etcd exited with {status}:\n{}", e.log());
        }
        assert!(
            Instant::now() < deadline,
            "etcd did not listen within 30s:\n{}",
            e.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    e
}

#[test]
fn kubectl_smoke_test_passes_on_etcd() {
    let e = etcd();
    let endpoint = e.datastore_endpoint();
    let mut s = Server::start_with(&["--datastore-endpoint", &endpoint]);
    for v in ["1.27", "1.33"] {
        let k = s.kubectl(v);
        let ns = table(&k.ok(&["get", "ns", "--no-headers"]));
        for system in ["default", "kube-node-lease", "kube-public", "kube-system"] {
            assert!(
                ns.iter().any(|r| r[0] == system && r[1] == "Active"),
                "{system} missing: {ns:?}"
            );
        }
        let name = format!("dev{}", v.replace('.', ""));
        k.ok(&["create", "namespace", &name]);
        k.ok(&["create", "-f", &testdata("web-pod.yaml"), "-n", &name]);
        k.ok(&["label", "pod", "web", "-n", &name, "extra=1"]);
        let rows = table(&k.ok(&["get", "pods", "-n", &name, "-l", "extra=1"]));
        assert_eq!(rows[1][0], "web");
        k.ok(&[
            "create",
            "-f",
            &testdata("nginx-deployment.yaml"),
            "-n",
            &name,
        ]);
        k.ok(&[
            "scale",
            "deploy",
            "nginx-deployment",
            "--replicas=3",
            "-n",
            &name,
        ]);
        assert_eq!(
            k.ok(&[
                "get",
                "deploy",
                "nginx-deployment",
                "-n",
                &name,
                "-o",
                "jsonpath={.spec.replicas}"
            ]),
            "3"
        );
        assert!(
            k.fails(&["get", "pod", "nope", "-n", &name])
                .contains(r#"pods "nope" not found"#)
        );
        k.ok(&["delete", "pod", "web", "-n", &name]);
    }
    // A restart of the server reads everything back from etcd.
    s.restart();
    let k = s.kubectl("1.33");
    assert_eq!(
        k.ok(&["get", "deploy", "-n", "dev133", "-o", "name"])
            .trim(),
        "deployment.apps/nginx-deployment"
    );
    drop(s);
    drop(e);
}
