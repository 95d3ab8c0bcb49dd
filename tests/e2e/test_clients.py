"""Request shapes real clients send (SDK helpers, litellm, the cookbook, Codex), and reasoning
models, through the official openai SDK against the real gateway and stub."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pydantic
from openai import OpenAI

from tests.support import Servers, parse_data_frames, parse_sse, strict_chat_completion


class GetWeather(pydantic.BaseModel):
    city: str


def test_chat_parse_helper_message_replays_as_is(client: OpenAI) -> None:
    """openai-python's chat.completions.parse() message, sent back as the next turn's history
    (with `parsed`, `tool_calls[i].function.parsed_arguments`, ...), plus a named tool result."""
    prompt = [{"role": "user", "content": "Weather? Use GetWeather."}]
    tools = [openai.pydantic_function_tool(GetWeather)]
    first = client.chat.completions.parse(model="stub-echo", messages=prompt, tools=tools)  # type: ignore[arg-type]
    message = first.choices[0].message
    assert message.tool_calls is not None
    call = message.tool_calls[0]
    assert call.function.parsed_arguments == GetWeather(city="stub")
    replayed = message.model_dump(mode="json")
    assert "parsed" in replayed and "parsed_arguments" in replayed["tool_calls"][0]["function"]
    result = {"role": "tool", "tool_call_id": call.id, "name": "GetWeather", "content": "sunny"}
    second = client.chat.completions.create(
        model="stub-echo", messages=[*prompt, replayed, result], tools=tools
    )
    assert second.choices[0].message.content == "Tool result: sunny"


def test_chat_stream_helper_message_replays_as_is(client: OpenAI) -> None:
    """The .stream() helper's final message (tool calls with `index`) replayed."""
    prompt = [{"role": "user", "content": "Weather? Use GetWeather.", "name": "ann"}]
    tools = [openai.pydantic_function_tool(GetWeather)]
    with client.chat.completions.stream(model="stub-echo", messages=prompt, tools=tools) as s:  # type: ignore[arg-type]
        final = s.get_final_completion()
    replayed = final.choices[0].message.model_dump(mode="json")
    assert replayed["tool_calls"][0]["index"] == 0
    call_id = replayed["tool_calls"][0]["id"]
    result = {"role": "tool", "tool_call_id": call_id, "content": "rain"}
    second = client.chat.completions.create(model="stub-echo", messages=[*prompt, replayed, result])
    assert second.choices[0].message.content == "Tool result: rain"


def test_node_final_chat_completion_message_as_quoted(servers: Servers) -> None:
    """The exact message openai-node's finalChatCompletion() produces (quoted in the issue)."""
    assistant = json.loads(
        '{"role":"assistant","content":null,"refusal":null,"annotations":null,"audio":null,'
        '"function_call":null,"parsed":null,"tool_calls":[{"id":"call_1","type":"function",'
        '"index":0,"function":{"name":"GetWeather","arguments":"{\\"city\\":\\"x\\"}",'
        '"parsed_arguments":{"city":"x"}}}]}'
    )
    body = {
        "model": "stub-echo",
        "messages": [
            {"role": "system", "content": "Be brief.", "name": "rules"},
            {"role": "user", "content": "weather in x", "name": "ann"},
            assistant,
            {"role": "tool", "tool_call_id": "call_1", "name": "GetWeather", "content": "cold"},
        ],
    }
    response = httpx.post(servers.url + "/v1/chat/completions", json=body, timeout=10)
    assert response.status_code == 200, response.text
    completion = strict_chat_completion(response.json())
    assert completion.choices[0].message.content == "Tool result: cold"


def test_unknown_top_level_field_stays_strict(servers: Servers) -> None:
    body = {"model": "stub-echo", "messages": [{"role": "user", "content": "x"}], "colour": 1}
    response = httpx.post(servers.url + "/v1/chat/completions", json=body, timeout=10)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_parameter"


def test_parallel_calls_are_strictly_sequential_on_responses(client: OpenAI) -> None:
    """A strict consumer: one open item at a time, output_index 0, 1, 2... in order."""
    tools: Any = [
        {"type": "function", "name": "get_time", "parameters": {"type": "object"}},
        {"type": "function", "name": "get_date", "parameters": {"type": "object"}},
        {"type": "function", "name": "get_zone", "parameters": {"type": "object"}},
    ]
    open_index: int | None = None
    added: list[int] = []
    for event in client.responses.create(
        model="stub-echo", input="get_time, get_date and get_zone", tools=tools, stream=True
    ):
        if event.type == "response.output_item.added":
            assert open_index is None, "an item was added while another was open"
            open_index = event.output_index
            added.append(event.output_index)
        elif event.type == "response.function_call_arguments.delta":
            assert event.output_index == open_index
        elif event.type == "response.output_item.done":
            assert event.output_index == open_index
            open_index = None
    assert added == [0, 1, 2] and open_index is None


def test_parallel_calls_stream_contiguously_on_chat(servers: Servers) -> None:
    tools = [
        {"type": "function", "function": {"name": n, "parameters": {"type": "object"}}}
        for n in ("get_time", "get_date")
    ]
    body = {
        "model": "stub-echo",
        "messages": [{"role": "user", "content": "get_time and get_date"}],
        "tools": tools,
        "stream": True,
    }
    response = httpx.post(servers.url + "/v1/chat/completions", json=body, timeout=10)
    frames = parse_data_frames(response.text)
    order = [
        entry["index"]
        for frame in frames
        for entry in frame["choices"][0]["delta"].get("tool_calls", [])
    ]
    assert order == sorted(order) and set(order) == {0, 1}


