"""The official openai SDK against the real gateway (uvicorn) and the real stub, on 127.0.0.1."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from tests.support import Servers, parse_sse, strict_event, strict_response


def raw_json(response: Any) -> dict[str, Any]:
    return response.model_dump(mode="json", exclude_unset=True)  # type: ignore[no-any-return]


def test_create_with_string_input(client: OpenAI) -> None:
    response = client.responses.create(model="stub-echo", input="Hello there, gateway!")
    assert response.output_text == "Hello there, gateway!"
    assert response.status == "completed"
    assert response.id.startswith("resp_")
    assert response.output[0].id.startswith("msg_")
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (3, 3)
    assert response.usage.total_tokens == 6
    strict_response(raw_json(response))


def test_create_with_message_array_and_instructions(client: OpenAI, servers: Servers) -> None:
    response = client.responses.create(
        model="default",
        instructions="Answer briefly.",
        input=[
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": [{"type": "output_text", "text": "first answer"}]},
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "second"},
                    {"type": "input_text", "text": "question"},
                ],
            },
        ],
        temperature=0.5,
        top_p=0.9,
    )
    assert response.output_text == "second question"
    assert response.model == "stub-echo"
    assert response.instructions == "Answer briefly."
    assert (response.temperature, response.top_p) == (0.5, 0.9)
    sent = next(
        c
        for c in servers.stub.service.calls
        if c.request_id and c.messages[0].content[0].text == "Answer briefly."
    )
    assert [m.role for m in sent.messages] == [1, 3, 4, 3]
    assert sent.temperature == 0.5 and sent.top_p == 0.9
    # input words: 2 + 2 + 2 + 2 = 8
    assert response.usage is not None and response.usage.input_tokens == 8


def test_stream_events_in_order(client: OpenAI) -> None:
    events = list(client.responses.create(model="stub-echo", input="one two three", stream=True))
    types = [e.type for e in events]
    assert types == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert {e.response.id for e in events if hasattr(e, "response")} == {events[0].response.id}  # type: ignore[attr-defined]
    assert (
        "".join(e.delta for e in events if e.type == "response.output_text.delta")
        == "one two three"
    )  # type: ignore[union-attr]
    for event in events:
        strict_event(raw_json(event))


def test_stream_helper_final_response(client: OpenAI) -> None:
    with client.responses.stream(model="stub-echo", input="stream me please") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == "stream me please"
    assert final.output_text == "stream me please"
    assert final.status == "completed"


def test_truncation_non_streaming(client: OpenAI) -> None:
    response = client.responses.create(model="stub-echo", input="a b c d e", max_output_tokens=2)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output[0].status == "incomplete"  # type: ignore[union-attr]
    assert response.output_text == "a b "
    assert response.max_output_tokens == 2


def test_truncation_streaming_ends_with_response_incomplete(client: OpenAI) -> None:
    events = list(
        client.responses.create(
            model="stub-echo", input="a b c d e", max_output_tokens=2, stream=True
        )
    )
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.status == "incomplete"


def test_truncation_as_completed_setting() -> None:
    servers = Servers(incomplete_as_completed=True)
    try:
        with (
            OpenAI(base_url=servers.url + "/v1", api_key="unused", max_retries=0) as client,
            client.responses.stream(
                model="stub-echo", input="a b c d e", max_output_tokens=2
            ) as stream,
        ):
            final = stream.get_final_response()
        assert final.status == "incomplete"
        assert final.incomplete_details is not None
    finally:
        servers.close()


def test_backend_failure_before_first_chunk_is_typed_error(client: OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        client.responses.create(model="stub-fail-before", input="hi")
    assert info.value.status_code == 503
    with pytest.raises(openai.InternalServerError) as info:
        client.responses.create(model="stub-fail-before", input="hi", stream=True)
    assert info.value.status_code == 503
    body = info.value.body
    assert isinstance(body, dict) and set(body) == {"message", "type", "param", "code"}


def test_backend_failure_after_first_chunk_is_response_failed(client: OpenAI) -> None:
    events = list(client.responses.create(model="stub-fail-mid", input="a b c d e", stream=True))
    assert [e.type for e in events if e.type == "response.output_text.delta"] == [
        "response.output_text.delta"
    ] * 2
    last = events[-1]
    assert last.type == "response.failed"
    assert last.response.status == "failed"
    assert last.response.error is not None and last.response.error.code == "server_error"
    assert last.response.output[0].content[0].text == "a b "  # type: ignore[union-attr]
    strict_event(raw_json(last))


def test_backend_failure_after_first_chunk_non_streaming_is_500(client: OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        client.responses.create(model="stub-fail-mid", input="a b c d e")
    assert info.value.status_code == 500


def test_missing_model_is_400_with_param(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(input="hi")  # type: ignore[call-overload]
    assert info.value.status_code == 400
    assert info.value.param == "model"
    assert info.value.code == "missing_required_parameter"


def test_unknown_model_is_404(client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.responses.create(model="no-such-model", input="hi")
    assert info.value.param == "model"


def test_every_error_is_openai_shaped(servers: Servers) -> None:
    cases = [
        ("POST", "/v1/responses", b"{not json", 400),
        ("POST", "/v1/responses", b"[1, 2]", 400),
        (
            "POST",
            "/v1/responses",
            b'{"model": "stub-echo", "input": "x", "temperature": "hot"}',
            400,
        ),
        ("GET", "/v1/nowhere", b"", 404),
        ("GET", "/v1/responses/resp_123", b"", 404),
        ("PUT", "/v1/responses", b"", 405),
    ]
    with httpx.Client(base_url=servers.url, timeout=10) as http:
        for method, path, content, status in cases:
            r = http.request(
                method, path, content=content, headers={"content-type": "application/json"}
            )
            assert r.status_code == status, (path, r.text)
            error = r.json()["error"]
            assert set(error) == {"message", "type", "param", "code"}
            assert error["code"] is None or isinstance(error["code"], str)
            assert r.headers["x-request-id"].startswith("req_")


WIRE_BODIES = {
    "text": {"input": "plain text reply"},
    "truncated": {"input": "a b c d", "max_output_tokens": 1},
    "tools": {
        "input": "call alpha and beta",
        "tools": [
            {
                "type": "function",
                "name": "alpha",
                "parameters": {"type": "object", "properties": {}},
            },
            {"type": "function", "name": "beta", "parameters": {"type": "object"}},
        ],
    },
    "json_schema": {
        "input": "x",
        "text": {"format": {"type": "json_schema", "name": "n", "schema": {"type": "object"}}},
    },
}


@pytest.mark.parametrize("case", sorted(WIRE_BODIES))
def test_wire_events_are_strictly_valid(servers: Servers, case: str) -> None:
    """Every frame on the wire, event line and data, validated strictly (the SDK is lenient)."""
    body = {"model": "stub-echo", "stream": True, **WIRE_BODIES[case]}
    with httpx.Client(base_url=servers.url, timeout=10) as http:
        text = http.post("/v1/responses", json=body).text
    events = parse_sse(text)
    for event in events:
        strict_event(event)
    assert events[-1]["type"] in ("response.completed", "response.incomplete")
