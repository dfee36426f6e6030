"""Credentials for the API server: a private CA, a serving certificate, an admin client certificate and a
bearer token, kept beside the store, as kubeadm keeps them in /etc/kubernetes/pki.

Rules kept here:
- Everything lives in ``<store>.d/pki/`` (mode 0700): ``ca.crt ca.key apiserver.crt apiserver.key admin.crt
  admin.key token``, every file mode 0600, written whole (temporary file, then rename). A lock file in the same
  directory serializes generation, so an ``up`` and a ``config view`` started together agree on one CA.
- Created on first use, reused after. A file that is missing, unreadable, not PEM, expired (or expiring within a
  day), not matching its key or not signed by the CA is generated again, and ``note`` gets one line saying which
  file and why. A new CA reissues every certificate (kubeconfigs written before stop working: the line says so).
- The serving certificate names 127.0.0.1, ::1, localhost and the bind address (an IP or a DNS name; an
  unspecified address such as 0.0.0.0 adds the host name). A bind address it lacks reissues it from the same CA,
  so kubeconfigs written before keep working.
- The admin client certificate is CN=kubesvc-admin, O=system:masters (kubeadm's admin.conf identity), usable for
  client authentication only. Keys are ECDSA P-256; the CA lasts 10 years, the others 1 year (kubeadm's defaults).
- The token is 32 random bytes, URL-safe base64: ``Authorization: Bearer <token>`` is accepted beside the client
  certificate.
- ``cryptography`` is imported only to generate or check certificates, never on the CLI's start-up path.
"""

from __future__ import annotations

import base64
import datetime as dt
import fcntl
import ipaddress
import os
import secrets
import socket
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubesvc.errors import ClientError

Note = Callable[[str], None]

LOOPBACK_NAMES = ("127.0.0.1", "::1", "localhost")
CA_DAYS = 3650
LEAF_DAYS = 365
RENEW_BEFORE = dt.timedelta(days=1)
ADMIN_CN = "kubesvc-admin"
ADMIN_GROUP = "system:masters"
FILES = ("ca.crt", "ca.key", "apiserver.crt", "apiserver.key", "admin.crt", "admin.key", "token")


def pki_dir(store_path: str) -> Path:
    return Path(os.path.abspath(store_path) + ".d") / "pki"


