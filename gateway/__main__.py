"""python -m gateway: serve the gateway (the stub backend runs in-process without --backend).

The composition root: the one module of the gateway that knows a backend implementation. It
builds the settings and injects the embedded stub into `create_app`. `--local-model PATH` runs
`python -m backend_local` on that GGUF file in a child process instead (not imported: the model
never shares the gateway's process) and points the gateway at it."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette

from backend_stub.server import start as start_stub
from gateway.app import EmbeddedBackend, create_app
from gateway.config import Settings, bind_refusal, workers_refusal
from gateway.connections import HeaderDeadlineH11
from gateway.metrics import MULTIPROC_ENV
from runinfra import logs

log = logging.getLogger("gateway")
SETTINGS_ENV = "GATEWAY_SETTINGS_JSON"


def embedded_stub(settings: Settings) -> EmbeddedBackend:
    """The stub backend, started in this process on a loopback port."""

    async def start(stack: contextlib.AsyncExitStack) -> str:
        stub = await start_stub(
            "127.0.0.1",
            0,
            chunk_delay=settings.stub_chunk_delay,
            max_message_bytes=settings.max_message_bytes,
        )
        stack.push_async_callback(stub.stop)
        log.info("embedded stub backend", extra={"fields": {"port": stub.port}})
        return f"127.0.0.1:{stub.port}"

    return start


def build_app(settings: Settings) -> Starlette:
    HeaderDeadlineH11.header_timeout = settings.header_timeout
    return create_app(settings, None if settings.backend else embedded_stub(settings))


def app_from_env() -> Starlette:
    """The app factory each `--workers` process calls: the parent's settings travel in
    GATEWAY_SETTINGS_JSON; without it, GATEWAY_* variables apply."""
    raw = os.environ.get(SETTINGS_ENV)
    settings = Settings.from_json(raw) if raw else Settings.from_env()
    logs.configure(settings.log_level)
    return build_app(settings)


class DrainingServer(uvicorn.Server):
    """SIGTERM and SIGINT stop accepting, let in-flight requests finish within the grace
    period, cancel the rest, and exit 0: stopping is the normal end of a server's life.
    (uvicorn itself re-raises the signal after draining, so the process would die of it.)"""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = {
            sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


@contextlib.contextmanager
def local_model_backend(settings: Settings, path: str, timeout: float = 300.0) -> Iterator[str]:
    """`python -m backend_local` serving `path` as the default model, in a child process on a
    loopback port; yields its address once it serves (it binds after loading the model)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    child = subprocess.Popen(
        [sys.executable, "-m", "backend_local", "--model", path, "--port", str(port),
         "--model-id", settings.default_model, "--log-level", settings.log_level]
    )  # fmt: skip
    try:
        deadline = time.monotonic() + timeout
        while child.poll() is None and time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    log.info("local model backend", extra={"fields": {"port": port}})
                    yield f"127.0.0.1:{port}"
                    return
            time.sleep(0.1)
        raise SystemExit(f"gateway: backend_local did not start (exit status {child.poll()})")
    finally:
        child.terminate()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def parse_args(argv: list[str] | None = None) -> Settings:
    return parse_command(argv)[0]


def parse_command(argv: list[str] | None = None) -> tuple[Settings, str | None]:
    """The settings, and the --local-model path (GATEWAY_LOCAL_MODEL) if one is given."""
    base = Settings.from_env()
    p = argparse.ArgumentParser(prog="python -m gateway", description=__doc__)
    p.add_argument("--host", default=base.host)
    p.add_argument("--port", type=int, default=base.port)
    p.add_argument(
        "--backend", default=base.backend, help="ChatService address (default: embedded stub)"
    )
    p.add_argument("--default-model", default=base.default_model)
    p.add_argument("--api-keys-file", default=base.api_keys_file)
    p.add_argument("--idempotency-redis-url", default=base.idempotency_redis_url)
    p.add_argument("--shutdown-grace", type=float, default=base.shutdown_grace)
    p.add_argument(
        "--max-hold-ms", type=int, default=base.max_hold_ms, help="coalescing under load (0: off)"
    )
    p.add_argument("--stub-chunk-delay", type=float, default=base.stub_chunk_delay)
    p.add_argument("--workers", type=int, default=base.workers, help="processes serving the port")
    p.add_argument("--log-level", default=base.log_level, choices=logs.LEVELS)
    p.add_argument(
        "--allow-unauthenticated-public-bind",
        action="store_true",
        default=base.allow_unauthenticated_public_bind,
        help="serve a non-loopback address without API keys (anyone who can reach it can use it)",
    )
    p.add_argument(
        "--local-model",
        metavar="GGUF",
        default=os.environ.get("GATEWAY_LOCAL_MODEL") or None,
        help="serve this model file with backend_local, in a child process (pip install "
        "'.[local]'; `python -m backend_local.fetch` prints the demo model's path)",
    )
    values = vars(p.parse_args(argv))
    local_model = values.pop("local_model")
    if local_model == "":  # e.g. "$(python -m backend_local.fetch)" that failed
        p.error("--local-model: empty path")
    if local_model:
        if values["backend"]:
            p.error("--local-model and --backend exclude each other")
        if not os.path.isfile(local_model):
            p.error(f"--local-model: no such file: {local_model}")
        if values["default_model"] == Settings().default_model:  # the model's id: its file name
            values["default_model"] = Path(local_model).name.removesuffix(".gguf")
    return dataclasses.replace(base, **values), local_model


def run_workers(settings: Settings, options: dict[str, Any]) -> None:
    """N processes on one port. Each builds the app from the same settings
    (app_from_env); their metrics meet in one multiprocess directory, so a
    scrape answered by any of them counts every process."""
    os.environ[SETTINGS_ENV] = settings.to_json()
    own_dir = MULTIPROC_ENV not in os.environ
    if own_dir:
        os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="gateway-metrics-")
    try:
        uvicorn.run(
            "gateway.__main__:app_from_env", factory=True, workers=settings.workers, **options
        )
    finally:
        if own_dir:
            shutil.rmtree(os.environ.pop(MULTIPROC_ENV), ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    settings, local_model = parse_command(argv)
    logs.configure(settings.log_level)
    refusal = bind_refusal(settings) or workers_refusal(settings)
    if refusal:
        print(f"gateway: {refusal}", file=sys.stderr)
        raise SystemExit(2)
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "access_log": False,
        "timeout_graceful_shutdown": max(1, round(settings.shutdown_grace)),
        "http": HeaderDeadlineH11,  # uvicorn's h11 protocol with a deadline for headers
    }
    with contextlib.ExitStack() as stack:
        if local_model:
            target = stack.enter_context(local_model_backend(settings, local_model))
            settings = dataclasses.replace(settings, backend=target)
        if settings.workers > 1:
            run_workers(settings, options)
            return
        DrainingServer(uvicorn.Config(build_app(settings), **options)).run()


if __name__ == "__main__":
    main()
