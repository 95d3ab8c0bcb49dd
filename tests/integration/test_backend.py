"""ChatBackend, the gateway's gRPC client, against the real stub on 127.0.0.1: the retry
before the first chunk (and never after it), the deadline, and cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from backend_stub import server as stub_server
from gateway.backend import ChatBackend
from gateway.errors import BackendError
from runinfra.chat.v1 import chat_service_pb2 as pb

Body = Callable[[stub_server.RunningStub, ChatBackend], Awaitable[None]]


def run(body: Body, retries: int = 2) -> None:
    async def main() -> None:
        stub = await stub_server.start("127.0.0.1", 0)
        backend = ChatBackend(f"127.0.0.1:{stub.port}", max_message_bytes=1 << 20, retries=retries)
        try:
            await asyncio.wait_for(body(stub, backend), timeout=10)
        finally:
            await backend.close()
            await stub.stop(None)

    asyncio.run(main())


def request(model: str, text: str, request_id: str) -> pb.ChatRequest:
    message = pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text=text)])
    return pb.ChatRequest(model=model, messages=[message], request_id=request_id)


async def texts(backend: ChatBackend, chat: pb.ChatRequest, **kw: float) -> list[str]:
    return [chunk.text async for chunk in backend.chat(chat, **kw)]


def test_unavailable_before_the_first_chunk_is_retried_with_the_same_id() -> None:
    async def body(stub: stub_server.RunningStub, backend: ChatBackend) -> None:
        assert await texts(backend, request("stub-fail-once", "a b", "r-once")) == ["a ", "b"]
        assert [c.request_id for c in stub.service.calls] == ["r-once", "r-once"]

    run(body)


def test_retries_are_bounded() -> None:
    async def body(stub: stub_server.RunningStub, backend: ChatBackend) -> None:
        with pytest.raises(BackendError) as caught:
            await texts(backend, request("stub-fail-before", "a", "r-down"))
        assert (caught.value.grpc_code, caught.value.status) == ("UNAVAILABLE", 503)
        assert len(stub.service.calls) == 2  # the first attempt and `retries` more

    run(body, retries=1)


def test_no_retry_once_a_chunk_was_yielded() -> None:
    async def body(stub: stub_server.RunningStub, backend: ChatBackend) -> None:
        seen: list[str] = []
        with pytest.raises(BackendError) as caught:
            async for chunk in backend.chat(request("stub-fail-mid", "a b c d", "r-mid")):
                seen.append(chunk.text)
        assert caught.value.grpc_code == "INTERNAL"
        assert seen == ["a ", "b "]
        assert len(stub.service.calls) == 1

    run(body)


def test_other_errors_are_not_retried() -> None:
    async def body(stub: stub_server.RunningStub, backend: ChatBackend) -> None:
        with pytest.raises(BackendError) as caught:
            await texts(backend, request("no-such-model", "a", "r-404"))
        assert (caught.value.grpc_code, caught.value.status) == ("NOT_FOUND", 404)
        assert len(stub.service.calls) == 1

    run(body)


def test_the_deadline_ends_the_call_as_a_504_and_cancels_it() -> None:
    async def body(stub: stub_server.RunningStub, backend: ChatBackend) -> None:
        with pytest.raises(BackendError) as caught:
            await texts(backend, request("stub-slow", "a b c d e f", "r-late"), timeout=0.12)
        assert (caught.value.grpc_code, caught.value.status) == ("DEADLINE_EXCEEDED", 504)
        assert await asyncio.to_thread(stub.service.wait_cancelled, "r-late", 5)

    run(body)


def test_closing_the_stream_cancels_the_backend_call() -> None:
    async def body(stub: stub_server.RunningStub, backend: ChatBackend) -> None:
        chunks = backend.chat(request("stub-slow", "a b c d e f g h", "r-gone"))
        assert (await anext(chunks)).text == "a "
        await chunks.aclose()  # type: ignore[attr-defined]
        assert await asyncio.to_thread(stub.service.wait_cancelled, "r-gone", 5)
        assert len(stub.service.calls) == 1

    run(body)


def test_cancelling_the_consumer_cancels_the_backend_call() -> None:
    async def body(stub: stub_server.RunningStub, backend: ChatBackend) -> None:
        task = asyncio.ensure_future(texts(backend, request("stub-slow", "a b c d e", "r-cxl")))
        await asyncio.sleep(0.08)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await asyncio.to_thread(stub.service.wait_cancelled, "r-cxl", 5)

    run(body)
