use super::*;

fn opts<'a>(manager: &'a str, force: bool) -> ApplyOptions<'a> {
    ApplyOptions {
        manager,
        api_version: "apps/v1",
        subresource: "",
        force,
        now: "2025-01-01T00:00:00Z",
    }
}

fn deployment(replicas: i64, image: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "nginx", "image": image}]}}}})
}

fn empty() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"}})
}

fn entry<'a>(obj: &'a Value, manager: &str) -> &'a Value {
    obj["metadata"]["managedFields"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["manager"] == manager))
        .unwrap_or_else(|| panic!("no entry for {manager}: {obj}"))
}

#[test]
fn create_on_apply_owns_exactly_the_applied_fields_in_upstreams_syntax() {
    let out = apply(&empty(), &deployment(2, "nginx:1"), &opts("kubectl", false)).unwrap();
    assert_eq!(out["spec"]["replicas"], 2);
    let e = entry(&out, "kubectl");
    assert_eq!(e["operation"], "Apply");
    assert_eq!(e["apiVersion"], "apps/v1");
    assert_eq!(e["time"], "2025-01-01T00:00:00Z");
    assert_eq!(
        e["fieldsV1"],
        json!({
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {"f:replicas": {}, "f:selector": {},
                "f:template": {"f:metadata": {"f:labels": {"f:app": {}}},
                    "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}
        })
    );
}

#[test]
fn a_changed_field_owned_by_another_manager_is_a_conflict_with_upstreams_message() {
    let mut live = deployment(2, "nginx:1");
    crate::managed_fields::record(
        &mut live,
        None,
        "kubectl-client-side-apply",
        "Update",
        "apps/v1",
        "",
        "t0",
    );
    let err = apply(&live, &deployment(3, "nginx:1"), &opts("ssa", false)).unwrap_err();
    assert_eq!(
        err,
        ApplyError::Conflicts(vec![Conflict {
            manager: "\"kubectl-client-side-apply\" using apps/v1".into(),
            field: ".spec.replicas".into(),
        }])
    );
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas"
    );
    // The same value is shared ownership, not a conflict.
    let same = apply(&live, &deployment(2, "nginx:1"), &opts("ssa", false)).unwrap();
    let ssa = entry(&same, "ssa");
    assert_eq!(ssa["fieldsV1"]["f:spec"]["f:replicas"], json!({}));
    let csa = entry(&same, "kubectl-client-side-apply");
    assert_eq!(csa["fieldsV1"]["f:spec"]["f:replicas"], json!({}));
}

#[test]
fn several_conflicts_are_listed_per_manager() {
    let mut live = deployment(2, "nginx:1");
    crate::managed_fields::record(&mut live, None, "a", "Update", "apps/v1", "", "t0");
    let err = apply(&live, &deployment(3, "nginx:2"), &opts("b", false)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 2 conflicts: conflicts with \"a\" using apps/v1:\n- .spec.replicas\n- .spec.template.spec.containers[name=\"nginx\"].image"
    );
}

#[test]
fn force_takes_ownership_from_the_other_manager() {
    let mut live = deployment(2, "nginx:1");
    crate::managed_fields::record(&mut live, None, "other", "Update", "apps/v1", "", "t0");
    let out = apply(&live, &deployment(5, "nginx:1"), &opts("ssa", true)).unwrap();
    assert_eq!(out["spec"]["replicas"], 5);
    assert!(
        entry(&out, "other")["fieldsV1"]["f:spec"]
            .get("f:replicas")
            .is_none()
    );
    assert_eq!(
        entry(&out, "ssa")["fieldsV1"]["f:spec"]["f:replicas"],
        json!({})
    );
}

#[test]
fn fields_the_manager_stops_applying_are_removed_unless_someone_else_owns_them() {
    let first = apply(&empty(), &deployment(2, "nginx:1"), &opts("ssa", false)).unwrap();
    let mut smaller = deployment(2, "nginx:1");
    smaller["metadata"]["labels"] = json!({});
    smaller["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("labels");
    smaller["spec"].as_object_mut().unwrap().remove("replicas");
    let out = apply(&first, &smaller, &opts("ssa", false)).unwrap();
    assert!(out["spec"].get("replicas").is_none(), "{out}");
    assert!(out["metadata"].get("labels").is_none(), "{out}");

    // Another applier shares the label: it stays.
    let shared = apply(&first, &deployment(2, "nginx:1"), &opts("other", false)).unwrap();
    let out = apply(&shared, &smaller, &opts("ssa", false)).unwrap();
    assert_eq!(out["metadata"]["labels"]["app"], "web");
    assert_eq!(out["spec"]["replicas"], 2);
}

#[test]
fn a_removed_list_item_goes_with_its_defaulted_fields() {
    let mut two = deployment(1, "nginx:1");
    two["spec"]["template"]["spec"]["containers"] = json!([
        {"name": "a", "image": "a"}, {"name": "b", "image": "b"}]);
    let mut live = apply(&empty(), &two, &opts("ssa", false)).unwrap();
    live["spec"]["template"]["spec"]["containers"][1]["terminationMessagePath"] =
        json!("/dev/termination-log");
    let mut one = two.clone();
    one["spec"]["template"]["spec"]["containers"] = json!([{"name": "a", "image": "a"}]);
    let out = apply(&live, &one, &opts("ssa", false)).unwrap();
    let names: Vec<&str> = out["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a"]);
}

#[test]
fn keyed_lists_merge_by_key_and_keep_the_applied_order() {
    let live = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "a", "image": "a", "terminationMessagePath": "/x"}, {"name": "z", "image": "z"}]}});
    let config = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "b", "image": "b"}, {"name": "a", "image": "a2"}]}});
    let out = apply(
        &live,
        &config,
        &ApplyOptions {
            api_version: "v1",
            ..opts("m", false)
        },
    )
    .unwrap();
    let cs = out["spec"]["containers"].as_array().unwrap();
    let names: Vec<&str> = cs.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["b", "a", "z"]);
    assert_eq!(cs[1]["image"], "a2");
    assert_eq!(
        cs[1]["terminationMessagePath"], "/x",
        "merged, not replaced"
    );
}

