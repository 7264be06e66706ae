//! The kinds registry: every built-in resource the API server serves, at its upstream
//! group/version, scope, short names, categories, verbs, subresources and storage layout.
//! Discovery, routing, RBAC and printing all read from this one table.

/// Verbs of a normal read-write collection.
pub const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
const NO_DELETECOLLECTION: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];
const CREATE_ONLY: &[&str] = &["create"];
const GET_LIST: &[&str] = &["get", "list"];

/// A subresource such as `pods/status` or `deployments/scale`.
#[derive(Debug, PartialEq, Eq)]
pub struct Subresource {
    pub name: &'static str,
    pub verbs: &'static [&'static str],
    /// The group/version/kind of the subresource's own object when it differs from the parent
    /// (`scale` is `autoscaling/v1 Scale`, `eviction` is `policy/v1 Eviction`).
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
}

const fn sub(
    name: &'static str,
    verbs: &'static [&'static str],
    kind: &'static str,
) -> Subresource {
    Subresource {
        name,
        verbs,
        group: "",
        version: "",
        kind,
    }
}

const STATUS_VERBS: &[&str] = &["get", "patch", "update"];
const STATUS: Subresource = sub("status", STATUS_VERBS, "");
const SCALE: Subresource = Subresource {
    name: "scale",
    verbs: STATUS_VERBS,
    group: "autoscaling",
    version: "v1",
    kind: "Scale",
};

/// One resource served at one group/version.
#[derive(Debug, PartialEq, Eq)]
pub struct ResourceInfo {
    pub group: &'static str,
    pub version: &'static str,
    /// Lowercase plural, as in URLs: `pods`.
    pub resource: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub verbs: &'static [&'static str],
    pub subresources: &'static [Subresource],
    /// The etcd-style key prefix objects live under, with a trailing slash
    /// (`/registry/pods/`); upstream's historical names are kept (`minions`, `controllers`).
    pub storage_prefix: &'static str,
    /// The group/version objects are stored in; resources sharing a prefix share it.
    pub storage_version: (&'static str, &'static str),
    /// Stored objects expire this many seconds after their last write (events: one hour).
    pub ttl_seconds: u64,
    /// Whether `metadata.generation` tracks spec changes.
    pub tracks_generation: bool,
}

impl ResourceInfo {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn has_subresource(&self, name: &str) -> bool {
        self.subresources.iter().any(|s| s.name == name)
    }

    pub fn subresource(&self, name: &str) -> Option<&'static Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }

    pub fn has_status(&self) -> bool {
        self.has_subresource("status")
    }

    pub fn allows(&self, verb: &str) -> bool {
        self.verbs.contains(&verb)
    }

    /// Whether objects of this kind are stored (virtual resources such as reviews are not).
    pub fn is_stored(&self) -> bool {
        !self.storage_prefix.is_empty()
    }

    /// The store key of an object: `/registry/pods/default/nginx`, `/registry/minions/node1`.
    pub fn key(&self, namespace: &str, name: &str) -> String {
        if self.namespaced {
            format!("{}{}/{}", self.storage_prefix, namespace, name)
        } else {
            format!("{}{}", self.storage_prefix, name)
        }
    }

    /// The key prefix of a collection: all namespaces when `namespace` is empty.
    pub fn collection_prefix(&self, namespace: &str) -> String {
        if self.namespaced && !namespace.is_empty() {
            format!("{}{}/", self.storage_prefix, namespace)
        } else {
            self.storage_prefix.to_string()
        }
    }

    /// `pods`, `deployments.apps`.
    pub fn group_resource(&self) -> String {
        crate::error::qualified(self.group, self.resource)
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }
}

