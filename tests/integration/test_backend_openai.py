"""backend_openai over a real grpc.aio channel, against the fake OpenAI-compatible server.

Each test runs one coroutine under asyncio.run: start the backend pointed at the
fake (which runs on its own loop thread), talk to it, stop it.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from backend_openai import server as backend_server
from runinfra.chat.v1 import chat_service_pb2 as pb
from runinfra.chat.v1 import chat_service_pb2_grpc as pb_grpc
from tests import fake_openai
from tests.fake_openai import FakeOpenAI
from tests.support import free_port

Body = Callable[[backend_server.RunningBackend, grpc.aio.Channel], Awaitable[None]]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI()
    yield server
    server.close()


def run(upstream: str, body: Body, **start_kw: Any) -> None:
    async def main() -> None:
        backend = await backend_server.start(upstream, **start_kw)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{backend.port}") as channel:
                await asyncio.wait_for(body(backend, channel), timeout=5)
        finally:
            await backend.stop(None)

    asyncio.run(main())


def chat_request(model: str, text: str = "Hi", request_id: str = "") -> pb.ChatRequest:
    message = pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text=text)])
    return pb.ChatRequest(model=model, messages=[message], request_id=request_id)


async def collect(
    channel: grpc.aio.Channel, request: pb.ChatRequest, metadata: Any = None
) -> tuple[list[pb.ChatChunk], grpc.aio.AioRpcError | None]:
    chunks: list[pb.ChatChunk] = []
    try:
        async for chunk in pb_grpc.ChatServiceStub(channel).Chat(request, metadata=metadata):
            chunks.append(chunk)
    except grpc.aio.AioRpcError as exc:
        return chunks, exc
    return chunks, None


FAKE_USAGE = pb.Usage(input_tokens=12, output_tokens=4, cached_input_tokens=2, reasoning_tokens=1)


def test_text_streams_then_one_last_chunk_with_finish_and_usage(fake: FakeOpenAI) -> None:
    async def body(backend: backend_server.RunningBackend, channel: grpc.aio.Channel) -> None:
        chunks, error = await collect(channel, chat_request("fake-text", request_id="r-text"))
        assert error is None
        assert [c.text for c in chunks] == ["Hello", ", ", "world", "!", ""]
        # The upstream's finish (on "!") and usage (a later chunk) go out together, last.
        assert [c.finish_reason for c in chunks] == [0, 0, 0, 0, pb.FINISH_REASON_STOP]
        assert [c.HasField("usage") for c in chunks] == [False] * 4 + [True]
        assert chunks[-1].usage == FAKE_USAGE

    run(fake.url, body)
    sent = fake.chat_requests()[-1]
    assert sent.headers["x-request-id"] == backend_server.upstream_request_id("r-text")
    assert uuid.UUID(sent.headers["x-request-id"])  # what llama-cpp-python's server takes
    assert "authorization" not in sent.headers
    assert sent.headers["content-type"] == "application/json"
    assert sent.body == {
        "model": "fake-text",
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_tool_call_deltas(fake: FakeOpenAI) -> None:
    async def body(backend: backend_server.RunningBackend, channel: grpc.aio.Channel) -> None:
        chunks, error = await collect(channel, chat_request("fake-tools"))
        assert error is None
        deltas = [d for c in chunks for d in c.tool_calls]
        assert deltas[0] == pb.ToolCallDelta(index=0, id="call_fake_1", name="get_weather")
        assert all((d.index, d.id, d.name) == (0, "", "") for d in deltas[1:])
        assert [d.arguments for d in deltas[1:]] == list(fake_openai.ARGUMENTS)
        assert json.loads("".join(d.arguments for d in deltas)) == {"city": "Paris"}
        assert all(not c.text for c in chunks)
        last = chunks[-1]
        assert (last.finish_reason, last.usage, list(last.tool_calls)) == (
            pb.FINISH_REASON_TOOL_CALLS,
            FAKE_USAGE,
            [],
        )
        assert all(c.finish_reason == 0 for c in chunks[:-1])

    run(fake.url, body)


def test_request_translation(fake: FakeOpenAI) -> None:
    weather = pb.Tool(
        name="get_weather",
        description="The weather in a city.",
        parameters='{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}',
        strict=True,
    )
    request = pb.ChatRequest(
        model="fake-text",
        messages=[
            pb.Message(role=pb.ROLE_SYSTEM, content=[pb.ContentPart(text="Be brief.")]),
            pb.Message(role=pb.ROLE_DEVELOPER, content=[pb.ContentPart(text="Use tools.")]),
            pb.Message(
                role=pb.ROLE_USER,
                content=[
                    pb.ContentPart(text="What is this?"),
                    pb.ContentPart(
                        image=pb.Image(url="https://x.test/a.png", detail=pb.IMAGE_DETAIL_LOW)
                    ),
                ],
            ),
            pb.Message(
                role=pb.ROLE_ASSISTANT,
                tool_calls=[pb.ToolCall(id="call_1", name="get_weather", arguments='{"city":"X"}')],
            ),
            pb.Message(
                role=pb.ROLE_TOOL, tool_call_id="call_1", content=[pb.ContentPart(text="sunny")]
            ),
            pb.Message(role=pb.ROLE_ASSISTANT, content=[pb.ContentPart(refusal="I can't.")]),
        ],
        temperature=0.25,
        top_p=0.5,
        max_output_tokens=64,
        response_format=pb.ResponseFormat(
            type=pb.RESPONSE_FORMAT_TYPE_JSON_SCHEMA,
            json_schema=pb.JsonSchema(
                name="answer", description="The answer.", schema='{"type":"object"}', strict=True
            ),
        ),
        tools=[weather, pb.Tool(name="get_time")],
        tool_choice=pb.ToolChoice(
            mode=pb.TOOL_CHOICE_MODE_REQUIRED, allowed_function_names=["get_weather"]
        ),
        parallel_tool_calls=False,
        request_id="r-translate",
    )

    async def body(backend: backend_server.RunningBackend, channel: grpc.aio.Channel) -> None:
        chunks, error = await collect(channel, request)
        assert error is None and chunks[-1].finish_reason == pb.FINISH_REASON_STOP

    run(fake.url, body)
    assert fake.chat_requests()[-1].body == {
        "model": "fake-text",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "system", "content": "Use tools."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://x.test/a.png", "detail": "low"},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"X"}'},
                    }
                ],
            },
            {"role": "tool", "content": "sunny", "tool_call_id": "call_1"},
            {"role": "assistant", "content": "I can't."},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.25,
        "top_p": 0.5,
        "max_tokens": 64,
        "response_format": {
            "type": "json_schema",
            "json_schema": {
                "name": "answer",
                "schema": {"type": "object"},
                "strict": True,
                "description": "The answer.",
            },
        },
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "The weather in a city.",
                    "parameters": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}},
                        "required": ["city"],
                    },
                    "strict": True,
                },
            },
            {
                "type": "function",
                "function": {
                    "name": "get_time",
                    "parameters": {"type": "object", "properties": {}},
                },
            },
        ],
        "tool_choice": {
            "type": "allowed_tools",
            "allowed_tools": {
                "mode": "required",
                "tools": [{"type": "function", "function": {"name": "get_weather"}}],
            },
        },
        "parallel_tool_calls": False,
    }


@pytest.mark.parametrize(
    ("model", "code", "details"),
    [
        (
            "fake-429",
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "The model server is rate limiting requests; retry later. (HTTP 429)",
        ),
        ("fake-500", grpc.StatusCode.INTERNAL, "The model server failed to answer. (HTTP 500)"),
        (
            "nope",
            grpc.StatusCode.NOT_FOUND,
            "The model server does not serve this model. (HTTP 404)",
        ),
    ],
)
def test_upstream_http_errors(
    fake: FakeOpenAI, model: str, code: grpc.StatusCode, details: str
) -> None:
    async def body(backend: backend_server.RunningBackend, channel: grpc.aio.Channel) -> None:
        chunks, error = await collect(channel, chat_request(model))
        assert chunks == []
        assert error is not None
        assert (error.code(), error.details()) == (code, details)

    run(fake.url, body)


def test_in_band_error_after_text(fake: FakeOpenAI) -> None:
    async def body(backend: backend_server.RunningBackend, channel: grpc.aio.Channel) -> None:
        chunks, error = await collect(channel, chat_request("fake-error-frame"))
        assert [c.text for c in chunks] == ["partial"]
        assert chunks[0].finish_reason == 0
        assert error is not None
        assert (error.code(), error.details()) == (
            grpc.StatusCode.INTERNAL,
            "The model server reported an error mid-stream.",
        )

    run(fake.url, body)


def test_a_json_reply_to_a_streamed_request(fake: FakeOpenAI) -> None:
    async def body(backend: backend_server.RunningBackend, channel: grpc.aio.Channel) -> None:
        chunks, error = await collect(channel, chat_request("fake-json"))
        assert error is None
        assert [c.text for c in chunks] == ["Hello, world!", ""]
        assert (chunks[-1].finish_reason, chunks[-1].usage) == (pb.FINISH_REASON_STOP, FAKE_USAGE)

    run(fake.url, body)


def test_invalid_schema_is_rejected_before_the_upstream(fake: FakeOpenAI) -> None:
    request = chat_request("fake-text")
    request.tools.append(pb.Tool(name="f", parameters="{not json"))
    before = len(fake.chat_requests())

    async def body(backend: backend_server.RunningBackend, channel: grpc.aio.Channel) -> None:
        chunks, error = await collect(channel, request)
        assert chunks == [] and error is not None
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error.details() == "tools[0].parameters is not valid JSON"

    run(fake.url, body)
    assert len(fake.chat_requests()) == before


def test_upstream_down_is_unavailable() -> None:
    async def body(backend: backend_server.RunningBackend, channel: grpc.aio.Channel) -> None:
        chunks, error = await collect(channel, chat_request("fake-text"))
        assert chunks == [] and error is not None
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        assert error.details() == "The model server is unreachable."
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await pb_grpc.ChatServiceStub(channel).ListModels(pb.ListModelsRequest())
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE

    run(f"http://127.0.0.1:{free_port()}/v1", body)


def test_cancellation_closes_the_upstream_stream(fake: FakeOpenAI) -> None:
    fake.disconnected.clear()

    async def body(backend: backend_server.RunningBackend, channel: grpc.aio.Channel) -> None:
        call = pb_grpc.ChatServiceStub(channel).Chat(chat_request("fake-slow"))
        first = await call.read()
        assert isinstance(first, pb.ChatChunk) and first.text == "tick 0 "
        assert not fake.disconnected.is_set()
        call.cancel()
        # The fake would stream for 10 s more; it sees the disconnect within 1 s.
        assert await asyncio.to_thread(fake.disconnected.wait, 1.0)

    run(fake.url, body)


def test_list_models_with_api_key_and_request_id(fake: FakeOpenAI) -> None:
    async def body(backend: backend_server.RunningBackend, channel: grpc.aio.Channel) -> None:
        reply = await pb_grpc.ChatServiceStub(channel).ListModels(
            pb.ListModelsRequest(), metadata=(("x-request-id", "r-models"),)
        )
        assert [m.id for m in reply.models] == list(fake_openai.MODELS)
        assert all((m.created, m.owned_by) == (fake_openai.CREATED, "fake") for m in reply.models)
        # The request id may come as metadata only (the gateway sends both).
        chunks, error = await collect(
            channel, chat_request("fake-text"), metadata=(("x-request-id", "r-meta"),)
        )
        assert error is None and chunks

    run(fake.url, body, api_key="sk-fake-key")
    models, chat = fake.requests[-2], fake.requests[-1]
    assert (models.method, models.path) == ("GET", "/v1/models")
    assert models.headers["authorization"] == "Bearer sk-fake-key"
    assert models.headers["x-request-id"] == backend_server.upstream_request_id("r-models")
    assert chat.headers["authorization"] == "Bearer sk-fake-key"
    assert chat.headers["x-request-id"] == backend_server.upstream_request_id("r-meta")


def test_health_serving(fake: FakeOpenAI) -> None:
    async def body(backend: backend_server.RunningBackend, channel: grpc.aio.Channel) -> None:
        stub = health_pb2_grpc.HealthStub(channel)
        for name in ("", "runinfra.chat.v1.ChatService"):
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=name))  # type: ignore[attr-defined]
            assert reply.status == health_pb2.HealthCheckResponse.SERVING

    run(fake.url, body)


def test_start_refuses_a_non_http_upstream() -> None:
    async def main() -> None:
        with pytest.raises(ValueError, match="http"):
            await backend_server.start("127.0.0.1:8000")

    asyncio.run(main())


# --- strict servers (llama-cpp-python) and reasoning models ---------------------------


def test_the_fake_is_as_strict_as_llama_cpp_python(fake: FakeOpenAI) -> None:
    """The fake's strict checks can fail: a req_ id or a null content gets an empty 400."""
    url = fake.url + "/chat/completions"
    body = {"model": "fake-text", "messages": [{"role": "user", "content": "Hi"}]}
    assert httpx.post(url, json=body, headers={"X-Request-Id": "req_1"}).status_code == 400
    null = {**body, "messages": [{"role": "assistant", "content": None}]}
    refused = httpx.post(url, json=null)
    assert (refused.status_code, refused.content) == (400, b"")
    assert httpx.post(url, json=body, headers={"X-Request-Id": str(uuid.uuid4())}).is_success


