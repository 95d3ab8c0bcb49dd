"""Coalescing through the gateway: under load (the hint forced here) both endpoints stream
fewer, larger deltas, with valid frames and sequence numbers and the same text, tool-call
arguments, usage and finish reason; an idle gateway sends the hint 0."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gateway.load import LoadMonitor
from tests.support import Servers, parse_data_frames, parse_sse, strict_chat_chunk, strict_event

TEXT = " ".join(f"word{i}" for i in range(40))
MODELS = {"text": "stub-echo", "tools": "stub-echo", "reasoning": "stub-think"}
MODEL = {**MODELS, "logprobs": "stub-echo"}
TOOLS = ("lookup", "fetch")  # both named in the input: two calls, two fragments each
TOOL = {
    "type": "function",
    "name": "lookup",
    "parameters": {
        "type": "object",
        "properties": {"q": {"type": "string"}, "n": {"type": "integer"}},
        "required": ["q", "n"],
    },
}


@pytest.fixture(scope="module")
def gateway() -> Iterator[Servers]:
    s = Servers(max_hold_ms=100)  # the default, which tests.support.Servers turns off
    yield s
    s.close()


def post(servers: Servers, path: str, body: dict[str, Any]) -> bytes:
    with httpx.Client(base_url=servers.url, timeout=10) as http:
        response = http.post(path, json=body)
    assert response.status_code == 200, response.text
    return response.content


def monitor(servers: Servers) -> LoadMonitor:
    load: LoadMonitor = servers.gateway.server.config.app.state.load
    return load


def responses(servers: Servers, case: str) -> tuple[int, Any]:
    body: dict[str, Any] = {"model": MODELS[case], "input": TEXT, "stream": True}
    if case == "tools":
        body.update(input="please lookup and fetch", tools=[{**TOOL, "name": n} for n in TOOLS])
    events = parse_sse(post(servers, "/v1/responses", body))
    for event in events:
        strict_event(event)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    deltas = sum(e["type"].endswith(".delta") for e in events)
    final = events[-1]["response"]
    for key in ("id", "created_at", "completed_at"):
        final.pop(key)
    for item in final["output"]:
        item.pop("id")
    return deltas, final


def chat(servers: Servers, case: str) -> tuple[int, Any]:
    body: dict[str, Any] = {
        "model": MODEL[case],
        "messages": [{"role": "user", "content": TEXT}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if case == "logprobs":
        body.update(logprobs=True, top_logprobs=2)
    if case == "tools":
        body["messages"][0]["content"] = "please lookup and fetch"
        function = {"parameters": TOOL["parameters"]}
        body["tools"] = [{"type": "function", "function": {**function, "name": n}} for n in TOOLS]
    chunks = [
        strict_chat_chunk(c) for c in parse_data_frames(post(servers, "/v1/chat/completions", body))
    ]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    args = "".join(
        t.function.arguments or ""
        for c in chunks
        if c.choices
        for t in c.choices[0].delta.tool_calls or []
        if t.function
    )
    finish = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    logprobs = [
        (t.token, t.logprob, [a.token for a in t.top_logprobs])
        for c in chunks
        if c.choices and c.choices[0].logprobs
        for t in c.choices[0].logprobs.content or []
    ]
    assert (case == "logprobs") == bool(logprobs)
    return len(chunks), (text, args, finish, chunks[-1].usage, logprobs)


@pytest.mark.parametrize(
    ("endpoint", "case"),
    [(responses, case) for case in MODELS] + [(chat, case) for case in (*MODELS, "logprobs")],
)
def test_a_coalesced_stream_says_the_same_in_fewer_events(
    gateway: Servers, monkeypatch: pytest.MonkeyPatch, endpoint: Any, case: str
) -> None:
    # This process's own client counts as load: the hint is set by hand both times.
    monkeypatch.setattr(monitor(gateway), "hint_ms", lambda: 0)
    plain_events, plain = endpoint(gateway, case)
    monkeypatch.setattr(monitor(gateway), "hint_ms", lambda: 50)
    held_events, held = endpoint(gateway, case)
    assert [c.max_hold_ms for c in gateway.stub.service.calls[-2:]] == [0, 50]
    assert held == plain
    assert held_events < plain_events


def test_an_idle_gateway_asks_for_no_coalescing(gateway: Servers) -> None:
    time.sleep(1.0)  # the averages forget the tests before
    assert monitor(gateway).hint_ms() == 0
    responses(gateway, "text")
    assert gateway.stub.service.calls[-1].max_hold_ms == 0
    metrics = httpx.get(gateway.url + "/metrics", timeout=5).text
    assert "\ngateway_coalescing_hold_ms 0.0\n" in metrics


def test_the_hint_reaches_the_metrics_gauge(gateway: Servers) -> None:
    load = monitor(gateway)
    for _ in range(100):  # two seconds' worth of samples at 20 ms of lag, this process busy
        load.sample(20.0, 1.0)
    assert load.hint_ms() == 100
    metrics = httpx.get(gateway.url + "/metrics", timeout=5).text
    assert "\ngateway_coalescing_hold_ms 100.0\n" in metrics
