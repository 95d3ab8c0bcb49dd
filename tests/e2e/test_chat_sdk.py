"""/v1/chat/completions with the official openai SDK against the real gateway and stub."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pydantic
import pytest
from openai import OpenAI

from tests.support import Servers, strict_chat_chunk, strict_chat_completion

WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}
CLOCK: Any = {"type": "function", "function": {"name": "get_time"}}


def raw_json(model: Any) -> dict[str, Any]:
    return model.model_dump(mode="json", exclude_unset=True)  # type: ignore[no-any-return]


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def sse_lines(servers: Servers, body: dict[str, Any]) -> list[str]:
    with httpx.Client(base_url=servers.url, timeout=10) as http:
        response = http.post("/v1/chat/completions", json=body)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    return [line for line in response.text.split("\n") if line]


def test_create_text(client: OpenAI) -> None:
    completion = client.chat.completions.create(
        model="default",
        messages=[{"role": "system", "content": "Be brief."}, *user("Hello there, gateway!")],
        temperature=0.5,
    )
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == "stub-echo"
    choice = completion.choices[0]
    assert (choice.message.content, choice.finish_reason) == ("Hello there, gateway!", "stop")
    assert choice.message.tool_calls is None
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (5, 3)
    strict_chat_completion(raw_json(completion))


def test_tool_call_when_the_text_names_the_tool(client: OpenAI, servers: Servers) -> None:
    completion = client.chat.completions.create(
        model="stub-echo", messages=user("call get_weather please"), tools=[WEATHER, CLOCK]
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls or []
    assert call.type == "function"
    assert (call.id, call.function.name) == ("call_stub_0", "get_weather")
    assert json.loads(call.function.arguments) == {"city": "stub"}
    strict_chat_completion(raw_json(completion))
    sent = servers.stub.service.calls[-1]
    assert [t.name for t in sent.tools] == ["get_weather", "get_time"]
    assert json.loads(sent.tools[0].parameters) == WEATHER["function"]["parameters"]


def test_tool_choice_required_forces_a_call(client: OpenAI) -> None:
    completion = client.chat.completions.create(
        model="stub-echo", messages=user("no names here"), tools=[CLOCK], tool_choice="required"
    )
    calls = completion.choices[0].message.tool_calls or []
    assert [c.function.name for c in calls] == ["get_time"]  # type: ignore[union-attr]


def test_client_managed_tool_loop(client: OpenAI) -> None:
    messages: list[Any] = user("What's the weather? Use get_weather.")
    first = client.chat.completions.create(model="stub-echo", messages=messages, tools=[WEATHER])
    (call,) = first.choices[0].message.tool_calls or []
    # The SDK sends the returned message back as-is (with refusal and annotations).
    messages += [first.choices[0].message]
    messages += [{"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 C"}]
    final = client.chat.completions.create(model="stub-echo", messages=messages, tools=[WEATHER])
    assert final.choices[0].finish_reason == "stop"
    assert final.choices[0].message.content == "Tool result: sunny, 21 C"


def test_stream_helper_final_completion_with_usage(client: OpenAI) -> None:
    with client.chat.completions.stream(
        model="stub-echo",
        messages=user("stream me please"),
        stream_options={"include_usage": True},
    ) as stream:
        pieces = [e.delta for e in stream if e.type == "content.delta"]
        final = stream.get_final_completion()
    assert pieces == ["", "stream ", "me ", "please"]  # the role chunk has content "", as OpenAI's
    assert final.choices[0].message.content == "stream me please"
    assert final.choices[0].finish_reason == "stop"
    assert final.usage is not None
    assert (final.usage.prompt_tokens, final.usage.completion_tokens) == (3, 3)
    assert final.usage.total_tokens == 6


def test_stream_helper_with_tool_calls(client: OpenAI) -> None:
    with client.chat.completions.stream(
        model="stub-echo", messages=user("get_weather"), tools=[WEATHER]
    ) as stream:
        done = [e for e in stream if e.type == "tool_calls.function.arguments.done"]
        final = stream.get_final_completion()
    assert [(e.name, e.arguments) for e in done] == [("get_weather", '{"city":"stub"}')]
    (call,) = final.choices[0].message.tool_calls or []
    assert call.id == "call_stub_0"
    assert call.function.parsed_arguments == {"city": "stub"}


class Weather(pydantic.BaseModel):
    city: str
    celsius: int
    sunny: bool


def test_parse_with_a_pydantic_model(client: OpenAI, servers: Servers) -> None:
    completion = client.chat.completions.parse(
        model="stub-echo", messages=user("weather in Paris"), response_format=Weather
    )
    parsed = completion.choices[0].message.parsed
    assert parsed == Weather(city="stub", celsius=0, sunny=False)
    fmt = servers.stub.service.calls[-1].response_format
    assert (fmt.json_schema.name, fmt.json_schema.strict) == ("Weather", True)


def test_n_greater_than_eight_is_400(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="stub-echo", messages=user("hi"), n=9)
    assert (info.value.param, info.value.code) == ("n", "invalid_value")


def test_unknown_model_is_404(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="no-such-model", messages=user("hi"))
    assert (info.value.param, info.value.code) == ("model", "model_not_found")


def test_failure_before_first_chunk_is_a_typed_error(client: OpenAI) -> None:
    for stream in (False, True):
        with pytest.raises(openai.InternalServerError) as info:
            client.chat.completions.create(
                model="stub-fail-before", messages=user("hi"), stream=stream
            )
        assert info.value.status_code == 503
        assert info.value.code == "service_unavailable"


def test_failure_mid_stream_ends_with_an_error_frame(client: OpenAI, servers: Servers) -> None:
    seen: list[str] = []
    stream = client.chat.completions.create(
        model="stub-fail-mid", messages=user("a b c d e"), stream=True
    )
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            seen.append(chunk.choices[0].delta.content or "")
    assert "".join(seen) == "a b "
    assert info.value.code == "server_error"
    body = {"model": "stub-fail-mid", "messages": user("a b c d e"), "stream": True}
    lines = sse_lines(servers, body)
    assert json.loads(lines[-1].removeprefix("data: "))["error"]["code"] == "server_error"
    assert "data: [DONE]" not in lines


def test_failure_mid_stream_non_streaming_is_500(client: OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="stub-fail-mid", messages=user("a b c d e"))
    assert info.value.status_code == 500


def test_raw_frames_are_data_only_and_end_with_done(servers: Servers) -> None:
    body = {
        "model": "stub-echo",
        "messages": user("get_weather and the rest"),
        "tools": [WEATHER],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    lines = sse_lines(servers, body)
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    chunks = [strict_chat_chunk(json.loads(line[6:])) for line in lines[:-1]]
    assert len({(c.id, c.created) for c in chunks}) == 1
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert all(c.usage is None for c in chunks[:-1])
    assert chunks[-2].choices[0].finish_reason == "tool_calls"


def test_large_data_url_image_goes_through(client: OpenAI, servers: Servers) -> None:
    url = "data:image/png;base64," + "A" * (15 * 1024 * 1024)
    completion = client.chat.completions.create(
        model="stub-echo",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "describe"},
                    {"type": "image_url", "image_url": {"url": url, "detail": "high"}},
                ],
            }
        ],
    )
    assert completion.choices[0].message.content == "describe [image]"
    assert len(servers.stub.service.calls[-1].messages[0].content[1].image.url) == len(url)
