//! The generic registry: create, read, update, patch and delete of any stored kind, over the
//! store and the watch cache, as upstream's `genericregistry.Store` behaves — defaulting,
//! validation, admission, optimistic concurrency, graceful deletion, finalizers, dry run.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ferrokube_api::patch::{self, PatchError, PatchType};
use ferrokube_api::resources::{self, ResourceInfo};
use ferrokube_api::schema::duplicates::{
    BodyKeys, Duplicate, scan_json, scan_yaml, yaml_duplicate_lines,
};
use ferrokube_api::schema::{self, FieldIssue};
use ferrokube_api::{ApiError, FieldError};
use ferrokube_store::{Backend, KeyValue, Revision};
use rand::Rng;
use serde_json::{Value, json};

use crate::authn::UserInfo;
use crate::cache::{CachedObject, Caches};
use crate::object;
use crate::request::FieldValidation;
use crate::{admission, conversion, strategy};
use ferrokube_api::managed_fields;

/// How long a consistent read waits for the watch cache before reading the store.
const CACHE_WAIT: Duration = Duration::from_secs(3);

/// The context of one write.
#[derive(Debug)]
pub struct WriteCtx {
    pub user: UserInfo,
    pub dry_run: bool,
    pub field_manager: String,
    pub field_validation: FieldValidation,
    /// `Warning` headers to send back (unknown fields under `fieldValidation=Warn`, ...).
    pub warnings: Vec<String>,
    /// Set while a server-side apply writes: the object carries the managed fields apply
    /// computed, so the write must not record an `Update` of its own.
    pub applying: bool,
    /// What the raw body's scan found (duplicate keys, field order), for the strict decoding
    /// report of the next [`Registry::decode_input`].
    pub body_scan: Option<BodyScan>,
}

/// The duplicate keys and field order of a request body, which the parsed value has lost.
#[derive(Clone, Debug)]
pub enum BodyScan {
    /// A whole object as JSON: problems are reported in document order.
    Json(BodyKeys),
    /// A merge or strategic merge patch: the patch's duplicates first, then the result's
    /// unknown fields.
    Patch(BodyKeys),
    /// A YAML body: yaml.v2's line-numbered duplicate report comes first.
    Yaml(Vec<Duplicate>),
}

impl BodyScan {
    /// Scans a create/update body by its Content-Type (JSON when absent).
    pub fn of_body(content_type: &str, body: &[u8]) -> Option<BodyScan> {
        let ct = content_type.split(';').next().unwrap_or("").trim();
        match ct {
            "" | "application/json" | "*/*" | "text/plain" => Some(BodyScan::Json(scan_json(body))),
            "application/yaml" | "application/x-yaml" | "text/yaml" => {
                Some(BodyScan::Yaml(scan_yaml(body)))
            }
            _ => None,
        }
    }
}

fn under(path: &str, field: &str) -> bool {
    path == field
        || path
            .strip_prefix(field)
            .is_some_and(|r| r.starts_with('.') || r.starts_with('['))
}

/// Orders strict decoding problems as upstream reports them: `(error parts, warnings)`.
fn strict_report(issues: &[FieldIssue], scan: Option<&BodyScan>) -> (Vec<String>, Vec<String>) {
    let unknown_paths: Vec<&str> = issues
        .iter()
        .filter_map(|i| match i {
            FieldIssue::Unknown { path } => Some(path.as_str()),
            _ => None,
        })
        .collect();
    let texts: Vec<String> = issues.iter().map(ToString::to_string).collect();
    let dup_text = |d: &Duplicate| {
        format!(
            "duplicate field {}",
            ferrokube_api::error::go_quote(&d.path)
        )
    };
    let known_dups = |keys: &BodyKeys| -> Vec<Duplicate> {
        keys.duplicates
            .iter()
            .filter(|d| !unknown_paths.iter().any(|u| under(&d.path, u)))
            .cloned()
            .collect()
    };
    match scan {
        None => (texts.clone(), texts),
        Some(BodyScan::Json(keys)) => {
            let mut ordered: Vec<(usize, String)> = issues
                .iter()
                .zip(&texts)
                .map(|(i, t)| {
                    let at = match i {
                        FieldIssue::Unknown { path } => {
                            keys.order.get(path).copied().unwrap_or(usize::MAX)
                        }
                        _ => usize::MAX,
                    };
                    (at, t.clone())
                })
                .collect();
            ordered.extend(known_dups(keys).iter().map(|d| (d.ordinal, dup_text(d))));
            ordered.sort_by_key(|(at, _)| *at);
            let all: Vec<String> = ordered.into_iter().map(|(_, t)| t).collect();
            (all.clone(), all)
        }
        Some(BodyScan::Patch(keys)) => {
            let mut all: Vec<String> = known_dups(keys).iter().map(dup_text).collect();
            all.extend(texts);
            (all.clone(), all)
        }
        Some(BodyScan::Yaml(dups)) => {
            let lines = yaml_duplicate_lines(dups);
            let mut errs = Vec::new();
            if !lines.is_empty() {
                errs.push(format!("yaml: unmarshal errors:\n  {}", lines.join("\n  ")));
            }
            errs.extend(texts.iter().cloned());
            let mut warns = lines;
            warns.extend(texts);
            (errs, warns)
        }
    }
}

impl WriteCtx {
    /// The same caller and options, with warnings of its own (for writes done in parallel).
    pub fn fork(&self) -> Self {
        WriteCtx {
            user: self.user.clone(),
            dry_run: self.dry_run,
            field_manager: self.field_manager.clone(),
            field_validation: self.field_validation,
            warnings: Vec::new(),
            applying: self.applying,
            body_scan: None,
        }
    }

    pub fn system(manager: &str) -> Self {
        WriteCtx {
            user: UserInfo::loopback(),
            dry_run: false,
            field_manager: manager.to_string(),
            field_validation: FieldValidation::Ignore,
            warnings: Vec::new(),
            applying: false,
            body_scan: None,
        }
    }
}

/// `DeleteOptions` as the registry uses them.
#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    pub grace_period_seconds: Option<i64>,
    pub propagation_policy: Option<String>,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
}

impl DeleteOptions {
    /// Reads a `DeleteOptions` body (any version) and the query parameters.
    pub fn parse(body: Option<&Value>, q: &crate::request::Query) -> Result<Self, ApiError> {
        let mut o = DeleteOptions::default();
        if let Some(b) = body {
            o.grace_period_seconds = b.get("gracePeriodSeconds").and_then(Value::as_i64);
            o.propagation_policy = b
                .get("propagationPolicy")
                .and_then(Value::as_str)
                .map(String::from);
            if o.propagation_policy.is_none() {
                match b.get("orphanDependents").and_then(Value::as_bool) {
                    Some(true) => o.propagation_policy = Some("Orphan".into()),
                    Some(false) => o.propagation_policy = Some("Background".into()),
                    None => {}
                }
            }
            o.precondition_uid = b
                .pointer("/preconditions/uid")
                .and_then(Value::as_str)
                .map(String::from);
            o.precondition_rv = b
                .pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str)
                .map(String::from);
        }
        if let Some(g) = q.get("gracePeriodSeconds").filter(|s| !s.is_empty()) {
            o.grace_period_seconds =
                Some(g.parse().map_err(|_| {
                    ApiError::bad_request(format!("invalid gracePeriodSeconds {g:?}"))
                })?);
        }
        if let Some(p) = q.get("propagationPolicy").filter(|s| !s.is_empty()) {
            o.propagation_policy = Some(p.to_string());
        }
        if let Some(p) = &o.propagation_policy
            && !matches!(p.as_str(), "Orphan" | "Background" | "Foreground")
        {
            return Err(ApiError::invalid(
                "",
                "DeleteOptions",
                "",
                &[FieldError::not_supported(
                    "propagationPolicy",
                    p.as_str(),
                    &["Foreground", "Background", "Orphan", "nil"],
                )],
            ));
        }
        Ok(o)
    }
}

