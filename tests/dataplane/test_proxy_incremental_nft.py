"""nftables mode's incremental render (``nft.render(..., changed=Plan.changed)``): only the changed service ports are
rendered and compared, and the result is the same model and the same transaction as a partial sync that compares
everything; applied to a real table, the table equals a fresh full render (root and nft only)."""

from __future__ import annotations

import random

import pytest

from kubesvc.dataplane.proxy import nft
from kubesvc.dataplane.proxy.snapshot import PlanSource
from kubesvc.registry.generic import Registry
from kubesvc.store.db import Store
from tests.dataplane.test_proxy_incremental import NODE, NODEPORT_CIDRS, is_local, step
from tests.dataplane.test_proxy_nft import assert_matches_fresh, needs_nft, two_tables  # noqa: F401 (fixture)


def normal(text: str) -> list[str]:
    """The statements of a transaction, order aside (within an element list too)."""
    out = []
    for ln in text.splitlines():
        head, brace, items = ln.partition(" { ")
        if brace and " element " in head:
            ln = head + " { " + ", ".join(sorted(items.rstrip(" }").split(", "))) + " }"
        out.append(ln)
    return sorted(out)


def follow(tmp_path, seed: int, syncs: int, table: str, apply: bool, ref: str = "") -> None:
    rng = random.Random(seed)
    store = Store(str(tmp_path / "s.db"))
    reg = Registry(store)
    reg.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}})
    source = PlanSource(str(tmp_path / "s.db"), NODE, NODEPORT_CIDRS, lambda: ["127.0.0.1"], is_local, full_seconds=1e9)
    try:
        _, plan = source.read()
        rs = nft.render(plan, table, fresh=True)
        if apply:
            nft.apply(rs)
        incremental = 0
        for i in range(syncs):
            history = [step(rng, store, reg) for _ in range(rng.choice([1, 1, 2]))]
            _, plan = source.read()
            got = nft.render(plan, table, rs, partial=True, changed=plan.changed)
            want = nft.render(plan, table, rs, partial=True)  # compares every chain, set and element
            assert got.model == want.model == nft.build_model(plan)[0], (i, history)
            assert normal(got.text) == normal(want.text), (i, history)
            assert set(got.units) == set(plan.ports) and set(got.cache) == set(plan.ports.values())
            incremental += plan.changed is not None
            if apply:
                nft.apply(got)
                if ref and i % 5 == 4:
                    assert_matches_fresh(plan, table, ref, got)
            rs = got
        assert incremental > syncs // 2
    finally:
        source.close()
        store.close()


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_incremental_render_equals_a_partial_render_of_everything(tmp_path, seed):
    follow(tmp_path, seed, 150, "t", apply=False)


@needs_nft
def test_incremental_transactions_leave_the_table_a_fresh_render_makes(tmp_path, two_tables):  # noqa: F811
    table, ref = two_tables
    follow(tmp_path, 21, 40, table, apply=True, ref=ref)
