"""The Codex CLI (npm @openai/codex, pinned), unmodified, against the real gateway and stub.

The CLI is installed from npm into a cache directory once (`npm install --prefix`), under a
file lock so parallel runs share one install. Each test runs `codex exec` with the README's
config.toml (its port replaced) in a fresh CODEX_HOME, HOME and working directory, with
stdin closed and a bounded timeout. Skipped, saying why, only where npm is missing; in CI
(where .ci/run installs npm) a missing npm fails instead.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from runinfra.chat.v1 import chat_service_pb2 as pb
from tests.support import Servers

CODEX_VERSION = "0.171.0"
README = Path(__file__).resolve().parents[2] / "README.md"
TIMEOUT = 90  # seconds for one `codex exec`; a run takes 1-3 s here
INSTALL_TIMEOUT = 600


def _cache_dir() -> Path:
    default = Path.home() / ".cache" / "runinfra" / f"codex-{CODEX_VERSION}"
    return Path(os.environ.get("CODEX_CLI_CACHE", default))


@pytest.fixture(scope="session")
def codex() -> Path:
    """The `codex` launcher of the pinned version, installed from npm when missing."""
    npm = shutil.which("npm")
    if npm is None:
        message = "npm is not installed: the Codex CLI tier needs it (apt-get install -y npm)"
        if os.environ.get("CI"):
            raise RuntimeError(message)  # CI installs it: never skip there
        pytest.skip(message)
    prefix = _cache_dir()
    binary = prefix / "node_modules" / ".bin" / "codex"
    prefix.mkdir(parents=True, exist_ok=True)
    with open(prefix / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run may be installing the same version
        if not _is_version(binary):
            subprocess.run(
                [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund",
                 f"@openai/codex@{CODEX_VERSION}"],
                check=True, capture_output=True, timeout=INSTALL_TIMEOUT,
            )  # fmt: skip
    assert _is_version(binary), f"{binary} is not codex-cli {CODEX_VERSION}"
    return binary


def _is_version(binary: Path) -> bool:
    if not binary.exists():
        return False
    done = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    return done.stdout.strip() == f"codex-cli {CODEX_VERSION}"


def readme_config(port: int) -> str:
    """The README's config.toml for the Codex CLI, pointed at `port`."""
    section = README.read_text().split("## Codex CLI", 1)[1]
    toml = re.search(r"```toml\n(.*?)```", section, re.DOTALL)
    assert toml is not None, "README: no config.toml block in the Codex CLI section"
    assert "127.0.0.1:8080/v1" in toml.group(1)
    return toml.group(1).replace("127.0.0.1:8080", f"127.0.0.1:{port}")


class Codex:
    """`codex exec` in its own CODEX_HOME, HOME, TMPDIR and working directory."""

    def __init__(self, binary: Path, servers: Servers, root: Path) -> None:
        self.binary, self.servers, self.root = binary, servers, root
        self.home = root / "codex_home"
        self.work = root / "work"
        for folder in (self.home, self.work, root / "home", root / "tmp"):
            folder.mkdir()
        self.config = readme_config(servers.port)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        (self.home / "config.toml").write_text(self.config)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.root / "home"),
            "CODEX_HOME": str(self.home),
            "TMPDIR": str(self.root / "tmp"),
            "GATEWAY_API_KEY": "unused",
        }
        return subprocess.run(
            [str(self.binary), "exec", "--skip-git-repo-check", "--strict-config", *args],
            cwd=self.work, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=TIMEOUT, check=False,
        )  # fmt: skip


@pytest.fixture()
def run_codex(codex: Path, servers: Servers, tmp_path: Path) -> Iterator[Codex]:
    yield Codex(codex, servers, tmp_path)


def calls_since(servers: Servers, start: int) -> list[pb.ChatRequest]:
    return list(servers.stub.service.calls[start:])


def test_text_turn_with_reasoning(run_codex: Codex, servers: Servers) -> None:
    start = len(servers.stub.service.calls)
    done = run_codex.run("-m", "stub-think", "say hello")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout == "say hello\n"  # stdout is the final message only
    [call] = calls_since(servers, start)
    assert call.model == "stub-think"
    # Codex's namespace tool reached the backend flattened, beside its function tools.
    names = [t.name for t in call.tools]
    assert "exec_command" in names and "multi_agent_v1__close_agent" in names


def test_tool_turn_runs_the_shell_tool(run_codex: Codex, servers: Servers) -> None:
    start = len(servers.stub.service.calls)
    done = run_codex.run("-m", "stub-args", "exec_command echo hello-from-codex")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("Tool result: ")
    assert "Process exited with code 0" in done.stdout and "hello-from-codex" in done.stdout
    first, second = calls_since(servers, start)
    assert not any(m.role == pb.ROLE_TOOL for m in first.messages)
    assert second.messages[-1].role == pb.ROLE_TOOL
    assert "hello-from-codex" in second.messages[-1].content[0].text
    assert json.loads(second.messages[-2].tool_calls[0].arguments) == {
        "cmd": "echo hello-from-codex"
    }


def test_namespaced_call_is_routed_by_codex(run_codex: Codex) -> None:
    done = run_codex.run("-m", "stub-args", "multi_agent_v1__close_agent not-an-agent")
    assert done.returncode == 0, done.stderr[-3000:]
    # The multi-agent tool itself ran (an unrouted call says "unsupported call").
    assert done.stdout.startswith("Tool result: invalid agent id not-an-agent")


def test_output_schema(run_codex: Codex, servers: Servers, tmp_path: Path) -> None:
    schema = {
        "type": "object",
        "properties": {"greeting": {"type": "string"}, "count": {"type": "integer"}},
        "required": ["greeting", "count"],
        "additionalProperties": False,
    }
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(schema))
    start = len(servers.stub.service.calls)
    done = run_codex.run("-m", "stub-echo", "--output-schema", str(path), "greet me")
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout) == {"greeting": "stub", "count": 0}
    [call] = calls_since(servers, start)
    assert call.response_format.type == pb.RESPONSE_FORMAT_TYPE_JSON_SCHEMA
    assert json.loads(call.response_format.json_schema.schema) == schema


def test_web_search_left_on_is_a_clear_400(run_codex: Codex) -> None:
    run_codex.config = run_codex.config.replace('web_search = "disabled"', "")
    done = run_codex.run("-m", "stub-echo", "say hello")
    assert done.returncode == 1
    assert "Tools of type 'web_search' are not supported" in done.stderr
