//! The operations of every served path, laid out as upstream's API installer registers them:
//! collection and object paths per resource, the all-namespaces list, the deprecated `watch/`
//! paths, subresources, and the discovery endpoints. Format-neutral: the v2 and v3 renderers
//! turn these into Swagger 2.0 and OpenAPI 3.0 operations.

use super::definitions::{
    API_GROUP, API_GROUP_LIST, API_RESOURCE_LIST, API_VERSIONS, DELETE_OPTIONS, PATCH, STATUS,
    WATCH_EVENT, kind_type_name, list_type_name,
};
use ferrokube_api::resources::{self, ResourceInfo, Subresource};

/// Where a parameter goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum In {
    Path,
    Query,
}

/// A parameter's primitive type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamType {
    String,
    Integer,
    Boolean,
}

impl ParamType {
    pub fn as_str(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Integer => "integer",
            ParamType::Boolean => "boolean",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Param {
    pub name: &'static str,
    pub location: In,
    pub description: String,
    pub ty: ParamType,
    pub required: bool,
}

/// What an operation answers with.
#[derive(Clone, Debug)]
pub enum Payload {
    /// A definition, by name.
    Ref(String),
    /// A plain string (logs, connect streams).
    Text,
}

/// The media types an operation produces, upstream's few fixed sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Produces {
    Object,
    /// Lists, which can also be watched with `?watch=true`.
    List,
    /// The deprecated `watch/` paths.
    Watch,
    /// `log`.
    Log,
    /// connect subresources (`exec`, `proxy`, ...).
    Any,
}

impl Produces {
    pub fn media_types(self) -> &'static [&'static str] {
        match self {
            Produces::Object => &[
                "application/json",
                "application/yaml",
                "application/vnd.kubernetes.protobuf",
            ],
            Produces::List => &[
                "application/json",
                "application/yaml",
                "application/vnd.kubernetes.protobuf",
                "application/json;stream=watch",
                "application/vnd.kubernetes.protobuf;stream=watch",
            ],
            Produces::Watch => &[
                "application/json",
                "application/yaml",
                "application/vnd.kubernetes.protobuf",
                "application/json;stream=watch",
                "application/vnd.kubernetes.protobuf;stream=watch",
            ],
            Produces::Log => &["text/plain", "application/json", "application/yaml"],
            Produces::Any => &["*/*"],
        }
    }
}

pub const PATCH_MEDIA_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];

#[derive(Clone, Debug)]
pub struct Operation {
    /// Lowercase HTTP method: `get`, `put`, `post`, `delete`, `patch`, `head`, `options`.
    pub method: &'static str,
    pub id: String,
    pub description: String,
    pub tag: String,
    /// `x-kubernetes-action`.
    pub action: Option<&'static str>,
    /// `x-kubernetes-group-version-kind`.
    pub gvk: Option<(String, String, String)>,
    pub params: Vec<Param>,
    /// The request body's schema and the media types it may come in.
    pub body: Option<(String, &'static [&'static str])>,
    /// (code, description, payload) per answer.
    pub responses: Vec<(u16, &'static str, Payload)>,
    pub produces: Produces,
}

#[derive(Clone, Debug)]
pub struct PathItem {
    pub path: String,
    pub params: Vec<Param>,
    pub operations: Vec<Operation>,
}

fn param(name: &'static str, location: In, ty: ParamType, description: &str) -> Param {
    Param {
        name,
        location,
        description: description.to_string(),
        ty,
        required: location == In::Path,
    }
}

fn query(name: &'static str, ty: ParamType, description: &str) -> Param {
    param(name, In::Query, ty, description)
}

