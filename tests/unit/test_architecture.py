"""The layering, enforced: core/ is pure, adapters/ stand beside it, bot/ composes them.

- core/ imports no SDK, database driver or HTTP library, and nothing from adapters/ or bot/.
- adapters/ import nothing from bot/ (the composition root hands them their config and the core services).
- No product module imports tests/ or testkit/, and core/, adapters/ and bot/ hold no import cycle.
- Inside core/ the rooms point one way: domain ← chat ← ports ← app. A room imports only the rooms
  before it (core/errors.py sits with the domain).
- No adapter package imports another one: each one translates one outside world; what two of them share
  is a neutral utility at the top of adapters/ (the loop thread) or is handed over by the composition root.
- bench/ and testkit/ (what tests and benches share) import nothing from tests/.

Every import counts, wherever it is written: at the top, inside a function (a lazy import) or under
`if TYPE_CHECKING:` (ast.walk sees them all).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SDKS = {"slack_bolt", "slack_sdk", "discord", "kubernetes", "sqlalchemy", "aiohttp", "aiosqlite", "asyncpg",
        "alembic", "yarl", "urllib3", "openai", "httpx"}
FORBIDDEN = {
    "core": SDKS | {"adapters", "bot", "tests", "testkit"},
    "adapters": {"bot", "tests", "testkit"},
    "bot": {"tests", "testkit"},
    "bench": {"tests"},
    "testkit": {"tests", "bench"},
}
# Kept for the original check's name: what core/ may not import.
CORE_FORBIDDEN = FORBIDDEN["core"]


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, module: str | None = None) -> set[str]:
    """The dotted names of every import in `path`: `import a.b` gives a.b; `from a import b` gives a and a.b.

    Relative imports are resolved when the file's own `module` name is given, else skipped.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level and module is None:
                continue
            base = _absolute(node, path, module or "")
            if base:
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def imported_roots(path: Path, module: str | None = None) -> set[str]:
    return {name.split(".")[0] for name in imported_modules(path, module)}


def product_files(layer: str, root: Path = ROOT) -> list[Path]:
    return sorted(p for p in (root / layer).rglob("*.py") if "migrations" not in p.parts)


def violations(layer: str) -> dict[str, list[str]]:
    found = {}
    for path in product_files(layer):
        bad = sorted(imported_roots(path, module_name(path)) & FORBIDDEN[layer])
        if bad:
            found[str(path.relative_to(ROOT))] = bad
    return found


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_only_what_it_may(layer: str) -> None:
    assert len(product_files(layer)) > 5
    assert violations(layer) == {}


def test_bench_imports_what_it_shares_with_the_tests_from_testkit() -> None:
    uses = {str(p.relative_to(ROOT)) for p in product_files("bench") if "testkit" in imported_roots(p)}
    assert len(uses) >= 5  # the check above looks where the shared code really is used


def test_core_imports_no_sdk() -> None:
    files = product_files("core")
    assert len(files) > 10
    offenders = {str(f.relative_to(ROOT)): sorted(imported_roots(f) & CORE_FORBIDDEN) for f in files}
    assert {f: mods for f, mods in offenders.items() if mods} == {}


def test_the_check_itself_catches_an_sdk_import(tmp_path: Path) -> None:
    sample = tmp_path / "x.py"
    sample.write_text("import json\nfrom slack_sdk.web import WebClient\nfrom . import sibling\n")
    assert imported_roots(sample) & CORE_FORBIDDEN == {"slack_sdk"}


def test_the_check_itself_catches_hidden_imports(tmp_path: Path) -> None:
    """A lazy import inside a function and one under TYPE_CHECKING count like any other."""
    sample = tmp_path / "x.py"
    sample.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from bot.settings import Settings\n"
        "def start() -> None:\n    import discord.http\n"
        "class A:\n    def m(self) -> None:\n        from tests.fakes import slack\n"
    )
    assert imported_roots(sample) & FORBIDDEN["adapters"] == {"bot", "tests"}
    assert imported_roots(sample) & CORE_FORBIDDEN == {"bot", "discord", "tests"}


# ------------------------------------------------------------------------------- the rooms inside core

# In order: each room may import the rooms before it, never one after it. core/errors.py (the typed
# refusals) sits with the domain; a core module in no room is itself a finding.
CORE_ROOMS = ("core.domain", "core.chat", "core.ports", "core.app")
CORE_BASE = {"core.errors": "core.domain"}


def core_room(module: str) -> str | None:
    module = next((room for base, room in CORE_BASE.items() if module == base or module.startswith(base + ".")),
                  module)
    return next((room for room in CORE_ROOMS if module == room or module.startswith(room + ".")), None)


def core_direction_violations(root: Path = ROOT) -> dict[str, list[str]]:
    """core module → the core modules it imports from a later room (or `no room` for a module outside them)."""
    found: dict[str, list[str]] = {}
    for path in product_files("core", root):
        name = module_name(path, root)
        if name == "core":
            continue
        own = core_room(name)
        if own is None:
            found[str(path.relative_to(root))] = ["no room"]
            continue
        later = set(CORE_ROOMS[CORE_ROOMS.index(own) + 1:])
        bad = {_shown(imported) for imported in imported_modules(path, name) if core_room(imported) in later}
        if bad:
            found[str(path.relative_to(root))] = sorted(bad)
    return found


def _shown(module: str) -> str:
    """`core.app.service.ApprovalService` → `core.app.service`; `core.ports.Clock` → `core.ports`."""
    room = core_room(module) or module
    return ".".join(module.split(".")[: room.count(".") + (2 if room != "core.ports" else 1)])


def test_core_rooms_point_one_way() -> None:
    assert core_direction_violations() == {}


