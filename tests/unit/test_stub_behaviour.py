"""Pure tests of backend_stub.behaviour: the stub's public reply contract."""

from __future__ import annotations

import json

import pytest

from backend_stub import behaviour as b
from runinfra.chat.v1 import chat_service_pb2 as pb


def msg(role: int, *parts: str | None) -> pb.Message:
    """A message; a None part is an image."""
    content = [
        pb.ContentPart(image=pb.Image(url="https://x/y.png"))
        if p is None
        else pb.ContentPart(text=p)
        for p in parts
    ]
    return pb.Message(role=role, content=content)  # type: ignore[arg-type]


def user(*parts: str | None) -> pb.Message:
    return msg(pb.ROLE_USER, *parts)


def req(*messages: pb.Message, **kw: object) -> pb.ChatRequest:
    kw.setdefault("model", "stub-echo")
    return pb.ChatRequest(messages=messages, **kw)  # type: ignore[arg-type]


def texts(plan: b.Plan) -> list[str]:
    return [c.text for c in plan.chunks]


def weather_tools() -> list[pb.Tool]:
    params = '{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}'
    return [pb.Tool(name="get_weather", parameters=params), pb.Tool(name="get_time")]


def calls(plan: b.Plan) -> list[tuple[str, str, dict[str, object]]]:
    return [(c.id, c.name, json.loads(c.arguments)) for c in plan.tool_calls]


# --- text replies -----------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "pieces"),
    [
        ("hello world", ["hello ", "world"]),
        ("  lead  and trail \n", ["  lead  ", "and ", "trail \n"]),
        ("one", ["one"]),
        ('{"echo":"a b"}', ['{"echo":"a ', 'b"}']),
    ],
)
def test_split_words_one_word_per_piece_and_joins_back(reply: str, pieces: list[str]) -> None:
    assert b.split_words(reply) == pieces
    assert "".join(pieces) == reply


def test_echoes_last_user_message_one_word_per_chunk() -> None:
    history = [user("first turn"), msg(pb.ROLE_ASSISTANT, "ok")]
    plan = b.plan(req(*history, user("Hello,", "big  world")))
    assert texts(plan) == ["Hello, ", "big  ", "world"]
    assert "".join(texts(plan)) == plan.reply == "Hello, big  world"
    assert [c.finish_reason for c in plan.chunks] == [0, 0, pb.FINISH_REASON_STOP]
    assert [c.HasField("usage") for c in plan.chunks] == [False, False, True]
    assert plan.chunks[-1].usage == pb.Usage(input_tokens=6, output_tokens=3)


def test_images_become_image_marker_and_count_as_one_word() -> None:
    plan = b.plan(req(user("look", None, "here")))
    assert plan.reply == "look [image] here"
    assert plan.usage.input_tokens == 3


def test_role_unspecified_is_a_user() -> None:
    assert b.plan(req(msg(pb.ROLE_UNSPECIFIED, "hi there"))).reply == "hi there"


def test_last_message_tool_result_is_echoed() -> None:
    tool_msg = pb.Message(
        role=pb.ROLE_TOOL,
        tool_call_id="call_stub_0",
        content=[pb.ContentPart(text='{"temp":'), pb.ContentPart(text="21}")],
    )
    plan = b.plan(req(user("weather?"), tool_msg))
    assert plan.reply == 'Tool result: {"temp": 21}'
    assert texts(plan) == ["Tool ", "result: ", '{"temp": ', "21}"]


@pytest.mark.parametrize(
    "messages",
    [[], [user("   ")], [user()], [msg(pb.ROLE_SYSTEM, "be brief")]],
    ids=["none", "blank", "no-parts", "no-user"],
)
def test_empty_input_replies_empty_marker(messages: list[pb.Message]) -> None:
    plan = b.plan(req(*messages))
    assert texts(plan) == ["(empty)"]
    assert plan.usage.output_tokens == 1
    assert plan.usage.input_tokens >= 1


