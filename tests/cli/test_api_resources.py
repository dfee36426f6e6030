"""`kubesvc api-resources` and `api-versions` print what kubectl prints from `kubesvc apiserver`'s discovery,
and every kind of kubesvc/api/kinds.py is listed."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from kubesvc.api.kinds import KINDS
from tests.apiserver.fixtures import *  # noqa: F403
from tests.apiserver.fixtures import Api, needs_kubectl
from tests.cli.conftest import Run


@needs_kubectl
@pytest.mark.parametrize("args", [
    [], ["-o", "wide"], ["-o", "name"], ["--namespaced=false"], ["--namespaced=true", "-o", "name"],
    ["--api-group=apps", "--sort-by=kind"], ["--api-group="], ["--api-group=nope"], ["--sort-by=name"],
    ["--verbs=deletecollection", "--namespaced=true", "-o", "name"], ["--categories=all"], ["--no-headers"],
    ["--verbs=create,list", "--api-group=apps", "-o", "wide", "--no-headers"], ["--sort-by=foo"], ["-o", "json"],
], ids=lambda a: " ".join(a) or "plain")
def test_api_resources_same_as_kubectl(api: Api, args: list[str]) -> None:
    k, s = api.kubectl("api-resources", *args), api.cli("api-resources", *args)
    assert (s.code, s.out, s.err) == (k.code, k.out, k.err)


@needs_kubectl
def test_api_versions_same_as_kubectl(api: Api) -> None:
    k, s = api.kubectl("api-versions"), api.cli("api-versions")
    assert (s.code, s.out) == (0, k.out)


def test_every_kind_listed(cli: Callable[..., Run]) -> None:
    names = cli("api-resources", "-o", "name").out.split()
    assert sorted(names) == sorted(k.resource for k in KINDS)
    wide = cli("api-resources", "-o", "wide").out.splitlines()
    assert wide[0].split() == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND", "VERBS", "CATEGORIES"]
    pods = next(line.split() for line in wide if line.startswith("pods "))
    assert pods == ["pods", "po", "v1", "true", "Pod", "create,delete,deletecollection,get,list,patch,update,watch", "all"]
    assert cli("api-resources", "-o", "yaml").err == "error: --output yaml is not available\n"
