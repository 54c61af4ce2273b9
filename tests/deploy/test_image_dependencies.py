"""The image installs `uv sync --frozen --no-dev`: everything the package imports must be in it.

Without Docker the image cannot be built here, so this checks the same thing offline: the
third-party modules that gateway/ and schemas/ import (outside `try: ... except ImportError`
and `if TYPE_CHECKING:`) belong to distributions in the lock's runtime closure, i.e. the
project's dependencies and their dependencies, without the dev and bench groups.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

from .chart import REPO

PROJECT = "oc-event-gateway"
PACKAGES = ("gateway", "schemas")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_closure(lock: dict[str, Any]) -> set[str]:
    """Names of the locked distributions `uv sync --no-dev` installs (extras followed)."""
    packages = {_normalise(p["name"]): p for p in lock["package"]}
    wanted: list[tuple[str, tuple[str, ...]]] = [(PROJECT, ())]
    seen: set[tuple[str, tuple[str, ...]]] = set()
    while wanted:
        name, extras = wanted.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        package = packages[name]
        dependencies = list(package.get("dependencies", []))
        for extra in extras:
            dependencies += package.get("optional-dependencies", {}).get(extra, [])
        for dependency in dependencies:
            wanted.append((_normalise(dependency["name"]), tuple(dependency.get("extra", ()))))
    return {name for name, _ in seen} - {PROJECT}


def _guarded(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Inside `try/except ImportError` or `if TYPE_CHECKING:`: not needed at run time."""
    while node in parents:
        parent = parents[node]
        if isinstance(parent, ast.Try) and node in parent.body:
            caught = {
                name.id
                for handler in parent.handlers
                if handler.type is not None
                for name in ast.walk(handler.type)
                if isinstance(name, ast.Name)
            }
            if caught & {"ImportError", "ModuleNotFoundError"}:
                return True
        if isinstance(parent, ast.If) and "TYPE_CHECKING" in ast.unparse(parent.test):
            return node in parent.body
        node = parent
    return False


def imported_modules(root: Path) -> dict[str, set[str]]:
    """Top-level third-party module -> the files importing it unguarded."""
    found: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            if _guarded(node, parents):
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in PACKAGES:
                    found.setdefault(top, set()).add(str(path.relative_to(root.parent)))
    return found


def test_lock_closure_follows_extras() -> None:
    lock = {
        "package": [
            {"name": PROJECT, "dependencies": [{"name": "a", "extra": ["x"]}]},
            {
                "name": "a",
                "dependencies": [{"name": "b"}],
                "optional-dependencies": {"x": [{"name": "c"}]},
            },
            {"name": "b"},
            {"name": "c"},
            {"name": "dev-only"},
        ]
    }
    assert runtime_closure(lock) == {"a", "b", "c"}


def test_guarded_imports_are_not_required(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "import httpx\n"
        "try:\n    import opentelemetry\nexcept ImportError:\n    opentelemetry = None\n"
        "if TYPE_CHECKING:\n    import mypy_extensions\n"
    )
    assert set(imported_modules(tmp_path)) == {"httpx"}


def test_runtime_imports_are_installed_without_dev_dependencies() -> None:
    closure = runtime_closure(tomllib.loads((REPO / "uv.lock").read_text()))
    assert {"starlette", "uvicorn", "aiokafka"} <= closure
    assert not {"pytest", "mypy", "kubernetes-validate", "matplotlib"} & closure
    distributions = importlib.metadata.packages_distributions()
    missing = {}
    for package in PACKAGES:
        for module, files in imported_modules(REPO / package).items():
            owners = {_normalise(d) for d in distributions.get(module, [module])}
            if not owners & closure:
                missing[module] = sorted(files)
    assert not missing, f"imported but not in the image (dev-only or not locked): {missing}"
