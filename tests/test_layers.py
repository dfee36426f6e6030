"""Imports flow one way: cli > apiserver/dataplane > controllers > registry > store > api > errors/config.

SQL stays in `store`; Typer and rich stay in `cli`; the data-plane features stay independent of each other;
imports are absolute (`from kubesvc.api import kinds`, never `from . import kinds`), so every rule here sees them.

Each check is a function over a package tree; the last test plants one violation of each kind in a scratch
tree and shows that every check reports it.
"""

from __future__ import annotations

import ast
import functools
import gc
import re
from pathlib import Path
from typing import NamedTuple

PKG = Path(__file__).resolve().parents[1] / "kubesvc"
RANK = {"errors": 0, "config": 0, "api": 1, "store": 2, "registry": 3, "controllers": 3, "dataplane": 5,
        "apiserver": 5, "cli": 6, "testing": 6}  # testing: the pytest plugin and its Plane, beside the CLI
SQL_MODULES = {"sqlite3", "sqlite_utils"}
UI = {"typer", "rich", "click"}
FEATURES = ("proxy", "dns", "ingress")
# SQL statements as this code base writes them (keywords upper case); docstrings may talk about SQL.
SQL_TEXT = re.compile(r"\b(SELECT\b[\s\S]*\bFROM|INSERT\s+(OR\s+[A-Z]+\s+)?INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|REPLACE\s+INTO"
                      r"|CREATE\s+(TABLE|(UNIQUE\s+)?INDEX|TRIGGER|VIEW)|DROP\s+(TABLE|INDEX)|ALTER\s+TABLE|PRAGMA\s+\w+"
                      r"|BEGIN\s+(IMMEDIATE|EXCLUSIVE|DEFERRED)|VACUUM)\b")
EXECUTE = {"execute", "executemany", "executescript"}
DB_HANDLE = re.compile(r"\b(conn|connection|cursor|cur|db|sqlite\w*)\b")


def layer(path: Path, pkg: Path = PKG) -> str:
    return path.relative_to(pkg).parts[0].removesuffix(".py")


def files(pkg: Path = PKG) -> list[Path]:
    return sorted(p for p in pkg.rglob("*.py") if layer(p, pkg) in RANK)


class Facts(NamedTuple):
    """What the checks need from one file, found in one parse and one walk (see `facts`)."""

    imports: list[str]  # absolute imports, lazy ones included, those under `if TYPE_CHECKING:` left out
    relative: list[str]  # "lineno: relative import '...'"
    sql: list[str]  # "lineno: ..." for SQL text, `x.execute(...)` on a connection or with SQL, `.conn`


def _walk(tree: ast.AST) -> list[ast.AST]:
    """``list(ast.walk(tree))`` (the same breadth-first order) in a third of the time."""
    nodes, i, node_type = [tree], 0, ast.AST
    while i < len(nodes):
        node = nodes[i]
        i += 1
        for name in node._fields:
            value = getattr(node, name, None)
            if isinstance(value, list):
                nodes += [v for v in value if isinstance(v, node_type)]
            elif isinstance(value, node_type):
                nodes.append(value)
    return nodes


