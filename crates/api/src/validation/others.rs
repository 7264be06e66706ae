//! The smaller groups: autoscaling, policy, rbac, coordination, scheduling, storage,
//! networking, discovery, events and certificates.

use serde_json::{Map, Value};

use super::apps::{int_or_percent, not_more_than_100};
use super::meta::{FIELD_IMMUTABLE, nonnegative, validate_label_selector};
use super::names;
use super::{
    Errs, Path, arr, immutable, int, invalid_go, obj, objs, opt_str, present, string, strs,
};
use crate::error::{FieldError, FieldErrorType, go_quote};

pub(super) fn validate(
    errs: &mut Errs,
    group: &str,
    version: &str,
    kind: &str,
    m: &Map<String, Value>,
    old: Option<&Map<String, Value>>,
) {
    let sp = Path::new("spec");
    let empty = Map::new();
    let spec = || m.get("spec").and_then(Value::as_object).unwrap_or(&empty);
    let old_spec = old.and_then(|o| o.get("spec")).and_then(Value::as_object);
    match (group, kind) {
        ("autoscaling", "HorizontalPodAutoscaler") => {
            let _ = obj(errs, m, "spec", &Path::new(""));
            hpa(errs, version, spec(), &sp);
        }
        ("policy", "PodDisruptionBudget") => {
            let _ = obj(errs, m, "spec", &Path::new(""));
            pdb(errs, spec(), &sp);
        }
        ("rbac.authorization.k8s.io", "Role") => {
            rules(errs, m, true);
        }
        ("rbac.authorization.k8s.io", "ClusterRole") => {
            rules(errs, m, false);
            if let Some(ar) = obj(errs, m, "aggregationRule", &Path::new("")) {
                let p = Path::new("aggregationRule").child("clusterRoleSelectors");
                let sels = objs(
                    errs,
                    ar,
                    "clusterRoleSelectors",
                    &Path::new("aggregationRule"),
                );
                if sels.is_empty() {
                    errs.push(FieldError::required(
                        &p,
                        "at least one clusterRoleSelector required if aggregationRule is non-nil",
                    ));
                }
                for (sp, s) in sels {
                    validate_label_selector(errs, s, &sp);
                }
            }
        }
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            role_binding(errs, m, kind == "RoleBinding");
            if let Some(o) = old
                && m.get("roleRef") != o.get("roleRef")
            {
                let r = m.get("roleRef");
                let s = |k: &str| {
                    go_quote(
                        r.and_then(|r| r.get(k))
                            .and_then(Value::as_str)
                            .unwrap_or(""),
                    )
                };
                errs.push(invalid_go(
                    &Path::new("roleRef"),
                    &format!(
                        "rbac.RoleRef{{APIGroup:{}, Kind:{}, Name:{}}}",
                        s("apiGroup"),
                        s("kind"),
                        s("name")
                    ),
                    "cannot change roleRef",
                ));
            }
        }
        ("coordination.k8s.io", "Lease") => {
            let s = obj(errs, m, "spec", &Path::new("")).unwrap_or(&empty);
            if let Some(d) = int(errs, s, "leaseDurationSeconds", &sp)
                && d <= 0
            {
                errs.push(FieldError::invalid(
                    sp.child("leaseDurationSeconds"),
                    d,
                    "must be greater than 0",
                ));
            }
            if let Some(t) = int(errs, s, "leaseTransitions", &sp) {
                nonnegative(errs, t, &sp.child("leaseTransitions"));
            }
        }
        ("scheduling.k8s.io", "PriorityClass") => priority_class(errs, m, old),
        ("storage.k8s.io", "StorageClass") => storage_class(errs, m, old),
        ("networking.k8s.io", "Ingress") => {
            let _ = obj(errs, m, "spec", &Path::new(""));
            ingress(errs, spec(), &sp);
        }
        ("networking.k8s.io", "IngressClass") => {
            let s = obj(errs, m, "spec", &Path::new("")).unwrap_or(&empty);
            let c = string(errs, s, "controller", &sp);
            if c.is_empty() {
                errs.push(FieldError::required(sp.child("controller"), ""));
            } else if c.len() > 250 {
                errs.push(FieldError::too_long(sp.child("controller"), 250));
            }
            if let Some(o) = old_spec {
                immutable(
                    errs,
                    s.get("controller"),
                    o.get("controller"),
                    &sp.child("controller"),
                );
            }
        }
        ("networking.k8s.io", "NetworkPolicy") => {
            let _ = obj(errs, m, "spec", &Path::new(""));
            network_policy(errs, spec(), &sp);
        }
        ("discovery.k8s.io", "EndpointSlice") => endpoint_slice(errs, m, old),
        ("events.k8s.io", "Event") => event(errs, m),
        ("certificates.k8s.io", "CertificateSigningRequest") => {
            let s = obj(errs, m, "spec", &Path::new("")).unwrap_or(&empty);
            if string(errs, s, "request", &sp).is_empty() {
                errs.push(FieldError::invalid(
                    sp.child("request"),
                    "",
                    "PEM block type must be CERTIFICATE REQUEST",
                ));
            }
            if string(errs, s, "signerName", &sp).is_empty() {
                errs.push(FieldError::required(sp.child("signerName"), ""));
            }
            if arr(errs, s, "usages", &sp).is_empty() {
                errs.push(FieldError::required(
                    sp.child("usages"),
                    "usages must be provided",
                ));
            }
            if let Some(e) = int(errs, s, "expirationSeconds", &sp)
                && e < 600
            {
                errs.push(FieldError::invalid(
                    sp.child("expirationSeconds"),
                    e,
                    "may not specify a duration less than 600 seconds (10 minutes)",
                ));
            }
            if let Some(o) = old_spec
                && s != o
            {
                errs.push(FieldError::forbidden(
                    &sp,
                    "updates to certificateSigningRequest spec are forbidden",
                ));
            }
        }
        _ => {}
    }
}