const DRY_RUN: &str = "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed";
const FIELD_MANAGER: &str = "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.";
const FIELD_MANAGER_PATCH: &str = "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint. This field is required for apply requests (application/apply-patch) but optional for non-apply patch types (JsonPatch, MergePatch, StrategicMergePatch).";
const FIELD_VALIDATION: &str = "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. This is the default behavior prior to v1.23. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default in v1.23+ - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.";
const FORCE: &str = "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.";
const PRETTY: &str = "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget).";
const NAMESPACE: &str = "object name and auth scope, such as for teams and projects";
const GRACE_PERIOD: &str = "The duration in seconds before the object should be deleted. Value must be non-negative integer. The value zero indicates delete immediately. If this value is nil, the default grace period for the specified type will be used. Defaults to a per object value if not specified. zero means delete immediately.";
const IGNORE_STORE_READ_ERROR: &str = "if set to true, it will trigger an unsafe deletion of the resource in case the normal deletion flow fails with a corrupt object error. A resource is considered corrupt if it can not be retrieved from the underlying storage successfully because of a) its data can not be transformed e.g. decryption failure, or b) it fails to decode into an object. NOTE: unsafe deletion ignores finalizer constraints, skips precondition checks, and removes the object from the storage. WARNING: This may potentially break the cluster if the workload associated with the resource being unsafe-deleted relies on normal deletion flow. Use only if you REALLY know what you are doing. The default value is false, and the user must opt in to enable it";
const ORPHAN: &str = "Deprecated: please use the PropagationPolicy, this field will be deprecated in 1.7. Should the dependent objects be orphaned. If true/false, the \"orphan\" finalizer will be added to/removed from the object's finalizers list. Either this field or PropagationPolicy may be set, but not both.";
const PROPAGATION: &str = "Whether and how garbage collection will be performed. Either this field or OrphanDependents may be set, but not both. The default policy is decided by the existing finalizer set in the metadata.finalizers and the resource-specific default policy. Acceptable values are: 'Orphan' - orphan the dependents; 'Background' - allow the garbage collector to delete the dependents in the background; 'Foreground' - a cascading policy that deletes all dependents in the foreground.";

fn list_params() -> Vec<Param> {
    use ParamType::*;
    vec![
        query(
            "allowWatchBookmarks",
            Boolean,
            "allowWatchBookmarks requests watch events with type \"BOOKMARK\". Servers that do not implement bookmarks may ignore this flag and bookmarks are sent at the server's discretion. Clients should not assume bookmarks are returned at any specific interval, nor may they assume the server will send any BOOKMARK event during a session. If this is not a watch, this field is ignored.",
        ),
        query(
            "continue",
            String,
            "The continue option should be set when retrieving more results from the server. Since this value is server defined, clients may only use the continue value from a previous query result with identical query parameters (except for the value of continue) and the server may reject a continue value it does not recognize. If the specified continue value is no longer valid whether due to expiration (generally five to fifteen minutes) or a configuration change on the server, the server will respond with a 410 ResourceExpired error together with a continue token. If the client needs a consistent list, it must restart their list without the continue field. Otherwise, the client may send another list request with the token received with the 410 error, the server will respond with a list starting from the next key, but from the latest snapshot, which is inconsistent from the previous list results - objects that are created, modified, or deleted after the first list request will be included in the response, as long as their keys are after the \"next key\".\n\nThis field is not supported when watch is true. Clients may start a watch from the last resourceVersion value returned by the server and not miss any modifications.",
        ),
        query(
            "fieldSelector",
            String,
            "A selector to restrict the list of returned objects by their fields. Defaults to everything.",
        ),
        query(
            "labelSelector",
            String,
            "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
        ),
        query(
            "limit",
            Integer,
            "limit is a maximum number of responses to return for a list call. If more items exist, the server will set the `continue` field on the list metadata to a value that can be used with the same initial query to retrieve the next set of results. Setting a limit may return fewer than the requested amount of items (up to zero items) in the event all requested objects are filtered out and clients should only use the presence of the continue field to determine whether more results are available. Servers may choose not to support the limit argument and will return all of the available results. If limit is specified and the continue field is empty, clients may assume that no more results are available. This field is not supported if watch is true.\n\nThe server guarantees that the objects returned when using continue will be identical to issuing a single list call without a limit - that is, no objects created, modified, or deleted after the first request is issued will be included in any subsequent continued requests. This is sometimes referred to as a consistent snapshot, and ensures that a client that is using limit to receive smaller chunks of a very large result can ensure they see all possible objects. If objects are updated during a chunked list the version of the object that was present at the time the first list result was calculated is returned.",
        ),
        query(
            "resourceVersion",
            String,
            "resourceVersion sets a constraint on what resource versions a request may be served from. See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset",
        ),
        query(
            "resourceVersionMatch",
            String,
            "resourceVersionMatch determines how resourceVersion is applied to list calls. It is highly recommended that resourceVersionMatch be set for list calls where resourceVersion is set See https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions for details.\n\nDefaults to unset",
        ),
        query(
            "sendInitialEvents",
            Boolean,
            "`sendInitialEvents=true` may be set together with `watch=true`. In that case, the watch stream will begin with synthetic events to produce the current state of objects in the collection. Once all such events have been sent, a synthetic \"Bookmark\" event  will be sent. The bookmark will report the ResourceVersion (RV) corresponding to the set of objects, and be marked with `\"k8s.io/initial-events-end\": \"true\"` annotation. Afterwards, the watch stream will proceed as usual, sending watch events corresponding to changes (subsequent to the RV) to objects watched.\n\nWhen `sendInitialEvents` option is set, we require `resourceVersionMatch` option to also be set. The semantic of the watch request is as following: - `resourceVersionMatch` = NotOlderThan\n  is interpreted as \"data at least as new as the provided `resourceVersion`\"\n  and the bookmark event is send when the state is synced\n  to a `resourceVersion` at least as fresh as the one provided by the ListOptions.\n  If `resourceVersion` is unset, this is interpreted as \"consistent read\" and the\n  bookmark event is send when the state is synced at least to the moment\n  when request started being processed.\n- `resourceVersionMatch` set to any other value or unset\n  Invalid error is returned.\n\nDefaults to true if `resourceVersion=\"\"` or `resourceVersion=\"0\"` (for backward compatibility reasons) and to false otherwise.",
        ),
        query(
            "timeoutSeconds",
            Integer,
            "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity.",
        ),
        query(
            "watch",
            Boolean,
            "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion.",
        ),
    ]
}

