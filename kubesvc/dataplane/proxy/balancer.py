"""Endpoint choice per service port: kube-proxy's ``LoadBalancerRR`` with honoured ClientIP affinity.

Rules kept here (spec dataplane.md §1.4, §1.5):
- Round robin over the ready endpoints. When the endpoint *set* changes (compared as sets) the new list
  is shuffled and the index reset to 0; an unchanged set keeps its order and index.
- ``ClientIP`` affinity: key = client IP only; an entry is used while whole seconds since its last use
  are ``< ttl`` and every hit refreshes it (sliding window). ``timeoutSeconds`` is honoured, including
  when only the timeout changes (userspace bug #107398 is not copied).
- Entries pointing at an endpoint that disappeared are purged; no endpoints clears the map.
- ``reset=True`` (a retry after a failed dial) bypasses affinity and re-pins the client.
- The clock and the shuffle are injected, so tests are transcripts, not sleeps.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

Endpoint = tuple[str, int]  # (ip, port)

DEFAULT_AFFINITY_SECONDS = 10800


class NoEndpoints(Exception):
    """The service port has no ready endpoint."""


class Balancer:
    __slots__ = ("endpoints", "index", "affinity", "ttl", "sticky", "clock", "rng", "_set", "hit")

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.endpoints: list[Endpoint] = []
        self._set: frozenset[Endpoint] = frozenset()
        self.index = 0
        self.affinity = False
        self.ttl = DEFAULT_AFFINITY_SECONDS
        self.sticky: dict[str, tuple[Endpoint, float]] = {}  # client ip -> (endpoint, last used)
        self.clock = clock
        self.rng = rng or random.Random()
        self.hit = False  # the last affinity pick reused the client's entry (for `kubesvc trace`)

    def configure(self, client_ip_affinity: bool, ttl_seconds: int) -> None:
        if not client_ip_affinity:
            self.sticky.clear()
        self.affinity = client_ip_affinity
        self.ttl = ttl_seconds

    def set_endpoints(self, endpoints: list[Endpoint] | tuple[Endpoint, ...]) -> bool:
        """Replace the endpoint list; returns True when the set changed."""
        new = frozenset(endpoints)
        if new == self._set:
            return False
        self._set = new
        eps = sorted(new)
        self.rng.shuffle(eps)
        self.endpoints = eps
        self.index = 0
        if not eps:
            self.sticky.clear()
        elif self.sticky:
            self.sticky = {ip: v for ip, v in self.sticky.items() if v[0] in new}
        return True

    def next(self, client_ip: str, reset: bool = False) -> Endpoint:
        eps = self.endpoints
        if not eps:
            raise NoEndpoints()
        if self.affinity:
            now = self.clock()
            if not reset:
                hit = self.sticky.get(client_ip)
                if hit is not None and int(now - hit[1]) < self.ttl:
                    self.sticky[client_ip] = (hit[0], now)
                    self.hit = True
                    return hit[0]
            self.hit = False
            ep = eps[self.index % len(eps)]
            self.index = (self.index + 1) % len(eps)
            self.sticky[client_ip] = (ep, now)
            return ep
        i = self.index
        if i >= len(eps):
            i = 0
        self.index = i + 1 if i + 1 < len(eps) else 0
        return eps[i]

    def cleanup(self) -> int:
        """Drop affinity entries idle for ttl seconds or more; returns how many were dropped."""
        if not self.sticky:
            return 0
        now = self.clock()
        stale = [ip for ip, (_, used) in self.sticky.items() if int(now - used) >= self.ttl]
        for ip in stale:
            del self.sticky[ip]
        return len(stale)