/// What a delete did.
pub enum Deleted {
    /// The object is gone; here is its last state.
    Now(Value),
    /// Deletion is pending (grace period or finalizers); here is the object as it is now.
    Pending(Value),
}

/// The result of a list.
pub struct ListOut {
    pub revision: Revision,
    pub items: Vec<Arc<CachedObject>>,
    pub continue_token: Option<String>,
    pub remaining: Option<i64>,
}

pub struct Registry {
    pub store: Arc<dyn Backend>,
    pub caches: Arc<Caches>,
    /// ClusterIP and NodePort allocation for Services.
    pub services: Arc<crate::service_alloc::ServiceAllocators>,
    pub admission: admission::Settings,
}

fn store_err(info: &ResourceInfo, name: &str, e: ferrokube_store::Error) -> ApiError {
    use ferrokube_store::Error as E;
    match e {
        E::KeyExists { .. } => ApiError::already_exists(info.group, info.resource, name),
        E::NotFound { .. } => ApiError::not_found(info.group, info.resource, name),
        E::Conflict { .. } => ApiError::conflict_modified(info.group, info.resource, name),
        E::Compacted {
            requested,
            compacted,
        } => ApiError::expired(format!(
            "too old resource version: {requested} ({compacted})"
        )),
        E::FutureRevision { requested, current } => {
            let mut e = ApiError::server_timeout(info.group, info.resource, "get", 1);
            e.message = format!("Too large resource version: {requested}, current: {current}");
            e.with_cause("ResourceVersionTooLarge", "Too large resource version", "")
        }
        other => ApiError::internal(other),
    }
}

fn decode_issue_error(kind: &str, version: &str, msg: &str) -> ApiError {
    ApiError::bad_request(format!(
        "{kind} in version {version:?} cannot be handled as a {kind}: {msg}"
    ))
}

