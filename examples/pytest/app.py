"""greeter: a tiny app that finds its backend by the Service's DNS name, as it would in a cluster.

It asks DNS for the SRV record ``_http._tcp.<service>.<namespace>.svc.cluster.local`` (the port named ``http`` of
the Service: port and host name), resolves the host name to the Service's cluster IP and GETs ``/hostname`` there.
In a pod, the resolver is the pod's (``/etc/resolv.conf``); ``CLUSTER_DNS=HOST:PORT`` names another one (a
resolv.conf cannot name a port, and the test's DNS listens on a free one).

    CLUSTER_DNS=127.0.0.1:5353 python app.py            # prints: hello from backend-6c9f...
"""

from __future__ import annotations

import os
import sys
import urllib.request

import dns.resolver


def resolver(nameserver: str | None) -> dns.resolver.Resolver:
    if not nameserver:
        return dns.resolver.Resolver()
    host, _, port = nameserver.rpartition(":")
    r = dns.resolver.Resolver(configure=False)
    r.nameservers = [host]
    r.port = int(port)
    return r


def discover(service: str, namespace: str = "default", nameserver: str | None = None) -> str:
    """The backend's base URL, from DNS alone."""
    r = resolver(nameserver)
    srv = r.resolve(f"_http._tcp.{service}.{namespace}.svc.cluster.local", "SRV")[0]
    ip = r.resolve(srv.target, "A")[0].to_text()
    return f"http://{ip}:{srv.port}"


def greet(service: str = "backend", namespace: str = "default", nameserver: str | None = None) -> str:
    with urllib.request.urlopen(discover(service, namespace, nameserver) + "/hostname", timeout=5) as resp:
        return f"hello from {resp.read().decode().strip()}"


if __name__ == "__main__":
    print(greet(os.environ.get("BACKEND_SERVICE", "backend"), os.environ.get("BACKEND_NAMESPACE", "default"),
                os.environ.get("CLUSTER_DNS")))
    sys.exit(0)
