"""The relay floor: the least a Starlette app can do to put the stub's chunks on HTTP.

Same uvicorn settings and the same gRPC contract as the gateway (gateway.pb stubs,
one shared channel), but no translation, validation or bookkeeping:
non-streaming concatenates the chunk texts into one small JSON body (asking for a
buffered reply, as the gateway does); streaming writes one SSE `data:` frame per chunk
with the raw text.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import grpc
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from gateway.pb import chat_service_pb2 as pb
from gateway.pb import chat_service_pb2_grpc as pb_grpc


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


async def relay(request: Request) -> Response:
    data = orjson.loads(await request.body())
    message = pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text=data["input"])])
    stream = bool(data.get("stream"))
    # `buffered` is part of the contract: the floor uses it as the gateway does.
    chat = pb.ChatRequest(model=data["model"], messages=[message], buffered=not stream)
    call = request.app.state.stub.Chat(chat)
    if not stream:
        text = "".join([chunk.text async for chunk in call])
        return Response(orjson.dumps({"text": text}), media_type="application/json")
    return StreamingResponse(_frames(call), media_type="text/event-stream")


async def _frames(call: grpc.aio.UnaryStreamCall) -> AsyncIterator[bytes]:  # type: ignore[type-arg]
    try:
        async for chunk in call:
            yield b"data: " + chunk.text.encode() + b"\n\n"
    finally:
        call.cancel()