def test_the_room_check_catches_imports_against_the_direction(tmp_path: Path) -> None:
    files = {
        "core/__init__.py": "",
        "core/errors.py": "",
        "core/ports.py": "from core.chat.messages import NewMessage\nfrom core.app.outbox import OutboxMessage\n",
        "core/domain/__init__.py": "",
        "core/domain/cluster.py": "from core.errors import SignoffError\nfrom core import ports\n",
        "core/chat/__init__.py": "",
        "core/chat/messages.py": "from core.domain.cluster import Progress\n",
        "core/chat/handlers.py": "def f() -> None:\n    from core.app.service import ApprovalService\n",
        "core/app/__init__.py": "",
        "core/app/service.py": "from core.chat import messages\nfrom core.ports import Clock\nfrom ..domain import x\n",
        "core/stray.py": "",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert core_direction_violations(tmp_path) == {
        "core/ports.py": ["core.app.outbox"],
        "core/domain/cluster.py": ["core.ports"],
        "core/chat/handlers.py": ["core.app.service"],
        "core/stray.py": ["no room"],
    }


# ------------------------------------------------------------------------- adapters stand side by side

# Top-level modules of adapters/ that any adapter may use: they know no outside world of their own.
NEUTRAL_ADAPTER_MODULES = {"adapters.loopthread"}


def adapter_unit(module: str) -> str:
    """`adapters.slack.app` → `adapters.slack`; a top-level module such as `adapters.alertmanager` is its own."""
    return ".".join(module.split(".")[:2])


def adapter_violations(root: Path = ROOT) -> dict[str, list[str]]:
    """adapter module → the other adapters it imports (a neutral module may import no adapter at all)."""
    found: dict[str, list[str]] = {}
    for path in product_files("adapters", root):
        name = module_name(path, root)
        if name == "adapters":
            continue
        own = adapter_unit(name)
        allowed = {own} | (set() if own in NEUTRAL_ADAPTER_MODULES else NEUTRAL_ADAPTER_MODULES)
        bad = {adapter_unit(m) for m in imported_modules(path, name)
               if m.startswith("adapters.") and adapter_unit(m) not in allowed}
        if bad:
            found[str(path.relative_to(root))] = sorted(bad)
    return found


def test_no_adapter_imports_another() -> None:
    assert len(product_files("adapters")) > 20
    assert adapter_violations() == {}


def test_the_adapter_check_catches_one_adapter_importing_another(tmp_path: Path) -> None:
    files = {
        "adapters/__init__.py": "",
        "adapters/loopthread.py": "",
        "adapters/alertmanager.py": "from adapters.loopthread import LoopThread\n",
        "adapters/slack/__init__.py": "",
        "adapters/slack/app.py": "from adapters.slack.render import blocks\nfrom adapters.discord import render\n",
        "adapters/slack/render.py": "from .app import x\nfrom adapters.loopthread import LoopThread\n",
        "adapters/console/__init__.py": "",
        "adapters/console/repl.py": "def f() -> None:\n    from adapters.alertmanager import parse_alertmanager\n",
        "adapters/discord/__init__.py": "from adapters import slack\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    (tmp_path / "adapters/loopthread.py").write_text("from adapters.slack import app\n")
    assert adapter_violations(tmp_path) == {
        "adapters/loopthread.py": ["adapters.slack"],
        "adapters/slack/app.py": ["adapters.discord"],
        "adapters/console/repl.py": ["adapters.alertmanager"],
        "adapters/discord/__init__.py": ["adapters.slack"],
    }


def test_the_layer_check_catches_a_bench_importing_the_tests(tmp_path: Path) -> None:
    sample = tmp_path / "storm.py"
    sample.write_text("from testkit.harness import Deployment\nfrom tests.conftest import postgres_database\n")
    assert imported_roots(sample) & FORBIDDEN["bench"] == {"tests"}
    assert imported_roots(sample) & FORBIDDEN["adapters"] == {"tests", "testkit"}


# ------------------------------------------------------------------------------------------- cycles


def import_graph(root: Path, layers: tuple[str, ...]) -> dict[str, set[str]]:
    """Module → the product modules it imports. `from a import b` depends on a.b when that is a module, else
    on a; a module's own parent packages are left out (Python imports them first in any case)."""
    files = {module_name(p, root): p for layer in layers for p in (root / layer).rglob("*.py")
             if "migrations" not in p.parts}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(node, path, name)
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    targets.add(submodule if submodule in files else base)
        ancestors = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
        graph[name] = {t for t in targets if t in files} - ancestors - {name}
    return graph


def _absolute(node: ast.ImportFrom, path: Path, module: str) -> str:
    if node.level == 0:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    package = package[: len(package) - (node.level - 1)]
    return ".".join([*package, *([node.module] if node.module else [])])


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, list[str]]] = [(start, sorted(graph[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, todo = work[-1]
            if todo:
                nxt = todo.pop()
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, sorted(graph.get(nxt, ()))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycles() -> None:
    graph = import_graph(ROOT, ("core", "adapters", "bot"))
    assert "bot.cli" in graph
    assert cycles(graph) == []


def test_the_cycle_check_catches_a_cycle_hidden_in_a_function(tmp_path: Path) -> None:
    package = tmp_path / "bot"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "cli.py").write_text("def run() -> None:\n    from bot.demo import demo\n")
    (package / "demo.py").write_text("def demo() -> None:\n    from bot import cli\n")
    (package / "settings.py").write_text("from bot import cli\n")
    graph = import_graph(tmp_path, ("bot",))
    assert cycles(graph) == [["bot.cli", "bot.demo"]]
