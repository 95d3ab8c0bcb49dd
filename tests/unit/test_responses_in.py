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


# --- what the Codex CLI sends -------------------------------------------------------

NS = {
    "type": "namespace",
    "name": "multi_agent_v1",
    "description": "Sub-agents.",
    "tools": [{"type": "function", "name": "close_agent", "parameters": {"type": "object"}}],
}
LONG_TURN_METADATA = '{"turn_id": "' + "x" * 4000 + '"}'

CODEX_BAD: list[tuple[dict[str, Any], str, str]] = [
    ({"client_metadata": "s"}, "client_metadata", "invalid_type"),
    ({"client_metadata": {"session_id": 1}}, "client_metadata.session_id", "invalid_type"),
    ({"client_metadata": {"k": "x" * 16385}}, "client_metadata.k", "invalid_value"),
    ({"client_metadata": {"k" * 257: "v"}}, "client_metadata." + "k" * 64, "invalid_value"),
    ({"client_metadata": {str(i): "v" for i in range(65)}}, "client_metadata", "invalid_value"),
    ({"reasoning": "high"}, "reasoning", "invalid_type"),
    ({"reasoning": {"effort": "huge"}}, "reasoning.effort", "invalid_value"),
    ({"reasoning": {"summary": "long"}}, "reasoning.summary", "invalid_value"),
    ({"reasoning": {"generate_summary": "long"}}, "reasoning.generate_summary", "invalid_value"),
    ({"reasoning": {"budget": 5}}, "reasoning.budget", "unknown_parameter"),
    ({"reasoning": {"context": 5}}, "reasoning.context", "invalid_type"),
    ({"tools": [{**NS, "tools": []}]}, "tools[0].tools", "invalid_value"),
    ({"tools": [{**NS, "tools": [{"type": "custom", "name": "apply_patch"}]}]}, "tools[0].tools[0].type", "unsupported_parameter"),
    ({"tools": [{"type": "custom", "name": "apply_patch"}]}, "tools[0].type", "unsupported_parameter"),
    ({"tools": [{**NS, "name": 3}]}, "tools[0].name", "invalid_type"),
    ({"tools": [NS, NS]}, "tools", "invalid_value"),
    ({"tools": [FN, FN]}, "tools", "invalid_value"),
    ({"tools": [{**NS, "name": "n" * 60}]}, "tools[0].tools[0].name", "invalid_value"),
    ({"input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}", "namespace": 1}]}, "input[0].namespace", "invalid_type"),
]  # fmt: skip


@pytest.mark.parametrize(("extra", "param", "code"), CODEX_BAD)
def test_codex_fields_are_type_checked(extra: dict[str, Any], param: str, code: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        responses_in.parse({"model": "m", "input": "x", **extra}, "m")
    assert (info.value.param, info.value.code) == (param, code)


def test_client_metadata_as_codex_sends_it_is_accepted_and_not_forwarded() -> None:
    meta = {"session_id": "s", "turn_id": "t", "x-codex-turn-metadata": LONG_TURN_METADATA}
    with_meta = responses_in.parse({"model": "m", "input": "x", "client_metadata": meta}, "m")
    assert with_meta.chat == responses_in.parse({"model": "m", "input": "x"}, "m").chat


@pytest.mark.parametrize(
    ("reasoning", "effort", "echo"),
    [
        ({"summary": "auto"}, pb.REASONING_EFFORT_UNSPECIFIED, {"effort": None, "summary": "auto"}),
        ({}, pb.REASONING_EFFORT_UNSPECIFIED, {"effort": None, "summary": None}),
        ({"effort": "none"}, pb.REASONING_EFFORT_UNSPECIFIED, {"effort": "none", "summary": None}),
        (
            {"effort": "minimal"},
            pb.REASONING_EFFORT_MINIMAL,
            {"effort": "minimal", "summary": None},
        ),
        (
            {"effort": "high", "summary": "detailed"},
            pb.REASONING_EFFORT_HIGH,
            {"effort": "high", "summary": "detailed"},
        ),
        (
            {"effort": "low", "context": "all_turns"},
            pb.REASONING_EFFORT_LOW,
            {"effort": "low", "summary": None},
        ),
        ({"generate_summary": "concise"}, 0, {"effort": None, "summary": "concise"}),
    ],
)
def test_reasoning_effort_and_summary(
    reasoning: dict[str, Any], effort: int, echo: dict[str, Any]
) -> None:
    parsed = responses_in.parse({"model": "m", "input": "x", "reasoning": reasoning}, "m")
    assert (parsed.chat.reasoning_effort, parsed.echo.reasoning) == (effort, echo)


def test_namespace_tools_are_flattened_and_replayed_calls_find_them() -> None:
    body = {
        "model": "m",
        "tools": [FN, NS],
        "input": [
            {"type": "function_call", "call_id": "c1", "name": "close_agent", "arguments": "{}",
             "namespace": "multi_agent_v1", "id": "fc_1", "status": "completed"},
            {"type": "function_call_output", "call_id": "c1", "output": "ok", "id": "fco_1"},
        ],
    }  # fmt: skip
    parsed = responses_in.parse(body, "m")
    assert [t.name for t in parsed.chat.tools] == ["f", "multi_agent_v1__close_agent"]
    assert parsed.chat.messages[0].tool_calls[0].name == "multi_agent_v1__close_agent"
    assert parsed.echo.namespaced == {
        "multi_agent_v1__close_agent": ("multi_agent_v1", "close_agent")
    }
    assert parsed.echo.tools[1]["type"] == "namespace"
    assert [t["name"] for t in parsed.echo.tools[1]["tools"]] == ["close_agent"]


def test_unknown_keys_inside_items_and_parts_are_ignored() -> None:
    body = {
        "model": "m",
        "input": [
            {"type": "message", "role": "user", "x-extra": 1,
             "content": [{"type": "input_text", "text": "hi", "cache": True}]},
            {"type": "reasoning", "id": "rs_1", "summary": [], "content": None,
             "encrypted_content": "gAAAA"},
        ],
    }  # fmt: skip
    parsed = responses_in.parse(body, "m")
    assert [m.content[0].text for m in parsed.chat.messages] == ["hi"]