def test_reasoning_model_on_responses(client: OpenAI) -> None:
    with client.responses.stream(
        model="stub-think", input="Why blue?", reasoning={"effort": "low", "summary": "auto"}
    ) as stream:
        types = [event.type for event in stream]
        final = stream.get_final_response()
    reasoning, message = final.output
    assert reasoning.type == "reasoning" and message.type == "message"
    assert reasoning.summary == []
    assert [c.text for c in reasoning.content or []] == ["Thinking about: Why blue?"]
    assert final.output_text == "Why blue?"
    assert final.usage is not None and final.usage.output_tokens_details.reasoning_tokens == 4
    assert (final.reasoning is not None) and final.reasoning.effort == "low"
    first_text = types.index("response.output_text.delta")
    assert types.index("response.reasoning_text.done") < first_text
    assert types.count("response.reasoning_text.delta") == 4
    # Non-streaming: the same items.
    unary = client.responses.create(model="stub-think", input="Why blue?")
    assert [item.type for item in unary.output] == ["reasoning", "message"]


def test_reasoning_items_replayed_as_input_are_accepted(client: OpenAI) -> None:
    first = client.responses.create(model="stub-think", input="Hi there")
    history: Any = [
        {"role": "user", "content": "Hi there"},
        *[item.model_dump(mode="json", exclude_none=True) for item in first.output],
        {"role": "user", "content": "And now?"},
    ]
    second = client.responses.create(model="stub-echo", input=history)
    assert second.output_text == "And now?"


def test_reasoning_model_on_chat_completions(client: OpenAI, servers: Servers) -> None:
    completion = client.chat.completions.create(
        model="stub-think",
        messages=[{"role": "user", "content": "Why blue?"}],
        reasoning_effort="high",
    )
    message = completion.choices[0].message
    assert message.content == "Why blue?"
    assert (message.model_extra or {})["reasoning_content"] == "Thinking about: Why blue?"
    assert completion.usage is not None
    assert completion.usage.completion_tokens_details is not None
    assert completion.usage.completion_tokens_details.reasoning_tokens == 4
    chunks = list(
        client.chat.completions.create(
            model="stub-think", messages=[{"role": "user", "content": "Why blue?"}], stream=True
        )
    )
    thought = "".join(
        (c.choices[0].delta.model_extra or {}).get("reasoning_content", "") for c in chunks
    )
    assert thought == "Thinking about: Why blue?"


def test_codex_first_request_shape(servers: Servers) -> None:
    """Codex CLI 0.171's first request, trimmed: client_metadata, a namespace tool,
    reasoning summary auto, include reasoning.encrypted_content, prompt_cache_key."""
    body = {
        "model": "stub-echo",
        "stream": True,
        "store": False,
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "reasoning": {"summary": "auto"},
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "01a23231-26f8-7613-aa89-1f4b32cbc034",
        "client_metadata": {
            "session_id": "01a23231-26f8-7613-aa89-1f4b32cbc034",
            "turn_id": "01a23231-270d-7361-a1c8-573f06081277",
            "x-codex-turn-metadata": json.dumps({"turn_id": "t", "sandbox": "none"} | {"pad": "x" * 2000}),
        },
        "tools": [
            {"type": "function", "name": "exec_command", "strict": False,
             "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]}},
            {"type": "namespace", "name": "multi_agent_v1", "description": "Sub-agents.",
             "tools": [{"type": "function", "name": "close_agent", "strict": False,
                        "parameters": {"type": "object", "properties": {"target": {"type": "string"}}, "required": ["target"]}}]},
        ],
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "You are Codex."}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "multi_agent_v1__close_agent"}]},
        ],
    }  # fmt: skip
    response = httpx.post(servers.url + "/v1/responses", json=body, timeout=10)
    assert response.status_code == 200, response.text
    done = [e for e in parse_sse(response.text) if e["type"] == "response.output_item.done"]
    assert [(e["item"]["name"], e["item"].get("namespace")) for e in done] == [
        ("close_agent", "multi_agent_v1")
    ]


def test_namespace_tool_through_the_sdk(client: OpenAI) -> None:
    namespace: Any = {
        "type": "namespace",
        "name": "crm",
        "description": "Customer records.",
        "tools": [
            {"type": "function", "name": "lookup", "parameters": {"type": "object"}},
            {"type": "function", "name": "update", "parameters": {"type": "object"}},
        ],
    }
    first = client.responses.create(
        model="stub-echo",
        input="crm__update please",
        tools=[namespace],
        extra_body={"client_metadata": {"a": "b"}},
    )
    [call] = first.output
    assert call.type == "function_call"
    assert (call.namespace, call.name) == ("crm", "update")
    assert [t.type for t in first.tools] == ["namespace"]
    history: Any = [
        {"role": "user", "content": "crm__update please"},
        call.model_dump(mode="json", exclude_none=True),
        {"type": "function_call_output", "call_id": call.call_id, "output": "updated"},
    ]
    second = client.responses.create(model="stub-echo", input=history, tools=[namespace])
    assert second.output_text == "Tool result: updated"
