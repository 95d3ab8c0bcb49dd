"""ChatBackend: the gateway's one gRPC client (the HTTP side's only module that imports grpc)."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.errors import BackendError
from runinfra.chat.v1 import chat_service_pb2 as pb
from runinfra.chat.v1 import chat_service_pb2_grpc as pb_grpc
from runinfra.contract import SERVICE_NAME

# Spread calls over every address the target resolves to; a replica that fails the standard
# health check (or its connection) gets no calls until it is SERVING again.
SERVICE_CONFIG = json.dumps(
    {
        "loadBalancingConfig": [{"round_robin": {}}],
        "healthCheckConfig": {"serviceName": SERVICE_NAME},
    }
)


def channel_target(backend: str) -> str:
    """A gRPC target for `backend`: one address, a gRPC URI (dns:///name:port resolves
    to every address of the name), or a comma-separated list of IP:port replicas."""
    addresses = [a.strip() for a in backend.split(",") if a.strip()]
    if len(addresses) == 1:
        return addresses[0]
    scheme = "ipv6" if all(a.startswith("[") for a in addresses) else "ipv4"
    return f"{scheme}:{','.join(addresses)}"


log = logging.getLogger("gateway")


class CallObserver(Protocol):
    """What a caller learns of one call as it happens (metrics, in the gateway)."""

    def first_chunk(self) -> None: ...
    def usage(self, usage: pb.Usage) -> None: ...
    def failed(self, grpc_code: str) -> None: ...


# A backend's own message for these tells the client what to fix; it is passed on.
_CLIENT_CODES = frozenset(
    {
        "INVALID_ARGUMENT", "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED",
        "UNAUTHENTICATED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
    }
)  # fmt: skip
# What clients read for the others (the details, e.g. peer addresses or transport text, are
# logged under the request id instead).
_CLEAN_MESSAGES = {
    "UNAVAILABLE": "The backend is unavailable; retry shortly.",
    "DEADLINE_EXCEEDED": "The backend did not answer in time.",
    "CANCELLED": "The backend call was cancelled.",
    "UNIMPLEMENTED": "The backend does not implement this call.",
}


def _error(exc: grpc.aio.AioRpcError, request_id: str = "") -> BackendError:
    """The client's error for a failed call: the backend's own message for client errors,
    a clean one otherwise (its details logged). A message over gRPC's size limit is the
    request's doing and the same on every retry: 400, never a retryable 429."""
    code, details = exc.code().name, exc.details() or ""
    if code == "RESOURCE_EXHAUSTED" and "larger than max" in details:
        log.warning("backend message too large", extra=_fields(request_id, code, details))
        too_large = BackendError(
            "INVALID_ARGUMENT",
            "The reply to this request is larger than the gateway's message limit; "
            "ask for less (a smaller schema instance, fewer output tokens).",
        )
        too_large.code = "reply_too_large"
        return too_large
    if code in _CLIENT_CODES:
        return BackendError(code, details)
    log.warning("backend error", extra=_fields(request_id, code, details))
    message = _CLEAN_MESSAGES.get(code, "The backend failed while processing your request.")
    return BackendError(code, message)


def _fields(request_id: str, code: str, details: str) -> dict[str, object]:
    return {"fields": {"request_id": request_id, "grpc_code": code, "details": details}}


# gRPC's default reconnect backoff grows to 120 s: a backend back from a long outage could
# wait that long for the next attempt (and /readyz shares the channel). Bounded, a backend
# that is back is reconnected to within about MAX_RECONNECT_BACKOFF_MS (plus 20% jitter).
MIN_RECONNECT_BACKOFF_MS = 250
MAX_RECONNECT_BACKOFF_MS = 2000


class ChatBackend:
    """One channel per process, shared by every request."""

    def __init__(self, target: str, *, max_message_bytes: int, retries: int = 2) -> None:
        self._channel = grpc.aio.insecure_channel(
            channel_target(target),
            options=[
                ("grpc.max_send_message_length", max_message_bytes),
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.service_config", SERVICE_CONFIG),
                ("grpc.initial_reconnect_backoff_ms", MIN_RECONNECT_BACKOFF_MS),
                ("grpc.min_reconnect_backoff_ms", MIN_RECONNECT_BACKOFF_MS),
                ("grpc.max_reconnect_backoff_ms", MAX_RECONNECT_BACKOFF_MS),
            ],
        )
        self._stub = pb_grpc.ChatServiceStub(self._channel)
        # The same method, sending a ChatRequest already serialized (no serializer: bytes).
        self._chat_wire: grpc.aio.UnaryStreamMultiCallable[bytes, pb.ChatChunk]
        self._chat_wire = self._channel.unary_stream(
            f"/{SERVICE_NAME}/Chat", response_deserializer=pb.ChatChunk.FromString
        )
        self._health = health_pb2_grpc.HealthStub(self._channel)
        self._retries = retries

    async def close(self) -> None:
        await self._channel.close()

    async def chat(
        self,
        request: pb.ChatRequest,
        *,
        metadata: Sequence[tuple[str, str]] = (),
        timeout: float | None = None,
        observer: CallObserver | None = None,
        wire: bytes | None = None,
    ) -> AsyncIterator[pb.ChatChunk]:
        """Stream the reply; gRPC errors become BackendError; closing the iterator cancels.

        A call that fails UNAVAILABLE before its first chunk is retried (bounded, with
        jittered backoff); once a chunk has been yielded, never: the client has seen it.
        """
        # `wire`: the request's messages, serialized by the caller (`request` has none): sent
        # after the rest of it, they parse as one ChatRequest (concatenation is a merge).
        payload = None if wire is None else request.SerializeToString() + wire
        for attempt in range(self._retries + 1):
            call: grpc.aio.UnaryStreamCall[Any, pb.ChatChunk]
            if payload is None:
                call = self._stub.Chat(request, timeout=timeout, metadata=tuple(metadata))
            else:
                call = self._chat_wire(payload, timeout=timeout, metadata=tuple(metadata))
            sent = False
            try:
                async for chunk in call:
                    if not sent:
                        sent = True
                        if observer:
                            observer.first_chunk()
                    if observer and chunk.HasField("usage"):
                        observer.usage(chunk.usage)
                    yield chunk
                return
            except grpc.aio.AioRpcError as exc:
                retry = (
                    exc.code() == grpc.StatusCode.UNAVAILABLE
                    and not sent
                    and attempt < self._retries
                )
                if not retry:
                    if observer:
                        observer.failed(exc.code().name)
                    raise _error(exc, request.request_id) from None
            finally:
                call.cancel()
            await asyncio.sleep(0.05 * 2**attempt * (0.5 + random.random()))

    async def list_models(self, *, timeout: float | None = None) -> list[pb.Model]:
        try:
            reply = await self._stub.ListModels(pb.ListModelsRequest(), timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            raise _error(exc) from None
        return list(reply.models)

    async def ready(self, *, timeout: float = 2.0) -> bool:
        """The backend answers the standard gRPC health check with SERVING."""
        request = health_pb2.HealthCheckRequest(service=SERVICE_NAME)
        try:
            reply = await self._health.Check(request, timeout=timeout)  # type: ignore[attr-defined]
        except grpc.aio.AioRpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