macro_rules! res {
    ($group:expr, $version:expr, $resource:expr, $singular:expr, $kind:expr, ns: $ns:expr,
     short: $short:expr, cat: $cat:expr, verbs: $verbs:expr, subs: $subs:expr,
     prefix: $prefix:expr, stored_as: $sv:expr, gen: $gen:expr) => {
        ResourceInfo {
            group: $group,
            version: $version,
            resource: $resource,
            singular: $singular,
            kind: $kind,
            namespaced: $ns,
            short_names: $short,
            categories: $cat,
            verbs: $verbs,
            subresources: $subs,
            storage_prefix: $prefix,
            storage_version: $sv,
            ttl_seconds: 0,
            tracks_generation: $gen,
        }
    };
}

const ALL: &[&str] = &["all"];
const NONE: &[&str] = &[];
const CORE: (&str, &str) = ("", "v1");
const APPS: (&str, &str) = ("apps", "v1");
const BATCH: (&str, &str) = ("batch", "v1");

const POD_SUBS: &[Subresource] = &[
    sub("attach", &["create", "get"], "PodAttachOptions"),
    sub("binding", CREATE_ONLY, "Binding"),
    sub("ephemeralcontainers", STATUS_VERBS, "Pod"),
    Subresource {
        name: "eviction",
        verbs: CREATE_ONLY,
        group: "policy",
        version: "v1",
        kind: "Eviction",
    },
    sub("exec", &["create", "get"], "PodExecOptions"),
    sub("log", &["get"], "Pod"),
    sub("portforward", &["create", "get"], "PodPortForwardOptions"),
    sub(
        "proxy",
        &["create", "delete", "get", "patch", "update"],
        "PodProxyOptions",
    ),
    sub("resize", STATUS_VERBS, "Pod"),
    STATUS,
];