@dataclass(frozen=True)
class Pki:
    """Paths of one store's credentials (all present and valid once ``ensure`` returned it)."""

    dir: Path

    @property
    def ca_cert(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.dir / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.dir / "apiserver.crt"

    @property
    def server_key(self) -> Path:
        return self.dir / "apiserver.key"

    @property
    def client_cert(self) -> Path:
        return self.dir / "admin.crt"

    @property
    def client_key(self) -> Path:
        return self.dir / "admin.key"

    @property
    def token_file(self) -> Path:
        return self.dir / "token"

    def token(self) -> str:
        return self.token_file.read_text().strip()

    def server_context(self) -> ssl.SSLContext:
        """TLS 1.2+, the serving certificate, and client certificates checked against the CA when sent."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_alpn_protocols(["http/1.1"])
        ctx.load_cert_chain(self.server_cert, self.server_key)
        ctx.load_verify_locations(cafile=str(self.ca_cert))
        ctx.verify_mode = ssl.CERT_OPTIONAL
        return ctx

    def client_context(self, client_cert: bool = True) -> ssl.SSLContext:
        """What a client of this API server uses: the CA, and the admin certificate unless told not to."""
        ctx = ssl.create_default_context(cafile=str(self.ca_cert))
        if client_cert:
            ctx.load_cert_chain(self.client_cert, self.client_key)
        return ctx

    def kubeconfig_user(self, token: str | None = None) -> dict[str, str]:
        """The kubeconfig ``user`` entry: the token when given, else the admin certificate and key, embedded."""
        if token:
            return {"token": token}
        return {"client-certificate-data": _b64(self.client_cert.read_bytes()),
                "client-key-data": _b64(self.client_key.read_bytes())}

    def certificate_authority_data(self) -> str:
        return _b64(self.ca_cert.read_bytes())


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def kubeconfig(server_url: str, pki: Pki | None, token: str | None = None, name: str = "kubesvc",
               namespace: str = "default") -> dict[str, Any]:
    """A kubeconfig whose current context points at ``server_url``, standing alone (certificates embedded).

    With ``pki`` (an https URL) the cluster carries the CA and the user the admin certificate, or ``token``
    when given; without it (plain HTTP) only ``token``, if any.
    """
    cluster: dict[str, Any] = {"server": server_url}
    user: dict[str, Any] = {"token": token} if token else {}
    if pki is not None:
        cluster["certificate-authority-data"] = pki.certificate_authority_data()
        user = pki.kubeconfig_user(token)
    return {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}],
        "current-context": name,
    }


def client_url(url: str) -> str:
    """``url`` with an unspecified host (0.0.0.0, ::) replaced by loopback: where a local client connects."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        unspecified = ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return url
    if not unspecified:
        return url
    loop = "[::1]" if ":" in host else "127.0.0.1"
    return urlunsplit(parts._replace(netloc=f"{loop}:{parts.port}" if parts.port else loop))


# ------------------------------------------------------------------------------------------ ensure


def ensure(store_path: str, hosts: Iterable[str] = (), note: Note | None = None) -> Pki:
    """The store's credentials, created or repaired as needed; the serving certificate covers ``hosts`` too.

    Raises ClientError (one line, the directory and the reason) when they cannot be written.
    """
    pki = Pki(pki_dir(store_path))
    wanted = server_names(hosts)
    try:
        pki.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(pki.dir, 0o700)
        with os.fdopen(os.open(pki.dir / "lock", os.O_WRONLY | os.O_CREAT, 0o600), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            _ensure_locked(pki, wanted, note or (lambda _msg: None))
    except OSError as e:
        raise ClientError(f"cannot write the API server's credentials in {pki.dir}: {e.strerror or e}") from None
    return pki


def server_names(hosts: Iterable[str]) -> list[str]:
    """The names the serving certificate carries for a server bound to ``hosts``: loopback ones first."""
    names = list(LOOPBACK_NAMES)
    for h in hosts:
        h = h.strip("[]")
        if not h:
            continue
        try:
            if ipaddress.ip_address(h).is_unspecified:
                h = socket.gethostname()
        except ValueError:
            pass
        if h and h not in names:
            names.append(h)
    return names


_server_names = server_names  # the name an earlier caller used


def _ensure_locked(pki: Pki, names: list[str], note: Note) -> None:
    now = dt.datetime.now(dt.UTC)
    ca = _load_pair(pki.ca_cert, pki.ca_key)
    why = _ca_problem(ca, now)
    if why:
        if pki.ca_cert.exists() or pki.ca_key.exists():
            note(f"regenerating the API server's CA in {pki.dir} ({why}); kubeconfigs written before no longer "
                 f"work: write them again with `kubesvc config view`")
        ca = _make_ca()
        _write(pki.ca_key, _key_pem(ca[1]))
        _write(pki.ca_cert, _cert_pem(ca[0]))
        for name in ("apiserver", "admin"):  # signed by the old CA: reissue without a second message
            (pki.dir / f"{name}.crt").unlink(missing_ok=True)
    assert isinstance(ca, tuple)
    ca_cert, ca_key = ca
    server = _load_pair(pki.server_cert, pki.server_key)
    why = _leaf_problem(server, ca_cert, now) or _san_problem(server, names)
    if why:
        if pki.server_cert.exists() and not why.startswith("it lacks"):
            note(f"regenerating the API server's serving certificate {pki.server_cert} ({why})")
        key = _new_key()
        cert = _make_leaf(ca_cert, ca_key, key, "kube-apiserver", server=True, names=names)
        _write(pki.server_key, _key_pem(key))
        _write(pki.server_cert, _cert_pem(cert))
    admin = _load_pair(pki.client_cert, pki.client_key)
    why = _leaf_problem(admin, ca_cert, now)
    if why:
        if pki.client_cert.exists() and "missing" not in why:
            note(f"regenerating the admin client certificate {pki.client_cert} ({why}); kubeconfigs written "
                 f"before no longer work: write them again with `kubesvc config view`")
        key = _new_key()
        cert = _make_leaf(ca_cert, ca_key, key, ADMIN_CN, server=False, names=[])
        _write(pki.client_key, _key_pem(key))
        _write(pki.client_cert, _cert_pem(cert))
    try:
        token = pki.token()
    except (OSError, UnicodeDecodeError):
        token = ""
    if not token:
        if pki.token_file.exists():
            note(f"regenerating the API server's token {pki.token_file} (it was empty or unreadable)")
        _write(pki.token_file, secrets.token_urlsafe(32).encode() + b"\n")
    for f in FILES:  # a copy or a chmod may have loosened them
        p = pki.dir / f
        if p.stat().st_mode & 0o077:
            os.chmod(p, 0o600)


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# ------------------------------------------------------------------------------------------ checks


def _load_pair(cert_path: Path, key_path: Path) -> tuple[Any, Any] | None | str:
    """(certificate, key), None when both are missing, or the reason they cannot be used."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    if not cert_path.exists() and not key_path.exists():
        return None
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except OSError as e:
        return f"{cert_path.name} is unreadable: {e.strerror}"
    except ValueError:
        return f"{cert_path.name} is not a PEM certificate"
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except OSError as e:
        return f"{key_path.name} is unreadable: {e.strerror}"
    except (ValueError, TypeError):
        return f"{key_path.name} is not an unencrypted PEM private key"
    if cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) != \
            key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo):
        return f"{key_path.name} does not match {cert_path.name}"
    return cert, key


def _expiry_problem(cert: Any, now: dt.datetime) -> str:
    if cert.not_valid_after_utc - RENEW_BEFORE <= now:
        return f"it expire{'d' if cert.not_valid_after_utc <= now else 's'} on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
    if cert.not_valid_before_utc > now + dt.timedelta(minutes=5):
        return f"it is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
    return ""


def _ca_problem(pair: tuple[Any, Any] | None | str, now: dt.datetime) -> str:
    if pair is None:
        return "missing"
    if isinstance(pair, str):
        return pair
    from cryptography import x509

    try:
        is_ca = pair[0].extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    return _expiry_problem(pair[0], now) or ("" if is_ca else "ca.crt is not a CA certificate")


def _leaf_problem(pair: tuple[Any, Any] | None | str, ca_cert: Any, now: dt.datetime) -> str:
    if pair is None:
        return "missing"
    if isinstance(pair, str):
        return pair
    try:
        pair[0].verify_directly_issued_by(ca_cert)
    except Exception:  # noqa: BLE001 - ValueError, TypeError or InvalidSignature: all mean "not from this CA"
        return "it is not signed by ca.crt"
    return _expiry_problem(pair[0], now)


def _san_problem(pair: tuple[Any, Any] | None | str, names: list[str]) -> str:
    if not isinstance(pair, tuple):
        return ""
    have = set(_sans(pair[0]))
    missing = [n for n in names if _san_key(n) not in have]
    return f"it lacks {', '.join(missing)}" if missing else ""


def _san_key(name: str) -> str:
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name.lower()


def _sans(cert: Any) -> list[str]:
    from cryptography import x509

    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(v) for v in ext.get_values_for_type(x509.IPAddress)] + \
        [v.lower() for v in ext.get_values_for_type(x509.DNSName)]


# ------------------------------------------------------------------------------------------ making


def _new_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert_pem(cert: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)


def _make_ca() -> tuple[Any, Any]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"kubesvc-ca@{int(dt.datetime.now().timestamp())}")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def _make_leaf(ca_cert: Any, ca_key: Any, key: Any, cn: str, *, server: bool, names: list[str]) -> Any:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if not server:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, ADMIN_GROUP))
    now = dt.datetime.now(dt.UTC)
    b = (x509.CertificateBuilder().subject_name(x509.Name(attrs)).issuer_name(ca_cert.subject)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=LEAF_DAYS))
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                      data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                      crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
         .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server
                                               else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False))
    if names:
        sans: list[x509.GeneralName] = []
        for n in names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(n)))
            except ValueError:
                sans.append(x509.DNSName(n))
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return b.sign(ca_key, hashes.SHA256())


__all__ = ["Pki", "ensure", "pki_dir", "server_names", "kubeconfig", "client_url", "ADMIN_CN", "ADMIN_GROUP"]
