"""Streaming wrappers: context-managed iterators of typed events over one HTTP response.

`close()` closes the connection, so the gateway cancels the backend call. A failure after the
stream started raises StreamError carrying the text received so far; it is never retried.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from types import TracebackType
from typing import Generic, TypeVar

import httpx

from runinfra._decode import ChatDecoder, Decoder, ResponseDecoder, SSELines
from runinfra.types import ChatCompletion, ChatCompletionChunk, Response, ResponseEvent

E = TypeVar("E")

_ENDED = "the stream ended before its final event"


class _Base(Generic[E]):
    def __init__(self, response: httpx.Response, decoder: Decoder[E]) -> None:
        self._response = response
        self._decoder = decoder

    @property
    def request_id(self) -> str | None:
        """The gateway's `x-request-id` of this stream."""
        value: str | None = self._response.headers.get("x-request-id")
        return value

    @property
    def client_request_id(self) -> str | None:
        """The `X-Client-Request-Id` the SDK sent."""
        value: str | None = self._response.request.headers.get("x-client-request-id")
        return value

    @property
    def partial_text(self) -> str:
        """The text received so far."""
        return self._decoder.partial_text


class _Stream(_Base[E]):
    def __init__(self, response: httpx.Response, decoder: Decoder[E]) -> None:
        super().__init__(response, decoder)
        self._iterator = self._iterate()

    def __iter__(self) -> Iterator[E]:
        return self

    def __next__(self) -> E:
        return next(self._iterator)

    def __enter__(self) -> _Stream[E]:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (the gateway then cancels the backend call)."""
        self._response.close()

    def _iterate(self) -> Iterator[E]:
        lines, decoder = SSELines(), self._decoder
        try:
            for line in self._response.iter_lines():
                data = lines.feed(line)
                item = decoder.decode(data) if data is not None else None
                if item is not None:
                    yield item
                if decoder.done:
                    return
        except httpx.TransportError as exc:
            raise decoder.broken(f"the stream broke: {exc!r}") from exc
        finally:
            self.close()
        raise decoder.broken(_ENDED)

    def _drain(self) -> None:
        for _ in self:
            pass


class _AsyncStream(_Base[E]):
    def __init__(self, response: httpx.Response, decoder: Decoder[E]) -> None:
        super().__init__(response, decoder)
        self._iterator = self._iterate()

    def __aiter__(self) -> AsyncIterator[E]:
        return self

    async def __anext__(self) -> E:
        return await anext(self._iterator)

    async def __aenter__(self) -> _AsyncStream[E]:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection (the gateway then cancels the backend call)."""
        await self._response.aclose()

    async def _iterate(self) -> AsyncIterator[E]:
        lines, decoder = SSELines(), self._decoder
        try:
            async for line in self._response.aiter_lines():
                data = lines.feed(line)
                item = decoder.decode(data) if data is not None else None
                if item is not None:
                    yield item
                if decoder.done:
                    return
        except httpx.TransportError as exc:
            raise decoder.broken(f"the stream broke: {exc!r}") from exc
        finally:
            await self.close()
        raise decoder.broken(_ENDED)

    async def _drain(self) -> None:
        async for _ in self:
            pass


class ResponseStream(_Stream[ResponseEvent]):
    """`responses.create(..., stream=True)`: ResponseEvent after ResponseEvent."""

    _decoder: ResponseDecoder

    def __enter__(self) -> ResponseStream:
        return self

    def text_deltas(self) -> Iterator[str]:
        """The output text, piece by piece."""
        for event in self:
            if event.type == "response.output_text.delta":
                yield event.delta

    def final_response(self) -> Response:
        """Read to the end; the terminal event's envelope (completed or incomplete)."""
        self._drain()
        return _final(self._decoder)


class AsyncResponseStream(_AsyncStream[ResponseEvent]):
    """The async ResponseStream."""

    _decoder: ResponseDecoder

    async def __aenter__(self) -> AsyncResponseStream:
        return self

    async def text_deltas(self) -> AsyncIterator[str]:
        async for event in self:
            if event.type == "response.output_text.delta":
                yield event.delta

    async def final_response(self) -> Response:
        await self._drain()
        return _final(self._decoder)


class ChatStream(_Stream[ChatCompletionChunk]):
    """`chat.completions.create(..., stream=True)`: ChatCompletionChunk after chunk."""

    _decoder: ChatDecoder

    def __enter__(self) -> ChatStream:
        return self

    def text_deltas(self) -> Iterator[str]:
        for chunk in self:
            if chunk.text:
                yield chunk.text

    def final_completion(self) -> ChatCompletion:
        """Read to `[DONE]`; the chunks folded into one chat.completion."""
        self._drain()
        return _completion(self._decoder)


class AsyncChatStream(_AsyncStream[ChatCompletionChunk]):
    """The async ChatStream."""

    _decoder: ChatDecoder

    async def __aenter__(self) -> AsyncChatStream:
        return self

    async def text_deltas(self) -> AsyncIterator[str]:
        async for chunk in self:
            if chunk.text:
                yield chunk.text

    async def final_completion(self) -> ChatCompletion:
        await self._drain()
        return _completion(self._decoder)


def _final(decoder: ResponseDecoder) -> Response:
    if decoder.final is None:
        raise decoder.broken(_ENDED)
    return decoder.final


def _completion(decoder: ChatDecoder) -> ChatCompletion:
    if not decoder.done or not decoder.chunks:
        raise decoder.broken(_ENDED)
    return decoder.completion()
