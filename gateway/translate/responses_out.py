"""ChatChunk stream -> Responses stream events, and the Response envelope.

One ResponseBuilder per request folds the chunks. Its methods return the SSE
frames to send (bytes, no I/O); `body()` is the envelope that both the final
lifecycle event and the non-streaming body carry, so the two cannot differ.
Ids and the clock are injected, so the output is deterministic under test.

Per-delta frames, the bulk of a stream, are filled into byte templates made once
per output item instead of a dict serialized per delta; they are byte-for-byte
what `encode_event` makes of the same event (tests/unit/test_responses_out.py).
Built for a non-streaming request (`streaming=False`), no frame is made at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson

from gateway.errors import GatewayError
from gateway.sse import encode_event
from gateway.translate import logprobs as lp
from gateway.translate.responses_in import Echo
from runinfra.chat.v1 import chat_service_pb2 as pb

Event = dict[str, Any]
_TEXT_DELTA = b"response.output_text.delta"
_TEXT_TAIL = b',"logprobs":[]}\n\n'
_ARGS_DELTA = b"response.function_call_arguments.delta"
_REASONING_DELTA = b"response.reasoning_text.delta"
_CONTENT_INDEX = b',"content_index":0,"delta":'

# FinishReason -> the Response's incomplete_details.reason (None: completed).
INCOMPLETE_REASONS: dict[int, str | None] = {
    pb.FINISH_REASON_UNSPECIFIED: None,
    pb.FINISH_REASON_STOP: None,
    pb.FINISH_REASON_TOOL_CALLS: None,
    pb.FINISH_REASON_LENGTH: "max_output_tokens",
    pb.FINISH_REASON_CONTENT_FILTER: "content_filter",
}


def usage_dict(usage: pb.Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cached_input_tokens,
            "cache_write_tokens": 0,
        },
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }


class ResponseBuilder:
    """Per-request state of one Response: output items, sequence numbers, usage."""

    __slots__ = (
        "_args", "_calls", "_completed_at", "_created_at", "_delta_templates", "_done_at",
        "_echo", "_error", "_frames", "_id", "_incomplete", "_incomplete_as_completed", "_live",
        "_logprobs", "_message", "_new_id", "_output", "_reasoning", "_seq", "_status",
        "_streaming", "_text", "_thought", "_tokens", "_usage",
    )  # fmt: skip

    def __init__(
        self,
        echo: Echo,
        *,
        response_id: str,
        created_at: int,
        new_id: Callable[[str], str],
        completed_at: Callable[[], int],
        incomplete_as_completed: bool = False,
        streaming: bool = True,
        logprobs: bool = False,
    ) -> None:
        self._echo = echo
        self._logprobs = logprobs  # asked for: text deltas, parts and .done events carry them
        self._tokens: list[pb.TokenLogprob] = []  # the open message's logprobs so far
        self._streaming = streaming
        self._frames: list[bytes] = []
        self._id = response_id
        self._created_at = created_at
        self._new_id = new_id
        self._completed_at = completed_at
        self._incomplete_as_completed = incomplete_as_completed
        self._seq = 0
        self._output: list[dict[str, Any]] = []
        self._message: dict[str, Any] | None = None  # the open message item
        self._text: list[str] = []  # its text so far
        self._reasoning: dict[str, Any] | None = None  # the open reasoning item
        self._thought: list[str] = []  # its text so far
        # Backend index -> function_call item not yet done, in order of appearance. One at a
        # time is in the output (`_live`, streamed as it comes); later calls wait their turn
        # there, so items never interleave.
        self._calls: dict[int, dict[str, Any]] = {}
        self._args: dict[int, list[str]] = {}
        self._live: int | None = None
        self._delta_templates: dict[str, tuple[bytes, bytes, bytes]] = {}  # item id -> template
        self._status = "in_progress"
        self._error: dict[str, Any] | None = None
        self._incomplete: dict[str, Any] | None = None
        self._usage: dict[str, Any] | None = None
        self._done_at: int | None = None

    # --- events --------------------------------------------------------------

    def _event(self, type_: str, **fields: Any) -> None:
        self._frames.append(encode_event({"type": type_, "sequence_number": self._seq, **fields}))
        self._seq += 1

    def _delta(self, item_id: str, delta: str) -> bytes:
        """A delta event from its item's template (the same bytes as `_event` would make)."""
        head, middle, tail = self._delta_templates[item_id]
        seq = self._seq
        self._seq = seq + 1
        return head + str(seq).encode() + middle + orjson.dumps(delta) + tail

    def _template(self, item_id: str, kind: bytes, output_index: int) -> None:
        """Made once per item: everything of its delta events but the number and the delta."""
        head = b"event: " + kind + b'\ndata: {"type":"' + kind + b'","sequence_number":'
        middle = b',"item_id":' + orjson.dumps(item_id) + b',"output_index":'
        middle += str(output_index).encode()
        if kind == _TEXT_DELTA:
            self._delta_templates[item_id] = (head, middle + _CONTENT_INDEX, _TEXT_TAIL)
        elif kind == _REASONING_DELTA:
            self._delta_templates[item_id] = (head, middle + _CONTENT_INDEX, b"}\n\n")
        else:
            self._delta_templates[item_id] = (head, middle + b',"delta":', b"}\n\n")

    def _take(self) -> bytes:
        out = b"".join(self._frames)
        self._frames.clear()
        return out

    def start(self) -> bytes:
        """The opening lifecycle events."""
        if self._streaming:
            envelope = self.body()  # the same (in-progress) envelope for both events
            self._event("response.created", response=envelope)
            self._event("response.in_progress", response=envelope)
        return self._take()

    def add(self, chunk: pb.ChatChunk) -> bytes:
        """Fold one chunk; return the frames it produces."""
        text = chunk.text
        if text and self._message is not None and not (_more_than_text(chunk) or self._logprobs):
            return self._more_text(text)  # the common case, kept short
        if chunk.reasoning_text:
            self._add_reasoning(chunk.reasoning_text)
        if text:
            self._add_text(chunk.text, chunk.logprobs)
        for delta in chunk.tool_calls:
            self._add_call_delta(delta)
        if chunk.HasField("usage"):
            self._usage = usage_dict(chunk.usage)
        if chunk.finish_reason:
            reason = INCOMPLETE_REASONS.get(chunk.finish_reason)
            self._incomplete = {"reason": reason} if reason else None
        return self._take()

    def _more_text(self, text: str) -> bytes:
        """More text for the open message: one delta frame, straight from its template."""
        assert self._message is not None
        self._text.append(text)
        return self._delta(self._message["id"], text) if self._streaming else b""

    def finish(self) -> bytes:
        """Close what is open and end with response.completed (or .incomplete)."""
        self._close_reasoning("incomplete" if self._incomplete else "completed")
        self._close_message("incomplete" if self._incomplete else "completed")
        self._close_calls()
        self._status = "incomplete" if self._incomplete else "completed"
        self._done_at = self._completed_at()
        terminal = "response.incomplete" if self._incomplete else "response.completed"
        if self._incomplete_as_completed:
            terminal = "response.completed"
        if self._streaming:
            self._event(terminal, response=self.body())
        return self._take()

    def fail(self, error: GatewayError) -> bytes:
        """End the stream with response.failed carrying the error."""
        code = "rate_limit_exceeded" if error.status == 429 else "server_error"
        message = error.message
        if self._reasoning is not None:
            self._reasoning["content"] = [_reasoning_part("".join(self._thought))]
            self._reasoning["status"] = "incomplete"
        if self._message is not None:
            self._message["content"] = [self._part("".join(self._text))]
            self._message["status"] = "incomplete"
        if self._live is not None:
            self._calls[self._live]["arguments"] = "".join(self._args[self._live])
            self._calls[self._live]["status"] = "incomplete"
        self._status = "failed"
        self._error = {"code": code, "message": message}
        if self._streaming:
            self._event("response.failed", response=self.body())
        return self._take()

    # --- the envelope --------------------------------------------------------

    def body(self) -> dict[str, Any]:
        echo = self._echo
        body = {
            "id": self._id,
            "object": "response",
            "created_at": self._created_at,
            "status": self._status,
            "completed_at": self._done_at if self._status == "completed" else None,
            "background": False,
            "error": self._error,
            "incomplete_details": self._incomplete if self._status == "incomplete" else None,
            "instructions": echo.instructions,
            "max_output_tokens": echo.max_output_tokens,
            "max_tool_calls": echo.max_tool_calls,
            "model": echo.model,
            "output": list(self._output),
            "parallel_tool_calls": echo.parallel_tool_calls,
            "previous_response_id": None,
            "reasoning": echo.reasoning,
            "store": False,
            "temperature": echo.temperature,
            "text": echo.text,
            "tool_choice": echo.tool_choice,
            "tools": echo.tools,
            "top_p": echo.top_p,
            "truncation": "disabled",
            "usage": self._usage if self._status != "in_progress" else None,
            "metadata": echo.metadata,
        }
        if echo.top_logprobs is not None:
            body["top_logprobs"] = echo.top_logprobs
        return body

    # --- items ---------------------------------------------------------------

    def _add_text(self, text: str, tokens: Sequence[pb.TokenLogprob]) -> None:
        if self._message is None:
            self._open_message()
        self._text.append(text)
        if self._logprobs:
            self._tokens.extend(tokens)
        if self._streaming:
            assert self._message is not None
            frame = self._delta(self._message["id"], text)
            if self._logprobs:  # the template's empty logprobs, filled
                frame = frame.removesuffix(b"[]}\n\n") + orjson.dumps(lp.text_event(tokens))
                frame += b"}\n\n"
            self._frames.append(frame)

    def _open_message(self) -> None:
        self._close_reasoning("completed")
        self._close_calls()
        item: dict[str, Any] = {
            "id": self._new_id("msg"),
            "type": "message",
            "status": "in_progress",
            "content": [],
            "role": "assistant",
        }
        self._message = item
        self._text = []
        self._tokens = []
        self._output.append(item)
        index = len(self._output) - 1
        if self._streaming:
            self._template(item["id"], _TEXT_DELTA, index)
            self._event(
                "response.output_item.added", output_index=index, item=dict(item, content=[])
            )
            self._event(
                "response.content_part.added",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                part=_text_part(""),
            )

    def _close_message(self, status: str) -> None:
        item = self._message
        if item is None:
            return
        self._message = None
        text = "".join(self._text)
        part = self._part(text)
        item["content"] = [part]
        item["status"] = status
        if self._streaming:
            index = self._output.index(item)
            ids = {"item_id": item["id"], "output_index": index, "content_index": 0}
            done_logprobs = lp.text_event(self._tokens) if self._logprobs else []
            self._event("response.output_text.done", **ids, text=text, logprobs=done_logprobs)
            self._event("response.content_part.done", **ids, part=part)
            self._event("response.output_item.done", output_index=index, item=item)

    def _part(self, text: str) -> dict[str, Any]:
        """The open message's output_text part, with its logprobs when asked for."""
        part = _text_part(text)
        if self._logprobs:
            part["logprobs"] = lp.output_text(self._tokens)
        return part

    def _add_call_delta(self, delta: pb.ToolCallDelta) -> None:
        item = self._calls.get(delta.index)
        if item is None:
            self._close_reasoning("completed")
            self._close_message("completed")
            item = {
                "id": self._new_id("fc"),
                "type": "function_call",
                "status": "in_progress",
                "arguments": "",
                "call_id": delta.id or self._new_id("call"),
                "name": delta.name,
            }
            if delta.name in self._echo.namespaced:  # a function of a namespace tool
                item["namespace"], item["name"] = self._echo.namespaced[delta.name]
            self._calls[delta.index] = item
            self._args[delta.index] = []
            if self._live is None:
                self._open_call(delta.index)
        if delta.arguments:
            self._args[delta.index].append(delta.arguments)
            if self._streaming and delta.index == self._live:
                self._frames.append(self._delta(item["id"], delta.arguments))

    def _open_call(self, index: int) -> None:
        """Put a call in the output (streaming: added, then the fragments held so far)."""
        item = self._calls[index]
        self._live = index
        self._output.append(item)
        if self._streaming:
            output_index = len(self._output) - 1
            self._template(item["id"], _ARGS_DELTA, output_index)
            added = dict(item, arguments="")
            self._event("response.output_item.added", output_index=output_index, item=added)
            for fragment in self._args[index]:
                self._frames.append(self._delta(item["id"], fragment))

    def _close_calls(self) -> None:
        """Every call, in order of appearance: each added (if waiting), then done."""
        for index, item in self._calls.items():
            if index != self._live:
                self._open_call(index)
            item["arguments"] = "".join(self._args[index])
            item["status"] = "completed"
            if self._streaming:
                output_index = len(self._output) - 1
                self._event(
                    "response.function_call_arguments.done",
                    item_id=item["id"],
                    output_index=output_index,
                    name=item["name"],
                    arguments=item["arguments"],
                )
                self._event("response.output_item.done", output_index=output_index, item=item)
        self._calls.clear()
        self._args.clear()
        self._live = None

    def _add_reasoning(self, text: str) -> None:
        if self._reasoning is None:
            self._open_reasoning()
        assert self._reasoning is not None
        self._thought.append(text)
        if self._streaming:
            self._frames.append(self._delta(self._reasoning["id"], text))

    def _open_reasoning(self) -> None:
        self._close_message("completed")
        self._close_calls()
        item: dict[str, Any] = {
            "id": self._new_id("rs"),
            "type": "reasoning",
            "summary": [],
            "content": [],
            "status": "in_progress",
        }
        self._reasoning = item
        self._thought = []
        self._output.append(item)
        if self._streaming:
            index = len(self._output) - 1
            self._template(item["id"], _REASONING_DELTA, index)
            self._event("response.output_item.added", output_index=index, item=dict(item))
            self._event(
                "response.content_part.added",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                part=_reasoning_part(""),
            )

    def _close_reasoning(self, status: str) -> None:
        item = self._reasoning
        if item is None:
            return
        self._reasoning = None
        text = "".join(self._thought)
        item["content"] = [_reasoning_part(text)]
        item["status"] = status
        if self._streaming:
            index = self._output.index(item)
            ids = {"item_id": item["id"], "output_index": index, "content_index": 0}
            self._event("response.reasoning_text.done", **ids, text=text)
            self._event("response.content_part.done", **ids, part=_reasoning_part(text))
            self._event("response.output_item.done", output_index=index, item=item)


def _more_than_text(chunk: pb.ChatChunk) -> bool:
    return bool(
        chunk.tool_calls or chunk.finish_reason or chunk.HasField("usage") or chunk.reasoning_text
    )


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _reasoning_part(text: str) -> dict[str, Any]:
    return {"type": "reasoning_text", "text": text}
