"""Coalescing for backends that honour `ChatRequest.max_hold_ms`: chunks produced within the
hold window go out as one, with the same text, tool-call arguments, usage and finish reason.

`merge` joins chunks; `paced` groups the chunks of a producer with a fixed pace (the stub);
`held` coalesces any async stream of chunks by time (backend_openai). The first chunk is never
held, so the time to first byte does not change. A chunk with a field `merge` does not know is
sent on its own, in order: a field added to the contract later is never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Iterator, Sequence

from runinfra.chat.v1 import chat_service_pb2 as pb

MERGEABLE = frozenset(
    {"reasoning_text", "text", "logprobs", "tool_calls", "finish_reason", "usage"}
)


def hold_seconds(request: pb.ChatRequest) -> float:
    """The request's hold window in seconds (0.0: no coalescing)."""
    return request.max_hold_ms / 1000.0


def mergeable(chunk: pb.ChatChunk) -> bool:
    """Whether `merge` knows every field the chunk sets."""
    return all(field.name in MERGEABLE for field, _ in chunk.ListFields())


def merge(chunks: Sequence[pb.ChatChunk]) -> pb.ChatChunk:
    """One chunk for several in a row: reasoning texts, texts and their logprobs joined
    (reasoning comes before the text in a stream, and in a chunk), a call's consecutive argument
    fragments joined into one delta, and the finish reason and usage (set on the last chunk
    only)."""
    if len(chunks) == 1:
        return chunks[0]
    merged = pb.ChatChunk(
        reasoning_text="".join(c.reasoning_text for c in chunks),
        text="".join(c.text for c in chunks),
        logprobs=[lp for c in chunks for lp in c.logprobs],  # one per token of `text`, in order
    )
    calls = merged.tool_calls
    for delta in (d for c in chunks for d in c.tool_calls):
        if calls and calls[-1].index == delta.index and not delta.id and not delta.name:
            calls[-1].arguments += delta.arguments
        else:
            calls.add().CopyFrom(delta)
    last = chunks[-1]
    merged.finish_reason = last.finish_reason
    if last.HasField("usage"):
        merged.usage.CopyFrom(last.usage)
    return merged


def runs(chunks: Sequence[pb.ChatChunk]) -> list[list[pb.ChatChunk]]:
    """`chunks` cut into runs that `merge` may join: an unknown field makes a run of one."""
    out: list[list[pb.ChatChunk]] = []
    open_run = False
    for chunk in chunks:
        if mergeable(chunk) and open_run:
            out[-1].append(chunk)
        else:
            out.append([chunk])
        open_run = mergeable(chunk)
    return out


def paced(
    chunks: Iterable[pb.ChatChunk], delay: float, hold: float
) -> list[tuple[int, pb.ChatChunk]]:
    """For a producer that makes one chunk every `delay` seconds: (chunks made, chunk to send)
    for each send. The first chunk alone, then each run of the 1 + hold // delay chunks made
    within one window as one (every chunk at once when delay is 0)."""
    return list(paced_lazily(chunks, delay, hold))


def paced_lazily(
    chunks: Iterable[pb.ChatChunk], delay: float, hold: float
) -> Iterator[tuple[int, pb.ChatChunk]]:
    """`paced`, taking chunks only as each send needs them (a producer that makes them as
    they are sent holds one window at a time, not the whole reply)."""
    source = iter(chunks)
    if hold <= 0:
        yield from ((1, c) for c in source)
        return
    first = next(source, None)
    if first is None:
        return
    yield 1, first
    size = None if delay <= 0 else 1 + int(hold / delay + 1e-9)
    while window := list(itertools.islice(source, size)):
        yield from ((len(run), merge(run)) for run in runs(window))


async def held(
    source: AsyncGenerator[pb.ChatChunk, None], hold: float
) -> AsyncGenerator[pb.ChatChunk, None]:
    """`source`'s chunks, the first as soon as it comes and each later one at most `hold`
    seconds after it came, joined with those that came meanwhile. A failure of `source` is
    raised after the chunks that came before it. Closing this closes `source` at once."""
    async with contextlib.aclosing(source):
        if hold <= 0:
            async for chunk in source:
                yield chunk
            return
        first = await anext(source, None)
        if first is None:
            return
        yield first
        pending = _Pending(source)
        try:
            while batch := await pending.take(hold):
                for run in runs(batch):
                    yield merge(run)
            pending.reader.result()  # the source's own failure, if any
        finally:
            await pending.stop()


class _Pending:
    """Reads `source` in a task; `take` waits for what has come within one window."""

    def __init__(self, source: AsyncIterator[pb.ChatChunk]) -> None:
        self.chunks: list[pb.ChatChunk] = []
        self.first_at = 0.0
        self.arrived: asyncio.Future[None] | None = None
        self.reader = asyncio.ensure_future(self._read(source))

    async def _read(self, source: AsyncIterator[pb.ChatChunk]) -> None:
        async for chunk in source:
            if not self.chunks:
                self.first_at = time.monotonic()
            self.chunks.append(chunk)
            if self.arrived is not None and not self.arrived.done():
                self.arrived.set_result(None)

    async def stop(self) -> None:
        """End the reading task (its failure, if any, was raised by `held` already)."""
        self.reader.cancel()
        await asyncio.wait([self.reader])
        if not self.reader.cancelled():
            self.reader.exception()  # retrieved: no "never retrieved" warning

    async def take(self, hold: float) -> list[pb.ChatChunk]:
        """The chunks that came, once the first of them has been held `hold` seconds or the
        source has ended; [] once the source has ended and everything was taken."""
        if not self.chunks and not self.reader.done():
            self.arrived = asyncio.get_running_loop().create_future()
            await asyncio.wait([self.arrived, self.reader], return_when=asyncio.FIRST_COMPLETED)
        wait = self.first_at + hold - time.monotonic()
        if self.chunks and wait > 0 and not self.reader.done():
            await asyncio.wait([self.reader], timeout=wait)
        batch, self.chunks = self.chunks, []
        return batch
