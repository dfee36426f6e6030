"""Shared fixtures only: backend servers and kubesvc subprocesses, each stopped by the fixture."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.procs import Proc
from tests.support.servers import Backend

pytest_plugins = ["pytester"]  # tests/plugin runs inner test sessions (a non-root conftest may not load plugins)


@pytest.fixture
def backend() -> Iterator[Callable[..., Backend]]:
    """backend(name, host="127.0.0.1", port=0, mode="echo", proto="TCP") -> a running Backend."""
    started: list[Backend] = []

    def make(*args: Any, **kw: Any) -> Backend:
        b = Backend(*args, **kw)
        started.append(b)
        return b

    try:
        yield make
    finally:
        for b in started:
            b.stop()


@pytest.fixture
def kubesvc_proc() -> Iterator[Callable[..., Proc]]:
    """kubesvc_proc(store, *args) -> a running `python -m kubesvc --store store *args` (stopped at teardown)."""
    started: list[Proc] = []

    def spawn(store: str, *args: str, **kw: Any) -> Proc:
        p = Proc(store, *args, **kw)
        started.append(p)
        return p

    try:
        yield spawn
    finally:
        for p in started:
            p.stop()
