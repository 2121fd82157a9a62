"""The house's stairs, read from the source with ``ast``: no import circle between files, no
private name imported across files, and the named crossings that once ran the wrong way."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INSTALLED_AS = {"callbacks": "rzero_pl.callbacks", "datamodules": "rzero_pl.datamodules"}


def _modules() -> dict[str, Path]:
    """Every project file by module name (``callbacks/`` and ``datamodules/`` as installed)."""
    found = {}
    for top in ("rzero_pl", *INSTALLED_AS):
        for path in (ROOT / top).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            parts = parts[:-1] if parts[-1] == "__init__" else parts
            parts[0] = INSTALLED_AS.get(parts[0], parts[0])
            found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[tuple[str, str]]:
    """(module, imported name) pairs of one file, function-level imports included; the names
    under ``if TYPE_CHECKING:`` are left out (never imported when the code runs)."""
    tree = ast.parse(path.read_text())
    typing_only = {
        id(n)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for n in ast.walk(block)
    }
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            out.update((a.name, "") for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            for a in node.names:
                full = f"{base}.{a.name}"
                out.add((full, "") if full in modules else (base, a.name))
    return out


def _owner(module: str, modules: dict[str, Path]) -> str | None:
    while module and module not in modules:
        module = module.rpartition(".")[0]
    return module or None


def _graph() -> tuple[dict[str, set[str]], list[str]]:
    """File-level import edges, and the private names imported across files."""
    modules, edges, private = _modules(), {}, []
    for name, path in modules.items():
        edges[name] = set()
        for module, imported in _imports(name, path, modules):
            owner = _owner(module, modules)
            if owner is None or owner == name:
                continue
            edges[name].add(owner)
            if imported.startswith("_") and not imported.startswith("__"):
                private.append(f"{name} imports {owner}.{imported}")
    return edges, private


def _reaches(edges: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_no_import_circle_and_no_private_name_across_files():
    edges, private = _graph()
    assert private == []
    assert [name for name in edges if name in _reaches(edges, name)] == []


def test_named_crossings_run_down():
    """analysis/ never imports the CLI (the run is built below both); the policy takes the role
    names from the ground floor, not from the engines."""
    edges, _ = _graph()
    analysis = [name for name in edges if name.startswith("rzero_pl.analysis")]
    assert all("rzero_pl.cli" not in _reaches(edges, name) for name in analysis)
    assert not any(e.startswith("rzero_pl.engines") for e in edges["rzero_pl.models.policy"])
    assert edges["rzero_pl.roles"] == set()


# The house's floors (README "Layout"; ../shared/DESIGN.md), ground first. A room is a top-level
# module or package of rzero_pl (callbacks/ and datamodules/ as installed).
FLOORS = {
    "ground": "errors grading scale prompts roles config_yaml questions vocab_dropout progress "
    "ground",
    "engines": "engines",
    "models": "models",
    "roles": "rewards grpo label_filters",
    "data": "curriculum benchmarks analysis toy released",  # released: the benchmarks' prompts too
    "top": "run cli export callbacks datamodules __main__ __init__",
}
# Arrows allowed to run up a floor, each with its reason. None is needed today.
NAMED_UPWARD: dict[tuple[str, str], str] = {}


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_floors_only_go_down():
    edges, _ = _graph()
    floor = {room: i for i, rooms in enumerate(FLOORS.values()) for room in rooms.split()}
    rooms = {_room(name) for name in edges}
    assert sorted(rooms - set(floor)) == []  # a new room is given its floor here
    upward = {
        (_room(a), _room(b))
        for a, targets in edges.items()
        for b in targets
        if floor[_room(b)] > floor[_room(a)]
    }
    assert upward <= set(NAMED_UPWARD), sorted(upward - set(NAMED_UPWARD))
    assert len(NAMED_UPWARD) <= 3


def test_the_toy_world_sits_below_the_benchmarks_that_list_it():
    """The registry lists the ``toy`` benchmark with a plain import, as it lists the others (no
    module named in a string and imported on first use), and the toy world imports nothing of
    the benchmarks: the arrow runs one way."""
    edges, _ = _graph()
    assert "rzero_pl.toy.benchmark" in edges["rzero_pl.benchmarks.registry"]
    toy = [name for name in edges if name.startswith("rzero_pl.toy")]
    assert [(a, b) for a in toy for b in edges[a] if b.startswith("rzero_pl.benchmarks")] == []
