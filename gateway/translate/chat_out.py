"""ChatChunk stream -> chat.completion.chunk frames, and the chat.completion envelope.

One ChatCompletionBuilder per request folds the chunks. `add` and `finish`
return the `data:` frames to stream (bytes, no I/O); `body()` is the
non-streaming body, folded from the same state, so the two cannot differ. Ids
and the clock are injected, so the output is deterministic under test.

A plain text delta, the bulk of a stream, is filled into a byte template made
once per completion; it is byte-for-byte what `encode_data` makes of the same
chunk (tests/unit/test_chat_out.py). With `streaming=False` no frame is made.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import orjson

from gateway.errors import GatewayError
from gateway.sse import DONE, encode_data
from gateway.translate import logprobs as lp
from runinfra.chat.v1 import chat_service_pb2 as pb

Chunk = dict[str, Any]

# FinishReason -> choices[].finish_reason. A stream that ends without a reason
# (or with one this gateway does not know yet) ended normally.
FINISH_REASONS: dict[int, str] = {
    pb.FINISH_REASON_UNSPECIFIED: "stop",
    pb.FINISH_REASON_STOP: "stop",
    pb.FINISH_REASON_LENGTH: "length",
    pb.FINISH_REASON_TOOL_CALLS: "tool_calls",
    pb.FINISH_REASON_CONTENT_FILTER: "content_filter",
}
# The tier every request runs at (requests asking for another are rejected).
SERVICE_TIER = "default"


def finish_reason(value: int) -> str:
    return FINISH_REASONS.get(value, "stop")


def usage_dict(usage: pb.Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": usage.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


class ChatCompletionBuilder:
    """Per-request state of one chat completion: text, tool calls, finish reason, usage."""

    __slots__ = (
        "_calls", "_created", "_finish", "_held", "_id", "_include_usage", "_index", "_logprobs",
        "_model", "_new_id", "_plain", "_reasoning", "_started", "_streaming", "_text",
        "_text_head", "_text_tail", "_tokens", "_usage",
    )  # fmt: skip

    def __init__(
        self,
        *,
        model: str,
        completion_id: str,
        created: int,
        new_id: Callable[[str], str],
        include_usage: bool = False,
        streaming: bool = True,
        index: int = 0,
        logprobs: bool = False,
    ) -> None:
        self._streaming = streaming
        self._index = index  # this choice's index (gateway.fanout serves n > 1)
        self._logprobs = logprobs  # the request asked for them: text frames carry them
        self._tokens: list[pb.TokenLogprob] = []
        self._model = model
        self._id = completion_id
        self._created = created
        self._new_id = new_id
        self._include_usage = include_usage
        self._text: list[str] = []
        self._calls: dict[int, dict[str, Any]] = {}  # backend index -> the call so far
        # Pieces of calls after the first, held until the stream ends, so that each call's
        # deltas go out together (the first call streams as it comes).
        self._held: list[dict[str, Any]] = []
        self._reasoning: list[str] = []
        self._finish: str | None = None
        self._usage: dict[str, Any] | None = None
        self._started = False
        self._plain = False  # started, without logprobs: text deltas fill the template
        # A text-only delta frame is head + JSON string + tail. Only fixed keys follow the
        # content, so the last occurrence of the placeholder is the content.
        sample = encode_data(self._frame({"content": "\x00"}, None))
        self._text_head, _, self._text_tail = sample.rpartition(b'"\\u0000"')

    # --- stream ----------------------------------------------------------------

    def add(self, chunk: pb.ChatChunk) -> bytes:
        """Fold one backend chunk; return the frames it produces."""
        text = chunk.text
        if (
            self._plain
            and text
            and not (chunk.tool_calls or chunk.finish_reason or chunk.reasoning_text)
        ):
            self._text.append(text)
            if chunk.HasField("usage"):
                self._usage = usage_dict(chunk.usage)  # usage rides on no frame of its own
            if not self._streaming:
                return b""
            return self._text_head + orjson.dumps(text) + self._text_tail
        frames = self._add(chunk)
        return _encode(frames) if self._streaming else b""

    def _add(self, chunk: pb.ChatChunk) -> list[Chunk]:
        delta: dict[str, Any] = {}
        if chunk.reasoning_text:
            self._reasoning.append(chunk.reasoning_text)
            delta["reasoning_content"] = chunk.reasoning_text
        if chunk.text:
            self._text.append(chunk.text)
            delta["content"] = chunk.text
        if chunk.tool_calls and (entries := self._call_deltas(chunk.tool_calls)):
            delta["tool_calls"] = entries
        if chunk.HasField("usage"):
            self._usage = usage_dict(chunk.usage)
        reason = finish_reason(chunk.finish_reason) if chunk.finish_reason else None
        frames, delta = self._open(delta)
        if delta:
            logprobs = self._add_logprobs(chunk)
            frames.append(self._frame(delta, None if self._held else reason, logprobs))
        if reason:
            frames += self._release_held()
            if self._held or not delta:
                frames.append(self._frame({}, reason))
            self._held = []
        self._finish = reason or self._finish
        return frames

    def _add_logprobs(self, chunk: pb.ChatChunk) -> dict[str, Any] | None:
        """The frame's `logprobs` object, when the request asked for them and there is text."""
        if not (self._logprobs and chunk.text):
            return None
        self._tokens.extend(chunk.logprobs)
        return lp.chat_choice(lp.chat_content(chunk.logprobs))

    def _release_held(self) -> list[Chunk]:
        """The held pieces of later calls, one frame each, call after call."""
        held = sorted(self._held, key=lambda e: e["index"])  # stable: fragments keep order
        return [self._frame({"tool_calls": [entry]}, None) for entry in held]

    def start(self) -> bytes:
        """Nothing: the role goes out with the first chunk."""
        return b""

    def finish(self) -> bytes:
        """What the stream still owes: the finish reason if no chunk carried one, then usage,
        then `data: [DONE]`."""
        frames = self._finish_frames()
        if self._include_usage:
            frames.append(self.usage_chunk(self._usage))
        return _encode(frames) + DONE if self._streaming else b""

    def finish_choice(self) -> bytes:
        """What this choice still owes (its finish reason), without the usage chunk or [DONE]:
        one choice of several (gateway.translate.choices)."""
        return _encode(self._finish_frames()) if self._streaming else b""

    def usage(self) -> dict[str, Any] | None:
        """The usage so far (None until the backend reports it)."""
        return self._usage

    def usage_chunk(self, usage: dict[str, Any] | None) -> Chunk:
        """The chunk of `stream_options.include_usage`: no choices, the usage."""
        return self._envelope("chat.completion.chunk", [], usage)

    def fail(self, error: GatewayError) -> bytes:
        """A failure after the first frame: one `data: {"error": {...}}` frame (the OpenAI
        error shape, which the SDK raises as APIError) and no [DONE], as OpenAI does: [DONE]
        means the completion is whole, so a client reading until it must not mistake a broken
        stream for a finished one."""
        return encode_data(error.body())

    def _finish_frames(self) -> list[Chunk]:
        frames, _ = self._open({})
        frames += self._release_held()
        self._held = []
        if self._finish is None:
            self._finish = "stop"
            frames.append(self._frame({}, self._finish))
        return frames

    def _open(self, delta: dict[str, Any]) -> tuple[list[Chunk], dict[str, Any]]:
        """The role goes out once: on its own frame with content "" (as OpenAI sends it),
        or on the first tool-call delta with content null when the reply starts with one."""
        if self._started:
            return [], delta
        self._started = True
        self._plain = not self._logprobs
        if "tool_calls" in delta and "content" not in delta:
            return [], {"role": "assistant", "content": None, **delta}
        return [self._frame({"role": "assistant", "content": ""}, None)], delta

    def _call_deltas(self, deltas: Iterable[pb.ToolCallDelta]) -> list[dict[str, Any]]:
        """One entry per index (same-index pieces of one chunk merged); id, type and name
        go out on a call's first entry only. Entries of calls after the first are held
        (returned: the first call's entry, if any)."""
        entries: dict[int, dict[str, Any]] = {}
        for piece in deltas:
            entry = entries.get(piece.index)
            if entry is None:
                entry = entries[piece.index] = self._entry(piece)
            entry["function"]["arguments"] += piece.arguments
            self._calls[piece.index]["function"]["arguments"] += piece.arguments
        first = next(iter(self._calls))
        self._held += [e for i, e in entries.items() if i != first]
        return [e for i, e in entries.items() if i == first]

    def _entry(self, piece: pb.ToolCallDelta) -> dict[str, Any]:
        if piece.index in self._calls:
            return {"index": piece.index, "function": {"arguments": ""}}
        call_id = piece.id or self._new_id("call")
        self._calls[piece.index] = {
            "id": call_id,
            "type": "function",
            "function": {"name": piece.name, "arguments": ""},
        }
        return {
            "index": piece.index,
            "id": call_id,
            "type": "function",
            "function": {"name": piece.name, "arguments": ""},
        }

    def _frame(
        self, delta: dict[str, Any], reason: str | None, logprobs: dict[str, Any] | None = None
    ) -> Chunk:
        choice = {
            "index": self._index,
            "delta": delta,
            "logprobs": logprobs,
            "finish_reason": reason,
        }
        frame = self._envelope("chat.completion.chunk", [choice], None)
        if not self._include_usage:
            del frame["usage"]
        return frame

    # --- the envelope ------------------------------------------------------------

    def body(self) -> dict[str, Any]:
        """The non-streaming body."""
        calls = [_copy_call(self._calls[i]) for i in sorted(self._calls)]
        text = "".join(self._text)
        message: dict[str, Any] = {
            "role": "assistant",
            "content": text if text or not calls else None,
            "refusal": None,
            "annotations": [],
        }
        if self._reasoning:
            message["reasoning_content"] = "".join(self._reasoning)
        if calls:
            message["tool_calls"] = calls
        choice = {
            "index": self._index,
            "message": message,
            "finish_reason": self._finish or "stop",
            "logprobs": lp.chat_choice(lp.chat_content(self._tokens)) if self._logprobs else None,
        }
        return self._envelope("chat.completion", [choice], self._usage)

    def _envelope(self, kind: str, choices: list[Any], usage: Any) -> dict[str, Any]:
        return {
            "id": self._id,
            "object": kind,
            "created": self._created,
            "model": self._model,
            "choices": choices,
            "usage": usage,
            "service_tier": SERVICE_TIER,
            "system_fingerprint": None,
        }


def _encode(frames: list[Chunk]) -> bytes:
    return b"".join(encode_data(f) for f in frames)


def _copy_call(call: dict[str, Any]) -> dict[str, Any]:
    return {**call, "function": dict(call["function"])}
