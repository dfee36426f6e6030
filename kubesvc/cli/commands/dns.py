"""`kubesvc dns`: serve the cluster DNS zone in the foreground (or print a pod's resolv.conf)."""

from __future__ import annotations

from typing import Annotated

import typer

from kubesvc.cli import common
from kubesvc.cli.common import NamespaceOpt, StoreOpt
from kubesvc.errors import ClientError

Opt = typer.Option
PODS_MODES = ("insecure", "verified", "disabled")


def dns(
    listen: Annotated[str | None, Opt("--listen", help="ADDR:PORT to serve on (port 0 picks a free one). Default: the kube-dns Service's cluster IP, port 53.")] = None,
    allow_from: Annotated[list[str] | None, Opt("--allow-from", help="Also answer clients in this CIDR (repeatable). Loopback clients are always answered.")] = None,
    ttl: Annotated[int, Opt("--ttl", help="TTL of cluster answers in seconds (0-3600).")] = 5,
    pods: Annotated[str, Opt("--pods", help="Pod A records a-b-c-d.<ns>.pod.<zone>: insecure, verified or disabled.")] = "insecure",
    resolv_conf: Annotated[str, Opt("--resolv-conf", help="Where the default upstream servers come from when the kube-dns ConfigMap names none.")] = "/etc/resolv.conf",
    upstream_timeout: Annotated[float, Opt("--upstream-timeout", help="Seconds to wait for each upstream server.")] = 2.0,
    max_tcp_connections: Annotated[int, Opt("--max-tcp-connections", help="Most TCP connections open at once; a new one past it closes the least recently active idle one.")] = 512,
    tcp_idle_timeout: Annotated[str, Opt("--tcp-idle-timeout", help="Close a TCP connection after this long without a query (e.g. 5s, 500ms).")] = "5s",
    udp_receive_buffer: Annotated[int, Opt("--udp-receive-buffer", help="Bytes asked for the UDP receive buffer, capped by net.core.rmem_max; 0 keeps the system's default.")] = 4194304,
    healthz_bind_address: Annotated[str | None, Opt("--healthz-bind-address", help="ADDR:PORT of /health, /ready and /healthz (200, or 503 naming what fails, e.g. not following the store); port 0 picks one, \"\" disables. Default 127.0.0.1:8181 (a free port when taken: see the ready line).")] = None,
    print_resolv_conf: Annotated[bool, Opt("--print-resolv-conf", help="Print the resolv.conf a pod in the namespace (-n) would get, and exit.")] = False,
    verbose: Annotated[int, Opt("--verbose", "-v", count=True, help="More logs on stderr (-vv: every sync and upstream failure).")] = 0,
    namespace: NamespaceOpt = None,
    store: StoreOpt = None,
) -> None:
    """Serve cluster DNS (Services, endpoints, pods, stub domains, upstreams) over UDP and TCP."""
    from kubesvc.dataplane.dns import server

    path = common.store_path(store)
    if print_resolv_conf:
        ns, _ = common.namespace(namespace)
        common.out(_port_note(path) + server.print_resolv_conf(path, ns))
        return
    if not 0 <= ttl <= 3600:
        raise ClientError(f"invalid --ttl {ttl}: must be between 0 and 3600")
    if pods not in PODS_MODES:
        raise ClientError(f'invalid --pods "{pods}": must be one of {", ".join(PODS_MODES)}')
    if not 0 < upstream_timeout <= 60:
        raise ClientError(f"invalid --upstream-timeout {upstream_timeout}: must be > 0 and <= 60 seconds")
    if not 1 <= max_tcp_connections <= 1_000_000:
        raise ClientError(f"invalid --max-tcp-connections {max_tcp_connections}: must be between 1 and 1000000")
    idle = common.parse_duration(tcp_idle_timeout, "--tcp-idle-timeout")
    if not 0 <= udp_receive_buffer <= 1 << 30:
        raise ClientError(f"invalid --udp-receive-buffer {udp_receive_buffer}: must be between 0 and 1073741824 bytes")
    opts = server.DNSOptions(
        store_path=path, listen=listen, ttl=ttl, pods=pods, allow_from=tuple(allow_from or ()),
        resolv_conf=resolv_conf, upstream_timeout=upstream_timeout, verbosity=verbose,
        max_tcp_connections=max_tcp_connections, tcp_idle_timeout=idle, udp_receive_buffer=udp_receive_buffer,
        healthz_bind_address=healthz_bind_address,
    )
    code = server.run(opts)
    if code:
        raise common.Exit(code)


def _port_note(path: str) -> str:
    """Comment lines for the resolv.conf when the DNS server `kubesvc up` started is not on port 53 (it fell back
    to 1053 without root): resolv.conf cannot name a port."""
    from kubesvc.dataplane import supervisor

    dns = supervisor.running(supervisor.RunDir(path)).get("dns")
    host, _, port = (dns.ready.get("udp", "") if dns else "").rpartition(":")
    if not port or port == "53":
        return ""
    return (f"# kubesvc dns listens on {host}:{port}, and resolv.conf cannot name a port: query it with\n"
            f"# `dig -p {port} @{host.strip('[]')} NAME`, or let it have port 53 (once, as root:\n"
            f"# `sysctl -w net.ipv4.ip_unprivileged_port_start=53`, then `kubesvc down && kubesvc up`).\n")
