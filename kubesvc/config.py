"""Cluster settings: one frozen dataclass, stored in the store, set by `kubesvc init` before first use.

Defaults (loopback on purpose, so the proxy binds cluster IPs without privileges on Linux):
service range 127.96.0.0/12, NodePorts 30000-32767, load-balancer pool 127.240.0.0/16,
pod range 127.244.0.0/16, cluster domain cluster.local.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

DEFAULTS = {
    "service_cluster_ip_range": "127.96.0.0/12",
    "service_node_port_range": "30000-32767",
    "load_balancer_ip_pool": "127.240.0.0/16",
    "pod_ip_range": "127.244.0.0/16",
    "cluster_domain": "cluster.local",
}


@dataclass(frozen=True)
class Settings:
    service_cluster_ip_range: str = DEFAULTS["service_cluster_ip_range"]
    service_node_port_range: str = DEFAULTS["service_node_port_range"]
    load_balancer_ip_pool: str = DEFAULTS["load_balancer_ip_pool"]
    pod_ip_range: str = DEFAULTS["pod_ip_range"]
    cluster_domain: str = DEFAULTS["cluster_domain"]

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, str]) -> Settings:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @property
    def node_port_range(self) -> tuple[int, int]:
        lo, _, hi = self.service_node_port_range.partition("-")
        return int(lo), int(hi)


def default_store_path() -> str:
    """``--store`` > ``$KUBESVC_STORE`` > ``~/.kubesvc/store.db`` (the flag is applied by the CLI)."""
    env = os.environ.get("KUBESVC_STORE")
    if env:
        return env
    return str(Path.home() / ".kubesvc" / "store.db")