fn write_params(patch: bool) -> Vec<Param> {
    use ParamType::*;
    let mut out = vec![
        query("dryRun", String, DRY_RUN),
        query(
            "fieldManager",
            String,
            if patch {
                FIELD_MANAGER_PATCH
            } else {
                FIELD_MANAGER
            },
        ),
        query("fieldValidation", String, FIELD_VALIDATION),
    ];
    if patch {
        out.push(query("force", Boolean, FORCE));
    }
    out
}

fn delete_params() -> Vec<Param> {
    use ParamType::*;
    vec![
        query("dryRun", String, DRY_RUN),
        query("gracePeriodSeconds", Integer, GRACE_PERIOD),
        query(
            "ignoreStoreReadErrorWithClusterBreakingPotential",
            Boolean,
            IGNORE_STORE_READ_ERROR,
        ),
        query("orphanDependents", Boolean, ORPHAN),
        query("propagationPolicy", String, PROPAGATION),
    ]
}

fn pretty() -> Param {
    query("pretty", ParamType::String, PRETTY)
}

fn namespace_param() -> Param {
    param("namespace", In::Path, ParamType::String, NAMESPACE)
}

fn name_param(kind: &str) -> Param {
    param(
        "name",
        In::Path,
        ParamType::String,
        &format!("name of the {kind}"),
    )
}

/// `rbac.authorization.k8s.io` -> `RbacAuthorization`, `` -> `Core`: upstream's operation id
/// spelling of a group.
pub fn group_camel(group: &str) -> String {
    if group.is_empty() {
        return "Core".into();
    }
    let trimmed = group.strip_suffix(".k8s.io").unwrap_or(group);
    trimmed.split(['.', '-']).map(title).collect()
}

/// `rbac.authorization.k8s.io` -> `rbacAuthorization`, `` -> `core`: upstream's tag spelling.
pub fn group_tag(group: &str) -> String {
    let camel = group_camel(group);
    let mut chars = camel.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => camel,
    }
}

fn title(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `/api/v1` or `/apis/apps/v1`.
pub fn group_version_prefix(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    }
}

/// What a resource's operations share.
struct Ctx<'a> {
    info: &'a ResourceInfo,
    /// `CoreV1`, `AppsV1`.
    gv_camel: String,
    tag: String,
    gvk: (String, String, String),
    object: String,
    list: Option<String>,
}

