"""backend_openai.translate: the pure mappings, case by case."""

from __future__ import annotations

from typing import Any

import grpc
import orjson
import pytest

from backend_openai import translate
from backend_openai.translate import StreamDecoder, UpstreamError
from runinfra.chat.v1 import chat_service_pb2 as pb

# --- request ---------------------------------------------------------------------------


def body_of(**fields: Any) -> dict[str, Any]:
    fields.setdefault(
        "messages", [pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text="hi")])]
    )
    return translate.request_body(pb.ChatRequest(model="m", **fields))


def test_minimal_body_always_streams_with_usage() -> None:
    assert body_of() == {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_zero_valued_optionals_are_sent_when_set() -> None:
    body = body_of(temperature=0.0, top_p=0.0, max_output_tokens=0)
    assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.0, 0.0, 0)


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (pb.ROLE_UNSPECIFIED, "user"),
        (pb.ROLE_SYSTEM, "system"),
        (pb.ROLE_DEVELOPER, "system"),
        (pb.ROLE_USER, "user"),
        (pb.ROLE_TOOL, "tool"),
        (99, "user"),
    ],
)
def test_roles(role: int, expected: str) -> None:
    message = pb.Message(role=role, content=[pb.ContentPart(text="x")])  # type: ignore[arg-type]
    assert body_of(messages=[message])["messages"][0]["role"] == expected


def test_content_shapes() -> None:
    messages = [
        pb.Message(role=pb.ROLE_USER),  # no parts
        pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text="a"), pb.ContentPart(text="b")]),
        pb.Message(
            role=pb.ROLE_USER,
            content=[pb.ContentPart(image=pb.Image(url="data:image/png;base64,AA"))],
        ),
        pb.Message(
            role=pb.ROLE_ASSISTANT,
            content=[pb.ContentPart(text="ok, "), pb.ContentPart(refusal="no")],
            tool_calls=[pb.ToolCall(id="c", name="f", arguments="{}")],
        ),
        pb.Message(role=pb.ROLE_TOOL, tool_call_id="c"),
    ]
    assert body_of(messages=messages)["messages"] == [
        {"role": "user", "content": ""},
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {
            "role": "user",
            "content": [
                {
                    "type": "image_url",
                    "image_url": {"url": "data:image/png;base64,AA", "detail": "auto"},
                }
            ],
        },
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "ok, "}, {"type": "text", "text": "no"}],
            "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "content": "", "tool_call_id": "c"},
    ]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (pb.ToolChoice(), "auto"),
        (pb.ToolChoice(mode=pb.TOOL_CHOICE_MODE_AUTO), "auto"),
        (pb.ToolChoice(mode=pb.TOOL_CHOICE_MODE_NONE), "none"),
        (pb.ToolChoice(mode=pb.TOOL_CHOICE_MODE_REQUIRED), "required"),
        (
            pb.ToolChoice(mode=pb.TOOL_CHOICE_MODE_FUNCTION, function_name="f"),
            {"type": "function", "function": {"name": "f"}},
        ),
        (
            pb.ToolChoice(mode=pb.TOOL_CHOICE_MODE_AUTO, allowed_function_names=["f", "g"]),
            {
                "type": "allowed_tools",
                "allowed_tools": {
                    "mode": "auto",
                    "tools": [
                        {"type": "function", "function": {"name": "f"}},
                        {"type": "function", "function": {"name": "g"}},
                    ],
                },
            },
        ),
        (pb.ToolChoice(mode=pb.TOOL_CHOICE_MODE_NONE, allowed_function_names=["f"]), "none"),
    ],
)
def test_tool_choice(choice: pb.ToolChoice, expected: Any) -> None:
    tools = [pb.Tool(name="f"), pb.Tool(name="g")]
    assert body_of(tools=tools, tool_choice=choice)["tool_choice"] == expected


def test_tool_choice_and_parallel_calls_need_tools() -> None:
    body = body_of(
        tool_choice=pb.ToolChoice(mode=pb.TOOL_CHOICE_MODE_NONE), parallel_tool_calls=True
    )
    assert "tool_choice" not in body and "parallel_tool_calls" not in body and "tools" not in body
    body = body_of(tools=[pb.Tool(name="f")], parallel_tool_calls=True)
    assert body["parallel_tool_calls"] is True and "tool_choice" not in body


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        (pb.ResponseFormat(), None),
        (pb.ResponseFormat(type=pb.RESPONSE_FORMAT_TYPE_TEXT), None),
        (pb.ResponseFormat(type=pb.RESPONSE_FORMAT_TYPE_JSON_OBJECT), {"type": "json_object"}),
        (
            pb.ResponseFormat(
                type=pb.RESPONSE_FORMAT_TYPE_JSON_SCHEMA, json_schema=pb.JsonSchema(name="n")
            ),
            {"type": "json_schema", "json_schema": {"name": "n", "schema": {}, "strict": False}},
        ),
    ],
)
def test_response_format(fmt: pb.ResponseFormat, expected: Any) -> None:
    assert body_of(response_format=fmt).get("response_format") == expected


