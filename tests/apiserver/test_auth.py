"""Authenticated by default: HTTPS with the store's generated CA, a client certificate or the token required,
kubeconfigs that stand alone with mode 0600, credentials that survive restarts and repair themselves, and
plain HTTP only when asked for by name."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import ssl
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from kubesvc.apiserver import pki
from tests.apiserver.fixtures import *  # noqa: F403
from tests.apiserver.fixtures import KUBECTL, Api, start_api
from tests.support.procs import ROOT


def _ks(store: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "KUBESVC_"))}
    return subprocess.run([sys.executable, "-m", "kubesvc", "--store", store, *args], capture_output=True, text=True,
                          env=env, cwd=str(cwd or ROOT), timeout=60)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_ready_line_says_https_and_auth(api: Api) -> None:
    assert api.url.startswith("https://127.0.0.1:")
    names = sorted(p.name for p in api.pki.iterdir())
    assert names == ["admin.crt", "admin.key", "apiserver.crt", "apiserver.key", "ca.crt", "ca.key", "lock", "token"]
    assert _mode(api.pki) == 0o700
    assert {p.name: _mode(p) for p in api.pki.iterdir()} == {n: 0o600 for n in names}


def test_no_credentials_is_401_and_changes_nothing(api: Api, ns: str) -> None:
    before = api.revision()
    body = json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                       "spec": {"containers": [{"name": "c", "image": "x", "command": ["id"]}]}}).encode()
    code, _, status = api.request("POST", f"/api/v1/namespaces/{ns}/pods", body, cert=False)
    assert (code, status["kind"], status["reason"]) == (401, "Status", "Unauthorized")
    assert api.request("GET", "/api/v1/namespaces", cert=False)[0] == 401
    assert api.request("GET", "/version", headers={"Authorization": "Bearer not-the-token"}, cert=False)[0] == 401
    assert api.revision() == before
    assert api.request("GET", "/api/v1/namespaces")[0] == 200  # the admin certificate


def test_generated_token_works(api: Api) -> None:
    token = (api.pki / "token").read_text().strip()
    assert len(token) >= 40
    code, _, body = api.request("GET", "/api/v1/namespaces", headers={"Authorization": f"Bearer {token}"}, cert=False)
    assert code == 200 and body["kind"] == "NamespaceList"


def test_certificate_from_another_ca_is_refused(api: Api, tmp_path: Path) -> None:
    other = pki.ensure(str(tmp_path / "other.db"))
    ctx = ssl.create_default_context(cafile=str(api.pki / "ca.crt"))  # trusts the server, presents a stranger
    ctx.load_cert_chain(other.client_cert, other.client_key)
    req = urllib.request.Request(api.url + "/api/v1/namespaces")
    with pytest.raises((ssl.SSLError, ConnectionError, urllib.error.URLError)) as e:
        urllib.request.urlopen(req, timeout=10, context=ctx).read()
    assert not isinstance(e.value, urllib.error.HTTPError)  # refused in the handshake, no HTTP answer at all
    # and a client that does not trust the store's CA refuses the server
    with pytest.raises(urllib.error.URLError) as e2:
        urllib.request.urlopen(req, timeout=10, context=ssl.create_default_context(cafile=str(other.ca_cert)))
    assert "CERTIFICATE_VERIFY_FAILED" in str(e2.value)


def test_serving_certificate_names_the_bind_address(tmp_path: Path) -> None:
    api = start_api(tmp_path, "--bind-address", "127.0.0.2")
    try:
        assert api.url.startswith("https://127.0.0.2:")
        assert api.request("GET", "/api/v1/namespaces")[0] == 200  # hostname checked against the SANs
    finally:
        api.proc.stop()
    from cryptography import x509

    cert = x509.load_pem_x509_certificate((api.pki / "apiserver.crt").read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(a) for a in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1", "127.0.0.2"]
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]


def test_kubeconfig_stands_alone_with_mode_0600(api: Api, tmp_path: Path) -> None:
    assert _mode(api.kubeconfig) == 0o600  # written by --write-kubeconfig
    cfg = yaml.safe_load(api.kubeconfig.read_text())
    cluster, user = cfg["clusters"][0]["cluster"], cfg["users"][0]["user"]
    assert cluster["server"] == api.url
    assert base64.b64decode(cluster["certificate-authority-data"]) == (api.pki / "ca.crt").read_bytes()
    assert base64.b64decode(user["client-certificate-data"]) == (api.pki / "admin.crt").read_bytes()
    assert base64.b64decode(user["client-key-data"]) == (api.pki / "admin.key").read_bytes()
    # `> file` under a umask that would give 0644: narrowed to 0600 all the same
    out = tmp_path / "redirected"
    r = subprocess.run(["bash", "-c", f'umask 022; "$0" -m kubesvc --store "$1" config view --server {api.url} > "$2"',
                        sys.executable, api.store, str(out)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert _mode(out) == 0o600 and yaml.safe_load(out.read_text()) == cfg
    # --write-kubeconfig replaces a looser file with a 0600 one
    loose = tmp_path / "loose"
    loose.write_text("old")
    loose.chmod(0o644)
    r = _ks(api.store, "config", "view", "--server", api.url, "--write-kubeconfig", str(loose))
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert _mode(loose) == 0o600 and yaml.safe_load(loose.read_text()) == cfg
    # --token-file: the token instead of the certificate, the CA still there
    token = tmp_path / "token"
    token.write_text((api.pki / "token").read_text())
    r = _ks(api.store, "config", "view", "--server", api.url, "--token-file", str(token), "-o", "json")
    tcfg = json.loads(r.stdout)
    assert tcfg["users"][0]["user"] == {"token": token.read_text().strip()}
    assert "certificate-authority-data" in tcfg["clusters"][0]["cluster"]


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
def test_kubectl_with_a_token_kubeconfig(api: Api, tmp_path: Path) -> None:
    kc = tmp_path / "token.kubeconfig"
    r = _ks(api.store, "config", "view", "--server", api.url, "--token-file", str(api.pki / "token"),
            "--write-kubeconfig", str(kc))
    assert r.returncode == 0, r.stderr
    k = api.kubectl("--kubeconfig", str(kc), "get", "ns", "default", "-o", "name")
    assert (k.code, k.out, k.err) == (0, "namespace/default\n", "")


def _context_from_kubeconfig(path: Path, tmp: Path) -> ssl.SSLContext:
    cfg = yaml.safe_load(path.read_text())
    files = {}
    for key, data in (("ca", cfg["clusters"][0]["cluster"]["certificate-authority-data"]),
                      ("crt", cfg["users"][0]["user"]["client-certificate-data"]),
                      ("key", cfg["users"][0]["user"]["client-key-data"])):
        files[key] = tmp / f"kc.{key}"
        files[key].write_bytes(base64.b64decode(data))
    ctx = ssl.create_default_context(cafile=str(files["ca"]))
    ctx.load_cert_chain(files["crt"], files["key"])
    return ctx


def test_credentials_survive_restart(tmp_path: Path) -> None:
    first = start_api(tmp_path)
    try:
        before = {p.name: p.read_bytes() for p in first.pki.iterdir() if p.name != "lock"}
    finally:
        first.proc.stop()
    second = start_api(tmp_path)  # same store, a new port
    try:
        assert {p.name: p.read_bytes() for p in second.pki.iterdir() if p.name != "lock"} == before
        ctx = _context_from_kubeconfig(first.kubeconfig, tmp_path)  # the first run's kubeconfig still works
        with urllib.request.urlopen(second.url + "/api/v1/namespaces/default", timeout=10, context=ctx) as r:
            assert json.loads(r.read())["metadata"]["name"] == "default"
    finally:
        second.proc.stop()


def test_insecure_plain_http_warns_and_serves_without_credentials(tmp_path: Path) -> None:
    api = start_api(tmp_path, "--insecure-plain-http")
    try:
        assert api.url.startswith("http://127.0.0.1:")
        code, _, body = api.request("GET", "/api/v1/namespaces")
        assert code == 200 and body["kind"] == "NamespaceList"
        assert any(ln.startswith("Warning: --insecure-plain-http: serving the API over plain HTTP with no "
                                 "authentication: any process on this machine, and any web page") for ln in api.proc.stderr)
        cfg = yaml.safe_load(api.kubeconfig.read_text())
        assert cfg["clusters"][0]["cluster"] == {"server": api.url} and cfg["users"][0]["user"] == {}
        assert not api.pki.exists()  # nothing generated for a server that uses none of it
    finally:
        api.proc.stop()


def test_insecure_plain_http_with_a_token(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    api = start_api(tmp_path, "--insecure-plain-http", "--token-file", str(token))
    try:
        assert api.url.startswith("http://127.0.0.1:")
        assert api.request("GET", "/api/v1/namespaces")[0] == 401
        assert api.request("GET", "/api/v1/namespaces", headers={"Authorization": "Bearer s3cret"})[0] == 200
        assert any(ln.startswith("Warning: --insecure-plain-http: serving the API over plain HTTP: the bearer token "
                                 "and every object travel unencrypted") for ln in api.proc.stderr)
        r = _ks(api.store, "config", "view", "--server", api.url, "--token-file", str(token), "-o", "json")
        cfg = json.loads(r.stdout)
        assert cfg["clusters"][0]["cluster"] == {"server": api.url} and cfg["users"][0]["user"] == {"token": "s3cret"}
        # (kubectl itself never sends a token over plain HTTP: with it, use HTTPS; see docs/commands/apiserver.md)
    finally:
        api.proc.stop()


def _expired_copy(cert_pem: bytes, key_pem: bytes, issuer_key_pem: bytes | None = None) -> bytes:
    """The same certificate re-signed with a validity that ended yesterday."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    cert = x509.load_pem_x509_certificate(cert_pem)
    signer = serialization.load_pem_private_key(issuer_key_pem or key_pem, password=None)
    now = dt.datetime.now(dt.UTC)
    b = (x509.CertificateBuilder().subject_name(cert.subject).issuer_name(cert.issuer).public_key(cert.public_key())
         .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=30))
         .not_valid_after(now - dt.timedelta(days=1)))
    for ext in cert.extensions:
        b = b.add_extension(ext.value, ext.critical)
    return b.sign(signer, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)  # type: ignore[arg-type]


