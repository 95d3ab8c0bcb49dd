"""gateway.load: the coalescing hint is 0 when idle and follows the loop's lag under load."""

from __future__ import annotations

import asyncio

from gateway import load
from gateway.load import LoadMonitor, monitored


def feed(monitor: LoadMonitor, lag_ms: float, busy: float, seconds: float) -> None:
    for _ in range(round(seconds / load.INTERVAL)):
        monitor.sample(lag_ms, busy)


def test_idle_is_zero_and_load_raises_the_hint_to_the_maximum_and_back() -> None:
    seen: list[int] = []
    monitor = LoadMonitor(100, seen.append)
    feed(monitor, 0.2, 0.05, 2.0)
    assert monitor.hint_ms() == 0 and seen == []
    feed(monitor, 3.0, 0.9, 5.0)  # 3 ms of lag: 60 ms
    assert monitor.hint_ms() == 60
    feed(monitor, 30.0, 1.0, 2.0)
    assert monitor.hint_ms() == 100
    feed(monitor, 0.2, 0.1, 3.0)
    assert monitor.hint_ms() == 0
    assert seen[-1] == 0 and max(seen) == 100


def test_lag_from_other_processes_alone_sets_no_hint() -> None:
    monitor = LoadMonitor(100, lambda hint: None)
    feed(monitor, 30.0, 0.1, 2.0)  # late wake-ups, but this process is not busy
    assert monitor.hint_ms() == 0


def test_max_hold_zero_turns_coalescing_off() -> None:
    monitor = LoadMonitor(0, lambda hint: None)
    feed(monitor, 30.0, 1.0, 2.0)
    assert monitor.hint_ms() == 0


def test_an_idle_loop_samples_and_sets_no_hint() -> None:
    async def main() -> tuple[int, float, float]:
        async with monitored(100, lambda hint: None) as monitor:
            await asyncio.sleep(0.3)
            return monitor.hint_ms(), monitor.lag_ms, monitor.busy

    hint, lag, busy = asyncio.run(main())
    assert hint == 0
    assert lag > 0.0  # sampled: a sleep never wakes up early
    assert busy < load.BUSY
