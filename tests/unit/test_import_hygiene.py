"""The engine is headless: importing core never pulls in the UI (STYLE.md habit 1), checked at run
time here. The static rules (core never imports tui or a UI library, the viewer side never imports
torch, no import circles) are import-linter contracts in pyproject.toml, run by .ci/contracts."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CORE = REPO / "core"
FORBIDDEN = ("textual", "plotext", "textual_plotext", "typer", "tui_train.tui")


def _root(name: str) -> str:
    return name.split(".")[0]


def test_importing_core_loads_no_ui_module():
    modules = ["tui_train", "tui_train.core", "tui_train.core.config", "tui_train.core.train.engine", "tui_train.core.train.data",
               "tui_train.core.train.models", "tui_train.core.run.headless", "tui_train.core.train.checkpoint"]
    every = {"tui_train.core." + ".".join(p.relative_to(CORE).with_suffix("").parts).removesuffix(".__init__")
             for p in CORE.rglob("*.py")}  # the subpackages' modules too (core/run, rundir, live, train)
    modules += sorted(every - set(modules) - {"tui_train.core.__init__"}) + ["tui_train.loop"]
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        f"bad = sorted(n for n in sys.modules if any(n == f or n.startswith(f + '.') for f in {FORBIDDEN!r}))\n"
        "print(json.dumps(bad))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]", f"core imported UI modules: {proc.stdout}"


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    """Every imported module name in a file, including imports inside functions and
    importlib.import_module("...") / __import__("...") with a literal name (which import-linter
    does not see)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            fn = node.func
            name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
            if name in ("import_module", "__import__"):
                found.append((node.lineno, node.args[0].value))
    return found


NOT_DEPENDENCIES = ("sklearn", "scipy", "pandas")
"""Not in pyproject's dependencies (issue 14: the digits ship with the package): nothing imports them."""


@pytest.mark.parametrize("folder", ["core", "tui", "bench"])
def test_no_source_imports_a_module_that_is_not_a_dependency(folder):  # bench/ too, which no contract covers
    bad = [(str(p.relative_to(REPO)), line, name) for p in sorted((REPO / folder).rglob("*.py"))
           for line, name in _imports(ast.parse(p.read_text(encoding="utf-8"))) if _root(name) in NOT_DEPENDENCIES]
    assert not bad, f"imports of modules tui-train does not depend on: {bad}"


def test_loading_the_default_data_imports_no_scikit_learn():
    code = ("import sys, torch\nfrom tui_train.core.config import DataConfig\nfrom tui_train.core.train.data import load_data\n"
            "load_data(DataConfig(dataset='digits'), torch.device('cpu'), seed=0)\n"
            f"print(sorted(n for n in sys.modules if n.split('.')[0] in {NOT_DEPENDENCIES!r}))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
