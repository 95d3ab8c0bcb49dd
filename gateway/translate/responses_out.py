"""ChatChunk stream -> Responses stream events, and the Response envelope.

One ResponseBuilder per request folds the chunks. Its methods return the events
to send (dicts, no I/O); `response()` is the envelope that both the final
lifecycle event and the non-streaming body carry, so the two cannot differ.
Ids and the clock are injected, so the output is deterministic under test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.pb import chat_service_pb2 as pb

Event = dict[str, Any]

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

    def __init__(
        self,
        echo: dict[str, Any],
        *,
        response_id: str,
        created_at: int,
        new_id: Callable[[str], str],
        completed_at: Callable[[], int],
        incomplete_as_completed: bool = False,
    ) -> None:
        self._echo = echo
        self._id = response_id
        self._created_at = created_at
        self._new_id = new_id
        self._completed_at = completed_at
        self._incomplete_as_completed = incomplete_as_completed
        self._seq = 0
        self._output: list[dict[str, Any]] = []
        self._message: dict[str, Any] | None = None  # the open message item
        self._text: list[str] = []  # its text so far
        self._calls: dict[int, dict[str, Any]] = {}  # backend index -> open function_call item
        self._args: dict[int, list[str]] = {}
        self._status = "in_progress"
        self._error: dict[str, Any] | None = None
        self._incomplete: dict[str, Any] | None = None
        self._usage: dict[str, Any] | None = None
        self._done_at: int | None = None

    # --- events --------------------------------------------------------------

    def _event(self, type_: str, **fields: Any) -> Event:
        event = {"type": type_, "sequence_number": self._seq, **fields}
        self._seq += 1
        return event

    def start(self) -> list[Event]:
        """The opening lifecycle events."""
        return [
            self._event("response.created", response=self.response()),
            self._event("response.in_progress", response=self.response()),
        ]

    def add(self, chunk: pb.ChatChunk) -> list[Event]:
        """Fold one chunk; return the events it produces."""
        events: list[Event] = []
        if chunk.text:
            events += self._add_text(chunk.text)
        for delta in chunk.tool_calls:
            events += self._add_call_delta(delta)
        if chunk.HasField("usage"):
            self._usage = usage_dict(chunk.usage)
        if chunk.finish_reason:
            reason = INCOMPLETE_REASONS.get(chunk.finish_reason)
            self._incomplete = {"reason": reason} if reason else None
        return events

    def finish(self) -> list[Event]:
        """Close what is open and end with response.completed (or .incomplete)."""
        item_status = "incomplete" if self._incomplete else "completed"
        events = self._close_message(item_status) + self._close_calls()
        self._status = "incomplete" if self._incomplete else "completed"
        self._done_at = self._completed_at()
        terminal = "response.incomplete" if self._incomplete else "response.completed"
        if self._incomplete_as_completed:
            terminal = "response.completed"
        return [*events, self._event(terminal, response=self.response())]

    def fail(self, message: str, code: str = "server_error") -> list[Event]:
        """End the stream with response.failed carrying the error."""
        if self._message is not None:
            self._message["content"] = [_text_part("".join(self._text))]
            self._message["status"] = "incomplete"
        for index, item in self._calls.items():
            item["arguments"] = "".join(self._args[index])
            item["status"] = "incomplete"
        self._status = "failed"
        self._error = {"code": code, "message": message}
        return [self._event("response.failed", response=self.response())]

    # --- the envelope --------------------------------------------------------

    def response(self) -> dict[str, Any]:
        echo = self._echo
        return {
            "id": self._id,
            "object": "response",
            "created_at": self._created_at,
            "status": self._status,
            "completed_at": self._done_at if self._status == "completed" else None,
            "background": False,
            "error": self._error,
            "incomplete_details": self._incomplete if self._status == "incomplete" else None,
            "instructions": echo["instructions"],
            "max_output_tokens": echo["max_output_tokens"],
            "max_tool_calls": echo["max_tool_calls"],
            "model": echo["model"],
            "output": list(self._output),
            "parallel_tool_calls": echo["parallel_tool_calls"],
            "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None},
            "store": False,
            "temperature": echo["temperature"],
            "text": echo["text"],
            "tool_choice": echo["tool_choice"],
            "tools": echo["tools"],
            "top_p": echo["top_p"],
            "truncation": "disabled",
            "usage": self._usage if self._status != "in_progress" else None,
            "metadata": echo["metadata"],
        }

    # --- items ---------------------------------------------------------------

    def _add_text(self, text: str) -> list[Event]:
        events = [] if self._message else self._open_message()
        self._text.append(text)
        assert self._message is not None
        events.append(
            self._event(
                "response.output_text.delta",
                item_id=self._message["id"],
                output_index=len(self._output) - 1,
                content_index=0,
                delta=text,
                logprobs=[],
            )
        )
        return events

    def _open_message(self) -> list[Event]:
        events = self._close_calls()
        item = {
            "id": self._new_id("msg"),
            "type": "message",
            "status": "in_progress",
            "content": [],
            "role": "assistant",
        }
        self._message = item
        self._text = []
        self._output.append(item)
        index = len(self._output) - 1
        return [
            *events,
            self._event(
                "response.output_item.added", output_index=index, item=dict(item, content=[])
            ),
            self._event(
                "response.content_part.added",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                part=_text_part(""),
            ),
        ]

    def _close_message(self, status: str) -> list[Event]:
        item = self._message
        if item is None:
            return []
        self._message = None
        text = "".join(self._text)
        part = _text_part(text)
        item["content"] = [part]
        item["status"] = status
        index = self._output.index(item)
        ids = {"item_id": item["id"], "output_index": index, "content_index": 0}
        return [
            self._event("response.output_text.done", **ids, text=text, logprobs=[]),
            self._event("response.content_part.done", **ids, part=part),
            self._event("response.output_item.done", output_index=index, item=item),
        ]

    def _add_call_delta(self, delta: pb.ToolCallDelta) -> list[Event]:
        events: list[Event] = []
        item = self._calls.get(delta.index)
        if item is None:
            events = self._close_message("completed")
            item = {
                "id": self._new_id("fc"),
                "type": "function_call",
                "status": "in_progress",
                "arguments": "",
                "call_id": delta.id or self._new_id("call"),
                "name": delta.name,
            }
            self._calls[delta.index] = item
            self._args[delta.index] = []
            self._output.append(item)
            events.append(
                self._event(
                    "response.output_item.added",
                    output_index=len(self._output) - 1,
                    item=dict(item),
                )
            )
        if delta.arguments:
            self._args[delta.index].append(delta.arguments)
            events.append(
                self._event(
                    "response.function_call_arguments.delta",
                    item_id=item["id"],
                    output_index=self._output.index(item),
                    delta=delta.arguments,
                )
            )
        return events

    def _close_calls(self) -> list[Event]:
        events: list[Event] = []
        for index, item in self._calls.items():
            item["arguments"] = "".join(self._args[index])
            item["status"] = "completed"
            output_index = self._output.index(item)
            events.append(
                self._event(
                    "response.function_call_arguments.done",
                    item_id=item["id"],
                    output_index=output_index,
                    name=item["name"],
                    arguments=item["arguments"],
                )
            )
            events.append(
                self._event("response.output_item.done", output_index=output_index, item=item)
            )
        self._calls.clear()
        self._args.clear()
        return events


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
