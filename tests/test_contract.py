"""The proto contract: buf lint and format pass, and the committed generated code is current."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def generated_files(root: Path) -> list[Path]:
    """What protoc and its plugins write under `root` (relative paths), caches left out."""
    return sorted(
        p.relative_to(root)
        for p in root.rglob("*_pb2*")
        if p.suffix in (".py", ".pyi") and "__pycache__" not in p.parts
    )


def buf() -> str:
    """buf from buf-bin: next to this Python (a virtualenv's bin/), else on PATH."""
    beside = Path(sys.executable).parent / "buf"
    path = str(beside) if beside.exists() else shutil.which("buf")
    if path is None:
        pytest.fail("buf is not installed: pip install -e '.[dev]' (it brings buf-bin)")
    return path


def test_buf_lint() -> None:
    result = subprocess.run([buf(), "lint"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_buf_format() -> None:
    result = subprocess.run(
        [buf(), "format", "-d", "--exit-code"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, "buf format would change:\n" + result.stdout + result.stderr


def test_generated_code_is_current(tmp_path: Path) -> None:
    """Regenerate with PATH stripped to the system's: the plugins must be found by path."""
    env = {**os.environ, "PATH": "/usr/bin:/bin"}
    subprocess.run(
        [sys.executable, "scripts/gen_protos.py", "--out", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        env=env,
    )
    generated = generated_files(tmp_path)
    assert generated == [Path("runinfra") / p for p in generated_files(ROOT / "runinfra")]
    for name in generated:
        assert (tmp_path / name).read_text() == (ROOT / name).read_text(), (
            f"{name} is stale: run python scripts/gen_protos.py"
        )


def test_breaking_against_previous_commit() -> None:
    """Only ever add fields: buf breaking (FILE) against the last commit that has the proto."""
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    head = subprocess.run(
        [git, "log", "-n", "1", "--format=%H", "HEAD~1", "--", "protos"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    if head.returncode != 0 or not head.stdout.strip():
        pytest.skip("no earlier commit of protos/ to compare with")
    against = f".git#ref={head.stdout.strip()}"
    result = subprocess.run(
        [buf(), "breaking", "--against", against], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