def test_schemas_keep_exact_numbers() -> None:
    tool = pb.Tool(name="f", parameters='{"type":"integer","maximum":9007199254740993}')
    assert (
        body_of(tools=[tool])["tools"][0]["function"]["parameters"]["maximum"] == 9007199254740993
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"tools": [pb.Tool(name="f", parameters="[1]")]},
            "tools[0].parameters is not a JSON object",
        ),
        (
            {
                "response_format": pb.ResponseFormat(
                    type=pb.RESPONSE_FORMAT_TYPE_JSON_SCHEMA,
                    json_schema=pb.JsonSchema(name="n", schema="nope"),
                )
            },
            "response_format.json_schema.schema is not valid JSON",
        ),
    ],
)
def test_bad_schemas_are_invalid_argument(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(UpstreamError) as err:
        body_of(**fields)
    assert (err.value.code, err.value.message) == (grpc.StatusCode.INVALID_ARGUMENT, message)


# --- reply -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("stop", pb.FINISH_REASON_STOP),
        ("length", pb.FINISH_REASON_LENGTH),
        ("tool_calls", pb.FINISH_REASON_TOOL_CALLS),
        ("function_call", pb.FINISH_REASON_TOOL_CALLS),
        ("content_filter", pb.FINISH_REASON_CONTENT_FILTER),
        ("eos_token", pb.FINISH_REASON_STOP),
        ("something_new", pb.FINISH_REASON_STOP),
        (None, pb.FINISH_REASON_STOP),
        (3, pb.FINISH_REASON_STOP),
    ],
)
def test_finish_reason(value: object, expected: int) -> None:
    assert translate.finish_reason(value) == expected


def test_stop_after_tool_calls_is_tool_calls() -> None:
    assert translate.finish_reason("stop", True) == pb.FINISH_REASON_TOOL_CALLS
    assert translate.finish_reason("length", True) == pb.FINISH_REASON_LENGTH


def event(obj: Any) -> list[str]:
    return ["data: " + orjson.dumps(obj).decode(), ""]


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def decode(lines: list[str]) -> list[pb.ChatChunk]:
    decoder = StreamDecoder()
    out = [c for line in lines for c in decoder.feed_line(line)]
    return out + decoder.finish()


def test_finish_and_usage_are_held_for_one_last_chunk() -> None:
    usage = {"prompt_tokens": 3, "completion_tokens": 2, "completion_tokens_details": None}
    lines = [
        *event(chunk({"role": "assistant", "content": ""})),
        *event(chunk({"content": "a"})),
        *event(chunk({"content": "b"}, "length")),
        *event({"choices": [], "usage": usage}),
        "data: [DONE]",
        "",
    ]
    assert decode(lines) == [
        pb.ChatChunk(text="a"),
        pb.ChatChunk(text="b"),
        pb.ChatChunk(
            finish_reason=pb.FINISH_REASON_LENGTH, usage=pb.Usage(input_tokens=3, output_tokens=2)
        ),
    ]


def test_no_done_no_usage_still_ends_with_a_finish() -> None:
    assert decode(event(chunk({"content": "a"}))) == [
        pb.ChatChunk(text="a"),
        pb.ChatChunk(finish_reason=pb.FINISH_REASON_STOP),
    ]


def test_sse_details() -> None:
    lines = [
        ": ping",
        "event: message",
        'data:{"choices":[{"index":0,',  # one event's data over two lines, no space after ':'
        'data: "delta":{"content":"x"}}]}',
        "",
        "data: [DONE]",
        "",
        *event(chunk({"content": "after done"})),
    ]
    assert decode(lines) == [
        pb.ChatChunk(text="x"),
        pb.ChatChunk(finish_reason=pb.FINISH_REASON_STOP),
    ]


def test_other_choices_are_dropped_and_reasoning_is_kept() -> None:
    lines = event(
        {
            "choices": [
                {"index": 1, "delta": {"content": "other", "reasoning_content": "theirs"}},
                {"index": 0, "delta": {"reasoning_content": "hmm", "content": "mine"}},
            ]
        }
    )
    assert decode(lines)[0] == pb.ChatChunk(text="mine", reasoning_text="hmm")


@pytest.mark.parametrize(
    ("delta", "reasoning"),
    [
        ({"reasoning_content": "a"}, "a"),
        ({"reasoning": "b"}, "b"),
        ({"reasoning_content": "a", "reasoning": "a"}, "a"),  # both sent: once
        ({"reasoning_content": None, "reasoning": "b"}, "b"),
        ({"reasoning": {"text": "x"}}, ""),
    ],
)
def test_reasoning_from_either_field(delta: dict[str, Any], reasoning: str) -> None:
    chunks = decode(event(chunk({**delta, "content": "t"})))
    assert (chunks[0].reasoning_text, chunks[0].text) == (reasoning, "t")


