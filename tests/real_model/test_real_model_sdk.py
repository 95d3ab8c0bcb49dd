"""A real model through the gateway: backend_local (SmolLM2-135M-Instruct, mistral.rs on CPU) and
the official openai SDK. Generation is greedy (temperature 0) and short; the checks are
properties of the replies, never their wording."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from backend_local import gguf
from backend_local.engine import MistralrsEngine
from tests.real_model.conftest import LocalGateway
from tests.real_model.local_support import (
    MODEL_ID,
    SMOLLM2_DEFAULT_SYSTEM,
    LocalBackend,
    chatml,
)
from tests.support import (
    free_port,
    poll,
    strict_chat_chunk,
    strict_chat_completion,
    strict_event,
    strict_response,
)

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def is_person(text: str) -> bool:
    value = json.loads(text)
    return (
        isinstance(value, dict)
        and set(value) == {"name", "age"}
        and isinstance(value["name"], str)
        and isinstance(value["age"], int)
        and not isinstance(value["age"], bool)
    )


@pytest.fixture(scope="module")
def tokenizer(model_path: Path) -> MistralrsEngine:
    """The model's own tokenizer, loaded in this process (independent of the server)."""
    return MistralrsEngine(model_path, MODEL_ID, threads=1)


# --- text, both endpoints ---------------------------------------------------------------


def test_models_lists_the_loaded_model(local_client: OpenAI) -> None:
    assert [m.id for m in local_client.models.list()] == [MODEL_ID]
    assert local_client.models.retrieve("default").id == MODEL_ID


def test_responses_text(local_client: OpenAI) -> None:
    response = local_client.responses.create(
        model="default", input="What is the capital of France?", max_output_tokens=24, temperature=0
    )
    strict_response(response.model_dump(mode="json", exclude_unset=True))
    assert response.model == MODEL_ID
    assert response.status in ("completed", "incomplete")
    assert response.output_text.strip()
    assert response.usage is not None
    assert 1 <= response.usage.output_tokens <= 24
    assert response.usage.input_tokens > 5


def test_responses_text_streams_token_by_token(local_client: OpenAI) -> None:
    events = list(
        local_client.responses.create(
            model=MODEL_ID,
            input="Say hello to me.",
            max_output_tokens=16,
            temperature=0,
            stream=True,
        )
    )
    for event in events:
        strict_event(event.model_dump(mode="json", exclude_unset=True))
    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] in ("response.completed", "response.incomplete")
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    final = events[-1].response  # type: ignore[union-attr]
    assert len(deltas) >= 2  # streamed as generated, not in one piece
    assert "".join(deltas) == final.output_text
    assert final.usage.output_tokens >= len(deltas)


def test_chat_text(local_client: OpenAI) -> None:
    completion = local_client.chat.completions.create(
        model=MODEL_ID,
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=24,
        temperature=0,
    )
    strict_chat_completion(completion.model_dump(mode="json", exclude_unset=True))
    choice = completion.choices[0]
    assert choice.finish_reason in ("stop", "length")
    assert choice.message.content and choice.message.content.strip()
    assert completion.usage is not None and 1 <= completion.usage.completion_tokens <= 24


