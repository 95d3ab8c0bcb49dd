"""Serving a ChatService: a grpc.aio server with the standard health checking and server
reflection services, so `grpcurl`, load balancers and the gateway's own client-side health
checks can talk to it. The scaffolding every ChatService implementation shares."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from runinfra import logs
from runinfra.chat.v1 import chat_service_pb2_grpc as pb_grpc
from runinfra.contract import SERVICE_NAME

S = TypeVar("S", bound=pb_grpc.ChatServiceServicer)


@dataclass
class Served(Generic[S]):
    """A started server of `service`; `port` is the bound port."""

    port: int
    server: grpc.aio.Server
    service: S
    health: health.aio.HealthServicer = field(repr=False)
    on_stop: Callable[[], Awaitable[None]] | None = field(default=None, repr=False)

    async def stop(self, grace: float | None = None) -> None:
        """Report NOT_SERVING (load balancers move away), stop, finishing in-flight calls
        for `grace` seconds, then run `on_stop`."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        if self.on_stop is not None:
            await self.on_stop()


def metadata_of(context: grpc.aio.ServicerContext[Any, Any]) -> dict[str, str]:
    """A call's gRPC metadata as text (x-request-id, traceparent, ...)."""
    return {
        key: value if isinstance(value, str) else value.decode(errors="replace")
        for key, value in context.invocation_metadata() or ()
    }


async def serve_until_signalled(served: Served[Any], logger: logging.Logger) -> None:
    """For a `python -m` entry point: serve until SIGINT or SIGTERM, then stop gracefully."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    logger.info("stopping", extra={"fields": {"port": served.port}})
    await served.stop(grace=1.0)


def address(host: str, port: int) -> str:
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


async def serve(
    servicer: S,
    host: str,
    port: int,
    *,
    max_message_bytes: int,
    on_stop: Callable[[], Awaitable[None]] | None = None,
) -> Served[S]:
    """Start `servicer` on the running event loop; port 0 picks a free port."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.so_reuseport", 0),  # an explicit port already in use fails, not shared
        ]
    )
    pb_grpc.add_ChatServiceServicer_to_server(servicer, server)
    health_servicer = health.aio.HealthServicer()
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    bound = server.add_insecure_port(address(host, port))
    if bound == 0:
        raise RuntimeError(f"cannot bind {address(host, port)}")
    await server.start()
    return Served(bound, server, servicer, health_servicer, on_stop)


# --- `python -m <backend>` entry points ------------------------------------------------------


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every ChatService entry point takes."""
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=50051)
    parser.add_argument("--max-message-bytes", type=int, default=64 * 1024 * 1024)
    parser.add_argument("--log-level", default="info", choices=logs.LEVELS)


def run_server(start: Callable[[], Awaitable[Served[Any]]], name: str, log_level: str) -> None:
    """JSON log lines from `log_level` up, then serve what `start` starts until SIGINT or
    SIGTERM (logged as `name`)."""
    logs.configure(log_level)

    async def main() -> None:
        await serve_until_signalled(await start(), logging.getLogger(name))

    asyncio.run(main())
