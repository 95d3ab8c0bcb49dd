"""The stub ChatService on a grpc.aio server, with health checking and reflection."""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from typing import TypeVar

import grpc

from backend_stub import behaviour
from backend_stub.schema import Budget
from runinfra import coalesce
from runinfra.chat.v1 import chat_service_pb2 as pb
from runinfra.chat.v1 import chat_service_pb2_grpc as pb_grpc
from runinfra.serving import Served, metadata_of, serve

logger = logging.getLogger("backend_stub")

_STATUS_CODES = {
    "invalid_argument": grpc.StatusCode.INVALID_ARGUMENT,
    "not_found": grpc.StatusCode.NOT_FOUND,
}
ChatContext = grpc.aio.ServicerContext[pb.ChatRequest, pb.ChatChunk]
_UNAVAILABLE_MESSAGES = {
    behaviour.FAIL_BEFORE: behaviour.FAIL_BEFORE_MESSAGE,
    behaviour.FAIL_ONCE: behaviour.FAIL_ONCE_MESSAGE,
    behaviour.FAIL_FIRST_ATTEMPT: behaviour.FAIL_FIRST_ATTEMPT_MESSAGE,
}


def _log(event: str, **fields: object) -> None:
    logger.info(event, extra={"fields": fields})


# Requests larger than this are planned on a worker thread, so that the event loop (which
# the gateway shares when the stub is embedded) keeps serving meanwhile.
PLAN_INLINE_BYTES = 64 * 1024
REMEMBERED = 1024  # cancelled request ids, and stub-fail-once request ids, kept


K = TypeVar("K")
V = TypeVar("V")


def _remember(memory: dict[K, V], key: K, value: V) -> V:
    """`memory.setdefault(key, value)`, keeping only the REMEMBERED newest keys."""
    kept = memory.setdefault(key, value)
    if len(memory) > REMEMBERED:
        del memory[next(iter(memory))]
    return kept