def test_chat_text_streams_with_usage(local_client: OpenAI) -> None:
    chunks = list(
        local_client.chat.completions.create(
            model=MODEL_ID,
            messages=[{"role": "user", "content": "Say hello to me."}],
            max_tokens=16,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    for chunk in chunks:
        strict_chat_chunk(chunk.model_dump(mode="json", exclude_unset=True))
    pieces = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert len(pieces) >= 2
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes in (["stop"], ["length"])
    usage = chunks[-1].usage
    assert not chunks[-1].choices and usage is not None
    assert usage.completion_tokens >= len(pieces)


# --- sampling -------------------------------------------------------------------------------


def test_temperature_and_top_p_reach_the_sampler(local_client: OpenAI) -> None:
    """Greedy decoding repeats itself; so does hot sampling cut to the top token by a tiny
    top_p. Were top_p dropped, temperature 1.8 would wander off within 12 tokens."""

    def reply(**sampling: float) -> str:
        return local_client.responses.create(
            model=MODEL_ID, input="Describe the moon.", max_output_tokens=12, **sampling
        ).output_text

    greedy = reply(temperature=0)
    assert reply(temperature=0) == greedy
    assert reply(temperature=1.8, top_p=1e-6) == greedy


# --- truncation ---------------------------------------------------------------------------


def test_responses_truncated_is_incomplete(local_client: OpenAI) -> None:
    response = local_client.responses.create(
        model=MODEL_ID,
        input="Write a long story about the sea.",
        max_output_tokens=5,
        temperature=0,
    )
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.usage is not None and response.usage.output_tokens == 5
    assert response.output_text


def test_chat_truncated_is_length(local_client: OpenAI) -> None:
    completion = local_client.chat.completions.create(
        model=MODEL_ID,
        messages=[{"role": "user", "content": "Write a long story about the sea."}],
        max_completion_tokens=5,
        temperature=0,
    )
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and completion.usage.completion_tokens == 5


# --- grammar-constrained JSON ---------------------------------------------------------------


def test_responses_json_schema_reply_validates(local_client: OpenAI) -> None:
    response = local_client.responses.create(
        model=MODEL_ID,
        input="Give me a person.",
        max_output_tokens=80,
        temperature=0,
        text={
            "format": {"type": "json_schema", "name": "person", "schema": PERSON, "strict": True}
        },
    )
    assert response.status == "completed", response.output_text
    assert is_person(response.output_text), response.output_text


def test_chat_json_schema_reply_validates(local_client: OpenAI) -> None:
    completion = local_client.chat.completions.create(
        model=MODEL_ID,
        messages=[{"role": "user", "content": "Tell me about someone you know."}],
        max_tokens=80,
        temperature=0,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "person", "schema": PERSON, "strict": True},
        },
    )
    content = completion.choices[0].message.content or ""
    assert completion.choices[0].finish_reason == "stop", content
    assert is_person(content), content


def test_chat_json_object_is_an_object(local_client: OpenAI) -> None:
    completion = local_client.chat.completions.create(
        model=MODEL_ID,
        messages=[
            {"role": "user", "content": 'Reply with a JSON object with one key, "ok", set to true.'}
        ],
        max_tokens=60,
        temperature=0,
        response_format={"type": "json_object"},
    )
    content = completion.choices[0].message.content or ""
    assert completion.choices[0].finish_reason == "stop", content
    assert isinstance(json.loads(content), dict), content


# --- usage ------------------------------------------------------------------------------------


def test_the_chat_template_is_chatml(model_path: Path) -> None:
    """The prompt the usage check counts is the one the model's own template renders."""
    template = gguf.read_metadata(model_path).chat_template
    assert template is not None and SMOLLM2_DEFAULT_SYSTEM in template
    assert "'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>'" in template
    assert not gguf.template_supports_tools(template)


def test_usage_is_the_tokenizers_count(local_client: OpenAI, tokenizer: MistralrsEngine) -> None:
    messages = [
        {"role": "system", "content": "You are brief."},
        {"role": "user", "content": "Name a color."},
    ]
    completion = local_client.chat.completions.create(
        model=MODEL_ID,
        messages=messages,
        max_tokens=12,
        temperature=0,  # type: ignore[arg-type]
    )
    usage, choice = completion.usage, completion.choices[0]
    assert usage is not None
    assert usage.prompt_tokens == tokenizer.count_tokens(chatml(messages))
    # Output: the reply's tokens, plus the end-of-turn token when the model stopped by itself.
    end_of_turn = 1 if choice.finish_reason == "stop" else 0
    assert (
        usage.completion_tokens
        == tokenizer.count_tokens(choice.message.content or "") + end_of_turn
    )
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


# --- cancellation -------------------------------------------------------------------------------


def test_a_stream_closed_after_three_deltas_stops_generation(
    local_client: OpenAI, local_backend: LocalBackend
) -> None:
    before = len(local_backend.chats())
    cpu_start, started = local_backend.cpu_seconds(), time.monotonic()
    stream = local_client.responses.create(
        model=MODEL_ID, input="Write a long story about a dragon.", max_output_tokens=400,
        temperature=0, stream=True,
    )  # fmt: skip
    deltas = 0
    for event in stream:
        if event.type == "response.output_text.delta":
            deltas += 1
            if deltas == 3:
                break
    generating = (local_backend.cpu_seconds() - cpu_start) / (time.monotonic() - started)
    stream.close()
    (record,) = local_backend.wait_for_chats(before, 1, timeout=30)
    assert record["status"] == "cancelled", record
    assert "finish" not in record and record["deltas"] < 20, record  # 400 were allowed
    # The engine computes nothing more: its process is idle (it used a core while generating).
    time.sleep(0.3)
    idle_start = local_backend.cpu_seconds()
    time.sleep(1.5)
    idle = local_backend.cpu_seconds() - idle_start
    # Had it gone on generating, it would have used about `generating` cores all along.
    assert generating > 0.02, f"the CPU counter did not see generation ({generating:.2f} cores)"
    assert idle < generating * 1.5 / 3, (
        f"backend_local used {idle:.2f} s of CPU in the 1.5 s after the client left "
        f"({generating:.2f} cores while generating)"
    )


