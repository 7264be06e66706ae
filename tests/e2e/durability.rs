//! A restart never loses an acknowledged write: create objects, `kill -9` the server, start it
//! again on the same data dir, and every acknowledged object is there with resourceVersions that
//! keep increasing.

mod support;

use support::{Server, table};

fn configmaps(n: usize) -> String {
    (0..n)
        .map(|i| format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\ndata:\n  i: \"{i}\"\n---\n"))
        .collect()
}

fn max_rv(k: &support::Kubectl) -> u64 {
    k.ok(&[
        "get",
        "cm",
        "-o",
        "jsonpath={range .items[*]}{.metadata.resourceVersion}{\"\\n\"}{end}",
    ])
    .lines()
    .filter_map(|l| l.trim().parse::<u64>().ok())
    .max()
    .unwrap_or(0)
}

#[test]
fn kill_9_keeps_every_acknowledged_object() {
    let mut s = Server::start();
    let k = s.kubectl("1.33");
    let created = k.ok_stdin(&["create", "-f", "-", "--validate=false"], &configmaps(200));
    assert_eq!(created.lines().count(), 200, "{created}");
    k.ok(&["label", "cm", "cm-7", "changed=yes"]);
    let before = max_rv(&k);
    s.kill9();
    s.restart();
    let k = s.kubectl("1.33");
    let rows = table(&k.ok(&["get", "cm", "--no-headers"]));
    let names: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    for i in 0..200 {
        assert!(
            names.contains(&format!("cm-{i}").as_str()),
            "cm-{i} lost after kill -9"
        );
    }
    assert_eq!(
        k.ok(&[
            "get",
            "cm",
            "cm-7",
            "-o",
            "jsonpath={.metadata.labels.changed}"
        ]),
        "yes"
    );
    assert_eq!(max_rv(&k), before, "resourceVersions survive the restart");
    k.ok(&["label", "cm", "cm-8", "after=restart"]);
    let rv8: u64 = k
        .ok(&[
            "get",
            "cm",
            "cm-8",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ])
        .parse()
        .unwrap();
    assert!(
        rv8 > before,
        "resourceVersion went backwards after restart: {rv8} <= {before}"
    );
}
