"""n choices of one chat completion, each folded by its own ChatCompletionBuilder, merged.

The chunks arrive tagged with their choice's index (gateway.fanout interleaves the n
backend streams); each choice's frames carry that index. The stream ends with every
choice's finish, one usage chunk when asked (the prompt counted once, the completions
summed), and [DONE]; the non-streaming body lists the choices in index order with that usage.
Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from gateway.errors import GatewayError
from gateway.sse import DONE, encode_data
from gateway.translate.chat_out import ChatCompletionBuilder
from runinfra.chat.v1 import chat_service_pb2 as pb

Tagged = tuple[int, pb.ChatChunk]


class ChoicesBuilder:
    """A StreamBuilder over (choice index, chunk) pairs."""

    __slots__ = ("_choices", "_include_usage", "_streaming")

    def __init__(
        self, choices: list[ChatCompletionBuilder], *, include_usage: bool, streaming: bool
    ) -> None:
        self._choices = choices  # choices[i] was built with index=i, and include_usage
        self._include_usage = include_usage
        self._streaming = streaming

    def start(self) -> bytes:
        return b""

    def add(self, tagged: Tagged) -> bytes:
        index, chunk = tagged
        return self._choices[index].add(chunk)

    def finish(self) -> bytes:
        if not self._streaming:
            return b""
        tail = b"".join(c.finish_choice() for c in self._choices)
        if self._include_usage:
            tail += encode_data(self._choices[0].usage_chunk(self._usage()))
        return tail + DONE

    def fail(self, error: GatewayError) -> bytes:
        return self._choices[0].fail(error)

    def body(self) -> dict[str, Any]:
        bodies = [c.body() for c in self._choices]
        return {
            **bodies[0],
            "choices": [choice for b in bodies for choice in b["choices"]],
            "usage": self._usage(),
        }

    def _usage(self) -> dict[str, Any] | None:
        """The completions' counts summed over the choices, the prompt's counted once (one
        prompt, n completions: as OpenAI and vLLM report `n`); None if no call reported it."""
        usages = [u for c in self._choices if (u := c.usage()) is not None]
        if not usages:
            return None
        out = _sum(usages)
        out["prompt_tokens"] = usages[0]["prompt_tokens"]
        out["prompt_tokens_details"] = usages[0]["prompt_tokens_details"]
        out["total_tokens"] = out["prompt_tokens"] + out["completion_tokens"]
        return out


def _sum(usages: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in usages[0].items():
        if isinstance(value, dict):
            out[key] = _sum([u[key] for u in usages])
        else:
            out[key] = sum(u[key] for u in usages)
    return out
