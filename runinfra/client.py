"""RunInfra and AsyncRunInfra: the gateway's HTTP API as typed calls.

    client = RunInfra()                     # $RUNINFRA_BASE_URL, $RUNINFRA_API_KEY
    client.responses.create(model=..., input=..., idempotency_key=runinfra.AUTO)
    client.chat.completions.create(model=..., messages=[...], stream=True)
    client.models.list()

Keyword arguments are declared once in runinfra.params; each call builds one `Call` (body,
ids, key, retries, timeout) and the sender runs it under the retry policy (runinfra._retry).
"""

from __future__ import annotations

import os
from types import TracebackType
from typing import Any, Literal, Unpack, overload

import httpx

from runinfra._decode import ChatDecoder, ResponseDecoder
from runinfra._http import (
    DEFAULT_BASE_URL,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    AsyncSender,
    Call,
    Config,
    Sender,
    body_call,
    json_of,
    make_call,
)
from runinfra.params import CallOptions, ChatParams, ResponseParams
from runinfra.streams import AsyncChatStream, AsyncResponseStream, ChatStream, ResponseStream
from runinfra.types import ChatCompletion, ModelList, Response

Input = str | list[dict[str, Any]]
Messages = list[dict[str, Any]]


def _config(base_url: str | None, api_key: str | None, timeout: float, max_retries: int) -> Config:
    return Config.of(
        base_url or os.environ.get("RUNINFRA_BASE_URL") or DEFAULT_BASE_URL,
        api_key if api_key is not None else os.environ.get("RUNINFRA_API_KEY"),
        timeout,
        max_retries,
    )


def _responses_call(
    config: Config, model: str, input: Input, stream: bool, kwargs: ResponseParams
) -> Call:
    required = {"model": (model, str), "input": (input, Input)}
    return body_call("/responses", required, stream, ResponseParams, kwargs, config)


def _chat_call(
    config: Config, model: str, messages: Messages, stream: bool, kwargs: ChatParams
) -> Call:
    required = {"model": (model, str), "messages": (messages, list)}
    return body_call("/chat/completions", required, stream, ChatParams, kwargs, config)


def _models_call(config: Config, kwargs: CallOptions) -> Call:
    return make_call("GET", "/models", None, kwargs, config)


# --- sync --------------------------------------------------------------------------------


class Responses:
    """POST /v1/responses."""

    def __init__(self, sender: Sender) -> None:
        self._sender = sender

    @overload
    def create(
        self,
        *,
        model: str,
        input: Input,
        stream: Literal[False] = False,
        **kwargs: Unpack[ResponseParams],
    ) -> Response: ...
    @overload
    def create(
        self, *, model: str, input: Input, stream: Literal[True], **kwargs: Unpack[ResponseParams]
    ) -> ResponseStream: ...
    @overload
    def create(
        self, *, model: str, input: Input, stream: bool, **kwargs: Unpack[ResponseParams]
    ) -> Response | ResponseStream: ...
    def create(
        self, *, model: str, input: Input, stream: bool = False, **kwargs: Unpack[ResponseParams]
    ) -> Response | ResponseStream:
        """A response; with `stream=True` a ResponseStream of typed events."""
        call = _responses_call(self._sender.config, model, input, stream, kwargs)
        response = self._sender.send(call)
        if stream:
            return ResponseStream(response, ResponseDecoder(call.info(response)))
        return Response.of(json_of(response, call), call.info(response))


class Completions:
    """POST /v1/chat/completions."""

    def __init__(self, sender: Sender) -> None:
        self._sender = sender

    @overload
    def create(
        self,
        *,
        model: str,
        messages: Messages,
        stream: Literal[False] = False,
        **kwargs: Unpack[ChatParams],
    ) -> ChatCompletion: ...
    @overload
    def create(
        self, *, model: str, messages: Messages, stream: Literal[True], **kwargs: Unpack[ChatParams]
    ) -> ChatStream: ...
    @overload
    def create(
        self, *, model: str, messages: Messages, stream: bool, **kwargs: Unpack[ChatParams]
    ) -> ChatCompletion | ChatStream: ...
    def create(
        self, *, model: str, messages: Messages, stream: bool = False, **kwargs: Unpack[ChatParams]
    ) -> ChatCompletion | ChatStream:
        """A chat.completion; with `stream=True` a ChatStream of chunks."""
        call = _chat_call(self._sender.config, model, messages, stream, kwargs)
        response = self._sender.send(call)
        if stream:
            return ChatStream(response, ChatDecoder(call.info(response)))
        return ChatCompletion.of(json_of(response, call), call.info(response))


class Chat:
    def __init__(self, sender: Sender) -> None:
        self.completions = Completions(sender)