def test_input_tokens_count_all_messages_but_not_tool_call_arguments() -> None:
    assistant = pb.Message(
        role=pb.ROLE_ASSISTANT,
        content=[pb.ContentPart(text="calling now")],
        tool_calls=[pb.ToolCall(id="c", name="f", arguments='{"a": "b c d"}')],
    )
    tool_msg = msg(pb.ROLE_TOOL, "three word result")
    plan = b.plan(req(msg(pb.ROLE_SYSTEM, "sys prompt"), user("q", None), assistant, tool_msg))
    assert plan.usage == pb.Usage(input_tokens=2 + 2 + 2 + 3, output_tokens=len(plan.chunks))
    assert plan.usage.cached_input_tokens == 0 and plan.usage.reasoning_tokens == 0


# --- max_output_tokens ------------------------------------------------------


def test_max_output_tokens_truncates_with_length() -> None:
    plan = b.plan(req(user("a b c d e"), max_output_tokens=2))
    assert texts(plan) == ["a ", "b "]
    assert plan.finish_reason == plan.chunks[-1].finish_reason == pb.FINISH_REASON_LENGTH
    assert plan.usage.output_tokens == 2


@pytest.mark.parametrize("limit", [5, 6])
def test_max_output_tokens_not_reached_finishes_stop(limit: int) -> None:
    plan = b.plan(req(user("a b c d e"), max_output_tokens=limit))
    assert plan.finish_reason == pb.FINISH_REASON_STOP
    assert len(plan.chunks) == 5


@pytest.mark.parametrize("limit", [0, -1])
def test_non_positive_max_output_tokens_is_invalid(limit: int) -> None:
    with pytest.raises(b.RequestError) as err:
        b.plan(req(user("x"), max_output_tokens=limit))
    assert err.value.kind == "invalid_argument"


def test_unknown_and_empty_model_rejected() -> None:
    with pytest.raises(b.RequestError) as err:
        b.plan(pb.ChatRequest(model="gpt-9"))
    assert (err.value.kind, err.value.message) == ("not_found", "The model 'gpt-9' does not exist")
    with pytest.raises(b.RequestError) as err:
        b.plan(pb.ChatRequest())
    assert err.value.kind == "invalid_argument"


def test_list_models() -> None:
    models = b.list_models().models
    assert [m.id for m in models] == [
        "stub-echo", "stub-fail-before", "stub-fail-mid", "stub-slow", "stub-fail-once", "stub-rate-limited",
        "stub-think", "stub-args", "stub-fail-first-attempt",
    ]  # fmt: skip
    assert {(m.owned_by, m.created) for m in models} == {("runinfra", b.CREATED)}


# --- tools ------------------------------------------------------------------


def test_tool_named_in_text_is_called_with_minimal_arguments() -> None:
    plan = b.plan(req(user("what is get_weather saying"), tools=weather_tools()))
    assert calls(plan) == [("call_stub_0", "get_weather", {"city": "stub"})]
    assert plan.reply == "" and all(c.text == "" for c in plan.chunks)
    assert plan.finish_reason == plan.chunks[-1].finish_reason == pb.FINISH_REASON_TOOL_CALLS
    assert plan.usage.output_tokens == len(plan.chunks) == 2


def test_tool_call_streams_in_two_fragments_that_join_into_json() -> None:
    plan = b.plan(req(user("get_weather"), tools=weather_tools()))
    deltas = [d for c in plan.chunks for d in c.tool_calls]
    assert len(plan.chunks) == len(deltas) == 2
    first, rest = deltas
    assert (first.index, first.id, first.name) == (0, "call_stub_0", "get_weather")
    assert (rest.index, rest.id, rest.name) == (0, "", "")
    assert first.arguments and rest.arguments
    assert first.arguments + rest.arguments == '{"city":"stub"}'


def test_no_tool_named_means_text_reply() -> None:
    plan = b.plan(req(user("hello"), tools=weather_tools()))
    assert plan.tool_calls == () and plan.reply == "hello"


def test_parallel_calls_in_tools_order() -> None:
    plan = b.plan(req(user("get_time then get_weather"), tools=weather_tools()))
    assert [(c.index, c.id, c.name) for c in plan.tool_calls] == [
        (0, "call_stub_0", "get_weather"),
        (1, "call_stub_1", "get_time"),
    ]
    assert [d.index for c in plan.chunks for d in c.tool_calls] == [0, 0, 1, 1]
    assert plan.usage.output_tokens == 4


