"""Imports point down only: everything imports `runinfra`; `runinfra` imports none of the
packages built on it; the gateway, the backends and the benchmark never import each other.
The one exception is the gateway's composition root, which injects the embedded stub."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
PACKAGES = ("runinfra", "gateway", "backend_stub", "backend_openai", "backend_local", "bench")
# package -> the project packages it may import (besides itself)
ALLOWED: dict[str, frozenset[str]] = {
    "runinfra": frozenset(),
    "gateway": frozenset({"runinfra"}),
    "backend_stub": frozenset({"runinfra"}),
    "backend_openai": frozenset({"runinfra"}),
    "backend_local": frozenset({"runinfra"}),
    "bench": frozenset({"runinfra"}),
}
EXCEPTIONS = {("gateway/__main__.py", "backend_stub")}  # python -m gateway embeds the stub


def imported_packages(path: Path) -> set[str]:
    """The top-level names of every module `path` imports, wherever the import statement is."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def test_every_package_is_walked() -> None:
    walked = {p.relative_to(ROOT).parts[0] for p in modules()}
    assert {"runinfra", "gateway", "backend_stub", "backend_openai", "bench"} <= walked


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down(path: Path) -> None:
    rel = path.relative_to(ROOT)
    package = rel.parts[0]
    project = set(PACKAGES) & imported_packages(path)
    upward = project - {package} - ALLOWED[package]
    upward -= {target for source, target in EXCEPTIONS if source == rel.as_posix()}
    assert not upward, (
        f"{rel} imports {sorted(upward)}: only {sorted(ALLOWED[package])} is below it"
    )


def test_the_walker_sees_nested_and_relative_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "import gateway.http\nfrom backend_stub import server\n"
        "def f():\n    from bench.common import x\nfrom . import sibling\n"
    )
    assert imported_packages(module) == {"gateway", "backend_stub", "bench"}
