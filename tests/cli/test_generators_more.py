"""`kubesvc create deployment|job|cronjob|ingress|serviceaccount` generators, byte-identical to
`kubectl create ... --dry-run=client -o yaml|json` for the same flags (kubectl needs no server for these),
their validation messages, and the objects created in the store."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable

import pytest

from tests.cli.conftest import Run

KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")

CASES = [
    ["create", "deployment", "web", "--image=nginx"],
    ["create", "deployment", "web", "--image=nginx", "--image=redis:7", "--port=80", "-r", "3"],
    ["create", "deployment", "web", "--image=nginx,busybox", "-n", "shop"],
    ["create", "deployment", "web", "--image=registry:5000/team/app@sha256:abc", "--", "sleep", "10"],
    ["create", "job", "once", "--image=busybox"],
    ["create", "job", "once", "--image=busybox", "--", "echo", "-n", "hi"],
    ["create", "cronjob", "tick", "--image=busybox", "--schedule=*/1 * * * *"],
    ["create", "cronjob", "tick", "--image=busybox", "--schedule=0 0 * * *", "--restart=Never", "--", "date"],
    ["create", "serviceaccount", "robot", "-n", "shop"],
    ["create", "sa", "robot"],
    ["create", "ingress", "simple", "--rule=foo.com/bar=svc1:8080,tls=my-cert"],
    ["create", "ingress", "multi", "--class=nginx", "--rule=foo.com/=svc:http,tls", "--rule=foo.com/admin*=admin:8080",
     "--rule=bar.com/*=svc2:80,tls=my-cert", "--annotation=a=b", "--annotation=c="],
    ["create", "ingress", "dflt", "--default-backend=defaultsvc:http", "--rule=/path=svc:port"],
    ["create", "namespace", "shop"],
]

ERRORS = [
    (["create", "deployment", "web", "--image=a", "--image=b", "--", "cmd"], "error: cannot specify multiple --image options and command\n"),
    (["create", "job", "j"], "error: either --image or --from must be specified\n"),
    (["create", "job", "j", "--image=x", "--from=cronjob/c"], "error: either --image or --from must be specified\n"),
    (["create", "ingress", "ing"], "error: not enough information provided: every ingress has to either specify a "
     "default-backend (which catches all traffic) or a list of rules (which catch specific paths)\n"),
    (["create", "ingress", "ing", "--rule=bad"], "error: rule bad is invalid and should be in format "
     "host/path=svcname:svcport[,tls[=secret]]\n"),
    (["create", "ingress", "ing", "--default-backend=svc"], "error: default-backend should be in format servicename:serviceport\n"),
    (["create", "ingress", "ing", "--rule=/=s:80", "--annotation=x"], "error: annotation x is invalid and should be in format key=[value]\n"),
]


def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
    assert KUBECTL is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
    env["KUBECONFIG"] = os.devnull
    return subprocess.run([KUBECTL, *args], capture_output=True, text=True, env=env, timeout=30)


def _with_flags(case: list[str], *flags: str) -> list[str]:
    """Flags go before a ``--`` (after it they would be the container's command)."""
    if "--" in case:
        i = case.index("--")
        return [*case[:i], *flags, *case[i:]]
    return [*case, *flags]


@needs_kubectl
@pytest.mark.parametrize("fmt", ["yaml", "json"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: " ".join(c[1:4]))
def test_dry_run_output_is_kubectls(cli: Callable[..., Run], case: list[str], fmt: str) -> None:
    args = _with_flags(case, "--dry-run=client", "-o", fmt)
    want = kubectl(*args)
    assert want.returncode == 0, want.stderr
    got = cli(*args)
    assert got.code == 0, got.err
    assert got.out == want.stdout


@needs_kubectl
@pytest.mark.parametrize("case", CASES[:6], ids=lambda c: " ".join(c[1:4]))
def test_dry_run_line_is_kubectls(ks: Callable[..., Run], case: list[str]) -> None:
    args = _with_flags(case, "--dry-run=client")
    want, got = kubectl(*args), ks(*args)
    assert (got.code, got.out) == (0, want.stdout)


def test_deployment_yaml_exact(cli: Callable[..., Run]) -> None:
    """The generator's text itself (also where kubectl is not installed)."""
    r = cli("create", "deployment", "web", "--image=nginx:1.25", "--port=80", "--dry-run=client", "-o", "yaml")
    assert r.out == """apiVersion: apps/v1
kind: Deployment
metadata:
  creationTimestamp: null
  labels:
    app: web
  name: web
spec:
  replicas: 1
  selector:
    matchLabels:
      app: web
  strategy: {}
  template:
    metadata:
      creationTimestamp: null
      labels:
        app: web
    spec:
      containers:
      - image: nginx:1.25
        name: nginx
        ports:
        - containerPort: 80
        resources: {}
status: {}
"""


def test_container_name_from_dotted_image_is_sanitized(cli: Callable[..., Run]) -> None:
    r = cli("create", "deployment", "d", "--image=my.repo_x:1", "--dry-run=client", "-o", "jsonpath={.spec.template.spec.containers[0].name}")
    assert r.code == 0 and r.out.startswith("my-repo-x-") and len(r.out) == len("my-repo-x-") + 5


@pytest.mark.parametrize("args,err", ERRORS, ids=lambda a: " ".join(a) if isinstance(a, list) else "")
def test_validation_messages(cli: Callable[..., Run], args: list[str], err: str) -> None:
    r = cli(*_with_flags(args, "--dry-run=client"))
    assert (r.code, r.out, r.err) == (1, "", err)
    if KUBECTL:
        assert kubectl(*_with_flags(args, "--dry-run=client")).stderr == err


def test_required_flags(cli: Callable[..., Run]) -> None:
    assert cli("create", "deployment", "web").err == 'error: required flag(s) "image" not set\n'
    assert cli("create", "cronjob", "c", "--image=x").err == 'error: required flag(s) "schedule" not set\n'


def test_created_in_the_store_and_already_exists(ks: Callable[..., Run]) -> None:
    assert ks("create", "deployment", "web", "--image=nginx", "--replicas=2").out == "deployment.apps/web created\n"
    r = ks("get", "deploy", "web", "-o", "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image}")
    assert r.out == "2 nginx"
    r = ks("create", "deployment", "web", "--image=nginx")
    assert (r.code, r.err) == (1, 'error: failed to create deployment: deployments.apps "web" already exists\n')
    assert ks("create", "job", "once", "--image=busybox", "--", "true").out == "job.batch/once created\n"
    assert ks("create", "cronjob", "tick", "--image=busybox", "--schedule=* * * * *").out == "cronjob.batch/tick created\n"
    assert ks("create", "sa", "robot").out == "serviceaccount/robot created\n"
    assert ks("create", "ingress", "ing", "--rule=foo.com/=web:80").out == "ingress.networking.k8s.io/ing created\n"
    r = ks("create", "deployment", "BAD", "--image=x")
    assert r.code == 1 and r.err.startswith('error: failed to create deployment: Deployment "BAD" is invalid: metadata.name')
    # a job from the stored cronjob: its template, owned by it, annotated as a manual run
    r = ks("create", "job", "manual", "--from=cronjob/tick", "--dry-run=client", "-o",
           "jsonpath={.metadata.annotations} {.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name} "
           "{.spec.template.spec.containers[0].image}")
    assert r.out == '{"cronjob.kubernetes.io/instantiate":"manual"} CronJob/tick busybox', r.err
    r = ks("create", "job", "manual", "--from=cronjob/nope")
    assert (r.code, r.err) == (1, 'Error from server (NotFound): cronjobs.batch "nope" not found\n')
