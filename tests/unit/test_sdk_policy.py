"""The SDK's retry policy and argument checks, without a network: each row of README's retry
table, the error classes by status, and bad arguments failing before anything is sent."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

import runinfra
from runinfra import errors
from runinfra._retry import MAX_BACKOFF, backoff, retry_delay
from runinfra.errors import APIConnectionError, APITimeoutError, RunInfraError, StreamError

README = (Path(__file__).resolve().parent.parent.parent / "README.md").read_text()


def answer(status: int, **headers: str) -> RunInfraError:
    return errors.status_error(status, None, headers, request_id=None, client_request_id="c")


FAILURES: dict[str, RunInfraError] = {
    "connection refused": APIConnectionError("connection refused", request_sent=False),
    "connect timeout": APITimeoutError("connect", request_sent=False),
    "connection broken": APIConnectionError("reset", request_sent=True),
    "read timeout": APITimeoutError("read", request_sent=True),
    "400": answer(400),
    "404": answer(404),
    "408": answer(408),
    "409": answer(409),
    "422": answer(422),
    "429": answer(429, **{"retry-after": "1"}),
    "500 x-should-retry false": answer(500, **{"x-should-retry": "false"}),
    "500": answer(500),
    "503": answer(503, **{"retry-after": "1"}),
    "504": answer(504),
    "in-band error": StreamError("mid", partial_text="x"),
}
RETRIED_ALWAYS = {"connection refused", "connect timeout"}
RETRIED_WHEN_SAFE = RETRIED_ALWAYS | {
    "connection broken", "read timeout", "408", "409", "429", "500", "503", "504"
}  # fmt: skip


@pytest.mark.parametrize("name", FAILURES)
@pytest.mark.parametrize("replay_safe", [True, False], ids=["keyed", "unkeyed-or-stream"])
def test_retry_table(name: str, replay_safe: bool) -> None:
    delay = retry_delay(FAILURES[name], attempt=0, max_retries=2, replay_safe=replay_safe)
    expected = name in (RETRIED_WHEN_SAFE if replay_safe else RETRIED_ALWAYS)
    assert (delay is not None) == expected


def test_attempts_are_bounded_and_retry_after_is_honoured() -> None:
    error = FAILURES["429"]
    assert retry_delay(error, attempt=1, max_retries=2, replay_safe=True) == 1.0
    assert retry_delay(error, attempt=2, max_retries=2, replay_safe=True) is None
    assert retry_delay(error, attempt=0, max_retries=0, replay_safe=True) is None


def test_backoff_is_jittered_exponential_and_capped() -> None:
    first = [backoff(0) for _ in range(50)]
    assert all(0.375 <= d <= 0.5 for d in first) and len(set(first)) > 1
    assert all(0.75 <= backoff(1) <= 1.0 for _ in range(20))
    assert backoff(30) <= MAX_BACKOFF
    assert backoff(0, retry_after=3.0) == 3.0
    assert backoff(0, retry_after=3600.0) <= 0.5  # an absurd retry-after is not obeyed


def test_retry_after_forms() -> None:
    assert errors.parse_retry_after("2") == 2.0
    assert errors.parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert errors.parse_retry_after("soon") is None and errors.parse_retry_after(None) is None


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, runinfra.BadRequestError), (401, runinfra.AuthenticationError),
        (404, runinfra.NotFoundError), (408, runinfra.RequestTimeoutError),
        (409, runinfra.ConflictError), (413, runinfra.PayloadTooLargeError),
        (415, runinfra.UnsupportedMediaTypeError), (422, runinfra.UnprocessableEntityError),
        (429, runinfra.RateLimitError), (500, runinfra.InternalServerError),
        (502, runinfra.InternalServerError), (503, runinfra.ServiceUnavailableError),
        (504, runinfra.GatewayTimeoutError), (418, runinfra.APIStatusError),
    ],
)  # fmt: skip
def test_one_class_per_status(status: int, cls: type[RunInfraError]) -> None:
    body = {"error": {"message": "m", "type": "t", "param": "p", "code": "c"}}
    error = errors.status_error(status, body, {}, request_id="req_1", client_request_id="mine")
    assert type(error) is cls
    fields = (error.message, error.type, error.param, error.code, error.status)
    assert fields == ("m", "t", "p", "c", status)
    assert (error.request_id, error.client_request_id) == ("req_1", "mine")


def test_readme_retry_table_matches_the_policy() -> None:
    """Every row of README's retry table names failures the policy treats as it says."""
    table = README.split("<!-- retries -->")[1].split("<!-- /retries -->")[0]
    rows = [r.split("|")[1:-1] for r in table.strip().splitlines()[2:]]
    assert len(rows) >= 5
    for call, failure, retried, _why in rows:
        safe = ("key" in call and "without" not in call) or "models" in call
        names = re.findall(r"`([^`]+)`", failure)
        assert names, failure
        for name in names:
            delay = retry_delay(
                FAILURES[name], attempt=0, max_retries=2, replay_safe=safe and "stream=" not in call
            )
            assert (delay is not None) == (retried.strip() == "yes"), (call, name)


