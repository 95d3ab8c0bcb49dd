"""The subtle concurrency code, below the e2e tier: the disconnect watcher
(gateway.streaming.CancelledOnDisconnect) and the idempotency flow (gateway.idempotency.run_once)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from gateway.errors import GatewayError
from gateway.idempotency import MemoryStore, Stored, run_once
from gateway.streaming import CancelledOnDisconnect


def run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(body(), timeout=5))


class Client:
    """An ASGI `receive` fed by the test."""

    def __init__(self) -> None:
        self.messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def receive(self) -> dict[str, Any]:
        return await self.messages.get()

    def disconnect(self) -> None:
        self.messages.put_nowait({"type": "http.disconnect"})


# --- CancelledOnDisconnect ----------------------------------------------------------------


def test_a_disconnect_cancels_the_block_and_becomes_a_499() -> None:
    async def body() -> None:
        client = Client()
        asyncio.get_running_loop().call_later(0.02, client.disconnect)
        with pytest.raises(GatewayError) as caught, CancelledOnDisconnect(client.receive):
            await asyncio.sleep(5)
        assert caught.value.status == 499
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0  # the cancellation was taken back
        await asyncio.sleep(0)  # and the task goes on normally

    run(body)


def test_other_messages_do_not_cancel() -> None:
    async def body() -> None:
        client = Client()
        client.messages.put_nowait({"type": "http.request", "body": b"", "more_body": False})
        with CancelledOnDisconnect(client.receive):
            await asyncio.sleep(0.05)

    run(body)


def test_a_block_that_ends_stops_its_watcher() -> None:
    async def body() -> None:
        client = Client()
        watcher = CancelledOnDisconnect(client.receive)
        with watcher:
            await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert watcher.watcher.cancelled()
        client.disconnect()  # too late to matter
        await asyncio.sleep(0.02)

    run(body)


def test_a_cancellation_from_outside_is_not_swallowed() -> None:
    async def body() -> None:
        client = Client()

        async def serve() -> None:
            with CancelledOnDisconnect(client.receive):
                await asyncio.sleep(5)

        task = asyncio.ensure_future(serve())
        await asyncio.sleep(0.02)
        task.cancel()  # shutdown, say: not the client's doing
        with pytest.raises(asyncio.CancelledError):
            await task

    run(body)


# --- run_once -----------------------------------------------------------------------------


def store() -> MemoryStore:
    return MemoryStore(ttl=60, running_ttl=60)


def reply(status: int, body: bytes = b"{}") -> Stored:
    return Stored(status, {"content-type": "application/json"}, body, f"req_{status}")


class Runs:
    """A run() that counts its calls and answers `status`."""

    def __init__(self, status: int = 200, delay: float = 0.0) -> None:
        self.calls = 0
        self.status = status
        self.delay = delay

    async def __call__(self) -> Stored:
        self.calls += 1
        await asyncio.sleep(self.delay)
        return reply(self.status, b'{"n": %d}' % self.calls)


def test_the_first_run_is_stored_and_replayed() -> None:
    async def body() -> None:
        s, runs = store(), Runs()
        first = await run_once(s, "k", "fp", runs)
        again = await run_once(s, "k", "fp", runs)
        assert (first[1], again[1]) == (False, True)
        assert again[0] == first[0] and runs.calls == 1

    run(body)


def test_another_body_is_a_422() -> None:
    async def body() -> None:
        s = store()
        await run_once(s, "k", "fp", Runs())
        with pytest.raises(GatewayError) as caught:
            await run_once(s, "k", "other", Runs())
        assert (caught.value.status, caught.value.code) == (422, "idempotency_key_reused")

    run(body)


def test_a_retry_while_the_first_runs_is_a_409_and_does_not_run() -> None:
    async def body() -> None:
        s, slow, retry = store(), Runs(delay=0.1), Runs()
        first = asyncio.ensure_future(run_once(s, "k", "fp", slow))
        await asyncio.sleep(0.02)
        with pytest.raises(GatewayError) as caught:
            await run_once(s, "k", "fp", retry)
        assert caught.value.status == 409 and caught.value.headers["retry-after"] == "1"
        assert retry.calls == 0
        assert (await first)[1] is False

    run(body)


@pytest.mark.parametrize("status", [408, 409, 429, 499, 500, 503])
def test_transient_answers_are_not_stored(status: int) -> None:
    async def body() -> None:
        s, failing, ok = store(), Runs(status), Runs(200)
        assert (await run_once(s, "k", "fp", failing))[0].status == status
        result, replayed = await run_once(s, "k", "fp", ok)
        assert (result.status, replayed, ok.calls) == (200, False, 1)

    run(body)


@pytest.mark.parametrize("status", [200, 400, 404, 422])
def test_completed_answers_are_stored(status: int) -> None:
    async def body() -> None:
        s = store()
        await run_once(s, "k", "fp", Runs(status))
        result, replayed = await run_once(s, "k", "fp", Runs(200))
        assert (result.status, replayed) == (status, True)

    run(body)


def test_a_run_that_raises_frees_the_key() -> None:
    async def body() -> None:
        s = store()

        async def crash() -> Stored:
            raise asyncio.CancelledError  # the client left, say

        with pytest.raises(asyncio.CancelledError):
            await run_once(s, "k", "fp", crash)
        runs = Runs()
        assert (await run_once(s, "k", "fp", runs))[1] is False and runs.calls == 1

    run(body)
