"""The official openai SDK -> the real gateway -> backend_openai -> the fake OpenAI server.

The whole path on 127.0.0.1: the Responses API and Chat Completions in front of an
"any OpenAI-compatible server", each hop a real socket.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import openai
import pytest
from openai import OpenAI

from backend_openai.server import RunningBackend, start, upstream_request_id
from gateway.app import create_app
from gateway.config import Settings
from runinfra.chat.v1 import chat_service_pb2 as pb
from runinfra.chat.v1 import chat_service_pb2_grpc as pb_grpc
from tests import fake_openai
from tests.fake_openai import FakeOpenAI
from tests.support import (
    LoopThread,
    ServedApp,
    free_port,
    strict_chat_chunk,
    strict_chat_completion,
    strict_response,
)


class Stack:
    """The fake upstream (own thread), then backend_openai and the gateway sharing a loop."""

    def __init__(self) -> None:
        self.fake = FakeOpenAI()
        self.thread = LoopThread()
        self.backend: RunningBackend = self.thread.run(start(self.fake.url))
        settings = Settings(  # no coalescing: the tests count deltas (see tests.support.Servers)
            backend=f"127.0.0.1:{self.backend.port}", default_model="fake-text", max_hold_ms=0
        )
        self.gateway = ServedApp(self.thread, create_app(settings))
        self.url = self.gateway.url + "/v1"

    def close(self) -> None:
        self.gateway.close()
        self.thread.run(self.backend.stop(0))
        self.thread.close()
        self.fake.close()


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    s = Stack()
    yield s
    s.close()


@pytest.fixture()
def sdk(stack: Stack) -> Iterator[OpenAI]:
    with OpenAI(base_url=stack.url, api_key="unused", max_retries=0, timeout=10) as client:
        yield client


def raw_json(model: Any) -> dict[str, Any]:
    return model.model_dump(mode="json", exclude_unset=True)  # type: ignore[no-any-return]


def test_responses_create(sdk: OpenAI, stack: Stack) -> None:
    response = sdk.responses.create(
        model="fake-text", instructions="Be brief.", input="Hi", max_output_tokens=50
    )
    assert response.output_text == "Hello, world!"
    assert (response.status, response.model) == ("completed", "fake-text")
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (12, 4)
    assert response.usage.input_tokens_details.cached_tokens == 2
    assert response.usage.output_tokens_details.reasoning_tokens == 1
    strict_response(raw_json(response))
    sent = stack.fake.chat_requests()[-1]
    assert sent.body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]
    assert sent.body["max_tokens"] == 50 and sent.body["stream"] is True
    assert sent.headers["x-request-id"] == upstream_request_id(response._request_id or "")


def test_responses_stream(sdk: OpenAI) -> None:
    events = list(sdk.responses.create(model="default", input="Hi", stream=True))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert deltas == list(fake_openai.TEXT)
    assert events[-1].type == "response.completed"
    final = events[-1].response
    assert final.output_text == "Hello, world!"
    assert final.usage is not None and final.usage.total_tokens == 16


def test_chat_completions_with_tools(sdk: OpenAI, stack: Stack) -> None:
    tool: Any = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    completion = sdk.chat.completions.create(
        model="fake-tools",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[tool],
        tool_choice="required",
    )
    strict_chat_completion(raw_json(completion))
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert (call.id, call.function.name) == ("call_fake_1", "get_weather")
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert completion.usage is not None and completion.usage.prompt_tokens == 12
    sent = stack.fake.chat_requests()[-1].body
    assert sent["tools"] == [tool] and sent["tool_choice"] == "required"


def test_chat_completions_stream(sdk: OpenAI) -> None:
    stream = sdk.chat.completions.create(
        model="fake-text",
        messages=[{"role": "user", "content": "Hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello, world!"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4


SAMPLING: dict[str, Any] = {
    "stop": ["\n\n", "END"],
    "seed": 1234,
    "frequency_penalty": 0.25,
    "presence_penalty": -0.5,
    "logit_bias": {"50256": -100, "7": 3},
    "logprobs": True,
    "top_logprobs": 2,
}


def expected_logprobs() -> list[dict[str, Any]]:
    return [fake_openai.logprob_entry(t, 2) for t in fake_openai.TEXT]


def test_chat_sampling_fields_go_upstream_and_logprobs_come_back(sdk: OpenAI, stack: Stack) -> None:
    completion = sdk.chat.completions.create(
        model="fake-text", messages=[{"role": "user", "content": "Hi"}], **SAMPLING
    )
    sent = stack.fake.chat_requests()[-1].body
    assert {key: sent[key] for key in SAMPLING} == SAMPLING
    strict_chat_completion(raw_json(completion))
    logprobs = completion.choices[0].logprobs
    assert logprobs is not None
    assert raw_json(logprobs)["content"] == expected_logprobs()


def test_chat_logprobs_come_back_streaming(sdk: OpenAI, stack: Stack) -> None:
    stream = sdk.chat.completions.create(
        model="fake-text", messages=[{"role": "user", "content": "Hi"}], stream=True, **SAMPLING
    )
    got = []
    for chunk in stream:
        strict_chat_chunk(raw_json(chunk))
        if chunk.choices[0].logprobs is not None:
            got += raw_json(chunk.choices[0].logprobs)["content"]
    assert got == expected_logprobs()


def test_responses_logprobs_come_back(sdk: OpenAI, stack: Stack) -> None:
    response = sdk.responses.create(
        model="fake-text", input="Hi", include=["message.output_text.logprobs"], top_logprobs=1
    )
    strict_response(raw_json(response))
    sent = stack.fake.chat_requests()[-1].body
    assert (sent["logprobs"], sent["top_logprobs"]) == (True, 1)
    assert "stop" not in sent and "seed" not in sent
    part = response.output[0].content[0]  # type: ignore[union-attr]
    assert part.type == "output_text"
    assert [(t.token, t.logprob, t.bytes) for t in part.logprobs or []] == [
        (e["token"], e["logprob"], e["bytes"]) for e in expected_logprobs()
    ]
    tops = [a.token for t in part.logprobs or [] for a in t.top_logprobs]
    assert tops == [t.upper() for t in fake_openai.TEXT]  # upstream bytes null: the token's


def test_upstream_429_is_a_rate_limit_error(sdk: OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as err:
        sdk.responses.create(model="fake-429", input="Hi")
    assert "rate limiting" in str(err.value)
    assert fake_openai.RATE_LIMIT_MESSAGE not in str(err.value)  # logged, not passed on
    with pytest.raises(openai.RateLimitError):
        sdk.chat.completions.create(model="fake-429", messages=[{"role": "user", "content": "Hi"}])


def test_upstream_500_is_a_server_error(sdk: OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as err:
        sdk.chat.completions.create(model="fake-500", messages=[{"role": "user", "content": "Hi"}])
    assert err.value.status_code == 500


def test_models_come_from_the_upstream(sdk: OpenAI) -> None:
    assert [m.id for m in sdk.models.list()] == list(fake_openai.MODELS)
    assert sdk.models.retrieve("fake-tools").owned_by == "fake"


def test_process_reads_the_key_from_the_environment_and_logs_json(
    stack: Stack, tmp_path: Path
) -> None:
    port = free_port()
    log_path = tmp_path / "backend.log"
    args = ["--upstream", stack.fake.url, "--port", str(port), "--api-key-env", "FAKE_UPSTREAM_KEY"]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "backend_openai", *args],
            env={**os.environ, "FAKE_UPSTREAM_KEY": "sk-process-secret"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                grpc.channel_ready_future(channel).result(timeout=10)
                request = pb.ChatRequest(
                    model="fake-text",
                    messages=[
                        pb.Message(
                            role=pb.ROLE_USER, content=[pb.ContentPart(text="a private prompt")]
                        )
                    ],
                    request_id="r-process",
                )
                chunks = list(pb_grpc.ChatServiceStub(channel).Chat(request, timeout=10))
            assert "".join(c.text for c in chunks) == "Hello, world!"
        finally:
            process.send_signal(signal.SIGTERM)
            code = process.wait(10)
    assert code == 0
    sent = next(
        r
        for r in stack.fake.chat_requests()
        if r.headers.get("x-request-id") == upstream_request_id("r-process")
    )
    assert sent.headers["authorization"] == "Bearer sk-process-secret"
    text = log_path.read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    assert [line["event"] for line in lines if line["logger"] == "backend_openai"] == [
        "listening",
        "chat",
        "stopping",
    ]
    chat = next(line for line in lines if line["event"] == "chat")
    assert (chat["request_id"], chat["status"], chat["chunks"]) == ("r-process", "ok", 5)
    assert chat["upstream_request_id"] == upstream_request_id("r-process")
    assert "sk-process-secret" not in text and "private prompt" not in text


def test_process_refuses_a_missing_key_variable() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "backend_openai",
            "--upstream",
            "http://127.0.0.1:1/v1",
            "--api-key-env",
            "NO_SUCH_VAR_X",
        ],
        env={k: v for k, v in os.environ.items() if k != "NO_SUCH_VAR_X"},
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 2
    assert "NO_SUCH_VAR_X is not set" in result.stderr


def test_reasoning_model_through_both_endpoints(sdk: OpenAI, stack: Stack) -> None:
    events = list(
        sdk.responses.create(
            model="fake-reasoning", input="Hi", stream=True, reasoning={"effort": "high"}
        )
    )
    deltas = [e.delta for e in events if e.type == "response.reasoning_text.delta"]
    assert deltas == list(fake_openai.REASONING)
    final = events[-1].response
    assert [item.type for item in final.output] == ["reasoning", "message"]
    assert final.usage is not None and final.usage.output_tokens_details.reasoning_tokens == 1
    assert stack.fake.chat_requests()[-1].body["reasoning_effort"] == "high"
    completion = sdk.chat.completions.create(
        model="fake-reasoning-alt",
        messages=[{"role": "user", "content": "Hi"}],
        reasoning_effort="low",
    )
    message = strict_chat_completion(raw_json(completion)).choices[0].message
    assert message.content == "Hello, world!"
    assert (message.model_extra or {})["reasoning_content"] == "".join(fake_openai.REASONING)


def test_litellm_tool_loop_reaches_a_strict_server(sdk: OpenAI, stack: Stack) -> None:
    """litellm's completion() tool loop (named tool message, null assistant content) through
    to a server as strict as llama-cpp-python's."""
    completion = sdk.chat.completions.create(
        model="fake-text",
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": "sunny"},
        ],
    )
    assert completion.choices[0].message.content == "Hello, world!"
    sent = stack.fake.chat_requests()[-1].body["messages"]
    assert sent[1]["content"] == "" and "name" not in sent[2]


def test_upstream_file_paths_do_not_reach_clients(sdk: OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as err:
        sdk.responses.create(model="fake-leaky-500", input="Hi")
    assert "/home/ci" not in str(err.value.body) and "server.cpp" not in str(err.value)
