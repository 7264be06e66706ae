"""The official Python client (`kubernetes` package) against a running ferrokube server.

Run by tests/e2e/python_client.rs, which starts the server and sets KUBECONFIG. Every call goes
through the client's strict models, so a field of the wrong shape fails the test.
"""

import time
import os
import unittest

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

NS = "default"


def setUpModule():
    config.load_kube_config(config_file=os.environ["KUBECONFIG"])


def pod(name, labels=None, image="busybox:1.36"):
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"containers": [{"name": "main", "image": image, "command": ["sleep", "3600"]}]},
    }


class Pods(unittest.TestCase):
    def setUp(self):
        self.v1 = client.CoreV1Api()

    def test_create_read_list_replace_patch_delete(self):
        created = self.v1.create_namespaced_pod(NS, pod("py-a", {"app": "py", "tier": "web"}))
        self.assertIsInstance(created, client.V1Pod)
        self.assertEqual(created.metadata.name, "py-a")
        self.assertEqual(created.status.phase, "Pending")
        self.assertTrue(created.metadata.uid)
        self.v1.create_namespaced_pod(NS, pod("py-b", {"app": "py", "tier": "db"}))
        self.v1.create_namespaced_pod(NS, client.V1Pod(
            metadata=client.V1ObjectMeta(name="py-c"),
            spec=client.V1PodSpec(containers=[client.V1Container(name="main", image="busybox")])))

        read = self.v1.read_namespaced_pod("py-a", NS)
        self.assertEqual(read.spec.containers[0].image, "busybox:1.36")

        web = self.v1.list_namespaced_pod(NS, label_selector="app=py,tier in (web)")
        self.assertEqual([p.metadata.name for p in web.items], ["py-a"])
        notdb = self.v1.list_namespaced_pod(NS, label_selector="tier!=db")
        # Other tests' Deployments have pods in this namespace too: look at this test's own.
        mine = sorted(p.metadata.name for p in notdb.items if p.metadata.name in ("py-a", "py-b", "py-c"))
        self.assertEqual(mine, ["py-a", "py-c"])
        by_name = self.v1.list_namespaced_pod(NS, field_selector="metadata.name=py-b")
        self.assertEqual([p.metadata.name for p in by_name.items], ["py-b"])
        pending = self.v1.list_pod_for_all_namespaces(field_selector="status.phase=Pending")
        self.assertGreaterEqual(len(pending.items), 3)
        self.assertTrue(pending.metadata.resource_version)

        read.metadata.labels["replaced"] = "yes"
        replaced = self.v1.replace_namespaced_pod("py-a", NS, read)
        self.assertEqual(replaced.metadata.labels["replaced"], "yes")
        self.assertGreater(int(replaced.metadata.resource_version), int(read.metadata.resource_version))

        stale = read
        stale.metadata.labels["again"] = "1"
        with self.assertRaises(ApiException) as ctx:
            self.v1.replace_namespaced_pod("py-a", NS, stale)
        self.assertEqual(ctx.exception.status, 409)

        smp = self.v1.patch_namespaced_pod("py-a", NS, {"metadata": {"labels": {"patched": "smp"}}})
        self.assertEqual(smp.metadata.labels["patched"], "smp")
        jp = self.v1.patch_namespaced_pod("py-a", NS, [{"op": "replace", "path": "/metadata/labels/patched", "value": "json"}])
        self.assertEqual(jp.metadata.labels["patched"], "json")
        img = self.v1.patch_namespaced_pod("py-a", NS, {"spec": {"containers": [{"name": "main", "image": "busybox:1.37"}]}})
        self.assertEqual(img.spec.containers[0].image, "busybox:1.37")
        self.assertEqual(len(img.spec.containers), 1)

        gone = self.v1.delete_namespaced_pod("py-a", NS)
        self.assertIsInstance(gone, client.V1Pod)
        self.assertEqual(gone.metadata.name, "py-a")
        with self.assertRaises(ApiException) as ctx:
            self.v1.read_namespaced_pod("py-a", NS)
        self.assertEqual(ctx.exception.status, 404)
        self.v1.delete_collection_namespaced_pod(NS, label_selector="app=py")
        left = self.v1.list_namespaced_pod(NS)
        self.assertEqual([p.metadata.name for p in left.items], ["py-c"])
        self.v1.delete_namespaced_pod("py-c", NS)

    def test_watch_resumes_from_a_resource_version(self):
        listed = self.v1.list_namespaced_pod(NS)
        rv = listed.metadata.resource_version
        self.v1.create_namespaced_pod(NS, pod("py-w", {"app": "watched"}))
        w = watch.Watch()
        seen = []
        for ev in w.stream(self.v1.list_namespaced_pod, NS, resource_version=rv, timeout_seconds=10):
            seen.append((ev["type"], ev["object"].metadata.name))
            last_rv = ev["object"].metadata.resource_version
            w.stop()
        self.assertEqual(seen, [("ADDED", "py-w")])

        self.v1.patch_namespaced_pod("py-w", NS, {"metadata": {"labels": {"step": "2"}}})
        self.v1.delete_namespaced_pod("py-w", NS)
        w = watch.Watch()
        resumed = []
        for ev in w.stream(self.v1.list_namespaced_pod, NS, resource_version=last_rv, timeout_seconds=10):
            self.assertIsInstance(ev["object"], client.V1Pod)
            resumed.append((ev["type"], ev["object"].metadata.name))
            if ev["type"] == "DELETED":
                w.stop()
        # Our patch, then the delete; the scheduler may add a status write of its own
        # (PodScheduled=False in a cluster without nodes) in between.
        self.assertEqual(resumed[-1], ("DELETED", "py-w"))
        self.assertGreaterEqual(len(resumed), 2)
        self.assertTrue(all(e == ("MODIFIED", "py-w") for e in resumed[:-1]), resumed)

    def test_watch_with_a_selector_sees_only_matching_objects(self):
        rv = self.v1.list_namespaced_pod(NS).metadata.resource_version
        self.v1.create_namespaced_pod(NS, pod("py-x", {"app": "other"}))
        self.v1.create_namespaced_pod(NS, pod("py-y", {"app": "mine"}))
        w = watch.Watch()
        names = []
        for ev in w.stream(self.v1.list_namespaced_pod, NS, label_selector="app=mine", resource_version=rv, timeout_seconds=10):
            names.append(ev["object"].metadata.name)
            w.stop()
        self.assertEqual(names, ["py-y"])
        self.v1.delete_namespaced_pod("py-x", NS)
        self.v1.delete_namespaced_pod("py-y", NS)