def test_parallel_false_calls_only_first_match() -> None:
    both = user("get_time get_weather")
    plan = b.plan(req(both, tools=weather_tools(), parallel_tool_calls=False))
    assert [c.name for c in plan.tool_calls] == ["get_weather"]
    plan = b.plan(req(both, tools=weather_tools(), parallel_tool_calls=True))
    assert len(plan.tool_calls) == 2


def test_choice_required_calls_first_tool() -> None:
    choice = pb.ToolChoice(mode=pb.TOOL_CHOICE_MODE_REQUIRED)
    plan = b.plan(req(user("hi"), tools=weather_tools(), tool_choice=choice))
    assert calls(plan) == [("call_stub_0", "get_weather", {"city": "stub"})]


def test_choice_required_with_allowed_names_calls_first_allowed() -> None:
    choice = pb.ToolChoice(mode=pb.TOOL_CHOICE_MODE_REQUIRED, allowed_function_names=["get_time"])
    plan = b.plan(req(user("hi"), tools=weather_tools(), tool_choice=choice))
    assert calls(plan) == [("call_stub_0", "get_time", {})]


def test_choice_function_calls_named_tool() -> None:
    choice = pb.ToolChoice(mode=pb.TOOL_CHOICE_MODE_FUNCTION, function_name="get_time")
    plan = b.plan(req(user("get_weather please"), tools=weather_tools(), tool_choice=choice))
    assert calls(plan) == [("call_stub_0", "get_time", {})]


def test_choice_function_unknown_name_is_invalid() -> None:
    choice = pb.ToolChoice(mode=pb.TOOL_CHOICE_MODE_FUNCTION, function_name="nope")
    with pytest.raises(b.RequestError):
        b.plan(req(user("x"), tools=weather_tools(), tool_choice=choice))


def test_choice_none_never_calls() -> None:
    choice = pb.ToolChoice(mode=pb.TOOL_CHOICE_MODE_NONE)
    plan = b.plan(req(user("get_weather"), tools=weather_tools(), tool_choice=choice))
    assert plan.tool_calls == () and plan.reply == "get_weather"


def test_allowed_names_restrict_auto_matches() -> None:
    choice = pb.ToolChoice(mode=pb.TOOL_CHOICE_MODE_AUTO, allowed_function_names=["get_time"])
    plan = b.plan(req(user("get_weather and get_time"), tools=weather_tools(), tool_choice=choice))
    assert [c.name for c in plan.tool_calls] == ["get_time"]


def test_tool_result_last_stops_the_tool_loop() -> None:
    choice = pb.ToolChoice(mode=pb.TOOL_CHOICE_MODE_REQUIRED)
    plan = b.plan(
        req(
            user("get_weather"),
            msg(pb.ROLE_TOOL, "sunny"),
            tools=weather_tools(),
            tool_choice=choice,
        )
    )
    assert plan.tool_calls == () and plan.reply == "Tool result: sunny"
    assert plan.finish_reason == pb.FINISH_REASON_STOP


def test_tool_call_is_truncated_by_max_output_tokens() -> None:
    plan = b.plan(req(user("get_weather"), tools=weather_tools(), max_output_tokens=1))
    assert len(plan.chunks) == 1 and plan.finish_reason == pb.FINISH_REASON_LENGTH


def test_bad_tool_parameters_json_is_invalid_argument() -> None:
    tools = [pb.Tool(name="f", parameters="{not json")]
    with pytest.raises(b.RequestError) as err:
        b.plan(req(user("f"), tools=tools))
    assert err.value.kind == "invalid_argument"


# --- response formats -------------------------------------------------------


def test_json_object_reply_echoes_escaped_text() -> None:
    fmt = pb.ResponseFormat(type=pb.RESPONSE_FORMAT_TYPE_JSON_OBJECT)
    plan = b.plan(req(user('say "hi" now'), response_format=fmt))
    assert plan.reply == '{"echo":"say \\"hi\\" now"}'
    assert json.loads("".join(texts(plan))) == {"echo": 'say "hi" now'}
    assert len(plan.chunks) == 3


