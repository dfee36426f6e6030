"""`kubesvc proxy`: run the userspace service proxy in the foreground (kube-proxy's flags where they exist)."""

from __future__ import annotations

import ipaddress
from typing import Annotated

import typer

from kubesvc.cli import common
from kubesvc.cli.common import StoreOpt
from kubesvc.errors import ClientError


def parse_cidrs(values: list[str], flag: str) -> tuple[str, ...]:
    out: list[str] = []
    for v in values:
        for item in filter(None, (s.strip() for s in v.split(","))):
            try:
                out.append(str(ipaddress.ip_network(item, strict=False)))
            except ValueError:
                raise ClientError(f"{flag}: invalid CIDR {item!r}") from None
    return tuple(out)


def check_bind_address(text: str, flag: str) -> str:
    host, sep, port = text.rpartition(":")
    if text and (not sep or not port.isdigit() or int(port) > 65535):
        raise ClientError(f"{flag}: {text!r} is not host:port (port 0 picks a free one; empty disables)")
    if text:
        try:
            ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            raise ClientError(f"{flag}: {host!r} is not an IP address") from None
    return text


def parse_workers(text: str) -> int:
    text = text.strip().lower()
    if text == "auto":
        import os

        try:
            return max(1, min(64, len(os.sched_getaffinity(0))))
        except (AttributeError, OSError):
            return max(1, min(64, os.cpu_count() or 1))
    if not text.isdigit() or not 1 <= int(text) <= 64:
        raise ClientError(f"--workers: {text!r} is not a number from 1 to 64 or 'auto'")
    return int(text)


MODES = ("userspace", "nftables")


def check_mode(mode: str, table: str, workers: str = "1", flag: str = "--mode") -> tuple[str, str]:
    """The proxy mode and nftables table name, checked before anything starts: nftables mode without root or without
    the nft command is a one-line error naming the cause."""
    import re

    mode = mode.strip().lower()
    if mode not in MODES:
        raise ClientError(f"{flag}: unknown proxy mode {mode!r}; choose userspace or nftables")
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]{0,63}", table):
        raise ClientError(f"--nft-table: {table!r} is not a table name (a letter, then letters, digits, '_', '-', '.'; at most 64)")
    if mode == "nftables":
        if workers.strip() not in ("1", ""):
            raise ClientError(f"{flag} nftables: the kernel forwards, so there are no proxy worker processes; drop {'--proxy-workers' if flag == '--proxy-mode' else '--workers'}")
        from kubesvc.dataplane.proxy.nft import unavailable

        why = unavailable()
        if why:
            raise ClientError(why.replace("--mode", flag, 1))
    return mode, table


NodePortAddressesOpt = Annotated[list[str] | None, typer.Option("--nodeport-addresses", help="CIDRs selecting the node addresses NodePorts listen on (comma-separated or repeated; default 127.0.0.0/8 = 127.0.0.1; a /32 names one address).")]
HealthzOpt = Annotated[str, typer.Option("--healthz-bind-address", help="host:port for /healthz (port 0 = any free port; empty disables).")]
MetricsOpt = Annotated[str, typer.Option("--metrics-bind-address", help="host:port for Prometheus /metrics (port 0 = any free port; empty disables).")]
UdpTimeoutOpt = Annotated[str, typer.Option("--udp-timeout", help="Idle time after which a UDP flow is dropped (e.g. 250ms, 10s).")]
VerbosityOpt = Annotated[int, typer.Option("-v", "--v", help="Log verbosity: 0 start/stop/errors, 1 every sync, 2 connection failures.")]


def proxy(
    nodeport_addresses: NodePortAddressesOpt = None,
    healthz_bind_address: HealthzOpt = "127.0.0.1:10256",
    metrics_bind_address: MetricsOpt = "127.0.0.1:10249",
    udp_timeout: UdpTimeoutOpt = "10s",
    verbosity: VerbosityOpt = 0,
    workers: Annotated[str, typer.Option("--workers", help="Processes sharing every listening socket (SO_REUSEPORT), 1-64, or 'auto' (one per CPU, like HAProxy's default threads); more than 1 raises the connection and request rate on several cores.")] = "1",
    status_file: Annotated[str | None, typer.Option("--status-file", help="Keep a JSON summary of what is served in this file (used by `kubesvc status`).")] = None,
    mode: Annotated[str, typer.Option("--mode", help="userspace (default: this process proxies every connection) or nftables (root: program one nftables table that DNATs in the kernel, as kube-proxy's nftables mode).")] = "userspace",
    nft_table: Annotated[str, typer.Option("--nft-table", help="nftables mode: the name of the inet table this proxy owns (replaced at start, removed at stop).")] = "kubesvc",
    hostname_override: Annotated[str, typer.Option("--hostname-override", help="This proxy's node name: endpoints with this nodeName are local (internalTrafficPolicy/externalTrafficPolicy Local, the health-check node port, the node's zone for topology hints).")] = "kubesvc-node",
    store: StoreOpt = None,
) -> None:
    """Proxy Service traffic: listen on cluster IPs, NodePorts, external and load-balancer IPs, forward to ready endpoints.

    Runs in the foreground and follows the store; prints a ready line once it serves. Stop with Ctrl-C or SIGTERM.
    """
    from kubesvc.dataplane import run_proxy
    from kubesvc.dataplane.proxy.server import ProxyOptions

    mode, nft_table = check_mode(mode, nft_table, workers)

    options = ProxyOptions(
        nodeport_addresses=parse_cidrs(nodeport_addresses or ["127.0.0.0/8"], "--nodeport-addresses"),
        healthz_bind_address=check_bind_address(healthz_bind_address, "--healthz-bind-address"),
        metrics_bind_address=check_bind_address(metrics_bind_address, "--metrics-bind-address"),
        udp_timeout=common.parse_duration(udp_timeout, "--udp-timeout"),
        verbosity=verbosity,
        status_file=status_file,
        workers=parse_workers(workers),
        node_name=hostname_override,
        mode=mode,
        nft_table=nft_table,
    )
    path = common.store_path(store)
    common.registry(store)  # open (and create) the store now, so a bad path is a one-line error
    from kubesvc.dataplane.proxy.nft import NftError

    try:
        code = run_proxy(path, options)
    except OSError as e:
        raise ClientError(str(e.strerror or e)) from None
    except NftError as e:
        raise ClientError(f"--mode nftables: {e}") from None
    if code:
        raise common.Exit(code)
