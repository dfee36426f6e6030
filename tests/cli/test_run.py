"""`kubesvc run` prints what `kubectl run` prints (kubectl asks a server even for --dry-run=client, so it talks
to a real `kubesvc apiserver` over the same store), and creates the same objects."""

from __future__ import annotations

import json

import pytest

from tests.apiserver.fixtures import *  # noqa: F403
from tests.apiserver.fixtures import Api, needs_kubectl

CASES = [
    ["run", "web", "--image=nginx"],
    ["run", "web", "--image=nginx", "--port=80", "--env=A=b", "--env=EMPTY=", "--labels=x=y,z=w"],
    ["run", "web", "--image=nginx:1.2", "--restart=OnFailure", "--image-pull-policy=Always", "--annotations=a=b",
     "--privileged"],
    ["run", "web", "--image=busybox", "--restart=Never", "--dry-run=client", "--command", "--", "sh", "-c", "exit 3"],
    ["run", "web", "--image=busybox", "-n", "other", "--dry-run=client", "--", "a", "b"],
    ["run", "web", "--image=nginx", "--expose", "--port=80"],
    ["run", "web", "--image=nginx", "--labels=app=web", "--expose", "--port=8080"],
]

ERRORS = [
    ["run", "--image=x"],
    ["run", "web", "--image=nginx", "--restart=Bad"],
    ["run", "web", "--image=nginx", "--expose"],
    ["run", "web", "--image=nginx", "--env=A"],
    ["run", "web", "--image=nginx", "--labels=a"],
    ["run", "web", "--image=nginx", "--port=abc"],
]


def _flags(case: list[str], *flags: str) -> list[str]:
    if "--" in case:
        i = case.index("--")
        return [*case[:i], *flags, *case[i:]]
    return [*case, *flags]


@needs_kubectl
@pytest.mark.parametrize("fmt", ["yaml", "json", "name", ""])
@pytest.mark.parametrize("case", CASES, ids=lambda c: " ".join(c[2:5]))
def test_dry_run_is_kubectls(api: Api, case: list[str], fmt: str) -> None:
    args = _flags(case, "--dry-run=client", *(["-o", fmt] if fmt else []))
    k, s = api.kubectl(*args), api.cli(*args)
    assert k.code == 0, k.err
    assert (s.code, s.out) == (0, k.out), s.err


@needs_kubectl
@pytest.mark.parametrize("case", ERRORS, ids=lambda c: " ".join(c[1:]))
def test_errors_are_kubectls(api: Api, case: list[str]) -> None:
    args = _flags(case, "--dry-run=client")
    k, s = api.kubectl(*args), api.cli(*args)
    assert k.code == s.code == 1
    assert s.out == ""
    assert s.err == k.err.replace("kubectl run", "kubesvc run")


def test_run_creates_pod_and_service(api: Api, ns: str) -> None:
    r = api.cli("run", "shop", "--image=nginx", "--port=80", "--expose", "--env=MODE=prod", "-n", ns)
    assert (r.code, r.out) == (0, "service/shop created\npod/shop created\n"), r.err
    pod = json.loads(api.cli("get", "pod", "shop", "-n", ns, "-o", "json").out)
    assert pod["metadata"]["labels"] == {"run": "shop"}
    assert pod["spec"]["containers"][0]["env"] == [{"name": "MODE", "value": "prod"}]
    svc = json.loads(api.cli("get", "svc", "shop", "-n", ns, "-o", "json").out)
    assert svc["spec"]["selector"] == {"run": "shop"} and svc["spec"]["ports"][0]["targetPort"] == 80
    r = api.cli("run", "shop", "--image=nginx", "-n", ns)
    assert (r.code, r.err) == (1, 'Error from server (AlreadyExists): pods "shop" already exists\n')
    assert api.cli("run", "dry", "--image=nginx", "-n", ns, "--dry-run=server").out == "pod/dry created (server dry run)\n"
    assert api.cli("get", "pod", "dry", "-n", ns).code == 1
