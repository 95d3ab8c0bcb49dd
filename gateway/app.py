"""create_app(settings) -> Starlette: routes, lifespan (owns the gRPC channel), error mapping."""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import routes
from gateway.backend import ChatBackend
from gateway.config import Settings
from gateway.errors import GatewayError, internal_error

log = logging.getLogger("gateway")


def error_response(exc: GatewayError) -> Response:
    return routes.JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


async def _gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    messages = {
        404: f"Unknown path: {request.url.path}",
        405: f"Method {request.method} not allowed",
    }
    error = GatewayError(messages.get(exc.status_code, exc.detail), status=exc.status_code)
    return error_response(error)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", exc_info=exc)
    return error_response(internal_error())


class RequestIdMiddleware:
    """Gives every request an id (`req_…`) and every response the `x-request-id` header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = f"req_{secrets.token_hex(16)}"
        scope.setdefault("state", {})["request_id"] = request_id
        header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        await self.app(scope, receive, send_with_id)


def create_app(settings: Settings) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            target = settings.backend or await _embedded_stub(settings, stack)
            backend = ChatBackend(target, max_message_bytes=settings.max_message_bytes)
            stack.push_async_callback(backend.close)
            app.state.settings = settings
            app.state.backend = backend
            yield

    handlers: dict[Any, Any] = {
        GatewayError: _gateway_error,
        HTTPException: _http_error,
        Exception: _unexpected,
    }
    app = Starlette(
        routes=[
            Route("/v1/responses", routes.create_response, methods=["POST"]),
            Route("/v1/responses/{response_id}", routes.not_stored, methods=["GET", "DELETE"]),
            Route("/v1/responses/{response_id}/cancel", routes.not_stored, methods=["POST"]),
            Route("/v1/responses/{response_id}/input_items", routes.not_stored, methods=["GET"]),
            Route("/v1/chat/completions", routes.create_chat_completion, methods=["POST"]),
            Route("/v1/models", routes.list_models, methods=["GET"]),
            Route("/v1/models/{model_id:path}", routes.retrieve_model, methods=["GET"]),
        ],
        exception_handlers=handlers,
        lifespan=lifespan,
    )
    app.add_middleware(RequestIdMiddleware)
    return app


async def _embedded_stub(settings: Settings, stack: contextlib.AsyncExitStack) -> str:
    """Start the stub backend in this process on a loopback port; return its address."""
    from backend_stub.server import start

    stub = await start(
        "127.0.0.1",
        0,
        chunk_delay=settings.stub_chunk_delay,
        max_message_bytes=settings.max_message_bytes,
    )
    stack.push_async_callback(stub.stop)
    log.info("embedded stub backend on 127.0.0.1:%d", stub.port)
    return f"127.0.0.1:{stub.port}"
