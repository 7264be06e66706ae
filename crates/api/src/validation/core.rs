//! Core (`v1`) kinds: `pkg/apis/core/validation/validation.go`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::meta::{
    self, FIELD_IMMUTABLE, nonnegative, validate_annotations, validate_label_name,
    validate_label_selector, validate_labels,
};
use super::names;
use super::{
    Errs, Path, arr, boolean, immutable, int, invalid_go, obj, objs, opt_str, present, str_map,
    string, strs,
};
use crate::error::{FieldError, go_quote};
use crate::quantity::Quantity;

const FILE_MODE_ERR: &str = "must be a number between 0 and 0777 (octal), both inclusive";

pub(super) fn validate(
    errs: &mut Errs,
    kind: &str,
    m: &Map<String, Value>,
    old: Option<&Map<String, Value>>,
) {
    let spec_path = Path::new("spec");
    match kind {
        "Pod" => {
            let meta = obj(errs, m, "metadata", &Path::new("metadata"));
            let spec = obj(errs, m, "spec", &Path::new(""))
                .cloned()
                .unwrap_or_default();
            validate_pod_spec(errs, &spec, meta, &spec_path, true);
            match old {
                None => {
                    if !arr(errs, &spec, "ephemeralContainers", &spec_path).is_empty() {
                        errs.push(FieldError::forbidden(
                            spec_path.child("ephemeralContainers"),
                            "cannot be set on create",
                        ));
                    }
                    if !string(errs, &spec, "nodeName", &spec_path).is_empty()
                        && !arr(errs, &spec, "schedulingGates", &spec_path).is_empty()
                    {
                        errs.push(FieldError::forbidden(
                            spec_path.child("nodeName"),
                            "cannot be set until all schedulingGates have been cleared",
                        ));
                    }
                }
                Some(o) => pod_update(errs, m, o),
            }
        }
        "PodTemplate" => {
            let t = obj(errs, m, "template", &Path::new(""))
                .cloned()
                .unwrap_or_default();
            validate_pod_template_spec(errs, &t, &Path::new("template"));
        }
        "ReplicationController" => replication_controller(errs, m, old),
        "Service" => service(errs, m, old),
        "ConfigMap" => config_map(errs, m, old),
        "Secret" => secret(errs, m, old),
        "Namespace" => namespace(errs, m, old),
        "Node" => node(errs, m, old),
        "PersistentVolume" => persistent_volume(errs, m, old),
        "PersistentVolumeClaim" => persistent_volume_claim(errs, m, old),
        "ServiceAccount" => service_account(errs, m),
        "LimitRange" => limit_range(errs, m),
        "ResourceQuota" => resource_quota(errs, m),
        "Endpoints" => endpoints(errs, m),
        "Event" => event(errs, m),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Pods

/// `ValidatePodTemplateSpec`: labels, annotations and the pod spec of a template.
/// Upstream reports template label errors at `<template>.labels`, not `.metadata.labels`.
pub(super) fn validate_pod_template_spec(errs: &mut Errs, t: &Map<String, Value>, path: &Path) {
    let mpath = path.child("metadata");
    let meta = obj(errs, t, "metadata", path);
    if let Some(md) = meta {
        let labels = str_map(errs, md, "labels", &mpath);
        validate_labels(errs, &labels, &path.child("labels"));
        let ann = str_map(errs, md, "annotations", &mpath);
        validate_annotations(errs, &ann, &path.child("annotations"));
    }
    let spec = obj(errs, t, "spec", path).cloned().unwrap_or_default();
    validate_pod_spec(errs, &spec, None, &path.child("spec"), false);
}

/// `ValidatePodSpec`. `is_pod` adds the checks upstream makes only for Pods.
pub(super) fn validate_pod_spec(
    errs: &mut Errs,
    spec: &Map<String, Value>,
    pod_meta: Option<&Map<String, Value>>,
    path: &Path,
    is_pod: bool,
) {
    if present(spec, "terminationGracePeriodSeconds").is_none() {
        errs.push(FieldError::required(
            path.child("terminationGracePeriodSeconds"),
            "",
        ));
    }
    let volumes = validate_volumes(errs, spec, path);
    let restart = string(errs, spec, "restartPolicy", path);
    let mut names_seen = BTreeSet::new();
    validate_containers(
        errs,
        spec,
        "initContainers",
        &volumes,
        &mut names_seen,
        path,
        restart,
    );
    validate_containers(
        errs,
        spec,
        "containers",
        &volumes,
        &mut names_seen,
        path,
        restart,
    );
    validate_containers(
        errs,
        spec,
        "ephemeralContainers",
        &volumes,
        &mut names_seen,
        path,
        restart,
    );

    let rp = path.child("restartPolicy");
    match restart {
        "Always" | "OnFailure" | "Never" => {}
        "" => errs.push(FieldError::required(rp, "")),
        other => errs.push(FieldError::not_supported(
            rp,
            other,
            &["Always", "OnFailure", "Never"],
        )),
    }
    let dns = string(errs, spec, "dnsPolicy", path);
    let dp = path.child("dnsPolicy");
    match dns {
        "ClusterFirstWithHostNet" | "ClusterFirst" | "Default" | "None" => {}
        "" => errs.push(FieldError::required(dp, "")),
        other => errs.push(FieldError::not_supported(
            dp,
            other,
            &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        )),
    }
    if dns == "None" && obj(errs, spec, "dnsConfig", path).is_none() {
        errs.push(FieldError::required(
            path.child("dnsConfig"),
            "must provide `dnsConfig` when `dnsPolicy` is None",
        ));
    }
    let ns = str_map(errs, spec, "nodeSelector", path);
    validate_labels(errs, &ns, &path.child("nodeSelector"));
    if let Some(sc) = obj(errs, spec, "securityContext", path) {
        let scp = path.child("securityContext");
        for f in ["runAsUser", "runAsGroup", "fsGroup"] {
            if let Some(v) = int(errs, sc, f, &scp)
                && !(0..=2147483647).contains(&v)
            {
                errs.push(FieldError::invalid(
                    scp.child(f),
                    v,
                    names::inclusive_range_error(0, 2147483647),
                ));
            }
        }
    }
    for (p, s) in objs(errs, spec, "imagePullSecrets", path) {
        if string(errs, s, "name", &p).is_empty() {
            errs.push(FieldError::required(p.child("name"), ""));
        }
    }
    if let Some(a) = obj(errs, spec, "affinity", path) {
        validate_affinity(errs, a, &path.child("affinity"));
    }
    for (p, g) in objs(errs, spec, "readinessGates", path) {
        let ct = string(errs, g, "conditionType", &p);
        for msg in names::is_qualified_name(ct) {
            errs.push(FieldError::invalid(p.child("conditionType"), ct, msg));
        }
    }
    let mut gates = BTreeSet::new();
    for (p, g) in objs(errs, spec, "schedulingGates", path) {
        let name = string(errs, g, "name", &p);
        for msg in names::is_qualified_name(name) {
            errs.push(FieldError::invalid(p.child("name"), name, msg));
        }
        if !gates.insert(name) {
            errs.push(FieldError::duplicate(p.child("name"), name));
        }
    }
    validate_topology_spread(errs, spec, path);
    if let Some(sa) = opt_str(errs, spec, "serviceAccountName", path).filter(|s| !s.is_empty()) {
        for msg in names::name_is_dns_subdomain(sa, false) {
            errs.push(FieldError::invalid(
                path.child("serviceAccountName"),
                sa,
                msg,
            ));
        }
    }
    if let Some(n) = opt_str(errs, spec, "nodeName", path).filter(|s| !s.is_empty()) {
        for msg in names::name_is_dns_subdomain(n, false) {
            errs.push(FieldError::invalid(path.child("nodeName"), n, msg));
        }
    }
    if let Some(v) = int(errs, spec, "activeDeadlineSeconds", path)
        && !(1..=i64::from(i32::MAX)).contains(&v)
    {
        errs.push(FieldError::invalid(
            path.child("activeDeadlineSeconds"),
            v,
            names::inclusive_range_error(1, i64::from(i32::MAX)),
        ));
    }
    for f in ["hostname", "subdomain"] {
        if let Some(h) = opt_str(errs, spec, f, path).filter(|s| !s.is_empty()) {
            for msg in names::is_dns1123_label(h) {
                errs.push(FieldError::invalid(path.child(f), h, msg));
            }
        }
    }
    validate_tolerations(errs, spec, path);
    for (p, ha) in objs(errs, spec, "hostAliases", path) {
        let ip = string(errs, ha, "ip", &p);
        for msg in names::is_valid_ip_msgs(ip) {
            errs.push(FieldError::invalid(p.child("ip"), ip, msg));
        }
        for (i, h) in strs(errs, ha, "hostnames", &p).iter().enumerate() {
            for msg in names::is_dns1123_subdomain(h) {
                errs.push(FieldError::invalid(p.child("hostnames").index(i), *h, msg));
            }
        }
    }
    if let Some(pc) = opt_str(errs, spec, "priorityClassName", path).filter(|s| !s.is_empty()) {
        for msg in names::name_is_dns_subdomain(pc, false) {
            errs.push(FieldError::invalid(
                path.child("priorityClassName"),
                pc,
                msg,
            ));
        }
    }
    if let Some(rc) = opt_str(errs, spec, "runtimeClassName", path) {
        for msg in names::name_is_dns_subdomain(rc, false) {
            errs.push(FieldError::invalid(path.child("runtimeClassName"), rc, msg));
        }
    }
    if let Some(pp) = opt_str(errs, spec, "preemptionPolicy", path)
        && !matches!(pp, "PreemptLowerPriority" | "Never")
    {
        errs.push(FieldError::not_supported(
            path.child("preemptionPolicy"),
            pp,
            &["Never", "PreemptLowerPriority"],
        ));
    }
    if let Some(os) = obj(errs, spec, "os", path) {
        let name = string(errs, os, "name", &path.child("os"));
        if name.is_empty() {
            errs.push(FieldError::required(path.child("os").child("name"), ""));
        } else if !matches!(name, "linux" | "windows") {
            errs.push(FieldError::not_supported(
                path.child("os").child("name"),
                name,
                &["linux", "windows"],
            ));
        }
    }
    if let Some(ov) = obj(errs, spec, "overhead", path) {
        resource_list(errs, ov, &path.child("overhead"), ResourceKind::Container);
    }
    if is_pod && string(errs, spec, "serviceAccountName", path).is_empty() {
        for (vp, v) in objs(errs, spec, "volumes", path) {
            let Some(pr) = v.get("projected").and_then(Value::as_object) else {
                continue;
            };
            for (i, src) in pr
                .get("sources")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                if src.get("serviceAccountToken").is_some_and(|t| !t.is_null()) {
                    errs.push(FieldError::forbidden(
                        vp.child("projected")
                            .child("sources")
                            .index(i)
                            .child("serviceAccountToken"),
                        "must not be specified when serviceAccountName is not set",
                    ));
                }
            }
        }
    }
    let _ = pod_meta;
    if boolean(errs, spec, "hostNetwork", path) == Some(true) {
        for key in ["containers", "initContainers"] {
            for (cp, c) in objs(errs, spec, key, path) {
                for (pp, port) in objs(errs, c, "ports", &cp) {
                    let hp = port.get("hostPort").and_then(Value::as_i64).unwrap_or(0);
                    let ctr = port
                        .get("containerPort")
                        .and_then(Value::as_i64)
                        .unwrap_or(0);
                    if hp != ctr {
                        errs.push(FieldError::invalid(
                            pp.child("containerPort"),
                            ctr,
                            "must match `hostPort` when `hostNetwork` is true",
                        ));
                    }
                }
            }
        }
    }
}

/// Volume names that validated, with their source kind.
type Volumes = BTreeMap<String, String>;

const VOLUME_SOURCES: &[&str] = &[
    "emptyDir",
    "hostPath",
    "gitRepo",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "flocker",
    "persistentVolumeClaim",
    "rbd",
    "cinder",
    "cephfs",
    "quobyte",
    "downwardAPI",
    "fc",
    "flexVolume",
    "configMap",
    "azureFile",
    "vsphereVolume",
    "photonPersistentDisk",
    "portworxVolume",
    "azureDisk",
    "storageos",
    "projected",
    "scaleIO",
    "csi",
    "ephemeral",
    "image",
];

fn validate_volumes(errs: &mut Errs, spec: &Map<String, Value>, path: &Path) -> Volumes {
    let mut vols = Volumes::new();
    for (vp, v) in objs(errs, spec, "volumes", path) {
        let mut el = Errs::default();
        let name = string(&mut el, v, "name", &vp);
        let mut found: Option<&str> = None;
        for src in VOLUME_SOURCES {
            if let Some(s) = present(v, src) {
                if found.is_some() {
                    el.push(FieldError::forbidden(
                        vp.child(src),
                        "may not specify more than 1 volume type",
                    ));
                } else {
                    found = Some(src);
                    volume_source(&mut el, src, s, &vp.child(src));
                }
            }
        }
        if found.is_none() {
            el.push(FieldError::required(&vp, "must specify a volume type"));
        }
        if name.is_empty() {
            el.push(FieldError::required(vp.child("name"), ""));
        } else {
            for msg in names::is_dns1123_label(name) {
                el.push(FieldError::invalid(vp.child("name"), name, msg));
            }
        }
        if vols.contains_key(name) {
            el.push(FieldError::duplicate(vp.child("name"), name));
        }
        if el.0.is_empty() {
            vols.insert(name.to_string(), found.unwrap_or("").to_string());
        } else {
            errs.0.extend(el.0);
        }
    }
    vols
}

fn file_mode(errs: &mut Errs, m: &Map<String, Value>, key: &str, path: &Path) {
    if let Some(mode) = int(errs, m, key, path)
        && !(0..=0o777).contains(&mode)
    {
        errs.push(FieldError::invalid(path.child(key), mode, FILE_MODE_ERR));
    }
}

fn key_to_path_items(errs: &mut Errs, m: &Map<String, Value>, path: &Path) {
    for (ip, item) in objs(errs, m, "items", path) {
        if string(errs, item, "key", &ip).is_empty() {
            errs.push(FieldError::required(ip.child("key"), ""));
        }
        let p = string(errs, item, "path", &ip);
        local_descending_path(errs, p, &ip.child("path"));
        file_mode(errs, item, "mode", &ip);
    }
}

/// `validateLocalDescendingPath` (plus the non-empty check of `validateVolumeSourcePath`).
fn local_descending_path(errs: &mut Errs, p: &str, path: &Path) {
    if p.is_empty() {
        errs.push(FieldError::required(path, ""));
        return;
    }
    if p.starts_with('/') {
        errs.push(FieldError::invalid(path, p, "must be a relative path"));
    }
    if p.split('/').any(|s| s == "..") {
        errs.push(FieldError::invalid(path, p, "must not contain '..'"));
    }
}

fn volume_source(errs: &mut Errs, kind: &str, s: &Value, path: &Path) {
    let Some(m) = s.as_object() else {
        errs.type_invalid(path, s, "object");
        return;
    };
    match kind {
        "emptyDir" => {
            if let Some(medium) = opt_str(errs, m, "medium", path)
                && !matches!(medium, "" | "Memory" | "HugePages")
                && !medium.starts_with("HugePages-")
            {
                errs.push(FieldError::not_supported(
                    path.child("medium"),
                    medium,
                    &["", "Memory", "HugePages"],
                ));
            }
            if let Some(q) = present(m, "sizeLimit") {
                match Quantity::from_json(q) {
                    Ok(q) if q.sign() < 0 => errs.push(FieldError::forbidden(
                        path.child("sizeLimit"),
                        "SizeLimit field must be a valid resource quantity",
                    )),
                    Ok(_) => {}
                    Err(e) => errs.push(FieldError::invalid(
                        path.child("sizeLimit"),
                        q.clone(),
                        e.to_string(),
                    )),
                }
            }
        }
        "hostPath" => {
            let p = string(errs, m, "path", path);
            if p.is_empty() {
                errs.push(FieldError::required(path.child("path"), ""));
            }
            if let Some(t) = opt_str(errs, m, "type", path) {
                let ok = [
                    "",
                    "DirectoryOrCreate",
                    "Directory",
                    "FileOrCreate",
                    "File",
                    "Socket",
                    "CharDevice",
                    "BlockDevice",
                ];
                if !ok.contains(&t) {
                    errs.push(FieldError::not_supported(path.child("type"), t, &ok));
                }
            }
        }
        "secret" => {
            if string(errs, m, "secretName", path).is_empty() {
                errs.push(FieldError::required(path.child("secretName"), ""));
            }
            file_mode(errs, m, "defaultMode", path);
            key_to_path_items(errs, m, path);
        }
        "configMap" => {
            if string(errs, m, "name", path).is_empty() {
                errs.push(FieldError::required(path.child("name"), ""));
            }
            file_mode(errs, m, "defaultMode", path);
            key_to_path_items(errs, m, path);
        }
        "persistentVolumeClaim" if string(errs, m, "claimName", path).is_empty() => {
            errs.push(FieldError::required(path.child("claimName"), ""));
        }
        "nfs" => {
            if string(errs, m, "server", path).is_empty() {
                errs.push(FieldError::required(path.child("server"), ""));
            }
            let p = string(errs, m, "path", path);
            if p.is_empty() {
                errs.push(FieldError::required(path.child("path"), ""));
            } else if !p.starts_with('/') {
                errs.push(FieldError::invalid(
                    path.child("path"),
                    p,
                    "must be an absolute path",
                ));
            }
        }
        "downwardAPI" => {
            file_mode(errs, m, "defaultMode", path);
            for (ip, item) in objs(errs, m, "items", path) {
                let p = string(errs, item, "path", &ip);
                local_descending_path(errs, p, &ip.child("path"));
                file_mode(errs, item, "mode", &ip);
            }
        }
        "projected" => {
            file_mode(errs, m, "defaultMode", path);
            for (sp, src) in objs(errs, m, "sources", path) {
                let n = [
                    "secret",
                    "configMap",
                    "downwardAPI",
                    "serviceAccountToken",
                    "clusterTrustBundle",
                ]
                .iter()
                .filter(|k| present(src, k).is_some())
                .count();
                if n > 1 {
                    errs.push(FieldError::forbidden(
                        &sp,
                        "may not specify more than 1 volume type per source",
                    ));
                }
                if let Some(t) = obj(errs, src, "serviceAccountToken", &sp) {
                    let tp = sp.child("serviceAccountToken");
                    if let Some(e) = int(errs, t, "expirationSeconds", &tp) {
                        if e < 600 {
                            errs.push(FieldError::invalid(
                                tp.child("expirationSeconds"),
                                e,
                                "may not specify a duration less than 10 minutes",
                            ));
                        } else if e > 1 << 32 {
                            errs.push(FieldError::invalid(
                                tp.child("expirationSeconds"),
                                e,
                                "may not specify a duration larger than 2^32 seconds",
                            ));
                        }
                    }
                    let p = string(errs, t, "path", &tp);
                    local_descending_path(errs, p, &tp.child("path"));
                }
            }
        }
        "csi" if string(errs, m, "driver", path).is_empty() => {
            errs.push(FieldError::required(path.child("driver"), ""));
        }
        "ephemeral" => match obj(errs, m, "volumeClaimTemplate", path) {
            None => errs.push(FieldError::required(path.child("volumeClaimTemplate"), "")),
            Some(t) => {
                let tp = path.child("volumeClaimTemplate");
                let empty = Map::new();
                let spec = obj(errs, t, "spec", &tp).unwrap_or(&empty);
                pvc_spec(errs, spec, &tp.child("spec"));
            }
        },
        "image" if string(errs, m, "reference", path).is_empty() => {
            errs.push(FieldError::required(path.child("reference"), ""));
        }
        _ => {}
    }
}

fn validate_containers(
    errs: &mut Errs,
    spec: &Map<String, Value>,
    key: &str,
    volumes: &Volumes,
    all_names: &mut BTreeSet<String>,
    path: &Path,
    restart_policy: &str,
) {
    let list = objs(errs, spec, key, path);
    if key == "containers" && list.is_empty() {
        errs.push(FieldError::required(path.child(key), ""));
        return;
    }
    let is_init = key == "initContainers";
    let is_ephemeral = key == "ephemeralContainers";
    for (cp, c) in &list {
        let name = string(errs, c, "name", cp);
        let np = cp.child("name");
        if name.is_empty() {
            errs.push(FieldError::required(&np, ""));
        } else {
            for msg in names::is_dns1123_label(name) {
                errs.push(FieldError::invalid(&np, name, msg));
            }
        }
        let image = string(errs, c, "image", cp);
        if image.len() != image.trim().len() {
            errs.push(FieldError::invalid(
                cp.child("image"),
                image,
                "must not have leading or trailing whitespace",
            ));
        }
        container_ports(errs, c, cp);
        container_env(errs, c, cp);
        volume_mounts(errs, c, cp, volumes);
        let pull = string(errs, c, "imagePullPolicy", cp);
        match pull {
            "Always" | "IfNotPresent" | "Never" => {}
            "" => errs.push(FieldError::required(cp.child("imagePullPolicy"), "")),
            other => errs.push(FieldError::not_supported(
                cp.child("imagePullPolicy"),
                other,
                &["Always", "IfNotPresent", "Never"],
            )),
        }
        let tmp = string(errs, c, "terminationMessagePolicy", cp);
        match tmp {
            "File" | "FallbackToLogsOnError" => {}
            "" => errs.push(FieldError::required(
                cp.child("terminationMessagePolicy"),
                "must be 'File' or 'FallbackToLogsOnError'",
            )),
            other => errs.push(FieldError::invalid(
                cp.child("terminationMessagePolicy"),
                other,
                "must be 'File' or 'FallbackToLogsOnError'",
            )),
        }
        if let Some(r) = obj(errs, c, "resources", cp) {
            resource_requirements(errs, r, &cp.child("resources"));
        }
        if let Some(sc) = obj(errs, c, "securityContext", cp) {
            let scp = cp.child("securityContext");
            for f in ["runAsUser", "runAsGroup"] {
                if let Some(v) = int(errs, sc, f, &scp)
                    && !(0..=2147483647).contains(&v)
                {
                    errs.push(FieldError::invalid(
                        scp.child(f),
                        v,
                        names::inclusive_range_error(0, 2147483647),
                    ));
                }
            }
            if boolean(errs, sc, "privileged", &scp) == Some(true)
                && boolean(errs, sc, "allowPrivilegeEscalation", &scp) == Some(false)
            {
                errs.push(FieldError::invalid(
                    &scp,
                    Value::Null,
                    "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
                ));
            }
        }
        if all_names.contains(name) {
            errs.push(FieldError::duplicate(&np, name));
        } else {
            all_names.insert(name.to_string());
        }
        if !is_ephemeral && image.is_empty() {
            errs.push(FieldError::required(cp.child("image"), ""));
        }
        let sidecar = is_init && string(errs, c, "restartPolicy", cp) == "Always";
        if is_init && !sidecar {
            for probe in [
                "lifecycle",
                "livenessProbe",
                "readinessProbe",
                "startupProbe",
            ] {
                if present(c, probe).is_some() {
                    errs.push(FieldError::forbidden(
                        cp.child(probe),
                        "may not be set for init containers without restartPolicy=Always",
                    ));
                }
            }
        } else if is_ephemeral {
            for f in [
                "ports",
                "livenessProbe",
                "readinessProbe",
                "startupProbe",
                "lifecycle",
            ] {
                if present(c, f).is_some() {
                    errs.push(FieldError::forbidden(
                        cp.child(f),
                        "cannot be set for an Ephemeral Container",
                    ));
                }
            }
        } else {
            if let Some(l) = obj(errs, c, "lifecycle", cp) {
                for hook in ["postStart", "preStop"] {
                    if let Some(h) = obj(errs, l, hook, &cp.child("lifecycle")) {
                        handler(errs, h, &cp.child("lifecycle").child(hook), false);
                    }
                }
            }
            for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
                if let Some(p) = obj(errs, c, probe, cp) {
                    validate_probe(errs, probe, p, &cp.child(probe));
                }
            }
        }
        if let Some(rp) = opt_str(errs, c, "restartPolicy", cp) {
            if !is_init {
                errs.push(FieldError::forbidden(
                    cp.child("restartPolicy"),
                    "may not be set for non-init containers",
                ));
            } else if rp != "Always" {
                errs.push(FieldError::not_supported(
                    cp.child("restartPolicy"),
                    rp,
                    &["Always"],
                ));
            }
        }
        let _ = restart_policy;
    }
    if !is_ephemeral {
        host_port_conflicts(errs, &list, &path.child(key));
    }
}

