"""Every kind through the official Python client: create, read, list, replace, the three patch
types, server-side apply, delete, and a watch resumed from a list's resourceVersion.

Run by tests/e2e/python_client.rs against a fresh `ferrokube server` (KUBECONFIG set). The
client deserialises every answer into its strict models, so a field of the wrong shape fails.
"""

import json
import os
import time
import unittest

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

NS = "default"
APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"


def setUpModule():
    config.load_kube_config(config_file=os.environ["KUBECONFIG"])


def meta(name, **labels):
    return {"name": name, "labels": dict(labels, suite="kinds")}


def pod_spec(image="busybox"):
    return {"containers": [{"name": "main", "image": image, "command": ["sleep", "3600"]}]}


def template(app):
    return {"metadata": {"labels": {"app": app}}, "spec": pod_spec()}


# (api class, method suffix, namespaced, model class name, apiVersion, kind, body without
#  apiVersion/kind/metadata, answer of a completed delete: "Status" or "object")
KINDS = [
    ("CoreV1Api", "config_map", True, "V1ConfigMap", "v1", "ConfigMap", {"data": {"a": "1"}}, "Status"),
    ("CoreV1Api", "secret", True, "V1Secret", "v1", "Secret", {"stringData": {"p": "s3cr3t"}, "type": "Opaque"}, "Status"),
    ("CoreV1Api", "service", True, "V1Service", "v1", "Service",
     {"spec": {"selector": {"app": "x"}, "ports": [{"port": 80, "targetPort": 8080}]}}, "object"),
    ("CoreV1Api", "pod", True, "V1Pod", "v1", "Pod", {"spec": pod_spec()}, "object"),
    ("CoreV1Api", "service_account", True, "V1ServiceAccount", "v1", "ServiceAccount", {}, "object"),
    ("CoreV1Api", "endpoints", True, "V1Endpoints", "v1", "Endpoints",
     {"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]}, "Status"),
    ("CoreV1Api", "limit_range", True, "V1LimitRange", "v1", "LimitRange",
     {"spec": {"limits": [{"type": "Container", "default": {"cpu": "500m"}}]}}, "Status"),
    ("CoreV1Api", "resource_quota", True, "V1ResourceQuota", "v1", "ResourceQuota",
     {"spec": {"hard": {"pods": "10"}}}, "object"),
    ("CoreV1Api", "persistent_volume_claim", True, "V1PersistentVolumeClaim", "v1", "PersistentVolumeClaim",
     {"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}, "object"),
    ("CoreV1Api", "persistent_volume", False, "V1PersistentVolume", "v1", "PersistentVolume",
     {"spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/tmp/pv"}}}, "object"),
    ("CoreV1Api", "replication_controller", True, "V1ReplicationController", "v1", "ReplicationController",
     {"spec": {"replicas": 1, "selector": {"app": "rc"}, "template": template("rc")}}, "Status"),
    ("CoreV1Api", "pod_template", True, "V1PodTemplate", "v1", "PodTemplate", {"template": template("pt")}, "object"),
    ("CoreV1Api", "node", False, "V1Node", "v1", "Node", {"spec": {"podCIDR": "10.244.9.0/24"}}, "Status"),
    ("CoreV1Api", "namespaced_event", True, "CoreV1Event", "v1", "Event",
     {"involvedObject": {"kind": "Pod", "name": "p", "namespace": NS}, "reason": "Tested", "message": "m", "type": "Normal"}, "Status"),
    ("AppsV1Api", "deployment", True, "V1Deployment", "apps/v1", "Deployment",
     {"spec": {"replicas": 1, "selector": {"matchLabels": {"app": "d"}}, "template": template("d")}}, "Status"),
    ("AppsV1Api", "stateful_set", True, "V1StatefulSet", "apps/v1", "StatefulSet",
     {"spec": {"serviceName": "s", "selector": {"matchLabels": {"app": "s"}}, "template": template("s")}}, "Status"),
    ("AppsV1Api", "daemon_set", True, "V1DaemonSet", "apps/v1", "DaemonSet",
     {"spec": {"selector": {"matchLabels": {"app": "ds"}}, "template": template("ds")}}, "Status"),
    ("AppsV1Api", "replica_set", True, "V1ReplicaSet", "apps/v1", "ReplicaSet",
     {"spec": {"replicas": 1, "selector": {"matchLabels": {"app": "rs"}}, "template": template("rs")}}, "Status"),
    ("BatchV1Api", "job", True, "V1Job", "batch/v1", "Job",
     {"spec": {"template": {"spec": dict(pod_spec(), restartPolicy="Never")}}}, "Status"),
    ("BatchV1Api", "cron_job", True, "V1CronJob", "batch/v1", "CronJob",
     {"spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": dict(pod_spec(), restartPolicy="OnFailure")}}}}}, "Status"),
    ("AutoscalingV2Api", "horizontal_pod_autoscaler", True, "V2HorizontalPodAutoscaler", "autoscaling/v2", "HorizontalPodAutoscaler",
     {"spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"}, "maxReplicas": 3}}, "Status"),
    ("PolicyV1Api", "pod_disruption_budget", True, "V1PodDisruptionBudget", "policy/v1", "PodDisruptionBudget",
     {"spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "d"}}}}, "Status"),
    ("NetworkingV1Api", "ingress", True, "V1Ingress", "networking.k8s.io/v1", "Ingress",
     {"spec": {"defaultBackend": {"service": {"name": "svc", "port": {"number": 80}}}}}, "Status"),
    ("NetworkingV1Api", "network_policy", True, "V1NetworkPolicy", "networking.k8s.io/v1", "NetworkPolicy",
     {"spec": {"podSelector": {"matchLabels": {"app": "d"}}, "policyTypes": ["Ingress"]}}, "Status"),
    ("NetworkingV1Api", "ingress_class", False, "V1IngressClass", "networking.k8s.io/v1", "IngressClass",
     {"spec": {"controller": "example.com/ingress"}}, "Status"),
    ("RbacAuthorizationV1Api", "role", True, "V1Role", "rbac.authorization.k8s.io/v1", "Role",
     {"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}, "Status"),
    ("RbacAuthorizationV1Api", "role_binding", True, "V1RoleBinding", "rbac.authorization.k8s.io/v1", "RoleBinding",
     {"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
      "subjects": [{"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"}]}, "Status"),
    ("RbacAuthorizationV1Api", "cluster_role", False, "V1ClusterRole", "rbac.authorization.k8s.io/v1", "ClusterRole",
     {"rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}]}, "Status"),
    ("RbacAuthorizationV1Api", "cluster_role_binding", False, "V1ClusterRoleBinding", "rbac.authorization.k8s.io/v1", "ClusterRoleBinding",
     {"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "c"},
      "subjects": [{"kind": "Group", "name": "devs", "apiGroup": "rbac.authorization.k8s.io"}]}, "Status"),
    ("SchedulingV1Api", "priority_class", False, "V1PriorityClass", "scheduling.k8s.io/v1", "PriorityClass", {"value": 100}, "Status"),
    ("StorageV1Api", "storage_class", False, "V1StorageClass", "storage.k8s.io/v1", "StorageClass",
     {"provisioner": "example.com/disk"}, "object"),
    ("CoordinationV1Api", "lease", True, "V1Lease", "coordination.k8s.io/v1", "Lease",
     {"spec": {"holderIdentity": "me", "leaseDurationSeconds": 15}}, "Status"),
    ("DiscoveryV1Api", "endpoint_slice", True, "V1EndpointSlice", "discovery.k8s.io/v1", "EndpointSlice",
     {"addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.2"]}], "ports": [{"port": 80, "name": "http", "protocol": "TCP"}]}, "Status"),
]


def method(api, verb, suffix, namespaced):
    if suffix.startswith("namespaced_"):
        suffix = suffix[len("namespaced_"):]
    scope = "namespaced_" if namespaced else ""
    return getattr(api, f"{verb}_{scope}{suffix}")


def call(api, verb, suffix, namespaced, *args, **kw):
    fn = method(api, verb, suffix, namespaced)
    if namespaced:
        if verb in ("create", "list"):
            return fn(NS, *args, **kw)
        return fn(args[0], NS, *args[1:], **kw)
    return fn(*args, **kw)


class EveryKind(unittest.TestCase):
    maxDiff = None

    def run_kind(self, api_name, suffix, namespaced, model, api_version, kind, extra, delete_answer):
        api = getattr(client, api_name)()
        model_cls = getattr(client, model)
        name = "py-" + suffix.replace("_", "-").replace("namespaced-", "")
        body = dict(extra, apiVersion=api_version, kind=kind, metadata=meta(name))

        # A list gives the resourceVersion the watch resumes from.
        rv = call(api, "list", suffix, namespaced).metadata.resource_version
        self.assertTrue(rv)

        created = call(api, "create", suffix, namespaced, body)
        self.assertIsInstance(created, model_cls, kind)
        self.assertEqual(created.metadata.name, name)
        self.assertTrue(created.metadata.uid)

        read = call(api, "read", suffix, namespaced, name)
        self.assertIsInstance(read, model_cls)
        listed = call(api, "list", suffix, namespaced, label_selector="suite=kinds")
        self.assertIn(name, [i.metadata.name for i in listed.items])

        # Controllers (quota, disruption, PV binder) write status concurrently, so a replace
        # is the usual read-modify-write loop: on 409 Conflict read again and retry.
        for _ in range(20):
            read.metadata.labels["replaced"] = "yes"
            try:
                replaced = call(api, "replace", suffix, namespaced, name, read)
                break
            except ApiException as e:
                if e.status != 409:
                    raise
                read = call(api, "read", suffix, namespaced, name)
        else:
            self.fail(f"{kind}: replace kept conflicting")
        self.assertIsInstance(replaced, model_cls)
        self.assertEqual(replaced.metadata.labels["replaced"], "yes")

        smp = call(api, "patch", suffix, namespaced, name, {"metadata": {"labels": {"patch": "smp"}}})
        self.assertEqual(smp.metadata.labels["patch"], "smp")
        merged = call(api, "patch", suffix, namespaced, name,
                      {"metadata": {"labels": {"patch": "merge"}}}, _content_type=MERGE)
        self.assertEqual(merged.metadata.labels["patch"], "merge")
        jp = call(api, "patch", suffix, namespaced, name,
                  [{"op": "replace", "path": "/metadata/labels/patch", "value": "json"}])
        self.assertEqual(jp.metadata.labels["patch"], "json")

        applied = call(api, "patch", suffix, namespaced, name,
                       {"apiVersion": api_version, "kind": kind,
                        "metadata": {"name": name, "labels": {"applied": "yes"}}},
                       field_manager="py-apply", _content_type=APPLY)
        self.assertIsInstance(applied, model_cls)
        self.assertEqual(applied.metadata.labels["applied"], "yes")
        entries = {(e.manager, e.operation) for e in applied.metadata.managed_fields}
        self.assertIn(("py-apply", "Apply"), entries, kind)

        # The client hands a delete's answer back as a plain dict.
        # Background propagation as kubectl sends it (v1 ReplicationControllers would orphan
        # by default, leaving the object to the garbage collector). Kinds whose delete answers
        # with a Status come back as a plain dict; the others as their model.
        gone = call(api, "delete", suffix, namespaced, name, propagation_policy="Background")
        if delete_answer == "Status":
            self.assertIsInstance(gone, dict, kind)
            self.assertEqual((gone["kind"], gone["status"]), ("Status", "Success"), kind)
            self.assertEqual(gone["details"]["name"], name)
        else:
            self.assertIsInstance(gone, model_cls, kind)
            self.assertEqual(gone.metadata.name, name)
        # Objects with finalizers (pv/pvc-protection) are gone once their controller
        # releases them; poll for the 404.
        deadline = time.time() + 30
        while True:
            try:
                call(api, "read", suffix, namespaced, name)
            except ApiException as e:
                self.assertEqual(e.status, 404, kind)
                break
            self.assertLess(time.time(), deadline, f"{kind}: still present after delete")
            time.sleep(0.1)

        # Every change since the list, in order, as typed objects.
        w = watch.Watch()
        seen = []
        for ev in w.stream(method(api, "list", suffix, namespaced), *([NS] if namespaced else []),
                           resource_version=rv, timeout_seconds=10):
            self.assertIsInstance(ev["object"], model_cls, kind)
            if ev["object"].metadata.name != name:
                continue
            seen.append(ev["type"])
            if ev["type"] == "DELETED":
                w.stop()
        self.assertEqual(seen[0], "ADDED", kind)
        self.assertEqual(seen[-1], "DELETED", kind)
        # Five changes of ours; controllers may add status writes of their own.
        self.assertGreaterEqual(seen.count("MODIFIED"), 5, f"{kind}: {seen}")


def make_test(spec):
    def test(self):
        self.run_kind(*spec)
    return test


for spec in KINDS:
    setattr(EveryKind, f"test_{spec[1]}", make_test(spec))


class ServerSideApply(unittest.TestCase):
    def test_create_conflict_force_and_status_apply(self):
        apps = client.AppsV1Api()
        cfg = {"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "py-ssa", "labels": {"app": "py-ssa"}},
               "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "py-ssa"}}, "template": template("py-ssa")}}
        d = apps.patch_namespaced_deployment("py-ssa", NS, cfg, field_manager="alice", _content_type=APPLY)
        self.assertEqual(d.spec.replicas, 2)
        self.assertEqual(d.metadata.generation, 1)
        self.assertEqual(d.spec.strategy.type, "RollingUpdate")

        cfg["spec"]["replicas"] = 3
        with self.assertRaises(ApiException) as ctx:
            apps.patch_namespaced_deployment("py-ssa", NS, cfg, field_manager="bob", _content_type=APPLY)
        self.assertEqual(ctx.exception.status, 409)
        status = json.loads(ctx.exception.body)
        self.assertEqual(status["message"], 'Apply failed with 1 conflict: conflict with "alice": .spec.replicas')
        self.assertEqual(status["reason"], "Conflict")
        self.assertEqual(status["details"]["causes"],
                         [{"reason": "FieldManagerConflict", "message": 'conflict with "alice"', "field": ".spec.replicas"}])

        d = apps.patch_namespaced_deployment("py-ssa", NS, cfg, field_manager="bob", force=True, _content_type=APPLY)
        self.assertEqual(d.spec.replicas, 3)

        with self.assertRaises(ApiException) as ctx:
            apps.patch_namespaced_deployment("py-ssa", NS, cfg, _content_type=APPLY)
        self.assertEqual(ctx.exception.status, 422)
        self.assertIn("fieldManager: Required value: is required for apply patch", ctx.exception.body)

        st = apps.patch_namespaced_deployment_status(
            "py-ssa", NS,
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "py-ssa"},
             "status": {"observedGeneration": 2, "replicas": 3}},
            # The deployment controller owns status.replicas by now: take it over.
            field_manager="ctl", force=True, _content_type=APPLY)
        self.assertEqual(st.status.replicas, 3)
        status_entry = [e for e in st.metadata.managed_fields if e.manager == "ctl"][0]
        self.assertEqual((status_entry.operation, status_entry.subresource), ("Apply", "status"))
        apps.delete_namespaced_deployment("py-ssa", NS)

    def test_dry_run_apply_creates_nothing(self):
        v1 = client.CoreV1Api()
        cm = v1.patch_namespaced_config_map(
            "py-dry", NS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "py-dry"}, "data": {"a": "1"}},
            field_manager="py", dry_run="All", _content_type=APPLY)
        self.assertEqual(cm.data, {"a": "1"})
        with self.assertRaises(ApiException) as ctx:
            v1.read_namespaced_config_map("py-dry", NS)
        self.assertEqual(ctx.exception.status, 404)


if __name__ == "__main__":
    unittest.main(verbosity=2)
