"""create -f and create service: success lines, per-object errors in kubectl's layouts, exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC

import pytest

SVC = """apiVersion: v1
kind: Service
metadata:
  name: {name}
spec:
  selector: {{app: {name}}}
  ports:
  - port: {port}
"""


def test_create_prints_created_and_stores_defaults(cli, manifest):
    r = cli("create", "-f", manifest(SVC.format(name="web", port=80)))
    assert (r.code, r.out, r.err) == (0, "service/web created\n", "")
    obj = json.loads(cli("get", "svc", "web", "-o", "json").out)
    spec = obj["spec"]
    assert spec["type"] == "ClusterIP"
    assert spec["sessionAffinity"] == "None"
    assert spec["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]
    assert spec["clusterIPs"] == [spec["clusterIP"]]
    assert spec["clusterIP"].startswith("127.")
    assert spec["ipFamilies"] == ["IPv4"] and spec["ipFamilyPolicy"] == "SingleStack"
    assert spec["internalTrafficPolicy"] == "Cluster"
    meta = obj["metadata"]
    assert meta["namespace"] == "default" and meta["uid"] and meta["resourceVersion"].isdigit()
    assert meta["creationTimestamp"].endswith("Z")


def test_one_invalid_object_one_cause(cli, manifest):
    r = cli("create", "-f", manifest(SVC.format(name="bad1", port=0) + "    targetPort: 8080\n"))
    assert r.code == 1
    assert r.err == 'The Service "bad1" is invalid: spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive\n'
    assert r.out == ""


def test_one_invalid_object_several_causes_bullets(cli, manifest):
    text = """apiVersion: v1
kind: Service
metadata: {name: bad2}
spec:
  ports:
  - port: 80
  - port: 81
"""
    r = cli("create", "-f", manifest(text))
    assert r.code == 1
    assert r.err == (
        'The Service "bad2" is invalid: \n'
        "* spec.ports[0].name: Required value\n"
        "* spec.ports[1].name: Required value\n"
    )


def test_several_objects_each_error_on_its_own_line(cli, manifest):
    text = SVC.format(name="d2", port=80) + "---\n" + SVC.format(name="d2", port=80) + "---\n" + """apiVersion: v1
kind: Service
metadata: {name: bad2}
spec:
  ports: [{port: 80}, {port: 81}]
