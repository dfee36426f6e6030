"""``--isolation netns`` (root): each pod in its own network namespace with a veth pair.

Rules kept here (a Calico-style point-to-point plan, no bridge):
- Namespace ``kubesvc-<uid12>``; host side ``ksh<uid8>`` holds 169.254.1.1/32 and a /32 route to the
  pod; the pod side, renamed ``eth0``, holds the pod IP/32 with a default route via 169.254.1.1.
- The pod IP keeps the low 16 bits of the loopback address the registry allocated, inside
  ``--pod-cidr`` (default 10.244.0.0/16): unique because the allocation is, and no second allocator.
- Programs run through ``ip netns exec`` (which execs in place: the pid is the program's); a container
  of another user gets ``setpriv`` after it (the namespace switch needs root, so the user changes last).
- A kubelet restarted while pods run keeps the namespace of each pod it adopts (``adopt``).
- Inside the namespace any port may be bound (``net.ipv4.ip_unprivileged_port_start=0``, as container
  runtimes set it).
- Each container runs in a private mount namespace (``ip netns exec`` makes it, slave to the host's) where
  ``mount_prefix`` bind-mounts its volumes at their mountPath and the pod's resolv.conf (nameserver
  169.254.1.1, where the agent relays DNS to the cluster DNS: ``dnsrelay``) over /etc/resolv.conf.
- Teardown deletes the veth and the namespace; the agent tears down every namespace it made on exit.
Limits: from inside a pod the host's loopback (127.0.0.0/8: cluster IPs) is not reachable.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess

from kubesvc.errors import ClientError

GATEWAY = "169.254.1.1"


def check_available() -> None:
    if os.geteuid() != 0:
        raise ClientError("--isolation netns needs root (network namespaces and veth pairs)")
    if shutil.which("ip") is None:
        raise ClientError("--isolation netns needs iproute2 (the `ip` command)")


def _ip(*args: str, check: bool = True) -> None:
    r = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and r.returncode != 0:
        raise OSError(f"ip {' '.join(args)}: {r.stderr.strip()}")


class PodNetworks:
    def __init__(self, pod_cidr: str) -> None:
        self.net = ipaddress.IPv4Network(pod_cidr)
        if self.net.prefixlen > 16:
            raise ClientError(f"--pod-cidr {pod_cidr}: need a /16 or larger range")
        self.made: set[str] = set()

    @staticmethod
    def names(uid: str) -> tuple[str, str, str]:
        u = uid.replace("-", "")
        return f"kubesvc-{u[:12]}", f"ksh{u[:8]}", f"ksp{u[:8]}"

    def pod_ip(self, loopback_ip: str) -> str:
        low = int(ipaddress.IPv4Address(loopback_ip)) & 0xFFFF
        return str(self.net.network_address + low)

    def setup(self, uid: str, loopback_ip: str) -> str:
        ns, host, peer = self.names(uid)
        ip = self.pod_ip(loopback_ip)
        self.teardown(uid)
        self.made.add(uid)
        _ip("netns", "add", ns)
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("link", "add", host, "type", "veth", "peer", "name", peer)
        _ip("link", "set", peer, "netns", ns)
        _ip("-n", ns, "link", "set", peer, "name", "eth0")
        _ip("-n", ns, "addr", "add", f"{ip}/32", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("link", "set", host, "up")
        _ip("addr", "add", f"{GATEWAY}/32", "dev", host)
        _ip("route", "replace", f"{ip}/32", "dev", host)
        _ip("-n", ns, "route", "add", GATEWAY, "dev", "eth0", "scope", "link")
        _ip("-n", ns, "route", "add", "default", "via", GATEWAY, "dev", "eth0")
        # As container runtimes do: any port may be bound inside the pod's own namespace (nginx on :80 as nobody).
        subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_unprivileged_port_start=0"],
                       capture_output=True, check=False)
        return ip

    @staticmethod
    def setpriv() -> str:
        return shutil.which("setpriv") or "setpriv"

    def adopt(self, uid: str, loopback_ip: str) -> str:
        """The namespace of a pod whose processes still run: kept when it exists, else made."""
        if os.path.exists(f"/run/netns/{self.names(uid)[0]}"):
            self.made.add(uid)
            return self.pod_ip(loopback_ip)
        return self.setup(uid, loopback_ip)

    def wrap(self, uid: str, argv: list[str]) -> list[str]:
        return [shutil.which("ip") or "ip", "netns", "exec", self.names(uid)[0], *argv]

    def teardown(self, uid: str) -> None:
        self.drop(uid)
        self.made.discard(uid)

    @classmethod
    def drop(cls, uid: str) -> None:
        ns, host, _ = cls.names(uid)
        _ip("link", "del", host, check=False)
        _ip("netns", "del", ns, check=False)

    def cleanup_all(self) -> None:
        for uid in list(self.made):
            self.teardown(uid)


def mount_prefix(mounts: list[tuple[str, str, bool]], resolv_conf: str | None, scratch: str) -> list[str]:
    """An argv prefix that, inside the pod's mount namespace (``ip netns exec`` makes one, slave to the
    host's), bind-mounts each ``(source, mountPath, readOnly)`` and ``resolv_conf`` over /etc/resolv.conf,
    then execs the rest of the argv (so the pid stays the program's).

    A mountPath that does not exist gets its nearest existing ancestor covered by an overlay whose upper
    layer is under ``scratch`` (the pod's directory), so the host's filesystem is not changed; only an
    ancestor of ``/`` itself (e.g. ``/data``) is created on the host, empty.
    """
    import shlex

    lines = ["set -e"]
    overlays: list[str] = []
    creates: list[tuple[str, bool]] = []
    for src, target, _ in mounts:
        is_file = os.path.isfile(src)
        if os.path.lexists(target):
            continue
        anc = os.path.dirname(target.rstrip("/")) or "/"
        while not os.path.isdir(anc):
            anc = os.path.dirname(anc) or "/"
        if anc != "/" and anc not in overlays:
            overlays.append(anc)
        creates.append((target, is_file))
    for i, anc in enumerate(sorted(overlays, key=len)):
        up, work = f"{scratch}/overlay/{i}/upper", f"{scratch}/overlay/{i}/work"
        lines.append(f"mkdir -p {shlex.quote(up)} {shlex.quote(work)}")
        lines.append(f"mount -t overlay overlay -o {shlex.quote(f'lowerdir={anc},upperdir={up},workdir={work}')} "
                     f"{shlex.quote(anc)}")
    for target, is_file in creates:
        if is_file:
            lines.append(f"mkdir -p {shlex.quote(os.path.dirname(target))} && touch {shlex.quote(target)}")
        else:
            lines.append(f"mkdir -p {shlex.quote(target)}")
    for src, target, ro in mounts:
        lines.append(f"mount --bind {shlex.quote(src)} {shlex.quote(target)}")
        if ro:
            lines.append(f"mount -o remount,bind,ro {shlex.quote(target)}")
    if resolv_conf:
        lines.append(f"mount --bind {shlex.quote(resolv_conf)} /etc/resolv.conf")
    lines.append('exec "$@"')
    return [shutil.which("sh") or "/bin/sh", "-c", "\n".join(lines), "kubesvc-mounts"]
