"""ChatClient (async) and SyncChatClient: ChatService over gRPC, for services that skip HTTP.

`chat(...)` yields the backend's ChatChunks; `complete(...)` folds them into a ChatReply. The
request id travels as `x-request-id` metadata (and `ChatRequest.request_id`), each call has a
deadline, a call that fails UNAVAILABLE before its first chunk is retried (the same request id,
jittered backoff, bounded), and gRPC statuses raise the SDK's error classes (runinfra.errors)
through the same status table as the gateway's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypedDict, Unpack

import grpc

from runinfra import params
from runinfra._retry import backoff
from runinfra.chat.v1 import chat_service_pb2 as pb
from runinfra.chat.v1 import chat_service_pb2_grpc as pb_grpc
from runinfra.contract import GRPC_TO_HTTP
from runinfra.errors import RunInfraError, error_class, transient
from runinfra.types import ToolCall, Usage


class ChatRequestFields(TypedDict, total=False):
    """Fields of `ChatRequest` besides model, messages and request_id."""

    temperature: float
    top_p: float
    max_output_tokens: int
    response_format: pb.ResponseFormat
    tools: list[pb.Tool]
    tool_choice: pb.ToolChoice
    parallel_tool_calls: bool
    buffered: bool
    reasoning_effort: pb.ReasoningEffort.ValueType
    stop: list[str]
    seed: int
    frequency_penalty: float
    presence_penalty: float
    logit_bias: dict[int, int]
    logprobs: bool
    top_logprobs: int


class ChatCallParams(ChatRequestFields, total=False):
    """Everything `chat` and `complete` take as keywords."""

    request_id: str  # default: a fresh UUID
    max_retries: int  # default: the client's
    timeout: float  # the call's deadline, seconds; default: the client's


_OPTIONS = frozenset({"request_id", "max_retries", "timeout"})
Messages = str | Sequence[pb.Message]

_FINISH = {
    pb.FINISH_REASON_STOP: "stop",
    pb.FINISH_REASON_LENGTH: "length",
    pb.FINISH_REASON_TOOL_CALLS: "tool_calls",
    pb.FINISH_REASON_CONTENT_FILTER: "content_filter",
}


@dataclass(frozen=True, slots=True)
class ChatReply:
    """A whole reply: `finish_reason` is `stop`, `length`, `tool_calls` or `content_filter`."""

    text: str
    tool_calls: tuple[ToolCall, ...]
    finish_reason: str | None
    usage: Usage | None
    request_id: str
    reasoning: str = ""
    logprobs: tuple[pb.TokenLogprob, ...] = ()  # with logprobs=True: one per token of `text`


@dataclass(frozen=True, slots=True)
class _Call:
    request: pb.ChatRequest
    timeout: float
    max_retries: int

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("x-request-id", self.request.request_id),)


def _messages(messages: object) -> list[pb.Message]:
    if isinstance(messages, str):
        return [pb.Message(role=pb.ROLE_USER, content=[pb.ContentPart(text=messages)])]
    if not isinstance(messages, Iterable) or not all(isinstance(m, pb.Message) for m in messages):
        raise TypeError("runinfra: messages must be a str or a list of chat_service_pb2.Message")
    return list(messages)


def _prepare(
    model: str, messages: Messages, kwargs: Mapping[str, Any], timeout: float, retries: int
) -> _Call:
    """The checked request of one call (TypeError/ValueError before anything is sent)."""
    params.check_arg("model", model, str)
    params.check(ChatCallParams, kwargs)
    fields = {k: v for k, v in kwargs.items() if k not in _OPTIONS}
    request = pb.ChatRequest(
        model=model,
        messages=_messages(messages),
        request_id=params.request_id_of(kwargs.get("request_id")),
        **fields,
    )
    return _Call(
        request,
        params.positive("timeout", kwargs.get("timeout", timeout)),
        int(params.positive("max_retries", kwargs.get("max_retries", retries), allow_zero=True)),
    )


def _status(exc: grpc.RpcError) -> tuple[grpc.StatusCode, str]:
    """The status code and details of a failed call (sync or async)."""
    if isinstance(exc, (grpc.Call, grpc.aio.AioRpcError)):
        return exc.code(), exc.details() or exc.code().name
    return grpc.StatusCode.UNKNOWN, repr(exc)


def rpc_error(exc: grpc.RpcError, request_id: str | None) -> RunInfraError:
    """A gRPC failure as the SDK's error for the HTTP status the gateway would answer."""
    code, details = _status(exc)
    status = GRPC_TO_HTTP.get(code.name, 500)
    return error_class(status)(
        details,
        code=code.name.lower(),
        status=status,
        request_id=request_id,
        client_request_id=request_id,
        retryable=transient(status),
    )


def _retry_delay(exc: grpc.RpcError, sent: bool, attempt: int, call: _Call) -> float | None:
    """Before the first chunk, UNAVAILABLE is retried (the backend has not started)."""
    if _status(exc)[0] != grpc.StatusCode.UNAVAILABLE or sent or attempt >= call.max_retries:
        return None
    return backoff(attempt)


