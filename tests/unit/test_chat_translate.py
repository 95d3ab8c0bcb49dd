"""The /v1/chat/completions translators: request JSON -> ChatRequest, ChatChunks -> chunks/envelope.

Every produced chunk and envelope is validated strictly with the SDK's own types.
"""

from __future__ import annotations

import itertools
import typing
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import completion_create_params as sdk_params
from openai.types.chat.chat_completion import Choice

from backend_stub import behaviour
from gateway.errors import InvalidRequest
from gateway.translate import chat_in, chat_out
from gateway.translate.chat_out import ChatCompletionBuilder
from runinfra.chat.v1 import chat_service_pb2 as pb
from tests.support import parse_data_frames, strict_chat_chunk, strict_chat_completion

USER = {"role": "user", "content": "hi"}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        "strict": True,
    },
}
CLOCK = {"type": "function", "function": {"name": "get_time"}}


def parse(**fields: Any) -> chat_in.ChatCompletionRequest:
    body = {"model": "stub-echo", "messages": [USER], **fields}
    return chat_in.parse(body, "stub-echo")


def rejected(**fields: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        parse(**fields)
    return info.value


# --- the field table ---------------------------------------------------------


def test_every_sdk_parameter_has_exactly_one_treatment() -> None:
    sdk = set(sdk_params.CompletionCreateParamsStreaming.__annotations__)
    assert set(chat_in.FIELDS) == sdk
    groups = [set(chat_in.MAPPED), set(chat_in.REJECTED), set(chat_in.IGNORED)]
    assert sum(len(g) for g in groups) == len(chat_in.FIELDS)


# field -> (a value that asks for something, values that ask for nothing)
REJECTED_CASES: dict[str, tuple[Any, list[Any]]] = {
    "audio": ({"voice": "alloy", "format": "wav"}, [None]),
    "modalities": (["text", "audio"], [None, [], ["text"]]),
    "prediction": ({"type": "content", "content": "x"}, [None]),
    "web_search_options": ({}, [None]),
    "functions": ([{"name": "f"}], [None, []]),
    "function_call": ("auto", [None]),
    "verbosity": ("low", [None, "medium"]),
    "moderation": ({"model": "omni-moderation-latest"}, [None]),
    "service_tier": ("flex", [None, "auto", "default"]),
    "store": (True, [None, False]),
}


def test_rejected_cases_cover_the_table() -> None:
    assert set(REJECTED_CASES) == set(chat_in.REJECTED)


@pytest.mark.parametrize("field", sorted(REJECTED_CASES))
def test_rejected_field_with_a_real_value_is_400_naming_it(field: str) -> None:
    bad, harmless = REJECTED_CASES[field]
    error = rejected(**{field: bad})
    assert (error.status, error.param, error.code) == (400, field, "unsupported_parameter")
    assert chat_in.REJECTED[field][1] in error.message
    for value in harmless:
        assert parse(**{field: value}).chat == parse().chat


@pytest.mark.parametrize("field", sorted(chat_in.IGNORED))
def test_ignored_field_is_accepted_and_not_forwarded(field: str) -> None:
    value: Any = {"ttl": "5m"} if field == "prompt_cache_options" else "x"
    if field == "metadata":
        value = {"k": "v"}
    assert parse(**{field: value}).chat == parse().chat


def test_unknown_field_is_400() -> None:
    error = rejected(temprature=0.5)
    assert (error.param, error.code) == ("temprature", "unknown_parameter")


# --- mapped fields -------------------------------------------------------------


def test_model_default_resolves() -> None:
    body = {"model": "default", "messages": [USER]}
    assert chat_in.parse(body, "stub-echo").chat.model == "stub-echo"
    with pytest.raises(InvalidRequest) as info:
        chat_in.parse({"messages": [USER]}, "stub-echo")
    assert info.value.param == "model"


def test_sampling_fields_land_in_the_request() -> None:
    chat = parse(temperature=0.25, top_p=0.5, max_completion_tokens=7, parallel_tool_calls=False)
    assert (chat.chat.temperature, chat.chat.top_p, chat.chat.max_output_tokens) == (0.25, 0.5, 7)
    assert chat.chat.HasField("parallel_tool_calls") and not chat.chat.parallel_tool_calls
    unset = parse().chat
    assert not unset.HasField("temperature") and not unset.HasField("max_output_tokens")


def test_max_tokens_and_max_completion_tokens() -> None:
    assert parse(max_tokens=5).chat.max_output_tokens == 5
    assert parse(max_tokens=5, max_completion_tokens=5).chat.max_output_tokens == 5
    assert rejected(max_tokens=5, max_completion_tokens=6).param == "max_tokens"
    assert rejected(max_completion_tokens=0).param == "max_completion_tokens"


@pytest.mark.parametrize(
    ("field", "value"), [("temperature", 2.5), ("top_p", -0.1), ("temperature", "hot")]
)
def test_out_of_range_sampling_is_400(field: str, value: Any) -> None:
    assert rejected(**{field: value}).param == field


def test_stream_and_stream_options() -> None:
    assert not parse().stream
    streamed = parse(stream=True, stream_options={"include_usage": True})
    assert streamed.stream and streamed.include_usage
    assert not parse(stream=True, stream_options={"include_obfuscation": False}).include_usage
    assert rejected(stream_options={"include_usage": True}).param == "stream_options"
    assert rejected(stream=True, stream_options={"x": 1}).param == "stream_options.x"
    assert rejected(stream="yes").param == "stream"


def test_messages_of_every_role() -> None:
    messages = [
        {"role": "system", "content": "be brief", "name": "ops"},
        {"role": "developer", "content": [{"type": "text", "text": "dev"}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "https://x/i.png", "detail": "low"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "refusal": None,
            "annotations": [],
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]},
    ]
    chat = parse(messages=messages).chat
    roles = [m.role for m in chat.messages]
    assert roles == [
        pb.ROLE_SYSTEM, pb.ROLE_DEVELOPER, pb.ROLE_USER, pb.ROLE_ASSISTANT, pb.ROLE_TOOL,
        pb.ROLE_ASSISTANT,
    ]  # fmt: skip
    assert chat.messages[0].content[0].text == "be brief"
    image = chat.messages[2].content[1].image
    assert (image.url, image.detail) == ("https://x/i.png", pb.IMAGE_DETAIL_LOW)
    call = chat.messages[3].tool_calls[0]
    assert (call.id, call.name, call.arguments) == ("call_1", "get_weather", '{"city":"Paris"}')
    assert not chat.messages[3].content
    assert chat.messages[4].tool_call_id == "call_1"
    assert chat.messages[4].content[0].text == "sunny"
    assert chat.messages[5].content[0].refusal == "no"


def test_assistant_refusal_field_becomes_a_refusal_part() -> None:
    chat = parse(messages=[{"role": "assistant", "content": "a", "refusal": "b"}]).chat
    assert [p.WhichOneof("part") for p in chat.messages[0].content] == ["text", "refusal"]


@pytest.mark.parametrize(
    ("message", "param"),
    [
        ({"role": "function", "name": "f", "content": "x"}, "messages[0].role"),
        ({"role": "robot", "content": "x"}, "messages[0].role"),
        ({"role": "user"}, "messages[0].content"),
        ({"role": "user", "content": []}, "messages[0].content"),
        ({"role": "user", "content": "x", "name": 7}, "messages[0].name"),
        ({"role": "assistant", "content": None}, "messages[0].content"),
        ({"role": "assistant", "function_call": {"name": "f", "arguments": "{}"}},
         "messages[0].function_call"),
        ({"role": "tool", "content": "x"}, "messages[0].tool_call_id"),
        ({"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://x"}}]},
         "messages[0].content[0].type"),
        ({"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]},
         "messages[0].content[0].type"),
        ({"role": "user", "content": [{"type": "file", "file": {"file_id": "f"}}]},
         "messages[0].content[0].type"),
        ({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]},
         "messages[0].content[0].image_url.url"),
        ({"role": "user", "content": [{"type": "image_url", "image_url": {}}]},
         "messages[0].content[0].image_url.url"),
        ({"role": "user",
          "content": [{"type": "image_url", "image_url": {"url": "https://x", "detail": "max"}}]},
         "messages[0].content[0].image_url.detail"),
        ({"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {}}]},
         "messages[0].tool_calls[0].function.name"),
        ({"role": "assistant", "tool_calls": [{"id": "c", "type": "custom", "custom": {}}]},
         "messages[0].tool_calls[0].type"),
    ],
)  # fmt: skip
def test_bad_message_is_400_naming_the_param(message: dict[str, Any], param: str) -> None:
    assert rejected(messages=[message]).param == param