/// Generates `<prefix><5 chars>` as upstream's `SimpleNameGenerator`.
pub fn generate_name(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    let base = if prefix.len() > 58 {
        &prefix[..58]
    } else {
        prefix
    };
    let suffix: String = (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{base}{suffix}")
}

/// Serializes an object for storage: without `resourceVersion`, which the store's revision is.
pub(crate) fn to_stored_bytes(obj: &Value) -> Bytes {
    let mut v = obj.clone();
    object::remove_meta(&mut v, "resourceVersion");
    Bytes::from(serde_json::to_vec(&v).unwrap_or_default())
}

fn parse_stored(kv: &KeyValue) -> Result<Value, ApiError> {
    let mut v: Value = serde_json::from_slice(&kv.value).map_err(|e| {
        ApiError::internal(format!("stored object {} is not valid JSON: {e}", kv.key))
    })?;
    object::set_resource_version(&mut v, kv.mod_revision);
    Ok(v)
}

fn ttl(info: &ResourceInfo) -> Option<Duration> {
    (info.ttl_seconds > 0).then(|| Duration::from_secs(info.ttl_seconds))
}

impl Registry {
    /// A registry with the default service network and admission settings.
    pub fn new(store: Arc<dyn Backend>, caches: Arc<Caches>) -> Self {
        let services = crate::service_alloc::ServiceAllocators::new(
            &crate::service_alloc::ServiceNetwork::default(),
            store.clone(),
        )
        .expect("the default service network is valid");
        Self::with_options(
            store,
            caches,
            Arc::new(services),
            admission::Settings::default(),
        )
    }

    pub fn with_options(
        store: Arc<dyn Backend>,
        caches: Arc<Caches>,
        services: Arc<crate::service_alloc::ServiceAllocators>,
        admission: admission::Settings,
    ) -> Self {
        Registry {
            store,
            caches,
            services,
            admission,
        }
    }

    fn is_services(info: &ResourceInfo) -> bool {
        info.group.is_empty() && info.resource == "services"
    }

    /// An object left the store: what it held goes back (Service addresses and ports).
    async fn after_delete(&self, sinfo: &ResourceInfo, obj: &Value) {
        if Self::is_services(sinfo) {
            self.services.release_service(obj).await;
        }
    }

    /// Decodes-time processing of a client's object in `info`'s version: fills and checks
    /// apiVersion/kind, drops unknown fields (reporting them per `fieldValidation`), checks
    /// value types, applies the version's defaults and converts to the storage version.
    pub fn decode_input(
        &self,
        ctx: &mut WriteCtx,
        info: &ResourceInfo,
        mut obj: Value,
        kind: &str,
    ) -> Result<Value, ApiError> {
        let api_version = if info.group.is_empty() {
            info.version.to_string()
        } else {
            format!("{}/{}", info.group, info.version)
        };
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request must be a JSON object",
            ));
        }
        match obj.get("apiVersion").and_then(Value::as_str) {
            None | Some("") => obj["apiVersion"] = json!(api_version),
            Some(v) if v == api_version => {}
            Some(v) => {
                return Err(ApiError::bad_request(format!(
                    "the API version in the data ({v}) does not match the expected API version ({api_version})"
                )));
            }
        }
        match obj.get("kind").and_then(Value::as_str) {
            None | Some("") => obj["kind"] = json!(kind),
            Some(k) if k == kind => {}
            Some(k) => {
                return Err(ApiError::bad_request(format!(
                    "{k} in version {:?} cannot be handled as a {kind}: the kind in the data ({k}) does not match the expected kind ({kind})",
                    info.version
                )));
            }
        }
        object::drop_nulls(&mut obj);
        let scan = ctx.body_scan.take();
        if let Some(ty) = schema::kind_type(info.group, info.version, kind) {
            let mut issues = Vec::new();
            schema::normalize(&mut obj, ty, "", &mut issues);
            let (strict, hard): (Vec<FieldIssue>, Vec<FieldIssue>) =
                issues.into_iter().partition(FieldIssue::is_strict_only);
            if let Some(first) = hard.first() {
                return Err(decode_issue_error(kind, info.version, &first.to_string()));
            }
            let (errors, warnings) = strict_report(&strict, scan.as_ref());
            if !errors.is_empty() {
                match ctx.field_validation {
                    FieldValidation::Strict => {
                        return Err(decode_issue_error(
                            kind,
                            info.version,
                            &format!("strict decoding error: {}", errors.join(", ")),
                        ));
                    }
                    FieldValidation::Warn => ctx.warnings.extend(warnings),
                    FieldValidation::Ignore => {}
                }
            }
        }
        ferrokube_api::defaults::apply(info.group, info.version, kind, &mut obj);
        if conversion::needs_conversion(info) {
            obj = conversion::to_storage(info, obj);
            let (g, v) = info.storage_version;
            ferrokube_api::defaults::apply(g, v, kind, &mut obj);
        }
        Ok(obj)
    }

    fn storage_info(info: &'static ResourceInfo) -> &'static ResourceInfo {
        let (g, v) = info.storage_version;
        resources::find(g, v, info.resource).unwrap_or(info)
    }

    /// Reads the live object from the store (writes always start from the store, not the cache).
    async fn read_live(
        &self,
        info: &ResourceInfo,
        ns: &str,
        name: &str,
    ) -> Result<Option<(KeyValue, Value)>, ApiError> {
        let key = info.key(ns, name);
        let (_, kv) = self
            .store
            .get(&key, 0)
            .await
            .map_err(|e| store_err(info, name, e))?;
        match kv {
            None => Ok(None),
            Some(kv) => {
                let v = parse_stored(&kv)?;
                Ok(Some((kv, v)))
            }
        }
    }

    /// GET of one object, in `info`'s version. `rv`: None = most recent (consistent),
    /// Some(0) = whatever the cache has, Some(n) = at least n.
    pub async fn get(
        &self,
        info: &'static ResourceInfo,
        ns: &str,
        name: &str,
        rv: Option<i64>,
    ) -> Result<Value, ApiError> {
        let key = info.key(ns, name);
        let cache = self
            .caches
            .for_resource(info)
            .ok_or_else(|| ApiError::not_found(info.group, info.resource, name))?;
        let want = match rv {
            Some(0) => 0,
            Some(n) => n,
            None => self
                .store
                .current_revision()
                .await
                .map_err(|e| store_err(info, name, e))?,
        };
        let obj = if want == 0 || self.caches.wait_for(want, CACHE_WAIT).await {
            cache.get(&key).map(|o| o.value())
        } else {
            self.read_live(info, ns, name).await?.map(|(_, v)| v)
        };
        let obj = obj.ok_or_else(|| ApiError::not_found(info.group, info.resource, name))?;
        Ok(conversion::from_storage(info, obj))
    }

    /// Lists from the watch cache (or, for an exact old revision or a continue past the cache's
    /// snapshots, from the store).
    pub async fn list(
        &self,
        info: &'static ResourceInfo,
        filter: &crate::cache::Filter,
        opts: &crate::request::ListOptions,
    ) -> Result<ListOut, ApiError> {
        use crate::request::RvMatch;
        let cache = self
            .caches
            .for_resource(info)
            .ok_or_else(|| ApiError::method_not_supported(info.group, info.resource, "list"))?
            .clone();
        let prefix = info.collection_prefix(&filter.namespace);
        let rv = opts.rv_number()?;
        // A continue token pins the revision of the first page.
        let (rev, start_after) = match &opts.continue_token {
            Some(tok) => {
                let (rev, key) = decode_continue(tok, &prefix)?;
                (Some(rev), key)
            }
            None => (None, String::new()),
        };
        let limit = opts.limit;
        let exact = opts.rv_match == RvMatch::Exact;
        let snapshot = match (rev, exact, rv) {
            (Some(r), _, _) => cache.snapshot_at(r).map(|s| (r, s)),
            (None, true, Some(r)) => cache.snapshot_at(r).map(|s| (r, s)),
            (None, false, Some(0)) => Some(cache.snapshot()),
            (None, false, Some(n)) => {
                if !self.caches.wait_for(n, CACHE_WAIT).await {
                    let current = self.store.current_revision().await.unwrap_or(0);
                    return Err(store_err(
                        info,
                        "",
                        ferrokube_store::Error::FutureRevision {
                            requested: n,
                            current,
                        },
                    ));
                }
                Some(cache.snapshot())
            }
            (None, _, None) => {
                let cur = self
                    .store
                    .current_revision()
                    .await
                    .map_err(|e| store_err(info, "", e))?;
                if self.caches.wait_for(cur, CACHE_WAIT).await {
                    Some(cache.snapshot())
                } else {
                    None
                }
            }
        };
        let mut items = Vec::new();
        let mut more = false;
        let mut last_key = String::new();
        let revision;
        match snapshot {
            Some((r, objects)) => {
                revision = r;
                let iter = objects.range(
                    if start_after.is_empty() {
                        prefix.clone()
                    } else {
                        start_after.clone()
                    }..,
                );
                for (k, o) in iter {
                    if !k.starts_with(&prefix) {
                        break;
                    }
                    if k == &start_after {
                        continue;
                    }
                    if !filter.matches(o) {
                        continue;
                    }
                    if limit > 0 && items.len() as i64 >= limit {
                        more = true;
                        break;
                    }
                    last_key = k.clone();
                    items.push(o.clone());
                }
                if more {
                    cache.retain_snapshot(r, &objects);
                }
            }
            None => {
                // From the store, at the pinned (or exact, or current) revision.
                let at = rev.or(if exact { rv } else { None }).unwrap_or(0);
                let mut after = start_after.clone();
                let mut at_rev = at;
                loop {
                    let page_limit = if limit > 0 { limit.max(100) } else { 0 };
                    let page = self
                        .store
                        .list(&prefix, &after, page_limit, at_rev)
                        .await
                        .map_err(|e| match e {
                            ferrokube_store::Error::Compacted { .. } if rev.is_some() => {
                                ApiError::expired(CONTINUE_EXPIRED)
                            }
                            e => store_err(info, "", e),
                        })?;
                    at_rev = page.revision;
                    for kv in &page.kvs {
                        after = kv.key.clone();
                        let Ok(o) = CachedObject::build(
                            Self::storage_info(info),
                            &kv.key,
                            &kv.value,
                            kv.mod_revision,
                        ) else {
                            continue;
                        };
                        if !filter.matches(&o) {
                            continue;
                        }
                        if limit > 0 && items.len() as i64 >= limit {
                            more = true;
                            break;
                        }
                        last_key = kv.key.clone();
                        items.push(Arc::new(o));
                    }
                    if more || !page.more {
                        break;
                    }
                }
                revision = at_rev;
            }
        }
        let continue_token = more.then(|| encode_continue(revision, &last_key, &prefix));
        Ok(ListOut {
            revision,
            items,
            continue_token,
            remaining: None,
        })
    }

    /// POST: creates an object given in `info`'s version (already decoded by
    /// [`Registry::decode_input`]). Returns it in `info`'s version.
    pub async fn create(
        &self,
        ctx: &mut WriteCtx,
        info: &'static ResourceInfo,
        ns: &str,
        mut obj: Value,
    ) -> Result<Value, ApiError> {
        let sinfo = Self::storage_info(info);
        if !info.namespaced {
            object::remove_meta(&mut obj, "namespace");
        } else {
            match object::namespace(&obj) {
                "" => object::set_meta(&mut obj, "namespace", ns),
                n if n == ns => {}
                _ => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
            }
        }
        if !object::resource_version(&obj).is_empty() {
            return Err(ApiError::bad_request(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        let now = ferrokube_api::time::format_rfc3339(ferrokube_api::time::now());
        let generated =
            object::name(&obj).is_empty() && !object::meta_str(&obj, "generateName").is_empty();
        {
            let m = object::meta_mut(&mut obj);
            m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
            m.insert("creationTimestamp".into(), json!(now));
            m.remove("deletionTimestamp");
            m.remove("deletionGracePeriodSeconds");
            m.remove("selfLink");
            if sinfo.tracks_generation {
                m.insert("generation".into(), json!(1));
            } else {
                m.remove("generation");
            }
        }
        if generated {
            let prefix = object::meta_str(&obj, "generateName").to_string();
            object::set_meta(&mut obj, "name", generate_name(&prefix));
        }
        if !ctx.applying {
            managed_fields::record(
                &mut obj,
                None,
                &ctx.field_manager,
                "Update",
                &api_version(info),
                "",
                &now,
            );
        }
        let (g, v) = sinfo.storage_version;
        let kind = object::kind(&obj).to_string();
        strategy::prepare_for_create(sinfo, &mut obj, &now);
        ferrokube_api::defaults::prepare_for_create(g, v, &kind, &mut obj);
        if sinfo.resource == "jobs" && sinfo.group == "batch" {
            ferrokube_api::defaults::generate_job_selector(&mut obj);
        }
        // Status resets leave zero values Go would still encode; defaulting restores them.
        ferrokube_api::defaults::apply(g, v, &kind, &mut obj);
        admission::admit_create(self, ctx, sinfo, &mut obj).await?;
        let txn = if Self::is_services(sinfo) {
            Some(self.services.allocate_create(&mut obj, ctx.dry_run).await?)
        } else {
            None
        };
        let result = self
            .create_allocated(ctx, info, sinfo, ns, obj, generated)
            .await;
        if let Some(txn) = txn {
            match &result {
                Ok(_) => self.services.commit(txn).await,
                Err(_) => self.services.revert(txn).await,
            }
        }
        result
    }

    /// The rest of a create, once allocations are made: validation, validating admission,
    /// the write.
    async fn create_allocated(
        &self,
        ctx: &mut WriteCtx,
        info: &'static ResourceInfo,
        sinfo: &'static ResourceInfo,
        ns: &str,
        mut obj: Value,
        generated: bool,
    ) -> Result<Value, ApiError> {
        let (g, v) = sinfo.storage_version;
        let kind = object::kind(&obj).to_string();
        let errs = ferrokube_api::validation::validate_create(g, v, &kind, &obj);
        if !errs.is_empty() {
            return Err(ApiError::invalid(
                info.group,
                object::kind(&obj),
                object::name(&obj),
                &errs,
            ));
        }
        admission::validate_create(self, ctx, sinfo, &obj).await?;
        if ctx.dry_run {
            return Ok(conversion::from_storage(info, obj));
        }
        let mut attempts = 0;
        loop {
            let key = sinfo.key(ns, object::name(&obj));
            match self
                .store
                .create(&key, to_stored_bytes(&obj), ttl(sinfo))
                .await
            {
                Ok(rev) => {
                    object::set_resource_version(&mut obj, rev);
                    return Ok(conversion::from_storage(info, obj));
                }
                Err(ferrokube_store::Error::KeyExists { .. }) if generated && attempts < 8 => {
                    attempts += 1;
                    let prefix = object::meta_str(&obj, "generateName").to_string();
                    object::set_meta(&mut obj, "name", generate_name(&prefix));
                }
                Err(e) => return Err(store_err(info, object::name(&obj), e)),
            }
        }
    }

    /// PUT: replaces an object (or its status) given in `info`'s version, decoded by
    /// [`Registry::decode_input`]. Returns the object and whether it was created.
    pub async fn update(
        &self,
        ctx: &mut WriteCtx,
        info: &'static ResourceInfo,
        ns: &str,
        name: &str,
        subresource: &str,
        new: Value,
    ) -> Result<(Value, bool), ApiError> {
        let body_name = object::name(&new);
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let conditional = !object::resource_version(&new).is_empty();
        loop {
            let Some((kv, old)) = self.read_live(info, ns, name).await? else {
                if strategy::allow_create_on_update(info) && subresource.is_empty() {
                    let mut obj = new.clone();
                    object::set_meta(&mut obj, "name", name);
                    object::remove_meta(&mut obj, "resourceVersion");
                    return self.create(ctx, info, ns, obj).await.map(|o| (o, true));
                }
                return Err(ApiError::not_found(info.group, info.resource, name));
            };
            match self
                .update_from(
                    ctx,
                    info,
                    ns,
                    name,
                    subresource,
                    new.clone(),
                    kv,
                    old,
                    conditional,
                )
                .await
            {
                Err(Retry) => continue,
                Ok(r) => return r.map(|o| (o, false)),
            }
        }
    }

    /// One attempt at an update against the live object `kv`/`old`. `Err(Retry)` means the
    /// object changed underneath and the caller may try again.
    #[allow(clippy::too_many_arguments)]
    async fn update_from(
        &self,
        ctx: &mut WriteCtx,
        info: &'static ResourceInfo,
        ns: &str,
        name: &str,
        subresource: &str,
        mut new: Value,
        kv: KeyValue,
        old: Value,
        conditional: bool,
    ) -> Result<Result<Value, ApiError>, Retry> {
        let sinfo = Self::storage_info(info);
        let old_rv = kv.mod_revision.to_string();
        let new_rv = object::resource_version(&new).to_string();
        if conditional && new_rv != old_rv {
            return Ok(Err(ApiError::conflict_modified(
                info.group,
                info.resource,
                name,
            )));
        }
        if !object::uid(&new).is_empty() && object::uid(&new) != object::uid(&old) {
            return Ok(Err(ApiError::conflict(
                info.group,
                info.resource,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {}, UID in object meta: {}",
                    object::uid(&new),
                    object::uid(&old)
                ),
            )));
        }
        // What the server owns in metadata is kept whatever the client sent.
        {
            let om = object::meta(&old).cloned().unwrap_or_default();
            let m = object::meta_mut(&mut new);
            for k in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "namespace",
                "name",
            ] {
                match om.get(k) {
                    Some(v) => {
                        m.insert(k.into(), v.clone());
                    }
                    None => {
                        m.remove(k);
                    }
                }
            }
            m.insert("resourceVersion".into(), json!(old_rv));
            if !m.contains_key("managedFields")
                && let Some(mf) = om.get("managedFields")
            {
                m.insert("managedFields".into(), mf.clone());
            }
        }
        let applied_fields = ctx
            .applying
            .then(|| new.pointer("/metadata/managedFields").cloned())
            .flatten();
        strategy::prepare_for_update(sinfo, &mut new, &old, subresource);
        if let Some(mf) = applied_fields {
            // Subresource strategies reset metadata; apply's field ownership still holds.
            object::meta_mut(&mut new).insert("managedFields".into(), mf);
        }
        if subresource.is_empty() {
            strategy::bump_generation(sinfo, &mut new, &old);
        }
        let now = ferrokube_api::time::format_rfc3339(ferrokube_api::time::now());
        if !ctx.applying {
            managed_fields::record(
                &mut new,
                Some(&old),
                &ctx.field_manager,
                "Update",
                &api_version(info),
                subresource,
                &now,
            );
        }
        if let Err(e) = admission::admit_update(self, ctx, sinfo, &mut new, &old).await {
            return Ok(Err(e));
        }
        let txn = if Self::is_services(sinfo) && subresource.is_empty() {
            match self
                .services
                .allocate_update(&mut new, &old, ctx.dry_run)
                .await
            {
                Ok(t) => Some(t),
                Err(e) => return Ok(Err(e)),
            }
        } else {
            None
        };
        let result = self
            .update_allocated(
                ctx,
                info,
                sinfo,
                ns,
                name,
                subresource,
                new,
                kv,
                old,
                conditional,
            )
            .await;
        if let Some(txn) = txn {
            match &result {
                Ok(Ok(_)) => self.services.commit(txn).await,
                _ => self.services.revert(txn).await,
            }
        }
        result
    }

    /// The rest of an update, once allocations are made: validation, validating admission,
    /// the write (or the delete, when the last finalizer went).
    #[allow(clippy::too_many_arguments)]
    async fn update_allocated(
        &self,
        ctx: &mut WriteCtx,
        info: &'static ResourceInfo,
        sinfo: &'static ResourceInfo,
        ns: &str,
        name: &str,
        subresource: &str,
        mut new: Value,
        kv: KeyValue,
        old: Value,
        conditional: bool,
    ) -> Result<Result<Value, ApiError>, Retry> {
        let (g, v) = sinfo.storage_version;
        let errs = ferrokube_api::validation::validate_update(g, v, object::kind(&new), &new, &old);
        if !errs.is_empty() {
            return Ok(Err(ApiError::invalid(
                info.group,
                object::kind(&new),
                name,
                &errs,
            )));
        }
        if let Err(e) = admission::validate_update(self, ctx, sinfo, &new, &old, subresource).await
        {
            return Ok(Err(e));
        }
        // A namespace also waits for its spec finalizers (the namespace controller's).
        let namespace_finalizing = sinfo.group.is_empty()
            && sinfo.resource == "namespaces"
            && new
                .pointer("/spec/finalizers")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty());
        // Removing the last finalizer of an object being deleted completes the delete.
        if object::deletion_timestamp(&new).is_some()
            && object::finalizers(&new).is_empty()
            && !namespace_finalizing
            && !ctx.dry_run
        {
            let grace = new
                .pointer("/metadata/deletionGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if grace == 0 {
                return match self
                    .store
                    .delete(&sinfo.key(ns, name), kv.mod_revision)
                    .await
                {
                    Ok((rev, _)) => {
                        self.after_delete(sinfo, &new).await;
                        object::set_resource_version(&mut new, rev);
                        Ok(Ok(conversion::from_storage(info, new)))
                    }
                    Err(ferrokube_store::Error::Conflict { .. }) if !conditional => Err(Retry),
                    Err(e) => Ok(Err(store_err(info, name, e))),
                };
            }
        }
        if new == old {
            return Ok(Ok(conversion::from_storage(info, new)));
        }

        if ctx.dry_run {
            return Ok(Ok(conversion::from_storage(info, new)));
        }
        match self
            .store
            .update(
                &sinfo.key(ns, name),
                to_stored_bytes(&new),
                kv.mod_revision,
                ttl(sinfo),
            )
            .await
        {
            Ok(rev) => {
                object::set_resource_version(&mut new, rev);
                Ok(Ok(conversion::from_storage(info, new)))
            }
            Err(ferrokube_store::Error::Conflict { .. }) if !conditional => Err(Retry),
            Err(ferrokube_store::Error::Conflict { .. }) => Ok(Err(ApiError::conflict_modified(
                info.group,
                info.resource,
                name,
            ))),
            Err(ferrokube_store::Error::NotFound { .. }) if !conditional => Err(Retry),
            Err(e) => Ok(Err(store_err(info, name, e))),
        }
    }

    /// PATCH: applies a JSON, merge or strategic merge patch to the object (or its status) in
    /// `info`'s version, retrying on concurrent changes unless the patch pins a resourceVersion.
    pub async fn patch(
        &self,
        ctx: &mut WriteCtx,
        info: &'static ResourceInfo,
        ns: &str,
        name: &str,
        subresource: &str,
        patch_type: PatchType,
        body: &[u8],
    ) -> Result<Value, ApiError> {
        let kind = info.kind;
        let ty = schema::kind_type(info.group, info.version, kind);
        for _ in 0..16 {
            let Some((kv, old)) = self.read_live(info, ns, name).await? else {
                return Err(ApiError::not_found(info.group, info.resource, name));
            };
            let original = conversion::from_storage(info, old.clone());
            let patched = patch::apply(patch_type, &original, body, ty)
                .map_err(|e| patch_error(info, name, e))?;
            if object::name(&patched) != name {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({}) does not match the name on the URL ({name})",
                    object::name(&patched)
                )));
            }
            let conditional =
                object::resource_version(&patched) != object::resource_version(&original);
            if matches!(patch_type, PatchType::Merge | PatchType::Strategic) {
                ctx.body_scan = Some(BodyScan::Patch(scan_json(body)));
            }
            let new = self.decode_input(ctx, info, patched, kind)?;
            match self
                .update_from(ctx, info, ns, name, subresource, new, kv, old, conditional)
                .await
            {
                Err(Retry) => continue,
                Ok(r) => return r,
            }
        }
        Err(ApiError::conflict_modified(info.group, info.resource, name))
    }

    /// PATCH with `application/apply-patch+yaml`: server-side apply of the configuration in
    /// `body` to the object (or its status), creating it when absent (only the main resource).
    /// Returns the object and whether it was created.
    #[allow(clippy::too_many_arguments)]
    pub async fn apply(
        &self,
        ctx: &mut WriteCtx,
        info: &'static ResourceInfo,
        ns: &str,
        name: &str,
        subresource: &str,
        body: &[u8],
        force: bool,
    ) -> Result<(Value, bool), ApiError> {
        let mut config: Value = serde_yaml::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
        // yaml.v2's strict decoding of the body, JSON or YAML: duplicate keys by line.
        let trimmed = body.trim_ascii_start();
        let dups = if trimmed.starts_with(b"{") {
            scan_json(body).duplicates
        } else {
            scan_yaml(body)
        };
        if !dups.is_empty() {
            let lines = yaml_duplicate_lines(&dups);
            match ctx.field_validation {
                FieldValidation::Strict => {
                    return Err(ApiError::bad_request(format!(
                        "error strict decoding YAML: error converting YAML to JSON: yaml: unmarshal errors:\n  {}",
                        lines.join("\n  ")
                    )));
                }
                FieldValidation::Warn => ctx.warnings.extend(lines),
                FieldValidation::Ignore => {}
            }
        }
        if !config.is_object() {
            return Err(ApiError::bad_request(
                "error decoding YAML: the applied configuration must be an object",
            ));
        }
        let expected = info.api_version();
        let given = config
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if given != expected {
            return Err(ApiError::bad_request(format!(
                "Incorrect version specified in apply patch. Specified patch version: {given}, expected: {expected}"
            )));
        }
        if config.get("kind").and_then(Value::as_str) != Some(info.kind) {
            let kind = config.get("kind").and_then(Value::as_str).unwrap_or("");
            return Err(decode_issue_error(
                kind,
                info.version,
                &format!(
                    "the kind in the data ({kind}) does not match the expected kind ({})",
                    info.kind
                ),
            ));
        }
        match object::name(&config) {
            "" => object::set_meta(&mut config, "name", name),
            n if n != name => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )));
            }
            _ => {}
        }
        if info.namespaced {
            match object::namespace(&config) {
                "" => object::set_meta(&mut config, "namespace", ns),
                n if n != ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => {}
            }
        }
        let wants_rv = object::resource_version(&config).to_string();
        let api_version = api_version(info);
        ctx.applying = true;
        for _ in 0..16 {
            let now = ferrokube_api::time::format_rfc3339(ferrokube_api::time::now());
            let opts = ferrokube_api::apply::ApplyOptions {
                manager: &ctx.field_manager,
                api_version: &api_version,
                subresource,
                force,
                now: &now,
            };
            let live = self.read_live(info, ns, name).await?;
            let Some((kv, old)) = live else {
                if !subresource.is_empty() {
                    return Err(ApiError::not_found(info.group, info.resource, name));
                }
                if !wants_rv.is_empty() {
                    return Err(ApiError::not_found(info.group, info.resource, name));
                }
                let mut base = json!({"apiVersion": api_version, "kind": info.kind,
                    "metadata": {"name": name}});
                if info.namespaced {
                    object::set_meta(&mut base, "namespace", ns);
                }
                let merged =
                    ferrokube_api::apply::apply(&base, &config, &opts).map_err(apply_error)?;
                let obj = self.decode_input(ctx, info, merged, info.kind)?;
                match self.create(ctx, info, ns, obj).await {
                    Err(e)
                        if e.code == 409
                            && e.reason == ferrokube_api::error::Reason::AlreadyExists =>
                    {
                        continue;
                    }
                    other => return other.map(|o| (o, true)),
                }
            };
            let original = conversion::from_storage(info, old.clone());
            if !wants_rv.is_empty() && wants_rv != object::resource_version(&original) {
                return Err(ApiError::conflict_modified(info.group, info.resource, name));
            }
            let merged =
                ferrokube_api::apply::apply(&original, &config, &opts).map_err(apply_error)?;
            let mut new = self.decode_input(ctx, info, merged, info.kind)?;
            object::set_meta(
                &mut new,
                "resourceVersion",
                object::resource_version(&original),
            );
            match self
                .update_from(
                    ctx,
                    info,
                    ns,
                    name,
                    subresource,
                    new,
                    kv,
                    old,
                    !wants_rv.is_empty(),
                )
                .await
            {
                Err(Retry) => continue,
                Ok(r) => return r.map(|o| (o, false)),
            }
        }
        Err(ApiError::conflict_modified(info.group, info.resource, name))
    }

    /// DELETE of one object.
    pub async fn delete(
        &self,
        ctx: &mut WriteCtx,
        info: &'static ResourceInfo,
        ns: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Deleted, ApiError> {
        let sinfo = Self::storage_info(info);
        for _ in 0..16 {
            let Some((kv, mut obj)) = self.read_live(info, ns, name).await? else {
                return Err(ApiError::not_found(info.group, info.resource, name));
            };
            if let Some(uid) = &opts.precondition_uid
                && uid != object::uid(&obj)
            {
                return Err(ApiError::conflict(
                    info.group,
                    info.resource,
                    name,
                    &format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        object::uid(&obj)
                    ),
                ));
            }
            if let Some(rv) = &opts.precondition_rv
                && *rv != kv.mod_revision.to_string()
            {
                return Err(ApiError::conflict(
                    info.group,
                    info.resource,
                    name,
                    &format!(
                        "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                        kv.mod_revision
                    ),
                ));
            }
            admission::admit_delete(self, sinfo, &obj)?;
            let mut finalizers = object::finalizers(&obj);
            let policy = opts
                .propagation_policy
                .clone()
                .unwrap_or_else(|| strategy::default_propagation(sinfo).to_string());
            let mut added = false;
            let gc_finalizer = match policy.as_str() {
                "Orphan" => Some("orphan"),
                "Foreground" => Some("foregroundDeletion"),
                _ => None,
            };
            // Dependents only matter for objects something could own; upstream adds the
            // finalizer whenever the policy asks for it.
            if let Some(f) = gc_finalizer
                && !finalizers.iter().any(|x| x == f)
            {
                finalizers.push(f.to_string());
                added = true;
            }
            if policy == "Background" {
                let before = finalizers.len();
                finalizers.retain(|f| f != "orphan" && f != "foregroundDeletion");
                added |= before != finalizers.len();
            }
            if sinfo.resource == "namespaces" && sinfo.group.is_empty() {
                let spec_fin = obj
                    .pointer("/spec/finalizers")
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty());
                if spec_fin {
                    strategy::namespace_on_delete(&mut obj);
                    if object::deletion_timestamp(&obj).is_none() {
                        let now = ferrokube_api::time::format_rfc3339(ferrokube_api::time::now());
                        object::set_meta(&mut obj, "deletionTimestamp", now);
                        object::set_meta(&mut obj, "deletionGracePeriodSeconds", 0);
                    }
                    object::set_finalizers(&mut obj, &finalizers);
                    return self
                        .write_pending(ctx, info, sinfo, ns, name, kv, obj)
                        .await;
                }
            }
            let grace = strategy::graceful_delete_seconds(sinfo, &obj, opts.grace_period_seconds);
            let already = object::deletion_timestamp(&obj).is_some();
            if let Some(grace) = grace {
                let current = obj
                    .pointer("/metadata/deletionGracePeriodSeconds")
                    .and_then(Value::as_i64);
                if already && current.is_some_and(|c| c <= grace) && !added {
                    return Ok(Deleted::Pending(conversion::from_storage(info, obj)));
                }
                let at = ferrokube_api::time::now() + jiff::SignedDuration::from_secs(grace);
                object::set_meta(
                    &mut obj,
                    "deletionTimestamp",
                    ferrokube_api::time::format_rfc3339(at),
                );
                object::set_meta(&mut obj, "deletionGracePeriodSeconds", grace);
                if sinfo.tracks_generation && !already {
                    let g = object::generation(&obj);
                    object::set_meta(&mut obj, "generation", g + 1);
                }
                object::set_finalizers(&mut obj, &finalizers);
                return self
                    .write_pending(ctx, info, sinfo, ns, name, kv, obj)
                    .await;
            }
            if !finalizers.is_empty() {
                if already && !added {
                    return Ok(Deleted::Pending(conversion::from_storage(info, obj)));
                }
                if !already {
                    let now = ferrokube_api::time::format_rfc3339(ferrokube_api::time::now());
                    object::set_meta(&mut obj, "deletionTimestamp", now);
                    object::set_meta(&mut obj, "deletionGracePeriodSeconds", 0);
                    if sinfo.tracks_generation {
                        let g = object::generation(&obj);
                        object::set_meta(&mut obj, "generation", g + 1);
                    }
                }
                object::set_finalizers(&mut obj, &finalizers);
                return self
                    .write_pending(ctx, info, sinfo, ns, name, kv, obj)
                    .await;
            }
            if ctx.dry_run {
                return Ok(Deleted::Now(conversion::from_storage(info, obj)));
            }
            match self
                .store
                .delete(&sinfo.key(ns, name), kv.mod_revision)
                .await
            {
                Ok((rev, _)) => {
                    self.after_delete(sinfo, &obj).await;
                    object::set_resource_version(&mut obj, rev);
                    return Ok(Deleted::Now(conversion::from_storage(info, obj)));
                }
                Err(
                    ferrokube_store::Error::Conflict { .. }
                    | ferrokube_store::Error::NotFound { .. },
                ) => continue,
                Err(e) => return Err(store_err(info, name, e)),
            }
        }
        Err(ApiError::conflict_modified(info.group, info.resource, name))
    }

    #[allow(clippy::too_many_arguments)]
    async fn write_pending(
        &self,
        ctx: &WriteCtx,
        info: &'static ResourceInfo,
        sinfo: &ResourceInfo,
        ns: &str,
        name: &str,
        kv: KeyValue,
        mut obj: Value,
    ) -> Result<Deleted, ApiError> {
        if ctx.dry_run {
            return Ok(Deleted::Pending(conversion::from_storage(info, obj)));
        }
        match self
            .store
            .update(
                &sinfo.key(ns, name),
                to_stored_bytes(&obj),
                kv.mod_revision,
                ttl(sinfo),
            )
            .await
        {
            Ok(rev) => {
                object::set_resource_version(&mut obj, rev);
                Ok(Deleted::Pending(conversion::from_storage(info, obj)))
            }
            Err(e) => Err(store_err(info, name, e)),
        }
    }

    /// `pods/binding`: assigns an unbound pod to a node and marks it scheduled.
    pub async fn bind_pod(
        &self,
        ctx: &mut WriteCtx,
        ns: &str,
        name: &str,
        node: &str,
        uid: Option<&str>,
        annotations: Option<&Value>,
    ) -> Result<(), ApiError> {
        let info = resources::find("", "v1", "pods").expect("pods are registered");
        for _ in 0..16 {
            let Some((kv, mut pod)) = self.read_live(info, ns, name).await? else {
                return Err(ApiError::not_found("", "pods", name));
            };
            if let Some(u) = uid.filter(|u| !u.is_empty())
                && u != object::uid(&pod)
            {
                return Err(ApiError::conflict(
                    "",
                    "pods/binding",
                    name,
                    &format!(
                        "Precondition failed: UID in precondition: {u}, UID in object meta: {}",
                        object::uid(&pod)
                    ),
                ));
            }
            if object::deletion_timestamp(&pod).is_some() {
                return Err(ApiError::conflict(
                    "",
                    "pods/binding",
                    name,
                    &format!("pod {name} is being deleted, cannot be assigned to a host"),
                ));
            }
            let current = pod
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .unwrap_or("");
            if !current.is_empty() {
                return Err(ApiError::conflict(
                    "",
                    "pods/binding",
                    name,
                    &format!("pod {name} is already assigned to node {current:?}"),
                ));
            }
            pod["spec"]["nodeName"] = json!(node);
            if let Some(a) = annotations.and_then(Value::as_object) {
                let meta = object::meta_mut(&mut pod);
                let ann = meta.entry("annotations").or_insert_with(|| json!({}));
                for (k, v) in a {
                    ann[k] = v.clone();
                }
            }
            let now = ferrokube_api::time::format_rfc3339(ferrokube_api::time::now());
            set_condition(&mut pod, "PodScheduled", "True", &now);
            let before = pod.clone();
            managed_fields::record(
                &mut pod,
                Some(&before),
                &ctx.field_manager,
                "Update",
                "v1",
                "",
                &now,
            );
            if ctx.dry_run {
                return Ok(());
            }
            match self
                .store
                .update(&kv.key, to_stored_bytes(&pod), kv.mod_revision, None)
                .await
            {
                Ok(_) => return Ok(()),
                Err(ferrokube_store::Error::Conflict { .. }) => continue,
                Err(e) => return Err(store_err(info, name, e)),
            }
        }
        Err(ApiError::conflict_modified("", "pods", name))
    }

    /// `pods/eviction`: deletes a pod unless that would violate its PodDisruptionBudget.
    pub async fn evict_pod(
        &self,
        ctx: &mut WriteCtx,
        ns: &str,
        name: &str,
        del: &DeleteOptions,
    ) -> Result<(), ApiError> {
        let pods = resources::find("", "v1", "pods").expect("pods are registered");
        let pdbs =
            resources::find("policy", "v1", "poddisruptionbudgets").expect("pdbs are registered");
        for _ in 0..16 {
            let Some((_, pod)) = self.read_live(pods, ns, name).await? else {
                return Err(ApiError::not_found("", "pods", name));
            };
            let phase = pod
                .pointer("/status/phase")
                .and_then(Value::as_str)
                .unwrap_or("");
            let ignore_pdb = object::deletion_timestamp(&pod).is_some()
                || matches!(phase, "Succeeded" | "Failed" | "Pending");
            if !ignore_pdb {
                let labels = ferrokube_api::selector::labels::labels_of(&pod);
                let prefix = pdbs.collection_prefix(ns);
                let listed = self
                    .store
                    .list(&prefix, "", 0, 0)
                    .await
                    .map_err(|e| store_err(pdbs, "", e))?;
                let mut matching = Vec::new();
                for kv in listed.kvs {
                    let pdb = parse_stored(&kv)?;
                    let sel = ferrokube_api::selector::LabelSelector::from_structured(
                        pdb.pointer("/spec/selector"),
                    )
                    .unwrap_or_else(|_| ferrokube_api::selector::LabelSelector::nothing());
                    if sel.matches(&labels) {
                        matching.push((kv, pdb));
                    }
                }
                if matching.len() > 1 {
                    return Err(ApiError::internal(
                        "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
                    ));
                }
                if let Some((kv, mut pdb)) = matching.pop() {
                    let pdb_name = object::name(&pdb).to_string();
                    let violation = |cause: String| {
                        ApiError::too_many_requests(
                            "Cannot evict pod as it would violate the pod's disruption budget.",
                            0,
                        )
                        .with_cause("DisruptionBudget", &cause, "")
                    };
                    let observed = pdb
                        .pointer("/status/observedGeneration")
                        .and_then(Value::as_i64)
                        .unwrap_or(0);
                    if observed < object::generation(&pdb) {
                        let mut e = violation(format!(
                            "The disruption budget {pdb_name} is still being processed by the server."
                        ));
                        e.retry_after_seconds = None;
                        return Err(e);
                    }
                    let allowed = pdb
                        .pointer("/status/disruptionsAllowed")
                        .and_then(Value::as_i64)
                        .unwrap_or(0);
                    if allowed <= 0 {
                        let desired = pdb
                            .pointer("/status/desiredHealthy")
                            .and_then(Value::as_i64)
                            .unwrap_or(0);
                        let current = pdb
                            .pointer("/status/currentHealthy")
                            .and_then(Value::as_i64)
                            .unwrap_or(0);
                        let mut e = violation(format!(
                            "The disruption budget {pdb_name} needs {desired} healthy pods and has {current} currently"
                        ));
                        e.retry_after_seconds = None;
                        return Err(e);
                    }
                    if !ctx.dry_run {
                        pdb["status"]["disruptionsAllowed"] = json!(allowed - 1);
                        let now = ferrokube_api::time::format_rfc3339(ferrokube_api::time::now());
                        if !pdb["status"]["disruptedPods"].is_object() {
                            pdb["status"]["disruptedPods"] = json!({});
                        }
                        pdb["status"]["disruptedPods"][name] = json!(now);
                        match self
                            .store
                            .update(&kv.key, to_stored_bytes(&pdb), kv.mod_revision, None)
                            .await
                        {
                            Ok(_) => {}
                            Err(ferrokube_store::Error::Conflict { .. }) => continue,
                            Err(e) => return Err(store_err(pdbs, &pdb_name, e)),
                        }
                    }
                }
            }
            self.delete(ctx, pods, ns, name, del).await?;
            return Ok(());
        }
        Err(ApiError::conflict_modified("", "pods", name))
    }

    /// One live object in its storage form, for admission (cache first, then the store).
    pub async fn live_object(
        &self,
        group: &str,
        version: &str,
        resource: &str,
        ns: &str,
        name: &str,
    ) -> Result<Option<Value>, ApiError> {
        let Some(info) = resources::find(group, version, resource) else {
            return Ok(None);
        };
        if let Some(c) = self.caches.for_resource(info)
            && let Some(o) = c.get(&info.key(ns, name))
        {
            return Ok(Some(o.value()));
        }
        Ok(self.read_live(info, ns, name).await?.map(|(_, v)| v))
    }

    /// Every live object of a cluster-scoped resource (or of one namespace), for admission.
    pub async fn live_objects(
        &self,
        group: &str,
        version: &str,
        resource: &str,
        ns: &str,
    ) -> Result<Vec<Value>, ApiError> {
        let Some(info) = resources::find(group, version, resource) else {
            return Ok(Vec::new());
        };
        let listed = self
            .store
            .list(&info.collection_prefix(ns), "", 0, 0)
            .await
            .map_err(|e| store_err(info, "", e))?;
        listed.kvs.iter().map(parse_stored).collect()
    }

    /// The live object of a namespace, for admission (cache first, then the store).
    pub async fn namespace_object(&self, name: &str) -> Result<Option<Value>, ApiError> {
        let info = resources::find("", "v1", "namespaces").expect("namespaces are registered");
        if let Some(c) = self.caches.for_resource(info)
            && let Some(o) = c.get(&info.key("", name))
        {
            return Ok(Some(o.value()));
        }
        Ok(self.read_live(info, "", name).await?.map(|(_, v)| v))
    }
}

