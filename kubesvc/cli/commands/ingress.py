"""`kubesvc ingress`: serve Ingress objects (HTTP and HTTPS layer-7 routing) in the foreground."""

from __future__ import annotations

from typing import Annotated

import typer

from kubesvc.cli import common
from kubesvc.cli.common import StoreOpt
from kubesvc.errors import ClientError

Opt = typer.Option


def _size(text: str, flag: str) -> int:
    from kubesvc.dataplane.ingress.routes import parse_size

    n = parse_size(text)
    if n is None:
        raise ClientError(f"{flag}: invalid size {text!r} (want e.g. 1m, 512k, 0 for unlimited)")
    return n


def ingress(
    http_address: Annotated[str, Opt("--http-address", help="ADDR:PORT for plain HTTP (port 0 picks a free one; empty disables).")] = "127.0.0.1:80",
    https_address: Annotated[str, Opt("--https-address", help="ADDR:PORT for HTTPS (port 0 picks a free one; empty disables).")] = "127.0.0.1:443",
    ingress_class: Annotated[str, Opt("--ingress-class", help="IngressClass served (created with controller kubesvc.io/ingress when absent).")] = "kubesvc",
    default_ssl_certificate: Annotated[str | None, Opt("--default-ssl-certificate", help="NAMESPACE/NAME of a kubernetes.io/tls Secret for hosts without one (default: a self-signed certificate kept in kube-system).")] = None,
    access_log: Annotated[str, Opt("--access-log", help="Access log destination: '-' (stderr), a file path (appended), or 'off'.")] = "-",
    proxy_body_size: Annotated[str, Opt("--proxy-body-size", help="Largest request body (413 beyond); 0 = unlimited. Per Ingress: annotation nginx.ingress.kubernetes.io/proxy-body-size.")] = "1m",
    proxy_connect_timeout: Annotated[str, Opt("--proxy-connect-timeout", help="Time to connect to an endpoint before trying the next (504 when all time out).")] = "5s",
    proxy_read_timeout: Annotated[str, Opt("--proxy-read-timeout", help="Longest wait between two reads from the upstream (504 before the answer starts).")] = "60s",
    proxy_send_timeout: Annotated[str, Opt("--proxy-send-timeout", help="Longest time a client may leave the answer unread.")] = "60s",
    client_header_timeout: Annotated[str, Opt("--client-header-timeout", help="Time a client has to send a whole request head (408 after).")] = "60s",
    client_body_timeout: Annotated[str, Opt("--client-body-timeout", help="Longest wait between two reads of a request body (408 after).")] = "60s",
    keepalive_timeout: Annotated[str, Opt("--keepalive-timeout", help="Idle time after which a keep-alive client connection is closed.")] = "75s",
    max_header_size: Annotated[str, Opt("--max-header-size", help="Largest request head (431 beyond; a single line over 8k is 414/431 too).")] = "32k",
    workers: Annotated[int, Opt("--workers", help="Processes serving the same listeners (SO_REUSEPORT), each following the store; e.g. one per core.")] = 1,
    healthz_bind_address: Annotated[str | None, Opt("--healthz-bind-address", help="ADDR:PORT of /healthz (200, or 503 naming what fails, e.g. not following the store); port 0 picks one, \"\" disables. Default 127.0.0.1:10254 (a free port when taken: see the ready line).")] = None,
    verbosity: Annotated[int, Opt("-v", "--v", help="Log verbosity: 0 start/stop/errors, 1 every sync.")] = 0,
    store: StoreOpt = None,
) -> None:
    """Route HTTP and HTTPS to Services by Ingress rules (hosts, paths, TLS), like ingress-nginx.

    Runs in the foreground and follows the store; prints a ready line with the bound addresses. Stop with Ctrl-C or SIGTERM.
    """
    from kubesvc.dataplane.ingress import server
    from kubesvc.dataplane.ingress.http import HTTPConfig

    cfg = HTTPConfig(
        connect_timeout=common.parse_duration(proxy_connect_timeout, "--proxy-connect-timeout"),
        read_timeout=common.parse_duration(proxy_read_timeout, "--proxy-read-timeout"),
        send_timeout=common.parse_duration(proxy_send_timeout, "--proxy-send-timeout"),
        header_timeout=common.parse_duration(client_header_timeout, "--client-header-timeout"),
        body_timeout=common.parse_duration(client_body_timeout, "--client-body-timeout"),
        keepalive_timeout=common.parse_duration(keepalive_timeout, "--keepalive-timeout"),
        body_limit=_size(proxy_body_size, "--proxy-body-size"),
        max_header_bytes=max(1024, _size(max_header_size, "--max-header-size")),
    )
    opts = server.IngressOptions(
        store_path=common.store_path(store), http_address=http_address, https_address=https_address,
        ingress_class=ingress_class, default_ssl_certificate=default_ssl_certificate, access_log=access_log,
        http=cfg, verbosity=verbosity, workers=workers, healthz_bind_address=healthz_bind_address,
    )
    if not 1 <= workers <= 64:
        raise ClientError(f"--workers: want 1 to 64, got {workers}")
    server.parse_address(http_address, "--http-address")
    server.parse_address(https_address, "--https-address")
    if healthz_bind_address:
        server.parse_address(healthz_bind_address, "--healthz-bind-address")
    common.registry(store)  # open (and create) the store now, so a bad path is a one-line error
    code = server.run(opts)
    if code:
        raise common.Exit(code)
