"""Pure: the node agent's view of each container -> the Pod's status, as the kubelet writes it.

Rules kept here (pkg/kubelet/kubelet_pods.go getPhase, generateAPIPodStatus; status/generate.go):
- Phase: Pending while a container has never run; Running while one runs (or all stopped and the
  policy restarts them); with all stopped: Never -> Failed if any failed else Succeeded; OnFailure ->
  Succeeded when all succeeded, else Running (restarting); Always -> Running.
- A container is ready when it runs and its readiness probe (if any) last passed its threshold.
- Conditions PodReadyToStartContainers, Initialized, Ready, ContainersReady, PodScheduled; Ready is
  ContainersReady and phase Running. lastTransitionTime moves only when a condition's status changes.
- containerStatuses carry state, lastState (the previous termination), restartCount, ready, started,
  image, imageID (empty: images are not pulled) and containerID ``process://<pid>``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]


@dataclass
class ContainerView:
    name: str
    image: str = ""
    state: str = "waiting"  # waiting | running | terminated
    reason: str = "ContainerCreating"
    message: str = ""
    started_at: str = ""
    finished_at: str = ""
    exit_code: int = 0
    signal: int = 0
    pid: int = 0
    restart_count: int = 0
    ready: bool = False
    started: bool = False
    last_terminated: Obj | None = None
    ever_ran: bool = False
    extra: Obj = field(default_factory=dict)

    def terminated_dict(self) -> Obj:
        t: Obj = {"exitCode": self.exit_code, "reason": self.reason or ("Completed" if self.exit_code == 0 else "Error"),
                  "startedAt": self.started_at or None, "finishedAt": self.finished_at or None,
                  "containerID": f"process://{self.pid}" if self.pid else None}
        if self.signal:
            t["signal"] = self.signal
        if self.message:
            t["message"] = self.message
        return {k: v for k, v in t.items() if v is not None}

    def to_status(self) -> Obj:
        if self.state == "running":
            state: Obj = {"running": {"startedAt": self.started_at}}
        elif self.state == "terminated":
            state = {"terminated": self.terminated_dict()}
        else:
            w: Obj = {"reason": self.reason}
            if self.message:
                w["message"] = self.message
            state = {"waiting": w}
        out: Obj = {
            "name": self.name, "image": self.image, "imageID": "", "ready": self.ready,
            "restartCount": self.restart_count, "started": self.state == "running" and self.started,
            "state": state, "lastState": {"terminated": self.last_terminated} if self.last_terminated else {},
        }
        if self.pid:
            out["containerID"] = f"process://{self.pid}"
        return out


def phase(views: list[ContainerView], policy: str) -> str:
    if any(v.state == "waiting" and not v.ever_ran for v in views):
        return "Pending"
    if any(v.state == "running" for v in views):
        return "Running"
    stopped = [v for v in views if v.state == "terminated" or (v.state == "waiting" and v.ever_ran)]
    if len(stopped) == len(views):
        failed = any(_last_exit(v) != 0 for v in views)
        if policy == "Never":
            return "Failed" if failed else "Succeeded"
        if policy == "OnFailure":
            return "Running" if failed else "Succeeded"
        return "Running"
    return "Pending"


def _last_exit(v: ContainerView) -> int:
    if v.state == "terminated":
        return v.exit_code
    return int((v.last_terminated or {}).get("exitCode", 0))


def _condition(kind: str, ok: bool, prev: dict[str, Obj], now: str, reason: str = "", message: str = "") -> Obj:
    status = "True" if ok else "False"
    old = prev.get(kind)
    when = old.get("lastTransitionTime") if old and old.get("status") == status else now
    c: Obj = {"type": kind, "status": status, "lastProbeTime": None, "lastTransitionTime": when}
    if not ok and reason:
        c["reason"] = reason
        if message:
            c["message"] = message
    return c


def compose(pod: Obj, views: list[ContainerView], *, pod_ip: str, host_ip: str, start_time: str, now: str,
            node_stopped: bool = False) -> Obj:
    spec = pod.get("spec") or {}
    prev_status = pod.get("status") or {}
    prev: dict[str, dict[str, Any]] = {str(c.get("type")): c for c in prev_status.get("conditions") or [] if isinstance(c, dict)}
    ph = phase(views, spec.get("restartPolicy", "Always"))
    unready = [v.name for v in views if not v.ready]
    containers_ready = not unready and not node_stopped
    ready = containers_ready and ph == "Running"
    if node_stopped:
        why, msg = "NodeAgentStopped", "the node agent (kubesvc kubelet) stopped this pod's containers"
    elif unready:
        why, msg = "ContainersNotReady", "containers with unready status: [" + " ".join(unready) + "]"
    else:
        why, msg = "PodCompleted", ""
    conditions = [
        _condition("PodReadyToStartContainers", not node_stopped, prev, now),
        _condition("Initialized", True, prev, now),
        _condition("Ready", ready, prev, now, why, msg),
        _condition("ContainersReady", containers_ready, prev, now, why, msg),
        _condition("PodScheduled", True, prev, now),
    ]
    status: Obj = {
        "phase": ph,
        "conditions": conditions,
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}] if pod_ip else [],
        "startTime": start_time,
        "containerStatuses": [v.to_status() for v in views],
        "qosClass": prev_status.get("qosClass", "BestEffort"),
    }
    return status
