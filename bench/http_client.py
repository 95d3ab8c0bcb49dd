"""A tiny raw-socket HTTP/1.1 client for streaming latency and for holding streams open.

`latency`: C keep-alive connections, each POSTing one stream after another for S
seconds; prints time to first body byte (TTFB) and to last byte (TTLB), p50/p99.
`hold`: opens N streams, waits until each has sent its first bytes, prints
`READY n`, keeps reading for --hold seconds, then closes them all.
`paced`: N connections streaming one reply after another (from a stub pacing its words);
prints the gap between consecutive body chunks p50/p99, TTFB, tokens/s and errors.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time
from dataclasses import dataclass

from bench.common import PATHS, WORDS, Window, body, emit, percentile, raise_fd_limit, rss_kib


@dataclass
class Timing:
    status: int
    ttfb: float
    ttlb: float
    frames: int


def request_bytes(path: str, payload: bytes, port: int) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


async def read_head(reader: asyncio.StreamReader) -> tuple[int, dict[bytes, bytes]]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = {}
    for line in lines[1:]:
        if b":" in line:
            key, value = line.split(b":", 1)
            headers[key.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers


async def read_chunk(reader: asyncio.StreamReader) -> bytes:
    """One chunk of a chunked body; b"" for the terminating chunk."""
    size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
    data = await reader.readexactly(size + 2)
    return data[:-2]


async def one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, req: bytes) -> Timing:
    t0 = time.perf_counter()
    writer.write(req)
    status, headers = await read_head(reader)
    first = 0.0
    frames = 0
    if b"content-length" in headers:
        data = await reader.readexactly(int(headers[b"content-length"]))
        first = time.perf_counter()
        frames = 1
    else:
        while data := await read_chunk(reader):
            first = first or time.perf_counter()
            frames += data.count(b"\n\n")
    return Timing(status, first - t0, time.perf_counter() - t0, frames)


async def latency(args: argparse.Namespace, req: bytes) -> dict[str, object]:
    timings: list[Timing] = []
    measure_from = time.perf_counter() + args.warmup
    deadline = measure_from + args.duration

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", args.port)
        try:
            while (t0 := time.perf_counter()) < deadline:
                timing = await one(reader, writer, req)
                if t0 >= measure_from:
                    timings.append(timing)
        finally:
            writer.close()

    tasks = [asyncio.create_task(worker()) for _ in range(args.concurrency)]
    await asyncio.sleep(args.warmup)
    pids = {"loadgen": os.getpid(), "server": args.server_pid, "stub": args.stub_pid}
    window = Window(pids={k: v for k, v in pids.items() if v}).start()
    await asyncio.gather(*tasks)
    cpu = window.stop()
    ok = [t for t in timings if t.status == 200]
    return {
        "streams": len(ok),
        "errors": len(timings) - len(ok),
        "streams_per_s": len(ok) / cpu["elapsed"],
        "frames_per_stream": ok[0].frames if ok else 0,
        "ttfb_p50_ms": 1000 * percentile([t.ttfb for t in ok], 50),
        "ttfb_p99_ms": 1000 * percentile([t.ttfb for t in ok], 99),
        "ttlb_p50_ms": 1000 * percentile([t.ttlb for t in ok], 50),
        "ttlb_p99_ms": 1000 * percentile([t.ttlb for t in ok], 99),
        **cpu,
    }


async def hold(args: argparse.Namespace, req: bytes) -> dict[str, object]:
    ready = 0
    ended = 0
    all_ready = asyncio.Event()
    gate = asyncio.Semaphore(100)  # connect in waves, not one SYN burst of N

    async def stream() -> None:
        nonlocal ready, ended
        async with gate:
            reader, writer = await asyncio.open_connection("127.0.0.1", args.port)
            writer.write(req)
        try:
            status, _ = await read_head(reader)
            if status != 200 or not await read_chunk(reader):
                return
            ready += 1
            if ready == args.count:
                all_ready.set()
            while await read_chunk(reader):
                pass
            ended += 1
        finally:
            writer.close()

    t0 = time.perf_counter()
    tasks = [asyncio.create_task(stream()) for _ in range(args.count)]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_ready.wait(), timeout=args.open_timeout)
    open_s = time.perf_counter() - t0
    print(f"READY {ready}", flush=True)
    await asyncio.sleep(args.hold)
    still_open = ready - ended
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"ready": ready, "open_at_end": still_open, "open_seconds": open_s}


@dataclass
class Paced:
    """What the `paced` workers saw inside the measured window."""

    measure_from: float
    deadline: float
    gaps: list[float]
    ttfbs: list[float]
    completed: int = 0
    errors: int = 0
    words: int = 0
    frames: int = 0  # SSE frames (b"\n\n"-terminated) received inside the window
    count_last: bool = False  # chat: the closing frames do not repeat the text

    def inside(self, t: float) -> bool:
        return self.measure_from <= t < self.deadline


FAILED = (b"response.failed", b'"error":{')
WORD_BYTES = tuple(
    f"{w} ".encode() for w in WORDS
)  # a word and its space: not a JSON key  # a stream that ended in-band with an error


async def paced_stream(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, req: bytes, seen: Paced
) -> None:
    """One stream: its TTFB if it started in the window, every gap between body chunks (one
    `send` of the server each) that started in it, and whether it ended well."""
    t0 = time.perf_counter()
    writer.write(req)
    status, _ = await read_head(reader)
    prev, last = 0.0, b""
    while data := await read_chunk(reader):
        now = time.perf_counter()
        if seen.inside(now):
            seen.frames += data.count(b"\n\n")
        if not prev and seen.inside(t0):
            seen.ttfbs.append(now - t0)
        elif prev and seen.inside(prev):
            seen.gaps.append(now - prev)
            # The words of the previous chunk (not of the last: the gateway's closing
            # events repeat the whole text).
            seen.words += sum(last.count(w) for w in WORD_BYTES)
        prev, last = now, data
    if seen.count_last and prev and seen.inside(prev):
        seen.words += sum(last.count(w) for w in WORD_BYTES)
    if status != 200 or any(mark in last for mark in FAILED):
        seen.errors += 1
    elif seen.inside(time.perf_counter()):
        seen.completed += 1


async def paced(args: argparse.Namespace, req: bytes) -> dict[str, object]:
    """`--count` connections, each streaming one reply after another; their first requests
    spread evenly over `--spread` seconds (arrivals, not one burst); measured from `--warmup`
    for `--duration` seconds; streams still open then may finish within `--open-timeout`."""
    start = time.perf_counter()
    seen = Paced(start + args.warmup, start + args.warmup + args.duration, [], [])
    seen.count_last = args.endpoint == "chat"
    gate = asyncio.Semaphore(100)

    async def worker(offset: float) -> None:
        await asyncio.sleep(offset)
        async with gate:
            reader, writer = await asyncio.open_connection("127.0.0.1", args.port)
        try:
            while time.perf_counter() < seen.deadline:
                await paced_stream(reader, writer, req, seen)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            seen.errors += 1
        finally:
            writer.close()

    tasks = [asyncio.create_task(worker(args.spread * i / args.count)) for i in range(args.count)]
    await asyncio.sleep(max(0.0, seen.measure_from - time.perf_counter()))
    pids = {"loadgen": os.getpid(), "server": args.server_pid, "stub": args.stub_pid}
    window = Window(pids={k: v for k, v in pids.items() if v}).start()
    await asyncio.sleep(max(0.0, seen.deadline - time.perf_counter()))
    cpu = window.stop()
    rss = rss_kib(args.server_pid) if args.server_pid else 0
    _, unfinished = await asyncio.wait(tasks, timeout=args.open_timeout)
    for task in unfinished:
        task.cancel()
    gaps = [1000 * g for g in seen.gaps]
    return {
        "streams": args.count,
        "completed": seen.completed,
        "errors": seen.errors + len(unfinished),
        "tokens_per_s": seen.words / args.duration,
        "gap_p50_ms": percentile(gaps, 50),
        "gap_p99_ms": percentile(gaps, 99),
        "gap_max_ms": max(gaps, default=0.0),
        "events": len(gaps),
        "frames_per_s": seen.frames / args.duration,
        "words_per_event": seen.words / max(1, len(gaps)),
        "ttfb_p50_ms": 1000 * percentile(seen.ttfbs, 50),
        "ttfb_p99_ms": 1000 * percentile(seen.ttfbs, 99),
        "server_rss_mib": rss / 1024,
        **cpu,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("mode", choices=("latency", "hold", "paced"))
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--endpoint", choices=tuple(PATHS), default="responses")
    p.add_argument("--words", type=int, default=256)
    p.add_argument("--model", default="stub-echo")
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--duration", type=float, default=3.0)
    p.add_argument("--warmup", type=float, default=0.5)
    p.add_argument("--server-pid", type=int, default=0)
    p.add_argument("--stub-pid", type=int, default=0)
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--hold", type=float, default=3.0)
    p.add_argument("--open-timeout", type=float, default=30.0)
    p.add_argument("--spread", type=float, default=4.0, help="paced: first requests over this")
    args = p.parse_args()
    raise_fd_limit()
    payload = body(args.endpoint, args.words, stream=True, model=args.model)
    req = request_bytes(PATHS[args.endpoint], payload, args.port)
    run = {"latency": latency, "hold": hold, "paced": paced}[args.mode]
    try:
        import uvloop
    except ImportError:
        emit(asyncio.run(run(args, req)))
    else:
        emit(uvloop.run(run(args, req)))


if __name__ == "__main__":
    main()
