"""The endpoints: one small async function each. Read, translate, call the backend, answer."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway import fanout
from gateway.backend import ChatBackend
from gateway.config import Settings
from gateway.errors import GatewayError, NotFound
from gateway.http import JSONResponse, read_body
from gateway.idempotency import Stored, run_once, scoped_key
from gateway.ids import new_id
from gateway.metrics import CallMetrics
from gateway.parsing import Parser, Translate, Translated
from gateway.streaming import CancelledOnDisconnect, EventStream
from gateway.translate import chat_in, models_out, responses_in
from gateway.translate.builder import StreamBuilder
from gateway.translate.chat_out import ChatCompletionBuilder
from gateway.translate.choices import ChoicesBuilder
from gateway.translate.responses_out import ResponseBuilder
from runinfra.chat.v1 import chat_service_pb2 as pb

# --- serving, shared by both endpoints --------------------------------------------------

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


async def _read(request: Request, translate: Translate[T]) -> tuple[bytearray, T]:
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


def _open_chunks(request: Request, chat: pb.ChatRequest, route: str) -> AsyncIterator[pb.ChatChunk]:
    """Call the backend for `chat`, with the request id, the client's request id and
    idempotency key, and its W3C trace context (traceparent, tracestate) in the gRPC metadata,
    so one trace spans both sides."""
    settings: Settings = request.app.state.settings
    backend: ChatBackend = request.app.state.backend
    chat.request_id = request.state.request_id
    chat.max_hold_ms = request.app.state.load.hint_ms()  # gateway.load: 0 unless under load
    metadata = [("x-request-id", chat.request_id)]
    for name, limit in _FORWARDED:
        value = request.headers.get(name, "")
        if len(value) <= limit and _PRINTABLE.fullmatch(value):
            metadata.append((name, value))
    traceparent = request.headers.get("traceparent", "").strip().lower()
    if _TRACEPARENT.match(traceparent):
        metadata.append(("traceparent", traceparent))
        tracestate = request.headers.get("tracestate", "").strip()
        if tracestate and valid_tracestate(tracestate):
            metadata.append(("tracestate", tracestate))
    observer = CallMetrics(request.app.state.metrics, route, request.state.started)
    return backend.chat(
        chat,
        metadata=metadata,
        timeout=settings.request_timeout,
        observer=observer,
        wire=request.state.wire,
    )


async def _serve(
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


# --- /v1/responses ---------------------------------------------------------------------


async def create_response(request: Request) -> Response | EventStream[pb.ChatChunk]:
    settings: Settings = request.app.state.settings
    raw, parsed = await _read(request, responses_in.parse)
    builder = ResponseBuilder(
        parsed.echo,
        response_id=new_id("resp"),
        created_at=int(time.time()),
        new_id=new_id,
        completed_at=lambda: int(time.time()),
        incomplete_as_completed=settings.incomplete_as_completed,
        streaming=parsed.stream,
        logprobs=parsed.chat.logprobs,
    )
    chunks = _open_chunks(request, parsed.chat, "/v1/responses")
    return await _serve(request, raw, parsed.stream, builder, chunks)


async def not_stored(request: Request) -> Response:
    """GET/DELETE /v1/responses/{id} and friends: nothing is stored here."""
    raise GatewayError(
        f"Response '{request.path_params['response_id']}' not found: this gateway is stateless and "
        "stores no responses. Keep the response client-side and send the conversation inline.",
        status=404,
        param="response_id",
        code="response_not_found",
    )


# --- /v1/chat/completions --------------------------------------------------------------


async def create_chat_completion(request: Request) -> Response | EventStream[Any]:
    raw, parsed = await _read(request, chat_in.parse)
    completion_id, created = new_id("chatcmpl", "-"), int(time.time())
    route = "/v1/chat/completions"
    choices = [
        ChatCompletionBuilder(
            model=parsed.chat.model,
            completion_id=completion_id,
            created=created,
            new_id=new_id,
            include_usage=parsed.include_usage,
            streaming=parsed.stream,
            index=index,
            logprobs=parsed.chat.logprobs,
        )
        for index in range(parsed.n)
    ]
    if parsed.n == 1:
        chunks = _open_chunks(request, parsed.chat, route)
        return await _serve(request, raw, parsed.stream, choices[0], chunks)
    # n choices: n concurrent calls, merged (gateway.fanout); all cancelled together.
    merged = fanout.merge([_open_chunks(request, parsed.chat, route) for _ in choices])
    builder = ChoicesBuilder(choices, include_usage=parsed.include_usage, streaming=parsed.stream)
    return await _serve(request, raw, parsed.stream, builder, merged)


# --- /v1/models --------------------------------------------------------------------------


async def list_models(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    backend: ChatBackend = request.app.state.backend
    models = await backend.list_models(timeout=settings.request_timeout)
    return JSONResponse(models_out.model_list(models))


async def retrieve_model(request: Request) -> Response:
    """GET /v1/models/{model_id}; `default` is the configured default model."""
    settings: Settings = request.app.state.settings
    backend: ChatBackend = request.app.state.backend
    model_id: str = request.path_params["model_id"]
    wanted = settings.default_model if model_id == "default" else model_id
    model = models_out.find(await backend.list_models(timeout=settings.request_timeout), wanted)
    if model is None:
        raise NotFound(
            f"The model '{model_id}' does not exist: GET /v1/models lists the models served here.",
            param="model",
            code="model_not_found",
        )
    return JSONResponse(models_out.model_dict(model))


# --- probes ----------------------------------------------------------------------------


async def healthz(request: Request) -> Response:
    """The process is alive and serving HTTP."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """The backend answers its gRPC health check: send traffic here."""
    backend: ChatBackend = request.app.state.backend
    if await backend.ready():
        return JSONResponse({"status": "ready"})
    return JSONResponse({"status": "backend not ready"}, status_code=503)


async def metrics(request: Request) -> Response:
    """Prometheus exposition of this process's metrics."""
    body = request.app.state.metrics.exposition()
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
