"""Pure: which images kubesvc runs natively, and which Pods the node agent (``kubesvc kubelet``) runs.

Rules kept here (how each image runs is in ``kubesvc.dataplane.kubelet.images``):
- An image reference is matched by its repository's last path component, ignoring the registry, the
  tag and the digest: ``registry.k8s.io/e2e-test-images/agnhost:2.53`` and ``agnhost`` are both
  ``agnhost``; ``docker.io/library/nginx@sha256:...`` is ``nginx``.
- The node agent runs a Pod when one of its containers has ``command`` or ``args``, when the Pod is
  controller-owned (made from a template: never a registered backend), or when every container's image
  is one kubesvc runs natively. Other Pods without a command stay registered backends.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

# repository name -> the family that says how it runs (see kubesvc.dataplane.kubelet.images)
NATIVE: dict[str, str] = {
    "agnhost": "agnhost",
    "pause": "pause",
    "serve_hostname": "serve_hostname",
    "busybox": "shell",
    "alpine": "shell",
    "debian": "shell",
    "ubuntu": "shell",
    "jessie-dnsutils": "shell",
    "dnsutils": "shell",
    "curl": "curl",
    "python": "python",
    "nginx": "nginx",
    "nginx-unprivileged": "nginx",
    "httpd": "httpd",
}


def repo_name(image: str) -> str:
    """The repository's last path component, lower-case, without registry, tag or digest."""
    ref = (image or "").strip().split("@", 1)[0]
    last = ref.rsplit("/", 1)[-1]
    return last.split(":", 1)[0].lower()


def family(image: str) -> str | None:
    return NATIVE.get(repo_name(image))


def controller_owned(pod: Obj) -> bool:
    refs = (pod.get("metadata") or {}).get("ownerReferences") or []
    return any(isinstance(r, dict) and r.get("controller") is True for r in refs)


def has_command(pod: Obj) -> bool:
    return any(c.get("command") or c.get("args") for c in (pod.get("spec") or {}).get("containers") or [])


def all_native(pod: Obj) -> bool:
    containers = (pod.get("spec") or {}).get("containers") or []
    return bool(containers) and all(family(str(c.get("image") or "")) for c in containers)


def kubelet_runs(pod: Obj) -> bool:
    """Whether the node agent takes this Pod (see the module rules)."""
    return has_command(pod) or controller_owned(pod) or all_native(pod)
