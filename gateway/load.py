"""The gateway's load signal and the coalescing hint it sets from it.

A periodic task measures event-loop lag (how much later than asked a short sleep wakes up)
and the process's own CPU use. An idle or lightly loaded loop wakes on time; a loop that
cannot keep up with its streams' chunks (every chunk is one gRPC message, the main cost of a
stream) wakes late. Both are smoothed over about half a second. When the process itself is
busy (so that lag from other processes on a shared machine does not count) and the lag is
above `LOW_MS`, new calls get `ChatRequest.max_hold_ms` in proportion to the lag, up to the
configured maximum; otherwise 0, so a lone stream is served exactly as without coalescing.
A call keeps the hint it started with.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Callable

INTERVAL = 0.02  # seconds between samples: 50 wake-ups a second, nothing per request
SMOOTHING = 0.5  # seconds: time constant of the moving averages
LOW_MS = 2.0  # smoothed lag below this: no coalescing
BUSY = 0.5  # smoothed CPU of this process (in cores) below this: no coalescing
GAIN = 20.0  # hint (ms) per ms of smoothed lag: the maximum (100 ms) from 5 ms on


class LoadMonitor:
    """Smoothed event-loop lag and CPU use, and the hold window (ms) a backend may use."""

    def __init__(self, max_hold_ms: int, on_change: Callable[[int], object]) -> None:
        self.max_hold_ms = max_hold_ms
        self.on_change = on_change  # told each new hint (the gateway's metrics gauge)
        self.lag_ms = 0.0
        self.busy = 0.0
        self._hint = 0

    def sample(self, lag_ms: float, busy: float, seconds: float = INTERVAL) -> None:
        """Fold one measurement (lag in ms, CPU in cores, over the last `seconds`) in."""
        weight = 1.0 - math.exp(-seconds / SMOOTHING)
        self.lag_ms += weight * (max(0.0, lag_ms) - self.lag_ms)
        self.busy += weight * (max(0.0, busy) - self.busy)
        hint = 0
        if self.lag_ms >= LOW_MS and self.busy >= BUSY and self.max_hold_ms > 0:
            hint = min(self.max_hold_ms, math.ceil(self.lag_ms * GAIN))
        if hint != self._hint:
            self._hint = hint
            self.on_change(hint)

    def hint_ms(self) -> int:
        """`ChatRequest.max_hold_ms` for a call starting now."""
        return self._hint

    async def run(self) -> None:
        """Sample forever (until cancelled)."""
        asked, cpu = time.monotonic(), time.process_time()
        while True:
            await asyncio.sleep(INTERVAL)
            now, cpu_now = time.monotonic(), time.process_time()
            slept = now - asked
            self.sample(1000.0 * (slept - INTERVAL), (cpu_now - cpu) / slept, slept)
            asked, cpu = now, cpu_now


@contextlib.asynccontextmanager
async def monitored(
    max_hold_ms: int, on_change: Callable[[int], object]
) -> AsyncIterator[LoadMonitor]:
    """A LoadMonitor sampling on the running loop for the life of the block (none when
    coalescing is off: the hint stays 0)."""
    monitor = LoadMonitor(max_hold_ms, on_change)
    if max_hold_ms <= 0:
        yield monitor
        return
    task = asyncio.ensure_future(monitor.run())
    try:
        yield monitor
    finally:
        task.cancel()
        await asyncio.wait([task])
