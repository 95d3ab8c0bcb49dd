"""runinfra.ChatClient and SyncChatClient against the real stub, and against backend_openai
in front of the fake OpenAI server, all on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

import runinfra
from backend_openai.server import start as start_backend_openai
from backend_openai.server import upstream_request_id
from backend_stub import server as stub_server
from runinfra.chat.v1 import chat_service_pb2 as pb
from tests.fake_openai import FakeOpenAI
from tests.support import LoopThread


class Stub:
    def __init__(self) -> None:
        self.thread = LoopThread()
        self.served: stub_server.RunningStub = self.thread.run(stub_server.start("127.0.0.1", 0))
        self.target = f"127.0.0.1:{self.served.port}"
        self.service = self.served.service

    def close(self) -> None:
        self.thread.run(self.served.stop(0))
        self.thread.close()


@pytest.fixture(scope="module")
def stub() -> Iterator[Stub]:
    s = Stub()
    yield s
    s.close()


def request_ids(stub: Stub, model: str) -> list[str]:
    return [c.request_id for c in stub.service.calls if c.model == model]


def test_complete_and_chat(stub: Stub) -> None:
    async def main() -> None:
        async with runinfra.ChatClient(stub.target, timeout=10) as client:
            reply = await client.complete(
                model="stub-echo", messages="hello grpc", request_id="g-1"
            )
            chunks = [c async for c in client.chat(model="stub-echo", messages="one two three")]
            models = await client.list_models()
        assert (reply.text, reply.finish_reason, reply.request_id) == ("hello grpc", "stop", "g-1")
        assert reply.usage is not None and reply.usage.output_tokens == 2
        assert [c.text for c in chunks] == ["one ", "two ", "three"]
        assert "stub-echo" in [m.id for m in models]
        call = next(c for c in stub.service.calls if c.request_id == "g-1")
        metadata = stub.service.call_metadata[stub.service.calls.index(call)]
        assert call.buffered and metadata["x-request-id"] == "g-1"

    asyncio.run(main())


def test_tool_calls_are_folded(stub: Stub) -> None:
    tool = pb.Tool(
        name="get_weather",
        parameters='{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}',
    )
    with runinfra.SyncChatClient(stub.target) as client:
        reply = client.complete(model="stub-echo", messages="call get_weather", tools=[tool])
    assert reply.finish_reason == "tool_calls" and reply.text == ""
    assert [(t.id, t.name, t.arguments) for t in reply.tool_calls] == [
        ("call_stub_0", "get_weather", '{"city":"stub"}')
    ]


@pytest.mark.parametrize("sync", [False, True], ids=["async", "sync"])
def test_unavailable_before_the_first_chunk_is_retried_with_the_same_id(
    stub: Stub, sync: bool
) -> None:
    rid = f"once-{sync}"
    if sync:
        with runinfra.SyncChatClient(stub.target) as client:
            text = client.complete(model="stub-fail-once", messages="again", request_id=rid).text
    else:

        async def main() -> str:
            async with runinfra.ChatClient(stub.target) as client:
                reply = await client.complete(
                    model="stub-fail-once", messages="again", request_id=rid
                )
                return reply.text

        text = asyncio.run(main())
    assert text == "again"
    assert request_ids(stub, "stub-fail-once").count(rid) == 2


def test_statuses_raise_the_sdk_errors(stub: Stub) -> None:
    with runinfra.SyncChatClient(stub.target, max_retries=1) as client:
        with pytest.raises(runinfra.ServiceUnavailableError) as unavailable:
            client.complete(model="stub-fail-before", messages="x", request_id="fb-1")
        with pytest.raises(runinfra.RateLimitError) as limited:
            client.complete(model="stub-rate-limited", messages="x", request_id="rl-1")
        with pytest.raises(runinfra.NotFoundError):
            client.complete(model="no-such-model", messages="x")
        with pytest.raises(runinfra.GatewayTimeoutError) as late:
            client.complete(model="stub-slow", messages="a b c d e f", timeout=0.05)
        with pytest.raises(runinfra.InternalServerError) as mid:
            list(client.chat(model="stub-fail-mid", messages="a b c d"))
    error = unavailable.value
    assert (error.status, error.code, error.request_id, error.retryable) == (
        503,
        "unavailable",
        "fb-1",
        True,
    )
    assert request_ids(stub, "stub-fail-before").count("fb-1") == 2  # max_retries=1
    assert request_ids(stub, "stub-rate-limited").count("rl-1") == 1  # not retried
    assert limited.value.status == 429 and late.value.status == 504
    assert mid.value.status == 500


def test_failure_after_the_first_chunk_is_not_retried(stub: Stub) -> None:
    async def main() -> list[str]:
        texts: list[str] = []
        async with runinfra.ChatClient(stub.target) as client:
            with pytest.raises(runinfra.InternalServerError):
                async for chunk in client.chat(
                    model="stub-fail-mid", messages="a b c", request_id="m-1"
                ):
                    texts.append(chunk.text)
        return texts

    assert asyncio.run(main()) == ["a ", "b "]
    assert request_ids(stub, "stub-fail-mid").count("m-1") == 1


def test_closing_the_iterator_cancels_the_call(stub: Stub) -> None:
    async def main() -> None:
        async with runinfra.ChatClient(stub.target) as client:
            chunks = client.chat(model="stub-slow", messages="w " * 100, request_id="cancel-me")
            assert (await anext(chunks)).text == "w "
            await chunks.aclose()  # type: ignore[attr-defined]

    asyncio.run(main())
    assert stub.service.wait_cancelled("cancel-me", 5)


def test_against_backend_openai() -> None:
    fake = FakeOpenAI()
    thread = LoopThread()
    backend = thread.run(start_backend_openai(fake.url))
    try:
        with runinfra.SyncChatClient(f"127.0.0.1:{backend.port}") as client:
            reply = client.complete(model="fake-text", messages="hi", request_id="bo-1")
            with pytest.raises(runinfra.RateLimitError):
                client.complete(model="fake-429", messages="hi")
        assert (reply.text, reply.finish_reason) == ("Hello, world!", "stop")
        expected = upstream_request_id("bo-1")  # the request id, as the model server takes it
        assert fake.chat_requests()[0].headers["x-request-id"] == expected
    finally:
        thread.run(backend.stop(0))
        thread.close()
        fake.close()


def test_reasoning_is_folded(stub: Stub) -> None:
    with runinfra.SyncChatClient(stub.target) as client:
        reply = client.complete(
            model="stub-think", messages="why", reasoning_effort=pb.REASONING_EFFORT_HIGH
        )
    assert (reply.reasoning, reply.text) == ("Thinking about: why", "why")
    assert stub.service.calls[-1].reasoning_effort == pb.REASONING_EFFORT_HIGH