def test_tool_loop_with_a_req_id_passes_the_strict_server(fake: FakeOpenAI) -> None:
    request = chat_request("fake-text", request_id="req_0123abcd")
    call = pb.ToolCall(id="c1", name="get_weather", arguments="{}")
    request.messages.append(pb.Message(role=pb.ROLE_ASSISTANT, tool_calls=[call]))
    request.messages.append(
        pb.Message(role=pb.ROLE_TOOL, tool_call_id="c1", content=[pb.ContentPart(text="sun")])
    )

    async def body(backend: backend_server.RunningBackend, channel: grpc.aio.Channel) -> None:
        chunks, error = await collect(channel, request)
        assert error is None, error
        assert "".join(c.text for c in chunks) == "Hello, world!"

    run(fake.url, body)


@pytest.mark.parametrize("model", ["fake-reasoning", "fake-reasoning-alt"])
def test_reasoning_streams_before_the_text_and_effort_goes_upstream(
    fake: FakeOpenAI, model: str
) -> None:
    request = chat_request(model)
    request.reasoning_effort = pb.REASONING_EFFORT_LOW

    async def body(backend: backend_server.RunningBackend, channel: grpc.aio.Channel) -> None:
        chunks, error = await collect(channel, request)
        assert error is None
        assert [c.reasoning_text for c in chunks if c.reasoning_text] == list(fake_openai.REASONING)
        assert "".join(c.text for c in chunks) == "Hello, world!"
        first_text = next(i for i, c in enumerate(chunks) if c.text)
        assert all(not c.reasoning_text for c in chunks[first_text:])

    run(fake.url, body)
    assert fake.chat_requests()[-1].body["reasoning_effort"] == "low"


def test_upstream_error_text_is_logged_not_returned(
    fake: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    async def body(backend: backend_server.RunningBackend, channel: grpc.aio.Channel) -> None:
        _, error = await collect(channel, chat_request("fake-leaky-500", request_id="r-leak"))
        assert error is not None and error.code() == grpc.StatusCode.INTERNAL
        assert error.details() == "The model server failed to answer. (HTTP 500)"

    with caplog.at_level("INFO", logger="backend_openai"):
        run(fake.url, body)
    logged = [r.__dict__.get("fields", {}) for r in caplog.records]
    assert {"request_id": "r-leak", "status": "internal", "detail": fake_openai.LEAKY_MESSAGE} in [
        {k: f.get(k) for k in ("request_id", "status", "detail")} for f in logged
    ]