def test_function_role_message_says_what_to_do() -> None:
    assert "'role': 'tool'" in rejected(messages=[{"role": "function", "content": "x"}]).message


def test_empty_messages_is_400() -> None:
    assert rejected(messages=[]).param == "messages"


def test_data_url_image_and_cache_breakpoint() -> None:
    url = "data:image/png;base64,iVBORw0KGgo="
    part = {"type": "image_url", "image_url": {"url": url}, "prompt_cache_breakpoint": {}}
    chat = parse(messages=[{"role": "user", "content": [part]}]).chat
    assert chat.messages[0].content[0].image.url == url
    assert chat.messages[0].content[0].image.detail == pb.IMAGE_DETAIL_AUTO


def test_tools_map_onto_the_contract() -> None:
    tools = parse(tools=[WEATHER, CLOCK]).chat.tools
    assert [t.name for t in tools] == ["get_weather", "get_time"]
    assert tools[0].description == "Weather for a city."
    assert orjson.loads(tools[0].parameters) == WEATHER["function"]["parameters"]  # type: ignore[index]
    assert tools[0].strict and not tools[1].strict and tools[1].parameters == ""


def test_custom_tool_is_400_naming_it() -> None:
    custom = {"type": "custom", "custom": {"name": "grep"}}
    error = rejected(tools=[WEATHER, custom])
    assert error.param == "tools[1].type" and "'grep'" in error.message
    assert rejected(tools=[{"type": "function", "function": {"name": "bad name"}}]).param == (
        "tools[0].function.name"
    )
    assert rejected(tools=[{"type": "function", "function": {}}]).param == "tools[0].function.name"


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", pb.ToolChoice(mode=pb.TOOL_CHOICE_MODE_AUTO)),
        ("none", pb.ToolChoice(mode=pb.TOOL_CHOICE_MODE_NONE)),
        ("required", pb.ToolChoice(mode=pb.TOOL_CHOICE_MODE_REQUIRED)),
        (
            {"type": "function", "function": {"name": "get_time"}},
            pb.ToolChoice(mode=pb.TOOL_CHOICE_MODE_FUNCTION, function_name="get_time"),
        ),
        (
            {
                "type": "allowed_tools",
                "allowed_tools": {
                    "mode": "required",
                    "tools": [{"type": "function", "function": {"name": "get_weather"}}],
                },
            },
            pb.ToolChoice(
                mode=pb.TOOL_CHOICE_MODE_REQUIRED, allowed_function_names=["get_weather"]
            ),
        ),
    ],
)
def test_tool_choice(choice: Any, expected: pb.ToolChoice) -> None:
    assert parse(tools=[WEATHER, CLOCK], tool_choice=choice).chat.tool_choice == expected


