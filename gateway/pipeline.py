"""The serving path both POST endpoints share: read and translate the body, call the backend
with the client's ids and trace context, then fold the reply into one body (once per
Idempotency-Key) or stream it as the builder's frames."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.backend import ChatBackend
from gateway.config import Settings
from gateway.errors import GatewayError
from gateway.http import JSONResponse, read_body
from gateway.idempotency import Stored, run_once, scoped_key
from gateway.metrics import CallMetrics
from gateway.parsing import Parser, Translate, Translated
from gateway.streaming import CancelledOnDisconnect, EventStream
from gateway.translate.builder import StreamBuilder
from runinfra.chat.v1 import chat_service_pb2 as pb

_JSON = {"content-type": "application/json"}
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
# Client headers forwarded to the backend as gRPC metadata, with their length caps; a value
# that is not printable ASCII (invalid gRPC metadata) or too long is not forwarded.
_FORWARDED = (("x-client-request-id", 512), ("idempotency-key", 255))
_PRINTABLE = re.compile(r"[\x20-\x7e]+")
C = TypeVar("C")  # what a reply stream yields: a ChatChunk, or (choice index, ChatChunk)
T = TypeVar("T", bound=Translated)


def valid_tracestate(value: str) -> bool:
    """W3C trace context's bounds: printable ASCII, at most 512 characters and 32 members."""
    return len(value) <= 512 and value.count(",") < 32 and bool(_PRINTABLE.fullmatch(value))


def backend_metadata(request_id: str, headers: Mapping[str, str]) -> list[tuple[str, str]]:
    """The gRPC metadata of a backend call: our request id, the client's request id and
    idempotency key, and its W3C trace context, each only when valid (a client header can
    never become invalid gRPC metadata)."""
    metadata = [("x-request-id", request_id)]
    for name, limit in _FORWARDED:
        value = headers.get(name, "")
        if len(value) <= limit and _PRINTABLE.fullmatch(value):
            metadata.append((name, value))
    traceparent = headers.get("traceparent", "").strip().lower()
    if _TRACEPARENT.match(traceparent):
        metadata.append(("traceparent", traceparent))
        tracestate = headers.get("tracestate", "").strip()
        if tracestate and valid_tracestate(tracestate):
            metadata.append(("tracestate", tracestate))
    return metadata


async def read(request: Request, translate: Translate[T]) -> tuple[bytearray, T]:
    """The raw body (within the body deadline), then the in-flight slot, then the
    translated request (in a worker process when the body is large: its messages then come
    serialized, kept in `request.state.wire` for the backend calls)."""
    settings: Settings = request.app.state.settings
    raw = await read_body(request, settings.max_body_bytes, settings.body_timeout)
    request.state.slot.take()
    parser: Parser = request.app.state.parser
    parsed, request.state.wire = await parser.parse(
        raw, translate, settings.default_model, settings.limits
    )
    return raw, parsed


def open_chunks(request: Request, chat: pb.ChatRequest, route: str) -> AsyncIterator[pb.ChatChunk]:
    """Call the backend for `chat`, with the request id, the client's request id and
    idempotency key, and its W3C trace context (traceparent, tracestate) in the gRPC metadata,
    so one trace spans both sides."""
    settings: Settings = request.app.state.settings
    backend: ChatBackend = request.app.state.backend
    chat.request_id = request.state.request_id
    chat.max_hold_ms = request.app.state.load.hint_ms()  # gateway.load: 0 unless under load
    metadata = backend_metadata(chat.request_id, request.headers)
    observer = CallMetrics(request.app.state.metrics, route, request.state.started)
    return backend.chat(
        chat,
        metadata=metadata,
        timeout=settings.request_timeout,
        observer=observer,
        wire=request.state.wire,
    )


async def answer(
    request: Request,
    raw: bytes | bytearray,
    stream: bool,
    builder: StreamBuilder[C],
    chunks: AsyncIterator[C],
) -> Response | EventStream[C]:
    """Fold the reply into one body, or stream it as the builder's frames."""
    if stream:
        return EventStream(builder, chunks, request.app.state.metrics)

    async def fold() -> dict[str, Any]:
        with CancelledOnDisconnect(request.receive):
            async for chunk in chunks:
                builder.add(chunk)
        builder.finish()
        return builder.body()

    key = request.headers.get("idempotency-key")
    if key is None:
        return JSONResponse(await fold())
    return await _idempotent(request, key, raw, fold)


async def _idempotent(
    request: Request,
    key: str,
    raw: bytes | bytearray,
    fold: Callable[[], Awaitable[dict[str, Any]]],
) -> Response:
    """Run `fold` once per Idempotency-Key (gateway.idempotency.run_once); replay after."""
    request_id: str = request.state.request_id

    async def run() -> Stored:
        try:
            return Stored(200, _JSON, orjson.dumps(await fold()), request_id)
        except GatewayError as exc:
            return Stored(
                exc.status, {**_JSON, **exc.headers}, orjson.dumps(exc.body()), request_id
            )

    scoped = scoped_key(request.state.tenant, request.url.path, key)
    fingerprint = hashlib.sha256(raw).hexdigest()
    result, replayed = await run_once(request.app.state.idempotency, scoped, fingerprint, run)
    headers = result.headers
    if replayed:
        request.app.state.metrics.replays.inc()
        request.state.request_id = result.request_id  # the original answer's id
        headers = {**headers, "idempotent-replayed": "true"}
    return Response(result.body, status_code=result.status, headers=headers)
