"""`python -m bench.openai_upstream --port P`: the cheapest OpenAI-compatible upstream for
bench/litellm.py.

`POST /v1/chat/completions` (streaming) echoes the last user message as the stub does for
`stub-echo`: one `chat.completion.chunk` frame per word (the stub's split, so the same deltas),
the role first, `finish_reason` on the last word, a usage chunk when asked, then
`data: [DONE]`. The frames of a text are built once and cached; each frame is its own `send`,
as a model server writes tokens. Non-streaming requests get one `chat.completion`.
`GET /v1/models` lists `stub-echo`. Same uvicorn settings as bench/serve.py.
"""

from __future__ import annotations

import argparse
import functools
import re
from collections.abc import AsyncIterator

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

MODEL = "stub-echo"
_WORD = re.compile(r"\s*\S+\s*")  # the stub's split (backend_stub/behaviour.py)
_BASE = {"id": "chatcmpl-bench", "created": 1700000000, "model": MODEL}


def _frame(choices: list[object], usage: object = None) -> bytes:
    chunk = {**_BASE, "object": "chat.completion.chunk", "choices": choices, "usage": usage}
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def _usage(text: str) -> dict[str, int]:
    words = len(_WORD.findall(text))
    return {"prompt_tokens": words, "completion_tokens": words, "total_tokens": 2 * words}


@functools.lru_cache(maxsize=16)
def frames(text: str, usage: bool) -> tuple[bytes, ...]:
    """Every SSE frame of the streamed echo of `text`."""
    words = _WORD.findall(text) or ["(empty)"]
    role = {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
    out = [_frame([role])]
    for i, word in enumerate(words):
        finish = "stop" if i == len(words) - 1 else None
        out.append(_frame([{"index": 0, "delta": {"content": word}, "finish_reason": finish}]))
    if usage:
        out.append(_frame([], _usage(text)))
    return (*out, b"data: [DONE]\n\n")


def _last_user_text(payload: dict[str, object]) -> str:
    messages = payload.get("messages")
    for message in reversed(messages if isinstance(messages, list) else []):
        content = message.get("content") if isinstance(message, dict) else None
        if message.get("role") == "user" and isinstance(content, str):
            return content
    return ""


async def chat(request: Request) -> Response:
    payload = orjson.loads(await request.body())
    text = _last_user_text(payload)
    if not payload.get("stream"):
        message = {"role": "assistant", "content": text}
        choice = {"index": 0, "message": message, "finish_reason": "stop"}
        body = {**_BASE, "object": "chat.completion", "choices": [choice], "usage": _usage(text)}
        return Response(orjson.dumps(body), media_type="application/json")
    options = payload.get("stream_options")
    usage = isinstance(options, dict) and bool(options.get("include_usage"))
    ready = frames(text, usage)

    async def body_iter() -> AsyncIterator[bytes]:
        for frame in ready:
            yield frame

    return StreamingResponse(body_iter(), media_type="text/event-stream")


async def models(_: Request) -> Response:
    data = [{"id": MODEL, "object": "model", "created": 1700000000, "owned_by": "bench"}]
    return Response(orjson.dumps({"object": "list", "data": data}), media_type="application/json")


def create_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
        ]
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args()
    uvicorn.run(
        create_app(),
        host="127.0.0.1",
        port=args.port,
        loop="auto",
        http="auto",
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
