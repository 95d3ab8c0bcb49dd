"""Production hardening against the real uvicorn server and stub on 127.0.0.1: auth, limits,
idempotent retries, deadlines, retries before the first chunk, cancellation, request ids."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from tests.support import RedisServer, Servers

KEY_A, KEY_B = "sk-tenant-a", "sk-tenant-b"
BODY = {"model": "stub-echo", "input": "replay me"}


@pytest.fixture(scope="module")
def secured() -> Iterator[Servers]:
    servers = Servers(api_keys=(KEY_A, KEY_B))
    yield servers
    servers.close()


def http(servers: Servers, key: str | None = KEY_A) -> httpx.Client:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=servers.url, headers=headers, timeout=10)


def assert_error(response: httpx.Response, status: int, param: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param
    assert response.headers["x-request-id"].startswith("req_")
    return error


# --- auth ---------------------------------------------------------------------------------


def test_missing_or_wrong_key_is_401(secured: Servers) -> None:
    with http(secured, key=None) as c:
        assert assert_error(c.post("/v1/responses", json=BODY), 401)["code"] == "invalid_api_key"
    with http(secured, key="sk-wrong") as c:
        assert assert_error(c.post("/v1/responses", json=BODY), 401)["code"] == "invalid_api_key"
    with (
        OpenAI(base_url=secured.url + "/v1", api_key="sk-wrong", max_retries=0) as client,
        pytest.raises(openai.AuthenticationError),
    ):
        client.responses.create(model="stub-echo", input="hi")


def test_valid_key_passes_and_probes_need_none(secured: Servers) -> None:
    with OpenAI(base_url=secured.url + "/v1", api_key=KEY_B, max_retries=0) as client:
        assert client.responses.create(model="stub-echo", input="hi").output_text == "hi"
    with http(secured, key=None) as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/readyz").json() == {"status": "ready"}


# --- idempotency ---------------------------------------------------------------------------


@pytest.fixture(params=["memory", "redis"])
def idem(request: pytest.FixtureRequest) -> Iterator[Servers]:
    extra: dict[str, Any] = {}
    if request.param == "redis":
        redis_server: RedisServer = request.getfixturevalue("redis_server")
        extra["idempotency_redis_url"] = redis_server.url
    servers = Servers(api_keys=(KEY_A, KEY_B), **extra)
    yield servers
    servers.close()


def calls(servers: Servers) -> int:
    return len(servers.stub.service.calls)


@pytest.mark.parametrize("path", ["/v1/responses", "/v1/chat/completions"])
def test_retry_is_replayed_not_rerun(idem: Servers, path: str) -> None:
    body = (
        BODY
        if path == "/v1/responses"
        else {"model": "stub-echo", "messages": [{"role": "user", "content": "replay me"}]}
    )
    key = {"idempotency-key": f"k-{path}"}
    with http(idem) as c:
        first = c.post(path, json=body, headers=key)
        before = calls(idem)
        second = c.post(path, json=body, headers=key)
    assert first.status_code == second.status_code == 200
    assert second.content == first.content
    assert second.headers["x-request-id"] == first.headers["x-request-id"]
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert calls(idem) == before  # the backend was not called again


def test_same_key_other_body_is_422(idem: Servers) -> None:
    key = {"idempotency-key": "k-422"}
    with http(idem) as c:
        assert c.post("/v1/responses", json=BODY, headers=key).status_code == 200
        other = c.post("/v1/responses", json={**BODY, "input": "something else"}, headers=key)
    assert assert_error(other, 422, "Idempotency-Key")["code"] == "idempotency_key_reused"


def test_same_key_while_running_is_409(idem: Servers) -> None:
    slow = {"model": "stub-slow", "input": " ".join(["w"] * 12)}
    key = {"idempotency-key": "k-409"}
    results: list[httpx.Response] = []
    with http(idem) as c:
        first = threading.Thread(
            target=lambda: results.append(c.post("/v1/responses", json=slow, headers=key))
        )
        first.start()
        time.sleep(0.2)
        conflict = c.post("/v1/responses", json=slow, headers=key)
        first.join(10)
    assert assert_error(conflict, 409, "Idempotency-Key")["code"] == "idempotency_key_in_use"
    assert results[0].status_code == 200


def test_keys_are_scoped_to_the_tenant(idem: Servers) -> None:
    key = {"idempotency-key": "k-shared"}
    with http(idem, KEY_A) as a, http(idem, KEY_B) as b:
        mine = a.post("/v1/responses", json=BODY, headers=key)
        before = calls(idem)
        theirs = b.post("/v1/responses", json=BODY, headers=key)
    assert theirs.status_code == 200
    assert "idempotent-replayed" not in theirs.headers
    assert theirs.json()["id"] != mine.json()["id"]
    assert calls(idem) == before + 1  # B's request ran: it never sees A's stored result


def test_transient_failures_are_not_stored(idem: Servers) -> None:
    body = {"model": "stub-fail-before", "input": "x"}
    key = {"idempotency-key": "k-503"}
    with http(idem) as c:
        assert c.post("/v1/responses", json=body, headers=key).status_code == 503
        before = calls(idem)
        again = c.post("/v1/responses", json=body, headers=key)
    assert again.status_code == 503
    assert "idempotent-replayed" not in again.headers
    assert calls(idem) > before  # ran again


def test_streaming_requests_are_not_replayed(idem: Servers) -> None:
    key = {"idempotency-key": "k-stream"}
    with http(idem) as c:
        c.post("/v1/responses", json={**BODY, "stream": True}, headers=key)
        before = calls(idem)
        again = c.post("/v1/responses", json={**BODY, "stream": True}, headers=key)
    assert again.status_code == 200 and "idempotent-replayed" not in again.headers
    assert calls(idem) == before + 1


# --- limits --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small() -> Iterator[Servers]:
    servers = Servers(max_body_bytes=128 * 1024, max_in_flight=2, request_timeout=0.5)
    yield servers
    servers.close()


BAD_REQUESTS: list[tuple[dict[str, Any], int, str | None]] = [
    ({"content": b"x" * 200_000}, 413, None),
    ({"content": b'{"model":"stub-echo"}', "headers": {"content-type": "text/plain"}}, 415, None),
    ({"content": b"[1]"}, 400, None),
    ({"json": {"model": "stub-echo", "input": "x", "temperature": "hot"}}, 400, "temperature"),
    ({"json": {"model": "stub-echo", "input": "x", "temperature": 7}}, 400, "temperature"),
    (
        {"json": {"model": "stub-echo", "input": "x", "max_output_tokens": -1}},
        400,
        "max_output_tokens",
    ),
    (
        {"json": {"model": "stub-echo", "input": [{"role": "user", "content": "x"}] * 3000}},
        400,
        "input",
    ),
]


@pytest.mark.parametrize(("kwargs", "status", "param"), BAD_REQUESTS)
def test_bad_input_never_reaches_the_backend(
    small: Servers, kwargs: dict[str, Any], status: int, param: str | None
) -> None:
    before = calls(small)
    with http(small, key=None) as c:
        assert_error(c.post("/v1/responses", **kwargs), status, param)
    assert calls(small) == before


def test_overload_is_429_with_retry_after(small: Servers) -> None:
    slow = {"model": "stub-slow", "input": "a b c d e f", "stream": True}
    with (
        http(small, key=None) as c,
        c.stream("POST", "/v1/responses", json=slow),
        c.stream("POST", "/v1/responses", json=slow),
    ):
        refused = c.post("/v1/responses", json=BODY)
        assert_error(refused, 429)
        assert refused.headers["retry-after"] == "1"
    with http(small, key=None) as c:  # the slots free up again
        assert c.post("/v1/responses", json=BODY).status_code == 200


def test_deadline_is_504(small: Servers) -> None:
    slow = {"model": "stub-slow", "input": " ".join(["w"] * 30)}
    with http(small, key=None) as c:
        assert assert_error(c.post("/v1/responses", json=slow), 504)["code"] == "timeout"


def test_backend_error_statuses(servers: Servers) -> None:
    with http(servers, key=None) as c:
        limited = c.post("/v1/responses", json={"model": "stub-rate-limited", "input": "x"})
        assert assert_error(limited, 429)["code"] == "rate_limit_exceeded"
        unavailable = c.post("/v1/responses", json={"model": "stub-fail-before", "input": "x"})
        assert_error(unavailable, 503)
        assert unavailable.headers["retry-after"]
        broken = c.post("/v1/responses", json={"model": "stub-fail-mid", "input": "a b c"})
        assert_error(broken, 500)
        assert broken.headers["x-should-retry"] == "false"


def test_retry_before_first_chunk_succeeds(servers: Servers) -> None:
    with http(servers, key=None) as c:
        r = c.post("/v1/responses", json={"model": "stub-fail-once", "input": "second time lucky"})
    assert r.status_code == 200, r.text
    assert r.json()["output"][0]["content"][0]["text"] == "second time lucky"
    rid = r.headers["x-request-id"]
    attempts = [call for call in servers.stub.service.calls if call.request_id == rid]
    assert len(attempts) == 2


# --- cancellation and ids ---------------------------------------------------------------------


STREAMS = {
    "/v1/responses": ({"input": " ".join(["word"] * 200)}, "output_text.delta"),
    "/v1/chat/completions": (
        {"messages": [{"role": "user", "content": " ".join(["word"] * 200)}]},
        '"content":"word',
    ),
}


@pytest.mark.parametrize("path", sorted(STREAMS))
def test_disconnect_mid_stream_cancels_backend(servers: Servers, path: str) -> None:
    fields, started_marker = STREAMS[path]
    body = {"model": "stub-slow", "stream": True, **fields}
    with http(servers, key=None) as c, c.stream("POST", path, json=body) as response:
        assert response.status_code == 200
        request_id = response.headers["x-request-id"]
        lines = response.iter_lines()
        while started_marker not in next(lines):
            pass
    started = time.monotonic()
    assert servers.stub.service.wait_cancelled(request_id, timeout=2.0)
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("path", sorted(STREAMS))
def test_disconnect_before_first_chunk_cancels_backend(servers: Servers, path: str) -> None:
    """Headers wait for the first chunk; a client that leaves before it still cancels."""
    fields, _ = STREAMS[path]
    servers.stub.service.chunk_delay = 2.0  # the first chunk would come after 2 s
    try:
        with http(servers, key=None) as c, pytest.raises(httpx.ReadTimeout):
            c.post(path, json={"model": "stub-echo", "stream": True, **fields}, timeout=0.3)
        rid = servers.stub.service.calls[-1].request_id
        assert servers.stub.service.wait_cancelled(rid, timeout=1.0)
    finally:
        servers.stub.service.chunk_delay = 0.0


def test_disconnect_cancels_non_streaming_call(servers: Servers) -> None:
    slow = {"model": "stub-slow", "input": " ".join(["w"] * 100)}
    with http(servers, key=None) as c, pytest.raises(httpx.ReadTimeout):
        c.post("/v1/responses", json=slow, timeout=0.3)
    rid = servers.stub.service.calls[-1].request_id
    assert servers.stub.service.wait_cancelled(rid, timeout=1.0)


def test_request_ids_travel_and_echo(servers: Servers) -> None:
    with http(servers, key=None) as c:
        r = c.post("/v1/responses", json=BODY, headers={"x-client-request-id": "client-42"})
    assert r.headers["x-client-request-id"] == "client-42"
    rid = r.headers["x-request-id"]
    assert rid.startswith("req_")
    assert any(call.request_id == rid for call in servers.stub.service.calls)