/// Every served resource. Order is discovery order within a group/version.
pub static RESOURCES: &[ResourceInfo] = &[
    // core/v1
    res!("", "v1", "bindings", "binding", "Binding", ns: true, short: NONE, cat: NONE,
         verbs: CREATE_ONLY, subs: &[], prefix: "", stored_as: CORE, gen: false),
    res!("", "v1", "componentstatuses", "componentstatus", "ComponentStatus", ns: false,
         short: &["cs"], cat: NONE, verbs: GET_LIST, subs: &[], prefix: "", stored_as: CORE, gen: false),
    res!("", "v1", "configmaps", "configmap", "ConfigMap", ns: true, short: &["cm"], cat: NONE,
         verbs: ALL_VERBS, subs: &[], prefix: "/registry/configmaps/", stored_as: CORE, gen: false),
    res!("", "v1", "endpoints", "endpoints", "Endpoints", ns: true, short: &["ep"], cat: NONE,
         verbs: ALL_VERBS, subs: &[], prefix: "/registry/services/endpoints/", stored_as: CORE, gen: false),
    ResourceInfo {
        ttl_seconds: 3600,
        ..res!("", "v1", "events", "event", "Event", ns: true, short: &["ev"], cat: NONE,
               verbs: ALL_VERBS, subs: &[], prefix: "/registry/events/", stored_as: CORE, gen: false)
    },
    res!("", "v1", "limitranges", "limitrange", "LimitRange", ns: true, short: &["limits"], cat: NONE,
         verbs: ALL_VERBS, subs: &[], prefix: "/registry/limitranges/", stored_as: CORE, gen: false),
    res!("", "v1", "namespaces", "namespace", "Namespace", ns: false, short: &["ns"], cat: NONE,
         verbs: NO_DELETECOLLECTION,
         subs: &[sub("finalize", &["update"], "Namespace"), STATUS],
         prefix: "/registry/namespaces/", stored_as: CORE, gen: false),
    res!("", "v1", "nodes", "node", "Node", ns: false, short: &["no"], cat: NONE,
         verbs: ALL_VERBS,
         subs: &[sub("proxy", &["create", "delete", "get", "patch", "update"], "NodeProxyOptions"), STATUS],
         prefix: "/registry/minions/", stored_as: CORE, gen: false),
    res!("", "v1", "persistentvolumeclaims", "persistentvolumeclaim", "PersistentVolumeClaim", ns: true,
         short: &["pvc"], cat: NONE, verbs: ALL_VERBS, subs: &[STATUS],
         prefix: "/registry/persistentvolumeclaims/", stored_as: CORE, gen: false),
    res!("", "v1", "persistentvolumes", "persistentvolume", "PersistentVolume", ns: false,
         short: &["pv"], cat: NONE, verbs: ALL_VERBS, subs: &[STATUS],
         prefix: "/registry/persistentvolumes/", stored_as: CORE, gen: false),
    res!("", "v1", "pods", "pod", "Pod", ns: true, short: &["po"], cat: ALL, verbs: ALL_VERBS,
         subs: POD_SUBS, prefix: "/registry/pods/", stored_as: CORE, gen: true),
    res!("", "v1", "podtemplates", "podtemplate", "PodTemplate", ns: true, short: NONE, cat: NONE,
         verbs: ALL_VERBS, subs: &[], prefix: "/registry/podtemplates/", stored_as: CORE, gen: false),
    res!("", "v1", "replicationcontrollers", "replicationcontroller", "ReplicationController", ns: true,
         short: &["rc"], cat: ALL, verbs: ALL_VERBS, subs: &[SCALE, STATUS],
         prefix: "/registry/controllers/", stored_as: CORE, gen: true),
    res!("", "v1", "resourcequotas", "resourcequota", "ResourceQuota", ns: true, short: &["quota"],
         cat: NONE, verbs: ALL_VERBS, subs: &[STATUS], prefix: "/registry/resourcequotas/",
         stored_as: CORE, gen: false),
    res!("", "v1", "secrets", "secret", "Secret", ns: true, short: NONE, cat: NONE, verbs: ALL_VERBS,
         subs: &[], prefix: "/registry/secrets/", stored_as: CORE, gen: false),
    res!("", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", ns: true, short: &["sa"],
         cat: NONE, verbs: ALL_VERBS,
         subs: &[Subresource { name: "token", verbs: CREATE_ONLY, group: "authentication.k8s.io",
                               version: "v1", kind: "TokenRequest" }],
         prefix: "/registry/serviceaccounts/", stored_as: CORE, gen: false),
    res!("", "v1", "services", "service", "Service", ns: true, short: &["svc"], cat: ALL,
         verbs: ALL_VERBS,
         subs: &[sub("proxy", &["create", "delete", "get", "patch", "update"], "ServiceProxyOptions"), STATUS],
         prefix: "/registry/services/specs/", stored_as: CORE, gen: false),
    // apps/v1
    res!("apps", "v1", "controllerrevisions", "controllerrevision", "ControllerRevision", ns: true,
         short: NONE, cat: NONE, verbs: ALL_VERBS, subs: &[],
         prefix: "/registry/controllerrevisions/", stored_as: APPS, gen: false),
    res!("apps", "v1", "daemonsets", "daemonset", "DaemonSet", ns: true, short: &["ds"], cat: ALL,
         verbs: ALL_VERBS, subs: &[STATUS], prefix: "/registry/daemonsets/", stored_as: APPS, gen: true),
    res!("apps", "v1", "deployments", "deployment", "Deployment", ns: true, short: &["deploy"],
         cat: ALL, verbs: ALL_VERBS, subs: &[SCALE, STATUS], prefix: "/registry/deployments/",
         stored_as: APPS, gen: true),
    res!("apps", "v1", "replicasets", "replicaset", "ReplicaSet", ns: true, short: &["rs"], cat: ALL,
         verbs: ALL_VERBS, subs: &[SCALE, STATUS], prefix: "/registry/replicasets/",
         stored_as: APPS, gen: true),
    res!("apps", "v1", "statefulsets", "statefulset", "StatefulSet", ns: true, short: &["sts"],
         cat: ALL, verbs: ALL_VERBS, subs: &[SCALE, STATUS], prefix: "/registry/statefulsets/",
         stored_as: APPS, gen: true),
    // authentication.k8s.io/v1, authorization.k8s.io/v1: reviews, answered not stored
    res!("authentication.k8s.io", "v1", "selfsubjectreviews", "selfsubjectreview", "SelfSubjectReview",
         ns: false, short: NONE, cat: NONE, verbs: CREATE_ONLY, subs: &[], prefix: "",
         stored_as: ("authentication.k8s.io", "v1"), gen: false),
    res!("authentication.k8s.io", "v1", "tokenreviews", "tokenreview", "TokenReview", ns: false,
         short: NONE, cat: NONE, verbs: CREATE_ONLY, subs: &[], prefix: "",
         stored_as: ("authentication.k8s.io", "v1"), gen: false),
    res!("authorization.k8s.io", "v1", "localsubjectaccessreviews", "localsubjectaccessreview",
         "LocalSubjectAccessReview", ns: true, short: NONE, cat: NONE, verbs: CREATE_ONLY, subs: &[],
         prefix: "", stored_as: ("authorization.k8s.io", "v1"), gen: false),
    res!("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "selfsubjectaccessreview",
         "SelfSubjectAccessReview", ns: false, short: NONE, cat: NONE, verbs: CREATE_ONLY, subs: &[],
         prefix: "", stored_as: ("authorization.k8s.io", "v1"), gen: false),
    res!("authorization.k8s.io", "v1", "selfsubjectrulesreviews", "selfsubjectrulesreview",
         "SelfSubjectRulesReview", ns: false, short: NONE, cat: NONE, verbs: CREATE_ONLY, subs: &[],
         prefix: "", stored_as: ("authorization.k8s.io", "v1"), gen: false),
    res!("authorization.k8s.io", "v1", "subjectaccessreviews", "subjectaccessreview",
         "SubjectAccessReview", ns: false, short: NONE, cat: NONE, verbs: CREATE_ONLY, subs: &[],
         prefix: "", stored_as: ("authorization.k8s.io", "v1"), gen: false),
    // autoscaling: v2 preferred and the storage version, v1 served by conversion
    res!("autoscaling", "v2", "horizontalpodautoscalers", "horizontalpodautoscaler",
         "HorizontalPodAutoscaler", ns: true, short: &["hpa"], cat: ALL, verbs: ALL_VERBS,
         subs: &[STATUS], prefix: "/registry/horizontalpodautoscalers/",
         stored_as: ("autoscaling", "v2"), gen: true),
    res!("autoscaling", "v1", "horizontalpodautoscalers", "horizontalpodautoscaler",
         "HorizontalPodAutoscaler", ns: true, short: &["hpa"], cat: ALL, verbs: ALL_VERBS,
         subs: &[STATUS], prefix: "/registry/horizontalpodautoscalers/",
         stored_as: ("autoscaling", "v2"), gen: true),
    // batch/v1
    res!("batch", "v1", "cronjobs", "cronjob", "CronJob", ns: true, short: &["cj"], cat: ALL,
         verbs: ALL_VERBS, subs: &[STATUS], prefix: "/registry/cronjobs/", stored_as: BATCH, gen: true),
    res!("batch", "v1", "jobs", "job", "Job", ns: true, short: NONE, cat: ALL, verbs: ALL_VERBS,
         subs: &[STATUS], prefix: "/registry/jobs/", stored_as: BATCH, gen: true),
    // certificates.k8s.io/v1
    res!("certificates.k8s.io", "v1", "certificatesigningrequests", "certificatesigningrequest",
         "CertificateSigningRequest", ns: false, short: &["csr"], cat: NONE, verbs: ALL_VERBS,
         subs: &[sub("approval", STATUS_VERBS, ""), STATUS],
         prefix: "/registry/certificatesigningrequests/", stored_as: ("certificates.k8s.io", "v1"),
         gen: true),
    // coordination.k8s.io/v1
    res!("coordination.k8s.io", "v1", "leases", "lease", "Lease", ns: true, short: NONE, cat: NONE,
         verbs: ALL_VERBS, subs: &[], prefix: "/registry/leases/",
         stored_as: ("coordination.k8s.io", "v1"), gen: false),
    // discovery.k8s.io/v1
    res!("discovery.k8s.io", "v1", "endpointslices", "endpointslice", "EndpointSlice", ns: true,
         short: NONE, cat: NONE, verbs: ALL_VERBS, subs: &[], prefix: "/registry/endpointslices/",
         stored_as: ("discovery.k8s.io", "v1"), gen: false),
    // events.k8s.io/v1: the same objects as core v1 events, another shape
    ResourceInfo {
        ttl_seconds: 3600,
        ..res!("events.k8s.io", "v1", "events", "event", "Event", ns: true, short: &["ev"], cat: NONE,
               verbs: ALL_VERBS, subs: &[], prefix: "/registry/events/", stored_as: CORE, gen: false)
    },
    // networking.k8s.io/v1
    res!("networking.k8s.io", "v1", "ingressclasses", "ingressclass", "IngressClass", ns: false,
         short: NONE, cat: NONE, verbs: ALL_VERBS, subs: &[], prefix: "/registry/ingressclasses/",
         stored_as: ("networking.k8s.io", "v1"), gen: true),
    res!("networking.k8s.io", "v1", "ingresses", "ingress", "Ingress", ns: true, short: &["ing"],
         cat: NONE, verbs: ALL_VERBS, subs: &[STATUS], prefix: "/registry/ingress/",
         stored_as: ("networking.k8s.io", "v1"), gen: true),
    res!("networking.k8s.io", "v1", "networkpolicies", "networkpolicy", "NetworkPolicy", ns: true,
         short: &["netpol"], cat: NONE, verbs: ALL_VERBS, subs: &[],
         prefix: "/registry/networkpolicies/", stored_as: ("networking.k8s.io", "v1"), gen: true),
    // policy/v1
    res!("policy", "v1", "poddisruptionbudgets", "poddisruptionbudget", "PodDisruptionBudget",
         ns: true, short: &["pdb"], cat: NONE, verbs: ALL_VERBS, subs: &[STATUS],
         prefix: "/registry/poddisruptionbudgets/", stored_as: ("policy", "v1"), gen: true),
    // rbac.authorization.k8s.io/v1
    res!("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "clusterrolebinding",
         "ClusterRoleBinding", ns: false, short: NONE, cat: NONE, verbs: ALL_VERBS, subs: &[],
         prefix: "/registry/clusterrolebindings/", stored_as: ("rbac.authorization.k8s.io", "v1"),
         gen: false),
    res!("rbac.authorization.k8s.io", "v1", "clusterroles", "clusterrole", "ClusterRole", ns: false,
         short: NONE, cat: NONE, verbs: ALL_VERBS, subs: &[], prefix: "/registry/clusterroles/",
         stored_as: ("rbac.authorization.k8s.io", "v1"), gen: false),
    res!("rbac.authorization.k8s.io", "v1", "rolebindings", "rolebinding", "RoleBinding", ns: true,
         short: NONE, cat: NONE, verbs: ALL_VERBS, subs: &[], prefix: "/registry/rolebindings/",
         stored_as: ("rbac.authorization.k8s.io", "v1"), gen: false),
    res!("rbac.authorization.k8s.io", "v1", "roles", "role", "Role", ns: true, short: NONE, cat: NONE,
         verbs: ALL_VERBS, subs: &[], prefix: "/registry/roles/",
         stored_as: ("rbac.authorization.k8s.io", "v1"), gen: false),
    // scheduling.k8s.io/v1
    res!("scheduling.k8s.io", "v1", "priorityclasses", "priorityclass", "PriorityClass", ns: false,
         short: &["pc"], cat: NONE, verbs: ALL_VERBS, subs: &[], prefix: "/registry/priorityclasses/",
         stored_as: ("scheduling.k8s.io", "v1"), gen: false),
    // storage.k8s.io/v1
    res!("storage.k8s.io", "v1", "storageclasses", "storageclass", "StorageClass", ns: false,
         short: &["sc"], cat: NONE, verbs: ALL_VERBS, subs: &[], prefix: "/registry/storageclasses/",
         stored_as: ("storage.k8s.io", "v1"), gen: false),
];

