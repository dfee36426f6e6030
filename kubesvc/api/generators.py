"""`kubectl create secret tls|generic` and `kubectl create configmap` generators (kubectl's
pkg/cmd/create/create_secret*.go, create_configmap.go): the typed objects kubectl builds, in its field order,
with its client-side error texts. Pure: file contents come in as bytes.
"""

from __future__ import annotations

import base64
import os
from typing import Any

from kubesvc.errors import ClientError

_CERT_BLOCKS = (b"-----BEGIN CERTIFICATE-----",)
_KEY_MARK = b"PRIVATE KEY-----"


def _has_pem(data: bytes) -> bool:
    return b"-----BEGIN " in data


def check_key_pair(cert: bytes, key: bytes) -> None:
    """Go's tls.X509KeyPair checks, with its messages."""
    if not any(m in cert for m in _CERT_BLOCKS):
        if _KEY_MARK in cert:
            raise ClientError("tls: failed to find certificate PEM data in certificate input, but did find a private key; "
                              "PEM inputs may have been switched")
        raise ClientError("tls: failed to find any PEM data in certificate input")
    if _KEY_MARK not in key:
        if any(m in key for m in _CERT_BLOCKS):
            raise ClientError("tls: found a certificate rather than a key in the PEM for the private key")
        raise ClientError("tls: failed to find any PEM data in key input")
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        certificate = x509.load_pem_x509_certificate(cert)
        private = serialization.load_pem_private_key(key, password=None)
    except ValueError as e:
        raise ClientError(f"tls: failed to parse key pair: {e}") from None
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    if certificate.public_key().public_bytes(enc, fmt) != private.public_key().public_bytes(enc, fmt):
        raise ClientError("tls: private key does not match public key")


def tls_secret(name: str, cert: bytes, key: bytes) -> dict[str, Any]:
    check_key_pair(cert, key)
    return {
        "kind": "Secret",
        "apiVersion": "v1",
        "metadata": {"name": name, "creationTimestamp": None},
        "data": {"tls.crt": base64.b64encode(cert).decode(), "tls.key": base64.b64encode(key).decode()},
        "type": "kubernetes.io/tls",
    }


def _pairs(literals: list[str], files: list[tuple[str, bytes]]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for lit in literals:
        k, sep, v = lit.partition("=")
        if not sep or not k:
            raise ClientError(f"invalid literal source {lit}, expected key=value")
        if k in out:
            raise ClientError(f'cannot add key {k}, another key by that name already exists in Data for Secret "".')
        out[k] = v.encode()
    for spec, content in files:
        k = spec.partition("=")[0] if "=" in spec else os.path.basename(spec)
        out[k] = content
    return out


def generic_secret(name: str, literals: list[str], files: list[tuple[str, bytes]], type_: str = "") -> dict[str, Any]:
    obj: dict[str, Any] = {"kind": "Secret", "apiVersion": "v1", "metadata": {"name": name, "creationTimestamp": None}}
    data = _pairs(literals, files)
    if data:
        obj["data"] = {k: base64.b64encode(data[k]).decode() for k in sorted(data)}  # a Go map: sorted keys
    if type_:
        obj["type"] = type_
    return obj


def configmap(name: str, literals: list[str], files: list[tuple[str, bytes]]) -> dict[str, Any]:
    obj: dict[str, Any] = {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": name, "creationTimestamp": None}}
    data = _pairs(literals, files)
    text: dict[str, str] = {}
    binary: dict[str, str] = {}
    for k, v in data.items():
        try:
            text[k] = v.decode("utf-8")
        except UnicodeDecodeError:
            binary[k] = base64.b64encode(v).decode()
    if text:
        obj["data"] = dict(sorted(text.items()))
    if binary:
        obj["binaryData"] = dict(sorted(binary.items()))
    return obj
