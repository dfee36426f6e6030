"""docs/concepts/hardening.md names, for each attack, the tests that reproduce it: every one must exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "concepts" / "hardening.md"


def _referenced() -> list[tuple[str, str | None]]:
    refs = []
    for cell in re.findall(r"`(tests/[\w/]+\.py)((?:::\w+)?)`", DOC.read_text()):
        refs.append((cell[0], cell[1][2:] or None))
    # `::name` right after a full reference names another test in the same file
    last = None
    for m in re.finditer(r"`(tests/[\w/]+\.py)?(::\w+)`", DOC.read_text()):
        last = m.group(1) or last
        if last and not m.group(1):
            refs.append((last, m.group(2)[2:]))
    return refs


def test_every_test_named_in_the_hardening_table_exists():
    refs = _referenced()
    assert len(refs) > 20
    for path, name in refs:
        file = ROOT / path
        assert file.exists(), path
        if name:
            tree = ast.parse(file.read_text())
            names = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
            assert name in names, f"{path}::{name}"
