"""The official Python client's streaming against pods on a real node: WebSocket exec (output,
stderr, stdin, exit codes) and WebSocket port-forward. The pod named by $POD runs the project's
busybox-httpd image in namespace default; tests/e2e/pods.rs starts it and this script."""

import os
import time
import unittest

from kubernetes import client, config
from kubernetes.stream import portforward, stream

POD = os.environ["POD"]


class PodStreaming(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        config.load_kube_config()
        cls.v1 = client.CoreV1Api()

    def exec(self, command, **kw):
        return stream(
            self.v1.connect_get_namespaced_pod_exec,
            POD,
            "default",
            command=command,
            stderr=True,
            stdout=True,
            tty=False,
            **kw,
        )

    def test_exec_returns_the_commands_output(self):
        self.assertEqual(self.exec(["cat", "/etc/hostname"], stdin=False), POD + "\n")

    def test_exec_reports_a_non_zero_exit_code(self):
        resp = self.exec(
            ["sh", "-c", "echo out; echo err >&2; exit 5"],
            stdin=False,
            _preload_content=False,
        )
        resp.run_forever(timeout=20)
        self.assertEqual(resp.read_stdout(), "out\n")
        self.assertEqual(resp.read_stderr(), "err\n")
        self.assertEqual(resp.returncode, 5)

    def test_exec_reads_what_is_written_to_stdin(self):
        resp = self.exec(
            ["sh", "-c", "read line; echo got $line; read more; echo and $more"],
            stdin=True,
            _preload_content=False,
        )
        resp.write_stdin("hello\n")
        out = ""
        deadline = time.time() + 20
        while "got hello" not in out and time.time() < deadline:
            resp.update(timeout=1)
            out += resp.read_stdout(timeout=0) or ""
        resp.write_stdin("world\n")
        while resp.is_open() and time.time() < deadline:
            resp.update(timeout=1)
            out += resp.read_stdout(timeout=0) or ""
        self.assertEqual(out, "got hello\nand world\n")
        self.assertEqual(resp.returncode, 0)
        resp.close()

    def test_port_forward_reaches_the_pods_port(self):
        pf = portforward(
            self.v1.connect_get_namespaced_pod_portforward, POD, "default", ports="80"
        )
        sock = pf.socket(80)
        sock.setblocking(True)
        sock.sendall(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n")
        data = b""
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        sock.close()
        self.assertIn(b"200 OK", data)
        self.assertIn(b"Welcome to busybox httpd!", data)
        self.assertIsNone(pf.error(80))


if __name__ == "__main__":
    unittest.main(verbosity=2)
