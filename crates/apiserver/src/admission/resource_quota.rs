//! `ResourceQuota`: a write that would take a namespace past one of its quotas is refused
//! (`exceeded quota: NAME, requested: ..., used: ..., limited: ...`), and an admitted write is
//! charged to the quotas' `status.used` at once, with compare-and-swap on each quota, so two
//! concurrent creates cannot both take the last unit. The resourcequota controller later
//! recomputes usage from what exists.

use ferrokube_api::ApiError;
use ferrokube_api::quota::{self, ResourceList};
use ferrokube_api::resources::{self, ResourceInfo};
use ferrokube_store::KeyValue;
use serde_json::Value;

use crate::object;
use crate::registry::{Registry, WriteCtx};

/// How often a charge is retried when a quota changed underneath it.
const ATTEMPTS: usize = 8;

fn quota_names(l: &ResourceList) -> Vec<String> {
    l.keys().cloned().collect()
}

/// Charges a create (`old` None) or an update of the main resource to the namespace's quotas.
pub async fn charge(
    reg: &Registry,
    ctx: &WriteCtx,
    info: &ResourceInfo,
    obj: &Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    let ns = object::namespace(obj);
    if ns.is_empty() || !info.namespaced {
        return Ok(());
    }
    if old.is_some()
        && !(info.group.is_empty()
            && matches!(
                info.resource,
                "pods" | "services" | "persistentvolumeclaims"
            ))
    {
        return Ok(());
    }
    // Most namespaces have no quota: the cache answers that without touching the store.
    if super::cached_in_namespace(reg, "", "resourcequotas", ns).is_empty() {
        return Ok(());
    }
    let qinfo = resources::find("", "v1", "resourcequotas").expect("resourcequotas are registered");
    let now = ferrokube_api::time::now();
    let forbidden =
        |why: String| ApiError::forbidden(info.group, info.resource, object::name(obj), &why);

    let mut delta = quota::usage(info.group, info.resource, obj, now);
    let negative = quota::negative(&delta);
    if !negative.is_empty() {
        return Err(forbidden(format!(
            "quota usage is negative for resource(s): {}",
            quota::pretty_print_names(&negative)
        )));
    }
    if let Some(o) = old {
        delta = quota::subtract(&delta, &quota::usage(info.group, info.resource, o, now));
    }

    // Quotas already charged by an earlier attempt (one quota's write can succeed before
    // another's conflicts): they are not charged twice.
    let mut charged: std::collections::HashSet<String> = Default::default();
    for _ in 0..ATTEMPTS {
        let listed = reg
            .store
            .list(&qinfo.collection_prefix(ns), "", 0, 0)
            .await
            .map_err(ApiError::internal)?;
        let mut changes: Vec<(KeyValue, Value)> = Vec::new();
        let mut interesting = Vec::new();
        for kv in listed.kvs {
            let q: Value = serde_json::from_slice(&kv.value).map_err(ApiError::internal)?;
            if !quota::matches_scopes(&q, info.group, info.resource, obj) {
                continue;
            }
            let hard = quota::parse_list(q.pointer("/status/hard"));
            if !quota::quota_matches_resource(info.group, info.resource, &hard) {
                continue;
            }
            let name = object::name(&q).to_string();
            if charged.contains(&name) {
                continue;
            }
            let restricted =
                quota::matching_resources(info.group, info.resource, &quota_names(&hard));
            if old.is_none()
                && let Err(e) = quota::constraints(info.group, info.resource, &restricted, obj)
            {
                return Err(forbidden(format!("failed quota: {name}: {e}")));
            }
            let used = quota::parse_list(q.pointer("/status/used"));
            if restricted.iter().any(|r| !used.contains_key(r)) {
                return Err(forbidden(format!(
                    "status unknown for quota: {name}, resources: {}",
                    quota::pretty_print_names(&restricted)
                )));
            }
            interesting.push((kv, q, hard, used, name));
        }
        if interesting.is_empty() || quota::is_zero(&delta) {
            return Ok(());
        }
        for (kv, mut q, hard, used, name) in interesting {
            let requested = quota::mask(&delta, &quota_names(&hard));
            let new_used = quota::add(&used, &requested);
            let masked = quota::mask(&new_used, &quota_names(&requested));
            let (ok, exceeded) = quota::less_than_or_equal(&masked, &hard);
            if !ok {
                return Err(forbidden(format!(
                    "exceeded quota: {name}, requested: {}, used: {}, limited: {}",
                    quota::pretty_print(&quota::mask(&requested, &exceeded)),
                    quota::pretty_print(&quota::mask(&used, &exceeded)),
                    quota::pretty_print(&quota::mask(&hard, &exceeded)),
                )));
            }
            if new_used != used {
                q["status"]["used"] = quota::list_to_json(&new_used);
                changes.push((kv, q));
            }
        }
        if ctx.dry_run || changes.is_empty() {
            return Ok(());
        }
        let mut conflict = false;
        for (kv, q) in changes {
            let name = object::name(&q).to_string();
            match reg
                .store
                .update(
                    &kv.key,
                    crate::registry::to_stored_bytes(&q),
                    kv.mod_revision,
                    None,
                )
                .await
            {
                Ok(_) => {
                    charged.insert(name);
                }
                Err(ferrokube_store::Error::Conflict { .. }) => {
                    conflict = true;
                    break;
                }
                Err(e) => return Err(ApiError::internal(e)),
            }
        }
        if !conflict {
            return Ok(());
        }
    }
    Err(ApiError::conflict(
        "",
        "resourcequotas",
        "",
        "the quotas of this namespace kept changing; please try again",
    ))
}