class Deployments(unittest.TestCase):
    def test_create_read_list_replace_patch_scale_delete(self):
        apps = client.AppsV1Api()
        body = {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "py-web", "labels": {"app": "py-web"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "py-web"}},
                     "template": {"metadata": {"labels": {"app": "py-web"}},
                                  "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}}},
        }
        d = apps.create_namespaced_deployment(NS, body)
        self.assertIsInstance(d, client.V1Deployment)
        self.assertEqual(d.metadata.generation, 1)
        self.assertEqual(d.spec.strategy.type, "RollingUpdate")
        self.assertEqual(d.spec.strategy.rolling_update.max_surge, "25%")
        self.assertEqual(d.spec.revision_history_limit, 10)
        self.assertEqual(d.spec.progress_deadline_seconds, 600)
        listed = apps.list_namespaced_deployment(NS, label_selector="app=py-web")
        self.assertEqual(len(listed.items), 1)
        # The deployment controller writes status meanwhile: re-read and retry on a conflict.
        for _ in range(20):
            d.spec.template.spec.containers[0].image = "nginx:1.26"
            try:
                r = apps.replace_namespaced_deployment("py-web", NS, d)
                break
            except client.exceptions.ApiException as e:
                if e.status != 409:
                    raise
                time.sleep(0.1)
                d = apps.read_namespaced_deployment("py-web", NS)
        else:
            self.fail("replace kept conflicting")
        self.assertEqual(r.metadata.generation, 2)
        p = apps.patch_namespaced_deployment("py-web", NS, {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}})
        self.assertEqual(p.spec.template.spec.containers[0].image, "nginx:1.27")
        scale = apps.read_namespaced_deployment_scale("py-web", NS)
        self.assertIsInstance(scale, client.V1Scale)
        self.assertEqual(scale.spec.replicas, 2)
        self.assertEqual(scale.status.selector, "app=py-web")
        scaled = apps.patch_namespaced_deployment_scale("py-web", NS, {"spec": {"replicas": 4}})
        self.assertEqual(scaled.spec.replicas, 4)
        self.assertEqual(apps.read_namespaced_deployment("py-web", NS).spec.replicas, 4)
        st = apps.delete_namespaced_deployment("py-web", NS)
        # Deletes of most kinds answer with a Status (the client hands it back as a dict).
        self.assertEqual(st["kind"], "Status")
        self.assertEqual(st["status"], "Success")
        self.assertEqual(st["details"]["name"], "py-web")
        self.assertEqual(st["details"]["group"], "apps")
        # The garbage collector removes the ReplicaSets and their pods in the background;
        # wait for that so the other suites in this namespace start clean.
        deadline = time.time() + 60
        while v1_pods(NS, "app=py-web"):
            self.assertLess(time.time(), deadline, "the deployment's pods were never collected")
            time.sleep(0.2)

    def test_invalid_objects_are_rejected_with_422(self):
        apps = client.AppsV1Api()
        body = {"metadata": {"name": "bad"}, "spec": {"selector": {"matchLabels": {"a": "b"}},
                "template": {"metadata": {"labels": {"a": "c"}}, "spec": {"containers": [{"name": "x", "image": "y"}]}}}}
        with self.assertRaises(ApiException) as ctx:
            apps.create_namespaced_deployment(NS, body)
        self.assertEqual(ctx.exception.status, 422)
        self.assertIn("`selector` does not match template `labels`", ctx.exception.body)