@pytest.mark.parametrize(
    ("effort", "sent"),
    [
        (pb.REASONING_EFFORT_UNSPECIFIED, None),
        (pb.REASONING_EFFORT_MINIMAL, "minimal"),
        (pb.REASONING_EFFORT_LOW, "low"),
        (pb.REASONING_EFFORT_MEDIUM, "medium"),
        (pb.REASONING_EFFORT_HIGH, "high"),
    ],
)
def test_reasoning_effort_is_forwarded(effort: int, sent: str | None) -> None:
    assert body_of(reasoning_effort=effort).get("reasoning_effort") == sent


def test_tool_calls_are_renumbered_and_id_name_sent_once() -> None:
    def call(index: int | None, call_id: str | None, name: str | None, args: str) -> dict[str, Any]:
        out: dict[str, Any] = {"function": {"arguments": args}}
        if index is not None:
            out["index"] = index
        if call_id:
            out["id"] = call_id
        if name:
            out["function"]["name"] = name
        return out

    lines = [
        *event(chunk({"tool_calls": [call(3, "a", "f", "{")]})),
        *event(chunk({"tool_calls": [call(3, "a", "f", "}")]})),  # id and name repeated
        *event(chunk({"tool_calls": [call(None, "b", "g", "[")]})),  # no index: by id
        *event(chunk({"tool_calls": [call(None, None, None, "]")]})),  # continues the last
        *event(chunk({}, "stop")),  # says stop after calling tools
    ]
    deltas = [(d.index, d.id, d.name, d.arguments) for c in decode(lines) for d in c.tool_calls]
    assert deltas == [(0, "a", "f", "{"), (0, "", "", "}"), (1, "b", "g", "["), (1, "", "", "]")]
    assert decode(lines)[-1].finish_reason == pb.FINISH_REASON_TOOL_CALLS


def test_usage_details_and_bad_counts() -> None:
    value = {
        "prompt_tokens": 2**40,
        "completion_tokens": -1,
        "prompt_tokens_details": {"cached_tokens": 5},
        "completion_tokens_details": {"reasoning_tokens": True},
    }
    assert translate.usage(value) == pb.Usage(input_tokens=2**31 - 1, cached_input_tokens=5)


@pytest.mark.parametrize(
    ("obj", "code", "message"),
    [
        ({"error": {"message": "boom", "code": 500}}, grpc.StatusCode.INTERNAL, "boom"),
        (
            {"error": {"message": "too long", "code": 400}},
            grpc.StatusCode.INVALID_ARGUMENT,
            "too long",
        ),
        (
            {"error": "Input validation error", "error_type": "validation"},
            grpc.StatusCode.INTERNAL,
            "Input validation error",
        ),
        ({"object": "error", "message": "busy", "code": 503}, grpc.StatusCode.UNAVAILABLE, "busy"),
        (
            {"error": {"code": "weird"}},
            grpc.StatusCode.INTERNAL,
            "upstream reported an error mid-stream",
        ),
    ],
)
def test_in_band_errors(obj: Any, code: grpc.StatusCode, message: str) -> None:
    with pytest.raises(UpstreamError) as err:
        decode(event(chunk({"content": "a"})) + event(obj))
    assert (err.value.code, err.value.detail) == (code, message)
    assert err.value.message == "The model server reported an error mid-stream."


@pytest.mark.parametrize("data", ["not json", "[1, 2]"])
def test_malformed_events_are_internal(data: str) -> None:
    with pytest.raises(UpstreamError) as err:
        decode([f"data: {data}", ""])
    assert err.value.code == grpc.StatusCode.INTERNAL


def test_completion_chunks() -> None:
    completion = {
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "c",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1},
    }
    assert translate.completion_chunks(completion) == [
        pb.ChatChunk(tool_calls=[pb.ToolCallDelta(index=0, id="c", name="f", arguments="{}")]),
        pb.ChatChunk(
            finish_reason=pb.FINISH_REASON_TOOL_CALLS,
            usage=pb.Usage(input_tokens=1, output_tokens=1),
        ),
    ]


# --- models ----------------------------------------------------------------------------


def test_models_response() -> None:
    obj = {
        "object": "list",
        "data": [{"id": "a", "created": 5, "owned_by": "me"}, {"id": "b"}, {"no": "id"}],
    }
    assert translate.models_response(obj) == pb.ListModelsResponse(
        models=[pb.Model(id="a", created=5, owned_by="me"), pb.Model(id="b")]
    )
    with pytest.raises(UpstreamError):
        translate.models_response({"models": []})


