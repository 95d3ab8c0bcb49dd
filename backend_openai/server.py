"""OpenAIChatService: the ChatService over an OpenAI-compatible HTTP server, on grpc.aio.

One httpx.AsyncClient per process, shared by every call. Each Chat streams one
upstream request (`stream: true`); a cancelled call (client gone, deadline
passed) leaves the `async with` around the upstream response, which closes the
upstream connection, so the model server stops generating too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Mapping

import grpc
import httpx
import orjson

from backend_openai import translate
from backend_openai.translate import UpstreamError
from runinfra import coalesce
from runinfra.chat.v1 import chat_service_pb2 as pb
from runinfra.chat.v1 import chat_service_pb2_grpc as pb_grpc
from runinfra.serving import Served, metadata_of, serve

logger = logging.getLogger("backend_openai")

ChatContext = grpc.aio.ServicerContext[pb.ChatRequest, pb.ChatChunk]
# gRPC metadata passed upstream as HTTP headers (W3C trace context), besides the request id.
FORWARDED_METADATA = ("traceparent", "tracestate")


def _log(event: str, **fields: object) -> None:
    logger.info(event, extra={"fields": fields})


def upstream_request_id(request_id: str) -> str:
    """The id sent upstream as X-Request-Id: a UUID made from ours (some servers, such as
    llama-cpp-python's, take nothing else), logged beside ours so the two line up."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "runinfra:" + request_id))


def upstream_headers(request_id: str, metadata: Mapping[str, str]) -> dict[str, str]:
    """X-Request-Id (so upstream logs line up with ours) and the trace context."""
    headers = {"X-Request-Id": upstream_request_id(request_id)} if request_id else {}
    headers.update({name: metadata[name] for name in FORWARDED_METADATA if name in metadata})
    return headers


def transport_error(exc: httpx.HTTPError) -> UpstreamError:
    """No (complete) HTTP reply: no connection or a dropped one -> UNAVAILABLE (a retry,
    maybe on another replica, can work); a read that timed out -> DEADLINE_EXCEEDED."""
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectTimeout):
        code, message = grpc.StatusCode.UNAVAILABLE, "Connecting to the model server timed out."
    elif isinstance(exc, httpx.TimeoutException):
        code, message = grpc.StatusCode.DEADLINE_EXCEEDED, "The model server timed out."
    elif isinstance(exc, httpx.TransportError):
        code, message = grpc.StatusCode.UNAVAILABLE, "The model server is unreachable."
    else:
        code, message = grpc.StatusCode.INTERNAL, "The request to the model server failed."
    return UpstreamError(code, message, f"{type(exc).__name__}: {detail}")


def _json(content: bytes) -> object:
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        raise UpstreamError(grpc.StatusCode.INTERNAL, "upstream sent malformed JSON") from None


async def _check(response: httpx.Response) -> None:
    if not response.is_success:
        await response.aread()
        raise translate.http_error(response.status_code, response.reason_phrase, response.content)


