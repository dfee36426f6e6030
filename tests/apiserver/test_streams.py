"""Streaming subresources through the real kubectl against a live `kubesvc apiserver` with a running kubelet:
logs (flags, deploy/ and -l), exec (exit codes, stdin, tty, env/cwd/user of the pod), attach, port-forward (pod,
svc, deploy, several ports, many connections, a closed port) and proxy (pods/services, kubectl proxy); and the
wire itself (the WebSocket subprotocols, the SPDY tunnel, refusals) with the `websockets` client."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.apiserver.fixtures import KUBECTL, Api
from tests.support.live import live_bed, stop_popen
from tests.support.procs import ROOT
from tests.support.websocket import ws_connect, ws_url
from tests.workloads.fixtures import POD_PYTHON, POD_UID, SERVER, Bed

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")

LOGGER = ("import sys, time\n"
          "for i in range(5):\n"
          "    print(f'line {i}', flush=True)\n"
          "print('to stderr', file=sys.stderr, flush=True)\n"
          "time.sleep(1)\n"
          "for i in range(5, 8):\n"
          "    print(f'line {i}', flush=True)\n"
          "time.sleep(100000)\n")


def pod(name: str, command: list[str], labels: dict[str, str], port: int | None = None, **extra: Any) -> dict[str, Any]:
    c: dict[str, Any] = {"name": "app", "image": "python", "command": command,
                         "env": [{"name": "GREETING", "value": "hello from " + name}]}
    if port:
        c["env"].append({"name": "PORT", "value": str(port)})
        c["ports"] = [{"containerPort": port, "name": "http"}]
    c.update(extra)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels}, "spec": {"containers": [c]}}


class Cluster:
    def __init__(self, api: Api, bed: Bed) -> None:
        self.api, self.bed = api, bed

    def kubectl(self, *args: str, input: str | None = None, timeout: float = 30) -> Any:
        return self.api.kubectl(*args, input=input, timeout=timeout)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with live_bed(tmp_path_factory.mktemp("streams")) as (api, bed):
        bed.create(pod("web", [POD_PYTHON, SERVER], {"app": "web"}, 8080))
        bed.create(pod("web2", [POD_PYTHON, SERVER], {"app": "web2"}, 8081))
        bed.create(pod("logger", [POD_PYTHON, "-c", LOGGER], {"app": "logger"}))
        bed.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                    "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}})
        bed.create({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "app"},
                    "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "dep"}},
                             "template": {"metadata": {"labels": {"app": "dep"}},
                                          "spec": {"containers": [{"name": "app", "image": "python",
                                                                   "command": [POD_PYTHON, SERVER],
                                                                   "env": [{"name": "PORT", "value": "8082"}],
                                                                   "ports": [{"containerPort": 8082}]}]}}}})
        for name in ("web", "web2", "logger"):
            bed.wait(lambda n=name: (bed.pod(n) or {}).get("status", {}).get("phase") == "Running", timeout=30, what=name)
        bed.wait(lambda: len([p for p in bed.pods(app="dep") if p.get("status", {}).get("phase") == "Running"]) == 1,
                 timeout=30, what="deployment pod")
        bed.wait(lambda: bed.endpoints("web")[0], timeout=30, what="web endpoints")
        bed.wait(lambda: "line 7" in bed.ks("logs", "logger").stdout, timeout=30, what="logger output")
        yield Cluster(api, bed)


def _get(url: str, timeout: float = 10) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


# ------------------------------------------------------------------------------------------------ logs


def test_logs_flags(cluster: Cluster) -> None:
    k = cluster.kubectl
    r = k("logs", "logger")
    assert r.code == 0, r.err
    assert "line 0\n" in r.out and "line 7\n" in r.out and "to stderr\n" in r.out
    assert k("logs", "logger", "--tail=2").out == "line 6\nline 7\n"
    assert k("logs", "pod/logger", "--limit-bytes=7").out == "line 0\n"
    stamped = k("logs", "logger", "--timestamps", "--tail=1").out
    assert stamped.endswith(" line 7\n") and stamped[:4].isdigit() and "T" in stamped.split()[0]
    assert k("logs", "logger", "--since=1h").out.count("line") == 8
    assert k("logs", "logger", "--since-time=2999-01-01T00:00:00Z").out == ""
    assert k("logs", "logger", "-c", "app").out.count("line") == 8
    bad = k("logs", "logger", "-c", "nope")
    assert bad.code == 1 and "container nope is not valid for pod logger" in bad.err
    prev = k("logs", "logger", "--previous")
    assert prev.code == 1 and 'previous terminated container "app" in pod "logger" not found' in prev.err
    missing = k("logs", "nothere")
    assert missing.code == 1 and 'pods "nothere" not found' in missing.err


def test_logs_by_selector_deployment_prefix(cluster: Cluster) -> None:
    k = cluster.kubectl
    r = k("logs", "-l", "app=logger", "--prefix", "--tail=1")
    assert r.code == 0, r.err
    assert r.out == "[pod/logger/app] line 7\n"
    r = k("logs", "-l", "app=logger", "--all-containers", "--tail=1")
    assert r.out == "line 7\n", r.err
    dep = k("logs", "deploy/app")
    assert dep.code == 0, dep.err


def test_logs_follow_streams_until_interrupted(cluster: Cluster) -> None:
    assert KUBECTL is not None
    p = subprocess.Popen([KUBECTL, "logs", "-f", "logger", "--tail=1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=cluster.api.env(), cwd=str(cluster.api.home))
    try:
        assert p.stdout is not None
        assert p.stdout.readline() == "line 7\n"
        assert p.poll() is None  # still following: the container runs
    finally:
        p.kill()
        p.wait(10)


# ------------------------------------------------------------------------------------------------ exec


def test_exec_exit_code_env_cwd_user(cluster: Cluster) -> None:
    k = cluster.kubectl
    r = k("exec", "web", "--", "sh", "-c", "exit 3")
    assert r.code == 3, (r.out, r.err)
    assert "command terminated with exit code 3" in r.err
    r = k("exec", "web", "--", "sh", "-c", 'echo "$GREETING|$PORT|$(pwd)|$(id -u)"; echo oops >&2')
    assert r.code == 0, r.err
    assert r.out == f"hello from web|8080|{ROOT}|{POD_UID}\n"
    assert r.err == "oops\n"
    r = k("exec", "web", "-c", "app", "--", "true")
    assert r.code == 0 and r.out == ""


def test_exec_stdin_and_tty(cluster: Cluster) -> None:
    k = cluster.kubectl
    r = k("exec", "-i", "web", "--", "sh", "-c", "tr a-z A-Z; exit 5", input="piped input\n")
    assert r.code == 5 and r.out == "PIPED INPUT\n", (r.out, r.err)
    r = k("exec", "-i", "web", "--", "wc", "-c", input="x" * 200000)
    assert r.out.strip() == "200000", r.err
    # -t with a real terminal: kubectl under `script`, which gives it a pty
    assert KUBECTL is not None
    env = cluster.api.env()
    cmd = f"{KUBECTL} exec -it web -- sh -c 'tty; stty size; test -t 0 && echo is-a-tty'"
    p = subprocess.run(["script", "-qec", cmd, "/dev/null"], input="", capture_output=True, text=True, env=env,
                       cwd=str(cluster.api.home), timeout=30)
    assert "/dev/pts/" in p.stdout and "is-a-tty" in p.stdout, (p.stdout, p.stderr)


def test_exec_errors(cluster: Cluster) -> None:
    k = cluster.kubectl
    r = k("exec", "web", "--", "no-such-binary-xyz")
    assert r.code != 0 and 'exec: "no-such-binary-xyz": executable file not found in $PATH' in r.err
    r = k("exec", "web", "-c", "nope", "--", "true")
    assert r.code == 1 and "container nope is not valid for pod web" in r.err
    r = k("exec", "nothere", "--", "true")
    assert r.code == 1 and 'pods "nothere" not found' in r.err


def test_attach_streams_output(cluster: Cluster) -> None:
    """attach shows what the container writes from now on; the logger is quiet, so write to its log as it
    would (its file is the container's stdout) and see it arrive."""
    assert KUBECTL is not None
    p = subprocess.Popen([KUBECTL, "attach", "logger"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=cluster.api.env(), cwd=str(cluster.api.home))
    try:
        logger = cluster.bed.pod("logger")
        assert logger is not None
        from kubesvc.dataplane.kubelet import logs as podlogs

        _, path = podlogs.read(cluster.bed.store_path, logger, None)
        got: list[str] = []
        t = threading.Thread(target=lambda: got.append(p.stdout.readline() if p.stdout else ""), daemon=True)
        t.start()
        while t.is_alive():
            with open(path, "a") as f:
                f.write("attached!\n")
            t.join(0.3)
        assert got == ["attached!\n"]
    finally:
        p.kill()
        p.wait(10)


# ------------------------------------------------------------------------------------------------ port-forward


class Forward:
    def __init__(self, cluster: Cluster, *args: str) -> None:
        assert KUBECTL is not None
        self.p = subprocess.Popen([KUBECTL, "port-forward", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env=cluster.api.env(), cwd=str(cluster.api.home))
        self.ports: list[int] = []

    def wait_ports(self, n: int) -> list[int]:
        assert self.p.stdout is not None
        while len(self.ports) < n:
            line = self.p.stdout.readline()
            assert line, f"kubectl port-forward ended: {self.p.stderr.read() if self.p.stderr else ''}"
            if line.startswith("Forwarding from 127.0.0.1:"):
                self.ports.append(int(line.split(":")[1].split()[0]))
        return self.ports

    def stop(self) -> str:
        return stop_popen(self.p)


def test_port_forward_pod_svc_deploy(cluster: Cluster) -> None:
    for target, remote, answer in (("pod/web", "8080", "web"), ("svc/web", "80", "web"), ("deploy/app", "8082", "app-")):
        f = Forward(cluster, target, f":{remote}")
        try:
            (port,) = f.wait_ports(1)
            assert _get(f"http://127.0.0.1:{port}/").startswith(answer)
        finally:
            f.stop()


def test_port_forward_several_ports_many_connections(cluster: Cluster) -> None:
    f = Forward(cluster, "pod/web", ":8080", ":8080")
    try:
        ports = f.wait_ports(2)
        results: list[str] = []
        lock = threading.Lock()

        def one(i: int) -> None:
            body = _get(f"http://127.0.0.1:{ports[i % 2]}/")
            with lock:
                results.append(body)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert results == ["web\n"] * 40
        # a bulk transfer both ways through one connection: the pod echoes nothing, but HTTP bodies do
        big = "x" * 3_000_000
        cmd = ["exec", "-i", "web", "--", "wc", "-c"]
        assert cluster.kubectl(*cmd, input=big).out.strip() == str(len(big))
    finally:
        f.stop()


def test_port_forward_closed_port_reports_error(cluster: Cluster) -> None:
    f = Forward(cluster, "pod/web", ":9")
    try:
        (port,) = f.wait_ports(1)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.settimeout(10)
            assert s.recv(100) == b""  # closed without an answer
    finally:
        err = f.stop()
    assert "error forwarding port 9 to pod web" in err and "connection refused" in err, err


# ------------------------------------------------------------------------------------------------ proxy


def test_proxy_services_and_pods(cluster: Cluster) -> None:
    api = cluster.api
    code, _, body = api.request("GET", "/api/v1/namespaces/default/services/web:http/proxy/")
    assert (code, body) == (200, "web\n")
    code, _, body = api.request("GET", "/api/v1/namespaces/default/services/http:web:80/proxy/healthz")
    assert (code, body) == (200, "ok\n")
    code, _, body = api.request("GET", "/api/v1/namespaces/default/pods/web2:8081/proxy/")
    assert (code, body) == (200, "web2\n")
    code, _, body = api.request("GET", "/api/v1/namespaces/default/pods/web:http/proxy/readyz")
    assert (code, body) == (200, "ready\n")
    code, _, body = api.request("GET", "/api/v1/namespaces/default/pods/web:9/proxy/")
    assert code == 503 and "connection refused" in body["message"]
    code, _, body = api.request("GET", "/api/v1/namespaces/default/services/nope/proxy/")
    assert code == 404 and body["message"] == 'services "nope" not found'
    r = cluster.kubectl("get", "--raw", "/api/v1/namespaces/default/services/web:80/proxy/")
    assert r.out == "web\n", r.err


def test_kubectl_proxy(cluster: Cluster) -> None:
    assert KUBECTL is not None
    p = subprocess.Popen([KUBECTL, "proxy", "--port=0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=cluster.api.env(), cwd=str(cluster.api.home))
    try:
        assert p.stdout is not None
        line = p.stdout.readline()  # Starting to serve on 127.0.0.1:PORT
        port = int(line.rsplit(":", 1)[1])
        assert _get(f"http://127.0.0.1:{port}/api/v1/namespaces/default/services/web:http/proxy/") == "web\n"
        assert _get(f"http://127.0.0.1:{port}/api/v1/namespaces/default/pods/web2:8081/proxy/") == "web2\n"
    finally:
        p.terminate()
        p.wait(10)


# ------------------------------------------------------------------------------------------------ the wire


def _drain_exec(ws: Any) -> tuple[bytes, dict[str, Any] | None]:
    """Read an exec WebSocket to its end: (everything on stdout, the status from the error channel)."""
    out, status = b"", None
    for msg in ws:
        assert isinstance(msg, bytes)
        if msg[0] == 1:
            out += msg[1:]
        elif msg[0] == 3:
            status = json.loads(msg[1:])
    return out, status


@pytest.mark.parametrize("proto", ["v5.channel.k8s.io", "v4.channel.k8s.io"])
def test_exec_channels_on_the_wire(cluster: Cluster, proto: str) -> None:
    q = "command=sh&command=-c&command=cat%3Bexit%207&stdin=true&stdout=true&stderr=true"
    with ws_connect(cluster.api, f"/api/v1/namespaces/default/pods/web/exec?{q}", [proto]) as ws:
        assert ws.subprotocol == proto
        ws.send(b"\x00hello")
        if proto.startswith("v5"):
            ws.send(b"\xff\x00")  # close stdin
            out, status = _drain_exec(ws)
            assert out == b"hello"
            assert status is not None and status["reason"] == "NonZeroExitCode"
            assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "7"}]


def test_upgrade_refusals(cluster: Cluster) -> None:
    api = cluster.api
    from websockets.exceptions import InvalidStatus

    path = "/api/v1/namespaces/default/pods/web/exec?command=true&stdout=true"
    with pytest.raises(InvalidStatus) as e:  # a foreign Origin never gets a WebSocket
        ws_connect(api, path, ["v5.channel.k8s.io"], {"Origin": "http://evil.example"})
    assert e.value.response.status_code == 403
    with pytest.raises(InvalidStatus) as e:  # no credential, no WebSocket
        from websockets.sync.client import connect

        ctx = api.ssl_context(cert=False)
        connect(ws_url(api, path), subprotocols=["v5.channel.k8s.io"], ssl=ctx, open_timeout=10)  # type: ignore[list-item]
    assert e.value.response.status_code == 401
    with pytest.raises(InvalidStatus) as e:
        ws_connect(api, path, ["nonsense.k8s.io"])
    assert e.value.response.status_code == 400
    code, _, body = api.request("GET", path)  # no upgrade at all
    assert code == 400 and body["message"] == "Upgrade request required"


def test_portforward_spdy_tunnel_on_the_wire(cluster: Cluster) -> None:
    """Our own SPDY client through the WebSocket tunnel: an error/data pair to the web pod's port."""
    from kubesvc.apiserver import spdy

    ws = RawWebSocket(cluster.api, "/api/v1/namespaces/default/pods/web/portforward", "SPDY/3.1+portforward.k8s.io")
    try:
        c = spdy.Connection()
        ws.send(c.syn_stream(1, {"streamtype": "error", "port": "8080", "requestid": "0"}, fin=True))
        ws.send(c.syn_stream(3, {"streamtype": "data", "port": "8080", "requestid": "0"}))
        ws.send(c.data(3, b"GET / HTTP/1.0\r\n\r\n"))
        got, fins, replies = b"", set(), set()
        while fins != {1, 3}:
            for f in c.receive(ws.recv()):
                if f.kind == "data" and f.stream_id == 3:
                    got += f.data
                if f.type == spdy.SYN_REPLY:
                    replies.add(f.stream_id)
                if f.fin:
                    fins.add(f.stream_id)
        assert replies == {1, 3}
        assert got.startswith(b"HTTP/1.0 200") and got.endswith(b"web\n")
    finally:
        ws.close()


class RawWebSocket:
    """A WebSocket client for subprotocols the `websockets` client will not name (``SPDY/3.1+...`` is no
    token): the handshake by hand, then the library's sans-I/O client protocol for the frames."""

    def __init__(self, api: Api, path: str, protocol: str) -> None:
        from websockets.client import ClientProtocol
        from websockets.protocol import State
        from websockets.uri import parse_uri

        self.sock = api.connect()
        self.sock.settimeout(10)
        host = api.url.split("://", 1)[1]
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                           f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n"
                           f"Sec-WebSocket-Protocol: {protocol}\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            assert chunk, head
            head += chunk
        assert head.startswith(b"HTTP/1.1 101"), head
        assert f"Sec-WebSocket-Protocol: {protocol}".encode() in head
        self.proto = ClientProtocol(parse_uri(ws_url(api, path)), state=State.OPEN)
        self.frames: list[bytes] = []

    def send(self, data: bytes) -> None:
        self.proto.send_binary(data)
        for out in self.proto.data_to_send():
            self.sock.sendall(out)

    def recv(self) -> bytes:
        while not self.frames:
            data = self.sock.recv(65536)
            assert data, "the server closed the connection"
            self.proto.receive_data(data)
            self.frames += [bytes(ev.data) for ev in self.proto.events_received() if ev.opcode.name == "BINARY"]
        return self.frames.pop(0)

    def close(self) -> None:
        self.sock.close()


def test_exec_tty_input_larger_than_the_terminal_buffer(cluster: Cluster) -> None:
    """A paste bigger than the pty's buffer (a few KiB) all arrives: the terminal's master end is non-blocking,
    so input waits for the reader instead of failing with EAGAIN and being dropped."""
    q = ("command=sh&command=-c&command=stty%20raw%20-echo%3B%20echo%20ready%3B%20head%20-c%20300000%20%7C%20wc%20-c"
         "&stdin=true&stdout=true&tty=true")
    with ws_connect(cluster.api, f"/api/v1/namespaces/default/pods/web/exec?{q}", ["v5.channel.k8s.io"]) as ws:
        out = b""
        while b"ready" not in out:
            msg = ws.recv(timeout=30)
            assert isinstance(msg, bytes)
            if msg[0] == 1:
                out += msg[1:]
        ws.send(b"\x00" + b"x" * 300000)
        out, status = _drain_exec(ws)
        assert out.split() == [b"300000"], out[-200:]
        assert status is not None and status["status"] == "Success"
