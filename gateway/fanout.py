"""n backend calls for one request (chat completions' `n`), run concurrently and merged.

`merge` interleaves the calls' chunks, each tagged with its call's index, in the order
they arrive. One task per call, started on the first read; a bounded queue holds at most
one chunk per call, so a slow client slows the calls (as one call's gRPC flow control
does). A call that fails ends the merge with its error, and closing the merge (the
client left, or the stream ended) cancels every call still running. A request with n = 1
never comes here: it reads its one call directly.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TypeVar, cast

T = TypeVar("T")
_END = object()  # a call's stream ended normally


async def merge(streams: list[AsyncIterator[T]]) -> AsyncIterator[tuple[int, T]]:
    """(index, item) pairs from every stream as they come; the first failure is raised."""
    queue: asyncio.Queue[tuple[int, object]] = asyncio.Queue(maxsize=len(streams))

    async def pump(index: int, stream: AsyncIterator[T]) -> None:
        try:
            async for item in stream:
                await queue.put((index, item))
            await queue.put((index, _END))
        except Exception as exc:
            await queue.put((index, exc))
        finally:
            await stream.aclose()  # type: ignore[attr-defined]

    tasks = [asyncio.ensure_future(pump(i, s)) for i, s in enumerate(streams)]
    try:
        running = len(tasks)
        while running:
            index, item = await queue.get()
            if item is _END:
                running -= 1
            elif isinstance(item, Exception):
                raise item
            else:
                yield index, cast(T, item)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
