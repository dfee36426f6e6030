"""Container lifecycle hooks: ``lifecycle.preStop`` (pkg/kubelet/lifecycle, kuberuntime's killContainer).

Rules kept here:
- Run when a pod is deleted gracefully (it has a ``deletionTimestamp``), before SIGTERM, with the deletion's
  grace period as the hook's deadline; the time it takes is taken from the grace period, and the container
  keeps at least 2 s (upstream's ``minimumGracePeriodInSeconds``) between SIGTERM and SIGKILL.
- ``exec``: the command runs as the container does (its user, environment, working directory, network
  namespace: the probes' exec path); a non-zero exit is a failure. ``httpGet``: a GET to ``host`` (default
  the pod IP) on the port (a number or the container's port name); only a failed request is a failure, the
  response's status is not judged (upstream's lifecycle handler). ``sleep``: ``seconds``. ``tcpSocket`` is
  deprecated upstream and never run as a hook: it is skipped.
- A failed or timed-out hook does not stop the termination: the ``FailedPreStopHook`` Warning event says
  why, in upstream's wording.
"""

from __future__ import annotations

import asyncio
from typing import Any

from kubesvc.dataplane.kubelet import probes

Obj = dict[str, Any]
MINIMUM_GRACE = 2.0


async def pre_stop(hook: Obj, container: Obj, pod_ip: str, env: dict[str, str], cwd: str, wrap: list[str],
                   user: dict[str, Any], grace: float, who: str) -> str:
    """Run one preStop handler within ``grace`` seconds. Returns "" or why it failed (the event's message);
    ``who``: 'for Container "c" in Pod "name_ns(uid)"'."""
    try:
        async with asyncio.timeout(grace):
            if "exec" in hook:
                ok, msg = await probes._exec(hook["exec"] or {}, env, cwd, wrap, user)
                cmd = [str(a) for a in (hook["exec"] or {}).get("command") or []]
                return "" if ok else f"Exec lifecycle hook ({cmd}) {who} failed - error: {msg}"
            if "httpGet" in hook:
                spec = hook["httpGet"] or {}
                try:
                    await probes._http(spec, container, pod_ip)
                except (OSError, ValueError) as e:
                    host = spec.get("host") or pod_ip
                    return f"HTTP lifecycle hook ({spec.get('path') or '/'}) {who} failed - error: Get http://{host}:{spec.get('port')}: {e}"
                return ""
            if "sleep" in hook:
                await asyncio.sleep(float((hook["sleep"] or {}).get("seconds") or 0))
                return ""
            return ""
    except TimeoutError:
        return f"PreStopHook {who} did not finish within the grace period ({grace:g}s)"
