"""Item 11: clients get clean messages, not backend internals (those go to the log under
the request id); a backend's message for a client error still reaches them; ids do not
count the gateway's requests."""

from __future__ import annotations

import itertools
import logging

import httpx
import pytest

from gateway.app import create_app
from gateway.config import Settings
from tests.support import LoopThread, ServedApp, Servers, free_port


def test_backend_down_leaks_no_address(caplog: pytest.LogCaptureFixture) -> None:
    thread = LoopThread()
    port = free_port()  # nothing listens here
    app = ServedApp(thread, create_app(Settings(backend=f"127.0.0.1:{port}", backend_retries=0)))
    try:
        with caplog.at_level(logging.WARNING, logger="gateway"):
            answer = httpx.post(
                app.url + "/v1/responses", json={"model": "stub-echo", "input": "x"}, timeout=10
            )
    finally:
        app.close()
        thread.close()
    assert answer.status_code == 503
    message = answer.json()["error"]["message"]
    assert str(port) not in message and "127.0.0.1" not in message and "ipv4" not in message
    logged = [
        r for r in caplog.records if getattr(r, "fields", {}).get("grpc_code") == "UNAVAILABLE"
    ]
    assert logged and logged[0].fields["request_id"] == answer.headers["x-request-id"]  # type: ignore[attr-defined]


def test_backend_client_errors_keep_their_message() -> None:
    servers = Servers()
    try:
        answer = httpx.post(
            servers.url + "/v1/responses", json={"model": "no-such-model", "input": "x"}, timeout=10
        )
        assert answer.status_code == 404
        assert "no-such-model" in answer.json()["error"]["message"]
        answer = httpx.post(
            servers.url + "/v1/responses", json={"model": "stub-fail-mid", "input": "a b c"}
        )
        assert answer.status_code == 500
        assert "stub:" not in answer.json()["error"]["message"]  # INTERNAL: a clean message
    finally:
        servers.close()


def test_ids_do_not_count_requests() -> None:
    servers = Servers()
    try:
        with httpx.Client(base_url=servers.url, timeout=10) as client:
            ids = [client.get("/healthz").headers["x-request-id"] for _ in range(20)]
    finally:
        servers.close()
    tails = [int(i[-12:], 16) for i in ids]
    steps = {b - a for a, b in itertools.pairwise(tails)}
    assert len(set(tails)) == 20
    assert steps != {1} and max(abs(s) for s in steps) > 2**20  # no visible counter
