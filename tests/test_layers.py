"""Imports flow one way: cli > apiserver/dataplane > controllers > registry > store > api > errors/config.

SQL stays in `store`; Typer and rich stay in `cli`; the data-plane features stay independent of each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "kubesvc"
RANK = {"errors": 0, "config": 0, "api": 1, "store": 2, "registry": 3, "controllers": 3, "dataplane": 5,
        "apiserver": 5, "cli": 6}
SQL = {"sqlite3", "sqlite_utils"}
UI = {"typer", "rich", "click"}


def layer(path: Path) -> str:
    rel = path.relative_to(PKG).parts
    return rel[0].removesuffix(".py")


def imports(path: Path) -> list[tuple[str, bool]]:
    """(module, lazy) for each import; lazy = inside a function (still counted for layering)."""
    tree = ast.parse(path.read_text())
    typing_only = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only.update(id(n) for b in node.body for n in ast.walk(b))
    out = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            out += [(a.name, False) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.module, False))
    return out


def files() -> list[Path]:
    return [p for p in PKG.rglob("*.py") if layer(p) in RANK]


def test_layers_import_one_way():
    bad = []
    for f in files():
        mine = layer(f)
        for mod, _ in imports(f):
            parts = mod.split(".")
            if parts[0] != "kubesvc" or len(parts) < 2:
                continue
            theirs = parts[1]
            if theirs in RANK and RANK[theirs] > RANK[mine]:
                bad.append(f"{f.relative_to(PKG)} imports {mod}")
    assert not bad, bad


def test_sql_only_in_store_and_ui_only_in_cli():
    bad = []
    for f in files():
        mine = layer(f)
        for mod, _ in imports(f):
            top = mod.split(".")[0]
            if top in SQL and mine != "store":
                bad.append(f"{f.relative_to(PKG)} imports {mod}")
            if top in UI and mine != "cli":
                bad.append(f"{f.relative_to(PKG)} imports {mod}")
    assert not bad, bad


def test_dataplane_features_are_independent():
    features = ("proxy", "dns", "ingress")
    bad = []
    for f in (PKG / "dataplane").rglob("*.py"):
        rel = f.relative_to(PKG / "dataplane").parts
        if rel[0] not in features:
            continue
        for mod, _ in imports(f):
            parts = mod.split(".")
            if parts[:2] == ["kubesvc", "dataplane"] and len(parts) > 2 and parts[2] in features and parts[2] != rel[0]:
                bad.append(f"dataplane/{'/'.join(rel)} imports {mod}")
    assert not bad, bad
