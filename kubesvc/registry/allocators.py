"""Pure range allocators for cluster IPs, load-balancer IPs, pod IPs and NodePorts.

Rules kept here (spec §4):
- IPv4 ranges never hand out the network or broadcast address.
- Service ranges split into a lower static band and an upper dynamic band of
  ``min(max(16, size/16), 256)`` addresses; automatic allocation picks a random free address in the
  upper band and falls back to the lower band only when the upper one is full. The first address is
  reserved for ``default/kubernetes`` and the tenth for ``kube-system/kube-dns`` (auto-allocation skips
  them; a user may still ask for them).
- NodePort ranges: static band ``min(max(16, size/32), 128)`` ports at the bottom; same policy.
- Random scan: pick a random offset, then scan forward with wrap-around to the first free slot.
The caller passes a ``taken`` predicate (a lookup in the store inside the write transaction).
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable

from kubesvc.errors import InternalError


class RangeFull(InternalError):
    pass


def _scan(lo: int, hi: int, taken: Callable[[int], bool], rng: random.Random, skip: set[int]) -> int | None:
    """First free value in [lo, hi] from a random offset, wrapping. Tries random probes first."""
    size = hi - lo + 1
    if size <= 0:
        return None
    for _ in range(min(32, size)):
        v = lo + rng.randrange(size)
        if v not in skip and not taken(v):
            return v
    start = rng.randrange(size)
    for i in range(size):
        v = lo + (start + i) % size
        if v not in skip and not taken(v):
            return v
    return None


class IPRange:
    def __init__(self, cidr: str, banded: bool = True) -> None:
        self.cidr = cidr
        self.net = ipaddress.ip_network(cidr, strict=False)
        first = int(self.net.network_address)
        last = int(self.net.broadcast_address)
        if self.net.version == 4 and self.net.num_addresses > 2:
            first, last = first + 1, last - 1
        self.first, self.last = first, last
        size = last - first + 1
        self.static_size = min(max(16, size // 16), 256) if banded else 0
        if self.static_size >= size:
            self.static_size = 0

    def contains(self, ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return addr.version == self.net.version and self.first <= int(addr) <= self.last

    def reserved(self) -> set[int]:
        """Addresses auto-allocation leaves alone: the first (kubernetes) and tenth (kube-dns)."""
        return {self.first, self.first + 9}

    def nth(self, n: int) -> str:
        """The n-th usable address (1-based): nth(1) is the kubernetes Service's, nth(10) kube-dns's."""
        return str(ipaddress.ip_address(self.first + n - 1))

    def pick(self, taken: Callable[[str], bool], rng: random.Random | None = None, what: str = "serviceIP") -> str:
        rng = rng or random.Random()
        is_taken = lambda v: taken(str(ipaddress.ip_address(v)))  # noqa: E731
        skip = self.reserved()
        lo_dyn = self.first + self.static_size
        v = _scan(lo_dyn, self.last, is_taken, rng, skip)
        if v is None and self.static_size:
            v = _scan(self.first, lo_dyn - 1, is_taken, rng, skip)
        if v is None:
            raise RangeFull(f"failed to allocate a {what}: range is full")
        return str(ipaddress.ip_address(v))


class PortRange:
    def __init__(self, lo: int, hi: int) -> None:
        self.lo, self.hi = lo, hi
        size = hi - lo + 1
        self.static_size = 0 if size < 16 else min(max(16, size // 32), 128)

    def contains(self, port: int) -> bool:
        return self.lo <= port <= self.hi

    def text(self) -> str:
        return f"{self.lo}-{self.hi}"

    def pick(self, taken: Callable[[int], bool], rng: random.Random | None = None) -> int:
        rng = rng or random.Random()
        lo_dyn = self.lo + self.static_size
        v = _scan(lo_dyn, self.hi, taken, rng, set())
        if v is None and self.static_size:
            v = _scan(self.lo, lo_dyn - 1, taken, rng, set())
        if v is None:
            raise RangeFull("failed to allocate a nodePort: range is full")
        return v