impl Ctx<'_> {
    fn op(
        &self,
        method: &'static str,
        verb: &str,
        rest: &str,
        description: String,
        action: &'static str,
    ) -> Operation {
        Operation {
            method,
            id: format!("{verb}{}{rest}", self.gv_camel),
            description,
            tag: self.tag.clone(),
            action: Some(action),
            gvk: Some(self.gvk.clone()),
            params: Vec::new(),
            body: None,
            responses: Vec::new(),
            produces: Produces::Object,
        }
    }

    fn namespaced(&self) -> &'static str {
        if self.info.namespaced {
            "Namespaced"
        } else {
            ""
        }
    }
}

fn object_responses(ty: &str, created: bool, accepted: bool) -> Vec<(u16, &'static str, Payload)> {
    let mut out = vec![(200, "OK", Payload::Ref(ty.to_string()))];
    if created {
        out.push((201, "Created", Payload::Ref(ty.to_string())));
    }
    if accepted {
        out.push((202, "Accepted", Payload::Ref(ty.to_string())));
    }
    out
}

/// Deleting a pod or a service answers with the object (upstream's `ReturnDeletedObject`);
/// everything else with a Status.
fn delete_answer(info: &ResourceInfo, object: &str) -> String {
    if info.group.is_empty() && matches!(info.resource, "pods" | "services") {
        object.to_string()
    } else {
        STATUS.to_string()
    }
}

/// Every path of one served group version, in upstream's order-independent form.
pub fn group_version_paths(group: &str, version: &str) -> Vec<PathItem> {
    let mut items = vec![resource_list_path(group, version)];
    for info in resources::in_group_version(group, version) {
        items.extend(resource_paths(info));
    }
    items
}

fn resource_list_path(group: &str, version: &str) -> PathItem {
    let gv_camel = format!("{}{}", group_camel(group), title(version));
    PathItem {
        path: format!("{}/", group_version_prefix(group, version)),
        params: Vec::new(),
        operations: vec![Operation {
            method: "get",
            id: format!("get{gv_camel}APIResources"),
            description: "get available resources".into(),
            tag: format!("{}_{version}", group_tag(group)),
            action: None,
            gvk: None,
            params: Vec::new(),
            body: None,
            responses: vec![(200, "OK", Payload::Ref(API_RESOURCE_LIST.into()))],
            produces: Produces::Object,
        }],
    }
}

/// `/api/`, `/apis/` and `/apis/<group>/`.
pub fn discovery_path(document: &str) -> Option<PathItem> {
    let (path, id, tag, answer) = match document {
        "api" => (
            "/api/".to_string(),
            "getCoreAPIVersions".to_string(),
            "core".to_string(),
            API_VERSIONS,
        ),
        "apis" => (
            "/apis/".to_string(),
            "getAPIVersions".to_string(),
            "apis".to_string(),
            API_GROUP_LIST,
        ),
        other => {
            let group = other.strip_prefix("apis/")?;
            resources::GROUPS.iter().find(|(g, _)| *g == group)?;
            (
                format!("/apis/{group}/"),
                format!("get{}APIGroup", group_camel(group)),
                group_tag(group),
                API_GROUP,
            )
        }
    };
    Some(PathItem {
        path,
        params: Vec::new(),
        operations: vec![Operation {
            method: "get",
            id,
            description: if matches!(document, "api" | "apis") {
                "get available API versions".into()
            } else {
                "get information of a group".into()
            },
            tag,
            action: None,
            gvk: None,
            params: Vec::new(),
            body: None,
            responses: vec![(200, "OK", Payload::Ref(answer.into()))],
            produces: Produces::Object,
        }],
    })
}

