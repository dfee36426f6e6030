"""Container probes: tcpSocket, httpGet and exec, with the kubelet's thresholds (pkg/kubelet/prober).

Rules kept here:
- ``initialDelaySeconds`` (0) before the first probe, then one every ``periodSeconds`` (10), each
  bounded by ``timeoutSeconds`` (1). A result flips only after ``successThreshold`` (1) consecutive
  successes or ``failureThreshold`` (3) consecutive failures.
- Readiness starts as failure (not ready until it passes); liveness and startup start as success.
- httpGet: host defaults to the pod IP, port may name a container port, success is 200 <= code < 400;
  HTTPS is not verified (as the kubelet). tcpSocket: a completed connect is success. exec: exit 0,
  run with the container's environment, working directory, user and (netns) namespace. grpc probes
  are reported unsupported.
``Tally`` is pure; ``run_probe`` does one probe and returns (ok, message).
"""

from __future__ import annotations

import asyncio
import os
import ssl
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]


@dataclass
class Tally:
    success_threshold: int
    failure_threshold: int
    result: bool
    successes: int = 0
    failures: int = 0

    @classmethod
    def for_probe(cls, probe: Obj, kind: str) -> Tally:
        return cls(int(probe.get("successThreshold") or 1), int(probe.get("failureThreshold") or 3),
                   result=kind != "readiness")

    def record(self, ok: bool) -> bool:
        """Record one probe result; returns True when the overall result flipped."""
        if ok:
            self.successes, self.failures = self.successes + 1, 0
            if not self.result and self.successes >= self.success_threshold:
                self.result = True
                return True
        else:
            self.failures, self.successes = self.failures + 1, 0
            if self.result and self.failures >= self.failure_threshold:
                self.result = False
                return True
        return False


def timing(probe: Obj) -> tuple[float, float, float]:
    """(initial delay, period, timeout) in seconds."""
    return (float(probe.get("initialDelaySeconds") or 0), float(probe.get("periodSeconds") or 10),
            float(probe.get("timeoutSeconds") or 1))


def resolve_port(port: Any, container: Obj) -> int:
    if isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ValueError(f'port "{port}" is not a named port of the container')


async def run_probe(probe: Obj, container: Obj, pod_ip: str, env: dict[str, str], cwd: str,
                    wrap: list[str] | None = None, user: dict[str, Any] | None = None) -> tuple[bool, str]:
    """``wrap``/``user``: the container's argv prefix and change of user, which exec probes share."""
    _, _, timeout = timing(probe)
    try:
        async with asyncio.timeout(timeout):
            if "tcpSocket" in probe:
                return await _tcp(probe["tcpSocket"] or {}, container, pod_ip)
            if "httpGet" in probe:
                return await _http(probe["httpGet"] or {}, container, pod_ip)
            if "exec" in probe:
                return await _exec(probe["exec"] or {}, env, cwd, wrap or [], user or {})
            return False, "unsupported probe handler (kubesvc runs tcpSocket, httpGet and exec)"
    except TimeoutError:
        return False, f"timeout after {timeout:g}s"
    except (OSError, ValueError) as e:
        return False, str(e) or e.__class__.__name__


async def _tcp(spec: Obj, container: Obj, pod_ip: str) -> tuple[bool, str]:
    host, port = spec.get("host") or pod_ip, resolve_port(spec.get("port"), container)
    _, writer = await asyncio.open_connection(host, port)
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return True, ""


async def _http(spec: Obj, container: Obj, pod_ip: str) -> tuple[bool, str]:
    host, port = spec.get("host") or pod_ip, resolve_port(spec.get("port"), container)
    path = spec.get("path") or "/"
    ctx = None
    if (spec.get("scheme") or "HTTP").upper() == "HTTPS":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    reader, writer = await asyncio.open_connection(host, port, ssl=ctx)
    try:
        headers = {"Host": f"{host}:{port}", "User-Agent": "kube-probe/1.32", "Accept": "*/*", "Connection": "close"}
        for h in spec.get("httpHeaders") or []:
            headers[h.get("name", "")] = h.get("value", "")
        req = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        writer.write(req.encode())
        await writer.drain()
        line = await reader.readline()
    finally:
        writer.close()
    parts = line.decode(errors="replace").split()
    if len(parts) < 2 or not parts[1].isdigit():
        return False, "malformed HTTP response"
    code = int(parts[1])
    if 200 <= code < 400:
        return True, ""
    return False, f"HTTP probe failed with statuscode: {code}"


async def _exec(spec: Obj, env: dict[str, str], cwd: str, wrap: list[str], user: dict[str, Any]) -> tuple[bool, str]:
    argv = [str(a) for a in spec.get("command") or []]
    if not argv:
        return False, "exec probe without a command"
    proc = await asyncio.create_subprocess_exec(*wrap, *argv, env=env, cwd=cwd, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT, start_new_session=True, **user)
    try:
        out, _ = await proc.communicate()
    except asyncio.CancelledError:
        try:
            os.killpg(proc.pid, 9)
        except ProcessLookupError:
            pass
        await proc.wait()
        raise
    if proc.returncode == 0:
        return True, ""
    text = out.decode(errors="replace").strip()[:200]
    return False, f"command {argv!r} exited with {proc.returncode}" + (f": {text}" if text else "")
