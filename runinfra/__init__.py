"""runinfra: the ChatService contract (runinfra.chat.v1), serving scaffolding for its
implementations (runinfra.serving, runinfra.logs: servers only) and the native SDK:
RunInfra / AsyncRunInfra over HTTP, ChatClient / SyncChatClient over gRPC (imported on first
use), one error tree (runinfra.errors), typed results (runinfra.types)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runinfra.client import AsyncRunInfra, RunInfra
from runinfra.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    GatewayTimeoutError,
    InternalServerError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    RequestTimeoutError,
    RunInfraError,
    ServiceUnavailableError,
    StreamError,
    UnprocessableEntityError,
    UnsupportedMediaTypeError,
)
from runinfra.params import AUTO
from runinfra.streams import AsyncChatStream, AsyncResponseStream, ChatStream, ResponseStream

if TYPE_CHECKING:
    from runinfra.grpc_client import ChatClient, ChatReply, SyncChatClient

__all__ = [
    "AUTO",
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncChatStream",
    "AsyncResponseStream",
    "AsyncRunInfra",
    "AuthenticationError",
    "BadRequestError",
    "ChatClient",
    "ChatReply",
    "ChatStream",
    "ConflictError",
    "GatewayTimeoutError",
    "InternalServerError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestTimeoutError",
    "ResponseStream",
    "RunInfra",
    "RunInfraError",
    "ServiceUnavailableError",
    "StreamError",
    "SyncChatClient",
    "UnprocessableEntityError",
    "UnsupportedMediaTypeError",
]

_GRPC = frozenset({"ChatClient", "ChatReply", "SyncChatClient"})


def __getattr__(name: str) -> Any:
    """The gRPC client loads grpc and the generated code only when first named."""
    if name in _GRPC:
        from runinfra import grpc_client

        return getattr(grpc_client, name)
    raise AttributeError(f"module 'runinfra' has no attribute {name!r}")
