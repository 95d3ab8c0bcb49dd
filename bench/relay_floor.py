"""The relay floor: the least a Starlette app can do to put the stub's chunks on HTTP.

Same uvicorn settings and the same gRPC contract as the gateway (gateway.pb stubs,
one shared channel), but no translation, validation or bookkeeping:
non-streaming concatenates the chunk texts into one small JSON body (asking for a
buffered reply, as the gateway does); streaming writes one SSE `data:` frame per chunk
with the raw text, straight to ASGI `send` as the gateway does (Starlette's
StreamingResponse costs a task group and a second task per stream), and a client
disconnect cancels the call (one watcher task, as in the gateway).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from runinfra.chat.v1 import chat_service_pb2 as pb
from runinfra.chat.v1 import chat_service_pb2_grpc as pb_grpc


def create_app(backend: str) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        channel = grpc.aio.insecure_channel(backend)
        app.state.stub = pb_grpc.ChatServiceStub(channel)
        try:
            yield
        finally:
            await channel.close()

    return Starlette(routes=[Route("/v1/responses", relay, methods=["POST"])], lifespan=lifespan)


async def relay(request: Request) -> Response | Relay:
    data = orjson.loads(await request.body())
    message = pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text=data["input"])])
    stream = bool(data.get("stream"))
    # `buffered` is part of the contract: the floor uses it as the gateway does.
    chat = pb.ChatRequest(model=data["model"], messages=[message], buffered=not stream)
    call = request.app.state.stub.Chat(chat)
    if not stream:
        text = "".join([chunk.text async for chunk in call])
        return Response(orjson.dumps({"text": text}), media_type="application/json")
    return Relay(call)


class Relay:
    HEADERS = ((b"content-type", b"text/event-stream; charset=utf-8"),)

    def __init__(self, call: grpc.aio.UnaryStreamCall) -> None:  # type: ignore[type-arg]
        self.call = call

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        task = asyncio.current_task()
        assert task is not None
        watcher = asyncio.ensure_future(_cancel_on_disconnect(receive, task))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.HEADERS})
            async for chunk in self.call:
                frame = b"data: " + chunk.text.encode() + b"\n\n"
                await send({"type": "http.response.body", "body": frame, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not watcher.done():
                raise
        finally:
            watcher.cancel()
            self.call.cancel()


async def _cancel_on_disconnect(receive: Receive, task: asyncio.Task) -> None:  # type: ignore[type-arg]
    while (await receive())["type"] != "http.disconnect":
        pass
    task.cancel()
