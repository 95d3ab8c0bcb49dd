"""responses_in.parse: invalid input answers 400 naming the param; nothing is dropped silently."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.errors import InvalidRequest
from gateway.translate import responses_in
from runinfra.chat.v1 import chat_service_pb2 as pb

FN = {"type": "function", "name": "f", "parameters": {"type": "object"}}
USER_IMAGE = {"role": "user", "content": [{"type": "input_image", "file_id": "file_1"}]}

BAD: list[tuple[dict[str, Any], str, str | None]] = [
    ({"input": "x"}, "model", "missing_required_parameter"),
    ({"model": 3, "input": "x"}, "model", "invalid_type"),
    ({"model": "m"}, "input", "missing_required_parameter"),
    ({"model": "m", "input": 5}, "input", "invalid_type"),
    ({"model": "m", "input": "x", "temperature": "hot"}, "temperature", "invalid_type"),
    ({"model": "m", "input": "x", "temperature": 7}, "temperature", "invalid_value"),
    ({"model": "m", "input": "x", "top_p": -0.1}, "top_p", "invalid_value"),
    ({"model": "m", "input": "x", "max_output_tokens": -1}, "max_output_tokens", "invalid_value"),
    ({"model": "m", "input": "x", "max_output_tokens": True}, "max_output_tokens", "invalid_type"),
    ({"model": "m", "input": "x", "stream": "yes"}, "stream", "invalid_type"),
    ({"model": "m", "input": [{"role": "robot", "content": "x"}]}, "input[0].role", "invalid_value"),
    ({"model": "m", "input": [{"role": "user"}]}, "input[0].content", "missing_required_parameter"),
    ({"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type", "unsupported_parameter"),
    ({"model": "m", "input": [{"type": "web_search_call", "id": "ws_1"}]}, "input[0].type", "unsupported_parameter"),
    ({"model": "m", "input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]}, "input[0].content[0].type", "unsupported_parameter"),
    ({"model": "m", "input": [USER_IMAGE]}, "input[0].content[0].file_id", "unsupported_parameter"),
    ({"model": "m", "input": [{"role": "user", "content": [{"type": "output_text", "text": "x"}]}]}, "input[0].content[0].type", "invalid_value"),
    ({"model": "m", "input": [{"role": "user", "content": [{"type": "input_image", "image_url": "ftp://x"}]}]}, "input[0].content[0].image_url", "invalid_value"),
    ({"model": "m", "input": [{"type": "function_call", "name": "f", "arguments": "{}"}]}, "input[0].call_id", "missing_required_parameter"),
    ({"model": "m", "input": "x", "tools": [{"type": "web_search"}]}, "tools[0].type", "unsupported_parameter"),
    ({"model": "m", "input": "x", "tools": [{"type": "function", "function": {"name": "f"}}]}, "tools[0].name", "missing_required_parameter"),
    ({"model": "m", "input": "x", "tools": [{"type": "function", "name": "bad name"}]}, "tools[0].name", "invalid_value"),
    ({"model": "m", "input": "x", "tools": [FN], "tool_choice": {"type": "function", "name": "g"}}, "tool_choice.name", "invalid_value"),
    ({"model": "m", "input": "x", "tool_choice": "sometimes"}, "tool_choice", "invalid_value"),
    ({"model": "m", "input": "x", "tool_choice": {"type": "file_search"}}, "tool_choice.type", "unsupported_parameter"),
    ({"model": "m", "input": "x", "text": {"format": {"type": "yaml"}}}, "text.format.type", "invalid_value"),
    ({"model": "m", "input": "x", "text": {"format": {"type": "json_schema", "schema": {}}}}, "text.format.name", "missing_required_parameter"),
    ({"model": "m", "input": "x", "text": {"format": {"type": "json_object"}}, "response_format": {"type": "text"}}, "response_format", "invalid_value"),
    ({"model": "m", "input": "x", "text": {"verbosity": "high"}}, "text.verbosity", "unsupported_parameter"),
    ({"model": "m", "input": "x", "metadata": {"k": 1}}, "metadata.k", "invalid_value"),
    ({"model": "m", "input": "x", "include": [[]]}, "include", "unsupported_parameter"),
    ({"model": "m", "input": ["x"] * (responses_in.MAX_INPUT_ITEMS + 1)}, "input", "invalid_value"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "param", "code"), BAD)
def test_bad_input_names_param(body: dict[str, Any], param: str, code: str | None) -> None:
    with pytest.raises(InvalidRequest) as info:
        responses_in.parse(body, "stub-echo")
    assert (info.value.param, info.value.code) == (param, code)
    assert info.value.status == 400


def test_tool_loop_items_become_assistant_and_tool_messages() -> None:
    parsed = responses_in.parse(
        {
            "model": "m",
            "input": [
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": "let me call"},
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                {"type": "function_call", "call_id": "c2", "name": "g", "arguments": "{}"},
                {"type": "reasoning", "summary": []},
                {"type": "function_call_output", "call_id": "c1", "output": "one"},
                {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "two"}]},
            ],
        },
        "stub-echo",
    )  # fmt: skip
    roles = [m.role for m in parsed.chat.messages]
    assert roles == [pb.ROLE_USER, pb.ROLE_ASSISTANT, pb.ROLE_TOOL, pb.ROLE_TOOL]
    assistant = parsed.chat.messages[1]
    assert assistant.content[0].text == "let me call"
    assert [(c.id, c.name) for c in assistant.tool_calls] == [("c1", "f"), ("c2", "g")]
    assert [m.tool_call_id for m in parsed.chat.messages[2:]] == ["c1", "c2"]


def test_allowed_tools_choice() -> None:
    tools = [FN, dict(FN, name="g")]
    choice = {
        "type": "allowed_tools",
        "mode": "required",
        "tools": [{"type": "function", "name": "g"}],
    }
    parsed = responses_in.parse(
        {"model": "m", "input": "x", "tools": tools, "tool_choice": choice}, ""
    )
    assert parsed.chat.tool_choice.mode == pb.TOOL_CHOICE_MODE_REQUIRED
    assert list(parsed.chat.tool_choice.allowed_function_names) == ["g"]
    assert parsed.echo.tool_choice == choice


def test_default_model_resolves() -> None:
    assert (
        responses_in.parse({"model": "default", "input": "x"}, "stub-echo").chat.model
        == "stub-echo"
    )


def test_agreeing_formats_are_accepted() -> None:
    schema = {"type": "object", "properties": {}}
    body = {
        "model": "m",
        "input": "x",
        "text": {"format": {"type": "json_schema", "name": "s", "schema": schema, "strict": True}},
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "s", "schema": schema, "strict": True},
        },
    }
    parsed = responses_in.parse(body, "")
    assert parsed.chat.response_format.json_schema.strict
    assert parsed.echo.text["format"]["name"] == "s"