class _Fold:
    """Chunks in, a ChatReply out."""

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.logprobs: list[pb.TokenLogprob] = []
        self.calls: dict[int, tuple[str, str, str]] = {}
        self.finish: str | None = None
        self.usage: Usage | None = None

    def add(self, chunk: pb.ChatChunk) -> None:
        self.text.append(chunk.text)
        self.reasoning.append(chunk.reasoning_text)
        self.logprobs.extend(chunk.logprobs)
        for d in chunk.tool_calls:
            id_, name, arguments = self.calls.get(d.index, ("", "", ""))
            self.calls[d.index] = (id_ or d.id, name or d.name, arguments + d.arguments)
        self.finish = _FINISH.get(chunk.finish_reason, self.finish)
        if chunk.HasField("usage"):
            u = chunk.usage
            self.usage = Usage(u.input_tokens, u.output_tokens, u.input_tokens + u.output_tokens)

    def reply(self) -> ChatReply:
        calls = tuple(ToolCall(*self.calls[i]) for i in sorted(self.calls))
        text, reasoning = "".join(self.text), "".join(self.reasoning)
        return ChatReply(
            text, calls, self.finish, self.usage, self.request_id, reasoning, tuple(self.logprobs)
        )


class _Base:
    def __init__(self, timeout: float, max_retries: int) -> None:
        params.check_arg("timeout", timeout, float)
        params.check_arg("max_retries", max_retries, int)
        self._timeout = params.positive("timeout", timeout)
        self._max_retries = int(params.positive("max_retries", max_retries, allow_zero=True))

    def _prepare(self, model: str, messages: Messages, kwargs: Mapping[str, Any]) -> _Call:
        return _prepare(model, messages, kwargs, self._timeout, self._max_retries)


class ChatClient(_Base):
    """ChatService over a grpc.aio channel to `target` (host:port or a gRPC URI)."""

    def __init__(
        self,
        target: str,
        *,
        timeout: float = 600.0,
        max_retries: int = 2,
        channel: grpc.aio.Channel | None = None,
    ) -> None:
        super().__init__(timeout, max_retries)
        params.check_arg("target", target, str)
        self._channel = channel or grpc.aio.insecure_channel(target)
        self._stub = pb_grpc.ChatServiceStub(self._channel)

    def chat(
        self, *, model: str, messages: Messages, **kwargs: Unpack[ChatCallParams]
    ) -> AsyncIterator[pb.ChatChunk]:
        """The reply's chunks as they come; closing the iterator cancels the call."""
        return self._chunks(self._prepare(model, messages, kwargs))

    async def complete(
        self, *, model: str, messages: Messages, **kwargs: Unpack[ChatCallParams]
    ) -> ChatReply:
        """The whole reply, folded (the backend is told it may send it in one chunk)."""
        call = self._prepare(model, messages, {"buffered": True, **kwargs})
        fold = _Fold(call.request.request_id)
        async for chunk in self._chunks(call):
            fold.add(chunk)
        return fold.reply()

    async def list_models(self, *, timeout: float | None = None) -> list[pb.Model]:
        try:
            reply = await self._stub.ListModels(pb.ListModelsRequest(), timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            raise rpc_error(exc, None) from None
        return list(reply.models)

    async def _chunks(self, call: _Call) -> AsyncIterator[pb.ChatChunk]:
        attempt = 0
        while True:
            rpc = self._stub.Chat(call.request, timeout=call.timeout, metadata=call.metadata)
            sent = False
            try:
                async for chunk in rpc:
                    sent = True
                    yield chunk
                return
            except grpc.aio.AioRpcError as exc:
                delay = _retry_delay(exc, sent, attempt, call)
                if delay is None:
                    raise rpc_error(exc, call.request.request_id) from None
            finally:
                rpc.cancel()
            await asyncio.sleep(delay)
            attempt += 1

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> ChatClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


class SyncChatClient(_Base):
    """ChatClient's blocking twin, over a grpc (sync) channel."""

    def __init__(
        self,
        target: str,
        *,
        timeout: float = 600.0,
        max_retries: int = 2,
        channel: grpc.Channel | None = None,
    ) -> None:
        super().__init__(timeout, max_retries)
        params.check_arg("target", target, str)
        self._channel = channel or grpc.insecure_channel(target)
        self._stub = pb_grpc.ChatServiceStub(self._channel)

    def chat(
        self, *, model: str, messages: Messages, **kwargs: Unpack[ChatCallParams]
    ) -> Iterator[pb.ChatChunk]:
        """The reply's chunks as they come; closing the iterator cancels the call."""
        return self._chunks(self._prepare(model, messages, kwargs))

    def complete(
        self, *, model: str, messages: Messages, **kwargs: Unpack[ChatCallParams]
    ) -> ChatReply:
        call = self._prepare(model, messages, {"buffered": True, **kwargs})
        fold = _Fold(call.request.request_id)
        for chunk in self._chunks(call):
            fold.add(chunk)
        return fold.reply()

    def list_models(self, *, timeout: float | None = None) -> list[pb.Model]:
        try:
            reply = self._stub.ListModels(pb.ListModelsRequest(), timeout=timeout)
        except grpc.RpcError as exc:
            raise rpc_error(exc, None) from None
        return list(reply.models)

    def _chunks(self, call: _Call) -> Iterator[pb.ChatChunk]:
        attempt = 0
        while True:
            rpc = self._stub.Chat(call.request, timeout=call.timeout, metadata=call.metadata)
            sent = False
            try:
                for chunk in rpc:
                    sent = True
                    yield chunk
                return
            except grpc.RpcError as exc:
                delay = _retry_delay(exc, sent, attempt, call)
                if delay is None:
                    raise rpc_error(exc, call.request.request_id) from None
            finally:
                rpc.cancel()
            time.sleep(delay)
            attempt += 1

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> SyncChatClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