# --- concurrency and health -----------------------------------------------------------------------


def test_four_concurrent_requests_are_all_answered_in_turn(
    local_gateway: LocalGateway, local_backend: LocalBackend
) -> None:
    """One sequence runs at a time (the engine's batching fails on CPU), the others wait in
    order; the health check (readyz asks the backend's gRPC health service) stays fast."""
    before = len(local_backend.chats())

    def ask(i: int) -> Any:
        with OpenAI(
            base_url=local_gateway.url + "/v1", api_key="unused", max_retries=0, timeout=180
        ) as c:
            return c.chat.completions.create(
                model=MODEL_ID,
                messages=[{"role": "user", "content": f"Name a fruit, please ({i})."}],
                max_tokens=8,
                temperature=0,
            )

    health_ms: list[float] = []
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(ask, i) for i in range(4)]
        for _ in range(40):  # bounded: at most ~40 health checks while they run
            if all(f.done() for f in futures):
                break
            started = time.monotonic()
            assert httpx.get(local_gateway.url + "/readyz", timeout=5).status_code == 200
            health_ms.append((time.monotonic() - started) * 1000)
            time.sleep(0.1)
        completions = [f.result(timeout=180) for f in futures]
    for completion in completions:
        assert completion.choices[0].message.content
        assert completion.usage is not None and 1 <= completion.usage.completion_tokens <= 8
    records = local_backend.wait_for_chats(before, 4)
    assert [r["status"] for r in records] == ["ok"] * 4
    assert sum(r["queue_ms"] > 100 for r in records) >= 2, records  # they waited their turn
    assert health_ms and max(health_ms) < 1000, health_ms


# --- tools --------------------------------------------------------------------------------------


def test_tools_are_a_clear_400_on_both_endpoints(local_client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as responses_error:
        local_client.responses.create(
            model=MODEL_ID,
            input="Weather in Paris?",
            tools=[WEATHER_TOOL],
            max_output_tokens=8,  # type: ignore[list-item]
        )
    chat_tool = {
        "type": "function",
        "function": {k: v for k, v in WEATHER_TOOL.items() if k != "type"},
    }
    with pytest.raises(openai.BadRequestError) as chat_error:
        local_client.chat.completions.create(
            model=MODEL_ID,
            messages=[{"role": "user", "content": "Weather in Paris?"}],
            tools=[chat_tool],  # type: ignore[list-item]
            max_tokens=8,
        )
    for error in (responses_error.value, chat_error.value):
        assert f"model {MODEL_ID} does not support tools" in error.message


def test_a_tool_result_in_the_history_is_a_400(local_client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="does not support tools"):
        local_client.responses.create(
            model=MODEL_ID,
            input=[
                {
                    "type": "function_call",
                    "call_id": "c1",
                    "name": "get_weather",
                    "arguments": "{}",
                },
                {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
            ],
            max_output_tokens=8,
        )


# --- python -m gateway --local-model ---------------------------------------------------------------


def test_gateway_local_model_flag_serves_the_model(model_path: Path, tmp_path: Path) -> None:
    """The README's real-model command: one process tree, a real answer, a clean stop."""
    port = free_port()
    log = open(tmp_path / "gateway.log", "wb")  # noqa: SIM115 - closed below
    gateway = subprocess.Popen(
        [sys.executable, "-m", "gateway", "--port", str(port), "--local-model", str(model_path)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            try:
                return httpx.get(url + "/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return gateway.poll() is not None  # stop waiting for a dead process

        assert poll(ready, timeout=180, interval=0.2) and gateway.poll() is None
        with OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=180) as client:
            response = client.responses.create(
                model="default", input="Hello there", max_output_tokens=8, temperature=0
            )
        assert response.model == MODEL_ID and response.output_text.strip()
        gateway.send_signal(signal.SIGTERM)
        assert gateway.wait(30) == 0
    finally:
        if gateway.poll() is None:
            gateway.kill()
            gateway.wait(5)
        log.close()
    lines = [
        json.loads(x)
        for x in (tmp_path / "gateway.log").read_text().splitlines()
        if x.startswith("{")
    ]
    (started,) = [x for x in lines if x.get("event") == "local model backend"]
    assert any(x.get("event") == "chat" and x.get("logger") == "backend_local" for x in lines)
    # The child backend stopped with the gateway: its port is closed.
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", started["port"])) != 0