def test_json_schema_reply_is_minimal_instance() -> None:
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer"}, "s": {"type": "string"}},
        "required": ["n", "s"],
    }
    fmt = pb.ResponseFormat(
        type=pb.RESPONSE_FORMAT_TYPE_JSON_SCHEMA,
        json_schema=pb.JsonSchema(name="x", schema=json.dumps(schema)),
    )
    plan = b.plan(req(user("anything at all"), response_format=fmt))
    assert texts(plan) == ['{"n":0,"s":"stub"}']
    assert plan.finish_reason == pb.FINISH_REASON_STOP


def test_tool_call_wins_over_response_format() -> None:
    fmt = pb.ResponseFormat(type=pb.RESPONSE_FORMAT_TYPE_JSON_OBJECT)
    plan = b.plan(req(user("get_time"), tools=weather_tools(), response_format=fmt))
    assert [c.name for c in plan.tool_calls] == ["get_time"]


# --- minimal_instance -------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "string"}, "stub"),
        ({"type": "number"}, 0),
        ({"type": "integer"}, 0),
        ({"type": "boolean"}, False),
        ({"type": "null"}, None),
        ({"type": "array", "items": {"type": "string"}}, []),
        ({"type": "object"}, {}),
        ({}, {}),
        ({"enum": ["b", "a"], "type": "string"}, "b"),
        ({"enum": [3, 4], "type": "string"}, 3),
        ({"const": "fixed"}, "fixed"),
        ({"anyOf": [{"type": "integer"}, {"type": "string"}]}, 0),
        ({"oneOf": [{"type": "boolean"}, {"type": "string"}]}, False),
        ({"type": ["null", "string"]}, "stub"),
        ({"properties": {"a": {"type": "string"}}, "required": ["a"]}, {"a": "stub"}),
        ({"type": "integer", "minimum": 3}, 3),
        ({"type": "integer", "exclusiveMinimum": 0}, 1),
        ({"type": "number", "maximum": -2.5}, -2.5),
        ({"type": "string", "minLength": 6}, "stubxx"),
        ({"type": "string", "maxLength": 2}, "st"),
        ({"type": "array", "items": {"type": "integer"}, "minItems": 2}, [0, 0]),
    ],
)
def test_minimal_instance_kinds(schema: dict[str, object], expected: object) -> None:
    value = b.minimal_instance(schema)
    assert value == expected
    assert type(value) is type(expected)


def test_minimal_instance_nested_objects_fill_only_required() -> None:
    schema = {
        "type": "object",
        "properties": {
            "outer": {
                "type": "object",
                "properties": {"x": {"type": "integer"}, "y": {"type": "string"}},
                "required": ["y"],
            },
            "optional": {"type": "string"},
        },
        "required": ["outer"],
    }
    assert b.minimal_instance(schema) == {"outer": {"y": "stub"}}


def test_minimal_instance_resolves_pydantic_style_defs() -> None:
    # As emitted by pydantic's model_json_schema() for nested models and enums.
    schema = {
        "$defs": {
            "Unit": {"enum": ["celsius", "fahrenheit"], "title": "Unit", "type": "string"},
            "Place": {
                "properties": {
                    "city": {"type": "string"},
                    "zip": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                },
                "required": ["city"],
                "type": "object",
            },
        },
        "properties": {
            "place": {"$ref": "#/$defs/Place"},
            "unit": {"$ref": "#/$defs/Unit", "default": "celsius"},
            "days": {"items": {"$ref": "#/$defs/Place"}, "type": "array"},
        },
        "required": ["place", "unit", "days"],
        "title": "Query",
        "type": "object",
    }
    assert b.minimal_instance(schema) == {"place": {"city": "stub"}, "unit": "celsius", "days": []}


def test_minimal_instance_resolves_definitions_and_all_of() -> None:
    schema = {
        "definitions": {
            "Base": {
                "type": "object",
                "properties": {"id": {"type": "integer"}},
                "required": ["id"],
            }
        },
        "allOf": [
            {"$ref": "#/definitions/Base"},
            {"properties": {"name": {"type": "string"}}, "required": ["name"]},
        ],
    }
    assert b.minimal_instance(schema) == {"id": 0, "name": "stub"}


