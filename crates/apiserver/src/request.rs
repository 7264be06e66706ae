//! What a request asks for: upstream's `RequestInfo` (verb, group, version, namespace, resource,
//! name, subresource) parsed from the path and method, and the query parameters of each verb.

use std::collections::HashMap;
use std::time::Duration;

use ferrokube_api::ApiError;
use ferrokube_api::resources::{self, ResourceInfo};
use ferrokube_api::selector::{FieldSelector, LabelSelector};
use http::Method;

/// A request against a resource.
#[derive(Clone, Debug)]
pub struct ResourceRequest {
    /// Kubernetes verb: get, list, watch, create, update, patch, delete, deletecollection.
    pub verb: &'static str,
    pub info: &'static ResourceInfo,
    pub namespace: String,
    pub name: String,
    pub subresource: String,
    /// Path segments after the subresource (proxy paths).
    pub rest: Vec<String>,
}

/// How a path was understood.
#[derive(Debug)]
pub enum Route {
    Resource(ResourceRequest),
    /// `/api`, `/apis`, `/api/v1`, `/apis/apps`, `/apis/apps/v1`.
    Discovery {
        group: Option<String>,
        version: Option<String>,
        legacy: bool,
    },
    NotFound,
}

fn method_verb(method: &Method, has_name: bool, watch: bool) -> Option<&'static str> {
    Some(match *method {
        Method::GET | Method::HEAD if watch => "watch",
        Method::GET | Method::HEAD if has_name => "get",
        Method::GET | Method::HEAD => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if has_name => "delete",
        Method::DELETE => "deletecollection",
        _ => return None,
    })
}

/// Parses a request path the way upstream's `RequestInfoFactory` does.
pub fn route(method: &Method, path: &str, query: &Query) -> Result<Route, ApiError> {
    let segs: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let (group, version, rest, legacy) = match segs.as_slice() {
        ["api"] => {
            return Ok(Route::Discovery {
                group: None,
                version: None,
                legacy: true,
            });
        }
        ["apis"] => {
            return Ok(Route::Discovery {
                group: None,
                version: None,
                legacy: false,
            });
        }
        ["api", v] => {
            return Ok(Route::Discovery {
                group: None,
                version: Some(v.to_string()),
                legacy: true,
            });
        }
        ["apis", g] => {
            return Ok(Route::Discovery {
                group: Some(g.to_string()),
                version: None,
                legacy: false,
            });
        }
        ["apis", g, v] => {
            return Ok(Route::Discovery {
                group: Some(g.to_string()),
                version: Some(v.to_string()),
                legacy: false,
            });
        }
        ["api", v, rest @ ..] => ("", *v, rest, true),
        ["apis", g, v, rest @ ..] => (*g, *v, rest, false),
        _ => return Ok(Route::NotFound),
    };
    let _ = legacy;
    let mut rest: Vec<&str> = rest.to_vec();
    // Deprecated `/api/v1/watch/...` paths.
    let mut watch = query.flag("watch");
    if rest.first() == Some(&"watch") {
        watch = true;
        rest.remove(0);
    }
    let mut namespace = String::new();
    // `namespaces/NAME/status` and `namespaces/NAME/finalize` are subresources of the namespace
    // itself, as in upstream's RequestInfoFactory.
    if rest.first() == Some(&"namespaces")
        && rest.len() >= 3
        && !matches!(rest[2], "status" | "finalize")
    {
        namespace = rest[1].to_string();
        rest.drain(..2);
    } else if rest.first() == Some(&"namespaces") && rest.len() == 2 {
        // `/api/v1/namespaces/NAME`: the namespace object itself.
    }
    let Some(resource) = rest.first().copied() else {
        return Ok(Route::NotFound);
    };
    let Some(info) = resources::find(group, version, resource) else {
        return Ok(Route::NotFound);
    };
    if !namespace.is_empty() && !info.namespaced {
        return Ok(Route::NotFound);
    }
    let name = rest.get(1).map(|s| s.to_string()).unwrap_or_default();
    let subresource = rest.get(2).map(|s| s.to_string()).unwrap_or_default();
    let extra: Vec<String> = rest.iter().skip(3).map(|s| s.to_string()).collect();
    let Some(mut verb) = method_verb(method, !name.is_empty(), watch) else {
        return Err(ApiError::method_not_allowed());
    };
    if verb == "watch" && !name.is_empty() {
        // watch of one object by name: a watch with a name filter.
        verb = "watch";
    }
    if !subresource.is_empty() {
        // `pods/log` is read with GET; `pods/exec` with GET (WebSocket) or POST (SPDY).
        if !info.has_subresource(&subresource) {
            return Ok(Route::NotFound);
        }
        if verb == "list" || verb == "watch" {
            verb = "get";
        }
    }
    Ok(Route::Resource(ResourceRequest {
        verb,
        info,
        namespace,
        name,
        subresource,
        rest: extra,
    }))
}

