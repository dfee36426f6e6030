"""LoadBalancerRR and ClientIP affinity as transcripts: injected clock and shuffle, no sockets."""

from __future__ import annotations

import random

import pytest

from kubesvc.dataplane.proxy.balancer import Balancer, NoEndpoints

A, B, C = ("10.0.0.1", 80), ("10.0.0.2", 80), ("10.0.0.3", 80)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def make(eps=(A, B, C), affinity: bool = False, ttl: int = 10) -> tuple[Balancer, Clock]:
    clock = Clock()
    b = Balancer(clock=clock, rng=random.Random(7))
    b.configure(affinity, ttl)
    b.set_endpoints(list(eps))
    return b, clock


def test_round_robin_visits_each_endpoint_once_per_cycle() -> None:
    b, _ = make()
    picks = [b.next("1.1.1.1") for _ in range(6)]
    assert sorted(picks[:3]) == [A, B, C]
    assert picks[3:] == picks[:3]


def test_no_endpoints_raises() -> None:
    b, _ = make(eps=())
    with pytest.raises(NoEndpoints):
        b.next("1.1.1.1")


def test_same_set_in_another_order_keeps_order_and_index() -> None:
    b, _ = make()
    first = b.next("x")
    order = list(b.endpoints)
    assert b.set_endpoints([C, B, A]) is False
    assert b.endpoints == order
    assert b.next("x") != first


def test_changed_set_reshuffles_and_resets_index() -> None:
    b, _ = make()
    b.next("x")
    assert b.set_endpoints([A, B]) is True
    assert b.index == 0 and sorted(b.endpoints) == [A, B]


def test_client_ip_affinity_sticks_and_expires_after_idle_ttl() -> None:
    b, clock = make(affinity=True, ttl=10)
    first = b.next("1.1.1.1")
    for _ in range(5):
        clock.t += 9  # sliding window: every hit refreshes
        assert b.next("1.1.1.1") == first
    other = b.next("2.2.2.2")
    assert other != first  # a second client takes the next endpoint
    clock.t += 10  # idle for ttl seconds: expired
    assert b.next("1.1.1.1") != first or len(b.endpoints) == 1


def test_affinity_entry_purged_when_its_endpoint_goes_away() -> None:
    b, _ = make(affinity=True)
    first = b.next("1.1.1.1")
    rest = [e for e in (A, B, C) if e != first]
    b.set_endpoints(rest)
    assert "1.1.1.1" not in b.sticky
    assert b.next("1.1.1.1") in rest


def test_reset_bypasses_affinity_and_repins() -> None:
    b, _ = make(affinity=True)
    first = b.next("1.1.1.1")
    second = b.next("1.1.1.1", reset=True)
    assert second != first
    assert b.next("1.1.1.1") == second


def test_cleanup_drops_idle_entries_only() -> None:
    b, clock = make(affinity=True, ttl=10)
    b.next("1.1.1.1")
    clock.t += 5
    b.next("2.2.2.2")
    clock.t += 5
    assert b.cleanup() == 1
    assert set(b.sticky) == {"2.2.2.2"}


def test_all_endpoints_gone_clears_affinity() -> None:
    b, _ = make(affinity=True)
    b.next("1.1.1.1")
    b.set_endpoints([])
    assert b.sticky == {}


def test_turning_affinity_off_forgets_clients() -> None:
    b, _ = make(affinity=True)
    b.next("1.1.1.1")
    b.configure(False, 10)
    assert b.sticky == {}