fn container_ports(errs: &mut Errs, c: &Map<String, Value>, cp: &Path) {
    let mut names_seen = BTreeSet::new();
    for (pp, p) in objs(errs, c, "ports", cp) {
        if let Some(name) = opt_str(errs, p, "name", &pp).filter(|n| !n.is_empty()) {
            let msgs = names::is_valid_port_name(name);
            if !msgs.is_empty() {
                for msg in msgs {
                    errs.push(FieldError::invalid(pp.child("name"), name, msg));
                }
            } else if !names_seen.insert(name) {
                errs.push(FieldError::duplicate(pp.child("name"), name));
            }
        }
        match int(errs, p, "containerPort", &pp) {
            None | Some(0) => errs.push(FieldError::required(pp.child("containerPort"), "")),
            Some(port) => {
                for msg in names::is_valid_port_num(port) {
                    errs.push(FieldError::invalid(pp.child("containerPort"), port, msg));
                }
            }
        }
        if let Some(hp) = int(errs, p, "hostPort", &pp).filter(|h| *h != 0) {
            for msg in names::is_valid_port_num(hp) {
                errs.push(FieldError::invalid(pp.child("hostPort"), hp, msg));
            }
        }
        protocol(errs, p, &pp, true);
        if let Some(ip) = opt_str(errs, p, "hostIP", &pp).filter(|s| !s.is_empty()) {
            for msg in names::is_valid_ip_msgs(ip) {
                errs.push(FieldError::invalid(pp.child("hostIP"), ip, msg));
            }
        }
    }
}

