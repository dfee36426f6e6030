"""Through the proxy: a killed pod and a rolling update never fail a request (maxUnavailable 0)."""

from __future__ import annotations

import os
import signal
import threading
import urllib.request

from tests.workloads.fixtures import Bed, container_pid
from tests.workloads.test_controllers import deployment, ready_ips

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Client(threading.Thread):
    """Requests in a loop until stopped (bounded: at most 20,000), recording answers and failures."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.stop_flag = url, threading.Event()
        self.answers: list[str] = []
        self.failures: list[str] = []

    def run(self) -> None:
        while not self.stop_flag.is_set() and len(self.answers) + len(self.failures) < 20_000:
            try:
                with _OPENER.open(self.url, timeout=5) as r:
                    self.answers.append(r.read().decode().strip())
            except Exception as e:  # any failure is what the test counts
                self.failures.append(repr(e))
            self.stop_flag.wait(0.005)

    def finish(self) -> None:
        self.stop_flag.set()
        self.join(timeout=10)


def test_requests_keep_succeeding_through_pod_kill_and_rolling_update(bed: Bed) -> None:
    bed.start_kubelet()
    proxy = bed.spawn(bed.store_path, "proxy", "--healthz-bind-address", "127.0.0.1:0",
                      "--metrics-bind-address", "127.0.0.1:0", "--nodeport-addresses", "127.0.0.1/32")
    proxy.wait_line("kubesvc proxy ready", timeout=20)
    svc = bed.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "app"},
                      "spec": {"selector": {"app": "app"}, "ports": [{"port": 8080, "targetPort": "http"}]}})
    bed.create(deployment("app", 3, "v1"))
    r = bed.ks("rollout", "status", "deployment/app", "--timeout", "30s")
    assert r.returncode == 0, (r.stdout, r.stderr)
    ready_ips(bed, "app", 3)
    client = Client(f"http://{svc['spec']['clusterIP']}:8080/")
    client.start()
    try:
        bed.wait(lambda: len(client.answers) >= 20, what="first answers through the proxy")
        v1 = {p["metadata"]["name"] for p in bed.pods(app="app")}
        assert set(client.answers) == v1  # round robin reaches every pod
        # kill -9 one pod's process: the kubelet restarts it, the Service keeps answering. A request the
        # killed process was serving at that instant is lost (as in a cluster); new ones go elsewhere.
        victim = sorted(bed.pods(app="app"), key=lambda p: p["metadata"]["name"])[0]
        os.killpg(container_pid(victim), signal.SIGKILL)
        killed_at = len(client.answers)
        bed.wait(lambda: ((bed.pod(victim["metadata"]["name"]) or {}).get("status", {}).get("containerStatuses")
                          or [{}])[0].get("restartCount", 0) >= 1, timeout=20, what="restart after kill -9")
        ready_ips(bed, "app", 3)
        bed.wait(lambda: len(client.answers) >= killed_at + 20, what="answers after kill -9")
        assert len(client.failures) <= 1, client.failures
        client.failures.clear()
        # rolling update while the client keeps sending: graceful stops, so not one request fails
        r = bed.ks("rollout", "restart", "deployment/app")
        assert r.returncode == 0, r.stderr
        r = bed.ks("rollout", "status", "deployment/app", "--timeout", "60s", timeout=90)
        assert r.returncode == 0, (r.stdout, r.stderr)
        ready_ips(bed, "app", 3)
        # rollout status is complete while old pods still terminate (graceful deletion): they are not v2
        v2 = {p["metadata"]["name"] for p in bed.pods(app="app") if not p["metadata"].get("deletionTimestamp")}
        assert not v1 & v2
        seen = len(client.answers)
        bed.wait(lambda: len(client.answers) >= seen + 20, what="answers after the rollout")
    finally:
        client.finish()
    assert client.failures == [], client.failures[:5]
    assert v2 <= set(client.answers[seen:])