@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "#/$defs/Missing"},
        {"$ref": "https://example.com/s.json"},
        {
            "$defs": {
                "N": {
                    "type": "object",
                    "properties": {"n": {"$ref": "#/$defs/N"}},
                    "required": ["n"],
                }
            },
            "$ref": "#/$defs/N",
        },
    ],
    ids=["missing", "remote", "infinite"],
)
def test_minimal_instance_rejects_unusable_refs(schema: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        b.minimal_instance(schema)


def test_minimal_instance_optional_recursive_ref_terminates() -> None:
    schema = {
        "$defs": {"N": {"type": "object", "properties": {"next": {"$ref": "#/$defs/N"}}}},
        "$ref": "#/$defs/N",
    }
    assert b.minimal_instance(schema) == {}


# --- buffered callers ---------------------------------------------------------


def test_buffered_reply_is_one_chunk_with_the_same_text_and_usage() -> None:
    streamed = b.plan(req(user("one two three four"), max_output_tokens=3))
    [chunk] = b.plan(req(user("one two three four"), max_output_tokens=3, buffered=True)).chunks
    assert chunk.text == "".join(c.text for c in streamed.chunks) == "one two three "
    assert chunk.usage == streamed.usage and chunk.usage.output_tokens == 3
    assert chunk.finish_reason == pb.FINISH_REASON_LENGTH


def test_buffered_tool_calls_are_whole() -> None:
    tool = pb.Tool(
        name="alpha",
        parameters='{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}',
    )
    request = req(user("alpha please"), tools=[tool], buffered=True)
    [chunk] = b.plan(request).chunks
    [call] = chunk.tool_calls
    assert (call.index, call.id, call.name, call.arguments) == (
        0,
        "call_stub_0",
        "alpha",
        '{"a":"stub"}',
    )
    assert chunk.finish_reason == pb.FINISH_REASON_TOOL_CALLS


# --- stub-think and stub-args ----------------------------------------------------


def test_think_streams_reasoning_word_by_word_then_the_echo() -> None:
    plan = b.plan(req(user("hello there"), model="stub-think"))
    reasoning = [c.reasoning_text for c in plan.chunks if c.reasoning_text]
    assert reasoning == ["Thinking ", "about: ", "hello ", "there"]
    assert [c.text for c in plan.chunks if c.text] == ["hello ", "there"]
    assert all(not (c.text and c.reasoning_text) for c in plan.chunks)
    assert plan.chunks.index(next(c for c in plan.chunks if c.text)) == len(reasoning)
    assert plan.usage.output_tokens == len(plan.chunks) == 6
    assert plan.usage.reasoning_tokens == 4


def test_think_buffered_joins_reasoning_and_text() -> None:
    [chunk] = b.plan(req(user("hi you"), model="stub-think", buffered=True)).chunks
    assert (chunk.reasoning_text, chunk.text) == ("Thinking about: hi you", "hi you")
    assert chunk.usage.reasoning_tokens == 4


def test_think_then_tool_call() -> None:
    plan = b.plan(req(user("get_weather now"), model="stub-think", tools=weather_tools()))
    assert plan.chunks[0].reasoning_text == "Thinking "
    assert calls(plan) == [("call_stub_0", "get_weather", {"city": "stub"})]


def test_echo_model_sends_no_reasoning() -> None:
    plan = b.plan(req(user("hello there")))
    assert not any(c.reasoning_text for c in plan.chunks)
    assert plan.usage.reasoning_tokens == 0


def test_args_model_fills_top_level_strings_with_the_text_after_the_name() -> None:
    params = (
        '{"type":"object","properties":{"cmd":{"type":"string"},"n":{"type":"integer"},'
        '"mode":{"enum":["a","b"]}},"required":["cmd","n","mode"]}'
    )
    tool = pb.Tool(name="exec_command", parameters=params)
    plan = b.plan(req(user("please exec_command  echo hi > x "), model="stub-args", tools=[tool]))
    arguments = {"cmd": "echo hi > x", "n": 0, "mode": "a"}
    assert calls(plan) == [("call_stub_0", "exec_command", arguments)]


def test_args_model_with_nothing_after_the_name_keeps_stub() -> None:
    plan = b.plan(req(user("get_weather"), model="stub-args", tools=weather_tools()))
    assert calls(plan) == [("call_stub_0", "get_weather", {"city": "stub"})]