/// The object changed underneath an unconditional write; read it again and retry.
pub struct Retry;

const CONTINUE_EXPIRED: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

/// Upstream's continue token: base64 of `{"v":"meta.k8s.io/v1","rv":N,"start":"<key suffix>"}`.
fn encode_continue(rev: Revision, last_key: &str, prefix: &str) -> String {
    use base64::Engine;
    let start = format!("{}\u{0}", last_key.strip_prefix(prefix).unwrap_or(last_key));
    let tok = json!({"v": "meta.k8s.io/v1", "rv": rev, "start": start});
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&tok).unwrap_or_default())
}

fn decode_continue(tok: &str, prefix: &str) -> Result<(Revision, String), ApiError> {
    use base64::Engine;
    let bad = || ApiError::bad_request(format!("continue key is not valid: {tok}"));
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(tok.trim_end_matches('='))
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    if v.get("v").and_then(Value::as_str) != Some("meta.k8s.io/v1") {
        return Err(bad());
    }
    let rev = v
        .get("rv")
        .and_then(Value::as_i64)
        .filter(|r| *r > 0)
        .ok_or_else(bad)?;
    let start = v.get("start").and_then(Value::as_str).ok_or_else(bad)?;
    if start.contains("..") || start.starts_with('/') {
        return Err(bad());
    }
    let key = format!("{prefix}{}", start.trim_end_matches('\u{0}'));
    Ok((rev, key))
}