/// The API groups in discovery order, each with its served versions, preferred first.
pub static GROUPS: &[(&str, &[&str])] = &[
    ("apps", &["v1"]),
    ("events.k8s.io", &["v1"]),
    ("authentication.k8s.io", &["v1"]),
    ("authorization.k8s.io", &["v1"]),
    ("autoscaling", &["v2", "v1"]),
    ("batch", &["v1"]),
    ("certificates.k8s.io", &["v1"]),
    ("networking.k8s.io", &["v1"]),
    ("policy", &["v1"]),
    ("rbac.authorization.k8s.io", &["v1"]),
    ("storage.k8s.io", &["v1"]),
    ("scheduling.k8s.io", &["v1"]),
    ("coordination.k8s.io", &["v1"]),
    ("discovery.k8s.io", &["v1"]),
];

/// The preferred version of a group ("v1" for the core group).
pub fn preferred_version(group: &str) -> Option<&'static str> {
    if group.is_empty() {
        return Some("v1");
    }
    GROUPS.iter().find(|(g, _)| *g == group).map(|(_, v)| v[0])
}

/// The resource served at group/version under this plural name.
pub fn find(group: &str, version: &str, resource: &str) -> Option<&'static ResourceInfo> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.resource == resource)
}

/// The resource of a kind at group/version.
pub fn find_kind(group: &str, version: &str, kind: &str) -> Option<&'static ResourceInfo> {
    RESOURCES.iter().find(|r| {
        r.group == group && r.version == version && r.kind == kind && r.resource != "bindings"
    })
}

