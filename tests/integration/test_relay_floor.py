"""The benchmark's relay floor (bench/relay_floor.py) really relays: its figures are the
baseline of every gateway ratio, so a broken floor would make them meaningless."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from backend_stub.server import RunningStub, start
from bench.relay_floor import create_app
from tests.support import LoopThread, ServedApp

WORDS = " ".join(f"w{i}" for i in range(40))


@pytest.fixture(scope="module")
def relay() -> Iterator[tuple[ServedApp, RunningStub]]:
    thread = LoopThread()
    stub = thread.run(start("127.0.0.1", 0))
    served = ServedApp(thread, create_app(f"127.0.0.1:{stub.port}"))
    yield served, stub
    served.close()
    thread.run(stub.stop(0))
    thread.close()


def test_relays_a_buffered_reply_and_a_stream(relay: tuple[ServedApp, RunningStub]) -> None:
    served, _ = relay
    with httpx.Client(base_url=served.url, timeout=10) as c:
        whole = c.post("/v1/responses", json={"model": "stub-echo", "input": WORDS})
        assert whole.json() == {"text": WORDS}
        body = {"model": "stub-echo", "input": WORDS, "stream": True}
        with c.stream("POST", "/v1/responses", json=body) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            frames = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert len(frames) == 40
    assert "".join(frames) == WORDS


def test_disconnect_cancels_the_call(relay: tuple[ServedApp, RunningStub]) -> None:
    served, stub = relay
    body = {"model": "stub-slow", "input": WORDS, "stream": True}
    with (
        httpx.Client(base_url=served.url, timeout=10) as c,
        c.stream("POST", "/v1/responses", json=body) as r,
    ):
        next(line for line in r.iter_lines() if line.startswith("data: "))
    # The relay sends no request id: the stub records the cancellation under "".
    assert stub.service.wait_cancelled("", timeout=2.0)
