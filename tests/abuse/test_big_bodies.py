"""Item 1: work that grows with the request. Bodies at the size limit (32 MiB, the default)
built to cost the most, against `python -m gateway` with its embedded stub: each answers a
clear 400 naming the param (or is served, when within the limits), and `/healthz` keeps
answering in under 100 ms meanwhile.

The machine the tests run on is shared: a probe can wait for a CPU for reasons of its own.
So a body gets up to five runs, a second apart, and one run whose slowest probe is under
100 ms passes it; a loop that stalls while the body is processed (0.2 to 10 s before these
fixes) fails them all."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.abuse.helpers import HealthProbe
from tests.support import GatewayProcess

LIMIT = 32 * 1024 * 1024


def fill(head: bytes, item: bytes, tail: bytes) -> bytes:
    """`head item,item,...,item tail`, as close to the body limit as fits."""
    count = (LIMIT - len(head) - len(tail)) // (len(item) + 1)
    return head + b",".join([item] * count) + tail


def tools(n: int) -> bytes:
    return b",".join(b'{"type":"function","name":"t%d"}' % i for i in range(n))


# name -> (path, body maker, status, param of the 400)
BODIES: dict[str, tuple[str, Callable[[], bytes], int, str | None]] = {
    "one-word chat messages": (
        "/v1/chat/completions",
        lambda: fill(b'{"model":"stub-echo","messages":[', b'{"role":"user","content":"w"}', b"]}"),
        400,
        "messages",
    ),
    "input_text parts in one message": (
        "/v1/responses",
        lambda: fill(
            b'{"model":"stub-echo","input":[{"role":"user","content":[',
            b'{"type":"input_text","text":"w"}',
            b"]}]}",
        ),
        400,
        "input[0].content",
    ),
    "6,000 tools and an allowed_tools list": (
        "/v1/responses",
        lambda: (
            b'{"model":"stub-echo","input":"t1","tools":[%s],"tool_choice":'
            b'{"type":"allowed_tools","mode":"auto","tools":[%s]}}' % (tools(6000), tools(6000))
        ),
        400,
        "tools",
    ),
    "empty arrays in metadata": (
        "/v1/responses",
        lambda: fill(b'{"model":"stub-echo","input":"x","metadata":[', b"[]", b"]}"),
        400,
        "metadata",
    ),
    # Served: 2,000 messages of 1,750 words and a 4 MB last one, echoed. (The reply's JSON is
    # encoded on the loop, a few ms per MB: a 16 MB echo passes on a quiet machine, not on a
    # busy shared one.)
    "2,000 messages and a 4 MB reply": (
        "/v1/chat/completions",
        lambda: (
            b'{"model":"stub-echo","messages":[%s,{"role":"user","content":"%s"}]}'
            % (
                b",".join([b'{"role":"user","content":"%s"}' % (b"w " * 7000)] * 2000),
                b"w " * 2_000_000,
            )
        ),
        200,
        None,
    ),
}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    process = GatewayProcess(str(tmp_path_factory.mktemp("big") / "gw.log"))
    yield process
    process.stop()


@pytest.mark.parametrize("name", list(BODIES))
def test_healthz_answers_while_the_worst_body_is_processed(
    gateway: GatewayProcess, name: str
) -> None:
    path, make, status, param = BODIES[name]
    body = make()
    assert len(body) <= LIMIT
    worst: list[float] = []
    for attempt in range(5):
        time.sleep(attempt and 1.0)
        with HealthProbe(gateway.port) as probe:
            answer = httpx.post(
                gateway.url + path,
                content=body,
                headers={"content-type": "application/json"},
                timeout=60,
            )
        assert answer.status_code == status, answer.text[:500]
        if param is not None:
            assert answer.json()["error"]["param"] == param
        assert probe.failures == 0
        assert len(probe.latencies) >= 2
        worst.append(probe.worst)
        if probe.worst < 0.1:
            return
    pytest.fail(f"/healthz took {[round(w * 1000) for w in worst]} ms at worst in each run")


def test_the_parse_worker_does_not_outlive_a_killed_gateway(tmp_path: Path) -> None:
    gateway = GatewayProcess(str(tmp_path / "gw.log"))
    try:
        workers = wait_for_children(gateway.process.pid)
        assert workers, "the gateway starts its parse worker"
        gateway.process.kill()
        gateway.process.wait(10)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(Path(f"/proc/{w}").exists() for w in workers):
            time.sleep(0.1)
        assert not [w for w in workers if Path(f"/proc/{w}").exists()], "orphaned workers"
    finally:
        gateway.stop()


def wait_for_children(pid: int) -> list[int]:
    """The process ids of `pid`'s children, once it has some (bounded)."""
    for _ in range(100):
        found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        if found:
            return [int(c) for c in found]
        time.sleep(0.05)
    return []