/// Query parameters, first value wins.
#[derive(Clone, Debug, Default)]
pub struct Query(HashMap<String, String>);

impl Query {
    pub fn parse(q: Option<&str>) -> Query {
        let mut m = HashMap::new();
        if let Some(q) = q {
            for (k, v) in form_urlencoded::parse(q.as_bytes()) {
                m.entry(k.into_owned()).or_insert_with(|| v.into_owned());
            }
        }
        Query(m)
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }

    pub fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("true" | "1" | ""))
    }

    pub fn all(&self) -> &HashMap<String, String> {
        &self.0
    }
}

/// `resourceVersionMatch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RvMatch {
    Unset,
    NotOlderThan,
    Exact,
}

/// The options of list and watch.
#[derive(Clone, Debug)]
pub struct ListOptions {
    pub label_selector: LabelSelector,
    pub field_selector: FieldSelector,
    pub resource_version: Option<String>,
    pub rv_match: RvMatch,
    pub limit: i64,
    pub continue_token: Option<String>,
    pub timeout: Option<Duration>,
    pub allow_bookmarks: bool,
    pub send_initial_events: Option<bool>,
}

impl ListOptions {
    pub fn parse(q: &Query, group: &str, resource: &str) -> Result<ListOptions, ApiError> {
        let label_selector = LabelSelector::parse(q.get("labelSelector").unwrap_or(""))
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let field_selector = FieldSelector::parse(q.get("fieldSelector").unwrap_or(""))
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        field_selector
            .check_supported(group, resource)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let rv_match = match q.get("resourceVersionMatch").unwrap_or("") {
            "" => RvMatch::Unset,
            "NotOlderThan" => RvMatch::NotOlderThan,
            "Exact" => RvMatch::Exact,
            other => {
                return Err(invalid_list_options(&[
                    ferrokube_api::FieldError::not_supported(
                        "resourceVersionMatch",
                        other,
                        &["Exact", "NotOlderThan"],
                    ),
                ]));
            }
        };
        let limit = match q.get("limit") {
            Some(l) if !l.is_empty() => l
                .parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid limit {l:?}")))?
                .max(0),
            _ => 0,
        };
        let timeout = match q.get("timeoutSeconds") {
            Some(t) if !t.is_empty() => {
                Some(Duration::from_secs(t.parse::<u64>().map_err(|_| {
                    ApiError::bad_request(format!("invalid timeoutSeconds {t:?}"))
                })?))
            }
            _ => None,
        };
        let resource_version = q
            .get("resourceVersion")
            .filter(|s| !s.is_empty())
            .map(String::from);
        let continue_token = q
            .get("continue")
            .filter(|s| !s.is_empty())
            .map(String::from);
        let send_initial_events = q.get("sendInitialEvents").map(|v| v == "true");
        let opts = ListOptions {
            label_selector,
            field_selector,
            resource_version,
            rv_match,
            limit,
            continue_token,
            timeout,
            allow_bookmarks: q.flag("allowWatchBookmarks"),
            send_initial_events,
        };
        opts.validate()?;
        Ok(opts)
    }

    /// Upstream's `ValidateListOptions` combinations.
    fn validate(&self) -> Result<(), ApiError> {
        use ferrokube_api::FieldError;
        let mut errs = Vec::new();
        if self.rv_match != RvMatch::Unset && self.resource_version.is_none() {
            errs.push(FieldError::forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            ));
        }
        if self.rv_match == RvMatch::Exact && self.resource_version.as_deref() == Some("0") {
            errs.push(FieldError::forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
            ));
        }
        if self.continue_token.is_some() && self.rv_match != RvMatch::Unset {
            errs.push(FieldError::forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden when continue is provided",
            ));
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(invalid_list_options(&errs))
        }
    }

    /// The resourceVersion as a number; `Err` for garbage (upstream: 400 with this wording).
    pub fn rv_number(&self) -> Result<Option<i64>, ApiError> {
        parse_rv(self.resource_version.as_deref())
    }
}

pub fn parse_rv(rv: Option<&str>) -> Result<Option<i64>, ApiError> {
    match rv {
        None | Some("") => Ok(None),
        Some(s) => s
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("invalid resource version: {s}"))),
    }
}

fn invalid_list_options(errs: &[ferrokube_api::FieldError]) -> ApiError {
    ApiError::invalid("meta.k8s.io", "ListOptions", "", errs)
}

