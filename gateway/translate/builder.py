"""What both endpoints' reply builders do (responses_out.ResponseBuilder,
chat_out.ChatCompletionBuilder): frames of a stream, and the body of a whole reply."""

from __future__ import annotations

from typing import Any, Protocol

from gateway.errors import GatewayError
from runinfra.chat.v1 import chat_service_pb2 as pb


class StreamBuilder(Protocol):
    def start(self) -> bytes: ...
    def add(self, chunk: pb.ChatChunk) -> bytes: ...
    def finish(self) -> bytes: ...
    def fail(self, error: GatewayError) -> bytes: ...
    def body(self) -> dict[str, Any]: ...
