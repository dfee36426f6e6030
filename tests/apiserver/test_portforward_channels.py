"""pods/portforward over the kubelet's WebSocket channel protocol (``v4.channel.k8s.io`` and its base64
form), which the official Python client speaks: the Python client's ``portforward`` itself, then the wire
with the `websockets` client (port headers, channels, the error channel, close when the pod's connection
ends), and the refusals. A live `kubesvc apiserver` and kubelet with one web pod."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from tests.apiserver.fixtures import Api
from tests.apiserver.test_streams import pod
from tests.support.live import live_bed
from tests.support.websocket import ws_connect
from tests.workloads.fixtures import POD_PYTHON, SERVER

PF = "/api/v1/namespaces/default/pods/web/portforward"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with live_bed(tmp_path_factory.mktemp("pfchannels")) as (api, bed):
        bed.create(pod("web", [POD_PYTHON, SERVER], {"app": "web"}, 8080))
        bed.wait(lambda: (bed.pod("web") or {}).get("status", {}).get("phase") == "Running", timeout=30, what="web")
        yield api


def _http_get(sock: Any) -> bytes:
    sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
    got = b""
    while data := sock.recv(65536):
        got += data
    return got


def test_python_client_portforward(api: Api) -> None:
    pytest.importorskip("kubernetes")
    from kubernetes import client, config
    from kubernetes.stream import portforward

    cfg = client.Configuration()
    config.load_kube_config(config_file=str(api.kubeconfig), client_configuration=cfg)
    core = client.CoreV1Api(client.ApiClient(cfg))
    pf = portforward(core.connect_get_namespaced_pod_portforward, "web", "default", ports="8080,9")
    try:
        assert pf.connected
        refused = pf.socket(9)
        refused.settimeout(30)
        assert refused.recv(1024) == b""  # the error channel closed it
        error = pf.error(9)
        assert error is not None
        assert error.startswith("error forwarding port 9 to pod web, uid ") and "connection refused" in error
        web = pf.socket(8080)
        web.settimeout(30)
        got = _http_get(web)  # ends when the server closes: the WebSocket closes with the last connection
        assert got.startswith(b"HTTP/1.0 200") and got.endswith(b"web\n")
        assert pf.error(8080) is None
    finally:
        pf.close()


@pytest.mark.parametrize("proto", ["v4.channel.k8s.io", "v4.base64.channel.k8s.io"])
def test_channels_on_the_wire(api: Api, proto: str) -> None:
    from websockets.exceptions import ConnectionClosed

    b64 = "base64" in proto

    def decode(msg: bytes | str) -> tuple[int, bytes]:
        if b64:
            assert isinstance(msg, str)
            return int(msg[0]), base64.b64decode(msg[1:])
        assert isinstance(msg, bytes)
        return msg[0], msg[1:]

    with ws_connect(api, f"{PF}?ports=8080&ports=9", [proto]) as ws:
        assert ws.subprotocol == proto
        heads = [decode(ws.recv(timeout=30)) for _ in range(4)]
        port_8080, port_9 = (8080).to_bytes(2, "little"), (9).to_bytes(2, "little")
        assert heads == [(0, port_8080), (1, port_8080), (2, port_9), (3, port_9)]
        request = b"GET / HTTP/1.0\r\n\r\n"
        ws.send("0" + base64.b64encode(request).decode() if b64 else b"\x00" + request)
        data: dict[int, bytes] = {}
        while True:  # until the server closes: both ports' connections have ended (recv's timeout: no hang)
            try:
                msg = ws.recv(timeout=30)
            except ConnectionClosed:
                break
            channel, payload = decode(msg)
            data[channel] = data.get(channel, b"") + payload
    assert data[0].startswith(b"HTTP/1.0 200") and data[0].endswith(b"web\n")
    assert b"dial tcp " in data[3] and b":9: connect: connection refused" in data[3]
    assert 1 not in data and 2 not in data


def test_refusals(api: Api) -> None:
    from websockets.exceptions import InvalidStatus

    with pytest.raises(InvalidStatus) as e:
        ws_connect(api, PF, ["v4.channel.k8s.io"])
    assert e.value.response.status_code == 400
    assert b'query parameter \\"port\\" is required' in e.value.response.body
    with pytest.raises(InvalidStatus) as e:
        ws_connect(api, f"{PF}?ports=80,http", ["v4.channel.k8s.io"])
    assert e.value.response.status_code == 400
    assert b'unable to parse \\"80,http\\" as a port' in e.value.response.body
    with pytest.raises(InvalidStatus) as e:
        ws_connect(api, f"{PF}?ports=0", ["v4.channel.k8s.io"])
    assert b'port \\"0\\" must be \\u003e 0' in e.value.response.body or b'must be > 0' in e.value.response.body
    code, _, body = api.request("GET", f"{PF}?ports=8080")  # no upgrade at all
    assert code == 400 and body["message"] == "Upgrade request required"
