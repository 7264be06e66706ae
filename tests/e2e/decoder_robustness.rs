//! Malformed, huge and deeply nested bodies sent over the wire to a real `ferrokube server`
//! with the real kubectl: each gets its Status answer (printed by kubectl as upstream's
//! would be) within a bounded time, and the server keeps serving. The exhaustive property test
//! of the decoders runs in process (crates/apiserver/tests/decoder_robustness.rs); this checks
//! the TLS and HTTP path around them, including clients that stall or send garbage.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::Server;

fn server_port(s: &Server) -> u16 {
    let kc = std::fs::read_to_string(&s.kubeconfig).expect("kubeconfig");
    let server = kc
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: "))
        .expect("server line");
    server
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .expect("port")
}

#[test]
fn bad_bodies_over_tls_get_status_answers_and_the_server_keeps_serving() {
    let s = Server::start();
    let k = s.kubectl("1.33");
    let path = "/api/v1/namespaces/default/configmaps";
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated",
            b"{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"na".to_vec(),
            "(BadRequest)",
        ),
        ("not an object", b"[1,2,3]".to_vec(), "(BadRequest)"),
        (
            "deep",
            {
                let mut b = "[".repeat(200_000).into_bytes();
                b.extend("]".repeat(200_000).into_bytes());
                b
            },
            "(BadRequest)",
        ),
        (
            "huge",
            {
                let mut b = b"{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"big\"},\"data\":{\"a\":\"".to_vec();
                b.extend(std::iter::repeat_n(b'x', 4 * 1024 * 1024));
                b.extend_from_slice(b"\"}}");
                b
            },
            "(RequestEntityTooLarge)",
        ),
        (
            "wrong kind",
            br#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"x"}}"#.to_vec(),
            "(BadRequest)",
        ),
        (
            "bad value type",
            br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":{"a":1}}"#
                .to_vec(),
            "(BadRequest)",
        ),
    ];
    for (what, body, reason) in cases {
        let file = s.dir.join(format!("{what}.json"));
        std::fs::write(&file, body).expect("write body");
        let started = Instant::now();
        let r = k.run(&[
            "create",
            "--raw",
            path,
            "-f",
            &file.display().to_string(),
            "--request-timeout=20s",
        ]);
        assert!(!r.status.success(), "{what}: accepted: {}", r.stdout);
        assert!(
            r.stderr.contains(&format!("Error from server {reason}")),
            "{what}: {}",
            r.stderr
        );
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{what} took {:?}",
            started.elapsed()
        );
    }

    // Clients that stall mid-handshake or send garbage instead of TLS do not block others.
    let port = server_port(&s);
    let mut stalled = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x02])
        .expect("partial hello");
    let mut garbage = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let _ = garbage.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    garbage.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut sink = Vec::new();
    let _ = garbage.read_to_end(&mut sink);
    let started = Instant::now();
    assert_eq!(k.ok(&["get", "--raw", "/readyz"]).trim(), "ok");
    assert!(started.elapsed() < Duration::from_secs(10));
    k.ok(&["create", "configmap", "after", "--from-literal=a=b"]);
    drop(stalled);
}