def v1_pods(ns, selector):
    return [p.metadata.name for p in client.CoreV1Api().list_namespaced_pod(ns, label_selector=selector).items]


class Services(unittest.TestCase):
    def test_create_read_list_replace_patch_delete(self):
        v1 = client.CoreV1Api()
        svc = client.V1Service(
            metadata=client.V1ObjectMeta(name="py-svc", labels={"app": "py"}),
            spec=client.V1ServiceSpec(selector={"app": "py"}, ports=[client.V1ServicePort(port=80, target_port=8080)]))
        s = v1.create_namespaced_service(NS, svc)
        self.assertEqual(s.spec.type, "ClusterIP")
        self.assertEqual(s.spec.ports[0].protocol, "TCP")
        self.assertEqual(s.spec.session_affinity, "None")
        self.assertEqual(len(v1.list_namespaced_service(NS, label_selector="app=py").items), 1)
        s.metadata.labels["x"] = "1"
        s = v1.replace_namespaced_service("py-svc", NS, s)
        self.assertEqual(s.metadata.labels["x"], "1")
        s = v1.patch_namespaced_service("py-svc", NS, {"metadata": {"annotations": {"note": "patched"}}})
        self.assertEqual(s.metadata.annotations["note"], "patched")
        gone = v1.delete_namespaced_service("py-svc", NS)
        self.assertEqual(gone.metadata.name, "py-svc")


class ConfigMaps(unittest.TestCase):
    def test_create_read_list_replace_patch_delete(self):
        v1 = client.CoreV1Api()
        cm = v1.create_namespaced_config_map(NS, client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="py-cm", labels={"kind": "settings"}), data={"a": "1"}))
        self.assertEqual(cm.data, {"a": "1"})
        self.assertEqual(len(v1.list_namespaced_config_map(NS, label_selector="kind=settings").items), 1)
        cm.data["b"] = "2"
        cm = v1.replace_namespaced_config_map("py-cm", NS, cm)
        self.assertEqual(cm.data, {"a": "1", "b": "2"})
        cm = v1.patch_namespaced_config_map("py-cm", NS, {"data": {"a": None}})
        self.assertEqual(cm.data, {"b": "2"})
        st = v1.delete_namespaced_config_map("py-cm", NS)
        self.assertEqual((st["kind"], st["status"], st["details"]["kind"]), ("Status", "Success", "configmaps"))
        with self.assertRaises(ApiException) as ctx:
            v1.delete_namespaced_config_map("py-cm", NS)
        self.assertEqual(ctx.exception.status, 404)

    def test_watch_resume_sees_every_change_in_order(self):
        v1 = client.CoreV1Api()
        rv = v1.list_namespaced_config_map(NS).metadata.resource_version
        v1.create_namespaced_config_map(NS, {"metadata": {"name": "py-wcm"}, "data": {"n": "0"}})
        for i in range(1, 4):
            v1.patch_namespaced_config_map("py-wcm", NS, {"data": {"n": str(i)}})
        w = watch.Watch()
        seen = []
        for ev in w.stream(v1.list_namespaced_config_map, NS, resource_version=rv, timeout_seconds=10):
            if ev["object"].metadata.name != "py-wcm":
                continue
            seen.append((ev["type"], ev["object"].data["n"]))
            if len(seen) == 4:
                w.stop()
        self.assertEqual(seen, [("ADDED", "0"), ("MODIFIED", "1"), ("MODIFIED", "2"), ("MODIFIED", "3")])
        v1.delete_namespaced_config_map("py-wcm", NS)


class Nodes(unittest.TestCase):
    def test_create_read_list_patch_status_delete(self):
        v1 = client.CoreV1Api()
        n = v1.create_node(client.V1Node(metadata=client.V1ObjectMeta(name="py-node", labels={"zone": "a"})))
        self.assertEqual(n.metadata.name, "py-node")
        self.assertEqual(len(v1.list_node(label_selector="zone=a").items), 1)
        self.assertEqual(len(v1.list_node(field_selector="spec.unschedulable=false").items), 1)
        n = v1.patch_node("py-node", {"spec": {"unschedulable": True}})
        self.assertTrue(n.spec.unschedulable)
        self.assertEqual(len(v1.list_node(field_selector="spec.unschedulable=true").items), 1)
        n = v1.patch_node_status("py-node", {"status": {"capacity": {"cpu": "2", "memory": "4Gi", "pods": "110"},
                                                        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                                                        "message": "ready"}]}})
        self.assertEqual(n.status.capacity["cpu"], "2")
        n.metadata.labels["zone"] = "b"
        n = v1.replace_node("py-node", n)
        self.assertEqual(n.metadata.labels["zone"], "b")
        self.assertEqual(n.status.capacity["pods"], "110", "status survives a main-resource update")
        st = v1.delete_node("py-node")
        self.assertEqual((st["kind"], st["status"]), ("Status", "Success"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