# --- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "INVALID_ARGUMENT"),
        (401, "UNAUTHENTICATED"),
        (402, "FAILED_PRECONDITION"),
        (403, "PERMISSION_DENIED"),
        (404, "NOT_FOUND"),
        (405, "FAILED_PRECONDITION"),
        (408, "DEADLINE_EXCEEDED"),
        (409, "ABORTED"),
        (413, "INVALID_ARGUMENT"),
        (422, "INVALID_ARGUMENT"),
        (429, "RESOURCE_EXHAUSTED"),
        (500, "INTERNAL"),
        (501, "UNIMPLEMENTED"),
        (502, "UNAVAILABLE"),
        (503, "UNAVAILABLE"),
        (504, "DEADLINE_EXCEEDED"),
        (507, "INTERNAL"),
        (302, "UNKNOWN"),
    ],
)
def test_status_code(status: int, code: str) -> None:
    assert translate.status_code(status).name == code


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"error": {"message": "Rate limited", "type": "x"}}', "Rate limited"),
        (b'{"error": "overloaded"}', "overloaded"),
        (b'{"object": "error", "message": "bad model"}', "bad model"),
        (b'{"detail": "Not Found"}', "Not Found"),
        (b'{"detail": [{"loc": ["body"]}]}', "upstream answered HTTP 503 Service Unavailable"),
        (b"<html>nginx</html>", "upstream answered HTTP 503 Service Unavailable"),
        (b"", "upstream answered HTTP 503 Service Unavailable"),
    ],
)
def test_http_error_message(body: bytes, message: str) -> None:
    error = translate.http_error(503, "Service Unavailable", body)
    assert (error.code, error.detail) == (grpc.StatusCode.UNAVAILABLE, message)
    assert error.message == "The model server failed to answer. (HTTP 503)"


@pytest.mark.parametrize("status", [400, 404, 429, 500, 502])
def test_http_error_message_never_carries_the_upstream_text(status: int) -> None:
    body = b'{"error": {"message": "/srv/llama.cpp/server.cpp:99: boom"}}'
    error = translate.http_error(status, "", body)
    assert "/srv" not in error.message and f"HTTP {status}" in error.message
    assert error.detail == "/srv/llama.cpp/server.cpp:99: boom"


def test_assistant_turn_that_only_calls_tools_sends_empty_content_not_null() -> None:
    call = pb.ToolCall(id="c", name="f", arguments="{}")
    [sent] = body_of(messages=[pb.Message(role=pb.ROLE_ASSISTANT, tool_calls=[call])])["messages"]
    assert sent["content"] == ""


# --- the sampling surface ------------------------------------------------------------------


def test_sampling_fields_go_out_only_when_set() -> None:
    assert not {"stop", "seed", "logit_bias", "logprobs", "top_logprobs"} & set(body_of())
    body = body_of(
        stop=["a", "b"], seed=0, frequency_penalty=0.0, presence_penalty=1.0,
        logit_bias={5: -100}, logprobs=True, top_logprobs=4,
    )  # fmt: skip
    assert (body["stop"], body["seed"], body["logit_bias"]) == (["a", "b"], 0, {"5": -100})
    assert (body["frequency_penalty"], body["presence_penalty"]) == (0.0, 1.0)
    assert (body["logprobs"], body["top_logprobs"]) == (True, 4)
    assert "top_logprobs" not in body_of(logprobs=True)


def test_upstream_logprobs_are_checked() -> None:
    tokens = translate.token_logprobs(
        {
            "content": [
                {"token": "a", "logprob": -0.5, "bytes": [97], "top_logprobs": [None, {}]},
                {"token": "b", "logprob": float("-inf"), "bytes": [300]},
                {"token": "c", "logprob": 0.5, "bytes": None, "top_logprobs": "x"},
                {"token": 3, "logprob": -1},
                "junk",
            ]
        }
    )
    got = [(t.token, t.logprob, t.bytes if t.HasField("bytes") else None) for t in tokens]
    assert got == [("a", -0.5, b"a"), ("b", -9999.0, None), ("c", -9999.0, None)]
    assert translate.token_logprobs(None) == translate.token_logprobs({"content": None}) == []


def test_logprobs_ride_on_their_text_chunk() -> None:
    decoder = translate.ChunkDecoder()
    entry = {"token": "Hi", "logprob": -0.1, "bytes": [72, 105], "top_logprobs": []}
    choice = {"index": 0, "delta": {"content": "Hi"}, "logprobs": {"content": [entry]}}
    chunk = decoder.feed({"choices": [choice]})
    assert chunk is not None and chunk.text == "Hi"
    assert [(t.token, t.bytes) for t in chunk.logprobs] == [("Hi", b"Hi")]
