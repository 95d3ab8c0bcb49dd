"""Items 5 and 11: client headers and loosely checked fields. No header becomes an
invalid-metadata 500; bad values answer a clear 400 (or are dropped, as W3C says)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support import Servers

BODY = {"model": "stub-echo", "input": "traced"}
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    s = Servers()
    yield s
    s.close()


def sent_metadata(servers: Servers, request_id: str) -> dict[str, str]:
    service = servers.stub.service
    for call, metadata in zip(service.calls, service.call_metadata, strict=True):
        if call.request_id == request_id:
            return metadata
    raise AssertionError(f"no call {request_id}")


@pytest.mark.parametrize(
    "tracestate",
    [
        "vendor=caf\xe9".encode("latin-1"),  # not ASCII
        b"a=" + b"x" * 16_000,  # over 512 characters
        b",".join(b"k%d=v" % i for i in range(33)),  # over 32 members
    ],
)
def test_invalid_tracestate_is_dropped(servers: Servers, tracestate: bytes) -> None:
    headers = [("traceparent", TRACEPARENT), ("tracestate", tracestate)]
    for _ in range(3):  # random 200s and 429s before: each answer must be the same
        answer = httpx.post(servers.url + "/v1/responses", json=BODY, headers=headers, timeout=10)
        assert answer.status_code == 200, answer.text
        metadata = sent_metadata(servers, answer.headers["x-request-id"])
        assert metadata["traceparent"] == TRACEPARENT
        assert "tracestate" not in metadata


def test_valid_tracestate_is_forwarded(servers: Servers) -> None:
    headers = {"traceparent": TRACEPARENT, "tracestate": "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"}
    answer = httpx.post(servers.url + "/v1/responses", json=BODY, headers=headers, timeout=10)
    metadata = sent_metadata(servers, answer.headers["x-request-id"])
    assert metadata["tracestate"] == headers["tracestate"]


@pytest.mark.parametrize("client_id", [b"x" * 20_000, b"caf\xe9"])
def test_oversized_client_request_id_is_400_and_not_echoed(
    servers: Servers, client_id: bytes
) -> None:
    headers = [("x-client-request-id", client_id)]
    answer = httpx.post(servers.url + "/v1/responses", json=BODY, headers=headers, timeout=10)
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == "X-Client-Request-Id"
    assert "x-client-request-id" not in answer.headers
    assert answer.headers["x-request-id"].startswith("req_")
    ok = httpx.post(
        servers.url + "/v1/responses", json=BODY, headers={"x-client-request-id": "a" * 512}
    )
    assert ok.headers["x-client-request-id"] == "a" * 512


def test_compressed_body_is_415(servers: Servers) -> None:
    headers = {"content-encoding": "gzip", "content-type": "application/json"}
    answer = httpx.post(servers.url + "/v1/responses", content=b"\x1f\x8b\x08\x00", headers=headers)
    assert answer.status_code == 415
    assert answer.json()["error"]["code"] == "unsupported_media_type"


@pytest.mark.parametrize(
    ("path", "field", "value"),
    [
        ("/v1/responses", "max_tool_calls", "many"),
        ("/v1/responses", "max_tool_calls", -1),
        ("/v1/responses", "user", 123),
        ("/v1/responses", "safety_identifier", "s" * 65),
        ("/v1/responses", "prompt_cache_key", {"a": 1}),
        ("/v1/chat/completions", "user", ["x"]),
        ("/v1/chat/completions", "safety_identifier", 5),
        ("/v1/chat/completions", "prompt_cache_key", "k" * 513),
    ],
)
def test_loose_fields_are_type_checked(servers: Servers, path: str, field: str, value: Any) -> None:
    body: dict[str, Any] = (
        {**BODY}
        if path == "/v1/responses"
        else {"model": "stub-echo", "messages": [{"role": "user", "content": "x"}]}
    )
    answer = httpx.post(servers.url + path, json={**body, field: value}, timeout=10)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] == field
