"""TLS for the HTTPS listener: certificates from ``kubernetes.io/tls`` Secrets chosen by SNI, and the default cert.

Rules kept here (dataplane spec §3.1, §3.4):
- A Secret is usable when its type is ``kubernetes.io/tls`` (or unset) and ``data`` holds base64 PEM
  ``tls.crt`` and ``tls.key`` that load together; anything else is logged once and the host falls back to
  the default certificate, as ingress-nginx does.
- SNI picks the certificate: exact TLS host, then ``*.`` wildcard (one label), else the default certificate
  (also for clients sending no SNI).
- The default certificate is self-signed ("Kubernetes Ingress Controller Fake Certificate", SAN
  ``ingress.local``), generated once and kept in the store as the Secret
  ``kube-system/kubesvc-ingress-default-cert`` (created through the Registry), so every run and every
  process presents the same one. Generation uses ``cryptography`` when importable, else the ``openssl``
  command; ``--default-ssl-certificate NS/NAME`` names another Secret instead.
- The ``ssl`` module loads chains from files only: PEM goes to a private temporary directory, is loaded and
  removed at once.
"""

from __future__ import annotations

import base64
import logging
import os
import shutil
import ssl
import subprocess
import tempfile
from collections.abc import Callable
from typing import Any

from kubesvc.dataplane.ingress.routes import RouteTable

log = logging.getLogger("kubesvc.ingress")

DEFAULT_CERT_NS = "kube-system"
DEFAULT_CERT_NAME = "kubesvc-ingress-default-cert"
FAKE_CN = "Kubernetes Ingress Controller Fake Certificate"


class CertError(Exception):
    pass


def secret_pem(secret: dict[str, Any]) -> tuple[bytes, bytes]:
    """(cert PEM, key PEM) from a Secret; CertError with the reason when unusable."""
    typ = secret.get("type") or "kubernetes.io/tls"
    if typ != "kubernetes.io/tls":
        raise CertError(f"type is {typ}, not kubernetes.io/tls")
    data = secret.get("data") or {}
    sdata = secret.get("stringData") or {}
    out: list[bytes] = []
    for key in ("tls.crt", "tls.key"):
        if key in data:
            try:
                out.append(base64.b64decode(data[key], validate=True))
            except ValueError:
                raise CertError(f"data[{key}] is not base64") from None
        elif key in sdata:
            out.append(str(sdata[key]).encode())
        else:
            raise CertError(f"no {key} in data")
    return out[0], out[1]


def make_context(cert: bytes, key: bytes) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["http/1.1"])
    d = tempfile.mkdtemp(prefix="kubesvc-tls-")
    try:
        cpath, kpath = os.path.join(d, "tls.crt"), os.path.join(d, "tls.key")
        for path, body in ((cpath, cert), (kpath, key)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(body)
        try:
            ctx.load_cert_chain(cpath, kpath)
        except (ssl.SSLError, ValueError) as e:
            raise CertError(f"certificate and key do not load: {e.args[-1] if e.args else e}") from None
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return ctx


def generate_self_signed() -> tuple[bytes, bytes]:
    """A fresh self-signed certificate (P-256, ten years) and its key, PEM."""
    try:
        return _generate_with_cryptography()
    except ImportError:
        pass
    if shutil.which("openssl") is None:
        raise CertError("cannot make the default certificate: install the Python package cryptography or the openssl command")
    d = tempfile.mkdtemp(prefix="kubesvc-tls-")
    try:
        cpath, kpath = os.path.join(d, "tls.crt"), os.path.join(d, "tls.key")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-days", "3650", "-subj", f"/O=Acme Co/CN={FAKE_CN}", "-addext", "subjectAltName=DNS:ingress.local",
             "-keyout", kpath, "-out", cpath],
            check=True, capture_output=True, timeout=30,
        )
        with open(cpath, "rb") as c, open(kpath, "rb") as k:
            return c.read(), k.read()
    except (subprocess.SubprocessError, OSError) as e:
        raise CertError(f"cannot make the default certificate with openssl: {e}") from None
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _generate_with_cryptography() -> tuple[bytes, bytes]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme Co"), x509.NameAttribute(NameOID.COMMON_NAME, FAKE_CN)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("ingress.local")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