/// `dryRun=All`.
pub fn dry_run(q: &Query) -> Result<bool, ApiError> {
    match q.get("dryRun") {
        None | Some("") => Ok(false),
        Some("All") => Ok(true),
        Some(other) => Err(ApiError::invalid(
            "",
            "",
            "",
            &[ferrokube_api::FieldError::not_supported(
                "dryRun",
                other,
                &["All"],
            )],
        )),
    }
}

/// `fieldValidation=Strict|Warn|Ignore` (default Warn... upstream defaults to Warn for
/// requests that do not say).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

pub fn field_validation(q: &Query) -> Result<FieldValidation, ApiError> {
    match q.get("fieldValidation") {
        None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
        Some("Strict") => Ok(FieldValidation::Strict),
        Some("Ignore") => Ok(FieldValidation::Ignore),
        Some(other) => Err(ApiError::bad_request(format!(
            "fieldValidation parameter unsupported: {other}. Valid values are: Ignore, Strict, Warn"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(method: Method, path: &str) -> ResourceRequest {
        match route(&method, path, &Query::parse(None)).unwrap() {
            Route::Resource(r) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn paths_resolve_to_upstream_request_info() {
        let cases = [
            (Method::GET, "/api/v1/pods", "list", "pods", "", "", ""),
            (
                Method::GET,
                "/api/v1/namespaces/default/pods",
                "list",
                "pods",
                "default",
                "",
                "",
            ),
            (
                Method::GET,
                "/api/v1/namespaces/default/pods/web",
                "get",
                "pods",
                "default",
                "web",
                "",
            ),
            (
                Method::GET,
                "/api/v1/namespaces/default/pods/web/log",
                "get",
                "pods",
                "default",
                "web",
                "log",
            ),
            (
                Method::POST,
                "/api/v1/namespaces/d/pods/web/eviction",
                "create",
                "pods",
                "d",
                "web",
                "eviction",
            ),
            (
                Method::GET,
                "/api/v1/namespaces",
                "list",
                "namespaces",
                "",
                "",
                "",
            ),
            (
                Method::GET,
                "/api/v1/namespaces/kube-system",
                "get",
                "namespaces",
                "",
                "kube-system",
                "",
            ),
            (
                Method::PUT,
                "/api/v1/namespaces/x/finalize",
                "update",
                "namespaces",
                "",
                "x",
                "finalize",
            ),
            (
                Method::PATCH,
                "/apis/apps/v1/namespaces/d/deployments/web/scale",
                "patch",
                "deployments",
                "d",
                "web",
                "scale",
            ),
            (
                Method::DELETE,
                "/api/v1/namespaces/d/pods",
                "deletecollection",
                "pods",
                "d",
                "",
                "",
            ),
            (
                Method::GET,
                "/api/v1/watch/namespaces/d/pods",
                "watch",
                "pods",
                "d",
                "",
                "",
            ),
            (
                Method::PATCH,
                "/api/v1/nodes/n1",
                "patch",
                "nodes",
                "",
                "n1",
                "",
            ),
        ];
        for (m, path, verb, res, ns, name, sub) in cases {
            let got = r(m, path);
            assert_eq!(
                (
                    got.verb,
                    got.info.resource,
                    got.namespace.as_str(),
                    got.name.as_str(),
                    got.subresource.as_str()
                ),
                (verb, res, ns, name, sub),
                "{path}"
            );
        }
    }

    #[test]
    fn unknown_resources_and_scopes_are_not_found() {
        for p in [
            "/api/v1/foos",
            "/apis/apps/v1/namespaces/d/pods",
            "/api/v1/namespaces/d/nodes/x",
            "/api/v1/namespaces/d/pods/x/nosuch",
        ] {
            assert!(
                matches!(
                    route(&Method::GET, p, &Query::parse(None)).unwrap(),
                    Route::NotFound
                ),
                "{p}"
            );
        }
    }

    #[test]
    fn list_option_combinations_are_checked() {
        let q = Query::parse(Some("resourceVersionMatch=Exact"));
        assert_eq!(ListOptions::parse(&q, "", "pods").unwrap_err().code, 422);
        let q = Query::parse(Some("fieldSelector=spec.bogus%3Dx"));
        let e = ListOptions::parse(&q, "", "pods").unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (400, "field label not supported: spec.bogus")
        );
        let q = Query::parse(Some(
            "labelSelector=app%3Dweb&limit=500&watch=true&allowWatchBookmarks=true",
        ));
        let o = ListOptions::parse(&q, "", "pods").unwrap();
        assert_eq!(o.limit, 500);
        assert!(o.allow_bookmarks);
    }
}
