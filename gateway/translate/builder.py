"""What both endpoints' reply builders do (responses_out.ResponseBuilder,
chat_out.ChatCompletionBuilder, and choices.ChoicesBuilder over n tagged streams): frames
of a stream, and the body of a whole reply."""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from gateway.errors import GatewayError

C_contra = TypeVar("C_contra", contravariant=True)  # what `add` folds: a ChatChunk, or a pair


class StreamBuilder(Protocol[C_contra]):
    def start(self) -> bytes: ...
    def add(self, chunk: C_contra) -> bytes: ...
    def finish(self) -> bytes: ...
    def fail(self, error: GatewayError) -> bytes: ...
    def body(self) -> dict[str, Any]: ...
