"""A scripted OpenAI-compatible HTTP server for the backend_openai tests.

Starlette served by uvicorn on 127.0.0.1 (a pre-bound socket) on its own loop
thread. What POST /v1/chat/completions does is chosen by the request's `model`:

  fake-text     "Hello", ", ", "world", "!" (finish "stop" on the last one), then
                a usage chunk with choices [] when stream_options.include_usage;
                a chat.completion when stream is false. With `logprobs`, each text
                chunk carries `logprob_entry(text, top_logprobs)`
  fake-tools    one get_weather call, its arguments in three fragments, finish tool_calls
  fake-json     a chat.completion even when asked to stream (a server ignoring `stream`)
  fake-error-frame  one text chunk, then an in-band {"error": {...}} event
  fake-429      HTTP 429 with an OpenAI error body
  fake-500      HTTP 500 with an OpenAI error body
  fake-slow     a chunk every 50 ms for 10 s; `disconnected` is set when the client goes
  fake-leaky-500    HTTP 500 whose message names the server's source files (as llama.cpp's do)
  fake-reasoning    reasoning in `reasoning_content` deltas (vLLM, SGLang, llama.cpp), then text
  fake-reasoning-alt  the same reasoning in `reasoning` deltas (newer vLLM, Ollama)
  anything else HTTP 404, as vLLM answers an unknown model

Strict, as llama-cpp-python's server is, on every request: an X-Request-Id that is not a
UUID gets an empty HTTP 400, and so does a message whose `content` is null.

Every request is recorded (path, headers, JSON body) in `requests`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tests.support import LoopThread, ServedApp

MODELS = (
    "fake-text", "fake-tools", "fake-json", "fake-error-frame", "fake-429", "fake-500", "fake-slow",
    "fake-leaky-500", "fake-reasoning", "fake-reasoning-alt",
)  # fmt: skip
LEAKY_MESSAGE = "/home/ci/llama.cpp/tools/server/server.cpp:1234: GGML_ASSERT(n_tokens > 0) failed"
REASONING = ("Let me ", "think.")
CREATED = 1_700_000_000
TEXT = ("Hello", ", ", "world", "!")
USAGE = {
    "prompt_tokens": 12,
    "completion_tokens": 4,
    "total_tokens": 16,
    "prompt_tokens_details": {"cached_tokens": 2},
    "completion_tokens_details": {"reasoning_tokens": 1},
}
ARGUMENTS = ('{"city"', ': "Pa', 'ris"}')
RATE_LIMIT_MESSAGE = "Rate limit reached for fake-429: slow down"
SERVER_ERROR_MESSAGE = "The fake upstream broke"
SLOW_DELAY = 0.05


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


def _chunk(
    model: str, delta: dict[str, Any], finish: str | None = None, logprobs: Any = None
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish}],
    }


def logprob_entry(token: str, top: int) -> dict[str, Any]:
    """The fake's logprob of a token: -0.25 per character; alternative k is the token
    uppercased with k "!" after it, at -(k + 1)."""
    alternatives = [
        {"token": f"{token.upper()}{'!' * k}", "logprob": -(k + 1.0), "bytes": None}
        for k in range(top)
    ]
    return {
        "token": token,
        "logprob": -0.25 * len(token),
        "bytes": list(token.encode()),
        "top_logprobs": alternatives,
    }


def _usage_chunk(model: str) -> dict[str, Any]:
    return {**_chunk(model, {}), "choices": [], "usage": USAGE}


def _tool_call(i: int, fragment: str) -> dict[str, Any]:
    call: dict[str, Any] = {"index": 0, "function": {"arguments": fragment}}
    if i == 0:
        call.update(id="call_fake_1", type="function")
        call["function"]["name"] = "get_weather"
    return {"tool_calls": [call]}


def script(model: str, include_usage: bool, top: int | None = None) -> list[dict[str, Any]]:
    """The stream events of a scripted model (before [DONE])."""
    if model == "fake-slow":
        return [_chunk(model, {"content": f"tick {i} "}) for i in range(200)]
    events = [_chunk(model, {"role": "assistant", "content": ""})]
    if model in ("fake-reasoning", "fake-reasoning-alt"):
        key = "reasoning_content" if model == "fake-reasoning" else "reasoning"
        events += [_chunk(model, {key: r}) for r in REASONING]
    if model == "fake-tools":
        events += [_chunk(model, _tool_call(i, a)) for i, a in enumerate(("", *ARGUMENTS))]
        events.append(_chunk(model, {}, "tool_calls"))
    elif model == "fake-error-frame":
        events.append(_chunk(model, {"content": "partial"}))
        events.append({"error": {"message": "engine crashed", "type": "server_error", "code": 500}})
        return events
    else:
        last = len(TEXT) - 1
        events += [
            _chunk(
                model,
                {"content": t},
                "stop" if i == last else None,
                None if top is None else {"content": [logprob_entry(t, top)], "refusal": None},
            )
            for i, t in enumerate(TEXT)
        ]
    if include_usage:
        events.append(_usage_chunk(model))
    return events


def completion(model: str) -> dict[str, Any]:
    """The non-streamed reply of fake-text (and of fake-json, whatever it is asked)."""
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(TEXT)},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": USAGE,
    }


def _strict_ok(request: Request, body: Any) -> bool:
    """What llama-cpp-python's server insists on: a UUID X-Request-Id (when sent) and no
    null message content."""
    rid = request.headers.get("x-request-id")
    if rid is not None:
        try:
            uuid.UUID(rid)
        except ValueError:
            return False
    messages = body.get("messages") if isinstance(body, dict) else None
    return all(not (isinstance(m, dict) and m.get("content", "") is None) for m in messages or [])


def _error(status: int, message: str, kind: str, code: str | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return JSONResponse(body, status_code=status)


class EventStream(Response):
    """SSE events, `delay` seconds apart; notices a client that goes away mid-stream by
    listening for http.disconnect while it sends (whatever the ASGI spec version)."""

    def __init__(self, events: list[bytes], delay: float, fake: FakeOpenAI) -> None:
        # No Response.__init__: it would set content-length for an empty body.
        self.status_code, self.media_type, self.background = 200, "text/event-stream", None
        self.init_headers()
        self.events, self.delay, self.fake = events, delay, fake

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def listen() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            self.fake.disconnected.set()

        listener = asyncio.ensure_future(listen())
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            for event in self.events:
                if listener.done():
                    return
                await send({"type": "http.response.body", "body": event, "more_body": True})
                if self.delay:
                    await asyncio.sleep(self.delay)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            self.fake.disconnected.set()
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener


def sse(events: list[dict[str, Any]]) -> Iterator[bytes]:
    for event in events:
        yield b"data: " + orjson.dumps(event) + b"\n\n"
    yield b"data: [DONE]\n\n"


class FakeOpenAI:
    """The fake on 127.0.0.1:<free port>; `url` is its /v1 base URL."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.disconnected = threading.Event()
        self.thread = LoopThread()
        app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )
        self.served = ServedApp(self.thread, app, lifespan="off")
        self.port = self.served.port
        self.url = f"http://127.0.0.1:{self.port}/v1"

    def close(self) -> None:
        self.served.close()
        self.thread.close()

    def chat_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path == "/v1/chat/completions"]

    def _record(self, request: Request, body: Any) -> None:
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.requests.append(Recorded(request.method, request.url.path, headers, body))

    async def _models(self, request: Request) -> Response:
        self._record(request, None)
        data = [
            {"id": m, "object": "model", "created": CREATED, "owned_by": "fake"} for m in MODELS
        ]
        return JSONResponse({"object": "list", "data": data})

    async def _chat(self, request: Request) -> Response:
        body = orjson.loads(await request.body())
        self._record(request, body)
        if not _strict_ok(request, body):
            return Response(status_code=400)  # llama-cpp-python's answer: no body at all
        model = body.get("model")
        if model == "fake-429":
            return _error(429, RATE_LIMIT_MESSAGE, "rate_limit_exceeded", "rate_limit_exceeded")
        if model == "fake-500":
            return _error(500, SERVER_ERROR_MESSAGE, "server_error")
        if model == "fake-leaky-500":
            return _error(500, LEAKY_MESSAGE, "server_error")
        if model not in MODELS:
            return _error(404, f"The model `{model}` does not exist.", "NotFoundError")
        if model == "fake-json" or not body.get("stream"):
            return JSONResponse(completion(model))
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        top = (body.get("top_logprobs") or 0) if body.get("logprobs") else None
        events = list(sse(script(model, include_usage, top)))
        delay = SLOW_DELAY if model == "fake-slow" else 0.0
        return EventStream(events, delay, self)
