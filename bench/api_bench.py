"""API server request bodies: one Service created from protobuf (what kubectl's `create service` sends) against
the same Service as JSON, in process: the body decoded, then decode + validate + store through the handler
(`handlers.handle`, a real SQLite store in a temp dir, one write transaction each). Prints a Markdown table.

Run: make bench   (or: .venv/bin/python bench/api_bench.py [N], default N=1000 creates per format)
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from kubesvc.apiserver import handlers, protobuf  # noqa: E402
from kubesvc.registry.generic import Registry  # noqa: E402
from kubesvc.store.db import Store  # noqa: E402


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def _l(num: int, data: bytes | str) -> bytes:
    raw = data.encode() if isinstance(data, str) else data
    return _varint(num << 3 | 2) + _varint(len(raw)) + raw


def _v(num: int, value: int) -> bytes:
    return _varint(num << 3) + _varint(value)


def service_pb(name: str) -> bytes:
    """kubectl create service clusterip NAME --tcp=80:8080, field for field (core/v1 Service)."""
    port = _l(1, "80-8080") + _l(2, "TCP") + _v(3, 80) + _l(4, _v(1, 0) + _v(2, 8080) + _l(3, "")) + _v(5, 0)
    spec = _l(1, port) + _l(2, _l(1, "app") + _l(2, name)) + _l(3, "") + _l(4, "ClusterIP") + _l(7, "") + _l(10, "")
    meta = _l(1, name) + _l(2, "") + _l(3, "") + _l(8, b"") + _l(11, _l(1, "app") + _l(2, name))
    raw = _l(1, meta) + _l(2, spec) + _l(3, _l(1, b""))
    return b"k8s\x00" + _l(1, _l(1, "v1") + _l(2, "Service")) + _l(2, raw) + _l(3, "") + _l(4, "")


def service_json(name: str) -> bytes:
    return json.dumps(protobuf.decode(service_pb(name)), separators=(",", ":")).encode()


def _per_op(fn, n: int) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - t) / n


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    from kubesvc.api import untrusted

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(os.path.join(tmp, "store.db"))
        ctx = handlers.Context(Registry(store), "127.0.0.1:0", threading.Event())
        path = "/api/v1/namespaces/default/services"
        if handlers.handle(handlers.Request.build("GET", "/api/v1/namespaces/default", {}), ctx).code == 404:
            handlers.handle(handlers.Request.build("POST", "/api/v1/namespaces", {"content-type": "application/json"},
                                                   b'{"metadata":{"name":"default"}}'), ctx)
        pb = [service_pb(f"pb-{i:06d}") for i in range(n)]
        js = [service_json(f"js-{i:06d}") for i in range(n)]
        assert protobuf.decode(service_pb("x")) == untrusted.loads(service_json("x"))
        dec_pb = _per_op(lambda i: protobuf.decode(pb[i]), n)
        dec_js = _per_op(lambda i: untrusted.loads(js[i]), n)

        def create(body: bytes, ctype: str) -> None:
            r = handlers.handle(handlers.Request.build("POST", path, {"content-type": ctype}, body), ctx)
            assert r.code == 201, r.body[:300]

        for i in range(20):  # warm-up: lazy imports, schemas, the first pages of the store
            create(service_pb(f"warm-pb-{i}"), protobuf.MEDIA_TYPE)
            create(service_json(f"warm-js-{i}"), "application/json")
        spent = {"js": 0.0, "pb": 0.0}
        for i in range(n):  # interleaved, so both formats see the same store sizes
            for fmt, body, ctype in (("js", js[i], "application/json"), ("pb", pb[i], protobuf.MEDIA_TYPE)):
                t = time.perf_counter()
                create(body, ctype)
                spent[fmt] += time.perf_counter() - t
        full_js, full_pb = spent["js"] / n, spent["pb"] / n
        store.close()
    print(f"One Service, {n} each, in process (`bench/api_bench.py`)\n")
    print("| row | JSON | protobuf | protobuf / JSON |")
    print("|---|---|---|---|")
    print(f"| body decoded to the object dict | {dec_js * 1e6:.1f} µs | {dec_pb * 1e6:.1f} µs | {dec_pb / dec_js:.2f} |")
    print(f"| decode + validate + store (POST through `handlers.handle`) | {full_js * 1e3:.2f} ms | {full_pb * 1e3:.2f} ms "
          f"| {full_pb / full_js:.2f} |")
    print(f"\nbody sizes: JSON {len(js[0])} bytes, protobuf {len(pb[0])} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
