"""Helpers for the DNS tests: a running `kubesvc dns`, dig as the client, tiny loopback upstream servers.

No test ever forwards to the host's resolvers: every server gets ``--resolv-conf`` naming a loopback upstream.
"""

from __future__ import annotations

import re
import selectors
import socket
import struct
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

from kubesvc.registry.generic import Registry
from kubesvc.store.db import Store
from tests.support.procs import Proc, ready_fields

# ------------------------------------------------------------------------------------------ store


class Cluster:
    """Writes objects through the real registry into the test's SQLite file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.store = Store(path)
        self.reg = Registry(self.store)

    def apply(self, *objs: dict[str, Any]) -> None:
        for o in objs:
            self.reg.apply(o)

    def delete(self, kind: str, name: str, ns: str = "default") -> None:
        self.reg.delete(kind, ns, name)

    def close(self) -> None:
        self.store.close()


def service(name: str, ns: str = "default", ports: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    s: dict[str, Any] = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns}, "spec": dict(spec)}
    if ports is not None:
        s["spec"]["ports"] = ports
    elif spec.get("type") != "ExternalName":
        s["spec"]["ports"] = [{"name": "http", "port": 80, "targetPort": 8080}]
    return s


def pod(name: str, ip: str, labels: dict[str, str], ns: str = "default", ready: bool = True, **spec: Any) -> dict[str, Any]:
    status: dict[str, Any] = {"podIP": ip, "phase": "Running"}
    if not ready:
        status["conditions"] = [{"type": "Ready", "status": "False"}]
    containers = [{"name": "c", "image": "x", "ports": [{"name": "http", "containerPort": 8080}]}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"containers": containers, **spec}, "status": status}


def configmap(data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kube-dns", "namespace": "kube-system"}, "data": data}


# ------------------------------------------------------------------------------------------ server


@dataclass
class Running:
    proc: Proc
    host: str
    port: int
    ready: dict[str, str] = field(default_factory=dict)  # the ready line's fields


@contextmanager
def dns_server(store: str, resolv_conf: str, *args: str) -> Iterator[Running]:
    proc = Proc(store, "dns", "--listen", "127.0.0.1:0", "--resolv-conf", resolv_conf, *args)
    try:
        fields = ready_fields(proc.wait_line("kubesvc dns ready"))
        host, _, port = fields["udp"].rpartition(":")
        yield Running(proc, host, int(port), fields)
    finally:
        proc.stop()


# ------------------------------------------------------------------------------------------ dig


@dataclass
class Dig:
    status: str
    flags: set[str]
    answer: list[str]
    authority: list[str]
    additional: list[str]
    text: str

    def rdata(self, rdtype: str | None = None) -> list[str]:
        """RDATA of the answer lines (optionally of one type), sorted."""
        out = []
        for line in self.answer:
            parts = line.split(None, 4)
            if rdtype is None or parts[3] == rdtype:
                out.append(parts[4])
        return sorted(out)


def dig(port: int, *args: str, host: str = "127.0.0.1", timeout: float = 20) -> Dig:
    cmd = ["dig", f"@{host}", "-p", str(port), "+time=3", "+tries=1", *args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    text = p.stdout
    m = re.search(r"status: (\w+)", text)
    fl = re.search(r";; flags: ([^;]*);", text)
    sections: dict[str, list[str]] = {"ANSWER": [], "AUTHORITY": [], "ADDITIONAL": []}
    current = None
    for line in text.splitlines():
        h = re.match(r";; (\w+) SECTION:", line)
        if h:
            current = h.group(1)
            continue
        if not line.strip() or line.startswith(";"):
            if not line.strip():
                current = None
            continue
        if current in sections:
            sections[current].append(" ".join(line.split()))
    return Dig(m.group(1) if m else f"NO-ANSWER rc={p.returncode} {p.stderr.strip()}", set(fl.group(1).split()) if fl else set(),
               sections["ANSWER"], sections["AUTHORITY"], sections["ADDITIONAL"], text)


# ------------------------------------------------------------------------------------------ upstreams


@dataclass
class Upstream:
    """A tiny authoritative server on 127.0.0.1 (UDP and TCP, same port), run by a thread.

    ``records``: {(name, type): [rdata text]}; unknown names get NXDOMAIN. Modes: ``answer``; ``truncate``
    (UDP replies carry TC and no records, TCP answers in full); ``silent`` (never answers)."""

    records: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    mode: str = "answer"
    ttl: int = 300
    udp_queries: int = 0
    tcp_queries: int = 0

    def __post_init__(self) -> None:
        for _ in range(50):  # the same free port on TCP and UDP
            self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.tcp.bind(("127.0.0.1", 0))
            self.port = self.tcp.getsockname()[1]
            self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                self.udp.bind(("127.0.0.1", self.port))
                break
            except OSError:
                self.tcp.close()
                self.udp.close()
        self.tcp.listen(16)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def reply(self, wire: bytes, tcp: bool) -> bytes | None:
        if self.mode == "silent":
            return None
        q = dns.message.from_wire(wire)
        r = dns.message.make_response(q)
        r.flags |= dns.flags.AA | dns.flags.RA
        qq = q.question[0]
        key = (qq.name.to_text().lower(), dns.rdatatype.to_text(qq.rdtype))
        if self.mode == "truncate" and not tcp:
            r.flags |= dns.flags.TC
            return r.to_wire()
        if key in self.records:
            r.answer.append(dns.rrset.from_text_list(qq.name, self.ttl, "IN", qq.rdtype, self.records[key]))
        elif not any(n == key[0] for n, _ in self.records):
            r.set_rcode(dns.rcode.NXDOMAIN)
        return r.to_wire()

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self.udp, selectors.EVENT_READ, "udp")
        sel.register(self.tcp, selectors.EVENT_READ, "tcp")
        while not self.stopping.is_set():
            for key, _ in sel.select(0.05):
                if key.data == "udp":
                    data, peer = self.udp.recvfrom(65535)
                    self.udp_queries += 1
                    out = self.reply(data, False)
                    if out is not None:
                        self.udp.sendto(out, peer)
                else:
                    conn, _ = self.tcp.accept()
                    with conn:
                        conn.settimeout(2)
                        try:
                            n = struct.unpack("!H", _recv(conn, 2))[0]
                            data = _recv(conn, n)
                        except (OSError, struct.error):
                            continue
                        self.tcp_queries += 1
                        out = self.reply(data, True)
                        if out is not None:
                            conn.sendall(struct.pack("!H", len(out)) + out)
        sel.close()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        self.udp.close()
        self.tcp.close()


def _recv(conn: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise OSError("closed")
        buf += chunk
    return buf


@contextmanager
def upstream(records: dict[tuple[str, str], list[str]] | None = None, mode: str = "answer") -> Iterator[Upstream]:
    u = Upstream(records or {}, mode)
    try:
        yield u
    finally:
        u.stop()


def write_resolv_conf(tmp: Path, nameserver: str = "127.53.0.1") -> str:
    p = tmp / "resolv.conf"
    p.write_text(f"nameserver {nameserver}\n")
    return str(p)
