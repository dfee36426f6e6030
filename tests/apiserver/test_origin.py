"""No web page can drive the API server: a foreign ``Host`` (DNS rebinding), a cross-site ``Origin`` or
``Sec-Fetch-Site`` is refused with a 403 Status before anything else happens; and over TLS a request is
authenticated by a client certificate the server's CA signed, or by the bearer token."""

from __future__ import annotations

import datetime as dt
import json
import socket
import ssl
from pathlib import Path

import pytest

from kubesvc.apiserver.server import ApiServer
from kubesvc.store.db import Store
from tests.apiserver.test_limits import JSON_CT, SVC, Conn, assert_status, port_of, revision, serving, svc_body

POD = "/api/v1/namespaces/default/pods"


def _pod() -> bytes:
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pwned"},
                       "spec": {"containers": [{"name": "c", "image": "x", "command": ["sh", "-c", "id"]}]}}).encode()


def _pods(srv: ApiServer) -> list[str]:
    with Store(srv.store_path) as s:
        return [p["metadata"]["name"] for p in s.list("Pod")]


def test_the_web_page_attack_from_the_issue_is_refused(tmp_path: Path) -> None:
    """A POST with Origin: https://attacker.example, a foreign Host and no Content-Type created a Pod."""
    with serving(tmp_path) as srv:
        for headers, host in (({"Origin": "https://attacker.example"}, "attacker.example:6443"),
                              ({"Origin": "https://attacker.example"}, None),  # Host right, Origin foreign
                              ({}, "rebind.attacker.example:6443"),  # DNS rebinding: a same-origin GET/POST
                              ({}, None)):  # no Content-Type, no credential
            with Conn(srv) as c:
                c.request("POST", POD, _pod(), headers, host=host)
                code, _, body = c.response()
                assert code in (403, 415) and body["kind"] == "Status", body
        assert _pods(srv) == []


FOREIGN_HOSTS = ["attacker.example", "attacker.example:{port}", "localhost.attacker.example", "127.0.0.1.nip.io",
                 "10.0.0.1:{port}", "[2001:db8::1]:{port}", "kubernetes.default.svc"]


@pytest.mark.parametrize("host", FOREIGN_HOSTS)
def test_a_foreign_host_is_refused(tmp_path: Path, host: str) -> None:
    with serving(tmp_path) as srv, Conn(srv) as c:
        c.request("GET", "/api/v1/namespaces", host=host.format(port=port_of(srv)))
        body = assert_status(c.response(), 403, "Forbidden")
        assert "DNS rebinding" in body["message"]
        c.request("GET", "/version")  # no body was pending: the connection goes on
        assert c.response()[0] == 200


LOCAL_HOSTS = ["127.0.0.1:{port}", "127.0.0.1", "localhost:{port}", "LOCALHOST", "localhost.", "127.3.4.5:{port}",
               "[::1]:{port}", "api.example.test:{port}"]


@pytest.mark.parametrize("host", LOCAL_HOSTS)
def test_local_hosts_and_the_configured_names_are_served(tmp_path: Path, host: str) -> None:
    with serving(tmp_path, hosts=["api.example.test"]) as srv, Conn(srv) as c:
        c.request("GET", "/version", host=host.format(port=port_of(srv)))
        assert c.response()[0] == 200


def test_host_header_rules(tmp_path: Path) -> None:
    with serving(tmp_path) as srv:
        with Conn(srv) as c:  # HTTP/1.1 without Host
            c.send(b"GET /version HTTP/1.1\r\n\r\n")
            assert_status(c.response(), 400, "BadRequest")
        with Conn(srv) as c:  # two Hosts
            c.send(f"GET /version HTTP/1.1\r\nHost: {c.host}\r\nHost: attacker.example\r\n\r\n".encode())
            assert_status(c.response(), 400, "BadRequest")
        with Conn(srv) as c:  # a bad port
            c.send(b"GET /version HTTP/1.1\r\nHost: 127.0.0.1:99999\r\n\r\n")
            assert_status(c.response(), 400, "BadRequest")
        with Conn(srv) as c:  # HTTP/1.0 may leave Host out (no browser does); the connection then closes
            c.send(b"GET /version HTTP/1.0\r\n\r\n")
            assert c.response()[0] == 200
            assert c.closed_by_server()
        with Conn(srv) as c:  # a foreign Host with a body pending: refused before the body, connection closed
            before = revision(srv)
            c.request("POST", SVC, None, {**JSON_CT, "Content-Length": "100000"}, host="attacker.example")
            assert_status(c.response(), 403, "Forbidden")
            assert c.closed_by_server()
            assert revision(srv) == before


CROSS_ORIGINS = ["https://attacker.example", "http://attacker.example:6443", "null", "file://", "http://127.0.0.1.nip.io",
                 "chrome-extension://abc", "not a url"]


@pytest.mark.parametrize("origin", CROSS_ORIGINS)
def test_a_cross_site_origin_is_refused(tmp_path: Path, origin: str) -> None:
    with serving(tmp_path, token="t") as srv, Conn(srv) as c:  # even with the token: a page must not use it
        before = revision(srv)
        c.request("POST", SVC, svc_body("x"), {**JSON_CT, "Origin": origin, "Authorization": "Bearer t"})
        body = assert_status(c.response(), 403, "Forbidden")
        assert "cross-origin" in body["message"]
        assert c.closed_by_server()
        assert revision(srv) == before


