"""Test helpers: strict validation against the SDK's types, servers on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import httpx
import pydantic
import pytest
import uvicorn
from openai.types import Model
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent

from backend_stub.server import RunningStub, start
from gateway.app import create_app
from gateway.config import Settings

T = TypeVar("T")
_EVENT = pydantic.TypeAdapter(ResponseStreamEvent)


# Keys the OpenAPI spec (and OpenAI's live API) has that the SDK's types do not declare.
KNOWN_EXTRAS = {
    "Response": {"store"},  # required by the issue; OpenAI sends it
    "ResponseFunctionCallArgumentsDoneEvent": {"name"},  # required in the spec
    # Reasoning text on Chat Completions: the field DeepSeek, vLLM, SGLang and llama.cpp use
    # (required by the issue; OpenAI's own models do not return their reasoning here).
    "ChoiceDelta": {"reasoning_content"},
    "ChatCompletionMessage": {"reasoning_content"},
}


def _no_extras(value: object, path: str) -> None:
    """The SDK's models accept unknown keys; a strict check must not."""
    if isinstance(value, pydantic.BaseModel):
        known = KNOWN_EXTRAS.get(type(value).__name__, set())
        extra = set(value.__pydantic_extra__ or {}) - known
        assert not extra, f"{path}: fields unknown to the SDK: {sorted(extra)}"
        for name in type(value).model_fields:
            _no_extras(getattr(value, name), f"{path}.{name}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _no_extras(item, f"{path}[{i}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            _no_extras(item, f"{path}.{key}")


def strict_event(data: dict[str, Any]) -> Any:
    """Validate one Responses stream event strictly (types, required fields, no unknown keys)."""
    event = _EVENT.validate_python(data, strict=True)
    _no_extras(event, data.get("type", "event"))
    if "response" in data:
        strict_response(data["response"])
    return event


M = TypeVar("M", bound=pydantic.BaseModel)


def strict(model: type[M], data: dict[str, Any], name: str) -> M:
    """Validate `data` as `model` strictly: types, required fields, no unknown keys."""
    value = model.model_validate(data, strict=True)
    _no_extras(value, name)
    return value


def strict_response(data: dict[str, Any]) -> Response:
    return strict(Response, data, "response")


def strict_chat_completion(data: dict[str, Any]) -> ChatCompletion:
    return strict(ChatCompletion, data, "chat.completion")


def strict_chat_chunk(data: dict[str, Any]) -> ChatCompletionChunk:
    return strict(ChatCompletionChunk, data, "chat.completion.chunk")


def strict_model(data: dict[str, Any]) -> Model:
    return strict(Model, data, "model")


class LoopThread:
    """An asyncio loop on a background thread, for servers the tests talk to."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


class ServedApp:
    """An ASGI app on uvicorn, on a pre-bound 127.0.0.1 socket, on a LoopThread."""

    def __init__(self, thread: LoopThread, app: Any, lifespan: str = "on") -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan=lifespan))
        self._serving = asyncio.run_coroutine_threadsafe(
            self.server.serve([self._sock]), thread.loop
        )
        for _ in range(200):
            if self.server.started or self._serving.done():
                break
            time.sleep(0.02)
        assert self.server.started, "server did not start"

    def close(self) -> None:
        self.server.should_exit = True
        self._serving.result(10)
        self._sock.close()


class Servers:
    """The stub and the gateway (uvicorn) on 127.0.0.1, sharing one background loop."""

    def __init__(self, **settings: Any) -> None:
        self.thread = LoopThread()
        self.stub: RunningStub = self.thread.run(start("127.0.0.1", 0, record_calls=True))
        # Coalescing off unless asked for: this process's own test client and stub would count
        # as the gateway's load, and exact event counts would vary with the machine's.
        settings = {"max_hold_ms": 0, **settings}
        self.settings = Settings(backend=f"127.0.0.1:{self.stub.port}", **settings)
        self.gateway = ServedApp(self.thread, create_app(self.settings))
        self.port = self.gateway.port
        self.url = self.gateway.url

    def close(self) -> None:
        self.gateway.close()
        self.thread.run(self.stub.stop(0))
        self.thread.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A real redis-server on 127.0.0.1, for the tests that need shared state."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            message = "redis-server is not installed (apt-get install -y redis-server)"
            if os.environ.get("CI"):
                raise RuntimeError(message)  # CI installs it: never skip there
            pytest.skip(message)
        self.port = free_port()
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"redis://127.0.0.1:{self.port}/0"
        for _ in range(100):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        self.close()
        raise RuntimeError("redis-server did not start")

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(5)


class GatewayProcess:
    """`python -m gateway` as a real process on 127.0.0.1, its JSON logs kept in a file."""

    def __init__(self, log_path: str, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "--port", str(self.port), *args],
            env={**os.environ, **(env or {})},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        for _ in range(200):
            if self.process.poll() is not None:
                break
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"gateway did not start: {self.logs()[-2000:]}")

    def logs(self) -> str:
        if not self._log.closed:
            self._log.flush()
        with open(self.log_path) as f:
            return f.read()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(5)
        self._log.close()
        return code


class StubProcess:
    """`python -m backend_stub` as a real process on 127.0.0.1 (its JSON logs kept in a file)."""

    def __init__(self, log_path: str, *args: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "backend_stub", "--port", str(self.port), *args],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        for _ in range(200):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        self.stop(signal.SIGKILL)
        raise RuntimeError("backend_stub did not start")

    def served(self) -> int:
        """Chat calls this process answered in full, from its log."""
        with open(self.log_path) as f:
            records = [json.loads(line) for line in f if line.startswith("{")]
        return sum(1 for r in records if r.get("event") == "chat" and r.get("status") == "ok")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        self.process.wait(10)
        self._log.close()


def parse_sse(data: bytes | str) -> list[dict[str, Any]]:
    """Responses SSE frames -> events, checking each frame's `event:` line names its type."""
    text = data.decode() if isinstance(data, bytes) else data
    events = []
    for frame in text.split("\n\n"):
        if not frame:
            continue
        event_line, data_line = frame.split("\n")
        event = json.loads(data_line.removeprefix("data: "))
        assert event_line == f"event: {event['type']}", frame
        events.append(event)
    return events


def parse_data_frames(data: bytes | str) -> list[dict[str, Any]]:
    """Chat Completions `data:` frames -> chunk objects (a final `[DONE]` is dropped)."""
    text = data.decode() if isinstance(data, bytes) else data
    frames = [f for f in text.split("\n\n") if f]
    assert all(f.startswith("data: ") and "\n" not in f for f in frames), frames
    return [json.loads(f[6:]) for f in frames if f != "data: [DONE]"]


def poll(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Wait until `condition()` holds (True), or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True