fn resource_paths(info: &ResourceInfo) -> Vec<PathItem> {
    let Some(object) = kind_type_name(info.group, info.version, info.kind) else {
        return Vec::new();
    };
    let ctx = Ctx {
        info,
        gv_camel: format!("{}{}", group_camel(info.group), title(info.version)),
        tag: format!("{}_{}", group_tag(info.group), info.version),
        gvk: (
            info.group.to_string(),
            info.version.to_string(),
            info.kind.to_string(),
        ),
        object: object.to_string(),
        list: list_type_name(info.group, info.version, info.kind),
    };
    let prefix = group_version_prefix(info.group, info.version);
    let ns_segment = if info.namespaced {
        "/namespaces/{namespace}"
    } else {
        ""
    };
    let collection = format!("{prefix}{ns_segment}/{}", info.resource);
    let item = format!("{collection}/{{name}}");
    let kind = info.kind;
    let ns = ctx.namespaced();

    let mut scope_params = Vec::new();
    if info.namespaced {
        scope_params.push(namespace_param());
    }
    scope_params.push(pretty());

    let mut out = Vec::new();

    // The collection: list, create, deletecollection.
    let mut ops = Vec::new();
    if info.allows("list")
        && let Some(list) = &ctx.list
    {
        let mut op = ctx.op(
            "get",
            "list",
            &format!("{ns}{kind}"),
            format!("list or watch objects of kind {kind}"),
            "list",
        );
        op.params = list_params();
        op.responses = vec![(200, "OK", Payload::Ref(list.clone()))];
        op.produces = Produces::List;
        ops.push(op);
    }
    if info.allows("create") {
        let mut op = ctx.op(
            "post",
            "create",
            &format!("{ns}{kind}"),
            format!("create {} {kind}", article(kind)),
            "post",
        );
        op.params = write_params(false);
        op.body = Some((ctx.object.clone(), &["*/*"]));
        op.responses = object_responses(&ctx.object, true, true);
        ops.push(op);
    }
    if info.allows("deletecollection") {
        let mut op = ctx.op(
            "delete",
            "deleteCollection",
            &format!("{ns}{kind}"),
            format!("delete collection of {kind}"),
            "deletecollection",
        );
        op.params = delete_params();
        op.params.extend(
            list_params()
                .into_iter()
                .filter(|p| !matches!(p.name, "watch" | "allowWatchBookmarks")),
        );
        op.body = Some((DELETE_OPTIONS.into(), &["*/*"]));
        op.responses = vec![(200, "OK", Payload::Ref(STATUS.into()))];
        ops.push(op);
    }
    if !ops.is_empty() {
        out.push(PathItem {
            path: collection.clone(),
            params: scope_params.clone(),
            operations: ops,
        });
    }

    // The object: read, replace, patch, delete.
    let mut item_params = vec![name_param(kind)];
    item_params.extend(scope_params.iter().cloned());
    let mut ops = Vec::new();
    if info.allows("get") {
        let mut op = ctx.op(
            "get",
            "read",
            &format!("{ns}{kind}"),
            format!("read the specified {kind}"),
            "get",
        );
        op.responses = object_responses(&ctx.object, false, false);
        ops.push(op);
    }
    if info.allows("update") {
        let mut op = ctx.op(
            "put",
            "replace",
            &format!("{ns}{kind}"),
            format!("replace the specified {kind}"),
            "put",
        );
        op.params = write_params(false);
        op.body = Some((ctx.object.clone(), &["*/*"]));
        op.responses = object_responses(&ctx.object, true, false);
        ops.push(op);
    }
    if info.allows("patch") {
        let mut op = ctx.op(
            "patch",
            "patch",
            &format!("{ns}{kind}"),
            format!("partially update the specified {kind}"),
            "patch",
        );
        op.params = write_params(true);
        op.body = Some((PATCH.into(), PATCH_MEDIA_TYPES));
        op.responses = object_responses(&ctx.object, true, false);
        ops.push(op);
    }
    if info.allows("delete") {
        let answer = delete_answer(info, &ctx.object);
        let mut op = ctx.op(
            "delete",
            "delete",
            &format!("{ns}{kind}"),
            format!("delete {} {kind}", article(kind)),
            "delete",
        );
        op.params = delete_params();
        op.body = Some((DELETE_OPTIONS.into(), &["*/*"]));
        op.responses = vec![
            (200, "OK", Payload::Ref(answer.clone())),
            (202, "Accepted", Payload::Ref(answer)),
        ];
        ops.push(op);
    }
    if !ops.is_empty() {
        out.push(PathItem {
            path: item.clone(),
            params: item_params.clone(),
            operations: ops,
        });
    }

    for sub in info.subresources {
        out.extend(subresource_paths(&ctx, sub, &item, &item_params));
    }

    // Watches and the all-namespaces list.
    if info.allows("watch") {
        let watch_prefix = format!("{prefix}/watch{ns_segment}/{}", info.resource);
        let mut params = list_params();
        params.extend(scope_params.iter().cloned());
        let mut op = ctx.op(
            "get",
            "watch",
            &format!("{ns}{kind}List"),
            format!(
                "watch individual changes to a list of {kind}. deprecated: use the 'watch' parameter with a list operation instead."
            ),
            "watchlist",
        );
        op.responses = vec![(200, "OK", Payload::Ref(WATCH_EVENT.into()))];
        op.produces = Produces::Watch;
        out.push(PathItem {
            path: watch_prefix.clone(),
            params: sorted(params.clone()),
            operations: vec![op],
        });
        let mut op = ctx.op(
            "get",
            "watch",
            &format!("{ns}{kind}"),
            format!(
                "watch changes to an object of kind {kind}. deprecated: use the 'watch' parameter with a list operation instead, filtered with the 'fieldSelector' parameter."
            ),
            "watch",
        );
        op.responses = vec![(200, "OK", Payload::Ref(WATCH_EVENT.into()))];
        op.produces = Produces::Watch;
        params.push(name_param(kind));
        out.push(PathItem {
            path: format!("{watch_prefix}/{{name}}"),
            params: sorted(params),
            operations: vec![op],
        });
    }
    if info.namespaced
        && info.allows("list")
        && let Some(list) = &ctx.list
    {
        let mut params = list_params();
        params.push(pretty());
        let mut op = ctx.op(
            "get",
            "list",
            &format!("{kind}ForAllNamespaces"),
            format!("list or watch objects of kind {kind}"),
            "list",
        );
        op.responses = vec![(200, "OK", Payload::Ref(list.clone()))];
        op.produces = Produces::List;
        out.push(PathItem {
            path: format!("{prefix}/{}", info.resource),
            params: sorted(params.clone()),
            operations: vec![op],
        });
        if info.allows("watch") {
            let mut op = ctx.op(
                    "get",
                    "watch",
                    &format!("{kind}ListForAllNamespaces"),
                    format!(
                        "watch individual changes to a list of {kind}. deprecated: use the 'watch' parameter with a list operation instead."
                    ),
                    "watchlist",
                );
            op.responses = vec![(200, "OK", Payload::Ref(WATCH_EVENT.into()))];
            op.produces = Produces::Watch;
            out.push(PathItem {
                path: format!("{prefix}/watch/{}", info.resource),
                params: sorted(params),
                operations: vec![op],
            });
        }
    }
    out
}