@pytest.mark.parametrize(
    ("choice", "param"),
    [
        ("sometimes", "tool_choice"),
        ({"type": "function", "function": {"name": "nope"}}, "tool_choice.function.name"),
        ({"type": "custom", "custom": {"name": "grep"}}, "tool_choice.type"),
        (
            {"type": "allowed_tools", "allowed_tools": {"mode": "any", "tools": []}},
            "tool_choice.allowed_tools.mode",
        ),
    ],
)
def test_bad_tool_choice_is_400(choice: Any, param: str) -> None:
    assert rejected(tools=[WEATHER], tool_choice=choice).param == param


def test_required_tool_choice_without_tools_is_400() -> None:
    assert rejected(tool_choice="required").param == "tool_choice"
    assert not parse(tool_choice="none").chat.tools


def test_response_formats() -> None:
    assert parse(response_format={"type": "text"}).chat.response_format == pb.ResponseFormat(
        type=pb.RESPONSE_FORMAT_TYPE_TEXT
    )
    fmt = parse(response_format={"type": "json_object"}).chat.response_format
    assert fmt.type == pb.RESPONSE_FORMAT_TYPE_JSON_OBJECT
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    nested = {"name": "thing", "schema": schema, "description": "d", "strict": True}
    fmt = parse(response_format={"type": "json_schema", "json_schema": nested}).chat.response_format
    assert fmt.type == pb.RESPONSE_FORMAT_TYPE_JSON_SCHEMA
    assert (fmt.json_schema.name, fmt.json_schema.description) == ("thing", "d")
    assert orjson.loads(fmt.json_schema.schema) == schema and fmt.json_schema.strict


