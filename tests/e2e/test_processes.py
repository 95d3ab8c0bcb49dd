"""The gateway as real processes: SIGTERM drains, two processes share one Redis, logs, bind policy."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from tests.support import GatewayProcess, RedisServer, Servers, free_port


@pytest.fixture()
def backend(servers: Servers) -> str:
    return f"127.0.0.1:{servers.stub.port}"


def test_sigterm_drains_a_running_stream(tmp_path: Path, backend: str) -> None:
    gateway = GatewayProcess(
        str(tmp_path / "gw.log"), "--backend", backend, "--shutdown-grace", "10"
    )
    body = {"model": "stub-slow", "input": " ".join(["w"] * 20), "stream": True}  # ~1 s
    frames: list[str] = []
    started = threading.Event()

    def consume() -> None:
        with httpx.stream("POST", gateway.url + "/v1/responses", json=body, timeout=15) as r:
            for line in r.iter_lines():
                started.set()
                frames.append(line)

    reader = threading.Thread(target=consume)
    reader.start()
    assert started.wait(5)
    gateway.process.send_signal(signal.SIGTERM)
    reader.join(15)
    assert gateway.process.wait(15) == 0
    gateway.stop()
    events = [json.loads(f[6:]) for f in frames if f.startswith("data: ")]
    assert events[-1]["type"] == "response.completed"
    assert events[-1]["response"]["output"][0]["content"][0]["text"].split() == ["w"] * 20


def test_two_processes_share_one_redis(
    tmp_path: Path, backend: str, servers: Servers, redis_server: RedisServer
) -> None:
    env = {"GATEWAY_IDEMPOTENCY_REDIS_URL": redis_server.url, "GATEWAY_API_KEYS": "sk-shared"}
    first = GatewayProcess(str(tmp_path / "a.log"), "--backend", backend, env=env)
    second = GatewayProcess(str(tmp_path / "b.log"), "--backend", backend, env=env)
    try:
        headers = {"authorization": "Bearer sk-shared", "idempotency-key": "two-processes"}
        body = {"model": "stub-echo", "input": "run me once"}
        original = httpx.post(first.url + "/v1/responses", json=body, headers=headers, timeout=10)
        calls = len(servers.stub.service.calls)
        retry = httpx.post(second.url + "/v1/responses", json=body, headers=headers, timeout=10)
    finally:
        assert first.stop() == 0
        assert second.stop() == 0
    assert original.status_code == retry.status_code == 200
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json()["id"] == original.json()["id"]
    assert len(servers.stub.service.calls) == calls  # the second process did not run it again


def test_logs_are_json_lines_without_keys_or_prompts(tmp_path: Path, backend: str) -> None:
    gateway = GatewayProcess(
        str(tmp_path / "gw.log"), "--backend", backend, env={"GATEWAY_API_KEYS": "sk-very-secret"}
    )
    r = httpx.post(
        gateway.url + "/v1/responses",
        json={"model": "stub-echo", "input": "a private prompt"},
        headers={"authorization": "Bearer sk-very-secret", "x-client-request-id": "cli-7"},
        timeout=10,
    )
    assert gateway.stop() == 0
    logs = gateway.logs()
    records = [json.loads(line) for line in logs.splitlines() if line.strip()]  # every line is JSON
    [access] = [r for r in records if r["event"] == "request" and r["path"] == "/v1/responses"]
    assert access["request_id"] == r.headers["x-request-id"]
    assert access["client_request_id"] == "cli-7"
    assert access["status"] == 200
    assert access["tenant"].startswith("key_")
    assert "sk-very-secret" not in logs
    assert "private prompt" not in logs


def test_public_bind_without_keys_is_refused() -> None:
    cmd = [sys.executable, "-m", "gateway", "--host", "0.0.0.0", "--port", str(free_port())]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "refusing" in result.stderr and "allow-unauthenticated-public-bind" in result.stderr


def test_embedded_stub_by_default(tmp_path: Path) -> None:
    gateway = GatewayProcess(str(tmp_path / "gw.log"))
    try:
        r = httpx.post(
            gateway.url + "/v1/responses",
            json={"model": "default", "input": "embedded"},
            timeout=10,
        )
        assert r.json()["output"][0]["content"][0]["text"] == "embedded"
        assert httpx.get(gateway.url + "/readyz", timeout=5).status_code == 200
    finally:
        assert gateway.stop() == 0


def test_workers_serve_one_port_as_one(
    tmp_path: Path, backend: str, servers: Servers, redis_server: RedisServer
) -> None:
    env = {"GATEWAY_IDEMPOTENCY_REDIS_URL": redis_server.url}
    gateway = GatewayProcess(
        str(tmp_path / "gw.log"), "--backend", backend, "--workers", "2", env=env
    )
    try:
        body = {"model": "stub-echo", "input": "once across workers"}
        headers = {"idempotency-key": "workers"}
        answers = [
            httpx.post(gateway.url + "/v1/responses", json=body, headers=headers, timeout=10)
            for _ in range(30)
        ]
        scrapes = [httpx.get(gateway.url + "/metrics", timeout=10).text for _ in range(6)]
    finally:
        gateway.stop()
    counted = 'gateway_requests_total{route="/v1/responses",status="200"} 30.0'
    assert all(counted in text for text in scrapes), "every scrape counts both workers' requests"
    assert {a.json()["id"] for a in answers} == {answers[0].json()["id"]}  # ran once
    assert sum(1 for a in answers if a.headers.get("idempotent-replayed") == "true") == 29
    records = [json.loads(line) for line in gateway.logs().splitlines() if line.startswith("{")]
    pids = {r["pid"] for r in records if r["event"] == "request" and r["path"] == "/v1/responses"}
    assert len(pids) == 2, "both worker processes answered"