fn sorted(mut params: Vec<Param>) -> Vec<Param> {
    params.sort_by(|a, b| a.name.cmp(b.name));
    params
}

fn article(kind: &str) -> &'static str {
    match kind.chars().next() {
        Some('A' | 'E' | 'I' | 'O' | 'U') => "an",
        _ => "a",
    }
}

/// Subresources reached by `connect` (streams and proxies), with their HTTP methods per verb.
fn is_connect(name: &str) -> bool {
    matches!(name, "exec" | "attach" | "portforward" | "proxy")
}

fn connect_params(sub: &str, kind: &str) -> Vec<Param> {
    use ParamType::*;
    match sub {
        "exec" => vec![
            query(
                "command",
                String,
                "Command is the remote command to execute. argv array. Not executed within a shell.",
            ),
            query(
                "container",
                String,
                "Container in which to execute the command. Defaults to only container if there is only one container in the pod.",
            ),
            query(
                "stderr",
                Boolean,
                "Redirect the standard error stream of the pod for this call.",
            ),
            query(
                "stdin",
                Boolean,
                "Redirect the standard input stream of the pod for this call. Defaults to false.",
            ),
            query(
                "stdout",
                Boolean,
                "Redirect the standard output stream of the pod for this call.",
            ),
            query(
                "tty",
                Boolean,
                "TTY if true indicates that a tty will be allocated for the exec call. Defaults to false.",
            ),
        ],
        "attach" => vec![
            query(
                "container",
                String,
                "The container in which to execute the command. Defaults to only container if there is only one container in the pod.",
            ),
            query(
                "stderr",
                Boolean,
                "Stderr if true indicates that stderr is to be redirected for the attach call. Defaults to true.",
            ),
            query(
                "stdin",
                Boolean,
                "Stdin if true, redirects the standard input stream of the pod for this call. Defaults to false.",
            ),
            query(
                "stdout",
                Boolean,
                "Stdout if true indicates that stdout is to be redirected for the attach call. Defaults to true.",
            ),
            query(
                "tty",
                Boolean,
                "TTY if true indicates that a tty will be allocated for the attach call. This is passed through the container runtime so the tty is allocated on the worker node by the container runtime. Defaults to false.",
            ),
        ],
        "portforward" => vec![query(
            "ports",
            Integer,
            "List of ports to forward Required when using WebSockets",
        )],
        "proxy" => vec![query(
            "path",
            String,
            &format!(
                "Path is the URL path to use for the current proxy request to {}.",
                kind.to_lowercase()
            ),
        )],
        _ => Vec::new(),
    }
}