"""
    path = manifest(text, "both.yaml")
    r = cli("create", "-f", path)
    assert r.code == 1
    assert r.out == "service/d2 created\n"
    assert r.err == (
        f'Error from server (AlreadyExists): error when creating "{path}": services "d2" already exists\n'
        f'Error from server (Invalid): error when creating "{path}": Service "bad2" is invalid: '
        "[spec.ports[0].name: Required value, spec.ports[1].name: Required value]\n"
    )


def test_already_exists_single(cli, manifest):
    path = manifest(SVC.format(name="foo", port=80), "one.yaml")
    assert cli("create", "-f", path).code == 0
    r = cli("create", "-f", path)
    assert r.code == 1
    assert r.err == f'Error from server (AlreadyExists): error when creating "{path}": services "foo" already exists\n'


def test_missing_namespace(cli, manifest):
    r = cli("create", "-n", "nope", "-f", manifest(SVC.format(name="web", port=80)))
    assert r.code == 1
    assert 'Error from server (NotFound): error when creating' in r.err
    assert r.err.endswith('namespaces "nope" not found\n')


def test_namespace_mismatch_fails_before_writing(cli, manifest):
    text = SVC.format(name="web", port=80).replace("name: web\n", "name: web\n  namespace: a\n", 1)
    r = cli("create", "-n", "b", "-f", manifest(text))
    assert r.code == 1
    assert r.err == ('error: the namespace from the provided object "a" does not match the namespace "b". '
                     "You must pass '--namespace=a' to perform this operation.\n")


def test_unknown_field_strict_warn_ignore(cli, manifest):
    text = SVC.format(name="web", port=80) + "    nodeport: 30080\n"
    path = manifest(text)
    r = cli("create", "-f", path)
    assert r.code == 1
    assert r.err == (f'Error from server (BadRequest): error when creating "{path}": Service in version "v1" cannot be '
                     'handled as a Service: strict decoding error: unknown field "spec.ports[0].nodeport"\n')
    r = cli("create", "-f", path, "--validate=warn")
    assert r.code == 0 and r.out == "service/web created\n"
    assert 'Warning: unknown field "spec.ports[0].nodeport"' in r.err
    assert cli("delete", "svc", "web").code == 0
    r = cli("create", "-f", path, "--validate=false")
    assert (r.code, r.err) == (0, "")


def test_wrong_type(cli, manifest):
    path = manifest(SVC.format(name="web", port='"http"'))
    r = cli("create", "-f", path)
    assert r.code == 1
    assert r.err == (f'Error from server (BadRequest): error when creating "{path}": Service in version "v1" cannot be '
                     "handled as a Service: json: cannot unmarshal string into Go struct field "
                     "ServicePort.spec.ports.port of type int32\n")


def test_client_side_errors(cli, manifest, tmp_path):
    r = cli("create", "-f", "nosuchfile.yaml")
    assert (r.code, r.err) == (1, 'error: the path "nosuchfile.yaml" does not exist\n')
    r = cli("create", "-f", manifest("", "empty.yaml"))
    assert (r.code, r.err) == (1, "error: no objects passed to create\n")
    path = manifest('apiVersion: v1\nmetadata:\n  name: x\n', "nokind.yaml")
    r = cli("create", "-f", path)
    assert r.err == f"error: unable to decode \"{path}\": Object 'Kind' is missing in '{{\"apiVersion\":\"v1\",\"metadata\":{{\"name\":\"x\"}}}}'\n"
    path = manifest("apiVersion: apps/v1\nkind: Service\nmetadata: {name: x}\n", "badgv.yaml")
    r = cli("create", "-f", path)
    assert r.err == (f'error: resource mapping not found for name: "x" namespace: "" from "{path}": no matches for '
                     'kind "Service" in version "apps/v1"\nensure CRDs are installed first\n')


def test_directory_reads_only_manifests_and_recurses_with_R(cli, tmp_path):
    d = tmp_path / "dir"
    (d / "sub").mkdir(parents=True)
    (d / "a.yaml").write_text(SVC.format(name="a", port=80))
    (d / "b.json").write_text(json.dumps({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "b"},
                                          "spec": {"ports": [{"port": 81}]}}))
    (d / "notes.txt").write_text("not a manifest")
    (d / "sub" / "c.yml").write_text(SVC.format(name="c", port=82))
    r = cli("create", "-f", str(d))
    assert r.out == "service/a created\nservice/b created\n"
    r = cli("create", "-f", str(d), "-R")
    assert "service/c created\n" in r.out


def test_stdin_and_list_kind(cli):
    text = open("examples/services.yaml").read()
    r = cli("create", "-f", "-", input=text)
    assert r.out == "service/db created\nservice/ext created\nservice/lb created\n"


def test_output_name_and_dry_run(cli, manifest):
    path = manifest(SVC.format(name="web", port=80))
    r = cli("create", "-f", path, "--dry-run=client")
    assert r.out == "service/web created (dry run)\n"
    assert cli("get", "svc", "web").code == 1
    r = cli("create", "-f", path, "-o", "name")
    assert r.out == "service/web\n"


def test_subprocess_create_and_exit_codes(ks, manifest):
    r = ks("create", "-f", manifest(SVC.format(name="web", port=80)))
    assert (r.code, r.out) == (0, "service/web created\n")
    r = ks("get", "svc", "nosuch")
    assert (r.code, r.err) == (1, 'Error from server (NotFound): services "nosuch" not found\n')
    assert "Traceback" not in r.err


def test_create_service_generators(cli):
    r = cli("create", "service", "clusterip", "foo", "--tcp=80:8080")
    assert (r.code, r.out) == (0, "service/foo created\n")
    obj = json.loads(cli("get", "svc", "foo", "-o", "json").out)
    assert obj["spec"]["ports"] == [{"name": "80-8080", "port": 80, "protocol": "TCP", "targetPort": 8080}]
    assert obj["spec"]["selector"] == {"app": "foo"} and obj["metadata"]["labels"] == {"app": "foo"}
    r = cli("create", "service", "nodeport", "np", "--tcp=80:8080", "--node-port=30080")
    assert r.code == 0
    obj = json.loads(cli("get", "svc", "np", "-o", "json").out)
    assert obj["spec"]["ports"][0]["nodePort"] == 30080
    r = cli("create", "service", "clusterip", "noport")
    assert (r.code, r.err) == (1, "error: at least one tcp port specifier must be provided\n")
    r = cli("create", "service", "externalname", "ext", "--external-name=Bad_Name")
    assert (r.code, r.err) == (1, "error: invalid service external name Bad_Name\n")


def test_create_service_invalid_is_wrapped(cli):
    r = cli("create", "service", "clusterip", "two-ports", "--tcp=443", "--tcp=443")
    assert r.code == 1
    assert r.err.startswith('error: failed to create ClusterIP service: Service "two-ports" is invalid: [spec.ports[1].name: Duplicate value: "443"')


def test_create_namespace_and_use_it(cli, manifest):
    assert cli("create", "namespace", "team-a").out == "namespace/team-a created\n"
    r = cli("create", "-n", "team-a", "-f", manifest(SVC.format(name="web", port=80)))
    assert r.code == 0
    assert "web" in cli("get", "svc", "-n", "team-a").out


GENERATORS = [
    ["create", "service", "clusterip", "foo", "--tcp=80:8080"],
    ["create", "service", "clusterip", "bar", "--tcp=80", "--tcp=443:https"],
    ["create", "service", "clusterip", "headless", "--clusterip=None"],
    ["create", "service", "nodeport", "np", "--tcp=80:8080", "--node-port=30080"],
    ["create", "service", "loadbalancer", "lb", "--tcp=80:8080,443:8443"],
    ["create", "service", "externalname", "ext", "--external-name=example.com"],
]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
@pytest.mark.parametrize("fmt", ["yaml", "json"])
@pytest.mark.parametrize("args", GENERATORS, ids=lambda a: a[2] + "-" + a[3])
def test_generated_output_is_byte_identical_to_kubectl(cli, args, fmt):
    mine = cli(*args, "--dry-run=client", "-o", fmt)
    theirs = subprocess.run(["kubectl", *args, "--dry-run=client", "-o", fmt], capture_output=True, text=True)
    assert theirs.returncode == 0, theirs.stderr
    assert (mine.code, mine.out) == (0, theirs.stdout)


@pytest.fixture
def key_pair(tmp_path):
    from datetime import datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "app.local")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + timedelta(days=1)).sign(key, hashes.SHA256()))
    c, k = tmp_path / "tls.crt", tmp_path / "tls.key"
    c.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    k.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    return str(c), str(k)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_secret_and_configmap_generators_match_kubectl(cli, key_pair, tmp_path, fmt):
    crt, key = key_pair
    (tmp_path / "app.conf").write_text("listen 8080\n")
    cases = [
        ["create", "secret", "tls", "app-tls", f"--cert={crt}", f"--key={key}"],
        ["create", "secret", "generic", "creds", "--from-literal=user=admin", "--from-literal=pass=s3cret"],
        ["create", "configmap", "conf", "--from-literal=a=b", f"--from-file={tmp_path / 'app.conf'}"],
    ]
    for args in cases:
        mine = cli(*args, "--dry-run=client", "-o", fmt)
        theirs = subprocess.run(["kubectl", *args, "--dry-run=client", "-o", fmt], capture_output=True, text=True)
        assert (mine.code, mine.out) == (0, theirs.stdout), args


def test_secret_tls_is_stored_and_checked(cli, key_pair):
    crt, key = key_pair
    r = cli("create", "secret", "tls", "bad", f"--cert={key}", f"--key={crt}")
    assert (r.code, r.err) == (1, "error: tls: failed to find certificate PEM data in certificate input, but did find "
                                  "a private key; PEM inputs may have been switched\n")
    assert cli("create", "secret", "tls", "app-tls", f"--cert={crt}", f"--key={key}").out == "secret/app-tls created\n"
    lines = cli("get", "secret", "app-tls").out.splitlines()
    assert lines[1].split()[:3] == ["app-tls", "kubernetes.io/tls", "2"]
    r = cli("create", "secret", "generic", "x", "--from-literal=novalue")
    assert (r.code, r.err) == (1, "error: invalid literal source novalue, expected key=value\n")
