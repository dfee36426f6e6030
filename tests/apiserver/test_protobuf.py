"""Protobuf request bodies (application/vnd.kubernetes.protobuf), as kubectl's create generators send them.

- The bodies in tests/apiserver/data were captured from the real kubectl 1.32 (``python -m
  tests.apiserver.pbrecorder``); each decodes to exactly what ``kubectl create ... --dry-run=client -o json``
  prints for the same command. With kubectl installed the capture is also redone live.
- Wire details kubectl's bodies do not reach (negative int32 as 10-byte varints, packed repeated scalars,
  unknown fields of every wire type, Time/MicroTime/IntOrString/Quantity/bytes, autoscaling/v1 Scale) are
  built by hand from the field numbers in the proto files.
- Malformed input (truncations, byte flips, random bytes: hypothesis) is a ``ProtobufError`` from the decoder
  and a 400 Status from the live server, never anything else.
- End to end: the real kubectl creates each object against a live ``kubesvc apiserver`` and ``kubectl get -o
  json`` shows it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubesvc.api import untrusted
from kubesvc.apiserver import pbtables, protobuf
from kubesvc.apiserver.protobuf import ProtobufError, decode
from tests.apiserver import pbrecorder
from tests.apiserver.fixtures import *  # noqa: F403
from tests.apiserver.fixtures import KUBECTL, Api, needs_kubectl

DATA = Path(__file__).parent / "data"
INDEX = json.loads((DATA / "cases.json").read_text())["cases"]
PB_CASES = sorted(p.stem for p in DATA.glob("*.pb"))
PB = "application/vnd.kubernetes.protobuf"
FUZZ = settings(max_examples=int(os.environ.get("KUBESVC_FUZZ_EXAMPLES", "700")), deadline=None,
                derandomize=not os.environ.get("KUBESVC_FUZZ_RANDOM"), suppress_health_check=list(HealthCheck),
                database=None)


# -- a tiny encoder for hand-built bodies -------------------------------------------------------------------

def varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative numbers are 10-byte two's complement varints, as Go writes int32/int64
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def vfield(num: int, value: int) -> bytes:
    return varint(num << 3) + varint(value)


def lfield(num: int, data: bytes | str) -> bytes:
    raw = data.encode() if isinstance(data, str) else data
    return varint(num << 3 | 2) + varint(len(raw)) + raw


def envelope(api_version: str, kind: str, raw: bytes, encoding: str = "") -> bytes:
    return b"k8s\x00" + lfield(1, lfield(1, api_version) + lfield(2, kind)) + lfield(2, raw) + lfield(3, encoding) + lfield(4, "")


def meta(name: str, **extra: bytes) -> bytes:
    return lfield(1, name) + lfield(8, b"") + b"".join(extra.values())


# -- what kubectl really sends ------------------------------------------------------------------------------

def test_captured_cases_cover_the_generators() -> None:
    """Every create generator the issue names is captured, as protobuf; run and scale are JSON in kubectl 1.32."""
    kinds = {decode((DATA / f"{n}.pb").read_bytes())["kind"] for n in PB_CASES}
    assert kinds >= {"Namespace", "Service", "Deployment", "ConfigMap", "Secret", "Ingress", "ResourceQuota",
                     "PodDisruptionBudget", "PriorityClass", "ServiceAccount", "Role", "RoleBinding", "ClusterRole",
                     "ClusterRoleBinding", "Job", "CronJob"}
    assert all(INDEX[n]["contentType"] == PB for n in PB_CASES)
    assert INDEX["run"]["contentType"] == "application/json" and INDEX["scale"]["contentType"] == ""


@pytest.mark.parametrize("name", PB_CASES)
def test_captured_body_decodes_to_kubectls_json(name: str) -> None:
    body = (DATA / f"{name}.pb").read_bytes()
    assert body.startswith(b"k8s\x00")
    want = json.loads((DATA / f"{name}.json").read_text())
    assert decode(body) == want


@needs_kubectl
@pytest.mark.parametrize("name", [n for n in pbrecorder.CASES if n not in ("run", "scale")][::3])
def test_live_capture_decodes_to_kubectls_json(name: str, tmp_path: Path) -> None:
    """The installed kubectl, recorded now on a loopback listener, against its own --dry-run=client -o json."""
    assert KUBECTL is not None
    sent, dry = pbrecorder.capture(KUBECTL, name, tmp_path)
    assert sent.content_type == PB
    assert decode(sent.body) == dry


# -- wire details -------------------------------------------------------------------------------------------

def test_negative_int32_ten_byte_varint_and_pointer_zero() -> None:
    spec = vfield(1, 0)  # replicas: *int32 present with 0 -> kept
    d = decode(envelope("apps/v1", "Deployment", lfield(1, meta("d")) + lfield(2, spec)))
    assert d["spec"]["replicas"] == 0 and d["spec"]["template"] == {"metadata": {"creationTimestamp": None},
                                                                     "spec": {"containers": None}}
    neg = vfield(1, -5)
    assert len(varint(-5)) == 10
    assert decode(envelope("apps/v1", "Deployment", lfield(2, neg)))["spec"]["replicas"] == -5
    # int32 takes the low 32 bits of a longer varint, as Go's generated code does
    assert decode(envelope("apps/v1", "Deployment", lfield(2, vfield(1, 2**32 + 7))))["spec"]["replicas"] == 7


def test_omitempty_and_fields_without_it() -> None:
    port = vfield(3, 0) + lfield(4, vfield(1, 0) + vfield(2, 0)) + lfield(1, "") + lfield(2, "")
    svc = decode(envelope("v1", "Service", lfield(2, lfield(1, port))))
    # ServicePort.port has no omitempty: 0 stays; name/protocol "" are dropped; targetPort is a struct: always
    assert svc["spec"]["ports"] == [{"port": 0, "targetPort": 0}]
    cport = decode(envelope("v1", "Pod", lfield(2, lfield(2, lfield(1, "c") + lfield(6, b"")))))
    assert cport["spec"]["containers"][0]["ports"] == [{"containerPort": 0}]
    role = decode(envelope("rbac.authorization.k8s.io/v1", "Role", lfield(2, b"")))
    assert role["rules"] == [{"verbs": None}]  # PolicyRule.verbs has no omitempty: nil is null


def test_packed_and_unpacked_repeated_scalars() -> None:
    groups = [1, 2**40, -3]
    unpacked = b"".join(vfield(4, g) for g in groups)
    packed_body = b"".join(varint(g) for g in groups)
    packed = lfield(4, packed_body)
    for sc in (unpacked, packed):
        pod = decode(envelope("v1", "Pod", lfield(2, lfield(14, sc))))
        assert pod["spec"]["securityContext"]["supplementalGroups"] == groups


def test_unknown_fields_of_every_wire_type_are_skipped() -> None:
    unknown = vfield(900, 5) + varint(901 << 3 | 1) + b"\x00" * 8 + lfield(902, b"xyz") + varint(903 << 3 | 5) + b"\x00" * 4
    ns = decode(envelope("v1", "Namespace", unknown + lfield(1, meta("x") + unknown) + unknown))
    assert ns == {"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "x", "creationTimestamp": None},
                  "spec": {}, "status": {}}


def test_special_types() -> None:
    ts = lfield(8, vfield(1, 1704164645))  # 2024-01-02T03:04:05Z
    d = decode(envelope("v1", "Secret", lfield(1, lfield(1, "s") + ts)
                        + lfield(2, lfield(1, "k") + lfield(2, b"\x00\xff")) + lfield(3, "Opaque")
                        + lfield(4, lfield(1, "plain") + lfield(2, "text"))))
    assert d["metadata"] == {"name": "s", "creationTimestamp": "2024-01-02T03:04:05Z"}
    assert d["data"] == {"k": "AP8="} and d["type"] == "Opaque" and d["stringData"] == {"plain": "text"}
    # MicroTime keeps microseconds; Time keeps whole seconds
    ev = decode(envelope("v1", "Event", lfield(1, lfield(1, "e")) + lfield(10, vfield(1, 1704164645) + vfield(2, 123456789))))
    assert ev["eventTime"] == "2024-01-02T03:04:05.123456Z"
    assert ev["firstTimestamp"] is None and ev["metadata"]["creationTimestamp"] is None
    # IntOrString: type 1 is a string
    port = vfield(3, 80) + lfield(4, vfield(1, 1) + lfield(3, "http"))
    assert decode(envelope("v1", "Service", lfield(2, lfield(1, port))))["spec"]["ports"] == [{"port": 80, "targetPort": "http"}]
    # Quantity in a map<string, Quantity>
    hard = lfield(1, lfield(1, "cpu") + lfield(2, lfield(1, "500m"))) + lfield(1, lfield(1, "pods") + lfield(2, b""))
    q = decode(envelope("v1", "ResourceQuota", lfield(2, hard)))
    assert q["spec"]["hard"] == {"cpu": "500m", "pods": "0"}
    # bool and int64 in ObjectMeta/DeleteOptions
    opts = decode(envelope("v1", "DeleteOptions", vfield(1, 30) + lfield(4, "Background") + lfield(5, "All")))
    assert opts == {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 30,
                    "propagationPolicy": "Background", "dryRun": ["All"]}


def test_scale_and_new_kinds() -> None:
    scale = decode(envelope("autoscaling/v1", "Scale", lfield(1, lfield(1, "d") + lfield(3, "ns") + lfield(6, "7"))
                            + lfield(2, vfield(1, 3)) + lfield(3, vfield(1, 2) + lfield(2, "app=d"))))
    assert scale == {"kind": "Scale", "apiVersion": "autoscaling/v1",
                     "metadata": {"name": "d", "namespace": "ns", "resourceVersion": "7", "creationTimestamp": None},
                     "spec": {"replicas": 3}, "status": {"replicas": 2, "selector": "app=d"}}
    # Scale.spec.replicas is omitempty (not a pointer): 0 is dropped, as Kubernetes' JSON drops it
    assert decode(envelope("autoscaling/v1", "Scale", lfield(2, vfield(1, 0))))["spec"] == {}
    for (api_version, kind) in pbtables.TOP:
        obj = decode(envelope(api_version, kind, b""))
        assert obj["kind"] == kind and obj["apiVersion"] == api_version
        untrusted.check_depth(obj)
    hpa = decode(envelope("autoscaling/v2", "HorizontalPodAutoscaler", lfield(2, lfield(1, lfield(1, "Deployment") + lfield(2, "d"))
                                                                                 + vfield(3, 5))))
    assert hpa["spec"] == {"scaleTargetRef": {"kind": "Deployment", "name": "d"}, "maxReplicas": 5}
    # inline: Volume's VolumeSource members sit beside its name
    vol = lfield(1, "v") + lfield(2, lfield(2, b""))  # emptyDir
    pod = decode(envelope("v1", "Pod", lfield(2, lfield(1, vol))))
    assert pod["spec"]["volumes"] == [{"name": "v", "emptyDir": {}}]


def test_go_duration() -> None:
    assert [protobuf.go_duration(n) for n in (0, 1, 1500, 2_000_000, 1_500_000_000, 3_600_000_000_000, 90_061_000_000_000, -60_000_000_000)] \
        == ["0s", "1ns", "1.5µs", "2ms", "1.5s", "1h0m0s", "25h1m1s", "-1m0s"]


# -- malformed input ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "words"), [
    (b"", "does not appear to be a protobuf message"),
    (b'{"kind":"Namespace"}', "expected prefix [107 56 115 0]"),
    (b"k8s\x00", "Object 'Kind' is missing"),
    (envelope("v1", "Frobnicator", b""), 'no kind "Frobnicator" is registered for version "v1"'),
    (envelope("v2", "Namespace", b""), 'no kind "Namespace" is registered for version "v2"'),
    (envelope("v1", "Namespace", b"", encoding="gzip"), "content encoding 'gzip' is not supported"),
    (b"k8s\x00" + b"\x0a\x7f", "runs past the end"),
    (envelope("v1", "Namespace", b"\x0a\x05ab"), "runs past the end"),
    (envelope("v1", "Namespace", b"\x78" + b"\xff" * 10 + b"\x01"), "overflows 64 bits"),
    (envelope("v1", "Namespace", b"\x78\xff\xff"), "unexpected end of data in a varint"),
    (envelope("v1", "Namespace", b"\x0b"), "wire type 3"),
    (envelope("v1", "Namespace", b"\x08\x01"), "field Namespace.metadata has wire type 0, expected 2"),
    (envelope("v1", "Namespace", lfield(1, lfield(1, b"\xff\xfe"))), "not valid UTF-8"),
    (envelope("v1", "Namespace", b"\x02\x00"), "field number 0"),
    (envelope("v1", "Service", lfield(2, lfield(1, lfield(4, vfield(1, 7))))), "IntOrString has type 7"),
    (envelope("v1", "Namespace", lfield(1, lfield(8, vfield(1, 2**62)))), "out of range"),
    (envelope("v1", "Pod", lfield(2, lfield(11, b"\x01"))), "field PodSpec.hostNetwork has wire type 2, expected 0"),
])
def test_malformed_bodies_are_clear_errors(body: bytes, words: str) -> None:
    with pytest.raises(ProtobufError) as e:
        decode(body)
    assert words in str(e.value)


def _decode_or_error(body: bytes) -> None:
    try:
        obj = decode(body)
    except ProtobufError as e:
        assert str(e)
        return
    assert isinstance(obj, dict)
    untrusted.check_depth(obj)
    json.dumps(obj)


def test_every_truncation_of_every_captured_body() -> None:
    for name in PB_CASES:
        body = (DATA / f"{name}.pb").read_bytes()
        for n in range(len(body)):
            _decode_or_error(body[:n])


_captured = st.sampled_from([(DATA / f"{n}.pb").read_bytes() for n in PB_CASES])


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    body = bytearray(draw(_captured))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(4, len(body) - 1))
        op = draw(st.sampled_from(["flip", "set", "insert", "delete"]))
        if op == "flip":
            body[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            body[at] = draw(st.sampled_from([0x00, 0x7F, 0x80, 0xFF, 0x0A, 0x12, 0x08, 0x0B]))
        elif op == "insert":
            body[at:at] = draw(st.binary(min_size=1, max_size=12))
        elif len(body) > 5:
            del body[at]
    return bytes(body)


_raw = st.one_of(_mutated(), st.binary(max_size=200).map(lambda b: b"k8s\x00" + b),
                 st.binary(max_size=120).map(lambda b: envelope("v1", "Service", b)),
                 st.binary(max_size=120).map(lambda b: envelope("apps/v1", "Deployment", b)))


@FUZZ
@given(_raw)
def test_fuzz_decoder_raises_only_protobuf_errors(body: bytes) -> None:
    _decode_or_error(body)


def test_deep_nesting_is_bounded() -> None:
    raw = b""
    for _ in range(200):  # unknown field 1 of LabelSelector... nested: a length-delimited chain
        raw = lfield(1, raw)
    _decode_or_error(envelope("v1", "Namespace", raw))
    _decode_or_error(b"k8s\x00" + raw)


# -- the live server ----------------------------------------------------------------------------------------

def _post(api: Api, path: str, body: bytes) -> tuple[int, dict[str, str], Any]:
    return api.request("POST", path, body, headers={"Content-Type": PB, "Accept": "application/json"})


def test_server_creates_from_protobuf_and_answers_json(api: Api, ns: str) -> None:
    body = (DATA / "service-clusterip.pb").read_bytes()
    code, hdrs, obj = _post(api, f"/api/v1/namespaces/{ns}/services", body)
    assert code == 201, obj
    assert hdrs["Content-Type"].startswith("application/json")
    assert obj["metadata"]["name"] == "s" and obj["metadata"]["namespace"] == ns
    assert [p["port"] for p in obj["spec"]["ports"]] == [80, 8443] and obj["spec"]["clusterIP"]
    code, _, got = api.request("GET", f"/api/v1/namespaces/{ns}/services/s")
    assert code == 200 and got["spec"]["ports"] == obj["spec"]["ports"]


@pytest.mark.parametrize(("body", "words"), [
    (b"k8s\x00\x0a\x7f", "the request body is not valid protobuf: a length of 127 bytes runs past the end"),
    (b"{}", "the request body is not valid protobuf: provided data does not appear to be a protobuf message"),
    (envelope("v1", "Frobnicator", b""), 'no kind "Frobnicator" is registered for version "v1"'),
    (envelope("apps/v1", "Deployment", b""), "the API version in the data (apps/v1) does not match the expected API version (v1)"),
])
def test_server_malformed_protobuf_is_400(api: Api, ns: str, body: bytes, words: str) -> None:
    code, _, obj = _post(api, f"/api/v1/namespaces/{ns}/services", body)
    assert code == 400, obj
    assert obj["kind"] == "Status" and obj["reason"] == "BadRequest" and words in obj["message"]


def test_server_unknown_media_type_names_protobuf(api: Api, ns: str) -> None:
    code, _, obj = api.request("POST", f"/api/v1/namespaces/{ns}/services", b"x", headers={"Content-Type": "application/cbor"})
    assert code == 415 and "application/json, application/yaml, application/vnd.kubernetes.protobuf" in obj["message"]


@settings(FUZZ, max_examples=min(150, FUZZ.max_examples))
@given(_raw)
def test_fuzz_server_answers_protobuf_garbage_below_500(api: Api, body: bytes) -> None:
    code, _, obj = _post(api, "/api/v1/namespaces/default/services", body)
    assert code < 500, obj
    assert isinstance(obj, dict) and "Traceback" not in json.dumps(obj)


# -- end to end with the real kubectl -----------------------------------------------------------------------

def _served(api: Api, path: str) -> bool:
    """Whether discovery lists the resource of a captured POST/PUT path."""
    parts = path.strip("/").split("/")
    gv = "/".join(parts[:2] if parts[0] == "api" else parts[:3])
    resource = f"{parts[-3]}/scale" if parts[-1] == "scale" else parts[-1]
    code, _, doc = api.request("GET", "/" + gv)
    return code == 200 and any(r.get("name") == resource for r in doc.get("resources", []))


def _contains(got: Any, want: Any, where: str = "") -> None:
    """Every value kubectl set is in the stored object (the server may add defaults beside them)."""
    if isinstance(want, dict):
        assert isinstance(got, dict), where
        for k, v in want.items():
            if v in (None, {}, []) or (where == ".metadata" and k == "namespace"):
                continue
            assert k in got, f"{where}.{k} missing from {got}"
            _contains(got[k], v, f"{where}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _contains(g, w, f"{where}[{i}]")
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"


E2E = [n for n in pbrecorder.CASES if n != "scale"]


@needs_kubectl
@pytest.mark.parametrize("name", E2E)
def test_kubectl_creates_each_kind(api: Api, ns: str, name: str) -> None:
    case = INDEX[name]
    if not _served(api, case["path"].replace("/default/", f"/{ns}/")):
        pytest.skip(f"kubesvc does not serve {case['path']} yet")
    r = api.kubectl("-n", ns, *case["kubectl"])
    if name == "job" and "spec.selector: Required value" in r.err:
        pytest.xfail("the server does not generate a Job's selector yet (the kinds work of issue 13)")
    assert r.code == 0, r.err
    want = json.loads((DATA / f"{name}.json").read_text())
    kind = f"{want['kind'].lower()}.{want['apiVersion'].split('/')[0]}" if "/" in want["apiVersion"] else want["kind"].lower()
    g = api.kubectl("-n", ns, "get", kind, want["metadata"]["name"], "-o", "json")
    assert g.code == 0, g.err
    _contains(json.loads(g.out), want)


@needs_kubectl
def test_kubectl_scale(api: Api, ns: str) -> None:
    assert _served(api, f"/apis/apps/v1/namespaces/{ns}/deployments/d/scale")
    assert api.kubectl("-n", ns, *INDEX["deployment"]["kubectl"]).code == 0
    r = api.kubectl("-n", ns, *INDEX["scale"]["kubectl"])
    assert r.code == 0, r.err
    g = api.kubectl("-n", ns, "get", "deployment", "d", "-o", "jsonpath={.spec.replicas}")
    assert g.out == "3"


def test_recorder_regenerates_the_index() -> None:
    """cases.json names each captured file's request, so a recapture (python -m tests.apiserver.pbrecorder) is checkable."""
    assert set(INDEX) == set(pbrecorder.CASES)
    for name, case in INDEX.items():
        assert case["kubectl"] == pbrecorder.CASES[name]
        suffix = ".pb" if case["contentType"] == PB else ".sent.json"
        assert (DATA / f"{name}{suffix}").exists() and (DATA / f"{name}.json").exists()
