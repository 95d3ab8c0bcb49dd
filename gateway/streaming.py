"""Serving a reply as it is made: SSE written straight to ASGI `send`, and the watcher that
turns a client's disconnect into the cancellation of the task serving it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any, ClassVar, Generic, TypeVar

from starlette.types import Receive, Scope, Send

from gateway.errors import BackendError, GatewayError, internal_error
from gateway.metrics import Metrics
from gateway.translate.builder import StreamBuilder

log = logging.getLogger("gateway")
C = TypeVar("C")  # what the stream yields: a ChatChunk, or (choice index, ChatChunk)


class CancelledOnDisconnect:
    """Inside the block, a client that goes away cancels this task (and so the backend call),
    which then raises a 499 GatewayError. One watcher task per request, the least the ASGI
    interface allows. A cancellation from outside (shutdown) is not ours, and propagates."""

    __slots__ = ("receive", "task", "watcher")

    def __init__(self, receive: Receive) -> None:
        self.receive = receive

    def __enter__(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.task = task
        self.watcher = asyncio.ensure_future(_cancel_on_disconnect(self.receive, task))

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        watcher = self.watcher
        watcher.cancel()  # no-op once it is done
        # Cancelled by the watcher, not from outside (shutdown: not ours to swallow).
        if kind is asyncio.CancelledError and watcher.done() and not watcher.cancelled():
            self.task.uncancel()
            raise GatewayError(
                "Client closed the request.", status=499, code="client_closed_request"
            ) from None


async def _cancel_on_disconnect(receive: Receive, task: asyncio.Task[Any]) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    task.cancel()


class EventStream(Generic[C]):
    """The builder's frames as `text/event-stream`, written straight to ASGI `send`.

    Headers wait for the first chunk, so a failure before it is a real HTTP error (raised
    for the app's handler); after them, a failure ends the stream in-band. Starlette's
    StreamingResponse would add a task group, a second task and a generator per stream:
    more memory per open stream, and an event-loop turn before the first byte."""

    HEADERS: ClassVar = (
        (b"content-type", b"text/event-stream; charset=utf-8"),
        (b"cache-control", b"no-cache"),
        (b"x-accel-buffering", b"no"),
    )

    def __init__(
        self, builder: StreamBuilder[C], chunks: AsyncIterator[C], metrics: Metrics
    ) -> None:
        self.builder = builder
        self.chunks = chunks
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False
        try:
            with CancelledOnDisconnect(receive):
                first = await anext(self.chunks, None)
                await send({"type": "http.response.start", "status": 200, "headers": self.HEADERS})
                started = True
                await self._body(send, first)
        except (GatewayError, OSError):
            if not started:
                raise
            # After the headers, only a client disconnect gets here (a 499 from the watcher,
            # or OSError from `send` on ASGI 2.4 servers): nobody is left to tell.
        finally:
            await self.chunks.aclose()  # type: ignore[attr-defined]

    async def _body(self, send: Send, first: C | None) -> None:
        builder = self.builder
        self.metrics.streams.inc()
        try:
            # `frames` is rebound by the next chunk: the opening frames (two whole
            # envelopes) do not live as long as the stream.
            frames = builder.start() + (builder.add(first) if first is not None else b"")
            await send({"type": "http.response.body", "body": frames, "more_body": True})
            async for chunk in self.chunks:
                if frames := builder.add(chunk):
                    await send({"type": "http.response.body", "body": frames, "more_body": True})
            tail = builder.finish()
        except BackendError as exc:
            tail = builder.fail(exc)
        except OSError:
            raise  # from `send`: the client is gone
        except Exception:
            log.exception("stream failed")
            tail = builder.fail(internal_error())
        finally:
            self.metrics.streams.dec()
        await send({"type": "http.response.body", "body": tail, "more_body": False})
