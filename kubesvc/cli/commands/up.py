"""`kubesvc up`, `kubesvc down`, `kubesvc status`: the data plane in the background, beside the store."""

from __future__ import annotations

from typing import Annotated

import typer

from kubesvc.cli import common
from kubesvc.cli.commands.proxy import (
    NodePortAddressesOpt,
    UdpTimeoutOpt,
    VerbosityOpt,
    check_bind_address,
    check_mode,
    parse_cidrs,
    parse_workers,
)
from kubesvc.cli.common import StoreOpt
from kubesvc.errors import ClientError


def up(
    foreground: Annotated[bool, typer.Option("--foreground", help="Stay attached: run until Ctrl-C or SIGTERM, then stop everything.")] = False,
    nodeport_addresses: NodePortAddressesOpt = None,
    healthz_bind_address: Annotated[str | None, typer.Option("--healthz-bind-address", help="host:port for the proxy's /healthz (default 127.0.0.1:10256, or a free port when taken; port 0 = any free port; empty disables).")] = None,
    metrics_bind_address: Annotated[str | None, typer.Option("--metrics-bind-address", help="host:port for the proxy's /metrics (default 127.0.0.1:10249, or a free port when taken; port 0 = any free port; empty disables).")] = None,
    udp_timeout: UdpTimeoutOpt = "10s",
    verbosity: VerbosityOpt = 0,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for every component to be ready.")] = 20.0,
    components: Annotated[str | None, typer.Option("--components", help="Comma-separated components to run (default: all of proxy,dns,apiserver,kubelet,ingress).")] = None,
    dns_listen: Annotated[str | None, typer.Option("--dns-listen", help="ADDR:PORT for the DNS server (default: the kube-dns cluster IP, port 53; port 1053 when 53 needs root or is taken).")] = None,
    apiserver_address: Annotated[str | None, typer.Option("--apiserver-address", help="ADDR:PORT for the Kubernetes API server (default 127.0.0.1:6443, or a free port when taken; port 0 picks a free one).")] = None,
    proxy_mode: Annotated[str, typer.Option("--proxy-mode", help="userspace (default) or nftables (root and the nft command: the kernel DNATs Service traffic, as kube-proxy's nftables mode).")] = "userspace",
    proxy_nft_table: Annotated[str, typer.Option("--proxy-nft-table", help="With --proxy-mode nftables: the inet table the proxy owns (removed by `down`, even when the proxy was killed).")] = "kubesvc",
    proxy_workers: Annotated[str, typer.Option("--proxy-workers", help="Proxy worker processes sharing the listeners: a number or auto (one per CPU; faster, round robin per process).")] = "1",
    isolation: Annotated[str, typer.Option("--isolation", help="How the kubelet runs pods: loopback (default) or netns (root).")] = "loopback",
    nodes: Annotated[int, typer.Option("--nodes", help="Nodes on this machine (root when more than 1): each a network namespace with its own node IP (172.30.0.0/16, local only), kubelet and proxy; the control plane is shared.")] = 1,
    kubelet_run_as_root: Annotated[bool, typer.Option("--kubelet-run-as-root", help="When run as root: the kubelet runs pods without securityContext.runAsUser as root (default: as nobody, uid 65534).")] = False,
    ingress_http_address: Annotated[str | None, typer.Option("--ingress-http-address", help="ADDR:PORT for the ingress router's HTTP (default 127.0.0.1:80; 8080 when 80 needs root or is taken; empty disables).")] = None,
    ingress_https_address: Annotated[str | None, typer.Option("--ingress-https-address", help="ADDR:PORT for the ingress router's HTTPS (default 127.0.0.1:443; 8443 when 443 needs root or is taken; empty disables).")] = None,
    store: StoreOpt = None,
) -> None:
    """Start the data plane (service proxy, cluster DNS, API server, kubelet, ingress router) in the background, wait until it serves, print where it listens.

    A default address that needs root or is taken falls back (DNS to port 1053, ingress to 8080/8443, the others to
    a free port) and `up` says so in one line; an address given by flag must bind, or `up` fails naming the flag.
    """
    from kubesvc.dataplane import supervisor

    names = [c.strip() for c in (components or ",".join(supervisor.DEFAULT_COMPONENTS)).split(",") if c.strip()]
    if isolation not in ("loopback", "netns"):
        raise ClientError(f"--isolation: unknown mode {isolation!r}; choose loopback or netns")
    unknown = [n for n in names if n not in supervisor.DEFAULT_COMPONENTS]
    if unknown or not names:
        raise ClientError(f"--components: unknown component {', '.join(unknown) or '(none)'}; choose from {','.join(supervisor.DEFAULT_COMPONENTS)}")

    from kubesvc.dataplane import nodes as node_net

    node_net.check(nodes)  # more than one node: root and iproute2, before anything starts
    if "proxy" in names:
        proxy_mode, proxy_nft_table = check_mode(proxy_mode, proxy_nft_table, proxy_workers, flag="--proxy-mode")
    flags = {
        "nodeport_addresses": list(parse_cidrs(nodeport_addresses or ["127.0.0.0/8"], "--nodeport-addresses")),
        "healthz_bind_address": _address(healthz_bind_address, "--healthz-bind-address"),
        "metrics_bind_address": _address(metrics_bind_address, "--metrics-bind-address"),
        "udp_timeout": f"{common.parse_duration(udp_timeout, '--udp-timeout')}s",
        "verbosity": verbosity,
        "components": names,
        "dns_listen": _address(dns_listen or None, "--dns-listen"),
        "apiserver_address": _address(apiserver_address or None, "--apiserver-address"),
        "isolation": isolation,
        "nodes": nodes,
        "kubelet_run_as_root": kubelet_run_as_root,
        "proxy_workers": _proxy_workers(proxy_workers),
        "proxy_mode": proxy_mode,
        "proxy_nft_table": proxy_nft_table,
        "ingress_http_address": _address(ingress_http_address, "--ingress-http-address"),
        "ingress_https_address": _address(ingress_https_address, "--ingress-https-address"),
    }
    path = common.store_path(store)
    common.registry(store)  # create/open the store now: a bad path is a one-line error
    result = supervisor.up(path, flags, foreground=foreground, timeout=timeout, out=common.out)
    if result:
        raise common.Exit(result)


def _address(text: str | None, flag: str) -> str | None:
    """None: the default (which may fall back); "": disabled; else a checked ADDR:PORT."""
    return None if text is None else check_bind_address(text, flag)


def _proxy_workers(text: str) -> str:
    try:
        parse_workers(text)
    except ClientError as e:
        raise ClientError(e.message.replace("--workers", "--proxy-workers", 1)) from None
    return text.strip().lower()


def down(
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for a clean stop before killing.")] = 10.0,
    store: StoreOpt = None,
) -> None:
    """Stop the background data plane started by `kubesvc up` for this store."""
    from kubesvc.dataplane import supervisor

    supervisor.down(common.store_path(store), timeout=timeout, out=common.out)


def status(store: StoreOpt = None) -> None:
    """Tell whether the data plane runs for this store and what it serves."""
    from kubesvc.dataplane import supervisor

    code = supervisor.status(common.store_path(store), out=common.out)
    if code:
        raise common.Exit(code)
