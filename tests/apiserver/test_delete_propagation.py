"""DeleteOptions.propagationPolicy through the API server (kubectl delete --cascade=...), as the garbage collector
reads it: Orphan keeps dependents and drops their reference, Background deletes them."""

from __future__ import annotations

import json

from tests.apiserver.fixtures import *  # noqa: F403
from tests.apiserver.fixtures import Api, needs_kubectl


def _owner_and_dependent(api: Api, ns: str, owner: str, dep: str) -> None:
    r = api.kubectl("-n", ns, "create", "configmap", owner, "--from-literal=a=b", "-o", "json")
    assert r.code == 0, r.err
    uid = json.loads(r.out)["metadata"]["uid"]
    manifest = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"x": "y"},
                "metadata": {"name": dep, "ownerReferences": [
                    {"apiVersion": "v1", "kind": "ConfigMap", "name": owner, "uid": uid}]}}
    r = api.kubectl("-n", ns, "create", "-f", "-", input=json.dumps(manifest))
    assert r.code == 0, r.err


@needs_kubectl
def test_cascade_orphan_keeps_the_dependent_without_its_owner_reference(api: Api, ns: str) -> None:
    _owner_and_dependent(api, ns, "owner", "dep")
    r = api.kubectl("-n", ns, "delete", "configmap", "owner", "--cascade=orphan")
    assert r.code == 0, r.err
    r = api.kubectl("-n", ns, "get", "configmap", "dep", "-o", "json")
    assert r.code == 0, r.err
    assert not json.loads(r.out)["metadata"].get("ownerReferences")


@needs_kubectl
def test_cascade_background_deletes_the_dependent(api: Api, ns: str) -> None:
    _owner_and_dependent(api, ns, "owner2", "dep2")
    r = api.kubectl("-n", ns, "delete", "configmap", "owner2", "--cascade=background")
    assert r.code == 0, r.err
    r = api.kubectl("-n", ns, "get", "configmap", "dep2", "--ignore-not-found", "-o", "name")
    assert r.code == 0 and r.out.strip() == "", (r.out, r.err)
