"""/metrics moves by the right amounts after traffic; W3C trace context reaches the backend."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.support import Servers

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture(scope="module")
def fresh() -> Iterator[Servers]:
    servers = Servers(idempotency_ttl=60)
    yield servers
    servers.close()


def scrape(http: httpx.Client) -> dict[str, float]:
    text = http.get("/metrics").text
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def delta(before: dict[str, float], after: dict[str, float], name: str) -> float:
    return after.get(name, 0.0) - before.get(name, 0.0)


def test_counters_move_by_the_right_amounts(fresh: Servers) -> None:
    with httpx.Client(base_url=fresh.url, timeout=10) as http:
        before = scrape(http)
        for _ in range(2):
            http.post("/v1/responses", json={"model": "stub-echo", "input": "one two three"})
        http.post(
            "/v1/responses", json={"model": "stub-echo", "input": "four five", "stream": True}
        )
        http.post(
            "/v1/chat/completions",
            json={"model": "stub-echo", "messages": [{"role": "user", "content": "six"}]},
        )
        http.post("/v1/responses", json={"model": "stub-fail-before", "input": "x"})
        key = {"idempotency-key": "metrics-replay"}
        http.post("/v1/responses", json={"model": "stub-echo", "input": "r"}, headers=key)
        http.post("/v1/responses", json={"model": "stub-echo", "input": "r"}, headers=key)
        after = scrape(http)
    responses_ok = 'gateway_requests_total{route="/v1/responses",status="200"}'
    assert delta(before, after, responses_ok) == 5
    assert delta(before, after, 'gateway_requests_total{route="/v1/responses",status="503"}') == 1
    assert (
        delta(before, after, 'gateway_requests_total{route="/v1/chat/completions",status="200"}')
        == 1
    )
    # 3 + 3 + 2 + 1 words streamed back, one output token a word
    assert delta(before, after, 'gateway_output_tokens_total{route="/v1/responses"}') == 9
    assert delta(before, after, 'gateway_output_tokens_total{route="/v1/chat/completions"}') == 1
    # stub-fail-before: retried in the backend client, counted once when given up
    assert delta(before, after, 'gateway_backend_errors_total{code="UNAVAILABLE"}') == 1
    assert delta(before, after, "gateway_idempotent_replays_total") == 1
    assert (
        delta(before, after, 'gateway_time_to_first_token_seconds_count{route="/v1/responses"}')
        == 4
    )
    assert (
        delta(before, after, 'gateway_request_duration_seconds_count{route="/v1/responses"}') == 6
    )
    assert after["gateway_streams_in_flight"] == 0


def test_metrics_need_no_key_and_are_prometheus_text() -> None:
    servers = Servers(api_keys=("sk-x",))
    try:
        r = httpx.get(servers.url + "/metrics", timeout=5)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/plain")
        assert re.search(r"^# TYPE gateway_requests_total counter$", r.text, re.MULTILINE)
    finally:
        servers.close()


def test_traceparent_reaches_the_backend(servers: Servers) -> None:
    headers = {"traceparent": TRACEPARENT, "tracestate": "vendor=opaque"}
    r = httpx.post(
        servers.url + "/v1/responses",
        json={"model": "stub-echo", "input": "trace me"},
        headers=headers,
        timeout=10,
    )
    rid = r.headers["x-request-id"]
    [metadata] = [
        m
        for c, m in zip(servers.stub.service.calls, servers.stub.service.call_metadata, strict=True)
        if c.request_id == rid
    ]
    assert metadata["traceparent"] == TRACEPARENT
    assert metadata["tracestate"] == "vendor=opaque"
    assert metadata["x-request-id"] == rid


def test_malformed_traceparent_is_not_forwarded(servers: Servers) -> None:
    r = httpx.post(
        servers.url + "/v1/responses",
        json={"model": "stub-echo", "input": "x"},
        headers={"traceparent": "garbage"},
        timeout=10,
    )
    rid = r.headers["x-request-id"]
    [metadata] = [
        m
        for c, m in zip(servers.stub.service.calls, servers.stub.service.call_metadata, strict=True)
        if c.request_id == rid
    ]
    assert "traceparent" not in metadata
