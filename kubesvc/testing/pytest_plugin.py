"""The pytest plugin (entry point ``pytest11``: ``kubesvc``): the ``kubesvc_cluster`` fixture, a private kubesvc data
plane per test (or per module, or per session). See docs/commands/pytest.md.

Rules kept here:
- Off unless used: loading the plugin registers the options, the ini keys, the marker and the fixture, and nothing
  else; no process starts and nothing heavy is imported until a test asks for ``kubesvc_cluster``.
- The fixture's scope is ``--kubesvc-scope`` (else the ``kubesvc_scope`` ini key, else ``function``). A shared
  plane (module, session) runs the union of the components its tests ask for (``@pytest.mark.kubesvc``, read at
  collection).
- Every plane lives in its own ``tmp_path_factory`` directory with every port free-picked (each xdist worker has its
  own basetemp and its own planes) and is stopped at teardown, whatever the test did; the planes a teardown never
  reached (an interrupted run) are stopped at ``pytest_unconfigure``; those of a process that dies outright, by the
  watchdog (``kubesvc.testing.watchdog``). ``--kubesvc-keep`` leaves them running and says how to reach and stop
  them in the terminal summary.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, cast

import pytest

from kubesvc.testing.plane import COMPONENTS, MAX_NODES, Plane, PlaneError

SCOPES = ("function", "module", "session")
KEPT_FILE = "kubesvc-kept.txt"


class _State:
    def __init__(self) -> None:
        self.live: list[Plane] = []
        self.watchdog: Any = None
        self.unions: dict[str, set[str]] = {}  # module nodeid (or "" for the session) -> components
        self.nodes: dict[str, int] = {}  # the same -> the most nodes a test asks for


_STATE = pytest.StashKey[_State]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kubesvc", "kubesvc data plane (kubesvc_cluster fixture)")
    group.addoption("--kubesvc-scope", choices=SCOPES, default=None,
                    help="Scope of the kubesvc_cluster fixture: function (a plane per test, the default), module or session.")
    group.addoption("--kubesvc-keep", action="store_true", default=None,
                    help="Leave every kubesvc plane running after its tests; the summary says how to reach and stop each.")
    parser.addini("kubesvc_scope", "Scope of the kubesvc_cluster fixture (function, module, session).", default="function")
    parser.addini("kubesvc_keep", "Leave kubesvc planes running after their tests.", type="bool", default=False)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "kubesvc(components=[...], nodes=1): the kubesvc components the kubesvc_cluster fixture starts for this test "
        f"(of {', '.join(COMPONENTS)}; default all); nodes=0 leaves out the kubelet, nodes=N adds it (N > 1: root, "
        "a network namespace per node)")
    config.stash[_STATE] = _State()


def _scope(fixture_name: str, config: pytest.Config) -> Literal["function", "module", "session"]:
    scope = config.getoption("kubesvc_scope") or config.getini("kubesvc_scope") or "function"
    if scope not in SCOPES:
        raise pytest.UsageError(f"kubesvc_scope: unknown scope {scope!r}; choose from {', '.join(SCOPES)}")
    return cast(Literal["function", "module", "session"], scope)


def _keep(config: pytest.Config) -> bool:
    opt = config.getoption("kubesvc_keep")
    return bool(opt) if opt is not None else bool(config.getini("kubesvc_keep"))


def wanted(marker: pytest.Mark | None) -> tuple[set[str], int]:
    """The components and node count a ``kubesvc`` marker asks for (all, 1 without one). Raises PlaneError on a bad
    marker."""
    if marker is None:
        return set(COMPONENTS), 1
    kwargs = dict(marker.kwargs)
    comps = kwargs.pop("components", marker.args[0] if marker.args else None)
    nodes = kwargs.pop("nodes", None)
    if kwargs:
        raise PlaneError(f"@pytest.mark.kubesvc: unknown argument {', '.join(kwargs)} (it takes components=[...], nodes=N)")
    if isinstance(comps, str):
        comps = [c.strip() for c in comps.split(",") if c.strip()]
    names = set(COMPONENTS) if comps is None else set(comps)
    unknown = sorted(names - set(COMPONENTS))
    if unknown:
        raise PlaneError(f"@pytest.mark.kubesvc: unknown component {', '.join(unknown)}; choose from {', '.join(COMPONENTS)}")
    if nodes is not None:
        if not isinstance(nodes, int) or isinstance(nodes, bool) or not 0 <= nodes <= MAX_NODES:
            raise PlaneError(f"@pytest.mark.kubesvc: nodes={nodes!r}: want 0 (no kubelet) to {MAX_NODES}")
        names = names | {"kubelet"} if nodes else names - {"kubelet"}
    if not names:
        raise PlaneError("@pytest.mark.kubesvc: no component to start")
    return names, max(1, nodes or 1)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """The union of what the tests of each module (and of the session) ask for, for shared planes."""
    state = config.stash[_STATE]
    for item in items:
        if "kubesvc_cluster" not in getattr(item, "fixturenames", ()):
            continue
        try:
            names, nodes = wanted(item.get_closest_marker("kubesvc"))
        except PlaneError:
            continue  # the test itself reports it, at set-up
        module = item.getparent(pytest.Module)
        for key in ("", module.nodeid if module is not None else ""):
            state.unions.setdefault(key, set()).update(names)
            state.nodes[key] = max(state.nodes.get(key, 1), nodes)


def _components(request: pytest.FixtureRequest) -> tuple[set[str], int]:
    state = request.config.stash[_STATE]
    if request.scope == "function":
        return wanted(request.node.get_closest_marker("kubesvc"))
    key = request.node.nodeid if request.scope == "module" else ""
    return state.unions.get(key) or set(COMPONENTS), state.nodes.get(key, 1)


@pytest.fixture(scope=_scope)
def kubesvc_cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plane]:
    """A running kubesvc data plane on a private store and free ports (``kubesvc.testing.plane.Plane``): kubeconfig,
    kubectl(), kubesvc(), apply(), wait_for(), service_url(), resolve(), port_forward(), logs()."""
    state = request.config.stash[_STATE]
    try:
        names, nodes = _components(request)
    except PlaneError as e:
        why = str(e)
    else:
        why = ""
    if why:
        pytest.fail(why, pytrace=False)
    if state.watchdog is None:
        from kubesvc.testing.watchdog import Watchdog

        state.watchdog = Watchdog()
    plane = Plane(tmp_path_factory.mktemp("kubesvc", numbered=True), components=sorted(names), watchdog=state.watchdog,
                  nodes=nodes)
    state.live.append(plane)
    try:
        plane.start()
    except PlaneError as e:
        why = str(e)
    if why:
        state.live.remove(plane)
        pytest.fail(why, pytrace=False)
    try:
        yield plane
    finally:
        state.live.remove(plane)
        if _keep(request.config):
            plane.release()
            _record_kept(tmp_path_factory, request.node.nodeid, plane)
        else:
            plane.stop()


def _record_kept(factory: pytest.TempPathFactory, who: str, plane: Plane) -> None:
    lines = [f"kubesvc: kept running for {who or 'the session'} (--kubesvc-keep): store {plane.store}"]
    if "apiserver" in plane.ready:
        lines.append(f"  kubectl --kubeconfig {plane.kubeconfig} get all")
    lines += [f"  kubesvc --store {plane.store} status", f"  stop it: kubesvc --store {plane.store} down"]
    with open(factory.getbasetemp() / KEPT_FILE, "a") as f:
        f.write("\n".join(lines) + "\n")


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """The kept planes, this process's and its xdist workers' (each writes under its own basetemp)."""
    factory = getattr(config, "_tmp_path_factory", None)
    if factory is None or not _keep(config):
        return
    base = Path(factory.getbasetemp())
    text = "".join(p.read_text() for p in [base / KEPT_FILE, *sorted(base.glob(f"*/{KEPT_FILE}"))] if p.exists())
    if text:
        terminalreporter.write_sep("-", "kubesvc planes left running")
        terminalreporter.write(text)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Planes whose teardown never ran (an interrupted session) stop here; then the watchdog goes."""
    state = config.stash.get(_STATE, None)
    if state is None:
        return
    for plane in list(state.live):
        try:
            if _keep(config):
                plane.release()
            else:
                plane.stop()
        finally:
            state.live.remove(plane)
    if state.watchdog is not None:
        state.watchdog.close()
        state.watchdog = None
