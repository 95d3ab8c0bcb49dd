"""The endpoints: one small async function each. Read, translate, call the backend, answer."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from gateway import fanout, pipeline
from gateway.backend import ChatBackend
from gateway.config import Settings
from gateway.errors import GatewayError, NotFound
from gateway.http import JSONResponse
from gateway.ids import new_id
from gateway.streaming import EventStream
from gateway.translate import chat_in, models_out, responses_in
from gateway.translate.chat_out import ChatCompletionBuilder
from gateway.translate.choices import ChoicesBuilder
from gateway.translate.responses_out import ResponseBuilder
from runinfra.chat.v1 import chat_service_pb2 as pb

# --- /v1/responses ---------------------------------------------------------------------


async def create_response(request: Request) -> Response | EventStream[pb.ChatChunk]:
    settings: Settings = request.app.state.settings
    raw, parsed = await pipeline.read(request, responses_in.parse)
    builder = ResponseBuilder(
        parsed.echo,
        response_id=new_id("resp"),
        created_at=int(time.time()),
        new_id=new_id,
        completed_at=lambda: int(time.time()),
        incomplete_as_completed=settings.incomplete_as_completed,
        streaming=parsed.stream,
        logprobs=parsed.chat.logprobs,
    )
    chunks = pipeline.open_chunks(request, parsed.chat, "/v1/responses")
    return await pipeline.answer(request, raw, parsed.stream, builder, chunks)


async def not_stored(request: Request) -> Response:
    """GET/DELETE /v1/responses/{id} and friends: nothing is stored here."""
    raise GatewayError(
        f"Response '{request.path_params['response_id']}' not found: this gateway is stateless and "
        "stores no responses. Keep the response client-side and send the conversation inline.",
        status=404,
        param="response_id",
        code="response_not_found",
    )


# --- /v1/chat/completions --------------------------------------------------------------


async def create_chat_completion(request: Request) -> Response | EventStream[Any]:
    raw, parsed = await pipeline.read(request, chat_in.parse)
    completion_id, created = new_id("chatcmpl", "-"), int(time.time())
    route = "/v1/chat/completions"
    choices = [
        ChatCompletionBuilder(
            model=parsed.chat.model,
            completion_id=completion_id,
            created=created,
            new_id=new_id,
            include_usage=parsed.include_usage,
            streaming=parsed.stream,
            index=index,
            logprobs=parsed.chat.logprobs,
        )
        for index in range(parsed.n)
    ]
    if parsed.n == 1:
        chunks = pipeline.open_chunks(request, parsed.chat, route)
        return await pipeline.answer(request, raw, parsed.stream, choices[0], chunks)
    # n choices: n concurrent calls, merged (gateway.fanout); all cancelled together.
    merged = fanout.merge([pipeline.open_chunks(request, parsed.chat, route) for _ in choices])
    builder = ChoicesBuilder(choices, include_usage=parsed.include_usage, streaming=parsed.stream)
    return await pipeline.answer(request, raw, parsed.stream, builder, merged)


# --- /v1/models --------------------------------------------------------------------------


async def list_models(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    backend: ChatBackend = request.app.state.backend
    models = await backend.list_models(timeout=settings.request_timeout)
    return JSONResponse(models_out.model_list(models))


async def retrieve_model(request: Request) -> Response:
    """GET /v1/models/{model_id}; `default` is the configured default model."""
    settings: Settings = request.app.state.settings
    backend: ChatBackend = request.app.state.backend
    model_id: str = request.path_params["model_id"]
    wanted = settings.default_model if model_id == "default" else model_id
    model = models_out.find(await backend.list_models(timeout=settings.request_timeout), wanted)
    if model is None:
        raise NotFound(
            f"The model '{model_id}' does not exist: GET /v1/models lists the models served here.",
            param="model",
            code="model_not_found",
        )
    return JSONResponse(models_out.model_dict(model))


# --- probes ----------------------------------------------------------------------------


async def healthz(request: Request) -> Response:
    """The process is alive and serving HTTP."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """The backend answers its gRPC health check: send traffic here."""
    backend: ChatBackend = request.app.state.backend
    if await backend.ready():
        return JSONResponse({"status": "ready"})
    return JSONResponse({"status": "backend not ready"}, status_code=503)


async def metrics(request: Request) -> Response:
    """Prometheus exposition of this process's metrics."""
    body = request.app.state.metrics.exposition()
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