# --- bad arguments: TypeError / ValueError naming the argument, nothing sent ----------------


def refuse(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"sent {request.url}")


@pytest.fixture()
def client() -> runinfra.RunInfra:
    return runinfra.RunInfra(http_client=httpx.Client(transport=httpx.MockTransport(refuse)))


@pytest.mark.parametrize(
    ("kwargs", "error", "named"),
    [
        ({"model": 3, "input": "x"}, TypeError, "model"),
        ({"model": "m", "input": 3}, TypeError, "input"),
        ({"model": "m", "input": "x", "temperature": "hot"}, TypeError, "temperature"),
        ({"model": "m", "input": "x", "max_output_tokens": True}, TypeError, "max_output_tokens"),
        ({"model": "m", "input": "x", "tools": {"a": 1}}, TypeError, "tools"),
        ({"model": "m", "input": "x", "stream": "yes"}, TypeError, "stream"),
        ({"model": "m", "input": "x", "temprature": 1.0}, TypeError, "temprature"),
        ({"model": "m", "input": "x", "idempotency_key": 5}, TypeError, "idempotency_key"),
        ({"model": "m", "input": "x", "idempotency_key": ""}, ValueError, "idempotency_key"),
        ({"model": "m", "input": "x", "idempotency_key": "k" * 256}, ValueError, "idempotency_key"),
        ({"model": "m", "input": "x", "request_id": "caf\u00e9"}, ValueError, "request_id"),
        ({"model": "m", "input": "x", "max_retries": -1}, ValueError, "max_retries"),
        ({"model": "m", "input": "x", "timeout": 0}, ValueError, "timeout"),
    ],
)
def test_bad_arguments_fail_at_the_call_site(
    client: runinfra.RunInfra, kwargs: dict[str, Any], error: type[Exception], named: str
) -> None:
    with pytest.raises(error, match=named):
        client.responses.create(**kwargs)


def test_bad_chat_and_client_arguments() -> None:
    refusing = httpx.Client(transport=httpx.MockTransport(refuse))
    client = runinfra.RunInfra(http_client=refusing)
    with pytest.raises(TypeError, match="messages"):
        client.chat.completions.create(model="m", messages="hi")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="max_retries"):
        client.models.list(max_retries=1.5)  # type: ignore[typeddict-item]
    with pytest.raises(ValueError, match="base_url"):
        runinfra.RunInfra(base_url="127.0.0.1:8080")
    with pytest.raises(TypeError, match="timeout"):
        runinfra.RunInfra(timeout="10")  # type: ignore[arg-type]
    with runinfra.SyncChatClient("127.0.0.1:1") as grpc_client:
        with pytest.raises(TypeError, match="messages"):
            grpc_client.chat(model="m", messages=[{"role": "user"}])  # type: ignore[list-item]
        with pytest.raises(TypeError, match="temperature"):
            grpc_client.complete(model="m", messages="x", temperature="hot")  # type: ignore[typeddict-item]


def test_defaults_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNINFRA_BASE_URL", raising=False)
    assert runinfra.RunInfra().base_url == "http://127.0.0.1:8080/v1"
    monkeypatch.setenv("RUNINFRA_BASE_URL", "http://gateway.internal:9000/v1/")
    monkeypatch.setenv("RUNINFRA_API_KEY", "sk-env")
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"object": "list", "data": []})

    client = runinfra.RunInfra(http_client=httpx.Client(transport=httpx.MockTransport(record)))
    assert client.models.list().ids == []
    assert str(seen[0].url) == "http://gateway.internal:9000/v1/models"
    assert seen[0].headers["authorization"] == "Bearer sk-env"