@pytest.mark.parametrize(
    ("fmt", "param"),
    [
        ({"type": "xml"}, "response_format.type"),
        ({"type": "json_schema"}, "response_format.json_schema"),
        ({"type": "json_schema", "json_schema": {"schema": {}}}, "response_format.json_schema.name"),
        ({"type": "json_schema", "json_schema": {"name": "a", "extra": 1}},
         "response_format.json_schema.extra"),
        ({"type": "text", "json_schema": {}}, "response_format.json_schema"),
    ],
)  # fmt: skip
def test_bad_response_format_is_400(fmt: dict[str, Any], param: str) -> None:
    assert rejected(response_format=fmt).param == param


# --- chunks and envelope ----------------------------------------------------------


def counter_ids() -> Callable[[str], str]:
    counter = itertools.count(1)
    return lambda prefix: f"{prefix}_{next(counter):04d}"


def builder(include_usage: bool = False) -> ChatCompletionBuilder:
    return ChatCompletionBuilder(
        model="stub-echo",
        completion_id="chatcmpl-0000",
        created=1_700_000_000,
        new_id=counter_ids(),
        include_usage=include_usage,
    )


def run(
    chunks: list[pb.ChatChunk], include_usage: bool = False
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Frames and envelope, each validated strictly; the SDK's own stream accumulator must
    fold the frames into the same message as the envelope."""
    b = builder(include_usage)
    frames = parse_data_frames(b"".join(b.add(chunk) for chunk in chunks) + b.finish())
    envelope = b.body()
    quiet = ChatCompletionBuilder(
        model="stub-echo", completion_id="chatcmpl-0000", created=1_700_000_000,
        new_id=counter_ids(), include_usage=include_usage, streaming=False,
    )  # fmt: skip
    assert b"".join(quiet.add(chunk) for chunk in chunks) + quiet.finish() == b""
    assert quiet.body() == envelope  # non-streaming: the same body
    strict_chat_completion(envelope)
    state: ChatCompletionStreamState[None] = ChatCompletionStreamState()
    for frame in frames:
        state.handle_chunk(strict_chat_chunk(frame))
        assert (frame["id"], frame["created"]) == ("chatcmpl-0000", 1_700_000_000)
    streamed = state.current_completion_snapshot.choices[0]
    assert streamed.finish_reason == envelope["choices"][0]["finish_reason"]
    message = envelope["choices"][0]["message"]
    assert streamed.message.content == message["content"]
    fields = {"id": True, "type": True, "function": {"name": True, "arguments": True}}
    calls = [c.model_dump(include=fields) for c in streamed.message.tool_calls or []]
    assert calls == message.get("tool_calls", [])
    return frames, envelope


def deltas(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f["choices"][0]["delta"] for f in frames if f["choices"]]


def test_text_stream_frames_and_envelope() -> None:
    chunks = list(behaviour.plan(_request("one two three")).chunks)
    frames, envelope = run(chunks)
    assert deltas(frames) == [
        {"role": "assistant", "content": ""},
        {"content": "one "},
        {"content": "two "},
        {"content": "three"},
    ]
    assert [f["choices"][0]["finish_reason"] for f in frames] == [None, None, None, "stop"]
    assert all("usage" not in f for f in frames)
    assert envelope["object"] == "chat.completion"
    assert envelope["choices"][0]["message"] == {
        "role": "assistant",
        "content": "one two three",
        "refusal": None,
        "annotations": [],
    }
    assert envelope["usage"] == {
        "prompt_tokens": 3,
        "completion_tokens": 3,
        "total_tokens": 6,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def test_include_usage_adds_a_final_usage_chunk() -> None:
    usage = pb.Usage(input_tokens=4, output_tokens=2, cached_input_tokens=1, reasoning_tokens=1)
    chunks = [pb.ChatChunk(text="a "), pb.ChatChunk(text="b", finish_reason=1, usage=usage)]
    frames, envelope = run(chunks, include_usage=True)
    *rest, last = frames
    assert all(f["usage"] is None for f in rest)
    assert last["choices"] == []
    assert last["usage"] == envelope["usage"]
    assert last["usage"]["prompt_tokens_details"]["cached_tokens"] == 1
    assert last["usage"]["completion_tokens_details"]["reasoning_tokens"] == 1


def test_tool_call_stream_sends_id_type_and_name_once_per_index() -> None:
    tools = [pb.Tool(name="get_weather", parameters='{"type":"object"}'), pb.Tool(name="get_time")]
    request = _request("get_weather and get_time please", tools=tools)
    frames, envelope = run(list(behaviour.plan(request).chunks))
    entries = [e for d in deltas(frames) for e in d.get("tool_calls", [])]
    assert all("index" in e for e in entries)
    for index in (0, 1):
        mine = [e for e in entries if e["index"] == index]
        assert [("id" in e, "type" in e, "name" in e["function"]) for e in mine] == [
            (True, True, True),
            (False, False, False),
        ]
    first = deltas(frames)[0]
    assert (first["role"], first["content"]) == ("assistant", None)
    assert frames[-1]["choices"][0]["finish_reason"] == "tool_calls"
    message = envelope["choices"][0]["message"]
    assert message["content"] is None
    assert [(c["id"], c["function"]["name"]) for c in message["tool_calls"]] == [
        ("call_stub_0", "get_weather"),
        ("call_stub_1", "get_time"),
    ]
    assert message["tool_calls"][0]["function"]["arguments"] == "{}"


def test_same_index_pieces_of_one_chunk_are_merged() -> None:
    chunk = pb.ChatChunk(
        tool_calls=[
            pb.ToolCallDelta(index=0, id="call_a", name="f", arguments='{"x"'),
            pb.ToolCallDelta(index=1, id="call_b", name="g", arguments="{}"),
            pb.ToolCallDelta(index=0, arguments=": 1}"),
        ],
        finish_reason=pb.FINISH_REASON_TOOL_CALLS,
    )
    frames, envelope = run([chunk])
    # One frame per call (the later one held until the first is whole), then the reason.
    entries = [e for f in frames for e in f["choices"][0]["delta"].get("tool_calls", [])]
    assert [(e["index"], e["function"]["arguments"]) for e in entries] == [
        (0, '{"x": 1}'),
        (1, "{}"),
    ]
    assert [f["choices"][0]["finish_reason"] for f in frames] == [None, None, "tool_calls"]
    assert envelope["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] == (
        '{"x": 1}'
    )


def test_missing_call_id_is_generated_once() -> None:
    chunks = [
        pb.ChatChunk(tool_calls=[pb.ToolCallDelta(index=0, name="f", arguments="{")]),
        pb.ChatChunk(tool_calls=[pb.ToolCallDelta(index=0, arguments="}")], finish_reason=3),
    ]
    _, envelope = run(chunks)
    assert envelope["choices"][0]["message"]["tool_calls"][0]["id"] == "call_0001"


def test_text_then_tool_call() -> None:
    chunks = [
        pb.ChatChunk(text="Let me check."),
        pb.ChatChunk(tool_calls=[pb.ToolCallDelta(index=0, id="c", name="f", arguments="{}")]),
        pb.ChatChunk(finish_reason=pb.FINISH_REASON_TOOL_CALLS),
    ]
    frames, envelope = run(chunks)
    assert deltas(frames)[0] == {"role": "assistant", "content": ""}
    assert deltas(frames)[-1] == {}
    assert envelope["choices"][0]["message"]["content"] == "Let me check."


def test_empty_stream_still_opens_and_finishes() -> None:
    frames, envelope = run([], include_usage=True)
    assert deltas(frames) == [{"role": "assistant", "content": ""}, {}]
    assert frames[1]["choices"][0]["finish_reason"] == "stop"
    assert frames[-1]["choices"] == [] and frames[-1]["usage"] is None
    assert envelope["choices"][0]["message"]["content"] == ""
    assert envelope["usage"] is None


def test_length_and_content_filter() -> None:
    _, envelope = run([pb.ChatChunk(text="a", finish_reason=pb.FINISH_REASON_LENGTH)])
    assert envelope["choices"][0]["finish_reason"] == "length"
    _, envelope = run([pb.ChatChunk(finish_reason=pb.FINISH_REASON_CONTENT_FILTER)])
    assert envelope["choices"][0]["finish_reason"] == "content_filter"


def test_finish_reason_mapping_is_total() -> None:
    sdk = set(typing.get_args(Choice.model_fields["finish_reason"].annotation))
    for value in pb.FinishReason.values():
        assert chat_out.finish_reason(value) in sdk
    assert chat_out.finish_reason(99) == "stop"
    assert chat_out.finish_reason(pb.FINISH_REASON_TOOL_CALLS) == "tool_calls"


def _request(text: str, tools: list[pb.Tool] | None = None) -> pb.ChatRequest:
    message = pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text=text)])
    return pb.ChatRequest(model="stub-echo", messages=[message], tools=tools or [])


# --- keys clients add inside messages (issue: every real client unmodified) ------------

SDK_HELPER_REPLAY = orjson.loads(
    '{"role":"assistant","content":null,"refusal":null,"annotations":null,"audio":null,'
    '"function_call":null,"parsed":null,"tool_calls":[{"id":"call_1","type":"function",'
    '"index":0,"function":{"name":"GetWeather","arguments":"{\\"city\\":\\"x\\"}",'
    '"parsed_arguments":{"city":"x"}}}]}'
)


def test_sdk_helper_replay_and_named_messages_are_accepted() -> None:
    messages = [
        {"role": "system", "content": "s", "name": "rules"},
        {"role": "user", "content": [{"type": "text", "text": "u", "extra": 1}], "name": "ann"},
        SDK_HELPER_REPLAY,
        {"role": "tool", "tool_call_id": "call_1", "name": "GetWeather", "content": "sunny"},
    ]
    chat = parse(messages=messages).chat
    assert [m.role for m in chat.messages] == [
        pb.ROLE_SYSTEM, pb.ROLE_USER, pb.ROLE_ASSISTANT, pb.ROLE_TOOL,
    ]  # fmt: skip
    call = chat.messages[2].tool_calls[0]
    assert (call.id, call.name, call.arguments) == ("call_1", "GetWeather", '{"city":"x"}')
    assert chat.messages[3].tool_call_id == "call_1"
    # Ignored keys change nothing the backend sees.
    plain = dict(SDK_HELPER_REPLAY, tool_calls=[{**SDK_HELPER_REPLAY["tool_calls"][0]}])
    for key in ("parsed", "annotations", "audio", "function_call", "refusal"):
        plain.pop(key)
    del plain["tool_calls"][0]["index"]
    assert parse(messages=[plain]).chat == parse(messages=[SDK_HELPER_REPLAY]).chat


def test_known_keys_inside_messages_keep_their_type_checks() -> None:
    bad = dict(SDK_HELPER_REPLAY, tool_calls=[{"id": 1, "type": "function", "function": {}}])
    with pytest.raises(InvalidRequest) as info:
        parse(messages=[bad])
    assert (info.value.param, info.value.code) == ("messages[0].tool_calls[0].id", "invalid_type")