fn log_params() -> Vec<Param> {
    use ParamType::*;
    vec![
        query(
            "container",
            String,
            "The container for which to stream logs. Defaults to only container if there is one container in the pod.",
        ),
        query(
            "follow",
            Boolean,
            "Follow the log stream of the pod. Defaults to false.",
        ),
        query(
            "insecureSkipTLSVerifyBackend",
            Boolean,
            "insecureSkipTLSVerifyBackend indicates that the apiserver should not confirm the validity of the serving certificate of the backend it is connecting to.  This will make the HTTPS connection between the apiserver and the backend insecure. This means the apiserver cannot verify the log data it is receiving came from the real kubelet.  If the kubelet is configured to verify the apiserver's TLS credentials, it does not mean the connection to the real kubelet is vulnerable to a man in the middle attack (e.g. an attacker could not intercept the actual log data coming from the real kubelet).",
        ),
        query(
            "limitBytes",
            Integer,
            "If set, the number of bytes to read from the server before terminating the log output. This may not display a complete final line of logging, and may return slightly more or slightly less than the specified limit.",
        ),
        query(
            "previous",
            Boolean,
            "Return previous terminated container logs. Defaults to false.",
        ),
        query(
            "sinceSeconds",
            Integer,
            "A relative time in seconds before the current time from which to show logs. If this value precedes the time a pod was started, only logs since the pod start will be returned. If this value is in the future, no logs will be returned. Only one of sinceSeconds or sinceTime may be specified.",
        ),
        query(
            "stream",
            String,
            "Specify which container log stream to return to the client. Acceptable values are \"All\", \"Stdout\" and \"Stderr\". If not specified, \"All\" is used, and both stdout and stderr are returned interleaved. Note that when \"TailLines\" is specified, \"Stream\" can only be set to nil or \"All\".",
        ),
        query(
            "tailLines",
            Integer,
            "If set, the number of lines from the end of the logs to show. If not specified, logs are shown from the creation of the container or sinceSeconds or sinceTime. Note that when \"TailLines\" is specified, \"Stream\" can only be set to nil or \"All\".",
        ),
        query(
            "timestamps",
            Boolean,
            "If true, add an RFC3339 or RFC3339Nano timestamp at the beginning of every line of log output. Defaults to false.",
        ),
    ]
}