fn protocol(errs: &mut Errs, p: &Map<String, Value>, pp: &Path, required: bool) {
    match opt_str(errs, p, "protocol", pp).unwrap_or("") {
        "TCP" | "UDP" | "SCTP" => {}
        "" if required => errs.push(FieldError::required(pp.child("protocol"), "")),
        "" => {}
        other => errs.push(FieldError::not_supported(
            pp.child("protocol"),
            other,
            &["SCTP", "TCP", "UDP"],
        )),
    }
}

fn host_port_conflicts(errs: &mut Errs, list: &[(Path, &Map<String, Value>)], path: &Path) {
    let _ = path;
    let mut seen = BTreeSet::new();
    for (cp, c) in list {
        let ports = c
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        for (pi, p) in ports.enumerate() {
            let hp = p.get("hostPort").and_then(Value::as_i64).unwrap_or(0);
            if hp == 0 {
                continue;
            }
            let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("");
            let ip = p.get("hostIP").and_then(Value::as_str).unwrap_or("");
            let key = format!("{proto}/{ip}/{hp}");
            if !seen.insert(key.clone()) {
                errs.push(FieldError::duplicate(
                    cp.child("ports").index(pi).child("hostPort"),
                    key,
                ));
            }
        }
    }
}

fn container_env(errs: &mut Errs, c: &Map<String, Value>, cp: &Path) {
    for (ep, e) in objs(errs, c, "env", cp) {
        let name = string(errs, e, "name", &ep);
        if name.is_empty() {
            errs.push(FieldError::required(ep.child("name"), ""));
        } else {
            for msg in names::is_relaxed_env_var_name(name) {
                errs.push(FieldError::invalid(ep.child("name"), name, msg));
            }
        }
        let Some(vf) = obj(errs, e, "valueFrom", &ep) else {
            continue;
        };
        let vp = ep.child("valueFrom");
        let mut n = 0;
        if let Some(f) = obj(errs, vf, "fieldRef", &vp) {
            n += 1;
            field_ref(errs, f, &vp.child("fieldRef"));
        }
        if let Some(r) = obj(errs, vf, "resourceFieldRef", &vp) {
            n += 1;
            let rp = vp.child("resourceFieldRef");
            let res = string(errs, r, "resource", &rp);
            let ok = [
                "limits.cpu",
                "limits.ephemeral-storage",
                "limits.memory",
                "requests.cpu",
                "requests.ephemeral-storage",
                "requests.memory",
            ];
            if res.is_empty() {
                errs.push(FieldError::required(rp.child("resource"), ""));
            } else if !ok.contains(&res)
                && !res.starts_with("limits.hugepages-")
                && !res.starts_with("requests.hugepages-")
            {
                errs.push(FieldError::not_supported(rp.child("resource"), res, &ok));
            }
        }
        for k in ["configMapKeyRef", "secretKeyRef"] {
            if let Some(r) = obj(errs, vf, k, &vp) {
                n += 1;
                let rp = vp.child(k);
                let name = string(errs, r, "name", &rp);
                for msg in names::name_is_dns_subdomain(name, false) {
                    errs.push(FieldError::invalid(rp.child("name"), name, msg));
                }
                let key = string(errs, r, "key", &rp);
                if key.is_empty() {
                    errs.push(FieldError::required(rp.child("key"), ""));
                } else {
                    for msg in names::is_config_map_key(key) {
                        errs.push(FieldError::invalid(rp.child("key"), key, msg));
                    }
                }
            }
        }
        if present(vf, "fileKeyRef").is_some() {
            n += 1;
        }
        let has_value = e
            .get("value")
            .and_then(Value::as_str)
            .is_some_and(|v| !v.is_empty());
        if n == 0 {
            errs.push(FieldError::invalid(
                &vp,
                "",
                "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
            ));
        } else if has_value {
            errs.push(FieldError::invalid(
                &vp,
                "",
                "may not be specified when `value` is not empty",
            ));
        } else if n > 1 {
            errs.push(FieldError::invalid(
                &vp,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
    for (ep, e) in objs(errs, c, "envFrom", cp) {
        if let Some(pfx) = opt_str(errs, e, "prefix", &ep).filter(|s| !s.is_empty()) {
            for msg in names::is_relaxed_env_var_name(pfx) {
                errs.push(FieldError::invalid(ep.child("prefix"), pfx, msg));
            }
        }
        let n = ["configMapRef", "secretRef"]
            .iter()
            .filter(|k| present(e, k).is_some())
            .count();
        if n == 0 {
            errs.push(FieldError::invalid(
                &ep,
                "",
                "must specify one of: `configMapRef` or `secretRef`",
            ));
        } else if n > 1 {
            errs.push(FieldError::invalid(
                &ep,
                "",
                "may not have more than one field specified at a time",
            ));
        }
        for k in ["configMapRef", "secretRef"] {
            if let Some(r) = obj(errs, e, k, &ep) {
                let name = string(errs, r, "name", &ep.child(k));
                if name.is_empty() {
                    errs.push(FieldError::required(ep.child(k).child("name"), ""));
                } else {
                    for msg in names::name_is_dns_subdomain(name, false) {
                        errs.push(FieldError::invalid(ep.child(k).child("name"), name, msg));
                    }
                }
            }
        }
    }
}

/// `validateObjectFieldSelector` with the env var field paths.
fn field_ref(errs: &mut Errs, f: &Map<String, Value>, fp: &Path) {
    let api = string(errs, f, "apiVersion", fp);
    if api.is_empty() {
        errs.push(FieldError::required(fp.child("apiVersion"), ""));
        return;
    }
    let path = string(errs, f, "fieldPath", fp);
    if path.is_empty() {
        errs.push(FieldError::required(fp.child("fieldPath"), ""));
        return;
    }
    let ok = [
        "metadata.name",
        "metadata.namespace",
        "metadata.uid",
        "spec.nodeName",
        "spec.serviceAccountName",
        "status.hostIP",
        "status.hostIPs",
        "status.podIP",
        "status.podIPs",
    ];
    let subscripted = ["metadata.labels[", "metadata.annotations["]
        .iter()
        .any(|p| path.starts_with(p) && path.ends_with(']'));
    if !subscripted && !ok.contains(&path) {
        errs.push(FieldError::not_supported(fp.child("fieldPath"), path, &ok));
    }
}

fn volume_mounts(errs: &mut Errs, c: &Map<String, Value>, cp: &Path, volumes: &Volumes) {
    let mut mount_points = BTreeSet::new();
    let mp = cp.child("volumeMounts");
    for (i, m) in arr(errs, c, "volumeMounts", cp).iter().enumerate() {
        let ip = mp.index(i);
        let Some(m) = m.as_object() else {
            errs.type_invalid(&ip, m, "object");
            continue;
        };
        let name = string(errs, m, "name", &ip);
        if name.is_empty() {
            errs.push(FieldError::required(ip.child("name"), ""));
        }
        if !volumes.contains_key(name) {
            errs.push(FieldError::not_found(ip.child("name"), name));
        }
        let mount_path = string(errs, m, "mountPath", &ip);
        if mount_path.is_empty() {
            errs.push(FieldError::required(ip.child("mountPath"), ""));
        }
        if !mount_points.insert(mount_path) {
            errs.push(FieldError::invalid(
                ip.child("mountPath"),
                mount_path,
                "must be unique",
            ));
        }
        let sub = string(errs, m, "subPath", &ip);
        if !sub.is_empty() {
            // upstream reports these at the list path, not the item
            sub_path(errs, sub, &mp.child("subPath"));
        }
        let expr = string(errs, m, "subPathExpr", &ip);
        if !expr.is_empty() {
            if !sub.is_empty() {
                errs.push(FieldError::invalid(
                    ip.child("subPathExpr"),
                    expr,
                    "subPathExpr and subPath are mutually exclusive",
                ));
            }
            sub_path(errs, expr, &mp.child("subPathExpr"));
        }
        if let Some(prop) = opt_str(errs, m, "mountPropagation", &ip) {
            let ok = ["Bidirectional", "HostToContainer", "None"];
            if !ok.contains(&prop) {
                errs.push(FieldError::not_supported(
                    mp.child("mountPropagation"),
                    prop,
                    &ok,
                ));
            }
        }
    }
}

fn sub_path(errs: &mut Errs, p: &str, path: &Path) {
    if p.starts_with('/') {
        errs.push(FieldError::invalid(path, p, "must be a relative path"));
    }
    if p.split('/').any(|s| s == "..") {
        errs.push(FieldError::invalid(path, p, "must not contain '..'"));
    }
}

fn validate_probe(errs: &mut Errs, which: &str, p: &Map<String, Value>, path: &Path) {
    handler(errs, p, path, true);
    for f in [
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ] {
        if let Some(v) = int(errs, p, f, path) {
            nonnegative(errs, v, &path.child(f));
        }
    }
    if let Some(t) = int(errs, p, "terminationGracePeriodSeconds", path) {
        if which == "readinessProbe" {
            errs.push(FieldError::invalid(
                path.child("terminationGracePeriodSeconds"),
                t,
                "must not be set for readinessProbes",
            ));
        } else if t <= 0 {
            errs.push(FieldError::invalid(
                path.child("terminationGracePeriodSeconds"),
                t,
                "must be greater than 0",
            ));
        }
    }
    if which != "readinessProbe"
        && let Some(st) = int(errs, p, "successThreshold", path)
        && st != 1
    {
        errs.push(FieldError::invalid(
            path.child("successThreshold"),
            st,
            "must be 1",
        ));
    }
}

/// `validateHandler` for probes (exec, httpGet, tcpSocket, grpc) and lifecycle hooks
/// (exec, httpGet, tcpSocket, sleep).
fn handler(errs: &mut Errs, h: &Map<String, Value>, path: &Path, probe: bool) {
    let kinds: &[&str] = if probe {
        &["exec", "httpGet", "tcpSocket", "grpc"]
    } else {
        &["exec", "httpGet", "tcpSocket", "sleep"]
    };
    let mut n = 0;
    for k in kinds {
        let Some(v) = present(h, k) else { continue };
        if n > 0 {
            errs.push(FieldError::forbidden(
                path.child(k),
                "may not specify more than 1 handler type",
            ));
            continue;
        }
        n += 1;
        let kp = path.child(k);
        let Some(m) = v.as_object() else {
            errs.type_invalid(&kp, v, "object");
            continue;
        };
        match *k {
            "exec" if arr(errs, m, "command", &kp).is_empty() => {
                errs.push(FieldError::required(kp.child("command"), ""));
            }
            "httpGet" => {
                if string(errs, m, "path", &kp).is_empty() {
                    errs.push(FieldError::required(kp.child("path"), ""));
                }
                port_num_or_name(errs, m.get("port"), &kp.child("port"));
                let scheme = string(errs, m, "scheme", &kp);
                if !matches!(scheme, "HTTP" | "HTTPS") {
                    errs.push(FieldError::not_supported(
                        kp.child("scheme"),
                        scheme,
                        &["HTTP", "HTTPS"],
                    ));
                }
                for (hp, hdr) in objs(errs, m, "httpHeaders", &kp) {
                    let name = string(errs, hdr, "name", &hp);
                    let valid = !name.is_empty()
                        && name
                            .bytes()
                            .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c));
                    if !valid {
                        errs.push(FieldError::invalid(
                            hp.child("name"),
                            name,
                            "a valid HTTP header must consist of alphanumeric characters, '-' and must start and end with an alphanumeric character (e.g. 'X-Header-Name',  or 'X-HEADER-NAME', regex used for validation is '[-A-Za-z0-9]+')",
                        ));
                    }
                }
            }
            "tcpSocket" => port_num_or_name(errs, m.get("port"), &kp.child("port")),
            "grpc" => {
                let port = int(errs, m, "port", &kp).unwrap_or(0);
                for msg in names::is_valid_port_num(port) {
                    errs.push(FieldError::invalid(kp.child("port"), port, msg));
                }
            }
            "sleep" => {
                if let Some(s) = int(errs, m, "seconds", &kp)
                    && s < 0
                {
                    errs.push(FieldError::invalid(
                        kp.child("seconds"),
                        s,
                        "must be non-negative",
                    ));
                }
            }
            _ => {}
        }
    }
    if n == 0 {
        errs.push(FieldError::required(path, "must specify a handler type"));
    }
}

fn port_num_or_name(errs: &mut Errs, v: Option<&Value>, path: &Path) {
    match v {
        Some(Value::String(s)) => {
            for msg in names::is_valid_port_name(s) {
                errs.push(FieldError::invalid(path, s.as_str(), msg));
            }
        }
        Some(Value::Number(n)) => {
            let p = n.as_i64().unwrap_or(0);
            for msg in names::is_valid_port_num(p) {
                errs.push(FieldError::invalid(path, p, msg));
            }
        }
        None | Some(Value::Null) => {
            for msg in names::is_valid_port_num(0) {
                errs.push(FieldError::invalid(path, 0, msg));
            }
        }
        Some(other) => errs.type_invalid(path, other, "integer or string"),
    }
}

#[derive(Clone, Copy, PartialEq)]
pub(super) enum ResourceKind {
    Container,
    Quota,
    Any,
}

fn is_native(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

fn is_hugepages(name: &str) -> bool {
    name.starts_with("hugepages-")
}

fn is_extended(name: &str) -> bool {
    !is_native(name)
        && !name.starts_with("requests.")
        && names::is_qualified_name(&format!("requests.{name}")).is_empty()
}

fn is_overcommit_allowed(name: &str) -> bool {
    is_native(name) && !is_hugepages(name)
}

fn is_standard_container_resource(name: &str) -> bool {
    matches!(name, "cpu" | "memory" | "ephemeral-storage") || is_hugepages(name)
}

fn is_standard_quota_resource(name: &str) -> bool {
    const QUOTA: &[&str] = &[
        "cpu",
        "memory",
        "ephemeral-storage",
        "requests.cpu",
        "requests.memory",
        "requests.storage",
        "requests.ephemeral-storage",
        "limits.cpu",
        "limits.memory",
        "limits.ephemeral-storage",
        "pods",
        "services",
        "replicationcontrollers",
        "resourcequotas",
        "secrets",
        "configmaps",
        "persistentvolumeclaims",
        "services.nodeports",
        "services.loadbalancers",
    ];
    QUOTA.contains(&name) || name.starts_with("requests.hugepages-")
}

fn is_standard_resource(name: &str) -> bool {
    const STANDARD: &[&str] = &[
        "cpu",
        "memory",
        "ephemeral-storage",
        "requests.cpu",
        "requests.memory",
        "requests.ephemeral-storage",
        "limits.cpu",
        "limits.memory",
        "limits.ephemeral-storage",
        "pods",
        "services",
        "replicationcontrollers",
        "resourcequotas",
        "secrets",
        "persistentvolumeclaims",
        "configmaps",
        "storage",
        "requests.storage",
        "services.nodeports",
        "services.loadbalancers",
    ];
    STANDARD.contains(&name) || is_hugepages(name) || name.starts_with("requests.hugepages-")
}

/// Resource name and quantity checks of one ResourceList entry; returns the parsed value.
fn resource_entry(
    errs: &mut Errs,
    name: &str,
    v: &Value,
    path: &Path,
    kind: ResourceKind,
) -> Option<Quantity> {
    let before = errs.0.len();
    for msg in names::is_qualified_name(name) {
        errs.push(FieldError::invalid(path, name, msg));
    }
    if errs.0.len() == before && !name.contains('/') {
        if !is_standard_resource(name) {
            errs.push(FieldError::invalid(
                path,
                name,
                "must be a standard resource type or fully qualified",
            ));
        }
        match kind {
            ResourceKind::Container if !is_standard_container_resource(name) => {
                errs.push(FieldError::invalid(
                    path,
                    name,
                    "must be a standard resource for containers",
                ));
            }
            ResourceKind::Quota if !is_standard_quota_resource(name) => {
                errs.push(FieldError::invalid(
                    path,
                    name,
                    "must be a standard resource for quota",
                ));
            }
            _ => {}
        }
    } else if errs.0.len() == before
        && kind == ResourceKind::Container
        && !is_native(name)
        && !is_extended(name)
    {
        errs.push(FieldError::invalid(
            path,
            name,
            "doesn't follow extended resource name standard",
        ));
    }
    let q = match Quantity::from_json(v) {
        Ok(q) => q,
        Err(e) => {
            errs.push(FieldError::invalid(path, v.clone(), e.to_string()));
            return None;
        }
    };
    if q.sign() < 0 {
        errs.push(FieldError::invalid(path, q.to_string(), meta::IS_NEGATIVE));
    }
    if is_extended(name) && q.milli_value() % 1000 != 0 {
        errs.push(FieldError::invalid(
            path,
            q.to_string(),
            "must be an integer",
        ));
    }
    Some(q)
}

pub(super) fn resource_list(
    errs: &mut Errs,
    list: &Map<String, Value>,
    path: &Path,
    kind: ResourceKind,
) -> BTreeMap<String, Quantity> {
    let mut out = BTreeMap::new();
    for (k, v) in list {
        if let Some(q) = resource_entry(errs, k, v, &path.key(k), kind) {
            out.insert(k.clone(), q);
        }
    }
    out
}

fn resource_requirements(errs: &mut Errs, r: &Map<String, Value>, path: &Path) {
    let lp = path.child("limits");
    let rp = path.child("requests");
    let limits = obj(errs, r, "limits", path)
        .map(|l| resource_list(errs, l, &lp, ResourceKind::Container))
        .unwrap_or_default();
    let requests_raw = obj(errs, r, "requests", path);
    let mut has_cpu_mem = limits.keys().any(|k| k == "cpu" || k == "memory");
    let mut has_huge = limits.keys().any(|k| is_hugepages(k));
    for (k, v) in requests_raw.into_iter().flatten() {
        let Some(q) = resource_entry(errs, k, v, &rp.key(k), ResourceKind::Container) else {
            continue;
        };
        match limits.get(k) {
            Some(lim) => {
                if &q != lim && !is_overcommit_allowed(k) {
                    errs.push(FieldError::invalid(
                        &rp,
                        q.to_string(),
                        format!("must be equal to {k} limit of {lim}"),
                    ));
                } else if &q > lim {
                    errs.push(FieldError::invalid(
                        &rp,
                        q.to_string(),
                        format!("must be less than or equal to {k} limit of {lim}"),
                    ));
                }
            }
            None if !is_overcommit_allowed(k) => {
                errs.push(FieldError::required(
                    &lp,
                    "Limit must be set for non overcommitable resources",
                ));
            }
            None => {}
        }
        has_cpu_mem |= k == "cpu" || k == "memory";
        has_huge |= is_hugepages(k);
    }
    if has_huge && !has_cpu_mem {
        errs.push(FieldError::forbidden(
            path,
            "HugePages require cpu or memory",
        ));
    }
}

fn validate_tolerations(errs: &mut Errs, spec: &Map<String, Value>, path: &Path) {
    for (tp, t) in objs(errs, spec, "tolerations", path) {
        let key = string(errs, t, "key", &tp);
        if !key.is_empty() {
            validate_label_name(errs, key, &tp.child("key"));
        }
        let op = string(errs, t, "operator", &tp);
        if key.is_empty() && op != "Exists" {
            errs.push(FieldError::invalid(
                tp.child("operator"),
                op,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        let effect = string(errs, t, "effect", &tp);
        if int(errs, t, "tolerationSeconds", &tp).is_some() && effect != "NoExecute" {
            errs.push(FieldError::invalid(
                tp.child("effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        let value = string(errs, t, "value", &tp);
        match op {
            "Equal" | "" => {
                let msgs = names::is_valid_label_value(value);
                if !msgs.is_empty() {
                    errs.push(FieldError::invalid(
                        tp.child("operator"),
                        value,
                        msgs.join(";"),
                    ));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    errs.push(invalid_go(
                        &tp.child("operator"),
                        &go_toleration(t),
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(
                tp.child("operator"),
                other,
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() {
            taint_effect(errs, effect, &tp.child("effect"));
        }
    }
}

fn go_toleration(t: &Map<String, Value>) -> String {
    let s = |k: &str| go_quote(t.get(k).and_then(Value::as_str).unwrap_or(""));
    let secs = match t.get("tolerationSeconds").and_then(Value::as_i64) {
        Some(v) => format!("(*int64)({v})"),
        None => "(*int64)(nil)".to_string(),
    };
    format!(
        "core.Toleration{{Key:{}, Operator:{}, Value:{}, Effect:{}, TolerationSeconds:{secs}}}",
        s("key"),
        s("operator"),
        s("value"),
        s("effect")
    )
}

fn taint_effect(errs: &mut Errs, effect: &str, path: &Path) {
    if !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
        errs.push(FieldError::not_supported(
            path,
            effect,
            &["NoSchedule", "PreferNoSchedule", "NoExecute"],
        ));
    }
}

fn validate_affinity(errs: &mut Errs, a: &Map<String, Value>, path: &Path) {
    if let Some(na) = obj(errs, a, "nodeAffinity", path) {
        let np = path.child("nodeAffinity");
        if let Some(req) = obj(
            errs,
            na,
            "requiredDuringSchedulingIgnoredDuringExecution",
            &np,
        ) {
            node_selector(
                errs,
                req,
                &np.child("requiredDuringSchedulingIgnoredDuringExecution"),
            );
        }
        for (tp, t) in objs(
            errs,
            na,
            "preferredDuringSchedulingIgnoredDuringExecution",
            &np,
        ) {
            let w = int(errs, t, "weight", &tp).unwrap_or(0);
            if !(1..=100).contains(&w) {
                errs.push(FieldError::invalid(
                    tp.child("weight"),
                    w,
                    "must be in the range 1-100",
                ));
            }
            if let Some(pref) = obj(errs, t, "preference", &tp) {
                node_selector_term(errs, pref, &tp.child("preference"));
            }
        }
    }
    for kind in ["podAffinity", "podAntiAffinity"] {
        let Some(pa) = obj(errs, a, kind, path) else {
            continue;
        };
        let pp = path.child(kind);
        for (tp, t) in objs(
            errs,
            pa,
            "requiredDuringSchedulingIgnoredDuringExecution",
            &pp,
        ) {
            pod_affinity_term(errs, t, &tp);
        }
        for (tp, t) in objs(
            errs,
            pa,
            "preferredDuringSchedulingIgnoredDuringExecution",
            &pp,
        ) {
            let w = int(errs, t, "weight", &tp).unwrap_or(0);
            if !(1..=100).contains(&w) {
                errs.push(FieldError::invalid(
                    tp.child("weight"),
                    w,
                    "must be in the range 1-100",
                ));
            }
            if let Some(term) = obj(errs, t, "podAffinityTerm", &tp) {
                pod_affinity_term(errs, term, &tp.child("podAffinityTerm"));
            }
        }
    }
}

fn node_selector(errs: &mut Errs, ns: &Map<String, Value>, path: &Path) {
    let terms = objs(errs, ns, "nodeSelectorTerms", path);
    if terms.is_empty() {
        errs.push(FieldError::required(
            path.child("nodeSelectorTerms"),
            "must have at least one node selector term",
        ));
        return;
    }
    for (tp, t) in terms {
        node_selector_term(errs, t, &tp);
    }
}

fn node_selector_term(errs: &mut Errs, t: &Map<String, Value>, path: &Path) {
    for (rp, r) in objs(errs, t, "matchExpressions", path) {
        let op = string(errs, r, "operator", &rp);
        let n = arr(errs, r, "values", &rp).len();
        match op {
            "In" | "NotIn" if n == 0 => errs.push(FieldError::required(
                rp.child("values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            )),
            "Exists" | "DoesNotExist" if n > 0 => errs.push(FieldError::forbidden(
                rp.child("values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
            "Gt" | "Lt" if n != 1 => errs.push(FieldError::required(
                rp.child("values"),
                "must be specified single value when `operator` is 'Lt' or 'Gt'",
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" | "Gt" | "Lt" => {}
            other => errs.push(FieldError::invalid(
                rp.child("operator"),
                other,
                "not a valid selector operator",
            )),
        }
        let key = string(errs, r, "key", &rp);
        validate_label_name(errs, key, &rp.child("key"));
    }
    for (rp, r) in objs(errs, t, "matchFields", path) {
        let key = string(errs, r, "key", &rp);
        if key != "metadata.name" {
            errs.push(FieldError::invalid(
                rp.child("key"),
                key,
                "not a valid field selector key",
            ));
        }
        let op = string(errs, r, "operator", &rp);
        if !matches!(op, "In" | "NotIn") {
            errs.push(FieldError::invalid(
                rp.child("operator"),
                op,
                "not a valid selector operator",
            ));
        }
        if arr(errs, r, "values", &rp).len() != 1 {
            errs.push(FieldError::required(
                rp.child("values"),
                "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
            ));
        }
    }
}

fn pod_affinity_term(errs: &mut Errs, t: &Map<String, Value>, path: &Path) {
    if let Some(sel) = obj(errs, t, "labelSelector", path) {
        validate_label_selector(errs, sel, &path.child("labelSelector"));
    }
    if let Some(sel) = obj(errs, t, "namespaceSelector", path) {
        validate_label_selector(errs, sel, &path.child("namespaceSelector"));
    }
    for ns in strs(errs, t, "namespaces", path) {
        for msg in names::is_dns1123_label(ns) {
            errs.push(FieldError::invalid(path.child("namespace"), ns, msg));
        }
    }
    let tk = string(errs, t, "topologyKey", path);
    if tk.is_empty() {
        errs.push(FieldError::required(
            path.child("topologyKey"),
            "can not be empty",
        ));
    }
    validate_label_name(errs, tk, &path.child("topologyKey"));
}

fn validate_topology_spread(errs: &mut Errs, spec: &Map<String, Value>, path: &Path) {
    let mut seen = BTreeSet::new();
    for (cp, c) in objs(errs, spec, "topologySpreadConstraints", path) {
        let skew = int(errs, c, "maxSkew", &cp).unwrap_or(0);
        if skew <= 0 {
            errs.push(FieldError::invalid(
                cp.child("maxSkew"),
                skew,
                "must be greater than zero",
            ));
        }
        let key = string(errs, c, "topologyKey", &cp);
        if key.is_empty() {
            errs.push(FieldError::required(
                cp.child("topologyKey"),
                "can not be empty",
            ));
        } else {
            validate_label_name(errs, key, &cp.child("topologyKey"));
        }
        let wu = string(errs, c, "whenUnsatisfiable", &cp);
        if !matches!(wu, "DoNotSchedule" | "ScheduleAnyway") {
            errs.push(FieldError::not_supported(
                cp.child("whenUnsatisfiable"),
                wu,
                &["DoNotSchedule", "ScheduleAnyway"],
            ));
        }
        if !seen.insert((key, wu)) {
            errs.push(FieldError::duplicate(&cp, format!("{{{key}, {wu}}}")));
        }
        if let Some(md) = int(errs, c, "minDomains", &cp) {
            if md <= 0 {
                errs.push(FieldError::invalid(
                    cp.child("minDomains"),
                    md,
                    "must be greater than zero",
                ));
            } else if wu != "DoNotSchedule" {
                errs.push(FieldError::invalid(
                    cp.child("minDomains"),
                    md,
                    "can only use minDomains if whenUnsatisfiable=DoNotSchedule, not ScheduleAnyway",
                ));
            }
        }
        if let Some(sel) = obj(errs, c, "labelSelector", &cp) {
            validate_label_selector(errs, sel, &cp.child("labelSelector"));
        }
    }
}

/// `ValidatePodUpdate`: only a few spec fields may change.
fn pod_update(errs: &mut Errs, new: &Map<String, Value>, old: &Map<String, Value>) {
    let spec_path = Path::new("spec");
    let empty = Map::new();
    let ns = new.get("spec").and_then(Value::as_object).unwrap_or(&empty);
    let os = old.get("spec").and_then(Value::as_object).unwrap_or(&empty);

    // activeDeadlineSeconds may be set or lowered, never unset or raised.
    let nad = ns.get("activeDeadlineSeconds").and_then(Value::as_i64);
    let oad = os.get("activeDeadlineSeconds").and_then(Value::as_i64);
    if let Some(o) = oad {
        let p = spec_path.child("activeDeadlineSeconds");
        match nad {
            None => errs.push(FieldError::invalid(
                &p,
                Value::Null,
                "must not update from a positive integer to nil value",
            )),
            Some(n) if n > o => errs.push(FieldError::invalid(
                &p,
                n,
                "must be less than or equal to previous value",
            )),
            _ => {}
        }
    }
    // tolerations may only be added (or have tolerationSeconds shortened)
    let old_tols: Vec<&Value> = os
        .get("tolerations")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let new_tols: Vec<&Value> = ns
        .get("tolerations")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let tol_ok = old_tols.iter().all(|o| {
        new_tols.iter().any(|n| {
            let strip = |v: &Value| {
                let mut v = v.clone();
                if let Some(m) = v.as_object_mut() {
                    m.remove("tolerationSeconds");
                }
                v
            };
            strip(n) == strip(o)
        })
    });
    if !tol_ok {
        errs.push(FieldError::forbidden(
            spec_path.child("tolerations"),
            "existing toleration can not be modified except its tolerationSeconds",
        ));
    }
    // schedulingGates may only be removed
    let old_gates: Vec<&Value> = os
        .get("schedulingGates")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    for g in ns
        .get("schedulingGates")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if !old_gates.contains(&g) {
            errs.push(FieldError::forbidden(
                spec_path.child("schedulingGates"),
                "only deletion is allowed, but found new scheduling gate '".to_string()
                    + g.get("name").and_then(Value::as_str).unwrap_or("")
                    + "'",
            ));
        }
    }

    // Everything else must be equal once the mutable fields are copied over.
    let mut masked = ns.clone();
    let copy = |masked: &mut Map<String, Value>, key: &str| match os.get(key) {
        Some(v) => {
            masked.insert(key.to_string(), v.clone());
        }
        None => {
            masked.remove(key);
        }
    };
    copy(&mut masked, "activeDeadlineSeconds");
    copy(&mut masked, "tolerations");
    copy(&mut masked, "schedulingGates");
    for key in ["containers", "initContainers"] {
        let (Some(nc), Some(oc)) = (
            masked.get_mut(key).and_then(Value::as_array_mut),
            os.get(key).and_then(Value::as_array),
        ) else {
            continue;
        };
        if nc.len() != oc.len() {
            continue;
        }
        for (n, o) in nc.iter_mut().zip(oc) {
            if let (Some(n), Some(o)) = (n.as_object_mut(), o.as_object()) {
                for f in ["image"] {
                    if f == "image"
                        && n.get("image")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .is_empty()
                    {
                        continue;
                    }
                    match o.get(f) {
                        Some(v) => {
                            n.insert(f.to_string(), v.clone());
                        }
                        None => {
                            n.remove(f);
                        }
                    }
                }
            }
        }
    }
    // ephemeral containers change only through their subresource
    copy(&mut masked, "ephemeralContainers");
    if &masked != os {
        errs.push(FieldError::forbidden(
            &spec_path,
            format!(
                "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n{}",
                pod_spec_diff(os, &masked)
            ),
        ));
    }
}

/// A short rendering of what differs, standing in for upstream's `cmp.Diff` output.
fn pod_spec_diff(old: &Map<String, Value>, new: &Map<String, Value>) -> String {
    let mut out = String::from("  core.PodSpec{\n");
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for k in keys {
        let (o, n) = (old.get(k), new.get(k));
        if o != n {
            if let Some(o) = o {
                out.push_str(&format!("- \t{k}: {o},\n"));
            }
            if let Some(n) = n {
                out.push_str(&format!("+ \t{k}: {n},\n"));
            }
        }
    }
    out.push_str("  }\n");
    out
}

// ---------------------------------------------------------------------------------------------
// Other core kinds

fn replication_controller(
    errs: &mut Errs,
    m: &Map<String, Value>,
    old: Option<&Map<String, Value>>,
) {
    let sp = Path::new("spec");
    let empty = Map::new();
    let spec = obj(errs, m, "spec", &Path::new("")).unwrap_or(&empty);
    let sel = str_map(errs, spec, "selector", &sp);
    if let Some(r) = int(errs, spec, "replicas", &sp) {
        nonnegative(errs, r, &sp.child("replicas"));
    }
    if let Some(r) = int(errs, spec, "minReadySeconds", &sp) {
        nonnegative(errs, r, &sp.child("minReadySeconds"));
    }
    if sel.is_empty() {
        errs.push(FieldError::required(sp.child("selector"), ""));
    } else {
        validate_labels(errs, &sel, &sp.child("selector"));
    }
    let tp = sp.child("template");
    match obj(errs, spec, "template", &sp) {
        None => errs.push(FieldError::required(&tp, "")),
        Some(t) => {
            let labels: Vec<(&str, &str)> = t
                .get("metadata")
                .and_then(|md| md.get("labels"))
                .and_then(Value::as_object)
                .map(|l| {
                    l.iter()
                        .filter_map(|(k, v)| v.as_str().map(|v| (k.as_str(), v)))
                        .collect()
                })
                .unwrap_or_default();
            if !sel.is_empty()
                && !sel
                    .iter()
                    .all(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v))
            {
                let rendered = super::go_string_map(
                    t.get("metadata")
                        .and_then(|md| md.get("labels"))
                        .map(|_| labels.as_slice()),
                );
                errs.push(invalid_go(
                    &tp.child("metadata").child("labels"),
                    &rendered,
                    "`selector` does not match template `labels`",
                ));
            }
            validate_pod_template_spec(errs, t, &tp);
            let rp = t
                .get("spec")
                .and_then(|s| s.get("restartPolicy"))
                .and_then(Value::as_str)
                .unwrap_or("");
            if rp != "Always" {
                errs.push(FieldError::not_supported(
                    tp.child("spec").child("restartPolicy"),
                    rp,
                    &["Always"],
                ));
            }
            if t.get("spec")
                .and_then(|s| s.get("activeDeadlineSeconds"))
                .is_some_and(|v| !v.is_null())
            {
                errs.push(FieldError::forbidden(
                    tp.child("spec").child("activeDeadlineSeconds"),
                    "activeDeadlineSeconds in ReplicationController is not Supported",
                ));
            }
        }
    }
    let _ = old;
}

const SERVICE_TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];

fn service(errs: &mut Errs, m: &Map<String, Value>, old: Option<&Map<String, Value>>) {
    let sp = Path::new("spec");
    let empty = Map::new();
    let spec = obj(errs, m, "spec", &Path::new("")).unwrap_or(&empty);
    let ty = string(errs, spec, "type", &sp);
    let cluster_ip = string(errs, spec, "clusterIP", &sp);
    let headless = cluster_ip == "None";
    let ports = objs(errs, spec, "ports", &sp);
    match ty {
        "" => errs.push(FieldError::required(sp.child("type"), "")),
        t if !SERVICE_TYPES.contains(&t) => errs.push(FieldError::not_supported(
            sp.child("type"),
            t,
            SERVICE_TYPES,
        )),
        _ => {}
    }
    if ty == "ExternalName" {
        let en = string(errs, spec, "externalName", &sp);
        if en.is_empty() {
            errs.push(FieldError::required(sp.child("externalName"), ""));
        } else {
            let trimmed = en.strip_suffix('.').unwrap_or(en);
            for msg in names::is_dns1123_subdomain(trimmed) {
                errs.push(FieldError::invalid(sp.child("externalName"), trimmed, msg));
            }
        }
        if !cluster_ip.is_empty() {
            errs.push(FieldError::forbidden(
                sp.child("clusterIPs"),
                "may not be set for ExternalName services",
            ));
        }
    } else if ports.is_empty() && !headless {
        errs.push(FieldError::required(sp.child("ports"), ""));
    }
    let mut port_names = BTreeSet::new();
    let mut seen_ports = BTreeSet::new();
    let multi = ports.len() > 1;
    for (pp, p) in &ports {
        let name = string(errs, p, "name", pp);
        if multi && name.is_empty() {
            errs.push(FieldError::required(pp.child("name"), ""));
        } else if !name.is_empty() {
            for msg in names::is_dns1123_label(name) {
                errs.push(FieldError::invalid(pp.child("name"), name, msg));
            }
            if !port_names.insert(name) {
                errs.push(FieldError::duplicate(pp.child("name"), name));
            }
        }
        let port = int(errs, p, "port", pp).unwrap_or(0);
        for msg in names::is_valid_port_num(port) {
            errs.push(FieldError::invalid(pp.child("port"), port, msg));
        }
        protocol(errs, p, pp, true);
        match p.get("targetPort") {
            Some(Value::String(s)) => {
                for msg in names::is_valid_port_name(s) {
                    errs.push(FieldError::invalid(pp.child("targetPort"), s.as_str(), msg));
                }
            }
            Some(Value::Number(n)) => {
                let t = n.as_i64().unwrap_or(0);
                for msg in names::is_valid_port_num(t) {
                    errs.push(FieldError::invalid(pp.child("targetPort"), t, msg));
                }
            }
            None | Some(Value::Null) => {}
            Some(other) => errs.type_invalid(&pp.child("targetPort"), other, "integer or string"),
        }
        if let Some(np) = int(errs, p, "nodePort", pp).filter(|n| *n != 0) {
            if ty == "ClusterIP" {
                errs.push(FieldError::forbidden(
                    pp.child("nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            } else {
                for msg in names::is_valid_port_num(np) {
                    errs.push(FieldError::invalid(pp.child("nodePort"), np, msg));
                }
            }
        }
        let proto = p
            .get("protocol")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if !seen_ports.insert((port, proto.clone())) {
            errs.push(FieldError {
                kind: crate::error::FieldErrorType::Duplicate,
                field: pp.to_string(),
                bad_value: None,
                detail: format!(
                    "core.ServicePort{{Name:\"\", Protocol:{}, AppProtocol:(*string)(nil), Port:{port}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}",
                    go_quote(&proto)
                ),
            });
        }
        if let Some(ap) = opt_str(errs, p, "appProtocol", pp) {
            for msg in names::is_qualified_name(ap) {
                errs.push(FieldError::invalid(pp.child("appProtocol"), ap, msg));
            }
        }
    }
    if ty != "ExternalName" {
        let sel = str_map(errs, spec, "selector", &sp);
        validate_labels(errs, &sel, &sp.child("selector"));
    }
    if !cluster_ip.is_empty() && !headless {
        for msg in names::is_valid_ip_msgs(cluster_ip) {
            errs.push(FieldError::invalid(
                sp.child("clusterIPs").index(0),
                cluster_ip,
                msg,
            ));
        }
    }
    if headless && matches!(ty, "LoadBalancer" | "NodePort") {
        errs.push(FieldError::invalid(
            sp.child("clusterIPs").index(0),
            cluster_ip,
            format!("may not be set to 'None' for {ty} services"),
        ));
    }
    for (i, ip) in strs(errs, spec, "externalIPs", &sp).iter().enumerate() {
        for msg in names::is_valid_ip_msgs(ip) {
            errs.push(FieldError::invalid(
                sp.child("externalIPs").index(i),
                *ip,
                msg,
            ));
        }
    }
    let sa = string(errs, spec, "sessionAffinity", &sp);
    match sa {
        "None" | "ClientIP" => {}
        "" => errs.push(FieldError::required(sp.child("sessionAffinity"), "")),
        other => errs.push(FieldError::not_supported(
            sp.child("sessionAffinity"),
            other,
            &["ClientIP", "None"],
        )),
    }
    if sa == "ClientIP" {
        let t = spec
            .get("sessionAffinityConfig")
            .and_then(|c| c.get("clientIP"))
            .and_then(|c| c.get("timeoutSeconds"))
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if !(1..=86400).contains(&t) {
            errs.push(FieldError::invalid(
                sp.child("sessionAffinityConfig")
                    .child("clientIP")
                    .child("timeoutSeconds"),
                t,
                "must be greater than 0 and less than 86400",
            ));
        }
    }
    if let Some(etp) = opt_str(errs, spec, "externalTrafficPolicy", &sp)
        && !matches!(etp, "Cluster" | "Local" | "")
    {
        errs.push(FieldError::not_supported(
            sp.child("externalTrafficPolicy"),
            etp,
            &["Cluster", "Local"],
        ));
    }
    if let Some(itp) = opt_str(errs, spec, "internalTrafficPolicy", &sp)
        && !matches!(itp, "Cluster" | "Local")
    {
        errs.push(FieldError::not_supported(
            sp.child("internalTrafficPolicy"),
            itp,
            &["Cluster", "Local"],
        ));
    }
    if let Some(fams) = present(spec, "ipFamilyPolicy").and_then(Value::as_str) {
        let ok = ["SingleStack", "PreferDualStack", "RequireDualStack"];
        if !ok.contains(&fams) {
            errs.push(FieldError::not_supported(
                sp.child("ipFamilyPolicy"),
                fams,
                &ok,
            ));
        }
    }
    if let Some(o) = old {
        let os = o.get("spec").and_then(Value::as_object).unwrap_or(&empty);
        let old_type = os.get("type").and_then(Value::as_str).unwrap_or("");
        // clusterIP may only change when switching to or from ExternalName
        if old_type != "ExternalName" && ty != "ExternalName" {
            let oip = os.get("clusterIP").and_then(Value::as_str).unwrap_or("");
            if !oip.is_empty() && oip != cluster_ip {
                errs.push(FieldError::invalid(
                    sp.child("clusterIPs").index(0),
                    cluster_ip,
                    "may not change once set",
                ));
            }
        }
    }
}

fn data_keys(errs: &mut Errs, m: &Map<String, Value>, what: &str) {
    let binary: Vec<String> = m
        .get("binaryData")
        .and_then(Value::as_object)
        .map(|b| b.keys().cloned().collect())
        .unwrap_or_default();
    for field in ["data", "binaryData", "stringData"] {
        if what == "configmap" && field == "stringData" || what == "secret" && field == "binaryData"
        {
            continue;
        }
        let Some(d) = obj(errs, m, field, &Path::new("")) else {
            continue;
        };
        let fp = Path::new(field);
        for (k, v) in d {
            for msg in names::is_config_map_key(k) {
                errs.push(FieldError::invalid(fp.key(k), k.as_str(), msg));
            }
            if !v.is_string() && !v.is_null() {
                errs.type_invalid(&fp.key(k), v, "string");
            }
            if what == "configmap" && field == "data" && binary.contains(k) {
                errs.push(FieldError::invalid(
                    fp.key(k),
                    k.as_str(),
                    "duplicate of key present in binaryData",
                ));
            }
        }
    }
}

fn data_size(m: &Map<String, Value>, fields: &[&str]) -> usize {
    fields
        .iter()
        .filter_map(|f| m.get(*f).and_then(Value::as_object))
        .flat_map(|d| d.iter())
        .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
        .sum()
}

fn immutable_data(
    errs: &mut Errs,
    m: &Map<String, Value>,
    old: Option<&Map<String, Value>>,
    fields: &[&str],
) {
    let Some(o) = old else { return };
    if o.get("immutable").and_then(Value::as_bool) != Some(true) {
        return;
    }
    if m.get("immutable").and_then(Value::as_bool) != Some(true) {
        errs.push(FieldError::forbidden(
            Path::new("immutable"),
            "field is immutable when `immutable` is set",
        ));
    }
    for f in fields {
        let n = m
            .get(*f)
            .filter(|v| v.as_object().is_some_and(|o| !o.is_empty()));
        let ov = o
            .get(*f)
            .filter(|v| v.as_object().is_some_and(|o| !o.is_empty()));
        if n != ov {
            errs.push(FieldError::forbidden(
                Path::new(f),
                "field is immutable when `immutable` is set",
            ));
        }
    }
}

fn config_map(errs: &mut Errs, m: &Map<String, Value>, old: Option<&Map<String, Value>>) {
    data_keys(errs, m, "configmap");
    // binaryData values are base64; their decoded size counts, close enough as encoded/4*3.
    let size = data_size(m, &["data"])
        + m.get("binaryData")
            .and_then(Value::as_object)
            .map(|d| {
                d.iter()
                    .map(|(k, v)| k.len() + v.as_str().map_or(0, |s| s.len() / 4 * 3))
                    .sum::<usize>()
            })
            .unwrap_or(0);
    if size > 1024 * 1024 {
        errs.push(FieldError::too_long(Path::new(""), 1024 * 1024));
    }
    let _ = boolean(errs, m, "immutable", &Path::new(""));
    immutable_data(errs, m, old, &["data", "binaryData"]);
}

fn secret(errs: &mut Errs, m: &Map<String, Value>, old: Option<&Map<String, Value>>) {
    data_keys(errs, m, "secret");
    let ty = string(errs, m, "type", &Path::new(""));
    let data = m.get("data").and_then(Value::as_object);
    let has = |k: &str| {
        data.is_some_and(|d| d.contains_key(k))
            || m.get("stringData")
                .and_then(Value::as_object)
                .is_some_and(|d| d.contains_key(k))
    };
    let dp = Path::new("data");
    match ty {
        "kubernetes.io/service-account-token" => {
            let annotations = m.get("metadata").and_then(|md| md.get("annotations"));
            let name = annotations
                .and_then(|a| a.get("kubernetes.io/service-account.name"))
                .and_then(Value::as_str)
                .unwrap_or("");
            if name.is_empty() {
                errs.push(FieldError::required(
                    Path::new("metadata")
                        .child("annotations")
                        .key("kubernetes.io/service-account.name"),
                    "",
                ));
            }
        }
        "kubernetes.io/dockercfg" if !has(".dockercfg") => {
            errs.push(FieldError::required(dp.key(".dockercfg"), ""));
        }
        "kubernetes.io/dockerconfigjson" if !has(".dockerconfigjson") => {
            errs.push(FieldError::required(dp.key(".dockerconfigjson"), ""));
        }
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            errs.push(FieldError::required(dp.key("username"), ""));
            errs.push(FieldError::required(dp.key("password"), ""));
        }
        "kubernetes.io/ssh-auth" if !has("ssh-privatekey") => {
            errs.push(FieldError::required(dp.key("ssh-privatekey"), ""));
        }
        "kubernetes.io/tls" => {
            for k in ["tls.crt", "tls.key"] {
                if !has(k) {
                    errs.push(FieldError::required(dp.key(k), ""));
                }
            }
        }
        _ => {}
    }
    if let Some(o) = old {
        let ot = o.get("type").and_then(Value::as_str).unwrap_or("");
        if ot != ty {
            errs.push(FieldError::invalid(Path::new("type"), ty, FIELD_IMMUTABLE));
        }
    }
    immutable_data(errs, m, old, &["data"]);
}

fn namespace(errs: &mut Errs, m: &Map<String, Value>, old: Option<&Map<String, Value>>) {
    let sp = Path::new("spec");
    if let Some(spec) = obj(errs, m, "spec", &Path::new("")) {
        let fp = sp.child("finalizers");
        for (i, f) in strs(errs, spec, "finalizers", &sp).iter().enumerate() {
            for msg in names::is_qualified_name(f) {
                errs.push(FieldError::invalid(fp.index(i), *f, msg));
            }
            meta::validate_kube_finalizer_name(errs, f, &fp.index(i));
        }
    }
    let _ = old;
}

fn node(errs: &mut Errs, m: &Map<String, Value>, old: Option<&Map<String, Value>>) {
    let sp = Path::new("spec");
    let empty = Map::new();
    let spec = obj(errs, m, "spec", &Path::new("")).unwrap_or(&empty);
    let mut unique = BTreeSet::new();
    for (tp, t) in objs(errs, spec, "taints", &sp) {
        let key = string(errs, t, "key", &tp);
        validate_label_name(errs, key, &tp.child("key"));
        let value = string(errs, t, "value", &tp);
        let msgs = names::is_valid_label_value(value);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(
                tp.child("value"),
                value,
                msgs.join(";"),
            ));
        }
        let effect = string(errs, t, "effect", &tp);
        if effect.is_empty() {
            errs.push(FieldError::required(tp.child("effect"), ""));
        } else {
            taint_effect(errs, effect, &tp.child("effect"));
        }
        if !unique.insert((effect, key)) {
            errs.push(FieldError {
                kind: crate::error::FieldErrorType::Duplicate,
                field: tp.to_string(),
                bad_value: None,
                detail: format!(
                    "core.Taint{{Key:{}, Value:{}, Effect:{}, TimeAdded:<nil>}}: taints must be unique by key and effect pair",
                    go_quote(key),
                    go_quote(value),
                    go_quote(effect)
                ),
            });
        }
    }
    if let Some(cidr) = opt_str(errs, spec, "podCIDR", &sp).filter(|s| !s.is_empty())
        && !valid_cidr(cidr)
    {
        errs.push(FieldError::invalid(
            sp.child("podCIDRs").index(0),
            cidr,
            "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
        ));
    }
    if let Some(o) = old {
        let os = o.get("spec").and_then(Value::as_object).unwrap_or(&empty);
        for f in ["podCIDR", "providerID"] {
            let ov = os.get(f).and_then(Value::as_str).unwrap_or("");
            let nv = spec.get(f).and_then(Value::as_str).unwrap_or("");
            if !ov.is_empty() && ov != nv {
                let p = if f == "podCIDR" {
                    sp.child("podCIDRs")
                } else {
                    sp.child("providerID")
                };
                errs.push(FieldError::forbidden(
                    p,
                    format!("node updates may not change {f} except from \"\" to valid"),
                ));
            }
        }
    }
}

fn valid_cidr(s: &str) -> bool {
    let Some((ip, bits)) = s.split_once('/') else {
        return false;
    };
    let Ok(ip) = ip.parse::<std::net::IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    bits.parse::<u32>().is_ok_and(|b| b <= max)
}

const ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];

/// `required_detail`: the Required message when the list is empty (PV "", PVC "at least 1 ...").
fn access_modes(errs: &mut Errs, spec: &Map<String, Value>, path: &Path, required_detail: &str) {
    let modes = strs(errs, spec, "accessModes", path);
    if modes.is_empty() {
        errs.push(FieldError::required(
            path.child("accessModes"),
            required_detail,
        ));
    }
    for m in &modes {
        if !ACCESS_MODES.contains(m) {
            errs.push(FieldError::not_supported(
                path.child("accessModes"),
                *m,
                ACCESS_MODES,
            ));
        }
    }
    if modes.contains(&"ReadWriteOncePod") && modes.len() > 1 {
        errs.push(FieldError::forbidden(
            path.child("accessModes"),
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
}

fn persistent_volume(errs: &mut Errs, m: &Map<String, Value>, old: Option<&Map<String, Value>>) {
    let sp = Path::new("spec");
    let empty = Map::new();
    let spec = obj(errs, m, "spec", &Path::new("")).unwrap_or(&empty);
    access_modes(errs, spec, &sp, "");
    match obj(errs, spec, "capacity", &sp) {
        None => errs.push(FieldError::required(sp.child("capacity"), "")),
        Some(c) => {
            if !c.contains_key("storage") || c.len() != 1 {
                errs.push(FieldError::not_supported(
                    sp.child("capacity"),
                    Value::Object(c.clone()),
                    &["storage"],
                ));
            }
            resource_list(errs, c, &sp.child("capacity"), ResourceKind::Any);
        }
    }
    let rp = string(errs, spec, "persistentVolumeReclaimPolicy", &sp);
    if !rp.is_empty() && !matches!(rp, "Delete" | "Recycle" | "Retain") {
        errs.push(FieldError::not_supported(
            sp.child("persistentVolumeReclaimPolicy"),
            rp,
            &["Delete", "Recycle", "Retain"],
        ));
    }
    if let Some(vm) = opt_str(errs, spec, "volumeMode", &sp)
        && !matches!(vm, "Block" | "Filesystem")
    {
        errs.push(FieldError::not_supported(
            sp.child("volumeMode"),
            vm,
            &["Block", "Filesystem"],
        ));
    }
    let sources = [
        "hostPath",
        "gcePersistentDisk",
        "awsElasticBlockStore",
        "glusterfs",
        "nfs",
        "rbd",
        "quobyte",
        "cinder",
        "cephfs",
        "fc",
        "flocker",
        "flexVolume",
        "azureFile",
        "vsphereVolume",
        "photonPersistentDisk",
        "portworxVolume",
        "azureDisk",
        "scaleIO",
        "local",
        "storageos",
        "csi",
        "iscsi",
    ];
    let n = sources
        .iter()
        .filter(|s| present(spec, s).is_some())
        .count();
    if n == 0 {
        errs.push(FieldError::required(&sp, "must specify a volume type"));
    }
    if let Some(h) = obj(errs, spec, "hostPath", &sp)
        && string(errs, h, "path", &sp.child("hostPath")).is_empty()
    {
        errs.push(FieldError::required(sp.child("hostPath").child("path"), ""));
    }
    if let Some(o) = old {
        let os = o.get("spec").and_then(Value::as_object).unwrap_or(&empty);
        immutable(
            errs,
            spec.get("volumeMode"),
            os.get("volumeMode"),
            &sp.child("volumeMode"),
        );
    }
}

fn persistent_volume_claim(
    errs: &mut Errs,
    m: &Map<String, Value>,
    old: Option<&Map<String, Value>>,
) {
    let sp = Path::new("spec");
    let empty = Map::new();
    let spec = obj(errs, m, "spec", &Path::new("")).unwrap_or(&empty);
    pvc_spec(errs, spec, &sp);
    if let Some(o) = old {
        let os = o.get("spec").and_then(Value::as_object).unwrap_or(&empty);
        // Only the storage request (expansion), volumeAttributesClassName and, when unbound,
        // volumeName may change.
        let mut masked_new = spec.clone();
        let mut masked_old = os.clone();
        for mm in [&mut masked_new, &mut masked_old] {
            mm.remove("resources");
            mm.remove("volumeAttributesClassName");
        }
        if os
            .get("volumeName")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            masked_new.remove("volumeName");
            masked_old.remove("volumeName");
        }
        if masked_new != masked_old {
            errs.push(FieldError::forbidden(
                &sp,
                format!(
                    "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n{}",
                    pod_spec_diff(&masked_old, &masked_new).replace("core.PodSpec", "core.PersistentVolumeClaimSpec")
                ),
            ));
        }
        let storage = |s: &Map<String, Value>| {
            s.get("resources")
                .and_then(|r| r.get("requests"))
                .and_then(|r| r.get("storage"))
                .and_then(|q| Quantity::from_json(q).ok())
        };
        if let (Some(n), Some(o)) = (storage(spec), storage(os))
            && n < o
        {
            errs.push(FieldError::forbidden(
                sp.child("resources").child("requests").key("storage"),
                "field can not be less than status.capacity",
            ));
        }
    }
}

pub(super) fn pvc_spec(errs: &mut Errs, spec: &Map<String, Value>, sp: &Path) {
    access_modes(errs, spec, sp, "at least 1 access mode is required");
    let rp = sp.child("resources");
    let requests = obj(errs, spec, "resources", sp).and_then(|r| obj(errs, r, "requests", &rp));
    let p = rp.key("storage");
    match requests.and_then(|r| r.get("storage")) {
        None => errs.push(FieldError::required(&p, "")),
        Some(q) => match Quantity::from_json(q) {
            Err(e) => errs.push(FieldError::invalid(&p, q.clone(), e.to_string())),
            Ok(q) if q.sign() <= 0 => errs.push(FieldError::invalid(
                &p,
                q.to_string(),
                "must be greater than zero",
            )),
            Ok(_) => {}
        },
    }
    if let Some(vm) = opt_str(errs, spec, "volumeMode", sp)
        && !matches!(vm, "Block" | "Filesystem")
    {
        errs.push(FieldError::not_supported(
            sp.child("volumeMode"),
            vm,
            &["Block", "Filesystem"],
        ));
    }
    if let Some(sel) = obj(errs, spec, "selector", sp) {
        validate_label_selector(errs, sel, &sp.child("selector"));
    }
    if let Some(sc) = opt_str(errs, spec, "storageClassName", sp).filter(|s| !s.is_empty()) {
        for msg in names::name_is_dns_subdomain(sc, false) {
            errs.push(FieldError::invalid(sp.child("storageClassName"), sc, msg));
        }
    }
}

fn service_account(errs: &mut Errs, m: &Map<String, Value>) {
    for (p, s) in objs(errs, m, "imagePullSecrets", &Path::new("")) {
        if string(errs, s, "name", &p).is_empty() {
            errs.push(FieldError::required(p.child("name"), ""));
        }
    }
}

fn limit_range(errs: &mut Errs, m: &Map<String, Value>) {
    let sp = Path::new("spec");
    let empty = Map::new();
    let spec = obj(errs, m, "spec", &Path::new("")).unwrap_or(&empty);
    let mut types = BTreeSet::new();
    for (ip, item) in objs(errs, spec, "limits", &sp) {
        let ty = string(errs, item, "type", &ip);
        if !types.insert(ty) {
            errs.push(FieldError::duplicate(ip.child("type"), ty));
        }
        let list = |errs: &mut Errs, k: &str| {
            obj(errs, item, k, &ip)
                .map(|l| resource_list(errs, l, &ip.child(k), ResourceKind::Any))
                .unwrap_or_default()
        };
        let max = list(errs, "max");
        let min = list(errs, "min");
        let default = list(errs, "default");
        let default_request = list(errs, "defaultRequest");
        let _ratio = list(errs, "maxLimitRequestRatio");
        if ty == "Pod" {
            if !default.is_empty() {
                errs.push(FieldError::forbidden(
                    ip.child("default"),
                    "may not be specified when `type` is 'Pod'",
                ));
            }
            if !default_request.is_empty() {
                errs.push(FieldError::forbidden(
                    ip.child("defaultRequest"),
                    "may not be specified when `type` is 'Pod'",
                ));
            }
        }
        for (k, mn) in &min {
            if let Some(mx) = max.get(k)
                && mn > mx
            {
                errs.push(FieldError::invalid(
                    ip.child("min").key(k),
                    mn.to_string(),
                    format!("min value {mn} is greater than max value {mx}"),
                ));
            }
        }
        for (k, d) in &default {
            if let Some(mx) = max.get(k)
                && d > mx
            {
                errs.push(FieldError::invalid(
                    ip.child("default").key(k),
                    d.to_string(),
                    format!("default value {d} is greater than max value {mx}"),
                ));
            }
            if let Some(mn) = min.get(k)
                && mn > d
            {
                errs.push(FieldError::invalid(
                    ip.child("default").key(k),
                    d.to_string(),
                    format!("min value {mn} is greater than default value {d}"),
                ));
            }
        }
        for (k, dr) in &default_request {
            if let Some(mx) = max.get(k)
                && dr > mx
            {
                errs.push(FieldError::invalid(
                    ip.child("defaultRequest").key(k),
                    dr.to_string(),
                    format!("default request value {dr} is greater than max value {mx}"),
                ));
            }
            if let Some(d) = default.get(k)
                && dr > d
            {
                errs.push(FieldError::invalid(
                    ip.child("defaultRequest").key(k),
                    dr.to_string(),
                    format!("default request value {dr} is greater than default limit value {d}"),
                ));
            }
            if let Some(mn) = min.get(k)
                && mn > dr
            {
                errs.push(FieldError::invalid(
                    ip.child("defaultRequest").key(k),
                    dr.to_string(),
                    format!("min value {mn} is greater than default request value {dr}"),
                ));
            }
        }
    }
}

fn resource_quota(errs: &mut Errs, m: &Map<String, Value>) {
    let sp = Path::new("spec");
    let empty = Map::new();
    let spec = obj(errs, m, "spec", &Path::new("")).unwrap_or(&empty);
    if let Some(h) = obj(errs, spec, "hard", &sp) {
        resource_list(errs, h, &sp.child("hard"), ResourceKind::Quota);
    }
    for (i, s) in strs(errs, spec, "scopes", &sp).iter().enumerate() {
        let ok = [
            "Terminating",
            "NotTerminating",
            "BestEffort",
            "NotBestEffort",
            "PriorityClass",
            "CrossNamespacePodAffinity",
            "VolumeAttributesClass",
        ];
        if !ok.contains(s) {
            errs.push(FieldError::not_supported(
                sp.child("scopes").index(i),
                *s,
                &ok,
            ));
        }
    }
}

fn endpoints(errs: &mut Errs, m: &Map<String, Value>) {
    for (sp, ss) in objs(errs, m, "subsets", &Path::new("")) {
        for key in ["addresses", "notReadyAddresses"] {
            for (ap, a) in objs(errs, ss, key, &sp) {
                let ip = string(errs, a, "ip", &ap);
                for msg in names::is_valid_ip_msgs(ip) {
                    errs.push(FieldError::invalid(ap.child("ip"), ip, msg));
                }
            }
        }
        for (pp, p) in objs(errs, ss, "ports", &sp) {
            let port = int(errs, p, "port", &pp).unwrap_or(0);
            for msg in names::is_valid_port_num(port) {
                errs.push(FieldError::invalid(pp.child("port"), port, msg));
            }
            protocol(errs, p, &pp, true);
            if let Some(n) = opt_str(errs, p, "name", &pp).filter(|n| !n.is_empty()) {
                for msg in names::is_dns1123_label(n) {
                    errs.push(FieldError::invalid(pp.child("name"), n, msg));
                }
            }
        }
    }
}

fn event(errs: &mut Errs, m: &Map<String, Value>) {
    let ns = m
        .get("metadata")
        .and_then(|md| md.get("namespace"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let io_ns = m
        .get("involvedObject")
        .and_then(|io| io.get("namespace"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let p = Path::new("involvedObject").child("namespace");
    if io_ns.is_empty() {
        if !ns.is_empty() && ns != "default" {
            errs.push(FieldError::invalid(
                p,
                io_ns,
                "does not match event.namespace",
            ));
        }
    } else if ns != io_ns {
        errs.push(FieldError::invalid(
            p,
            io_ns,
            "does not match event.namespace",
        ));
    }
}
