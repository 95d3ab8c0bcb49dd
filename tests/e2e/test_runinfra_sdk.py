"""The runinfra SDK against the real gateway (uvicorn on 127.0.0.1) and the real stub: retries
under the stub's fault models, request ids, replays, streams and their failures."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import runinfra
from tests.support import GatewayProcess, Servers, poll

USER = [{"role": "user", "content": "one two three four"}]


class Attempts:
    """The headers of every HTTP attempt a client sends (an httpx event hook)."""

    def __init__(self) -> None:
        self.headers: list[httpx.Headers] = []

    def __call__(self, request: httpx.Request) -> None:
        self.headers.append(request.headers)

    def values(self, name: str) -> list[str | None]:
        return [h.get(name) for h in self.headers]


@pytest.fixture()
def attempts() -> Attempts:
    return Attempts()


@pytest.fixture()
def sdk(servers: Servers, attempts: Attempts) -> Iterator[runinfra.RunInfra]:
    http = httpx.Client(event_hooks={"request": [attempts]})
    with runinfra.RunInfra(base_url=servers.url + "/v1", timeout=30, http_client=http) as client:
        yield client


def backend_requests(servers: Servers, client_request_id: str) -> list[dict[str, str]]:
    """The gRPC metadata of every backend call made for this client request id."""
    metadata = servers.stub.service.call_metadata
    return [m for m in metadata if m.get("x-client-request-id") == client_request_id]


# --- retries ------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["key-fixed-1", runinfra.AUTO], ids=["given", "auto"])
def test_keyed_call_is_retried_with_the_same_key_and_id(
    servers: Servers, sdk: runinfra.RunInfra, attempts: Attempts, key: str | runinfra.params.Auto
) -> None:
    response = sdk.responses.create(
        model="stub-fail-first-attempt", input="second time lucky", idempotency_key=key
    )
    assert response.output_text == "second time lucky"
    assert not response.replayed
    # Two HTTP attempts with one key and one client request id ...
    keys, ids = attempts.values("idempotency-key"), attempts.values("x-client-request-id")
    assert len(keys) == 2 and keys[0] == keys[1] and keys[0] is not None
    assert key is runinfra.AUTO or keys[0] == key
    assert len(set(ids)) == 1 and ids[0] == response.info.client_request_id
    # ... reached the backend as two gateway requests (the 503 was not stored and replayed),
    # each carrying the key and the client's id; the second was served.
    calls = backend_requests(servers, response.info.client_request_id or "")
    gateway_ids = list(dict.fromkeys(m["x-request-id"] for m in calls))
    assert len(gateway_ids) == 2 and gateway_ids[-1] == response.request_id
    assert {m["idempotency-key"] for m in calls} == {keys[0]}


def test_unkeyed_call_is_not_retried(
    servers: Servers, sdk: runinfra.RunInfra, attempts: Attempts
) -> None:
    with pytest.raises(runinfra.ServiceUnavailableError) as info:
        sdk.responses.create(model="stub-fail-first-attempt", input="hi", request_id="mine-503")
    error = info.value
    assert len(attempts.headers) == 1
    assert (error.status, error.code, error.retryable) == (503, "service_unavailable", True)
    assert error.client_request_id == "mine-503" and "mine-503" in str(error)
    assert error.request_id is not None and error.request_id.startswith("req_")
    assert error.request_id in str(error)
    assert {m["x-request-id"] for m in backend_requests(servers, "mine-503")} == {error.request_id}


def test_rate_limited_keyed_call_retries_up_to_max_retries_after_retry_after(
    sdk: runinfra.RunInfra, attempts: Attempts
) -> None:
    started = time.monotonic()
    with pytest.raises(runinfra.RateLimitError) as info:
        sdk.chat.completions.create(
            model="stub-rate-limited", messages=USER, idempotency_key=runinfra.AUTO, max_retries=2
        )
    elapsed = time.monotonic() - started
    assert len(attempts.headers) == 3  # the first attempt and max_retries more
    assert len(set(attempts.values("idempotency-key"))) == 1
    assert info.value.retry_after == 1.0 and info.value.status == 429
    assert 2.0 <= elapsed < 10  # waited retry-after (1 s) before each retry


def test_a_retry_while_the_first_attempt_runs_waits_for_its_answer(servers: Servers) -> None:
    """409 (the key's first request is still running) is retried after retry-after, until
    the first has finished and its answer is replayed: the backend ran once."""
    words = " ".join(f"w{i}" for i in range(30))  # stub-slow: 1.5 s

    async def main() -> tuple[runinfra.types.Response, runinfra.types.Response]:
        async with runinfra.AsyncRunInfra(base_url=servers.url + "/v1", max_retries=4) as c:
            first = asyncio.create_task(
                c.responses.create(model="stub-slow", input=words, idempotency_key="busy-1")
            )
            await asyncio.sleep(0.3)
            second = await c.responses.create(
                model="stub-slow", input=words, idempotency_key="busy-1"
            )
            return await first, second

    first, second = asyncio.run(main())
    assert (first.replayed, second.replayed) == (False, True)
    assert second.id == first.id and second.output_text == words
    calls = servers.stub.service.call_metadata
    assert [m.get("idempotency-key") for m in calls].count("busy-1") == 1


def test_a_stream_is_sent_once_even_with_a_key(sdk: runinfra.RunInfra, attempts: Attempts) -> None:
    with pytest.raises(runinfra.ServiceUnavailableError):
        sdk.responses.create(
            model="stub-fail-first-attempt", input="x", stream=True, idempotency_key=runinfra.AUTO
        )
    assert len(attempts.headers) == 1


def test_a_replayed_answer_says_so(sdk: runinfra.RunInfra, attempts: Attempts) -> None:
    first = sdk.responses.create(model="stub-echo", input="once only", idempotency_key="replay-1")
    again = sdk.responses.create(model="stub-echo", input="once only", idempotency_key="replay-1")
    assert (first.replayed, again.replayed) == (False, True)
    assert again.id == first.id and again.request_id == first.request_id
    assert again.info.client_request_id != first.info.client_request_id  # two logical calls


def test_gateway_timeout_is_typed() -> None:
    local = Servers(request_timeout=0.01)
    try:
        with (
            runinfra.RunInfra(base_url=local.url + "/v1", max_retries=0) as client,
            pytest.raises(runinfra.GatewayTimeoutError) as info,
        ):
            client.responses.create(model="stub-slow", input="a b c d e f")
        assert info.value.status == 504 and info.value.code == "timeout"
    finally:
        local.close()


# --- streams ------------------------------------------------------------------------------


def test_failed_stream_raises_stream_error_after_the_partial_text(
    sdk: runinfra.RunInfra, attempts: Attempts
) -> None:
    seen: list[str] = []
    key = runinfra.AUTO
    stream = sdk.responses.create(
        model="stub-fail-mid", input="one two three four", stream=True, idempotency_key=key
    )
    with pytest.raises(runinfra.StreamError) as info, stream:
        seen.extend(stream.text_deltas())
    assert seen == ["one ", "two "] and info.value.partial_text == "one two "
    assert info.value.code == "server_error" and not info.value.retryable
    assert info.value.request_id == stream.request_id and len(attempts.headers) == 1


def test_failed_chat_stream_raises_stream_error(sdk: runinfra.RunInfra) -> None:
    with (
        pytest.raises(runinfra.StreamError) as info,
        sdk.chat.completions.create(model="stub-fail-mid", messages=USER, stream=True) as stream,
    ):
        stream.final_completion()
    assert info.value.partial_text == "one two "
    # INTERNAL is the backend's own failure: a clean message; the details go to the log.
    assert info.value.message == "The backend failed while processing your request."


def test_closing_a_stream_cancels_the_backend_call(
    servers: Servers, sdk: runinfra.RunInfra
) -> None:
    words = " ".join(f"w{i}" for i in range(200))
    with sdk.responses.create(model="stub-slow", input=words, stream=True) as stream:
        first = next(stream.text_deltas())
    assert first == "w0 "
    assert stream.request_id is not None
    assert servers.stub.service.wait_cancelled(stream.request_id, 5)


def test_stream_and_final_response(sdk: runinfra.RunInfra) -> None:
    with sdk.responses.create(model="stub-echo", input="Hello there", stream=True) as stream:
        types = [event.type for event in stream]
        final = stream.final_response()
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert final.output_text == "Hello there" and final.status == "completed"
    with sdk.responses.create(
        model="stub-echo", input="a b c", stream=True, max_output_tokens=1
    ) as stream:
        assert stream.final_response().incomplete_reason == "max_output_tokens"


def test_async_client(servers: Servers) -> None:
    async def main() -> None:
        async with runinfra.AsyncRunInfra(base_url=servers.url + "/v1", timeout=30) as client:
            response = await client.responses.create(
                model="stub-fail-first-attempt", input="async retry", idempotency_key=runinfra.AUTO
            )
            assert response.output_text == "async retry"
            stream = await client.chat.completions.create(
                model="stub-echo",
                messages=USER,
                stream=True,
                stream_options={"include_usage": True},
            )
            async with stream:
                final = await stream.final_completion()
            assert final.output_text == "one two three four" and final.usage is not None
            failing = await client.responses.create(
                model="stub-fail-mid", input="x y z", stream=True
            )
            with pytest.raises(runinfra.StreamError) as info:
                async with failing:
                    _ = [d async for d in failing.text_deltas()]
            assert info.value.partial_text == "x y "
            assert "stub-echo" in (await client.models.list()).ids

    asyncio.run(main())


# --- request ids ----------------------------------------------------------------------------


def test_the_callers_request_id_travels_to_the_backend(
    servers: Servers, sdk: runinfra.RunInfra
) -> None:
    completion = sdk.chat.completions.create(model="stub-echo", messages=USER, request_id="trace-7")
    assert completion.info.client_request_id == "trace-7"
    assert completion.request_id is not None and completion.request_id.startswith("req_")
    [metadata] = backend_requests(servers, "trace-7")
    assert metadata["x-request-id"] == completion.request_id


@pytest.mark.parametrize(
    ("header", "value"),
    [("x-client-request-id", "tab\tinside"), ("idempotency-key", "k" * 300)],
)
def test_unforwardable_header_values_stay_out_of_the_metadata(
    servers: Servers, header: str, value: str
) -> None:
    body = {"model": "stub-echo", "input": "fine", "stream": True}
    reply = httpx.post(servers.url + "/v1/responses", json=body, headers={header: value})
    assert reply.status_code == 200
    metadata = [
        m
        for m in servers.stub.service.call_metadata
        if m.get("x-request-id") == reply.headers["x-request-id"]
    ]
    assert len(metadata) == 1 and header not in metadata[0]


def logged_client_ids(gateway: GatewayProcess) -> set[str]:
    lines = [json.loads(x) for x in gateway.logs().splitlines() if x.startswith("{")]
    return {x["client_request_id"] for x in lines if x.get("client_request_id")}


def test_a_killed_gateway_is_a_connection_error_naming_the_client_request_id(
    tmp_path: Path,
) -> None:
    gateway = GatewayProcess(str(tmp_path / "gateway.log"))
    try:
        with runinfra.RunInfra(base_url=gateway.url + "/v1", max_retries=1) as client:
            client.responses.create(model="stub-echo", input="hi", request_id="before-kill")
            # The access-log line is written once the answer is sent: wait for it.
            assert poll(lambda: "before-kill" in logged_client_ids(gateway), timeout=5)
            gateway.process.kill()
            gateway.process.wait(10)
            with pytest.raises(runinfra.APIConnectionError) as info:
                client.responses.create(model="stub-echo", input="hi", request_id="after-kill")
    finally:
        gateway.stop()
    assert info.value.client_request_id == "after-kill" and "after-kill" in str(info.value)
    assert info.value.request_id is None and not info.value.request_sent


def test_reasoning_reaches_the_typed_results(sdk: runinfra.RunInfra) -> None:
    response = sdk.responses.create(
        model="stub-think", input="deep question", reasoning={"effort": "high"}
    )
    assert response.reasoning_text == "Thinking about: deep question"
    assert response.output_text == "deep question"
    with sdk.chat.completions.create(
        model="stub-think",
        messages=[{"role": "user", "content": "why"}],
        reasoning_effort="low",
        stream=True,
    ) as stream:
        message = stream.final_completion().choices[0].message
    assert (message.reasoning_content, message.content) == ("Thinking about: why", "why")