fn subresource_paths(
    ctx: &Ctx<'_>,
    sub: &Subresource,
    item: &str,
    item_params: &[Param],
) -> Vec<PathItem> {
    let kind = ctx.info.kind;
    let ns = ctx.namespaced();
    let sub_title = title(sub.name);
    let path = format!("{item}/{}", sub.name);
    let mut sub_gvk = ctx.gvk.clone();
    let mut sub_object = ctx.object.clone();
    if !sub.kind.is_empty() {
        let (g, v) = if sub.group.is_empty() && sub.version.is_empty() {
            (ctx.info.group, ctx.info.version)
        } else {
            (sub.group, sub.version)
        };
        sub_gvk = (g.to_string(), v.to_string(), sub.kind.to_string());
        if let Some(t) = kind_type_name(g, v, sub.kind) {
            sub_object = t.to_string();
        }
    }

    if is_connect(sub.name) {
        let mut items = Vec::new();
        let methods: Vec<(&'static str, &'static str)> = sub
            .verbs
            .iter()
            .filter_map(|v| match *v {
                "delete" => Some(("delete", "Delete")),
                "get" => Some(("get", "Get")),
                "patch" => Some(("patch", "Patch")),
                "create" => Some(("post", "Post")),
                "update" => Some(("put", "Put")),
                _ => None,
            })
            .collect();
        let make_ops = |suffix: &str| -> Vec<Operation> {
            methods
                .iter()
                .map(|(method, upper)| {
                    let mut op = ctx.op(
                        method,
                        "connect",
                        &format!("{upper}{ns}{kind}{sub_title}{suffix}"),
                        format!(
                            "connect {} requests to {} of {kind}",
                            upper.to_uppercase(),
                            sub.name
                        ),
                        "connect",
                    );
                    op.gvk = Some(sub_gvk.clone());
                    op.responses = vec![(200, "OK", Payload::Text)];
                    op.produces = Produces::Any;
                    op
                })
                .collect()
        };
        let mut params = vec![name_param(&sub_gvk.2)];
        params.extend(
            item_params
                .iter()
                .filter(|p| p.name == "namespace")
                .cloned(),
        );
        params.extend(connect_params(sub.name, kind));
        if sub.name == "proxy" {
            items.push(PathItem {
                path: path.clone(),
                params: sorted(params.clone()),
                operations: make_ops(""),
            });
            let mut with_path: Vec<Param> =
                params.into_iter().filter(|p| p.name != "path").collect();
            with_path.push(param(
                "path",
                In::Path,
                ParamType::String,
                "path to the resource",
            ));
            items.push(PathItem {
                path: format!("{path}/{{path}}"),
                params: sorted(with_path),
                operations: make_ops("WithPath"),
            });
        } else {
            items.push(PathItem {
                path,
                params: sorted(params),
                operations: make_ops(""),
            });
        }
        return items;
    }

    let mut ops = Vec::new();
    let what = format!("{} of", sub.name);
    if sub.name == "log" {
        let mut op = ctx.op(
            "get",
            "read",
            &format!("{ns}{kind}Log"),
            format!("read log of the specified {kind}"),
            "get",
        );
        op.params = log_params();
        op.responses = vec![(200, "OK", Payload::Text)];
        op.produces = Produces::Log;
        ops.push(op);
    }
    if sub.name != "log" && sub.verbs.contains(&"get") {
        let mut op = ctx.op(
            "get",
            "read",
            &format!("{ns}{kind}{sub_title}"),
            format!("read {} the specified {kind}", what),
            "get",
        );
        op.gvk = Some(sub_gvk.clone());
        op.responses = object_responses(&sub_object, false, false);
        ops.push(op);
    }
    if sub.verbs.contains(&"create") {
        let mut op = ctx.op(
            "post",
            "create",
            &format!("{ns}{kind}{sub_title}"),
            format!("create {} {} {kind}", what, article(kind)),
            "post",
        );
        op.gvk = Some(sub_gvk.clone());
        op.params = write_params(false);
        op.body = Some((sub_object.clone(), &["*/*"]));
        op.responses = object_responses(&sub_object, true, true);
        ops.push(op);
    }
    if sub.verbs.contains(&"update") {
        let mut op = ctx.op(
            "put",
            "replace",
            &format!("{ns}{kind}{sub_title}"),
            format!("replace {} the specified {kind}", what),
            "put",
        );
        op.gvk = Some(sub_gvk.clone());
        op.params = write_params(false);
        op.body = Some((sub_object.clone(), &["*/*"]));
        op.responses = object_responses(&sub_object, true, false);
        ops.push(op);
    }
    if sub.verbs.contains(&"patch") {
        let mut op = ctx.op(
            "patch",
            "patch",
            &format!("{ns}{kind}{sub_title}"),
            format!("partially update {} the specified {kind}", what),
            "patch",
        );
        op.gvk = Some(sub_gvk.clone());
        op.params = write_params(true);
        op.body = Some((PATCH.into(), PATCH_MEDIA_TYPES));
        op.responses = object_responses(&sub_object, true, false);
        ops.push(op);
    }
    let mut params = vec![param(
        "name",
        In::Path,
        ParamType::String,
        &format!("name of the {}", sub_gvk.2),
    )];
    params.extend(item_params.iter().filter(|p| p.name != "name").cloned());
    vec![PathItem {
        path,
        params,
        operations: ops,
    }]
}
