"""One small async function per endpoint: read, translate, call the backend, answer."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, ClassVar, Protocol

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway.backend import ChatBackend
from gateway.config import Settings
from gateway.errors import BackendError, GatewayError, InvalidRequest, NotFound, internal_error
from gateway.idempotency import Claim, IdempotencyStore, Stored
from gateway.ids import new_id
from gateway.metrics import CallMetrics, Metrics
from gateway.pb import chat_service_pb2 as pb
from gateway.translate import chat_in, models_out, responses_in
from gateway.translate.chat_out import ChatCompletionBuilder
from gateway.translate.responses_out import ResponseBuilder

log = logging.getLogger("gateway")


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(exc: GatewayError) -> Response:
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


async def read_json(request: Request, settings: Settings) -> tuple[bytes, dict[str, Any]]:
    """The raw body and its JSON object: 415, 413 and 400 otherwise."""
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise GatewayError(
            f"Unsupported content type '{ctype}': send application/json.",
            status=415,
            code="unsupported_media_type",
        )
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > settings.max_body_bytes:
        raise _too_large(settings)
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > settings.max_body_bytes:
            raise _too_large(settings)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(
            f"We could not parse the JSON body of your request: {exc}", code="invalid_json"
        ) from None
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_json")
    return bytes(body), data


def _too_large(settings: Settings) -> GatewayError:
    return GatewayError(
        f"Request body too large: the limit is {settings.max_body_bytes} bytes.",
        status=413,
        code="request_too_large",
    )


# --- non-streaming: cancelled on disconnect, replay-safe with Idempotency-Key ----------


async def _unary(request: Request, raw: bytes, fold: Callable[[], Awaitable[Any]]) -> Response:
    async def run() -> Response:
        return JSONResponse(await _unless_disconnected(request, fold))

    key = request.headers.get("idempotency-key")
    if key is None:
        return await run()
    return await _idempotent(request, key, raw, run)


async def _unless_disconnected(request: Request, fold: Callable[[], Awaitable[Any]]) -> Any:
    with _CancelledOnDisconnect(request.receive):
        return await fold()


class _CancelledOnDisconnect:
    """Inside the block, a client that goes away cancels this task (and so the backend call),
    which then raises a 499 GatewayError. One watcher task per request, the least the ASGI
    interface allows."""

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


_STORED_STATUSES = range(200, 500)
_TRANSIENT = frozenset({408, 409, 429, 499})  # retried for real, never replayed


async def _idempotent(
    request: Request, key: str, raw: bytes, run: Callable[[], Awaitable[Response]]
) -> Response:
    """The IETF idempotency-key draft: first run, replay, 422 on another body, 409 while running."""
    if not 0 < len(key) <= 255:
        raise InvalidRequest("Idempotency-Key must be 1-255 characters.", param="Idempotency-Key")
    store: IdempotencyStore = request.app.state.idempotency
    scoped = f"{request.state.tenant}:{request.url.path}:{key}"
    fingerprint = hashlib.sha256(raw).hexdigest()
    claim, stored = await store.claim(scoped, fingerprint)
    if claim is Claim.MISMATCH:
        raise GatewayError(
            "This Idempotency-Key was used with a different request body; use a new key.",
            status=422,
            param="Idempotency-Key",
            code="idempotency_key_reused",
        )
    if claim is Claim.IN_PROGRESS:
        raise GatewayError(
            "A request with this Idempotency-Key is still running; retry when it is done.",
            status=409,
            param="Idempotency-Key",
            code="idempotency_key_in_use",
            headers={"retry-after": "1"},
        )
    if stored is not None:
        request.app.state.metrics.replays.inc()
        request.state.request_id = stored.request_id
        headers = {**stored.headers, "idempotent-replayed": "true"}
        return Response(stored.body, status_code=stored.status, headers=headers)
    try:
        response = await run()
    except GatewayError as exc:
        response = error_response(exc)
    except BaseException:
        await store.release(scoped)
        raise
    status = response.status_code
    if status in _STORED_STATUSES and status not in _TRANSIENT:
        headers = {"content-type": response.headers["content-type"]}
        result = Stored(status, headers, bytes(response.body), request.state.request_id)
        await store.complete(scoped, fingerprint, result)
    else:
        await store.release(scoped)
    return response


# --- serving, shared by both endpoints --------------------------------------------------


_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


def _open_chunks(request: Request, chat: pb.ChatRequest, route: str) -> AsyncIterator[pb.ChatChunk]:
    """Call the backend for `chat`, with the request id and the client's W3C trace context
    (traceparent, tracestate) in the gRPC metadata, so one trace spans both sides."""
    settings: Settings = request.app.state.settings
    backend: ChatBackend = request.app.state.backend
    chat.request_id = request.state.request_id
    metadata = [("x-request-id", chat.request_id)]
    traceparent = request.headers.get("traceparent", "").strip().lower()
    if _TRACEPARENT.match(traceparent):
        metadata.append(("traceparent", traceparent))
        if tracestate := request.headers.get("tracestate"):
            metadata.append(("tracestate", tracestate))
    observer = CallMetrics(request.app.state.metrics, route, request.state.started)
    return backend.chat(
        chat, metadata=metadata, timeout=settings.request_timeout, observer=observer
    )


class StreamBuilder(Protocol):
    """What both endpoints' builders do (translate.responses_out, translate.chat_out)."""

    def start(self) -> bytes: ...
    def add(self, chunk: pb.ChatChunk) -> bytes: ...
    def finish(self) -> bytes: ...
    def fail(self, error: GatewayError) -> bytes: ...
    def body(self) -> dict[str, Any]: ...


