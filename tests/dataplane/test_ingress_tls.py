"""HTTPS: SNI picks the certificate of a kubernetes.io/tls Secret, unknown names get the default (self-signed)
certificate, plain HTTP to a TLS host is redirected (308), Secret changes are picked up live. The test makes its
own CA and certificates with `cryptography`; curl reaches hosts with --resolve, so nothing leaves loopback."""

from __future__ import annotations

import base64
import datetime
import json
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kubesvc.dataplane.ingress.tls import DEFAULT_CERT_NAME, DEFAULT_CERT_NS, FAKE_CN
from tests.dataplane.ingress_fixtures import FAST_FLAGS, Bed, three
from tests.support.procs import wait_for


class CA:
    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubesvc test CA")])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self.key.public_key())
                     .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
                     .not_valid_after(now + datetime.timedelta(days=1))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.key, hashes.SHA256()))

    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def leaf(self, host: str) -> tuple[bytes, bytes, int]:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        serial = x509.random_serial_number()
        cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
                .issuer_name(self.cert.subject).public_key(key.public_key()).serial_number(serial)
                .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
                .sign(self.key, hashes.SHA256()))
        return (cert.public_bytes(serialization.Encoding.PEM),
                key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
                serial)


def tls_secret(bed: Bed, name: str, cert: bytes, key: bytes) -> None:
    bed.apply({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls", "metadata": {"name": name, "namespace": "default"},
               "data": {"tls.crt": base64.b64encode(cert).decode(), "tls.key": base64.b64encode(key).decode()}})


def peer_cert(bed: Bed, server_name: str | None) -> x509.Certificate:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", bed.https_port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_name) as s:
            der = s.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def cn(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


@pytest.fixture(scope="module")
def tls_bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Bed, CA, Path]]:
    tmp = tmp_path_factory.mktemp("tls")
    bed = Bed(tmp, *FAST_FLAGS)
    try:
        three(bed)
        ca = CA()
        (tmp / "ca.pem").write_bytes(ca.pem())
        for host, secret in (("a.tls.test", "a-cert"), ("b.tls.test", "b-cert")):
            cert, key, _ = ca.leaf(host)
            tls_secret(bed, secret, cert, key)
        bed.ingress("secure", [("a.tls.test", [("/", "Prefix", "svc-a")]), ("b.tls.test", [("/", "Prefix", "svc-b")]),
                               ("plain.tls.test", [("/", "Prefix", "svc-c")])],
                    tls=[{"hosts": ["a.tls.test"], "secretName": "a-cert"}, {"hosts": ["b.tls.test"], "secretName": "b-cert"}])
        bed.start()
        bed.sync()
        yield bed, ca, tmp / "ca.pem"
    finally:
        bed.close()


def test_sni_picks_the_certificate(tls_bed: tuple[Bed, CA, Path]) -> None:
    bed, _, _ = tls_bed
    assert cn(peer_cert(bed, "a.tls.test")) == "a.tls.test"
    assert cn(peer_cert(bed, "b.tls.test")) == "b.tls.test"
    assert cn(peer_cert(bed, "unknown.tls.test")) == FAKE_CN
    assert cn(peer_cert(bed, None)) == FAKE_CN


def test_https_request_verified_by_the_test_ca(tls_bed: tuple[Bed, CA, Path]) -> None:
    bed, _, ca_path = tls_bed
    port = bed.https_port
    r = bed.curl("--cacert", str(ca_path), "--resolve", f"b.tls.test:{port}:127.0.0.1", "-D", "-", f"https://b.tls.test:{port}/hello")
    assert r.returncode == 0, r.stderr
    head, _, body = r.stdout.replace("\r\n", "\n").partition("\n\n")
    assert head.startswith("HTTP/1.1 200") and "strict-transport-security: max-age=31536000; includesubdomains" in head.lower()
    reply = json.loads(body)
    assert reply["name"] == "b" and reply["headers"]["x-forwarded-proto"] == "https"
    assert reply["headers"]["x-forwarded-port"] == str(port)
    ctx = ssl.create_default_context(cafile=str(ca_path))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, ctx.wrap_socket(raw, server_hostname="a.tls.test") as s:
        s.sendall(b"GET /x HTTP/1.1\r\nHost: a.tls.test\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200") and b'"name": "a"' in data


def test_http_to_https_redirect_308(tls_bed: tuple[Bed, CA, Path]) -> None:
    bed, _, ca_path = tls_bed
    hp, sp = bed.http_port, bed.https_port
    r = bed.curl("--resolve", f"a.tls.test:{hp}:127.0.0.1", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
                 f"http://a.tls.test:{hp}/p/q?x=1")
    assert r.stdout == f"308 https://a.tls.test:{sp}/p/q?x=1"
    r = bed.curl("-L", "--cacert", str(ca_path), "--resolve", f"a.tls.test:{hp}:127.0.0.1", "--resolve", f"a.tls.test:{sp}:127.0.0.1",
                 "-X", "POST", "-d", "abc", f"http://a.tls.test:{hp}/follow")
    reply = json.loads(r.stdout)
    assert reply["method"] == "POST" and reply["body_bytes"] == 3  # 308 keeps method and body
    assert bed.who("plain.tls.test", "/") == "c"  # no TLS section for it: no redirect


def test_secret_changes_are_picked_up(tls_bed: tuple[Bed, CA, Path]) -> None:
    bed, ca, _ = tls_bed
    cert, key, serial = ca.leaf("b.tls.test")
    tls_secret(bed, "b-cert", cert, key)
    wait_for(lambda: peer_cert(bed, "b.tls.test").serial_number == serial, timeout=10, what="new certificate")


def test_default_certificate_is_kept_in_the_store(tls_bed: tuple[Bed, CA, Path]) -> None:
    bed, _, _ = tls_bed
    s: Any = bed.store.get("Secret", DEFAULT_CERT_NS, DEFAULT_CERT_NAME)
    assert s is not None and s["type"] == "kubernetes.io/tls"
    stored = x509.load_pem_x509_certificate(base64.b64decode(s["data"]["tls.crt"]))
    assert peer_cert(bed, "nobody.test").serial_number == stored.serial_number


def test_bad_secret_falls_back_to_the_default_certificate(tls_bed: tuple[Bed, CA, Path]) -> None:
    bed, _, _ = tls_bed
    bed.apply({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls", "metadata": {"name": "bad-cert", "namespace": "default"},
               "data": {"tls.crt": base64.b64encode(b"not a cert").decode(), "tls.key": base64.b64encode(b"nope").decode()}})
    bed.ingress("bad", [("bad.tls.test", [("/", "Prefix", "svc-a")])], tls=[{"hosts": ["bad.tls.test"], "secretName": "bad-cert"}])
    bed.sync()
    assert cn(peer_cert(bed, "bad.tls.test")) == FAKE_CN