class OpenAIChatService(pb_grpc.ChatServiceServicer):
    """Forwards Chat to POST {upstream}/chat/completions and ListModels to GET {upstream}/models."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def aclose(self) -> None:
        await self.client.aclose()

    async def ListModels(
        self, request: pb.ListModelsRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> pb.ListModelsResponse:
        metadata = metadata_of(context)
        headers = upstream_headers(metadata.get("x-request-id", ""), metadata)
        status = "ok"
        try:
            try:
                response = await self.client.get("/models", headers=headers)
            except httpx.HTTPError as exc:
                raise transport_error(exc) from None
            await _check(response)
            return translate.models_response(_json(response.content))
        except UpstreamError as exc:
            status = exc.code.name.lower()
            _log("upstream_error", request_id=metadata.get("x-request-id", ""), detail=exc.detail)
            await context.abort(exc.code, exc.message)
        finally:
            _log("list_models", status=status)

    async def Chat(
        self, request: pb.ChatRequest, context: ChatContext
    ) -> AsyncIterator[pb.ChatChunk]:
        metadata = metadata_of(context)
        rid = request.request_id or metadata.get("x-request-id", "")
        status, sent, started = "ok", 0, time.monotonic()
        relay = coalesce.held(
            self._relay(request, upstream_headers(rid, metadata)), coalesce.hold_seconds(request)
        )
        try:
            # aclosing: a call dropped while suspended at `yield` still closes the upstream now.
            async with contextlib.aclosing(relay) as chunks:
                async for chunk in chunks:
                    yield chunk
                    sent += 1
        except UpstreamError as exc:
            status = exc.code.name.lower()
            _log("upstream_error", request_id=rid, status=status, detail=exc.detail)
            await context.abort(exc.code, exc.message)
        except (asyncio.CancelledError, GeneratorExit):
            status = "cancelled"
            raise
        finally:
            elapsed_ms = round((time.monotonic() - started) * 1000, 1)
            _log(
                "chat",
                request_id=rid,
                upstream_request_id=upstream_request_id(rid) if rid else "",
                model=request.model,
                status=status,
                chunks=sent,
                ms=elapsed_ms,
            )

    async def _relay(
        self, request: pb.ChatRequest, headers: dict[str, str]
    ) -> AsyncGenerator[pb.ChatChunk, None]:
        """The upstream reply as ChatChunks; every failure is an UpstreamError."""
        body = orjson.dumps(translate.request_body(request))
        headers = {**headers, "Content-Type": "application/json"}
        decoder = translate.StreamDecoder()
        try:
            async with self.client.stream(
                "POST", "/chat/completions", content=body, headers=headers
            ) as response:
                await _check(response)
                if response.headers.get("content-type", "").startswith("application/json"):
                    # A server that ignores `stream` answers one chat.completion.
                    for chunk in translate.completion_chunks(_json(await response.aread())):
                        yield chunk
                    return
                # Read to the end even after [DONE] (as the openai SDK does): the
                # connection then goes back to the pool for the next call.
                async for line in response.aiter_lines():
                    for chunk in decoder.feed_line(line):
                        yield chunk
                for chunk in decoder.finish():
                    yield chunk
        except httpx.HTTPError as exc:
            if decoder.done:
                return  # the last chunk went out; a failure after [DONE] loses nothing
            raise transport_error(exc) from None


RunningBackend = Served[OpenAIChatService]  # stop() also closes the upstream client


def make_client(
    upstream: str,
    *,
    api_key: str | None = None,
    connect_timeout: float = 10.0,
    read_timeout: float | None = 600.0,
) -> httpx.AsyncClient:
    """The shared upstream client. `upstream` is the base URL that /chat/completions and
    /models hang off, e.g. http://127.0.0.1:8000/v1. No connection cap: the gateway caps
    requests in flight."""
    url = httpx.URL(upstream)
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"upstream must be an http(s) URL, got {upstream!r}")
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    return httpx.AsyncClient(
        base_url=url,
        headers=headers,
        timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=64),
    )


async def start(
    upstream: str,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    api_key: str | None = None,
    max_message_bytes: int = 64 * 1024 * 1024,
    connect_timeout: float = 10.0,
    read_timeout: float | None = 600.0,
) -> RunningBackend:
    """Start the backend on the running event loop; port 0 picks a free port.

    `read_timeout` bounds the wait for each piece of the upstream reply (None: no
    bound); the caller's gRPC deadline bounds the whole call.
    """
    client = make_client(
        upstream, api_key=api_key, connect_timeout=connect_timeout, read_timeout=read_timeout
    )
    service = OpenAIChatService(client)
    try:
        served = await serve(
            service, host, port, max_message_bytes=max_message_bytes, on_stop=service.aclose
        )
    except BaseException:
        await client.aclose()
        raise
    # The URL without userinfo: credentials never reach the logs.
    upstream_url = str(client.base_url.copy_with(userinfo=b""))
    _log("listening", host=host, port=served.port, upstream=upstream_url)
    return served