async def _serve(
    request: Request,
    raw: bytes,
    stream: bool,
    builder: StreamBuilder,
    route: str,
    chat: pb.ChatRequest,
) -> Response | EventStream:
    """Call the backend; fold the reply into one body, or stream it as the builder's frames."""
    chunks = _open_chunks(request, chat, route)
    if not stream:

        async def fold() -> dict[str, Any]:
            async for chunk in chunks:
                builder.add(chunk)
            builder.finish()
            return builder.body()

        return await _unary(request, raw, fold)
    return EventStream(builder, chunks, request.app.state.metrics)


class EventStream:
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
        self, builder: StreamBuilder, chunks: AsyncIterator[pb.ChatChunk], metrics: Metrics
    ) -> None:
        self.builder = builder
        self.chunks = chunks
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False
        try:
            with _CancelledOnDisconnect(receive):
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

    async def _body(self, send: Send, first: pb.ChatChunk | None) -> None:
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


# --- /v1/responses ---------------------------------------------------------------------


async def create_response(request: Request) -> Response | EventStream:
    settings: Settings = request.app.state.settings
    raw, body = await read_json(request, settings)
    parsed = responses_in.parse(body, settings.default_model)
    builder = ResponseBuilder(
        parsed.echo,
        response_id=new_id("resp"),
        created_at=int(time.time()),
        new_id=new_id,
        completed_at=lambda: int(time.time()),
        incomplete_as_completed=settings.incomplete_as_completed,
        streaming=parsed.stream,
    )
    return await _serve(request, raw, parsed.stream, builder, "/v1/responses", parsed.chat)


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


async def create_chat_completion(request: Request) -> Response | EventStream:
    settings: Settings = request.app.state.settings
    raw, body = await read_json(request, settings)
    parsed = chat_in.parse(body, settings.default_model)
    builder = ChatCompletionBuilder(
        model=parsed.chat.model,
        completion_id=new_id("chatcmpl", "-"),
        created=int(time.time()),
        new_id=new_id,
        include_usage=parsed.include_usage,
        streaming=parsed.stream,
    )
    route = "/v1/chat/completions"
    return await _serve(request, raw, parsed.stream, builder, route, parsed.chat)


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
