"""The backend call's gRPC metadata (gateway.pipeline.backend_metadata): what a client's headers
may add to it, and that none of them can make it invalid."""

from __future__ import annotations

import pytest

from gateway.pipeline import backend_metadata

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_only_the_request_id_without_client_headers() -> None:
    assert backend_metadata("req_1", {}) == [("x-request-id", "req_1")]


def test_client_ids_and_trace_context_are_forwarded() -> None:
    headers = {
        "x-client-request-id": "mine-1",
        "idempotency-key": "k-1",
        "traceparent": " " + TRACEPARENT.upper() + " ",
        "tracestate": "vendor=abc,other=def",
    }
    assert backend_metadata("req_1", headers) == [
        ("x-request-id", "req_1"),
        ("x-client-request-id", "mine-1"),
        ("idempotency-key", "k-1"),
        ("traceparent", TRACEPARENT),
        ("tracestate", "vendor=abc,other=def"),
    ]


@pytest.mark.parametrize(
    "headers",
    [
        {"x-client-request-id": "é"},
        {"x-client-request-id": "x" * 513},
        {"idempotency-key": "k" * 256},
        {"idempotency-key": "tab\there"},
        {"traceparent": "not-a-traceparent", "tracestate": "a=b"},
        {"tracestate": "a=b"},  # no traceparent, no tracestate
    ],
)
def test_invalid_values_are_dropped(headers: dict[str, str]) -> None:
    assert backend_metadata("req_1", headers) == [("x-request-id", "req_1")]


@pytest.mark.parametrize(
    "tracestate", ["é=1", "a=" + "b" * 511, ",".join(f"k{i}=v" for i in range(33))]
)
def test_an_invalid_tracestate_is_dropped_with_a_valid_traceparent(tracestate: str) -> None:
    metadata = backend_metadata("req_1", {"traceparent": TRACEPARENT, "tracestate": tracestate})
    assert metadata == [("x-request-id", "req_1"), ("traceparent", TRACEPARENT)]
