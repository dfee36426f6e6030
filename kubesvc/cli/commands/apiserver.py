"""`kubesvc apiserver`: serve the Kubernetes REST API over the store, in the foreground.

Rules kept here:
- HTTPS and authentication by default: the serving certificate and the client CA come from the store's
  credentials (``apiserver/pki.py``, ``<store>.d/pki/``); a request needs the admin client certificate (or any
  signed by that CA) or ``Authorization: Bearer`` with the store's token (``--token-file`` names another).
- Plain HTTP only with ``--insecure-plain-http``, which prints a warning saying what it gives away, and only on
  loopback addresses.
- ``--write-kubeconfig PATH`` writes, once serving, a kubeconfig for this server (mode 0600); `kubesvc up`
  asks for ``<store>.d/kubeconfig``.
"""

from __future__ import annotations

import getpass
import ipaddress
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from kubesvc.cli import common
from kubesvc.cli.common import StoreOpt
from kubesvc.errors import ClientError

Opt = typer.Option

INSECURE_FLAG = "--insecure-plain-http"


def read_token(path: str | None) -> str | None:
    """The bearer token: the first non-empty line of the file."""
    if path is None:
        return None
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise ClientError(f"cannot read --token-file {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ClientError(f"--token-file {path} is not text") from None
    token = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    if not token:
        raise ClientError(f"--token-file {path} holds no token")
    return token


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def insecure_warning(token: bool) -> str:
    user = getpass.getuser()
    if token:
        return (f"{INSECURE_FLAG}: serving the API over plain HTTP: the bearer token and every object travel "
                f"unencrypted, and nothing proves to clients that they reach this server")
    return (f"{INSECURE_FLAG}: serving the API over plain HTTP with no authentication: any process on this "
            f"machine, and any web page a local browser opens, can create pods that run commands as {user}")


def write_kubeconfig(path: str, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600 (the file holds credentials), replacing it whole."""
    import os

    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, target)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise ClientError(f"cannot write kubeconfig {path}: {e.strerror or e}") from None


def _note_bootstrap(path: str, address: str) -> None:
    """The ``kubernetes`` Service of ``default`` (kubesvc.apiserver.bootstrap); a failure is a warning."""
    from kubesvc.apiserver import bootstrap

    reason = bootstrap.ensure(path, address)
    if reason:
        common.warn(reason)


def apiserver(
    bind_address: Annotated[str, Opt("--bind-address", help="Address to serve on.")] = "127.0.0.1",
    port: Annotated[int, Opt("--port", help="Port to serve on (0 picks a free one; the ready line tells which).")] = 6443,
    token_file: Annotated[str | None, Opt("--token-file", help="Accept 'Authorization: Bearer <token>' with the token in this file (default: the store's generated token, <store>.d/pki/token).")] = None,
    insecure_plain_http: Annotated[bool, Opt(INSECURE_FLAG, help="Serve plain HTTP: no TLS, and no authentication unless --token-file is given, so any local process or web page can create pods that run commands as you. Loopback only.")] = False,
    write_kubeconfig_path: Annotated[str | None, Opt("--write-kubeconfig", help="Once serving, write a kubeconfig for this server to this file (mode 0600).")] = None,
    bookmark_interval: Annotated[float, Opt("--bookmark-interval", help="Seconds between BOOKMARK events on watches that ask for them.")] = 30.0,
    max_body_bytes: Annotated[int, Opt("--max-body-bytes", help="Largest request body, whatever its transfer coding (413 beyond; at most the default).")] = 3 * 1024 * 1024,
    max_header_bytes: Annotated[int, Opt("--max-header-bytes", help="Largest request line and headers together (431 beyond).")] = 64 * 1024,
    header_timeout: Annotated[float, Opt("--header-timeout", help="Seconds for a whole request head or TLS handshake; slower clients are dropped.")] = 10.0,
    idle_timeout: Annotated[float, Opt("--idle-timeout", help="Seconds a keep-alive connection may stay idle (and a client may stop reading).")] = 90.0,
    max_connections: Annotated[int, Opt("--max-connections", help="Open connections at once (429 and closed beyond).")] = 1000,
    max_watches: Annotated[int, Opt("--max-watches", help="Watch streams at once (429 with Retry-After beyond).")] = 500,
    max_requests_inflight: Annotated[int, Opt("--max-requests-inflight", help="Other requests queued or running at once (429 with Retry-After beyond).")] = 400,
    store: StoreOpt = None,
) -> None:
    """Serve the Kubernetes API (kubectl, client libraries) over HTTPS, over the same store as the CLI.

    Requests need the client certificate or the token kept in <store>.d/pki/ (created on first use);
    `kubesvc config view` prints a kubeconfig holding them. Runs in the foreground; prints
    `kubesvc apiserver ready address=HOST:PORT url=https://... auth=...` once it serves.
    Stop with Ctrl-C or SIGTERM.
    """
    from kubesvc.apiserver import server

    if not 0 <= port <= 65535:
        raise ClientError(f"invalid --port {port}: must be between 0 and 65535")
    if bookmark_interval <= 0:
        raise ClientError(f"invalid --bookmark-interval {bookmark_interval}: must be positive")
    path = common.store_path(store)
    limits = server.Limits(max_body_bytes=max_body_bytes, max_header_bytes=max_header_bytes, header_timeout=header_timeout,
                           idle_timeout=idle_timeout, max_connections=max_connections, max_watches=max_watches,
                           max_requests_inflight=max_requests_inflight)
    token = read_token(token_file)
    ssl_context = None
    hosts: list[str] = []
    if insecure_plain_http:
        if not _is_loopback(bind_address):
            raise ClientError(f"refusing to serve plain HTTP on non-loopback address {bind_address}: "
                              f"drop {INSECURE_FLAG} to serve HTTPS with authentication")
        common.warn(insecure_warning(token is not None))
        auth = "token" if token else "none"
    else:
        from kubesvc.apiserver import pki as pki_mod

        pki = pki_mod.ensure(path, [bind_address], note=common.warn)
        hosts = pki_mod._server_names([bind_address])  # the names the serving certificate carries are valid Hosts
        if token is None:
            token = pki.token()
        try:
            ssl_context = pki.server_context()
        except (OSError, ValueError) as e:
            raise ClientError(f"cannot load the API server's certificate from {pki.dir}: {e}") from None
        auth = "x509,token"
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def ready(srv: server.ApiServer) -> None:
        extra = ""
        _note_bootstrap(path, srv.address)
        if write_kubeconfig_path:
            from kubesvc.cli.commands.config import kubeconfig_text

            write_kubeconfig(write_kubeconfig_path, kubeconfig_text(path, srv.url, token if insecure_plain_http else None))
            extra = f" kubeconfig={Path(write_kubeconfig_path).absolute()}"
        sys.stdout.write(f"kubesvc apiserver ready address={srv.address} url={srv.url} auth={auth}{extra}\n")
        sys.stdout.flush()

    try:
        server.serve(path, bind_address, port, token, ready=ready, stop=stop, bookmark_interval=bookmark_interval,
                     ssl_context=ssl_context, insecure=insecure_plain_http, limits=limits, hosts=hosts)
    except OSError as e:
        raise ClientError(f"cannot listen on {bind_address}:{port}: {e.strerror or e}") from None
