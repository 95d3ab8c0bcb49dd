"""Raw-socket clients for the abuse tests: what a misbehaving client sends, bounded in time."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable


def open_socket(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.settimeout(5)
    return sock


def post_head(path: str, length: int, key: str | None = None) -> bytes:
    auth = f"authorization: Bearer {key}\r\n" if key else ""
    return (
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        f"{auth}content-length: {length}\r\n\r\n"
    ).encode()


def closed_within(sock: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """Whether the server closed `sock` within `seconds`, and what it sent before."""
    sock.settimeout(0.2)
    received = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            return True, received
        if not data:
            return True, received
        received += data
    return False, received


_PROBE = """
import json, os, socket, sys, time
port, every, bound, stop = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
request = b"GET /healthz HTTP/1.1\\r\\nhost: 127.0.0.1\\r\\n\\r\\n"
latencies, failures, ends = [], 0, time.monotonic() + bound


def probe(sock):
    sock.sendall(request)
    answer = b""
    while not answer.endswith(b'{"status":"ok"}'):
        data = sock.recv(4096)
        if not data:
            raise ConnectionError("closed")
        answer += data
    return answer.startswith(b"HTTP/1.1 200 ")


sock = socket.create_connection(("127.0.0.1", port), timeout=30)
print("ready", flush=True)
while time.monotonic() < ends and not os.path.exists(stop):
    started = time.perf_counter()
    try:
        failures += not probe(sock)
    except OSError:
        failures += 1
        sock.close()
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    latencies.append(time.perf_counter() - started)
    time.sleep(every)
print(json.dumps({"latencies": latencies, "failures": failures}), flush=True)
"""


class HealthProbe:
    """Polls /healthz from its own process (so that the test process's own work cannot
    delay it) over one kept-alive connection, and records every latency."""

    def __init__(self, port: int, every: float = 0.02, bound: float = 120.0) -> None:
        self._dir = tempfile.TemporaryDirectory()
        self._stop = os.path.join(self._dir.name, "stop")
        self.args = [sys.executable, "-c", _PROBE, str(port), str(every), str(bound), self._stop]
        self.latencies: list[float] = []
        self.failures = 0

    def __enter__(self) -> HealthProbe:
        self.process = subprocess.Popen(self.args, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "ready"
        return self

    def __exit__(self, *_: object) -> None:
        open(self._stop, "w").close()
        out, _ = self.process.communicate(timeout=60)
        self._dir.cleanup()
        result = json.loads(out.strip().splitlines()[-1])
        self.latencies, self.failures = result["latencies"], result["failures"]

    @property
    def worst(self) -> float:
        return max(self.latencies)


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()