fn patch_error(info: &ResourceInfo, name: &str, e: PatchError) -> ApiError {
    let msg = e.to_string();
    match e {
        PatchError::BadRequest(_) => ApiError::bad_request(msg),
        // Upstream's NewGenericServerResponse(422): a generic message, the reason in a cause.
        PatchError::Unprocessable(_) => {
            let _ = (info, name);
            ApiError::new(
                422,
                ferrokube_api::error::Reason::Invalid,
                "the server rejected our request due to an error in our request",
            )
            .with_cause("UnexpectedServerResponse", &msg, "")
        }
        PatchError::TooLarge(_) => ApiError::request_entity_too_large(msg),
        PatchError::UnsupportedMediaType(_) => {
            ApiError::new(415, ferrokube_api::error::Reason::UnsupportedMediaType, msg)
        }
        // Plain Go errors reach upstream's ErrorToAPIStatus unclassified: 500, no reason.
        PatchError::Internal(_) => ApiError::new(500, ferrokube_api::error::Reason::Unknown, msg),
    }
}

/// The Status of a failed server-side apply.
fn apply_error(e: ferrokube_api::apply::ApplyError) -> ApiError {
    use ferrokube_api::apply::ApplyError as E;
    use ferrokube_api::error::Reason;
    match e {
        E::Conflicts(list) => {
            let mut err = ApiError::new(
                409,
                Reason::Conflict,
                E::Conflicts(list.clone()).to_string(),
            );
            for c in &list {
                err = err.with_cause(
                    "FieldManagerConflict",
                    &format!("conflict with {}", c.manager),
                    &c.field,
                );
            }
            err
        }
        E::Schema(msg) => ApiError::new(500, Reason::Unknown, msg),
        E::BadRequest(msg) => ApiError::bad_request(msg),
    }
}