@functools.cache
def facts(path: Path) -> Facts:
    """Parse `path` once per process and keep only the facts (the tree is dropped). The cyclic GC is off while
    parsing (an AST holds no cycles): its collections, triggered by the many new nodes, cost twice the parse."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        nodes = _walk(ast.parse(path.read_text(), str(path)))
    finally:
        if was_enabled:
            gc.enable()
    typing_only: set[int] = set()
    docstrings: set[int] = set()
    for node in nodes:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only.update(id(n) for b in node.body for n in ast.walk(b))
        elif isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    out = Facts([], [], [])
    for node in nodes:
        if isinstance(node, ast.Import):
            if id(node) not in typing_only:
                out.imports.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level > 0:
                out.relative.append(f"{node.lineno}: relative import {ast.unparse(node)!r}")
            elif node.module and id(node) not in typing_only:
                out.imports.append(node.module)
                out.imports.extend(f"{node.module}.{a.name}" for a in node.names if a.name != "*")
        elif isinstance(node, ast.Constant):
            if isinstance(node.value, str) and id(node) not in docstrings and (m := SQL_TEXT.search(node.value)):
                out.sql.append(f"{node.lineno}: SQL {m.group(0)!r}")
        elif isinstance(node, ast.Call):
            if isinstance(node.func, ast.Attribute) and node.func.attr in EXECUTE:
                receiver = ast.unparse(node.func.value)
                sql_arg = bool(node.args) and isinstance(node.args[0], (ast.Constant, ast.JoinedStr))
                if DB_HANDLE.search(receiver) or sql_arg:
                    out.sql.append(f"{node.lineno}: {receiver}.{node.func.attr}(...)")
        elif isinstance(node, ast.Attribute) and node.attr == "conn":
            out.sql.append(f"{node.lineno}: {ast.unparse(node)} (a store's connection)")
    return out


def imports(path: Path) -> list[str]:
    """Every absolute import, lazy ones included; ``from a.b import c`` counts as ``a.b`` and ``a.b.c`` (so
    ``from kubesvc import cli`` is ``kubesvc.cli``). Imports under ``if TYPE_CHECKING:`` are left out."""
    return facts(path).imports


# --- the checks ---------------------------------------------------------------------------------------------------


def layering_violations(pkg: Path = PKG) -> list[str]:
    bad = []
    for f in files(pkg):
        mine = layer(f, pkg)
        for mod in imports(f):
            parts = mod.split(".")
            if parts[0] != "kubesvc" or len(parts) < 2:
                continue
            theirs = parts[1]
            if theirs in RANK and RANK[theirs] > RANK[mine]:
                bad.append(f"{f.relative_to(pkg)} imports {mod}")
    return sorted(set(bad))


def relative_import_violations(pkg: Path = PKG) -> list[str]:
    bad = []
    for f in sorted(pkg.rglob("*.py")):
        bad += [f"{f.relative_to(pkg)}:{v}" for v in facts(f).relative]
    return bad


def sql_violations(pkg: Path = PKG) -> list[str]:
    """sqlite3/sqlite_utils imports, SQL statement text, ``conn.execute(...)`` and reaching into a store's
    connection (``txn.conn``), anywhere but ``store/``."""
    bad = []
    for f in files(pkg):
        if layer(f, pkg) == "store":
            continue
        where = str(f.relative_to(pkg))
        bad += [f"{where} imports {mod}" for mod in imports(f) if mod.split(".")[0] in SQL_MODULES]
        bad += [f"{where}:{v}" for v in facts(f).sql]
    return sorted(set(bad))


def ui_violations(pkg: Path = PKG) -> list[str]:
    bad = []
    for f in files(pkg):
        if layer(f, pkg) != "cli":
            bad += [f"{f.relative_to(pkg)} imports {mod}" for mod in imports(f) if mod.split(".")[0] in UI]
    return sorted(set(bad))


def feature_violations(pkg: Path = PKG) -> list[str]:
    bad = []
    for f in (pkg / "dataplane").rglob("*.py"):
        rel = f.relative_to(pkg / "dataplane").parts
        if rel[0] not in FEATURES:
            continue
        for mod in imports(f):
            parts = mod.split(".")
            if parts[:2] == ["kubesvc", "dataplane"] and len(parts) > 2 and parts[2] in FEATURES and parts[2] != rel[0]:
                bad.append(f"dataplane/{'/'.join(rel)} imports {mod}")
    return sorted(set(bad))


# --- kubesvc keeps them -------------------------------------------------------------------------------------------


def test_layers_import_one_way() -> None:
    assert not layering_violations()


def test_imports_are_absolute() -> None:
    assert not relative_import_violations()


def test_sql_only_in_store() -> None:
    assert not sql_violations()


def test_ui_only_in_cli() -> None:
    assert not ui_violations()


def test_dataplane_features_are_independent() -> None:
    assert not feature_violations()


# --- the checks are not blind -------------------------------------------------------------------------------------


def test_each_check_reports_a_planted_violation(tmp_path: Path) -> None:
    pkg = tmp_path / "kubesvc"
    planted = {
        "api/__init__.py": "",
        "api/rel.py": "from . import kinds\nfrom ..store import db\n",
        "api/pkg_level.py": "from kubesvc import cli\n",
        "api/dotted.py": "def f():\n    import kubesvc.registry.generic\n",
        "store/__init__.py": "",
        "store/db.py": "import sqlite3\nQ = 'SELECT value FROM meta'\n",  # allowed here
        "cli/__init__.py": "",
        "cli/admin.py": ('"""SELECT docs FROM a docstring are fine."""\n'
                         "def count(txn):\n    return txn.conn.execute('SELECT COUNT(*) FROM allocations').fetchone()\n"),
        "cli/raw.py": "def f(db, name):\n    db.execute(f'DELETE FROM objects WHERE name={name}')\n",
        "cli/jsonpath_ok.py": "def f(path, data):\n    return path.execute(data)\n",
        "registry/lazy_sql.py": "def f():\n    from sqlite_utils import Database\n",
        "controllers/ui.py": "import rich\n",
        "dataplane/__init__.py": "",
        "dataplane/proxy/x.py": "from kubesvc.dataplane import dns\n",
    }
    for rel, text in planted.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(text)

    assert layering_violations(pkg) == ["api/dotted.py imports kubesvc.registry.generic", "api/pkg_level.py imports kubesvc.cli"]
    assert [v.split(": ", 1)[0] for v in relative_import_violations(pkg)] == ["api/rel.py:1", "api/rel.py:2"]
    sql = sql_violations(pkg)
    assert "registry/lazy_sql.py imports sqlite_utils" in sql
    assert any(v.startswith("cli/admin.py:3: SQL 'SELECT COUNT(*) FROM'") for v in sql), sql
    assert any(v.startswith("cli/admin.py:3: txn.conn.execute(") for v in sql), sql
    assert any(v.startswith("cli/admin.py:3: txn.conn (a store's connection)") for v in sql), sql
    assert any(v.startswith("cli/raw.py:2: SQL 'DELETE FROM'") for v in sql), sql
    assert any(v.startswith("cli/raw.py:2: db.execute(") for v in sql), sql
    assert not [v for v in sql if v.startswith(("store/", "cli/jsonpath_ok.py", "cli/admin.py:1"))], sql
    assert ui_violations(pkg) == ["controllers/ui.py imports rich"]
    assert feature_violations(pkg) == ["dataplane/proxy/x.py imports kubesvc.dataplane.dns"]


def test_the_fast_walk_visits_what_ast_walk_visits() -> None:
    tree = ast.parse(Path(__file__).read_text())
    assert [id(n) for n in _walk(tree)] == [id(n) for n in ast.walk(tree)]