class StubChatService(pb_grpc.ChatServiceServicer):
    """Serves `behaviour.plan` replies. With `record_calls` (tests), keeps every request and
    its metadata in `calls` and `call_metadata`; without (the default: a served product
    must not grow with its traffic), those stay empty. The last REMEMBERED cancelled ids
    are kept in `cancelled`."""

    def __init__(self, *, chunk_delay: float = 0.0, record_calls: bool = False) -> None:
        self.chunk_delay = chunk_delay
        self.record_calls = record_calls
        self.calls: list[pb.ChatRequest] = []
        self.call_metadata: list[dict[str, str]] = []  # each call's gRPC metadata, as calls
        self.cancelled: deque[str] = deque(maxlen=REMEMBERED)
        # request ids that stub-fail-once has failed (insertion-ordered, oldest dropped)
        self._failed_once: dict[str, None] = {}
        # stub-fail-first-attempt: client request id -> the first gateway request id seen
        self._first_attempts: dict[str, str] = {}
        self._cond = threading.Condition()

    def wait_cancelled(self, request_id: str, timeout: float, count: int = 1) -> bool:
        """Block (from any thread) until `count` Chat calls with `request_id` were cancelled."""
        with self._cond:
            return self._cond.wait_for(lambda: self.cancelled.count(request_id) >= count, timeout)

    def _record(
        self,
        request: pb.ChatRequest | None = None,
        cancelled: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        with self._cond:
            if request is not None and self.record_calls:
                self.calls.append(request)
                self.call_metadata.append(metadata or {})
            if cancelled is not None:
                self.cancelled.append(cancelled)
                self._cond.notify_all()

    def _fails_now(self, model: str, request_id: str, metadata: dict[str, str]) -> bool:
        """stub-fail-once: fail the first attempt of each request id, serve the retries.
        stub-fail-first-attempt: fail every call of the first request id seen for a client
        request id (without one, every call), serve once another request id brings it."""
        if model == behaviour.FAIL_FIRST_ATTEMPT:
            client_id = metadata.get("x-client-request-id", request_id)
            return _remember(self._first_attempts, client_id, request_id) == request_id
        if model != behaviour.FAIL_ONCE or request_id in self._failed_once:
            return False
        _remember(self._failed_once, request_id, None)
        return True

    def _delay(self, model: str) -> float:
        return self.chunk_delay + (behaviour.SLOW_DELAY if model == behaviour.SLOW else 0.0)

    async def ListModels(
        self, request: pb.ListModelsRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> pb.ListModelsResponse:
        _log("list_models", status="ok")
        return behaviour.list_models()

    async def Chat(
        self, request: pb.ChatRequest, context: ChatContext
    ) -> AsyncIterator[pb.ChatChunk]:
        metadata = metadata_of(context)
        self._record(request, metadata=metadata)
        rid, model = request.request_id or metadata.get("x-request-id", ""), request.model
        status, sent, started = "ok", 0, time.monotonic()
        budget = Budget()
        try:
            try:
                plan = await _plan(request, budget)
            except behaviour.RequestError as exc:
                status = exc.kind
                await context.abort(_STATUS_CODES[exc.kind], exc.message)
            if model == behaviour.FAIL_BEFORE or self._fails_now(model, rid, metadata):
                status = "unavailable"
                message = _UNAVAILABLE_MESSAGES[model]
                await context.abort(grpc.StatusCode.UNAVAILABLE, message)
            if model == behaviour.RATE_LIMITED:
                status = "resource_exhausted"
                await context.abort(
                    grpc.StatusCode.RESOURCE_EXHAUSTED, behaviour.RATE_LIMITED_MESSAGE
                )
            # A buffered reply takes as long as its words would: one delay per word merged.
            delay = self._delay(model) * plan.usage.output_tokens / max(1, plan.chunk_count)
            # max_hold_ms: the words made within one window go out together, when the last
            # of them is made (coalesce.paced_lazily: one window made at a time).
            scripted = _scripted_chunks(model, plan)
            hold = coalesce.hold_seconds(request)
            for made, chunk in coalesce.paced_lazily(scripted, delay, hold):
                if delay > 0:
                    await asyncio.sleep(delay * made)
                yield chunk
                sent += 1
            if model == behaviour.FAIL_MID:
                status = "internal"
                await context.abort(grpc.StatusCode.INTERNAL, behaviour.FAIL_MID_MESSAGE)
        except (asyncio.CancelledError, GeneratorExit):
            # CancelledError: cancelled while awaiting in here; GeneratorExit:
            # grpc dropped the stream (client gone) while it was sending.
            status = "cancelled"
            budget.cancel()  # a plan still running on its thread stops at its next node
            self._record(cancelled=rid)
            raise
        finally:
            elapsed_ms = round((time.monotonic() - started) * 1000, 1)
            _log("chat", request_id=rid, model=model, status=status, chunks=sent, ms=elapsed_ms)


async def _plan(request: pb.ChatRequest, budget: Budget) -> behaviour.Plan:
    """`behaviour.plan`, on a worker thread for a large request: its long loops (word counts,
    tool names in the text, schema instances) let the event loop run in between."""
    if _small(request):
        return behaviour.plan(request, budget)
    return await asyncio.to_thread(behaviour.plan, request, budget)


def _small(request: pb.ChatRequest) -> bool:
    """Counting parts is cheap; ByteSize encodes the whole message (about 45 ms for 20 MB),
    so it is asked only of requests with few parts."""
    parts = sum(len(m.content) for m in request.messages) + len(request.tools)
    return parts <= 16 and request.ByteSize() <= PLAN_INLINE_BYTES


def _scripted_chunks(model: str, plan: behaviour.Plan) -> Iterator[pb.ChatChunk]:
    """The plan's chunks, made one at a time; for stub-fail-mid only the first two, without
    finish or usage."""
    if model != behaviour.FAIL_MID:
        return plan.stream()
    head = itertools.islice(plan.stream(), behaviour.FAIL_MID_AFTER)
    return (pb.ChatChunk(text=c.text, tool_calls=c.tool_calls, logprobs=c.logprobs) for c in head)


RunningStub = Served[StubChatService]


async def start(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    chunk_delay: float = 0.0,
    max_message_bytes: int = 64 * 1024 * 1024,
    record_calls: bool = False,
) -> RunningStub:
    """Start the stub on the running event loop; port 0 picks a free port. `record_calls`
    keeps every request for tests to inspect (StubChatService)."""
    service = StubChatService(chunk_delay=chunk_delay, record_calls=record_calls)
    served = await serve(service, host, port, max_message_bytes=max_message_bytes)
    _log("listening", host=host, port=served.port)
    return served
