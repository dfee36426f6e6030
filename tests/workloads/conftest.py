"""Fixtures of the workloads tests (see fixtures.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.procs import Proc
from tests.workloads.fixtures import Bed


@pytest.fixture
def bed(tmp_path: Path) -> Iterator[Bed]:
    procs: list[Proc] = []

    def spawn(store: str, *args: str) -> Proc:
        p = Proc(store, *args)
        procs.append(p)
        return p

    b = Bed(tmp_path, spawn)
    try:
        yield b
    finally:
        try:
            b.stop()
        finally:
            for p in procs:
                p.stop()
