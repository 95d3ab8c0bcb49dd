"""Items 3 and 4: schemas whose minimal instance would cost without bound get a quick 400
(INVALID_ARGUMENT from the stub), never a 500 or a retryable 429; the stub makes chunks as it
sends them; it keeps no request it served unless a test asks it to."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from runinfra.chat.v1 import chat_service_pb2 as pb
from runinfra.chat.v1 import chat_service_pb2_grpc as pb_grpc
from tests.support import GatewayProcess, Servers, StubProcess


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    s = Servers()
    yield s
    s.close()


def nested_arrays(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "array", "minItems": 2, "items": schema}
    return schema


def fan_out(levels: int, width: int) -> dict[str, Any]:
    defs = {
        f"L{i}": {
            "type": "object",
            "properties": {f"p{j}": {"$ref": f"#/$defs/L{i + 1}"} for j in range(width)},
            "required": [f"p{j}" for j in range(width)],
        }
        for i in range(levels)
    }
    defs[f"L{levels}"] = {"type": "string"}
    return {"$ref": "#/$defs/L0", "$defs": defs}


SCHEMAS: dict[str, dict[str, Any]] = {
    "arrays nested 20 deep": nested_arrays(20),
    "minItems 3e6": {"type": "array", "minItems": 3_000_000, "items": {"type": "integer"}},
    "minLength 3e6": {"type": "string", "minLength": 3_000_000},
    "required fan-out through $defs": fan_out(12, 4),
    "minLength 2**64-1": {"type": "string", "minLength": 18446744073709551615},
    "minLength 1e13": {"type": "string", "minLength": 1e13},
    "minLength 10**13": {"type": "string", "minLength": 10**13},
    "minLength 4e7": {"type": "string", "minLength": 40_000_000},
}


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_costly_schemas_are_a_quick_400(servers: Servers, name: str) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": SCHEMAS[name]}}
    body = {"model": "stub-echo", "messages": [{"role": "user", "content": "x"}]}
    started = time.monotonic()
    answer = httpx.post(
        servers.url + "/v1/chat/completions",
        json={**body, "response_format": fmt},
        timeout=60,
    )
    elapsed = time.monotonic() - started
    assert answer.status_code == 400, answer.text[:300]
    assert "retry-after" not in answer.headers
    assert answer.json()["error"]["type"] == "invalid_request_error"
    assert elapsed < 3, f"took {elapsed:.1f} s"


def test_tool_arguments_share_the_budget(servers: Servers) -> None:
    tools = [
        {"type": "function", "name": f"t{i}", "parameters": nested_arrays(12)} for i in range(20)
    ]
    body = {"model": "stub-echo", "input": "x", "tools": tools, "tool_choice": "required"}
    answer = httpx.post(servers.url + "/v1/responses", json=body, timeout=30)
    assert answer.status_code == 200  # one tool is called: 2**12 strings fit the budget
    body["input"], body["tool_choice"] = " ".join(t["name"] for t in tools), "auto"
    answer = httpx.post(servers.url + "/v1/responses", json=body, timeout=30)
    assert answer.status_code == 400, answer.text[:300]  # twenty of them do not


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        line = next(row for row in status if row.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def test_open_streams_do_not_hold_their_whole_reply(tmp_path: Path) -> None:
    """20 streams of 50,000 words, each read to its first chunk: the stub holds the
    request and the text, not 50,000 chunks per stream (about 500 MB before)."""
    stub = StubProcess(str(tmp_path / "stub.log"))

    async def main() -> float:
        text = " ".join(["word"] * 50_000)
        message = pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text=text)])
        async with grpc.aio.insecure_channel(f"127.0.0.1:{stub.port}") as channel:
            client = pb_grpc.ChatServiceStub(channel)
            await client.ListModels(pb.ListModelsRequest(), timeout=5)
            before = rss_mb(stub.process.pid)
            calls = [
                client.Chat(pb.ChatRequest(model="stub-slow", messages=[message]), timeout=30)
                for _ in range(20)
            ]
            for call in calls:
                assert (await call.read()).text == "word "
            grown = rss_mb(stub.process.pid) - before
            for call in calls:
                call.cancel()
            return grown

    try:
        grown = asyncio.run(main())
    finally:
        stub.stop()
    assert grown < 100, f"the stub grew {grown:.0f} MB"


def test_served_requests_are_not_kept(tmp_path: Path) -> None:
    """`python -m gateway` (the stub embedded) does not grow with the requests it served."""
    gateway = GatewayProcess(str(tmp_path / "gw.log"))
    body = {"model": "stub-echo", "input": "x" * (4 * 1024 * 1024), "max_output_tokens": 1}
    try:
        sizes = []
        with httpx.Client(timeout=30) as client:
            for _ in range(3):
                for _ in range(10):
                    assert client.post(gateway.url + "/v1/responses", json=body).status_code == 200
                sizes.append(rss_mb(gateway.process.pid))
    finally:
        gateway.stop()
    # Kept requests grew it by about 4 MB each (40 MB per round); allow allocator noise.
    assert sizes[2] - sizes[1] < 20, sizes


def test_schemas_over_the_gateway_limit_are_400(servers: Servers) -> None:
    big = {"type": "object", "description": "d" * (1024 * 1024)}
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": big}}
    body = {"model": "stub-echo", "messages": [{"role": "user", "content": "x"}]}
    answer = httpx.post(
        servers.url + "/v1/chat/completions", json={**body, "response_format": fmt}, timeout=30
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == "response_format"
