"""tests/sdk_example.py, a program that uses every public SDK call, passes mypy --strict and
runs against the real gateway and stub."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests import sdk_example
from tests.support import Servers

ROOT = Path(__file__).resolve().parent.parent.parent


def test_the_example_passes_mypy_strict() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "tests/sdk_example.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_example_runs(servers: Servers) -> None:
    seen = sdk_example.main(servers.url + "/v1", f"127.0.0.1:{servers.stub.port}")
    assert seen[:4] == ["typed hello", "typed stream (10 events)", "deltas", "typed chat"]
    assert seen[4].startswith("chat stream (") and seen[5:7] == ["a ", "stub-echo"]
    assert seen[7].startswith("404 model_not_found ")
    assert seen[8:] == [
        "async typed", "async s", "completed", "async chat", "async cs", "x ", "stub-echo",
        "grpc typed", "grpc chunks", "stub-echo", "sync grpc", "sync chunks", "stub-echo",
    ]  # fmt: skip
