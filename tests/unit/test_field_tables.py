"""The README's request-field tables, proved row by row against the translators."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import InvalidRequest
from gateway.translate import chat_in, responses_in
from gateway.translate.responses_in import ResponsesRequest
from runinfra.chat.v1 import chat_service_pb2 as pb

README = Path(__file__).resolve().parent.parent.parent / "README.md"


def table(name: str) -> dict[str, str]:
    """field -> treatment, from the README table between <!-- fields:NAME --> markers."""
    text = README.read_text()
    body = text.split(f"<!-- fields:{name} -->")[1].split("<!-- /fields -->")[0]
    rows = re.findall(r"^\| `([a-z_]+)` \| (\w+) \|", body, re.MULTILINE)
    return dict(rows)


RESPONSES = table("responses")
BASE: dict[str, Any] = {"model": "stub-echo", "input": "hello"}
TOOL = {"type": "function", "name": "f", "parameters": {"type": "object"}}
Check = Callable[[ResponsesRequest], bool]

# mapped / echoed: a value, and what it must become.
MAPPED: dict[str, tuple[Any, Check]] = {
    "model": ("stub-slow", lambda r: r.chat.model == "stub-slow"),
    "input": ("hi there", lambda r: r.chat.messages[-1].content[0].text == "hi there"),
    "instructions": ("brief", lambda r: r.chat.messages[0].role == pb.ROLE_SYSTEM),
    "max_output_tokens": (5, lambda r: r.chat.max_output_tokens == 5),
    "temperature": (0.3, lambda r: r.chat.temperature == 0.3),
    "top_p": (0.4, lambda r: r.chat.top_p == 0.4),
    "stream": (True, lambda r: r.stream),
    "tools": ([TOOL], lambda r: [t.name for t in r.chat.tools] == ["f"]),
    "tool_choice": ("required", lambda r: r.chat.tool_choice.mode == pb.TOOL_CHOICE_MODE_REQUIRED),
    "parallel_tool_calls": (
        False,
        lambda r: r.chat.HasField("parallel_tool_calls") and not r.chat.parallel_tool_calls,
    ),
    "text": (
        {"format": {"type": "json_object"}},
        lambda r: r.chat.response_format.type == pb.RESPONSE_FORMAT_TYPE_JSON_OBJECT,
    ),
    "response_format": (
        {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
        lambda r: r.chat.response_format.json_schema.name == "x",
    ),
    "metadata": ({"k": "v"}, lambda r: r.echo.metadata == {"k": "v"}),
    "reasoning": (
        {"effort": "high", "summary": "auto"},
        lambda r: (
            r.chat.reasoning_effort == pb.REASONING_EFFORT_HIGH
            and r.echo.reasoning == {"effort": "high", "summary": "auto"}
        ),
    ),
    "include": (["message.output_text.logprobs"], lambda r: r.chat.logprobs),
    "top_logprobs": (
        5,
        lambda r: (r.chat.logprobs, r.chat.top_logprobs, r.echo.top_logprobs) == (True, 5, 5),
    ),
}
# ignored: a realistic value that must change nothing sent to the backend.
IGNORED: dict[str, Any] = {
    "max_tool_calls": 3,
    "user": "user-1",
    "safety_identifier": "sid-1",
    "prompt_cache_key": "k",
    "prompt_cache_retention": "24h",
    "prompt_cache_options": {"ttl": "1h"},
    "stream_options": {"include_obfuscation": False},
    "client_metadata": {"session_id": "s", "x-codex-turn-metadata": '{"turn_id": "t"}'},
}
# rejected: a real value (400 naming the field); null is accepted.
REJECTED: dict[str, Any] = {
    "store": True,
    "previous_response_id": "resp_123",
    "conversation": "conv_123",
    "background": True,
    "prompt": {"id": "pmpt_123"},
    "context_management": [{"type": "compaction"}],
    "moderation": {"model": "omni-moderation-latest"},
    "truncation": "auto",
    "service_tier": "priority",
}


def parse(**extra: Any) -> ResponsesRequest:
    return responses_in.parse({**BASE, **extra}, "stub-echo")


def test_table_lists_every_field_once() -> None:
    assert set(RESPONSES) == responses_in.FIELDS
    treatments = {"mapped", "echoed", "ignored", "rejected"}
    assert set(RESPONSES.values()) <= treatments
    expected = set(MAPPED) | set(IGNORED) | set(REJECTED)
    assert set(RESPONSES) == expected, "every row needs a sample in this test"


@pytest.mark.parametrize(
    "field", sorted(f for f, t in RESPONSES.items() if t in ("mapped", "echoed"))
)
def test_mapped_row(field: str) -> None:
    value, check = MAPPED[field]
    assert check(parse(**{field: value}))


@pytest.mark.parametrize("field", sorted(f for f, t in RESPONSES.items() if t == "ignored"))
def test_ignored_row(field: str) -> None:
    assert parse(**{field: IGNORED[field]}).chat == parse().chat


@pytest.mark.parametrize("field", sorted(f for f, t in RESPONSES.items() if t == "rejected"))
def test_rejected_row(field: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse(**{field: REJECTED[field]})
    assert info.value.param == field
    assert parse(**{field: None}).chat == parse().chat


def test_unknown_field_is_rejected() -> None:
    with pytest.raises(InvalidRequest) as info:
        parse(frobnicate=1)
    assert (info.value.param, info.value.code) == ("frobnicate", "unknown_parameter")


# --- /v1/chat/completions -------------------------------------------------------------------

CHAT = table("chat")
CHAT_BASE: dict[str, Any] = {
    "model": "stub-echo",
    "messages": [{"role": "user", "content": "hello"}],
}
ChatCheck = Callable[[chat_in.ChatCompletionRequest], bool]
CHAT_MAPPED: dict[str, tuple[Any, ChatCheck]] = {
    "model": ("stub-slow", lambda r: r.chat.model == "stub-slow"),
    "messages": (
        [{"role": "developer", "content": "d"}, {"role": "user", "content": "u"}],
        lambda r: [m.role for m in r.chat.messages] == [pb.ROLE_DEVELOPER, pb.ROLE_USER],
    ),
    "temperature": (0.3, lambda r: r.chat.temperature == 0.3),
    "top_p": (0.4, lambda r: r.chat.top_p == 0.4),
    "max_tokens": (7, lambda r: r.chat.max_output_tokens == 7),
    "max_completion_tokens": (8, lambda r: r.chat.max_output_tokens == 8),
    "stream": (True, lambda r: r.stream),
    "stream_options": ({"include_usage": True}, lambda r: r.include_usage),
    "tools": (
        [{"type": "function", "function": {"name": "f"}}],
        lambda r: [t.name for t in r.chat.tools] == ["f"],
    ),
    "tool_choice": ("none", lambda r: r.chat.tool_choice.mode == pb.TOOL_CHOICE_MODE_NONE),
    "parallel_tool_calls": (
        False,
        lambda r: r.chat.HasField("parallel_tool_calls") and not r.chat.parallel_tool_calls,
    ),
    "response_format": (
        {"type": "json_object"},
        lambda r: r.chat.response_format.type == pb.RESPONSE_FORMAT_TYPE_JSON_OBJECT,
    ),
    "reasoning_effort": ("low", lambda r: r.chat.reasoning_effort == pb.REASONING_EFFORT_LOW),
    "n": (3, lambda r: r.n == 3),
    "stop": ("Observation:", lambda r: list(r.chat.stop) == ["Observation:"]),
    "seed": (-(2**40), lambda r: r.chat.HasField("seed") and r.chat.seed == -(2**40)),
    "frequency_penalty": (0.5, lambda r: r.chat.frequency_penalty == 0.5),
    "presence_penalty": (-1.5, lambda r: r.chat.presence_penalty == -1.5),
    "logit_bias": ({"50256": -100}, lambda r: dict(r.chat.logit_bias) == {50256: -100}),
    "logprobs": (True, lambda r: r.chat.logprobs),
    "top_logprobs": (3, lambda r: r.chat.top_logprobs == 3),
}
CHAT_NEEDS = {"stream_options": {"stream": True}, "top_logprobs": {"logprobs": True}}
CHAT_IGNORED: dict[str, Any] = {
    "user": "u", "safety_identifier": "s", "prompt_cache_key": "k", "prompt_cache_retention": "24h",
    "prompt_cache_options": {"ttl": "1h"}, "metadata": {"k": "v"},
}  # fmt: skip
CHAT_REJECTED: dict[str, Any] = {
    "audio": {"voice": "alloy"},
    "modalities": ["text", "audio"], "prediction": {"type": "content", "content": "x"},
    "web_search_options": {}, "functions": [{"name": "f"}], "function_call": "auto",
    "verbosity": "low", "moderation": {"model": "m"},
    "service_tier": "flex", "store": True,
}  # fmt: skip


def chat_parse(**extra: Any) -> chat_in.ChatCompletionRequest:
    return chat_in.parse({**CHAT_BASE, **extra}, "stub-echo")


def test_chat_table_lists_every_field_once() -> None:
    assert set(CHAT) == chat_in.FIELDS
    assert set(CHAT) == set(CHAT_MAPPED) | set(CHAT_IGNORED) | set(CHAT_REJECTED)
    assert {CHAT[f] for f in CHAT_MAPPED} == {"mapped"}
    assert {CHAT[f] for f in CHAT_IGNORED} == {"ignored"}
    assert {CHAT[f] for f in CHAT_REJECTED} == {"rejected"}


@pytest.mark.parametrize("field", sorted(f for f, t in CHAT.items() if t == "mapped"))
def test_chat_mapped_row(field: str) -> None:
    value, check = CHAT_MAPPED[field]
    assert check(chat_parse(**CHAT_NEEDS.get(field, {}), **{field: value}))


@pytest.mark.parametrize("field", sorted(f for f, t in CHAT.items() if t == "ignored"))
def test_chat_ignored_row(field: str) -> None:
    assert chat_parse(**{field: CHAT_IGNORED[field]}).chat == chat_parse().chat


@pytest.mark.parametrize("field", sorted(f for f, t in CHAT.items() if t == "rejected"))
def test_chat_rejected_row(field: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        chat_parse(**{field: CHAT_REJECTED[field]})
    assert info.value.param == field
    assert chat_parse(**{field: None}).chat == chat_parse().chat
