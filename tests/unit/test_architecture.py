"""core/ is pure: it never imports an SDK, a database driver or an HTTP library."""

from __future__ import annotations

import ast
from pathlib import Path

FORBIDDEN = {"slack_bolt", "slack_sdk", "discord", "kubernetes", "sqlalchemy", "aiohttp", "aiosqlite", "asyncpg",
             "alembic", "yarl", "urllib3", "adapters", "bot"}
CORE = Path(__file__).resolve().parents[2] / "core"


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_core_imports_no_sdk() -> None:
    files = sorted(CORE.rglob("*.py"))
    assert len(files) > 10
    offenders = {str(f.relative_to(CORE)): sorted(imported_roots(f) & FORBIDDEN) for f in files}
    assert {f: mods for f, mods in offenders.items() if mods} == {}


def test_the_check_itself_catches_an_sdk_import(tmp_path: Path) -> None:
    sample = tmp_path / "x.py"
    sample.write_text("import json\nfrom slack_sdk.web import WebClient\nfrom . import sibling\n")
    assert imported_roots(sample) & FORBIDDEN == {"slack_sdk"}
