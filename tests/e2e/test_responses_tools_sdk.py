"""/v1/responses beyond text, with the official SDK: the tool loop, structured output, images."""

from __future__ import annotations

import base64
import json
from typing import Any

import openai
from openai import OpenAI
from pydantic import BaseModel

from tests.support import Servers


class GetWeather(BaseModel):
    city: str
    days: int


class Person(BaseModel):
    name: str
    age: int
    tags: list[str]


def replay(prompt: str, call: Any, output: Any) -> Any:
    """The client-managed loop's next input: the prompt, the model's call and its result."""
    return [
        {"role": "user", "content": prompt},
        {
            "type": "function_call",
            "call_id": call.call_id,
            "name": call.name,
            "arguments": call.arguments,
        },
        {"type": "function_call_output", "call_id": call.call_id, "output": output},
    ]


def test_tool_loop(client: OpenAI) -> None:
    tools: Any = [openai.pydantic_function_tool(GetWeather)]
    first = client.responses.parse(
        model="stub-echo", input="What's the weather? Use GetWeather.", tools=tools
    )
    assert first.status == "completed"
    [call] = [item for item in first.output if item.type == "function_call"]
    assert call.name == "GetWeather"
    assert call.id is not None and call.id.startswith("fc_")
    assert call.status == "completed"
    assert call.parsed_arguments == GetWeather(city="stub", days=0)  # type: ignore[attr-defined]
    history = replay("What's the weather? Use GetWeather.", call, "sunny, 21C")
    final = client.responses.parse(model="stub-echo", input=history, tools=tools)
    assert final.output_text == "Tool result: sunny, 21C"


def test_tool_loop_streamed(client: OpenAI) -> None:
    tools: Any = [openai.pydantic_function_tool(GetWeather)]
    with client.responses.stream(
        model="stub-echo", input="Use GetWeather please", tools=tools
    ) as stream:
        events = list(stream)
        first = stream.get_final_response()
    types = [e.type for e in events]
    assert types[2:] == [
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    added, done = events[2], events[-2]
    assert added.item.call_id == done.item.call_id  # type: ignore[union-attr]
    [call] = first.output
    assert call.type == "function_call"
    assert json.loads(call.arguments) == {"city": "stub", "days": 0}
    history = replay("Use GetWeather please", call, [{"type": "input_text", "text": "rain"}])
    with client.responses.stream(model="stub-echo", input=history, tools=tools) as stream:
        final = stream.get_final_response()
    assert final.output_text == "Tool result: rain"


def test_parallel_calls_get_their_own_output_index(client: OpenAI) -> None:
    tools: Any = [
        {"type": "function", "name": "alpha", "parameters": {"type": "object", "properties": {}}},
        {"type": "function", "name": "beta", "parameters": {"type": "object", "properties": {}}},
    ]
    events = list(
        client.responses.create(model="stub-echo", input="alpha and beta", tools=tools, stream=True)
    )
    added = [e for e in events if e.type == "response.output_item.added"]
    assert [(e.output_index, e.item.name) for e in added] == [(0, "alpha"), (1, "beta")]  # type: ignore[union-attr]
    final = events[-1].response  # type: ignore[union-attr]
    assert [item.name for item in final.output] == ["alpha", "beta"]  # type: ignore[union-attr]


def test_required_tool_choice_and_none(client: OpenAI) -> None:
    tools: Any = [{"type": "function", "name": "alpha", "parameters": {"type": "object"}}]
    forced = client.responses.create(
        model="stub-echo", input="hi", tools=tools, tool_choice="required"
    )
    assert [item.type for item in forced.output] == ["function_call"]
    assert forced.tool_choice == "required"
    none = client.responses.create(
        model="stub-echo", input="alpha", tools=tools, tool_choice="none"
    )
    assert none.output_text == "alpha"


def test_parse_text_format(client: OpenAI) -> None:
    response = client.responses.parse(
        model="stub-echo", input="Give me a person", text_format=Person
    )
    assert response.output_parsed == Person(name="stub", age=0, tags=[])
    assert response.text is not None and response.text.format is not None
    assert response.text.format.type == "json_schema"


def test_json_object_format(client: OpenAI) -> None:
    response = client.responses.create(
        model="stub-echo", input="hello json", text={"format": {"type": "json_object"}}
    )
    assert json.loads(response.output_text) == {"echo": "hello json"}


def test_fifteen_megabyte_image(client: OpenAI, servers: Servers) -> None:
    image = (
        "data:image/png;base64," + base64.b64encode(b"\x89PNG" + bytes(15 * 1024 * 1024)).decode()
    )
    response = client.responses.create(
        model="stub-echo",
        input=[{"role": "user", "content": [
            {"type": "input_text", "text": "look:"},
            {"type": "input_image", "image_url": image, "detail": "high"},
        ]}],
    )  # fmt: skip
    assert response.output_text == "look: [image]"
    sent = servers.stub.service.calls[-1].messages[-1].content[1].image
    assert len(sent.url) == len(image) and sent.detail == 3  # IMAGE_DETAIL_HIGH
