"""ChatRequest.max_hold_ms over real gRPC: the stub and backend_openai send fewer, larger chunks
with the same text, tool-call arguments, usage and finish reason; failures and cancellation
behave as without it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import grpc
import pytest

from backend_openai import server as backend_server
from backend_stub.server import start
from runinfra.chat.v1 import chat_service_pb2 as pb
from runinfra.chat.v1 import chat_service_pb2_grpc as pb_grpc
from tests.fake_openai import FakeOpenAI
from tests.integration.test_backend_openai import chat_request, collect, run
from tests.unit.test_coalesce import request, whole


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI()
    yield server
    server.close()


def with_hold(req: pb.ChatRequest, ms: int) -> pb.ChatRequest:
    out = pb.ChatRequest()
    out.CopyFrom(req)
    out.max_hold_ms = ms
    return out


async def both(
    channel: grpc.aio.Channel, req: pb.ChatRequest, ms: int
) -> tuple[list[pb.ChatChunk], list[pb.ChatChunk]]:
    plain, error = await collect(channel, req)
    held, held_error = await collect(channel, with_hold(req, ms))
    assert error is None and held_error is None
    return plain, held


@pytest.mark.parametrize("tools", [False, True])
def test_stub_coalesces_paced_words_within_the_window(tools: bool) -> None:
    text = " ".join(f"w{i}" for i in range(12)) + (" call f and g" if tools else "")

    async def main() -> None:
        stub = await start(chunk_delay=0.005, record_calls=True)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{stub.port}") as channel:
                plain, held = await both(channel, request(text, tools), 15)
        finally:
            await stub.stop(None)
        assert whole(held) == whole(plain)
        assert held[0] == plain[0]  # the first chunk is never held
        assert len(held) < len(plain)
        assert [c.max_hold_ms for c in stub.service.calls] == [0, 15]

    asyncio.run(main())


@pytest.mark.parametrize("model", ["fake-text", "fake-tools"])
def test_backend_openai_coalesces_what_arrives_within_the_window(
    fake: FakeOpenAI, model: str
) -> None:
    async def body(backend: backend_server.RunningBackend, channel: grpc.aio.Channel) -> None:
        plain, held = await both(channel, chat_request(model), 200)
        assert whole(held) == whole(plain)
        assert held[0] == plain[0]
        assert len(held) == 2 < len(plain)  # the fake sends the rest at once

    run(fake.url, body)


def test_backend_openai_fails_after_the_chunks_that_came_first(fake: FakeOpenAI) -> None:
    async def body(backend: backend_server.RunningBackend, channel: grpc.aio.Channel) -> None:
        _, plain_error = await collect(channel, chat_request("fake-error-frame"))
        chunks, error = await collect(channel, with_hold(chat_request("fake-error-frame"), 200))
        assert "".join(c.text for c in chunks) == "partial"
        assert error is not None and plain_error is not None
        assert error.code() == grpc.StatusCode.INTERNAL
        assert (error.code(), error.details()) == (plain_error.code(), plain_error.details())

    run(fake.url, body)


def test_backend_openai_cancellation_closes_the_upstream_while_holding(fake: FakeOpenAI) -> None:
    fake.disconnected.clear()

    async def body(backend: backend_server.RunningBackend, channel: grpc.aio.Channel) -> None:
        call = pb_grpc.ChatServiceStub(channel).Chat(with_hold(chat_request("fake-slow"), 120))
        first = await call.read()
        second = await call.read()  # ticks 50 ms apart: two or three in one chunk
        assert isinstance(first, pb.ChatChunk) and first.text == "tick 0 "
        assert isinstance(second, pb.ChatChunk) and second.text.startswith("tick 1 tick 2 ")
        call.cancel()
        assert await asyncio.to_thread(fake.disconnected.wait, 1.0)

    run(fake.url, body)