fn hpa(errs: &mut Errs, version: &str, spec: &Map<String, Value>, sp: &Path) {
    let min = int(errs, spec, "minReplicas", sp);
    if let Some(mn) = min
        && mn < 1
    {
        errs.push(FieldError::invalid(
            sp.child("minReplicas"),
            mn,
            "must be greater than or equal to 1",
        ));
    }
    let max = int(errs, spec, "maxReplicas", sp).unwrap_or(0);
    if max < 1 {
        errs.push(FieldError::invalid(
            sp.child("maxReplicas"),
            max,
            "must be greater than 0",
        ));
    }
    if min.is_some_and(|mn| max < mn) {
        errs.push(FieldError::invalid(
            sp.child("maxReplicas"),
            max,
            "must be greater than or equal to `minReplicas`",
        ));
    }
    let rp = sp.child("scaleTargetRef");
    let empty = Map::new();
    let r = obj(errs, spec, "scaleTargetRef", sp).unwrap_or(&empty);
    let before = errs.0.len();
    for f in ["kind", "name"] {
        let v = string(errs, r, f, &rp);
        if v.is_empty() {
            errs.push(FieldError::required(rp.child(f), ""));
        } else {
            for msg in names::is_valid_path_segment_name(v, false) {
                errs.push(FieldError::invalid(rp.child(f), v, msg));
            }
        }
    }
    if errs.0.len() != before {
        return;
    }
    if version == "v1" {
        if let Some(t) = int(errs, spec, "targetCPUUtilizationPercentage", sp)
            && t < 1
        {
            errs.push(FieldError::invalid(
                sp.child("metrics")
                    .index(0)
                    .child("resource")
                    .child("target")
                    .child("averageUtilization"),
                t,
                "must be greater than 0",
            ));
        }
        return;
    }
    let supported = [
        "ContainerResource",
        "External",
        "Object",
        "Pods",
        "Resource",
    ];
    for (mp, metric) in objs(errs, spec, "metrics", sp) {
        let ty = string(errs, metric, "type", &mp);
        if ty.is_empty() {
            errs.push(FieldError::required(
                mp.child("type"),
                "must specify a metric source type",
            ));
            continue;
        }
        if !supported.contains(&ty) {
            errs.push(FieldError::not_supported(mp.child("type"), ty, &supported));
            continue;
        }
        let key = {
            let mut c = ty.chars();
            c.next()
                .map(|f| f.to_lowercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        };
        let Some(src) = obj(errs, metric, &key, &mp) else {
            errs.push(FieldError::required(
                mp.child(&key),
                format!("must populate information for the given metric source (only allowed when type is {ty})"),
            ));
            continue;
        };
        let srcp = mp.child(&key);
        if matches!(ty, "Resource" | "ContainerResource") {
            if string(errs, src, "name", &srcp).is_empty() {
                errs.push(FieldError::required(
                    srcp.child("name"),
                    "must specify a resource name",
                ));
            }
            if ty == "ContainerResource" && string(errs, src, "container", &srcp).is_empty() {
                errs.push(FieldError::required(
                    srcp.child("container"),
                    "must specify a container",
                ));
            }
        }
        let tp = srcp.child("target");
        let empty = Map::new();
        let target = obj(errs, src, "target", &srcp).unwrap_or(&empty);
        let tty = string(errs, target, "type", &tp);
        match tty {
            "" => errs.push(FieldError::required(
                tp.child("type"),
                "must specify a metric target type",
            )),
            "Utilization" | "Value" | "AverageValue" => {}
            other => errs.push(FieldError::invalid(
                tp.child("type"),
                other,
                "must be either Utilization, Value, or AverageValue",
            )),
        }
        if let Some(u) = int(errs, target, "averageUtilization", &tp)
            && u < 1
        {
            errs.push(FieldError::invalid(
                tp.child("averageUtilization"),
                u,
                "must be greater than 0",
            ));
        }
        for q in ["value", "averageValue"] {
            if let Some(v) = present(target, q) {
                match crate::quantity::Quantity::from_json(v) {
                    Ok(qq) if qq.sign() <= 0 => errs.push(FieldError::invalid(
                        tp.child(q),
                        qq.to_string(),
                        "must be positive",
                    )),
                    Ok(_) => {}
                    Err(e) => errs.push(FieldError::invalid(tp.child(q), v.clone(), e.to_string())),
                }
            }
        }
    }
    if let Some(b) = obj(errs, spec, "behavior", sp) {
        let bp = sp.child("behavior");
        for dir in ["scaleUp", "scaleDown"] {
            let Some(r) = obj(errs, b, dir, &bp) else {
                continue;
            };
            let rp = bp.child(dir);
            if let Some(w) = int(errs, r, "stabilizationWindowSeconds", &rp)
                && !(0..=3600).contains(&w)
            {
                errs.push(FieldError::invalid(
                    rp.child("stabilizationWindowSeconds"),
                    w,
                    if w < 0 {
                        "must be greater than or equal to zero"
                    } else {
                        "must be less than or equal to 3600"
                    },
                ));
            }
            if let Some(sel) = opt_str(errs, r, "selectPolicy", &rp)
                && !matches!(sel, "Max" | "Min" | "Disabled")
            {
                errs.push(FieldError::not_supported(
                    rp.child("selectPolicy"),
                    sel,
                    &["Disabled", "Max", "Min"],
                ));
            }
            let policies = objs(errs, r, "policies", &rp);
            if policies.is_empty() && present(r, "policies").is_some() {
                errs.push(FieldError::required(
                    rp.child("policies"),
                    "must specify at least one Policy",
                ));
            }
            for (pp, p) in policies {
                let t = string(errs, p, "type", &pp);
                if !matches!(t, "Pods" | "Percent") {
                    errs.push(FieldError::invalid(
                        pp.child("type"),
                        t,
                        "must be either Pods or Percent",
                    ));
                }
                let v = int(errs, p, "value", &pp).unwrap_or(0);
                if v <= 0 {
                    errs.push(FieldError::invalid(
                        pp.child("value"),
                        v,
                        "must be greater than zero",
                    ));
                }
                let per = int(errs, p, "periodSeconds", &pp).unwrap_or(0);
                if per <= 0 {
                    errs.push(FieldError::invalid(
                        pp.child("periodSeconds"),
                        per,
                        "must be greater than zero",
                    ));
                } else if per > 1800 {
                    errs.push(FieldError::invalid(
                        pp.child("periodSeconds"),
                        per,
                        "must be less than or equal to 1800",
                    ));
                }
            }
        }
    }
}

fn pdb(errs: &mut Errs, spec: &Map<String, Value>, sp: &Path) {
    let min = present(spec, "minAvailable");
    let max = present(spec, "maxUnavailable");
    if min.is_some() && max.is_some() {
        errs.push(invalid_go(
            sp,
            "policy.PodDisruptionBudgetSpec{...}",
            "minAvailable and maxUnavailable cannot be both set",
        ));
    }
    if min.is_some() {
        int_or_percent(errs, min, &sp.child("minAvailable"));
        not_more_than_100(errs, min, &sp.child("minAvailable"));
    }
    if max.is_some() {
        int_or_percent(errs, max, &sp.child("maxUnavailable"));
        not_more_than_100(errs, max, &sp.child("maxUnavailable"));
    }
    if let Some(sel) = obj(errs, spec, "selector", sp) {
        validate_label_selector(errs, sel, &sp.child("selector"));
    }
    if let Some(p) = opt_str(errs, spec, "unhealthyPodEvictionPolicy", sp)
        && !matches!(p, "AlwaysAllow" | "IfHealthyBudget")
    {
        errs.push(FieldError::not_supported(
            sp.child("unhealthyPodEvictionPolicy"),
            p,
            &["AlwaysAllow", "IfHealthyBudget"],
        ));
    }
}

fn go_string_slice(v: &[&str]) -> String {
    let q: Vec<String> = v.iter().map(|s| go_quote(s)).collect();
    format!("[]string{{{}}}", q.join(", "))
}

fn rules(errs: &mut Errs, m: &Map<String, Value>, namespaced: bool) {
    for (rp, r) in objs(errs, m, "rules", &Path::new("")) {
        if arr(errs, r, "verbs", &rp).is_empty() {
            errs.push(FieldError::required(
                rp.child("verbs"),
                "verbs must contain at least one value",
            ));
        }
        let urls = strs(errs, r, "nonResourceURLs", &rp);
        if !urls.is_empty() {
            if namespaced {
                errs.push(invalid_go(
                    &rp.child("nonResourceURLs"),
                    &go_string_slice(&urls),
                    "namespaced rules cannot apply to non-resource URLs",
                ));
            }
            let has_resources = ["apiGroups", "resources", "resourceNames"].iter().any(|k| {
                r.get(*k)
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty())
            });
            if has_resources {
                errs.push(invalid_go(
                    &rp.child("nonResourceURLs"),
                    &go_string_slice(&urls),
                    "rules cannot apply to both regular resources and non-resource URLs",
                ));
            }
            continue;
        }
        if arr(errs, r, "apiGroups", &rp).is_empty() {
            errs.push(FieldError::required(
                rp.child("apiGroups"),
                "resource rules must supply at least one api group",
            ));
        }
        if arr(errs, r, "resources", &rp).is_empty() {
            errs.push(FieldError::required(
                rp.child("resources"),
                "resource rules must supply at least one resource",
            ));
        }
    }
}

