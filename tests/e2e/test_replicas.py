"""Two stub replicas behind one gateway: calls spread round-robin; killing one mid-load loses
no request that had not begun streaming (health checks plus the retry before the first chunk)."""

from __future__ import annotations

import json
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from gateway.app import create_app
from gateway.backend import channel_target
from gateway.config import Settings
from tests.support import LoopThread, ServedApp, StubProcess


def test_channel_target() -> None:
    assert channel_target("127.0.0.1:5") == "127.0.0.1:5"
    assert channel_target("dns:///chat.internal:50051") == "dns:///chat.internal:50051"
    assert channel_target("127.0.0.1:5, 127.0.0.1:6") == "ipv4:127.0.0.1:5,127.0.0.1:6"
    assert channel_target("[::1]:5,[::1]:6") == "ipv6:[::1]:5,[::1]:6"


def run_stream(http: httpx.Client, i: int) -> tuple[bool, str]:
    """(began streaming, how it ended) for one streamed request."""
    body = {"model": "stub-echo", "input": " ".join(f"w{i}" for _ in range(8)), "stream": True}
    began, last = False, "none"
    try:
        with http.stream("POST", "/v1/responses", json=body) as r:
            if r.status_code != 200:
                return False, f"http {r.status_code}"
            for line in r.iter_lines():
                if line.startswith("data: "):
                    event = json.loads(line[6:])
                    began = began or event["type"] == "response.output_text.delta"
                    last = event["type"]
    except httpx.HTTPError as exc:
        return began, f"transport {exc!r}"
    return began, last


def test_killing_a_replica_loses_no_unstarted_request(tmp_path: Path) -> None:
    replicas = [
        StubProcess(str(tmp_path / f"stub{i}.log"), "--chunk-delay", "0.002") for i in range(2)
    ]
    backend = ",".join(f"127.0.0.1:{r.port}" for r in replicas)
    thread = LoopThread()
    gateway = ServedApp(thread, create_app(Settings(backend=backend)))
    done = 0
    lock = threading.Lock()
    killed = threading.Event()

    def one(i: int) -> tuple[bool, str]:
        nonlocal done
        result = run_stream(http, i)
        with lock:
            done += 1
            if done == 80 and not killed.is_set():
                replicas[0].process.send_signal(signal.SIGKILL)
                killed.set()
        return result

    try:
        with httpx.Client(base_url=gateway.url, timeout=20) as http, ThreadPoolExecutor(8) as pool:
            results = list(pool.map(one, range(200)))
    finally:
        gateway.close()
        thread.close()
        for replica in replicas:
            replica.stop(signal.SIGKILL)
    assert killed.is_set()
    lost = [(began, end) for began, end in results if end != "response.completed"]
    assert all(began for began, _ in lost), f"requests lost before streaming: {lost}"
    assert len(lost) <= 8  # at most the streams in flight on the killed replica
    shares = [replicas[0].served(), replicas[1].served()]
    assert min(shares) >= 20, shares  # both replicas served a share
    assert sum(shares) >= 200 - len(lost)
