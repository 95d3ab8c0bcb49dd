"""Items 6, 8 and 9: the idempotency store is bounded by bytes (in total, per tenant, and per
stored reply); an unreadable keys file fails closed; several workers refuse the in-memory
idempotency store."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support import Servers

KEY_A, KEY_B = "sk-bytes-a", "sk-bytes-b"


def post(servers: Servers, key: str, idem: str, text: str) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}", "idempotency-key": idem}
    body = {"model": "stub-echo", "input": text}
    return httpx.post(servers.url + "/v1/responses", json=body, headers=headers, timeout=30)


def replayed(answer: httpx.Response) -> bool:
    return answer.headers.get("idempotent-replayed") == "true"


def test_idempotency_store_is_bounded_by_bytes() -> None:
    servers = Servers(
        api_keys=(KEY_A, KEY_B),
        idempotency_max_reply_bytes=64 * 1024,
        idempotency_max_tenant_bytes=256 * 1024,
        idempotency_max_bytes=400 * 1024,
    )
    words = " ".join(["w"] * 20_000)  # a reply of about 45 KB
    try:
        assert post(servers, KEY_B, "b-1", words).status_code == 200
        for i in range(15):  # tenant A stores about 15 x 45 KB: beyond its share
            assert post(servers, KEY_A, f"a-{i}", words).status_code == 200
        assert not replayed(post(servers, KEY_A, "a-0", words))  # A's oldest went
        assert replayed(post(servers, KEY_A, "a-14", words))  # its newest stayed
        assert replayed(post(servers, KEY_B, "b-1", words))  # B's did not pay for A
        big = " ".join(["w"] * 40_000)  # about 90 KB: answered, not stored
        first = post(servers, KEY_B, "b-big", big)
        again = post(servers, KEY_B, "b-big", big)
        assert first.status_code == again.status_code == 200
        assert not replayed(again) and again.json()["id"] != first.json()["id"]
    finally:
        servers.close()


def test_unreadable_keys_file_fails_closed(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text(f"{KEY_A}\n{KEY_B}\n")
    servers = Servers(api_keys_file=str(keys))
    body = {"model": "stub-echo", "input": "x"}
    try:
        with httpx.Client(base_url=servers.url, timeout=10) as client:
            auth = {"authorization": f"Bearer {KEY_A}"}
            assert client.post("/v1/responses", json=body, headers=auth).status_code == 200
            keys.write_bytes(KEY_B.encode() + b"\n\xff\xfe not utf-8\n")  # A revoked, garbled
            statuses = []
            deadline = time.monotonic() + 4
            while time.monotonic() < deadline:  # the file is re-read within a second
                answer = client.post("/v1/responses", json=body, headers=auth)
                assert answer.headers["x-request-id"].startswith("req_")
                statuses.append(answer.status_code)
                time.sleep(0.05)
            assert 500 not in statuses
            assert statuses[-10:] == [401] * 10, statuses  # A no longer works, consistently
            keys.write_text(f"{KEY_B}\n")  # fixed: B works again
            time.sleep(1.2)
            auth_b = {"authorization": f"Bearer {KEY_B}"}
            assert client.post("/v1/responses", json=body, headers=auth_b).status_code == 200
    finally:
        servers.close()


def test_workers_refuse_the_in_memory_idempotency_store() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "--workers", "2", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 2
    assert "GATEWAY_IDEMPOTENCY_REDIS_URL" in done.stderr
