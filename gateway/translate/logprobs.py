"""ChatChunk.logprobs -> the JSON shapes both APIs give them (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from runinfra.chat.v1 import chat_service_pb2 as pb

Entry = dict[str, Any]


def _bytes(item: pb.TokenLogprob | pb.TopLogprob) -> list[int] | None:
    return list(item.bytes) if item.HasField("bytes") else None


def chat_content(tokens: Iterable[pb.TokenLogprob]) -> list[Entry]:
    """choices[].logprobs.content entries (ChatCompletionTokenLogprob); unknown bytes: null."""
    return [
        {
            "token": t.token,
            "logprob": t.logprob,
            "bytes": _bytes(t),
            "top_logprobs": [
                {"token": a.token, "logprob": a.logprob, "bytes": _bytes(a)} for a in t.top_logprobs
            ],
        }
        for t in tokens
    ]


def chat_choice(content: list[Entry]) -> dict[str, Any]:
    """A choice's `logprobs` object."""
    return {"content": content, "refusal": None}


def output_text(tokens: Iterable[pb.TokenLogprob]) -> list[Entry]:
    """An output_text part's `logprobs`: bytes are required there (the token's UTF-8 when
    the backend did not say)."""
    return [
        {
            "token": t.token,
            "bytes": _known_bytes(t),
            "logprob": t.logprob,
            "top_logprobs": [
                {"token": a.token, "bytes": _known_bytes(a), "logprob": a.logprob}
                for a in t.top_logprobs
            ],
        }
        for t in tokens
    ]


def text_event(tokens: Iterable[pb.TokenLogprob]) -> list[Entry]:
    """response.output_text.delta/.done `logprobs` (ResponseLogProb: no bytes)."""
    return [
        {
            "token": t.token,
            "logprob": t.logprob,
            "top_logprobs": [{"token": a.token, "logprob": a.logprob} for a in t.top_logprobs],
        }
        for t in tokens
    ]


def _known_bytes(item: pb.TokenLogprob | pb.TopLogprob) -> list[int]:
    return list(item.bytes) if item.HasField("bytes") else list(item.token.encode())