def test_expired_or_garbled_credentials_are_regenerated_with_a_message(tmp_path: Path) -> None:
    store = str(tmp_path / "s.db")
    p = pki.ensure(store)
    ca_before, admin_before, token_before = p.ca_cert.read_bytes(), p.client_cert.read_bytes(), p.token()
    # a garbled client certificate: only it is replaced, from the same CA
    p.client_cert.write_text("not a certificate")
    r = _ks(store, "config", "view")
    assert r.returncode == 0
    assert r.stderr == (f"Warning: regenerating the admin client certificate {p.client_cert} (admin.crt is not a PEM "
                        f"certificate); kubeconfigs written before no longer work: write them again with "
                        f"`kubesvc config view`\n")
    assert p.ca_cert.read_bytes() == ca_before and p.client_cert.read_bytes() not in (admin_before, b"not a certificate")
    assert _mode(p.client_cert) == 0o600
    # an expired serving certificate: reissued, kubeconfigs keep working (same CA)
    p.server_cert.write_bytes(_expired_copy(p.server_cert.read_bytes(), p.server_key.read_bytes(), p.ca_key.read_bytes()))
    r = _ks(store, "config", "view")
    assert r.stderr.startswith(f"Warning: regenerating the API server's serving certificate {p.server_cert} "
                               f"(it expired on ")
    # an expired CA: everything signed by it is reissued, the token is kept
    p.ca_cert.write_bytes(_expired_copy(p.ca_cert.read_bytes(), p.ca_key.read_bytes()))
    admin_before = p.client_cert.read_bytes()
    r = _ks(store, "config", "view")
    assert r.returncode == 0
    assert r.stderr.startswith(f"Warning: regenerating the API server's CA in {p.dir} (it expired on ")
    assert r.stderr.endswith("kubeconfigs written before no longer work: write them again with `kubesvc config view`\n")
    assert p.ca_cert.read_bytes() != ca_before and p.client_cert.read_bytes() != admin_before
    assert p.token() == token_before
    assert pki.ensure(store) == p  # all valid again: a second look changes nothing
    r = _ks(store, "config", "view")
    assert (r.returncode, r.stderr) == (0, "")
    p.ca_key.chmod(0o644)  # loosened by hand (or a copy): narrowed back on the next use
    pki.ensure(store)
    assert _mode(p.ca_key) == 0o600


def test_up_writes_a_kubeconfig_kubectl_uses(tmp_path: Path) -> None:
    store = str(tmp_path / "up.db")
    try:
        r = _ks(store, "up", "--components", "apiserver", "--apiserver-address", "127.0.0.1:0")
        assert r.returncode == 0, r.stderr
        kc = Path(store + ".d") / "kubeconfig"
        assert f"\nkubeconfig: {kc} (kubectl --kubeconfig {kc} get svc, or export KUBECONFIG={kc})\n" in r.stdout
        assert "url=https://127.0.0.1:" in r.stdout and f"kubeconfig={kc}" in r.stdout
        assert _mode(kc) == 0o600
        if KUBECTL is not None:
            k = subprocess.run([KUBECTL, "--kubeconfig", str(kc), "--cache-dir", str(tmp_path / "cache"), "get", "ns",
                                "kube-system", "-o", "name"], capture_output=True, text=True, timeout=30)
            assert (k.returncode, k.stdout, k.stderr) == (0, "namespace/kube-system\n", "")
    finally:
        assert _ks(store, "down").returncode == 0
