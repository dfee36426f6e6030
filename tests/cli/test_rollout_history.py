"""`kubesvc rollout history|pause|resume` print what kubectl prints for the same Deployment and ReplicaSets
(revisions and change causes read from the ReplicaSets' annotations)."""

from __future__ import annotations

import pytest

from tests.apiserver.fixtures import *  # noqa: F403
from tests.apiserver.fixtures import Api, needs_kubectl

RS = """apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: web-r{rev}
  annotations:
    deployment.kubernetes.io/revision: "{rev}"
{cause}
  labels: {{app: web, pod-template-hash: r{rev}}}
  ownerReferences: [{{apiVersion: apps/v1, kind: Deployment, name: web, uid: "{uid}", controller: true}}]
spec:
  replicas: 0
  selector: {{matchLabels: {{app: web, pod-template-hash: r{rev}}}}}
  template:
    metadata:
      labels: {{app: web, pod-template-hash: r{rev}}}
      annotations: {{note: "rev {rev}"}}
    spec:
      containers: [{{name: nginx, image: "nginx:1.{rev}", ports: [{{containerPort: 80}}], env: [{{name: A, value: b}}]}}]
"""


@pytest.fixture(scope="module")
def history(api: Api) -> str:
    """One namespace for the module (its tests read, dry-run, or leave the Deployment as they found it)."""
    ns = "rollout-history"
    assert api.cli("create", "namespace", ns).code == 0
    assert api.cli("create", "deployment", "web", "--image=nginx", "-n", ns).code == 0
    assert api.cli("create", "deployment", "empty", "--image=nginx", "-n", ns).code == 0
    # the revision annotation the deployment controller keeps (kubectl's server-side undo patches the annotations)
    assert api.cli("annotate", "deploy", "web", "deployment.kubernetes.io/revision=10", "-n", ns).code == 0
    uid = api.cli("get", "deploy", "web", "-n", ns, "-o", "jsonpath={.metadata.uid}").out
    for rev in (1, 2, 3, 10):
        cause = "    kubernetes.io/change-cause: kubectl set image deploy/web nginx=nginx:1.2" if rev == 2 else ""
        r = api.cli("create", "-n", ns, "-f", "-", input=RS.format(rev=rev, uid=uid, cause=cause))
        assert r.code == 0, r.err
    return ns


def same(api: Api, *args: str) -> str:
    k, s = api.kubectl(*args), api.cli(*args)
    assert (s.code, s.out, s.err) == (k.code, k.out, k.err), f"kubectl: {k}\nkubesvc: {s}"
    return s.out


@needs_kubectl
def test_history_table(api: Api, history: str) -> None:
    out = same(api, "rollout", "history", "deploy/web", "-n", history)
    assert out.splitlines()[:3] == ["deployment.apps/web ", "REVISION  CHANGE-CAUSE", "1         <none>"]
    assert "2         kubectl set image deploy/web nginx=nginx:1.2" in out
    same(api, "rollout", "history", "deployment", "empty", "-n", history)


@needs_kubectl
@pytest.mark.parametrize("rev", ["1", "2", "10", "9"])
def test_history_revision(api: Api, history: str, rev: str) -> None:
    same(api, "rollout", "history", "deploy/web", f"--revision={rev}", "-n", history)


@needs_kubectl
def test_history_other_forms(api: Api, history: str) -> None:
    same(api, "rollout", "history", "deploy/web", "-o", "name", "-n", history)
    same(api, "rollout", "history", "svc/web", "-n", history)
    same(api, "rollout", "history", "deploy/nope", "-n", history)


@needs_kubectl
def test_pause_resume(api: Api, history: str) -> None:
    ns = ["-n", history]
    assert api.cli("rollout", "pause", "deploy/web", *ns).out == "deployment.apps/web paused\n"
    assert api.kubectl("get", "deploy", "web", "-o", "jsonpath={.spec.paused}", *ns).out == "true"
    same(api, "rollout", "pause", "deploy/web", *ns)
    r = api.cli("rollout", "restart", "deploy/web", *ns)
    assert r.code == 1 and "can't restart paused deployment" in r.err
    assert api.cli("rollout", "resume", "deploy/web", *ns).out == "deployment.apps/web resumed\n"
    same(api, "rollout", "resume", "deploy/web", *ns)
    assert api.kubectl("rollout", "pause", "deploy/web", *ns).code == 0
    assert api.cli("rollout", "resume", "deploy/web", *ns).out == "deployment.apps/web resumed\n"


@needs_kubectl
@pytest.mark.parametrize("args", [
    ["--to-revision=3", "--dry-run=client"], ["--to-revision=2", "--dry-run=client"], ["--dry-run=client"],
    ["--to-revision=3", "--dry-run=server"], ["--to-revision=3", "-o", "name", "--dry-run=client"],
    ["--to-revision=9", "--dry-run=client"],
], ids=lambda a: " ".join(a))
def test_undo_dry_runs(api: Api, history: str, args: list[str]) -> None:
    before = api.cli("get", "deploy", "web", "-n", history, "-o", "json").out
    same(api, "rollout", "undo", "deploy/web", *args, "-n", history)
    same(api, "rollout", "undo", "deploy/empty", "--dry-run=client", "-n", history)
    assert api.cli("get", "deploy", "web", "-n", history, "-o", "json").out == before