#[test]
fn set_lists_merge_by_value_and_atomic_lists_are_replaced() {
    let live = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "finalizers": ["a", "b"]},
        "spec": {"containers": [{"name": "c", "image": "i", "command": ["x", "y"]}]}});
    let config = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "finalizers": ["c"]},
        "spec": {"containers": [{"name": "c", "command": ["z"]}]}});
    let out = apply(
        &live,
        &config,
        &ApplyOptions {
            api_version: "v1",
            ..opts("m", false)
        },
    )
    .unwrap();
    assert_eq!(out["metadata"]["finalizers"], json!(["a", "b", "c"]));
    assert_eq!(out["spec"]["containers"][0]["command"], json!(["z"]));
    let f = &entry(&out, "m")["fieldsV1"];
    assert_eq!(f["f:metadata"]["f:finalizers"]["v:\"c\""], json!({}));
}

#[test]
fn unknown_fields_and_missing_keys_are_schema_errors_as_upstream_words_them() {
    let mut bad = deployment(1, "x");
    bad["spec"]["replicaz"] = json!(1);
    let err = apply(&empty(), &bad, &opts("m", false)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to create typed patch object (default/web; apps/v1, Kind=Deployment): .spec.replicaz: field not declared in schema"
    );
    let mut nokey = deployment(1, "x");
    nokey["spec"]["template"]["spec"]["containers"] = json!([{"image": "x"}]);
    let err = apply(&empty(), &nokey, &opts("m", false)).unwrap_err();
    assert!(
        err.to_string().ends_with(
            ".spec.template.spec.containers: element 0: associative list with keys has an element that omits key field \"name\" (and doesn't have default value)"
        ),
        "{err}"
    );
    let mut dup = deployment(1, "x");
    dup["spec"]["template"]["spec"]["containers"] =
        json!([{"name": "a", "image": "x"}, {"name": "a", "image": "y"}]);
    let err = apply(&empty(), &dup, &opts("m", false)).unwrap_err();
    assert!(
        err.to_string()
            .ends_with(".spec.template.spec.containers: duplicate entries for key [name=\"a\"]"),
        "{err}"
    );
}

#[test]
fn port_keys_default_their_protocol() {
    let live = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080}]}});
    let config = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 80, "targetPort": 9090}]}});
    let out = apply(
        &live,
        &config,
        &ApplyOptions {
            api_version: "v1",
            ..opts("m", false)
        },
    )
    .unwrap();
    assert_eq!(out["spec"]["ports"].as_array().unwrap().len(), 1);
    assert_eq!(out["spec"]["ports"][0]["targetPort"], 9090);
    assert!(
        entry(&out, "m")["fieldsV1"]["f:spec"]["f:ports"]
            .get("k:{\"port\":80,\"protocol\":\"TCP\"}")
            .is_some()
    );
}

#[test]
fn kubectl_takes_fields_its_last_applied_annotation_holds() {
    let mut live = deployment(2, "nginx:1");
    let annotation = serde_json::to_string(&deployment(2, "nginx:1")).unwrap();
    live["metadata"]["annotations"] = json!({LAST_APPLIED: annotation});
    crate::managed_fields::record(
        &mut live,
        None,
        "kubectl-client-side-apply",
        "Update",
        "apps/v1",
        "",
        "t0",
    );
    let out = apply(&live, &deployment(3, "nginx:1"), &opts("kubectl", false)).unwrap();
    assert_eq!(out["spec"]["replicas"], 3);
    let kept: Value = serde_json::from_str(
        out["metadata"]["annotations"][LAST_APPLIED]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        kept["spec"]["replicas"], 3,
        "the annotation follows the apply"
    );
    // Another manager name gets no such pass.
    assert!(matches!(
        apply(&live, &deployment(3, "nginx:1"), &opts("other", false)),
        Err(ApplyError::Conflicts(_))
    ));
}

#[test]
fn status_applies_own_only_status() {
    let live = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 1}, "status": {"replicas": 0}});
    let config = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "status": {"replicas": 1, "readyReplicas": 1}});
    let out = apply(
        &live,
        &config,
        &ApplyOptions {
            subresource: "status",
            ..opts("ctl", false)
        },
    )
    .unwrap();
    let e = entry(&out, "ctl");
    assert_eq!(e["subresource"], "status");
    assert_eq!(
        e["fieldsV1"],
        json!({"f:status": {"f:readyReplicas": {}, "f:replicas": {}}})
    );
}

#[test]
fn reapplying_the_same_configuration_keeps_the_entry_time() {
    let first = apply(&empty(), &deployment(1, "x"), &opts("m", false)).unwrap();
    let again = apply(
        &first,
        &deployment(1, "x"),
        &ApplyOptions {
            now: "2030-01-01T00:00:00Z",
            ..opts("m", false)
        },
    )
    .unwrap();
    assert_eq!(entry(&again, "m")["time"], "2025-01-01T00:00:00Z");
    assert_eq!(first, again);
}