fn role_binding(errs: &mut Errs, m: &Map<String, Value>, namespaced: bool) {
    let rp = Path::new("roleRef");
    let empty = Map::new();
    let r = obj(errs, m, "roleRef", &Path::new("")).unwrap_or(&empty);
    let group = string(errs, r, "apiGroup", &rp);
    if group != "rbac.authorization.k8s.io" {
        errs.push(FieldError::not_supported(
            rp.child("apiGroup"),
            group,
            &["rbac.authorization.k8s.io"],
        ));
    }
    let kind = string(errs, r, "kind", &rp);
    if namespaced {
        if !matches!(kind, "Role" | "ClusterRole") {
            errs.push(FieldError::not_supported(
                rp.child("kind"),
                kind,
                &["Role", "ClusterRole"],
            ));
        }
    } else if kind != "ClusterRole" {
        errs.push(FieldError::not_supported(
            rp.child("kind"),
            kind,
            &["ClusterRole"],
        ));
    }
    let name = string(errs, r, "name", &rp);
    if name.is_empty() {
        errs.push(FieldError::required(rp.child("name"), ""));
    } else {
        for msg in names::is_valid_path_segment_name(name, false) {
            errs.push(FieldError::invalid(rp.child("name"), name, msg));
        }
    }
    for (sp, s) in objs(errs, m, "subjects", &Path::new("")) {
        let name = string(errs, s, "name", &sp);
        if name.is_empty() {
            errs.push(FieldError::required(sp.child("name"), ""));
        }
        let group = string(errs, s, "apiGroup", &sp);
        match string(errs, s, "kind", &sp) {
            "ServiceAccount" => {
                if !name.is_empty() {
                    for msg in names::name_is_dns_subdomain(name, false) {
                        errs.push(FieldError::invalid(sp.child("name"), name, msg));
                    }
                }
                if !group.is_empty() {
                    errs.push(FieldError::not_supported(
                        sp.child("apiGroup"),
                        group,
                        &[""],
                    ));
                }
                if !namespaced && string(errs, s, "namespace", &sp).is_empty() {
                    errs.push(FieldError::required(sp.child("namespace"), ""));
                }
            }
            "User" | "Group" => {
                if group != "rbac.authorization.k8s.io" {
                    errs.push(FieldError::not_supported(
                        sp.child("apiGroup"),
                        group,
                        &["rbac.authorization.k8s.io"],
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(
                sp.child("kind"),
                other,
                &["ServiceAccount", "User", "Group"],
            )),
        }
    }
}

fn priority_class(errs: &mut Errs, m: &Map<String, Value>, old: Option<&Map<String, Value>>) {
    let name = m
        .get("metadata")
        .and_then(|md| md.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let value = int(errs, m, "value", &Path::new("")).unwrap_or(0);
    let global_default = m
        .get("globalDefault")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if name.starts_with("system-") {
        let known = match name {
            "system-node-critical" => Some(2000001000),
            "system-cluster-critical" => Some(2000000000),
            _ => None,
        };
        let err = match known {
            None => Some(format!("{name} is not a known system priority class")),
            Some(v) if v != value => Some(format!("value of {name} PriorityClass must be {v}")),
            Some(_) if global_default => Some(format!(
                "globalDefault of {name} PriorityClass must be false"
            )),
            _ => None,
        };
        if let Some(e) = err {
            errs.push(FieldError::forbidden(
                Path::new("metadata").child("name"),
                format!("priority class names with 'system-' prefix are reserved for system use only. error: {e}"),
            ));
        }
    } else if value > 1_000_000_000 {
        errs.push(FieldError::forbidden(
            Path::new("value"),
            "maximum allowed value of a user defined priority is 1000000000",
        ));
    }
    if let Some(p) = opt_str(errs, m, "preemptionPolicy", &Path::new(""))
        && !matches!(p, "PreemptLowerPriority" | "Never")
    {
        errs.push(FieldError::not_supported(
            Path::new("preemptionPolicy"),
            p,
            &["Never", "PreemptLowerPriority"],
        ));
    }
    if let Some(o) = old {
        if m.get("value") != o.get("value") {
            errs.push(FieldError::forbidden(
                Path::new("value"),
                "may not be changed in an update.",
            ));
        }
        immutable(
            errs,
            m.get("preemptionPolicy"),
            o.get("preemptionPolicy"),
            &Path::new("preemptionPolicy"),
        );
    }
}

fn storage_class(errs: &mut Errs, m: &Map<String, Value>, old: Option<&Map<String, Value>>) {
    let root = Path::new("");
    let prov = string(errs, m, "provisioner", &root);
    if prov.is_empty() {
        errs.push(FieldError::required(Path::new("provisioner"), ""));
    } else {
        for msg in names::is_qualified_name(&prov.to_lowercase()) {
            errs.push(FieldError::invalid(
                Path::new("provisioner"),
                prov.to_lowercase(),
                msg,
            ));
        }
    }
    if let Some(rp) = opt_str(errs, m, "reclaimPolicy", &root)
        && !rp.is_empty()
        && !matches!(rp, "Delete" | "Retain")
    {
        errs.push(FieldError::not_supported(
            Path::new("reclaimPolicy"),
            rp,
            &["Delete", "Retain"],
        ));
    }
    match opt_str(errs, m, "volumeBindingMode", &root) {
        None => errs.push(FieldError::required(Path::new("volumeBindingMode"), "")),
        Some("Immediate" | "WaitForFirstConsumer") => {}
        Some(other) => errs.push(FieldError::not_supported(
            Path::new("volumeBindingMode"),
            other,
            &["Immediate", "WaitForFirstConsumer"],
        )),
    }
    if let Some(p) = obj(errs, m, "parameters", &root) {
        if p.len() > 512 {
            errs.push(FieldError::too_long(Path::new("parameters"), 512));
        }
        for (k, v) in p {
            if k.is_empty() {
                errs.push(FieldError::invalid(
                    Path::new("parameters"),
                    "",
                    "field can not be empty.",
                ));
            }
            if !v.is_string() {
                errs.type_invalid(&Path::new("parameters").key(k), v, "string");
            }
        }
    }
    if let Some(o) = old {
        if m.get("parameters")
            .filter(|p| p.as_object().is_some_and(|o| !o.is_empty()))
            != o.get("parameters")
                .filter(|p| p.as_object().is_some_and(|o| !o.is_empty()))
        {
            errs.push(FieldError::forbidden(
                Path::new("parameters"),
                "updates to parameters are forbidden.",
            ));
        }
        if m.get("provisioner") != o.get("provisioner") {
            errs.push(FieldError::forbidden(
                Path::new("provisioner"),
                "updates to provisioner are forbidden.",
            ));
        }
        if m.get("reclaimPolicy") != o.get("reclaimPolicy") {
            errs.push(FieldError::forbidden(
                Path::new("reclaimPolicy"),
                "updates to reclaimPolicy are forbidden.",
            ));
        }
        immutable(
            errs,
            m.get("volumeBindingMode"),
            o.get("volumeBindingMode"),
            &Path::new("volumeBindingMode"),
        );
    }
}

fn ingress(errs: &mut Errs, spec: &Map<String, Value>, sp: &Path) {
    let rules = objs(errs, spec, "rules", sp);
    let backend = obj(errs, spec, "defaultBackend", sp);
    if rules.is_empty() && backend.is_none() {
        errs.push(invalid_go(
            sp,
            "[]networking.IngressRule(nil)",
            "either `defaultBackend` or `rules` must be specified",
        ));
    }
    if let Some(b) = backend {
        ingress_backend(errs, b, &sp.child("defaultBackend"));
    }
    for (rp, r) in rules {
        let host = string(errs, r, "host", &rp);
        if !host.is_empty() {
            if names::is_valid_ip(host) {
                errs.push(FieldError::invalid(
                    rp.child("host"),
                    host,
                    "must be a DNS name, not an IP address",
                ));
            }
            if host.contains('*') {
                let ok =
                    host.starts_with("*.") && names::is_dns1123_subdomain(&host[2..]).is_empty();
                if !ok {
                    errs.push(FieldError::invalid(
                        rp.child("host"),
                        host,
                        names::regex_error(
                            "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character",
                            "\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*",
                            &["*.example.com"],
                        ),
                    ));
                }
            } else {
                for msg in names::is_dns1123_subdomain(host) {
                    errs.push(FieldError::invalid(rp.child("host"), host, msg));
                }
            }
        }
        let Some(http) = obj(errs, r, "http", &rp) else {
            continue;
        };
        let hp = rp.child("http");
        let paths = objs(errs, http, "paths", &hp);
        if paths.is_empty() {
            errs.push(FieldError::required(hp.child("paths"), ""));
        }
        for (pp, p) in paths {
            let path = string(errs, p, "path", &pp);
            match opt_str(errs, p, "pathType", &pp) {
                None => {
                    errs.push(FieldError::required(
                        pp.child("pathType"),
                        "pathType must be specified",
                    ));
                    continue;
                }
                Some("Exact" | "Prefix") => {
                    if !path.starts_with('/') {
                        errs.push(FieldError::invalid(
                            pp.child("path"),
                            path,
                            "must be an absolute path",
                        ));
                    }
                    if !path.is_empty() {
                        for seq in ["//", "/./", "/../", "%2f", "%2F"] {
                            if path.contains(seq) {
                                errs.push(FieldError::invalid(
                                    pp.child("path"),
                                    path,
                                    format!("must not contain '{seq}'"),
                                ));
                            }
                        }
                        for suf in ["/..", "/."] {
                            if path.ends_with(suf) {
                                errs.push(FieldError::invalid(
                                    pp.child("path"),
                                    path,
                                    format!("cannot end with '{suf}'"),
                                ));
                            }
                        }
                    }
                }
                Some("ImplementationSpecific") => {
                    if !path.is_empty() && !path.starts_with('/') {
                        errs.push(FieldError::invalid(
                            pp.child("path"),
                            path,
                            "must be an absolute path",
                        ));
                    }
                }
                Some(other) => errs.push(FieldError::not_supported(
                    pp.child("pathType"),
                    other,
                    &["Exact", "ImplementationSpecific", "Prefix"],
                )),
            }
            let empty = Map::new();
            let b = obj(errs, p, "backend", &pp).unwrap_or(&empty);
            ingress_backend(errs, b, &pp.child("backend"));
        }
    }
    for (tp, t) in objs(errs, spec, "tls", sp) {
        for (i, h) in strs(errs, t, "hosts", &tp).iter().enumerate() {
            let check = h.strip_prefix("*.").unwrap_or(h);
            for msg in names::is_dns1123_subdomain(check) {
                errs.push(FieldError::invalid(tp.child("hosts").index(i), *h, msg));
            }
        }
    }
    if let Some(c) = opt_str(errs, spec, "ingressClassName", sp) {
        for msg in names::name_is_dns_subdomain(c, false) {
            errs.push(FieldError::invalid(sp.child("ingressClassName"), c, msg));
        }
    }
}

fn ingress_backend(errs: &mut Errs, b: &Map<String, Value>, path: &Path) {
    let res = obj(errs, b, "resource", path);
    let svc = obj(errs, b, "service", path);
    match (res, svc) {
        (Some(_), Some(_)) => errs.push(FieldError::invalid(
            path,
            "",
            "cannot set both resource and service backends",
        )),
        (Some(r), None) => {
            let rp = path.child("resource");
            if string(errs, r, "kind", &rp).is_empty() {
                errs.push(FieldError::required(rp.child("kind"), ""));
            }
            if string(errs, r, "name", &rp).is_empty() {
                errs.push(FieldError::required(rp.child("name"), ""));
            }
        }
        (None, Some(s)) => {
            let sp = path.child("service");
            let name = string(errs, s, "name", &sp);
            if name.is_empty() {
                errs.push(FieldError::required(sp.child("name"), ""));
            } else {
                for msg in names::is_dns1035_label(name) {
                    errs.push(FieldError::invalid(sp.child("name"), name, msg));
                }
            }
            let empty = Map::new();
            let port = obj(errs, s, "port", &sp).unwrap_or(&empty);
            let pp = sp.child("port");
            let pname = string(errs, port, "name", &pp);
            let pnum = int(errs, port, "number", &pp).unwrap_or(0);
            if !pname.is_empty() && pnum != 0 {
                errs.push(FieldError::invalid(
                    path,
                    "",
                    "cannot set both port name & port number",
                ));
            } else if !pname.is_empty() {
                for msg in names::is_valid_port_name(pname) {
                    errs.push(FieldError::invalid(pp.child("name"), pname, msg));
                }
            } else if pnum != 0 {
                for msg in names::is_valid_port_num(pnum) {
                    errs.push(FieldError::invalid(pp.child("number"), pnum, msg));
                }
            } else {
                errs.push(FieldError::required(
                    path,
                    "port name or number is required",
                ));
            }
        }
        (None, None) => errs.push(FieldError::invalid(
            path,
            "",
            "resource or service backend is required",
        )),
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

fn network_policy(errs: &mut Errs, spec: &Map<String, Value>, sp: &Path) {
    if let Some(s) = obj(errs, spec, "podSelector", sp) {
        validate_label_selector(errs, s, &sp.child("podSelector"))
    }
    for (dir, peers) in [("ingress", "from"), ("egress", "to")] {
        for (rp, rule) in objs(errs, spec, dir, sp) {
            for (pp, port) in objs(errs, rule, "ports", &rp) {
                if let Some(proto) = opt_str(errs, port, "protocol", &pp)
                    && !matches!(proto, "TCP" | "UDP" | "SCTP")
                {
                    errs.push(FieldError::not_supported(
                        pp.child("protocol"),
                        proto,
                        &["TCP", "UDP", "SCTP"],
                    ));
                }
                let end = int(errs, port, "endPort", &pp);
                match port.get("port") {
                    Some(Value::Number(n)) => {
                        let p = n.as_i64().unwrap_or(0);
                        for msg in names::is_valid_port_num(p) {
                            errs.push(FieldError::invalid(pp.child("port"), p, msg));
                        }
                        if let Some(e) = end {
                            if e < p {
                                errs.push(FieldError::invalid(
                                    pp.child("endPort"),
                                    p,
                                    "must be greater than or equal to `port`",
                                ));
                            }
                            for msg in names::is_valid_port_num(e) {
                                errs.push(FieldError::invalid(pp.child("endPort"), e, msg));
                            }
                        }
                    }
                    Some(Value::String(s)) => {
                        if let Some(e) = end {
                            errs.push(FieldError::invalid(
                                pp.child("endPort"),
                                e,
                                "may not be specified when `port` is non-numeric",
                            ));
                        }
                        for msg in names::is_valid_port_name(s) {
                            errs.push(FieldError::invalid(pp.child("port"), s.as_str(), msg));
                        }
                    }
                    None | Some(Value::Null) => {
                        if let Some(e) = end {
                            errs.push(FieldError::invalid(
                                pp.child("endPort"),
                                e,
                                "may not be specified when `port` is not specified",
                            ));
                        }
                    }
                    Some(other) => errs.type_invalid(&pp.child("port"), other, "integer or string"),
                }
            }
            for (pp, peer) in objs(errs, rule, peers, &rp) {
                let mut n = 0;
                for k in ["podSelector", "namespaceSelector"] {
                    if let Some(s) = obj(errs, peer, k, &pp) {
                        n += 1;
                        validate_label_selector(errs, s, &pp.child(k));
                    }
                }
                let ipb = obj(errs, peer, "ipBlock", &pp);
                if let Some(b) = ipb {
                    n += 1;
                    let bp = pp.child("ipBlock");
                    let cidr = string(errs, b, "cidr", &bp);
                    if cidr.is_empty() {
                        errs.push(FieldError::required(bp.child("cidr"), ""));
                    } else if !valid_cidr(cidr) {
                        errs.push(FieldError::invalid(
                            bp.child("cidr"),
                            cidr,
                            "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
                        ));
                    }
                    for (i, ex) in strs(errs, b, "except", &bp).iter().enumerate() {
                        if !valid_cidr(ex) {
                            errs.push(FieldError::invalid(
                                bp.child("except").index(i),
                                *ex,
                                "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
                            ));
                        }
                    }
                }
                if n == 0 {
                    errs.push(FieldError::required(&pp, "must specify a peer"));
                } else if n > 1 && ipb.is_some() {
                    errs.push(FieldError::forbidden(
                        &pp,
                        "may not specify both ipBlock and another peer",
                    ));
                }
            }
        }
    }
    let types = strs(errs, spec, "policyTypes", sp);
    if types.len() > 2 {
        errs.push(invalid_go(
            &sp.child("policyTypes"),
            &format!(
                "&{}",
                go_string_slice(&types).replace("[]string", "[]networking.PolicyType")
            ),
            "may not specify more than two policyTypes",
        ));
        return;
    }
    for (i, t) in types.iter().enumerate() {
        if !matches!(*t, "Ingress" | "Egress") {
            errs.push(FieldError::not_supported(
                sp.child("policyTypes").index(i),
                *t,
                &["Ingress", "Egress"],
            ));
        }
    }
}

fn endpoint_slice(errs: &mut Errs, m: &Map<String, Value>, old: Option<&Map<String, Value>>) {
    let root = Path::new("");
    let at = string(errs, m, "addressType", &root);
    let supported = ["IPv4", "IPv6", "FQDN"];
    if at.is_empty() {
        errs.push(FieldError::required(Path::new("addressType"), ""));
    } else if !supported.contains(&at) {
        errs.push(FieldError::not_supported(
            Path::new("addressType"),
            at,
            &supported,
        ));
    }
    for (ep, e) in objs(errs, m, "endpoints", &root) {
        let addrs = strs(errs, e, "addresses", &ep);
        if addrs.is_empty() {
            errs.push(FieldError::required(
                ep.child("addresses"),
                "must contain at least 1 address",
            ));
        } else if addrs.len() > 100 {
            errs.push(FieldError::too_many(
                ep.child("addresses"),
                addrs.len(),
                100,
            ));
        }
        for (i, a) in addrs.iter().enumerate() {
            let ap = ep.child("addresses").index(i);
            match at {
                "IPv4" | "IPv6" => {
                    let ok = match a.parse::<std::net::IpAddr>() {
                        Ok(ip) => ip.is_ipv4() == (at == "IPv4"),
                        Err(_) => false,
                    };
                    if !ok {
                        let msg = if at == "IPv4" {
                            "must be a valid IPv4 address"
                        } else {
                            "must be a valid IPv6 address"
                        };
                        errs.push(FieldError::invalid(ap, *a, msg));
                    }
                }
                "FQDN" => {
                    for msg in names::is_dns1123_subdomain(a) {
                        errs.push(FieldError::invalid(&ap, *a, msg));
                    }
                }
                _ => {}
            }
        }
    }
    let mut port_names = std::collections::BTreeSet::new();
    for (pp, p) in objs(errs, m, "ports", &root) {
        let name = string(errs, p, "name", &pp);
        if !name.is_empty() {
            for msg in names::is_dns1123_label(name) {
                errs.push(FieldError::invalid(pp.child("name"), name, msg));
            }
        }
        if !port_names.insert(name) {
            errs.push(FieldError::duplicate(pp.child("name"), name));
        }
        if let Some(port) = int(errs, p, "port", &pp) {
            for msg in names::is_valid_port_num(port) {
                errs.push(FieldError::invalid(pp.child("port"), port, msg));
            }
        }
        if let Some(proto) = opt_str(errs, p, "protocol", &pp)
            && !matches!(proto, "TCP" | "UDP" | "SCTP")
        {
            errs.push(FieldError::not_supported(
                pp.child("protocol"),
                proto,
                &["SCTP", "TCP", "UDP"],
            ));
        }
    }
    if let Some(o) = old {
        immutable(
            errs,
            m.get("addressType"),
            o.get("addressType"),
            &Path::new("addressType"),
        );
    }
}

fn event(errs: &mut Errs, m: &Map<String, Value>) {
    let root = Path::new("");
    if present(m, "eventTime").is_none() {
        errs.push(FieldError::required(Path::new("eventTime"), ""));
    }
    let ty = string(errs, m, "type", &root);
    if !matches!(ty, "Normal" | "Warning") {
        errs.push(FieldError::invalid(
            Path::new("type"),
            "",
            format!("has invalid value: {ty}"),
        ));
    }
    for f in [
        "deprecatedFirstTimestamp",
        "deprecatedLastTimestamp",
        "deprecatedCount",
        "deprecatedSource",
    ] {
        if present(m, f)
            .is_some_and(|v| v != &Value::from(0) && v.as_object().is_none_or(|o| !o.is_empty()))
        {
            errs.push(FieldError::invalid(Path::new(f), "", "needs to be unset"));
        }
    }
    let rc = string(errs, m, "reportingController", &root);
    if rc.is_empty() {
        errs.push(FieldError::required(Path::new("reportingController"), ""));
    }
    for msg in names::is_qualified_name(rc) {
        errs.push(FieldError::invalid(
            Path::new("reportingController"),
            rc,
            msg,
        ));
    }
    for (f, limit) in [("reportingInstance", 128), ("action", 128), ("reason", 128)] {
        let v = string(errs, m, f, &root);
        if v.is_empty() {
            errs.push(FieldError::required(Path::new(f), ""));
        }
        if v.len() > limit {
            errs.push(FieldError::invalid(
                Path::new(f),
                "",
                format!("can have at most {limit} characters"),
            ));
        }
    }
    if string(errs, m, "note", &root).len() > 1024 {
        errs.push(FieldError::invalid(
            Path::new("note"),
            "",
            "can have at most 1024 characters",
        ));
    }
    let _ = FieldErrorType::Invalid;
    let _ = FIELD_IMMUTABLE;
}
