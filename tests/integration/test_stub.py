"""The stub over a real grpc.aio channel, in-process on 127.0.0.1:<free port>.

Each test runs one coroutine under asyncio.run: start the stub, talk to it, stop it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from backend_stub import server as stub_server
from runinfra.chat.v1 import chat_service_pb2 as pb
from runinfra.chat.v1 import chat_service_pb2_grpc as pb_grpc

Body = Callable[[stub_server.RunningStub, grpc.aio.Channel], Awaitable[None]]


def run(body: Body, **start_kw: float) -> None:
    async def main() -> None:
        stub = await stub_server.start("127.0.0.1", 0, **start_kw)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{stub.port}") as channel:
                await asyncio.wait_for(body(stub, channel), timeout=5)
        finally:
            await stub.stop(None)

    asyncio.run(main())


def chat_request(model: str, text: str, request_id: str = "") -> pb.ChatRequest:
    message = pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text=text)])
    return pb.ChatRequest(model=model, messages=[message], request_id=request_id)


async def collect(
    channel: grpc.aio.Channel, request: pb.ChatRequest
) -> tuple[list[pb.ChatChunk], grpc.aio.AioRpcError | None]:
    chunks: list[pb.ChatChunk] = []
    try:
        async for chunk in pb_grpc.ChatServiceStub(channel).Chat(request):
            chunks.append(chunk)
    except grpc.aio.AioRpcError as exc:
        return chunks, exc
    return chunks, None


def test_chat_streams_words_then_finish_and_usage() -> None:
    async def body(stub: stub_server.RunningStub, channel: grpc.aio.Channel) -> None:
        request = chat_request("stub-echo", "hello there  world", "r-1")
        chunks, error = await collect(channel, request)
        assert error is None
        assert [c.text for c in chunks] == ["hello ", "there  ", "world"]
        assert [c.finish_reason for c in chunks] == [0, 0, pb.FINISH_REASON_STOP]
        assert chunks[-1].usage == pb.Usage(input_tokens=3, output_tokens=3)
        assert [c.request_id for c in stub.service.calls] == ["r-1"]

    run(body)


def test_list_models() -> None:
    async def body(stub: stub_server.RunningStub, channel: grpc.aio.Channel) -> None:
        response = await pb_grpc.ChatServiceStub(channel).ListModels(pb.ListModelsRequest())
        assert [m.id for m in response.models] == [
            "stub-echo",
            "stub-fail-before",
            "stub-fail-mid",
            "stub-slow",
            "stub-fail-once",
            "stub-rate-limited",
            "stub-think",
            "stub-args",
            "stub-fail-first-attempt",
        ]
        assert all(m.owned_by == "runinfra" and m.created > 0 for m in response.models)

    run(body)


@pytest.mark.parametrize(
    ("model", "code", "details"),
    [
        ("nope", grpc.StatusCode.NOT_FOUND, "The model 'nope' does not exist"),
        ("", grpc.StatusCode.INVALID_ARGUMENT, "model is required"),
        (
            "stub-fail-before",
            grpc.StatusCode.UNAVAILABLE,
            "stub: scripted failure before the first chunk",
        ),
    ],
)
def test_errors_before_any_chunk(model: str, code: grpc.StatusCode, details: str) -> None:
    async def body(stub: stub_server.RunningStub, channel: grpc.aio.Channel) -> None:
        chunks, error = await collect(channel, chat_request(model, "a b c"))
        assert chunks == []
        assert error is not None
        assert (error.code(), error.details()) == (code, details)

    run(body)


def test_fail_mid_sends_two_chunks_then_internal() -> None:
    async def body(stub: stub_server.RunningStub, channel: grpc.aio.Channel) -> None:
        chunks, error = await collect(channel, chat_request("stub-fail-mid", "a b c d"))
        assert [c.text for c in chunks] == ["a ", "b "]
        assert all(c.finish_reason == 0 and not c.HasField("usage") for c in chunks)
        assert error is not None and error.code() == grpc.StatusCode.INTERNAL

    run(body)


def test_health_serving() -> None:
    async def body(stub: stub_server.RunningStub, channel: grpc.aio.Channel) -> None:
        health = health_pb2_grpc.HealthStub(channel)
        for name in ("", "runinfra.chat.v1.ChatService"):
            response = await health.Check(health_pb2.HealthCheckRequest(service=name))
            assert response.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await health.Check(health_pb2.HealthCheckRequest(service="no.Such"))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND

    run(body)


def test_reflection_lists_and_describes_the_service() -> None:
    async def body(stub: stub_server.RunningStub, channel: grpc.aio.Channel) -> None:
        call = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo()
        await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
        listed = await call.read()
        await call.write(
            reflection_pb2.ServerReflectionRequest(
                file_containing_symbol="runinfra.chat.v1.ChatService"
            )
        )
        described = await call.read()
        await call.done_writing()
        assert isinstance(listed, reflection_pb2.ServerReflectionResponse)
        assert isinstance(described, reflection_pb2.ServerReflectionResponse)
        names = {s.name for s in listed.list_services_response.service}
        assert {"runinfra.chat.v1.ChatService", "grpc.health.v1.Health"} <= names
        assert described.file_descriptor_response.file_descriptor_proto

    run(body)


@pytest.mark.parametrize("via_metadata", [False, True], ids=["request_id", "x-request-id"])
def test_client_cancel_is_recorded(via_metadata: bool) -> None:
    async def body(stub: stub_server.RunningStub, channel: grpc.aio.Channel) -> None:
        request = chat_request("stub-slow", "one two three four five six seven eight nine ten")
        metadata: tuple[tuple[str, str], ...] = ()
        if via_metadata:
            metadata = (("x-request-id", "cancel-me"),)
        else:
            request.request_id = "cancel-me"
        call = pb_grpc.ChatServiceStub(channel).Chat(request, metadata=metadata)
        first = await call.read()
        assert isinstance(first, pb.ChatChunk) and first.text == "one "
        assert call.cancel()
        # wait_cancelled blocks a thread: call it from another one, as tests will.
        assert await asyncio.to_thread(stub.service.wait_cancelled, "cancel-me", 1.0)
        assert stub.service.cancelled == ["cancel-me"]
        assert not await asyncio.to_thread(stub.service.wait_cancelled, "other", 0.01)

    run(body)


def test_chunk_delay_applies_to_every_chunk() -> None:
    async def body(stub: stub_server.RunningStub, channel: grpc.aio.Channel) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        chunks, error = await collect(channel, chat_request("stub-echo", "a b c d"))
        assert error is None and len(chunks) == 4
        assert loop.time() - started >= 4 * 0.03

    run(body, chunk_delay=0.03)


def test_fail_once_fails_each_request_id_once() -> None:
    async def body(stub: stub_server.RunningStub, channel: grpc.aio.Channel) -> None:
        client = pb_grpc.ChatServiceStub(channel)
        request = pb.ChatRequest(
            model="stub-fail-once",
            request_id="req_once",
            messages=[pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text="hi there")])],
        )
        with pytest.raises(grpc.aio.AioRpcError) as info:
            [c async for c in client.Chat(request)]
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "".join([c.text async for c in client.Chat(request)]) == "hi there"

    run(body)


def test_rate_limited_model() -> None:
    async def body(stub: stub_server.RunningStub, channel: grpc.aio.Channel) -> None:
        request = pb.ChatRequest(
            model="stub-rate-limited", messages=[pb.Message(role=pb.ROLE_USER)]
        )
        with pytest.raises(grpc.aio.AioRpcError) as info:
            [c async for c in pb_grpc.ChatServiceStub(channel).Chat(request)]
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

    run(body)


def test_fail_first_attempt_fails_the_first_request_of_each_client_request_id() -> None:
    async def body(stub: stub_server.RunningStub, channel: grpc.aio.Channel) -> None:
        client = pb_grpc.ChatServiceStub(channel)

        async def call(request_id: str, client_id: str | None) -> grpc.StatusCode:
            request = chat_request("stub-fail-first-attempt", "served", request_id)
            metadata = (("x-client-request-id", client_id),) if client_id else ()
            try:
                chunks = [c.text async for c in client.Chat(request, metadata=metadata)]
            except grpc.aio.AioRpcError as exc:
                return exc.code()
            assert "".join(chunks) == "served"
            return grpc.StatusCode.OK

        unavailable, ok = grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.OK
        # The first request of c-1 fails on every call (the gateway's own retries included) ...
        assert [await call("r-1", "c-1"), await call("r-1", "c-1")] == [unavailable] * 2
        # ... another request with the same client request id is served, as are later ones.
        assert [await call("r-2", "c-1"), await call("r-3", "c-1")] == [ok, ok]
        assert await call("r-1", "c-1") == unavailable
        assert [await call("r-4", "c-2"), await call("r-5", "c-2")] == [unavailable, ok]
        # Without a client request id, every request is a first one.
        assert [await call("r-6", None), await call("r-7", None)] == [unavailable] * 2

    run(body)