/// Resources served at one group/version, in discovery order.
pub fn in_group_version<'a>(
    group: &'a str,
    version: &'a str,
) -> impl Iterator<Item = &'static ResourceInfo> + 'a {
    RESOURCES
        .iter()
        .filter(move |r| r.group == group && r.version == version)
}

/// The resource whose objects are stored under this key, at its storage version.
pub fn for_key(key: &str) -> Option<&'static ResourceInfo> {
    RESOURCES
        .iter()
        .filter(|r| r.is_stored() && key.starts_with(r.storage_prefix))
        .filter(|r| (r.group, r.version) == r.storage_version)
        // `/registry/services/specs/` and `/registry/services/endpoints/` share a stem: longest wins.
        .max_by_key(|r| r.storage_prefix.len())
}

/// Splits `apps/v1` into ("apps", "v1") and `v1` into ("", "v1").
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stored_prefix_belongs_to_one_storage_version() {
        for r in RESOURCES.iter().filter(|r| r.is_stored()) {
            let owner = for_key(&format!("{}x", r.storage_prefix)).expect("owner");
            assert_eq!(owner.storage_prefix, r.storage_prefix);
            assert_eq!(
                (owner.group, owner.version),
                r.storage_version,
                "{}",
                r.resource
            );
        }
    }

    #[test]
    fn upstream_key_layout_is_kept() {
        let nodes = find("", "v1", "nodes").unwrap();
        assert_eq!(nodes.key("", "n1"), "/registry/minions/n1");
        let svc = find("", "v1", "services").unwrap();
        assert_eq!(
            svc.key("default", "kubernetes"),
            "/registry/services/specs/default/kubernetes"
        );
        assert_eq!(
            for_key("/registry/services/endpoints/default/k")
                .unwrap()
                .resource,
            "endpoints"
        );
    }

    #[test]
    fn the_all_category_holds_what_kubectl_get_all_shows() {
        let mut all: Vec<&str> = RESOURCES
            .iter()
            .filter(|r| {
                r.categories.contains(&"all") && Some(r.version) == preferred_version(r.group)
            })
            .map(|r| r.resource)
            .collect();
        all.sort();
        assert_eq!(
            all,
            [
                "cronjobs",
                "daemonsets",
                "deployments",
                "horizontalpodautoscalers",
                "jobs",
                "pods",
                "replicasets",
                "replicationcontrollers",
                "services",
                "statefulsets"
            ]
        );
    }
}
