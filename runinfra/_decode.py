"""Streams, without I/O: SSE lines -> frames -> typed events, the text so far, the final
envelope, and the StreamError for an in-band failure. The sync and async stream wrappers
(runinfra.streams) only feed lines in."""

from __future__ import annotations

import json
from typing import Any, Generic, Protocol, TypeVar

from runinfra.errors import StreamError
from runinfra.types import (
    CallInfo,
    ChatChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatMessage,
    ChunkChoice,
    Response,
    ResponseEvent,
    ToolCall,
    ToolCallDelta,
)

E = TypeVar("E")
E_co = TypeVar("E_co", covariant=True)

# The events that end a Responses stream with an envelope.
TERMINAL = frozenset({"response.completed", "response.incomplete"})


class SSELines:
    """`text/event-stream` lines in, the `data` of each complete frame out."""

    def __init__(self) -> None:
        self._data: list[str] = []

    def feed(self, line: str) -> str | None:
        """The frame's data when `line` (without its newline) ends a frame, else None."""
        if not line:
            data, self._data = self._data, []
            return "\n".join(data) if data else None
        name, _, value = line.partition(":")
        if name == "data":
            self._data.append(value.removeprefix(" "))
        return None  # `event:` repeats the JSON's `type`; comments and ids are not used


class Decoder(Protocol[E_co]):
    """What a stream wrapper needs of its decoder."""

    @property
    def done(self) -> bool: ...
    @property
    def partial_text(self) -> str: ...
    def decode(self, data: str) -> E_co | None: ...
    def broken(self, message: str) -> StreamError: ...


class _Partial(Generic[E]):
    """The text received so far and the ids, for StreamError."""

    def __init__(self, info: CallInfo) -> None:
        self.info = info
        self.parts: list[str] = []

    @property
    def partial_text(self) -> str:
        return "".join(self.parts)

    def broken(self, message: str, code: str | None = None) -> StreamError:
        return StreamError(
            message,
            code=code,
            type="server_error",
            partial_text=self.partial_text,
            request_id=self.info.request_id,
            client_request_id=self.info.client_request_id,
        )


def _load(data: str) -> dict[str, Any]:
    value = json.loads(data)
    if not isinstance(value, dict):
        raise ValueError("a stream frame is not a JSON object")
    return value


class ResponseDecoder(_Partial[ResponseEvent]):
    """Responses SSE frames -> ResponseEvent; `response.failed` and `error` raise StreamError."""

    def __init__(self, info: CallInfo) -> None:
        super().__init__(info)
        self.final: Response | None = None

    @property
    def done(self) -> bool:
        return self.final is not None

    def decode(self, data: str) -> ResponseEvent:
        payload = _load(data)
        kind = payload.get("type")
        if kind in ("response.failed", "error"):
            error = (payload.get("response") or {}).get("error") or payload
            raise self.broken(error.get("message") or "the stream failed", error.get("code"))
        event = ResponseEvent.of(payload, self.info)
        if kind == "response.output_text.delta":
            self.parts.append(event.delta)
        if kind in TERMINAL:
            self.final = event.response
        return event


class ChatDecoder(_Partial[ChatCompletionChunk]):
    """Chat Completions `data:` frames -> chunks; `[DONE]` ends; an `error` frame raises."""

    def __init__(self, info: CallInfo) -> None:
        super().__init__(info)
        self.chunks: list[ChatCompletionChunk] = []
        self.done = False

    def decode(self, data: str) -> ChatCompletionChunk | None:
        if data == "[DONE]":
            self.done = True
            return None
        payload = _load(data)
        if isinstance(error := payload.get("error"), dict):
            raise self.broken(error.get("message") or "the stream failed", error.get("code"))
        chunk = ChatCompletionChunk.of(payload)
        self.chunks.append(chunk)
        self.parts.append(chunk.text)
        return chunk

    def completion(self) -> ChatCompletion:
        """The chunks folded into one chat.completion: one choice per index (n > 1 streams
        interleave their choices' chunks)."""
        first = self.chunks[0]
        by_index: dict[int, list[ChunkChoice]] = {}
        for chunk in self.chunks:
            for c in chunk.choices:
                by_index.setdefault(c.index, []).append(c)
        usage = next((c.usage for c in reversed(self.chunks) if c.usage), None)
        choices = tuple(_fold_choice(i, by_index[i]) for i in sorted(by_index))
        choices = choices or (_fold_choice(0, []),)
        return ChatCompletion(first.id, first.model, first.created, choices, usage, self.info)


def _fold_choice(index: int, choices: list[ChunkChoice]) -> ChatChoice:
    finish = next((c.finish_reason for c in reversed(choices) if c.finish_reason), None)
    deltas = [d for c in choices for d in c.delta.tool_calls]
    reasoning = "".join(c.delta.reasoning_content or "" for c in choices) or None
    text = "".join(c.delta.content or "" for c in choices)
    message = ChatMessage("assistant", text, None, _fold_calls(deltas), reasoning)
    asked = any(c.logprobs is not None for c in choices)
    logprobs = tuple(t for c in choices for t in c.logprobs or ()) if asked else None
    return ChatChoice(index, message, finish, logprobs)


def _fold_calls(deltas: list[ToolCallDelta]) -> tuple[ToolCall, ...]:
    calls: dict[int, tuple[str, str, str]] = {}
    for d in deltas:
        id_, name, arguments = calls.get(d.index, ("", "", ""))
        calls[d.index] = (id_ or d.id or "", name or d.name or "", arguments + d.arguments)
    return tuple(ToolCall(*calls[i]) for i in sorted(calls))
