"""YAML request bodies (``application/yaml``, ``application/apply-patch+yaml``) go through the manifests' reader
(kubesvc/api/yamlload.py): YAML 1.1 as kubectl reads it, and an alias bomb is a 400 before anything expands."""

from __future__ import annotations

from tests.apiserver.fixtures import *  # noqa: F403
from tests.apiserver.fixtures import Api

SVC = """apiVersion: v1
kind: Service
metadata:
  name: {name}
  namespace: {ns}
  annotations:
    mode: 0755
spec:
  ports:
  - port: 80
    targetPort: 0x1F90
"""

BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True))


def test_a_yaml_body_is_read_as_yaml_1_1(api: Api, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/services"
    code, _, status = api.request("POST", path, SVC.format(name="web", ns=ns).encode(), {"Content-Type": "application/yaml"})
    # 0755 is the integer 493 in YAML 1.1, and an annotation must be a string: refused as the apiserver refuses it
    assert (code, status["reason"]) == (400, "BadRequest"), status
    assert "cannot unmarshal number into Go struct field ObjectMeta.metadata.annotations of type string" in status["message"]
    body = SVC.format(name="web", ns=ns).replace("0755", '"0755"')
    code, _, svc = api.request("PATCH", f"{path}/web?fieldManager=test", body.encode(),
                               {"Content-Type": "application/apply-patch+yaml"})
    assert code == 201, svc
    assert svc["spec"]["ports"][0]["targetPort"] == 8080 and svc["metadata"]["annotations"]["mode"] == "0755"


def test_an_alias_bomb_body_is_a_bad_request(api: Api, ns: str) -> None:
    before = api.revision()
    code, _, status = api.request("PATCH", f"/api/v1/namespaces/{ns}/services/bomb?fieldManager=test", BOMB.encode(),
                                  {"Content-Type": "application/apply-patch+yaml"})
    assert (code, status["reason"]) == (400, "BadRequest"), status
    assert status["message"].endswith("error converting YAML to JSON: yaml: document contains excessive aliasing")
    assert api.revision() == before
