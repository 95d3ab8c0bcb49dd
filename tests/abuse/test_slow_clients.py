"""Item 2: clients that never finish their headers or body, and one key taking every slot,
against `python -m gateway` (uvicorn with the gateway's own connection settings)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest

from tests.abuse.helpers import closed_within, open_socket, post_head
from tests.support import GatewayProcess

KEY_A, KEY_B = "sk-abuse-a", "sk-abuse-b"
ENV = {
    "GATEWAY_API_KEYS": f"{KEY_A},{KEY_B}",
    "GATEWAY_MAX_IN_FLIGHT": "4",  # a tenant's share is 2
    "GATEWAY_BODY_TIMEOUT": "1.5",
    "GATEWAY_HEADER_TIMEOUT": "1.5",
}
BODY = {"model": "stub-echo", "input": "still served"}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    log = tmp_path_factory.mktemp("slow") / "gw.log"
    process = GatewayProcess(str(log), env=ENV)
    yield process
    process.stop()


def post(gateway: GatewayProcess, key: str, body: dict[str, object] = BODY) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"}
    return httpx.post(gateway.url + "/v1/responses", json=body, headers=headers, timeout=10)


def test_unfinished_bodies_hold_no_slot_and_get_408(gateway: GatewayProcess) -> None:
    socks: list[socket.socket] = []
    try:
        for i in range(8):  # twice the cap, from both tenants
            sock = open_socket(gateway.port)
            sock.sendall(post_head("/v1/responses", 1000, (KEY_A, KEY_B)[i % 2]) + b'{"model":')
            socks.append(sock)
        answers = [post(gateway, key) for key in (KEY_A, KEY_B, KEY_A)]
        assert [a.status_code for a in answers] == [200, 200, 200], answers[-1].text
        for sock in socks:
            closed, received = closed_within(sock, 6)
            assert received.startswith(b"HTTP/1.1 408 "), received[:200]
            assert b'"code":"request_timeout"' in received
            assert closed
    finally:
        for sock in socks:
            sock.close()


def test_dripped_headers_are_cut_off(gateway: GatewayProcess) -> None:
    socks = [open_socket(gateway.port) for _ in range(40)]
    try:
        stop = threading.Event()

        def drip() -> None:  # one byte a tick to every socket, bounded
            for byte in b"POST /v1/responses HTTP/1.1\r\nhost: x\r\nx-slow: ":
                for sock in socks:
                    with contextlib.suppress(OSError):
                        sock.send(bytes([byte]))
                if stop.wait(0.1):
                    return

        dripper = threading.Thread(target=drip, daemon=True)
        dripper.start()
        assert post(gateway, KEY_A).status_code == 200
        outcomes = [closed_within(sock, 5) for sock in socks]
        stop.set()
        dripper.join(10)
        assert all(closed for closed, _ in outcomes)
        assert post(gateway, KEY_B).status_code == 200
    finally:
        for sock in socks:
            sock.close()


def test_one_key_cannot_take_every_slot(gateway: GatewayProcess) -> None:
    slow = {"model": "stub-slow", "input": " ".join(["w"] * 40), "stream": True}  # about 2 s
    headers = {"authorization": f"Bearer {KEY_A}"}
    with httpx.Client(base_url=gateway.url, headers=headers, timeout=10) as client:
        streams = [client.stream("POST", "/v1/responses", json=slow) for _ in range(4)]
        opened = [s.__enter__() for s in streams]
        try:
            statuses = [r.status_code for r in opened]
            assert sorted(statuses) == [200, 200, 429, 429], statuses
            refused = next(r for r in opened if r.status_code == 429)
            refused.read()
            assert "this API key" in refused.json()["error"]["message"]
            assert post(gateway, KEY_B).status_code == 200  # the other tenant is served
        finally:
            for s in streams:
                s.__exit__(None, None, None)
