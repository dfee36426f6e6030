"""Counters per service port, the sync-latency histogram, Prometheus text, and the tiny HTTP endpoint
that serves ``/healthz`` and ``/metrics``.

Rules kept here:
- Nothing here runs per chunk: bytes are read from the kernel (``TCP_INFO`` ``tcpi_bytes_received`` /
  ``tcpi_bytes_acked``) when a connection ends, and for live connections when ``/metrics`` is scraped.
- Metric names: kube-proxy's own where one exists (``kubeproxy_sync_proxy_rules_duration_seconds``,
  ``kubeproxy_sync_proxy_rules_last_timestamp_seconds``), ``kubesvc_proxy_*`` for per-service-port ones.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kubesvc.dataplane.runtime import Route, serve_http  # noqa: F401 (the HTTP endpoint, shared with every /healthz)

_TCP_INFO_LEN = 136
_BYTES_ACKED_OFFSET = 120  # struct tcp_info: tcpi_bytes_acked (u64), then tcpi_bytes_received (u64)


def tcp_bytes(sock: Any) -> tuple[int, int] | None:
    """(bytes received from the peer, bytes the peer acknowledged) for a TCP socket, or None."""
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_LEN)
    except (OSError, ValueError, AttributeError):
        return None
    if len(raw) < _TCP_INFO_LEN:
        return None
    acked, received = struct.unpack_from("QQ", raw, _BYTES_ACKED_OFFSET)
    return received, acked


class PortMetrics:
    __slots__ = ("open", "total", "bytes_in", "bytes_out", "connect_failures", "rejected", "datagrams_in", "datagrams_out", "flows")

    def __init__(self) -> None:
        self.open = 0
        self.total = 0
        self.bytes_in = 0  # client -> backend
        self.bytes_out = 0  # backend -> client
        self.connect_failures = 0
        self.rejected = 0  # no endpoints
        self.datagrams_in = 0
        self.datagrams_out = 0
        self.flows = 0


BUCKETS = (0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192, 16.384)


class Histogram:
    def __init__(self) -> None:
        self.counts = [0] * len(BUCKETS)
        self.sum = 0.0
        self.count = 0

    def observe(self, v: float) -> None:
        self.sum += v
        self.count += 1
        for i, b in enumerate(BUCKETS):
            if v <= b:
                self.counts[i] += 1


@dataclass
class SyncStats:
    duration: Histogram
    last_timestamp: float = 0.0
    syncs: int = 0


def _labels(ns: str, svc: str, port: str, proto: str) -> str:
    esc = lambda s: s.replace("\\", "\\\\").replace('"', '\\"')  # noqa: E731
    return f'namespace="{esc(ns)}",service="{esc(svc)}",port="{esc(port)}",protocol="{proto}"'


PER_PORT = (
    ("kubesvc_proxy_connections_open", "gauge", "TCP connections open now.", "open"),
    ("kubesvc_proxy_connections_total", "counter", "TCP connections accepted.", "total"),
    ("kubesvc_proxy_bytes_in_total", "counter", "Bytes from clients to endpoints.", "bytes_in"),
    ("kubesvc_proxy_bytes_out_total", "counter", "Bytes from endpoints to clients.", "bytes_out"),
    ("kubesvc_proxy_connect_failures_total", "counter", "Failed or timed-out connects to an endpoint.", "connect_failures"),
    ("kubesvc_proxy_rejected_total", "counter", "Connections or datagrams rejected: no ready endpoint.", "rejected"),
    ("kubesvc_proxy_datagrams_in_total", "counter", "UDP datagrams from clients.", "datagrams_in"),
    ("kubesvc_proxy_datagrams_out_total", "counter", "UDP datagrams back to clients.", "datagrams_out"),
    ("kubesvc_proxy_udp_flows", "gauge", "UDP flows in the flow table.", "flows"),
)


def render(ports: Iterable[tuple[tuple[str, str, str], str, dict[str, int]]], sync: SyncStats, listeners: int, bind_errors: int) -> str:
    """Prometheus text format. ``ports`` yields (spn, protocol, values by PortMetrics slot name)."""
    rows = list(ports)
    out: list[str] = []
    for metric, kind, help_, attr in PER_PORT:
        out.append(f"# HELP {metric} {help_}\n# TYPE {metric} {kind}\n")
        for (ns, svc, port), proto, vals in rows:
            out.append(f"{metric}{{{_labels(ns, svc, port, proto)}}} {vals[attr]}\n")
    h = sync.duration
    name = "kubeproxy_sync_proxy_rules_duration_seconds"
    out.append(f"# HELP {name} Snapshot-to-applied sync latency.\n# TYPE {name} histogram\n")
    for b, c in zip(BUCKETS, h.counts, strict=True):
        out.append(f'{name}_bucket{{le="{b}"}} {c}\n')
    out.append(f'{name}_bucket{{le="+Inf"}} {h.count}\n{name}_sum {h.sum:.6f}\n{name}_count {h.count}\n')
    out.append("# HELP kubeproxy_sync_proxy_rules_last_timestamp_seconds Time of the last sync.\n")
    out.append(f"# TYPE kubeproxy_sync_proxy_rules_last_timestamp_seconds gauge\nkubeproxy_sync_proxy_rules_last_timestamp_seconds {sync.last_timestamp:.3f}\n")
    out.append(f"# HELP kubesvc_proxy_listeners Listening sockets.\n# TYPE kubesvc_proxy_listeners gauge\nkubesvc_proxy_listeners {listeners}\n")
    out.append("# HELP kubesvc_proxy_bind_errors Addresses that could not be bound.\n# TYPE kubesvc_proxy_bind_errors gauge\n"
               f"kubesvc_proxy_bind_errors {bind_errors}\n")
    return "".join(out)