def ensure_default_secret(store: Any, ref: tuple[str, str] | None = None) -> dict[str, Any]:
    """The default-certificate Secret: ``ref`` when given (must exist), else the generated one (made once)."""
    from kubesvc.errors import AlreadyExists
    from kubesvc.registry.generic import Registry

    if ref is not None:
        s = store.get("Secret", ref[0], ref[1])
        if s is None:
            raise CertError(f'--default-ssl-certificate: secret "{ref[0]}/{ref[1]}" not found')
        return dict(s)
    s = store.get("Secret", DEFAULT_CERT_NS, DEFAULT_CERT_NAME)
    if s is not None:
        return dict(s)
    cert, key = generate_self_signed()
    obj = {
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
        "metadata": {"name": DEFAULT_CERT_NAME, "namespace": DEFAULT_CERT_NS,
                     "labels": {"app.kubernetes.io/managed-by": "kubesvc-ingress"}},
        "data": {"tls.crt": base64.b64encode(cert).decode(), "tls.key": base64.b64encode(key).decode()},
    }
    try:
        return dict(Registry(store).create(obj).object)
    except AlreadyExists:  # another process made it first
        return dict(store.get("Secret", DEFAULT_CERT_NS, DEFAULT_CERT_NAME))


class CertSelector:
    """Holds an SSLContext per usable Secret and answers SNI; rebuilt from each snapshot with ``update``."""

    def __init__(self, default_secret: dict[str, Any]) -> None:
        cert, key = secret_pem(default_secret)
        self.default = make_context(cert, key)
        self.default.sni_callback = self._sni  # type: ignore[assignment]
        self.table: RouteTable = RouteTable()
        self.contexts: dict[tuple[str, str], ssl.SSLContext] = {}
        self._cache: dict[tuple[str, str], tuple[str, ssl.SSLContext | None]] = {}  # key -> (resourceVersion, ctx)
        self.on_error: Callable[[str], None] = lambda msg: log.warning(msg)

    def update(self, table: RouteTable, secrets: dict[tuple[str, str], dict[str, Any]]) -> None:
        wanted = {e.secret for e in [*table.tls_exact.values(), *table.tls_wildcard.values()] if e.secret}
        contexts: dict[tuple[str, str], ssl.SSLContext] = {}
        cache: dict[tuple[str, str], tuple[str, ssl.SSLContext | None]] = {}
        for key in wanted:
            s = secrets.get(key)
            if s is None:
                if key in self._cache and self._cache[key][0] == "":
                    cache[key] = self._cache[key]
                else:
                    self.on_error(f'secret "{key[0]}/{key[1]}" not found: using the default certificate')
                    cache[key] = ("", None)
                continue
            rv = str((s.get("metadata") or {}).get("resourceVersion", ""))
            hit = self._cache.get(key)
            if hit is not None and hit[0] == rv:
                cache[key] = hit
            else:
                try:
                    cache[key] = (rv, make_context(*secret_pem(s)))
                except CertError as e:
                    self.on_error(f'secret "{key[0]}/{key[1]}": {e}: using the default certificate')
                    cache[key] = (rv, None)
            ctx = cache[key][1]
            if ctx is not None:
                contexts[key] = ctx
        self._cache = cache
        self.contexts = contexts
        self.table = table

    def context_for(self, server_name: str | None) -> ssl.SSLContext:
        if server_name:
            e = self.table.tls_for(server_name.rstrip(".").lower())
            if e is not None and e.secret is not None:
                ctx = self.contexts.get(e.secret)
                if ctx is not None:
                    return ctx
        return self.default

    def _sni(self, sslobj: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> None:
        ctx = self.context_for(server_name)
        if ctx is not self.default:
            sslobj.context = ctx
