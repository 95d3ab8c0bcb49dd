"""Server-sent event frames."""

from __future__ import annotations

from typing import Any

import orjson


def encode_event(event: dict[str, Any]) -> bytes:
    """`event: <type>` + `data: <compact JSON>`, as the Responses API streams them."""
    kind: str = event["type"]
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


def encode_data(payload: dict[str, Any]) -> bytes:
    """A `data:`-only frame, as Chat Completions streams them."""
    return b"data: " + orjson.dumps(payload) + b"\n\n"


DONE = b"data: [DONE]\n\n"
