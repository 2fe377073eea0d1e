"""The layers hold: every module's path matches its import name, and no module imports
itself through a cycle (import-linter's contracts in ``pyproject.toml`` check the directions;
``make test`` runs ``lint-imports`` first)."""

import ast
import importlib
import re
import subprocess
import sys
from pathlib import Path

import grimp
import tickwire

ROOT = Path(__file__).resolve().parent.parent
SOURCE_ROOTS = ("host", "hdl", "sim", "boards")


def test_paths_match_import_names():
    for root in SOURCE_ROOTS:
        for path in (ROOT / root / "tickwire").rglob("*.py"):
            if path.name == "__main__.py":
                continue
            parts = path.relative_to(ROOT / root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            module = sys.modules.get(name) or __import__(name, fromlist=["_"])
            assert Path(module.__file__).resolve() == path.resolve(), name
    assert not (ROOT / "host" / "tickwire" / "__init__.py").exists(), "tickwire is a namespace"
    assert sorted(Path(p).resolve().parent.name for p in tickwire.__path__) == sorted(
        SOURCE_ROOTS)


def _module_cycle(graph):
    """One import cycle between modules, or None (iterative DFS)."""
    state, stack_of = {}, {}
    for start in sorted(graph.modules):
        if start in state:
            continue
        path, iters = [start], [iter(sorted(graph.find_modules_directly_imported_by(start)))]
        state[start], stack_of[start] = 1, 0
        while path:
            nxt = next(iters[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                iters.pop()
                continue
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                iters.append(iter(sorted(graph.find_modules_directly_imported_by(nxt))))
    return None


def test_no_import_cycles_between_modules():
    graph = grimp.build_graph("tickwire")
    assert _module_cycle(graph) is None, " -> ".join(_module_cycle(graph))


def test_no_local_imports_of_tickwire_outside_cocotb_benches():
    """Function-local imports of our own modules are how cycles get dodged; only the cocotb
    bench modules (loaded inside the simulator, which should not elaborate gateware) keep
    theirs."""
    found = []
    for root in SOURCE_ROOTS:
        for path in (ROOT / root / "tickwire").rglob("*.py"):
            if path.name.startswith("tb_"):
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    for inner in ast.walk(node):
                        if isinstance(inner, ast.ImportFrom) and (inner.module or "").startswith(
                                "tickwire"):
                            found.append(f"{path.relative_to(ROOT)}:{inner.lineno}")
    assert found == []


def test_import_linter_contracts_kept():
    result = subprocess.run([str(Path(sys.executable).parent / "lint-imports")],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:]


def test_readme_imports_resolve():
    """Every ``from tickwire… import …`` line in the README's examples names a real object."""
    lines = re.findall(r"^from (tickwire[\w.]*) import ([\w, ]+)$",
                       (ROOT / "README.md").read_text(), re.M)
    assert lines
    for module, names in lines:
        imported = importlib.import_module(module)
        for name in names.split(","):
            assert hasattr(imported, name.strip()), f"{module}.{name.strip()}"