@pytest.mark.parametrize("origin", ["http://localhost:3000", "https://127.0.0.1:{port}", "http://[::1]"])
def test_a_local_origin_is_served(tmp_path: Path, origin: str) -> None:
    with serving(tmp_path) as srv, Conn(srv) as c:
        c.request("POST", SVC, svc_body("local"), {**JSON_CT, "Origin": origin.format(port=port_of(srv))})
        assert c.response()[0] == 201


def test_sec_fetch_site_cross_site_is_refused(tmp_path: Path) -> None:
    with serving(tmp_path) as srv, Conn(srv) as c:
        c.request("GET", SVC + "?watch=true", headers={"Sec-Fetch-Site": "cross-site"})  # an <img> or <script> tag
        assert_status(c.response(), 403, "Forbidden")
        c.request("GET", "/version", headers={"Sec-Fetch-Site": "same-origin"})
        assert c.response()[0] == 200

# ----------------------------------------------------------------------------------------------- TLS


def _pki(tmp: Path) -> dict[str, Path]:
    """A CA, a serving certificate for 127.0.0.1, a client certificate it signed, and one from another CA."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def cert(cn: str, key, issuer_cert, issuer_key, ca: bool = False, server: bool = False):  # type: ignore[no-untyped-def]
        b = (x509.CertificateBuilder().subject_name(name(cn))
             .issuer_name(issuer_cert.subject if issuer_cert is not None else name(cn))
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if server:
            b = b.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        elif not ca:
            b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
        return b.sign(issuer_key, hashes.SHA256())

    out: dict[str, Path] = {}

    def write(label: str, c, k) -> None:  # type: ignore[no-untyped-def]
        out[label + ".crt"] = tmp / f"{label}.crt"
        out[label + ".key"] = tmp / f"{label}.key"
        out[label + ".crt"].write_bytes(c.public_bytes(serialization.Encoding.PEM))
        out[label + ".key"].write_bytes(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                        serialization.NoEncryption()))

    keys = {n: ec.generate_private_key(ec.SECP256R1()) for n in ("ca", "server", "client", "other", "stranger")}
    ca = cert("test-ca", keys["ca"], None, keys["ca"], ca=True)
    other = cert("other-ca", keys["other"], None, keys["other"], ca=True)
    write("ca", ca, keys["ca"])
    write("server", cert("apiserver", keys["server"], ca, keys["ca"], server=True), keys["server"])
    write("client", cert("admin", keys["client"], ca, keys["ca"]), keys["client"])
    write("stranger", cert("stranger", keys["stranger"], other, keys["other"]), keys["stranger"])
    return out


def _tls_conn(srv: ApiServer, pki: dict[str, Path], client: str | None) -> Conn:
    ctx = ssl.create_default_context(cafile=str(pki["ca.crt"]))
    if client:
        ctx.load_cert_chain(pki[client + ".crt"], pki[client + ".key"])
    raw = socket.create_connection(("127.0.0.1", port_of(srv)), timeout=10)
    return Conn(srv, sock=ctx.wrap_socket(raw, server_hostname="127.0.0.1"))


def test_tls_client_certificate_or_token(tmp_path: Path) -> None:
    pki = _pki(tmp_path)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(pki["server.crt"], pki["server.key"])
    server_ctx.load_verify_locations(pki["ca.crt"])
    server_ctx.verify_mode = ssl.CERT_OPTIONAL
    (tmp_path / "db").mkdir()
    with serving(tmp_path / "db", ssl_context=server_ctx, token="t") as srv:
        assert srv.url.startswith("https://127.0.0.1:")
        with _tls_conn(srv, pki, "client") as c:
            c.request("POST", SVC, svc_body("tls"), JSON_CT)
            assert c.response()[0] == 201
        with _tls_conn(srv, pki, None) as c:  # no certificate, no token
            c.request("POST", SVC, None, {**JSON_CT, "Content-Length": "50000"})
            assert_status(c.response(), 401, "Unauthorized")
            assert c.closed_by_server()
        with _tls_conn(srv, pki, None) as c:  # no certificate, the token
            c.request("GET", "/version", headers={"Authorization": "Bearer t"})
            assert c.response()[0] == 200
        with pytest.raises((ssl.SSLError, ConnectionError)):  # a certificate from another CA fails the handshake
            with _tls_conn(srv, pki, "stranger") as c:
                c.request("GET", "/version")
                c.response()
        with _tls_conn(srv, pki, "client") as c:  # and a cross-site Origin is refused whatever the credential
            c.request("GET", "/version", headers={"Origin": "https://attacker.example"})
            assert_status(c.response(), 403, "Forbidden")
        with socket.create_connection(("127.0.0.1", port_of(srv)), timeout=10) as raw:  # plain HTTP to a TLS port
            raw.sendall(f"GET /version HTTP/1.1\r\nHost: {srv.address}\r\n\r\n".encode())
            assert b"200 OK" not in raw.recv(4096)
