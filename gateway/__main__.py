"""python -m gateway: serve the gateway (the stub backend runs in-process without --backend).

The composition root: the one module of the gateway that knows a backend implementation. It
builds the settings and injects the embedded stub into `create_app`."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

import uvicorn
from starlette.applications import Starlette

from backend_stub.server import start as start_stub
from gateway.app import EmbeddedBackend, create_app
from gateway.config import Settings, bind_refusal
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


def parse_args(argv: list[str] | None = None) -> Settings:
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
    args = p.parse_args(argv)
    return dataclasses.replace(base, **vars(args))


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
    settings = parse_args(argv)
    logs.configure(settings.log_level)
    refusal = bind_refusal(settings)
    if refusal:
        print(f"gateway: {refusal}", file=sys.stderr)
        raise SystemExit(2)
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "access_log": False,
        "timeout_graceful_shutdown": max(1, round(settings.shutdown_grace)),
    }
    if settings.workers > 1:
        run_workers(settings, options)
        return
    DrainingServer(uvicorn.Config(build_app(settings), **options)).run()


if __name__ == "__main__":
    main()