/// Sets a status condition (`type`, `status`), keeping its transition time when unchanged.
pub fn set_condition(obj: &mut Value, type_: &str, status: &str, now: &str) {
    if !obj["status"].is_object() {
        obj["status"] = json!({});
    }
    if !obj["status"]["conditions"].is_array() {
        obj["status"]["conditions"] = json!([]);
    }
    let conds = obj["status"]["conditions"]
        .as_array_mut()
        .expect("conditions were just made an array");
    match conds.iter_mut().find(|c| c.get("type").and_then(Value::as_str) == Some(type_)) {
        Some(c) => {
            if c.get("status").and_then(Value::as_str) != Some(status) {
                c["status"] = json!(status);
                c["lastTransitionTime"] = json!(now);
            }
        }
        None => conds.push(json!({"type": type_, "status": status, "lastProbeTime": null, "lastTransitionTime": now})),
    }
}

pub fn api_version(info: &ResourceInfo) -> String {
    info.api_version()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip_and_reject_garbage() {
        let t = encode_continue(
            42,
            "/registry/pods/default/web-1",
            "/registry/pods/default/",
        );
        assert_eq!(
            decode_continue(&t, "/registry/pods/default/").unwrap(),
            (42, "/registry/pods/default/web-1".to_string())
        );
        assert!(decode_continue("not-a-token", "/registry/pods/").is_err());
    }

    #[test]
    fn generated_names_use_five_safe_characters() {
        let n = generate_name("web-");
        assert_eq!(n.len(), 9);
        assert!(
            n[4..]
                .bytes()
                .all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b))
        );
    }
}