class Models:
    """GET /v1/models."""

    def __init__(self, sender: Sender) -> None:
        self._sender = sender

    def list(self, **kwargs: Unpack[CallOptions]) -> ModelList:
        call = _models_call(self._sender.config, kwargs)
        response = self._sender.send(call)
        return ModelList.of(json_of(response, call), call.info(response))


class RunInfra:
    """The gateway's HTTP API, sync. `base_url` defaults to `$RUNINFRA_BASE_URL`, then
    http://127.0.0.1:8080/v1; `api_key` to `$RUNINFRA_API_KEY`. `timeout` (seconds, per
    attempt) and `max_retries` are defaults that each call may override."""

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: httpx.Client | None = None,
    ) -> None:
        self._sender = Sender(_config(base_url, api_key, timeout, max_retries), http_client)
        self.responses = Responses(self._sender)
        self.chat = Chat(self._sender)
        self.models = Models(self._sender)

    @property
    def base_url(self) -> str:
        return self._sender.config.base_url

    def close(self) -> None:
        self._sender.http.close()

    def __enter__(self) -> RunInfra:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


# --- async -------------------------------------------------------------------------------


class AsyncResponses:
    """POST /v1/responses."""

    def __init__(self, sender: AsyncSender) -> None:
        self._sender = sender

    @overload
    async def create(
        self,
        *,
        model: str,
        input: Input,
        stream: Literal[False] = False,
        **kwargs: Unpack[ResponseParams],
    ) -> Response: ...
    @overload
    async def create(
        self, *, model: str, input: Input, stream: Literal[True], **kwargs: Unpack[ResponseParams]
    ) -> AsyncResponseStream: ...
    @overload
    async def create(
        self, *, model: str, input: Input, stream: bool, **kwargs: Unpack[ResponseParams]
    ) -> Response | AsyncResponseStream: ...
    async def create(
        self, *, model: str, input: Input, stream: bool = False, **kwargs: Unpack[ResponseParams]
    ) -> Response | AsyncResponseStream:
        """A response; with `stream=True` an AsyncResponseStream of typed events."""
        call = _responses_call(self._sender.config, model, input, stream, kwargs)
        response = await self._sender.send(call)
        if stream:
            return AsyncResponseStream(response, ResponseDecoder(call.info(response)))
        return Response.of(json_of(response, call), call.info(response))


class AsyncCompletions:
    """POST /v1/chat/completions."""

    def __init__(self, sender: AsyncSender) -> None:
        self._sender = sender

    @overload
    async def create(
        self,
        *,
        model: str,
        messages: Messages,
        stream: Literal[False] = False,
        **kwargs: Unpack[ChatParams],
    ) -> ChatCompletion: ...
    @overload
    async def create(
        self, *, model: str, messages: Messages, stream: Literal[True], **kwargs: Unpack[ChatParams]
    ) -> AsyncChatStream: ...
    @overload
    async def create(
        self, *, model: str, messages: Messages, stream: bool, **kwargs: Unpack[ChatParams]
    ) -> ChatCompletion | AsyncChatStream: ...
    async def create(
        self, *, model: str, messages: Messages, stream: bool = False, **kwargs: Unpack[ChatParams]
    ) -> ChatCompletion | AsyncChatStream:
        """A chat.completion; with `stream=True` an AsyncChatStream of chunks."""
        call = _chat_call(self._sender.config, model, messages, stream, kwargs)
        response = await self._sender.send(call)
        if stream:
            return AsyncChatStream(response, ChatDecoder(call.info(response)))
        return ChatCompletion.of(json_of(response, call), call.info(response))


class AsyncChat:
    def __init__(self, sender: AsyncSender) -> None:
        self.completions = AsyncCompletions(sender)


class AsyncModels:
    """GET /v1/models."""

    def __init__(self, sender: AsyncSender) -> None:
        self._sender = sender

    async def list(self, **kwargs: Unpack[CallOptions]) -> ModelList:
        call = _models_call(self._sender.config, kwargs)
        response = await self._sender.send(call)
        return ModelList.of(json_of(response, call), call.info(response))


class AsyncRunInfra:
    """The gateway's HTTP API, async; the same arguments as RunInfra."""

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self._sender = AsyncSender(_config(base_url, api_key, timeout, max_retries), http_client)
        self.responses = AsyncResponses(self._sender)
        self.chat = AsyncChat(self._sender)
        self.models = AsyncModels(self._sender)

    @property
    def base_url(self) -> str:
        return self._sender.config.base_url

    async def close(self) -> None:
        await self._sender.http.aclose()

    async def __aenter__(self) -> AsyncRunInfra:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
